//! Execution plans as an e-graph (egg): a layer's attention core written as batched matrix
//! products, rewritten by rules that preserve the result, and extracted by roofline time on a
//! device.
//!
//! MLA absorption is matrix-chain reassociation with per-head batching: the scores are
//! `q_nope (W_uk^T L^T)` materialised (expand the latent into per-head keys) or
//! `(q_nope W_uk^T) L^T` absorbed (move the query into latent space), and the values
//! `P (L W_uv)` or `(P L) W_uv`. Associativity finds both; a fusion rule turns
//! `softmax(scores) values` into one on-chip kernel when its tiles fit the device's on-chip
//! memory; a norm feeding a product fuses into the product's prologue. Extraction picks the
//! cheapest by `max(FLOPs / peak, bytes / bandwidth) + fixed cost` per kernel.

use crate::arch::{Architecture, Attention};
use crate::device::DeviceProfile;
use crate::dtype::DType;
use crate::workload::{AttentionForm, ElementwiseForm, MlaForm, OpClass, Plan, RunSettings};
use egg::{
    define_language, rewrite as rw, Analysis, CostFunction, DidMerge, EGraph, Extractor, Id, Language, RecExpr,
    Rewrite, Runner, Symbol,
};
use std::collections::HashMap;
use std::fmt::Write as _;

// One attention core; leaves are named tensors whose shapes the analysis knows.
// `mm`: batched product `[b, m, k] x [b|1, k, n] -> [b, m, n]`; `flash`: fused attention
// `softmax(a b + c d) v` with scores and probabilities on chip; `mm_norm`: a product whose
// prologue normalises its left input (no normalised copy in memory); `act` and `mul`: the
// gated FFN's activation and gate product; `mm_glu x g u`: both FFN products in one kernel
// whose epilogue applies `act(x g) * (x u)` (neither product reaches memory), and
// `mm_norm_glu` the same with the norm in its prologue.
define_language! {
    pub enum PlanLang {
        "mm" = Mm([Id; 2]),
        "add" = Add([Id; 2]),
        "softmax" = Softmax(Id),
        "norm" = Norm(Id),
        "act" = Act(Id),
        "mul" = Mul([Id; 2]),
        "flash" = Flash([Id; 5]),
        "mm_norm" = MmNorm([Id; 2]),
        "mm_glu" = MmGlu([Id; 3]),
        "mm_norm_glu" = MmNormGlu([Id; 3]),
        Leaf(Symbol),
    }
}

/// Where a tensor lives before the kernel that reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Home {
    Weights,
    KvCache,
    /// An activation or an intermediate result: written by its producer, read by its consumer.
    Activations,
}

/// What the analysis knows of every e-class.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    /// `[batch (heads), rows, cols]`.
    pub shape: [f64; 3],
    pub home: Home,
    /// The leaf a tensor is, for reads of one tensor by two inputs of a fused kernel.
    pub source: Option<Symbol>,
}

impl Meta {
    pub fn elements(&self) -> f64 {
        self.shape[0] * self.shape[1] * self.shape[2]
    }
}

/// Shapes of the leaves; every other class's shape follows from its node.
#[derive(Default, Clone)]
pub struct Shapes {
    pub leaves: HashMap<Symbol, Meta>,
}

impl Analysis<PlanLang> for Shapes {
    type Data = Meta;

