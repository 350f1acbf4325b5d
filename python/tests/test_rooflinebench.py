"""The Python package against the command line: the same inputs give the same JSON (floats
compared exactly), the same error lines, the same search folder; `predict` agrees with
`analyze`; the README's example runs.

The command line is ROOFLINEBENCH_BIN, else target/release/rooflinebench (what `make test`
builds)."""

import csv
import io
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

import rooflinebench as rb

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("ROOFLINEBENCH_BIN", str(ROOT / "target" / "release" / "rooflinebench"))
LLAMA = ROOT / "models" / "Llama-3.2-1B.json"
HYBRID = ROOT / "tests" / "fixtures" / "hybrid"


def cli(*args, ok=True):
    """Runs the command line in the repository root; its stdout, or its error line when not ok."""
    r = subprocess.run([BIN, *map(str, args)], cwd=ROOT, capture_output=True, text=True)
    if ok:
        assert r.returncode == 0, r.stderr
        return r.stdout
    assert r.returncode == 2, (r.stdout, r.stderr)
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ")
    return line[len("error: ") :]


def cli_json(*args):
    return json.loads(cli(*args, "--format", "json"))


# ---- analyze equals `analyze --format json` ----

CASES = [
    (LLAMA, "rpi5", dict(scenario="liso")),
    (LLAMA, "rtx3090-datasheet", dict(scenario=["siso", "lilo"], weights="q4_k_m", kv="f16")),
    (ROOT / "models" / "SmolLM2-135M.json", "m1-pro", dict()),
    (ROOT / "models" / "DeepSeek-V2-Lite-Chat.json", "rtx4090", dict(prompt=512, generate=64, batch=4)),
    (ROOT / "models" / "Qwen3-0.6B.json", "jetson-orin-nano-super", dict(plan="naive", tokens=1e12, per_op=True)),
    (LLAMA, "rpi5-paper", dict(activations="f16", logits_all=True, tokens_per_parameter=20.0)),
    # Hybrid layer kinds: sliding windows, short convolutions, DeltaNet, Mamba2.
    (HYBRID / "gemma-3-1b-it.json", "rpi5", dict(scenario="silo", per_op=True)),
    (HYBRID / "LFM2-350M.json", "rtx3090", dict(scenario="all")),
    (HYBRID / "Qwen3-Next-80B-A3B-Instruct.json", "a100-80gb", dict(scenario="lilo")),
    (HYBRID / "granite-4.0-h-350m.json", "m3-max", dict(scenario="siso", weights="q8_0")),
]


def flags(kw):
    out = []
    for k, v in kw.items():
        flag = "--" + k.replace("_", "-")
        if v is True:
            out.append(flag)
        elif isinstance(v, list):
            out += [flag, ",".join(v)]
        else:
            out += [flag, str(v)]
    return out


@pytest.mark.parametrize("path,device,kw", CASES, ids=lambda x: getattr(x, "stem", None))
def test_analyze_equals_the_command_lines_json(path, device, kw):
    expected = cli_json("analyze", "--model", path, "--device", device, *flags(kw))
    got = rb.analyze(str(path), device, **kw)
    single = "prompt" in kw or (isinstance(kw.get("scenario"), str) and kw["scenario"] != "all")
    assert (got if not single else [got]) == expected
    if single:
        assert json.dumps(got) == json.dumps(expected[0])  # same keys in the same order


def test_a_dict_and_a_loaded_architecture_give_what_the_file_gives():
    expected = cli_json("analyze", "--model", LLAMA, "--device", "rpi5", "--scenario", "lilo")[0]
    config = json.loads(LLAMA.read_text())
    assert rb.analyze(config, "rpi5", "lilo", name="Llama-3.2-1B") == expected
    arch = rb.load(LLAMA)
    assert arch.name == "Llama-3.2-1B" and arch.parameters == expected["parameters"]
    assert rb.analyze(arch, "rpi5", "lilo") == expected
    assert rb.analyze(Path(LLAMA), rb.device("rpi5")["profile"]["name"], "lilo") == expected


