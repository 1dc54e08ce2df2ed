//! The systemd notify protocol and the service watchdog.
//!
//! The kiosk runs as a `Type=notify` service with `WatchdogSec=`. systemd restarts it when
//! the `WATCHDOG=1` pings stop, so the pings must stop when any part of the kiosk that a
//! resident depends on hangs, not only when the whole process dies. Each such thread
//! therefore registers a [`Heartbeat`] and bumps it from its own loop — in the kiosk (`ui::run`)
//! `ui` (the Slint UI thread), `search` (the search worker thread) and `sync` (the sync
//! worker's tokio runtime; retired when no broker is configured). A small pinger thread
//! sends `WATCHDOG=1` only while *every* registered heartbeat is fresher than half the
//! watchdog interval. A hung UI, search or sync runtime lets its heartbeat go stale, the
//! pings stop, and systemd kills and restarts the kiosk after `WatchdogSec`.
//!
//! The protocol is a few datagrams to the socket named by `$NOTIFY_SOCKET`
//! (`sd_notify(3)`), written here with `std` alone: no libsystemd, no unsafe code. Outside
//! systemd (a developer's `cargo run`, tests) `$NOTIFY_SOCKET` is unset and every call is a
//! cheap no-op, so callers never branch on "am I under systemd".
//!
//! # How the kiosk wires it
//!
//! ```no_run
//! use std::time::Duration;
//! use kiosk::watchdog::Watchdog;
//!
//! // Pings start here. Until a heartbeat is registered they go out unconditionally: the
//! // start-up (first content install) is bounded by TimeoutStartSec, as READY=1 is not sent.
//! let watchdog = Watchdog::from_env();
//! // Register before the threads start, so a thread that never starts also stops the pings.
//! let ui_beat = watchdog.register("ui");
//! let worker_beat = watchdog.register("worker");
//!
//! // The worker thread beats from its loop, e.g. from a tokio interval task that runs
//! // on the same runtime as sync and apply, so a blocked runtime stops the beat:
//! std::thread::spawn(move || loop {
//!     worker_beat.beat();
//!     std::thread::sleep(Duration::from_secs(1));
//! });
//!
//! // The UI thread beats from a Slint timer, which runs inside the Slint event loop, so a
//! // hung event loop (a long blocking call in a callback) stops the beat:
//! //
//! //     let beat_timer = slint::Timer::default();
//! //     beat_timer.start(slint::TimerMode::Repeated, watchdog.beat_interval(), move || ui_beat.beat());
//! //
//! // and tells systemd it is ready once the first frame is on the screen. The software
//! // renderer has no rendering notifier (set_rendering_notifier returns Unsupported), and
//! // each turn of Slint's linuxkms event loop runs timers *before* it renders; so a timer
//! // started from a zero-delay timer fires on a later turn, after the first frame:
//! //
//! //     let wd = watchdog.clone();
//! //     slint::Timer::single_shot(Duration::ZERO, move || {
//! //         slint::Timer::single_shot(Duration::from_millis(10), move || wd.ready());
//! //     });
//! //     window.run()?;
//! //     watchdog.stopping();
//! //
//! // `ready()` sends READY=1 only once, so calling it again later is harmless.
//! //
//! // A worker that blocks on a channel beats on every turn of `recv_timeout(beat_interval)`,
//! // so an idle worker still beats and a worker stuck in one job does not.
//! # let _ = ui_beat;
//! ```
//!
//! `ready()` also prints `kiosk: first frame rendered` to stderr. The unit sends stderr to
//! the journal, which the kiosk image forwards to the serial console, where a technician
//! and `kiosk-image/test-boot` read it.

use std::fmt;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// The line `ready()` prints to stderr; the boot test waits for it on the serial console.
pub const FIRST_FRAME_LINE: &str = "kiosk: first frame rendered";

