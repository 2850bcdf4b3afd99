//! Worker threads, pinning, ring setup, listeners and buffer pools.
//!
//! Owns the threads and the io_uring rings. [`Server::start`] binds every listening socket in the
//! calling thread (so bind errors are startup errors), then starts one worker per core: each
//! pins itself, builds its own compio runtime (io_uring with SINGLE_ISSUER and DEFER_TASKRUN and
//! a provided-buffer pool) on its own thread, and accepts on its own SO_REUSEPORT sockets.
//! Nothing is shared between workers on the request path: the TLS configurations and backend
//! table are immutable `Arc`s, the backends' health is published in atomics by the health thread,
//! and everything else mutable is per worker.

pub mod buffers;
pub mod deadline;
pub mod event_loop;
pub mod listener;
pub mod recv;
pub mod rlimits;
mod worker;

use std::net::SocketAddr;
use std::num::NonZero;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rustls::ServerConfig;

use crate::http1::Limits;
use crate::proxy::Timeouts;
use crate::route::Router;
use crate::upstream::group::{Table, UpstreamSpec};

pub use listener::ListenError;

/// io_uring sizing for one worker.
#[derive(Debug, Clone, Copy)]
pub struct RingConfig {
    /// Submission queue entries.
    pub entries: u32,
    /// Provided buffers registered with the ring (rounded up to a power of two).
    pub buffers: u16,
    /// Bytes per provided buffer.
    pub buffer_len: usize,
}

impl Default for RingConfig {
    fn default() -> Self {
        Self {
            entries: 4096,
            buffers: 128,
            // Two full TLS records: a 16 KiB upload with its head arrives in one receive.
            buffer_len: 32 * 1024,
        }
    }
}

/// One listener to serve.
#[derive(Clone)]
pub struct ListenerPlan {
    /// The address to listen on (port 0 picks a free port).
    pub addr: SocketAddr,
    /// The accept backlog.
    pub backlog: u32,
    /// TLS for this listener.
    pub tls: Arc<ServerConfig>,
    /// Which upstream serves a request (indexes into [`Plan::upstreams`]).
    pub router: Arc<Router>,
}

/// Everything the workers need, immutable once started.
#[derive(Clone)]
pub struct Plan {
    /// Worker threads to start.
    pub workers: usize,
    /// Listeners.
    pub listeners: Vec<ListenerPlan>,
    /// Every backend of every upstream, with the published health.
    pub table: Arc<Table>,
    /// The upstreams; each worker builds its own view ([`Group`](crate::upstream::group::Group)).
    pub upstreams: Vec<Arc<UpstreamSpec>>,
    /// HTTP framing limits.
    pub limits: Limits,
    /// Connection timeouts.
    pub timeouts: Timeouts,
    /// How long a graceful stop waits for in-flight requests.
    pub drain: Duration,
    /// Idle connections kept per backend per worker.
    pub pool_max_idle: usize,
    /// How long an idle backend connection is kept.
    pub pool_idle_timeout: Duration,
    /// Client connections per worker at most.
    pub max_connections: usize,
    /// Ring sizing.
    pub ring: RingConfig,
    /// How the workers' event loops wait for completions.
    pub pacing: event_loop::Pacing,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listening socket could not be bound.
    #[error(transparent)]
    Listen(#[from] ListenError),
    /// A worker could not set up its ring.
    #[error("worker {index}: {message}")]
    Worker {
        /// Which worker.
        index: usize,
        /// What failed.
        message: String,
    },
    /// A worker thread could not be spawned.
    #[error("cannot spawn a worker thread: {0}")]
    Spawn(std::io::Error),
}

/// The running server.
pub struct Server {
    workers: Vec<JoinHandle<()>>,
    shutdown: Arc<AtomicBool>,
    /// The address each listener is bound to, in plan order.
    pub bound: Vec<SocketAddr>,
}

/// The cores the process may run on, one per worker (empty when affinity is unknown).
pub fn available_cores() -> Vec<core_affinity::CoreId> {
    core_affinity::get_core_ids().unwrap_or_default()
}

impl Server {
    /// Binds every listener and starts the workers; returns once all of them are serving.
    pub fn start(plan: Plan) -> Result<Server, StartError> {
        let workers = plan.workers.max(1);
        let mut per_worker: Vec<Vec<(std::net::TcpListener, usize)>> =
            (0..workers).map(|_| Vec::new()).collect();
        let mut bound = Vec::with_capacity(plan.listeners.len());
        for (index, listener) in plan.listeners.iter().enumerate() {
            let (sockets, addr) =
                listener::bind_reuseport(listener.addr, listener.backlog, workers)?;
            bound.push(addr);
            for (w, socket) in sockets.into_iter().enumerate() {
                per_worker[w].push((socket, index));
            }
        }

        let cores = available_cores();
        let plan = Arc::new(plan);
        let shutdown = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut handles = Vec::with_capacity(workers);
        for (index, sockets) in per_worker.into_iter().enumerate() {
            let core = (!cores.is_empty()).then(|| cores[index % cores.len()]);
            let plan = plan.clone();
            let shutdown = shutdown.clone();
            let ready = ready_tx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("ringway-w{index}"))
                .spawn(move || worker::run(index, core, sockets, plan, shutdown, ready))
                .map_err(StartError::Spawn)?;
            handles.push(handle);
        }
        drop(ready_tx);
        for _ in 0..workers {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err((index, message))) => {
                    shutdown.store(true, Ordering::SeqCst);
                    return Err(StartError::Worker { index, message });
                }
                Err(_) => {
                    shutdown.store(true, Ordering::SeqCst);
                    return Err(StartError::Worker {
                        index: 0,
                        message: "exited during startup".into(),
                    });
                }
            }
        }
        Ok(Server {
            workers: handles,
            shutdown,
            bound,
        })
    }

    /// A flag that, once set, makes every worker stop accepting, drain and exit.
    pub fn shutdown_flag(&self) -> Arc<AtomicBool> {
        self.shutdown.clone()
    }

    /// Waits for every worker to exit.
    pub fn wait(self) {
        for handle in self.workers {
            let _ = handle.join();
        }
    }
}

fn build_runtime(
    ring: &RingConfig,
    defer_taskrun: bool,
) -> std::io::Result<compio::runtime::Runtime> {
    let mut proactor = compio::driver::ProactorBuilder::new();
    proactor
        .capacity(ring.entries)
        .cqsize(ring.entries.saturating_mul(4))
        .single_issuer(true)
        .defer_taskrun(defer_taskrun)
        .coop_taskrun(!defer_taskrun)
        .buffer_pool_size(NonZero::new(ring.buffers).unwrap_or(NonZero::<u16>::MIN))
        .buffer_pool_buffer_len(ring.buffer_len);
    compio::runtime::RuntimeBuilder::new()
        .with_proactor(proactor)
        .build()
}
