//! Talk-off: the in-band DTMF detector must not hear keys in speech. Every demo prompt and
//! every built-in voicemail prompt (French, English and Spanish speech) goes through G.711
//! and the detector; no key may come out.

use ivr_audio::dtmf::DtmfDetector;
use ivr_audio::{Codec, Prompt};

#[test]
fn speech_prompts_contain_no_keys() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dirs = [
        root.join("examples/demo/prompts"),
        root.join("engine/server/builtin/en"),
        root.join("engine/server/builtin/fr"),
        root.join("engine/server/builtin/es"),
    ];
    let wavs = dirs.iter().flat_map(|d| {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "wav"))
    });
    let mut seconds = 0.0;
    for path in wavs {
        let prompt =
            Prompt::from_wav(&path.display().to_string(), &std::fs::read(&path).unwrap()).unwrap();
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let mut detector = DtmfDetector::new();
            let pcm: Vec<i16> = prompt
                .encoded(codec)
                .iter()
                .map(|c| codec.decode(*c))
                .collect();
            let mut keys = Vec::new();
            for frame in pcm.chunks(160) {
                detector.feed(frame, |k| keys.push(k));
            }
            assert!(
                keys.is_empty(),
                "{} ({codec:?}) 'contains' keys {keys:?}",
                path.display()
            );
        }
        seconds += prompt.frame_count() as f64 * 0.02;
    }
    assert!(seconds > 60.0, "only {seconds} s of speech checked");
}
