//! Warnings for predictions that are likely to mislead: one line each, said on stderr and
//! written into the summary beside the figures.

use crate::arch::Architecture;
use crate::device::{builtin, DeviceProfile};
use crate::dtype::DType;
use crate::units::si;

/// Below this many parameters a model's speed is set by fixed per-kernel and per-pass costs
/// more than by its bytes and FLOPs, which an upper-bound profile leaves out.
pub const SMALL_MODEL_PARAMETERS: u64 = 500_000_000;

/// What a prediction needs checked: the model, its size, the compute format it really runs in
/// and the longest context it reaches.
pub struct Run<'a> {
    pub model: &'a str,
    pub parameters: u64,
    pub max_position_embeddings: u32,
    /// The window of windowed layers whose family's llama.cpp graph attends over the whole
    /// context anyway (llama, mistral, qwen2, qwen3, phi3 never read `sliding_window`).
    pub window_llama_cpp_ignores: Option<u32>,
    pub activations: DType,
    pub context_tokens: u64,
}

impl<'a> Run<'a> {
    pub fn of(arch: &'a Architecture, activations: DType, context_tokens: u64) -> Run<'a> {
        Run {
            model: &arch.name,
            parameters: arch.parameters(),
            max_position_embeddings: arch.max_position_embeddings,
            window_llama_cpp_ignores: arch.layers.iter().find_map(|l| l.mixer.window()).filter(|_| {
                use crate::arch::Family::*;
                matches!(arch.family, Llama | Mistral | Qwen2 | Qwen3 | Phi3)
            }),
            activations,
            context_tokens,
        }
    }
}

/// The warnings for `run` on `device`, in a fixed order.
pub fn check(device: &DeviceProfile, run: &Run) -> Vec<String> {
    let mut w = Vec::new();
    if device.emulated_formats.contains(&run.activations) {
        let f = run.activations;
        w.push(format!(
            "{}: {f} arithmetic is emulated on this device ({} against {} in f32): {f} activations run at the emulated rate; f32 activations would be faster here",
            device.name,
            si(device.peak_flops(f), "FLOP/s"),
            si(device.peak_flops(DType::F32), "FLOP/s"),
        ));
    }
    if run.context_tokens > run.max_position_embeddings as u64 {
        w.push(format!(
            "{}: a context of {} tokens is beyond its max_position_embeddings ({}): the model was not trained for those positions",
            run.model, run.context_tokens, run.max_position_embeddings
        ));
    }
    let on_llama_cpp = device.engine.as_ref().is_some_and(|e| e.name == "llama.cpp");
    if let Some(win) = run.window_llama_cpp_ignores.filter(|&win| on_llama_cpp && run.context_tokens > win as u64) {
        w.push(format!(
            "{}: llama.cpp runs this family's sliding-window layers ({win} tokens) as full attention over all {} tokens, while this prediction prices the window (a gemma3 or gpt-oss GGUF keeps it)",
            run.model, run.context_tokens
        ));
    }
    if device.is_upper_bound() && run.parameters < SMALL_MODEL_PARAMETERS {
        let expected = device
            .name
            .strip_suffix("-datasheet")
            .and_then(builtin)
            .filter(|p| !p.is_upper_bound())
            .map(|p| format!("; the expected profile `{}` includes them", p.name))
            .unwrap_or_default();
        w.push(format!(
            "{}: a model of {} parameters (under 500M) on an upper-bound profile ({}): it leaves out per-kernel and per-pass fixed costs, which dominate such models, so the speed is overstated{expected}",
            device.name,
            si(run.parameters as f64, ""),
            device.kind_label()
        ));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(parameters: u64, activations: DType, context_tokens: u64) -> Run<'static> {
        Run {
            model: "m",
            parameters,
            max_position_embeddings: 2048,
            window_llama_cpp_ignores: Some(1024),
            activations,
            context_tokens,
        }
    }

    #[test]
    fn each_trap_says_one_line() {
        let pi = builtin("rpi5-paper").unwrap();
        // 1.48 GFLOP/s emulated FP16 against 78.56 GFLOP/s in f32 (the paper's Table 1).
        let w = check(&pi, &run(1_000_000_000, DType::F16, 512));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("emulated") && w[0].contains("1.48 GFLOP/s"), "{w:?}");
        assert!(check(&pi, &run(1_000_000_000, DType::F32, 512)).is_empty());
        // 3000 tokens: past the 2048 trained positions; the 1024 window is priced as a window.
        let w = check(&pi, &run(1_000_000_000, DType::F32, 3000));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("max_position_embeddings (2048)"), "{w:?}");
        // On a llama.cpp profile, a family whose llama.cpp graph ignores the window is said so.
        let engine = builtin("rpi5").unwrap();
        assert_eq!(engine.engine.as_ref().map(|e| e.name.as_str()), Some("llama.cpp"));
        let w = check(&engine, &run(1_000_000_000, DType::F32, 3000));
        assert!(w.iter().any(|l| l.contains("sliding-window layers (1024 tokens) as full attention")), "{w:?}");
        // A 135M model on a datasheet (upper-bound) profile.
        let w = check(&builtin("m1-pro-datasheet").unwrap(), &run(135_000_000, DType::F32, 512));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("upper-bound") && w[0].contains("under 500M"), "{w:?}");
        assert!(check(&builtin("m1-pro-datasheet").unwrap(), &run(600_000_000, DType::F32, 512)).is_empty());
    }
}
