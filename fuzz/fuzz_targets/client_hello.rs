//! ClientHello server name (the first bytes every TLS connection reads): the name is rustls'
//! own reading, valid and lower-cased, whatever the record boundaries and however the bytes
//! arrive; waiting is bounded. Input: an arrival byte, a framing byte, then the client's bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringway::fuzzing::check_client_hello;

fuzz_target!(|data: &[u8]| check_client_hello(data));
