//! Errors of the HTTP/1.1 layer. Each maps to the status ringway answers with; after any of
//! them the connection is closed and nothing of the message is forwarded.

use super::Status;

/// A malformed or unacceptable header section, shared by requests and responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("bare LF line ending (RFC 9112 §2.2)")]
    BareLf,
    #[error("bare CR not followed by LF (RFC 9112 §2.2)")]
    BareCr,
    #[error("NUL byte in the head")]
    Nul,
    #[error("obsolete line folding (RFC 9112 §5.2)")]
    ObsFold,
    #[error("whitespace between a field name and the colon (RFC 9112 §5.1)")]
    WhitespaceBeforeColon,
    #[error("invalid byte in a field name")]
    InvalidFieldName,
    #[error("invalid byte (CTL, CR, LF or NUL) in a field value")]
    InvalidFieldValue,
    #[error("field line without a colon")]
    MissingColon,
    #[error("head larger than the limit")]
    TooLarge,
    #[error("more header fields than the limit")]
    TooManyFields,
    #[error("Content-Length is not a list of equal decimal numbers (RFC 9110 §8.6)")]
    InvalidContentLength,
    #[error("differing Content-Length values (RFC 9112 §6.3)")]
    DifferingContentLength,
    #[error("both Content-Length and Transfer-Encoding (RFC 9112 §6.3)")]
    ContentLengthWithTransferEncoding,
    #[error("more than one Transfer-Encoding field")]
    DuplicateTransferEncoding,
    #[error("malformed Transfer-Encoding value")]
    InvalidTransferEncoding,
    #[error("unknown transfer coding (RFC 9112 §6.1)")]
    UnknownTransferCoding,
    #[error("chunked applied more than once (RFC 9112 §6.1)")]
    DuplicateChunked,
    #[error("final transfer coding is not chunked (RFC 9112 §6.3)")]
    TransferEncodingNotChunked,
    #[error("Transfer-Encoding in an HTTP/1.0 message (RFC 9112 §6.1)")]
    TransferEncodingInHttp10,
    #[error("too many Connection options")]
    TooManyConnectionOptions,
    #[error("header section rejected by the tokenizer")]
    Malformed,
}

/// Why a request head was rejected. [`RequestError::status`] is the status to answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("request line longer than the limit")]
    UriTooLong,
    #[error("Content-Length larger than the body limit")]
    BodyTooLarge,
    #[error("malformed request line (RFC 9112 §3)")]
    MalformedRequestLine,
    #[error("invalid method token")]
    InvalidMethod,
    #[error("malformed HTTP version")]
    MalformedVersion,
    #[error("unsupported HTTP major version")]
    UnsupportedVersion,
    #[error("invalid request target")]
    InvalidTarget,
    #[error("fragment (#) in the request target")]
    FragmentInTarget,
    #[error("asterisk-form target with a method other than OPTIONS (RFC 9112 §3.2.4)")]
    AsteriskNotOptions,
    #[error("authority-form target with a method other than CONNECT (RFC 9112 §3.2.3)")]
    AuthorityFormNotConnect,
    #[error("CONNECT is not supported")]
    ConnectNotSupported,
    #[error("no Host header field (RFC 9112 §3.2)")]
    MissingHost,
    #[error("more than one Host header field (RFC 9112 §3.2)")]
    DuplicateHost,
    #[error("invalid Host (RFC 9110 §7.2)")]
    InvalidHost,
    #[error(transparent)]
    Head(#[from] HeadError),
}

impl RequestError {
    /// The status to answer with (the connection is closed after it).
    pub fn status(&self) -> Status {
        match self {
            Self::UriTooLong => Status::UriTooLong,
            Self::BodyTooLarge => Status::ContentTooLarge,
            Self::UnsupportedVersion => Status::HttpVersionNotSupported,
            Self::ConnectNotSupported => Status::NotImplemented,
            Self::Head(HeadError::TooLarge | HeadError::TooManyFields) => {
                Status::HeaderFieldsTooLarge
            }
            Self::Head(HeadError::UnknownTransferCoding) => Status::NotImplemented,
            _ => Status::BadRequest,
        }
    }
}

/// Why a backend's response head was rejected: the client gets a 502 and the backend
/// connection is discarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("malformed status line (RFC 9112 §4)")]
    MalformedStatusLine,
    #[error("malformed HTTP version in the status line")]
    MalformedVersion,
    #[error("unsupported HTTP major version in the status line")]
    UnsupportedVersion,
    #[error("status code outside 100..=599 (RFC 9110 §15)")]
    InvalidStatus,
    #[error("status line longer than the limit")]
    StatusLineTooLong,
    #[error("101 Switching Protocols, but no upgrade was requested")]
    SwitchingProtocols,
    #[error("101 Switching Protocols without an Upgrade field (RFC 9110 §15.2.2)")]
    SwitchingWithoutUpgrade,
    #[error("101 Switching Protocols before the whole request body was sent")]
    SwitchingBeforeRequestEnd,
    #[error("101 Switching Protocols to a protocol the request did not offer (RFC 9110 §7.8)")]
    SwitchingToUnoffered,
    #[error("2xx answer to CONNECT (a tunnel), but ringway never sends CONNECT")]
    ConnectTunnel,
    #[error(transparent)]
    Head(#[from] HeadError),
}

impl ResponseError {
    /// Always 502: a backend that sends a bad head gets its client a Bad Gateway.
    pub fn status(&self) -> Status {
        Status::BadGateway
    }
}

