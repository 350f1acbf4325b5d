//! The layers' figures shared between neighbouring candidates. A pass's layer operators depend
//! on neither the vocabulary nor the tied embedding, and on the depth only through their launch
//! counts (unless Q4_K_M stores some layers' tensors wider, or a layer pattern is given): the
//! search enumerates the depth fastest, so each layer shape is priced once per launch and every
//! depth of it reuses that. Figures are rebuilt from the per-launch numbers with the same
//! arithmetic, in the same order, as pricing each operator afresh: bit for bit the same.

use super::{launch_totals, Ceilings, Launch, Point};
use crate::arch::{Architecture, Attention, Family, Ffn, Layer, LayerGroups};
use crate::dtype::storage::LayerSplit;
use crate::dtype::DType;
use crate::dtype::TensorType;
use crate::workload::{
    layers_depth_bound_into, layers_marked_into, segments_into, CounterSide, DepthBound, DepthBoundProduct, Linear,
    Operator, Part, Phase, Plan, RunSettings, Segment,
};

/// What a pass's layer operators depend on, besides the depth and the layer pattern (and the
/// evaluator's device and settings, fixed for its memo).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Shape {
    family: Family,
    hidden_size: u32,
    attention: Attention,
    ffn: Ffn,
    qkv_bias: bool,
    o_bias: bool,
    qk_norm: bool,
    attn_output_gate: bool,
    attention_sinks: bool,
    norms_per_layer: u32,
}

impl Shape {
    fn of(arch: &Architecture) -> Shape {
        Shape {
            family: arch.family,
            hidden_size: arch.hidden_size,
            attention: arch.attention,
            ffn: arch.ffn,
            qkv_bias: arch.qkv_bias,
            o_bias: arch.o_bias,
            qk_norm: arch.qk_norm,
            attn_output_gate: arch.attn_output_gate,
            attention_sinks: arch.attention_sinks,
            norms_per_layer: arch.norms_per_layer,
        }
    }
}

/// Whether a uniform stack of `arch`'s shape launches every layer operator once per layer and
/// prices it the same at any depth: its storage types do not go by layer position, and its FFNs
/// are all dense or all MoE. Checked again on the operators when they are priced.
fn depth_free(arch: &Architecture, settings: &RunSettings) -> bool {
    settings.precisions.weights != DType::Q4KM && ffns_alike(arch)
}

/// Whether `arch`'s FFNs are all dense or all MoE: otherwise which layers have which goes by
/// the depth, and no layer group's figures hold for another stack.
fn ffns_alike(arch: &Architecture) -> bool {
    match arch.ffn {
        Ffn::Dense { .. } => true,
        Ffn::Moe(m) => m.first_k_dense == 0,
    }
}

/// Builds `segment` of the pass `key` of `arch` into `ops`; for a uniform stack whose figures
/// do not hold at every depth, records in `bound` the products its depth reaches (see
/// [`DepthBound`]), exact where every operator launches once per layer.
fn build(
    arch: &Architecture,
    settings: &RunSettings,
    (phase, plan, part): (Phase, Plan, Part),
    segment: Segment,
    ops: &mut Vec<Operator>,
    bound: &mut DepthBound,
) {
    ops.clear();
    if segment == Segment::Layers && arch.layers.is_empty() && !depth_free(arch, settings) {
        layers_depth_bound_into(arch, phase, settings, (plan, part), ops, bound);
        bound.exact &= ops.iter().all(|o| o.count == arch.num_layers);
    } else {
        segments_into(arch, phase, settings, plan, part, &[segment], ops);
        bound.exact = false;
    }
}

/// One layer operator's figures per launch: whole, or in a window's two pieces.
#[derive(Debug, Clone, Copy)]
struct OpLaunch {
    windowed: bool,
    pieces: [Launch; 2],
    n: usize,
}

impl OpLaunch {
    fn of(op: &Operator, ceilings: &Ceilings, first: f64, last: f64) -> OpLaunch {
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
        OpLaunch { windowed: op.window != 0, pieces, n }
    }
}

/// Which of a segment's operators an entry holds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slice {
    /// All of them.
    Whole,
    /// The mixer of one layer group of a layered stack, per layer of the group.
    Group(Layer),
    /// The FFNs of a layered stack, per layer with an FFN.
    Ffns,
}

