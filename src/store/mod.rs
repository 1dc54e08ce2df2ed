//! The SQLite store of one content version.

use std::path::Path;

use thiserror::Error;

use crate::content::Merged;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("content database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("not implemented yet")]
    Todo,
}

/// Writes a new content database for `merged` at `path` (which must not exist yet).
pub fn write_db(_path: &Path, _merged: &Merged) -> Result<(), StoreError> {
    Err(StoreError::Todo)
}
