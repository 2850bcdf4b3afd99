//! Health state machines: active-check rise/fall ([`RiseFall`]), passive outlier ejection
//! ([`Ejection`]) and the slow-start ramp ([`slow_start_ramp`]).
//!
//! Sans-IO (docs/ARCHITECTURE.md, "Layers"): nothing here touches a socket or reads a clock. Results and the current
//! [`Instant`] come in as arguments, decisions come out, so every rule is a unit test.
//!
//! Who uses what:
//! - [`RiseFall`] is driven by the health thread ([`super::checker`]), one per checked backend;
//!   its transitions are published on the [`super::board::HealthBoard`].
//! - [`Ejection`] is per worker per backend: each worker ejects a backend from its own traffic
//!   after consecutive failures it saw itself, without coordinating with other workers.
//! - [`slow_start_ramp`] scales a returning backend's weight.
//!
//! Invariants:
//! - A state changes only after a full streak: one good check does not bring a down backend
//!   back, one failed request does not eject a healthy one (unless it is on probation).
//! - An ejection always ends: after its backoff, or earlier when an active check passes.
//! - The backoff never exceeds the policy's maximum and restarts from the base after a success.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

/// Rise/fall hysteresis for active checks: `fall` consecutive failures turn a backend down,
/// `rise` consecutive passes turn it up again. Starts up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RiseFall {
    rise: u32,
    fall: u32,
    up: bool,
    /// Consecutive results that disagree with `up`.
    streak: u32,
}

impl RiseFall {
    /// A backend that is up, turning down after `fall` consecutive failures and up after `rise`
    /// consecutive passes. A threshold of 0 is treated as 1.
    pub fn new(rise: u32, fall: u32) -> Self {
        Self {
            rise: rise.max(1),
            fall: fall.max(1),
            up: true,
            streak: 0,
        }
    }

    /// Like [`RiseFall::new`], but starting in state `up` (a health thread restarted by a
    /// reload goes on from the published state).
    pub fn starting(rise: u32, fall: u32, up: bool) -> Self {
        Self {
            up,
            ..Self::new(rise, fall)
        }
    }

    /// The current state.
    #[cfg(test)]
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Feeds one check result. Returns `Some(new_state)` exactly when this result completes the
    /// streak that flips the state; a result that agrees with the state resets the streak.
    pub fn observe(&mut self, ok: bool) -> Option<bool> {
        if ok == self.up {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if ok { self.rise } else { self.fall };
        if self.streak < needed {
            return None;
        }
        self.up = ok;
        self.streak = 0;
        Some(ok)
    }
}

/// Passive outlier detection settings for one pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutlierPolicy {
    /// Consecutive connection failures (connect errors, resets, timeouts) that eject a
    /// backend; 0 turns this detector off.
    pub consecutive_failures: u32,
    /// Consecutive 5xx responses that eject a backend; 0 turns this detector off.
    pub consecutive_5xx: u32,
    /// First ejection length; later ones in a row double, up to `max_ejection`.
    pub base_ejection: Duration,
    /// Longest ejection: the doubling backoff stops here (a `max_ejection` below
    /// `base_ejection` acts as `base_ejection`).
    pub max_ejection: Duration,
    /// The largest share (percent) of an upstream tier one worker ejects at once (see
    /// [`max_ejected`]).
    pub max_ejected_percent: u32,
}

/// What `[upstream.outlier]` is when the configuration says nothing: 5 connection failures in
/// a row eject for 10 s, doubling up to 300 s; 5xx responses do not eject; at most half of a
/// tier at once.
impl Default for OutlierPolicy {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            consecutive_5xx: 0,
            base_ejection: Duration::from_secs(10),
            max_ejection: Duration::from_secs(300),
            max_ejected_percent: 50,
        }
    }
}

impl OutlierPolicy {
    /// No passive ejection at all.
    pub const OFF: OutlierPolicy = OutlierPolicy {
        consecutive_failures: 0,
        consecutive_5xx: 0,
        base_ejection: Duration::ZERO,
        max_ejection: Duration::ZERO,
        max_ejected_percent: 0,
    };

    /// Whether any detector is on.
    pub fn is_enabled(&self) -> bool {
        self.consecutive_failures > 0 || self.consecutive_5xx > 0
    }

    fn threshold(&self, kind: FailureKind) -> u32 {
        match kind {
            FailureKind::Connect | FailureKind::Unresponsive => self.consecutive_failures,
            FailureKind::Status5xx => self.consecutive_5xx,
        }
    }
}

