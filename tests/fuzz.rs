//! Fuzz suites (proptest) for the four readers of user files: the config.json importer, the
//! search-space parser, the device-profile parser and the shard/merge reader. Each case mutates
//! a shipped file (a value swapped for an edge case, a key misspelt or dropped, bytes flipped),
//! runs the command that reads it in-process, and asserts: no panic, done within a time bound,
//! and either success or an exit-2 error on one line naming the file.
//!
//! `make test` runs a bounded number of cases per target (FUZZ_CASES, default 200); for a
//! long run set FUZZ_SECONDS (per target) and pass `--nocapture` to see the counts, e.g.
//! `FUZZ_SECONDS=600 cargo test --release --test tests fuzz:: -- --nocapture --test-threads 4`.

use crate::common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rooflinebench::cli::{run, Cli};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Cases per target in `make test` (all four take a few seconds together).
const CASES: u32 = 200;

/// Wall-clock bound per case (generous: the machine is shared, and the lead pauses processes).
const CASE_BOUND: Duration = Duration::from_secs(30);

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Runs `check` on cases of `strategy`: FUZZ_CASES of them (default `default_cases`), or for
/// FUZZ_SECONDS if set; prints the count.
fn fuzz<S: Strategy>(
    target: &str,
    strategy: S,
    default_cases: u32,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let cases = env_u64("FUZZ_CASES").map(|c| c as u32).unwrap_or(default_cases);
    let until = env_u64("FUZZ_SECONDS").map(|s| Instant::now() + Duration::from_secs(s));
    let start = Instant::now();
    let mut total = 0u64;
    TALLY.with(|t| t.set((0, 0, 0.0)));
    loop {
        let batch = if until.is_some() { 50 } else { cases };
        let config = Config { cases: batch, failure_persistence: None, max_shrink_iters: 2000, ..Config::default() };
        let mut runner = TestRunner::new(config);
        if let Err(e) = runner.run(&strategy, &check) {
            panic!("fuzz {target}: after {total} cases: {e}");
        }
        total += batch as u64;
        if until.is_none_or(|u| Instant::now() >= u) {
            break;
        }
    }
    let (ok, refused, worst) = TALLY.with(|t| t.get());
    eprintln!(
        "fuzz {target}: {total} cases in {:.0} s, no failure; runs accepted {ok}, refused {refused} (slowest refusal {worst:.3} s)",
        start.elapsed().as_secs_f64()
    );
}

thread_local! {
    /// Runs accepted and refused on this thread, and the slowest refusal in seconds.
    static TALLY: std::cell::Cell<(u64, u64, f64)> = const { std::cell::Cell::new((0, 0, 0.0)) };
}

/// What one run of the binary's command line did.
#[derive(Debug)]
struct Outcome {
    error: Option<(i32, String)>,
    seconds: f64,
}

/// Runs a command line in-process on a thread, within CASE_BOUND; a panic or an overrun is a
/// failure naming the case.
fn run_cli(args: Vec<String>) -> Result<Outcome, TestCaseError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let shown = args.join(" ");
    std::thread::spawn(move || {
        let start = Instant::now();
        let result = std::panic::catch_unwind(|| {
            let cli =
                match <Cli as clap::Parser>::try_parse_from(std::iter::once("rooflinebench".to_string()).chain(args)) {
                    Ok(c) => c,
                    Err(e) => return Some((2, e.to_string())),
                };
            let mut sink = Vec::new();
            run(cli, &mut sink).err().map(|e| (e.exit_code(), e.to_string()))
        });
        let _ = tx.send(result.map(|error| Outcome { error, seconds: start.elapsed().as_secs_f64() }));
    });
    match rx.recv_timeout(CASE_BOUND) {
        Ok(Ok(o)) => Ok(o),
        Ok(Err(_)) => Err(TestCaseError::fail(format!("panic in `{}`", clip(&shown)))),
        Err(_) => Err(TestCaseError::fail(format!("no answer within {CASE_BOUND:?}: `{}`", clip(&shown)))),
    }
}

fn clip(s: &str) -> String {
    rooflinebench::error::clip_line(s)
}

