//! Body framing: Content-Length, chunked (whole and byte by byte), close-delimited.

use super::*;

fn limits() -> Limits {
    Limits::default()
}

/// Feeds `input` in one call; returns (consumed, done).
fn whole(kind: BodyKind, limits: &Limits, input: &[u8]) -> Result<(usize, bool), BodyError> {
    let mut d = BodyDecoder::new(kind, limits);
    d.advance(input).map(|a| (a.consumed, a.done))
}

/// Feeds `input` one byte at a time, stopping at the end of the body like a caller would:
/// returns (consumed, done), or the error.
fn bytewise(kind: BodyKind, limits: &Limits, input: &[u8]) -> Result<(usize, bool), BodyError> {
    let mut d = BodyDecoder::new(kind, limits);
    let mut consumed = 0;
    for (i, b) in input.iter().enumerate() {
        if d.is_done() {
            break;
        }
        let a = d.advance(std::slice::from_ref(b))?;
        assert!(a.consumed <= 1);
        assert_eq!(a.consumed, 1, "byte {i} not consumed before the end");
        consumed += a.consumed;
    }
    Ok((consumed, d.is_done()))
}

/// Feeds `input` in pieces of `n` bytes, offering each piece's unconsumed bytes again.
fn in_pieces(
    kind: BodyKind,
    limits: &Limits,
    input: &[u8],
    n: usize,
) -> Result<(usize, bool), BodyError> {
    let mut d = BodyDecoder::new(kind, limits);
    let mut at = 0;
    while at < input.len() && !d.is_done() {
        let end = (at + n).min(input.len());
        let a = d.advance(&input[at..end])?;
        assert!(
            a.consumed == end - at || a.done,
            "stopped early without being done"
        );
        at += a.consumed;
    }
    Ok((at, d.is_done()))
}

/// Runs `input` whole, byte by byte and in pieces of 2, 3 and 7, and checks they agree.
#[track_caller]
fn all_ways(kind: BodyKind, limits: &Limits, input: &[u8]) -> Result<(usize, bool), BodyError> {
    let one = whole(kind, limits, input);
    assert_eq!(
        bytewise(kind, limits, input),
        one,
        "byte by byte vs whole: {:?}",
        String::from_utf8_lossy(input)
    );
    for n in [2, 3, 7] {
        assert_eq!(in_pieces(kind, limits, input, n), one, "pieces of {n}");
    }
    one
}

#[track_caller]
fn chunked_ok(input: &[u8]) -> usize {
    match all_ways(BodyKind::Chunked, &limits(), input) {
        Ok((consumed, true)) => consumed,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
    }
}

#[track_caller]
fn chunked_err(input: &[u8]) -> BodyError {
    chunked_err_with(&limits(), input)
}

#[track_caller]
fn chunked_err_with(limits: &Limits, input: &[u8]) -> BodyError {
    match all_ways(BodyKind::Chunked, limits, input) {
        Err(e) => e,
        other => panic!(
            "{:?} was accepted: {other:?}",
            String::from_utf8_lossy(input)
        ),
    }
}

// ---- empty, Content-Length, close-delimited --------------------------------------------------

#[test]
fn empty_and_zero_length_are_done_immediately() {
    for kind in [BodyKind::Empty, BodyKind::Length(0)] {
        let mut d = BodyDecoder::new(kind, &limits());
        assert!(d.is_done());
        assert!(!d.is_close_delimited());
        assert_eq!(
            d.advance(b"GET / HTTP/1.1"),
            Ok(Advance {
                consumed: 0,
                done: true
            })
        );
        assert_eq!(
            d.advance(b""),
            Ok(Advance {
                consumed: 0,
                done: true
            })
        );
    }
}

#[test]
fn content_length_stops_at_the_end() {
    let input = b"helloGET / HTTP/1.1\r\n";
    assert_eq!(
        all_ways(BodyKind::Length(5), &limits(), input),
        Ok((5, true))
    );
    let mut d = BodyDecoder::new(BodyKind::Length(5), &limits());
    assert_eq!(
        d.advance(b"hel"),
        Ok(Advance {
            consumed: 3,
            done: false
        })
    );
    assert_eq!(
        d.advance(b""),
        Ok(Advance {
            consumed: 0,
            done: false
        })
    );
    assert_eq!(
        d.advance(b"loX"),
        Ok(Advance {
            consumed: 2,
            done: true
        })
    );
    assert_eq!(
        d.advance(b"more"),
        Ok(Advance {
            consumed: 0,
            done: true
        })
    );
}

