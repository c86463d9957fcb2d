//! The outgoing-call machine (`ivr_sip::uac`) against a callee built on the crate's own
//! transaction layer, over a simulated lossy network, in virtual time (ARCHITECTURE.md §5).
//!
//! Every message crosses the "wire" as bytes and is parsed again; the callee's INVITE server
//! transaction retransmits its 2xx (RFC 3261 §13.3.1.4) and its digest checks use the server
//! half of `ivr_sip::digest`, so both halves are exercised against each other.

use ivr_sip::digest::{Algorithm, Authorization, Credentials, NonceIssuer, VerifyError, ha1};
use ivr_sip::ids::Tag;
use ivr_sip::message::CoreHeaders;
use ivr_sip::parse::{Framing, parse_message};
use ivr_sip::transaction::{Peer, ServerKey, TimerConfig, TransactionLayer, TxEvent};
use ivr_sip::uac::{
    CancelReason, FailureCause, FailureKind, OutgoingCall, OutgoingConfig, Phase, UacEvent,
};
use ivr_sip::{
    HeaderName, Message, Method, NameAddr, Request, Response, StatusCode, Transport, Uri,
};
use std::time::{Duration, Instant};

mod common;
use common::{Counter, epoch};

const LATENCY: Duration = Duration::from_millis(10);
const REALM: &str = "trunk.test";
const NOW_SECS: u64 = 1_000;

fn name_addr(s: &str) -> NameAddr {
    NameAddr::parse(s, HeaderName::To).unwrap()
}

