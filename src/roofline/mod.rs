//! Operators evaluated on a device: each operator's time, phase and scenario points, the
//! closed-form decode sum, the fastest plan per phase, and the memory footprint.

mod memo;
mod metrics;
mod scenario;

pub use metrics::{potential, Bound, Point, Potential, Roof};
pub use scenario::{BenchTest, Scenario, MAX_BATCH, MAX_TOKENS, NAMED as NAMED_SCENARIOS};

use crate::arch::{Architecture, Layer, LayerGroups};
use crate::device::DeviceProfile;
use crate::workload::{
    operators_into, AttentionForm, ElementwiseForm, Linear, OpClass, Operator, Part, Phase, Plan, RunSettings, Segment,
};
use serde::Serialize;

/// What a device offers an operator: ceilings, efficiency tables and the fixed launch cost.
/// Built once per evaluator so the hot loop does no map look-ups on table-free profiles.
#[derive(Clone, Copy)]
struct Ceilings<'a> {
    peak_flop_per_s: f64,
    bandwidth_bytes_per_s: f64,
    overhead_s: f64,
    /// Fixed cost per routed expert's product.
    expert_s: f64,
    /// The format `peak_flop_per_s` is for (every operator of a run computes in it).
    compute: crate::dtype::DType,
    device: &'a DeviceProfile,
    has_tables: bool,
    /// Each operator class's table for `compute`, looked up once (an evaluator prices millions
    /// of operators against the same profile).
    class_tables: [Option<&'a crate::device::EfficiencyTable>; OpClass::ALL.len()],
    /// Cells an engine's decode attention visits beyond the context, per score per context.
    kv_padding: f64,
    /// The engine's padded view, counted exactly where the profile says how it is walked.
    kv_view: Option<crate::device::KvView>,
    /// The share of the model's weight bytes each pass reads past the weight cache (see
    /// `DeviceProfile::weight_miss`): 0 but for the model being priced on a profile with one.
    weight_miss: f64,
    /// The profile has a weight cache: launches carry their stall per unit of that share.
    weight_cache: bool,
}

impl<'a> Ceilings<'a> {
    fn new(device: &'a DeviceProfile, compute: crate::dtype::DType) -> Self {
        Ceilings {
            peak_flop_per_s: device.peak_flops(compute),
            bandwidth_bytes_per_s: device.bandwidth_bytes_per_s,
            overhead_s: device.kernel_overhead_s,
            expert_s: device.expert_overhead_s,
            compute,
            device,
            has_tables: device.has_efficiency_tables(),
            // Indexed by `class as usize`: ALL lists the classes in declaration order.
            class_tables: OpClass::ALL.map(|class| device.efficiency_table(compute, class)),
            kv_padding: device.engine.as_ref().map_or(0.0, |e| e.padding_scores_factor()),
            kv_view: device.engine.as_ref().and_then(|e| e.kv_view()),
            weight_miss: 0.0,
            weight_cache: device.weight_cache_bytes.is_some(),
        }
    }

    /// Seconds one launch of `op` would stall if all its weight bytes were past the weight
    /// cache (the model's share past it scales this; see [`Launch::stall_s`]).
    fn stall_s(&self, op: &Operator) -> f64 {
        if op.weight_type.is_none() {
            return 0.0;
        }
        op.weight_bytes.base * self.table(op).map_or(0.0, |t| t.past_cache_byte_s)
    }

    /// `device.operator_table(op)`, from the cache for operators without weights.
    fn table(&self, op: &Operator) -> Option<&'a crate::device::EfficiencyTable> {
        match op.weight_type {
            None if op.compute == self.compute => self.class_tables[op.class as usize],
            _ => self.device.operator_table(op),
        }
    }

    /// Compute rate and bandwidth `op` attains at a given size, and what each attention score
    /// costs beyond its FLOPs.
    fn attained(&self, op: &Operator, flops: f64, bytes: f64, rows: f64) -> (f64, f64, f64) {
        let peak = if op.compute == self.compute { self.peak_flop_per_s } else { self.device.peak_flops(op.compute) };
        match self.has_tables.then(|| self.table(op)).flatten() {
            Some(table) => {
                let (mut c, m) = table.lookup_rows(flops, bytes, rows);
                // A routed expert's products over a prompt run their own kernel where the profile
                // measured it (llama.cpp's `mul_mat_id`).
                if op.experts > 0.0 && rows > 1.0 && !table.routed.is_empty() {
                    c = table.routed.at(rows);
                }
                // Per-head products over a prompt run at their class's own compute rate where
                // the profile measured one (llama.cpp's MLA prefill); their bytes are their
                // storage type's.
                if op.class == OpClass::BatchedMatmul && op.weight_type.is_some() && rows > 1.0 {
                    if let Some(own) = self.class_tables[op.class as usize].filter(|t| !t.compute.points.is_empty()) {
                        c = own.lookup_rows(flops, bytes, rows).0;
                    }
                }
                (
                    peak * c,
                    self.bandwidth_bytes_per_s * m,
                    table.score_cost_s(op.key_head, op.value_head, kv_bytes_per_score(op)),
                )
            }
            None => (peak, self.bandwidth_bytes_per_s, 0.0),
        }
    }

    /// Compute time (FLOPs at the attained rate plus the per-score cost of the `visited`
    /// scores) and memory time of `op`, as linear functions of the context.
    fn times(&self, op: &Operator, bytes: Linear, n: f64, visited: Linear) -> (Linear, Linear) {
        let (pc, pm, score_s) = self.attained(op, op.flops.at(n), bytes.at(n), op.rows.at(n));
        let mut compute = op.flops * (1.0 / pc) + visited * score_s;
        // Past the cache step, each score beyond the knee costs `score_spill_s` more: linear in
        // the context on that side (callers split a range at the knee).
        if let Some((knee, spill_s)) = self.spill(op).filter(|(knee, _)| n > *knee) {
            compute = compute + Linear { base: -knee * op.scores.per_ctx, per_ctx: op.scores.per_ctx } * spill_s;
        }
        (compute, bytes * (1.0 / pm))
    }

    /// Where `op`'s scores start paying the cache step, and what each then pays.
    fn spill(&self, op: &Operator) -> Option<(f64, f64)> {
        if op.class != OpClass::DecodeAttention || !self.has_tables {
            return None;
        }
        let table = self.table(op)?;
        table.spill_knee(op.kv_read_bytes.per_ctx).map(|knee| (knee, table.score_spill_s))
    }
}

/// Scores of one launch of `op` at contexts `first..=last` that lie past the context `knee`:
/// `sum over n of scores per position * max(0, n - knee)`.
pub fn spilled_scores(op: &Operator, knee: f64, first: f64, last: f64) -> f64 {
    let k0 = first.max(knee.floor() + 1.0);
    if k0 > last {
        return 0.0;
    }
    op.scores.per_ctx * (last - k0 + 1.0) * ((k0 + last) / 2.0 - knee)
}