    fn make(egraph: &mut EGraph<PlanLang, Self>, enode: &PlanLang, _id: Id) -> Meta {
        let m = |i: &Id| egraph[*i].data.clone();
        let act = |shape| Meta { shape, home: Home::Activations, source: None };
        match enode {
            PlanLang::Leaf(s) => {
                egraph.analysis.leaves.get(s).cloned().unwrap_or_else(|| panic!("leaf {s} has no shape"))
            }
            PlanLang::Mm([a, b]) | PlanLang::MmNorm([a, b]) => {
                let (a, b) = (m(a), m(b));
                act([a.shape[0].max(b.shape[0]), a.shape[1], b.shape[2]])
            }
            PlanLang::Add([a, _])
            | PlanLang::Mul([a, _])
            | PlanLang::Softmax(a)
            | PlanLang::Norm(a)
            | PlanLang::Act(a) => act(m(a).shape),
            PlanLang::MmGlu([x, g, _]) | PlanLang::MmNormGlu([x, g, _]) => {
                let (x, g) = (m(x), m(g));
                act([x.shape[0].max(g.shape[0]), x.shape[1], g.shape[2]])
            }
            PlanLang::Flash([a, _, _, _, v]) => {
                let (a, v) = (m(a), m(v));
                act([a.shape[0].max(v.shape[0]), a.shape[1], v.shape[2]])
            }
        }
    }

    fn merge(&mut self, to: &mut Meta, from: Meta) -> DidMerge {
        // Rewrites preserve the result, so merged classes must agree on the shape.
        assert_eq!(to.shape, from.shape, "a rewrite changed a shape");
        DidMerge(false, false)
    }
}

pub type PlanGraph = EGraph<PlanLang, Shapes>;

/// FLOPs and bytes of one node (its own kernel, children excluded).
pub fn node_work(g: &PlanGraph, node: &PlanLang, bytes_per_element: f64) -> (f64, f64) {
    let meta = |i: &Id| &g[*i].data;
    let read = |i: &Id| meta(i).elements() * bytes_per_element;
    let write = |shape: [f64; 3]| shape[0] * shape[1] * shape[2] * bytes_per_element;
    match node {
        PlanLang::Leaf(_) => (0.0, 0.0),
        PlanLang::Mm([a, b]) | PlanLang::MmNorm([a, b]) => {
            let (sa, sb) = (meta(a).shape, meta(b).shape);
            let out = [sa[0].max(sb[0]), sa[1], sb[2]];
            let norm = if matches!(node, PlanLang::MmNorm(_)) { 4.0 * sa[0] * sa[1] * sa[2] } else { 0.0 };
            (2.0 * out[0] * sa[1] * sa[2] * sb[2] + norm, read(a) + read(b) + write(out))
        }
        PlanLang::Add([a, b]) | PlanLang::Mul([a, b]) => (meta(a).elements(), read(a) + read(b) + read(a)),
        PlanLang::Softmax(a) => (5.0 * meta(a).elements(), 2.0 * read(a)),
        PlanLang::Norm(a) => (4.0 * meta(a).elements(), 2.0 * read(a)),
        // SiLU: neg, exp, add, div, mul (as the workload counts it).
        PlanLang::Act(a) => (5.0 * meta(a).elements(), 2.0 * read(a)),
        PlanLang::MmGlu([x, g, u]) | PlanLang::MmNormGlu([x, g, u]) => {
            let (sx, sg) = (meta(x).shape, meta(g).shape);
            let out = [sx[0].max(sg[0]), sx[1], sg[2]];
            let products = 2.0 * 2.0 * out[0] * sx[1] * sx[2] * sg[2];
            // The epilogue's activation (5) and gate multiply (1) per output element.
            let epilogue = 6.0 * out[0] * out[1] * out[2];
            let norm = if matches!(node, PlanLang::MmNormGlu(_)) { 4.0 * sx[0] * sx[1] * sx[2] } else { 0.0 };
            // The input is read once for both products; only the gated result is written.
            (products + epilogue + norm, read(x) + read(g) + read(u) + write(out))
        }
        PlanLang::Flash([a, b, c, d, v]) => {
            let (sa, sb, sc, sv) = (meta(a).shape, meta(b).shape, meta(c).shape, meta(v).shape);
            let heads = sa[0].max(sv[0]);
            let scores = heads * sa[1] * sb[2];
            let flops = 2.0 * scores * sa[2] + 2.0 * scores * sc[2] + 5.0 * scores + 2.0 * scores * sv[2];
            // One kernel reads each distinct tensor once (the absorbed form's keys and values
            // are one latent cache).
            let mut seen: Vec<Symbol> = Vec::new();
            let mut bytes = write([heads, sa[1], sv[2]]);
            for i in [a, b, c, d, v] {
                if let Some(s) = meta(i).source {
                    if seen.contains(&s) {
                        continue;
                    }
                    seen.push(s);
                }
                bytes += read(i);
            }
            (flops, bytes)
        }
    }
}

