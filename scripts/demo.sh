#!/usr/bin/env bash
# The main job on a fresh machine: sets up (no libtorch needed), builds
# label-image and labels a sample picture with the shipped squeeze1, then
# prints its size on disk and per-image latency.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --no-torch
cargo build --quiet --release --locked -p label-image
target/release/label-image --model models/squeeze1.onnx "${@:-../shared/images/cat.png}"
