//! Smooth weighted round robin (nginx's algorithm), for `round_robin` and
//! `weighted_round_robin`.
//!
//! Each backend has a running score `current`. A pick adds every usable backend's effective
//! weight to its score, chooses the highest score (ties: the first in rotation order from the
//! policy's start offset) and subtracts the sum of all scores from the chosen one, so the
//! scores of the pool always sum to 0 after a pick. With equal weights this is a strict
//! rotation; 5:1:1 gives `a a b a c a a`, spreading the heavy backend's turns instead of
//! sending it five requests in a row. Weights are read at each pick, so slow-start ramps take
//! effect at once.
//!
//! A backend with weight 0 is skipped and loses any credit it had (a positive score is reset
//! to 0), so it cannot burst when it returns; it keeps a debt (a negative score), so a backend
//! left out for one pick only, e.g. already tried for this request, is not picked again sooner
//! than its share. Subtracting the sum of all scores rather than the total weight hands any
//! credit dropped that way back to the pool: the scores keep summing to 0, so none drifts
//! however often weights change (a test flapping weights at random stays within one total
//! weight).

use std::cell::RefCell;
use std::time::Instant;

use super::{Balancer, Candidate, rotated};

/// Smooth weighted round robin; see the module documentation.
#[derive(Debug)]
pub struct SmoothWeighted {
    /// One score per backend, resized (and reset) if the pool size changes.
    current: RefCell<Vec<i64>>,
    /// Where ties are broken from: the first pick of an equal-weight pool goes to this backend.
    start: usize,
}

impl SmoothWeighted {
    /// A policy for a pool of `backends` backends whose rotation starts at backend `start`
    /// (taken modulo the pool size).
    pub fn new(backends: usize, start: usize) -> Self {
        Self {
            current: RefCell::new(vec![0; backends]),
            start,
        }
    }
}

