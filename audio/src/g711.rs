//! G.711 µ-law and A-law companding (ITU-T G.711).
//!
//! Decoding uses 256-entry tables built at compile time; encoding uses the classic
//! segment search. Both are exact inverses on every code except the two µ-law zeros
//! (0x7F and 0xFF both decode to 0), which is checked in the tests below.

/// A G.711 variant, named as in the RTP/AVP profile (RFC 3551 §4.5.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// µ-law, static payload type 0.
    Pcmu,
    /// A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// The static RTP payload type (RFC 3551 table 4).
    pub const fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The encoding name used in SDP `a=rtpmap`.
    pub const fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The codec with this static payload type, if any.
    pub const fn from_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// Encode one linear sample.
    #[inline]
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Codec::Pcmu => ulaw_encode(sample),
            Codec::Pcma => alaw_encode(sample),
        }
    }

    /// Decode one code to a linear sample.
    #[inline]
    pub fn decode(self, code: u8) -> i16 {
        match self {
            Codec::Pcmu => ulaw_decode(code),
            Codec::Pcma => alaw_decode(code),
        }
    }

    /// The code for digital silence.
    pub const fn silence(self) -> u8 {
        match self {
            Codec::Pcmu => 0xFF,
            Codec::Pcma => 0xD5,
        }
    }
}

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

const fn ulaw_decode_const(code: u8) -> i16 {
    let u = !code;
    let sign = u & 0x80;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if sign != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_decode_const(code: u8) -> i16 {
    let a = code ^ 0x55;
    let sign = a & 0x80;
    let exponent = ((a >> 4) & 0x07) as i32;
    let mantissa = (a & 0x0F) as i32;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    if sign != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn build_table(alaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if alaw {
            alaw_decode_const(i as u8)
        } else {
            ulaw_decode_const(i as u8)
        };
        i += 1;
    }
    table
}

static ULAW_TABLE: [i16; 256] = build_table(false);
static ALAW_TABLE: [i16; 256] = build_table(true);

/// Decode a µ-law code.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_TABLE[code as usize]
}

/// Decode an A-law code.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_TABLE[code as usize]
}

/// Encode a linear sample to µ-law.
pub fn ulaw_encode(sample: i16) -> u8 {
    let mut s = sample as i32;
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    if s > ULAW_CLIP {
        s = ULAW_CLIP;
    }
    s += ULAW_BIAS;
    let exponent = segment(s >> 7);
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// Encode a linear sample to A-law.
pub fn alaw_encode(sample: i16) -> u8 {
    let s = sample as i32;
    let (sign, magnitude) = if s >= 0 { (0x80u8, s) } else { (0, -s - 1) };
    let magnitude = magnitude.min(0x7FFF);
    let code = if magnitude < 256 {
        (magnitude >> 4) as u8
    } else {
        let exponent = segment(magnitude >> 8) + 1;
        let mantissa = (magnitude >> (exponent + 3)) & 0x0F;
        ((exponent << 4) as u8) | mantissa as u8
    };
    (sign | code) ^ 0x55
}

/// Index of the highest set bit of `v` among its low 8 bits (0 when `v` is 0).
#[inline]
fn segment(v: i32) -> i32 {
    let v = v & 0xFF;
    if v == 0 {
        0
    } else {
        31 - v.leading_zeros() as i32
    }
}

/// Encode a slice of samples into `out` (same length).
pub fn encode_into(codec: Codec, samples: &[i16], out: &mut [u8]) {
    for (o, s) in out.iter_mut().zip(samples) {
        *o = codec.encode(*s);
    }
}

/// Decode a slice of codes into `out` (same length).
pub fn decode_into(codec: Codec, codes: &[u8], out: &mut [i16]) {
    for (o, c) in out.iter_mut().zip(codes) {
        *o = codec.decode(*c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_code_round_trips() {
        for codec in [Codec::Pcmu, Codec::Pcma] {
            for code in 0..=255u8 {
                let linear = codec.decode(code);
                let back = codec.encode(linear);
                if codec == Codec::Pcmu && code == 0x7F {
                    // µ-law has two zeros: negative zero re-encodes as positive zero.
                    assert_eq!(back, 0xFF);
                } else {
                    assert_eq!(back, code, "{codec:?} code {code:#04x} -> {linear}");
                }
            }
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(alaw_encode(0), 0xD5);
    }

    #[test]
    fn decode_is_monotonic_in_magnitude() {
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let mut values: Vec<i16> = (0..=255u8).map(|c| codec.decode(c)).collect();
            values.sort_unstable();
            values.dedup();
            assert!(
                values.len() >= 255,
                "{codec:?}: {} distinct levels",
                values.len()
            );
        }
    }

    proptest! {
        #[test]
        fn quantisation_error_is_bounded(sample in any::<i16>()) {
            for codec in [Codec::Pcmu, Codec::Pcma] {
                let back = codec.decode(codec.encode(sample)) as i32;
                let s = (sample as i32).clamp(-32124, 32256);
                let err = (back - s).abs();
                // Worst-case step in the top segment is 1024 (µ-law) / 1024 (A-law); half a step plus clipping.
                let allowed = (s.abs() / 16).max(16) + 8;
                prop_assert!(err <= allowed, "{:?} {} -> {} (err {})", codec, sample, back, err);
            }
        }
    }
}
