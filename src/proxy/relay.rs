//! Relaying bodies and heads between a client and a backend: the I/O of an exchange.
//!
//! Owns the loops that move bytes once the session has decided where they go: the request
//! body's upload ([`upload_body`]), the backend's response head ([`read_response_head`]) and
//! interim responses ([`relay_interim`]), and the response body ([`BodyRelay`]), paced by the
//! client's TCP window ([`Pace`]).
//!
//! Invariants: memory per relay is bounded (one receive, or one plaintext buffer of at most
//! [`FLUSH_AT`] plus one read, given back before any wait); bytes past a body are never
//! relayed, only noted (`extra`), so the backend connection is not reused after them.

use std::cell::Cell;
use std::time::Duration;

use compio::BufResult;
use compio::buf::{IntoInner, IoBuf};
use compio::io::AsyncWriteExt;
use compio::net::TcpStream;

use crate::buf::{self, LazyBuf};
use crate::http1::{self, BodyDecoder, CONTINUE_100, Limits, Method, Parsed, ResponseHead};
use crate::runtime::deadline::within;
use crate::runtime::recv::{Queued, readable, recv_queued, recv_with};

use super::error::ProxyError;
use super::rules::Pace;
use super::tls_conn::TlsConn;

/// Relays a response body from a backend to the client.
///
/// The backend's socket is drained with non-blocking reads (see [`recv_queued`]) into the
/// plaintext buffer, behind what it already holds (the head, for the first write); what the
/// backend sent at once goes out in one encryption and one write; when nothing is queued, the
/// relay waits for readability holding no buffer. The client's TCP window paces it: see
/// [`Pace`].
pub(super) struct BodyRelay<'a> {
    pub conn: &'a TlsConn,
    pub backend: &'a TcpStream,
    /// Inactivity limit of every wait, either side.
    pub idle: Duration,
}

impl BodyRelay<'_> {
    /// Relays until the body ends: `decoder` finds its end, `plain` holds plaintext not yet
    /// encrypted (the head at first), `dechunk` is a scratch buffer when only the payload of a
    /// chunked body is passed on, and `extra` is set when the backend sent bytes past the body.
    pub(super) async fn run(
        &self,
        decoder: &mut BodyDecoder,
        plain: &mut Vec<u8>,
        dechunk: &mut Option<Vec<u8>>,
        extra: &mut bool,
    ) -> Result<(), ProxyError> {
        let mut pace = Pace::Fast;
        let mut ended = decoder.is_done();
        loop {
            if !ended {
                let max = pace.read_max();
                if plain.capacity() == 0 {
                    *plain = buf::take(max);
                }
                let got = match dechunk {
                    None => self.read_body(decoder, plain, max, extra)?,
                    Some(raw) => self.read_dechunked(decoder, raw, plain, max, extra)?,
                };
                match got {
                    Queued::End if decoder.is_close_delimited() => ended = true,
                    Queued::End => return Err(ProxyError::BackendClosedMidBody),
                    Queued::Bytes => {
                        ended = decoder.is_done();
                        if !ended && pace == Pace::Fast && plain.len() < FLUSH_AT {
                            continue;
                        }
                    }
                    Queued::Nothing => {}
                }
            }
            if !plain.as_slice().is_empty() {
                self.conn.write_plain(plain)?;
            }
            // Encrypted: the plaintext buffer goes back before any wait, so a relay holds one
            // buffer (the TLS send buffer) while the client or the backend is slow.
            buf::give(std::mem::take(plain));
            if self.conn.queued() > 0 {
                pace = pace.after(flush(self.conn, self.idle).await?);
                if pace == Pace::Slow {
                    // Nor a large send buffer.
                    self.conn.release_buffers();
                }
                continue;
            }
            if ended {
                return Ok(());
            }
            // Nothing queued either way: wait for the backend, holding no buffer.
            match within(self.idle, readable(self.backend)).await {
                Err(_) => return Err(ProxyError::BackendStalled),
                Ok(Err(e)) => return Err(ProxyError::BackendRead(e)),
                Ok(Ok(())) => {}
            }
        }
    }

    /// Appends what the backend has queued (up to `max` bytes) to `plain`, keeping only the
    /// bytes that belong to the body.
    fn read_body(
        &self,
        decoder: &mut BodyDecoder,
        plain: &mut Vec<u8>,
        max: usize,
        extra: &mut bool,
    ) -> Result<Queued, ProxyError> {
        let before = plain.len();
        let got = recv_queued(self.backend, plain, max).map_err(ProxyError::BackendRead)?;
        if got == Queued::Bytes {
            let adv = decoder
                .advance(&plain[before..])
                .map_err(ProxyError::BadResponseBody)?;
            *extra |= plain.len() - before > adv.consumed;
            plain.truncate(before + adv.consumed);
        }
        Ok(got)
    }

    /// Reads what the backend has queued (up to `max` bytes) into `raw` and appends the
    /// payload of its chunks to `plain`.
    fn read_dechunked(
        &self,
        decoder: &mut BodyDecoder,
        raw: &mut Vec<u8>,
        plain: &mut Vec<u8>,
        max: usize,
        extra: &mut bool,
    ) -> Result<Queued, ProxyError> {
        raw.clear();
        let got = recv_queued(self.backend, raw, max).map_err(ProxyError::BackendRead)?;
        if got == Queued::Bytes {
            let adv = decoder
                .decode(raw, plain)
                .map_err(ProxyError::BadResponseBody)?;
            *extra |= raw.len() > adv.consumed;
        }
        Ok(got)
    }
}

