//! The retry budget of an upstream, per worker.
//!
//! Owns how many retries a worker may add to an upstream's load: retries earn their keep only
//! while most requests succeed; when a whole fleet is slow or failing, retrying every request
//! would double the load on it (a retry storm). As in Envoy's and linkerd's budgets, each
//! request adds [`RetryBudgetPolicy::percent`] % of a retry to the budget and each retry spends a
//! whole one; [`RetryBudgetPolicy::min_per_second`] retries a second are allowed whatever the
//! budget holds, so a quiet upstream can still retry.
//!
//! Invariants: no I/O, no clock read (the caller passes `now`); the saved budget never exceeds
//! [`MAX_SAVED_RETRIES`] retries, so a long quiet period cannot pay for a burst of retries
//! larger than that; a retry is either allowed and paid for, or refused, never both.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// Retries a budget may save up at most.
pub const MAX_SAVED_RETRIES: u32 = 100;

/// The cost of one retry, in the budget's unit (a thousandth of a retry).
const RETRY: u32 = 1000;

/// The window of [`RetryBudgetPolicy::min_per_second`].
const SECOND: Duration = Duration::from_secs(1);

/// How much retrying an upstream allows. TOML: `[upstream.retries]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBudgetPolicy {
    /// Retries as a share of requests, in percent (0 to 100). Default 20.
    pub percent: u32,
    /// Retries allowed each second whatever the budget holds. Default 10.
    pub min_per_second: u32,
}

impl Default for RetryBudgetPolicy {
    fn default() -> Self {
        Self {
            percent: 20,
            min_per_second: 10,
        }
    }
}

/// One worker's retry budget for one upstream.
#[derive(Debug)]
pub struct RetryBudget {
    policy: RetryBudgetPolicy,
    /// Saved retries, in thousandths.
    saved: Cell<u32>,
    /// The start of the current second of the floor, and the retries it allowed so far.
    floor: Cell<Option<(Instant, u32)>>,
}

impl RetryBudget {
    /// An empty budget with `policy`.
    pub fn new(policy: RetryBudgetPolicy) -> Self {
        Self {
            policy,
            saved: Cell::new(0),
            floor: Cell::new(None),
        }
    }

    /// A request started: it adds its share of a retry.
    pub fn deposit(&self) {
        let share = self.policy.percent.min(100) * (RETRY / 100);
        self.saved
            .set((self.saved.get() + share).min(MAX_SAVED_RETRIES * RETRY));
    }

    /// Whether a retry would be allowed at `now`, without spending it.
    pub fn allows(&self, now: Instant) -> bool {
        self.saved.get() >= RETRY || self.floor_used(now) < self.policy.min_per_second
    }

    /// Spends a retry at `now`: true when allowed (the floor first, then the saved budget).
    pub fn withdraw(&self, now: Instant) -> bool {
        let used = self.floor_used(now);
        if used < self.policy.min_per_second {
            let start = self.floor.get().map_or(now, |(start, _)| start);
            self.floor.set(Some((start, used + 1)));
            return true;
        }
        if self.saved.get() >= RETRY {
            self.saved.set(self.saved.get() - RETRY);
            return true;
        }
        false
    }

    /// Retries the floor allowed in the second `now` is in (a new second starts at 0).
    fn floor_used(&self, now: Instant) -> u32 {
        match self.floor.get() {
            Some((start, used)) if now.saturating_duration_since(start) < SECOND => used,
            _ => {
                self.floor.set(Some((now, 0)));
                0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(percent: u32, min_per_second: u32) -> RetryBudget {
        RetryBudget::new(RetryBudgetPolicy {
            percent,
            min_per_second,
        })
    }

    #[test]
    fn retries_are_a_share_of_requests() {
        let b = budget(20, 0);
        let t = Instant::now();
        assert!(!b.allows(t));
        assert!(!b.withdraw(t));
        for _ in 0..100 {
            b.deposit();
        }
        // 100 requests at 20 %: 20 retries, not one more.
        for i in 0..20 {
            assert!(b.allows(t), "{i}");
            assert!(b.withdraw(t), "{i}");
        }
        assert!(!b.allows(t));
        assert!(!b.withdraw(t));
        // Four more requests earn nothing whole; the fifth earns one.
        for _ in 0..4 {
            b.deposit();
        }
        assert!(!b.withdraw(t));
        b.deposit();
        assert!(b.withdraw(t));
    }

    #[test]
    fn a_floor_of_retries_each_second_whatever_the_budget() {
        let b = budget(0, 3);
        let t = Instant::now();
        for _ in 0..3 {
            assert!(b.withdraw(t));
        }
        assert!(!b.allows(t + Duration::from_millis(999)));
        assert!(!b.withdraw(t + Duration::from_millis(999)));
        // A new second.
        assert!(b.allows(t + SECOND));
        assert!(b.withdraw(t + SECOND));
    }

    #[test]
    fn saving_is_capped() {
        let b = budget(100, 0);
        let t = Instant::now();
        for _ in 0..10_000 {
            b.deposit();
        }
        let mut spent = 0;
        while b.withdraw(t) {
            spent += 1;
        }
        assert_eq!(spent, MAX_SAVED_RETRIES);
    }

    #[test]
    fn allowing_does_not_spend() {
        let b = budget(100, 0);
        let t = Instant::now();
        b.deposit();
        assert!(b.allows(t));
        assert!(b.allows(t));
        assert!(b.withdraw(t));
        assert!(!b.allows(t));
    }
}
