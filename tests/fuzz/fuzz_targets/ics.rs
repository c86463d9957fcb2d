//! Holiday calendars (iCalendar) on arbitrary text.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ivr_menus::fuzz::calendar(data));
