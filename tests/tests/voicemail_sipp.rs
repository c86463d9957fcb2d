//! Callback requests, black box: the real `ivr` binary, a SIPp caller that picks the
//! voicemail option with RFC 2833 digits, streams a known recording as RTP and hangs up
//! mid-message; then what is on disk and in the store is checked against what was sent.

use ivr_tests::process::Ivr;
use ivr_voicemail::store::{Filter, Store};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// The demo's `support_en` prompt: speech, about 6 s.
fn source() -> Vec<i16> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/demo/prompts/support_en.wav");
    let wav = ivr_audio::wav::decode(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(wav.rate, 8000);
    wav.samples
}

/// Normalized correlation of `a` with `b` shifted by `lag` (b[i + lag] against a[i]).
fn correlation(a: &[i16], b: &[i16], lag: usize) -> f64 {
    let n = a.len().min(b.len().saturating_sub(lag));
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for i in 0..n {
        let (x, y) = (a[i] as f64, b[i + lag] as f64);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        ab / (aa.sqrt() * bb.sqrt())
    }
}

/// Write the scenario with the audio file and caller ID in place; returns its path.
fn scenario(dir: &std::path::Path, audio: &std::path::Path, caller: &str) -> String {
    let template = std::fs::read_to_string(ivr_tests::sipp::scenario("voicemail.xml")).unwrap();
    let text = template
        .replace("@AUDIO@", &audio.display().to_string())
        .replace("@CALLER@", caller);
    let path = dir.join("voicemail.xml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn a_message_streamed_and_cut_by_a_hang_up_is_stored_whole() {
    let work = tempfile::tempdir().unwrap();
    // What the caller says, as raw µ-law for SIPp's rtp_stream (payload type 0).
    let said = source();
    let ulaw: Vec<u8> = said
        .iter()
        .map(|s| ivr_audio::Codec::Pcmu.encode(*s))
        .collect();
    let audio = work.path().join("message.ulaw");
    std::fs::write(&audio, &ulaw).unwrap();
    let heard: Vec<i16> = ulaw
        .iter()
        .map(|c| ivr_audio::Codec::Pcmu.decode(*c))
        .collect();

    let ivr = Ivr::start(&[]);
    let scenario = scenario(work.path(), &audio, "+33612345678");
    // Hang up 3 s into the ~6 s message.
    let run = ivr_tests::sipp::run(ivr.sip, &["-sf", &scenario, "-m", "1", "-d", "3000"]);
    assert_eq!(
        run.code,
        0,
        "SIPp:\n{}\n--- engine ---\n{}",
        run.output,
        ivr.log()
    );
    let stored = ivr.wait_for(&["callback request stored"], 1, WAIT);
    assert_eq!(stored.len(), 1, "{}", ivr.log());

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = format!("sqlite://{}", ivr.data_dir().join("callbacks.db").display());
    let requests = rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        store.list(&Filter::default()).await.unwrap()
    });
    assert_eq!(requests.len(), 1, "{requests:?}");
    let r = &requests[0];
    assert_eq!(r.request.mailbox, "messages");
    assert_eq!(r.request.caller_id.as_deref(), Some("+33612345678"));
    assert_eq!(r.request.callback_number.as_deref(), Some("+33612345678"));
    assert_eq!(r.request.language.as_deref(), Some("en"));
    assert_eq!(r.request.menu_path, ["language", "main_en"]);
    assert!(r.request.has_message && r.request.hung_up && !r.recovered);

    // The WAV: 8 kHz 16-bit mono, as long as the row says, and what was said.
    let wav_path = ivr
        .data_dir()
        .join("voicemail")
        .join(format!("{}.wav", r.request.id));
    let bytes = std::fs::read(&wav_path).unwrap();
    let wav = ivr_audio::wav::decode(&bytes).unwrap();
    assert_eq!(wav.rate, 8000);
    let got = wav.samples;
    assert_eq!(r.request.duration_ms, got.len() as u64 / 8);
    // The hang-up came 3 s into the stream: the message is as long as the audio sent.
    let ms = r.request.duration_ms as i64;
    assert!(
        (ms - 3000).abs() <= 100,
        "recorded {ms} ms of the 3000 ms sent before the hang-up"
    );
    // Aligned with what was sent: search the lag (the recording starts with the first
    // packet, so it is at or near 0).
    let (lag, best) = (0..800)
        .map(|lag| (lag, correlation(&got, &heard, lag)))
        .fold((0, f64::MIN), |a, b| if b.1 > a.1 { b } else { a });
    assert!(
        best > 0.95,
        "correlation with the audio sent: {best:.3} at lag {lag}"
    );
    eprintln!("recorded {ms} ms; correlation {best:.4} at lag {lag}");
    // And well above chance: the same audio shifted by half a second does not match.
    assert!(correlation(&got, &heard, lag + 4000) < 0.5);
    // No file is left waiting for recovery.
    let leftovers: Vec<String> = std::fs::read_dir(ivr.data_dir().join("voicemail"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| !n.ends_with(".wav"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
