//! Chunked decoder: the same body fed whole, byte by byte, or split at a point chosen by the
//! input gives the same end, the same consumed length and the same error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringway::fuzzing::check_chunked;

fuzz_target!(|data: &[u8]| check_chunked(data));