fn config() -> OutgoingConfig {
    OutgoingConfig {
        request_uri: Uri::parse("sip:agent@127.0.0.1:5070").unwrap(),
        to: name_addr("<sip:agent@127.0.0.1:5070>"),
        from: name_addr("\"IVR\" <sip:ivr@127.0.0.1>"),
        local_tag: "ivrtag".into(),
        call_id: "out-1@127.0.0.1".into(),
        cseq: 1,
        contact: Uri::parse("sip:ivr@127.0.0.1:5060").unwrap(),
        transport: Transport::Udp,
        sent_by: "127.0.0.1:5060".into(),
        route: Vec::new(),
        sdp_offer: Some(b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n".to_vec()),
        credentials: None,
        extra_headers: vec![(HeaderName::UserAgent, "ivr-test".into())],
        timers: TimerConfig::default(),
        session_timer: None,
    }
}

/// What the callee does after an INVITE passes its checks: each step at a delay from the
/// INVITE's arrival.
#[derive(Debug, Clone)]
enum Step {
    /// Send this status with this To tag on the transaction (Contact and SDP on 101-299).
    Respond(u16, &'static str),
    /// A second 2xx with another tag, sent outside the transaction, as a forking proxy
    /// forwards it (RFC 3261 §16.7 point 5).
    ForkOk(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    ToCallee,
    ToCaller,
}

struct Challenge {
    proxy: bool,
    issuer: NonceIssuer,
    /// When the first challenge's nonce was issued (older than the lifetime: the answer to it
    /// is stale).
    first_issued: u64,
    algorithm: Algorithm,
    ha1: String,
}

/// Decides whether the network loses a message: (direction, message, how many of its kind
/// went the same way before).
type DropRule = Box<dyn FnMut(Dir, &Message, usize) -> bool>;
/// Owner commands at virtual times.
type Commands = Vec<(Duration, Box<dyn FnOnce(&mut OutgoingCall, Instant)>)>;

struct Sim {
    now: Instant,
    t0: Instant,
    uac: OutgoingCall,
    uas: TransactionLayer,
    plan: Vec<(Duration, Step)>,
    challenge: Option<Challenge>,
    scheduled: Vec<(Instant, ServerKey, Request, Step)>,
    wire: Vec<(Instant, Dir, Vec<u8>)>,
    /// Drop rule: (direction, message, how many of this kind were sent before) → drop?
    drop: DropRule,
    sent: Vec<(Instant, Dir, Message)>,
    /// What arrived at the callee, in order.
    at_callee: Vec<Message>,
    events: Vec<(Duration, UacEvent)>,
    /// The 2xx-acknowledged INVITE transactions, by To tag.
    invite_keys: Vec<(String, ServerKey)>,
    next_hops: Vec<Uri>,
}

fn caller_peer() -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: "127.0.0.1:5060".parse().unwrap(),
    }
}

impl Sim {
    fn new(config: OutgoingConfig, plan: Vec<(u64, Step)>) -> Sim {
        let t0 = epoch();
        Sim {
            now: t0,
            t0,
            uac: OutgoingCall::new(t0, config, Box::new(Counter(7))),
            uas: TransactionLayer::new(TimerConfig::default()),
            plan: plan
                .into_iter()
                .map(|(ms, s)| (Duration::from_millis(ms), s))
                .collect(),
            challenge: None,
            scheduled: Vec::new(),
            wire: Vec::new(),
            drop: Box::new(|_, _, _| false),
            sent: Vec::new(),
            at_callee: Vec::new(),
            events: Vec::new(),
            invite_keys: Vec::new(),
            next_hops: Vec::new(),
        }
    }

    fn kind_count(&self, dir: Dir, m: &Message) -> usize {
        self.sent
            .iter()
            .filter(|(_, d, x)| *d == dir && same_kind(x, m))
            .count()
    }

    fn put(&mut self, dir: Dir, m: Message) {
        let n = self.kind_count(dir, &m);
        self.sent.push((self.now, dir, m.clone()));
        if !(self.drop)(dir, &m, n) {
            self.wire.push((self.now + LATENCY, dir, m.to_bytes()));
        }
    }

    /// Move everything queued; run the callee's reactions; until quiet.
    fn settle(&mut self) {
        loop {
            let mut busy = false;
            while let Some(t) = self.uac.poll_transmit() {
                busy = true;
                self.next_hops.push(t.next_hop);
                self.put(Dir::ToCallee, t.message);
            }
            while let Some((_, m)) = self.uas.poll_transmit() {
                busy = true;
                self.put(Dir::ToCaller, m);
            }
            while let Some(e) = self.uac.poll_event() {
                busy = true;
                self.events.push((self.now - self.t0, e));
            }
            while let Some(e) = self.uas.poll_event() {
                busy = true;
                self.callee(e);
            }
            if !busy {
                return;
            }
        }
    }

    fn callee(&mut self, e: TxEvent) {
        let TxEvent::Request { key, request, .. } = e else {
            return;
        };
        self.at_callee.push(Message::Request(request.clone()));
        match request.method {
            Method::Invite => {
                if let Some(c) = &self.challenge
                    && let Some((status, stale)) = refuse(c, &request)
                {
                    let mut r = Response::to_request(&request, StatusCode::new(status).unwrap());
                    with_tag(&mut r, "auth");
                    let header = if c.proxy {
                        "Proxy-Authenticate"
                    } else {
                        "WWW-Authenticate"
                    };
                    let ch = c.issuer.challenge(
                        if stale { NOW_SECS } else { c.first_issued },
                        c.algorithm,
                        stale,
                    );
                    r.headers
                        .push(HeaderName::from_wire(header), ch.to_string());
                    self.uas.respond(self.now, &key, r);
                    return;
                }
                for (after, step) in self.plan.clone() {
                    self.scheduled
                        .push((self.now + after, key.clone(), request.clone(), step));
                }
            }
            Method::Ack => {
                let tag = request.party_to().unwrap().tag().unwrap().to_string();
                if let Some((_, k)) = self.invite_keys.iter().find(|(t, _)| *t == tag) {
                    let k = k.clone();
                    self.uas.ack_received(self.now, &k);
                }
            }
            Method::Cancel => {
                self.uas.respond(
                    self.now,
                    &key,
                    Response::to_request(&request, StatusCode::OK),
                );
                let invite = key.invite_for_cancel();
                if self.uas.is_pending_invite(&invite) {
                    self.scheduled.retain(|(_, k, _, _)| *k != invite);
                    let inv = self.invite_for(&invite);
                    let mut r = Response::to_request(&inv, StatusCode::REQUEST_TERMINATED);
                    with_tag(&mut r, "a");
                    self.uas.respond(self.now, &invite, r);
                }
            }
            Method::Bye => {
                self.uas.respond(
                    self.now,
                    &key,
                    Response::to_request(&request, StatusCode::OK),
                );
            }
            _ => {}
        }
    }

    fn invite_for(&self, key: &ServerKey) -> Request {
        self.at_callee
            .iter()
            .rev()
            .find_map(|m| match m {
                Message::Request(r)
                    if r.method == Method::Invite && ServerKey::of(r).as_ref() == Some(key) =>
                {
                    Some(r.clone())
                }
                _ => None,
            })
            .unwrap()
    }

    fn perform(&mut self, key: ServerKey, invite: Request, step: Step) {
        match step {
            Step::Respond(code, tag) => {
                let status = StatusCode::new(code).unwrap();
                let mut r = Response::to_request(&invite, status);
                with_tag(&mut r, tag);
                if code > 100 && code < 300 {
                    r.headers
                        .push(HeaderName::Contact, format!("<sip:{tag}@127.0.0.1:5070>"));
                    r.headers
                        .push(HeaderName::RecordRoute, "<sip:127.0.0.1:5090;lr>");
                    if code != 180 {
                        r.headers.push(HeaderName::ContentType, "application/sdp");
                        r.body =
                            format!("v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns={tag}\r\n").into_bytes();
                    }
                }
                if status.is_success() {
                    self.invite_keys.push((tag.to_string(), key.clone()));
                }
                self.uas.respond(self.now, &key, r);
            }
            Step::ForkOk(tag) => {
                let mut r = Response::to_request(&invite, StatusCode::OK);
                with_tag(&mut r, tag);
                r.headers
                    .push(HeaderName::Contact, format!("<sip:{tag}@127.0.0.1:5071>"));
                self.uas.send_stateless(caller_peer(), Message::Response(r));
            }
        }
    }

    /// Advance virtual time to `until`, delivering messages and firing timers on the way.
    /// `at` runs owner commands at their times.
    fn run(&mut self, until: Duration, mut at: Commands) {
        let end = self.t0 + until;
        self.settle();
        loop {
            let next = [
                self.wire.iter().map(|w| w.0).min(),
                self.uac.poll_timeout(),
                self.uas.poll_timeout(),
                self.scheduled.iter().map(|s| s.0).min(),
                at.iter().map(|(d, _)| self.t0 + *d).min(),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next.filter(|n| *n <= end) else {
                self.now = end;
                return;
            };
            self.now = self.now.max(next);
            let now = self.now;
            let (due, rest): (Vec<_>, Vec<_>) =
                at.into_iter().partition(|(d, _)| self.t0 + *d <= now);
            at = rest;
            for (_, f) in due {
                f(&mut self.uac, now);
            }
            let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.scheduled)
                .into_iter()
                .partition(|s| s.0 <= now);
            self.scheduled = rest;
            for (_, k, inv, step) in due {
                self.perform(k, inv, step);
            }
            let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.wire)
                .into_iter()
                .partition(|w| w.0 <= now);
            self.wire = rest;
            for (_, dir, bytes) in due {
                let m = parse_message(&bytes, Framing::Datagram).expect("what we print parses");
                match (dir, m) {
                    (Dir::ToCallee, m) => self.uas.handle_message(now, m, caller_peer()),
                    (Dir::ToCaller, Message::Response(r)) => {
                        assert!(self.uac.handle_response(now, r.clone()), "stray {r:?}");
                    }
                    (Dir::ToCaller, Message::Request(r)) => panic!("callee sent a request {r:?}"),
                }
            }
            self.uac.handle_timeout(now);
            self.uas.handle_timeout(now);
            self.settle();
        }
    }

    fn requests_at_callee(&self, method: Method) -> Vec<&Request> {
        self.at_callee
            .iter()
            .filter_map(|m| match m {
                Message::Request(r) if r.method == method => Some(r),
                _ => None,
            })
            .collect()
    }

    fn sent_by_caller(&self, method: Method) -> Vec<(Duration, &Request)> {
        self.sent
            .iter()
            .filter_map(|(t, d, m)| match m {
                Message::Request(r) if *d == Dir::ToCallee && r.method == method => {
                    Some((*t - self.t0, r))
                }
                _ => None,
            })
            .collect()
    }

    fn responses_to_caller(&self, code: u16) -> usize {
        self.sent
            .iter()
            .filter(|(_, d, m)| {
                *d == Dir::ToCaller && matches!(m, Message::Response(r) if r.status.code() == code)
            })
            .count()
    }

    fn failures(&self) -> Vec<(FailureKind, FailureCause)> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                UacEvent::Failed(f) => Some((f.kind, f.cause)),
                _ => None,
            })
            .collect()
    }

    fn answered(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                UacEvent::Answered { dialog, .. } => Some(dialog.id.remote_tag.to_string()),
                _ => None,
            })
            .collect()
    }
}

