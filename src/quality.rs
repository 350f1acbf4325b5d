//! Predicts how good an architecture would be once trained: its pre-training loss from
//! published scaling laws, with its non-embedding parameters and training tokens, and where the
//! estimate leaves the ranges those laws were fitted on.
//!
//! The loss is the Chinchilla form `L(N, D) = E + A / N^alpha + B / D^beta` with the
//! coefficients Besiroglu et al. (2024, arXiv 2404.10102) refitted to Hoffmann et al.'s data,
//! times the aspect-ratio correction of Bian, Yan and Venkataraman (2025, arXiv 2501.18107),
//! `(1 + eps R^gamma)` with `R = hidden / layers`, normalised to 1 at the typical aspect ratio
//! of the models the Chinchilla data came from (so a Chinchilla-shaped model gets exactly the
//! Besiroglu loss). Both fits count `N` as every parameter, embeddings included (tied ones
//! once), so that is the `N` used here; the README's "Quality estimate" table gives every
//! coefficient, where it comes from, and the ranges.
//!
//! What is deliberately left out, and why:
//! - the hidden-size and MLP-to-attention terms of Bian, Yu, Venkataraman and Park (2025, arXiv
//!   2510.18245): their functional form is published, but no stored source gives the fitted
//!   coefficients, so no correction is applied (a factor of 1); a ratio outside the range that
//!   paper fitted is flagged instead;
//! - grouped-query attention: the same paper found its effect on loss noisy and not monotone and
//!   fitted no term for it, so none is applied;
//! - MLA and MoE: no small-scale shape law is published. An MLA model is priced as the dense
//!   model with the same parameters (neither the quality DeepSeek-V2 reports at scale nor a
//!   penalty); a MoE model counts only its active parameters (top-k and shared experts plus the
//!   dense parts): a lower bound on its quality if, as MoE papers usually report, it does at
//!   least as well as the dense model of its active size. Both are flagged.
//!
//! The estimate runs inside the search's scoring loop: one `powf` call per candidate (two when
//! the tokens scale with the parameters; the aspect factor is kept per depth, see
//! [`AspectFactors`]), the rest a handful of integer products.

use crate::arch::{Architecture, AttentionKind, Ffn, LayerGroups, Mixer};
use serde::{Serialize, Serializer};
use std::fmt;

/// Besiroglu et al. (2024), the refit of Hoffmann et al.'s third approach: irreducible loss
/// (nats per token).
pub const E: f64 = 1.8172;
/// Besiroglu et al. (2024): the parameter term's scale and exponent.
pub const A: f64 = 482.01;
pub const ALPHA: f64 = 0.3478;
/// Besiroglu et al. (2024): the data term's scale and exponent.
pub const B: f64 = 2085.43;
pub const BETA: f64 = 0.3658;

/// Bian, Yan and Venkataraman (2025): the aspect-ratio term `(1 + EPSILON * R^GAMMA)` (their
/// exponent is shared with their N and D terms). Not printed in any stored source; recovered
/// from the 62 predictions of that fit the authors' repository lists (every one reproduced
/// within its last printed digit, 5e-5).
pub const EPSILON: f64 = 0.001146;
pub const GAMMA: f64 = 0.6146;
/// The median `hidden / layers` of the 50 models of Hoffmann et al.'s Table A9 (40 to 109): the
/// aspect ratio the Besiroglu loss is taken to describe.
pub const REFERENCE_ASPECT_RATIO: f64 = 75.0;

/// The training tokens a space assumes when it says nothing: 2 T, what SmolLM2-135M was trained
/// on and a common budget for small models today (Llama-3.2-1B had 9 T, Chinchilla 70B 1.4 T).
/// It lies beyond the Chinchilla data (at most 500 B tokens), so every default estimate is
/// flagged `tokens`.
pub const DEFAULT_TOKENS: f64 = 2e12;

/// The ranges each fit was made on.
pub mod fitted {
    /// Hoffmann et al.'s runs, as Besiroglu et al. describe them: 70 M to 16 B parameters ...
    pub const PARAMETERS: (f64, f64) = (70e6, 16e9);
    /// ... on 5 B to 500 B tokens.
    pub const TOKENS: (f64, f64) = (5e9, 500e9);
    /// Bian et al. (2501.18107): aspect ratios 384/22 to 1152/3 ...
    pub const ASPECT_RATIO: (f64, f64) = (17.4, 384.0);
    /// ... on models of 78 M to 312 M parameters (embeddings included), checked against runs up
    /// to 1.67 B: the range trusted here.
    pub const ASPECT_PARAMETERS: (f64, f64) = (77e6, 1.67e9);
    /// Bian et al. (2510.18245) fitted MLP-to-attention parameter ratios between 0.5 and 5
    /// (they dropped the runs outside as outliers).
    pub const MLP_TO_ATTENTION: (f64, f64) = (0.5, 5.0);
}

