//! Certificate chains and private keys: PEM files or DER in, a checked `CertifiedKey` out.
//!
//! Accepted: a PEM chain (leaf first, `CERTIFICATE` blocks; other blocks are skipped, so a
//! combined cert+key file works) and a PEM private key in PKCS#8 (`PRIVATE KEY`), PKCS#1
//! (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`) form, of type ECDSA P-256/P-384, RSA or
//! Ed25519. Encrypted keys are refused with a message saying so. Every error names the file.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::{FileKind, TlsError, provider};

/// Loads a PEM certificate chain and a PEM private key and checks that the key belongs to the
/// leaf certificate. `cert` and `key` may be the same file.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let cert_pem = read(cert, FileKind::Certificate)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| pem_error(cert, FileKind::Certificate, source))?;

    let key_pem = read(key, FileKind::PrivateKey)?;
    let private_key = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(private_key) => private_key,
        Err(pem::Error::NoItemsFound) => {
            return Err(TlsError::NoPrivateKey {
                path: key.to_path_buf(),
                reason: no_key_reason(&key_pem),
            });
        }
        Err(source) => return Err(pem_error(key, FileKind::PrivateKey, source)),
    };

    build(
        chain,
        private_key,
        Some(cert.to_path_buf()),
        Some(key.to_path_buf()),
    )
}

/// Builds a checked `CertifiedKey` from a DER chain (leaf first) and a DER private key.
/// Errors name `<memory>` where [`load_certified_key`] would name a file.
pub fn certified_key_from_der(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<CertifiedKey>, TlsError> {
    build(chain, key, None, None)
}

fn build(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_path: Option<PathBuf>,
    key_path: Option<PathBuf>,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let Some(leaf) = chain.first() else {
        return Err(TlsError::NoCertificate { path: cert_path });
    };
    if let Err(source) = webpki::EndEntityCert::try_from(leaf) {
        return Err(TlsError::BadCertificate {
            path: cert_path,
            source,
        });
    }

    let signing_key = match provider().key_provider.load_private_key(key) {
        Ok(signing_key) => signing_key,
        Err(source) => {
            return Err(TlsError::UnsupportedKey {
                path: key_path,
                source,
            });
        }
    };

    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(Arc::new(certified)),
        // Every key type aws-lc-rs signs with exposes its public key, so `Unknown` means a
        // future key type: accept it, as `CertifiedKey::from_der` does.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            tracing::debug!(
                key = %super::OptPath(&key_path),
                "cannot compare this key type with its certificate; accepting it unchecked"
            );
            Ok(Arc::new(certified))
        }
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::KeyMismatch {
            cert: cert_path,
            key: key_path,
        }),
        // keys_match re-parses the leaf, which parsed above, so this is not expected; report
        // it against the key, whose comparison failed.
        Err(source) => Err(TlsError::UnsupportedKey {
            path: key_path,
            source,
        }),
    }
}

fn read(path: &Path, kind: FileKind) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        kind,
        source,
    })
}

fn pem_error(path: &Path, kind: FileKind, source: pem::Error) -> TlsError {
    match (kind, source) {
        (FileKind::Certificate, pem::Error::NoItemsFound) => TlsError::NoCertificate {
            path: Some(path.to_path_buf()),
        },
        (kind, source) => TlsError::Pem {
            path: path.to_path_buf(),
            kind,
            source,
        },
    }
}

