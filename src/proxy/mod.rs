//! The per-connection task: TLS, HTTP/1.1 and the backend exchange, driven together.
//!
//! Owns what happens to one client connection from accept to close, as the runtime's
//! [`Handler`]: the TLS stream ([`tls_conn`]), the request loop and the backend exchange's I/O
//! ([`session`]), relaying bodies and heads ([`relay`]), the decisions of an exchange without
//! I/O (retries, hedging's eligibility, keep-alive, backend reuse, local answers: [`rules`]),
//! the hold on the chosen backend ([`lease`]), reading a PROXY header before the handshake
//! ([`proxy_header`]), errors and whose fault they are ([`error`]),
//! failure logging ([`failure_log`]), what a worker serves ([`plan`]), how a reloaded plan
//! reaches the workers ([`generation`]), and the byte tunnels of upgraded connections
//! ([`tunnel`]: WebSocket). Per-worker state ([`Context`]) uses `Cell`/`RefCell`:
//! it is never shared across cores.

pub mod access;
pub mod error;
pub mod failure_log;
pub mod generation;
pub mod lease;
pub mod plan;
mod proxy_header;
mod relay;
pub mod rules;
pub mod session;
pub mod tls_conn;
mod tunnel;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use compio::net::TcpStream;

use crate::access_log::LineBuffer;
use crate::metrics::WorkerMetrics;
use crate::runtime::{Handler, Load, Worker};
use crate::upstream::group::WorkerBackends;
use crate::upstream::{BackendConn, ConnPool};
use generation::{Generation, Published};

pub use plan::{HttpsRedirect, ListenerPlan, Plan, PoolSettings, RequestIds, RoutePlan, Timeouts};

/// How often an idle worker looks for a new plan (a busy one sees it at its next request).
const RELOAD_POLL: Duration = Duration::from_millis(100);

/// One worker's proxy: the plan it serves and the state its connections share.
pub struct Context {
    /// Where new plans come from (shared by all workers).
    published: Arc<Published>,
    /// What this worker serves now: the plan and its view of the plan's upstreams.
    current: RefCell<Rc<Generation>>,
    /// What this worker knows of each backend, kept across plans by identity.
    backends: RefCell<WorkerBackends>,
    /// Idle keep-alive connections to backends, by table index of the current generation.
    pool: RefCell<ConnPool<BackendConn>>,
    /// The worker's index.
    worker: usize,
    /// The worker's load: connections open, requests in flight.
    pub load: Rc<Load>,
    /// Set when the worker is draining: responses say `Connection: close`.
    pub draining: Cell<bool>,
    /// The worker's open tunnels (upgraded connections), closed before a drain ends.
    pub tunnels: tunnel::Tunnels,
    /// What the worker counts of its clients (read by the admin thread).
    pub metrics: Arc<WorkerMetrics>,
    /// The worker's access-log lines not yet handed to the writer; `None` when the log is off.
    pub access_log: Option<RefCell<LineBuffer>>,
    /// The worker's `X-Request-Id`s.
    pub request_ids: access::RequestIdSource,
    /// The wall clock at an instant, refreshed on each housekeeping tick: log lines take their
    /// time from it and the instant a request ended, without another clock read.
    wall: Cell<(std::time::SystemTime, Instant)>,
}

impl Context {
    /// The proxy of `worker`, serving what `published` holds, counting into `metrics`.
    pub fn new(
        published: Arc<Published>,
        worker: Worker,
        metrics: Arc<WorkerMetrics>,
        access_log: Option<LineBuffer>,
    ) -> Self {
        let (number, plan) = published.current();
        let mut backends = WorkerBackends::default();
        let generation = Generation::new(number, plan, worker.index, &mut backends);
        let p = &generation.plan;
        let pool = ConnPool::new(p.table.len(), p.pool.max_idle, p.pool.idle_timeout);
        Self {
            published,
            current: RefCell::new(Rc::new(generation)),
            backends: RefCell::new(backends),
            pool: RefCell::new(pool),
            worker: worker.index,
            load: worker.load,
            draining: Cell::new(false),
            tunnels: tunnel::Tunnels::default(),
            metrics,
            access_log: access_log.map(RefCell::new),
            request_ids: access::RequestIdSource::new(),
            wall: Cell::new((std::time::SystemTime::now(), Instant::now())),
        }
    }

