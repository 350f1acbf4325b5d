//! Hardening (issue 11): one regression test per defect a bad-input, fault and concurrency sweep
//! found. Every bad input must end in exit 2 with one line naming the file and the field, in
//! bounded time, and never leave a half-written or mixed output folder.

use crate::common::*;
use std::path::Path;
use std::time::{Duration, Instant};

const SPACE: &str = r#"name = "tiny"
[architecture]
layers = [4, 8]
hidden = [256]
heads = [4]
attention = ["mha", "gqa"]
kv_heads = [2]
ffn_multiplier = [2.0]
vocab = [8000]
[workload]
scenario = "siso"
"#;

/// SPACE with line `key = ...` replaced (or added under `[table]` when absent).
fn space_with(key: &str, value: &str) -> String {
    let mut found = false;
    let mut out: Vec<String> = SPACE
        .lines()
        .map(|l| {
            if l.split('=').next().unwrap().trim() == key {
                found = true;
                format!("{key} = {value}")
            } else {
                l.to_string()
            }
        })
        .collect();
    if !found {
        let at = out.iter().position(|l| l == "[workload]").unwrap();
        out.insert(at, format!("{key} = {value}"));
    }
    out.join("\n") + "\n"
}

// 1. merge checks a fingerprint of the space, profile, version and options.

#[test]
fn merge_refuses_shards_of_a_changed_space_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let spaces = dir.path().join("spaces");
    let original = std::fs::read_to_string(repo().join("search-spaces/around-135m.toml")).unwrap();
    let space = write(&spaces, "around-135m.toml", &original);
    let shards = dir.path().join("shards");
    for k in 0..3 {
        let shard = format!("{k}/3");
        bin()
            .args(["batch", s(&spaces), "--devices", "rpi5", "--shard", &shard, "--out", s(&shards)])
            .assert()
            .success();
    }
    let merge = |out: &str| -> Vec<String> {
        ["merge", s(&spaces), "--devices", "rpi5", "--shards", s(&shards), "--out"]
            .iter()
            .map(|a| a.to_string())
            .chain([dir.path().join(out).display().to_string()])
            .collect()
    };
    let args = merge("merged");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Unchanged: merges.
    bin().args(&args).assert().success();
    // kv_heads that divide no head count panicked; hidden panicked elsewhere; vocab merged into
    // a different recommendation with exit 0.
    for (from, to) in [
        ("kv_heads = [2, 3, 4]", "kv_heads = [5, 7, 11]"),
        ("hidden = [384, 448, 512, 576, 640, 768]", "hidden = [384, 448, 512, 576, 640, 1024]"),
        ("vocab = [32000, 49152]", "vocab = [64000, 98304]"),
    ] {
        std::fs::write(&space, original.replace(from, to)).unwrap();
        refused(&args, &["shard-0-of-3.json", "fingerprint.space", "rerun the shards"]);
    }
    // Another profile under the same name.
    std::fs::write(&space, &original).unwrap();
    let mut rpi5: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("devices/rpi5.json")).unwrap()).unwrap();
    rpi5["bandwidth_bytes_per_s"] = serde_json::json!(2.0e10);
    let profile = write(dir.path(), "rpi5.json", &rpi5.to_string());
    let mut other = args.clone();
    let at = other.iter().position(|a| *a == "rpi5").unwrap();
    other[at] = s(&profile);
    refused(&other, &["fingerprint.device"]);
    // An index past the slice (it panicked in space.rs), with the fingerprint intact.
    let file = shards.join("around-135m/rpi5/shard-1-of-3.json");
    let mut shard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    shard["outcome"]["front"][0]["index"] = serde_json::json!(1u64 << 40);
    std::fs::write(&file, shard.to_string()).unwrap();
    refused(&args, &["shard-1-of-3.json", "outcome.front[0].index", "valid candidate"]);
}

// 2. Ranges are counted before they expand.

/// `f` finishes within `limit` (it runs on a thread; a hang fails the test instead of hanging it).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).expect("took longer than the bound")
}

