//! Power of two choices over peak-EWMA latency, for `peak_ewma` (Finagle's and linkerd's
//! "peak EWMA" load estimate).
//!
//! A pick draws two distinct usable backends at random, each with probability proportional to
//! its weight (only one usable: that one), and takes the one with the lower cost
//! `latency x (in_flight + 1) / weight` (ties: the first drawn). Costs are compared by
//! cross-multiplication, so a weight never divides.
//!
//! The latency estimate of each backend, with `tau` the decay time (10 s from [`super::build`]):
//! - Until a backend's first observation its estimate is [`DEFAULT_LATENCY`] (1 ms), constant,
//!   so new backends are tried; the first observation replaces it.
//! - An observation above the estimate replaces it at once (the peak): one slow response is
//!   enough to steer traffic away.
//! - An observation at or below the estimate moves it toward the observation by the time since
//!   the estimate was last updated: `e := e * w + rtt * (1 - w)`, `w = exp(-elapsed / tau)`.
//! - When the backend is drawn at pick time, its estimate first decays toward 0 for the time
//!   since its last update, `e := e * exp(-elapsed / tau)`, and is stored with the pick's time.
//!   A backend that was slow and gets no traffic thus becomes worth trying again: from 100 ms,
//!   it is back to 1 ms after `tau * ln(100)`, 46 s for tau = 10 s; if it is still slow, its
//!   next response raises the estimate again at once.
//!
//! Deterministic: given the seed, the candidates and the injected times, picks are reproducible.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use super::{Balancer, Candidate, SeededRng, weighted_pick};

/// The latency estimate of a backend never observed.
pub const DEFAULT_LATENCY: Duration = Duration::from_millis(1);

/// The decay time [`super::build`] uses.
pub const DEFAULT_TAU: Duration = Duration::from_secs(10);

/// One backend's latency estimate.
#[derive(Clone, Copy, Debug)]
struct Estimate {
    /// The estimate, in nanoseconds.
    nanos: f64,
    /// When it was last updated; `None` until the first observation.
    at: Option<Instant>,
}

impl Default for Estimate {
    fn default() -> Self {
        Self {
            nanos: DEFAULT_LATENCY.as_nanos() as f64,
            at: None,
        }
    }
}

impl Estimate {
    /// `exp(-elapsed / tau)` for the time since the last update (0 if the clock went back).
    fn weight(&self, now: Instant, tau_nanos: f64) -> f64 {
        match self.at {
            Some(at) => (-(now.saturating_duration_since(at).as_nanos() as f64) / tau_nanos).exp(),
            None => 1.0,
        }
    }

    /// The estimate decayed toward 0 up to `now` (unchanged before the first observation).
    fn decayed(&self, now: Instant, tau_nanos: f64) -> f64 {
        self.nanos * self.weight(now, tau_nanos)
    }

    /// Decays the estimate up to `now` and stamps it (pick time).
    fn decay(&mut self, now: Instant, tau_nanos: f64) {
        if self.at.is_some() {
            self.nanos = self.decayed(now, tau_nanos);
            self.at = Some(now);
        }
    }

    /// Learns from one response latency.
    fn observe(&mut self, rtt_nanos: f64, now: Instant, tau_nanos: f64) {
        if self.at.is_none() || rtt_nanos > self.nanos {
            self.nanos = rtt_nanos;
        } else {
            let w = self.weight(now, tau_nanos);
            self.nanos = self.nanos * w + rtt_nanos * (1.0 - w);
        }
        self.at = Some(now);
    }
}

/// Power of two choices over peak-EWMA latency; see the module documentation.
#[derive(Debug)]
pub struct PeakEwma {
    /// One estimate per backend, grown at pick time if the pool is larger than announced.
    estimates: RefCell<Vec<Estimate>>,
    /// The decay time in nanoseconds (at least 1).
    tau_nanos: f64,
    rng: SeededRng,
}

impl PeakEwma {
    /// A policy for a pool of `backends` backends with decay time `tau` (a zero `tau` counts
    /// as 1 ns) drawing from a generator seeded with `seed`.
    pub fn new(backends: usize, tau: Duration, seed: u64) -> Self {
        Self {
            estimates: RefCell::new(vec![Estimate::default(); backends]),
            tau_nanos: (tau.as_nanos() as f64).max(1.0),
            rng: SeededRng::new(seed),
        }
    }