/// Success, or exit 2 with one line naming one of `files`.
fn expect_clean(o: &Outcome, files: &[&Path]) -> Result<(), TestCaseError> {
    TALLY.with(|t| {
        let (a, r, w) = t.get();
        t.set(if o.error.is_some() { (a, r + 1, w.max(o.seconds)) } else { (a + 1, r, w) });
    });
    if let Some((code, msg)) = &o.error {
        prop_assert_eq!(*code, 2, "exit code for: {}", clip(msg));
        prop_assert!(!msg.contains('\n'), "not one line: {}", clip(msg));
        prop_assert!(
            files.iter().any(|f| msg.contains(&f.display().to_string())),
            "names none of {:?}: {}",
            files,
            clip(msg)
        );
        prop_assert!(msg.len() < 2000, "{} bytes: {}", msg.len(), clip(msg));
    }
    Ok(())
}

// Mutations.

/// One edit of a file's text or value tree; indices are taken modulo what is there.
#[derive(Debug, Clone)]
enum Edit {
    /// Replace the value at the n-th place (a TOML `key = value` line, a JSON leaf or node).
    Value(usize, usize),
    /// Drop the n-th place.
    Drop(usize),
    /// Misspell the n-th key (swap two letters, or add one).
    Key(usize, usize),
    /// Bytes: insert, replace or delete at a position; truncate.
    Insert(usize, u8),
    Replace(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        6 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Value(a, b)),
        2 => any::<usize>().prop_map(Edit::Drop),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Key(a, b)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Insert(a, b)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Replace(a, b)),
        1 => any::<usize>().prop_map(Edit::Delete),
        1 => any::<usize>().prop_map(Edit::Truncate),
    ];
    proptest::collection::vec(edit, 1..4)
}

const NUMBERS: [&str; 22] = [
    "0",
    "-1",
    "1",
    "2",
    "3",
    "7",
    "64",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "1e300",
    "-1e300",
    "1e-300",
    "-1e308",
    "0.5",
    "-0.0",
    "1e7",
    "2.5",
    "100000",
    "1048576",
    "9007199254740993",
];

/// Edge-case TOML values.
fn toml_value(i: usize) -> String {
    let n = |k: usize| NUMBERS[k % NUMBERS.len()];
    let specials = [
        "inf".to_string(),
        "-inf".into(),
        "nan".into(),
        "[]".into(),
        "\"\"".into(),
        "\"12\"".into(),
        "\"../../x\"".into(),
        "\"/tmp/abs\"".into(),
        "\"fp8\"".into(),
        "[\"mha\", \"gqa\", \"mqa\", \"mla\"]".into(),
        "[\"moe\"]".into(),
        "true".into(),
        "{}".into(),
        "[[1]]".into(),
        format!("\"{}\"", "x".repeat(100_000)),
        format!("[{}]", vec!["1"; 2000].join(", ")),
        "{ from = 1, to = 4294967295, step = 1 }".into(),
        "{ from = 1.0, to = 2.0, step = 1e-300 }".into(),
        "{ from = 1, to = 3 }".into(),
    ];
    match i % 4 {
        0 => n(i / 4).to_string(),
        1 => format!("[{}, {}]", n(i / 4), n(i / 7)),
        2 => format!("{{ from = {}, to = {}, step = {} }}", n(i / 4), n(i / 5), n(i / 9)),
        _ => specials[(i / 4) % specials.len()].clone(),
    }
}

/// Edge-case JSON values.
fn json_value(i: usize) -> serde_json::Value {
    use serde_json::json;
    let n: serde_json::Value =
        serde_json::from_str(NUMBERS[(i / 2) % NUMBERS.len()].trim_start_matches('+')).unwrap_or(json!(0));
    if i % 2 == 0 {
        return n;
    }
    let specials = [
        json!(null),
        json!(true),
        json!(""),
        json!("../../x"),
        json!("lama"),
        json!("f32"),
        json!([]),
        json!({}),
        json!([n.clone()]),
        json!({"f32": n.clone()}),
        json!("x".repeat(100_000)),
        json!(u64::MAX),
        json!(i64::MIN),
    ];
    specials[(i / 2) % specials.len()].clone()
}

