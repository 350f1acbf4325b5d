//! How a weight format is stored tensor by tensor. A GGUF "q4_k_m" model is not 4.85 bits per
//! weight everywhere: llama.cpp's quantiser keeps the LM head at Q6_K, gives every third
//! `attn_v` and `ffn_down` Q6_K, and falls back to 32-wide blocks (Q5_0, Q8_0) where a row is not
//! a multiple of 256. For a 135M model that moves the bytes a decode step reads by 20-30%, so the
//! workload prices each weight matrix in the type it is really stored in.
//!
//! The rules follow llama.cpp's `llama_tensor_get_type` (src/llama-quant.cpp) for the formats
//! this tool models (F16, Q8_0, Q4_0, Q4_K_M, no importance matrix); the engine module checks
//! them against the quantiser's own output.

use super::DType;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A ggml tensor storage type: a block of `block` elements occupies `block_bytes` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TensorType {
    F32,
    F16,
    Bf16,
    /// Plain int8 weights with no block scales (not a GGUF type; for `int8` precision).
    I8,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q4K,
    Q5K,
    Q6K,
}

impl TensorType {
    pub const ALL: [TensorType; 12] = [
        TensorType::F32,
        TensorType::F16,
        TensorType::Bf16,
        TensorType::I8,
        TensorType::Q4_0,
        TensorType::Q4_1,
        TensorType::Q5_0,
        TensorType::Q5_1,
        TensorType::Q8_0,
        TensorType::Q4K,
        TensorType::Q5K,
        TensorType::Q6K,
    ];

    /// Elements per block.
    pub fn block(self) -> u64 {
        match self {
            TensorType::F32 | TensorType::F16 | TensorType::Bf16 | TensorType::I8 => 1,
            TensorType::Q4_0 | TensorType::Q4_1 | TensorType::Q5_0 | TensorType::Q5_1 | TensorType::Q8_0 => 32,
            TensorType::Q4K | TensorType::Q5K | TensorType::Q6K => 256,
        }
    }

    /// Bytes per block, scales included (ggml's `block_*` structs).
    pub fn block_bytes(self) -> u64 {
        match self {
            TensorType::F32 => 4,
            TensorType::F16 | TensorType::Bf16 => 2,
            TensorType::I8 => 1,
            // f16 scale + 32 nibbles
            TensorType::Q4_0 => 18,
            // f16 scale and min + 32 nibbles
            TensorType::Q4_1 => 20,
            // f16 scale + 32 high bits + 32 nibbles
            TensorType::Q5_0 => 22,
            TensorType::Q5_1 => 24,
            // f16 scale + 32 int8
            TensorType::Q8_0 => 34,
            // f16 d and dmin + 12 bytes of 6-bit scales + 128 bytes of nibbles
            TensorType::Q4K => 144,
            // as Q4_K plus 32 bytes of high bits
            TensorType::Q5K => 176,
            // 128 low nibbles + 64 high 2-bits + 16 int8 scales + f16 d
            TensorType::Q6K => 210,
        }
    }

    /// Bytes per element, scales included: block bytes over block elements, divided when
    /// compiled (a search asks for these a dozen times per candidate).
    pub fn bytes_per_element(self) -> f64 {
        match self {
            TensorType::F32 => 4.0,
            TensorType::F16 | TensorType::Bf16 => 2.0,
            TensorType::I8 => 1.0,
            TensorType::Q4_0 => 18.0 / 32.0,
            TensorType::Q4_1 => 20.0 / 32.0,
            TensorType::Q5_0 => 22.0 / 32.0,
            TensorType::Q5_1 => 24.0 / 32.0,
            TensorType::Q8_0 => 34.0 / 32.0,
            TensorType::Q4K => 144.0 / 256.0,
            TensorType::Q5K => 176.0 / 256.0,
            TensorType::Q6K => 210.0 / 256.0,
        }
    }

    /// Whether `row` elements fill whole blocks (blocks are powers of two: no division).
    fn fills_blocks(self, row: u64) -> bool {
        row & (self.block() - 1) == 0
    }

    /// Bytes of a tensor of `elements` whose rows are `row` long (a multiple of the block).
    pub fn bytes(self, elements: u64) -> u64 {
        elements / self.block() * self.block_bytes()
    }

    /// ggml's type id (`enum ggml_type`).
    pub fn ggml_id(self) -> Option<u32> {
        Some(match self {
            TensorType::F32 => 0,
            TensorType::F16 => 1,
            TensorType::Q4_0 => 2,
            TensorType::Q4_1 => 3,
            TensorType::Q5_0 => 6,
            TensorType::Q5_1 => 7,
            TensorType::Q8_0 => 8,
            TensorType::Q4K => 12,
            TensorType::Q5K => 13,
            TensorType::Q6K => 14,
            TensorType::Bf16 => 30,
            TensorType::I8 => return None,
        })
    }

