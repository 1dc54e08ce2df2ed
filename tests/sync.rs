//! MQTT sync against a real Mosquitto: a broker per test on a free loopback port, with TLS
//! certificates (CA, server, city and kiosk clients) and a pattern ACL generated at test
//! time by the `openssl` CLI. The city side runs as `content_sync` library calls, the
//! kiosk side as `kiosk::sync` engines; `mosquitto_pub`/`mosquitto_sub` play a third party.

use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use ed25519_dalek::SigningKey;
use kiosk::bundle::format::{Envelope, Root};
use kiosk::bundle::{write_bundle, BundleMeta};
use kiosk::content::{Body, Faq, Item, ScopeCode, ScopeContent};

use crate::util::{free_port, mosquitto, wait_until};

// ---------------------------------------------------------------------------------------
// The broker
// ---------------------------------------------------------------------------------------

/// Certificates made by the `openssl` CLI: a CA, the broker's server certificate for
/// 127.0.0.1, and client certificates whose CN is the MQTT identity.
pub(crate) struct Pki {
    dir: PathBuf,
}

impl Pki {
    pub(crate) fn new(dir: &Path, clients: &[&str]) -> Pki {
        let pki = Pki { dir: dir.to_path_buf() };
        pki.openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ca.key",
        ]);
        pki.openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-days",
            "2",
            "-subj",
            "/CN=zwgk test CA",
            "-out",
            "ca.pem",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        pki.leaf("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n");
        for c in clients {
            pki.leaf(c, "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n");
        }
        pki
    }

    pub(crate) fn leaf(&self, name: &str, ext: &str) {
        let ext_file = self.dir.join(format!("{name}.ext"));
        std::fs::write(&ext_file, ext).expect("writing an extension file");
        self.openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &format!("{name}.key"),
        ]);
        self.openssl(&[
            "req",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            &format!("/CN={name}"),
            "-out",
            &format!("{name}.csr"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ]);
    }

    pub(crate) fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("the openssl CLI");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub(crate) fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

/// A Mosquitto process on a free loopback port, killed on drop.
pub(crate) struct Broker {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    tls: Option<Pki>,
}

/// The ACL: the city may do anything under zwgk/; a device only its own topics, blob
/// requests, and reading manifests and scope commands.
const ACL: &str = "\
user city
topic readwrite zwgk/#

pattern readwrite zwgk/v1/dev/%u/#
pattern write zwgk/v1/blob/get
pattern read zwgk/v1/content/#
";

impl Broker {
    /// A plain-TCP broker, anonymous, for the engine tests.
    pub(crate) fn plain() -> Broker {
        Broker::start(None)
    }

    /// A TLS broker requiring client certificates (CN = username) with the ACL.
    pub(crate) fn tls(clients: &[&str]) -> Broker {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = Pki::new(dir.path(), clients);
        Broker::start_in(dir, Some(pki))
    }

    pub(crate) fn start(tls: Option<Pki>) -> Broker {
        Broker::start_in(tempfile::tempdir().expect("temp dir"), tls)
    }

