#!/usr/bin/env bash
# The test command: installs what is missing (scripts/setup.sh), then runs
# every test of the workspace. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --workspace --locked "$@"
# label-image cross-built for aarch64 and armv7 must label the sample
# pictures as x86-64 does, under qemu: the x86-64 one the tests above
# built, whose kernels are the same. The cross-ci profile is release
# without fat LTO, to keep this within CI's budget.
bash scripts/cross.sh --check --profile cross-ci --x86 target/debug/label-image
