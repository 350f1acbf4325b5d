//! Calibration: short libtorch kernel runs on this machine (ERT-style: warm-up, repeats, the
//! median and its spread), fitted into ceilings, efficiency curves per operator class and a
//! fixed cost per kernel, written as a device profile.
//!
//! The shapes here are generic (widths 768, 1536, 3072, 12 heads) and never the validation
//! layers' (512, 1024, 2048 wide, 8/16/32 heads): fitting the validation set is not calibration.

use super::kernels::{rms_norm, rope, rope_tables, silu};
use super::target::Target;
use super::timing::Timing;
use super::{host, kind_of, progress, today};
use crate::device::{
    DeviceKind, DeviceProfile, EfficiencyCurve, EfficiencyPoint, EfficiencyTable, Origin, Provenance, MAX_CACHE_SPEEDUP,
};
use crate::dtype::DType;
use crate::error::Result;
use crate::measure::MeasureOptions;
use crate::workload::OpClass;
use std::collections::BTreeMap;
use std::time::Duration;
use tch::{Kind, Tensor};

const F32: usize = 4;

/// The formats calibration times, f32 first (its tables are the profile's default): bf16
/// always (oneDNN runs it on any x86 CPU; CUDA and MPS on macOS 14 have it), f16 on a GPU and
/// where the CPU has native half arithmetic.
fn formats(t: &Target) -> Vec<DType> {
    let mut f = vec![DType::F32, DType::Bf16];
    if !t.is_cpu() {
        f.push(DType::F16);
        return f;
    }
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    if cpuinfo.contains(" avx512_fp16") || cpuinfo.contains(" asimdhp") {
        f.push(DType::F16);
    }
    f
}

/// One timed kernel: its class, work and traffic.
struct Sample {
    /// The format the kernel computes in.
    dtype: DType,
    class: OpClass,
    label: String,
    flops: f64,
    bytes: f64,
    t: Timing,
}

struct Budget<'a> {
    quick: bool,
    /// The device the kernels run on.
    t: &'a Target,
}

/// How densely one format's shapes are swept: the default format in a full run, every other
/// format in a full run, and everything in a quick run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sweep {
    Full,
    Reduced,
    Quick,
}

impl Budget<'_> {
    fn per_kernel(&self) -> Duration {
        Duration::from_millis(if self.quick { 20 } else { 100 })
    }
    fn cold_bytes(&self) -> f64 {
        if self.quick {
            64e6
        } else {
            256e6
        }
    }
}

