//! Pareto fronts, kept incrementally: a candidate joins unless a member dominates it, and
//! evicts the members it dominates. Fronts of disjoint sets merge into the front of the union,
//! so parallel chunks and shards combine exactly.
//!
//! A large search's front holds tens of thousands of members and is offered millions of
//! candidates, so members sit in a tree of boxes that bound their objectives: a candidate skips
//! every subtree whose box can neither dominate it nor be dominated by it.

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

/// Members a leaf holds before it splits.
const LEAF: usize = 24;
/// Children a leaf splits into.
const FANOUT: usize = 6;
/// Recent dominators remembered, checked before the tree.
const ELITE: usize = 32;

/// A node of the tree: the box that bounds its members' objectives (it may be loose after an
/// eviction, never too tight), and either members (a leaf) or children. NaN objectives never
/// enter the tree: a point with one dominates nothing and nothing dominates it.
#[derive(Debug, Clone)]
struct Node<T> {
    lo: [f64; OBJECTIVES],
    hi: [f64; OBJECTIVES],
    children: Vec<usize>,
    members: Vec<(T, [f64; OBJECTIVES])>,
}

impl<T> Node<T> {
    fn leaf() -> Self {
        Node {
            lo: [f64::INFINITY; OBJECTIVES],
            hi: [f64::NEG_INFINITY; OBJECTIVES],
            children: Vec::new(),
            members: Vec::new(),
        }
    }

    fn grow(&mut self, o: &[f64; OBJECTIVES]) {
        for (k, &v) in o.iter().enumerate() {
            self.lo[k] = self.lo[k].min(v);
            self.hi[k] = self.hi[k].max(v);
        }
    }

    /// Grows the box to hold `other`'s.
    fn grow_box(&mut self, other: &Node<T>) {
        for k in 0..OBJECTIVES {
            self.lo[k] = self.lo[k].min(other.lo[k]);
            self.hi[k] = self.hi[k].max(other.hi[k]);
        }
    }

    /// Shrinks a leaf's box to the members it holds.
    fn fit_members(&mut self) {
        (self.lo, self.hi) = ([f64::INFINITY; OBJECTIVES], [f64::NEG_INFINITY; OBJECTIVES]);
        for k in 0..self.members.len() {
            let o = self.members[k].1;
            self.grow(&o);
        }
    }
}

/// What looking for a point's dominator found.
enum Found {
    /// A member (or a box whose every member) dominates the point: its objectives as
    /// compared, and a member's own (not a box's).
    Dominated([f64; OBJECTIVES], Option<[f64; OBJECTIVES]>),
    /// A thinned front's member shares the point's boxes: its leaf and place there.
    SameBox(usize, usize),
}

/// A Pareto front: an ND-tree (Jaszkiewicz and Lust, IEEE TEC 2018) of its members. A search's
/// front holds tens of thousands of members in five objectives and is offered millions of
/// candidates; the tree's boxes let an offer skip every subtree that can neither dominate the
/// candidate nor be dominated by it, whatever order candidates arrive in.
#[derive(Debug, Clone)]
pub struct ParetoFront<T> {
    /// Arena of nodes; `root` indexes it, freed slots are reused.
    nodes: Vec<Node<T>>,
    free: Vec<usize>,
    root: Option<usize>,
    /// Members with a NaN objective: on the front, compared with nothing.
    incomparable: Vec<T>,
    len: usize,
    /// The objectives of what last rejected a candidate: a few strong members reject most
    /// candidates. A remembered point may since have been evicted; whatever evicted it
    /// dominates what it dominates, so it still rejects exactly.
    elite: [[f64; OBJECTIVES]; ELITE],
    /// Where the next dominator found goes in `elite` (round robin).
    next_elite: usize,
    /// A thinned front's recent dominating members' own objectives, the last to reject first
    /// (a candidate's neighbours are mostly rejected by the same few), checked before a
    /// candidate's boxes are worked out (five logarithms). A member that dominates a point
    /// rejects it: its boxes dominate the point's, or share them and it is kept first (see
    /// [`keeps_first`]); whatever evicts it since does the same (it dominates the member's
    /// boxes, or shares them and is kept first: the order is total).
    raw_elite: [[f64; OBJECTIVES]; ELITE],
    /// Thinned: members compared by their boxes of this relative width (see [`boxes_of`]).
    resolution: Option<f64>,
}

