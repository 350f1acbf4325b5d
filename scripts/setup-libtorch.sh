#!/usr/bin/env bash
# Installs libtorch 2.13.0 (the version tch 0.26.0 binds to) into .libtorch/ from PyPI's torch
# wheels, for the machine it runs on:
#   Linux x86_64   the CUDA 13 build, plus the two small CUDA runtime wheels that even
#                  libtorch_cpu.so links against (PyPI has no CPU-only wheel);
#   Linux aarch64  the same for Arm (Raspberry Pi 5, Jetson: calibration on the CPU);
#   macOS arm64    the macosx_14_0 wheel (CPU and Apple's MPS; macOS 14 or later).
# Anything else gets one line saying there is no wheel, and exit 1.
#
#   scripts/setup-libtorch.sh                   install for this machine (idempotent)
#   scripts/setup-libtorch.sh --cuda            also torch's CUDA libraries (about 3 GB more), for
#                                               `calibrate --on cuda` on Linux with an NVIDIA GPU
#   scripts/setup-libtorch.sh --resolve [OS-ARCH]
#                                               print the wheels pip resolves for OS-ARCH (as
#                                               `uname -s`-`uname -m`: Linux-aarch64, Darwin-arm64;
#                                               default this machine); downloads no wheel
#
# Jetson: PyPI's aarch64 wheel is a CUDA 13 build for Arm servers (SBSA), which JetPack 6 and
# older (L4T R36 and below, CUDA 12.6 at most: the Orin Nano) cannot run; CUDA wheels for them
# come from NVIDIA, per JetPack release, not PyPI (see README, "Platforms"). This script installs
# the CPU set there and refuses --cuda; on L4T R38 and later (CUDA 13) it tries, untested.
set -euo pipefail
version=2.13.0
here=$(cd "$(dirname "$0")/.." && pwd)
dest="$here/.libtorch"

die() {
    echo "setup-libtorch: $*" >&2
    exit 1
}

mode=install
cuda=0
target="$(uname -s)-$(uname -m)"
while [ $# -gt 0 ]; do
    case "$1" in
        --cuda) cuda=1 ;;
        --resolve)
            mode=resolve
            if [ $# -gt 1 ] && [ "${2#-}" = "$2" ]; then
                target="$2"
                shift
            fi
            ;;
        *) die "unknown argument '$1' (expected --cuda, --resolve [OS-ARCH])" ;;
    esac
    shift
done

is_jetson() {
    [ -f /etc/nv_tegra_release ] || grep -qi jetson /proc/device-tree/model 2>/dev/null
}

# The L4T major release ("# R36 (release), ..." -> 36); 0 when unknown.
l4t_release() {
    sed -n 's/^# R\([0-9]*\).*/\1/p' /etc/nv_tegra_release 2>/dev/null | head -1 | grep . || echo 0
}

# Per platform: pip's platform tags and the pinned wheels (PyPI's sha256 of each file).
case "$target" in
    Linux-x86_64 | Linux-amd64)
        tags="manylinux_2_28_x86_64 manylinux_2_25_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64"
        pins="torch==$version --hash=sha256:60fcdcb2f3876e21146cb4524ef06397d727ca9ad5f020818547e25075fe3cb7
nvidia-cuda-runtime==13.0.96 --hash=sha256:7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548
nvidia-cuda-cupti==13.0.85 --hash=sha256:4eb01c08e859bf924d222250d2e8f8b8ff6d3db4721288cf35d14252a4d933c8"
        ;;
    Linux-aarch64 | Linux-arm64)
        tags="manylinux_2_28_aarch64 manylinux_2_25_aarch64 manylinux_2_17_aarch64 manylinux2014_aarch64"
        pins="torch==$version --hash=sha256:092790c696a760c729fd5722835f50b9d81fd7c8f141571f3f3cf4081a8f664c
nvidia-cuda-runtime==13.0.96 --hash=sha256:ef9bcbe90493a2b9d810e43d249adb3d02e98dd30200d86607d8d02687c43f55
nvidia-cuda-cupti==13.0.85 --hash=sha256:796bd679890ee55fb14a94629b698b6db54bcfd833d391d5e94017dd9d7d3151"
        ;;
    Darwin-arm64 | Darwin-aarch64)
        tags="macosx_14_0_arm64"
        pins="torch==$version --hash=sha256:e76f9bcecc52b8ff711239a2f7547d5353df95878ab232f0773c1d95928b92f8"
        ;;
    *)
        die "no libtorch $version wheel on PyPI for ${target} (there are wheels for Linux x86_64, Linux aarch64 and macOS arm64); build without the torch feature (make build FEATURES=llamacpp) or set LIBTORCH to a libtorch $version you built"
        ;;
