//! Layer kinds: what mixes tokens in each layer (global or windowed attention, a gated short
//! convolution, Gated DeltaNet or Mamba2), whether it rotates positions, and whether an FFN
//! follows. A uniform model (every layer global attention with RoPE and an FFN) stores no list.
//!
//! Sizes follow `shared/notes/hybrid-layers.md`: recurrent and convolution states are f32 (as
//! llama.cpp keeps them), counted per sequence; windowed layers cache at most `window` tokens.

use super::{Activation, Architecture, Family, Ffn};
use serde::{Deserialize, Serialize};

/// Gated DeltaNet (Qwen3-Next, Qwen3.5): a causal depthwise convolution over q, k, v, then a
/// delta-rule recurrence per value head on a `key_head_dim x value_head_dim` state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeltaNet {
    pub key_heads: u32,
    /// A multiple of `key_heads` (queries and keys are repeated to the value heads).
    pub value_heads: u32,
    pub key_head_dim: u32,
    pub value_head_dim: u32,
    pub conv_kernel: u32,
}

impl DeltaNet {
    pub fn key_dim(&self) -> u64 {
        self.key_heads as u64 * self.key_head_dim as u64
    }

    pub fn value_dim(&self) -> u64 {
        self.value_heads as u64 * self.value_head_dim as u64
    }

    /// Channels of the convolution: queries, keys and values.
    pub fn conv_dim(&self) -> u64 {
        2 * self.key_dim() + self.value_dim()
    }

    /// Outputs of the input projection: q, k, v, the output gate z, and b and a per value head.
    pub fn in_proj_dim(&self) -> u64 {
        self.conv_dim() + self.value_dim() + 2 * self.value_heads as u64
    }

    /// Elements of the recurrent state (one `d_k x d_v` matrix per value head).
    pub fn state_elements(&self) -> u64 {
        self.value_heads as u64 * self.key_head_dim as u64 * self.value_head_dim as u64
    }

    /// in_proj (qkv, z, b, a), conv kernel (no bias), A_log and dt_bias per value head, the
    /// gated output norm (one `d_v` weight shared by the heads), out_proj.
    pub fn params(&self, hidden: u64) -> u64 {
        hidden * self.in_proj_dim()
            + self.conv_kernel as u64 * self.conv_dim()
            + 2 * self.value_heads as u64
            + self.value_head_dim as u64
            + self.value_dim() * hidden
    }
}

/// Mamba2 (Falcon-H1, Granite 4.0-H, Nemotron-H): `heads` SSM heads of `head_dim` channels
/// (inner width `heads x head_dim`), a state of `state_size` per channel, B and C shared by
/// `groups` groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Mamba2 {
    pub heads: u32,
    pub head_dim: u32,
    pub state_size: u32,
    pub groups: u32,
    pub conv_kernel: u32,
    pub conv_bias: bool,
}

impl Mamba2 {
    pub fn inner(&self) -> u64 {
        self.heads as u64 * self.head_dim as u64
    }

    /// Channels of the convolution: x, B and C.
    pub fn conv_dim(&self) -> u64 {
        self.inner() + 2 * self.groups as u64 * self.state_size as u64
    }

    /// Outputs of the input projection: z, x, B, C and dt per head.
    pub fn in_proj_dim(&self) -> u64 {
        self.inner() + self.conv_dim() + self.heads as u64
    }

    pub fn state_elements(&self) -> u64 {
        self.inner() * self.state_size as u64
    }

    /// in_proj, conv kernel (and bias), dt_bias, A_log and D per head, the gated norm over the
    /// inner width, out_proj.
    pub fn params(&self, hidden: u64) -> u64 {
        let conv = self.conv_kernel as u64 * self.conv_dim() + if self.conv_bias { self.conv_dim() } else { 0 };
        hidden * self.in_proj_dim() + conv + 3 * self.heads as u64 + self.inner() + self.inner() * hidden
    }
}

