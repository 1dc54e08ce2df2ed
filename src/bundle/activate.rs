//! Activation: verified bundles become a new content version, switched in atomically.
//!
//! ```text
//! data_dir/
//!   .lock                      held while an install runs (sync and the CLI may race)
//!   trust/root.json            the pinned root, replaced only by a verified rotation
//!   blobs/<sha256>             verified blobs (shared cache)
//!   versions/v<N>/             manifests/<scope>.json, blobs/ (hard links), content.db, index/
//!   current -> versions/v<N>   replaced by rename(2) of a fresh symlink, then fsync(data_dir)
//!   previous -> versions/v<M>  the version before, kept for rollback
//!   state/last_result.json     what the last install did, or why it was refused
//! ```
//!
//! Order of work: verify every manifest and blob (nothing on disk changes before that),
//! copy blobs into the cache re-checking each one, build the complete version in
//! `versions/.tmp-v<N>`, fsync it, rename it to `versions/v<N>`, point `previous` at the
//! old version and `current` at the new one, fsync `data_dir`, then delete versions nobody
//! points at. A crash at any instant leaves `current` on the old or the new version, whole:
//! the only step that changes what is served is one rename(2).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::format::{paths, sha256_hex, Entry, Envelope, Manifest, Root};
use super::verify::{self, Limits, Policy, VerifyError};
use super::write::{read_scope_content, ReadError};
use crate::config::Config;
use crate::content::{merge, Calendar, MergeError, Merged, ScopeCode, ScopeContent};

const CURRENT: &str = "current";
const PREVIOUS: &str = "previous";
const VERSIONS: &str = "versions";
const MANIFESTS: &str = "manifests";
const TRUST_ROOT: &str = "trust/root.json";
const LAST_RESULT: &str = "state/last_result.json";
const TMP_PREFIX: &str = ".tmp-";

/// Cache blobs no version links to are deleted only after this long, so blobs that sync
/// fetched for a bundle it has not installed yet survive an install of another scope.
const CACHE_GRACE: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Why an install was refused or failed. The served content is unchanged in every case.
#[derive(Debug, Error)]
pub enum InstallError {
    #[error("refused {}: {cause}", bundle.display())]
    Refused { bundle: PathBuf, cause: VerifyError },
    #[error("the pinned root cannot be used: {0}")]
    Trust(VerifyError),
    #[error("no trusted root: set trust_root in the config to the city's root.json (this build carries no demo root)")]
    NoRoot,
    #[error("{} holds no bundle: expected manifest.json, or scope folders each with a manifest.json", .0.display())]
    NoBundle(PathBuf),
    #[error("this kiosk binary carries no demo content (demo/bundle was empty when it was built): install a bundle with `kiosk install BUNDLE_DIR`")]
    NoDemo,
    #[error("the embedded demo content has no scope in this kiosk's chain ({0}): set `scope` in the config to a demo hall such as 430182-001-01, or install a bundle")]
    DemoNotForChain(String),
    #[error("the bundle's content cannot be read: {0}")]
    Content(ReadError),
    #[error("the scope chain cannot be merged: {0}")]
    Merge(MergeError),
    #[error("building the content database: {0}")]
    Store(crate::store::StoreError),
    #[error("building the search index: {0}")]
    Search(crate::search::SearchError),
    #[error("{}: {cause}", path.display())]
    Io { path: PathBuf, cause: io::Error },
}

