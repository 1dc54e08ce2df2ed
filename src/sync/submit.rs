//! The outbox pump: sends the sealed submissions waiting in the outbox to the city and
//! deletes each one when the city's application receipt names it.
//!
//! It runs on its own thread with its own MQTT connection (client id `{device}-outbox`,
//! the same certificate as the sync worker), so a slow content download never delays a
//! resident's request and the pump can be started, stopped and tested on its own.
//!
//! The outbox file is the truth: nothing is kept in memory that a SIGKILL could lose. A
//! row goes out on `zwgk/v1/dev/{device}/submit` (QoS 1); the broker's PUBACK marks it
//! "sent, awaiting receipt"; a [`SubmitReceipt`] on `zwgk/v1/dev/{device}/receipt`
//! deletes it. A row sent but not receipted within `answer_timeout` (the city inbox was
//! down, the broker restarted and lost it) is sent again, also after a restart, since the
//! times are in the file. The city stores each uuid once and receipts duplicates too, so
//! a resend is harmless.
//!
//! Logs name a submission by uuid and kind only: never the receipt number's holder, never
//! anything from the sealed box (the kiosk cannot open it anyway).

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{NaiveDate, Utc};
use rumqttc::{AsyncClient, Event, Outgoing, Packet, QoS};
use serde::{Deserialize, Serialize};

use super::client::{backoff, Broker};
use super::protocol::{is_topic_safe, topic, PREFIX};
use crate::config::Config;
use crate::requests::{Outbox, Submission, OUTBOX_FILE};

/// The shared-subscription filter the city's inbox workers join, so several of them split
/// the submissions between them.
pub const INBOX_SHARE: &str = "$share/inbox/zwgk/v1/dev/+/submit";

/// The city's application receipt (`zwgk/v1/dev/{device}/receipt`, JSON): the
/// submission is stored at the city, so the kiosk deletes its copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitReceipt {
    pub uuid: String,
    /// The number the resident holds, as the city registered it.
    pub receipt_no: String,
    /// 收到申请之日 as the city registered it.
    pub received_on: NaiveDate,
    /// 答复期限, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<NaiveDate>,
    /// The city already had this uuid (a resend); it was not stored again.
    #[serde(default)]
    pub duplicate: bool,
}

/// `zwgk/v1/dev/{device}/submit`.
pub fn submit_topic(device: &str) -> String {
    topic::dev(device, "submit")
}

/// `zwgk/v1/dev/{device}/receipt`.
pub fn receipt_topic(device: &str) -> String {
    topic::dev(device, "receipt")
}

/// Parses `zwgk/v1/dev/{device}/submit` back into its device.
pub fn submit_device(t: &str) -> Option<&str> {
    t.strip_prefix(PREFIX)?.strip_prefix("/dev/")?.strip_suffix("/submit")
}

/// How the pump runs.
#[derive(Clone, Debug)]
pub struct PumpConfig {
    pub device: String,
    pub broker: Broker,
    /// The outbox file (`data_dir/outbox.db` on a kiosk).
    pub outbox: PathBuf,
    /// A submission the broker took but the city did not receipt within this is sent again.
    pub answer_timeout: Duration,
    /// At most this many submissions handed to the broker and not yet PUBACKed.
    pub max_in_flight: usize,
    /// How often the outbox is looked at for work.
    pub tick: Duration,
}

impl PumpConfig {
    /// The pump of a kiosk, or `None` when it has no broker (offline only: submissions
    /// wait in the outbox until one is configured).
    pub fn from_config(config: &Config) -> Option<PumpConfig> {
        Some(PumpConfig {
            device: config.device_id.clone(),
            broker: Broker::from_config(config)?,
            outbox: config.data_dir.join(OUTBOX_FILE),
            answer_timeout: Duration::from_secs(300),
            max_in_flight: 32,
            tick: Duration::from_millis(500),
        })
    }
}

