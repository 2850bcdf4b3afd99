//! The data-plane error: which side failed, whether a retry is allowed, and what the client
//! is told.
//!
//! Every failure of a request is one [`ProxyError`]. Its [`ProxyError::status`] is the
//! response the client gets when nothing of the response has been sent yet; once response
//! bytes are out, the only honest signal left is closing the connection.

#![forbid(unsafe_code)]

use std::io;

use crate::http1::ResponseError;
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
}

impl ProxyError {
    /// The side that failed.
    pub fn side(&self) -> Side {
        match self {
            Self::BadRequestBody(_)
            | Self::Client(_)
            | Self::ClientStalled
            | Self::ClientClosedMidBody => Side::Client,
            _ => Side::Backend,
        }
    }

    /// The status the client is answered with, if a response can still be sent.
    pub fn status(&self) -> u16 {
        match self {
            Self::NoBackend { .. } => 503,
            Self::Connect(ConnectError::Timeout { .. }) => 504,
            Self::ResponseTimeout | Self::BackendStalled => 504,
            Self::BadRequestBody(e) => e.status(),
            Self::ClientStalled => 408,
            _ => 502,
        }
    }
}
