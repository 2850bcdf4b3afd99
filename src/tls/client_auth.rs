//! Client certificates (mutual TLS): a listener's trust anchors and revocation lists loaded
//! from files, the rustls verifier made from them, session tickets bound to them, and the
//! reason a client's certificate was refused.
//!
//! - [`load_client_auth`] reads the CA file (PEM `CERTIFICATE` blocks: the roots client
//!   certificates must chain to) and an optional CRL file (PEM `X509 CRL` blocks, or one DER
//!   CRL), and builds rustls' `WebPkiClientVerifier` with ringway's provider; `optional` mode
//!   lets a client without a certificate through (`allow_unauthenticated`), but a certificate
//!   that is presented must verify in both modes. Every error names the file.
//! - Session tickets are shared by every listener (one ticketer per process, or a fleet's key
//!   file), and a resumed session skips certificate verification: rustls restores the client
//!   certificate the ticket recorded. So that a ticket issued where no certificate (or another
//!   CA's) was asked for never resumes on a listener that requires one, a client-auth
//!   listener's tickets are bound to its policy ([`BoundTicketer`]): each carries a digest of
//!   the mode, the CA file and the CRL file, and only a listener with the same digest accepts
//!   it. A reload that changes either file therefore ends resumption of the sessions verified
//!   under the old ones; a fleet with the same files resumes each other's sessions.
//! - [`client_cert_failure`] names why rustls refused a client's certificate, for the access
//!   log and the counters: `client_cert_required`, `client_cert_unknown_ca`,
//!   `client_cert_expired` (also: not valid yet), `client_cert_revoked`, `client_cert_invalid`.
//!
//! Invariants: nothing here does I/O but [`load_client_auth`] and [`load_ocsp`], which read
//! their files once; a bound ticket is the inner ticketer's sealing of `digest || session`, so
//! the digest is authenticated with the session, and compared in constant time once the inner
//! ticketer has opened the ticket.

use std::fmt;
use std::fs;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use aws_lc_rs::digest;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ProducesTickets, WebPkiClientVerifier};
use rustls::{CertificateError, Error};

use super::{FileKind, TlsError, provider};

/// Whether a client must present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMode {
    /// A handshake without a valid client certificate is refused.
    Require,
    /// A client without a certificate is served (the backend is told it has none); one that
    /// presents a certificate that does not verify is refused.
    Optional,
}

impl ClientAuthMode {
    /// As the configuration writes it: `require`, `optional`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Require => "require",
            Self::Optional => "optional",
        }
    }
}

impl fmt::Display for ClientAuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A client authentication mode that is neither `require` nor `optional`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a client_auth mode: use \"require\" or \"optional\"")]
pub struct UnknownClientAuthMode(pub String);

impl FromStr for ClientAuthMode {
    type Err = UnknownClientAuthMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "require" => Ok(Self::Require),
            "optional" => Ok(Self::Optional),
            other => Err(UnknownClientAuthMode(other.to_owned())),
        }
    }
}

/// A listener's client authentication, loaded: what [`super::server_config_with`] needs.
#[derive(Clone)]
pub struct ClientAuth {
    verifier: Arc<dyn ClientCertVerifier>,
    mode: ClientAuthMode,
    /// Digest of the mode and both files' contents: what tickets are bound to.
    policy: [u8; POLICY_LEN],
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAuth")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

const POLICY_LEN: usize = 32;

/// A listener's client authentication as a value: its mode and a digest of its CA and CRL
/// files. A connection stays on a reloaded plan only when its listener's policy is the same
/// as the one its handshake was verified under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAuthPolicy {
    mode: ClientAuthMode,
    digest: [u8; POLICY_LEN],
}

impl ClientAuthPolicy {
    /// The mode.
    pub fn mode(&self) -> ClientAuthMode {
        self.mode
    }
}

impl ClientAuth {
    /// The mode.
    pub fn mode(&self) -> ClientAuthMode {
        self.mode
    }

    /// The rustls verifier.
    pub fn verifier(&self) -> Arc<dyn ClientCertVerifier> {
        self.verifier.clone()
    }

    /// The mode and a digest of the files: equal for two loads of the same files.
    pub fn policy(&self) -> ClientAuthPolicy {
        ClientAuthPolicy {
            mode: self.mode,
            digest: self.policy,
        }
    }

