//! What a verified client certificate says, as the headers sent to backends carry it.
//!
//! [`ClientCert::from_der`] reads the leaf certificate once per connection (after the
//! handshake, or a resumption that restored it) and keeps three ASCII strings in one
//! allocation:
//! - the subject as an RFC 4514 string (`CN=client,O=Example,C=DE`: the last RDN first; `CN`,
//!   `L`, `ST`, `O`, `OU`, `C`, `STREET`, `DC`, `UID`, and `emailAddress` as OpenSSL writes
//!   it; any other attribute type as its dotted OID with the value as `#` and the hex of its
//!   DER; multi-valued RDNs joined with `+`);
//! - the subjectAltNames, separated by `, `, each with OpenSSL's prefix: `DNS:`, `email:`,
//!   `URI:`, `IP:` (other kinds are left out);
//! - the SHA-256 fingerprint of the certificate's DER, 64 lowercase hex digits.
//!
//! Invariants: every byte of the three strings is visible ASCII or a space, so each is a valid
//! header field value and no certificate can inject a header: in the subject, anything else (and
//! every non-ASCII byte of UTF-8) is escaped `\XX` as RFC 4514 allows; in the SANs, a byte
//! outside visible ASCII, a comma or a space is written `%XX`. A certificate x509-parser cannot
//! read (rustls' verifier accepted it) gives an empty subject and SAN list, never an error: the
//! fingerprint is always there.

use std::fmt::Write as _;
use std::net::IpAddr;

use aws_lc_rs::digest;
use x509_parser::asn1_rs::{Any, Tag, ToDer};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::X509Name;

/// A verified client certificate's subject, SANs and fingerprint, in one allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// Subject, then SANs, then fingerprint.
    text: Box<str>,
    /// Where the subject and the SANs end in `text`.
    ends: [u32; 2],
}

/// RFC 4514 §3 short names, and `emailAddress` (OpenSSL's), by dotted OID.
const SHORT_NAMES: [(&str, &str); 10] = [
    ("2.5.4.3", "CN"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.6", "C"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
    ("1.2.840.113549.1.9.1", "emailAddress"),
];

impl ClientCert {
    /// Reads the leaf certificate `der`.
    pub fn from_der(der: &[u8]) -> Self {
        let mut text = String::with_capacity(256);
        if let Ok((_, cert)) = X509Certificate::from_der(der) {
            write_subject(&mut text, cert.subject());
            let subject_end = text.len();
            write_sans(&mut text, &cert);
            return Self::finish(text, subject_end, der);
        }
        Self::finish(text, 0, der)
    }

    fn finish(mut text: String, subject_end: usize, der: &[u8]) -> Self {
        let san_end = text.len();
        for byte in digest::digest(&digest::SHA256, der).as_ref() {
            let _ = write!(text, "{byte:02x}");
        }
        // Certificates are far below 4 GiB; clamp rather than panic all the same.
        let end = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Self {
            text: text.into_boxed_str(),
            ends: [end(subject_end), end(san_end)],
        }
    }

    /// The subject, RFC 4514 (empty when the certificate's subject is).
    pub fn subject(&self) -> &str {
        &self.text[..self.ends[0] as usize]
    }

    /// The subjectAltNames, comma-separated (empty when there are none).
    pub fn san(&self) -> &str {
        &self.text[self.ends[0] as usize..self.ends[1] as usize]
    }

    /// SHA-256 of the certificate's DER, lowercase hex.
    pub fn fingerprint(&self) -> &str {
        &self.text[self.ends[1] as usize..]
    }

    /// Bytes of the three values together (for sizing the request head).
    pub fn len(&self) -> usize {
        self.text.len()
    }

    /// Never true: the fingerprint is always there.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
}

fn write_subject(out: &mut String, name: &X509Name<'_>) {
    let rdns: Vec<_> = name.iter().collect();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, attr) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let oid = attr.attr_type().to_id_string();
            match SHORT_NAMES.iter().find(|(dotted, _)| *dotted == oid) {
                Some((_, short)) => {
                    out.push_str(short);
                    out.push('=');
                    write_value(out, attr.attr_value());
                }
                // RFC 4514 §2.4: a type in dotted form has its value as hex BER.
                None => {
                    out.push_str(&oid);
                    out.push('=');
                    write_hex_value(out, attr.attr_value());
                }
            }
        }
    }
}

/// An attribute value of a named type: a string escaped as RFC 4514 §2.4 says (and every byte
/// that is not printable ASCII as `\XX`), anything else `#` and the hex of its DER.
fn write_value(out: &mut String, value: &Any<'_>) {
    let bytes: Vec<u8>;
    let text: &[u8] = match value.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::NumericString
        | Tag::VisibleString
        | Tag::T61String => value.data,
        Tag::BmpString if value.data.len().is_multiple_of(2) => {
            let units = value
                .data
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
            bytes = char::decode_utf16(units)
                .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect::<String>()
                .into_bytes();
            &bytes
        }
        _ => return write_hex_value(out, value),
    };
    let last = text.len().saturating_sub(1);
    for (i, &byte) in text.iter().enumerate() {
        let special = matches!(byte, b'"' | b'+' | b',' | b';' | b'<' | b'>' | b'\\')
            || (i == 0 && matches!(byte, b'#' | b' '))
            || (i == last && byte == b' ');
        if special {
            out.push('\\');
            out.push(char::from(byte));
        } else if (0x21..=0x7e).contains(&byte) || byte == b' ' {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "\\{byte:02X}");
        }
    }
}

