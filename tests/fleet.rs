//! The operators' dashboard against a real Mosquitto and a simulated fleet, driven over
//! HTTP like an operator's browser would (and, when Debian's chromium and chromedriver are
//! installed, in that real headless browser over WebDriver).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use content_sync::fleet::sim::{SimControl, BLACK_FRAME};
use content_sync::fleet::{db, FleetArgs, FleetBroker, Running, SimulateArgs};
use kiosk::sync::protocol::Standard;

use crate::util::{free_port, mosquitto, wait_until_every};

/// Fleet checks render dashboard pages: poll them gently.
fn wait_until(what: &str, timeout: Duration, ok: impl FnMut() -> bool) {
    wait_until_every(what, timeout, Duration::from_millis(200), ok);
}

/// A plain-TCP, anonymous Mosquitto on a free loopback port.
struct Mosquitto {
    _dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl Mosquitto {
    fn start() -> Mosquitto {
        let bin = mosquitto();
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let user = Command::new("id")
            .arg("-un")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let user = if user.is_empty() { "root".to_string() } else { user };
        let conf = format!("listener {port} 127.0.0.1\nuser {user}\npersistence false\nallow_anonymous true\nlog_dest stderr\n");
        std::fs::write(dir.path().join("m.conf"), conf).expect("conf");
        let child = Command::new(bin)
            .arg("-c")
            .arg(dir.path().join("m.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting mosquitto");
        wait_until("mosquitto to listen", Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Mosquitto { _dir: dir, port, child }
    }
    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const OPERATOR_PW: &str = "operator-secret-1";
const READER_PW: &str = "reader-secret-1";

/// Broker, dashboard (offline after 3 s) and a simulated fleet of four kiosks reporting
/// every second: sim-0001 shows a black screen, sim-0004 hangs after 2 s.
struct Bench {
    sim: Arc<SimControl>,
    running: Running,
    sim_thread: Option<std::thread::JoinHandle<()>>,
    base: String,
    _dir: tempfile::TempDir,
    _broker: Mosquitto,
}

impl Bench {
    fn start() -> Bench {
        Bench::with(|_, _| {})
    }

    /// A bench whose dashboard and simulator arguments `tweak` adjusts (the fleet's
    /// --published, --webhook…, the simulator's --drift, --paper-out…). The temp dir is
    /// passed to `tweak` for fixtures.
    fn with(tweak: impl FnOnce(&std::path::Path, &mut (FleetArgs, SimulateArgs))) -> Bench {
        let broker = Mosquitto::start();
        let dir = tempfile::tempdir().expect("temp dir");
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let key_path = dir.path().join("root.key");
        std::fs::write(&key_path, hex::encode(key.to_bytes())).expect("key");
        let db_path = dir.path().join("fleet.db");
        {
            let conn = db::open(&db_path).expect("db");
            db::add_user(&conn, "zhang", db::Role::Operator, OPERATOR_PW).expect("operator");
            db::add_user(&conn, "li", db::Role::Readonly, READER_PW).expect("reader");
        }
        let fb = FleetBroker { broker: Some(broker.url()), ..FleetBroker::default() };
        let fleet_args = FleetArgs {
            broker: fb.clone(),
            db: db_path,
            listen: "127.0.0.1:0".into(),
            metrics_listen: None,
            offline_after: 3,
            stale_after: 3600,
            disk_min_percent: 10.0,
            outbox_max_age: 3600,
            published: None,
            webhook: None,
            webhook_ca: None,
            black_frames: vec![BLACK_FRAME.into()],
            sign_keys: vec![key_path],
            command_valid_for: 60,
            keep_hours: 1,
            secure_cookie: false,
            add_user: None,
            role: db::Role::Readonly,
        };
        let sim_args = SimulateArgs {
            broker: fb,
            devices: 4,
            scopes: vec!["430182-001-01".into()],
            prefix: "sim".into(),
            interval: 1,
            content_version: 1,
            black: 1,
            silent: 1,
            silent_after: 2,
            published: None,
            drift: Vec::new(),
            paper_out: Vec::new(),
            jam: Vec::new(),
            outbox_stuck: Vec::new(),
            trust: vec![hex::encode(key.verifying_key().as_bytes())],
            seconds: None,
        };
        let mut both = (fleet_args, sim_args);
        tweak(dir.path(), &mut both);
        let (fleet_args, args) = both;
        let running = content_sync::fleet::start(fleet_args).expect("starting the dashboard");
        let sim = Arc::new(SimControl::default());
        let ctl = sim.clone();
        let sim_thread = std::thread::spawn(move || {
            if let Err(e) = content_sync::fleet::simulate_until(args, ctl) {
                eprintln!("simulator: {e:#}");
            }
        });
        let base = format!("http://{}", running.addr);
        Bench { sim, running, sim_thread: Some(sim_thread), base, _dir: dir, _broker: broker }
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        self.sim.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.sim_thread.take() {
            let _ = t.join();
        }
        self.running.stop();
    }
}

/// An HTTP client that does not follow redirects and keeps one session cookie.
struct Browser {
    agent: ureq::Agent,
    base: String,
    cookie: Option<String>,
}

/// (status, Location, Set-Cookie, body)
type Reply = (u16, String, String, String);

impl Browser {
    fn new(base: &str) -> Browser {
        Browser {
            agent: ureq::AgentBuilder::new().redirects(0).build(),
            base: base.into(),
            cookie: None,
        }
    }
    fn finish(r: Result<ureq::Response, ureq::Error>) -> Reply {
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("HTTP transport error: {e}"),
        };
        let status = resp.status();
        let loc = resp.header("Location").unwrap_or_default().to_string();
        let set = resp.header("Set-Cookie").unwrap_or_default().to_string();
        (status, loc, set, resp.into_string().unwrap_or_default())
    }
    fn get(&self, path: &str) -> Reply {
        let mut r = self.agent.get(&format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            r = r.set("Cookie", c);
        }
        Self::finish(r.call())
    }
    fn post(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        let mut r = self.agent.post(&format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            r = r.set("Cookie", c);
        }
        Self::finish(r.send_form(form))
    }
    fn login(&mut self, user: &str, password: &str) -> Reply {
        let reply = self.post("/login", &[("user", user), ("password", password)]);
        if reply.0 == 303 {
            self.cookie = reply.2.split(';').next().map(str::to_string);
        }
        reply
    }
    fn csrf(&self, path: &str) -> String {
        let body = self.get(path).3;
        let at = body.find("name=\"csrf\" value=\"").expect("a CSRF field on the page") + 19;
        body[at..].split('"').next().unwrap_or_default().to_string()
    }
}

#[test]
fn without_a_session_pages_redirect_to_login_and_actions_are_refused() {
    let bench = Bench::start();
    let mut b = Browser::new(&bench.base);
    let (status, location, ..) = b.get("/");
    assert_eq!((status, location.as_str()), (303, "/login"));
    assert_eq!(b.get("/metrics").0, 401, "metrics on the dashboard port need a session");
    assert_eq!(b.post("/device/sim-0002/command", &[("action", "restart")]).0, 401);
    let (status, _, cookie, body) = b.login("zhang", "wrong password");
    assert_eq!(status, 401);
    assert!(cookie.is_empty() && body.contains("用户名或密码错误"));
    let (status, location, cookie, _) = b.login("zhang", OPERATOR_PW);
    assert_eq!((status, location.as_str()), (303, "/"));
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    assert_eq!(b.get("/").0, 200);
    // A forged or stale form without the session's CSRF token is refused.
    assert_eq!(
        b.post("/device/sim-0002/command", &[("action", "restart"), ("csrf", "nope")]).0,
        403
    );
}

#[test]
fn the_fleet_page_shows_the_simulated_kiosks_and_a_silent_or_killed_one_turns_offline_with_its_reason(
) {
    let bench = Bench::start();
    let mut b = Browser::new(&bench.base);
    b.login("li", READER_PW);
    wait_until("all four kiosks online on the fleet page", Duration::from_secs(20), || {
        let body = b.get("/").3;
        (1..=4).all(|i| body.contains(&format!("data-device=\"sim-{i:04}\"")))
            && body.contains("<b class=\"on\" id=\"online\">4</b>")
            // Grouped by scope once their health names it: the county counts all four.
            && body.contains("430182</a></td><td>4</td><td class=\"on\">4</td>")
    });
    let body = b.get("/").3;
    assert!(body.contains("<h3>430182-001-01</h3>"), "a section for the hall");
    // sim-0004 stops reporting after 2 s but keeps its connection: no last will, only
    // the heartbeat rule can catch it.
    wait_until("the hung kiosk to be flagged", Duration::from_secs(20), || {
        b.get("/alerts")
            .3
            .contains("sim-0004</a></td><td>430182-001-01</td><td>offline</td><td>超过 3 秒无心跳")
    });
    bench.sim.kill("sim-0002");
    wait_until("the killed kiosk's last will to show", Duration::from_secs(20), || {
        let body = b.get("/device/sim-0002").3;
        body.contains("离线 offline") && body.contains("last will")
    });
    let alerts = b.get("/alerts").3;
    assert!(
        alerts.contains("sim-0001</a></td><td>430182-001-01</td><td>black-screen"),
        "black screen flagged: {alerts}"
    );
    assert!(!alerts.contains("sim-0003"), "a healthy kiosk has no alert");
    let fleet = b.get("/?status=offline").3;
    assert!(
        fleet.contains("data-device=\"sim-0002\"") && fleet.contains("data-device=\"sim-0004\"")
    );
    assert!(!fleet.contains("data-device=\"sim-0003\""), "the filter hides online kiosks");
    // The device page draws the health history.
    let page = b.get("/device/sim-0003").3;
    assert!(page.contains("<polyline"), "health charts on the device page");
    let metrics = b.get("/metrics").3;
    assert!(
        metrics.contains("kiosk_online{device=\"sim-0003\",scope=\"430182-001-01\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("kiosk_online{device=\"sim-0002\",scope=\"430182-001-01\"} 0"));
    assert!(
        metrics.contains("fleet_devices 4")
            && metrics.contains("fleet_alerts{kind=\"black-screen\"} 1")
    );
    // Every metric the Grafana dashboard in the repo queries is one the fleet exports.
    let grafana = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/grafana-dashboard.json"),
    )
    .expect("docs/grafana-dashboard.json");
    let json: serde_json::Value = serde_json::from_str(&grafana).expect("the dashboard is JSON");
    let exprs: Vec<&str> = json["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str())
        .collect();
    assert!(exprs.len() > 10, "the dashboard's queries: {exprs:?}");
    for expr in exprs {
        let names = expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("fleet_") || w.starts_with("kiosk_"));
        for name in names {
            assert!(
                metrics.contains(&format!("# TYPE {name} ")),
                "Grafana queries {name} ({expr}), which /metrics does not export"
            );
        }
    }
}

#[test]
fn an_operator_command_is_signed_acked_and_audited_and_a_reader_cannot_send_one() {
    let bench = Bench::start();
    let mut op = Browser::new(&bench.base);
    op.login("zhang", OPERATOR_PW);
    wait_until("sim-0003 to report", Duration::from_secs(20), || {
        op.get("/device/sim-0003").0 == 200
    });
    let csrf = op.csrf("/device/sim-0003");
    let (status, location, ..) =
        op.post("/device/sim-0003/command", &[("action", "resync"), ("csrf", &csrf)]);
    assert_eq!((status, location.as_str()), (303, "/device/sim-0003"));
    // The simulator verifies the root signature before acking, as a kiosk does.
    wait_until("the ack on the device page", Duration::from_secs(15), || {
        op.get("/device/sim-0003").3.contains("成功 ok：simulated resync")
    });
    wait_until("the ack in the audit log", Duration::from_secs(10), || {
        let audit = op.get("/commands").3;
        audit.contains("<td>zhang</td><td>sim-0003</td><td>resync</td>")
            && audit.contains("成功 simulated resync")
    });

    let mut reader = Browser::new(&bench.base);
    reader.login("li", READER_PW);
    let page = reader.get("/device/sim-0003").3;
    assert!(
        !page.contains("cmd-restart") && page.contains("只读账号"),
        "no command buttons for a reader"
    );
    let csrf = reader.csrf("/device/sim-0003");
    let (status, _, _, body) =
        reader.post("/device/sim-0003/command", &[("action", "restart"), ("csrf", &csrf)]);
    assert_eq!(status, 403, "{body}");
    let acks = bench.sim.acks_sent.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(bench.sim.acks_sent.load(Ordering::Relaxed), acks, "no command reached a kiosk");
    assert!(!op.get("/commands").3.contains("<td>li</td>"), "nothing audited for the reader");
}

// ---------------------------------------------------------------------------------------
// The 五统一 audit, printer and outbox alerts, the webhook, screenshots and paging
// ---------------------------------------------------------------------------------------

/// Publishes a city bundle (branding, functions, device settings, two baseline items) and a
/// hall bundle (one local item) under `dir/published`, as `content-sync build` writes them.
fn publish(dir: &std::path::Path) -> PathBuf {
    use kiosk::content::{Body, Branding, DeviceSettings, Faq, Function, Functions, Item};
    use kiosk::content::{ScopeCode, ScopeContent};
    let faq = |id: &str, baseline: bool| Item {
        id: id.into(),
        title: format!("问答 {id}"),
        domain: None,
        baseline,
        links: Vec::new(),
        url: None,
        body: Body::Faq(Faq { question: id.into(), answer: "答复".into(), published: None }),
    };
    let city = ScopeContent {
        scope: ScopeCode::parse("430100").expect("scope"),
        items: vec![faq("base-1", true), faq("base-2", true)],
        branding: Some(Branding {
            zone_name: "长沙市政务公开专区".into(), ..Branding::default()
        }),
        functions: Some(Functions { enabled: vec![Function::Policies, Function::Guides] }),
        // Kiosks report every 2 s here, so 统一管理 fails 4 s after a kiosk goes quiet.
        device: Some(DeviceSettings { health_interval_seconds: 2, ..DeviceSettings::default() }),
        ..ScopeContent::default()
    };
    let hall = ScopeContent {
        scope: ScopeCode::parse("430182-001-01").expect("scope"),
        items: vec![faq("local-1", false)],
        ..ScopeContent::default()
    };
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let created = chrono::Utc::now();
    let meta = kiosk::bundle::BundleMeta {
        version: 1,
        created,
        expires: created + chrono::Duration::days(30),
    };
    let out = dir.join("published");
    for (name, c) in [("city", &city), ("hall", &hall)] {
        kiosk::bundle::write_bundle(&out.join(name), c, &[], &meta, &[&key]).expect("bundle");
    }
    out
}

/// The `<tr>` of one device in a page.
fn row_of(body: &str, device: &str) -> String {
    let at = body.find(&format!("<tr data-device=\"{device}\"")).unwrap_or(body.len());
    let rest = &body[at..];
    rest[..rest.find("</tr>").unwrap_or(rest.len())].to_string()
}

#[test]
fn the_five_unified_audit_marks_drifting_and_silent_kiosks_with_reasons_in_page_and_csv() {
    let bench = Bench::with(|dir, (fleet, sim)| {
        let published = publish(dir);
        fleet.published = Some(published.clone());
        sim.published = Some(published);
        // sim-0002 drifts in 统一内容, sim-0003 in 统一功能; sim-0004 goes quiet after 2 s.
        sim.drift = vec![2, 3];
    });
    let mut b = Browser::new(&bench.base);
    b.login("li", READER_PW);
    wait_until(
        "four audited kiosks, sim-0004 failing 统一管理",
        Duration::from_secs(30),
        || {
            let body = b.get("/audit").3;
            body.contains("<b id=\"audited\">4</b>")
                && row_of(&body, "sim-0004").contains("✗ 不符合：已")
                && row_of(&body, "sim-0001").matches("class=\"pass\"").count() == 5
        },
    );
    let body = b.get("/audit").3;
    assert!(body.contains("@media print"), "a print stylesheet");
    assert!(body.contains("<tr class=\"group\"><th colspan=\"6\">430182-001-01</th></tr>"));
    let r2 = row_of(&body, "sim-0002");
    let cells: Vec<&str> = r2.split("<td class=\"").skip(1).map(|c| &c[..4]).collect();
    assert_eq!(cells, ["pass", "fail", "pass", "pass", "pass"], "{r2}");
    assert!(r2.contains("✗ 不符合：与发布不一致"), "a reason in text, not colour alone: {r2}");
    let r3 = row_of(&body, "sim-0003");
    let cells: Vec<&str> = r3.split("<td class=\"").skip(1).map(|c| &c[..4]).collect();
    assert_eq!(cells, ["pass", "pass", "fail", "pass", "pass"], "{r3}");
    // The silent kiosk still reported matching fingerprints before it went quiet.
    let r4 = row_of(&body, "sim-0004");
    assert!(r4.contains("发布的上报间隔为 2 秒"), "{r4}");

    let (status, _, _, csv) = b.get("/audit.csv");
    assert_eq!(status, 200);
    assert!(csv.starts_with('\u{feff}'), "a BOM so Excel reads UTF-8");
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert!(lines[0].starts_with("设备,区划,统一标识,统一标识说明,统一内容"), "{}", lines[0]);
    assert_eq!(lines.len(), 5, "a header and one row per device: {csv}");
    let r2 = lines.iter().find(|l| l.starts_with("sim-0002,")).expect("sim-0002 in the CSV");
    assert!(r2.starts_with("sim-0002,430182-001-01,✓,与发布一致,✗,与发布不一致"), "{r2}");
    // A scope filter narrows the matrix.
    assert!(b.get("/audit?scope=430102").3.contains("<b id=\"audited\">0</b>"));
}

#[test]
fn a_kiosk_fingerprints_its_installed_content_exactly_as_the_fleet_computes_it_from_the_published_bundles(
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let published = publish(dir.path());
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let root_path = dir.path().join("root.json");
    let far = chrono::Utc::now() + chrono::Duration::days(3650);
    kiosk::bundle::write_root(
        &root_path,
        &kiosk::bundle::format::Root::for_keys(1, far, &[key.verifying_key()], 1),
        &[&key],
    )
    .expect("root");
    let hall = kiosk::content::ScopeCode::parse("430182-001-01").expect("scope");
    let config = kiosk::config::Config {
        data_dir: dir.path().join("data"),
        scope: hall.clone(),
        trust_root: root_path,
        ..kiosk::config::Config::default()
    };
    assert_eq!(kiosk::content::standard::of_installed(&config.data_dir), None, "nothing installed");
    kiosk::bundle::install_dir(&config, &published).expect("installing the published bundles");
    let on_kiosk =
        kiosk::content::standard::of_installed(&config.data_dir).expect("installed fingerprints");
    let mut fleet = content_sync::fleet::audit::Published::load(&published).expect("published");
    let expected = fleet.expected(&hall).expect("expected fingerprints");
    assert_eq!(on_kiosk, expected.standard);
    assert_eq!(expected.health_interval, 2);
    // A local override (a signed set-setting) is a deviation from 统一设置, and only that.
    kiosk::content::settings::set_local(&config.data_dir, "brightness", "30").expect("override");
    let overridden = kiosk::content::standard::of_installed(&config.data_dir).expect("again");
    assert_ne!(overridden.settings, expected.standard.settings);
    assert_eq!(
        Standard { settings: expected.standard.settings.clone(), ..overridden },
        expected.standard
    );
    // Another hall of the same city shares the city's branding but not the hall's chain.
    let other = fleet.expected(&kiosk::content::ScopeCode::parse("430102-001-01").expect("scope"));
    assert_eq!(other.expect("the city's bundle applies").standard.branding, on_kiosk.branding);
}

/// JSON bodies a test webhook receiver accepted.
type Got = Arc<std::sync::Mutex<Vec<serde_json::Value>>>;

/// A tiny HTTP server that records JSON bodies POSTed to it; the first request gets a
/// 503, so the dashboard has to retry.
fn webhook_receiver() -> (String, Got) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let got = Got::default();
    let seen = got.clone();
    std::thread::spawn(move || {
        let mut first = true;
        for mut stream in listener.incoming().flatten() {
            answer_hook(&mut stream, &mut first, &seen);
        }
    });
    (url, got)
}

/// Reads one POST and answers it: 503 the first time, else 200 with the body recorded.
fn answer_hook(
    stream: &mut (impl std::io::Read + std::io::Write),
    first: &mut bool,
    seen: &std::sync::Mutex<Vec<serde_json::Value>>,
) {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let mut reader = BufReader::new(stream);
    let mut len = 0usize;
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        line.clear();
    }
    let mut body = vec![0; len];
    let _ = reader.read_exact(&mut body);
    let status = if *first { "503 Service Unavailable" } else { "200 OK" };
    if !*first {
        if let Ok(v) = serde_json::from_slice(&body) {
            seen.lock().expect("lock").push(v);
        }
    }
    *first = false;
    let out = reader.get_mut();
    let _ = out.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes());
    let _ = out.flush();
}

