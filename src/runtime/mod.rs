//! Worker threads, pinning, ring setup, listeners, the event loop and its clock.
//!
//! Owns the threads and the io_uring rings. [`Server::start`] binds every listening socket in the
//! calling thread (so bind errors are startup errors), then starts one worker per core: each
//! pins itself, builds its own compio runtime (io_uring with SINGLE_ISSUER and DEFER_TASKRUN and
//! a provided-buffer pool) on its own thread, builds its [`Handler`] there, and accepts on its
//! own SO_REUSEPORT sockets.
//!
//! This layer knows nothing of TLS or HTTP: what a connection is for is the handler's business
//! (the proxy's). It imports only the buffer free list ([`crate::buf`]) from the crate.

pub mod deadline;
pub mod event_loop;
pub mod listener;
pub mod load;
pub mod memory;
pub mod recv;
pub mod rlimits;
mod worker;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZero;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use compio::net::TcpStream;

pub use listener::ListenError;
pub use load::Load;

/// Bytes per provided buffer: two full TLS records, so a 16 KiB upload with its head arrives
/// in one receive.
pub const RING_BUFFER_LEN: usize = 32 * 1024;

/// Provided buffers per worker at least, when sized from the load.
pub const MIN_RING_BUFFERS: u16 = 128;
/// Provided buffers per worker at most, when sized from the load (16 MiB of buffers). The ring
/// is a FIFO: the kernel takes buffers in turn, so every buffer gets touched under steady
/// traffic and the pool's whole size becomes resident; past this size a bigger pool costs more
/// memory than the rare degraded receive it saves (see `docs/ARCHITECTURE.md`).
pub const MAX_RING_BUFFERS: u16 = 512;
/// Client connections per provided buffer, when sized from the load: one turn of the event
/// loop reaps at most one receive per connection (client side, and backend side while a
/// request is in flight), and in practice a fraction of them (measured: with 5,000 busy
/// connections on one worker, 512 buffers left 0.2% of receives to the owned-buffer path,
/// 256 left 1.5%, 128 left 18%).
pub const CONNECTIONS_PER_RING_BUFFER: usize = 16;
/// The largest pool a configuration may ask for (compio counts buffers in a `u16`, and the
/// kernel wants a power of two).
pub const MAX_CONFIGURED_RING_BUFFERS: u32 = 32768;

/// io_uring sizing for one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingConfig {
    /// Submission queue entries.
    pub entries: u32,
    /// Provided buffers registered with the ring (a power of two).
    pub buffers: u16,
    /// Bytes per provided buffer.
    pub buffer_len: usize,
}

impl Default for RingConfig {
    fn default() -> Self {
        Self {
            entries: 4096,
            buffers: MIN_RING_BUFFERS,
            buffer_len: RING_BUFFER_LEN,
        }
    }
}

impl RingConfig {
    /// The ring for a worker that holds up to `connections` client connections: `configured`
    /// provided buffers (rounded up to a power of two) when set, else one per
    /// [`CONNECTIONS_PER_RING_BUFFER`] connections, between [`MIN_RING_BUFFERS`] and
    /// [`MAX_RING_BUFFERS`].
    pub fn for_load(connections: usize, configured: Option<u32>) -> Self {
        let buffers = match configured {
            Some(n) => n.clamp(1, MAX_CONFIGURED_RING_BUFFERS).next_power_of_two(),
            None => {
                let wanted = (connections / CONNECTIONS_PER_RING_BUFFER).max(1);
                let wanted = u32::try_from(wanted).unwrap_or(u32::MAX);
                wanted
                    .clamp(u32::from(MIN_RING_BUFFERS), u32::from(MAX_RING_BUFFERS))
                    .next_power_of_two()
            }
        };
        Self {
            buffers: u16::try_from(buffers).unwrap_or(u16::MAX / 2 + 1),
            ..Self::default()
        }
    }
}

/// One listening address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen {
    /// What handlers know the listener by (stable while it is open).
    pub id: usize,
    /// The address to listen on (port 0 picks a free port).
    pub addr: SocketAddr,
    /// The accept backlog.
    pub backlog: u32,
}

/// How the workers run, immutable once started.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Worker threads to start.
    pub workers: usize,
    /// Listening addresses at startup.
    pub listeners: Vec<Listen>,
    /// How long a graceful stop waits for in-flight requests.
    pub drain: Duration,
    /// Client connections per worker at most; more are closed at accept.
    pub max_connections: usize,
    /// Ring sizing.
    pub ring: RingConfig,
    /// How the workers' event loops wait for completions.
    pub pacing: event_loop::Pacing,
}

/// What a worker is given to build its handler with, on its own thread.
pub struct Worker {
    /// The worker's index, from 0.
    pub index: usize,
    /// The worker's load: the handler counts its requests in flight here.
    pub load: Rc<Load>,
}

