//! Per-worker keep-alive connection pool to backends.
//!
//! Owns the idle backend connections of one worker: a [`slab::Slab`] of idle entries and, per
//! backend, a LIFO stack of slab keys (the most recently used connection is reused first, so
//! the others age out and the pool shrinks after a burst).
//!
//! Invariants: a connection is in the pool only while no request uses it; a backend never has
//! more than `max_idle` idle connections (the oldest is closed first); a connection idle longer
//! than `idle_timeout`, or one whose backend has closed it or sent unexpected bytes, is never
//! handed out. The pool is generic over the connection type so its rules are unit tested without
//! sockets.

#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use slab::Slab;

/// What the pool needs to know about a connection.
pub trait Pooled {
    /// True when the connection can carry another request: the peer has not closed it and sent
    /// nothing unsolicited. Must not block.
    fn is_reusable(&self) -> bool;
}

struct Idle<C> {
    conn: C,
    since: Instant,
}

/// How long an idle connection may be taken without checking it when the caller can retry:
/// backends close idle connections after seconds, not within a second of the last response.
pub const TRUSTED_IDLE: Duration = Duration::from_secs(1);

/// Idle connections of one worker, per backend.
pub struct ConnPool<C> {
    idle: Slab<Idle<C>>,
    /// Per backend, slab keys oldest first: the back is the most recently returned.
    stacks: Vec<VecDeque<usize>>,
    max_idle: usize,
    idle_timeout: Duration,
}

impl<C: Pooled> ConnPool<C> {
    /// A pool for `backends` backends.
    pub fn new(backends: usize, max_idle: usize, idle_timeout: Duration) -> Self {
        Self {
            idle: Slab::new(),
            stacks: (0..backends).map(|_| VecDeque::new()).collect(),
            max_idle,
            idle_timeout,
        }
    }

    /// Takes the most recently returned live connection to `backend`, closing stale ones.
    ///
    /// With `trust_recent`, a connection idle for less than [`TRUSTED_IDLE`] is taken without
    /// asking [`Pooled::is_reusable`] (a system call per request under load): for requests that
    /// can be retried if the backend closed it in that short time.
    pub fn checkout(&mut self, backend: usize, now: Instant, trust_recent: bool) -> Option<C> {
        let stack = self.stacks.get_mut(backend)?;
        while let Some(key) = stack.pop_back() {
            let entry = self.idle.remove(key);
            let idle = now.saturating_duration_since(entry.since);
            if idle > self.idle_timeout {
                // Everything below is older still: close it all.
                for key in stack.drain(..) {
                    self.idle.remove(key);
                }
                return None;
            }
            if (trust_recent && idle < TRUSTED_IDLE) || entry.conn.is_reusable() {
                return Some(entry.conn);
            }
        }
        None
    }

    /// Returns a connection that finished a request cleanly.
    pub fn checkin(&mut self, backend: usize, conn: C, now: Instant) {
        if self.max_idle == 0 {
            return;
        }
        let Some(stack) = self.stacks.get_mut(backend) else {
            return;
        };
        if stack.len() >= self.max_idle
            && let Some(oldest) = stack.pop_front()
        {
            self.idle.remove(oldest);
        }
        let key = self.idle.insert(Idle { conn, since: now });
        stack.push_back(key);
    }

    /// Closes every connection idle for longer than the idle timeout.
    pub fn sweep(&mut self, now: Instant) {
        for stack in &mut self.stacks {
            // Stacks are ordered oldest first: expired ones form a prefix.
            let expired = stack
                .iter()
                .take_while(|&&key| {
                    now.saturating_duration_since(self.idle[key].since) > self.idle_timeout
                })
                .count();
            for key in stack.drain(..expired) {
                self.idle.remove(key);
            }
        }
    }

    /// Follows a reload: the pool now serves a table of `backends` backends, where old backend
    /// `k` is `place(k)` (`None`: removed, its idle connections are closed), with the new
    /// limits (a backend over the new `max_idle` closes its oldest).
    pub fn remap(
        &mut self,
        backends: usize,
        place: impl Fn(usize) -> Option<usize>,
        max_idle: usize,
        idle_timeout: Duration,
    ) {
        let mut stacks: Vec<VecDeque<usize>> = (0..backends).map(|_| VecDeque::new()).collect();
        for (old, stack) in std::mem::take(&mut self.stacks).into_iter().enumerate() {
            match place(old).and_then(|new| stacks.get_mut(new)) {
                Some(slot) if slot.is_empty() => *slot = stack,
                _ => {
                    for key in stack {
                        self.idle.remove(key);
                    }
                }
            }
        }
        for stack in &mut stacks {
            while stack.len() > max_idle {
                if let Some(oldest) = stack.pop_front() {
                    self.idle.remove(oldest);
                }
            }
        }
        self.stacks = stacks;
        self.max_idle = max_idle;
        self.idle_timeout = idle_timeout;
    }

    /// Idle connections held for `backend`.
    pub fn idle_count(&self, backend: usize) -> usize {
        self.stacks.get(backend).map_or(0, VecDeque::len)
    }

    /// Idle connections held in all.
    #[cfg(test)]
    pub fn total_idle(&self) -> usize {
        self.idle.len()
    }

