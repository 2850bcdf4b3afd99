//! The ClientHello parser's invariants ([`check_client_hello`]): the server name is the one
//! rustls reads, whatever the record boundaries and however the bytes arrive, and the bytes
//! kept while waiting for it stay bounded.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use rustls::ServerConfig;
use rustls::pki_types::ServerName;
use rustls::server::Acceptor;

use crate::tls::client_hello::{Sni, client_hello_sni};
use crate::tls::engine::MAX_PENDING;
use crate::tls::{TlsEngine, TlsOptions};

use super::cut_points;

/// Bytes of a TLS record header.
const RECORD_HEADER: usize = 5;
/// Content type of handshake records.
const HANDSHAKE_RECORD: u8 = 22;
/// Largest record payload rustls reads: it refuses a length of `16_384 + 2048` or more.
const MAX_RECORD_PAYLOAD: usize = 16_384 + 2048 - 1;
/// Largest handshake message rustls accepts.
const MAX_HANDSHAKE: usize = 0xffff;
/// Most bytes that can still be the start of a ClientHello rustls accepts: every handshake byte
/// but the last in a record of its own, then a largest record one byte short. The parser never
/// answers "incomplete" for more (the engine stops earlier, at [`MAX_PENDING`]).
const MAX_WAITING: usize =
    (4 + MAX_HANDSHAKE - 1) * (RECORD_HEADER + 1) + RECORD_HEADER + MAX_RECORD_PAYLOAD - 1;

/// The complete records at the start of a connection, and the bytes of an incomplete last one.
struct Records<'a> {
    /// Content type, legacy version and payload of each complete record.
    complete: Vec<(u8, [u8; 2], &'a [u8])>,
    /// What follows the last complete record.
    partial: &'a [u8],
}

fn split_records(mut data: &[u8]) -> Records<'_> {
    let mut complete = Vec::new();
    while let Some(header) = data.get(..RECORD_HEADER) {
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        let Some(payload) = data.get(RECORD_HEADER..RECORD_HEADER + len) else {
            break;
        };
        complete.push((header[0], [header[1], header[2]], payload));
        data = &data[RECORD_HEADER + len..];
    }
    Records {
        complete,
        partial: data,
    }
}

/// Whether rustls reads past a record header before the handshake: a handshake record, version
/// `3.x`, a length neither zero nor too large (its `read_opaque_message_header`).
fn record_rustls_reads(typ: u8, version: [u8; 2], len: usize) -> bool {
    typ == HANDSHAKE_RECORD && version[0] == 3 && (1..=MAX_RECORD_PAYLOAD).contains(&len)
}

/// Cut points (increasing, the last one `len`) of the bytes of a connection arriving in pieces
/// of pseudo-random sizes drawn from `seed`: a few dozen pieces at most.
fn arrival_cuts(len: usize, seed: u8) -> Vec<usize> {
    let mut state = u32::from(seed) | 0x100;
    let most = (len / 32).max(8);
    let mut cuts = Vec::new();
    let mut at = 0;
    while at < len {
        // xorshift32
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        at = (at + 1 + state as usize % most).min(len);
        cuts.push(at);
    }
    cuts
}

/// Payload bytes per record when the handshake bytes are framed again: 1 to 128, or 128 to
/// 16384 by powers of two.
fn fragment_size(selector: u8) -> usize {
    match selector {
        0..=127 => 1 + usize::from(selector),
        _ => 128 << (selector & 7),
    }
}