/// The receiver of [`webhook_receiver`] over https, with `pki`'s server certificate for
/// 127.0.0.1 (a city's private CA). Also returns the errors of the handshakes that failed
/// (a client that does not trust the CA breaks them off with an alert).
fn tls_webhook_receiver(
    pki: &crate::sync::Pki,
) -> (String, Got, Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::BufReader;
    let pem = |file: &str| {
        BufReader::new(std::fs::File::open(pki.path(file)).expect("the openssl output"))
    };
    let chain = rustls_pemfile::certs(&mut pem("server.pem"))
        .collect::<Result<Vec<_>, _>>()
        .expect("server certificate");
    let key = rustls_pemfile::private_key(&mut pem("server.key"))
        .expect("server key")
        .expect("a key in server.key");
    let config = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server TLS config"),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("https://{}/hook", listener.local_addr().expect("addr"));
    let got = Got::default();
    let refused = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (seen, broken) = (got.clone(), refused.clone());
    std::thread::spawn(move || {
        let mut first = true;
        for tcp in listener.incoming().flatten() {
            let conn = rustls::ServerConnection::new(config.clone()).expect("server connection");
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut handshake = Ok(());
            while handshake.is_ok() && tls.conn.is_handshaking() {
                handshake = tls.conn.complete_io(&mut tls.sock).map(drop);
            }
            match handshake {
                Ok(()) => {
                    answer_hook(&mut tls, &mut first, &seen);
                    tls.conn.send_close_notify();
                    let _ = std::io::Write::flush(&mut tls);
                }
                Err(e) => broken.lock().expect("lock").push(e.to_string()),
            }
        }
    });
    (url, got, refused)
}

