#!/usr/bin/env bash
# Cross-builds label-image for ARM boards and, with --check, checks under
# qemu that the ARM builds label pictures as the x86-64 build does.
#
#   bash scripts/cross.sh [--target aarch64|armv7|all] [--profile NAME]
#                         [--check] [--model FILE]... [--x86 FILE]
#
#   --target   which board family (default: all)
#   --profile  cargo profile (default: release, what users get; scripts/test.sh
#              uses cross-ci, the same with cheaper LTO)
#   --check    run every picture in ../shared/images through the x86-64 build
#              and, under qemu, the ARM builds; fail unless each ARM build
#              gives the same top-1 and every probability within 1e-4
#   --model    the model to check with (repeatable; default models/squeeze1.onnx)
#   --x86      the x86-64 label-image to check against (default: build one
#              with the same profile; scripts/test.sh passes the one its
#              tests just built, which saves CI a build)
#
# Installs what it needs on Debian, idempotently: Debian's own Rust toolchain
# (beside rustup's, which cannot add targets here), std's source (built
# with -Zbuild-std for both targets), the gcc cross compilers, lld and
# qemu-user. Binaries: target/cross/<target>/<profile>/label-image.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(aarch64 armv7)
profile=release
check=0
models=()
x86=
while (($#)); do
    case "$1" in
        --target)
            case "${2:-}" in
                aarch64 | armv7) targets=("$2") ;;
                all) targets=(aarch64 armv7) ;;
                *) echo "cross.sh: --target takes aarch64, armv7 or all" >&2; exit 2 ;;
            esac
            shift 2 ;;
        --profile) profile="${2:?--profile takes a cargo profile name}"; shift 2 ;;
        --check) check=1; shift ;;
        --model) models+=("${2:?--model takes a file}"); shift 2 ;;
        --x86) x86="${2:?--x86 takes a file}"; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "cross.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