impl InstallError {
    /// The verification failure behind a refusal, for callers that branch on it.
    pub fn verify_error(&self) -> Option<&VerifyError> {
        match self {
            InstallError::Refused { cause, .. } | InstallError::Trust(cause) => Some(cause),
            _ => None,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> InstallError + '_ {
    move |cause| InstallError::Io { path: path.to_path_buf(), cause }
}

/// One scope's bundle offered for installation.
#[derive(Clone, Debug)]
pub struct Offer {
    /// The exact bytes of `manifest.json`.
    pub manifest: Vec<u8>,
    /// Where `<sha256>` files of its blobs are (a bundle's `blobs/`, or sync's cache).
    pub blobs: PathBuf,
    /// Root rotations it carries (`roots/N.json` bytes), in any order.
    pub roots: Vec<Vec<u8>>,
    /// For messages: where it came from.
    pub origin: PathBuf,
}

impl Offer {
    /// Reads a bundle folder (`manifest.json`, `blobs/`, optional `roots/N.json`).
    pub fn from_dir(dir: &Path) -> Result<Offer, InstallError> {
        let manifest_path = dir.join(paths::MANIFEST);
        let manifest = read_bounded(&manifest_path).map_err(io_err(&manifest_path))?;
        let mut roots = Vec::new();
        let roots_dir = dir.join(paths::ROOTS);
        if let Ok(list) = fs::read_dir(&roots_dir) {
            for entry in list {
                let path = entry.map_err(io_err(&roots_dir))?.path();
                if path.extension().is_some_and(|e| e == "json") {
                    roots.push(read_bounded(&path).map_err(io_err(&path))?);
                }
            }
        }
        Ok(Offer { manifest, blobs: dir.join(paths::BLOBS), roots, origin: dir.to_path_buf() })
    }
}

/// Reads at most one byte more than a manifest may have, so an oversize file is refused
/// by verification without first filling memory.
fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    use io::Read as _;
    let mut out = Vec::new();
    File::open(path)?
        .take(Limits::default().manifest_bytes.saturating_add(1))
        .read_to_end(&mut out)?;
    Ok(out)
}

/// What one scope went from and to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub scope: ScopeCode,
    pub from: Option<u64>,
    pub to: u64,
    pub entries: usize,
}

/// What an install did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallReport {
    /// The new version's directory name, e.g. `v7`.
    pub version: String,
    pub applied: Vec<Applied>,
    /// The root version now pinned, when this install rotated it.
    pub rotated_root: Option<u64>,
    /// Items in the merged content.
    pub items: usize,
}

impl fmt::Display for InstallReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "installed content version {}:", self.version)?;
        for a in &self.applied {
            match a.from {
                Some(from) => {
                    write!(f, " {} v{} → v{} ({} entries);", a.scope, from, a.to, a.entries)?
                }
                None => write!(f, " {} v{} (new, {} entries);", a.scope, a.to, a.entries)?,
            }
        }
        if let Some(r) = self.rotated_root {
            write!(f, " root rotated to v{r};")?;
        }
        write!(f, " {} items in all", self.items)
    }
}

/// What the last install did, kept in `state/last_result.json` for the admin panel and
/// telemetry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastResult {
    pub at: DateTime<Utc>,
    pub ok: bool,
    /// The report, or why the install was refused.
    pub message: String,
    /// The typed reason, e.g. `Rollback`, when refused by verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The last install's result, if any install ran on this data dir.