/// Bytes of a backend's response taken at once while its head is read: a whole small response
/// (its head and a few KiB of body) in one receive, within one page of the ring's buffer and a
/// small buffer of the free list; the rest of a large body is drained afterwards.
pub(super) const HEAD_READ: usize = 4096;

/// Plaintext bytes held for a client that keeps up from which they are encrypted and sent
/// rather than joined by the next read: a 64 KiB response and its head go out in one write,
/// and a relay holds at most this plus one read before encrypting.
pub(super) const FLUSH_AT: usize = 64 * 1024;

/// Bytes a rewritten response head may add to the backend's (a `Connection` field).
pub(super) const HEAD_SLACK: usize = 512;

/// How a relayed response left the backend connection (see [`rules::backend_reusable`]).
pub(super) struct Relayed {
    /// The backend's response allows keeping the connection.
    pub backend_keep: bool,
    /// The backend sent bytes past the response's end.
    pub extra: bool,
    /// The body ended with the connection.
    pub close_delimited: bool,
}

/// Response bodies are not limited in size (the client asked for them).
pub(super) fn response_limits(limits: &Limits) -> Limits {
    Limits {
        max_body: 0,
        ..*limits
    }
}

/// Sends what is queued to the client within `idle`; true when the client pushed back (see
/// [`TlsConn::flush_paced`]).
pub(super) async fn flush(conn: &TlsConn, idle: Duration) -> Result<bool, ProxyError> {
    match within(idle, conn.flush_paced()).await {
        Ok(res) => res.map_err(ProxyError::Client),
        Err(_) => Err(ProxyError::ClientStalled),
    }
}

/// Reads from the backend until `rhead` holds a complete response head (interim or final, or a
/// 101 when the request asked to `upgrade`); sets `answered` when the first bytes arrive.
pub(super) async fn read_response_head(
    stream: &TcpStream,
    rbuf: &mut LazyBuf,
    rhead: &mut ResponseHead,
    (method, upgrade): (Method, bool),
    limits: &Limits,
    answered: &Cell<bool>,
) -> Result<(), ProxyError> {
    loop {
        if !rbuf.is_empty() {
            match http1::parse_response_with(rbuf.bytes(), limits, method, upgrade, rhead)? {
                Parsed::Complete => return Ok(()),
                Parsed::Partial => {}
            }
        }
        let got = recv_with(stream, HEAD_READ, |bytes| {
            answered.set(true);
            rbuf.get().extend_from_slice(bytes)
        })
        .await
        .map_err(ProxyError::BackendRead)?;
        if got.is_none() {
            return Err(ProxyError::BackendClosedEarly);
        }
    }
}

/// Relays `100 Continue` to a client that asked for it; drops other interim responses.
pub(super) async fn relay_interim(
    conn: &TlsConn,
    rbuf: &mut LazyBuf,
    rhead: &ResponseHead,
    expect_continue: bool,
    idle: Duration,
) -> Result<(), ProxyError> {
    rbuf.consume(rhead.head_len);
    if rhead.status == 100 && expect_continue {
        conn.write_plain(CONTINUE_100)?;
        flush(conn, idle).await?;
    }
    Ok(())
}

/// Streams request body bytes from the client to the backend until the body ends. Bytes
/// after the body stay in `inbuf`.
pub(super) async fn upload_body(
    conn: &TlsConn,
    backend: &TcpStream,
    body: &mut BodyDecoder,
    inbuf: &mut LazyBuf,
    idle: Duration,
) -> Result<(), ProxyError> {
    loop {
        if inbuf.is_empty() {
            read_body_bytes(conn, inbuf, idle).await?;
        }
        let adv = body
            .advance(inbuf.bytes())
            .map_err(ProxyError::BadRequestBody)?;
        if adv.consumed > 0 {
            let buf = inbuf.take_vec();
            let mut stream = backend;
            let written = within(idle, stream.write_all(buf.slice(..adv.consumed))).await;
            let BufResult(res, slice) = match written {
                Ok(r) => r,
                Err(_) => return Err(ProxyError::BackendStalled),
            };
            inbuf.put_vec(slice.into_inner());
            res.map_err(ProxyError::BackendWrite)?;
            inbuf.consume(adv.consumed);
        }
        if adv.done {
            return Ok(());
        }
        if adv.consumed == 0 && !inbuf.is_empty() {
            // The decoder wants more than what is buffered: read more.
            read_body_bytes(conn, inbuf, idle).await?;
        }
    }
}

/// Reads more of a request body from the client into `inbuf`, within `idle`.
async fn read_body_bytes(
    conn: &TlsConn,
    inbuf: &mut LazyBuf,
    idle: Duration,
) -> Result<(), ProxyError> {
    match within(idle, conn.read_plain(inbuf, false)).await {
        Err(_) => Err(ProxyError::ClientStalled),
        Ok(Err(e)) => Err(e.into()),
        Ok(Ok(0)) => Err(ProxyError::ClientClosedMidBody),
        Ok(Ok(_)) => Ok(()),
    }
}
