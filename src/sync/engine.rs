//! The sync state machine: manifests in, blob requests out, chunks into `.partial` files,
//! verified blobs into the cache, and one activation when every blob is there. It knows
//! MQTT only through [`Link`], so unit tests drive it with a fake link and no broker; the
//! driver in `runner.rs` feeds it from rumqttc and runs the activation off the loop.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::protocol::{self, topic, Ack, Action, BlobRequest, Command, Event, ManifestDelta};
use super::status::SyncStatus;
use crate::bundle::format::{paths, Entry, Envelope, Manifest, Root};
use crate::bundle::verify::{verify_blob_file, verify_manifest, Limits, Policy, VerifyError};
use crate::content::{DeviceSettings, ScopeCode};

/// What the engine needs from an MQTT client. Sends must not block: the real client
/// queues them for the event loop.
pub trait Link {
    fn subscribe(&mut self, topic: &str) -> anyhow::Result<()>;
    fn unsubscribe(&mut self, topic: &str) -> anyhow::Result<()>;
    fn publish(&mut self, topic: &str, payload: Vec<u8>, retain: bool) -> anyhow::Result<()>;
}

/// Blobs fetched at once: enough to keep the pipe full with small item blobs (one round
/// trip each), few enough that a reconnect re-asks for little.
const WINDOW: usize = 16;
/// Bytes asked for per request; a blob larger than this is fetched in several requests,
/// so a lost request costs at most this much waiting.
const REQUEST_LEN: u64 = 256 * 1024;
/// A transfer with no chunk for this long is asked for again from where it stands.
const STALL: Duration = Duration::from_secs(10);
/// Free space kept beyond the blobs, for the new version's database and index.
const DISK_RESERVE: u64 = 64 << 20;

/// A remote command the UI carries out (the engine handles `resync` and `set-setting`
/// itself). The UI answers each one with a [`UiReply`] through
/// [`SyncHandle::reply`](super::SyncHandle::reply); the command's ack goes out only then.
#[derive(Clone, Debug, PartialEq)]
pub struct UiCommand {
    pub id: String,
    pub action: Action,
}

/// The UI's answer to a [`UiCommand`].
#[derive(Clone, Debug, PartialEq)]
pub struct UiReply {
    /// The command's id.
    pub id: String,
    pub outcome: UiOutcome,
}

/// What became of a [`UiCommand`].
#[derive(Clone, Debug, PartialEq)]
pub enum UiOutcome {
    /// Carried out; the text goes into the ack.
    Done(String),
    /// Not carried out, and why.
    Failed(String),
    /// A screenshot command's PNG, for the worker to upload.
    Screenshot(Vec<u8>),
}

/// How long the UI has to answer a command before the ack says it did not. The UI looks
/// for commands once a second; a screenshot takes well under a second to draw and encode.
pub const UI_REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// New manifests whose blobs are all in the cache, ready to activate together (the
/// installer keeps the installed manifests of the other scopes).
#[derive(Clone, Debug)]
pub struct ActivationJob {
    /// Scope, version and the exact envelope bytes.
    pub manifests: Vec<(ScopeCode, u64, Vec<u8>)>,
    /// Root rotations received over MQTT and verified against the pinned root, as
    /// `roots/N.json` bytes: the installer checks them again and pins the newest.
    pub roots: Vec<Vec<u8>>,
}

struct Transfer {
    entry: Entry,
    file: File,
    received: u64,
    /// End of the range asked for so far.
    asked_until: u64,
    last_activity: Instant,
    /// Whether the next range still has to be asked for (held back by the bandwidth cap).
    needs_request: bool,
    retries: u32,
}

/// Everything the engine needs to start.
pub struct EngineConfig {
    pub device: String,
    pub chain: Vec<ScopeCode>,
    pub data_dir: PathBuf,
    pub root: Root,
    /// The installed manifest version of each scope.
    pub installed: BTreeMap<ScopeCode, u64>,
    /// The installed manifest envelopes (exact bytes), the base for manifest deltas.
    pub installed_envelopes: BTreeMap<ScopeCode, Vec<u8>>,
    /// The installed device settings (bandwidth cap, download window, health interval).
    pub settings: Option<DeviceSettings>,
}

pub struct Engine {
    device: String,
    chain: Vec<ScopeCode>,
    data_dir: PathBuf,
    root: Root,
    installed: BTreeMap<ScopeCode, u64>,
    /// The newest known envelope of each scope (installed or pending): deltas apply to it.
    envelopes: BTreeMap<ScopeCode, Envelope>,
    /// Scopes whose full manifest topic we are subscribed to (no usable delta base).
    full: HashSet<ScopeCode>,
    /// Verified manifests newer than the installed ones, waiting for blobs or activation.
    pending: BTreeMap<ScopeCode, (Manifest, Vec<u8>)>,
    queue: VecDeque<Entry>,
    inflight: HashMap<String, Transfer>,
    activating: bool,
    /// Download cap in bytes per second (0 = none) and the local download window.
    cap: u64,
    window: String,
    throttle_until: Instant,
    done_commands: HashSet<String>,
    /// Commands handed to the UI, by id: when the answer is due.
    awaiting_ui: HashMap<String, Instant>,
    /// Screenshot chunks waiting for the bandwidth cap, oldest first, each with the ack
    /// that goes out after the last chunk of its PNG.
    uploads: VecDeque<(Vec<u8>, Option<Ack>)>,
    /// Set when a blob cannot be had; the next pump refuses the pending manifests.
    fatal: Option<String>,
    /// Root rotations from `content/root/N`, by version: verified ones (the chain from the
    /// pinned root to `self.root`) and ones waiting for their predecessor.
    rotations: BTreeMap<u64, Vec<u8>>,
    ui: Option<std::sync::mpsc::Sender<UiCommand>>,
    status: Arc<Mutex<SyncStatus>>,
}

