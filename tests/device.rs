//! The device: the systemd unit, the example config, the Debian package metadata, and the
//! watchdog under a small systemd-like supervisor.
//!
//! The supervisor test re-runs this test binary as its child (`watchdog_child_process`,
//! ignored unless spawned with `KIOSK_WATCHDOG_CHILD`), so the child exercises the real
//! `kiosk::watchdog` module exactly as the kiosk does: a "ui" and a "worker" heartbeat, the
//! real search worker thread (`ui::worker::SearchWorker`, watched like `ui::run` does), and,
//! when the supervisor names a broker, the real sync worker (`sync::spawn_with` with its
//! "sync" heartbeat); READY=1, and WATCHDOG=1 pings to `$NOTIFY_SOCKET` every `$WATCHDOG_USEC`.

use std::collections::BTreeSet;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiosk::config::Config;
use kiosk::watchdog::{Watchdog, HANG_DIR_ENV};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// A systemd unit file as (section, key, value) triples, in order.
fn parse_unit(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some((k, v)) = line.split_once('=') {
            out.push((section.clone(), k.trim().to_owned(), v.trim().to_owned()));
        } else {
            panic!("kiosk.service: a line that is neither a section nor a key: {line:?}");
        }
    }
    out
}

fn values<'a>(unit: &'a [(String, String, String)], section: &str, key: &str) -> Vec<&'a str> {
    unit.iter().filter(|(s, k, _)| s == section && k == key).map(|(_, _, v)| v.as_str()).collect()
}

fn value<'a>(unit: &'a [(String, String, String)], section: &str, key: &str) -> &'a str {
    let v = values(unit, section, key);
    assert!(!v.is_empty(), "kiosk.service: [{section}] {key}= is missing");
    v[v.len() - 1]
}

/// Parses a systemd time span like `30s`, `2min`, `500ms`, `1min 30s` (the units we use).
fn timespan(text: &str) -> Duration {
    let mut total = Duration::ZERO;
    for part in text.split_whitespace() {
        let split = part.find(|c: char| !c.is_ascii_digit()).unwrap_or(part.len());
        let (num, unit) = part.split_at(split);
        let n: u64 = num.parse().unwrap_or_else(|_| panic!("bad time span {text:?}"));
        total += match unit {
            "" | "s" | "sec" => Duration::from_secs(n),
            "ms" | "msec" => Duration::from_millis(n),
            "m" | "min" => Duration::from_secs(60 * n),
            "h" => Duration::from_secs(3600 * n),
            other => panic!("unknown time unit {other:?} in {text:?}"),
        };
    }
    total
}

#[test]
fn unit_is_a_notify_service_with_a_watchdog_and_restart_limits() {
    let unit = parse_unit(&read("kiosk-image/kiosk.service"));
    assert_eq!(
        value(&unit, "Service", "Type"),
        "notify",
        "READY=1 after the first frame needs Type=notify"
    );
    let watchdog = timespan(value(&unit, "Service", "WatchdogSec"));
    assert!(
        watchdog >= Duration::from_secs(5),
        "WatchdogSec={watchdog:?} would kill a kiosk busy for a moment"
    );
    assert_eq!(value(&unit, "Service", "Restart"), "always");
    assert!(timespan(value(&unit, "Unit", "StartLimitIntervalSec")) > Duration::ZERO);
    let burst: u32 =
        value(&unit, "Unit", "StartLimitBurst").parse().expect("StartLimitBurst is a number");
    assert!(burst >= 2);
    let action = values(&unit, "Unit", "StartLimitAction")
        .into_iter()
        .chain(values(&unit, "Unit", "FailureAction"))
        .last();
    assert!(
        matches!(action, Some("reboot" | "reboot-force" | "reboot-immediate")),
        "after the restart limit the kiosk must reboot, not stay dark: {action:?}"
    );
    assert_eq!(value(&unit, "Service", "User"), "kiosk", "the kiosk never runs as root");
    assert!(value(&unit, "Service", "ExecStart").starts_with("/usr/bin/kiosk "));
    assert_eq!(value(&unit, "Install", "WantedBy"), "multi-user.target");
    assert!(values(&unit, "Service", "Environment").contains(&"SLINT_BACKEND=linuxkms"));
    assert!(value(&unit, "Unit", "Conflicts")
        .split_whitespace()
        .any(|u| u == "getty@tty1.service"));
}