/// Times `f` over `copies` separately allocated inputs visited in a shuffled order, so each call
/// finds its data in main memory, not in cache (weights and KV caches of a real model).
fn time_cold<T>(copies: &[T], mut f: impl FnMut(&T), b: &Budget) -> Timing {
    let n = copies.len();
    // A fixed permutation (stride coprime to n) rather than a walk the prefetcher can follow.
    let stride = (0..).map(|k| n / 2 + 1 + k).find(|s| gcd(*s, n) == 1).unwrap_or(1);
    let mut i = 0;
    b.t.time(
        || {
            i = (i + stride) % n;
            f(&copies[i]);
        },
        n.min(8),
        100_000,
        b.per_kernel() * 2,
    )
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn copies_for(bytes_each: f64, b: &Budget) -> usize {
    ((b.cold_bytes() / bytes_each).ceil() as usize).clamp(2, 4096)
}

/// A quick compute-and-memory probe, run before and after to notice the machine moving.
pub fn probe(t: &Target) -> (f64, f64) {
    let (a, w) = (t.randn(&[512, 1536], Kind::Float), t.randn(&[1536, 1536], Kind::Float));
    let g = t.time(|| drop(a.matmul(&w)), 2, 50, Duration::from_millis(150));
    // Into a preallocated output: a fresh 64 MB result would measure page faults instead.
    let n = 16 << 20;
    let (x, y, z) = (t.filled(&[n], Kind::Float), t.filled(&[n], Kind::Float), t.filled(&[n], Kind::Float));
    let m = t.time(|| drop(x.add_out(&z, &y)), 2, 50, Duration::from_millis(150));
    (2.0 * 512.0 * 1536.0 * 1536.0 / g.median_s, 3.0 * (n * F32 as i64) as f64 / m.median_s)
}

/// Adds an f32 sample.
fn push_f32(samples: &mut Vec<Sample>, class: OpClass, label: String, flops: f64, bytes: f64, t: Timing) {
    samples.push(Sample { dtype: DType::F32, class, label, flops, bytes, t });
}

/// 1. The fixed cost of a tiny kernel, in context: a chain of dependent small operations with
///    fresh outputs and views, as inside a layer (back-to-back identical calls read ~25% low).
fn tiny_kernel(b: &Budget) -> Timing {
    let (one, other) = (b.t.randn(&[1, 8], Kind::Float), b.t.randn(&[1, 8], Kind::Float));
    const CHAIN: usize = 16;
    let chain = b.t.time(
        || {
            let mut x = one.shallow_clone();
            for i in 0..CHAIN / 2 {
                x = if i % 2 == 0 { &x + &other } else { &x * &other };
                x = x.view([8, 1]).transpose(0, 1).contiguous();
            }
            drop(x);
        },
        20,
        5000,
        b.per_kernel(),
    );
    Timing { median_s: chain.median_s / CHAIN as f64, cv: chain.cv }
}

/// 2. STREAM copy / scale / add / triad, in cache to well past the last-level cache: each run
///    as (kernel, array bytes, bytes/s), and as samples.
fn stream_runs(b: &Budget, samples: &mut Vec<Sample>) -> Vec<(String, f64, f64)> {
    let sizes_mb: &[f64] = if b.quick { &[1.0, 16.0, 256.0] } else { &[0.25, 1.0, 4.0, 16.0, 64.0, 256.0] };
    let mut stream: Vec<(String, f64, f64)> = Vec::new(); // (kernel, array bytes, bytes/s)
    for &mb in sizes_mb {
        let n = (mb * 1e6 / F32 as f64) as i64;
        let (x, y, z) = (b.t.filled(&[n], Kind::Float), b.t.filled(&[n], Kind::Float), b.t.filled(&[n], Kind::Float));
        let s = Tensor::from(3.0f32).to_device(b.t.device);
        let arr = (n as usize * F32) as f64;
        let mut out = z.shallow_clone();
        type Kernel<'a> = (&'static str, f64, Box<dyn FnMut() + 'a>);
        let runs: [Kernel; 4] = [
            ("copy", 2.0, Box::new(|| out.copy_(&x))),
            ("scale", 2.0, Box::new(|| drop(x.mul_scalar_out(&z, 3.0)))),
            ("add", 3.0, Box::new(|| drop(x.add_out(&z, &y)))),
            ("triad", 3.0, Box::new(|| drop(x.addcmul_out(&z, &y, &s)))),
        ];
        for (name, arrays, mut f) in runs {
            let t = b.t.time(&mut f, 2, 1000, b.per_kernel());
            stream.push((name.to_string(), arr, arrays * arr / t.median_s));
            push_f32(samples, OpClass::Elementwise, format!("stream {name} {mb} MB"), 0.0, arrays * arr, t);
        }
    }
    stream
}

/// 8. Embedding gather and KV-cache append.
fn gather_and_kv_append(b: &Budget, samples: &mut Vec<Sample>) {
    let widths: &[i64] = if b.quick { &[1, 64, 2048] } else { &[1, 8, 64, 256, 2048] };
    let heads = 12;
    let table = b.t.randn(&[32000, 1536], Kind::Float);
    let mut cache = b.t.randn(&[1, heads, 4096, 64], Kind::Float);
    for &rows in widths {
        let idx = Tensor::randint(32000, [rows], (Kind::Int64, b.t.device));
        let t = b.t.time(|| drop(table.index_select(0, &idx)), 3, 2000, b.per_kernel());
        push_f32(samples, OpClass::Gather, format!("gather {rows}"), 0.0, 2.0 * (rows * 1536) as f64 * 4.0, t);
        let len = rows.min(4096);
        let k = b.t.randn(&[1, heads, len, 64], Kind::Float);
        let t = b.t.time(|| cache.narrow(2, 4096 - len, len).copy_(&k), 3, 2000, b.per_kernel());
        push_f32(samples, OpClass::KvWrite, format!("kv append {len}"), 0.0, 2.0 * (heads * len * 64) as f64 * 4.0, t);
    }
    let _ = &mut cache;
}

/// Efficiency tables from the samples: each sample's time beyond the fixed cost, against the
/// compute or memory roof it is bound by; f32's tables and each other format's. Warnings name
/// samples above a roof.
#[allow(clippy::type_complexity)]
fn efficiency_tables(
    samples: &[Sample],
    peak: &BTreeMap<DType, f64>,
    bandwidth: f64,
    cache_bandwidth: f64,
    fixed: f64,
    warnings: &mut Vec<String>,
) -> (BTreeMap<OpClass, EfficiencyTable>, BTreeMap<DType, BTreeMap<OpClass, EfficiencyTable>>) {
    type Points = (Vec<EfficiencyPoint>, Vec<EfficiencyPoint>);
    let mut points: BTreeMap<DType, BTreeMap<OpClass, Points>> = BTreeMap::new();
    for s in samples {
        let pi = peak[&s.dtype];
        // Time beyond the fixed launch cost; never below a twentieth of the whole.
        let busy = (s.t.median_s - fixed).max(0.05 * s.t.median_s);
        let (c, m) = points.entry(s.dtype).or_default().entry(s.class).or_default();
        if s.flops / pi >= s.bytes / bandwidth {
            let eta = s.flops / (busy * pi);
            // The peak sample itself lands a little above 1 once the fixed cost is removed.
            if eta > 1.02 {
                warnings.push(format!("{} reached {:.2}x the {} GEMM peak", s.label, eta, s.dtype));
            }
            c.push(EfficiencyPoint { size: s.flops, efficiency: eta.clamp(1e-4, 1.0) });
        } else {
            let eta = s.bytes / (busy * bandwidth);
            if s.bytes / s.t.median_s > cache_bandwidth * 1.05 {
                warnings.push(format!(
                    "{} moved {:.0} GB/s, above the best STREAM run",
                    s.label,
                    s.bytes / s.t.median_s / 1e9
                ));
            }
            m.push(EfficiencyPoint { size: s.bytes, efficiency: eta.clamp(1e-4, MAX_CACHE_SPEEDUP) });
        }
    }
    let tables = |classes: BTreeMap<OpClass, Points>| -> BTreeMap<OpClass, EfficiencyTable> {
        classes
            .into_iter()
            // Kernel-level calibration indexes compute efficiency by FLOPs (`ComputeSize::Flops`).
            .map(|(class, (c, m))| {
                (class, EfficiencyTable { compute: curve(c), memory: curve(m), ..Default::default() })
            })
            .collect()
    };
    let efficiency = tables(points.remove(&DType::F32).unwrap_or_default());
    let efficiency_by_format: BTreeMap<DType, BTreeMap<OpClass, EfficiencyTable>> =
        points.into_iter().map(|(d, classes)| (d, tables(classes))).collect();
    (efficiency, efficiency_by_format)
}

/// What a calibration's notes record beside the profile's figures.
struct Notes<'a> {
    cache_bandwidth: f64,
    /// The probe (FLOP/s, bytes/s) before and after.
    probes: ((f64, f64), (f64, f64)),
    median_cv: f64,
    tiny_cv: f64,
    samples: &'a [Sample],
    /// The formats other than f32 with tables of their own.
    formats: Vec<DType>,
    warnings: Vec<String>,
    stage_s: Vec<String>,
    stream: &'a [(String, f64, f64)],
}

