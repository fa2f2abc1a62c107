#!/usr/bin/env bash
# Latency of squeezebox's runtime against onnxruntime on the same files, one
# thread, batch 1, measured in one run:
#   scripts/bench.sh [MODEL.onnx ...]   (default: every shipped model in models/)
#   scripts/bench.sh --foreign          nets squeezebox did not design: a
#       ResNet-style and a MobileNet-style net exported by torch.onnx.export
#       at 224x224 (tests/python/export_nets.py, width 2, 1000 classes),
#       imported with `compress import`, into target/foreign/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--foreign" ]]; then
    shift
    # Only the table goes to stdout: scripts/report.sh appends it to the
    # results.
    bash scripts/setup.sh >&2
    cargo build --release --locked -p label-image -p compress >&2
    mkdir -p target/foreign
    models=()
    for net in resnet mobilenet; do
        .venv/bin/python tests/python/export_nets.py "$net" "target/foreign/$net-224.torch.onnx" \
            --size 224 224 --width 2 --classes 1000 2>/dev/null
        target/release/compress import "target/foreign/$net-224.torch.onnx" \
            -o "target/foreign/$net-224.onnx" --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 >&2
        models+=("target/foreign/$net-224.onnx")
    done
    set -- "${models[@]}" --runs 50 --warmup 5
else
    bash scripts/setup.sh --no-torch
    cargo build --release --locked -p label-image
    (($# > 0)) || set -- models/*.onnx
fi
exec .venv/bin/python scripts/latency_vs_onnxruntime.py \
    --label-image target/release/label-image --image ../shared/images/cat.png "$@"
