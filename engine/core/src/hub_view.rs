//! The live queue view, built by the [`Hub`] from its own state: what the staff page and
//! `GET /api/queues` show. Per queue, who waits (position, wait, caller, the menus it came
//! through) and per agent its state, reachability, answered calls and, on a call, the menus
//! its caller came through. The driver takes a snapshot after queue events and publishes
//! it; nothing here is shared.

use crate::hub::Hub;
use ivr_menus::agents::{LoginMode, Reach};
use ivr_queues::{AgentId, AgentState, QueueName, Waiter};
use std::time::{Duration, Instant};

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

impl Hub {
    /// The live queue view at `now` (a registering agent's phones counted from the hub's
    /// own registrar).
    pub fn queue_view(&self, now: Instant) -> QueueView {
        let registrations = |user: &str| self.registrar.bindings(user).len();
        let center = &self.center;
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
                                .rows
                                .get(&c)
                                .and_then(|r| r.caller.as_deref())
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
                let registrations = a.user().map_or(0, registrations);
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
    /// request, or a call that is gone).
    fn caller_path(&self, waiter: Waiter) -> Option<Vec<String>> {
        match waiter {
            Waiter::Caller(c) => self.rows.get(&c).map(|r| r.path.clone()),
            Waiter::Callback(_) => None,
        }
    }
}
