//! Operators that run for an architecture, a batch and a phase, each with its FLOPs and the
//! bytes it moves (weights, activations, KV cache), for a given execution plan.
//!
//! Every formula is written once. A phase is described by a few `Linear` quantities of the
//! decode context `n` (keys attended by the newest token): prefill uses only their constant
//! parts, decode their slopes, so a whole decode run can be summed in closed form.

mod linear;

pub use linear::Linear;

use crate::arch::{Activation, Architecture, Attention, DeltaNet, Ffn, Layer, LayerGroups, Mamba2, Mixer, Mla, Moe};
use crate::dtype::storage::{goes_by_layer, layer_split, LayerSplit, MixContext, Role};
use crate::dtype::{DType, Precisions, TensorType};
use serde::{Deserialize, Serialize};

/// Bytes per element of recurrent and convolution states and of convolution kernels: f32, as
/// llama.cpp keeps them whatever the weight and KV formats.
pub const STATE_BYTES: f64 = 4.0;

/// What kind of kernel an operator is; calibration measures efficiency per class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpClass {
    /// Activations times a weight matrix (GEMV in decode, GEMM in prefill).
    Matmul,
    /// Per-head products without weights, or with small per-head weights (unfused attention,
    /// MLA absorption).
    BatchedMatmul,
    /// Fused attention over a prompt: scores and softmax stay on chip.
    Attention,
    /// Fused attention of one new token per sequence against the KV cache (decode): a
    /// different kernel from prefill's in every engine. Profiles without its own table use
    /// `Attention`'s.
    DecodeAttention,
    Softmax,
    Norm,
    Rope,
    Elementwise,
    /// Embedding rows looked up by token id.
    Gather,
    /// Appending keys and values to the cache.
    KvWrite,
    /// A recurrence run token by token over a state (Gated DeltaNet, Mamba2): its FLOPs run at
    /// the scan's own efficiency, not at a product's. Profiles without its own table use
    /// `Elementwise`'s.
    Scan,
}

impl OpClass {
    pub const ALL: [OpClass; 11] = [
        OpClass::Matmul,
        OpClass::BatchedMatmul,
        OpClass::Attention,
        OpClass::DecodeAttention,
        OpClass::Softmax,
        OpClass::Norm,
        OpClass::Rope,
        OpClass::Elementwise,
        OpClass::Gather,
        OpClass::KvWrite,
        OpClass::Scan,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OpClass::Matmul => "matmul",
            OpClass::BatchedMatmul => "batched_matmul",
            OpClass::Attention => "attention",
            OpClass::DecodeAttention => "decode_attention",
            OpClass::Softmax => "softmax",
            OpClass::Norm => "norm",
            OpClass::Rope => "rope",
            OpClass::Elementwise => "elementwise",
            OpClass::Gather => "gather",
            OpClass::KvWrite => "kv_write",
            OpClass::Scan => "scan",
        }
    }
}

/// One kernel, repeated `count` times per forward pass (once per layer that has it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Operator {
    pub name: &'static str,
    pub class: OpClass,
    /// Launches per forward pass (layers that run it).
    pub count: u32,
    /// The format the arithmetic runs in.
    pub compute: DType,
    /// How the operator's weight matrix is stored (products only): engines run a different
    /// kernel per storage type.
    pub weight_type: Option<TensorType>,
    /// Rows of the product (tokens, or cached tokens being expanded); for efficiency look-ups.
    pub rows: Linear,
    pub flops: Linear,
    pub weight_bytes: Linear,
    pub act_read_bytes: Linear,
    pub act_write_bytes: Linear,
    pub kv_read_bytes: Linear,
    pub kv_write_bytes: Linear,
    /// Attention scores computed (query-key pairs times heads), for engines that pay per score.
    pub scores: Linear,
    /// Attention's value head size (0 for other operators): CPU kernels accumulate each
    /// score's value row in vectors of a fixed width, so the cost per score steps with it.
    pub value_head: u32,
    /// Attention's key head size (0 for other operators): a score's dot product runs over it
    /// in the same vectors.
    pub key_head: u32,
    /// A windowed layer's window (0: none): its context-dependent terms stop growing once the
    /// context reaches it.
    pub window: u32,
    /// Routed experts one launch multiplies, each a product of its own (0 for other
    /// operators): engines pay a fixed cost per expert (gathering its rows, a kernel's set-up).
    pub experts: f64,
}

impl Operator {
    /// All bytes this operator moves to and from main memory.
    pub fn bytes(&self) -> Linear {
        self.weight_bytes + self.act_read_bytes + self.act_write_bytes + self.kv_read_bytes + self.kv_write_bytes
    }

    /// The operator at contexts past its window: every term frozen at the window.
    fn saturated(&self) -> Operator {
        let w = self.window as f64;
        let freeze = |l: Linear| Linear::constant(l.at(w));
        Operator {
            rows: freeze(self.rows),
            flops: freeze(self.flops),
            weight_bytes: freeze(self.weight_bytes),
            act_read_bytes: freeze(self.act_read_bytes),
            act_write_bytes: freeze(self.act_write_bytes),
            kv_read_bytes: freeze(self.kv_read_bytes),
            kv_write_bytes: freeze(self.kv_write_bytes),
            scores: freeze(self.scores),
            ..*self
        }
    }

    /// Contexts `first..=last` split where a window saturates: up to two (operator, first,
    /// last) pieces, each linear in the context, so sums over them stay closed-form and exact.
    pub fn pieces(&self, first: f64, last: f64) -> ([(Operator, f64, f64); 2], usize) {
        let w = self.window as f64;
        if self.window == 0 || last <= w {
            ([(*self, first, last); 2], 1)
        } else if first > w {
            ([(self.saturated(), first, last); 2], 1)
        } else {
            ([(*self, first, w), (self.saturated(), w + 1.0, last)], 2)
        }
    }

    /// The context this operator really sees at `n` (its window, once the context passes it).
    pub fn context(&self, n: f64) -> f64 {
        if self.window == 0 {
            n
        } else {
            n.min(self.window as f64)
        }
    }
}

/// How MLA attention is executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MlaForm {
    /// Expand the cached latent to per-head keys and values, then attend as MHA.
    Materialised,
    /// Fold the up-projections into the query and output sides; attend in latent space.
    Absorbed,
}

/// How attention scores are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttentionForm {
    /// One kernel (FlashAttention-style): scores never reach main memory.
    Fused,
    /// Scores, softmax and the weighted sum as three kernels through memory.
    Unfused,
}

/// How norms and activations run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElementwiseForm {
    /// Each its own kernel through memory, as eager PyTorch runs them.
    Separate,
    /// A norm feeding a product runs in the product's prologue; a gated FFN's activation and
    /// gate multiply run in the epilogue of one kernel computing both of its products.
    Fused,
}

/// An execution plan: the choices that change cost but not the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Plan {
    pub mla: MlaForm,
    pub attention: AttentionForm,
    pub elementwise: ElementwiseForm,
}

