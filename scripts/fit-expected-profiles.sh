#!/usr/bin/env bash
# Fits the built-in expected profiles (devices/NAME.json) from the public llama-bench runs under
# data/llama-bench/NAME/, on the datasheet profile NAME-datasheet's memory and bandwidth.
# Files named in a device's HOLDOUT list are not fitted: they are predicted with the fitted
# profile and compared, and the agreement goes into the profile's notes.held_out_agreement.
# A device folder without data is skipped: its plain name stays the datasheet upper bound.
# Usage: scripts/fit-expected-profiles.sh [BIN]   (BIN: target/release/rooflinebench)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/rooflinebench}
MODELS=$(ls models/*.json | paste -sd, -)

# device | fitted files | held-out files (paths under data/llama-bench/DEVICE/)
FITS=(
  "rtx3090|pr4766-backend-sched.md|pr4766-master.md"
  "rtx4090|pr4766-ggerganov.md|pr7676-mmq.md"
)

for entry in "${FITS[@]}"; do
  IFS='|' read -r device fitted held <<<"$entry"
  dir=data/llama-bench/$device
  join() { local out=(); for f in ${1//,/ }; do out+=("$dir/$f"); done; (IFS=,; echo "${out[*]}"); }
  args=(devices fit --base "$device-datasheet" --name "$device" --model "$MODELS"
        --llama-bench "$(join "$fitted")" --out "devices/$device.json")
  [[ -n "$held" ]] && args+=(--holdout "$(join "$held")")
  echo "== $device"
  "$BIN" "${args[@]}"
done
