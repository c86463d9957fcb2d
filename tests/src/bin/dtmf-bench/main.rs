//! `dtmf-bench`: scores in-band DTMF receivers on the generated receiver test set
//! (`ivr_audio::dtmf_set` plus the speech rows of `ivr_tests::speech`), for `bench/dtmf.sh`.
//!
//! - `dtmf-bench write DIR [STEP]` writes the set as raw 16-bit little-endian files
//!   (`DIR/cases/N.raw`) with `DIR/manifest.tsv` (row, expected keys or `-`, file) and
//!   `DIR/rows.tsv`, then scores this engine's detector (`DIR/ours.tsv`) and the detector
//!   it replaced (`DIR/old.tsv`).
//! - `dtmf-bench report DIR` prints the scores side by side with `DIR/spandsp.tsv`.
//!
//! Every case is fed in 20 ms frames from each starting offset 0, STEP, 2·STEP… < 160
//! (skipping that many samples of its lead-in; the long espeak-ng speech row uses a step of
//! 16 at least), to a fresh receiver; it passes at that offset when the receiver reports
//! exactly the expected keys. A score file has one line per row: `row passed total`; a
//! manifest line is `row expected file step`.

mod old;

use ivr_audio::Digit;
use ivr_audio::dtmf::DtmfDetector;
use ivr_audio::dtmf_set::{self, Row};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["write", dir] => write(Path::new(dir), 1),
        ["write", dir, step] => write(Path::new(dir), step.parse().expect("STEP is a number")),
        ["report", dir] => report(Path::new(dir)),
        _ => {
            eprintln!("usage: dtmf-bench write DIR [STEP] | dtmf-bench report DIR");
            std::process::exit(2);
        }
    }
}

/// Every row with the offset step it is scored at: `step`, or at least 16 for the long
/// synthetic-speech row.
fn all_rows(step: usize) -> Vec<(Row, usize)> {
    let mut rows: Vec<(Row, usize)> = dtmf_set::rows().into_iter().map(|r| (r, step)).collect();
    rows.extend(ivr_tests::speech::rows().into_iter().map(|r| (r, step)));
    rows.push((espeak_row(), step.max(16)));
    rows
}

/// A text and the voices, pitches and speeds that say it.
type SpeechSet = (
    &'static str,
    &'static [&'static str],
    &'static [u32],
    &'static [u32],
);

/// Texts, voices, pitches and speeds for the synthetic-speech talk-off row.
const ESPEAK_SETS: [SpeechSet; 3] = [
    (
        "Good morning, thank you for calling. Please listen carefully, as our menu options have changed. For sales, press one. For support, press two. Our opening hours are Monday to Friday, nine in the morning to six in the evening. We are sorry, all our agents are busy. The quick brown fox jumps over the lazy dog. Eeeeee, ooooh, aaaah, mmmmm. One two three four five six seven eight nine zero. Hello? Is anybody there? Please call me back at zero four nine one, two three four, five six seven.",
        &[
            "en", "en-us", "en+f3", "en+m3", "fr", "es", "de", "it", "pt", "nl",
        ],
        &[10, 50, 90],
        &[160],
    ),
    (
        "Welcome to the medical office. If this is an emergency, hang up and dial the emergency number. To book an appointment, stay on the line. Press star to hear these options again. Music, singing, la la la la, do re mi fa sol la si do. Whistle, wheee, oooo, eeee, iiii. Mmm hmm, uh huh, yeah yeah, okay, alright, bye bye now, have a nice day.",
        &[
            "en-gb-x-rp",
            "ru",
            "pl",
            "sv",
            "fi",
            "cs",
            "el",
            "hu",
            "ro",
            "en+f2",
            "en+f4",
            "fr+f2",
            "es+f3",
        ],
        &[30, 70, 99],
        &[120, 220],
    ),
    (
        "Hi, it's me again. I tried to reach you yesterday about the invoice number four four seven two. Could you call me back before noon? My number is oh seven nine, three three one, eight eight two zero. Oh, and please tell Sarah that the meeting moved to Thursday at half past three. Bye!",
        &[
            "de", "it", "pt", "nl", "en-us+f1", "en-sc", "tr", "vi", "hi", "ja", "en+f5", "de+f2",
        ],
        &[40, 60, 85],
        &[150],
    ),
];