fn byte_edit(mut bytes: Vec<u8>, e: &Edit) -> Vec<u8> {
    let at = |p: usize, len: usize| if len == 0 { 0 } else { p % len };
    match *e {
        Edit::Insert(p, b) => {
            let p = at(p, bytes.len() + 1);
            bytes.insert(p, b);
        }
        Edit::Replace(p, b) if !bytes.is_empty() => {
            let p = at(p, bytes.len());
            bytes[p] = b;
        }
        Edit::Delete(p) if !bytes.is_empty() => {
            let p = at(p, bytes.len());
            bytes.remove(p);
        }
        Edit::Truncate(p) => {
            let p = at(p, bytes.len() + 1);
            bytes.truncate(p);
        }
        _ => {}
    }
    bytes
}

fn misspell(key: &str, k: usize) -> String {
    let mut c: Vec<char> = key.chars().collect();
    if c.len() >= 2 && k % 2 == 0 {
        let i = (k / 2) % (c.len() - 1);
        c.swap(i, i + 1);
    } else {
        c.insert((k / 2) % (c.len() + 1), 'x');
    }
    c.into_iter().collect()
}

/// A TOML text edited line by line (values, keys, lines) or byte by byte.
fn edit_toml(text: &str, edits: &[Edit]) -> Vec<u8> {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut bytes = None;
    for e in edits {
        if let Some(b) = bytes.take() {
            bytes = Some(byte_edit(b, e));
            continue;
        }
        let keyed: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].contains('=')).collect();
        match *e {
            Edit::Value(p, v) if !keyed.is_empty() => {
                let i = keyed[p % keyed.len()];
                let key = lines[i].split('=').next().unwrap().trim().to_string();
                lines[i] = format!("{key} = {}", toml_value(v));
            }
            Edit::Drop(p) if !lines.is_empty() => {
                lines.remove(p % lines.len());
            }
            Edit::Key(p, k) if !keyed.is_empty() => {
                let i = keyed[p % keyed.len()];
                let (key, rest) = lines[i].split_once('=').unwrap();
                lines[i] = format!("{} ={rest}", misspell(key.trim(), k));
            }
            _ => bytes = Some(byte_edit((lines.join("\n") + "\n").into_bytes(), e)),
        }
    }
    bytes.unwrap_or_else(|| (lines.join("\n") + "\n").into_bytes())
}

