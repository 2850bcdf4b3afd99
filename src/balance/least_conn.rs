//! Least connections, for `least_connections`.
//!
//! Picks the usable backend with the lowest `(in_flight + 1) / weight`: the load it would carry
//! per unit of weight with this request added. Costs are compared by cross-multiplication in
//! `u64` (`(a + 1) * w_b < (b + 1) * w_a`), exact for every `u32` input, no floats. Ties go to
//! the first backend in rotation order starting one past the previous pick, so equal backends
//! alternate instead of the lowest index taking every tie.
//!
//! Note the `+ 1`: with nothing in flight anywhere, a heavier backend costs less, so a worker
//! whose requests never overlap sends them all to the heaviest backend; weights spread load
//! once requests are concurrent. With equal weights, ties rotate.

use std::cell::Cell;
use std::time::Instant;

use super::{Balancer, Candidate, rotated};

/// Least requests in flight per unit of weight; see the module documentation.
#[derive(Debug)]
pub struct LeastConnections {
    /// Where the next tie-break starts (taken modulo the pool size).
    next: Cell<usize>,
}

impl LeastConnections {
    /// A policy whose first tie-break starts at backend `start` (taken modulo the pool size).
    pub fn new(start: usize) -> Self {
        Self {
            next: Cell::new(start),
        }
    }
}

impl Balancer for LeastConnections {
    fn pick(&self, candidates: &[Candidate], _key: u64, _now: Instant) -> Option<usize> {
        let n = candidates.len();
        if n == 0 {
            return None;
        }
        // (index, in_flight + 1, weight) of the cheapest so far.
        let mut best: Option<(usize, u64, u64)> = None;
        for i in rotated(self.next.get() % n, n) {
            let c = candidates[i];
            if c.weight == 0 {
                continue;
            }
            let load = u64::from(c.in_flight) + 1;
            let weight = u64::from(c.weight);
            if best
                .is_none_or(|(_, best_load, best_weight)| load * best_weight < best_load * weight)
            {
                best = Some((i, load, weight));
            }
        }
        let (i, _, _) = best?;
        self.next.set(i + 1);
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::candidates;

    fn with_in_flight(weights: &[u32], in_flight: &[u32]) -> Vec<Candidate> {
        weights
            .iter()
            .zip(in_flight)
            .map(|(&weight, &in_flight)| Candidate { weight, in_flight })
            .collect()
    }

    fn run(p: &LeastConnections, c: &[Candidate], n: usize) -> Vec<usize> {
        let now = Instant::now();
        (0..n).map(|_| p.pick(c, 0, now).unwrap()).collect()
    }

    #[test]
    fn ties_rotate() {
        let p = LeastConnections::new(0);
        assert_eq!(
            run(&p, &candidates(&[100, 100, 100]), 6),
            [0, 1, 2, 0, 1, 2]
        );
        // (1 + 1) / 2 = (1 + 1) / 2 = (0 + 1) / 1: a three-way tie, compared exactly.
        let c = with_in_flight(&[2, 2, 1], &[1, 1, 0]);
        assert_eq!(run(&LeastConnections::new(1), &c, 4), [1, 2, 0, 1]);
    }

    #[test]
    fn fewest_in_flight_per_weight_wins() {
        let p = LeastConnections::new(0);
        let picks = run(&p, &with_in_flight(&[100, 100, 100], &[4, 0, 0]), 1000);
        let counts: Vec<usize> = (0..3)
            .map(|i| picks.iter().filter(|&&p| p == i).count())
            .collect();
        assert_eq!(counts, [0, 500, 500]);
        // 3 / 300 = 1 / 100: a tie, taken in turn; 4 / 300 > 1 / 100.
        let p = LeastConnections::new(0);
        assert_eq!(run(&p, &with_in_flight(&[300, 100], &[2, 0]), 2), [0, 1]);
        assert_eq!(run(&p, &with_in_flight(&[300, 100], &[3, 0]), 2), [1, 1]);
        // Extreme values do not overflow the u64 products.
        let c = with_in_flight(&[u32::MAX, 1], &[u32::MAX, 0]);
        assert_eq!(run(&p, &c, 1), [1]);
    }

    #[test]
    fn a_slow_backend_gets_few_requests() {
        // One request per tick. Backends 1 and 2 answer before the next tick; backend 0 holds
        // each request for 10 ticks. It is picked only when it has nothing in flight and the
        // rotation reaches it: once per 11 ticks instead of once per 3.
        let p = LeastConnections::new(0);
        let mut in_flight = [0u32; 3];
        let mut done_at: Vec<usize> = Vec::new();
        let mut counts = [0usize; 3];
        for tick in 0..1100 {
            in_flight[0] -= done_at.iter().filter(|&&t| t == tick).count() as u32;
            let c = with_in_flight(&[100, 100, 100], &in_flight);
            let i = p.pick(&c, 0, Instant::now()).unwrap();
            counts[i] += 1;
            if i == 0 {
                in_flight[0] += 1;
                done_at.push(tick + 10);
            }
        }
        assert_eq!(counts, [100, 500, 500]);
    }
}
