//! The demo bundles compiled into the kiosk binary (from `demo/bundle/` by `build.rs`), so a
//! fresh kiosk shows real content before it ever talks to the city.
//!
//! Layout: `root.json` (the demo root, trusted because it is compiled in) and
//! `<scope>/manifest.json` + `<scope>/blobs/<sha256>` for each demo scope. The demo is still
//! verified like any bundle, against that root. Once a real root is pinned, demo manifests
//! are recognised by their exact bytes and replaced as a whole by the first real bundle.

use std::path::{Path, PathBuf};

use chrono::Utc;

use super::activate::{install_with, InstallError, InstallReport, Offer, TrustSource};
use super::format::{is_safe_path, paths, Envelope, Root};
use crate::config::Config;

mod generated {
    include!(concat!(env!("OUT_DIR"), "/demo_bundle.rs"));
}

/// Every file of the embedded demo bundle: (path relative to `demo/bundle/`, bytes).
pub fn files() -> &'static [(&'static str, &'static [u8])] {
    generated::DEMO_BUNDLE
}

/// The compiled-in demo root envelope, if this build carries one.
pub fn demo_root() -> Option<&'static [u8]> {
    files().iter().find(|(p, _)| *p == "root.json").map(|(_, b)| *b)
}

/// Whether `root` trusts exactly the demo root's keys.
pub fn is_demo_root(root: &Root) -> bool {
    let Some(bytes) = demo_root() else { return false };
    let Ok(env) = serde_json::from_slice::<Envelope>(bytes) else { return false };
    let Ok(demo) = serde_json::from_str::<Root>(&env.payload) else { return false };
    let mut a = demo.keys.clone();
    let mut b = root.keys.clone();
    a.sort();
    b.sort();
    a == b
}

/// Whether `manifest` (the exact bytes of a manifest file) is one of the demo's.
pub fn is_demo_manifest(manifest: &[u8]) -> bool {
    files().iter().any(|(p, b)| p.ends_with(paths::MANIFEST) && *b == manifest)
}

/// Installs the embedded demo scopes that are in this kiosk's chain, verified against the
/// embedded demo root, as one new content version.
pub fn install_demo(config: &Config) -> Result<InstallReport, InstallError> {
    let root = demo_root().ok_or(InstallError::NoDemo)?;
    let staging = config.data_dir.join(".tmp-demo");
    let result = (|| {
        extract(&staging)?;
        let chain = config.scope.chain();
        let mut offers = Vec::new();
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&staging)
            .map_err(|cause| InstallError::Io { path: staging.clone(), cause })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join(paths::MANIFEST).is_file())
            .collect();
        dirs.sort();
        for dir in dirs {
            let offer = Offer::from_dir(&dir)?;
            if offer_scope(&offer).is_some_and(|s| chain.contains(&s)) {
                offers.push(offer);
            }
        }
        if offers.is_empty() {
            let chain = chain.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" → ");
            return Err(InstallError::DemoNotForChain(chain));
        }
        install_with(config, &offers, Utc::now(), TrustSource::Embedded { root })
    })();
    // Best effort: the staging copy is only a convenience for reading blobs from files.
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// The scope an offer's manifest claims, read WITHOUT verification: only to choose which
/// offers to verify.
pub(crate) fn offer_scope(offer: &Offer) -> Option<crate::content::ScopeCode> {
    #[derive(serde::Deserialize)]
    struct ScopeOnly {
        scope: crate::content::ScopeCode,
    }
    let env: Envelope = serde_json::from_slice(&offer.manifest).ok()?;
    serde_json::from_str::<ScopeOnly>(&env.payload).ok().map(|s| s.scope)
}

fn extract(dir: &Path) -> Result<(), InstallError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| InstallError::Io { path, cause }
    };
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    for (rel, bytes) in files() {
        // The list comes from our own build script, but a path is checked before use anyway.
        if !is_safe_path(rel) {
            continue;
        }
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, bytes).map_err(io(&path))?;
    }
    Ok(())
}
