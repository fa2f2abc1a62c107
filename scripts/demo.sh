#!/usr/bin/env bash
# The main job on a fresh machine: sets up, then prints the model zoo with
# what each architecture costs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --no-torch
cargo run --quiet --release -p models --bin zoo
