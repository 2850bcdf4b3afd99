//! Coarse per-worker deadlines for connection I/O.
//!
//! Owns the timeouts of the request path. Every read and write of a connection runs under a
//! deadline, so a general-purpose timer per operation (an ordered-map insert and removal and
//! several clock reads each) would be paid several times per request. Instead each worker keeps
//! a slab of armed deadlines; arming one is a slab insert, disarming a slab remove, and one
//! ticker task per worker wakes, every [`TICK`], the futures whose deadline has passed.
//!
//! Invariants: a deadline fires no earlier than its instant and at most one [`TICK`] (plus
//! scheduling delay) after it; an entry lives exactly as long as its [`Deadline`] future; the
//! state is thread-local (one per worker), never shared across cores.

use std::cell::RefCell;
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

/// Runs `future` for at most `limit` from now.
pub fn within<F: Future>(limit: Duration, future: F) -> Deadline<F> {
    deadline(Instant::now() + limit, future)
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

/// The worker's ticker: fires expired deadlines every [`TICK`]. Runs until dropped.
pub async fn run_ticker() {
    loop {
        compio::time::sleep(TICK).await;
        fire_expired(Instant::now());
    }
}

/// Deadlines armed on this worker now.
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
