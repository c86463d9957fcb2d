//! A virtual-time harness around a [`QueueCenter`]: inputs in, outputs collected, invariants
//! checked after every step.

#![allow(dead_code)]

use ivr_queues::*;
use std::time::{Duration, Instant};

/// The one place tests read the clock: an arbitrary origin for virtual time.
#[allow(clippy::disallowed_methods)]
pub fn epoch() -> Instant {
    Instant::now()
}

pub fn agent(name: &str) -> AgentId {
    AgentId::new(name)
}

pub fn queue(name: &str) -> QueueName {
    QueueName::new(name)
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A queue config with short, test-friendly timers and no announcements.
pub fn quiet_queue(name: &str, strategy: Strategy) -> QueueConfig {
    let mut q = QueueConfig::new(name);
    q.strategy = strategy;
    q.announce_every = None;
    q.announce_position = false;
    q.announce_wait = false;
    q.retry = Duration::ZERO;
    q
}

pub struct Harness {
    pub center: QueueCenter,
    pub now: Instant,
    /// Every output so far, events included.
    pub log: Vec<Output>,
}

impl Harness {
    pub fn new(queues: Vec<QueueConfig>, agents: Vec<AgentConfig>, seed: u64) -> Self {
        let config = CenterConfig {
            queues,
            agents,
            limits: Limits::default(),
        };
        let center = QueueCenter::new(
            config.validate().expect("valid config"),
            Box::new(SplitMix64::new(seed)),
        );
        Harness {
            center,
            now: epoch(),
            log: Vec::new(),
        }
    }

    fn drain(&mut self) -> Vec<Output> {
        self.center.check_invariants().expect("invariants");
        let mut out = Vec::new();
        while let Some(o) = self.center.poll_output() {
            self.log.push(o.clone());
            if !matches!(o, Output::Event(_)) {
                out.push(o);
            }
        }
        out
    }

    /// One input at the current time; the non-event outputs.
    pub fn send(&mut self, input: Input) -> Vec<Output> {
        self.center.handle(self.now, input);
        self.drain()
    }

    /// Moves time forward by `d`, running each deadline at its own time.
    pub fn advance(&mut self, d: Duration) -> Vec<Output> {
        let end = self.now + d;
        let mut out = Vec::new();
        while let Some(t) = self.center.poll_timeout().filter(|t| *t <= end) {
            self.now = self.now.max(t);
            self.center.handle_timeout(self.now);
            out.extend(self.drain());
        }
        self.now = end;
        out
    }

    pub fn login(&mut self, names: &[&str]) -> Vec<Output> {
        let mut out = Vec::new();
        for n in names {
            out.extend(self.send(Input::AgentLogin(agent(n))));
        }
        out
    }

    pub fn enter(&mut self, call: u64, q: &str) -> Vec<Output> {
        self.enter_with(call, q, 0)
    }

    pub fn enter_with(&mut self, call: u64, q: &str, priority: u8) -> Vec<Output> {
        self.send(Input::Enter {
            call: CallRef(call),
            queue: queue(q),
            priority,
            caller: None,
        })
    }

    pub fn state(&self, name: &str) -> AgentState {
        self.center
            .agent_state(&agent(name))
            .cloned()
            .expect("agent exists")
    }

    /// The events logged so far.
    pub fn events(&self) -> Vec<QueueEvent> {
        self.log
            .iter()
            .filter_map(|o| match o {
                Output::Event(e) => Some(e.event.clone()),
                _ => None,
            })
            .collect()
    }
}

/// The offers among outputs, as (offer, agent, waiter).
pub fn offers(out: &[Output]) -> Vec<(OfferId, String, Waiter)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Offer {
                offer,
                agent,
                waiter,
                ..
            } => Some((*offer, agent.0.clone(), *waiter)),
            _ => None,
        })
        .collect()
}

/// The single offer among outputs.
pub fn one_offer(out: &[Output]) -> (OfferId, String, Waiter) {
    let o = offers(out);
    assert_eq!(o.len(), 1, "expected one offer in {out:?}");
    o[0].clone()
}

/// The offers cancelled among outputs.
pub fn cancelled(out: &[Output]) -> Vec<OfferId> {
    out.iter()
        .filter_map(|o| match o {
            Output::CancelOffer { offer, .. } => Some(*offer),
            _ => None,
        })
        .collect()
}

/// Inputs scheduled at future times, for simulations with a pretend engine.
#[derive(Default)]
pub struct Agenda {
    items: std::collections::BTreeMap<(Instant, u64), Input>,
    seq: u64,
}

impl Agenda {
    pub fn at(&mut self, t: Instant, input: Input) {
        self.seq += 1;
        self.items.insert((t, self.seq), input);
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl Harness {
    /// Runs scheduled inputs and the center's deadlines in time order until `end`; `react`
    /// plays the engine, scheduling inputs in answer to outputs.
    pub fn run(
        &mut self,
        agenda: &mut Agenda,
        end: Instant,
        mut react: impl FnMut(&mut Agenda, Instant, &Output),
    ) {
        loop {
            let action = agenda
                .items
                .first_key_value()
                .map(|((t, _), _)| *t)
                .filter(|t| *t <= end);
            let timer = self.center.poll_timeout().filter(|t| *t <= end);
            let outs = match (action, timer) {
                (Some(a), t) if t.is_none_or(|t| a <= t) => {
                    let ((_, _), input) = agenda.items.pop_first().expect("an item");
                    self.now = self.now.max(a);
                    self.send(input)
                }
                (_, Some(t)) => {
                    self.now = self.now.max(t);
                    self.center.handle_timeout(self.now);
                    self.drain()
                }
                (None, None) => break,
                (Some(_), None) => unreachable!(),
            };
            for o in &outs {
                react(agenda, self.now, o);
            }
        }
        self.now = self.now.max(end);
    }
}
