//! The security layer of a client connection: a TLS session, or the identity layer of a
//! plain-HTTP listener.
//!
//! Owns [`Layer`]: the one interface the connection's I/O (`proxy::tls_conn`) drives, so that a
//! plain-HTTP connection runs the same session code as an HTTPS one (bytes in, plaintext out;
//! plaintext in, bytes to send out). The TLS variant is [`TlsEngine`]; the identity variant
//! ([`Plain`]) passes received bytes through unchanged and queues written ones for the next
//! send: it has no handshake, no server name and no close_notify.
//!
//! Invariants: the identity layer holds no buffer while nothing is queued and its buffers are
//! released; after [`Layer::close_notify`] nothing more is read or queued on either variant;
//! after [`Layer::close_write`] (a tunnel's half-close) nothing more is queued, reads go on.

use std::sync::Arc;

use rustls::ServerConfig;

use super::engine::{Handshake, TlsEngine, TlsIoError};
use crate::buf;

/// The identity layer of a plain-HTTP connection: what is written is queued as is.
#[derive(Default)]
pub struct Plain {
    /// Bytes queued for the next send (`None`: no buffer held).
    out: Option<Vec<u8>>,
    /// Closed by us: nothing more is queued.
    closed: bool,
    /// Our half closed (a tunnel's half-close): nothing more is queued, reads go on.
    write_closed: bool,
}

impl Drop for Plain {
    fn drop(&mut self) {
        if let Some(out) = self.out.take() {
            buf::give(out);
        }
    }
}

/// A client connection's security layer.
pub enum Layer {
    /// TLS (boxed: the session state, over 1 KiB, would otherwise sit inline in the
    /// connection task's future).
    Tls(Box<TlsEngine>),
    /// Plain HTTP (boxed too: the connection then keeps a few words for either).
    Plain(Box<Plain>),
}

impl Layer {
    /// A server TLS session with `config`, or the identity layer when there is none.
    pub fn new(config: Option<Arc<ServerConfig>>) -> Result<Self, TlsIoError> {
        Ok(match config {
            Some(config) => Layer::Tls(Box::new(TlsEngine::new(config)?)),
            None => Layer::Plain(Box::default()),
        })
    }

    /// Whether this is the identity layer of a plain-HTTP connection.
    pub fn is_plain(&self) -> bool {
        matches!(self, Layer::Plain(_))
    }

    /// True until both sides may send application data (never for plain HTTP).
    pub fn is_handshaking(&self) -> bool {
        match self {
            Layer::Tls(tls) => tls.is_handshaking(),
            Layer::Plain(_) => false,
        }
    }

    /// True once the client sent close_notify (plain HTTP: only the socket tells the end).
    pub fn peer_closed(&self) -> bool {
        match self {
            Layer::Tls(tls) => tls.peer_closed(),
            Layer::Plain(_) => false,
        }
    }

    /// The server name the client sent (TLS only).
    pub fn server_name(&self) -> Option<&str> {
        match self {
            Layer::Tls(tls) => tls.server_name(),
            Layer::Plain(_) => None,
        }
    }

