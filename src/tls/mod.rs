//! TLS configuration: everything ringway hands to rustls before the first byte of a handshake.
//!
//! This module owns
//! - the [`provider`]: rustls' aws-lc-rs provider cut down to forward-secret AEAD cipher suites
//!   (all TLS 1.3 suites; TLS 1.2 ECDHE-ECDSA/ECDHE-RSA with AES-GCM or ChaCha20-Poly1305) and the
//!   key exchange groups X25519MLKEM768, X25519, P-256 and P-384;
//! - loading certificate chains and private keys from PEM files ([`load_certified_key`]) or DER
//!   ([`certified_key_from_der`]), checking that the key belongs to the leaf certificate;
//! - certificate selection by SNI ([`SniResolver`]), each certificate with its stapled OCSP
//!   response when one is configured ([`load_ocsp`]: DER, checked to be one SEQUENCE);
//! - client certificates ([`client_auth`]): the CA and CRL files a listener verifies clients
//!   with, the rustls verifier, session tickets bound to that policy, and why a client's
//!   certificate was refused; what a verified certificate says ([`ClientCert`]: subject, SANs,
//!   fingerprint, for the headers sent to backends);
//! - building the per-listener [`rustls::ServerConfig`] ([`server_config`]) and the process-wide
//!   session ticketer ([`ticketer`]);
//! - session-ticket keys read from a file and shared by a fleet ([`ticket_keys`]): the file's
//!   format and the ticketer made from it;
//! - self-signed certificates for `ringway demo` and tests ([`self_signed`]).
//!
//! Invariants:
//! - Every `ServerConfig` is built with `ServerConfig::builder_with_provider(provider())`; the
//!   process-wide default provider is never installed nor consulted, so there is exactly one
//!   provider and it is the restricted one.
//! - Only TLS 1.2 and TLS 1.3 are enabled, ALPN offers only `http/1.1`, client certificates are
//!   requested only by a listener with client authentication ([`server_config_with`]), whose
//!   session tickets only resume under the same CA, CRL and mode, and 0-RTT early data is never
//!   accepted (`max_early_data_size` stays 0): a proxy must not forward replayable requests.
//! - A `CertifiedKey` produced here always has a non-empty chain whose leaf parses as X.509 and
//!   whose public key equals the private key's (`CertifiedKey::keys_match`).
//! - Nothing here does socket I/O; only [`load_certified_key`] and the loaders of
//!   [`ticket_keys`] read files, and every error they return names the file.
//! - No key material appears in a `Debug` output or an error.
#![forbid(unsafe_code)]

pub mod client_auth;
mod client_cert;
pub(crate) mod client_hello;
pub mod engine;
mod keys;
pub mod layer;
mod options;
mod resolver;
mod selfsigned;
#[cfg(test)]
mod tests;
pub mod ticket_keys;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::crypto::aws_lc_rs::{self, cipher_suite, kx_group};
use rustls::server::{NoServerSessionStorage, ProducesTickets, ServerSessionMemoryCache};

pub use client_auth::{
    ClientAuth, ClientAuthMode, ClientAuthPolicy, UnknownClientAuthMode, client_cert_failure,
    load_client_auth, load_ocsp,
};
pub use client_cert::ClientCert;
pub use engine::{TlsEngine, TlsIoError};
pub use keys::{certified_key_from_der, load_certified_key};
pub use layer::Layer;
pub use options::TlsOptions;
pub use resolver::SniResolver;
pub use rustls::sign::CertifiedKey;
pub use selfsigned::{SelfSigned, self_signed};
pub use ticket_keys::{TicketKeyError, TicketKeys};

/// The only ALPN protocol ringway negotiates. A client that offers ALPN without it is refused
/// with a `no_application_protocol` alert (RFC 7301 §3.2); a client that offers no ALPN at all
/// is served HTTP/1.1.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// TLS 1.3 tickets sent after a full handshake when stateless tickets are on. Two, like
/// OpenSSL, so a client can open a second connection resumed while the first is still open
/// (TLS 1.3 tickets are single use, RFC 8446 §C.4).
const TLS13_TICKETS_STATELESS: usize = 2;

/// TLS 1.3 tickets sent when only the stateful cache is on: each one takes a cache entry.
const TLS13_TICKETS_STATEFUL: usize = 1;

/// Which of the two files of a certificate an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// The PEM certificate chain, leaf first.
    Certificate,
    /// The PEM private key.
    PrivateKey,
    /// The DER OCSP response stapled with a certificate.
    Ocsp,
    /// The PEM CA certificates client certificates are verified with.
    ClientCa,
    /// The certificate revocation lists client certificates are checked against.
    Crl,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Certificate => "certificate",
            FileKind::PrivateKey => "private key",
            FileKind::Ocsp => "OCSP response",
            FileKind::ClientCa => "client CA",
            FileKind::Crl => "CRL",
        })
    }
}