/// Test hook, read once by [`Watchdog::from_env`]: a folder in which a file named
/// `hang-<heartbeat name>-<pid>` makes the thread that beats that heartbeat block inside
/// [`Heartbeat::beat`] until the file is removed. It hangs the real thread (for `sync`, the
/// whole sync runtime, since the beat task runs on it), so the supervisor tests
/// (`tests/device.rs`) and a technician can check that each registered thread's hang stops
/// the pings. Unset in the unit and the image; when unset, `beat` only stores a time.
pub const HANG_DIR_ENV: &str = "KIOSK_TEST_HANG_DIR";
/// Set by [`Watchdog::restart_in_place`] for the image it starts: the restarts so far.
pub const RESTARTS_ENV: &str = "KIOSK_RESTARTS_IN_PLACE";

/// Where the notify datagrams go: a socket path, or a Linux abstract socket name
/// (`$NOTIFY_SOCKET` starting with `@`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Path(PathBuf),
    Abstract(Vec<u8>),
}

/// A connection to the service manager's notify socket. Each message is one datagram.
#[derive(Debug)]
struct Notifier {
    target: Target,
    socket: UnixDatagram,
}

impl Notifier {
    fn new(target: Target) -> io::Result<Notifier> {
        Ok(Notifier { target, socket: UnixDatagram::unbound()? })
    }

    fn send(&self, message: &str) -> io::Result<()> {
        let sent = match &self.target {
            Target::Path(path) => self.socket.send_to(message.as_bytes(), path)?,
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt as _;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                self.socket.send_to_addr(message.as_bytes(), &addr)?
            }
        };
        if sent != message.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short write to NOTIFY_SOCKET"));
        }
        Ok(())
    }
}

/// One registered heartbeat's state, shared by the beating thread and the pinger.
#[derive(Debug)]
struct Beat {
    name: String,
    /// Nanoseconds since `Shared::epoch` of the last beat.
    last_nanos: AtomicU64,
    /// A retired heartbeat no longer holds the pings back (its thread ended on purpose).
    retired: AtomicBool,
}

#[derive(Debug)]
struct Shared {
    notifier: Option<Notifier>,
    /// `WatchdogSec` as systemd passes it in `$WATCHDOG_USEC`; `None` when no watchdog.
    interval: Option<Duration>,
    epoch: Instant,
    beats: Mutex<Vec<Arc<Beat>>>,
    ready_sent: AtomicBool,
    pinger_started: AtomicBool,
    /// Whether the last pinger round found a stale heartbeat, so it reports a hang once.
    stalled: AtomicBool,
    /// Test hook ([`HANG_DIR_ENV`]): a folder where a file `hang-<name>-<pid>` blocks the
    /// thread that beats heartbeat `<name>` inside [`Heartbeat::beat`] while it exists.
    hang_dir: OnceLock<PathBuf>,
}

