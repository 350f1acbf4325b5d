"""Round trip through transformers itself: export a sample of the shipped spaces' front members
with `rooflinebench export`, load each config.json with transformers' AutoConfig, and check

  - the structure transformers will build (layers, heads, KV heads, head_dim, experts, dense
    layers, latent ranks, widths, vocabulary, tying, context) against the pareto.csv row;
  - the parameters of the model transformers builds, counted here from its modules' shapes
    (transformers 5's modeling files: Linear and RMSNorm weights, no biases unless configured),
    against the count pareto.csv reports;
  - our own count of `config.to_dict()` (written back as a config.json and read by
    `rooflinebench analyze`) against the same count.

Then the hybrid families: every config under tests/fixtures/hybrid/exported/ (the published
hybrid fixtures and synthetic hybrids as `export` writes them; tests/families.rs keeps those files
equal to the export) is loaded with AutoConfig, and the parameters of the model transformers
builds from it, counted from its modeling files (gemma3_text, lfm2, smollm3, gpt_oss, qwen3_next,
qwen3_5_text, granitemoehybrid, mamba2, mistral), are checked against `rooflinebench analyze` of
the same file and, for the published models, against their published totals.

The sample covers every attention kind (MHA, GQA, MQA, MLA), both FFN kinds (dense, MoE) and
grouped shapes with and without an explicit head_dim (hidden / heads not the head size). Usage:

    python hf_roundtrip.py BIN RESULTS_DIR WORK_DIR
"""

import csv
import json
import os
import re
import subprocess
import sys
import tomllib

from transformers import AutoConfig
import transformers

PER_KIND = 3  # members per (attention, ffn, explicit head_dim) kind and space
NAMED = {"siso": (128, 128), "silo": (128, 4096), "liso": (4096, 128), "lilo": (4096, 4096)}


def workload_context(space_toml):
    """The longest sequence a space's workload runs: what max_position_embeddings must be."""
    with open(space_toml, "rb") as f:
        space = tomllib.load(f)
    w = space["workload"]
    scenarios = []
    if "scenario" in w:
        scenarios.append(w["scenario"])
    for m in w.get("mix", []):
        scenarios.append(m.get("scenario", m))
    longest = 0
    for sc in scenarios:
        if isinstance(sc, str):
            p, g = NAMED[sc]
        else:
            p, g = sc["prompt"], sc["generate"]
        longest = max(longest, p + g)
    return max(longest, w.get("max_context", 0))


def explicit_head_dim(row):
    """Whether the head size is not hidden / heads (MLA: its no-RoPE query/key width)."""
    hidden, heads, hd = int(row["hidden"]), int(row["heads"]), int(row["head_dim"])
    return hidden % heads != 0 or hd != hidden // heads


def kind(row):
    """(attention, ffn, explicit head size, heads divide hidden): the last picks the model type.
    A hybrid's attention label counts by its kinds only ("gqa+window512 x14" -> "gqa+window")."""
    attention = re.sub(r"\d+", "", row["attention"].split(" ")[0])
    return (attention, row["ffn"], explicit_head_dim(row), int(row["hidden"]) % int(row["heads"]) == 0)


# The family a search space writes each hybrid layer kind as (search/space.rs, MixerKind).
HYBRID_FAMILY = {"window": "gemma3_text", "conv": "lfm2", "deltanet": "qwen3_5_text", "mamba": "granitemoehybrid"}


def hybrid_mixer(row):
    """The layer kind of a hybrid front member ("window", "conv", "deltanet", "mamba"), or None."""
    if "+" not in row["attention"]:
        return None
    return re.sub(r"\d+", "", row["attention"].split("+")[1].split(" ")[0])


