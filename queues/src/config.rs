//! The center's own configuration types (the engine maps the menus' `queues:` and the agents'
//! YAML onto them, so this crate does not depend on the menus crate).
//!
//! A configuration is checked once ([`CenterConfig::validate`]) and handed to the center as a
//! [`ValidConfig`], at start and on every reload.

use crate::ids::{AgentId, QueueName};
use std::collections::BTreeSet;
use std::time::Duration;

/// How a queue picks the agent(s) to ring, among the free agents of its lowest penalty level.
/// The names follow the menus' `strategy:` (`ring-all`, `round-robin`, `longest-idle`,
/// `fewest-calls`, `random`) plus `linear`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Ring every free agent of the level at once; the first to answer takes the call and the
    /// others' phones are cancelled.
    RingAll,
    /// Take turns in the queue's member order, starting after the agent last offered a call
    /// from this queue (round-robin *with memory*).
    RoundRobin,
    /// The agent whose last call ended the longest ago (or who logged in the longest ago,
    /// before any call). The default.
    #[default]
    LongestIdle,
    /// The agent who has answered the fewest calls from this queue (ties: member order).
    FewestCalls,
    /// Always the first free agent in member order (top-down, "linear").
    Linear,
    /// Any free agent, uniformly at random (the injected random source).
    Random,
}

/// What counts as "nobody to answer" for the join and leave rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmptyRule {
    /// The rule never applies: callers join and stay whatever the agents do (the default).
    #[default]
    Never,
    /// No member agent is logged in.
    NoneLoggedIn,
    /// No member agent is logged in, unpaused and reachable (registered).
    NoneActive,
}

/// Queued callbacks: the caller leaves the line and keeps a place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackConfig {
    /// Further attempts after the first failed call to the caller.
    pub retries: u32,
    /// The wait before each further attempt; the request keeps its place meanwhile.
    pub retry_delay: Duration,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        CallbackConfig {
            retries: 2,
            retry_delay: Duration::from_secs(60),
        }
    }
}

/// One queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Its name (agents join queues by name).
    pub name: QueueName,
    /// How agents are picked.
    pub strategy: Strategy,
    /// How long one offer rings before it counts as not answered (`agent_timeout`).
    pub agent_timeout: Duration,
    /// After an offer fails (no answer, busy, rejected), how long that agent is not offered
    /// another call, so the next agent is tried and a lone agent is not rung back at once.
    pub retry: Duration,
    /// The agent's after-call work time before the next offer (an agent's own setting wins).
    pub wrap_up: Duration,
    /// The longest a caller waits before [`Output::Exit`](crate::Output::Exit) with
    /// [`ExitReason::MaxWait`](crate::ExitReason::MaxWait) (`on_timeout`); `None`: no limit.
    pub max_wait: Option<Duration>,
    /// How often a waiting caller hears the periodic announcement; `None`: never.
    pub announce_every: Option<Duration>,
    /// Whether announcements tell the caller's position.
    pub announce_position: bool,
    /// Whether announcements tell the estimated wait.
    pub announce_wait: bool,
    /// When a caller is refused at entry.
    pub join_when_empty: EmptyRule,
    /// When waiting callers are sent out (with [`ExitReason::Empty`](crate::ExitReason::Empty)).
    pub leave_when_empty: EmptyRule,
    /// After this many unanswered offers in a row the agent is paused
    /// ([`PauseReason::NoAnswer`](crate::PauseReason::NoAnswer)); 0: never.
    pub max_no_answer: u32,
    /// The most callers and callbacks waiting at once; more are refused
    /// ([`RefuseReason::Full`](crate::RefuseReason::Full)).
    pub max_waiting: usize,
    /// The handle time (talk + wrap-up) assumed before the queue has seen any call, for the
    /// estimated wait.
    pub default_handle_time: Duration,
    /// Queued callbacks, if offered.
    pub callback: Option<CallbackConfig>,
}

