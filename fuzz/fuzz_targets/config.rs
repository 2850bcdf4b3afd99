//! Configuration loader: never panics; a refused document gets a one-line error naming the key
//! (or the syntax error) inside the document; an accepted one validates, has the invariants
//! the config module documents, and written back out parses to the same configuration.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringway::fuzzing::check_config;

fuzz_target!(|data: &[u8]| check_config(data));
