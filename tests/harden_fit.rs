//! Hardening II (issue 23) for `devices fit` and `devices check`: files named inside a
//! llama-bench file are read only when they are GGUFs the user pointed at or that sit beside it,
//! and never echoed; impossible numbers are refused naming the file, row and field; a fitted
//! profile always loads; large inputs are fitted in linear time with clipped messages.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Llama-3.2-1B's parameters by hand: embeddings 128,256 x 2,048 = 262,668,288; per layer
/// q and o 2 x 2,048^2 = 8,388,608, k and v 2 x 2,048 x 512 = 2,097,152, MLP 3 x 2,048 x 8,192 =
/// 50,331,648, two norms 4,096: 60,821,504, times 16 = 973,144,064; final norm 2,048 (tied).
const LLAMA_1B: u64 = 262_668_288 + 16 * 60_821_504 + 2_048;

/// A llama-bench JSON row of a prefill test.
fn row(model_type: &str, params: u64, file: Option<&str>, prompt: u64, avg_ns: f64) -> serde_json::Value {
    let mut r = serde_json::json!({
        "model_type": model_type, "model_n_params": params, "backends": "CPU", "n_threads": 4,
        "n_prompt": prompt, "n_gen": 0, "n_depth": 0, "avg_ns": avg_ns
    });
    if let Some(f) = file {
        r["model_filename"] = serde_json::Value::from(f);
    }
    r
}

fn json_file(dir: &Path, name: &str, rows: &[serde_json::Value]) -> PathBuf {
    write(dir, name, &serde_json::Value::from(rows.to_vec()).to_string())
}

// 1. Files named inside inputs.

#[test]
fn a_row_naming_a_file_elsewhere_is_not_read_or_echoed() {
    assert_eq!(LLAMA_1B, 1_235_814_400);
    let dir = tempfile::tempdir().unwrap();
    // A file outside the llama-bench file's folder, GGUF by its magic, with a secret in it, and
    // a link beside the input that leads to it.
    let secret = write(dir.path(), "secret.gguf", "GGUF-TOPSECRET-CONTENT");
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::os::unix::fs::symlink(&secret, input.join("link.gguf")).unwrap();
    let rows: Vec<serde_json::Value> = ["/etc/passwd", "/etc/shadow", "../secret.gguf", s(&secret), "link.gguf", ".."]
        .iter()
        .map(|f| row("llama 1B Q4_K - Medium", LLAMA_1B, Some(f), 512, 5e9))
        .collect();
    let bench = json_file(&input, "run.json", &rows);
    let (code, out, err) = run(&["devices", "check", "--device", "rpi5", "--llama-bench", s(&bench)]);
    assert_eq!(code, Some(0), "{out}{err}");
    // Every row matched by its count (six runs of Llama-3.2-1B), none of the files opened:
    // no note names them and nothing of them is printed.
    assert!(out.contains(": 6 runs,") && out.matches("Llama-3.2-1B").count() == 6, "{out}");
    for needle in ["TOPSECRET", "root:", "secret", "passwd", "shadow", "link.gguf", "note:"] {
        assert!(!out.contains(needle) && !err.contains(needle), "'{needle}' in: {out}{err}");
    }
    // 512 tokens in 5 s: 102.4 tok/s.
    assert!(out.contains("measured     102.4 tok/s"), "{out}");
}

