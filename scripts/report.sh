#!/usr/bin/env bash
# Regenerates the results: every shipped model measured through squeezebox's
# runtime beside onnxruntime and libtorch, in one run on this machine, and
# the imported nets of `scripts/bench.sh --foreign` beside onnxruntime.
# Writes docs/results.md (the tables), docs/*.png (the plots) and
# models/manifest.json. Extra options go to the report command
# (`--runs N`, `--rounds N`, `--limit N`, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --quiet --release --locked -p report
mkdir -p docs
target/release/report models --plots docs --manifest models/manifest.json "$@" > docs/results.md.tmp
{
    printf '\n## Nets squeezebox did not design\n\n'
    printf 'ResNet- and MobileNet-style nets exported by PyTorch at 224x224 and imported\n'
    printf '(`bash scripts/bench.sh --foreign`, [import.md](import.md)), timed against\n'
    printf 'onnxruntime on the same files:\n\n'
    bash scripts/bench.sh --foreign
} >> docs/results.md.tmp
mv docs/results.md.tmp docs/results.md
cat docs/results.md