impl Shared {
    fn now_nanos(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn send(&self, message: &str) {
        if let Some(notifier) = &self.notifier {
            // A failed notify must not take the kiosk down: at worst systemd restarts it.
            if let Err(err) = notifier.send(message) {
                tracing::warn!("sd_notify {message:?} failed: {err}");
            }
        }
    }

    /// The names of registered heartbeats older than `max_age`.
    fn stale(&self, max_age: Duration) -> Vec<String> {
        self.stale_at(self.now_nanos(), max_age)
    }

    fn stale_at(&self, now: u64, max_age: Duration) -> Vec<String> {
        let max = u64::try_from(max_age.as_nanos()).unwrap_or(u64::MAX);
        let beats = self.beats.lock().unwrap_or_else(PoisonError::into_inner);
        beats
            .iter()
            .filter(|b| !b.retired.load(Ordering::Relaxed))
            .filter(|b| now.saturating_sub(b.last_nanos.load(Ordering::Relaxed)) > max)
            .map(|b| b.name.clone())
            .collect()
    }
}

/// The handle to systemd's notify socket and watchdog. Cheap to clone; all clones share
/// the same heartbeats.
#[derive(Clone, Debug)]
pub struct Watchdog {
    shared: Arc<Shared>,
}

/// A thread's heartbeat: call [`Heartbeat::beat`] from that thread's loop at least every
/// [`Watchdog::beat_interval`]. Dropping it does *not* unregister it — a thread that dies
/// (a panic unwinds and drops its heartbeat) must stop the pings too; call
/// [`Heartbeat::retire`] when a thread ends on purpose.
#[derive(Clone, Debug)]
pub struct Heartbeat {
    beat: Arc<Beat>,
    shared: Arc<Shared>,
}

impl Heartbeat {
    /// Records that this heartbeat's thread is alive and making progress.
    pub fn beat(&self) {
        if let Some(dir) = self.shared.hang_dir.get() {
            let trigger = dir.join(format!("hang-{}-{}", self.beat.name, std::process::id()));
            while trigger.exists() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.beat.last_nanos.store(self.shared.now_nanos(), Ordering::Relaxed);
    }

    /// How often to call [`Heartbeat::beat`]: the watchdog's [`Watchdog::beat_interval`].
    /// A thread waiting for work waits at most this long (`recv_timeout(beat.interval())`).
    pub fn interval(&self) -> Duration {
        Watchdog { shared: Arc::clone(&self.shared) }.beat_interval()
    }

    /// Stops counting this heartbeat: its thread ended on purpose.
    pub fn retire(self) {
        self.beat.retired.store(true, Ordering::Relaxed);
    }

    /// The name it was registered with.
    pub fn name(&self) -> &str {
        &self.beat.name
    }
}

impl Watchdog {
    /// Reads `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID` as systemd sets them.
    /// Without `$NOTIFY_SOCKET` every call is a no-op; without `$WATCHDOG_USEC` (or when
    /// `$WATCHDOG_PID` names another process) there are no pings, only READY and STATUS.
    pub fn from_env() -> Watchdog {
        let socket = std::env::var_os("NOTIFY_SOCKET");
        let usec = std::env::var("WATCHDOG_USEC").ok();
        let pid = std::env::var("WATCHDOG_PID").ok();
        let watchdog = Self::from_values(
            socket.as_deref(),
            usec.as_deref(),
            pid.as_deref(),
            std::process::id(),
        );
        if let Some(dir) = std::env::var_os(HANG_DIR_ENV).filter(|d| !d.is_empty()) {
            let _ = watchdog.shared.hang_dir.set(PathBuf::from(dir));
        }
        watchdog
    }

    /// A watchdog that never sends anything (for tests and tools that embed the UI).
    pub fn disabled() -> Watchdog {
        Self::build(None, None)
    }

    fn from_values(
        socket: Option<&std::ffi::OsStr>,
        usec: Option<&str>,
        pid: Option<&str>,
        own_pid: u32,
    ) -> Watchdog {
        let target = socket.and_then(parse_target);
        let notifier = target.and_then(|t| match Notifier::new(t) {
            Ok(n) => Some(n),
            Err(err) => {
                tracing::warn!("cannot open a socket for NOTIFY_SOCKET: {err}");
                None
            }
        });
        // sd_watchdog_enabled(3): WATCHDOG_PID, when set, must name this process, so a
        // child started by the kiosk (lp, espeak-ng) never pings on its behalf.
        let for_us = pid.is_none_or(|p| p.trim().parse::<u32>().is_ok_and(|p| p == own_pid));
        let interval = usec
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|&u| u > 0 && for_us)
            .map(Duration::from_micros);
        Self::build(notifier, interval)
    }

    fn build(notifier: Option<Notifier>, interval: Option<Duration>) -> Watchdog {
        let interval = if notifier.is_some() { interval } else { None };
        let watchdog = Watchdog {
            shared: Arc::new(Shared {
                notifier,
                interval,
                epoch: Instant::now(),
                beats: Mutex::new(Vec::new()),
                ready_sent: AtomicBool::new(false),
                pinger_started: AtomicBool::new(false),
                stalled: AtomicBool::new(false),
                hang_dir: OnceLock::new(),
            }),
        };
        // Pings start at once: with no heartbeat registered yet they go out unconditionally,
        // so a slow start (the first content install on a slow box) is bounded by systemd's
        // TimeoutStartSec, not cut short by WatchdogSec.
        watchdog.start_pinger();
        watchdog
    }

    /// Whether a service manager listens (`$NOTIFY_SOCKET` was set and usable).
    pub fn is_active(&self) -> bool {
        self.shared.notifier.is_some()
    }

    /// `WatchdogSec`, when systemd asked for watchdog pings.
    pub fn interval(&self) -> Option<Duration> {
        self.shared.interval
    }