impl Plan {
    pub const NAIVE: Plan =
        Plan { mla: MlaForm::Materialised, attention: AttentionForm::Unfused, elementwise: ElementwiseForm::Separate };

    /// The same plan with norms and activations run as `form`.
    pub fn with_elementwise(self, form: ElementwiseForm) -> Plan {
        Plan { elementwise: form, ..self }
    }

    /// Every plan worth considering for an architecture (MLA forms only matter for MLA), the
    /// fused-attention ones first (an evaluator may take just that prefix).
    pub fn candidates(arch: &Architecture) -> &'static [Plan] {
        // The attention core's alternatives; norm and activation fusion is decided per device
        // (see `plan::elementwise_form`) and applied on top.
        const S: ElementwiseForm = ElementwiseForm::Separate;
        const GROUPED: [Plan; 2] = [
            Plan { mla: MlaForm::Materialised, attention: AttentionForm::Fused, elementwise: S },
            Plan { mla: MlaForm::Materialised, attention: AttentionForm::Unfused, elementwise: S },
        ];
        const LATENT: [Plan; 4] = [
            Plan { mla: MlaForm::Materialised, attention: AttentionForm::Fused, elementwise: S },
            Plan { mla: MlaForm::Absorbed, attention: AttentionForm::Fused, elementwise: S },
            Plan { mla: MlaForm::Materialised, attention: AttentionForm::Unfused, elementwise: S },
            Plan { mla: MlaForm::Absorbed, attention: AttentionForm::Unfused, elementwise: S },
        ];
        match arch.attention {
            Attention::Grouped { .. } => &GROUPED,
            Attention::Latent(_) => &LATENT,
        }
    }

    pub fn label(&self, arch: &Architecture) -> String {
        let attn = match (self.attention, self.elementwise) {
            (AttentionForm::Fused, ElementwiseForm::Separate) => "fused",
            (AttentionForm::Unfused, ElementwiseForm::Separate) => "unfused",
            (AttentionForm::Fused, ElementwiseForm::Fused) => "fused+fused-norm-act",
            (AttentionForm::Unfused, ElementwiseForm::Fused) => "unfused+fused-norm-act",
        };
        match arch.attention {
            Attention::Latent(_) => {
                let mla = match self.mla {
                    MlaForm::Materialised => "materialised",
                    MlaForm::Absorbed => "absorbed",
                };
                format!("mla-{mla}+{attn}")
            }
            Attention::Grouped { .. } => attn.to_string(),
        }
    }
}

/// Which operators to build: the plan changes only the attention core, so an evaluator can
/// price everything else once and each candidate plan's core separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    All,
    /// Operators every plan runs the same way.
    Shared,
    /// The attention core, whose operators depend on the plan.
    PlanDependent,
}

/// Prefill of `prompt` tokens per sequence, or decode steps (cost linear in the context).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "phase")]
pub enum Phase {
    Prefill { prompt: u32 },
    Decode,
}

/// What a run asks of the model besides its architecture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunSettings {
    pub batch: u32,
    pub precisions: Precisions,
    /// Compute logits for every prompt token in prefill (scoring), not just the last.
    pub logits_for_all_prompt_tokens: bool,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings { batch: 1, precisions: Precisions::default(), logits_for_all_prompt_tokens: false }
    }
}

/// Quantities that describe one forward pass, as linear functions of the context `n`.
#[derive(Clone, Copy)]
struct Pass {
    decode: bool,
    batch: f64,
    /// Prompt tokens per sequence (prefill; 0 in decode).
    prompt: f64,
    /// New tokens in this pass, over the batch.
    tokens: f64,
    /// Query-key pairs per sequence per head that a causal kernel computes.
    causal_pairs: Linear,
    /// Score-matrix elements per sequence per head that an unfused kernel stores (dense, masked).
    score_elements: Linear,
    /// Keys and values attended per sequence.
    kv_tokens: Linear,
    a: f64,
    /// The nominal weight format; each matrix is priced in the type it is stored in.
    weights: DType,
    kv: f64,
    compute: DType,
}

impl Pass {
    fn new(phase: Phase, s: &RunSettings) -> Pass {
        let batch = s.batch as f64;
        let p = &s.precisions;
        let prompt = match phase {
            Phase::Prefill { prompt } => prompt as f64,
            Phase::Decode => 0.0,
        };
        let common = |decode, tokens, pairs, scores, kv_tokens| Pass {
            decode,
            batch,
            prompt,
            tokens,
            causal_pairs: pairs,
            score_elements: scores,
            kv_tokens,
            a: p.activations.bytes(),
            weights: p.weights,
            kv: p.kv_cache.bytes(),
            compute: p.compute(),
        };
        match phase {
            Phase::Prefill { prompt } => {
                let n = prompt as f64;
                common(
                    false,
                    batch * n,
                    Linear::constant(n * (n + 1.0) / 2.0),
                    Linear::constant(n * n),
                    Linear::constant(n),
                )
            }
            Phase::Decode => common(true, batch, Linear::context(), Linear::context(), Linear::context()),
        }
    }

    /// Bytes per element of keys and values as attention reads them: the cache in decode, the
    /// freshly projected activations in prefill.
    fn kv_source(&self) -> f64 {
        if self.decode {
            self.kv
        } else {
            self.a
        }
    }
}

/// Keys and values attention reads per attended token.
struct KvStream {
    elements: f64,
    bytes_per_element: f64,
    /// Read from the KV cache (decode) rather than from fresh activations.
    from_cache: bool,
}

/// Builds operators; `count` is how many layers run the ones it adds.
struct Builder<'a> {
    ops: &'a mut Vec<Operator>,
    pass: Pass,
    count: u32,
    part: Part,
    /// Norms and activations fuse into the neighbouring products.
    fuse: bool,
    /// A fused norm's width, waiting for the product whose prologue computes it.
    pending_norm: Option<f64>,
    /// Layers `from..to` the operators being added run in (for per-layer storage types).
    layers: (u32, u32),
    mix: MixContext,
    /// The window of the attention being added (0: global).
    window: u32,
    /// How the layers being built store their `attn_v`-like tensor when that goes by layer
    /// position (`Architecture::attn_v_splits`), and which side of the counter they are.
    attn_v_split: Option<(LayerSplit, CounterSide)>,
    /// Where each layer group's operators start, then the FFNs' (see [`layers_marked_into`]).
    marks: Option<&'a mut Vec<usize>>,
    /// The products whose weights go by layer position, where recorded (see [`DepthBound`]).
    depth_bound: Option<&'a mut DepthBound>,
}

