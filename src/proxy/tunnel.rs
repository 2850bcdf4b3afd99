//! Tunnels: a client connection and a backend connection joined after the backend's
//! `101 Switching Protocols` (a WebSocket, or any other protocol an Upgrade asked for).
//!
//! Owns the byte relay of an upgraded connection, both ways at once ([`Tunnel::run`]):
//! client → backend (TLS plaintext written to the backend's socket) and backend → client
//! (the backend's bytes encrypted and sent), with the bytes either side sent ahead first (what
//! the client pipelined after its request head, what the backend sent after its 101 head). It
//! also owns the worker's register of open tunnels ([`Tunnels`]): how many there are, and the
//! instant a draining worker wants them closed.
//!
//! Invariants:
//! - memory per tunnel is bounded: each direction holds at most one receive (client side: the
//!   plaintext of one ring buffer; backend side: at most [`FLUSH_AT`] bytes read before they
//!   are encrypted, one TLS send buffer) and gives its buffers back before it waits, so an idle
//!   tunnel holds no byte buffer; nothing is read from one side until the other took the
//!   last bytes (back-pressure, as for bodies);
//! - bytes are relayed in order, and the bytes sent ahead go before anything read later;
//! - half-close is passed through: the client's close_notify or FIN shuts the backend's write
//!   side; the backend's FIN sends close_notify and FIN to the client; the other direction
//!   keeps going until it ends too;
//! - a tunnel ends when both directions ended, when either side fails, when no byte went
//!   either way for the tunnel timeout (`timeouts.tunnel`), or when the draining worker's
//!   deadline comes ([`Tunnels::close_all_at`]): it never outlives the drain;
//! - a tunnel's backend connection is never pooled: the caller drops it when the tunnel ends.

use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::io;
use std::pin::pin;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use compio::BufResult;
use compio::io::{AsyncWrite, AsyncWriteExt};
use compio::net::TcpStream;
use slab::Slab;

use crate::buf::{self, LazyBuf};
use crate::runtime::deadline::{TICK, coarse_now, deadline};
use crate::runtime::recv::{Queued, readable, recv_queued};

use super::error::Side;
use super::relay::FLUSH_AT;
use super::tls_conn::{TlsConn, TlsIoError};

/// Bytes read from the backend at once: one full TLS record, so what the client gets is cut
/// into full records; reads go on, while the backend has more queued, up to [`FLUSH_AT`].
const TUNNEL_READ: usize = 16 * 1024;

/// How long before the drain deadline a draining worker's tunnels are closed, so that each has
/// the time to send its close_notify and write its access-log line before the worker stops.
const DRAIN_MARGIN: Duration = Duration::from_millis(250);

/// Why a tunnel failed.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// Reading from the client failed (a reset, a TLS error).
    #[error("reading from the client: {0}")]
    ClientRead(TlsIoError),
    /// Sending to the client failed.
    #[error("sending to the client: {0}")]
    ClientWrite(TlsIoError),
    /// Reading from the backend failed.
    #[error("reading from the backend: {0}")]
    BackendRead(io::Error),
    /// Sending to the backend failed.
    #[error("sending to the backend: {0}")]
    BackendWrite(io::Error),
}

impl TunnelError {
    /// The side that failed.
    pub fn side(&self) -> Side {
        match self {
            Self::ClientRead(_) | Self::ClientWrite(_) => Side::Client,
            Self::BackendRead(_) | Self::BackendWrite(_) => Side::Backend,
        }
    }

    /// A short name for the access log.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ClientRead(_) => "tunnel_client_read",
            Self::ClientWrite(_) => "tunnel_client_write",
            Self::BackendRead(_) => "tunnel_backend_read",
            Self::BackendWrite(_) => "tunnel_backend_write",
        }
    }
}

/// How a tunnel ended.
#[derive(Debug)]
pub enum TunnelEnd {
    /// Both sides closed their direction; `first` is the side that closed first.
    Closed { first: Side },
    /// No byte either way for the tunnel timeout.
    Idle,
    /// The worker's drain deadline came.
    Drained,
    /// A side failed.
    Failed(TunnelError),
}

impl TunnelEnd {
    /// The side and short name the access log says ended the request.
    pub fn termination(&self) -> (Side, &'static str) {
        match self {
            Self::Closed {
                first: Side::Backend,
            } => (Side::Backend, "tunnel_backend_closed"),
            Self::Closed { .. } => (Side::Client, "tunnel_client_closed"),
            Self::Idle => (Side::Internal, "tunnel_idle"),
            Self::Drained => (Side::Internal, "draining"),
            Self::Failed(e) => (e.side(), e.reason()),
        }
    }
}

