//! Fuzz target bodies for operator input: the menu compiler (never panics, and a config
//! that compiles has every reference in range) and holiday calendars.

/// Compile arbitrary text; prompt files all load as a short tone.
pub fn compile_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let wav = ivr_audio::wav::encode_pcm16(8000, &[100; 160]);
    match crate::compile(text, &mut |_| Ok(wav.clone())) {
        Ok(menus) => {
            let _ = menus.menu(menus.entry());
            for i in 0..menus.len() {
                let m = menus.menu(crate::MenuId::nth(i));
                let fixed = m.prompt.iter().filter_map(|p| match p {
                    crate::model::PromptItem::Fixed(id) => Some(id),
                    crate::model::PromptItem::Digits(_) | crate::model::PromptItem::Number(_) => {
                        None
                    }
                });
                for p in fixed.chain(&m.invalid).chain(&m.no_input) {
                    let _ = menus.prompt(*p);
                }
            }
        }
        Err(errors) => {
            for e in errors {
                let _ = e.to_string();
            }
        }
    }
}

/// Read arbitrary text as an iCalendar file and ask every event about a few instants:
/// never panics. The first 4 bytes pick the instants.
pub fn calendar(data: &[u8]) {
    let Some((seed, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let zone = jiff::tz::TimeZone::get("America/New_York").unwrap_or(jiff::tz::TimeZone::UTC);
    let Ok(events) = crate::ics::parse(text, &zone) else {
        return;
    };
    // Instants between 1970 and 2106, around the start of 2026 more often than not.
    let base = i64::from(u32::from_le_bytes(*seed));
    for secs in [base, 1_767_225_600 + base % 100_000_000] {
        let Ok(t) = jiff::Timestamp::from_second(secs) else {
            continue;
        };
        let local = t.to_zoned_datetime(zone.clone());
        for e in &events {
            let _ = e.covers(t, &local);
        }
    }
}

#[cfg(test)]
mod tests {
    /// The calendar body on the example's file and on cut and garbled versions of it.
    #[test]
    fn calendar_body_survives_cut_and_garbled_files() {
        let ics = include_bytes!("../../examples/medical-office/holidays.ics");
        let mut input = vec![1, 2, 3, 4];
        input.extend_from_slice(ics);
        super::calendar(&input);
        for cut in (4..input.len()).step_by(97) {
            super::calendar(&input[..cut]);
            let mut garbled = input.clone();
            garbled[cut] = b"\xc3\xa9:;,=\"0Z"[cut % 9];
            super::calendar(&garbled);
        }
        super::calendar(
            "\0\0\0\0BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:20260101T1\u{e9}234\nEND:VEVENT\n"
                .as_bytes(),
        );
    }
}
