//! Verification of manifests, blobs and root rotations, before anything on disk changes.
//!
//! Split in two so that sync can check a manifest the moment it arrives (is it signed by
//! the pinned root, for our scope chain, newer than what we have, not expired, within the
//! limits?) and then check each blob as it streams in, refusing a single byte past the size
//! the manifest declares.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::Path;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::format::{is_safe_path, Entry, Envelope, Manifest, Root, FORMAT};
use crate::content::ScopeCode;

/// Why a bundle, blob or root was refused. Each message says what was wrong in plain words;
/// the live content is never changed when one of these is returned.
#[derive(Debug, Error)]
pub enum VerifyError {
    #[error("a signature does not match what was signed: the {what} was changed after signing or damaged on the way")]
    BadSignature { what: &'static str },
    #[error("the {what} is signed by key {key}, which this kiosk does not trust")]
    UnknownKey { what: &'static str, key: String },
    #[error("the {what} has {valid} valid signature(s) from trusted keys; {needed} are needed")]
    NotEnoughSignatures { what: &'static str, valid: usize, needed: usize },
    #[error("version {offered} of scope {scope} is not newer than the installed version {installed}: refusing a rollback")]
    Rollback { scope: ScopeCode, installed: u64, offered: u64 },
    #[error("root version {offered} cannot follow the pinned root version {current}: a root rotation must go up by exactly one")]
    RootVersion { current: u64, offered: u64 },
    #[error("the {what} expired at {expires}; the city must publish a fresh one")]
    Expired { what: &'static str, expires: DateTime<Utc> },
    #[error("the bundle is for scope {scope}, which is not in this kiosk's chain ({chain})")]
    WrongScope { scope: ScopeCode, chain: String },
    #[error("blob {path} does not have the SHA-256 the manifest names: it was changed or damaged")]
    HashMismatch { path: String },
    #[error("blob {path} is {actual} bytes but the manifest says {manifest}")]
    SizeMismatch { path: String, manifest: u64, actual: u64 },
    #[error("the bundle is too large: {what} is {actual}, the limit is {limit}")]
    Oversize { what: &'static str, actual: u64, limit: u64 },
    #[error("the manifest names the path “{path}”, which could escape the bundle (absolute, `..` or empty parts)")]
    UnsafePath { path: String },
    #[error("the {what} is malformed: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("the manifest is bundle format {found}; this kiosk reads format {supported}: update the kiosk software first")]
    UnsupportedFormat { found: u32, supported: u32 },
    #[error("blob {path} ({sha256}) is missing from the bundle")]
    MissingBlob { path: String, sha256: String },
    #[error("reading blob {path}: {cause}")]
    Io { path: String, cause: io::Error },
}

/// Size limits for what a kiosk accepts. A manifest over them is refused before any blob is
/// fetched, so a bad or hostile publisher cannot fill the kiosk's disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of `manifest.json` (or of a root file).
    pub manifest_bytes: u64,
    /// Bytes of any one blob.
    pub blob_bytes: u64,
    /// Bytes of all blobs of one manifest.
    pub total_bytes: u64,
    /// Entries of one manifest.
    pub entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // A whole city's text is tens of megabytes; gazette PDFs are the large blobs.
        Limits {
            manifest_bytes: 32 << 20,
            blob_bytes: 256 << 20,
            total_bytes: 8 << 30,
            entries: 200_000,
        }
    }
}

/// Checks an envelope's signatures against `keys` with `threshold`: enough distinct valid
/// signatures, or an error naming why not.
pub fn check_signatures(
    envelope: &Envelope,
    keys: &[String],
    threshold: usize,
    what: &'static str,
) -> Result<(), VerifyError> {
    let valid = envelope.valid_signers(keys).len();
    if valid >= threshold.max(1) {
        return Ok(());
    }
    if valid == 0 {
        if envelope.signatures.iter().any(|s| keys.contains(&s.key)) {
            return Err(VerifyError::BadSignature { what });
        }
        if let Some(s) = envelope.signatures.first() {
            return Err(VerifyError::UnknownKey { what, key: s.key.clone() });
        }
    }
    Err(VerifyError::NotEnoughSignatures { what, valid, needed: threshold.max(1) })
}

/// Parses an envelope from bytes, refusing more than `limit` bytes.
pub fn parse_envelope(
    bytes: &[u8],
    limit: u64,
    what: &'static str,
) -> Result<Envelope, VerifyError> {
    if bytes.len() as u64 > limit {
        return Err(VerifyError::Oversize { what, actual: bytes.len() as u64, limit });
    }
    serde_json::from_slice(bytes)
        .map_err(|e| VerifyError::Malformed { what, reason: e.to_string() })
}

/// What a manifest is checked against: the pinned root, this kiosk's scope chain, the
/// versions it has installed, the time and the limits.
#[derive(Clone, Debug)]
pub struct Policy<'a> {
    pub root: &'a Root,
    pub chain: &'a [ScopeCode],
    /// The installed version of each scope that has one.
    pub installed: &'a BTreeMap<ScopeCode, u64>,
    pub now: DateTime<Utc>,
    pub limits: Limits,
}

/// Verifies a manifest envelope on its own (no blobs): signatures by the pinned root,
/// format, scope, version, expiry, limits and entry paths. Returns the manifest.
///
/// The payload is parsed only after its signatures check out, so nothing unauthenticated
/// is ever interpreted.
pub fn verify_manifest(
    bytes: &[u8],
    policy: &Policy<'_>,
) -> Result<(Envelope, Manifest), VerifyError> {
    let envelope = parse_envelope(bytes, policy.limits.manifest_bytes, "manifest")?;
    check_signatures(&envelope, &policy.root.keys, policy.root.threshold, "manifest")?;
    let manifest = parse_manifest_payload(&envelope)?;
    if !policy.chain.contains(&manifest.scope) {
        let chain = policy.chain.iter().map(ScopeCode::as_str).collect::<Vec<_>>().join(" → ");
        return Err(VerifyError::WrongScope { scope: manifest.scope, chain });
    }
    if let Some(&installed) = policy.installed.get(&manifest.scope) {
        if manifest.version <= installed {
            return Err(VerifyError::Rollback {
                scope: manifest.scope,
                installed,
                offered: manifest.version,
            });
        }
    }
    if manifest.expires <= policy.now {
        return Err(VerifyError::Expired { what: "manifest", expires: manifest.expires });
    }
    check_entries(&manifest, &policy.limits)?;
    Ok((envelope, manifest))
}

/// Parses the payload of an already-verified manifest envelope and checks its format.
pub fn parse_manifest_payload(envelope: &Envelope) -> Result<Manifest, VerifyError> {
    // Read the format first on its own, so a newer format is reported as such and not as
    // a parse failure of fields this build does not know.
    #[derive(serde::Deserialize)]
    struct FormatOnly {
        format: u32,
    }
    let fmt: FormatOnly = serde_json::from_str(&envelope.payload)
        .map_err(|e| VerifyError::Malformed { what: "manifest", reason: e.to_string() })?;
    if fmt.format != FORMAT {
        return Err(VerifyError::UnsupportedFormat { found: fmt.format, supported: FORMAT });
    }
    serde_json::from_str(&envelope.payload)
        .map_err(|e| VerifyError::Malformed { what: "manifest", reason: e.to_string() })
}

/// Limits, safe paths, well-formed hashes and unique paths of a manifest's entries.
pub fn check_entries(manifest: &Manifest, limits: &Limits) -> Result<(), VerifyError> {
    let count = manifest.entries.len();
    if count > limits.entries {
        return Err(VerifyError::Oversize {
            what: "the number of entries",
            actual: count as u64,
            limit: limits.entries as u64,
        });
    }
    let mut total: u64 = 0;
    let mut paths: Vec<&str> = Vec::with_capacity(count);
    for e in &manifest.entries {
        if !is_safe_path(&e.path) {
            return Err(VerifyError::UnsafePath { path: e.path.clone() });
        }
        // The hash is also the blob's file name, so it must be exactly 64 lowercase hex digits.
        if e.sha256.len() != 64
            || !e.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(VerifyError::Malformed {
                what: "manifest",
                reason: format!("entry {} has “{}” where a SHA-256 belongs", e.path, e.sha256),
            });
        }
        if e.size > limits.blob_bytes {
            return Err(VerifyError::Oversize {
                what: "a blob",
                actual: e.size,
                limit: limits.blob_bytes,
            });
        }
        total = total.saturating_add(e.size);
        paths.push(&e.path);
    }
    if total > limits.total_bytes {
        return Err(VerifyError::Oversize {
            what: "the total of all blobs",
            actual: total,
            limit: limits.total_bytes,
        });
    }
    paths.sort_unstable();
    if let Some(w) = paths.windows(2).find(|w| w[0] == w[1]) {
        return Err(VerifyError::Malformed {
            what: "manifest",
            reason: format!("entry {} is listed twice", w[0]),
        });
    }
    Ok(())
}

/// A blob being checked as its bytes arrive: refuses a byte past the declared size and
/// compares the SHA-256 at the end. Sync feeds it downloaded chunks.
pub struct BlobCheck<'a> {
    entry: &'a Entry,
    hasher: Sha256,
    seen: u64,
}

