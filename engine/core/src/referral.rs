//! Transfers by REFER (`mode: refer`): the engine, as transferor, asks the caller's phone to
//! call the configured destination itself (RFC 3515, driven by [`ivr_sip::refer`]).
//!
//! The call's application is [`App::Transfer`] in [`Stage::Referring`]. The REFER goes on
//! the caller's dialog; its responses reach the machine by Call-ID (the layer's stray
//! responses, like an outgoing call's), the NOTIFYs of the implicit subscription are taken
//! out of the caller's dialog before its leg sees them. Then:
//! - the destination answered the caller (a NOTIFY with a 2xx sipfrag): the engine hangs up
//!   its leg (BYE), the call ends as [`EndReason::Transferred`];
//! - the caller refuses REFER (405, 501, 403... or no answer): the engine calls the
//!   destination itself and bridges, as for `mode: bridge` ([`crate::outgoing`]);
//! - the caller's call to the destination failed, or no final NOTIFY came in time: the
//!   caller is back in the menu, which acts on the destination's `on_failure`.

use crate::call::{App, CallHandle, LegHandle};
use crate::engine::Engine;
use crate::io::{EndReason, Event};
use crate::outgoing::{Stage, Transfer};
use ivr_menus::{DestinationId, MenuRun};
use ivr_sip::CallId;
use ivr_sip::header::{HeaderName, NameAddr};
use ivr_sip::message::{Request, Response, StatusCode};
use ivr_sip::refer::{ReferConfig, ReferEvent, ReferTransfer, TransferFailure};
use ivr_sip::transaction::ServerKey;
use ivr_sip::uac::{Failure, FailureCause};
use ivr_sip::uri::Uri;
use std::time::Instant;

