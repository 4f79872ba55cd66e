//! Fuzz target: see `sipcdr::fuzzing::pipeline`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sipcdr::fuzzing::pipeline(data);
});