/// The ClientHello server name (`tls::client_hello`, read by [`TlsEngine`] before rustls sees
/// the bytes). Input: a byte choosing how the records arrive, a byte choosing a second
/// framing, then the bytes a client sends first. Checks:
/// - the answer is rustls' own: when rustls' `Acceptor` accepts the ClientHello, the parser
///   gives the name rustls chose the certificate for; when rustls refuses the bytes, the parser
///   does not wait for more; while rustls waits, the parser names no name;
/// - a name is non-empty, lower case, a valid DNS name ([`ServerName`]), never an IP literal;
/// - the bytes arriving in pieces (every prefix the engine would hold) give "incomplete" until
///   the whole answer, then that answer; the same handshake bytes framed in other records give
///   the same answer;
/// - "incomplete" only while every record so far is one rustls reads and the handshake
///   message is a ClientHello not yet complete, so what is held while waiting stays under
///   [`MAX_WAITING`] bytes;
/// - [`TlsEngine`], fed the bytes whole and in those pieces, reports the same name, sends
///   nothing before the ClientHello is complete, and fails (or not) the same way both times.
pub fn check_client_hello(data: &[u8]) {
    let [arrival, framing, records @ ..] = data else {
        return;
    };
    let whole = client_hello_sni(records);
    let name = match &whole {
        Sni::Done(Some(name)) => {
            check_server_name(name);
            Some(name.as_str())
        }
        Sni::Done(None) => None,
        Sni::Incomplete => {
            check_waiting(records);
            None
        }
    };

    // In pieces: every prefix the engine holds (and a spread of others) answers "incomplete"
    // until the whole answer, then that answer.
    let cuts = arrival_cuts(records.len(), *arrival);
    let mut prefixes: Vec<usize> = cuts
        .iter()
        .copied()
        .chain(cut_points(records.len()))
        .collect();
    prefixes.sort_unstable();
    prefixes.dedup();
    let mut answered_at = None;
    for cut in prefixes {
        match client_hello_sni(&records[..cut]) {
            Sni::Incomplete => assert!(
                answered_at.is_none(),
                "the first {cut} bytes are incomplete, the first {answered_at:?} were not"
            ),
            part => {
                assert_eq!(part, whole, "the first {cut} bytes answer otherwise");
                answered_at.get_or_insert(cut);
            }
        }
    }

    // The same handshake bytes in other records.
    if let Some(again) = reframed(records, fragment_size(*framing)) {
        assert_eq!(
            client_hello_sni(&again),
            whole,
            "records of {} bytes answer otherwise",
            fragment_size(*framing)
        );
    }

    // rustls' reading of the same bytes.
    match rustls_reading(records) {
        Some(Ok(Some(rustls_name))) => assert_eq!(
            name,
            rustls_name.as_deref(),
            "rustls chose the certificate for another name ({whole:?})"
        ),
        Some(Ok(None)) => assert!(
            name.is_none(),
            "a name ({name:?}) while rustls still waits for the ClientHello"
        ),
        Some(Err(error)) => assert!(
            whole != Sni::Incomplete,
            "waits for more bytes after rustls refused them: {error}"
        ),
        None => {}
    }

    // The engine, fed the bytes whole and in pieces.
    if records.len() <= MAX_PENDING {
        let one = engine_reading(records, &[records.len()], &whole);
        let pieces = engine_reading(records, &cuts, &whole);
        assert_eq!(
            one, pieces,
            "the engine fails one way whole, another in pieces"
        );
    }
}

/// A name the parser returns: what rustls would accept and compare against certificates.
fn check_server_name(name: &str) {
    assert!(!name.is_empty(), "an empty name");
    assert!(
        !name.bytes().any(|b| b.is_ascii_uppercase()),
        "{name:?} is not lower-cased"
    );
    match ServerName::try_from(name) {
        Ok(ServerName::DnsName(_)) => {}
        other => panic!("{name:?} is not a DNS name: {other:?}"),
    }
    assert!(
        name.parse::<IpAddr>().is_err(),
        "{name:?} is an IP address literal"
    );
}

/// The parser waits: every record so far is one rustls reads, the handshake message is a
/// ClientHello within rustls' limit and not complete yet; so the bytes held are bounded.
fn check_waiting(records: &[u8]) {
    let split = split_records(records);
    let mut handshake = Vec::new();
    for &(typ, version, payload) in &split.complete {
        assert!(
            record_rustls_reads(typ, version, payload.len()),
            "waits after a record rustls refuses (type {typ}, version {version:?}, {} bytes)",
            payload.len()
        );
        handshake.extend_from_slice(payload);
    }
    // rustls refuses a record by its first byte alone (content type), and by its version.
    if let Some(&typ) = split.partial.first() {
        assert_eq!(typ, HANDSHAKE_RECORD, "waits after a byte rustls refuses");
    }
    if let Some(&major) = split.partial.get(1) {
        assert_eq!(major, 3, "waits after a version rustls refuses");
    }
    if let Some(header) = split.partial.get(..RECORD_HEADER) {
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        assert!(
            record_rustls_reads(header[0], [header[1], header[2]], len),
            "waits for a record rustls refuses (type {}, version {:?}, {len} bytes)",
            header[0],
            &header[1..3]
        );
    }
    if let Some(header) = handshake.get(..4) {
        let len =
            usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
        assert_eq!(
            header[0], 1,
            "waits for a handshake message that is not a ClientHello"
        );
        assert!(
            len <= MAX_HANDSHAKE,
            "waits for a {len}-byte handshake message"
        );
        assert!(
            handshake.len() < 4 + len,
            "waits although the ClientHello is complete"
        );
    }
    assert!(records.len() <= MAX_WAITING);
}

