//! `--webhook URL`: a JSON POST for every alert that starts and every alert that ends.
//!
//! Alerts are computed from the clock, so a watcher thread re-evaluates them every
//! [`TICK`] and sends the difference. Notices go through a bounded queue to one sender
//! thread that retries with backoff; when the queue is full (the receiver is down for
//! long), new notices are dropped and counted, so neither the MQTT ingest nor the pages
//! ever wait on the webhook. The first evaluation after start announces every open alert.
//!
//! `http://` and `https://` URLs. Over https the receiver's certificate must chain to a CA
//! in the system store (a chat robot such as WeCom or DingTalk) or to the city's private CA
//! given with `--webhook-ca`, and must name the URL's host; the TLS client is the rustls
//! that rumqttc already links, so the dashboard carries one TLS stack.

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
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

/// An `http[s]://host[:port]/path` URL, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

impl Target {
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else {
            bail!("--webhook {url}: the URL must start with http:// or https://");
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
            None => (hostport, if tls { 443 } else { 80 }),
        };
        if host.is_empty() {
            bail!("--webhook {url}: no host");
        }
        Ok(Target { tls, host: host.to_string(), port, path: path.to_string() })
    }

    /// The URL for logs and errors, without its query: chat robots take their secret
    /// there (`?key=…`, `?access_token=…`), and it must not end up in the journal.
    fn shown(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let path = self.path.split('?').next().unwrap_or_default();
        format!("{scheme}://{}:{}{path}", self.host, self.port)
    }

    /// The Host header: the port only when it is not the scheme's default.
    fn host_header(&self) -> String {
        if self.port == if self.tls { 443 } else { 80 } {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Where notices go: the parsed URL and, for https, the TLS settings built once at start.
pub struct Client {
    target: Target,
    tls: Option<Arc<ClientConfig>>,
}

impl Client {
    /// Parses the URL and, for https, loads the trusted CAs: the system store plus the
    /// PEM certificates in `ca` (a city's private CA). Errors here stop the dashboard at
    /// start instead of failing every notice later.
    pub fn new(url: &str, ca: Option<&Path>) -> anyhow::Result<Client> {
        let target = Target::parse(url)?;
        let tls = match (target.tls, ca) {
            (true, ca) => Some(Arc::new(tls_config(ca)?)),
            (false, Some(ca)) => bail!(
                "--webhook-ca {} is only for https:// URLs, and --webhook {url} is plain http",
                ca.display()
            ),
            (false, None) => None,
        };
        Ok(Client { target, tls })
    }

    /// One POST; Ok when the receiver answers 2xx. Errors name the URL.
    pub fn post(&self, body: &[u8]) -> anyhow::Result<()> {
        let t = &self.target;
        let addr = (t.host.as_str(), t.port)
            .to_socket_addrs()
            .with_context(|| format!("{}: {} does not resolve", t.shown(), t.host))?
            .next()
            .with_context(|| format!("{}: {} does not resolve", t.shown(), t.host))?;
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("connecting to {}", t.shown()))?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
        match &self.tls {
            None => exchange(tcp, t, body),
            Some(config) => exchange(self.handshake(config.clone(), tcp)?, t, body),
        }
        .with_context(|| format!("posting to {}", t.shown()))
    }

    /// The TLS handshake, done before any request byte so a refused certificate is
    /// reported as such rather than as a failed write.
    fn handshake(
        &self,
        config: Arc<ClientConfig>,
        tcp: TcpStream,
    ) -> anyhow::Result<StreamOwned<ClientConnection, TcpStream>> {
        let t = &self.target;
        let name = ServerName::try_from(t.host.clone())
            .with_context(|| format!("{}: {} is not a valid TLS server name", t.shown(), t.host))?;
        let conn = ClientConnection::new(config, name)?;
        let mut tls = StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).with_context(|| {
                format!(
                    "TLS handshake with {} failed; its certificate must name {} and chain to a \
                     CA in the system store or to the one given with --webhook-ca",
                    t.shown(),
                    t.host
                )
            })?;
        }
        Ok(tls)
    }
}

