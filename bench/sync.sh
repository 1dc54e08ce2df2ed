#!/usr/bin/env bash
# Sync benchmark against a real Mosquitto: first sync, a no-op sync ("resync now" with
# nothing new) and a 1% change pushed to several kiosks at once. Prints bytes and times;
# record them in BENCHMARKS.md ("Sync").
#
#   bench/sync.sh                                            # 1000 items, 10 kiosks
#   SYNC_BENCH_ITEMS=5000 SYNC_BENCH_KIOSKS=20 bench/sync.sh
#   SYNC_BENCH_PROFILE=dev bench/sync.sh                     # skip the (long) release build
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kiosk-target}"
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || apt-get install -y -qq mosquitto mosquitto-clients
profile=(--release)
[ "${SYNC_BENCH_PROFILE:-release}" = dev ] && profile=()
cargo test "${profile[@]}" --no-default-features --test tests sync_bench::bench_sync -- --ignored --nocapture 2>&1 | grep '^sync:'
