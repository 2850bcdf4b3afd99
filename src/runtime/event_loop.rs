//! The worker's event loop: when to run tasks, when to wait for completions, and how long to
//! let completions gather before waking.
//!
//! Owns the loop compio's `block_on` would otherwise run. Each turn runs the ready tasks, then
//! enters the ring. A worker that is busy but not saturated (the usual case: clients and
//! backends are slower than the proxy) would otherwise wake for every completion, one at a
//! time, and pay a sleep, a wake-up and a turn of the loop per event. Instead, when many
//! requests are in flight on the worker (at least [`Pacing::min_in_flight`]) and the last wait
//! woke at least [`Pacing::busy_after`] connection tasks, the worker lets completions gather for
//! up to [`Pacing::max_gather`] before reaping them all in one non-blocking enter: fewer, larger
//! batches, the same idea as interrupt coalescing.
//!
//! - With few requests in flight (a lone client, a few clients each waiting for its answer, an
//!   idle server) every wait wakes at the first completion: latency-bound traffic gets no
//!   added delay. With many, each request already waits behind the others, and the added
//!   latency is at most one gathering per wait.
//! - A worker that is itself the bottleneck must not sleep while work waits: the pacer
//!   measures the worker thread's CPU time (user and kernel, so the sends and receives done
//!   inside the ring count too) against the wall clock over windows of [`WINDOW`], stops
//!   gathering above [`SATURATED`] of a core and resumes below [`UNSATURATED`].
//!
//! Reads the worker's count of requests in flight from its [`Load`].
//!
//! Invariants: the loop never sleeps while a task is ready; a gathering sleep is bounded by
//! [`Pacing::max_gather`]; timers keep firing (each enter also wakes expired timers); the
//! poll counter is thread-local (one loop per thread).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use compio::runtime::{JoinHandle, Runtime};

use super::load::Load;

/// How the loop waits for completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// How long a busy worker lets completions gather before reaping them; zero turns
    /// gathering off (every wait wakes at the first completion).
    pub max_gather: Duration,
    /// Requests in flight on the worker from which gathering is worth its delay.
    pub min_in_flight: usize,
    /// Connection tasks woken by one wait from which the worker counts as busy.
    pub busy_after: u32,
}

/// How long a busy worker lets completions gather by default: most of the gain in loop turns
/// per request, for half the latency a 100 µs gathering added at 16 connections (measured).
pub const DEFAULT_MAX_GATHER: Duration = Duration::from_micros(50);

/// Below this many requests in flight, each request mostly waits for its own completion:
/// gathering would add latency for no batch.
pub const DEFAULT_MIN_IN_FLIGHT: usize = 10;

/// Connection tasks one wait must wake for the worker to count as busy.
pub const DEFAULT_BUSY_AFTER: u32 = 4;

impl Default for Pacing {
    fn default() -> Self {
        Self {
            max_gather: DEFAULT_MAX_GATHER,
            min_in_flight: DEFAULT_MIN_IN_FLIGHT,
            busy_after: DEFAULT_BUSY_AFTER,
        }
    }
}

/// The span over which the worker's busy share is measured.
pub const WINDOW: Duration = Duration::from_millis(10);
/// Share of a core above which the worker stops gathering: it is the bottleneck.
pub const SATURATED: f64 = 0.85;
/// Share of a core below which a worker that stopped gathering resumes.
pub const UNSATURATED: f64 = 0.70;

/// How the next wait goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Block until the first completion (or the next timer).
    First,
    /// Sleep this long, then reap whatever completed, without blocking.
    Gather(Duration),
}

/// Decides each wait from how many connection tasks the previous one woke, how many requests
/// are in flight, and how busy the worker has been.
///
/// Waking at the first completion is the rest state. A wait that wakes at least
/// [`Pacing::busy_after`] tasks while [`Pacing::min_in_flight`] requests are in flight starts
/// gathering; a gathering wait that brings nothing, or too few requests in flight, ends it.
/// Gathering is also suspended while the worker is saturated (see the module doc).
#[derive(Debug)]
pub struct Pacer {
    pacing: Pacing,
    woken: u32,
    gathering: bool,
    saturated: bool,
    /// The current window's start: wall clock and the thread's CPU time.
    window: Option<(Instant, Duration)>,
}

impl Pacer {
    /// A pacer with these settings.
    pub fn new(pacing: Pacing) -> Self {
        Self {
            pacing,
            woken: 0,
            gathering: false,
            saturated: false,
            window: None,
        }
    }

    /// `n` more connection tasks ran since the last wait.
    pub fn ran(&mut self, n: u32) {
        self.woken = self.woken.saturating_add(n);
    }

    /// How to wait now (`now`), with `in_flight` requests on the worker; starts counting anew.
    /// `cpu` reads the worker thread's CPU time; it is called once per [`WINDOW`].
    pub fn wait(&mut self, in_flight: usize, now: Instant, cpu: impl FnOnce() -> Duration) -> Wait {
        self.measure(now, cpu);
        let woken = std::mem::take(&mut self.woken);
        let p = &self.pacing;
        self.gathering = !p.max_gather.is_zero()
            && in_flight >= p.min_in_flight
            && if self.gathering {
                woken > 0
            } else {
                woken >= p.busy_after
            };
        if self.gathering && !self.saturated {
            Wait::Gather(p.max_gather)
        } else {
            Wait::First
        }
    }

