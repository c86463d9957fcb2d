//! Prompts: audio converted once, at load, into 20 ms G.711 frames shared by all calls.

use crate::{Codec, FRAME_SAMPLES, SAMPLE_RATE, g711, resample, wav};
use std::sync::Arc;

/// A prompt ready to play: 8 kHz audio encoded in both G.711 laws.
///
/// Cloning is cheap (two reference counts); the audio itself is never copied per call.
#[derive(Debug, Clone)]
pub struct Prompt {
    name: Arc<str>,
    pcmu: Arc<[u8]>,
    pcma: Arc<[u8]>,
}

/// Why a prompt cannot be loaded. Always names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("prompt {file}: {reason}")]
pub struct PromptError {
    /// The file (or name) the prompt came from.
    pub file: String,
    /// What is wrong with it.
    pub reason: PromptErrorReason,
}

/// The reason part of a [`PromptError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptErrorReason {
    /// The WAV could not be decoded.
    #[error(transparent)]
    Wav(#[from] wav::WavError),
    /// The file holds no audio.
    #[error("the file holds no audio")]
    Empty,
}

impl Prompt {
    /// Build a prompt from a WAV file's bytes; `file` names it in errors and logs.
    pub fn from_wav(file: &str, bytes: &[u8]) -> Result<Prompt, PromptError> {
        let err = |reason| PromptError {
            file: file.to_string(),
            reason,
        };
        let pcm = wav::decode(bytes).map_err(|e| err(e.into()))?;
        if pcm.samples.is_empty() {
            return Err(err(PromptErrorReason::Empty));
        }
        let samples = resample::resample(&pcm.samples, pcm.rate, SAMPLE_RATE);
        Ok(Prompt::from_samples(file, &samples))
    }

    /// Build a prompt from 8 kHz mono samples. The end is padded with silence to a whole frame.
    pub fn from_samples(name: &str, samples: &[i16]) -> Prompt {
        let frames = samples.len().div_ceil(FRAME_SAMPLES).max(1);
        let mut padded = samples.to_vec();
        padded.resize(frames * FRAME_SAMPLES, 0);
        let encode = |codec: Codec| {
            let mut out = vec![0u8; padded.len()];
            g711::encode_into(codec, &padded, &mut out);
            Arc::<[u8]>::from(out)
        };
        Prompt {
            name: name.into(),
            pcmu: encode(Codec::Pcmu),
            pcma: encode(Codec::Pcma),
        }
    }

    /// The prompt's name (its file, as configured).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of 20 ms frames.
    pub fn frame_count(&self) -> usize {
        self.pcmu.len() / FRAME_SAMPLES
    }

    /// Frame `index` (0-based) in `codec`, or `None` past the end.
    #[inline]
    pub fn frame(&self, codec: Codec, index: usize) -> Option<&[u8]> {
        let data = match codec {
            Codec::Pcmu => &self.pcmu,
            Codec::Pcma => &self.pcma,
        };
        data.get(index * FRAME_SAMPLES..(index + 1) * FRAME_SAMPLES)
    }

    /// The whole encoded prompt in `codec`.
    pub fn encoded(&self, codec: Codec) -> &[u8] {
        match codec {
            Codec::Pcmu => &self.pcmu,
            Codec::Pcma => &self.pcma,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tone;

    #[test]
    fn frames_are_padded_and_shared() {
        let p = Prompt::from_samples("t", &tone::sine(8000, 440.0, 170, 1000.0));
        assert_eq!(p.frame_count(), 2);
        assert_eq!(p.frame(Codec::Pcmu, 1).unwrap()[10..], [0xFFu8; 150][..]);
        assert!(p.frame(Codec::Pcma, 2).is_none());
        let q = p.clone();
        assert!(std::ptr::eq(p.encoded(Codec::Pcmu), q.encoded(Codec::Pcmu)));
    }

    #[test]
    fn wav_at_16k_becomes_8k_frames() {
        let w = wav::encode_pcm16(16000, &tone::sine(16000, 500.0, 16000, 8000.0));
        let p = Prompt::from_wav("hello.wav", &w).unwrap();
        assert_eq!(p.frame_count(), 50);
    }

    #[test]
    fn errors_name_the_file() {
        let e = Prompt::from_wav("prompts/x.wav", b"nope").unwrap_err();
        assert_eq!(
            e.to_string(),
            "prompt prompts/x.wav: not a WAV file (no RIFF/WAVE header)"
        );
        let e = Prompt::from_wav("e.wav", &wav::encode_pcm16(8000, &[])).unwrap_err();
        assert_eq!(e.reason, PromptErrorReason::Empty);
    }
}
