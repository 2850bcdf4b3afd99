//! The sans-IO server side of one TLS session, over rustls' unbuffered API.
//!
//! Owns the rustls [`UnbufferedServerConnection`], the received bytes rustls has not consumed
//! yet, and the encrypted bytes waiting to be sent. Bytes in, plaintext and records out; no
//! socket is touched here (the proxy's `TlsConn` does the I/O).
//!
//! - Receiving: rustls decrypts the records in place in the caller's buffer (the ring's
//!   provided buffer); each record's plaintext (which rustls 0.23 still hands out in a `Vec` of
//!   its own) is passed to the caller's sink. Only what is left after the last complete record
//!   (an incomplete record, or a handshake message split over records) is copied into a pending
//!   buffer, taken from the worker's free list and given back as soon as it is empty; the next
//!   bytes are appended to it and processed there.
//! - Sending: plaintext is encrypted into one send buffer (from the free list; rustls 0.23 seals
//!   each record in a `Vec` of its own, then copies it there), after whatever handshake records,
//!   alerts or tickets rustls queued before it, in the order rustls produced them; everything
//!   queued before a write goes out in that one write.
//!
//! Invariants:
//! - an idle session (nothing pending, nothing queued, buffers released) holds no byte buffer;
//! - pending received bytes never exceed [`MAX_PENDING`]: more is a protocol error;
//! - rustls is only called with the pending bytes, or with the new bytes when nothing is
//!   pending, so what it keeps (handshake fragments it is joining) stays at the same offsets;
//! - after an error no more bytes reach rustls and nothing more is encrypted, but the alert
//!   rustls queued for the error is in the send buffer;
//! - bytes after the client's close_notify are ignored; after our own close_notify nothing is
//!   read or sent, except after a half-close ([`TlsEngine::close_write`]: a tunnel whose
//!   backend finished sending), which still reads what the client sends;
//! - 0-RTT data is never accepted (the server config keeps `max_early_data_size` at 0).

use std::io;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus,
    WriteTraffic,
};

use super::client_hello::{Sni, client_hello_sni};
use crate::buf;

#[cfg(test)]
pub(crate) mod tests;

/// How many times a failing session asks rustls for the records it queued (the alert, and
/// whatever came before it) before giving up: rustls hands out a few at most; the bound only
/// keeps a misbehaving state from looping.
const MAX_ALERT_STEPS: usize = 16;

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
    /// The client sent more than this many bytes without completing a record or handshake
    /// message.
    #[error("client TLS message exceeds {0} bytes")]
    MessageTooLarge(usize),
    /// The client sent 0-RTT data, which ringway never accepts.
    #[error("client sent TLS early data, which is never accepted")]
    EarlyData,
    /// A handshake record could not be queued.
    #[error("queueing a TLS handshake record: {0}")]
    Encode(#[from] EncodeError),
    /// Application data could not be encrypted.
    #[error("encrypting for the client: {0}")]
    Encrypt(#[from] EncryptError),
    /// Application data was written before the handshake ended or after the session closed.
    #[error("cannot send application data: {0}")]
    NotWritable(&'static str),
    /// The session failed earlier; nothing more is read or sent.
    #[error("the TLS session already failed")]
    Failed,
    /// The session was closed (close_notify sent); nothing more is read or sent.
    #[error("the TLS session is closed")]
    Closed,
    /// rustls returned a state this code does not expect.
    #[error("unexpected TLS state: {0}")]
    Unexpected(&'static str),
}

/// Received bytes kept at most while waiting for the rest of a record or handshake message:
/// a handshake message as large as rustls accepts (64 KiB) plus one largest record.
pub const MAX_PENDING: usize = 0x1_0000 + MAX_RECORD;

/// Largest TLS record on the wire (RFC 8446 §5.2 ciphertext limit plus the header).
const MAX_RECORD: usize = 5 + 16 * 1024 + 2048;

/// Plaintext bytes per record (rustls' default fragment size; ringway sets no smaller one).
const MAX_FRAGMENT: usize = 16 * 1024;

/// Bytes an encrypted record adds to its plaintext, at most: header 5, TLS 1.2 explicit nonce 8,
/// tag 16, TLS 1.3 inner content type 1, rounded up.
const RECORD_OVERHEAD: usize = 32;

/// What to do once rustls allows application data to be sent.
enum Send<'a> {
    Data(&'a [u8]),
    CloseNotify,
}

/// A TLS version ringway speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl Version {
    /// As logs name it: `TLSv1.2`, `TLSv1.3`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tls12 => "TLSv1.2",
            Self::Tls13 => "TLSv1.3",
        }
    }
}

