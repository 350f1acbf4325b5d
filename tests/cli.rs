//! The binary, driven as a user would: exit codes, error text, output files.

use crate::common::*;
use predicates::prelude::*;

fn analyze() -> assert_cmd::Command {
    let mut c = bin();
    c.arg("analyze");
    c
}

#[test]
fn analyze_prints_all_three_points_for_a_real_model() {
    analyze()
        .args(["--model", model_path("Llama-3.2-1B").to_str().unwrap(), "--device", "rpi5", "--scenario", "siso"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("prefill")
                .and(predicate::str::contains("TTFT"))
                .and(predicate::str::contains("fits")),
        );
}

#[test]
fn analyze_csv_has_one_row_per_phase_and_a_header_from_the_struct() {
    let out = analyze()
        .args([
            "--model",
            model_path("Qwen2.5-0.5B").to_str().unwrap(),
            "--device",
            "m2",
            "--scenario",
            "liso",
            "--format",
            "csv",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("model,device,profile,scenario,"));
    assert!(lines[0].contains(",rip,"));
}

#[test]
fn analyze_writes_json_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sub/analysis.json");
    analyze()
        .args(["--model", model_path("SmolLM2-135M").to_str().unwrap(), "--device", "rtx3090", "--format", "json"])
        .args(["--out", out.to_str().unwrap(), "--per-op"])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 4, "all four scenarios by default");
    assert!(v[0]["operators"].as_array().unwrap().len() > 10);
    // Nothing but the output is left in the folder (no temporary files).
    assert_eq!(std::fs::read_dir(out.parent().unwrap()).unwrap().count(), 1);
}

/// Runs analyze on a config written to a temporary file; returns stderr, asserting exit 2.
fn fails_with_config(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    std::fs::write(&path, text).unwrap();
    let out =
        analyze().args(["--model", path.to_str().unwrap(), "--device", "rpi5"]).assert().code(2).get_output().clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bad.json"), "names the file: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(!err.contains("panicked"));
    err
}

const GOOD: &str = r#"{"model_type":"llama","hidden_size":512,"num_hidden_layers":4,"num_attention_heads":8,
    "num_key_value_heads":2,"intermediate_size":1024,"vocab_size":1000}"#;

#[test]
fn a_missing_model_file_is_a_one_line_error() {
    let out =
        analyze().args(["--model", "no/such/config.json", "--device", "rpi5"]).assert().code(2).get_output().clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("no/such/config.json") && err.contains("No such file"), "{err}");
}

#[test]
fn malformed_json_gives_line_and_column() {
    let err = fails_with_config("{\"model_type\": \"llama\",\n \"hidden_size\": 12,,}");
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn heads_that_do_not_divide_the_hidden_size_are_named() {
    let err = fails_with_config(&GOOD.replace("\"num_attention_heads\":8", "\"num_attention_heads\":7"));
    assert!(err.contains("num_attention_heads") && err.contains("divisor of hidden_size"), "{err}");
}

#[test]
fn zero_layers_are_rejected() {
    let err = fails_with_config(&GOOD.replace("\"num_hidden_layers\":4", "\"num_hidden_layers\":0"));
    assert!(err.contains("num_hidden_layers") && err.contains("positive"), "{err}");
}

#[test]
fn a_negative_size_is_rejected_with_its_field() {
    let err = fails_with_config(&GOOD.replace("\"hidden_size\":512", "\"hidden_size\":-512"));
    assert!(err.contains("hidden_size") && err.contains("-512"), "{err}");
}

#[test]
fn an_unknown_model_type_lists_the_supported_ones() {
    // (Not gpt2: it is near enough to gpt_oss to get a suggestion instead.)
    let err = fails_with_config(&GOOD.replace("llama", "bloom"));
    assert!(err.contains("bloom") && err.contains("deepseek_v3") && err.contains("qwen3"), "{err}");
}

#[test]
fn an_unknown_device_suggests_near_names() {
    let out = analyze()
        .args(["--model", model_path("SmolLM2-135M").to_str().unwrap(), "--device", "rtx309"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("unknown device 'rtx309'") && err.contains("rtx3090"), "{err}");
}

#[test]
fn zero_or_negative_lengths_are_usage_errors() {
    for args in [
        ["--prompt", "0", "--generate", "5"],
        ["--prompt", "5", "--generate", "0"],
        ["--prompt", "-3", "--generate", "5"],
    ] {
        let out = analyze()
            .args(["--model", model_path("SmolLM2-135M").to_str().unwrap(), "--device", "rpi5"])
            .args(args)
            .assert()
            .code(2)
            .get_output()
            .clone();
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains("--prompt") || err.contains("--generate"), "{err}");
        assert!(!err.contains("panicked"));
    }
}

#[test]
fn a_truncated_device_profile_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev.json");
    let full = rooflinebench::device::builtin("rpi5").unwrap().to_json();
    std::fs::write(&path, &full[..full.len() / 2]).unwrap();
    let out = analyze()
        .args(["--model", model_path("SmolLM2-135M").to_str().unwrap(), "--device", path.to_str().unwrap()])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("dev.json") && err.contains("line"), "{err}");
}

