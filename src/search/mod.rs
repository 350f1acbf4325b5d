//! Architecture search: enumerate a space in parallel and in a fixed order, score each
//! candidate on a device, apply the constraints, keep the Pareto front and the best candidates
//! by the objective, and recommend one.

pub mod milp;
pub mod pareto;
pub mod recommend;
pub mod row;
pub mod saved;
pub mod shard;
pub mod space;

pub use pareto::{dominates, Objectives, ParetoFront, OBJECTIVES};
pub use recommend::{finish, SearchReport};
pub use row::{candidate_config, FrontRow};
pub use space::{Candidate, Constraints, Objective, SearchSpace, ShapeDigits};

use crate::arch::{Architecture, LayerGroups};
use crate::device::DeviceProfile;
use crate::error::{Error, Result};
use crate::quality::{AspectFactors, Estimate, LossModel};
use crate::roofline::{footprint_with_weights, potential, Evaluator, PlanChoice, Point, Potential, ScenarioEval};
use crate::workload::{Plan, RunSettings};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What streaming keeps of a scored candidate: enough to rank it and rebuild it by index.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub index: u64,
    pub rip: f64,
    pub parameters: f64,
    pub decode_tokens_per_s: f64,
    pub memory_bytes: f64,
    /// The space's objective, oriented so that larger is better.
    pub objective: f64,
    /// Predicted pre-training loss (nats per token), see `quality`.
    pub predicted_loss: f64,
}

/// The front's objectives: rip up, parameters up, decode tokens/s up, memory down, predicted
/// loss down. Loss came last: adding an objective only adds members, so every member of the
/// four-objective front stays on this one (barring a tie in all four and a better loss).
impl Objectives for Scored {
    fn objectives(&self) -> [f64; OBJECTIVES] {
        [self.rip, self.parameters, self.decode_tokens_per_s, -self.memory_bytes, -self.predicted_loss]
    }
    fn key(&self) -> u64 {
        self.index
    }
}

/// The parameter constraints, as rejections name them.
const MIN_PARAMS: &str = "min_params";
const MAX_PARAMS: &str = "max_params";

/// Candidates kept beside the front, best by objective first.
pub const TOP_N: usize = 10;

/// Everything a run (or one shard of it) found. Shards merge into the outcome of a whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub space: String,
    pub device: String,
    /// Candidates enumerated (valid or not).
    pub candidates: u64,
    /// Skipped before scoring, by reason.
    pub invalid: BTreeMap<String, u64>,
    /// Scored (or pre-checked) and rejected, by the first constraint they failed.
    pub rejected: BTreeMap<String, u64>,
    pub feasible: u64,
    pub front: Vec<Scored>,
    pub top: Vec<Scored>,
    /// The front's boxes' relative width where it was thinned (see [`front_resolution`]);
    /// absent for an exact front.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub front_resolution: Option<f64>,
}

/// Spaces up to this many candidates keep their exact Pareto front. An exact front in five
/// objectives grows with the space: the ten-million space without Q4_K_M (7.1 M candidates)
/// kept 507 k members, 611 MB of memory and a 296 MB `pareto.csv`; thinned, 31 k and 71 MB.
/// Every shipped space is below this.
pub const EXACT_FRONT_CANDIDATES: u64 = 1_000_000;

/// Larger spaces keep a thinned front, one member per box of this relative width in every
/// objective (0.5%: finer than the error band of any figure), so that its memory is bounded
/// by the boxes and not by the space. A function of the space alone, so that every thread
/// count and shard gives the same front.
pub fn front_resolution(candidates: u64) -> Option<f64> {
    (candidates > EXACT_FRONT_CANDIDATES).then_some(0.005)
}

fn better(a: &Scored, b: &Scored) -> std::cmp::Ordering {
    b.objective.total_cmp(&a.objective).then(a.index.cmp(&b.index))
}

/// Adds `other`'s counts to `counts`, reason by reason.
fn add_counts<K: Ord>(counts: &mut BTreeMap<K, u64>, other: BTreeMap<K, u64>) {
    for (k, v) in other {
        *counts.entry(k).or_default() += v;
    }
}

/// The best [`TOP_N`] of two disjoint lists of best candidates.
fn merge_top(top: &mut Vec<Scored>, other: Vec<Scored>) {
    top.extend(other);
    top.sort_by(better);
    top.truncate(TOP_N);
}

