//! Efficiency tables: the fraction of the compute and bandwidth ceilings an operator class
//! attains, as a function of operator size, interpolated in log-size (as Calculon does).

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// What an efficiency table is indexed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableKey {
    /// Total bytes the operator moves.
    Bytes,
    /// Total FLOPs of the operator.
    Flops,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EfficiencyPoint {
    /// Operator size in the table's key unit.
    pub size: f64,
    /// Attained fraction of peak FLOP/s, in (0, 1].
    pub compute: f64,
    /// Attained fraction of peak bandwidth, in (0, 1].
    pub memory: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EfficiencyTable {
    pub key: TableKey,
    /// Points sorted by size; outside their range the nearest point holds.
    pub points: Vec<EfficiencyPoint>,
}

impl EfficiencyTable {
    /// (compute, memory) efficiency for an operator of this size.
    pub fn lookup(&self, flops: f64, bytes: f64) -> (f64, f64) {
        let size = match self.key {
            TableKey::Bytes => bytes,
            TableKey::Flops => flops,
        };
        let pts = &self.points;
        let first = pts[0];
        if size <= first.size {
            return (first.compute, first.memory);
        }
        let last = pts[pts.len() - 1];
        if size >= last.size {
            return (last.compute, last.memory);
        }
        let i = pts.partition_point(|p| p.size <= size);
        let (lo, hi) = (pts[i - 1], pts[i]);
        let f = (size.ln() - lo.size.ln()) / (hi.size.ln() - lo.size.ln());
        (lo.compute + f * (hi.compute - lo.compute), lo.memory + f * (hi.memory - lo.memory))
    }

    pub fn validate(&self, source: &str, field: &str) -> Result<()> {
        if self.points.is_empty() {
            return Err(Error::field(source, format!("{field}.points"), "at least one point", "an empty list"));
        }
        for (i, p) in self.points.iter().enumerate() {
            let here = format!("{field}.points[{i}]");
            if !(p.size.is_finite() && p.size > 0.0) {
                return Err(Error::field(source, format!("{here}.size"), "a positive size", p.size));
            }
            for (name, v) in [("compute", p.compute), ("memory", p.memory)] {
                if !(v.is_finite() && v > 0.0 && v <= 1.0) {
                    return Err(Error::field(source, format!("{here}.{name}"), "a fraction in (0, 1]", v));
                }
            }
            if i > 0 && p.size <= self.points[i - 1].size {
                return Err(Error::field(source, format!("{here}.size"), "sizes in increasing order", p.size));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_in_log_size_and_clamps_outside() {
        let t = EfficiencyTable {
            key: TableKey::Bytes,
            points: vec![
                EfficiencyPoint { size: 1e3, compute: 0.2, memory: 0.1 },
                EfficiencyPoint { size: 1e5, compute: 0.6, memory: 0.9 },
            ],
        };
        // 1e4 is halfway between 1e3 and 1e5 in log size.
        let (c, m) = t.lookup(0.0, 1e4);
        assert!((c - 0.4).abs() < 1e-12 && (m - 0.5).abs() < 1e-12);
        assert_eq!(t.lookup(0.0, 10.0), (0.2, 0.1));
        assert_eq!(t.lookup(0.0, 1e9), (0.6, 0.9));
    }
}
