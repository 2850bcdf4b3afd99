//! Body framing for either direction: finds the end of a message body in the bytes as they
//! arrive, so the caller forwards exactly the body (chunk framing and trailers included) and
//! nothing of the message after it.
//!
//! Invariants:
//! - Byte-driven, never buffers: any split of the input (down to one byte per call) gives the
//!   same result as one call with everything, and chunk data is skipped in bulk.
//! - [`BodyDecoder::advance`] never consumes a byte past the end of the message: what follows
//!   is the next message (pipelining) and stays with the caller.
//! - Chunked framing is strict (RFC 9112 §7.1): hex sizes of at most 16 digits, validated
//!   extensions of bounded length, CRLF after every size line and every chunk's data, trailer
//!   fields validated like header fields and bounded by `max_trailer`; a bare CR or LF
//!   anywhere is an error. Trailers are passed through as body bytes, never merged into the
//!   head (RFC 9112 §7.1.2).
//! - After an error the decoder keeps returning that error.

use super::field::{is_field_byte, is_tchar};
use super::{BodyError, BodyKind, Limits};

/// Longest run of chunk extensions on one chunk-size line, in bytes.
pub const MAX_CHUNK_EXTENSION: usize = 4096;

/// Most hex digits in a chunk size: 16 fill a u64, so the size can never overflow.
const MAX_SIZE_DIGITS: u8 = 16;

/// Result of one [`BodyDecoder::advance`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advance {
    /// Bytes at the front of the input that belong to this body (forward them verbatim).
    pub consumed: usize,
    /// The body has ended; bytes after `consumed` belong to the next message.
    pub done: bool,
}

/// Where a chunked body is (RFC 9112 §7.1 grammar).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// In the hex digits of a chunk size (`digits` read so far).
    Size {
        digits: u8,
    },
    /// BWS after the size digits.
    SizeWs,
    /// In the chunk extensions.
    Ext(ExtState),
    /// CR of a size line seen; expecting LF.
    SizeLf,
    /// In chunk data.
    Data,
    /// Data done; expecting CR then LF.
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    /// CR of the final empty line seen; expecting LF.
    FinalLf,
}

/// chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ) (RFC 9112 §7.1.1)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExtState {
    BeforeName,
    Name,
    AfterName,
    BeforeValue,
    Token,
    Quoted,
    QuotedEscape,
    AfterValue,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Done,
    /// `remaining` bytes of a Content-Length body.
    Length,
    Chunked(Chunk),
    CloseDelimited,
    Failed(BodyError),
}

/// Finds the end of one message body; see the module docs.
#[derive(Clone, Debug)]
pub struct BodyDecoder {
    state: State,
    /// Bytes left in a Content-Length body or in the current chunk.
    remaining: u64,
    /// Size of the chunk whose size line is being read.
    chunk_size: u64,
    /// Payload bytes so far (chunk framing excluded), checked against `max_body`.
    total: u64,
    max_body: u64,
    /// Extension bytes on the current size line.
    ext_len: usize,
    /// Trailer section bytes so far.
    trailer_len: usize,
    max_trailer: usize,
}

impl BodyDecoder {
    /// A decoder for a body of `kind`. `Empty` and `Length(0)` are done at once;
    /// `CloseDelimited` is never done (the connection's EOF ends it). A `Length` over a nonzero
    /// `max_body` fails on the first [`advance`](Self::advance).
    pub fn new(kind: BodyKind, limits: &Limits) -> Self {
        let (state, remaining) = match kind {
            BodyKind::Empty | BodyKind::Length(0) => (State::Done, 0),
            BodyKind::Length(n) if limits.max_body != 0 && n > limits.max_body => {
                (State::Failed(BodyError::TooLarge), 0)
            }
            BodyKind::Length(n) => (State::Length, n),
            BodyKind::Chunked => (State::Chunked(Chunk::Size { digits: 0 }), 0),
            BodyKind::CloseDelimited => (State::CloseDelimited, 0),
        };
        Self {
            state,
            remaining,
            chunk_size: 0,
            total: 0,
            max_body: limits.max_body,
            ext_len: 0,
            trailer_len: 0,
            max_trailer: limits.max_trailer,
        }
    }

