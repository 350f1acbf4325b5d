//! Pareto fronts, kept incrementally: a candidate joins unless a member dominates it, and
//! evicts the members it dominates. Fronts of disjoint sets merge into the front of the union,
//! so parallel chunks and shards combine exactly.

use rayon::prelude::*;

/// Objectives per point.
pub const OBJECTIVES: usize = 5;

/// Up to [`OBJECTIVES`] objectives, every one oriented so that larger is better (unused ones
/// equal).
pub trait Objectives {
    fn objectives(&self) -> [f64; OBJECTIVES];
    /// Tie-break for a deterministic order (the candidate index).
    fn key(&self) -> u64;
}

/// `a` dominates `b`: at least as good in every objective, better in one.
pub fn dominates<T: Objectives>(a: &T, b: &T) -> bool {
    dominates_by(&a.objectives(), &b.objectives())
}

#[inline]
fn dominates_by(a: &[f64; OBJECTIVES], b: &[f64; OBJECTIVES]) -> bool {
    // Branch-free over the lanes: the scan over a front is the search's inner loop.
    let no_worse = (a[0] >= b[0]) & (a[1] >= b[1]) & (a[2] >= b[2]) & (a[3] >= b[3]) & (a[4] >= b[4]);
    let better = (a[0] > b[0]) | (a[1] > b[1]) | (a[2] > b[2]) | (a[3] > b[3]) | (a[4] > b[4]);
    no_worse & better
}

/// Members with their objectives stored contiguously beside them, for a tight scan.
#[derive(Debug, Clone)]
pub struct ParetoFront<T> {
    members: Vec<T>,
    objectives: Vec<[f64; OBJECTIVES]>,
}

impl<T> Default for ParetoFront<T> {
    fn default() -> Self {
        ParetoFront { members: Vec::new(), objectives: Vec::new() }
    }
}

impl<T: Objectives> ParetoFront<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes members that already form a front (no two dominate each other), unchecked.
    pub fn from_front(members: Vec<T>) -> Self {
        let objectives = members.iter().map(|m| m.objectives()).collect();
        ParetoFront { members, objectives }
    }

    /// Offers a point; returns whether it joined.
    pub fn insert(&mut self, p: T) -> bool {
        let o = p.objectives();
        if let Some(i) = self.objectives.iter().position(|m| dominates_by(m, &o)) {
            // Move the dominator forward: a few strong members reject most candidates, so
            // finding them first keeps rejection (the common case) short.
            self.members.swap(i, i / 2);
            self.objectives.swap(i, i / 2);
            return false;
        }
        let mut i = 0;
        while i < self.objectives.len() {
            if dominates_by(&o, &self.objectives[i]) {
                self.members.swap_remove(i);
                self.objectives.swap_remove(i);
            } else {
                i += 1;
            }
        }
        self.members.push(p);
        self.objectives.push(o);
        true
    }

    /// The front of the union of two fronts: the members of each that no member of the other
    /// dominates. The two filters are independent, so large merges run them in parallel.
    pub fn merge(&mut self, other: ParetoFront<T>)
    where
        T: Send + Sync,
    {
        let survivors = |mine: &[[f64; OBJECTIVES]], theirs: &[[f64; OBJECTIVES]]| -> Vec<bool> {
            // Only a point at least as good in the first objective can dominate: with the other
            // side sorted by it, each member scans a prefix (half the pairs on average; most
            // members of two fronts survive their merge, and a survivor must check all it scans).
            // NaN sorts last and dominates nothing.
            let key = |t: &[f64; OBJECTIVES]| if t[0].is_nan() { f64::NEG_INFINITY } else { t[0] };
            let mut sorted = theirs.to_vec();
            sorted.sort_unstable_by(|a, b| key(b).total_cmp(&key(a)));
            let sorted = &sorted;
            let alive = |o: &[f64; OBJECTIVES]| {
                let end = sorted.partition_point(|t| t[0] >= o[0]);
                !sorted[..end].iter().any(|t| dominates_by(t, o))
            };
            if mine.len() * theirs.len() > 1 << 16 {
                mine.par_iter().map(alive).collect()
            } else {
                mine.iter().map(alive).collect()
            }
        };
        let keep_self = survivors(&self.objectives, &other.objectives);
        let keep_other = survivors(&other.objectives, &self.objectives);
        let members = std::mem::take(&mut self.members);
        let objectives = std::mem::take(&mut self.objectives);
        let kept = members
            .into_iter()
            .zip(objectives)
            .zip(keep_self)
            .chain(other.members.into_iter().zip(other.objectives).zip(keep_other));
        for ((m, o), keep) in kept {
            if keep {
                self.members.push(m);
                self.objectives.push(o);
            }
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
        fn objectives(&self) -> [f64; OBJECTIVES] {
            [self.1[0], self.1[1], self.1[2], 0.0, 0.0]
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
