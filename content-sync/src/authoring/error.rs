//! What can be wrong with an authoring source, said so that an admin can fix it: every
//! error names the file (relative to the source folder), the line or the spreadsheet row
//! when there is one, and what to do.

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

/// Where in a file a problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum At {
    /// A 1-based line of a text file (Markdown, TOML).
    Line(usize),
    /// A row as the admin sees it in Excel (1-based, counting title and header rows), on a
    /// named sheet for workbooks.
    Row { sheet: Option<String>, row: usize },
    /// A sheet of a workbook as a whole.
    Sheet(String),
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::Line(n) => write!(f, "line {n}"),
            At::Row { sheet: Some(s), row } => write!(f, "sheet “{s}”, row {row}"),
            At::Row { sheet: None, row } => write!(f, "row {row}"),
            At::Sheet(s) => write!(f, "sheet “{s}”"),
        }
    }
}

/// What is wrong. Callers (and tests) branch on this; the text is for the admin.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SourceErrorKind {
    #[error("cannot read it: {0}")]
    Io(String),
    #[error("malformed front matter: {0}. A Markdown document starts with a `---` line, YAML metadata (id, kind, title, …), and a closing `---` line (or `+++` … `+++` around TOML)")]
    FrontMatter(String),
    #[error("not a Word .docx file ({0}): open it in Word or WPS and save it as “Word 文档 (*.docx)”; old .doc files cannot be read")]
    NotDocx(String),
    #[error("the header row has no column “{column}” (columns found: {found}): add it, named as in the official 政务公开事项标准目录")]
    MissingColumn { column: String, found: String },
    #[error("公开内容（要素） is empty: every catalogue row must say what is published; fill it in or delete the row")]
    EmptyContent,
    #[error("item id “{id}” is used twice, here and in {other}: give one of them another id")]
    DuplicateId { id: String, other: String },
    #[error("unknown 领域 “{domain}”: use one of {}", kiosk::content::DOMAINS.join("、"))]
    UnknownDomain { domain: String },
    #[error("“{from}” links to “{target}”, which is not an item of this source{}: fix the id or add the item", if *.searched_parents { " or of its link_sources" } else { "" })]
    BrokenLink { from: String, target: String, searched_parents: bool },
    #[error("“{path}” points outside the source folder: name files inside it (attachments go in files/, without `..` and not through a symbolic link to elsewhere)")]
    EscapesFolder { path: String },
    #[error("{0}")]
    Invalid(String),
}

/// One problem in one place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceError {
    /// The file, relative to the source folder.
    pub file: PathBuf,
    pub at: Option<At>,
    pub kind: SourceErrorKind,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some(at) => write!(f, "{}, {at}: {}", self.file.display(), self.kind),
            None => write!(f, "{}: {}", self.file.display(), self.kind),
        }
    }
}

impl std::error::Error for SourceError {}

/// Every problem found in a source folder. Loading collects them all, so an admin fixes
/// a folder in one round; nothing is built while there is any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceErrors(pub Vec<SourceError>);

impl SourceErrors {
    pub fn iter(&self) -> impl Iterator<Item = &SourceError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for SourceErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "{n} problem{} in the source folder; nothing was built:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SourceErrors {}