/// The products of a stack whose weights' bytes go by the count of layers they are numbered
/// over (Q4_K_M stores some layers' `attn_v` and `ffn_down` wider), recorded as the stack is
/// built: a search sets them for each depth or layer pattern of a shape without building the
/// stack again (see [`DepthBoundProduct::at`]).
#[derive(Debug, Clone, Default)]
pub struct DepthBound {
    pub products: Vec<DepthBoundProduct>,
    /// False where the depth reached an operator some other way (a product whose bytes mix
    /// several matrices, or a stack not over all the layers): then it must be built again.
    pub exact: bool,
}

/// Which layers' tensors on the quantiser's shared `attn_v` counter a product belongs to, in a
/// Q4_K_M stack with DeltaNet layers (see `Architecture::attn_v_splits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterSide {
    /// The attention layers' `attn_v`.
    Attention,
    /// The DeltaNet layers' `attn_qkv`.
    DeltaNet,
}

/// How the layer position reaches a product's bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Numbering {
    /// Its matrix is numbered over the layers that have it (see
    /// [`DepthBoundProduct::numbered_over`]).
    Layers,
    /// Its matrix sits on the shared `attn_v` counter, on this side; a DeltaNet `in_proj`
    /// with its mix of columns.
    Counter(CounterSide, Option<InProjMix>),
}

/// A Q4_K_M DeltaNet `in_proj`: its q, k and v columns (`attn_qkv`) stored by layer position,
/// its gate columns as the layer's other tensors.
#[derive(Debug, Clone, Copy, PartialEq)]
struct InProjMix {
    qkv_columns: f64,
    columns: f64,
    /// The gate columns' bytes per element.
    gate_bytes_per_element: f64,
}

impl InProjMix {
    /// Bytes per element over all its columns, with `qkv` bytes per element for q, k and v.
    fn bytes_per_element(&self, qkv: f64) -> f64 {
        (self.qkv_columns * qkv + (self.columns - self.qkv_columns) * self.gate_bytes_per_element) / self.columns
    }
}

/// One product of a [`DepthBound`]: its matrix, and the bytes added to the matrix's own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DepthBoundProduct {
    /// Its index among the stack's operators.
    pub op: usize,
    format: DType,
    role: Role,
    row: u64,
    mix: MixContext,
    numbering: Numbering,
    /// The matrix's elements (`k x n`), its bias's bytes and a fused norm's.
    elements: f64,
    bias_bytes: f64,
    norm_bytes: f64,
}

impl DepthBoundProduct {
    /// The layers its matrix is numbered over: `attn_v` over the attention layers, `ffn_down`
    /// over those with an FFN.
    pub fn numbered_over(&self, groups: &LayerGroups) -> u32 {
        match self.role {
            Role::AttnV => groups.attention_layers(),
            _ => groups.ffn_layers(),
        }
    }

    /// The product moved to place `op` among its operators.
    pub fn at_index(self, op: usize) -> DepthBoundProduct {
        DepthBoundProduct { op, ..self }
    }

    /// Its weight bytes and storage type where its matrix is numbered over `layers` layers (a
    /// uniform stack's depth, or [`DepthBoundProduct::numbered_over`]): what the builder sets
    /// there, with the same arithmetic.
    pub fn at(&self, layers: u32) -> (Linear, TensorType) {
        let mix = MixContext { layers, ..self.mix };
        let split = layer_split(self.format, self.role, self.row, 0, layers, mix);
        self.stored_as(&split)
    }

    /// Whether its matrix is an `attn_v`-like one (DeltaNet's `attn_qkv` included).
    pub fn is_attn_v(&self) -> bool {
        self.role == Role::AttnV
    }

    /// The side of the shared `attn_v` counter its matrix sits on, if it does.
    pub fn counter_side(&self) -> Option<CounterSide> {
        match self.numbering {
            Numbering::Layers => None,
            Numbering::Counter(side, _) => Some(side),
        }
    }

    /// Its weight bytes and storage type where its layers store the matrix as `split` says
    /// (for a product on the shared counter, its side's split): what the builder sets, with
    /// the same arithmetic.
    pub fn stored_as(&self, split: &LayerSplit) -> (Linear, TensorType) {
        let w = match self.numbering {
            Numbering::Counter(_, Some(mix)) => mix.bytes_per_element(split.mean_bytes_per_element()),
            _ => split.mean_bytes_per_element(),
        };
        (Linear::constant(self.elements * w + self.bias_bytes + self.norm_bytes), split.common)
    }
}

