//! Helpers shared by the integration-test modules: a real Mosquitto, free loopback ports,
//! polling with a deadline.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The Mosquitto binary, installed with apt when missing (CI and fresh machines).
pub fn mosquitto() -> PathBuf {
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

pub fn which(bin: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).exists()))
        .unwrap_or(false)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub fn wait_until(what: &str, timeout: Duration, ok: impl FnMut() -> bool) {
    wait_until_every(what, timeout, Duration::from_millis(50), ok);
}

/// [`wait_until`] with a chosen polling interval, for checks that are costly themselves
/// (a dashboard page render), so polling does not load the machine the other tests share.
pub fn wait_until_every(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut ok: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(every);
    }
}
