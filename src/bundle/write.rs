//! Writing bundles and roots, and reading a scope's content back from a manifest.
//!
//! The writer is the one place that turns a [`ScopeContent`] into entries, so content-sync,
//! the tests and the kiosk agree on the entry layout of [`super::format`]. Output is
//! deterministic: the same content, files, meta and keys give the same bytes, which keeps
//! `diff` and re-publishing quiet when nothing changed.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;

use super::format::{is_safe_path, paths, sha256_hex, Entry, Envelope, Manifest, Root, FORMAT};
use crate::content::{Item, ScopeContent};

/// The parts of a manifest that are not derived from the content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleMeta {
    pub version: u64,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

/// Why a bundle or root could not be written.
#[derive(Debug, Error)]
pub enum WriteError {
    #[error("writing {}: {cause}", path.display())]
    Io { path: PathBuf, cause: io::Error },
    #[error("serializing {what}: {cause}")]
    Json { what: String, cause: serde_json::Error },
    #[error("“{0}” cannot be a bundle path: use a relative name without `..`, empty parts or backslashes")]
    UnsafePath(String),
    #[error(
        "two entries of the bundle would both be “{0}”: item ids and file names must be unique"
    )]
    Duplicate(String),
}

/// Why a manifest's entries could not be read back into a [`ScopeContent`].
#[derive(Debug, Error)]
pub enum ReadError {
    #[error("reading bundle entry {path}: {cause}")]
    Io { path: String, cause: io::Error },
    #[error("bundle entry {path} is not valid: {cause}")]
    Json { path: String, cause: serde_json::Error },
    #[error("bundle entry {path} holds item “{id}”, but its path names another id")]
    IdMismatch { path: String, id: String },
    #[error("bundle entry {path} is not a kind of entry this kiosk knows (items/, files/ or one of the named JSON files)")]
    UnknownEntry { path: String },
}

/// Every logical entry of `content` plus `files`, as (path, bytes), sorted by path.
///
/// A file name is placed under `files/` unless it already starts with `files/`, so both
/// `logo.png` and `files/logo.png` name the entry `files/logo.png` (the path that
/// [`crate::content::Branding::logo`] and attachments refer to).
pub fn content_entries(
    content: &ScopeContent,
    files: &[(String, Vec<u8>)],
) -> Result<Vec<(String, Vec<u8>)>, WriteError> {
    let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut put = |path: String, bytes: Vec<u8>| -> Result<(), WriteError> {
        if !is_safe_path(&path) {
            return Err(WriteError::UnsafePath(path));
        }
        if out.contains_key(&path) {
            return Err(WriteError::Duplicate(path));
        }
        out.insert(path, bytes);
        Ok(())
    };
    for item in &content.items {
        let path = paths::item(&item.id);
        put(path.clone(), to_json(&path, item)?)?;
    }
    if let Some(v) = &content.branding {
        put(paths::BRANDING.into(), to_json(paths::BRANDING, v)?)?;
    }
    if let Some(v) = &content.functions {
        put(paths::FUNCTIONS.into(), to_json(paths::FUNCTIONS, v)?)?;
    }
    if let Some(v) = &content.device {
        put(paths::DEVICE.into(), to_json(paths::DEVICE, v)?)?;
    }
    if let Some(v) = &content.calendar {
        put(paths::CALENDAR.into(), to_json(paths::CALENDAR, v)?)?;
    }
    if !content.synonyms.is_empty() {
        put(paths::SYNONYMS.into(), to_json(paths::SYNONYMS, &content.synonyms)?)?;
    }
    if !content.removed.is_empty() {
        put(paths::REMOVED.into(), to_json(paths::REMOVED, &content.removed)?)?;
    }
    for (name, bytes) in files {
        let path = if name.starts_with(paths::FILES_PREFIX) {
            name.clone()
        } else {
            format!("{}{name}", paths::FILES_PREFIX)
        };
        put(path, bytes.clone())?;
    }
    Ok(out.into_iter().collect())
}

