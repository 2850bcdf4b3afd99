//! Coarse per-worker deadlines for connection I/O.
//!
//! Owns the timeouts of the request path. Every read and write of a connection runs under a
//! deadline, so a general-purpose timer per operation (an ordered-map insert and removal and
//! several clock reads each) would be paid several times per request. Instead each worker keeps
//! a slab of armed deadlines; arming one is a slab insert, disarming a slab remove, and one
//! ticker task per worker wakes, every [`TICK`], the futures whose deadline has passed.
//!
//! The ticker also keeps the worker's coarse clock ([`coarse_now`]): the time of its last tick.
//! Timeouts, pool idle times, ejections and slow start need no finer resolution than the
//! ticker's, and reading the clock once per tick instead of several times per request saves
//! a measurable share of a small request's cost. [`within`] pads its deadline by one [`TICK`]
//! so that a deadline measured from the coarse clock is not shorter than asked.
//!
//! Invariants: a deadline fires no earlier than its instant and at most one [`TICK`] (plus
//! scheduling delay) after it, so a [`within`] limit is never cut short unless the ticker runs
//! late by more than a tick, and ends at most two ticks late; an entry lives exactly as long
//! as its [`Deadline`] future; the state is thread-local (one per worker), never shared
//! across cores. On a thread without a running ticker, [`coarse_now`] is the exact time.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

/// How often expired deadlines are looked for: the resolution of every request-path timeout.
pub const TICK: Duration = Duration::from_millis(50);

/// The deadline passed before the operation completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline passed")]
pub struct Elapsed;

struct Armed {
    at: Instant,
    waker: Option<Waker>,
    fired: bool,
}

thread_local! {
    static ARMED: RefCell<Slab<Armed>> = const { RefCell::new(Slab::new()) };
    /// The last tick's time, while this thread's ticker runs.
    static TICKED: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// This worker's coarse time: when its ticker last ran (at most a [`TICK`] ago, plus scheduling
/// delay), or the exact time on a thread whose ticker is not running.
pub fn coarse_now() -> Instant {
    TICKED.with(Cell::get).unwrap_or_else(Instant::now)
}

/// Runs `future` until `at`; `Err(Elapsed)` if the deadline passes first (the future is then
/// dropped, cancelling its operation).
pub fn deadline<F: Future>(at: Instant, future: F) -> Deadline<F> {
    Deadline {
        future,
        at,
        key: None,
    }
}

/// A deadline at least `limit` from now, measured on the coarse clock: `limit` plus one
/// [`TICK`] after [`coarse_now`].
pub fn after(limit: Duration) -> Instant {
    coarse_now() + limit + TICK
}

/// Runs `future` for at least `limit` and at most `limit` plus two [`TICK`]s from now,
/// measured on the coarse clock.
pub fn within<F: Future>(limit: Duration, future: F) -> Deadline<F> {
    deadline(after(limit), future)
}

pin_project_lite::pin_project! {
    /// A future with a deadline; see [`deadline`].
    pub struct Deadline<F> {
        #[pin]
        future: F,
        at: Instant,
        key: Option<usize>,
    }

    impl<F> PinnedDrop for Deadline<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(key) = this.key.take() {
                ARMED.with(|armed| {
                    armed.borrow_mut().try_remove(key);
                });
            }
        }
    }
}

impl<F: Future> Future for Deadline<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.future.poll(cx) {
            return Poll::Ready(Ok(out));
        }
        let at = *this.at;
        let fired = ARMED.with(|armed| {
            let mut armed = armed.borrow_mut();
            match *this.key {
                Some(key) => match armed.get_mut(key) {
                    Some(entry) if entry.fired => true,
                    Some(entry) => {
                        if !entry
                            .waker
                            .as_ref()
                            .is_some_and(|w| w.will_wake(cx.waker()))
                        {
                            entry.waker = Some(cx.waker().clone());
                        }
                        false
                    }
                    None => true,
                },
                None => {
                    *this.key = Some(armed.insert(Armed {
                        at,
                        waker: Some(cx.waker().clone()),
                        fired: false,
                    }));
                    false
                }
            }
        });
        if fired {
            Poll::Ready(Err(Elapsed))
        } else {
            Poll::Pending
        }
    }
}

