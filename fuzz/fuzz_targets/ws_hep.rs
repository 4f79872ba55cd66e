//! Fuzz target: see `sipcdr::fuzzing::ws_hep`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sipcdr::fuzzing::ws_hep(data);
});