/// A body that broke its framing or a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("invalid chunk size (RFC 9112 §7.1)")]
    InvalidChunkSize,
    #[error("chunk size with more than 16 hex digits")]
    ChunkSizeTooLong,
    #[error("invalid chunk extension (RFC 9112 §7.1.1)")]
    InvalidChunkExtension,
    #[error("chunk extensions longer than the limit")]
    ChunkExtensionTooLong,
    #[error("chunk data not followed by CRLF (RFC 9112 §7.1)")]
    MissingChunkCrlf,
    #[error("bare LF in chunk framing")]
    BareLf,
    #[error("bare CR in chunk framing")]
    BareCr,
    #[error("invalid trailer field (RFC 9112 §7.1.2)")]
    InvalidTrailer,
    #[error("trailer section larger than the limit")]
    TrailersTooLarge,
    #[error("body larger than the limit")]
    TooLarge,
}

impl BodyError {
    /// 413 over the body limit, 431 over the trailer limit, 400 for broken framing.
    pub fn status(&self) -> Status {
        match self {
            Self::TooLarge => Status::ContentTooLarge,
            Self::TrailersTooLarge => Status::HeaderFieldsTooLarge,
            _ => Status::BadRequest,
        }
    }
}

impl HeadError {
    /// The rule broken, as a short name for logs and metrics (`cl_te`: Content-Length with Transfer-Encoding).
    pub fn name(&self) -> &'static str {
        match self {
            Self::BareLf => "bare_lf",
            Self::BareCr => "bare_cr",
            Self::Nul => "nul",
            Self::ObsFold => "obs_fold",
            Self::WhitespaceBeforeColon => "whitespace_before_colon",
            Self::InvalidFieldName => "invalid_field_name",
            Self::InvalidFieldValue => "invalid_field_value",
            Self::MissingColon => "missing_colon",
            Self::TooLarge => "too_large",
            Self::TooManyFields => "too_many_fields",
            Self::InvalidContentLength => "invalid_cl",
            Self::DifferingContentLength => "cl_cl",
            Self::ContentLengthWithTransferEncoding => "cl_te",
            Self::DuplicateTransferEncoding => "te_te",
            Self::InvalidTransferEncoding => "invalid_transfer_encoding",
            Self::UnknownTransferCoding => "unknown_transfer_coding",
            Self::DuplicateChunked => "duplicate_chunked",
            Self::TransferEncodingNotChunked => "te_not_chunked",
            Self::TransferEncodingInHttp10 => "te_http10",
            Self::TooManyConnectionOptions => "too_many_connection_options",
            Self::Malformed => "malformed",
        }
    }
}

impl RequestError {
    /// The rule broken, as a short name for logs and metrics (`cl_te`: Content-Length with Transfer-Encoding).
    pub fn name(&self) -> &'static str {
        match self {
            Self::UriTooLong => "uri_too_long",
            Self::BodyTooLarge => "body_too_large",
            Self::MalformedRequestLine => "malformed_request_line",
            Self::InvalidMethod => "invalid_method",
            Self::MalformedVersion => "malformed_version",
            Self::UnsupportedVersion => "unsupported_version",
            Self::InvalidTarget => "invalid_target",
            Self::FragmentInTarget => "fragment_in_target",
            Self::AsteriskNotOptions => "asterisk_not_options",
            Self::AuthorityFormNotConnect => "authority_form_not_connect",
            Self::ConnectNotSupported => "connect_not_supported",
            Self::MissingHost => "missing_host",
            Self::DuplicateHost => "duplicate_host",
            Self::InvalidHost => "invalid_host",
            Self::Head(e) => e.name(),
        }
    }
}

impl ResponseError {
    /// The rule broken, as a short name for logs and metrics (`cl_te`: Content-Length with Transfer-Encoding).
    pub fn name(&self) -> &'static str {
        match self {
            Self::MalformedStatusLine => "malformed_status_line",
            Self::MalformedVersion => "malformed_version",
            Self::UnsupportedVersion => "unsupported_version",
            Self::InvalidStatus => "invalid_status",
            Self::StatusLineTooLong => "status_line_too_long",
            Self::SwitchingProtocols => "switching_protocols",
            Self::SwitchingWithoutUpgrade => "switching_without_upgrade",
            Self::SwitchingBeforeRequestEnd => "switching_before_request_end",
            Self::SwitchingToUnoffered => "switching_to_unoffered",
            Self::ConnectTunnel => "connect_tunnel",
            Self::Head(e) => e.name(),
        }
    }
}

impl BodyError {
    /// The rule broken, as a short name for logs and metrics (`cl_te`: Content-Length with Transfer-Encoding).
    pub fn name(&self) -> &'static str {
        match self {
            Self::InvalidChunkSize => "invalid_chunk_size",
            Self::ChunkSizeTooLong => "chunk_size_too_long",
            Self::InvalidChunkExtension => "invalid_chunk_extension",
            Self::ChunkExtensionTooLong => "chunk_extension_too_long",
            Self::MissingChunkCrlf => "missing_chunk_crlf",
            Self::BareLf => "bare_lf",
            Self::BareCr => "bare_cr",
            Self::InvalidTrailer => "invalid_trailer",
            Self::TrailersTooLarge => "trailers_too_large",
            Self::TooLarge => "too_large",
        }
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn rule_names_are_short_snake_case_and_the_smuggling_ones_are_named() {
        assert_eq!(
            RequestError::Head(HeadError::ContentLengthWithTransferEncoding).name(),
            "cl_te"
        );
        assert_eq!(HeadError::DifferingContentLength.name(), "cl_cl");
        assert_eq!(HeadError::DuplicateTransferEncoding.name(), "te_te");
        assert_eq!(ResponseError::Head(HeadError::ObsFold).name(), "obs_fold");
        assert_eq!(BodyError::InvalidChunkSize.name(), "invalid_chunk_size");
        for name in [
            RequestError::MissingHost.name(),
            HeadError::TransferEncodingInHttp10.name(),
        ] {
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
        }
    }
}
