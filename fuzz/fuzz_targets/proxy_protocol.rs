//! PROXY protocol header (v1 and v2, before the ClientHello on a listener that expects one):
//! never a panic; decided at one byte and the same answer however many bytes follow; never
//! waited for past its longest form; its addresses written out again read back the same.
//! Input: the first bytes of a connection.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringway::fuzzing::check_proxy_protocol;

fuzz_target!(|data: &[u8]| check_proxy_protocol(data));