impl Engine {
    /// The menus handed `handle` to a `mode: refer` destination: send REFER on the caller's
    /// dialog. A caller with no usable dialog is bridged instead.
    pub(crate) fn start_refer(&mut self, now: Instant, handle: CallHandle, dest: DestinationId) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Menu(run) = &mut call.app else {
            return;
        };
        let menus = run.menus().clone();
        let d = menus.destination(dest);
        let sip = self.ctx.config.sip_addr;
        let leg = &mut call.legs[0];
        let transport = leg.peer.transport;
        let contact = self.ctx.contact(transport, d.uri.starts_with("sips:"));
        let parsed = (
            Uri::parse(&d.uri),
            Uri::parse(contact.trim_start_matches('<').trim_end_matches('>')),
            NameAddr::parse(&format!("<sip:ivr@{sip}>"), HeaderName::From),
        );
        let (Ok(refer_to), Ok(contact), Ok(referred_by), Some(dialog)) =
            (parsed.0, parsed.1, parsed.2, leg.dialog.as_mut())
        else {
            return self.start_transfer(now, handle, dest);
        };
        let mut config =
            ReferConfig::new(refer_to, referred_by, contact, transport, sip.to_string());
        config.timers = self.ctx.config.timers;
        config
            .extra_headers
            .push((HeaderName::UserAgent, self.ctx.config.user_agent.clone()));
        let refer = ReferTransfer::new(now, dialog, config, &mut self.ctx.rng);
        let run = std::mem::replace(run, Box::new(MenuRun::new(menus)));
        call.app = App::Transfer(Box::new(Transfer {
            run,
            dest,
            leg: handle.leg(0),
            stage: Stage::Referring {
                refer: Box::new(refer),
            },
            route: crate::outgoing::Route::default(),
        }));
        // The caller's phone calls the destination; our leg goes quiet meanwhile.
        call.caller_leg().stop();
        self.uac_calls.insert(call.call_id.clone(), handle);
        self.drive_refer(now, handle);
        self.reindex(handle);
    }

    /// A response for a REFER in progress, if it is one (by Call-ID, then Via and CSeq).
    pub(crate) fn refer_response(
        &mut self,
        now: Instant,
        handle: CallHandle,
        response: Response,
    ) -> Option<Response> {
        if let Some(call) = self.calls.get_mut(&handle)
            && let App::Transfer(t) = &mut call.app
            && let Stage::Referring { refer } = &mut t.stage
        {
            if !refer.matches_response(&response) {
                return Some(response);
            }
            refer.handle_response(now, response);
            self.drive_refer(now, handle);
            self.reindex(handle);
            return None;
        }
        Some(response)
    }

    /// A request in the caller's dialog: a NOTIFY of the REFER's subscription is answered
    /// here (true); anything else is the leg's (false).
    pub(crate) fn refer_notify(
        &mut self,
        now: Instant,
        leg: LegHandle,
        key: &ServerKey,
        req: &Request,
    ) -> bool {
        let Some(call) = self.calls.get_mut(&leg.call) else {
            return false;
        };
        let App::Transfer(t) = &mut call.app else {
            return false;
        };
        let Stage::Referring { refer } = &mut t.stage else {
            return false;
        };
        if leg.index != 0 || !refer.matches_notify(req) {
            return false;
        }
        // RFC 3261 §12.2.2: the dialog's CSeq check first.
        if let Some(d) = call.legs[0].dialog.as_mut()
            && d.accept_remote_seq(req).is_err()
        {
            let r = Response::to_request(req, StatusCode::SERVER_INTERNAL_ERROR);
            self.ctx.layer.respond(now, key, r);
            return true;
        }
        let answer = refer.handle_notify(now, req);
        self.ctx.layer.respond(now, key, answer);
        self.drive_refer(now, leg.call);
        self.reindex(leg.call);
        true
    }

    /// Send what the REFER queued and act on its outcome.
    pub(crate) fn drive_refer(&mut self, now: Instant, handle: CallHandle) {
        loop {
            let Some(call) = self.calls.get_mut(&handle) else {
                return;
            };
            let App::Transfer(t) = &mut call.app else {
                return;
            };
            let Stage::Referring { refer } = &mut t.stage else {
                return;
            };
            while let Some(tx) = refer.poll_transmit() {
                crate::outgoing::send_uac(&mut self.ctx, Some(handle), tx, None);
            }
            let Some(event) = refer.poll_event() else {
                return;
            };
            let destination = t.run.menus().destination(t.dest).name.clone();
            let dest = t.dest;
            match event {
                ReferEvent::Accepted | ReferEvent::Progress(_) | ReferEvent::BadNotify(_) => {}
                ReferEvent::Succeeded => {
                    self.ctx.event(Event::Referred {
                        call: handle,
                        destination,
                    });
                    self.leave_refer(handle);
                    call_pending(self, handle, EndReason::Transferred);
                    return self.end_call(now, handle, EndReason::Transferred);
                }
                ReferEvent::Refused(_) => {
                    // RFC 3515 §2.4.2: the caller will not transfer; call the destination
                    // ourselves and bridge.
                    self.leave_refer(handle);
                    return self.start_transfer(now, handle, dest);
                }
                ReferEvent::Failed(f) => {
                    self.leave_refer(handle);
                    let cause = match f {
                        TransferFailure::Status(s) => FailureCause::Status(s),
                        TransferFailure::SubscriptionEnded => FailureCause::Timeout,
                    };
                    return self.transfer_failed(now, handle, Failure::new(cause));
                }
                ReferEvent::TimedOut => {
                    self.leave_refer(handle);
                    return self.transfer_failed(now, handle, Failure::new(FailureCause::Timeout));
                }
            }
        }
    }

    /// The REFER is over: the call's application is its menu run again (still handed off
    /// to the transfer, so a fallback or `on_failure` can act on it).
    fn leave_refer(&mut self, handle: CallHandle) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Transfer(t) = &mut call.app else {
            return;
        };
        let menus = t.run.menus().clone();
        let old = std::mem::replace(&mut call.app, App::Menu(Box::new(MenuRun::new(menus))));
        if let App::Transfer(t) = old {
            call.app = App::Menu(t.run);
        }
        let id: CallId = call.call_id.clone();
        self.uac_calls.remove(&id);
    }
}

/// Remember why the call ends before hanging up.
fn call_pending(engine: &mut Engine, handle: CallHandle, reason: EndReason) {
    if let Some(call) = engine.calls.get_mut(&handle) {
        call.pending_reason(reason);
    }
}