impl Outcome {
    fn empty(space: &str, device: &str) -> Outcome {
        Outcome {
            space: space.into(),
            device: device.into(),
            candidates: 0,
            invalid: BTreeMap::new(),
            rejected: BTreeMap::new(),
            feasible: 0,
            front: Vec::new(),
            top: Vec::new(),
            front_resolution: None,
        }
    }

    /// The outcome of the union of two disjoint slices.
    pub fn merge(mut self, other: Outcome) -> Outcome {
        self.candidates += other.candidates;
        self.feasible += other.feasible;
        add_counts(&mut self.invalid, other.invalid);
        add_counts(&mut self.rejected, other.rejected);
        self.front_resolution = self.front_resolution.or(other.front_resolution);
        let mut front = ParetoFront::from_front(self.front, self.front_resolution);
        front.merge(ParetoFront::from_front(other.front, self.front_resolution));
        self.front = front.into_sorted();
        merge_top(&mut self.top, other.top);
        self
    }
}

/// Full figures of one candidate for a workload mix.
#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    pub prefill: Point,
    pub decode: Point,
    pub total: Point,
    pub potential: Potential,
    /// Mean over the mix, weighted.
    pub ttft_s: f64,
    pub tpot_s: f64,
    pub prefill_tokens_per_s: f64,
    pub decode_tokens_per_s: f64,
    pub footprint: crate::roofline::Footprint,
    /// Plans of the mix's first scenario (prefill, decode).
    pub plans: (Plan, Plan),
    /// Whether every scenario met the latency limits; the first it failed.
    pub violates: Option<&'static str>,
    /// Non-embedding parameters, training tokens and predicted loss.
    pub quality: Estimate,
    /// The profile's error bands (measured / predicted tokens/s), where it has them.
    pub prefill_band: Option<crate::device::Band>,
    pub decode_band: Option<crate::device::Band>,
}

/// Scores candidates of one space on one device; one per thread (it reuses buffers).
pub struct Scorer<'a> {
    space: &'a SearchSpace,
    device: &'a DeviceProfile,
    evaluators: Vec<Evaluator<'a>>,
    budget_bytes: f64,
    loss: LossModel,
    aspect_factors: AspectFactors,
    /// Scenario evaluations of the candidate (or run) being scored, kept between candidates.
    evals: Vec<ScenarioEval>,
    /// A run's candidates that passed the checks before pricing, with their estimates.
    passed: Vec<(usize, Estimate)>,
}

impl<'a> Scorer<'a> {
    pub fn new(space: &'a SearchSpace, device: &'a DeviceProfile, plans: PlanChoice) -> Self {
        let batch = space.workload.batch;
        let evaluators = space
            .dims
            .precisions
            .iter()
            .map(|&precisions| {
                Evaluator::new(device, RunSettings { batch, precisions, logits_for_all_prompt_tokens: false }, plans)
                    .sharing()
            })
            .collect();
        let budget_bytes = space.constraints.memory_budget_bytes.unwrap_or(device.usable_memory_bytes);
        Scorer {
            space,
            device,
            evaluators,
            budget_bytes,
            loss: LossModel::new(space.tokens),
            aspect_factors: AspectFactors::default(),
            evals: Vec::new(),
            passed: Vec::new(),
        }
    }

    pub fn budget_bytes(&self) -> f64 {
        self.budget_bytes
    }

    /// Every figure of a candidate, for reports.
    pub fn detail(&mut self, arch: &Architecture, precision_index: usize) -> Detail {
        let quality = self.loss.estimate(arch);
        self.detail_with(arch, &arch.layer_groups(), precision_index, quality)
    }

    /// [`Scorer::detail`] with the quality estimate already worked out.
    fn detail_with(
        &mut self,
        arch: &Architecture,
        groups: &LayerGroups,
        precision_index: usize,
        quality: Estimate,
    ) -> Detail {
        let mut evals = std::mem::take(&mut self.evals);
        evals.clear();
        let ev = &mut self.evaluators[precision_index];
        evals.extend(self.space.workload.mix.iter().map(|(s, _)| ev.scenario_in(arch, groups, s)));
        let d = self.assemble(arch, groups, precision_index, quality, None, |i| evals[i]);
        self.evals = evals;
        d
    }

