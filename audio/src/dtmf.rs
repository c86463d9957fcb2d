//! In-band DTMF detection (ITU-T Q.23 tones, the Q.24 receiver limits as spandsp, Asterisk
//! and libteletone quote them), for callers whose equipment does not send RFC 4733 events.
//!
//! The detector looks at overlapping windows of [`WINDOW`] samples (12.75 ms, the block
//! length spandsp uses: its bins separate the eight DTMF frequencies), one every [`HOP`]
//! samples. For each window it measures the eight frequencies with the Goertzel algorithm,
//! keeping the phase. A window holds a key when
//! - one row and one column tone stand out in their groups (relative peak),
//! - each is at least about −30 dBm0,
//! - their twist is within the limits (low group louder by up to 8 dB, "normal"; high group
//!   louder by up to 4 dB, "reverse"; the detector allows 1.5 dB more of each),
//! - together they carry most of the window's energy (energy ratio), and
//! - the column tone's second harmonic is weak (speech has harmonics, a keypad does not;
//!   the row harmonics fall between column frequencies, where the column tone itself leaks,
//!   so they are not judged).
//!
//! A key is reported once [`RUN`] windows in a row hold it (a tone of about 30 ms: 40 ms
//! always makes it, 20 ms never does, at any alignment), the phase advance between those
//! windows puts both tones within 2 % of their nominal frequency (Q.24: accept ±1.5 %,
//! reject ±3.5 %), and over the run the two tones, corrected for the bins' loss at that
//! frequency error, carry 85 % of the energy and keep the twist limits. The same key counts
//! again only after [`RELEASE`] windows without it.
//!
//! The detector keeps fixed-size state: feeding it never allocates.

use crate::Digit;

/// Samples per analysis window (12.75 ms at 8 kHz).
pub const WINDOW: usize = 102;
/// Samples between the starts of two windows (4.25 ms): windows overlap by two thirds.
pub const HOP: usize = 34;
/// Consecutive windows that must hold the same key before it is reported.
pub const RUN: u8 = 5;
/// Consecutive windows without the key that end a press.
pub const RELEASE: u8 = 2;

const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[Digit; 4]; 4] = [
    [Digit::D1, Digit::D2, Digit::D3, Digit::A],
    [Digit::D4, Digit::D5, Digit::D6, Digit::B],
    [Digit::D7, Digit::D8, Digit::D9, Digit::C],
    [Digit::Star, Digit::D0, Digit::Pound, Digit::D],
];

/// The peak amplitude of a 0 dBm0 sine in 16-bit linear samples (G.711's full scale is
/// +3.14 dBm0, as spandsp counts it).
pub const DBM0_PEAK: f64 = 22_741.0;

/// Goertzel power of a full-window sine at `dbm0`, samples scaled to ±1.
const fn tone_power(amplitude: f32) -> f32 {
    let half = amplitude * WINDOW as f32 / 2.0;
    half * half
}
/// −30 dBm0: 4 dB below the weakest level that must be accepted, for the loss of a tone off
/// by 1.5 % and of a window the tone covers only in part.
const MIN_POWER: f32 = tone_power(0.022);
/// The strongest tone of a group must beat the others of its group by this factor (6 dB; a
/// strong row tone leaking into the column bins leaves less room than spandsp's 8 dB).
const RELATIVE_PEAK: f32 = 4.0;
/// Low group louder than the high group by up to 9.5 dB (8 dB must pass), judged on the
/// powers summed over a run of windows.
const MAX_NORMAL_TWIST: f32 = 8.9;
/// High group louder than the low group by up to 5.5 dB (4 dB must pass), likewise.
const MAX_REVERSE_TWIST: f32 = 3.55;
/// A single window may show 2 dB more twist either way: the strong tone's sidelobes add to
/// or take from the weak one's bin by up to about 1.5 dB, a sum over windows averages it out.
const WINDOW_TWIST_SLACK: f32 = 1.6;
/// The two tones must carry this share of the window's energy.
const MIN_SHARE: f32 = 0.7;
/// Over a whole run, the two tones, their power corrected for the bins' loss at the measured
/// frequency error, must carry this share of the energy. A tone pair 1.5 % off keeps over
/// 90 % in quiet and 87 % at S/N 15 dB; vowels of a high synthetic voice whose harmonics
/// sit near a row and a column reach 80 to 83 %.
const MIN_RUN_SHARE: f32 = 0.85;
/// A column tone's second harmonic must be this far below it (12 dB).
const HARMONIC_RATIO: f32 = 16.0;
/// Largest accepted frequency error of either tone, relative to its nominal frequency: 1.5 %
/// must pass, and the phase measures it within 0.4 % even beside a tone 8 dB louder.
const MAX_DEVIATION: f32 = 0.02;