#[test]
fn a_profile_with_a_negative_bandwidth_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev.json");
    let mut p = rooflinebench::device::builtin("rpi5").unwrap();
    p.bandwidth_bytes_per_s = -1.0;
    std::fs::write(&path, p.to_json()).unwrap();
    let out = analyze()
        .args(["--model", model_path("SmolLM2-135M").to_str().unwrap(), "--device", path.to_str().unwrap()])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bandwidth_bytes_per_s") && err.contains("positive"), "{err}");
}

#[test]
fn devices_lists_the_library_and_shows_one_profile() {
    bin().arg("devices").assert().success().stdout(predicate::str::contains("jetson-orin-nano-super-paper"));
    let out = bin().args(["devices", "show", "h100-sxm"]).assert().success().get_output().stdout.clone();
    let p = rooflinebench::device::DeviceProfile::from_json(std::str::from_utf8(&out).unwrap(), "stdout").unwrap();
    assert_eq!(p.bandwidth_bytes_per_s, 3350e9);
}

#[test]
fn the_expected_profile_takes_the_plain_name_and_says_what_it_is() {
    use rooflinebench::device::builtin;
    // data/llama-bench/rtx3090/xiongjiedai-llama3.md holds ten rows: Llama 3 8B in Q4_K_M and
    // F16, each pp512 and tg512, tg1024, tg4096, tg8192.
    let expected = builtin("rtx3090").unwrap();
    assert_eq!(expected.kind_label(), "expected (llama.cpp, fitted from 10 public runs)");
    let datasheet = builtin("rtx3090-datasheet").unwrap();
    assert_eq!(datasheet.kind_label(), "upper bound (datasheet)");
    // The GA102 datasheet: 936.2 GB/s, 35.58 TFLOP/s FP32.
    assert_eq!(datasheet.bandwidth_bytes_per_s, 936.2e9);
    assert_eq!(datasheet.peak_flops(rooflinebench::dtype::DType::F32), 35.58e12);
    assert!(builtin("rtx3090-paper").unwrap().kind_label().contains("measured"));
    // A device without public runs of its own gets a sibling's fit on its own datasheet: the
    // RTX 3070 Ti Laptop (GA104) the RTX 3090's (GA102, the same CUDA backend).
    let laptop = builtin("rtx3070ti-laptop").unwrap();
    assert_eq!(laptop.kind_label(), "expected (llama.cpp, transferred from rtx3090)");
    let laptop_datasheet = builtin("rtx3070ti-laptop-datasheet").unwrap();
    assert_eq!(laptop_datasheet.kind_label(), "upper bound (datasheet)");
    assert_eq!(laptop.bandwidth_bytes_per_s, laptop_datasheet.bandwidth_bytes_per_s);
    assert_eq!(laptop.kernel_overhead_s, expected.kernel_overhead_s);
    // The fitted f16 rate moves with the datasheets' f16 peaks.
    let f16 = rooflinebench::dtype::DType::F16;
    let scaled = expected.peak_flops(f16) * laptop_datasheet.peak_flops(f16) / datasheet.peak_flops(f16);
    assert!((laptop.peak_flops(f16) - scaled).abs() <= 1e-9 * scaled);
}

