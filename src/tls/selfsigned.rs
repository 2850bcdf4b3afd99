//! Self-signed certificates for `ringway demo` and for tests. Never for production: no client
//! trusts them unless told to.

use std::fmt;
use std::sync::Arc;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

use super::{TlsError, certified_key_from_der};

/// A self-signed ECDSA P-256 certificate and its key, as PEM (to write to files) and as DER (to
/// use directly).
pub struct SelfSigned {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The PKCS#8 private key, PEM.
    pub key_pem: String,
    /// The chain: just the self-signed certificate.
    pub chain: Vec<CertificateDer<'static>>,
    /// The PKCS#8 private key, DER.
    pub key: PrivateKeyDer<'static>,
}

impl SelfSigned {
    /// The checked `CertifiedKey` for [`crate::tls::server_config`].
    pub fn certified_key(&self) -> Result<Arc<CertifiedKey>, TlsError> {
        certified_key_from_der(self.chain.clone(), self.key.clone_key())
    }
}

impl fmt::Debug for SelfSigned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelfSigned")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .field("chain", &self.chain)
            .finish_non_exhaustive()
    }
}

/// Makes a self-signed ECDSA P-256 certificate whose subjectAltName lists `names`: entries that
/// parse as IP addresses become IP SANs, the rest DNS names (`*.example.com` allowed). The
/// subject common name is the first name. An invalid DNS name is an error.
pub fn self_signed(names: &[&str]) -> Result<SelfSigned, TlsError> {
    let mut params = CertificateParams::new(
        names
            .iter()
            .map(|name| (*name).to_owned())
            .collect::<Vec<_>>(),
    )?;
    let mut subject = DistinguishedName::new();
    subject.push(DnType::OrganizationName, "ringway self-signed");
    if let Some(first) = names.first() {
        subject.push(DnType::CommonName, *first);
    }
    params.distinguished_name = subject;

    let key_pair = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key_pair)?;
    Ok(SelfSigned {
        cert_pem: cert.pem(),
        key_pem: key_pair.serialize_pem(),
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der())),
    })
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::pem::PemObject;

    use super::*;

    #[test]
    fn pem_and_der_agree_and_ip_names_are_ip_sans() {
        let generated =
            self_signed(&["localhost", "127.0.0.1", "::1", "*.demo.test"]).expect("self-signed");
        let from_pem =
            CertificateDer::from_pem_slice(generated.cert_pem.as_bytes()).expect("cert PEM");
        assert_eq!(from_pem, generated.chain[0]);
        let key_from_pem =
            PrivateKeyDer::from_pem_slice(generated.key_pem.as_bytes()).expect("key PEM");
        assert_eq!(key_from_pem.secret_der(), generated.key.secret_der());

        let certified = generated.certified_key().expect("key matches");
        assert_eq!(certified.key.algorithm(), rustls::SignatureAlgorithm::ECDSA);

        let leaf = webpki::EndEntityCert::try_from(&generated.chain[0]).expect("x509");
        let dns: Vec<_> = leaf.valid_dns_names().collect();
        assert_eq!(dns, ["localhost", "*.demo.test"], "IPs are not DNS names");
        for ip in ["127.0.0.1", "::1"] {
            let name = rustls::pki_types::ServerName::try_from(ip).expect("ip");
            leaf.verify_is_valid_for_subject_name(&name)
                .unwrap_or_else(|e| panic!("{ip} is an IP SAN: {e}"));
        }
        assert!(
            !format!("{generated:?}").contains("PRIVATE KEY"),
            "Debug redacts the key"
        );
    }

    #[test]
    fn invalid_dns_name_is_an_error() {
        let err = self_signed(&["bücher.example"]);
        assert!(matches!(err, Err(TlsError::SelfSigned(_))), "{err:?}");
    }
}