/// The application's side of a worker: what it does with each accepted connection.
///
/// Built once per worker, on the worker's thread (so it may hold `Rc`s and `Cell`s), and
/// shared by that worker's connection tasks.
pub trait Handler: 'static {
    /// Serves one connection accepted on listener `listener` (its [`Listen::id`]) until it
    /// closes.
    fn serve(
        self: Rc<Self>,
        listener: usize,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> impl Future<Output = ()> + 'static;

    /// Housekeeping that runs beside the accept loops until the worker stops accepting (idle
    /// connection sweeps and the like).
    fn housekeeping(self: Rc<Self>) -> impl Future<Output = ()> + 'static;

    /// The worker stopped accepting: requests in flight finish, then their connections close.
    /// At `deadline` the worker stops whatever is left (long-lived requests such as tunnels
    /// should end themselves just before it).
    fn drain(&self, deadline: std::time::Instant);

    /// The drain is over (every request answered, or the drain timeout passed): release what
    /// is idle before the worker exits.
    fn stop(&self);
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
    control: Control,
    /// The address each listener is bound to, in [`Settings::listeners`] order.
    pub bound: Vec<SocketAddr>,
}

/// What another thread may ask of the running workers: add or remove listeners, hand the
/// listening sockets to a successor, stop.
#[derive(Debug, Clone)]
pub struct Control {
    shutdown: Arc<AtomicBool>,
    commands: Vec<mpsc::Sender<worker::Command>>,
    /// A duplicate of every open listening socket, by listener id, with the address the
    /// listener was configured with: what a binary upgrade hands over. Dropped when the
    /// listener closes or the server stops, so that the sockets close with the workers' own.
    listening: Arc<Mutex<HashMap<usize, Listening>>>,
}

/// One open listener's sockets, as [`Control`] keeps them for a successor.
#[derive(Debug)]
struct Listening {
    addr: SocketAddr,
    sockets: Vec<OwnedFd>,
}

/// Listening sockets handed over by the process this one replaces, by listener id (see
/// [`Server::start`]).
pub type Inherited = HashMap<usize, Vec<std::net::TcpListener>>;

/// One listener's sockets handed to a successor.
#[derive(Debug)]
pub struct Handover {
    /// The address the listener was configured with (the successor matches its own
    /// configuration against it).
    pub addr: SocketAddr,
    /// One per worker: the SO_REUSEPORT group with its accept queues.
    pub sockets: Vec<OwnedFd>,
}

/// A listener bound by [`Server::bind`] and not yet accepting: the kernel queues its
/// connections until [`Server::accept`] hands it to the workers. Dropping it closes it.
#[derive(Debug)]
pub struct Bound {
    /// The listener's id.
    pub id: usize,
    /// The address it was configured with.
    configured: SocketAddr,
    /// The address it is bound to (with the real port when port 0 was asked for).
    pub addr: SocketAddr,
    sockets: Vec<std::net::TcpListener>,
}

/// The cores the process may run on, one per worker (empty when affinity is unknown).
pub fn available_cores() -> Vec<core_affinity::CoreId> {
    core_affinity::get_core_ids().unwrap_or_default()
}

impl Server {
    /// Binds every listener (or takes its sockets from `inherited`: a binary upgrade adopts the
    /// old process's sockets with their queues, and binds more only when it has more workers)
    /// and starts the workers, each with the handler `make` builds on the worker's thread;
    /// returns once all of them are serving.
    pub fn start<H, F>(
        settings: Settings,
        mut inherited: Inherited,
        make: F,
    ) -> Result<Server, StartError>
    where
        H: Handler,
        F: Fn(Worker) -> H + Send + Sync + 'static,
    {
        let workers = settings.workers.max(1);
        let mut per_worker: Vec<Vec<(std::net::TcpListener, usize)>> =
            (0..workers).map(|_| Vec::new()).collect();
        let mut bound = Vec::with_capacity(settings.listeners.len());
        let mut listening = HashMap::new();
        for listener in &settings.listeners {
            let (sockets, addr) = match inherited.remove(&listener.id) {
                Some(sockets) if !sockets.is_empty() => {
                    listener::adopt(sockets, listener.addr, listener.backlog, workers)?
                }
                _ => listener::bind_reuseport(listener.addr, listener.backlog, workers)?,
            };
            bound.push(addr);
            listening.insert(
                listener.id,
                Listening::of(listener.addr, &sockets).map_err(|source| {
                    StartError::Listen(ListenError::Other {
                        addr: listener.addr,
                        source,
                    })
                })?,
            );
            for (k, socket) in sockets.into_iter().enumerate() {
                per_worker[k % workers].push((socket, listener.id));
            }
        }

        let cores = available_cores();
        let settings = Arc::new(settings);
        let make = Arc::new(make);
        let shutdown = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut handles = Vec::with_capacity(workers);
        let mut commands = Vec::with_capacity(workers);
        for (index, sockets) in per_worker.into_iter().enumerate() {
            let (command_tx, command_rx) = mpsc::channel();
            commands.push(command_tx);
            let core = (!cores.is_empty()).then(|| cores[index % cores.len()]);
            let settings = settings.clone();
            let make = make.clone();
            let shutdown = shutdown.clone();
            let ready = ready_tx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("ringway-w{index}"))
                .spawn(move || {
                    let start = worker::Start {
                        index,
                        core,
                        sockets,
                        settings,
                        shutdown,
                        commands: command_rx,
                        ready,
                    };
                    worker::run(start, &*make)
                })
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
            control: Control {
                shutdown,
                commands,
                listening: Arc::new(Mutex::new(listening)),
            },
            bound,
        })
    }

    /// A handle to control the workers from another thread.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// Waits for every worker to exit.
    pub fn wait(self) {
        for handle in self.workers {
            let _ = handle.join();
        }
    }
}