    pub fn from_ggml_id(id: u32) -> Option<TensorType> {
        TensorType::ALL.into_iter().find(|t| t.ggml_id() == Some(id))
    }

    pub fn name(self) -> &'static str {
        match self {
            TensorType::F32 => "f32",
            TensorType::F16 => "f16",
            TensorType::Bf16 => "bf16",
            TensorType::I8 => "i8",
            TensorType::Q4_0 => "q4_0",
            TensorType::Q4_1 => "q4_1",
            TensorType::Q5_0 => "q5_0",
            TensorType::Q5_1 => "q5_1",
            TensorType::Q8_0 => "q8_0",
            TensorType::Q4K => "q4_k",
            TensorType::Q5K => "q5_k",
            TensorType::Q6K => "q6_k",
        }
    }

    /// The 32-wide type llama.cpp falls back to when a row is not a multiple of the block,
    /// and F16 when even that does not divide it (`tensor_type_fallback`).
    fn fallback(self, row: u64) -> TensorType {
        if self.fills_blocks(row) {
            return self;
        }
        let narrower = match self {
            TensorType::Q4K => TensorType::Q5_0,
            TensorType::Q5K => TensorType::Q5_1,
            TensorType::Q6K => TensorType::Q8_0,
            other => other,
        };
        if narrower.fills_blocks(row) {
            narrower
        } else {
            TensorType::F16
        }
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a weight matrix is for: the quantiser picks types by role (and by layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    TokenEmbedding,
    /// The LM head (`output.weight`).
    Output,
    AttnQ,
    AttnK,
    /// `attn_v`: llama.cpp's quantisation-sensitive tensor.
    AttnV,
    AttnOutput,
    /// MLA tensors llama.cpp files under no category (`attn_q_a`, `attn_q_b`, `attn_kv_a_mqa`,
    /// `attn_k_b`, `attn_v_b`).
    AttnOther,
    FfnGate,
    FfnUp,
    /// `ffn_down`, `ffn_down_exps`, `ffn_down_shexp`.
    FfnDown,
    /// The MoE router (`ffn_gate_inp`): never quantised, stored in f32.
    Router,
}

/// Model facts the quantiser's choices depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MixContext {
    pub layers: u32,
    /// Routed experts (0 or 1 for a dense model); 8 triggers llama.cpp's Mixtral rules.
    pub experts: u32,
    pub tied_embeddings: bool,
}

/// llama.cpp's `use_more_bits`: the first and last eighth of the layers and every third one in
/// between get more bits in Q4_K_M.
pub fn use_more_bits(layer: u32, layers: u32) -> bool {
    let (i, n) = (layer as i64, layers as i64);
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

/// How many of the layers `from..to` `use_more_bits`, in closed form (the scoring loop calls
/// this per candidate).
pub fn more_bits_layers(from: u32, to: u32, layers: u32) -> u32 {
    if from >= to {
        return 0;
    }
    let (a, b, n) = (from as i64, to as i64, layers as i64);
    let (lo, hi) = (n / 8, 7 * n / 8);
    let overlap = |x: i64, y: i64| (y.min(b) - x.max(a)).max(0);
    // Layers in [lo, hi) with (i - lo) % 3 == 2: count k = i - lo in [s, e) with k % 3 == 2.
    let (s, e) = ((a.max(lo)) - lo, (b.min(hi)) - lo);
    // k in 0..k_end with k % 3 == 2: floor(k_end / 3) of them.
    let thirds = |k: i64| if k <= 0 { 0 } else { k / 3 };
    let middle = if e > s { thirds(e) - thirds(s) } else { 0 };
    (overlap(0, lo) + overlap(hi, n) + middle) as u32
}

/// The storage type of a 2-D weight matrix whose rows are `row` elements long (ggml's `ne[0]`,
/// the product's input width) in `layer`, for a model stored in nominal format `format`.
pub fn storage_type(format: DType, role: Role, row: u64, layer: u32, ctx: MixContext) -> TensorType {
    if role == Role::Router && matches!(format, DType::F16 | DType::Bf16 | DType::Q8_0 | DType::Q4_0 | DType::Q4KM) {
        // GGUF converters keep the router in f32 whatever the file type.
        return TensorType::F32;
    }
    let base = match format {
        DType::F32 => return TensorType::F32,
        DType::F16 => return TensorType::F16,
        DType::Bf16 => return TensorType::Bf16,
        DType::Int8 => return TensorType::I8,
        DType::Q8_0 => TensorType::Q8_0,
        DType::Q4_0 => TensorType::Q4_0,
        DType::Q4KM => TensorType::Q4K,
    };
    let k_m = format == DType::Q4KM;
    let eight_experts = ctx.experts == 8;
    let chosen = match role {
        Role::Output => output_type(base, row),
        Role::TokenEmbedding if ctx.tied_embeddings => output_type(base, row),
        Role::TokenEmbedding => base,
        Role::AttnV => {
            if eight_experts {
                TensorType::Q8_0
            } else if k_m && use_more_bits(layer, ctx.layers) {
                TensorType::Q6K
            } else {
                base
            }
        }
        Role::AttnK if eight_experts => TensorType::Q8_0,
        Role::FfnDown if k_m && use_more_bits(layer, ctx.layers) => TensorType::Q6K,
        Role::AttnOutput if k_m && eight_experts => TensorType::Q5K,
        _ => base,
    };
    chosen.fallback(row)
}

/// The LM head (and a tied embedding): Q6_K unless the row does not fit the base block (Q8_0)
/// or the base is Q8_0 already.
fn output_type(base: TensorType, row: u64) -> TensorType {
    if row % base.block() != 0 || base == TensorType::Q8_0 {
        TensorType::Q8_0
    } else {
        TensorType::Q6K
    }
}

/// A role's storage over layers `from..to`: the common type, and the other type with the
/// number of layers that use it (Q4_K_M's `attn_v` and `ffn_down` alternate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSplit {
    pub common: TensorType,
    pub common_layers: u32,
    pub more: TensorType,
    pub more_layers: u32,
}