#[test]
fn devices_fit_keeps_held_out_files_out_and_stays_under_the_roofs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rtx3090.json");
    let data = repo().join("data/llama-bench/rtx3090");
    let text = bin()
        .args(["devices", "fit", "--base", "rtx3090-datasheet", "--name", "my-3090"])
        .args(["--llama-bench", data.join("pr4766-backend-sched.md").to_str().unwrap()])
        .args(["--holdout", data.join("pr4766-master.md").to_str().unwrap()])
        .args(["--out", out.to_str().unwrap()])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("fitted my-3090 from 4 runs") && text.contains("held out (4 runs, not fitted)"), "{text}");
    let p = rooflinebench::device::DeviceProfile::from_json(&std::fs::read_to_string(&out).unwrap(), "out").unwrap();
    assert_eq!(p.notes["fitted_runs"], 4);
    assert_eq!(p.notes["held_out_agreement"]["runs"], 4);
    assert_eq!(
        p.notes["fitted_sources"][0]["source"].as_str().unwrap().split(' ').next().unwrap(),
        "https://github.com/ggml-org/llama.cpp/pull/4766"
    );
    // Under the datasheet roofs: no product faster than 936.2 GB/s, no FLOP rate above the
    // fastest datasheet peak (71 TFLOP/s f16 tensor).
    for t in p.product_efficiency.values() {
        assert!(t.memory.points.iter().all(|e| e.efficiency <= 1.0 + 1e-9), "{t:?}");
    }
    assert!(p.peak_flops(rooflinebench::dtype::DType::F16) <= 71e12 * (1.0 + 1e-9));
    assert!(p.kernel_overhead_s >= 0.0);
    // Bands rest on the 4 fitted runs cross-validated (leave-one-out) and the 4 held-out ones:
    // 2 prefill and 2 decode rows of each, so 4 per phase.
    let b = p.error_bands.as_ref().expect("a fit has error bands");
    assert!(b.basis.starts_with("4-fold cross-validation of the 4 fitted runs"), "{}", b.basis);
    assert!(b.basis.contains("4 held-out runs from 1 other source"), "{}", b.basis);
    for band in [b.prefill.unwrap(), b.decode.unwrap()] {
        assert_eq!(band.runs, 4);
        assert!(band.low < band.high, "{band:?}");
    }
    // Without the one held-out file, each phase has 2 cross-validated runs, under the 3 a
    // band needs: nothing to check the file against.
    assert!(p.notes["held_out_agreement"]["within_band"].is_null(), "{:?}", p.notes);
    assert!(text.contains("80% band: prefill"), "{text}");
}