((${#models[@]})) || models=(models/squeeze1.onnx)
# Checked before the builds, which take minutes.
[[ -z $x86 || -x $x86 ]] || { echo "cross.sh: $x86 is no x86-64 label-image (--x86)" >&2; exit 2; }

say() { printf '\033[1mcross:\033[0m %s\n' "$*"; }
die() { printf '\033[1mcross:\033[0m error: %s\n' "$*" >&2; exit 1; }

as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }

# tract 0.23.9 needs rustc 1.91; bookworm has 1.85, bookworm-security 1.96.
rust_ok() {
    local v
    v=$(/usr/bin/rustc --version 2>/dev/null | awk '{print $2}') || return 1
    [[ -n "$v" ]] && [[ "$(printf '%s\n' 1.91.0 "$v" | sort -V | head -1)" == 1.91.0 ]]
}

apt_updated=0
apt_update() {
    ((apt_updated)) && return
    if ! as_root apt-get update -qq; then
        # A mirror mid-sync fails one index (seen: bookworm-security armhf,
        # on a machine where an older version of this script had added the
        # armhf and arm64 architectures), and apt then keeps the whole
        # suite's stale lists, without Rust 1.96. Nothing here needs those
        # architectures' packages now, so do without their indexes.
        say "apt-get update failed; retrying with the amd64 index only"
        as_root apt-get update -qq -o APT::Architectures::=amd64
    fi
    apt_updated=1
}

apt_install() {
    local missing=()
    for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
    if ((${#missing[@]})); then
        say "installing Debian packages: ${missing[*]}"
        apt_update
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

rust_pkgs=(rustc-web cargo-web rust-web-src)
for t in "${targets[@]}"; do
    case "$t" in
        aarch64) apt_install gcc-aarch64-linux-gnu libc6-dev-arm64-cross ;;
        armv7) apt_install gcc-arm-linux-gnueabihf libc6-dev-armhf-cross ;;
    esac
done
((check)) && apt_install qemu-user
apt_install lld "${rust_pkgs[@]}"
if ! rust_ok; then
    say "Debian's rustc is $(/usr/bin/rustc --version | awk '{print $2}'); upgrading to bookworm-security's"
    apt_updated=0
    apt_update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${rust_pkgs[@]}" >/dev/null
    rust_ok || die "/usr/bin/rustc is $(/usr/bin/rustc --version); tract needs 1.91 (bookworm-security has 1.96)"
fi

triple() { case "$1" in aarch64) echo aarch64-unknown-linux-gnu ;; armv7) echo armv7-unknown-linux-gnueabihf ;; esac; }

# Debian's toolchain gets its own target directory: its artifacts would
# otherwise invalidate rustup's and the other way round.
export CARGO_TARGET_DIR=target/cross
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc
# Linked by lld, which folds functions whose machine code is identical
# (--icf=all; monomorphised generics make them common). The cross gcc
# looks for ld.lld in the -B folder: Debian's is llvm's own, not on PATH
# under the name gcc asks for. These add to .cargo/config.toml's flags,
# which stay what any toolchain can link with.
#
# armv7 links with -O0 besides, which leaves constants unmerged: on ARM32,
# whose objects keep relocation addends in the code (REL), lld's ICF (14,
# Debian's; llvm-project#138764) reads the addend of a relocation into
# merged constants as 0, and folded functions that differ: the type_id of
# unrelated types, so that tract's downcast_ref::<Const>() took another op
# for a Const and static int8 files crashed (issue 35, docs/arm.md).
# Unmerged, the constants are plain sections, which ICF compares correctly.
lld_dir=$(dirname "$(readlink -f "$(command -v ld.lld)")")
link_flags() {
    local flags="\"-C\", \"link-arg=-B$lld_dir\", \"-C\", \"link-arg=-fuse-ld=lld\", \"-C\", \"link-arg=-Wl,--icf=all\""
    [[ $1 == armv7 ]] && flags+=", \"-C\", \"link-arg=-Wl,-O0\""
    echo "[$flags]"
}
for t in "${targets[@]}"; do
    tt=$(triple "$t")
    say "building label-image for $tt ($profile profile)"
    start=$SECONDS
    # std is built from rust-web-src, as part of the program: Debian ships
    # no armhf std for 1.96, and the aarch64 one carries unwind tables
    # (0.7 MB) that panic = "abort" never reads, and code LTO cannot drop.
    # Its features are cargo's defaults less "backtrace": a panic still
    # prints its message, but std links no debug-info reader (gimli,
    # addr2line) to symbolise a backtrace that a stripped binary has no
    # symbols for anyway. label-image's default "all-ops" is off: boards
    # read squeezebox's files, and other tools' files of the same ops
    # (runtime/src/onnx_ops.rs), in a binary that stays under 8 MB.
    RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc nice -n 10 /usr/bin/cargo build --locked -q \
        -Zbuild-std=std,panic_abort -Zbuild-std-features=panic-unwind \
        --config "target.$tt.rustflags=$(link_flags "$t")" \
        --no-default-features --profile "$profile" -p label-image --target "$tt"
    bin="$CARGO_TARGET_DIR/$tt/$profile/label-image"
    say "$bin: $(stat -c %s "$bin") bytes, built in $((SECONDS - start)) s"
done

((check)) || exit 0

# The reference: x86-64, built by the usual (rustup) toolchain.
unset CARGO_TARGET_DIR
if [[ -z $x86 ]]; then
    say "building label-image for x86-64 ($profile profile)"
    nice -n 10 cargo build --locked -q --profile "$profile" -p label-image
    x86="target/$profile/label-image"
fi
python=.venv/bin/python
[[ -x $python ]] || die "$python is missing: run scripts/setup.sh first"

images=(../shared/images/*.png ../shared/images/*.jpg)
[[ -e ${images[0]} ]] || die "no sample pictures in ../shared/images"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Every class's probability, one timed run: qemu timings mean nothing.
label() { "$@" --json --top-k 1000 --runs 1 --warmup 0; }
run_as() {
    local arch=$1 model=$2
    shift 2
    local cmd
    case "$arch" in
        x86_64) cmd=("$x86") ;;
        # cortex-a72: without it qemu offers SVE, and tract would skip the
        # NEON kernels that boards use.
        aarch64) cmd=(qemu-aarch64 -cpu cortex-a72 -L /usr/aarch64-linux-gnu
            "target/cross/$(triple aarch64)/$profile/label-image") ;;
        armv7) cmd=(qemu-arm -L /usr/arm-linux-gnueabihf
            "target/cross/$(triple armv7)/$profile/label-image") ;;
    esac
    mkdir -p "$work/$arch/single" "$work/$arch/batch"
    # Each picture alone (batch 1, as on a board), then all as one batch.
    for image in "${images[@]}"; do
        label "${cmd[@]}" --model "$model" "$image" >"$work/$arch/single/$(basename "$image").json" ||
            die "$arch label-image failed on $image"
    done
    label "${cmd[@]}" --model "$model" "${images[@]}" >"$work/$arch/batch/all.json" ||
        die "$arch label-image failed on the batch"
}

failed=0
for model in "${models[@]}"; do
    [[ -f $model ]] || die "$model not found (pass --model FILE)"
    say "checking $model on ${#images[@]} pictures: x86-64 against ${targets[*]} under qemu"
    rm -rf "${work:?}"/*
    for arch in x86_64 "${targets[@]}"; do run_as "$arch" "$model"; done
    for mode in single batch; do
        others=()
        for t in "${targets[@]}"; do others+=("$t-$mode=$work/$t/$mode"); done
        "$python" scripts/compare_labels.py "$work/x86_64/$mode" "${others[@]}" || failed=1
    done
done
((failed)) && die "an ARM build disagrees with x86-64 (above)"
say "ARM builds agree with x86-64"
