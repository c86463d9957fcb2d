//! Any sequence of caller and owner events into a voicemail deposit.
#![no_main]
use std::sync::OnceLock;
static SETUP: OnceLock<(Vec<ivr_menus::handoff::Mailbox>, std::time::Instant)> = OnceLock::new();
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (boxes, start) = SETUP.get_or_init(|| (ivr_voicemail::fuzz::mailboxes(), std::time::Instant::now()));
    let which = data.first().map_or(0, |b| usize::from(*b) % boxes.len());
    ivr_voicemail::fuzz::deposit(&boxes[which], data.get(1..).unwrap_or_default(), *start);
});