#[test]
fn unit_is_sandboxed_but_can_reach_screen_touch_and_data() {
    let unit = parse_unit(&read("kiosk-image/kiosk.service"));
    for (key, want) in [
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("DevicePolicy", "closed"),
        ("CapabilityBoundingSet", ""),
    ] {
        assert_eq!(value(&unit, "Service", key), want, "{key}=");
    }
    assert_eq!(value(&unit, "Service", "ReadWritePaths"), "/var/lib/kiosk");
    let devices = values(&unit, "Service", "DeviceAllow");
    assert!(
        devices.iter().any(|d| d.starts_with("char-drm") && d.ends_with("rw")),
        "DRM/KMS: {devices:?}"
    );
    assert!(devices.iter().any(|d| d.starts_with("char-input")), "touch via libinput: {devices:?}");
    let groups: BTreeSet<&str> =
        value(&unit, "Service", "SupplementaryGroups").split_whitespace().collect();
    for g in ["video", "input", "render"] {
        assert!(groups.contains(g), "SupplementaryGroups lacks {g}");
    }
    let families: BTreeSet<&str> =
        value(&unit, "Service", "RestrictAddressFamilies").split_whitespace().collect();
    assert_eq!(families, BTreeSet::from(["AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"]));
    assert!(values(&unit, "Service", "SystemCallFilter").contains(&"@system-service"));
    // PrivateDevices=yes would hide /dev/dri and /dev/input and leave a black screen.
    assert!(values(&unit, "Service", "PrivateDevices").iter().all(|v| *v != "yes"));
}

fn systemd_analyze() -> Option<PathBuf> {
    ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// The unit with ExecStart pointing at the kiosk binary this test run built, since
/// `systemd-analyze verify` insists the command exists.
fn unit_for_verify(dir: &Path) -> PathBuf {
    let text = read("kiosk-image/kiosk.service").replace(
        "ExecStart=/usr/bin/kiosk ",
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_kiosk")),
    );
    let path = dir.join("kiosk.service");
    std::fs::write(&path, text).expect("write the unit copy");
    path
}

#[test]
fn systemd_accepts_the_unit_and_rates_it_ok_or_better() {
    let Some(analyze) = systemd_analyze() else {
        eprintln!("systemd-analyze is not installed: only the parsed checks ran");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let unit = unit_for_verify(dir.path());
    let verify = Command::new(&analyze)
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("run systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&verify.stderr);
    // Lines about other units (a container's own unit files) are not ours to judge.
    let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("kiosk.service")).collect();
    assert!(verify.status.success() && ours.is_empty(), "systemd-analyze verify: {stderr}");

    let security = Command::new(&analyze)
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .output()
        .expect("run systemd-analyze security");
    let out = String::from_utf8_lossy(&security.stdout);
    let overall = out.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_else(|| {
        panic!(
            "no rating from systemd-analyze security: {out}{}",
            String::from_utf8_lossy(&security.stderr)
        )
    });
    assert!(
        ["PERFECT", "SAFE", "OK"].iter().any(|rating| overall.contains(rating)),
        "the sandbox must rate OK or better: {overall}"
    );
}

#[test]
fn example_config_sets_every_key_to_its_default() {
    let path = repo("kiosk.example.toml");
    let config = Config::load(&path).expect("kiosk.example.toml parses into Config");
    // The example says "a missing key takes the default shown below": it must be true.
    assert_eq!(
        config,
        Config::default(),
        "kiosk.example.toml shows values that are not the defaults"
    );

    let example: toml::Table = toml::from_str(&read("kiosk.example.toml")).expect("valid TOML");
    let defaults = toml::Table::try_from(Config::default()).expect("Config serialises to TOML");
    let keys = |t: &toml::Table| t.keys().cloned().collect::<BTreeSet<_>>();
    let missing: Vec<_> = keys(&defaults).difference(&keys(&example)).cloned().collect();
    assert!(missing.is_empty(), "kiosk.example.toml does not document: {missing:?}");
    // Every key comes with a comment right above it saying what it does.
    let text = read("kiosk.example.toml");
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if let Some((key, _)) = line.split_once(" = ").filter(|_| !line.starts_with('#')) {
            assert!(
                i > 0 && lines[i - 1].starts_with('#'),
                "key {key} in kiosk.example.toml has no comment"
            );
        }
    }
}

#[test]
fn deb_metadata_packages_existing_files_and_the_right_dependencies() {
    let manifest: toml::Table = toml::from_str(&read("Cargo.toml")).expect("Cargo.toml parses");
    let deb = manifest
        .get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("deb"))
        .and_then(toml::Value::as_table)
        .expect("[package.metadata.deb] exists");
    let depends = deb.get("depends").and_then(toml::Value::as_str).expect("depends");
    for pkg in ["fonts-noto-cjk", "espeak-ng", "espeak-ng-data", "$auto"] {
        assert!(depends.split(',').any(|d| d.trim() == pkg), "depends lacks {pkg}: {depends}");
    }
    let assets = deb.get("assets").and_then(toml::Value::as_array).expect("assets");
    let mut dests = BTreeSet::new();
    for asset in assets {
        let fields: Vec<&str> = asset
            .as_array()
            .expect("asset triple")
            .iter()
            .filter_map(toml::Value::as_str)
            .collect();
        let [source, dest, _mode] = fields[..] else {
            panic!("asset is not [source, dest, mode]: {asset}")
        };
        if !source.starts_with("target/") {
            assert!(repo(source).exists(), "asset {source} does not exist");
        }
        dests.insert(dest.to_owned());
    }
    assert!(dests.contains("usr/bin/kiosk"));
    assert!(dests.contains("etc/kiosk/kiosk.toml"), "the config must be a conffile under /etc");
    let units =
        deb.get("systemd-units").and_then(|u| u.get("unit-scripts")).and_then(toml::Value::as_str);
    let units = repo(units.expect("systemd-units.unit-scripts"));
    for file in ["kiosk.service", "kiosk.sysusers", "kiosk.tmpfile"] {
        assert!(units.join(file).exists(), "{file} missing next to the unit");
    }
    let scripts =
        deb.get("maintainer-scripts").and_then(toml::Value::as_str).expect("maintainer-scripts");
    let postinst = std::fs::read_to_string(repo(scripts).join("postinst")).expect("postinst");
    assert!(
        postinst.contains("#DEBHELPER#"),
        "cargo-deb inserts sysusers/tmpfiles/systemd steps there"
    );
    assert!(read("kiosk-image/kiosk.sysusers").lines().any(|l| l.starts_with("u kiosk ")));
    assert!(read("kiosk-image/kiosk.tmpfile").lines().any(|l| l.starts_with("d /var/lib/kiosk ")));
}

