//! The outgoing-call machine's extensions (`ivr_sip::uac`), fed responses directly: reliable
//! provisionals (RFC 3262 §4, §5: PRACK per early dialog, RSeq order, the answer in a
//! reliable 1xx) and session timers (RFC 4028 §7.1-§7.4: the INVITE's headers, a 422, the
//! 2xx read).

use ivr_sip::message::CoreHeaders;
use ivr_sip::parse::{Framing, parse_message};
use ivr_sip::session_timer::{Policy, Refresher, Who};
use ivr_sip::transaction::TimerConfig;
use ivr_sip::uac::{OutgoingCall, OutgoingConfig, Phase, UacEvent};
use ivr_sip::{
    HeaderName, Message, Method, NameAddr, Request, Response, StatusCode, Transport, Uri,
};
use std::time::Instant;

mod common;
use common::{Counter, epoch};

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n";

fn config(timer: Option<Policy>) -> OutgoingConfig {
    OutgoingConfig {
        request_uri: Uri::parse("sip:agent@127.0.0.1:5070").unwrap(),
        to: NameAddr::parse("<sip:agent@127.0.0.1:5070>", HeaderName::To).unwrap(),
        from: NameAddr::parse("<sip:ivr@127.0.0.1>", HeaderName::From).unwrap(),
        local_tag: "ivrtag".into(),
        call_id: "ext-1@127.0.0.1".into(),
        cseq: 10,
        contact: Uri::parse("sip:ivr@127.0.0.1:5060").unwrap(),
        transport: Transport::Udp,
        sent_by: "127.0.0.1:5060".into(),
        route: Vec::new(),
        sdp_offer: Some(OFFER.as_bytes().to_vec()),
        credentials: None,
        extra_headers: Vec::new(),
        timers: TimerConfig::default(),
        session_timer: timer,
    }
}

struct Uac {
    now: Instant,
    call: OutgoingCall,
}

impl Uac {
    fn new(timer: Option<Policy>) -> Uac {
        let now = epoch();
        Uac {
            now,
            call: OutgoingCall::new(now, config(timer), Box::new(Counter(3))),
        }
    }

    fn requests(&mut self) -> Vec<Request> {
        let mut out = Vec::new();
        while let Some(t) = self.call.poll_transmit() {
            if let Message::Request(r) = t.message {
                out.push(r);
            }
        }
        out
    }

    fn events(&mut self) -> Vec<UacEvent> {
        std::iter::from_fn(|| self.call.poll_event()).collect()
    }

    /// A response to the INVITE in force, from fork `tag`, with these header lines.
    fn respond(&mut self, code: u16, tag: &str, extra: &str, sdp: &str) {
        let inv = self.call.invite().clone();
        let via = inv.headers.get(&HeaderName::Via).unwrap().to_string();
        let cseq = inv.cseq().unwrap().seq;
        let ctype = if sdp.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        let text = format!(
            "SIP/2.0 {code} X\r\nVia: {via}\r\nFrom: <sip:ivr@127.0.0.1>;tag=ivrtag\r\n\
             To: <sip:agent@127.0.0.1:5070>;tag={tag}\r\nCall-ID: ext-1@127.0.0.1\r\n\
             CSeq: {cseq} INVITE\r\nContact: <sip:agent-{tag}@127.0.0.1:5070>\r\n{extra}{ctype}\
             Content-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        let Message::Response(r) = parse_message(text.as_bytes(), Framing::Datagram).unwrap()
        else {
            unreachable!()
        };
        assert!(self.call.handle_response(self.now, r));
    }

    /// The 200 to one of our requests.
    fn ok(&mut self, req: &Request) {
        let r = Response::to_request(req, StatusCode::OK);
        self.call.handle_response(self.now, r);
    }
}

fn progress(events: &[UacEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, UacEvent::Progress { .. }))
        .count()
}

fn rack(r: &Request) -> &str {
    r.headers.get(&HeaderName::RAck).unwrap()
}