    /// A candidate's figures from its scenarios' evaluations (`eval(i)`: the mix's scenario
    /// `i`) and its stored weight bytes where worked out already.
    fn assemble(
        &self,
        arch: &Architecture,
        groups: &LayerGroups,
        precision_index: usize,
        quality: Estimate,
        weights_bytes: Option<f64>,
        eval: impl Fn(usize) -> ScenarioEval,
    ) -> Detail {
        let w = &self.space.workload;
        let c = &self.space.constraints;
        let settings = self.evaluators[precision_index].settings;
        let (mut prefill, mut decode) = (Point::default(), Point::default());
        let (mut ttft, mut gen_w, mut prompt_w, mut live) = (0.0, 0.0, 0.0, 0.0f64);
        let mut plans = None;
        let mut violates = None;
        let b = settings.batch as f64;
        for (i, (s, weight)) in w.mix.iter().enumerate() {
            let e = eval(i);
            plans.get_or_insert((e.prefill.plan, e.decode.plan));
            let scale =
                |p: Point| Point { flops: p.flops * weight, bytes: p.bytes * weight, time_s: p.time_s * weight };
            prefill.add(scale(e.prefill.point));
            decode.add(scale(e.decode.point));
            ttft += weight * e.prefill.point.time_s;
            gen_w += weight * b * s.generate as f64;
            prompt_w += weight * b * s.prompt as f64;
            live = live.max(e.prefill.live_bytes);
            let tpot = e.decode.point.time_s / s.generate as f64;
            let tps = b * s.generate as f64 / e.decode.point.time_s;
            if violates.is_none() {
                violates = if c.max_ttft_s.is_some_and(|m| e.prefill.point.time_s > m) {
                    Some("max_ttft_s")
                } else if c.max_tpot_s.is_some_and(|m| tpot > m) {
                    Some("max_tpot_s")
                } else if c.min_decode_tokens_per_s.is_some_and(|m| tps < m) {
                    Some("min_decode_tokens_per_s")
                } else {
                    None
                };
            }
        }
        let mut total = prefill;
        total.add(decode);
        let weights_bytes =
            weights_bytes.unwrap_or_else(|| arch.stored_weight_bytes_in(settings.precisions.weights, groups));
        let footprint = footprint_with_weights(
            weights_bytes,
            arch,
            groups,
            w.max_context,
            &settings,
            live,
            self.device,
            self.budget_bytes,
        );
        Detail {
            prefill,
            decode,
            total,
            potential: potential(&total, &crate::roofline::Roof::of(self.device, &settings)),
            ttft_s: ttft,
            tpot_s: decode.time_s / (gen_w / b),
            prefill_tokens_per_s: prompt_w / prefill.time_s,
            decode_tokens_per_s: gen_w / decode.time_s,
            footprint,
            plans: plans.expect("a mix has at least one scenario"),
            violates,
            quality,
            prefill_band: self.device.error_bands.as_ref().and_then(|b| b.prefill),
            decode_band: self.device.error_bands.as_ref().and_then(|b| b.decode),
        }
    }