fn same_kind(a: &Message, b: &Message) -> bool {
    match (a, b) {
        (Message::Request(x), Message::Request(y)) => x.method == y.method,
        (Message::Response(x), Message::Response(y)) => {
            x.status == y.status
                && x.cseq().ok().map(|c| c.method) == y.cseq().ok().map(|c| c.method)
        }
        _ => false,
    }
}

fn with_tag(r: &mut Response, tag: &str) {
    let mut to = r.party_to().unwrap();
    to.params.set("tag", Some(tag.to_string()));
    r.headers.set(HeaderName::To, to.to_string());
}

/// The callee's digest check: `None` if the INVITE carries a right answer, else the status
/// of the challenge to send and whether it says `stale=true`.
fn refuse(c: &Challenge, request: &Request) -> Option<(u16, bool)> {
    let (header, status) = if c.proxy {
        ("Proxy-Authorization", 407)
    } else {
        ("Authorization", 401)
    };
    let verdict = request
        .headers
        .get(&HeaderName::from_wire(header))
        .and_then(|v| Authorization::parse(v).ok())
        .filter(|a| a.uri == request.uri.to_string())
        .map(|a| c.issuer.verify(&a, "INVITE", &c.ha1, NOW_SECS));
    match verdict {
        Some(Ok(())) => None,
        Some(Err(VerifyError::Stale)) => Some((status, true)),
        _ => Some((status, false)),
    }
}

