//! llama.cpp (feature `llamacpp`): GGUF files of random weights that the engine loads with our
//! parameter count and our storage types, real timed runs, verification of a toy search, the
//! errors a user sees; and the clear error of a build without the engine.

use crate::common::*;

#[cfg(not(feature = "llamacpp"))]
#[test]
fn without_llamacpp_engine_commands_exit_2_saying_how_to_build() {
    for args in [
        vec!["calibrate", "--engine", "llama.cpp", "--quick"],
        vec!["validate", "--engine", "llama.cpp", "--quick"],
        vec!["verify", "results/around-135m/rpi5"],
        vec!["export", "results/around-135m/rpi5", "recommended", "--format", "gguf", "--out", "x.gguf"],
    ] {
        let out = bin().args(&args).assert().code(2).get_output().clone();
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains("--features llamacpp") && err.lines().count() == 1, "{err}");
    }
}

/// Without a GPU backend feature llama.cpp stays on the CPU, and says so in the profiles it
/// calibrates (the GPU builds cannot run here; scripts/test-platforms.sh checks their features).
#[cfg(not(any(feature = "llamacpp-cuda", feature = "llamacpp-metal", feature = "llamacpp-vulkan")))]
#[test]
fn a_build_without_a_gpu_backend_runs_llama_cpp_on_the_cpu() {
    use rooflinebench::measure::llamacpp::{BACKEND, ENGINE_VERSION, OFFLOAD};
    assert_eq!(BACKEND, "CPU");
    const { assert!(!OFFLOAD, "a CPU build offloads no layer") };
    assert!(ENGINE_VERSION.contains("CPU backend"), "{ENGINE_VERSION}");
}

#[cfg(feature = "llamacpp")]
mod engine {
    use super::*;
    use rooflinebench::arch::gguf::gguf_layout;
    use rooflinebench::arch::{parse_hf_config, Architecture};
    use rooflinebench::dtype::DType;
    use rooflinebench::measure::llamacpp::rounds::Rounds;
    use rooflinebench::measure::llamacpp::{build, run_job, Job, JobResult};

    /// The worker is this crate's binary.
    fn engine_env() {
        std::env::set_var("ROOFLINEBENCH_BIN", env!("CARGO_BIN_EXE_rooflinebench"));
    }

    fn arch(json: &str, name: &str) -> Architecture {
        parse_hf_config(json, name, name).unwrap()
    }

    /// Tiny shapes covering every layout the writer produces: llama with tied and untied
    /// embeddings and a width that is not a multiple of 256 (Q4_K falls back), qwen3 with q/k
    /// norms, deepseek2 MLA dense with q-lora, and MLA with 8 routed experts (llama.cpp's
    /// Mixtral rules) and a dense first layer.
    fn shapes() -> Vec<Architecture> {
        vec![
            arch(
                r#"{"model_type":"llama","hidden_size":320,"num_hidden_layers":3,"vocab_size":2000,"num_attention_heads":5,"num_key_value_heads":1,"intermediate_size":768,"tie_word_embeddings":true}"#,
                "llama-mqa-tied",
            ),
            arch(
                r#"{"model_type":"llama","hidden_size":512,"num_hidden_layers":9,"vocab_size":3000,"num_attention_heads":4,"num_key_value_heads":2,"head_dim":96,"intermediate_size":1024,"tie_word_embeddings":false}"#,
                "llama-gqa-headdim",
            ),
            arch(
                r#"{"model_type":"qwen3","hidden_size":256,"num_hidden_layers":2,"vocab_size":2048,"num_attention_heads":4,"num_key_value_heads":2,"head_dim":128,"intermediate_size":512,"tie_word_embeddings":true}"#,
                "qwen3-tiny",
            ),
            arch(
                r#"{"model_type":"deepseek_v2","hidden_size":256,"num_hidden_layers":3,"vocab_size":2048,"num_attention_heads":4,"kv_lora_rank":128,"q_lora_rank":96,"qk_nope_head_dim":64,"qk_rope_head_dim":32,"v_head_dim":64,"intermediate_size":512,"n_routed_experts":0,"tie_word_embeddings":true}"#,
                "mla-dense",
            ),
            arch(
                r#"{"model_type":"deepseek_v2","hidden_size":256,"num_hidden_layers":3,"vocab_size":2048,"num_attention_heads":4,"kv_lora_rank":256,"qk_nope_head_dim":64,"qk_rope_head_dim":32,"v_head_dim":64,"intermediate_size":512,"n_routed_experts":8,"num_experts_per_tok":2,"n_shared_experts":1,"moe_intermediate_size":256,"first_k_dense_replace":1,"tie_word_embeddings":false}"#,
                "mla-moe8",
            ),
        ]
    }

