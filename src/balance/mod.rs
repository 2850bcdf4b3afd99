//! Sans-IO balancing policies.
//!
//! Owns the choice of a backend for a request. A policy sees only backend indexes and whether
//! each one may be used; it does no I/O and keeps its state per worker (`Cell`, not atomics), so
//! each worker balances on its own view of the pool.
//!
//! Invariant: `pick` returns an index below the pool size for which `usable` is true, or `None`
//! when no backend can be used.

#![forbid(unsafe_code)]

use std::cell::Cell;

/// A balancing policy over the backends of one pool.
pub trait Balancer {
    /// Picks a backend among `len` backends, skipping those for which `usable(i)` is false.
    fn pick(&self, len: usize, usable: &dyn Fn(usize) -> bool) -> Option<usize>;
}

/// Round robin: each pick starts one past the previous one.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: Cell<usize>,
}

impl RoundRobin {
    /// A round robin that starts at backend `start` (workers start at different offsets so
    /// that their first requests do not all go to backend 0).
    pub fn starting_at(start: usize) -> Self {
        Self {
            next: Cell::new(start),
        }
    }
}

impl Balancer for RoundRobin {
    fn pick(&self, len: usize, usable: &dyn Fn(usize) -> bool) -> Option<usize> {
        if len == 0 {
            return None;
        }
        let start = self.next.get() % len;
        for step in 0..len {
            let i = (start + step) % len;
            if usable(i) {
                self.next.set(i + 1);
                return Some(i);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternates() {
        let rr = RoundRobin::default();
        let picks: Vec<_> = (0..6).map(|_| rr.pick(3, &|_| true).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn skips_unusable() {
        let rr = RoundRobin::default();
        let picks: Vec<_> = (0..4).map(|_| rr.pick(3, &|i| i != 1).unwrap()).collect();
        assert_eq!(picks, [0, 2, 0, 2]);
    }

    #[test]
    fn none_when_nothing_usable() {
        let rr = RoundRobin::starting_at(5);
        assert_eq!(rr.pick(3, &|_| false), None);
        assert_eq!(rr.pick(0, &|_| true), None);
    }
}