#[test]
fn reliable_provisionals_are_pracked_per_fork_in_rseq_order_and_reported_once() {
    let mut uac = Uac::new(None);
    let invite = uac.requests().remove(0);
    assert_eq!(invite.headers.get(&HeaderName::Supported), Some("100rel"));
    assert!(invite.headers.get(&HeaderName::SessionExpires).is_none());
    let sdp = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\n";
    uac.respond(183, "a", "Require: 100rel\r\nRSeq: 100\r\n", sdp);
    let pracks = uac.requests();
    assert_eq!(pracks.len(), 1);
    let prack_a = pracks[0].clone();
    assert_eq!(prack_a.method, Method::Prack);
    assert_eq!(rack(&prack_a), "100 10 INVITE");
    assert_eq!(prack_a.uri.to_string(), "sip:agent-a@127.0.0.1:5070");
    assert_eq!(prack_a.cseq().unwrap().seq, 11);
    assert_eq!(progress(&uac.events()), 1);
    // The retransmission: the same PRACK again, nothing reported.
    uac.respond(183, "a", "Require: 100rel\r\nRSeq: 100\r\n", sdp);
    let again = uac.requests();
    assert_eq!(again, vec![prack_a.clone()]);
    assert_eq!(progress(&uac.events()), 0);
    // Skipping one, or going back: neither PRACKed nor reported (§4).
    uac.respond(180, "a", "Require: 100rel\r\nRSeq: 102\r\n", "");
    uac.respond(180, "a", "Require: 100rel\r\nRSeq: 99\r\n", "");
    assert!(uac.requests().is_empty());
    assert_eq!(progress(&uac.events()), 0);
    // Another fork has its own sequence, starting anywhere.
    uac.respond(180, "b", "Require: 100rel\r\nRSeq: 5\r\n", "");
    let prack_b = uac.requests().remove(0);
    assert_eq!(rack(&prack_b), "5 10 INVITE");
    assert_eq!(prack_b.uri.to_string(), "sip:agent-b@127.0.0.1:5070");
    assert_eq!(
        prack_b.cseq().unwrap().seq,
        11,
        "its own early dialog's CSeq"
    );
    // The next in order on the first fork.
    uac.respond(180, "a", "Require: 100rel\r\nRSeq: 101\r\n", "");
    let next = uac.requests().remove(0);
    assert_eq!(rack(&next), "101 10 INVITE");
    assert_eq!(next.cseq().unwrap().seq, 12);
    assert_eq!(progress(&uac.events()), 2);
    uac.ok(&prack_a);
    uac.ok(&next);
    // An unreliable 180 is reported as before, without PRACK.
    uac.respond(180, "a", "", "");
    assert!(uac.requests().is_empty());
    assert_eq!(progress(&uac.events()), 1);
    // The 2xx of fork a without a body: the 183's SDP was the answer (§5). The confirmed
    // dialog goes on from the PRACKs' CSeq.
    uac.respond(200, "a", "", "");
    let events = uac.events();
    let Some(UacEvent::Answered {
        dialog,
        sdp: answer,
    }) = events.first()
    else {
        panic!("{events:?}")
    };
    assert_eq!(answer.as_slice(), sdp.as_bytes());
    assert_eq!(dialog.local_seq, 12);
    let ack = uac.requests().remove(0);
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.cseq().unwrap().seq, 10);
    assert_eq!(uac.call.phase(), Phase::Answered);
}

#[test]
fn a_reliable_provisional_without_rseq_or_tag_is_taken_as_unreliable() {
    let mut uac = Uac::new(None);
    uac.requests();
    uac.respond(180, "a", "Require: 100rel\r\nRSeq: x\r\n", "");
    assert!(uac.requests().is_empty());
    assert_eq!(progress(&uac.events()), 1);
}

