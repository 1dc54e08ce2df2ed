//! The MQTT protocol between kiosks and the city: topic names and payloads, as plain data
//! with no IO, shared by the kiosk's sync engine and content-sync. docs/PROTOCOL.md is the
//! prose version of this file; keep the two in step.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::bundle::format::{sha256_hex, Entry, Envelope, Manifest, SignatureEntry};
use crate::content::ScopeCode;

/// Every topic starts with this prefix; the version lets a future protocol run beside it.
pub const PREFIX: &str = "zwgk/v1";

/// Largest blob bytes in one chunk message. Mosquitto's default limit is far higher, but
/// clustered brokers often cap packets at 64–256 KiB, and small chunks make a resumed
/// transfer lose little.
pub const MAX_CHUNK: usize = 64 * 1024;

/// The shared-subscription group `content-sync serve` workers join, so several of them
/// split the blob requests between them.
pub const SERVE_SHARE: &str = "$share/serve/zwgk/v1/blob/get";

/// Retained payloads of the state topic.
pub const ONLINE: &[u8] = b"online";
pub const OFFLINE: &[u8] = b"offline";

/// Topic names. Device ids and scope codes must not contain `/`, `+` or `#`; see
/// [`is_topic_safe`].
pub mod topic {
    use super::PREFIX;
    use crate::content::ScopeCode;

    /// Retained signed manifest envelope of one scope (city → kiosks).
    pub fn manifest(scope: &ScopeCode) -> String {
        format!("{PREFIX}/content/{scope}/manifest")
    }
    /// Retained manifest delta of one scope: the changes from the previous version and
    /// the new signatures (city → kiosks). Small, so a kiosk subscribes to it always and
    /// to the full manifest only when the delta does not apply.
    pub fn delta(scope: &ScopeCode) -> String {
        format!("{PREFIX}/content/{scope}/delta")
    }
    /// Parses `zwgk/v1/content/{scope}/delta` back into its scope.
    pub fn delta_scope(topic: &str) -> Option<ScopeCode> {
        let rest = topic.strip_prefix(PREFIX)?.strip_prefix("/content/")?;
        ScopeCode::parse(rest.strip_suffix("/delta")?).ok()
    }
    /// Signed remote commands for every kiosk in a scope (city → kiosks, not retained).
    pub fn scope_cmd(scope: &ScopeCode) -> String {
        format!("{PREFIX}/content/{scope}/cmd")
    }
    /// Retained root rotation `n` (`roots/n.json` of a bundle: the root of version `n`,
    /// signed by the keys of version `n - 1` and its own), city → kiosks. Under `content/`
    /// so the ACL that lets kiosks read manifests covers it.
    pub fn root(n: u64) -> String {
        format!("{PREFIX}/content/root/{n}")
    }
    /// Every root rotation, for a kiosk's subscription.
    pub fn roots() -> String {
        format!("{PREFIX}/content/root/+")
    }
    /// Parses `zwgk/v1/content/root/{n}` back into `n`.
    pub fn root_version(topic: &str) -> Option<u64> {
        topic.strip_prefix(PREFIX)?.strip_prefix("/content/root/")?.parse().ok()
    }
    /// Blob requests (kiosks → city).
    pub fn blob_get() -> String {
        format!("{PREFIX}/blob/get")
    }
    /// One device's topic: `zwgk/v1/dev/{device}/{leaf}`; leaf is `blob`, `state`,
    /// `health`, `usage`, `event`, `cmd`, `cmd/ack`, `screenshot`, `submit` or `receipt`.
    ///
    /// `screenshot` carries a PNG the kiosk took for a `screenshot` command, in chunk
    /// messages ([`encode_chunk`](super::encode_chunk): the PNG's SHA-256, offset, total)
    /// of at most [`MAX_CHUNK`](super::MAX_CHUNK) bytes, QoS 1, not retained; the
    /// command's ack names the PNG's SHA-256 and size once every chunk is queued.
    pub fn dev(device: &str, leaf: &str) -> String {
        format!("{PREFIX}/dev/{device}/{leaf}")
    }
    /// Parses `zwgk/v1/content/{scope}/manifest` back into its scope.
    pub fn manifest_scope(topic: &str) -> Option<ScopeCode> {
        let rest = topic.strip_prefix(PREFIX)?.strip_prefix("/content/")?;
        ScopeCode::parse(rest.strip_suffix("/manifest")?).ok()
    }
    /// Parses `zwgk/v1/dev/{device}/cmd/ack` back into its device.
    pub fn ack_device(topic: &str) -> Option<&str> {
        topic.strip_prefix(PREFIX)?.strip_prefix("/dev/")?.strip_suffix("/cmd/ack")
    }

