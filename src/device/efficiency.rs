//! Efficiency tables: the fraction of a ceiling an operator class attains, as a function of its
//! size, interpolated in log-size (as Calculon does). Compute efficiency is indexed by the
//! operator's FLOPs, memory efficiency by its bytes: a decode GEMV and a prefill GEMM of equal
//! FLOPs sit on opposite sides of the ridge and need different curves.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Memory efficiency may exceed 1: the bandwidth ceiling is main memory's, and operators whose
/// data sits in cache move it faster. Beyond this factor a table is surely wrong.
pub const MAX_CACHE_SPEEDUP: f64 = 64.0;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EfficiencyPoint {
    /// FLOPs (compute curve) or bytes (memory curve) of one launch.
    pub size: f64,
    /// Attained fraction of the ceiling.
    pub efficiency: f64,
}

/// A piecewise log-linear curve; outside its range the nearest point holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct EfficiencyCurve {
    pub points: Vec<EfficiencyPoint>,
}

impl EfficiencyCurve {
    /// The same efficiency at every size.
    pub fn constant(efficiency: f64) -> EfficiencyCurve {
        EfficiencyCurve { points: vec![EfficiencyPoint { size: 1.0, efficiency }] }
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    pub fn at(&self, size: f64) -> f64 {
        let pts = &self.points;
        let Some(first) = pts.first() else { return 1.0 };
        if size <= first.size {
            return first.efficiency;
        }
        let last = pts[pts.len() - 1];
        if size >= last.size {
            return last.efficiency;
        }
        let i = pts.partition_point(|p| p.size <= size);
        let (lo, hi) = (pts[i - 1], pts[i]);
        let f = (size.ln() - lo.size.ln()) / (hi.size.ln() - lo.size.ln());
        lo.efficiency + f * (hi.efficiency - lo.efficiency)
    }

    fn validate(&self, source: &str, field: &str, max: f64) -> Result<()> {
        for (i, p) in self.points.iter().enumerate() {
            let here = format!("{field}.points[{i}]");
            if !(p.size.is_finite() && p.size > 0.0) {
                return Err(Error::field(source, format!("{here}.size"), "a positive size", p.size));
            }
            if !(p.efficiency.is_finite() && p.efficiency > 0.0 && p.efficiency <= max) {
                return Err(Error::field(
                    source,
                    format!("{here}.efficiency"),
                    format!("a number in (0, {max}]"),
                    p.efficiency,
                ));
            }
            if i > 0 && p.size <= self.points[i - 1].size {
                return Err(Error::field(source, format!("{here}.size"), "sizes in increasing order", p.size));
            }
        }
        Ok(())
    }
}

/// Seconds per attention score at one value head size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HeadCost {
    pub value_head: u32,
    pub seconds: f64,
}

/// What a CPU decode kernel pays for the elements of a score's key and value heads past its
/// last whole vector step: llama.cpp's f16 dot product and multiply-add run `step` elements per
/// iteration (32 with AVX2 or NEON, 64 with AVX-512, 128 with AVX-512 FP16) and the rest one at
/// a time, converting each. Measured here (AVX-512 FP16), 64-wide heads cost 85 ns per score and
/// 128-wide ones 21 ns; latent heads of 256 + 32 cost 124 ns where 256 + 64 cost 30 ns
/// (`results/2026-12-07-xeon-attention/`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreTail {
    /// Elements per vector step.
    pub step: u32,
    /// Seconds per key-head element past the last whole step, per score.
    pub key_s: f64,
    /// Seconds per value-head element past the last whole step, per score.
    pub value_s: f64,
}

impl ScoreTail {
    /// Elements of a head of `head` past the last whole step of `step`.
    pub fn past_step(head: u32, step: u32) -> u32 {
        head % step.max(1)
    }

    /// Seconds a score with these head sizes pays for its tails.
    pub fn cost_s(&self, key_head: u32, value_head: u32) -> f64 {
        let past = |head| ScoreTail::past_step(head, self.step) as f64;
        past(key_head) * self.key_s + past(value_head) * self.value_s
    }
}

