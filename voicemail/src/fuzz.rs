//! Fuzz target bodies for the deposit machine (run by `tests/fuzz`): any sequence of
//! caller and owner events keeps its promises.

use crate::deposit::{Action, Deposit};
use ivr_audio::Digit;
use std::time::{Duration, Instant};

/// Interpret `data` as events for a deposit into `mailbox`; panics if an invariant breaks:
/// recordings start and stop in pairs, at most one request is submitted, and a hang-up
/// always ends the deposit with no recording left running.
pub fn deposit(mailbox: &ivr_menus::handoff::Mailbox, data: &[u8], start: Instant) {
    let caller = data.first().map(|b| b % 2 == 0).unwrap_or(false);
    let mut d = Deposit::new(mailbox, caller.then_some("+33612345678"));
    let mut now = start;
    d.start(now);
    let mut actions = Vec::new();
    for b in data.iter().skip(1) {
        match b % 8 {
            0..=2 => d.handle_digit(now, Digit::from_event_code(b / 8 % 16).unwrap_or(Digit::D1)),
            3 => d.handle_audio(now, b & 0x80 != 0),
            4 => d.handle_playback_finished(now),
            5 => {
                now += Duration::from_millis(u64::from(*b) * 40);
                d.handle_timeout(now);
            }
            6 => d.handle_stored(now),
            _ => d.handle_store_failed(now),
        }
        actions.extend(std::iter::from_fn(|| d.poll_action()));
    }
    d.handle_hangup(now);
    actions.extend(std::iter::from_fn(|| d.poll_action()));
    assert!(d.is_done());
    let mut recording = false;
    let mut submits = 0;
    for a in &actions {
        match a {
            Action::StartRecording => {
                assert!(!recording, "{actions:?}");
                recording = true;
            }
            Action::StopRecording => {
                assert!(recording, "{actions:?}");
                recording = false;
            }
            Action::DiscardRecording => recording = false,
            Action::Submit(_) => submits += 1,
            _ => {}
        }
    }
    assert!(!recording && submits <= 1, "{actions:?}");
}

/// Mailboxes to fuzz with: caller ID offered, a number asked with review, and no number
/// with neither silence nor beep.
pub fn mailboxes() -> Vec<ivr_menus::handoff::Mailbox> {
    let yaml = "entry: m\nprompts: { p: p.wav }\nmailboxes:\n  a: { greeting: p }\n  b: { greeting: p, callback_number: ask, review: true }\n  c: { greeting: p, callback_number: none, silence: 0, beep: false }\nmenus:\n  m: { prompt: p, no_input: p, options: { \"1\": { voicemail: a }, \"2\": { voicemail: b }, \"3\": { voicemail: c } }, on_failure: { hangup: p } }\n";
    let wav = || ivr_audio::wav::encode_pcm16(8000, &[0; 800]);
    ivr_menus::compile_full(
        yaml,
        &mut |_| Ok(wav()),
        &mut |_, _| Err("no TTS".into()),
        &mut |_, _| Some(wav()),
    )
    .expect("the fuzz mailboxes compile")
    .mailboxes()
    .to_vec()
}
