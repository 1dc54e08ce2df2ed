//! Connecting to the broker: URL parsing, TLS with a client certificate, and the reconnect
//! backoff. content-sync uses the same options, so both sides speak TLS the same way.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use rand::Rng as _;
use rumqttc::{MqttOptions, Transport};

use crate::config::Config;

/// Where and how to connect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Broker {
    /// `mqtt://host:port` (plain, for a bench) or `mqtts://host:port` (TLS).
    pub url: String,
    /// PEM CA certificate of the broker; required for `mqtts://`.
    pub ca: Option<PathBuf>,
    /// PEM client certificate and key; the certificate's CN is the MQTT identity.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl Broker {
    /// The kiosk's broker from its config, or `None` when it runs offline only.
    pub fn from_config(config: &Config) -> Option<Broker> {
        if config.broker.trim().is_empty() {
            return None;
        }
        let path = |p: &Path| (!p.as_os_str().is_empty()).then(|| p.to_path_buf());
        Some(Broker {
            url: config.broker.trim().to_string(),
            ca: path(&config.broker_ca),
            cert: path(&config.broker_cert),
            key: path(&config.broker_key),
        })
    }

    /// MQTT options for `client_id`, with TLS when the URL says so. Packets up to 64 MiB
    /// are accepted, because a whole city's manifest can be several megabytes.
    pub fn options(&self, client_id: &str) -> anyhow::Result<MqttOptions> {
        let (tls, rest) = if let Some(r) =
            self.url.strip_prefix("mqtts://").or_else(|| self.url.strip_prefix("ssl://"))
        {
            (true, r)
        } else if let Some(r) =
            self.url.strip_prefix("mqtt://").or_else(|| self.url.strip_prefix("tcp://"))
        {
            (false, r)
        } else {
            bail!("broker “{}” is not a URL like mqtts://host:8883 or mqtt://host:1883", self.url);
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse::<u16>().with_context(|| format!("broker port “{p}” is not a number"))?,
            ),
            None => (rest.to_string(), if tls { 8883 } else { 1883 }),
        };
        if host.is_empty() {
            bail!("broker “{}” names no host", self.url);
        }
        let mut opts = MqttOptions::new(client_id, host, port);
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_max_packet_size(64 << 20, 64 << 20);
        if tls {
            let ca_path = self
                .ca
                .as_ref()
                .context("a mqtts:// broker needs a CA certificate (broker_ca / --ca)")?;
            let ca = read(ca_path)?;
            let client_auth = match (&self.cert, &self.key) {
                (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
                (None, None) => None,
                _ => bail!("a client certificate needs both the certificate and its key"),
            };
            opts.set_transport(Transport::tls(ca, client_auth, None));
        } else if self.cert.is_some() {
            bail!(
                "a client certificate was given but the broker URL “{}” is not mqtts://",
                self.url
            );
        }
        Ok(opts)
    }
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Exponential backoff with jitter (a random wait in the upper half of the step): attempt 0
/// waits 0.5–1 s, doubling to a cap of
/// 60 s. Jitter spreads a whole city's kiosks out after a broker restart.
pub fn backoff(attempt: u32) -> Duration {
    let cap_ms = 1000u64.saturating_mul(1 << attempt.min(6)).min(60_000);
    Duration::from_millis(rand::thread_rng().gen_range(cap_ms / 2..=cap_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_bad_ones_are_refused() {
        let b = Broker { url: "mqtt://127.0.0.1:1999".into(), ..Broker::default() };
        assert_eq!(
            b.options("k").expect("valid").broker_address(),
            ("127.0.0.1".to_string(), 1999)
        );
        let b = Broker { url: "http://x".into(), ..Broker::default() };
        assert!(b.options("k").is_err());
        let b = Broker { url: "mqtts://x:8883".into(), ..Broker::default() };
        assert!(b.options("k").is_err(), "TLS without a CA must be refused");
    }

    #[test]
    fn backoff_grows_and_stays_capped() {
        assert!(backoff(0) <= Duration::from_secs(1));
        assert!(backoff(3) >= Duration::from_secs(4));
        assert!(backoff(30) <= Duration::from_secs(60));
    }
}
