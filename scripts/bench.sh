#!/usr/bin/env bash
# Latency of squeezebox's runtime against onnxruntime on the same files, one
# thread, batch 1, measured in one run: scripts/bench.sh [MODEL.onnx ...]
# (default: every shipped model in models/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --no-torch
cargo build --release --locked -p label-image
models=("$@")
if ((${#models[@]} == 0)); then
    models=(models/*.onnx)
fi
exec .venv/bin/python scripts/latency_vs_onnxruntime.py \
    --label-image target/release/label-image --image ../shared/images/cat.png "${models[@]}"
