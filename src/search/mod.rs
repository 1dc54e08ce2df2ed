//! Chinese search over every content kind.
//!
//! Residents type two or three characters, pinyin or initials on a touch keyboard. The
//! index guarantees recall: every item whose normalised text contains the normalised query
//! is found, because text is indexed as overlapping character bigrams (plus single
//! characters for one-character queries) and a query becomes the phrase of its bigrams.
//! Titles and key terms also carry pinyin and initials; the content's synonym groups are
//! applied at query time, and article numbers typed in digits also look for the Chinese
//! numerals statutes use (第10条 → 第十条). Ranking puts exact title matches first, then title matches, then
//! text matches, documents in force above repealed ones, newer above older.
//!
//! - [`normalize`]: NFKC, full-width → half-width, traditional → simplified, lowercase,
//!   brackets dropped; article numbers in Chinese numerals.
//! - [`tokenize`]: the tantivy tokenizers and pinyin helpers.
//! - `index`: schema and [`build_index`].
//! - `searcher`: [`Searcher`] (search, facets, suggestions).
//! - [`snippet`]: highlighted fragments.

pub mod normalize;
pub mod snippet;
pub mod tokenize;

mod index;
mod searcher;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use thiserror::Error;

use crate::config::Config;
use crate::content::Merged;

pub use searcher::{
    index_dir_of, Facets, Filters, Hit, Match, SearchRequest, SearchResults, Searcher, Suggestion,
    SNIPPET_CHARS,
};
pub use snippet::Fragment;

#[derive(Debug, Error)]
pub enum SearchError {
    #[error(
        "the search index directory {0} is not empty: build the index into a new, empty directory"
    )]
    NotEmpty(PathBuf),
    #[error(
        "cannot open the search index in {0}: {1} (is this a content version's index/ directory?)"
    )]
    Open(PathBuf, String),
    #[error("the search index in {dir} has format {found}, this kiosk reads format {want}: rebuild the index")]
    Format { dir: PathBuf, found: u32, want: u32 },
    #[error("the search metadata {0} is damaged: {1}; rebuild the index")]
    Meta(PathBuf, #[source] serde_json::Error),
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("search index: {0}")]
    Io(#[from] std::io::Error),
}

/// Builds the search index for `merged` into the empty directory `dir`.
pub fn build_index(dir: &Path, merged: &Merged) -> Result<(), SearchError> {
    index::build(dir, merged)
}

/// `kiosk search`: prints ranked hits from the installed content or from `content`.
pub fn cli(
    config: &Config,
    content: Option<&Path>,
    json: bool,
    limit: usize,
    query: &str,
) -> anyhow::Result<()> {
    // A bundle (or a folder of scope bundles) has no index yet: build one in a temp dir.
    let _scratch;
    let dir = match content {
        Some(dir) if is_bundle_source(dir) => {
            let (scratch, index) = index_bundles(dir)?;
            _scratch = scratch;
            index
        }
        Some(dir) => index_dir_of(dir),
        None => {
            let version =
                crate::bundle::open_installed(config).context("no installed content to search")?;
            version.index_dir()
        }
    };
    let searcher = Searcher::open(&dir)
        .with_context(|| format!("opening the search index in {}", dir.display()))?;
    let results = searcher.search(&SearchRequest {
        query: query.to_string(),
        limit,
        ..SearchRequest::default()
    })?;
    let mut out = std::io::stdout().lock();
    if json {
        for hit in &results.hits {
            let line = serde_json::json!({
                "id": hit.id,
                "kind": hit.kind,
                "title": hit.title,
                "snippet": snippet::plain(&hit.snippet),
                "fragments": hit.snippet,
                "score": hit.score,
                "matched": hit.matched,
                "validity": hit.validity,
                "date": hit.date,
                "domain": hit.domain,
            });
            writeln!(out, "{line}")?;
        }
    } else {
        writeln!(out, "{} hits for “{}”", results.total, query)?;
        for (i, hit) in results.hits.iter().enumerate() {
            let status = if hit.validity.in_force() {
                String::new()
            } else {
                format!(" 〔{}〕", hit.validity.label())
            };
            writeln!(
                out,
                "{:>2}. {:>6.2}  {}  {}  {}{}",
                i + 1,
                hit.score,
                hit.kind.label(),
                hit.id,
                hit.title,
                status
            )?;
            let marked: String = hit
                .snippet
                .iter()
                .map(|f| if f.highlight { format!("【{}】", f.text) } else { f.text.clone() })
                .collect();
            writeln!(out, "    {marked}")?;
        }
    }
    Ok(())
}

/// Whether `dir` is a bundle (`manifest.json`) or a folder of scope bundles.
fn is_bundle_source(dir: &Path) -> bool {
    dir.join(crate::bundle::format::paths::MANIFEST).is_file()
        || std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.path().join(crate::bundle::format::paths::MANIFEST).is_file())
        })
}

/// A temp directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads the bundle(s) under `dir`, checks every blob against its manifest entry, merges
/// the scopes widest first and indexes them into a scratch directory. Signatures are not
/// checked against a pinned root here (`content-sync verify` does that); this is for looking
/// into a bundle before it is published.
fn index_bundles(dir: &Path) -> anyhow::Result<(Scratch, PathBuf)> {
    use crate::bundle::format::paths;
    use crate::bundle::verify::{parse_envelope, parse_manifest_payload, verify_blob_file, Limits};

    let mut bundles: Vec<PathBuf> = Vec::new();
    if dir.join(paths::MANIFEST).is_file() {
        bundles.push(dir.to_path_buf());
    } else {
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.join(paths::MANIFEST).is_file() {
                bundles.push(path);
            }
        }
    }
    let mut scopes = Vec::new();
    for bundle in &bundles {
        let manifest_path = bundle.join(paths::MANIFEST);
        let bytes = std::fs::read(&manifest_path)
            .with_context(|| format!("reading {}", manifest_path.display()))?;
        let envelope = parse_envelope(&bytes, Limits::default().manifest_bytes, "manifest")
            .with_context(|| format!("{} is not a bundle manifest", manifest_path.display()))?;
        let manifest = parse_manifest_payload(&envelope)
            .with_context(|| format!("{} is not a bundle manifest", manifest_path.display()))?;
        let blobs = bundle.join(paths::BLOBS);
        for entry in &manifest.entries {
            verify_blob_file(entry, &blobs.join(&entry.sha256))
                .with_context(|| format!("bundle {}", bundle.display()))?;
        }
        let content =
            crate::bundle::read_scope_content(&manifest, |e| std::fs::read(blobs.join(&e.sha256)))
                .with_context(|| format!("reading the content of bundle {}", bundle.display()))?;
        scopes.push(content);
    }
    // Widest scope first: a parent's chain is a prefix of its children's.
    scopes.sort_by_key(|c| c.scope.chain().len());
    let merged = crate::content::merge(&scopes).with_context(|| {
        format!("the bundles under {} do not form one scope chain", dir.display())
    })?;
    let scratch = Scratch(std::env::temp_dir().join(format!(
        "kiosk-search-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )));
    let index = scratch.0.join("index");
    std::fs::create_dir_all(&index).with_context(|| format!("creating {}", index.display()))?;
    build_index(&index, &merged)?;
    eprintln!(
        "searching {} scope bundle(s) under {} (blobs checked; signatures not checked against a pinned root)",
        scopes.len(),
        dir.display()
    );
    Ok((scratch, index))
}