/// Says what a key file without a usable key holds instead.
fn no_key_reason(pem: &[u8]) -> &'static str {
    let has = |label: &[u8]| pem.windows(label.len()).any(|window| window == label);
    if has(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") || has(b"Proc-Type: 4,ENCRYPTED") {
        "the key is encrypted; ringway needs an unencrypted key"
    } else if has(b"-----BEGIN CERTIFICATE-----") {
        "the file holds a certificate, not a private key"
    } else {
        "expected a PEM `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block"
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use rcgen::{
        CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519,
        PKCS_RSA_SHA256, SignatureAlgorithm,
    };

    use super::*;
    use crate::tls::tests::TempDir;

    /// A leaf for `localhost` with a fresh key of `alg`: (certificate PEM, PKCS#8 key PEM, key).
    fn generate(alg: &'static SignatureAlgorithm) -> (String, KeyPair) {
        let key = KeyPair::generate_for(alg).expect("key generation");
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("self-signed");
        (cert.pem(), key)
    }

    fn write(dir: &TempDir, name: &str, contents: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        fs::write(&path, contents).expect("write temp file");
        path
    }

    fn pem_block(label: &str, der: &[u8]) -> String {
        // Base64 without a crate: ringway has none and tests need only this.
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut b64 = String::new();
        for chunk in der.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, byte)| n | (u32::from(*byte) << (16 - 8 * i)));
            for i in 0..4 {
                if i <= chunk.len() {
                    b64.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
                } else {
                    b64.push('=');
                }
            }
        }
        let mut out = format!("-----BEGIN {label}-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).expect("base64 is ascii"));
            out.push('\n');
        }
        out.push_str(&format!("-----END {label}-----\n"));
        out
    }

    /// Minimal DER reader for the tests: (tag, content, rest).
    fn der_next(input: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = input[0];
        let (len, header) = match input[1] {
            short if short < 0x80 => (usize::from(short), 2),
            long => {
                let count = usize::from(long & 0x7f);
                let len = input[2..2 + count]
                    .iter()
                    .fold(0usize, |len, byte| (len << 8) | usize::from(*byte));
                (len, 2 + count)
            }
        };
        (tag, &input[header..header + len], &input[header + len..])
    }

    fn der_encode(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match content.len() {
            len if len < 0x80 => out.push(len as u8),
            len if len < 0x100 => out.extend([0x81, len as u8]),
            len => out.extend([0x82, (len >> 8) as u8, len as u8]),
        }
        out.extend_from_slice(content);
        out
    }

    /// The `privateKey` OCTET STRING of a PKCS#8 `PrivateKeyInfo`: PKCS#1 for RSA, SEC1 for EC.
    fn pkcs8_inner(pkcs8: &[u8]) -> Vec<u8> {
        let (_, info, _) = der_next(pkcs8);
        let (_, _version, rest) = der_next(info);
        let (_, _algorithm, rest) = der_next(rest);
        let (tag, private_key, _) = der_next(rest);
        assert_eq!(tag, 0x04, "privateKey is an OCTET STRING");
        private_key.to_vec()
    }

    /// SEC1 `ECPrivateKey` as openssl writes it: with the `[0]` curve parameters, which PKCS#8
    /// leaves out.
    fn sec1_with_curve(pkcs8: &[u8], curve_oid: &[u8]) -> Vec<u8> {
        let inner = pkcs8_inner(pkcs8);
        let (_, mut fields, _) = der_next(&inner);
        let mut content = Vec::new();
        let mut inserted = false;
        while !fields.is_empty() {
            let (tag, value, rest) = der_next(fields);
            if tag == 0xa0 {
                inserted = true;
            }
            if tag == 0xa1 && !inserted {
                content.extend(der_encode(0xa0, curve_oid));
                inserted = true;
            }
            content.extend(der_encode(tag, value));
            fields = rest;
        }
        if !inserted {
            content.extend(der_encode(0xa0, curve_oid));
        }
        der_encode(0x30, &content)
    }

    fn load_ok(dir: &TempDir, name: &str, cert_pem: &str, key_pem: &str) -> Arc<CertifiedKey> {
        let cert = write(dir, &format!("{name}.pem"), cert_pem.as_bytes());
        let key = write(dir, &format!("{name}.key"), key_pem.as_bytes());
        load_certified_key(&cert, &key).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn loads_every_supported_key_type_in_pkcs8() {
        let dir = TempDir::new("keys-pkcs8");
        for (name, alg) in [
            ("p256", &PKCS_ECDSA_P256_SHA256),
            ("p384", &PKCS_ECDSA_P384_SHA384),
            ("rsa2048", &PKCS_RSA_SHA256),
            ("ed25519", &PKCS_ED25519),
        ] {
            let (cert_pem, key) = generate(alg);
            let certified = load_ok(&dir, name, &cert_pem, &key.serialize_pem());
            assert_eq!(certified.cert.len(), 1, "{name}");
            assert!(certified.keys_match().is_ok(), "{name}");
        }
    }

    #[test]
    fn loads_pkcs1_rsa_and_sec1_ec_keys() {
        let dir = TempDir::new("keys-legacy");
        let (cert_pem, key) = generate(&PKCS_RSA_SHA256);
        let pkcs1 = pem_block("RSA PRIVATE KEY", &pkcs8_inner(&key.serialize_der()));
        let certified = load_ok(&dir, "rsa-pkcs1", &cert_pem, &pkcs1);
        assert_eq!(
            certified.key.algorithm(),
            rustls::SignatureAlgorithm::RSA,
            "PKCS#1 RSA"
        );

        const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
        for (name, alg, oid) in [
            ("p256-sec1", &PKCS_ECDSA_P256_SHA256, P256),
            ("p384-sec1", &PKCS_ECDSA_P384_SHA384, P384),
        ] {
            let (cert_pem, key) = generate(alg);
            let sec1 = pem_block(
                "EC PRIVATE KEY",
                &sec1_with_curve(&key.serialize_der(), oid),
            );
            let certified = load_ok(&dir, name, &cert_pem, &sec1);
            assert_eq!(
                certified.key.algorithm(),
                rustls::SignatureAlgorithm::ECDSA,
                "{name}"
            );
        }
    }

    #[test]
    fn combined_cert_and_key_file_and_chain_order() {
        let dir = TempDir::new("keys-combined");
        let (leaf_pem, key) = generate(&PKCS_ECDSA_P256_SHA256);
        let (other_pem, _) = generate(&PKCS_ECDSA_P256_SHA256);
        // Leaf, then an "intermediate", then the key, all in one file.
        let combined = format!("{leaf_pem}{other_pem}{}", key.serialize_pem());
        let path = write(&dir, "combined.pem", combined.as_bytes());
        let certified = load_certified_key(&path, &path).expect("combined file");
        assert_eq!(certified.cert.len(), 2);
        let leaf = CertificateDer::from_pem_slice(leaf_pem.as_bytes()).expect("leaf");
        assert_eq!(certified.cert[0], leaf, "leaf stays first");
    }

    #[test]
    fn mismatched_key_is_detected() {
        let dir = TempDir::new("keys-mismatch");
        let (cert_pem, _) = generate(&PKCS_ECDSA_P256_SHA256);
        let (_, same_type) = generate(&PKCS_ECDSA_P256_SHA256);
        let (_, other_type) = generate(&PKCS_ED25519);
        let cert = write(&dir, "a.pem", cert_pem.as_bytes());
        for (name, key) in [("same-type", same_type), ("other-type", other_type)] {
            let key_path = write(&dir, &format!("{name}.key"), key.serialize_pem().as_bytes());
            let err = load_certified_key(&cert, &key_path).expect_err(name);
            assert!(
                matches!(&err, TlsError::KeyMismatch { cert: Some(c), key: Some(k) }
                    if *c == cert && *k == key_path),
                "{name}: {err:?}"
            );
            assert_eq!(err.file_kind(), Some(FileKind::PrivateKey));
            let text = err.to_string();
            assert!(text.contains(&key_path.display().to_string()), "{text}");
            assert!(text.contains("does not match"), "{text}");
        }
    }

    #[test]
    fn der_api_checks_the_same_things() {
        let (cert_pem, key) = generate(&PKCS_ECDSA_P384_SHA384);
        let leaf = CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("leaf");
        let der = PrivateKeyDer::Pkcs8(key.serialize_der().into());
        certified_key_from_der(vec![leaf.clone()], der.clone_key()).expect("matching pair");

        let err = certified_key_from_der(Vec::new(), der.clone_key()).expect_err("empty chain");
        assert!(
            matches!(err, TlsError::NoCertificate { path: None }),
            "{err:?}"
        );

        let (_, other) = generate(&PKCS_ECDSA_P384_SHA384);
        let err = certified_key_from_der(
            vec![leaf.clone()],
            PrivateKeyDer::Pkcs8(other.serialize_der().into()),
        )
        .expect_err("mismatch");
        assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err:?}");
        assert!(err.to_string().starts_with("<memory>: "), "{err}");

        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
        let err = certified_key_from_der(vec![garbage], der).expect_err("not x509");
        assert!(matches!(err, TlsError::BadCertificate { .. }), "{err:?}");
    }

    #[test]
    fn file_errors_name_the_file() {
        let dir = TempDir::new("keys-errors");
        let (cert_pem, key) = generate(&PKCS_ECDSA_P256_SHA256);
        let cert = write(&dir, "ok.pem", cert_pem.as_bytes());
        let key_path = write(&dir, "ok.key", key.serialize_pem().as_bytes());
        let missing = dir.path().join("missing.pem");

        let err = load_certified_key(&missing, &key_path).expect_err("missing cert");
        assert!(matches!(
            err,
            TlsError::Read {
                kind: FileKind::Certificate,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            format!("{}: No such file or directory", missing.display())
        );

        let err = load_certified_key(&cert, &missing).expect_err("missing key");
        assert_eq!(err.file_kind(), Some(FileKind::PrivateKey));

        // A certificate where the key should be.
        let err = load_certified_key(&cert, &cert).expect_err("cert as key");
        assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err:?}");
        assert!(err.to_string().contains("holds a certificate"), "{err}");

        let encrypted = write(
            &dir,
            "enc.key",
            pem_block("ENCRYPTED PRIVATE KEY", &[1, 2, 3]).as_bytes(),
        );
        let err = load_certified_key(&cert, &encrypted).expect_err("encrypted");
        assert!(err.to_string().contains("encrypted"), "{err}");

        // A key where the certificate should be.
        let err = load_certified_key(&key_path, &key_path).expect_err("key as cert");
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err:?}");
        assert_eq!(err.file_kind(), Some(FileKind::Certificate));

        let broken = write(&dir, "broken.pem", b"-----BEGIN CERTIFICATE-----\nMIIB\n");
        let err = load_certified_key(&broken, &key_path).expect_err("truncated PEM");
        assert!(matches!(err, TlsError::Pem { .. }), "{err:?}");
        assert!(err.to_string().starts_with(&broken.display().to_string()));

        // Valid PEM, but not a key rustls can sign with (an X25519 key is not a signing key).
        let x25519 = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22,
            0x04, 0x20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
            22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
        ];
        let odd = write(
            &dir,
            "x25519.key",
            pem_block("PRIVATE KEY", &x25519).as_bytes(),
        );
        let err = load_certified_key(&cert, &odd).expect_err("x25519 key");
        assert!(matches!(err, TlsError::UnsupportedKey { .. }), "{err:?}");
    }
}