impl Engine {
    pub fn new(
        cfg: EngineConfig,
        status: Arc<Mutex<SyncStatus>>,
        ui: Option<std::sync::mpsc::Sender<UiCommand>>,
    ) -> Engine {
        let mut engine = Engine {
            device: cfg.device,
            chain: cfg.chain,
            data_dir: cfg.data_dir,
            root: cfg.root,
            installed: cfg.installed,
            envelopes: cfg
                .installed_envelopes
                .iter()
                .filter_map(|(s, b)| Some((s.clone(), serde_json::from_slice(b).ok()?)))
                .collect(),
            full: HashSet::new(),
            pending: BTreeMap::new(),
            queue: VecDeque::new(),
            inflight: HashMap::new(),
            activating: false,
            cap: 0,
            window: String::new(),
            throttle_until: Instant::now(),
            done_commands: HashSet::new(),
            awaiting_ui: HashMap::new(),
            uploads: VecDeque::new(),
            fatal: None,
            rotations: BTreeMap::new(),
            ui,
            status,
        };
        // The device's own overrides (`set-setting`) apply over the published settings.
        let settings = crate::content::settings::with_local(
            cfg.settings.unwrap_or_default(),
            &engine.data_dir,
        );
        engine.apply_settings(&settings);
        engine.publish_versions();
        engine
    }

    fn blobs(&self) -> PathBuf {
        self.data_dir.join(paths::BLOBS)
    }

