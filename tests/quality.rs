//! Quality estimate: the predicted loss of published configurations against arithmetic done by
//! hand from the published coefficients, its monotonicity, and searches that minimise it.
//! See: issue 14.

use crate::common::*;
use proptest::prelude::*;
use rooflinebench::device::builtin;
use rooflinebench::quality::{chinchilla_loss, estimate, predicted_loss, Coverage, Tokens};
use rooflinebench::search::{run, Scorer, SearchOptions, SearchSpace};

#[test]
fn chinchilla_70b_on_1_4t_tokens_matches_the_refit_by_hand() {
    // Besiroglu et al. 2024: L = 1.8172 + 482.01 / N^0.3478 + 2085.43 / D^0.3658.
    // N = 70e9: ln N = 24.971761, x 0.3478 = 8.685179, e^ = 5914.596, 482.01 / 5914.596 = 0.0814950.
    // D = 1.4e12: ln D = 27.967493, x 0.3658 = 10.230509, e^ = 27736.63, 2085.43 / 27736.63 = 0.0751869.
    // L = 1.8172 + 0.0814950 + 0.0751869 = 1.9738819.
    assert!(close(chinchilla_loss(70e9, 1.4e12), 1.9738819, 1e-7));
}

#[test]
fn llama_3_2_1b_on_9t_tokens_by_hand() {
    // N = 1,235,814,400 (tied embeddings once): ln N = 20.934996, x 0.3478 = 7.281192,
    // e^ = 1452.718, 482.01 / 1452.718 = 0.3317987.
    // D = 9e12: ln D = 29.828246, x 0.3658 = 10.911172, e^ = 54785.03, 2085.43 / 54785.03 = 0.0380657.
    // Chinchilla part: 1.8172 + 0.3317987 + 0.0380657 = 2.1870644.
    // Aspect ratio R = 2048 / 16 = 128: 128^0.6146 = 19.72837, 1 + 0.001146 x 19.72837 = 1.0226087;
    // reference 75^0.6146 = 14.20407, 1 + 0.001146 x 14.20407 = 1.0162779; factor 1.0062295.
    // L = 2.1870644 x 1.0062295 = 2.2006886.
    let e = estimate(&model("Llama-3.2-1B"), Tokens::Fixed(9e12));
    assert!(close(e.predicted_loss, 2.2006886, 1e-7), "{e:?}");
    // 16 layers x (attention 10,485,760 + MLP 50,331,648 + norms 4,096) + final norm 2,048.
    assert_eq!(e.non_embedding_params, 973_146_112);
    assert_eq!(e.tokens, 9e12);
    // GQA 32/8 and an MLP-to-attention ratio of 4.8 were fitted; 9 T tokens were not.
    assert_eq!(e.estimate_range, Coverage::TOKENS);
}

#[test]
fn smollm2_135m_on_2t_tokens_by_hand() {
    // N = 134,515,008: ln N = 18.717186, x 0.3478 = 6.509837, e^ = 671.7172, 482.01 / 671.7172 = 0.7175788.
    // D = 2e12: ln D = 28.324168, x 0.3658 = 10.360981, e^ = 31602.16, 2085.43 / 31602.16 = 0.0659901.
    // Chinchilla part: 1.8172 + 0.7175788 + 0.0659901 = 2.6007689.
    // R = 576 / 30 = 19.2: 19.2^0.6146 = 6.147760, 1 + 0.001146 x 6.147760 = 1.0070453; / 1.0162779
    // = 0.9909154 (deep and narrow: a little better than a Chinchilla shape).
    // L = 2.6007689 x 0.9909154 = 2.5771418.
    let e = estimate(&model("SmolLM2-135M"), Tokens::Fixed(2e12));
    assert!(close(e.predicted_loss, 2.5771418, 1e-7), "{e:?}");
    // 134,515,008 - 49,152 x 576 embedding (28,311,552) = 106,203,456.
    assert_eq!(e.non_embedding_params, 106_203_456);
    assert_eq!(e.estimate_range.to_string(), "tokens");
}

#[test]
fn a_moe_is_priced_at_its_active_parameters_and_mla_and_moe_are_flagged() {
    let a = model("DeepSeek-V2-Lite-Chat");
    let e = estimate(&a, Tokens::Fixed(2e12));
    let aspect = a.hidden_size as f64 / a.num_layers as f64;
    assert!(close(e.predicted_loss, predicted_loss(a.active_parameters() as f64, 2e12, aspect), 1e-12));
    assert!(e.estimate_range.contains(Coverage::MLA) && e.estimate_range.contains(Coverage::MOE), "{e:?}");
    assert_eq!(e.non_embedding_params, a.parameters() - a.embedding_params());
}

proptest! {
    #[test]
    fn the_loss_falls_with_parameters_and_tokens(
        n in 1e7f64..1e11, dn in 1.0001f64..100.0, d in 1e8f64..1e14, dd in 1.0001f64..100.0, r in 4.0f64..500.0,
    ) {
        prop_assert!(predicted_loss(n * dn, d, r) < predicted_loss(n, d, r));
        prop_assert!(predicted_loss(n, d * dd, r) < predicted_loss(n, d, r));
    }

    #[test]
    fn adding_layers_never_raises_the_loss(extra in 1u32..40, per_parameter in proptest::bool::ANY) {
        // More layers at the same width: more parameters and a narrower aspect ratio, both lower
        // the loss, whether the data budget is fixed or grows with the model.
        let tokens = if per_parameter { Tokens::PerParameter(20.0) } else { Tokens::Fixed(2e12) };
        let a = model("SmolLM2-135M");
        let mut b = a.clone();
        b.num_layers += extra;
        prop_assert!(estimate(&b, tokens).predicted_loss < estimate(&a, tokens).predicted_loss);
    }
}

