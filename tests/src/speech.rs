//! Recorded speech for in-band DTMF checks: every demo prompt and every built-in voicemail
//! prompt (French, English and Spanish), as a line carries them, alone, echoed back at
//! −10 dB, and under keys. Used by `tests/tests/talk_off.rs` and the `dtmf-bench` comparison.

use ivr_audio::dtmf::DtmfDetector;
use ivr_audio::dtmf_set::{self, Row, Tone};
use ivr_audio::{Codec, Digit, Prompt};

/// Every demo and built-in prompt, by file name.
pub fn prompts() -> Vec<(String, Prompt)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dirs = [
        root.join("examples/demo/prompts"),
        root.join("engine/server/builtin/en"),
        root.join("engine/server/builtin/fr"),
        root.join("engine/server/builtin/es"),
    ];
    let mut paths: Vec<_> = dirs
        .iter()
        .flat_map(|d| std::fs::read_dir(d).expect("prompt folder"))
        .map(|e| e.expect("folder entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let name = p.strip_prefix(&root).unwrap_or(p).display().to_string();
            let bytes = std::fs::read(p).expect("read prompt");
            let prompt = Prompt::from_wav(&name, &bytes).expect("prompt loads");
            (name, prompt)
        })
        .collect()
}

/// A prompt as the caller hears it: encoded in `codec` and decoded.
pub fn heard(prompt: &Prompt, codec: Codec) -> Vec<i16> {
    prompt
        .encoded(codec)
        .iter()
        .map(|c| codec.decode(*c))
        .collect()
}

/// `samples` `db` dB quieter, as a line's echo returns them (no G.711 round trip yet).
pub fn attenuated(samples: &[i16], db: f64) -> Vec<i16> {
    let gain = 10f64.powf(-db / 20.0);
    samples
        .iter()
        .map(|&s| (f64::from(s) * gain).round() as i16)
        .collect()
}

/// `samples` through `codec` and back.
pub fn round_trip(samples: &[i16], codec: Codec) -> Vec<i16> {
    samples
        .iter()
        .map(|&s| codec.decode(codec.encode(s)))
        .collect()
}

/// The keys a fresh detector finds in `samples` fed in 20 ms frames, as RTP brings them.
pub fn detect(samples: &[i16]) -> Vec<Digit> {
    let mut detector = DtmfDetector::new();
    let mut keys = Vec::new();
    for frame in samples.chunks(ivr_audio::FRAME_SAMPLES) {
        detector.feed(frame, |k| keys.push(k));
    }
    keys
}

/// The speech rows of the receiver test set: prompts alone (both laws), prompts echoed at
/// −10 dB, and one 40 ms key at −10 dBm0 per tone over each of 16 echoed prompts.
pub fn rows() -> Vec<Row> {
    let prompts = prompts();
    let case = |label: String, samples: Vec<i16>| dtmf_set::Case {
        label,
        samples,
        expected: Vec::new(),
    };
    let mut alone = Vec::new();
    let mut echoed = Vec::new();
    for (name, p) in &prompts {
        for codec in [Codec::Pcmu, Codec::Pcma] {
            alone.push(case(format!("{name} {codec:?}"), heard(p, codec)));
        }
        let echo = attenuated(&heard(p, Codec::Pcmu), 10.0);
        echoed.push(case(name.clone(), round_trip(&echo, Codec::Pcmu)));
    }
    // The longest prompts, so the key falls on speech: the tone starts 200 ms in.
    let mut long: Vec<&(String, Prompt)> = prompts.iter().collect();
    long.sort_by_key(|(_, p)| std::cmp::Reverse(p.frame_count()));
    let keys = Digit::ALL
        .iter()
        .zip(long.iter().cycle())
        .enumerate()
        .map(|(i, (&d, (name, p)))| {
            let echo = attenuated(&heard(p, Codec::Pcmu), 10.0);
            let tone = Tone::new(d, 40);
            // Each key over a different part of its prompt.
            let skip = (i * 4000).min(echo.len().saturating_sub(8000));
            dtmf_set::case_over(
                &format!("{d} over {name}"),
                &[tone],
                &echo[skip..],
                i as u64,
                Codec::Pcmu,
            )
        })
        .collect();
    vec![
        Row {
            name: "reject: speech (every prompt, both laws)",
            accept: false,
            cases: alone,
        },
        Row {
            name: "reject: speech echoed at -10 dB",
            accept: false,
            cases: echoed,
        },
        Row {
            name: "accept: 40 ms, -10 dBm0, over a prompt echoed at -10 dB",
            accept: true,
            cases: keys,
        },
    ]
}