/// The failure an owner's cancel ends in.
fn cancelled(reason: CancelReason) -> Vec<(FailureKind, FailureCause)> {
    vec![(FailureKind::NoAnswer, FailureCause::Cancelled(reason))]
}

fn never() -> Commands {
    Vec::new()
}

fn cancel_at(ms: u64, reason: CancelReason) -> Commands {
    vec![(
        Duration::from_millis(ms),
        Box::new(move |c: &mut OutgoingCall, now| c.cancel(now, reason)),
    )]
}

#[test]
fn invite_trying_early_media_ringing_ok_ack_through_an_outbound_proxy() {
    let mut cfg = config();
    cfg.route = vec![name_addr("<sip:127.0.0.1:5080;lr>")];
    let mut sim = Sim::new(
        cfg,
        vec![
            (100, Step::Respond(183, "a")),
            (200, Step::Respond(180, "a")),
            (1_000, Step::Respond(200, "a")),
        ],
    );
    sim.run(Duration::from_secs(40), never());
    let invites = sim.requests_at_callee(Method::Invite);
    assert_eq!(invites.len(), 1);
    let inv = invites[0];
    assert_eq!(inv.uri.to_string(), "sip:agent@127.0.0.1:5070");
    assert_eq!(
        inv.headers.get(&HeaderName::Route),
        Some("<sip:127.0.0.1:5080;lr>"),
        "§8.1.2: the pre-loaded route set goes in Route"
    );
    assert_eq!(sim.next_hops[0].to_string(), "sip:127.0.0.1:5080;lr");
    assert_eq!(inv.party_from().unwrap().tag(), Some("ivrtag"));
    assert_eq!(
        inv.headers.get(&HeaderName::ContentType),
        Some("application/sdp")
    );
    // Progress: the 100 (no tag), the 183 with its SDP (early media), the 180.
    let progress: Vec<(u16, Option<String>, bool)> = sim
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            UacEvent::Progress {
                status,
                remote_tag,
                sdp,
            } => Some((
                status.code(),
                remote_tag.as_ref().map(Tag::to_string),
                sdp.is_some(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        progress,
        vec![
            (100, None, false),
            (183, Some("a".into()), true),
            (180, Some("a".into()), false)
        ]
    );
    assert_eq!(sim.answered(), vec!["a".to_string()]);
    let (_, UacEvent::Answered { dialog, sdp }) = sim
        .events
        .iter()
        .find(|(_, e)| matches!(e, UacEvent::Answered { .. }))
        .unwrap()
    else {
        unreachable!()
    };
    assert!(String::from_utf8_lossy(sdp).contains("s=a"));
    assert_eq!(dialog.remote_target.to_string(), "sip:a@127.0.0.1:5070");
    // One ACK, a new transaction (new branch), CSeq 1 ACK, following the dialog's route set
    // (the 200's Record-Route), to the recorded proxy.
    let acks = sim.sent_by_caller(Method::Ack);
    assert_eq!(acks.len(), 1);
    let ack = acks[0].1;
    assert_eq!(ack.uri.to_string(), "sip:a@127.0.0.1:5070");
    assert_eq!(ack.cseq().unwrap().to_string(), "1 ACK");
    assert_ne!(
        ack.top_via().unwrap().branch(),
        inv.top_via().unwrap().branch()
    );
    assert_eq!(
        ack.headers.get(&HeaderName::Route),
        Some("<sip:127.0.0.1:5090;lr>")
    );
    assert_eq!(ack.party_to().unwrap().tag(), Some("a"));
    assert_eq!(
        sim.responses_to_caller(200),
        1,
        "the ACK stopped the 2xx retransmissions"
    );
    assert!(sim.failures().is_empty());
    assert_eq!(sim.uac.phase(), Phase::Answered);
    assert!(
        sim.uac.is_finished(),
        "Timer M ended the INVITE transaction"
    );
    // The owner hangs up: BYE on the dialog, CSeq 2.
    let now = sim.now;
    assert!(sim.uac.bye(now));
    assert!(!sim.uac.bye(now), "one BYE");
    sim.run(Duration::from_secs(41), never());
    let byes = sim.requests_at_callee(Method::Bye);
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].cseq().unwrap().to_string(), "2 BYE");
}

