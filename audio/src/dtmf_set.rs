//! A generated test set for in-band DTMF receivers, one row per line of the receiver
//! specification (ITU-T Q.24 as spandsp, Asterisk and libteletone quote it): tones made with
//! exact frequencies, levels, durations, twist and white noise, then sent through G.711 as a
//! call would carry them. The detector's tests, the spandsp comparison in `bench/` and the
//! black-box tests all use this one set.
//!
//! Levels are per tone, in dBm0 ([`crate::dtmf::DBM0_PEAK`]); twist is "normal" when the low
//! group is the louder one, "reverse" when the high group is. Signal-to-noise ratios compare
//! the power of the tone pair with that of white noise over the whole band.

use crate::dtmf::DBM0_PEAK;
use crate::{Codec, Digit, SAMPLE_RATE};
use std::f64::consts::TAU;

/// Milliseconds of background before the first tone (room to start at any offset).
pub const LEAD_MS: usize = 200;
/// Milliseconds of background after the last tone.
pub const TAIL_MS: usize = 100;

/// One tone pair of a case, followed by a gap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tone {
    /// The key whose frequencies are sent.
    pub digit: Digit,
    /// Tone length in ms.
    pub ms: usize,
    /// Low-group level in dBm0 (`f64::NEG_INFINITY` leaves it out).
    pub low_dbm0: f64,
    /// High-group level in dBm0 (`f64::NEG_INFINITY` leaves it out).
    pub high_dbm0: f64,
    /// Relative frequency error of the low tone (0.015 is 1.5 % high).
    pub low_shift: f64,
    /// Relative frequency error of the high tone.
    pub high_shift: f64,
    /// Background after the tone, in ms.
    pub gap_ms: usize,
}

impl Tone {
    /// `digit` for `ms` at −10 dBm0 per tone, exact frequencies, 60 ms gap after it.
    pub fn new(digit: Digit, ms: usize) -> Tone {
        Tone {
            digit,
            ms,
            low_dbm0: -10.0,
            high_dbm0: -10.0,
            low_shift: 0.0,
            high_shift: 0.0,
            gap_ms: 60,
        }
    }
}

/// What lies under and between the tones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Background {
    /// Digital silence.
    Silence,
    /// White Gaussian noise, `snr_db` below the power of the first tone pair.
    Noise {
        /// Signal-to-noise ratio in dB.
        snr_db: f64,
    },
}

/// One signal and what a receiver must find in it.
#[derive(Debug, Clone)]
pub struct Case {
    /// What the case is, e.g. `5 +1.5%/-1.5%`.
    pub label: String,
    /// 8 kHz samples after a G.711 round trip, starting with [`LEAD_MS`] of background.
    pub samples: Vec<i16>,
    /// The keys a receiver must report, in order (empty for a reject case).
    pub expected: Vec<Digit>,
}

/// One line of the specification and its cases.
#[derive(Debug, Clone)]
pub struct Row {
    /// The line, e.g. `accept: 40 ms tones`.
    pub name: &'static str,
    /// Whether the row's keys must be reported (true) or nothing may be (false).
    pub accept: bool,
    /// The signals.
    pub cases: Vec<Case>,
}

/// Peak amplitude of a sine at `dbm0`.
pub fn amplitude(dbm0: f64) -> f64 {
    DBM0_PEAK * 10f64.powf(dbm0 / 20.0)
}

/// Build one case: the tones one after the other over `background`, through `codec`.
/// `expected` is filled with the tones' keys; reject rows clear it.
pub fn case(label: &str, tones: &[Tone], background: Background, seed: u64, codec: Codec) -> Case {
    build(label, tones, background, &[], seed, codec)
}

/// [`case`] with `under` (e.g. an echoed prompt, already at its level) added to the signal
/// from the first sample on, before the G.711 round trip, as a line mixes them.
pub fn case_over(label: &str, tones: &[Tone], under: &[i16], seed: u64, codec: Codec) -> Case {
    build(label, tones, Background::Silence, under, seed, codec)
}