/// What a finished handshake came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    /// The version.
    pub version: Version,
    /// Whether the session was resumed (a ticket or a cached session).
    pub resumed: bool,
    /// The cipher suite's IANA name.
    pub cipher: &'static str,
}

/// The server side of one TLS session, without I/O.
pub struct TlsEngine {
    conn: UnbufferedServerConnection,
    /// Received bytes rustls has not consumed; `None` when there are none.
    pending: Option<Vec<u8>>,
    /// Encrypted bytes waiting to be sent.
    out: Outgoing,
    /// The server name from the ClientHello; `None` until the whole ClientHello has arrived.
    sni: Option<Option<Box<str>>>,
    /// The client sent close_notify.
    peer_closed: bool,
    /// rustls failed (an alert is queued) or the client broke a limit: the session is over.
    failed: bool,
    /// We queued close_notify: nothing more is read or sent.
    closed: bool,
    /// We queued close_notify as a half-close: nothing more is sent, the client is still read.
    write_closed: bool,
}

impl TlsEngine {
    /// A server session that waits for the client's first flight.
    pub fn new(config: Arc<ServerConfig>) -> Result<Self, TlsIoError> {
        Ok(Self {
            conn: UnbufferedServerConnection::new(config)?,
            pending: None,
            out: Outgoing::default(),
            sni: None,
            peer_closed: false,
            failed: false,
            closed: false,
            write_closed: false,
        })
    }

    /// True until both sides may send application data.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// True once the client sent close_notify: no more plaintext will come.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// The server name the client sent (lower-cased), once its ClientHello has arrived.
    pub fn server_name(&self) -> Option<&str> {
        self.sni.as_ref()?.as_deref()
    }

