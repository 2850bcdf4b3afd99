//! Response head parser: never panics; prefixes agree with the whole; a `Complete` head
//! re-serialized for the client parses back to the same status and framing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringway::fuzzing::check_response_head;

fuzz_target!(|data: &[u8]| check_response_head(data));