    /// How often each thread should call [`Heartbeat::beat`]: an eighth of `WatchdogSec`,
    /// so a beat is never near the staleness limit of half `WatchdogSec` while the thread
    /// is healthy (one second when there is no watchdog).
    pub fn beat_interval(&self) -> Duration {
        self.shared
            .interval
            .map_or(Duration::from_secs(1), |i| (i / 8).max(Duration::from_millis(10)))
    }

    /// Registers a thread that must keep beating for the pings to continue. The heartbeat
    /// counts as fresh now, so the thread has half of `WatchdogSec` to start beating.
    /// Register right before the thread's loop starts (and before any blocking start-up
    /// work is done, if that work should count as a hang).
    pub fn register(&self, name: &str) -> Heartbeat {
        let beat = Arc::new(Beat {
            name: name.to_owned(),
            last_nanos: AtomicU64::new(self.shared.now_nanos()),
            retired: AtomicBool::new(false),
        });
        self.shared.beats.lock().unwrap_or_else(PoisonError::into_inner).push(Arc::clone(&beat));
        Heartbeat { beat, shared: Arc::clone(&self.shared) }
    }

    /// Tells systemd the kiosk is up (READY=1, once) and prints [`FIRST_FRAME_LINE`]. Call
    /// it when the first frame has been rendered; later calls do nothing.
    pub fn ready(&self) {
        if self.shared.ready_sent.swap(true, Ordering::SeqCst) {
            return;
        }
        // stderr, not only tracing: the line must reach the console whatever the log filter
        // is, because the boot test and a technician at the hall look for it there.
        eprintln!("{FIRST_FRAME_LINE}");
        self.shared.send(&format!("READY=1\nSTATUS=serving\nMAINPID={}", std::process::id()));
    }

    /// A one-line status shown by `systemctl status kiosk` (e.g. "applying content v42").
    /// Newlines are replaced so the text cannot inject other notify fields.
    pub fn status(&self, text: &str) {
        let clean: String =
            text.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }).collect();
        self.shared.send(&format!("STATUS={clean}"));
    }

    /// Tells systemd the kiosk is stopping on purpose, so a slow shutdown is not a hang.
    pub fn stopping(&self) {
        self.shared.send("STOPPING=1");
    }

    /// Runs this program again in the same process, for a planned restart (new content, a
    /// changed setting, a remote `restart`): `execve` keeps the pid, the arguments and the
    /// environment (`NOTIFY_SOCKET`, `WATCHDOG_*`), so systemd sees its main process go on.
    /// An exit would be restarted by `Restart=always` too, but every such start counts
    /// against `StartLimitBurst` (5 in 10 minutes, then `StartLimitAction=reboot`), and a
    /// city publishing a few fixes in a row must not reboot its kiosks. The new image pings
    /// from its start and sends READY=1 after its first frame, as on boot. Every file the
    /// kiosk opens (DRM, input, databases, sockets) is close-on-exec, so nothing is held
    /// twice. Returns only when the exec failed.
    pub fn restart_in_place(&self) -> io::Error {
        use std::os::unix::process::CommandExt as _;
        self.status("restarting in place");
        let mut args = std::env::args_os();
        let mut cmd = std::process::Command::new(own_program());
        if let Some(argv0) = args.next() {
            cmd.arg0(argv0);
        }
        cmd.env(RESTARTS_ENV, (restarts_in_place() + 1).to_string());
        cmd.args(args).exec()
    }

    /// Test hook ([`HANG_DIR_ENV`]): whether a file `<name>-<pid>-<n>` is in the hook
    /// folder, `n` being [`restarts_in_place`] — so a hook that restarts the kiosk fires
    /// once per pid, though the kiosk cannot remove the file (its view of /run is
    /// read-only). Always false outside tests.
    pub fn test_hook(&self, name: &str) -> bool {
        let Some(dir) = self.shared.hang_dir.get() else { return false };
        dir.join(format!("{name}-{}-{}", std::process::id(), restarts_in_place())).exists()
    }

    /// The names of heartbeats that are currently stale (older than half `WatchdogSec`,
    /// or than `beat_interval() * 4` without a watchdog); for diagnostics and tests.
    pub fn stale_heartbeats(&self) -> Vec<String> {
        self.shared.stale(self.max_age())
    }

    fn max_age(&self) -> Duration {
        self.shared.interval.map_or(self.beat_interval() * 4, |i| i / 2)
    }

    /// One pinger round: ping when every heartbeat is fresh, otherwise report the hang once.
    /// Returns whether it pinged.
    fn tick(&self) -> bool {
        let stale = self.shared.stale(self.max_age());
        if stale.is_empty() {
            if self.shared.stalled.swap(false, Ordering::Relaxed) {
                tracing::info!("watchdog: all heartbeats fresh again");
            }
            self.shared.send("WATCHDOG=1");
            true
        } else {
            if !self.shared.stalled.swap(true, Ordering::Relaxed) {
                let names = stale.join(", ");
                // Printed because the journal is where a technician looks after a restart.
                eprintln!("kiosk: watchdog: no heartbeat from {names}; stopping pings so systemd restarts the kiosk");
                self.shared.send(&format!("STATUS=hung: {names}"));
            }
            false
        }
    }

    fn start_pinger(&self) {
        let Some(interval) = self.shared.interval else { return };
        if self.shared.pinger_started.swap(true, Ordering::SeqCst) {
            return;
        }
        // Four rounds per WatchdogSec: a healthy kiosk pings well before the deadline even
        // when one round is delayed by a busy machine.
        let period = (interval / 4).max(Duration::from_millis(10));
        // A weak handle, so the thread ends when the last Watchdog and Heartbeat are gone.
        let shared = Arc::downgrade(&self.shared);
        let spawned = std::thread::Builder::new().name("watchdog".into()).spawn(move || {
            while let Some(shared) = shared.upgrade() {
                Watchdog { shared }.tick();
                std::thread::sleep(period);
            }
        });
        if let Err(err) = spawned {
            // Without the pinger systemd restarts the kiosk after WatchdogSec, which is
            // the right outcome for a process that cannot even start a thread.
            tracing::error!("cannot start the watchdog thread: {err}");
        }
    }
}

