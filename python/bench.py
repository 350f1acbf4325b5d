"""Benchmark of the Python package (run by hand, not a test): `predict` architectures per
second on 2 threads, and `import rooflinebench` plus one `analyze` from a cold interpreter.

    target/python-venv/bin/python python/bench.py
"""

import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

import rooflinebench as rb

ROOT = Path(__file__).resolve().parents[1]
LLAMA = ROOT / "models" / "Llama-3.2-1B.json"


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


def main():
    n = 200_000
    dicts = variants(n)
    archs = [rb.load(d) for d in dicts]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    for label, models, cols in [
        ("dicts, every column", dicts, None),
        ("dicts, 3 columns", dicts, ["decode_tokens_per_s", "ttft_s", "fits"]),
        ("Architecture objects, every column", archs, None),
        ("Architecture objects, 3 columns", archs, ["decode_tokens_per_s", "ttft_s", "fits"]),
    ]:
        for device in ["rtx3090-datasheet", "rtx3090"]:
            t = best_of(3, lambda: rb.predict(models, device, "lilo", columns=cols, threads=2))
            print(f"predict, {label}, LILO on {device}, 2 threads: {n / t / 1e6:.3f} M architectures/s ({t:.3f} s for {n})")
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
    print(f"cold interpreter: import + one analyze {min(inside):.1f} ms (median {sorted(inside)[2]:.1f}); "
          f"whole process with interpreter start {min(whole):.1f} ms (median {sorted(whole)[2]:.1f})")


if __name__ == "__main__":
    main()
