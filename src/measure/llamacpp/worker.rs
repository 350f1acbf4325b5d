//! The worker process: `rooflinebench engine-worker` reads one job (JSON) on stdin, runs it on
//! llama.cpp and prints the result (JSON) on stdout. Running the engine in its own process
//! keeps a ggml abort, an out-of-memory kill or an interrupt from taking the tool with it, and
//! keeps llama.cpp's OpenMP threads apart from libtorch's.

use super::ffi::{self, Context, ContextSettings, Model};
use super::rounds::{after_round, Rounds};
use super::{BenchResult, BuiltFile, Job, JobResult, Sample, Test};
use crate::arch::gguf::{file_type, gguf_layout};
use crate::dtype::{DType, TensorType};
use std::io::Read;
use std::path::Path;
use std::time::Instant;

/// The engine is compiled in: every command that needs it may run (the stub refuses).
pub fn require(_command: &'static str) -> crate::error::Result<()> {
    Ok(())
}

/// Entry point of the hidden `engine-worker` subcommand: the exit code, 0 with a result on
/// stdout or 3 with the reason on stderr (the stub's is an error saying how to build).
pub fn main() -> crate::error::Result<i32> {
    Ok(serve())
}

/// Reads the job, runs it and answers.
fn serve() -> i32 {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("engine worker: reading the job: {e}");
        return 3;
    }
    let job: Job = match serde_json::from_str(&input) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("engine worker: malformed job: {e}");
            return 3;
        }
    };
    match run(job) {
        Ok(result) => {
            println!("{}", serde_json::to_string(&result).expect("results serialise"));
            0
        }
        Err(e) => {
            eprintln!("{e}");
            3
        }
    }
}

fn run(job: Job) -> Result<JobResult, String> {
    match job {
        Job::Build { arch, context_length, formats, dir, seed, threads } => {
            let layout = gguf_layout(&arch, context_length).map_err(|e| e.to_string())?;
            // NAME.FORMAT.gguf; not with_extension, which would cut a dotted name ("Qwen2.5-0.5B").
            let file = |format: &str| dir.join(format!("{}.{format}.gguf", arch.name));
            let f16 = file("f16");
            ffi::write_gguf(&layout, &f16, seed)?;
            let mut files = Vec::new();
            for format in formats {
                let path = if format == DType::F16 {
                    f16.clone()
                } else {
                    let path = file(format.name());
                    let ftype = file_type(format).ok_or_else(|| format!("{format} is not a GGUF format"))?;
                    ffi::quantize(&f16, &path, ftype, threads)?;
                    path
                };
                files.push(inspect(&path, format)?);
            }
            if !files.iter().any(|f| f.path == f16) {
                let _ = std::fs::remove_file(&f16);
            }
            Ok(JobResult::Built(files))
        }
        Job::Contents { path } => ffi::contents(&path).map(JobResult::Contents),
        Job::Inspect { path } => Ok(JobResult::Built(vec![inspect(&path, DType::F16)?])),
        Job::Caches { path, n_ctx } => {
            let model = Model::load(&path)?;
            ffi::take_cache_reports();
            let settings = ContextSettings { n_ctx, n_batch: 512, n_ubatch: 512, threads: 1 };
            let ctx = Context::new(&model, settings)?;
            drop(ctx);
            let lines = ffi::take_cache_reports();
            lines
                .iter()
                .map(|l| super::CacheReport::parse(l).ok_or_else(|| format!("unreadable cache report: {l}")))
                .collect::<Result<Vec<_>, _>>()
                .map(JobResult::Caches)
        }
        Job::Bench { models, tests, rounds, threads } => bench(&models, &tests, &rounds, threads).map(JobResult::Bench),
    }
}

fn inspect(path: &Path, format: DType) -> Result<BuiltFile, String> {
    let tensors = ffi::tensor_types(path)?
        .into_iter()
        .map(|(name, id, bytes)| {
            let ty = TensorType::from_ggml_id(id).map_or_else(|| format!("ggml#{id}"), |t| t.name().to_string());
            (name, ty, bytes)
        })
        .collect();
    let model = Model::load(path)?;
    Ok(BuiltFile {
        format,
        path: path.to_path_buf(),
        file_bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        parameters: model.parameters(),
        weight_bytes: model.size_bytes(),
        tensors,
    })
}

/// Token ids for a run: deterministic, spread over the vocabulary.
fn tokens(n: usize, vocab: i32, salt: u64) -> Vec<i32> {
    let mut x = salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % vocab.max(1) as u64) as i32
        })
        .collect()
}

/// Tokens a depth prefill feeds per call.
const CHUNK: usize = 512;

