//! Operation sequences on the REFER machine (responses, NOTIFYs well formed or hostile, time).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ivr_sip::fuzz::refer_sequence(data));
