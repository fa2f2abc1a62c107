#!/usr/bin/env bash
# The test command: installs what is missing (scripts/setup.sh), then runs
# every test of the workspace. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --workspace --locked "$@"
