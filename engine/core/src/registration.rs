//! The engine's location service: agents' phones register here (RFC 3261 §10).
//!
//! The [`ivr_sip::registrar::Registrar`] machine decides; the engine feeds it REGISTERs with
//! their source (agents sit behind NAT: they are reached at the address and transport the
//! REGISTER came from, kept in each binding), drives its expiry from the engine's clock,
//! turns its decisions into responses, counts failed authentications against the source's
//! admission (a guesser is banned like a flooder), and reports registrations as
//! [`Event::Agent`]. Accounts come from the menus' `agents:` section and follow reloads
//! (bindings of agents that remain are kept).
//!
//! With no agent that registers in the config, REGISTER is not allowed (405), as before.

use crate::engine::Engine;
use crate::error::RequestError;
use crate::io::Event;
use ivr_menus::Menus;
use ivr_menus::agents::Reach;
use ivr_sip::message::Request;
use ivr_sip::registrar::{Account, Binding};
use ivr_sip::transaction::{Peer, ServerKey};
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

impl Engine {
    /// A REGISTER outside any dialog (RFC 3261 §10.3).
    pub(crate) fn on_register(&mut self, now: Instant, key: ServerKey, req: Request, peer: Peer) {
        if !self.registrar.has_accounts() {
            return self
                .ctx
                .reject(now, &key, &req, RequestError::NotAllowed, None);
        }
        let reply = self.registrar.handle_register(now, &req, peer);
        if reply.auth_failed {
            self.admission.auth_failed(now, peer.addr.ip());
            self.ctx.event(Event::AuthFailed {
                from: peer.addr,
                method: "REGISTER",
            });
        }
        let mut r = self.ctx.reply(&req, reply.status, None);
        if let Some(reason) = reply.reason {
            r.reason = reason.to_string();
        }
        for (name, value) in reply.headers {
            r.headers.push(name, value);
        }
        self.ctx.layer.respond(now, &key, r);
        self.registrar_events();
    }

    /// Report what happened to bindings.
    pub(crate) fn registrar_events(&mut self) {
        while let Some(change) = self.registrar.poll_event() {
            use ivr_sip::registrar::RegistrarEvent;
            let (owner, expired) = match &change {
                RegistrarEvent::Registered { owner, .. }
                | RegistrarEvent::Unregistered { owner, .. } => (owner.clone(), false),
                RegistrarEvent::Expired { owner, .. } => (owner.clone(), true),
            };
            self.agent_presence(&owner, expired);
            let registered = self.registrar.registered_count();
            self.ctx.event(Event::Agent { change, registered });
        }
    }

    /// Expire bindings due by `now`.
    pub(crate) fn registrar_timeout(&mut self, now: Instant) {
        self.registrar.handle_timeout(now);
        self.registrar_events();
    }

    /// Follow a new config's agents: bindings of accounts that remain are kept.
    pub(crate) fn registrar_reload(&mut self, menus: &Menus) {
        let (realm, accounts) = accounts(menus);
        self.registrar.set_accounts(&realm, accounts);
        self.registrar_events();
    }

    /// The current bindings of the agent whose phone registers as `user` (where to reach it:
    /// each binding's `source`, because of NAT).
    pub fn agent_bindings(&self, user: &str) -> &[Binding] {
        self.registrar.bindings(user)
    }

    /// How many agents have a phone registered.
    pub fn registered_agents(&self) -> usize {
        self.registrar.registered_count()
    }
}
