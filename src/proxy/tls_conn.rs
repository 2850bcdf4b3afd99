//! One client's TLS session over its TCP socket (or its plain-HTTP connection).
//!
//! Owns the client socket and the session's security [`Layer`]: a `TlsEngine` (rustls'
//! unbuffered server connection, driven without I/O), or on a listener without certificates
//! the identity layer, which hands received bytes through and sends written ones as they are
//! (one session code path for both; what follows describes TLS). Reads go through the ring's provided-buffer pool
//! (`read_managed`): the kernel picks a registered buffer only when bytes arrive, rustls decrypts
//! the records in place in that buffer (no copy into a rustls buffer first), the plaintext is
//! appended to the caller's buffer, and the provided buffer goes straight back to the pool. Only an incomplete trailing record is copied
//! aside, into a pending buffer released as soon as it is consumed, so a connection waiting for
//! its next request holds no TLS byte buffer at all. Writes encrypt straight into one owned
//! buffer from the worker's free list and send everything queued with one operation.
//!
//! Invariants: all methods take `&self` so that the request-body upload and the response path
//! can run concurrently; the TLS state is borrowed only in synchronous sections, never across
//! an `.await`. Only [`TlsConn::flush`] writes to the socket, and only one flush runs at a time
//! (the response path owns it while an exchange runs, the request-head reader otherwise), so
//! records are never interleaved; records rustls produces while reading (tickets, key updates,
//! alerts) are queued in order with the encrypted data and go out with the next flush, at once
//! when the head reader is the one reading. A protocol error queues the alert rustls prepared; the handshake sends it
//! before failing. End of stream is reported once the client's close_notify or FIN arrived, after
//! every byte of plaintext before it.

#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::io;
use std::sync::Arc;

use compio::BufResult;
use compio::buf::{IntoInner, IoBuf};
use compio::io::AsyncWrite;
use compio::net::TcpStream;
use rustls::ServerConfig;

use crate::buf::LazyBuf;
use crate::runtime::recv::recv_with;

pub use crate::tls::TlsIoError;
use crate::tls::{ClientCert, Layer};

/// Where decrypted plaintext goes: the connection's lazily held input buffer, or a buffer a
/// caller fills directly (a request body read straight into the request sent to the backend).
pub trait PlainSink {
    /// Bytes held now.
    fn held(&self) -> usize;
    /// Appends plaintext.
    fn append(&mut self, plain: &[u8]);
}

impl PlainSink for LazyBuf {
    fn held(&self) -> usize {
        self.bytes().len()
    }

    fn append(&mut self, plain: &[u8]) {
        self.get().extend_from_slice(plain);
    }
}

impl PlainSink for Vec<u8> {
    fn held(&self) -> usize {
        self.len()
    }

    fn append(&mut self, plain: &[u8]) {
        self.extend_from_slice(plain);
    }
}

/// A client's TLS session.
pub struct TlsConn {
    tcp: TcpStream,
    /// The TLS session (boxed inside: over 1 KiB, mostly rustls', would otherwise sit inline in
    /// the connection task's future, which a task spawned as `async move { fut.await }` stores
    /// twice), or the identity layer of a plain-HTTP listener.
    tls: RefCell<Layer>,
    /// The peer closed the socket (TCP FIN).
    eof: Cell<bool>,
    /// Bytes received from and sent to the client, TLS records included.
    received: Cell<u64>,
    sent: Cell<u64>,
}

impl TlsConn {
    /// Starts a server-side TLS session on an accepted socket, or a plain-HTTP one when there
    /// is no TLS configuration.
    pub fn new(tcp: TcpStream, config: Option<Arc<ServerConfig>>) -> Result<Self, TlsIoError> {
        Ok(Self {
            tcp,
            tls: RefCell::new(Layer::new(config)?),
            eof: Cell::new(false),
            received: Cell::new(0),
            sent: Cell::new(0),
        })
    }

    /// The client socket (to read a PROXY header before the session reads it).
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Counts `n` bytes received from the client outside the session (a PROXY header).
    pub fn count_received(&self, n: u64) {
        self.received.set(self.received.get() + n);
    }

    /// Feeds `bytes` received before the session first read the socket (what followed a PROXY
    /// header in the same receive: the start of the ClientHello), as if they had come in its
    /// first receive: rustls may rewrite them in place; plaintext (none can come before the
    /// handshake ends) goes to `dst`. Call before [`TlsConn::handshake`], which then sends
    /// what they produced; on an error, [`TlsConn::flush`] sends the alert rustls queued.
    pub fn feed(&self, bytes: &mut [u8], dst: &mut impl PlainSink) -> Result<(), TlsIoError> {
        self.count_received(bytes.len() as u64);
        let mut sink = |plain: &[u8]| dst.append(plain);
        self.tls.borrow_mut().receive(bytes, &mut sink)
    }

    /// Reads the client's verified certificate, once the handshake is over: its subject, SANs
    /// and fingerprint, for the headers of every request of the connection (the session keeps
    /// it). `None` when the client presented none.
    pub fn client_cert(&self) -> Option<ClientCert> {
        self.tls
            .borrow()
            .peer_certificate()
            .map(|der| ClientCert::from_der(der))
    }

    /// Drives the handshake to completion. Application data that arrives together with the
    /// client's last handshake message is kept in `dst`.
    pub async fn handshake(&self, dst: &mut LazyBuf) -> Result<(), TlsIoError> {
        loop {
            self.flush().await?;
            if !self.tls.borrow().is_handshaking() {
                return Ok(());
            }
            if self.at_eof() {
                return Err(TlsIoError::HandshakeEof);
            }
            match self.receive(dst).await {
                Ok(true) => {}
                Ok(false) => return Err(TlsIoError::HandshakeEof),
                Err(e) => {
                    // Send the alert rustls queued, if the socket still takes it.
                    let _ = self.flush().await;
                    return Err(e);
                }
            }
        }
    }