/// What a failure did to a backend's standing ([`Ejection::on_failure`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Nothing: its detector is off, or the backend is already ejected.
    Ignored,
    /// Counted toward the backend's streak.
    Counted,
    /// The backend is ejected for this long.
    Ejected(Duration),
    /// The backend would have been ejected, but its upstream could not spare it.
    Spared,
}

/// How many of a tier's `n` backends (primaries, or backups) one worker may hold ejected at
/// once: `percent` of them, rounded down, but at least one when there are two or more, and
/// never all of them. A failure shared by every backend (a network problem on this host, an
/// overload that makes every backend slow) must not leave a worker with nothing to send to;
/// it keeps trying them instead. Envoy's `max_ejection_percent` is the same idea.
pub fn max_ejected(n: usize, percent: u32) -> usize {
    if n < 2 {
        return 0;
    }
    let share = n.saturating_mul(percent.min(100) as usize) / 100;
    share.max(1).min(n - 1)
}

/// What went wrong with one request to a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The connection failed: connect error, reset, or timeout.
    Connect,
    /// The backend answered with a 5xx status.
    Status5xx,
    /// The backend held a request past the per-try timeout without a byte of answer, or a
    /// connect to it past the connect timeout (frozen, blackholed, or far slower than it
    /// should be): ejected at once, since every request sent to it meanwhile waits as long. Counted by the connection-failure detector (off when
    /// `consecutive_failures` is 0).
    Unresponsive,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Taking traffic normally.
    Serving,
    /// Out of rotation until `until`, or until the board's pass count exceeds `passes`.
    Ejected { until: Instant, passes: u64 },
    /// Back from an ejection: the next failure ejects again at once (with the grown backoff),
    /// the next success ends probation.
    Probation,
}

/// Passive outlier ejection of one backend, as seen by one worker.
///
/// Feed it every request outcome ([`Ejection::on_success`], [`Ejection::on_failure`]) and ask
/// [`Ejection::is_ejected`] before offering the backend to the balancer. The ejection length
/// starts at [`OutlierPolicy::base`] and doubles (up to [`OutlierPolicy::max`]) each time the
/// backend fails again right after returning; a success after returning resets it.
#[derive(Clone, Debug)]
pub struct Ejection {
    policy: OutlierPolicy,
    connect_streak: u32,
    status_streak: u32,
    phase: Phase,
    /// The length of the next ejection.
    next: Duration,
    returned_at: Option<Instant>,
}

impl Ejection {
    /// A backend in rotation, with no failures seen.
    pub fn new(policy: OutlierPolicy) -> Self {
        Self {
            policy,
            connect_streak: 0,
            status_streak: 0,
            phase: Phase::Serving,
            next: policy.base_ejection,
            returned_at: None,
        }
    }

    /// The policy it follows.
    pub fn policy(&self) -> OutlierPolicy {
        self.policy
    }

    /// A request succeeded (any response that is not a 5xx): resets both failure streaks and
    /// ends probation, which resets the backoff to the base. A success that lands while the
    /// backend is still ejected (a request sent before the ejection) changes nothing else.
    pub fn on_success(&mut self, now: Instant) {
        self.connect_streak = 0;
        self.status_streak = 0;
        if let Phase::Ejected { until, .. } = self.phase
            && now >= until
        {
            self.end_ejection(until);
        }
        if self.phase == Phase::Probation {
            self.phase = Phase::Serving;
            self.next = self.policy.base_ejection;
        }
    }

    /// A request failed. The backend is ejected when the streak of its kind reached the
    /// policy's threshold, or it was on probation, and `may_eject` (its upstream can spare it:
    /// see [`max_ejected`]); otherwise it is spared, and its streak starts again. `passes` is
    /// the board's current pass count for the backend (see [`Ejection::is_ejected`]).
    ///
    /// A failure of a kind whose detector is off, or one that lands while the backend is
    /// already ejected (a request sent before the ejection), is ignored.
    pub fn on_failure(
        &mut self,
        kind: FailureKind,
        now: Instant,
        passes: u64,
        may_eject: bool,
    ) -> Failure {
        let threshold = self.policy.threshold(kind);
        if threshold == 0 || self.is_ejected(now, passes) {
            return Failure::Ignored;
        }
        let due = self.phase == Phase::Probation || kind == FailureKind::Unresponsive || {
            let streak = match kind {
                FailureKind::Connect | FailureKind::Unresponsive => &mut self.connect_streak,
                FailureKind::Status5xx => &mut self.status_streak,
            };
            *streak = streak.saturating_add(1);
            *streak >= threshold
        };
        match (due, may_eject) {
            (false, _) => Failure::Counted,
            (true, true) => Failure::Ejected(self.eject(now, passes)),
            (true, false) => {
                self.connect_streak = 0;
                self.status_streak = 0;
                Failure::Spared
            }
        }
    }

