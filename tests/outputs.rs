//! What the tool hands to the rest of the ecosystem and to people: exported configs and the
//! `export` command, the command line's help and completions, CSV against JSON, the several-model
//! `analyze`, the per-layer files, and report.html rendered in headless Chromium.

use crate::common::*;
use clap::CommandFactory;
use rooflinebench::arch::{export_hf_config, parse_hf_config};
use rooflinebench::cli::Cli;
use std::path::Path;

fn stdout(args: &[&str]) -> String {
    let out = bin().args(args).assert().success().get_output().clone();
    String::from_utf8(out.stdout).unwrap()
}

fn small_space() -> String {
    repo().join("tests/fixtures/small-space.toml").display().to_string()
}

#[test]
fn every_argument_and_command_has_help_text() {
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" || arg.is_hide_set() {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            if sub.is_hide_set() || sub.get_name() == "help" {
                continue;
            }
            if sub.get_about().is_none() {
                missing.push(format!("{path} {} (command)", sub.get_name()));
            }
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    let mut missing = Vec::new();
    walk(&Cli::command(), "rooflinebench", &mut missing);
    assert!(missing.is_empty(), "no help text: {missing:?}");
}

#[test]
fn completions_cover_every_command() {
    let bash = stdout(&["completions", "bash"]);
    for cmd in ["analyze", "search", "batch", "export", "completions", "plot", "devices"] {
        assert!(bash.contains(cmd), "{cmd} missing from the bash completions");
    }
    assert!(stdout(&["completions", "zsh"]).contains("#compdef rooflinebench"));
    bin().args(["completions", "tcsh"]).assert().code(2);
}

/// A dense MLA model exported for transformers says "no routed experts, every layer dense"
/// (transformers' DeepSeek defaults are 64 routed experts from layer 0); one without the count
/// is read as transformers reads it: an error, not silently dense.
#[test]
fn dense_deepseek_configs_say_so_and_an_absent_expert_count_is_not_dense() {
    let dense = r#"{"model_type":"deepseek_v2","hidden_size":256,"num_hidden_layers":3,"vocab_size":2048,"num_attention_heads":4,"kv_lora_rank":128,"qk_nope_head_dim":64,"qk_rope_head_dim":32,"v_head_dim":64,"intermediate_size":512}"#;
    let err = parse_hf_config(dense, "m.json", "m").unwrap_err().to_string();
    assert!(err.starts_with("m.json: field 'n_routed_experts'") && err.contains("64"), "{err}");
    for extra in [r#""n_routed_experts":0"#, r#""first_k_dense_replace":3"#] {
        let text = dense.replace("\"intermediate_size\":512", &format!("\"intermediate_size\":512,{extra}"));
        let arch = parse_hf_config(&text, "m.json", "m").unwrap();
        assert!(!arch.ffn.is_moe(), "{extra}");
        let config = export_hf_config(&arch);
        assert_eq!(config["n_routed_experts"], 0);
        assert_eq!(config["first_k_dense_replace"], 3);
        assert_eq!(parse_hf_config(&config.to_string(), "x", "m").unwrap(), arch);
    }
    // MoE without a shared-expert count: transformers' DeepSeek-V2 default is 2.
    let moe = dense.replace(
        "\"intermediate_size\":512",
        r#""intermediate_size":512,"n_routed_experts":8,"num_experts_per_tok":2,"moe_intermediate_size":128"#,
    );
    let arch = parse_hf_config(&moe, "m.json", "m").unwrap();
    let rooflinebench::arch::Ffn::Moe(m) = arch.ffn else { panic!("moe") };
    assert_eq!((m.num_shared_experts, m.first_k_dense), (2, 0));
}

#[test]
fn transformers_5_rope_parameters_give_the_rope_theta() {
    let text = r#"{"model_type":"llama","hidden_size":256,"num_hidden_layers":2,"vocab_size":1000,"num_attention_heads":4,"intermediate_size":512,"rope_parameters":{"rope_theta":500000.0,"rope_type":"default"}}"#;
    assert_eq!(parse_hf_config(text, "x", "m").unwrap().rope_theta, 500000.0);
}

