//! SDP offers through negotiation and back.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ivr_engine::fuzz::sdp_offer(data));