impl Builder<'_> {
    /// Records that the operators added next belong to the next layer group (or the FFNs).
    #[inline]
    fn mark(&mut self) {
        if let Some(marks) = self.marks.as_deref_mut() {
            marks.push(self.ops.len());
        }
    }

    fn op(&mut self, name: &'static str, class: OpClass, flops: Linear) -> &mut Operator {
        let op = Operator {
            name,
            class,
            count: self.count,
            compute: self.pass.compute,
            weight_type: None,
            rows: Linear::constant(self.pass.tokens),
            flops,
            weight_bytes: Linear::ZERO,
            act_read_bytes: Linear::ZERO,
            act_write_bytes: Linear::ZERO,
            kv_read_bytes: Linear::ZERO,
            kv_write_bytes: Linear::ZERO,
            scores: Linear::ZERO,
            value_head: 0,
            key_head: 0,
            window: self.window,
            experts: 0.0,
        };
        self.ops.push(op);
        self.ops.last_mut().unwrap()
    }

    /// Bytes per element of a weight matrix of `role` with rows of `row` elements, averaged
    /// over the layers being built (Q4_K_M stores some layers' `attn_v` and `ffn_down` wider),
    /// and the type most of those layers store it in.
    fn stored(&mut self, role: Role, row: f64) -> (f64, TensorType) {
        let s = self.split(role, row);
        if let Some(bound) = self.depth_bound.as_deref_mut() {
            // Bytes that go by the depth, mixed where they cannot be set again alone.
            bound.exact &= !goes_by_layer(self.pass.weights, role, self.mix);
        }
        (s.mean_bytes_per_element(), s.common)
    }

    /// How the layers being built store a matrix of `role` with rows of `row` elements.
    fn split(&self, role: Role, row: f64) -> LayerSplit {
        match self.attn_v_split {
            Some((split, _)) if role == Role::AttnV => split,
            _ => layer_split(self.pass.weights, role, row as u64, self.layers.0, self.layers.1, self.mix),
        }
    }

    /// `rows x k` activations times a `k x n` weight matrix (plus an optional bias).
    fn matmul(&mut self, name: &'static str, role: Role, k: f64, n: f64, bias: bool) {
        let split = self.split(role, k);
        let at = self.ops.len();
        let extra = self.matmul_stored(name, k, n, bias, (split.mean_bytes_per_element(), split.common));
        let numbering = match self.attn_v_split {
            Some((_, side)) if role == Role::AttnV => Numbering::Counter(side, None),
            _ => Numbering::Layers,
        };
        self.record(at, role, k, n, numbering, extra);
    }

    /// Records the product at `at` where its bytes go by layer position: one numbered by the
    /// count of layers it is over where that count is the stack's (a stack over all its
    /// layers), or one on the shared `attn_v` counter.
    fn record(
        &mut self,
        at: usize,
        role: Role,
        k: f64,
        n: f64,
        numbering: Numbering,
        (bias_bytes, norm_bytes): (f64, f64),
    ) {
        let (format, mix) = (self.pass.weights, self.mix);
        if let Some(bound) = self.depth_bound.as_deref_mut().filter(|_| goes_by_layer(format, role, mix)) {
            bound.exact &= numbering != Numbering::Layers || self.layers == (0, mix.layers);
            let elements = k * n;
            bound.products.push(DepthBoundProduct {
                op: at,
                format,
                role,
                row: k as u64,
                mix,
                numbering,
                elements,
                bias_bytes,
                norm_bytes,
            });
        }
    }

    /// `matmul` with the weights' bytes per element and storage type given; returns the bias's
    /// and a fused norm's bytes, added to the matrix's.
    fn matmul_stored(
        &mut self,
        name: &'static str,
        k: f64,
        n: f64,
        bias: bool,
        (w, ty): (f64, TensorType),
    ) -> (f64, f64) {
        let (t, a) = (self.pass.tokens, self.pass.a);
        let bias_flops = if bias { t * n } else { 0.0 };
        let bias_bytes = if bias { n * a } else { 0.0 };
        let (norm_flops, norm_bytes) = self.take_prologue();
        let op = self.op(name, OpClass::Matmul, Linear::constant(2.0 * t * k * n + bias_flops + norm_flops));
        op.weight_bytes = Linear::constant(k * n * w + bias_bytes + norm_bytes);
        op.weight_type = Some(ty);
        op.act_read_bytes = Linear::constant(t * k * a);
        op.act_write_bytes = Linear::constant(t * n * a);
        (bias_bytes, norm_bytes)
    }

    /// An op over `elements` activations per token: reads `inputs` tensors, writes one.
    fn elementwise(&mut self, name: &'static str, class: OpClass, width: f64, flops_per_element: f64, inputs: f64) {
        let (t, a) = (self.pass.tokens, self.pass.a);
        let op = self.op(name, class, Linear::constant(flops_per_element * t * width));
        op.act_read_bytes = Linear::constant(inputs * t * width * a);
        op.act_write_bytes = Linear::constant(t * width * a);
    }

    /// A pending fused norm's FLOPs and weight bytes, for the product whose prologue runs it
    /// (the first consumer; the others read the same input and recompute the cheap row scale).
    fn take_prologue(&mut self) -> (f64, f64) {
        match self.pending_norm.take() {
            Some(width) => (4.0 * self.pass.tokens * width, width * self.pass.a),
            None => (0.0, 0.0),
        }
    }

    /// A norm whose output only feeds products: fused into the first one's prologue when the
    /// plan fuses, so the normalised copy never reaches memory.
    fn norm_before_products(&mut self, name: &'static str, width: f64) {
        if self.fuse {
            self.pending_norm = Some(width);
        } else {
            self.norm(name, width);
        }
    }

    /// RMSNorm over `width`: square, sum, scale, multiply by the weight (4 FLOPs per element).
    fn norm(&mut self, name: &'static str, width: f64) {
        let (t, a) = (self.pass.tokens, self.pass.a);
        let op = self.op(name, OpClass::Norm, Linear::constant(4.0 * t * width));
        op.act_read_bytes = Linear::constant(t * width * a);
        op.act_write_bytes = Linear::constant(t * width * a);
        op.weight_bytes = Linear::constant(width * a);
    }

    fn residual_add(&mut self, hidden: f64) {
        self.elementwise("residual_add", OpClass::Elementwise, hidden, 1.0, 2.0);
    }

    /// Attention over `heads` query heads with per-head sizes `qk_dim` and `v_dim`, reading the
    /// keys and values of every attended token from `streams` (shared by all heads).
    fn attention(&mut self, form: AttentionForm, heads: f64, qk_dim: f64, v_dim: f64, streams: &[KvStream]) {
        let p = self.pass;
        let (b, t, a) = (p.batch, p.tokens, p.a);
        let q_read = Linear::constant(t * heads * qk_dim * a);
        let out_write = Linear::constant(t * heads * v_dim * a);
        let (mut kv_cache, mut kv_act) = (Linear::ZERO, Linear::ZERO);
        for s in streams {
            let bytes = p.kv_tokens * (b * s.elements * s.bytes_per_element);
            if s.from_cache {
                kv_cache = kv_cache + bytes;
            } else {
                kv_act = kv_act + bytes;
            }
        }
        // Softmax: max, subtract, exp, sum, divide = 5 FLOPs per score.
        match form {
            AttentionForm::Fused => {
                let per_pair = 2.0 * qk_dim + 2.0 * v_dim + 5.0;
                let class = if p.decode { OpClass::DecodeAttention } else { OpClass::Attention };
                let op = self.op("attention", class, p.causal_pairs * (b * heads * per_pair));
                op.scores = p.causal_pairs * (b * heads);
                op.value_head = v_dim as u32;
                op.key_head = qk_dim as u32;
                op.act_read_bytes = q_read + kv_act;
                op.kv_read_bytes = kv_cache;
                op.act_write_bytes = out_write;
            }
            AttentionForm::Unfused => {
                // An eager product computes the dense (masked) score matrix. Keys are read by the
                // score product, values by the weighted sum, in proportion to their widths.
                let scores = p.score_elements * (b * heads);
                let k_share = qk_dim / (qk_dim + v_dim);
                let op = self.op("attn_scores", OpClass::BatchedMatmul, scores * (2.0 * qk_dim));
                op.act_read_bytes = q_read + kv_act * k_share;
                op.kv_read_bytes = kv_cache * k_share;
                op.act_write_bytes = scores * a;
                let op = self.op("attn_softmax", OpClass::Softmax, scores * 5.0);
                op.scores = scores;
                op.act_read_bytes = scores * a;
                op.act_write_bytes = scores * a;
                let op = self.op("attn_values", OpClass::BatchedMatmul, scores * (2.0 * v_dim));
                op.act_read_bytes = scores * a + kv_act * (1.0 - k_share);
                op.kv_read_bytes = kv_cache * (1.0 - k_share);
                op.act_write_bytes = out_write;
            }
        }
    }

    fn kv_append(&mut self, elements_per_token: f64) {
        let p = self.pass;
        let op = self.op("kv_append", OpClass::KvWrite, Linear::ZERO);
        op.act_read_bytes = Linear::constant(p.tokens * elements_per_token * p.a);
        op.kv_write_bytes = Linear::constant(p.tokens * elements_per_token * p.kv);
    }

    fn grouped_attention(&mut self, arch: &Architecture, plan: Plan, layer: Layer, kv_heads: u32, head_dim: u32) {
        let heads = arch.attention.num_heads();
        let (h, nh, hd) = (arch.hidden_size as f64, heads as f64, head_dim as f64);
        let (q, kv) = (nh * hd, kv_heads as f64 * hd);
        // A gated attention's query projection also emits the output gate.
        let q_out = if arch.attn_output_gate { 2.0 * q } else { q };
        self.matmul("q_proj", Role::AttnQ, h, q_out, arch.qkv_bias);
        self.matmul("k_proj", Role::AttnK, h, kv, arch.qkv_bias);
        self.matmul("v_proj", Role::AttnV, h, kv, arch.qkv_bias);
        if arch.qk_norm {
            self.norm("qk_norm", q + kv);
        }
        // RoPE: x*cos + rotate(x)*sin = 3 FLOPs per element of q and k.
        if layer.rope {
            self.elementwise("rope", OpClass::Rope, q + kv, 3.0, 1.0);
        }
        self.kv_append(2.0 * kv);
        self.attention_core(arch, plan);
        if arch.attn_output_gate {
            // o * sigmoid(gate): neg, exp, add, div, mul.
            self.elementwise("output_gate", OpClass::Elementwise, q, 5.0, 2.0);
        }
        self.matmul("o_proj", Role::AttnOutput, q, h, arch.o_bias);
    }

    /// Windowed attention from here on: in prefill a query sees at most `window` keys (the
    /// causal pairs saturate), in decode every operator's context is capped at the window.
    fn set_window(&mut self, window: Option<u32>) {
        self.window = window.unwrap_or(0);
        if let (Some(w), false) = (window, self.pass.decode) {
            let (n, w) = (self.pass.prompt, w as f64);
            let pairs = if n <= w { n * (n + 1.0) / 2.0 } else { w * (w + 1.0) / 2.0 + (n - w) * w };
            self.pass.causal_pairs = Linear::constant(pairs);
        }
    }

    /// A depthwise causal convolution of `kernel` taps over `channels` (f32 kernel and state,
    /// as llama.cpp keeps them) and `extra_flops` per channel of what runs with it; its state,
    /// the last `kernel - 1` inputs, is read and written once per pass per sequence.
    fn causal_conv(&mut self, name: &'static str, channels: f64, kernel: f64, extra_flops: f64, inputs: f64) {
        let p = self.pass;
        let (t, a) = (p.tokens, p.a);
        let state = p.batch * (kernel - 1.0) * channels * STATE_BYTES;
        let op = self.op(name, OpClass::Elementwise, Linear::constant(t * channels * (2.0 * kernel + extra_flops)));
        op.weight_bytes = Linear::constant(kernel * channels * STATE_BYTES);
        op.act_read_bytes = Linear::constant(inputs * t * channels * a);
        op.act_write_bytes = Linear::constant(t * channels * a);
        op.kv_read_bytes = Linear::constant(state);
        op.kv_write_bytes = Linear::constant(state);
    }

    /// A recurrence over a state of `state` f32 elements per sequence, `flops_per_token` per
    /// token, reading `read` and writing `write` activations per token. The state is read and
    /// written once per pass (prefill keeps it on chip between tokens).
    fn scan(&mut self, name: &'static str, state: f64, flops_per_token: f64, read: f64, write: f64) {
        let p = self.pass;
        let (t, a) = (p.tokens, p.a);
        let op = self.op(name, OpClass::Scan, Linear::constant(t * flops_per_token));
        op.act_read_bytes = Linear::constant(t * read * a);
        op.act_write_bytes = Linear::constant(t * write * a);
        op.kv_read_bytes = Linear::constant(p.batch * state * STATE_BYTES);
        op.kv_write_bytes = Linear::constant(p.batch * state * STATE_BYTES);
    }

    /// RMSNorm(o) * SiLU(z) over `width` (4 + 6 FLOPs per element), reading o and z, with a
    /// norm weight of `weight` elements.
    fn gated_norm(&mut self, name: &'static str, width: f64, weight: f64) {
        let (t, a) = (self.pass.tokens, self.pass.a);
        let op = self.op(name, OpClass::Norm, Linear::constant(10.0 * t * width));
        op.act_read_bytes = Linear::constant(2.0 * t * width * a);
        op.act_write_bytes = Linear::constant(t * width * a);
        op.weight_bytes = Linear::constant(weight * a);
    }

    /// LFM2's gated short convolution: B, C, x = in_proj(h); y = conv(B * x); out_proj(C * y).
    fn short_conv(&mut self, h: f64, kernel: u32) {
        self.matmul("conv_in_proj", Role::AttnOther, h, 3.0 * h, false);
        // B * x before the convolution, C * y after it: one multiply each per channel.
        self.causal_conv("short_conv", h, kernel as f64, 2.0, 3.0);
        self.matmul("conv_out_proj", Role::AttnOther, h, h, false);
    }

    /// Gated DeltaNet: in_proj (q, k, v, z, b, a), conv + SiLU over q, k, v, L2 norms of q and
    /// k with the gates, the delta-rule recurrence, a gated RMSNorm, out_proj.
    fn delta_net(&mut self, h: f64, g: DeltaNet) {
        let (key, value, conv) = (g.key_dim() as f64, g.value_dim() as f64, g.conv_dim() as f64);
        let hv = g.value_heads as f64;
        match self.attn_v_split {
            None => self.matmul("deltanet_in_proj", Role::AttnOther, h, g.in_proj_dim() as f64, false),
            Some((split, side)) => {
                // Q4_K_M: q, k and v (`attn_qkv`) stored by layer position, the gates as the rest.
                let n = g.in_proj_dim() as f64;
                let mix = InProjMix {
                    qkv_columns: conv,
                    columns: n,
                    gate_bytes_per_element: self.split(Role::AttnOther, h).mean_bytes_per_element(),
                };
                let w = mix.bytes_per_element(split.mean_bytes_per_element());
                let at = self.ops.len();
                let extra = self.matmul_stored("deltanet_in_proj", h, n, false, (w, split.common));
                // Recorded with its mix, so its bytes can be set again from the counter's split.
                self.record(at, Role::AttnV, h, n, Numbering::Counter(side, Some(mix)), extra);
            }
        }
        // SiLU after the convolution: 5 FLOPs per channel.
        self.causal_conv("deltanet_conv", conv, g.conv_kernel as f64, 5.0, 1.0);
        // L2 norms of q and k (square, sum, scale: 3 per element); beta = sigmoid(b) and
        // g = -exp(A) * softplus(a + dt_bias) per value head (about 10).
        self.elementwise("deltanet_qk_norm", OpClass::Norm, 2.0 * key, 3.0, 1.0);
        // Per head and token: decay S (1 per element), S^T k (2), rank-1 update (2), S^T q (2).
        let flops = 7.0 * g.state_elements() as f64 + 10.0 * hv;
        self.scan("deltanet_scan", g.state_elements() as f64, flops, conv + 2.0 * hv, value);
        self.gated_norm("deltanet_gated_norm", value, g.value_head_dim as f64);
        self.matmul("deltanet_out_proj", Role::AttnOther, value, h, false);
    }

    /// Mamba2: in_proj (z, x, B, C, dt), conv + SiLU over x, B, C, the selective scan, D skip,
    /// a gated RMSNorm, out_proj.
    fn mamba2(&mut self, h: f64, m: Mamba2) {
        let (inner, conv) = (m.inner() as f64, m.conv_dim() as f64);
        self.matmul("mamba_in_proj", Role::AttnOther, h, m.in_proj_dim() as f64, false);
        // Bias and SiLU after the convolution.
        self.causal_conv("mamba_conv", conv, m.conv_kernel as f64, 6.0, 1.0);
        // Per channel and state element: decay, B * x * dt, add, C dot (5); D skip 2 per channel;
        // softplus and exp of dt per head.
        let flops = 5.0 * m.state_elements() as f64 + 2.0 * inner + 10.0 * m.heads as f64;
        self.scan("mamba_scan", m.state_elements() as f64, flops, conv + m.heads as f64, inner);
        self.gated_norm("mamba_gated_norm", inner, inner);
        self.matmul("mamba_out_proj", Role::AttnOther, inner, h, false);
    }

    /// The operators an execution plan changes. Skipped for `Part::Shared`.
    fn attention_core(&mut self, arch: &Architecture, plan: Plan) {
        if self.part == Part::Shared {
            return;
        }
        let p = self.pass;
        match arch.attention {
            Attention::Grouped { num_heads, num_kv_heads, head_dim } => {
                let (nh, hd) = (num_heads as f64, head_dim as f64);
                let elements = 2.0 * num_kv_heads as f64 * hd;
                let keys_values = KvStream { elements, bytes_per_element: p.kv_source(), from_cache: p.decode };
                self.attention(plan.attention, nh, hd, hd, &[keys_values]);
            }
            Attention::Latent(m) => self.latent_core(plan, m),
        }
    }

    fn latent_attention(&mut self, arch: &Architecture, plan: Plan, m: Mla) {
        let h = arch.hidden_size as f64;
        let (nh, r, dr, dn, dv) = m.dims_f64();
        let q_out = nh * (dn + dr);
        match m.q_lora_rank {
            Some(rq) => {
                self.matmul("q_a_proj", Role::AttnOther, h, rq as f64, false);
                self.norm_before_products("q_a_norm", rq as f64);
                self.matmul("q_b_proj", Role::AttnOther, rq as f64, q_out, false);
            }
            None => self.matmul("q_proj", Role::AttnQ, h, q_out, false),
        }
        self.matmul("kv_a_proj", Role::AttnOther, h, r + dr, false);
        self.norm("kv_a_norm", r);
        self.elementwise("rope", OpClass::Rope, nh * dr + dr, 3.0, 1.0);
        self.kv_append(r + dr);
        self.attention_core(arch, plan);
        self.matmul("o_proj", Role::AttnOutput, nh * dv, h, arch.o_bias);
    }

    /// MLA's core: expand the latent (materialised) or move queries and outputs into the latent
    /// space (absorbed), and attend.
    fn latent_core(&mut self, plan: Plan, m: Mla) {
        let p = self.pass;
        let (nh, r, dr, dn, dv) = m.dims_f64();
        let latent_bytes = p.kv_source();
        match plan.mla {
            MlaForm::Materialised => {
                // Expand every attended token's latent to per-head keys (nope part) and values.
                let rows = p.kv_tokens * p.batch;
                // attn_k_b (rows of qk_nope) and attn_v_b (rows of kv_lora_rank) as stored.
                let ((wk, ty), (wv, _)) = (self.stored(Role::AttnOther, dn), self.stored(Role::AttnOther, r));
                let op = self.op("kv_b_expand", OpClass::Matmul, rows * (2.0 * r * nh * (dn + dv)));
                op.rows = rows;
                op.weight_bytes = Linear::constant(r * nh * (dn * wk + dv * wv));
                op.weight_type = Some(ty);
                let latent_read = rows * (r * latent_bytes);
                if p.decode {
                    op.kv_read_bytes = latent_read;
                } else {
                    op.act_read_bytes = latent_read;
                }
                op.act_write_bytes = rows * (nh * (dn + dv) * p.a);
                // Attention then reads the expanded K/V (fresh activations in both phases) and
                // the shared RoPE key (the cache in decode).
                let expanded = KvStream { elements: nh * (dn + dv), bytes_per_element: p.a, from_cache: false };
                let rope_key = KvStream { elements: dr, bytes_per_element: latent_bytes, from_cache: p.decode };
                self.attention(plan.attention, nh, dn + dr, dv, &[expanded, rope_key]);
            }
            MlaForm::Absorbed => {
                // q_nope (per head) times W_uk^T: queries move into the latent space.
                let t = p.tokens;
                let ((wk, kty), (wv, vty)) = (self.stored(Role::AttnOther, dn), self.stored(Role::AttnOther, r));
                let op = self.op("q_absorb", OpClass::BatchedMatmul, Linear::constant(2.0 * t * nh * dn * r));
                op.weight_bytes = Linear::constant(nh * dn * r * wk);
                op.weight_type = Some(kty);
                op.act_read_bytes = Linear::constant(t * nh * dn * p.a);
                op.act_write_bytes = Linear::constant(t * nh * r * p.a);
                // One latent key/value stream shared by every head (MQA-like), r + dr wide.
                let latent = KvStream { elements: r + dr, bytes_per_element: latent_bytes, from_cache: p.decode };
                self.attention(plan.attention, nh, r + dr, r, &[latent]);
                let op = self.op("out_absorb", OpClass::BatchedMatmul, Linear::constant(2.0 * t * nh * r * dv));
                op.weight_bytes = Linear::constant(nh * r * dv * wv);
                op.weight_type = Some(vty);
                op.act_read_bytes = Linear::constant(t * nh * r * p.a);
                op.act_write_bytes = Linear::constant(t * nh * dv * p.a);
            }
        }
    }

    /// Gated (gate, up, activation, multiply, down) or plain (up, activation, down) FFN.
    fn dense_ffn(&mut self, h: f64, i: f64, gated: bool, activation: Activation, bias: bool) {
        if gated && self.fuse {
            // Gate and up as one product `h x 2i`, `act(x Wg) * (x Wu)` in its epilogue: only
            // the gated result is written.
            let (t, a) = (self.pass.tokens, self.pass.a);
            self.matmul("gate_up_act", Role::FfnGate, h, 2.0 * i, bias);
            let op = self.ops.last_mut().expect("just pushed");
            op.flops = op.flops + Linear::constant(t * i * (activation.flops_per_element() + 1.0));
            op.act_write_bytes = Linear::constant(t * i * a);
        } else if gated {
            self.matmul("gate_proj", Role::FfnGate, h, i, bias);
            self.matmul("up_proj", Role::FfnUp, h, i, bias);
            self.elementwise("act", OpClass::Elementwise, i, activation.flops_per_element(), 1.0);
            self.elementwise("gate_mul", OpClass::Elementwise, i, 1.0, 2.0);
        } else {
            self.matmul("up_proj", Role::FfnUp, h, i, bias);
            self.elementwise("act", OpClass::Elementwise, i, activation.flops_per_element(), 1.0);
        }
        self.matmul("down_proj", Role::FfnDown, i, h, bias);
    }

    fn moe_ffn(&mut self, h: f64, m: Moe) {
        let p = self.pass;
        let (t, a) = (p.tokens, p.a);
        let (e, k, ie) = (m.num_experts as f64, m.experts_per_token as f64, m.expert_intermediate_size as f64);
        let ((w_up, up_ty), (w_down, down_ty)) = (self.stored(Role::FfnUp, h), self.stored(Role::FfnDown, ie));
        self.matmul("router", Role::Router, h, e, false);
        self.elementwise("router_topk", OpClass::Softmax, e, 5.0, 1.0);
        // Experts a pass touches: with T tokens each choosing k of E, E * (1 - (1 - k/E)^T).
        let touched = e * (1.0 - (1.0 - k / e).powf(t));
        let routed = t * k;
        let gating = routed * ie * (m.activation.flops_per_element() + 1.0);
        let fuse = self.fuse;
        let flops = 2.0 * routed * h * 2.0 * ie + if fuse { gating } else { 0.0 };
        // Each touched expert multiplies its share of the routed rows: products of that many
        // rows are what the engine runs (one row each in decode), at their efficiency.
        let rows = Linear::constant(routed / touched);
        let op = self.op("experts_gate_up", OpClass::Matmul, Linear::constant(flops));
        op.rows = rows;
        op.experts = touched;
        op.weight_bytes = Linear::constant(touched * 2.0 * h * ie * w_up);
        op.weight_type = Some(up_ty);
        op.act_read_bytes = Linear::constant(routed * h * a);
        // Fused, the activation and gate multiply run in the epilogue: only their result is written.
        op.act_write_bytes = Linear::constant(routed * if fuse { 1.0 } else { 2.0 } * ie * a);
        if !fuse {
            let op = self.op("experts_act_mul", OpClass::Elementwise, Linear::constant(gating));
            op.act_read_bytes = Linear::constant(routed * 2.0 * ie * a);
            op.act_write_bytes = Linear::constant(routed * ie * a);
        }
        let op = self.op("experts_down", OpClass::Matmul, Linear::constant(2.0 * routed * ie * h));
        op.rows = rows;
        op.experts = touched;
        op.weight_bytes = Linear::constant(touched * ie * h * w_down);
        op.weight_type = Some(down_ty);
        op.act_read_bytes = Linear::constant(routed * ie * a);
        op.act_write_bytes = Linear::constant(routed * h * a);
        // Weighted sum of each token's k expert outputs: a multiply and an add per element.
        let op = self.op("experts_combine", OpClass::Elementwise, Linear::constant(2.0 * routed * h));
        op.act_read_bytes = Linear::constant(routed * h * a);
        op.act_write_bytes = Linear::constant(t * h * a);
        if m.num_shared_experts > 0 {
            self.dense_ffn(h, m.num_shared_experts as f64 * ie, true, m.activation, false);
        }
    }
}