/// A worker's open tunnels: their count, and when a draining worker wants them closed. Only
/// the worker's own thread touches it.
#[derive(Debug, Default)]
pub struct Tunnels {
    /// When every tunnel must end; `None` until the worker drains.
    close_at: Cell<Option<Instant>>,
    /// One slot per open tunnel: the waker of its watch, woken when `close_at` is set.
    open: RefCell<Slab<Option<Waker>>>,
}

impl Tunnels {
    /// Tunnels open now.
    pub fn open(&self) -> usize {
        self.open.borrow().len()
    }

    /// The worker drains until `deadline`: every tunnel, open now or opened later, ends a
    /// little before it.
    pub fn close_all_at(&self, deadline: Instant) {
        let now = Instant::now();
        let at = deadline.checked_sub(DRAIN_MARGIN).unwrap_or(now).max(now);
        self.close_at.set(Some(at));
        let wakers: Vec<Waker> = self
            .open
            .borrow_mut()
            .iter_mut()
            .filter_map(|(_, w)| w.take())
            .collect();
        for waker in wakers {
            waker.wake();
        }
    }

    /// Counts a tunnel open until the guard is dropped.
    fn enter(&self) -> Entry<'_> {
        let key = self.open.borrow_mut().insert(None);
        Entry { tunnels: self, key }
    }
}

/// One open tunnel in [`Tunnels`].
struct Entry<'a> {
    tunnels: &'a Tunnels,
    key: usize,
}

impl Entry<'_> {
    /// Waits until `close_at` changes from `seen` (the worker started draining), or forever.
    fn close_at_changes(&self, seen: Option<Instant>) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            if self.tunnels.close_at.get() != seen {
                return Poll::Ready(());
            }
            if let Some(slot) = self.tunnels.open.borrow_mut().get_mut(self.key) {
                match slot {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *slot = Some(cx.waker().clone()),
                }
            }
            Poll::Pending
        })
    }
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        self.tunnels.open.borrow_mut().try_remove(self.key);
    }
}

/// One tunnel's two connections and its limits.
pub struct Tunnel<'a> {
    pub conn: &'a TlsConn,
    pub backend: &'a TcpStream,
    /// No byte either way this long ends the tunnel.
    pub idle: Duration,
    pub tunnels: &'a Tunnels,
}

