#!/usr/bin/env bash
# Transferred profiles (data/transfers.txt): a device with no public runs of its own gets a
# sibling's fitted llama.cpp profile on its own datasheet ceilings (`devices transfer`).
#   1. Every check transfers SIBLING to TARGET and predicts all of TARGET's public runs (none
#      fitted): how far the rule is off where it can be seen.
#   2. Each check again, with bands made from its group's checks of the other targets: how many
#      of its runs fall inside (leave one target out).
#   3. Each shipped transfer becomes devices/TARGET.json, with bands from its group's checks of
#      other targets, and TARGET's own public runs (if any) counted against them.
# Writes results/transfers.md. Run after scripts/fit-expected-profiles.sh (the siblings).
# Usage: scripts/transfer-profiles.sh [BIN]   (BIN: target/release/rooflinebench)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/rooflinebench}
MODELS=$(ls models/*.json | paste -sd, -)
work=target/transfers
mkdir -p "$work"

datasheet() { if [[ -f devices/$1-datasheet.json ]]; then echo "$1-datasheet"; else echo "$1"; fi; }
runs() { ls data/llama-bench/"$1"/*.md 2>/dev/null | paste -sd, - || true; }
mapfile -t lines < <(grep -v '^#' data/transfers.txt | grep -v '^[[:space:]]*$')
checks=() ships=()
for l in "${lines[@]}"; do
  read -r kind group target sibling <<<"$l"
  case $kind in
    check) checks+=("$group $target $sibling") ;;
    ship) ships+=("$group $target $sibling") ;;
    *) echo "data/transfers.txt: '$l': expected check or ship first" >&2; exit 2 ;;
  esac
done
check_file() { echo "$work/$1-$2-from-$3.json"; }
# The group's checks of targets other than $2 that were not transferred from $2 either (those
# rest on $2's own runs), as a --band-from list.
others() {
  local g t s out=()
  for c in "${checks[@]}"; do
    read -r g t s <<<"$c"
    [[ $g == "$1" && $t != "$2" && $s != "$2" ]] && out+=("$(check_file "$g" "$t" "$s")")
  done
  (IFS=,; echo "${out[*]}")
}

rows=()
for c in "${checks[@]}"; do
  read -r g t s <<<"$c"
  echo "== check: $t from $s ($g)"
  "$BIN" devices transfer --from "$s" --base "$(datasheet "$t")" --name "$t" --holdout "$(runs "$t")" \
    --model "$MODELS" --out "$(check_file "$g" "$t" "$s")" | tee "$work/$g-$t-from-$s.txt" | head -2
done
for c in "${checks[@]}"; do
  read -r g t s <<<"$c"
  "$BIN" devices transfer --from "$s" --base "$(datasheet "$t")" --name "$t" --holdout "$(runs "$t")" \
    --band-from "$(others "$g" "$t")" --model "$MODELS" --out "$work/$g-$t-from-$s-banded.json" > "$work/$g-$t-from-$s-banded.txt"
  agree=$(grep -m1 '^runs on the device' "$work/$g-$t-from-$s.txt" | sed 's/^runs on the device (\([0-9]*\), nothing fitted): /\1 runs, /')
  band=$(grep -m1 '^80% band' "$work/$g-$t-from-$s-banded.txt" | sed 's/ ([^()]*)$//; s/^80% band: //' || true)
  inside=$(grep -m1 '^runs on the device' "$work/$g-$t-from-$s-banded.txt" | grep -o '[0-9]* of [0-9]* within the 80% band' || echo "no band")
  rows+=("| $t | $s | $g | $agree | $band | $inside |")
done
shipped=()
for c in "${ships[@]}"; do
  read -r g t s <<<"$c"
  echo "== ship: $t from $s ($g)"
  args=(devices transfer --from "$s" --base "$(datasheet "$t")" --name "$t" --band-from "$(others "$g" "$t")" --model "$MODELS" --out "devices/$t.json")
  own=$(runs "$t")
  [[ -n $own ]] && args+=(--holdout "$own")
  "$BIN" "${args[@]}" | tee "$work/ship-$t.txt"
  band=$(grep -m1 '^80% band' "$work/ship-$t.txt" | sed 's/ ([^()]*)$//; s/^80% band: //' || true)
  inside=$(grep -m1 '^runs on the device' "$work/ship-$t.txt" | sed 's/^runs on the device (\([0-9]*\), nothing fitted): /\1 runs, /' || echo "no public runs")
  shipped+=("| $t | $s | $g | $band | $inside |")
done

{
  echo "# Transferred profiles: the rule checked, and what ships"
  echo
  echo "Written by scripts/transfer-profiles.sh from data/transfers.txt. A transfer keeps the target's"
  echo "datasheet ceilings and carries the sibling's fitted efficiencies, fixed costs and engine; the"
  echo "fitted peaks move with the datasheets' ratio. Nothing is fitted to the target's runs."
  echo
  echo "## Checks: targets with public runs of their own"
  echo
  echo "Agreement: median over the target's runs of max(predicted/measured, measured/predicted) tokens/s."
  echo "80% band: made from the same group's checks of the other targets (leave one target out); in band:"
  echo "the target's runs inside it."
  echo
  echo "| target | transferred from | group | agreement | 80% band without this target | runs in band |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "## Shipped: devices/TARGET.json"
  echo
  echo "| target | transferred from | group | 80% band | its own public runs (never fitted) |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${shipped[@]}"
} > results/transfers.md
echo "wrote results/transfers.md"
