//! The server name (SNI) a client asks for, read from the raw bytes of its first ClientHello.
//!
//! rustls' unbuffered server connection keeps the SNI it validated but does not expose it, so
//! [`super::engine::TlsEngine`] reads it here, from the plaintext ClientHello records, before
//! rustls sees them (rustls may rearrange the bytes in place while it joins fragments).
//!
//! The rules are rustls 0.23's (`ServerNamePayload` and `process_client_hello`), so the name
//! returned is the one rustls chose the certificate for:
//! - only a `host_name` entry counts; a second `host_name`, an empty list, a list with no
//!   `host_name` or a name that is not a valid DNS name makes rustls fail the handshake, and
//!   gives `None` here;
//! - an IP address literal is treated as no SNI (RFC 6066 §3 forbids it; rustls ignores it);
//! - the name is lower-cased (DNS names compare case-insensitively, RFC 4343).
//!
//! Anything that is not a well-formed ClientHello gives `None`: rustls then rejects the
//! connection itself with the right alert. A record that is not a handshake record, or that
//! rustls refuses at its header (`read_opaque_message_header`: a version other than `3.x`, an
//! empty record, a length of 2^14 + 2048 or more), gives `None` as soon as the header byte that
//! tells has arrived, without waiting for the rest of the header or the payload: the answer is
//! [`Sni::Incomplete`] only while the bytes can still start a ClientHello rustls accepts.
//! Nothing here allocates unless the ClientHello is split over several records or a name is
//! found.

use rustls::pki_types::ServerName;

/// Largest handshake message rustls accepts (its `MAX_HANDSHAKE_SIZE`).
const MAX_HANDSHAKE: usize = 0xffff;
/// TLS record header: content type, legacy version, length (RFC 8446 §5.1).
const RECORD_HEADER: usize = 5;
/// Largest record length rustls reads (it refuses `2^14 + 2048` or more, its `MAX_PAYLOAD`).
const MAX_RECORD_PAYLOAD: usize = 16_384 + 2048 - 1;
/// Content type of handshake records.
const HANDSHAKE: u8 = 22;
/// Handshake message type of a ClientHello.
const CLIENT_HELLO: u8 = 1;
/// Extension type of server_name (RFC 6066 §3).
const SERVER_NAME: u16 = 0;
/// `NameType` of a host name (RFC 6066 §3).
const HOST_NAME: u8 = 0;

/// What the first bytes of a connection say about the client's server name.
#[derive(Debug, PartialEq, Eq)]
pub enum Sni {
    /// The ClientHello is not complete yet: call again with more bytes.
    Incomplete,
    /// The ClientHello is complete (or the bytes are not one): the name, if a valid one was sent.
    Done(Option<String>),
}

/// Reads the SNI from the records at the start of a connection (`records`: every byte the client
/// sent so far, from the first).
pub fn client_hello_sni(records: &[u8]) -> Sni {
    // The handshake bytes carried by the complete records received so far.
    let mut first: &[u8] = &[];
    let mut joined: Option<Vec<u8>> = None;
    let mut rest = records;
    loop {
        let hs = joined.as_deref().unwrap_or(first);
        if let Some(msg) = handshake_message(hs) {
            return match msg {
                Some(body) => Sni::Done(parse_client_hello(body).flatten()),
                None => Sni::Done(None),
            };
        }
        // Not a handshake record, or one rustls refuses before reading its payload: no waiting
        // for bytes of a connection that fails. Decided as soon as the byte that tells is here.
        if rest.first().is_some_and(|&typ| typ != HANDSHAKE)
            || rest.get(1).is_some_and(|&major| major != 3)
        {
            return Sni::Done(None);
        }
        let Some(header) = rest.get(..RECORD_HEADER) else {
            return Sni::Incomplete;
        };
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if !(1..=MAX_RECORD_PAYLOAD).contains(&len) {
            return Sni::Done(None);
        }
        let Some(payload) = rest.get(RECORD_HEADER..RECORD_HEADER + len) else {
            return Sni::Incomplete;
        };
        rest = &rest[RECORD_HEADER + len..];
        match joined.as_mut() {
            Some(buf) => buf.extend_from_slice(payload),
            None if first.is_empty() => first = payload,
            None => {
                let mut buf = Vec::with_capacity(first.len() + payload.len());
                buf.extend_from_slice(first);
                buf.extend_from_slice(payload);
                joined = Some(buf);
            }
        }
    }
}