/// `records` framed again in records of `size` payload bytes, when they are all complete
/// records rustls reads (nothing else would carry the same handshake bytes).
fn reframed(records: &[u8], size: usize) -> Option<Vec<u8>> {
    let split = split_records(records);
    let &(_, version, _) = split.complete.first()?;
    if !split.partial.is_empty()
        || !split
            .complete
            .iter()
            .all(|&(typ, version, payload)| record_rustls_reads(typ, version, payload.len()))
    {
        return None;
    }
    let handshake: Vec<u8> = split
        .complete
        .iter()
        .flat_map(|&(_, _, payload)| payload)
        .copied()
        .collect();
    let mut out = Vec::with_capacity(handshake.len() + handshake.len() / size * RECORD_HEADER);
    for part in handshake.chunks(size) {
        out.extend_from_slice(&[HANDSHAKE_RECORD, version[0], version[1]]);
        out.extend_from_slice(&(part.len() as u16).to_be_bytes());
        out.extend_from_slice(part);
    }
    Some(out)
}

/// rustls' reading of a connection's first bytes (its `Acceptor`, which processes the
/// ClientHello as a server connection does): `Ok(Some(name))` when it accepts the ClientHello,
/// `Ok(None)` while it waits for more, the error when it refuses them; `None` when it cannot
/// buffer them.
pub(super) fn rustls_reading(
    records: &[u8],
) -> Option<Result<Option<Option<String>>, rustls::Error>> {
    let mut acceptor = Acceptor::default();
    let mut rest = records;
    loop {
        if !rest.is_empty() && acceptor.read_tls(&mut rest).is_err() {
            return None;
        }
        match acceptor.accept() {
            Ok(None) if rest.is_empty() => return Some(Ok(None)),
            Ok(None) => {}
            Ok(Some(accepted)) => {
                let name = accepted.client_hello().server_name().map(str::to_owned);
                return Some(Ok(Some(name)));
            }
            Err((error, _alert)) => return Some(Err(error)),
        }
    }
}

/// A server configuration for [`TlsEngine`]: one self-signed ECDSA certificate, no tickets.
fn engine_config() -> &'static Arc<ServerConfig> {
    static CONFIG: OnceLock<Arc<ServerConfig>> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let cert = crate::tls::self_signed(&["fuzz.ringway.test"]).expect("certificate");
        let key = cert.certified_key().expect("key");
        let options = TlsOptions {
            session_cache: 0,
            ..TlsOptions::default()
        };
        crate::tls::server_config(vec![key], &options, None).expect("server config")
    })
}

/// Feeds `records` to a fresh [`TlsEngine`], cut at `cuts`, until it fails; checks the name it
/// reports against the parser's `whole` answer. Returns whether it failed.
fn engine_reading(records: &[u8], cuts: &[usize], whole: &Sni) -> bool {
    let mut engine = TlsEngine::new(engine_config().clone()).expect("engine");
    let mut from = 0;
    let mut failed = false;
    for &cut in cuts {
        let mut piece = records[from..cut].to_vec();
        from = cut;
        if engine.receive(&mut piece, &mut |_: &[u8]| {}).is_err() {
            failed = true;
            break;
        }
        if client_hello_sni(&records[..cut]) == Sni::Incomplete {
            assert!(
                !engine.has_outgoing(),
                "the engine answered before the ClientHello was complete"
            );
        }
    }
    let expected = match whole {
        Sni::Done(Some(name)) => Some(name.as_str()),
        _ => None,
    };
    assert_eq!(
        engine.server_name(),
        expected,
        "the engine reads another name"
    );
    if *whole == Sni::Incomplete {
        assert!(
            !failed,
            "the engine failed before the ClientHello was complete"
        );
        assert!(engine.is_handshaking());
    }
    failed
}

// ---------------------------------------------------------------------------------------------
// Configuration