#[test]
fn lost_invite_and_lost_acks_are_recovered_by_retransmission() {
    let mut sim = Sim::new(config(), vec![(50, Step::Respond(200, "a"))]);
    // The first INVITE and the first two ACKs are lost.
    sim.drop = Box::new(|dir, m, n| {
        dir == Dir::ToCallee
            && matches!(m, Message::Request(r) if
                (r.method == Method::Invite && n == 0) || (r.method == Method::Ack && n < 2))
    });
    sim.run(Duration::from_secs(40), never());
    assert_eq!(
        sim.sent_by_caller(Method::Invite).len(),
        2,
        "Timer A resent it"
    );
    assert_eq!(
        sim.sent_by_caller(Method::Invite)[1].0,
        Duration::from_millis(500)
    );
    let acks = sim.sent_by_caller(Method::Ack);
    assert_eq!(acks.len(), 3, "one ACK per 2xx received (§13.2.2.4)");
    assert_eq!(
        sim.responses_to_caller(200),
        3,
        "the callee retransmitted its 2xx twice"
    );
    // Every ACK is the same request (same branch).
    assert!(acks.windows(2).all(|w| w[0].1 == w[1].1));
    assert_eq!(sim.requests_at_callee(Method::Ack).len(), 1);
    assert_eq!(sim.answered().len(), 1, "one answer, however many 2xx");
}

#[test]
fn cancel_after_ringing_gets_487_and_no_answer() {
    let mut sim = Sim::new(config(), vec![(100, Step::Respond(180, "a"))]);
    sim.run(
        Duration::from_secs(40),
        cancel_at(2_000, CancelReason::RingTimeout),
    );
    let cancels = sim.sent_by_caller(Method::Cancel);
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].0, Duration::from_secs(2));
    let (c, i) = (cancels[0].1, sim.sent_by_caller(Method::Invite)[0].1);
    assert_eq!(
        c.top_via().unwrap().branch(),
        i.top_via().unwrap().branch(),
        "§9.1"
    );
    assert_eq!(c.cseq().unwrap().to_string(), "1 CANCEL");
    assert_eq!(c.uri, i.uri);
    assert_eq!(
        c.headers.get(&HeaderName::To),
        i.headers.get(&HeaderName::To)
    );
    assert_eq!(sim.responses_to_caller(487), 1);
    // The 487 was ACKed by the transaction (same branch, §17.1.1.3).
    let acks = sim.sent_by_caller(Method::Ack);
    assert_eq!(acks.len(), 1);
    assert_eq!(
        acks[0].1.top_via().unwrap().branch(),
        i.top_via().unwrap().branch()
    );
    assert_eq!(sim.failures(), cancelled(CancelReason::RingTimeout));
    assert!(sim.uac.is_finished());
}

#[test]
fn it_may_ring_longer_than_timer_b() {
    let mut sim = Sim::new(
        config(),
        vec![
            (100, Step::Respond(180, "a")),
            (60_000, Step::Respond(200, "a")),
        ],
    );
    sim.run(Duration::from_secs(61), never());
    assert!(sim.failures().is_empty(), "{:?}", sim.events);
    assert_eq!(sim.answered(), vec!["a".to_string()]);
}

#[test]
fn cancel_before_any_provisional_waits_for_one() {
    // The callee's 100 Trying is lost; its 180 comes at 3 s.
    let mut sim = Sim::new(config(), vec![(3_000, Step::Respond(180, "a"))]);
    sim.drop = Box::new(|dir, m, _| {
        dir == Dir::ToCaller && matches!(m, Message::Response(r) if r.status.code() == 100)
    });
    sim.run(
        Duration::from_secs(40),
        cancel_at(100, CancelReason::Abandoned),
    );
    let cancels = sim.sent_by_caller(Method::Cancel);
    assert_eq!(cancels.len(), 1, "{:?}", sim.events);
    assert_eq!(
        cancels[0].0,
        // The INVITE reaches the callee after LATENCY, its 180 comes back after another.
        Duration::from_millis(3_000) + 2 * LATENCY,
        "§9.1: not before a provisional response"
    );
    // Meanwhile the INVITE was retransmitted (no response heard) and its retransmissions
    // stop at the 180.
    let invites = sim.sent_by_caller(Method::Invite);
    assert_eq!(
        invites
            .iter()
            .map(|(t, _)| t.as_millis())
            .collect::<Vec<_>>(),
        vec![0, 500, 1_500]
    );
    assert_eq!(sim.failures(), cancelled(CancelReason::Abandoned));
}