#[test]
fn huge_content_length_counts_down() {
    let mut d = BodyDecoder::new(BodyKind::Length(u64::MAX), &limits());
    assert_eq!(
        d.advance(&[0; 4096]),
        Ok(Advance {
            consumed: 4096,
            done: false
        })
    );
}

#[test]
fn content_length_over_max_body_is_413() {
    let l = Limits {
        max_body: 4,
        ..limits()
    };
    let mut d = BodyDecoder::new(BodyKind::Length(5), &l);
    assert_eq!(d.advance(b""), Err(BodyError::TooLarge));
    assert_eq!(d.advance(b"hello"), Err(BodyError::TooLarge));
    assert_eq!(BodyError::TooLarge.status(), 413);
    assert_eq!(whole(BodyKind::Length(4), &l, b"abcd"), Ok((4, true)));
}

#[test]
fn close_delimited_is_never_done() {
    let mut d = BodyDecoder::new(BodyKind::CloseDelimited, &limits());
    assert!(d.is_close_delimited());
    assert_eq!(
        d.advance(b"abc"),
        Ok(Advance {
            consumed: 3,
            done: false
        })
    );
    assert_eq!(
        d.advance(b"\r\n0\r\n\r\n"),
        Ok(Advance {
            consumed: 7,
            done: false
        })
    );
    assert!(!d.is_done());
    let l = Limits {
        max_body: 5,
        ..limits()
    };
    let mut d = BodyDecoder::new(BodyKind::CloseDelimited, &l);
    assert_eq!(
        d.advance(b"abcde"),
        Ok(Advance {
            consumed: 5,
            done: false
        })
    );
    assert_eq!(d.advance(b"f"), Err(BodyError::TooLarge));
}

// ---- chunked: valid --------------------------------------------------------------------------

#[test]
fn chunked_whole_and_byte_by_byte_agree() {
    let body = b"5\r\nhello\r\nA;name=value;q=\"x\\\"y\" ; flag\r\n0123456789\r\n0\r\n\r\n";
    let mut input = body.to_vec();
    input.extend_from_slice(b"GET /next HTTP/1.1\r\n\r\n");
    assert_eq!(chunked_ok(&input), body.len());
}

#[test]
fn chunked_with_trailers() {
    let body = b"3\r\nabc\r\n0\r\nX-Checksum: 123\r\nX-Other:\tv w\r\n\r\n";
    let mut input = body.to_vec();
    input.extend_from_slice(b"NEXT");
    assert_eq!(chunked_ok(&input), body.len());
}

