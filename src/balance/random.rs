//! Weighted random choice, for `random`.
//!
//! Each pick chooses a usable backend with probability weight / total weight, from the
//! policy's own seeded generator (so a test, or a worker given the same seed, sees the same
//! sequence). O(n), no allocation.

use std::time::Instant;

use super::{Balancer, Candidate, SeededRng, weighted_pick};

/// Weighted random choice from a seeded generator; see the module documentation.
#[derive(Debug)]
pub struct WeightedRandom {
    rng: SeededRng,
}

impl WeightedRandom {
    /// A policy drawing from a generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: SeededRng::new(seed),
        }
    }
}

impl Balancer for WeightedRandom {
    fn pick(&self, candidates: &[Candidate], _key: u64, _now: Instant) -> Option<usize> {
        weighted_pick(candidates, &self.rng, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::candidates;

    fn picks(p: &WeightedRandom, c: &[Candidate], n: usize) -> Vec<usize> {
        let now = Instant::now();
        (0..n).map(|_| p.pick(c, 0, now).unwrap()).collect()
    }

    #[test]
    fn proportions_follow_weights() {
        let p = WeightedRandom::new(42);
        let c = candidates(&[100, 200, 700, 0]);
        let got = picks(&p, &c, 100_000);
        let share = |i: usize| got.iter().filter(|&&p| p == i).count() as f64 / 100_000.0;
        // Standard deviation of each share is at most 0.0016: 0.01 is over 6 of them.
        for (i, expected) in [(0, 0.1), (1, 0.2), (2, 0.7)] {
            assert!((share(i) - expected).abs() < 0.01, "{i}: {}", share(i));
        }
        assert_eq!(share(3), 0.0);
    }

    #[test]
    fn same_seed_same_sequence() {
        let c = candidates(&[1, 1, 1, 1]);
        let a = picks(&WeightedRandom::new(7), &c, 64);
        assert_eq!(a, picks(&WeightedRandom::new(7), &c, 64));
        assert_ne!(a, picks(&WeightedRandom::new(8), &c, 64));
        // Not stuck: every backend shows up.
        assert!((0..4).all(|i| a.contains(&i)), "{a:?}");
    }
}