/// The operators (of `part`) of one forward pass of `phase` under `plan`, appended to `ops`.
pub fn operators_into(
    arch: &Architecture,
    phase: Phase,
    settings: &RunSettings,
    plan: Plan,
    part: Part,
    ops: &mut Vec<Operator>,
) {
    segments_into(arch, phase, settings, plan, part, &Segment::ALL, ops);
}

/// A pass in the order it runs: the embedding, the layers, the head (final norm and LM head).
/// The layers' operators depend on neither the vocabulary nor the tied embedding, and on the
/// depth only through their launch counts (and Q4_K_M's per-layer types): an evaluator prices
/// them once for the candidates that share them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    Embedding,
    Layers,
    Head,
}

impl Segment {
    pub const ALL: [Segment; 3] = [Segment::Embedding, Segment::Layers, Segment::Head];
}

/// The operators of some segments of [`operators_into`]'s pass, appended to `ops`: the
/// three segments in order build exactly the operators of the whole pass.
pub fn segments_into(
    arch: &Architecture,
    phase: Phase,
    settings: &RunSettings,
    plan: Plan,
    part: Part,
    segments: &[Segment],
    ops: &mut Vec<Operator>,
) {
    let mut b = Builder::new(arch, phase, settings, plan, part, ops, None);
    for &segment in segments {
        match segment {
            Segment::Embedding if part != Part::PlanDependent => b.embedding(arch.hidden_size as f64),
            Segment::Layers => b.layers(arch, plan, settings, &arch.layer_groups()),
            Segment::Head if part != Part::PlanDependent => b.lm_head(arch, settings),
            _ => {}
        }
    }
}

