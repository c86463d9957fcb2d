//! A strict reader for the WAV files prompts come in, and a writer for tests and tools.
//!
//! Accepted: RIFF/WAVE with a `fmt ` chunk of format 1 (16-bit PCM), 6 (A-law) or
//! 7 (µ-law), 1 or 2 channels, 8 to 48 kHz. Stereo is mixed down to mono. Anything
//! else is a [`WavError`] that says what was found.

/// Decoded audio: mono samples at their original rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcm {
    /// Sample rate in Hz.
    pub rate: u32,
    /// Mono samples.
    pub samples: Vec<i16>,
}

/// Why a WAV file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WavError {
    /// Not a RIFF/WAVE file.
    #[error("not a WAV file (no RIFF/WAVE header)")]
    NotWav,
    /// A chunk runs past the end of the file.
    #[error("truncated {0} chunk")]
    Truncated(&'static str),
    /// No `fmt ` chunk before the data.
    #[error("no fmt chunk")]
    NoFormat,
    /// No `data` chunk.
    #[error("no data chunk")]
    NoData,
    /// An encoding other than 16-bit PCM, µ-law or A-law.
    #[error(
        "unsupported encoding: format tag {format}, {bits} bits per sample (use 16-bit PCM, µ-law or A-law)"
    )]
    Encoding {
        /// The WAVE format tag.
        format: u16,
        /// Bits per sample.
        bits: u16,
    },
    /// More than two channels, or none.
    #[error("unsupported channel count {0} (use mono or stereo)")]
    Channels(u16),
    /// A rate outside 8-48 kHz.
    #[error("unsupported sample rate {0} Hz (use 8000 to 48000)")]
    Rate(u32),
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// Decode a WAV file held in memory.
pub fn decode(bytes: &[u8]) -> Result<Pcm, WavError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(WavError::NotWav);
    }
    let mut pos = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32_at(bytes, pos + 4) as usize;
        let body_start = pos + 8;
        // A data chunk whose size overstates the file (a recording cut short) is read to the end.
        let body_end = body_start.saturating_add(size).min(bytes.len());
        let body = &bytes[body_start..body_end];
        match id {
            b"fmt " => {
                if body.len() < 16 {
                    return Err(WavError::Truncated("fmt"));
                }
                fmt = Some((
                    u16_at(body, 0),
                    u16_at(body, 2),
                    u32_at(body, 4),
                    u16_at(body, 14),
                ));
            }
            b"data" => {
                let (format, channels, rate, bits) = fmt.ok_or(WavError::NoFormat)?;
                return convert(format, channels, rate, bits, body);
            }
            _ => {}
        }
        pos = body_start.saturating_add(size).saturating_add(size & 1);
    }
    Err(if fmt.is_none() {
        WavError::NoFormat
    } else {
        WavError::NoData
    })
}

fn convert(format: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Result<Pcm, WavError> {
    if !(1..=2).contains(&channels) {
        return Err(WavError::Channels(channels));
    }
    if !(8000..=48000).contains(&rate) {
        return Err(WavError::Rate(rate));
    }
    let interleaved: Vec<i16> = match (format, bits) {
        (1, 16) => data
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect(),
        (6, 8) => data.iter().map(|&c| crate::g711::alaw_decode(c)).collect(),
        (7, 8) => data.iter().map(|&c| crate::g711::ulaw_decode(c)).collect(),
        _ => return Err(WavError::Encoding { format, bits }),
    };
    let samples = if channels == 2 {
        interleaved
            .chunks_exact(2)
            .map(|c| ((c[0] as i32 + c[1] as i32) / 2) as i16)
            .collect()
    } else {
        interleaved
    };
    Ok(Pcm { rate, samples })
}

/// Encode mono 16-bit PCM as a WAV file (used by tests and tools).
pub fn encode_pcm16(rate: u32, samples: &[i16]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pcm16_round_trip() {
        let s = vec![0, 1, -1, 1000, i16::MIN, i16::MAX];
        let pcm = decode(&encode_pcm16(16000, &s)).unwrap();
        assert_eq!(
            pcm,
            Pcm {
                rate: 16000,
                samples: s
            }
        );
    }

    #[test]
    fn stereo_is_mixed_and_ulaw_is_decoded() {
        let mut w = encode_pcm16(8000, &[100, 300, -50, -150]);
        w[22] = 2; // channels
        let pcm = decode(&w).unwrap();
        assert_eq!(pcm.samples, vec![200, -100]);

        let mut u = encode_pcm16(8000, &[0]);
        u[20] = 7; // µ-law
        u[34] = 8; // bits
        let pcm = decode(&u).unwrap();
        assert_eq!(
            pcm.samples,
            vec![crate::g711::ulaw_decode(0), crate::g711::ulaw_decode(0)]
        );
    }

    #[test]
    fn clear_errors() {
        assert_eq!(decode(b"hello"), Err(WavError::NotWav));
        let mut w = encode_pcm16(8000, &[0; 4]);
        w[34] = 24;
        assert_eq!(
            decode(&w),
            Err(WavError::Encoding {
                format: 1,
                bits: 24
            })
        );
        let mut w = encode_pcm16(8000, &[0; 4]);
        w[24..28].copy_from_slice(&96000u32.to_le_bytes());
        assert_eq!(decode(&w), Err(WavError::Rate(96000)));
        let w = encode_pcm16(8000, &[0; 4]);
        assert_eq!(decode(&w[..36]), Err(WavError::NoData));
    }

    #[test]
    fn data_chunk_longer_than_file_is_read_to_the_end() {
        let mut w = encode_pcm16(8000, &[1, 2, 3]);
        w[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&w).unwrap().samples, vec![1, 2, 3]);
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let mut b = b"RIFF\0\0\0\0WAVE".to_vec();
            b.extend(bytes);
            let _ = decode(&b);
        }
    }
}