    /// What the handshake came to, once it is over.
    pub fn handshake_summary(&self) -> Option<crate::tls::engine::Handshake> {
        self.tls.borrow().summary()
    }

    /// Bytes received from and sent to the client so far, TLS records included.
    pub fn traffic(&self) -> (u64, u64) {
        (self.received.get(), self.sent.get())
    }

    /// Calls `f` with the server name (SNI) the client sent, lower-cased; `None` when it sent
    /// none (or an IP address), or before its ClientHello arrived. Borrowed, not copied.
    pub fn with_server_name<R>(&self, f: impl FnOnce(Option<&str>) -> R) -> R {
        f(self.tls.borrow().server_name())
    }

    /// Reads at least one plaintext byte into `dst`; returns how many were appended, 0 at
    /// end of stream (close_notify or TCP FIN).
    ///
    /// With `reply`, what rustls answers by itself while reading (the warning alert refusing a
    /// renegotiation, a key update) is sent at once, and so is the alert of a protocol error.
    /// Only a caller that owns the socket's writes may ask for it: the request-head reader,
    /// never the body upload that runs next to the response path (which sends them with the
    /// response instead).
    pub async fn read_plain(
        &self,
        dst: &mut impl PlainSink,
        reply: bool,
    ) -> Result<usize, TlsIoError> {
        let before = dst.held();
        loop {
            let n = dst.held() - before;
            if n > 0 || self.at_eof() {
                return Ok(n);
            }
            match self.receive(dst).await {
                Ok(true) => {}
                Ok(false) => self.eof.set(true),
                Err(e) => {
                    if reply {
                        let _ = self.flush().await;
                    }
                    return Err(e);
                }
            }
            if reply && self.tls.borrow().has_outgoing() {
                self.flush().await?;
            }
        }
    }

    fn at_eof(&self) -> bool {
        self.eof.get() || self.tls.borrow().peer_closed()
    }

    /// One receive from the socket, processed by rustls in the received buffer, plaintext
    /// appended to `dst`; false at TCP end of stream.
    async fn receive(&self, dst: &mut impl PlainSink) -> Result<bool, TlsIoError> {
        let fed = recv_with(&self.tcp, 0, |bytes| {
            self.received.set(self.received.get() + bytes.len() as u64);
            let mut sink = |plain: &[u8]| dst.append(plain);
            self.tls.borrow_mut().receive(bytes, &mut sink)
        })
        .await?;
        match fed {
            Some(res) => res.map(|()| true),
            None => Ok(false),
        }
    }

    /// Encrypts plaintext into the send buffer; [`TlsConn::flush`] sends it.
    pub fn write_plain(&self, data: &[u8]) -> Result<(), TlsIoError> {
        self.tls.borrow_mut().write(data)
    }

    /// Sends every queued TLS record in one write.
    pub async fn flush(&self) -> Result<(), TlsIoError> {
        self.flush_paced().await.map(|_| ())
    }

    /// [`TlsConn::flush`], telling whether the client pushed back: the socket took less than
    /// it was offered (its send buffer was full: the client reads slower than we send).
    pub async fn flush_paced(&self) -> Result<bool, TlsIoError> {
        let mut pushed_back = false;
        loop {
            let Some((buf, len)) = self.tls.borrow_mut().take_outgoing() else {
                return Ok(pushed_back);
            };
            let (res, buf) = write_all(&self.tcp, buf, len).await;
            self.sent.set(self.sent.get() + len as u64);
            self.tls.borrow_mut().recycle(buf);
            pushed_back |= res?;
        }
    }

    /// Sends close_notify (best effort) so the client sees a clean end.
    pub async fn close(&self) {
        self.tls.borrow_mut().close_notify();
        let _ = self.flush().await;
        let mut tcp = &self.tcp;
        let _ = tcp.shutdown().await;
    }

    /// Ends our half of the session (a tunnel whose backend finished sending): close_notify,
    /// then the socket's write side shut down (TCP FIN); the client is still read.
    pub async fn close_write(&self) -> Result<(), TlsIoError> {
        self.tls.borrow_mut().close_write();
        self.flush().await?;
        let mut tcp = &self.tcp;
        tcp.shutdown().await?;
        Ok(())
    }

    /// Encrypted bytes queued for the next flush.
    pub fn queued(&self) -> usize {
        self.tls.borrow().outgoing_len()
    }

    /// Gives the send buffer back to the worker while the connection is idle.
    pub fn release_buffers(&self) {
        self.tls.borrow_mut().release_buffers();
    }
}

/// Writes `buf[..len]` completely; `Ok(true)` when it took more than one write (the socket
/// took part of it at a time). One write operation at a time, with no more state than it
/// needs: this future is part of every connection's task.
async fn write_all(tcp: &TcpStream, mut buf: Vec<u8>, len: usize) -> (io::Result<bool>, Vec<u8>) {
    let mut tcp = tcp;
    let mut sent = 0;
    let mut writes = 0u32;
    while sent < len {
        let BufResult(res, slice) = tcp.write(buf.slice(sent..len)).await;
        buf = slice.into_inner();
        writes += 1;
        match res {
            Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
            Ok(n) => sent += n,
            Err(e) => return (Err(e), buf),
        }
    }
    (Ok(writes > 1), buf)
}
