//! SRTP packets into a media session, and our own protect/unprotect round trip.
#![no_main]
use std::sync::OnceLock;
static NOW: OnceLock<std::time::Instant> = OnceLock::new();
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let now = *NOW.get_or_init(std::time::Instant::now);
    ivr_engine::fuzz::srtp(data, now)
});
