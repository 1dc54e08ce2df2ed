//! What a person reads about bundles: `inspect` (what a bundle holds) and `diff` (what a
//! kiosk would change and download going from one bundle to another).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use chrono::Utc;
use kiosk::bundle::format::{paths, sha256_hex, Entry, Envelope, Manifest};
use kiosk::bundle::{
    read_scope_content, rotation_path, verify_blob_file, verify_initial_root, verify_manifest,
    verify_rotation, Limits, Policy, VerifyError,
};
use kiosk::content::{Item, Kind};

/// A bundle folder's manifest (signatures not checked) and envelope.
pub fn read_manifest(dir: &Path) -> anyhow::Result<(Envelope, Manifest)> {
    let path = dir.join(paths::MANIFEST);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let env: Envelope = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a signed manifest envelope", path.display()))?;
    let manifest: Manifest = serde_json::from_str(&env.payload)
        .with_context(|| format!("the payload of {} is not a manifest", path.display()))?;
    Ok((env, manifest))
}

/// The bytes of an entry, checked against its hash and size.
fn read_blob(dir: &Path, entry: &Entry) -> std::io::Result<Vec<u8>> {
    let bytes = std::fs::read(dir.join(paths::BLOBS).join(&entry.sha256))?;
    if bytes.len() as u64 != entry.size || sha256_hex(&bytes) != entry.sha256 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("blob {} does not match its hash or size", entry.sha256),
        ));
    }
    Ok(bytes)
}

pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// What `content-sync inspect` prints.
pub fn inspect_report(dir: &Path) -> anyhow::Result<String> {
    let (env, manifest) = read_manifest(dir)?;
    let content = read_scope_content(&manifest, |e| read_blob(dir, e))
        .with_context(|| format!("reading the content of {}", dir.display()))?;
    let mut out = String::new();
    let w = &mut out;
    // Writing to a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(w, "scope     {}", manifest.scope);
    let _ = writeln!(w, "version   {}", manifest.version);
    let _ = writeln!(w, "created   {}", manifest.created.format("%Y-%m-%d %H:%M UTC"));
    let _ = writeln!(w, "expires   {}", manifest.expires.format("%Y-%m-%d %H:%M UTC"));
    let _ = writeln!(
        w,
        "signed by {} key(s) (not checked here; use `verify --root`):",
        env.signatures.len()
    );
    for s in &env.signatures {
        let _ = writeln!(w, "  {}", s.key);
    }
    let files: Vec<&Entry> =
        manifest.entries.iter().filter(|e| e.path.starts_with(paths::FILES_PREFIX)).collect();
    let _ = writeln!(
        w,
        "size      {} in {} entries ({} items, {} files of {})",
        human_size(manifest.total_size()),
        manifest.entries.len(),
        content.items.len(),
        files.len(),
        human_size(files.iter().map(|e| e.size).sum())
    );
    let mut per_kind: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut per_domain: BTreeMap<&str, usize> = BTreeMap::new();
    for item in &content.items {
        *per_kind.entry(item.kind()).or_default() += 1;
        if let Some(d) = &item.domain {
            *per_domain.entry(d).or_default() += 1;
        }
    }
    let _ = writeln!(w, "\nitems per kind:");
    for (k, n) in &per_kind {
        let _ = writeln!(w, "  {} {n}", k.label());
    }
    if !per_domain.is_empty() {
        let _ = writeln!(w, "\nitems per 领域:");
        for (d, n) in &per_domain {
            let _ = writeln!(w, "  {d} {n}");
        }
    }
    let _ = writeln!(w, "\nsettings:");
    let _ = writeln!(
        w,
        "  统一标识 {}",
        content.branding.as_ref().map_or("(inherited)".into(), |b| b.zone_name.clone())
    );
    let _ = writeln!(
        w,
        "  服务功能 {}",
        content.functions.as_ref().map_or("(inherited)".into(), |f| f
            .enabled
            .iter()
            .map(|f| f.label())
            .collect::<Vec<_>>()
            .join("、"))
    );
    let _ =
        writeln!(w, "  载体配置 {}", if content.device.is_some() { "set" } else { "(inherited)" });
    let _ = writeln!(
        w,
        "  工作日历 {}",
        content.calendar.as_ref().map_or("(inherited)".into(), |c| format!(
            "{}–{}, {} holidays, {} make-up days",
            c.years.first().copied().unwrap_or_default(),
            c.years.last().copied().unwrap_or_default(),
            c.holidays.len(),
            c.workdays.len()
        ))
    );
    let _ = writeln!(w, "  同义词   {} groups", content.synonyms.len());
    if !content.removed.is_empty() {
        let _ = writeln!(w, "  withdrawn from wider scopes: {}", content.removed.join(", "));
    }
    let _ = writeln!(w, "\nitems:");
    let mut items: Vec<&Item> = content.items.iter().collect();
    items.sort_by(|a, b| (a.kind(), &a.id).cmp(&(b.kind(), &b.id)));
    for item in items {
        let _ = writeln!(
            w,
            "  [{}] {} {}{}",
            item.kind().label(),
            item.id,
            item.title,
            if item.baseline { " (baseline)" } else { "" }
        );
    }
    Ok(out)
}