#[test]
fn chunked_size_forms() {
    for body in [
        &b"0\r\n\r\n"[..],
        b"000\r\n\r\n",
        b"1 \t\r\nx\r\n0\r\n\r\n",
        b"1 ; a = b \r\nx\r\n0\r\n\r\n",
        b"a\r\n0123456789\r\n0\r\n\r\n",
        b"0000000000000001\r\nx\r\n0\r\n\r\n",
        b"0;ext\r\n\r\n",
    ] {
        assert_eq!(
            chunked_ok(body),
            body.len(),
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn sixteen_hex_digits_are_allowed() {
    // The largest size fits; with no body limit the decoder is then in the data.
    let mut d = BodyDecoder::new(BodyKind::Chunked, &limits());
    assert_eq!(
        d.advance(b"ffffffffffffffff\r\nabc"),
        Ok(Advance {
            consumed: 21,
            done: false
        })
    );
}

#[test]
fn pipelined_bytes_after_the_last_chunk_are_not_consumed() {
    let mut d = BodyDecoder::new(BodyKind::Chunked, &limits());
    let a = d
        .advance(b"2\r\nok\r\n0\r\n\r\nPOST /2 HTTP/1.1\r\n")
        .expect("valid");
    assert_eq!(
        a,
        Advance {
            consumed: 12,
            done: true
        }
    );
    assert_eq!(
        d.advance(b"more"),
        Ok(Advance {
            consumed: 0,
            done: true
        })
    );
}

#[test]
fn decode_yields_the_payload_alone() {
    let input = b"5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nT: v\r\n\r\nNEXT";
    let mut d = BodyDecoder::new(BodyKind::Chunked, &limits());
    let mut out = Vec::new();
    let a = d.decode(input, &mut out).expect("valid");
    assert_eq!(
        a,
        Advance {
            consumed: input.len() - 4,
            done: true
        }
    );
    assert_eq!(out, b"hello world");
    // Byte by byte gives the same payload.
    let mut d = BodyDecoder::new(BodyKind::Chunked, &limits());
    let mut out2 = Vec::new();
    for b in &input[..input.len() - 4] {
        d.decode(std::slice::from_ref(b), &mut out2).expect("valid");
    }
    assert!(d.is_done());
    assert_eq!(out2, b"hello world");
}

// ---- chunked: invalid ------------------------------------------------------------------------

#[test]
fn invalid_chunk_sizes_are_400() {
    for body in [
        &b"0x5\r\nhello\r\n0\r\n\r\n"[..],
        b"+5\r\nhello\r\n0\r\n\r\n",
        b"5 0\r\n",
        b"Z\r\n",
        b"-1\r\n",
        b" 5\r\n",
        b"\r\n",
        b";a\r\n",
        b"5\x00\r\n",
        b"5,\r\n",
    ] {
        let e = chunked_err(body);
        assert_eq!(
            e,
            BodyError::InvalidChunkSize,
            "{:?}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(e.status(), 400);
    }
    let e = chunked_err(b"00000000000000001\r\nx\r\n0\r\n\r\n");
    assert_eq!(e, BodyError::ChunkSizeTooLong);
    assert_eq!(e.status(), 400);
    assert_eq!(
        chunked_err(b"fffffffffffffffff\r\n"),
        BodyError::ChunkSizeTooLong
    );
}

#[test]
fn bad_chunk_extensions_are_400() {
    for body in [
        &b"5;\r\n"[..],
        b"5;a=\r\n",
        b"5;=b\r\n",
        b"5;a=b c\r\n",
        b"5;a=\"b\r\n",
        b"5;a=\"b\x00\"\r\n",
        b"5;a\x00\r\n",
        b"5;a=b\x00\r\n",
        b"5;a@b\r\n",
        b"5;a=\"b\"c\r\n",
        b"5;a=\"\\\x01\"\r\n",
        b"5;a\rb\r\n",
    ] {
        let e = chunked_err(body);
        assert!(
            matches!(e, BodyError::InvalidChunkExtension | BodyError::BareCr),
            "{:?}: {e:?}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(e.status(), 400);
    }
}

#[test]
fn bare_lf_and_cr_in_chunk_extensions_are_400() {
    assert_eq!(chunked_err(b"5;a\nhello\r\n0\r\n\r\n"), BodyError::BareLf);
    assert_eq!(chunked_err(b"5;a=\"x\ny\"\r\n"), BodyError::BareLf);
    assert_eq!(
        chunked_err(b"5;a=\"x\ry\"\r\n"),
        BodyError::InvalidChunkExtension
    );
    assert_eq!(chunked_err(b"5;a\rhello\r\n"), BodyError::BareCr);
}

#[test]
fn overlong_chunk_extensions_are_400() {
    let mut ok = b"1;a=".to_vec();
    ok.resize(MAX_CHUNK_EXTENSION + 1, b'b');
    ok.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
    assert_eq!(chunked_ok(&ok), ok.len());
    let mut long = b"1;a=".to_vec();
    long.resize(MAX_CHUNK_EXTENSION + 2, b'b');
    long.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
    let e = chunked_err(&long);
    assert_eq!(e, BodyError::ChunkExtensionTooLong);
    assert_eq!(e.status(), 400);
    // The bound is per line: many lines of short extensions are fine.
    let mut many = Vec::new();
    for _ in 0..10 {
        many.extend_from_slice(b"1;");
        many.resize(many.len() + 3000, b'e');
        many.extend_from_slice(b"\r\nx\r\n");
    }
    many.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(chunked_ok(&many), many.len());
}

#[test]
fn chunk_data_not_followed_by_crlf_is_400() {
    for body in [
        &b"5\r\nhelloX\r\n0\r\n\r\n"[..],
        b"5\r\nhello\rX0\r\n\r\n",
        b"3\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhello0\r\n\r\n",
    ] {
        let e = chunked_err(body);
        assert_eq!(
            e,
            BodyError::MissingChunkCrlf,
            "{:?}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(e.status(), 400);
    }
}

#[test]
fn bare_lf_anywhere_in_chunk_framing_is_400() {
    for body in [
        &b"5\nhello\r\n0\r\n\r\n"[..],
        b"5\r\nhello\n0\r\n\r\n",
        b"5\r\nhello\r\n0\n\r\n",
        b"5\r\nhello\r\n0\r\n\n",
        b"5\r\nhello\r\n0\r\nT: v\n\r\n",
        b"5 \nhello\r\n",
        b"0\r\nT\n",
    ] {
        let e = chunked_err(body);
        assert_eq!(e, BodyError::BareLf, "{:?}", String::from_utf8_lossy(body));
    }
}

#[test]
fn bare_cr_in_chunk_framing_is_400() {
    for body in [&b"5\rhello\r\n"[..], b"0\r\n\rX", b"0\r\nT: v\rX\r\n\r\n"] {
        assert_eq!(
            chunked_err(body),
            BodyError::BareCr,
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn malformed_trailers_are_400() {
    for body in [
        &b"0\r\nNoColon\r\n\r\n"[..],
        b"0\r\nT : v\r\n\r\n",
        b"0\r\n T: v\r\n\r\n",
        b"0\r\nT: v\r\n folded\r\n\r\n",
        b"0\r\nT: v\x00\r\n\r\n",
        b"0\r\nT: v\x01\r\n\r\n",
        b"0\r\nT(: v\r\n\r\n",
        b"0\r\n: v\r\n\r\n",
    ] {
        let e = chunked_err(body);
        assert_eq!(
            e,
            BodyError::InvalidTrailer,
            "{:?}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(e.status(), 400);
    }
}

#[test]
fn oversized_trailers_are_431() {
    let l = Limits {
        max_trailer: 16,
        ..limits()
    };
    // 16 bytes of trailer fields (final empty line not counted) fit.
    let ok = b"0\r\nX-Abc: 1234567\r\n\r\n";
    assert_eq!(all_ways(BodyKind::Chunked, &l, ok), Ok((ok.len(), true)));
    let e = chunked_err_with(&l, b"0\r\nX-Abc: 12345678\r\n\r\n");
    assert_eq!(e, BodyError::TrailersTooLarge);
    assert_eq!(e.status(), 431);
    // No trailers allowed at all.
    let none = Limits {
        max_trailer: 0,
        ..limits()
    };
    assert_eq!(
        all_ways(BodyKind::Chunked, &none, b"0\r\n\r\n"),
        Ok((5, true))
    );
    assert_eq!(
        chunked_err_with(&none, b"0\r\nT: v\r\n\r\n"),
        BodyError::TrailersTooLarge
    );
}

#[test]
fn chunked_over_max_body_is_413() {
    let l = Limits {
        max_body: 10,
        ..limits()
    };
    let ok = b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n";
    assert_eq!(all_ways(BodyKind::Chunked, &l, ok), Ok((ok.len(), true)));
    // Refused at the size line, before any of the chunk's data.
    let e = chunked_err_with(&l, b"5\r\nhello\r\n6\r\n");
    assert_eq!(e, BodyError::TooLarge);
    assert_eq!(e.status(), 413);
    assert_eq!(
        chunked_err_with(&l, b"ffffffffffffffff\r\n"),
        BodyError::TooLarge
    );
}

#[test]
fn errors_are_sticky() {
    let mut d = BodyDecoder::new(BodyKind::Chunked, &limits());
    assert_eq!(d.advance(b"Z"), Err(BodyError::InvalidChunkSize));
    assert_eq!(d.advance(b"0\r\n\r\n"), Err(BodyError::InvalidChunkSize));
    assert_eq!(d.advance(b""), Err(BodyError::InvalidChunkSize));
    assert!(!d.is_done());
}
