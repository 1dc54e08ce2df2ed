//! MQTT on the city side: publish manifests, serve blobs, send signed commands and
//! receive the screenshots kiosks upload for them. The topics and payloads are
//! `kiosk::sync::protocol`; docs/PROTOCOL.md describes them in prose.

mod screenshot;

pub use screenshot::{ScreenshotAssembler, ScreenshotError, MAX_SCREENSHOT};

use std::collections::BTreeMap;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use chrono::Utc;
use kiosk::bundle::format::{paths, sha256_hex, Envelope, Manifest};
use kiosk::content::ScopeCode;
use kiosk::sync::client::{backoff, Broker};
use kiosk::sync::protocol::{
    self, encode_chunk, topic, Ack, Action, BlobRequest, ChunkHeader, Command, Target,
};
use rand::Rng as _;
use rumqttc::{AsyncClient, Event, EventLoop, Packet, QoS, SubscribeFilter};

/// How to reach the broker; shared by every subcommand.
#[derive(clap::Args, Debug, Clone)]
pub struct BrokerArgs {
    /// The broker: mqtts://host:8883, or mqtt://host:1883 for a test bench.
    #[arg(long)]
    pub broker: String,
    /// PEM CA certificate of the broker (for mqtts://).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// PEM client certificate (CN = the city identity the broker's ACL trusts to publish).
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// The client certificate's PEM private key.
    #[arg(long)]
    pub key: Option<PathBuf>,
}