// ---------------------------------------------------------------------------------------
// The watchdog under a systemd-like supervisor.

const CHILD_ENV: &str = "KIOSK_WATCHDOG_CHILD";

/// The child's real search thread (`kiosk::ui::worker`, only built with the UI).
#[cfg(feature = "ui")]
mod child_search {
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

    use kiosk::content::Kind;
    use kiosk::ui::worker::{Finder, Hit, SearchWorker};
    use kiosk::watchdog::Watchdog;

    /// The query the child's search backend never finishes, like a search stuck in the index.
    const STUCK_QUERY: &str = "卡住";

    /// A search backend that answers at once, except [`STUCK_QUERY`], which never returns.
    struct ChildFinder;

    impl Finder for ChildFinder {
        fn find(&mut self, query: &str, _: &[Kind], _: usize) -> anyhow::Result<(Vec<Hit>, u64)> {
            if query == STUCK_QUERY {
                // Bounded like the child itself, so an orphan does not live forever.
                std::thread::sleep(Duration::from_secs(120));
            }
            Ok((Vec::new(), 7))
        }

        fn suggest(&mut self, _: &str, _: usize) -> Vec<String> {
            Vec::new()
        }
    }

    /// Starts the search worker watched as `ui::run` watches it, asks one query (the answer
    /// is reported on `STATUS=`), and returns what the child's main loop calls each turn:
    /// once `stuck` exists, it asks [`STUCK_QUERY`].
    pub fn start(watchdog: &Watchdog, stuck: PathBuf) -> impl FnMut() {
        // Answers run on the search thread itself (no event loop here).
        let search = SearchWorker::start(Some(Box::new(ChildFinder)), Arc::new(|job| job()));
        search.watch(watchdog.register("search"));
        let reporter = watchdog.clone();
        search.ask(1, "政务公开".into(), Vec::new(), move |answer| {
            reporter.status(&format!("search answered: {} hits", answer.total));
        });
        let mut asked = false;
        move || {
            if !asked && stuck.exists() {
                search.ask(2, STUCK_QUERY.into(), Vec::new(), |_| {});
                asked = true;
            }
        }
    }
}

