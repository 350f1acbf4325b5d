//! Hardening of the hostile sweep: only the compiled-in models folder is read; a `--model` GGUF
//! must be a regular GGUF file (a FIFO hung the worker); an interrupted run stops its engine
//! worker; llama-bench inputs are capped in bytes across files and in rows; error lines are
//! printable and bounded.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Runs the binary; returns (exit code, stdout, raw stderr bytes).
fn run_raw(args: &[&str]) -> (Option<i32>, String, Vec<u8>) {
    let out = bin().args(args).timeout(Duration::from_secs(60)).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), out.stderr)
}

fn bench_file() -> PathBuf {
    repo().join("data/llama-bench/rpi5/edge-llm-memory-wall-L1.md")
}

// 1. Only the repository's models folder.

/// `shipped_models` read `./models/*.json` when the compiled-in folder was missing (a copied
/// binary), following links there (`models/passwd.json` -> /etc/passwd). The fallback must be
/// gone and links skipped: checked in the source, since the compiled-in folder exists here.
#[test]
fn shipped_models_read_only_the_compiled_in_folder_and_no_links() {
    let src = std::fs::read_to_string(repo().join("src/cli/devices.rs")).unwrap();
    let start = src.find("fn shipped_models()").expect("shipped_models is in devices.rs");
    let body = &src[start..start + src[start..].find("\n}\n").unwrap()];
    assert!(body.contains("env!(\"CARGO_MANIFEST_DIR\")"), "{body}");
    assert!(!body.contains("PathBuf::from(\"models\")") && !body.contains("Path::new(\"models\")"), "{body}");
    assert!(body.contains("file_type()") && body.contains("is_file()"), "links must be skipped: {body}");
    // And a current folder holding models/ linked to a system file is never read or echoed.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("models")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("models/passwd.json")).unwrap();
    let out = bin()
        .current_dir(dir.path())
        .args(["devices", "check", "--device", "rpi5", "--llama-bench", s(&bench_file())])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!all.contains("root:") && !all.contains("passwd"), "{all}");
}

// 2. A --model GGUF is a regular file starting with GGUF, checked before the worker opens it.

#[test]
fn a_model_gguf_that_is_a_fifo_a_folder_or_not_gguf_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let bench = bench_file();
    let out = dir.path().join("p.json");
    let fifo = dir.path().join("x.gguf");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let want = "a GGUF file (a regular file starting with GGUF)";
    let started = std::time::Instant::now();
    refused(
        &["devices", "check", "--device", "rpi5", "--llama-bench", s(&bench), "--model", s(&fifo)],
        &[want, "pipe"],
    );
    refused(
        &[
            "devices",
            "fit",
            "--base",
            "rpi5-datasheet",
            "--llama-bench",
            s(&bench),
            "--model",
            s(&fifo),
            "--out",
            s(&out),
        ],
        &[want],
    );
    assert!(started.elapsed() < Duration::from_secs(30), "the FIFO was opened");
    let folder = dir.path().join("d.gguf");
    std::fs::create_dir(&folder).unwrap();
    refused(&["devices", "check", "--device", "rpi5", "--llama-bench", s(&bench), "--model", s(&folder)], &[want]);
    let text = dir.path().join("t.gguf");
    std::fs::write(&text, "not a model").unwrap();
    refused(&["devices", "check", "--device", "rpi5", "--llama-bench", s(&bench), "--model", s(&text)], &[want]);
    assert!(!out.exists());
}

// 3. An interrupted parent stops its engine worker.

/// Children of `parent` whose command line names `engine-worker` (zombies have none).
#[cfg(feature = "llamacpp")]
fn workers_of(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Fields after the command name (which may hold spaces): state, ppid, ...
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent) && running_worker(pid) {
            found.push(pid);
        }
    }
    found
}