/// What a compute curve is indexed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ComputeSize {
    /// FLOPs of one launch (kernel-level calibration).
    #[default]
    Flops,
    /// Rows of the product, the tokens it processes: 1 in decode (a GEMV), the prompt in
    /// prefill. Engines pick their kernels by it.
    Rows,
}

/// One operator class's curves; an empty curve means efficiency 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct EfficiencyTable {
    /// Fraction of peak FLOP/s, by FLOPs (or by rows, see `compute_by`).
    #[serde(default)]
    pub compute: EfficiencyCurve,
    #[serde(default, skip_serializing_if = "is_flops")]
    pub compute_by: ComputeSize,
    /// Seconds each attention score costs beyond its FLOPs (the exponential, the running
    /// maximum and the bookkeeping of a softmax computed one score at a time, as CPU kernels
    /// do); 0 where calibration found none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub score_s: f64,
    /// The same, measured per value head size (takes precedence; the nearest size measured
    /// applies to others).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub score_s_by_value_head: Vec<HeadCost>,
    /// Seconds each score pays for its heads' elements past the kernel's last whole vector
    /// step (see [`ScoreTail`]); absent where calibration found none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_tail: Option<ScoreTail>,
    /// Seconds per byte of KV cache a score reads, added to each score's cost: an engine that
    /// walks the cache once per query head (llama.cpp's CPU decode kernel) reads a KV row per
    /// score under MHA, a group's share of one under GQA, so a score costs less the larger the
    /// group. 0 where calibration found none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub score_kv_byte_s: f64,
    /// Seconds added to each decode attention score whose KV row lies past `spill_kv_bytes` of
    /// its layer's cache: while a layer's K and V fit in the cache, the query heads of a group
    /// re-read them from there; past it, every head streams its rows from memory with latency
    /// the kernel does not hide. 0 where no fit saw decode at depth (the cost per score is then
    /// the same at every context).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub score_spill_s: f64,
    /// The cache (bytes) one layer's KV cache is compared against for `score_spill_s`: scores
    /// at contexts past `spill_kv_bytes / KV bytes per position of the layer` pay the step. So
    /// head grouping, head size and the KV format move where the step falls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spill_kv_bytes: Option<f64>,
    /// Fraction of main-memory bandwidth, by bytes.
    #[serde(default)]
    pub memory: EfficiencyCurve,
    /// A weight product's seconds per weight byte read past the weight cache (see
    /// `DeviceProfile::weight_cache_bytes`), added to its time: the stall of fetching from
    /// memory what a cached model reads from the cache. 0 where no fit found one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub past_cache_byte_s: f64,
    /// Fraction of peak FLOP/s of a routed expert's product over a prompt (several rows per
    /// expert), where it differs from the type's other products: llama.cpp's CPU `mul_mat_id`
    /// runs row by row dot products (f16, q8_0) where a dense product of the same type runs a
    /// tiled GEMM. Empty where no fit measured one (such products then take `compute`).
    #[serde(default, skip_serializing_if = "EfficiencyCurve::is_empty")]
    pub routed: EfficiencyCurve,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

fn is_flops(k: &ComputeSize) -> bool {
    *k == ComputeSize::Flops
}

impl EfficiencyTable {
    /// Whether every lookup gives the same efficiencies (curves of at most one point), so an
    /// operator's cost over a range of contexts needs no piecewise sum.
    pub fn is_constant(&self) -> bool {
        self.compute.points.len() <= 1 && self.memory.points.len() <= 1
    }

    /// (compute, memory) efficiency for an operator of this size.
    pub fn lookup(&self, flops: f64, bytes: f64) -> (f64, f64) {
        (self.compute.at(flops), self.memory.at(bytes))
    }

    /// Multiplies the seconds each score costs for its own work (the fixed cost, per value head
    /// size, and the tails), not those per byte it reads or past the cache step.
    pub fn scale_score_work_s(&mut self, factor: f64) {
        self.score_s *= factor;
        self.score_s_by_value_head.iter_mut().for_each(|h| h.seconds *= factor);
        if let Some(tail) = self.score_tail.as_mut() {
            (tail.key_s, tail.value_s) = (tail.key_s * factor, tail.value_s * factor);
        }
    }

