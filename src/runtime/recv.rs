//! Receiving through the ring's provided-buffer pool.
//!
//! Owns the one way sockets are read on the request path: a receive that lets the kernel pick
//! a registered buffer when bytes arrive, lends the bytes (mutably, so TLS records can be
//! decrypted where they landed) to a synchronous consumer, and gives the buffer straight back.
//! A connection waiting for data therefore holds no buffer.
//!
//! Invariant: ENOBUFS (the pool momentarily empty) is back-pressure, never a connection error:
//! the receive falls back to one owned buffer from the worker's free list.

use std::io;

use compio::BufResult;
use compio::io::{AsyncRead, AsyncReadManaged};
use compio::net::TcpStream;

use super::buffers;

/// Bytes read per receive when the provided-buffer pool is empty and an owned buffer is used.
const FALLBACK_READ: usize = 16 * 1024;

/// Receives once from `stream` and lends the bytes to `consume`, which may rewrite them in
/// place (they are dropped afterwards); `Ok(None)` at end of stream.
pub async fn recv_with<R>(
    stream: &TcpStream,
    consume: impl FnOnce(&mut [u8]) -> R,
) -> io::Result<Option<R>> {
    let mut s = stream;
    match s.read_managed(0).await {
        Ok(Some(mut buf)) if !buf.is_empty() => Ok(Some(consume(&mut buf))),
        Ok(_) => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
            let buf = buffers::take(FALLBACK_READ);
            let BufResult(res, mut buf) = s.read(buf).await;
            let out = match res {
                Ok(0) => Ok(None),
                Ok(_) => Ok(Some(consume(&mut buf))),
                Err(e) => Err(e),
            };
            buffers::give(buf);
            out
        }
        Err(e) => Err(e),
    }
}

/// Receives once into the spare capacity of an owned buffer (for a body being relayed, where
/// one large read replaces several pool-sized ones); returns the byte count, 0 at end of stream.
pub async fn recv_owned(stream: &TcpStream, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
    buf.clear();
    let mut s = stream;
    let BufResult(res, buf) = s.read(buf).await;
    (res, buf)
}