fn fixture(name: &str) -> SearchSpace {
    SearchSpace::load(&repo().join("tests/fixtures").join(name)).unwrap()
}

#[test]
fn a_loss_search_under_a_tpot_limit_returns_the_lowest_loss_feasible_candidate_above_the_floor() {
    let space = fixture("small-loss.toml");
    let c = &space.constraints;
    let (tpot, floor) = (c.max_tpot_s.unwrap(), c.min_non_embedding_params.unwrap());
    let device = builtin("rpi5").unwrap();
    let outcome = run(&space, &device, &SearchOptions::default()).unwrap();
    assert!(outcome.rejected.get("max_tpot_s").copied().unwrap_or(0) > 0, "the limit binds: {:?}", outcome.rejected);
    assert!(outcome.rejected.get("min_non_embedding_params").copied().unwrap_or(0) > 0, "{:?}", outcome.rejected);
    let report = rooflinebench::search::finish(&space, &device, outcome).unwrap();
    let rec = &report.recommended;
    assert!(rec.tpot_s <= tpot, "{rec:?}");
    assert!(rec.non_embedding_params as f64 >= floor, "{rec:?}");
    // Brute force: no feasible candidate predicts a lower loss, and without the TPOT limit one does.
    let mut scorer = Scorer::new(&space, &device, rooflinebench::roofline::PlanChoice::Fastest);
    let feasible: Vec<_> =
        (0..space.count()).filter_map(|i| space.candidate(i).ok()).filter_map(|c| scorer.score(&c).ok()).collect();
    let best = feasible.iter().map(|s| s.predicted_loss).fold(f64::INFINITY, f64::min);
    assert_eq!(rec.predicted_loss, best);
    let mut free = space.clone();
    free.constraints.max_tpot_s = None;
    let mut scorer = Scorer::new(&free, &device, rooflinebench::roofline::PlanChoice::Fastest);
    let unlimited = (0..free.count())
        .filter_map(|i| free.candidate(i).ok())
        .filter_map(|c| scorer.score(&c).ok())
        .map(|s| s.predicted_loss)
        .fold(f64::INFINITY, f64::min);
    assert!(unlimited < best, "the TPOT limit costs quality: {unlimited} vs {best}");
}

#[test]
fn the_summary_names_a_quality_first_pick_within_the_stated_latency() {
    let space = fixture("small-space.toml");
    let device = builtin("rpi5").unwrap();
    let outcome = run(&space, &device, &SearchOptions::default()).unwrap();
    let report = rooflinebench::search::finish(&space, &device, outcome).unwrap();
    let (q, rec) = (&report.quality_pick, &report.recommended);
    assert!(q.tpot_s <= rec.tpot_s * (1.0 + space.quality_tpot_margin) * (1.0 + 1e-12), "{q:?}");
    assert!(q.predicted_loss <= rec.predicted_loss);
    let text = rooflinebench::report::explain::explain(&report);
    assert!(text.contains("quality-first within +10% TPOT of the recommendation"), "{text}");
    assert!(text.contains("predicted loss"), "{text}");
}

#[test]
fn analyze_reports_the_loss_for_the_tokens_asked_in_every_format() {
    let run = |args: &[&str]| {
        let out = bin()
            .args(["analyze", "--model", model_path("SmolLM2-135M").to_str().unwrap(), "--device", "rpi5"])
            .args(["--scenario", "siso"])
            .args(args)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out).unwrap()
    };
    let json: serde_json::Value = serde_json::from_str(&run(&["--format", "json", "--tokens", "2e12"])).unwrap();
    assert!(close(json[0]["predicted_loss"].as_f64().unwrap(), 2.5771418, 1e-7), "{json}");
    assert_eq!(json[0]["non_embedding_params"], 106_203_456);
    assert_eq!(json[0]["estimate_range"], "tokens");
    // 40 tokens per parameter: 5.38 B tokens, inside the Chinchilla data (5 B to 500 B), and a
    // higher loss.
    let json: serde_json::Value =
        serde_json::from_str(&run(&["--format", "json", "--tokens-per-parameter", "40"])).unwrap();
    assert!(close(json[0]["tokens"].as_f64().unwrap(), 40.0 * 134_515_008.0, 1e-12));
    assert!(json[0]["predicted_loss"].as_f64().unwrap() > 2.6, "{json}");
    assert_eq!(json[0]["estimate_range"], "fitted");
    let csv = run(&["--format", "csv"]);
    let header = csv.lines().next().unwrap();
    assert!(header.ends_with("non_embedding_params,tokens,predicted_loss,estimate_range,warnings"), "{header}");
    let table = run(&[]);
    assert!(table.contains("quality: predicted loss 2.5771 after 2.00 T training tokens"), "{table}");
}

#[test]
fn a_space_with_both_token_settings_is_refused_naming_the_table() {
    let text = std::fs::read_to_string(repo().join("tests/fixtures/small-space.toml")).unwrap()
        + "\n[training]\ntokens = 2e12\ntokens_per_parameter = 20\n";
    let err = SearchSpace::parse(&text, "space.toml", "space").unwrap_err().to_string();
    assert!(err.contains("space.toml") && err.contains("'training'") && err.contains("both"), "{err}");
    let text = std::fs::read_to_string(repo().join("tests/fixtures/small-space.toml")).unwrap()
        + "\n[training]\ntokens = -1\n";
    let err = SearchSpace::parse(&text, "space.toml", "space").unwrap_err().to_string();
    assert!(err.contains("training.tokens") && err.contains("positive"), "{err}");
}
