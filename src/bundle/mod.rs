//! Bundles and trust: the signed format, verification, key rotation and activation.

pub mod format;
pub mod verify;
pub mod write;

pub use verify::{
    verify_blob_bytes, verify_blob_file, verify_blob_stream, verify_initial_root, verify_manifest,
    verify_rotation, BlobCheck, Limits, Policy, VerifyError,
};
pub use write::{
    build_manifest, content_entries, read_scope_content, rotation_path, write_bundle, write_root,
    BundleMeta, ReadError, WriteError,
};

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
