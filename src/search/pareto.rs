//! Pareto fronts, kept incrementally: a candidate joins unless a member dominates it, and
//! evicts the members it dominates. Fronts of disjoint sets merge into the front of the union,
//! so parallel chunks and shards combine exactly.
//!
//! A large search's front holds tens of thousands of members and is offered millions of
//! candidates, so members sit in buckets of neighbours in arrival order (the space's order, so
//! a bucket's candidates are alike) with the bounding box of their objectives: a candidate
//! skips every bucket whose box can neither dominate it nor be dominated by it.

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
    // Branch-free over the lanes.
    let no_worse = (a[0] >= b[0]) & (a[1] >= b[1]) & (a[2] >= b[2]) & (a[3] >= b[3]) & (a[4] >= b[4]);
    let better = (a[0] > b[0]) | (a[1] > b[1]) | (a[2] > b[2]) | (a[3] > b[3]) | (a[4] > b[4]);
    no_worse & better
}

/// Members per bucket: large enough that boxes are few, small enough that they stay tight.
const BUCKET: usize = 64;

/// Neighbouring members with their objectives and the box that bounds them (it may be loose
/// after an eviction, never too tight). NaN objectives are left out of the box: a point with one
/// dominates nothing and nothing dominates it.
#[derive(Debug, Clone)]
struct Bucket<T> {
    members: Vec<T>,
    objectives: Vec<[f64; OBJECTIVES]>,
    lo: [f64; OBJECTIVES],
    hi: [f64; OBJECTIVES],
}

impl<T> Bucket<T> {
    fn new() -> Self {
        Bucket {
            members: Vec::with_capacity(BUCKET),
            objectives: Vec::with_capacity(BUCKET),
            lo: [f64::INFINITY; OBJECTIVES],
            hi: [f64::NEG_INFINITY; OBJECTIVES],
        }
    }

    fn push(&mut self, p: T, o: [f64; OBJECTIVES]) {
        for (k, &v) in o.iter().enumerate() {
            self.lo[k] = self.lo[k].min(v);
            self.hi[k] = self.hi[k].max(v);
        }
        self.members.push(p);
        self.objectives.push(o);
    }

    /// Some member may dominate `o`.
    fn may_dominate(&self, o: &[f64; OBJECTIVES]) -> bool {
        (0..OBJECTIVES).all(|k| self.hi[k] >= o[k])
    }

    /// `o` may dominate some member.
    fn may_be_dominated(&self, o: &[f64; OBJECTIVES]) -> bool {
        (0..OBJECTIVES).all(|k| o[k] >= self.lo[k])
    }

    /// Drops the members `o` dominates; returns how many.
    fn evict(&mut self, o: &[f64; OBJECTIVES]) -> usize {
        let mut i = 0;
        let before = self.members.len();
        while i < self.objectives.len() {
            if dominates_by(o, &self.objectives[i]) {
                self.members.swap_remove(i);
                self.objectives.swap_remove(i);
            } else {
                i += 1;
            }
        }
        before - self.members.len()
    }
}

/// Recent dominators remembered, checked before any bucket.
const ELITE: usize = 8;

/// A Pareto front: buckets in arrival order.
#[derive(Debug, Clone)]
pub struct ParetoFront<T> {
    buckets: Vec<Bucket<T>>,
    len: usize,
    /// The objectives of the members that last rejected a candidate: a few strong members
    /// reject most candidates. A remembered point may since have been evicted; whatever evicted
    /// it dominates what it dominates, so it still rejects exactly.
    elite: [[f64; OBJECTIVES]; ELITE],
    /// Where the next dominator found goes in `elite` (round robin).
    next_elite: usize,
    /// Members at the last repacking.
    packed_len: usize,
}

impl<T> Default for ParetoFront<T> {
    fn default() -> Self {
        // NaN dominates nothing: empty slots reject nothing.
        ParetoFront {
            buckets: Vec::new(),
            len: 0,
            elite: [[f64::NAN; OBJECTIVES]; ELITE],
            next_elite: 0,
            packed_len: 0,
        }
    }
}

