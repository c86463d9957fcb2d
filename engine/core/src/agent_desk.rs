//! Agents' own requests and the live queue view.
//!
//! An agent logs in, logs out, pauses and unpauses by dialling a feature code from its
//! phone ([`crate::feature_codes`]) or through a staff user (the staff page and API). Both
//! come here, [`Engine::agent_request`], and reach the queue center as its inputs
//! (`AgentLogin`, `AgentLogout`, `AgentPause`, `AgentUnpause`): the center stays the one
//! owner of agent state. Whatever the agent's `login:` mode, these requests act.
//!
//! [`Engine::queue_view`] is what the staff page shows: per queue, who waits (position, wait,
//! caller, the menus it came through) and per agent its state, reachability, answered calls
//! and, on a call, the menus its caller came through. The driver takes a
//! snapshot after queue events and publishes it; nothing here is shared.

use crate::call::CallHandle;
use crate::engine::Engine;
use crate::io::Event;
use ivr_menus::agents::{LoginMode, Reach};
use ivr_queues::{AgentId, AgentState, Input, QueueName, Waiter};
use std::time::{Duration, Instant};

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

/// The live queue view: what the staff page and `GET /api/queues` show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueView {
    /// Each queue of the current config, in config order.
    pub queues: Vec<QueueLine>,
    /// Each agent of the current config, in config order.
    pub agents: Vec<AgentLine>,
}

/// One queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueLine {
    /// Its name.
    pub name: String,
    /// Who waits, in service order.
    pub waiting: Vec<WaitingLine>,
}

/// One caller (or callback request) waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingLine {
    /// 1 = next.
    pub position: usize,
    /// The caller's number when known (the staff side masks it).
    pub caller: Option<String>,
    /// How long it has waited.
    pub waited: Duration,
    /// A callback request (the caller hung up and waits to be called).
    pub callback: bool,
    /// The menus the caller came through, in order (menu names from the config; empty for
    /// a callback request).
    pub path: Vec<String>,
}

/// One agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentLine {
    /// Its name.
    pub name: String,
    /// The center's state (`None`: not known to the center yet).
    pub state: Option<AgentState>,
    /// Registered (or static) and not marked unreachable.
    pub reachable: bool,
    /// Phones registered now.
    pub registrations: usize,
    /// Answered calls since the engine started.
    pub calls: u64,
    /// The queues it serves.
    pub queues: Vec<String>,
    /// How it logs in.
    pub login: LoginMode,
    /// On a call with a caller: the menus that caller came through (`None` when not on a
    /// call, or on a callback).
    pub caller_path: Option<Vec<String>>,
}

/// The longest caller number the queue view shows: its last characters (the From header
/// is the caller's to write, and every staff page polls the view).
const VIEW_CALLER_MAX: usize = 32;

/// `caller` bounded for the view: its last [`VIEW_CALLER_MAX`] characters (the last digits
/// are the ones staff see).
fn view_caller(caller: &str) -> String {
    let skip = caller.chars().count().saturating_sub(VIEW_CALLER_MAX);
    caller.chars().skip(skip).collect()
}

impl Engine {
    /// Apply an agent's request (from its phone's feature code, or a staff user `by`):
    /// the center hears it now. A login also tells the center whether the agent can be
    /// reached (a registering agent without a registration is logged in but not rung).
    pub fn agent_request(
        &mut self,
        now: Instant,
        agent: &str,
        action: AgentAction,
        by: &str,
    ) -> Result<(), AgentRequestError> {
        self.agent_pending(agent, action, by)?;
        self.queues_sync(now);
        self.drain_layer(now);
        Ok(())
    }

    /// [`Engine::agent_request`] queued for the center, which hears it when the input being
    /// handled is done (for requests made while handling a SIP message).
    pub(crate) fn agent_pending(
        &mut self,
        agent: &str,
        action: AgentAction,
        by: &str,
    ) -> Result<(), AgentRequestError> {
        let Some(a) = self.menus.agents().iter().find(|a| a.name == agent) else {
            return Err(AgentRequestError::UnknownAgent(agent.to_string()));
        };
        let reachable = match &a.reach {
            Reach::Registered(c) => !self.registrar.bindings(&c.user).is_empty(),
            Reach::Static(_) => true,
        };
        let id = AgentId::new(agent);
        self.ctx.event(Event::AgentRequest {
            agent: agent.to_string(),
            action: action.name(),
            by: by.to_string(),
        });
        let pending = &mut self.queueing.pending;
        match action {
            AgentAction::Login => {
                pending.push(Input::AgentLogin(id.clone()));
                pending.push(Input::AgentReachable {
                    agent: id,
                    reachable,
                });
            }
            AgentAction::Logout => pending.push(Input::AgentLogout(id)),
            AgentAction::Pause { reason } => pending.push(Input::AgentPause { agent: id, reason }),
            AgentAction::Unpause => pending.push(Input::AgentUnpause(id)),
        }
        Ok(())
    }

    /// Whether the agent named `agent` is paused now.
    pub(crate) fn agent_paused(&self, agent: &str) -> bool {
        matches!(
            self.queueing.center.agent_state(&AgentId::new(agent)),
            Some(AgentState::Paused { .. })
        )
    }

    /// The live queue view at `now`.
    pub fn queue_view(&self, now: Instant) -> QueueView {
        let center = &self.queueing.center;
        let queues = self
            .menus
            .queues()
            .iter()
            .map(|q| QueueLine {
                name: q.name.clone(),
                waiting: center
                    .waiting_since(&QueueName::new(q.name.clone()))
                    .into_iter()
                    .enumerate()
                    .map(|(i, (waiter, since))| WaitingLine {
                        position: i + 1,
                        caller: match waiter {
                            Waiter::Caller(c) => self
                                .calls
                                .get(&CallHandle(c.0))
                                .and_then(|call| call.caller.as_deref())
                                .map(view_caller),
                            Waiter::Callback(_) => None,
                        },
                        waited: now.saturating_duration_since(since),
                        callback: matches!(waiter, Waiter::Callback(_)),
                        path: self.caller_path(waiter).unwrap_or_default(),
                    })
                    .collect(),
            })
            .collect();
        let agents = self
            .menus
            .agents()
            .iter()
            .map(|a| {
                let id = AgentId::new(a.name.clone());
                let (calls, reachable) = center.agent_summary(&id).unwrap_or((0, false));
                let registrations = a.user().map_or(0, |u| self.registrar.bindings(u).len());
                let registered = matches!(a.reach, Reach::Static(_)) || registrations > 0;
                let state = center.agent_state(&id).cloned();
                let caller_path = match &state {
                    Some(AgentState::OnCall { waiter, .. }) => self.caller_path(*waiter),
                    _ => None,
                };
                AgentLine {
                    name: a.name.clone(),
                    state,
                    caller_path,
                    reachable: reachable && registered,
                    registrations,
                    calls,
                    queues: a
                        .queues
                        .iter()
                        .map(|(q, _)| self.menus.queue(*q).name.clone())
                        .collect(),
                    login: a.login,
                }
            })
            .collect();
        QueueView { queues, agents }
    }

    /// The menus a waiting or connected caller came through (`None` for a callback
    /// request, or a call the engine no longer has).
    fn caller_path(&self, waiter: Waiter) -> Option<Vec<String>> {
        match waiter {
            Waiter::Caller(c) => self
                .calls
                .get(&CallHandle(c.0))
                .map(|call| call.path.clone()),
            Waiter::Callback(_) => None,
        }
    }
}
