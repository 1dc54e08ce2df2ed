//! Reassembling the screenshots kiosks upload for a `screenshot` command: chunk messages
//! on `zwgk/v1/dev/{device}/screenshot` (the `protocol::encode_chunk` layout: the PNG's
//! SHA-256, offset, total, data), QoS 1, so a chunk may come twice; the ack on
//! `dev/{device}/cmd/ack` then says `screenshot <sha256> <bytes> B`. `content-sync command
//! … screenshot --out` and the fleet dashboard both use [`ScreenshotAssembler`].

use std::collections::{BTreeMap, HashMap};

use kiosk::bundle::format::sha256_hex;
use kiosk::sync::protocol::decode_chunk;
use thiserror::Error;

/// The largest screenshot accepted: a 4K screen as an uncompressed RGB PNG is 25 MB, so
/// anything bigger is not a screenshot and is not buffered.
pub const MAX_SCREENSHOT: u64 = 32 << 20;

/// Screenshots being received at once; a device that starts more loses its oldest.
const MAX_PARTIAL: usize = 8;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ScreenshotError {
    #[error("a screenshot chunk is malformed: {0}")]
    Malformed(String),
    #[error("the kiosk reported an error instead of a screenshot: {0}")]
    Kiosk(String),
    #[error("a screenshot of {0} bytes is larger than the {MAX_SCREENSHOT} bytes accepted")]
    TooLarge(u64),
    #[error("a chunk of screenshot {sha256} does not fit its size ({offset} + {len} > {total})")]
    OutOfRange { sha256: String, offset: u64, len: u64, total: u64 },
    #[error("screenshot {sha256} does not match its SHA-256 once reassembled; it is dropped")]
    HashMismatch { sha256: String },
}

/// One PNG in the making: chunks by offset (a resent chunk replaces itself).
#[derive(Debug, Default)]
struct Partial {
    total: u64,
    chunks: BTreeMap<u64, Vec<u8>>,
    /// Order of arrival, to drop the oldest when too many are open.
    started: u64,
}

impl Partial {
    /// The bytes from 0 to `total` when the chunks cover them without a gap.
    fn complete(&self) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(usize::try_from(self.total).ok()?);
        for (&offset, data) in &self.chunks {
            let end = offset + data.len() as u64;
            let have = out.len() as u64;
            if offset > have {
                return None; // a gap: still waiting
            }
            if end > have {
                let skip = usize::try_from(have - offset).ok()?;
                out.extend_from_slice(&data[skip..]);
            }
        }
        (out.len() as u64 == self.total).then_some(out)
    }
}

/// Collects screenshot chunks, in any order and with duplicates, into verified PNGs.
///
/// ```ignore
/// let mut shots = ScreenshotAssembler::new();
/// // for each message on zwgk/v1/dev/{device}/screenshot:
/// if let Some(sha) = shots.push(&payload)? { let png = shots.take(&sha); }
/// // or, from the command's ack: ScreenshotAssembler::parse_ack(&ack.result) → (sha, size)
/// ```
#[derive(Debug, Default)]
pub struct ScreenshotAssembler {
    partial: HashMap<String, Partial>,
    done: HashMap<String, Vec<u8>>,
    arrivals: u64,
}

impl ScreenshotAssembler {
    pub fn new() -> ScreenshotAssembler {
        ScreenshotAssembler::default()
    }