impl BrokerArgs {
    fn broker(&self) -> Broker {
        Broker {
            url: self.broker.clone(),
            ca: self.ca.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct PublishArgs {
    /// The bundle directory (manifest.json + blobs/), as `content-sync build` writes it.
    pub bundle: PathBuf,
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// The blob store `serve` reads; blobs are copied into STORE/blobs.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// The blob store written by `publish`.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct CommandArgs {
    /// A device id, or a scope code (every kiosk of that scope and below).
    pub target: String,
    /// resync | restart | screenshot | announce TEXT | set-setting KEY VALUE
    pub action: String,
    /// The action's arguments.
    pub args: Vec<String>,
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// A root signing key (hex, as `content-sync keygen` writes it); repeat for a threshold.
    #[arg(long = "sign-key", required = true)]
    pub keys: Vec<PathBuf>,
    /// Seconds to wait for acks.
    #[arg(long, default_value_t = 15)]
    pub timeout: u64,
    /// Seconds the command stays valid; a kiosk refuses it afterwards.
    #[arg(long, default_value_t = 300)]
    pub valid_for: i64,
    /// `screenshot` only: where to write the PNG the kiosk uploads; for a scope, a folder
    /// that gets one `DEVICE.png` per kiosk that answered.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn client_id(role: &str) -> String {
    format!("content-sync-{role}-{:08x}", rand::thread_rng().gen::<u32>())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The `roots/N.json` files of a bundle as retained messages for `content/root/N`.
fn bundle_rotations(bundle: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let dir = bundle.join(paths::ROOTS);
    let mut out = Vec::new();
    let Ok(list) = std::fs::read_dir(&dir) else { return Ok(out) };
    for entry in list {
        let path = entry.with_context(|| format!("listing {}", dir.display()))?.path();
        let n = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|_| path.extension().is_some_and(|e| e == "json"))
            .with_context(|| format!("{} is not roots/N.json", path.display()))?;
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        out.push((topic::root(n), bytes));
    }
    out.sort();
    Ok(out)
}

/// Copies the bundle's blobs into the store (checking each hash) and publishes its
/// manifest envelope, retained, on the scope's manifest topic.
pub fn publish(args: PublishArgs) -> anyhow::Result<()> {
    let manifest_path = args.bundle.join(paths::MANIFEST);
    let bytes = std::fs::read(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let envelope: Envelope = serde_json::from_slice(&bytes).with_context(|| {
        format!("{} is not a signed manifest envelope", manifest_path.display())
    })?;
    let manifest: Manifest = serde_json::from_str(&envelope.payload)
        .with_context(|| format!("{} holds no valid manifest", manifest_path.display()))?;
    let copied = store_blobs(&args.bundle, &args.store, &manifest)?;
    // The delta from the version published before, so kiosks that have it move only the
    // changed entries and the new signatures.
    let kept = args.store.join("manifests").join(format!("{}.json", manifest.scope));
    let delta = std::fs::read(&kept)
        .ok()
        .and_then(|b| serde_json::from_slice::<Envelope>(&b).ok())
        .filter(|old| old.payload != envelope.payload)
        .and_then(|old| protocol::make_delta(&old, &envelope))
        .map(|d| serde_json::to_vec(&d))
        .transpose()?;
    let topic = topic::manifest(&manifest.scope);
    // Root rotations the bundle carries go first, retained, so a kiosk can move to the new
    // keys (and a kiosk installed later can walk the whole chain) before the manifest they
    // sign arrives; kiosks re-check what they refused once their root moves.
    let mut messages = bundle_rotations(&args.bundle)?;
    messages.push((topic.clone(), bytes.clone()));
    if let Some(d) = delta {
        messages.push((topic::delta(&manifest.scope), d));
    }
    let rt = runtime()?;
    rt.block_on(async {
        let opts = args.broker.broker().options(&client_id("publish"))?;
        let (client, mut events) = AsyncClient::new(opts, 16);
        // Full manifest first: a kiosk whose delta does not apply falls back to it.
        for (t, payload) in &messages {
            client.publish(t, QoS::AtLeastOnce, true, payload.clone()).await?;
        }
        // Wait for the broker's PUBACKs, so "published" means the broker holds them.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut acked = 0;
        while acked < messages.len() {
            match tokio::time::timeout_at(deadline, events.poll()).await {
                Err(_) => bail!(
                    "the broker {} did not acknowledge the manifest within 30 s",
                    args.broker.broker
                ),
                Ok(Err(e)) => bail!("cannot publish to {}: {e}", args.broker.broker),
                Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acked += 1,
                Ok(Ok(_)) => {}
            }
        }
        client.disconnect().await.ok();
        // Let the DISCONNECT leave before the runtime stops.
        let _ = tokio::time::timeout(Duration::from_millis(200), events.poll()).await;
        anyhow::Ok(())
    })?;
    if let Some(dir) = kept.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&kept, &bytes).with_context(|| format!("writing {}", kept.display()))?;
    println!(
        "published {} version {} ({} entries, {} new blobs in {}) on {topic}",
        manifest.scope,
        manifest.version,
        manifest.entries.len(),
        copied,
        args.store.display()
    );
    Ok(())
}

/// Copies every blob the manifest names into `STORE/blobs`, checking its hash, and keeps
/// the manifest as `STORE/manifests/{scope}.json`. Returns how many blobs were new.
pub fn store_blobs(bundle: &Path, store: &Path, manifest: &Manifest) -> anyhow::Result<usize> {
    let dir = store.join(paths::BLOBS);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut copied = 0;
    for entry in &manifest.entries {
        if !is_hash(&entry.sha256) {
            bail!("manifest entry {} has no valid SHA-256", entry.path);
        }
        let dest = dir.join(&entry.sha256);
        if dest.exists() {
            continue;
        }
        let src = bundle.join(paths::BLOBS).join(&entry.sha256);
        let data = std::fs::read(&src)
            .with_context(|| format!("reading blob of {} at {}", entry.path, src.display()))?;
        if sha256_hex(&data) != entry.sha256 {
            bail!(
                "blob {} of {} does not match its hash: rebuild the bundle",
                src.display(),
                entry.path
            );
        }
        // Write then rename, so `serve` never reads a half-written blob.
        let tmp = dir.join(format!("{}.tmp", entry.sha256));
        std::fs::write(&tmp, &data).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &dest).with_context(|| format!("storing {}", dest.display()))?;
        copied += 1;
    }
    Ok(copied)
}

fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Most bytes one request may ask for; a kiosk asks again for the rest.
const MAX_REQUEST: u64 = 4 << 20;

/// Answers blob requests until the process is stopped. Joins the shared subscription, so
/// several `serve` processes split the requests.
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    serve_with(args, Arc::new(Served::default()))
}

/// What a running `serve` has done, and a switch to stop it (for tests and benchmarks
/// that run it in-process).
#[derive(Debug, Default)]
pub struct Served {
    pub requests: AtomicU64,
    /// Payload bytes of chunk messages sent.
    pub bytes: AtomicU64,
    pub stop: AtomicBool,
}

/// [`serve`], counting into `served` and returning once `served.stop` is set.
pub fn serve_with(args: ServeArgs, served: Arc<Served>) -> anyhow::Result<()> {
    let store = args.store.join(paths::BLOBS);
    if !store.is_dir() {
        bail!(
            "{} is not a blob store: run `content-sync publish … --store {}` first",
            store.display(),
            args.store.display()
        );
    }
    let rt = runtime()?;
    rt.block_on(async {
        let opts = args.broker.broker().options(&client_id("serve"))?;
        let (client, events) = AsyncClient::new(opts, 64);
        // The event loop runs on its own task: answering publishes through `client` needs
        // the loop to keep draining, or both would wait on each other. So the requests it
        // hands over go through an unbounded channel (a bounded one that fills while this
        // loop waits on `client.publish` stops both: seen with 40+ kiosks at once); they are
        // small and each kiosk has only a few blob ranges in flight.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        let pump = tokio::spawn(pump(
            events,
            client.clone(),
            tx,
            "serve",
            vec![protocol::SERVE_SHARE.to_string()],
        ));
        tracing::info!("serving blobs from {} via {}", store.display(), args.broker.broker);
        let mut check = tokio::time::interval(Duration::from_millis(100));
        loop {
            let payload = tokio::select! {
                p = rx.recv() => match p { Some(p) => p, None => break },
                _ = check.tick() => {
                    if served.stop.load(Ordering::Relaxed) { break } else { continue }
                }
            };
            let req: BlobRequest = match serde_json::from_slice(&payload) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("ignoring a malformed blob request: {e}");
                    continue;
                }
            };
            served.requests.fetch_add(1, Ordering::Relaxed);
            match answer(&client, &store, &req).await {
                Ok(n) => {
                    served.bytes.fetch_add(n, Ordering::Relaxed);
                }
                Err(e) => tracing::warn!("answering {req:?}: {e:#}"),
            }
        }
        client.disconnect().await.ok();
        tokio::time::sleep(Duration::from_millis(100)).await;
        pump.abort();
        anyhow::Ok(())
    })
}