/// KV-cache bytes a decode attention score reads: the bytes each context position adds over
/// the scores it adds (a KV row per query head under MHA, a group's share under GQA).
pub fn kv_bytes_per_score(op: &Operator) -> f64 {
    if op.scores.per_ctx > 0.0 {
        op.bytes().per_ctx / op.scores.per_ctx
    } else {
        0.0
    }
}

/// Scores an engine's kernel visits: a decode step's context rounded up to the engine's KV
/// padding (on average half a pad more).
pub fn padded_scores(op: &Operator, kv_padding: f64) -> Linear {
    if op.class == OpClass::DecodeAttention {
        Linear { base: op.scores.base + op.scores.per_ctx * kv_padding, per_ctx: op.scores.per_ctx }
    } else {
        op.scores
    }
}

/// Calls `f(lo, hi, visited)` over contexts `first..=last` in ranges where the scores `op`'s
/// kernel visits per step are linear in the context: with the engine's view counted exactly
/// (`view`), one range per pad block, each visiting its whole view once the view reaches the
/// kernel's split (a constant), or only its real scores below it; otherwise one range at half
/// a pad more than the context (`kv_padding`).
#[inline(always)]
pub fn for_visited(
    op: &Operator,
    first: f64,
    last: f64,
    kv_padding: f64,
    view: Option<crate::device::KvView>,
    mut f: impl FnMut(f64, f64, Linear),
) {
    match view {
        Some(v) if op.class == OpClass::DecodeAttention && op.scores.per_ctx > 0.0 => {
            let mut lo = first;
            while lo <= last {
                // The view at context `lo`: its keys rounded up to whole pads.
                let cells = (lo / v.pad).ceil().max(1.0) * v.pad;
                let hi = cells.min(last);
                let visited = if cells >= v.split_min_cells {
                    Linear { base: op.scores.base + op.scores.per_ctx * cells, per_ctx: 0.0 }
                } else {
                    op.scores
                };
                f(lo, hi, visited);
                lo = hi + 1.0;
            }
        }
        _ => f(first, last, padded_scores(op, kv_padding)),
    }
}

/// Time of one launch of `op` at context `n`: `max(W / P, Q / B) + t_fixed`.
pub fn launch_time_s(op: &Operator, device: &DeviceProfile, n: f64) -> f64 {
    let n = op.context(n);
    let c = Ceilings::new(device, op.compute);
    let mut visited = padded_scores(op, c.kv_padding);
    for_visited(op, n, n, c.kv_padding, c.kv_view, |_, _, v| visited = v);
    let (tc, tm) = c.times(op, op.bytes(), n, visited);
    tc.at(n).max(tm.at(n)) + device.kernel_overhead_s + op.experts * device.expert_overhead_s
}

/// An operator's totals over a range of contexts, with the time spent compute-bound.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OpTotals {
    pub point: Point,
    pub compute_bound_s: f64,
}

/// `sum over n in first..=last of max(tc(n), tm(n))` (compute and memory time), in closed form:
/// the difference of the two terms is linear in `n`, so it changes sign at most once; sum each
/// side as a series.
fn sum_of_max(tc: Linear, tm: Linear, first: f64, last: f64) -> (f64, f64) {
    // Most operators do not depend on the context: the same max every step.
    if tc.per_ctx == 0.0 && tm.per_ctx == 0.0 {
        let (c, m) = (tc.base, tm.base);
        let steps = last - first + 1.0;
        return if c >= m { (steps * c, steps * c) } else { (steps * m, 0.0) };
    }
    let (d0, d1) = (tc.base - tm.base, tc.per_ctx - tm.per_ctx);
    // Split point: contexts in [first, split) take one side, [split, last] the other.
    let (low_is_compute, split) = if d1 == 0.0 {
        (d0 >= 0.0, last + 1.0)
    } else if d1 > 0.0 {
        (false, (-d0 / d1).ceil().clamp(first, last + 1.0))
    } else {
        (true, ((-d0 / d1).floor() + 1.0).clamp(first, last + 1.0))
    };
    let (lo, hi) = if low_is_compute { (tc, tm) } else { (tm, tc) };
    let t_lo = lo.sum(first, split - 1.0);
    let t_hi = hi.sum(split, last);
    let compute = if low_is_compute { t_lo } else { t_hi };
    (t_lo + t_hi, compute)
}

/// Segments an efficiency-table sum is split into; within each, efficiency is held at its
/// midpoint value and the sum is closed-form.
const TABLE_SEGMENTS: usize = 16;

/// Totals of `op` (all its launches) over contexts `first..=last` (one context for prefill).
pub fn op_totals(op: &Operator, device: &DeviceProfile, first: f64, last: f64) -> OpTotals {
    op_totals_missing(op, device, 0.0, first, last)
}

/// [`op_totals`] for an operator of a model whose passes read `weight_miss` of its weight bytes
/// past the device's weight cache (see [`weight_miss_of`]).
pub fn op_totals_missing(op: &Operator, device: &DeviceProfile, weight_miss: f64, first: f64, last: f64) -> OpTotals {
    totals(op, &Ceilings { weight_miss, ..Ceilings::new(device, op.compute) }, first, last)
}

/// The share of `arch`'s weight bytes (stored as `weights`) a pass reads past `device`'s
/// weight cache; 0 on a profile without one.
pub fn weight_miss_of(
    arch: &Architecture,
    groups: &LayerGroups,
    weights: crate::dtype::DType,
    device: &DeviceProfile,
) -> f64 {
    match device.weight_cache_bytes {
        Some(_) => device.weight_miss(arch.streamed_weight_bytes_in(weights, groups)),
        None => 0.0,
    }
}

/// Whether a depth run's `models` are all uniform stacks, or all layered stacks with layer
/// groups of the same kinds in the same order (what [`Evaluator::scenario_run`] prices
/// together).
fn alike_stacks(models: &[(&Architecture, &LayerGroups)]) -> bool {
    let (first, first_groups) = models[0];
    fn kinds(g: &LayerGroups) -> impl Iterator<Item = Layer> + '_ {
        g.as_slice().iter().map(|&(layer, _)| layer)
    }
    models.iter().all(|(m, g)| {
        m.layers.is_empty() == first.layers.is_empty() && (m.layers.is_empty() || kinds(g).eq(kinds(first_groups)))
    })
}

fn totals(op: &Operator, c: &Ceilings, first: f64, last: f64) -> OpTotals {
    if op.window == 0 {
        return unwindowed_totals(op, c, first, last);
    }
    // A windowed operator: linear up to its window, constant past it.
    let (pieces, n) = op.pieces(first, last);
    let mut sum = OpTotals::default();
    for (piece, lo, hi) in &pieces[..n] {
        let t = unwindowed_totals(piece, c, *lo, *hi);
        sum.point.add(t.point);
        sum.compute_bound_s += t.compute_bound_s;
    }
    sum
}