/// How a role is stored across layers `from..to` (closed form; no per-layer loop).
pub fn layer_split(format: DType, role: Role, row: u64, from: u32, to: u32, ctx: MixContext) -> LayerSplit {
    let total = to.saturating_sub(from);
    // Only Q4_K_M's types go by the layer: the others skip finding one (a search asks this per
    // matrix per candidate).
    let layer = if format == DType::Q4KM { layer_without_more_bits(ctx.layers) } else { 0 };
    let common = storage_type(format, role, row, layer, ctx);
    if !goes_by_layer(format, role, ctx) {
        return LayerSplit { common, common_layers: total, more: common, more_layers: 0 };
    }
    let more = TensorType::Q6K.fallback(row);
    let more_layers = more_bits_layers(from, to, ctx.layers);
    LayerSplit { common, common_layers: total - more_layers, more, more_layers }
}

/// Whether a matrix of `role` is stored by its layer's position: Q4_K_M keeps some layers'
/// `ffn_down` and `attn_v` wider (Mixtral-like models keep `attn_v` at Q8_0 throughout).
pub fn goes_by_layer(format: DType, role: Role, ctx: MixContext) -> bool {
    format == DType::Q4KM && (role == Role::FfnDown || (role == Role::AttnV && ctx.experts != 8)) && ctx.layers > 0
}

/// How `attn_v`-like tensors at `positions` of the quantiser's counter (which numbers `of`
/// tensors in file order) are stored: for stacks whose tensors on that counter are not one per
/// attention layer (DeltaNet layers put their `attn_qkv` on it too).
pub fn counter_split(
    format: DType,
    row: u64,
    positions: impl Iterator<Item = u32>,
    of: u32,
    ctx: MixContext,
) -> LayerSplit {
    let ctx = MixContext { layers: of, ..ctx };
    let (mut total, mut more_layers) = (0, 0);
    for i in positions {
        total += 1;
        more_layers += u32::from(use_more_bits(i, of));
    }
    let common = storage_type(format, Role::AttnV, row, layer_without_more_bits(of), ctx);
    if format != DType::Q4KM || ctx.experts == 8 {
        return LayerSplit { common, common_layers: total, more: common, more_layers: 0 };
    }
    LayerSplit { common, common_layers: total - more_layers, more: TensorType::Q6K.fallback(row), more_layers }
}

impl LayerSplit {
    /// Bytes of a matrix of `elements` per layer over the split's layers.
    pub fn bytes(&self, elements: u64) -> f64 {
        elements as f64
            * (self.common.bytes_per_element() * self.common_layers as f64
                + self.more.bytes_per_element() * self.more_layers as f64)
    }

    /// Bytes per element averaged over the split's layers.
    pub fn mean_bytes_per_element(&self) -> f64 {
        let (c, m) = (self.common_layers as f64, self.more_layers as f64);
        if c + m == 0.0 {
            self.common.bytes_per_element()
        } else {
            (self.common.bytes_per_element() * c + self.more.bytes_per_element() * m) / (c + m)
        }
    }
}