    #[test]
    fn gguf_files_load_with_our_parameter_count_and_the_storage_types_we_price() {
        engine_env();
        let dir = tempfile::tempdir().unwrap();
        let formats = [DType::F16, DType::Bf16, DType::Q8_0, DType::Q4_0, DType::Q4KM];
        for a in shapes() {
            let layout = gguf_layout(&a, a.max_position_embeddings).unwrap();
            let files = build(&a, &formats, dir.path(), 7, 2).unwrap_or_else(|e| panic!("{}: {e}", a.name));
            for f in files {
                // llama.cpp's own count (llama_model_n_params) against ours.
                assert_eq!(f.parameters, a.parameters(), "{} {}", a.name, f.format);
                let mut data = 0;
                for (name, stored, bytes) in &f.tensors {
                    let t = layout.tensors.iter().find(|t| &t.name == name).unwrap_or_else(|| panic!("{name}"));
                    let ours = layout.stored_type(t, f.format);
                    assert_eq!(stored, ours.name(), "{} {} {name}", a.name, f.format);
                    // Block arithmetic: elements / block size * block bytes.
                    assert_eq!(*bytes, ours.bytes(t.elements()), "{} {} {name}", a.name, f.format);
                    data += bytes;
                }
                assert_eq!(data, layout.data_bytes(f.format), "{} {}", a.name, f.format);
                assert_eq!(data as f64, a.stored_weight_bytes(f.format), "{} {}", a.name, f.format);
            }
        }
    }

    /// One small model of each hybrid architecture the writer produces: windows (gemma3),
    /// short convolutions (lfm2), Gated DeltaNet with 2 key and 4 value heads (qwen35), Mamba2
    /// with attention (granitehybrid) and pure Mamba2 (mamba2).
    fn hybrid_shapes() -> Vec<Architecture> {
        vec![
            arch(
                r#"{"model_type":"gemma3_text","hidden_size":256,"num_hidden_layers":4,"vocab_size":2048,"num_attention_heads":4,"num_key_value_heads":1,"head_dim":64,"intermediate_size":512,"sliding_window":128,"layer_types":["sliding_attention","sliding_attention","full_attention","sliding_attention"]}"#,
                "gemma3-windows",
            ),
            arch(
                r#"{"model_type":"lfm2","hidden_size":256,"num_hidden_layers":4,"vocab_size":2048,"num_attention_heads":4,"num_key_value_heads":2,"block_ff_dim":512,"block_auto_adjust_ff_dim":false,"conv_L_cache":3,"layer_types":["conv","full_attention","conv","conv"]}"#,
                "lfm2-conv",
            ),
            arch(
                r#"{"model_type":"qwen3_5_text","hidden_size":256,"num_hidden_layers":4,"vocab_size":2048,"num_attention_heads":4,"num_key_value_heads":2,"head_dim":64,"intermediate_size":512,"linear_num_key_heads":2,"linear_num_value_heads":4,"linear_key_head_dim":32,"linear_value_head_dim":32,"linear_conv_kernel_dim":4,"layer_types":["linear_attention","linear_attention","linear_attention","full_attention"],"tie_word_embeddings":true}"#,
                "qwen35-deltanet",
            ),
            arch(
                r#"{"model_type":"granitemoehybrid","hidden_size":256,"num_hidden_layers":4,"vocab_size":2048,"num_attention_heads":4,"num_key_value_heads":2,"intermediate_size":512,"shared_intermediate_size":512,"num_local_experts":0,"layer_types":["mamba","attention","mamba","mamba"],"mamba_n_heads":8,"mamba_d_head":64,"mamba_d_state":32,"mamba_n_groups":1,"mamba_d_conv":4,"mamba_expand":2,"position_embedding_type":"nope","tie_word_embeddings":true}"#,
                "granite-mamba2",
            ),
            arch(
                r#"{"model_type":"mamba2","hidden_size":256,"num_hidden_layers":3,"vocab_size":2048,"num_heads":8,"head_dim":64,"state_size":32,"n_groups":1,"expand":2,"conv_kernel":4,"use_conv_bias":true,"tie_word_embeddings":true}"#,
                "mamba2-pure",
            ),
        ]
    }

