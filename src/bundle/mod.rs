//! Bundles and trust: the signed format, writing bundles, verification, root-key rotation,
//! activation of content versions and the embedded demo bundle.
//!
//! - [`format`]: the on-the-wire types (Manifest, Entry, Root, Envelope) and entry paths.
//! - [`write`]: content → signed bundle folder, roots, and reading content back.
//! - [`verify`]: manifest, blob and rotation checks with a typed [`VerifyError`].
//! - [`activate`]: verified bundles → a new version directory, switched in atomically.
//! - [`embedded`]: the demo bundles compiled into the binary.

pub mod activate;
pub mod embedded;
pub mod format;
pub mod verify;
pub mod write;

pub use activate::{
    current_version, install, install_dir, installed_versions, last_result, open_installed,
    previous_version, rollback, trusted_root, write_atomic, Applied, ContentVersion, InstallError,
    InstallReport, InstalledScope, LastResult, Offer,
};
pub use verify::{
    verify_blob_bytes, verify_blob_file, verify_blob_stream, verify_initial_root, verify_manifest,
    verify_rotation, BlobCheck, Limits, Policy, VerifyError,
};
pub use write::{
    build_manifest, content_entries, read_scope_content, rotation_path, write_bundle, write_root,
    BundleMeta, ReadError, WriteError,
};
