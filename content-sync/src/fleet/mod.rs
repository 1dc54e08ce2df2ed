//! Fleet operations: the operators' dashboard, alerts, metrics and the simulator.
//!
//! `content-sync fleet` runs three parts that share one [`App`]: an MQTT thread that
//! subscribes to every device's state, health, usage, events, acks and screenshot chunks
//! (and the retained manifests, to know the published versions) and updates the in-memory
//! [`state::Fleet`]; a database writer thread (`db::writer`) that persists those changes in
//! batches; and a small threaded HTTP server (`web`) that renders the pages from memory.
//! Alerts (offline, stale content, black screen, disk, printer, outbox) are computed when a
//! page asks, from the clock, so "offline" does not need any message to arrive — a silent
//! device is flagged even if its last will never comes; with `--webhook`, a watcher thread
//! re-evaluates them every second and posts their starts and ends ([`webhook`]). The 五统一
//! audit ([`audit`]) compares each device's reported fingerprints with those computed from
//! `--published` bundles.
//!
//! Measured 2026-11-23 with `bench/fleet.sh` (release build, 2 shared cores, Mosquitto on
//! loopback): 10,000 simulated kiosks reporting every 30 s — over 180 s the dashboard
//! ingested 663 messages/s of the 667 sent (health + usage; backlog 1–5 messages, database
//! 0) at 1.9% of one core and 97–98 MB RSS; the fleet page (first 100 rows, 33 kB) rendered
//! in 22–32 ms, a hall's page in 10–25 ms, the full /audit matrix (4.6 MB) in 35–55 ms,
//! /audit.csv (2.8 MB) in 18–29 ms and /metrics (6.8 MB) in 80–145 ms.

pub mod audit;
pub mod db;
pub mod sim;
pub mod state;
pub mod web;
pub mod webhook;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _};
use chrono::Utc;
use ed25519_dalek::SigningKey;
use kiosk::sync::client::{backoff, Broker};
use kiosk::sync::protocol::{self, topic};
use rumqttc::{AsyncClient, Event, Packet, QoS};

pub use sim::{simulate, simulate_until, SimulateArgs};

/// The broker connection, as the other subcommands take it.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FleetBroker {
    /// The broker: mqtts://host:8883, or mqtt://host:1883 for a test bench.
    #[arg(long)]
    pub broker: Option<String>,
    /// PEM CA certificate of the broker (for mqtts://).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// PEM client certificate (a city identity the broker's ACL lets read dev/+/#).
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// The client certificate's PEM private key.
    #[arg(long)]
    pub key: Option<PathBuf>,
}

