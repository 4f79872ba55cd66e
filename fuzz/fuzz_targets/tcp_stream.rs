//! Fuzz target: see `sipcdr::fuzzing::tcp_stream`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sipcdr::fuzzing::tcp_stream(data);
});
