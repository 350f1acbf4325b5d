//! Validation: real decoder layers in libtorch with random weights, timed for prefill and for
//! decode steps against KV caches, and compared with the profile's prediction of the same
//! layer. Layers are rotated over enough copies (at least 128-256 MB) that each step finds its
//! weights and cache in main memory, as a step through a real many-layer model does.

use super::kernels::{rms_norm, rope, rope_tables, silu};
use super::target::Target;
use super::{progress, set_threads};
use crate::arch::{Activation, Architecture, Attention, Ffn, Mla, Moe};
use crate::device::DeviceProfile;
use crate::dtype::{DType, Precisions};
use crate::error::Result;
use crate::measure::{MeasureOptions, ValidationRow};
use crate::roofline::op_totals;
use crate::workload::{operators, AttentionForm, ElementwiseForm, MlaForm, Phase, Plan, RunSettings};
use std::time::Duration;
use tch::{Device, Kind, Tensor};

/// Workloads predicted to take longer than this per call are skipped (and reported): a bf16
/// prefill on a CPU without a bf16 GEMM path runs at about 2 GFLOP/s, minutes per repeat set.
const MAX_CALL_S: f64 = 1.0;

fn randn(shape: &[i64], kind: Kind, device: Device) -> Tensor {
    // Uniform in +-1/sqrt(fan-in): activations stay O(1) through the layer, and uniform
    // filling is much faster than normal for the hundreds of megabytes of layer copies.
    Tensor::rand(shape, (Kind::Float, device))
        .g_mul_scalar(2.0 / (shape[0] as f64).sqrt())
        .g_sub_scalar(1.0 / (shape[0] as f64).sqrt())
        .to_kind(kind)
}

/// A validation workload's shape.
#[derive(Debug, Clone, Copy)]
struct Shape {
    hidden: i64,
    heads: i64,
    kv_heads: i64,
    head_dim: i64,
    ffn: i64,
    /// MLA: latent rank (0 = grouped attention).
    latent: i64,
    rope: i64,
    absorbed: bool,
    /// MoE: experts and top-k (0 = dense FFN); experts are `ffn` wide, one shared expert.
    experts: i64,
    top_k: i64,
    /// The format weights, activations and the KV cache are in.
    dtype: DType,
}

impl Shape {
    fn kind(&self) -> Kind {
        super::kind_of(self.dtype)
    }

    fn arch(&self) -> Architecture {
        let attention = if self.latent > 0 {
            Attention::Latent(Mla {
                num_heads: self.heads as u32,
                kv_lora_rank: self.latent as u32,
                q_lora_rank: None,
                qk_nope_head_dim: (self.head_dim - self.rope) as u32,
                qk_rope_head_dim: self.rope as u32,
                v_head_dim: self.head_dim as u32,
            })
        } else {
            Attention::Grouped {
                num_heads: self.heads as u32,
                num_kv_heads: self.kv_heads as u32,
                head_dim: self.head_dim as u32,
            }
        };
        let ffn = if self.experts > 0 {
            Ffn::Moe(Moe {
                num_experts: self.experts as u32,
                experts_per_token: self.top_k as u32,
                num_shared_experts: 1,
                expert_intermediate_size: self.ffn as u32,
                dense_intermediate_size: self.ffn as u32,
                first_k_dense: 0,
                activation: Activation::Silu,
                router_bias: false,
                expert_bias: false,
                shared_expert_gate: false,
            })
        } else {
            Ffn::swiglu(self.ffn as u32)
        };
        Architecture::plain(self.label(), 1, self.hidden as u32, 1000, true, attention, ffn)
    }

    fn label(&self) -> String {
        let att = if self.latent > 0 {
            format!("mla-{} r{}", if self.absorbed { "absorbed" } else { "materialised" }, self.latent)
        } else {
            format!("{} {}/{}", self.attention_kind(), self.heads, self.kv_heads)
        };
        let ffn = if self.experts > 0 {
            format!("moe {}x{} top{}", self.experts, self.ffn, self.top_k)
        } else {
            format!("ffn {}", self.ffn)
        };
        let format = if self.dtype == DType::F32 { String::new() } else { format!(" {}", self.dtype) };
        format!("H{} {att} hd{} {ffn}{format}", self.hidden, self.head_dim)
    }

