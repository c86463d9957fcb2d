//! Conversion of prompt audio to 8 kHz mono, done once at load.
//!
//! A windowed-sinc low-pass interpolator: for each output sample it sums the input
//! around the corresponding position, weighted by a Blackman-windowed sinc whose cutoff
//! is the lower of the two Nyquist frequencies. Prompt loading is not a hot path, so
//! clarity wins over speed here.

use std::f64::consts::PI;

/// Half-width of the filter, in input samples at the lower rate.
const HALF_TAPS: f64 = 16.0;

/// Resample `input` (at `from_rate` Hz) to `to_rate` Hz.
pub fn resample(input: &[i16], from_rate: u32, to_rate: u32) -> Vec<i16> {
    if from_rate == to_rate || input.is_empty() {
        return input.to_vec();
    }
    let ratio = to_rate as f64 / from_rate as f64;
    let cutoff = ratio.min(1.0) * 0.95; // fraction of the input Nyquist
    let half_width = HALF_TAPS / cutoff; // in input samples
    let out_len = ((input.len() as f64) * ratio).round() as usize;
    let mut out = Vec::with_capacity(out_len);
    for n in 0..out_len {
        let center = n as f64 / ratio;
        let lo = ((center - half_width).ceil() as i64).max(0);
        let hi = ((center + half_width).floor() as i64).min(input.len() as i64 - 1);
        let mut acc = 0.0;
        for k in lo..=hi {
            let x = k as f64 - center;
            let w = blackman(x / half_width);
            acc += input[k as usize] as f64 * cutoff * sinc(x * cutoff) * w;
        }
        out.push(acc.round().clamp(i16::MIN as f64, i16::MAX as f64) as i16);
    }
    out
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-9 {
        1.0
    } else {
        (PI * x).sin() / (PI * x)
    }
}

/// Blackman window on t in [-1, 1].
fn blackman(t: f64) -> f64 {
    if t.abs() > 1.0 {
        return 0.0;
    }
    let p = PI * (t + 1.0); // 0..2π
    0.42 - 0.5 * p.cos() + 0.08 * (2.0 * p).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tone;

    fn rms(s: &[i16]) -> f64 {
        (s.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / s.len() as f64).sqrt()
    }

    #[test]
    fn keeps_in_band_tone_and_length() {
        let input = tone::sine(16000, 1000.0, 8000, 10000.0);
        let out = resample(&input, 16000, 8000);
        assert_eq!(out.len(), 4000);
        let expected = tone::sine(8000, 1000.0, 4000, 10000.0);
        // compare the middle, away from the edges
        let a = &out[200..3800];
        let r = rms(a);
        assert!((r - rms(&expected[200..3800])).abs() < 200.0, "rms {r}");
    }

    #[test]
    fn removes_tone_above_new_nyquist() {
        let input = tone::sine(48000, 6000.0, 48000, 10000.0);
        let out = resample(&input, 48000, 8000);
        assert_eq!(out.len(), 8000);
        assert!(
            rms(&out[100..7900]) < 150.0,
            "aliased energy {}",
            rms(&out[100..7900])
        );
    }
}
