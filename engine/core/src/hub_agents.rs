//! The hub's registrar: agents' phones register here (RFC 3261 §10), feature-code INVITEs
//! are authenticated here (RFC 3261 §22.2), and agents' presence and requests reach the
//! queue center from here.
//!
//! The registrar's digest state (nonce issuer, replay logs per account) cannot be split
//! between engines: the Call-ID is not covered by the digest, so a replay under another
//! Call-ID must meet the same log. So the [`Hub`] owns the one
//! [`Registrar`](ivr_sip::registrar::Registrar). Engines keep the server transactions and
//! hand the requests over ([`HubMsg::Register`](crate::hub_msg::HubMsg::Register),
//! [`HubMsg::Authenticate`](crate::hub_msg::HubMsg::Authenticate)); the hub answers with
//! [`ShardMsg::RegisterReply`] and [`ShardMsg::Authenticated`], reports failed
//! authentications for the source gate ([`HubOutput::AuthFailed`]) and registrations
//! ([`HubOutput::Agent`]), and reads the bindings itself when it routes an offer
//! ([`ShardMsg::Offer`]'s targets): no engine holds a copy.
//!
//! Presence changes and agents' requests wait in the hub until the next
//! [`HubMsg::Sync`](crate::hub_msg::HubMsg::Sync), as they waited in the engine before: the
//! center hears them once the input that made them is handled.

use crate::agent_desk::{AgentAction, AgentRequestError};
use crate::dial;
use crate::hub::Hub;
use crate::hub_msg::{AgentTarget, FeatureAnswer, HubOutput, RegisterAnswer, ShardId, ShardMsg};
use ivr_menus::Menus;
use ivr_menus::agents::{AgentCode, LoginMode, Reach};
use ivr_queues::{AgentId, AgentState, Input};
use ivr_sip::message::Request;
use ivr_sip::registrar::{Account, Binding, RegistrarEvent};
use ivr_sip::transaction::{Peer, ServerKey};
use ivr_sip::uri::Uri;
use std::time::Instant;

/// The realm challenges name when no agent's password fixes one.
pub const DEFAULT_REALM: &str = "ivr";

/// The registrar's realm and accounts for `menus`.
pub(crate) fn accounts(menus: &Menus) -> (String, Vec<Account>) {
    let realm = menus.agents_realm().unwrap_or(DEFAULT_REALM).to_string();
    let accounts = menus
        .agents()
        .iter()
        .filter_map(|a| match &a.reach {
            Reach::Registered(c) => Some(Account {
                owner: a.name.clone(),
                user: c.user.clone(),
                ha1_md5: c.ha1_md5.clone(),
                ha1_sha256: c.ha1_sha256.clone(),
            }),
            Reach::Static(_) => None,
        })
        .collect();
    (realm, accounts)
}

/// Whether any agent of `menus` registers (the registrar then has accounts: REGISTER is
/// allowed and feature codes are codes).
pub(crate) fn has_registering_agents(menus: &Menus) -> bool {
    menus
        .agents()
        .iter()
        .any(|a| matches!(a.reach, Reach::Registered(_)))
}

impl Hub {
    /// [`HubMsg::Register`](crate::hub_msg::HubMsg::Register) from `shard`.
    pub(crate) fn register(
        &mut self,
        now: Instant,
        shard: ShardId,
        key: ServerKey,
        req: Box<Request>,
        peer: Peer,
    ) {
        let answer = if self.registrar.has_accounts() {
            let reply = self.registrar.handle_register(now, &req, peer);
            if reply.auth_failed {
                self.out.push_back(HubOutput::AuthFailed {
                    from: peer.addr,
                    method: "REGISTER",
                });
            }
            RegisterAnswer::Reply(reply)
        } else {
            RegisterAnswer::NotAllowed
        };
        self.send_shard(shard, ShardMsg::RegisterReply { key, req, answer });
        self.registrar_events();
    }

    /// [`HubMsg::Authenticate`](crate::hub_msg::HubMsg::Authenticate) from `shard`: the
    /// digest is checked, and a pause toggle is resolved from the agent's state in the
    /// center now.
    pub(crate) fn authenticate(
        &mut self,
        now: Instant,
        shard: ShardId,
        key: ServerKey,
        req: Box<Request>,
        peer: Peer,
        code: AgentCode,
    ) {
        let answer = if !self.registrar.has_accounts() {
            FeatureAnswer::NotAFeature
        } else {
            match self
                .registrar
                .authenticate_request(now, &req, peer.addr.ip())
            {
                Ok(agent) => {
                    let action = self.feature_action(&agent, code);
                    FeatureAnswer::Ok { agent, action }
                }
                Err(reply) => {
                    if reply.auth_failed {
                        self.out.push_back(HubOutput::AuthFailed {
                            from: peer.addr,
                            method: "INVITE",
                        });
                    }
                    FeatureAnswer::Refused(reply)
                }
            }
        };
        let msg = ShardMsg::Authenticated {
            key,
            req,
            peer,
            answer,
        };
        self.send_shard(shard, msg);
    }

