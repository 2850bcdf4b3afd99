//! The health board: the published active-check state of every backend of every pool.
//!
//! One writer (the health thread, [`super::checker`]) and many readers (every worker, once per
//! candidate per request). Each backend is one slot of atomics, so a read is a plain load: no
//! lock, no channel, no allocation, and a worker never waits on the health thread.
//!
//! Invariants:
//! - Every backend starts up with no "up since" time: ringway trusts its configuration at
//!   startup, and there is no slow start for traffic that was never cut off.
//! - Up/down and "up since" live in one `AtomicU64`, so a reader can never see a torn
//!   combination (down with an "up since" time, or up with the time of an older transition).
//! - The pass counter only grows; readers compare it with a value they saw earlier to learn
//!   that a passing check happened in between.
//! - A backend's slot ([`BackendHealth`]) is shared, not copied, by every board that holds the
//!   backend: a reload builds a new board over the slots of the backends it keeps (see
//!   [`super::registry`]), so their health carries over and the old board's readers (requests
//!   still on the old plan) see the same state. Every board that shares slots shares their
//!   epoch.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `state` value: the backend is down.
const DOWN: u64 = 0;
/// `state` value: the backend has been up since the board was created.
const UP_FROM_START: u64 = 1;
/// `state` values from here on: up since `epoch + (state - UP_SINCE_BASE)` nanoseconds.
const UP_SINCE_BASE: u64 = 2;

/// One backend's slot, shared by every board that holds the backend.
#[derive(Debug)]
pub struct BackendHealth {
    /// [`DOWN`], [`UP_FROM_START`], or `UP_SINCE_BASE + nanoseconds since the epoch` of the
    /// moment it last turned up.
    state: AtomicU64,
    /// Passing active checks so far.
    passes: AtomicU64,
    /// Active checks so far, passed or failed (is the first round done?).
    checks: AtomicU64,
}

impl BackendHealth {
    /// A backend that is up since the start (trusted from the configuration).
    pub fn up() -> Arc<Self> {
        Arc::new(Self {
            state: AtomicU64::new(UP_FROM_START),
            passes: AtomicU64::new(0),
            checks: AtomicU64::new(0),
        })
    }

    /// A backend that is down until its checks pass (one added by a reload to an upstream
    /// with active checks: checked before traffic).
    pub fn down() -> Arc<Self> {
        Arc::new(Self {
            state: AtomicU64::new(DOWN),
            passes: AtomicU64::new(0),
            checks: AtomicU64::new(0),
        })
    }
}

/// The published health of every backend (indexed by a global backend index).
///
/// Written only by the health thread ([`HealthBoard::set_up`], [`HealthBoard::record_pass`]),
/// read by every worker. Out-of-range indexes read as "up, no checks" and writes to them are
/// ignored, so a mismatch between the board and a backend table can never panic a worker.
#[derive(Debug)]
pub struct HealthBoard {
    entries: Box<[Arc<BackendHealth>]>,
    /// The origin of the "up since" timestamps.
    epoch: Instant,
}

impl HealthBoard {
    /// A board for `backends` backends, all up since the start.
    pub fn new(backends: usize) -> Arc<Self> {
        Self::over(
            (0..backends).map(|_| BackendHealth::up()).collect(),
            Instant::now(),
        )
    }

    /// A board over existing slots, whose "up since" times count from `epoch` (the same for
    /// every board that shares these slots).
    pub fn over(entries: Vec<Arc<BackendHealth>>, epoch: Instant) -> Arc<Self> {
        Arc::new(Self {
            entries: entries.into_boxed_slice(),
            epoch,
        })
    }

    /// Backend `i`'s slot, to share with the next board.
    pub fn slot(&self, i: usize) -> Option<&Arc<BackendHealth>> {
        self.entries.get(i)
    }

    /// How many backends the board holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the board holds no backend.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Loads backend `i`'s state word. Acquire pairs with the Release store in
    /// [`HealthBoard::set_up`]: a worker that sees a transition also sees everything the health
    /// thread wrote before it (notably the pass count of the check that caused it).
    fn state(&self, i: usize) -> u64 {
        self.entries
            .get(i)
            .map_or(UP_FROM_START, |e| e.state.load(Ordering::Acquire))
    }

    /// Whether the active checks say backend `i` is up (true for an unknown index).
    pub fn is_up(&self, i: usize) -> bool {
        self.state(i) != DOWN
    }

    /// When backend `i` last turned up (the start of its slow start). `None` when it has been up
    /// since the start, or is down.
    pub fn up_since(&self, i: usize) -> Option<Instant> {
        match self.state(i) {
            DOWN | UP_FROM_START => None,
            s => self
                .epoch
                .checked_add(Duration::from_nanos(s - UP_SINCE_BASE)),
        }
    }

    /// How many active checks of backend `i` have passed. Workers remember the value when they
    /// eject a backend passively and lift the ejection once it has advanced. Relaxed: the
    /// counter carries no data, only "it changed".
    pub fn passes(&self, i: usize) -> u64 {
        self.entries
            .get(i)
            .map_or(0, |e| e.passes.load(Ordering::Relaxed))
    }