/// Whether `pid` is a live (not zombie) engine worker.
#[cfg(feature = "llamacpp")]
fn running_worker(pid: u32) -> bool {
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 1..].trim_start().starts_with('Z')))
        .unwrap_or(true);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    !zombie && String::from_utf8_lossy(&cmdline).contains("engine-worker")
}

#[cfg(feature = "llamacpp")]
#[test]
fn an_interrupted_run_stops_its_engine_worker() {
    let keep = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("rooflinebench"))
        .args(["measure", "--model", s(&model_path("SmolLM2-135M")), "--test", "tg16", "--repeats", "50"])
        .arg("--keep")
        .arg(keep.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let parent = child.id();
    // The first worker builds the GGUF file (and logs as it goes, so a dead parent's closed pipe
    // would stop it anyway); the second one times it, quietly: that is the one to strand.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let mut builder = None;
    let workers = loop {
        let w = workers_of(parent);
        match (builder, w.first()) {
            (None, Some(&b)) => builder = Some(b),
            (Some(b), Some(_)) if !w.contains(&b) => break w,
            _ => {}
        }
        if std::time::Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no engine worker seen under {parent}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Let the worker settle into its job, then interrupt the parent only.
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill(2) on our own child, not yet waited for.
    unsafe {
        libc::kill(parent as libc::pid_t, libc::SIGINT);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if std::time::Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let status = status.unwrap_or_else(|| {
        let _ = child.kill();
        child.wait().unwrap()
    });
    while std::time::Instant::now() < deadline && workers.iter().any(|&w| running_worker(w)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<u32> = workers.iter().copied().filter(|&w| running_worker(w)).collect();
    for &w in &left {
        // SAFETY: a worker of this test's run, stopped so it does not outlive the test.
        unsafe {
            libc::kill(w as libc::pid_t, libc::SIGKILL);
        }
    }
    assert!(left.is_empty(), "engine worker(s) {left:?} outlived the interrupted run");
    assert_eq!(status.code(), Some(130), "{status:?}");
}

// 4. llama-bench inputs: 16 MiB a file and across a flag's files, 100,000 rows.

/// A sparse file of `len` bytes (reads as NULs).
fn sparse(dir: &Path, name: &str, len: u64) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().set_len(len).unwrap();
    p
}

/// A markdown table of `rows` rows llama-bench's way.
fn markdown(dir: &Path, name: &str, rows: usize) -> PathBuf {
    let mut t = String::from("| model | params | test | t/s |\n|---|---|---|---|\n");
    for _ in 0..rows {
        t.push_str("| llama 1B Q8_0 | 1.24 B | pp512 | 100.0 |\n");
    }
    let p = dir.join(name);
    std::fs::write(&p, t).unwrap();
    p
}

#[test]
fn llama_bench_files_are_capped_at_16_mib_each_and_across_a_flags_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.json");
    let limit = (16u64 << 20).to_string();
    let big = sparse(dir.path(), "big.md", (16 << 20) + 1);
    refused(&["devices", "check", "--device", "rpi5", "--llama-bench", s(&big)], &[s(&big), &limit]);
    // Two files under the limit each, over it together: refused before either is read.
    let a = sparse(dir.path(), "a.md", 9 << 20);
    let b = sparse(dir.path(), "b.md", 9 << 20);
    refused(
        &["devices", "check", "--device", "rpi5", "--llama-bench", s(&a), "--llama-bench", s(&b)],
        &["--llama-bench", &limit],
    );
    let bench = bench_file();
    refused(
        &[
            "devices",
            "fit",
            "--base",
            "rpi5-datasheet",
            "--llama-bench",
            s(&bench),
            "--holdout",
            s(&a),
            "--holdout",
            s(&b),
            "--out",
            s(&out),
        ],
        &["--holdout", &limit],
    );
    assert!(!out.exists());
}

#[test]
fn more_than_100000_llama_bench_rows_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let one = markdown(dir.path(), "one.md", 100_001);
    refused(&["devices", "check", "--device", "rpi5", "--llama-bench", s(&one)], &["100000"]);
    // Across files too.
    let a = markdown(dir.path(), "a.md", 60_000);
    let b = markdown(dir.path(), "b.md", 60_000);
    refused(&["devices", "check", "--device", "rpi5", "--llama-bench", s(&a), "--llama-bench", s(&b)], &["100000"]);
    // As JSON lines.
    let row = r#"{"model_type":"llama 1B Q8_0","model_n_params":1235814400,"n_prompt":512,"n_gen":0,"avg_ns":5e9}"#;
    let jsonl = dir.path().join("r.jsonl");
    std::fs::write(&jsonl, format!("{row}\n").repeat(100_001)).unwrap();
    refused(&["devices", "check", "--device", "rpi5", "--llama-bench", s(&jsonl)], &["100000"]);
}

