//! The path of a resident's submission from the kiosk's outbox to the city inbox, against a
//! real Mosquitto: the kiosk side is `kiosk::sync::submit` (in-process, or as a child
//! process of this test binary that is SIGKILLed), the city side `content-sync inbox`
//! (in-process threads, stopped through their stats). Planted personal data is checked
//! to reach the city's database and no file the kiosk side wrote.

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use content_sync::inbox::{InboxArgs, InboxDb, InboxStats};
use kiosk::content::Calendar;
use kiosk::requests::{
    submit, CitySecret, DisclosureRequest, Intake, Outbox, Personal, Submission,
};
use kiosk::sync::client::Broker as BrokerAddr;
use kiosk::sync::submit::{PumpConfig, PumpHandle};

use crate::util::{free_port, mosquitto, wait_until};

// ---------------------------------------------------------------------------------------
// The broker
// ---------------------------------------------------------------------------------------

/// A plain, anonymous Mosquitto on a fixed free port, not started until asked, and
/// without persistence, so a restart loses every queued message and session.
struct Broker {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Broker {
    fn configured() -> Broker {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let user = Command::new("id")
            .arg("-un")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "root".into());
        let conf = format!(
            "listener {port} 127.0.0.1\nuser {user}\npersistence false\nlog_dest stderr\nallow_anonymous true\nmax_queued_messages 100000\nmax_inflight_messages 100\n"
        );
        std::fs::write(dir.path().join("mosquitto.conf"), conf).expect("writing mosquitto.conf");
        Broker { dir, port, child: None }
    }