/// How many tokens a model is trained on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tokens {
    /// The same number of tokens for every candidate (a data budget).
    Fixed(f64),
    /// Tokens per parameter (20 is Chinchilla's compute-optimal ratio), times the `N` of the loss.
    PerParameter(f64),
}

impl Default for Tokens {
    fn default() -> Self {
        Tokens::Fixed(DEFAULT_TOKENS)
    }
}

impl Tokens {
    /// Training tokens for a model whose loss counts `parameters`.
    pub fn for_parameters(self, parameters: f64) -> f64 {
        match self {
            Tokens::Fixed(d) => d,
            Tokens::PerParameter(k) => k * parameters,
        }
    }
}

/// The fitted ranges an estimate lies outside of; empty when every law was fitted around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Coverage(u16);

impl Coverage {
    pub const FITTED: Coverage = Coverage(0);
    /// Parameters outside the Chinchilla data.
    pub const PARAMETERS: Coverage = Coverage(1);
    /// Training tokens outside the Chinchilla data.
    pub const TOKENS: Coverage = Coverage(1 << 1);
    /// The aspect-ratio term applied outside the ratios or sizes it was fitted on.
    pub const ASPECT_RATIO: Coverage = Coverage(1 << 2);
    /// An MLP-to-attention ratio outside the range 2510.18245 fitted.
    pub const MLP_RATIO: Coverage = Coverage(1 << 3);
    /// Attention kinds no fit contained.
    pub const MQA: Coverage = Coverage(1 << 4);
    pub const MLA: Coverage = Coverage(1 << 5);
    pub const MOE: Coverage = Coverage(1 << 6);
    /// Layer kinds no fit contained (every fit's models were full-attention transformers with
    /// RoPE): sliding windows, short convolutions, linear attention, state spaces, NoPE.
    pub const WINDOW: Coverage = Coverage(1 << 7);
    pub const CONV: Coverage = Coverage(1 << 8);
    pub const DELTANET: Coverage = Coverage(1 << 9);
    pub const MAMBA2: Coverage = Coverage(1 << 10);
    pub const NOPE: Coverage = Coverage(1 << 11);

    const NAMES: [(Coverage, &'static str); 12] = [
        (Coverage::PARAMETERS, "parameters"),
        (Coverage::TOKENS, "tokens"),
        (Coverage::ASPECT_RATIO, "aspect_ratio"),
        (Coverage::MLP_RATIO, "mlp_ratio"),
        (Coverage::MQA, "mqa"),
        (Coverage::MLA, "mla"),
        (Coverage::MOE, "moe"),
        (Coverage::WINDOW, "window"),
        (Coverage::CONV, "conv"),
        (Coverage::DELTANET, "deltanet"),
        (Coverage::MAMBA2, "mamba2"),
        (Coverage::NOPE, "nope"),
    ];

    pub fn is_fitted(self) -> bool {
        self.0 == 0
    }

    pub fn contains(self, other: Coverage) -> bool {
        self.0 & other.0 == other.0
    }

    fn set_if(&mut self, flag: Coverage, condition: bool) {
        if condition {
            self.0 |= flag.0;
        }
    }
}

/// `fitted`, or what lies outside, joined by `+` (`tokens+mla`).
impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_fitted() {
            return f.write_str("fitted");
        }
        let mut first = true;
        for (flag, name) in Coverage::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str("+")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

impl Serialize for Coverage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The quality figures of one architecture.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// Parameters outside the embedding (and an untied LM head): the capacity proxy
    /// LiteTransformerSearch validated against perplexity. A MoE counts every expert here.
    pub non_embedding_params: u64,
    /// Training tokens `D` the loss assumes.
    pub tokens: f64,
    /// Predicted pre-training cross-entropy, nats per token (on the Chinchilla data's scale:
    /// compare candidates with each other, not with another corpus's loss).
    pub predicted_loss: f64,
    /// `fitted`, or the fitted ranges the estimate extrapolates beyond.
    pub estimate_range: Coverage,
}

/// Besiroglu et al.'s loss for `parameters` (embeddings included) trained on `tokens`.
pub fn chinchilla_loss(parameters: f64, tokens: f64) -> f64 {
    E + A * parameters.powf(-ALPHA) + B * tokens.powf(-BETA)
}