impl fmt::Display for Watchdog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.shared.notifier, self.shared.interval) {
            (None, _) => write!(f, "no service manager"),
            (Some(n), None) => write!(f, "notify {:?}, no watchdog", n.target),
            (Some(n), Some(i)) => write!(f, "notify {:?}, watchdog {} ms", n.target, i.as_millis()),
        }
    }
}

/// How many times this process has run itself again ([`Watchdog::restart_in_place`]).
pub fn restarts_in_place() -> u32 {
    std::env::var(RESTARTS_ENV).ok().and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// The running program's path. After a package upgrade replaced the binary, Linux names
/// the old one `… (deleted)`: the new one at the same path is the one to run.
fn own_program() -> PathBuf {
    match std::env::current_exe() {
        Ok(path) if path.exists() => path,
        Ok(path) => {
            let text = path.to_string_lossy();
            PathBuf::from(text.strip_suffix(" (deleted)").unwrap_or(&text).to_string())
        }
        Err(_) => PathBuf::from("/proc/self/exe"),
    }
}

/// Parses `$NOTIFY_SOCKET`: an absolute path, or `@name` for an abstract socket.
fn parse_target(value: &std::ffi::OsStr) -> Option<Target> {
    use std::os::unix::ffi::OsStrExt as _;
    let bytes = value.as_bytes();
    match bytes.first() {
        Some(b'/') => Some(Target::Path(PathBuf::from(value))),
        Some(b'@') => Some(Target::Abstract(bytes[1..].to_vec())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    /// A fake systemd: a datagram socket in a temp dir that collects notify messages.
    struct FakeSystemd {
        _dir: tempfile::TempDir,
        path: PathBuf,
        socket: UnixDatagram,
    }

    impl FakeSystemd {
        fn new() -> FakeSystemd {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("notify");
            let socket = UnixDatagram::bind(&path).expect("bind fake NOTIFY_SOCKET");
            socket.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
            FakeSystemd { _dir: dir, path, socket }
        }

        fn watchdog(&self, usec: Option<&str>) -> Watchdog {
            Watchdog::from_values(Some(self.path.as_os_str()), usec, None, std::process::id())
        }

        fn recv(&self) -> String {
            let mut buf = [0u8; 4096];
            let n = self.socket.recv(&mut buf).expect("a notify message within 5 s");
            String::from_utf8_lossy(&buf[..n]).into_owned()
        }

        fn drain(&self) -> Vec<String> {
            self.socket.set_nonblocking(true).expect("nonblocking");
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = self.socket.recv(&mut buf) {
                out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            self.socket.set_nonblocking(false).expect("blocking");
            out
        }
    }

    #[test]
    fn ready_is_sent_once_with_status() {
        let systemd = FakeSystemd::new();
        let wd = systemd.watchdog(None);
        wd.ready();
        wd.ready();
        let msg = systemd.recv();
        assert!(msg.lines().any(|l| l == "READY=1"), "{msg}");
        assert!(systemd.drain().is_empty(), "READY=1 must be sent only once");
    }

    #[test]
    fn status_cannot_inject_other_fields() {
        let systemd = FakeSystemd::new();
        let wd = systemd.watchdog(None);
        wd.status("syncing\nREADY=1");
        let msg = systemd.recv();
        assert_eq!(msg, "STATUS=syncing READY=1");
        assert_eq!(msg.lines().count(), 1);
    }

    #[test]
    fn start_up_pings_before_any_heartbeat_exists() {
        let systemd = FakeSystemd::new();
        let _wd = systemd.watchdog(Some("400000"));
        // Nothing registered yet (the kiosk is still installing its first content).
        assert_eq!(systemd.recv(), "WATCHDOG=1");
        assert_eq!(systemd.recv(), "WATCHDOG=1");
    }

    #[test]
    fn pings_while_every_heartbeat_is_fresh() {
        let systemd = FakeSystemd::new();
        // 400 ms WatchdogSec: the pinger runs every 100 ms.
        let wd = systemd.watchdog(Some("400000"));
        let ui = wd.register("ui");
        let worker = wd.register("worker");
        for _ in 0..3 {
            ui.beat();
            worker.beat();
            assert_eq!(systemd.recv(), "WATCHDOG=1");
        }
    }

    /// Sets a heartbeat's last beat to `secs` after the watchdog's epoch.
    fn beat_at(beat: &Heartbeat, secs: u64) {
        beat.beat.last_nanos.store(secs * 1_000_000_000, Ordering::Relaxed);
    }

    #[test]
    fn one_stale_heartbeat_is_enough_to_hold_the_pings() {
        let systemd = FakeSystemd::new();
        let wd = systemd.watchdog(Some("60000000"));
        let ui = wd.register("ui");
        let worker = wd.register("worker");
        let half = Duration::from_secs(30);
        // At t=100 s the UI beat a second ago but the worker last beat at t=40 s.
        beat_at(&ui, 99);
        beat_at(&worker, 40);
        assert_eq!(wd.shared.stale_at(100_000_000_000, half), vec!["worker".to_string()]);
        beat_at(&worker, 99);
        assert!(wd.shared.stale_at(100_000_000_000, half).is_empty());
        beat_at(&ui, 10);
        assert_eq!(wd.shared.stale_at(100_000_000_000, half), vec!["ui".to_string()]);
    }

    #[test]
    fn a_heartbeat_that_stops_stops_the_pings_until_it_resumes() {
        let systemd = FakeSystemd::new();
        // 1 s WatchdogSec: stale after 500 ms, pinger every 250 ms.
        let wd = systemd.watchdog(Some("1000000"));
        let ui = wd.register("ui");
        let worker = wd.register("worker");
        let stop = Arc::new(AtomicBool::new(false));
        let ui_alive = Arc::clone(&stop);
        let ui_thread = std::thread::spawn(move || {
            while !ui_alive.load(Ordering::Relaxed) {
                ui.beat();
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        // The worker "hangs": it never beats. After it goes stale the pings stop and the
        // status names it.
        let mut saw_hang = false;
        for _ in 0..50 {
            let msg = systemd.recv();
            if msg.starts_with("STATUS=hung:") {
                assert_eq!(msg, "STATUS=hung: worker", "only the worker stopped beating");
                saw_hang = true;
                break;
            }
        }
        assert!(saw_hang, "the status must name the hung worker");
        systemd.socket.set_read_timeout(Some(Duration::from_millis(600))).expect("timeout");
        let mut buf = [0u8; 64];
        assert!(systemd.socket.recv(&mut buf).is_err(), "no ping while the worker is hung");
        // The worker recovers: pings resume.
        worker.beat();
        systemd.socket.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        assert_eq!(systemd.recv(), "WATCHDOG=1");
        stop.store(true, Ordering::Relaxed);
        ui_thread.join().expect("ui thread");
    }

    #[test]
    fn a_retired_heartbeat_no_longer_holds_the_pings() {
        let systemd = FakeSystemd::new();
        let wd = systemd.watchdog(Some("60000000"));
        let done = wd.register("one-shot");
        let main = wd.register("main");
        beat_at(&done, 1);
        beat_at(&main, 1);
        let later = 100_000_000_000;
        assert_eq!(
            wd.shared.stale_at(later, Duration::from_secs(30)),
            vec!["one-shot".to_string(), "main".to_string()]
        );
        done.retire();
        assert_eq!(wd.shared.stale_at(later, Duration::from_secs(30)), vec!["main".to_string()]);
    }

    #[test]
    fn the_hang_hook_blocks_the_beating_thread_until_its_file_goes() {
        let systemd = FakeSystemd::new();
        let wd = systemd.watchdog(Some("60000000"));
        let hooks = tempfile::tempdir().expect("temp dir");
        wd.shared.hang_dir.set(hooks.path().to_path_buf()).expect("set once");
        let search = wd.register("search");
        let trigger = hooks.path().join(format!("hang-search-{}", std::process::id()));
        std::fs::write(&trigger, b"").expect("trigger");
        let beats = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&beats);
        let thread = std::thread::spawn(move || {
            search.beat();
            counted.fetch_add(1, Ordering::SeqCst);
        });
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(beats.load(Ordering::SeqCst), 0, "beat() must block while the file exists");
        std::fs::remove_file(&trigger).expect("remove trigger");
        thread.join().expect("the thread resumes once the file is gone");
        assert_eq!(beats.load(Ordering::SeqCst), 1);
        // A heartbeat tells its thread how often to beat: WatchdogSec / 8.
        assert_eq!(wd.register("ui").interval(), Duration::from_millis(7500));
    }

    #[test]
    fn without_notify_socket_everything_is_a_no_op() {
        let wd = Watchdog::from_values(None, Some("1000000"), None, 1);
        assert!(!wd.is_active());
        assert_eq!(wd.interval(), None);
        let beat = wd.register("ui");
        beat.beat();
        wd.ready();
        wd.status("x");
        assert_eq!(wd.to_string(), "no service manager");
    }

    #[test]
    fn watchdog_pid_of_another_process_disables_pings() {
        let systemd = FakeSystemd::new();
        let wd =
            Watchdog::from_values(Some(systemd.path.as_os_str()), Some("1000000"), Some("1"), 4242);
        assert!(wd.is_active());
        assert_eq!(wd.interval(), None, "WATCHDOG_PID=1 is not us");
        let ours = Watchdog::from_values(
            Some(systemd.path.as_os_str()),
            Some("1000000"),
            Some("4242"),
            4242,
        );
        assert_eq!(ours.interval(), Some(Duration::from_secs(1)));
    }

    #[test]
    fn notify_socket_forms() {
        assert_eq!(
            parse_target(OsStr::new("/run/systemd/notify")),
            Some(Target::Path("/run/systemd/notify".into()))
        );
        assert_eq!(parse_target(OsStr::new("@sd")), Some(Target::Abstract(b"sd".to_vec())));
        assert_eq!(parse_target(OsStr::new("relative")), None);
        assert_eq!(parse_target(OsStr::new("")), None);
    }

    #[test]
    fn abstract_socket_receives() {
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("kiosk-wd-test-{}", std::process::id());
        let addr =
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("addr");
        let listener = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        listener.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let wd = Watchdog::from_values(Some(OsStr::new(&format!("@{name}"))), None, None, 1);
        wd.status("hello");
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).expect("message");
        assert_eq!(&buf[..n], b"STATUS=hello");
    }
}
