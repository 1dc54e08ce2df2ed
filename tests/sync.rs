//! MQTT sync against a real Mosquitto: a broker per test on a free loopback port, with TLS
//! certificates (CA, server, city and kiosk clients) and a pattern ACL generated at test
//! time by the `openssl` CLI. The city side runs as `content_sync` library calls, the
//! kiosk side as `kiosk::sync` engines; `mosquitto_pub`/`mosquitto_sub` play a third party.

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use ed25519_dalek::SigningKey;
use kiosk::bundle::format::{Envelope, Root};
use kiosk::bundle::{write_bundle, BundleMeta};
use kiosk::content::{Body, Faq, Item, ScopeCode, ScopeContent};

// ---------------------------------------------------------------------------------------
// The broker
// ---------------------------------------------------------------------------------------

/// The Mosquitto binary, installed with apt when missing (CI and fresh machines).
fn mosquitto() -> PathBuf {
    let find = || {
        ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .filter(|_| which("mosquitto_sub") && which("mosquitto_pub"))
    };
    if let Some(p) = find() {
        return p;
    }
    let _ = Command::new("apt-get")
        .args(["install", "-y", "-qq", "mosquitto", "mosquitto-clients"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    find().unwrap_or_else(|| {
        panic!("Mosquitto is not installed and could not be installed: run `apt-get install -y mosquitto mosquitto-clients`")
    })
}

fn which(bin: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).exists()))
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Certificates made by the `openssl` CLI: a CA, the broker's server certificate for
/// 127.0.0.1, and client certificates whose CN is the MQTT identity.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path, clients: &[&str]) -> Pki {
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

    fn leaf(&self, name: &str, ext: &str) {
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

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("the openssl CLI");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

/// A Mosquitto process on a free loopback port, killed on drop.
struct Broker {
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
    fn plain() -> Broker {
        Broker::start(None)
    }

    /// A TLS broker requiring client certificates (CN = username) with the ACL.
    fn tls(clients: &[&str]) -> Broker {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = Pki::new(dir.path(), clients);
        Broker::start_in(dir, Some(pki))
    }

    fn start(tls: Option<Pki>) -> Broker {
        Broker::start_in(tempfile::tempdir().expect("temp dir"), tls)
    }

    fn start_in(dir: tempfile::TempDir, tls: Option<Pki>) -> Broker {
        let port = free_port();
        // Run as whoever runs the tests: started as root, Mosquitto would otherwise drop to
        // its own user, which cannot read the temp dir.
        let me = Command::new("id")
            .arg("-un")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        let user = me.ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "root".into());
        let mut conf = format!("listener {port} 127.0.0.1\nuser {user}\npersistence false\nlog_dest stderr\nmax_queued_messages 100000\n");
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
    fn restart(&mut self) {
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

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", if self.tls.is_some() { "mqtts" } else { "mqtt" }, self.port)
    }

    /// content-sync's broker arguments as `identity` (a client certificate CN).
    fn args(&self, identity: &str) -> Vec<String> {
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
    fn cli_args(&self, identity: &str) -> Vec<String> {
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
    fn pub_cli(&self, identity: &str, topic: &str, msg: &str) -> bool {
        Command::new("mosquitto_pub")
            .args(self.cli_args(identity))
            .args(["-t", topic, "-m", msg])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Starts `mosquitto_sub -v` as `identity` on `filter`, printing `topic payload` lines.
    fn sub_cli(&self, identity: &str, filter: &str, extra: &[&str]) -> Child {
        Command::new("mosquitto_sub")
            .args(self.cli_args(identity))
            .args(["-v", "-t", filter])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub")
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `content-sync ARGS…` in-process.
fn content_sync(args: &[String]) -> anyhow::Result<()> {
    use clap::Parser as _;
    let mut argv = vec!["content-sync".to_string()];
    argv.extend(args.iter().cloned());
    content_sync::run_with(content_sync::Cli::try_parse_from(argv)?)
}

// ---------------------------------------------------------------------------------------
// Content fixtures
// ---------------------------------------------------------------------------------------

const CITY: &str = "430100";

fn root_key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

fn forger_key() -> SigningKey {
    SigningKey::from_bytes(&[66; 32])
}

/// A FAQ item of about 1.5 KB whose text depends on `rev`, so a new revision changes
/// its blob.
fn faq(n: usize, rev: u32) -> Item {
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

fn content(scope: &str, items: Vec<Item>) -> ScopeContent {
    ScopeContent {
        scope: ScopeCode::parse(scope).expect("valid scope"),
        items,
        ..ScopeContent::default()
    }
}

fn meta(version: u64) -> BundleMeta {
    let now = Utc::now();
    BundleMeta { version, created: now, expires: now + chrono::Duration::days(30) }
}

/// Writes a bundle signed by `key` into a fresh dir under `parent`.
fn bundle(
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
fn root_envelope() -> Envelope {
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
    std::thread::sleep(Duration::from_millis(500));
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
    fn broker_args(&self, identity: &str) -> BrokerArgs {
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
struct Serve {
    served: Arc<Served>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Serve {
    fn start(broker: &Broker, store: &Path) -> Serve {
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
fn publish(broker: &Broker, bundle: &Path, store: &Path) {
    let mut args = vec![
        "publish".into(),
        bundle.display().to_string(),
        "--store".into(),
        store.display().to_string(),
    ];
    args.extend(broker.args("city"));
    content_sync(&args).expect("content-sync publish");
}

/// A kiosk's sync worker with its own data dir, trusting the test root.
struct Kiosk {
    config: Config,
    handle: SyncHandle,
    _data: tempfile::TempDir,
}

impl Kiosk {
    fn start(broker: &Broker, device: &str, scope: &str) -> Kiosk {
        Kiosk::start_with(broker, device, scope, Arc::default())
    }

    fn start_with(
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
        let handle = kiosk::sync::spawn_with(&config, telemetry);
        Kiosk { config, handle, _data: data }
    }

    fn status(&self) -> SyncStatus {
        self.handle.status()
    }

    fn version(&self, scope: &str) -> Option<u64> {
        self.status().versions.get(&ScopeCode::parse(scope).expect("scope")).copied()
    }

    fn wait_version(&self, scope: &str, version: u64) {
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
    fn search(&self, query: &str) -> Vec<String> {
        let current = kiosk::bundle::current_version(&self.config.data_dir)
            .expect("readable")
            .expect("a current version");
        let searcher = kiosk::search::Searcher::open(&current.index_dir()).expect("search index");
        let req =
            kiosk::search::SearchRequest { query: query.into(), limit: 10, ..Default::default() };
        searcher.search(&req).expect("search").hits.into_iter().map(|h| h.id).collect()
    }
}

fn blob_sizes(bundle: &Path) -> u64 {
    std::fs::read_dir(bundle.join("blobs"))
        .expect("blobs")
        .map(|e| e.expect("entry").metadata().expect("meta").len())
        .sum()
}

#[test]
fn a_published_bundle_is_applied_over_tls_and_found_by_search() {
    let broker = Broker::tls(&["city", "kiosk-1"]);
    let tmp = tempfile::tempdir().expect("temp dir");
    let store = tmp.path().join("store");
    let _serve = Serve::start(&broker, &store);
    let b1 = bundle(
        tmp.path(),
        "v1",
        &content(CITY, (0..20).map(|n| faq(n, 1)).collect()),
        &[],
        1,
        &root_key(),
    );
    publish(&broker, &b1, &store);

    let kiosk = Kiosk::start(&broker, "kiosk-1", "430182-001-01");
    kiosk.wait_version(CITY, 1);
    assert!(kiosk.search("常见问题7").contains(&"faq-00007".to_string()));

    let mut items: Vec<Item> = (0..20).map(|n| faq(n, 1)).collect();
    let mut new = faq(20, 1);
    new.title = "老年人优待证办理指南".into();
    items.push(new);
    let b2 = bundle(tmp.path(), "v2", &content(CITY, items), &[], 2, &root_key());
    publish(&broker, &b2, &store);
    kiosk.wait_version(CITY, 2);
    assert_eq!(kiosk.search("优待证").first().map(String::as_str), Some("faq-00020"));
    assert!(kiosk.status().connected);
}