/// Every candidate exports as transformers loads it: heads that do not divide hidden as
/// mistral (LlamaConfig rejects them), the context from the workload (SISO: 128 + 128).
#[test]
fn export_writes_any_candidate_of_a_space_or_a_search_folder() {
    let dir = tempfile::tempdir().unwrap();
    let space = repo().join("search-spaces/around-1b.toml").display().to_string();
    let mut seen_mistral = false;
    let mut seen_llama = false;
    for index in (0..4000).step_by(37) {
        let out = dir.path().join(format!("{index}.json"));
        let run = bin().args(["export", &space, &format!("#{index}"), "--out"]).arg(&out).output().unwrap();
        if !run.status.success() {
            let err = String::from_utf8(run.stderr).unwrap();
            assert_eq!(run.status.code(), Some(2));
            assert!(err.contains("is not a valid model") && err.lines().count() == 1, "{err}");
            continue;
        }
        let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(config["max_position_embeddings"], 256);
        let (hidden, heads) =
            (config["hidden_size"].as_u64().unwrap(), config["num_attention_heads"].as_u64().unwrap());
        match config["model_type"].as_str().unwrap() {
            "mistral" => {
                assert_ne!(hidden % heads, 0);
                assert!(config["sliding_window"].is_null());
                seen_mistral = true;
            }
            "llama" => {
                assert_eq!(hidden % heads, 0);
                seen_llama = true;
            }
            other => panic!("#{index}: {other}"),
        }
    }
    assert!(seen_mistral && seen_llama);
    // A search folder by `recommended` gives its recommended.json's model.
    let out = dir.path().join("rec.json");
    bin().args(["export", "results/around-135m/rpi5", "recommended", "--out"]).arg(&out).assert().success();
    let a: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let b: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("results/around-135m/rpi5/recommended.json").unwrap()).unwrap();
    for key in ["model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"] {
        assert_eq!(a[key], b[key], "{key}");
    }
    // Past the end: one line naming the range.
    let err = bin().args(["export", &space, "#99999999", "--out"]).arg(&out).assert().code(2).get_output().clone();
    let err = String::from_utf8(err.stderr).unwrap();
    assert!(err.contains("candidates (#0 to #") && err.lines().count() == 1, "{err}");
}

#[test]
fn analyze_over_several_models_skips_an_unsupported_one_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("gpt2.json");
    std::fs::write(&bad, r#"{"model_type":"gpt2","n_embd":768}"#).unwrap();
    let models =
        format!("{},{},{}", model_path("SmolLM2-135M").display(), bad.display(), model_path("Qwen3-0.6B").display());
    let out = bin().args(["analyze", "--model", &models, "--device", "rpi5", "--scenario", "siso"]).assert().success();
    let out = out.get_output();
    let (text, err) = (String::from_utf8(out.stdout.clone()).unwrap(), String::from_utf8(out.stderr.clone()).unwrap());
    assert!(err.contains("warning: skipping") && err.contains("gpt2"), "{err}");
    // The compact table: a header and one row per model, before the details.
    let compact: Vec<&str> = text.lines().take_while(|l| !l.is_empty()).collect();
    assert_eq!(compact.len(), 3, "{text}");
    assert!(compact[1].starts_with("SmolLM2-135M") && compact[2].starts_with("Qwen3-0.6B"), "{text}");
    // Only unsupported models: still an error.
    bin().args(["analyze", "--model", bad.to_str().unwrap(), "--device", "rpi5"]).assert().code(2);
}

