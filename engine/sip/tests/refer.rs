//! The transfer machine (`ivr_sip::refer`) between the engine (transferor) and a caller
//! (transferee) built on the crate's own transaction layer and dialogs, over a simulated
//! lossy network, in virtual time (ARCHITECTURE.md §5).
//!
//! The engine side is what a leg does: the caller's dialog made by answering its INVITE
//! (RFC 3261 §12.1.1), a [`ReferTransfer`] for the REFER, and a transaction layer whose server
//! transactions carry the NOTIFYs (and absorb their retransmissions). The caller answers the
//! REFER and sends the NOTIFYs of the implicit subscription (RFC 3515 §2.4.4) from its own
//! dialog. Every message crosses the "wire" as bytes and is parsed again.

use ivr_sip::dialog::Dialog;
use ivr_sip::digest::RandomSource;
use ivr_sip::message::CoreHeaders;
use ivr_sip::parse::{Framing, parse_message};
use ivr_sip::refer::{
    NotifyError, ReferConfig, ReferEvent, ReferPhase, ReferTransfer, SipfragError, TransferFailure,
};
use ivr_sip::transaction::{Peer, ServerKey, TimerConfig, TransactionLayer, TxEvent};
use ivr_sip::{
    HeaderName, Message, Method, NameAddr, Request, Response, StatusCode, Transport, Uri,
};
use std::time::{Duration, Instant};

mod common;
use common::{Counter, epoch};

const LATENCY: Duration = Duration::from_millis(10);
const FINAL_TIMEOUT: Duration = Duration::from_secs(60);

fn parse(s: &str) -> Message {
    parse_message(s.as_bytes(), Framing::Datagram).unwrap()
}

/// The caller's INVITE, through one record-routing proxy, as the engine received it.
fn invite() -> Request {
    let s = "INVITE sip:ivr@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKproxy\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKcaller\r\n\
         Record-Route: <sip:127.0.0.1:5090;lr>\r\n\
         From: \"Caller\" <sip:caller@127.0.0.1>;tag=callertag\r\nTo: <sip:ivr@127.0.0.1>\r\n\
         Call-ID: transfer-1@127.0.0.1\r\nCSeq: 7 INVITE\r\n\
         Contact: <sip:caller@127.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n";
    match parse(s) {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    }
}

/// The engine's 200 OK to it, as the caller received it.
fn ok_to_invite(invite: &Request) -> Response {
    let mut r = Response::to_request(invite, StatusCode::OK);
    r.headers
        .set(HeaderName::To, "<sip:ivr@127.0.0.1>;tag=ivrtag");
    r.headers
        .push(HeaderName::Contact, "<sip:ivr@127.0.0.1:5060>");
    r.headers
        .push(HeaderName::RecordRoute, "<sip:127.0.0.1:5090;lr>");
    r
}

fn config() -> ReferConfig {
    let mut c = ReferConfig::new(
        Uri::parse("sip:desk@127.0.0.1:5080;transport=udp").unwrap(),
        NameAddr::parse("\"IVR\" <sip:ivr@127.0.0.1>;tag=ivrtag", HeaderName::From).unwrap(),
        Uri::parse("sip:ivr@127.0.0.1:5060").unwrap(),
        Transport::Udp,
        "127.0.0.1:5060".into(),
    );
    c.final_notify_timeout = FINAL_TIMEOUT;
    c.extra_headers
        .push((HeaderName::UserAgent, "ivr-test".into()));
    c
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    ToCaller,
    ToIvr,
}