    /// Whether the backend is out of this worker's rotation. The ejection ends once its time has
    /// passed or once `passes` (the board's pass count) is above the count at ejection time: an
    /// active check passed since. Ending it puts the backend on probation.
    pub fn is_ejected(&mut self, now: Instant, passes: u64) -> bool {
        let Phase::Ejected {
            until,
            passes: at_ejection,
        } = self.phase
        else {
            return false;
        };
        if now >= until {
            self.end_ejection(until);
            false
        } else if passes > at_ejection {
            self.end_ejection(now);
            false
        } else {
            true
        }
    }

    /// When the current ejection ends at the latest (a passing check may end it sooner); None
    /// when the backend is not ejected. Call [`Ejection::is_ejected`] first to end a lapsed one.
    pub fn ejected_until(&self) -> Option<Instant> {
        match self.phase {
            Phase::Ejected { until, .. } => Some(until),
            _ => None,
        }
    }

    /// When the last ejection ended (the start of the backend's slow start), if it ever was
    /// ejected.
    pub fn returned_at(&self) -> Option<Instant> {
        self.returned_at
    }

    /// Whether the backend is back from an ejection and has not succeeded yet.
    #[cfg(test)]
    pub fn on_probation(&self) -> bool {
        self.phase == Phase::Probation
    }

    fn eject(&mut self, now: Instant, passes: u64) -> Duration {
        let length = self.next;
        let cap = self.policy.max_ejection.max(self.policy.base_ejection);
        self.next = self.next.saturating_mul(2).min(cap);
        self.connect_streak = 0;
        self.status_streak = 0;
        // Only an absurd length overflows Instant; then the ejection ends at once rather than
        // panicking.
        let until = now.checked_add(length).unwrap_or(now);
        self.phase = Phase::Ejected { until, passes };
        length
    }

    fn end_ejection(&mut self, at: Instant) {
        self.phase = Phase::Probation;
        self.returned_at = Some(at);
    }
}

/// The whole of a backend's weight, in the per mille unit of [`slow_start_ramp`].
pub const FULL_WEIGHT_PER_MILLE: u32 = 1000;

/// The share of its weight a backend returning from slow start begins with (10 %).
const SLOW_START_PER_MILLE: u32 = 100;

