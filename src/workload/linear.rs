//! `base + per_ctx * n`: a quantity that grows linearly with the decode context `n`.

use std::ops::{Add, Mul};

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Linear {
    pub base: f64,
    pub per_ctx: f64,
}

impl Linear {
    pub const ZERO: Linear = Linear { base: 0.0, per_ctx: 0.0 };

    pub const fn constant(base: f64) -> Linear {
        Linear { base, per_ctx: 0.0 }
    }

    /// The context itself: `n`.
    pub const fn context() -> Linear {
        Linear { base: 0.0, per_ctx: 1.0 }
    }

    pub fn at(self, n: f64) -> f64 {
        self.base + self.per_ctx * n
    }

    /// Sum of `at(n)` for integer `n` in `first..=last`, in closed form.
    pub fn sum(self, first: f64, last: f64) -> f64 {
        let count = last - first + 1.0;
        if count <= 0.0 {
            return 0.0;
        }
        count * self.base + self.per_ctx * (first + last) * count / 2.0
    }
}

impl Add for Linear {
    type Output = Linear;
    fn add(self, o: Linear) -> Linear {
        Linear { base: self.base + o.base, per_ctx: self.per_ctx + o.per_ctx }
    }
}

impl Mul<f64> for Linear {
    type Output = Linear;
    fn mul(self, k: f64) -> Linear {
        Linear { base: self.base * k, per_ctx: self.per_ctx * k }
    }
}
