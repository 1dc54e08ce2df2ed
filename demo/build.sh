#!/usr/bin/env bash
# Rebuilds demo/bundle/ from demo/source/ with the DEMO ONLY key in demo/keys/.
# The output is deterministic (fixed created/expires in each bundle.toml, deterministic
# Ed25519 signatures), and tests/authoring.rs checks that the committed demo/bundle/ is
# exactly what this script produces: run it after changing anything under demo/source/.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kiosk-target}"

xlsx="demo/source/430182/catalog/宁乡市基层政务公开标准目录.xlsx"
if [[ ! -f "$xlsx" ]]; then
  cargo run -q -p content-sync --no-default-features --example demo_xlsx -- "$xlsx"
fi

docx="demo/source/430100/documents/cs-jd-2021-1112.docx"
if [[ ! -f "$docx" ]]; then
  cargo run -q -p content-sync --no-default-features --example demo_docx -- "$docx"
fi

cargo build -q -p content-sync --no-default-features
cs="$CARGO_TARGET_DIR/debug/content-sync"

for src in demo/source/*/; do
  scope="$(basename "$src")"
  rm -rf "demo/bundle/$scope"
  "$cs" build "$src" --out "demo/bundle/$scope" --key demo/keys/demo-root.key
done
cp demo/keys/root.json demo/bundle/root.json
echo "demo/bundle rebuilt; verify with: $cs verify demo/bundle/430182 --root demo/bundle/root.json"
