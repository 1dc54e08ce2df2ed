//! A source folder → one scope's content. See `demo/README.md` for the layout admins use:
//!
//! ```text
//! SOURCE/
//!   bundle.toml        scope, version, validity (created/expires or valid_days), options
//!   documents/         *.md (front matter) and *.docx (+ same-name .toml sidecar): 政策文件,
//!                      政策解读, 通知公告, 政府公报; subfolders allowed
//!   catalog/           *.xlsx / *.csv: the 公开目录 in the official columns
//!   guides/            *.toml: one 办事指南 per file
//!   faqs.toml notices.toml qr.toml offices.toml gazettes.toml   lists of [[faq]], [[notice]], …
//!   branding.toml functions.toml device.toml calendar.toml synonyms.toml removed.toml
//!   files/             attachments, logos, gazette PDFs referred to by the above
//! ```
//!
//! Loading is strict and collects every problem before answering, so an admin sees all of
//! them at once; nothing is returned while there is any.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use indicatif::ProgressBar;
use kiosk::bundle::format::{is_safe_path, paths};
use kiosk::content::{
    is_known_domain, Body, Branding, Calendar, DeviceSettings, Function, Functions, Item, Kind,
    ScopeCode, ScopeContent, SynonymGroup, DOMAINS,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::catalog;
use super::docx::read_docx;
use super::error::{At, SourceError, SourceErrorKind, SourceErrors};
use super::kinds::{self, DocMeta};
use super::markdown::{self, line_of};
use super::value::{field_in_error, find_key_line, parse_date, toml_to_json, Instant, Text};

/// What `bundle.toml` says.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceSettings {
    pub scope: ScopeCode,
    /// The bundle version to build (the command line may raise it).
    pub version: u64,
    /// Fixed creation time, for reproducible builds; `None` means the time of the build.
    pub created: Option<DateTime<Utc>>,
    /// Fixed expiry; `None` means `created + valid_days`.
    pub expires: Option<DateTime<Utc>>,
    pub valid_days: u32,
    /// Whether catalogue rows are the city's 统一公开内容 baseline.
    pub baseline_catalog: bool,
    /// Source folders of wider scopes whose items this one may link to.
    pub link_sources: Vec<PathBuf>,
}

