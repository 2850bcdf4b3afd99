//! Request head parser: never panics, and never reads one message two ways.
//!
//! For any input: parsing the whole buffer and parsing every prefix agree (a prefix is either
//! `Partial`, or the same `Complete` head, or the same error); a `Complete` head, once
//! re-serialized for the backend, parses back to the same method, target, host and framing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringway::fuzzing::check_request_head;

fuzz_target!(|data: &[u8]| check_request_head(data));
