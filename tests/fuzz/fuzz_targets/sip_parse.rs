//! The SIP parser on datagrams, with the print/parse round trip checked.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ivr_sip::fuzz::parse_datagram(data));