impl SourceSettings {
    /// The creation and expiry times of a build at `now`.
    pub fn validity(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let created = self.created.unwrap_or(now);
        let expires = self.expires.unwrap_or(created + Duration::days(i64::from(self.valid_days)));
        (created, expires)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleToml {
    scope: Text,
    #[serde(default = "one")]
    version: u64,
    #[serde(default)]
    created: Option<Instant>,
    #[serde(default)]
    expires: Option<Instant>,
    #[serde(default = "default_valid_days")]
    valid_days: u32,
    #[serde(default)]
    baseline_catalog: bool,
    #[serde(default)]
    link_sources: Vec<String>,
}

fn one() -> u64 {
    1
}

fn default_valid_days() -> u32 {
    365
}

const TOP_LEVEL: &[&str] = &[
    "bundle.toml",
    "documents",
    "catalog",
    "guides",
    "faqs.toml",
    "notices.toml",
    "qr.toml",
    "offices.toml",
    "gazettes.toml",
    "branding.toml",
    "functions.toml",
    "device.toml",
    "calendar.toml",
    "synonyms.toml",
    "removed.toml",
    "files",
];

/// One scope's content and the files it refers to, as (`files/<name>`, bytes) sorted by name.
pub type Loaded = (ScopeContent, Vec<(String, Vec<u8>)>);

/// Reads only `bundle.toml` of a source folder.
pub fn load_settings(dir: &Path) -> Result<SourceSettings, SourceErrors> {
    let mut l = Loader::new(dir)?;
    let settings = l.settings();
    match (settings, l.errors.is_empty()) {
        (Some(s), true) => Ok(s),
        _ => Err(SourceErrors(l.errors)),
    }
}

/// Reads a source folder into one scope's content and the files it refers to, as
/// (`files/<name>`, bytes) sorted by name. Every problem is collected; any problem means
/// `Err` with all of them.
pub fn load_source(dir: &Path) -> Result<Loaded, SourceErrors> {
    load_source_with_progress(dir, &ProgressBar::hidden())
}

/// [`load_source`], advancing `progress` by one for each document and catalogue file.
pub fn load_source_with_progress(
    dir: &Path,
    progress: &ProgressBar,
) -> Result<Loaded, SourceErrors> {
    load_depth(dir, progress, 0)
}

fn load_depth(dir: &Path, progress: &ProgressBar, depth: usize) -> Result<Loaded, SourceErrors> {
    let mut l = Loader::new(dir)?;
    l.check_top_level();
    let settings = l.settings();
    let Some(settings) = settings else { return Err(SourceErrors(l.errors)) };
    let parent_ids = l.parent_ids(&settings, depth);
    let mut content = ScopeContent { scope: settings.scope.clone(), ..ScopeContent::default() };

    let documents = l.list("documents");
    let catalogs = l.list("catalog");
    let guides = l.list("guides");
    progress.set_length((documents.len() + catalogs.len() + guides.len()) as u64);
    l.documents(&documents, progress);
    l.catalogs(&catalogs, &settings, progress);
    for g in &guides {
        l.guide(g);
        progress.inc(1);
    }
    l.list_file("faqs.toml", "faq", |v: kinds::FaqIn| v.into_item());
    l.list_file("notices.toml", "notice", |v: kinds::NoticeIn| v.into_item());
    l.list_file("qr.toml", "qr", |v: kinds::QrIn| v.into_item());
    l.list_file("offices.toml", "office", |v: kinds::OfficeIn| v.into_item());
    l.list_file("gazettes.toml", "gazette", |v: kinds::GazetteIn| v.into_item());
    content.branding = l.branding();
    content.functions = l.functions();
    content.device = l.device();
    content.calendar = l.calendar();
    content.synonyms = l.synonyms();
    content.removed = l.removed();

    l.check_items(&parent_ids, !settings.link_sources.is_empty());
    let mut files = BTreeMap::new();
    l.resolve_files(&mut content, &mut files);
    if !l.errors.is_empty() {
        return Err(SourceErrors(l.errors));
    }
    let mut items: Vec<Item> = l.items.into_iter().map(|(i, _)| i).collect();
    items.sort_by(|a, b| a.id.cmp(&b.id));
    content.items = items;
    Ok((content, files.into_iter().collect()))
}

/// Where an item was defined, for duplicate and link errors.
#[derive(Clone, Debug)]
struct Origin {
    file: PathBuf,
    at: Option<At>,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.at {
            Some(at) => write!(f, "{}, {at}", self.file.display()),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

struct Loader {
    root: PathBuf,
    canon: PathBuf,
    errors: Vec<SourceError>,
    items: Vec<(Item, Origin)>,
    /// Where each file reference (attachment, logo, gazette file) was written.
    file_refs: HashMap<String, Origin>,
}

impl Loader {
    fn new(dir: &Path) -> Result<Loader, SourceErrors> {
        let canon = dir.canonicalize().map_err(|e| {
            SourceErrors(vec![SourceError {
                file: dir.to_path_buf(),
                at: None,
                kind: SourceErrorKind::Io(format!("{e}: give the path of a source folder")),
            }])
        })?;
        Ok(Loader {
            root: dir.to_path_buf(),
            canon,
            errors: Vec::new(),
            items: Vec::new(),
            file_refs: HashMap::new(),
        })
    }

    fn err(&mut self, file: impl Into<PathBuf>, at: Option<At>, kind: SourceErrorKind) {
        self.errors.push(SourceError { file: file.into(), at, kind });
    }

    fn invalid(&mut self, file: impl Into<PathBuf>, at: Option<At>, msg: impl Into<String>) {
        self.err(file, at, SourceErrorKind::Invalid(msg.into()));
    }

    /// Whether `rel` stays inside the source folder once symbolic links are followed.
    fn inside(&mut self, rel: &Path) -> bool {
        match self.root.join(rel).canonicalize() {
            Ok(real) if real.starts_with(&self.canon) => true,
            Ok(_) => {
                self.err(
                    rel,
                    None,
                    SourceErrorKind::EscapesFolder { path: rel.display().to_string() },
                );
                false
            }
            Err(e) => {
                self.err(rel, None, SourceErrorKind::Io(e.to_string()));
                false
            }
        }
    }

    fn read(&mut self, rel: &Path) -> Option<Vec<u8>> {
        if !self.inside(rel) {
            return None;
        }
        match std::fs::read(self.root.join(rel)) {
            Ok(b) => Some(b),
            Err(e) => {
                self.err(rel, None, SourceErrorKind::Io(e.to_string()));
                None
            }
        }
    }

    fn read_text(&mut self, rel: &Path) -> Option<String> {
        let bytes = self.read(rel)?;
        match String::from_utf8(bytes) {
            Ok(s) => Some(s.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(s)),
            Err(e) => {
                let line = line_of(
                    &String::from_utf8_lossy(&e.as_bytes()[..e.utf8_error().valid_up_to()]),
                    usize::MAX,
                ) + 1;
                self.invalid(
                    rel,
                    Some(At::Line(line)),
                    "this is not UTF-8 text: save the file as UTF-8",
                );
                None
            }
        }
    }

    /// Whether an optional top-level file exists.
    fn exists(&self, rel: &str) -> bool {
        self.root.join(rel).symlink_metadata().is_ok()
    }

    /// The files under a folder (recursively), relative to the source, sorted; hidden files
    /// and Office lock files (`~$…`) are skipped.
    fn list(&mut self, folder: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![PathBuf::from(folder)];
        if !self.exists(folder) {
            return out;
        }
        while let Some(rel) = stack.pop() {
            if !self.inside(&rel) {
                continue;
            }
            let entries = match std::fs::read_dir(self.root.join(&rel)) {
                Ok(e) => e,
                Err(e) => {
                    self.err(&rel, None, SourceErrorKind::Io(e.to_string()));
                    continue;
                }
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                if name.starts_with('.') || name.starts_with("~$") {
                    continue;
                }
                let child = rel.join(&name);
                if entry.path().is_dir() {
                    stack.push(child);
                } else {
                    out.push(child);
                }
            }
        }
        out.sort();
        out
    }

    fn check_top_level(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.root) else { return };
        let mut unknown: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| {
                !n.starts_with('.')
                    && !n.to_lowercase().starts_with("readme")
                    && !TOP_LEVEL.contains(&n.as_str())
            })
            .collect();
        unknown.sort();
        for name in unknown {
            self.invalid(
                name,
                None,
                format!(
                    "not a part of a source folder (misspelt?): the folder holds {}",
                    TOP_LEVEL.join(", ")
                ),
            );
        }
    }

    /// Parses a TOML file, reporting syntax errors with their line.
    fn toml(&mut self, rel: &Path, text: &str) -> Option<toml::Table> {
        match toml::from_str::<toml::Table>(text) {
            Ok(t) => Some(t),
            Err(e) => {
                let at = e.span().map(|s| At::Line(line_of(text, s.start) + 1));
                self.invalid(rel, at, format!("TOML syntax: {}", e.message().trim()));
                None
            }
        }
    }

    /// Deserializes a value read from `text`, pointing at the line of the field an error
    /// names, searched between lines `from` and `to`.
    fn typed<T: DeserializeOwned>(
        &mut self,
        rel: &Path,
        text: &str,
        (from, to): (usize, usize),
        value: serde_json::Value,
    ) -> Option<T> {
        match serde_json::from_value::<T>(value) {
            Ok(v) => Some(v),
            Err(e) => {
                let msg = e.to_string();
                let line = field_in_error(&msg)
                    .and_then(|f| find_key_line(text, from, to, f))
                    .unwrap_or(from);
                self.invalid(rel, Some(At::Line(line)), msg);
                None
            }
        }
    }

    fn settings(&mut self) -> Option<SourceSettings> {
        let rel = Path::new("bundle.toml");
        if !self.exists("bundle.toml") {
            self.invalid(
                rel,
                None,
                "missing: every source folder has a bundle.toml with at least `scope = \"430182\"`",
            );
            return None;
        }
        let text = self.read_text(rel)?;
        let table = self.toml(rel, &text)?;
        let lines = text.lines().count().max(1);
        let b: BundleToml =
            self.typed(rel, &text, (1, lines), toml_to_json(toml::Value::Table(table)))?;
        let scope = match ScopeCode::parse(&b.scope.0) {
            Ok(s) => s,
            Err(e) => {
                let line = find_key_line(&text, 1, lines, "scope");
                self.invalid(rel, line.map(At::Line), e.to_string());
                return None;
            }
        };
        if let (Some(c), Some(x)) = (b.created, b.expires) {
            if x.0 <= c.0 {
                self.invalid(
                    rel,
                    find_key_line(&text, 1, lines, "expires").map(At::Line),
                    "expires is not after created",
                );
            }
        }
        Some(SourceSettings {
            scope,
            version: b.version,
            created: b.created.map(|i| i.0),
            expires: b.expires.map(|i| i.0),
            valid_days: b.valid_days,
            baseline_catalog: b.baseline_catalog,
            link_sources: b.link_sources.iter().map(PathBuf::from).collect(),
        })
    }

    /// The item ids of the `link_sources` folders, which this source may link to.
    fn parent_ids(&mut self, settings: &SourceSettings, depth: usize) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        for rel in &settings.link_sources {
            let dir = self.root.join(rel);
            if depth > 8 {
                self.invalid("bundle.toml", None, "link_sources go round in a circle");
                break;
            }
            match load_depth(&dir, &ProgressBar::hidden(), depth + 1) {
                Ok((content, _)) => ids.extend(content.items.into_iter().map(|i| i.id)),
                Err(errors) => self.invalid(
                    "bundle.toml",
                    None,
                    format!(
                        "link_sources “{}” has {} problem(s) of its own (first: {}): fix that folder first",
                        rel.display(),
                        errors.len(),
                        errors.0.first().map(|e| e.to_string()).unwrap_or_default()
                    ),
                ),
            }
        }
        ids
    }

    fn push_item(&mut self, item: Item, file: &Path, at: Option<At>) {
        self.items.push((item, Origin { file: file.to_path_buf(), at }));
    }

    fn documents(&mut self, files: &[PathBuf], progress: &ProgressBar) {
        let docx_stems: BTreeSet<PathBuf> =
            files.iter().filter(|f| ext(f) == "docx").map(|f| f.with_extension("")).collect();
        for rel in files {
            match ext(rel).as_str() {
                "md" | "markdown" => self.markdown(rel),
                "docx" => self.docx(rel),
                "toml" if docx_stems.contains(&rel.with_extension("")) => {}
                "toml" => self.invalid(rel, None, "a metadata sidecar without a .docx of the same name: rename it to match its document, or delete it"),
                "doc" | "wps" => self.err(rel, None, SourceErrorKind::NotDocx("an old .doc/.wps file".into())),
                _ => self.invalid(rel, None, "documents/ holds .md and .docx files (and .toml sidecars): move other files to files/"),
            }
            progress.inc(1);
        }
    }

    fn markdown(&mut self, rel: &Path) {
        let Some(text) = self.read_text(rel) else { return };
        let split = match markdown::split_front_matter(&text) {
            Ok(s) => s,
            Err((line, kind)) => return self.err(rel, Some(At::Line(line)), kind),
        };
        let fm_lines = text.len() - split.body.len();
        let fm_end = line_of(&text, fm_lines);
        let Some(meta) =
            self.typed::<DocMeta>(rel, &text, (split.meta_first_line, fm_end), split.meta)
        else {
            return;
        };
        let body = markdown::parse_body(split.body);
        let list = markdown::list_items(split.body);
        match kinds::document_item(meta, body, list) {
            Ok(item) => self.push_item(item, rel, Some(At::Line(1))),
            Err(msg) => self.err(rel, Some(At::Line(1)), SourceErrorKind::FrontMatter(msg)),
        }
    }

    fn docx(&mut self, rel: &Path) {
        let Some(bytes) = self.read(rel) else { return };
        let doc = match read_docx(&bytes) {
            Ok(d) => d,
            Err(why) => return self.err(rel, None, SourceErrorKind::NotDocx(why)),
        };
        let sidecar = rel.with_extension("toml");
        let meta = if self.exists(&sidecar.to_string_lossy()) {
            let Some(text) = self.read_text(&sidecar) else { return };
            let Some(table) = self.toml(&sidecar, &text) else { return };
            let lines = text.lines().count().max(1);
            let Some(meta) = self.typed::<DocMeta>(
                &sidecar,
                &text,
                (1, lines),
                toml_to_json(toml::Value::Table(table)),
            ) else {
                return;
            };
            meta
        } else {
            let stem = rel.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
            let title = doc.core.title.clone().or_else(|| {
                doc.blocks.iter().find_map(|b| match b {
                    kiosk::content::Block::Heading { text, .. } => Some(text.clone()),
                    _ => None,
                })
            });
            let (Some(title), Some(issuer)) = (title, doc.core.creator.clone()) else {
                return self.invalid(
                    rel,
                    None,
                    format!(
                        "no metadata: add {} with id, kind, title, issuer (发文机关) …, or fill 标题 and 作者 in Word's file properties",
                        sidecar.display()
                    ),
                );
            };
            DocMeta {
                id: Text(stem),
                kind: "policy".into(),
                title,
                issuer: Some(issuer),
                topics: super::value::Texts(doc.core.subject.clone().into_iter().collect()),
                keywords: super::value::Texts(
                    doc.core
                        .keywords
                        .clone()
                        .map(|k| {
                            k.split([',', '，', '、', ';', ' '])
                                .filter(|s| !s.is_empty())
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
                ..DocMeta::default()
            }
        };
        match kinds::document_item(meta, doc.blocks, Vec::new()) {
            Ok(item) => self.push_item(item, rel, None),
            Err(msg) => self.invalid(
                if self.exists(&sidecar.to_string_lossy()) { sidecar } else { rel.to_path_buf() },
                None,
                msg,
            ),
        }
    }

    fn catalogs(&mut self, files: &[PathBuf], settings: &SourceSettings, progress: &ProgressBar) {
        for rel in files {
            progress.inc(1);
            let Some(bytes) = self.read(rel) else { continue };
            let stem = rel.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
            let file_domain = catalog::domain_in(&stem);
            let grids = match ext(rel).as_str() {
                "xlsx" | "xlsm" => match catalog::read_xlsx(&bytes) {
                    Ok(g) => g,
                    Err(why) => {
                        self.invalid(
                            rel,
                            None,
                            format!("{why}: save it from Excel or WPS as .xlsx"),
                        );
                        continue;
                    }
                },
                "csv" => match catalog::read_csv(&bytes) {
                    Ok(g) => vec![g],
                    Err(why) => {
                        self.invalid(rel, None, why);
                        continue;
                    }
                },
                "xls" => {
                    self.invalid(rel, None, "an old .xls workbook: save it as .xlsx");
                    continue;
                }
                _ => {
                    self.invalid(rel, None, "catalog/ holds .xlsx and .csv files only");
                    continue;
                }
            };
            // A workbook's other sheets (说明, 填表要求) are skipped; a catalogue file with no
            // catalogue at all is an error.
            let with_header: Vec<&catalog::Grid> =
                grids.iter().filter(|g| catalog::has_header(g)).collect();
            let to_parse: Vec<&catalog::Grid> =
                if with_header.is_empty() { grids.iter().take(1).collect() } else { with_header };
            if to_parse.is_empty() {
                self.invalid(rel, None, "the file is empty");
            }
            for grid in to_parse {
                let (rows, errors) = catalog::parse_grid(grid, file_domain);
                for (at, kind) in errors {
                    self.err(rel, at, kind);
                }
                for row in rows {
                    let id = row.id.clone().unwrap_or_else(|| {
                        let n = DOMAINS
                            .iter()
                            .position(|d| *d == row.domain)
                            .map(|i| i + 1)
                            .unwrap_or(0);
                        let serial: String = row
                            .entry
                            .serial
                            .as_deref()
                            .unwrap_or("")
                            .chars()
                            .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                            .collect();
                        let serial = if serial.is_empty() {
                            match &row.at {
                                At::Row { row, .. } => format!("r{row}"),
                                _ => "r0".into(),
                            }
                        } else {
                            serial
                        };
                        format!("cat-{}-{n:02}-{serial}", settings.scope)
                    });
                    let title = if row.entry.level2.is_empty() {
                        row.entry.level1.clone()
                    } else {
                        row.entry.level2.clone()
                    };
                    let item = Item {
                        id,
                        title,
                        domain: Some(row.domain),
                        baseline: settings.baseline_catalog,
                        links: Vec::new(),
                        url: None,
                        body: Body::Catalog(row.entry),
                    };
                    self.push_item(item, rel, Some(row.at));
                }
            }
        }
    }

    fn guide(&mut self, rel: &Path) {
        if ext(rel) != "toml" {
            return self.invalid(rel, None, "guides/ holds one .toml file per 办事指南");
        }
        let Some(text) = self.read_text(rel) else { return };
        let Some(table) = self.toml(rel, &text) else { return };
        let lines = text.lines().count().max(1);
        let Some(g) = self.typed::<kinds::GuideIn>(
            rel,
            &text,
            (1, lines),
            toml_to_json(toml::Value::Table(table)),
        ) else {
            return;
        };
        match g.into_item() {
            Ok(item) => self.push_item(item, rel, Some(At::Line(1))),
            Err(msg) => self.invalid(rel, None, msg),
        }
    }

    /// Reads a list file of `[[key]]` tables, each into an item.
    fn list_file<T: DeserializeOwned>(
        &mut self,
        name: &str,
        key: &str,
        convert: impl Fn(T) -> Result<Item, String>,
    ) {
        if !self.exists(name) {
            return;
        }
        let rel = Path::new(name);
        let Some(text) = self.read_text(rel) else { return };
        let Some(mut table) = self.toml(rel, &text) else { return };
        let entries = match table.remove(key) {
            Some(toml::Value::Array(a)) => a,
            Some(_) => {
                return self.invalid(
                    rel,
                    None,
                    format!("`{key}` must be a list of [[{key}]] tables"),
                )
            }
            None => Vec::new(),
        };
        for other in table.keys() {
            let line = find_key_line(&text, 1, usize::MAX / 2, other);
            self.invalid(
                rel,
                line.map(At::Line),
                format!("unknown key `{other}`: this file holds [[{key}]] tables only"),
            );
        }
        let starts = array_table_lines(&text, key);
        let total = text.lines().count().max(1);
        for (i, value) in entries.into_iter().enumerate() {
            let from = starts.get(i).copied().unwrap_or(1);
            let to = starts.get(i + 1).map(|n| n - 1).unwrap_or(total);
            let Some(input) = self.typed::<T>(rel, &text, (from, to), toml_to_json(value)) else {
                continue;
            };
            match convert(input) {
                Ok(item) => self.push_item(item, rel, Some(At::Line(from))),
                Err(msg) => self.invalid(rel, Some(At::Line(from)), msg),
            }
        }
    }

    /// Reads a single-table TOML file into `T`, refusing keys that `T` does not have.
    /// `optional` names `T`'s keys that a default `T` does not serialize (unset options).
    fn single<T: DeserializeOwned + serde::Serialize + Default>(
        &mut self,
        name: &str,
        optional: &[&str],
    ) -> Option<(T, String)> {
        if !self.exists(name) {
            return None;
        }
        let rel = Path::new(name);
        let text = self.read_text(rel)?;
        let table = self.toml(rel, &text)?;
        let mut known: Vec<String> = match serde_json::to_value(T::default()) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        };
        known.extend(optional.iter().map(|k| k.to_string()));
        let mut ok = true;
        for k in table.keys() {
            if !known.is_empty() && !known.contains(k) {
                ok = false;
                let line = find_key_line(&text, 1, usize::MAX / 2, k);
                self.invalid(
                    rel,
                    line.map(At::Line),
                    format!("unknown key `{k}`: known keys are {}", known.join(", ")),
                );
            }
        }
        let lines = text.lines().count().max(1);
        let v = self.typed::<T>(rel, &text, (1, lines), toml_to_json(toml::Value::Table(table)))?;
        ok.then_some((v, text))
    }

    fn branding(&mut self) -> Option<Branding> {
        let (b, text) =
            self.single::<Branding>("branding.toml", &["logo", "item_url", "tracking_url"])?;
        for (key, colour) in
            [("primary_color", &b.primary_color), ("accent_color", &b.accent_color)]
        {
            let valid = colour.len() == 7
                && colour.starts_with('#')
                && colour[1..].chars().all(|c| c.is_ascii_hexdigit());
            if !valid {
                let line = find_key_line(&text, 1, usize::MAX / 2, key);
                self.invalid(
                    "branding.toml",
                    line.map(At::Line),
                    format!("{key} “{colour}” is not a colour like #b71c1c"),
                );
            }
        }
        if b.zone_name.trim().is_empty() {
            self.invalid(
                "branding.toml",
                None,
                "zone_name is empty: write the zone's name, e.g. 宁乡市政务公开专区",
            );
        }
        for (key, url, needs) in
            [("item_url", &b.item_url, Some("{id}")), ("tracking_url", &b.tracking_url, None)]
        {
            let Some(url) = url else { continue };
            let problem = if !(url.starts_with("https://") || url.starts_with("http://")) {
                Some(format!("{key} “{url}” is not a web address starting with https://"))
            } else {
                needs.filter(|n| !url.contains(n)).map(|n| {
                    format!("{key} “{url}” has no {n}: every item would get the same address")
                })
            };
            if let Some(problem) = problem {
                let line = find_key_line(&text, 1, usize::MAX / 2, key);
                self.invalid("branding.toml", line.map(At::Line), problem);
            }
        }
        if let Some(logo) = &b.logo {
            self.file_refs
                .entry(logo.clone())
                .or_insert(Origin { file: "branding.toml".into(), at: None });
        }
        Some(b)
    }

    fn functions(&mut self) -> Option<Functions> {
        if !self.exists("functions.toml") {
            return None;
        }
        let rel = Path::new("functions.toml");
        let text = self.read_text(rel)?;
        let mut table = self.toml(rel, &text)?;
        let line = find_key_line(&text, 1, usize::MAX / 2, "enabled").map(At::Line);
        let Some(toml::Value::Array(names)) = table.remove("enabled") else {
            self.invalid(rel, line, "write `enabled = [\"policies\", \"guides\", …]` (or the Chinese names, 政策文件 …)");
            return None;
        };
        if let Some(k) = table.keys().next() {
            self.invalid(rel, None, format!("unknown key `{k}`: this file holds `enabled` only"));
        }
        let mut enabled = Vec::new();
        for n in names {
            let s = n.as_str().unwrap_or_default();
            let snake = serde_json::Value::String(s.to_string());
            let f = serde_json::from_value::<Function>(snake)
                .ok()
                .or_else(|| Function::ALL.into_iter().find(|f| f.label() == s));
            match f {
                Some(f) if !enabled.contains(&f) => enabled.push(f),
                Some(_) => self.invalid(rel, line.clone(), format!("“{s}” is listed twice")),
                None => {
                    let known: Vec<&str> = Function::ALL.iter().map(|f| f.label()).collect();
                    self.invalid(
                        rel,
                        line.clone(),
                        format!("“{s}” is not a function: use one of {}", known.join("、")),
                    );
                }
            }
        }
        Some(Functions { enabled })
    }

    fn device(&mut self) -> Option<DeviceSettings> {
        let (d, _) = self.single::<DeviceSettings>("device.toml", &[])?;
        if d.care_scale < 1.5 {
            self.invalid(
                "device.toml",
                None,
                "care_scale must be at least 1.5 (关怀模式 text must be clearly larger)",
            );
        }
        Some(d)
    }

    fn calendar(&mut self) -> Option<Calendar> {
        if !self.exists("calendar.toml") {
            return None;
        }
        let rel = Path::new("calendar.toml");
        let text = self.read_text(rel)?;
        let table = self.toml(rel, &text)?;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct CalIn {
            years: Vec<i32>,
            #[serde(default)]
            holidays: Vec<String>,
            #[serde(default)]
            workdays: Vec<String>,
            #[serde(default)]
            holiday: Vec<HolidayIn>,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct HolidayIn {
            #[allow(dead_code)] // Read so admins can name each entry; the model keeps dates only.
            name: String,
            #[serde(default)]
            off: Vec<String>,
            #[serde(default)]
            work: Vec<String>,
        }
        let lines = text.lines().count().max(1);
        let c: CalIn =
            self.typed(rel, &text, (1, lines), toml_to_json(toml::Value::Table(table)))?;
        let starts = array_table_lines(&text, "holiday");
        let mut holidays = BTreeSet::new();
        let mut workdays = BTreeSet::new();
        let mut groups: Vec<(Option<usize>, Vec<String>, Vec<String>)> =
            vec![(None, c.holidays, c.workdays)];
        for (i, h) in c.holiday.into_iter().enumerate() {
            groups.push((starts.get(i).copied(), h.off, h.work));
        }
        for (line, off, work) in groups {
            let at = line.map(At::Line);
            for spec in off {
                match expand_dates(&spec) {
                    Ok(days) => holidays.extend(days),
                    Err(msg) => self.invalid(rel, at.clone(), msg),
                }
            }
            for spec in work {
                match expand_dates(&spec) {
                    Ok(days) => {
                        for d in days {
                            if !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
                                self.invalid(rel, at.clone(), format!("{d} is a {:?}, not a weekend day: a 调休 make-up working day is a Saturday or Sunday", d.weekday()));
                            }
                            workdays.insert(d);
                        }
                    }
                    Err(msg) => self.invalid(rel, at.clone(), msg),
                }
            }
        }
        for d in holidays.iter().chain(workdays.iter()) {
            if !c.years.contains(&d.year()) {
                self.invalid(
                    rel,
                    None,
                    format!("{d} is outside `years` {:?}: add its year or fix the date", c.years),
                );
            }
        }
        for d in holidays.intersection(&workdays) {
            self.invalid(
                rel,
                None,
                format!("{d} is listed both as a holiday and as a make-up working day"),
            );
        }
        let mut years = c.years;
        years.sort_unstable();
        years.dedup();
        Some(Calendar {
            years,
            holidays: holidays.into_iter().collect(),
            workdays: workdays.into_iter().collect(),
        })
    }

    fn synonyms(&mut self) -> Vec<SynonymGroup> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct SynIn {
            groups: Vec<Vec<String>>,
        }
        let Some(s) = self.simple::<SynIn>("synonyms.toml") else { return Vec::new() };
        let mut out = Vec::new();
        for terms in s.groups {
            if terms.len() < 2 {
                self.invalid(
                    "synonyms.toml",
                    None,
                    format!("the group {terms:?} has fewer than two words"),
                );
            }
            out.push(SynonymGroup { terms });
        }
        out
    }

    fn removed(&mut self) -> Vec<String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RemovedIn {
            ids: Vec<String>,
        }
        self.simple::<RemovedIn>("removed.toml").map(|r| r.ids).unwrap_or_default()
    }

    fn simple<T: DeserializeOwned>(&mut self, name: &str) -> Option<T> {
        if !self.exists(name) {
            return None;
        }
        let rel = Path::new(name);
        let text = self.read_text(rel)?;
        let table = self.toml(rel, &text)?;
        let lines = text.lines().count().max(1);
        self.typed(rel, &text, (1, lines), toml_to_json(toml::Value::Table(table)))
    }

    /// Ids, duplicates, 领域 and links.
    fn check_items(&mut self, parent_ids: &BTreeSet<String>, has_parents: bool) {
        let mut first: HashMap<String, Origin> = HashMap::new();
        let mut problems: Vec<SourceError> = Vec::new();
        for (item, origin) in &self.items {
            let mut report = |kind: SourceErrorKind| {
                problems.push(SourceError {
                    file: origin.file.clone(),
                    at: origin.at.clone(),
                    kind,
                })
            };
            if !valid_id(&item.id) {
                report(SourceErrorKind::Invalid(format!(
                    "item id “{}” cannot be used: ids are short names of letters, digits, “-”, “_” and “.” (Chinese allowed), without “/” or spaces",
                    item.id
                )));
            }
            if item.title.trim().is_empty() {
                report(SourceErrorKind::Invalid(format!("item “{}” has an empty title", item.id)));
            }
            match first.get(&item.id) {
                Some(other) => report(SourceErrorKind::DuplicateId {
                    id: item.id.clone(),
                    other: other.to_string(),
                }),
                None => {
                    first.insert(item.id.clone(), origin.clone());
                }
            }
            if let Some(url) = &item.url {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    report(SourceErrorKind::Invalid(format!(
                        "url “{url}” is not a web address: write it in full, starting with https://"
                    )));
                }
            }
            if let Some(d) = &item.domain {
                if !is_known_domain(d) {
                    report(SourceErrorKind::UnknownDomain { domain: d.clone() });
                }
            }
        }
        for (item, origin) in &self.items {
            let mut targets: Vec<&String> = item.links.iter().collect();
            if let Body::Interpretation(i) = &item.body {
                targets.push(&i.policy);
            }
            for t in targets {
                if !first.contains_key(t) && !parent_ids.contains(t) {
                    problems.push(SourceError {
                        file: origin.file.clone(),
                        at: origin.at.clone(),
                        kind: SourceErrorKind::BrokenLink {
                            from: item.id.clone(),
                            target: t.clone(),
                            searched_parents: has_parents,
                        },
                    });
                }
            }
            if let Body::Interpretation(i) = &item.body {
                let target_kind =
                    self.items.iter().find(|(o, _)| o.id == i.policy).map(|(o, _)| o.kind());
                if let Some(k) = target_kind.filter(|k| *k != Kind::Policy) {
                    problems.push(SourceError {
                        file: origin.file.clone(),
                        at: origin.at.clone(),
                        kind: SourceErrorKind::Invalid(format!(
                            "policy “{}” is a {}, not a 政策文件",
                            i.policy,
                            k.label()
                        )),
                    });
                }
            }
        }
        self.errors.extend(problems);
    }