#[test]
fn analyze_csv_carries_every_json_field() {
    let m = model_path("Llama-3.2-1B").display().to_string();
    let base = ["analyze", "--model", &m, "--device", "rpi5", "--scenario", "siso"];
    let json: serde_json::Value = serde_json::from_str(&stdout(&[&base[..], &["--format", "json"]].concat())).unwrap();
    let csv = stdout(&[&base[..], &["--format", "csv"]].concat());
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let entry = json[0].as_object().unwrap();
    for (key, value) in entry {
        match value {
            serde_json::Value::Object(inner) if key == "footprint" => {
                for k in inner.keys() {
                    let name = match k.as_str() {
                        "total_bytes" => "footprint_bytes".to_string(),
                        "usable_bytes" => "usable_memory_bytes".to_string(),
                        "fits" => "fits".to_string(),
                        other => format!("footprint_{other}"),
                    };
                    assert!(header.contains(&name.as_str()), "footprint.{k} ({name}) missing from {header:?}");
                }
            }
            // The band's ranges are a low and a high column each.
            serde_json::Value::Object(inner) if key == "error_band" => {
                for k in inner.keys() {
                    let names = match k.as_str() {
                        "coverage" => vec!["band_coverage".to_string()],
                        "basis" => vec!["band_basis".to_string()],
                        range => vec![format!("{range}_low"), format!("{range}_high")],
                    };
                    for n in names {
                        assert!(header.contains(&n.as_str()), "error_band.{k} ({n}) missing from {header:?}");
                    }
                }
            }
            // Phases are rows: their fields are columns.
            serde_json::Value::Object(inner) => {
                for k in inner.keys() {
                    assert!(header.contains(&k.as_str()), "{key}.{k} missing from {header:?}");
                }
            }
            _ => assert!(header.contains(&key.as_str()), "{key} missing from {header:?}"),
        }
    }
    // --per-op: each phase's total row, then its operators, whose FLOPs sum to it.
    let per_op = stdout(&[&base[..], &["--format", "csv", "--per-op"]].concat());
    let mut r = csv::Reader::from_reader(per_op.as_bytes());
    let h = r.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|x| x == name).unwrap();
    let (phase, op, flops) = (col("phase"), col("op"), col("flops"));
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    for p in ["prefill", "decode"] {
        let total: f64 = rows.iter().find(|x| &x[phase] == p && &x[op] == "total").unwrap()[flops].parse().unwrap();
        let sum: f64 =
            rows.iter().filter(|x| &x[phase] == p && &x[op] != "total").map(|x| x[flops].parse::<f64>().unwrap()).sum();
        assert!(close(sum, total, 1e-9), "{p}: {sum} vs {total}");
    }
}

#[test]
fn search_without_out_writes_outside_results_and_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin().current_dir(dir.path()).args(["search", &small_space(), "--device", "rpi5"]).assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains("wrote search-out/small/rpi5"), "{text}");
    assert!(dir.path().join("search-out/small/rpi5/pareto.csv").exists());
    assert!(!dir.path().join("results").exists());
}

#[test]
fn summaries_use_user_facing_names_and_labels_tell_candidates_apart() {
    let dir = tempfile::tempdir().unwrap();
    let space = dir.path().join("s.toml");
    let text = std::fs::read_to_string(small_space())
        .unwrap()
        .replace("[constraints]", "[objective]\nmetric = \"decode_tokens_per_s\"\n\n[constraints]");
    std::fs::write(&space, text).unwrap();
    let out = dir.path().join("out");
    let run = bin().args(["search", space.to_str().unwrap(), "--device", "rpi5", "--out"]).arg(&out).assert().success();
    let text = String::from_utf8(run.get_output().stdout.clone()).unwrap();
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    for s in [&text, &md] {
        assert!(!s.contains("DecodeTokensPerS") && !s.contains("Objective: Rip"), "{s}");
        assert!(!s.contains(" m tok/s") && !s.contains("mtok"), "{s}");
    }
    assert!(text.contains("why: the best decode tokens/s"), "{text}");
    // The top-10 rows of summary.md: no two labels alike.
    let labels: Vec<&str> =
        md.lines().filter(|l| l.starts_with("| #")).map(|l| l.split(" | ").next().unwrap()).collect();
    let mut unique = labels.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), labels.len(), "{labels:?}");
}

#[test]
fn per_layer_results_are_written_beside_the_search() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    bin().args(["search", &small_space(), "--device", "rpi5", "--per-layer", "--out"]).arg(&out).assert().success();
    let md = std::fs::read_to_string(out.join("per_layer.md")).unwrap();
    assert!(md.contains("heterogeneous"), "{md}");
    let csv = std::fs::read_to_string(out.join("per_layer.csv")).unwrap();
    assert!(csv.starts_with("stack,layer,option,"), "{csv}");
    assert!(csv.lines().any(|l| l.starts_with("heterogeneous,0,")), "{csv}");
}

