//! The worker's event loop: when to run tasks, when to wait for completions, and how long to
//! let completions gather before waking.
//!
//! Owns the loop compio's `block_on` would otherwise run. Each turn runs the ready tasks, then
//! enters the ring. A worker that is busy but not saturated (the usual case: clients and
//! backends are slower than the proxy) would otherwise wake for every completion, one at a
//! time, and pay a sleep, a wake-up and a turn of the loop per event. Instead, when many
//! requests are in flight on the worker (at least [`Pacing::min_in_flight`]) and the last turns
//! woke at least [`Pacing::busy_after`] connection tasks, the worker lets completions gather for
//! [`Pacing::gather`] before reaping them all in one non-blocking enter: fewer, larger batches,
//! the same idea as interrupt coalescing. With few requests in flight (a lone client, a few
//! clients each waiting for its answer, an idle server) every wait wakes at the first
//! completion, so latency-bound traffic gets no added delay; with many, each request already
//! waits behind the others, and the added latency is at most one [`Pacing::gather`] per wait.
//!
//! Also owns the worker's count of requests in flight ([`InFlight`]), which the pacer and the
//! graceful stop read.
//!
//! Invariants: the loop never sleeps while a task is ready; a gathering sleep is bounded by
//! [`Pacing::gather`]; timers keep firing (each enter also wakes expired timers); the counters
//! are thread-local (one per worker).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use compio::runtime::{JoinHandle, Runtime};

/// How the loop waits for completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// The longest a busy worker lets completions gather before reaping them; zero turns
    /// gathering off (every wait wakes at the first completion).
    pub max_gather: Duration,
    /// Requests in flight on the worker from which gathering is worth its delay.
    pub min_in_flight: usize,
    /// Connection tasks woken by one wait from which the worker counts as busy.
    pub busy_after: u32,
    /// The batch a gathering wait aims at: fewer tasks woken than the first number lengthen
    /// the next gathering, more than the second shorten it.
    pub batch: (u32, u32),
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            max_gather: Duration::from_micros(100),
            min_in_flight: 10,
            busy_after: 4,
            batch: (8, 32),
        }
    }
}

/// The shortest gathering sleep; below it, a busy worker reaps without sleeping.
const MIN_GATHER: Duration = Duration::from_micros(10);

/// How the next wait goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Block until the first completion (or the next timer).
    First,
    /// Sleep this long (possibly not at all), then reap whatever completed, without blocking.
    Gather(Duration),
}

/// Decides each wait from how many connection tasks the previous one woke, and how many
/// requests are in flight.
///
/// Waking at the first completion is the rest state. A wait that wakes at least
/// [`Pacing::busy_after`] tasks while [`Pacing::min_in_flight`] requests are in flight starts
/// gathering, at half of [`Pacing::max_gather`]. Each gathering wait then adjusts the next to
/// aim at a batch within [`Pacing::batch`]: halved when it brought more (down to reaping without
/// sleeping, for a worker close to saturation, which must never sleep while work waits),
/// doubled when it brought fewer (up to [`Pacing::max_gather`]). A gathering wait that brings
/// nothing, or too few requests in flight, returns to waking at the first completion.
#[derive(Debug)]
pub struct Pacer {
    pacing: Pacing,
    woken: u32,
    /// `None`: waking at the first completion; `Some(d)`: gathering for `d`.
    gather: Option<Duration>,
}

impl Pacer {
    /// A pacer with these settings.
    pub fn new(pacing: Pacing) -> Self {
        Self {
            pacing,
            woken: 0,
            gather: None,
        }
    }

    /// `n` more connection tasks ran since the last wait.
    pub fn ran(&mut self, n: u32) {
        self.woken = self.woken.saturating_add(n);
    }