def sample(front):
    """Deterministic: per kind, the first, middle and last members by index."""
    by_kind = {}
    for row in front:
        by_kind.setdefault(kind(row), []).append(row)
    picked = []
    for k in sorted(by_kind):
        rows = sorted(by_kind[k], key=lambda r: int(r["index"]))
        n = len(rows)
        idx = sorted({0, n // 2, n - 1}) if n > 2 else list(range(n))
        picked.extend(rows[i] for i in idx[:PER_KIND])
    return picked


def transformers_parameters(c):
    """Parameters of the model transformers builds from config `c` (a PretrainedConfig), from
    the shapes its modeling files give each module (llama, mistral, qwen3, deepseek_v2)."""
    h, v, L = c.hidden_size, c.vocab_size, c.num_hidden_layers
    total = h * v * (1 if c.tie_word_embeddings else 2) + h  # embeddings, head, final norm
    per_layer = []
    for layer in range(L):
        n = 2 * h  # input and post-attention RMSNorm
        if c.model_type in ("deepseek_v2", "deepseek_v3"):
            nh, r = c.num_attention_heads, c.kv_lora_rank
            qk = c.qk_nope_head_dim + c.qk_rope_head_dim
            if c.q_lora_rank is None:
                n += h * nh * qk
            else:
                n += h * c.q_lora_rank + c.q_lora_rank + c.q_lora_rank * nh * qk
            n += h * (r + c.qk_rope_head_dim) + r  # kv_a_proj_with_mqa, kv_a_layernorm
            n += r * nh * (c.qk_nope_head_dim + c.v_head_dim)  # kv_b_proj
            n += nh * c.v_head_dim * h  # o_proj
            if layer >= c.first_k_dense_replace:  # DeepseekV2Moe
                e, f = c.n_routed_experts, c.moe_intermediate_size
                n += e * h  # router
                if c.model_type == "deepseek_v3":
                    n += e  # e_score_correction_bias
                n += e * 3 * h * f  # experts' gate_up and down
                n += 3 * h * f * c.n_shared_experts  # shared experts as one MLP
            else:
                n += 3 * h * c.intermediate_size
                if c.mlp_bias:
                    n += 2 * c.intermediate_size + h
        else:
            nh, nkv, hd = c.num_attention_heads, c.num_key_value_heads, c.head_dim
            n += h * nh * hd + 2 * h * nkv * hd + nh * hd * h
            if getattr(c, "attention_bias", False):
                n += nh * hd + 2 * nkv * hd + h
            if c.model_type == "qwen3":
                n += 2 * hd  # q_norm, k_norm
            n += 3 * h * c.intermediate_size
            if getattr(c, "mlp_bias", False):
                n += 2 * c.intermediate_size + h
        per_layer.append(n)
    return total + sum(per_layer)


def check(row, c, context, problems, label):
    def expect(what, got, want):
        if got != want:
            problems.append(f"{label}: {what}: transformers has {got}, pareto.csv {want}")

    L = int(row["layers"])
    expect("layers", c.num_hidden_layers, L)
    expect("hidden", c.hidden_size, int(row["hidden"]))
    expect("heads", c.num_attention_heads, int(row["heads"]))
    expect("vocab", c.vocab_size, int(row["vocab"]))
    expect("tied embeddings", c.tie_word_embeddings, row["tie_embeddings"] == "true")
    expect("max_position_embeddings", c.max_position_embeddings, context)
    divides = int(row["hidden"]) % int(row["heads"]) == 0
    mixer = hybrid_mixer(row)
    if mixer is not None:
        mt = HYBRID_FAMILY[mixer]
        expect("model_type", c.model_type, mt)
        expect("kv heads", c.num_key_value_heads, int(row["kv_heads"]))
        if mt == "lfm2":
            width = lfm2_width(c)
        elif mt == "granitemoehybrid":
            width = c.shared_intermediate_size
        else:
            width = c.intermediate_size
        expect("FFN width", width, int(row["intermediate"]))
        kinds = [t for t in (getattr(c, "layer_types", None) or [])]
        # Granite's "attention" reads back as "full_attention" in transformers 5.
        globals_ = sum(1 for t in kinds if t in ("full_attention", "attention"))
        if globals_ in (0, L):
            problems.append(f"{label}: layer_types {kinds} hold no mix of global and {mixer} layers")
        return
    if row["attention"] == "mla":
        expect("model_type", c.model_type, "deepseek_v2" if divides else "deepseek_v3")
        expect("kv_lora_rank", c.kv_lora_rank, int(row["kv_lora_rank"]))
        q = int(row["q_lora_rank"])
        expect("q_lora_rank", c.q_lora_rank, q if q > 0 else None)
        expect("qk_rope_head_dim", c.qk_rope_head_dim, int(row["rope_head_dim"]))
        expect("qk_nope_head_dim", c.qk_nope_head_dim, int(row["head_dim"]))
        expect("v_head_dim", c.v_head_dim, int(row["v_head_dim"]))
        moe = row["ffn"] == "moe"
        dense_layers = min(c.first_k_dense_replace, L)
        expect("dense layers", dense_layers, int(row["moe_first_k_dense"]) if moe else L)
        if moe:
            expect("routed experts", c.n_routed_experts, int(row["moe_experts"]))
            expect("experts per token", c.num_experts_per_tok, int(row["moe_top_k"]))
            expect("shared experts", c.n_shared_experts, int(row["moe_shared_experts"]))
            expect("expert width", c.moe_intermediate_size, int(row["moe_expert_intermediate"]))
        if dense_layers > 0:
            expect("dense FFN width", c.intermediate_size, int(row["intermediate"]))
    else:
        expect("model_type", c.model_type, "llama" if divides else "mistral")
        expect("kv heads", c.num_key_value_heads, int(row["kv_heads"]))
        expect("head_dim", c.head_dim, int(row["head_dim"]))
        expect("FFN width", c.intermediate_size, int(row["intermediate"]))
        expect("hidden_act", c.hidden_act, "silu")
        if getattr(c, "sliding_window", None) is not None:
            problems.append(f"{label}: a sliding window of {c.sliding_window}")


# Published totals (tests/fixtures/hybrid/README.md) of the fixtures exported under those names.
PUBLISHED = {
    "gemma-3-270m": 268_098_176,
    "LFM2-350M": 354_483_968,
    "SmolLM3-3B": 3_075_098_624,
    "gpt-oss-20b": 20_914_757_184,
}
HYBRID_TYPES = (
    "gemma3_text",
    "lfm2",
    "smollm3",
    "gpt_oss",
    "qwen3_next",
    "qwen3_5_text",
    "granitemoehybrid",
    "mamba2",
    "mistral",
)


def lfm2_width(c):
    """Lfm2MLP's width: the auto-adjust rule when block_auto_adjust_ff_dim is set."""
    f = c.intermediate_size
    if c.block_auto_adjust_ff_dim:
        f = int(2 * f / 3)
        if c.block_ffn_dim_multiplier is not None:
            f = int(c.block_ffn_dim_multiplier * f)
            f = c.block_multiple_of * ((f + c.block_multiple_of - 1) // c.block_multiple_of)
    return f


def hybrid_parameters(c):
    """Parameters of the model transformers 5 builds from config `c`, from the module shapes of
    models/<type>/modeling_<type>.py (Linear, Conv1d, RMSNorm weights, nn.Parameter vectors)."""
    mt, h, v, L = c.model_type, c.hidden_size, c.vocab_size, c.num_hidden_layers
    total = h * v * (1 if c.tie_word_embeddings else 2) + h  # embeddings, head, final norm
    if mt == "mamba2":
        inner = c.expand * h
        conv = inner + 2 * c.n_groups * c.state_size
        per = h * (inner + conv + c.num_heads) + c.conv_kernel * conv + inner * h  # in_proj, conv1d, out_proj
        per += conv if c.use_conv_bias else 0
        per += (inner + conv + c.num_heads + h) if c.use_bias else 0
        per += 3 * c.num_heads + inner + h  # dt_bias, A_log, D, gated norm, block norm
        return total + L * per
    nh, nkv = c.num_attention_heads, c.num_key_value_heads
    hd = getattr(c, "head_dim", None) or h // nh
    gated = mt in ("qwen3_next", "qwen3_5_text")
    q = nh * hd * (2 if gated else 1)
    attn = h * q + 2 * h * nkv * hd + nh * hd * h
    if getattr(c, "attention_bias", False) and mt != "lfm2":
        attn += q + 2 * nkv * hd + h
    if mt in ("gemma3_text", "lfm2", "qwen3_next", "qwen3_5_text"):
        attn += 2 * hd  # q_norm, k_norm
    if mt == "gpt_oss":
        attn += nh  # sinks
    types = list(getattr(c, "layer_types", None) or ["full_attention"] * L)
    for i in range(L):
        kind = types[i]
        n = (4 if mt == "gemma3_text" else 2) * h
        if mt == "lfm2" and kind == "conv":
            n += 4 * h * h + c.conv_L_cache * h + (5 * h if c.conv_bias else 0)
        elif mt in ("qwen3_next", "qwen3_5_text") and kind == "linear_attention":
            kd, vd = c.linear_num_key_heads * c.linear_key_head_dim, c.linear_num_value_heads * c.linear_value_head_dim
            conv = 2 * kd + vd
            n += h * (conv + vd + 2 * c.linear_num_value_heads) + c.linear_conv_kernel_dim * conv
            n += 2 * c.linear_num_value_heads + c.linear_value_head_dim + vd * h
        elif mt == "granitemoehybrid" and kind == "linear_attention":
            inner = c.mamba_expand * h
            conv = inner + 2 * c.mamba_n_groups * c.mamba_d_state
            n += h * (inner + conv + c.mamba_n_heads) + c.mamba_d_conv * conv + inner * h
            n += conv if c.mamba_conv_bias else 0
            n += (inner + conv + c.mamba_n_heads + h) if c.mamba_proj_bias else 0
            n += 3 * c.mamba_n_heads + inner
        else:
            n += attn
        if mt == "lfm2":
            n += 3 * h * lfm2_width(c)
        elif mt == "gpt_oss":
            e, f = c.num_local_experts, c.intermediate_size
            n += e * h + e + e * (h * 2 * f + 2 * f + f * h + h)  # router with bias, experts with biases
        elif mt == "qwen3_next":
            sparse = i not in c.mlp_only_layers and c.num_experts > 0 and (i + 1) % c.decoder_sparse_step == 0
            if sparse:
                e, f = c.num_experts, c.moe_intermediate_size
                n += e * h + e * 3 * h * f + 3 * h * c.shared_expert_intermediate_size + h  # + shared_expert_gate
            else:
                n += 3 * h * c.intermediate_size
        elif mt == "granitemoehybrid":
            n += 3 * h * c.shared_intermediate_size
            if c.num_local_experts > 0:
                n += c.num_local_experts * (h + 3 * h * c.intermediate_size)
        else:
            n += 3 * h * c.intermediate_size
            if getattr(c, "mlp_bias", False):
                n += 2 * c.intermediate_size + h
        total += n
    return total


def check_hybrids(binary, exported, work, problems):
    """Loads each exported hybrid config with AutoConfig; returns {model_type: count}."""
    from transformers import CONFIG_MAPPING

    types = {}
    for t in HYBRID_TYPES:
        if t not in CONFIG_MAPPING:
            problems.append(f"transformers {transformers.__version__} has no model_type {t} (qwen3_5_text needs 5.x)")
    for file in sorted(os.listdir(exported)):
        if not file.endswith(".json"):
            continue
        name = file[: -len(".json")]
        out = os.path.join(work, "hybrid", name)
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(exported, file)) as f:
            text = f.read()
        with open(os.path.join(out, "config.json"), "w") as f:
            f.write(text)
        try:
            c = AutoConfig.from_pretrained(out)
        except Exception as e:  # noqa: BLE001 - any refusal is a failure to report
            problems.append(f"{name}: AutoConfig refuses it: {type(e).__name__}: {e}")
            continue
        written = json.loads(text)
        if c.model_type != written["model_type"]:
            problems.append(f"{name}: loaded as {c.model_type}, written as {written['model_type']}")
        # The layers transformers will build: kinds (legacy names remapped), window, RoPE.
        if "layer_types" in written:
            remap = {"mamba": "linear_attention", "attention": "full_attention"}
            want = [remap.get(t, t) for t in written["layer_types"]]
            if [remap.get(t, t) for t in c.layer_types] != want:
                problems.append(f"{name}: transformers' layer_types {list(c.layer_types)}, written {want}")
        if written.get("sliding_window") is not None and getattr(c, "sliding_window", None) != written["sliding_window"]:
            problems.append(f"{name}: transformers' sliding_window {getattr(c, 'sliding_window', None)}")
        if c.model_type == "smollm3" and list(c.no_rope_layers) != written["no_rope_layers"]:
            problems.append(f"{name}: transformers' no_rope_layers {list(c.no_rope_layers)}")
        built = hybrid_parameters(c)
        analysis = subprocess.run(
            [binary, "analyze", "--model", os.path.join(out, "config.json"), "--device", "rpi5", "--scenario", "siso", "--format", "json"],
            capture_output=True,
            text=True,
        )
        if analysis.returncode != 0:
            problems.append(f"{name}: rooflinebench analyze fails: {analysis.stderr.strip()}")
            continue
        a = json.loads(analysis.stdout)
        ours = (a[0] if isinstance(a, list) else a)["parameters"]
        if built != ours:
            problems.append(f"{name}: transformers builds {built} parameters, rooflinebench counts {ours}")
        if name in PUBLISHED and built != PUBLISHED[name]:
            problems.append(f"{name}: transformers builds {built} parameters, published {PUBLISHED[name]}")
        print(f"  {name:<30} {c.model_type:<17} {built:>15,} parameters" + (" = published" if name in PUBLISHED else ""))
        types[c.model_type] = types.get(c.model_type, 0) + 1
    for t in HYBRID_TYPES:
        if t not in types:
            problems.append(f"no exported hybrid config is written as {t}")
    return types


LABEL = re.compile(
    r"#(?P<index>\d+) (?P<attention>mha|gqa|mqa) heads (?P<heads>\d+)/(?P<kv_heads>\d+)(?: d(?P<head_dim>\d+))?, "
    r"L(?P<layers>\d+) H(?P<hidden>\d+), ffn (?P<intermediate>\d+), vocab (?P<vocab>\d+)(?P<untied> untied)?, "
    r".* (?P<parameters>\d+) parameters"
)


def mha_rows(binary, space_toml, work, wanted):
    """MHA is never on a shipped front (GQA with the same heads dominates it), so its configs
    come from the space itself: the first valid MHA candidates by index, described by the line
    `export` prints (label and parameter count)."""
    rows, index = [], 0
    while len(rows) < wanted and index < 5000:
        out = os.path.join(work, f"mha-{index}")
        os.makedirs(out, exist_ok=True)
        p = subprocess.run(
            [binary, "export", space_toml, f"#{index}", "--out", os.path.join(out, "config.json")],
            capture_output=True,
            text=True,
        )
        m = LABEL.search(p.stdout) if p.returncode == 0 else None
        if m and m["attention"] == "mha":
            row = {k: v for k, v in m.groupdict().items() if v is not None}
            row["head_dim"] = row.get("head_dim", str(int(row["hidden"]) // int(row["heads"])))
            row["tie_embeddings"] = "false" if "untied" in row else "true"
            row["ffn"] = "gated"
            rows.append((out, row))
        index += 97  # spread over depths and widths
    return rows


def main():
    binary, results, work = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(work, exist_ok=True)
    problems, kinds, types, checked = [], {}, {}, 0
    plan = []  # (space, folder with config.json, row, context)
    for space in sorted(os.listdir(results)):
        folder = os.path.join(results, space, "rpi5")
        if not os.path.isfile(os.path.join(folder, "pareto.csv")):
            continue
        context = workload_context(os.path.join(folder, "space.toml"))
        with open(os.path.join(folder, "pareto.csv"), newline="") as f:
            front = list(csv.DictReader(f))
        for row in sample(front):
            out = os.path.join(work, f"{space}-{row['index']}")
            os.makedirs(out, exist_ok=True)
            subprocess.run(
                [binary, "export", folder, "#" + row["index"], "--out", os.path.join(out, "config.json")],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            plan.append((space, out, row, context))
        if space == "around-1b":
            for out, row in mha_rows(binary, os.path.join(folder, "space.toml"), work, PER_KIND):
                plan.append((space, out, row, context))
    for space, out, row, context in plan:
        if True:
            label = f"{space} #{row['index']}"
            c = AutoConfig.from_pretrained(out)
            check(row, c, context, problems, label)
            want = int(row["parameters"])
            built = hybrid_parameters(c) if hybrid_mixer(row) else transformers_parameters(c)
            if built != want:
                problems.append(f"{label}: transformers builds {built} parameters, pareto.csv says {want}")
            # Our count of the config as transformers holds it (every default filled in), saved
            # as transformers saves it (its JSON encodes infinities, e.g. Mamba2's
            # time_step_limit, which json.dump would write as a bare Infinity).
            dumped = os.path.join(out, "to_dict.json")
            with open(dumped, "w") as f:
                f.write(c.to_json_string(use_diff=False))
            analysis = subprocess.run(
                [binary, "analyze", "--model", dumped, "--device", "rpi5", "--scenario", "siso", "--format", "json"],
                check=True,
                capture_output=True,
                text=True,
            )
            a = json.loads(analysis.stdout)
            ours = (a[0] if isinstance(a, list) else a)["parameters"]
            if ours != want:
                problems.append(f"{label}: our count of config.to_dict() is {ours}, exported {want}")
            k = kind(row)
            kinds[k] = kinds.get(k, 0) + 1
            types[c.model_type] = types.get(c.model_type, 0) + 1
            checked += 1
    print(f"transformers {transformers.__version__}: {checked} exported configs loaded with AutoConfig")
    for (att, ffn, hd, divides), n in sorted(kinds.items()):
        size = "explicit head size" if hd else "head size hidden/heads"
        print(f"  {att:<4} {ffn:<6} {size:<23} {'' if divides else '(heads do not divide hidden)':<29} {n} configs")
    print("  as " + ", ".join(f"{t} {n}" for t, n in sorted(types.items())))
    for t in ("llama", "mistral", "deepseek_v2", "deepseek_v3"):
        if t not in types:
            problems.append(f"the sample has no config written as {t}")
    needed = {("mha", "gated"), ("gqa", "gated"), ("mqa", "gated"), ("mla", "gated"), ("mla", "moe")}
    missing = needed - {(a, f) for a, f, _, _ in kinds}
    if missing:
        problems.append(f"the sample misses kinds {sorted(missing)}")
    for att in ("gqa", "mqa", "mla"):
        if {hd for a, _, hd, _ in kinds if a == att} != {True, False}:
            problems.append(f"the sample lacks {att} shapes with or without an explicit head size")
    exported = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "hybrid", "exported")
    print(f"transformers {transformers.__version__}: hybrid families, exported configs loaded with AutoConfig")
    hybrid = check_hybrids(binary, exported, work, problems)
    print("  as " + ", ".join(f"{t} {n}" for t, n in sorted(hybrid.items())))
    for p in problems:
        print("FAIL " + p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
