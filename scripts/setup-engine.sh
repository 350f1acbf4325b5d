#!/usr/bin/env bash
# Installs what building llama.cpp (feature `llamacpp`, crate llama-cpp-sys-2) needs: cmake, a
# C/C++ compiler and libclang for bindgen, from Debian's packages when missing. Idempotent.
set -euo pipefail
need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v g++ >/dev/null 2>&1 || command -v c++ >/dev/null 2>&1 || need+=(g++)
# bindgen loads libclang.so or libclang-N.so; libclang-cpp (another package) does not do.
compgen -G "/usr/lib/llvm-*/lib/libclang.so*" >/dev/null || compgen -G "/usr/lib/*-linux-gnu/libclang-[0-9]*.so*" >/dev/null \
    || need+=(libclang-dev)
[ ${#need[@]} -eq 0 ] && exit 0
echo "setup-engine: installing ${need[*]} (Debian packages) to build llama.cpp" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${need[@]}" >/dev/null
