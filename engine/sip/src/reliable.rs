//! Reliable provisional responses (RFC 3262), the UAS side: [`ReliableProvisionals`] numbers
//! the 1xx it is given (`Require: 100rel`, `RSeq`), retransmits each on the virtual clock
//! until its PRACK comes (§3: from T1, doubling), matches PRACKs by `RAck` (§4, §7.2), says
//! whether a 2xx may go yet (§3: not before the PRACK of a 1xx that carried SDP) and gives up
//! after 64·T1.
//!
//! The UAC side (PRACKing the far end's reliable provisionals on outgoing legs) is in
//! [`crate::uac`], which keeps the RSeq state of each early dialog.

use crate::header::HeaderName;
use crate::message::{CoreHeaders, Headers, Method, Response};
use std::time::{Duration, Instant};

/// The option tag (RFC 3262 §2).
pub const TAG: &str = "100rel";

/// Whether a request requires reliable provisionals (`Require: 100rel`).
pub fn required(headers: &Headers) -> bool {
    crate::session_timer::has_option(headers, &HeaderName::Require, TAG)
}

/// Whether a request supports reliable provisionals (Supported or Require).
pub fn supported(headers: &Headers) -> bool {
    required(headers) || crate::session_timer::has_option(headers, &HeaderName::Supported, TAG)
}

/// An `RAck` value (RFC 3262 §7.2): the RSeq and CSeq of the response acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RAck {
    /// The response's RSeq.
    pub rseq: u32,
    /// The response's CSeq number.
    pub cseq: u32,
    /// The response's CSeq method.
    pub method: Method,
}

impl RAck {
    /// Parse `776656 1 INVITE`.
    pub fn parse(value: &str) -> Option<RAck> {
        let mut it = value.split_ascii_whitespace();
        let rseq = it.next()?.parse().ok()?;
        let cseq = it.next()?.parse().ok()?;
        let method = Method::from_token(it.next()?);
        it.next().is_none().then_some(RAck { rseq, cseq, method })
    }

    /// The RAck of a PRACK, if it has a readable one.
    pub fn of(headers: &Headers) -> Option<RAck> {
        RAck::parse(headers.get(&HeaderName::RAck)?)
    }
}

/// What a PRACK meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prack {
    /// It acknowledges the provisional being retransmitted: answer 200 (§3).
    Acknowledged {
        /// Whether that provisional carried a session description (the PRACK may carry
        /// the answer, §5).
        had_sdp: bool,
    },
    /// It matches no unacknowledged reliable provisional: answer 481 (§3).
    NoMatch,
}

#[derive(Debug, Clone)]
struct Pending {
    rseq: u32,
    cseq: u32,
    response: Response,
    has_sdp: bool,
    interval: Duration,
    next: Instant,
    give_up: Instant,
}

/// The reliable provisional responses of one INVITE server transaction.
#[derive(Debug, Clone)]
pub struct ReliableProvisionals {
    t1: Duration,
    next_rseq: u32,
    pending: Option<Pending>,
    /// (RSeq, CSeq) of a provisional whose retransmission stopped with the final response
    /// before its PRACK came: that PRACK may still come, and is answered 200.
    unacked_at_final: Option<(u32, u32)>,
    retransmits: Vec<Response>,
    gave_up: bool,
}

impl ReliableProvisionals {
    /// A sequence starting at `first_rseq` (RFC 3262 §3: chosen at random in 1..2^31-1;
    /// values out of range are folded into it), retransmitting from `t1`.
    pub fn new(t1: Duration, first_rseq: u32) -> ReliableProvisionals {
        ReliableProvisionals {
            // RFC 3261 §17.1.1.1: T1 is an RTT estimate; a day is far beyond any, and keeps
            // 64·T1 and the doubling within the Instant arithmetic.
            t1: t1.min(Duration::from_secs(86_400)),
            next_rseq: (first_rseq % 0x7FFF_FFFF).max(1),
            pending: None,
            unacked_at_final: None,
            retransmits: Vec::new(),
            gave_up: false,
        }
    }

