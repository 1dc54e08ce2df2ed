//! Reassembles the screenshots kiosks upload on `dev/{device}/screenshot`: chunk messages
//! ([`protocol::decode_chunk`]: the PNG's SHA-256, offset, total) that may arrive in any
//! order and more than once. One PNG in progress per device; a chunk of another PNG starts
//! over. A finished PNG is returned only when its SHA-256 matches and it is a PNG.
//!
//! A small local assembler: the commands engineer plans a shared one in `mqtt`; when it
//! lands, this module should use it.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use kiosk::bundle::format::sha256_hex;
use kiosk::sync::protocol;

/// Largest screenshot accepted (a 4K PNG is well below this).
pub const MAX_PNG: u64 = 16 << 20;
/// A partial screenshot with no chunk for this long is dropped.
const STALE_AFTER_SECONDS: i64 = 120;
const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

#[derive(Debug)]
struct Partial {
    sha256: String,
    buf: Vec<u8>,
    /// Offsets of the chunks received, with their lengths, so a repeated chunk counts once.
    chunks: BTreeSet<(u64, u64)>,
    received: u64,
    last: DateTime<Utc>,
}

#[derive(Debug, Default)]
pub struct Assembler {
    partial: HashMap<String, Partial>,
}

impl Assembler {
    /// Takes one chunk message from `device`; returns the PNG once it is complete and
    /// checked.
    pub fn push(&mut self, device: &str, msg: &[u8], now: DateTime<Utc>) -> Option<Vec<u8>> {
        self.partial.retain(|_, p| now - p.last < Duration::seconds(STALE_AFTER_SECONDS));
        let (header, data) = match protocol::decode_chunk(msg) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!("screenshot from {device}: {e}");
                return None;
            }
        };
        if let Some(e) = &header.error {
            tracing::info!("screenshot from {device} failed: {e}");
            self.partial.remove(device);
            return None;
        }
        if header.total == 0 || header.total > MAX_PNG {
            tracing::info!("screenshot from {device}: refused size {}", header.total);
            return None;
        }
        let end = header.offset.checked_add(data.len() as u64)?;
        if end > header.total {
            return None;
        }
        let p = self.partial.entry(device.to_string()).or_insert_with(|| Partial {
            sha256: String::new(),
            buf: Vec::new(),
            chunks: BTreeSet::new(),
            received: 0,
            last: now,
        });
        if p.sha256 != header.sha256 || p.buf.len() as u64 != header.total {
            *p = Partial {
                sha256: header.sha256.clone(),
                buf: vec![0; header.total as usize],
                chunks: BTreeSet::new(),
                received: 0,
                last: now,
            };
        }
        p.last = now;
        if p.chunks.insert((header.offset, data.len() as u64)) {
            p.buf[header.offset as usize..end as usize].copy_from_slice(data);
            p.received += data.len() as u64;
        }
        if p.received < header.total {
            return None;
        }
        let p = self.partial.remove(device)?;
        if sha256_hex(&p.buf) != p.sha256 || !p.buf.starts_with(PNG_MAGIC) {
            tracing::info!("screenshot from {device}: the bytes do not match their SHA-256");
            return None;
        }
        Some(p.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiosk::sync::protocol::{encode_chunk, ChunkHeader};

    fn chunks(png: &[u8], size: usize) -> Vec<Vec<u8>> {
        let sha256 = sha256_hex(png);
        png.chunks(size)
            .enumerate()
            .map(|(i, c)| {
                let h = ChunkHeader {
                    sha256: sha256.clone(),
                    offset: (i * size) as u64,
                    total: png.len() as u64,
                    error: None,
                };
                encode_chunk(&h, c)
            })
            .collect()
    }

    #[test]
    fn chunks_in_any_order_and_repeated_make_the_png_once() {
        let mut png = PNG_MAGIC.to_vec();
        png.extend((0..1000u32).map(|i| (i % 251) as u8));
        let mut msgs = chunks(&png, 300);
        msgs.reverse();
        msgs.insert(1, msgs[0].clone());
        let mut a = Assembler::default();
        let now = Utc::now();
        let out: Vec<_> = msgs.iter().filter_map(|m| a.push("k1", m, now)).collect();
        assert_eq!(out, vec![png.clone()]);

        // A chunk with the wrong bytes makes the hash fail: nothing is returned.
        let mut bad = chunks(&png, 300);
        let last = bad.len() - 1;
        let n = bad[last].len();
        bad[last][n - 1] ^= 1;
        assert!(bad.iter().all(|m| a.push("k1", m, now).is_none()));
    }
}
