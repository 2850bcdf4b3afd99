//! The per-connection task: TLS, HTTP/1.1 and the backend exchange, driven together.
//!
//! Owns what happens to one client connection from accept to close: the TLS handshake
//! ([`tls_conn`]), reading and validating requests, routing them to an upstream and choosing
//! one of its backends ([`lease`]), relaying the request and
//! the response with bounded memory, keep-alive on both sides, retries, timeouts and error
//! responses ([`session`]). Per-worker state ([`Context`]) uses `Cell`/`RefCell`: it is never
//! shared across cores.

pub mod error;
pub mod lease;
pub mod session;
pub mod tls_conn;

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;

use crate::http1::Limits;
use crate::route::Router;
use crate::upstream::group::{Group, Table};
use crate::upstream::{BackendConn, ConnPool};

pub use session::serve;

/// Timeouts that apply to every connection of a worker.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// TLS handshake, from accept.
    pub handshake: Duration,
    /// A whole request head, from its first byte.
    pub request_head: Duration,
    /// Idle time between two requests on a kept-alive client connection.
    pub keepalive: Duration,
    /// Inactivity while a body streams, in either direction.
    pub body: Duration,
    /// Connecting to a backend.
    pub connect: Duration,
    /// Waiting for the backend's response head once the request is sent.
    pub response: Duration,
}

/// One listener as a worker sees it.
pub struct ListenerCtx {
    /// The TLS configuration (certificates, tickets) shared by every worker.
    pub tls: Arc<ServerConfig>,
    /// Which upstream serves a request, by Host and path.
    pub router: Arc<Router>,
}

/// What a worker counts: its open connections (for the per-worker cap) and requests in flight
/// (for the graceful drain).
#[derive(Debug, Default)]
pub struct Counters {
    /// Client connections open now. (Requests in flight are counted by the event loop:
    /// [`crate::runtime::event_loop::in_flight`].)
    pub connections: Cell<usize>,
}

/// Per-worker state shared by the worker's connection tasks.
pub struct Context {
    /// Every backend of every upstream, with its published health (shared by all workers).
    pub table: Arc<Table>,
    /// This worker's view of each upstream (policy state, in-flight counts, ejections), by
    /// upstream index.
    pub groups: Vec<Group>,
    /// Idle keep-alive connections to backends, by table index.
    pub pool: RefCell<ConnPool<BackendConn>>,
    /// Framing limits.
    pub limits: Limits,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Client connections a worker holds at most; more are closed at accept.
    pub max_connections: usize,
    /// Set when the worker is draining: responses say `Connection: close`.
    pub draining: Cell<bool>,
    /// Counters.
    pub counters: Counters,
}