/// Polls the event loop forever, (re)subscribing to `subs` after every connect and
/// forwarding incoming publishes' payloads to `tx`.
async fn pump(
    mut events: EventLoop,
    client: AsyncClient,
    tx: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    what: &str,
    subs: Vec<String>,
) {
    let mut attempt = 0;
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                attempt = 0;
                // On a task of its own: with the request queue full of answers,
                // `subscribe().await` here would wait for this very loop to drain it.
                let (client, subs, what) = (client.clone(), subs.clone(), what.to_string());
                tokio::spawn(async move {
                    for s in &subs {
                        if let Err(e) = client.subscribe(s, QoS::AtLeastOnce).await {
                            tracing::warn!("{what}: subscribing to {s}: {e}");
                        }
                    }
                });
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if tx.send(p.payload.to_vec()).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                let wait = backoff(attempt);
                attempt += 1;
                tracing::warn!("{what}: broker connection: {e}; retrying in {wait:?}");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Sends the requested range of one blob as chunks of at most [`protocol::MAX_CHUNK`].
/// Returns the payload bytes sent.
async fn answer(client: &AsyncClient, store: &Path, req: &BlobRequest) -> anyhow::Result<u64> {
    if !protocol::is_topic_safe(&req.device) {
        bail!("device id {:?} cannot name a topic", req.device);
    }
    let reply = topic::dev(&req.device, "blob");
    let refuse = |error: String| {
        encode_chunk(
            &ChunkHeader {
                sha256: req.sha256.clone(),
                offset: req.offset,
                total: 0,
                error: Some(error),
            },
            &[],
        )
    };
    if !is_hash(&req.sha256) {
        return send(client, &reply, refuse("not a SHA-256".into())).await;
    }
    let path = store.join(&req.sha256);
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(_) => {
            return send(client, &reply, refuse("unknown blob".into())).await;
        }
    };
    let total = file.metadata()?.len();
    if req.offset > total {
        return send(client, &reply, refuse("offset past the end".into())).await;
    }
    let end = total.min(req.offset.saturating_add(req.len.min(MAX_REQUEST)));
    file.seek(SeekFrom::Start(req.offset))?;
    let mut offset = req.offset;
    let mut sent = 0;
    let mut buf = vec![0u8; protocol::MAX_CHUNK];
    loop {
        let n = ((end - offset) as usize).min(protocol::MAX_CHUNK);
        file.read_exact(&mut buf[..n])?;
        let header = ChunkHeader { sha256: req.sha256.clone(), offset, total, error: None };
        sent += send(client, &reply, encode_chunk(&header, &buf[..n])).await?;
        offset += n as u64;
        if offset >= end {
            return Ok(sent);
        }
    }
}