/// The layers of one pass of one shape, as priced at `depth` with the layer pattern `layers`.
#[derive(Debug)]
struct Entry {
    segment: Segment,
    slice: Slice,
    phase: Phase,
    first: u64,
    last: u64,
    plan: Plan,
    part: Part,
    depth: u32,
    layers: Vec<Layer>,
    ops: Vec<Operator>,
    launches: Vec<OpLaunch>,
    live: f64,
    /// Its products whose weights go by layer position, where recorded (Q4_K_M stacks and
    /// their layer groups).
    bound: DepthBound,
}

impl Entry {
    /// `ops`, one slice of a layered stack's operators, priced per launch.
    fn of_slice(
        spare: Option<Entry>,
        ops: &[Operator],
        ceilings: &Ceilings,
        key: (Phase, Plan, Part),
        slice: Slice,
        range: (f64, f64),
    ) -> Entry {
        let mut e = Entry::empty(spare, key, Segment::Layers, slice, range);
        e.ops.extend_from_slice(ops);
        e.priced(ceilings, range);
        e
    }

    fn empty(
        spare: Option<Entry>,
        (phase, plan, part): (Phase, Plan, Part),
        segment: Segment,
        slice: Slice,
        (first, last): (f64, f64),
    ) -> Entry {
        let (mut ops, mut launches, mut layers, mut bound) = match spare {
            Some(e) => (e.ops, e.launches, e.layers, e.bound),
            None => (Vec::with_capacity(48), Vec::with_capacity(48), Vec::new(), DepthBound::default()),
        };
        ops.clear();
        launches.clear();
        layers.clear();
        bound.products.clear();
        bound.exact = false;
        let (first, last) = (first.to_bits(), last.to_bits());
        Entry { segment, slice, phase, first, last, plan, part, depth: 0, layers, ops, launches, live: 0.0, bound }
    }

    /// Prices the entry's operators per launch.
    fn priced(&mut self, ceilings: &Ceilings, (first, last): (f64, f64)) {
        self.launches.extend(self.ops.iter().map(|op| OpLaunch::of(op, ceilings, first, last)));
        self.live = live_bytes(&self.ops, last);
    }

    /// Sets the entry's recorded products (see [`DepthBound`]) to the weight bytes and storage
    /// type `stored(product)` gives for the stack, pricing again those that changed.
    fn retarget(
        &mut self,
        stored: impl Fn(&DepthBoundProduct) -> (Linear, TensorType),
        ceilings: &Ceilings,
        range: (f64, f64),
    ) {
        for p in &self.bound.products {
            let (weight_bytes, ty) = stored(p);
            let op = &mut self.ops[p.op];
            if op.weight_bytes != weight_bytes || op.weight_type != Some(ty) {
                op.weight_bytes = weight_bytes;
                op.weight_type = Some(ty);
                self.launches[p.op] = OpLaunch::of(op, ceilings, range.0, range.1);
            }
        }
    }

    /// Takes `ops` as the entry's operators: those alike the one the entry holds at the same
    /// place keep its figures per launch (the same function of the same operator), the others
    /// are priced.
    fn refresh(&mut self, ops: &[Operator], ceilings: &Ceilings, range: (f64, f64)) {
        self.ops.truncate(ops.len());
        self.launches.truncate(ops.len());
        for (k, op) in ops.iter().enumerate() {
            match self.ops.get_mut(k) {
                Some(old) if alike(op, old) => old.count = op.count,
                Some(old) => {
                    self.launches[k] = OpLaunch::of(op, ceilings, range.0, range.1);
                    *old = *op;
                }
                None => {
                    self.launches.push(OpLaunch::of(op, ceilings, range.0, range.1));
                    self.ops.push(*op);
                }
            }
        }
        self.live = live_bytes(&self.ops, range.1);
    }

    /// Prices the entry's operators per launch where they differ from `neighbour`'s at the
    /// same place, and takes its figures where they are alike (as [`Entry::refresh`] from a
    /// copy of it would).
    fn priced_after(&mut self, neighbour: &Entry, ceilings: &Ceilings, (first, last): (f64, f64)) {
        self.launches.clear();
        for (k, op) in self.ops.iter().enumerate() {
            self.launches.push(match neighbour.ops.get(k) {
                Some(old) if alike(op, old) => neighbour.launches[k],
                _ => OpLaunch::of(op, ceilings, first, last),
            });
        }
        self.live = live_bytes(&self.ops, last);
    }

    /// [`Entry::refresh`] with `ops`, built for `arch`'s depth and layers.
    fn rebuilt(&mut self, ops: &[Operator], arch: &Architecture, ceilings: &Ceilings, range: (f64, f64)) {
        self.refresh(ops, ceilings, range);
        self.depth = arch.num_layers;
        self.layers.clone_from(&arch.layers);
    }