/// The trusted CAs for https: the system store (where the chat robots' CAs are) plus the
/// PEM certificates in `ca`.
fn tls_config(ca: Option<&Path>) -> anyhow::Result<ClientConfig> {
    let mut roots = RootCertStore::empty();
    match rustls_native_certs::load_native_certs() {
        Ok(certs) => {
            roots.add_parsable_certificates(certs);
        }
        Err(e) => tracing::warn!("webhook: the system CA certificates could not be read: {e}"),
    }
    if let Some(path) = ca {
        let file = std::fs::File::open(path)
            .with_context(|| format!("--webhook-ca {}: cannot open", path.display()))?;
        let mut added = 0;
        for cert in rustls_pemfile::certs(&mut BufReader::new(file)) {
            let cert = cert.with_context(|| format!("--webhook-ca {}: bad PEM", path.display()))?;
            roots.add(cert).with_context(|| {
                format!("--webhook-ca {}: not a usable CA certificate", path.display())
            })?;
            added += 1;
        }
        if added == 0 {
            bail!("--webhook-ca {}: no PEM certificate in the file", path.display());
        }
    }
    if roots.is_empty() {
        tracing::warn!(
            "webhook: no trusted CA certificates (install ca-certificates or pass --webhook-ca); every https notice will fail"
        );
    }
    Ok(ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
}

/// Writes the request and reads the status line over a plain or a TLS stream.
fn exchange(mut s: impl Read + Write, t: &Target, body: &[u8]) -> anyhow::Result<()> {
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: content-sync-fleet\r\n\r\n",
        t.path,
        t.host_header(),
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    s.flush()?;
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

/// Counters for the log and /metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub sent: AtomicU64,
    /// Notices given up after [`ATTEMPTS`] tries.
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    /// Failed attempts, retries included: rises at the first refused connection or
    /// certificate, about a minute and a half before the notice is given up.
    pub errors: AtomicU64,
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
pub fn start(app: Arc<App>, client: Client) -> anyhow::Result<Vec<std::thread::JoinHandle<()>>> {
    let (tx, rx) = sync_channel::<Notice>(QUEUE);
    let stats = app.webhook_stats.clone();
    let watch_app = app.clone();
    let watcher = std::thread::Builder::new()
        .name("fleet-webhook-watch".into())
        .spawn(move || watch(watch_app, tx))?;
    let sender = std::thread::Builder::new()
        .name("fleet-webhook-send".into())
        .spawn(move || send(app, client, rx, stats))?;
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

fn send(app: Arc<App>, client: Client, rx: Receiver<Notice>, stats: Arc<Stats>) {
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
            match client.post(&body) {
                Ok(()) => {
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(e) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
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
    fn urls_parse_with_the_default_port_of_their_scheme() {
        let t = Target::parse("http://127.0.0.1:9000/hook?x=1").expect("valid");
        assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("127.0.0.1", 9000, "/hook?x=1"));
        assert_eq!(Target::parse("http://relay").expect("valid").port, 80);
        let t = Target::parse("https://oapi.dingtalk.com/robot/send?access_token=s3cret")
            .expect("valid");
        assert_eq!((t.tls, t.host.as_str(), t.port), (true, "oapi.dingtalk.com", 443));
        assert_eq!(t.host_header(), "oapi.dingtalk.com");
        assert_eq!(t.shown(), "https://oapi.dingtalk.com:443/robot/send", "no secret in logs");
        let t = Target::parse("https://10.1.2.3:8443").expect("valid");
        assert_eq!(
            (t.port, t.path.as_str(), t.host_header().as_str()),
            (8443, "/", "10.1.2.3:8443")
        );
        let err = Target::parse("ftp://relay/hook").expect_err("not HTTP");
        assert!(err.to_string().contains("http:// or https://"), "{err}");
        assert!(Target::parse("https://:443/x").is_err(), "no host");
    }

    #[test]
    fn a_webhook_ca_is_refused_for_plain_http_and_must_hold_a_certificate() {
        let dir = tempfile::tempdir().expect("temp dir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let err = Client::new("http://relay/hook", Some(&empty)).err().expect("http with a CA");
        assert!(err.to_string().contains("only for https://"), "{err}");
        let err = Client::new("https://relay/hook", Some(&empty)).err().expect("no certificate");
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        let missing = dir.path().join("missing.pem");
        let err = Client::new("https://relay/hook", Some(&missing)).err().expect("no file");
        assert!(err.to_string().contains("missing.pem"), "{err}");
        assert!(Client::new("https://relay/hook", None).is_ok(), "system roots only");
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