impl FleetBroker {
    pub fn broker(&self) -> anyhow::Result<Broker> {
        let url = self.broker.clone().context("--broker is required")?;
        Ok(Broker { url, ca: self.ca.clone(), cert: self.cert.clone(), key: self.key.clone() })
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct FleetArgs {
    #[command(flatten)]
    pub broker: FleetBroker,
    /// The fleet database (SQLite).
    #[arg(long, default_value = "fleet.db")]
    pub db: PathBuf,
    /// Address of the dashboard.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// A separate address for /metrics without login (bind it to the monitoring network).
    /// Without it, /metrics is on --listen and needs a session.
    #[arg(long)]
    pub metrics_listen: Option<String>,
    /// Seconds without any message after which a device is offline.
    #[arg(long, default_value_t = 90)]
    pub offline_after: i64,
    /// Seconds a device may stay below the published content version.
    #[arg(long, default_value_t = 3600)]
    pub stale_after: i64,
    /// Free disk below this percentage alerts.
    #[arg(long, default_value_t = 10.0)]
    pub disk_min_percent: f64,
    /// Seconds a resident's submission may wait in a kiosk's outbox for the city's
    /// receipt before it alerts.
    #[arg(long, default_value_t = 3600)]
    pub outbox_max_age: i64,
    /// The published bundles the 五统一 audit compares every kiosk with: a folder with one
    /// bundle folder per scope, as `content-sync build` writes them. Re-read when it changes.
    #[arg(long)]
    pub published: Option<PathBuf>,
    /// POST a JSON notice to this http:// or https:// URL for every alert that starts or
    /// ends. Over https the receiver's certificate must chain to a system CA or to
    /// --webhook-ca.
    #[arg(long)]
    pub webhook: Option<String>,
    /// A PEM file with the city's private CA, trusted for an https --webhook besides the
    /// system CAs.
    #[arg(long, value_name = "FILE", requires = "webhook")]
    pub webhook_ca: Option<PathBuf>,
    /// A frame checksum that means a black screen (repeat for several resolutions).
    #[arg(long = "black-frame")]
    pub black_frames: Vec<String>,
    /// Root signing key(s) for remote commands (hex, as `content-sync keygen` writes them).
    /// Without one, the dashboard cannot send commands.
    #[arg(long = "sign-key")]
    pub sign_keys: Vec<PathBuf>,
    /// Seconds a command sent from the dashboard stays valid.
    #[arg(long, default_value_t = 300)]
    pub command_valid_for: i64,
    /// Hours of health history kept in the database.
    #[arg(long, default_value_t = 48)]
    pub keep_hours: i64,
    /// Mark the session cookie Secure (set it when a TLS proxy fronts the dashboard).
    #[arg(long)]
    pub secure_cookie: bool,
    /// Add or replace an operator account and exit; the password is read from the
    /// FLEET_PASSWORD environment variable or the first line of stdin.
    #[arg(long, value_name = "NAME")]
    pub add_user: Option<String>,
    /// The added account's role.
    #[arg(long, value_enum, default_value = "readonly")]
    pub role: db::Role,
}

/// What the dashboard threads share.
pub struct App {
    pub args: FleetArgs,
    pub rules: state::Rules,
    pub fleet: Mutex<state::Fleet>,
    pub conn: Mutex<rusqlite::Connection>,
    pub client: AsyncClient,
    pub keys: Vec<SigningKey>,
    pub stop: AtomicBool,
    /// The published bundles (`--published`), for the 五统一 audit.
    pub published: Option<Mutex<audit::Published>>,
    pub webhook_stats: Arc<webhook::Stats>,
    pub counters: Arc<Counters>,
}

/// Throughput counters, exported on /metrics so a benchmark (or Prometheus) can see that
/// ingest keeps up: `ingested - persisted` is the database writer's backlog and `queued`
/// the messages received from the broker but not yet applied.
#[derive(Debug, Default)]
pub struct Counters {
    /// MQTT messages applied to the fleet state.
    pub ingested: AtomicU64,
    /// Changes handed to the database writer, and those it has committed.
    pub changes: AtomicU64,
    pub persisted: AtomicU64,
    /// Messages waiting between the MQTT event loop and the fleet state.
    pub queued: AtomicU64,
}

/// Runs the dashboard until the process is stopped (or adds an account and returns).
pub fn fleet(args: FleetArgs) -> anyhow::Result<()> {
    if let Some(name) = &args.add_user {
        let password = match std::env::var("FLEET_PASSWORD") {
            Ok(p) => p,
            Err(_) => {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).context("reading the password from stdin")?;
                line.trim_end_matches(['\r', '\n']).to_string()
            }
        };
        let conn = db::open(&args.db)?;
        db::add_user(&conn, name, args.role, &password)?;
        println!("account {name} ({}) saved in {}", args.role.as_str(), args.db.display());
        return Ok(());
    }
    let running = start(args)?;
    running.wait()
}

/// A running dashboard (for tests that run it in-process).
pub struct Running {
    pub app: Arc<App>,
    /// The dashboard's bound address (useful with --listen 127.0.0.1:0).
    pub addr: std::net::SocketAddr,
    pub metrics_addr: Option<std::net::SocketAddr>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Blocks until the dashboard stops.
    pub fn wait(self) -> anyhow::Result<()> {
        for t in self.threads {
            let _ = t.join();
        }
        Ok(())
    }