pub fn last_result(config: &Config) -> Option<LastResult> {
    let bytes = fs::read(config.data_dir.join(LAST_RESULT)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Scope, version and manifest hash of one installed manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledScope {
    pub scope: ScopeCode,
    pub version: u64,
    pub expires: DateTime<Utc>,
    /// SHA-256 of the manifest file as received.
    pub manifest_sha256: String,
    /// Whether this is the embedded demo's manifest.
    pub demo: bool,
}

/// The content version a kiosk is serving: an immutable directory.
#[derive(Clone, Debug)]
pub struct ContentVersion {
    pub dir: PathBuf,
    /// (raw manifest bytes, manifest), widest scope first.
    manifests: Vec<(Vec<u8>, Manifest)>,
}

impl ContentVersion {
    /// Opens a version directory. Its manifests were verified when it was built, so only
    /// their structure is read here.
    pub fn open(dir: &Path) -> anyhow::Result<ContentVersion> {
        use anyhow::Context as _;
        let mdir = dir.join(MANIFESTS);
        let mut manifests = Vec::new();
        for entry in fs::read_dir(&mdir).with_context(|| format!("reading {}", mdir.display()))? {
            let path = entry.with_context(|| format!("reading {}", mdir.display()))?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let env = verify::parse_envelope(&bytes, u64::MAX, "manifest")
                .with_context(|| path.display().to_string())?;
            let m =
                verify::parse_manifest_payload(&env).with_context(|| path.display().to_string())?;
            manifests.push((bytes, m));
        }
        manifests.sort_by_key(|(_, m)| (m.scope.chain().len(), m.scope.clone()));
        Ok(ContentVersion { dir: dir.to_path_buf(), manifests })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The version's name, e.g. `v7`.
    pub fn name(&self) -> String {
        self.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.join("content.db")
    }

    pub fn index_dir(&self) -> PathBuf {
        self.dir.join("index")
    }

    /// The manifests of this version, widest scope first.
    pub fn manifests(&self) -> impl Iterator<Item = &Manifest> {
        self.manifests.iter().map(|(_, m)| m)
    }

    /// Scope → version and manifest hash, widest scope first (admin panel, telemetry).
    pub fn versions(&self) -> Vec<InstalledScope> {
        self.manifests
            .iter()
            .map(|(bytes, m)| InstalledScope {
                scope: m.scope.clone(),
                version: m.version,
                expires: m.expires,
                manifest_sha256: sha256_hex(bytes),
                demo: super::embedded::is_demo_manifest(bytes),
            })
            .collect()
    }

    /// The file holding a bundle entry, e.g. `files/logo.png` or `items/x.json`, looked up
    /// from the most specific scope that has it.
    pub fn blob_path(&self, entry_path: &str) -> Option<PathBuf> {
        self.manifests
            .iter()
            .rev()
            .find_map(|(_, m)| m.entry(entry_path))
            .map(|e| self.dir.join(paths::BLOBS).join(&e.sha256))
    }

    /// Each scope's content, read from the version's blobs.
    pub fn scope_contents(&self) -> anyhow::Result<Vec<ScopeContent>> {
        let blobs = self.dir.join(paths::BLOBS);
        self.manifests
            .iter()
            .map(|(_, m)| Ok(read_scope_content(m, |e| fs::read(blobs.join(&e.sha256)))?))
            .collect()
    }

    /// The merged content of the chain, as the database was built from.
    pub fn merged(&self) -> anyhow::Result<Merged> {
        Ok(merge(&self.scope_contents()?)?)
    }

    /// The working-day calendar of the merged content.
    pub fn calendar(&self) -> anyhow::Result<Calendar> {
        Ok(self.merged()?.calendar)
    }

    /// Re-checks every blob of the version against its manifest (admin self-check).
    pub fn check_blobs(&self) -> Result<(), VerifyError> {
        let blobs = self.dir.join(paths::BLOBS);
        for (_, m) in &self.manifests {
            for e in &m.entries {
                verify::verify_blob_file(e, &blobs.join(&e.sha256))?;
            }
        }
        Ok(())
    }
}

/// The version `current` points at, if any.
pub fn current_version(data_dir: &Path) -> anyhow::Result<Option<ContentVersion>> {
    match link_target(data_dir, CURRENT) {
        Some(dir) => Ok(Some(ContentVersion::open(&dir)?)),
        None => Ok(None),
    }
}

/// The version `previous` points at, if any (for rollback).
pub fn previous_version(data_dir: &Path) -> anyhow::Result<Option<ContentVersion>> {
    match link_target(data_dir, PREVIOUS) {
        Some(dir) => Ok(Some(ContentVersion::open(&dir)?)),
        None => Ok(None),
    }
}

fn link_target(data_dir: &Path, name: &str) -> Option<PathBuf> {
    let target = fs::read_link(data_dir.join(name)).ok()?;
    Some(data_dir.join(target))
}

/// `kiosk install BUNDLE`: verifies and activates a bundle folder (one scope), or a folder
/// of scope folders (several scopes in one new version). The error inside is an
/// [`InstallError`].
pub fn install_dir(config: &Config, bundle: &Path) -> anyhow::Result<InstallReport> {
    let offers = match offers_in(bundle, &config.scope.chain()) {
        Ok(o) => o,
        Err(e) => {
            record(config, &Err(&e));
            return Err(e.into());
        }
    };
    Ok(install(config, &offers, Utc::now())?)
}

/// The offers in a bundle folder: the folder itself, or each scope folder in it whose
/// scope is in `chain` (a city-wide folder holds scopes for other kiosks too).
fn offers_in(bundle: &Path, chain: &[ScopeCode]) -> Result<Vec<Offer>, InstallError> {
    if bundle.join(paths::MANIFEST).is_file() {
        return Ok(vec![Offer::from_dir(bundle)?]);
    }
    let mut dirs: Vec<PathBuf> = fs::read_dir(bundle)
        .map_err(io_err(bundle))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(paths::MANIFEST).is_file())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(InstallError::NoBundle(bundle.to_path_buf()));
    }
    let mut offers = Vec::new();
    for dir in &dirs {
        let offer = Offer::from_dir(dir)?;
        if super::embedded::offer_scope(&offer).is_some_and(|s| chain.contains(&s)) {
            offers.push(offer);
        }
    }
    if offers.is_empty() {
        return Err(InstallError::NoBundle(bundle.to_path_buf()));
    }
    Ok(offers)
}

/// The current version; on a kiosk with nothing installed yet, installs the embedded demo
/// bundles first.
pub fn open_installed(config: &Config) -> anyhow::Result<ContentVersion> {
    if let Some(v) = current_version(&config.data_dir)? {
        return Ok(v);
    }
    super::embedded::install_demo(config)?;
    current_version(&config.data_dir)?
        .ok_or_else(|| anyhow::anyhow!("the demo content was installed but `current` is missing"))
}

/// Where trust comes from for one install.
pub(crate) enum TrustSource<'a> {
    /// The pinned root (or, on first install, the config's or the embedded demo root).
    Pinned,
    /// The embedded demo: verified against the compiled-in demo root.
    Embedded { root: &'a [u8] },
}

/// Verifies `offers` and activates them as one new content version. Nothing changes on
/// disk unless every offer verifies; the result is recorded in `state/last_result.json`.
pub fn install(
    config: &Config,
    offers: &[Offer],
    now: DateTime<Utc>,
) -> Result<InstallReport, InstallError> {
    install_with(config, offers, now, TrustSource::Pinned)
}

pub(crate) fn install_with(
    config: &Config,
    offers: &[Offer],
    now: DateTime<Utc>,
    trust: TrustSource<'_>,
) -> Result<InstallReport, InstallError> {
    let data = &config.data_dir;
    fs::create_dir_all(data).map_err(io_err(data))?;
    let lock_path = data.join(".lock");
    let lock = File::create(&lock_path).map_err(io_err(&lock_path))?;
    lock.lock().map_err(io_err(&lock_path))?;
    let result = install_locked(config, offers, now, trust);
    record(config, &result.as_ref());
    drop(lock);
    result
}

fn record(config: &Config, result: &Result<&InstallReport, &InstallError>) {
    let last = match result {
        Ok(r) => LastResult { at: Utc::now(), ok: true, message: r.to_string(), reason: None },
        Err(e) => LastResult {
            at: Utc::now(),
            ok: false,
            message: e.to_string(),
            reason: Some(match e.verify_error() {
                Some(v) => variant_name(&format!("{v:?}")),
                None => variant_name(&format!("{e:?}")),
            }),
        },
    };
    let path = config.data_dir.join(LAST_RESULT);
    let write = || -> io::Result<()> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let bytes = serde_json::to_vec_pretty(&last).map_err(io::Error::other)?;
        write_atomic(&path, &bytes)
    };
    // The install's own result is what matters; a full disk here is logged, not fatal.
    if let Err(e) = write() {
        tracing::warn!("could not record the install result in {}: {e}", path.display());
    }
}