/// Paths to every node of a JSON tree.
fn json_paths(v: &serde_json::Value, here: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(here.clone());
    match v {
        serde_json::Value::Object(m) => {
            for (k, c) in m {
                here.push(k.clone());
                json_paths(c, here, out);
                here.pop();
            }
        }
        serde_json::Value::Array(a) => {
            for (i, c) in a.iter().enumerate().take(50) {
                here.push(i.to_string());
                json_paths(c, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn json_at<'a>(v: &'a mut serde_json::Value, path: &[String]) -> Option<&'a mut serde_json::Value> {
    path.iter().try_fold(v, |v, k| match v {
        serde_json::Value::Object(m) => m.get_mut(k),
        serde_json::Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
        _ => None,
    })
}

/// A JSON document edited node by node, or byte by byte.
fn edit_json(text: &str, edits: &[Edit]) -> Vec<u8> {
    let mut value: serde_json::Value = serde_json::from_str(text).unwrap();
    let mut bytes = None;
    for e in edits {
        if let Some(b) = bytes.take() {
            bytes = Some(byte_edit(b, e));
            continue;
        }
        let mut paths = Vec::new();
        json_paths(&value, &mut Vec::new(), &mut paths);
        // The root is not a place to edit: skip it.
        let pick = |p: usize| paths[1 + p % (paths.len() - 1)].clone();
        match *e {
            Edit::Value(p, v) if paths.len() > 1 => {
                if let Some(slot) = json_at(&mut value, &pick(p)) {
                    *slot = json_value(v);
                }
            }
            Edit::Drop(p) if paths.len() > 1 => {
                let path = pick(p);
                let (last, parent) = path.split_last().unwrap();
                match json_at(&mut value, parent) {
                    Some(serde_json::Value::Object(m)) => {
                        m.remove(last);
                    }
                    Some(serde_json::Value::Array(a)) => {
                        if let Ok(i) = last.parse::<usize>() {
                            if i < a.len() {
                                a.remove(i);
                            }
                        }
                    }
                    _ => {}
                }
            }
            Edit::Key(p, k) if paths.len() > 1 => {
                let path = pick(p);
                let (last, parent) = path.split_last().unwrap();
                if let Some(serde_json::Value::Object(m)) = json_at(&mut value, parent) {
                    if let Some(v) = m.remove(last) {
                        m.insert(misspell(last, k), v);
                    }
                }
            }
            _ => bytes = Some(byte_edit(serde_json::to_vec_pretty(&value).unwrap(), e)),
        }
    }
    bytes.unwrap_or_else(|| serde_json::to_vec_pretty(&value).unwrap())
}

fn files_in(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

fn arg(p: &Path) -> String {
    p.display().to_string()
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

// The four targets.

#[test]
fn fuzz_config_json_importer() {
    // Uniform families, and the hybrid ones (windows, convolutions, DeltaNet, Mamba2).
    let mut bases = files_in("models", "json");
    bases.extend(files_in("tests/fixtures/hybrid", "json"));
    fuzz("config.json", (0..bases.len(), edits()), CASES, |(b, e)| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, edit_json(&std::fs::read_to_string(&bases[b]).unwrap(), &e)).unwrap();
        let o = run_cli(strings(&[
            "analyze",
            "--model",
            &arg(&path),
            "--device",
            "rpi5",
            "--scenario",
            "siso",
            "--format",
            "csv",
        ]))?;
        expect_clean(&o, &[&path])
    });
}

#[test]
fn fuzz_search_space_parser() {
    let mut bases = files_in("search-spaces", "toml");
    bases.extend(files_in("tests/fixtures", "toml"));
    fuzz("search space", (0..bases.len(), edits()), CASES, |(b, e)| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("space.toml");
        let bytes = edit_toml(&std::fs::read_to_string(&bases[b]).unwrap(), &e);
        std::fs::write(&path, &bytes).unwrap();
        // Parsed, a space answers for any index: sample a few, and score the valid ones.
        if let Ok(space) = rooflinebench::search::SearchSpace::load(&path) {
            let device = rooflinebench::device::builtin("rpi5").unwrap();
            let mut scorer =
                rooflinebench::search::Scorer::new(&space, &device, rooflinebench::roofline::PlanChoice::Fastest);
            let n = space.count();
            for i in [0, n / 3, n / 2, n.saturating_sub(1)] {
                if let Ok(c) = space.candidate(i) {
                    let _ = scorer.score(&c);
                }
            }
        }
        let out = dir.path().join("out");
        let o = run_cli(strings(&[
            "search",
            &arg(&path),
            "--device",
            "rpi5",
            "--threads",
            "1",
            "--max-candidates",
            "20000",
            "--out",
            &arg(&out),
        ]))?;
        expect_clean(&o, &[&path])
    });
}

#[test]
fn fuzz_device_profile_parser() {
    let bases = files_in("devices", "json");
    let model = model_path("SmolLM2-135M");
    let space = repo().join("tests/fixtures/small-space.toml");
    fuzz("device profile", (0..bases.len(), edits()), CASES, |(b, e)| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.json");
        std::fs::write(&path, edit_json(&std::fs::read_to_string(&bases[b]).unwrap(), &e)).unwrap();
        let p = arg(&path);
        let o = run_cli(strings(&["devices", "show", &p]))?;
        expect_clean(&o, &[&path])?;
        if o.error.is_none() {
            let svg = arg(&dir.path().join("r.svg"));
            for args in [
                strings(&["analyze", "--model", &arg(&model), "--device", &p, "--format", "csv"]),
                strings(&["plot", "roofline", "--model", &arg(&model), "--device", &p, "--out", &svg]),
                strings(&[
                    "search",
                    &arg(&space),
                    "--device",
                    &p,
                    "--threads",
                    "1",
                    "--out",
                    &arg(&dir.path().join("o")),
                ]),
            ] {
                expect_clean(&run_cli(args)?, &[&path, &space])?;
            }
        }
        Ok(())
    });
}

/// Shards 0/2 and 1/2 of a small space on rpi5, made once.
fn shard_fixture() -> &'static (tempfile::TempDir, PathBuf, [Vec<u8>; 2]) {
    static FIXTURE: std::sync::OnceLock<(tempfile::TempDir, PathBuf, [Vec<u8>; 2])> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let spaces = dir.path().join("spaces");
        std::fs::create_dir_all(&spaces).unwrap();
        std::fs::copy(repo().join("tests/fixtures/small-space.toml"), spaces.join("small.toml")).unwrap();
        let shards = dir.path().join("shards");
        for k in 0..2 {
            let o = run_cli(strings(&[
                "batch",
                &arg(&spaces),
                "--devices",
                "rpi5",
                "--shard",
                &format!("{k}/2"),
                "--out",
                &arg(&shards),
            ]))
            .unwrap();
            assert!(o.error.is_none(), "{o:?}");
        }
        let read = |k: u32| std::fs::read(shards.join(format!("small/rpi5/shard-{k}-of-2.json"))).unwrap();
        let texts = [read(0), read(1)];
        (dir, spaces, texts)
    })
}