/// Why a certificate, key or TLS configuration could not be used. Each variant that concerns a
/// file names it; keys given as DER (no file) are shown as `<memory>`.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate or key file could not be read.
    #[error("{}: {}", .path.display(), IoReason(.source))]
    Read {
        path: PathBuf,
        kind: FileKind,
        source: io::Error,
    },
    /// The file is not well-formed PEM.
    #[error("{}: malformed PEM: {source}", .path.display())]
    Pem {
        path: PathBuf,
        kind: FileKind,
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no `CERTIFICATE` block (or the DER chain is empty).
    #[error("{}: no certificate found (expected PEM `CERTIFICATE` blocks, leaf first)", OptPath(.path))]
    NoCertificate { path: Option<PathBuf> },
    /// The leaf certificate is not valid X.509.
    #[error("{}: the leaf certificate is not valid X.509: {source}", OptPath(.path))]
    BadCertificate {
        path: Option<PathBuf>,
        source: webpki::Error,
    },
    /// The key file holds no private key block ringway can read.
    #[error("{}: no private key found ({reason})", .path.display())]
    NoPrivateKey { path: PathBuf, reason: &'static str },
    /// The private key is of a type or curve rustls cannot sign with.
    #[error(
        "{}: unsupported private key (expected ECDSA P-256/P-384, RSA or Ed25519): {source}",
        OptPath(.path)
    )]
    UnsupportedKey {
        path: Option<PathBuf>,
        source: rustls::Error,
    },
    /// The private key does not belong to the leaf certificate.
    #[error(
        "{}: the private key does not match the certificate {}",
        OptPath(.key),
        OptPath(.cert)
    )]
    KeyMismatch {
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
    },
    /// The OCSP response file is not one DER structure.
    #[error("{}: {reason}", .path.display())]
    BadOcsp { path: PathBuf, reason: &'static str },
    /// The client CA file holds no `CERTIFICATE` block.
    #[error("{}: no certificate found (expected PEM `CERTIFICATE` blocks: the CAs client certificates chain to)", .path.display())]
    NoClientCa { path: PathBuf },
    /// A certificate of the client CA file cannot be a trust anchor.
    #[error("{}: {reason}", .path.display())]
    BadClientCa { path: PathBuf, reason: String },
    /// The CRL file holds no `X509 CRL` block.
    #[error("{}: no CRL found (expected PEM `X509 CRL` blocks or one DER CRL)", .path.display())]
    NoCrl { path: PathBuf },
    /// The client certificate verifier could not be built (a CRL rustls cannot read).
    #[error("{}: {reason}", .path.display())]
    ClientVerifier {
        /// The CRL file when there is one (what rustls can refuse), else the CA file.
        path: PathBuf,
        kind: FileKind,
        reason: String,
    },
    /// A listener was given no certificate at all.
    #[error("no certificate configured (at least one is required; the first is the default)")]
    NoCertificates,
    /// rustls refused the configuration.
    #[error("building the rustls server configuration: {0}")]
    Build(rustls::Error),
    /// The session ticketer could not be created.
    #[error("creating the session ticketer: {0}")]
    Ticketer(rustls::Error),
    /// A session-ticket key file is unusable (the error names the file and the line).
    #[error(transparent)]
    TicketKeys(#[from] TicketKeyError),
    /// rcgen could not make a self-signed certificate.
    #[error("generating a self-signed certificate: {0}")]
    SelfSigned(#[from] rcgen::Error),
}

impl TlsError {
    /// Which file the error is about, when it is about one: the certificate file for read, PEM
    /// and certificate errors, the key file for key errors and for a key/certificate mismatch.
    pub fn file_kind(&self) -> Option<FileKind> {
        match self {
            TlsError::Read { kind, .. } | TlsError::Pem { kind, .. } => Some(*kind),
            TlsError::NoCertificate { .. } | TlsError::BadCertificate { .. } => {
                Some(FileKind::Certificate)
            }
            TlsError::NoPrivateKey { .. }
            | TlsError::UnsupportedKey { .. }
            | TlsError::KeyMismatch { .. } => Some(FileKind::PrivateKey),
            TlsError::BadOcsp { .. } => Some(FileKind::Ocsp),
            TlsError::NoClientCa { .. } | TlsError::BadClientCa { .. } => Some(FileKind::ClientCa),
            TlsError::NoCrl { .. } => Some(FileKind::Crl),
            TlsError::ClientVerifier { kind, .. } => Some(*kind),
            TlsError::NoCertificates
            | TlsError::Build(_)
            | TlsError::Ticketer(_)
            | TlsError::TicketKeys(_)
            | TlsError::SelfSigned(_) => None,
        }
    }
}

/// Shows an optional path, `<memory>` for DER given directly.
struct OptPath<'a>(&'a Option<PathBuf>);

impl fmt::Display for OptPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(path) => write!(f, "{}", path.display()),
            None => f.write_str("<memory>"),
        }
    }
}

/// Shows an I/O error the way a shell does (`No such file or directory`), without the
/// `(os error 2)` suffix std appends.
pub(crate) struct IoReason<'a>(pub(crate) &'a io::Error);

