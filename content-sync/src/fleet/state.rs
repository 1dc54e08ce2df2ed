//! The fleet as the dashboard sees it: each device's latest state and a bounded history in
//! memory, the versions the city published, and the alerts computed from them. Pure data:
//! the MQTT loop feeds [`Fleet::ingest`], the web pages read it, and the clock is a
//! parameter so the alert rules are tested without waiting.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use kiosk::bundle::format::{Envelope, Manifest};
use kiosk::content::ScopeCode;
use kiosk::sync::protocol::{self, Ack, Event, Health, Usage};

/// Health samples kept in memory per device for the charts (at 30 s, six hours).
pub const HISTORY: usize = 720;
/// Recent events kept in memory per device.
pub const EVENTS: usize = 50;

/// Thresholds of the alert rules.
#[derive(Clone, Debug)]
pub struct Rules {
    /// A device with no message for this long is offline, whatever its retained state says.
    pub offline_after: Duration,
    /// Content below the published version for this long is stale.
    pub stale_after: Duration,
    /// Free disk below this share of the disk (percent) alerts.
    pub disk_min_percent: f64,
    /// Frame checksums that mean an all-black screen.
    pub black_frames: Vec<String>,
    /// A resident's submission waiting longer than this for the city's receipt alerts.
    pub outbox_max_age: Duration,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            offline_after: Duration::seconds(90),
            stale_after: Duration::hours(1),
            disk_min_percent: 10.0,
            black_frames: Vec::new(),
            outbox_max_age: Duration::hours(1),
        }
    }
}

/// One health sample for the charts.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub at: DateTime<Utc>,
    pub cpu_percent: f64,
    pub memory_used_bytes: f64,
    pub disk_free_bytes: f64,
    pub temperature_c: Option<f64>,
    pub touches: f64,
}

impl Sample {
    pub fn of(h: &Health) -> Sample {
        Sample {
            at: h.at,
            cpu_percent: f64::from(h.cpu_percent),
            memory_used_bytes: h.mem_total_kb.saturating_sub(h.mem_available_kb) as f64 * 1024.0,
            disk_free_bytes: h.disk_available_bytes as f64,
            temperature_c: h.temperature_c.map(f64::from),
            touches: h.touches as f64,
        }
    }
}

/// A command sent from the dashboard and its ack, if one came.
#[derive(Clone, Debug)]
pub struct SentCommand {
    pub id: String,
    pub device: String,
    pub action: String,
    pub operator: String,
    pub at: DateTime<Utc>,
    pub ack: Option<Ack>,
}

#[derive(Clone, Debug, Default)]
pub struct Device {
    pub id: String,
    /// The deepest scope the device reports content for: its hall.
    pub scope: Option<ScopeCode>,
    /// The retained state topic: `Some(false)` after the last will.
    pub state_online: Option<bool>,
    /// When the state last changed, for "offline since".
    pub state_at: Option<DateTime<Utc>>,
    /// The last message of any kind from the device.
    pub last_seen: Option<DateTime<Utc>>,
    pub health: Option<Health>,
    pub history: VecDeque<Sample>,
    pub events: VecDeque<(DateTime<Utc>, String)>,
    /// Since when the last frame has been black / the disk nearly full, while it lasts.
    pub black_since: Option<DateTime<Utc>>,
    pub disk_low_since: Option<DateTime<Utc>>,
    /// Since when the printer has been out of paper, jammed or stopped, while it lasts.
    pub printer_since: Option<DateTime<Utc>>,
    /// When the last health report arrived, and the gap to the one before it (统一管理:
    /// does the device report at the published interval).
    pub health_at: Option<DateTime<Utc>>,
    pub health_gap: Option<Duration>,
    /// The last complete screenshot (the PNG itself is in the database).
    pub screenshot: Option<ScreenshotMeta>,
    pub searches: u64,
}

/// The last screenshot a device uploaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreenshotMeta {
    pub at: DateTime<Utc>,
    pub sha256: String,
    pub size: u64,
}

/// CUPS printer-state-reasons (without their `-error`/`-warning`/`-report` suffix) that
/// stop a kiosk from printing, with the words an operator reads.
const PRINTER_FAULTS: &[(&str, &str)] = &[
    ("media-empty", "缺纸"),
    ("media-needed", "缺纸"),
    ("media-jam", "卡纸"),
    ("paper-jam", "卡纸"),
    ("door-open", "舱门未关"),
    ("cover-open", "盖板未关"),
    ("input-tray-missing", "纸盒缺失"),
    ("marker-supply-empty", "墨粉耗尽"),
    ("toner-empty", "墨粉耗尽"),
    ("offline", "打印机离线"),
    ("shutdown", "打印机已关闭"),
];

