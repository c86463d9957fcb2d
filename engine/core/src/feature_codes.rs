//! Feature calls: an agent's phone dials a code (`agent_codes:`, default `*41` log in,
//! `*42` log out, `*43` pause or unpause) to change its state.
//!
//! An INVITE whose Request-URI user is a code must come from an authenticated agent: the
//! From header proves nothing (anyone can write any From). It is challenged like a
//! REGISTER, with the registrar's digest machinery (RFC 3261 §22.2: `401` with
//! `WWW-Authenticate`, SHA-256 then MD5 unless `--register-md5-first`, stateless nonces,
//! replay checks). A right answer names the agent; the request is applied at once
//! ([`Engine::agent_request`]), the call is answered, a confirmation plays (one beep: logged
//! in or unpaused; two beeps: logged out or paused) and the engine hangs up. A wrong
//! password and an unknown user get the same `403` and count toward the source's
//! authentication-failure ban, as for REGISTER. With no registering agent in the config,
//! codes are ordinary numbers (the menus' `entries:`).

use crate::agent_desk::AgentAction;
use crate::engine::Engine;
use crate::io::Event;
use ivr_menus::Menus;
use ivr_menus::agents::AgentCode;
use ivr_sip::message::Request;
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

/// What to do with an INVITE, as far as feature codes go.
pub(crate) enum FeatureInvite {
    /// Not a feature code: an ordinary call.
    No,
    /// Answered already (challenged or refused).
    Done,
    /// Authenticated: answer it as a feature call (and apply it).
    Call(FeatureCall),
}

impl Engine {
    /// Check an INVITE for a feature code and, if it dials one, authenticate it.
    pub(crate) fn feature_invite(
        &mut self,
        now: Instant,
        key: &ServerKey,
        req: &Request,
        peer: Peer,
    ) -> FeatureInvite {
        if !self.registrar.has_accounts() {
            return FeatureInvite::No;
        }
        let Some(code) = req
            .uri
            .user()
            .and_then(|u| self.menus.agent_codes().code(&u))
        else {
            return FeatureInvite::No;
        };
        let dialled = req.uri.user().unwrap_or_default();
        let agent = match self
            .registrar
            .authenticate_request(now, req, peer.addr.ip())
        {
            Ok(agent) => agent,
            Err(reply) => {
                if reply.auth_failed {
                    self.admission.auth_failed(now, peer.addr.ip());
                    self.ctx.event(Event::AuthFailed {
                        from: peer.addr,
                        method: "INVITE",
                    });
                }
                let mut r = self.ctx.reply(req, reply.status, None);
                if let Some(reason) = reply.reason {
                    r.reason = reason.to_string();
                }
                for (name, value) in reply.headers {
                    r.headers.push(name, value);
                }
                self.ctx.layer.respond(now, key, r);
                return FeatureInvite::Done;
            }
        };
        let action = match code {
            AgentCode::Login => AgentAction::Login,
            AgentCode::Logout => AgentAction::Logout,
            AgentCode::PauseToggle
                if self.queueing.hub().is_some_and(|h| h.agent_paused(&agent)) =>
            {
                AgentAction::Unpause
            }
            AgentCode::PauseToggle => AgentAction::Pause {
                reason: "feature code".into(),
            },
        };
        self.ctx.event(Event::FeatureCode {
            agent: agent.clone(),
            code: dialled,
            from: peer.addr,
        });
        FeatureInvite::Call(FeatureCall {
            menus: self.menus.clone(),
            agent,
            action,
        })
    }

    /// The feature call was accepted (it will be answered): apply its request now.
    pub(crate) fn feature_apply(&mut self, f: &FeatureCall) {
        // The agent was authenticated against the current config's accounts, so it exists;
        // the center hears it once this INVITE is handled.
        let _ = self.agent_pending(&f.agent, f.action.clone(), &f.agent);
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