    pub(crate) fn start_in(dir: tempfile::TempDir, tls: Option<Pki>) -> Broker {
        let port = free_port();
        // Run as whoever runs the tests: started as root, Mosquitto would otherwise drop to
        // its own user, which cannot read the temp dir.
        let me = Command::new("id")
            .arg("-un")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        let user = me.ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "root".into());
        // `log_type subscribe` logs every subscription, which is how `sub_cli` knows its
        // subscriber is in place; naming one log type drops the defaults, so list them too.
        let mut conf = format!("listener {port} 127.0.0.1\nuser {user}\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\nlog_type subscribe\nmax_queued_messages 100000\n");
        match &tls {
            None => conf.push_str("allow_anonymous true\n"),
            Some(pki) => {
                std::fs::write(dir.path().join("acl"), ACL).expect("writing the ACL");
                conf.push_str(&format!(
                    "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\nuse_identity_as_username true\nacl_file {}\nallow_anonymous false\n",
                    pki.path("ca.pem").display(),
                    pki.path("server.pem").display(),
                    pki.path("server.key").display(),
                    dir.path().join("acl").display()
                ));
            }
        }
        std::fs::write(dir.path().join("mosquitto.conf"), conf).expect("writing mosquitto.conf");
        let mut broker = Broker { dir, port, child: None, tls };
        broker.restart();
        broker
    }

    /// (Re)starts the process on the same port with the same config.
    pub(crate) fn restart(&mut self) {
        self.kill();
        let log = std::fs::File::create(self.dir.path().join("mosquitto.log")).expect("log file");
        let child = Command::new(mosquitto())
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let log =
                std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default();
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start listening; its log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", if self.tls.is_some() { "mqtts" } else { "mqtt" }, self.port)
    }

    /// content-sync's broker arguments as `identity` (a client certificate CN).
    pub(crate) fn args(&self, identity: &str) -> Vec<String> {
        let mut v = vec!["--broker".to_string(), self.url()];
        if let Some(pki) = &self.tls {
            for (flag, file) in [
                ("--ca", "ca.pem".to_string()),
                ("--cert", format!("{identity}.pem")),
                ("--key", format!("{identity}.key")),
            ] {
                v.push(flag.into());
                v.push(pki.path(&file).display().to_string());
            }
        }
        v
    }

    /// mosquitto_pub/sub connection arguments as `identity`.
    pub(crate) fn cli_args(&self, identity: &str) -> Vec<String> {
        let mut v = vec![
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.port.to_string(),
            "-q".into(),
            "1".into(),
        ];
        if let Some(pki) = &self.tls {
            for (flag, file) in [
                ("--cafile", "ca.pem".to_string()),
                ("--cert", format!("{identity}.pem")),
                ("--key", format!("{identity}.key")),
            ] {
                v.push(flag.into());
                v.push(pki.path(&file).display().to_string());
            }
        } else {
            v.extend(["-i".into(), identity.into()]);
        }
        v
    }

    /// Publishes with mosquitto_pub as `identity`; whether the client exited cleanly.
    pub(crate) fn pub_cli(&self, identity: &str, topic: &str, msg: &str) -> bool {
        Command::new("mosquitto_pub")
            .args(self.cli_args(identity))
            .args(["-t", topic, "-m", msg])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Starts `mosquitto_sub -v` as `identity` on `filter`, printing `topic payload` lines.
    /// Returns once the broker has the subscription (its log names the client and the
    /// filter), so nothing published after it is missed.
    pub(crate) fn sub_cli(&self, identity: &str, filter: &str, extra: &[&str]) -> Child {
        static SUBSCRIBERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SUBSCRIBERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{identity}-sub-{n}");
        let mut args = self.cli_args(identity);
        if let Some(i) = args.iter().position(|a| a == "-i") {
            args.drain(i..i + 2);
        }
        let mut child = Command::new("mosquitto_sub")
            .args(args)
            .args(["-i", &id, "-v", "-t", filter])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub");
        let log = self.dir.path().join("mosquitto.log");
        let wanted = format!(": {id} ");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.lines().any(|l| l.contains(&wanted) && l.ends_with(filter)) {
                return child;
            }
            if Instant::now() >= deadline || child.try_wait().ok().flatten().is_some() {
                let _ = child.kill();
                panic!(
                    "mosquitto_sub as {identity} never subscribed to {filter}; broker log:\n{text}"
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `content-sync ARGS…` in-process.
pub(crate) fn content_sync(args: &[String]) -> anyhow::Result<()> {
    use clap::Parser as _;
    let mut argv = vec!["content-sync".to_string()];
    argv.extend(args.iter().cloned());
    content_sync::run_with(content_sync::Cli::try_parse_from(argv)?)
}

// ---------------------------------------------------------------------------------------
// Content fixtures
// ---------------------------------------------------------------------------------------

pub(crate) const CITY: &str = "430100";

pub(crate) fn root_key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

pub(crate) fn forger_key() -> SigningKey {
    SigningKey::from_bytes(&[66; 32])
}

/// A FAQ item of about 1.5 KB whose text depends on `rev`, so a new revision changes
/// its blob.
pub(crate) fn faq(n: usize, rev: u32) -> Item {
    let answer = format!("第{n}号问答（第{rev}版）：")
        + &"办理时请携带居民身份证原件及复印件，到政务服务大厅综合窗口提交申请。".repeat(14);
    Item {
        id: format!("faq-{n:05}"),
        title: format!("常见问题{n}：如何办理第{n}类事项"),
        domain: None,
        baseline: false,
        links: vec![],
        url: None,
        body: Body::Faq(Faq {
            question: format!("第{n}类事项怎么办？"), answer, published: None
        }),
    }
}

pub(crate) fn content(scope: &str, items: Vec<Item>) -> ScopeContent {
    ScopeContent {
        scope: ScopeCode::parse(scope).expect("valid scope"),
        items,
        ..ScopeContent::default()
    }
}

pub(crate) fn meta(version: u64) -> BundleMeta {
    let now = Utc::now();
    BundleMeta { version, created: now, expires: now + chrono::Duration::days(30) }
}

/// Writes a bundle signed by `key` into a fresh dir under `parent`.
pub(crate) fn bundle(
    parent: &Path,
    name: &str,
    content: &ScopeContent,
    files: &[(String, Vec<u8>)],
    version: u64,
    key: &SigningKey,
) -> PathBuf {
    let dir = parent.join(name);
    write_bundle(&dir, content, files, &meta(version), &[key]).expect("writing a bundle");
    dir
}

/// The pinned root a kiosk is installed with: the test root key alone.
pub(crate) fn root_envelope() -> Envelope {
    let root = Root::for_keys(
        1,
        Utc::now() + chrono::Duration::days(365),
        &[root_key().verifying_key()],
        1,
    );
    Envelope::sign(&root, &[&root_key()]).expect("signing the root")
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn publish_stores_blobs_and_retains_the_exact_manifest() {
    let broker = Broker::plain();
    let tmp = tempfile::tempdir().expect("temp dir");
    let items = (0..20).map(|n| faq(n, 1)).collect();
    let b = bundle(tmp.path(), "b1", &content(CITY, items), &[], 1, &root_key());
    let store = tmp.path().join("store");
    let mut args = vec![
        "publish".into(),
        b.display().to_string(),
        "--store".into(),
        store.display().to_string(),
    ];
    args.extend(broker.args("city"));
    content_sync(&args).expect("publish");

    // A subscriber arriving later still gets the manifest: it is retained.
    let out = Command::new("mosquitto_sub")
        .args(broker.cli_args("late-reader"))
        .args(["-t", "zwgk/v1/content/430100/manifest", "-C", "1", "-W", "5"])
        .output()
        .expect("mosquitto_sub");
    let manifest = std::fs::read(b.join("manifest.json")).expect("manifest");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), String::from_utf8_lossy(&manifest));
    for blob in std::fs::read_dir(b.join("blobs")).expect("blobs") {
        let name = blob.expect("entry").file_name();
        assert!(store.join("blobs").join(&name).is_file(), "{name:?} not in the store");
    }
}

#[test]
fn the_acl_keeps_a_kiosk_to_its_own_topics() {
    let broker = Broker::tls(&["city", "kiosk-a", "kiosk-b"]);
    let mut watch = broker.sub_cli("city", "zwgk/#", &[]);
    // Allowed: the kiosk's own health topic. Denied: another kiosk's, a manifest, a command.
    assert!(broker.pub_cli("kiosk-a", "zwgk/v1/dev/kiosk-a/health", "own"));
    broker.pub_cli("kiosk-a", "zwgk/v1/dev/kiosk-b/cmd", "forged-cmd");
    broker.pub_cli("kiosk-a", "zwgk/v1/content/430100/manifest", "forged-manifest");
    broker.pub_cli("kiosk-a", "zwgk/v1/dev/kiosk-b/blob", "forged-blob");
    // The city's own publish proves the watcher is listening to the end.
    assert!(broker.pub_cli("city", "zwgk/v1/dev/kiosk-b/cmd", "end"));
    let mut seen = String::new();
    let mut stdout = watch.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(&mut stdout).lines().map_while(Result::ok) {
            let end = line.ends_with(" end");
            lines.push(line);
            if end {
                break;
            }
        }
        lines
    });
    wait_until("the watcher to see the city's message", Duration::from_secs(10), || {
        reader.is_finished()
    });
    let _ = watch.kill();
    let _ = watch.wait();
    for line in reader.join().expect("reader thread") {
        seen.push_str(&line);
        seen.push('\n');
    }
    assert!(seen.contains("zwgk/v1/dev/kiosk-a/health own"), "own topic should pass: {seen}");
    assert!(!seen.contains("forged"), "the ACL let a kiosk publish outside its topics: {seen}");

    // And a client without a certificate is not let in at all.
    let status = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string(), "--cafile"])
        .arg(broker.tls.as_ref().expect("tls").path("ca.pem"))
        .args(["-t", "zwgk/v1/dev/x/health", "-m", "x"])
        .stderr(Stdio::null())
        .status()
        .expect("mosquitto_pub");
    assert!(!status.success(), "a client without a certificate connected");
    let _ = std::io::stderr().flush();
}

