//! Backends: the backend table, upstreams, health, connecting, and the per-worker keep-alive pool.
//!
//! Owns everything about talking to backend servers except the HTTP exchange itself (that is
//! `proxy`'s): the backend table and each worker's choice among an upstream's backends
//! ([`group`]), the published health ([`board`]) written by the health thread ([`checker`])
//! from sans-IO state machines ([`health`]), connecting, the per-worker pool ([`pool`]), and
//! what a reload keeps of each backend ([`registry`]).
//! The configuration is immutable and shared by all workers; health is published in atomics;
//! the pool, policy state and passive ejections are per worker.

pub mod board;
pub mod budget;
pub mod checker;
pub mod group;
pub mod health;
pub mod pool;
pub mod registry;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use compio::net::TcpStream;

pub use pool::{ConnPool, Pooled};

/// A plain TCP connection to a backend.
#[derive(Debug)]
pub struct BackendConn {
    /// The socket.
    pub stream: TcpStream,
}

impl Pooled for BackendConn {
    fn is_reusable(&self) -> bool {
        socket_is_quiet(&self.stream)
    }
}

/// True when a non-blocking peek finds the socket open with nothing to read: the backend has
/// neither closed the connection nor sent bytes nobody asked for.
fn socket_is_quiet(stream: &TcpStream) -> bool {
    let sock = socket2::SockRef::from(stream);
    let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    match sock.recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT) {
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        Ok(_) => false,
    }
}

/// Why a backend connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The connect did not complete within the connect timeout.
    #[error("connect to {addr} timed out after {timeout:?}")]
    Timeout {
        /// The backend.
        addr: SocketAddr,
        /// The timeout.
        timeout: Duration,
    },
    /// The connect failed (refused, unreachable, ...).
    #[error("connect to {addr}: {source}")]
    Io {
        /// The backend.
        addr: SocketAddr,
        /// The error.
        source: io::Error,
    },
}

/// Opens a connection to `addr` within `timeout`, with TCP_NODELAY.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<BackendConn, ConnectError> {
    let stream = compio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| ConnectError::Timeout { addr, timeout })?
        .map_err(|source| ConnectError::Io { addr, source })?;
    stream
        .set_nodelay(true)
        .map_err(|source| ConnectError::Io { addr, source })?;
    Ok(BackendConn { stream })
}
