//! RTP timestamps and audio, in any order, into the recording's reorder buffer.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ivr_audio::fuzz::reorder(data));