impl<'a> BlobCheck<'a> {
    pub fn new(entry: &'a Entry) -> Self {
        BlobCheck { entry, hasher: Sha256::new(), seen: 0 }
    }

    /// Adds the next chunk; an error as soon as the blob grows past its declared size.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), VerifyError> {
        self.seen = self.seen.saturating_add(chunk.len() as u64);
        if self.seen > self.entry.size {
            return Err(self.size_error(self.seen));
        }
        self.hasher.update(chunk);
        Ok(())
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.seen
    }

    /// Checks the size and hash once all bytes are in.
    pub fn finish(self) -> Result<(), VerifyError> {
        if self.seen != self.entry.size {
            return Err(self.size_error(self.seen));
        }
        if hex::encode(self.hasher.finalize()) != self.entry.sha256 {
            return Err(VerifyError::HashMismatch { path: self.entry.path.clone() });
        }
        Ok(())
    }

    fn size_error(&self, actual: u64) -> VerifyError {
        VerifyError::SizeMismatch {
            path: self.entry.path.clone(),
            manifest: self.entry.size,
            actual,
        }
    }
}

/// Verifies a blob read from `reader` against its entry, reading at most one byte past the
/// declared size, and copies the bytes to `sink` as they are checked. The sink's content is
/// only good if this returns `Ok`.
pub fn verify_blob_stream(
    entry: &Entry,
    reader: impl Read,
    sink: &mut impl io::Write,
) -> Result<(), VerifyError> {
    let io_err = |cause| VerifyError::Io { path: entry.path.clone(), cause };
    let mut check = BlobCheck::new(entry);
    let mut limited = reader.take(entry.size.saturating_add(1));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e)),
        };
        check.update(&buf[..n])?;
        sink.write_all(&buf[..n]).map_err(io_err)?;
    }
    check.finish()
}

