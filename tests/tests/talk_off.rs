//! Talk-off: the in-band DTMF detector must not hear keys in speech, and must still hear keys
//! under it. Every demo prompt and every built-in voicemail prompt (French, English and
//! Spanish speech) goes through G.711 and the detector, alone and echoed back at −10 dB as a
//! caller's line would return the engine's own prompt; then keys are sent over that echo.

use ivr_tests::speech;

/// Starting offsets within a 20 ms frame: the detector analyses every 34 samples, so these
/// cover every alignment of the audio with its windows.
const OFFSETS: std::ops::Range<usize> = 0..160;

#[test]
fn speech_prompts_and_their_echo_contain_no_keys() {
    let rows = speech::rows();
    let mut seconds = 0.0;
    for row in rows.iter().filter(|r| !r.accept) {
        for case in &row.cases {
            for offset in OFFSETS.step_by(7) {
                let keys = speech::detect(&case.samples[offset..]);
                assert!(
                    keys.is_empty(),
                    "{}: {} at offset {offset} 'contains' keys {keys:?}",
                    row.name,
                    case.label
                );
            }
            seconds += case.samples.len() as f64 / 8000.0;
        }
    }
    assert!(seconds > 150.0, "only {seconds} s of speech checked");
}

#[test]
fn keys_are_heard_over_an_echoed_prompt_at_every_offset() {
    let rows = speech::rows();
    let row = rows
        .iter()
        .find(|r| r.accept)
        .expect("the keys-over-echo row");
    assert_eq!(row.cases.len(), 16);
    for case in &row.cases {
        for offset in OFFSETS {
            assert_eq!(
                speech::detect(&case.samples[offset..]),
                case.expected,
                "{} at offset {offset}",
                case.label
            );
        }
    }
}
