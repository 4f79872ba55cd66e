//! Fuzz target: see `sipcdr::fuzzing::decode`; one decoder for the whole run.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipcdr::capture::decode::Decoder;
use std::cell::RefCell;

thread_local! {
    static DECODER: RefCell<Decoder> = RefCell::new(Decoder::new(Some(9060)));
}

fuzz_target!(|data: &[u8]| {
    DECODER.with(|d| sipcdr::fuzzing::decode(&mut d.borrow_mut(), data));
});
