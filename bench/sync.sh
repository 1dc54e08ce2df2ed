#!/usr/bin/env bash
# Sync benchmarks against a real Mosquitto (tests/sync_bench.rs). Prints bytes and times;
# the figures go into BENCHMARKS.md ("Sync").
#
#   bench_sync   first sync, a 1% change pushed to several kiosks at once, a no-op sync
#   bench_apply  activating 1,000 changed documents while search answers on the old version
#   bench_fleet  200 kiosks updating at once from one `content-sync serve`
#
#   bench/sync.sh                                  # all three, release build
#   bench/sync.sh bench_apply                      # one of them
#   SYNC_BENCH_ITEMS=5000 SYNC_BENCH_KIOSKS=20 bench/sync.sh bench_sync
#   SYNC_BENCH_APPLY=1000 bench/sync.sh bench_apply
#   SYNC_BENCH_FLEET=200 SYNC_BENCH_FLEET_ITEMS=1000 bench/sync.sh bench_fleet
#   SYNC_BENCH_PROFILE=dev bench/sync.sh           # skip the (long) release build
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kiosk-target}"
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || apt-get install -y -qq mosquitto mosquitto-clients
# 200 kiosks hold two broker connections each (sync and outbox pump) plus Mosquitto's own.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
profile=(--release)
[ "${SYNC_BENCH_PROFILE:-release}" = dev ] && profile=()
benches=("$@")
[ ${#benches[@]} -eq 0 ] && benches=(bench_sync bench_apply bench_fleet)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for b in "${benches[@]}"; do
  # One at a time (--exact): each wants the whole machine.
  if ! cargo test "${profile[@]}" --test tests "sync_bench::$b" -- \
    --exact --ignored --nocapture 2>&1 | tee "$log" | grep --line-buffered '^sync:'; then
    echo "bench/sync.sh: $b failed; the end of its output:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
done
