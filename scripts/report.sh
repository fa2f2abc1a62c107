#!/usr/bin/env bash
# Regenerates the results: every shipped model measured through squeezebox's
# runtime beside onnxruntime and libtorch, in one run on this machine.
# Writes docs/results.md (the table), docs/*.png (the plots) and
# models/manifest.json. Extra options go to the report command
# (`--runs N`, `--rounds N`, `--limit N`, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --quiet --release --locked -p report
mkdir -p docs
target/release/report models --plots docs --manifest models/manifest.json "$@" > docs/results.md.tmp
mv docs/results.md.tmp docs/results.md
cat docs/results.md
