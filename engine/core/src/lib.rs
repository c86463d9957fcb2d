//! Pure call control for the IVR engine.
//!
//! [`Engine`] owns every call. The driver feeds it [`Input`]s (datagrams, framed TCP
//! messages, RTP, media sockets opened, time) with the current time, then drains
//! [`Engine::poll_output`] until it returns [`Output::Timeout`]: messages and packets to
//! send, media sockets to open or close, events to log, and when to wake it next.
//! Nothing here reads a clock or touches a socket.

pub mod call;
pub mod engine;
pub mod fuzz;
pub mod media;
mod proxy;
pub mod rng;
pub mod sdp;
pub mod voicemail;

pub use call::CallHandle;
pub use engine::{EndReason, Engine, EngineConfig, Event, Input, Output};
pub use voicemail::{VoicemailCmd, VoicemailReport};

/// An arbitrary starting point for tests' virtual clocks (the one place tests read the clock).
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
pub(crate) fn test_epoch() -> std::time::Instant {
    std::time::Instant::now()
}