    /// Backend `i`'s latency estimate as of `now` (decayed, without storing the decay), rounded
    /// to the nanosecond; [`DEFAULT_LATENCY`] for a backend never observed.
    pub fn estimate(&self, i: usize, now: Instant) -> Duration {
        let e = self.estimates.borrow().get(i).copied().unwrap_or_default();
        Duration::from_nanos(e.decayed(now, self.tau_nanos).round() as u64)
    }

    /// Decays backend `i`'s estimate to `now` and returns `latency x (in_flight + 1)`.
    fn load(&self, estimates: &mut [Estimate], i: usize, c: Candidate, now: Instant) -> f64 {
        let e = &mut estimates[i];
        e.decay(now, self.tau_nanos);
        e.nanos * (f64::from(c.in_flight) + 1.0)
    }
}

impl Balancer for PeakEwma {
    fn pick(&self, candidates: &[Candidate], _key: u64, now: Instant) -> Option<usize> {
        let a = weighted_pick(candidates, &self.rng, None)?;
        let Some(b) = weighted_pick(candidates, &self.rng, Some(a)) else {
            return Some(a);
        };
        let mut estimates = self.estimates.borrow_mut();
        if estimates.len() < candidates.len() {
            estimates.resize(candidates.len(), Estimate::default());
        }
        let (ca, cb) = (candidates[a], candidates[b]);
        let load_a = self.load(&mut estimates, a, ca, now);
        let load_b = self.load(&mut estimates, b, cb, now);
        // load_b / w_b < load_a / w_a
        if load_b * f64::from(ca.weight) < load_a * f64::from(cb.weight) {
            Some(b)
        } else {
            Some(a)
        }
    }

    fn wants_latency(&self) -> bool {
        true
    }