/// The layers' operators of a pass (as [`segments_into`] builds [`Segment::Layers`]) for the
/// layer groups `groups` of `arch`, with `marks` set to where each group's operators start
/// (one mark per group, in order, though a group may add none) and then where the FFNs' start,
/// and `bound` to the products whose bytes go by the count of layers they are numbered over.
/// Every group's operators are its layers' mixer alone, so a group prices the same beside any
/// other, where its storage does not go by layer position (or goes only through `bound`).
#[allow(clippy::too_many_arguments)]
pub fn layers_marked_into(
    arch: &Architecture,
    phase: Phase,
    settings: &RunSettings,
    plan: Plan,
    part: Part,
    groups: &LayerGroups,
    ops: &mut Vec<Operator>,
    marks: &mut Vec<usize>,
    bound: &mut DepthBound,
) {
    marks.clear();
    bound.products.clear();
    bound.exact = true;
    let mut b = Builder::new(arch, phase, settings, plan, part, ops, Some(marks));
    b.depth_bound = Some(bound);
    b.layers(arch, plan, settings, groups);
}

/// The layers' operators of a pass (as [`segments_into`] builds [`Segment::Layers`]) of a
/// uniform stack, with `bound` set to its products whose weights go by the depth.
pub fn layers_depth_bound_into(
    arch: &Architecture,
    phase: Phase,
    settings: &RunSettings,
    (plan, part): (Plan, Part),
    ops: &mut Vec<Operator>,
    bound: &mut DepthBound,
) {
    bound.products.clear();
    bound.exact = arch.layers.is_empty();
    let mut b = Builder::new(arch, phase, settings, plan, part, ops, None);
    b.depth_bound = Some(bound);
    b.layers(arch, plan, settings, &arch.layer_groups());
}