impl fmt::Display for IoReason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        let text = match (self.0.raw_os_error(), text.rfind(" (os error ")) {
            (Some(_), Some(cut)) => &text[..cut],
            _ => &text,
        };
        f.write_str(text)
    }
}

/// The crypto provider every ringway `ServerConfig` is built with: aws-lc-rs, restricted to
/// forward-secret AEAD cipher suites and to the key exchange groups X25519MLKEM768 (the
/// post-quantum hybrid), X25519, P-256 and P-384.
///
/// rustls picks both the cipher suite and the group in the client's preference order
/// (`ignore_client_order` is false), so a client without AES instructions gets
/// ChaCha20-Poly1305 and a client that prefers the hybrid gets it; the order of these lists only
/// states ours. The provider is built once and shared.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            Arc::new(CryptoProvider {
                cipher_suites: vec![
                    // TLS 1.3: every suite is AEAD with (EC)DHE.
                    cipher_suite::TLS13_AES_128_GCM_SHA256,
                    cipher_suite::TLS13_AES_256_GCM_SHA384,
                    cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
                    // TLS 1.2: ECDHE only (forward secrecy), AEAD only (no CBC).
                    cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                    cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                    cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                    cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                    cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                    cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
                ],
                kx_groups: vec![
                    kx_group::X25519MLKEM768,
                    kx_group::X25519,
                    kx_group::SECP256R1,
                    kx_group::SECP384R1,
                ],
                ..aws_lc_rs::default_provider()
            })
        })
        .clone()
}

/// Makes the session ticketer with keys of its own (for a fleet that shares keys, see
/// [`ticket_keys::load`]). Create it once per process and pass the same one to every
/// listener's [`server_config`]: a resumed connection may land on any worker, and only a shared
/// ticketer can decrypt a ticket another worker issued. aws-lc-rs' ticketer rotates its key
/// every 6 hours and still accepts tickets from the previous key.
pub fn ticketer() -> Result<Arc<dyn ProducesTickets>, TlsError> {
    aws_lc_rs::Ticketer::new().map_err(TlsError::Ticketer)
}

/// Builds a listener's `ServerConfig` without client authentication: [`server_config_with`].
pub fn server_config(
    keys: Vec<Arc<CertifiedKey>>,
    opts: &TlsOptions,
    ticketer: Option<Arc<dyn ProducesTickets>>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    server_config_with(keys, opts, ticketer, None)
}

/// Builds a listener's `ServerConfig`.
///
/// - `keys`: the listener's certificates in configuration order; the first is the default for
///   clients that send no SNI or an unknown name (see [`SniResolver`]).
/// - `opts.session_cache`: entries of the stateful resumption cache (TLS 1.2 session ids, and
///   TLS 1.3 when tickets are off); 0 disables it. The cache is shared by every connection of
///   this `ServerConfig` behind one lock; with tickets on it is touched only by TLS 1.2 clients
///   that do not support tickets.
/// - `opts.tickets` and `ticketer`: stateless tickets (TLS 1.2 RFC 5077 and TLS 1.3) are issued
///   only when `opts.tickets` is true *and* a ticketer is given; pass the one [`ticketer`] to
///   every listener. `None` (as `ringway check` does) builds a config without tickets.
/// - `client_auth`: client certificates are requested and verified as it says; its tickets
///   are bound to it ([`ClientAuth::bind`]), so a ticket issued by another listener, or
///   under other CA or CRL files, never resumes here (a resumption skips verification).
///   Its stateful session cache is this configuration's own, like every listener's.
pub fn server_config_with(
    keys: Vec<Arc<CertifiedKey>>,
    opts: &TlsOptions,
    ticketer: Option<Arc<dyn ProducesTickets>>,
    client_auth: Option<&ClientAuth>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let resolver = SniResolver::new(keys)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Build)?;
    let builder = match client_auth {
        Some(auth) => builder.with_client_cert_verifier(auth.verifier()),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(resolver));
    let ticketer = match (ticketer, client_auth) {
        (Some(ticketer), Some(auth)) => Some(auth.bind(ticketer)),
        (ticketer, _) => ticketer,
    };

    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    config.ignore_client_order = false;
    config.max_fragment_size = None;
    config.max_early_data_size = 0;

    let stateful = opts.session_cache > 0;
    config.session_storage = if stateful {
        ServerSessionMemoryCache::new(opts.session_cache)
    } else {
        Arc::new(NoServerSessionStorage {})
    };

    let stateless = match ticketer {
        Some(ticketer) if opts.tickets => {
            config.ticketer = ticketer;
            true
        }
        _ => false,
    };
    config.send_tls13_tickets = match (stateless, stateful) {
        (true, _) => TLS13_TICKETS_STATELESS,
        (false, true) => TLS13_TICKETS_STATEFUL,
        (false, false) => 0,
    };

    Ok(Arc::new(config))
}