/// The operator class calibration measured for a node's kernel.
fn class_of(g: &PlanGraph, node: &PlanLang) -> OpClass {
    match node {
        // A product with a weight operand is a matmul; activations times activations or the
        // cache (scores, absorbed products) is a batched product.
        PlanLang::Mm([a, b]) => {
            if g[*a].data.home == Home::Weights || g[*b].data.home == Home::Weights {
                OpClass::Matmul
            } else {
                OpClass::BatchedMatmul
            }
        }
        PlanLang::MmNorm(_) | PlanLang::MmGlu(_) | PlanLang::MmNormGlu(_) => OpClass::Matmul,
        PlanLang::Flash(_) => OpClass::Attention,
        PlanLang::Softmax(_) => OpClass::Softmax,
        PlanLang::Norm(_) => OpClass::Norm,
        PlanLang::Add(_) | PlanLang::Mul(_) | PlanLang::Act(_) | PlanLang::Leaf(_) => OpClass::Elementwise,
    }
}

/// Roofline time of a plan on a device: per kernel `max(W / (peak eta_c), Q / (bandwidth
/// eta_m)) + fixed`, with the profile's calibrated efficiencies when it has them.
pub struct RooflineTime<'a> {
    pub graph: &'a PlanGraph,
    /// The profile whose calibrated efficiency curves apply (none on a datasheet profile).
    pub efficiency: Option<&'a DeviceProfile>,
    /// The format the plan computes in (selects the efficiency tables).
    pub dtype: DType,
    pub peak_flop_per_s: f64,
    pub bandwidth_bytes_per_s: f64,
    pub overhead_s: f64,
    pub bytes_per_element: f64,
    /// Whether extraction may choose an expanded K/V cache: it trades time for a cache many
    /// times the latent's size, a memory decision the caller makes (scoring does not).
    pub allow_expanded_cache: bool,
}

impl<'a> RooflineTime<'a> {
    pub fn new(graph: &'a PlanGraph, device: &'a DeviceProfile, dtype: DType) -> Self {
        RooflineTime {
            graph,
            efficiency: device.has_efficiency_tables().then_some(device),
            dtype,
            peak_flop_per_s: device.peak_flops(dtype),
            bandwidth_bytes_per_s: device.bandwidth_bytes_per_s,
            overhead_s: device.kernel_overhead_s,
            bytes_per_element: dtype.bytes(),
            allow_expanded_cache: false,
        }
    }

    pub fn node_time(&self, node: &PlanLang) -> f64 {
        if matches!(node, PlanLang::Leaf(_)) {
            return 0.0;
        }
        let (w, q) = node_work(self.graph, node, self.bytes_per_element);
        let (ec, em) = self
            .efficiency
            .and_then(|d| d.efficiency_table(self.dtype, class_of(self.graph, node)))
            .map_or((1.0, 1.0), |t| t.lookup(w, q));
        (w / (self.peak_flop_per_s * ec)).max(q / (self.bandwidth_bytes_per_s * em)) + self.overhead_s
    }
}

impl CostFunction<PlanLang> for RooflineTime<'_> {
    type Cost = f64;
    fn cost<C: FnMut(Id) -> f64>(&mut self, enode: &PlanLang, mut costs: C) -> f64 {
        if let PlanLang::Leaf(s) = enode {
            if !self.allow_expanded_cache && matches!(s.as_str(), "k_expanded_t" | "v_expanded") {
                return f64::INFINITY;
            }
        }
        enode.fold(self.node_time(enode), |sum, id| sum + costs(id))
    }
}