/// The raw measurements behind the tables, so a person can check any of them.
fn calibration_notes(n: Notes) -> BTreeMap<String, serde_json::Value> {
    let mut notes = BTreeMap::new();
    let json = |v: f64| serde_json::Value::from(v);
    notes.insert("cache_bandwidth_bytes_per_s".into(), json(n.cache_bandwidth));
    notes.insert("probe_before_flop_per_s".into(), json(n.probes.0 .0));
    notes.insert("probe_before_bytes_per_s".into(), json(n.probes.0 .1));
    notes.insert("probe_after_flop_per_s".into(), json(n.probes.1 .0));
    notes.insert("probe_after_bytes_per_s".into(), json(n.probes.1 .1));
    notes.insert("median_cv".into(), json(n.median_cv));
    notes.insert("tiny_kernel_cv".into(), json(n.tiny_cv));
    notes.insert("kernels_timed".into(), serde_json::Value::from(n.samples.len()));
    notes.insert(
        "efficiency_tables_for".into(),
        serde_json::Value::from(
            std::iter::once("f32 (default)".to_string())
                .chain(n.formats.iter().map(|d| d.to_string()))
                .collect::<Vec<_>>(),
        ),
    );
    notes.insert("warnings".into(), serde_json::Value::from(n.warnings));
    notes.insert("stages_elapsed".into(), serde_json::Value::from(n.stage_s));
    // The raw measurements behind the tables, so a person can check any of them.
    notes.insert(
        "kernels".into(),
        serde_json::Value::from(
            n.samples
                .iter()
                .map(|s| format!("{}: median {:.3e} s, cv {:.3}", s.label, s.t.median_s, s.t.cv))
                .collect::<Vec<_>>(),
        ),
    );
    notes.insert(
        "stream".into(),
        serde_json::Value::from(
            n.stream
                .iter()
                .map(|(k, a, bw)| format!("{k} {:.2} MB: {:.1} GB/s", a / 1e6, bw / 1e9))
                .collect::<Vec<_>>(),
        ),
    );
    notes
}

