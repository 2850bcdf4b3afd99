//! Receiving on the request path.
//!
//! Owns how sockets are read, in two ways, neither of which holds a buffer while it waits:
//! - [`recv_with`], for the next message (a request, a TLS record, a response head): a receive
//!   that lets the kernel pick a buffer of the ring's provided-buffer pool when bytes arrive,
//!   lends the bytes (mutably, so TLS records can be decrypted where they landed) to a
//!   synchronous consumer, and gives the buffer straight back;
//! - [`recv_queued`] and [`readable`], for draining a stream whose bytes are already there (a
//!   response body): a non-blocking read into a buffer the caller owns, and a wait for
//!   readability.
//!
//! Invariant: an empty pool is back-pressure, never a connection error. When every registered
//! buffer is in use (more receives completed in one turn of the event loop than the pool holds,
//! see `docs/ARCHITECTURE.md`), the kernel completes the receive with ENOBUFS, which compio
//! reports as [`io::ErrorKind::ResourceBusy`] without an OS error code
//! ([`is_pool_empty`] recognises both forms). The receive then degrades to an owned-buffer
//! read: the bytes already queued on the socket are read at once with a non-blocking `recv(2)`
//! into a buffer from the worker's free list, given back right after; when nothing is queued
//! yet, the task waits for readability holding no buffer and tries the pool again.

use std::io;

use compio::io::AsyncReadManaged;
use compio::net::TcpStream;

use crate::buf;

/// Bytes read at once when the provided-buffer pool is empty: one ring buffer's worth (two
/// full TLS records), so a degraded receive takes what a pooled one would have.
pub const FALLBACK_READ: usize = super::RING_BUFFER_LEN;

/// True when `e` says the provided-buffer pool had no buffer for a receive: compio 0.19 turns
/// the kernel's ENOBUFS into `ResourceBusy` ("buffer ring has no available buffer"), with no OS
/// error code; a raw ENOBUFS is recognised too, should compio pass it through.
pub fn is_pool_empty(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOBUFS)
        || (e.raw_os_error().is_none() && e.kind() == io::ErrorKind::ResourceBusy)
}

/// Receives once from `stream`, at most `max` bytes (0: a whole buffer, [`RING_BUFFER_LEN`]),
/// and lends the bytes to `consume`, which may rewrite them in place (they are dropped
/// afterwards); `Ok(None)` at end of stream.
///
/// [`RING_BUFFER_LEN`]: super::RING_BUFFER_LEN
pub async fn recv_with<R>(
    stream: &TcpStream,
    max: usize,
    consume: impl FnOnce(&mut [u8]) -> R,
) -> io::Result<Option<R>> {
    let max = if max == 0 {
        FALLBACK_READ
    } else {
        max.min(FALLBACK_READ)
    };
    let mut s = stream;
    loop {
        match s.read_managed(max).await {
            Ok(Some(mut buf)) if !buf.is_empty() => return Ok(Some(consume(&mut buf))),
            Ok(_) => return Ok(None),
            Err(e) if is_pool_empty(&e) => {}
            Err(e) => return Err(e),
        }
        // The pool is empty: take what is queued on the socket into an owned buffer.
        let mut owned = buf::take(max);
        match recv_queued(stream, &mut owned, max) {
            Ok(Queued::Bytes) => {
                let out = consume(&mut owned);
                buf::give(owned);
                return Ok(Some(out));
            }
            Ok(Queued::End) => {
                buf::give(owned);
                return Ok(None);
            }
            Ok(Queued::Nothing) => buf::give(owned),
            Err(e) => {
                buf::give(owned);
                return Err(e);
            }
        }
        // Nothing queued yet (the pool ran dry before the bytes came): wait for them without
        // holding a buffer, then try the pool again.
        readable(stream).await?;
    }
}

/// Waits until `stream` has bytes to read (or is closed), holding no buffer.
pub async fn readable(stream: &TcpStream) -> io::Result<()> {
    stream.to_poll_fd()?.read_ready().await
}

/// What a non-blocking read of the socket found.
#[derive(Debug, PartialEq, Eq)]
pub enum Queued {
    /// Bytes, appended to the buffer.
    Bytes,
    /// End of stream.
    End,
    /// Nothing yet.
    Nothing,
}