/// What the caller does once the REFER arrived, each at a delay from its arrival.
#[derive(Debug, Clone)]
enum Step {
    /// Answer the REFER with this status.
    Answer(u16),
    /// Send a NOTIFY: Subscription-State value and body (Content-Type message/sipfrag).
    Notify(&'static str, &'static [u8]),
    /// A NOTIFY with exactly these extra header lines (the ones the test wants wrong) and body.
    RawNotify(Vec<(&'static str, &'static str)>, &'static [u8]),
}

type DropRule = Box<dyn FnMut(Dir, &Message, usize) -> bool>;

struct Sim {
    now: Instant,
    t0: Instant,
    /// The engine side.
    refer: ReferTransfer,
    ivr_dialog: Dialog,
    ivr_layer: TransactionLayer,
    /// The caller side.
    caller_dialog: Dialog,
    caller_layer: TransactionLayer,
    plan: Vec<(Duration, Step)>,
    scheduled: Vec<(Instant, ServerKey, Request, Step)>,
    wire: Vec<(Instant, Dir, Vec<u8>)>,
    drop: DropRule,
    sent: Vec<(Instant, Dir, Message)>,
    /// Requests the caller's layer reported as new (retransmissions absorbed).
    at_caller: Vec<Request>,
    /// Final responses the caller's NOTIFY transactions got.
    notify_answers: Vec<u16>,
    events: Vec<(Duration, ReferEvent)>,
    branch_rng: Counter,
}

fn ivr_peer() -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: "127.0.0.1:5060".parse().unwrap(),
    }
}

fn caller_peer() -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: "127.0.0.1:5070".parse().unwrap(),
    }
}

fn same_kind(a: &Message, b: &Message) -> bool {
    match (a, b) {
        (Message::Request(x), Message::Request(y)) => {
            x.method == y.method && x.cseq().ok() == y.cseq().ok()
        }
        (Message::Response(x), Message::Response(y)) => {
            x.status == y.status && x.cseq().ok() == y.cseq().ok()
        }
        _ => false,
    }
}

impl Sim {
    fn new(plan: Vec<(u64, Step)>) -> Sim {
        Self::with_config(config(), plan)
    }

    fn with_config(config: ReferConfig, plan: Vec<(u64, Step)>) -> Sim {
        let t0 = epoch();
        let inv = invite();
        let mut ivr_dialog = Dialog::from_invite(&inv, &"ivrtag".into(), 100).unwrap();
        let caller_dialog = Dialog::from_response(&inv, &ok_to_invite(&inv)).unwrap();
        let mut rng = Counter(11);
        let refer = ReferTransfer::new(t0, &mut ivr_dialog, config, &mut rng);
        Sim {
            now: t0,
            t0,
            refer,
            ivr_dialog,
            ivr_layer: TransactionLayer::new(TimerConfig::default()),
            caller_dialog,
            caller_layer: TransactionLayer::new(TimerConfig::default()),
            plan: plan
                .into_iter()
                .map(|(ms, s)| (Duration::from_millis(ms), s))
                .collect(),
            scheduled: Vec::new(),
            wire: Vec::new(),
            drop: Box::new(|_, _, _| false),
            sent: Vec::new(),
            at_caller: Vec::new(),
            notify_answers: Vec::new(),
            events: Vec::new(),
            branch_rng: Counter(99),
        }
    }

    fn put(&mut self, dir: Dir, m: Message) {
        let n = self
            .sent
            .iter()
            .filter(|(_, d, x)| *d == dir && same_kind(x, &m))
            .count();
        self.sent.push((self.now, dir, m.clone()));
        if !(self.drop)(dir, &m, n) {
            self.wire.push((self.now + LATENCY, dir, m.to_bytes()));
        }
    }

    fn settle(&mut self) {
        loop {
            let mut busy = false;
            while let Some(t) = self.refer.poll_transmit() {
                busy = true;
                assert_eq!(
                    t.next_hop.to_string(),
                    "sip:127.0.0.1:5090;lr",
                    "the REFER follows the route set"
                );
                self.put(Dir::ToCaller, t.message);
            }
            while let Some((_, m)) = self.ivr_layer.poll_transmit() {
                busy = true;
                self.put(Dir::ToCaller, m);
            }
            while let Some((_, m)) = self.caller_layer.poll_transmit() {
                busy = true;
                self.put(Dir::ToIvr, m);
            }
            while let Some(e) = self.refer.poll_event() {
                busy = true;
                self.events.push((self.now - self.t0, e));
            }
            while let Some(e) = self.ivr_layer.poll_event() {
                busy = true;
                self.engine(e);
            }
            while let Some(e) = self.caller_layer.poll_event() {
                busy = true;
                self.caller(e);
            }
            if !busy {
                return;
            }
        }
    }