#[test]
fn two_hundred_crossing_the_cancel_is_acked_then_byed() {
    let mut sim = Sim::new(
        config(),
        vec![
            (100, Step::Respond(180, "a")),
            (1_000, Step::Respond(200, "a")),
        ],
    );
    // The owner cancels 5 ms after the callee answered: the 200 and the CANCEL cross.
    sim.run(
        Duration::from_secs(40),
        cancel_at(1_005, CancelReason::Abandoned),
    );
    assert_eq!(sim.sent_by_caller(Method::Cancel).len(), 1);
    assert_eq!(
        sim.responses_to_caller(487),
        0,
        "the INVITE was already answered"
    );
    let acks = sim.requests_at_callee(Method::Ack);
    let byes = sim.requests_at_callee(Method::Bye);
    assert_eq!((acks.len(), byes.len()), (1, 1));
    assert_eq!(byes[0].party_to().unwrap().tag(), Some("a"));
    assert_eq!(byes[0].cseq().unwrap().seq, 2);
    assert!(sim.answered().is_empty());
    assert!(sim.events.iter().any(
        |(_, e)| matches!(e, UacEvent::Released { remote_tag } if remote_tag.as_str() == "a")
    ));
    assert_eq!(sim.failures(), cancelled(CancelReason::Abandoned));
    assert!(sim.uac.is_finished());
}

#[test]
fn forked_invite_answered_twice_keeps_the_first_and_byes_the_second() {
    let mut sim = Sim::new(
        config(),
        vec![
            (100, Step::Respond(180, "a")),
            (120, Step::Respond(180, "b")),
            (1_000, Step::Respond(200, "a")),
            (1_050, Step::ForkOk("b")),
        ],
    );
    sim.run(Duration::from_secs(40), never());
    assert_eq!(
        sim.uac.early_dialogs().len(),
        0,
        "both early dialogs were confirmed or ended"
    );
    assert_eq!(sim.answered(), vec!["a".to_string()]);
    let acks: Vec<_> = sim
        .requests_at_callee(Method::Ack)
        .iter()
        .map(|a| a.party_to().unwrap().tag().unwrap().to_string())
        .collect();
    assert_eq!(acks, vec!["a", "b"], "each 2xx is ACKed (§13.2.2.4)");
    let byes = sim.requests_at_callee(Method::Bye);
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].party_to().unwrap().tag(), Some("b"));
    assert_eq!(byes[0].uri.to_string(), "sip:b@127.0.0.1:5071");
    assert!(sim.failures().is_empty());
    assert_eq!(sim.uac.dialog().unwrap().id.remote_tag.as_str(), "a");
}

#[test]
fn busy_is_busy() {
    for (code, kind) in [
        (486, FailureKind::Busy),
        (600, FailureKind::Busy),
        (480, FailureKind::NoAnswer),
        (408, FailureKind::NoAnswer),
        (603, FailureKind::Rejected),
        (404, FailureKind::Rejected),
        (503, FailureKind::Failed),
        (302, FailureKind::Failed),
    ] {
        let mut sim = Sim::new(config(), vec![(100, Step::Respond(code, "a"))]);
        sim.run(Duration::from_secs(40), never());
        let st = StatusCode::new(code).unwrap();
        assert_eq!(
            sim.failures(),
            vec![(kind, FailureCause::Status(st))],
            "{code}"
        );
        assert_eq!(sim.sent_by_caller(Method::Ack).len(), 1, "{code}");
        assert!(sim.uac.is_finished(), "{code}");
    }
}

fn challenged(proxy: bool, algorithm: Algorithm, password: &str) -> Sim {
    challenged_at(proxy, algorithm, password, NOW_SECS)
}

fn challenged_at(proxy: bool, algorithm: Algorithm, password: &str, first_issued: u64) -> Sim {
    let mut cfg = config();
    cfg.credentials = Some(Credentials {
        username: "ivr".into(),
        password: password.into(),
    });
    let mut sim = Sim::new(cfg, vec![(100, Step::Respond(200, "a"))]);
    sim.challenge = Some(Challenge {
        proxy,
        issuer: NonceIssuer::new(REALM, [3; 32], 300),
        first_issued,
        algorithm,
        ha1: ha1(algorithm, "ivr", REALM, "secret"),
    });
    sim.run(Duration::from_secs(40), never());
    sim
}