    /// The device whose screenshot chunk this is.
    pub fn screenshot_device(topic: &str) -> Option<&str> {
        topic.strip_prefix(PREFIX)?.strip_prefix("/dev/")?.strip_suffix("/screenshot")
    }
}

/// Whether a device id can be used inside a topic (and as a certificate CN).
pub fn is_topic_safe(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// A kiosk asks for `len` bytes of blob `sha256` starting at `offset`. Published on
/// [`topic::blob_get`] as JSON; answered with chunks on `dev/{device}/blob`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRequest {
    pub device: String,
    pub sha256: String,
    pub offset: u64,
    pub len: u64,
}

/// The header of a chunk message. On the wire a chunk is
/// `[u8 kind: 0 data, 1 error][32 bytes SHA-256][u64 BE offset][u64 BE total][data | UTF-8 error]`:
/// 49 bytes of header, binary because a JSON header (~100 bytes) would add 6% to a typical
/// 1.6 KB item blob, and base64 data a third to every transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkHeader {
    /// Lowercase hex SHA-256 of the whole blob.
    pub sha256: String,
    pub offset: u64,
    /// The whole blob's size, so a kiosk can tell a short blob from a lost chunk.
    pub total: u64,
    /// Set when the server cannot serve the blob (unknown hash, bad range); no data follows.
    pub error: Option<String>,
}

/// Bytes of a chunk header on the wire.
pub const CHUNK_HEADER: usize = 1 + 32 + 8 + 8;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("chunk message is shorter than its header")]
    Short,
    #[error("chunk header is not valid: {0}")]
    Header(String),
}

/// Builds a chunk message. A header whose hash is not 64 hex digits gets an all-zero hash
/// (the server only ever sends hashes it has checked).
pub fn encode_chunk(header: &ChunkHeader, data: &[u8]) -> Vec<u8> {
    let hash: [u8; 32] =
        hex::decode(&header.sha256).ok().and_then(|b| b.try_into().ok()).unwrap_or([0; 32]);
    let mut out = Vec::with_capacity(CHUNK_HEADER + data.len());
    out.push(u8::from(header.error.is_some()));
    out.extend_from_slice(&hash);
    out.extend_from_slice(&header.offset.to_be_bytes());
    out.extend_from_slice(&header.total.to_be_bytes());
    match &header.error {
        Some(e) => out.extend_from_slice(e.as_bytes()),
        None => out.extend_from_slice(data),
    }
    out
}

/// Splits a chunk message into its header and data.
pub fn decode_chunk(msg: &[u8]) -> Result<(ChunkHeader, &[u8]), ChunkError> {
    if msg.len() < CHUNK_HEADER {
        return Err(ChunkError::Short);
    }
    let num = |r: std::ops::Range<usize>| {
        msg.get(r).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes)
    };
    let (Some(offset), Some(total)) = (num(33..41), num(41..49)) else {
        return Err(ChunkError::Short);
    };
    let rest = &msg[CHUNK_HEADER..];
    let (error, data) = match msg[0] {
        0 => (None, rest),
        1 => (Some(String::from_utf8_lossy(rest).into_owned()), &rest[..0]),
        k => return Err(ChunkError::Header(format!("unknown chunk kind {k}"))),
    };
    Ok((ChunkHeader { sha256: hex::encode(&msg[1..33]), offset, total, error }, data))
}

/// A manifest as the change from the version before it. The kiosk rebuilds the new
/// payload from its own copy of the old one and checks the signatures over the rebuilt
/// bytes, so a delta is trusted exactly as much as the full manifest: if the rebuilt bytes
/// differ in any way, the signature fails and the kiosk falls back to the full manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestDelta {
    /// SHA-256 of the base manifest's payload string.
    pub from_sha256: String,
    pub from_version: u64,
    /// The new manifest with `entries` empty; the entries come from the base and the
    /// changes below.
    pub head: Manifest,
    /// Paths in the base that the new version no longer has.
    pub removed: Vec<String>,
    /// Entries that are new or changed.
    pub changed: Vec<Entry>,
    /// The new envelope's signatures.
    pub signatures: Vec<SignatureEntry>,
}