    /// Checks every file reference, reads the files, and rewrites references to their bundle
    /// path `files/<name>`.
    fn resolve_files(&mut self, content: &mut ScopeContent, files: &mut BTreeMap<String, Vec<u8>>) {
        let mut refs: Vec<(String, Origin)> = Vec::new();
        for (item, origin) in &self.items {
            match &item.body {
                Body::Policy(p) => {
                    refs.extend(p.attachments.iter().map(|a| (a.path.clone(), origin.clone())))
                }
                Body::Gazette(g) => refs.extend(g.file.iter().map(|f| (f.clone(), origin.clone()))),
                _ => {}
            }
        }
        refs.extend(self.file_refs.drain());
        let mut resolved: HashMap<String, String> = HashMap::new();
        for (written, origin) in refs {
            if resolved.contains_key(&written) {
                continue;
            }
            let name = written.strip_prefix(paths::FILES_PREFIX).unwrap_or(&written).to_string();
            let rel = Path::new("files").join(&name);
            let escapes = !is_safe_path(&name)
                || rel.components().any(|c| matches!(c, Component::ParentDir | Component::RootDir));
            if escapes {
                self.err(
                    origin.file.clone(),
                    origin.at.clone(),
                    SourceErrorKind::EscapesFolder { path: written.clone() },
                );
                continue;
            }
            if !self.exists(&rel.to_string_lossy()) {
                self.invalid(
                    origin.file.clone(),
                    origin.at.clone(),
                    format!("“{written}” is not in files/: put the file there or fix the name"),
                );
                continue;
            }
            let before = self.errors.len();
            let Some(bytes) = self.read(&rel) else {
                // Point the admin at the reference too, not only at the file.
                if let Some(e) = self.errors.get_mut(before) {
                    e.file = origin.file.clone();
                    e.at = origin.at.clone();
                }
                continue;
            };
            let path = format!("{}{name}", paths::FILES_PREFIX);
            files.insert(path.clone(), bytes);
            resolved.insert(written, path);
        }
        let fix = |p: &mut String| {
            if let Some(r) = resolved.get(p.as_str()) {
                p.clone_from(r);
            }
        };
        for (item, _) in &mut self.items {
            match &mut item.body {
                Body::Policy(p) => p.attachments.iter_mut().for_each(|a| fix(&mut a.path)),
                Body::Gazette(g) => g.file.iter_mut().for_each(fix),
                _ => {}
            }
        }
        if let Some(logo) = content.branding.as_mut().and_then(|b| b.logo.as_mut()) {
            fix(logo);
        }
    }
}