    fn attention_kind(&self) -> &'static str {
        if self.latent > 0 {
            "mla"
        } else if self.kv_heads == self.heads {
            "mha"
        } else if self.kv_heads == 1 {
            "mqa"
        } else {
            "gqa"
        }
    }

    fn plan(&self) -> Plan {
        Plan {
            mla: if self.absorbed { MlaForm::Absorbed } else { MlaForm::Materialised },
            attention: AttentionForm::Fused,
            // Eager libtorch runs every norm and activation as its own kernel.
            elementwise: ElementwiseForm::Separate,
        }
    }
}

/// One decoder layer's weights (stored `[in, out]`: activations times weights) and KV cache.
struct Layer {
    s: Shape,
    norm1: Tensor,
    norm2: Tensor,
    wq: Tensor,
    wk: Tensor,
    wv: Tensor,
    wo: Tensor,
    /// MLA: kv_a `[H, r + rope]`, kv norm `[r]`, kv_b `[r, heads * (nope + v)]`; absorbed
    /// per-head W_uk `[heads, nope, r]` and W_uv `[heads, r, v]`.
    kv_a: Tensor,
    kv_norm: Tensor,
    kv_b: Tensor,
    w_uk: Tensor,
    w_uv: Tensor,
    gate: Tensor,
    up: Tensor,
    down: Tensor,
    router: Tensor,
    experts: Vec<(Tensor, Tensor, Tensor)>,
    /// Grouped: keys `[1, kv, max, hd]` and values; MLA: latent plus RoPE key `[1, 1, max, r + rope]`.
    k_cache: Tensor,
    v_cache: Tensor,
}

impl Layer {
    fn new(s: Shape, max_ctx: i64, device: Device) -> Layer {
        let (h, nh, hd) = (s.hidden, s.heads, s.head_dim);
        let kind = s.kind();
        let randn = |shape: &[i64]| randn(shape, kind, device);
        let empty = || Tensor::zeros([1], (kind, device));
        let mla = s.latent > 0;
        let nope = hd - s.rope;
        let (wq, wk, wv, kv_a, kv_norm, kv_b, w_uk, w_uv, k_cache, v_cache) = if mla {
            let r = s.latent;
            (
                randn(&[h, nh * hd]),
                empty(),
                empty(),
                randn(&[h, r + s.rope]),
                Tensor::ones([r], (kind, device)),
                randn(&[r, nh * (nope + hd)]),
                randn(&[nh, nope, r]),
                randn(&[nh, r, hd]),
                Tensor::zeros([1, 1, max_ctx, r + s.rope], (kind, device)),
                empty(),
            )
        } else {
            let kv = s.kv_heads * hd;
            (
                randn(&[h, nh * hd]),
                randn(&[h, kv]),
                randn(&[h, kv]),
                empty(),
                empty(),
                empty(),
                empty(),
                empty(),
                Tensor::zeros([1, s.kv_heads, max_ctx, hd], (kind, device)),
                Tensor::zeros([1, s.kv_heads, max_ctx, hd], (kind, device)),
            )
        };
        let experts = (0..s.experts).map(|_| (randn(&[h, s.ffn]), randn(&[h, s.ffn]), randn(&[s.ffn, h]))).collect();
        Layer {
            s,
            norm1: Tensor::ones([h], (kind, device)),
            norm2: Tensor::ones([h], (kind, device)),
            wq,
            wk,
            wv,
            wo: randn(&[nh * hd, h]),
            kv_a,
            kv_norm,
            kv_b,
            w_uk,
            w_uv,
            gate: randn(&[h, s.ffn]),
            up: randn(&[h, s.ffn]),
            down: randn(&[s.ffn, h]),
            router: if s.experts > 0 { randn(&[h, s.experts]) } else { empty() },
            experts,
            k_cache,
            v_cache,
        }
    }

    fn bytes(&self) -> f64 {
        let t = [
            &self.wq,
            &self.wk,
            &self.wv,
            &self.wo,
            &self.kv_a,
            &self.kv_b,
            &self.w_uk,
            &self.w_uv,
            &self.gate,
            &self.up,
            &self.down,
            &self.k_cache,
            &self.v_cache,
        ];
        let experts: i64 =
            self.experts.iter().map(|(a, b, c)| a.numel() as i64 + b.numel() as i64 + c.numel() as i64).sum();
        (t.iter().map(|x| x.numel() as i64).sum::<i64>() + experts) as f64 * self.s.dtype.bytes()
    }