/// An objective's box of relative width `resolution`: its logarithm (of the magnitude, the
/// sign kept so that larger stays better) in steps of `ln(1 + resolution)`, rounded down.
/// Each objective keeps one sign over a space (rates, sizes and losses are positive; memory
/// and loss enter negated), which is where the boxes are ordered as the values are.
fn box_of(v: f64, step: f64) -> f64 {
    if v > 0.0 {
        (v.ln() / step).floor()
    } else if v < 0.0 {
        -((-v).ln() / step).ceil()
    } else if v == 0.0 {
        f64::NEG_INFINITY
    } else {
        v
    }
}

/// The boxes of every objective: a thinned front compares these instead of the objectives.
fn boxes_of(o: &[f64; OBJECTIVES], resolution: f64) -> [f64; OBJECTIVES] {
    let step = resolution.ln_1p();
    o.map(|v| box_of(v, step))
}

/// Of two points in the same box, the one a thinned front keeps: the larger objectives in
/// order (so a point that dominates the other wins), then the smaller key. A total order, so
/// the front kept does not depend on the order points arrive in.
fn keeps_first<T: Objectives>(a: &T, b: &T) -> bool {
    let (x, y) = (a.objectives(), b.objectives());
    for k in 0..OBJECTIVES {
        match x[k].total_cmp(&y[k]) {
            std::cmp::Ordering::Greater => return true,
            std::cmp::Ordering::Less => return false,
            std::cmp::Ordering::Equal => {}
        }
    }
    a.key() < b.key()
}

impl<T> Default for ParetoFront<T> {
    fn default() -> Self {
        // NaN dominates nothing: empty slots reject nothing.
        ParetoFront {
            nodes: Vec::new(),
            free: Vec::new(),
            root: None,
            incomparable: Vec::new(),
            len: 0,
            elite: [[f64::NAN; OBJECTIVES]; ELITE],
            next_elite: 0,
            raw_elite: [[f64::NAN; OBJECTIVES]; ELITE],
            resolution: None,
        }
    }
}