/// A complex number, just enough for Goertzel outputs and phase products.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Complex {
    re: f32,
    im: f32,
}

impl Complex {
    fn norm(self) -> f32 {
        self.re * self.re + self.im * self.im
    }

    /// `self · conj(other)`: its angle is the phase advance from `other` to `self`.
    fn times_conj(self, other: Complex) -> Complex {
        Complex {
            re: self.re * other.re + self.im * other.im,
            im: self.im * other.re - self.re * other.im,
        }
    }

    fn add(self, other: Complex) -> Complex {
        Complex {
            re: self.re + other.re,
            im: self.im + other.im,
        }
    }
}

/// What one window holds: a key's row and column, and their Goertzel outputs.
#[derive(Debug, Clone, Copy)]
struct Hit {
    row: usize,
    col: usize,
    tones: [Complex; 2],
    /// The window's energy, scaled like Goertzel power.
    energy: f32,
}

/// Consecutive windows holding the same key.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    key: Option<(usize, usize)>,
    windows: u8,
    /// The previous window's Goertzel outputs for the row and the column.
    last: [Complex; 2],
    /// Sums of `this · conj(previous)` over the run, for the row and the column.
    advance: [Complex; 2],
    /// Sums of the row's and the column's power over the run.
    power: [f32; 2],
    /// Sum of the windows' energy over the run.
    energy: f32,
}

/// Streaming DTMF detector for 8 kHz audio.
#[derive(Debug, Clone)]
pub struct DtmfDetector {
    /// `2 cos ω` and `sin ω` for the eight tones, then the four column harmonics.
    coeffs: [(f32, f32); 12],
    /// The last [`WINDOW`] samples, scaled to ±1; `pos` is the oldest.
    ring: [f32; WINDOW],
    pos: usize,
    /// Samples received, saturating at [`WINDOW`] (the first window needs a full ring).
    seen: usize,
    /// Samples since the last analysis.
    since: usize,
    run: Run,
    /// The key of the current press, once reported.
    held: Option<(usize, usize)>,
    /// Windows in a row without the held key.
    misses: u8,
}

impl Default for DtmfDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl DtmfDetector {
    /// A detector for 8 kHz audio.
    pub fn new() -> DtmfDetector {
        let mut coeffs = [(0.0, 0.0); 12];
        let harmonics = COLS.map(|f| 2.0 * f);
        for (c, f) in coeffs
            .iter_mut()
            .zip(ROWS.iter().chain(&COLS).chain(&harmonics))
        {
            let w = omega(*f);
            *c = (2.0 * w.cos(), w.sin());
        }
        DtmfDetector {
            coeffs,
            ring: [0.0; WINDOW],
            pos: 0,
            seen: 0,
            since: 0,
            run: Run::default(),
            held: None,
            misses: 0,
        }
    }

    /// Feed samples; `on_key` is called for each new key press found.
    pub fn feed(&mut self, samples: &[i16], mut on_key: impl FnMut(Digit)) {
        for &s in samples {
            self.ring[self.pos] = f32::from(s) / 32768.0;
            self.pos = (self.pos + 1) % WINDOW;
            self.seen = (self.seen + 1).min(WINDOW);
            self.since += 1;
            if self.seen == WINDOW && self.since >= HOP {
                self.since = 0;
                if let Some(d) = self.step() {
                    on_key(d);
                }
            }
        }
    }