    fn start(&mut self) {
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
        wait_until("mosquitto to listen", Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------------------
// Submissions with planted personal data
// ---------------------------------------------------------------------------------------

const DEVICE: &str = "nx-k001";
const PLANTED_NAME: &str = "欧阳明哲";
const PLANTED_ID_17: &str = "43010419860301123";
const PLANTED_PHONE: &str = "13975112345";
const PLANTED_EMAIL: &str = "ouyang.mingzhe@example.com";
const PLANTED_ADDRESS: &str = "宁乡市玉潭街道新康路88号";

fn planted_id() -> String {
    let check = kiosk::requests::check::resident_id_check_char(PLANTED_ID_17).expect("17 digits");
    format!("{PLANTED_ID_17}{check}")
}

fn planted() -> Vec<String> {
    vec![
        PLANTED_NAME.into(),
        planted_id(),
        PLANTED_PHONE.into(),
        PLANTED_EMAIL.into(),
        PLANTED_ADDRESS.into(),
    ]
}

fn request(i: usize) -> Personal {
    Personal::Request(DisclosureRequest {
        name: PLANTED_NAME.into(),
        id_number: planted_id(),
        phone: PLANTED_PHONE.into(),
        email: PLANTED_EMAIL.into(),
        address: PLANTED_ADDRESS.into(),
        info_name: format!("玉潭街道2024年第{i}批低保名单"),
        consent: true,
        ..DisclosureRequest::default()
    })
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).expect("test date")
}

/// 2024 with the State Council's National Day arrangement (国办发明电〔2023〕7号).
fn calendar() -> Calendar {
    Calendar {
        years: vec![2024],
        holidays: d(2024, 10, 1).iter_days().take(7).collect(),
        workdays: vec![d(2024, 9, 29), d(2024, 10, 12)],
    }
}

fn morning() -> DateTime<Utc> {
    Utc.from_utc_datetime(&d(2024, 9, 20).and_hms_opt(2, 0, 0).expect("time"))
}

/// Submits `n` requests through the kiosk's real `submit` into the outbox at `path`;
/// returns their uuids.
fn enqueue(path: &Path, city: &CitySecret, n: usize) -> BTreeSet<String> {
    let key = city.public();
    let cal = calendar();
    let intake = Intake { device: DEVICE, station: "430182K001", city_key: &key, calendar: &cal };
    let mut outbox = Outbox::open(path).expect("outbox");
    (0..n)
        .map(|i| submit(&mut outbox, &intake, &request(i), morning()).expect("submit").uuid)
        .collect()
}

fn waiting(path: &Path) -> u64 {
    Outbox::open(path).and_then(|o| o.waiting()).expect("outbox count")
}

/// Every byte of every file under `dir`, searched for each planted string.
fn assert_no_planted_data(dir: &Path) {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    assert!(!files.is_empty(), "nothing to scan in {}", dir.display());
    for f in &files {
        let bytes = std::fs::read(f).expect("read file");
        for secret in planted() {
            let needle = secret.as_bytes();
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds the planted “{secret}” in plain text",
                f.display()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// The two sides
// ---------------------------------------------------------------------------------------

fn pump_config(broker: &Broker, outbox: &Path) -> PumpConfig {
    PumpConfig {
        device: DEVICE.into(),
        broker: BrokerAddr { url: broker.url(), ..BrokerAddr::default() },
        outbox: outbox.to_path_buf(),
        answer_timeout: Duration::from_secs(2),
        max_in_flight: 32,
        tick: Duration::from_millis(100),
    }
}

fn pump(broker: &Broker, outbox: &Path) -> PumpHandle {
    kiosk::sync::submit::spawn(pump_config(broker, outbox)).expect("outbox pump")
}

/// A `content-sync inbox` worker on its own thread, stopped on drop.
struct Inbox {
    stats: Arc<InboxStats>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Inbox {
    fn start(broker: &Broker, key: &Path, db: &Path, worker: &str) -> Inbox {
        let stats = Arc::new(InboxStats::default());
        let args = InboxArgs {
            broker: Some(broker.url()),
            key: Some(key.to_path_buf()),
            db: db.to_path_buf(),
            worker: worker.into(),
            ..InboxArgs::default()
        };
        let s = stats.clone();
        let thread = std::thread::spawn(move || content_sync::inbox::inbox_with(args, s));
        Inbox { stats, thread: Some(thread) }
    }

    /// Waits until the broker has granted the inbox's subscription, so a submission
    /// published from now on reaches it (the broker keeps nothing for absent subscribers).
    fn wait_subscribed(&self) {
        wait_until("the inbox's subscription", Duration::from_secs(30), || self.stats.subscribed());
    }
}

/// A `mosquitto_sub -d` on `topic` for `count` messages: its debug lines tell when the
/// broker granted the subscription; the messages themselves are collected.
struct Listener {
    child: Child,
    subscribed: Arc<AtomicBool>,
    messages: Arc<std::sync::Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Listener {
    fn start(port: u16, topic: &str, count: usize) -> Listener {
        use std::io::BufRead as _;
        // Line-buffered: piped, mosquitto_sub's stdout would hold the SUBACK line back.
        let mut child = Command::new("stdbuf")
            .args(["-oL", "mosquitto_sub"])
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-d", "-t", topic])
            .args(["-C", &count.to_string(), "-W", "60"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("stdbuf mosquitto_sub");
        let out = child.stdout.take().expect("stdout");
        let subscribed = Arc::new(AtomicBool::new(false));
        let messages = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, m) = (subscribed.clone(), messages.clone());
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if line.starts_with("Client ") || line.starts_with("Subscribed (") {
                    // Debug output, e.g. "Client null received SUBACK".
                    if line.contains("received SUBACK") {
                        s.store(true, Ordering::Release);
                    }
                } else if !line.trim().is_empty() {
                    m.lock().expect("lock").push(line);
                }
            }
        });
        Listener { child, subscribed, messages, reader: Some(reader) }
    }

    fn wait_subscribed(&self) {
        wait_until("mosquitto_sub's subscription", Duration::from_secs(30), || {
            self.subscribed.load(Ordering::Acquire)
        });
    }

    /// Waits for mosquitto_sub to exit (after its `count` messages, or its timeout).
    fn messages(mut self) -> Vec<String> {
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        std::mem::take(&mut *self.messages.lock().expect("lock"))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.stats.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_key(dir: &Path, name: &str, secret: &CitySecret) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, secret.to_base64()).expect("key file");
    p
}

fn stored_uuids(db: &Path) -> BTreeSet<String> {
    InboxDb::open(db)
        .and_then(|d| d.register())
        .expect("register")
        .into_iter()
        .map(|r| r.uuid)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn submissions_taken_offline_reach_the_inbox_once_and_the_outbox_empties() {
    let kiosk_dir = tempfile::tempdir().expect("kiosk dir");
    let city_dir = tempfile::tempdir().expect("city dir");
    let city = CitySecret::generate();
    let key = write_key(city_dir.path(), "city.key", &city);
    let outbox = kiosk_dir.path().join("outbox.db");
    let db = city_dir.path().join("inbox.db");
    let mut broker = Broker::configured();

    // The broker is down while residents submit and while the pump first tries.
    let uuids = enqueue(&outbox, &city, 40);
    let _pump = pump(&broker, &outbox);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(waiting(&outbox), 40, "nothing leaves the outbox without a receipt");

    broker.start();
    let inbox = Inbox::start(&broker, &key, &db, "a");
    wait_until("the outbox to empty", Duration::from_secs(60), || waiting(&outbox) == 0);

    assert_eq!(stored_uuids(&db), uuids, "the inbox holds every submission");
    assert_eq!(inbox.stats.stored.load(Ordering::Relaxed), 40);
    assert_eq!(inbox.stats.refused.load(Ordering::Relaxed), 0);
    // The city reads exactly what the resident typed, with the kiosk's dates.
    let city_db = InboxDb::open(&db).expect("inbox db");
    let first = uuids.iter().next().expect("one uuid");
    let personal = city_db.personal(first, &city).expect("read").expect("stored");
    let Personal::Request(r) = personal else { panic!("a request was stored as {personal:?}") };
    assert_eq!((r.name.as_str(), r.id_number.clone()), (PLANTED_NAME, planted_id()));
    let row = city_db.get(first).expect("get").expect("row");
    assert_eq!((row.received_on, row.due), (d(2024, 9, 20), Some(d(2024, 10, 23))));

    // The register and the report an office exports.
    let csv = city_dir.path().join("register.csv");
    content_sync::inbox::inbox(InboxArgs {
        db: db.clone(),
        export_csv: Some(csv.clone()),
        report: Some(2024),
        ..InboxArgs::default()
    })
    .expect("export");
    let text = std::fs::read_to_string(&csv).expect("csv");
    assert_eq!(text.lines().count(), 41, "a header and one line per submission");
    let xlsx = city_dir.path().join("register.xlsx");
    content_sync::inbox::inbox(InboxArgs {
        db: db.clone(),
        export: Some(xlsx.clone()),
        ..InboxArgs::default()
    })
    .expect("export xlsx");
    let book = std::fs::read(&xlsx).expect("xlsx");
    assert!(book.starts_with(b"PK"), "an .xlsx (zip) workbook was written");
    assert!(text.contains(",2024-09-20,2024-10-23,政府信息公开申请,尚未办结,"), "{text}");
    assert_eq!(city_db.report(2024).expect("report").received, 40);

    assert_no_planted_data(kiosk_dir.path());
    // The city's database keeps the forms sealed: a copied inbox.db (with its WAL) and the
    // exported register reveal nothing personal.
    drop(city_db);
    assert_no_planted_data(city_dir.path());
}

#[test]
fn a_duplicate_publish_is_stored_once_and_receipted_both_times() {
    let city_dir = tempfile::tempdir().expect("city dir");
    let kiosk_dir = tempfile::tempdir().expect("kiosk dir");
    let city = CitySecret::generate();
    let key = write_key(city_dir.path(), "city.key", &city);
    let db = city_dir.path().join("inbox.db");
    let outbox = kiosk_dir.path().join("outbox.db");
    enqueue(&outbox, &city, 1);
    let sub: Submission =
        Outbox::open(&outbox).expect("outbox").all().expect("rows").remove(0).submission;
    let payload = kiosk::sync::submit::payload(&sub).expect("payload");
    let file = kiosk_dir.path().join("payload.json");
    std::fs::write(&file, &payload).expect("payload file");

    let mut broker = Broker::configured();
    broker.start();
    let inbox = Inbox::start(&broker, &key, &db, "a");
    let port = broker.port.to_string();
    let cli = ["-h", "127.0.0.1", "-p", port.as_str(), "-q", "1"];
    let receipts = Listener::start(broker.port, &format!("zwgk/v1/dev/{DEVICE}/receipt"), 2);
    // The broker keeps nothing for absent subscribers: both the receipt listener and the
    // inbox must hold their subscriptions before the first publish.
    receipts.wait_subscribed();
    inbox.wait_subscribed();
    let topic = format!("zwgk/v1/dev/{DEVICE}/submit");
    for _ in 0..2 {
        let ok = Command::new("mosquitto_pub")
            .args(cli)
            .args(["-t", &topic, "-f"])
            .arg(&file)
            .status()
            .expect("mosquitto_pub");
        assert!(ok.success());
    }
    let lines: Vec<serde_json::Value> = receipts
        .messages()
        .iter()
        .map(|l| serde_json::from_str(l).expect("receipt JSON"))
        .collect();
    assert_eq!(lines.len(), 2, "both copies are receipted");
    for l in &lines {
        assert_eq!(l["uuid"], sub.uuid.as_str());
        assert_eq!(l["receipt_no"], sub.receipt_no.as_str());
        assert_eq!(l["due"], "2024-10-23");
    }
    assert_eq!(lines[1]["duplicate"], true);
    assert_eq!(InboxDb::open(&db).and_then(|d| d.count()).expect("count"), 1);
    assert_eq!(inbox.stats.stored.load(Ordering::Relaxed), 1);
    assert_eq!(inbox.stats.duplicates.load(Ordering::Relaxed), 1);
}

#[test]
fn a_wrong_key_refuses_clearly_and_the_kiosk_keeps_its_copy_until_the_right_one() {
    let kiosk_dir = tempfile::tempdir().expect("kiosk dir");
    let city_dir = tempfile::tempdir().expect("city dir");
    let city = CitySecret::generate();
    let right = write_key(city_dir.path(), "city.key", &city);
    let wrong = write_key(city_dir.path(), "other.key", &CitySecret::generate());
    let db = city_dir.path().join("inbox.db");
    let outbox = kiosk_dir.path().join("outbox.db");
    enqueue(&outbox, &city, 3);

    // A key file that is not a key at all is refused before connecting.
    let garbage = city_dir.path().join("garbage.key");
    std::fs::write(&garbage, "not a key").expect("write");
    let mut broker = Broker::configured();
    broker.start();
    let err = content_sync::inbox::inbox(InboxArgs {
        broker: Some(broker.url()),
        key: Some(garbage),
        db: db.clone(),
        ..InboxArgs::default()
    })
    .expect_err("a malformed key must be refused");
    assert!(format!("{err:#}").contains("32 bytes"), "{err:#}");

    let _pump = pump(&broker, &outbox);
    {
        let inbox = Inbox::start(&broker, &wrong, &db, "a");
        wait_until("the refusals", Duration::from_secs(30), || {
            inbox.stats.refused.load(Ordering::Relaxed) >= 3
        });
        let why = inbox.stats.last_error.lock().expect("lock").clone().unwrap_or_default();
        assert!(why.contains("does not open with this key"), "{why}");
        assert!(why.contains("--key"), "the message says what to check: {why}");
        assert_eq!(InboxDb::open(&db).and_then(|d| d.count()).expect("count"), 0);
        assert_eq!(waiting(&outbox), 3, "nothing is receipted that was not stored");
    }
    // With the right key the resends (after the answer timeout) get through.
    let inbox = Inbox::start(&broker, &right, &db, "a");
    wait_until("the outbox to empty", Duration::from_secs(60), || waiting(&outbox) == 0);
    assert_eq!(inbox.stats.stored.load(Ordering::Relaxed), 3);
}

/// The kiosk-side pump as a process of its own, for the SIGKILL test: this test binary
/// re-executed with `INBOX_TEST_CHILD` set. Without it, the test does nothing.
#[test]
#[ignore = "run only as the child process of killed_kiosks_and_a_restarted_broker_lose_and_duplicate_nothing"]
fn kiosk_child_pump() {
    let Ok(spec) = std::env::var("INBOX_TEST_CHILD") else { return };
    let (url, outbox) = spec.split_once('|').expect("url|outbox");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
        .with_writer(std::io::stderr)
        .try_init();
    let cfg = PumpConfig {
        device: DEVICE.into(),
        broker: BrokerAddr { url: url.into(), ..BrokerAddr::default() },
        outbox: PathBuf::from(outbox),
        answer_timeout: Duration::from_secs(2),
        max_in_flight: 32,
        tick: Duration::from_millis(50),
    };
    let stop = AtomicBool::new(false);
    kiosk::sync::submit::run(cfg, &stop).expect("the pump runs");
}

fn spawn_kiosk(broker: &Broker, outbox: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log");
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["inbox::kiosk_child_pump", "--exact", "--ignored", "--nocapture"])
        .env("INBOX_TEST_CHILD", format!("{}|{}", broker.url(), outbox.display()))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("kiosk child")
}

/// The scenario at full size (about 30 s here): 1,000 submissions taken while the
/// broker is down, the kiosk process SIGKILLed at 50 random moments 50–700 ms apart, the
/// broker killed and restarted (losing every session and queued message) twice while
/// submissions are in flight, and two inbox workers sharing the subscription and the
/// database. It prints how many were still waiting after each kill, to show the kills hit
/// transfers in progress.
#[test]
fn killed_kiosks_and_a_restarted_broker_lose_and_duplicate_nothing() {
    use rand::Rng as _;
    const N: usize = 1000;
    const KILLS: usize = 50;
    let kiosk_dir = tempfile::tempdir().expect("kiosk dir");
    let city_dir = tempfile::tempdir().expect("city dir");
    let city = CitySecret::generate();
    let key = write_key(city_dir.path(), "city.key", &city);
    let outbox = kiosk_dir.path().join("outbox.db");
    let log = kiosk_dir.path().join("pump.log");
    let db = city_dir.path().join("inbox.db");
    let mut broker = Broker::configured();

    let uuids = enqueue(&outbox, &city, N);
    broker.start();
    let a = Inbox::start(&broker, &key, &db, "a");
    let b = Inbox::start(&broker, &key, &db, "b");
    let mut rng = rand::thread_rng();
    let mut trace = Vec::new();
    for k in 0..KILLS {
        let mut kiosk = spawn_kiosk(&broker, &outbox, &log);
        std::thread::sleep(Duration::from_millis(rng.gen_range(50..700)));
        kiosk.kill().expect("SIGKILL"); // Child::kill is SIGKILL on Unix
        let _ = kiosk.wait();
        let left = waiting(&outbox);
        trace.push(left);
        if k == 3 || k == KILLS / 3 {
            broker.start(); // kill and start again: sessions and queues are gone
        }
    }
    println!("waiting after each kill: {trace:?}");
    let mid = waiting(&outbox);
    let mut kiosk = spawn_kiosk(&broker, &outbox, &log);
    wait_until("the outbox to empty", Duration::from_secs(90), || waiting(&outbox) == 0);
    let _ = kiosk.kill();
    let _ = kiosk.wait();
    let stored = stored_uuids(&db);
    println!(
        "{N} submissions, {KILLS} kills: {mid} still waiting after the kills; inbox a stored {}, b {}; duplicates {}",
        a.stats.stored.load(Ordering::Relaxed),
        b.stats.stored.load(Ordering::Relaxed),
        a.stats.duplicates.load(Ordering::Relaxed) + b.stats.duplicates.load(Ordering::Relaxed)
    );
    assert_eq!(stored.len(), N, "exactly one row per submission");
    assert_eq!(stored, uuids);
    assert_eq!(
        a.stats.stored.load(Ordering::Relaxed) + b.stats.stored.load(Ordering::Relaxed),
        N as u64,
        "no submission was stored twice by the two workers"
    );
    let pump_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(pump_log.contains("receipted by the city"), "the pump logged its work: {pump_log}");
    assert_no_planted_data(kiosk_dir.path());
}

#[test]
fn the_kiosks_sync_worker_starts_the_pump() {
    let kiosk_dir = tempfile::tempdir().expect("kiosk dir");
    let city_dir = tempfile::tempdir().expect("city dir");
    let city = CitySecret::generate();
    let key = write_key(city_dir.path(), "city.key", &city);
    let db = city_dir.path().join("inbox.db");
    let outbox = kiosk_dir.path().join(kiosk::requests::OUTBOX_FILE);
    let uuids = enqueue(&outbox, &city, 5);
    let mut broker = Broker::configured();
    broker.start();
    let inbox = Inbox::start(&broker, &key, &db, "a");
    // The kiosk's pump re-sends an unanswered submission only after 5 minutes: the inbox
    // must be listening before the first send.
    inbox.wait_subscribed();
    let config = kiosk::config::Config {
        device_id: DEVICE.into(),
        data_dir: kiosk_dir.path().to_path_buf(),
        broker: broker.url(),
        ..kiosk::config::Config::default()
    };
    let sync = kiosk::sync::spawn(&config);
    wait_until("the outbox to empty", Duration::from_secs(60), || waiting(&outbox) == 0);
    drop(sync);
    assert_eq!(stored_uuids(&db), uuids);
}

#[test]
fn keygen_writes_a_private_secret_and_the_public_key_for_kiosks() {
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("city-submit.key");
    let args = InboxArgs { keygen: Some(out.clone()), ..InboxArgs::default() };
    content_sync::inbox::inbox(args.clone()).expect("keygen");
    let secret = content_sync::inbox::read_secret(&out).expect("the secret parses");
    let public = std::fs::read_to_string(dir.path().join("city-submit.key.pub")).expect("pub");
    assert_eq!(kiosk::requests::CityKey::parse(&public).expect("public key"), secret.public());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&out).expect("meta").permissions().mode();
        assert_eq!(mode & 0o077, 0, "only the owner may read the secret key");
    }
    let again = content_sync::inbox::inbox(args).expect_err("an existing key is not overwritten");
    assert!(again.to_string().contains("refusing to overwrite"), "{again}");
}