impl<T: Objectives> ParetoFront<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// A thinned front (an epsilon-Pareto archive, Laumanns et al. 2002): each objective's
    /// range is cut into boxes `resolution` wide relative to the value, a point joins unless a
    /// member's boxes dominate its boxes, and a box holds one member, the one
    /// [`keeps_first`]. Its size is bounded by the boxes, not by the space; with `None`, the
    /// exact front.
    pub fn with_resolution(resolution: Option<f64>) -> Self {
        ParetoFront { resolution, ..Self::default() }
    }

    pub fn resolution(&self) -> Option<f64> {
        self.resolution
    }

    /// What members are compared by: their objectives, or their boxes when thinned.
    fn compared(&self, p: &T) -> [f64; OBJECTIVES] {
        let o = p.objectives();
        match self.resolution {
            Some(r) => boxes_of(&o, r),
            None => o,
        }
    }

    /// Takes members that already form a front (no two dominate each other), unchecked.
    pub fn from_front(members: Vec<T>, resolution: Option<f64>) -> Self {
        let mut front = Self::with_resolution(resolution);
        for m in members {
            let o = front.compared(&m);
            front.push(m, o);
        }
        front
    }

    fn alloc(&mut self, node: Node<T>) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.nodes[i] = node;
                i
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        }
    }

    /// Frees a subtree's nodes, returning how many members it held.
    fn release(&mut self, node: usize) -> usize {
        let n = std::mem::replace(&mut self.nodes[node], Node::leaf());
        self.free.push(node);
        n.members.len() + n.children.into_iter().map(|c| self.release(c)).sum::<usize>()
    }

    /// Adds a member no member dominates: into the leaf whose box centre is nearest (in units of
    /// the front's extent per objective), splitting a full leaf.
    fn push(&mut self, p: T, o: [f64; OBJECTIVES]) {
        self.len += 1;
        if o.iter().any(|v| v.is_nan()) {
            self.incomparable.push(p);
            return;
        }
        let Some(mut node) = self.root else {
            let mut leaf = Node::leaf();
            leaf.grow(&o);
            leaf.members.push((p, o));
            self.root = Some(self.alloc(leaf));
            return;
        };
        let root = &self.nodes[node];
        let scale: [f64; OBJECTIVES] = std::array::from_fn(|k| {
            let w = root.hi[k].max(o[k]) - root.lo[k].min(o[k]);
            if w > 0.0 && w.is_finite() {
                1.0 / w
            } else {
                1.0
            }
        });
        loop {
            self.nodes[node].grow(&o);
            if self.nodes[node].children.is_empty() {
                break;
            }
            let distance = |n: &Node<T>| -> f64 {
                (0..OBJECTIVES).map(|k| ((o[k] - 0.5 * (n.lo[k] + n.hi[k])) * scale[k]).powi(2)).sum()
            };
            let children = &self.nodes[node].children;
            node = *children
                .iter()
                .min_by(|&&a, &&b| distance(&self.nodes[a]).total_cmp(&distance(&self.nodes[b])))
                .expect("an inner node has children");
        }
        self.nodes[node].members.push((p, o));
        if self.nodes[node].members.len() > LEAF {
            self.split(node, &scale);
        }
    }

    /// Splits a leaf into [`FANOUT`] leaves around members far apart from each other.
    fn split(&mut self, node: usize, scale: &[f64; OBJECTIVES]) {
        let members = std::mem::take(&mut self.nodes[node].members);
        let d = |a: &[f64; OBJECTIVES], b: &[f64; OBJECTIVES]| -> f64 {
            (0..OBJECTIVES).map(|k| ((a[k] - b[k]) * scale[k]).powi(2)).sum()
        };
        // Seeds: the member farthest from the rest on average, then each time the member
        // farthest on average from the seeds chosen.
        let mut seeds: Vec<usize> = Vec::with_capacity(FANOUT);
        let mean_to = |i: usize, set: &mut dyn Iterator<Item = usize>| -> f64 {
            let (mut sum, mut n) = (0.0f64, 0.0f64);
            for j in set {
                sum += d(&members[i].1, &members[j].1);
                n += 1.0;
            }
            sum / n.max(1.0)
        };
        let first = (0..members.len())
            .max_by(|&a, &b| mean_to(a, &mut (0..members.len())).total_cmp(&mean_to(b, &mut (0..members.len()))))
            .expect("a full leaf");
        seeds.push(first);
        while seeds.len() < FANOUT {
            let next = (0..members.len()).filter(|i| !seeds.contains(i)).max_by(|&a, &b| {
                mean_to(a, &mut seeds.iter().copied()).total_cmp(&mean_to(b, &mut seeds.iter().copied()))
            });
            match next {
                Some(i) => seeds.push(i),
                None => break,
            }
        }
        let mut leaves: Vec<Node<T>> = seeds.iter().map(|_| Node::leaf()).collect();
        for (i, (p, o)) in members.into_iter().enumerate() {
            let at = match seeds.iter().position(|&s| s == i) {
                Some(k) => k,
                None => (0..leaves.len())
                    .min_by(|&a, &b| {
                        let centre =
                            |n: &Node<T>| -> [f64; OBJECTIVES] { std::array::from_fn(|k| 0.5 * (n.lo[k] + n.hi[k])) };
                        d(&o, &centre(&leaves[a])).total_cmp(&d(&o, &centre(&leaves[b])))
                    })
                    .expect("seeds"),
            };
            leaves[at].grow(&o);
            leaves[at].members.push((p, o));
        }
        let children: Vec<usize> = leaves.into_iter().map(|l| self.alloc(l)).collect();
        self.nodes[node].children = children;
    }

    /// Looks in the subtree at `node` for a member that dominates `o`, or (thinned) shares its
    /// boxes. Only subtrees whose box reaches `o` in every objective can hold either.
    fn find(&self, node: usize, o: &[f64; OBJECTIVES], thinned: bool) -> Option<Found> {
        let n = &self.nodes[node];
        if dominates_by(&n.lo, o) {
            return Some(Found::Dominated(n.lo, None));
        }
        if !(0..OBJECTIVES).all(|k| n.hi[k] >= o[k]) {
            return None;
        }
        if n.children.is_empty() {
            return n.members.iter().enumerate().find_map(|(i, (p, m))| {
                if dominates_by(m, o) {
                    Some(Found::Dominated(*m, Some(p.objectives())))
                } else if thinned && m == o {
                    Some(Found::SameBox(node, i))
                } else {
                    None
                }
            });
        }
        n.children.iter().find_map(|&c| self.find(c, o, thinned))
    }

    /// Evicts from the subtree at `node` the members `o` dominates (counting them in
    /// `evicted`); true when the subtree is gone. Only subtrees whose box `o` reaches in every
    /// objective can hold one. The boxes of what is left are shrunk to their members again: a
    /// front kept for a whole search would otherwise keep the boxes of members long gone, and
    /// every offer would search them.
    fn evict(&mut self, node: usize, o: &[f64; OBJECTIVES], evicted: &mut usize) -> bool {
        let (lo, hi) = (self.nodes[node].lo, self.nodes[node].hi);
        if dominates_by(o, &hi) {
            *evicted += self.release(node);
            return true;
        }
        if !(0..OBJECTIVES).all(|k| o[k] >= lo[k]) {
            return false;
        }
        let n = &mut self.nodes[node];
        if n.children.is_empty() {
            let before = n.members.len();
            n.members.retain(|(_, m)| !dominates_by(o, m));
            *evicted += before - n.members.len();
            if !n.members.is_empty() {
                if n.members.len() < before {
                    n.fit_members();
                }
                return false;
            }
            n.lo = [f64::INFINITY; OBJECTIVES];
            n.hi = [f64::NEG_INFINITY; OBJECTIVES];
            self.free.push(node);
            return true;
        }
        let (mut i, before) = (0, *evicted);
        while i < self.nodes[node].children.len() {
            let child = self.nodes[node].children[i];
            if self.evict(child, o, evicted) {
                self.nodes[node].children.swap_remove(i);
            } else {
                i += 1;
            }
        }
        if !self.nodes[node].children.is_empty() {
            if *evicted > before {
                // Shrunk to its children's boxes.
                let mut fitted = Node::leaf();
                for &c in &self.nodes[node].children {
                    fitted.grow_box(&self.nodes[c]);
                }
                (self.nodes[node].lo, self.nodes[node].hi) = (fitted.lo, fitted.hi);
            }
            return false;
        }
        self.nodes[node] = Node::leaf();
        self.free.push(node);
        true
    }

    /// Offers a point; returns whether it joined.
    pub fn insert(&mut self, p: T) -> bool {
        let raw = p.objectives();
        if self.resolution.is_some() {
            if let Some(i) = self.raw_elite.iter().position(|e| dominates_by(e, &raw)) {
                self.raw_elite[..=i].rotate_right(1);
                return false;
            }
        }
        let o = match self.resolution {
            Some(r) => boxes_of(&raw, r),
            None => raw,
        };
        if self.elite.iter().any(|e| dominates_by(e, &o)) {
            return false;
        }
        if let Some(root) = self.root {
            // A point a member dominates dominates no member (that member would dominate it
            // too), so the dominator is looked for first, then what the point evicts.
            match self.find(root, &o, self.resolution.is_some()) {
                Some(Found::Dominated(m, own)) => {
                    self.elite[self.next_elite] = m;
                    self.next_elite = (self.next_elite + 1) % ELITE;
                    if let (Some(own), Some(_)) = (own, self.resolution) {
                        self.raw_elite.rotate_right(1);
                        self.raw_elite[0] = own;
                    }
                    return false;
                }
                Some(Found::SameBox(leaf, i)) => {
                    // One member per box: nothing else can be dominated by, or dominate, it.
                    let kept = &mut self.nodes[leaf].members[i].0;
                    if keeps_first(&p, kept) {
                        *kept = p;
                    }
                    return false;
                }
                None => {}
            }
            let mut evicted = 0;
            if self.evict(root, &o, &mut evicted) {
                self.root = None;
            }
            self.len -= evicted;
        }
        self.push(p, o);
        true
    }

    /// The front of the union of two fronts (each already a front): the smaller one's members
    /// offered to the larger.
    pub fn merge(&mut self, mut other: ParetoFront<T>) {
        if other.len > self.len {
            std::mem::swap(self, &mut other);
        }
        for m in other.into_members() {
            self.insert(m);
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn into_members(mut self) -> Vec<T> {
        let mut out = std::mem::take(&mut self.incomparable);
        let mut stack: Vec<usize> = self.root.into_iter().collect();
        while let Some(n) = stack.pop() {
            let node = std::mem::replace(&mut self.nodes[n], Node::leaf());
            out.extend(node.members.into_iter().map(|(p, _)| p));
            stack.extend(node.children);
        }
        out
    }

    /// Members sorted by key: the same order whatever order they arrived in.
    pub fn into_sorted(self) -> Vec<T> {
        let mut members = self.into_members();
        members.sort_by_key(|m| m.key());
        members
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

    /// O(n^2): a box is kept when no other point's boxes dominate it, and holds its largest
    /// point (objectives in order, then the smaller key).
    fn brute_thinned(points: &[P], resolution: f64) -> Vec<P> {
        let boxes = |p: &P| boxes_of(&p.objectives(), resolution);
        let mut v: Vec<P> = points
            .iter()
            .filter(|p| !points.iter().any(|q| dominates_by(&boxes(q), &boxes(p))))
            .filter(|p| !points.iter().any(|q| q.0 != p.0 && boxes(q) == boxes(p) && keeps_first(q, p)))
            .cloned()
            .collect();
        v.sort_by_key(|p| p.0);
        v
    }

    #[test]
    fn boxes_keep_larger_better_and_are_a_resolution_wide() {
        let step = 0.01f64.ln_1p();
        // Box k holds [1.01^k, 1.01^(k+1)): 1.01^462 is about 98.8.
        let edge = 1.01f64.powi(462);
        assert_eq!(box_of(edge * 1.001, step), 462.0);
        assert_eq!(box_of(edge * 1.009, step), 462.0);
        assert_eq!(box_of(edge * 1.011, step), 463.0);
        // Negated objectives (memory, loss): less negative is a higher box.
        assert!(box_of(-100.0, step) > box_of(-102.0, step));
        assert!(box_of(f64::NAN, step).is_nan());
    }

    proptest! {
        /// A thinned front, offered points in any order and merged from any two halves, is the
        /// one a brute force over boxes gives.
        #[test]
        fn thinned_front_equals_brute_force(raw in prop::collection::vec((1u32..400, 1u32..400, 0u8..20), 0..600), split in 0usize..600) {
            let points: Vec<P> = raw.iter().enumerate().map(|(i, &(a, b, noise))| {
                let c = if noise == 0 { f64::NAN } else { 900.0 - a as f64 - b as f64 - noise as f64 };
                P(i as u64, [a as f64, b as f64, c])
            }).collect();
            let keys = |v: Vec<P>| v.iter().map(|p| p.0).collect::<Vec<_>>();
            let want = keys(brute_thinned(&points, 0.05));
            let mut f = ParetoFront::with_resolution(Some(0.05));
            for p in points.iter().rev() { f.insert(p.clone()); }
            prop_assert_eq!(f.len(), want.len());
            prop_assert_eq!(keys(f.into_sorted()), want.clone());
            let cut = split.min(points.len());
            let (mut a, mut b) = (ParetoFront::with_resolution(Some(0.05)), ParetoFront::with_resolution(Some(0.05)));
            for p in &points[cut..] { a.insert(p.clone()); }
            for p in &points[..cut] { b.insert(p.clone()); }
            a.merge(b);
            prop_assert_eq!(keys(a.into_sorted()), want);
        }

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