fn bench(models: &[std::path::PathBuf], tests: &[Test], rounds: &Rounds, threads: i32) -> Result<BenchResult, String> {
    let loaded: Vec<Model> = models.iter().map(|p| Model::load(p)).collect::<Result<_, _>>()?;
    let need = tests.iter().map(|t| t.depth + t.prompt + t.generate + 8).max().unwrap_or(512);
    let n_ctx = need.div_ceil(256) * 256;
    let n_batch = tests.iter().map(|t| t.prompt).max().unwrap_or(1).max(CHUNK as u32);
    let settings = ContextSettings { n_ctx, n_batch, n_ubatch: 512, threads };
    let mut contexts: Vec<Context> = loaded.iter().map(|m| Context::new(m, settings)).collect::<Result<_, _>>()?;
    let vocab: Vec<i32> = loaded.iter().map(Model::vocab_size).collect();
    let mut samples: Vec<Sample> = Vec::new();
    for path in models {
        for t in tests {
            samples.push(Sample { model: path.clone(), test: *t, seconds: Vec::new() });
        }
    }
    let mut saved = Saved::new();
    let cpu_before = cpu_times();
    let start = Instant::now();
    // Rounds alternate every model and test (A/B/A/B), so the machine's drift hits all alike;
    // a probe before each round and after the last brackets every round, and the rule decides
    // after each whether another is needed.
    let mut probes = vec![bandwidth_probe()];
    let settling = loop {
        let round = probes.len() - 1;
        for (m, ctx) in contexts.iter_mut().enumerate() {
            for (k, t) in tests.iter().enumerate() {
                let s = time_one(ctx, m, &mut saved, vocab[m], t, round as u64)?;
                samples[m * tests.len() + k].seconds.push(s);
            }
        }
        probes.push(bandwidth_probe());
        let times: Vec<Vec<f64>> = samples.iter().map(|s| s.seconds.clone()).collect();
        if let Some(s) = after_round(rounds, &probes, &times, start.elapsed().as_secs_f64()) {
            break s;
        }
    };
    let wall_s = start.elapsed().as_secs_f64();
    let cpu_after = cpu_times();
    Ok(BenchResult {
        samples,
        system_info: ffi::system_info(),
        threads,
        wall_s,
        other_cpu_fraction: other_cpu_fraction(cpu_before, cpu_after, wall_s),
        probes_bytes_per_s: probes,
        settling,
    })
}

/// KV caches filled to a depth, kept so that later rounds restore them instead of prefilling
/// the depth again (a 4096-token depth costs more than the test it precedes).
type Saved = std::collections::HashMap<(usize, u32), Vec<u8>>;

/// Prompts up to this length are preceded by an untimed run of the same shape, so the timed
/// one reuses the engine's graph for that batch size (as llama-bench's repetitions do); for
/// longer prompts rebuilding the graph is a negligible share.
const WARM_PROMPT: u32 = 256;

/// One timed run of a test: the KV cache at the test's depth (restored, or filled once), then
/// the prompt timed as one call, or the generated tokens one call each after an untimed step
/// that warms the weights and the graph.
fn time_one(
    ctx: &mut Context,
    model: usize,
    saved: &mut Saved,
    vocab: i32,
    t: &Test,
    salt: u64,
) -> Result<f64, String> {
    let depth = t.depth as usize;
    let at_depth = |ctx: &mut Context, saved: &mut Saved| -> Result<(), String> {
        match saved.get(&(model, t.depth)) {
            Some(state) if depth > 0 => ctx.restore(state),
            _ => {
                ctx.clear();
                let depth_tokens = tokens(depth, vocab, 11);
                let mut pos = 0usize;
                for chunk in depth_tokens.chunks(CHUNK) {
                    ctx.decode(chunk, pos as i32)?;
                    pos += chunk.len();
                }
                if depth > 0 {
                    saved.insert((model, t.depth), ctx.save());
                }
                Ok(())
            }
        }
    };
    if t.prompt > 0 {
        let prompt = tokens(t.prompt as usize, vocab, salt + 13);
        if t.prompt <= WARM_PROMPT {
            at_depth(ctx, saved)?;
            ctx.decode(&prompt, depth as i32)?;
        }
        at_depth(ctx, saved)?;
        let start = Instant::now();
        ctx.decode(&prompt, depth as i32)?;
        return Ok(start.elapsed().as_secs_f64());
    }
    at_depth(ctx, saved)?;
    // A generated token's step in steady state: the previous step left the weights warm.
    let mut pos = depth;
    let ids = tokens(t.generate as usize + 1, vocab, salt + 17);
    ctx.decode(&ids[..1], pos as i32)?;
    pos += 1;
    let start = Instant::now();
    for id in &ids[1..] {
        ctx.decode(std::slice::from_ref(id), pos as i32)?;
        pos += 1;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Main-memory read bandwidth now: two threads summing a buffer well past any last-level cache.
fn bandwidth_probe() -> f64 {
    use std::sync::OnceLock;
    static BUF: OnceLock<Vec<u64>> = OnceLock::new();
    // 1 GiB: past the 300+ MB last-level caches of current servers.
    let buf = BUF.get_or_init(|| (0..(1u64 << 27)).collect());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let start = Instant::now();
    let chunk = buf.len().div_ceil(threads);
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> =
            buf.chunks(chunk).map(|c| s.spawn(move || c.iter().fold(0u64, |a, &x| a.wrapping_add(x)))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).fold(0, u64::wrapping_add)
    });
    std::hint::black_box(total);
    (buf.len() * 8) as f64 / start.elapsed().as_secs_f64()
}

/// (busy, total) jiffies of the whole machine, from /proc/stat; and this process's CPU jiffies.
fn cpu_times() -> (u64, u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> =
        stat.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total, own_cpu_jiffies())
}

/// CPU jiffies of this process and its finished children (utime + stime + cutime + cstime).
fn own_cpu_jiffies() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    rest.split_whitespace().skip(11).take(4).filter_map(|f| f.parse::<u64>().ok()).sum()
}

/// Share of all CPU time between two readings spent by processes other than this one.
fn other_cpu_fraction(before: (u64, u64, u64), after: (u64, u64, u64), _wall_s: f64) -> f64 {
    let busy = after.0.saturating_sub(before.0) as f64;
    let total = after.1.saturating_sub(before.1).max(1) as f64;
    let ours = after.2.saturating_sub(before.2) as f64;
    ((busy - ours) / total).max(0.0)
}
