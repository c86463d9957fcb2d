//! Digest challenges and answers (WWW-Authenticate, Authorization) through parse and print.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ivr_sip::fuzz::digest_header(data));
