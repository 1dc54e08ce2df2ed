//! Health and usage reports: every `health_interval_seconds` the worker publishes one
//! [`Health`] and one [`Usage`] message on the device's topics (docs/PROTOCOL.md).
//!
//! The quick readings (CPU, memory, disk, counters, the sync status) are taken on the
//! worker's event loop when the report goes out. The slow ones read files, open the
//! outbox's SQLite file or run `lpstat` (up to 20 s when CUPS hangs), so a [`Probe`]
//! takes them on the blocking pool first and the report is published on the first tick
//! after it answers: the event loop never waits on a disk or a printer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;

use super::health;
use super::protocol::{
    topic, Health, NetworkStatus, OutboxStatus, PrinterStatus, ScopeVersion, Standard, Usage,
};
use super::{Link, SyncStatus, Telemetry};
use crate::config::Config;
use crate::content::standard::InstalledStandard;
use crate::content::ScopeCode;

/// Sends health and usage every `health_interval_seconds`.
pub(super) struct Reporter {
    device: String,
    status: Arc<Mutex<SyncStatus>>,
    telemetry: Arc<Telemetry>,
    started: Instant,
    last: Option<Instant>,
    last_at: chrono::DateTime<Utc>,
    cpu: Option<(u64, u64)>,
    /// What each probe needs. A clone goes to the blocking pool and its manifest hashes
    /// come back with the readings, so they are computed once per content version.
    probe: Probe,
    /// The probe on the blocking pool, answering on this channel.
    pending: Option<Receiver<Readings>>,
}

impl Reporter {
    pub(super) fn new(
        config: &Config,
        status: Arc<Mutex<SyncStatus>>,
        telemetry: Arc<Telemetry>,
    ) -> Reporter {
        let printer = config.printer.trim();
        Reporter {
            device: config.device_id.clone(),
            status,
            telemetry,
            started: Instant::now(),
            last: None,
            last_at: Utc::now(),
            cpu: health::cpu_times(),
            probe: Probe {
                data_dir: config.data_dir.clone(),
                outbox: config.data_dir.join(crate::requests::OUTBOX_FILE),
                broker_host: health::broker_host(&config.broker).map(str::to_string),
                printer: (!printer.is_empty()).then(|| printer.to_string()),
                manifests: ManifestHashes::default(),
                standard: InstalledStandard::default(),
            },
            pending: None,
        }
    }

    /// Called on every tick while connected: starts a probe when a report is due, and
    /// publishes the report once the probe has answered.
    pub(super) fn maybe_report(&mut self, link: &mut dyn Link) {
        if self.pending.is_none() && self.due() {
            self.last = Some(Instant::now());
            let probe = self.probe.clone();
            let (tx, rx) = std::sync::mpsc::channel();
            let job = move || {
                let _ = tx.send(probe.run());
            };
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => drop(rt.spawn_blocking(job)),
                // Outside a runtime (a unit test driving the reporter) it runs right here.
                Err(_) => job(),
            }
            self.pending = Some(rx);
        }
        let Some(rx) = &self.pending else { return };
        let readings = match rx.try_recv() {
            Ok(r) => r,
            Err(TryRecvError::Empty) => return,
            // The probe panicked: report without its readings rather than not at all.
            Err(TryRecvError::Disconnected) => Readings::default(),
        };
        self.pending = None;
        if let Some(m) = &readings.manifests {
            self.probe.manifests = m.clone();
        }
        if let Some(s) = &readings.remembered {
            self.probe.standard = s.clone();
        }
        self.publish(link, readings);
    }

    fn due(&self) -> bool {
        let secs = self.status.lock().map(|s| s.health_interval_seconds).unwrap_or(60);
        let interval = Duration::from_secs(u64::from(secs.max(1)));
        self.last.is_none_or(|l| l.elapsed() >= interval)
    }

    fn publish(&mut self, link: &mut dyn Link, readings: Readings) {
        let Ok(st) = self.status.lock().map(|s| s.clone()) else { return };
        let now = Utc::now();
        let cpu = health::cpu_times();
        let cpu_percent = match (self.cpu, cpu) {
            (Some(a), Some(b)) => health::cpu_percent(a, b),
            _ => 0.0,
        };
        self.cpu = cpu;
        let (mem_total_kb, mem_available_kb) = health::memory_kb();
        let (disk_total_bytes, disk_available_bytes) = health::disk_bytes(&self.probe.data_dir);
        let counts = self.telemetry.take();
        let hashes = readings.manifests.as_ref().map(|m| &m.hashes);
        let network =
            readings.network.map(|n| NetworkStatus { broker_rtt_ms: st.broker_rtt_ms, ..n });
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
                    // Only a hash of this very version: a switch since the probe ran
                    // leaves it out for one report rather than sending the old one's.
                    hash: hashes
                        .and_then(|h| h.get(scope))
                        .filter(|(v, _)| v == version)
                        .map(|(_, h)| h.clone()),
                })
                .collect(),
            last_sync: st.last_sync,
            connected: st.connected,
            touches: counts.touches,
            frame_checksum: self.telemetry.frame_checksum(),
            recent_errors: st.recent_errors.iter().cloned().collect(),
            network,
            printer: readings.printer,
            outbox: readings.outbox,
            standard: readings.standard,
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

/// The slow readings of one report.
#[derive(Default)]
struct Readings {
    network: Option<NetworkStatus>,
    printer: Option<PrinterStatus>,
    outbox: Option<OutboxStatus>,
    standard: Option<Standard>,
    /// The manifest hashes and fingerprints, remembered for the next probe.
    manifests: Option<ManifestHashes>,
    remembered: Option<InstalledStandard>,
}

/// Takes the slow readings, on the blocking pool.
#[derive(Clone)]
struct Probe {
    data_dir: PathBuf,
    outbox: PathBuf,
    broker_host: Option<String>,
    /// The CUPS queue from the config; `None` when the kiosk has no printer.
    printer: Option<String>,
    manifests: ManifestHashes,
    standard: InstalledStandard,
}

impl Probe {
    fn run(mut self) -> Readings {
        self.manifests.refresh(&self.data_dir);
        Readings {
            network: health::network(self.broker_host.as_deref()),
            // At most one `lpstat` pair per report; print::status kills a hung one.
            printer: self.printer.as_deref().map(crate::print::status),
            outbox: health::outbox(&self.outbox),
            standard: self.standard.get(&self.data_dir),
            manifests: Some(self.manifests),
            remembered: Some(self.standard),
        }
    }
}

/// SHA-256 of each activated manifest envelope, for the version directory `current`
/// pointed at when they were computed. A version directory never changes, so they are
/// computed again only after a switch.
#[derive(Clone, Default)]
struct ManifestHashes {
    dir: Option<PathBuf>,
    hashes: BTreeMap<ScopeCode, (u64, String)>,
}

impl ManifestHashes {
    fn refresh(&mut self, data_dir: &Path) {
        let target = std::fs::read_link(data_dir.join("current")).ok().map(|t| data_dir.join(t));
        if target.is_some() && target == self.dir {
            return;
        }
        self.hashes.clear();
        self.dir = None;
        // The manifests are read once here and hashed as the bytes on disk
        // (<version>/manifests/<scope>.json), which is what `versions()` hashes.
        let Ok(Some(current)) = crate::bundle::current_version(data_dir) else { return };
        self.hashes = current
            .versions()
            .into_iter()
            .map(|v| (v.scope, (v.version, v.manifest_sha256)))
            .collect();
        self.dir = Some(current.dir().to_path_buf());
    }
}