    /// Writer side: publishes backend `i` as up (since `now`) or down. Setting the state it
    /// already has is a no-op, so "up since" only moves on a real transition. A `now` before the
    /// board's creation is recorded as the creation time.
    pub fn set_up(&self, i: usize, up: bool, now: Instant) {
        let Some(entry) = self.entries.get(i) else {
            return;
        };
        // One writer: nothing can change the state between this load and the store.
        let current = entry.state.load(Ordering::Relaxed);
        if up == (current != DOWN) {
            return;
        }
        let state = if up {
            let nanos = now.saturating_duration_since(self.epoch).as_nanos();
            u64::try_from(nanos)
                .unwrap_or(u64::MAX)
                .min(u64::MAX - UP_SINCE_BASE)
                + UP_SINCE_BASE
        } else {
            DOWN
        };
        entry.state.store(state, Ordering::Release);
    }

    /// Writer side: counts one active check of backend `i`, passed or not.
    pub fn record_check(&self, i: usize) {
        if let Some(entry) = self.entries.get(i) {
            entry.checks.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many active checks of backend `i` have run (0 before the first finished).
    pub fn checks(&self, i: usize) -> u64 {
        self.entries
            .get(i)
            .map_or(0, |e| e.checks.load(Ordering::Relaxed))
    }

    /// Writer side: counts one passing active check of backend `i`.
    pub fn record_pass(&self, i: usize) {
        if let Some(entry) = self.entries.get(i) {
            entry.passes.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_up_without_slow_start() {
        let board = HealthBoard::new(3);
        assert_eq!(board.len(), 3);
        assert!(!board.is_empty());
        for i in 0..3 {
            assert!(board.is_up(i));
            assert_eq!(board.up_since(i), None);
            assert_eq!(board.passes(i), 0);
        }
    }

    #[test]
    fn down_then_up_records_since() {
        let board = HealthBoard::new(2);
        let t0 = Instant::now();
        board.set_up(1, false, t0);
        assert!(!board.is_up(1));
        assert_eq!(board.up_since(1), None);
        assert!(board.is_up(0), "other backends are untouched");

        let t1 = t0 + Duration::from_millis(1500);
        board.set_up(1, true, t1);
        assert!(board.is_up(1));
        assert_eq!(board.up_since(1), Some(t1));

        // Up again while up: "up since" does not move.
        board.set_up(1, true, t1 + Duration::from_secs(5));
        assert_eq!(board.up_since(1), Some(t1));

        board.set_up(1, false, t1 + Duration::from_secs(6));
        assert_eq!(board.up_since(1), None);
        assert!(!board.is_up(1));
    }

    #[test]
    fn up_from_start_ignores_redundant_up() {
        let board = HealthBoard::new(1);
        board.set_up(0, true, Instant::now() + Duration::from_secs(1));
        assert_eq!(board.up_since(0), None);
    }

    #[test]
    fn time_before_creation_clamps_to_epoch() {
        let before = Instant::now();
        let board = HealthBoard::new(1);
        board.set_up(0, false, before);
        board.set_up(0, true, before);
        assert_eq!(board.up_since(0), Some(board.epoch));
    }

    #[test]
    fn passes_count_per_backend() {
        let board = HealthBoard::new(2);
        board.record_pass(0);
        board.record_pass(0);
        board.record_pass(1);
        assert_eq!(board.passes(0), 2);
        assert_eq!(board.passes(1), 1);
    }

    #[test]
    fn out_of_range_is_harmless() {
        let board = HealthBoard::new(1);
        board.set_up(5, false, Instant::now());
        board.record_pass(5);
        assert!(board.is_up(5));
        assert_eq!(board.up_since(5), None);
        assert_eq!(board.passes(5), 0);
        assert!(HealthBoard::new(0).is_empty());
    }

    #[test]
    fn boards_over_shared_slots_see_each_others_writes() {
        let first = HealthBoard::new(2);
        let kept = first.slot(1).expect("slot").clone();
        let second = HealthBoard::over(vec![BackendHealth::down(), kept], first.epoch);
        let t = Instant::now() + Duration::from_secs(1);
        second.set_up(1, false, t);
        second.record_pass(1);
        assert!(!first.is_up(1), "the old board sees the new board's write");
        assert_eq!(first.passes(1), 1);
        first.set_up(1, true, t);
        assert_eq!(second.up_since(1), Some(t), "one epoch: times agree");
        assert!(!second.is_up(0), "a slot made down starts down");
    }

    #[test]
    fn readers_on_other_threads_see_writes() {
        let board = HealthBoard::new(1);
        let writer = board.clone();
        let t = Instant::now();
        std::thread::spawn(move || {
            writer.record_pass(0);
            writer.set_up(0, false, t);
        })
        .join()
        .expect("writer thread");
        assert!(!board.is_up(0));
        assert_eq!(board.passes(0), 1);
    }
}
