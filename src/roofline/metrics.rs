//! Workload points on a roofline and the paper's Relative Inference Potential.

use serde::{Deserialize, Serialize};

/// Work, traffic and time of a phase or scenario.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Point {
    pub flops: f64,
    pub bytes: f64,
    pub time_s: f64,
}

impl Point {
    pub fn intensity_flop_per_byte(&self) -> f64 {
        self.flops / self.bytes
    }

    /// Attained performance, FLOP/s.
    pub fn performance_flop_per_s(&self) -> f64 {
        self.flops / self.time_s
    }

    pub fn add(&mut self, o: Point) {
        self.flops += o.flops;
        self.bytes += o.bytes;
        self.time_s += o.time_s;
    }
}

/// Which side of the ridge a point sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bound {
    Memory,
    Compute,
}

impl Bound {
    pub fn name(self) -> &'static str {
        match self {
            Bound::Memory => "memory",
            Bound::Compute => "compute",
        }
    }
}

/// A roof: peak compute `pi` and bandwidth `beta`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Roof {
    pub peak_flop_per_s: f64,
    pub bandwidth_bytes_per_s: f64,
}

impl Roof {
    /// The roof `device` offers a run of `settings`: the peak of the format it computes in, and
    /// its memory bandwidth.
    pub fn of(device: &crate::device::DeviceProfile, settings: &crate::workload::RunSettings) -> Roof {
        Roof {
            peak_flop_per_s: device.peak_flops(settings.precisions.compute()),
            bandwidth_bytes_per_s: device.bandwidth_bytes_per_s,
        }
    }

    pub fn ridge_flop_per_byte(&self) -> f64 {
        self.peak_flop_per_s / self.bandwidth_bytes_per_s
    }

    /// `min(pi, I * beta)`.
    pub fn attainable_flop_per_s(&self, intensity: f64) -> f64 {
        self.peak_flop_per_s.min(intensity * self.bandwidth_bytes_per_s)
    }
}

/// Where a point stands against the ridge (arXiv 2602.11506, eq. 6-7) and against its roof.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Potential {
    pub bound: Bound,
    /// Headroom to the ridge in FLOP/s, as the paper defines it (smaller is better).
    pub phi_paper: f64,
    /// The same distance on the log-log plot, in decades.
    pub phi_log: f64,
    /// `10^-phi_log`, in (0, 1]: 1 at the ridge.
    pub rip: f64,
    /// `P / min(pi, I * beta)`: how close the point is to the roof at its own intensity.
    pub attainment: f64,
}

pub fn potential(p: &Point, roof: &Roof) -> Potential {
    let (ip, pp) = (p.intensity_flop_per_byte(), p.performance_flop_per_s());
    let (ir, pi) = (roof.ridge_flop_per_byte(), roof.peak_flop_per_s);
    let (bound, phi_paper, phi_log) = if ip < ir {
        let (di, dp) = ((ir / ip).log10(), (pi / pp).log10());
        (Bound::Memory, ((ir - ip).powi(2) + (pi - pp).powi(2)).sqrt(), (di * di + dp * dp).sqrt())
    } else {
        (Bound::Compute, pi - pp, (pi / pp).log10())
    };
    Potential { bound, phi_paper, phi_log, rip: 10f64.powf(-phi_log), attainment: pp / roof.attainable_flop_per_s(ip) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOF: Roof = Roof { peak_flop_per_s: 100.0, bandwidth_bytes_per_s: 10.0 }; // ridge at 10

    #[test]
    fn a_point_on_the_ridge_has_full_potential() {
        let p = Point { flops: 1000.0, bytes: 100.0, time_s: 10.0 }; // I = 10, P = 100
        let m = potential(&p, &ROOF);
        assert!(m.phi_log.abs() < 1e-12 && (m.rip - 1.0).abs() < 1e-12 && m.phi_paper.abs() < 1e-12);
    }

    #[test]
    fn compute_bound_rip_is_the_fraction_of_peak() {
        let p = Point { flops: 1000.0, bytes: 10.0, time_s: 40.0 }; // I = 100, P = 25
        let m = potential(&p, &ROOF);
        assert_eq!(m.bound, Bound::Compute);
        assert!((m.rip - 0.25).abs() < 1e-12);
        assert!((m.phi_paper - 75.0).abs() < 1e-12);
        assert!((m.attainment - 0.25).abs() < 1e-12);
    }

    #[test]
    fn memory_bound_distance_is_euclidean_in_both_spaces() {
        // I = 1 (one decade left of the ridge), P = 10 (one decade below the peak), on the roof.
        let p = Point { flops: 100.0, bytes: 100.0, time_s: 10.0 };
        let m = potential(&p, &ROOF);
        assert_eq!(m.bound, Bound::Memory);
        assert!((m.phi_log - 2f64.sqrt()).abs() < 1e-12);
        assert!((m.phi_paper - (81.0f64 + 8100.0).sqrt()).abs() < 1e-9);
        assert!((m.attainment - 1.0).abs() < 1e-12);
    }
}
