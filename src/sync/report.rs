//! Health and usage reports: every `health_interval_seconds` the worker publishes one
//! [`Health`] and one [`Usage`] message on the device's topics (docs/PROTOCOL.md).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;

use super::health;
use super::protocol::{topic, Health, ScopeVersion, Usage};
use super::{Link, SyncStatus, Telemetry};
use crate::config::Config;

/// Sends health and usage every `health_interval_seconds`.
pub(super) struct Reporter {
    device: String,
    data_dir: std::path::PathBuf,
    status: Arc<Mutex<SyncStatus>>,
    telemetry: Arc<Telemetry>,
    started: Instant,
    last: Option<Instant>,
    last_at: chrono::DateTime<Utc>,
    cpu: Option<(u64, u64)>,
}

impl Reporter {
    pub(super) fn new(
        config: &Config,
        status: Arc<Mutex<SyncStatus>>,
        telemetry: Arc<Telemetry>,
    ) -> Reporter {
        Reporter {
            device: config.device_id.clone(),
            data_dir: config.data_dir.clone(),
            status,
            telemetry,
            started: Instant::now(),
            last: None,
            last_at: Utc::now(),
            cpu: health::cpu_times(),
        }
    }

    pub(super) fn maybe_report(&mut self, link: &mut dyn Link) {
        let Ok(st) = self.status.lock().map(|s| s.clone()) else { return };
        let interval = Duration::from_secs(u64::from(st.health_interval_seconds.max(1)));
        if self.last.is_some_and(|l| l.elapsed() < interval) {
            return;
        }
        self.last = Some(Instant::now());
        let now = Utc::now();
        let cpu = health::cpu_times();
        let cpu_percent = match (self.cpu, cpu) {
            (Some(a), Some(b)) => health::cpu_percent(a, b),
            _ => 0.0,
        };
        self.cpu = cpu;
        let (mem_total_kb, mem_available_kb) = health::memory_kb();
        let (disk_total_bytes, disk_available_bytes) = health::disk_bytes(&self.data_dir);
        let counts = self.telemetry.take();
        let report = Health {
            device: self.device.clone(),
            app_version: env!("CARGO_PKG_VERSION").to_string(),
            at: now,
            uptime_seconds: self.started.elapsed().as_secs(),
            cpu_percent,
            mem_total_kb,
            mem_available_kb,
            disk_total_bytes,
            disk_available_bytes,
            temperature_c: health::temperature_c(),
            content: st
                .versions
                .iter()
                .map(|(scope, version)| ScopeVersion {
                    scope: scope.clone(),
                    version: *version,
                    hash: None,
                })
                .collect(),
            last_sync: st.last_sync,
            connected: st.connected,
            touches: counts.touches,
            frame_checksum: self.telemetry.frame_checksum(),
            recent_errors: st.recent_errors.iter().cloned().collect(),
            network: None,
            printer: None,
            outbox: None,
            standard: crate::content::standard::of_installed(&self.data_dir),
        };
        let usage = Usage {
            device: self.device.clone(),
            from: Some(self.last_at),
            to: Some(now),
            searches: counts.searches,
            item_views: counts.views,
            functions: counts.functions,
        };
        self.last_at = now;
        for (leaf, bytes) in
            [("health", serde_json::to_vec(&report)), ("usage", serde_json::to_vec(&usage))]
        {
            let Ok(bytes) = bytes else { continue };
            let n = bytes.len() as u64;
            if link.publish(&topic::dev(&self.device, leaf), bytes, false).is_ok() {
                if let Ok(mut s) = self.status.lock() {
                    s.bytes_sent += n;
                }
            }
        }
    }
}
