//! The bundle format: a signed manifest plus content-addressed blobs.
//!
//! ```text
//! BUNDLE_DIR/
//!   manifest.json       Envelope { payload: Manifest as a JSON string, signatures }
//!   roots/N.json        optional: Envelope { payload: Root } for key rotation, N = 2, 3, …
//!   blobs/<sha256-hex>  every entry's bytes, named by their SHA-256
//! ```
//!
//! The signature covers the exact payload bytes, so verification never depends on how a
//! JSON library orders or spaces fields. Blob names are hashes, so a bundle can never
//! write outside its directory; entry paths are logical names and are checked anyway.
//!
//! Entry paths by convention (see [`paths`]): `items/<id>.json` for each [`Item`],
//! `branding.json`, `functions.json`, `device.json`, `calendar.json`, `synonyms.json`,
//! `removed.json`, and `files/<name>` for attachments, logos and gazette PDFs.
//!
//! [`Item`]: crate::content::Item

use base64::Engine as _;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::content::ScopeCode;

/// The bundle format version this build reads and writes.
pub const FORMAT: u32 = 1;

/// Conventional entry paths.
pub mod paths {
    pub const MANIFEST: &str = "manifest.json";
    pub const BLOBS: &str = "blobs";
    pub const ROOTS: &str = "roots";
    pub const BRANDING: &str = "branding.json";
    pub const FUNCTIONS: &str = "functions.json";
    pub const DEVICE: &str = "device.json";
    pub const CALENDAR: &str = "calendar.json";
    pub const SYNONYMS: &str = "synonyms.json";
    pub const REMOVED: &str = "removed.json";
    pub const ITEMS_PREFIX: &str = "items/";
    pub const FILES_PREFIX: &str = "files/";

    pub fn item(id: &str) -> String {
        format!("{ITEMS_PREFIX}{id}.json")
    }
}

/// What a bundle holds, signed by the city's root keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub scope: ScopeCode,
    /// Goes only up for a scope; a kiosk refuses a version not above the one it has.
    pub version: u64,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    /// Every entry, sorted by path.
    pub entries: Vec<Entry>,
}

/// One logical file of a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry {
    pub path: String,
    /// Lowercase hex SHA-256 of the bytes; also the blob's file name.
    pub sha256: String,
    pub size: u64,
}

impl Manifest {
    pub fn entry(&self, path: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.path == path)
    }

    /// Total bytes of all blobs.
    pub fn total_size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }
}

/// The root of trust: which keys may sign manifests (and the next root).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Root {
    /// 1 for the root pinned at installation; each rotation adds one.
    pub version: u64,
    pub expires: DateTime<Utc>,
    /// Hex-encoded Ed25519 public keys.
    pub keys: Vec<String>,
    /// How many distinct keys of `keys` must sign.
    pub threshold: usize,
}

/// A signed document: the exact payload bytes (as a JSON string) and signatures over them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub payload: String,
    pub signatures: Vec<SignatureEntry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignatureEntry {
    /// Hex public key of the signer.
    pub key: String,
    /// Base64 Ed25519 signature over the payload bytes.
    pub sig: String,
}

impl Envelope {
    /// Serializes `value` and signs it with every key given.
    pub fn sign<T: Serialize>(value: &T, keys: &[&SigningKey]) -> serde_json::Result<Envelope> {
        let payload = serde_json::to_string(value)?;
        let signatures = keys
            .iter()
            .map(|k| SignatureEntry {
                key: hex::encode(k.verifying_key().as_bytes()),
                sig: base64::engine::general_purpose::STANDARD
                    .encode(k.sign(payload.as_bytes()).to_bytes()),
            })
            .collect();
        Ok(Envelope { payload, signatures })
    }

    /// The distinct keys among `trusted` (hex) with a valid signature on the payload.
    pub fn valid_signers(&self, trusted: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in &self.signatures {
            if !trusted.contains(&s.key) || out.contains(&s.key) {
                continue;
            }
            let Some(key) = parse_public_key(&s.key) else { continue };
            let Ok(sig_bytes) = base64::engine::general_purpose::STANDARD.decode(&s.sig) else {
                continue;
            };
            let Ok(sig) = Signature::from_slice(&sig_bytes) else { continue };
            if key.verify(self.payload.as_bytes(), &sig).is_ok() {
                out.push(s.key.clone());
            }
        }
        out
    }
}

pub fn parse_public_key(hex_key: &str) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = hex::decode(hex_key).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether a logical entry path is safe: relative, no `..`, no empty or dot segments, no
/// backslashes or NULs. Checked on every manifest, even though blobs are stored by hash.
pub fn is_safe_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains('\0')
        && path.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

/// A signing key file: the 32-byte secret as hex on one line (what `content-sync keygen`
/// writes). Returns `None` for anything else.
pub fn parse_signing_key(text: &str) -> Option<SigningKey> {
    let bytes: [u8; 32] = hex::decode(text.trim()).ok()?.try_into().ok()?;
    Some(SigningKey::from_bytes(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_payload_byte_breaks_the_signature() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let trusted = vec![hex::encode(key.verifying_key().as_bytes())];
        let mut env = Envelope::sign(&"政务公开", &[&key]).expect("serializable");
        assert_eq!(env.valid_signers(&trusted), trusted);
        env.payload = env.payload.replace('公', "办");
        assert!(env.valid_signers(&trusted).is_empty());
    }

    #[test]
    fn paths_that_escape_are_unsafe() {
        assert!(is_safe_path("items/a.json"));
        for bad in ["../x", "a/../../x", "/etc/passwd", "a//b", "a\\b", "", "./a"] {
            assert!(!is_safe_path(bad), "{bad}");
        }
    }
}