fn build(
    label: &str,
    tones: &[Tone],
    background: Background,
    under: &[i16],
    seed: u64,
    codec: Codec,
) -> Case {
    let rate = SAMPLE_RATE as usize / 1000;
    let total: usize = LEAD_MS + TAIL_MS + tones.iter().map(|t| t.ms + t.gap_ms).sum::<usize>();
    let mut signal = vec![0f64; total * rate];
    let mut rng = SplitMix(seed);
    let mut at = LEAD_MS * rate;
    for t in tones {
        let (lo, hi) = t.digit.frequencies();
        let parts = [
            (f64::from(lo) * (1.0 + t.low_shift), t.low_dbm0),
            (f64::from(hi) * (1.0 + t.high_shift), t.high_dbm0),
        ];
        for (freq, dbm0) in parts {
            let a = amplitude(dbm0);
            let phase = rng.unit() * TAU;
            for (n, s) in signal[at..at + t.ms * rate].iter_mut().enumerate() {
                *s += a * (TAU * freq * n as f64 / SAMPLE_RATE as f64 + phase).sin();
            }
        }
        at += (t.ms + t.gap_ms) * rate;
    }
    if let (Background::Noise { snr_db }, Some(t)) = (background, tones.first()) {
        let power = (amplitude(t.low_dbm0).powi(2) + amplitude(t.high_dbm0).powi(2)) / 2.0;
        let sigma = (power / 10f64.powf(snr_db / 10.0)).sqrt();
        for s in &mut signal {
            *s += sigma * rng.gaussian();
        }
    }
    for (s, u) in signal.iter_mut().zip(under) {
        *s += f64::from(*u);
    }
    let samples = signal
        .iter()
        .map(|s| codec.decode(codec.encode(s.round().clamp(-32768.0, 32767.0) as i16)))
        .collect();
    Case {
        label: label.to_string(),
        samples,
        expected: tones.iter().map(|t| t.digit).collect(),
    }
}