#[test]
fn fuzz_shard_merge_reader() {
    let (_keep, spaces, texts) = shard_fixture();
    fuzz("shard/merge", (0..2usize, edits()), CASES, |(which, e)| {
        let dir = tempfile::tempdir().unwrap();
        let shards = dir.path().join("shards");
        let folder = shards.join("small/rpi5");
        std::fs::create_dir_all(&folder).unwrap();
        let mut edited = None;
        for (k, text) in texts.iter().enumerate() {
            let path = folder.join(format!("shard-{k}-of-2.json"));
            let bytes = if k == which { edit_json(std::str::from_utf8(text).unwrap(), &e) } else { text.clone() };
            std::fs::write(&path, bytes).unwrap();
            if k == which {
                edited = Some(path);
            }
        }
        let o = run_cli(strings(&[
            "merge",
            &arg(spaces),
            "--devices",
            "rpi5",
            "--shards",
            &arg(&shards),
            "--out",
            &arg(&dir.path().join("out")),
        ]))?;
        // A shard whose name or count broke is named by its folder.
        expect_clean(&o, &[edited.as_deref().unwrap(), &shards])
    });
}

/// The worst time of a rejected input among a few of each kind found in the sweep (the fuzz
/// counts go to the issue's closing note).
#[test]
fn rejected_inputs_are_answered_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("space.toml");
    let base = std::fs::read_to_string(repo().join("search-spaces/around-135m.toml")).unwrap();
    let mut worst = 0.0f64;
    for v in 0..200 {
        let text = edit_toml(&base, &[Edit::Value(v / 13, v)]);
        std::fs::write(&path, &text).unwrap();
        let o = run_cli(strings(&[
            "search",
            &arg(&path),
            "--device",
            "rpi5",
            "--max-candidates",
            "1",
            "--out",
            &arg(&dir.path().join("o")),
        ]))
        .unwrap();
        if o.error.is_some() {
            worst = worst.max(o.seconds);
        }
    }
    assert!(worst < 5.0, "{worst} s");
}

// The llama-bench reader (`devices check` and `devices fit`).

/// Edge-case markdown table cells: numbers, test names past their bounds, parameter counts,
/// odd text.
fn md_cell(i: usize) -> String {
    let specials = [
        "".to_string(),
        "inf".into(),
        "-inf".into(),
        "NaN".into(),
        "1e300 ± 1".into(),
        "1,000,000.5".into(),
        "pp0".into(),
        "pp65536".into(),
        "pp4294967296".into(),
        "tg1 @ d1048576".into(),
        "tg128 @ d1048577".into(),
        "pp512+tg128".into(),
        "1e300 B".into(),
        "0.000001 B".into(),
        "9999 B".into(),
        "1.24 B".into(),
        "4097".into(),
        "llama 1B Q4_K - Medium".into(),
        "qwen2 0.5B Q8_0".into(),
        "\u{1b}[2J\r".into(),
        "1 ± 2 ± 3".into(),
        "x".repeat(100_000),
    ];
    match i % 2 {
        0 => NUMBERS[(i / 2) % NUMBERS.len()].to_string(),
        _ => specials[(i / 2) % specials.len()].clone(),
    }
}

