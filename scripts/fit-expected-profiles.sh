#!/usr/bin/env bash
# Fits the built-in expected profiles (devices/NAME.json) from the public llama-bench runs under
# data/llama-bench/NAME/, on the datasheet profile NAME-datasheet's memory and bandwidth.
# Each device folder has a split.txt:
#   fit: a.md b.md            the files fitted
#   holdout: c.md             files predicted with the fitted profile and compared, never fitted
#                             (the agreement goes into the profile's notes.held_out_agreement)
#   threads-from: d.md e.md   optional: runs of the fitted models at other thread counts (one
#                             count per file), for the profile's rates at those counts
#   fixed-cost-from: OTHER    optional: runs of one model size cannot separate a cost per kernel
#                             from bandwidth, so it is taken from OTHER's fit (same backend;
#                             OTHER is fitted first)
#   not-shipped: REASON       optional: the data is too thin for a profile; the fit is written
#                             to target/expected-fits/NAME.json for inspection only, and the
#                             plain name stays the datasheet upper bound (or the transferred
#                             profile of scripts/transfer-profiles.sh)
# Usage: scripts/fit-expected-profiles.sh [BIN] [DEVICE...]   (BIN: target/release/rooflinebench)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/rooflinebench}
shift || true
MODELS=$(ls models/*.json | paste -sd, -)
mkdir -p target/expected-fits

field() { sed -n "s/^$2:[[:space:]]*//p" "data/llama-bench/$1/split.txt"; }

devices=("$@")
if [[ ${#devices[@]} -eq 0 ]]; then
  # Devices that lend their cost per kernel come before those that borrow it.
  for d in data/llama-bench/*/; do
    d=$(basename "$d")
    [[ -f data/llama-bench/$d/split.txt ]] || { echo "data/llama-bench/$d/split.txt: missing" >&2; exit 2; }
    [[ -z $(field "$d" fixed-cost-from) ]] && devices+=("$d")
  done
  for d in data/llama-bench/*/; do
    d=$(basename "$d")
    [[ -n $(field "$d" fixed-cost-from) ]] && devices+=("$d")
  done
fi

for device in "${devices[@]}"; do
  dir=data/llama-bench/$device
  [[ -f $dir/split.txt ]] || { echo "$dir/split.txt: missing" >&2; exit 2; }
  fitted=$(field "$device" fit)
  held=$(field "$device" holdout)
  donor=$(field "$device" fixed-cost-from)
  sweep=$(field "$device" threads-from)
  skip=$(field "$device" not-shipped)
  [[ -n $fitted ]] || { echo "$dir/split.txt: field fit: expected at least one file" >&2; exit 2; }
  paths() { local out=(); for f in $1; do out+=("$dir/$f"); done; (IFS=,; echo "${out[*]}"); }
  out=devices/$device.json
  base=$device-datasheet
  if [[ -n $skip ]]; then
    out=target/expected-fits/$device.json
    # The plain name is the datasheet upper bound, or a transferred profile beside NAME-datasheet.
    [[ -f devices/$device-datasheet.json ]] || base=$device
    echo "== $device (not shipped: $skip)"
  else
    echo "== $device"
  fi
  args=(devices fit --base "$base" --name "$device" --model "$MODELS" --llama-bench "$(paths "$fitted")" --out "$out")
  [[ -n $held ]] && args+=(--holdout "$(paths "$held")")
  [[ -n $donor ]] && args+=(--fixed-cost-from "devices/$donor.json")
  [[ -n $sweep ]] && args+=(--threads-from "$(paths "$sweep")")
  "$BIN" "${args[@]}"
done

python3 scripts/expected-profiles-table.py
