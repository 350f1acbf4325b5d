//! The kernels calibration times and validation layers run, written once so both measure the
//! same libtorch calls (RMSNorm and RoPE are composites of several ATen kernels, as in eager
//! Hugging Face code).

use tch::{Kind, Tensor};

/// `x * rsqrt(mean(x^2) + eps) * w` over the last dimension.
pub fn rms_norm(x: &Tensor, w: &Tensor) -> Tensor {
    if x.kind() == Kind::Float {
        let var = x.pow_tensor_scalar(2).mean_dim(-1, true, Kind::Float);
        x * (var + 1e-6).rsqrt() * w
    } else {
        // As Hugging Face's RMSNorm does for half formats: normalise in f32, then multiply the
        // weight in the input's format.
        let xf = x.to_kind(Kind::Float);
        let var = xf.pow_tensor_scalar(2).mean_dim(-1, true, Kind::Float);
        (xf * (var + 1e-6).rsqrt()).to_kind(x.kind()) * w
    }
}

/// Rotary embedding in the rotate-half form: `x * cos + rotate_half(x) * sin`.
/// `x` is `[batch, heads, tokens, dim]`; `cos`/`sin` broadcast as `[tokens, dim]`.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
    let half = x.size()[3] / 2;
    let x1 = x.narrow(3, 0, half);
    let x2 = x.narrow(3, half, half);
    let rotated = Tensor::cat(&[x2.neg(), x1], 3);
    x * cos + rotated * sin
}

/// Cosine and sine tables for `tokens` positions starting at `start`, `[tokens, dim]`.
pub fn rope_tables(start: i64, tokens: i64, dim: i64, kind: Kind, device: tch::Device) -> (Tensor, Tensor) {
    let opts = (Kind::Float, device);
    let inv = Tensor::arange_start_step(0, dim, 2, opts).divide_scalar(dim as f64);
    let inv = Tensor::from(10000.0f64).to_kind(Kind::Float).to_device(device).pow(&inv).reciprocal();
    let pos = Tensor::arange_start(start, start + tokens, opts);
    let freqs = pos.unsqueeze(1) * inv.unsqueeze(0);
    let emb = Tensor::cat(&[&freqs, &freqs], 1);
    (emb.cos().to_kind(kind), emb.sin().to_kind(kind))
}

pub fn silu(x: &Tensor) -> Tensor {
    x.silu()
}
