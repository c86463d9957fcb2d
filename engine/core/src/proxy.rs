//! Working behind SIP proxies and SBCs: Record-Route copied into dialog-creating responses,
//! the next hop of in-dialog requests, and whose word the caller's identity is taken on.

use ivr_sip::Transport;
use ivr_sip::header::{HeaderName, NameAddr};
use ivr_sip::message::{CoreHeaders, Request, Response};
use ivr_sip::route::{Target, socket_of};
use ivr_sip::transaction::Peer;
use std::net::IpAddr;

/// Copy every Record-Route line of `request` into `response`, in order (RFC 3261 §12.1.1:
/// a UAS copies them into every response that creates a dialog, the 2xx and the 101-199
/// with a To tag; re-INVITE answers carry them too, for proxies that record-route those).
pub(crate) fn copy_record_route(response: &mut Response, request: &Request) {
    response
        .headers
        .copy_from(&request.headers, &HeaderName::RecordRoute);
}

/// Where an in-dialog request built for `target` goes (RFC 3261 §8.1.2, §18.1.1): the next
/// hop's address when it is an IP literal, over its `transport` parameter, else over the
/// transport the INVITE came on. Over TCP to the peer the INVITE came from, the INVITE's
/// connection is reused. A next hop named by host name cannot be resolved here (no I/O):
/// the request goes where the INVITE came from, which is that proxy or caller in practice,
/// and `unresolved` is set so the owner can say so.
///
/// A dialog whose INVITE came over TLS never leaves it: a Contact or Record-Route naming
/// `transport=udp`/`tcp` would send our session refreshes, which carry our SDES key, in
/// clear (RFC 4568 §8.3: keys only over a secure channel); they go over the INVITE's
/// TLS connection instead (RFC 5630 §3.1.3 in spirit).
pub(crate) fn next_hop(invite_peer: Peer, target: &Target) -> NextHop {
    let Some((addr, transport)) = socket_of(&target.next_hop) else {
        return NextHop {
            peer: invite_peer,
            unresolved: true,
        };
    };
    let transport = match transport.as_deref() {
        Some("tcp") => Transport::Tcp,
        Some("udp") => Transport::Udp,
        _ => invite_peer.transport,
    };
    if invite_peer.transport == Transport::Tls && transport != Transport::Tls {
        return NextHop {
            peer: invite_peer,
            unresolved: false,
        };
    }
    let peer = if transport.is_reliable() && invite_peer.transport.is_reliable() {
        // The connection the INVITE came on: a caller's Contact port is rarely the port of
        // the connection it opened, and a proxy expects its own connection back.
        if target.routes.is_empty() || invite_peer.addr == addr {
            invite_peer
        } else {
            Peer { transport, addr }
        }
    } else {
        Peer { transport, addr }
    };
    NextHop {
        peer,
        unresolved: false,
    }
}

/// The result of [`next_hop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NextHop {
    /// Where to send.
    pub peer: Peer,
    /// The next hop is a host name; `peer` is where the INVITE came from instead.
    pub unresolved: bool,
}

/// The caller's number: the P-Asserted-Identity user (RFC 3325 §9.1) when the INVITE came
/// straight from a trusted proxy (RFC 3325 §2: the identity is only believed inside a trust
/// domain), else the From user; `None` when withheld (no user part, or `anonymous`). Never
/// the address the INVITE came from: behind a proxy that is the proxy's. Cleaned by
/// [`bounded_tail`].
pub(crate) fn caller_id(req: &Request, from: IpAddr, trusted: &[IpAddr]) -> Option<String> {
    let pai_name = HeaderName::Other("P-Asserted-Identity".into());
    let pai = trusted
        .contains(&from)
        .then(|| req.headers.values(&pai_name).next())
        .flatten()
        .and_then(|v| NameAddr::parse(v, pai_name.clone()).ok());
    let uri = match pai {
        Some(p) => p.uri,
        None => req.party_from().ok()?.uri,
    };
    let user = match &uri {
        ivr_sip::Uri::Other { raw, .. } => raw
            .split_once(':')
            .map(|(_, r)| r.split(';').next().unwrap_or(r).to_string()),
        ivr_sip::Uri::Sip(_) => uri.user(),
    }?;
    // What the caller wrote, decoded: bounded and without control characters (a `%00`)
    // before it reaches logs, the store and the staff page.
    (!user.eq_ignore_ascii_case("anonymous")).then(|| bounded_tail(&user))
}

/// `user` cleaned: control characters replaced by U+FFFD, and if longer than
/// [`crate::cdr::MAX_TEXT`] bytes, its last ones (a number's last digits are the ones that
/// tell callers apart; the queue view shows the tail too).
fn bounded_tail(user: &str) -> String {
    let clean: String = user
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    let mut start = clean.len().saturating_sub(crate::cdr::MAX_TEXT);
    while !clean.is_char_boundary(start) {
        start += 1;
    }
    clean[start..].to_string()
}

