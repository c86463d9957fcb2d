//! The in-band DTMF detector as it was before issue 14 (commit 69c71c6), frozen here so the
//! benchmark can print the before/after scores on the same test set. Not used by the engine.
//!
//! In-band DTMF detection (ITU-T Q.23/Q.24 tones) with the Goertzel algorithm, for callers
//! whose equipment does not send RFC 4733 events.
//!
//! Samples are analysed in blocks of 205 (25.6 ms at 8 kHz, a bin spacing that separates all
//! eight DTMF frequencies). A block holds a key when exactly one row and one column tone
//! dominate their groups, together carry most of the block's energy, and their levels are
//! within the twist limits. A key is reported once, after two consecutive blocks agree
//! (about 50 ms, Q.24's minimum tone length is 40 ms), and may repeat only after a block
//! without it. The detector keeps fixed-size state: feeding it never allocates.

use ivr_audio::Digit;

/// Samples per analysis block.
const BLOCK: usize = 205;
const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[Digit; 4]; 4] = [
    [Digit::D1, Digit::D2, Digit::D3, Digit::A],
    [Digit::D4, Digit::D5, Digit::D6, Digit::B],
    [Digit::D7, Digit::D8, Digit::D9, Digit::C],
    [Digit::Star, Digit::D0, Digit::Pound, Digit::D],
];
/// Weakest tone accepted, as Goertzel power per block (about -30 dBm0 per tone).
const MIN_POWER: f32 = 2.0e9;
/// The strongest tone of a group must beat the others of its group by this factor (8 dB).
const GROUP_MARGIN: f32 = 6.3;
/// Normal twist (column louder than row) up to 8 dB; reverse twist up to 4 dB.
const MAX_NORMAL_TWIST: f32 = 6.3;
const MAX_REVERSE_TWIST: f32 = 2.5;
/// The two tones must carry at least this share of the block's energy.
const MIN_SHARE: f32 = 0.6;

/// Streaming DTMF detector.
#[derive(Debug, Clone)]
pub struct DtmfDetector {
    coeffs: [f32; 8],
    block: [f32; BLOCK],
    fill: usize,
    /// The key seen in the previous block, if any.
    last: Option<Digit>,
    /// The key already reported for the current press.
    reported: Option<Digit>,
}

impl Default for DtmfDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl DtmfDetector {
    /// A detector for 8 kHz audio.
    pub fn new() -> DtmfDetector {
        let mut coeffs = [0.0; 8];
        for (i, f) in ROWS.iter().chain(COLS.iter()).enumerate() {
            coeffs[i] = 2.0 * (std::f32::consts::TAU * f / ivr_audio::SAMPLE_RATE as f32).cos();
        }
        DtmfDetector {
            coeffs,
            block: [0.0; BLOCK],
            fill: 0,
            last: None,
            reported: None,
        }
    }

    /// Feed samples; `on_key` is called for each new key press found.
    pub fn feed(&mut self, samples: &[i16], mut on_key: impl FnMut(Digit)) {
        for &s in samples {
            self.block[self.fill] = s as f32;
            self.fill += 1;
            if self.fill == BLOCK {
                self.fill = 0;
                let seen = self.analyse();
                if seen.is_some() && seen == self.last && self.reported != seen {
                    self.reported = seen;
                    if let Some(d) = seen {
                        on_key(d);
                    }
                }
                if seen.is_none() && self.last.is_none() {
                    // two quiet blocks end the press, so the same key can be pressed again
                    self.reported = None;
                }
                self.last = seen;
            }
        }
    }

    /// The key held during the current block, if any.
    fn analyse(&self) -> Option<Digit> {
        let mut power = [0f32; 8];
        for (p, c) in power.iter_mut().zip(self.coeffs) {
            let (mut s1, mut s2) = (0f32, 0f32);
            for &x in &self.block {
                let s0 = x + c * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            *p = s1 * s1 + s2 * s2 - c * s1 * s2;
        }
        let (row, row_p) = strongest(&power[..4])?;
        let (col, col_p) = strongest(&power[4..])?;
        if row_p < MIN_POWER || col_p < MIN_POWER {
            return None;
        }
        if col_p > row_p * MAX_NORMAL_TWIST || row_p > col_p * MAX_REVERSE_TWIST {
            return None;
        }
        // Energy of the block, scaled like Goertzel power (N/2 times the sum of squares).
        let energy: f32 = self.block.iter().map(|x| x * x).sum::<f32>() * BLOCK as f32 / 2.0;
        if row_p + col_p < MIN_SHARE * energy {
            return None;
        }
        Some(KEYS[row][col])
    }
}

/// The index and power of the strongest of four tones, if it clearly dominates the others.
fn strongest(p: &[f32]) -> Option<(usize, f32)> {
    let (i, &max) = p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
    let dominant = p
        .iter()
        .enumerate()
        .all(|(j, &x)| j == i || x * GROUP_MARGIN < max);
    dominant.then_some((i, max))
}