fn check_answered_after_challenge(sim: &Sim, proxy: bool, status: u16) {
    let invites = sim.requests_at_callee(Method::Invite);
    assert_eq!(invites.len(), 2, "{:?}", sim.events);
    let (first, second) = (invites[0], invites[1]);
    assert_eq!(
        first.cseq().unwrap().seq + 1,
        second.cseq().unwrap().seq,
        "§22.2: CSeq+1"
    );
    assert_eq!(first.call_id().unwrap(), second.call_id().unwrap());
    assert_eq!(
        first.party_from().unwrap().tag(),
        second.party_from().unwrap().tag()
    );
    assert_ne!(
        first.top_via().unwrap().branch(),
        second.top_via().unwrap().branch()
    );
    let header = HeaderName::from_wire(if proxy {
        "Proxy-Authorization"
    } else {
        "Authorization"
    });
    assert!(second.headers.get(&header).is_some());
    assert!(
        sim.events.iter().any(|(_, e)| matches!(e, UacEvent::Authenticating { status: s, realm } if s.code() == status && realm == REALM))
    );
    assert_eq!(sim.answered(), vec!["a".to_string()]);
    // The challenge was ACKed by its transaction; the 2xx's ACK carries the credentials.
    let acks = sim.sent_by_caller(Method::Ack);
    assert_eq!(acks.len(), 2);
    assert!(acks[0].1.headers.get(&header).is_none());
    assert_eq!(acks[1].1.headers.get(&header), second.headers.get(&header));
    assert_eq!(acks[1].1.cseq().unwrap().seq, second.cseq().unwrap().seq);
}