    /// One forward pass over `tokens` new tokens at positions `start..start + tokens`
    /// (prefill: start 0; decode: one token at `start = context - 1`).
    fn forward(&mut self, x: &Tensor, start: i64, tokens: i64, cos: &Tensor, sin: &Tensor) -> Tensor {
        let s = self.s;
        let (nh, hd) = (s.heads, s.head_dim);
        let causal = start == 0 && tokens > 1;
        let ctx = start + tokens;
        let h = rms_norm(x, &self.norm1);
        let attn = if s.latent > 0 {
            let (r, dr) = (s.latent, s.rope);
            let nope = hd - dr;
            let q = h.matmul(&self.wq).view([1, tokens, nh, hd]).transpose(1, 2);
            let q_nope = q.narrow(3, 0, nope);
            let q_rope = rope(&q.narrow(3, nope, dr), cos, sin);
            let kv = h.matmul(&self.kv_a);
            let latent = rms_norm(&kv.narrow(2, 0, r), &self.kv_norm);
            let k_rope = rope(&kv.narrow(2, r, dr).unsqueeze(1), cos, sin);
            self.k_cache.narrow(2, start, tokens).copy_(&Tensor::cat(&[latent.unsqueeze(1), k_rope], 3));
            let cache = self.k_cache.narrow(2, 0, ctx);
            let out = if s.absorbed {
                // Queries into latent space; every head attends the one shared latent stream,
                // folded into the query-position axis (decode only: no causal mask needed).
                let q_lat = q_nope.matmul(&self.w_uk.unsqueeze(0));
                let q_full = Tensor::cat(&[q_lat, q_rope], 3).view([1, 1, nh * tokens, r + dr]);
                let o = Tensor::scaled_dot_product_attention(
                    &q_full,
                    &cache,
                    &cache.narrow(3, 0, r),
                    None::<Tensor>,
                    0.0,
                    false,
                    1.0 / ((nope + dr) as f64).sqrt(),
                    false,
                );
                o.view([1, nh, tokens, r]).matmul(&self.w_uv.unsqueeze(0))
            } else {
                let expanded = cache
                    .narrow(3, 0, r)
                    .squeeze_dim(1)
                    .matmul(&self.kv_b)
                    .view([1, ctx, nh, nope + hd])
                    .transpose(1, 2);
                let k_nope = expanded.narrow(3, 0, nope);
                let v = expanded.narrow(3, nope, hd);
                let k = Tensor::cat(&[k_nope, cache.narrow(3, r, dr).expand([1, nh, ctx, dr], false)], 3);
                let qf = Tensor::cat(&[q_nope, q_rope], 3);
                Tensor::scaled_dot_product_attention(&qf, &k, &v, None::<Tensor>, 0.0, causal, None, false)
            };
            out.transpose(1, 2).reshape([1, tokens, nh * hd]).matmul(&self.wo)
        } else {
            let kv = s.kv_heads;
            let q = rope(&h.matmul(&self.wq).view([1, tokens, nh, hd]).transpose(1, 2), cos, sin);
            let k = rope(&h.matmul(&self.wk).view([1, tokens, kv, hd]).transpose(1, 2), cos, sin);
            let v = h.matmul(&self.wv).view([1, tokens, kv, hd]).transpose(1, 2);
            self.k_cache.narrow(2, start, tokens).copy_(&k);
            self.v_cache.narrow(2, start, tokens).copy_(&v);
            let (kc, vc) = (self.k_cache.narrow(2, 0, ctx), self.v_cache.narrow(2, 0, ctx));
            let o = Tensor::scaled_dot_product_attention(&q, &kc, &vc, None::<Tensor>, 0.0, causal, None, kv != nh);
            o.transpose(1, 2).reshape([1, tokens, nh * hd]).matmul(&self.wo)
        };
        let x = x + attn;
        let h = rms_norm(&x, &self.norm2);
        let ffn = if s.experts > 0 {
            let flat = h.view([tokens, s.hidden]);
            let probs = flat.matmul(&self.router).softmax(-1, s.kind());
            let (weights, chosen) = probs.topk(s.top_k, -1, true, false);
            let chosen: Vec<i64> = Vec::<i64>::try_from(chosen.flatten(0, -1)).unwrap_or_default();
            let mut out = silu(&flat.matmul(&self.gate)) * flat.matmul(&self.up);
            out = out.matmul(&self.down);
            for e in 0..s.experts {
                let rows: Vec<i64> =
                    chosen.iter().enumerate().filter(|(_, &c)| c == e).map(|(i, _)| i as i64 / s.top_k).collect();
                if rows.is_empty() {
                    continue;
                }
                let idx = Tensor::from_slice(&rows).to_device(flat.device());
                let xe = flat.index_select(0, &idx);
                let (g, u, d) = &self.experts[e as usize];
                let ye = (silu(&xe.matmul(g)) * xe.matmul(u)).matmul(d);
                let w = weights.flatten(0, -1).index_select(
                    0,
                    &Tensor::from_slice(
                        &chosen.iter().enumerate().filter(|(_, &c)| c == e).map(|(i, _)| i as i64).collect::<Vec<_>>(),
                    )
                    .to_device(flat.device()),
                );
                out = out.index_add(0, &idx, &(ye * w.unsqueeze(1)));
            }
            out.view([1, tokens, s.hidden])
        } else {
            (silu(&h.matmul(&self.gate)) * h.matmul(&self.up)).matmul(&self.down)
        };
        x + ffn
    }
}