    /// Whether this entry holds `segment` of the pass `key` over the contexts `range`.
    fn is_for(
        &self,
        segment: Segment,
        slice: Slice,
        (phase, plan, part): (Phase, Plan, Part),
        (first, last): (f64, f64),
    ) -> bool {
        self.first == first.to_bits()
            && self.last == last.to_bits()
            && self.segment == segment
            && self.slice == slice
            && self.phase == phase
            && self.plan == plan
            && self.part == part
    }

    /// Adds each operator's figures to `total`, as [`super::totals`] prices them: its launch
    /// count (`count`, or its own) times each piece's figures, each stall scaled by the model's share
    /// past the weight cache (`weight_miss`).
    fn add_to(&self, total: &mut Point, count: Option<u32>, weight_miss: f64) {
        match count {
            // One count for all: the operators themselves are not read (each is a cache line
            // or more; their figures per launch are what is added).
            Some(count) => {
                for launch in &self.launches {
                    add_launches(total, launch, count as f64, weight_miss);
                }
            }
            None => {
                for (op, launch) in self.ops.iter().zip(&self.launches) {
                    add_launches(total, launch, op.count as f64, weight_miss);
                }
            }
        }
    }
}

/// Adds `count` launches of an operator (`launch`: its figures per launch) to `total`.
#[inline(always)]
fn add_launches(total: &mut Point, launch: &OpLaunch, count: f64, weight_miss: f64) {
    let scaled =
        |p: &Launch| Point { flops: count * p.flops, bytes: count * p.bytes, time_s: count * p.time(weight_miss) };
    if launch.windowed {
        let mut sum = Point::default();
        for piece in &launch.pieces[..launch.n] {
            sum.add(scaled(piece));
        }
        total.add(sum);
    } else {
        total.add(scaled(&launch.pieces[0]));
    }
}

/// `a` and `b` are priced alike per launch: equal but for their launch counts.
fn alike(a: &Operator, b: &Operator) -> bool {
    Operator { count: b.count, ..*a } == *b
}

/// A layered stack's pieces and the layers each runs in: every group's mixer, then the FFNs
/// (where any layer has one). An FFN entry is never made from a stack without FFNs, so it
/// cannot stand in for one with them.
fn pieces(groups: &LayerGroups) -> impl Iterator<Item = (Slice, u32)> + '_ {
    let ffn_layers = groups.ffn_layers();
    let mixers = groups.as_slice().iter().map(|&(l, n)| (Slice::Group(l), n));
    mixers.chain((ffn_layers > 0).then_some((Slice::Ffns, ffn_layers)))
}

/// The largest live activation set of `ops`: one operator's inputs plus output, at the last
/// context.
fn live_bytes(ops: &[Operator], last: f64) -> f64 {
    ops.iter().map(|op| (op.act_read_bytes + op.act_write_bytes).at(op.context(last))).fold(0.0, f64::max)
}

/// What the embedding and the head depend on: the width, the vocabulary and whether the head
/// is the embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ends {
    hidden_size: u32,
    vocab_size: u32,
    tie_embeddings: bool,
}

impl Ends {
    fn of(arch: &Architecture) -> Ends {
        Ends { hidden_size: arch.hidden_size, vocab_size: arch.vocab_size, tie_embeddings: arch.tie_embeddings }
    }
}

/// Where each lookup of the last candidate found its entry, by the lookup's turn: the next
/// candidate looks the same entries up in the same turns (its passes, plans and parts), so each
/// lookup checks its hint before it scans (a scan touches every entry's key, a cache miss each).
#[derive(Debug, Default)]
struct Hints {
    at: Vec<usize>,
    turn: usize,
}

impl Hints {
    /// The first of `entries` that `is_for` accepts, its hint checked first.
    fn find(&mut self, entries: &[Entry], is_for: impl Fn(&Entry) -> bool) -> Option<usize> {
        let turn = self.turn;
        self.turn += 1;
        // An entry is made only where none is for its key: the one a scan would find.
        if let Some(&i) = self.at.get(turn) {
            if entries.get(i).is_some_and(&is_for) {
                debug_assert_eq!(entries.iter().position(&is_for), Some(i));
                return Some(i);
            }
        }
        let found = entries.iter().position(is_for)?;
        match self.at.get_mut(turn) {
            Some(at) => *at = found,
            None => self.at.resize(turn + 1, found),
        }
        Some(found)
    }
}

