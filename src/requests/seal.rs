//! Sealing a resident's form to the city: the form is serialized and encrypted to the
//! city's X25519 public key as a sealed box (libsodium `crypto_box_seal`: an ephemeral key
//! pair per message, XSalsa20-Poly1305). The kiosk holds only the public key, so once a
//! form is sealed the kiosk cannot read it back. What stays in the clear is what routing
//! and the statutory clock need and nothing about the person: the uuid, the kind, the
//! device, the receipt number, the times and the due date.

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
use crypto_box::{PublicKey, SecretKey, KEY_SIZE};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use zeroize::Zeroize;

use super::form::{DisclosureRequest, Suggestion};

/// The two kinds of submission, in the clear so the city routes them without decrypting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubmissionKind {
    /// 依申请公开
    Request,
    /// 意见建议
    Suggestion,
}

impl SubmissionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubmissionKind::Request => "request",
            SubmissionKind::Suggestion => "suggestion",
        }
    }

    pub fn parse(s: &str) -> Option<SubmissionKind> {
        [SubmissionKind::Request, SubmissionKind::Suggestion].into_iter().find(|k| k.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            SubmissionKind::Request => "政府信息公开申请",
            SubmissionKind::Suggestion => "意见建议",
        }
    }

    /// The letters that open a receipt number: 依申请 → YSQ, 意见建议 → YJJY.
    pub fn receipt_prefix(self) -> &'static str {
        match self {
            SubmissionKind::Request => "YSQ",
            SubmissionKind::Suggestion => "YJJY",
        }
    }
}

/// What the resident filled in; only ever in memory on the kiosk, and inside a sealed box.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "form", rename_all = "snake_case")]
pub enum Personal {
    Request(DisclosureRequest),
    Suggestion(Suggestion),
}

impl Personal {
    pub fn kind(&self) -> SubmissionKind {
        match self {
            Personal::Request(_) => SubmissionKind::Request,
            Personal::Suggestion(_) => SubmissionKind::Suggestion,
        }
    }
}

/// One sealed submission as it waits in the outbox and travels to the city
/// (`zwgk/v1/dev/{device}/submit`, as JSON with the box in base64).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    /// Random (v4); the city stores each uuid once, so a resend is harmless.
    pub uuid: String,
    pub kind: SubmissionKind,
    /// The kiosk that took it, to send the application receipt back.
    pub device: String,
    /// The number printed on the resident's receipt.
    pub receipt_no: String,
    /// The moment the resident pressed 提交.
    pub created: DateTime<Utc>,
    /// 收到申请之日 (China time): the statutory clock starts the day after.
    pub received_on: NaiveDate,
    /// The reply deadline, when the calendar covers it (requests only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<NaiveDate>,
    /// The sealed box of [`SealedContent`].
    #[serde(with = "base64_bytes")]
    pub sealed: Vec<u8>,
}

/// The plaintext inside the box. The uuid and receipt number are repeated inside, so a
/// box moved into another envelope is detected when the city opens it.
#[derive(Serialize, Deserialize)]
struct SealedContent {
    uuid: String,
    receipt_no: String,
    personal: Personal,
}

mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("the city's submission key must be 32 bytes written as base64 (44 characters) or hex (64 characters); check the key file or setting")]
    Malformed,
}

fn parse_key_bytes(text: &str) -> Result<[u8; KEY_SIZE], KeyError> {
    let text = text.trim();
    let bytes = if text.len() == 2 * KEY_SIZE {
        hex::decode(text).map_err(|_| KeyError::Malformed)?
    } else {
        base64::engine::general_purpose::STANDARD.decode(text).map_err(|_| KeyError::Malformed)?
    };
    bytes.try_into().map_err(|_| KeyError::Malformed)
}

/// The city's public key for submissions: all a kiosk holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CityKey(PublicKey);

impl CityKey {
    pub fn from_bytes(bytes: [u8; KEY_SIZE]) -> CityKey {
        CityKey(PublicKey::from(bytes))
    }

    /// Reads the key from base64 or hex text.
    pub fn parse(text: &str) -> Result<CityKey, KeyError> {
        parse_key_bytes(text).map(CityKey::from_bytes)
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0.as_bytes())
    }
}

/// The city's secret key: only the city inbox (content-sync) has it.
#[derive(Clone)]
pub struct CitySecret(SecretKey);

impl CitySecret {
    pub fn generate() -> CitySecret {
        CitySecret(SecretKey::generate(&mut crypto_box::aead::OsRng))
    }

    pub fn from_bytes(bytes: [u8; KEY_SIZE]) -> CitySecret {
        CitySecret(SecretKey::from(bytes))
    }