    /// Every hybrid kind: llama.cpp loads the file with our parameter count and the storage
    /// types we price, reports the KV cache and recurrent state we predict for its context,
    /// and runs a prompt and generated tokens.
    #[test]
    fn hybrid_gguf_files_load_report_the_caches_we_price_and_run() {
        use rooflinebench::measure::llamacpp::cache_report;
        engine_env();
        let dir = tempfile::tempdir().unwrap();
        let engine = rooflinebench::device::Engine::llama_cpp("test".into(), "CPU".into(), Some(2));
        let mut kinds = Vec::new();
        for a in hybrid_shapes() {
            let layout = gguf_layout(&a, a.max_position_embeddings).unwrap_or_else(|e| panic!("{}: {e}", a.name));
            kinds.push(layout.arch);
            let files =
                build(&a, &[DType::Q8_0, DType::Q4KM], dir.path(), 7, 2).unwrap_or_else(|e| panic!("{}: {e}", a.name));
            for f in &files {
                assert_eq!(f.parameters, a.parameters(), "{} {}", a.name, f.format);
                for (name, stored, bytes) in &f.tensors {
                    let t = layout.tensors.iter().find(|t| &t.name == name).unwrap_or_else(|| panic!("{name}"));
                    assert_eq!(stored, layout.stored_type(t, f.format).name(), "{} {} {name}", a.name, f.format);
                    assert_eq!(*bytes, layout.stored_type(t, f.format).bytes(t.elements()), "{} {name}", a.name);
                }
                let data: u64 = f.tensors.iter().map(|t| t.2).sum();
                assert_eq!(data as f64, a.stored_weight_bytes(f.format), "{} {}", a.name, f.format);
            }
            // Read back through llama.cpp's GGUF parser (what `devices fit` matches llama-bench
            // rows of hybrid models by).
            let back = rooflinebench::measure::llamacpp::architecture_of(&files[0].path).unwrap();
            assert_eq!((back.parameters(), &back.layers), (files[0].parameters, &a.layers), "{}", a.name);
            // llama.cpp's own report of its caches at 1024 cells (f16 KV, f32 states), in MiB
            // with two decimals.
            let n_ctx = 1024;
            let reports = cache_report(&files[0].path, n_ctx).unwrap();
            let mib = |kind: &str| reports.iter().filter(|r| r.kind == kind).map(|r| r.mib).sum::<f64>();
            let kv = a.kv_cache_elements(n_ctx as u64, &|w, c| engine.window_cells(w, c)) * 2.0 / 1048576.0;
            let state = a.state_elements() as f64 * 4.0 / 1048576.0;
            assert!((mib("kv") - kv).abs() < 0.006, "{}: KV {kv:.4} MiB, llama.cpp {reports:?}", a.name);
            assert!(
                (mib("recurrent") - state).abs() < 0.006,
                "{}: state {state:.4} MiB, llama.cpp {reports:?}",
                a.name
            );
            for r in &reports {
                let window = a.layers.iter().find_map(|l| l.mixer.window());
                let cells: Vec<u64> = match r.kind.as_str() {
                    "kv" => std::iter::once(n_ctx as u64)
                        .chain(window.map(|w| engine.window_cells(w, n_ctx as u64)))
                        .collect(),
                    _ => vec![1],
                };
                assert!(cells.contains(&r.cells), "{}: {r:?}, expected cells {cells:?}", a.name);
            }
            let tests =
                vec![rooflinebench::roofline::BenchTest::pp(64), rooflinebench::roofline::BenchTest::tg(4, 200)];
            // One thread and the faster of two rounds: a thread pool sharing the cores with
            // other jobs (a parallel test run) can stall for a scheduler quantum per barrier.
            let job = Job::Bench { models: vec![files[0].path.clone()], tests, rounds: Rounds::fixed(2), threads: 1 };
            let JobResult::Bench(b) = run_job(&job).unwrap_or_else(|e| panic!("{}: {e}", a.name)) else { panic!() };
            for s in &b.samples {
                let per_token = s.seconds.iter().copied().fold(f64::INFINITY, f64::min) / s.test.tokens() as f64;
                assert!(per_token > 1e-7 && per_token < 0.1, "{} {}: {per_token} s per token", a.name, s.test.label());
            }
        }
        assert_eq!(kinds, ["gemma3", "lfm2", "qwen35", "granitehybrid", "mamba2"]);
    }