    /// The client's certificate (the leaf of the chain it presented, verified by the listener's
    /// verifier, or restored from the session a resumption continues); `None` when it sent
    /// none or the listener asks for none.
    pub fn peer_certificate(&self) -> Option<&rustls::pki_types::CertificateDer<'static>> {
        self.conn.peer_certificates()?.first()
    }

    /// The negotiated protocol version, once known.
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// What the handshake came to, once it is over: for logs and metrics.
    pub fn summary(&self) -> Option<Handshake> {
        let version = match self.conn.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => Version::Tls13,
            _ => Version::Tls12,
        };
        let resumed = self.conn.handshake_kind()? == rustls::HandshakeKind::Resumed;
        let cipher = self
            .conn
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .unwrap_or("unknown");
        Some(Handshake {
            version,
            resumed,
            cipher,
        })
    }

    /// Processes bytes received from the client. rustls may rewrite `data` in place (it
    /// decrypts there). Decrypted application data is passed to `sink` in order; records to
    /// send (handshake flights, tickets, alerts) are queued for [`TlsEngine::take_outgoing`].
    pub fn receive(
        &mut self,
        data: &mut [u8],
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(), TlsIoError> {
        self.usable()?;
        if self.peer_closed || data.is_empty() {
            return Ok(());
        }
        let res = if self.sni.is_none() {
            self.receive_first(data, sink)
        } else {
            match self.pending.take() {
                Some(mut buf) => {
                    buf.extend_from_slice(data);
                    self.process_pending(buf, sink)
                }
                None => self.process_data(data, sink),
            }
        };
        if res.is_err() {
            self.failed = true;
            if let Some(buf) = self.pending.take() {
                buf::give(buf);
            }
        }
        res
    }

    /// Until the ClientHello is complete, bytes are only kept: its server name is read from
    /// the raw records before rustls rewrites them.
    fn receive_first(
        &mut self,
        data: &mut [u8],
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(), TlsIoError> {
        let sni = match self.pending.as_mut() {
            Some(buf) => {
                buf.extend_from_slice(data);
                client_hello_sni(buf)
            }
            None => client_hello_sni(data),
        };
        match sni {
            Sni::Incomplete => {
                if self.pending.is_none() {
                    self.keep(data);
                }
                self.check_pending()
            }
            Sni::Done(name) => {
                self.sni = Some(name.map(String::into_boxed_str));
                match self.pending.take() {
                    Some(buf) => self.process_pending(buf, sink),
                    None => self.process_data(data, sink),
                }
            }
        }
    }

    /// Processes `data` in place (nothing was pending) and keeps what rustls left.
    fn process_data(
        &mut self,
        data: &mut [u8],
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(), TlsIoError> {
        let used = self.process(data, sink)?;
        self.keep(&data[used..]);
        self.check_pending()
    }

    /// Processes the pending bytes (the new ones already appended) and keeps what rustls left.
    fn process_pending(
        &mut self,
        mut buf: Vec<u8>,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(), TlsIoError> {
        let res = self.process(&mut buf, sink);
        match res {
            Ok(used) if used < buf.len() && !self.peer_closed => {
                buf.drain(..used);
                self.pending = Some(buf);
                self.check_pending()
            }
            Ok(_) => {
                buf::give(buf);
                Ok(())
            }
            Err(e) => {
                buf::give(buf);
                Err(e)
            }
        }
    }

    /// Copies bytes rustls has not consumed into the pending buffer (nothing was pending).
    fn keep(&mut self, rest: &[u8]) {
        if rest.is_empty() || self.peer_closed {
            return;
        }
        let mut buf = buf::take(rest.len());
        buf.extend_from_slice(rest);
        self.pending = Some(buf);
    }

    fn check_pending(&self) -> Result<(), TlsIoError> {
        match &self.pending {
            Some(buf) if buf.len() > MAX_PENDING => Err(TlsIoError::MessageTooLarge(MAX_PENDING)),
            _ => Ok(()),
        }
    }

    /// Lets rustls process every complete record at the front of `buf`; returns how many
    /// leading bytes it is done with.
    fn process(
        &mut self,
        buf: &mut [u8],
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<usize, TlsIoError> {
        let mut used = 0;
        loop {
            let UnbufferedStatus { discard, state } =
                self.conn.process_tls_records(&mut buf[used..]);
            let step = match state {
                Err(e) => Step::Fail(e.into()),
                Ok(state) => match state {
                    ConnectionState::ReadTraffic(mut traffic) => {
                        let mut extra = 0;
                        let mut step = None;
                        while let Some(record) = traffic.next_record() {
                            match record {
                                Ok(record) => {
                                    extra += record.discard;
                                    sink(record.payload);
                                }
                                Err(e) => {
                                    step = Some(Step::Fail(e.into()));
                                    break;
                                }
                            }
                        }
                        step.unwrap_or(Step::Next(extra))
                    }
                    ConnectionState::PeerClosed => {
                        self.peer_closed = true;
                        Step::Next(0)
                    }
                    other => step(other, &mut self.out, &mut self.peer_closed),
                },
            };
            used += discard;
            match step {
                Step::Next(extra) => used += extra,
                Step::Stop => return Ok(used),
                Step::Fail(e) => return Err(self.fail(e, &mut buf[used..])),
            }
        }
    }

    /// Ends the session after `e`: queues the alert rustls prepared for it.
    fn fail(&mut self, e: TlsIoError, rest: &mut [u8]) -> TlsIoError {
        self.failed = true;
        // While rustls has records queued, process_tls_records hands them out before it looks
        // at any input, so `rest` is never parsed again (which could raise a second alert).
        for _ in 0..MAX_ALERT_STEPS {
            if !self.conn.wants_write() {
                break;
            }
            let status = self.conn.process_tls_records(rest);
            match status.state {
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    if self
                        .out
                        .append(0, |b| encode.encode(b), encode_needs)
                        .is_err()
                    {
                        break;
                    }
                }
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    // Plaintext decrypted before the error: the session is over, drop it.
                    while traffic.next_record().is_some() {}
                }
                _ => break,
            }
        }
        e
    }

    /// Encrypts application data into the send buffer.
    pub fn write(&mut self, plain: &[u8]) -> Result<(), TlsIoError> {
        if plain.is_empty() {
            return Ok(());
        }
        self.send(Send::Data(plain))
    }

    /// Queues a close_notify alert, when the session can still send one. Nothing is read or
    /// sent afterwards.
    pub fn close_notify(&mut self) {
        let _ = self.send(Send::CloseNotify);
        self.closed = true;
    }

    /// Queues a close_notify alert (when the session can still send one) and sends nothing
    /// more, but goes on reading: our half of the session is over, the client may still send
    /// (TLS 1.3 allows it, RFC 8446 §6.1; a TLS 1.2 client answers with its own close_notify).
    pub fn close_write(&mut self) {
        if !self.write_closed {
            let _ = self.send(Send::CloseNotify);
            self.write_closed = true;
        }
    }

    /// Refuses any further work once the session failed or was closed: rustls must not see
    /// input after it sent an alert (a second one would break its invariants).
    fn usable(&self) -> Result<(), TlsIoError> {
        if self.failed {
            Err(TlsIoError::Failed)
        } else if self.closed {
            Err(TlsIoError::Closed)
        } else {
            Ok(())
        }
    }

    fn send(&mut self, what: Send<'_>) -> Result<(), TlsIoError> {
        self.usable()?;
        if self.write_closed {
            return Err(TlsIoError::Closed);
        }
        // rustls must see the bytes it may be holding on to (a handshake fragment); it
        // processed every complete record already, so it only looks at them.
        let mut pending = self.pending.take();
        let buf: &mut [u8] = pending.as_deref_mut().unwrap_or_default();
        let mut what = Some(what);
        let mut used = 0;
        let res = loop {
            let UnbufferedStatus { discard, state } =
                self.conn.process_tls_records(&mut buf[used..]);
            let step = match state {
                Err(e) => Step::Fail(e.into()),
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    let res = match what.take() {
                        Some(Send::Data(plain)) => encrypt(&mut traffic, plain, &mut self.out),
                        Some(Send::CloseNotify) => self
                            .out
                            .append(
                                RECORD_OVERHEAD,
                                |b| traffic.queue_close_notify(b),
                                encrypt_needs,
                            )
                            .map_err(TlsIoError::from),
                        None => Ok(()),
                    };
                    match res {
                        Ok(()) => Step::Stop,
                        Err(e) => Step::Fail(e),
                    }
                }
                Ok(ConnectionState::BlockedHandshake) => {
                    Step::Fail(TlsIoError::NotWritable("the handshake is not complete"))
                }
                Ok(ConnectionState::Closed) => {
                    self.peer_closed = true;
                    Step::Fail(TlsIoError::NotWritable("the connection is closed"))
                }
                Ok(ConnectionState::PeerClosed) => {
                    self.peer_closed = true;
                    Step::Next(0)
                }
                Ok(other) => step(other, &mut self.out, &mut self.peer_closed),
            };
            used += discard;
            match step {
                Step::Next(extra) => used += extra,
                Step::Stop => break Ok(()),
                // Not writable is the caller's mistake, not the client's: the session goes on.
                Step::Fail(e @ TlsIoError::NotWritable(_)) => break Err(e),
                Step::Fail(e) => break Err(self.fail(e, &mut buf[used..])),
            }
        };
        if let Some(mut buf) = pending {
            buf.drain(..used.min(buf.len()));
            if buf.is_empty() || self.failed {
                buf::give(buf);
            } else {
                self.pending = Some(buf);
            }
        }
        res
    }

    /// True when encrypted bytes wait to be sent.
    pub fn has_outgoing(&self) -> bool {
        self.out.filled > 0
    }

    /// Encrypted bytes waiting to be sent.
    pub fn outgoing_len(&self) -> usize {
        self.out.filled
    }

    /// Takes the queued bytes for one write: the buffer and how many of its leading bytes to
    /// send. `None` when nothing is queued. Give the buffer back with [`TlsEngine::recycle`].
    pub fn take_outgoing(&mut self) -> Option<(Vec<u8>, usize)> {
        if self.out.filled == 0 {
            return None;
        }
        let buf = self.out.buf.take()?;
        Some((buf, std::mem::take(&mut self.out.filled)))
    }

    /// Takes back a buffer whose bytes were sent; it is reused unless bytes were queued in a
    /// new buffer meanwhile.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.out.buf.is_none() {
            self.out.buf = Some(buf);
        } else {
            buf::give(buf);
        }
    }

    /// Gives the send buffer back to the worker when nothing is queued (the connection idles).
    pub fn release_buffers(&mut self) {
        if self.out.filled == 0
            && let Some(buf) = self.out.buf.take()
        {
            buf::give(buf);
        }
    }

    /// Bytes held in buffers now (pending received bytes and the send buffer), for tests.
    pub fn buffered_capacity(&self) -> usize {
        self.pending.as_ref().map_or(0, Vec::capacity)
            + self.out.buf.as_ref().map_or(0, Vec::capacity)
    }
}