    /// The body has ended.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The body ends only when the peer closes the connection.
    pub fn is_close_delimited(&self) -> bool {
        self.state == State::CloseDelimited
    }

    /// Consumes the bytes at the front of `input` that belong to the body, stopping at its end.
    pub fn advance(&mut self, input: &[u8]) -> Result<Advance, BodyError> {
        self.run(input, |_| {})
    }

    /// Like [`advance`](Self::advance), and also appends the payload alone to `out`: chunk
    /// framing and trailers are left out. For relaying a chunked body to an HTTP/1.0 client.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<Advance, BodyError> {
        self.run(input, |data| out.extend_from_slice(data))
    }

    fn run(&mut self, input: &[u8], mut payload: impl FnMut(&[u8])) -> Result<Advance, BodyError> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Done => break,
                State::Failed(e) => return Err(e),
                State::CloseDelimited => {
                    let rest = input.get(i..).unwrap_or(&[]);
                    self.add_payload(rest.len() as u64)?;
                    payload(rest);
                    i = input.len();
                }
                State::Length | State::Chunked(Chunk::Data) => {
                    let rest = input.get(i..).unwrap_or(&[]);
                    let n = usize::try_from(self.remaining)
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    payload(rest.get(..n).unwrap_or(&[]));
                    self.remaining -= n as u64;
                    i += n;
                    if self.remaining == 0 {
                        self.state = match self.state {
                            State::Length => State::Done,
                            _ => State::Chunked(Chunk::DataCr),
                        };
                    }
                }
                State::Chunked(chunk) => {
                    let Some(&b) = input.get(i) else { break };
                    i += 1;
                    match self.step(chunk, b) {
                        Ok(next) => self.state = next,
                        Err(e) => {
                            self.state = State::Failed(e);
                            return Err(e);
                        }
                    }
                }
            }
        }
        if let State::Failed(e) = self.state {
            return Err(e);
        }
        Ok(Advance {
            consumed: i,
            done: self.state == State::Done,
        })
    }

    fn add_payload(&mut self, n: u64) -> Result<(), BodyError> {
        self.total = self.total.saturating_add(n);
        if self.max_body != 0 && self.total > self.max_body {
            self.state = State::Failed(BodyError::TooLarge);
            return Err(BodyError::TooLarge);
        }
        Ok(())
    }

    /// One byte of chunk framing.
    fn step(&mut self, chunk: Chunk, b: u8) -> Result<State, BodyError> {
        use Chunk::*;
        let next = match chunk {
            Size { digits } => {
                if let Some(d) = hex_value(b) {
                    if digits >= MAX_SIZE_DIGITS {
                        return Err(BodyError::ChunkSizeTooLong);
                    }
                    // Cannot overflow: at most 16 hex digits.
                    self.chunk_size = (self.chunk_size << 4) | u64::from(d);
                    Size { digits: digits + 1 }
                } else if digits == 0 {
                    // `0x5` fails at `x`, `+5` here, `Z` here.
                    return Err(BodyError::InvalidChunkSize);
                } else {
                    match b {
                        b' ' | b'\t' => SizeWs,
                        b';' => self.ext(ExtState::BeforeName)?,
                        b'\r' => SizeLf,
                        b'\n' => return Err(BodyError::BareLf),
                        _ => return Err(BodyError::InvalidChunkSize),
                    }
                }
            }
            SizeWs => match b {
                b' ' | b'\t' => SizeWs,
                b';' => self.ext(ExtState::BeforeName)?,
                b'\r' => SizeLf,
                b'\n' => return Err(BodyError::BareLf),
                // `5 0`: digits after whitespace.
                _ => return Err(BodyError::InvalidChunkSize),
            },
            Ext(ext) => self.step_ext(ext, b)?,
            SizeLf => {
                if b != b'\n' {
                    return Err(BodyError::BareCr);
                }
                self.ext_len = 0;
                let size = self.chunk_size;
                self.chunk_size = 0;
                if size == 0 {
                    TrailerStart
                } else {
                    self.add_payload(size)?;
                    self.remaining = size;
                    Data
                }
            }
            // Data is consumed in bulk by `run` and never reaches here.
            Data => return Err(BodyError::MissingChunkCrlf),
            DataCr => match b {
                b'\r' => DataLf,
                b'\n' => return Err(BodyError::BareLf),
                _ => return Err(BodyError::MissingChunkCrlf),
            },
            DataLf => match b {
                b'\n' => Size { digits: 0 },
                _ => return Err(BodyError::MissingChunkCrlf),
            },
            TrailerStart => {
                // The final empty line is not counted: `max_trailer: 0` allows no trailers.
                if b != b'\r' {
                    self.trailer_byte()?;
                }
                match b {
                    b'\r' => FinalLf,
                    b'\n' => return Err(BodyError::BareLf),
                    _ if is_tchar(b) => TrailerName,
                    // Obs-fold, whitespace before the name, or an invalid name byte.
                    _ => return Err(BodyError::InvalidTrailer),
                }
            }
            TrailerName => {
                self.trailer_byte()?;
                match b {
                    b':' => TrailerValue,
                    b'\n' => return Err(BodyError::BareLf),
                    _ if is_tchar(b) => TrailerName,
                    // Whitespace before the colon, a missing colon, an invalid name byte.
                    _ => return Err(BodyError::InvalidTrailer),
                }
            }
            TrailerValue => {
                self.trailer_byte()?;
                match b {
                    b'\r' => TrailerLf,
                    b'\n' => return Err(BodyError::BareLf),
                    _ if is_field_byte(b) => TrailerValue,
                    _ => return Err(BodyError::InvalidTrailer),
                }
            }
            TrailerLf => {
                self.trailer_byte()?;
                match b {
                    b'\n' => TrailerStart,
                    _ => return Err(BodyError::BareCr),
                }
            }
            FinalLf => {
                if b != b'\n' {
                    return Err(BodyError::BareCr);
                }
                return Ok(State::Done);
            }
        };
        Ok(State::Chunked(next))
    }

    /// Enters or stays in extension state `next`, counting the byte against the bound.
    fn ext(&mut self, next: ExtState) -> Result<Chunk, BodyError> {
        self.ext_len += 1;
        if self.ext_len > MAX_CHUNK_EXTENSION {
            return Err(BodyError::ChunkExtensionTooLong);
        }
        Ok(Chunk::Ext(next))
    }

    fn step_ext(&mut self, ext: ExtState, b: u8) -> Result<Chunk, BodyError> {
        use ExtState::*;
        let ws = b == b' ' || b == b'\t';
        // The CR ending the line; LF, NUL and other controls are errors (below).
        let end = b == b'\r';
        let next = match ext {
            BeforeName if ws => BeforeName,
            BeforeName if is_tchar(b) => Name,
            Name if is_tchar(b) => Name,
            Name | AfterName if ws => AfterName,
            Name | AfterName if b == b'=' => BeforeValue,
            BeforeValue if ws => BeforeValue,
            BeforeValue if b == b'"' => Quoted,
            BeforeValue if is_tchar(b) => Token,
            Token if is_tchar(b) => Token,
            Token | AfterValue if ws => AfterValue,
            Quoted if b == b'"' => AfterValue,
            Quoted if b == b'\\' => QuotedEscape,
            // qdtext: HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text (RFC 9110 §5.6.4)
            Quoted if ws || (0x21..=0x7e).contains(&b) || b >= 0x80 => Quoted,
            // quoted-pair: "\" ( HTAB / SP / VCHAR / obs-text )
            QuotedEscape if ws || (0x21..=0x7e).contains(&b) || b >= 0x80 => Quoted,
            Name | AfterName | Token | AfterValue if b == b';' => BeforeName,
            Name | AfterName | Token | AfterValue if end => return Ok(Chunk::SizeLf),
            _ if b == b'\n' => return Err(BodyError::BareLf),
            _ => return Err(BodyError::InvalidChunkExtension),
        };
        self.ext(next)
    }

    fn trailer_byte(&mut self) -> Result<(), BodyError> {
        self.trailer_len += 1;
        if self.trailer_len > self.max_trailer {
            return Err(BodyError::TrailersTooLarge);
        }
        Ok(())
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