    /// What a feature code asks of `agent`: `PauseToggle` unpauses a paused agent and
    /// pauses any other.
    pub(crate) fn feature_action(&self, agent: &str, code: AgentCode) -> AgentAction {
        match code {
            AgentCode::Login => AgentAction::Login,
            AgentCode::Logout => AgentAction::Logout,
            AgentCode::PauseToggle
                if matches!(
                    self.center.agent_state(&AgentId::new(agent)),
                    Some(AgentState::Paused { .. })
                ) =>
            {
                AgentAction::Unpause
            }
            AgentCode::PauseToggle => AgentAction::Pause {
                reason: "feature code".into(),
            },
        }
    }

    /// An agent's request (its phone's feature code, or staff), for the center at the next
    /// [`HubMsg::Sync`](crate::hub_msg::HubMsg::Sync). A login also tells the center
    /// whether the agent can be reached (a registering agent without a registration is
    /// logged in but not rung).
    pub fn agent_request(
        &mut self,
        agent: &str,
        action: AgentAction,
    ) -> Result<(), AgentRequestError> {
        let Some(a) = self.menus.agents().iter().find(|a| a.name == agent) else {
            return Err(AgentRequestError::UnknownAgent(agent.to_string()));
        };
        let reachable = match &a.reach {
            Reach::Registered(c) => !self.registrar.bindings(&c.user).is_empty(),
            Reach::Static(_) => true,
        };
        let id = AgentId::new(agent);
        let pending = &mut self.pending;
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

    /// Report what happened to bindings, and what it means for the agents' presence.
    pub(crate) fn registrar_events(&mut self) {
        while let Some(change) = self.registrar.poll_event() {
            let (owner, expired) = match &change {
                RegistrarEvent::Registered { owner, .. }
                | RegistrarEvent::Unregistered { owner, .. } => (owner.clone(), false),
                RegistrarEvent::Expired { owner, .. } => (owner.clone(), true),
            };
            self.agent_presence(&owner, expired);
            let registered = self.registrar.registered_count();
            self.out.push_back(HubOutput::Agent { change, registered });
        }
    }

    /// Follow a new config's agents: bindings of accounts that remain are kept.
    pub(crate) fn registrar_reload(&mut self, menus: &Menus) {
        let (realm, accounts) = accounts(menus);
        self.registrar.set_accounts(&realm, accounts);
        self.registrar_events();
    }

    /// What changed for a registering agent (after a REGISTER, an expiry or a reload): an
    /// agent with a live registration is logged in and reachable; one whose last binding was
    /// removed by its phone logs out; one whose last binding expired stays logged in but is
    /// unreachable (not offered calls) until it registers again. A new registration also
    /// lifts a pause for unanswered offers. That is `login: on_register`; with `login:
    /// manual` registration only says whether the agent is reachable, and feature codes or
    /// staff log it in and out ([`crate::agent_desk`]).
    fn agent_presence(&mut self, owner: &str, expired: bool) {
        let Some(agent) = self.menus.agents().iter().find(|a| a.name == owner) else {
            return;
        };
        let Reach::Registered(c) = &agent.reach else {
            return;
        };
        let id = AgentId::new(owner);
        let pending = &mut self.pending;
        let manual = agent.login == LoginMode::Manual;
        if self.registrar.bindings(&c.user).is_empty() {
            if expired || manual {
                pending.push(Input::AgentReachable {
                    agent: id,
                    reachable: false,
                });
            } else {
                pending.push(Input::AgentLogout(id));
            }
        } else {
            if !manual {
                pending.push(Input::AgentLogin(id.clone()));
                pending.push(Input::AgentUnpause(id.clone()));
            }
            pending.push(Input::AgentReachable {
                agent: id,
                reachable: true,
            });
        }
    }

    /// Where `agent` is reached now: each registration (its contact, at the address the
    /// REGISTER came from), newest first, or its static `sip:`/`sips:` URI (a host name to
    /// locate by DNS first).
    pub(crate) fn agent_targets(&self, agent: &AgentId) -> Vec<AgentTarget> {
        let Some(a) = self.menus.agents().iter().find(|a| a.name == agent.0) else {
            return Vec::new();
        };
        match &a.reach {
            Reach::Registered(c) => self
                .registrar
                .bindings(&c.user)
                .iter()
                .rev()
                .map(|b| AgentTarget {
                    uri: b.contact.uri.clone(),
                    peer: b.source,
                    locate: false,
                })
                .collect(),
            Reach::Static(uri) => {
                let Some(uri) = Uri::parse(uri).ok().filter(|u| u.as_sip().is_some()) else {
                    return Vec::new();
                };
                match dial::hop_peer(&uri) {
                    Some(peer) => vec![AgentTarget {
                        uri,
                        peer,
                        locate: false,
                    }],
                    // Not known until DNS answers: a placeholder.
                    None => vec![AgentTarget {
                        uri,
                        peer: dial::UNKNOWN_PEER,
                        locate: true,
                    }],
                }
            }
        }
    }

    /// The current bindings of the agent whose phone registers as `user`.
    pub fn agent_bindings(&self, user: &str) -> &[Binding] {
        self.registrar.bindings(user)
    }

    /// How many agents have a phone registered.
    pub fn registered_agents(&self) -> usize {
        self.registrar.registered_count()
    }
}

#[cfg(test)]
#[path = "hub_agent_tests.rs"]
mod tests;
