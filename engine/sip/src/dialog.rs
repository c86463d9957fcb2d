//! Dialog state (RFC 3261 §12), from either side: the UAS that answered an INVITE
//! ([`Dialog::from_invite`]) or the UAC that sent one ([`Dialog::from_response`]).

use crate::header::{HeaderName, NameAddr};
use crate::ids::{CallId, Tag};
use crate::message::{CoreHeaders, HeaderError, Method, Request, Response};
use crate::route::{RouteSet, Target};
use crate::uri::Uri;

/// Identifies a dialog from our side: Call-ID, our tag, the peer's tag (RFC 3261 §12).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: CallId,
    /// Our tag (the To tag of requests the peer sends).
    pub local_tag: Tag,
    /// The peer's tag (the From tag of requests the peer sends).
    pub remote_tag: Tag,
}

impl DialogId {
    /// The dialog a request received from the peer belongs to, if it carries both tags.
    pub fn of_incoming(request: &Request) -> Option<DialogId> {
        Some(DialogId {
            call_id: request.call_id().ok()?.into(),
            local_tag: request.party_to().ok()?.tag()?.into(),
            remote_tag: request.party_from().ok()?.tag().unwrap_or_default().into(),
        })
    }
}

/// A dialog: created by answering an INVITE (RFC 3261 §12.1.1) or by a 2xx/101-199 with a
/// To tag to one we sent (§12.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// The identifiers.
    pub id: DialogId,
    /// Our address of record, with our tag (the To of the INVITE).
    pub local: NameAddr,
    /// The peer's address of record, with its tag (the From of the INVITE).
    pub remote: NameAddr,
    /// Where in-dialog requests go: the peer's Contact (§12.1.1, §12.1.2).
    pub remote_target: Uri,
    /// The proxies every in-dialog request traverses (§12.1.1: the INVITE's Record-Route
    /// in order; §12.1.2: the response's, reversed).
    pub route_set: RouteSet,
    /// Our CSeq for requests we send.
    pub local_seq: u32,
    /// The highest CSeq seen from the peer (0: none yet, §12.1.2's "empty").
    pub remote_seq: u32,
}

/// Why a request cannot be placed in the dialog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    /// A header the dialog needs is missing or malformed.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The INVITE (or the response creating the dialog) has no Contact (RFC 3261 §8.1.1.8,
    /// §12.1.1 require one).
    #[error("no Contact")]
    NoContact,
    /// The response has no To tag, so it creates no dialog (§12.1.2).
    #[error("response without To tag")]
    NoTag,
    /// A request's CSeq is lower than one already seen (§12.2.2): answer 500.
    #[error("CSeq {got} is lower than {seen}")]
    OldCSeq {
        /// The CSeq received.
        got: u32,
        /// The highest seen.
        seen: u32,
    },
}

impl Dialog {
    /// The dialog that answering `invite` with our tag `local_tag` creates (RFC 3261 §12.1.1).
    pub fn from_invite(
        invite: &Request,
        local_tag: &Tag,
        local_seq: u32,
    ) -> Result<Dialog, DialogError> {
        let remote = invite.party_from()?;
        let mut local = invite.party_to()?;
        local.params.set("tag", Some(local_tag.to_string()));
        let remote_target = invite.contact()?.ok_or(DialogError::NoContact)?.uri;
        let route_set = RouteSet::uas(&invite.headers)?;
        Ok(Dialog {
            id: DialogId {
                call_id: invite.call_id()?.into(),
                local_tag: local_tag.clone(),
                remote_tag: remote.tag().unwrap_or_default().into(),
            },
            local,
            remote,
            remote_target,
            route_set,
            local_seq,
            remote_seq: invite.cseq()?.seq,
        })
    }

    /// The dialog a response with a To tag to our `request` creates (RFC 3261 §12.1.2): the
    /// route set is the response's Record-Route reversed, the remote target its Contact.
    pub fn from_response(request: &Request, response: &Response) -> Result<Dialog, DialogError> {
        let local = request.party_from()?;
        let remote = response.party_to()?;
        let remote_tag = remote.tag().ok_or(DialogError::NoTag)?.to_string();
        let remote_target = response.contact()?.ok_or(DialogError::NoContact)?.uri;
        Ok(Dialog {
            id: DialogId {
                call_id: request.call_id()?.into(),
                local_tag: local.tag().unwrap_or_default().into(),
                remote_tag: remote_tag.into(),
            },
            local,
            remote,
            remote_target,
            route_set: RouteSet::uac(&response.headers)?,
            local_seq: request.cseq()?.seq,
            remote_seq: 0,
        })
    }

    /// Check and record the CSeq of an in-dialog request from the peer (§12.2.2).
    /// ACK and CANCEL reuse the INVITE's number and are not checked.
    pub fn accept_remote_seq(&mut self, request: &Request) -> Result<(), DialogError> {
        let seq = request.cseq()?.seq;
        if matches!(request.method, Method::Ack | Method::Cancel) {
            return Ok(());
        }
        if seq < self.remote_seq {
            return Err(DialogError::OldCSeq {
                got: seq,
                seen: self.remote_seq,
            });
        }
        self.remote_seq = seq;
        Ok(())
    }

    /// Update the remote target from a target-refresh request's Contact (re-INVITE, §12.2.2).
    pub fn refresh_target(&mut self, request: &Request) {
        if let Ok(Some(c)) = request.contact() {
            self.remote_target = c.uri;
        }
    }

    /// Where the dialog's next request goes and the Request-URI and `Route` values it carries
    /// (RFC 3261 §12.2.1.1, loose and strict routers).
    pub fn target(&self) -> Target {
        self.route_set.target(&self.remote_target)
    }