def test_a_profile_file_works_as_a_device(tmp_path):
    profile = tmp_path / "pi.json"
    profile.write_text(cli("devices", "show", "rpi5"))
    expected = cli_json("analyze", "--model", LLAMA, "--device", profile, "--scenario", "siso")[0]
    assert rb.analyze(LLAMA, str(profile), "siso") == expected


# ---- errors carry the command line's line ----


def test_bad_inputs_raise_with_the_command_lines_message(tmp_path):
    bad = dict(json.loads(LLAMA.read_text()), hidden_size=-3)
    bad_file = tmp_path / "bad.json"
    bad_file.write_text(json.dumps(bad))
    cases = [
        (["--model", LLAMA, "--device", "rpi6"], dict(model=LLAMA, device="rpi6")),
        (["--model", LLAMA, "--device", "rpi5", "--weights", "q3"], dict(model=LLAMA, device="rpi5", weights="q3")),
        (["--model", LLAMA, "--device", "rpi5", "--activations", "q4_0"], dict(model=LLAMA, device="rpi5", activations="q4_0")),
        (["--model", LLAMA, "--device", "rpi5", "--scenario", "long"], dict(model=LLAMA, device="rpi5", scenario="long")),
        (["--model", bad_file, "--device", "rpi5"], dict(model=str(bad_file), device="rpi5")),
        (["--model", tmp_path / "missing.json", "--device", "rpi5"], dict(model=str(tmp_path / "missing.json"), device="rpi5")),
        (["--model", LLAMA, "--device", "rpi5", "--tokens=-1"], dict(model=LLAMA, device="rpi5", tokens=-1.0)),
    ]
    for args, kw in cases:
        message = cli("analyze", *args, ok=False)
        with pytest.raises(rb.Error) as e:
            rb.analyze(**kw)
        assert str(e.value) == message
        assert isinstance(e.value, ValueError)
    # A dict is named by its place in the call instead of a file name.
    with pytest.raises(rb.Error, match=r"^model: field 'hidden_size': expected"):
        rb.analyze(bad, "rpi5")
    with pytest.raises(rb.Error, match=r"^models\[1\]: field 'hidden_size'"):
        rb.predict([json.loads(LLAMA.read_text()), bad], "rpi5")
    message = cli("devices", "show", "rtx309", ok=False)
    with pytest.raises(rb.Error) as e:
        rb.device("rtx309")
    assert str(e.value) == message


# ---- predict ----


def llama_variants(n, seed=22):
    base = json.loads(LLAMA.read_text())
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        heads = rng.choice([16, 32])
        d = dict(base)
        d["hidden_size"] = heads * rng.choice([64, 96, 128])
        d["num_attention_heads"] = heads
        d["head_dim"] = d["hidden_size"] // heads
        d["num_key_value_heads"] = rng.choice([1, 2, 4, 8])
        d["num_hidden_layers"] = rng.randint(8, 24)
        d["intermediate_size"] = 256 * rng.randint(8, 40)
        out.append(d)
    return out


def row_of(a):
    """`analyze`'s dict as its whole-scenario CSV row (the columns `predict` returns)."""
    p, f, b = a["scenario_point"], a["footprint"], a["error_band"]
    top = {k: v for k, v in a.items() if not isinstance(v, (dict, list)) and k != "error_band"}
    end = lambda phase, i: b[phase][i] if b and b[phase] else None
    return {
        "band_coverage": b["coverage"] if b else None,
        "prefill_tokens_per_s_low": end("prefill_tokens_per_s", 0),
        "prefill_tokens_per_s_high": end("prefill_tokens_per_s", 1),
        "decode_tokens_per_s_low": end("decode_tokens_per_s", 0),
        "decode_tokens_per_s_high": end("decode_tokens_per_s", 1),
        "band_basis": b["basis"] if b else None,
        **top,
        **{k: v for k, v in p.items() if k != "phase"},
        "phase": "scenario",
        "footprint_bytes": f["total_bytes"],
        "footprint_weights_bytes": f["weights_bytes"],
        "footprint_kv_cache_bytes": f["kv_cache_bytes"],
        "footprint_workspace_bytes": f["workspace_bytes"],
        "usable_memory_bytes": f["usable_bytes"],
        "fits": f["fits"],
        "warnings": " | ".join(a["warnings"]),
    }


