//! Feature calls: an agent's phone dials a code (`agent_codes:`, default `*41` log in,
//! `*42` log out, `*43` pause or unpause) to change its state.
//!
//! An INVITE whose Request-URI user is a code must come from an authenticated agent: the
//! From header proves nothing (anyone can write any From). It is challenged like a
//! REGISTER, with the registrar's digest machinery (RFC 3261 §22.2: `401` with
//! `WWW-Authenticate`, SHA-256 then MD5 unless `--register-md5-first`, stateless nonces,
//! replay checks). The hub owns the registrar ([`crate::hub_agents`]): the INVITE is parked
//! while the hub authenticates it ([`HubMsg::Authenticate`]; embedded, at once) and
//! resolves a pause toggle from the agent's state there. A right answer names the agent; the
//! request is applied ([`Engine::agent_request`]), the call is answered, a confirmation plays (one beep: logged
//! in or unpaused; two beeps: logged out or paused) and the engine hangs up. A wrong
//! password and an unknown user get the same `403` and count toward the source's
//! authentication-failure ban, as for REGISTER. With no registering agent in the config,
//! codes are ordinary numbers (the menus' `entries:`).

use crate::agent_desk::AgentAction;
use crate::engine::Engine;
use crate::error::RequestError;
use crate::hub_msg::{FeatureAnswer, HubMsg};
use crate::io::Event;
use ivr_menus::Menus;
use ivr_menus::agents::AgentCode;
use ivr_sip::message::{Request, StatusCode};
use ivr_sip::transaction::{Peer, ServerKey};
use std::sync::Arc;
use std::time::Instant;

/// A feature call, once authenticated: its request applied once the call is accepted, then
/// answered, confirmed, hung up.
#[derive(Debug)]
pub struct FeatureCall {
    /// The menus current when it came (the call's language and prompt names).
    pub menus: Arc<Menus>,
    /// Whose phone.
    pub agent: String,
    /// What was applied.
    pub action: AgentAction,
}

impl FeatureCall {
    /// Beeps that confirm the action: one for "now taking calls", two for "not".
    pub fn beeps(&self) -> usize {
        match self.action {
            AgentAction::Login | AgentAction::Unpause => 1,
            AgentAction::Logout | AgentAction::Pause { .. } => 2,
        }
    }
}

impl Engine {
    /// The feature code an INVITE dials, if any (with no registering agent in the config,
    /// codes are ordinary numbers).
    pub(crate) fn feature_code(&self, req: &Request) -> Option<AgentCode> {
        if !crate::hub_agents::has_registering_agents(&self.menus) {
            return None;
        }
        req.uri
            .user()
            .and_then(|u| self.menus.agent_codes().code(&u))
    }

    /// Park an INVITE dialling `code` until the hub's registrar has authenticated it
    /// ([`HubMsg::Authenticate`]); embedded, the answer is carried out before this returns.
    pub(crate) fn feature_park(
        &mut self,
        now: Instant,
        key: ServerKey,
        req: Request,
        peer: Peer,
        code: AgentCode,
    ) {
        if self.queueing.parked.len() >= crate::registration::MAX_PENDING_REGISTERS {
            let why = RequestError::Unavailable(crate::error::Unavailable::AtCapacity);
            return self.ctx.reject(now, &key, &req, why, None);
        }
        self.queueing.parked.insert(key.clone(), false);
        let msg = HubMsg::Authenticate {
            key,
            req: Box::new(req),
            peer,
            code,
        };
        self.hub_input(now, msg);
    }

    /// The hub's answer for a parked feature-code INVITE: authenticated, it becomes a
    /// feature call; refused, the challenge or 403 goes out (the hub counted a failure
    /// against the source already); with no registering agent any more, it is an ordinary
    /// call.
    pub(crate) fn feature_answer(
        &mut self,
        now: Instant,
        key: ServerKey,
        req: Request,
        peer: Peer,
        answer: FeatureAnswer,
    ) {
        // Cancelled while parked (RFC 3261 §9.2: the INVITE gets 487); whatever the hub
        // said, it is not a call. An answer for no parked INVITE is not acted on either.
        match self.queueing.parked.remove(&key) {
            Some(false) => {}
            Some(true) => {
                let r = self.ctx.reply(&req, StatusCode::REQUEST_TERMINATED, None);
                self.ctx.layer.respond(now, &key, r);
                return;
            }
            None => return,
        }
        match answer {
            FeatureAnswer::Ok { agent, action } => {
                self.ctx.event(Event::FeatureCode {
                    agent: agent.clone(),
                    code: req.uri.user().unwrap_or_default(),
                    from: peer.addr,
                });
                let f = FeatureCall {
                    menus: self.menus.clone(),
                    agent,
                    action,
                };
                self.invite_accepted(now, key, req, peer, Some(f));
            }
            FeatureAnswer::Refused(reply) => self.send_reply(now, &key, &req, reply),
            FeatureAnswer::NotAFeature => self.invite_accepted(now, key, req, peer, None),
        }
    }

    /// A CANCEL for a parked feature-code INVITE (RFC 3261 §9.2): 200 now; the INVITE gets
    /// 487 when the hub's answer comes back with it. Returns whether it was one.
    pub(crate) fn cancel_parked(
        &mut self,
        now: Instant,
        invite: &ServerKey,
        key: &ServerKey,
        req: &Request,
    ) -> bool {
        let Some(cancelled) = self.queueing.parked.get_mut(invite) else {
            return false;
        };
        *cancelled = true;
        let ok = self.ctx.reply(req, StatusCode::OK, None);
        self.ctx.layer.respond(now, key, ok);
        true
    }

    /// The feature call was accepted (it will be answered): its request goes to the hub,
    /// for the center at the next sync.
    pub(crate) fn feature_apply(&mut self, now: Instant, f: &FeatureCall) {
        // The agent was authenticated against the current config's accounts, so it exists.
        if !self.menus.agents().iter().any(|a| a.name == f.agent) {
            return;
        }
        self.ctx.event(Event::AgentRequest {
            agent: f.agent.clone(),
            action: f.action.name(),
            by: f.agent.clone(),
        });
        let msg = HubMsg::Agent {
            agent: f.agent.clone(),
            action: f.action.clone(),
        };
        self.hub_send(now, msg);
    }

    /// The feature call's answer was confirmed (ACK): play the beeps.
    pub(crate) fn feature_connected(&mut self, handle: crate::call::CallHandle) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let crate::call::App::Feature(f) = &call.app else {
            return;
        };
        let beeps = f.beeps();
        let mut prompts = Vec::with_capacity(beeps * 2);
        for i in 0..beeps {
            if i > 0 {
                prompts.push(("silence".to_string(), self.gap.clone()));
            }
            prompts.push(("beep".to_string(), self.beep.clone()));
        }
        self.play(handle, prompts);
    }
}