    /// Seconds per attention score for a key and value head size, reading `kv_bytes_per_score`.
    pub fn score_cost_s(&self, key_head: u32, value_head: u32, kv_bytes_per_score: f64) -> f64 {
        let nearest = self.score_s_by_value_head.iter().min_by(|a, b| {
            let d = |h: &HeadCost| (h.value_head as f64 / value_head.max(1) as f64).ln().abs();
            d(a).total_cmp(&d(b)).then(b.value_head.cmp(&a.value_head))
        });
        let tail = self.score_tail.map_or(0.0, |t| t.cost_s(key_head, value_head));
        nearest.map_or(self.score_s, |h| h.seconds) + tail + self.score_kv_byte_s * kv_bytes_per_score
    }

    /// The context past which a decode attention operator's scores pay `score_spill_s`, for a
    /// layer whose KV cache grows by `kv_bytes_per_position` per position; `None` when the
    /// table has no step (or the operator's cache does not grow).
    pub fn spill_knee(&self, kv_bytes_per_position: f64) -> Option<f64> {
        match self.spill_kv_bytes {
            Some(cache) if self.score_spill_s > 0.0 && kv_bytes_per_position > 0.0 => {
                Some(cache / kv_bytes_per_position)
            }
            _ => None,
        }
    }

    /// The same, for an operator of `rows` rows (used when the curve is indexed by rows).
    pub fn lookup_rows(&self, flops: f64, bytes: f64, rows: f64) -> (f64, f64) {
        let size = match self.compute_by {
            ComputeSize::Flops => flops,
            ComputeSize::Rows => rows,
        };
        (self.compute.at(size), self.memory.at(bytes))
    }

