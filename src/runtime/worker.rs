//! One worker: a pinned thread with its own ring, accept loops and connection tasks.
//!
//! Owns the accept loops, the per-worker connection cap, listeners added and removed while
//! serving ([`Command`]), and the graceful stop. On shutdown it stops accepting, tells the
//! handler to drain, lets in-flight requests finish up to the drain timeout, tells the handler
//! to stop, and returns; dropping the runtime closes what is left.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use std::future::poll_fn;

use compio::net::TcpStream;
use compio::runtime::JoinHandle;
use compio::runtime::fd::PollFd;

use super::{Handler, Load, Settings, Worker};

/// How often a worker looks at the shutdown flag.
const SHUTDOWN_POLL: Duration = Duration::from_millis(50);
/// How often a draining worker looks whether requests are still in flight.
const DRAIN_POLL: Duration = Duration::from_millis(20);
/// How long a draining worker keeps connections that have no request in flight, so that a
/// client about to send its next request on one is answered (with `Connection: close`)
/// instead of finding it closed under the request; bounded by the drain timeout.
const DRAIN_IDLE_GRACE: Duration = Duration::from_secs(1);
/// Pause after an accept error that will repeat at once (EMFILE, ENFILE, ENOMEM).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Pause after any other accept error, so that a persistent one does not spin the worker.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(10);

type Ready = mpsc::Sender<Result<(), (usize, String)>>;

/// What the server asks of a running worker.
#[derive(Debug)]
pub(super) enum Command {
    /// Accept on this socket, as listener `id`.
    Accept(std::net::TcpListener, usize),
    /// Stop accepting on listener `id` and close its sockets (connections already accepted
    /// keep being served).
    Close(usize),
}

/// What a worker thread starts with.
pub(super) struct Start {
    pub index: usize,
    pub core: Option<core_affinity::CoreId>,
    /// This worker's listening sockets, each with its listener's index.
    pub sockets: Vec<(std::net::TcpListener, usize)>,
    pub settings: Arc<Settings>,
    pub shutdown: Arc<AtomicBool>,
    pub commands: mpsc::Receiver<Command>,
    pub ready: Ready,
}

pub(super) fn run<H: Handler>(start: Start, make: &dyn Fn(Worker) -> H) {
    let Start {
        index,
        core,
        settings,
        ready,
        ..
    } = &start;
    if let Some(core) = core
        && !core_affinity::set_for_current(*core)
    {
        tracing::warn!(
            worker = index,
            core = core.id,
            "could not pin worker to its core"
        );
    }
    let runtime = match super::build_runtime(&settings.ring, true) {
        Ok(rt) => rt,
        Err(e) => {
            tracing::debug!("io_uring with DEFER_TASKRUN unavailable ({e}); trying without");
            match super::build_runtime(&settings.ring, false) {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready.send(Err((*index, format!("cannot set up io_uring: {e}"))));
                    return;
                }
            }
        }
    };
    let load = Rc::new(Load::default());
    let pacing = settings.pacing;
    let index = *index;
    // The handler is built inside the runtime: it may start tasks or use the ring.
    let handler = runtime.enter(|| {
        Rc::new(make(Worker {
            index,
            load: load.clone(),
        }))
    });
    // The worker runs as a task, and the event loop turns until it ends.
    let worker =
        super::event_loop::run(&runtime, pacing, &load, serve(start, handler, load.clone()));
    if worker.is_err() {
        tracing::error!(worker = index, "worker task panicked");
    }
}

