#!/usr/bin/env bash
# Prune, then quantize: the combined files of models/ from the pruned and
# thinned float files there (each made by the `compress prune` command in
# its metadata and in models/manifest.json). Static int8 of each, and 4-bit
# shared weights on top of the sparse int8 files. Re-run after the pruned
# files change; then `bash scripts/report.sh` measures them all.
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/cifar10
cargo build --quiet --release --locked -p compress
compress=target/release/compress
for parent in squeeze1.p50 squeeze1.p75 squeeze1.p90 squeeze1.thin25 \
    tuto.p50 tuto.p75 tuto.p90 tuto.thin25; do
    [[ -e models/$parent.onnx ]] || continue
    "$compress" quantize "models/$parent.onnx" -o "models/$parent.int8.onnx" --calib "$data" | tail -1
done
for parent in squeeze1.p75 squeeze1.p90 tuto.p75 tuto.p90; do
    [[ -e models/$parent.onnx ]] || continue
    "$compress" quantize "models/$parent.onnx" -o "models/$parent.int8.w4.onnx" \
        --calib "$data" --weight-bits 4 | tail -1
done