impl<'a> Builder<'a> {
    fn new(
        arch: &Architecture,
        phase: Phase,
        settings: &RunSettings,
        plan: Plan,
        part: Part,
        ops: &'a mut Vec<Operator>,
        marks: Option<&'a mut Vec<usize>>,
    ) -> Builder<'a> {
        let experts = match arch.ffn {
            Ffn::Moe(m) => m.num_experts,
            Ffn::Dense { .. } => 0,
        };
        Builder {
            ops,
            pass: Pass::new(phase, settings),
            count: 1,
            part,
            fuse: plan.elementwise == ElementwiseForm::Fused,
            pending_norm: None,
            layers: (0, 1),
            mix: MixContext { layers: arch.num_layers, experts, tied_embeddings: arch.tie_embeddings },
            window: 0,
            attn_v_split: None,
            marks,
            depth_bound: None,
        }
    }

    /// The layers' operators: every group's mixer, then the FFNs (the attention cores alone
    /// for [`Part::PlanDependent`]).
    #[inline]
    fn layers(&mut self, arch: &Architecture, plan: Plan, settings: &RunSettings, groups: &LayerGroups) {
        if self.part == Part::PlanDependent {
            self.plan_dependent_attention(arch, plan, groups);
            self.mark();
        } else {
            self.mixers(arch, plan, settings, groups);
            self.mark();
            self.ffns(arch, groups);
        }
    }
}