#[test]
fn huge_or_endless_ranges_are_refused_at_once() {
    for (key, value, field) in [
        ("layers", "{ from = 4294967290, to = 4294967295, step = 1 }", "architecture.layers"),
        ("hidden", "{ from = 1, to = 4000000000, step = 1 }", "architecture.hidden.step"),
        ("ffn_multiplier", "{ from = 1.0, to = 2.0, step = 1e-300 }", "architecture.ffn_multiplier.step"),
        ("ffn_multiplier", "{ from = 1.0, to = inf, step = 1.0 }", "architecture.ffn_multiplier.to"),
        ("ffn_multiplier", "{ from = -1e308, to = 2.0, step = 1.0 }", "architecture.ffn_multiplier.step"),
        ("ffn_multiplier", "{ from = 1e16, to = 1e16, step = 1.0 }", "architecture.ffn_multiplier"),
    ] {
        let text = space_with(key, value);
        let start = Instant::now();
        let r = within(Duration::from_secs(10), move || {
            rooflinebench::search::SearchSpace::parse(&text, "bad.toml", "bad").map(|_| ()).map_err(|e| e.to_string())
        });
        let err = r.expect_err(value);
        assert!(err.starts_with("bad.toml: field '") && err.contains(field), "{value}: {err}");
        assert!(start.elapsed() < Duration::from_secs(2), "{value}: {:?}", start.elapsed());
    }
}

#[test]
fn oversized_input_files_are_refused_before_parsing() {
    // A 6 MB list of numbers took 1.6 s and 400 MB inside the TOML parser before any check.
    let dir = tempfile::tempdir().unwrap();
    let list = format!("[{}]", vec!["7"; 2_000_000].join(", "));
    let space = write(dir.path(), "big.toml", &space_with("vocab", &list));
    refused(
        &["search", s(&space), "--device", "rpi5", "--out", s(&dir.path().join("o"))],
        &["big.toml", "(file)", "1048576 bytes"],
    );
}

// 3. Profile figures are bounded; a plot never gets an infinite coordinate.

#[test]
fn profiles_with_unphysical_figures_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let base: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("devices/rtx3090.json")).unwrap()).unwrap();
    for (field, value) in [
        ("bandwidth_bytes_per_s", serde_json::json!(1e-300)),
        ("peak_flops", serde_json::json!({"f32": 1e300})),
        ("memory_bytes", serde_json::json!(1e300)),
        ("on_chip_bytes", serde_json::json!(0)),
        ("on_chip_bytes", serde_json::json!(-1)),
        ("kernel_overhead_s", serde_json::json!(1e300)),
    ] {
        let mut p = base.clone();
        p[field] = value;
        let path = write(dir.path(), "bad.json", &p.to_string());
        refused(&["devices", "show", s(&path)], &["bad.json", field]);
        refused(
            &["plot", "roofline", "--model", s(&model_path("SmolLM2-135M")), "--device", s(&path), "--out", "x.svg"],
            &[field],
        );
    }
}

#[test]
fn a_roofline_plot_with_infinite_figures_still_finishes() {
    use rooflinebench::report::plot::{roofline_svg, RoofLine, RooflinePoint};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.svg");
    let p = path.clone();
    within(Duration::from_secs(20), move || {
        let roofs = [RoofLine { label: "x".into(), peak_flop_per_s: 1e300, bandwidth_bytes_per_s: 1e-300 }];
        let points = [
            RooflinePoint {
                label: "a".into(),
                roof: 0,
                model: None,
                intensity_flop_per_byte: f64::INFINITY,
                performance_flop_per_s: 1.0,
            },
            RooflinePoint {
                label: "b".into(),
                roof: 0,
                model: None,
                intensity_flop_per_byte: 2.0,
                performance_flop_per_s: f64::NAN,
            },
        ];
        roofline_svg(&p, "t", &roofs, &points).unwrap();
    });
    assert!(std::fs::read_to_string(&path).unwrap().contains("<svg"));
}

// 4. Names that become paths must be plain file names.

