//! Consistent hashing on a ring of virtual nodes (ketama style), for `consistent_hash`.
//!
//! Each backend owns points on a 64-bit ring at `hash_key("<id>#<n>")` for `n` in
//! `0..vnodes`; a key belongs to the first point at or after it, wrapping around. A pick walks
//! clockwise from there to the first point whose backend has weight above 0, so the keys of an
//! unusable backend go to its ring successors and no other key moves; when it returns, exactly
//! those keys come back. Keys hash evenly (see [`super::hash_key`]), so removing one of `N`
//! equal backends moves about `1/N` of the keys.
//!
//! Virtual nodes per backend, for configured weight `w`, smallest positive weight `w_min` and
//! weight sum `W`: `max(MIN_VNODES, min(VNODES_PER_UNIT * w / w_min, MAX_POINTS * w / W))`,
//! and none for `w = 0` (such a backend is never picked). So the lightest backend gets 160
//! points and the others proportionally more, unless the ring would exceed 65 536 points, in
//! which case every backend scales down uniformly but keeps at least 40 (with extreme weight
//! ratios the lightest backends are then over-represented). The ring never holds more than
//! `MAX_POINTS + MIN_VNODES * backends` points. Raising one backend's weight adds points for it
//! and leaves the others' in place, so only keys moving to that backend change owner.
//!
//! The ring depends only on the ids and weights: every worker and process run builds the
//! same one. Built once per pool (allocates); picks do not allocate.

use std::time::Instant;

use super::{Balancer, Candidate, hash_key};

/// Virtual nodes of the lightest backend when the ring is not capped.
pub const VNODES_PER_UNIT: u64 = 160;
/// Virtual nodes of a backend with weight above 0, at least.
pub const MIN_VNODES: u64 = 40;
/// The ring's size before the per-backend minimum (the cap on proportional points).
pub const MAX_POINTS: u64 = 65_536;

/// A consistent-hash ring; see the module documentation.
#[derive(Debug)]
pub struct HashRing {
    /// Ring positions, ascending.
    points: Box<[u64]>,
    /// The backend index owning each point, parallel to `points`.
    owners: Box<[u32]>,
}

impl HashRing {
    /// Builds the ring for backends named `ids` with configured `weights` (parallel to `ids`;
    /// a missing entry counts as 1). At most `u32::MAX` backends are placed.
    pub fn new(ids: &[String], weights: &[u32]) -> Self {
        let weight = |i: usize| u64::from(weights.get(i).copied().unwrap_or(1));
        let n = ids.len().min(u32::MAX as usize);
        let sum: u64 = (0..n).map(weight).sum();
        let min = (0..n).map(weight).filter(|&w| w > 0).min().unwrap_or(1);
        let mut ring: Vec<(u64, u32)> = Vec::new();
        let mut name = String::new();
        for (i, id) in ids.iter().enumerate().take(n) {
            let w = weight(i);
            if w == 0 {
                continue;
            }
            let vnodes = (VNODES_PER_UNIT * w / min)
                .min(MAX_POINTS * w / sum)
                .max(MIN_VNODES);
            let owner = u32::try_from(i).unwrap_or(u32::MAX);
            for v in 0..vnodes {
                name.clear();
                name.push_str(id);
                name.push('#');
                name.push_str(&v.to_string());
                ring.push((hash_key(name.as_bytes()), owner));
            }
        }
        // Equal positions (vanishingly rare) are ordered by owner, so the ring is deterministic.
        ring.sort_unstable();
        Self {
            points: ring.iter().map(|&(p, _)| p).collect(),
            owners: ring.iter().map(|&(_, o)| o).collect(),
        }
    }

    /// How many points backend `i` owns.
    pub fn vnodes(&self, i: usize) -> usize {
        self.owners.iter().filter(|&&o| o as usize == i).count()
    }

