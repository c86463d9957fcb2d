//! Pure call control for the IVR engine.
//!
//! [`Engine`] owns every call. The driver feeds it [`Input`]s (datagrams, framed TCP
//! messages, RTP, media sockets opened, time) with the current time, then drains
//! [`Engine::poll_output`] until it returns [`Output::Timeout`]: messages and packets to
//! send, media sockets to open or close, events to log, and when to wake it next.
//! Nothing here reads a clock or touches a socket.

pub mod admission;
pub mod agent_desk;
pub mod bridge;
pub mod call;
pub mod call_slots;
pub mod cdr;
mod config;
mod ctx;
mod dial;
pub mod engine;
pub mod error;
mod extensions;
pub mod feature_codes;
pub mod fuzz;
pub mod handle;
pub mod hub;
pub mod hub_agents;
pub mod hub_msg;
mod hub_store;
pub mod hub_view;
pub mod io;
pub mod leg;
mod linger;
pub mod media;
pub mod outgoing;
mod prack;
mod proxy;
mod queue_callback;
pub mod queued;
mod referral;
pub mod registration;
pub mod relay;
pub mod rng;
pub mod sdp;
pub mod session;
pub mod shard;
mod shard_engine;
pub mod srtp;
pub mod survey_call;
pub mod voicemail;
mod whisper;

pub use config::{ALLOW, EngineConfig};
pub use engine::Engine;
pub use error::{RequestError, Unavailable};
pub use handle::{CallHandle, LegHandle, TimerOwner};
pub use io::{EndReason, Event, Input, Output};
pub use io::{QueueCallbackCmd, RestoredCallback, VoicemailCmd, VoicemailReport};

/// An arbitrary starting point for tests' virtual clocks (the one place tests read the clock).
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
pub(crate) fn test_epoch() -> std::time::Instant {
    std::time::Instant::now()
}
