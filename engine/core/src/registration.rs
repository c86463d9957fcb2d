//! The engine's side of the location service: agents' phones register (RFC 3261 §10) with
//! the hub's registrar ([`crate::hub_agents`]).
//!
//! The engine keeps the REGISTER's server transaction and hands the request to the hub
//! ([`HubMsg::Register`]); the hub's answer ([`ShardMsg::RegisterReply`](crate::hub_msg::ShardMsg::RegisterReply))
//! comes back with the request, and the engine builds and sends the response. A
//! non-INVITE server transaction may answer later: retransmissions are absorbed meanwhile
//! (RFC 3261 §17.2.2). Embedded ([`Engine::new`]), the answer comes before the REGISTER's
//! handling returns. Failed authentications count against the source's admission (a
//! guesser is banned like a flooder), and registrations are reported as [`Event::Agent`].
//!
//! With no agent that registers in the config, REGISTER is not allowed (405), as before.

use crate::engine::Engine;
use crate::error::RequestError;
use crate::hub_msg::{HubMsg, RegisterAnswer};
use ivr_sip::message::Request;
use ivr_sip::registrar::{Binding, RegisterReply};
use ivr_sip::transaction::{Peer, ServerKey};
use std::time::Instant;

pub use crate::hub_agents::DEFAULT_REALM;

/// The most REGISTERs an engine hands the hub before their answers: more are refused with
/// 503 (the hub is behind), so a flood cannot grow the engine's transactions without bound.
pub(crate) const MAX_PENDING_REGISTERS: usize = 4096;

impl Engine {
    /// A REGISTER outside any dialog (RFC 3261 §10.3): for the hub's registrar.
    pub(crate) fn on_register(&mut self, now: Instant, key: ServerKey, req: Request, peer: Peer) {
        if !crate::hub_agents::has_registering_agents(&self.menus) {
            return self
                .ctx
                .reject(now, &key, &req, RequestError::NotAllowed, None);
        }
        if self.queueing.registers >= MAX_PENDING_REGISTERS {
            let why = RequestError::Unavailable(crate::error::Unavailable::AtCapacity);
            return self.ctx.reject(now, &key, &req, why, None);
        }
        self.queueing.registers += 1;
        let msg = HubMsg::Register {
            key,
            req: Box::new(req),
            peer,
        };
        self.hub_input(now, msg);
    }

    /// The hub answered a REGISTER: send the response on its transaction.
    pub(crate) fn register_reply(
        &mut self,
        now: Instant,
        key: ServerKey,
        req: &Request,
        answer: RegisterAnswer,
    ) {
        self.queueing.registers = self.queueing.registers.saturating_sub(1);
        match answer {
            RegisterAnswer::NotAllowed => {
                self.ctx
                    .reject(now, &key, req, RequestError::NotAllowed, None)
            }
            RegisterAnswer::Reply(reply) => self.send_reply(now, &key, req, reply),
        }
    }

    /// Send what the registrar answered (a REGISTER's reply, or a feature call's challenge
    /// or refusal) on `key`.
    pub(crate) fn send_reply(
        &mut self,
        now: Instant,
        key: &ServerKey,
        req: &Request,
        reply: RegisterReply,
    ) {
        let mut r = self.ctx.reply(req, reply.status, None);
        if let Some(reason) = reply.reason {
            r.reason = reason.to_string();
        }
        for (name, value) in reply.headers {
            r.headers.push(name, value);
        }
        self.ctx.layer.respond(now, key, r);
    }

    /// The current bindings of the agent whose phone registers as `user` (where to reach it:
    /// each binding's `source`, because of NAT), in the embedded hub.
    pub fn agent_bindings(&self, user: &str) -> &[Binding] {
        self.queueing.hub().map_or(&[], |h| h.agent_bindings(user))
    }

    /// How many agents have a phone registered (in the embedded hub).
    pub fn registered_agents(&self) -> usize {
        self.queueing.hub().map_or(0, |h| h.registered_agents())
    }
}
