//! The TCP stream framer fed in chunks.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ivr_sip::fuzz::stream(data));