/// Per mille share of its weight a backend gets during slow start: 100 (10 %) at `since`,
/// rising linearly to [`FULL_WEIGHT_PER_MILLE`] at `since + window`. The full weight when
/// there is no `since` (never returned), the window is zero, or the window is over. A `now`
/// before `since` gives 100.
pub fn slow_start_ramp(since: Option<Instant>, now: Instant, window: Duration) -> u32 {
    const START: u128 = SLOW_START_PER_MILLE as u128;
    const FULL: u128 = FULL_WEIGHT_PER_MILLE as u128;
    let Some(since) = since else {
        return FULL_WEIGHT_PER_MILLE;
    };
    let window_ns = window.as_nanos();
    let elapsed_ns = now.saturating_duration_since(since).as_nanos();
    if window_ns == 0 || elapsed_ns >= window_ns {
        return FULL_WEIGHT_PER_MILLE;
    }
    // elapsed < window, so the result is in [100, 1000).
    (START + (FULL - START) * elapsed_ns / window_ns) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn results(rf: &mut RiseFall, seq: &[bool]) -> Vec<Option<bool>> {
        seq.iter().map(|&ok| rf.observe(ok)).collect()
    }

    #[test]
    fn rise_fall_streaks() {
        let mut rf = RiseFall::new(2, 3);
        assert!(rf.is_up());
        assert_eq!(
            results(&mut rf, &[true, false, false, false]),
            [None, None, None, Some(false)]
        );
        assert!(!rf.is_up());
        assert_eq!(results(&mut rf, &[false, true]), [None, None]);
        assert_eq!(rf.observe(true), Some(true));
        assert!(rf.is_up());
    }

    #[test]
    fn rise_fall_flapping_never_flips() {
        let mut rf = RiseFall::new(2, 3);
        // Two failures, one pass: the failure streak restarts.
        let seq = [false, false, true, false, false, true, false, false, true];
        assert!(results(&mut rf, &seq).iter().all(Option::is_none));
        assert!(rf.is_up());
        // Down, then pass/fail alternation never brings it back.
        assert_eq!(
            results(&mut rf, &[false, false, false]),
            [None, None, Some(false)]
        );
        let seq = [true, false, true, false, true, false];
        assert!(results(&mut rf, &seq).iter().all(Option::is_none));
        assert!(!rf.is_up());
    }

    #[test]
    fn rise_fall_starting_down_needs_rise_passes() {
        let mut rf = RiseFall::starting(2, 3, false);
        assert!(!rf.is_up());
        assert_eq!(rf.observe(false), None);
        assert_eq!(rf.observe(true), None);
        assert_eq!(rf.observe(true), Some(true));
        assert!(RiseFall::starting(2, 3, true).is_up());
    }

    #[test]
    fn rise_fall_zero_means_one() {
        let mut rf = RiseFall::new(0, 0);
        assert_eq!(rf.observe(false), Some(false));
        assert_eq!(rf.observe(true), Some(true));
        assert_eq!(rf.observe(true), None);
    }

    fn policy(failures: u32, fivexx: u32) -> OutlierPolicy {
        OutlierPolicy {
            consecutive_failures: failures,
            consecutive_5xx: fivexx,
            base_ejection: 100 * MS,
            max_ejection: 350 * MS,
            max_ejected_percent: 50,
        }
    }

    /// A failure of a backend its upstream can spare: the ejection length when it ejects.
    trait Fail {
        fn fail(&mut self, kind: FailureKind, now: Instant, passes: u64) -> Option<Duration>;
    }

    impl Fail for Ejection {
        fn fail(&mut self, kind: FailureKind, now: Instant, passes: u64) -> Option<Duration> {
            match self.on_failure(kind, now, passes, true) {
                Failure::Ejected(length) => Some(length),
                _ => None,
            }
        }
    }

    #[test]
    fn an_unresponsive_backend_is_ejected_at_once() {
        let t = Instant::now();
        let mut e = Ejection::new(policy(5, 0));
        assert_eq!(e.fail(FailureKind::Unresponsive, t, 0), Some(100 * MS));
        assert!(e.is_ejected(t + 50 * MS, 0));
        // A passing health check brings it back before the time is up.
        assert!(!e.is_ejected(t + 50 * MS, 1));
        // The detector off: ignored.
        let mut off = Ejection::new(policy(0, 0));
        assert_eq!(
            off.on_failure(FailureKind::Unresponsive, t, 0, true),
            Failure::Ignored
        );
        // Past the upstream's ejection share: spared.
        let mut spared = Ejection::new(policy(5, 0));
        assert_eq!(
            spared.on_failure(FailureKind::Unresponsive, t, 0, false),
            Failure::Spared
        );
    }

    #[test]
    fn a_backend_its_upstream_cannot_spare_is_not_ejected() {
        let t = Instant::now();
        let mut e = Ejection::new(policy(2, 0));
        assert_eq!(
            e.on_failure(FailureKind::Connect, t, 0, false),
            Failure::Counted
        );
        assert_eq!(
            e.on_failure(FailureKind::Connect, t, 0, false),
            Failure::Spared
        );
        assert!(!e.is_ejected(t, 0));
        // The streak starts again: the next attempt comes after another full streak.
        assert_eq!(
            e.on_failure(FailureKind::Connect, t, 0, true),
            Failure::Counted
        );
        assert_eq!(
            e.on_failure(FailureKind::Connect, t, 0, true),
            Failure::Ejected(100 * MS)
        );
        assert!(e.is_ejected(t, 0));
        // Detector off: ignored whatever the upstream can spare.
        let mut off = Ejection::new(policy(0, 0));
        assert_eq!(
            off.on_failure(FailureKind::Connect, t, 0, false),
            Failure::Ignored
        );
    }

    #[test]
    fn max_ejected_keeps_at_least_one_backend() {
        // (backends, percent) -> how many one worker may hold ejected at once
        for (n, percent, max) in [
            (0, 50, 0),
            (1, 50, 0),
            (1, 100, 0),
            (2, 50, 1),
            (2, 10, 1),
            (2, 100, 1),
            (3, 50, 1),
            (4, 50, 2),
            (10, 10, 1),
            (10, 0, 1),
            (10, 100, 9),
            (10, 1000, 9),
            (20, 10, 2),
        ] {
            assert_eq!(max_ejected(n, percent), max, "{n} backends at {percent}%");
        }
    }

    #[test]
    fn ejects_at_threshold() {
        let t = Instant::now();
        let mut e = Ejection::new(policy(3, 0));
        assert_eq!(e.fail(FailureKind::Connect, t, 0), None);
        assert_eq!(e.fail(FailureKind::Connect, t, 0), None);
        assert!(!e.is_ejected(t, 0));
        assert_eq!(e.fail(FailureKind::Connect, t, 0), Some(100 * MS));
        assert!(e.is_ejected(t, 0));
        assert!(e.is_ejected(t + 99 * MS, 0));
        assert!(!e.is_ejected(t + 100 * MS, 0));
        assert!(e.on_probation());
        assert_eq!(e.returned_at(), Some(t + 100 * MS));
    }

    #[test]
    fn success_resets_streaks() {
        let t = Instant::now();
        let mut e = Ejection::new(policy(2, 2));
        assert_eq!(e.fail(FailureKind::Connect, t, 0), None);
        assert_eq!(e.fail(FailureKind::Status5xx, t, 0), None);
        e.on_success(t);
        assert_eq!(e.fail(FailureKind::Connect, t, 0), None);
        assert_eq!(e.fail(FailureKind::Status5xx, t, 0), None);
        assert!(!e.is_ejected(t, 0));
    }

    #[test]
    fn separate_counters() {
        let t = Instant::now();
        let mut e = Ejection::new(policy(2, 3));
        // Interleaved kinds: neither streak is reset by the other kind.
        assert_eq!(e.fail(FailureKind::Status5xx, t, 0), None);
        assert_eq!(e.fail(FailureKind::Connect, t, 0), None);
        assert_eq!(e.fail(FailureKind::Status5xx, t, 0), None);
        assert_eq!(
            e.fail(FailureKind::Connect, t, 0),
            Some(100 * MS),
            "second connect failure reaches the connect threshold of 2"
        );

        let mut e = Ejection::new(policy(2, 3));
        assert_eq!(e.fail(FailureKind::Status5xx, t, 0), None);
        assert_eq!(e.fail(FailureKind::Connect, t, 0), None);
        assert_eq!(e.fail(FailureKind::Status5xx, t, 0), None);
        assert_eq!(
            e.fail(FailureKind::Status5xx, t, 0),
            Some(100 * MS),
            "third 5xx reaches the 5xx threshold of 3"
        );
    }

    #[test]
    fn zero_turns_a_detector_off() {
        let t = Instant::now();
        let mut e = Ejection::new(policy(0, 1));
        for _ in 0..100 {
            assert_eq!(e.fail(FailureKind::Connect, t, 0), None);
        }
        assert!(!e.is_ejected(t, 0));
        assert_eq!(e.fail(FailureKind::Status5xx, t, 0), Some(100 * MS));

        let mut off = Ejection::new(OutlierPolicy::OFF);
        assert!(!OutlierPolicy::OFF.is_enabled());
        for _ in 0..100 {
            assert_eq!(off.fail(FailureKind::Connect, t, 0), None);
            assert_eq!(off.fail(FailureKind::Status5xx, t, 0), None);
        }
        assert!(!off.is_ejected(t, 0));
    }

    #[test]
    fn backoff_grows_on_probation_failures_and_caps() {
        let mut t = Instant::now();
        let mut e = Ejection::new(policy(1, 0));
        let mut lengths = Vec::new();
        for _ in 0..5 {
            let len = e
                .fail(FailureKind::Connect, t, 0)
                .expect("on probation (or threshold 1): every failure ejects");
            lengths.push(len);
            t += len;
            assert!(!e.is_ejected(t, 0));
            assert!(e.on_probation());
        }
        assert_eq!(lengths, [100 * MS, 200 * MS, 350 * MS, 350 * MS, 350 * MS]);
    }

    #[test]
    fn probation_reejects_at_once_with_doubled_backoff() {
        let t = Instant::now();
        let mut e = Ejection::new(policy(3, 0));
        for _ in 0..3 {
            e.fail(FailureKind::Connect, t, 0);
        }
        let back = t + 100 * MS;
        assert!(!e.is_ejected(back, 0));
        // One failure on probation is enough, and the backoff has doubled.
        assert_eq!(e.fail(FailureKind::Connect, back, 0), Some(200 * MS));
        assert!(e.is_ejected(back + 199 * MS, 0));
    }

    #[test]
    fn success_on_probation_resets_backoff() {
        let t = Instant::now();
        let mut e = Ejection::new(policy(2, 0));
        e.fail(FailureKind::Connect, t, 0);
        assert_eq!(e.fail(FailureKind::Connect, t, 0), Some(100 * MS));
        let back = t + 100 * MS;
        assert!(!e.is_ejected(back, 0));
        e.on_success(back);
        assert!(!e.on_probation());
        // Back to normal: the full streak is needed again, and the backoff is the base.
        assert_eq!(e.fail(FailureKind::Connect, back, 0), None);
        assert_eq!(e.fail(FailureKind::Connect, back, 0), Some(100 * MS));
    }

    #[test]
    fn success_after_expiry_ends_ejection_and_probation() {
        let t = Instant::now();
        let mut e = Ejection::new(policy(1, 0));
        assert_eq!(e.fail(FailureKind::Connect, t, 0), Some(100 * MS));
        // A straggler success while still ejected changes nothing.
        e.on_success(t + 50 * MS);
        assert!(e.is_ejected(t + 50 * MS, 0));
        // A success after the ejection time: returned and off probation in one step.
        e.on_success(t + 150 * MS);
        assert!(!e.on_probation());
        assert_eq!(e.returned_at(), Some(t + 100 * MS));
        assert_eq!(
            e.fail(FailureKind::Connect, t + 150 * MS, 0),
            Some(100 * MS)
        );
    }

    #[test]
    fn passing_check_lifts_ejection() {
        let t = Instant::now();
        let mut e = Ejection::new(policy(1, 0));
        assert_eq!(e.fail(FailureKind::Connect, t, 7), Some(100 * MS));
        assert!(e.is_ejected(t + 10 * MS, 7));
        assert!(!e.is_ejected(t + 20 * MS, 8));
        assert!(e.on_probation());
        assert_eq!(e.returned_at(), Some(t + 20 * MS));
    }

    #[test]
    fn failures_while_ejected_are_ignored() {
        let t = Instant::now();
        let mut e = Ejection::new(policy(1, 1));
        assert_eq!(e.fail(FailureKind::Connect, t, 0), Some(100 * MS));
        assert_eq!(e.fail(FailureKind::Connect, t + 10 * MS, 0), None);
        assert_eq!(e.fail(FailureKind::Status5xx, t + 10 * MS, 0), None);
        // The ejection was not extended.
        assert!(!e.is_ejected(t + 100 * MS, 0));
    }

    #[test]
    fn max_below_base_acts_as_base() {
        let t = Instant::now();
        let mut e = Ejection::new(OutlierPolicy {
            consecutive_failures: 1,
            consecutive_5xx: 0,
            base_ejection: 100 * MS,
            max_ejection: 10 * MS,
            max_ejected_percent: 50,
        });
        assert_eq!(e.fail(FailureKind::Connect, t, 0), Some(100 * MS));
        assert!(!e.is_ejected(t + 100 * MS, 0));
        assert_eq!(
            e.fail(FailureKind::Connect, t + 100 * MS, 0),
            Some(100 * MS)
        );
    }

    #[test]
    fn ramp_values() {
        let t = Instant::now();
        let w = Duration::from_secs(10);
        assert_eq!(slow_start_ramp(None, t, w), 1000);
        assert_eq!(slow_start_ramp(Some(t), t, Duration::ZERO), 1000);
        assert_eq!(slow_start_ramp(Some(t), t, w), 100);
        assert_eq!(slow_start_ramp(Some(t), t + Duration::from_secs(1), w), 190);
        assert_eq!(slow_start_ramp(Some(t), t + Duration::from_secs(5), w), 550);
        assert_eq!(
            slow_start_ramp(Some(t), t + Duration::from_millis(9999), w),
            999
        );
        assert_eq!(slow_start_ramp(Some(t), t + w, w), 1000);
        assert_eq!(slow_start_ramp(Some(t), t + 2 * w, w), 1000);
        assert_eq!(slow_start_ramp(Some(t + w), t, w), 100, "now before since");
    }
}