impl Control {
    /// Binds a listener to add while serving (one SO_REUSEPORT socket per worker, as at
    /// startup); nothing accepts on it until [`Server::accept`].
    pub fn bind(&self, listen: Listen) -> Result<Bound, ListenError> {
        let (sockets, addr) =
            listener::bind_reuseport(listen.addr, listen.backlog, self.commands.len())?;
        Ok(Bound {
            id: listen.id,
            configured: listen.addr,
            addr,
            sockets,
        })
    }

    /// Hands a bound listener to the workers, which start accepting on it within their next
    /// poll (about 50 ms); the connections queued meanwhile are accepted then.
    pub fn accept(&self, bound: Bound) {
        match Listening::of(bound.configured, &bound.sockets) {
            Ok(kept) => {
                self.listening().insert(bound.id, kept);
            }
            Err(e) => tracing::warn!(
                addr = %bound.addr,
                "cannot keep the new listener's sockets for a binary upgrade: {e}"
            ),
        }
        for (socket, worker) in bound.sockets.into_iter().zip(&self.commands) {
            // A worker that has exited drops the socket with the command.
            let _ = worker.send(worker::Command::Accept(socket, bound.id));
        }
    }

    /// Makes every worker stop accepting on listener `id` and close its sockets; the
    /// connections already accepted are served on.
    pub fn close(&self, id: usize) {
        self.listening().remove(&id);
        for worker in &self.commands {
            let _ = worker.send(worker::Command::Close(id));
        }
    }

    /// Makes every worker stop accepting, drain and exit.
    pub fn shutdown(&self) {
        self.listening().clear();
        self.shutdown.store(true, Ordering::SeqCst);
    }

    /// Whether the workers were told to stop (draining or gone).
    pub fn is_stopping(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    /// Duplicates of every open listener's sockets, for a successor process.
    pub fn handover(&self) -> std::io::Result<Vec<Handover>> {
        self.listening()
            .values()
            .map(|l| {
                Ok(Handover {
                    addr: l.addr,
                    sockets: l
                        .sockets
                        .iter()
                        .map(OwnedFd::try_clone)
                        .collect::<std::io::Result<_>>()?,
                })
            })
            .collect()
    }

    fn listening(&self) -> std::sync::MutexGuard<'_, HashMap<usize, Listening>> {
        self.listening
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Listening {
    /// Duplicates of `sockets`, for listener `addr`.
    fn of(addr: SocketAddr, sockets: &[std::net::TcpListener]) -> std::io::Result<Self> {
        Ok(Self {
            addr,
            sockets: sockets
                .iter()
                .map(|s| s.try_clone().map(OwnedFd::from))
                .collect::<std::io::Result<_>>()?,
        })
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
        .buffer_pool_buffer_len(ring.buffer_len)
        .buffer_pool_allocator::<memory::RingMemory>();
    compio::runtime::RuntimeBuilder::new()
        .with_proactor(proactor)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_is_sized_from_the_connection_limit_within_bounds() {
        let buffers =
            |connections, configured| RingConfig::for_load(connections, configured).buffers;
        assert_eq!(buffers(0, None), MIN_RING_BUFFERS);
        assert_eq!(buffers(100, None), MIN_RING_BUFFERS);
        // 4,000 connections: 250 wanted, the next power of two.
        assert_eq!(buffers(4_000, None), 256);
        // The default limit (10,000 per worker) and more: the cap.
        assert_eq!(buffers(10_000, None), MAX_RING_BUFFERS);
        assert_eq!(buffers(usize::MAX, None), MAX_RING_BUFFERS);
        // A configured size wins, rounded up to a power of two and bounded.
        assert_eq!(buffers(10_000, Some(4)), 4);
        assert_eq!(buffers(10_000, Some(3)), 4);
        assert_eq!(buffers(10, Some(1000)), 1024);
        assert_eq!(buffers(10, Some(0)), 1);
        assert_eq!(buffers(10, Some(u32::MAX)), 32768);
        assert_eq!(RingConfig::for_load(1, None).buffer_len, RING_BUFFER_LEN);
    }
}
