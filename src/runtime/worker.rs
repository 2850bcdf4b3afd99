//! One worker: a pinned thread with its own ring, accept loops and connection tasks.
//!
//! Owns the per-worker [`Context`] and the accept loops. On shutdown it stops accepting, lets
//! in-flight requests finish (responses then say `Connection: close`) up to the drain timeout,
//! and returns; dropping the runtime closes idle connections.

use std::cell::RefCell;

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use compio::net::TcpListener;
use futures_util::future::{Either, join_all, select};

use crate::proxy::{self, Context, Counters, ListenerCtx};
use crate::upstream::ConnPool;
use crate::upstream::group::Group;

use super::Plan;

/// How often a worker looks at the shutdown flag.
const SHUTDOWN_POLL: Duration = Duration::from_millis(50);
/// Pause after an accept error that will repeat at once (EMFILE, ENFILE, ENOMEM).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

type Ready = mpsc::Sender<Result<(), (usize, String)>>;

pub(super) fn run(
    index: usize,
    core: Option<core_affinity::CoreId>,
    sockets: Vec<(std::net::TcpListener, usize)>,
    plan: Arc<Plan>,
    shutdown: Arc<AtomicBool>,
    ready: Ready,
) {
    if let Some(core) = core
        && !core_affinity::set_for_current(core)
    {
        tracing::warn!(
            worker = index,
            core = core.id,
            "could not pin worker to its core"
        );
    }
    let runtime = match super::build_runtime(&plan.ring, true) {
        Ok(rt) => rt,
        Err(e) => {
            tracing::debug!("io_uring with DEFER_TASKRUN unavailable ({e}); trying without");
            match super::build_runtime(&plan.ring, false) {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready.send(Err((index, format!("cannot set up io_uring: {e}"))));
                    return;
                }
            }
        }
    };
    // The worker runs as a task, and the event loop turns until it ends.
    let pacing = plan.pacing;
    let worker = super::event_loop::run(
        &runtime,
        pacing,
        serve(index, sockets, plan, shutdown, ready),
    );
    if worker.is_err() {
        tracing::error!(worker = index, "worker task panicked");
    }
}

async fn serve(
    index: usize,
    sockets: Vec<(std::net::TcpListener, usize)>,
    plan: Arc<Plan>,
    shutdown: Arc<AtomicBool>,
    ready: Ready,
) {
    let listeners: Vec<Rc<ListenerCtx>> = plan
        .listeners
        .iter()
        .map(|l| {
            Rc::new(ListenerCtx {
                tls: l.tls.clone(),
                router: l.router.clone(),
            })
        })
        .collect();
    let groups = plan
        .upstreams
        .iter()
        .enumerate()
        .map(|(u, spec)| {
            // Each worker's policies draw from their own random sequence.
            let seed = (index as u64) << 32 | u as u64;
            Group::new(spec.clone(), plan.table.clone(), seed)
        })
        .collect();
    let ctx = Rc::new(Context {
        table: plan.table.clone(),
        groups,
        pool: RefCell::new(ConnPool::new(
            plan.table.len(),
            plan.pool_max_idle,
            plan.pool_idle_timeout,
        )),
        limits: plan.limits,
        timeouts: plan.timeouts,
        max_connections: plan.max_connections,
        draining: Default::default(),
        counters: Counters::default(),
    });

    let mut bound = Vec::with_capacity(sockets.len());
    for (socket, li) in sockets {
        match TcpListener::from_std(socket) {
            Ok(l) => bound.push((l, listeners[li].clone())),
            Err(e) => {
                let _ = ready.send(Err((index, format!("cannot register listener: {e}"))));
                return;
            }
        }
    }
    let _ = ready.send(Ok(()));

    let sweeper = compio::runtime::spawn(sweep_pool(ctx.clone(), plan.pool_idle_timeout));
    let trimmer = compio::runtime::spawn(trim_buffers());
    let ticker = compio::runtime::spawn(super::deadline::run_ticker());
    let stop = std::pin::pin!(wait_for(shutdown));
    {
        let accepting = bound
            .iter()
            .map(|(l, lctx)| accept_loop(ctx.clone(), l, lctx.clone()));
        let accept_all = std::pin::pin!(join_all(accepting));
        if let Either::Right(_) = select(stop, accept_all).await {
            tracing::error!(worker = index, "accept loops ended");
        }
    }
    drop(sweeper);
    drop(trimmer);
    // Close the listening sockets now, so the kernel stops queueing connections for us.
    for (listener, _) in bound {
        let _ = listener.close().await;
    }

    // Graceful stop: no more accepts; let in-flight requests finish.
    ctx.draining.set(true);
    let deadline = Instant::now() + plan.drain;
    while super::event_loop::in_flight() > 0 && Instant::now() < deadline {
        compio::time::sleep(Duration::from_millis(20)).await;
    }
    if super::event_loop::in_flight() > 0 {
        tracing::warn!(
            worker = index,
            in_flight = super::event_loop::in_flight(),
            "drain timeout: closing requests still in flight"
        );
    }
    ctx.pool.borrow_mut().clear();
    drop(ticker);
}

async fn wait_for(flag: Arc<AtomicBool>) {
    while !flag.load(Ordering::Relaxed) {
        compio::time::sleep(SHUTDOWN_POLL).await;
    }
}

async fn sweep_pool(ctx: Rc<Context>, idle_timeout: Duration) {
    let period = (idle_timeout / 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        compio::time::sleep(period).await;
        ctx.pool.borrow_mut().sweep(Instant::now());
    }
}

/// Frees, once per period, the buffers of the worker's free lists nobody took since the last
/// time (see [`crate::buf`]).
async fn trim_buffers() {
    loop {
        compio::time::sleep(crate::buf::TRIM_PERIOD).await;
        crate::buf::trim();
    }
}

/// Decrements the connection count when a connection task ends (or is dropped).
struct ConnGuard(Rc<Context>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let c = &self.0.counters.connections;
        c.set(c.get().saturating_sub(1));
    }
}

async fn accept_loop(ctx: Rc<Context>, listener: &TcpListener, lctx: Rc<ListenerCtx>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let open = ctx.counters.connections.get();
                if open >= ctx.max_connections {
                    tracing::debug!(%peer, open, "connection limit reached: refusing");
                    drop(stream);
                    continue;
                }
                ctx.counters.connections.set(open + 1);
                let guard = ConnGuard(ctx.clone());
                let (ctx, lctx) = (ctx.clone(), lctx.clone());
                // The serve future is created inside the task: built outside and moved in, it
                // would be stored twice in the task (once as the captured value, once as the
                // awaited one), and an idle connection costs its task's size.
                compio::runtime::spawn(super::event_loop::Counted::new(async move {
                    let _guard = guard;
                    proxy::serve(ctx, lctx, stream, peer).await;
                }))
                .detach();
            }
            Err(e) => match e.raw_os_error() {
                Some(libc::ECONNABORTED) | Some(libc::EINTR) => {}
                Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS)
                | Some(libc::ENOMEM) => {
                    tracing::warn!("accept: {e}; pausing accepts for {ACCEPT_BACKOFF:?}");
                    compio::time::sleep(ACCEPT_BACKOFF).await;
                }
                _ => {
                    tracing::warn!("accept: {e}");
                    compio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
}
