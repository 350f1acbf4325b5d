//! Numeric formats: how many bytes an element occupies and which format the arithmetic runs in.

pub mod storage;

pub use storage::{Role, TensorType};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A storage or compute format. GGUF block formats carry their block scales in `bits()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DType {
    F32,
    F16,
    Bf16,
    Int8,
    /// GGUF Q8_0: blocks of 32 int8 values plus one f16 scale = 34 bytes / 32 weights.
    Q8_0,
    /// GGUF Q4_0: blocks of 32 4-bit values plus one f16 scale = 18 bytes / 32 weights.
    Q4_0,
    /// GGUF Q4_K_M: mostly Q4_K (4.5 bpw) with some tensors in Q6_K; about 4.85 bits per weight.
    Q4KM,
}

impl DType {
    pub const ALL: [DType; 7] =
        [DType::F32, DType::F16, DType::Bf16, DType::Int8, DType::Q8_0, DType::Q4_0, DType::Q4KM];

    /// Bits per element, block scales included.
    pub fn bits(self) -> f64 {
        match self {
            DType::F32 => 32.0,
            DType::F16 | DType::Bf16 => 16.0,
            DType::Int8 => 8.0,
            DType::Q8_0 => 8.5,
            DType::Q4_0 => 4.5,
            DType::Q4KM => 4.85,
        }
    }

    /// Bytes per element (fractional for block formats).
    pub fn bytes(self) -> f64 {
        self.bits() / 8.0
    }

    /// Block formats are dequantised on the fly; their arithmetic runs in the activation format.
    pub fn is_block_quantised(self) -> bool {
        matches!(self, DType::Q8_0 | DType::Q4_0 | DType::Q4KM)
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::Bf16 => "bf16",
            DType::Int8 => "int8",
            DType::Q8_0 => "q8_0",
            DType::Q4_0 => "q4_0",
            DType::Q4KM => "q4_k_m",
        }
    }

    /// The format a matrix product with these weights and activations computes in: int8 weights
    /// with int8 activations run int8 arithmetic; every other pairing runs in the activation format.
    pub fn compute_format(weights: DType, activations: DType) -> DType {
        if weights == DType::Int8 && activations == DType::Int8 {
            DType::Int8
        } else {
            activations
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        let found = match lower.as_str() {
            "float32" | "fp32" => Some(DType::F32),
            "float16" | "fp16" | "half" => Some(DType::F16),
            "bfloat16" => Some(DType::Bf16),
            "i8" => Some(DType::Int8),
            "q4_k" | "q4km" => Some(DType::Q4KM),
            other => DType::ALL.into_iter().find(|d| d.name() == other),
        };
        // The message completes "expected ...": callers name the field and the value.
        found.ok_or_else(|| {
            let names: Vec<_> = DType::ALL.iter().map(|d| d.name()).collect();
            match crate::error::nearest(s, names.iter().copied()) {
                Some(n) => format!("a precision such as {n} (one of {})", names.join(", ")),
                None => format!("one of {}", names.join(", ")),
            }
        })
    }
}

/// Precisions of the three kinds of data an inference moves, each set separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Precisions {
    pub weights: DType,
    pub activations: DType,
    pub kv_cache: DType,
}

impl Precisions {
    pub fn uniform(d: DType) -> Self {
        Precisions { weights: d, activations: d, kv_cache: d }
    }

    /// The format matrix products compute in.
    pub fn compute(&self) -> DType {
        DType::compute_format(self.weights, self.activations)
    }

    /// Precisions as a person names them (`--weights`, `--activations`, `--kv`; the Python
    /// binding's keywords): the KV cache in the activations' format unless named; errors name
    /// the flag.
    pub fn from_names(weights: &str, activations: &str, kv: Option<&str>) -> crate::error::Result<Precisions> {
        use crate::error::Error;
        let parse = |flag: &str, s: &str| {
            s.parse::<DType>()
                .map_err(|e| Error::Usage(format!("--{flag}: expected {e}, got '{}'", crate::error::clip(s))))
        };
        let weights = parse("weights", weights)?;
        let activations = parse("activations", activations)?;
        if activations.is_block_quantised() {
            return Err(Error::Usage(format!(
                "--activations: {activations} is a weight-only block format; use f32, f16, bf16 or int8"
            )));
        }
        let kv_cache = match kv {
            Some(s) => parse("kv", s)?,
            None => activations,
        };
        Ok(Precisions { weights, activations, kv_cache })
    }
}

impl Default for Precisions {
    fn default() -> Self {
        Precisions::uniform(DType::Bf16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_formats_count_their_scales() {
        // Q8_0: 32 x 1 byte + 2-byte f16 scale per block of 32 = 34 / 32 bytes = 8.5 bits.
        assert_eq!(DType::Q8_0.bytes() * 32.0, 34.0);
        // Q4_0: 32 x 0.5 byte + 2-byte scale = 18 / 32 bytes = 4.5 bits.
        assert_eq!(DType::Q4_0.bytes() * 32.0, 18.0);
    }

    #[test]
    fn names_round_trip() {
        for d in DType::ALL {
            assert_eq!(d.name().parse::<DType>().unwrap(), d);
        }
        assert!("q3".parse::<DType>().unwrap_err().contains("q4_k_m"));
    }
}