// ---------------------------------------------------------------------------------------
// The city's serve worker and kiosks, in-process
// ---------------------------------------------------------------------------------------

use std::sync::atomic::Ordering;
use std::sync::Arc;

use content_sync::mqtt::{BrokerArgs, ServeArgs, Served};
use kiosk::config::Config;
use kiosk::sync::{SyncHandle, SyncStatus};

impl Broker {
    pub(crate) fn broker_args(&self, identity: &str) -> BrokerArgs {
        let pki = self.tls.as_ref();
        BrokerArgs {
            broker: self.url(),
            ca: pki.map(|p| p.path("ca.pem")),
            cert: pki.map(|p| p.path(&format!("{identity}.pem"))),
            key: pki.map(|p| p.path(&format!("{identity}.key"))),
        }
    }
}

/// A `content-sync serve` worker on its own thread, stopped on drop.
pub(crate) struct Serve {
    pub(crate) served: Arc<Served>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Serve {
    pub(crate) fn start(broker: &Broker, store: &Path) -> Serve {
        std::fs::create_dir_all(store.join("blobs")).expect("store dir");
        let served = Arc::new(Served::default());
        let args = ServeArgs { broker: broker.broker_args("city"), store: store.to_path_buf() };
        let s = served.clone();
        let thread = std::thread::spawn(move || content_sync::mqtt::serve_with(args, s));
        Serve { served, thread: Some(thread) }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.served.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Publishes a bundle dir with `content-sync publish` as the city.
pub(crate) fn publish(broker: &Broker, bundle: &Path, store: &Path) {
    let mut args = vec![
        "publish".into(),
        bundle.display().to_string(),
        "--store".into(),
        store.display().to_string(),
    ];
    args.extend(broker.args("city"));
    content_sync(&args).expect("content-sync publish");
}

/// The city side of a sync test: a broker, a blob store with one `serve` answering from
/// it, and a temp dir for the bundles the test builds and publishes.
pub(crate) struct City {
    // Dropped in this order: `serve` stops before its broker goes.
    pub(crate) serve: Serve,
    pub(crate) broker: Broker,
    pub(crate) store: PathBuf,
    dir: tempfile::TempDir,
}

impl City {
    pub(crate) fn start(broker: Broker) -> City {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = dir.path().join("store");
        let serve = Serve::start(&broker, &store);
        City { serve, broker, store, dir }
    }

    /// Where the test's bundles (and other files) go.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes bundle `name` in [`City::dir`] (see [`bundle`]).
    pub(crate) fn bundle(
        &self,
        name: &str,
        content: &ScopeContent,
        files: &[(String, Vec<u8>)],
        version: u64,
        key: &SigningKey,
    ) -> PathBuf {
        bundle(self.dir(), name, content, files, version, key)
    }

    /// `content-sync publish` of a bundle into this city's store.
    pub(crate) fn publish_bundle(&self, bundle: &Path) {
        publish(&self.broker, bundle, &self.store);
    }
}

/// A kiosk's sync worker with its own data dir, trusting the test root.
pub(crate) struct Kiosk {
    pub(crate) config: Config,
    pub(crate) handle: SyncHandle,
    _data: tempfile::TempDir,
}

impl Kiosk {
    pub(crate) fn start(broker: &Broker, device: &str, scope: &str) -> Kiosk {
        Kiosk::start_with(broker, device, scope, Arc::default())
    }

    pub(crate) fn start_with(
        broker: &Broker,
        device: &str,
        scope: &str,
        telemetry: Arc<kiosk::sync::Telemetry>,
    ) -> Kiosk {
        let data = tempfile::tempdir().expect("temp dir");
        let root_file = data.path().join("city-root.json");
        std::fs::write(&root_file, serde_json::to_vec(&root_envelope()).expect("json"))
            .expect("root file");
        let mut config = Config {
            device_id: device.into(),
            scope: ScopeCode::parse(scope).expect("scope"),
            data_dir: data.path().join("data"),
            broker: broker.url(),
            trust_root: root_file,
            ..Config::default()
        };
        if let Some(pki) = &broker.tls {
            config.broker_ca = pki.path("ca.pem");
            config.broker_cert = pki.path(&format!("{device}.pem"));
            config.broker_key = pki.path(&format!("{device}.key"));
        }
        let handle = kiosk::sync::spawn_with(&config, telemetry, None);
        Kiosk { config, handle, _data: data }
    }

    pub(crate) fn status(&self) -> SyncStatus {
        self.handle.status()
    }

    pub(crate) fn version(&self, scope: &str) -> Option<u64> {
        self.status().versions.get(&ScopeCode::parse(scope).expect("scope")).copied()
    }

    pub(crate) fn wait_version(&self, scope: &str, version: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.version(scope) != Some(version) {
            assert!(
                Instant::now() < deadline,
                "kiosk never applied {scope} v{version}: {:#?}",
                self.status()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Titles of the top hits for `query` in the activated content's search index.
    pub(crate) fn search(&self, query: &str) -> Vec<String> {
        let current = kiosk::bundle::current_version(&self.config.data_dir)
            .expect("readable")
            .expect("a current version");
        let searcher = kiosk::search::Searcher::open(&current.index_dir()).expect("search index");
        let req =
            kiosk::search::SearchRequest { query: query.into(), limit: 10, ..Default::default() };
        searcher.search(&req).expect("search").hits.into_iter().map(|h| h.id).collect()
    }
}

pub(crate) fn manifest_of(bundle: &Path) -> kiosk::bundle::format::Manifest {
    let env: Envelope =
        serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).expect("manifest"))
            .expect("envelope");
    serde_json::from_str(&env.payload).expect("manifest payload")
}

pub(crate) fn blob_sizes(bundle: &Path) -> u64 {
    std::fs::read_dir(bundle.join("blobs"))
        .expect("blobs")
        .map(|e| e.expect("entry").metadata().expect("meta").len())
        .sum()
}

#[test]
fn a_published_bundle_is_applied_over_tls_and_found_by_search() {
    let city = City::start(Broker::tls(&["city", "kiosk-1"]));
    let b1 = city.bundle(
        "v1",
        &content(CITY, (0..20).map(|n| faq(n, 1)).collect()),
        &[],
        1,
        &root_key(),
    );
    city.publish_bundle(&b1);

    let kiosk = Kiosk::start(&city.broker, "kiosk-1", "430182-001-01");
    kiosk.wait_version(CITY, 1);
    assert!(kiosk.search("常见问题7").contains(&"faq-00007".to_string()));

    let mut items: Vec<Item> = (0..20).map(|n| faq(n, 1)).collect();
    let mut new = faq(20, 1);
    new.title = "老年人优待证办理指南".into();
    items.push(new);
    let b2 = city.bundle("v2", &content(CITY, items), &[], 2, &root_key());
    city.publish_bundle(&b2);
    kiosk.wait_version(CITY, 2);
    assert_eq!(kiosk.search("优待证").first().map(String::as_str), Some("faq-00020"));
    assert!(kiosk.status().connected);
}

#[test]
fn a_one_percent_change_fetches_only_the_changed_blobs() {
    let city = City::start(Broker::plain());
    let b1 = city.bundle(
        "v1",
        &content(CITY, (0..200).map(|n| faq(n, 1)).collect()),
        &[],
        1,
        &root_key(),
    );
    city.publish_bundle(&b1);
    let kiosk = Kiosk::start(&city.broker, "kiosk-delta", "430182");
    kiosk.wait_version(CITY, 1);
    let full = kiosk.status();
    assert_eq!(full.blob_bytes, blob_sizes(&b1), "the first sync fetches every blob once");

    // Two of 200 items change.
    let items = (0..200).map(|n| faq(n, if n == 17 || n == 150 { 2 } else { 1 })).collect();
    let b2 = city.bundle("v2", &content(CITY, items), &[], 2, &root_key());
    city.publish_bundle(&b2);
    kiosk.wait_version(CITY, 2);
    let old = manifest_of(&b1);
    let new_blobs: Vec<_> = manifest_of(&b2)
        .entries
        .into_iter()
        .filter(|e| old.entries.iter().all(|o| o.sha256 != e.sha256))
        .collect();
    assert_eq!(new_blobs.len(), 2);
    let changed: u64 = new_blobs.iter().map(|e| e.size).sum();
    let after = kiosk.status();
    assert_eq!(
        after.blob_bytes - full.blob_bytes,
        changed,
        "only the two changed items' blobs are fetched"
    );
    let manifest = std::fs::metadata(b2.join("manifest.json")).expect("manifest").len();
    let moved = after.bytes_received - full.bytes_received;
    // The manifest travels as a delta: the kiosk receives about the changed blobs, not
    // the whole 200-entry manifest again (DESIGN.md budget: ≤ 2% of the full bundle).
    assert!(moved * 50 <= blob_sizes(&b1) + manifest, "a 1% change moved {moved} bytes");
    eprintln!(
        "sync: full bundle {} B (blobs) + {} B (manifest); 1% change moved {} B received by the kiosk ({:.2}%), server sent {} B of chunks in all",
        blob_sizes(&b1),
        manifest,
        moved,
        100.0 * moved as f64 / (blob_sizes(&b1) + manifest) as f64,
        city.serve.served.bytes.load(Ordering::Relaxed)
    );
}

#[test]
fn a_transfer_cut_by_a_broker_restart_resumes_where_it_stopped() {
    let mut city = City::start(Broker::plain());
    // A 6 MB gazette PDF under a 2 MB/s cap from the bundle's own device settings, so the
    // transfer is still running when the broker goes down.
    let pdf: Vec<u8> =
        (0..6_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let mut c = content(CITY, vec![faq(1, 1)]);
    c.device = Some(kiosk::content::DeviceSettings { bandwidth_kbps: 2000, ..Default::default() });
    let b1 = city.bundle("v1", &c, &[("gazette-2026-01.pdf".into(), pdf)], 1, &root_key());
    city.publish_bundle(&b1);
    let kiosk = Kiosk::start(&city.broker, "kiosk-resume", "430182");
    wait_until("a megabyte to arrive", Duration::from_secs(30), || {
        kiosk.status().blob_bytes > 1_000_000
    });

    city.broker.kill();
    wait_until("the kiosk to notice", Duration::from_secs(30), || !kiosk.status().connected);
    let before_restart = kiosk.status().blob_bytes;
    assert!(before_restart < blob_sizes(&b1), "the transfer finished before the broker was killed");
    city.broker.restart();

    kiosk.wait_version(CITY, 1);
    // Every byte was written exactly once: the transfer went on from its .partial file
    // instead of starting the blob over.
    assert_eq!(kiosk.status().blob_bytes, blob_sizes(&b1));
}

/// Reads lines from a `mosquitto_sub -v` child until one satisfies `want` or the deadline.
pub(crate) fn read_until(
    child: &mut Child,
    timeout: Duration,
    want: impl Fn(&str) -> bool + Send + 'static,
) -> Option<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if want(&line) {
                let _ = tx.send(line);
                return;
            }
        }
    });
    let found = rx.recv_timeout(timeout).ok();
    let _ = child.kill();
    let _ = child.wait();
    found
}

#[test]
fn a_forged_manifest_is_refused_reported_and_the_old_content_kept() {
    let city = City::start(Broker::plain());
    let b1 =
        city.bundle("v1", &content(CITY, (0..5).map(|n| faq(n, 1)).collect()), &[], 1, &root_key());
    city.publish_bundle(&b1);
    let kiosk = Kiosk::start(&city.broker, "kiosk-forged", "430182");
    kiosk.wait_version(CITY, 1);

    let mut events = city.broker.sub_cli("watcher", "zwgk/v1/dev/kiosk-forged/event", &[]);
    let forged = city.bundle("forged", &content(CITY, vec![faq(1, 9)]), &[], 9, &forger_key());
    city.publish_bundle(&forged);
    let event = read_until(&mut events, Duration::from_secs(20), |l| l.contains("refused"))
        .expect("a refused event");
    assert!(event.contains("\"version\":9"), "{event}");
    assert_eq!(kiosk.version(CITY), Some(1));
    assert!(kiosk.status().last_error.is_some_and(|e| e.contains("manifest")));
    assert!(
        kiosk.search("常见问题1").contains(&"faq-00001".to_string()),
        "the old content is still served"
    );
}

/// A stand-in for the kiosk UI on its own thread: answers every command the worker hands
/// it (a screenshot with `png`, anything else as done) and passes the commands on.
pub(crate) fn ui_stand_in(
    kiosk: &Kiosk,
    png: Vec<u8>,
) -> std::sync::mpsc::Receiver<kiosk::sync::UiCommand> {
    use kiosk::sync::{protocol::Action, UiOutcome, UiReply};
    let commands = kiosk.handle.take_ui_commands().expect("the UI command receiver");
    let replies = kiosk.handle.replies();
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Ends when the worker stops and drops its sender.
        for cmd in commands.iter() {
            let outcome = match &cmd.action {
                Action::Screenshot => UiOutcome::Screenshot(png.clone()),
                other => UiOutcome::Done(format!("{other:?} carried out")),
            };
            replies.send(UiReply { id: cmd.id.clone(), outcome });
            let _ = seen_tx.send(cmd);
        }
    });
    seen_rx
}

