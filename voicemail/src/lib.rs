//! Voicemail callback requests: a caller leaves a message and a number to be called back.
//!
//! [`Deposit`] is the caller's side as a sans-IO state machine (the number, the greeting,
//! the recording, review, saving); the engine runs it when the menus hand a call to a
//! mailbox, and the server does the writing and storing it asks for.

#[cfg(feature = "store")]
pub mod call_log;
pub mod calls;
pub mod deposit;
pub mod fuzz;
#[cfg(feature = "store")]
pub mod queue_log;
#[cfg(feature = "store")]
pub mod report;
pub mod request;
pub mod simulate;
#[cfg(feature = "store")]
pub mod store;

pub use deposit::{Action, Deposit, Say, Submission, SystemPrompt};
pub use request::{CallbackRequest, RecordingId, RequestKind};

/// An arbitrary starting point for tests' virtual clocks (the one place tests read the clock).
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
pub(crate) fn test_epoch() -> std::time::Instant {
    std::time::Instant::now()
}
