//! What the admin panel shows about sync, and the counters the UI feeds into telemetry.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::content::ScopeCode;

/// How many recent errors the status and the health report keep.
const RECENT_ERRORS: usize = 10;

/// A snapshot of the sync engine, for the admin panel.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncStatus {
    /// False when no broker is configured: the kiosk runs offline only.
    pub enabled: bool,
    pub connected: bool,
    /// The activated manifest version of each scope of the chain that has content.
    pub versions: BTreeMap<ScopeCode, u64>,
    /// When a sync last finished: applied, or found nothing new.
    pub last_sync: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub recent_errors: VecDeque<String>,
    /// Payload bytes received (manifests, chunks, commands) since start.
    pub bytes_received: u64,
    /// Payload bytes sent (requests, state, telemetry, acks) since start.
    pub bytes_sent: u64,
    /// Blob bytes written to the download cache since start.
    pub blob_bytes: u64,
    /// From the installed device settings.
    pub health_interval_seconds: u32,
    /// Round trip of the last MQTT keep-alive ping (PINGREQ → PINGRESP) in milliseconds;
    /// `None` until the first answer on this run.
    pub broker_rtt_ms: Option<u32>,
}

impl SyncStatus {
    /// Notes the round trip of a keep-alive ping: the time from the PINGREQ leaving the
    /// worker's event loop to its PINGRESP coming back.
    pub fn record_ping(&mut self, rtt: std::time::Duration) {
        self.broker_rtt_ms = Some(u32::try_from(rtt.as_millis()).unwrap_or(u32::MAX));
    }

    pub fn error(&mut self, message: String) {
        tracing::warn!("sync: {message}");
        if self.recent_errors.len() == RECENT_ERRORS {
            self.recent_errors.pop_front();
        }
        self.recent_errors.push_back(message.clone());
        self.last_error = Some(message);
    }
}

/// Counters the UI increments and the health report reads and resets. They hold counts
/// and item ids only: never a query, never anything a resident typed.
#[derive(Debug, Default)]
pub struct Telemetry {
    touches: AtomicU64,
    searches: AtomicU64,
    views: Mutex<BTreeMap<String, u64>>,
    functions: Mutex<BTreeMap<String, u64>>,
    frame_checksum: Mutex<Option<String>>,
}

/// One interval's counts, taken by [`Telemetry::take`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    pub touches: u64,
    pub searches: u64,
    pub views: BTreeMap<String, u64>,
    pub functions: BTreeMap<String, u64>,
}

impl Telemetry {
    pub fn touch(&self) {
        self.touches.fetch_add(1, Ordering::Relaxed);
    }

    pub fn search(&self) {
        self.searches.fetch_add(1, Ordering::Relaxed);
    }

    pub fn view_item(&self, id: &str) {
        if let Ok(mut m) = self.views.lock() {
            *m.entry(id.to_string()).or_default() += 1;
        }
    }

    /// `name` is a function id such as `search`, `catalog`, `request`.
    pub fn use_function(&self, name: &str) {
        if let Ok(mut m) = self.functions.lock() {
            *m.entry(name.to_string()).or_default() += 1;
        }
    }

    /// The checksum of the last rendered frame (the UI computes it; see `Health`).
    pub fn set_frame_checksum(&self, checksum: String) {
        if let Ok(mut c) = self.frame_checksum.lock() {
            *c = Some(checksum);
        }
    }

    pub fn frame_checksum(&self) -> Option<String> {
        self.frame_checksum.lock().ok().and_then(|c| c.clone())
    }

    /// The counts since the last call, resetting them.
    pub fn take(&self) -> Counts {
        let take_map = |m: &Mutex<BTreeMap<String, u64>>| {
            m.lock().map(|mut m| std::mem::take(&mut *m)).unwrap_or_default()
        };
        Counts {
            touches: self.touches.swap(0, Ordering::Relaxed),
            searches: self.searches.swap(0, Ordering::Relaxed),
            views: take_map(&self.views),
            functions: take_map(&self.functions),
        }
    }
}
