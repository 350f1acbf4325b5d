//! Per-layer architectures: each layer picks its own attention variant, layer kind (global, or
//! the hybrid kind of the space's recommendation: windowed, convolution, DeltaNet or Mamba2)
//! and FFN width. Costs,
//! parameters and memory add up over layers, so this is a multiple-choice knapsack. We maximise
//! attained performance W/T (a ratio of linear forms) with Dinkelbach's iteration: each step
//! solves the MILP `max sum (W_o - lambda T_o) x_lo` under the constraints, then sets lambda to
//! the ratio of that solution, until the step gains nothing.

use super::space::round64;
use super::{Scorer, SearchSpace};
use crate::arch::{Architecture, Attention, AttentionKind, Ffn, Layer, Mixer, Mla};
use crate::device::DeviceProfile;
use crate::error::{Error, Result};
use crate::roofline::PlanChoice;
use good_lp::{microlp, variable, Expression, ProblemVariables, Solution, SolverModel, Variable};

/// One choice a layer can make, with what it adds per layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerOption {
    pub label: String,
    /// The layer's kind (its attention is `attention` when the kind attends).
    pub layer: Layer,
    pub attention: Attention,
    pub ffn: Ffn,
    pub flops: f64,
    pub time_s: f64,
    pub params: f64,
    pub memory_bytes: f64,
}

/// A per-layer problem: `layers` slots, the same options for each, and what the rest of the
/// model (embedding, LM head, workspace) adds.
#[derive(Debug, Clone)]
pub struct Instance {
    pub layers: usize,
    pub options: Vec<LayerOption>,
    pub fixed_flops: f64,
    pub fixed_time_s: f64,
    pub fixed_params: f64,
    pub fixed_memory_bytes: f64,
    pub memory_budget_bytes: f64,
    pub min_params: Option<f64>,
    pub max_params: Option<f64>,
    pub max_time_s: Option<f64>,
}

/// A chosen stack: one option index per layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    pub choice: Vec<usize>,
    pub flops: f64,
    pub time_s: f64,
    pub params: f64,
    pub memory_bytes: f64,
}

impl Stack {
    pub fn performance_flop_per_s(&self) -> f64 {
        self.flops / self.time_s
    }
}

impl Instance {
    pub fn stack(&self, choice: Vec<usize>) -> Stack {
        let sum = |f: &dyn Fn(&LayerOption) -> f64| choice.iter().map(|&o| f(&self.options[o])).sum::<f64>();
        Stack {
            flops: self.fixed_flops + sum(&|o| o.flops),
            time_s: self.fixed_time_s + sum(&|o| o.time_s),
            params: self.fixed_params + sum(&|o| o.params),
            memory_bytes: self.fixed_memory_bytes + sum(&|o| o.memory_bytes),
            choice,
        }
    }

    pub fn feasible(&self, s: &Stack) -> bool {
        s.memory_bytes <= self.memory_budget_bytes * (1.0 + 1e-12)
            && self.min_params.is_none_or(|m| s.params >= m * (1.0 - 1e-12))
            && self.max_params.is_none_or(|m| s.params <= m * (1.0 + 1e-12))
            && self.max_time_s.is_none_or(|m| s.time_s <= m * (1.0 + 1e-12))
    }

    /// The best stack whose layers are all the same option.
    pub fn best_uniform(&self) -> Option<Stack> {
        (0..self.options.len())
            .map(|o| self.stack(vec![o; self.layers]))
            .filter(|s| self.feasible(s))
            .max_by(|a, b| a.performance_flop_per_s().total_cmp(&b.performance_flop_per_s()))
    }
}

/// Every per-layer assignment (options^layers): the reference for small instances.
pub fn brute_force(inst: &Instance) -> Option<Stack> {
    let n = inst.options.len();
    let total = n.checked_pow(inst.layers as u32).expect("small instances only");
    let mut best: Option<Stack> = None;
    for mut code in 0..total {
        let mut choice = Vec::with_capacity(inst.layers);
        for _ in 0..inst.layers {
            choice.push(code % n);
            code /= n;
        }
        let s = inst.stack(choice);
        if inst.feasible(&s) && best.as_ref().is_none_or(|b| s.performance_flop_per_s() > b.performance_flop_per_s()) {
            best = Some(s);
        }
    }
    best
}

