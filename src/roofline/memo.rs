//! The layers' figures shared between neighbouring candidates. A pass's layer operators depend
//! on neither the vocabulary nor the tied embedding, and on the depth only through their launch
//! counts (unless Q4_K_M stores some layers' tensors wider, or a layer pattern is given): the
//! search enumerates the depth fastest, so each layer shape is priced once per launch and every
//! depth of it reuses that. Figures are rebuilt from the per-launch numbers with the same
//! arithmetic, in the same order, as pricing each operator afresh: bit for bit the same.

use super::{launch_totals, Ceilings, Launch, Point};
use crate::arch::{Architecture, Attention, Family, Ffn, Layer};
use crate::dtype::DType;
use crate::workload::{segment_into, Operator, Part, Phase, Plan, RunSettings, Segment};

/// What a pass's layer operators depend on, besides the launch counts (and the evaluator's
/// device and settings, fixed for its memo).
#[derive(Debug, Clone, PartialEq)]
struct Shape {
    family: Family,
    /// 0 when the figures hold at any depth.
    num_layers: u32,
    hidden_size: u32,
    attention: Attention,
    ffn: Ffn,
    qkv_bias: bool,
    o_bias: bool,
    qk_norm: bool,
    attn_output_gate: bool,
    attention_sinks: bool,
    norms_per_layer: u32,
    layers: Vec<Layer>,
}

impl Shape {
    fn of(arch: &Architecture, depth_free: bool) -> Shape {
        Shape {
            family: arch.family,
            num_layers: if depth_free { 0 } else { arch.num_layers },
            hidden_size: arch.hidden_size,
            attention: arch.attention,
            ffn: arch.ffn,
            qkv_bias: arch.qkv_bias,
            o_bias: arch.o_bias,
            qk_norm: arch.qk_norm,
            attn_output_gate: arch.attn_output_gate,
            attention_sinks: arch.attention_sinks,
            norms_per_layer: arch.norms_per_layer,
            layers: arch.layers.clone(),
        }
    }

    /// `Shape::of(arch, depth_free) == self`, without building it.
    fn matches(&self, arch: &Architecture, depth_free: bool) -> bool {
        self.num_layers == if depth_free { 0 } else { arch.num_layers }
            && self.hidden_size == arch.hidden_size
            && self.attention == arch.attention
            && self.ffn == arch.ffn
            && self.family == arch.family
            && self.qkv_bias == arch.qkv_bias
            && self.o_bias == arch.o_bias
            && self.qk_norm == arch.qk_norm
            && self.attn_output_gate == arch.attn_output_gate
            && self.attention_sinks == arch.attention_sinks
            && self.norms_per_layer == arch.norms_per_layer
            && self.layers == arch.layers
    }
}

/// Whether every layer operator of `arch` launches once per layer and is priced the same at
/// any depth: a uniform stack whose storage types do not go by layer position, and whose FFNs
/// are all dense or all MoE. Checked again on the operators when they are priced.
fn depth_free(arch: &Architecture, settings: &RunSettings) -> bool {
    arch.layers.is_empty()
        && settings.precisions.weights != DType::Q4KM
        && match arch.ffn {
            Ffn::Dense { .. } => true,
            Ffn::Moe(m) => m.first_k_dense == 0,
        }
}

/// One layer operator's figures per launch: whole, or in a window's two pieces.
#[derive(Debug, Clone, Copy)]
struct OpLaunch {
    count: u32,
    windowed: bool,
    pieces: [Launch; 2],
    n: usize,
}

/// The layers of one pass of one shape.
#[derive(Debug)]
struct Entry {
    phase: Phase,
    first: u64,
    last: u64,
    plan: Plan,
    part: Part,
    ops: Vec<OpLaunch>,
    live: f64,
}

/// The layers' figures of the current shape, per phase, context range, plan and part.
#[derive(Debug, Default)]
pub(super) struct LayerMemo {
    shape: Option<Shape>,
    entries: Vec<Entry>,
    /// Shapes whose figures turned out to depend on the depth after all: priced afresh.
    refused: bool,
    ops: Vec<Operator>,
}

impl LayerMemo {
    /// Adds the layer operators' figures of one pass to `total` (in the order a fresh pricing
    /// adds them) and returns their largest live activation set.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_layers(
        &mut self,
        arch: &Architecture,
        settings: &RunSettings,
        ceilings: &Ceilings,
        (phase, plan, part): (Phase, Plan, Part),
        (first, last): (f64, f64),
        total: &mut Point,
    ) -> f64 {
        let free = depth_free(arch, settings);
        if !self.shape.as_ref().is_some_and(|s| s.matches(arch, free)) {
            self.shape = Some(Shape::of(arch, free));
            self.entries.clear();
            self.refused = false;
        }
        let (f, l) = (first.to_bits(), last.to_bits());
        let found = self
            .entries
            .iter()
            .position(|e| e.first == f && e.last == l && e.phase == phase && e.plan == plan && e.part == part);
        let at = match found {
            Some(i) => i,
            None => {
                let entry = self.price(arch, settings, ceilings, (phase, plan, part), (first, last));
                // Counts other than the depth: these figures hold at this depth only.
                if free && entry.ops.iter().any(|o| o.count != arch.num_layers) {
                    self.refused = true;
                }
                self.entries.push(entry);
                self.entries.len() - 1
            }
        };
        let entry = &self.entries[at];
        let depth = if free && !self.refused { Some(arch.num_layers) } else { None };
        for op in &entry.ops {
            let count = depth.unwrap_or(op.count) as f64;
            let scaled =
                |p: &Launch| Point { flops: count * p.flops, bytes: count * p.bytes, time_s: count * p.time_s };
            if op.windowed {
                let mut sum = Point::default();
                for piece in &op.pieces[..op.n] {
                    sum.add(scaled(piece));
                }
                total.add(sum);
            } else {
                total.add(scaled(&op.pieces[0]));
            }
        }
        let live = entry.live;
        if self.refused {
            // Keep nothing for the next candidate: another depth needs other figures.
            self.shape = None;
        }
        live
    }

    /// Prices the layer operators of one pass per launch.
    fn price(
        &mut self,
        arch: &Architecture,
        settings: &RunSettings,
        ceilings: &Ceilings,
        (phase, plan, part): (Phase, Plan, Part),
        (first, last): (f64, f64),
    ) -> Entry {
        self.ops.clear();
        segment_into(arch, phase, settings, plan, part, Segment::Layers, &mut self.ops);
        let mut live = 0.0f64;
        let ops = self
            .ops
            .iter()
            .map(|op| {
                live = live.max((op.act_read_bytes + op.act_write_bytes).at(op.context(last)));
                let mut pieces = [Launch::default(); 2];
                let n = if op.window == 0 {
                    pieces[0] = launch_totals(op, ceilings, first, last);
                    1
                } else {
                    let (parts, n) = op.pieces(first, last);
                    for (k, (piece, lo, hi)) in parts[..n].iter().enumerate() {
                        pieces[k] = launch_totals(piece, ceilings, *lo, *hi);
                    }
                    n
                };
                OpLaunch { count: op.count, windowed: op.window != 0, pieces, n }
            })
            .collect();
        Entry { phase, first: first.to_bits(), last: last.to_bits(), plan, part, ops, live }
    }
}