async fn send(client: &AsyncClient, topic: &str, msg: Vec<u8>) -> anyhow::Result<u64> {
    let n = msg.len() as u64;
    client.publish(topic, QoS::AtLeastOnce, false, msg).await?;
    Ok(n)
}

/// Signs and sends a remote command, then waits for acks until the timeout: for a device,
/// its one ack; for a scope, every ack that arrives in time. `screenshot --out` also
/// receives the PNGs the devices upload, checks each against the SHA-256 in its ack and
/// writes it: to the file for a device, as `DEVICE.png` in the folder for a scope.
pub fn command(args: CommandArgs) -> anyhow::Result<()> {
    let action = parse_action(&args.action, &args.args)?;
    let target = if let Ok(scope) = ScopeCode::parse(&args.target) {
        Target::Scope(scope)
    } else if protocol::is_topic_safe(&args.target) {
        Target::Device(args.target.clone())
    } else {
        bail!("“{}” is neither a device id nor a scope code", args.target);
    };
    if args.out.is_some() && !matches!(action, Action::Screenshot) {
        bail!("--out is for `screenshot`");
    }
    let mut keys = Vec::new();
    for path in &args.keys {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading key {}", path.display()))?;
        keys.push(
            kiosk::bundle::format::parse_signing_key(&text).with_context(|| {
                format!("{} is not a signing key (64 hex digits)", path.display())
            })?,
        );
    }
    let now = Utc::now();
    let cmd = Command {
        id: format!("{}-{:08x}", now.format("%Y%m%dT%H%M%S"), rand::thread_rng().gen::<u32>()),
        target: target.clone(),
        issued: now,
        expires: now + chrono::Duration::seconds(args.valid_for),
        action,
    };
    let key_refs: Vec<_> = keys.iter().collect();
    let envelope = Envelope::sign(&cmd, &key_refs).context("signing the command")?;
    let (cmd_topic, ack_topic) = match &target {
        Target::Device(d) => (topic::dev(d, "cmd"), topic::dev(d, "cmd/ack")),
        Target::Scope(s) => (topic::scope_cmd(s), topic::dev("+", "cmd/ack")),
    };
    let shot_topic = match (&target, &args.out) {
        (Target::Device(d), Some(_)) => Some(topic::dev(d, "screenshot")),
        (Target::Scope(_), Some(_)) => Some(topic::dev("+", "screenshot")),
        _ => None,
    };
    let topics = Topics { cmd: &cmd_topic, ack: &ack_topic, screenshot: shot_topic.as_deref() };
    let (acks, pngs) = runtime()?.block_on(send_command(&args, &cmd, &envelope, topics))?;
    let mut failed = 0;
    for ack in &acks {
        println!("{}\t{}\t{}", ack.device, if ack.ok { "ok" } else { "FAILED" }, ack.result);
        failed += usize::from(!ack.ok);
    }
    if acks.is_empty() {
        bail!("no kiosk acknowledged command {} within {} s", cmd.id, args.timeout);
    }
    if failed > 0 {
        bail!("{failed} kiosk(s) did not carry out command {}", cmd.id);
    }
    if let Some(out) = &args.out {
        write_screenshots(out, &target, &acks, &pngs, args.timeout)?;
    }
    Ok(())
}

/// Writes the PNGs that arrived: the device's to `out`, a scope's as `out/DEVICE.png`;
/// an error names every kiosk that acked a screenshot whose PNG did not arrive complete.
fn write_screenshots(
    out: &Path,
    target: &Target,
    acks: &[Ack],
    pngs: &BTreeMap<String, Vec<u8>>,
    timeout: u64,
) -> anyhow::Result<()> {
    if matches!(target, Target::Scope(_)) {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    }
    for (device, png) in pngs {
        let file = match target {
            Target::Device(_) => out.to_path_buf(),
            Target::Scope(_) => out.join(format!("{device}.png")),
        };
        kiosk::bundle::write_atomic(&file, png)
            .with_context(|| format!("writing {}", file.display()))?;
        println!("wrote {} ({} bytes)", file.display(), png.len());
    }
    let missing: Vec<&str> = acks
        .iter()
        .filter(|a| a.ok && !pngs.contains_key(&a.device))
        .map(|a| a.device.as_str())
        .collect();
    if !missing.is_empty() {
        bail!(
            "the screenshot of {} did not arrive complete within {timeout} s (raise --timeout on a slow link)",
            missing.join(", ")
        );
    }
    Ok(())
}

