//! Agents' own requests and the live queue view.
//!
//! An agent logs in, logs out, pauses and unpauses by dialling a feature code from its
//! phone ([`crate::feature_codes`]) or through a staff user (the staff page and API). Both
//! come here, [`Engine::agent_request`], go to the hub ([`crate::hub::Hub::agent_request`])
//! and reach the queue center as its inputs
//! (`AgentLogin`, `AgentLogout`, `AgentPause`, `AgentUnpause`): the center stays the one
//! owner of agent state. Whatever the agent's `login:` mode, these requests act.
//!
//! [`Engine::queue_view`] is what the staff page shows; the hub builds it from its own state
//! ([`crate::hub_view`]).

use crate::engine::Engine;
use crate::io::Event;
use std::time::Instant;

/// What an agent (or staff for it) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentAction {
    /// Log in: offered calls again (once reachable).
    Login,
    /// Log out (after its current call, if on one).
    Logout,
    /// Stop taking calls for a while, with a reason (cut to 64 characters by the center).
    Pause {
        /// Why ("lunch", "feature code").
        reason: String,
    },
    /// Take calls again.
    Unpause,
}

impl AgentAction {
    /// The action's name, for the log.
    pub fn name(&self) -> &'static str {
        match self {
            AgentAction::Login => "login",
            AgentAction::Logout => "logout",
            AgentAction::Pause { .. } => "pause",
            AgentAction::Unpause => "unpause",
        }
    }
}

/// Why an agent request was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentRequestError {
    /// The current config has no agent of that name.
    #[error("no agent '{0}'")]
    UnknownAgent(String),
}

pub use crate::hub_view::{AgentLine, QueueLine, QueueView, WaitingLine};

impl Engine {
    /// Apply an agent's request (from its phone's feature code, or a staff user `by`):
    /// the hub checks the agent and the center hears it now. A login also tells the center
    /// whether the agent can be reached (a registering agent without a registration is
    /// logged in but not rung).
    pub fn agent_request(
        &mut self,
        now: Instant,
        agent: &str,
        action: AgentAction,
        by: &str,
    ) -> Result<(), AgentRequestError> {
        let name = action.name();
        match self.queueing.hub.as_mut() {
            Some(hub) => hub.agent_request(agent, action)?,
            None => return Err(AgentRequestError::UnknownAgent(agent.to_string())),
        }
        self.ctx.event(Event::AgentRequest {
            agent: agent.to_string(),
            action: name,
            by: by.to_string(),
        });
        self.queues_sync(now);
        self.drain_layer(now);
        Ok(())
    }
}
