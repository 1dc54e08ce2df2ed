//! Sync benchmarks against a real Mosquitto (run by bench/sync.sh, never in CI): they print
//! bytes and times and assert nothing about time. The broker, `serve` and kiosk fixtures are
//! the ones tests/sync.rs uses.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kiosk::content::ScopeCode;
use kiosk::sync::SyncStatus;

use crate::sync::{
    blob_sizes, bundle, content, faq, manifest_of, publish, root_key, Broker, Kiosk, Serve, CITY,
};
use crate::util::wait_until;

/// The sync benchmark (run by bench/sync.sh, never in CI): prints bytes and times, asserts
/// nothing about time. `SYNC_BENCH_ITEMS` (default 1000) and `SYNC_BENCH_KIOSKS` (default
/// 10) size it.
#[test]
#[ignore = "benchmark: run bench/sync.sh"]
fn bench_sync() {
    let env = |k: &str, d: usize| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let (n_items, n_kiosks) = (env("SYNC_BENCH_ITEMS", 1000), env("SYNC_BENCH_KIOSKS", 10));
    let broker = Broker::plain();
    let tmp = tempfile::tempdir().expect("temp dir");
    let store = tmp.path().join("store");
    let serve = Serve::start(&broker, &store);
    let b1 = bundle(
        tmp.path(),
        "v1",
        &content(CITY, (0..n_items).map(|n| faq(n, 1)).collect()),
        &[],
        1,
        &root_key(),
    );
    let full =
        blob_sizes(&b1) + std::fs::metadata(b1.join("manifest.json")).expect("manifest").len();
    publish(&broker, &b1, &store);
    let kiosks: Vec<Kiosk> = (0..n_kiosks)
        .map(|i| Kiosk::start(&broker, &format!("bench-{i}"), "430182-001-01"))
        .collect();
    let t = Instant::now();
    for k in &kiosks {
        k.wait_version(CITY, 1);
    }
    println!(
        "sync: first sync of {n_items} items ({full} B bundle) to {n_kiosks} kiosks: {:.2} s",
        t.elapsed().as_secs_f64()
    );

    // 1% change, all kiosks at once.
    let changed = (n_items / 100).max(1);
    let items = (0..n_items).map(|n| faq(n, if n % 100 == 7 { 2 } else { 1 })).collect();
    let b2 = bundle(tmp.path(), "v2", &content(CITY, items), &[], 2, &root_key());
    let before: Vec<SyncStatus> = kiosks.iter().map(Kiosk::status).collect();
    let served_before = serve.served.bytes.load(Ordering::Relaxed);
    let t = Instant::now();
    publish(&broker, &b2, &store);
    for k in &kiosks {
        k.wait_version(CITY, 2);
    }
    let secs = t.elapsed().as_secs_f64();
    let moved: u64 = kiosks
        .iter()
        .zip(&before)
        .map(|(k, b)| k.status().bytes_received - b.bytes_received)
        .sum::<u64>()
        / n_kiosks as u64;
    let old = manifest_of(&b1);
    let delta: u64 = manifest_of(&b2)
        .entries
        .iter()
        .filter(|e| old.entries.iter().all(|o| o.sha256 != e.sha256))
        .map(|e| e.size)
        .sum();
    let served = serve.served.bytes.load(Ordering::Relaxed) - served_before;
    println!(
        "sync: {changed} of {n_items} items changed: each kiosk received {moved} B = {:.2}% of the full bundle; changed blobs {delta} B",
        100.0 * moved as f64 / full as f64
    );
    println!(
        "sync: {n_kiosks} kiosks updated at once in {secs:.2} s (publish → all applied, incl. index rebuild); serve sent {served} B = {:.3} × ({n_kiosks} × changed blobs)",
        served as f64 / (n_kiosks as u64 * delta) as f64
    );
    // No-op: "resync now" on an up-to-date kiosk (after the update, so a delta is retained).
    let k0 = &kiosks[0];
    let before = k0.status();
    k0.handle.resync_now();
    // The retained delta of the version it has comes back and is recognised as old news.
    wait_until("the resync to come back", Duration::from_secs(20), || {
        k0.status().last_sync > before.last_sync
    });
    let after = k0.status();
    let chain = ScopeCode::parse("430182-001-01").expect("scope").chain();
    // Payload counters leave out MQTT framing: add the (un)subscribe packets' topic bytes.
    let framing: usize =
        chain.iter().map(|s| 2 * (kiosk::sync::protocol::topic::delta(s).len() + 7)).sum();
    println!(
        "sync: no-op sync sent {} B ({} B payload + ~{framing} B subscribe framing), received {} B",
        after.bytes_sent - before.bytes_sent + framing as u64,
        after.bytes_sent - before.bytes_sent,
        after.bytes_received - before.bytes_received
    );
}
