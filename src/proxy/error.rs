//! The data-plane error: which side failed and what the client is told.
//!
//! Every failure of a request is one [`ProxyError`]. Its [`ProxyError::side`] says whose fault
//! it is: the client's, the backend's, or this process's own ([`Side::Internal`]: it ran out
//! of descriptors, memory, local ports or kernel buffers). Only a backend's failures count
//! against it (passive ejection) or justify trying another backend; a local shortage would
//! fail the same way on every backend. Its [`ProxyError::retry`] says whether the request may
//! be sent to a backend again, and on what condition ([`Retry`]); the exchange rules
//! (`rules::Attempts`) combine it with what the request is. Its [`ProxyError::status`] is the
//! response the client gets when nothing of the response has been sent yet; once response
//! bytes are out, the only honest signal left is closing the connection.

#![forbid(unsafe_code)]

use std::io;

use crate::http1::{ResponseError, Status};
use crate::upstream::ConnectError;

use super::tls_conn::TlsIoError;

/// Why a request could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No backend of the upstream can take the request now (all down, ejected, full).
    #[error("no backend available")]
    NoBackend {
        /// When one may again, for `Retry-After`.
        retry_after: std::time::Duration,
    },
    /// A backend connection could not be opened.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// Writing the request to the backend failed.
    #[error("sending the request to the backend: {0}")]
    BackendWrite(io::Error),
    /// Reading from the backend failed.
    #[error("reading from the backend: {0}")]
    BackendRead(io::Error),
    /// The backend closed the connection before a complete response head.
    #[error("backend closed the connection before the response head")]
    BackendClosedEarly,
    /// The backend closed the connection in the middle of the response body.
    #[error("backend closed the connection mid-body")]
    BackendClosedMidBody,
    /// The backend sent a response that breaks HTTP/1.1 framing.
    #[error("malformed response from backend: {0}")]
    BadResponse(#[from] ResponseError),
    /// The backend's response body broke its framing.
    #[error("malformed response body from backend: {0}")]
    BadResponseBody(crate::http1::BodyError),
    /// The backend did not answer within the response timeout.
    #[error("backend response timed out")]
    ResponseTimeout,
    /// The backend sent nothing within the per-try timeout; the attempt was abandoned (its
    /// connection closed) for a retry.
    #[error("backend sent nothing within the per-try timeout")]
    TryTimeout,
    /// The backend stalled while a body was streaming.
    #[error("backend stalled mid-body")]
    BackendStalled,
    /// The client's request body broke its framing.
    #[error("malformed request body: {0}")]
    BadRequestBody(crate::http1::BodyError),
    /// The client closed the connection or stopped reading.
    #[error("client: {0}")]
    Client(#[from] TlsIoError),
    /// The client went quiet in the middle of a request body.
    #[error("client stalled mid-body")]
    ClientStalled,
    /// The client closed the connection before sending the whole request body.
    #[error("client closed the connection mid-body")]
    ClientClosedMidBody,
}

/// The side a failure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client.
    Client,
    /// A backend.
    Backend,
    /// This process: a local resource ran out. Never a backend's fault.
    Internal,
}

/// True when `e` says this process ran out of something: descriptors (EMFILE, ENFILE),
/// memory (ENOMEM), kernel buffers (ENOBUFS), local ports for a connect (EADDRNOTAVAIL), or
/// the ring's provided-buffer pool. Whoever the peer was, it would have failed the same way.
pub fn is_local_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOBUFS | libc::EADDRNOTAVAIL)
    ) || e.kind() == io::ErrorKind::OutOfMemory
        || crate::runtime::recv::is_pool_empty(e)
}

/// Whether a request that failed one way may be sent to a backend again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Nothing of the request reached a backend (its connection could not be made): any
    /// request may be tried on another.
    NothingSent,
    /// The backend failed before answering (it closed, reset, or would not take the
    /// request's bytes): a request may be sent again if it is idempotent and held whole.
    IfReplayable,
    /// Never: the failure is the client's or this process's (every backend would fail alike),
    /// or the backend timed out, stalled or answered badly (a retry would double the wait, or
    /// the request may have been acted upon).
    Never,
}

impl ProxyError {
    /// Whether the request may be sent to a backend again after this failure.
    pub fn retry(&self) -> Retry {
        if !self.blames_backend() {
            return Retry::Never;
        }
        match self {
            Self::Connect(_) => Retry::NothingSent,
            Self::BackendWrite(_)
            | Self::BackendRead(_)
            | Self::BackendClosedEarly
            | Self::TryTimeout => Retry::IfReplayable,
            _ => Retry::Never,
        }
    }

