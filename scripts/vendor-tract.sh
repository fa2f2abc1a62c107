#!/usr/bin/env bash
# Rebuilds vendor/: the tract crates that squeezebox patches (see
# vendor/README.md), from their crates.io releases, checked against their
# sha256, with vendor/tract.patch applied. Only for moving to another tract
# release or changing the patch: the build uses the committed copies.
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.23.9
declare -A digest=(
    [tract-core]=bb76580817f14ceb9f054d3732c1d09575940e88fa5bbfc85c3eae34482bb089
    [tract-onnx]=43727ce75fcd18908927e6e1b47d043fe5606d8b85c8ea6aa36481406d37b24a
    [tract-nnef]=3bdfc2f17d10eaf04d27f7a2d7b45e3dc41ffd0bc6c1e48d87636d7e960d441d
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for crate in "${!digest[@]}"; do
    archive="$work/$crate.crate"
    curl -sSfL -o "$archive" "https://static.crates.io/crates/$crate/$crate-$version.crate"
    echo "${digest[$crate]}  $archive" | sha256sum --check --quiet
    tar xzf "$archive" -C "$work"
    src="$work/$crate-$version"
    # The library alone: its benches and tests go, with their manifest
    # entries, so that the copy holds only what squeezebox builds.
    rm -rf "$src"/{benches,tests,examples,Cargo.toml.orig,Cargo.lock,.cargo_vcs_info.json}
    awk '/^\[\[(bench|test|example)\]\]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' \
        "$src/Cargo.toml" > "$work/Cargo.toml"
    mv "$work/Cargo.toml" "$src/Cargo.toml"
    rm -rf "vendor/$crate"
    mv "$src" "vendor/$crate"
done
# VENDOR_UNPATCHED=1 leaves the releases as they are, to write a new patch
# against them.
if [[ "${VENDOR_UNPATCHED:-}" != 1 ]]; then
    git apply vendor/tract.patch
fi
echo "vendor/: ${!digest[*]} $version${VENDOR_UNPATCHED:+, unpatched}"