/// The optimum and the Dinkelbach iterations it took.
#[derive(Debug, Clone)]
pub struct Solved {
    pub stack: Stack,
    pub iterations: usize,
}

// Units inside the MILP, so coefficients stay near 1: GFLOP, seconds, billions, GB.
const G: f64 = 1e9;

/// The MILP for one Dinkelbach step. Layers are interchangeable in the cost model (a layer's
/// cost does not depend on its position), so a per-layer assignment is fixed, up to order, by
/// how many layers take each option: integer counts `n_o` with `sum n_o = layers` describe the
/// same choices as binaries `x_lo` with `sum_o x_lo = 1`, with `layers` times fewer variables
/// and none of the binaries' symmetric copies (microlp took 100 s on 16 x 55 binaries).
fn solve_for(inst: &Instance, lambda: f64) -> Result<Vec<usize>> {
    let mut vars = ProblemVariables::new();
    let n: Vec<Variable> =
        (0..inst.options.len()).map(|_| vars.add(variable().integer().min(0).max(inst.layers as f64))).collect();
    let sum = |f: &dyn Fn(&LayerOption) -> f64| -> Expression {
        n.iter().enumerate().fold(Expression::from(0.0), |e, (o, &v)| e + f(&inst.options[o]) * v)
    };
    let objective = sum(&|o| o.flops / G - lambda * o.time_s);
    let mut model = vars.maximise(objective).using(microlp);
    model = model.with(sum(&|_| 1.0).eq(inst.layers as f64));
    model = model.with(sum(&|o| o.memory_bytes / G).leq((inst.memory_budget_bytes - inst.fixed_memory_bytes) / G));
    if let Some(m) = inst.min_params {
        model = model.with(sum(&|o| o.params / G).geq((m - inst.fixed_params) / G));
    }
    if let Some(m) = inst.max_params {
        model = model.with(sum(&|o| o.params / G).leq((m - inst.fixed_params) / G));
    }
    if let Some(m) = inst.max_time_s {
        model = model.with(sum(&|o| o.time_s).leq(m - inst.fixed_time_s));
    }
    let sol = model.solve().map_err(|e| match e {
        good_lp::ResolutionError::Infeasible => Error::Solver("no per-layer stack meets the constraints".into()),
        other => Error::Solver(other.to_string()),
    })?;
    // Layer l takes the option whose running count covers it.
    let mut choice = Vec::with_capacity(inst.layers);
    for (o, &v) in n.iter().enumerate() {
        let count = sol.value(v).round().max(0.0) as usize;
        choice.extend(std::iter::repeat_n(o, count));
    }
    if choice.len() != inst.layers {
        return Err(Error::Solver(format!("solver returned {} layers for {}", choice.len(), inst.layers)));
    }
    Ok(choice)
}

pub fn solve(inst: &Instance) -> Result<Solved> {
    let mut lambda = 0.0;
    for iterations in 1..=60 {
        let stack = inst.stack(solve_for(inst, lambda)?);
        // F(lambda) = max (W - lambda T); zero at the optimal ratio.
        let gain = (stack.flops / G - lambda * stack.time_s).abs();
        let ratio = stack.flops / G / stack.time_s;
        if gain <= 1e-9 * (stack.flops / G).max(1e-12) || (ratio - lambda).abs() <= 1e-12 * ratio {
            return Ok(Solved { stack, iterations });
        }
        lambda = ratio;
    }
    Err(Error::Solver("Dinkelbach's iteration did not converge in 60 steps".into()))
}