    fn with_status(&self, f: impl FnOnce(&mut SyncStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    fn publish_versions(&self) {
        let versions = self.installed.clone();
        self.with_status(|s| s.versions = versions);
    }

    /// After every (re)connect: subscribe, announce "online", and ask again for every
    /// transfer that was under way, from the length of its `.partial` file.
    pub fn on_connected(&mut self, link: &mut dyn Link) {
        self.with_status(|s| s.connected = true);
        for t in self.subscriptions() {
            self.send(|l| l.subscribe(&t), link);
        }
        let state = topic::dev(&self.device, "state");
        self.send(|l| l.publish(&state, protocol::ONLINE.to_vec(), true), link);
        for t in self.inflight.values_mut() {
            t.needs_request = true;
        }
        self.pump(link, Instant::now());
    }

    pub fn on_disconnected(&mut self) {
        self.with_status(|s| s.connected = false);
    }

    fn subscriptions(&mut self) -> Vec<String> {
        let mut subs: Vec<String> = self.chain.iter().map(topic::delta).collect();
        for scope in &self.chain {
            if !self.envelopes.contains_key(scope) {
                self.full.insert(scope.clone());
                subs.push(topic::manifest(scope));
            }
        }
        subs.extend(self.chain.iter().map(topic::scope_cmd));
        subs.push(topic::roots());
        subs.push(topic::dev(&self.device, "blob"));
        subs.push(topic::dev(&self.device, "cmd"));
        subs
    }

    /// "Resync now": subscribing again makes the broker send every retained delta (and
    /// full manifest where there is no base), and a refused one is looked at afresh.
    pub fn resync(&mut self, link: &mut dyn Link) {
        for scope in self.chain.clone() {
            let mut topics = vec![topic::delta(&scope)];
            if !self.envelopes.contains_key(&scope) {
                self.full.insert(scope.clone());
                topics.push(topic::manifest(&scope));
            }
            for t in topics {
                self.send(|l| l.unsubscribe(&t), link);
                self.send(|l| l.subscribe(&t), link);
            }
        }
    }

    /// Asks for a scope's full manifest: its delta did not apply to what we have.
    fn subscribe_full(&mut self, link: &mut dyn Link, scope: &ScopeCode) {
        if self.full.insert(scope.clone()) {
            let t = topic::manifest(scope);
            self.send(|l| l.subscribe(&t), link);
        }
    }

    fn on_delta(
        &mut self,
        link: &mut dyn Link,
        scope: ScopeCode,
        payload: &[u8],
        now: DateTime<Utc>,
    ) {
        if payload.is_empty() {
            return;
        }
        let delta: ManifestDelta = match serde_json::from_slice(payload) {
            Ok(d) => d,
            Err(e) => {
                self.with_status(|s| {
                    s.error(format!("the manifest delta of {scope} is not valid: {e}"))
                });
                return self.subscribe_full(link, &scope);
            }
        };
        if Some(delta.head.version) <= self.known_version(&scope) {
            // Nothing newer: the no-op sync.
            self.with_status(|s| s.last_sync = Some(now));
            return;
        }
        let rebuilt = self
            .envelopes
            .get(&scope)
            .and_then(|base| protocol::apply_delta(base, &delta))
            // Pretty, as `bundle::write` writes manifest.json: the rebuilt envelope is then
            // byte for byte what the city published, and so is its hash in health reports.
            .and_then(|env| serde_json::to_vec_pretty(&env).ok());
        match rebuilt {
            Some(bytes) if self.check(&bytes, now).is_ok() => {
                self.on_manifest(link, scope, &bytes, now)
            }
            // Not from our base, or rebuilt bytes that do not verify: the full manifest
            // decides, and is refused or accepted on its own.
            _ => self.subscribe_full(link, &scope),
        }
    }

    fn check(&self, payload: &[u8], now: DateTime<Utc>) -> Result<Manifest, VerifyError> {
        let known: BTreeMap<ScopeCode, u64> = self
            .chain
            .iter()
            .filter_map(|s| self.known_version(s).map(|v| (s.clone(), v)))
            .collect();
        let policy = Policy {
            root: &self.root,
            chain: &self.chain,
            installed: &known,
            now,
            limits: Limits::default(),
        };
        verify_manifest(payload, &policy).map(|(_, m)| m)
    }

    fn send(&self, f: impl FnOnce(&mut dyn Link) -> anyhow::Result<()>, link: &mut dyn Link) {
        if let Err(e) = f(link) {
            self.with_status(|s| s.error(format!("MQTT send failed: {e:#}")));
        }
    }

    fn publish_json<T: serde::Serialize>(&self, link: &mut dyn Link, leaf: &str, value: &T) {
        let t = topic::dev(&self.device, leaf);
        match serde_json::to_vec(value) {
            Ok(bytes) => {
                let n = bytes.len() as u64;
                self.send(|l| l.publish(&t, bytes, false), link);
                self.with_status(|s| s.bytes_sent += n);
            }
            Err(e) => self.with_status(|s| s.error(format!("encoding {leaf}: {e}"))),
        }
    }

    fn event(&self, link: &mut dyn Link, event: Event) {
        if let Event::Refused { reason, .. } | Event::CommandRefused { reason, .. } = &event {
            self.with_status(|s| s.error(reason.clone()));
        }
        self.publish_json(link, "event", &event);
    }

    pub fn on_message(
        &mut self,
        link: &mut dyn Link,
        topic_name: &str,
        payload: &[u8],
        now: DateTime<Utc>,
    ) {
        self.with_status(|s| s.bytes_received += payload.len() as u64);
        if let Some(n) = topic::root_version(topic_name) {
            self.on_root(link, n, payload, now);
        } else if let Some(scope) = topic::delta_scope(topic_name) {
            self.on_delta(link, scope, payload, now);
        } else if let Some(scope) = topic::manifest_scope(topic_name) {
            self.on_manifest(link, scope.clone(), payload, now);
            // Once there is a base, the small delta topic is enough.
            if self.envelopes.contains_key(&scope) && self.full.remove(&scope) {
                let t = topic::manifest(&scope);
                self.send(|l| l.unsubscribe(&t), link);
            }
        } else if topic_name == topic::dev(&self.device, "blob") {
            self.on_chunk(link, payload);
        } else if topic_name == topic::dev(&self.device, "cmd") || topic_name.ends_with("/cmd") {
            self.on_command(link, payload, now);
        }
    }

    /// A retained root rotation: kept, and applied to the trusted root as soon as the chain
    /// from the current root reaches it (each step signed by the keys of the step before,
    /// as the installer checks). A rotation that does not verify is refused and reported;
    /// the kiosk keeps the root it has. When the root moves, manifests are asked for again,
    /// as ones signed by the new keys were refused before.
    fn on_root(&mut self, link: &mut dyn Link, n: u64, payload: &[u8], now: DateTime<Utc>) {
        if payload.is_empty() || n <= self.root.version {
            return;
        }
        self.rotations.insert(n, payload.to_vec());
        if self.advance_root(now, Some(link)) {
            self.resync(link);
        }
    }

    /// Applies the kept rotations that follow the trusted root; true when the root moved.
    fn advance_root(&mut self, now: DateTime<Utc>, mut link: Option<&mut dyn Link>) -> bool {
        let mut moved = false;
        while let Some(bytes) = self.rotations.get(&(self.root.version + 1)).cloned() {
            let next = self.root.version + 1;
            match crate::bundle::verify_rotation(&self.root, &bytes, now, &Limits::default()) {
                Ok(root) => {
                    self.root = root;
                    moved = true;
                }
                Err(e) => {
                    self.rotations.remove(&next);
                    let reason = format!("root rotation {next} refused: {e}");
                    if let Some(l) = link.as_deref_mut() {
                        self.event(l, Event::CommandRefused { reason, at: now });
                    } else {
                        self.with_status(|s| s.error(reason));
                    }
                    break;
                }
            }
        }
        moved
    }

    fn known_version(&self, scope: &ScopeCode) -> Option<u64> {
        let installed = self.installed.get(scope).copied();
        let pending = self.pending.get(scope).map(|(m, _)| m.version);
        installed.max(pending)
    }

    fn on_manifest(
        &mut self,
        link: &mut dyn Link,
        scope: ScopeCode,
        payload: &[u8],
        now: DateTime<Utc>,
    ) {
        if payload.is_empty() {
            return; // A cleared retained message: nothing published for this scope.
        }
        match self.check(payload, now) {
            Ok(manifest) if manifest.scope != scope => {
                let reason =
                    format!("a manifest for {} arrived on the topic of {scope}", manifest.scope);
                self.event(
                    link,
                    Event::Refused { scope, version: Some(manifest.version), reason, at: now },
                );
            }
            Ok(manifest) => {
                if let Ok(env) = serde_json::from_slice(payload) {
                    self.envelopes.insert(scope.clone(), env);
                }
                self.pending.insert(scope, (manifest, payload.to_vec()));
                self.plan(link, now);
            }
            // The version we already have, delivered again on every (re)subscribe: the
            // no-op sync, silent.
            Err(VerifyError::Rollback { installed, offered, .. }) if installed == offered => {
                self.with_status(|s| s.last_sync = Some(now));
            }
            Err(e) => {
                let version = manifest_version(payload);
                self.event(link, Event::Refused { scope, version, reason: e.to_string(), at: now });
            }
        }
    }

    /// Works out which blobs the pending manifests still need, checks the disk has room
    /// for them, and queues them (device settings first: they carry the bandwidth cap).
    fn plan(&mut self, link: &mut dyn Link, now: DateTime<Utc>) {
        let mut seen: HashSet<&str> = self.inflight.keys().map(String::as_str).collect();
        let mut missing: Vec<Entry> = Vec::new();
        for (manifest, _) in self.pending.values() {
            for e in &manifest.entries {
                if seen.insert(&e.sha256) && !self.blobs().join(&e.sha256).exists() {
                    missing.push(e.clone());
                }
            }
        }
        missing.sort_by_key(|e| (e.path != paths::DEVICE, e.path.clone()));
        let need: u64 = missing
            .iter()
            .map(|e| e.size.saturating_sub(file_len(&self.partial(&e.sha256))))
            .sum::<u64>()
            + DISK_RESERVE;
        let free = std::fs::create_dir_all(self.blobs())
            .and_then(|_| fs4::available_space(&self.data_dir));
        match free {
            Ok(free) if free < need => {
                let reason = format!("not enough disk space: {need} bytes needed, {free} free");
                for (scope, (m, _)) in std::mem::take(&mut self.pending) {
                    self.event(
                        link,
                        Event::Refused {
                            scope,
                            version: Some(m.version),
                            reason: reason.clone(),
                            at: now,
                        },
                    );
                }
                return;
            }
            Err(e) => self.with_status(|s| s.error(format!("checking free disk space: {e}"))),
            Ok(_) => {}
        }
        self.queue = missing.into();
        self.pump(link, Instant::now());
    }

    fn partial(&self, sha: &str) -> PathBuf {
        self.blobs().join(format!("{sha}.partial"))
    }

    fn in_window(&self) -> bool {
        in_window(&self.window, chrono::Local::now().time())
    }

    /// Starts transfers up to the window and sends the requests that are due.
    fn pump(&mut self, link: &mut dyn Link, now: Instant) {
        if !self.status.lock().map(|s| s.connected).unwrap_or(false) {
            return;
        }
        if now < self.throttle_until || !self.in_window() {
            return;
        }
        while self.inflight.len() < WINDOW {
            let Some(entry) = self.queue.pop_front() else { break };
            if let Err(e) = self.start(entry) {
                self.with_status(|s| s.error(e));
            }
        }
        let due: Vec<String> =
            self.inflight.iter().filter(|(_, t)| t.needs_request).map(|(k, _)| k.clone()).collect();
        for sha in due {
            self.request(link, &sha, now);
        }
        if let Some(reason) = self.fatal.take() {
            self.fail(link, reason);
        }
    }

    fn start(&mut self, entry: Entry) -> Result<(), String> {
        let blob = self.blobs().join(&entry.sha256);
        if blob.exists() {
            return Ok(());
        }
        let partial = self.partial(&entry.sha256);
        let mut received = file_len(&partial);
        if received > entry.size {
            std::fs::remove_file(&partial)
                .map_err(|e| format!("removing {}: {e}", partial.display()))?;
            received = 0;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&partial)
            .map_err(|e| format!("opening {}: {e}", partial.display()))?;
        let sha = entry.sha256.clone();
        let t = Transfer {
            entry,
            file,
            received,
            asked_until: received,
            last_activity: Instant::now(),
            needs_request: true,
            retries: 0,
        };
        self.inflight.insert(sha.clone(), t);
        if received == self.inflight[&sha].entry.size {
            self.complete(&sha);
        }
        Ok(())
    }

    fn request(&mut self, link: &mut dyn Link, sha: &str, now: Instant) {
        let Some(t) = self.inflight.get_mut(sha) else { return };
        let len = (t.entry.size - t.received).min(REQUEST_LEN);
        t.asked_until = t.received + len;
        t.needs_request = false;
        t.last_activity = now;
        let req = BlobRequest {
            device: self.device.clone(),
            sha256: sha.to_string(),
            offset: t.received,
            len,
        };
        let Ok(bytes) = serde_json::to_vec(&req) else { return };
        let n = bytes.len() as u64;
        self.send(|l| l.publish(&topic::blob_get(), bytes, false), link);
        self.with_status(|s| s.bytes_sent += n);
    }

    fn on_chunk(&mut self, link: &mut dyn Link, payload: &[u8]) {
        let Ok((header, data)) = protocol::decode_chunk(payload) else {
            self.with_status(|s| s.error("a malformed blob chunk arrived".into()));
            return;
        };
        let now = Instant::now();
        if let Some(err) = header.error {
            if self.inflight.remove(&header.sha256).is_some() {
                self.fail(link, format!("the server cannot send blob {}: {err}", header.sha256));
            }
            return;
        }
        let Some(t) = self.inflight.get_mut(&header.sha256) else { return };
        // A duplicate after a re-request, or a chunk after a lost one: only the chunk
        // that continues the file is written; the rest is asked for again on stall.
        if header.offset != t.received || t.received + data.len() as u64 > t.entry.size {
            return;
        }
        if let Err(e) = t.file.write_all(data) {
            let msg = format!("writing blob {}: {e}", header.sha256);
            self.inflight.remove(&header.sha256);
            self.fail(link, msg);
            return;
        }
        t.received += data.len() as u64;
        t.last_activity = now;
        let (received, size, asked) = (t.received, t.entry.size, t.asked_until);
        let n = data.len() as u64;
        self.with_status(|s| s.blob_bytes += n);
        if self.cap > 0 {
            let start = self.throttle_until.max(now);
            self.throttle_until = start + Duration::from_secs_f64(n as f64 / self.cap as f64);
        }
        let sha = header.sha256;
        if received == size {
            self.complete(&sha);
        } else if received >= asked {
            if let Some(t) = self.inflight.get_mut(&sha) {
                t.needs_request = true;
            }
        }
        self.pump(link, now);
    }

    /// A blob's last byte arrived: check its hash and move it into the cache.
    fn complete(&mut self, sha: &str) {
        let Some(mut t) = self.inflight.remove(sha) else { return };
        let partial = self.partial(sha);
        let result = t.file.sync_all().map_err(|e| e.to_string()).and_then(|_| {
            verify_blob_file(&t.entry, &partial).map_err(|e| e.to_string())?;
            std::fs::rename(&partial, self.blobs().join(sha)).map_err(|e| e.to_string())
        });
        match result {
            Ok(()) => {
                if t.entry.path == paths::DEVICE {
                    if let Some(s) = read_json::<DeviceSettings>(&self.blobs().join(sha)) {
                        self.apply_settings(&s);
                    }
                }
            }
            Err(e) => {
                // Bad bytes (a corrupt partial file, a lying server): start the blob over,
                // once or twice, before giving up on this sync.
                let _ = std::fs::remove_file(&partial);
                self.with_status(|s| {
                    s.error(format!("blob {} ({}) failed its check: {e}", sha, t.entry.path))
                });
                if t.retries < 2 {
                    t.retries += 1;
                    t.received = 0;
                    t.asked_until = 0;
                    t.needs_request = true;
                    if let Ok(f) = OpenOptions::new().create(true).append(true).open(&partial) {
                        t.file = f;
                        self.inflight.insert(sha.to_string(), t);
                    }
                } else {
                    self.fatal = Some(format!(
                        "blob {} ({}) failed its check three times: {e}",
                        sha, t.entry.path
                    ));
                }
            }
        }
    }

    fn fail(&mut self, link: &mut dyn Link, reason: String) {
        self.queue.clear();
        self.inflight.clear();
        let now = Utc::now();
        for (scope, (m, _)) in std::mem::take(&mut self.pending) {
            self.event(
                link,
                Event::Refused { scope, version: Some(m.version), reason: reason.clone(), at: now },
            );
        }
    }

    /// The activation to run, when every blob of the pending manifests is in the cache.
    pub fn take_activation(&mut self) -> Option<ActivationJob> {
        if self.activating
            || self.pending.is_empty()
            || !self.queue.is_empty()
            || !self.inflight.is_empty()
        {
            return None;
        }
        let all_there = self
            .pending
            .values()
            .all(|(m, _)| m.entries.iter().all(|e| self.blobs().join(&e.sha256).exists()));
        if !all_there {
            return None;
        }
        self.activating = true;
        let manifests = self
            .pending
            .iter()
            .map(|(s, (m, bytes))| (s.clone(), m.version, bytes.clone()))
            .collect();
        let roots = self.rotations.range(..=self.root.version).map(|(_, b)| b.clone()).collect();
        Some(ActivationJob { manifests, roots })
    }

    /// The outcome of a job from [`Engine::take_activation`]: on success, the device
    /// settings of the new content.
    pub fn on_activated(
        &mut self,
        link: &mut dyn Link,
        job: &ActivationJob,
        result: Result<Option<DeviceSettings>, String>,
    ) {
        self.activating = false;
        let now = Utc::now();
        let bytes = self.status.lock().map(|s| s.blob_bytes).unwrap_or(0);
        for (scope, version, _) in &job.manifests {
            if self.pending.get(scope).map(|(m, _)| m.version) == Some(*version) {
                self.pending.remove(scope);
            }
            let event = match &result {
                Ok(_) => {
                    self.installed.insert(scope.clone(), *version);
                    Event::Applied { scope: scope.clone(), version: *version, bytes, at: now }
                }
                Err(reason) => Event::Refused {
                    scope: scope.clone(),
                    version: Some(*version),
                    reason: format!("activation failed: {reason}"),
                    at: now,
                },
            };
            self.event(link, event);
        }
        self.publish_versions();
        self.with_status(|s| s.last_sync = Some(now));
        if let Ok(Some(settings)) = &result {
            let settings = crate::content::settings::with_local(settings.clone(), &self.data_dir);
            self.apply_settings(&settings);
        }
        if !self.pending.is_empty() {
            self.plan(link, now);
        }
    }

    /// Every second or so: ask again for stalled transfers, send requests the bandwidth
    /// cap held back, start transfers when the download window opens.
    pub fn on_tick(&mut self, link: &mut dyn Link, now: Instant) {
        for t in self.inflight.values_mut() {
            if !t.needs_request && now.duration_since(t.last_activity) > STALL {
                t.needs_request = true;
            }
        }
        self.pump(link, now);
        self.flush_uploads(link, now);
        let late: Vec<String> = self
            .awaiting_ui
            .iter()
            .filter(|(_, due)| now >= **due)
            .map(|(id, _)| id.clone())
            .collect();
        for id in late {
            self.awaiting_ui.remove(&id);
            let result = format!("the UI did not answer within {} s", UI_REPLY_TIMEOUT.as_secs());
            self.ack(link, id, false, result);
        }
    }

    fn ack(&self, link: &mut dyn Link, id: String, ok: bool, result: String) {
        self.publish_json(link, "cmd/ack", &Ack { id, device: self.device.clone(), ok, result });
    }

    /// The UI's answer to a command it was handed: acks it, after uploading the PNG of a
    /// screenshot. An answer after the timeout (already acked as failed) is dropped.
    pub fn on_ui_reply(&mut self, link: &mut dyn Link, reply: UiReply, now: Instant) {
        if self.awaiting_ui.remove(&reply.id).is_none() {
            return;
        }
        match reply.outcome {
            UiOutcome::Done(result) => self.ack(link, reply.id, true, result),
            UiOutcome::Failed(reason) => self.ack(link, reply.id, false, reason),
            UiOutcome::Screenshot(png) => {
                let sha = crate::bundle::format::sha256_hex(&png);
                let total = png.len() as u64;
                let result = format!("screenshot {sha} {total} B");
                let ack = Ack { id: reply.id, device: self.device.clone(), ok: true, result };
                let chunks: Vec<Vec<u8>> = png
                    .chunks(protocol::MAX_CHUNK)
                    .scan(0u64, |offset, data| {
                        let header = protocol::ChunkHeader {
                            sha256: sha.clone(),
                            offset: *offset,
                            total,
                            error: None,
                        };
                        *offset += data.len() as u64;
                        Some(protocol::encode_chunk(&header, data))
                    })
                    .collect();
                let last = chunks.len().saturating_sub(1);
                for (i, chunk) in chunks.into_iter().enumerate() {
                    let ack = (i == last).then(|| ack.clone());
                    self.uploads.push_back((chunk, ack));
                }
                if total == 0 {
                    self.ack(link, ack.id, false, "the UI sent an empty screenshot".into());
                }
                self.flush_uploads(link, now);
            }
        }
    }

    /// Sends queued screenshot chunks as the bandwidth cap allows (downloads and uploads
    /// share one budget), and each PNG's ack after its last chunk.
    fn flush_uploads(&mut self, link: &mut dyn Link, now: Instant) {
        let t = topic::dev(&self.device, "screenshot");
        while now >= self.throttle_until || self.cap == 0 {
            let Some((chunk, ack)) = self.uploads.pop_front() else { return };
            let n = chunk.len() as u64;
            self.send(|l| l.publish(&t, chunk, false), link);
            self.with_status(|s| s.bytes_sent += n);
            if self.cap > 0 {
                let start = self.throttle_until.max(now);
                self.throttle_until = start + Duration::from_secs_f64(n as f64 / self.cap as f64);
            }
            if let Some(ack) = ack {
                self.publish_json(link, "cmd/ack", &ack);
            }
        }
    }

    /// `set-setting`: checks and saves the override, applies the settings the sync worker
    /// uses at once, and hands the rest to the UI.
    fn set_setting(&mut self, id: &str, key: &str, value: &str) -> Option<(bool, String)> {
        use crate::content::settings;
        let effective = match settings::set_local(&self.data_dir, key, value) {
            Ok(s) => s,
            Err(e) => return Some((false, e.to_string())),
        };
        self.apply_settings(&effective);
        if settings::applies_live(key) {
            return Some((true, format!("{key} = {} applied", value.trim())));
        }
        // The UI reads the others when it starts; it decides when it can restart.
        let cmd = UiCommand {
            id: id.to_string(),
            action: Action::SetSetting { key: key.to_string(), value: value.trim().to_string() },
        };
        match &self.ui {
            Some(ui) if ui.send(cmd).is_ok() => None,
            _ => Some((true, format!("{key} = {} saved; applies after restart", value.trim()))),
        }
    }

    fn on_command(&mut self, link: &mut dyn Link, payload: &[u8], now: DateTime<Utc>) {
        let checked = protocol::verify_command(
            payload,
            &self.root.keys,
            self.root.threshold,
            &self.device,
            &self.chain,
            now,
        );
        let cmd: Command = match checked {
            Ok(c) => c,
            Err(protocol::CommandError::NotForMe { .. }) => return,
            Err(e) => {
                let reason = e.to_string();
                self.event(link, Event::CommandRefused { reason: reason.clone(), at: now });
                let id = command_id(payload);
                self.publish_json(
                    link,
                    "cmd/ack",
                    &Ack { id, device: self.device.clone(), ok: false, result: reason },
                );
                return;
            }
        };
        if !self.done_commands.insert(cmd.id.clone()) {
            return; // Delivered twice (QoS 1): acted on once.
        }
        let answer = match &cmd.action {
            Action::Resync => {
                self.resync(link);
                Some((true, "resync started".to_string()))
            }
            Action::SetSetting { key, value } => self.set_setting(&cmd.id, key, value),
            action => match &self.ui {
                Some(ui)
                    if ui
                        .send(UiCommand { id: cmd.id.clone(), action: action.clone() })
                        .is_ok() =>
                {
                    None
                }
                _ => Some((false, "no UI is running to carry this out".to_string())),
            },
        };
        match answer {
            Some((ok, result)) => self.ack(link, cmd.id, ok, result),
            // Acked when the UI answers, or when it has not in time.
            None => {
                self.awaiting_ui.insert(cmd.id, Instant::now() + UI_REPLY_TIMEOUT);
            }
        }
    }

    fn apply_settings(&mut self, s: &DeviceSettings) {
        self.cap = u64::from(s.bandwidth_kbps) * 1024;
        self.window = s.download_window.clone();
        let interval = s.health_interval_seconds;
        self.with_status(|st| st.health_interval_seconds = interval);
    }

    /// Replaces the trusted root (after an install pinned a rotated one); rotations
    /// received since and not yet pinned are applied on top again.
    pub fn set_root(&mut self, root: Root) {
        self.root = root;
        let pinned = self.root.version;
        self.rotations.retain(|n, _| *n > pinned);
        self.advance_root(Utc::now(), None);
    }

    /// Bytes of blob data still to fetch, for the status and tests.
    pub fn remaining(&self) -> u64 {
        self.queue.iter().map(|e| e.size).sum::<u64>()
            + self.inflight.values().map(|t| t.entry.size - t.received).sum::<u64>()
    }
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn manifest_version(envelope: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct V {
        version: u64,
    }
    let env: crate::bundle::format::Envelope = serde_json::from_slice(envelope).ok()?;
    serde_json::from_str::<V>(&env.payload).ok().map(|v| v.version)
}

fn command_id(payload: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Id {
        id: String,
    }
    serde_json::from_slice::<crate::bundle::format::Envelope>(payload)
        .ok()
        .and_then(|e| serde_json::from_str::<Id>(&e.payload).ok())
        .map(|i| i.id)
        .unwrap_or_default()
}

/// Whether `t` falls in a `HH:MM-HH:MM` window (which may wrap past midnight); an empty
/// or unreadable window means any time, so a typo never stops updates for good.
pub fn in_window(window: &str, t: chrono::NaiveTime) -> bool {
    let parse = |s: &str| chrono::NaiveTime::parse_from_str(s.trim(), "%H:%M").ok();
    let Some((a, b)) = window.split_once('-') else { return true };
    let (Some(a), Some(b)) = (parse(a), parse(b)) else { return true };
    if a <= b {
        a <= t && t < b
    } else {
        t >= a || t < b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::format::sha256_hex;
    use ed25519_dalek::SigningKey;

    /// Records what the engine sends instead of talking to a broker.
    #[derive(Default)]
    struct FakeLink {
        subscribed: Vec<String>,
        published: Vec<(String, Vec<u8>, bool)>,
    }

    impl Link for FakeLink {
        fn subscribe(&mut self, topic: &str) -> anyhow::Result<()> {
            self.subscribed.push(topic.to_string());
            Ok(())
        }
        fn unsubscribe(&mut self, _: &str) -> anyhow::Result<()> {
            Ok(())
        }
        fn publish(&mut self, topic: &str, payload: Vec<u8>, retain: bool) -> anyhow::Result<()> {
            self.published.push((topic.to_string(), payload, retain));
            Ok(())
        }
    }

    impl FakeLink {
        fn requests(&self) -> Vec<BlobRequest> {
            self.published
                .iter()
                .filter(|(t, _, _)| t == &topic::blob_get())
                .filter_map(|(_, p, _)| serde_json::from_slice(p).ok())
                .collect()
        }
        fn on(&self, leaf: &str) -> Vec<String> {
            let t = topic::dev("k1", leaf);
            self.published
                .iter()
                .filter(|(x, _, _)| *x == t)
                .map(|(_, p, _)| String::from_utf8_lossy(p).into_owned())
                .collect()
        }
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[3; 32])
    }

    fn scope() -> ScopeCode {
        ScopeCode::parse("430100").expect("valid")
    }

    fn engine(dir: &Path) -> Engine {
        let root = Root {
            version: 1,
            expires: Utc::now() + chrono::Duration::days(1),
            keys: vec![hex::encode(key().verifying_key().as_bytes())],
            threshold: 1,
        };
        let cfg = EngineConfig {
            device: "k1".into(),
            chain: vec![scope()],
            data_dir: dir.to_path_buf(),
            root,
            installed: BTreeMap::new(),
            installed_envelopes: BTreeMap::new(),
            settings: None,
        };
        Engine::new(cfg, Arc::default(), None)
    }

    fn signed_manifest(blobs: &[&[u8]], signer: &SigningKey) -> Vec<u8> {
        let now = Utc::now();
        let m = Manifest {
            format: crate::bundle::format::FORMAT,
            scope: scope(),
            version: 1,
            created: now,
            expires: now + chrono::Duration::days(1),
            entries: blobs
                .iter()
                .enumerate()
                .map(|(i, b)| Entry {
                    path: format!("files/{i}.bin"),
                    sha256: sha256_hex(b),
                    size: b.len() as u64,
                })
                .collect(),
        };
        serde_json::to_vec(&Envelope::sign(&m, &[signer]).expect("sign")).expect("json")
    }

    fn chunk(data: &[u8], offset: usize, len: usize) -> Vec<u8> {
        let header = protocol::ChunkHeader {
            sha256: sha256_hex(data),
            offset: offset as u64,
            total: data.len() as u64,
            error: None,
        };
        protocol::encode_chunk(&header, &data[offset..offset + len])
    }

    #[test]
    fn connecting_subscribes_the_chain_and_says_online() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut e = engine(dir.path());
        let mut link = FakeLink::default();
        e.on_connected(&mut link);
        assert!(link.subscribed.contains(&topic::delta(&scope())));
        assert!(
            link.subscribed.contains(&topic::manifest(&scope())),
            "no base yet: the full manifest is needed"
        );
        assert!(link.subscribed.contains(&topic::dev("k1", "blob")));
        assert_eq!(link.published[0], (topic::dev("k1", "state"), protocol::ONLINE.to_vec(), true));
    }

    #[test]
    fn blobs_are_fetched_resumed_after_a_stall_checked_and_then_activated() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut e = engine(dir.path());
        let mut link = FakeLink::default();
        e.on_connected(&mut link);
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let small = b"small".to_vec();
        let manifest = signed_manifest(&[&big, &small], &key());
        e.on_message(&mut link, &topic::manifest(&scope()), &manifest, Utc::now());
        let reqs = link.requests();
        assert_eq!(reqs.len(), 2, "both missing blobs are asked for: {reqs:?}");
        assert!(e.take_activation().is_none(), "nothing to activate before the blobs arrive");

        let blob_topic = topic::dev("k1", "blob");
        e.on_message(&mut link, &blob_topic, &chunk(&small, 0, small.len()), Utc::now());
        e.on_message(&mut link, &blob_topic, &chunk(&big, 0, 40_000), Utc::now());
        // A chunk that does not continue the file (lost one before it) is not written.
        e.on_message(&mut link, &blob_topic, &chunk(&big, 60_000, 10_000), Utc::now());
        assert_eq!(e.remaining(), 60_000);

        // Nothing more arrives: after the stall time, the rest is asked for from 40 000.
        link.published.clear();
        e.on_tick(&mut link, Instant::now() + STALL + Duration::from_secs(1));
        let again = link.requests();
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].offset, again[0].len), (40_000, 60_000));
        e.on_message(&mut link, &blob_topic, &chunk(&big, 40_000, 60_000), Utc::now());

        assert!(dir.path().join("blobs").join(sha256_hex(&big)).is_file());
        let job = e.take_activation().expect("every blob is there");
        assert_eq!(job.manifests.len(), 1);
        e.on_activated(&mut link, &job, Ok(None));
        assert!(link.on("event").iter().any(|ev| ev.contains("\"applied\"")));
        assert_eq!(
            e.status.lock().map(|s| s.versions.get(&scope()).copied()).ok().flatten(),
            Some(1)
        );
    }

    #[test]
    fn a_blob_whose_bytes_do_not_match_is_not_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut e = engine(dir.path());
        let mut link = FakeLink::default();
        e.on_connected(&mut link);
        let good = b"the real bytes".to_vec();
        e.on_message(
            &mut link,
            &topic::manifest(&scope()),
            &signed_manifest(&[&good], &key()),
            Utc::now(),
        );
        let mut header =
            protocol::ChunkHeader { sha256: sha256_hex(&good), offset: 0, total: 14, error: None };
        let evil = protocol::encode_chunk(&header, b"the fake bytes");
        e.on_message(&mut link, &topic::dev("k1", "blob"), &evil, Utc::now());
        assert!(!dir.path().join("blobs").join(&header.sha256).exists());
        assert!(e.take_activation().is_none());
        // It is asked for again from the start.
        assert_eq!(link.requests().last().map(|r| r.offset), Some(0));
        header.offset = 0;
        e.on_message(
            &mut link,
            &topic::dev("k1", "blob"),
            &protocol::encode_chunk(&header, &good),
            Utc::now(),
        );
        assert!(e.take_activation().is_some());
    }

    #[test]
    fn a_manifest_signed_by_an_unknown_key_is_refused_and_nothing_fetched() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut e = engine(dir.path());
        let mut link = FakeLink::default();
        e.on_connected(&mut link);
        let forged = signed_manifest(&[b"x"], &SigningKey::from_bytes(&[4; 32]));
        e.on_message(&mut link, &topic::manifest(&scope()), &forged, Utc::now());
        assert!(link.requests().is_empty());
        assert!(link.on("event").iter().any(|ev| ev.contains("\"refused\"")));
        assert!(e.take_activation().is_none());
    }

    #[test]
    fn an_expired_command_is_acked_as_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut e = engine(dir.path());
        let mut link = FakeLink::default();
        let now = Utc::now();
        let payload = command_at(
            "c1",
            Action::Resync,
            now - chrono::Duration::hours(2),
            now - chrono::Duration::hours(1),
        );
        e.on_message(&mut link, &topic::dev("k1", "cmd"), &payload, now);
        let acks = link.on("cmd/ack");
        assert_eq!(acks.len(), 1);
        assert!(acks[0].contains("\"ok\":false") && acks[0].contains("expired"), "{}", acks[0]);
    }

    /// A command for "k1" signed by the root key, valid for five minutes from now.
    fn signed_command(id: &str, action: Action) -> Vec<u8> {
        let now = Utc::now();
        command_at(id, action, now, now + chrono::Duration::minutes(5))
    }

    fn command_at(
        id: &str,
        action: Action,
        issued: chrono::DateTime<Utc>,
        expires: chrono::DateTime<Utc>,
    ) -> Vec<u8> {
        let cmd = Command {
            id: id.into(),
            target: protocol::Target::Device("k1".into()),
            issued,
            expires,
            action,
        };
        serde_json::to_vec(&Envelope::sign(&cmd, &[&key()]).expect("sign")).expect("json")
    }

    fn ui_engine(dir: &Path) -> (Engine, std::sync::mpsc::Receiver<UiCommand>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut e = engine(dir);
        e.ui = Some(tx);
        (e, rx)
    }

    #[test]
    fn a_screenshot_is_uploaded_in_chunks_under_the_cap_and_then_acked() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut e, ui) = ui_engine(dir.path());
        // 64 KiB/s: each full chunk is a second of budget.
        e.cap = 64 * 1024;
        let mut link = FakeLink::default();
        let cmd = topic::dev("k1", "cmd");
        e.on_message(&mut link, &cmd, &signed_command("s1", Action::Screenshot), Utc::now());
        assert_eq!(ui.try_recv().map(|c| c.action), Ok(Action::Screenshot));
        assert!(link.on("cmd/ack").is_empty(), "no ack before the UI has answered");

        let png: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let start = Instant::now();
        let reply = UiReply { id: "s1".into(), outcome: UiOutcome::Screenshot(png.clone()) };
        e.on_ui_reply(&mut link, reply, start);
        assert_eq!(link.on("screenshot").len(), 1, "the cap holds back the other chunks");
        assert!(link.on("cmd/ack").is_empty(), "the ack waits for the last chunk");
        e.on_tick(&mut link, start + Duration::from_millis(500));
        assert_eq!(link.on("screenshot").len(), 1, "half a second is not budget for a chunk");
        for s in 1..=10 {
            e.on_tick(&mut link, start + Duration::from_secs(s));
        }
        let chunks: Vec<Vec<u8>> = link
            .published
            .iter()
            .filter(|(t, _, retain)| *t == topic::dev("k1", "screenshot") && !retain)
            .map(|(_, p, _)| p.clone())
            .collect();
        assert_eq!(chunks.len(), 4);
        let mut whole = Vec::new();
        for c in &chunks {
            let (h, data) = protocol::decode_chunk(c).expect("a chunk");
            assert!(data.len() <= protocol::MAX_CHUNK);
            assert_eq!((h.offset, h.total), (whole.len() as u64, png.len() as u64));
            whole.extend_from_slice(data);
        }
        assert_eq!(whole, png);
        let acks = link.on("cmd/ack");
        assert_eq!(acks.len(), 1);
        let want = format!("screenshot {} 200000 B", sha256_hex(&png));
        assert!(acks[0].contains(&want) && acks[0].contains("\"ok\":true"), "{}", acks[0]);
    }

    #[test]
    fn a_ui_that_does_not_answer_gets_a_failed_ack_and_a_late_answer_is_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut e, _ui) = ui_engine(dir.path());
        let mut link = FakeLink::default();
        let restart = signed_command("r1", Action::Restart);
        e.on_message(&mut link, &topic::dev("k1", "cmd"), &restart, Utc::now());
        e.on_tick(&mut link, Instant::now() + UI_REPLY_TIMEOUT + Duration::from_secs(1));
        let late = UiReply { id: "r1".into(), outcome: UiOutcome::Done("restarting".into()) };
        e.on_ui_reply(&mut link, late, Instant::now());
        let acks = link.on("cmd/ack");
        assert_eq!(acks.len(), 1, "{acks:?}");
        assert!(acks[0].contains("\"ok\":false") && acks[0].contains("did not answer"));
    }

    #[test]
    fn set_setting_applies_sync_keys_at_once_and_refuses_unknown_keys() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut e, ui) = ui_engine(dir.path());
        let mut link = FakeLink::default();
        let t = topic::dev("k1", "cmd");
        let set = |k: &str, v: &str| Action::SetSetting { key: k.into(), value: v.into() };
        e.on_message(&mut link, &t, &signed_command("a", set("bandwidth_kbps", "8")), Utc::now());
        assert_eq!(e.cap, 8 * 1024);
        e.on_message(&mut link, &t, &signed_command("b", set("volume", "3")), Utc::now());
        e.on_message(&mut link, &t, &signed_command("c", set("idle_seconds", "60")), Utc::now());
        let acks = link.on("cmd/ack");
        assert_eq!(acks.len(), 2, "idle_seconds waits for the UI: {acks:?}");
        assert!(acks[0].contains("\"ok\":true") && acks[0].contains("applied"), "{}", acks[0]);
        assert!(acks[1].contains("\"ok\":false") && acks[1].contains("unknown setting"));
        assert_eq!(ui.try_recv().map(|c| c.id), Ok("c".to_string()));
        let local = crate::content::settings::effective(dir.path());
        assert_eq!((local.bandwidth_kbps, local.idle_seconds), (8, 60));
    }

    #[test]
    fn download_windows_wrap_past_midnight() {
        let t = |h, m| chrono::NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default();
        assert!(in_window("22:00-06:00", t(23, 30)) && in_window("22:00-06:00", t(5, 0)));
        assert!(!in_window("22:00-06:00", t(12, 0)));
        assert!(in_window("", t(12, 0)) && in_window("nonsense", t(12, 0)));
    }
}