fn variant_name(debug: &str) -> String {
    debug.split(|c: char| !c.is_alphanumeric()).next().unwrap_or_default().to_string()
}

/// The root manifests are checked against now: the pinned `trust/root.json`, or before the
/// first install the root that install will pin (the config's `trust_root`, else the
/// embedded demo root). Rotations a bundle carries are applied by [`install`].
pub fn trusted_root(config: &Config) -> Result<Root, InstallError> {
    load_initial_root(config, &Limits::default()).map(|(root, _)| root)
}

/// The installed version of each scope that an offer verified by `root` is compared with
/// (rollback): the current version's manifests in this kiosk's chain, leaving out demo
/// manifests once a real root is pinned, because the first real bundle replaces the demo.
pub fn installed_versions(config: &Config, root: &Root) -> BTreeMap<ScopeCode, u64> {
    match current_version(&config.data_dir) {
        Ok(Some(cur)) => counted_manifests(&cur, root, &config.scope.chain(), false)
            .into_iter()
            .map(|(scope, (_, m))| (scope, m.version))
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn counted_manifests(
    current: &ContentVersion,
    root: &Root,
    chain: &[ScopeCode],
    embedded: bool,
) -> BTreeMap<ScopeCode, (Vec<u8>, Manifest)> {
    let drop_demo = !embedded && !super::embedded::is_demo_root(root);
    current
        .manifests
        .iter()
        .filter(|(bytes, m)| {
            chain.contains(&m.scope) && !(drop_demo && super::embedded::is_demo_manifest(bytes))
        })
        .map(|(bytes, m)| (m.scope.clone(), (bytes.clone(), m.clone())))
        .collect()
}

fn load_initial_root(
    config: &Config,
    limits: &Limits,
) -> Result<(Root, Option<Vec<u8>>), InstallError> {
    let pinned = config.data_dir.join(TRUST_ROOT);
    match fs::read(&pinned) {
        Ok(bytes) => {
            return Ok((
                verify::verify_initial_root(&bytes, limits).map_err(InstallError::Trust)?,
                None,
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&pinned)(e)),
    }
    let bytes = if config.trust_root.as_os_str().is_empty() {
        super::embedded::demo_root().ok_or(InstallError::NoRoot)?.to_vec()
    } else {
        fs::read(&config.trust_root).map_err(io_err(&config.trust_root))?
    };
    let root = verify::verify_initial_root(&bytes, limits).map_err(InstallError::Trust)?;
    Ok((root, Some(bytes)))
}

fn install_locked(
    config: &Config,
    offers: &[Offer],
    now: DateTime<Utc>,
    trust: TrustSource<'_>,
) -> Result<InstallReport, InstallError> {
    let data = &config.data_dir;
    let limits = Limits::default();
    let chain = config.scope.chain();
    remove_unreferenced_versions(data)?;

    // Trust: the pinned root, plus any rotations the offers carry.
    let embedded = matches!(trust, TrustSource::Embedded { .. });
    let (mut root, mut root_to_pin) = match trust {
        TrustSource::Pinned => load_initial_root(config, &limits)?,
        TrustSource::Embedded { root } => {
            (verify::verify_initial_root(root, &limits).map_err(InstallError::Trust)?, None)
        }
    };
    let mut rotated = None;
    if !embedded {
        let mut rotations: Vec<(&Offer, &Vec<u8>)> =
            offers.iter().flat_map(|o| o.roots.iter().map(move |r| (o, r))).collect();
        // Apply rotations in version order; ones at or below the pinned version are old news.
        rotations.sort_by_key(|(_, r)| root_version_hint(r));
        for (offer, bytes) in rotations {
            if root_version_hint(bytes) <= Some(root.version) {
                continue;
            }
            root = verify::verify_rotation(&root, bytes, now, &limits)
                .map_err(|cause| InstallError::Refused { bundle: offer.origin.clone(), cause })?;
            rotated = Some(root.version);
            root_to_pin = Some(bytes.clone());
        }
    }

    // What is installed now. Demo manifests do not count against real content: the first
    // real bundle replaces the demo entirely rather than mixing with it.
    let current = current_version(data).map_err(|e| InstallError::Io {
        path: data.join(CURRENT),
        cause: io::Error::other(format!("{e:#}")),
    })?;
    let mut kept = match &current {
        Some(cur) => counted_manifests(cur, &root, &chain, embedded),
        None => BTreeMap::new(),
    };
    let mut installed: BTreeMap<ScopeCode, u64> =
        kept.iter().map(|(s, (_, m))| (s.clone(), m.version)).collect();

    // Verify every manifest and every blob before anything on disk changes.
    let mut verified: Vec<(&Offer, Manifest)> = Vec::new();
    let mut applied = Vec::new();
    for offer in offers {
        let refused = |cause| InstallError::Refused { bundle: offer.origin.clone(), cause };
        let policy = Policy { root: &root, chain: &chain, installed: &installed, now, limits };
        let (_, manifest) = verify::verify_manifest(&offer.manifest, &policy).map_err(refused)?;
        for e in &manifest.entries {
            verify::verify_blob_file(e, &offer.blobs.join(&e.sha256)).map_err(refused)?;
        }
        applied.push(Applied {
            scope: manifest.scope.clone(),
            from: kept.get(&manifest.scope).map(|(_, m)| m.version),
            to: manifest.version,
            entries: manifest.entries.len(),
        });
        installed.insert(manifest.scope.clone(), manifest.version);
        verified.push((offer, manifest));
    }

    // From here on the disk changes, but never what `current` serves.
    if let Some(bytes) = &root_to_pin {
        let path = data.join(TRUST_ROOT);
        fs::create_dir_all(data.join("trust")).map_err(io_err(data))?;
        write_atomic(&path, bytes).map_err(io_err(&path))?;
    }
    let cache = data.join(paths::BLOBS);
    fs::create_dir_all(&cache).map_err(io_err(&cache))?;
    for (offer, manifest) in &verified {
        for e in &manifest.entries {
            cache_blob(e, &offer.blobs, &cache)
                .map_err(|cause| InstallError::Refused { bundle: offer.origin.clone(), cause })?;
        }
        kept.insert(manifest.scope.clone(), (offer.manifest.clone(), manifest.clone()));
    }
    // Blobs of manifests kept from the current version are in its blobs/ folder.
    if let Some(cur) = &current {
        for (_, m) in kept.values() {
            for e in &m.entries {
                let dst = cache.join(&e.sha256);
                if !dst.exists() {
                    link_or_copy(&cur.dir.join(paths::BLOBS).join(&e.sha256), &dst)?;
                }
            }
        }
    }

    // Merge the chain, widest first.
    let mut layers: Vec<(&ScopeCode, &Manifest)> = kept.iter().map(|(s, (_, m))| (s, m)).collect();
    layers.sort_by_key(|(s, _)| s.chain().len());
    let contents = layers
        .iter()
        .map(|(_, m)| read_scope_content(m, |e| fs::read(cache.join(&e.sha256))))
        .collect::<Result<Vec<_>, _>>()
        .map_err(InstallError::Content)?;
    let merged = merge(&contents).map_err(InstallError::Merge)?;

    // Build the new version completely in a temporary directory.
    let versions = data.join(VERSIONS);
    fs::create_dir_all(&versions).map_err(io_err(&versions))?;
    let name = next_version_name(&versions)?;
    let tmp = versions.join(format!("{TMP_PREFIX}{name}"));
    let build = || -> Result<(), InstallError> {
        let mdir = tmp.join(MANIFESTS);
        let bdir = tmp.join(paths::BLOBS);
        fs::create_dir_all(&mdir).map_err(io_err(&mdir))?;
        fs::create_dir_all(&bdir).map_err(io_err(&bdir))?;
        for (scope, (bytes, m)) in &kept {
            let path = mdir.join(format!("{scope}.json"));
            write_synced(&path, bytes).map_err(io_err(&path))?;
            for e in &m.entries {
                let dst = bdir.join(&e.sha256);
                if !dst.exists() {
                    link_or_copy(&cache.join(&e.sha256), &dst)?;
                }
            }
        }
        crate::store::write_db(&tmp.join("content.db"), &merged).map_err(InstallError::Store)?;
        let index = tmp.join("index");
        fs::create_dir_all(&index).map_err(io_err(&index))?;
        crate::search::build_index(&index, &merged).map_err(InstallError::Search)?;
        fsync_tree(&tmp).map_err(io_err(&tmp))
    };
    if let Err(e) = build() {
        // Best effort: a leftover temporary directory is removed by the next install anyway.
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let final_dir = versions.join(&name);
    fs::rename(&tmp, &final_dir).map_err(io_err(&final_dir))?;
    fsync_dir(&versions).map_err(io_err(&versions))?;

    // Switch: previous := old current, then current := new, each by rename(2) of a symlink.
    if let Ok(old) = fs::read_link(data.join(CURRENT)) {
        replace_symlink(data, PREVIOUS, &old)?;
    }
    replace_symlink(data, CURRENT, &Path::new(VERSIONS).join(&name))?;
    fsync_dir(data).map_err(io_err(data))?;

    remove_unreferenced_versions(data)?;
    prune_cache(&cache);
    Ok(InstallReport { version: name, applied, rotated_root: rotated, items: merged.items.len() })
}

/// Switches back to the previous version (admin panel, remote command): `current` and
/// `previous` trade places, each by an atomic rename. Returns the name now served.
pub fn rollback(config: &Config) -> Result<String, InstallError> {
    let data = &config.data_dir;
    let lock_path = data.join(".lock");
    let lock = File::create(&lock_path).map_err(io_err(&lock_path))?;
    lock.lock().map_err(io_err(&lock_path))?;
    let prev_link = data.join(PREVIOUS);
    let prev = fs::read_link(&prev_link).map_err(io_err(&prev_link))?;
    // A version directory that is not whole is never switched to.
    ContentVersion::open(&data.join(&prev)).map_err(|e| InstallError::Io {
        path: data.join(&prev),
        cause: io::Error::other(format!("{e:#}")),
    })?;
    let cur_link = data.join(CURRENT);
    let cur = fs::read_link(&cur_link).map_err(io_err(&cur_link))?;
    replace_symlink(data, CURRENT, &prev)?;
    replace_symlink(data, PREVIOUS, &cur)?;
    fsync_dir(data).map_err(io_err(data))?;
    let name = prev.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let message = format!("rolled back to content version {name}");
    let last = LastResult { at: Utc::now(), ok: true, message, reason: None };
    let path = data.join(LAST_RESULT);
    if let Ok(bytes) = serde_json::to_vec_pretty(&last) {
        // Recording is best effort, as for installs.
        let _ = fs::create_dir_all(data.join("state")).and_then(|()| write_atomic(&path, &bytes));
    }
    drop(lock);
    Ok(name)
}

/// The version a root envelope claims, read without trusting it, only to order rotations.
fn root_version_hint(bytes: &[u8]) -> Option<u64> {
    let env: Envelope = serde_json::from_slice(bytes).ok()?;
    let root: Root = serde_json::from_str(&env.payload).ok()?;
    Some(root.version)
}

/// Puts a verified copy of the blob of `entry` into the cache. The bytes are checked again
/// while copying, so a bundle changed after verification cannot slip anything in.
fn cache_blob(entry: &Entry, from: &Path, cache: &Path) -> Result<(), VerifyError> {
    let dst = cache.join(&entry.sha256);
    let io = |cause| VerifyError::Io { path: entry.path.clone(), cause };
    if let Ok(meta) = fs::metadata(&dst) {
        // Cache blobs were verified when they were written; equal size is enough here.
        if meta.len() == entry.size {
            return Ok(());
        }
    }
    let src = from.join(&entry.sha256);
    if src == dst {
        return verify::verify_blob_file(entry, &src);
    }
    let tmp = cache.join(format!("{TMP_PREFIX}{}", entry.sha256));
    let result = (|| {
        let input = File::open(&src).map_err(io)?;
        let mut out = File::create(&tmp).map_err(io)?;
        verify::verify_blob_stream(entry, input, &mut out)?;
        out.sync_all().map_err(io)?;
        fs::rename(&tmp, &dst).map_err(io)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn link_or_copy(src: &Path, dst: &Path) -> Result<(), InstallError> {
    if fs::hard_link(src, dst).is_ok() {
        return Ok(());
    }
    // Another filesystem: copy, through a temporary name so no half file is ever seen.
    let name = dst.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dst.with_file_name(format!("{TMP_PREFIX}{name}"));
    fs::copy(src, &tmp).map_err(io_err(src))?;
    File::open(&tmp).and_then(|f| f.sync_all()).map_err(io_err(&tmp))?;
    fs::rename(&tmp, dst).map_err(io_err(dst))
}

/// `v<N>` with N one above every version directory present.
fn next_version_name(versions: &Path) -> Result<String, InstallError> {
    let mut max = 0u64;
    for entry in fs::read_dir(versions).map_err(io_err(versions))? {
        let name = entry.map_err(io_err(versions))?.file_name();
        let name = name.to_string_lossy();
        let n = name
            .trim_start_matches(TMP_PREFIX)
            .strip_prefix('v')
            .and_then(|n| n.parse::<u64>().ok());
        max = max.max(n.unwrap_or(0));
    }
    Ok(format!("v{}", max + 1))
}

/// Points `data/name` at `target` atomically: a fresh symlink renamed over the old one.
fn replace_symlink(data: &Path, name: &str, target: &Path) -> Result<(), InstallError> {
    let tmp = data.join(format!("{TMP_PREFIX}{name}"));
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&tmp)(e)),
    }
    std::os::unix::fs::symlink(target, &tmp).map_err(io_err(&tmp))?;
    let dst = data.join(name);
    fs::rename(&tmp, &dst).map_err(io_err(&dst))
}

/// Deletes version directories that neither `current` nor `previous` points at, and
/// temporary ones left by a crash.
fn remove_unreferenced_versions(data: &Path) -> Result<(), InstallError> {
    let versions = data.join(VERSIONS);
    let keep: BTreeSet<PathBuf> = [CURRENT, PREVIOUS]
        .iter()
        .filter_map(|n| fs::read_link(data.join(n)).ok())
        .filter_map(|t| t.file_name().map(PathBuf::from))
        .collect();
    let Ok(list) = fs::read_dir(&versions) else { return Ok(()) };
    for entry in list {
        let entry = entry.map_err(io_err(&versions))?;
        if keep.contains(&PathBuf::from(entry.file_name())) {
            continue;
        }
        let path = entry.path();
        fs::remove_dir_all(&path).map_err(io_err(&path))?;
    }
    Ok(())
}

/// Deletes cache blobs that no version links to and that are older than [`CACHE_GRACE`],
/// plus temporary files. Best effort: a blob left behind only costs disk space.
fn prune_cache(cache: &Path) {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(list) = fs::read_dir(cache) else { return };
    let now = std::time::SystemTime::now();
    for entry in list.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age > CACHE_GRACE);
        let tmp = entry.file_name().to_string_lossy().starts_with(TMP_PREFIX);
        if old && (meta.nlink() == 1 || tmp) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Replaces `path` with `bytes` so that a power cut leaves the old or the new file, never
/// a torn one: a synced temporary file beside it, rename(2), then an fsync of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!("{TMP_PREFIX}{name}"));
    write_synced(&tmp, bytes)?;
    fs::rename(&tmp, path)?;
    match path.parent() {
        Some(dir) => fsync_dir(dir),
        None => Ok(()),
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use io::Write as _;
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// fsyncs every file and directory under `dir`, then `dir` itself.
fn fsync_tree(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            fsync_tree(&path)?;
        } else {
            File::open(&path)?.sync_all()?;
        }
    }
    fsync_dir(dir)
}
