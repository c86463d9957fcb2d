//! Tone generators: beeps, DTMF pairs (for tests and in-band signalling), silence.

use crate::Digit;
use std::f64::consts::TAU;

/// `len` samples of a sine at `freq` Hz with peak `amplitude`, at `rate` Hz.
pub fn sine(rate: u32, freq: f64, len: usize, amplitude: f64) -> Vec<i16> {
    (0..len)
        .map(|n| (amplitude * (TAU * freq * n as f64 / rate as f64).sin()).round() as i16)
        .collect()
}

/// The two-frequency DTMF tone for `digit` (ITU-T Q.23), each component at `amplitude`.
pub fn dtmf(digit: Digit, rate: u32, len: usize, amplitude: f64) -> Vec<i16> {
    let (lo, hi) = digit.frequencies();
    (0..len)
        .map(|n| {
            let t = n as f64 / rate as f64;
            (amplitude * ((TAU * lo as f64 * t).sin() + (TAU * hi as f64 * t).sin())).round() as i16
        })
        .collect()
}

/// The engine's record beep: 1 kHz for 250 ms at 8 kHz with 5 ms ramps (no clicks).
pub fn beep() -> Vec<i16> {
    let mut s = sine(8000, 1000.0, 2000, 8000.0);
    let ramp = 40;
    for i in 0..ramp {
        let g = i as f64 / ramp as f64;
        s[i] = (s[i] as f64 * g) as i16;
        let j = s.len() - 1 - i;
        s[j] = (s[j] as f64 * g) as i16;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_has_expected_peak_and_period() {
        let s = sine(8000, 1000.0, 8, 1000.0);
        assert_eq!(s[0], 0);
        assert_eq!(s[2], 1000);
        assert_eq!(s[6], -1000);
    }

    #[test]
    fn beep_starts_and_ends_quietly() {
        let b = beep();
        assert_eq!(b.len(), 2000);
        assert!(b[0].abs() < 10 && b[1999].abs() < 300);
        assert!(b.iter().map(|x| x.abs()).max().unwrap() > 7000);
    }

    #[test]
    fn dtmf_peak_is_sum_of_components() {
        let s = dtmf(Digit::D5, 8000, 800, 4000.0);
        let peak = s.iter().map(|x| x.unsigned_abs()).max().unwrap();
        assert!(peak > 6000 && peak <= 8000, "peak {peak}");
    }
}