/// Verifies the blob file at `path` against its entry. A file larger than declared is
/// reported with its real size, without reading it.
pub fn verify_blob_file(entry: &Entry, path: &Path) -> Result<(), VerifyError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(VerifyError::MissingBlob {
                path: entry.path.clone(),
                sha256: entry.sha256.clone(),
            })
        }
        Err(cause) => return Err(VerifyError::Io { path: entry.path.clone(), cause }),
    };
    let len =
        file.metadata().map_err(|cause| VerifyError::Io { path: entry.path.clone(), cause })?.len();
    if len != entry.size {
        return Err(VerifyError::SizeMismatch {
            path: entry.path.clone(),
            manifest: entry.size,
            actual: len,
        });
    }
    verify_blob_stream(entry, file, &mut io::sink())
}

/// Verifies bytes already in memory against their entry.
pub fn verify_blob_bytes(entry: &Entry, bytes: &[u8]) -> Result<(), VerifyError> {
    let mut check = BlobCheck::new(entry);
    check.update(bytes)?;
    check.finish()
}

/// Parses and checks a root envelope that is to be pinned without a predecessor (the
/// initial root from the config or the embedded demo): well formed and signed by a
/// threshold of its own keys. Its expiry is not checked: it is trusted by installation.
pub fn verify_initial_root(bytes: &[u8], limits: &Limits) -> Result<Root, VerifyError> {
    let envelope = parse_envelope(bytes, limits.manifest_bytes, "root")?;
    let root = parse_root_payload(&envelope)?;
    check_signatures(&envelope, &root.keys, root.threshold, "root")?;
    Ok(root)
}