/// A markdown table edited cell by cell (values, header names, lines) or byte by byte.
fn edit_markdown(text: &str, edits: &[Edit]) -> Vec<u8> {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut bytes = None;
    for e in edits {
        if let Some(b) = bytes.take() {
            bytes = Some(byte_edit(b, e));
            continue;
        }
        let rows: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].trim_start().starts_with('|')).collect();
        // The cells between the outer pipes of line `i`, and the one `p` picks.
        let cells = |line: &str| line.split('|').map(String::from).collect::<Vec<_>>();
        match *e {
            Edit::Value(p, v) if !rows.is_empty() => {
                let i = rows[p % rows.len()];
                let mut c = cells(&lines[i]);
                if c.len() > 2 {
                    let k = 1 + (p / rows.len()) % (c.len() - 2);
                    c[k] = format!(" {} ", md_cell(v));
                }
                lines[i] = c.join("|");
            }
            Edit::Drop(p) if !lines.is_empty() => {
                lines.remove(p % lines.len());
            }
            Edit::Key(p, k) if !rows.is_empty() => {
                let i = rows[0];
                let mut c = cells(&lines[i]);
                if c.len() > 2 {
                    let j = 1 + p % (c.len() - 2);
                    c[j] = format!(" {} ", misspell(c[j].trim(), k));
                }
                lines[i] = c.join("|");
            }
            _ => bytes = Some(byte_edit((lines.join("\n") + "\n").into_bytes(), e)),
        }
    }
    bytes.unwrap_or_else(|| (lines.join("\n") + "\n").into_bytes())
}

/// What a fuzz case starts from: a file extension and its text.
fn llama_bench_bases() -> Vec<(&'static str, String)> {
    let mut bases = Vec::new();
    let data = repo().join("data/llama-bench");
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().path()).collect();
    folders.sort();
    for f in folders {
        for md in files_in(&f.strip_prefix(repo()).unwrap().display().to_string(), "md") {
            bases.push(("md", std::fs::read_to_string(md).unwrap()));
        }
    }
    // This tool's own runs (llama-bench JSON rows with the models' configs), a dozen of them.
    let profile: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("tests/fixtures/llamacpp-profile.json")).unwrap())
            .unwrap();
    let runs: Vec<serde_json::Value> =
        profile["notes"]["runs"].as_array().unwrap().iter().step_by(6).cloned().collect();
    bases.push(("json", serde_json::to_string_pretty(&runs).unwrap()));
    // Rows as llama-bench writes them, matched by exact parameter count (Qwen2.5-0.5B and
    // Llama-3.2-1B), naming model files, as JSON and as JSON lines.
    let row = |model: &str, params: u64, file: &str, p: u32, g: u32, d: u32, ns: f64| {
        serde_json::json!({
            "model_type": model, "model_filename": file, "model_n_params": params, "backends": "CPU",
            "n_threads": 4, "n_prompt": p, "n_gen": g, "n_depth": d, "avg_ns": ns,
            "build_commit": "abc1234", "build_number": 4000
        })
    };
    let rows = serde_json::json!([
        row("qwen2 0.5B Q4_K - Medium", 494_032_768, "/models/qwen.gguf", 512, 0, 0, 5.74e9),
        row("qwen2 0.5B Q4_K - Medium", 494_032_768, "qwen.gguf", 0, 128, 0, 4.77e9),
        row("llama 1B Q4_K - Medium", 1_235_814_400, "llama.gguf", 512, 0, 0, 8.3e9),
        row("llama 1B Q4_K - Medium", 1_235_814_400, "../llama.gguf", 0, 128, 512, 11.2e9),
    ]);
    bases.push(("json", serde_json::to_string_pretty(&rows).unwrap()));
    bases.push(("jsonl", serde_json::to_string_pretty(&rows).unwrap()));
    bases
}