/// A depth run's lanes as the memo prices them: the models (uniform stacks of one shape at
/// ascending depths), each one's share past the weight cache, and each one's figures and
/// largest live set so far.
pub(super) struct Lanes<'r, 'm> {
    pub models: &'r [(&'m Architecture, &'m LayerGroups)],
    pub misses: &'r [f64],
    pub totals: &'r mut [Point],
    pub lives: &'r mut [f64],
}

/// Shapes whose entries are kept while others are priced (see [`Parked`]).
const PARKED: usize = 32;

/// A shape's entries, kept while its neighbours are priced: a search's order comes back to
/// each shape after the few that differ from it in the axes it varies faster (the FFN's width,
/// the key and value heads), once per vocabulary.
#[derive(Debug)]
struct Parked {
    shape: Shape,
    depth_free: bool,
    by_group: bool,
    entries: Vec<Entry>,
}

/// The layers' figures of the current shape (and of the last few, parked), and the
/// embedding's and head's of the current ends, per phase, context range, plan and part.
#[derive(Debug, Default)]
pub(super) struct LayerMemo {
    shape: Option<Shape>,
    /// The shape's figures hold at every depth, with every count the depth.
    depth_free: bool,
    /// The shape's layered stacks are priced per layer group (see [`LayerMemo::add_groups`]);
    /// false once a stack's operators did not split into groups as expected.
    by_group: bool,
    entries: Vec<Entry>,
    ends: Option<Ends>,
    /// The embedding's and the head's entries (their depth and pattern are unused).
    end_entries: Vec<Entry>,
    /// The last shapes' entries, the most recent last.
    parked: Vec<Parked>,
    /// Entries of earlier shapes, whose buffers the next ones reuse.
    spare: Vec<Entry>,
    ops: Vec<Operator>,
    /// Where each group's operators start in `ops` (then the FFNs').
    marks: Vec<usize>,
    /// The entries a layered stack adds, in order.
    at: Vec<usize>,
    /// The layer groups of the architecture being priced (each pass, part and plan of it
    /// shares them).
    groups: Option<LayerGroups>,
    /// How that architecture's layers store the tensors on Q4_K_M's shared `attn_v` counter
    /// (`Architecture::attn_v_splits`), once asked for: each pass, part and plan shares them.
    splits: Option<Option<(LayerSplit, LayerSplit)>>,
    /// The same for each lane of a depth run.
    run_splits: Vec<Option<Option<(LayerSplit, LayerSplit)>>>,
    /// The products of the stack `find_or_split` last built whose bytes go by layer position.
    bound: DepthBound,
    /// Where the last candidate's lookups found their entries.
    hints: Hints,
    end_hints: Hints,
}

impl LayerMemo {
    /// Starts pricing passes of `arch`: its layer groups, found once for all their parts and
    /// plans.
    pub(super) fn start_pass(&mut self, arch: &Architecture) {
        self.groups = (!arch.layers.is_empty()).then(|| arch.layer_groups());
        self.splits = None;
        (self.hints.turn, self.end_hints.turn) = (0, 0);
    }

    /// [`LayerMemo::start_pass`] with `arch`'s layer groups found already.
    pub(super) fn start_pass_with(&mut self, arch: &Architecture, groups: &LayerGroups) {
        (self.hints.turn, self.end_hints.turn) = (0, 0);
        self.splits = None;
        match &mut self.groups {
            // The buffer of the last candidate's groups, reused.
            Some(LayerGroups::Mixed(kept)) if !arch.layers.is_empty() => {
                kept.clear();
                kept.extend_from_slice(groups.as_slice());
            }
            _ => self.groups = (!arch.layers.is_empty()).then(|| groups.clone()),
        }
    }

    /// Starts pricing passes of a depth run of `lanes` models.
    pub(super) fn start_run(&mut self, lanes: usize) {
        (self.hints.turn, self.end_hints.turn) = (0, 0);
        self.run_splits.clear();
        self.run_splits.resize(lanes, None);
    }

    /// Makes `arch`'s shape the current one, where it is not already.
    fn select_shape(&mut self, arch: &Architecture, settings: &RunSettings) {
        let shape = Shape::of(arch);
        if self.shape != Some(shape) {
            self.switch_to(shape, arch, settings);
        }
    }