#[test]
fn a_gguf_beside_the_input_that_is_not_a_model_is_named_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "fake.gguf", "GGUF\u{3}\0\0\0TOPSECRET-CONTENT");
    let bench = json_file(
        dir.path(),
        "run.json",
        &[row("llama 1B Q4_K - Medium", LLAMA_1B, Some("/elsewhere/fake.gguf"), 512, 5e9)],
    );
    let (code, out, err) = bin()
        .args(["devices", "check", "--device", "rpi5", "--llama-bench", s(&bench)])
        .env("ROOFLINEBENCH_BIN", env!("CARGO_BIN_EXE_rooflinebench"))
        .timeout(Duration::from_secs(120))
        .output()
        .map(|o| {
            (
                o.status.code(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("Llama-3.2-1B"), "{out}");
    assert!(out.contains("fake.gguf: not readable as a GGUF model here; matched by parameter count instead"), "{out}");
    assert!(!out.contains("TOPSECRET") && !err.contains("TOPSECRET"), "{out}{err}");
}

/// The small space's candidate #0 as a GGUF: MHA, 4 layers, hidden 256, 4 heads of 64, ffn 512,
/// vocab 8000, tied: 8000*256 + 4*(2*256 + 4*256*256 + 3*256*512) + 256 = 4,671,744 parameters.
#[cfg(feature = "llamacpp")]
const SMALL_0: u64 = 8000 * 256 + 4 * (2 * 256 + 4 * 256 * 256 + 3 * 256 * 512) + 256;

#[cfg(feature = "llamacpp")]
fn export_small_0(to: &Path) {
    let space = repo().join("tests/fixtures/small-space.toml");
    bin()
        .args(["export", s(&space), "#0", "--format", "gguf", "--weights", "q8_0", "--out", s(to)])
        .env("ROOFLINEBENCH_BIN", env!("CARGO_BIN_EXE_rooflinebench"))
        .timeout(Duration::from_secs(300))
        .assert()
        .success();
}

#[cfg(feature = "llamacpp")]
#[test]
fn a_gguf_beside_the_input_is_used_only_when_its_count_is_the_rows() {
    assert_eq!(SMALL_0, 4_671_744);
    let dir = tempfile::tempdir().unwrap();
    let gguf = dir.path().join("c.gguf");
    export_small_0(&gguf);
    // llama-bench ran elsewhere: only the file name is looked up, beside the input.
    let named = "/home/someone/models/c.gguf";
    let bench = json_file(
        dir.path(),
        "run.json",
        &[
            // The 1.24 B row must not become the 4-layer file's model.
            row("llama 1B Q4_K - Medium", LLAMA_1B, Some(named), 512, 5e9),
            // A row whose count is the file's: the file says what the model is.
            row("tiny Q8_0", SMALL_0, Some(named), 512, 5e7),
        ],
    );
    let (code, out, err) = bin()
        .args(["devices", "check", "--device", "rpi5", "--llama-bench", s(&bench)])
        .env("ROOFLINEBENCH_BIN", env!("CARGO_BIN_EXE_rooflinebench"))
        .timeout(Duration::from_secs(120))
        .output()
        .map(|o| {
            (
                o.status.code(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(": 2 runs,"), "{out}");
    let llama = out.lines().find(|l| l.contains("Llama-3.2-1B")).unwrap_or_else(|| panic!("{out}"));
    // 512 tokens in 5 s.
    assert!(llama.contains("q4_k_m") && llama.contains("measured     102.4 tok/s"), "{out}");
    // 512 tokens in 50 ms: 10,240 tok/s, read as the file's model under the row's name.
    let tiny = out.lines().find(|l| l.contains("tiny Q8_0")).unwrap_or_else(|| panic!("{out}"));
    assert!(tiny.contains("q8_0") && tiny.contains("measured   10240.0 tok/s"), "{out}");
    let note = format!(
        "c.gguf: its parameter count {SMALL_0} does not match the row's {LLAMA_1B}; matched by parameter count instead"
    );
    assert!(out.contains(&note), "{out}");

    // The same file outside the input's folder is not read, unless given with --model.
    let other = tempfile::tempdir().unwrap();
    let far = json_file(other.path(), "run.json", &[row("tiny Q8_0", SMALL_0, Some(s(&gguf)), 512, 5e7)]);
    refused(
        &["devices", "check", "--device", "rpi5", "--llama-bench", s(&far)],
        &["no usable llama-bench rows", "tiny Q8_0 (4.672e6 parameters): no single --model config matches"],
    );
    let given = bin()
        .args(["devices", "check", "--device", "rpi5", "--llama-bench", s(&far), "--model", s(&gguf)])
        .env("ROOFLINEBENCH_BIN", env!("CARGO_BIN_EXE_rooflinebench"))
        .timeout(Duration::from_secs(120))
        .assert()
        .success();
    let text = String::from_utf8_lossy(&given.get_output().stdout).into_owned();
    assert!(text.contains(": 1 runs,") && text.contains("tiny Q8_0"), "{text}");
}

// 2. Impossible numbers.

#[test]
fn impossible_numbers_in_json_rows_are_refused_naming_file_row_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.json");
    let ok = row("llama 1B Q4_K - Medium", LLAMA_1B, None, 512, 5e9);
    let cases: [(&str, serde_json::Value, &str); 11] = [
        ("avg_ns", serde_json::json!(1e300), "got 1e300"),
        ("avg_ns", serde_json::json!(1e-300), "got 1e-300"),
        // A day is 86,400 s = 8.64e13 ns; just over it.
        ("avg_ns", serde_json::json!(8.7e13), "got 87000000000000"),
        // Under a microsecond (1,000 ns).
        ("avg_ns", serde_json::json!(999.0), "got 999"),
        ("n_prompt", serde_json::json!(4_294_967_296u64), "got 4294967296"),
        ("n_prompt", serde_json::json!(1_048_577), "got 1048577"),
        ("n_depth", serde_json::json!(1_048_577), "got 1048577"),
        ("model_n_params", serde_json::json!(1e300), "got 1e300"),
        ("model_n_params", serde_json::json!(0), "got 0"),
        ("n_threads", serde_json::json!(0), "got 0"),
        ("n_threads", serde_json::json!(4097), "got 4097"),
    ];
    for (field, value, got) in cases {
        let mut bad = ok.clone();
        bad[field] = value;
        // The bad row is the second: the message names row 1.
        let bench = json_file(dir.path(), "run.json", &[ok.clone(), bad]);
        let needle = format!("field '[1].{field}'");
        for cmd in [
            vec!["devices", "check", "--device", "rpi5", "--llama-bench", s(&bench)],
            vec!["devices", "fit", "--base", "rpi5-datasheet", "--llama-bench", s(&bench), "--out", s(&out)],
        ] {
            refused(&cmd, &[s(&bench), &needle, got]);
        }
        assert!(!out.exists());
    }
    // JSON lines name the line.
    let lines = write(
        dir.path(),
        "run.jsonl",
        &format!("{ok}\n{}\n", row("llama 1B Q4_K - Medium", LLAMA_1B, None, 512, 1e300)),
    );
    refused(
        &["devices", "check", "--device", "rpi5", "--llama-bench", s(&lines)],
        &[&format!("{}:2: field 'avg_ns'", s(&lines))],
    );
    // The bounds themselves are allowed: 1 us and one token.
    let edge = json_file(dir.path(), "edge.json", &[row("llama 1B Q4_K - Medium", LLAMA_1B, None, 1, 1e3)]);
    let (code, text, err) = run(&["devices", "check", "--device", "rpi5", "--llama-bench", s(&edge)]);
    assert_eq!(code, Some(0), "{text}{err}");
    // One token in 1 us: 1,000,000 tok/s.
    assert!(text.contains("measured 1000000.0 tok/s"), "{text}");
}

#[test]
fn impossible_numbers_in_markdown_tables_are_refused_naming_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let table = |params: &str, threads: &str, rate: &str| {
        format!(
            "| model | params | backend | threads | test | t/s |\n|---|---|---|---|---|---|\n\
             | llama 1B Q4_K - Medium | 1.24 B | CPU | 4 | pp512 | 61.7 |\n\
             | llama 1B Q4_K - Medium | {params} | CPU | {threads} | tg128 | {rate} |\n"
        )
    };
    for (text, field, got) in [
        (table("1.24 B", "4", "1e300"), "t/s", "got 1e300"),
        (table("1.24 B", "4", "inf"), "t/s", "got inf"),
        (table("1.24 B", "4", "NaN"), "t/s", "got NaN"),
        // 128 tokens over more than a day: under 128 / 86,400 = 0.00148 tok/s.
        (table("1.24 B", "4", "0.001"), "t/s", "got 0.001"),
        (table("20000 B", "4", "11.4"), "params", "got 20000 B"),
        (table("1.24 B", "0", "11.4"), "threads", "got 0"),
        (table("1.24 B", "5000", "11.4"), "threads", "got 5000"),
    ] {
        let md = write(dir.path(), "run.md", &text);
        // The bad row is on the table's fourth line.
        refused(
            &["devices", "check", "--device", "rpi5", "--llama-bench", s(&md)],
            &[&format!("{}:4: field '{field}'", s(&md)), got],
        );
    }
}

#[test]
fn devices_fit_refuses_a_name_that_is_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("a/b");
    std::fs::create_dir_all(&work).unwrap();
    let bench = repo().join("data/llama-bench/rpi5/edge-llm-memory-wall-L1.md");
    let out = work.join("p.json");
    for name in ["../../evil", "a/b", ".hidden", "x\u{1b}[2J"] {
        refused(
            &[
                "devices",
                "fit",
                "--base",
                "rpi5-datasheet",
                "--llama-bench",
                s(&bench),
                "--name",
                name,
                "--out",
                s(&out),
            ],
            &["--name", "a plain file name"],
        );
    }
    assert!(!out.exists() && !dir.path().join("evil").exists());
    // A plain name is taken as given.
    let (code, text, err) = run(&[
        "devices",
        "fit",
        "--base",
        "rpi5-datasheet",
        "--llama-bench",
        s(&bench),
        "--name",
        "my-pi",
        "--out",
        s(&out),
    ]);
    assert_eq!(code, Some(0), "{text}{err}");
    assert!(text.starts_with("fitted my-pi from 6 runs"), "{text}");
}

#[test]
fn devices_fit_writes_only_a_profile_its_own_reader_loads() {
    let dir = tempfile::tempdir().unwrap();
    // A base profile whose name is 95 characters: the default fitted name adds "-llamacpp",
    // 95 + 9 = 104 characters, past the 100 a profile name may have.
    let mut base: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("devices/rpi5-datasheet.json")).unwrap()).unwrap();
    base["name"] = serde_json::Value::from("p".repeat(95));
    let base_path = write(dir.path(), "base.json", &base.to_string());
    let bench = repo().join("data/llama-bench/rpi5/edge-llm-memory-wall-L1.md");
    let out = dir.path().join("p.json");
    let args = ["devices", "fit", "--base", s(&base_path), "--llama-bench", s(&bench), "--out", s(&out)];
    refused(&args, &["would not load", "field 'name'", "at most 100 bytes"]);
    assert!(!out.exists());
    // With a name of its own it fits, and the profile loads.
    let mut ok: Vec<&str> = args.to_vec();
    ok.extend(["--name", "long-base-pi"]);
    let (code, text, err) = run(&ok);
    assert_eq!(code, Some(0), "{text}{err}");
    bin().args(["devices", "show", s(&out)]).assert().success();
}