    /// Closes every idle connection.
    pub fn clear(&mut self) {
        for stack in &mut self.stacks {
            stack.clear();
        }
        self.idle.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    #[derive(Debug)]
    struct Fake {
        id: u32,
        alive: Rc<Cell<bool>>,
    }

    impl Pooled for Fake {
        fn is_reusable(&self) -> bool {
            self.alive.get()
        }
    }

    fn fake(id: u32) -> Fake {
        Fake {
            id,
            alive: Rc::new(Cell::new(true)),
        }
    }

    #[test]
    fn lifo_reuse() {
        let t0 = Instant::now();
        let mut pool = ConnPool::new(2, 8, Duration::from_secs(30));
        pool.checkin(0, fake(1), t0);
        pool.checkin(0, fake(2), t0);
        pool.checkin(1, fake(3), t0);
        assert_eq!(pool.checkout(0, t0, false).unwrap().id, 2);
        assert_eq!(pool.checkout(0, t0, false).unwrap().id, 1);
        assert!(pool.checkout(0, t0, false).is_none());
        assert_eq!(pool.checkout(1, t0, false).unwrap().id, 3);
        assert!(pool.checkout(7, t0, false).is_none());
    }

    #[test]
    fn bounded_idle_closes_oldest() {
        let t0 = Instant::now();
        let mut pool = ConnPool::new(1, 2, Duration::from_secs(30));
        for id in 1..=3 {
            pool.checkin(0, fake(id), t0);
        }
        assert_eq!(pool.idle_count(0), 2);
        assert_eq!(pool.checkout(0, t0, false).unwrap().id, 3);
        assert_eq!(pool.checkout(0, t0, false).unwrap().id, 2);
        assert_eq!(pool.total_idle(), 0);
    }

    #[test]
    fn idle_timeout_expires() {
        let t0 = Instant::now();
        let mut pool = ConnPool::new(1, 8, Duration::from_secs(10));
        pool.checkin(0, fake(1), t0);
        pool.checkin(0, fake(2), t0 + Duration::from_secs(8));
        let later = t0 + Duration::from_secs(12);
        pool.sweep(later);
        assert_eq!(pool.idle_count(0), 1);
        assert_eq!(pool.checkout(0, later, false).unwrap().id, 2);
        pool.checkin(0, fake(3), t0);
        assert!(pool.checkout(0, later, false).is_none());
        assert_eq!(pool.total_idle(), 0);
    }

    #[test]
    fn closed_connections_are_skipped() {
        let t0 = Instant::now();
        let mut pool = ConnPool::new(1, 8, Duration::from_secs(30));
        let dead = fake(2);
        dead.alive.set(false);
        pool.checkin(0, fake(1), t0);
        pool.checkin(0, dead, t0);
        assert_eq!(pool.checkout(0, t0, false).unwrap().id, 1);
        assert_eq!(pool.total_idle(), 0);
    }

    #[test]
    fn recent_connections_are_trusted_only_when_asked_and_only_briefly() {
        let t0 = Instant::now();
        let mut pool = ConnPool::new(1, 8, Duration::from_secs(30));
        let dead = fake(2);
        dead.alive.set(false);
        pool.checkin(0, dead, t0);
        // Trusted: taken without the check (the caller retries if it was closed).
        assert_eq!(pool.checkout(0, t0, true).unwrap().id, 2);

        let dead = fake(3);
        dead.alive.set(false);
        pool.checkin(0, fake(1), t0);
        pool.checkin(0, dead, t0);
        // Idle for TRUSTED_IDLE or more: checked even when trust is allowed.
        let later = t0 + TRUSTED_IDLE;
        assert_eq!(pool.checkout(0, later, true).unwrap().id, 1);
        assert_eq!(pool.total_idle(), 0);
    }

    #[test]
    fn remap_moves_kept_backends_and_closes_removed_ones() {
        let t0 = Instant::now();
        let mut pool = ConnPool::new(3, 8, Duration::from_secs(30));
        let removed = fake(1);
        let alive = removed.alive.clone();
        pool.checkin(0, removed, t0);
        pool.checkin(1, fake(2), t0);
        for id in 3..6 {
            pool.checkin(2, fake(id), t0);
        }
        // Backend 0 is gone, 1 is now 0, 2 is now 1; a new backend 2; at most 2 idle each.
        let place = |k: usize| [None, Some(0), Some(1)][k];
        pool.remap(3, place, 2, Duration::from_secs(30));
        assert_eq!(pool.idle_count(0), 1);
        assert_eq!(pool.checkout(0, t0, false).unwrap().id, 2);
        assert_eq!(
            pool.idle_count(1),
            2,
            "over the new limit: the oldest closed"
        );
        assert_eq!(pool.checkout(1, t0, false).unwrap().id, 5);
        assert_eq!(pool.checkout(1, t0, false).unwrap().id, 4);
        assert_eq!(pool.idle_count(2), 0);
        assert_eq!(
            pool.total_idle(),
            0,
            "the removed backend's connection is closed"
        );
        assert!(Rc::strong_count(&alive) == 1, "and dropped");
    }

    #[test]
    fn zero_max_idle_pools_nothing() {
        let t0 = Instant::now();
        let mut pool = ConnPool::new(1, 0, Duration::from_secs(30));
        pool.checkin(0, fake(1), t0);
        assert_eq!(pool.total_idle(), 0);
    }
}