/// Bian et al.'s aspect-ratio factor relative to a Chinchilla-shaped model (1 at
/// [`REFERENCE_ASPECT_RATIO`], above 1 for wider and shallower models).
pub fn aspect_factor(aspect_ratio: f64) -> f64 {
    (1.0 + EPSILON * aspect_ratio.powf(GAMMA)) / (1.0 + EPSILON * REFERENCE_ASPECT_RATIO.powf(GAMMA))
}

/// The predicted loss from its three inputs: `parameters` as the fits count them, `tokens`,
/// and `hidden / layers`.
pub fn predicted_loss(parameters: f64, tokens: f64, aspect_ratio: f64) -> f64 {
    chinchilla_loss(parameters, tokens) * aspect_factor(aspect_ratio)
}

/// Estimates for one training budget, with what does not depend on the candidate worked out once.
#[derive(Debug, Clone, Copy)]
pub struct LossModel {
    tokens: Tokens,
    /// `B / D^beta` and the token flag when `D` is the same for every candidate.
    fixed_data_term: Option<(f64, bool)>,
    aspect_norm: f64,
}

impl LossModel {
    pub fn new(tokens: Tokens) -> Self {
        let fixed_data_term = match tokens {
            Tokens::Fixed(d) => Some((B * d.powf(-BETA), outside(d, fitted::TOKENS))),
            Tokens::PerParameter(_) => None,
        };
        LossModel { tokens, fixed_data_term, aspect_norm: 1.0 + EPSILON * REFERENCE_ASPECT_RATIO.powf(GAMMA) }
    }

    pub fn tokens(&self) -> Tokens {
        self.tokens
    }

    pub fn estimate(&self, arch: &Architecture) -> Estimate {
        self.estimate_of(arch, arch.parameters())
    }

    /// [`LossModel::estimate`] for an architecture of `total` parameters, already counted.
    pub fn estimate_of(&self, arch: &Architecture, total: u64) -> Estimate {
        self.estimate_with(arch, &arch.layer_groups(), total, self.aspect_factor_of(arch.hidden_size, arch.num_layers))
    }

    /// Bian et al.'s factor (see [`aspect_factor`]) of a stack `hidden` wide and `layers` deep.
    fn aspect_factor_of(&self, hidden: u32, layers: u32) -> f64 {
        let aspect = hidden as f64 / layers as f64;
        (1.0 + EPSILON * aspect.powf(GAMMA)) / self.aspect_norm
    }

    /// [`LossModel::estimate_of`] with the architecture's layer groups found and its aspect
    /// factor worked out already.
    pub fn estimate_with(&self, arch: &Architecture, groups: &LayerGroups, total: u64, factor: f64) -> Estimate {
        debug_assert_eq!(*groups, arch.layer_groups());
        let non_embedding = total - arch.embedding_params();
        // A MoE is priced at its active parameters: see the module comment.
        let n = if arch.ffn.is_moe() { arch.active_parameters() } else { total } as f64;
        let d = self.tokens.for_parameters(n);
        let (data_term, tokens_outside) = match self.fixed_data_term {
            Some(t) => t,
            None => (B * d.powf(-BETA), outside(d, fitted::TOKENS)),
        };
        let aspect = arch.hidden_size as f64 / arch.num_layers as f64;
        let loss = (E + A * n.powf(-ALPHA) + data_term) * factor;

        let mut range = Coverage::FITTED;
        range.set_if(Coverage::PARAMETERS, outside(n, fitted::PARAMETERS));
        range.set_if(Coverage::TOKENS, tokens_outside);
        range.set_if(
            Coverage::ASPECT_RATIO,
            outside(aspect, fitted::ASPECT_RATIO) || outside(n, fitted::ASPECT_PARAMETERS),
        );
        range.set_if(Coverage::MLP_RATIO, outside(mlp_to_attention(arch), fitted::MLP_TO_ATTENTION));
        match arch.attention_kind() {
            AttentionKind::Mha | AttentionKind::Gqa => {}
            AttentionKind::Mqa => range.set_if(Coverage::MQA, true),
            AttentionKind::Mla => range.set_if(Coverage::MLA, true),
        }
        range.set_if(Coverage::MOE, arch.ffn.is_moe());
        // Each kind of layer once (a hybrid's groups), not each of its layers.
        for &(layer, _) in groups.as_slice() {
            let flag = match layer.mixer {
                Mixer::Global => Coverage::FITTED,
                Mixer::Window { .. } => Coverage::WINDOW,
                Mixer::ShortConv { .. } => Coverage::CONV,
                Mixer::DeltaNet(_) => Coverage::DELTANET,
                Mixer::Mamba2(_) => Coverage::MAMBA2,
            };
            range.0 |= flag.0;
            range.set_if(Coverage::NOPE, layer.mixer.is_attention() && !layer.rope);
        }
        Estimate { non_embedding_params: non_embedding, tokens: d, predicted_loss: loss, estimate_range: range }
    }
}