/// The shapes validated: none of them is a shape calibration timed.
fn shapes(quick: bool) -> Vec<Shape> {
    let g = |hidden, heads, kv_heads, ffn| Shape {
        hidden,
        heads,
        kv_heads,
        head_dim: 64,
        ffn,
        latent: 0,
        rope: 0,
        absorbed: false,
        experts: 0,
        top_k: 0,
        dtype: DType::F32,
    };
    let m = |hidden, heads, latent, absorbed| Shape {
        hidden,
        heads,
        kv_heads: heads,
        head_dim: 96,
        ffn: hidden * 11 / 4,
        latent,
        rope: 32,
        absorbed,
        experts: 0,
        top_k: 0,
        dtype: DType::F32,
    };
    let moe = Shape {
        hidden: 1024,
        heads: 16,
        kv_heads: 4,
        head_dim: 64,
        ffn: 704,
        latent: 0,
        rope: 0,
        absorbed: false,
        experts: 8,
        top_k: 2,
        dtype: DType::F32,
    };
    let bf16 = |s: Shape| Shape { dtype: DType::Bf16, ..s };
    if quick {
        return vec![g(512, 8, 2, 1408), m(512, 8, 128, true), bf16(g(512, 8, 2, 1408))];
    }
    vec![
        g(512, 8, 8, 1408),
        g(512, 8, 2, 1408),
        g(1024, 16, 16, 2816),
        g(1024, 16, 4, 2816),
        g(1024, 16, 1, 2816),
        g(2048, 32, 8, 5632),
        g(2048, 16, 2, 5632),
        m(1024, 16, 256, false),
        m(1024, 16, 256, true),
        m(2048, 16, 512, false),
        m(2048, 16, 512, true),
        moe,
        bf16(g(1024, 16, 4, 2816)),
        bf16(g(2048, 32, 8, 5632)),
        bf16(m(1024, 16, 256, false)),
        bf16(m(1024, 16, 256, true)),
    ]
}

