//! Pure audio processing for the IVR engine.
//!
//! Everything here is I/O free: callers hand in bytes and get samples or frames back.
//! Prompts are decoded and encoded once, at load, into 20 ms G.711 frames that every
//! call shares through an [`std::sync::Arc`].

pub mod digit;
pub mod dtmf;
pub mod dtmf_set;
pub mod fuzz;
pub mod g711;
pub mod prompt;
pub mod reorder;
pub mod resample;
pub mod rfc4733;
pub mod tone;
pub mod wav;

pub use digit::Digit;
pub use g711::Codec;
pub use prompt::{Prompt, PromptError};

/// The sample rate of everything the engine sends and receives (G.711).
pub const SAMPLE_RATE: u32 = 8000;
/// Samples in one 20 ms packet at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
