//! Fuzz target: see `sipcdr::fuzzing::sip_message`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sipcdr::fuzzing::sip_message(data);
});
