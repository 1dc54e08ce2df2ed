#!/usr/bin/env bash
# Fleet dashboard budget (issue 7): N simulated kiosks (default 10,000) reporting every 30 s
# against a real Mosquitto, the dashboard in a release build. Prints the fleet process's
# CPU (percent of one core) and RSS over the measuring window, its ingest rate and backlog
# at the start and end of the window, and the render times of the fleet page, a filtered
# page, the 五统一 audit and /metrics (curl, logged in). Asserts nothing; record the figures.
#
#   bench/fleet.sh                                  # 10,000 kiosks, 180 s window
#   FLEET_BENCH_DEVICES=2000 FLEET_BENCH_SECONDS=60 bench/fleet.sh
#   FLEET_BENCH_PUBLISHED=demo/bundle bench/fleet.sh   # audit against published bundles
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kiosk-target}"
devices="${FLEET_BENCH_DEVICES:-10000}"
window="${FLEET_BENCH_SECONDS:-180}"
interval="${FLEET_BENCH_INTERVAL:-30}"
published="${FLEET_BENCH_PUBLISHED:-}"
mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -x "$mosq" ] || apt-get install -y -qq mosquitto

cargo build --release -q -p content-sync
bin="$CARGO_TARGET_DIR/release/content-sync"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mport=$(free_port); wport=$(free_port); xport=$(free_port)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cat >"$work/m.conf" <<EOF
listener $mport 127.0.0.1
allow_anonymous true
persistence false
max_connections -1
max_queued_messages 100000
log_dest none
user $(id -un)
EOF
"$mosq" -c "$work/m.conf" & pids+=($!)
sleep 1

FLEET_PASSWORD=bench-password-1 "$bin" fleet --db "$work/fleet.db" --add-user bench --role readonly >/dev/null
args=(fleet --broker "mqtt://127.0.0.1:$mport" --db "$work/fleet.db" --listen "127.0.0.1:$wport"
      --metrics-listen "127.0.0.1:$xport" --offline-after $((interval * 3)))
[ -n "$published" ] && args+=(--published "$published")
RUST_LOG=warn "$bin" "${args[@]}" 2>"$work/fleet.log" & fleet=$!; pids+=($fleet)
sleep 1

# Twenty halls in four districts of one city.
scopes=()
for d in 430102 430103 430104 430182; do
  for h in 1 2 3 4 5; do scopes+=(--scope "$d-00$h-01"); done
done
RUST_LOG=warn "$bin" simulate --broker "mqtt://127.0.0.1:$mport" --devices "$devices" \
  --interval "$interval" --prefix bench ${published:+--published "$published"} "${scopes[@]}" \
  2>"$work/sim.log" & pids+=($!)

metric() { curl -s "http://127.0.0.1:$xport/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
echo "fleet: waiting for $devices kiosks to connect and report…"
for _ in $(seq 1 600); do
  n=$(metric fleet_devices_online || true)
  [ "${n:-0}" = "$devices" ] && break
  sleep 1
done
echo "fleet: $(metric fleet_devices_online) of $devices kiosks online; one more report interval to settle"
sleep "$interval"

ticks=$(getconf CLK_TCK)
cpu() { awk '{ print $14 + $15 }' "/proc/$fleet/stat"; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$fleet/status"; }
c0=$(cpu); t0=$(date +%s.%N); i0=$(metric fleet_messages_ingested_total)
b0="$(metric 'fleet_ingest_backlog{stage="mqtt"}')/$(metric 'fleet_ingest_backlog{stage="database"}')"
rss_max=0; rss_sum=0; samples=0
end=$(( $(date +%s) + window ))
while [ "$(date +%s)" -lt "$end" ]; do
  r=$(rss_kb); rss_sum=$((rss_sum + r)); samples=$((samples + 1))
  [ "$r" -gt "$rss_max" ] && rss_max=$r
  sleep 5
done
c1=$(cpu); t1=$(date +%s.%N); i1=$(metric fleet_messages_ingested_total)
b1="$(metric 'fleet_ingest_backlog{stage="mqtt"}')/$(metric 'fleet_ingest_backlog{stage="database"}')"
awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v hz="$ticks" -v i0="$i0" -v i1="$i1" \
    -v n="$devices" -v iv="$interval" -v w="$window" -v rmax="$rss_max" -v rsum="$rss_sum" -v s="$samples" \
  'BEGIN {
     el = t1 - t0
     printf "fleet: %d kiosks every %d s, %d s window: CPU %.1f%% of one core, RSS mean %.0f MB, max %.0f MB\n",
       n, iv, w, (c1 - c0) / hz / el * 100, rsum / s / 1024, rmax / 1024
     printf "fleet: ingested %.0f msg/s (expected %.0f: health + usage per kiosk per interval)\n",
       (i1 - i0) / el, 2 * n / iv
   }'
echo "fleet: backlog mqtt/database at start $b0, at end $b1"

# Page render times, logged in as a read-only operator.
curl -s -o /dev/null -c "$work/cookies" -d 'user=bench&password=bench-password-1' "http://127.0.0.1:$wport/login"
for page in "/" "/?status=alerting" "/?q=430182-003-01" "/audit" "/audit.csv" "/metrics"; do
  times=()
  for _ in 1 2 3 4 5; do
    times+=("$(curl -s -o "$work/page" -b "$work/cookies" -w '%{time_total}' "http://127.0.0.1:$wport$page")")
  done
  size=$(stat -c %s "$work/page")
  printf '%s\n' "${times[@]}" | sort -n | awk -v p="$page" -v sz="$size" \
    '{ t[NR] = $1 } END { printf "fleet: page %-22s %7.0f kB  min %.3f s  median %.3f s  max %.3f s\n", p, sz / 1024, t[1], t[3], t[5] }'
done