impl QueueConfig {
    /// A queue with the defaults: longest-idle, 15 s ring, 5 s retry, no wrap-up, no max wait,
    /// announcements every 30 s with position and wait, no empty rules, pause after 3
    /// unanswered offers, 500 waiting, 3 minutes assumed handle time, no callbacks.
    pub fn new(name: impl Into<String>) -> Self {
        QueueConfig {
            name: QueueName::new(name),
            strategy: Strategy::default(),
            agent_timeout: Duration::from_secs(15),
            retry: Duration::from_secs(5),
            wrap_up: Duration::ZERO,
            max_wait: None,
            announce_every: Some(Duration::from_secs(30)),
            announce_position: true,
            announce_wait: true,
            join_when_empty: EmptyRule::Never,
            leave_when_empty: EmptyRule::Never,
            max_no_answer: 3,
            max_waiting: 500,
            default_handle_time: Duration::from_secs(180),
            callback: None,
        }
    }
}

/// An agent's place in one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The queue.
    pub queue: QueueName,
    /// Its level: lower is offered first; a higher level only when no agent of a lower one is
    /// free.
    pub penalty: u32,
}

/// One agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// Its id.
    pub id: AgentId,
    /// The queues it answers, with penalties. The order of agents in
    /// [`CenterConfig::agents`] is each queue's member order (round-robin, linear).
    pub queues: Vec<Membership>,
    /// Its own wrap-up time, instead of the queue's.
    pub wrap_up: Option<Duration>,
}

impl AgentConfig {
    /// An agent in the given queues at penalty 0.
    pub fn new(id: impl Into<String>, queues: &[&str]) -> Self {
        AgentConfig {
            id: AgentId::new(id),
            queues: queues
                .iter()
                .map(|q| Membership {
                    queue: QueueName::new(*q),
                    penalty: 0,
                })
                .collect(),
            wrap_up: None,
        }
    }
}

/// Bounds on what the center holds, whatever callers do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Pending callback requests across all queues; more are refused
    /// ([`CallbackRefusal::Full`](crate::CallbackRefusal::Full)).
    pub max_callbacks: usize,
    /// Pause reasons are cut to this many characters.
    pub max_reason_len: usize,
    /// Callback numbers and caller numbers longer than this are refused or dropped.
    pub max_number_len: usize,
    /// Completed calls remembered per queue for the average handle time.
    pub handle_time_window: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_callbacks: 1000,
            max_reason_len: 64,
            max_number_len: 32,
            handle_time_window: 32,
        }
    }
}

/// Queues, agents and limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CenterConfig {
    /// The queues.
    pub queues: Vec<QueueConfig>,
    /// The agents, in member order.
    pub agents: Vec<AgentConfig>,
    /// Bounds.
    pub limits: Limits,
}

/// What is wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Two queues have the same name.
    #[error("queue '{0}' is defined twice")]
    DuplicateQueue(QueueName),
    /// Two agents have the same id.
    #[error("agent '{0}' is defined twice")]
    DuplicateAgent(AgentId),
    /// An agent names a queue that does not exist.
    #[error("agent '{agent}' is in queue '{queue}', which is not defined")]
    UnknownQueue {
        /// The agent.
        agent: AgentId,
        /// The queue it names.
        queue: QueueName,
    },
    /// An agent lists the same queue twice.
    #[error("agent '{agent}' lists queue '{queue}' twice")]
    DuplicateMembership {
        /// The agent.
        agent: AgentId,
        /// The queue.
        queue: QueueName,
    },
    /// A duration that must be positive is zero.
    #[error("queue '{queue}': {field} must be more than zero")]
    Zero {
        /// The queue.
        queue: QueueName,
        /// The setting.
        field: &'static str,
    },
    /// A duration is longer than [`MAX_DURATION`].
    #[error("'{of}': {field} is longer than a year")]
    TooLong {
        /// The queue or agent.
        of: String,
        /// The setting.
        field: &'static str,
    },
}

