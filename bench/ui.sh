#!/usr/bin/env bash
# UI benchmark (issue 4 budgets): first frame, touch and search-as-you-type latency, RSS.
# Starts a private Xvfb (display :99 unless KIOSK_BENCH_DISPLAY says otherwise) so the real
# winit window can be measured, then runs `cargo bench --bench ui` (benches/ui.rs) in the
# release profile. Needs Xvfb and the system's Noto Sans CJK (fonts-noto-cjk). See
# BENCHMARKS.md ("UI").
#
#   bench/ui.sh                          # 100 repetitions per latency
#   KIOSK_UI_BENCH_REPS=20 bench/ui.sh   # quicker
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kiosk-target}"
if ! fc-list ':lang=zh' family | grep -q 'Noto Sans CJK'; then
    echo "warning: fontconfig finds no Noto Sans CJK; figures are not for the CJK budget" >&2
fi
# Build first, so the build is not part of anything measured.
cargo bench --bench ui --no-run
# target/release/kiosk is shared with `--no-default-features` builds (bench/search.sh, other
# engineers): keep a private copy of the one with the UI, and check it has it.
private="$(mktemp -d)"
cp "$CARGO_TARGET_DIR/release/kiosk" "$private/kiosk"
if grep -qa 'without the `ui` feature' "$private/kiosk"; then
    echo "target/release/kiosk was just rebuilt without the ui feature; run again" >&2
    exit 1
fi
export KIOSK_UI_BENCH_KIOSK="$private/kiosk"

xvfb_pid=""
if command -v Xvfb >/dev/null; then
    display="${KIOSK_BENCH_DISPLAY:-:99}"
    Xvfb "$display" -screen 0 1920x1080x24 -nolisten tcp >/dev/null 2>&1 &
    xvfb_pid=$!
    trap 'kill "$xvfb_pid" 2>/dev/null || true; rm -rf "$private"' EXIT
    sleep 1
    export DISPLAY="$display"
else
    echo "Xvfb not found: real-window figures are skipped" >&2
    unset DISPLAY
    trap 'rm -rf "$private"' EXIT
fi
cargo bench --bench ui