#[test]
fn devices_check_never_prints_an_infinite_or_undefined_rate() {
    let dir = tempfile::tempdir().unwrap();
    // Every efficiency at the least positive double (5e-324): each passes the profile's checks,
    // but a FLOP rate of at most 1e19 * 5e-324 = 5e-305 FLOP/s makes any run take forever.
    let mut p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("devices/rpi5.json")).unwrap()).unwrap();
    fn starve(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, c) in m.iter_mut() {
                    if k == "efficiency" && c.is_number() {
                        *c = serde_json::json!(5e-324);
                    } else {
                        starve(c);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(starve),
            _ => {}
        }
    }
    starve(&mut p);
    let profile = write(dir.path(), "slow.json", &p.to_string());
    bin().args(["devices", "show", s(&profile)]).assert().success();
    let bench = repo().join("data/llama-bench/rpi5/edge-llm-memory-wall-L1.md");
    let (code, out, err) = run(&["devices", "check", "--device", s(&profile), "--llama-bench", s(&bench)]);
    assert_eq!(code, Some(2), "{out}{err}");
    let lower = out.to_lowercase();
    assert!(!lower.contains("inf") && !lower.contains("nan"), "{out}");
    assert!(err.contains(s(&profile)) && err.contains("a positive finite time"), "{err}");
}