#[test]
fn names_that_are_not_plain_file_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    for name in ["../../x", "/tmp/x", "a/b", "..", ".hidden", ""] {
        let space = write(dir.path(), "s.toml", &space_with("name", &format!("{name:?}")));
        refused(&["batch", s(space.parent().unwrap()), "--devices", "rpi5", "--out", s(&out)], &["s.toml", "'name'"]);
        let mut p: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(repo().join("devices/rpi5.json")).unwrap()).unwrap();
        p["name"] = serde_json::json!(name);
        let profile = write(dir.path(), "p.json", &p.to_string());
        refused(&["devices", "show", s(&profile)], &["p.json", "'name'"]);
        std::fs::remove_file(&space).unwrap();
    }
    assert!(!dir.path().join("x").exists() && !Path::new("/tmp/x/rpi5").exists());
}

// 5. An output folder is written as a whole.

/// File names in `dir`, hidden ones included.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn a_search_replaces_the_folder_whole_and_clears_stale_temporaries() {
    let dir = tempfile::tempdir().unwrap();
    let space = write(dir.path(), "tiny.toml", SPACE);
    let out = dir.path().join("out");
    // An earlier run's folder (with `--per-layer`'s extra files) is the tool's: replaced whole.
    bin().args(["search", s(&space), "--device", "rpi5", "--out", s(&out), "--per-layer"]).assert().success();
    assert!(out.join("per_layer.md").exists());
    // What a killed run left: its marked temporary (a dead owner) goes; look-alikes stay.
    let dead = dir.path().join(".out.rooflinebench-4194303.tmp");
    write(&dead, "owner", "rooflinebench temporary\n4194303 1\n");
    write(&dead, "new/pareto.csv", "half");
    let lookalike = write(dir.path(), ".out.rooflinebench-4194304.tmp", "a user's file");
    let old_style = write(dir.path(), ".out.staging.4194303/thesis.tex", "a user's file");
    bin().args(["search", s(&space), "--device", "rpi5", "--out", s(&out)]).assert().success();
    assert_eq!(
        names(&out),
        [
            ".rooflinebench.json",
            "device.json",
            "front.svg",
            "outcome.json",
            "pareto.csv",
            "quality.svg",
            "recommended.json",
            "report.html",
            "roofline.svg",
            "space.toml",
            "summary.md"
        ]
    );
    if Path::new("/proc/self/stat").exists() {
        assert!(!dead.exists(), "a dead run's temporary is removed");
    }
    assert!(lookalike.exists() && old_style.exists(), "files that only look like temporaries stay");
    // A file written alone (a shard) leaves nothing beside it.
    let shards = dir.path().join("shards");
    bin().args(["search", s(&space), "--device", "rpi5", "--shard", "0/2", "--out", s(&shards)]).assert().success();
    assert_eq!(names(&shards), ["shard-0-of-2.json"]);
}

#[test]
fn an_interrupted_search_removes_what_was_in_progress_and_keeps_the_earlier_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let tiny = write(dir.path(), "tiny.toml", SPACE);
    bin().args(["search", s(&tiny), "--device", "rpi5", "--out", s(&out)]).assert().success();
    let before: Vec<Vec<u8>> = names(&out).iter().map(|n| std::fs::read(out.join(n)).unwrap()).collect();
    // A search of some seconds, into the same folder, stopped by SIGTERM and by SIGINT.
    let big = repo().join("benches/spaces/ten-million.toml");
    for signal in ["-TERM", "-INT"] {
        let exe = assert_cmd::cargo::cargo_bin("rooflinebench");
        let mut child = std::process::Command::new(exe)
            .args(["search", s(&big), "--device", "rpi5", "--force", "--threads", "1", "--out", s(&out)])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let staging = dir.path().join(format!(".out.rooflinebench-{}.tmp", child.id()));
        let start = Instant::now();
        while !staging.exists() && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(staging.exists(), "the run stages its folder");
        std::process::Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "{signal}: exits with 130 after cleaning up");
        assert!(!staging.exists(), "{signal}: the unfinished folder is removed");
        let after: Vec<Vec<u8>> = names(&out).iter().map(|n| std::fs::read(out.join(n)).unwrap()).collect();
        assert_eq!(before, after, "{signal}: the earlier run is untouched");
    }
}

// 6. One run at a time per output folder.