/// What is wrong with a printer, in words, or None when it can print.
pub fn printer_fault(p: &protocol::PrinterStatus) -> Option<String> {
    let mut words: Vec<String> = Vec::new();
    for r in &p.reasons {
        let base = r
            .strip_suffix("-error")
            .or_else(|| r.strip_suffix("-warning"))
            .or_else(|| r.strip_suffix("-report"))
            .unwrap_or(r);
        if let Some((_, zh)) = PRINTER_FAULTS.iter().find(|(k, _)| *k == base) {
            words.push(format!("{zh} ({r})"));
        }
    }
    if words.is_empty() && p.state != "stopped" {
        return None;
    }
    if p.state == "stopped" {
        words.push("队列已停止 (stopped)".into());
    }
    Some(format!("打印机 {}：{}", p.name, words.join("，")))
}

/// What is wrong with a device.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertKind {
    Offline,
    Stale,
    BlackScreen,
    DiskFull,
    Printer,
    Outbox,
}

impl AlertKind {
    pub fn label(&self) -> &'static str {
        match self {
            AlertKind::Offline => "offline",
            AlertKind::Stale => "stale-content",
            AlertKind::BlackScreen => "black-screen",
            AlertKind::DiskFull => "disk-full",
            AlertKind::Printer => "printer",
            AlertKind::Outbox => "outbox-waiting",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub device: String,
    pub scope: Option<ScopeCode>,
    pub kind: AlertKind,
    pub reason: String,
    pub since: DateTime<Utc>,
}

/// The whole fleet.
#[derive(Debug, Default)]
pub struct Fleet {
    pub devices: BTreeMap<String, Device>,
    /// Published manifest version per scope, and when the fleet first saw that version.
    pub published: BTreeMap<ScopeCode, (u64, DateTime<Utc>)>,
    pub commands: VecDeque<SentCommand>,
    /// Screenshots being received, chunk by chunk.
    /// Screenshots being received, per device (the shared reassembler of `command --out`).
    pub screenshots: std::collections::HashMap<String, crate::mqtt::ScreenshotAssembler>,
}

/// What one MQTT message changed, for the database writer.
#[derive(Debug)]
pub enum Change {
    State { device: String, online: bool, at: DateTime<Utc> },
    Health { device: String, scope: Option<ScopeCode>, health: Box<Health>, at: DateTime<Utc> },
    Event { device: String, at: DateTime<Utc>, text: String },
    Ack(Ack),
    Published { scope: ScopeCode, version: u64, at: DateTime<Utc> },
    Screenshot { device: String, meta: ScreenshotMeta, png: Vec<u8> },
}

impl Fleet {
    fn device(&mut self, id: &str) -> &mut Device {
        self.devices
            .entry(id.to_string())
            .or_insert_with(|| Device { id: id.to_string(), ..Device::default() })
    }