    /// The parameter count's constraint a candidate fails first, if any.
    fn parameters_fail(&self, params: f64) -> Option<&'static str> {
        let c = &self.space.constraints;
        if c.min_params.is_some_and(|m| params < m) {
            Some(MIN_PARAMS)
        } else if c.max_params.is_some_and(|m| params > m) {
            Some(MAX_PARAMS)
        } else {
            None
        }
    }

    /// Scores a candidate, or names the first constraint it fails.
    pub fn score(&mut self, cand: &Candidate) -> std::result::Result<Scored, &'static str> {
        // Found once for the count, the pricing and the footprint (each would walk the layers).
        let total = cand.arch.parameters_in(&cand.groups);
        if let Some(why) = self.parameters_fail(total as f64) {
            return Err(why);
        }
        let quality = self.prechecked(cand, total)?;
        let d = self.detail_with(&cand.arch, &cand.groups, cand.precision_index, quality);
        self.judged(cand, total, &d)
    }

    /// [`Scorer::score`] for a depth run of candidates that pass the parameter count (`total`:
    /// each one's): one shape at ascending depths, the order a search holds them in (see
    /// [`SearchSpace::depths_after`]). Each result is what `score` gives that candidate; the
    /// run is priced together (see [`Evaluator::scenario_run`]).
    pub fn score_run(
        &mut self,
        run: &[Candidate],
        totals: &[u64],
        out: &mut Vec<std::result::Result<Scored, &'static str>>,
    ) {
        out.clear();
        let mut passed = std::mem::take(&mut self.passed);
        passed.clear();
        for (k, (cand, &total)) in run.iter().zip(totals).enumerate() {
            debug_assert_eq!(self.parameters_fail(total as f64), None);
            match self.prechecked(cand, total) {
                Ok(quality) => {
                    passed.push((k, quality));
                    out.push(Err(""));
                }
                Err(why) => out.push(Err(why)),
            }
        }
        let first = match passed[..] {
            [] => {
                self.passed = passed;
                return;
            }
            // One candidate: priced alone (no lanes to set up).
            [(k, quality)] => {
                let cand = &run[k];
                let d = self.detail_with(&cand.arch, &cand.groups, cand.precision_index, quality);
                out[k] = self.judged(cand, totals[k], &d);
                self.passed = passed;
                return;
            }
            [(first, _), ..] => first,
        };
        let models: Vec<(&Architecture, &LayerGroups)> =
            passed.iter().map(|&(k, _)| (&run[k].arch, &run[k].groups)).collect();
        let lanes = models.len();
        // The mix's scenarios, each for every lane: scenario `i` of lane `j` at `i * lanes + j`.
        let mut evals = std::mem::take(&mut self.evals);
        evals.clear();
        let mut one = Vec::with_capacity(lanes);
        let ev = &mut self.evaluators[run[first].precision_index];
        for (s, _) in &self.space.workload.mix {
            ev.scenario_run(&models, s, &mut one);
            evals.append(&mut one);
        }
        // The run's stacks share their shape and layer groups' kinds: their weight bytes are a
        // sum over the groups, worked out once.
        let weights = self.evaluators[run[first].precision_index].settings.precisions.weights;
        let by_group = run[first].arch.stored_weight_bytes_by_group(weights, &run[first].groups);
        for (j, &(k, quality)) in passed.iter().enumerate() {
            let cand = &run[k];
            let weights_bytes = by_group.as_ref().and_then(|b| b.of(&cand.groups));
            let eval = |i| evals[i * lanes + j];
            let d = self.assemble(&cand.arch, &cand.groups, cand.precision_index, quality, weights_bytes, eval);
            out[k] = self.judged(cand, totals[k], &d);
        }
        self.evals = evals;
        self.passed = passed;
    }

    /// The checks of a candidate that passed its parameter count (`total`) that need no
    /// pricing: its quality estimate, or the first of them it fails.
    fn prechecked(&mut self, cand: &Candidate, total: u64) -> std::result::Result<Estimate, &'static str> {
        let c = &self.space.constraints;
        let params = total as f64;
        // A few flops and a powf (the aspect factor is kept per depth): cheap enough to reject
        // on before any roofline work.
        let factor = self.aspect_factors.get(&self.loss, cand.arch.hidden_size, cand.arch.num_layers);
        let quality = self.loss.estimate_with(&cand.arch, &cand.groups, total, factor);
        if c.min_non_embedding_params.is_some_and(|m| (quality.non_embedding_params as f64) < m) {
            return Err("min_non_embedding_params");
        }
        if c.max_loss.is_some_and(|m| quality.predicted_loss > m) {
            return Err("max_loss");
        }
        // Weights and KV cache alone already over budget: no need to evaluate.
        let p = &cand.precisions;
        let (batch, context) = (self.space.workload.batch, self.space.workload.max_context);
        let kv = cand.arch.cache_bytes_in(&cand.groups, batch, context, p.kv_cache.bytes(), &crate::arch::window_cells);
        if params * p.weights.bytes() + kv > self.budget_bytes {
            return Err("memory_budget");
        }
        Ok(quality)
    }

    /// A priced candidate's score, or the constraint its figures fail.
    fn judged(&self, cand: &Candidate, total: u64, d: &Detail) -> std::result::Result<Scored, &'static str> {
        let params = total as f64;
        if !d.footprint.fits {
            return Err("memory_budget");
        }
        if let Some(v) = d.violates {
            return Err(v);
        }
        let objective = match self.space.objective {
            Objective::Rip => d.potential.rip,
            Objective::DecodeTokensPerS => d.decode_tokens_per_s,
            Objective::Latency => -d.total.time_s,
            Objective::RipPerParam => d.potential.rip / (params / 1e9),
            Objective::Loss => -d.quality.predicted_loss,
        };
        Ok(Scored {
            index: cand.index,
            rip: d.potential.rip,
            parameters: params,
            decode_tokens_per_s: d.decode_tokens_per_s,
            memory_bytes: d.footprint.total_bytes,
            objective,
            predicted_loss: d.quality.predicted_loss,
        })
    }
}