esac

platform_args=()
for t in $tags; do platform_args+=(--platform "$t"); done
req=$(mktemp)
report=$(mktemp)
trap 'rm -f "$req" "$report"' EXIT
printf '%s\n' "$pins" >"$req"

python3 -m pip --version >/dev/null 2>&1 \
    || die "needs python3 with pip (Debian, Raspberry Pi OS, Ubuntu: sudo apt-get install python3-pip)"

if [ "$mode" = resolve ]; then
    # pip's own resolver, metadata only (--dry-run): which file each pin selects for the
    # platform, and whether PyPI's hash of that file is the pinned one.
    python3 -m pip install --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version 3.11 "${platform_args[@]}" --target "$dest.resolve-only" --ignore-installed \
        --dry-run --report "$report" -r "$req" >&2 || die "pip could not resolve the $target wheels"
    python3 - "$report" "$req" <<'PY'
import json, sys
report, req = sys.argv[1], sys.argv[2]
pinned = {}
for line in open(req):
    name, _, rest = line.partition("==")
    pinned[name.strip().lower().replace("_", "-")] = rest.split("sha256:")[1].strip()
for item in json.load(open(report))["install"]:
    info = item["download_info"]
    name = item["metadata"]["name"].lower().replace("_", "-")
    got = info["archive_info"]["hashes"]["sha256"]
    if pinned.get(name) != got:
        sys.exit(f"setup-libtorch: PyPI's {info['url'].rsplit('/', 1)[1]} has sha256 {got}, the pin says {pinned.get(name)}")
    print(info["url"].rsplit("/", 1)[1], f"sha256={got}")
PY
    exit 0
fi

# Install for this machine only: the wheels' native libraries must run here.
[ "$target" = "$(uname -s)-$(uname -m)" ] || die "installs only for this machine; use --resolve $target"
if [ "$(uname -s)" = Darwin ]; then
    major=$(sw_vers -productVersion | cut -d. -f1)
    [ "$major" -ge 14 ] || die "torch $version's macOS wheel needs macOS 14 or later (this is $(sw_vers -productVersion))"
fi
if [ "$cuda" = 1 ]; then
    [ "$(uname -s)" = Linux ] || die "--cuda: CUDA wheels exist for Linux only (on Apple silicon, calibrate --on mps)"
    if is_jetson && [ "$(l4t_release)" -lt 38 ]; then
        die "--cuda: PyPI's CUDA 13 aarch64 wheel does not run on JetPack 6 or older (L4T R$(l4t_release)); install NVIDIA's torch $version wheel for your JetPack and build with LIBTORCH=<its site-packages>/torch (see README, Platforms)"
    fi
fi

stamp="$dest/.installed-$version"
[ "$cuda" = 1 ] && stamp="$dest/.installed-$version-cuda"
[ -f "$stamp" ] && exit 0

rm -rf "$dest"
if [ "$cuda" = 1 ]; then
    # torch with its dependencies as pip resolves them for this machine: cuBLAS, cuDNN, NCCL
    # and the rest that libtorch_cuda.so needs. Only torch's version is pinned here.
    echo "setup-libtorch: installing libtorch $version with its CUDA libraries into $dest (about 4.5 GB, once)" >&2
    python3 -m pip install --quiet --disable-pip-version-check --only-binary=:all: --target "$dest" \
        "torch==$version"
else
    echo "setup-libtorch: installing libtorch $version wheels for $target into $dest (about 1.2 GB, once)" >&2
    python3 -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
        --only-binary=:all: --python-version 3.11 "${platform_args[@]}" --target "$dest" -r "$req"
fi

# Linux: libtorch_cpu.so finds libcudart/libcupti through the rpath the wheel sets relative to
# torch/lib; link them next to libtorch so one directory serves the linker and the loader.
for lib in "$dest"/nvidia/cu13/lib/*.so* "$dest"/nvidia/*/lib/*.so*; do
    [ -e "$lib" ] && ln -sf "$lib" "$dest/torch/lib/$(basename "$lib")"
done
is_jetson && echo "setup-libtorch: Jetson: this libtorch calibrates on the CPU (--on cpu); see README, Platforms, for CUDA" >&2
touch "$dest/.installed-$version" "$stamp"
