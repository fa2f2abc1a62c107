#!/usr/bin/env bash
# The recipe search of docs/training.md: short runs of one architecture on
# the validation split (the test split is never touched), one after another.
#   bash scripts/search.sh squeeze1            # run what is not done yet
#   bash scripts/search.sh squeeze1 --table    # print the markdown table
# Each run logs to docs/search/ARCH/NAME.csv, which the table is read from.
# A stopped run resumes from its checkpoint (NAME.ckpt beside the log, to be
# committed so that the search goes on anywhere); a finished run keeps only
# its log. SEARCH_THREADS (default: all cores) sets libtorch's threads;
# SEARCH_ONLY=NAME runs one run alone; TRAINER=PATH runs that build of the
# trainer instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."

arch=${1:?usage: search.sh ARCH [--table]}
table=0
[[ "${2:-}" == "--table" ]] && table=1
dir=docs/search/$arch
data=../shared/cifar10

# name | settings (beside --model, --data, --out, --no-test)
runs() {
    case $arch in
    squeeze1 | tuto | alex4) ;;
    *) echo "search.sh: no runs are defined for '$arch'" >&2; exit 2 ;;
    esac
    cat <<'RUNS'
bn-lr0.2|--epochs 15 --batch-norm conv --lr 0.2 --warmup-epochs 3
bnall-lr0.2|--epochs 15 --batch-norm all --lr 0.2 --warmup-epochs 3
plain-lr0.08|--epochs 15 --lr 0.08 --warmup-epochs 3 --label-smoothing 0.1
bn-lr0.4|--epochs 15 --batch-norm conv --lr 0.4 --warmup-epochs 3
bn-lr0.1|--epochs 15 --batch-norm conv --lr 0.1 --warmup-epochs 3
bn-lr0.2-ls0.1|--epochs 15 --batch-norm conv --lr 0.2 --warmup-epochs 3 --label-smoothing 0.1
bn-lr0.2-ema0.999|--epochs 15 --batch-norm conv --lr 0.2 --warmup-epochs 3 --ema 0.999
bn-lr0.2-wd1e-3|--epochs 15 --batch-norm conv --lr 0.2 --warmup-epochs 3 --weight-decay 1e-3
bn-lr0.2-jitter0.5|--epochs 15 --batch-norm conv --lr 0.2 --warmup-epochs 3 --jitter 0.5
bn-lr0.4-b256|--epochs 15 --batch-norm conv --lr 0.4 --warmup-epochs 3 --batch 256
RUNS
    case $arch in
    # Nets with hidden dense layers: squeeze1's best run with norms there too.
    tuto | alex4) echo "bnall-lr0.4-b256|--epochs 15 --batch-norm all --lr 0.4 --warmup-epochs 3 --batch 256" ;;
    esac
}

runs >/dev/null # an architecture without runs stops here, with exit 2

# The --epochs of a run's settings.
epochs() { sed 's/.*--epochs \([0-9]*\).*/\1/' <<<"$1"; }

if ((table)); then
    echo "| run | settings | best val. acc. (epoch) | last val. acc. | s/epoch |"
    echo "|---|---|---:|---:|---:|"
    while IFS='|' read -r name settings; do
        csv=$dir/$name.csv
        [[ -e $csv ]] || continue
        python3 - "$name" "$settings" "$(epochs "$settings")" "$csv" <<'PY'
import csv, sys
name, settings, epochs, path = sys.argv[1:]
rows = list(csv.DictReader(open(path)))
best = max(rows, key=lambda r: float(r["val_acc"]))
secs = sum(float(r["seconds"]) for r in rows) / len(rows)
done = "" if len(rows) >= int(epochs) else f" (after {len(rows)} epochs)"
print(f"| {name} | `{settings}` | {100*float(best['val_acc']):.2f}% ({best['epoch']}) "
      f"| {100*float(rows[-1]['val_acc']):.2f}%{done} | {secs:.0f} |")
PY
    done < <(runs)
    exit 0
fi

trainer=${TRAINER:-target/release/trainer}
[[ -n "${TRAINER:-}" ]] || cargo build --release --locked -p trainer
mkdir -p "$dir"
threads=()
[[ -n "${SEARCH_THREADS:-}" ]] && threads=(--threads "$SEARCH_THREADS")
while IFS='|' read -r name settings; do
    [[ -n "${SEARCH_ONLY:-}" && "$name" != "$SEARCH_ONLY" ]] && continue
    if [[ -e $dir/$name.csv && ! -e $dir/$name.ckpt ]] &&
        (($(wc -l <"$dir/$name.csv") > $(epochs "$settings"))); then
        continue
    fi
    resume=()
    [[ -e $dir/$name.ckpt ]] && resume=(--resume)
    echo "search: $arch $name: $settings"
    # shellcheck disable=SC2086 # the settings are words
    "$trainer" train --model "$arch" --data "$data" --out "$dir/$name.onnx" \
        --no-test $settings "${threads[@]}" "${resume[@]}" </dev/null &&
        rm -f "$dir/$name.onnx" "$dir/$name.ckpt" ||
        echo "search: $arch $name failed" >&2
done < <(runs)