/// When each stage ended, for the notes.
struct Laps {
    clock: std::time::Instant,
    elapsed: Vec<String>,
}

impl Laps {
    fn lap(&mut self, name: &str) {
        self.elapsed.push(format!("{name} {:.2} s", self.clock.elapsed().as_secs_f64()));
    }
}

/// 3-7. Matrix products, attention, batched products and the elementwise kernels, in every
///      format the device computes in: f32 in full, then the half formats (their kernels are
///      different libraries with different small-size behaviour, not f32 at twice the speed).
///      Returns the best GEMM rate per format.
fn kernels_by_format(
    b: &Budget,
    bar: &indicatif::ProgressBar,
    laps: &mut Laps,
    samples: &mut Vec<Sample>,
) -> BTreeMap<DType, f64> {
    let mut peak = BTreeMap::<DType, f64>::new();
    for (i, dtype) in formats(b.t).into_iter().enumerate() {
        let sweep = match (i, b.quick) {
            (_, true) => Sweep::Quick,
            (0, false) => Sweep::Full,
            _ => Sweep::Reduced,
        };
        // The default format's full sweep times every shape; the others stop where their pace
        // says a call would outlast the budget.
        let pace = (sweep != Sweep::Full).then(|| Pace::measure(kind_of(dtype), dtype.bytes(), b));
        bar.set_message(format!("gemm, gemv {dtype}"));
        matmuls(dtype, sweep, pace, b, samples, &mut peak);
        laps.lap(&format!("gemm, gemv {dtype}"));
        bar.set_message(format!("attention, bmm {dtype}"));
        attention(dtype, sweep, pace, b, samples);
        laps.lap(&format!("attention, bmm {dtype}"));
        bar.set_message(format!("elementwise {dtype}"));
        elementwise(dtype, sweep, b, samples);
        laps.lap(&format!("elementwise {dtype}"));
        bar.inc(1);
    }

    peak
}

/// What the timed stages found.
struct Stages {
    /// The probe (FLOP/s, bytes/s) before and after.
    before: (f64, f64),
    after: (f64, f64),
    tiny: Timing,
    /// (kernel, array bytes, bytes/s) of each STREAM run.
    stream: Vec<(String, f64, f64)>,
    peak: BTreeMap<DType, f64>,
    samples: Vec<Sample>,
}

/// Every timed stage in turn, between two probes, with a progress bar.
fn run_stages(b: &Budget, opts: &MeasureOptions, laps: &mut Laps) -> Stages {
    let before = probe(b.t);
    laps.lap("probe");
    let mut samples: Vec<Sample> = Vec::new();
    let stages = 5 + formats(b.t).len() as u64;
    let bar = progress(stages, opts.progress);

    bar.set_message("tiny kernels");
    let tiny = tiny_kernel(b);
    bar.inc(1);
    laps.lap("tiny kernels");

    bar.set_message("stream");
    let stream = stream_runs(b, &mut samples);
    bar.inc(1);
    laps.lap("stream");

    let peak = kernels_by_format(b, &bar, laps, &mut samples);

    bar.set_message("gather, kv append");
    gather_and_kv_append(b, &mut samples);
    bar.inc(1);
    laps.lap("gather, kv append");
    let after = probe(b.t);
    laps.lap("probe");
    bar.inc(1);
    bar.finish_and_clear();
    Stages { before, after, tiny, stream, peak, samples }
}

/// Main-memory bandwidth (the median of the largest STREAM runs) and the best cache bandwidth.
fn bandwidths(stream: &[(String, f64, f64)]) -> (f64, f64) {
    let largest = stream.iter().map(|s| s.1).fold(0.0, f64::max);
    let mut dram: Vec<f64> = stream.iter().filter(|s| s.1 == largest).map(|s| s.2).collect();
    dram.sort_by(f64::total_cmp);
    let bandwidth = dram[dram.len() / 2];
    let cache_bandwidth = stream.iter().map(|s| s.2).fold(0.0, f64::max);
    (bandwidth, cache_bandwidth)
}