    /// The generation a request that starts now runs on: the current one, after following a
    /// reload if one was published since.
    pub fn current(&self) -> Rc<Generation> {
        if self.published.generation() != self.current.borrow().number {
            self.follow();
        }
        self.current.borrow().clone()
    }

    /// Builds the generation of the published plan; moves the idle connections of the
    /// backends it keeps to their new places and closes the others.
    fn follow(&self) {
        let (number, plan) = self.published.current();
        let next = Generation::new(number, plan, self.worker, &mut self.backends.borrow_mut());
        let previous = std::mem::replace(&mut *self.current.borrow_mut(), Rc::new(next));
        let current = self.current.borrow();
        let (old, new) = (&previous.plan.table, &current.plan.table);
        self.pool.borrow_mut().remap(
            new.len(),
            |k| new.index_of(old.key(k)),
            current.plan.pool.max_idle,
            current.plan.pool.idle_timeout,
        );
    }

    /// The wall-clock time at `at` (an instant close to now).
    pub fn wall_time(&self, at: Instant) -> std::time::SystemTime {
        let (wall, instant) = self.wall.get();
        wall + at.saturating_duration_since(instant)
    }

    /// An idle connection to table backend `backend` of generation `generation` (see
    /// [`ConnPool::checkout`]); none when a reload replaced that generation.
    pub fn checkout(
        &self,
        generation: &Generation,
        backend: usize,
        now: Instant,
        trust_recent: bool,
    ) -> Option<BackendConn> {
        if generation.number != self.current.borrow().number {
            return None;
        }
        self.pool.borrow_mut().checkout(backend, now, trust_recent)
    }

    /// Keeps `conn` to table backend `backend` of generation `generation` for reuse; closes it
    /// when a reload replaced that generation (the backend's place may have changed).
    pub fn checkin(
        &self,
        generation: &Generation,
        backend: usize,
        conn: BackendConn,
        now: Instant,
    ) {
        if generation.number == self.current.borrow().number {
            self.pool.borrow_mut().checkin(backend, conn, now);
        }
    }
}

impl Handler for Context {
    fn serve(
        self: Rc<Self>,
        listener: usize,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> impl Future<Output = ()> + 'static {
        session::serve(self, listener, stream, peer)
    }

    async fn housekeeping(self: Rc<Self>) {
        let mut swept = Instant::now();
        loop {
            compio::time::sleep(RELOAD_POLL).await;
            // Follows a reload even without traffic: a removed backend's idle connections close.
            let serving = self.current();
            let period = serving.plan.pool.sweep_period();
            let now = Instant::now();
            let mut pool = self.pool.borrow_mut();
            if now.saturating_duration_since(swept) >= period {
                pool.sweep(now);
                swept = now;
            }
            if let Some(log) = &self.access_log {
                // Lines never wait longer than a tick for the writer.
                log.borrow_mut().flush();
                self.wall
                    .set((std::time::SystemTime::now(), Instant::now()));
            }
            let table = &serving.plan.table;
            for i in 0..table.len() {
                let idle = pool.idle_count(i) as u64;
                table.metrics(i).worker(self.worker).idle.set(idle);
            }
        }
    }

    fn drain(&self, deadline: Instant) {
        self.draining.set(true);
        self.tunnels.close_all_at(deadline);
    }

    fn stop(&self) {
        if let Some(log) = &self.access_log {
            log.borrow_mut().flush();
        }
        self.pool.borrow_mut().clear();
    }
}