/// `content-sync command TARGET ACTION… --sign-key KEY` as the city.
fn send_command(
    broker: &Broker,
    target: &str,
    key: &Path,
    action: &[&str],
    extra: &[&str],
) -> anyhow::Result<()> {
    let mut args = vec!["command".to_string(), target.into()];
    args.extend(action.iter().map(|a| a.to_string()));
    args.extend(["--sign-key".into(), key.display().to_string(), "--timeout".into(), "20".into()]);
    args.extend(extra.iter().map(|a| a.to_string()));
    args.extend(broker.args("city"));
    content_sync(&args)
}

fn key_files(dir: &Path) -> (PathBuf, PathBuf) {
    let key = dir.join("root.key");
    std::fs::write(&key, hex::encode(root_key().to_bytes())).expect("key file");
    let forged = dir.join("forged.key");
    std::fs::write(&forged, hex::encode(forger_key().to_bytes())).expect("key file");
    (key, forged)
}

#[test]
fn commands_are_carried_out_only_when_signed_by_the_root() {
    let broker = Broker::tls(&["city", "kiosk-cmd"]);
    let kiosk = Kiosk::start(&broker, "kiosk-cmd", "430182-001");
    let ui = ui_stand_in(&kiosk, Vec::new());
    wait_until("the kiosk to connect", Duration::from_secs(20), || kiosk.status().connected);
    let tmp = tempfile::tempdir().expect("temp dir");
    let (key, forged) = key_files(tmp.path());

    send_command(
        &broker,
        "kiosk-cmd",
        &key,
        &["announce", "今日下午三点起暂停办理不动产登记"],
        &[],
    )
    .expect("a signed command is acked ok once the UI has carried it out");
    let got = ui.recv_timeout(Duration::from_secs(5)).expect("the UI receives the announcement");
    assert_eq!(
        got.action,
        kiosk::sync::protocol::Action::Announce {
            text: "今日下午三点起暂停办理不动产登记".into(),
            seconds: 60
        }
    );

    let err = send_command(&broker, "kiosk-cmd", &forged, &["restart"], &[])
        .expect_err("a forged command must fail");
    assert!(format!("{err:#}").contains("did not carry out"), "{err:#}");
    assert!(ui.try_recv().is_err(), "a forged command reached the UI");

    // A scope command reaches every kiosk under the scope.
    send_command(&broker, "430182", &key, &["resync"], &[]).expect("a scope-wide resync is acked");
}

