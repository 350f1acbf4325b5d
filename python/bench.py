"""Benchmark of the Python package (run by hand, not a test: `make bench-python`): `predict`
architectures per second on 2 threads beside the Rust scoring loop on the same inputs in the
same run (the search's evaluator alone, no rows, GIL released: the "within 2x" reference), and
`import rooflinebench` plus one `analyze` from a cold interpreter.

    target/python-venv/bin/python python/bench.py [--n 200000] [--runs 3]
"""

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

import rooflinebench as rb
from rooflinebench import _rooflinebench as native

ROOT = Path(__file__).resolve().parents[1]
LLAMA = ROOT / "models" / "Llama-3.2-1B.json"
THREE = ["decode_tokens_per_s", "ttft_s", "fits"]


def variants(n):
    base = json.loads(LLAMA.read_text())
    rng = random.Random(22)
    return [
        dict(base, num_hidden_layers=rng.randint(8, 24), intermediate_size=256 * rng.randint(8, 40),
             num_key_value_heads=rng.choice([1, 2, 4, 8]))
        for _ in range(n)
    ]


def best_of(runs, f):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def rust_loop(archs, device, runs, threads):
    """Seconds of the Rust scoring loop (timed inside, without the GIL), best of `runs`."""
    return min(native.scoring_loop_seconds(archs, device, "lilo", threads=threads) for _ in range(runs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000, help="architectures per call")
    ap.add_argument("--runs", type=int, default=3, help="best of this many runs per figure")
    args = ap.parse_args()
    n, runs, threads = args.n, args.runs, 2
    dicts = variants(n)
    archs = [rb.load(d) for d in dicts]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {load:.1f} at start, Python {platform.python_version()}")
    print(f"{n} variants of Llama-3.2-1B (layers, FFN width, KV heads), LILO, bf16, {threads} threads, best of {runs}")
    for device in ["rtx3090-datasheet", "rtx3090"]:
        # The reference first and last, so a change in the machine's load shows.
        ref = [rust_loop(archs, device, runs, threads)]
        rates = []
        for label, models, cols in [
            ("Architecture objects, 3 columns", archs, THREE),
            ("Architecture objects, every column", archs, None),
            ("dicts, 3 columns", dicts, THREE),
            ("dicts, every column", dicts, None),
        ]:
            t = best_of(runs, lambda: rb.predict(models, device, "lilo", columns=cols, threads=threads))
            rates.append((label, n / t))
        ref.append(rust_loop(archs, device, runs, threads))
        rust = n / min(ref)
        print(f"\n{device}: Rust scoring loop {rust / 1e6:.3f} M architectures/s "
              f"(before / after: {n / ref[0] / 1e6:.3f} / {n / ref[1] / 1e6:.3f})")
        for label, rate in rates:
            print(f"  predict, {label}: {rate / 1e6:.3f} M/s, {rust / rate:.2f}x the Rust loop's time")
    code = (
        "import time; t = time.perf_counter(); import rooflinebench as rb; "
        f"rb.analyze({str(LLAMA)!r}, 'rpi5', 'liso'); print((time.perf_counter() - t) * 1e3)"
    )
    inside, whole = [], []
    for _ in range(5):
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        whole.append((time.perf_counter() - t) * 1e3)
        inside.append(float(out))
    print(f"\ncold interpreter: import + one analyze {min(inside):.1f} ms (median {sorted(inside)[2]:.1f}); "
          f"whole process with interpreter start {min(whole):.1f} ms (median {sorted(whole)[2]:.1f})")


if __name__ == "__main__":
    main()
