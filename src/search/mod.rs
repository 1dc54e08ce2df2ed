//! Chinese search over every content kind.
//!
//! Residents type two or three characters, pinyin or initials on a touch keyboard. The
//! index guarantees recall: every item whose normalised text contains the normalised query
//! is found, because text is indexed as overlapping character bigrams (plus single
//! characters for one-character queries) and a query becomes the phrase of its bigrams.
//! Titles and key terms also carry pinyin and initials; the content's synonym groups are
//! applied at query time. Ranking puts exact title matches first, then title matches, then
//! text matches, documents in force above repealed ones, newer above older.
//!
//! - [`normalize`]: NFKC, full-width → half-width, traditional → simplified, lowercase,
//!   brackets dropped.
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
    let dir = match content {
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