#[test]
fn printer_and_outbox_alerts_show_with_reasons_and_the_webhook_gets_their_start_and_end() {
    let (url, got) = webhook_receiver();
    let bench = Bench::with(|_, (fleet, sim)| {
        fleet.webhook = Some(url);
        fleet.outbox_max_age = 600;
        sim.black = 0;
        sim.silent = 0;
        sim.paper_out = vec![2];
        sim.jam = vec![3];
        sim.outbox_stuck = vec![2];
    });
    let mut b = Browser::new(&bench.base);
    b.login("li", READER_PW);
    wait_until("printer and outbox alerts", Duration::from_secs(20), || {
        let alerts = b.get("/alerts").3;
        alerts.contains("sim-0002</a></td><td>430182-001-01</td><td>printer</td><td>打印机 kiosk：缺纸 (media-empty-error)")
            && alerts.contains("sim-0003</a></td><td>430182-001-01</td><td>printer</td><td>打印机 kiosk：卡纸 (media-jam-error)")
            && alerts.contains("<td>outbox-waiting</td><td>2 份群众申请等待回执，最早一份已等待 1 天")
    });
    assert!(!b.get("/alerts").3.contains("sim-0001"), "a healthy kiosk has no alert");
    let notices = |state: &str, device: &str, kind: &str| {
        got.lock()
            .expect("lock")
            .iter()
            .filter(|v| v["state"] == state && v["device"] == device && v["kind"] == kind)
            .count()
    };
    wait_until("the webhook to hear of the three alerts", Duration::from_secs(30), || {
        notices("started", "sim-0002", "printer") == 1
            && notices("started", "sim-0003", "printer") == 1
            && notices("started", "sim-0002", "outbox-waiting") == 1
    });
    let first = got.lock().expect("lock")[0].clone();
    assert!(first["reason"].as_str().is_some_and(|r| !r.is_empty()) && first["since"].is_string());
    assert_eq!(first["scope"], "430182-001-01");
    bench.sim.repair("sim-0003");
    wait_until("the jam's end on the webhook", Duration::from_secs(20), || {
        notices("ended", "sim-0003", "printer") == 1
    });
    assert!(!b.get("/alerts").3.contains("卡纸"), "the alert is gone from the page");
    assert_eq!(notices("started", "sim-0002", "printer"), 1, "an open alert is announced once");
}

