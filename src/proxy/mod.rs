//! The per-connection task: TLS, HTTP/1.1 and the backend exchange, driven together.
//!
//! Owns what happens to one client connection from accept to close, as the runtime's
//! [`Handler`]: the TLS stream ([`tls_conn`]), the request loop and the backend exchange's I/O
//! ([`session`]), relaying bodies and heads ([`relay`]), the decisions of an exchange without
//! I/O (retries, hedging's eligibility, keep-alive, backend reuse, local answers: [`rules`]),
//! the hold on the chosen backend ([`lease`]), errors and whose fault they are ([`error`]),
//! failure logging ([`failure_log`]), and what a worker serves ([`plan`]). Per-worker state
//! ([`Context`]) uses `Cell`/`RefCell`: it is never shared across cores.

pub mod error;
pub mod failure_log;
pub mod lease;
pub mod plan;
mod relay;
pub mod rules;
pub mod session;
pub mod tls_conn;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use compio::net::TcpStream;

use crate::runtime::{Handler, Load, Worker};
use crate::upstream::group::Group;
use crate::upstream::{BackendConn, ConnPool};
use failure_log::FailureLog;

pub use plan::{ListenerPlan, Plan, PoolSettings, Timeouts};

/// One worker's proxy: the plan it serves and the state its connections share.
pub struct Context {
    /// What this worker serves: listeners, upstreams, limits, timeouts (shared by all workers).
    pub plan: Arc<Plan>,
    /// This worker's view of each upstream (policy state, in-flight counts, ejections), by
    /// upstream index.
    pub groups: Vec<Group>,
    /// Idle keep-alive connections to backends, by table index.
    pub pool: RefCell<ConnPool<BackendConn>>,
    /// The worker's load: connections open, requests in flight.
    pub load: Rc<Load>,
    /// Set when the worker is draining: responses say `Connection: close`.
    pub draining: Cell<bool>,
    /// How often this worker logs each backend's failures.
    pub failures: FailureLog,
}

impl Context {
    /// The proxy of `worker`, serving `plan`.
    pub fn new(plan: Arc<Plan>, worker: Worker) -> Self {
        let groups = plan
            .upstreams
            .iter()
            .enumerate()
            .map(|(u, spec)| {
                // Each worker's policies draw from their own random sequence.
                let seed = (worker.index as u64) << 32 | u as u64;
                Group::new(spec.clone(), plan.table.clone(), seed)
            })
            .collect();
        let pool = ConnPool::new(plan.table.len(), plan.pool.max_idle, plan.pool.idle_timeout);
        Self {
            groups,
            pool: RefCell::new(pool),
            load: worker.load,
            draining: Cell::new(false),
            failures: FailureLog::new(plan.table.len()),
            plan,
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
        let period = self.plan.pool.sweep_period();
        loop {
            compio::time::sleep(period).await;
            self.pool.borrow_mut().sweep(Instant::now());
        }
    }

    fn drain(&self) {
        self.draining.set(true);
    }

    fn stop(&self) {
        self.pool.borrow_mut().clear();
    }
}