    /// Makes `shape` the current shape: the current one parked, `shape`'s entries taken back
    /// where it was parked, the oldest parked shape's entries spared where there are too many.
    fn switch_to(&mut self, shape: Shape, arch: &Architecture, settings: &RunSettings) {
        if let Some(old) = self.shape.replace(shape) {
            if self.parked.len() == PARKED {
                let oldest = self.parked.remove(0);
                self.spare.extend(oldest.entries);
            }
            let entries = std::mem::take(&mut self.entries);
            self.parked.push(Parked { shape: old, depth_free: self.depth_free, by_group: self.by_group, entries });
        }
        match self.parked.iter().rposition(|p| p.shape == shape) {
            Some(i) => {
                let p = self.parked.remove(i);
                (self.entries, self.depth_free, self.by_group) = (p.entries, p.depth_free, p.by_group);
            }
            None => {
                self.depth_free = depth_free(arch, settings);
                self.by_group = true;
            }
        }
    }

    /// Adds the layer operators' figures of one pass to `total` (in the order a fresh pricing
    /// adds them) and returns their largest live activation set.
    ///
    /// A shape's figures are kept across depths and layer patterns: where they hold at every
    /// depth (a uniform stack) they are reused as they are; a layered stack whose storage does
    /// not go by layer position adds its groups' figures (see [`LayerMemo::add_groups`]); a
    /// Q4_K_M stack sets its `attn_v` and `ffn_down` bytes for the new depth or pattern and
    /// prices those again (see [`DepthBound`]); otherwise (Q4_K_M DeltaNet hybrids, MoE stacks
    /// with dense layers first) the operators are built for the new depth or pattern and only
    /// those that changed are priced again.
    pub(super) fn add_layers(
        &mut self,
        arch: &Architecture,
        settings: &RunSettings,
        ceilings: &Ceilings,
        (phase, plan, part): (Phase, Plan, Part),
        (first, last): (f64, f64),
        total: &mut Point,
    ) -> f64 {
        self.select_shape(arch, settings);
        if !arch.layers.is_empty() && self.by_group && ffns_alike(arch) {
            if let Some(live) = self.add_groups(arch, settings, ceilings, (phase, plan, part), (first, last), total) {
                return live;
            }
            self.by_group = false;
        }
        let at = self.stack_entry(arch, settings, ceilings, (phase, plan, part), (first, last));
        let count = self.at_depth(at, arch, settings, ceilings, (first, last));
        let entry = &self.entries[at];
        entry.add_to(total, count, ceilings.weight_miss);
        entry.live
    }

    /// [`LayerMemo::add_layers`] for a depth run: each lane's stack added to its figures with
    /// its own share past the weight cache. The entry is looked up once for the run; each lane
    /// is then priced as it would be alone, in the order of the run.
    pub(super) fn add_layers_run(
        &mut self,
        lanes: &mut Lanes,
        settings: &RunSettings,
        ceilings: &Ceilings,
        key: (Phase, Plan, Part),
        range: (f64, f64),
    ) {
        let (first, first_groups) = lanes.models[0];
        debug_assert!(lanes.models.iter().all(|(m, _)| Shape::of(m) == Shape::of(first)));
        self.select_shape(first, settings);
        if !first.layers.is_empty() {
            return self.add_groups_run(lanes, settings, ceilings, key, range, first_groups);
        }
        debug_assert!(lanes.models.iter().all(|(m, _)| m.layers.is_empty()));
        let at = self.stack_entry(first, settings, ceilings, key, range);
        for (k, (arch, _)) in lanes.models.iter().enumerate() {
            let count = self.at_depth(at, arch, settings, ceilings, range);
            let entry = &self.entries[at];
            entry.add_to(&mut lanes.totals[k], count, lanes.misses[k]);
            lanes.lives[k] = lanes.lives[k].max(entry.live);
        }
    }

    /// [`LayerMemo::add_layers_run`] for layered stacks whose layer groups are of the same
    /// kinds in the same order (a shape's depths): the groups' entries are looked up once for
    /// the run, then each lane adds them with its own counts (set first for its layers where
    /// storage goes by position), as [`LayerMemo::add_groups`] would for it alone. A lane
    /// whose stack cannot be priced so is priced whole, as alone.
    fn add_groups_run(
        &mut self,
        lanes: &mut Lanes,
        settings: &RunSettings,
        ceilings: &Ceilings,
        key: (Phase, Plan, Part),
        range: (f64, f64),
        first_groups: &LayerGroups,
    ) {
        let first = lanes.models[0].0;
        let groupable = self.by_group && ffns_alike(first);
        let mut by_group = groupable && self.find_or_split(first, settings, ceilings, key, range, first_groups);
        if groupable && !by_group {
            self.by_group = false;
        }
        let weights = settings.precisions.weights;
        for (k, &(arch, groups)) in lanes.models.iter().enumerate() {
            debug_assert!(pieces(groups).map(|(s, _)| s).eq(pieces(first_groups).map(|(s, _)| s)));
            if by_group {
                let mut splits = self.run_splits[k].take();
                let added = self.add_found(
                    arch,
                    groups,
                    (&mut splits, weights),
                    ceilings,
                    range,
                    &mut lanes.totals[k],
                    lanes.misses[k],
                );
                self.run_splits[k] = splits;
                if let Some(live) = added {
                    lanes.lives[k] = lanes.lives[k].max(live);
                    continue;
                }
                (by_group, self.by_group) = (false, false);
            }
            let at = self.stack_entry(arch, settings, ceilings, key, range);
            let count = self.at_depth(at, arch, settings, ceilings, range);
            let entry = &self.entries[at];
            entry.add_to(&mut lanes.totals[k], count, lanes.misses[k]);
            lanes.lives[k] = lanes.lives[k].max(entry.live);
        }
    }

