//! One call's state.

use crate::media::MediaSession;
use crate::sdp::{LocalSession, RemoteAudio};
use ivr_menus::MenuRun;
use ivr_sip::dialog::Dialog;
use ivr_sip::message::Request;
use ivr_sip::transaction::{ClientKey, Peer, ServerKey};
use std::fmt;
use std::time::Instant;

/// Identifies a call inside one engine (and its media socket in the driver).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(pub u64);

impl fmt::Display for CallHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call-{}", self.0)
    }
}

/// Where a call is in its life. Each phase carries what is valid in it.
#[derive(Debug)]
pub enum Phase {
    /// The INVITE is accepted; waiting for the driver to open an RTP socket.
    OpeningMedia {
        /// The remote offer, if the INVITE had one (else this is a late-offer call).
        offer: Option<RemoteAudio>,
    },
    /// 180 Ringing sent; the 200 OK goes out at `until` (the configured answer delay).
    Ringing {
        /// The remote offer, if any.
        offer: Option<RemoteAudio>,
        /// When to answer.
        until: Instant,
    },
    /// 200 OK sent; waiting for the ACK.
    Answered {
        /// The remote offer (`None` for a late offer: the answer comes in the ACK).
        offer: Option<RemoteAudio>,
    },
    /// Confirmed dialog, media flowing, menu running.
    Active,
    /// We sent BYE and wait for its answer.
    Ending {
        /// The BYE's transaction.
        bye: ClientKey,
    },
}

/// A call.
#[derive(Debug)]
pub struct Call {
    /// The handle.
    pub handle: CallHandle,
    /// The Call-ID (for logs).
    pub call_id: String,
    /// The peer the INVITE came from.
    pub peer: Peer,
    /// The INVITE's server transaction.
    pub invite_key: ServerKey,
    /// The INVITE.
    pub invite: Request,
    /// The caller's number, decided once at INVITE time (P-Asserted-Identity from a trusted
    /// proxy, else From); `None` when withheld. Never the address of a proxy.
    pub caller: Option<String>,
    /// Our To tag.
    pub local_tag: String,
    /// The dialog, once answered.
    pub dialog: Option<Dialog>,
    /// Our SDP session (once the media socket is open).
    pub local_sdp: Option<LocalSession>,
    /// The media stream, once negotiated.
    pub media: Option<MediaSession>,
    /// The menu walk.
    pub menu: MenuRun,
    /// The phase.
    pub phase: Phase,
    /// When the INVITE arrived.
    pub created: Instant,
    /// When the call was confirmed (ACK).
    pub connected: Option<Instant>,
    /// The deadline currently indexed by the engine for this call.
    pub indexed: Option<Instant>,
    /// A re-INVITE being served (RFC 3261 §14.2: one at a time).
    pub reinvite: Option<ServerKey>,
    /// Why we are ending the call, once we decided to.
    pub end_reason: Option<crate::EndReason>,
    /// The menus entered so far, in order (at most [`PATH_LIMIT`]).
    pub path: Vec<String>,
    /// The callback request being left, once the menus handed the call to a mailbox.
    pub deposit: Option<Box<crate::voicemail::DepositCall>>,
}

/// The most menus a call's path records.
pub const PATH_LIMIT: usize = 64;

impl Call {
    /// Remember why the call is ending (the first reason wins).
    pub fn pending_reason(&mut self, reason: crate::EndReason) {
        self.end_reason.get_or_insert(reason);
    }
}
