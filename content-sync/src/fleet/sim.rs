//! The fleet simulator: N virtual kiosks, each with its own MQTT connection and last will,
//! speaking the real protocol — retained `state` online, periodic `health` and `usage`, an
//! `event` when content is applied, and acks to commands (verified against the root keys
//! when `--trust` is given, as a real kiosk does). For tests, demos and the benchmark.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use kiosk::bundle::format::Envelope;
use kiosk::content::ScopeCode;
use kiosk::sync::client::backoff;
use kiosk::sync::protocol::{self, topic, Ack, Command, Event, Health, ScopeVersion, Usage};
use rand::Rng as _;
use rumqttc::{AsyncClient, Event as MqttEvent, LastWill, Packet, QoS};

use super::FleetBroker;

/// The frame checksum simulated black screens report.
pub const BLACK_FRAME: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(clap::Args, Debug, Clone)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub broker: FleetBroker,
    /// How many virtual kiosks.
    #[arg(long, default_value_t = 10)]
    pub devices: usize,
    /// Hall scope(s) the kiosks belong to, assigned round-robin.
    #[arg(long = "scope", default_value = "430182-001-01")]
    pub scopes: Vec<String>,
    /// Device ids are PREFIX-0001, PREFIX-0002, …
    #[arg(long, default_value = "sim")]
    pub prefix: String,
    /// Seconds between health reports.
    #[arg(long, default_value_t = 30)]
    pub interval: u64,
    /// The content version every kiosk reports for each scope of its chain.
    #[arg(long, default_value_t = 1)]
    pub content_version: u64,
    /// The first N kiosks report a black frame.
    #[arg(long, default_value_t = 0)]
    pub black: usize,
    /// The last N kiosks stop reporting after --silent-after seconds but stay connected
    /// (a hung kiosk: no last will is ever sent).
    #[arg(long, default_value_t = 0)]
    pub silent: usize,
    #[arg(long, default_value_t = 60)]
    pub silent_after: u64,
    /// The published bundles (as for `fleet --published`): kiosks report the 五统一
    /// fingerprints the city expects for their scope, so the audit passes.
    #[arg(long)]
    pub published: Option<std::path::PathBuf>,
    /// Device numbers (1-based, comma-separated) whose fingerprints drift from the
    /// published ones: kiosk n drifts in part (n-1) mod 4 — 统一标识, 统一内容, 统一功能,
    /// 统一设置.
    #[arg(long, value_delimiter = ',')]
    pub drift: Vec<usize>,
    /// Device numbers whose printer is out of paper (stopped, media-empty-error).
    #[arg(long, value_delimiter = ',')]
    pub paper_out: Vec<usize>,
    /// Device numbers whose printer is jammed (stopped, media-jam-error).
    #[arg(long, value_delimiter = ',')]
    pub jam: Vec<usize>,
    /// Device numbers whose outbox holds submissions a day old with no receipt.
    #[arg(long, value_delimiter = ',')]
    pub outbox_stuck: Vec<usize>,
    /// Root public keys (hex) that commands must be signed by; without, any command is acked.
    #[arg(long = "trust")]
    pub trust: Vec<String>,
    /// Stop after this many seconds (default: run until killed).
    #[arg(long)]
    pub seconds: Option<u64>,
}

/// Controls and counters of a running simulator (for tests and benchmarks).
#[derive(Debug, Default)]
pub struct SimControl {
    /// Stops every kiosk cleanly (retained "offline", then DISCONNECT).
    pub stop: AtomicBool,
    /// Kiosks to kill: their connection is dropped without DISCONNECT, so the broker
    /// publishes their last will, as when a kiosk loses power.
    pub kill: Mutex<HashSet<String>>,
    /// Kiosks repaired: from their next report on, no black screen, printer fault or
    /// stuck outbox (so an alert can be seen to end).
    pub heal: Mutex<HashSet<String>>,
    pub health_sent: AtomicU64,
    pub acks_sent: AtomicU64,
    pub connected: AtomicU64,
}

impl SimControl {
    pub fn kill(&self, device: &str) {
        if let Ok(mut k) = self.kill.lock() {
            k.insert(device.to_string());
        }
    }
    fn killed(&self, device: &str) -> bool {
        self.kill.lock().map(|k| k.contains(device)).unwrap_or(false)
    }
    pub fn repair(&self, device: &str) {
        if let Ok(mut k) = self.heal.lock() {
            k.insert(device.to_string());
        }
    }
    fn healed(&self, device: &str) -> bool {
        self.heal.lock().map(|k| k.contains(device)).unwrap_or(false)
    }
}