#[test]
fn a_command_the_ui_does_not_answer_is_acked_as_failed() {
    let broker = Broker::tls(&["city", "kiosk-mute"]);
    let kiosk = Kiosk::start(&broker, "kiosk-mute", "430182");
    // The UI takes the commands and never answers.
    let _ui = kiosk.handle.take_ui_commands().expect("the UI command receiver");
    wait_until("the kiosk to connect", Duration::from_secs(20), || kiosk.status().connected);
    let tmp = tempfile::tempdir().expect("temp dir");
    let (key, _) = key_files(tmp.path());
    let mut acks = broker.sub_cli("city", "zwgk/v1/dev/kiosk-mute/cmd/ack", &[]);
    let err = send_command(&broker, "kiosk-mute", &key, &["announce", "停电通知"], &[])
        .expect_err("no answer from the UI is no success");
    assert!(format!("{err:#}").contains("did not carry out"), "{err:#}");
    let ack = read_until(&mut acks, Duration::from_secs(20), |l| l.contains("\"ok\":false"))
        .expect("a failed ack");
    assert!(ack.contains("did not answer within"), "{ack}");
}

/// The kiosk's home screen as the headless renderer draws it (1920×1080).
#[cfg(feature = "ui")]
fn rendered_screen(dir: &Path) -> Vec<u8> {
    let out = dir.join("screen.png");
    kiosk::ui::screenshot::render(
        &Config::for_development(),
        crate::ui::fixture_content(dir),
        "home",
        false,
        false,
        &out,
    )
    .expect("rendering the home screen");
    std::fs::read(&out).expect("the rendered PNG")
}