impl Balancer for SmoothWeighted {
    fn pick(&self, candidates: &[Candidate], _key: u64, _now: Instant) -> Option<usize> {
        let n = candidates.len();
        if n == 0 {
            return None;
        }
        let mut current = self.current.borrow_mut();
        if current.len() != n {
            current.clear();
            current.resize(n, 0);
        }
        let mut best: Option<(usize, i64)> = None;
        let mut sum: i64 = 0;
        for i in rotated(self.start % n, n) {
            let score = &mut current[i];
            let weight = candidates[i].weight;
            if weight == 0 {
                *score = (*score).min(0);
            } else {
                *score += i64::from(weight);
                if best.is_none_or(|(_, s)| *score > s) {
                    best = Some((i, *score));
                }
            }
            sum += *score;
        }
        let (i, _) = best?;
        current[i] -= sum;
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::candidates;

    fn run(p: &SmoothWeighted, c: &[Candidate], picks: usize) -> Vec<usize> {
        let now = Instant::now();
        (0..picks).map(|_| p.pick(c, 0, now).unwrap()).collect()
    }

    fn counts(picks: &[usize], n: usize) -> Vec<usize> {
        (0..n)
            .map(|i| picks.iter().filter(|&&p| p == i).count())
            .collect()
    }

    #[test]
    fn equal_weights_rotate_from_the_start_offset() {
        let c = candidates(&[100, 100, 100]);
        assert_eq!(
            run(&SmoothWeighted::new(3, 0), &c, 7),
            [0, 1, 2, 0, 1, 2, 0]
        );
        assert_eq!(
            run(&SmoothWeighted::new(3, 1), &c, 7),
            [1, 2, 0, 1, 2, 0, 1]
        );
        assert_eq!(run(&SmoothWeighted::new(3, 5), &c, 4), [2, 0, 1, 2]);
    }

    #[test]
    fn five_one_one_interleaves() {
        let p = SmoothWeighted::new(3, 0);
        let c = candidates(&[5, 1, 1]);
        assert_eq!(run(&p, &c, 7), [0, 0, 1, 0, 2, 0, 0]);
        // The scores are back to 0 after each period of 7: the same sequence repeats.
        let picks = run(&p, &c, 700);
        assert_eq!(counts(&picks, 3), [500, 100, 100]);
        assert_eq!(picks[..7], [0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(*p.current.borrow(), [0, 0, 0]);
    }

    #[test]
    fn zero_weight_is_skipped() {
        let p = SmoothWeighted::new(3, 0);
        assert_eq!(run(&p, &candidates(&[1, 0, 1]), 4), [0, 2, 0, 2]);
        assert_eq!(run(&p, &candidates(&[0, 0, 0]), 0), [0usize; 0]);
        assert_eq!(p.pick(&candidates(&[0, 0, 0]), 0, Instant::now()), None);
        assert_eq!(p.pick(&[], 0, Instant::now()), None);
    }

    #[test]
    fn an_excluded_backend_keeps_its_debt() {
        // Backend 0 is picked, then left out of the retry of the same request: it is not
        // picked again before the others have had their turn.
        let p = SmoothWeighted::new(3, 0);
        let all = candidates(&[1, 1, 1]);
        assert_eq!(p.pick(&all, 0, Instant::now()), Some(0));
        assert_eq!(p.pick(&candidates(&[0, 1, 1]), 0, Instant::now()), Some(1));
        assert_eq!(run(&p, &all, 4), [2, 1, 2, 0]);
    }

    #[test]
    fn a_returning_backend_does_not_burst() {
        // 5:1:1; backend 1 goes down just before its turn, when it holds credit (score 2).
        let p = SmoothWeighted::new(3, 0);
        let all = candidates(&[5, 1, 1]);
        assert_eq!(run(&p, &all, 2), [0, 0]);
        assert_eq!(p.current.borrow()[1], 2);
        let down = run(&p, &candidates(&[5, 0, 1]), 60);
        // 5:1 to within one pick (backend 2 started with credit 2).
        assert_eq!(counts(&down, 3), [49, 0, 11]);
        assert_eq!(p.current.borrow()[1], 0, "credit dropped");
        let back = run(&p, &all, 70);
        assert_eq!(counts(&back, 3), [50, 10, 10]);
        assert!(back.windows(2).all(|w| w != [1, 1]), "{back:?}");
        // It rejoins the regular 5:1:1 pattern at once: one turn per 7 picks.
        assert_eq!(back[..14], [0, 0, 0, 1, 0, 0, 2, 0, 0, 0, 1, 0, 0, 2]);
    }

    #[test]
    fn slow_start_ramp_is_followed_pick_by_pick() {
        // Backend 1 ramps from 10 to 100 (per mille of 100) in steps of 10 every 20 picks:
        // over each step it gets its share w / (100 + w), to within one pick.
        let p = SmoothWeighted::new(2, 0);
        let mut got = 0usize;
        let mut expected = 0.0f64;
        for w in (10..=100).step_by(10) {
            let picks = run(&p, &candidates(&[100, w]), 20);
            got += counts(&picks, 2)[1];
            expected += 20.0 * f64::from(w) / f64::from(100 + w);
            assert!(
                (got as f64 - expected).abs() <= 1.0,
                "w {w}: {got} vs {expected}"
            );
        }
        assert_eq!(got, 66);
        // At equal weights: strict alternation.
        let picks = run(&p, &candidates(&[100, 100]), 6);
        assert!(picks.windows(2).all(|w| w[0] != w[1]), "{picks:?}");
    }

    #[test]
    fn scores_stay_bounded_while_weights_flap() {
        let mut rng = fastrand::Rng::with_seed(5);
        let p = SmoothWeighted::new(5, 0);
        let now = Instant::now();
        let mut worst = 0i64;
        for _ in 0..100_000 {
            let c: Vec<Candidate> = (0..5)
                .map(|_| Candidate {
                    weight: if rng.bool() { 0 } else { rng.u32(1..=1000) },
                    in_flight: 0,
                })
                .collect();
            if p.pick(&c, 0, now).is_some() {
                let current = p.current.borrow();
                assert_eq!(current.iter().sum::<i64>(), 0);
                worst = worst.max(current.iter().map(|s| s.abs()).max().unwrap());
            }
        }
        // Within one total weight (at most 5000); this seed's worst is 3437.
        assert!(worst <= 5000, "worst score {worst}");
    }

    #[test]
    fn a_pool_size_change_resets_the_scores() {
        let p = SmoothWeighted::new(2, 0);
        assert_eq!(run(&p, &candidates(&[3, 1]), 1), [0]);
        assert_eq!(run(&p, &candidates(&[1, 1, 1]), 3), [0, 1, 2]);
    }
}