    /// Make `response` (a 101-199 to the INVITE) reliable: `Require: 100rel` and the next
    /// `RSeq` are added, and it is retransmitted until PRACKed. Returns false, leaving it
    /// untouched, while an earlier one is unacknowledged (§3: one at a time, so they arrive
    /// in order): send it unreliably or later.
    pub fn send(&mut self, now: Instant, response: &mut Response) -> bool {
        if self.pending.is_some() || self.gave_up {
            return false;
        }
        let rseq = self.next_rseq;
        self.next_rseq = self.next_rseq.wrapping_add(1);
        response.headers.push(HeaderName::Require, TAG);
        response.headers.push(HeaderName::RSeq, rseq.to_string());
        self.pending = Some(Pending {
            rseq,
            cseq: response.cseq().map(|c| c.seq).unwrap_or_default(),
            has_sdp: !response.body.is_empty(),
            response: response.clone(),
            interval: self.t1,
            next: now + self.t1,
            give_up: now + self.t1.saturating_mul(64),
        });
        true
    }

    /// A PRACK arrived with `rack` (None: it had no readable RAck).
    pub fn handle_prack(&mut self, rack: Option<&RAck>) -> Prack {
        let matches = |p: &Pending, r: &RAck| {
            r.rseq == p.rseq && r.cseq == p.cseq && r.method == Method::Invite
        };
        match (&self.pending, rack) {
            (Some(p), Some(r)) if matches(p, r) => {
                let had_sdp = p.has_sdp;
                self.pending = None;
                Prack::Acknowledged { had_sdp }
            }
            // The final response went before this PRACK (allowed when the provisional had
            // no SDP, §3): it still acknowledges that provisional, once.
            (None, Some(r))
                if self.unacked_at_final == Some((r.rseq, r.cseq))
                    && r.method == Method::Invite =>
            {
                self.unacked_at_final = None;
                Prack::Acknowledged { had_sdp: false }
            }
            _ => Prack::NoMatch,
        }
    }

    /// Whether a 2xx may be sent now (§3: not while a provisional that carried SDP waits
    /// for its PRACK).
    pub fn may_send_2xx(&self) -> bool {
        !self.pending.as_ref().is_some_and(|p| p.has_sdp)
    }

    /// Whether a provisional waits for its PRACK.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// A final response went out: retransmissions stop (the transaction would drop them).
    pub fn finish(&mut self) {
        if let Some(p) = self.pending.take() {
            self.unacked_at_final = Some((p.rseq, p.cseq));
        }
    }

    /// Whether a provisional went unacknowledged for 64·T1: reject the INVITE with a 5xx
    /// (§3).
    pub fn gave_up(&self) -> bool {
        self.gave_up
    }