#[test]
fn explain_plan_says_why_each_listed_option_was_not_chosen() {
    let text = stdout(&[
        "analyze",
        "--model",
        "models/DeepSeek-V2-Lite-Chat.json",
        "--device",
        "rpi5",
        "--scenario",
        "liso",
        "--explain-plan",
    ]);
    let listed: Vec<&str> = text.lines().filter(|l| l.contains("slowest kernel")).collect();
    assert!(!listed.is_empty());
    for l in listed {
        assert!(l.contains("; chosen:") || l.contains("; not chosen:") || l.contains("; not a plan:"), "{l}");
    }
}

#[test]
fn a_roofline_of_several_models_has_a_legend_entry_per_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.svg");
    let models = format!("{},{}", model_path("SmolLM2-135M").display(), model_path("Qwen3-0.6B").display());
    bin()
        .args(["plot", "roofline", "--model", &models, "--device", "rpi5,rtx3090", "--out"])
        .arg(&out)
        .assert()
        .success();
    let svg = std::fs::read_to_string(&out).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let texts: Vec<&str> =
        doc.descendants().filter(|n| n.has_tag_name("text")).filter_map(|n| n.text()).map(str::trim).collect();
    // A legend entry per model (the title names them together).
    for m in ["SmolLM2-135M", "Qwen3-0.6B"] {
        assert_eq!(texts.iter().filter(|t| **t == m).count(), 1, "{m}: {texts:?}");
    }
    // One label per scenario and device (not one per model on top of each other).
    assert_eq!(texts.iter().filter(|t| **t == "LISO").count(), 2, "{texts:?}");
}

/// report.html in headless Chromium: it loads from the folder with no console errors, the DOM
/// holds the recommendation the summary states, the table sorts, and a screenshot is drawn.
#[test]
fn report_html_renders_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    bin().args(["search", &small_space(), "--device", "rpi5", "--out"]).arg(&out).assert().success();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"), "loads nothing from elsewhere");
    assert!(html.matches("<svg").count() >= 3, "the three plots inline");
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    let rec_line = summary.lines().find(|l| l.starts_with("recommended: ")).unwrap();
    let rec_label = rec_line.trim_start_matches("recommended: ");
    let Some(chromium) = which("chromium") else {
        assert!(
            std::env::var_os("ROOFLINEBENCH_REQUIRE_CHROMIUM").is_none(),
            "chromium is not installed (scripts/setup-chromium.sh installs it)"
        );
        eprintln!("skipped: chromium is not installed (scripts/setup-chromium.sh)");
        return;
    };
    let page = format!("file://{}", out.join("report.html").display());
    let profile = tempfile::tempdir().unwrap();
    let chrome = |extra: &[&str]| {
        let mut c = std::process::Command::new(&chromium);
        c.args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(["--enable-logging=stderr", "--v=0", "--virtual-time-budget=2000"])
            .args(extra)
            .arg(&page);
        c.output().unwrap()
    };
    let dom = chrome(&["--dump-dom"]);
    assert!(dom.status.success());
    let (dom_text, log) = (String::from_utf8_lossy(&dom.stdout), String::from_utf8_lossy(&dom.stderr));
    // Console messages reach the log as "CONSOLE(...)" / ":INFO:CONSOLE"; an uncaught error as "Uncaught".
    let console_errors: Vec<&str> =
        log.lines().filter(|l| l.contains("CONSOLE") && (l.contains("Error") || l.contains("Uncaught"))).collect();
    assert!(console_errors.is_empty(), "{console_errors:?}");
    assert!(!log.contains("Uncaught"), "{log}");
    let escaped = rec_label.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    assert!(dom_text.contains(&format!("Recommended: {escaped}")), "the DOM lacks the recommendation {rec_label}");
    assert!(dom_text.contains("<table class=\"sortable\""));
    let shot = dir.path().join("shot.png");
    let run = chrome(&["--window-size=1100,1400", &format!("--screenshot={}", shot.display())]);
    assert!(run.status.success());
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // IHDR: width and height as drawn; a blank page compresses to a few kB, this one does not.
    let (w, h) =
        (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap()));
    assert_eq!((w, h), (1100, 1400));
    assert!(png.len() > 30_000, "the screenshot is {} bytes: blank?", png.len());
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}