/// Rules that preserve the computation.
pub fn rules(on_chip_bytes: Option<f64>, bytes_per_element: f64) -> Vec<Rewrite<PlanLang, Shapes>> {
    let mut r: Vec<Rewrite<PlanLang, Shapes>> = vec![
        rw!("mm-assoc-left"; "(mm ?a (mm ?b ?c))" => "(mm (mm ?a ?b) ?c)"),
        rw!("mm-assoc-right"; "(mm (mm ?a ?b) ?c)" => "(mm ?a (mm ?b ?c))"),
        rw!("fuse-norm"; "(mm (norm ?x) ?w)" => "(mm_norm ?x ?w)"),
        // A gated FFN's two products share their input: one kernel computes both and applies
        // the activation and the gate multiply in its epilogue.
        rw!("fuse-glu"; "(mul (act (mm ?x ?g)) (mm ?x ?u))" => "(mm_glu ?x ?g ?u)"),
        rw!("fuse-norm-glu"; "(mm_glu (norm ?x) ?g ?u)" => "(mm_norm_glu ?x ?g ?u)"),
        // MLA: keep the expanded per-head keys and values in the cache instead of recomputing
        // them from the latent each step (more cache bytes read, no expansion products).
        rw!("cache-expanded-keys"; "(mm w_uk_t latent_t)" => "k_expanded_t"),
        rw!("cache-expanded-values"; "(mm latent w_uv)" => "v_expanded"),
    ];
    // Fused attention streams 64-key tiles of keys and values through on-chip memory; it
    // applies when one tile (and a 64-query block) fits.
    let fits = move |egraph: &mut PlanGraph, _: Id, subst: &egg::Subst| -> bool {
        let Some(cap) = on_chip_bytes else { return true };
        let v: egg::Var = "?v".parse().expect("var");
        let a: egg::Var = "?a".parse().expect("var");
        let (dv, dk) = (egraph[subst[v]].data.shape[2], egraph[subst[a]].data.shape[2]);
        64.0 * (2.0 * dk + 2.0 * dv) * bytes_per_element <= cap
    };
    r.push(
        rw!("fuse-attention-rope"; "(mm (softmax (add (mm ?a ?b) (mm ?c ?d))) ?v)" => "(flash ?a ?b ?c ?d ?v)" if fits),
    );
    // Plain attention: the rope term of the fused kernel is empty.
    r.push(rw!("fuse-attention"; "(mm (softmax (mm ?a ?b)) ?v)" => "(flash ?a ?b none_q none_k ?v)" if fits));
    r
}

/// The attention core of one layer for `tokens` new tokens attending `context` keys, as the
/// naive plan: materialised MLA (or plain attention), unfused. Leaves get their shapes here.
pub fn attention_core(arch: &Architecture, tokens: f64, context: f64) -> (RecExpr<PlanLang>, Shapes) {
    let mut shapes = Shapes::default();
    let mut leaf = |name: &str, shape: [f64; 3], home: Home, source: &str| -> String {
        shapes.leaves.insert(Symbol::from(name), Meta { shape, home, source: Some(Symbol::from(source)) });
        name.to_string()
    };
    let text = match arch.attention {
        Attention::Latent(m) => {
            let (nh, r, dr, dn, dv) = m.dims_f64();
            let q = leaf("q_nope", [nh, tokens, dn], Home::Activations, "q_nope");
            let qr = leaf("q_rope", [nh, tokens, dr], Home::Activations, "q_rope");
            let wuk = leaf("w_uk_t", [nh, dn, r], Home::Weights, "w_uk");
            let wuv = leaf("w_uv", [nh, r, dv], Home::Weights, "w_uv");
            let lt = leaf("latent_t", [1.0, r, context], Home::KvCache, "latent");
            let l = leaf("latent", [1.0, context, r], Home::KvCache, "latent");
            let krt = leaf("k_rope_t", [1.0, dr, context], Home::KvCache, "k_rope");
            // The expanded cache the caching rules may read instead.
            leaf("k_expanded_t", [nh, dn, context], Home::KvCache, "k_expanded");
            leaf("v_expanded", [nh, context, dv], Home::KvCache, "v_expanded");
            format!("(mm (softmax (add (mm {q} (mm {wuk} {lt})) (mm {qr} {krt}))) (mm {l} {wuv}))")
        }
        Attention::Grouped { num_heads, num_kv_heads, head_dim } => {
            // Keys and values of grouped heads are read once per KV head: model the query heads
            // of a group as extra query rows of that KV head.
            let (kv, hd) = (num_kv_heads as f64, head_dim as f64);
            let group = num_heads as f64 / kv;
            let q = leaf("q", [kv, tokens * group, hd], Home::Activations, "q");
            let kt = leaf("k_t", [kv, hd, context], Home::KvCache, "k");
            let v = leaf("v", [kv, context, hd], Home::KvCache, "v");
            // The fused kernel's empty rope operands (RoPE is applied before attention here).
            leaf("none_q", [kv, tokens * group, 0.0], Home::Activations, "none_q");
            leaf("none_k", [kv, 0.0, context], Home::Activations, "none_k");
            format!("(mm (softmax (mm {q} {kt})) {v})")
        }
    };
    (text.parse().expect("a well-formed plan"), shapes)
}

