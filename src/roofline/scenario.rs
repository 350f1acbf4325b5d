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

/// Tokens a prompt or a generation may hold: 16 Mi, well past any context a model has, and
/// small enough that token counts times sizes stay exact.
pub const MAX_TOKENS: u32 = 1 << 24;

/// Sequences decoded together, at most.
pub const MAX_BATCH: u32 = 1 << 16;

/// The paper's four scenarios (prompt / generated tokens).
pub const NAMED: [(&str, u32, u32); 4] =
    [("siso", 128, 128), ("silo", 128, 4096), ("liso", 4096, 128), ("lilo", 4096, 4096)];

impl Scenario {
    pub fn new(name: impl Into<String>, prompt: u32, generate: u32) -> Result<Scenario> {
        let name = name.into();
        for (field, v) in [("prompt", prompt), ("generate", generate)] {
            if v > MAX_TOKENS || (field == "prompt" && v == 0) {
                let least = if field == "prompt" { 1 } else { 0 };
                return Err(Error::field(&name, field, format!("tokens from {least} to {MAX_TOKENS}"), v));
            }
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

    /// The scenarios a request names: a custom one of `prompt` and `generate` tokens when both
    /// are given, else the named ones (every one for none or `all`).
    pub fn select(names: &[String], prompt: Option<u32>, generate: Option<u32>) -> Result<Vec<Scenario>> {
        if !names.is_empty() && (prompt.is_some() || generate.is_some()) {
            return Err(Error::Usage("--scenario: give a named scenario or --prompt and --generate, not both".into()));
        }
        match (prompt, generate) {
            (Some(p), Some(g)) => return Ok(vec![Scenario::new(format!("p{p}g{g}"), p, g)?]),
            (Some(_), None) => return Err(Error::Usage("--prompt: needs --generate too".into())),
            (None, Some(_)) => return Err(Error::Usage("--generate: needs --prompt too".into())),
            (None, None) => {}
        }
        if names.is_empty() || names.iter().any(|n| n.eq_ignore_ascii_case("all")) {
            return Ok(Scenario::all_named());
        }
        names.iter().map(|n| Scenario::named(n)).collect()
    }

    pub fn all_named() -> Vec<Scenario> {
        NAMED.iter().map(|&(n, p, g)| Scenario { name: n.to_string(), prompt: p, generate: g }).collect()
    }

    /// Longest context the KV cache must hold.
    pub fn max_context(&self) -> u64 {
        self.prompt as u64 + self.generate as u64
    }
}

/// A llama-bench test: a prompt of `prompt` tokens in one call (`pp N`), or `generate` tokens
/// one decode step each (`tg N`), after `depth` tokens already in the KV cache (`@ dD`). The
/// measuring harness runs one untimed step before a `tg` test (the weights warm as in steady
/// generation), so the timed steps attend to `depth + 2 ..= depth + generate + 1` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BenchTest {
    pub prompt: u32,
    pub generate: u32,
    pub depth: u32,
}

impl BenchTest {
    pub fn pp(n: u32) -> BenchTest {
        BenchTest { prompt: n, generate: 0, depth: 0 }
    }

    pub fn tg(n: u32, depth: u32) -> BenchTest {
        BenchTest { prompt: 0, generate: n, depth }
    }

    pub fn is_prefill(&self) -> bool {
        self.prompt > 0
    }

    /// llama-bench's name: `pp512`, `tg128`, `tg128 @ d4096`.
    pub fn label(&self) -> String {
        let base = if self.prompt > 0 { format!("pp{}", self.prompt) } else { format!("tg{}", self.generate) };
        if self.depth > 0 {
            format!("{base} @ d{}", self.depth)
        } else {
            base
        }
    }

    /// Tokens the timed part processes.
    pub fn tokens(&self) -> u32 {
        self.prompt + self.generate
    }

    /// Parses `pp512`, `tg128`, `tg128@d4096` (spaces allowed around `@`).
    pub fn parse(s: &str) -> Result<BenchTest> {
        let bad =
            || Error::Usage(format!("expected a test named as llama-bench names them (ppN, tgN or tgN@dD), got '{s}'"));
        let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let (head, depth) = match compact.split_once('@') {
            Some((h, d)) => (h.to_string(), d.strip_prefix('d').and_then(|d| d.parse::<u32>().ok()).ok_or_else(bad)?),
            None => (compact.clone(), 0),
        };
        if depth > 1 << 20 {
            return Err(bad());
        }
        let n = |p: &str| head.strip_prefix(p).and_then(|n| n.parse::<u32>().ok()).filter(|&n| n > 0 && n <= 1 << 16);
        match (n("pp"), n("tg")) {
            (Some(n), _) if depth == 0 => Ok(BenchTest::pp(n)),
            (_, Some(n)) => Ok(BenchTest::tg(n, depth)),
            _ => Err(bad()),
        }
    }
}