// 3. Slow or long.

#[test]
fn a_20000_row_file_is_fitted_whole() {
    let dir = tempfile::tempdir().unwrap();
    // Four tests of Llama-3.2-1B repeated 5,000 times: 20,000 rows.
    let tests: [(u64, u64, f64); 4] = [(512, 0, 8.0), (128, 0, 2.0), (0, 128, 12.0), (0, 32, 3.0)];
    let rows: Vec<serde_json::Value> = (0..20_000)
        .map(|i| {
            let (p, g, secs) = tests[i % 4];
            let mut r = row("llama 1B Q4_K - Medium", LLAMA_1B, None, p, secs * 1e9);
            r["n_gen"] = serde_json::Value::from(g);
            r
        })
        .collect();
    let bench = json_file(dir.path(), "big.json", &rows);
    let out = dir.path().join("p.json");
    let (code, text, err) =
        run(&["devices", "fit", "--base", "rpi5-datasheet", "--llama-bench", s(&bench), "--out", s(&out)]);
    assert_eq!(code, Some(0), "{err}");
    assert!(text.starts_with("fitted rpi5-datasheet-llamacpp from 20000 runs"), "{}", &text[..200.min(text.len())]);
    // One line per run, each with its own measured time.
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("Llama-3.2-1B")).collect();
    assert_eq!(lines.len(), 20_000);
    for (i, l) in lines.iter().take(8).enumerate() {
        let want = ["8.00 s", "2.00 s", "12.0 s", "3.00 s"][i % 4];
        assert!(l.contains(&format!("measured {want:>10}")), "{l}");
    }
    // Identical rows are predicted identically.
    for k in 0..4 {
        let mine: std::collections::BTreeSet<&str> = lines.iter().skip(k).step_by(4).copied().collect();
        assert_eq!(mine.len(), 1, "{mine:?}");
    }
    let p = rooflinebench::device::DeviceProfile::from_json(&std::fs::read_to_string(&out).unwrap(), "p").unwrap();
    assert_eq!(p.notes["fitted_runs"], 20_000);
}

