//! Sync benchmarks against a real Mosquitto (run by bench/sync.sh, never in CI): they print
//! bytes and times and assert nothing about time. The broker, `serve` and kiosk fixtures are
//! the ones tests/sync.rs uses.
//!
//! - `bench_sync`: first sync, a 1% change to several kiosks, a no-op sync (bytes).
//! - `bench_apply`: activating 1,000 changed documents (database + index) while a search
//!   loop runs against the served version.
//! - `bench_fleet`: 200 kiosks updating at once from one `serve`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiosk::content::ScopeCode;
use kiosk::sync::SyncStatus;

use crate::sync::{
    blob_sizes, bundle, content, faq, manifest_of, root_envelope, root_key, Broker, City, Kiosk,
    CITY,
};
use crate::util::{wait_until, wait_until_every};

/// How often the fleet benchmark looks at its kiosks: often enough for a figure in tenths
/// of a second, rarely enough not to take CPU from them.
const EVERY: Duration = Duration::from_millis(100);

/// A size from the environment, or its default.
fn env(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Bytes of the blobs `new` has and `old` has not: what an update has to move.
fn delta_bytes(old: &Path, new: &Path) -> u64 {
    let old = manifest_of(old);
    manifest_of(new)
        .entries
        .iter()
        .filter(|e| old.entries.iter().all(|o| o.sha256 != e.sha256))
        .map(|e| e.size)
        .sum()
}

/// The sync benchmark (run by bench/sync.sh, never in CI): prints bytes and times, asserts
/// nothing about time. `SYNC_BENCH_ITEMS` (default 1000) and `SYNC_BENCH_KIOSKS` (default
/// 10) size it.
#[test]
#[ignore = "benchmark: run bench/sync.sh"]
fn bench_sync() {
    let (n_items, n_kiosks) = (env("SYNC_BENCH_ITEMS", 1000), env("SYNC_BENCH_KIOSKS", 10));
    let city = City::start(Broker::plain());
    let b1 = city.bundle(
        "v1",
        &content(CITY, (0..n_items).map(|n| faq(n, 1)).collect()),
        &[],
        1,
        &root_key(),
    );
    let full =
        blob_sizes(&b1) + std::fs::metadata(b1.join("manifest.json")).expect("manifest").len();
    city.publish_bundle(&b1);
    let kiosks: Vec<Kiosk> = (0..n_kiosks)
        .map(|i| Kiosk::start(&city.broker, &format!("bench-{i}"), "430182-001-01"))
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
    let b2 = city.bundle("v2", &content(CITY, items), &[], 2, &root_key());
    let before: Vec<SyncStatus> = kiosks.iter().map(Kiosk::status).collect();
    let served_before = city.serve.served.bytes.load(Ordering::Relaxed);
    let t = Instant::now();
    city.publish_bundle(&b2);
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
    let delta = delta_bytes(&b1, &b2);
    let served = city.serve.served.bytes.load(Ordering::Relaxed) - served_before;
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

/// Latencies in milliseconds: (count, p99, max).
fn p99_max(mut ms: Vec<f64>) -> (usize, f64, f64) {
    ms.sort_by(f64::total_cmp);
    let p99 = ms.get((ms.len() * 99 / 100).min(ms.len().saturating_sub(1))).copied();
    (ms.len(), p99.unwrap_or(0.0), ms.last().copied().unwrap_or(0.0))
}

/// "Applying 1,000 changed documents ≤ 2 s with search answering throughout": the time
/// from every blob of the new version being in the kiosk's download cache to the new
/// version being `current` (verification, blob links, database, search index, switch), as
/// the sync worker's activation runs it, while another thread searches the version being
/// served, as the UI's search worker would. `SYNC_BENCH_APPLY` (default 1000) documents,
/// all of them changed.
#[test]
#[ignore = "benchmark: run bench/sync.sh"]
fn bench_apply() {
    let n = env("SYNC_BENCH_APPLY", 1000);
    let tmp = tempfile::tempdir().expect("temp dir");
    let root_file = tmp.path().join("city-root.json");
    std::fs::write(&root_file, serde_json::to_vec(&root_envelope()).expect("json")).expect("root");
    let config = kiosk::config::Config {
        device_id: "bench-apply".into(),
        scope: ScopeCode::parse("430182-001-01").expect("scope"),
        data_dir: tmp.path().join("data"),
        trust_root: root_file,
        ..kiosk::config::Config::default()
    };
    let items = |rev| content(CITY, (0..n).map(|i| faq(i, rev)).collect());
    let b1 = bundle(tmp.path(), "v1", &items(1), &[], 1, &root_key());
    let b2 = bundle(tmp.path(), "v2", &items(2), &[], 2, &root_key());
    let offer = |b: &Path| {
        let mut o = kiosk::bundle::Offer::from_dir(b).expect("offer");
        o.blobs = config.data_dir.join("blobs");
        o
    };
    // The download cache holds every blob of both versions, as after a sync's transfers.
    let cache = config.data_dir.join("blobs");
    std::fs::create_dir_all(&cache).expect("cache dir");
    for b in [&b1, &b2] {
        for e in std::fs::read_dir(b.join("blobs")).expect("blobs") {
            let e = e.expect("entry");
            std::fs::copy(e.path(), cache.join(e.file_name())).expect("copy a blob");
        }
    }
    kiosk::bundle::install(&config, &[offer(&b1)], chrono::Utc::now()).expect("install v1");
    let served =
        kiosk::bundle::current_version(&config.data_dir).expect("readable").expect("v1 is current");

    // The UI's search worker: queries the served version back to back until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let searcher = {
        let (stop, index) = (stop.clone(), served.index_dir());
        std::thread::spawn(move || {
            let searcher = kiosk::search::Searcher::open(&index).expect("the served index");
            let (mut ms, mut failed) = (Vec::new(), 0usize);
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let query = match i % 3 {
                    0 => format!("常见问题{}", i % n),
                    1 => "居民身份证 复印件".to_string(),
                    _ => format!("第{}类事项怎么办", i % n),
                };
                let req = kiosk::search::SearchRequest { query, limit: 10, ..Default::default() };
                let t = Instant::now();
                match searcher.search(&req) {
                    Ok(r) if !r.hits.is_empty() => ms.push(t.elapsed().as_secs_f64() * 1e3),
                    _ => failed += 1,
                }
                i += 1;
            }
            (ms, failed)
        })
    };
    // Let the search loop warm up, so it is answering when the activation starts.
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    kiosk::bundle::install(&config, &[offer(&b2)], chrono::Utc::now()).expect("install v2");
    let secs = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (ms, failed) = searcher.join().expect("the search thread");
    let now = kiosk::bundle::current_version(&config.data_dir).expect("readable").expect("current");
    assert_eq!(now.versions().first().map(|v| v.version), Some(2), "v2 is active");
    let (count, p99, max) = p99_max(ms);
    println!(
        "sync: applying {n} changed documents (all blobs cached → new version current: verify, link, database, index, switch): {secs:.2} s"
    );
    println!(
        "sync: search on the served version during the whole run: {count} queries answered, p99 {p99:.1} ms, max {max:.1} ms, {failed} failed or empty"
    );
}