#[test]
fn analyze_puts_the_profiles_band_around_each_rate_and_says_how_to_check_it() {
    let m = model_path("Llama-3.2-1B");
    let run = |device: &str| -> serde_json::Value {
        let out = analyze()
            .args(["--model", m.to_str().unwrap(), "--device", device, "--scenario", "siso"])
            .args(["--weights", "q4_k_m", "--format", "json"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice::<serde_json::Value>(&out).unwrap()[0].clone()
    };
    let a = run("rtx3090");
    let b = rooflinebench::device::builtin("rtx3090").unwrap().error_bands.unwrap();
    let (decode, band) = (a["decode_tokens_per_s"].as_f64().unwrap(), b.decode.unwrap());
    let range = a["error_band"]["decode_tokens_per_s"].as_array().unwrap();
    assert_eq!(range[0].as_f64().unwrap(), decode * band.low);
    assert_eq!(range[1].as_f64().unwrap(), decode * band.high);
    assert_eq!(a["error_band"]["coverage"], 0.8);
    // siso is 128 prompt and 128 generated tokens: pp128 from an empty cache, tg128 after it.
    let cmd = a["check_command"].as_str().unwrap();
    assert!(cmd.starts_with("llama-bench -m Llama-3.2-1B.q4_k_m.gguf -p 128 -n 128 -d 0,128"), "{cmd}");
    assert!(cmd.contains("-ngl 99"), "{cmd}");
    // The Pi profile's runs used 4 threads; an upper bound has neither band nor command.
    assert!(run("rpi5")["check_command"].as_str().unwrap().contains("-t 4"));
    let ds = run("rtx3090-datasheet");
    assert!(ds["error_band"].is_null() && ds["check_command"].is_null(), "{ds}");
}

#[test]
fn small_models_on_an_upper_bound_and_emulated_formats_warn_on_stderr() {
    let out = analyze()
        .args(["--model", model_path("SmolLM2-135M").to_str().unwrap(), "--device", "rtx3090-datasheet"])
        .args(["--scenario", "siso"])
        .assert()
        .success()
        .get_output()
        .clone();
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    assert!(stderr.contains("warning: rtx3090-datasheet") && stderr.contains("under 500M"), "{stderr}");
    assert!(stdout.contains("profile: upper bound (datasheet)") && stdout.contains("warning:"), "{stdout}");
    // The expected profile has fixed costs: no small-model warning.
    let out = analyze()
        .args(["--model", model_path("SmolLM2-135M").to_str().unwrap(), "--device", "rtx3090", "--scenario", "siso"])
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(!String::from_utf8(out.stderr).unwrap().contains("warning"));
    // bf16 on the paper's Pi profile falls to its emulated FP16 peak.
    let out = analyze()
        .args(["--model", model_path("Llama-3.2-1B").to_str().unwrap(), "--device", "rpi5-paper"])
        .args(["--scenario", "siso", "--activations", "bf16", "--format", "csv"])
        .assert()
        .success()
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bf16 arithmetic is emulated"), "{err}");
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(csv.lines().next().unwrap().contains("profile") && csv.contains("the paper's measured ceilings"), "{csv}");
}

#[test]
fn devices_fit_can_borrow_a_cost_per_kernel_and_refuses_a_profile_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = repo().join("data/llama-bench/m1");
    let file = data.join("xiongjiedai-llama3.md");
    let out = dir.path().join("m1.json");
    let fit = |donor: &str| {
        bin()
            .args(["devices", "fit", "--base", "m1-datasheet", "--llama-bench", file.to_str().unwrap()])
            .args(["--fixed-cost-from", donor, "--out", out.to_str().unwrap()])
            .assert()
    };
    fit("m1-max").success();
    let p = rooflinebench::device::DeviceProfile::from_json(&std::fs::read_to_string(&out).unwrap(), "out").unwrap();
    let donor = rooflinebench::device::builtin("m1-max").unwrap();
    assert!(donor.kernel_overhead_s > 0.0);
    assert_eq!(p.kernel_overhead_s, donor.kernel_overhead_s);
    assert!(p.notes["fixed_cost_from"].as_str().unwrap().contains("m1-max"));
    // A datasheet profile has no cost per kernel to lend.
    let err = String::from_utf8(fit("m1-max-datasheet").code(2).get_output().stderr.clone()).unwrap();
    assert!(err.contains("--fixed-cost-from m1-max-datasheet") && err.lines().count() == 1, "{err}");
}

#[test]
fn devices_check_predicts_llama_bench_runs_without_fitting() {
    // PR #4766's master table (Llama 2 7B, four runs) against the rtx3090 expected profile,
    // which was not fitted on it: the same four rows the profile's held-out notes list.
    let file = repo().join("data/llama-bench/rtx3090/pr4766-master.md");
    let out = bin()
        .args(["devices", "check", "--device", "rtx3090", "--llama-bench", file.to_str().unwrap()])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with("rtx3090 (expected (llama.cpp, fitted from 10 public runs)): 4 runs, median factor"),
        "{text}"
    );
    assert!(
        text.contains("prefill") && text.contains("decode") && text.matches("Llama-2-7b-hf").count() == 4,
        "{text}"
    );
    let p = rooflinebench::device::builtin("rtx3090").unwrap();
    // The in-band count, worked out from the printed rates and the profile's bands.
    let b = p.error_bands.as_ref().unwrap();
    let inside = text
        .lines()
        .filter(|l| l.contains("measured") && l.contains("Llama-2-7b-hf"))
        .filter(|l| {
            let rate =
                |after: &str| l.split(after).nth(1).unwrap().split_whitespace().next().unwrap().parse::<f64>().unwrap();
            let band = if l.contains(" pp") { b.prefill } else { b.decode };
            let f = rate("measured ") / rate("predicted ");
            band.is_some_and(|band| band.low <= f && f <= band.high)
        })
        .count();
    assert!(text.contains(&format!("{inside} of 4 within the 80% band")), "{inside}: {text}");
    let rows = p.notes["held_out_agreement"]["rows"].as_array().unwrap();
    for r in rows.iter().filter_map(|r| r.as_str()).filter(|r| r.contains("Llama-2-7b-hf")).take(4) {
        // "... predicted 4559.2 tok/s ..." appears in both.
        let predicted = r.split("predicted ").nth(1).unwrap().split(' ').next().unwrap();
        assert!(text.contains(predicted), "{predicted} not in {text}");
    }
}