/// Verifies a rotation, TUF style: the new root must be version `current.version + 1`,
/// signed by a threshold of the current root's keys AND a threshold of its own keys, and
/// not expired.
pub fn verify_rotation(
    current: &Root,
    bytes: &[u8],
    now: DateTime<Utc>,
    limits: &Limits,
) -> Result<Root, VerifyError> {
    let envelope = parse_envelope(bytes, limits.manifest_bytes, "root")?;
    check_signatures(
        &envelope,
        &current.keys,
        current.threshold,
        "new root (by the current root's keys)",
    )?;
    let new = parse_root_payload(&envelope)?;
    check_signatures(&envelope, &new.keys, new.threshold, "new root (by its own keys)")?;
    if new.version != current.version.saturating_add(1) {
        return Err(VerifyError::RootVersion { current: current.version, offered: new.version });
    }
    if new.expires <= now {
        return Err(VerifyError::Expired { what: "new root", expires: new.expires });
    }
    Ok(new)
}

fn parse_root_payload(envelope: &Envelope) -> Result<Root, VerifyError> {
    let root: Root = serde_json::from_str(&envelope.payload)
        .map_err(|e| VerifyError::Malformed { what: "root", reason: e.to_string() })?;
    if root.threshold == 0 || root.threshold > root.keys.len() {
        return Err(VerifyError::Malformed {
            what: "root",
            reason: format!(
                "threshold {} does not fit its {} key(s)",
                root.threshold,
                root.keys.len()
            ),
        });
    }
    if let Some(bad) = root.keys.iter().find(|k| super::format::parse_public_key(k).is_none()) {
        return Err(VerifyError::Malformed {
            what: "root",
            reason: format!("“{bad}” is not an Ed25519 public key"),
        });
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn keys() -> (SigningKey, SigningKey, Vec<String>) {
        let (a, b) = (SigningKey::from_bytes(&[1; 32]), SigningKey::from_bytes(&[2; 32]));
        let hexes = [&a, &b].iter().map(|k| hex::encode(k.verifying_key().as_bytes())).collect();
        (a, b, hexes)
    }

    #[test]
    fn a_threshold_of_two_needs_two_distinct_trusted_signers() -> Result<(), serde_json::Error> {
        let (a, b, trusted) = keys();
        let one = Envelope::sign(&"公告", &[&a])?;
        assert!(matches!(
            check_signatures(&one, &trusted, 2, "manifest"),
            Err(VerifyError::NotEnoughSignatures { valid: 1, needed: 2, .. })
        ));
        // The same key twice still counts once.
        let twice = Envelope::sign(&"公告", &[&a, &a])?;
        assert!(check_signatures(&twice, &trusted, 2, "manifest").is_err());
        let both = Envelope::sign(&"公告", &[&a, &b])?;
        assert!(check_signatures(&both, &trusted, 2, "manifest").is_ok());
        Ok(())
    }

    #[test]
    fn an_envelope_without_signatures_is_refused() -> Result<(), serde_json::Error> {
        let (_, _, trusted) = keys();
        let none = Envelope::sign(&"公告", &[])?;
        assert!(matches!(
            check_signatures(&none, &trusted, 1, "manifest"),
            Err(VerifyError::NotEnoughSignatures { valid: 0, .. })
        ));
        Ok(())
    }

    #[test]
    fn a_root_whose_threshold_exceeds_its_keys_is_malformed() -> Result<(), serde_json::Error> {
        let (a, _, trusted) = keys();
        let root =
            Root { version: 1, expires: Utc::now(), keys: trusted[..1].to_vec(), threshold: 2 };
        let bytes = serde_json::to_vec(&Envelope::sign(&root, &[&a])?)?;
        assert!(matches!(
            verify_initial_root(&bytes, &Limits::default()),
            Err(VerifyError::Malformed { what: "root", .. })
        ));
        Ok(())
    }
}