pub fn calibrate(opts: &MeasureOptions) -> Result<DeviceProfile> {
    // First: libtorch settles whether CUDA is there at its first question.
    let target = Target::open(opts.on, "calibrate")?;
    let b = Budget { quick: opts.quick, t: &target };
    let threads = super::set_threads(opts.threads);
    tch::manual_seed(0);
    let mut laps = Laps { clock: std::time::Instant::now(), elapsed: Vec::new() };
    let Stages { before, after, tiny, stream, mut peak, samples } = run_stages(&b, opts, &mut laps);

    // Ceilings: the best GEMM per format; main-memory bandwidth from the largest STREAM runs.
    let (bandwidth, cache_bandwidth) = bandwidths(&stream);
    let fixed = tiny.median_s;
    // A format's compute ceiling is its fastest product or attention kernel: where a format has
    // no fast GEMM (bf16 without AVX-512), its fused attention may still be far quicker.
    for s in &samples {
        if matches!(s.class, OpClass::Matmul | OpClass::BatchedMatmul | OpClass::Attention) {
            let best = peak.entry(s.dtype).or_insert(0.0);
            *best = best.max(s.flops / s.t.median_s);
        }
    }

    let mut warnings = Vec::new();
    let (efficiency, efficiency_by_format) =
        efficiency_tables(&samples, &peak, bandwidth, cache_bandwidth, fixed, &mut warnings);
    let mut spread: Vec<f64> = samples.iter().map(|s| s.t.cv).collect();
    let drift = ((after.0 / before.0 - 1.0).abs()).max((after.1 / before.1 - 1.0).abs());
    if drift > 0.10 {
        warnings.push(format!(
            "the machine moved during calibration: probe {:.1} GFLOP/s, {:.1} GB/s before; {:.1}, {:.1} after",
            before.0 / 1e9,
            before.1 / 1e9,
            after.0 / 1e9,
            after.1 / 1e9
        ));
    }
    spread.sort_by(f64::total_cmp);
    let host = host(threads, b.t);
    let notes = calibration_notes(Notes {
        cache_bandwidth,
        probes: (before, after),
        median_cv: spread[spread.len() / 2],
        tiny_cv: tiny.cv,
        samples: &samples,
        formats: efficiency_by_format.keys().copied().collect(),
        warnings,
        stage_s: laps.elapsed,
        stream: &stream,
    });
    let (memory, usable, usable_source) = memory_of(b.t);
    let description = if b.t.is_cpu() {
        format!("{} ({} threads), calibrated through libtorch {}", host.cpu_model, threads, host.libtorch_version)
    } else {
        format!("{} (host {}), calibrated through libtorch {}", host.device, host.cpu_model, host.libtorch_version)
    };
    Ok(DeviceProfile {
        name: "this-machine".into(),
        description,
        kind: b.t.kind(),
        memory_bytes: memory,
        usable_memory_bytes: usable,
        usable_memory_source: usable_source.into(),
        bandwidth_bytes_per_s: bandwidth,
        peak_flops: peak,
        emulated_formats: Vec::new(),
        kernel_overhead_s: fixed,
        expert_overhead_s: 0.0,
        pass_overhead_s: 0.0,
        on_chip_bytes: None,
        weight_cache_bytes: None,
        efficiency,
        efficiency_by_format,
        product_efficiency: BTreeMap::new(),
        engine: None,
        error_bands: None,
        thread_scaling: Vec::new(),
        provenance: Provenance {
            origin: Origin::Calibrated,
            source: format!(
                "rooflinebench calibrate{}{}: {} kernels timed",
                if b.t.is_cpu() { String::new() } else { format!(" --on {}", b.t.on_name()) },
                if opts.quick { " --quick" } else { "" },
                samples.len()
            ),
            date: today(),
        },
        host: Some(host),
        notes,
    })
}

/// The memory models are placed in on the calibrated device: the host's, a discrete GPU's
/// (from nvidia-smi), or Apple's unified memory; with what of it a model may use and why.
fn memory_of(t: &Target) -> (f64, f64, &'static str) {
    let host = super::total_memory_bytes();
    match t.kind() {
        DeviceKind::Gpu => match t.memory_bytes {
            Some(m) => {
                (m, 0.95 * m, "95% of the GPU's memory (nvidia-smi); the CUDA context takes the rest (assumption)")
            }
            None => (host, 0.85 * host, "no nvidia-smi: the host's memory stands in for the GPU's (set it by hand)"),
        },
        DeviceKind::Soc => {
            (host, 0.75 * host, "75% of unified memory, about Metal's default GPU working-set limit (assumption)")
        }
        _ => (host, 0.85 * host, "85% of MemTotal from /proc/meminfo, leaving room for the OS (assumption)"),
    }
}