    /// The number of points on the ring.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether the ring has no point (no backend, or every weight 0).
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

impl Balancer for HashRing {
    /// Walks clockwise from `key` to the first point of a usable backend: O(log points) plus
    /// the points of unusable backends passed over (all of them if no backend on the ring is
    /// usable, hence the quick check first).
    fn pick(&self, candidates: &[Candidate], key: u64, _now: Instant) -> Option<usize> {
        if !candidates.iter().any(|c| c.weight > 0) {
            return None;
        }
        let len = self.points.len();
        let start = self.points.partition_point(|&p| p < key);
        (start..len)
            .chain(0..start)
            .map(|j| self.owners[j] as usize)
            .find(|&i| candidates.get(i).is_some_and(|c| c.weight > 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::{PolicyKind, build, candidates};

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.0.0.{i}:80")).collect()
    }

    fn keys(n: u64) -> impl Iterator<Item = u64> {
        (0..n).map(|k| hash_key(&k.to_le_bytes()))
    }

    fn owners(p: &dyn Balancer, c: &[Candidate], n: u64) -> Vec<usize> {
        let now = Instant::now();
        keys(n).map(|k| p.pick(c, k, now).unwrap()).collect()
    }

    #[test]
    fn every_worker_builds_the_same_ring() {
        let a = build(PolicyKind::ConsistentHash, &ids(10), &[1; 10], 1);
        let b = build(PolicyKind::ConsistentHash, &ids(10), &[1; 10], 2);
        let c = candidates(&[100; 10]);
        assert_eq!(owners(&*a, &c, 10_000), owners(&*b, &c, 10_000));
        // And from one process run to the next: owners pinned (checked against an independent
        // implementation of the ring).
        let now = Instant::now();
        assert_eq!(a.pick(&c, hash_key(b"203.0.113.9"), now), Some(0));
        assert_eq!(a.pick(&c, 0, now), Some(7));
        assert_eq!(
            a.pick(&c, u64::MAX, now),
            Some(7),
            "wraps to the first point"
        );
    }

    #[test]
    fn removing_one_of_ten_moves_only_its_keys() {
        let ring = HashRing::new(&ids(10), &[1; 10]);
        let all = candidates(&[100; 10]);
        let mut one_down = all.clone();
        one_down[3].weight = 0;
        let before = owners(&ring, &all, 100_000);
        let after = owners(&ring, &one_down, 100_000);
        let mut moved = 0;
        for (b, a) in before.iter().zip(&after) {
            if b != a {
                assert_eq!(*b, 3, "a key of backend {b} moved to {a}");
                moved += 1;
            } else {
                assert_ne!(*a, 3);
            }
        }
        let fraction = f64::from(moved) / 100_000.0;
        assert!((0.06..0.14).contains(&fraction), "{fraction}");
        // Its keys spread over its ring successors, not onto one backend.
        let heirs = (0..10)
            .filter(|&i| (0..100_000).any(|k| before[k] == 3 && after[k] == i))
            .count();
        assert!(heirs >= 7, "{heirs} heirs");
        // Back up: every key returns.
        assert_eq!(owners(&ring, &all, 100_000), before);
    }

    #[test]
    fn a_heavier_weight_takes_keys_only_toward_itself() {
        let even = HashRing::new(&ids(4), &[1, 1, 1, 1]);
        let heavy = HashRing::new(&ids(4), &[1, 1, 1, 2]);
        assert_eq!(heavy.vnodes(3), 320);
        assert_eq!(heavy.vnodes(0), 160);
        let c = candidates(&[100; 4]);
        let before = owners(&even, &c, 100_000);
        let after = owners(&heavy, &c, 100_000);
        for (b, a) in before.iter().zip(&after) {
            assert!(b == a || *a == 3, "a key moved from {b} to {a}");
        }
        let share = |o: &[usize], i| o.iter().filter(|&&x| x == i).count() as f64 / 100_000.0;
        assert!(
            (share(&before, 3) - 0.25).abs() < 0.04,
            "{}",
            share(&before, 3)
        );
        assert!(
            (share(&after, 3) - 0.4).abs() < 0.04,
            "{}",
            share(&after, 3)
        );
    }

    #[test]
    fn virtual_nodes_follow_weights_within_bounds() {
        let ring = HashRing::new(&ids(3), &[2, 4, 6]);
        assert_eq!(
            (ring.vnodes(0), ring.vnodes(1), ring.vnodes(2)),
            (160, 320, 480)
        );
        assert_eq!(ring.len(), 960);
        // Capped: 65 536 points shared 1:1000.
        let ring = HashRing::new(&ids(2), &[1, 1000]);
        assert_eq!((ring.vnodes(0), ring.vnodes(1)), (65, 65_470));
        // Beyond the cap's resolution the lightest keeps its minimum.
        let ring = HashRing::new(&ids(2), &[1, 1_000_000]);
        assert_eq!((ring.vnodes(0), ring.vnodes(1)), (40, 65_535));
        // Weight 0: no point, never picked; a missing weight counts as 1.
        let ring = HashRing::new(&ids(3), &[0, 3]);
        assert_eq!(
            (ring.vnodes(0), ring.vnodes(1), ring.vnodes(2)),
            (0, 480, 160)
        );
        let picked = owners(&ring, &candidates(&[100, 100, 100]), 10_000);
        assert!(!picked.contains(&0));
        assert!(HashRing::new(&ids(2), &[0, 0]).is_empty());
    }

    #[test]
    fn backends_missing_from_the_candidates_are_passed_over() {
        let ring = HashRing::new(&ids(3), &[1, 1, 1]);
        let now = Instant::now();
        let c = candidates(&[100, 100]);
        assert!(keys(10_000).all(|k| ring.pick(&c, k, now).is_some_and(|i| i < 2)));
        let empty = HashRing::new(&[], &[]);
        assert_eq!(empty.pick(&c, 5, now), None);
    }
}