    /// Applies one message; returns what to persist, or `None` for a topic or payload the
    /// fleet ignores (logged by the caller).
    pub fn ingest(
        &mut self,
        topic: &str,
        payload: &[u8],
        rules: &Rules,
        now: DateTime<Utc>,
    ) -> Option<Change> {
        if let Some(scope) = protocol::topic::manifest_scope(topic) {
            let env: Envelope = serde_json::from_slice(payload).ok()?;
            let m: Manifest = serde_json::from_str(&env.payload).ok()?;
            // Keep the first-seen time of a version, so "stale since" does not move.
            let entry = self.published.entry(scope.clone()).or_insert((m.version, now));
            if entry.0 != m.version {
                *entry = (m.version, now);
            }
            return Some(Change::Published { scope, version: m.version, at: entry.1 });
        }
        let rest = topic.strip_prefix(protocol::PREFIX)?.strip_prefix("/dev/")?;
        let (id, leaf) = rest.split_once('/')?;
        if !protocol::is_topic_safe(id) {
            return None;
        }
        match leaf {
            "state" => {
                let online = payload == protocol::ONLINE;
                let d = self.device(id);
                if d.state_online != Some(online) {
                    d.state_at = Some(now);
                }
                d.state_online = Some(online);
                if online {
                    // A retained "online" may be old: count it as seen now, so the device
                    // gets one offline period to send a heartbeat before it is flagged.
                    d.last_seen = Some(now);
                }
                Some(Change::State { device: id.to_string(), online, at: now })
            }
            "health" => {
                let h: Health = serde_json::from_slice(payload).ok()?;
                let scope =
                    h.content.iter().map(|v| v.scope.clone()).max_by_key(|s| s.chain().len());
                let d = self.device(id);
                d.last_seen = Some(now);
                d.health_gap = d.health_at.map(|t| now - t);
                d.health_at = Some(now);
                if scope.is_some() {
                    d.scope = scope.clone();
                }
                let black =
                    h.frame_checksum.as_ref().is_some_and(|c| rules.black_frames.contains(c));
                d.black_since = if black { d.black_since.or(Some(now)) } else { None };
                let low = h.disk_total_bytes > 0
                    && (h.disk_available_bytes as f64) * 100.0 / (h.disk_total_bytes as f64)
                        < rules.disk_min_percent;
                d.disk_low_since = if low { d.disk_low_since.or(Some(now)) } else { None };
                let printer = h.printer.as_ref().and_then(printer_fault).is_some();
                d.printer_since = if printer { d.printer_since.or(Some(now)) } else { None };
                d.history.push_back(Sample::of(&h));
                while d.history.len() > HISTORY {
                    d.history.pop_front();
                }
                d.health = Some(h.clone());
                Some(Change::Health { device: id.to_string(), scope, health: Box::new(h), at: now })
            }
            "usage" => {
                let u: Usage = serde_json::from_slice(payload).ok()?;
                let d = self.device(id);
                d.last_seen = Some(now);
                d.searches += u.searches;
                None
            }
            "event" => {
                let e: Event = serde_json::from_slice(payload).ok()?;
                let text = describe_event(&e);
                let d = self.device(id);
                d.last_seen = Some(now);
                d.events.push_front((now, text.clone()));
                d.events.truncate(EVENTS);
                Some(Change::Event { device: id.to_string(), at: now, text })
            }
            "cmd/ack" => {
                let ack: Ack = serde_json::from_slice(payload).ok()?;
                if ack.device != id {
                    return None;
                }
                self.device(id).last_seen = Some(now);
                for c in self.commands.iter_mut().filter(|c| c.id == ack.id && c.device == id) {
                    c.ack = Some(ack.clone());
                }
                Some(Change::Ack(ack))
            }
            "screenshot" => {
                let shots = self.screenshots.entry(id.to_string()).or_default();
                let sha = match shots.push(payload) {
                    Ok(done) => done?,
                    Err(e) => {
                        tracing::info!("screenshot from {id}: {e}");
                        return None;
                    }
                };
                let png = shots.take(&sha)?;
                let meta = ScreenshotMeta {
                    at: now,
                    sha256: kiosk::bundle::format::sha256_hex(&png),
                    size: png.len() as u64,
                };
                let d = self.device(id);
                d.last_seen = Some(now);
                d.screenshot = Some(meta.clone());
                Some(Change::Screenshot { device: id.to_string(), meta, png })
            }
            _ => None,
        }
    }

    /// Whether the device counts as online at `now`.
    pub fn is_online(d: &Device, rules: &Rules, now: DateTime<Utc>) -> bool {
        d.state_online != Some(false) && d.last_seen.is_some_and(|t| now - t <= rules.offline_after)
    }