    /// Stops the MQTT loop and the web server.
    pub fn stop(&self) {
        self.app.stop.store(true, Ordering::Relaxed);
    }
}

/// Opens the database, connects to the broker and starts serving; returns at once.
pub fn start(args: FleetArgs) -> anyhow::Result<Running> {
    let broker = args.broker.broker()?;
    let mut keys = Vec::new();
    for path in &args.sign_keys {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading key {}", path.display()))?;
        keys.push(
            kiosk::bundle::format::parse_signing_key(&text).with_context(|| {
                format!("{} is not a signing key (64 hex digits)", path.display())
            })?,
        );
    }
    let conn = db::open(&args.db)?;
    let users: i64 = conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
    if users == 0 {
        tracing::warn!("no operator accounts yet: add one with `content-sync fleet --db {} --add-user NAME --role operator`", args.db.display());
    }
    let fleet = db::load(&conn)?;
    let writer_conn = db::open(&args.db)?;
    let rules = state::Rules {
        offline_after: chrono::Duration::seconds(args.offline_after),
        stale_after: chrono::Duration::seconds(args.stale_after),
        disk_min_percent: args.disk_min_percent,
        black_frames: args.black_frames.clone(),
        outbox_max_age: chrono::Duration::seconds(args.outbox_max_age),
    };
    let published = match &args.published {
        Some(dir) => Some(Mutex::new(audit::Published::load(dir)?)),
        None => None,
    };
    let webhook = match &args.webhook {
        Some(url) => Some(webhook::Client::new(url, args.webhook_ca.as_deref())?),
        None => None,
    };
    let client_id = format!("content-sync-fleet-{:08x}", rand::random::<u32>());
    let mut opts = broker.options(&client_id)?;
    // A whole city reports into this one connection: a deep queue avoids stalls.
    opts.set_inflight(1000);
    let (client, events) = AsyncClient::new(opts, 10_000);
    let server = tiny_http::Server::http(&args.listen)
        .map_err(|e| anyhow::anyhow!("listening on {}: {e}", args.listen))?;
    let addr = server.server_addr().to_ip().context("the dashboard is not on an IP address")?;
    let metrics = match &args.metrics_listen {
        Some(a) => {
            Some(tiny_http::Server::http(a).map_err(|e| anyhow::anyhow!("listening on {a}: {e}"))?)
        }
        None => None,
    };
    let metrics_addr = metrics.as_ref().and_then(|m| m.server_addr().to_ip());
    let app = Arc::new(App {
        args,
        rules,
        fleet: Mutex::new(fleet),
        conn: Mutex::new(conn),
        client: client.clone(),
        keys,
        stop: AtomicBool::new(false),
        published,
        webhook_stats: Arc::default(),
        counters: Arc::default(),
    });
    let (tx, rx) = mpsc::channel();
    let keep = chrono::Duration::hours(app.args.keep_hours);
    let mut threads = Vec::new();
    threads.push(std::thread::Builder::new().name("fleet-db".into()).spawn({
        let counters = app.counters.clone();
        move || db::writer(writer_conn, rx, keep, counters)
    })?);
    let mqtt_app = app.clone();
    threads.push(std::thread::Builder::new().name("fleet-mqtt".into()).spawn(move || {
        if let Err(e) = mqtt_loop(mqtt_app, client, events, tx) {
            tracing::error!("fleet MQTT loop stopped: {e:#}");
        }
    })?);
    if let Some(client) = webhook {
        threads.extend(webhook::start(app.clone(), client)?);
    }
    threads.extend(web::serve(app.clone(), server, false)?);
    if let Some(m) = metrics {
        threads.extend(web::serve(app.clone(), m, true)?);
    }
    tracing::info!("fleet dashboard on http://{addr}");
    Ok(Running { app, addr, metrics_addr, threads })
}

/// The topics the dashboard listens to.
fn subscriptions() -> Vec<String> {
    let mut subs: Vec<String> = ["state", "health", "usage", "event", "cmd/ack", "screenshot"]
        .iter()
        .map(|l| topic::dev("+", l))
        .collect();
    subs.push(format!("{}/content/+/manifest", protocol::PREFIX));
    subs
}

fn mqtt_loop(
    app: Arc<App>,
    client: AsyncClient,
    mut events: rumqttc::EventLoop,
    tx: mpsc::Sender<state::Change>,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the MQTT runtime")?;
    rt.block_on(async {
        // The event loop polls on its own task: `EventLoop::poll` must not be cancelled by
        // the stop check while it connects. The channel is deep so bursts do not stall it.
        let (ptx, mut prx) = tokio::sync::mpsc::channel::<rumqttc::Publish>(10_000);
        let sub_client = client.clone();
        let pump_counters = app.counters.clone();
        let pump = tokio::spawn(async move {
            let mut attempt = 0;
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        attempt = 0;
                        for s in subscriptions() {
                            if let Err(e) = sub_client.subscribe(s, QoS::AtLeastOnce).await {
                                tracing::warn!("fleet: subscribing: {e}");
                            }
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if ptx.send(p).await.is_err() {
                            return;
                        }
                        let queued = ptx.max_capacity() - ptx.capacity();
                        pump_counters.queued.store(queued as u64, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let wait = backoff(attempt);
                        attempt += 1;
                        tracing::warn!("fleet: broker connection: {e}; retrying in {wait:?}");
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        });
        loop {
            if app.stop.load(Ordering::Relaxed) {
                client.disconnect().await.ok();
                tokio::time::sleep(Duration::from_millis(100)).await;
                pump.abort();
                return Ok(());
            }
            let p = match tokio::time::timeout(Duration::from_millis(200), prx.recv()).await {
                Err(_) => continue,
                Ok(None) => bail!("the MQTT event loop stopped"),
                Ok(Some(p)) => p,
            };
            let change = match app.fleet.lock() {
                Ok(mut f) => f.ingest(&p.topic, &p.payload, &app.rules, Utc::now()),
                Err(_) => bail!("the fleet state lock is poisoned"),
            };
            app.counters.ingested.fetch_add(1, Ordering::Relaxed);
            match change {
                Some(c) => {
                    app.counters.changes.fetch_add(1, Ordering::Relaxed);
                    if tx.send(c).is_err() {
                        bail!("the database writer stopped");
                    }
                }
                None => tracing::debug!("ignored a message on {}", p.topic),
            }
        }
    })
}
