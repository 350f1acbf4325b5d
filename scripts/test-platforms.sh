#!/usr/bin/env bash
# Checks the set-up for the platforms we cannot run here (called by `make test`; about a minute,
# downloads index pages and wheel metadata only):
# 1. scripts/setup-libtorch.sh --resolve: pip's resolver picks, for each platform, the wheel file
#    named below (written from PyPI's file list, not from the script), with the pinned hash;
# 2. platforms without a wheel get one line naming them and a non-zero exit, and pip itself
#    finds no torch 2.13.0 for them (the claim is PyPI's, not only our table's);
# 3. the llama.cpp backend features switch on llama-cpp-sys-2's cuda / metal / vulkan features
#    (cargo's feature graph only; nothing is built).
set -uo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() {
    echo "test-platforms: FAIL: $*" >&2
    fail=1
}

expect_Linux_x86_64="torch-2.13.0-cp311-cp311-manylinux_2_28_x86_64.whl
nvidia_cuda_runtime-13.0.96-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl
nvidia_cuda_cupti-13.0.85-py3-none-manylinux_2_25_x86_64.whl"
expect_Linux_aarch64="torch-2.13.0-cp311-cp311-manylinux_2_28_aarch64.whl
nvidia_cuda_runtime-13.0.96-py3-none-manylinux2014_aarch64.manylinux_2_17_aarch64.whl
nvidia_cuda_cupti-13.0.85-py3-none-manylinux_2_25_aarch64.whl"
expect_Darwin_arm64="torch-2.13.0-cp311-cp311-macosx_14_0_arm64.whl"

# 1. Resolution, the three platforms in parallel (each is mostly waiting on the index).
supported="Linux-x86_64 Linux-aarch64 Darwin-arm64"
for p in $supported; do
    bash scripts/setup-libtorch.sh --resolve "$p" >"$tmp/$p.out" 2>"$tmp/$p.err" &
done
wait
for p in $supported; do
    var="expect_${p//-/_}"
    got=$(cut -d' ' -f1 "$tmp/$p.out" | sort)
    want=$(printf '%s\n' "${!var}" | sort)
    if [ "$got" != "$want" ]; then
        bad "$p resolved to [$got], expected [$want]; stderr: $(cat "$tmp/$p.err")"
    else
        echo "test-platforms: $p -> $(head -1 "$tmp/$p.out" | cut -d' ' -f1) (+$(($(wc -l <"$tmp/$p.out") - 1)) runtime wheels), hashes as pinned"
    fi
done

# 2. No wheel: the script's answer, then PyPI's.
before=$fail
for p in Darwin-x86_64 Linux-armv7l Linux-riscv64 MINGW64_NT-10.0-x86_64; do
    if bash scripts/setup-libtorch.sh --resolve "$p" >"$tmp/out" 2>"$tmp/err"; then
        bad "$p: expected a refusal, got success"
    elif [ "$(wc -l <"$tmp/err")" -ne 1 ] || ! grep -q "no libtorch 2.13.0 wheel on PyPI for $p" "$tmp/err"; then
        bad "$p: expected one line naming the platform, got: $(cat "$tmp/err")"
    fi
done
for tag in macosx_14_0_x86_64 linux_armv7l; do
    if python3 -m pip install --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version 3.11 --platform "$tag" --target "$tmp/never" --dry-run torch==2.13.0 2>"$tmp/err"; then
        bad "pip found a torch 2.13.0 wheel for $tag: update setup-libtorch.sh's platform table"
    elif ! grep -q "No matching distribution found for torch==2.13.0" "$tmp/err"; then
        bad "pip failed for $tag for another reason (offline?): $(tail -1 "$tmp/err")"
    fi
done
[ "$fail" = "$before" ] \
    && echo "test-platforms: macOS x86_64, 32-bit Arm, RISC-V, Windows: refused in one line; PyPI has no wheel for the first two"

# 3. llama.cpp backends: each feature reaches llama-cpp-sys-2's backend feature, the plain
#    engine reaches none of them.
before=$fail
for backend in cuda metal vulkan; do
    cargo tree --locked -e features --features "llamacpp-$backend" -i llama-cpp-sys-2 >"$tmp/tree" 2>"$tmp/err" \
        || bad "cargo tree --features llamacpp-$backend: $(tail -1 "$tmp/err")"
    grep -q "llama-cpp-sys-2 feature \"$backend\"" "$tmp/tree" \
        || bad "--features llamacpp-$backend does not enable llama-cpp-sys-2/$backend"
done
cargo tree --locked -e features --features llamacpp -i llama-cpp-sys-2 >"$tmp/tree" 2>&1
if grep -qE 'llama-cpp-sys-2 feature "(cuda|metal|vulkan)"' "$tmp/tree"; then
    bad "--features llamacpp alone enables a GPU backend"
fi
[ "$fail" = "$before" ] \
    && echo "test-platforms: llamacpp-cuda, -metal, -vulkan resolve to llama-cpp-sys-2's cuda, metal, vulkan features"
exit $fail