    /// How to wait now, with `in_flight` requests on the worker; starts counting anew.
    pub fn wait(&mut self, in_flight: usize) -> Wait {
        let woken = std::mem::take(&mut self.woken);
        let p = &self.pacing;
        self.gather = if p.max_gather.is_zero() || in_flight < p.min_in_flight {
            None
        } else {
            match self.gather {
                None if woken >= p.busy_after => Some(p.max_gather / 2),
                None => None,
                Some(_) if woken == 0 => None,
                // Below the shortest sleep: reap without sleeping.
                Some(d) if woken > p.batch.1 => {
                    Some(Some(d / 2).filter(|h| *h >= MIN_GATHER).unwrap_or_default())
                }
                Some(d) if woken < p.batch.0 => Some((d * 2).clamp(MIN_GATHER, p.max_gather)),
                Some(d) => Some(d),
            }
        };
        match self.gather {
            None => Wait::First,
            Some(d) => Wait::Gather(d),
        }
    }
}

thread_local! {
    static POLLS: Cell<u32> = const { Cell::new(0) };
    static IN_FLIGHT: Cell<usize> = const { Cell::new(0) };
}

fn polls() -> u32 {
    POLLS.with(Cell::get)
}

/// Requests in flight on this worker.
pub fn in_flight() -> usize {
    IN_FLIGHT.with(Cell::get)
}

/// One request in flight on this worker, from its head to the end of its response; counted
/// until dropped, however the request ends.
#[derive(Debug)]
pub struct InFlight(());

impl InFlight {
    /// Counts a request as in flight.
    pub fn start() -> Self {
        IN_FLIGHT.with(|n| n.set(n.get() + 1));
        Self(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

pin_project_lite::pin_project! {
    /// A connection task's future, counted each time it is polled (each time a completion or
    /// another task woke it): the pacer's measure of how busy the worker is.
    pub struct Counted<F> {
        #[pin]
        future: F,
    }
}

impl<F> Counted<F> {
    /// Counts the polls of `future`.
    pub fn new(future: F) -> Self {
        Self { future }
    }
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        POLLS.with(|p| p.set(p.get().wrapping_add(1)));
        self.project().future.poll(cx)
    }
}

/// Runs `future` as a task on `runtime` and turns the loop until it ends; `Err` when it
/// panicked.
pub fn run<T: 'static>(
    runtime: &Runtime,
    pacing: Pacing,
    future: impl Future<Output = T> + 'static,
) -> Result<T, compio::runtime::JoinError> {
    runtime.enter(|| {
        if !pacing.max_gather.is_zero() {
            fine_timer_slack();
        }
        let mut main: JoinHandle<T> = compio::runtime::spawn(future);
        let waker = runtime.waker();
        let mut cx = Context::from_waker(&waker);
        let mut pacer = Pacer::new(pacing);
        loop {
            if let Poll::Ready(out) = Pin::new(&mut main).poll(&mut cx) {
                runtime.run();
                return out;
            }
            let before = polls();
            let more = runtime.run();
            pacer.ran(polls().wrapping_sub(before));
            if more {
                runtime.poll_with(Some(Duration::ZERO));
                continue;
            }
            match pacer.wait(in_flight()) {
                Wait::First => runtime.poll(),
                Wait::Gather(d) => {
                    if !d.is_zero() {
                        std::thread::sleep(d);
                    }
                    runtime.poll_with(Some(Duration::ZERO));
                }
            }
        }
    })
}

/// Asks for this thread's timers to fire on time (a 1 µs slack instead of the default 50 µs),
/// so a gathering sleep lasts what it says.
fn fine_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and affects only this thread.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        tracing::debug!("PR_SET_TIMERSLACK: {}", std::io::Error::last_os_error());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_event_waits_for_the_first_completion() {
        let mut p = Pacer::new(Pacing::default());
        assert_eq!(p.wait(100), Wait::First);
        p.ran(1);
        assert_eq!(p.wait(100), Wait::First);
        p.ran(3);
        assert_eq!(p.wait(100), Wait::First);
    }