def test_predict_on_100000_dicts_equals_single_analyze_calls():
    models = llama_variants(100_000)
    cols = rb.predict(models, "rpi5", "lilo", weights="q4_k_m", threads=2)
    assert cols["index"] == list(range(100_000))
    names = [k for k in cols if k != "index"]
    for i in random.Random(1).sample(range(100_000), 300):
        expected = row_of(rb.analyze(models[i], "rpi5", "lilo", weights="q4_k_m"))
        assert {k: cols[k][i] for k in names} == expected, i
    # Overall: the same dict gives the same row wherever it sits, and every figure is sane.
    seen = {}
    for i, d in enumerate(models):
        key = json.dumps(d, sort_keys=True)
        row = (cols["decode_tokens_per_s"][i], cols["ttft_s"][i], cols["parameters"][i])
        assert seen.setdefault(key, row) == row
    assert all(t > 0 for t in cols["decode_tokens_per_s"])
    assert set(cols["phase"]) == {"scenario"} and set(cols["device"]) == {"rpi5"}


def test_predict_takes_paths_architectures_phases_and_columns():
    paths = [LLAMA, HYBRID / "LFM2-350M.json", HYBRID / "gemma-3-270m.json"]
    archs = [rb.load(p) for p in paths]
    expected = cli("analyze", "--model", ",".join(map(str, paths)), "--device", "rtx3090", "--scenario", "siso,lilo", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(expected)))
    for phase in ["prefill", "decode", "scenario"]:
        for models in (paths, archs):
            cols = rb.predict(models, "rtx3090", ["siso", "lilo"], phase=phase, columns=["model", "scenario", "time_s", "rip", "index"])
            want = [r for r in rows if r["phase"] == phase]
            assert cols["model"] == [r["model"] for r in want]
            assert cols["scenario"] == [r["scenario"] for r in want]
            assert cols["time_s"] == [float(r["time_s"]) for r in want]
            assert cols["rip"] == [float(r["rip"]) for r in want]
            assert cols["index"] == [0, 0, 1, 1, 2, 2]
    with pytest.raises(rb.Error, match="no column 'speed'"):
        rb.predict(paths, "rpi5", columns=["speed"])
    assert rb.predict([], "rpi5") == {}


# Columns a profile may have nothing for: an empty CSV cell, None from `predict`.
MAYBE = {"band_coverage", "prefill_tokens_per_s_low", "prefill_tokens_per_s_high", "decode_tokens_per_s_low",
         "decode_tokens_per_s_high", "band_basis", "check_command"}


def cell(text, like, column=None):
    """A CSV cell as the type `predict` gives it (floats are written shortest round-trip)."""
    if column in MAYBE and text == "":
        return None
    if column in MAYBE and column not in ("band_basis", "check_command"):
        return float(text)
    if column in MAYBE:
        return text
    if isinstance(like, bool):
        return {"true": True, "false": False}[text]
    return type(like)(text)


