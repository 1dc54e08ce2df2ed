//! Sync and telemetry over MQTT (the only module that imports rumqttc): the broker
//! connection, the sync engine that fetches and activates new content, health telemetry
//! and signed remote commands. docs/PROTOCOL.md documents the topics and payloads.
//!
//! [`spawn`] starts one worker thread with a tokio runtime. The rest of the kiosk talks to
//! it only through the [`SyncHandle`]: "resync now", a status snapshot, the telemetry
//! counters, and the remote commands the UI carries out. The UI never waits on it.

pub mod client;
pub mod engine;
pub mod health;
pub mod protocol;
mod report;
pub mod status;
pub mod submit;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use rumqttc::{AsyncClient, Event as MqttEvent, LastWill, Packet, QoS};

pub use client::Broker;
pub use engine::{ActivationJob, Engine, EngineConfig, Link, UiCommand, UiOutcome, UiReply};
pub use status::{Counts, SyncStatus, Telemetry};

use crate::bundle::format::{paths, Root};
use crate::config::Config;
use crate::content::{DeviceSettings, ScopeCode};
use protocol::topic;
use report::Reporter;

enum Control {
    Resync,
    Stop,
}

/// The kiosk's side of the sync worker. Dropping it stops the worker.
pub struct SyncHandle {
    ctl: Option<tokio::sync::mpsc::UnboundedSender<Control>>,
    status: Arc<Mutex<SyncStatus>>,
    telemetry: Arc<Telemetry>,
    ui_commands: Mutex<Option<std::sync::mpsc::Receiver<UiCommand>>>,
    /// The UI's answers to those commands; the worker acks each command on its answer.
    ui_replies: UiReplies,
    /// The outbox pump (residents' submissions), on its own thread and connection.
    _pump: Option<submit::PumpHandle>,
}

impl SyncHandle {
    /// Re-reads every scope's manifest from the broker and fetches whatever is new.
    pub fn resync_now(&self) {
        if let Some(ctl) = &self.ctl {
            let _ = ctl.send(Control::Resync);
        }
    }