    #[test]
    fn a_busy_wait_starts_gathering_and_an_empty_one_stops_it() {
        let pacing = Pacing::default();
        let mut p = Pacer::new(pacing);
        p.ran(2);
        p.ran(2);
        assert_eq!(p.wait(100), Wait::Gather(pacing.max_gather / 2));
        // The gathering wait brought nothing: back to waking at the first completion.
        assert_eq!(p.wait(100), Wait::First);
    }

    #[test]
    fn gathering_aims_at_the_batch() {
        let pacing = Pacing::default();
        let (low, high) = pacing.batch;
        let max = pacing.max_gather;
        let mut p = Pacer::new(pacing);
        p.ran(pacing.busy_after);
        assert_eq!(p.wait(100), Wait::Gather(max / 2));
        // Too few: longer, up to the maximum.
        p.ran(low - 1);
        assert_eq!(p.wait(100), Wait::Gather(max));
        p.ran(low - 1);
        assert_eq!(p.wait(100), Wait::Gather(max));
        // Within the batch: unchanged.
        p.ran(low);
        assert_eq!(p.wait(100), Wait::Gather(max));
        p.ran(high);
        assert_eq!(p.wait(100), Wait::Gather(max));
        // Too many: shorter, down to no sleep at all.
        let mut d = max;
        while d / 2 >= MIN_GATHER {
            d /= 2;
            p.ran(high + 1);
            assert_eq!(p.wait(100), Wait::Gather(d));
        }
        p.ran(high + 1);
        assert_eq!(p.wait(100), Wait::Gather(Duration::ZERO));
        p.ran(high + 1);
        assert_eq!(p.wait(100), Wait::Gather(Duration::ZERO));
        // From no sleep, too few: the shortest sleep.
        p.ran(1);
        assert_eq!(p.wait(100), Wait::Gather(MIN_GATHER));
    }

    #[test]
    fn few_requests_in_flight_never_gather() {
        let pacing = Pacing::default();
        let mut p = Pacer::new(pacing);
        p.ran(100);
        assert_eq!(p.wait(pacing.min_in_flight - 1), Wait::First);
        p.ran(100);
        assert_eq!(
            p.wait(pacing.min_in_flight),
            Wait::Gather(pacing.max_gather / 2)
        );
        // Gathering stops as soon as the requests in flight drop below the threshold.
        p.ran(10);
        assert_eq!(p.wait(pacing.min_in_flight - 1), Wait::First);
    }

    #[test]
    fn zero_max_gather_never_gathers() {
        let mut p = Pacer::new(Pacing {
            max_gather: Duration::ZERO,
            ..Pacing::default()
        });
        p.ran(100);
        assert_eq!(p.wait(100), Wait::First);
    }

    #[test]
    fn in_flight_requests_are_counted_until_dropped() {
        std::thread::spawn(|| {
            assert_eq!(in_flight(), 0);
            let a = InFlight::start();
            let b = InFlight::start();
            assert_eq!(in_flight(), 2);
            drop(a);
            assert_eq!(in_flight(), 1);
            drop(b);
            assert_eq!(in_flight(), 0);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn counted_tasks_are_counted_and_the_loop_returns_their_output() {
        let rt = compio::runtime::Runtime::new().unwrap();
        let out = run(&rt, Pacing::default(), async {
            let before = polls();
            let tasks: Vec<_> = (0..8u32)
                .map(|i| {
                    compio::runtime::spawn(Counted::new(async move {
                        compio::time::sleep(Duration::from_millis(1)).await;
                        i
                    }))
                })
                .collect();
            let mut sum = 0;
            for t in tasks {
                sum += t.await.unwrap();
            }
            // Each task was polled at least twice: once to start, once after its timer.
            assert!(polls().wrapping_sub(before) >= 16);
            sum
        });
        assert_eq!(out.unwrap(), 28);
    }
}