/// What mixes tokens in a layer. Attention layers use the model's `attention`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mixer {
    /// The model's attention over every earlier token.
    Global,
    /// The model's attention over the last `window` tokens, the query's own included.
    Window {
        window: u32,
    },
    /// LFM2's gated short convolution: in_proj (hidden to 3 x hidden: B, C, x), a causal
    /// depthwise convolution of `kernel` taps over B x x, out_proj of C x y.
    ShortConv {
        kernel: u32,
    },
    DeltaNet(DeltaNet),
    Mamba2(Mamba2),
}

impl Mixer {
    /// Attends over cached keys and values (global or windowed).
    pub fn is_attention(&self) -> bool {
        matches!(self, Mixer::Global | Mixer::Window { .. })
    }

    /// The window of a windowed attention layer.
    pub fn window(&self) -> Option<u32> {
        match *self {
            Mixer::Window { window } => Some(window),
            _ => None,
        }
    }

    /// The label reports and search spaces use: global, window, conv, deltanet, mamba2.
    pub fn label(&self) -> &'static str {
        match self {
            Mixer::Global => "global",
            Mixer::Window { .. } => "window",
            Mixer::ShortConv { .. } => "conv",
            Mixer::DeltaNet(_) => "deltanet",
            Mixer::Mamba2(_) => "mamba2",
        }
    }

    /// Parameters of a convolution or recurrent mixer (attention's are the model's).
    pub fn recurrent_params(&self, hidden: u64) -> u64 {
        match *self {
            Mixer::Global | Mixer::Window { .. } => 0,
            // in_proj 3d^2 + out_proj d^2 + depthwise kernel (no bias, as LFM2 ships).
            Mixer::ShortConv { kernel } => 4 * hidden * hidden + kernel as u64 * hidden,
            Mixer::DeltaNet(g) => g.params(hidden),
            Mixer::Mamba2(m) => m.params(hidden),
        }
    }

    /// f32 state elements one sequence keeps for this layer (convolution tail and recurrent
    /// state); 0 for attention, whose cache grows with the context instead.
    pub fn state_elements(&self, hidden: u64) -> u64 {
        match *self {
            Mixer::Global | Mixer::Window { .. } => 0,
            Mixer::ShortConv { kernel } => (kernel as u64 - 1) * hidden,
            Mixer::DeltaNet(g) => g.state_elements() + (g.conv_kernel as u64 - 1) * g.conv_dim(),
            Mixer::Mamba2(m) => m.state_elements() + (m.conv_kernel as u64 - 1) * m.conv_dim(),
        }
    }
}

/// One layer: its mixer, whether its attention rotates positions (SmolLM3's NoPE layers do
/// not), and whether an FFN follows the mixer (pure Mamba2 stacks have none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Layer {
    pub mixer: Mixer,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub rope: bool,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub ffn: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl Layer {
    /// Global attention with RoPE and an FFN: every layer of a uniform model.
    pub const GLOBAL: Layer = Layer { mixer: Mixer::Global, rope: true, ffn: true };

    pub fn of(mixer: Mixer) -> Layer {
        Layer { mixer, rope: true, ffn: true }
    }
}

/// Distinct layers of a stack with how many times each occurs, in order of first appearance.
/// Costs are the same wherever a layer sits, so they are priced once per group.
#[derive(Debug, Clone, PartialEq)]
pub enum LayerGroups {
    /// Every layer global attention with RoPE and an FFN (no allocation).
    Uniform([(Layer, u32); 1]),
    Mixed(Vec<(Layer, u32)>),
}