impl Drop for TlsEngine {
    fn drop(&mut self) {
        if let Some(buf) = self.pending.take() {
            buf::give(buf);
        }
        if let Some(buf) = self.out.buf.take() {
            buf::give(buf);
        }
    }
}

/// What one rustls state led to.
enum Step {
    /// Go on; the extra bytes a record asked to discard.
    Next(usize),
    /// rustls processed every complete record (it waits for input, or may send).
    Stop,
    Fail(TlsIoError),
}

/// Handles the states that do not involve received application data.
fn step(
    state: ConnectionState<'_, '_, ServerConnectionData>,
    out: &mut Outgoing,
    peer_closed: &mut bool,
) -> Step {
    match state {
        ConnectionState::EncodeTlsData(mut encode) => {
            match out.append(0, |b| encode.encode(b), encode_needs) {
                Ok(()) => Step::Next(0),
                Err(e) => Step::Fail(e.into()),
            }
        }
        // The records are in the send buffer, ahead of anything encrypted later: the next
        // flush transmits them in order.
        ConnectionState::TransmitTlsData(transmit) => {
            transmit.done();
            Step::Next(0)
        }
        ConnectionState::BlockedHandshake => Step::Stop,
        ConnectionState::WriteTraffic(_) => Step::Stop,
        ConnectionState::Closed => {
            *peer_closed = true;
            Step::Stop
        }
        ConnectionState::ReadEarlyData(_) => Step::Fail(TlsIoError::EarlyData),
        ConnectionState::ReadTraffic(_) | ConnectionState::PeerClosed => {
            Step::Fail(TlsIoError::Unexpected("plaintext outside a receive"))
        }
        _ => Step::Fail(TlsIoError::Unexpected(
            "a state rustls 0.23 does not produce",
        )),
    }
}