/// A layer index that does not get more bits (for the common type), or 0 when every layer does.
fn layer_without_more_bits(layers: u32) -> u32 {
    // Every layer below n/8 uses more bits, so n/8 is the first candidate (the scorer asks
    // for this per product per candidate: no loop when it answers).
    let first = layers / 8;
    if first < layers && !use_more_bits(first, layers) {
        return first;
    }
    (0..layers).find(|&i| !use_more_bits(i, layers)).unwrap_or(0).min(layers.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_per_element_is_block_bytes_over_block_elements() {
        for t in TensorType::ALL {
            assert_eq!(t.bytes_per_element(), t.block_bytes() as f64 / t.block() as f64, "{t}");
            assert!(t.block().is_power_of_two(), "{t}");
        }
    }

    #[test]
    fn block_sizes_match_ggml() {
        // ggml-common.h: block_q4_K = 2 f16 + K_SCALE_SIZE (12) + QK_K/2 (128) = 144 bytes / 256.
        assert_eq!(TensorType::Q4K.bytes_per_element() * 256.0, 144.0);
        // block_q6_K = QK_K/2 (128) + QK_K/4 (64) + QK_K/16 (16) + f16 (2) = 210 bytes / 256.
        assert_eq!(TensorType::Q6K.bytes_per_element() * 256.0, 210.0);
        // block_q5_0 = f16 + 4 bytes of high bits + 16 bytes of nibbles = 22 / 32.
        assert_eq!(TensorType::Q5_0.bytes_per_element() * 32.0, 22.0);
    }

    #[test]
    fn the_first_layer_without_more_bits_is_found_without_a_loop() {
        for layers in 0..300 {
            let looped = (0..layers).find(|&i| !use_more_bits(i, layers)).unwrap_or(0).min(layers.saturating_sub(1));
            assert_eq!(layer_without_more_bits(layers), looped, "{layers}");
        }
    }

    #[test]
    fn closed_form_more_bits_count_matches_the_rule() {
        for layers in 1..80 {
            for from in 0..=layers {
                for to in from..=layers {
                    let want = (from..to).filter(|&i| use_more_bits(i, layers)).count() as u32;
                    assert_eq!(more_bits_layers(from, to, layers), want, "{from}..{to} of {layers}");
                }
            }
        }
    }

    #[test]
    fn q4_k_m_of_a_smollm2_135m_shape() {
        // SmolLM2-135M: hidden 576 (not a multiple of 256), FFN 1536, 30 layers, tied embeddings.
        let ctx = MixContext { layers: 30, experts: 0, tied_embeddings: true };
        let f = DType::Q4KM;
        // Tied embedding = output: Q6_K wanted, but 576 % 256 != 0 and the base block (256)
        // does not fit either, so Q8_0.
        assert_eq!(storage_type(f, Role::TokenEmbedding, 576, 0, ctx), TensorType::Q8_0);
        // attn_q rows are 576 wide: Q4_K falls back to Q5_0.
        assert_eq!(storage_type(f, Role::AttnQ, 576, 5, ctx), TensorType::Q5_0);
        // ffn_down rows are 1536 wide: Q4_K, or Q6_K in the layers that use more bits
        // (30/8 = 3: layers 0-2, 27-29, and 3 + 2, 3 + 5, ...).
        assert_eq!(storage_type(f, Role::FfnDown, 1536, 10, ctx), TensorType::Q4K);
        assert_eq!(storage_type(f, Role::FfnDown, 1536, 0, ctx), TensorType::Q6K);
        assert_eq!(storage_type(f, Role::FfnDown, 1536, 5, ctx), TensorType::Q6K);
        // 0,1,2 + 5,8,...,26 (8 layers) + 27,28,29 = 14 layers with more bits.
        assert_eq!(more_bits_layers(0, 30, 30), 14);
        let split = layer_split(f, Role::FfnDown, 1536, 0, 30, ctx);
        assert_eq!(
            (split.common, split.common_layers, split.more, split.more_layers),
            (TensorType::Q4K, 16, TensorType::Q6K, 14)
        );
    }

    #[test]
    fn q4_0_keeps_the_head_at_q6_k_and_q8_0_stays_q8_0() {
        let ctx = MixContext { layers: 16, experts: 0, tied_embeddings: false };
        assert_eq!(storage_type(DType::Q4_0, Role::Output, 2048, 0, ctx), TensorType::Q6K);
        assert_eq!(storage_type(DType::Q4_0, Role::TokenEmbedding, 2048, 0, ctx), TensorType::Q4_0);
        assert_eq!(storage_type(DType::Q8_0, Role::Output, 2048, 0, ctx), TensorType::Q8_0);
        assert_eq!(storage_type(DType::Q4_0, Role::Router, 2048, 0, ctx), TensorType::F32);
        assert_eq!(storage_type(DType::F16, Role::Output, 2048, 0, ctx), TensorType::F16);
    }
}
