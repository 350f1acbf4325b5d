//! Scenarios: one prefill of the prompt, then one decode step per generated token.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scenario {
    pub name: String,
    /// Prompt tokens per sequence.
    pub prompt: u32,
    /// Generated tokens per sequence (decode steps).
    pub generate: u32,
}

/// The paper's four scenarios (prompt / generated tokens).
pub const NAMED: [(&str, u32, u32); 4] =
    [("siso", 128, 128), ("silo", 128, 4096), ("liso", 4096, 128), ("lilo", 4096, 4096)];

impl Scenario {
    pub fn new(name: impl Into<String>, prompt: u32, generate: u32) -> Result<Scenario> {
        let name = name.into();
        if prompt == 0 {
            return Err(Error::field(&name, "prompt", "a positive number of tokens", 0));
        }
        Ok(Scenario { name, prompt, generate })
    }

    /// One of siso, silo, liso, lilo (case-insensitive).
    pub fn named(name: &str) -> Result<Scenario> {
        let lower = name.to_ascii_lowercase();
        NAMED
            .iter()
            .find(|(n, ..)| *n == lower)
            .map(|&(n, p, g)| Scenario { name: n.to_string(), prompt: p, generate: g })
            .ok_or_else(|| {
                Error::Usage(format!(
                    "unknown scenario '{name}' (expected siso, silo, liso or lilo, or --prompt N --generate M)"
                ))
            })
    }

    pub fn all_named() -> Vec<Scenario> {
        NAMED.iter().map(|&(n, p, g)| Scenario { name: n.to_string(), prompt: p, generate: g }).collect()
    }

    /// Longest context the KV cache must hold.
    pub fn max_context(&self) -> u64 {
        self.prompt as u64 + self.generate as u64
    }
}
