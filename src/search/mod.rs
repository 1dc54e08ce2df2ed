//! Chinese search over every content kind.

use std::path::Path;

use thiserror::Error;

use crate::config::Config;
use crate::content::Merged;

#[derive(Debug, Error)]
pub enum SearchError {
    #[error("not implemented yet")]
    Todo,
}

/// Builds the search index for `merged` into the empty directory `dir`.
pub fn build_index(_dir: &Path, _merged: &Merged) -> Result<(), SearchError> {
    Err(SearchError::Todo)
}

pub fn cli(_config: &Config, _content: Option<&Path>, _json: bool, _limit: usize, _query: &str) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
