//! The menu language of the IVR engine: YAML model, validation, and the [`MenuRun`] interpreter.
//!
//! A config is compiled once into [`Menus`], an immutable snapshot shared by every call
//! (prompts are loaded and encoded at compile time). Each call walks it with a [`MenuRun`],
//! a sans-IO state machine: it is told about digits, finished playback and time, and
//! answers with what to play, when to stop, and when to hang up.

pub mod agents;
pub mod compile;
pub mod duration;
pub mod error;
pub mod fuzz;
pub mod graph;
pub mod handoff;
pub mod ics;
mod lint;
pub mod model;
pub mod numbers;
pub mod path;
pub mod run;
pub mod scenario;
pub mod schedule;
pub mod schema;
pub mod survey;
pub mod yaml;

pub use compile::{compile, compile_full, compile_with_tts};
pub use error::{CompileError, ErrorKind, Loc, closest};
pub use handoff::{DestinationId, Handoff, MailboxId, QueueId};
pub use model::MAX_PRIORITY;
pub use model::{Action, Menu, MenuId, Menus, PromptId, PromptItem, PromptOptions, Route, Router};
pub use run::{MenuOutput, MenuRun};

/// An arbitrary starting point for tests' virtual clocks (the one place tests read the clock).
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
pub(crate) fn test_epoch() -> std::time::Instant {
    std::time::Instant::now()
}