    /// What ended the request, as a short name for the access log and metrics (`no_backend`,
    /// `backend_timeout`, `client_closed`, a framing rule's name for a bad body...).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NoBackend { .. } => "no_backend",
            Self::Connect(ConnectError::Timeout { .. }) => "connect_timeout",
            Self::Connect(ConnectError::Io { .. }) => "connect_failed",
            Self::BackendWrite(_) => "backend_write",
            Self::BackendRead(_) => "backend_read",
            Self::BackendClosedEarly => "backend_closed",
            Self::BackendClosedMidBody => "backend_closed_mid_body",
            Self::BadResponse(e) => e.name(),
            Self::BadResponseBody(e) => e.name(),
            Self::ResponseTimeout => "backend_timeout",
            Self::TryTimeout => "try_timeout",
            Self::BackendStalled => "backend_stalled",
            Self::BadRequestBody(e) => e.name(),
            Self::Client(_) => "client_io",
            Self::ClientStalled => "client_timeout",
            Self::ClientClosedMidBody => "client_closed",
        }
    }

    /// The side that failed.
    pub fn side(&self) -> Side {
        match self {
            Self::Connect(ConnectError::Io { source: e, .. })
            | Self::BackendWrite(e)
            | Self::BackendRead(e)
            | Self::Client(TlsIoError::Io(e))
                if is_local_exhaustion(e) =>
            {
                Side::Internal
            }
            Self::BadRequestBody(_)
            | Self::Client(_)
            | Self::ClientStalled
            | Self::ClientClosedMidBody => Side::Client,
            _ => Side::Backend,
        }
    }

    /// True when the failure is the backend's: it counts toward the backend's ejection.
    pub fn blames_backend(&self) -> bool {
        self.side() == Side::Backend
    }

    /// The status the client is answered with, if a response can still be sent.
    pub fn status(&self) -> Status {
        if self.side() == Side::Internal {
            return Status::ServiceUnavailable;
        }
        match self {
            Self::NoBackend { .. } => Status::ServiceUnavailable,
            Self::Connect(ConnectError::Timeout { .. }) => Status::GatewayTimeout,
            Self::ResponseTimeout | Self::TryTimeout | Self::BackendStalled => {
                Status::GatewayTimeout
            }
            Self::BadRequestBody(e) => e.status(),
            Self::ClientStalled => Status::RequestTimeout,
            _ => Status::BadGateway,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    #[test]
    fn retry_follows_what_reached_the_backend() {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let refused = ProxyError::Connect(ConnectError::Io {
            addr,
            source: os(libc::ECONNREFUSED),
        });
        let timed_out = ProxyError::Connect(ConnectError::Timeout {
            addr,
            timeout: std::time::Duration::from_secs(1),
        });
        assert_eq!(refused.retry(), Retry::NothingSent);
        assert_eq!(timed_out.retry(), Retry::NothingSent);
        for e in [
            ProxyError::BackendWrite(os(libc::EPIPE)),
            ProxyError::BackendRead(os(libc::ECONNRESET)),
            ProxyError::BackendClosedEarly,
            ProxyError::TryTimeout,
        ] {
            assert_eq!(e.retry(), Retry::IfReplayable, "{e}");
        }
        assert_eq!(ProxyError::TryTimeout.status(), Status::GatewayTimeout);
        assert!(ProxyError::TryTimeout.blames_backend());
        for e in [
            ProxyError::ResponseTimeout,
            ProxyError::BackendStalled,
            ProxyError::BackendClosedMidBody,
            ProxyError::NoBackend {
                retry_after: std::time::Duration::from_secs(1),
            },
            // A local shortage fails alike everywhere.
            ProxyError::BackendRead(os(libc::ENOBUFS)),
            ProxyError::Connect(ConnectError::Io {
                addr,
                source: os(libc::EMFILE),
            }),
        ] {
            assert_eq!(e.retry(), Retry::Never, "{e}");
        }
    }

    fn os(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    #[test]
    fn local_shortages_are_internal_and_answered_503() {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let local = [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOMEM,
            libc::ENOBUFS,
            libc::EADDRNOTAVAIL,
        ];
        for code in local {
            for e in [
                ProxyError::Connect(ConnectError::Io {
                    addr,
                    source: os(code),
                }),
                ProxyError::BackendRead(os(code)),
                ProxyError::BackendWrite(os(code)),
                ProxyError::Client(TlsIoError::Io(os(code))),
            ] {
                assert_eq!(e.side(), Side::Internal, "{e}");
                assert!(!e.blames_backend(), "{e}");
                assert_eq!(e.status(), 503, "{e}");
            }
        }
        let pool_empty = io::Error::new(
            io::ErrorKind::ResourceBusy,
            "buffer ring has no available buffer",
        );
        assert_eq!(ProxyError::BackendRead(pool_empty).side(), Side::Internal);
    }

    #[test]
    fn a_backend_failure_stays_the_backends() {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        for (e, status) in [
            (
                ProxyError::Connect(ConnectError::Io {
                    addr,
                    source: os(libc::ECONNREFUSED),
                }),
                502,
            ),
            (
                ProxyError::Connect(ConnectError::Timeout {
                    addr,
                    timeout: std::time::Duration::from_secs(1),
                }),
                504,
            ),
            (ProxyError::BackendRead(os(libc::ECONNRESET)), 502),
            (ProxyError::BackendWrite(os(libc::EPIPE)), 502),
            (ProxyError::BackendClosedEarly, 502),
            (ProxyError::ResponseTimeout, 504),
        ] {
            assert_eq!(e.side(), Side::Backend, "{e}");
            assert!(e.blames_backend(), "{e}");
            assert_eq!(e.status(), status, "{e}");
        }
        let client = ProxyError::Client(TlsIoError::Io(os(libc::ECONNRESET)));
        assert_eq!(client.retry(), Retry::Never);
        assert_eq!(client.side(), Side::Client);
        assert!(!client.blames_backend());
    }
}
