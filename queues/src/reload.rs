//! Reloads, and the invariants the tests check after every step.
//!
//! A reload never logs an agent out and never drops a waiting caller:
//! - a queue that stays takes its new settings at once (strategy, ring timeout, penalties;
//!   a changed `max_wait` counts from each caller's entry);
//! - a removed queue takes nobody new but keeps serving its waiting callers with the agents it
//!   had, and goes when the last one leaves;
//! - a removed agent keeps its state and its current call but gets no new offers; it goes
//!   when it logs out. A new agent starts logged out.

use crate::agent::{Agent, AgentState};
use crate::center::{Queue, QueueCenter};
use crate::config::{CenterConfig, ValidConfig};
use crate::ids::{AgentId, QueueName, Waiter};
use crate::timers::Timer;
use std::collections::BTreeSet;
use std::time::Instant;

impl QueueCenter {
    /// Installs a configuration's queues and agents (no timers: see `reconfigure`).
    pub(crate) fn apply_config(&mut self, config: CenterConfig) {
        self.limits = config.limits;
        let names: BTreeSet<&QueueName> = config.queues.iter().map(|q| &q.name).collect();
        for (name, q) in self.queues.iter_mut() {
            q.retired = !names.contains(name);
        }
        for qc in config.queues.iter().cloned() {
            match self.queues.get_mut(&qc.name) {
                Some(q) => q.config = qc,
                None => {
                    self.queues.insert(qc.name.clone(), Queue::new(qc));
                }
            }
        }
        let ids: BTreeSet<&AgentId> = config.agents.iter().map(|a| &a.id).collect();
        for (id, a) in self.agents.iter_mut() {
            a.retired = !ids.contains(id);
        }
        self.agents.retain(|_, a| !a.retired || a.logged_in());
        for ac in config.agents.iter().cloned() {
            match self.agents.get_mut(&ac.id) {
                Some(a) => a.config = ac,
                None => {
                    self.agents.insert(ac.id.clone(), Agent::new(ac));
                }
            }
        }
        for (name, q) in self.queues.iter_mut().filter(|(_, q)| !q.retired) {
            q.members = config
                .agents
                .iter()
                .filter_map(|a| {
                    let m = a.queues.iter().find(|m| &m.queue == name)?;
                    Some((a.id.clone(), m.penalty))
                })
                .collect();
        }
        self.queues
            .retain(|_, q| !(q.retired && q.entries.is_empty()));
    }

    /// A reload at `now`: the configuration, then each waiting caller's timers.
    pub(crate) fn reconfigure(&mut self, now: Instant, config: ValidConfig) {
        self.apply_config(config.0);
        let mut timers = Vec::new();
        for q in self.queues.values().filter(|q| !q.retired) {
            for e in &q.entries {
                if let Waiter::Caller(call) = e.waiter {
                    timers.push((call, e.entered, q.config.max_wait, q.config.announce_every));
                }
            }
        }
        for (call, entered, max_wait, announce_every) in timers {
            match max_wait {
                Some(d) => self
                    .timers
                    .set(Timer::MaxWait(call), (entered + d).max(now)),
                None => self.timers.cancel(&Timer::MaxWait(call)),
            }
            match announce_every {
                Some(d) => {
                    if self
                        .timers
                        .get(&Timer::Announce(call))
                        .is_none_or(|t| t > now + d)
                    {
                        self.timers.set(Timer::Announce(call), now + d);
                    }
                }
                None => self.timers.cancel(&Timer::Announce(call)),
            }
        }
    }

    /// Checks the center's own consistency: no agent stuck, never two offers for one agent,
    /// every offer and waiter accounted for. For tests and debugging; `Err` names the first
    /// broken rule.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (id, a) in &self.agents {
            if a.after_call.is_some() && !matches!(a.state, AgentState::OnCall { .. }) {
                return Err(format!("{id}: a pending after-call action outside a call"));
            }
            if a.retired && !a.logged_in() {
                return Err(format!("{id}: removed and logged out but still kept"));
            }
            match &a.state {
                AgentState::Ringing { offer } => {
                    if self.offers.get(offer).is_none_or(|o| &o.agent != id) {
                        return Err(format!("{id}: ringing for {offer}, which is not its offer"));
                    }
                    if self.timers.get(&Timer::Ring(*offer)).is_none() {
                        return Err(format!("{id}: ringing for {offer} with no ring deadline"));
                    }
                }
                AgentState::OnCall { .. } => {
                    let calls = self.connected.values().filter(|c| &c.agent == id).count()
                        + self.dialing.values().filter(|d| &d.agent == id).count();
                    if calls != 1 {
                        return Err(format!("{id}: on call, but in {calls} calls"));
                    }
                }
                AgentState::WrapUp { until } => {
                    if self.timers.get(&Timer::WrapUp(id.clone())) != Some(*until) {
                        return Err(format!("{id}: in wrap-up with no deadline"));
                    }
                }
                AgentState::Available | AgentState::Paused { .. } | AgentState::LoggedOut => {}
            }
        }
        for (c, conn) in &self.connected {
            let ok = matches!(self.agent_state(&conn.agent), Some(AgentState::OnCall { waiter, .. }) if *waiter == Waiter::Caller(*c));
            if !ok {
                return Err(format!(
                    "{c}: connected to {}, who is not on it",
                    conn.agent
                ));
            }
        }
        for (offer, o) in &self.offers {
            if self.agent_state(&o.agent) != Some(&AgentState::Ringing { offer: *offer }) {
                return Err(format!(
                    "{offer}: its agent {} is not ringing for it",
                    o.agent
                ));
            }
            let queue = self.waiting.get(&o.waiter);
            let entry = queue
                .and_then(|q| self.queues.get(q))
                .and_then(|q| q.entries.iter().find(|e| e.waiter == o.waiter));
            if entry.is_none_or(|e| !e.offers.contains(offer)) {
                return Err(format!("{offer}: its waiter {} does not hold it", o.waiter));
            }
        }
        let mut entries = 0;
        for (name, q) in &self.queues {
            for e in &q.entries {
                entries += 1;
                if self.waiting.get(&e.waiter) != Some(name) {
                    return Err(format!("{}: in {name} but not indexed there", e.waiter));
                }
                if e.offers
                    .iter()
                    .any(|o| self.offers.get(o).is_none_or(|o| o.waiter != e.waiter))
                {
                    return Err(format!("{}: holds an offer that is not its own", e.waiter));
                }
                if let Waiter::Callback(id) = e.waiter {
                    let number = e.callback.as_ref().map(|c| c.number.as_str()).unwrap_or("");
                    if self.callback_numbers.get(number) != Some(&id) {
                        return Err(format!("{id}: its number is not reserved"));
                    }
                }
            }
            if q.entries.windows(2).any(|w| {
                (std::cmp::Reverse(w[0].priority), w[0].seq)
                    > (std::cmp::Reverse(w[1].priority), w[1].seq)
            }) {
                return Err(format!("{name}: out of order"));
            }
            if q.retired && q.entries.is_empty() {
                return Err(format!("{name}: removed and empty but still kept"));
            }
        }
        if entries != self.waiting.len() {
            return Err(format!(
                "{} indexed waiters, {entries} in queues",
                self.waiting.len()
            ));
        }
        for (number, id) in &self.callback_numbers {
            let held =
                self.waiting.contains_key(&Waiter::Callback(*id)) || self.dialing.contains_key(id);
            if !held {
                return Err(format!("{id}: number {number} reserved for nothing"));
            }
        }
        Ok(())
    }
}