/// Reads what is queued on `stream` now, without waiting, into the spare capacity of `buf`
/// (up to `max` bytes): one `recv(2)` with MSG_DONTWAIT, outside the ring. For a reader that
/// drains a stream (a response body the backend already sent): the bytes land in a buffer of
/// the worker's LIFO free list, warm in the cache, instead of the next buffer of the ring's
/// FIFO, and nothing is held while the caller waits for more ([`readable`]).
pub fn recv_queued(stream: &TcpStream, buf: &mut Vec<u8>, max: usize) -> io::Result<Queued> {
    buf.reserve(max);
    let start = buf.len();
    let sock = socket2::SockRef::from(stream);
    loop {
        let spare = &mut buf.spare_capacity_mut()[..max];
        match sock.recv_with_flags(spare, libc::MSG_DONTWAIT) {
            Ok(0) => return Ok(Queued::End),
            Ok(n) => {
                // SAFETY: `recv` initialised the first `n` bytes of the spare capacity, which
                // starts at `start` and holds at least `max >= n` bytes.
                unsafe { buf.set_len(start + n) };
                return Ok(Queued::Bytes);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Queued::Nothing),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream as StdStream};

    use compio::io::AsyncReadManaged;
    use compio::net::TcpStream;

    use super::*;
    use crate::runtime::{RingConfig, build_runtime};

    #[test]
    fn an_empty_pool_is_recognised_in_both_forms() {
        // What compio 0.19 returns: no OS code, ResourceBusy.
        let compio_form = io::Error::new(
            io::ErrorKind::ResourceBusy,
            "buffer ring has no available buffer",
        );
        assert!(is_pool_empty(&compio_form));
        // The kernel's own code, should compio pass it through.
        assert!(is_pool_empty(&io::Error::from_raw_os_error(libc::ENOBUFS)));
        // Real connection errors are not back-pressure.
        for code in [libc::ECONNRESET, libc::EPIPE, libc::EBUSY, libc::ETIMEDOUT] {
            assert!(
                !is_pool_empty(&io::Error::from_raw_os_error(code)),
                "{code}"
            );
        }
        assert!(!is_pool_empty(&io::Error::from(
            io::ErrorKind::UnexpectedEof
        )));
    }

    /// A connected pair: the compio side (registered with the current runtime) and the std
    /// side the test writes to.
    fn pair(listener: &TcpListener) -> (TcpStream, StdStream) {
        let client = StdStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (TcpStream::from_std(server).unwrap(), client)
    }

    fn one_buffer_runtime() -> compio::runtime::Runtime {
        let ring = RingConfig {
            buffers: 1,
            ..RingConfig::default()
        };
        build_runtime(&ring, true)
            .or_else(|_| build_runtime(&ring, false))
            .expect("io_uring runtime")
    }

    /// A non-blocking read says what it found: nothing yet, bytes, the end, or the error of a
    /// reset connection (not mistaken for "nothing yet").
    #[test]
    fn a_non_blocking_read_tells_nothing_bytes_end_and_errors_apart() {
        let rt = one_buffer_runtime();
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let (a, mut a_peer) = pair(&listener);
            let mut buf = Vec::new();
            assert_eq!(recv_queued(&a, &mut buf, 64).unwrap(), Queued::Nothing);
            a_peer.write_all(b"abc").unwrap();
            readable(&a).await.unwrap();
            assert_eq!(recv_queued(&a, &mut buf, 64).unwrap(), Queued::Bytes);
            assert_eq!(buf, b"abc");
            drop(a_peer);
            readable(&a).await.unwrap();
            assert_eq!(recv_queued(&a, &mut buf, 64).unwrap(), Queued::End);

            // A peer that closes with unread data (SO_LINGER 0) resets the connection.
            let (b, b_peer) = pair(&listener);
            socket2::SockRef::from(&b_peer)
                .set_linger(Some(std::time::Duration::ZERO))
                .unwrap();
            drop(b_peer);
            readable(&b).await.unwrap();
            let err = recv_queued(&b, &mut buf, 64).expect_err("reset");
            assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        });
    }

    /// With the pool's only buffer lent out, compio's own error for the next receive is
    /// recognised (this fails if a compio upgrade changes the form), and `recv_with` still
    /// delivers every byte through an owned buffer, both when the bytes are already queued and
    /// when they come later.
    #[test]
    fn a_receive_on_an_empty_pool_falls_back_to_an_owned_buffer() {
        let rt = one_buffer_runtime();
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let (a, mut a_peer) = pair(&listener);
            let (b, mut b_peer) = pair(&listener);
            a_peer.write_all(b"held").unwrap();
            b_peer.write_all(b"queued").unwrap();
            // Hold the pool's one buffer.
            let mut ra = &a;
            let held = ra.read_managed(0).await.unwrap().expect("bytes on a");
            assert_eq!(&*held, b"held");

            let mut rb = &b;
            let err = rb.read_managed(0).await.expect_err("the pool is empty");
            assert!(
                is_pool_empty(&err),
                "not recognised as an empty pool: {err:?}"
            );

            // Bytes already queued: read at once into an owned buffer.
            let got = recv_with(&b, 0, |bytes| bytes.to_vec()).await.unwrap();
            assert_eq!(got.as_deref(), Some(&b"queued"[..]));

            // Nothing queued yet: the receive waits, holding no buffer, and gets the bytes
            // when they come.
            let later = std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                b_peer.write_all(b"later").unwrap();
                b_peer
            });
            let got = recv_with(&b, 0, |bytes| bytes.to_vec()).await.unwrap();
            assert_eq!(got.as_deref(), Some(&b"later"[..]));

            // End of stream is reported as such on the fallback path too.
            drop(later.join().unwrap());
            let got = recv_with(&b, 0, |bytes| bytes.len()).await.unwrap();
            assert_eq!(got, None);
            drop(held);
        });
    }
}