/// The longest duration a configuration may give (a year): the center adds durations to
/// the clock, and a longer one (say `Duration::MAX`) would overflow it.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// A configuration that passed [`CenterConfig::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidConfig(pub(crate) CenterConfig);

impl ValidConfig {
    /// The configuration.
    pub fn get(&self) -> &CenterConfig {
        &self.0
    }
}

impl CenterConfig {
    /// Checks names are unique, memberships name defined queues, and timers are positive
    /// and at most [`MAX_DURATION`].
    /// Returns every problem, not only the first.
    pub fn validate(self) -> Result<ValidConfig, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut names = BTreeSet::new();
        for q in &self.queues {
            if !names.insert(q.name.clone()) {
                errors.push(ConfigError::DuplicateQueue(q.name.clone()));
            }
            let zero = |field| ConfigError::Zero {
                queue: q.name.clone(),
                field,
            };
            if q.agent_timeout.is_zero() {
                errors.push(zero("agent_timeout"));
            }
            if q.announce_every.is_some_and(|d| d.is_zero()) {
                errors.push(zero("announce_every"));
            }
            if q.max_wait.is_some_and(|d| d.is_zero()) {
                errors.push(zero("max_wait"));
            }
            if q.max_waiting == 0 {
                errors.push(zero("max_waiting"));
            }
            let long = [
                ("agent_timeout", Some(q.agent_timeout)),
                ("retry", Some(q.retry)),
                ("wrap_up", Some(q.wrap_up)),
                ("max_wait", q.max_wait),
                ("announce_every", q.announce_every),
                ("default_handle_time", Some(q.default_handle_time)),
                (
                    "callback.retry_delay",
                    q.callback.as_ref().map(|c| c.retry_delay),
                ),
            ];
            for (field, d) in long {
                if d.is_some_and(|d| d > MAX_DURATION) {
                    errors.push(ConfigError::TooLong {
                        of: q.name.to_string(),
                        field,
                    });
                }
            }
        }
        let mut agents = BTreeSet::new();
        for a in &self.agents {
            if !agents.insert(a.id.clone()) {
                errors.push(ConfigError::DuplicateAgent(a.id.clone()));
            }
            if a.wrap_up.is_some_and(|d| d > MAX_DURATION) {
                errors.push(ConfigError::TooLong {
                    of: a.id.to_string(),
                    field: "wrap_up",
                });
            }
            let mut seen = BTreeSet::new();
            for m in &a.queues {
                if !names.contains(&m.queue) {
                    errors.push(ConfigError::UnknownQueue {
                        agent: a.id.clone(),
                        queue: m.queue.clone(),
                    });
                }
                if !seen.insert(m.queue.clone()) {
                    errors.push(ConfigError::DuplicateMembership {
                        agent: a.id.clone(),
                        queue: m.queue.clone(),
                    });
                }
            }
        }
        if errors.is_empty() {
            Ok(ValidConfig(self))
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_errors_are_reported() {
        let mut q = QueueConfig::new("sales");
        q.agent_timeout = Duration::ZERO;
        let config = CenterConfig {
            queues: vec![q.clone(), QueueConfig::new("sales")],
            agents: vec![
                AgentConfig::new("alice", &["sales", "support", "sales"]),
                AgentConfig::new("alice", &[]),
            ],
            limits: Limits::default(),
        };
        let errors = config.validate().unwrap_err();
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors.contains(&ConfigError::DuplicateQueue(QueueName::new("sales"))));
        assert!(errors.contains(&ConfigError::DuplicateAgent(AgentId::new("alice"))));
        assert!(errors.contains(&ConfigError::UnknownQueue {
            agent: AgentId::new("alice"),
            queue: QueueName::new("support")
        }));
    }

    #[test]
    fn a_good_config_passes() {
        let config = CenterConfig {
            queues: vec![QueueConfig::new("sales")],
            agents: vec![AgentConfig::new("alice", &["sales"])],
            limits: Limits::default(),
        };
        assert_eq!(config.clone().validate().unwrap().get(), &config);
    }
}