/// Synthetic speech from espeak-ng (as the engine's `say:` prompts are made), many voices
/// and pitches, alternately through µ-law and A-law: no key may be heard.
fn espeak_row() -> Row {
    let mut cases = Vec::new();
    for (text, voices, pitches, speeds) in ESPEAK_SETS {
        for voice in voices {
            for pitch in pitches {
                for speed in speeds {
                    let out = std::process::Command::new("espeak-ng")
                        .args([
                            "-v",
                            voice,
                            "-p",
                            &pitch.to_string(),
                            "-s",
                            &speed.to_string(),
                        ])
                        .arg("--stdout")
                        .arg(text)
                        .output()
                        .expect("espeak-ng runs (bench/dtmf.sh installs it)");
                    let label = format!("espeak-ng -v {voice} -p {pitch} -s {speed}");
                    let Ok(prompt) = ivr_audio::Prompt::from_wav(&label, &out.stdout) else {
                        eprintln!("skipped {label}: no audio");
                        continue;
                    };
                    let codec = if cases.len() % 2 == 0 {
                        ivr_audio::Codec::Pcmu
                    } else {
                        ivr_audio::Codec::Pcma
                    };
                    cases.push(dtmf_set::Case {
                        label,
                        samples: ivr_tests::speech::heard(&prompt, codec),
                        expected: Vec::new(),
                    });
                }
            }
        }
    }
    Row {
        name: "reject: espeak-ng speech (35 voices, 3 texts, several pitches and speeds)",
        accept: false,
        cases,
    }
}

fn write(dir: &Path, step: usize) {
    let cases_dir = dir.join("cases");
    std::fs::create_dir_all(&cases_dir).expect("create the output folder");
    let rows = all_rows(step);
    let mut manifest = String::new();
    let mut names = String::new();
    let mut n = 0;
    for (i, (row, row_step)) in rows.iter().enumerate() {
        writeln!(names, "{i}\t{}", row.name).expect("write to a string");
        for case in &row.cases {
            let file: PathBuf = cases_dir.join(format!("{n}.raw"));
            n += 1;
            let bytes: Vec<u8> = case.samples.iter().flat_map(|s| s.to_le_bytes()).collect();
            std::fs::write(&file, bytes).expect("write a case");
            let expected: String = case.expected.iter().map(|d| d.as_char()).collect();
            let expected = if expected.is_empty() {
                "-".into()
            } else {
                expected
            };
            writeln!(manifest, "{i}\t{expected}\t{}\t{row_step}", file.display())
                .expect("write to a string");
        }
    }
    std::fs::write(dir.join("manifest.tsv"), manifest).expect("write the manifest");
    std::fs::write(dir.join("rows.tsv"), names).expect("write the row names");
    std::fs::write(dir.join("step"), step.to_string()).expect("write the step");
    let ours = score(&rows, |s| {
        let mut d = DtmfDetector::new();
        let mut keys = Vec::new();
        for frame in s.chunks(160) {
            d.feed(frame, |k| keys.push(k));
        }
        keys
    });
    std::fs::write(dir.join("ours.tsv"), ours).expect("write our scores");
    let before = score(&rows, |s| {
        let mut d = old::DtmfDetector::new();
        let mut keys = Vec::new();
        for frame in s.chunks(160) {
            d.feed(frame, |k| keys.push(k));
        }
        keys
    });
    std::fs::write(dir.join("old.tsv"), before).expect("write the old scores");
    eprintln!("{n} cases written to {}", dir.display());
}

fn score(rows: &[(Row, usize)], detect: impl Fn(&[i16]) -> Vec<Digit>) -> String {
    let mut out = String::new();
    for (i, (row, step)) in rows.iter().enumerate() {
        let (mut passed, mut total) = (0, 0);
        for case in &row.cases {
            for offset in (0..160).step_by(*step) {
                total += 1;
                if detect(&case.samples[offset..]) == case.expected {
                    passed += 1;
                }
            }
        }
        writeln!(out, "{i}\t{passed}\t{total}").expect("write to a string");
    }
    out
}

fn read_scores(path: &Path) -> Vec<(u64, u64)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| {
            let f: Vec<u64> = l
                .split('\t')
                .map(|x| x.trim().parse().expect("a number"))
                .collect();
            (f[1], f[2])
        })
        .collect()
}

fn report(dir: &Path) {
    let names = std::fs::read_to_string(dir.join("rows.tsv")).expect("rows.tsv");
    let names: Vec<&str> = names
        .lines()
        .map(|l| l.split_once('\t').map_or(l, |(_, n)| n))
        .collect();
    let columns = [
        ("ours", read_scores(&dir.join("ours.tsv"))),
        ("spandsp", read_scores(&dir.join("spandsp.tsv"))),
        ("old (before #14)", read_scores(&dir.join("old.tsv"))),
    ];
    let step = std::fs::read_to_string(dir.join("step")).unwrap_or_else(|_| "1".into());
    println!(
        "Cases passed x starting offsets (0..160 step {}; espeak-ng row step 16 at least), exact keys expected:\n",
        step.trim()
    );
    print!("| row |");
    for (name, _) in &columns {
        print!(" {name} |");
    }
    println!("\n|---|{}", "---:|".repeat(columns.len()));
    let cell =
        |(p, t): (u64, u64)| format!("{p}/{t} ({:.1} %)", 100.0 * p as f64 / t.max(1) as f64);
    for (i, name) in names.iter().enumerate() {
        print!("| {name} |");
        for (_, s) in &columns {
            print!(" {} |", cell(s[i]));
        }
        println!();
    }
    print!("| **total** |");
    for (_, s) in &columns {
        let sum = s.iter().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        print!(" **{}** |", cell(sum));
    }
    println!();
}
