//! A registrar fed REGISTERs, right answers and time: its bounds hold and nothing panics.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ivr_sip::fuzz::register_sequence(data));