    /// At the end of each window, decides from the CPU time it used whether the worker is
    /// saturated.
    fn measure(&mut self, now: Instant, cpu: impl FnOnce() -> Duration) {
        let Some((start, cpu_start)) = self.window else {
            self.window = Some((now, cpu()));
            return;
        };
        let span = now.saturating_duration_since(start);
        if span >= WINDOW {
            let cpu_now = cpu();
            let share = cpu_now.saturating_sub(cpu_start).as_secs_f64() / span.as_secs_f64();
            if share > SATURATED {
                self.saturated = true;
            } else if share < UNSATURATED {
                self.saturated = false;
            }
            self.window = Some((now, cpu_now));
        }
    }
}

thread_local! {
    /// Connection-task polls on this thread's loop: written by [`Counted`], read by [`run`]
    /// around each `runtime.run()`. A thread-local because a task's wrapper has no other way
    /// to reach the loop that polls it; it is the loop's own instrument, not a worker counter.
    static POLLS: Cell<u32> = const { Cell::new(0) };
}

fn polls() -> u32 {
    POLLS.with(Cell::get)
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
    load: &Load,
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
            match pacer.wait(load.in_flight(), Instant::now(), thread_cpu_time) {
                Wait::First => runtime.poll(),
                Wait::Gather(d) => {
                    std::thread::sleep(d);
                    runtime.poll_with(Some(Duration::ZERO));
                }
            }
        }
    })
}

/// The CPU time (user and system) this thread has used; zero if the clock cannot be read.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
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

    /// Drives a pacer through turns of a worker that uses `busy` µs of CPU, then waits
    /// `idle` µs without using any.
    struct Clock {
        now: Instant,
        cpu: Duration,
    }

    impl Clock {
        fn new() -> Self {
            Self {
                now: Instant::now(),
                cpu: Duration::ZERO,
            }
        }

        fn turn(
            &mut self,
            p: &mut Pacer,
            woken: u32,
            in_flight: usize,
            busy: u64,
            idle: u64,
        ) -> Wait {
            p.ran(woken);
            self.now += Duration::from_micros(busy);
            self.cpu += Duration::from_micros(busy);
            let cpu = self.cpu;
            let wait = p.wait(in_flight, self.now, || cpu);
            self.now += Duration::from_micros(idle);
            wait
        }
    }

    #[test]
    fn a_lone_event_waits_for_the_first_completion() {
        let (mut p, mut c) = (Pacer::new(Pacing::default()), Clock::new());
        assert_eq!(c.turn(&mut p, 0, 100, 10, 100), Wait::First);
        assert_eq!(c.turn(&mut p, 1, 100, 10, 100), Wait::First);
        assert_eq!(c.turn(&mut p, 3, 100, 10, 100), Wait::First);
    }

    #[test]
    fn a_busy_wait_starts_gathering_and_an_empty_one_stops_it() {
        let pacing = Pacing::default();
        let (mut p, mut c) = (Pacer::new(pacing), Clock::new());
        let gather = Wait::Gather(pacing.max_gather);
        assert_eq!(c.turn(&mut p, 4, 100, 10, 100), gather);
        // Once gathering, any batch keeps it going.
        assert_eq!(c.turn(&mut p, 1, 100, 10, 100), gather);
        // The gathering wait brought nothing: back to waking at the first completion.
        assert_eq!(c.turn(&mut p, 0, 100, 10, 100), Wait::First);
        assert_eq!(c.turn(&mut p, 2, 100, 10, 100), Wait::First);
    }

    #[test]
    fn few_requests_in_flight_never_gather() {
        let pacing = Pacing::default();
        let (mut p, mut c) = (Pacer::new(pacing), Clock::new());
        let few = pacing.min_in_flight - 1;
        assert_eq!(c.turn(&mut p, 100, few, 10, 100), Wait::First);
        assert_eq!(
            c.turn(&mut p, 100, pacing.min_in_flight, 10, 100),
            Wait::Gather(pacing.max_gather)
        );
        // Gathering stops as soon as the requests in flight drop below the threshold.
        assert_eq!(c.turn(&mut p, 100, few, 10, 100), Wait::First);
    }

    #[test]
    fn a_saturated_worker_stops_gathering_until_it_has_slack_again() {
        let pacing = Pacing::default();
        let (mut p, mut c) = (Pacer::new(pacing), Clock::new());
        let gather = Wait::Gather(pacing.max_gather);
        assert_eq!(c.turn(&mut p, 50, 100, 100, 100), gather);
        // Busy 95% of a whole window: saturated, no more sleeping.
        let mut waits = Vec::new();
        for _ in 0..120 {
            waits.push(c.turn(&mut p, 50, 100, 950, 50));
        }
        assert_eq!(waits.last(), Some(&Wait::First));
        // 78%: between the thresholds, the state holds.
        for _ in 0..120 {
            waits.push(c.turn(&mut p, 50, 100, 78, 22));
        }
        assert_eq!(waits.last(), Some(&Wait::First));
        // 50%: slack again, gathering resumes.
        for _ in 0..120 {
            waits.push(c.turn(&mut p, 50, 100, 50, 50));
        }
        assert_eq!(waits.last(), Some(&gather));
    }

    #[test]
    fn zero_max_gather_never_gathers() {
        let mut p = Pacer::new(Pacing {
            max_gather: Duration::ZERO,
            ..Pacing::default()
        });
        let mut c = Clock::new();
        assert_eq!(c.turn(&mut p, 100, 100, 10, 100), Wait::First);
    }

    #[test]
    fn counted_tasks_are_counted_and_the_loop_returns_their_output() {
        let rt = compio::runtime::Runtime::new().unwrap();
        let out = run(&rt, Pacing::default(), &Load::default(), async {
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
