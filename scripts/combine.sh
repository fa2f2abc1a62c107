#!/usr/bin/env bash
# The compressed files of models/, remade from the dense files there:
#   bash scripts/combine.sh                  # int8 files of every dense and pruned file
#   bash scripts/combine.sh --prune squeeze1 # first prune and thin models/squeeze1.onnx again
# Pruning fine-tunes on ../shared/cifar10 (some 90 epochs of squeeze1 in
# all, p80 distilled from its dense parent; COMBINE_THREADS sets
# libtorch's threads), and so does the sharing
# (`compress share`, 4 epochs each) of p75 and p80. Then each dense, pruned
# and thinned float file gets its static int8 file, and the sparse int8
# files 4-bit shared weights on top: fine-tuned where a tw4 file exists. Each file's command is in its metadata and
# in models/manifest.json; `bash scripts/report.sh` then measures them all.
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/cifar10
prune=()
if [[ "${1:-}" == "--prune" ]]; then
    prune=("${@:2}")
    ((${#prune[@]})) || { echo "usage: combine.sh [--prune ARCH ...]" >&2; exit 2; }
fi
cargo build --quiet --release --locked -p compress
compress=target/release/compress
threads=()
[[ -n "${COMBINE_THREADS:-}" ]] && threads=(--threads "$COMBINE_THREADS")

for arch in "${prune[@]}"; do
    [[ -e models/$arch.onnx ]] || { echo "combine.sh: no models/$arch.onnx" >&2; exit 2; }
    # models | variant | options of `compress prune`
    while IFS='|' read -r models variant options; do
        [[ " $models " == *" $arch "* ]] || continue
        options=${options//PARENT/models/$arch.onnx} # a teacher: the dense parent
        echo "combine: $arch.$variant: $options"
        # shellcheck disable=SC2086 # the options are words
        "$compress" prune "models/$arch.onnx" -o "models/$arch.$variant.onnx" $options \
            --data "$data" --ema 0.999 --device cpu "${threads[@]}" | tail -3
    done <<'VARIANTS'
squeeze1 tuto|p50|--sparsity 0.5 --epochs 4
squeeze1 tuto|p75|--sparsity 0.75 --epochs 24 --lr 0.05
squeeze1|p80|--sparsity 0.8 --epochs 24 --lr 0.05 --teacher PARENT
tuto|p80|--sparsity 0.8 --epochs 24 --lr 0.05
squeeze1 tuto|p90|--sparsity 0.9 --epochs 8
squeeze1 tuto|thin25|--sparsity 0.25 --structured --epochs 15
squeeze1 tuto|thin50|--sparsity 0.5 --structured --epochs 15
alex4|p75|--sparsity 0.75 --epochs 8
alex4|p90|--sparsity 0.9 --epochs 8
VARIANTS
    # Shared weights fine-tuned on the pruned files: 4-bit codebooks that
    # the w4 storage below finds again exactly.
    # parent | more options of `compress share`
    while IFS='|' read -r parent options; do
        [[ -e models/$arch.$parent.onnx ]] || continue
        options=${options//PARENT/models/$arch.onnx}
        echo "combine: $arch.$parent.tw4 $options"
        # shellcheck disable=SC2086 # the options are words
        "$compress" share "models/$arch.$parent.onnx" -o "models/$arch.$parent.tw4.onnx" \
            --weight-bits 4 --epochs 4 --lr 0.005 $options \
            --data "$data" --ema 0.999 --device cpu "${threads[@]}" | tail -2
    done <<'SHARED'
p75|
p80|--teacher PARENT
SHARED
done

for dense in squeeze1 tuto alex4; do
    [[ -e models/$dense.onnx ]] || continue
    "$compress" quantize "models/$dense.onnx" -o "models/$dense.int8.onnx" \
        --calib "$data" --per-tensor | tail -1
done
for parent in squeeze1.p50 squeeze1.p75 squeeze1.p80 squeeze1.p90 squeeze1.thin25 \
    tuto.p50 tuto.p75 tuto.p90 tuto.thin25 alex4.p75 alex4.p90; do
    [[ -e models/$parent.onnx ]] || continue
    "$compress" quantize "models/$parent.onnx" -o "models/$parent.int8.onnx" --calib "$data" | tail -1
done
# Float16 values, computed in float: what int8 loses, it does not.
for parent in squeeze1.p75; do
    [[ -e models/$parent.onnx ]] || continue
    "$compress" quantize "models/$parent.onnx" -o "models/$parent.fp16.onnx" --fp16 | tail -1
done
for parent in squeeze1.p75 squeeze1.p80 squeeze1.p90 tuto.p75 tuto.p90 alex4.p75 alex4.p90; do
    [[ -e models/$parent.tw4.onnx ]] && parent=$parent.tw4
    [[ -e models/$parent.onnx ]] || continue
    "$compress" quantize "models/$parent.onnx" -o "models/$parent.int8.w4.onnx" \
        --calib "$data" --weight-bits 4 | tail -1
done