    /// A snapshot for the admin panel.
    pub fn status(&self) -> SyncStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The counters the UI increments (touches, searches, item views, functions, the
    /// frame checksum); they go out with each health report.
    pub fn telemetry(&self) -> Arc<Telemetry> {
        self.telemetry.clone()
    }

    /// Remote commands for the UI to carry out (restart, screenshot, announce,
    /// set-setting). The first call gets the receiver; later calls get `None`.
    pub fn take_ui_commands(&self) -> Option<std::sync::mpsc::Receiver<UiCommand>> {
        self.ui_commands.lock().ok()?.take()
    }

    /// The UI's answer to a command from [`SyncHandle::take_ui_commands`]: the worker
    /// acks the command with it (uploading a screenshot first). Never blocks; without a
    /// running worker the answer is dropped.
    pub fn reply(&self, reply: UiReply) {
        self.ui_replies.send(reply);
    }

    /// A sender of answers that can move to another thread (a UI stand-in in tests).
    pub fn replies(&self) -> UiReplies {
        self.ui_replies.clone()
    }

    /// Stops the worker (it publishes nothing more; the broker's last will says "offline").
    pub fn stop(&self) {
        if let Some(ctl) = &self.ctl {
            let _ = ctl.send(Control::Stop);
        }
    }
}

/// Where the UI's answers to remote commands go: the sync worker, which acks them.
#[derive(Clone, Debug)]
pub struct UiReplies(tokio::sync::mpsc::UnboundedSender<UiReply>);

impl UiReplies {
    /// Never blocks; without a running worker the answer is dropped.
    pub fn send(&self, reply: UiReply) {
        let _ = self.0.send(reply);
    }
}

impl Drop for SyncHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the sync worker when `config.broker` is set; otherwise returns a handle whose
/// status says sync is off (the kiosk runs offline only).
pub fn spawn(config: &Config) -> SyncHandle {
    spawn_with(config, Arc::new(Telemetry::default()), None)
}

/// [`spawn`] with telemetry counters the UI already holds, and the watchdog heartbeat the
/// worker beats from a task on its own runtime (so a blocked runtime stops the beat; a
/// worker waiting for the broker still beats). Without a broker the heartbeat is retired.
pub fn spawn_with(
    config: &Config,
    telemetry: Arc<Telemetry>,
    beat: Option<crate::watchdog::Heartbeat>,
) -> SyncHandle {
    let status =
        Arc::new(Mutex::new(SyncStatus { health_interval_seconds: 60, ..SyncStatus::default() }));
    let (ui_tx, ui_rx) = std::sync::mpsc::channel();
    let (reply_tx, reply_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut handle = SyncHandle {
        ctl: None,
        status: status.clone(),
        telemetry: telemetry.clone(),
        ui_commands: Mutex::new(Some(ui_rx)),
        ui_replies: UiReplies(reply_tx),
        _pump: None,
    };
    let Some(broker) = Broker::from_config(config) else {
        if let Some(b) = beat {
            b.retire();
        }
        return handle;
    };
    if let Ok(mut s) = status.lock() {
        s.enabled = true;
    }
    let (ctl_tx, ctl_rx) = tokio::sync::mpsc::unbounded_channel();
    handle.ctl = Some(ctl_tx);
    handle._pump = submit::PumpConfig::from_config(config)
        .and_then(|c| submit::spawn(c).map_err(|e| tracing::error!("outbox: {e:#}")).ok());
    let config = config.clone();
    // The worker ends (stopped, or a configuration error) without hanging: retire its
    // heartbeat then, so an offline-only kiosk is not restarted by the watchdog forever.
    // A panic leaves it stale, and the kiosk is restarted.
    let end_beat = beat.clone();
    let spawned = std::thread::Builder::new().name("sync".into()).spawn(move || {
        let result = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the sync runtime")
            .and_then(|rt| {
                if let Some(beat) = beat {
                    rt.spawn(async move {
                        let mut every = tokio::time::interval(beat.interval());
                        loop {
                            every.tick().await;
                            beat.beat();
                        }
                    });
                }
                rt.block_on(run(
                    config,
                    broker,
                    status.clone(),
                    telemetry,
                    ctl_rx,
                    (ui_tx, reply_rx),
                ))
            });
        if let Some(b) = end_beat {
            b.retire();
        }
        if let Err(e) = result {
            if let Ok(mut s) = status.lock() {
                s.connected = false;
                s.error(format!("sync stopped: {e:#}"));
            }
        }
    });
    if let Err(e) = spawned {
        if let Ok(mut s) = handle.status.lock() {
            s.error(format!("cannot start the sync thread: {e}"));
        }
    }
    handle
}

/// The real [`Link`]: rumqttc's client queues requests for the event loop without waiting.
struct MqttLink(AsyncClient);

impl Link for MqttLink {
    fn subscribe(&mut self, t: &str) -> anyhow::Result<()> {
        Ok(self.0.try_subscribe(t, QoS::AtLeastOnce)?)
    }
    fn unsubscribe(&mut self, t: &str) -> anyhow::Result<()> {
        Ok(self.0.try_unsubscribe(t)?)
    }
    fn publish(&mut self, t: &str, payload: Vec<u8>, retain: bool) -> anyhow::Result<()> {
        Ok(self.0.try_publish(t, QoS::AtLeastOnce, retain, payload)?)
    }
}

/// The root manifests are checked against: the pinned one, or the one the first install
/// will pin (the config's, else the embedded demo root) — the installer's own choice.
fn trusted_root(config: &Config) -> anyhow::Result<Root> {
    Ok(crate::bundle::trusted_root(config)?)
}

/// The installed scope versions, manifest envelopes and device settings. Demo manifests do not count once a
/// real root is pinned, as the installer replaces the demo with the first real bundle.
fn installed(config: &Config, root: &Root) -> Installed {
    let mut out = Installed::default();
    let Ok(Some(current)) = crate::bundle::current_version(&config.data_dir) else { return out };
    let real_root = !crate::bundle::embedded::is_demo_root(root);
    for v in current.versions() {
        let file = current.dir().join("manifests").join(format!("{}.json", v.scope));
        let Ok(bytes) = std::fs::read(file) else { continue };
        if real_root && crate::bundle::embedded::is_demo_manifest(&bytes) {
            continue;
        }
        out.versions.insert(v.scope.clone(), v.version);
        out.envelopes.insert(v.scope, bytes);
    }
    out.settings = crate::content::settings::of_version(&current);
    out
}

#[derive(Default)]
struct Installed {
    versions: BTreeMap<ScopeCode, u64>,
    envelopes: BTreeMap<ScopeCode, Vec<u8>>,
    settings: Option<DeviceSettings>,
}

/// An activation running on the blocking pool, and the job it runs.
type Activation = (ActivationJob, tokio::task::JoinHandle<Result<Option<DeviceSettings>, String>>);

async fn run(
    config: Config,
    broker: Broker,
    status: Arc<Mutex<SyncStatus>>,
    telemetry: Arc<Telemetry>,
    mut ctl: tokio::sync::mpsc::UnboundedReceiver<Control>,
    (ui, mut replies): (
        std::sync::mpsc::Sender<UiCommand>,
        tokio::sync::mpsc::UnboundedReceiver<UiReply>,
    ),
) -> anyhow::Result<()> {
    if !protocol::is_topic_safe(&config.device_id) {
        anyhow::bail!(
            "device_id “{}” cannot be an MQTT topic level: use letters, digits, - _ .",
            config.device_id
        );
    }
    let device = config.device_id.clone();
    let root = trusted_root(&config)?;
    let now_installed = installed(&config, &root);
    let mut opts = broker.options(&device)?;
    opts.set_last_will(LastWill::new(
        topic::dev(&device, "state"),
        protocol::OFFLINE,
        QoS::AtLeastOnce,
        true,
    ));
    let (client, mut events) = AsyncClient::new(opts, 1024);
    let mut link = MqttLink(client.clone());
    let engine_config = EngineConfig {
        device: device.clone(),
        chain: config.scope.chain(),
        data_dir: config.data_dir.clone(),
        root,
        installed: now_installed.versions,
        installed_envelopes: now_installed.envelopes,
        settings: now_installed.settings,
    };
    let mut engine = Engine::new(engine_config, status.clone(), Some(ui));
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut reporter = Reporter::new(&config, status.clone(), telemetry);
    let mut activation: Option<Activation> = None;
    let mut attempt = 0u32;
    let mut ping_sent: Option<Instant> = None;
    loop {
        tokio::select! {
            ev = events.poll() => match ev {
                Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                    attempt = 0;
                    engine.on_connected(&mut link);
                }
                Ok(MqttEvent::Incoming(Packet::Publish(p))) => engine.on_message(&mut link, &p.topic, &p.payload, Utc::now()),
                // The broker round trip for health: keep-alive PINGREQ out, PINGRESP back.
                Ok(MqttEvent::Outgoing(rumqttc::Outgoing::PingReq)) => ping_sent = Some(Instant::now()),
                Ok(MqttEvent::Incoming(Packet::PingResp)) => {
                    if let (Some(sent), Ok(mut s)) = (ping_sent.take(), status.lock()) {
                        s.record_ping(sent.elapsed());
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    ping_sent = None;
                    engine.on_disconnected();
                    let wait = client::backoff(attempt);
                    attempt = attempt.saturating_add(1);
                    if let Ok(mut s) = status.lock() {
                        s.error(format!("broker {}: {e}; retrying in {} ms", broker.url, wait.as_millis()));
                    }
                    tokio::time::sleep(wait).await;
                }
            },
            c = ctl.recv() => match c {
                Some(Control::Resync) => engine.resync(&mut link),
                Some(Control::Stop) | None => {
                    // The UI's last answers (a `restart` says "restarting" just before
                    // the process ends) still get their acks out.
                    while let Ok(r) = replies.try_recv() {
                        engine.on_ui_reply(&mut link, r, Instant::now());
                    }
                    break;
                }
            },
            Some(r) = replies.recv() => engine.on_ui_reply(&mut link, r, Instant::now()),
            _ = tick.tick() => {
                engine.on_tick(&mut link, Instant::now());
                if status.lock().map(|s| s.connected).unwrap_or(false) {
                    reporter.maybe_report(&mut link);
                }
            }
            done = async { match activation.as_mut() { Some((_, h)) => h.await, None => std::future::pending().await } } => {
                if let Some((job, _)) = activation.take() {
                    let result = done.unwrap_or_else(|e| Err(format!("the activation task failed: {e}")));
                    if let Ok(root) = trusted_root(&config) {
                        engine.set_root(root);
                    }
                    engine.on_activated(&mut link, &job, result);
                }
            }
        }
        if activation.is_none() {
            if let Some(job) = engine.take_activation() {
                let cfg = config.clone();
                let (manifests, roots) = (job.manifests.clone(), job.roots.clone());
                let handle =
                    tokio::task::spawn_blocking(move || activate(&cfg, &manifests, &roots));
                activation = Some((job, handle));
            }
        }
    }
    // A clean stop: say so, as the last will would only on a lost connection.
    let _ =
        client.try_publish(topic::dev(&device, "state"), QoS::AtLeastOnce, true, protocol::OFFLINE);
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while events.poll().await.is_ok() {}
    })
    .await;
    Ok(())
}

/// Builds and switches to a content version from the cached blobs (the installer verifies
/// everything again and builds the database and search index in the new version while the
/// UI serves the old one). Returns the new device settings.
fn activate(
    config: &Config,
    manifests: &[(ScopeCode, u64, Vec<u8>)],
    roots: &[Vec<u8>],
) -> Result<Option<DeviceSettings>, String> {
    let blobs = config.data_dir.join(paths::BLOBS);
    let offers: Vec<crate::bundle::Offer> = manifests
        .iter()
        .enumerate()
        .map(|(i, (scope, version, bytes))| crate::bundle::Offer {
            manifest: bytes.clone(),
            blobs: blobs.clone(),
            // The rotations travel once, with the first offer: the installer applies them
            // before it checks any manifest.
            roots: if i == 0 { roots.to_vec() } else { Vec::new() },
            origin: format!("mqtt:{scope}@{version}").into(),
        })
        .collect();
    crate::bundle::install(config, &offers, Utc::now()).map_err(|e| e.to_string())?;
    let root = trusted_root(config).map_err(|e| format!("{e:#}"))?;
    Ok(installed(config, &root).settings)
}