    /// Analyse the current window and advance the press logic; a newly found key comes out.
    fn step(&mut self) -> Option<Digit> {
        let hit = self.analyse();
        let key = hit.map(|h| (h.row, h.col));
        match hit {
            Some(h) if self.run.key == key => {
                for i in 0..2 {
                    let step = h.tones[i].times_conj(self.run.last[i]);
                    self.run.advance[i] = self.run.advance[i].add(step);
                    self.run.power[i] += h.tones[i].norm();
                }
                self.run.energy += h.energy;
                self.run.last = h.tones;
                self.run.windows = self.run.windows.saturating_add(1);
            }
            Some(h) => {
                self.run = Run {
                    key,
                    windows: 1,
                    last: h.tones,
                    advance: [Complex::default(); 2],
                    power: h.tones.map(Complex::norm),
                    energy: h.energy,
                };
            }
            None => self.run = Run::default(),
        }
        if self.held.is_some() && key != self.held {
            self.misses += 1;
            if self.misses >= RELEASE {
                self.held = None;
            }
        } else {
            self.misses = 0;
        }
        let (row, col) = self.run.key?;
        if self.run.windows < RUN || self.held == self.run.key {
            return None;
        }
        let errors = [
            deviation(self.run.advance[0], ROWS[row]),
            deviation(self.run.advance[1], COLS[col]),
        ];
        let on_frequency = errors.iter().all(|e| e.abs() <= MAX_DEVIATION);
        // Each tone's power as a bin at its true frequency would have measured it.
        let [row_p, col_p] = self.run.power;
        let row_p = row_p / bin_response(errors[0] * omega(ROWS[row]));
        let col_p = col_p / bin_response(errors[1] * omega(COLS[col]));
        let twist_ok = row_p <= col_p * MAX_NORMAL_TWIST && col_p <= row_p * MAX_REVERSE_TWIST;
        let pure = row_p + col_p >= MIN_RUN_SHARE * self.run.energy;
        if !on_frequency || !twist_ok || !pure {
            return None;
        }
        self.held = self.run.key;
        self.misses = 0;
        Some(KEYS[row][col])
    }

    /// The key the current window holds, if any, with its tones' Goertzel outputs.
    fn analyse(&self) -> Option<Hit> {
        // Energy of the window, scaled like Goertzel power (N/2 times the sum of squares).
        let energy = self.ring.iter().map(|x| x * x).sum::<f32>() * WINDOW as f32 / 2.0;
        // No tone's power exceeds twice this (Cauchy-Schwarz): quiet windows end here.
        if 2.0 * energy < MIN_POWER {
            return None;
        }
        let mut out = [Complex::default(); 8];
        for (o, &c) in out.iter_mut().zip(&self.coeffs[..8]) {
            *o = self.goertzel(c);
        }
        let power = out.map(Complex::norm);
        let row = dominant(&power[..4])?;
        let col = dominant(&power[4..])?;
        let (row_p, col_p) = (power[row], power[4 + col]);
        if row_p < MIN_POWER || col_p < MIN_POWER {
            return None;
        }
        if row_p > col_p * MAX_NORMAL_TWIST * WINDOW_TWIST_SLACK
            || col_p > row_p * MAX_REVERSE_TWIST * WINDOW_TWIST_SLACK
        {
            return None;
        }
        if row_p + col_p < MIN_SHARE * energy {
            return None;
        }
        if self.goertzel(self.coeffs[8 + col]).norm() * HARMONIC_RATIO > col_p {
            return None;
        }
        Some(Hit {
            row,
            col,
            tones: [out[row], out[4 + col]],
            energy,
        })
    }