    /// The entry of the layers of the pass `key` of `arch`'s shape (a uniform stack, or a
    /// layered one not priced per group): found, or priced for `arch`.
    fn stack_entry(
        &mut self,
        arch: &Architecture,
        settings: &RunSettings,
        ceilings: &Ceilings,
        key: (Phase, Plan, Part),
        range: (f64, f64),
    ) -> usize {
        let found = self.hints.find(&self.entries, |e| e.is_for(Segment::Layers, Slice::Whole, key, range));
        if let Some(i) = found {
            return i;
        }
        let entry = self.priced_entry(arch, settings, ceilings, key, Segment::Layers, range);
        // Counts other than the depth: these figures are for this depth.
        if arch.layers.is_empty() && entry.ops.iter().any(|o| o.count != arch.num_layers) {
            self.depth_free = false;
        }
        self.entries.push(entry);
        self.entries.len() - 1
    }

    /// Makes entry `at` hold `arch`'s depth and layers, priced again where its figures go by
    /// them; the launch count to add it with (`None`: each operator's own).
    fn at_depth(
        &mut self,
        at: usize,
        arch: &Architecture,
        settings: &RunSettings,
        ceilings: &Ceilings,
        range: (f64, f64),
    ) -> Option<u32> {
        let depth = arch.num_layers;
        // Figures priced for a uniform stack of this shape hold at every depth (counts: the
        // depth) where the shape is depth-free.
        let free = |e: &Entry, depth_free: bool| depth_free && arch.layers.is_empty() && e.layers.is_empty();
        let e = &self.entries[at];
        if !free(e, self.depth_free) && (e.depth != depth || e.layers != arch.layers) {
            self.reprice(at, arch, settings, ceilings, range);
        }
        free(&self.entries[at], self.depth_free).then_some(depth)
    }