/// Every attention variant the space's blocks offer, at the base's heads and head size, each once.
fn attention_variants(space: &SearchSpace, base: &Architecture) -> Vec<(String, Attention)> {
    let d = &space.dims;
    let heads = base.attention.num_heads();
    let head_dim = match base.attention {
        Attention::Grouped { head_dim, .. } => head_dim,
        Attention::Latent(m) => m.qk_nope_head_dim,
    };
    let mut attentions: Vec<(String, Attention)> = Vec::new();
    for block in &space.blocks {
        let grouped = |kv: u32| Attention::Grouped { num_heads: heads, num_kv_heads: kv, head_dim };
        match block.attention {
            AttentionKind::Mha => attentions.push(("mha".into(), grouped(heads))),
            AttentionKind::Mqa => attentions.push(("mqa".into(), grouped(1))),
            AttentionKind::Gqa => attentions.extend(
                d.kv_heads
                    .iter()
                    .filter(|&&k| k > 1 && k < heads && heads % k == 0)
                    .map(|&k| (format!("gqa{k}"), grouped(k))),
            ),
            AttentionKind::Mla => attentions.extend(d.kv_lora_rank.iter().map(|&r| {
                let m = Mla {
                    num_heads: heads,
                    kv_lora_rank: r,
                    q_lora_rank: None,
                    qk_nope_head_dim: head_dim,
                    qk_rope_head_dim: d.rope_head_dim[0],
                    v_head_dim: head_dim,
                };
                (format!("mla{r}"), Attention::Latent(m))
            })),
        }
    }
    // Blocks repeat attention kinds (one block per layer kind): keep each variant once.
    let mut seen = std::collections::HashSet::new();
    attentions.retain(|(label, _)| seen.insert(label.clone()));
    attentions
}

/// Every FFN width of the space around the base's hidden size, and the base's own experts.
fn ffn_variants(space: &SearchSpace, base: &Architecture) -> Vec<(String, Ffn)> {
    let dense = |w: u32| Ffn::Dense {
        intermediate_size: w,
        gated: true,
        activation: crate::arch::Activation::Silu,
        bias: false,
    };
    let mut ffns: Vec<(String, Ffn)> = space
        .dims
        .ffn_multiplier
        .iter()
        .map(|m| round64(m * base.hidden_size as f64))
        .map(|w| (format!("ffn{w}"), dense(w)))
        .collect();
    if let Ffn::Moe(m) = base.ffn {
        // The base's own mixture of experts, as a per-layer choice (no dense-first layers here).
        let moe = crate::arch::Moe { first_k_dense: 0, ..m };
        ffns.push((format!("moe{}x{}", m.num_experts, m.expert_intermediate_size), Ffn::Moe(moe)));
    }
    ffns
}

