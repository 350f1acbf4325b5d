#!/usr/bin/env bash
# Installs libtorch 2.13.0 (the version tch 0.26.0 binds to) into .libtorch/ from PyPI wheels.
# PyPI is the only reachable source; it has no CPU-only wheel, so we take the CUDA 13 build
# plus the two small CUDA runtime wheels that even libtorch_cpu.so links against.
# Idempotent: a second run with the stamp present returns at once.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dest="$here/.libtorch"
stamp="$dest/.installed-2.13.0"
[ -f "$stamp" ] && exit 0

req=$(mktemp)
trap 'rm -f "$req"' EXIT
cat >"$req" <<'REQ'
torch==2.13.0 --hash=sha256:60fcdcb2f3876e21146cb4524ef06397d727ca9ad5f020818547e25075fe3cb7
nvidia-cuda-runtime==13.0.96 --hash=sha256:7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548
nvidia-cuda-cupti==13.0.85 --hash=sha256:4eb01c08e859bf924d222250d2e8f8b8ff6d3db4721288cf35d14252a4d933c8
REQ

echo "setup-libtorch: installing libtorch 2.13.0 wheels into $dest (about 1.2 GB, once)" >&2
rm -rf "$dest"
python3 -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
    --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_25_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --target "$dest" -r "$req"

# libtorch_cpu.so finds libcudart/libcupti through the rpath the wheel sets relative to torch/lib;
# link them next to libtorch so one directory serves the linker and the loader.
for lib in "$dest"/nvidia/cu13/lib/*.so* "$dest"/nvidia/*/lib/*.so*; do
    [ -e "$lib" ] && ln -sf "$lib" "$dest/torch/lib/$(basename "$lib")"
done
touch "$stamp"