/// Encrypts `plain` (as many records as it takes) into `out`.
fn encrypt(
    traffic: &mut WriteTraffic<'_, ServerConnectionData>,
    plain: &[u8],
    out: &mut Outgoing,
) -> Result<(), TlsIoError> {
    let records = plain.len().div_ceil(MAX_FRAGMENT).max(1);
    let hint = plain.len() + records * RECORD_OVERHEAD;
    out.append(hint, |b| traffic.encrypt(plain, b), encrypt_needs)?;
    Ok(())
}

fn encode_needs(e: &EncodeError) -> Option<usize> {
    match e {
        EncodeError::InsufficientSize(InsufficientSizeError { required_size }) => {
            Some(*required_size)
        }
        _ => None,
    }
}

fn encrypt_needs(e: &EncryptError) -> Option<usize> {
    match e {
        EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => {
            Some(*required_size)
        }
        _ => None,
    }
}

/// The send buffer: `buf[..filled]` waits to be sent. The bytes of `buf` past `filled` are
/// initialized room kept from earlier writes, so reusing the buffer does not zero it again.
#[derive(Default)]
struct Outgoing {
    buf: Option<Vec<u8>>,
    filled: usize,
}

impl Outgoing {
    /// Lets `write` fill the room after the queued bytes, first with room for `hint` bytes,
    /// then with as much as it says it needs.
    fn append<E>(
        &mut self,
        hint: usize,
        mut write: impl FnMut(&mut [u8]) -> Result<usize, E>,
        needs: impl Fn(&E) -> Option<usize>,
    ) -> Result<(), E> {
        let buf = self.buf.get_or_insert_with(|| buf::take(hint));
        let mut want = self.filled + hint;
        loop {
            if buf.len() < want {
                buf.resize(want, 0);
            }
            match write(&mut buf[self.filled..]) {
                Ok(n) => {
                    self.filled += n;
                    return Ok(());
                }
                Err(e) => match needs(&e) {
                    Some(n) if self.filled + n > buf.len() => want = self.filled + n,
                    _ => return Err(e),
                },
            }
        }
    }
}
