//! Pareto fronts, kept incrementally: a candidate joins unless a member dominates it, and
//! evicts the members it dominates. Fronts of disjoint sets merge into the front of the union,
//! so parallel chunks and shards combine exactly.

/// Objectives, every one oriented so that larger is better.
pub trait Objectives {
    const N: usize;
    fn objective(&self, k: usize) -> f64;
    /// Tie-break for a deterministic order (the candidate index).
    fn key(&self) -> u64;
}

/// `a` dominates `b`: at least as good in every objective, better in one.
pub fn dominates<T: Objectives>(a: &T, b: &T) -> bool {
    let mut better = false;
    for k in 0..T::N {
        let (x, y) = (a.objective(k), b.objective(k));
        if x < y {
            return false;
        }
        better |= x > y;
    }
    better
}

#[derive(Debug, Clone)]
pub struct ParetoFront<T> {
    members: Vec<T>,
}

impl<T> Default for ParetoFront<T> {
    fn default() -> Self {
        ParetoFront { members: Vec::new() }
    }
}

impl<T: Objectives> ParetoFront<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Offers a point; returns whether it joined.
    pub fn insert(&mut self, p: T) -> bool {
        if self.members.iter().any(|m| dominates(m, &p)) {
            return false;
        }
        self.members.retain(|m| !dominates(&p, m));
        self.members.push(p);
        true
    }

    pub fn merge(&mut self, other: ParetoFront<T>) {
        for p in other.members {
            self.insert(p);
        }
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Members sorted by key: the same order whatever order they arrived in.
    pub fn into_sorted(mut self) -> Vec<T> {
        self.members.sort_by_key(|m| m.key());
        self.members
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.members.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone, PartialEq)]
    struct P(u64, [f64; 3]);

    impl Objectives for P {
        const N: usize = 3;
        fn objective(&self, k: usize) -> f64 {
            self.1[k]
        }
        fn key(&self) -> u64 {
            self.0
        }
    }

    /// O(n^2): a point is on the front when no other point dominates it.
    fn brute(points: &[P]) -> Vec<P> {
        let mut v: Vec<P> = points.iter().filter(|p| !points.iter().any(|q| dominates(q, p))).cloned().collect();
        v.sort_by_key(|p| p.0);
        v
    }

    proptest! {
        #[test]
        fn incremental_front_equals_brute_force(raw in prop::collection::vec((0u8..6, 0u8..6, 0u8..6), 0..200), split in 0usize..200) {
            // Small integer grids make ties and duplicates common.
            let points: Vec<P> = raw.iter().enumerate().map(|(i, &(a, b, c))| P(i as u64, [a as f64, b as f64, c as f64])).collect();
            let mut f = ParetoFront::new();
            for p in points.clone() { f.insert(p); }
            prop_assert_eq!(f.into_sorted(), brute(&points));
            // Two halves merged give the same front.
            let cut = split.min(points.len());
            let (mut a, mut b) = (ParetoFront::new(), ParetoFront::new());
            for p in &points[..cut] { a.insert(p.clone()); }
            for p in &points[cut..] { b.insert(p.clone()); }
            a.merge(b);
            prop_assert_eq!(a.into_sorted(), brute(&points));
        }
    }
}