/// "200 simulated kiosks updating at once from one `serve` finish, and the bytes sent stay
/// within 5% of 200 × the delta": `SYNC_BENCH_FLEET` (default 200) real sync engines in
/// this process (each its own thread, runtime and broker connections) against one broker
/// and one `serve`; `SYNC_BENCH_FLEET_ITEMS` (default 1000) items of which 1% change.
#[test]
#[ignore = "benchmark: run bench/sync.sh"]
fn bench_fleet() {
    let (n_kiosks, n_items) = (env("SYNC_BENCH_FLEET", 200), env("SYNC_BENCH_FLEET_ITEMS", 1000));
    let city = City::start(Broker::plain());
    let items = |changed: fn(usize) -> bool| {
        content(CITY, (0..n_items).map(|i| faq(i, if changed(i) { 2 } else { 1 })).collect())
    };
    let b1 = city.bundle("v1", &items(|_| false), &[], 1, &root_key());
    city.publish_bundle(&b1);
    let t = Instant::now();
    let kiosks: Vec<Kiosk> = (0..n_kiosks)
        .map(|i| Kiosk::start(&city.broker, &format!("fleet-{i}"), "430182-001-01"))
        .collect();
    // The fixture's own wait gives one kiosk a minute; a fleet's first sync takes longer.
    wait_until_every("every kiosk to apply v1", Duration::from_secs(1800), EVERY, || {
        kiosks.iter().all(|k| k.version(CITY) == Some(1))
    });
    println!(
        "sync: fleet of {n_kiosks} kiosks: first sync of {n_items} items ({} B of blobs each) done in {:.1} s",
        blob_sizes(&b1),
        t.elapsed().as_secs_f64()
    );

    let b2 = city.bundle("v2", &items(|i| i % 100 == 7), &[], 2, &root_key());
    let delta = delta_bytes(&b1, &b2);
    let served_before = city.serve.served.bytes.load(Ordering::Relaxed);
    let requests_before = city.serve.served.requests.load(Ordering::Relaxed);
    let t = Instant::now();
    city.publish_bundle(&b2);
    // Every kiosk, not just the first few: a fleet update is done when the last one is.
    wait_until_every("every kiosk to apply v2", Duration::from_secs(1800), EVERY, || {
        kiosks.iter().all(|k| k.version(CITY) == Some(2))
    });
    let secs = t.elapsed().as_secs_f64();
    let served = city.serve.served.bytes.load(Ordering::Relaxed) - served_before;
    let requests = city.serve.served.requests.load(Ordering::Relaxed) - requests_before;
    println!(
        "sync: fleet of {n_kiosks} kiosks updated at once from one serve in {secs:.1} s (publish → the last kiosk applied); serve sent {served} B in {requests} requests = {:.4} × ({n_kiosks} × {delta} B delta)",
        served as f64 / (n_kiosks as u64 * delta) as f64
    );
}