/// The topics one command uses.
struct Topics<'a> {
    cmd: &'a str,
    ack: &'a str,
    /// The device's screenshot topic, when the PNG is wanted.
    screenshot: Option<&'a str>,
}

/// Sends the command and collects acks (and the screenshots, when asked for) until the
/// deadline: for a device, until its ack and, for a screenshot, the PNG it names. The
/// PNGs come back by device.
async fn send_command(
    args: &CommandArgs,
    cmd: &Command,
    envelope: &Envelope,
    topics: Topics<'_>,
) -> anyhow::Result<(Vec<Ack>, BTreeMap<String, Vec<u8>>)> {
    let opts = args.broker.broker().options(&client_id("command"))?;
    let (client, mut events) = AsyncClient::new(opts, 16);
    let payload = serde_json::to_vec(envelope)?;
    let mut filters = vec![SubscribeFilter::new(topics.ack.to_string(), QoS::AtLeastOnce)];
    if let Some(t) = topics.screenshot {
        filters.push(SubscribeFilter::new(t.to_string(), QoS::AtLeastOnce));
    }
    // One SUBSCRIBE for all of them, so its SUBACK means every one is in place.
    client.subscribe_many(filters).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout);
    let mut acks = Vec::new();
    let mut shots = ScreenshotAssembler::new();
    // The PNGs acks have named (device → SHA-256) and not yet received.
    let mut wanted: BTreeMap<String, String> = BTreeMap::new();
    let mut pngs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    // Kiosks showing the same screen upload the same bytes once each; keep what came.
    let mut by_sha: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let one_device = matches!(cmd.target, Target::Device(_));
    let mut sent = false;
    loop {
        wanted.retain(|device, sha| {
            if !by_sha.contains_key(sha.as_str()) {
                match shots.take(sha) {
                    Some(png) => by_sha.insert(sha.clone(), png),
                    None => return true,
                };
            }
            pngs.insert(device.clone(), by_sha[sha.as_str()].clone());
            false
        });
        if one_device && !acks.is_empty() && wanted.is_empty() {
            break;
        }
        let ev = match tokio::time::timeout_at(deadline, events.poll()).await {
            Err(_) => break,
            Ok(Err(e)) => bail!("broker {}: {e}", args.broker.broker),
            Ok(Ok(ev)) => ev,
        };
        match ev {
            // Publish only once the ack subscription is in place, or a fast kiosk's ack
            // could arrive before we listen.
            Event::Incoming(Packet::SubAck(_)) if !sent => {
                client.publish(topics.cmd, QoS::AtLeastOnce, false, payload.clone()).await?;
                sent = true;
            }
            Event::Incoming(Packet::Publish(p))
                if topics.screenshot.is_some() && topic::screenshot_device(&p.topic).is_some() =>
            {
                if let Err(e) = shots.push(&p.payload) {
                    eprintln!("content-sync: {e}");
                }
            }
            Event::Incoming(Packet::Publish(p)) => {
                let Ok(ack) = serde_json::from_slice::<Ack>(&p.payload) else { continue };
                if ack.id != cmd.id || topic::ack_device(&p.topic) != Some(ack.device.as_str()) {
                    continue;
                }
                if let Some((sha, _)) = ScreenshotAssembler::parse_ack(&ack.result) {
                    if ack.ok && topics.screenshot.is_some() {
                        wanted.insert(ack.device.clone(), sha);
                    }
                }
                acks.push(ack);
            }
            _ => {}
        }
    }
    client.disconnect().await.ok();
    Ok((acks, pngs))
}

fn parse_action(action: &str, args: &[String]) -> anyhow::Result<Action> {
    Ok(match (action, args) {
        ("resync", []) => Action::Resync,
        ("restart", []) => Action::Restart,
        ("screenshot", []) => Action::Screenshot,
        ("announce", [text]) => Action::Announce { text: text.clone(), seconds: 60 },
        ("announce", [text, secs]) => {
            Action::Announce { text: text.clone(), seconds: secs.parse().context("announce seconds must be a number")? }
        }
        ("set-setting", [key, value]) => Action::SetSetting { key: key.clone(), value: value.clone() },
        _ => bail!(
            "unknown action “{action}” with {} argument(s): use resync, restart, screenshot, announce TEXT [SECONDS] or set-setting KEY VALUE",
            args.len()
        ),
    })
}
