//! Plots and the paper reproduction: SVGs that parse and hold their series, the findings the
//! physics supports, and determinism.

use crate::common::*;
use rooflinebench::report::plot::{
    front_svg, quality_svg, roofline_svg, FrontPoint, Marked, QualityPoint, RoofLine, RooflinePoint,
};
use rooflinebench::reproduce;

fn parse(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{}: not XML: {e}", path.display()));
    text
}

/// Roof series: 2-pixel polylines through three points (start, ridge, end); legend swatches
/// have two points and axis ticks are 1 pixel wide.
fn roof_polylines(svg: &str) -> usize {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke-width") == Some("2"))
        .filter(|n| n.attribute("points").unwrap_or("").split_whitespace().count() == 3)
        .count()
}

#[test]
fn a_roofline_svg_has_one_polyline_per_roof_one_ridge_and_one_marker_per_point() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.svg");
    let roofs = vec![
        RoofLine { label: "a".into(), peak_flop_per_s: 1e12, bandwidth_bytes_per_s: 1e11 },
        RoofLine { label: "b".into(), peak_flop_per_s: 1e14, bandwidth_bytes_per_s: 1e12 },
    ];
    let points: Vec<RooflinePoint> = (0..5)
        .map(|i| RooflinePoint {
            model: None,
            label: format!("p{i}"),
            roof: i % 2,
            intensity_flop_per_byte: 0.5 * (i + 1) as f64,
            performance_flop_per_s: 1e10 * (i + 1) as f64,
        })
        .collect();
    roofline_svg(&path, "t", &roofs, &points).unwrap();
    let svg = parse(&path);
    assert_eq!(roof_polylines(&svg), 2);
    assert_eq!(svg.matches("<circle").count(), 5);
    assert_eq!(svg.matches("<polygon").count(), 2, "one ridge marker per roof");
    for label in ["p0", "p4", "a (ridge 10.0 FLOP/B)", "b (ridge 100.0 FLOP/B)", "operational intensity (FLOP/byte)"] {
        assert!(svg.contains(label), "{label}");
    }
}

#[test]
fn a_front_svg_colours_each_attention_kind_and_marks_the_recommendation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.svg");
    let pts: Vec<FrontPoint> = (0..6)
        .map(|i| FrontPoint {
            parameters: 1e8 * (i + 1) as f64,
            rip: 0.1 * i as f64,
            attention: ["gqa", "mla"][i % 2].into(),
            recommended: i == 3,
        })
        .collect();
    front_svg(&path, "front", &pts).unwrap();
    let svg = parse(&path);
    // Six points plus one legend swatch per kind.
    assert_eq!(svg.matches("<circle").count(), 6 + 2);
    assert!(svg.contains("\nrecommended\n") && svg.contains("\ngqa\n") && svg.contains("\nmla\n"), "{svg}");
}

#[test]
fn a_quality_svg_plots_every_member_and_labels_each_marked_candidate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.svg");
    let pts: Vec<QualityPoint> = (0..7)
        .map(|i| QualityPoint {
            decode_tokens_per_s: 10.0 + 5.0 * i as f64,
            predicted_loss: 2.2 + 0.05 * i as f64,
            attention: ["gqa", "mla", "mqa"][i % 3].into(),
        })
        .collect();
    let marked = vec![
        Marked { label: "recommended: #3".into(), decode_tokens_per_s: 25.0, predicted_loss: 2.35 },
        Marked { label: "fastest decoder: #6".into(), decode_tokens_per_s: 40.0, predicted_loss: 2.5 },
    ];
    quality_svg(&path, "quality", &pts, &marked).unwrap();
    let svg = parse(&path);
    // Seven points plus one legend swatch per kind.
    assert_eq!(svg.matches("<circle").count(), 7 + 3);
    for text in ["recommended: #3", "fastest decoder: #6", "decode tokens/s", "predicted pre-training loss"] {
        assert!(svg.contains(text), "{text}");
    }
}

#[test]
fn liso_beats_silo_in_intensity_and_rip_for_every_model_on_every_device() {
    // Prefill is compute-heavy and LISO is mostly prefill; SILO is mostly decode, which reads
    // every weight for every generated token.
    let rows = reproduce::scenarios(&reproduce::models(&repo().join("models")).unwrap(), &reproduce::devices());
    let mut pairs = 0;
    for l in rows.iter().filter(|r| r.scenario == "liso") {
        let s = rows.iter().find(|r| r.scenario == "silo" && r.model == l.model && r.device == l.device).unwrap();
        assert!(l.intensity_flop_per_byte > s.intensity_flop_per_byte, "{} {}", l.model, l.device);
        assert!(l.rip > s.rip, "{} {}", l.model, l.device);
        pairs += 1;
    }
    assert_eq!(pairs, 6 * 5);
}

#[test]
fn at_equal_size_decode_kv_bytes_order_mla_below_gqa_below_mha() {
    // Per token over all layers at 16 bits: SmolLM2-1.7B (MHA) 24 x 2 x 32 x 64 x 2 = 196,608 B;
    // Qwen2.5-1.5B (GQA) 28 x 2 x 2 x 128 x 2 = 28,672 B; the MLA model 24 x (512 + 64) x 2 =
    // 27,648 B.
    let mha = model("SmolLM2-1.7B-Instruct");
    let gqa = model("Qwen2.5-1.5B-Instruct");
    let mla = reproduce::mla_matched();
    let kv = |a: &rooflinebench::arch::Architecture| a.kv_elements_per_token() * 2;
    assert_eq!((kv(&mha), kv(&gqa), kv(&mla)), (196_608, 28_672, 27_648));
    // The three are size-matched within 15%.
    let p = [mha.parameters() as f64, gqa.parameters() as f64, mla.parameters() as f64];
    let (lo, hi) = (p.iter().cloned().fold(f64::MAX, f64::min), p.iter().cloned().fold(0.0, f64::max));
    assert!(hi / lo < 1.15, "{p:?}");
}

#[test]
fn reproduce_is_byte_identical_across_runs() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for d in [&a, &b] {
        bin().args(["reproduce", "--out", d.path().to_str().unwrap()]).assert().success();
    }
    let mut names: Vec<_> = std::fs::read_dir(a.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert!(names.len() >= 15, "{names:?}");
    for n in names {
        let (x, y) = (std::fs::read(a.path().join(&n)).unwrap(), std::fs::read(b.path().join(&n)).unwrap());
        assert!(x == y, "{n:?} differs between runs");
        if n.to_string_lossy().ends_with(".svg") {
            parse(&a.path().join(&n));
        }
    }
}