/// The running pump; dropping it stops the thread.
pub struct PumpHandle {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PumpHandle {
    /// Stops the pump and waits for its thread (at most about one tick).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for PumpHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the pump on its own thread. Errors that end it (an unusable outbox file, a bad
/// device id) are logged; broker trouble is retried forever with backoff.
pub fn spawn(cfg: PumpConfig) -> anyhow::Result<PumpHandle> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let thread = std::thread::Builder::new()
        .name("outbox".into())
        .spawn(move || {
            if let Err(e) = run(cfg, &s) {
                tracing::error!("outbox pump stopped: {e:#}");
            }
        })
        .context("starting the outbox thread")?;
    Ok(PumpHandle { stop, thread: Some(thread) })
}

/// Runs the pump on the calling thread until `stop` is set.
pub fn run(cfg: PumpConfig, stop: &AtomicBool) -> anyhow::Result<()> {
    if !is_topic_safe(&cfg.device) {
        anyhow::bail!(
            "device_id “{}” cannot be an MQTT topic level: use letters, digits, - _ .",
            cfg.device
        );
    }
    let mut outbox = Outbox::open(&cfg.outbox)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the outbox runtime")?;
    rt.block_on(async {
        let mut attempt = 0u32;
        while !stop.load(Ordering::Relaxed) {
            match connection(&cfg, &mut outbox, stop).await {
                Ok(true) => attempt = 0,
                Ok(false) => {}
                Err(e) => return Err(e),
            }
            // A fresh connection each time: rumqttc would replay its own in-flight
            // publishes, and the outbox is a better judge of what still needs sending.
            let wait = backoff(attempt);
            attempt = attempt.saturating_add(1);
            let until = tokio::time::Instant::now() + wait;
            while !stop.load(Ordering::Relaxed) && tokio::time::Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    })
}

/// One broker connection, until it drops or `stop` is set. `Ok(true)` when it got as far
/// as a CONNACK (the backoff starts over); `Err` only for an outbox that cannot be used.
async fn connection(
    cfg: &PumpConfig,
    outbox: &mut Outbox,
    stop: &AtomicBool,
) -> anyhow::Result<bool> {
    let mut opts = cfg.broker.options(&format!("{}-outbox", cfg.device))?;
    // A persistent session: receipts the city sends while this kiosk is down or
    // reconnecting wait at the broker.
    opts.set_clean_session(false);
    opts.set_keep_alive(Duration::from_secs(15));
    let (client, mut events) = AsyncClient::new(opts, 256);
    let receipts = receipt_topic(&cfg.device);
    let submits = submit_topic(&cfg.device);
    let mut tick = tokio::time::interval(cfg.tick);
    let mut connected = false;
    // Handed to rumqttc, waiting for their packet id, in order.
    let mut queued: VecDeque<String> = VecDeque::new();
    let mut pkids: HashMap<u16, String> = HashMap::new();
    let mut in_flight: HashSet<String> = HashSet::new();
    loop {
        tokio::select! {
            ev = events.poll() => match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    connected = true;
                    client.subscribe(&receipts, QoS::AtLeastOnce).await?;
                    tracing::info!("outbox: connected to {}", cfg.broker.url);
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                    if let Some(uuid) = queued.pop_front() {
                        pkids.insert(pkid, uuid);
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    if let Some(uuid) = pkids.remove(&ack.pkid) {
                        in_flight.remove(&uuid);
                        outbox.mark_sent(&uuid, Utc::now())?;
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic == receipts => {
                    match serde_json::from_slice::<SubmitReceipt>(&p.payload) {
                        Ok(r) => {
                            in_flight.remove(&r.uuid);
                            if outbox.remove_on_receipt(&r.uuid)? {
                                tracing::info!("outbox: submission {} receipted by the city", r.uuid);
                            }
                        }
                        Err(e) => tracing::warn!("outbox: an unreadable receipt was ignored: {e}"),
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if connected {
                        tracing::warn!("outbox: broker {}: {e}", cfg.broker.url);
                    }
                    return Ok(connected);
                }
            },
            _ = tick.tick() => {
                if stop.load(Ordering::Relaxed) {
                    let _ = client.try_disconnect();
                    return Ok(connected);
                }
                if !connected {
                    continue;
                }
                let timeout = chrono::Duration::from_std(cfg.answer_timeout).unwrap_or(chrono::Duration::MAX);
                let again = outbox.requeue_unanswered(Utc::now() - timeout)?;
                if again > 0 {
                    tracing::info!("outbox: {again} submission(s) not receipted in time, sending again");
                }
                let room = cfg.max_in_flight.saturating_sub(in_flight.len());
                if room == 0 {
                    continue;
                }
                let want = u32::try_from(room + in_flight.len()).unwrap_or(u32::MAX);
                for p in outbox.pending(want)? {
                    if in_flight.len() >= cfg.max_in_flight {
                        break;
                    }
                    let s = &p.submission;
                    if in_flight.contains(&s.uuid) {
                        continue;
                    }
                    let payload = payload(s)?;
                    outbox.record_attempt(&s.uuid, Utc::now())?;
                    if client.try_publish(&submits, QoS::AtLeastOnce, false, payload).is_err() {
                        break;
                    }
                    tracing::debug!("outbox: sending submission {} ({})", s.uuid, s.kind.as_str());
                    queued.push_back(s.uuid.clone());
                    in_flight.insert(s.uuid.clone());
                }
            }
        }
    }
}

/// The wire form of a submission: its JSON (the sealed box in base64).
pub fn payload(s: &Submission) -> anyhow::Result<Vec<u8>> {
    serde_json::to_vec(s).context("encoding a submission")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip() {
        assert_eq!(submit_topic("hall-01"), "zwgk/v1/dev/hall-01/submit");
        assert_eq!(submit_device("zwgk/v1/dev/hall-01/submit"), Some("hall-01"));
        assert_eq!(submit_device("zwgk/v1/dev/hall-01/receipt"), None);
        assert!(INBOX_SHARE.ends_with("dev/+/submit"));
    }

    #[test]
    fn receipts_parse_without_the_optional_fields() {
        let r: SubmitReceipt =
            serde_json::from_str(r#"{"uuid":"u","receipt_no":"YSQ-1","received_on":"2026-11-23"}"#)
                .expect("parse");
        assert_eq!(r.due, None);
        assert!(!r.duplicate);
    }
}