fn unwindowed_totals(op: &Operator, c: &Ceilings, first: f64, last: f64) -> OpTotals {
    let count = op.count as f64;
    let one = launch_totals(op, c, first, last);
    OpTotals {
        point: Point { flops: count * one.flops, bytes: count * one.bytes, time_s: count * one.time(c.weight_miss) },
        compute_bound_s: count * one.compute_bound_s,
    }
}

/// One launch's figures over contexts `first..=last` (an unwindowed operator's totals before
/// its launch count): what candidates that repeat a layer share.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Launch {
    flops: f64,
    bytes: f64,
    time_s: f64,
    compute_bound_s: f64,
    /// Seconds the launch's weight bytes would stall if all were past the weight cache: the
    /// model's share past it scales this when the figures are added up, so figures shared
    /// between candidates hold for any model size (0 on a profile without a weight cache).
    stall_s: f64,
}

impl Launch {
    /// The launch's time for a model whose passes read `weight_miss` of its weight bytes past
    /// the weight cache: the stall adds to the roofline time (the kernel overlaps neither its
    /// dequantisation nor its arithmetic with those misses).
    #[inline(always)]
    fn time(&self, weight_miss: f64) -> f64 {
        self.time_s + weight_miss * self.stall_s
    }
}

// Inlined with `launch_range`: their four figures, returned through memory, cost a
// store-forwarding stall per operator (a third of the pricing time when they were calls).
#[inline(always)]
fn launch_totals(op: &Operator, c: &Ceilings, first: f64, last: f64) -> Launch {
    // A cache step inside the range: each side is linear in the context.
    if let Some((knee, _)) = c.spill(op) {
        let split = knee.floor() + 1.0;
        if first < split && split <= last {
            let (a, b) = (launch_range(op, c, first, split - 1.0), launch_range(op, c, split, last));
            return Launch {
                flops: a.flops + b.flops,
                bytes: a.bytes + b.bytes,
                time_s: a.time_s + b.time_s,
                compute_bound_s: a.compute_bound_s + b.compute_bound_s,
                stall_s: a.stall_s + b.stall_s,
            };
        }
    }
    launch_range(op, c, first, last)
}

#[inline(always)]
fn launch_range(op: &Operator, c: &Ceilings, first: f64, last: f64) -> Launch {
    if c.kv_view.is_none() {
        return launch_visiting(op, c, first, last, padded_scores(op, c.kv_padding));
    }
    let mut sum = Launch::default();
    for_visited(op, first, last, c.kv_padding, c.kv_view, |lo, hi, visited| {
        let l = launch_visiting(op, c, lo, hi, visited);
        sum.flops += l.flops;
        sum.bytes += l.bytes;
        sum.time_s += l.time_s;
        sum.compute_bound_s += l.compute_bound_s;
        sum.stall_s += l.stall_s;
    });
    sum
}

/// [`launch_range`] with the scores the kernel visits per step given.
#[inline(always)]
fn launch_visiting(op: &Operator, c: &Ceilings, first: f64, last: f64, visited: Linear) -> Launch {
    let steps = last - first + 1.0;
    let bytes = op.bytes();
    let fixed = steps * (c.overhead_s + op.experts * c.expert_s);
    let varies = op.flops.per_ctx != 0.0 || bytes.per_ctx != 0.0;
    // A piecewise sum only where the efficiency changes with the context's size.
    let table = if c.has_tables { c.table(op) } else { None };
    let (time, compute) = if !varies || table.is_none_or(|t| t.is_constant()) {
        let (tc, tm) = c.times(op, bytes, (first + last) / 2.0, visited);
        sum_of_max(tc, tm, first, last)
    } else {
        let segments = (steps as usize).clamp(1, TABLE_SEGMENTS);
        let (mut time, mut compute) = (0.0, 0.0);
        let mut lo = first;
        for s in 1..=segments {
            // Geometric segment ends: efficiency tables are interpolated in log size.
            let hi = if s == segments {
                last
            } else {
                (first * (last / first.max(1.0)).powf(s as f64 / segments as f64)).floor().max(lo)
            };
            let (tc, tm) = c.times(op, bytes, (lo + hi) / 2.0, visited);
            let (t, cb) = sum_of_max(tc, tm, lo, hi);
            time += t;
            compute += cb;
            lo = hi + 1.0;
            if lo > last {
                break;
            }
        }
        (time, compute)
    };
    Launch {
        flops: op.flops.sum(first, last),
        bytes: bytes.sum(first, last),
        time_s: time + fixed,
        compute_bound_s: compute,
        stall_s: if c.weight_cache { steps * c.stall_s(op) } else { 0.0 },
    }
}

/// The contexts a scenario's decode steps attend to: the step generating token `i` (1-based)
/// attends to `prompt + i` keys, itself included.
pub fn decode_contexts(s: &Scenario) -> (f64, f64) {
    (s.prompt as f64 + 1.0, s.prompt as f64 + s.generate as f64)
}

/// Which plan to evaluate a phase under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanChoice {
    /// The fastest candidate plan on this device, per phase.
    Fastest,
    Fixed(Plan),
}

/// One phase's point and the plan that produced it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhaseEval {
    pub point: Point,
    pub plan: Plan,
    /// Largest live activation set of one operator, bytes.
    pub live_bytes: f64,
}

/// Evaluates scenarios, reusing one operator buffer (the search calls this millions of times).
pub struct Evaluator<'a> {
    pub device: &'a DeviceProfile,
    pub settings: RunSettings,
    pub plans: PlanChoice,
    /// How norms and activations run in prefill and in decode, decided once per device by
    /// the e-graph (fusion removes kernels at every shape; see `plan::elementwise_form`).
    elementwise: (ElementwiseForm, ElementwiseForm),
    ceilings: Ceilings<'a>,
    ops: Vec<Operator>,
    /// Segment figures shared between the candidates evaluated one after another, where the
    /// caller asked for it ([`Evaluator::sharing`]).
    memo: Option<memo::LayerMemo>,
    /// A depth run's lanes (see [`Evaluator::scenario_run`]), kept between runs.
    run: RunLanes,
}

/// Per-lane buffers of a depth run: each model's share past the weight cache, one part's
/// figures and largest live set, a second part's (the shared part beside a plan's core), and
/// each lane's best plan so far.
#[derive(Debug, Default)]
struct RunLanes {
    misses: Vec<f64>,
    totals: Vec<Point>,
    lives: Vec<f64>,
    shared: Vec<Point>,
    shared_lives: Vec<f64>,
    best: Vec<Option<PhaseEval>>,
    /// Each lane's prefill, then each lane's decode.
    phases: Vec<PhaseEval>,
}