    #[test]
    fn a_prefill_and_a_decode_run_and_take_plausible_times() {
        engine_env();
        let dir = tempfile::tempdir().unwrap();
        let a = &shapes()[0];
        let files = build(a, &[DType::Q8_0], dir.path(), 7, 2).unwrap();
        let tests = vec![rooflinebench::roofline::BenchTest::pp(64), rooflinebench::roofline::BenchTest::tg(8, 0)];
        let job = Job::Bench { models: vec![files[0].path.clone()], tests, rounds: Rounds::fixed(2), threads: 2 };
        let JobResult::Bench(b) = run_job(&job).unwrap() else { panic!("a bench answer") };
        for s in &b.samples {
            assert_eq!(s.seconds.len(), 2);
            for &t in &s.seconds {
                // A 2.8M-parameter model: a token costs well under 100 ms and more than 1 us
                // on any CPU that runs this test.
                let per_token = t / s.test.tokens() as f64;
                assert!(per_token > 1e-6 && per_token < 0.1, "{}: {per_token} s per token", s.test.label());
            }
        }
        assert!(b.system_info.contains("CPU"), "{}", b.system_info);
        // Exactly the rounds asked for, each bracketed by probes, and whether they settled.
        assert_eq!((b.settling.rounds, b.probes_bytes_per_s.len()), (2, 3));
        assert!(b.probes_bytes_per_s.iter().all(|p| p.is_finite() && *p > 0.0), "{:?}", b.probes_bytes_per_s);
    }