impl Tunnel<'_> {
    /// Relays both ways until the tunnel ends. `to_backend` holds what the client sent after
    /// its request head (sent first; the buffer is then reused for the client's bytes);
    /// `to_client` the plaintext to send first (the 101 head and what the backend sent after
    /// it). Neither connection is closed here, except for the half-closes.
    pub async fn run(&self, to_backend: &mut LazyBuf, to_client: Vec<u8>) -> TunnelEnd {
        let entry = self.tunnels.enter();
        let last = Cell::new(coarse_now());
        let mut up = pin!(self.client_to_backend(to_backend, &last));
        let mut down = pin!(self.backend_to_client(to_client, &last));
        let mut watch = pin!(self.watch(&entry, &last));
        let (mut up_done, mut down_done) = (false, false);
        let mut first = None;
        poll_fn(|cx| {
            if !up_done && let Poll::Ready(res) = up.as_mut().poll(cx) {
                if let Err(e) = res {
                    return Poll::Ready(TunnelEnd::Failed(e));
                }
                up_done = true;
                first.get_or_insert(Side::Client);
            }
            if !down_done && let Poll::Ready(res) = down.as_mut().poll(cx) {
                if let Err(e) = res {
                    return Poll::Ready(TunnelEnd::Failed(e));
                }
                down_done = true;
                first.get_or_insert(Side::Backend);
            }
            if up_done && down_done {
                return Poll::Ready(TunnelEnd::Closed {
                    first: first.unwrap_or(Side::Client),
                });
            }
            watch.as_mut().poll(cx)
        })
        .await
    }

    /// Ends the tunnel when it idled for the timeout or when the worker's drain deadline comes.
    async fn watch(&self, entry: &Entry<'_>, last: &Cell<Instant>) -> TunnelEnd {
        loop {
            let now = coarse_now();
            let close_at = self.tunnels.close_at.get();
            if close_at.is_some_and(|at| now >= at) {
                return TunnelEnd::Drained;
            }
            let idle_at = last.get() + self.idle;
            if now >= idle_at {
                return TunnelEnd::Idle;
            }
            // Woken at the earlier of the two, or when the worker starts draining; activity
            // meanwhile only moves `last`, looked at when the timer fires.
            let at = close_at.map_or(idle_at, |c| c.min(idle_at));
            let _ = deadline(at, entry.close_at_changes(close_at)).await;
            // The coarse clock may lag the timer by a tick: never spin on it.
            if coarse_now() < at {
                compio::time::sleep(TICK).await;
            }
        }
    }

    /// The client's bytes to the backend, until the client closes its side (close_notify or
    /// FIN), which shuts the backend's write side.
    async fn client_to_backend(
        &self,
        buf: &mut LazyBuf,
        last: &Cell<Instant>,
    ) -> Result<(), TunnelError> {
        loop {
            if !buf.is_empty() {
                let mut stream = self.backend;
                let BufResult(res, sent) = stream.write_all(buf.take_vec()).await;
                buf.put_vec(sent);
                buf.clear();
                res.map_err(TunnelError::BackendWrite)?;
                last.set(coarse_now());
            }
            // Waiting holds no buffer: the receive takes a ring buffer only when bytes come.
            buf.release_if_empty();
            match self.conn.read_plain(buf, false).await {
                Ok(0) => {
                    let mut stream = self.backend;
                    // The backend may be gone already: its side reports that.
                    let _ = stream.shutdown().await;
                    return Ok(());
                }
                Ok(_) => last.set(coarse_now()),
                Err(e) => return Err(TunnelError::ClientRead(e)),
            }
        }
    }

    /// The backend's bytes to the client, until the backend closes its side (FIN), which sends
    /// close_notify and FIN to the client.
    async fn backend_to_client(
        &self,
        first: Vec<u8>,
        last: &Cell<Instant>,
    ) -> Result<(), TunnelError> {
        let mut plain = first;
        loop {
            if !plain.is_empty() {
                self.conn
                    .write_plain(&plain)
                    .map_err(TunnelError::ClientWrite)?;
            }
            // Encrypted: the plaintext goes back before any wait.
            buf::give(std::mem::take(&mut plain));
            if self.conn.queued() > 0 {
                self.conn.flush().await.map_err(TunnelError::ClientWrite)?;
                last.set(coarse_now());
                // Nor a send buffer while the tunnel is quiet.
                self.conn.release_buffers();
            }
            readable(self.backend)
                .await
                .map_err(TunnelError::BackendRead)?;
            plain = buf::take(TUNNEL_READ);
            // What the backend has queued, up to FLUSH_AT, in one encryption and one write.
            let mut ended = false;
            while plain.len() < FLUSH_AT {
                let max = TUNNEL_READ.min(FLUSH_AT - plain.len());
                match recv_queued(self.backend, &mut plain, max)
                    .map_err(TunnelError::BackendRead)?
                {
                    Queued::Bytes => last.set(coarse_now()),
                    Queued::Nothing => break,
                    Queued::End => {
                        ended = true;
                        break;
                    }
                }
            }
            if ended {
                if !plain.is_empty() {
                    self.conn
                        .write_plain(&plain)
                        .map_err(TunnelError::ClientWrite)?;
                }
                buf::give(plain);
                self.conn
                    .close_write()
                    .await
                    .map_err(TunnelError::ClientWrite)?;
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnels_are_counted_and_told_to_close_before_the_deadline() {
        let tunnels = Tunnels::default();
        let a = tunnels.enter();
        let b = tunnels.enter();
        assert_eq!(tunnels.open(), 2);
        drop(a);
        assert_eq!(tunnels.open(), 1);
        let deadline = Instant::now() + Duration::from_secs(10);
        tunnels.close_all_at(deadline);
        let at = tunnels.close_at.get().expect("set");
        assert!(at < deadline && at + DRAIN_MARGIN >= deadline);
        // A drain shorter than the margin closes them at once.
        tunnels.close_all_at(Instant::now());
        assert!(tunnels.close_at.get().expect("set") <= Instant::now());
        drop(b);
        assert_eq!(tunnels.open(), 0);
    }

    #[test]
    fn ends_name_their_side() {
        assert_eq!(
            TunnelEnd::Closed {
                first: Side::Backend
            }
            .termination(),
            (Side::Backend, "tunnel_backend_closed")
        );
        assert_eq!(
            TunnelEnd::Closed {
                first: Side::Client
            }
            .termination(),
            (Side::Client, "tunnel_client_closed")
        );
        assert_eq!(TunnelEnd::Idle.termination().1, "tunnel_idle");
        assert_eq!(TunnelEnd::Drained.termination().1, "draining");
        let e = TunnelEnd::Failed(TunnelError::BackendRead(
            io::ErrorKind::ConnectionReset.into(),
        ));
        assert_eq!(e.termination(), (Side::Backend, "tunnel_backend_read"));
    }
}