impl<'a> Evaluator<'a> {
    pub fn new(device: &'a DeviceProfile, settings: RunSettings, plans: PlanChoice) -> Self {
        // An engine runs its own plan with its own activation and KV formats.
        let settings = RunSettings { precisions: device.effective_precisions(settings.precisions), ..settings };
        let plans = match (&device.engine, plans) {
            (Some(e), PlanChoice::Fastest) => PlanChoice::Fixed(e.plan),
            (_, p) => p,
        };
        let compute = settings.precisions.compute();
        let ceilings = Ceilings::new(device, compute);
        let elementwise = match plans {
            PlanChoice::Fastest => {
                let batch = settings.batch as f64;
                (
                    crate::plan::elementwise_form(device, compute, 512.0 * batch),
                    crate::plan::elementwise_form(device, compute, batch),
                )
            }
            PlanChoice::Fixed(plan) => (plan.elementwise, plan.elementwise),
        };
        Evaluator {
            device,
            settings,
            plans,
            elementwise,
            ceilings,
            ops: Vec::with_capacity(48),
            memo: None,
            run: RunLanes::default(),
        }
    }

    /// The evaluator keeps the figures of each segment (the layers, the embedding, the head)
    /// for the next candidate that shares them: worth it where candidates come in an order that
    /// shares (a search scores the depths of each shape one after the other), and a cost of
    /// about half again per candidate where nothing is shared.
    pub fn sharing(mut self) -> Self {
        self.memo = Some(memo::LayerMemo::default());
        self
    }

    fn part_under(
        &mut self,
        arch: &Architecture,
        phase: Phase,
        plan: Plan,
        part: Part,
        first: f64,
        last: f64,
    ) -> (Point, f64) {
        let mut total = Point::default();
        // Largest live activation set: one operator's inputs plus output, at the last context.
        let mut live = 0.0f64;
        let (settings, ceilings, range) = (&self.settings, &self.ceilings, (first, last));
        let Some(memo) = &mut self.memo else {
            self.ops.clear();
            operators_into(arch, phase, settings, plan, part, &mut self.ops);
            for op in &self.ops {
                total.add(totals(op, ceilings, first, last).point);
                live = live.max((op.act_read_bytes + op.act_write_bytes).at(op.context(last)));
            }
            return (total, live);
        };
        let key = (phase, plan, part);
        for segment in Segment::ALL {
            let segment_live = match segment {
                Segment::Layers => memo.add_layers(arch, settings, ceilings, key, range, &mut total),
                // The embedding and the head have no attention core: nothing a plan changes
                // (`segments_into` builds nothing there), so nothing to look up.
                _ if part == Part::PlanDependent => 0.0,
                _ => memo.add_end(segment, arch, settings, ceilings, key, range, &mut total),
            };
            live = live.max(segment_live);
        }
        (total, live)
    }

    /// [`Evaluator::part_under`] for a depth run's `models` (see [`Evaluator::scenario_run`]):
    /// each lane's figures into `self.run.totals` and largest live set into `self.run.lives`.
    fn part_under_run(
        &mut self,
        models: &[(&Architecture, &LayerGroups)],
        (phase, plan, part): (Phase, Plan, Part),
        range: (f64, f64),
    ) {
        let lanes = &mut self.run;
        lanes.totals.clear();
        lanes.totals.resize(models.len(), Point::default());
        lanes.lives.clear();
        lanes.lives.resize(models.len(), 0.0);
        let memo = self.memo.as_mut().expect("a depth run is priced from the memo");
        let (settings, ceilings, key) = (&self.settings, &self.ceilings, (phase, plan, part));
        let mut lanes =
            memo::Lanes { models, misses: &lanes.misses, totals: &mut lanes.totals, lives: &mut lanes.lives };
        for segment in Segment::ALL {
            match segment {
                Segment::Layers => memo.add_layers_run(&mut lanes, settings, ceilings, key, range),
                // As in `part_under`: nothing of the ends under a plan's attention core.
                _ if part == Part::PlanDependent => {}
                _ => memo.add_end_run(segment, &mut lanes, settings, ceilings, key, range),
            }
        }
    }

    /// Prices the next passes for `arch` (its layer groups, where found already): on a profile
    /// with a weight cache, the share of its weights past the cache (the memo's figures hold
    /// for every share: it scales their stalls as they are added up).
    fn start_model(&mut self, arch: &Architecture, groups: Option<&LayerGroups>) {
        if !self.ceilings.weight_cache {
            return;
        }
        let weights = self.settings.precisions.weights;
        self.ceilings.weight_miss = match groups {
            Some(g) => weight_miss_of(arch, g, weights, self.device),
            None => weight_miss_of(arch, &arch.layer_groups(), weights, self.device),
        };
    }

    fn phase(&mut self, arch: &Architecture, phase: Phase, first: f64, last: f64) -> PhaseEval {
        self.start_model(arch, None);
        if let Some(memo) = &mut self.memo {
            memo.start_pass(arch);
        }
        self.started_phase(arch, phase, first, last)
    }

    /// [`Evaluator::phase`] once the memo (where there is one) has started on `arch`.
    fn started_phase(&mut self, arch: &Architecture, phase: Phase, first: f64, last: f64) -> PhaseEval {
        let mut eval = self.phase_kernels(arch, phase, first, last);
        // An engine's fixed cost per forward pass: one pass in prefill, one per decode step.
        let passes = if matches!(phase, Phase::Decode) { last - first + 1.0 } else { 1.0 };
        eval.point.time_s += passes * self.device.pass_overhead_s;
        eval
    }