/// Sorted, with points closer than 5% in size merged (their efficiencies averaged).
fn curve(mut pts: Vec<EfficiencyPoint>) -> EfficiencyCurve {
    pts.sort_by(|a, b| a.size.total_cmp(&b.size));
    let mut out: Vec<(f64, f64, f64)> = Vec::new(); // (log size sum, efficiency sum, count)
    for p in pts {
        match out.last_mut() {
            Some(last) if p.size <= (last.0 / last.2).exp() * 1.05 => {
                last.0 += p.size.ln();
                last.1 += p.efficiency;
                last.2 += 1.0;
            }
            _ => out.push((p.size.ln(), p.efficiency, 1.0)),
        }
    }
    EfficiencyCurve {
        points: out.into_iter().map(|(l, e, n)| EfficiencyPoint { size: (l / n).exp(), efficiency: e / n }).collect(),
    }
}

/// How fast a format's products run here, from one small warm product and one small GEMV:
/// enough to skip the shapes that would take seconds a call (bf16 without AVX-512).
#[derive(Clone, Copy)]
struct Pace {
    flop_per_s: f64,
    byte_per_s: f64,
}

impl Pace {
    fn measure(kind: Kind, e: f64, b: &Budget) -> Pace {
        let (a, w, x) = (b.t.randn(&[32, 512], kind), b.t.randn(&[512, 512], kind), b.t.randn(&[1, 512], kind));
        let g = b.t.time(|| drop(a.matmul(&w)), 1, 20, Duration::from_millis(20));
        let v = b.t.time(|| drop(x.matmul(&w)), 1, 50, Duration::from_millis(10));
        Pace { flop_per_s: 2.0 * 32.0 * 512.0 * 512.0 / g.median_s, byte_per_s: 512.0 * 512.0 * e / v.median_s }
    }

    /// Whether a kernel of this work is predicted to outlast the per-kernel budget.
    fn too_long(pace: Option<Pace>, flops: f64, bytes: f64, b: &Budget) -> bool {
        pace.is_some_and(|p| (flops / p.flop_per_s).max(bytes / p.byte_per_s) > b.per_kernel().as_secs_f64())
    }
}

/// Whether one call outlasted the per-kernel budget: the larger sizes of its family would
/// blow the calibration's time limit, so the sweep stops there.
fn too_slow(t: &Timing, b: &Budget) -> bool {
    t.median_s > b.per_kernel().as_secs_f64()
}

/// GEMM (prefill shapes) and GEMV (decode shapes) with weights read cold from main memory (copies
/// visited in turn), as each layer of a real model does; with few rows a product is still
/// partly bound by reading its weights. `pace`: the measured speed of a format not swept in
/// full, to skip shapes that would outlast the budget.
fn matmuls(
    dtype: DType,
    sweep: Sweep,
    pace: Option<Pace>,
    b: &Budget,
    samples: &mut Vec<Sample>,
    peak: &mut BTreeMap<DType, f64>,
) {
    let (kind, e) = (kind_of(dtype), dtype.bytes());
    let (shapes, rows): (&[(i64, i64)], &[i64]) = match sweep {
        Sweep::Full => (&[(768, 768), (1536, 1536), (1536, 6144), (3072, 3072)], &[32, 64, 128, 256, 512, 1024, 2048]),
        Sweep::Reduced => (&[(768, 768), (1536, 1536), (1536, 6144)], &[32, 128, 512, 2048]),
        Sweep::Quick => (&[(768, 768), (1536, 6144)], &[32, 512]),
    };
    // Ascending in FLOPs, so a format with no fast path (bf16 on a CPU without AVX-512 runs
    // at about 2 GFLOP/s) stops at the first product that outgrows the budget.
    let mut products: Vec<(i64, i64, i64)> =
        shapes.iter().flat_map(|&(k, n)| rows.iter().map(move |&m| (m, k, n))).collect();
    products.sort_by_key(|&(m, k, n)| (m * k * n, k, n));
    let mut copies: BTreeMap<(i64, i64), Vec<Tensor>> = BTreeMap::new();
    for (i, (m, k, n)) in products.into_iter().enumerate() {
        let bytes_w = (k * n) as f64 * e;
        // The smallest is always timed, so every format has a table.
        if i > 0 && Pace::too_long(pace, 2.0 * (m * k * n) as f64, bytes_w, b) {
            break;
        }
        let ws = copies
            .entry((k, n))
            .or_insert_with(|| (0..copies_for(bytes_w, b)).map(|_| b.t.filled(&[k, n], kind)).collect());
        let a = b.t.randn(&[m, k], kind);
        let t = time_cold(ws, |w| drop(a.matmul(w)), b);
        let flops = 2.0 * (m * k * n) as f64;
        let bytes = (m * k + k * n + m * n) as f64 * e;
        samples.push(Sample {
            dtype,
            class: OpClass::Matmul,
            label: format!("gemm {dtype} {m}x{k}x{n}"),
            flops,
            bytes,
            t,
        });
        if too_slow(&t, b) {
            break;
        }
    }
    drop(copies);
    if let Some(p) = pace {
        // The half formats reach their peak only on large products (oneDNN's blocked path),
        // when they have one: skip products their pace says would outlast the budget.
        for &(m, k, n) in &[(512i64, 3072i64, 3072i64), (1024, 1536, 6144)] {
            let flops = 2.0 * (m * k * n) as f64;
            if flops / p.flop_per_s > b.per_kernel().as_secs_f64() / 4.0 {
                continue;
            }
            let (a, w) = (b.t.randn(&[m, k], kind), b.t.randn(&[k, n], kind));
            let t = b.t.time(|| drop(a.matmul(&w)), 2, 200, b.per_kernel());
            let best = peak.entry(dtype).or_insert(0.0);
            *best = best.max(flops / t.median_s);
        }
    }
    let gemv: &[(i64, i64)] = match sweep {
        Sweep::Full => &[(256, 256), (768, 768), (1536, 1536), (1536, 6144), (3072, 3072), (3072, 12288)],
        Sweep::Reduced => &[(256, 256), (768, 768), (1536, 6144), (3072, 12288)],
        Sweep::Quick => &[(768, 768), (1536, 6144), (3072, 12288)],
    };
    for (i, &(k, n)) in gemv.iter().enumerate() {
        let bytes_w = (k * n) as f64 * e;
        if i > 0 && Pace::too_long(pace, 0.0, bytes_w, b) {
            break;
        }
        let ws: Vec<Tensor> = (0..copies_for(bytes_w, b)).map(|_| b.t.filled(&[k, n], kind)).collect();
        let x = b.t.randn(&[1, k], kind);
        let t = time_cold(&ws, |w| drop(x.matmul(w)), b);
        let bytes = bytes_w + (k + n) as f64 * e;
        let label = format!("gemv {dtype} {k}x{n} cold");
        samples.push(Sample { dtype, class: OpClass::Matmul, label, flops: 2.0 * (k * n) as f64, bytes, t });
        if too_slow(&t, b) {
            break;
        }
    }
}

