//! The SQLite store of one content version: its schema and migrations, the one-time
//! write at activation, and the read-only queries the UI needs.
//!
//! A content version is immutable (see ARCHITECTURE.md), so the database is written once
//! by [`write_db`] into the new version directory and then only read, through [`Store`],
//! which opens it read-only, `query_only` and immutable. Query results are plain Rust
//! types; the UI adapters turn them into Slint models.

mod query;
mod schema;
mod summary;
mod write;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use thiserror::Error;

use crate::content::Merged;

pub use query::{
    CatalogDomain, CatalogLevel1, CatalogLevel2, DomainCount, ItemDetail, ListQuery, Page,
    MAX_PAGE, NO_DOMAIN_LABEL,
};
pub use schema::CURRENT_VERSION as SCHEMA_VERSION;
pub use summary::{chinese_date, ItemSummary};
pub use write::write_db;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("content database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("content database {} already exists: a content version's database is written once, into a new version directory", path.display())]
    Exists { path: PathBuf },
    #[error("content database {} has schema version {found}, but this kiosk reads version {expected}: rebuild the content version from its bundle", path.display())]
    SchemaMismatch { path: PathBuf, found: u32, expected: u32 },
    #[error("content database holds an unreadable {what}: {detail}; the content version is damaged, roll back to the previous one")]
    Corrupt { what: String, detail: String },
    #[error("content database: cannot encode {what}: {source}")]
    Json { what: String, source: serde_json::Error },
    #[error("writing content database {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// A read-only connection to one content version's database.
///
/// Not `Sync`: each thread that reads (the UI thread, the search worker) opens its own.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens the database of an activated content version for reading.
    ///
    /// The file is opened `immutable=1`: SQLite then takes no locks and never creates a
    /// `-wal`, `-shm` or `-journal` file, which is right for a version directory that never
    /// changes. `query_only` makes any write a bug that fails loudly.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let text = path.to_str().ok_or_else(|| StoreError::Corrupt {
            what: "path".into(),
            detail: format!("{} is not UTF-8", path.display()),
        })?;
        let uri = format!("file:{}?immutable=1", uri_escape(text));
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(uri, flags)?;
        Store::ready(conn, path)
    }

    /// Builds a store in memory from `merged`, for tests and previews that have no
    /// version directory.
    pub fn in_memory(merged: &Merged) -> Result<Store, StoreError> {
        let mut conn = Connection::open_in_memory()?;
        write::populate(&mut conn, merged)?;
        Store::ready(conn, Path::new(":memory:"))
    }

    fn ready(conn: Connection, path: &Path) -> Result<Store, StoreError> {
        conn.pragma_update(None, "query_only", true)?;
        let found = schema::user_version(&conn)?;
        if found != schema::CURRENT_VERSION {
            return Err(StoreError::SchemaMismatch {
                path: path.to_path_buf(),
                found,
                expected: schema::CURRENT_VERSION,
            });
        }
        Ok(Store { conn })
    }
}

/// Brings a writable copy of an older content database up to [`SCHEMA_VERSION`], for a
/// kiosk update that keeps its content: copy the file into the new version directory,
/// upgrade the copy, activate. Returns how many steps ran.
pub fn upgrade(path: &Path) -> Result<u32, StoreError> {
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let found = schema::user_version(&conn)?;
    if found > schema::CURRENT_VERSION {
        return Err(StoreError::SchemaMismatch {
            path: path.to_path_buf(),
            found,
            expected: schema::CURRENT_VERSION,
        });
    }
    let ran = schema::apply(&mut conn, schema::MIGRATIONS)?;
    conn.close().map_err(|(_, e)| e)?;
    Ok(ran)
}

/// Escapes the characters that would end or change the path part of an SQLite URI.
fn uri_escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for ch in path.chars() {
        match ch {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_escape_keeps_odd_paths_intact() {
        assert_eq!(uri_escape("/data/v 1/100%?#.db"), "/data/v 1/100%25%3f%23.db");
    }
}