#[test]
fn a_long_model_string_is_clipped_in_errors_and_notes() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!("\u{1b}[2J\r{} Q8_0", "x".repeat(10_000_000));
    // One row of the long name and 20 more unmatched (parameters 5 to 24): 21 reasons, 5 shown.
    let mut rows = vec![row(&long, 5, None, 512, 5e9)];
    rows.extend((0..20).map(|i| row(&format!("m{i}\u{1b} Q8_0"), 6 + i, None, 512, 5e9)));
    let bench = json_file(dir.path(), "big.json", &rows);
    let err = refused(&["devices", "check", "--device", "rpi5", "--llama-bench", s(&bench)], &["and 16 more"]);
    assert!(err.len() < 2048, "{} bytes", err.len());
    assert!(!err.contains('\u{1b}') && !err.trim_end().contains('\r'), "{err:?}");
    assert!(err.contains("(10000010 characters)"), "{err}");
    // A run that fits, beside a row whose weight type is not modelled: its note is clipped too.
    let notes = json_file(
        dir.path(),
        "notes.json",
        &[
            row(&long.replace("Q8_0", "Q5_K - Medium"), LLAMA_1B, None, 512, 5e9),
            row("llama 1B Q8_0", LLAMA_1B, None, 512, 5e9),
        ],
    );
    let (code, out, err) = run(&["devices", "check", "--device", "rpi5", "--llama-bench", s(&notes)]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.len() < 2048 && !out.contains('\u{1b}'), "{} bytes: {:?}", out.len(), &out[..out.len().min(500)]);
    assert!(out.contains("note: skipped 1 row(s) of") && out.contains("weight type not modelled"), "{out}");
}

#[test]
fn llama_bench_inputs_must_be_regular_files() {
    let bench = repo().join("data/llama-bench/rpi5/edge-llm-memory-wall-L1.md");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.json");
    refused(&["devices", "check", "--device", "rpi5", "--llama-bench", "/dev/zero"], &["/dev/zero", "a regular file"]);
    refused(
        &["devices", "fit", "--base", "rpi5-datasheet", "--llama-bench", "/dev/zero", "--out", s(&out)],
        &["/dev/zero", "a regular file"],
    );
    refused(
        &[
            "devices",
            "fit",
            "--base",
            "rpi5-datasheet",
            "--llama-bench",
            s(&bench),
            "--holdout",
            "/dev/zero",
            "--out",
            s(&out),
        ],
        &["/dev/zero", "a regular file"],
    );
    refused(&["devices", "check", "--device", "rpi5", "--llama-bench", s(dir.path())], &["a folder"]);
    // A FIFO with no writer would block a reader forever.
    let fifo = dir.path().join("fifo");
    if std::process::Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success()) {
        refused(&["devices", "check", "--device", "rpi5", "--llama-bench", s(&fifo)], &["fifo", "a regular file"]);
    }
    assert!(!out.exists());
}
