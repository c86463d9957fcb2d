//! One call: its legs and what it is doing for the caller.

pub use crate::handle::{CallHandle, LegHandle};
use crate::leg::Leg;
use crate::outgoing::Transfer;
use crate::queued::Queued;
use crate::voicemail::DepositCall;
use ivr_menus::{MenuRun, Menus};
use ivr_sip::CallId;
use std::sync::Arc;
use std::time::Instant;

/// What a call is doing for the caller. Each phase carries what it needs; later phases
/// (queued, bridged, transferring) join this enum with the transfer work.
#[derive(Debug)]
pub enum App {
    /// Walking the menus.
    Menu(Box<MenuRun>),
    /// Leaving a callback request (the menus handed the call to a mailbox).
    Deposit(Box<DepositCall>),
    /// Handed to a bridged transfer: ringing the destination, then bridged to it.
    Transfer(Box<Transfer>),
    /// Waiting in a call-center queue, then bridged to an agent ([`crate::queued`]).
    Queued(Box<Queued>),
    /// An agent's feature call ([`crate::feature_codes`]): answered, confirmed, hung up.
    Feature(Box<crate::feature_codes::FeatureCall>),
    /// Answering a satisfaction survey after the agent or the destination hung up
    /// ([`crate::survey_call`]).
    Survey(Box<crate::survey_call::SurveyCall>),
}

impl App {
    /// The menus the call runs.
    pub fn menus(&self) -> &Arc<Menus> {
        match self {
            App::Menu(run) => run.menus(),
            App::Deposit(d) => &d.menus,
            App::Transfer(t) => t.run.menus(),
            App::Queued(q) => q.run.menus(),
            App::Feature(f) => &f.menus,
            App::Survey(s) => s.run.menus(),
        }
    }

    /// The caller's language (an index into the menus' languages).
    pub fn language(&self) -> usize {
        match self {
            App::Menu(run) => run.language(),
            App::Deposit(d) => d.language,
            App::Transfer(t) => t.run.language(),
            App::Queued(q) => q.run.language(),
            App::Feature(_) => 0,
            App::Survey(s) => s.run.language(),
        }
    }

    /// The caller's language by name (`None` if the config has no languages).
    pub fn language_name(&self) -> Option<String> {
        self.menus().languages().get(self.language()).cloned()
    }

    /// Its next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self {
            App::Menu(run) => run.poll_timeout(),
            App::Deposit(d) => d.deposit.poll_timeout(),
            App::Transfer(t) => t.poll_timeout(),
            App::Queued(q) => q.poll_timeout(),
            App::Feature(_) => None,
            App::Survey(s) => s.survey.poll_timeout(),
        }
    }
}

/// A call.
#[derive(Debug)]
pub struct Call {
    /// The handle.
    pub handle: CallHandle,
    /// The Call-ID of the leg that called in.
    pub call_id: CallId,
    /// The caller's number, decided once at INVITE time (P-Asserted-Identity from a trusted
    /// proxy, else From); `None` when withheld. Never the address of a proxy.
    pub caller: Option<String>,
    /// The legs; the first is the one that called in.
    pub legs: Vec<Leg>,
    /// What the call is doing.
    pub app: App,
    /// When the INVITE arrived.
    pub created: Instant,
    /// When the call was confirmed (ACK).
    pub connected: Option<Instant>,
    /// Why we are ending the call, once we decided to.
    pub end_reason: Option<crate::io::EndReason>,
    /// The menus entered so far, in order (at most [`PATH_LIMIT`]).
    pub path: Vec<String>,
    /// What its call record knows so far ([`crate::cdr`]).
    pub trace: crate::cdr::Trace,
    /// The application's deadline the engine indexes.
    pub(crate) indexed: Option<Instant>,
    /// Its place under the process's call cap, given back when the call ends.
    #[expect(dead_code, reason = "held for its drop, which gives the slot back")]
    pub(crate) slot: crate::call_slots::CallSlot,
}

/// The most menus a call's path records.
pub const PATH_LIMIT: usize = 64;

impl Call {
    /// Remember why the call is ending (the first reason wins).
    pub fn pending_reason(&mut self, reason: crate::io::EndReason) {
        self.end_reason.get_or_insert(reason);
    }

    /// The leg `handle` names, if it is this call's.
    pub fn leg_mut(&mut self, handle: LegHandle) -> Option<&mut Leg> {
        if handle.call != self.handle {
            return None;
        }
        self.legs.get_mut(usize::from(handle.index))
    }

    /// The leg that called in.
    pub fn caller_leg(&mut self) -> &mut Leg {
        // Invariant: a call is created with its calling leg, and legs are never removed.
        &mut self.legs[0]
    }

    /// The application's deadline: only while the calling leg is confirmed (menus and
    /// deposits wait for the ACK, and stop when we hang up).
    pub fn app_timeout(&self) -> Option<Instant> {
        // A queued callback's own call runs its attempts before its first leg answers.
        let callback = matches!(&self.app, App::Queued(q) if q.callback.is_some());
        if callback || self.legs.first().is_some_and(|l| l.is_active()) {
            self.app.poll_timeout()
        } else {
            None
        }
    }
}