    /// Time passed: retransmit the provisional due (interval doubling, §3), or give up.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(p) = self.pending.as_mut() else {
            return;
        };
        if now >= p.give_up {
            self.pending = None;
            self.gave_up = true;
            return;
        }
        while now >= p.next {
            self.retransmits.push(p.response.clone());
            p.interval = p.interval.saturating_mul(2);
            p.next += p.interval;
        }
    }

    /// The next retransmission to hand to the transaction.
    #[must_use]
    pub fn poll_retransmit(&mut self) -> Option<Response> {
        (!self.retransmits.is_empty()).then(|| self.retransmits.remove(0))
    }

    /// The next deadline.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.as_ref().map(|p| p.next.min(p.give_up))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StatusCode;
    use crate::message::Request;
    use crate::parse::{Framing, parse_message};

    fn ringing(body: &str) -> Response {
        let s = "INVITE sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             From: <sip:c@127.0.0.1>;tag=a\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: c1\r\n\
             CSeq: 5 INVITE\r\nRequire: 100rel\r\nContact: <sip:c@127.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n";
        let req: Request = match parse_message(s.as_bytes(), Framing::Datagram).unwrap() {
            crate::Message::Request(r) => r,
            crate::Message::Response(_) => unreachable!(),
        };
        assert!(required(&req.headers) && supported(&req.headers));
        let mut r = Response::to_request(&req, StatusCode::RINGING);
        r.body = body.as_bytes().to_vec();
        r
    }

    #[test]
    fn rack_parses() {
        assert_eq!(
            RAck::parse("776656 5 INVITE"),
            Some(RAck {
                rseq: 776656,
                cseq: 5,
                method: Method::Invite
            })
        );
        assert_eq!(RAck::parse("1 INVITE"), None);
        assert_eq!(RAck::parse("1 2 INVITE x"), None);
    }

    #[test]
    fn retransmits_doubling_until_prack() {
        let t0 = crate::test_epoch();
        let t1 = Duration::from_millis(500);
        let mut rel = ReliableProvisionals::new(t1, 100);
        let mut r = ringing("");
        assert!(rel.send(t0, &mut r));
        assert_eq!(r.headers.get(&HeaderName::RSeq), Some("100"));
        assert_eq!(r.headers.get(&HeaderName::Require), Some("100rel"));
        assert!(!rel.send(t0, &mut ringing("")), "one at a time");
        // Retransmissions at 0.5, 1.5, 3.5 s (intervals 0.5, 1, 2).
        let mut at = Vec::new();
        let mut now = t0;
        while let Some(next) = rel.poll_timeout() {
            if next > t0 + Duration::from_secs(4) {
                break;
            }
            now = next;
            rel.handle_timeout(now);
            while rel.poll_retransmit().is_some() {
                at.push(now - t0);
            }
        }
        assert_eq!(
            at,
            [500, 1500, 3500].map(Duration::from_millis).to_vec(),
            "T1 doubling"
        );
        assert!(rel.may_send_2xx(), "no SDP in it: a 2xx may go");
        let wrong = RAck::parse("101 5 INVITE").unwrap();
        assert_eq!(rel.handle_prack(Some(&wrong)), Prack::NoMatch);
        assert_eq!(rel.handle_prack(None), Prack::NoMatch);
        let right = RAck::parse("100 5 INVITE").unwrap();
        assert_eq!(
            rel.handle_prack(Some(&right)),
            Prack::Acknowledged { had_sdp: false }
        );
        assert_eq!(rel.handle_prack(Some(&right)), Prack::NoMatch, "once only");
        assert_eq!(rel.poll_timeout(), None, "no more retransmissions");
        rel.handle_timeout(now + Duration::from_secs(10));
        assert!(rel.poll_retransmit().is_none());
        // The next one gets the next RSeq.
        let mut r2 = ringing("");
        assert!(rel.send(now, &mut r2));
        assert_eq!(r2.headers.get(&HeaderName::RSeq), Some("101"));
    }

    #[test]
    fn sdp_in_the_provisional_holds_the_2xx_until_prack() {
        let t0 = crate::test_epoch();
        let mut rel = ReliableProvisionals::new(Duration::from_millis(500), 7);
        let mut r = ringing("v=0\r\n");
        rel.send(t0, &mut r);
        assert!(!rel.may_send_2xx());
        assert_eq!(
            rel.handle_prack(RAck::parse("7 5 INVITE").as_ref()),
            Prack::Acknowledged { had_sdp: true }
        );
        assert!(rel.may_send_2xx());
    }

    #[test]
    fn prack_after_the_final_response_is_still_acknowledged_once() {
        let t0 = crate::test_epoch();
        let mut rel = ReliableProvisionals::new(Duration::from_millis(500), 40);
        rel.send(t0, &mut ringing(""));
        rel.finish();
        assert_eq!(
            rel.poll_timeout(),
            None,
            "no retransmission after the final response"
        );
        let rack = RAck::parse("40 5 INVITE").unwrap();
        assert_eq!(
            rel.handle_prack(Some(&rack)),
            Prack::Acknowledged { had_sdp: false }
        );
        assert_eq!(rel.handle_prack(Some(&rack)), Prack::NoMatch);
    }

    #[test]
    fn rseq_stays_in_range_and_huge_t1_does_not_overflow() {
        let t0 = crate::test_epoch();
        for first in [0, 1, 0x7FFF_FFFE, 0x7FFF_FFFF, 0x8000_0000, u32::MAX] {
            let mut rel = ReliableProvisionals::new(Duration::MAX, first);
            let mut r = ringing("");
            assert!(rel.send(t0, &mut r));
            let rseq: u32 = r.headers.get(&HeaderName::RSeq).unwrap().parse().unwrap();
            assert!((1..=0x7FFF_FFFE).contains(&rseq), "{first}: {rseq}");
            rel.handle_timeout(t0 + Duration::from_secs(86_400 * 3));
            assert!(rel.poll_retransmit().is_some());
            assert!(!rel.gave_up());
        }
    }

    #[test]
    fn gives_up_after_64_t1() {
        let t0 = crate::test_epoch();
        let mut rel = ReliableProvisionals::new(Duration::from_millis(500), 0);
        let mut r = ringing("");
        rel.send(t0, &mut r);
        assert_eq!(
            r.headers.get(&HeaderName::RSeq),
            Some("1"),
            "RSeq 0 is not allowed"
        );
        rel.handle_timeout(t0 + Duration::from_secs(31));
        assert!(!rel.gave_up());
        rel.handle_timeout(t0 + Duration::from_secs(32));
        assert!(rel.gave_up());
        assert_eq!(rel.poll_timeout(), None);
    }
}