// 5. Error lines: printable, at most about 1,000 characters.

/// Exit 2, and stderr one line of printable bytes (the final newline aside), at most ~1,100.
fn printable_error(args: &[&str]) {
    let (code, out, err) = run_raw(args);
    assert_eq!(code, Some(2), "{args:?}: {out}{}", String::from_utf8_lossy(&err));
    let (last, body) = err.split_last().unwrap();
    assert_eq!(*last, b'\n');
    assert!(body.iter().all(|&b| b >= 0x20 && b != 0x7f), "control byte in {:?}", String::from_utf8_lossy(&err));
    assert!(err.len() <= 1100, "{} bytes", err.len());
}

#[test]
fn error_lines_hold_no_control_characters_and_stay_short() {
    let dir = tempfile::tempdir().unwrap();
    let space = repo().join("tests/fixtures/small-space.toml");
    let found = dir.path().join("found");
    bin().args(["search", s(&space), "--device", "rpi5", "--out", s(&found)]).assert().success();
    // A folder given as --out, its name holding an escape sequence.
    let escaped = dir.path().join("e\u{1b}[31mx");
    std::fs::create_dir(&escaped).unwrap();
    printable_error(&["calibrate", "--out", s(&escaped), "--quick"]);
    let bench = bench_file();
    printable_error(&["devices", "fit", "--base", "rpi5-datasheet", "--llama-bench", s(&bench), "--out", s(&escaped)]);
    // The export candidate argument.
    let x = dir.path().join("x");
    printable_error(&["export", s(&found), "#\u{1b}[31m", "--out", s(&x)]);
    printable_error(&["export", s(&found), "#\r\t\u{7}0", "--out", s(&x)]);
    // Long messages: a candidate of 5,000 digits, a long --out path.
    let digits = format!("#{}", "1".repeat(5000));
    printable_error(&["export", s(&found), &digits, "--out", s(&x)]);
    let long = dir.path().join("a".repeat(200)).join("b".repeat(200)).join("c".repeat(200)).join("d".repeat(200));
    let long_dir = dir.path().join(format!("{}\u{1b}", "f".repeat(250)));
    std::fs::create_dir(&long_dir).unwrap();
    printable_error(&["calibrate", "--out", s(&long_dir), "--quick"]);
    printable_error(&["export", s(&found), &digits, "--out", s(&long)]);
    assert!(!x.exists());
}

#[test]
fn printable_replaces_controls_joins_lines_and_keeps_both_ends() {
    use rooflinebench::error::printable;
    assert_eq!(printable("a\u{1b}[31mb\tc\rd"), "a?[31mb?c?d");
    assert_eq!(printable("one\ntwo\n"), "one; two");
    assert_eq!(printable("plain"), "plain");
    let long = format!("START{}END", "x".repeat(5000));
    let p = printable(&long);
    assert!(p.chars().count() <= 1000, "{}", p.len());
    assert!(p.starts_with("START") && p.ends_with("END") && p.contains("(5008 characters)"), "{p}");
    let wide = "é".repeat(3000);
    assert!(printable(&wide).chars().count() <= 1000);
}