    /// `ticketer`, with its tickets bound to this policy.
    pub fn bind(&self, ticketer: Arc<dyn ProducesTickets>) -> Arc<dyn ProducesTickets> {
        Arc::new(BoundTicketer {
            inner: ticketer,
            policy: self.policy,
        })
    }
}

/// Reads the CA file (and the CRL file, when given) and builds the verifier for `mode`.
pub fn load_client_auth(
    ca: &Path,
    crl: Option<&Path>,
    mode: ClientAuthMode,
) -> Result<ClientAuth, TlsError> {
    let ca_pem = read(ca, FileKind::ClientCa)?;
    let roots = CertificateDer::pem_slice_iter(&ca_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: ca.to_path_buf(),
            kind: FileKind::ClientCa,
            source,
        })?;
    if roots.is_empty() {
        return Err(TlsError::NoClientCa {
            path: ca.to_path_buf(),
        });
    }
    let mut store = RootCertStore::empty();
    for (position, root) in roots.into_iter().enumerate() {
        store.add(root).map_err(|source| TlsError::BadClientCa {
            path: ca.to_path_buf(),
            reason: format!("certificate {position} cannot be used as a CA: {source}"),
        })?;
    }

    let mut policy = digest::Context::new(&digest::SHA256);
    policy.update(mode.as_str().as_bytes());
    policy.update(&(ca_pem.len() as u64).to_be_bytes());
    policy.update(&ca_pem);

    let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider());
    if let Some(crl) = crl {
        let bytes = read(crl, FileKind::Crl)?;
        let crls = parse_crls(crl, &bytes)?;
        policy.update(&bytes);
        builder = builder.with_crls(crls);
    }
    if mode == ClientAuthMode::Optional {
        builder = builder.allow_unauthenticated();
    }
    let verifier = builder.build().map_err(|source| TlsError::ClientVerifier {
        path: crl.unwrap_or(ca).to_path_buf(),
        kind: if crl.is_some() {
            FileKind::Crl
        } else {
            FileKind::ClientCa
        },
        reason: source.to_string(),
    })?;
    let mut bound = [0u8; POLICY_LEN];
    bound.copy_from_slice(policy.finish().as_ref());
    Ok(ClientAuth {
        verifier,
        mode,
        policy: bound,
    })
}

/// PEM `X509 CRL` blocks, or one DER CRL.
fn parse_crls(
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    if bytes.first() == Some(&0x30) {
        return Ok(vec![CertificateRevocationListDer::from(bytes.to_vec())]);
    }
    let crls = CertificateRevocationListDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: path.to_path_buf(),
            kind: FileKind::Crl,
            source,
        })?;
    if crls.is_empty() {
        return Err(TlsError::NoCrl {
            path: path.to_path_buf(),
        });
    }
    Ok(crls)
}

fn read(path: &Path, kind: FileKind) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        kind,
        source,
    })
}

/// Reads a stapled OCSP response (DER, as `openssl ocsp -respout` writes it). Checked: the file
/// is not empty and holds one DER SEQUENCE whose length matches the file; the response itself
/// is not parsed (rustls staples it as it is; the client judges it).
pub fn load_ocsp(path: &Path) -> Result<Vec<u8>, TlsError> {
    let bytes = read(path, FileKind::Ocsp)?;
    check_der_sequence(&bytes).map_err(|reason| TlsError::BadOcsp {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok(bytes)
}

/// That `bytes` is exactly one DER SEQUENCE (definite length).
fn check_der_sequence(bytes: &[u8]) -> Result<(), &'static str> {
    let (&tag, rest) = bytes.split_first().ok_or("the file is empty")?;
    if tag != 0x30 {
        return Err("not a DER OCSP response (expected a SEQUENCE; PEM or text is not accepted)");
    }
    let (&first, rest) = rest.split_first().ok_or("truncated DER")?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return Err("malformed DER length");
        }
        let (digits, rest) = rest.split_at(count);
        let len = digits
            .iter()
            .fold(0usize, |len, &d| (len << 8) | usize::from(d));
        (len, rest)
    };
    if len != rest.len() {
        return Err("the DER length does not match the file's size");
    }
    Ok(())
}

/// Why rustls refused a client's certificate, as the access log and the counters name it;
/// `None` for a handshake failure that is not about the client's certificate.
pub fn client_cert_failure(e: &Error) -> Option<&'static str> {
    Some(match e {
        Error::NoCertificatesPresented => "client_cert_required",
        Error::InvalidCertificate(why) => match why {
            CertificateError::UnknownIssuer => "client_cert_unknown_ca",
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => "client_cert_expired",
            CertificateError::Revoked => "client_cert_revoked",
            _ => "client_cert_invalid",
        },
        _ => return None,
    })
}