/// The aspect factors of one width's depths, each worked out once: a search asks for every
/// depth of a width many times over (once per shape of that width), and `powf` was a third of
/// the estimate's cost.
#[derive(Debug, Clone, Default)]
pub struct AspectFactors {
    hidden: u32,
    /// By depth; NaN where not yet asked for.
    by_depth: Vec<f64>,
}

impl AspectFactors {
    /// The factor [`LossModel::estimate_of`] would work out for `hidden` and `layers`.
    pub fn get(&mut self, model: &LossModel, hidden: u32, layers: u32) -> f64 {
        if hidden != self.hidden {
            self.hidden = hidden;
            self.by_depth.clear();
        }
        let i = layers as usize;
        if i >= self.by_depth.len() {
            self.by_depth.resize(i + 1, f64::NAN);
        }
        if self.by_depth[i].is_nan() {
            self.by_depth[i] = model.aspect_factor_of(hidden, layers);
        }
        self.by_depth[i]
    }
}

/// The estimate for one architecture and training budget.
pub fn estimate(arch: &Architecture, tokens: Tokens) -> Estimate {
    LossModel::new(tokens).estimate(arch)
}

fn outside(x: f64, (lo, hi): (f64, f64)) -> bool {
    !(lo..=hi).contains(&x)
}

/// Parameters of one layer's FFN (a MoE layer's active experts) over its attention's, as
/// 2510.18245 defines the ratio; biases and norms left out.
fn mlp_to_attention(arch: &Architecture) -> f64 {
    let h = arch.hidden_size as f64;
    let mlp = match arch.ffn {
        Ffn::Dense { intermediate_size, gated, .. } => (if gated { 3.0 } else { 2.0 }) * h * intermediate_size as f64,
        Ffn::Moe(m) => {
            3.0 * h * m.expert_intermediate_size as f64 * (m.experts_per_token + m.num_shared_experts) as f64
        }
    };
    mlp / arch.attention_params() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kept factors are the ones worked out afresh, as widths change and come back and
    /// depths arrive in any order (a stale width's factor would be off by its aspect ratio).
    #[test]
    fn kept_aspect_factors_equal_fresh_ones() {
        let model = LossModel::new(Tokens::Fixed(2e12));
        let mut kept = AspectFactors::default();
        for &(hidden, layers) in &[(2048, 16), (2048, 3), (2048, 16), (1024, 16), (1024, 40), (2048, 16), (2048, 40)] {
            let fresh = predicted_loss(1.0, 2e12, hidden as f64 / layers as f64) / chinchilla_loss(1.0, 2e12);
            let got = kept.get(&model, hidden, layers);
            assert_eq!(got.to_bits(), model.aspect_factor_of(hidden, layers).to_bits(), "{hidden}x{layers}");
            assert!((got - fresh).abs() < 1e-12, "{hidden}x{layers}: {got} against {fresh}");
        }
    }

    #[test]
    fn coverage_names_every_range_it_leaves() {
        let mut c = Coverage::FITTED;
        assert_eq!(c.to_string(), "fitted");
        c.set_if(Coverage::TOKENS, true);
        c.set_if(Coverage::MLA, true);
        assert_eq!(c.to_string(), "tokens+mla");
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"tokens+mla\"");
    }

    #[test]
    fn the_aspect_factor_is_one_at_the_reference_and_grows_with_width() {
        assert!((aspect_factor(REFERENCE_ASPECT_RATIO) - 1.0).abs() < 1e-15);
        assert!(aspect_factor(20.0) < 1.0 && aspect_factor(200.0) > 1.0);
    }

    #[test]
    fn a_fixed_budget_and_the_same_tokens_per_parameter_agree() {
        // 20 tokens per parameter on a model of N parameters is the fixed budget 20 N.
        let a = crate::arch::load_hf_config(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/SmolLM2-135M.json"),
        )
        .unwrap();
        let n = a.parameters() as f64;
        let (x, y) = (estimate(&a, Tokens::PerParameter(20.0)), estimate(&a, Tokens::Fixed(20.0 * n)));
        assert_eq!(x.tokens, y.tokens);
        assert!((x.predicted_loss - y.predicted_loss).abs() < 1e-12);
    }
}
