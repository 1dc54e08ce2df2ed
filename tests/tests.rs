//! The one integration-test binary. Each module owns one area; fixtures are made at test
//! time in temp dirs (signed bundles from fixed test keys), never checked in.

mod authoring; // content-sync build/sign/inspect/diff and every bad source input
mod bundle; // verification, trust rotation, activation and the crash test
mod device; // packaging, the systemd unit and the watchdog
mod fleet; // the operators' dashboard against a real broker and a real browser
mod health; // health telemetry: network, outbox, printer, manifest hashes (real broker)
mod ime; // the pinyin input method
mod inbox; // the city inbox and the outbox path, real broker and processes
mod print; // printing through a private CUPS scheduler: jobs, page limit, queue status
mod requests; // resident requests: validation, sealing, outbox, deadlines
mod search; // the search engine and the search-quality set
mod store; // the SQLite store's queries
mod sync; // MQTT sync and health against a real Mosquitto
mod sync_bench; // sync benchmarks (ignored; bench/sync.sh runs them)
mod ui; // the Slint UI on the testing backend and screenshots
mod util; // shared helpers: a real Mosquitto, free ports, polling with a deadline
