//! `--webhook URL`: a JSON POST for every alert that starts and every alert that ends.
//!
//! Alerts are computed from the clock, so a watcher thread re-evaluates them every
//! [`TICK`] and sends the difference. Notices go through a bounded queue to one sender
//! thread that retries with backoff; when the queue is full (the receiver is down for
//! long), new notices are dropped and counted, so neither the MQTT ingest nor the pages
//! ever wait on the webhook. The first evaluation after start announces every open alert.
//!
//! Only `http://` URLs: the city runs the receiver (or a relay to a chat robot) on its own
//! network; no TLS client is linked for this.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::state::Alert;
use super::App;

/// How often alerts are re-evaluated.
pub const TICK: Duration = Duration::from_secs(1);
/// Notices waiting to be sent.
pub const QUEUE: usize = 10_000;
/// Attempts per notice before it is dropped.
const ATTEMPTS: u32 = 8;

/// The JSON body of one POST.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Notice {
    pub device: String,
    pub scope: Option<String>,
    pub kind: String,
    pub reason: String,
    pub since: DateTime<Utc>,
    /// `started` or `ended`.
    pub state: &'static str,
    /// When the dashboard saw the change.
    pub at: DateTime<Utc>,
}

/// An `http://host[:port]/path` URL, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    host: String,
    port: u16,
    path: String,
}

impl Target {
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        let Some(rest) = url.strip_prefix("http://") else {
            bail!("--webhook {url}: only http:// URLs are supported; put a relay on the city network in front of an https receiver");
        };
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse().with_context(|| format!("--webhook {url}: the port is not a number"))?,
            ),
            None => (hostport, 80),
        };
        if host.is_empty() {
            bail!("--webhook {url}: no host");
        }
        Ok(Target { host: host.to_string(), port, path: path.to_string() })
    }

    /// One POST; Ok when the receiver answers 2xx.
    fn post(&self, body: &[u8]) -> anyhow::Result<()> {
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()?
            .next()
            .with_context(|| format!("{} does not resolve", self.host))?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.set_write_timeout(Some(Duration::from_secs(10)))?;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: content-sync-fleet\r\n\r\n",
            self.path, self.host, self.port, body.len()
        );
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        let mut status = [0u8; 12];
        s.read_exact(&mut status)?;
        // "HTTP/1.1 200"
        let code = std::str::from_utf8(&status[9..12]).ok().and_then(|c| c.parse::<u16>().ok());
        match code {
            Some(c) if (200..300).contains(&c) => Ok(()),
            Some(c) => bail!("the webhook answered {c}"),
            None => bail!("the webhook's answer is not HTTP"),
        }
    }
}

/// Counters for the log and /metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
}