/// How to run a search.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// Worker threads; `None` = all cores.
    pub threads: Option<usize>,
    /// Run only slice `k` of `n` (0-based).
    pub shard: Option<(u64, u64)>,
    /// Refuse spaces larger than this unless `force`.
    pub max_candidates: u64,
    pub force: bool,
    pub progress: bool,
    pub plans: PlanChoice,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            threads: None,
            shard: None,
            max_candidates: 100_000_000,
            force: false,
            progress: false,
            plans: PlanChoice::Fastest,
        }
    }
}

/// Candidates per parallel work item: large enough to amortise, small enough to balance.
const CHUNK: u64 = 4096;

/// The range of positions (in the search order, [`SearchSpace::index_at`]) of shard `k` of `n`.
pub fn shard_range(count: u64, shard: Option<(u64, u64)>) -> (u64, u64) {
    match shard {
        None => (0, count),
        Some((k, n)) => {
            let cut = |i: u64| ((count as u128 * i as u128) / n as u128) as u64;
            (cut(k), cut(k + 1))
        }
    }
}

/// Enumerates and scores a space (or one shard of it).
pub fn run(space: &SearchSpace, device: &DeviceProfile, opts: &SearchOptions) -> Result<Outcome> {
    let count = space.count();
    if count > opts.max_candidates && !opts.force {
        return Err(Error::Usage(format!(
            "{}: {count} candidates is more than {} (about {:.0} s at 1M/s); narrow the space or pass --force",
            space.source_name,
            opts.max_candidates,
            count as f64 / 1e6
        )));
    }
    let (start, end) = shard_range(count, opts.shard);
    let chunks = (end - start).div_ceil(CHUNK);
    let bar = if opts.progress && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let bar = indicatif::ProgressBar::new(end - start);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:40}] {human_pos}/{human_len} candidates, {per_sec}, eta {eta}",
            )
            .expect("valid template"),
        );
        bar.set_message(format!("{} on {}", space.name, device.name));
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    // One scorer and one running tally per worker thread, each taking the next chunk until
    // none is left: its memo stays warm and its front rejects most candidates against a few
    // strong members. (A rayon `fold` starts a fresh scorer and front at every split, 20-odd
    // on 2 threads, whose cold fronts first admit and then merge tens of thousands of
    // members: a tenth more CPU than one thread.) The outcome does not depend on which worker
    // took which chunk: counts add, the best sort, and fronts merge exactly.
    let work = || {
        let next_chunk = std::sync::atomic::AtomicU64::new(0);
        (0..rayon::current_num_threads())
            .into_par_iter()
            .map(|_| {
                let (mut scorer, mut tally) =
                    (Scorer::new(space, device, opts.plans), Tally::new(front_resolution(count)));
                loop {
                    let c = next_chunk.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if c >= chunks {
                        break tally;
                    }
                    let lo = start + c * CHUNK;
                    let hi = (lo + CHUNK).min(end);
                    tally.scan(&mut scorer, space, lo, hi);
                    bar.inc(hi - lo);
                }
            })
            // Tallies merge with their fronts as trees: an outcome's sorted front would be built
            // into a tree again at every merge (a twentieth of a large search).
            .reduce(|| Tally::new(front_resolution(count)), Tally::merge)
            .into_outcome(&space.name, &device.name)
    };
    let outcome = match opts.threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Error::Usage(format!("--threads {n}: {e}")))?
            .install(work),
        None => work(),
    };
    bar.finish_and_clear();
    Ok(outcome)
}

/// What one worker has found so far: counts, its front and its best candidates.
struct Tally {
    candidates: u64,
    feasible: u64,
    invalid: BTreeMap<&'static str, u64>,
    rejected: BTreeMap<&'static str, u64>,
    front: ParetoFront<Scored>,
    top: Vec<Scored>,
}

impl Tally {
    fn new(front_resolution: Option<f64>) -> Tally {
        Tally {
            candidates: 0,
            feasible: 0,
            invalid: BTreeMap::new(),
            rejected: BTreeMap::new(),
            front: ParetoFront::with_resolution(front_resolution),
            top: Vec::new(),
        }
    }