impl LayerGroups {
    pub fn of(layers: &[Layer], num_layers: u32) -> LayerGroups {
        if layers.is_empty() {
            return LayerGroups::Uniform([(Layer::GLOBAL, num_layers)]);
        }
        let mut groups: Vec<(Layer, u32)> = Vec::with_capacity(4);
        // Layers come in runs: the current run's group first (a search groups millions of
        // stacks, and a search through every group per layer mispredicts at every layer).
        let mut current = 0;
        for l in layers {
            if let Some((g, n)) = groups.get_mut(current) {
                if g == l {
                    *n += 1;
                    continue;
                }
            }
            current = match groups.iter().position(|(g, _)| g == l) {
                Some(i) => i,
                None => {
                    groups.push((*l, 0));
                    groups.len() - 1
                }
            };
            groups[current].1 += 1;
        }
        LayerGroups::Mixed(groups)
    }

    /// Layers that attend (global or windowed).
    pub fn attention_layers(&self) -> u32 {
        self.as_slice().iter().filter(|(l, _)| l.mixer.is_attention()).map(|(_, n)| n).sum()
    }

    /// Layers with an FFN.
    pub fn ffn_layers(&self) -> u32 {
        self.as_slice().iter().filter(|(l, _)| l.ffn).map(|(_, n)| n).sum()
    }

    pub fn as_slice(&self) -> &[(Layer, u32)] {
        match self {
            LayerGroups::Uniform(g) => g,
            LayerGroups::Mixed(g) => g,
        }
    }
}

impl Architecture {
    /// `base` (global grouped attention, dense FFN) with one layer in `every` global attention
    /// (layers `first_global`, `first_global + every`, ...) and the others `mixer` layers, in the
    /// family that publishes such stacks, with that family's conventions: Gemma 3 (windows:
    /// GeGLU, four norms), LFM2 (convolutions), Qwen3.5 (DeltaNet: gated attention), Granite
    /// 4.0-H (Mamba2: attention without RoPE or q/k norms); q/k norms on the attention layers
    /// otherwise.
    pub fn hybrid(mut base: Architecture, mixer: Mixer, every: u32, first_global: u32) -> Architecture {
        base.make_hybrid(mixer, (every, first_global));
        base
    }

    /// Makes this model [`Architecture::hybrid`] in place, its layers written into the buffer
    /// `self.layers` holds (a search reuses one for every candidate it builds, and builds them
    /// without moving them).
    pub fn make_hybrid(&mut self, mixer: Mixer, (every, first_global): (u32, u32)) {
        self.family = match mixer {
            Mixer::Global => return,
            Mixer::Window { .. } => Family::Gemma3Text,
            Mixer::ShortConv { .. } => Family::Lfm2,
            Mixer::DeltaNet(_) => Family::Qwen35Text,
            Mixer::Mamba2(_) => Family::GraniteMoeHybrid,
        };
        // Granite 4.0-H's attention layers use no positional encoding (the Mamba2 layers order
        // the tokens).
        let rope = !matches!(mixer, Mixer::Mamba2(_));
        // `rope` only means something for attention layers; others keep the default.
        let (global, other) = (
            Layer { mixer: Mixer::Global, rope, ffn: true },
            Layer { mixer, rope: rope || !mixer.is_attention(), ffn: true },
        );
        self.layers.clear();
        // Counted round the period, not found by a division per layer (a search builds every
        // candidate's layers).
        let mut phase = 0;
        self.layers.extend((0..self.num_layers).map(|_| {
            let layer = if phase == first_global { global } else { other };
            phase = if phase + 1 == every { 0 } else { phase + 1 };
            layer
        }));
        self.qk_norm = true;
        match mixer {
            Mixer::Window { .. } => {
                // Gemma 3: GeGLU, and norms after attention and after the FFN as well.
                self.norms_per_layer = 4;
                if let Ffn::Dense { activation, .. } = &mut self.ffn {
                    *activation = Activation::GeluTanh;
                }
            }
            Mixer::DeltaNet(_) => self.attn_output_gate = true,
            Mixer::Mamba2(_) => self.qk_norm = false,
            _ => {}
        }
    }
}