/// The delta from `old` to `new` (both manifest envelopes), when both parse.
pub fn make_delta(old: &Envelope, new: &Envelope) -> Option<ManifestDelta> {
    let old_m: Manifest = serde_json::from_str(&old.payload).ok()?;
    let new_m: Manifest = serde_json::from_str(&new.payload).ok()?;
    let old_entries: std::collections::HashMap<&str, &Entry> =
        old_m.entries.iter().map(|e| (e.path.as_str(), e)).collect();
    let new_paths: std::collections::HashSet<&str> =
        new_m.entries.iter().map(|e| e.path.as_str()).collect();
    let removed = old_m
        .entries
        .iter()
        .filter(|e| !new_paths.contains(e.path.as_str()))
        .map(|e| e.path.clone())
        .collect();
    let changed = new_m
        .entries
        .iter()
        .filter(|e| old_entries.get(e.path.as_str()) != Some(e))
        .cloned()
        .collect();
    Some(ManifestDelta {
        from_sha256: sha256_hex(old.payload.as_bytes()),
        from_version: old_m.version,
        head: Manifest { entries: Vec::new(), ..new_m },
        removed,
        changed,
        signatures: new.signatures.clone(),
    })
}

/// Rebuilds the new envelope from the base envelope and a delta; `None` when the delta is
/// not from this base. The result is unverified: check it like any manifest.
pub fn apply_delta(base: &Envelope, delta: &ManifestDelta) -> Option<Envelope> {
    if sha256_hex(base.payload.as_bytes()) != delta.from_sha256 {
        return None;
    }
    let base_m: Manifest = serde_json::from_str(&base.payload).ok()?;
    let mut entries: std::collections::BTreeMap<String, Entry> =
        base_m.entries.into_iter().map(|e| (e.path.clone(), e)).collect();
    for path in &delta.removed {
        entries.remove(path);
    }
    for e in &delta.changed {
        entries.insert(e.path.clone(), e.clone());
    }
    let mut list: Vec<Entry> = entries.into_values().collect();
    // The same order the bundle writer signs.
    list.sort();
    let manifest = Manifest { entries: list, ..delta.head.clone() };
    Some(Envelope {
        payload: serde_json::to_string(&manifest).ok()?,
        signatures: delta.signatures.clone(),
    })
}

/// The outcome of one sync, published on `dev/{device}/event`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A new version of a scope was verified, fetched and activated.
    Applied { scope: ScopeCode, version: u64, bytes: u64, at: DateTime<Utc> },
    /// A manifest (or its blobs) was refused; the kiosk keeps serving what it had.
    Refused { scope: ScopeCode, version: Option<u64>, reason: String, at: DateTime<Utc> },
    /// A remote command was refused before being acted on.
    CommandRefused { reason: String, at: DateTime<Utc> },
}

/// What the city may ask a kiosk to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Re-read the manifests and fetch whatever is new.
    Resync,
    /// Restart the kiosk application.
    Restart,
    /// Take a screenshot and upload it on `dev/{device}/screenshot` (see [`topic::dev`]);
    /// the ack's result is `screenshot <sha256> <bytes> B`.
    Screenshot,
    /// Show an announcement now.
    Announce {
        text: String,
        #[serde(default)]
        seconds: u32,
    },
    /// Change one local device setting: `key` is a field of
    /// [`DeviceSettings`](crate::content::DeviceSettings), `value` as an operator types it;
    /// both are checked by `content::settings::parse` before anything is saved.
    SetSetting { key: String, value: String },
}

/// Who a command is for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Device(String),
    Scope(ScopeCode),
}

/// A remote command, carried as the payload of an [`Envelope`] signed by the city's root
/// keys. The id lets the city match acks; the expiry stops a replay days later.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Command {
    pub id: String,
    pub target: Target,
    pub issued: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    #[serde(flatten)]
    pub action: Action,
}

