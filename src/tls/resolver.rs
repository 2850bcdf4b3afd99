//! Certificate selection by SNI.
//!
//! Names come from each leaf certificate's subjectAltName DNS entries, read with rustls-webpki
//! (`EndEntityCert::valid_dns_names`, the parser rustls itself uses, so no second X.509 parser
//! is linked). The common name is ignored, as browsers ignore it (RFC 6125 §6.4.4).
//!
//! Rules, in order:
//! 1. an exact name match, compared ASCII case-insensitively (RFC 4343) and ignoring one
//!    trailing dot;
//! 2. a wildcard `*.example.com`, which matches exactly one extra leftmost label
//!    (`a.example.com`, not `example.com` nor `a.b.example.com`; RFC 6125 §6.4.3);
//! 3. otherwise, and for clients that send no SNI, the default: the first certificate.
//!
//! When several certificates match at the same rule (say an ECDSA and an RSA certificate for the
//! same names), the first, in configuration order, whose key can sign with one of the client's
//! signature schemes wins; if none can, the first match is returned and the handshake fails as
//! it would have anyway. The default set is every certificate in order, so a client that cannot
//! use the first certificate's key type still gets one it can use.
//!
//! Selection never allocates unless the client's name has upper-case letters (rustls already
//! lower-cases SNI, so in practice never), and never fails: there is always a default.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use rustls::SignatureScheme;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::TlsError;

/// Picks a listener's certificate from the client's SNI. See the module doc for the rules.
pub struct SniResolver {
    keys: Vec<Arc<CertifiedKey>>,
    /// Lower-case DNS name → indices into `keys`, in configuration order.
    exact: HashMap<String, Vec<usize>>,
    /// Lower-case parent of a wildcard (`example.com` for `*.example.com`) → indices.
    wildcard: HashMap<String, Vec<usize>>,
    /// `0..keys.len()`: the candidates for no SNI or an unknown name.
    all: Vec<usize>,
}

impl SniResolver {
    /// Indexes `keys` by the DNS names of each leaf. The first key is the default.
    pub fn new(keys: Vec<Arc<CertifiedKey>>) -> Result<Self, TlsError> {
        if keys.is_empty() {
            return Err(TlsError::NoCertificates);
        }
        let mut exact: HashMap<String, Vec<usize>> = HashMap::new();
        let mut wildcard: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, key) in keys.iter().enumerate() {
            let Some(leaf) = key.cert.first() else {
                return Err(TlsError::NoCertificate { path: None });
            };
            let leaf = webpki::EndEntityCert::try_from(leaf)
                .map_err(|source| TlsError::BadCertificate { path: None, source })?;
            let mut named = false;
            for name in leaf.valid_dns_names() {
                let name = normalize(name).to_ascii_lowercase();
                let (map, name) = match name.strip_prefix("*.") {
                    Some(parent) => (&mut wildcard, parent.to_owned()),
                    None => (&mut exact, name),
                };
                let entry = map.entry(name).or_default();
                if !entry.contains(&index) {
                    entry.push(index);
                }
                named = true;
            }
            if !named && index > 0 {
                tracing::warn!(
                    certificate = index,
                    "certificate has no DNS subjectAltName: SNI never selects it, only clients \
                     that cannot use an earlier certificate's key type get it"
                );
            }
        }
        let all = (0..keys.len()).collect();
        Ok(Self {
            keys,
            exact,
            wildcard,
            all,
        })
    }

    /// The certificate for a client that sent `server_name` (SNI) and accepts `schemes`.
    pub fn select(
        &self,
        server_name: Option<&str>,
        schemes: &[SignatureScheme],
    ) -> &Arc<CertifiedKey> {
        let candidates = server_name
            .and_then(|name| self.candidates(normalize(name)))
            .unwrap_or(&self.all);
        let chosen = candidates
            .iter()
            .copied()
            .find(|&index| self.keys[index].key.choose_scheme(schemes).is_some())
            .unwrap_or(candidates[0]);
        &self.keys[chosen]
    }

    /// The default certificate: the first one configured.
    pub fn default_key(&self) -> &Arc<CertifiedKey> {
        &self.keys[0]
    }

    /// Every certificate, in configuration order.
    pub fn keys(&self) -> &[Arc<CertifiedKey>] {
        &self.keys
    }

    fn candidates(&self, name: &str) -> Option<&Vec<usize>> {
        if name.bytes().any(|byte| byte.is_ascii_uppercase()) {
            return self.candidates_lower(&name.to_ascii_lowercase());
        }
        self.candidates_lower(name)
    }

    fn candidates_lower(&self, name: &str) -> Option<&Vec<usize>> {
        if let Some(found) = self.exact.get(name) {
            return Some(found);
        }
        // One label, then the parent the wildcard stands for. An empty first label
        // (".example.com") matches nothing.
        let (label, parent) = name.split_once('.')?;
        if label.is_empty() || parent.is_empty() {
            return None;
        }
        self.wildcard.get(parent)
    }
}