async fn serve<H: Handler>(start: Start, handler: Rc<H>, load: Rc<Load>) {
    let Start {
        index,
        sockets,
        settings,
        shutdown,
        commands,
        ready,
        ..
    } = start;
    let max = settings.max_connections;
    let mut accepting: HashMap<usize, Vec<JoinHandle<()>>> = HashMap::new();
    for (socket, listener) in sockets {
        match readiness(socket) {
            Ok(l) => accepting
                .entry(listener)
                .or_default()
                .push(spawn_accept(&handler, &load, l, listener, max)),
            Err(e) => {
                let _ = ready.send(Err((index, format!("cannot register listener: {e}"))));
                return;
            }
        }
    }
    let _ = ready.send(Ok(()));

    let housekeeping = compio::runtime::spawn(handler.clone().housekeeping());
    let trimmer = compio::runtime::spawn(trim_buffers());
    let ticker = compio::runtime::spawn(super::deadline::run_ticker());
    while !shutdown.load(Ordering::Relaxed) {
        compio::time::sleep(SHUTDOWN_POLL).await;
        while let Ok(command) = commands.try_recv() {
            match command {
                Command::Accept(socket, listener) => match readiness(socket) {
                    Ok(l) => accepting
                        .entry(listener)
                        .or_default()
                        .push(spawn_accept(&handler, &load, l, listener, max)),
                    Err(e) => tracing::error!(
                        worker = index,
                        listener,
                        "cannot register a new listener's socket: {e}"
                    ),
                },
                // Dropping the accept tasks cancels their accepts and closes their sockets.
                Command::Close(listener) => drop(accepting.remove(&listener)),
            }
        }
    }
    drop(housekeeping);
    drop(trimmer);
    // Close the listening sockets now, so the kernel stops queueing connections for us.
    drop(accepting);

    // Graceful stop: no more accepts; let in-flight requests finish, and give open
    // connections a moment to send the request they may be about to send.
    let start = Instant::now();
    let deadline = start + settings.drain;
    handler.drain(deadline);
    let grace = start + DRAIN_IDLE_GRACE.min(settings.drain);
    loop {
        let now = Instant::now();
        let busy = load.in_flight() > 0 || (load.connections() > 0 && now < grace);
        if !busy || now >= deadline {
            break;
        }
        compio::time::sleep(DRAIN_POLL).await;
    }
    if load.in_flight() > 0 {
        tracing::warn!(
            worker = index,
            in_flight = load.in_flight(),
            "drain timeout: closing requests still in flight"
        );
    }
    handler.stop();
    drop(ticker);
}

/// A listening socket made non-blocking, with its readiness polled through the ring.
fn readiness(socket: std::net::TcpListener) -> std::io::Result<PollFd<std::net::TcpListener>> {
    socket.set_nonblocking(true)?;
    PollFd::new(socket)
}

fn spawn_accept<H: Handler>(
    handler: &Rc<H>,
    load: &Rc<Load>,
    listener: PollFd<std::net::TcpListener>,
    index: usize,
    max_connections: usize,
) -> JoinHandle<()> {
    let (handler, load) = (handler.clone(), load.clone());
    compio::runtime::spawn(async move {
        accept_loop(&handler, &load, &listener, index, max_connections).await;
    })
}

/// Frees, once per period, the buffers of the worker's free lists nobody took since the last
/// time (see [`crate::buf`]).
async fn trim_buffers() {
    loop {
        compio::time::sleep(crate::buf::TRIM_PERIOD).await;
        crate::buf::trim();
    }
}

/// Accepts on `listener` until the task is dropped.
///
/// Readiness, then a plain `accept(2)`: dropping the task while it waits cancels a poll, which
/// takes nothing off the accept queue. (An io_uring accept cancelled after it completed would
/// take a connection and close it: a reset for a client whose connection was already
/// established. The accept queue stays whole for the process that takes the socket over at a
/// binary upgrade, or for the other sockets of the group when a listener is removed.)
async fn accept_loop<H: Handler>(
    handler: &Rc<H>,
    load: &Rc<Load>,
    listener: &PollFd<std::net::TcpListener>,
    index: usize,
    max_connections: usize,
) {
    loop {
        let accepted = poll_fn(|cx| listener.poll_accept_with(cx, |l| l.accept())).await;
        match accepted.and_then(|(stream, peer)| Ok((TcpStream::from_std(stream)?, peer))) {
            Ok((stream, peer)) => {
                let open = load.connections();
                if open >= max_connections {
                    tracing::debug!(%peer, open, "connection limit reached: refusing");
                    drop(stream);
                    continue;
                }
                let guard = load.open_connection();
                let handler = handler.clone();
                // The serve future is created inside the task: built outside and moved in, it
                // would be stored twice in the task (once as the captured value, once as the
                // awaited one), and an idle connection costs its task's size.
                compio::runtime::spawn(super::event_loop::Counted::new(async move {
                    let _guard = guard;
                    handler.serve(index, stream, peer).await;
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
                    compio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
        }
    }
}