/// [`operators_into`]'s stages, in the order a pass runs them.
impl Builder<'_> {
    /// Attention tensors are stored (and numbered by the quantiser) over the attention layers.
    #[inline]
    fn attention_storage(&mut self, attention_layers: u32) {
        self.layers = (0, attention_layers);
        self.mix.layers = attention_layers;
    }

    /// [`Part::PlanDependent`]: the attention cores alone, once per group of attention layers.
    #[inline]
    fn plan_dependent_attention(&mut self, arch: &Architecture, plan: Plan, groups: &LayerGroups) {
        let pass = self.pass;
        let attention_layers = groups.attention_layers();
        for &(layer, count) in groups.as_slice() {
            self.mark();
            if !layer.mixer.is_attention() {
                continue;
            }
            self.count = count;
            self.attention_storage(attention_layers);
            self.set_window(layer.mixer.window());
            self.attention_core(arch, plan);
            self.set_window(None);
            self.pass = pass;
        }
    }

    /// Embedding: a gather of one row per token; bytes, no FLOPs.
    #[inline]
    fn embedding(&mut self, h: f64) {
        let pass = self.pass;
        let (w_embd, _) = self.stored(Role::TokenEmbedding, h);
        let op = self.op("embedding", OpClass::Gather, Linear::ZERO);
        op.weight_bytes = Linear::constant(pass.tokens * h * w_embd);
        op.act_write_bytes = Linear::constant(pass.tokens * h * pass.a);
    }

    /// Each distinct mixer once, for the layers that have it.
    #[inline]
    fn mixers(&mut self, arch: &Architecture, plan: Plan, settings: &RunSettings, groups: &LayerGroups) {
        let pass = self.pass;
        let h = arch.hidden_size as f64;
        let layers = arch.num_layers;
        let splits = arch.attn_v_splits(settings.precisions.weights);
        let attention_layers = groups.attention_layers();
        for &(layer, count) in groups.as_slice() {
            self.mark();
            self.count = count;
            self.layers = (0, count);
            self.mix.layers = layers;
            self.norm_before_products("attn_norm", h);
            match layer.mixer {
                Mixer::Global | Mixer::Window { .. } => {
                    self.attention_storage(attention_layers);
                    self.attn_v_split = splits.map(|s| (s.0, CounterSide::Attention));
                    self.set_window(layer.mixer.window());
                    match arch.attention {
                        Attention::Grouped { num_kv_heads, head_dim, .. } => {
                            self.grouped_attention(arch, plan, layer, num_kv_heads, head_dim)
                        }
                        Attention::Latent(m) => self.latent_attention(arch, plan, m),
                    }
                    self.set_window(None);
                    self.pass = pass;
                }
                Mixer::ShortConv { kernel } => self.short_conv(h, kernel),
                Mixer::DeltaNet(g) => {
                    self.attn_v_split = splits.map(|s| (s.1, CounterSide::DeltaNet));
                    self.delta_net(h, g);
                }
                Mixer::Mamba2(m) => self.mamba2(h, m),
            }
            self.layers = (0, layers);
            self.mix.layers = layers;
            self.attn_v_split = None;
            if arch.norms_of(layer) == 4 {
                self.norm("post_attn_norm", h);
            }
            self.residual_add(h);
        }
    }

    /// The FFN of every layer that has one; tensors numbered over those layers.
    #[inline]
    fn ffns(&mut self, arch: &Architecture, groups: &LayerGroups) {
        let h = arch.hidden_size as f64;
        let ffn_layers = groups.ffn_layers();
        if ffn_layers > 0 {
            self.count = ffn_layers;
            self.layers = (0, ffn_layers);
            self.mix.layers = ffn_layers;
            // A MoE layer's norm also feeds the gather of each expert's tokens: it stays a kernel.
            if arch.ffn.is_moe() {
                self.norm("ffn_norm", h);
            } else {
                self.norm_before_products("ffn_norm", h);
            }
            match arch.ffn {
                Ffn::Dense { intermediate_size, gated, activation, bias } => {
                    self.dense_ffn(h, intermediate_size as f64, gated, activation, bias)
                }
                Ffn::Moe(m) => {
                    let dense = ffn_layers - arch.moe_layers();
                    if dense > 0 {
                        self.count = dense;
                        self.layers = (0, dense);
                        self.dense_ffn(h, m.dense_intermediate_size as f64, true, m.activation, false);
                    }
                    self.count = ffn_layers - dense;
                    self.layers = (dense, ffn_layers);
                    if self.count > 0 {
                        self.moe_ffn(h, m);
                    }
                    self.count = ffn_layers;
                    self.layers = (0, ffn_layers);
                }
            }
            if arch.norms_per_layer == 4 {
                self.norm("post_ffn_norm", h);
            }
            self.residual_add(h);
        }
        self.mix.layers = arch.num_layers;
    }

    /// The LM head runs on the last prompt token per sequence in prefill, on every token in
    /// decode; a fused final norm normalises only those rows.
    #[inline]
    fn lm_head(&mut self, arch: &Architecture, settings: &RunSettings) {
        let h = arch.hidden_size as f64;
        self.count = 1;
        self.layers = (0, 1);
        let pass = self.pass;
        let rows = if pass.decode || settings.logits_for_all_prompt_tokens { pass.tokens } else { pass.batch };
        self.norm_before_products("final_norm", h);
        self.pass.tokens = rows;
        self.matmul("lm_head", Role::Output, h, arch.vocab_size as f64, false);
    }
}

/// The operators of one forward pass of `phase` under `plan`.
pub fn operators(arch: &Architecture, phase: Phase, settings: &RunSettings, plan: Plan) -> Vec<Operator> {
    let mut ops = Vec::with_capacity(40);
    operators_into(arch, phase, settings, plan, Part::All, &mut ops);
    ops
}

#[cfg(test)]
mod tests;