#[test]
fn a_second_run_into_a_locked_folder_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let space = write(dir.path(), "tiny.toml", SPACE);
    let out = dir.path().join("out");
    let held = rooflinebench::files::Lock::take(&out).unwrap();
    let err = refused(&["search", s(&space), "--device", "rpi5", "--out", s(&out)], &["another rooflinebench run"]);
    assert!(err.contains(s(&out)), "{err}");
    refused(&["batch", s(dir.path()), "--devices", "rpi5", "--out", s(&out)], &["another rooflinebench run"]);
    drop(held);
    bin().args(["search", s(&space), "--device", "rpi5", "--out", s(&out)]).assert().success();
}

// 7. Every number is validated where it enters.

#[test]
fn out_of_range_space_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mla = |extra: &str| {
        SPACE.replace(r#"attention = ["mha", "gqa"]"#, r#"attention = ["mla"]"#).replace("kv_heads = [2]", extra)
    };
    let cases = [
        (mla("mla_kv_lora_rank = [64]\nmla_v_head_dim = [0]"), "architecture.mla_v_head_dim"),
        (mla("mla_kv_lora_rank = [64]\nmla_nope_head_dim = [0]"), "architecture.mla_nope_head_dim"),
        (
            mla("mla_kv_lora_rank = [64]\nffn = [\"moe\"]\nmoe_experts = [8]\nmoe_top_k = [2]\nmoe_expert_multiplier = [-1.0]"),
            "architecture.moe_expert_multiplier",
        ),
        (space_with("ffn_multiplier", "[inf]"), "architecture.ffn_multiplier"),
        (space_with("ffn_multiplier", "[1e7]"), "architecture.ffn_multiplier"),
        (space_with("hidden", "[4294967295]"), "architecture.hidden"),
        (format!("{SPACE}[constraints]\nmemory_budget_bytes = nan\n"), "constraints.memory_budget_bytes"),
        (format!("{SPACE}[constraints]\nmemory_budget_bytes = -1.0\n"), "constraints.memory_budget_bytes"),
        (format!("{SPACE}[constraints]\nmax_ttft_s = inf\n"), "constraints.max_ttft_s"),
        (SPACE.replace("scenario = \"siso\"", "batch = 0\nscenario = \"siso\""), "workload.batch"),
        (
            SPACE.replace("scenario = \"siso\"", "[[workload.mix]]\nprompt = 4294967295\ngenerate = 8\nweight = 1.0"),
            "workload.mix.prompt",
        ),
    ];
    for (text, field) in cases {
        let space = write(dir.path(), "bad.toml", &text);
        refused(&["search", s(&space), "--device", "rpi5", "--out", s(&dir.path().join("o"))], &["bad.toml", field]);
    }
}

#[test]
fn out_of_range_options_and_configs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for t in ["nan", "inf", "1e300", "-1"] {
        refused(
            &["batch", "search-spaces", "--devices", "rpi5", "--out", s(&dir.path().join("o")), "--tolerance", t],
            &["--tolerance"],
        );
    }
    let model = model_path("SmolLM2-135M");
    for (flag, v) in [("--prompt", "4294967295"), ("--generate", "4294967295")] {
        let other = if flag == "--prompt" { "--generate" } else { "--prompt" };
        refused(&["analyze", "--model", s(&model), "--device", "rpi5", flag, v, other, "8"], &[v]);
    }
    let base: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    for (field, value) in [
        ("rms_norm_eps", serde_json::json!(-1)),
        ("hidden_size", serde_json::json!(4294967295u64)),
        ("vocab_size", serde_json::json!(4294967295u64)),
        ("intermediate_size", serde_json::json!(4294967295u64)),
        ("num_hidden_layers", serde_json::json!(4294967295u64)),
        ("rope_theta", serde_json::json!(-5.0)),
    ] {
        let mut c = base.clone();
        c[field] = value;
        let path = write(dir.path(), "config.json", &c.to_string());
        refused(&["analyze", "--model", s(&path), "--device", "rpi5"], &["config.json", field]);
    }
}

// 8. Messages name the field, stay on one line and echo at most a clipped value.