    /// The Goertzel output for one frequency over the window, oldest sample first. Its phase
    /// is that of the window's DFT at the frequency, up to a rotation the same for every
    /// window, so the phase difference of two windows measures the tone's frequency.
    fn goertzel(&self, (two_cos, sin): (f32, f32)) -> Complex {
        let (mut s1, mut s2) = (0f32, 0f32);
        let (old, new) = self.ring.split_at(self.pos);
        for &x in new.iter().chain(old) {
            let s0 = x + two_cos * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        Complex {
            re: s1 - two_cos / 2.0 * s2,
            im: sin * s2,
        }
    }
}

/// The angular frequency of `hz` in radians per sample.
fn omega(hz: f32) -> f32 {
    std::f32::consts::TAU * hz / crate::SAMPLE_RATE as f32
}

/// A tone's frequency error relative to `nominal`, from the summed phase advance between
/// windows [`HOP`] samples apart (a tone at ω + δ advances by (ω + δ)·HOP). The advance is
/// unambiguous within ±π/HOP (±118 Hz), beyond any error this detector accepts.
fn deviation(advance: Complex, nominal: f32) -> f32 {
    let w = omega(nominal);
    let expected = w * HOP as f32;
    let measured = advance.im.atan2(advance.re);
    let mut d = (measured - expected) % std::f32::consts::TAU;
    if d > std::f32::consts::PI {
        d -= std::f32::consts::TAU;
    } else if d < -std::f32::consts::PI {
        d += std::f32::consts::TAU;
    }
    d / HOP as f32 / w
}

/// The power response of a window's Goertzel bin to a tone `delta` radians per sample off
/// its frequency: `(sin(δN/2) / (N sin(δ/2)))²`, 1 on the frequency.
fn bin_response(delta: f32) -> f32 {
    let half = delta / 2.0;
    if half.abs() < 1e-6 {
        return 1.0;
    }
    let r = (half * WINDOW as f32).sin() / (WINDOW as f32 * half.sin());
    (r * r).max(0.05)
}

/// The index of the strongest of four tones, if it beats each other one by [`RELATIVE_PEAK`].
fn dominant(p: &[f32]) -> Option<usize> {
    let (i, &max) = p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
    let clear = p
        .iter()
        .enumerate()
        .all(|(j, &x)| j == i || x * RELATIVE_PEAK < max);
    clear.then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf_set::{self, Background, Tone};
    use crate::tone;
    use proptest::prelude::*;

    fn detect(samples: &[i16]) -> Vec<Digit> {
        let mut d = DtmfDetector::new();
        let mut keys = Vec::new();
        // feed in 20 ms frames, as RTP brings them
        for frame in samples.chunks(160) {
            d.feed(frame, |k| keys.push(k));
        }
        keys
    }

    fn pair(digit: Digit, ms: usize, low_amp: f64, high_amp: f64) -> Vec<i16> {
        let (lo, hi) = digit.frequencies();
        let n = ms * 8;
        let a = tone::sine(8000, lo as f64, n, low_amp);
        let b = tone::sine(8000, hi as f64, n, high_amp);
        a.iter()
            .zip(&b)
            .map(|(x, y)| x.saturating_add(*y))
            .collect()
    }

    fn silence(ms: usize) -> Vec<i16> {
        vec![0; ms * 8]
    }

    #[test]
    fn every_key_is_detected_once() {
        for d in Digit::ALL {
            let mut s = silence(40);
            s.extend(pair(d, 80, 6000.0, 6000.0));
            s.extend(silence(80));
            assert_eq!(detect(&s), vec![d], "{d}");
        }
    }

    #[test]
    fn repeated_presses_of_one_key_count_twice() {
        let mut s = pair(Digit::D5, 80, 6000.0, 6000.0);
        s.extend(silence(80));
        s.extend(pair(Digit::D5, 80, 6000.0, 6000.0));
        s.extend(silence(60));
        assert_eq!(detect(&s), vec![Digit::D5, Digit::D5]);
    }

    #[test]
    fn single_tones_speech_like_chords_and_too_short_tones_are_not_keys() {
        assert!(
            detect(&tone::sine(8000, 770.0, 4000, 8000.0)).is_empty(),
            "one tone"
        );
        assert!(
            detect(&tone::sine(8000, 1000.0, 4000, 8000.0)).is_empty(),
            "a beep"
        );
        assert!(detect(&tone::beep()).is_empty(), "the record beep");
        // three strong tones at once: no single row dominates
        let a = pair(Digit::D1, 300, 5000.0, 5000.0);
        let c = tone::sine(8000, 770.0, a.len(), 5000.0);
        let chord: Vec<i16> = a
            .iter()
            .zip(&c)
            .map(|(x, y)| x.saturating_add(*y))
            .collect();
        assert!(detect(&chord).is_empty(), "chord");
        let mut short = silence(40);
        short.extend(pair(Digit::D7, 20, 6000.0, 6000.0));
        short.extend(silence(100));
        assert!(detect(&short).is_empty(), "20 ms tone");
    }

    #[test]
    fn a_key_changing_without_a_gap_counts_both() {
        let mut s = pair(Digit::D1, 60, 6000.0, 6000.0);
        s.extend(pair(Digit::D9, 60, 6000.0, 6000.0));
        s.extend(silence(60));
        assert_eq!(detect(&s), vec![Digit::D1, Digit::D9]);
    }

    #[test]
    fn deviation_is_measured_from_the_phase_advance() {
        for f in [697.0f32, 941.0, 1209.0, 1633.0] {
            for rel in [-0.035f32, -0.015, 0.0, 0.015, 0.035] {
                let s = tone::sine(8000, f64::from(f * (1.0 + rel)), 800, 8000.0);
                let mut d = DtmfDetector::new();
                let i = ROWS.iter().chain(&COLS).position(|x| *x == f).unwrap();
                let mut advance = Complex::default();
                let mut last = None;
                for chunk in s.chunks(HOP) {
                    d.feed(chunk, |_| {});
                    if d.seen == WINDOW && chunk.len() == HOP {
                        let y = d.goertzel(d.coeffs[i]);
                        if let Some(prev) = last {
                            advance = advance.add(y.times_conj(prev));
                        }
                        last = Some(y);
                    }
                }
                let measured = deviation(advance, f);
                assert!((measured - rel).abs() < 0.002, "{f} Hz {rel}: {measured}");
            }
        }
    }

    /// Every row of the generated receiver test set, fed in 20 ms frames from every starting
    /// offset within one frame (0..160 samples): the detector analyses every [`HOP`] samples,
    /// so these offsets cover every alignment of the tones with its windows several times.
    #[test]
    fn every_row_of_the_test_set_passes_at_every_offset() {
        let mut failures = Vec::new();
        let mut summary = String::new();
        for row in dtmf_set::rows() {
            let before = failures.len();
            for case in &row.cases {
                for offset in 0..160 {
                    let got = detect(&case.samples[offset..]);
                    if got != case.expected {
                        failures.push(format!(
                            "{} / {} at offset {offset}: got {:?}",
                            row.name,
                            case.label,
                            got.iter().map(|d| d.as_char()).collect::<String>()
                        ));
                    }
                }
            }
            let failed = failures.len() - before;
            summary.push_str(&format!(
                "{failed:6} of {:6} failed: {}\n",
                row.cases.len() * 160,
                row.name
            ));
        }
        assert!(
            failures.is_empty(),
            "{} failures:\n{summary}first ones:\n{}",
            failures.len(),
            failures[..failures.len().min(20)].join("\n")
        );
    }

    #[test]
    fn the_set_covers_every_row_of_the_specification() {
        let rows = dtmf_set::rows();
        assert!(rows.len() >= 14, "{} rows", rows.len());
        assert!(rows.iter().all(|r| !r.cases.is_empty()));
        assert!(rows.iter().any(|r| r.accept) && rows.iter().any(|r| !r.accept));
    }

    proptest! {
        #[test]
        fn keys_survive_g711_twist_and_noise(key in 0usize..16, twist_db in -4.0f64..8.0, level in -24.0f64..-5.0, snr in 15.0f64..40.0, ms in 40usize..120, seed in any::<u64>(), offset in 0usize..160) {
            let digit = Digit::ALL[key];
            // positive twist: the low group is louder (normal twist)
            let tone = Tone { low_dbm0: level + twist_db / 2.0, high_dbm0: level - twist_db / 2.0, ..Tone::new(digit, ms) };
            let case = dtmf_set::case("prop", &[tone], Background::Noise { snr_db: snr }, seed, crate::Codec::Pcmu);
            prop_assert_eq!(detect(&case.samples[offset..]), vec![digit]);
        }
    }
}