/// The whole set: every accept and reject row.
pub fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    let mut seed = 0x5eed_u64;
    // Cases alternate between µ-law and A-law.
    let mut make = |label: String, tones: &[Tone], bg: Background, accept: bool| {
        seed += 1;
        let codec = if seed.is_multiple_of(2) {
            Codec::Pcmu
        } else {
            Codec::Pcma
        };
        let mut c = case(&label, tones, bg, seed, codec);
        if !accept {
            c.expected.clear();
        }
        c
    };
    let mut per_key =
        |name: &'static str, accept: bool, bg: Background, f: &dyn Fn(Tone) -> Tone| {
            let cases = Digit::ALL
                .iter()
                .map(|&d| make(d.to_string(), &[f(Tone::new(d, 40))], bg, accept))
                .collect();
            Row {
                name,
                accept,
                cases,
            }
        };
    let quiet = Background::Silence;
    rows.push(per_key("accept: 50 ms, -10 dBm0", true, quiet, &|t| Tone {
        ms: 50,
        ..t
    }));
    rows.push(per_key("accept: 40 ms, -10 dBm0", true, quiet, &|t| t));
    rows.push(per_key("accept: 40 ms, -26 dBm0", true, quiet, &|t| Tone {
        low_dbm0: -26.0,
        high_dbm0: -26.0,
        ..t
    }));
    rows.push(per_key("accept: 40 ms, -3 dBm0", true, quiet, &|t| Tone {
        low_dbm0: -3.0,
        high_dbm0: -3.0,
        ..t
    }));
    rows.push(per_key(
        "accept: 40 ms, normal twist 8 dB (low -6, high -14 dBm0)",
        true,
        quiet,
        &|t| Tone {
            low_dbm0: -6.0,
            high_dbm0: -14.0,
            ..t
        },
    ));
    rows.push(per_key(
        "accept: 40 ms, reverse twist 4 dB (low -12, high -8 dBm0)",
        true,
        quiet,
        &|t| Tone {
            low_dbm0: -12.0,
            high_dbm0: -8.0,
            ..t
        },
    ));
    rows.push(per_key(
        "accept: 40 ms, -10 dBm0, S/N 15 dB",
        true,
        Background::Noise { snr_db: 15.0 },
        &|t| t,
    ));
    rows.push(per_key(
        "accept: 40 ms, -20 dBm0, S/N 15 dB",
        true,
        Background::Noise { snr_db: 15.0 },
        &|t| Tone {
            low_dbm0: -20.0,
            high_dbm0: -20.0,
            ..t
        },
    ));
    rows.push(per_key("reject: 20 ms", false, quiet, &|t| Tone {
        ms: 20,
        ..t
    }));
    rows.push(per_key(
        "reject: 100 ms, normal twist 12 dB (low -4, high -16 dBm0)",
        false,
        quiet,
        &|t| Tone {
            ms: 100,
            low_dbm0: -4.0,
            high_dbm0: -16.0,
            ..t
        },
    ));
    rows.push(per_key(
        "reject: 100 ms, reverse twist 8 dB (low -14, high -6 dBm0)",
        false,
        quiet,
        &|t| Tone {
            ms: 100,
            low_dbm0: -14.0,
            high_dbm0: -6.0,
            ..t
        },
    ));

    let mut shifted = |name: &'static str, accept: bool, ms: usize, shifts: &[(f64, f64)]| {
        let mut cases = Vec::new();
        for &d in &Digit::ALL {
            for &(lo, hi) in shifts {
                let t = Tone {
                    low_shift: lo,
                    high_shift: hi,
                    ..Tone::new(d, ms)
                };
                let label = format!("{d} {:+.1}%/{:+.1}%", lo * 100.0, hi * 100.0);
                cases.push(make(label, &[t], quiet, accept));
            }
        }
        Row {
            name,
            accept,
            cases,
        }
    };
    let p = 0.015;
    rows.push(shifted(
        "accept: 40 ms, both tones 1.5 % off",
        true,
        40,
        &[(p, p), (p, -p), (-p, p), (-p, -p)],
    ));
    let r = 0.035;
    rows.push(shifted(
        "reject: 100 ms, one tone 3.5 % off",
        false,
        100,
        &[(r, 0.0), (-r, 0.0), (0.0, r), (0.0, -r)],
    ));

    let mut single = Vec::new();
    for (d, low) in [
        (Digit::D1, true),
        (Digit::D4, true),
        (Digit::D7, true),
        (Digit::Star, true),
        (Digit::D1, false),
        (Digit::D2, false),
        (Digit::D3, false),
        (Digit::A, false),
    ] {
        let mut t = Tone::new(d, 200);
        let hz = if low {
            t.high_dbm0 = f64::NEG_INFINITY;
            d.frequencies().0
        } else {
            t.low_dbm0 = f64::NEG_INFINITY;
            d.frequencies().1
        };
        single.push(make(format!("{hz} Hz"), &[t], quiet, false));
    }
    rows.push(Row {
        name: "reject: a single tone, 200 ms",
        accept: false,
        cases: single,
    });

    let sequence = |keys: &str, on: usize, off: usize| -> Vec<Tone> {
        keys.chars()
            .filter_map(Digit::from_char)
            .map(|d| Tone {
                gap_ms: off,
                ..Tone::new(d, on)
            })
            .collect()
    };
    let mut seqs = Vec::new();
    for (keys, on, off) in [
        ("0123456789", 50, 50),
        ("123", 40, 40),
        ("147*2580369#ABCD", 40, 40),
        ("5555", 40, 40),
    ] {
        seqs.push(make(
            format!("{keys} at {on}/{off} ms"),
            &sequence(keys, on, off),
            quiet,
            true,
        ));
    }
    rows.push(Row {
        name: "accept: 10 keys per second (50/50 and 40/40 ms)",
        accept: true,
        cases: seqs,
    });
    rows
}

/// SplitMix64: a small, seeded generator so the set is the same on every run.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn gaussian(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (TAU * v).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_noise_are_as_asked() {
        // -10 dBm0 per tone: each tone's power is a²/2
        let c = case(
            "x",
            &[Tone {
                ms: 1000,
                ..Tone::new(Digit::D5, 1000)
            }],
            Background::Noise { snr_db: 15.0 },
            1,
            Codec::Pcmu,
        );
        let tone = &c.samples[LEAD_MS * 8..(LEAD_MS + 1000) * 8];
        let noise = &c.samples[..LEAD_MS * 8];
        let power =
            |s: &[i16]| s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len() as f64;
        let pair = 2.0 * amplitude(-10.0).powi(2) / 2.0;
        let db = |x: f64| 10.0 * x.log10();
        assert!((db(power(tone)) - db(pair)).abs() < 0.3);
        assert!((db(pair) - db(power(noise)) - 15.0).abs() < 0.5);
        assert_eq!(c.expected, vec![Digit::D5]);
    }
}