#[test]
fn www_authenticate_401_then_200_with_sha256() {
    let sim = challenged(false, Algorithm::Sha256, "secret");
    check_answered_after_challenge(&sim, false, 401);
    let second = sim.requests_at_callee(Method::Invite)[1];
    let a = Authorization::parse(
        second
            .headers
            .get(&HeaderName::from_wire("Authorization"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(a.algorithm, Algorithm::Sha256);
    assert_eq!(a.qop_auth.as_ref().unwrap().1, 1, "nc=00000001");
}

#[test]
fn proxy_authenticate_407_then_200_with_md5() {
    let sim = challenged(true, Algorithm::Md5, "secret");
    check_answered_after_challenge(&sim, true, 407);
}

#[test]
fn a_second_challenge_for_the_same_realm_is_a_failure_not_a_loop() {
    for proxy in [false, true] {
        let sim = challenged(proxy, Algorithm::Sha256, "wrong");
        assert_eq!(sim.requests_at_callee(Method::Invite).len(), 2);
        let status = StatusCode::new(if proxy { 407 } else { 401 }).unwrap();
        assert_eq!(
            sim.failures(),
            vec![(FailureKind::Failed, FailureCause::Authentication(status))]
        );
        assert_eq!(
            sim.sent_by_caller(Method::Ack).len(),
            2,
            "both challenges ACKed"
        );
    }
}

#[test]
fn without_credentials_a_challenge_is_a_failure() {
    let mut sim = Sim::new(config(), vec![(100, Step::Respond(200, "a"))]);
    sim.challenge = Some(Challenge {
        proxy: false,
        issuer: NonceIssuer::new(REALM, [3; 32], 300),
        first_issued: NOW_SECS,
        algorithm: Algorithm::Md5,
        ha1: ha1(Algorithm::Md5, "ivr", REALM, "secret"),
    });
    sim.run(Duration::from_secs(40), never());
    assert_eq!(sim.requests_at_callee(Method::Invite).len(), 1);
    assert_eq!(
        sim.failures(),
        vec![(
            FailureKind::Failed,
            FailureCause::Authentication(StatusCode::new(401).unwrap())
        )]
    );
}

#[test]
fn no_response_at_all_is_timer_b() {
    let mut sim = Sim::new(config(), vec![]);
    sim.drop = Box::new(|dir, _, _| dir == Dir::ToCallee);
    sim.run(Duration::from_secs(40), never());
    let times: Vec<u128> = sim
        .sent_by_caller(Method::Invite)
        .iter()
        .map(|(t, _)| t.as_millis())
        .collect();
    assert_eq!(times, vec![0, 500, 1_500, 3_500, 7_500, 15_500, 31_500]);
    assert_eq!(
        sim.failures(),
        vec![(FailureKind::NoAnswer, FailureCause::Timeout)]
    );
    let at = sim
        .events
        .iter()
        .find(|(_, e)| matches!(e, UacEvent::Failed(_)))
        .unwrap()
        .0;
    assert_eq!(at, Duration::from_secs(32), "64·T1");
    assert!(sim.uac.is_finished());
}

#[test]
fn cancel_without_a_final_answer_gives_up_after_64_t1() {
    // A callee that rings and ignores CANCEL entirely (its CANCELs are lost).
    let mut sim = Sim::new(config(), vec![(100, Step::Respond(180, "a"))]);
    sim.drop = Box::new(|dir, m, _| {
        dir == Dir::ToCallee && matches!(m, Message::Request(r) if r.method == Method::Cancel)
    });
    sim.run(
        Duration::from_secs(80),
        cancel_at(1_000, CancelReason::RingTimeout),
    );
    assert_eq!(sim.failures(), cancelled(CancelReason::RingTimeout));
    let at = sim
        .events
        .iter()
        .find(|(_, e)| matches!(e, UacEvent::Failed(_)))
        .unwrap()
        .0;
    assert_eq!(at, Duration::from_secs(33));
    // The CANCEL itself was retransmitted on Timer E.
    assert!(sim.sent_by_caller(Method::Cancel).len() > 5);
}

#[test]
fn a_stale_nonce_is_answered_again_with_the_new_one() {
    // The first nonce is older than the callee's 300 s lifetime: the right answer to it gets
    // a second 401 with stale=true and a fresh nonce (RFC 7616 §3.3), which is answered.
    let sim = challenged_at(false, Algorithm::Sha256, "secret", NOW_SECS - 400);
    let invites = sim.requests_at_callee(Method::Invite);
    assert_eq!(invites.len(), 3, "{:?}", sim.events);
    let seqs: Vec<u32> = invites.iter().map(|i| i.cseq().unwrap().seq).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    let nonce = |r: &Request| {
        Authorization::parse(
            r.headers
                .get(&HeaderName::from_wire("Authorization"))
                .unwrap(),
        )
        .unwrap()
        .nonce
    };
    assert_ne!(nonce(invites[1]), nonce(invites[2]));
    assert_eq!(sim.answered(), vec!["a".to_string()]);
}

/// A response to `invite` with this status and To tag, a Contact and (for 2xx) SDP.
fn fork_response(invite: &Request, code: u16, tag: &str) -> Response {
    let mut r = Response::to_request(invite, StatusCode::new(code).unwrap());
    with_tag(&mut r, tag);
    r.headers
        .push(HeaderName::Contact, format!("<sip:{tag}@127.0.0.1:5071>"));
    if code >= 200 {
        r.headers.push(HeaderName::ContentType, "application/sdp");
        r.body = b"v=0\r\n".to_vec();
    }
    r
}

#[test]
fn a_hostile_callee_forking_without_end_costs_bounded_memory() {
    // A destination (anyone DNS names) answers with a new To tag every time: 1xx make early
    // dialogs, 2xx acknowledged dialogs with a BYE each. Without a bound, each costs memory
    // (and a BYE transaction retransmitted for 32 s) for as long as it keeps sending.
    let t0 = epoch();
    let mut uac = OutgoingCall::new(t0, config(), Box::new(Counter(7)));
    let invite = match uac.poll_transmit().unwrap().message {
        Message::Request(r) => r,
        m => panic!("{m:?}"),
    };
    for i in 0..2_000 {
        uac.handle_response(t0, fork_response(&invite, 180, &format!("e{i}")));
    }
    assert!(
        uac.early_dialogs().len() <= 32,
        "{} early dialogs kept",
        uac.early_dialogs().len()
    );
    let mut byes = 0;
    for i in 0..2_000 {
        uac.handle_response(t0, fork_response(&invite, 200, &format!("f{i}")));
        while let Some(t) = uac.poll_transmit() {
            if matches!(&t.message, Message::Request(r) if r.method == Method::Bye) {
                byes += 1;
            }
        }
        while uac.poll_event().is_some() {}
    }
    assert!(byes <= 32, "{byes} BYE transactions started");
    // The first answer is still the call's, and retransmissions of it are still ACKed.
    assert_eq!(uac.dialog().unwrap().id.remote_tag.as_str(), "f0");
    uac.handle_response(t0, fork_response(&invite, 200, "f0"));
    let again = uac.poll_transmit().expect("the ACK again");
    assert!(matches!(&again.message, Message::Request(r) if r.method == Method::Ack));
}