/// An item's title from a bundle, or its path when it cannot be read.
fn title_of(dir: &Path, entry: &Entry) -> String {
    read_blob(dir, entry)
        .ok()
        .and_then(|b| serde_json::from_slice::<Item>(&b).ok())
        .map(|i| format!("[{}] {}", i.kind().label(), i.title))
        .unwrap_or_else(|| entry.path.clone())
}

/// What `content-sync diff OLD NEW` prints.
pub fn diff_report(old_dir: &Path, new_dir: &Path) -> anyhow::Result<String> {
    let (_, old) = read_manifest(old_dir)?;
    let (new_env, new) = read_manifest(new_dir)?;
    let old_by_path: BTreeMap<&str, &Entry> =
        old.entries.iter().map(|e| (e.path.as_str(), e)).collect();
    let new_by_path: BTreeMap<&str, &Entry> =
        new.entries.iter().map(|e| (e.path.as_str(), e)).collect();
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "scope   {} → {}", old.scope, new.scope);
    let _ = writeln!(w, "version {} → {}", old.version, new.version);
    if new.scope != old.scope {
        let _ = writeln!(
            w,
            "warning: the scopes differ; a kiosk applies a bundle of its own scope only"
        );
    }
    if new.version <= old.version {
        let _ = writeln!(
            w,
            "warning: the new version is not higher; kiosks that have {} will refuse it",
            old.version
        );
    }
    let (mut added, mut removed, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    let mut settings = Vec::new();
    for (path, e) in &new_by_path {
        let before = old_by_path.get(path);
        if before.is_some_and(|b| b.sha256 == e.sha256) {
            continue;
        }
        if path.starts_with(paths::ITEMS_PREFIX) {
            let t = title_of(new_dir, e);
            if before.is_some() {
                changed.push(t);
            } else {
                added.push(t);
            }
        } else {
            settings.push(format!("{} {path}", if before.is_some() { "changed" } else { "added" }));
        }
    }
    for (path, e) in &old_by_path {
        if new_by_path.contains_key(path) {
            continue;
        }
        if path.starts_with(paths::ITEMS_PREFIX) {
            removed.push(title_of(old_dir, e));
        } else {
            settings.push(format!("removed {path}"));
        }
    }
    for (label, list) in [("added", &added), ("removed", &removed), ("changed", &changed)] {
        let _ = writeln!(w, "\n{label} items: {}", list.len());
        for t in list.iter() {
            let _ = writeln!(w, "  {t}");
        }
    }
    let _ = writeln!(w, "\nchanged settings and files: {}", settings.len());
    for s in &settings {
        let _ = writeln!(w, "  {s}");
    }
    let have: BTreeSet<&str> = old.entries.iter().map(|e| e.sha256.as_str()).collect();
    let mut fetch: BTreeMap<&str, u64> = BTreeMap::new();
    for e in &new.entries {
        if !have.contains(e.sha256.as_str()) {
            fetch.insert(&e.sha256, e.size);
        }
    }
    let manifest_bytes = serde_json::to_vec(&new_env).map(|v| v.len() as u64).unwrap_or(0);
    let blob_bytes: u64 = fetch.values().sum();
    let _ = writeln!(
        w,
        "\nto transfer: {} ({} new blobs of {}, plus the {} manifest); full bundle {}",
        human_size(blob_bytes + manifest_bytes),
        fetch.len(),
        human_size(blob_bytes),
        human_size(manifest_bytes),
        human_size(new.total_size())
    );
    Ok(out)
}

/// Verifies a bundle folder against a trusted root file, as a kiosk would (signatures,
/// format, expiry, limits, paths, every blob's size and hash), following any root rotations
/// the bundle carries in `roots/N.json`. Returns the manifest.
pub fn verify_bundle(bundle: &Path, root_file: &Path) -> Result<Manifest, VerifyBundleError> {
    let limits = Limits::default();
    let now = Utc::now();
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| VerifyBundleError::Read(p.display().to_string(), e))
    };
    let mut root = verify_initial_root(&read(root_file)?, &limits)?;
    loop {
        let next = rotation_path(bundle, root.version + 1);
        if !next.exists() {
            break;
        }
        root = verify_rotation(&root, &read(&next)?, now, &limits)?;
    }
    let bytes = read(&bundle.join(paths::MANIFEST))?;
    // The scope is checked against itself here: the question is whether the bundle is
    // intact and signed, not whether it fits a particular kiosk.
    let claimed = serde_json::from_slice::<Envelope>(&bytes)
        .ok()
        .and_then(|e| serde_json::from_str::<Manifest>(&e.payload).ok())
        .map(|m| m.scope.chain())
        .unwrap_or_default();
    let installed = BTreeMap::new();
    let policy = Policy { root: &root, chain: &claimed, installed: &installed, now, limits };
    let (_, manifest) = verify_manifest(&bytes, &policy)?;
    for entry in &manifest.entries {
        verify_blob_file(entry, &bundle.join(paths::BLOBS).join(&entry.sha256))?;
    }
    Ok(manifest)
}

/// Why `verify` failed: the bundle was refused, or a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VerifyBundleError {
    #[error("refused: {0}")]
    Refused(#[from] VerifyError),
    #[error("reading {0}: {1}")]
    Read(String, std::io::Error),
}
