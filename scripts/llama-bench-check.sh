#!/usr/bin/env bash
# `devices fit` on a real llama-bench run: what a user with a device does, done here.
#  1. Builds llama.cpp's own llama-bench (the llama.cpp tree the llama-cpp-python source package
#     ships, pinned below; the Rust crates ship no llama-bench sources).
#  2. Writes GGUF files of random weights for four real model shapes (`rooflinebench measure
#     --keep`, llama.cpp's own quantiser).
#  3. Times two of them with llama-bench (-o json): the fitted runs; and the other two: the
#     held-out runs.
#  4. Fits a profile from the first file with `devices fit` (models resolved from the GGUF files
#     llama-bench names) and predicts the held-out runs with it, and with BASE (this machine's
#     `calibrate --engine llama.cpp` profile) for comparison.
# Timing needs a quiet machine: run nothing else meanwhile.
# Usage: scripts/llama-bench-check.sh [BIN] [BASE]   -> target/llama-bench-check/report.txt
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/rooflinebench}
BASE=${2:-devices/this-machine-llamacpp.json}
LCP_VERSION=0.3.36
OUT=target/llama-bench-check
THREADS=${THREADS:-$(nproc)}
mkdir -p "$OUT"
[[ -f $BASE ]] || { echo "$BASE: missing (run: $BIN calibrate --engine llama.cpp --out $BASE)" >&2; exit 2; }

LB=$OUT/build/bin/llama-bench
if [[ ! -x $LB ]]; then
  src=$OUT/src/llama_cpp_python-$LCP_VERSION/vendor/llama.cpp
  if [[ ! -d $src ]]; then
    python3 -m pip download --quiet --no-binary :all: --no-deps "llama-cpp-python==$LCP_VERSION" -d "$OUT/src"
    tar -xzf "$OUT/src/llama_cpp_python-$LCP_VERSION.tar.gz" -C "$OUT/src"
  fi
  cmake -S "$src" -B "$OUT/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF >"$OUT/cmake.log"
  cmake --build "$OUT/build" --target llama-bench -j "$THREADS" >"$OUT/build.log"
fi
export LD_LIBRARY_PATH=$OUT/build/bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

FIT_MODELS=(SmolLM2-135M Llama-3.2-1B)
HELD_MODELS=(Qwen2.5-0.5B Qwen3-0.6B)
FORMATS=(q8_0 q4_k_m)
models=$(printf 'models/%s.json,' "${FIT_MODELS[@]}" "${HELD_MODELS[@]}")
"$BIN" measure --model "${models%,}" --weights "$(IFS=,; echo "${FORMATS[*]}")" --test tg4 --repeats 1 \
  --keep "$OUT/models" >/dev/null

files() { local out=(); for m in "$@"; do for f in "${FORMATS[@]}"; do out+=("$OUT/models/$m.$f.gguf"); done; done; (IFS=,; echo "${out[*]}"); }
"$LB" -m "$(files "${FIT_MODELS[@]}")" -p 512 -n 128 -r 3 -t "$THREADS" -o json >"$OUT/fit.json"
"$LB" -m "$(files "${HELD_MODELS[@]}")" -p 512 -n 128 -r 3 -t "$THREADS" -o json >"$OUT/heldout.json"

{
  echo "# devices fit on llama-bench ($LCP_VERSION's llama.cpp), $(date -u +%Y-%m-%d), $THREADS threads"
  echo "fitted: ${FIT_MODELS[*]} (${FORMATS[*]}); held out: ${HELD_MODELS[*]} (${FORMATS[*]})"
  echo
  "$BIN" devices fit --llama-bench "$OUT/fit.json" --holdout "$OUT/heldout.json" --base "$BASE" \
    --name this-machine-llama-bench --out "$OUT/profile.json"
  echo
  echo "# the same held-out runs predicted by $BASE (calibrate --engine llama.cpp, the tool's own runs)"
  "$BIN" devices check --llama-bench "$OUT/heldout.json" --device "$BASE"
} | tee "$OUT/report.txt"
