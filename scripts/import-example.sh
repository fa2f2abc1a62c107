#!/usr/bin/env bash
# The imported example, models/imported/resnet-style.p50.int8.onnx: the
# ResNet-style net of tests/python/export_nets.py, trained by PyTorch for
# 300 steps on CIFAR-10's first batch, exported with torch.onnx.export (its
# default exporter), then `compress import`, `compress prune` to 50% with
# fine-tuning and `compress quantize` to int8. The test command's ARM check
# runs it under qemu (scripts/test.sh). COMPRESS=PATH uses that build of
# compress instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
compress=${COMPRESS:-target/release/compress}
[[ -n "${COMPRESS:-}" ]] || cargo build --release --locked -p compress
cifar=../shared/cifar10
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/python tests/python/export_nets.py resnet "$work/resnet-style.onnx" \
    --opset default --train "$cifar" --steps 300 2>/dev/null
"$compress" import "$work/resnet-style.onnx" -o "$work/resnet-style.sb.onnx" \
    --mean 0.49,0.48,0.45 --std 0.25,0.24,0.26 --labels "$cifar/cifar-10-batches-bin/batches.meta.txt"
"$compress" prune "$work/resnet-style.sb.onnx" -o "$work/resnet-style.p50.onnx" --sparsity 0.5 \
    --data "$cifar" --epochs 2 --steps-per-epoch 100 --steps 4 --frequency 25 --batch 64
mkdir -p models/imported
"$compress" quantize "$work/resnet-style.p50.onnx" -o models/imported/resnet-style.p50.int8.onnx \
    --calib "$cifar"