#[cfg(feature = "ui")]
fn png_size(png: &[u8]) -> (u32, u32) {
    let mut reader =
        png::Decoder::new(std::io::Cursor::new(png)).read_info().expect("a PNG header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a sane size")];
    let frame = reader.next_frame(&mut pixels).expect("the PNG's pixels decode");
    (frame.width, frame.height)
}

#[cfg(feature = "ui")]
#[test]
fn a_screenshot_command_brings_the_kiosk_screen_to_the_city() {
    let broker = Broker::tls(&["city", "kiosk-shot"]);
    let tmp = tempfile::tempdir().expect("temp dir");
    let screen = rendered_screen(tmp.path());
    assert!(screen.len() > kiosk::sync::protocol::MAX_CHUNK, "the test wants several chunks");
    let kiosk = Kiosk::start(&broker, "kiosk-shot", "430182-001");
    let _ui = ui_stand_in(&kiosk, screen.clone());
    wait_until("the kiosk to connect", Duration::from_secs(20), || kiosk.status().connected);
    let (key, _) = key_files(tmp.path());
    let mut acks = broker.sub_cli("city", "zwgk/v1/dev/kiosk-shot/cmd/ack", &[]);

    let out = tmp.path().join("from-kiosk.png");
    let out_arg = out.display().to_string();
    send_command(&broker, "kiosk-shot", &key, &["screenshot"], &["--out", &out_arg])
        .expect("the screenshot command succeeds");
    let got = std::fs::read(&out).expect("the city wrote the PNG");
    assert_eq!(png_size(&got), (1920, 1080), "the kiosk window's size");
    let sha = kiosk::bundle::format::sha256_hex(&got);
    let ack = read_until(&mut acks, Duration::from_secs(10), |l| l.contains("screenshot"))
        .expect("the screenshot's ack");
    assert!(ack.contains(&format!("screenshot {sha} {} B", got.len())), "{ack}");
    assert!(ack.contains("\"ok\":true"), "{ack}");
    assert_eq!(got, screen, "the bytes the UI handed over, unchanged");
}

