#!/usr/bin/env bash
# Before/after on a noisy machine: runs a search with each binary in turn, N rounds, and prints
# each binary's median, lowest and highest CPU seconds (user + system). Alternating the binaries
# spreads the machine's drift over both; a change smaller than the spread is not a change.
# Usage: ab-search.sh ROUNDS DEVICE SPACE BIN... (outputs under target/bench/ab/).
set -euo pipefail
rounds=$1 device=$2 space=$3
shift 3
declare -A times
stats=$(mktemp)
trap 'rm -f "$stats"' EXIT
for _ in $(seq "$rounds"); do
    for bin in "$@"; do
        /usr/bin/time -f '%U %S' -o "$stats" "$bin" search "$space" --device "$device" \
            --out target/bench/ab --force >/dev/null 2>&1
        times[$bin]="${times[$bin]:-} $(awk '{ print $1 + $2 }' "$stats")"
    done
done
for bin in "$@"; do
    printf '%s: ' "$bin"
    tr ' ' '\n' <<<"${times[$bin]}" | sed '/^$/d' | sort -n |
        awk '{ t[NR] = $1 } END { printf "median %.2f s, %.2f-%.2f s CPU over %d runs\n", t[int((NR + 1) / 2)], t[1], t[NR], NR }'
done