pub fn validate(profile: &DeviceProfile, opts: &MeasureOptions) -> Result<(Vec<ValidationRow>, Vec<String>)> {
    // First: libtorch settles whether CUDA is there at its first question.
    let target = Target::open(opts.on, "validate")?;
    let device = target.device;
    set_threads(opts.threads);
    tch::manual_seed(1);
    let before = super::calibrate::probe(&target);
    let quick = opts.quick;
    let prefill_lens: &[i64] = if quick { &[64] } else { &[64, 256, 1024] };
    let decode_ctx: &[i64] = if quick { &[200] } else { &[200, 800, 3000] };
    let shapes = shapes(quick);
    let bar = progress(shapes.len() as u64, opts.progress);
    let budget = if quick { Duration::from_millis(150) } else { Duration::from_millis(500) };
    let cold_bytes = if quick { 96e6 } else { 256e6 };
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    let _guard = tch::no_grad_guard();
    for s in shapes {
        bar.set_message(s.label());
        let max_ctx = *decode_ctx.iter().chain(prefill_lens).max().unwrap();
        let probe_layer = Layer::new(s, max_ctx, device);
        let copies = ((cold_bytes / probe_layer.bytes()).ceil() as usize).clamp(1, 64);
        let mut layers: Vec<Layer> =
            std::iter::once(probe_layer).chain((1..copies).map(|_| Layer::new(s, max_ctx, device))).collect();
        let arch = s.arch();
        let settings =
            RunSettings { batch: 1, precisions: Precisions::uniform(s.dtype), logits_for_all_prompt_tokens: false };
        let layer_ops = |phase| -> Vec<crate::workload::Operator> {
            operators(&arch, phase, &settings, s.plan())
                .into_iter()
                .filter(|o| !matches!(o.name, "embedding" | "final_norm" | "lm_head"))
                .collect()
        };
        let mut run = |phase: &'static str, start: i64, tokens: i64| -> (f64, f64) {
            let x = Tensor::randn([1, tokens, s.hidden], (s.kind(), device));
            let dim = if s.latent > 0 { s.rope } else { s.head_dim };
            let (cos, sin) = rope_tables(start, tokens, dim, s.kind(), device);
            let n = layers.len();
            let mut i = 0;
            let t = target.time(
                || {
                    i = (i + 1) % n;
                    drop(layers[i].forward(&x, start, tokens, &cos, &sin));
                },
                n.min(4) + 1,
                10_000,
                budget,
            );
            let _ = phase;
            (t.median_s, t.cv)
        };
        let prefill_ops = |len: i64| layer_ops(Phase::Prefill { prompt: len as u32 });
        let prefill: &[i64] = if s.absorbed { &[] } else { prefill_lens };
        for &len in prefill {
            let predicted: f64 = prefill_ops(len).iter().map(|o| op_totals(o, profile, 0.0, 0.0).point.time_s).sum();
            if predicted > MAX_CALL_S {
                skipped.push(format!("{} prefill {len}", s.label()));
                continue;
            }
            let (measured, cv) = run("prefill", 0, len);
            rows.push(row(&s, "prefill", len, measured, cv, predicted));
        }
        for &ctx in decode_ctx {
            let n = ctx as f64;
            let predicted: f64 =
                layer_ops(Phase::Decode).iter().map(|o| op_totals(o, profile, n, n).point.time_s).sum();
            if predicted > MAX_CALL_S {
                skipped.push(format!("{} decode {ctx}", s.label()));
                continue;
            }
            let (measured, cv) = run("decode", ctx - 1, 1);
            rows.push(row(&s, "decode", ctx, measured, cv, predicted));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let after = super::calibrate::probe(&target);
    let notes = validation_notes(profile, &target, &skipped, before, after);
    Ok((rows, notes))
}

/// What a reader of the comparison should know: a device other than the profile's, workloads
/// skipped, and the probes before and after (against the calibration's own).
fn validation_notes(
    profile: &DeviceProfile,
    target: &Target,
    skipped: &[String],
    before: (f64, f64),
    after: (f64, f64),
) -> Vec<String> {
    let mut notes = Vec::new();
    let calibrated_on = profile.host.as_ref().map_or("a datasheet", |h| h.device.as_str());
    if profile.host.is_none() || calibrated_on.split(' ').next() != target.label.split(' ').next() {
        notes.push(format!(
            "warning: the layers ran on {}, the profile describes {calibrated_on}: calibrate with --on {} for a like-for-like check",
            target.label,
            target.on_name()
        ));
    }
    if !skipped.is_empty() {
        notes.push(format!(
            "skipped {} workloads the profile predicts at over {MAX_CALL_S} s a call (timing them would take minutes): {}",
            skipped.len(),
            skipped.join("; ")
        ));
    }
    for (when, p) in [("before", before), ("after", after)] {
        notes.push(format!("probe {when}: {:.1} GFLOP/s f32 GEMM, {:.1} GB/s add", p.0 / 1e9, p.1 / 1e9));
    }
    if let (Some(f), Some(b)) = (
        profile.notes.get("probe_before_flop_per_s").and_then(|v| v.as_f64()),
        profile.notes.get("probe_before_bytes_per_s").and_then(|v| v.as_f64()),
    ) {
        let moved = ((before.0 / f - 1.0).abs()).max((before.1 / b - 1.0).abs());
        if moved > 0.10 {
            notes.push(format!(
                "warning: the machine is in a different state than at calibration ({:+.0}% compute, {:+.0}% bandwidth on the probe): re-calibrate for a fair comparison",
                100.0 * (before.0 / f - 1.0),
                100.0 * (before.1 / b - 1.0)
            ));
        }
    }
    notes
}

fn row(s: &Shape, phase: &'static str, tokens: i64, measured: f64, cv: f64, predicted: f64) -> ValidationRow {
    ValidationRow {
        workload: s.label(),
        attention: s.attention_kind().to_string(),
        dtype: s.dtype.to_string(),
        phase,
        hidden: s.hidden as u32,
        heads: s.heads as u32,
        kv_heads: s.kv_heads as u32,
        kv_lora_rank: s.latent as u32,
        tokens: tokens as u32,
        measured_s: measured,
        measured_cv: cv,
        predicted_s: predicted,
        error: (predicted - measured) / measured,
    }
}