    /// What an engine leg does with a request in the caller's dialog.
    fn engine(&mut self, e: TxEvent) {
        let TxEvent::Request { key, request, .. } = e else {
            return;
        };
        assert!(
            self.refer.matches_notify(&request),
            "only NOTIFYs of the dialog: {request:?}"
        );
        self.ivr_dialog.accept_remote_seq(&request).unwrap();
        let answer = self.refer.handle_notify(self.now, &request);
        self.ivr_layer.respond(self.now, &key, answer);
    }

    fn caller(&mut self, e: TxEvent) {
        match e {
            TxEvent::Request { key, request, .. } => {
                self.at_caller.push(request.clone());
                if request.method == Method::Refer {
                    for (after, step) in self.plan.clone() {
                        self.scheduled
                            .push((self.now + after, key.clone(), request.clone(), step));
                    }
                }
            }
            TxEvent::Response { response, .. }
                if response.cseq().unwrap().method == Method::Notify =>
            {
                self.notify_answers.push(response.status.code());
            }
            _ => {}
        }
    }

    fn notify(&mut self, extra: Vec<(String, String)>, body: &[u8]) {
        let branch = format!("z9hG4bKn{:x}", self.branch_rng.next_u64());
        let via = format!("SIP/2.0/UDP 127.0.0.1:5070;branch={branch}");
        let mut n = self.caller_dialog.request(Method::Notify, via);
        n.headers
            .push(HeaderName::Contact, "<sip:caller@127.0.0.1:5070>");
        for (name, value) in extra {
            n.headers.push(HeaderName::from_wire(&name), value);
        }
        n.body = body.to_vec();
        self.caller_layer.send_request(self.now, n, ivr_peer());
    }

    fn perform(&mut self, key: ServerKey, refer: Request, step: Step) {
        match step {
            Step::Answer(code) => {
                let r = Response::to_request(&refer, StatusCode::new(code).unwrap());
                self.caller_layer.respond(self.now, &key, r);
            }
            Step::Notify(state, body) => {
                let id = refer.cseq().unwrap().seq;
                let extra = vec![
                    ("Event".into(), format!("refer;id={id}")),
                    ("Subscription-State".into(), state.into()),
                    ("Content-Type".into(), "message/sipfrag;version=2.0".into()),
                ];
                self.notify(extra, body);
            }
            Step::RawNotify(headers, body) => {
                let extra = headers
                    .into_iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect();
                self.notify(extra, body);
            }
        }
    }

