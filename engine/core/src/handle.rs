//! Handles: the names the engine and the driver use for calls, legs and timer owners.

use std::fmt;

/// Identifies a call inside one engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(pub u64);

impl fmt::Display for CallHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call-{}", self.0)
    }
}

impl CallHandle {
    /// The call's leg number `index` (0: the leg that called in).
    pub const fn leg(self, index: u8) -> LegHandle {
        LegHandle { call: self, index }
    }
}

/// Identifies one leg of a call (one SIP dialog and its media socket): what every media
/// input and output names, so a call with two legs has two sockets in the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegHandle {
    /// The call the leg belongs to.
    pub call: CallHandle,
    /// Its place in the call (0: the leg that called in).
    pub index: u8,
}

impl fmt::Display for LegHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/leg-{}", self.call, self.index)
    }
}

/// Who owns a deadline in the engine's index (str0m's `Reason`): each owner keeps its own
/// timers and says when it next needs waking; queues, agents and registrations join here
/// as they come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerOwner {
    /// A leg: ringing, RTP pacing, media inactivity.
    Leg(LegHandle),
    /// A call's application: menu and deposit timers.
    App(CallHandle),
}
