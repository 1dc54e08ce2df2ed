//! Bundles and trust: the signed format, verification, key rotation and activation.

pub mod format;

use std::path::{Path, PathBuf};

use crate::config::Config;

/// The content version a kiosk is serving.
pub struct ContentVersion {
    pub dir: PathBuf,
}

impl ContentVersion {
    pub fn calendar(&self) -> anyhow::Result<crate::content::Calendar> {
        anyhow::bail!("not implemented yet")
    }
}

pub fn install_dir(_config: &Config, _bundle: &Path) -> anyhow::Result<String> {
    anyhow::bail!("not implemented yet")
}

pub fn open_installed(_config: &Config) -> anyhow::Result<ContentVersion> {
    anyhow::bail!("not implemented yet")
}