/// Drops one trailing dot: `example.com.` and `example.com` are the same name.
fn normalize(name: &str) -> &str {
    name.strip_suffix('.').unwrap_or(name)
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(self.select(
            client_hello.server_name(),
            client_hello.signature_schemes(),
        )))
    }
}

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut exact: Vec<_> = self.exact.iter().collect();
        exact.sort();
        let mut wildcard: Vec<_> = self.wildcard.iter().collect();
        wildcard.sort();
        f.debug_struct("SniResolver")
            .field("certificates", &self.keys.len())
            .field("exact", &exact)
            .field("wildcard", &wildcard)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::tests::leaf;

    const ALL: &[SignatureScheme] = &[
        SignatureScheme::ECDSA_NISTP256_SHA256,
        SignatureScheme::ECDSA_NISTP384_SHA384,
        SignatureScheme::ED25519,
        SignatureScheme::RSA_PSS_SHA256,
        SignatureScheme::RSA_PKCS1_SHA256,
    ];

    fn resolver(names: &[&[&str]]) -> (SniResolver, Vec<Arc<CertifiedKey>>) {
        let keys: Vec<_> = names
            .iter()
            .map(|names| leaf(names, &rcgen::PKCS_ECDSA_P256_SHA256))
            .collect();
        (SniResolver::new(keys.clone()).expect("resolver"), keys)
    }

    fn pick(resolver: &SniResolver, keys: &[Arc<CertifiedKey>], name: Option<&str>) -> usize {
        let chosen = resolver.select(name, ALL);
        keys.iter()
            .position(|key| Arc::ptr_eq(key, chosen))
            .expect("one of ours")
    }

    #[test]
    fn exact_wildcard_and_default() {
        let (r, keys) = resolver(&[
            &["default.test"],
            &["a.example.com", "b.example.com"],
            &["*.example.com"],
            &["www.other.test", "127.0.0.1"],
        ]);
        assert_eq!(pick(&r, &keys, None), 0, "no SNI gets the default");
        assert_eq!(pick(&r, &keys, Some("unknown.test")), 0);
        assert_eq!(pick(&r, &keys, Some("default.test")), 0);
        assert_eq!(
            pick(&r, &keys, Some("a.example.com")),
            1,
            "exact beats wildcard"
        );
        assert_eq!(pick(&r, &keys, Some("b.example.com")), 1);
        assert_eq!(pick(&r, &keys, Some("c.example.com")), 2, "wildcard");
        assert_eq!(
            pick(&r, &keys, Some("x.y.example.com")),
            0,
            "one label only"
        );
        assert_eq!(
            pick(&r, &keys, Some("example.com")),
            0,
            "not the bare parent"
        );
        assert_eq!(pick(&r, &keys, Some(".example.com")), 0, "empty label");
        assert_eq!(pick(&r, &keys, Some("www.other.test")), 3);
        assert_eq!(pick(&r, &keys, Some("other.test")), 0);
    }

    #[test]
    fn names_are_case_insensitive_and_ignore_a_trailing_dot() {
        let (r, keys) = resolver(&[&["default.test"], &["Mixed.Example.COM", "*.Wild.Test"]]);
        assert_eq!(pick(&r, &keys, Some("mixed.example.com")), 1);
        assert_eq!(pick(&r, &keys, Some("MIXED.example.com")), 1);
        assert_eq!(pick(&r, &keys, Some("mixed.example.com.")), 1);
        assert_eq!(pick(&r, &keys, Some("A.WILD.test")), 1);
    }

    #[test]
    fn key_type_breaks_ties_between_certificates_for_the_same_name() {
        let ecdsa = leaf(&["dual.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
        let rsa = leaf(&["dual.test"], &rcgen::PKCS_RSA_SHA256);
        let r = SniResolver::new(vec![ecdsa.clone(), rsa.clone()]).expect("resolver");
        let rsa_only = &[
            SignatureScheme::RSA_PSS_SHA256,
            SignatureScheme::RSA_PKCS1_SHA256,
        ];
        assert!(Arc::ptr_eq(r.select(Some("dual.test"), ALL), &ecdsa));
        assert!(Arc::ptr_eq(r.select(Some("dual.test"), rsa_only), &rsa));
        assert!(
            Arc::ptr_eq(r.select(None, rsa_only), &rsa),
            "default set too"
        );
        // Nothing fits: the first match, and the handshake fails as it must.
        let none = &[SignatureScheme::ED448];
        assert!(Arc::ptr_eq(r.select(Some("dual.test"), none), &ecdsa));
    }

    #[test]
    fn no_certificates_is_an_error() {
        assert!(matches!(
            SniResolver::new(Vec::new()),
            Err(TlsError::NoCertificates)
        ));
    }
}