    /// The candidate plans of `arch` that can be fastest on this device. Without efficiency
    /// tables an unfused attention core cannot win: it does no fewer FLOPs (dense N^2 scores
    /// against N(N+1)/2 causal pairs), moves no fewer bytes (the score matrix goes to memory)
    /// and launches more kernels, and a sum of per-kernel maxima is at least the maximum of the
    /// sums. Those are skipped (exactly).
    fn plans_worth_pricing(&self, arch: &Architecture) -> &'static [Plan] {
        let all = Plan::candidates(arch);
        if self.ceilings.has_tables {
            all
        } else {
            &all[..all.iter().take_while(|p| p.attention == AttentionForm::Fused).count()]
        }
    }

    fn phase_kernels(&mut self, arch: &Architecture, phase: Phase, first: f64, last: f64) -> PhaseEval {
        let candidates: &[Plan] = match self.plans {
            PlanChoice::Fixed(plan) => {
                let (point, live_bytes) = self.part_under(arch, phase, plan, Part::All, first, last);
                return PhaseEval { point, plan, live_bytes };
            }
            PlanChoice::Fastest => self.plans_worth_pricing(arch),
        };
        let form = if matches!(phase, Phase::Decode) { self.elementwise.1 } else { self.elementwise.0 };
        if let [only] = candidates {
            let plan = only.with_elementwise(form);
            let (point, live_bytes) = self.part_under(arch, phase, plan, Part::All, first, last);
            return PhaseEval { point, plan, live_bytes };
        }
        // Plans differ only in the attention core: price the rest once.
        let (shared, shared_live) =
            self.part_under(arch, phase, candidates[0].with_elementwise(form), Part::Shared, first, last);
        let mut best: Option<PhaseEval> = None;
        for plan in candidates.iter().map(|p| p.with_elementwise(form)) {
            let mut point = shared;
            let (core, core_live) = self.part_under(arch, phase, plan, Part::PlanDependent, first, last);
            point.add(core);
            let live_bytes = shared_live.max(core_live);
            // Strictly faster only: ties keep the earlier (simpler) plan, deterministically.
            if best.is_none_or(|b| point.time_s < b.point.time_s) {
                best = Some(PhaseEval { point, plan, live_bytes });
            }
        }
        best.expect("every architecture has at least one plan")
    }

    /// [`Evaluator::started_phase`] for a depth run: each lane's phase into `out`, in the
    /// order of `models`.
    fn phase_run(
        &mut self,
        models: &[(&Architecture, &LayerGroups)],
        phase: Phase,
        range: (f64, f64),
        out: &mut Vec<PhaseEval>,
    ) {
        let n = models.len();
        let form = if matches!(phase, Phase::Decode) { self.elementwise.1 } else { self.elementwise.0 };
        // As `phase_kernels`: a fixed plan as it is, one candidate with the phase's elementwise
        // form, several as a shared part and each plan's core, the strictly fastest kept.
        let fixed: [Plan; 1];
        let candidates: &[Plan] = match self.plans {
            PlanChoice::Fixed(plan) => {
                fixed = [plan];
                &fixed
            }
            PlanChoice::Fastest => self.plans_worth_pricing(models[0].0),
        };
        let start = out.len();
        if let [only] = candidates {
            let plan = if matches!(self.plans, PlanChoice::Fixed(_)) { *only } else { only.with_elementwise(form) };
            self.part_under_run(models, (phase, plan, Part::All), range);
            let run = &self.run;
            out.extend(run.totals.iter().zip(&run.lives).map(|(&point, &live_bytes)| PhaseEval {
                point,
                plan,
                live_bytes,
            }));
        } else {
            self.part_under_run(models, (phase, candidates[0].with_elementwise(form), Part::Shared), range);
            std::mem::swap(&mut self.run.shared, &mut self.run.totals);
            std::mem::swap(&mut self.run.shared_lives, &mut self.run.lives);
            self.run.best.clear();
            self.run.best.resize(n, None);
            for plan in candidates.iter().map(|p| p.with_elementwise(form)) {
                self.part_under_run(models, (phase, plan, Part::PlanDependent), range);
                let run = &mut self.run;
                for k in 0..n {
                    let mut point = run.shared[k];
                    point.add(run.totals[k]);
                    let live_bytes = run.shared_lives[k].max(run.lives[k]);
                    if run.best[k].is_none_or(|b| point.time_s < b.point.time_s) {
                        run.best[k] = Some(PhaseEval { point, plan, live_bytes });
                    }
                }
            }
            out.extend(self.run.best.iter().map(|b| b.expect("every architecture has at least one plan")));
        }
        // As `started_phase`: the engine's fixed cost per forward pass.
        let passes = if matches!(phase, Phase::Decode) { range.1 - range.0 + 1.0 } else { 1.0 };
        for eval in &mut out[start..] {
            eval.point.time_s += passes * self.device.pass_overhead_s;
        }
    }

    pub fn prefill(&mut self, arch: &Architecture, s: &Scenario) -> PhaseEval {
        self.phase(arch, Phase::Prefill { prompt: s.prompt }, 0.0, 0.0)
    }

    pub fn decode(&mut self, arch: &Architecture, s: &Scenario) -> PhaseEval {
        let (first, last) = decode_contexts(s);
        self.phase(arch, Phase::Decode, first, last)
    }

    /// The predicted time of a llama-bench test (see `BenchTest`): the prompt's prefill, or the
    /// timed decode steps.
    pub fn bench_test(&mut self, arch: &Architecture, t: BenchTest) -> PhaseEval {
        if t.is_prefill() {
            self.phase(arch, Phase::Prefill { prompt: t.prompt }, 0.0, 0.0)
        } else {
            let first = t.depth as f64 + 2.0;
            self.phase(arch, Phase::Decode, first, first + t.generate as f64 - 1.0)
        }
    }

    pub fn scenario(&mut self, arch: &Architecture, s: &Scenario) -> ScenarioEval {
        self.start_model(arch, None);
        if let Some(memo) = &mut self.memo {
            memo.start_pass(arch);
        }
        self.started_scenario(arch, s)
    }

    /// [`Evaluator::scenario`] with `arch`'s layer groups found already (a search's scorer
    /// finds them once per candidate).
    pub fn scenario_in(&mut self, arch: &Architecture, groups: &LayerGroups, s: &Scenario) -> ScenarioEval {
        self.start_model(arch, Some(groups));
        if let Some(memo) = &mut self.memo {
            memo.start_pass_with(arch, groups);
        }
        self.started_scenario(arch, s)
    }

    /// [`Evaluator::scenario_in`] for a depth run: `models` (with their layer groups) are
    /// stacks of one shape, width, vocabulary and tied embedding at ascending depths, as a
    /// search's order holds them: all uniform, or all layered with groups of the same kinds in
    /// the same order (one layer pattern). Each lane's figures are those `scenario_in` gives
    /// it, bit for bit: it adds the same figures in the same order. The memo's entries are
    /// looked up once for the run instead of once per candidate. Anything else (no memo, mixed
    /// stacks) is scored one candidate at a time.
    pub fn scenario_run(
        &mut self,
        models: &[(&Architecture, &LayerGroups)],
        s: &Scenario,
        out: &mut Vec<ScenarioEval>,
    ) {
        out.clear();
        if self.memo.is_none() || models.len() < 2 || !alike_stacks(models) {
            out.extend(models.iter().map(|(m, g)| self.scenario_in(m, g, s)));
            return;
        }
        self.run.misses.clear();
        for (m, g) in models {
            self.start_model(m, Some(g));
            self.run.misses.push(self.ceilings.weight_miss);
        }
        if let Some(memo) = &mut self.memo {
            memo.start_run(models.len());
        }
        let mut phases = std::mem::take(&mut self.run.phases);
        phases.clear();
        self.phase_run(models, Phase::Prefill { prompt: s.prompt }, (0.0, 0.0), &mut phases);
        self.phase_run(models, Phase::Decode, decode_contexts(s), &mut phases);
        let (prefill, decode) = phases.split_at(models.len());
        out.extend(prefill.iter().zip(decode).map(|(&prefill, &decode)| ScenarioEval { prefill, decode }));
        self.run.phases = phases;
    }

    fn started_scenario(&mut self, arch: &Architecture, s: &Scenario) -> ScenarioEval {
        let prefill = self.started_phase(arch, Phase::Prefill { prompt: s.prompt }, 0.0, 0.0);
        // The same architecture: the memo's start on it holds.
        let (first, last) = decode_contexts(s);
        ScenarioEval { prefill, decode: self.started_phase(arch, Phase::Decode, first, last) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScenarioEval {
    pub prefill: PhaseEval,
    pub decode: PhaseEval,
}

impl ScenarioEval {
    pub fn total(&self) -> Point {
        let mut p = self.prefill.point;
        p.add(self.decode.point);
        p
    }
}

/// Memory a run needs, against what the device can give.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Footprint {
    pub weights_bytes: f64,
    /// KV cache at the longest context, for the whole batch.
    pub kv_cache_bytes: f64,
    /// Largest live activation set of a prefill operator plus the logits.
    pub workspace_bytes: f64,
    pub total_bytes: f64,
    pub usable_bytes: f64,
    pub fits: bool,
}

/// Memory for `arch` running `s`, given the prefill's largest live activation set.
pub fn footprint(
    arch: &Architecture,
    s: &Scenario,
    settings: &RunSettings,
    prefill_live_bytes: f64,
    device: &DeviceProfile,
) -> Footprint {
    let settings = RunSettings { precisions: device.effective_precisions(settings.precisions), ..*settings };
    footprint_at(arch, s.max_context(), &settings, prefill_live_bytes, device)
}

/// Weights + KV cache at `max_context` for the batch + workspace (live activations and logits),
/// against the device's usable memory; windowed layers hold what the device's engine allocates.
pub fn footprint_at(
    arch: &Architecture,
    max_context: u64,
    settings: &RunSettings,
    live_bytes: f64,
    device: &DeviceProfile,
) -> Footprint {
    let groups = arch.layer_groups();
    let weights_bytes = arch.stored_weight_bytes_in(settings.precisions.weights, &groups);
    footprint_with_weights(
        weights_bytes,
        arch,
        &groups,
        max_context,
        settings,
        live_bytes,
        device,
        device.usable_memory_bytes,
    )
}

/// [`footprint`] with the stored weight bytes (`weights_bytes`) and layer groups worked out
/// already, against a memory budget of `usable_bytes`.
#[allow(clippy::too_many_arguments)]
pub fn footprint_with_weights(
    weights_bytes: f64,
    arch: &Architecture,
    groups: &LayerGroups,
    max_context: u64,
    settings: &RunSettings,
    live_bytes: f64,
    device: &DeviceProfile,
    usable_bytes: f64,
) -> Footprint {
    let p = &settings.precisions;
    let (batch, kv) = (settings.batch, p.kv_cache.bytes());
    let kv_cache_bytes = match &device.engine {
        Some(e) => arch.cache_bytes_in(groups, batch, max_context, kv, &|w, c| e.window_cells(w, c)),
        None => arch.cache_bytes_in(groups, batch, max_context, kv, &crate::arch::window_cells),
    };
    let logits = settings.batch as f64 * arch.vocab_size as f64 * p.activations.bytes();
    let workspace_bytes = live_bytes + logits;
    let total_bytes = weights_bytes + kv_cache_bytes + workspace_bytes;
    Footprint {
        weights_bytes,
        kv_cache_bytes,
        workspace_bytes,
        total_bytes,
        usable_bytes,
        fits: total_bytes <= usable_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_form_sum_of_max_matches_a_loop() {
        let f = Linear { base: 50.0, per_ctx: 3.0 };
        let q = Linear { base: 400.0, per_ctx: 1.0 };
        for (pc, pm) in [(1.0, 1.0), (2.0, 0.5), (10.0, 1.0), (0.1, 3.0)] {
            for (a, b) in [(1.0, 1.0), (1.0, 500.0), (137.0, 4233.0)] {
                let want: f64 = (a as i64..=b as i64).map(|n| (f.at(n as f64) / pc).max(q.at(n as f64) / pm)).sum();
                let (got, _) = sum_of_max(f * (1.0 / pc), q * (1.0 / pm), a, b);
                assert!((got - want).abs() <= 1e-9 * want, "{pc} {pm} {a} {b}: {got} vs {want}");
            }
        }
    }
}

#[cfg(test)]
mod depth_tests {
    use super::*;
    use crate::device::{EfficiencyTable, HeadCost};
    use crate::dtype::{DType, Precisions};
    use crate::workload::operators;

    /// DeepSeek-V2-Lite as published.
    fn deepseek_v2_lite() -> Architecture {
        let text = include_str!("../../models/DeepSeek-V2-Lite-Chat.json");
        crate::arch::parse_hf_config(text, "DeepSeek-V2-Lite-Chat.json", "DeepSeek-V2-Lite").unwrap()
    }

    /// q8_0 weights as llama.cpp runs them: f32 activations, an f16 KV cache.
    fn q8_0_on_llama_cpp() -> RunSettings {
        RunSettings {
            batch: 1,
            precisions: Precisions { weights: DType::Q8_0, activations: DType::F32, kv_cache: DType::F16 },
            logits_for_all_prompt_tokens: false,
        }
    }

    /// The operator `name` of a pass of `arch` in q8_0 under `device`'s engine plan.
    fn q8_0_operator(
        arch: &Architecture,
        phase: crate::workload::Phase,
        device: &DeviceProfile,
        name: &str,
    ) -> Operator {
        let plan = device.engine.as_ref().expect("llama.cpp").plan;
        let ops = operators(arch, phase, &q8_0_on_llama_cpp(), plan);
        *ops.iter().find(|o| o.name == name).unwrap_or_else(|| panic!("no {name}"))
    }

    /// One sequence, f16 weights and KV cache, f32 activations.
    fn f16_settings() -> RunSettings {
        RunSettings {
            batch: 1,
            precisions: Precisions { weights: DType::F16, activations: DType::F32, kv_cache: DType::F16 },
            logits_for_all_prompt_tokens: false,
        }
    }

    fn smollm() -> Architecture {
        let text = include_str!("../../models/SmolLM2-135M.json");
        crate::arch::parse_hf_config(text, "SmolLM2-135M.json", "SmolLM2-135M").unwrap()
    }

    /// SmolLM2-135M decoding 10 tokens after a depth of 1019 (contexts 1021..=1030) with a cache
    /// step at 768 KiB, against the same profile without it.
    #[test]
    fn cache_step_costs_what_hand_arithmetic_says() {
        let arch = smollm();
        let settings = f16_settings();
        let ops = operators(&arch, Phase::Decode, &settings, Plan::candidates(&arch)[0]);
        let attn = ops.iter().find(|o| o.class == OpClass::DecodeAttention).expect("decode attention");
        // 30 layers, 9 query heads, 3 KV heads of 64: a position adds K and V of 3 heads of 64
        // f16 values to a layer, 2 * 3 * 64 * 2 = 768 bytes, and 9 scores.
        assert_eq!((attn.count, attn.kv_read_bytes.per_ctx, attn.scores.per_ctx), (30, 768.0, 9.0));
        let mut plain = crate::device::builtin("rpi5-datasheet").expect("rpi5-datasheet");
        plain.engine = None;
        // A cost per score large enough that the kernel is compute-bound at every context.
        let table = EfficiencyTable {
            score_s_by_value_head: vec![HeadCost { value_head: 64, seconds: 1e-6 }],
            ..Default::default()
        };
        plain.efficiency.insert(OpClass::DecodeAttention, table.clone());
        let mut stepped = plain.clone();
        stepped.efficiency.insert(
            OpClass::DecodeAttention,
            EfficiencyTable { score_spill_s: 1e-9, spill_kv_bytes: Some(768.0 * 1024.0), ..table },
        );
        // Knee: 786,432 B / 768 B = 1024 positions. Contexts 1025..=1030 are 1..=6 past it:
        // 21 positions * 9 scores * 30 layers = 5,670 scores at 1 ns = 5.67 us.
        let t = |p: &DeviceProfile| op_totals(attn, p, 1021.0, 1030.0).point.time_s;
        let extra = t(&stepped) - t(&plain);
        assert!((extra - 5.67e-6).abs() < 1e-12, "{extra}");
        // Before the knee nothing changes.
        assert_eq!(op_totals(attn, &stepped, 1000.0, 1024.0), op_totals(attn, &plain, 1000.0, 1024.0));
        // The helper the fit uses counts the same scores per launch: 21 * 9 = 189.
        assert_eq!(spilled_scores(attn, 1024.0, 1021.0, 1030.0), 189.0);
    }

    /// SmolLM2-135M's decode attention over contexts 1021..=1030 on a llama.cpp profile whose
    /// kernel walks the whole padded view once it splits it across threads, against half a
    /// pad per step: the difference is the cells counted, by hand.
    #[test]
    fn a_split_view_costs_its_padded_cells_by_hand() {
        let arch = smollm();
        let settings = f16_settings();
        let ops = operators(&arch, Phase::Decode, &settings, Plan::candidates(&arch)[0]);
        let attn = ops.iter().find(|o| o.class == OpClass::DecodeAttention).expect("decode attention");
        let mut half_pad = crate::device::builtin("rpi5").expect("rpi5");
        let engine = half_pad.engine.as_mut().expect("llama.cpp");
        (engine.kv_pad, engine.threads) = (256, Some(4));
        // A cost per score large enough that the kernel is compute-bound at every context.
        let table = EfficiencyTable { score_s: 1e-6, ..Default::default() };
        half_pad.efficiency.insert(OpClass::DecodeAttention, table);
        let mut exact = half_pad.clone();
        exact.engine.as_mut().expect("llama.cpp").kv_split_min_cells = 512;
        // 9 scores per position and layer. Half a pad: sum over n of 9 (n + 128) = 9 (10,255 +
        // 1,280) = 103,815 per layer. Exact: contexts 1021..=1024 see a view of 1,024 cells and
        // 1025..=1030 one of 1,280, all visited: 9 (4 * 1,024 + 6 * 1,280) = 105,984. The
        // difference, 2,169 scores per layer, times 30 layers at 1 us: 65.07 ms.
        let t = |p: &DeviceProfile| op_totals(attn, p, 1021.0, 1030.0).point.time_s;
        let extra = t(&exact) - t(&half_pad);
        assert!((extra - 0.06507).abs() < 1e-9, "{extra}");
        // Below the split (views of 256 cells) only the real scores count: sum over 2..=11 of
        // 9 n = 585 per layer, against 9 (65 + 10 * 128) = 12,105 at half a pad.
        let saved =
            op_totals(attn, &half_pad, 2.0, 11.0).point.time_s - op_totals(attn, &exact, 2.0, 11.0).point.time_s;
        assert!((saved - 30.0 * (12105.0 - 585.0) * 1e-6).abs() < 1e-9, "{saved}");
        // On one thread the kernel never pays for masked cells: 9 * 10,255 = 92,295 per layer.
        let mut one = exact.clone();
        one.engine.as_mut().expect("llama.cpp").threads = Some(1);
        let fewer = t(&half_pad) - t(&one);
        assert!((fewer - 30.0 * (103815.0 - 92295.0) * 1e-6).abs() < 1e-9, "{fewer}");
    }

    /// A routed expert's products over a prompt run at their type's routed rate where a profile
    /// has one; decode's one-row expert products keep the type's product curve.
    #[test]
    fn routed_expert_products_over_a_prompt_take_their_routed_rate() {
        let arch = deepseek_v2_lite();
        let plain = crate::device::builtin("rpi5").expect("rpi5");
        let mut own = plain.clone();
        let table = own.product_efficiency.get_mut(&crate::dtype::TensorType::Q8_0).expect("a q8_0 table");
        table.routed = crate::device::EfficiencyCurve::constant(0.01);
        let down = |phase| q8_0_operator(&arch, phase, &plain, "experts_down");
        let prompt = down(crate::workload::Phase::Prefill { prompt: 512 });
        // 512 tokens choosing 6 experts each: 3,072 routed rows times a 1,408 x 2,048 product,
        // 2 * 3,072 * 1,408 * 2,048 = 17,716,740,096 FLOPs per layer, at 1% of the f32 peak;
        // every one of the 64 experts is touched (1 - (1 - 6/64)^512 rounds to 1), and each
        // launch pays the kernel's and every expert's fixed cost. 26 MoE layers.
        assert_eq!(prompt.flops.base, 17_716_740_096.0);
        assert_eq!(prompt.count, 26);
        let fixed = plain.kernel_overhead_s + prompt.experts * plain.expert_overhead_s;
        let want = 26.0 * (fixed + 17_716_740_096.0 / (0.01 * plain.peak_flops(DType::F32)));
        let got = op_totals(&prompt, &own, 0.0, 0.0).point.time_s;
        assert!((got / want - 1.0).abs() < 1e-12, "{got} vs {want}");
        let step = down(crate::workload::Phase::Decode);
        assert_eq!(op_totals(&step, &own, 100.0, 100.0), op_totals(&step, &plain, 100.0, 100.0));
    }

    /// MLA's absorbed per-head products over a prompt run at the per-head products' own compute
    /// rate where a profile has one (llama.cpp's fit); their decode GEMVs, and every product
    /// on a profile without that rate, keep the storage type's.
    #[test]
    fn per_head_products_over_a_prompt_take_their_own_rate() {
        let arch = deepseek_v2_lite();
        let plain = crate::device::builtin("rpi5").expect("rpi5");
        let mut own = plain.clone();
        // 1% of the peak: slow enough that the product is compute-bound.
        let compute = crate::device::EfficiencyCurve::constant(0.01);
        own.efficiency.insert(OpClass::BatchedMatmul, EfficiencyTable { compute, ..Default::default() });
        let absorb = |phase| q8_0_operator(&arch, phase, &plain, "q_absorb");
        let prompt = absorb(crate::workload::Phase::Prefill { prompt: 512 });
        // 16 heads, each 512 tokens x 128 nope dims into the 512-wide latent: 2 * 512 * 16 *
        // 128 * 512 = 1,073,741,824 FLOPs per layer, at 1% of the f32 peak, plus the fixed
        // cost of a launch, in each of the 27 layers.
        assert_eq!(prompt.flops.base, 1_073_741_824.0);
        assert_eq!(prompt.count, 27);
        let want = 27.0 * (plain.kernel_overhead_s + 1_073_741_824.0 / (0.01 * plain.peak_flops(DType::F32)));
        let got = op_totals(&prompt, &own, 0.0, 0.0).point.time_s;
        assert!((got / want - 1.0).abs() < 1e-12, "{got} vs {want}");
        assert!(op_totals(&prompt, &plain, 0.0, 0.0).point.time_s < 0.5 * got);
        // A decode step's GEMV is priced as before.
        let step = absorb(crate::workload::Phase::Decode);
        assert_eq!(op_totals(&step, &own, 100.0, 100.0), op_totals(&step, &plain, 100.0, 100.0));
        // A table without a compute rate changes nothing.
        let mut empty = plain.clone();
        empty.efficiency.insert(OpClass::BatchedMatmul, EfficiencyTable::default());
        assert_eq!(op_totals(&prompt, &empty, 0.0, 0.0), op_totals(&prompt, &plain, 0.0, 0.0));
    }

    /// `rpi5` with a 64 MiB weight cache and 10 ps per f16 weight byte past it.
    fn rpi5_with_weight_cache() -> DeviceProfile {
        let mut p = crate::device::builtin("rpi5").expect("rpi5");
        p.weight_cache_bytes = Some(67108864.0);
        p.product_efficiency.get_mut(&crate::dtype::TensorType::F16).expect("an f16 table").past_cache_byte_s = 1e-11;
        p
    }

    /// SmolLM2-135M in f16 decoding 10 tokens, with a weight cache and without: the difference
    /// is the products' weight bytes past the cache at their rate, by hand.
    #[test]
    fn weight_bytes_past_the_cache_cost_what_hand_arithmetic_says() {
        let arch = smollm();
        let settings = f16_settings();
        let cached = rpi5_with_weight_cache();
        let plain = DeviceProfile { weight_cache_bytes: None, ..cached.clone() };
        // Stored: 134,515,008 parameters (the published count), of which 61 norm vectors of 576
        // (35,136) in f32 and the rest in f16 (the LM head is the tied embedding):
        // 134,479,872 * 2 + 35,136 * 4 = 269,100,288 bytes. Past 64 MiB: 1 - 67,108,864 /
        // 269,100,288 of them.
        assert_eq!(arch.parameters(), 134_515_008);
        let miss = 1.0 - 67108864.0 / 269100288.0;
        // A decode step's products read every matrix but the embedding's gather: per layer q and
        // o (576 x 576), k and v (576 x 192), gate, up and down (576 x 1536), 3,538,944 in all,
        // times 30 layers, plus the 49,152 x 576 head: 134,479,872 f16 values, 268,959,744 B.
        let want = 10.0 * 268959744.0 * miss * 1e-11;
        let time = |p: &DeviceProfile| {
            Evaluator::new(p, settings, PlanChoice::Fastest).bench_test(&arch, BenchTest::tg(10, 0)).point.time_s
        };
        let extra = time(&cached) - time(&plain);
        assert!((extra / want - 1.0).abs() < 1e-9, "{extra} vs {want}");
        // A model within the cache pays nothing.
        let small = DeviceProfile { weight_cache_bytes: Some(300e6), ..cached.clone() };
        assert_eq!(time(&small), time(&plain));
    }

    /// A MoE model whose stored weights outgrow the weight cache but whose top-k experts fit
    /// it decodes as if it had no cache step: a step reads only the experts it picks.
    #[test]
    fn a_moe_step_whose_experts_fit_the_cache_pays_no_stall() {
        let mut arch = deepseek_v2_lite();
        (arch.num_layers, arch.vocab_size) = (2, 8192);
        let groups = arch.layer_groups();
        let (stored, streamed) =
            (arch.stored_weight_bytes_in(DType::F16, &groups), arch.streamed_weight_bytes_in(DType::F16, &groups));
        assert!(streamed < 0.5 * stored, "{streamed} {stored}");
        let mut cached = rpi5_with_weight_cache();
        cached.weight_cache_bytes = Some(0.5 * (stored + streamed));
        let plain = DeviceProfile { weight_cache_bytes: None, ..cached.clone() };
        let time = |p: &DeviceProfile| {
            Evaluator::new(p, f16_settings(), PlanChoice::Fastest).bench_test(&arch, BenchTest::tg(10, 0)).point.time_s
        };
        assert_eq!(time(&cached), time(&plain));
        // A cache below the step's own weights stalls it.
        cached.weight_cache_bytes = Some(0.5 * streamed);
        assert!(time(&cached) > time(&plain));
    }

    /// A search's evaluator keeps figures from one candidate for the next: with a weight cache,
    /// each depth reads a different share past it, and the shared figures must follow.
    #[test]
    fn shared_figures_follow_the_weight_cache_across_depths() {
        let cached = rpi5_with_weight_cache();
        let settings = f16_settings();
        let scenario = Scenario::named("lilo").expect("lilo");
        let mut shared = Evaluator::new(&cached, settings, PlanChoice::Fastest).sharing();
        let mut last = 0.0;
        for depth in [4, 8, 16, 30, 30, 8] {
            let arch = Architecture { num_layers: depth, ..smollm() };
            let fresh = Evaluator::new(&cached, settings, PlanChoice::Fastest).scenario(&arch, &scenario);
            assert_eq!(shared.scenario(&arch, &scenario), fresh, "depth {depth}");
            last = fresh.total().time_s;
        }
        assert!(last > 0.0);
    }

    /// A layered MoE stack whose first layers are dense: which layers are dense goes by the
    /// depth, so layer groups priced for one depth must not stand in for another. Shared
    /// figures against fresh pricing, depths where every FFN is dense between depths where
    /// some are MoE, in Q4_K_M (storage by position) and Q8_0.
    #[test]
    fn shared_figures_of_a_layered_moe_stack_follow_its_dense_layers() {
        let mut base = deepseek_v2_lite();
        if let crate::arch::Ffn::Moe(m) = &mut base.ffn {
            m.first_k_dense = 3;
        }
        let device = crate::device::builtin("rtx3090").expect("rtx3090");
        let scenario = Scenario::named("siso").expect("siso");
        for weights in [DType::Q4KM, DType::Q8_0] {
            let settings = RunSettings {
                batch: 1,
                precisions: Precisions { weights, activations: DType::F16, kv_cache: DType::F16 },
                logits_for_all_prompt_tokens: false,
            };
            let mut shared = Evaluator::new(&device, settings, PlanChoice::Fastest).sharing();
            for depth in [2, 3, 8, 3, 5, 2, 8] {
                let uniform = Architecture { num_layers: depth, ..base.clone() };
                let window = crate::arch::Mixer::Window { window: 64 };
                let arch = Architecture::hybrid(uniform, window, 2, 1);
                let fresh = Evaluator::new(&device, settings, PlanChoice::Fastest).scenario(&arch, &scenario);
                assert_eq!(shared.scenario(&arch, &scenario), fresh, "{weights:?} at depth {depth}");
            }
        }
    }
}
