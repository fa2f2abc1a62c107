#!/usr/bin/env bash
# The full training runs of docs/training.md, with the recipe the search
# chose, resumable anywhere:
#   bash scripts/full-run.sh squeeze1
# The run writes models/next/ARCH.{ckpt,csv}; commit the checkpoint when
# stopping, and this command resumes it. When the run ends, its file and
# log replace models/ARCH.onnx and models/ARCH.csv and the checkpoint goes.
# FULL_THREADS sets libtorch's threads (default: all cores); TRAINER=PATH
# runs that build of the trainer instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."

arch=${1:?usage: full-run.sh ARCH}
case $arch in
squeeze1) recipe=(--epochs 100 --batch-norm conv --batch 256 --lr 0.4 --warmup-epochs 15) ;;
alex4 | tuto) recipe=(--epochs 100 --batch-norm all --batch 256 --lr 0.4 --warmup-epochs 15) ;;
*) echo "full-run.sh: no full run is defined for '$arch' yet" >&2; exit 2 ;;
esac
trainer=${TRAINER:-target/release/trainer}
[[ -n "${TRAINER:-}" ]] || cargo build --release --locked -p trainer
mkdir -p models/next
threads=()
[[ -n "${FULL_THREADS:-}" ]] && threads=(--threads "$FULL_THREADS")
resume=()
[[ -e models/next/$arch.ckpt ]] && resume=(--resume)
"$trainer" train --model "$arch" --data ../shared/cifar10 --out "models/next/$arch.onnx" \
    "${recipe[@]}" "${threads[@]}" "${resume[@]}" </dev/null
mv "models/next/$arch.onnx" "models/$arch.onnx"
mv "models/next/$arch.csv" "models/$arch.csv"
rm -f "models/next/$arch.ckpt"
