#!/usr/bin/env bash
# Installs what squeezebox needs on a fresh Debian machine, idempotently:
#   - a C/C++ compiler, Python's venv and the DejaVu font for plots (Debian
#     packages), and a Rust toolchain if none is on PATH;
#   - .venv: onnx + onnxruntime (conformance, peers) and, unless --no-torch,
#     the PyTorch 2.13.0 wheel, whose libtorch the trainer links through tch,
#     with what `import torch` and torch.onnx.export need for the tests;
#   - .venv/libtorch: libtorch's headers and libraries in one place, which
#     .cargo/config.toml points the build (LIBTORCH) and the binaries (rpath) at.
set -euo pipefail
cd "$(dirname "$0")/.."

with_torch=1
[[ "${1:-}" == "--no-torch" ]] && with_torch=0

say() { printf '\033[1msetup:\033[0m %s\n' "$*"; }

as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }

apt_install() {
    local missing=()
    for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
    if ((${#missing[@]})); then
        say "installing Debian packages: ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

if command -v apt-get >/dev/null; then
    apt_install gcc g++ make ca-certificates python3 fonts-dejavu-core
    python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv python3-pip
    # Debian's own toolchain (1.96) is recent enough when rustup is absent.
    command -v cargo >/dev/null || apt_install rustc-web cargo-web
fi

python3 -m venv .venv
# No wheel cache: the torch wheels would be kept twice (some 4 GB more).
pip() { .venv/bin/python -m pip -q --disable-pip-version-check --no-cache-dir "$@"; }

# The PyTorch install takes some 5 GB; on a disk that surely lacks the room
# this says so in one line, instead of pip failing midway with a traceback.
need_space() {
    local free_kb
    free_kb=$(df -Pk . | awk 'NR == 2 { print $4 }')
    if ((free_kb < $1 * 1024 * 1024)); then
        echo "setup: $(pwd): $((free_kb / 1024 / 1024)) GB free, and $2 needs about $1 GB" >&2
        exit 2
    fi
}
if ! cmp -s scripts/python-requirements.txt .venv/.requirements 2>/dev/null; then
    say "installing onnx and onnxruntime into .venv"
    pip install -r scripts/python-requirements.txt
    cp scripts/python-requirements.txt .venv/.requirements
fi

if ((with_torch)) && [[ ! -e .venv/libtorch/.complete ]]; then
    # Only libtorch is needed, not PyTorch's CUDA stack (4 GB): the wheel
    # alone, plus the two CUDA runtime libraries libtorch_cpu.so links.
    need_space 2 "the PyTorch wheel"
    say "installing the PyTorch 2.13.0 wheel (libtorch for tch, about 1.2 GB)"
    pip install --no-deps torch==2.13.0 'nvidia-cuda-runtime==13.0.96.*' 'nvidia-cuda-cupti==13.0.85.*'
    site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    rm -rf .venv/libtorch && mkdir -p .venv/libtorch/lib
    ln -s "$site/torch/include" .venv/libtorch/include
    ln -s "$site"/torch/lib/*.so* "$site"/nvidia/cu13/lib/*.so* .venv/libtorch/lib/
    touch .venv/libtorch/.complete
fi
if ((with_torch)) && [[ ! -e .venv/.torch-python ]]; then
    # The tests of `compress import` export nets with torch.onnx.export, as
    # users do: Python's `import torch` needs the wheel's CUDA libraries
    # (about 3 GB more), and the exporter needs onnxscript.
    need_space 3 "PyTorch's Python dependencies"
    say "installing PyTorch's Python dependencies and onnxscript"
    pip install torch==2.13.0 'onnxscript==0.7.2'
    touch .venv/.torch-python
fi
say "ready"