/// Not a test on its own: the "kiosk" process the supervisor tests start. It uses the real
/// watchdog like the kiosk does, and hangs one of its threads when the supervisor asks:
/// - `hang-worker-<pid>` in its directory: its worker thread stops beating;
/// - `stuck-search-<pid>`: it asks its real search worker a query that never ends;
/// - `hang-sync-<pid>` (through [`HANG_DIR_ENV`]): the sync runtime's thread blocks.
///
/// With a `broker` file (an MQTT URL) it starts the real sync worker against it (as the
/// device named in a `device_id` file, if there is one). It reports
/// on `STATUS=` when the search worker answered and when sync's connection state changes.
#[test]
#[ignore = "child process of the watchdog supervisor tests; does nothing unless they start it"]
fn watchdog_child_process() {
    let Some(dir) = std::env::var_os(CHILD_ENV).map(PathBuf::from) else { return };
    let pid = std::process::id();
    let watchdog = Watchdog::from_env();
    assert!(watchdog.interval().is_some(), "the supervisor sets NOTIFY_SOCKET and WATCHDOG_USEC");
    // As ui::run does: sync first, with its heartbeat beaten on the sync runtime.
    let sync = std::fs::read_to_string(dir.join("broker")).ok().map(|url| {
        let device_id = std::fs::read_to_string(dir.join("device_id"))
            .unwrap_or_else(|_| format!("watchdog-child-{pid}"));
        let config = Config {
            device_id,
            data_dir: dir.join(format!("data-{pid}")),
            broker: url.trim().to_owned(),
            ..Config::default()
        };
        kiosk::sync::spawn_with(&config, Arc::default(), Some(watchdog.register("sync")))
    });
    let ui = watchdog.register("ui");
    let worker = watchdog.register("worker");
    #[cfg(feature = "ui")]
    let mut search = child_search::start(&watchdog, dir.join(format!("stuck-search-{pid}")));
    #[cfg(not(feature = "ui"))]
    let search = || {};
    let every = watchdog.beat_interval();
    let hang = dir.join(format!("hang-worker-{pid}"));
    std::thread::spawn(move || loop {
        if !hang.exists() {
            worker.beat();
        }
        std::thread::sleep(every);
    });
    watchdog.ready();
    let mut sync_said = String::new();
    // A bound, so a child orphaned by a crashed test run does not live forever.
    let end = Instant::now() + Duration::from_secs(120);
    while Instant::now() < end {
        // A planned restart, as ui::run does one: the same process runs itself again.
        if watchdog.test_hook("restart") {
            let err = watchdog.restart_in_place();
            panic!("restart in place failed: {err}");
        }
        ui.beat();
        search();
        if let Some(sync) = &sync {
            let st = sync.status();
            let now = match (st.connected, st.last_error) {
                (true, _) => "sync: connected".to_owned(),
                (false, Some(e)) => format!("sync: offline, {e}"),
                (false, None) => "sync: connecting".to_owned(),
            };
            if now != sync_said {
                watchdog.status(&now);
                sync_said = now;
            }
        }
        std::thread::sleep(every);
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Ready(u32),
    Ping(u32),
    Status(u32, String),
    /// The watchdog expired: the old pid was killed and a new one started.
    Restarted {
        old: u32,
        new: u32,
    },
}

/// What systemd does for `Type=notify` + `WatchdogSec=` + `Restart=always`, in miniature:
/// the watchdog timer runs from the start of each process; a WATCHDOG=1 resets it; when it
/// expires the process is killed and started again.
struct Supervisor {
    dir: tempfile::TempDir,
    socket: UnixDatagram,
    watchdog: Duration,
    child: Child,
    last_ping: Instant,
    events: Vec<Event>,
}

impl Supervisor {
    fn start(watchdog: Duration) -> Supervisor {
        Self::start_with_broker(watchdog, None)
    }

    /// A child that also runs the real sync worker against `broker` (an MQTT URL).
    fn start_with_broker(watchdog: Duration, broker: Option<&str>) -> Supervisor {
        Self::start_in(tempfile::tempdir().expect("temp dir"), watchdog, broker)
    }

    /// [`Supervisor::start_with_broker`] in a prepared child directory.
    fn start_in(dir: tempfile::TempDir, watchdog: Duration, broker: Option<&str>) -> Supervisor {
        if let Some(url) = broker {
            std::fs::write(dir.path().join("broker"), url).expect("broker file");
        }
        let socket = UnixDatagram::bind(dir.path().join("notify")).expect("bind NOTIFY_SOCKET");
        socket.set_read_timeout(Some(Duration::from_millis(50))).expect("read timeout");
        let child = Self::spawn(dir.path(), watchdog);
        Supervisor { dir, socket, watchdog, child, last_ping: Instant::now(), events: Vec::new() }
    }

    fn spawn(dir: &Path, watchdog: Duration) -> Child {
        Command::new(std::env::current_exe().expect("own test binary"))
            .args([
                "device::watchdog_child_process",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir)
            .env("NOTIFY_SOCKET", dir.join("notify"))
            .env("WATCHDOG_USEC", watchdog.as_micros().to_string())
            .env(HANG_DIR_ENV, dir)
            .env_remove("WATCHDOG_PID")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the child")
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Supervises until `done` is true of the events so far, or `limit` passes.
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&[Event]) -> bool) -> bool {
        let end = Instant::now() + limit;
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            if done(&self.events) {
                return true;
            }
            if let Ok(n) = self.socket.recv(&mut buf) {
                let pid = self.pid();
                for line in String::from_utf8_lossy(&buf[..n]).lines() {
                    match line {
                        "READY=1" => self.events.push(Event::Ready(pid)),
                        "WATCHDOG=1" => {
                            self.last_ping = Instant::now();
                            self.events.push(Event::Ping(pid));
                        }
                        _ => {
                            if let Some(status) = line.strip_prefix("STATUS=") {
                                self.events.push(Event::Status(pid, status.to_owned()));
                            }
                        }
                    }
                }
            }
            if self.last_ping.elapsed() > self.watchdog {
                let old = self.pid();
                // Child::kill sends SIGKILL, which also ends a stopped process.
                self.child.kill().expect("kill the hung child");
                self.child.wait().expect("reap the hung child");
                // Datagrams the dead process left behind are not the new one's.
                self.socket.set_nonblocking(true).expect("nonblocking");
                while self.socket.recv(&mut buf).is_ok() {}
                self.socket.set_nonblocking(false).expect("blocking");
                self.child = Self::spawn(self.dir.path(), self.watchdog);
                self.last_ping = Instant::now();
                self.events.push(Event::Restarted { old, new: self.pid() });
            }
        }
        done(&self.events)
    }

    fn wait_ready_and_pinging(&mut self, pid: u32) {
        let ok = self.run_until(Duration::from_secs(60), |ev| {
            let ready = ev.iter().position(|e| *e == Event::Ready(pid));
            ready.is_some_and(|i| ev[i..].contains(&Event::Ping(pid)))
        });
        assert!(ok, "child {pid} never became ready and pinged: {:?}", self.events);
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(sig: &str, pid: u32) {
    let status = Command::new("kill").args([sig, &pid.to_string()]).status().expect("run kill");
    assert!(status.success(), "kill {sig} {pid}");
}

#[test]
fn watchdog_restarts_a_stopped_kiosk() {
    let watchdog = Duration::from_secs(2);
    let mut sup = Supervisor::start(watchdog);
    let first = sup.pid();
    sup.wait_ready_and_pinging(first);

    // A frozen process: every thread stops, including the pinger.
    signal("-STOP", first);
    let from = sup.events.len();
    let restarted = sup.run_until(watchdog + Duration::from_secs(5), |ev| {
        ev[from..].iter().any(|e| matches!(e, Event::Restarted { old, .. } if *old == first))
    });
    assert!(restarted, "not restarted within WatchdogSec + 5 s: {:?}", &sup.events[from..]);
    let pings_while_stopped = sup.events[from..]
        .iter()
        .take_while(|e| !matches!(e, Event::Restarted { .. }))
        .filter(|e| **e == Event::Ping(first))
        .count();
    // At most one datagram can already have been in flight when SIGSTOP landed.
    assert!(pings_while_stopped <= 1, "a stopped kiosk kept pinging: {:?}", &sup.events[from..]);

    let second = sup.pid();
    assert_ne!(second, first, "a new process");
    sup.wait_ready_and_pinging(second);
}

/// A planned restart (new content, a setting, a remote `restart`) runs the kiosk again in
/// the same process: the supervisor sees the same pid become ready again and go on pinging,
/// and never has to start a new one — under systemd, no start counted against the limit.
#[test]
fn a_planned_restart_keeps_the_process_and_needs_no_supervisor_restart() {
    let mut sup = Supervisor::start(SYNC_WATCHDOG);
    let pid = sup.pid();
    sup.wait_ready_and_pinging(pid);
    let from = sup.events.len();
    // As the boot test does it: the file stays, the kiosk cannot remove it.
    std::fs::write(sup.dir.path().join(format!("restart-{pid}-0")), b"").expect("the hook file");
    let again = sup.run_until(Duration::from_secs(60), |ev| {
        let said =
            ev[from..].iter().position(|e| *e == Event::Status(pid, "restarting in place".into()));
        said.is_some_and(|i| {
            let rest = &ev[from + i..];
            rest.iter()
                .position(|e| *e == Event::Ready(pid))
                .is_some_and(|r| rest[r..].contains(&Event::Ping(pid)))
        })
    });
    assert!(again, "no restart in place: {:?}", &sup.events[from..]);
    // The image that runs now is a fresh one: it pings on without the supervisor's help.
    let from = sup.events.len();
    sup.run_until(SYNC_WATCHDOG * 2, |_| false);
    let after = &sup.events[from..];
    assert!(after.iter().filter(|e| **e == Event::Ping(pid)).count() >= 2, "{after:?}");
    assert_eq!(sup.pid(), pid, "the same child process");
    assert!(
        !sup.events.iter().any(|e| matches!(e, Event::Restarted { .. })),
        "the supervisor never had to start a new process: {:?}",
        sup.events
    );
}

#[test]
fn watchdog_restarts_a_kiosk_whose_worker_thread_hangs() {
    let watchdog = Duration::from_secs(2);
    let mut sup = Supervisor::start(watchdog);
    let first = sup.pid();
    sup.wait_ready_and_pinging(first);

    // Only the worker thread hangs; the UI thread and the pinger thread keep running.
    std::fs::write(sup.dir.path().join(format!("hang-worker-{first}")), b"").expect("hang trigger");
    let from = sup.events.len();
    // Staleness (WatchdogSec/2) plus the watchdog itself: within WatchdogSec + 5 s at 2 s.
    let restarted = sup.run_until(watchdog + Duration::from_secs(5), |ev| {
        ev[from..].iter().any(|e| matches!(e, Event::Restarted { old, .. } if *old == first))
    });
    assert!(restarted, "a hung worker did not get the kiosk restarted: {:?}", &sup.events[from..]);
    assert!(
        sup.events[from..].contains(&Event::Status(first, "hung: worker".into())),
        "systemctl status should name the hung thread: {:?}",
        &sup.events[from..]
    );
    let second = sup.pid();
    assert_ne!(second, first);
    sup.wait_ready_and_pinging(second);
}

impl Supervisor {
    /// Drops `file-<pid of the child>` into the child's directory: its hang trigger.
    fn trigger(&self, file: &str, pid: u32) {
        std::fs::write(self.dir.path().join(format!("{file}-{pid}")), b"").expect("hang trigger");
    }

    /// Supervises until the child with `pid` reports a status for which `ok` is true.
    fn wait_status(&mut self, pid: u32, what: &str, ok: impl Fn(&str) -> bool) {
        let seen = self.run_until(Duration::from_secs(60), |ev| {
            ev.iter().any(|e| matches!(e, Event::Status(p, s) if *p == pid && ok(s)))
        });
        assert!(seen, "child {pid} never reported {what}: {:?}", self.events);
    }

    /// After a hang was triggered in `pid`: the pings stop, systemctl status names the hung
    /// heartbeat, the child is killed and a new one becomes ready and pings.
    fn expect_restart_naming(&mut self, pid: u32, heartbeat: &str) {
        let from = self.events.len();
        // Staleness (WatchdogSec/2) plus the watchdog itself: within WatchdogSec + 5 s.
        let restarted = self.run_until(self.watchdog + Duration::from_secs(5), |ev| {
            ev[from..].iter().any(|e| matches!(e, Event::Restarted { old, .. } if *old == pid))
        });
        assert!(
            restarted,
            "a hung {heartbeat} did not get the kiosk restarted: {:?}",
            &self.events[from..]
        );
        let hung = format!("hung: {heartbeat}");
        assert!(
            self.events[from..].contains(&Event::Status(pid, hung.clone())),
            "systemctl status should say “{hung}”: {:?}",
            &self.events[from..]
        );
        let second = self.pid();
        assert_ne!(second, pid);
        self.wait_ready_and_pinging(second);
    }
}

#[cfg(feature = "ui")]
#[test]
fn watchdog_restarts_a_kiosk_whose_search_hangs() {
    let mut sup = Supervisor::start(Duration::from_secs(2));
    let first = sup.pid();
    sup.wait_ready_and_pinging(first);
    // The real search thread is alive and answers (then idles, beating on recv_timeout).
    sup.wait_status(first, "a search answer", |s| s == "search answered: 7 hits");
    // A search that never returns: only the search thread hangs.
    sup.trigger("stuck-search", first);
    sup.expect_restart_naming(first, "search");
}

/// WatchdogSec for the tests with the sync worker: it beats once a second (src/sync), so
/// its heartbeat needs a staleness limit (WatchdogSec/2) comfortably above that.
const SYNC_WATCHDOG: Duration = Duration::from_secs(4);

#[test]
fn watchdog_restarts_a_kiosk_whose_sync_runtime_hangs() {
    let broker = crate::sync::Broker::plain();
    let mut sup = Supervisor::start_with_broker(SYNC_WATCHDOG, Some(&broker.url()));
    let first = sup.pid();
    sup.wait_ready_and_pinging(first);
    sup.wait_status(first, "a connected sync worker", |s| s == "sync: connected");
    // The sync runtime's thread blocks (inside its heartbeat task, so the whole
    // current-thread runtime stops); the UI and search threads keep beating.
    sup.trigger("hang-sync", first);
    sup.expect_restart_naming(first, "sync");
}

#[test]
fn a_kiosk_whose_broker_is_unreachable_keeps_pinging() {
    // Nothing listens there: every connection attempt is refused and sync backs off.
    let url = format!("mqtt://127.0.0.1:{}", crate::util::free_port());
    let mut sup = Supervisor::start_with_broker(SYNC_WATCHDOG, Some(&url));
    let first = sup.pid();
    sup.wait_ready_and_pinging(first);
    sup.wait_status(first, "sync backing off", |s| {
        s.starts_with("sync: offline") && s.contains("retrying")
    });
    let from = sup.events.len();
    // Three watchdog periods of backing off (several retries) with an idle search thread.
    sup.run_until(SYNC_WATCHDOG * 3, |_| false);
    let during = &sup.events[from..];
    let restarts = during.iter().filter(|e| matches!(e, Event::Restarted { .. })).count();
    assert_eq!(restarts, 0, "an unreachable broker must not get the kiosk restarted: {during:?}");
    let hung = during.iter().any(|e| matches!(e, Event::Status(_, s) if s.starts_with("hung:")));
    assert!(!hung, "no heartbeat may go stale while sync backs off: {during:?}");
    let pings = during.iter().filter(|e| **e == Event::Ping(first)).count();
    // The pinger runs four rounds per WatchdogSec, so about twelve in this window; half of
    // that allows for a busy machine, and a kiosk whose pings stopped sends none.
    assert!(pings >= 6, "the kiosk kept pinging while sync backed off: {pings} pings {during:?}");
    assert_eq!(sup.pid(), first, "the same process throughout");
}

#[test]
fn a_kiosk_whose_sync_worker_stops_on_a_config_error_keeps_pinging() {
    let broker = crate::sync::Broker::plain();
    let dir = tempfile::tempdir().expect("temp dir");
    // Not a valid MQTT topic level: sync refuses to start and its thread ends.
    std::fs::write(dir.path().join("device_id"), "hall 01/a").expect("device_id file");
    let mut sup = Supervisor::start_in(dir, SYNC_WATCHDOG, Some(&broker.url()));
    let first = sup.pid();
    sup.wait_ready_and_pinging(first);
    sup.wait_status(first, "sync stopped", |s| s.contains("sync stopped"));
    let from = sup.events.len();
    sup.run_until(SYNC_WATCHDOG * 3, |_| false);
    let during = &sup.events[from..];
    // The kiosk still serves its installed content offline; a sync that gave up is not a
    // hang, and restarting would only repeat the same error until StartLimitAction=reboot.
    let restarts = during.iter().filter(|e| matches!(e, Event::Restarted { .. })).count();
    assert_eq!(
        restarts, 0,
        "a sync worker that stopped must not get the kiosk restarted: {during:?}"
    );
}