    /// Scores the candidates at positions `lo..hi` of the search order into the tally.
    ///
    /// Where the order holds a shape's deeper candidates next (see
    /// [`SearchSpace::depths_after`]), they are scored as one depth run (see
    /// [`Scorer::score_run`]), and a parameter count's rejection covers the deeper ones too:
    /// past `max_params` they all are, and below `min_params` they all are where the deepest
    /// is. Those are counted as rejected without being built (half of a large space's
    /// candidates).
    fn scan(&mut self, scorer: &mut Scorer, space: &SearchSpace, lo: u64, hi: u64) {
        let mut last = ShapeDigits::default();
        // The run's candidates, built in place: `run[..len]` passed their parameter counts; the
        // slots past it are kept for their buffers.
        let (mut run, mut len) = (Vec::new(), 0);
        let (mut totals, mut results) = (Vec::new(), Vec::new());
        let mut deepest = Candidate::placeholder();
        let mut position = lo;
        while position < hi {
            // This shape's positions from here to the end of its tile (or of the chunk).
            let end = position + 1 + space.depths_after(position).map_or(0, |n| n.min(hi - position - 1));
            // Their candidates' indices, a depth apart (no division per candidate).
            let (start, first, step) = (position, space.index_at(position), space.depth_step(position));
            let index_at = |p: u64| first + (p - start) * step;
            // Whether the deepest of them is below `min_params`, once asked.
            let mut deepest_below_min = None;
            while position < end {
                if run.len() == len {
                    run.push(Candidate::placeholder());
                }
                let cand = &mut run[len];
                if let Err(why) = space.candidate_into(index_at(position), &mut last, cand) {
                    *self.invalid.entry(why.describe()).or_default() += 1;
                    position += 1;
                    continue;
                }
                let total = cand.arch.parameters_in(&cand.groups);
                let Some(why) = scorer.parameters_fail(total as f64) else {
                    position += 1;
                    len += 1;
                    totals.push(total);
                    continue;
                };
                let deeper = end - position - 1;
                let covered = deeper > 0
                    && (why == MAX_PARAMS
                        || why == MIN_PARAMS
                            && *deepest_below_min.get_or_insert_with(|| {
                                space.candidate_into(index_at(end - 1), &mut last, &mut deepest).is_ok_and(|()| {
                                    let d = &deepest;
                                    scorer.parameters_fail(d.arch.parameters_in(&d.groups) as f64) == Some(MIN_PARAMS)
                                })
                            }));
                // Positions this one counts for: itself, and the deeper ones its rejection covers.
                let counted = if covered { 1 + deeper } else { 1 };
                *self.rejected.entry(why).or_default() += counted;
                position += counted;
            }
            if len == 0 {
                continue;
            }
            scorer.score_run(&run[..len], &totals, &mut results);
            for result in results.drain(..) {
                self.offer(result);
            }
            len = 0;
            totals.clear();
        }
        self.candidates += hi - lo;
    }

    /// Counts a scored candidate: feasible (into the best and the front), or rejected.
    fn offer(&mut self, result: std::result::Result<Scored, &'static str>) {
        match result {
            Ok(s) => {
                self.feasible += 1;
                if self.top.len() < TOP_N || better(&s, self.top.last().unwrap()).is_lt() {
                    let at = self.top.partition_point(|t| better(t, &s).is_lt());
                    self.top.insert(at, s);
                    self.top.truncate(TOP_N);
                }
                self.front.insert(s);
            }
            Err(why) => *self.rejected.entry(why).or_default() += 1,
        }
    }

    /// The tally of the union of two disjoint sets of positions (as [`Outcome::merge`]).
    fn merge(mut self, other: Tally) -> Tally {
        self.candidates += other.candidates;
        self.feasible += other.feasible;
        add_counts(&mut self.invalid, other.invalid);
        add_counts(&mut self.rejected, other.rejected);
        self.front.merge(other.front);
        merge_top(&mut self.top, other.top);
        self
    }

    fn into_outcome(self, space: &str, device: &str) -> Outcome {
        let named = |m: BTreeMap<&'static str, u64>| m.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        Outcome {
            candidates: self.candidates,
            invalid: named(self.invalid),
            rejected: named(self.rejected),
            feasible: self.feasible,
            front_resolution: self.front.resolution(),
            front: self.front.into_sorted(),
            top: self.top,
            ..Outcome::empty(space, device)
        }
    }
}