#[test]
fn session_timer_offer_422_and_the_2xx_read() {
    let policy = Policy {
        min_se: 90,
        interval: 600,
    };
    let mut uac = Uac::new(Some(policy));
    let invite = uac.requests().remove(0);
    assert_eq!(
        invite.headers.get(&HeaderName::Supported),
        Some("timer, 100rel")
    );
    assert_eq!(invite.headers.get(&HeaderName::SessionExpires), Some("600"));
    assert_eq!(invite.headers.get(&HeaderName::MinSe), Some("90"));
    // A 422 naming less than asked is a failure, not a retry.
    uac.respond(422, "p", "Min-SE: 600\r\n", "");
    assert!(uac.requests().iter().all(|r| r.method == Method::Ack));
    assert!(matches!(uac.events().as_slice(), [UacEvent::Failed(_)]));

    let mut uac = Uac::new(Some(policy));
    uac.requests();
    for (round, min) in [(1, 700), (2, 800), (3, 900)] {
        uac.respond(422, "p", &format!("Min-SE: {min}\r\n"), "");
        let sent = uac.requests();
        let again = sent
            .iter()
            .find(|r| r.method == Method::Invite)
            .unwrap_or_else(|| panic!("round {round}: {sent:?}"));
        assert_eq!(again.cseq().unwrap().seq, 10 + round);
        let min = min.to_string();
        assert_eq!(
            again.headers.get(&HeaderName::SessionExpires),
            Some(min.as_str())
        );
        assert_eq!(again.headers.get(&HeaderName::MinSe), Some(min.as_str()));
    }
    // The fourth is one too many.
    uac.respond(422, "p", "Min-SE: 1000\r\n", "");
    assert!(uac.requests().iter().all(|r| r.method == Method::Ack));
    assert!(
        uac.events()
            .iter()
            .any(|e| matches!(e, UacEvent::Failed(_)))
    );

    // Answered after one 422: the 2xx's Session-Expires is the timer, held to our Min-SE.
    let mut uac = Uac::new(Some(policy));
    uac.requests();
    uac.respond(422, "p", "Min-SE: 700\r\n", "");
    uac.requests();
    uac.respond(
        200,
        "a",
        "Session-Expires: 120;refresher=uas\r\nAllow: INVITE, UPDATE\r\nSupported: timer\r\n",
        OFFER,
    );
    let ext = uac.call.answer_extensions();
    assert_eq!(ext.min_se, 700);
    assert!(ext.allows_update);
    let a = ext.session.expect("a timer");
    assert_eq!(a.interval, 700, "never under the Min-SE we sent");
    assert_eq!(a.refresher, Refresher::Uas);
    assert_eq!(a.who(true), Who::Remote);

    // A 2xx without Session-Expires: no timer (§7.2).
    let mut uac = Uac::new(Some(policy));
    uac.requests();
    uac.respond(200, "a", "", OFFER);
    assert_eq!(uac.call.answer_extensions().session, None);
}

#[test]
fn a_new_invite_after_a_422_starts_a_new_rseq_space_above_the_pracks_cseq() {
    let policy = Policy {
        min_se: 90,
        interval: 90,
    };
    let mut uac = Uac::new(Some(policy));
    uac.requests();
    uac.respond(180, "a", "Require: 100rel\r\nRSeq: 50\r\n", "");
    let prack = uac.requests().remove(0);
    assert_eq!(prack.cseq().unwrap().seq, 11);
    uac.ok(&prack);
    // A proxy behind the ringing phone's fork wants more: the new INVITE goes above the
    // PRACK's CSeq.
    uac.respond(422, "p", "Min-SE: 300\r\n", "");
    let again = uac
        .requests()
        .into_iter()
        .find(|r| r.method == Method::Invite)
        .expect("a new INVITE");
    assert_eq!(again.cseq().unwrap().seq, 12);
    // The same fork rings again for the new INVITE, its RSeq counting afresh.
    uac.respond(183, "a", "Require: 100rel\r\nRSeq: 7\r\n", OFFER);
    let prack = uac.requests().remove(0);
    assert_eq!(rack(&prack), "7 12 INVITE");
    assert_eq!(prack.cseq().unwrap().seq, 13);
}