fn ext(p: &Path) -> String {
    p.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default()
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.chars().count() <= 80
        && !id.starts_with('.')
        && id.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && is_safe_path(&paths::item(id))
}

/// The 1-based lines of each `[[key]]` header, in order.
fn array_table_lines(text: &str, key: &str) -> Vec<usize> {
    let header = format!("[[{key}]]");
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.trim();
            l == header
                || l.strip_prefix(&header).is_some_and(|rest| rest.trim_start().starts_with('#'))
        })
        .map(|(i, _)| i + 1)
        .collect()
}

/// `2024-10-01` or a range `2024-10-01..2024-10-07` (both ends included).
fn expand_dates(spec: &str) -> Result<Vec<NaiveDate>, String> {
    let bad = || format!("“{spec}” is not a date or a range like 2024-10-01..2024-10-07");
    match spec.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (parse_date(a).ok_or_else(bad)?, parse_date(b).ok_or_else(bad)?);
            if b < a || (b - a).num_days() > 40 {
                return Err(format!(
                    "“{spec}”: the range runs backwards or is longer than 40 days"
                ));
            }
            Ok(a.iter_days().take_while(|d| *d <= b).collect())
        }
        None => Ok(vec![parse_date(spec).ok_or_else(bad)?]),
    }
}