    fn observe(&self, i: usize, latency: Duration, now: Instant) {
        // An index the policy has never been offered names no backend: nothing to learn.
        if let Some(e) = self.estimates.borrow_mut().get_mut(i) {
            e.observe(latency.as_nanos() as f64, now, self.tau_nanos);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::candidates;

    const MS: Duration = Duration::from_millis(1);
    const SLOW: Duration = Duration::from_millis(100);

    fn nanos(d: Duration) -> f64 {
        d.as_nanos() as f64
    }

    #[test]
    fn a_backend_never_observed_is_at_the_default() {
        let p = PeakEwma::new(2, DEFAULT_TAU, 1);
        let t0 = Instant::now();
        assert_eq!(p.estimate(0, t0), MS);
        assert_eq!(p.estimate(1, t0 + Duration::from_secs(100)), MS, "no decay");
        assert_eq!(p.estimate(9, t0), MS, "unknown index");
        // The first observation replaces the default, even a lower one.
        p.observe(0, Duration::from_micros(200), t0);
        assert_eq!(p.estimate(0, t0), Duration::from_micros(200));
        // An index never offered is ignored.
        p.observe(9, SLOW, t0);
        assert_eq!(p.estimate(9, t0), MS);
    }

    #[test]
    fn one_slow_response_raises_the_estimate_at_once() {
        let p = PeakEwma::new(1, DEFAULT_TAU, 1);
        let t0 = Instant::now();
        p.observe(0, MS, t0);
        p.observe(0, SLOW, t0 + Duration::from_secs(1));
        assert_eq!(p.estimate(0, t0 + Duration::from_secs(1)), SLOW);
    }

    #[test]
    fn a_faster_response_moves_the_estimate_by_elapsed_time() {
        let p = PeakEwma::new(1, DEFAULT_TAU, 1);
        let t0 = Instant::now();
        p.observe(0, SLOW, t0);
        // One tau later: w = e^-1.
        let t1 = t0 + DEFAULT_TAU;
        p.observe(0, MS, t1);
        let w = (-1.0f64).exp();
        let expected = nanos(SLOW) * w + nanos(MS) * (1.0 - w);
        assert_eq!(
            p.estimate(0, t1),
            Duration::from_nanos(expected.round() as u64)
        );
        assert_eq!(p.estimate(0, t1), Duration::from_nanos(37_420_065));
    }

    #[test]
    fn an_idle_estimate_decays_toward_zero() {
        let p = PeakEwma::new(1, DEFAULT_TAU, 1);
        let t0 = Instant::now();
        p.observe(0, SLOW, t0);
        assert_eq!(
            p.estimate(0, t0 + DEFAULT_TAU),
            Duration::from_nanos(36_787_944)
        );
        // Back to the default after tau * ln(100).
        let back = Duration::from_secs_f64(DEFAULT_TAU.as_secs_f64() * 100f64.ln());
        assert_eq!(p.estimate(0, t0 + back), MS);
        // A clock going back does not raise it.
        assert_eq!(p.estimate(0, t0 - Duration::from_secs(1)), SLOW);
    }

    #[test]
    fn a_slow_backend_loses_every_draw() {
        let p = PeakEwma::new(3, DEFAULT_TAU, 3);
        let t0 = Instant::now();
        p.observe(0, SLOW, t0);
        p.observe(1, MS, t0);
        p.observe(2, MS, t0);
        let c = candidates(&[100, 100, 100]);
        let mut counts = [0usize; 3];
        for _ in 0..1000 {
            counts[p.pick(&c, 0, t0).unwrap()] += 1;
        }
        // The two draws are distinct, so backend 0 always meets a fast one.
        assert_eq!(counts[0], 0);
        assert!(counts[1] > 400 && counts[2] > 400, "{counts:?}");
    }

    #[test]
    fn in_flight_and_weight_scale_the_cost() {
        let p = PeakEwma::new(2, DEFAULT_TAU, 3);
        let t0 = Instant::now();
        // Same latency (the default): one request in flight doubles backend 0's cost.
        let c = [
            Candidate {
                weight: 100,
                in_flight: 1,
            },
            Candidate {
                weight: 100,
                in_flight: 0,
            },
        ];
        assert!((0..100).all(|_| p.pick(&c, 0, t0) == Some(1)));
        // Twice the weight: half the cost.
        let c = candidates(&[200, 100]);
        assert!((0..100).all(|_| p.pick(&c, 0, t0) == Some(0)));
    }

    /// Ticks of 100 ms, one request per tick answered at once; backend 0 answers in `slow(t)`,
    /// the others in 1 ms. Returns the ticks at which backend 0 was picked.
    fn simulate(ticks: u32, slow: impl Fn(u32) -> Duration) -> Vec<u32> {
        let p = PeakEwma::new(3, DEFAULT_TAU, 17);
        let t0 = Instant::now();
        p.observe(0, SLOW, t0);
        let c = candidates(&[100, 100, 100]);
        let mut slow_picks = Vec::new();
        for tick in 1..=ticks {
            let now = t0 + Duration::from_millis(100) * tick;
            let i = p.pick(&c, 0, now).unwrap();
            let latency = if i == 0 { slow(tick) } else { MS };
            if i == 0 {
                slow_picks.push(tick);
            }
            p.observe(i, latency, now + latency);
        }
        slow_picks
    }

    #[test]
    fn a_slow_backend_is_retried_after_its_estimate_decays() {
        // Still slow: retried once its 100 ms has decayed below the fast backends' ~1 ms,
        // tau * ln(100) = 46.05 s after its last response (plus the ticks until it is drawn
        // against a fast backend whose estimate has not decayed much), and raised at once.
        let picks = simulate(2000, |_| SLOW);
        assert_eq!(picks.len(), 4, "{picks:?}");
        let mut last = 0;
        for &tick in &picks {
            let gap = tick - last;
            assert!(
                (461..=470).contains(&gap),
                "gap of {gap} ticks in {picks:?}"
            );
            last = tick;
        }
    }

    #[test]
    fn a_recovered_backend_gets_its_share_back() {
        // Fast from 10 s on: found again at its first retry, then one pick in three.
        let picks = simulate(1000, |tick| if tick < 100 { SLOW } else { MS });
        let first = picks[0];
        assert!((461..=470).contains(&first), "{picks:?}");
        let after = picks.len() - 1;
        let share = after as f64 / f64::from(1000 - first);
        assert!((0.28..0.39).contains(&share), "{share} {picks:?}");
    }
}