/// The identity of an alert across evaluations: its reason text may change (seconds
/// counting up), its start may not.
type Key = (String, &'static str, DateTime<Utc>);

fn key(a: &Alert) -> Key {
    (a.device.clone(), a.kind.label(), a.since)
}

fn notice(a: &Alert, state: &'static str, at: DateTime<Utc>) -> Notice {
    Notice {
        device: a.device.clone(),
        scope: a.scope.as_ref().map(ToString::to_string),
        kind: a.kind.label().to_string(),
        reason: a.reason.clone(),
        since: a.since,
        state,
        at,
    }
}

/// The notices from one evaluation to the next; `open` is updated.
pub fn diff(
    open: &mut BTreeMap<Key, Alert>,
    now_alerts: Vec<Alert>,
    at: DateTime<Utc>,
) -> Vec<Notice> {
    let mut next: BTreeMap<Key, Alert> = BTreeMap::new();
    for a in now_alerts {
        next.entry(key(&a)).or_insert(a);
    }
    let mut out = Vec::new();
    for (k, a) in open.iter() {
        if !next.contains_key(k) {
            out.push(notice(a, "ended", at));
        }
    }
    for (k, a) in &next {
        if !open.contains_key(k) {
            out.push(notice(a, "started", at));
        }
    }
    *open = next;
    out
}

/// Starts the watcher and the sender threads.
pub fn start(app: Arc<App>, url: &str) -> anyhow::Result<Vec<std::thread::JoinHandle<()>>> {
    let target = Target::parse(url)?;
    let (tx, rx) = sync_channel::<Notice>(QUEUE);
    let stats = app.webhook_stats.clone();
    let watch_app = app.clone();
    let watcher = std::thread::Builder::new()
        .name("fleet-webhook-watch".into())
        .spawn(move || watch(watch_app, tx))?;
    let sender = std::thread::Builder::new()
        .name("fleet-webhook-send".into())
        .spawn(move || send(app, target, rx, stats))?;
    Ok(vec![watcher, sender])
}

fn watch(app: Arc<App>, tx: SyncSender<Notice>) {
    let mut open = BTreeMap::new();
    while !app.stop.load(Ordering::Relaxed) {
        let now = Utc::now();
        let alerts = match app.fleet.lock() {
            Ok(f) => f.alerts(&app.rules, now),
            Err(_) => return,
        };
        for n in diff(&mut open, alerts, now) {
            match tx.try_send(n) {
                Ok(()) => {}
                Err(TrySendError::Full(n)) => {
                    let d = app.webhook_stats.dropped.fetch_add(1, Ordering::Relaxed);
                    if d.is_multiple_of(1000) {
                        tracing::warn!(
                            "webhook queue full: dropped the notice of {} {} ({} dropped so far)",
                            n.device,
                            n.kind,
                            d + 1
                        );
                    }
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
        std::thread::sleep(TICK);
    }
}

fn send(app: Arc<App>, target: Target, rx: Receiver<Notice>, stats: Arc<Stats>) {
    loop {
        let n = match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(n) => n,
            Err(RecvTimeoutError::Timeout) if app.stop.load(Ordering::Relaxed) => return,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let Ok(body) = serde_json::to_vec(&n) else { continue };
        let mut attempt = 0;
        loop {
            match target.post(&body) {
                Ok(()) => {
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(e) => {
                    attempt += 1;
                    if attempt >= ATTEMPTS || app.stop.load(Ordering::Relaxed) {
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            "webhook: giving up on the notice of {} {}: {e:#}",
                            n.device,
                            n.kind
                        );
                        break;
                    }
                    // 0.5 s, 1 s, 2 s … capped at 30 s.
                    let wait =
                        Duration::from_millis(500 << attempt.min(6)).min(Duration::from_secs(30));
                    tracing::info!("webhook: {e:#}; retrying in {wait:?}");
                    std::thread::sleep(wait);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::state::AlertKind;
    use super::*;

    #[test]
    fn urls_parse_and_https_is_refused_with_a_reason() {
        let t = Target::parse("http://127.0.0.1:9000/hook?x=1").expect("valid");
        assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("127.0.0.1", 9000, "/hook?x=1"));
        assert_eq!(Target::parse("http://relay").expect("valid").port, 80);
        let err = Target::parse("https://oapi.dingtalk.com/robot").expect_err("no TLS");
        assert!(err.to_string().contains("only http://"));
    }

    #[test]
    fn an_alert_is_announced_once_when_it_starts_and_once_when_it_ends() {
        let t0 = Utc::now();
        let a = Alert {
            device: "k1".into(),
            scope: None,
            kind: AlertKind::Offline,
            reason: "超过 3 秒无心跳 (no heartbeat for 4 s)".into(),
            since: t0,
        };
        let mut open = BTreeMap::new();
        let n = diff(&mut open, vec![a.clone()], t0);
        assert_eq!(n.iter().map(|n| n.state).collect::<Vec<_>>(), ["started"]);
        let later = Alert { reason: "超过 3 秒无心跳 (no heartbeat for 9 s)".into(), ..a };
        assert!(diff(&mut open, vec![later], t0).is_empty(), "a changing reason is the same alert");
        let n = diff(&mut open, vec![], t0);
        assert_eq!((n.len(), n[0].state, n[0].kind.as_str()), (1, "ended", "offline"));
    }
}