/// A plan found by the e-graph, with the alternatives it weighed.
#[derive(Debug, Clone)]
pub struct Explained {
    pub best: RecExpr<PlanLang>,
    pub best_time_s: f64,
    pub plan: Plan,
    /// (label, expression, time, bound) of each named alternative.
    pub alternatives: Vec<(String, String, f64, &'static str)>,
    pub eclasses: usize,
    pub enodes: usize,
}

/// Saturates the core's e-graph and extracts the fastest plan on `device`.
pub fn explain(arch: &Architecture, device: &DeviceProfile, dtype: DType, tokens: f64, context: f64) -> Explained {
    let (expr, shapes) = attention_core(arch, tokens, context);
    let runner: Runner<PlanLang, Shapes> = Runner::new(shapes)
        .with_expr(&expr)
        .with_iter_limit(12)
        .with_node_limit(10_000)
        .run(&rules(device.on_chip_bytes, dtype.bytes()));
    let root = runner.roots[0];
    let graph = &runner.egraph;
    let extractor = Extractor::new(graph, RooflineTime::new(graph, device, dtype));
    let (best_time_s, best) = extractor.find_best(root);
    let plan = classify(&best);
    // The named alternatives, priced with the same cost function.
    let mut alternatives = Vec::new();
    let mut cost = RooflineTime::new(graph, device, dtype);
    for (label, text) in named_forms(arch, tokens, context) {
        let e: RecExpr<PlanLang> = text.parse().expect("well-formed");
        // A form the rules could not reach (a tile too large for on-chip memory) is not a plan.
        if let Some((time, bound)) = price(graph, &mut cost, &e) {
            alternatives.push((label, text, time, bound));
        }
    }
    Explained {
        best,
        best_time_s,
        plan,
        alternatives,
        eclasses: graph.number_of_classes(),
        enodes: graph.total_number_of_nodes(),
    }
}

/// Time of an expression whose classes are in `graph`, and which roof its slowest kernel is under.
fn price(graph: &PlanGraph, cost: &mut RooflineTime, e: &RecExpr<PlanLang>) -> Option<(f64, &'static str)> {
    let mut ids: Vec<Id> = Vec::with_capacity(e.len());
    let (mut total, mut slowest, mut bound) = (0.0, 0.0, "memory");
    for node in e.as_ref() {
        let mapped = node.clone().map_children(|c| ids[usize::from(c)]);
        let id = graph.lookup(mapped.clone())?;
        ids.push(id);
        let t = cost.node_time(&mapped);
        total += t;
        if t > slowest && !matches!(mapped, PlanLang::Leaf(_)) {
            slowest = t;
            let (w, q) = node_work(graph, &mapped, cost.bytes_per_element);
            bound = if w / cost.peak_flop_per_s >= q / cost.bandwidth_bytes_per_s { "compute" } else { "memory" };
        }
    }
    Some((total, bound))
}

/// The four forms a person asks about, written out.
fn named_forms(arch: &Architecture, _tokens: f64, _context: f64) -> Vec<(String, String)> {
    match arch.attention {
        Attention::Latent(_) => vec![
            (
                "materialised, unfused".into(),
                "(mm (softmax (add (mm q_nope (mm w_uk_t latent_t)) (mm q_rope k_rope_t))) (mm latent w_uv))".into(),
            ),
            (
                "materialised, fused".into(),
                "(flash q_nope (mm w_uk_t latent_t) q_rope k_rope_t (mm latent w_uv))".into(),
            ),
            (
                "absorbed, unfused".into(),
                "(mm (mm (softmax (add (mm (mm q_nope w_uk_t) latent_t) (mm q_rope k_rope_t))) latent) w_uv)".into(),
            ),
            ("absorbed, fused".into(), "(mm (flash (mm q_nope w_uk_t) latent_t q_rope k_rope_t latent) w_uv)".into()),
            ("expanded K/V cache, fused".into(), "(flash q_nope k_expanded_t q_rope k_rope_t v_expanded)".into()),
        ],
        Attention::Grouped { .. } => vec![
            ("unfused".into(), "(mm (softmax (mm q k_t)) v)".into()),
            ("fused".into(), "(flash q k_t none_q none_k v)".into()),
        ],
    }
}

/// Reads the execution plan off an extracted expression.
pub fn classify(e: &RecExpr<PlanLang>) -> Plan {
    let nodes = e.as_ref();
    let fused = nodes.iter().any(|n| matches!(n, PlanLang::Flash(_)));
    // Absorbed: the query meets W_uk before the cache (a product whose left child is q_nope
    // and right child is the weight).
    let is_leaf = |id: &Id, name: &str| matches!(&nodes[usize::from(*id)], PlanLang::Leaf(s) if s.as_str() == name);
    let absorbed =
        nodes.iter().any(|n| matches!(n, PlanLang::Mm([a, b]) if is_leaf(a, "q_nope") && is_leaf(b, "w_uk_t")));
    Plan {
        mla: if absorbed { MlaForm::Absorbed } else { MlaForm::Materialised },
        attention: if fused { AttentionForm::Fused } else { AttentionForm::Unfused },
        elementwise: ElementwiseForm::Separate,
    }
}

/// A gated FFN block as eager code runs it, `down(act(gate(norm x)) * up(norm x))`: the
/// `fuse-norm`, `fuse-glu` and `fuse-norm-glu` rules turn it into products whose prologue
/// normalises and whose epilogue gates, so neither the normalised copy nor either product's
/// output reaches memory.
pub fn ffn_block(hidden: f64, intermediate: f64, tokens: f64) -> (RecExpr<PlanLang>, Shapes) {
    let mut shapes = Shapes::default();
    let mut e = RecExpr::default();
    let mut leaf = |e: &mut RecExpr<PlanLang>, name: &str, shape: [f64; 3], home: Home| {
        shapes.leaves.insert(Symbol::from(name), Meta { shape, home, source: Some(Symbol::from(name)) });
        e.add(PlanLang::Leaf(Symbol::from(name)))
    };
    let x = leaf(&mut e, "x", [1.0, tokens, hidden], Home::Activations);
    let g = leaf(&mut e, "w_gate", [1.0, hidden, intermediate], Home::Weights);
    let u = leaf(&mut e, "w_up", [1.0, hidden, intermediate], Home::Weights);
    let d = leaf(&mut e, "w_down", [1.0, intermediate, hidden], Home::Weights);
    // Built node by node so the normalised input is one node read by both products (parsing
    // the text would duplicate it and price the norm twice).
    let n = e.add(PlanLang::Norm(x));
    let gate = e.add(PlanLang::Mm([n, g]));
    let act = e.add(PlanLang::Act(gate));
    let up = e.add(PlanLang::Mm([n, u]));
    let gated = e.add(PlanLang::Mul([act, up]));
    e.add(PlanLang::Mm([gated, d]));
    (e, shapes)
}

/// The FFN block of `arch` (its dense or expert width).
pub fn ffn_block_of(arch: &Architecture, tokens: f64) -> (RecExpr<PlanLang>, Shapes) {
    let width = match arch.ffn {
        crate::arch::Ffn::Dense { intermediate_size, .. } => intermediate_size as f64,
        crate::arch::Ffn::Moe(m) => m.dense_intermediate_size.max(m.expert_intermediate_size) as f64,
    };
    ffn_block(arch.hidden_size as f64, width, tokens)
}

/// An FFN block's e-graph with the fusion rules run to saturation.
fn saturate_ffn(
    expr: &RecExpr<PlanLang>,
    shapes: Shapes,
    device: &DeviceProfile,
    dtype: DType,
) -> Runner<PlanLang, Shapes> {
    Runner::new(shapes).with_expr(expr).with_iter_limit(6).run(&rules(device.on_chip_bytes, dtype.bytes()))
}

/// Saturates an FFN block and extracts its fastest form: (time, chosen, time as written).
pub fn extract_ffn(
    expr: &RecExpr<PlanLang>,
    shapes: Shapes,
    device: &DeviceProfile,
    dtype: DType,
) -> (f64, RecExpr<PlanLang>, f64) {
    let runner = saturate_ffn(expr, shapes, device, dtype);
    let g = &runner.egraph;
    let (_, best) = Extractor::new(g, RooflineTime::new(g, device, dtype)).find_best(runner.roots[0]);
    // Priced over the expression's nodes (shared ones once), not egg's tree cost.
    let mut cost = RooflineTime::new(g, device, dtype);
    let (t, _) = price(g, &mut cost, &best).expect("the extracted plan is in its e-graph");
    let (as_written, _) = price(g, &mut cost, expr).expect("the input is in its e-graph");
    (t, best, as_written)
}

/// Whether the e-graph fuses norms and activations into the neighbouring products on this
/// device, for a phase with `tokens` new tokens.
///
/// Fusion removes whole kernels (the norm's copy, the activation and the gate multiply) and
/// keeps the FLOPs, so under a roofline cost it wins at every shape unless a device's
/// calibrated tables say a fused product is slower than its parts. The scoring path therefore
/// asks once per device, format and phase, on a reference block (2048 wide, 5632 FFN), rather
/// than per candidate; a test checks that the answer is the same over a grid of shapes on
/// every built-in device.
pub fn elementwise_form(device: &DeviceProfile, dtype: DType, tokens: f64) -> ElementwiseForm {
    let (eager_s, fused_s) = ffn_forms_s(2048.0, 5632.0, tokens, device, dtype);
    // Ties (every kernel compute-bound) go to fusion: fewer kernels and fewer bytes.
    if fused_s.is_some_and(|f| f <= eager_s) {
        ElementwiseForm::Fused
    } else {
        ElementwiseForm::Separate
    }
}

/// Time of an FFN block as eager code runs it, and fully fused (`None` if the rules could not
/// reach that form), both priced in the saturated e-graph.
pub fn ffn_forms_s(
    hidden: f64,
    intermediate: f64,
    tokens: f64,
    device: &DeviceProfile,
    dtype: DType,
) -> (f64, Option<f64>) {
    let (expr, shapes) = ffn_block(hidden, intermediate, tokens);
    let runner = saturate_ffn(&expr, shapes, device, dtype);
    let g = &runner.egraph;
    let mut cost = RooflineTime::new(g, device, dtype);
    let fused: RecExpr<PlanLang> = "(mm (mm_norm_glu x w_gate w_up) w_down)".parse().expect("well-formed");
    let (eager_s, _) = price(g, &mut cost, &expr).expect("the input is in its e-graph");
    (eager_s, price(g, &mut cost, &fused).map(|(t, _)| t))
}

/// `analyze --explain-plan`: per phase, the chosen plan of each kind of attention layer
/// (global, and each window over the keys it sees), the alternatives and why; the FFN block;
/// and, from `mixers(phase)`, what each convolution or recurrent mixer runs instead of an
/// attention core (priced by a later stage).
pub fn explain_text(
    arch: &Architecture,
    device: &DeviceProfile,
    settings: &RunSettings,
    prompt: f64,
    context: f64,
    mixers: &dyn Fn(&str) -> String,
) -> String {
    let dtype = settings.precisions.compute();
    let batch = settings.batch as f64;
    let mut s = String::new();
    for (phase, tokens, ctx) in [("prefill", prompt * batch, prompt), ("decode", batch, context)] {
        let mut windows: Vec<(Option<u32>, u32)> = Vec::new();
        for &(layer, count) in arch.layer_groups().as_slice().iter().filter(|(l, _)| l.mixer.is_attention()) {
            match windows.iter_mut().find(|(w, _)| *w == layer.mixer.window()) {
                Some((_, n)) => *n += count,
                None => windows.push((layer.mixer.window(), count)),
            }
        }
        for &(window, layers) in &windows {
            let keys = window.map_or(ctx, |w| ctx.min(w as f64));
            let which = match window {
                None if windows.len() == 1 && layers == arch.num_layers => String::new(),
                None => format!(", {layers} global layers"),
                Some(w) => format!(", {layers} layers of a {w}-token window"),
            };
            explain_core(&mut s, arch, device, dtype, phase, tokens, keys, &which);
        }
        s.push_str(&mixers(phase));
        // The FFN block: norm and activation fused into the products, or not.
        if arch.ffn_layers() > 0 {
            let (expr, shapes) = ffn_block_of(arch, tokens);
            let (t, best, unfused) = extract_ffn(&expr, shapes, device, dtype);
            let _ = writeln!(s, "  ffn block: {best} in {t:.3e} s (as eager code runs it, {expr}: {unfused:.3e} s)");
        }
    }
    s
}

/// One attention core's extraction: the chosen form and every alternative with its cost.
#[allow(clippy::too_many_arguments)]
fn explain_core(
    s: &mut String,
    arch: &Architecture,
    device: &DeviceProfile,
    dtype: DType,
    phase: &str,
    tokens: f64,
    keys: f64,
    which: &str,
) {
    let e = explain(arch, device, dtype, tokens, keys);
    let _ = writeln!(
        s,
        "{phase} ({tokens} new tokens, {keys} keys{which}): {} in {:.3e} s per layer's attention core ({} e-classes, {} e-nodes)",
        e.plan.label(arch),
        e.best_time_s,
        e.eclasses,
        e.enodes
    );
    let _ = writeln!(s, "  chosen: {}", e.best);
    let chosen = e.best.to_string();
    for (label, expr, t, bound) in &e.alternatives {
        let why = if *expr == chosen {
            "chosen".to_string()
        } else if expr.contains("k_expanded_t") {
            // Extraction never picks it (RooflineTime::allow_expanded_cache): the model's
            // cache holds the latent, and this form reads keys and values it does not keep.
            let Attention::Latent(m) = arch.attention else { unreachable!("MLA forms only") };
            format!(
                "not a plan: reads an expanded cache of {} elements per token and layer that the model does not \
                 keep (it caches the latent, {}); shown for comparison",
                m.num_heads as u64 * (m.qk_nope_head_dim + m.v_head_dim) as u64,
                m.kv_lora_rank + m.qk_rope_head_dim
            )
        } else if *t > e.best_time_s {
            format!("not chosen: {:.1}% slower", 100.0 * (t / e.best_time_s - 1.0))
        } else {
            "not chosen: as fast as the chosen plan (a tie; the extractor keeps one)".to_string()
        };
        let _ = writeln!(s, "  {label:<26} {t:.3e} s, slowest kernel {bound}-bound; {why}: {expr}");
    }
}

#[cfg(test)]
mod tests;
