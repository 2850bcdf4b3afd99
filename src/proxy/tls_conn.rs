//! One client's TLS session over its TCP socket.
//!
//! Owns the rustls `ServerConnection` and the client socket. Reads go through the ring's
//! provided-buffer pool (`read_managed`): the kernel picks a registered buffer only when bytes
//! arrive, the bytes are fed to rustls at once and the buffer goes straight back to the pool, so
//! a connection waiting for its next request holds no buffer. Writes encrypt into one owned
//! buffer from the worker's free list and send it with one operation.
//!
//! Invariants: all methods take `&self` so that the request-body upload and the response path
//! can run concurrently; the rustls state is borrowed only in synchronous sections, never across
//! an `.await`. Only [`TlsConn::flush`] writes to the socket, and only one flush runs at a time
//! (the response path owns it), so records are never interleaved.

use std::cell::{Cell, RefCell};
use std::io::{self, BufRead, Write};
use std::sync::Arc;

use compio::BufResult;
use compio::io::{AsyncWrite, AsyncWriteExt};
use compio::net::TcpStream;
use rustls::{ServerConfig, ServerConnection};

use crate::runtime::buffers::{self, LazyBuf};
use crate::runtime::recv::recv_with;

/// Why the TLS session could not go on.
#[derive(Debug, thiserror::Error)]
pub enum TlsIoError {
    /// The socket failed.
    #[error("client socket: {0}")]
    Io(#[from] io::Error),
    /// The peer broke the TLS protocol (an alert has been queued for it).
    #[error("client TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// The peer closed the connection in the middle of the handshake.
    #[error("client closed the connection during the handshake")]
    HandshakeEof,
}

/// A client's TLS session.
pub struct TlsConn {
    tcp: TcpStream,
    tls: RefCell<ServerConnection>,
    /// The send buffer, lent to the kernel during a flush.
    out: Cell<Option<Vec<u8>>>,
    /// The peer sent close_notify or closed the socket.
    eof: Cell<bool>,
}

impl TlsConn {
    /// Starts a server-side TLS session on an accepted socket.
    pub fn new(tcp: TcpStream, config: Arc<ServerConfig>) -> Result<Self, TlsIoError> {
        let mut tls = ServerConnection::new(config)?;
        // We bound what we queue ourselves (one read's worth at a time), so rustls need not.
        tls.set_buffer_limit(None);
        Ok(Self {
            tcp,
            tls: RefCell::new(tls),
            out: Cell::new(None),
            eof: Cell::new(false),
        })
    }

    /// Drives the handshake to completion. Application data that arrives together with the
    /// client's last handshake message is kept in `dst`.
    pub async fn handshake(&self, dst: &mut LazyBuf) -> Result<(), TlsIoError> {
        loop {
            if self.tls.borrow().wants_write() {
                self.flush().await?;
            }
            if !self.tls.borrow().is_handshaking() {
                return Ok(());
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

    /// Reads at least one plaintext byte into `dst`; returns how many were appended, 0 at
    /// end of stream (close_notify or TCP FIN).
    pub async fn read_plain(&self, dst: &mut LazyBuf) -> Result<usize, TlsIoError> {
        let before = dst.bytes().len();
        loop {
            self.drain_plaintext(dst)?;
            let n = dst.bytes().len() - before;
            if n > 0 || self.eof.get() {
                return Ok(n);
            }
            if !self.receive(dst).await? {
                self.eof.set(true);
            }
        }
    }

    /// One receive from the socket, fed to rustls; false at TCP end of stream.
    async fn receive(&self, dst: &mut LazyBuf) -> Result<bool, TlsIoError> {
        match recv_with(&self.tcp, |bytes| self.feed(bytes, dst)).await? {
            Some(fed) => fed.map(|()| true),
            None => Ok(false),
        }
    }

    /// Feeds received TLS bytes to rustls, moving plaintext into `dst` as it is decrypted so
    /// rustls's plaintext buffer never fills.
    fn feed(&self, mut data: &[u8], dst: &mut LazyBuf) -> Result<(), TlsIoError> {
        let mut tls = self.tls.borrow_mut();
        while !data.is_empty() {
            tls.read_tls(&mut data)?;
            let state = tls.process_new_packets()?;
            if state.peer_has_closed() {
                self.eof.set(true);
            }
            if state.plaintext_bytes_to_read() > 0 {
                drain_into(&mut tls, dst)?;
            }
            if state.peer_has_closed() {
                break;
            }
        }
        Ok(())
    }

    fn drain_plaintext(&self, dst: &mut LazyBuf) -> Result<usize, TlsIoError> {
        let mut tls = self.tls.borrow_mut();
        drain_into(&mut tls, dst)
    }

    /// Queues plaintext to be encrypted; [`TlsConn::flush`] sends it.
    pub fn write_plain(&self, data: &[u8]) -> Result<(), TlsIoError> {
        self.tls.borrow_mut().writer().write_all(data)?;
        Ok(())
    }

    /// Sends every queued TLS record in one write.
    pub async fn flush(&self) -> Result<(), TlsIoError> {
        loop {
            let mut out = self.out.take().unwrap_or_else(|| buffers::take(0));
            {
                let mut tls = self.tls.borrow_mut();
                while tls.wants_write() {
                    tls.write_tls(&mut out)?;
                }
            }
            if out.is_empty() {
                self.out.set(Some(out));
                return Ok(());
            }
            let mut tcp = &self.tcp;
            let BufResult(res, mut out) = tcp.write_all(out).await;
            out.clear();
            self.out.set(Some(out));
            res?;
        }
    }

    /// Sends close_notify (best effort) so the client sees a clean end.
    pub async fn close(&self) {
        self.tls.borrow_mut().send_close_notify();
        let _ = self.flush().await;
        let mut tcp = &self.tcp;
        let _ = tcp.shutdown().await;
    }

    /// The server name the client asked for (SNI), if it sent one.
    pub fn server_name(&self) -> Option<String> {
        self.tls.borrow().server_name().map(str::to_owned)
    }

    /// Gives the send buffer back to the worker while the connection is idle.
    pub fn release_buffers(&self) {
        if let Some(out) = self.out.take() {
            buffers::give(out);
        }
    }
}

impl Drop for TlsConn {
    fn drop(&mut self) {
        self.release_buffers();
    }
}

fn drain_into(tls: &mut ServerConnection, dst: &mut LazyBuf) -> Result<usize, TlsIoError> {
    let mut total = 0;
    let mut reader = tls.reader();
    loop {
        // Copy straight out of rustls's plaintext chunks: no zero-filled staging buffer.
        let n = match reader.fill_buf() {
            Ok([]) => break,
            Ok(chunk) => {
                dst.get().extend_from_slice(chunk);
                chunk.len()
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e.into()),
        };
        reader.consume(n);
        total += n;
    }
    Ok(total)
}
