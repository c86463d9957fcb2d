//! x
pub mod media;
pub mod rng;
pub mod sdp;