/// Whether the request's `Accept` (if any) admits an SDP answer (RFC 3261 §20.1: absent
/// means `application/sdp`; `*/*` and `application/*` admit it too).
pub(crate) fn accepts_sdp(req: &Request) -> bool {
    let mut any = false;
    for v in req.headers.values(&HeaderName::Accept) {
        any = true;
        let range = v
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if matches!(range.as_str(), "application/sdp" | "application/*" | "*/*") {
            return true;
        }
    }
    // An empty Accept header line means "no body at all" (§20.1); it still gets no SDP.
    !any && req.headers.get(&HeaderName::Accept).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ivr_sip::parse::{Framing, parse_message};
    use ivr_sip::route::RouteSet;
    use ivr_sip::{Message, Uri};

    fn invite(extra: &str) -> Request {
        let s = format!(
            "INVITE sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             From: <sip:+3361@127.0.0.1>;tag=a\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: c\r\n\
             CSeq: 1 INVITE\r\nContact: <sip:caller@127.0.0.1:5070>\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        match parse_message(s.as_bytes(), Framing::Datagram).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    const PROXY: &str = "127.0.0.1";

    #[test]
    fn a_caller_id_is_bounded_and_has_no_control_characters() {
        let proxy: IpAddr = PROXY.parse().unwrap();
        let r = invite("P-Asserted-Identity: <sip:+33%0061%1b@carrier>\r\n");
        assert_eq!(
            caller_id(&r, proxy, &[proxy]).as_deref(),
            Some("+33\u{fffd}61\u{fffd}")
        );
        let long = format!("{}1234", "9".repeat(4000));
        let r = invite(&format!("P-Asserted-Identity: <sip:{long}@carrier>\r\n"));
        let kept = caller_id(&r, proxy, &[proxy]).unwrap();
        assert_eq!(kept.len(), crate::cdr::MAX_TEXT);
        assert!(kept.ends_with("91234"), "the last digits stay");
    }

    #[test]
    fn asserted_identity_only_from_trusted_proxies() {
        let r = invite("P-Asserted-Identity: <sip:+3399@carrier>, <tel:+3399>\r\n");
        let proxy: IpAddr = PROXY.parse().unwrap();
        assert_eq!(caller_id(&r, proxy, &[proxy]).as_deref(), Some("+3399"));
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(caller_id(&r, other, &[proxy]).as_deref(), Some("+3361"));
        assert_eq!(caller_id(&r, proxy, &[]).as_deref(), Some("+3361"));
    }

    #[test]
    fn accept_without_sdp_is_refused() {
        assert!(accepts_sdp(&invite("")));
        assert!(accepts_sdp(&invite("Accept: application/sdp;level=1\r\n")));
        assert!(accepts_sdp(&invite(
            "Accept: text/plain, application/*\r\n"
        )));
        assert!(!accepts_sdp(&invite("Accept: text/nobodyKnowsThis\r\n")));
    }

    fn peer(t: Transport, a: &str) -> Peer {
        Peer {
            transport: t,
            addr: a.parse().unwrap(),
        }
    }

    #[test]
    fn next_hop_follows_the_first_route() {
        let mut r = invite("");
        r.headers.push(
            HeaderName::RecordRoute,
            "<sip:127.0.0.1:5090;lr>, <sip:127.0.0.1:5091;transport=tcp;lr>",
        );
        let rs = RouteSet::uas(&r.headers).unwrap();
        let target = rs.target(&Uri::parse("sip:caller@127.0.0.1:5070").unwrap());
        let via_proxy = peer(Transport::Udp, "127.0.0.1:5090");
        assert_eq!(
            next_hop(via_proxy, &target).peer,
            via_proxy,
            "to the proxy, not the caller's Contact"
        );
        // Without a route set: the caller's Contact.
        let direct = RouteSet::default().target(&Uri::parse("sip:c@127.0.0.1:5070").unwrap());
        assert_eq!(
            next_hop(peer(Transport::Udp, "127.0.0.1:4000"), &direct).peer,
            peer(Transport::Udp, "127.0.0.1:5070")
        );
        // Over TCP without a route set: the INVITE's connection.
        let tcp = peer(Transport::Tcp, "127.0.0.1:4000");
        assert_eq!(next_hop(tcp, &direct).peer, tcp);
        // A route with transport=tcp is reached over TCP.
        let rs = RouteSet::uas(&{
            let mut h = ivr_sip::Headers::new();
            h.push(
                HeaderName::RecordRoute,
                "<sip:127.0.0.1:5091;transport=tcp;lr>",
            );
            h
        })
        .unwrap();
        let t = rs.target(&Uri::parse("sip:c@127.0.0.1:5070").unwrap());
        assert_eq!(
            next_hop(peer(Transport::Udp, "127.0.0.1:5090"), &t).peer,
            peer(Transport::Tcp, "127.0.0.1:5091")
        );
        // A host name cannot be resolved here: back where the INVITE came from, flagged.
        let rs = RouteSet::uas(&{
            let mut h = ivr_sip::Headers::new();
            h.push(HeaderName::RecordRoute, "<sip:proxy.example.com;lr>");
            h
        })
        .unwrap();
        let t = rs.target(&Uri::parse("sip:c@127.0.0.1:5070").unwrap());
        let hop = next_hop(via_proxy, &t);
        assert!(hop.unresolved);
        assert_eq!(hop.peer, via_proxy);
    }

    #[test]
    fn a_tls_dialog_is_never_sent_in_clear() {
        let tls = peer(Transport::Tls, "127.0.0.1:4000");
        for contact in [
            "sip:c@127.0.0.1:5070;transport=udp",
            "sip:c@127.0.0.1:5070;transport=tcp",
        ] {
            let t = RouteSet::default().target(&Uri::parse(contact).unwrap());
            assert_eq!(next_hop(tls, &t).peer, tls, "{contact}");
        }
        let rs = RouteSet::uas(&{
            let mut h = ivr_sip::Headers::new();
            h.push(
                HeaderName::RecordRoute,
                "<sip:127.0.0.1:5090;transport=udp;lr>",
            );
            h
        })
        .unwrap();
        let t = rs.target(&Uri::parse("sip:c@127.0.0.1:5070").unwrap());
        assert_eq!(next_hop(tls, &t).peer, tls, "a UDP route");
        // Over TLS as asked: unchanged.
        let t = RouteSet::default().target(&Uri::parse("sips:c@127.0.0.1:5070").unwrap());
        assert_eq!(next_hop(tls, &t).peer.transport, Transport::Tls);
    }
}
