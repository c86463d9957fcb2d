//! The Call-ID read from raw bytes for routing to a shard, against the parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ivr_sip::fuzz::route_key(data));