#[test]
fn over_https_the_webhook_trusts_the_citys_private_ca_given_with_webhook_ca() {
    let pki_dir = tempfile::tempdir().expect("temp dir");
    let pki = crate::sync::Pki::new(pki_dir.path(), &[]);
    let (url, got, refused) = tls_webhook_receiver(&pki);
    let bench = Bench::with(|_, (fleet, _)| {
        fleet.webhook = Some(url);
        fleet.webhook_ca = Some(pki.path("ca.pem"));
    });
    wait_until("the black screen's start on the https webhook", Duration::from_secs(30), || {
        got.lock().expect("lock").iter().any(|v| {
            v["state"] == "started" && v["device"] == "sim-0001" && v["kind"] == "black-screen"
        })
    });
    let stats = &bench.running.app.webhook_stats;
    // The receiver records a notice before it answers; the sender counts it once the answer
    // is read, a moment later.
    wait_until("the notice to count as sent", Duration::from_secs(10), || {
        stats.sent.load(Ordering::Relaxed) >= 1
    });
    assert!(stats.errors.load(Ordering::Relaxed) >= 1, "the receiver's first 503 was retried");
    assert_eq!(refused.lock().expect("lock").as_slice(), [] as [String; 0], "every handshake held");
}

#[test]
fn over_https_without_the_citys_ca_the_handshake_is_refused_and_counted_and_the_dashboard_keeps_working(
) {
    let pki_dir = tempfile::tempdir().expect("temp dir");
    let pki = crate::sync::Pki::new(pki_dir.path(), &[]);
    let (url, got, refused) = tls_webhook_receiver(&pki);
    let hook = url.clone();
    let bench = Bench::with(|_, (fleet, _)| fleet.webhook = Some(hook));
    let stats = &bench.running.app.webhook_stats;
    wait_until("a refused handshake, counted", Duration::from_secs(30), || {
        !refused.lock().expect("lock").is_empty() && stats.errors.load(Ordering::Relaxed) >= 1
    });
    let why = refused.lock().expect("lock")[0].clone();
    assert!(why.contains("fatal alert"), "the dashboard broke the handshake off: {why}");
    let mut b = Browser::new(&bench.base);
    b.login("li", READER_PW);
    wait_until("the black screen on the alerts page", Duration::from_secs(20), || {
        b.get("/alerts").3.contains("sim-0001</a></td><td>430182-001-01</td><td>black-screen")
    });
    assert_eq!(stats.sent.load(Ordering::Relaxed), 0, "nothing was delivered");
    assert!(got.lock().expect("lock").is_empty(), "no notice reached the receiver");
    // Operators see the failing webhook on their metrics before notices are given up.
    let metrics = b.get("/metrics").3;
    let errors = metrics
        .lines()
        .find_map(|l| l.strip_prefix("fleet_webhook_errors_total "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert!(errors.is_some_and(|n| n >= 1), "{metrics}");
    // What the log says on every failed attempt: the URL and what to do.
    let err = content_sync::fleet::webhook::Client::new(&url, None)
        .expect("system roots only")
        .post(b"{}")
        .expect_err("an untrusted certificate");
    let err = format!("{err:#}");
    assert!(err.contains(&url) && err.contains("--webhook-ca"), "{err}");
}

#[test]
fn a_screenshot_command_leads_to_the_uploaded_png_on_the_device_page() {
    let bench = Bench::start();
    let mut op = Browser::new(&bench.base);
    op.login("zhang", OPERATOR_PW);
    wait_until("sim-0003 to report", Duration::from_secs(20), || {
        op.get("/device/sim-0003").0 == 200
    });
    assert!(op.get("/device/sim-0003").3.contains("id=\"no-screenshot\""));
    let csrf = op.csrf("/device/sim-0003");
    let (status, location, ..) =
        op.post("/device/sim-0003/command", &[("action", "screenshot"), ("csrf", &csrf)]);
    assert_eq!((status, location.as_str()), (303, "/device/sim-0003#screenshot"));
    wait_until("the screenshot on the device page", Duration::from_secs(20), || {
        op.get("/device/sim-0003").3.contains("id=\"screenshot-img\"")
            && op.get("/device/sim-0003/screenshot.png").0 == 200
    });
    let resp = op
        .agent
        .get(&format!("{}/device/sim-0003/screenshot.png", bench.base))
        .set("Cookie", op.cookie.as_deref().unwrap_or_default())
        .call()
        .expect("the PNG");
    assert_eq!(resp.header("Content-Type"), Some("image/png"));
    let mut png = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut png).expect("read");
    let expected = content_sync::fleet::sim::test_png("sim-0003");
    assert!(expected.len() > kiosk::sync::protocol::MAX_CHUNK, "the upload took several chunks");
    assert_eq!(png, expected, "the PNG reassembled byte for byte");
    assert_eq!(op.get("/device/sim-0001/screenshot.png").0, 404, "no screenshot, no PNG");
    let anonymous = Browser::new(&bench.base);
    assert_ne!(anonymous.get("/device/sim-0003/screenshot.png").0, 200, "login required");
}

#[test]
fn the_fleet_page_pages_its_devices_alerting_first() {
    let bench = Bench::with(|_, (_, sim)| {
        sim.devices = 130;
        sim.interval = 2;
        sim.black = 0;
        // The last three go quiet: they must lead page one although their ids sort last.
        sim.silent = 3;
    });
    let mut b = Browser::new(&bench.base);
    b.login("li", READER_PW);
    wait_until("130 kiosks, three of them alerting", Duration::from_secs(60), || {
        let body = b.get("/").3;
        body.contains("<b id=\"total\">130</b>") && body.contains("<b id=\"alerting\">3</b>")
    });
    let one = b.get("/").3;
    assert_eq!(one.matches("data-device=").count(), 100, "one page of 100 rows");
    assert!(one.contains("第 <b id=\"page\">1</b> / 2 页"));
    let first_rows: Vec<&str> =
        one.split("data-device=\"").skip(1).take(3).map(|r| &r[..8]).collect();
    assert_eq!(first_rows, ["sim-0128", "sim-0129", "sim-0130"], "alerting first");
    let two = b.get("/?q=&status=&page=2").3;
    assert_eq!(two.matches("data-device=").count(), 30);
    assert!(two.contains("id=\"prev\"") && !two.contains("id=\"next\""));
    // The scope tree still counts every device.
    assert!(two.contains("430182</a></td><td>130</td>"));
}

// ---------------------------------------------------------------------------------------
// The same in a real headless browser: Debian's chromium driven over WebDriver
// ---------------------------------------------------------------------------------------

/// Debian's chromium and chromedriver, installed with apt when missing.
fn chromedriver() -> PathBuf {
    let find = || {
        Some(PathBuf::from("/usr/bin/chromedriver"))
            .filter(|p| p.exists() && PathBuf::from("/usr/bin/chromium").exists())
    };
    if let Some(p) = find() {
        return p;
    }
    let _ = Command::new("apt-get")
        .args(["install", "-y", "-qq", "chromium", "chromium-driver"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    find().unwrap_or_else(|| panic!("chromium is not installed and could not be installed: run `apt-get install -y chromium chromium-driver`"))
}

/// A WebDriver session in headless chromium.
struct WebDriver {
    driver: Child,
    url: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

impl WebDriver {
    fn start() -> WebDriver {
        let port = free_port();
        let driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        wait_until("chromedriver to listen", Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let profile = tempfile::tempdir().expect("profile dir");
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build();
        // Flags from the machine notes: without the background-networking ones chromium
        // keeps trying to reach Google over a closed network.
        let caps = serde_json::json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--window-size=1280,1000",
                     format!("--user-data-dir={}", profile.path().display())]}}}});
        let base = format!("http://127.0.0.1:{port}");
        let resp: serde_json::Value = agent
            .post(&format!("{base}/session"))
            .send_json(caps)
            .expect("a WebDriver session")
            .into_json()
            .expect("json");
        let id = resp["value"]["sessionId"].as_str().expect("a session id").to_string();
        WebDriver { driver, url: format!("{base}/session/{id}"), agent, _profile: profile }
    }
    fn call(&self, method: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
        let req = self.agent.request(method, &format!("{}{path}", self.url));
        let resp = if method == "GET" { req.call() } else { req.send_json(body) };
        match resp {
            Ok(r) => r.into_json::<serde_json::Value>().expect("json")["value"].clone(),
            Err(e) => panic!("WebDriver {method} {path}: {e}"),
        }
    }
    fn go(&self, url: &str) {
        self.call("POST", "/url", serde_json::json!({ "url": url }));
    }
    fn element(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            serde_json::json!({"using": "css selector", "value": css}),
        );
        // The W3C element reference is the object's only value.
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_string()
    }
    fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css);
        self.call("POST", &format!("/element/{e}/value"), serde_json::json!({ "text": text }));
    }
    fn click(&self, css: &str) {
        let e = self.element(css);
        self.call("POST", &format!("/element/{e}/click"), serde_json::json!({}));
    }
    /// Runs `script` in the page (WebDriver injects it past the page's script-src 'none').
    fn execute(&self, script: &str) {
        self.call("POST", "/execute/sync", serde_json::json!({"script": script, "args": []}));
    }
    /// Logs in on the login form the browser shows and waits until the dashboard is there.
    fn log_in(&self, user: &str, password: &str) {
        self.type_into("#user", user);
        self.type_into("#password", password);
        self.click("#login");
        // Checking the password (argon2) takes a while in a debug build on a busy machine:
        // navigating before its answer has landed would cancel the POST and leave the
        // browser without a session, so wait for the login form to go away first.
        wait_until("the accepted login", Duration::from_secs(60), || {
            let s = self.source();
            !s.contains("id=\"password\"") && s.contains("action=\"/logout\"")
        });
    }
    fn source(&self) -> String {
        self.call("GET", "/source", serde_json::Value::Null)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
    fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine as _;
        let b64 = self.call("GET", "/screenshot", serde_json::Value::Null);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .expect("a base64 PNG");
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
        std::fs::write(path, png).expect("writing the screenshot");
    }
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        let _ = self.agent.delete(&self.url).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn in_a_real_browser_an_operator_logs_in_sees_the_fleet_and_a_command_is_acked() {
    let bench = Bench::start();
    let wd = WebDriver::start();
    wd.go(&format!("{}/device/sim-0003", bench.base));
    wait_until("the login form", Duration::from_secs(10), || {
        wd.source().contains("id=\"password\"")
    });
    assert!(
        wd.source().contains("id=\"password\""),
        "without a session the browser lands on the login form"
    );
    wd.type_into("#user", "zhang");
    wd.type_into("#password", "not the password");
    wd.click("#login");
    // A click that submits a form may return before the next page has loaded.
    wait_until("the refused login", Duration::from_secs(60), || {
        wd.source().contains("用户名或密码错误")
    });
    wd.log_in("zhang", OPERATOR_PW);
    wait_until("the fleet in the browser", Duration::from_secs(20), || {
        wd.go(&format!("{}/", bench.base));
        let s = wd.source();
        (1..=4).all(|i| s.contains(&format!("sim-{i:04}")))
    });
    wait_until("the hung kiosk's alert in the browser", Duration::from_secs(20), || {
        wd.go(&format!("{}/alerts", bench.base));
        wd.source().contains("无心跳")
    });
    wd.go(&format!("{}/", bench.base));
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fleet-dashboard.png");
    wd.screenshot(&shot);
    eprintln!("dashboard screenshot: {}", shot.display());
    wd.go(&format!("{}/device/sim-0003", bench.base));
    wd.click("#cmd-resync");
    // The form's POST redirects back to the device page with the command listed; only
    // then reload, or the reload could cancel the submission.
    wait_until("the sent command on the page", Duration::from_secs(10), || {
        wd.source().contains("<td>resync</td>")
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        wd.go(&format!("{}/device/sim-0003", bench.base));
        let source = wd.source();
        if source.contains("成功 ok：simulated resync") {
            break;
        }
        assert!(Instant::now() < deadline, "no ack in the browser: {source}");
        std::thread::sleep(Duration::from_millis(300));
    }
    wd.screenshot(&PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fleet-device.png"));
}

#[test]
fn in_a_real_browser_a_killed_kiosk_turns_offline_and_a_reader_cannot_send_commands() {
    let bench = Bench::start();
    let wd = WebDriver::start();
    let url = |path: &str| format!("{}{path}", bench.base);
    wd.go(&url("/alerts"));
    wait_until("the login form instead of the alerts", Duration::from_secs(30), || {
        wd.source().contains("id=\"password\"")
    });
    // A command form posted without a session: the dashboard answers 401 and sends nothing.
    let forged_command = |csrf: &str| {
        format!(
            "const f = document.createElement('form'); f.method = 'post'; \
             f.action = '/device/sim-0003/command'; \
             for (const [k, v] of [['action', 'restart'], ['csrf', '{csrf}']]) {{ \
               const i = document.createElement('input'); i.type = 'hidden'; \
               i.name = k; i.value = v; f.appendChild(i); }} \
             document.body.appendChild(f); f.submit();"
        )
    };
    wd.execute(&forged_command("none"));
    wait_until("the refused command without a session", Duration::from_secs(30), || {
        wd.source().contains("login required")
    });
    wd.go(&url("/login"));
    wd.log_in("li", READER_PW);
    let row = |device: &str, status: &str| {
        format!("<a href=\"/device/{device}\">{device}</a></td><td><span class=\"{status}")
    };
    wait_until("sim-0002 and sim-0003 online in the browser", Duration::from_secs(30), || {
        wd.go(&url("/"));
        let s = wd.source();
        s.contains(&row("sim-0002", "on\">在线 online")) && s.contains(&row("sim-0003", "on\""))
    });
    bench.sim.kill("sim-0002");
    // Only the killed one: sim-0003 goes on reporting (checked on the same page, so a slow
    // moment of the loaded test machine is retried rather than failed).
    wait_until("the killed kiosk offline on the fleet page", Duration::from_secs(30), || {
        wd.go(&url("/"));
        let s = wd.source();
        s.contains(&row("sim-0002", "off\">离线 offline"))
            && s.contains(&row("sim-0003", "on\">在线 online"))
    });
    wd.screenshot(&PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fleet-killed-kiosk.png"));
    wait_until("the killed kiosk's alert and its reason", Duration::from_secs(30), || {
        wd.go(&url("/alerts"));
        wd.source().contains(
            "sim-0002</a></td><td>430182-001-01</td><td>offline</td><td>断开连接（遗嘱消息 last will: offline）",
        )
    });
    wd.go(&url("/device/sim-0003"));
    let page = wd.source();
    assert!(
        !page.contains("id=\"cmd-") && page.contains("只读账号，不能发送指令"),
        "a reader sees no command buttons: {page}"
    );
    // Even a form forged with the reader's own CSRF token is refused, and nothing is sent.
    let at = page.find("name=\"csrf\" value=\"").expect("the logout form's CSRF field") + 19;
    let csrf = page[at..].split('"').next().unwrap_or_default().to_string();
    wd.execute(&forged_command(&csrf));
    wait_until("the refusal page", Duration::from_secs(30), || {
        let s = wd.source();
        s.contains("<h1>无权限</h1>") && s.contains("只读账号不能发送指令")
    });
    wd.go(&url("/device/sim-0003"));
    // A command that got past the role check is listed on the device page before it leaves.
    assert!(
        wd.source().contains("<th>回执</th></tr></tbody></table>"),
        "no command listed for sim-0003"
    );
}