    pub fn validate(&self, source: &str, field: &str) -> Result<()> {
        if !(self.score_s.is_finite() && (0.0..1e-3).contains(&self.score_s)) {
            return Err(Error::field(source, format!("{field}.score_s"), "seconds in [0, 1e-3)", self.score_s));
        }
        for (i, h) in self.score_s_by_value_head.iter().enumerate() {
            if !(h.seconds.is_finite() && (0.0..1e-3).contains(&h.seconds)) {
                let f = format!("{field}.score_s_by_value_head[{i}].seconds");
                return Err(Error::field(source, f, "seconds in [0, 1e-3)", h.seconds));
            }
        }
        if let Some(t) = self.score_tail {
            if !(1..=4096).contains(&t.step) {
                return Err(Error::field(
                    source,
                    format!("{field}.score_tail.step"),
                    "elements from 1 to 4096",
                    t.step,
                ));
            }
            for (name, v) in [("key_s", t.key_s), ("value_s", t.value_s)] {
                if !(v.is_finite() && (0.0..1e-6).contains(&v)) {
                    let f = format!("{field}.score_tail.{name}");
                    return Err(Error::field(source, f, "seconds per element in [0, 1e-6)", v));
                }
            }
        }
        if !(self.score_kv_byte_s.is_finite() && (0.0..1e-6).contains(&self.score_kv_byte_s)) {
            let f = format!("{field}.score_kv_byte_s");
            return Err(Error::field(source, f, "seconds per byte in [0, 1e-6)", self.score_kv_byte_s));
        }
        if !(self.past_cache_byte_s.is_finite() && (0.0..1e-6).contains(&self.past_cache_byte_s)) {
            let f = format!("{field}.past_cache_byte_s");
            return Err(Error::field(source, f, "seconds per byte in [0, 1e-6)", self.past_cache_byte_s));
        }
        if !(self.score_spill_s.is_finite() && (0.0..1e-3).contains(&self.score_spill_s)) {
            let f = format!("{field}.score_spill_s");
            return Err(Error::field(source, f, "seconds in [0, 1e-3)", self.score_spill_s));
        }
        match self.spill_kv_bytes {
            Some(b) if !(b.is_finite() && (1.0..=1e12).contains(&b)) => {
                let f = format!("{field}.spill_kv_bytes");
                return Err(Error::field(source, f, "bytes from 1 to 1e12", b));
            }
            None if self.score_spill_s > 0.0 => {
                let f = format!("{field}.spill_kv_bytes");
                return Err(Error::field(source, f, "the cache size score_spill_s steps at", "nothing"));
            }
            _ => {}
        }
        self.compute.validate(source, &format!("{field}.compute"), 1.0)?;
        self.routed.validate(source, &format!("{field}.routed"), 1.0)?;
        self.memory.validate(source, &format!("{field}.memory"), MAX_CACHE_SPEEDUP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_in_log_size_and_clamps_outside() {
        let c = EfficiencyCurve {
            points: vec![
                EfficiencyPoint { size: 1e3, efficiency: 0.2 },
                EfficiencyPoint { size: 1e5, efficiency: 0.6 },
            ],
        };
        // 1e4 is halfway between 1e3 and 1e5 in log size.
        assert!((c.at(1e4) - 0.4).abs() < 1e-12);
        assert_eq!(c.at(10.0), 0.2);
        assert_eq!(c.at(1e9), 0.6);
        assert_eq!(EfficiencyCurve::default().at(5.0), 1.0);
    }

    #[test]
    fn a_score_pays_for_its_heads_past_the_last_whole_step() {
        let tail = ScoreTail { step: 128, key_s: 1e-10, value_s: 1e-9 };
        // A latent head of 256 + 64 = 320 keys (64 past 256) and 256 values (none past).
        assert!((tail.cost_s(320, 256) - 64.0 * 1e-10).abs() < 1e-20);
        // Heads of 64: all 64 keys and 64 values one at a time.
        assert!((tail.cost_s(64, 64) - (64.0 * 1e-10 + 64.0 * 1e-9)).abs() < 1e-20);
        let table =
            EfficiencyTable { score_s: 2e-8, score_tail: Some(tail), score_kv_byte_s: 1e-11, ..Default::default() };
        // 2e-8 + 32 x 1e-10 + 96 x 1e-9 + 100 B x 1e-11 (keys 160 = 128 + 32, values 224 = 128 + 96).
        assert!((table.score_cost_s(160, 224, 100.0) - (2e-8 + 32e-10 + 96e-9 + 1e-9)).abs() < 1e-18);
        for (t, field) in [
            (ScoreTail { step: 0, ..tail }, "score_tail.step"),
            (ScoreTail { value_s: -1e-9, ..tail }, "score_tail.value_s"),
            (ScoreTail { key_s: f64::NAN, ..tail }, "score_tail.key_s"),
        ] {
            let table = EfficiencyTable { score_tail: Some(t), ..Default::default() };
            let e = table.validate("p.json", "efficiency.decode_attention").unwrap_err().to_string();
            assert!(e.contains(&format!("efficiency.decode_attention.{field}")) && !e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn a_cache_step_is_checked_in_one_line_naming_file_and_field() {
        let step =
            |s: f64, b: Option<f64>| EfficiencyTable { score_spill_s: s, spill_kv_bytes: b, ..Default::default() };
        assert!(step(0.0, None).validate("p.json", "efficiency.decode_attention").is_ok());
        assert!(step(2e-8, Some(1048576.0)).validate("p.json", "efficiency.decode_attention").is_ok());
        for (t, field) in [
            (step(2e-8, None), "spill_kv_bytes"),
            (step(2e-8, Some(0.0)), "spill_kv_bytes"),
            (step(-1.0, Some(1e6)), "score_spill_s"),
            (step(f64::NAN, Some(1e6)), "score_spill_s"),
        ] {
            let e = t.validate("p.json", "efficiency.decode_attention").unwrap_err().to_string();
            assert!(e.contains("p.json") && e.contains(&format!("efficiency.decode_attention.{field}")), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
        // The knee: a 1 MiB cache over 768 B per position.
        assert_eq!(step(1e-9, Some(1048576.0)).spill_knee(768.0), Some(1048576.0 / 768.0));
        assert_eq!(step(0.0, Some(1048576.0)).spill_knee(768.0), None);
    }
}