/// A screenshot command to a scope brings back every kiosk's screen in it, each checked
/// against the hash in its ack, and nothing from a kiosk outside the scope.
#[cfg(feature = "ui")]
#[test]
fn a_screenshot_command_to_a_scope_brings_every_kiosk_screen_in_it() {
    let broker = Broker::tls(&["city", "kiosk-hall-a", "kiosk-hall-b", "kiosk-elsewhere"]);
    let tmp = tempfile::tempdir().expect("temp dir");
    let screen = rendered_screen(tmp.path());
    let small = content_sync::fleet::sim::test_png("kiosk-hall-b");
    let a = Kiosk::start(&broker, "kiosk-hall-a", "430182-001-01");
    let b = Kiosk::start(&broker, "kiosk-hall-b", "430182-001-01");
    let other = Kiosk::start(&broker, "kiosk-elsewhere", "430182-002");
    let _ui_a = ui_stand_in(&a, screen.clone());
    let _ui_b = ui_stand_in(&b, small.clone());
    let other_ui = ui_stand_in(&other, small.clone());
    for k in [&a, &b, &other] {
        wait_until("the kiosks to connect", Duration::from_secs(20), || k.status().connected);
    }
    let (key, _) = key_files(tmp.path());
    let out = tmp.path().join("hall");
    let mut args: Vec<String> = ["command", "430182-001", "screenshot", "--sign-key"]
        .into_iter()
        .map(String::from)
        .collect();
    args.extend([key.display().to_string(), "--timeout".into(), "15".into()]);
    args.extend(["--out".into(), out.display().to_string()]);
    args.extend(broker.args("city"));
    content_sync(&args).expect("the scope's screenshots arrive");
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .expect("the folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["kiosk-hall-a.png", "kiosk-hall-b.png"]);
    assert_eq!(std::fs::read(out.join("kiosk-hall-a.png")).expect("a"), screen);
    assert_eq!(std::fs::read(out.join("kiosk-hall-b.png")).expect("b"), small);
    assert!(other_ui.try_recv().is_err(), "a kiosk outside the scope was not asked");
}

/// The UI half: the real window on Slint's headless platform answers a `Screenshot`
/// command with a PNG of its own size, and refuses while a resident fills in a form.
#[cfg(feature = "ui")]
#[test]
fn the_kiosk_window_answers_a_screenshot_command_with_a_png_of_itself() {
    use kiosk::sync::{protocol::Action, UiCommand, UiOutcome};
    use slint::ComponentHandle as _;
    let tmp = tempfile::tempdir().expect("temp dir");
    kiosk::ui::headless::init().expect("headless platform");
    let ui = kiosk::ui::init(
        &Config::for_development(),
        crate::ui::fixture_content(tmp.path()),
        kiosk::ui::Delivery::Queue,
    )
    .expect("window");
    kiosk::ui::headless::set_size(ui.window.window(), 1280, 800).expect("size");
    ui.settle();
    let (tx, rx) = std::sync::mpsc::channel();
    let (reply_tx, replies) = std::sync::mpsc::channel();
    ui.receive_commands(rx);
    ui.answer_commands_to(reply_tx);
    tx.send(UiCommand { id: "shot-1".into(), action: Action::Screenshot }).expect("send");
    ui.sync_tick();
    let reply = replies.try_recv().expect("the UI answered within its tick");
    assert_eq!(reply.id, "shot-1");
    let UiOutcome::Screenshot(png) = reply.outcome else {
        panic!("not a screenshot: {:?}", reply.outcome);
    };
    assert_eq!(png_size(&png), (1280, 800));

    // A resident filling in a request form: nothing of it leaves the kiosk.
    ui.open(kiosk::ui::session::Page::Form(kiosk::ui::session::FormKind::Request));
    ui.settle();
    tx.send(UiCommand { id: "shot-2".into(), action: Action::Screenshot }).expect("send");
    ui.sync_tick();
    let reply = replies.try_recv().expect("the UI answered within its tick");
    assert!(
        matches!(&reply.outcome, UiOutcome::Failed(why) if why.contains("form")),
        "{:?}",
        reply.outcome
    );
}

#[test]
fn set_setting_changes_the_health_rate_at_once_and_survives_restart_and_update() {
    let city = City::start(Broker::tls(&["city", "kiosk-set"]));
    let (key, _) = key_files(city.dir());
    let mut kiosk = Kiosk::start(&city.broker, "kiosk-set", "430182");
    let ui = ui_stand_in(&kiosk, Vec::new());
    wait_until("the kiosk to connect", Duration::from_secs(20), || kiosk.status().connected);
    assert_eq!(kiosk.status().health_interval_seconds, 60, "the default");
    let mut acks = city.broker.sub_cli("city", "zwgk/v1/dev/kiosk-set/cmd/ack", &[]);
    let health = city.broker.sub_cli("city", "zwgk/v1/dev/kiosk-set/health", &[]);

    // Refused with a reason: an unknown key, a value out of range.
    let err = send_command(&city.broker, "kiosk-set", &key, &["set-setting", "volume", "3"], &[])
        .expect_err("an unknown setting");
    assert!(format!("{err:#}").contains("did not carry out"), "{err:#}");
    let ack = read_until(&mut acks, Duration::from_secs(10), |l| l.contains("\"ok\":false"))
        .expect("a refusal");
    assert!(ack.contains("unknown setting") && ack.contains("volume"), "{ack}");
    send_command(&city.broker, "kiosk-set", &key, &["set-setting", "brightness", "150"], &[])
        .expect_err("brightness above 100 %");

    send_command(
        &city.broker,
        "kiosk-set",
        &key,
        &["set-setting", "health_interval_seconds", "1"],
        &[],
    )
    .expect("a valid setting is applied");
    assert_eq!(kiosk.status().health_interval_seconds, 1);
    let saved = std::fs::read_to_string(kiosk.config.data_dir.join("settings.local.json"))
        .expect("the override is saved");
    assert!(saved.contains("\"health_interval_seconds\": 1"), "{saved}");
    // At the old rate (60 s) the third report would take two minutes.
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    let mut health = health;
    read_until(&mut health, Duration::from_secs(30), move |_| {
        counter.fetch_add(1, Ordering::Relaxed) + 1 >= 3
    })
    .expect("health reports at the new rate");

    // A content update with its own settings keeps the device's override.
    let mut c = content(CITY, vec![faq(1, 1)]);
    c.device =
        Some(kiosk::content::DeviceSettings { health_interval_seconds: 45, ..Default::default() });
    publish(&city.broker, &city.bundle("v1", &c, &[], 1, &root_key()), &city.store);
    kiosk.wait_version(CITY, 1);
    assert_eq!(kiosk.status().health_interval_seconds, 1, "the override outlives the update");

    // And a restart.
    kiosk.handle.stop();
    // The stand-in's channel closes when the stopped worker drops its end.
    wait_until("the worker to stop", Duration::from_secs(10), || {
        matches!(ui.try_recv(), Err(std::sync::mpsc::TryRecvError::Disconnected))
    });
    kiosk.handle = kiosk::sync::spawn_with(&kiosk.config, Arc::default(), None);
    wait_until("the restarted kiosk to connect", Duration::from_secs(20), || {
        kiosk.status().connected
    });
    assert_eq!(kiosk.status().health_interval_seconds, 1, "the override outlives a restart");
}

#[test]
fn health_reports_carry_versions_and_touch_counts() {
    let city = City::start(Broker::plain());
    let mut c = content(CITY, vec![faq(1, 1)]);
    c.device =
        Some(kiosk::content::DeviceSettings { health_interval_seconds: 1, ..Default::default() });
    let b1 = city.bundle("v1", &c, &[], 1, &root_key());
    city.publish_bundle(&b1);

    let mut watch = city.broker.sub_cli("watcher", "zwgk/v1/dev/kiosk-health/health", &[]);
    let telemetry: Arc<kiosk::sync::Telemetry> = Arc::default();
    let kiosk = Kiosk::start_with(&city.broker, "kiosk-health", "430182", telemetry.clone());
    kiosk.wait_version(CITY, 1);
    for _ in 0..3 {
        telemetry.touch();
    }
    telemetry.set_frame_checksum("9f2c".into());
    let line = read_until(&mut watch, Duration::from_secs(20), |l| l.contains("\"touches\":3"))
        .expect("a report with the touches");
    let json = line.split_once(' ').map(|(_, j)| j).expect("topic and payload");
    let report: kiosk::sync::protocol::Health =
        serde_json::from_str(json).expect("a health report");
    assert_eq!(report.content.first().map(|v| v.version), Some(1));
    assert_eq!(report.frame_checksum.as_deref(), Some("9f2c"));
    assert!(report.mem_total_kb > 0 && report.disk_total_bytes > 0 && report.connected);
    // The worker times the keep-alive ping (every 30 s) for the network part of health.
    wait_until("a keep-alive round trip", Duration::from_secs(90), || {
        kiosk.status().broker_rtt_ms.is_some()
    });
}

#[test]
fn a_root_rotation_travels_over_mqtt_and_a_forged_one_is_refused() {
    use kiosk::bundle::{rotation_path, write_root};
    let city = City::start(Broker::tls(&["city", "kiosk-rot"]));
    let b1 = city.bundle("v1", &content(CITY, vec![faq(1, 1)]), &[], 1, &root_key());
    city.publish_bundle(&b1);
    let kiosk = Kiosk::start(&city.broker, "kiosk-rot", "430182-001-01");
    kiosk.wait_version(CITY, 1);
    let pinned_version = || {
        let bytes = std::fs::read(kiosk.config.data_dir.join("trust/root.json")).expect("pinned");
        let env: Envelope = serde_json::from_slice(&bytes).expect("root envelope");
        serde_json::from_str::<Root>(&env.payload).expect("root").version
    };
    assert_eq!(pinned_version(), 1);

    // Root 2 hands trust to a new key. A forger's rotation is signed by the new key alone,
    // not by the key the kiosk trusts: refused, and the manifest it signs with it.
    let new_key = SigningKey::from_bytes(&[43; 32]);
    let root2 =
        Root::for_keys(2, Utc::now() + chrono::Duration::days(365), &[new_key.verifying_key()], 1);
    let forged = city.bundle("forged", &content(CITY, vec![faq(1, 7)]), &[], 2, &new_key);
    write_root(&rotation_path(&forged, 2), &root2, &[&new_key]).expect("forged rotation");
    city.publish_bundle(&forged);
    wait_until("the forged rotation to be refused", Duration::from_secs(30), || {
        kiosk.status().recent_errors.iter().any(|e| e.contains("root rotation 2 refused"))
    });
    assert_eq!(kiosk.version(CITY), Some(1));
    assert_eq!(pinned_version(), 1);

    // The genuine rotation, signed by the old key and the new one, then content signed by
    // the new key only: the kiosk moves to root 2, applies the content and pins the root.
    let genuine = city.bundle("v2", &content(CITY, vec![faq(1, 2)]), &[], 2, &new_key);
    write_root(&rotation_path(&genuine, 2), &root2, &[&root_key(), &new_key]).expect("rotation");
    city.publish_bundle(&genuine);
    kiosk.wait_version(CITY, 2);
    assert_eq!(pinned_version(), 2);
}