    /// The client's verified certificate (TLS with client authentication only).
    pub fn peer_certificate(&self) -> Option<&rustls::pki_types::CertificateDer<'static>> {
        match self {
            Layer::Tls(tls) => tls.peer_certificate(),
            Layer::Plain(_) => None,
        }
    }

    /// What the handshake came to (TLS only, once it is over).
    pub fn summary(&self) -> Option<Handshake> {
        match self {
            Layer::Tls(tls) => tls.summary(),
            Layer::Plain(_) => None,
        }
    }

    /// Processes received bytes; plaintext goes to `sink` (all of it, as is, for plain HTTP).
    pub fn receive(
        &mut self,
        data: &mut [u8],
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(), TlsIoError> {
        match self {
            Layer::Tls(tls) => tls.receive(data, sink),
            Layer::Plain(plain) if plain.closed => Err(TlsIoError::Closed),
            Layer::Plain(_) => {
                if !data.is_empty() {
                    sink(data);
                }
                Ok(())
            }
        }
    }

    /// Queues plaintext for the next send (encrypted first, for TLS).
    pub fn write(&mut self, data: &[u8]) -> Result<(), TlsIoError> {
        match self {
            Layer::Tls(tls) => tls.write(data),
            Layer::Plain(plain) if plain.closed || plain.write_closed => Err(TlsIoError::Closed),
            Layer::Plain(plain) => {
                if !data.is_empty() {
                    plain
                        .out
                        .get_or_insert_with(|| buf::take(data.len()))
                        .extend_from_slice(data);
                }
                Ok(())
            }
        }
    }

    /// Queues close_notify (TLS); nothing more is read or sent afterwards.
    pub fn close_notify(&mut self) {
        match self {
            Layer::Tls(tls) => tls.close_notify(),
            Layer::Plain(plain) => plain.closed = true,
        }
    }

    /// Ends our sending half only (a tunnel whose backend finished sending): close_notify for
    /// TLS; nothing more is queued, but the client is still read.
    pub fn close_write(&mut self) {
        match self {
            Layer::Tls(tls) => tls.close_write(),
            Layer::Plain(plain) => plain.write_closed = true,
        }
    }

    /// True when bytes wait to be sent.
    pub fn has_outgoing(&self) -> bool {
        self.outgoing_len() > 0
    }

    /// Bytes waiting to be sent.
    pub fn outgoing_len(&self) -> usize {
        match self {
            Layer::Tls(tls) => tls.outgoing_len(),
            Layer::Plain(plain) => plain.out.as_ref().map_or(0, Vec::len),
        }
    }

    /// Takes the queued bytes for one write: the buffer and how many of its leading bytes to
    /// send; `None` when nothing is queued. Give the buffer back with [`Layer::recycle`].
    pub fn take_outgoing(&mut self) -> Option<(Vec<u8>, usize)> {
        match self {
            Layer::Tls(tls) => tls.take_outgoing(),
            Layer::Plain(plain) => {
                let out = plain.out.take_if(|out| !out.is_empty())?;
                let len = out.len();
                Some((out, len))
            }
        }
    }

    /// Takes back a buffer whose bytes were sent.
    pub fn recycle(&mut self, mut sent: Vec<u8>) {
        match self {
            Layer::Tls(tls) => tls.recycle(sent),
            Layer::Plain(plain) => {
                if plain.out.is_none() {
                    sent.clear();
                    plain.out = Some(sent);
                } else {
                    buf::give(sent);
                }
            }
        }
    }

    /// Gives the send buffer back to the worker when nothing is queued (the connection idles).
    pub fn release_buffers(&mut self) {
        match self {
            Layer::Tls(tls) => tls.release_buffers(),
            Layer::Plain(plain) => {
                if let Some(out) = plain.out.take_if(|out| out.is_empty()) {
                    buf::give(out);
                }
            }
        }
    }

    /// Bytes held in buffers now, for tests.
    pub fn buffered_capacity(&self) -> usize {
        match self {
            Layer::Tls(tls) => tls.buffered_capacity(),
            Layer::Plain(plain) => plain.out.as_ref().map_or(0, Vec::capacity),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_layer_passes_bytes_through_and_holds_nothing_idle() {
        let mut layer = Layer::new(None).unwrap();
        assert!(layer.is_plain() && !layer.is_handshaking() && layer.summary().is_none());
        assert_eq!(layer.server_name(), None);
        let mut got = Vec::new();
        let mut data = *b"GET / HTTP/1.1\r\n";
        layer
            .receive(&mut data, &mut |plain| got.extend_from_slice(plain))
            .unwrap();
        assert_eq!(got, b"GET / HTTP/1.1\r\n");

        assert!(layer.take_outgoing().is_none());
        layer.write(b"HTTP/1.1 200 OK\r\n").unwrap();
        layer.write(b"\r\n").unwrap();
        assert_eq!(layer.outgoing_len(), 19);
        let (buf, len) = layer.take_outgoing().unwrap();
        assert_eq!(&buf[..len], b"HTTP/1.1 200 OK\r\n\r\n");
        layer.recycle(buf);
        assert!(!layer.has_outgoing());
        layer.release_buffers();
        assert_eq!(layer.buffered_capacity(), 0);

        // A half-close stops the writes only.
        layer.close_write();
        assert!(layer.write(b"x").is_err());
        got.clear();
        layer
            .receive(&mut [7], &mut |plain| got.extend_from_slice(plain))
            .unwrap();
        assert_eq!(got, [7]);

        layer.close_notify();
        assert!(layer.write(b"x").is_err());
        assert!(layer.receive(&mut [1], &mut |_| {}).is_err());
    }
}