/// The manifest for `entries` (as made by [`content_entries`]), entries sorted by path.
pub fn build_manifest(
    content: &ScopeContent,
    entries: &[(String, Vec<u8>)],
    meta: &BundleMeta,
) -> Manifest {
    let mut list: Vec<Entry> = entries
        .iter()
        .map(|(path, bytes)| Entry {
            path: path.clone(),
            sha256: sha256_hex(bytes),
            size: bytes.len() as u64,
        })
        .collect();
    list.sort();
    Manifest {
        format: FORMAT,
        scope: content.scope.clone(),
        version: meta.version,
        created: meta.created,
        expires: meta.expires,
        entries: list,
    }
}

/// Writes a signed bundle for one scope to `out`: `manifest.json` and `blobs/<sha256>`.
///
/// `out` is created if needed; blobs already there are kept (a rebuild into the same
/// folder only adds what changed). Returns the manifest that was signed.
pub fn write_bundle(
    out: &Path,
    content: &ScopeContent,
    files: &[(String, Vec<u8>)],
    meta: &BundleMeta,
    keys: &[&SigningKey],
) -> Result<Manifest, WriteError> {
    let entries = content_entries(content, files)?;
    let manifest = build_manifest(content, &entries, meta);
    let blobs = out.join(paths::BLOBS);
    std::fs::create_dir_all(&blobs)
        .map_err(|cause| WriteError::Io { path: blobs.clone(), cause })?;
    for (_, bytes) in &entries {
        let path = blobs.join(sha256_hex(bytes));
        // Same name means same bytes, so an existing blob never needs rewriting.
        if !path.exists() {
            write_file(&path, bytes)?;
        }
    }
    write_envelope(&out.join(paths::MANIFEST), &manifest, "manifest", keys)?;
    Ok(manifest)
}

impl Root {
    /// A root trusting `keys`, of which `threshold` must sign.
    pub fn for_keys(
        version: u64,
        expires: DateTime<Utc>,
        keys: &[VerifyingKey],
        threshold: usize,
    ) -> Root {
        Root {
            version,
            expires,
            keys: keys.iter().map(|k| hex::encode(k.as_bytes())).collect(),
            threshold,
        }
    }

    /// This root as an envelope signed by `keys`. A first root is signed by its own keys; a
    /// rotation (version N+1) must be signed by enough keys of both root N and itself.
    pub fn sign(&self, keys: &[&SigningKey]) -> Result<Envelope, WriteError> {
        Envelope::sign(self, keys).map_err(|cause| WriteError::Json { what: "root".into(), cause })
    }
}

/// Writes `root` signed by `keys` to `path` (e.g. `trust/root.json`, or
/// `BUNDLE_DIR/roots/N.json` for a rotation, see [`rotation_path`]). Returns the envelope.
pub fn write_root(path: &Path, root: &Root, keys: &[&SigningKey]) -> Result<Envelope, WriteError> {
    write_envelope(path, root, "root", keys)
}

/// Where a bundle carries the root of version `version`: `roots/<version>.json`.
pub fn rotation_path(bundle: &Path, version: u64) -> PathBuf {
    bundle.join(paths::ROOTS).join(format!("{version}.json"))
}

/// Parses the content entries of `manifest` back into a [`ScopeContent`]; `blob` returns
/// the bytes of an entry (already verified by the caller). `files/` entries are not read:
/// they are served as blobs.
pub fn read_scope_content(
    manifest: &Manifest,
    blob: impl Fn(&Entry) -> io::Result<Vec<u8>>,
) -> Result<ScopeContent, ReadError> {
    let mut content = ScopeContent { scope: manifest.scope.clone(), ..ScopeContent::default() };
    for entry in &manifest.entries {
        let path = entry.path.as_str();
        if path.starts_with(paths::FILES_PREFIX) {
            continue;
        }
        let bytes = blob(entry).map_err(|cause| ReadError::Io { path: path.to_string(), cause })?;
        if let Some(rest) = path.strip_prefix(paths::ITEMS_PREFIX) {
            let item: Item = from_json(path, &bytes)?;
            if rest.strip_suffix(".json") != Some(item.id.as_str()) {
                return Err(ReadError::IdMismatch { path: path.to_string(), id: item.id });
            }
            content.items.push(item);
            continue;
        }
        match path {
            paths::BRANDING => content.branding = Some(from_json(path, &bytes)?),
            paths::FUNCTIONS => content.functions = Some(from_json(path, &bytes)?),
            paths::DEVICE => content.device = Some(from_json(path, &bytes)?),
            paths::CALENDAR => content.calendar = Some(from_json(path, &bytes)?),
            paths::SYNONYMS => content.synonyms = from_json(path, &bytes)?,
            paths::REMOVED => content.removed = from_json(path, &bytes)?,
            _ => return Err(ReadError::UnknownEntry { path: path.to_string() }),
        }
    }
    Ok(content)
}