/// Fused attention (causal prefill; decode against a cold KV cache) and batched products
/// (unfused attention, MLA absorption).
fn attention(dtype: DType, sweep: Sweep, pace: Option<Pace>, b: &Budget, samples: &mut Vec<Sample>) {
    let (kind, e) = (kind_of(dtype), dtype.bytes());
    let heads = 12;
    type Lengths = &'static [(i64, i64)];
    let (prefill, decode): (Lengths, Lengths) = match sweep {
        Sweep::Full => (
            &[(256, 64), (1024, 64), (3072, 64), (384, 128), (1536, 128)],
            &[(384, 64), (1536, 64), (6144, 64), (384, 128), (3072, 128)],
        ),
        Sweep::Reduced => (&[(256, 64), (1024, 64)], &[(384, 64), (1536, 64), (6144, 64)]),
        Sweep::Quick => (&[(1024, 64)], &[(1536, 64)]),
    };
    let mut prefill = prefill.to_vec();
    prefill.sort_by_key(|&(len, hd)| (len * len * hd, hd));
    let mut decode = decode.to_vec();
    decode.sort_by_key(|&(ctx, hd)| (ctx * hd, hd));
    for (len, hd) in prefill {
        let qkv: Vec<Tensor> = (0..3).map(|_| b.t.randn(&[1, heads, len, hd], kind)).collect();
        let t = b.t.time(
            || {
                drop(Tensor::scaled_dot_product_attention(
                    &qkv[0],
                    &qkv[1],
                    &qkv[2],
                    None::<Tensor>,
                    0.0,
                    true,
                    None,
                    false,
                ))
            },
            2,
            100,
            b.per_kernel(),
        );
        let pairs = (len * (len + 1) / 2) as f64;
        let flops = heads as f64 * pairs * (4.0 * hd as f64 + 5.0);
        let bytes = 4.0 * (heads * len * hd) as f64 * e;
        let label = format!("sdpa {dtype} prefill {len} hd{hd}");
        samples.push(Sample { dtype, class: OpClass::Attention, label, flops, bytes, t });
        if too_slow(&t, b) {
            break;
        }
    }
    for (ctx, hd) in decode {
        let kv_bytes = 2.0 * (heads * ctx * hd) as f64 * e;
        let kvs: Vec<(Tensor, Tensor)> = (0..copies_for(kv_bytes, b))
            .map(|_| (b.t.filled(&[1, heads, ctx, hd], kind), b.t.filled(&[1, heads, ctx, hd], kind)))
            .collect();
        let q = b.t.randn(&[1, heads, 1, hd], kind);
        let t = time_cold(
            &kvs,
            |(k, v)| drop(Tensor::scaled_dot_product_attention(&q, k, v, None::<Tensor>, 0.0, false, None, false)),
            b,
        );
        let flops = heads as f64 * ctx as f64 * (4.0 * hd as f64 + 5.0);
        let label = format!("sdpa {dtype} decode {ctx} hd{hd} cold");
        samples.push(Sample { dtype, class: OpClass::Attention, label, flops, bytes: kv_bytes, t });
        if too_slow(&t, b) {
            break;
        }
    }
    let bmms: &[(i64, i64, i64)] = match sweep {
        Sweep::Full => &[(1, 96, 384), (1, 96, 1536), (1, 192, 6144), (128, 64, 128), (512, 64, 512), (1536, 64, 1536)],
        Sweep::Reduced => &[(1, 96, 1536), (128, 64, 128), (512, 64, 512)],
        Sweep::Quick => &[(1, 96, 1536), (128, 64, 128)],
    };
    for (i, &(m, k, n)) in bmms.iter().enumerate() {
        if i > 0 && Pace::too_long(pace, 2.0 * (heads * m * k * n) as f64, 0.0, b) {
            break;
        }
        let (x, y) = (b.t.randn(&[heads, m, k], kind), b.t.randn(&[heads, k, n], kind));
        let t = b.t.time(|| drop(x.bmm(&y)), 2, 200, b.per_kernel());
        let bytes = (heads * (m * k + k * n + m * n)) as f64 * e;
        let flops = 2.0 * (heads * m * k * n) as f64;
        let label = format!("bmm {dtype} {heads}x{m}x{k}x{n}");
        samples.push(Sample { dtype, class: OpClass::BatchedMatmul, label, flops, bytes, t });
        if too_slow(&t, b) {
            break;
        }
    }
}