#[test]
fn a_tied_model_stored_with_its_own_output_matrix_is_matched_untied() {
    // FlagScale's llama-bench of Qwen3-0.6B lists 751.63 M parameters: the published 596,049,920
    // plus an output matrix of vocab 151,936 x hidden 1,024 = 155,582,464 stored apart.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("run.md");
    std::fs::write(
        &file,
        "| model | size | params | backend | ngl | test | t/s |\n|---|---|---|---|---|---|---|\n\
         | qwen3 0.6B F16 | 1.40 GiB | 751.63 M | CUDA | 99 | pp512 | 24335.09 |\n\
         | qwen3 0.6B F16 | 1.40 GiB | 751.63 M | CUDA | 99 | tg128 | 168.67 |\n",
    )
    .unwrap();
    let out = dir.path().join("p.json");
    let text = bin()
        .args(["devices", "fit", "--base", "a100-80gb-datasheet", "--llama-bench", file.to_str().unwrap()])
        .args(["--out", out.to_str().unwrap()])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("from 2 runs") && text.contains("Qwen3-0.6B"), "{text}");
}

#[test]
fn cpu_threads_scale_the_pi_profile_by_its_published_thread_sweep_and_refuse_unknown_counts() {
    use rooflinebench::device::builtin;
    // data/llama-bench/rpi5/edge-llm-memory-wall-L1*.md: the same three models at 4 and at 2
    // threads. pp512 t/s at 2 over 4 threads: 46.495322/89.272735 = 0.5208,
    // 43.495787/61.685069 = 0.7051, 31.443843/55.265216 = 0.5690 (median 0.5690); tg128:
    // 25.808607/26.840484 = 0.9616, 14.411798/11.402343 = 1.2639, 12.197675/10.336589 = 1.1800
    // (median 1.1800): decode is faster at 2 threads than at 4 on this board.
    let pi = builtin("rpi5").unwrap();
    let two = pi.thread_scaling.iter().find(|t| t.threads == 2).unwrap();
    assert!((two.compute - 31.443843 / 55.265216).abs() < 1e-9, "{two:?}");
    assert!((two.memory - 12.197675 / 10.336589).abs() < 1e-9, "{two:?}");
    let at2 = pi.at_threads(2).unwrap();
    assert_eq!(at2.bandwidth_bytes_per_s, pi.bandwidth_bytes_per_s * two.memory);
    assert!(at2.kind_label().ends_with("2 threads)"), "{}", at2.kind_label());
    let run = |t: &str| -> serde_json::Value {
        let out = analyze()
            .args(["--model", model_path("Llama-3.2-1B").to_str().unwrap(), "--device", "rpi5", "--cpu-threads", t])
            .args(["--scenario", "siso", "--weights", "q4_k_m", "--format", "json"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice::<serde_json::Value>(&out).unwrap()[0].clone()
    };
    let (four, two_t) = (run("4"), run("2"));
    let rate = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap();
    assert!(rate(&two_t, "decode_tokens_per_s") > rate(&four, "decode_tokens_per_s"));
    assert!(rate(&two_t, "prefill_tokens_per_s") < rate(&four, "prefill_tokens_per_s"));
    assert!(two_t["check_command"].as_str().unwrap().contains(" -t 2"));
    // Counts the sweep did not cover, and a GPU profile, are refused in one line.
    for (device, t) in [("rpi5", "5"), ("rtx3090", "2")] {
        let err = bin()
            .args(["analyze", "--model", model_path("Llama-3.2-1B").to_str().unwrap(), "--device", device])
            .args(["--cpu-threads", t])
            .assert()
            .code(2)
            .get_output()
            .stderr
            .clone();
        let err = String::from_utf8(err).unwrap();
        assert!(err.starts_with(&format!("error: --cpu-threads {t}: expected a thread count")), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

/// `calibrate --scale-threads` refuses, before anything is timed or written and in either
/// build, a count above this machine's cores, the profile's own count, a count of 0 and the
/// libtorch engine, each in one line with exit 2.
#[test]
fn calibrate_refuses_a_thread_count_it_cannot_time_in_one_line() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.json");
    let o = out.to_str().unwrap();
    let over = (cores + 1).to_string();
    let over_says =
        format!("error: --scale-threads {over}: expected thread counts from 1 to this machine's {cores} cores");
    for (args, says) in [
        (vec!["--engine", "llama.cpp", "--scale-threads", &over], over_says.as_str()),
        (
            vec!["--engine", "llama.cpp", "--threads", "1", "--scale-threads", "1"],
            "error: --scale-threads 1: expected counts other than the profile's own",
        ),
        (vec!["--engine", "llama.cpp", "--scale-threads", "1,0"], "error: invalid value '1,0' for '--scale-threads"),
        (vec!["--scale-threads", "1"], "error: --scale-threads: applies to --engine llama.cpp"),
    ] {
        let all: Vec<&str> =
            ["calibrate"].into_iter().chain(args.iter().copied()).chain(["--quick", "--out", o]).collect();
        let err = refused(&all, &[]);
        assert!(err.starts_with(says), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(!out.exists());
    }
}

#[test]
fn devices_transfer_refuses_what_it_cannot_carry_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.json");
    let o = out.to_str().unwrap();
    for (args, says) in [
        (
            vec!["--from", "rtx3090-datasheet", "--base", "rtx3070ti-laptop-datasheet"],
            "--from rtx3090-datasheet: expected a profile of an engine",
        ),
        (
            vec!["--from", "rtx3090", "--base", "rtx3070ti-laptop"],
            "--base rtx3070ti-laptop: expected a datasheet profile",
        ),
        (
            vec!["--from", "rtx3090", "--base", "rtx3070ti-laptop-datasheet", "--band-from", "rtx4090"],
            "--band-from rtx4090: expected a transferred profile",
        ),
    ] {
        let err = bin()
            .args(["devices", "transfer"])
            .args(&args)
            .args(["--out", o])
            .assert()
            .code(2)
            .get_output()
            .stderr
            .clone();
        let err = String::from_utf8(err).unwrap();
        assert!(err.starts_with(&format!("error: {says}")) && err.lines().count() == 1, "{err}");
        assert!(!out.exists());
    }
    // A transfer with the Orin Nano Super's two public runs held out: written, both runs predicted.
    let runs = repo().join("data/llama-bench/jetson-orin-nano-super/tinyagent-qwen25-3b-maxn-super.md");
    let text = bin()
        .args(["devices", "transfer", "--from", "jetson-agx-orin-64gb", "--base", "jetson-orin-nano-super-datasheet"])
        .args(["--holdout", runs.to_str().unwrap(), "--out", o])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("runs on the device (2, nothing fitted)"), "{text}");
    let p = rooflinebench::device::DeviceProfile::from_json(&std::fs::read_to_string(&out).unwrap(), "out").unwrap();
    assert_eq!(p.name, "jetson-orin-nano-super");
    assert_eq!(p.kind_label(), "expected (llama.cpp, transferred from jetson-agx-orin-64gb)");
    assert_eq!(p.notes["held_out_agreement"]["factors"].as_array().unwrap().len(), 2);
}