    /// [`LayerMemo::add_layers`] for the embedding or the head, kept for the candidates that
    /// share their width, vocabulary and tied embedding.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_end(
        &mut self,
        segment: Segment,
        arch: &Architecture,
        settings: &RunSettings,
        ceilings: &Ceilings,
        key: (Phase, Plan, Part),
        range: (f64, f64),
        total: &mut Point,
    ) -> f64 {
        let at = self.end_entry(segment, arch, settings, ceilings, key, range);
        let entry = &self.end_entries[at];
        entry.add_to(total, None, ceilings.weight_miss);
        entry.live
    }

    /// [`LayerMemo::add_end`] for a depth run (see [`LayerMemo::add_layers_run`]), whose
    /// models share their width, vocabulary and tied embedding.
    pub(super) fn add_end_run(
        &mut self,
        segment: Segment,
        lanes: &mut Lanes,
        settings: &RunSettings,
        ceilings: &Ceilings,
        key: (Phase, Plan, Part),
        range: (f64, f64),
    ) {
        let first = lanes.models[0].0;
        debug_assert!(lanes.models.iter().all(|(m, _)| Ends::of(m) == Ends::of(first)));
        let at = self.end_entry(segment, first, settings, ceilings, key, range);
        let entry = &self.end_entries[at];
        for (k, total) in lanes.totals.iter_mut().enumerate() {
            entry.add_to(total, None, lanes.misses[k]);
            lanes.lives[k] = lanes.lives[k].max(entry.live);
        }
    }

    /// The entry of `segment` (the embedding or the head) of the pass `key` of `arch`'s ends:
    /// found, or priced.
    fn end_entry(
        &mut self,
        segment: Segment,
        arch: &Architecture,
        settings: &RunSettings,
        ceilings: &Ceilings,
        key: (Phase, Plan, Part),
        range: (f64, f64),
    ) -> usize {
        let ends = Ends::of(arch);
        if self.ends != Some(ends) {
            self.ends = Some(ends);
            self.spare.append(&mut self.end_entries);
        }
        let found = self.end_hints.find(&self.end_entries, |e| e.is_for(segment, Slice::Whole, key, range));
        if let Some(i) = found {
            return i;
        }
        let entry = self.priced_entry(arch, settings, ceilings, key, segment, range);
        self.end_entries.push(entry);
        self.end_entries.len() - 1
    }

    /// [`LayerMemo::add_layers`] for a layered stack: its operators are each layer group's
    /// mixer, then the FFNs (see [`layers_marked_into`]), and each group is priced once per
    /// launch for every stack with that kind of layer, whatever their counts and order (where
    /// storage goes by layer position, Q4_K_M's `attn_v` and `ffn_down` are set for the counts
    /// of layers this stack numbers them over). `None` (nothing added) where the stack's
    /// operators do not split so, or its storage goes by position some other way.
    fn add_groups(
        &mut self,
        arch: &Architecture,
        settings: &RunSettings,
        ceilings: &Ceilings,
        key: (Phase, Plan, Part),
        range: (f64, f64),
        total: &mut Point,
    ) -> Option<f64> {
        // Set by `start_pass` for this pass; taken while the entries change, then put back.
        let groups = self.groups.take()?;
        debug_assert_eq!(groups, arch.layer_groups(), "start_pass was not called for this pass");
        let found = self.find_or_split(arch, settings, ceilings, key, range, &groups);
        let live = found
            .then(|| {
                let mut splits = self.splits.take();
                let weights = settings.precisions.weights;
                let live =
                    self.add_found(arch, &groups, (&mut splits, weights), ceilings, range, total, ceilings.weight_miss);
                self.splits = splits;
                live
            })
            .flatten();
        self.groups = Some(groups);
        live
    }

    /// Adds the entries `at` (found for `groups`' kinds) with `groups`' counts to `total`, set
    /// first (Q4_K_M) for where `arch`'s layers sit; `None` (nothing added) where an entry's
    /// recorded products cannot be set so. `splits`: `arch`'s shared-counter splits in the
    /// `weights` format, worked out here when first needed and kept there for its other
    /// passes.
    #[allow(clippy::too_many_arguments)]
    fn add_found(
        &mut self,
        arch: &Architecture,
        groups: &LayerGroups,
        (splits, weights): (&mut Option<Option<(LayerSplit, LayerSplit)>>, DType),
        ceilings: &Ceilings,
        range: (f64, f64),
        total: &mut Point,
        weight_miss: f64,
    ) -> Option<f64> {
        if !self.depth_free {
            // Storage by layer position (Q4_K_M): each group's recorded products set for the
            // layers this stack numbers them over, or (on the shared `attn_v` counter, with
            // DeltaNet layers) for where its layers sit, where all were recorded.
            let splits = *splits.get_or_insert_with(|| arch.attn_v_splits(weights));
            // An entry kept from a stack with the counter shared (or not) holds only for stacks
            // alike in that: its `attn_v` products were recorded one way or the other.
            let alike = |p: &DepthBoundProduct| p.counter_side().is_some() == (splits.is_some() && p.is_attn_v());
            let found = self
                .at
                .iter()
                .all(|&i| self.entries[i].bound.exact && self.entries[i].bound.products.iter().all(alike));
            if !found {
                return None;
            }
            let stored = |p: &DepthBoundProduct| match (p.counter_side(), splits) {
                (Some(CounterSide::Attention), Some((attention, _))) => p.stored_as(&attention),
                (Some(CounterSide::DeltaNet), Some((_, delta_net))) => p.stored_as(&delta_net),
                _ => p.at(p.numbered_over(groups)),
            };
            for &i in &self.at {
                self.entries[i].retarget(stored, ceilings, range);
            }
        }
        let mut live = 0.0f64;
        for (&i, (_, count)) in self.at.iter().zip(pieces(groups)) {
            let e = &self.entries[i];
            e.add_to(total, Some(count), weight_miss);
            live = live.max(e.live);
        }
        Some(live)
    }

    /// Sets `at` to the entries of `groups`' pieces (see [`pieces`]); false if one is missing.
    fn find_groups(&mut self, groups: &LayerGroups, key: (Phase, Plan, Part), range: (f64, f64)) -> bool {
        self.at.clear();
        for (slice, _) in pieces(groups) {
            match self.hints.find(&self.entries, |e| e.is_for(Segment::Layers, slice, key, range)) {
                Some(i) => self.at.push(i),
                None => return false,
            }
        }
        true
    }

    /// Sets `at` to the entries of `groups`' pieces. Where one is missing, builds the stack's
    /// operators from `arch` and keeps each piece's slice as an entry where there is none yet.
    /// False if a slice launches its operators other than once per layer of its piece: those
    /// counts would not hold elsewhere.
    fn find_or_split(
        &mut self,
        arch: &Architecture,
        settings: &RunSettings,
        ceilings: &Ceilings,
        key: (Phase, Plan, Part),
        range: (f64, f64),
        groups: &LayerGroups,
    ) -> bool {
        if self.find_groups(groups, key, range) {
            return true;
        }
        let (phase, plan, part) = key;
        self.ops.clear();
        layers_marked_into(arch, phase, settings, plan, part, groups, &mut self.ops, &mut self.marks, &mut self.bound);
        if self.marks.len() != groups.as_slice().len() + 1 {
            return false;
        }
        // Piece `i`'s operators: the groups' in order, the FFNs' last (absent without FFNs).
        let bounds = |i: usize| self.marks[i]..self.marks.get(i + 1).copied().unwrap_or(self.ops.len());
        if pieces(groups).enumerate().any(|(i, (_, count))| self.ops[bounds(i)].iter().any(|o| o.count != count)) {
            return false;
        }
        for (i, (slice, _)) in pieces(groups).enumerate() {
            if !self.entries.iter().any(|e| e.is_for(Segment::Layers, slice, key, range)) {
                let ops = bounds(i);
                let mut entry = Entry::of_slice(self.spare.pop(), &self.ops[ops.clone()], ceilings, key, slice, range);
                // The slice's recorded products, placed among its own operators.
                let own = self.bound.products.iter().filter(|p| ops.contains(&p.op));
                entry.bound.products.extend(own.map(|p| p.at_index(p.op - ops.start)));
                entry.bound.exact = self.bound.exact;
                self.entries.push(entry);
            }
        }
        self.find_groups(groups, key, range)
    }

    /// A new entry for `segment` of the pass `key` of `arch`, in the buffers of a spare entry
    /// (one of an earlier shape), starting from the last shape's entry of the same pass (or a
    /// spare one's): operators that did not change keep their figures (neighbouring shapes
    /// differ in one axis: the FFN's width, or the key and value heads, leave most operators
    /// as they were).
    fn priced_entry(
        &mut self,
        arch: &Architecture,
        settings: &RunSettings,
        ceilings: &Ceilings,
        key: (Phase, Plan, Part),
        segment: Segment,
        range: (f64, f64),
    ) -> Entry {
        let is_for = |e: &&Entry| e.is_for(segment, Slice::Whole, key, range);
        // The last shape's entry of the same pass, where there is one: the new operators are
        // built in place and priced where they differ from its (no copy of its operators).
        if let Some(n) = self.parked.last().and_then(|p| p.entries.iter().find(is_for)) {
            let mut e = Entry::empty(self.spare.pop(), key, segment, Slice::Whole, range);
            build(arch, settings, key, segment, &mut e.ops, &mut e.bound);
            e.priced_after(n, ceilings, range);
            e.depth = arch.num_layers;
            e.layers.clone_from(&arch.layers);
            return e;
        }
        // Else a spare one's, else none.
        let mut e = match self.spare.iter().rposition(|e| is_for(&e)) {
            Some(i) => self.spare.swap_remove(i),
            None => Entry::empty(self.spare.pop(), key, segment, Slice::Whole, range),
        };
        build(arch, settings, key, segment, &mut self.ops, &mut e.bound);
        e.rebuilt(&self.ops, arch, ceilings, range);
        e
    }

    /// Entry `i` for the depth of `arch`: its operators built again, and those that changed
    /// priced again.
    fn reprice(
        &mut self,
        i: usize,
        arch: &Architecture,
        settings: &RunSettings,
        ceilings: &Ceilings,
        range: (f64, f64),
    ) {
        let e = &mut self.entries[i];
        if e.bound.exact && arch.layers.is_empty() && e.layers.is_empty() {
            // A uniform stack whose depth reaches only its recorded products' bytes: those
            // set for the new depth, as building the stack again would set them.
            let depth = arch.num_layers;
            e.retarget(|p| p.at(depth), ceilings, range);
            for op in &mut e.ops {
                op.count = depth;
            }
            e.depth = depth;
            return;
        }
        // Recorded again where uniform, so that its next depths take the path above.
        build(arch, settings, (e.phase, e.plan, e.part), Segment::Layers, &mut self.ops, &mut e.bound);
        e.rebuilt(&self.ops, arch, ceilings, range);
    }
}