/// The ClientHello body once `hs` holds the whole first handshake message: `Some(Some(body))`;
/// `Some(None)` when the bytes cannot be a ClientHello; `None` when more bytes are needed.
fn handshake_message(hs: &[u8]) -> Option<Option<&[u8]>> {
    let header = hs.get(..4)?;
    if header[0] != CLIENT_HELLO {
        return Some(None);
    }
    let len = usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
    if len > MAX_HANDSHAKE {
        return Some(None);
    }
    hs.get(4..4 + len).map(Some)
}

/// The server name in a ClientHello body (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2): `None` when
/// malformed, `Some(None)` when it carries no usable name.
fn parse_client_hello(body: &[u8]) -> Option<Option<String>> {
    let mut r = Reader(body);
    r.take(2)?; // legacy_version
    r.take(32)?; // random
    r.vec_u8()?; // legacy_session_id
    r.vec_u16()?; // cipher_suites
    r.vec_u8()?; // legacy_compression_methods
    if r.0.is_empty() {
        // A TLS 1.2 ClientHello may end here: no extensions, so no SNI.
        return Some(None);
    }
    let mut exts = Reader(r.vec_u16()?);
    while !exts.0.is_empty() {
        let typ = exts.u16()?;
        let data = exts.vec_u16()?;
        if typ == SERVER_NAME {
            return Some(server_name(data));
        }
    }
    Some(None)
}

/// The one host name of a server_name extension, if valid (rustls' `ServerNamePayload::read`).
fn server_name(data: &[u8]) -> Option<String> {
    let mut list = Reader(Reader(data).vec_u16()?);
    let mut found = None;
    while !list.0.is_empty() {
        if list.u8()? != HOST_NAME {
            // An unknown name type has an unknown encoding: nothing after it can be read.
            break;
        }
        let name = list.vec_u16()?;
        if name.is_empty() || found.is_some() {
            // RFC 6066 §3: at most one name per type; rustls fails the handshake.
            return None;
        }
        found = Some(name);
    }
    match ServerName::try_from(found?) {
        Ok(ServerName::DnsName(name)) => Some(name.to_lowercase_owned().as_ref().to_owned()),
        // An IP address, or not a name: no SNI, or a failed handshake.
        _ => None,
    }
}