/// `#` and the hex of the value's DER.
fn write_hex_value(out: &mut String, value: &Any<'_>) {
    out.push('#');
    for byte in value.to_der_vec().unwrap_or_default() {
        let _ = write!(out, "{byte:02x}");
    }
}

fn write_sans(out: &mut String, cert: &X509Certificate<'_>) {
    let Ok(Some(sans)) = cert.subject_alternative_name() else {
        return;
    };
    let mut first = true;
    let mut ip_text = String::new();
    for name in &sans.value.general_names {
        let (prefix, value): (&str, &str) = match name {
            GeneralName::DNSName(v) => ("DNS:", v),
            GeneralName::RFC822Name(v) => ("email:", v),
            GeneralName::URI(v) => ("URI:", v),
            GeneralName::IPAddress(raw) => {
                let ip = match raw.len() {
                    4 => <[u8; 4]>::try_from(*raw).map(IpAddr::from).ok(),
                    16 => <[u8; 16]>::try_from(*raw).map(IpAddr::from).ok(),
                    _ => None,
                };
                let Some(ip) = ip else { continue };
                ip_text.clear();
                let _ = write!(ip_text, "{ip}");
                ("IP:", &ip_text)
            }
            _ => continue,
        };
        if !first {
            out.push_str(", ");
        }
        first = false;
        out.push_str(prefix);
        for &byte in value.as_bytes() {
            if (0x21..=0x7e).contains(&byte) && byte != b',' {
                out.push(char::from(byte));
            } else {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{
        CertificateParams, DistinguishedName, DnType, KeyPair, SanType, string::Ia5String,
    };

    use super::*;

    fn cert(subject: &[(DnType, &str)], sans: Vec<SanType>) -> Vec<u8> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        for (kind, value) in subject {
            dn.push(kind.clone(), *value);
        }
        params.distinguished_name = dn;
        params.subject_alt_names = sans;
        let key = KeyPair::generate().expect("key");
        params.self_signed(&key).expect("cert").der().to_vec()
    }

    fn ia5(s: &str) -> Ia5String {
        Ia5String::try_from(s).expect("ia5")
    }

    #[test]
    fn subject_san_and_fingerprint() {
        let der = cert(
            &[
                (DnType::CountryName, "DE"),
                (DnType::OrganizationName, "Example, Inc."),
                (DnType::CommonName, "client #1"),
            ],
            vec![
                SanType::DnsName(ia5("client.example.com")),
                SanType::Rfc822Name(ia5("ops@example.com")),
                SanType::URI(ia5("spiffe://example.com/a,b")),
                SanType::IpAddress("10.1.2.3".parse().expect("ip")),
                SanType::IpAddress("::1".parse().expect("ip")),
            ],
        );
        let c = ClientCert::from_der(&der);
        assert_eq!(c.subject(), r"CN=client #1,O=Example\, Inc.,C=DE");
        assert_eq!(
            c.san(),
            "DNS:client.example.com, email:ops@example.com, URI:spiffe://example.com/a%2Cb, \
             IP:10.1.2.3, IP:::1"
        );
        let mut hex = String::new();
        for b in digest::digest(&digest::SHA256, &der).as_ref() {
            let _ = write!(hex, "{b:02x}");
        }
        assert_eq!(c.fingerprint(), hex);
        assert_eq!(c.len(), c.subject().len() + c.san().len() + 64);
    }

    #[test]
    fn escapes_keep_values_printable() {
        let der = cert(
            &[(DnType::CommonName, " a\r\nX-Evil: 1\u{e9}+\\ ")],
            vec![SanType::DnsName(ia5("a b\t.example"))],
        );
        let c = ClientCert::from_der(&der);
        assert_eq!(c.subject(), r"CN=\ a\0D\0AX-Evil: 1\C3\A9\+\\\ ");
        assert_eq!(c.san(), "DNS:a%20b%09.example");
        for value in [c.subject(), c.san(), c.fingerprint()] {
            assert!(
                value
                    .bytes()
                    .all(|b| b == b' ' || (0x21..=0x7e).contains(&b))
            );
        }
    }

    #[test]
    fn other_attributes_and_no_sans() {
        let der = cert(
            &[
                (DnType::CustomDnType(vec![2, 5, 4, 5]), "SN-42"),
                (DnType::CommonName, "#lead"),
            ],
            Vec::new(),
        );
        let c = ClientCert::from_der(&der);
        // serialNumber (2.5.4.5) has no RFC 4514 short name: dotted OID and hex DER value.
        assert_eq!(c.subject(), r"CN=\#lead,2.5.4.5=#0c05534e2d3432");
        assert_eq!(c.san(), "");
    }

    #[test]
    fn unreadable_certificate_keeps_the_fingerprint() {
        let c = ClientCert::from_der(b"not a certificate");
        assert_eq!((c.subject(), c.san()), ("", ""));
        assert_eq!(c.fingerprint().len(), 64);
    }
}