impl<T: Objectives> ParetoFront<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes members that already form a front (no two dominate each other), unchecked.
    pub fn from_front(members: Vec<T>) -> Self {
        let mut front = Self::new();
        for m in members {
            let o = m.objectives();
            front.push(m, o);
        }
        front
    }

    fn push(&mut self, p: T, o: [f64; OBJECTIVES]) {
        if self.buckets.last().is_none_or(|b| b.members.len() == BUCKET) {
            self.buckets.push(Bucket::new());
        }
        self.buckets.last_mut().expect("just ensured").push(p, o);
        self.len += 1;
    }

    /// Offers a point; returns whether it joined.
    pub fn insert(&mut self, p: T) -> bool {
        let o = p.objectives();
        if self.elite.iter().any(|e| dominates_by(e, &o)) {
            return false;
        }
        // Newest buckets first: the candidates just scored are the likeliest to dominate this
        // one. A member that `o` dominates means no member dominates `o` (it would dominate
        // that member too): from then on only evictions are left to find.
        let mut evicted = 0;
        for b in self.buckets.iter_mut().rev() {
            if evicted == 0 && b.may_dominate(&o) {
                if let Some(m) = b.objectives.iter().find(|m| dominates_by(m, &o)) {
                    self.elite[self.next_elite] = *m;
                    self.next_elite = (self.next_elite + 1) % ELITE;
                    return false;
                }
            }
            if b.may_be_dominated(&o) {
                evicted += b.evict(&o);
            }
        }
        if evicted > 0 {
            self.len -= evicted;
            self.buckets.retain(|b| !b.members.is_empty());
        }
        self.push(p, o);
        if self.len > 2 * self.packed_len.max(BUCKET) || self.len * 4 < self.buckets.len() * BUCKET {
            self.repack();
        }
        true
    }

    /// Repacks once the front has doubled since it was last packed, or its buckets are mostly
    /// empty. Sort-tile packing: members sorted by one objective into slabs, each slab sorted by
    /// another and cut into buckets, so each box is narrow in both (and in what correlates with
    /// them). Parameters and then decode speed, which split a search's front best of the pairs
    /// tried (it cut the members compared by two thirds on the ten-million space); the front
    /// stays exact with any order.
    fn repack(&mut self) {
        const FIRST: usize = 1;
        const SECOND: usize = 2;
        let mut all: Vec<(T, [f64; OBJECTIVES])> = std::mem::take(&mut self.buckets)
            .into_iter()
            .flat_map(|b| b.members.into_iter().zip(b.objectives))
            .collect();
        all.sort_by(|a, b| a.1[FIRST].total_cmp(&b.1[FIRST]));
        let buckets = all.len().div_ceil(BUCKET);
        let slab = buckets.div_ceil((buckets as f64).sqrt().ceil().max(1.0) as usize).max(1) * BUCKET;
        for s in all.chunks_mut(slab) {
            s.sort_by(|a, b| a.1[SECOND].total_cmp(&b.1[SECOND]));
        }
        self.len = 0;
        for (m, o) in all {
            self.push(m, o);
        }
        self.packed_len = self.len;
    }

    /// The front of the union of two fronts (each already a front): the smaller one's members
    /// offered to the larger.
    pub fn merge(&mut self, mut other: ParetoFront<T>) {
        if other.len > self.len {
            std::mem::swap(self, &mut other);
        }
        for b in other.buckets {
            for m in b.members {
                self.insert(m);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Members sorted by key: the same order whatever order they arrived in.
    pub fn into_sorted(self) -> Vec<T> {
        let mut members: Vec<T> = self.buckets.into_iter().flat_map(|b| b.members).collect();
        members.sort_by_key(|m| m.key());
        members
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.buckets.iter().flat_map(|b| b.members.iter())
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

        /// Fronts of hundreds of members (points near a plane trade one objective for another),
        /// so buckets fill, evict and repack; NaN objectives mixed in.
        #[test]
        fn large_fronts_equal_brute_force(raw in prop::collection::vec((0u32..1000, 0u32..1000, 0u8..20), 0..1500), split in 0usize..1500) {
            let points: Vec<P> = raw.iter().enumerate().map(|(i, &(a, b, noise))| {
                let c = if noise == 0 { f64::NAN } else { 2000.0 - a as f64 - b as f64 - noise as f64 };
                P(i as u64, [a as f64, b as f64, c])
            }).collect();
            let mut f = ParetoFront::new();
            for p in points.clone() { f.insert(p); }
            // By index: NaN objectives make the points themselves unequal to their copies.
            let keys = |v: Vec<P>| v.iter().map(|p| p.0).collect::<Vec<_>>();
            let want = keys(brute(&points));
            prop_assert_eq!(f.len(), want.len());
            prop_assert_eq!(keys(f.into_sorted()), want.clone());
            let cut = split.min(points.len());
            let (mut a, mut b) = (ParetoFront::new(), ParetoFront::new());
            for p in &points[cut..] { a.insert(p.clone()); }
            for p in &points[..cut] { b.insert(p.clone()); }
            a.merge(b);
            prop_assert_eq!(keys(a.into_sorted()), want);
        }
    }
}
