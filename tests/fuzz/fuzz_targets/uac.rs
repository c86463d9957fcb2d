//! Operation sequences on the outgoing-call machine (responses, timeouts, cancel, bye).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ivr_sip::fuzz::uac_sequence(data));