    /// Every alert of one device at `now`.
    pub fn alerts_of(&self, d: &Device, rules: &Rules, now: DateTime<Utc>) -> Vec<Alert> {
        let mut out = Vec::new();
        let mut push = |kind, reason: String, since| {
            out.push(Alert { device: d.id.clone(), scope: d.scope.clone(), kind, reason, since })
        };
        if d.state_online == Some(false) {
            push(
                AlertKind::Offline,
                "断开连接（遗嘱消息 last will: offline）".to_string(),
                d.last_seen.or(d.state_at).unwrap_or(now),
            );
        } else if let Some(seen) = d.last_seen.filter(|t| now - *t > rules.offline_after) {
            push(
                AlertKind::Offline,
                format!(
                    "超过 {} 秒无心跳 (no heartbeat for {} s)",
                    rules.offline_after.num_seconds(),
                    (now - seen).num_seconds()
                ),
                seen,
            );
        }
        if let Some(h) = &d.health {
            for v in &h.content {
                if let Some((published, since)) = self.published.get(&v.scope) {
                    if v.version < *published && now - *since > rules.stale_after {
                        push(
                            AlertKind::Stale,
                            format!(
                                "{} 内容版本 {} 低于发布版本 {} (content older than published)",
                                v.scope, v.version, published
                            ),
                            *since,
                        );
                    }
                }
            }
        }
        if let Some(since) = d.black_since {
            push(
                AlertKind::BlackScreen,
                "屏幕全黑 (frame checksum of a black screen)".to_string(),
                since,
            );
        }
        if let (Some(since), Some(h)) = (d.disk_low_since, &d.health) {
            push(
                AlertKind::DiskFull,
                format!(
                    "磁盘剩余 {} / {} (disk nearly full)",
                    bytes(h.disk_available_bytes),
                    bytes(h.disk_total_bytes)
                ),
                since,
            );
        }
        if let (Some(since), Some(p)) =
            (d.printer_since, d.health.as_ref().and_then(|h| h.printer.as_ref()))
        {
            if let Some(reason) = printer_fault(p) {
                push(AlertKind::Printer, reason, since);
            }
        }
        if let Some(o) = d.health.as_ref().and_then(|h| h.outbox.as_ref()) {
            if let Some(oldest) =
                o.oldest.filter(|t| o.waiting > 0 && now - *t > rules.outbox_max_age)
            {
                push(
                    AlertKind::Outbox,
                    format!(
                        "{} 份群众申请等待回执，最早一份已等待 {} (submissions waiting too long)",
                        o.waiting,
                        human_duration(now - oldest)
                    ),
                    oldest + rules.outbox_max_age,
                );
            }
        }
        out
    }

