//! Chinese search over every content kind.

use std::path::Path;

use crate::config::Config;

pub fn cli(_config: &Config, _content: Option<&Path>, _json: bool, _limit: usize, _query: &str) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
