//! Typed identifiers: queues and agents are named by the configuration, calls by the engine,
//! offers and callbacks by the [`QueueCenter`](crate::QueueCenter).

use std::fmt;

/// A queue's name, as the configuration spells it (`queue: sales` in the menus).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueName(pub String);

impl QueueName {
    /// A queue name from text.
    pub fn new(name: impl Into<String>) -> Self {
        QueueName(name.into())
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An agent's id, as the configuration spells it (`agents: - name: alice`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AgentId(pub String);

impl AgentId {
    /// An agent id from text.
    pub fn new(name: impl Into<String>) -> Self {
        AgentId(name.into())
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A caller's call, named by the engine (its call handle). The center never makes these up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallRef(pub u64);

impl fmt::Display for CallRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call#{}", self.0)
    }
}

/// One offer of one waiting caller (or callback) to one agent: the engine rings the agent's
/// phones for it and reports how it ended. Minted by the center, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OfferId(pub u64);

impl fmt::Display for OfferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "offer#{}", self.0)
    }
}

/// A queued callback request: the caller hung up and keeps a place in line. Minted by the
/// center, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallbackId(pub u64);

impl fmt::Display for CallbackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "callback#{}", self.0)
    }
}

/// Who holds a place in a queue: a caller on the line, or a callback request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Waiter {
    /// A caller waiting on the line.
    Caller(CallRef),
    /// A caller who asked to be called back and hung up.
    Callback(CallbackId),
}

impl fmt::Display for Waiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Waiter::Caller(c) => c.fmt(f),
            Waiter::Callback(c) => c.fmt(f),
        }
    }
}