    /// Reads the key from base64 or hex text.
    pub fn parse(text: &str) -> Result<CitySecret, KeyError> {
        parse_key_bytes(text).map(CitySecret::from_bytes)
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0.to_bytes())
    }

    pub fn public(&self) -> CityKey {
        CityKey(self.0.public_key())
    }
}

impl std::fmt::Debug for CitySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CitySecret(<withheld>)")
    }
}

#[derive(Debug, Error)]
pub enum SealError {
    #[error("could not encode the form for sealing: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("sealing the form failed; nothing was stored")]
    Encrypt,
}

/// Why the city could not open a submission.
#[derive(Debug, Error)]
pub enum OpenError {
    #[error("submission {uuid}: the sealed box does not open with this key (wrong city key, or damaged in transit)")]
    Decrypt { uuid: String },
    #[error("submission {uuid}: the opened content is not a form: {source}")]
    Decode { uuid: String, source: serde_json::Error },
    #[error("submission {uuid}: the sealed content belongs to another submission; refused")]
    Mismatch { uuid: String },
}

/// Seals `personal` for the city, bound to `uuid` and `receipt_no`. The plaintext is
/// wiped from memory before returning.
pub fn seal(
    key: &CityKey,
    uuid: &str,
    receipt_no: &str,
    personal: &Personal,
) -> Result<Vec<u8>, SealError> {
    let content = SealedContent {
        uuid: uuid.to_string(),
        receipt_no: receipt_no.to_string(),
        personal: personal.clone(),
    };
    let mut plain = serde_json::to_vec(&content)?;
    let sealed = key.0.seal(&mut crypto_box::aead::OsRng, &plain);
    plain.zeroize();
    sealed.map_err(|_| SealError::Encrypt)
}

/// Opens a submission's box with the city's secret key (the city inbox does this).
pub fn open(secret: &CitySecret, submission: &Submission) -> Result<Personal, OpenError> {
    let uuid = submission.uuid.clone();
    let mut plain = secret
        .0
        .unseal(&submission.sealed)
        .map_err(|_| OpenError::Decrypt { uuid: uuid.clone() })?;
    let content: Result<SealedContent, _> = serde_json::from_slice(&plain);
    plain.zeroize();
    let content = content.map_err(|source| OpenError::Decode { uuid: uuid.clone(), source })?;
    if content.uuid != submission.uuid
        || content.receipt_no != submission.receipt_no
        || content.personal.kind() != submission.kind
    {
        return Err(OpenError::Mismatch { uuid });
    }
    Ok(content.personal)
}

/// A random (version 4) UUID in its usual text form.
pub fn new_uuid() -> String {
    use rand::RngCore as _;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Personal {
        Personal::Request(DisclosureRequest {
            name: "李四".into(),
            id_number: "11010519491231002X".into(),
            consent: true,
            ..DisclosureRequest::default()
        })
    }

    #[test]
    fn the_city_opens_what_the_kiosk_sealed() {
        let secret = CitySecret::generate();
        let sealed = seal(&secret.public(), "u-1", "YSQ-1", &request()).expect("seal");
        let sub = Submission {
            uuid: "u-1".into(),
            kind: SubmissionKind::Request,
            device: "k1".into(),
            receipt_no: "YSQ-1".into(),
            created: DateTime::from_timestamp(1_800_000_000, 0).expect("time"),
            received_on: NaiveDate::from_ymd_opt(2027, 1, 15).expect("date"),
            due: None,
            sealed,
        };
        assert_eq!(open(&secret, &sub).expect("open"), request());
        // Another city's key cannot open it.
        assert!(matches!(open(&CitySecret::generate(), &sub), Err(OpenError::Decrypt { .. })));
        // A box moved into another envelope is refused.
        let moved = Submission { uuid: "u-2".into(), ..sub.clone() };
        assert!(matches!(open(&secret, &moved), Err(OpenError::Mismatch { .. })));
        // The envelope survives its JSON wire form.
        let json = serde_json::to_string(&sub).expect("json");
        assert_eq!(serde_json::from_str::<Submission>(&json).expect("parse"), sub);
    }

    #[test]
    fn keys_round_trip_through_text() {
        let secret = CitySecret::generate();
        let public = secret.public();
        assert_eq!(CityKey::parse(&public.to_base64()), Ok(public.clone()));
        let hex_text = hex::encode(
            base64::engine::general_purpose::STANDARD.decode(public.to_base64()).expect("b64"),
        );
        assert_eq!(CityKey::parse(&hex_text), Ok(public));
        assert_eq!(
            CitySecret::parse(&secret.to_base64()).expect("parse").public(),
            secret.public()
        );
        assert_eq!(CityKey::parse("c2hvcnQ="), Err(KeyError::Malformed));
        assert!(!format!("{secret:?}").contains(&secret.to_base64()));
    }

    #[test]
    fn uuids_are_version_4_and_differ() {
        let (a, b) = (new_uuid(), new_uuid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
    }
}