    /// Every alert in the fleet, oldest first.
    pub fn alerts(&self, rules: &Rules, now: DateTime<Utc>) -> Vec<Alert> {
        let mut all: Vec<Alert> =
            self.devices.values().flat_map(|d| self.alerts_of(d, rules, now)).collect();
        all.sort_by(|a, b| a.since.cmp(&b.since).then(a.device.cmp(&b.device)));
        all
    }
}

fn describe_event(e: &Event) -> String {
    match e {
        Event::Applied { scope, version, bytes: b, .. } => {
            format!("applied {scope} v{version} ({})", bytes(*b))
        }
        Event::Refused { scope, version, reason, .. } => {
            format!(
                "refused {scope} v{}: {reason}",
                version.map(|v| v.to_string()).unwrap_or_else(|| "?".into())
            )
        }
        Event::CommandRefused { reason, .. } => format!("command refused: {reason}"),
    }
}

/// A duration in the largest whole unit: 3 天 4 小时, 5 小时 12 分, 7 分钟.
pub fn human_duration(d: Duration) -> String {
    let m = d.num_minutes().max(0);
    if m >= 24 * 60 {
        format!("{} 天 {} 小时", m / (24 * 60), m % (24 * 60) / 60)
    } else if m >= 60 {
        format!("{} 小时 {} 分", m / 60, m % 60)
    } else {
        format!("{m} 分钟")
    }
}

/// Human-readable bytes.
pub fn bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.1} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else {
        format!("{:.0} kB", n / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiosk::sync::protocol::{topic, ScopeVersion};

    fn health(id: &str, version: u64, free: u64, frame: &str) -> Vec<u8> {
        let scope = ScopeCode::parse("430182-001-01").expect("valid");
        serde_json::to_vec(&Health {
            device: id.into(),
            disk_total_bytes: 1000,
            disk_available_bytes: free,
            content: scope
                .chain()
                .into_iter()
                .map(|scope| ScopeVersion { scope, version, hash: None })
                .collect(),
            frame_checksum: Some(frame.into()),
            ..Health::default()
        })
        .expect("json")
    }

    #[test]
    fn silence_beyond_the_limit_is_offline_even_while_the_state_says_online() {
        let rules = Rules::default();
        let t0 = Utc::now();
        let mut f = Fleet::default();
        f.ingest(&topic::dev("k1", "state"), protocol::ONLINE, &rules, t0);
        f.ingest(&topic::dev("k1", "health"), &health("k1", 1, 500, "x"), &rules, t0);
        let d = f.devices["k1"].clone();
        assert!(Fleet::is_online(&d, &rules, t0 + Duration::seconds(60)));
        assert!(f.alerts_of(&d, &rules, t0 + Duration::seconds(60)).is_empty());
        let later = t0 + Duration::seconds(120);
        assert!(!Fleet::is_online(&d, &rules, later));
        let alerts = f.alerts_of(&d, &rules, later);
        assert_eq!(alerts.len(), 1);
        assert_eq!((alerts[0].kind.clone(), alerts[0].since), (AlertKind::Offline, t0));
    }

    #[test]
    fn black_frames_full_disks_and_the_last_will_alert_with_their_start() {
        let rules = Rules { black_frames: vec!["black".into()], ..Rules::default() };
        let t0 = Utc::now();
        let mut f = Fleet::default();
        f.ingest(&topic::dev("k1", "health"), &health("k1", 1, 50, "black"), &rules, t0);
        f.ingest(
            &topic::dev("k1", "health"),
            &health("k1", 1, 50, "black"),
            &rules,
            t0 + Duration::seconds(30),
        );
        let kinds: Vec<_> = f
            .alerts_of(&f.devices["k1"], &rules, t0 + Duration::seconds(31))
            .into_iter()
            .map(|a| (a.kind, a.since))
            .collect();
        assert_eq!(kinds, vec![(AlertKind::BlackScreen, t0), (AlertKind::DiskFull, t0)]);
        f.ingest(&topic::dev("k1", "state"), protocol::OFFLINE, &rules, t0 + Duration::seconds(40));
        let a = f.alerts_of(&f.devices["k1"], &rules, t0 + Duration::seconds(41));
        assert_eq!(a[0].kind, AlertKind::Offline);
        assert!(a[0].reason.contains("last will"));
    }

    #[test]
    fn a_jammed_printer_and_an_old_outbox_alert_with_reason_and_start() {
        let rules = Rules { outbox_max_age: Duration::minutes(30), ..Rules::default() };
        let t0 = Utc::now();
        let report = |reasons: Vec<&str>, state: &str, oldest| {
            serde_json::to_vec(&Health {
                device: "k1".into(),
                printer: Some(protocol::PrinterStatus {
                    name: "hp".into(),
                    state: state.into(),
                    reasons: reasons.into_iter().map(str::to_string).collect(),
                    queued_jobs: 1,
                }),
                outbox: Some(protocol::OutboxStatus { waiting: 3, oldest }),
                ..Health::default()
            })
            .expect("json")
        };
        let mut f = Fleet::default();
        let topic = topic::dev("k1", "health");
        f.ingest(&topic, &report(vec!["toner-low-warning"], "idle", Some(t0)), &rules, t0);
        assert!(f.alerts_of(&f.devices["k1"], &rules, t0).is_empty(), "low toner still prints");
        let t1 = t0 + Duration::minutes(10);
        f.ingest(&topic, &report(vec!["media-jam-error"], "stopped", Some(t0)), &rules, t1);
        let t2 = t0 + Duration::minutes(40);
        f.ingest(&topic, &report(vec!["media-jam-error"], "stopped", Some(t0)), &rules, t2);
        let a = f.alerts_of(&f.devices["k1"], &rules, t2);
        assert_eq!(a.len(), 2, "{a:?}");
        assert_eq!((&a[0].kind, a[0].since), (&AlertKind::Printer, t1));
        assert!(a[0].reason.contains("卡纸 (media-jam-error)") && a[0].reason.contains("stopped"));
        assert_eq!((&a[1].kind, a[1].since), (&AlertKind::Outbox, t0 + Duration::minutes(30)));
        assert!(
            a[1].reason.contains("3 份群众申请等待回执，最早一份已等待 40 分钟"),
            "{}",
            a[1].reason
        );
        f.ingest(&topic, &report(vec![], "idle", None), &rules, t2);
        assert!(f.alerts_of(&f.devices["k1"], &rules, t2).is_empty(), "both end when fixed");
    }

    #[test]
    fn content_below_the_published_version_alerts_only_after_the_threshold() {
        let rules = Rules::default();
        let t0 = Utc::now();
        let mut f = Fleet::default();
        let scope = ScopeCode::parse("430182").expect("valid");
        f.published.insert(scope, (3, t0));
        f.ingest(&topic::dev("k1", "health"), &health("k1", 2, 500, "x"), &rules, t0);
        let d = f.devices["k1"].clone();
        assert!(f
            .alerts_of(&d, &rules, t0 + Duration::minutes(30))
            .iter()
            .all(|a| a.kind != AlertKind::Stale));
        let stale: Vec<_> = f
            .alerts_of(&d, &rules, t0 + Duration::minutes(61))
            .into_iter()
            .filter(|a| a.kind == AlertKind::Stale)
            .collect();
        assert_eq!(stale.len(), 1, "only 430182 is published: {stale:?}");
        assert!(stale[0].reason.contains("430182 内容版本 2 低于发布版本 3"));
    }
}