#[test]
fn messages_name_the_field_and_stay_short() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("o");
    let search = |text: &str, needles: &[&str]| {
        let space = write(dir.path(), "bad.toml", text);
        refused(&["search", s(&space), "--device", "rpi5", "--out", s(&o)], needles)
    };
    search(&space_with("layers", "[-1]"), &["architecture.layers", "-1"]);
    search(&space_with("layers", "\"12\""), &["architecture.layers", "a list of values or a range"]);
    search(&space_with("layers", "{ from = 4, to = 12, step = -2 }"), &["architecture.layers", "-2"]);
    search(&space_with("layrs", "[4]"), &["did you mean `layers`"]);
    let err = search(&space_with("description", &format!("{:?}", "x".repeat(10_000_000))), &["bad.toml"]);
    assert!(err.len() < 600, "{} bytes", err.len());
    let err = search(&space_with("attention", &format!("[{:?}]", "m".repeat(1_000_000))), &["bad.toml"]);
    assert!(err.len() < 600, "{} bytes", err.len());
    let err = search(
        &SPACE
            .replace("[\"mha\", \"gqa\"]", "[\"mha\"]")
            .replace("vocab = [8000]", "vocab = [8000]\n[precision]\nweights = [\"fp8\"]"),
        &["precision.weights", "fp8"],
    );
    assert!(!err.contains("expected unknown"), "{err}");
    search(
        &SPACE.replace("scenario = \"siso\"", "[[workload.mix]]\nprompt = 0\ngenerate = 8\nweight = 1.0"),
        &["workload.mix.prompt"],
    );
    search(&format!("{SPACE}[constraints]\nmax_params = 1.0\n"), &["no feasible candidate", "bad.toml"]);
    let space = write(dir.path(), "big.toml", SPACE);
    refused(
        &["search", s(&space), "--device", "rpi5", "--max-candidates", "1", "--out", s(&o)],
        &["big.toml", "--force"],
    );
    // Clap's errors: one line, naming the flag.
    refused(&["search", s(&space), "--device", "rpi5", "--threads", "-1"], &["--threads"]);
    refused(&["search", s(&space), "--devise", "rpi5"], &["--devise"]);
    refused(&["analyze"], &["--model"]);
    let mut c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model_path("SmolLM2-135M")).unwrap()).unwrap();
    c["model_type"] = serde_json::json!("x".repeat(10_000_000));
    let path = write(dir.path(), "config.json", &c.to_string());
    let err = refused(&["analyze", "--model", s(&path), "--device", "rpi5"], &["config.json", "model_type"]);
    assert!(err.len() < 600, "{} bytes", err.len());
    c["model_type"] = serde_json::json!("lama");
    let path = write(dir.path(), "config.json", &c.to_string());
    let err = refused(&["analyze", "--model", s(&path), "--device", "rpi5"], &["config.json", "did you mean 'llama'"]);
    assert!(!err.contains("deepseek_v3"), "{err}");
    let mut p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("devices/rpi5.json")).unwrap()).unwrap();
    p["bandwith_bytes_per_s"] = p["bandwidth_bytes_per_s"].clone();
    let path = write(dir.path(), "p.json", &p.to_string());
    refused(&["devices", "show", s(&path)], &["p.json", "did you mean `bandwidth_bytes_per_s`"]);
}

// 9. Threads are bounded.

#[test]
fn thread_counts_past_the_bound_are_refused_at_once() {
    let start = Instant::now();
    for t in ["5000", "100000", "0"] {
        refused(&["search", "search-spaces/around-135m.toml", "--device", "rpi5", "--threads", t], &["--threads", t]);
    }
    assert!(start.elapsed() < Duration::from_secs(10));
}

// 10. Unwritable output is found before the work; reproduce carries its own data.

#[test]
fn an_unwritable_output_folder_is_refused_before_the_search() {
    if !Path::new("/proc/self/fdinfo").is_dir() {
        return; // Linux only: a folder nobody (root included) can write.
    }
    let (code, _, err) =
        run(&["search", "search-spaces/around-135m.toml", "--device", "rpi5", "--out", "/proc/self/fdinfo"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("/proc/self/fdinfo") && !err.contains("candidates on"), "{err}");
}

#[test]
fn reproduce_uses_the_models_the_binary_carries() {
    let carried = rooflinebench::reproduce::paper_models().unwrap();
    let shipped = rooflinebench::reproduce::models(&repo().join("models")).unwrap();
    assert_eq!(carried, shipped);
}