/// A kiosk's answer to a command, on `dev/{device}/cmd/ack`, sent once the action is done
/// (or has failed, or the UI did not answer in time), not on receipt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// The command's id, or empty when the command could not even be read.
    pub id: String,
    pub device: String,
    pub ok: bool,
    /// What was done, or why not, in plain words.
    pub result: String,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CommandError {
    #[error("command is not a signed envelope: {0}")]
    Malformed(String),
    #[error("command is not signed by enough trusted root keys ({valid} of {threshold})")]
    Unsigned { valid: usize, threshold: usize },
    #[error("command {id} expired at {expires}")]
    Expired { id: String, expires: DateTime<Utc> },
    #[error("command {id} is for another device or scope")]
    NotForMe { id: String },
}

/// Checks a command envelope: signed by `threshold` of the `trusted` root keys, not
/// expired at `now`, and addressed to this device or a scope of its chain.
pub fn verify_command(
    bytes: &[u8],
    trusted: &[String],
    threshold: usize,
    device: &str,
    chain: &[ScopeCode],
    now: DateTime<Utc>,
) -> Result<Command, CommandError> {
    let env: Envelope =
        serde_json::from_slice(bytes).map_err(|e| CommandError::Malformed(e.to_string()))?;
    let valid = env.valid_signers(trusted).len();
    if valid < threshold.max(1) {
        return Err(CommandError::Unsigned { valid, threshold });
    }
    let cmd: Command =
        serde_json::from_str(&env.payload).map_err(|e| CommandError::Malformed(e.to_string()))?;
    if cmd.expires <= now {
        return Err(CommandError::Expired { id: cmd.id, expires: cmd.expires });
    }
    let mine = match &cmd.target {
        Target::Device(d) => d == device,
        Target::Scope(s) => chain.contains(s),
    };
    if !mine {
        return Err(CommandError::NotForMe { id: cmd.id });
    }
    Ok(cmd)
}

/// Periodic device health, on `dev/{device}/health`. No personal data.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub device: String,
    pub app_version: String,
    pub at: DateTime<Utc>,
    pub uptime_seconds: u64,
    /// Whole-machine CPU use since the previous report, in percent.
    pub cpu_percent: f32,
    pub mem_total_kb: u64,
    pub mem_available_kb: u64,
    pub disk_total_bytes: u64,
    pub disk_available_bytes: u64,
    /// The hottest thermal zone, where the board has a sensor.
    pub temperature_c: Option<f32>,
    /// Activated manifest version per scope of the chain.
    pub content: Vec<ScopeVersion>,
    pub last_sync: Option<DateTime<Utc>>,
    pub connected: bool,
    pub touches: u64,
    /// A checksum of the last rendered frame, as reported by the UI (black-screen check:
    /// the city compares it with the known checksum of an all-black frame).
    pub frame_checksum: Option<String>,
    pub recent_errors: Vec<String>,
    /// The network the kiosk reaches the broker through.
    #[serde(default)]
    pub network: Option<NetworkStatus>,
    /// The configured CUPS printer; None when the kiosk has no printer.
    #[serde(default)]
    pub printer: Option<PrinterStatus>,
    /// Residents' submissions waiting in the outbox for the city's receipt.
    #[serde(default)]
    pub outbox: Option<OutboxStatus>,
    /// Fingerprints of what the 五统一 audit compares with what the city published.
    #[serde(default)]
    pub standard: Option<Standard>,
}

/// The network part of a health report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkStatus {
    /// The interface of the default route, e.g. `eth0`, `wlan0`, `wwan0`.
    pub interface: String,
    /// `ethernet`, `wifi`, `cellular` or `other`.
    pub kind: String,
    /// The interface's IPv4 or IPv6 address, when it has one.
    pub address: Option<String>,
    /// Wi-Fi signal in dBm, where the interface reports it.
    pub signal_dbm: Option<i32>,
    /// Round trip of the last MQTT keep-alive ping to the broker, in milliseconds.
    pub broker_rtt_ms: Option<u32>,
}

/// The printer part of a health report, from CUPS.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PrinterStatus {
    /// The CUPS queue name from the kiosk's config.
    pub name: String,
    /// `idle`, `printing`, `stopped` or `unknown` (queue missing, CUPS not answering).
    pub state: String,
    /// CUPS printer-state-reasons other than `none`, e.g. `media-empty`, `media-jam`,
    /// `toner-low`, `offline-report`.
    pub reasons: Vec<String>,
    /// Jobs waiting in the queue.
    pub queued_jobs: u32,
}