/// A cursor over a byte string, in TLS' big-endian length-prefixed encoding.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }

    fn vec_u8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    fn vec_u16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello body with the given extensions block (already encoded), or none.
    fn hello_body(extensions: Option<&[u8]>) -> Vec<u8> {
        let mut b = vec![0x03, 0x03];
        b.extend_from_slice(&[7; 32]);
        b.push(0); // session id
        b.extend_from_slice(&[0x00, 0x02, 0x13, 0x01]); // one cipher suite
        b.extend_from_slice(&[0x01, 0x00]); // null compression
        if let Some(ext) = extensions {
            b.extend_from_slice(&(ext.len() as u16).to_be_bytes());
            b.extend_from_slice(ext);
        }
        b
    }

    fn ext(typ: u16, data: &[u8]) -> Vec<u8> {
        let mut e = typ.to_be_bytes().to_vec();
        e.extend_from_slice(&(data.len() as u16).to_be_bytes());
        e.extend_from_slice(data);
        e
    }

    /// A server_name extension listing `(name_type, name)` entries.
    fn sni_ext(entries: &[(u8, &[u8])]) -> Vec<u8> {
        let mut list = Vec::new();
        for (typ, name) in entries {
            list.push(*typ);
            list.extend_from_slice(&(name.len() as u16).to_be_bytes());
            list.extend_from_slice(name);
        }
        let mut data = (list.len() as u16).to_be_bytes().to_vec();
        data.extend_from_slice(&list);
        ext(SERVER_NAME, &data)
    }

    fn handshake(body: &[u8]) -> Vec<u8> {
        let n = body.len();
        let mut hs = vec![CLIENT_HELLO, (n >> 16) as u8, (n >> 8) as u8, n as u8];
        hs.extend_from_slice(body);
        hs
    }

    /// `hs` split into handshake records of at most `chunk` payload bytes.
    fn records(hs: &[u8], chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for part in hs.chunks(chunk) {
            out.extend_from_slice(&[HANDSHAKE, 0x03, 0x01]);
            out.extend_from_slice(&(part.len() as u16).to_be_bytes());
            out.extend_from_slice(part);
        }
        out
    }

    fn sni_of(extensions: &[u8]) -> Sni {
        client_hello_sni(&records(&handshake(&hello_body(Some(extensions))), 16384))
    }

    fn done(name: &str) -> Sni {
        Sni::Done(Some(name.to_owned()))
    }

    #[test]
    fn reads_the_host_name_lower_cased() {
        let mut exts = ext(10, &[0, 2, 0, 29]);
        exts.extend(sni_ext(&[(HOST_NAME, b"WWW.Example.COM")]));
        exts.extend(ext(
            16,
            &[0, 9, 8, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1'],
        ));
        assert_eq!(sni_of(&exts), done("www.example.com"));
    }

    #[test]
    fn no_extension_or_no_extensions_is_no_sni() {
        assert_eq!(sni_of(&ext(10, &[0, 2, 0, 29])), Sni::Done(None));
        let bare = records(&handshake(&hello_body(None)), 16384);
        assert_eq!(client_hello_sni(&bare), Sni::Done(None));
    }

    #[test]
    fn ip_literals_and_invalid_names_are_no_sni() {
        assert_eq!(
            sni_of(&sni_ext(&[(HOST_NAME, b"127.0.0.1")])),
            Sni::Done(None)
        );
        assert_eq!(
            sni_of(&sni_ext(&[(HOST_NAME, b"bad name")])),
            Sni::Done(None)
        );
        assert_eq!(sni_of(&sni_ext(&[(HOST_NAME, b"")])), Sni::Done(None));
        let two = sni_ext(&[(HOST_NAME, b"a.test"), (HOST_NAME, b"b.test")]);
        assert_eq!(sni_of(&two), Sni::Done(None));
    }

    #[test]
    fn an_unknown_name_type_ends_the_list() {
        let exts = sni_ext(&[(HOST_NAME, b"a.test"), (7, b"whatever")]);
        assert_eq!(sni_of(&exts), done("a.test"));
        assert_eq!(sni_of(&sni_ext(&[(7, b"a.test")])), Sni::Done(None));
    }

    #[test]
    fn waits_for_the_whole_hello_across_records_and_reads() {
        let hs = handshake(&hello_body(Some(&sni_ext(&[(HOST_NAME, b"split.test")]))));
        let recs = records(&hs, 7);
        for cut in 0..recs.len() {
            assert_eq!(
                client_hello_sni(&recs[..cut]),
                Sni::Incomplete,
                "cut at {cut}"
            );
        }
        assert_eq!(client_hello_sni(&recs), done("split.test"));
        // Bytes after the hello (a second flight) do not matter.
        let mut more = recs.clone();
        more.extend_from_slice(&[23, 3, 3, 0, 1, 0]);
        assert_eq!(client_hello_sni(&more), done("split.test"));
    }

    /// rustls' own reading of a connection's first bytes: `Ok(true)` when it accepts the
    /// ClientHello, `Ok(false)` while it waits, the error when it refuses them.
    fn rustls_reads(bytes: &[u8]) -> Result<bool, rustls::Error> {
        let mut acceptor = rustls::server::Acceptor::default();
        let mut rest = bytes;
        while !rest.is_empty() {
            acceptor.read_tls(&mut rest).expect("read");
        }
        match acceptor.accept() {
            Ok(accepted) => Ok(accepted.is_some()),
            Err((error, _)) => Err(error),
        }
    }

    /// Found by the `client_hello` fuzz target (fuzz/regressions/client_hello/): a record
    /// rustls refuses at its header was waited for, up to 64 KiB of it, or forever for empty
    /// records (or the rest of a 5-byte header after a first byte that is not a handshake
    /// record's), holding the bytes of a connection rustls refuses at once.
    #[test]
    fn a_record_rustls_refuses_at_its_header_is_not_waited_for() {
        use rustls::{Error, InvalidMessage};

        let mut exts = ext(13, &[0, 2, 4, 3]); // signature_algorithms, which rustls requires
        exts.extend(sni_ext(&[(HOST_NAME, b"a.test")]));
        let hs = handshake(&hello_body(Some(&exts)));
        let mut after_a_fragment = records(&hs[..10], 100);
        after_a_fragment.extend_from_slice(&[HANDSHAKE, 3, 1, 0, 0]);
        let refused: [(&[u8], InvalidMessage); 6] = [
            (
                &[HANDSHAKE, 3, 1, 0xff, 0xff, CLIENT_HELLO],
                InvalidMessage::MessageTooLarge,
            ),
            (
                &[HANDSHAKE, 3, 3, 0x48, 0x00],
                InvalidMessage::MessageTooLarge,
            ),
            (
                &[HANDSHAKE, 3, 1, 0, 0].repeat(20),
                InvalidMessage::InvalidEmptyPayload,
            ),
            (&after_a_fragment, InvalidMessage::InvalidEmptyPayload),
            (
                &[HANDSHAKE, 2, 0, 0, 4, CLIENT_HELLO, 0, 0, 40],
                InvalidMessage::UnknownProtocolVersion,
            ),
            (
                &[HANDSHAKE, 4, 1, 0, 4, CLIENT_HELLO, 0, 0, 40],
                InvalidMessage::UnknownProtocolVersion,
            ),
        ];
        for (bytes, why) in refused {
            assert_eq!(rustls_reads(bytes), Err(Error::InvalidMessage(why)));
            assert_eq!(client_hello_sni(bytes), Sni::Done(None), "{bytes:?}");
        }
        // The first byte tells (rustls' InvalidContentType); so does the second.
        assert_eq!(
            rustls_reads(&[0x82]),
            Err(Error::InvalidMessage(InvalidMessage::InvalidContentType))
        );
        assert_eq!(client_hello_sni(&[0x82]), Sni::Done(None));
        assert_eq!(client_hello_sni(b"G"), Sni::Done(None));
        assert_eq!(client_hello_sni(&[HANDSHAKE, 2]), Sni::Done(None));
        assert_eq!(client_hello_sni(&[HANDSHAKE, 3, 1, 0]), Sni::Incomplete);
        // The longest record rustls reads is still waited for, and any version 3.x is read.
        let longest = [HANDSHAKE, 3, 1, 0x47, 0xff, CLIENT_HELLO];
        assert_eq!(rustls_reads(&longest), Ok(false));
        assert_eq!(client_hello_sni(&longest), Sni::Incomplete);
        for minor in [0, 1, 4, 0xff] {
            let mut recs = records(&hs, 100);
            recs[2] = minor;
            assert_eq!(rustls_reads(&recs), Ok(true), "version 3.{minor}");
            assert_eq!(client_hello_sni(&recs), done("a.test"), "version 3.{minor}");
        }
    }

    #[test]
    fn anything_else_is_left_to_rustls() {
        // Not a handshake record (HTTP on the TLS port).
        assert_eq!(client_hello_sni(b"GET / HTTP/1.1\r\n"), Sni::Done(None));
        // A handshake message that is not a ClientHello.
        let mut hs = handshake(&hello_body(None));
        hs[0] = 2;
        assert_eq!(client_hello_sni(&records(&hs, 100)), Sni::Done(None));
        // A length past what rustls accepts.
        let huge = [HANDSHAKE, 3, 1, 0, 4, CLIENT_HELLO, 1, 0, 0];
        assert_eq!(client_hello_sni(&huge), Sni::Done(None));
        // A truncated body inside a complete message.
        let body = hello_body(Some(&sni_ext(&[(HOST_NAME, b"a.test")])));
        let cut = handshake(&body[..40]);
        assert_eq!(client_hello_sni(&records(&cut, 100)), Sni::Done(None));
    }
}