/// Elementwise, normalisation, softmax and RoPE kernels over sizes (fresh activations: warm).
fn elementwise(dtype: DType, sweep: Sweep, b: &Budget, samples: &mut Vec<Sample>) {
    let (kind, e) = (kind_of(dtype), dtype.bytes());
    let widths: &[i64] = match sweep {
        Sweep::Full => &[1, 8, 64, 256, 2048],
        Sweep::Reduced => &[1, 64, 2048],
        Sweep::Quick => &[64],
    };
    let heads = 12;
    for &rows in widths {
        let width = 1536;
        let n = (rows * width) as f64;
        let (x, y, w) = (b.t.randn(&[rows, width], kind), b.t.randn(&[rows, width], kind), b.t.randn(&[width], kind));
        let mut push = |class, label: String, flops, bytes, t| {
            samples.push(Sample { dtype, class, label: format!("{label} {dtype} {rows}x{width}"), flops, bytes, t })
        };
        let t = b.t.time(|| drop(&x + &y), 3, 2000, b.per_kernel());
        push(OpClass::Elementwise, "add".into(), n, 3.0 * n * e, t);
        let t = b.t.time(|| drop(&x * &y), 3, 2000, b.per_kernel());
        push(OpClass::Elementwise, "mul".into(), n, 3.0 * n * e, t);
        let t = b.t.time(|| drop(silu(&x)), 3, 2000, b.per_kernel());
        push(OpClass::Elementwise, "silu".into(), 5.0 * n, 2.0 * n * e, t);
        let t = b.t.time(|| drop(rms_norm(&x, &w)), 3, 2000, b.per_kernel());
        push(OpClass::Norm, "rmsnorm".into(), 4.0 * n, 2.0 * n * e + width as f64 * e, t);
        let t = b.t.time(|| drop(x.softmax(-1, kind)), 3, 2000, b.per_kernel());
        push(OpClass::Softmax, "softmax".into(), 5.0 * n, 2.0 * n * e, t);
        let (hd, tokens) = (64, rows.max(1));
        let q = b.t.randn(&[1, heads, tokens, hd], kind);
        let (cos, sin) = rope_tables(0, tokens, hd, kind, b.t.device);
        let rn = (heads * tokens * hd) as f64;
        let t = b.t.time(|| drop(rope(&q, &cos, &sin)), 3, 2000, b.per_kernel());
        push(OpClass::Rope, format!("rope {heads}x{tokens}x{hd}"), 3.0 * rn, 2.0 * rn * e, t);
    }
}