/// The outbox part of a health report: counts and ages only, nothing of what was written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OutboxStatus {
    /// Submissions stored and not yet answered by the city's receipt.
    pub waiting: u64,
    /// When the oldest waiting submission was made.
    pub oldest: Option<DateTime<Utc>>,
}

/// SHA-256 fingerprints (lowercase hex) of what a kiosk actually runs, in the parts the
/// 五统一 standard names; the fleet computes the same fingerprints from what the city
/// published for the kiosk's scope chain and shows where they differ.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standard {
    /// 统一标识: the merged branding.
    pub branding: String,
    /// 统一内容: the baseline items the kiosk serves (ids and content hashes).
    pub baseline: String,
    /// 统一功能: the enabled functions, in order.
    pub functions: String,
    /// 统一设置: the device settings in force (published settings plus local overrides).
    pub settings: String,
}

/// One scope's content version on a kiosk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeVersion {
    pub scope: ScopeCode,
    pub version: u64,
    /// SHA-256 (lowercase hex) of the activated manifest envelope's bytes, so the city can
    /// tell a kiosk that runs exactly what it published.
    #[serde(default)]
    pub hash: Option<String>,
}

/// Usage counted over one health interval, on `dev/{device}/usage`. Counters only: no
/// query text, no person.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub device: String,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub searches: u64,
    /// Item id → views in this interval.
    pub item_views: std::collections::BTreeMap<String, u64>,
    /// Function name → uses in this interval.
    pub functions: std::collections::BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_round_trips_and_a_truncated_one_is_refused() {
        let header =
            ChunkHeader { sha256: "ab".repeat(32), offset: 65536, total: 70000, error: None };
        let msg = encode_chunk(&header, b"data");
        let (back, data) = decode_chunk(&msg).expect("valid chunk");
        assert_eq!(back, header);
        assert_eq!(data, b"data");
        assert_eq!(decode_chunk(&msg[..5]), Err(ChunkError::Short));
    }

    #[test]
    fn topics_parse_back() {
        let scope = ScopeCode::parse("430182-001").expect("valid");
        assert_eq!(topic::manifest_scope(&topic::manifest(&scope)), Some(scope));
        assert_eq!(topic::ack_device(&topic::dev("k-1", "cmd/ack")), Some("k-1"));
        assert_eq!(topic::root_version(&topic::root(3)), Some(3));
        assert_eq!(topic::manifest_scope(&topic::root(3)), None);
        assert_eq!(topic::delta_scope(&topic::root(3)), None);
        assert!(!is_topic_safe("a/b") && !is_topic_safe("+") && is_topic_safe("hall-01"));
    }

    fn manifest(version: u64, entries: &[(&str, &str)]) -> Manifest {
        let at = DateTime::parse_from_rfc3339("2026-11-23T08:00:00.123456Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        Manifest {
            format: crate::bundle::format::FORMAT,
            scope: ScopeCode::parse("430100").expect("valid"),
            version,
            created: at,
            expires: at + chrono::Duration::days(30),
            entries: entries
                .iter()
                .map(|(p, b)| Entry {
                    path: p.to_string(),
                    sha256: sha256_hex(b.as_bytes()),
                    size: b.len() as u64,
                })
                .collect(),
        }
    }

    #[test]
    fn a_delta_rebuilds_the_exact_signed_payload_and_only_from_its_base() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let old = Envelope::sign(
            &manifest(1, &[("items/a.json", "a"), ("items/b.json", "b"), ("items/c.json", "c")]),
            &[&key],
        )
        .expect("sign");
        let new = Envelope::sign(
            &manifest(2, &[("items/a.json", "a"), ("items/b.json", "B"), ("items/d.json", "d")]),
            &[&key],
        )
        .expect("sign");
        let delta = make_delta(&old, &new).expect("delta");
        assert_eq!(delta.removed, vec!["items/c.json".to_string()]);
        assert_eq!(delta.changed.len(), 2);
        assert_eq!(apply_delta(&old, &delta), Some(new.clone()));
        assert_eq!(apply_delta(&new, &delta), None, "a delta applies only to its own base");
    }
}
