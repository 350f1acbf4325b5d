#!/usr/bin/env bash
# Whole searches, end to end: wall time, CPU time, peak memory and candidates per second per
# core (candidates over user + system CPU seconds, so the figure does not depend on how many
# cores ran). Usage: bench-search.sh BIN DEVICE SPACE... (output folders under target/bench/).
set -euo pipefail
bin=$1 device=$2
shift 2
printf '| space | candidates | wall s | CPU s | peak RSS MB | candidates/s per core |\n|---|---:|---:|---:|---:|---:|\n'
for space in "$@"; do
    name=$(basename "$space" .toml)
    out=target/bench/$name
    stats=$(mktemp)
    /usr/bin/time -f '%e %U %S %M' -o "$stats" "$bin" search "$space" --device "$device" --out "$out" --force >/dev/null 2>&1
    read -r wall user sys rss <"$stats"
    rm -f "$stats"
    candidates=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["candidates"])' "$out/outcome.json")
    awk -v n="$name" -v c="$candidates" -v w="$wall" -v u="$user" -v s="$sys" -v m="$rss" \
        'BEGIN { cpu = u + s; printf "| %s | %d | %.2f | %.2f | %.0f | %.2f M |\n", n, c, w, cpu, m / 1024, c / (cpu > 0 ? cpu : 0.01) / 1e6 }'
done