    /// A new in-dialog request (RFC 3261 §12.2.1.1); `via` is our Via value with a fresh
    /// branch. Send it to [`Dialog::target`]'s `next_hop`.
    pub fn request(&mut self, method: Method, via: String) -> Request {
        self.local_seq += 1;
        let target = self.target();
        let mut r = Request::new(method.clone(), target.request_uri);
        r.headers.push(HeaderName::Via, via);
        r.headers.push(HeaderName::MaxForwards, "70");
        r.headers.push(HeaderName::From, self.local.to_string());
        r.headers.push(HeaderName::To, self.remote.to_string());
        r.headers.push(HeaderName::CallId, self.id.call_id.as_str());
        r.headers
            .push(HeaderName::CSeq, format!("{} {}", self.local_seq, method));
        for route in target.routes {
            r.headers.push(HeaderName::Route, route);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;
    use crate::parse::{Framing, parse_message};

    fn invite() -> Request {
        let s = "INVITE sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             Record-Route: <sip:p1@127.0.0.1;lr>, <sip:p2@127.0.0.1;lr>\r\n\
             From: \"Caller\" <sip:caller@127.0.0.1>;tag=abc\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: call-1\r\n\
             CSeq: 7 INVITE\r\nContact: <sip:caller@127.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n";
        match parse_message(s.as_bytes(), Framing::Datagram).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    #[test]
    fn bye_is_built_from_dialog_state() {
        let mut d = Dialog::from_invite(&invite(), &"ivrtag".into(), 100).unwrap();
        let bye = d.request(
            Method::Bye,
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx".into(),
        );
        assert_eq!(bye.uri.to_string(), "sip:caller@127.0.0.1:5070");
        assert_eq!(bye.party_from().unwrap().tag(), Some("ivrtag"));
        assert_eq!(bye.party_to().unwrap().tag(), Some("abc"));
        assert_eq!(bye.cseq().unwrap().seq, 101);
        let routes: Vec<_> = bye.headers.get_all(&HeaderName::Route).collect();
        assert_eq!(
            routes,
            vec!["<sip:p1@127.0.0.1;lr>", "<sip:p2@127.0.0.1;lr>"]
        );
    }

    #[test]
    fn strict_first_route_rewrites_the_request_uri() {
        let mut i = invite();
        i.headers.set(
            HeaderName::RecordRoute,
            "<sip:127.0.0.1:5090>, <sip:p2@127.0.0.1;lr>",
        );
        let mut d = Dialog::from_invite(&i, &"t".into(), 1).unwrap();
        assert!(d.target().strict);
        let bye = d.request(
            Method::Bye,
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKy".into(),
        );
        assert_eq!(bye.uri.to_string(), "sip:127.0.0.1:5090");
        let routes: Vec<_> = bye.headers.get_all(&HeaderName::Route).collect();
        assert_eq!(
            routes,
            vec!["<sip:p2@127.0.0.1;lr>", "<sip:caller@127.0.0.1:5070>"]
        );
    }

    #[test]
    fn uac_dialog_reverses_the_responses_record_route() {
        let req = invite();
        let s = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             Record-Route: <sip:p1@127.0.0.1;lr>\r\nRecord-Route: <sip:p2@127.0.0.1;lr>\r\n\
             From: \"Caller\" <sip:caller@127.0.0.1>;tag=abc\r\nTo: <sip:ivr@127.0.0.1>;tag=callee\r\n\
             Call-ID: call-1\r\nCSeq: 7 INVITE\r\nContact: <sip:callee@127.0.0.1:6000>\r\nContent-Length: 0\r\n\r\n";
        let resp = match parse_message(s.as_bytes(), Framing::Datagram).unwrap() {
            Message::Response(r) => r,
            Message::Request(_) => unreachable!(),
        };
        let mut d = Dialog::from_response(&req, &resp).unwrap();
        assert_eq!(
            (d.id.local_tag.as_str(), d.id.remote_tag.as_str()),
            ("abc", "callee")
        );
        let bye = d.request(
            Method::Bye,
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKz".into(),
        );
        assert_eq!(bye.uri.to_string(), "sip:callee@127.0.0.1:6000");
        assert_eq!(bye.cseq().unwrap().seq, 8);
        let routes: Vec<_> = bye.headers.get_all(&HeaderName::Route).collect();
        assert_eq!(
            routes,
            vec!["<sip:p2@127.0.0.1;lr>", "<sip:p1@127.0.0.1;lr>"]
        );
        assert_eq!(d.target().next_hop.to_string(), "sip:p2@127.0.0.1;lr");
        let mut untagged = resp.clone();
        untagged.headers.set(HeaderName::To, "<sip:ivr@127.0.0.1>");
        assert_eq!(
            Dialog::from_response(&req, &untagged),
            Err(DialogError::NoTag)
        );
    }

    #[test]
    fn old_cseq_is_refused() {
        let mut d = Dialog::from_invite(&invite(), &"t".into(), 1).unwrap();
        let mut bye = invite();
        bye.method = Method::Bye;
        bye.headers.set(HeaderName::CSeq, "6 BYE");
        assert_eq!(
            d.accept_remote_seq(&bye),
            Err(DialogError::OldCSeq { got: 6, seen: 7 })
        );
        bye.headers.set(HeaderName::CSeq, "8 BYE");
        assert!(d.accept_remote_seq(&bye).is_ok());
    }

    #[test]
    fn no_contact_is_an_error() {
        let mut i = invite();
        i.headers.remove(&HeaderName::Contact);
        assert_eq!(
            Dialog::from_invite(&i, &"t".into(), 1),
            Err(DialogError::NoContact)
        );
    }
}