/// A ticketer whose tickets only decrypt under the same client-auth policy.
struct BoundTicketer {
    inner: Arc<dyn ProducesTickets>,
    policy: [u8; POLICY_LEN],
}

impl fmt::Debug for BoundTicketer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundTicketer")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl ProducesTickets for BoundTicketer {
    fn enabled(&self) -> bool {
        self.inner.enabled()
    }

    fn lifetime(&self) -> u32 {
        self.inner.lifetime()
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let mut bound = Vec::with_capacity(POLICY_LEN + plain.len());
        bound.extend_from_slice(&self.policy);
        bound.extend_from_slice(plain);
        self.inner.encrypt(&bound)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        let mut plain = self.inner.decrypt(cipher)?;
        let tag = plain.get(..POLICY_LEN)?;
        if !constant_time_eq(tag, &self.policy) {
            return None;
        }
        plain.drain(..POLICY_LEN);
        Some(plain)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_show() {
        assert_eq!("require".parse(), Ok(ClientAuthMode::Require));
        assert_eq!("optional".parse(), Ok(ClientAuthMode::Optional));
        let err = "Require"
            .parse::<ClientAuthMode>()
            .expect_err("case matters");
        assert!(
            err.to_string().contains("\"require\" or \"optional\""),
            "{err}"
        );
        assert_eq!(ClientAuthMode::Optional.to_string(), "optional");
    }

    #[test]
    fn der_sequence_check() {
        assert!(check_der_sequence(&[0x30, 0x03, 1, 2, 3]).is_ok());
        assert!(check_der_sequence(&[0x30, 0x81, 0x01, 9]).is_ok());
        let mut long = vec![0x30, 0x82, 0x01, 0x00];
        long.resize(4 + 256, 7);
        assert!(check_der_sequence(&long).is_ok());
        for bad in [
            &[][..],
            &[0x31, 0x00],
            &[0x30],
            &[0x30, 0x05, 1],
            &[0x30, 0x01, 1, 2],
            &[0x30, 0x80, 0, 0],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            b"-----BEGIN OCSP RESPONSE-----",
        ] {
            assert!(check_der_sequence(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn failures_are_named() {
        let cert = |e| Error::InvalidCertificate(e);
        for (e, name) in [
            (Error::NoCertificatesPresented, Some("client_cert_required")),
            (
                cert(CertificateError::UnknownIssuer),
                Some("client_cert_unknown_ca"),
            ),
            (cert(CertificateError::Expired), Some("client_cert_expired")),
            (
                cert(CertificateError::NotValidYet),
                Some("client_cert_expired"),
            ),
            (cert(CertificateError::Revoked), Some("client_cert_revoked")),
            (
                cert(CertificateError::BadSignature),
                Some("client_cert_invalid"),
            ),
            (Error::DecryptError, None),
        ] {
            assert_eq!(client_cert_failure(&e), name, "{e:?}");
        }
    }

    #[derive(Debug)]
    struct Plain;

    impl ProducesTickets for Plain {
        fn enabled(&self) -> bool {
            true
        }
        fn lifetime(&self) -> u32 {
            60
        }
        fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
            Some(plain.iter().map(|b| b ^ 0x5a).collect())
        }
        fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
            self.encrypt(cipher)
        }
    }

    #[test]
    fn bound_tickets_only_open_under_the_same_policy() {
        let inner: Arc<dyn ProducesTickets> = Arc::new(Plain);
        let a = BoundTicketer {
            inner: inner.clone(),
            policy: [1; POLICY_LEN],
        };
        let b = BoundTicketer {
            inner: inner.clone(),
            policy: [2; POLICY_LEN],
        };
        let ticket = a.encrypt(b"session").expect("encrypt");
        assert_eq!(a.decrypt(&ticket).as_deref(), Some(&b"session"[..]));
        assert_eq!(b.decrypt(&ticket), None, "another policy");
        let unbound = inner.encrypt(b"session").expect("encrypt");
        assert_eq!(a.decrypt(&unbound), None, "an unbound ticket");
        assert_eq!(a.decrypt(&inner.encrypt(b"").expect("encrypt")), None);
        assert_eq!(a.lifetime(), 60);
    }
}