/// The options a space offers one layer, around a base architecture (its width, heads and
/// precisions): every attention variant of the space times every FFN width.
pub fn instance_for(
    space: &SearchSpace,
    device: &DeviceProfile,
    base: &Architecture,
    precision_index: usize,
) -> Instance {
    let attentions = attention_variants(space, base);
    let ffns = ffn_variants(space, base);
    let mut scorer = Scorer::new(space, device, PlanChoice::Fastest);
    let mut fixed = None;
    let mut options = Vec::new();
    // The layer kinds a layer may take: global attention (as the base's global layers run it,
    // RoPE or not), and the base's own other kind when it is a hybrid: mixing kinds its family
    // does not hold would describe a model no config expresses.
    let global = base.layers.iter().copied().find(|l| l.mixer == Mixer::Global).unwrap_or(Layer::GLOBAL);
    let mut kinds = vec![global];
    kinds.extend(base.layers.iter().copied().find(|l| l.mixer != Mixer::Global));
    let with = |att: Attention, ffn: Ffn, layer: Layer, layers: u32| {
        let mut a = base.clone();
        a.attention = att;
        a.ffn = ffn;
        a.num_layers = layers;
        a.layers = if layer == Layer::GLOBAL { Vec::new() } else { vec![layer; layers as usize] };
        a
    };
    for &layer in &kinds {
        // A convolution or recurrent layer does not attend: one option per FFN width.
        let variants =
            if layer.mixer.is_attention() { &attentions[..] } else { &attentions[..1.min(attentions.len())] };
        for (label, att) in variants {
            let kind = match layer.mixer {
                Mixer::Global => label.clone(),
                Mixer::Window { window } => format!("{label}+window{window}"),
                other => other.label().to_string(),
            };
            for (ffn_label, ffn) in &ffns {
                let (one, two) = (with(*att, *ffn, layer, 1), with(*att, *ffn, layer, 2));
                let (d1, d2) = (scorer.detail(&one, precision_index), scorer.detail(&two, precision_index));
                let mem = |d: &super::Detail| d.footprint.weights_bytes + d.footprint.kv_cache_bytes;
                let opt = LayerOption {
                    label: format!("{kind}/{ffn_label}"),
                    layer,
                    attention: *att,
                    ffn: *ffn,
                    flops: d2.total.flops - d1.total.flops,
                    time_s: d2.total.time_s - d1.total.time_s,
                    params: (two.parameters() - one.parameters()) as f64,
                    memory_bytes: mem(&d2) - mem(&d1),
                };
                fixed.get_or_insert((
                    d1.total.flops - opt.flops,
                    d1.total.time_s - opt.time_s,
                    one.parameters() as f64 - opt.params,
                    d1.footprint.total_bytes - opt.memory_bytes,
                ));
                options.push(opt);
            }
        }
    }
    let (ff, ft, fp, fm) = fixed.unwrap_or_default();
    let c = &space.constraints;
    Instance {
        layers: base.num_layers as usize,
        options,
        fixed_flops: ff,
        fixed_time_s: ft,
        fixed_params: fp,
        fixed_memory_bytes: fm,
        memory_budget_bytes: scorer.budget_bytes(),
        min_params: c.min_params,
        max_params: c.max_params,
        max_time_s: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_instance(seed: u64, layers: usize, n: usize) -> Instance {
        // A small linear congruential generator: deterministic instances without a dependency.
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut next = move || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let options = (0..n)
            .map(|i| LayerOption {
                label: format!("o{i}"),
                layer: Layer::GLOBAL,
                attention: Attention::Grouped { num_heads: 1, num_kv_heads: 1, head_dim: 1 },
                ffn: Ffn::Dense {
                    intermediate_size: 1,
                    gated: true,
                    activation: crate::arch::Activation::Silu,
                    bias: false,
                },
                flops: (1.0 + 9.0 * next()) * 1e9,
                time_s: 0.001 + 0.01 * next(),
                params: (1.0 + 4.0 * next()) * 1e7,
                memory_bytes: (1.0 + 4.0 * next()) * 1e8,
            })
            .collect::<Vec<_>>();
        let mean_mem = options.iter().map(|o| o.memory_bytes).sum::<f64>() / n as f64;
        let mean_params = options.iter().map(|o| o.params).sum::<f64>() / n as f64;
        Instance {
            layers,
            options,
            fixed_flops: 1e9 * next(),
            fixed_time_s: 0.002 * next(),
            fixed_params: 1e7,
            fixed_memory_bytes: 1e8,
            memory_budget_bytes: 1e8 + layers as f64 * mean_mem * (0.8 + 0.4 * next()),
            min_params: Some(1e7 + layers as f64 * mean_params * (0.5 + 0.3 * next())),
            max_params: None,
            max_time_s: None,
        }
    }

    #[test]
    fn milp_optimum_equals_brute_force_on_small_instances() {
        let mut compared = 0;
        for seed in 0..40 {
            let inst = random_instance(seed, 3 + (seed % 2) as usize, 4 + (seed % 3) as usize);
            match (brute_force(&inst), solve(&inst)) {
                (Some(b), Ok(m)) => {
                    let (pb, pm) = (b.performance_flop_per_s(), m.stack.performance_flop_per_s());
                    assert!((pb - pm).abs() <= 1e-9 * pb, "seed {seed}: brute {pb} vs milp {pm}");
                    assert!(inst.feasible(&m.stack));
                    compared += 1;
                }
                (None, Err(_)) => {}
                (b, m) => panic!("seed {seed}: brute {b:?} vs milp {m:?}"),
            }
        }
        assert!(compared >= 20, "only {compared} feasible instances");
    }

    #[test]
    fn heterogeneous_is_never_worse_than_uniform() {
        for seed in 0..20 {
            let inst = random_instance(seed, 4, 5);
            if let (Some(u), Ok(m)) = (inst.best_uniform(), solve(&inst)) {
                assert!(m.stack.performance_flop_per_s() >= u.performance_flop_per_s() * (1.0 - 1e-12));
            }
        }
    }
}
