#!/usr/bin/env bash
# The test command: installs what is missing (scripts/setup.sh), then runs
# every test of the workspace. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --workspace --locked "$@"
# label-image cross-built for aarch64 and armv7 must label the sample
# pictures as x86-64 does, under qemu: the x86-64 one the tests above
# built in target/debug, whose kernels are the same. Arguments for cargo
# (--release, --profile) may have put it elsewhere and left a stale one
# there, so with any, cross.sh builds its own. The cross-ci profile is
# release without fat LTO, to keep this within CI's budget. Besides the
# shipped squeeze1, it checks the imported, pruned int8 example
# (scripts/import-example.sh), so that a model from PyTorch is shown to run
# on the boards; on armv7 it is also the check that static int8 files run,
# which lld's identical code folding once broke there (docs/arm.md).
reference=(--x86 target/debug/label-image)
(($#)) && reference=()
bash scripts/cross.sh --check --profile cross-ci "${reference[@]}" \
    --model models/squeeze1.onnx --model models/imported/resnet-style.p50.int8.onnx