    /// Adds one chunk message. Returns the PNG's SHA-256 when this chunk completed it and
    /// the bytes match the hash (fetch them with [`take`](Self::take)); `None` while parts
    /// are missing or when the PNG was already complete.
    pub fn push(&mut self, msg: &[u8]) -> Result<Option<String>, ScreenshotError> {
        let (header, data) =
            decode_chunk(msg).map_err(|e| ScreenshotError::Malformed(e.to_string()))?;
        if let Some(e) = header.error {
            return Err(ScreenshotError::Kiosk(e));
        }
        if header.total > MAX_SCREENSHOT {
            return Err(ScreenshotError::TooLarge(header.total));
        }
        let len = data.len() as u64;
        if header.offset.saturating_add(len) > header.total || (len == 0 && header.total > 0) {
            return Err(ScreenshotError::OutOfRange {
                sha256: header.sha256,
                offset: header.offset,
                len,
                total: header.total,
            });
        }
        if self.done.contains_key(&header.sha256) {
            return Ok(None);
        }
        if !self.partial.contains_key(&header.sha256) && self.partial.len() >= MAX_PARTIAL {
            let oldest = self.partial.iter().min_by_key(|(_, p)| p.started).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.partial.remove(&k);
            }
        }
        self.arrivals += 1;
        let arrival = self.arrivals;
        let part = self.partial.entry(header.sha256.clone()).or_insert_with(|| Partial {
            total: header.total,
            started: arrival,
            ..Partial::default()
        });
        if part.total != header.total {
            return Err(ScreenshotError::OutOfRange {
                sha256: header.sha256,
                offset: header.offset,
                len,
                total: header.total,
            });
        }
        part.chunks.insert(header.offset, data.to_vec());
        let Some(png) = part.complete() else { return Ok(None) };
        self.partial.remove(&header.sha256);
        if sha256_hex(&png) != header.sha256 {
            return Err(ScreenshotError::HashMismatch { sha256: header.sha256 });
        }
        self.done.insert(header.sha256.clone(), png);
        Ok(Some(header.sha256))
    }

    /// The complete, verified PNG with this SHA-256, handed over once.
    pub fn take(&mut self, sha256: &str) -> Option<Vec<u8>> {
        self.done.remove(sha256)
    }

    /// Whether the PNG with this SHA-256 is complete and verified (and not yet taken).
    pub fn has(&self, sha256: &str) -> bool {
        self.done.contains_key(sha256)
    }

    /// Bytes received so far of the PNG with this SHA-256 (progress display).
    pub fn received(&self, sha256: &str) -> u64 {
        if let Some(done) = self.done.get(sha256) {
            return done.len() as u64;
        }
        self.partial
            .get(sha256)
            .map(|p| p.chunks.values().map(|c| c.len() as u64).sum())
            .unwrap_or(0)
    }

    /// Reads a screenshot command's ack result, `screenshot <sha256> <bytes> B`, into the
    /// PNG's SHA-256 and size.
    pub fn parse_ack(result: &str) -> Option<(String, u64)> {
        let mut words = result.split_whitespace();
        let (Some("screenshot"), Some(sha), Some(n), Some("B"), None) =
            (words.next(), words.next(), words.next(), words.next(), words.next())
        else {
            return None;
        };
        let is_hash = sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit());
        Some((sha.to_string(), n.parse().ok()?)).filter(|_| is_hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiosk::sync::protocol::{encode_chunk, ChunkHeader};

    fn chunks(data: &[u8], size: usize) -> Vec<Vec<u8>> {
        let sha = sha256_hex(data);
        data.chunks(size)
            .enumerate()
            .map(|(i, c)| {
                let header = ChunkHeader {
                    sha256: sha.clone(),
                    offset: (i * size) as u64,
                    total: data.len() as u64,
                    error: None,
                };
                encode_chunk(&header, c)
            })
            .collect()
    }

    #[test]
    fn chunks_in_any_order_with_duplicates_make_the_png_once() {
        let png: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let mut msgs = chunks(&png, 3000);
        msgs.reverse();
        msgs.insert(1, msgs[0].clone());
        let mut a = ScreenshotAssembler::new();
        let mut done = Vec::new();
        for m in &msgs {
            if let Some(sha) = a.push(m).expect("valid chunk") {
                done.push(sha);
            }
        }
        assert_eq!(done, vec![sha256_hex(&png)]);
        assert_eq!(a.take(&done[0]), Some(png));
        let ack = format!("screenshot {} 10000 B", done[0]);
        assert_eq!(ScreenshotAssembler::parse_ack(&ack), Some((done[0].clone(), 10_000)));
        assert_eq!(ScreenshotAssembler::parse_ack("resync started"), None);
    }

    #[test]
    fn bytes_that_do_not_match_the_hash_are_dropped() {
        let png = b"not really the picture".to_vec();
        let header = ChunkHeader {
            sha256: sha256_hex(b"the picture"),
            offset: 0,
            total: png.len() as u64,
            error: None,
        };
        let mut a = ScreenshotAssembler::new();
        assert!(matches!(
            a.push(&encode_chunk(&header, &png)),
            Err(ScreenshotError::HashMismatch { .. })
        ));
        assert!(!a.has(&header.sha256));
    }
}
