#!/usr/bin/env python3
"""Writes results/expected-profiles.md: per device, what its expected profile was fitted on, the
fit's residuals, its agreement with held-out public runs and its fixed cost, read from the
profiles' own notes (devices/NAME.json) and, for the devices whose data is too thin to ship,
from target/expected-fits/NAME.json. Run by scripts/fit-expected-profiles.sh after the fits."""
import json
import os
import re
import statistics
import sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
data = os.path.join(root, "data", "llama-bench")


def split_of(device):
    fields = {}
    with open(os.path.join(data, device, "split.txt")) as f:
        for line in f:
            m = re.match(r"^([a-z-]+):\s*(.*)$", line.strip())
            if m:
                fields[m.group(1)] = m.group(2)
    return fields


def residuals(notes):
    errs = [abs(float(re.search(r"([+-]?\d+(\.\d+)?)%$", r).group(1))) for r in notes.get("fit_residuals", [])]
    if not errs:
        return "-"
    errs.sort()
    p90 = errs[round((len(errs) - 1) * 0.9)]
    return f"{statistics.median(errs):.1f}% / {p90:.1f}%"


def agreement(notes):
    a = notes.get("held_out_agreement")
    if not a:
        return "none held out"
    if not a.get("runs"):
        return "no usable held-out row"
    return a.get("summary") or f"median factor {a['median_factor']:.2f}x"


def bands(p):
    b = p.get("error_bands")
    if not b:
        return "-"
    part = lambda name: (f"{name} {b[name]['low']:.2f}-{b[name]['high']:.2f}x ({b[name]['runs']})"
                         if name in b else f"{name} -")
    return f"{part('prefill')}, {part('decode')}"


def within(notes):
    a = notes.get("held_out_agreement") or {}
    return a.get("within_band") or "-"


def main():
    rows = []
    for device in sorted(os.listdir(data)):
        if not os.path.isfile(os.path.join(data, device, "split.txt")):
            continue
        split = split_of(device)
        shipped = "not-shipped" not in split
        path = os.path.join(root, "devices", f"{device}.json") if shipped else os.path.join(
            root, "target", "expected-fits", f"{device}.json")
        if not os.path.exists(path):
            print(f"{path}: missing (run scripts/fit-expected-profiles.sh first)", file=sys.stderr)
            sys.exit(2)
        p = json.load(open(path))
        notes = p.get("notes", {})
        coef = notes.get("fit_coefficients", {})
        per_kernel = coef.get("fixed cost per kernel", 0.0) * 1e6
        fixed = f"{per_kernel:.1f} us"
        if "fixed_cost_from" in notes:
            fixed += " (borrowed)"
        held = split.get("holdout", "") or "-"
        status = "shipped" if shipped else "not shipped: " + split["not-shipped"]
        rows.append(
            f"| {device} | {split.get('fit', '')} ({notes.get('fitted_runs', '?')} runs) | {residuals(notes)} "
            f"| {held} | {agreement(notes)} | {bands(p)} | {within(notes)} | {fixed} | {status} |"
        )
    out = [
        "# Expected llama.cpp profiles: fits and held-out agreement",
        "",
        "Written by scripts/expected-profiles-table.py from the profiles' notes after",
        "scripts/fit-expected-profiles.sh. Residuals: median / 90th percentile of |predicted - measured|",
        "time over the fitted runs. Agreement: median over held-out runs of max(predicted/measured,",
        "measured/predicted) tokens/s (1.00x is exact), for all runs and per phase. 80% band: the range",
        "of measured / predicted tokens/s a new run falls in 8 times out of 10 (a t prediction interval over",
        "every out-of-sample prediction: the fitted runs cross-validated, and the held-out runs), with the",
        "runs behind it; held-out runs in band: each held-out file checked against bands made without it.",
        "",
        "| device | fitted files | fit residuals | held-out files | held-out agreement | 80% band (runs) | held-out runs in band | cost per kernel | status |",
        "|---|---|---|---|---|---|---|---|---|",
    ] + rows
    target = os.path.join(root, "results", "expected-profiles.md")
    with open(target, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {os.path.relpath(target, root)}")


main()