/// Wakes every future whose deadline has passed; returns how many fired.
pub fn fire_expired(now: Instant) -> usize {
    let wakers: Vec<Waker> = ARMED.with(|armed| {
        armed
            .borrow_mut()
            .iter_mut()
            .filter(|(_, entry)| !entry.fired && entry.at <= now)
            .filter_map(|(_, entry)| {
                entry.fired = true;
                entry.waker.take()
            })
            .collect()
    });
    let fired = wakers.len();
    for waker in wakers {
        waker.wake();
    }
    fired
}

/// The worker's ticker: keeps the coarse clock and fires expired deadlines every [`TICK`].
/// Runs until dropped; the coarse clock is then the exact one again.
pub async fn run_ticker() {
    struct Stopped;
    impl Drop for Stopped {
        fn drop(&mut self) {
            TICKED.with(|t| t.set(None));
        }
    }
    let _stopped = Stopped;
    TICKED.with(|t| t.set(Some(Instant::now())));
    loop {
        compio::time::sleep(TICK).await;
        let now = Instant::now();
        TICKED.with(|t| t.set(Some(now)));
        fire_expired(now);
    }
}

/// Deadlines armed on this worker now.
#[cfg(test)]
pub fn armed() -> usize {
    ARMED.with(|armed| armed.borrow().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_before_the_deadline_and_disarms() {
        let rt = compio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let ticker = compio::runtime::spawn(run_ticker());
            let out = within(Duration::from_secs(5), async {
                compio::time::sleep(Duration::from_millis(10)).await;
                7
            })
            .await;
            assert_eq!(out, Ok(7));
            assert_eq!(armed(), 0);
            drop(ticker);
        });
    }

    #[test]
    fn fires_after_the_deadline_within_a_tick() {
        let rt = compio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let ticker = compio::runtime::spawn(run_ticker());
            let start = Instant::now();
            let out = within(Duration::from_millis(120), std::future::pending::<()>()).await;
            let took = start.elapsed();
            assert_eq!(out, Err(Elapsed));
            assert!(took >= Duration::from_millis(120), "{took:?}");
            assert!(took < Duration::from_millis(120) + 4 * TICK, "{took:?}");
            assert_eq!(armed(), 0);
            drop(ticker);
        });
    }

    #[test]
    fn a_limit_measured_on_a_lagging_coarse_clock_is_not_cut_short() {
        let rt = compio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let ticker = compio::runtime::spawn(run_ticker());
            // Between ticks: the coarse clock lags the real one by about half a tick.
            compio::time::sleep(TICK + TICK / 2).await;
            let lag = Instant::now().saturating_duration_since(coarse_now());
            assert!(lag >= TICK / 4 && lag <= TICK + TICK / 2, "lag {lag:?}");
            let limit = Duration::from_millis(120);
            let armed_at = within(limit, std::future::pending::<()>()).at;
            assert!(armed_at >= Instant::now() + limit);
            assert!(armed_at <= Instant::now() + limit + 2 * TICK);
            drop(ticker);
        });
    }

    #[test]
    fn without_a_ticker_the_coarse_clock_is_exact() {
        std::thread::spawn(|| {
            let before = Instant::now();
            let coarse = coarse_now();
            assert!(coarse >= before && coarse <= Instant::now());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn fire_expired_only_fires_passed_deadlines() {
        let rt = compio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let now = Instant::now();
            let mut early = Box::pin(deadline(now, std::future::pending::<()>()));
            let mut late = Box::pin(deadline(
                now + Duration::from_secs(60),
                std::future::pending::<()>(),
            ));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(early.as_mut().poll(&mut cx).is_pending());
            assert!(late.as_mut().poll(&mut cx).is_pending());
            assert_eq!(armed(), 2);
            assert_eq!(fire_expired(now + Duration::from_millis(1)), 1);
            assert_eq!(early.as_mut().poll(&mut cx), Poll::Ready(Err(Elapsed)));
            assert!(late.as_mut().poll(&mut cx).is_pending());
            drop(early);
            drop(late);
            assert_eq!(armed(), 0);
        });
    }
}