    #[test]
    fn a_model_too_large_for_memory_is_refused_before_anything_is_written() {
        engine_env();
        let dir = tempfile::tempdir().unwrap();
        let huge = arch(
            r#"{"model_type":"llama","hidden_size":16384,"num_hidden_layers":400,"vocab_size":128000,"num_attention_heads":128,"num_key_value_heads":8,"intermediate_size":53248}"#,
            "huge",
        );
        let e = build(&huge, &[DType::Q4KM], dir.path(), 7, 2).unwrap_err().to_string();
        assert!(e.contains("GB") && e.contains("memory available") && e.contains("huge"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_unloadable_gguf_is_a_one_line_error_naming_the_file() {
        engine_env();
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("broken.gguf");
        std::fs::write(&bad, b"GGUF but not really").unwrap();
        let e = run_job(&Job::Inspect { path: bad.clone() }).unwrap_err().to_string();
        assert!(e.contains("broken.gguf") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn verify_measures_a_toy_search_and_writes_its_verdict() {
        let dir = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let space = dir.path().join("toy.toml");
        std::fs::write(
            &space,
            r#"name = "toy"
[architecture]
layers = [2, 4]
hidden = [256]
heads = [4]
attention = ["gqa"]
kv_heads = [2]
ffn_multiplier = [3.0]
vocab = [2048]
tie_embeddings = [true]
[precision]
weights = ["q8_0", "q4_0"]
[[workload.mix]]
prompt = 32
generate = 16
weight = 1.0
[constraints]
min_params = 1e5
"#,
        )
        .unwrap();
        let out = dir.path().join("out");
        let profile = repo().join("tests/fixtures/llamacpp-profile.json");
        bin()
            .args(["search", space.to_str().unwrap(), "--device", profile.to_str().unwrap(), "--out"])
            .arg(&out)
            .assert()
            .success();
        bin()
            .env("XDG_CACHE_HOME", cache.path())
            .args(["verify", "--quick", "--top", "1"])
            .arg(&out)
            .assert()
            .success();
        let csv = std::fs::read_to_string(out.join("verify.csv")).unwrap();
        assert!(csv.lines().count() >= 3, "{csv}");
        let md = std::fs::read_to_string(out.join("verify.md")).unwrap();
        assert!(md.contains("Kendall") && md.contains("recommendation"), "{md}");
        let svg = std::fs::read_to_string(out.join("verify.svg")).unwrap();
        roxmltree::Document::parse(&svg).unwrap();
    }

    /// `export --format gguf` writes a file llama.cpp loads, with our parameter count.
    #[test]
    fn a_gguf_file_reads_back_as_its_architecture_through_llama_cpps_parser() {
        engine_env();
        let dir = tempfile::tempdir().unwrap();
        for a in shapes() {
            let files = build(&a, &[DType::Q8_0], dir.path(), 7, 2).unwrap();
            let back = rooflinebench::measure::llamacpp::architecture_of(&files[0].path).unwrap();
            // llama.cpp's own count (llama_model_n_params) of the file, not ours of `a`.
            assert_eq!(back.parameters(), files[0].parameters, "{}", a.name);
            assert_eq!((back.attention, back.ffn, back.tie_embeddings), (a.attention, a.ffn, a.tie_embeddings));
        }
    }

    #[test]
    fn devices_fit_reads_the_model_from_the_gguf_a_llama_bench_json_row_names() {
        engine_env();
        let dir = tempfile::tempdir().unwrap();
        // A shape no config under models/ has: only the file can say what it is.
        let a = &shapes()[0];
        let files = build(a, &[DType::Q8_0], dir.path(), 7, 2).unwrap();
        let row = |n_prompt: u32, n_gen: u32, avg_ns: f64| {
            serde_json::json!({
                "model_type": "llama ?B Q8_0", "model_filename": files[0].path, "model_n_params": files[0].parameters,
                "backends": "CPU", "n_threads": 2, "n_prompt": n_prompt, "n_gen": n_gen, "avg_ns": avg_ns
            })
        };
        let bench = dir.path().join("run.json");
        let rows = serde_json::json!([row(512, 0, 2.0e8), row(0, 128, 4.0e8)]);
        std::fs::write(&bench, rows.to_string()).unwrap();
        let out = dir.path().join("p.json");
        let run = bin()
            .env("ROOFLINEBENCH_BIN", env!("CARGO_BIN_EXE_rooflinebench"))
            .args(["devices", "fit", "--base", "rpi5-datasheet", "--llama-bench"])
            .arg(&bench)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        let text = String::from_utf8(run.get_output().stdout.clone()).unwrap();
        assert!(text.contains("from 2 runs"), "{text}");
    }

    #[test]
    fn export_gguf_writes_a_candidate_llama_cpp_loads_with_our_parameter_count() {
        engine_env();
        let dir = tempfile::tempdir().unwrap();
        let space = repo().join("tests/fixtures/small-space.toml");
        let out = dir.path().join("c.gguf");
        // #0 of the small space: MHA, 4 layers, hidden 256, 4 heads of 64, ffn 512, vocab 8000,
        // tied: 8000*256 + 4*(2*256 + 4*256*256 + 3*256*512) + 256 = 4,671,744.
        let run = bin()
            .args(["export", space.to_str().unwrap(), "#0", "--format", "gguf", "--weights", "q8_0", "--out"])
            .arg(&out)
            .assert()
            .success();
        let text = String::from_utf8(run.get_output().stdout.clone()).unwrap();
        assert!(text.contains("llama.cpp counts 4671744 parameters (ours 4671744)"), "{text}");
        assert!(std::fs::metadata(&out).unwrap().len() > 4_000_000);
        // Nothing else left beside it (the build folder is removed).
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