#[test]
fn fuzz_llama_bench_reader() {
    let bases = llama_bench_bases();
    fuzz("llama-bench reader", (0..bases.len(), edits()), CASES, |(b, e)| {
        let dir = tempfile::tempdir().unwrap();
        let (ext, text) = &bases[b];
        let path = dir.path().join(format!("run.{ext}"));
        let bytes = match *ext {
            "md" => edit_markdown(text, &e),
            "json" => edit_json(text, &e),
            // JSON lines: the rows edited as an array, then one per line (or the bytes as they are).
            _ => {
                let edited = edit_json(text, &e);
                match serde_json::from_slice::<serde_json::Value>(&edited) {
                    Ok(serde_json::Value::Array(rows)) => {
                        rows.iter().map(|r| r.to_string() + "\n").collect::<String>().into_bytes()
                    }
                    _ => edited,
                }
            }
        };
        std::fs::write(&path, &bytes).unwrap();
        let p = arg(&path);
        let o = run_cli(strings(&["devices", "check", "--llama-bench", &p, "--device", "rpi5"]))?;
        expect_clean(&o, &[&path, Path::new("rpi5")])?;
        let out = dir.path().join("x.json");
        let o = run_cli(strings(&[
            "devices",
            "fit",
            "--base",
            "rpi5-datasheet",
            "--llama-bench",
            &p,
            "--out",
            &arg(&out),
        ]))?;
        expect_clean(&o, &[&path, &out])?;
        if o.error.is_none() {
            // What fit writes, its own reader loads.
            let shown = run_cli(strings(&["devices", "show", &arg(&out)]))?;
            prop_assert!(shown.error.is_none(), "{}: {:?}", clip(&String::from_utf8_lossy(&bytes)), shown.error);
        } else {
            prop_assert!(!out.exists(), "a refused fit wrote {}", out.display());
        }
        Ok(())
    });
}

/// A search folder of the small space on rpi5, made once.
fn search_folder_fixture() -> &'static (tempfile::TempDir, PathBuf) {
    static FIXTURE: std::sync::OnceLock<(tempfile::TempDir, PathBuf)> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("search");
        let space = repo().join("tests/fixtures/small-space.toml");
        let o = run_cli(strings(&["search", &arg(&space), "--device", "rpi5", "--out", &arg(&out)])).unwrap();
        assert!(o.error.is_none(), "{o:?}");
        (dir, out)
    })
}

/// The files of a search folder the readers take, and whether an edit is also written into the
/// marker's hash (a forger's edit, which only the content checks can catch).
const SEARCH_FILES: [&str; 5] = ["outcome.json", "pareto.csv", "space.toml", "device.json", ".rooflinebench.json"];

#[test]
fn fuzz_search_folder_readers() {
    use sha2::{Digest, Sha256};
    let (_keep, base) = search_folder_fixture();
    fuzz("search folder", (0..SEARCH_FILES.len(), any::<bool>(), edits()), CASES, |(which, forge, e)| {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("search");
        std::fs::create_dir(&folder).unwrap();
        for entry in std::fs::read_dir(base).unwrap().map(|e| e.unwrap().path()) {
            std::fs::copy(&entry, folder.join(entry.file_name().unwrap())).unwrap();
        }
        let name = SEARCH_FILES[which];
        let text = std::fs::read_to_string(folder.join(name)).unwrap();
        let bytes = match name.rsplit('.').next() {
            Some("json") => edit_json(&text, &e),
            Some("toml") => edit_toml(&text, &e),
            _ => e.iter().fold(text.into_bytes(), byte_edit),
        };
        std::fs::write(folder.join(name), &bytes).unwrap();
        if forge && name != ".rooflinebench.json" {
            let marker = folder.join(".rooflinebench.json");
            let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&marker).unwrap()).unwrap();
            let hash: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
            m["files"][name] = serde_json::Value::from(hash);
            std::fs::write(&marker, serde_json::to_vec(&m).unwrap()).unwrap();
        }
        let config = dir.path().join("c.json");
        let svg = dir.path().join("f.svg");
        let (f, c, g) = (arg(&folder), arg(&config), arg(&svg));
        for args in [
            strings(&["export", &f, "recommended", "--out", &c]),
            strings(&["export", &f, "#1", "--out", &c]),
            strings(&["plot", "front", &f, "--out", &g]),
        ] {
            let out = PathBuf::from(args.last().unwrap());
            let o = run_cli(args)?;
            expect_clean(&o, &[&folder])?;
            // A refused run writes nothing.
            prop_assert!(o.error.is_none() || !out.exists(), "a refusal left {}", out.display());
            let _ = std::fs::remove_file(&out);
        }
        // verify's reader (verify itself builds and runs models).
        let start = Instant::now();
        let loaded = std::panic::catch_unwind(|| rooflinebench::search::saved::load(&folder).err());
        let error = loaded.map_err(|_| TestCaseError::fail("panic in search::saved::load"))?;
        let o =
            Outcome { error: error.map(|e| (e.exit_code(), e.to_string())), seconds: start.elapsed().as_secs_f64() };
        expect_clean(&o, &[&folder])
    });
}