    fn run(&mut self, until: Duration) {
        let end = self.t0 + until;
        self.settle();
        loop {
            let next = [
                self.wire.iter().map(|w| w.0).min(),
                self.refer.poll_timeout(),
                self.ivr_layer.poll_timeout(),
                self.caller_layer.poll_timeout(),
                self.scheduled.iter().map(|s| s.0).min(),
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
            let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.scheduled)
                .into_iter()
                .partition(|s| s.0 <= now);
            self.scheduled = rest;
            for (_, k, r, step) in due {
                self.perform(k, r, step);
            }
            let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.wire)
                .into_iter()
                .partition(|w| w.0 <= now);
            self.wire = rest;
            for (_, dir, bytes) in due {
                let m = parse_message(&bytes, Framing::Datagram).expect("what we print parses");
                match (dir, m) {
                    (Dir::ToCaller, m) => self.caller_layer.handle_message(now, m, ivr_peer()),
                    (Dir::ToIvr, Message::Response(r)) => {
                        assert!(self.refer.matches_response(&r), "stray {r:?}");
                        self.refer.handle_response(now, r);
                    }
                    (Dir::ToIvr, m) => self.ivr_layer.handle_message(now, m, caller_peer()),
                }
            }
            self.refer.handle_timeout(now);
            self.ivr_layer.handle_timeout(now);
            self.caller_layer.handle_timeout(now);
            self.settle();
        }
    }

    fn events(&self) -> Vec<ReferEvent> {
        self.events.iter().map(|(_, e)| e.clone()).collect()
    }

    fn refers_sent(&self) -> Vec<Duration> {
        self.sent
            .iter()
            .filter_map(|(t, d, m)| match m {
                Message::Request(r) if *d == Dir::ToCaller && r.method == Method::Refer => {
                    Some(*t - self.t0)
                }
                _ => None,
            })
            .collect()
    }

    fn refers_at_caller(&self) -> Vec<&Request> {
        self.at_caller
            .iter()
            .filter(|r| r.method == Method::Refer)
            .collect()
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn happy_plan() -> Vec<(u64, Step)> {
    vec![
        (5, Step::Answer(202)),
        (
            20,
            Step::Notify("active;expires=60", b"SIP/2.0 100 Trying\r\n"),
        ),
        (
            2_000,
            Step::Notify("active;expires=58", b"SIP/2.0 180 Ringing\r\n"),
        ),
        (
            5_000,
            Step::Notify("terminated;reason=noresource", b"SIP/2.0 200 OK\r\n"),
        ),
    ]
}

#[test]
fn accepted_trying_ringing_ok_succeeds() {
    let mut sim = Sim::new(happy_plan());
    sim.run(Duration::from_secs(40));
    assert_eq!(
        sim.events(),
        [
            ReferEvent::Accepted,
            ReferEvent::Progress(StatusCode::TRYING),
            ReferEvent::Progress(StatusCode::RINGING),
            ReferEvent::Succeeded,
        ]
    );
    // The times the engine learnt each: one hop each way after the caller acts.
    let times: Vec<_> = sim.events.iter().map(|(t, _)| *t).collect();
    assert_eq!(times, [ms(25), ms(40), ms(2_020), ms(5_020)]);
    assert_eq!(sim.notify_answers, [200, 200, 200]);
    assert_eq!(sim.refer.phase(), ReferPhase::Done);
    assert!(sim.refer.is_finished(), "terminated and Timer K ran out");

    // The REFER as the caller got it: in the dialog, along the route set, with the
    // transfer headers (RFC 3515 §2.1, RFC 3892 §3, RFC 3261 §12.2.1.1).
    let refers = sim.refers_at_caller();
    assert_eq!(refers.len(), 1);
    let r = refers[0];
    assert_eq!(r.uri.to_string(), "sip:caller@127.0.0.1:5070");
    assert_eq!(
        r.headers.get_all(&HeaderName::Route).collect::<Vec<_>>(),
        ["<sip:127.0.0.1:5090;lr>"]
    );
    assert_eq!(r.cseq().unwrap().seq, 101, "the dialog's next CSeq");
    assert_eq!(sim.ivr_dialog.local_seq, 101);
    assert_eq!(sim.refer.seq(), 101);
    assert_eq!(r.party_from().unwrap().tag(), Some("ivrtag"));
    assert_eq!(r.party_to().unwrap().tag(), Some("callertag"));
    assert_eq!(r.call_id().unwrap(), "transfer-1@127.0.0.1");
    let h = |n: &str| r.headers.get(&HeaderName::from_wire(n)).map(str::to_string);
    assert_eq!(
        h("Refer-To").as_deref(),
        Some("<sip:desk@127.0.0.1:5080;transport=udp>")
    );
    assert_eq!(
        h("Referred-By").as_deref(),
        Some("\"IVR\" <sip:ivr@127.0.0.1>"),
        "no tag in Referred-By"
    );
    assert_eq!(h("Contact").as_deref(), Some("<sip:ivr@127.0.0.1:5060>"));
    assert_eq!(h("User-Agent").as_deref(), Some("ivr-test"));
    assert!(h("Via").unwrap().contains(";branch=z9hG4bK"));
}

#[test]
fn refused_refer_is_refused_with_its_status() {
    for code in [405, 501, 403, 603] {
        let mut sim = Sim::new(vec![(5, Step::Answer(code))]);
        sim.run(Duration::from_secs(40));
        assert_eq!(
            sim.events(),
            [ReferEvent::Refused(StatusCode::new(code).unwrap())],
            "{code}"
        );
        assert!(sim.refer.is_finished());
        assert_eq!(sim.refer.poll_timeout(), None, "nothing left to wait for");
    }
}

#[test]
fn no_answer_to_the_refer_is_a_408_refusal_after_timer_f() {
    let mut sim = Sim::new(vec![]);
    sim.drop = Box::new(|dir, _, _| dir == Dir::ToCaller);
    sim.run(Duration::from_secs(60));
    assert_eq!(
        sim.events,
        [(ms(32_000), ReferEvent::Refused(StatusCode::REQUEST_TIMEOUT))]
    );
    // Timer E: 0.5, 1, 2, 4, then every T2 = 4 s until Timer F at 64·T1.
    let sent = sim.refers_sent();
    assert_eq!(
        &sent[..5],
        &[ms(0), ms(500), ms(1_500), ms(3_500), ms(7_500)]
    );
    assert_eq!(*sent.last().unwrap(), ms(31_500));
}

#[test]
fn lost_refers_and_lost_202_are_recovered_by_retransmission() {
    let mut sim = Sim::new(happy_plan());
    // The first two REFERs never arrive; the first 202 is lost too.
    sim.drop = Box::new(|dir, m, n| match (dir, m) {
        (Dir::ToCaller, Message::Request(r)) if r.method == Method::Refer => n < 2,
        (Dir::ToIvr, Message::Response(r)) if r.status.code() == 202 => n < 1,
        _ => false,
    });
    sim.run(Duration::from_secs(40));
    // REFER at 0 (lost), 500 (lost), 1500 (arrives at 1510; the caller answers 202 at 1515,
    // lost), 3500 (the caller's server transaction answers the retransmission with its 202).
    assert_eq!(sim.refers_sent(), [ms(0), ms(500), ms(1_500), ms(3_500)]);
    assert_eq!(
        sim.refers_at_caller().len(),
        1,
        "the retransmission was absorbed by the caller's transaction"
    );
    // The first NOTIFY (sent 20 ms after the REFER arrived) came before the 202 got through:
    // it implied the acceptance (RFC 6665 §4.1.2.4).
    assert_eq!(
        sim.events[..2],
        [
            (ms(1_540), ReferEvent::Accepted),
            (ms(1_540), ReferEvent::Progress(StatusCode::TRYING)),
        ]
    );
    assert_eq!(sim.events.last(), Some(&(ms(6_520), ReferEvent::Succeeded)));
    assert_eq!(
        sim.events
            .iter()
            .filter(|(_, e)| *e == ReferEvent::Accepted)
            .count(),
        1,
        "the late 202 adds nothing"
    );
}

#[test]
fn a_lost_200_to_a_notify_is_answered_again_by_the_transaction_layer() {
    let mut sim = Sim::new(happy_plan());
    // The engine's 200 to the first NOTIFY (CSeq 8: the caller's INVITE was 7) is lost: the caller retransmits the NOTIFY, the
    // engine's server transaction answers it and the machine sees it once.
    sim.drop = Box::new(|dir, m, n| {
        dir == Dir::ToCaller
            && matches!(m, Message::Response(r) if r.cseq().unwrap() .method == Method::Notify
                && r.cseq().unwrap().seq == 8)
            && n == 0
    });
    sim.run(Duration::from_secs(40));
    assert_eq!(
        sim.events(),
        [
            ReferEvent::Accepted,
            ReferEvent::Progress(StatusCode::TRYING),
            ReferEvent::Progress(StatusCode::RINGING),
            ReferEvent::Succeeded,
        ]
    );
    let notifies = sim
        .sent
        .iter()
        .filter(|(_, d, m)| {
            *d == Dir::ToIvr && matches!(m, Message::Request(r) if r.method == Method::Notify)
        })
        .count();
    assert_eq!(notifies, 4, "three NOTIFYs, the first sent twice");
    assert_eq!(sim.notify_answers, [200, 200, 200]);
}

#[test]
fn busy_destination_fails_with_its_status() {
    let mut sim = Sim::new(vec![
        (5, Step::Answer(202)),
        (20, Step::Notify("active", b"SIP/2.0 100 Trying\r\n")),
        (
            900,
            Step::Notify("terminated;reason=noresource", b"SIP/2.0 486 Busy Here\r\n"),
        ),
    ]);
    sim.run(Duration::from_secs(40));
    assert_eq!(
        sim.events(),
        [
            ReferEvent::Accepted,
            ReferEvent::Progress(StatusCode::TRYING),
            ReferEvent::Failed(TransferFailure::Status(StatusCode::new(486).unwrap())),
        ]
    );
}

#[test]
fn terminated_without_a_final_status_is_a_failure() {
    let mut sim = Sim::new(vec![
        (5, Step::Answer(202)),
        (20, Step::Notify("active", b"SIP/2.0 100 Trying\r\n")),
        (
            50,
            Step::RawNotify(
                vec![
                    ("Event", "refer"),
                    ("Subscription-State", "terminated;reason=timeout"),
                ],
                b"",
            ),
        ),
    ]);
    sim.run(Duration::from_secs(40));
    assert_eq!(
        sim.events(),
        [
            ReferEvent::Accepted,
            ReferEvent::Progress(StatusCode::TRYING),
            ReferEvent::Failed(TransferFailure::SubscriptionEnded),
        ]
    );
    assert_eq!(sim.notify_answers, [200, 200]);
}

#[test]
fn garbage_sipfrag_is_answered_400_and_the_transfer_goes_on() {
    let mut sim = Sim::new(vec![
        (5, Step::Answer(202)),
        (
            20,
            Step::Notify("active", b"\xff\xfe not a status line \x00\x01"),
        ),
        (30, Step::Notify("active", b"INVITE sip:x@y SIP/2.0\r\n")),
        (40, Step::Notify("active", b"SIP/2.0 9999 Huge\r\n")),
        (
            50,
            Step::RawNotify(
                vec![
                    ("Event", "presence"),
                    ("Subscription-State", "active"),
                    ("Content-Type", "message/sipfrag"),
                ],
                b"SIP/2.0 200 OK\r\n",
            ),
        ),
        (
            60,
            Step::RawNotify(
                vec![
                    ("o", "refer;id=1"),
                    ("Subscription-State", "active"),
                    ("Content-Type", "message/sipfrag"),
                ],
                b"SIP/2.0 200 OK\r\n",
            ),
        ),
        (
            70,
            Step::RawNotify(
                vec![
                    ("Event", "refer"),
                    ("Subscription-State", "active"),
                    ("Content-Type", "text/plain"),
                ],
                b"SIP/2.0 200 OK\r\n",
            ),
        ),
        (
            80,
            Step::RawNotify(
                vec![("Event", "refer"), ("Content-Type", "message/sipfrag")],
                b"SIP/2.0 200 OK\r\n",
            ),
        ),
        (
            3_000,
            Step::Notify("terminated", b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n"),
        ),
    ]);
    sim.run(Duration::from_secs(40));
    assert_eq!(
        sim.events(),
        [
            ReferEvent::Accepted,
            ReferEvent::BadNotify(NotifyError::Sipfrag(SipfragError::NotText)),
            ReferEvent::BadNotify(NotifyError::Sipfrag(SipfragError::NotStatusLine)),
            ReferEvent::BadNotify(NotifyError::Sipfrag(SipfragError::BadStatus)),
            ReferEvent::BadNotify(NotifyError::BadEvent),
            ReferEvent::BadNotify(NotifyError::UnknownId("1".into())),
            ReferEvent::BadNotify(NotifyError::NotSipfrag),
            ReferEvent::BadNotify(NotifyError::BadSubscriptionState),
            ReferEvent::Succeeded,
        ]
    );
    assert_eq!(sim.notify_answers, [400, 400, 400, 489, 481, 415, 400, 200]);
}

#[test]
fn no_final_notify_times_out() {
    let mut sim = Sim::new(vec![
        (5, Step::Answer(202)),
        (
            20,
            Step::Notify("active;expires=600", b"SIP/2.0 100 Trying\r\n"),
        ),
        (
            1_000,
            Step::Notify("active;expires=600", b"SIP/2.0 180 Ringing\r\n"),
        ),
    ]);
    sim.run(Duration::from_secs(120));
    // Accepted when the 202 arrived at 25 ms: the deadline is 60 s later.
    assert_eq!(
        sim.events,
        [
            (ms(25), ReferEvent::Accepted),
            (ms(40), ReferEvent::Progress(StatusCode::TRYING)),
            (ms(1_020), ReferEvent::Progress(StatusCode::RINGING)),
            (ms(60_025), ReferEvent::TimedOut),
        ]
    );
    assert!(sim.refer.is_finished());
    assert_eq!(sim.refer.poll_timeout(), None);
}

#[test]
fn a_final_notify_timeout_too_long_for_instant_means_no_deadline() {
    // ReferConfig is public: a timeout past what Instant can add (an operator's "never")
    // must not panic in poll_timeout; the transfer just waits for its final NOTIFY.
    let mut c = config();
    c.final_notify_timeout = Duration::MAX;
    let mut sim = Sim::with_config(
        c,
        vec![
            (5, Step::Answer(202)),
            (
                20,
                Step::Notify("active;expires=600", b"SIP/2.0 100 Trying\r\n"),
            ),
        ],
    );
    sim.run(Duration::from_secs(120));
    assert_eq!(
        sim.events(),
        [
            ReferEvent::Accepted,
            ReferEvent::Progress(StatusCode::TRYING)
        ]
    );
    assert!(!sim.refer.is_finished());
}

#[test]
fn a_notify_after_the_end_gets_481() {
    let mut sim = Sim::new(vec![
        (5, Step::Answer(202)),
        (20, Step::Notify("terminated", b"SIP/2.0 200 OK\r\n")),
        (40, Step::Notify("terminated", b"SIP/2.0 200 OK\r\n")),
    ]);
    sim.run(Duration::from_secs(40));
    assert_eq!(
        sim.events(),
        [
            ReferEvent::Accepted,
            ReferEvent::Succeeded,
            ReferEvent::BadNotify(NotifyError::Ended),
        ]
    );
    assert_eq!(sim.notify_answers, [200, 481]);
}

#[test]
fn over_tcp_nothing_is_retransmitted() {
    let mut c = config();
    c.transport = Transport::Tcp;
    let mut sim = Sim::with_config(c, vec![]);
    sim.run(Duration::from_secs(60));
    assert_eq!(sim.refers_sent(), [ms(0)]);
    assert!(
        sim.refers_at_caller()[0]
            .top_via()
            .unwrap()
            .transport
            .eq("TCP")
    );
    assert_eq!(
        sim.events(),
        [ReferEvent::Refused(StatusCode::REQUEST_TIMEOUT)]
    );
}