/// Runs the simulator until killed or `--seconds` pass.
pub fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let ctl = Arc::new(SimControl::default());
    if let Some(s) = args.seconds {
        let c = ctl.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(s));
            c.stop.store(true, Ordering::Relaxed);
        });
    }
    simulate_until(args, ctl)
}

/// The device ids a simulator with these arguments uses.
pub fn device_ids(args: &SimulateArgs) -> Vec<String> {
    (1..=args.devices).map(|i| format!("{}-{i:04}", args.prefix)).collect()
}

/// Runs the simulator until `ctl.stop` is set.
pub fn simulate_until(args: SimulateArgs, ctl: Arc<SimControl>) -> anyhow::Result<()> {
    let broker = args.broker.broker()?;
    let scopes: Vec<ScopeCode> =
        args.scopes.iter().map(|s| ScopeCode::parse(s)).collect::<Result<_, _>>()?;
    anyhow::ensure!(!scopes.is_empty(), "give at least one --scope");
    // The fingerprints each hall's kiosks report, from the same function the fleet uses.
    let mut standards = std::collections::HashMap::new();
    if let Some(dir) = &args.published {
        let mut published = super::audit::Published::load(dir)?;
        for s in &scopes {
            if let Ok(e) = published.expected(s) {
                standards.insert(s.clone(), e.standard);
            }
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the simulator runtime")?;
    let args = Arc::new(args);
    rt.block_on(async {
        let mut tasks = Vec::new();
        let n = args.devices;
        for (i, id) in device_ids(&args).into_iter().enumerate() {
            let opts = broker.options(&id)?;
            let scope = scopes[i % scopes.len()].clone();
            let no = i + 1;
            let mut standard = standards.get(&scope).cloned();
            if let Some(s) = standard.as_mut().filter(|_| args.drift.contains(&no)) {
                let part = match i % 4 {
                    0 => &mut s.branding,
                    1 => &mut s.baseline,
                    2 => &mut s.functions,
                    _ => &mut s.settings,
                };
                *part = kiosk::bundle::format::sha256_hex(format!("drift {part}").as_bytes());
            }
            let printer = if args.paper_out.contains(&no) {
                Some("media-empty-error")
            } else if args.jam.contains(&no) {
                Some("media-jam-error")
            } else {
                None
            };
            let kind = Kind {
                black: i < args.black,
                silent: i >= n.saturating_sub(args.silent),
                printer,
                outbox_stuck: args.outbox_stuck.contains(&no),
            };
            tasks.push(tokio::spawn(kiosk(
                id,
                scope,
                kind,
                standard,
                opts,
                args.clone(),
                ctl.clone(),
            )));
            // Spread the connects: a broker takes a thundering herd badly.
            if i % 100 == 99 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        for t in tasks {
            let _ = t.await;
        }
        anyhow::Ok(())
    })
}

#[derive(Clone, Copy)]
struct Kind {
    black: bool,
    silent: bool,
    /// The CUPS reason of a printer fault.
    printer: Option<&'static str>,
    outbox_stuck: bool,
}

async fn kiosk(
    id: String,
    scope: ScopeCode,
    kind: Kind,
    standard: Option<kiosk::sync::protocol::Standard>,
    mut opts: rumqttc::MqttOptions,
    args: Arc<SimulateArgs>,
    ctl: Arc<SimControl>,
) {
    let state = topic::dev(&id, "state");
    opts.set_last_will(LastWill::new(&state, protocol::OFFLINE.to_vec(), QoS::AtLeastOnce, true));
    let (client, mut events) = AsyncClient::new(opts, 64);
    let chain = scope.chain();
    let started = tokio::time::Instant::now();
    // A random phase, so N kiosks do not all report in the same instant.
    let phase = Duration::from_millis(rand::thread_rng().gen_range(0..args.interval.max(1) * 1000));
    let mut tick = tokio::time::interval_at(
        started + phase.min(Duration::from_secs(1)),
        Duration::from_secs(args.interval.max(1)),
    );
    let mut check = tokio::time::interval(Duration::from_millis(100));
    let mut touches = 0u64;
    let mut connected = false;
    // A stuck outbox's oldest submission stays the same from report to report.
    let stuck_since = Utc::now() - chrono::Duration::days(1);
    // The event loop runs on its own task: `EventLoop::poll` is not cancel-safe while it
    // connects, so it must not sit in a select! beside the timers (under load, a connect
    // longer than a timer tick would be dropped and retried forever).
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Option<Vec<u8>>>(16);
    let pump = tokio::spawn(async move {
        let mut attempt = 0;
        loop {
            match events.poll().await {
                Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                    attempt = 0;
                    if tx.send(None).await.is_err() {
                        return;
                    }
                }
                Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                    if tx.send(Some(p.payload.to_vec())).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => {
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
            }
        }
    });
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                None => return,
                Some(None) => {
                    if !connected {
                        ctl.connected.fetch_add(1, Ordering::Relaxed);
                        connected = true;
                    }
                    let _ = client.publish(&state, QoS::AtLeastOnce, true, protocol::ONLINE.to_vec()).await;
                    let _ = client.subscribe(topic::dev(&id, "cmd"), QoS::AtLeastOnce).await;
                    for s in &chain {
                        let _ = client.subscribe(topic::scope_cmd(s), QoS::AtLeastOnce).await;
                    }
                    let applied = Event::Applied { scope: scope.clone(), version: args.content_version, bytes: 1 << 20, at: Utc::now() };
                    if let Ok(p) = serde_json::to_vec(&applied) {
                        let _ = client.publish(topic::dev(&id, "event"), QoS::AtLeastOnce, false, p).await;
                    }
                }
                Some(Some(payload)) => {
                    let (ack, screenshot) = answer(&id, &chain, &args.trust, &payload);
                    if screenshot {
                        // Every chunk first, then the ack, as the kiosk does.
                        let png = test_png(&id);
                        let sha = kiosk::bundle::format::sha256_hex(&png);
                        for (n, part) in png.chunks(protocol::MAX_CHUNK).enumerate() {
                            let header = protocol::ChunkHeader { sha256: sha.clone(), offset: (n * protocol::MAX_CHUNK) as u64, total: png.len() as u64, error: None };
                            let _ = client.publish(topic::dev(&id, "screenshot"), QoS::AtLeastOnce, false, protocol::encode_chunk(&header, part)).await;
                        }
                    }
                    if let Ok(bytes) = serde_json::to_vec(&ack) {
                        if client.publish(topic::dev(&id, "cmd/ack"), QoS::AtLeastOnce, false, bytes).await.is_ok() {
                            ctl.acks_sent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            },
            _ = tick.tick() => {
                if kind.silent && started.elapsed() >= Duration::from_secs(args.silent_after) {
                    continue;
                }
                touches += rand::thread_rng().gen_range(0..20);
                let kind = if ctl.healed(&id) { Kind { black: false, printer: None, outbox_stuck: false, ..kind } } else { kind };
                let mut h = health(&id, &chain, args.content_version, kind.black, touches);
                h.standard = standard.clone();
                h.printer = Some(kiosk::sync::protocol::PrinterStatus {
                    name: "kiosk".into(),
                    state: if kind.printer.is_some() { "stopped" } else { "idle" }.into(),
                    reasons: kind.printer.map(|r| vec![r.to_string()]).unwrap_or_default(),
                    queued_jobs: u32::from(kind.printer.is_some()),
                });
                h.outbox = Some(if kind.outbox_stuck {
                    kiosk::sync::protocol::OutboxStatus { waiting: 2, oldest: Some(stuck_since) }
                } else {
                    kiosk::sync::protocol::OutboxStatus::default()
                });
                let usage = Usage { device: id.clone(), searches: rand::thread_rng().gen_range(0..5), ..Usage::default() };
                if let (Ok(h), Ok(u)) = (serde_json::to_vec(&h), serde_json::to_vec(&usage)) {
                    let _ = client.publish(topic::dev(&id, "health"), QoS::AtMostOnce, false, h).await;
                    let _ = client.publish(topic::dev(&id, "usage"), QoS::AtMostOnce, false, u).await;
                    ctl.health_sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ = check.tick() => {
                if ctl.killed(&id) {
                    // Dropping the event loop closes the socket without DISCONNECT.
                    pump.abort();
                    return;
                }
                if ctl.stop.load(Ordering::Relaxed) {
                    let _ = client.publish(&state, QoS::AtLeastOnce, true, protocol::OFFLINE.to_vec()).await;
                    let _ = client.disconnect().await;
                    // Let the last packets leave.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    pump.abort();
                    return;
                }
            }
        }
    }
}

fn health(id: &str, chain: &[ScopeCode], version: u64, black: bool, touches: u64) -> Health {
    let mut rng = rand::thread_rng();
    Health {
        device: id.to_string(),
        app_version: env!("CARGO_PKG_VERSION").to_string(),
        at: Utc::now(),
        uptime_seconds: rng.gen_range(1000..100_000),
        cpu_percent: rng.gen_range(2.0..35.0),
        mem_total_kb: 4 << 20,
        mem_available_kb: rng.gen_range(1 << 20..3 << 20),
        disk_total_bytes: 64 << 30,
        disk_available_bytes: rng.gen_range(20u64 << 30..40 << 30),
        temperature_c: Some(rng.gen_range(38.0..55.0)),
        content: chain
            .iter()
            .map(|s| ScopeVersion { scope: s.clone(), version, hash: None })
            .collect(),
        last_sync: Some(Utc::now()),
        connected: true,
        touches,
        frame_checksum: Some(if black {
            BLACK_FRAME.to_string()
        } else {
            format!("{:064x}", rng.gen::<u128>())
        }),
        recent_errors: Vec::new(),
        ..Health::default()
    }
}

/// The ack a kiosk sends for a command message, and whether it asks for a screenshot.
fn answer(id: &str, chain: &[ScopeCode], trust: &[String], payload: &[u8]) -> (Ack, bool) {
    let ack = answer_ack(id, chain, trust, payload);
    let screenshot = ack.ok && ack.result == "simulated screenshot";
    (ack, screenshot)
}

/// A small PNG that differs per device: a stripe pattern, stored (uncompressed) deflate,
/// larger than one chunk so an upload takes several messages.
pub fn test_png(id: &str) -> Vec<u8> {
    let (w, h) = (200u32, 120u32);
    let seed = kiosk::bundle::format::sha256_hex(id.as_bytes());
    let colour = hex::decode(&seed[..6]).unwrap_or_else(|_| vec![200, 30, 30]);
    let mut raw = Vec::with_capacity(((w * 3 + 1) * h) as usize);
    for y in 0..h {
        raw.push(0); // filter: none
        for x in 0..w {
            if (x / 20 + y / 20) % 2 == 0 {
                raw.extend_from_slice(&colour);
            } else {
                raw.extend_from_slice(&[250, 250, 250]);
            }
        }
    }
    // zlib stream of stored blocks.
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, b) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = b.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(b);
    }
    let (mut a, mut bsum) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65_521;
        bsum = (bsum + a) % 65_521;
    }
    z.extend_from_slice(&((bsum << 16) | a).to_be_bytes());
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    for (kind, data) in [(b"IHDR", ihdr.as_slice()), (b"IDAT", z.as_slice()), (b"IEND", &[][..])] {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(data);
        png.extend_from_slice(&chunk);
        png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    }
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

fn answer_ack(id: &str, chain: &[ScopeCode], trust: &[String], payload: &[u8]) -> Ack {
    let refuse = |cmd_id: String, result: String| Ack {
        id: cmd_id,
        device: id.to_string(),
        ok: false,
        result,
    };
    if !trust.is_empty() {
        return match protocol::verify_command(payload, trust, 1, id, chain, Utc::now()) {
            Ok(cmd) => Ack {
                id: cmd.id.clone(),
                device: id.to_string(),
                ok: true,
                result: format!("simulated {}", action_name(&cmd)),
            },
            Err(e) => refuse(String::new(), e.to_string()),
        };
    }
    let cmd = serde_json::from_slice::<Envelope>(payload)
        .ok()
        .and_then(|e| serde_json::from_str::<Command>(&e.payload).ok());
    match cmd {
        Some(cmd) => Ack {
            id: cmd.id.clone(),
            device: id.to_string(),
            ok: true,
            result: format!("simulated {}", action_name(&cmd)),
        },
        None => refuse(String::new(), "not a command envelope".into()),
    }
}

fn action_name(cmd: &Command) -> String {
    serde_json::to_value(&cmd.action)
        .ok()
        .and_then(|v| v.get("action")?.as_str().map(str::to_string))
        .unwrap_or_default()
}