fn from_json<T: DeserializeOwned>(path: &str, bytes: &[u8]) -> Result<T, ReadError> {
    serde_json::from_slice(bytes).map_err(|cause| ReadError::Json { path: path.to_string(), cause })
}

fn to_json<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>, WriteError> {
    serde_json::to_vec_pretty(value)
        .map_err(|cause| WriteError::Json { what: what.to_string(), cause })
}

fn write_envelope<T: Serialize>(
    path: &Path,
    value: &T,
    what: &str,
    keys: &[&SigningKey],
) -> Result<Envelope, WriteError> {
    let envelope = Envelope::sign(value, keys)
        .map_err(|cause| WriteError::Json { what: what.into(), cause })?;
    let bytes = to_json(what, &envelope)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|cause| WriteError::Io { path: dir.to_path_buf(), cause })?;
    }
    write_file(path, &bytes)?;
    Ok(envelope)
}

/// Writes through a temporary name and renames, so a reader never sees half a file.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let err = |cause| WriteError::Io { path: path.to_path_buf(), cause };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::ScopeCode;

    fn meta() -> BundleMeta {
        let created = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .map(|d| d.to_utc())
            .unwrap_or_default();
        BundleMeta { version: 3, created, expires: created + chrono::Days::new(365) }
    }

    fn content() -> Result<ScopeContent, Box<dyn std::error::Error>> {
        let item = Item {
            id: "faq-1".into(),
            title: "社保卡丢了怎么办？".into(),
            domain: Some("社会保险".into()),
            baseline: false,
            links: vec![],
            url: None,
            body: crate::content::Body::Faq(crate::content::Faq {
                question: "社保卡丢了怎么办？".into(),
                answer: "携带身份证到服务窗口挂失补办。".into(),
                published: None,
            }),
        };
        Ok(ScopeContent {
            scope: ScopeCode::parse("430182")?,
            items: vec![item],
            synonyms: vec![crate::content::SynonymGroup {
                terms: vec!["社保".into(), "社会保险".into()],
            }],
            ..ScopeContent::default()
        })
    }

    #[test]
    fn written_bundle_reads_back_and_is_deterministic() -> Result<(), Box<dyn std::error::Error>> {
        let content = content()?;
        let key = SigningKey::from_bytes(&[1; 32]);
        let dir = tempfile::tempdir()?;
        let files = vec![("logo.png".to_string(), b"png".to_vec())];
        let m1 = write_bundle(dir.path(), &content, &files, &meta(), &[&key])?;
        let first = std::fs::read(dir.path().join("manifest.json"))?;
        let m2 = write_bundle(dir.path(), &content, &files, &meta(), &[&key])?;
        assert_eq!(m1, m2);
        assert_eq!(first, std::fs::read(dir.path().join("manifest.json"))?);
        assert!(m1.entry("files/logo.png").is_some());
        let back =
            read_scope_content(&m1, |e| std::fs::read(dir.path().join("blobs").join(&e.sha256)))?;
        assert_eq!(back, content);
        Ok(())
    }

    #[test]
    fn an_item_id_that_escapes_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let mut content = content()?;
        content.items[0].id = "../evil".into();
        let err = content_entries(&content, &[]).err();
        assert!(matches!(err, Some(WriteError::UnsafePath(p)) if p.contains("..")));
        Ok(())
    }
}
