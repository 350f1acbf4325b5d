#!/usr/bin/env bash
# Fits the built-in expected profiles (devices/NAME.json) from the public llama-bench runs under
# data/llama-bench/NAME/, on the datasheet profile NAME-datasheet's memory and bandwidth.
# Each device folder has a split.txt that says which files are fitted and which are held out:
#   fit: a.md b.md
#   holdout: c.md
# Held-out files are not fitted: they are predicted with the fitted profile and compared, and the
# agreement goes into the profile's notes.held_out_agreement. A device without a folder stays
# the datasheet upper bound under its plain name.
# Usage: scripts/fit-expected-profiles.sh [BIN] [DEVICE...]   (BIN: target/release/rooflinebench)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/rooflinebench}
shift || true
MODELS=$(ls models/*.json | paste -sd, -)

devices=("$@")
if [[ ${#devices[@]} -eq 0 ]]; then
  for d in data/llama-bench/*/; do devices+=("$(basename "$d")"); done
fi

for device in "${devices[@]}"; do
  dir=data/llama-bench/$device
  split=$dir/split.txt
  [[ -f $split ]] || { echo "$split: missing (expected 'fit: FILE...' and 'holdout: FILE...' lines)" >&2; exit 2; }
  fitted=$(sed -n 's/^fit:[[:space:]]*//p' "$split")
  held=$(sed -n 's/^holdout:[[:space:]]*//p' "$split")
  [[ -n $fitted ]] || { echo "$split: field fit: expected at least one file" >&2; exit 2; }
  paths() { local out=(); for f in $1; do out+=("$dir/$f"); done; (IFS=,; echo "${out[*]}"); }
  args=(devices fit --base "$device-datasheet" --name "$device" --model "$MODELS"
        --llama-bench "$(paths "$fitted")" --out "devices/$device.json")
  [[ -n $held ]] && args+=(--holdout "$(paths "$held")")
  echo "== $device"
  "$BIN" "${args[@]}"
done