@pytest.mark.parametrize("device", ["rpi5", "rtx3090-datasheet", "m1-pro"])
def test_every_column_equals_the_command_lines_csv(device):
    """Every column, every phase, for dense, MLA, MoE and hybrid stacks, against the CSV rows."""
    paths = [LLAMA, ROOT / "models" / "DeepSeek-V2-Lite-Chat.json", HYBRID / "LFM2-350M.json",
             HYBRID / "gemma-3-270m.json", HYBRID / "granite-4.0-h-350m.json", HYBRID / "gpt-oss-20b.json"]
    args = ["--model", ",".join(map(str, paths)), "--device", device, "--scenario", "siso,lilo", "--weights", "q4_k_m"]
    rows = list(csv.DictReader(io.StringIO(cli("analyze", *args, "--format", "csv"))))
    for phase in ["prefill", "decode", "scenario"]:
        cols = rb.predict([rb.load(p) for p in paths], device, ["siso", "lilo"], weights="q4_k_m", phase=phase, threads=2)
        want = [r for r in rows if r["phase"] == phase]
        assert list(cols) == list(want[0]) + ["index"]
        for k in want[0]:
            assert cols[k] == [cell(r[k], cols[k][0], k) for r in want], (phase, k)


# ---- search ----

SPACE = ROOT / "search-spaces" / "around-135m.toml"


def test_search_writes_the_command_lines_folder_and_returns_its_recommendation(tmp_path):
    cli("search", SPACE, "--device", "rpi5", "--out", tmp_path / "cli")
    got = rb.search(SPACE, "rpi5", out=tmp_path / "py", threads=2)
    names = sorted(p.name for p in (tmp_path / "cli").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "py").iterdir())
    for n in names:
        assert (tmp_path / "cli" / n).read_bytes() == (tmp_path / "py" / n).read_bytes(), n
    outcome = json.loads((tmp_path / "cli" / "outcome.json").read_text())
    assert [r["index"] for r in got["front"]] == [s["index"] for s in outcome["front"]]
    assert [r["index"] for r in got["top"]] == [s["index"] for s in outcome["top"]]
    assert got["feasible"] == outcome["feasible"] and got["candidates"] == outcome["candidates"]
    assert got["recommended_config"] == json.loads((tmp_path / "cli" / "recommended.json").read_text())
    pareto = list(csv.DictReader(open(tmp_path / "cli" / "pareto.csv")))
    assert [float(r["rip"]) for r in pareto] == [r["rip"] for r in got["front"]]
    assert [r for r in pareto if r["recommended"] == "true"][0]["index"] == str(got["recommended"]["index"])
    assert f"#{got['recommended']['index']}" in got["summary"]
    assert got["out"] == str(tmp_path / "py")


def test_search_takes_a_dict_and_refuses_what_the_command_line_refuses(tmp_path):
    tomllib = pytest.importorskip("tomllib")
    space = tomllib.loads(SPACE.read_text())
    from_file = rb.search(SPACE, "rtx3090")
    from_dict = rb.search(space, "rtx3090")
    assert from_dict["recommended"] == from_file["recommended"]
    assert from_dict["front"] == from_file["front"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    message = cli("search", SPACE, "--device", "rpi5", "--out", tmp_path / "mine", ok=False)
    with pytest.raises(rb.Error) as e:
        rb.search(SPACE, "rpi5", out=tmp_path / "mine")
    assert str(e.value) == message


# ---- devices ----


def test_devices_equal_the_command_line():
    assert rb.devices() == cli_json("devices")
    for name in ["rtx3090", "rpi5-datasheet", "m1-pro-paper"]:
        d = rb.device(name)
        assert d["profile"] == json.loads(cli("devices", "show", name))
    assert rb.device("rtx3090")["label"] == "expected (llama.cpp, fitted from 10 public runs)"
    assert rb.device("rtx3090")["held_out_agreement"]["median_factor"] > 1
    assert rb.device("rpi5-datasheet")["held_out_agreement"] is None
    assert rb.device("rpi5-datasheet")["upper_bound"] is True


# ---- the README's example ----


def readme_example():
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "the README's Python section has a python block"
    return "\n".join(blocks)


def test_the_readme_example_runs(tmp_path):
    r = subprocess.run([sys.executable, "-c", readme_example()], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "decode" in r.stdout
