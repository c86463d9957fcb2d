//! Reliable provisionals (RFC 3262) and session timers (RFC 4028) between two endpoints
//! made of the crate's own transaction layers, over a simulated lossy network, in virtual
//! time (ARCHITECTURE.md §5): every message crosses the wire as bytes and is parsed again.
//! The callee's transaction user is [`ReliableProvisionals`] and [`SessionTimer`]; the
//! caller's is scripted here.

use ivr_sip::message::CoreHeaders;
use ivr_sip::parse::{Framing, parse_message};
use ivr_sip::reliable::{Prack, RAck, ReliableProvisionals};
use ivr_sip::session_timer::{self, Policy, SessionTimer, TimerEvent, Who};
use ivr_sip::transaction::{Peer, ServerKey, TimerConfig, TransactionLayer, TxEvent};
use ivr_sip::{HeaderName, Message, Method, Request, Response, StatusCode, Transport};
use std::time::{Duration, Instant};

const LATENCY: Duration = Duration::from_millis(10);
const TICK: Duration = Duration::from_millis(10);

#[allow(clippy::disallowed_methods)]
fn epoch() -> Instant {
    Instant::now()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    ToCallee,
    ToCaller,
}

/// Which messages the network loses: (direction, message, how many of the same status or
/// method went that way before).
type DropRule = Box<dyn FnMut(Dir, &Message, usize) -> bool>;

fn peer(port: u16) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: ([127, 0, 0, 1], port).into(),
    }
}

fn kind(m: &Message) -> String {
    match m {
        Message::Request(r) => r.method.to_string(),
        Message::Response(r) => format!(
            "{} {}",
            r.status.code(),
            r.cseq().map(|c| c.method.to_string()).unwrap_or_default()
        ),
    }
}

struct Sim {
    now: Instant,
    t0: Instant,
    caller: TransactionLayer,
    callee: TransactionLayer,
    wire: Vec<(Instant, Dir, Vec<u8>)>,
    drop: DropRule,
    /// Everything put on the wire (lost or not): when, which way, what.
    sent: Vec<(Duration, Dir, Message)>,
}

impl Sim {
    fn new(drop: DropRule) -> Sim {
        let t0 = epoch();
        Sim {
            now: t0,
            t0,
            caller: TransactionLayer::new(TimerConfig::default()),
            callee: TransactionLayer::new(TimerConfig::default()),
            wire: Vec::new(),
            drop,
            sent: Vec::new(),
        }
    }

    fn put(&mut self, dir: Dir, m: Message) {
        let n = self
            .sent
            .iter()
            .filter(|(_, d, x)| *d == dir && kind(x) == kind(&m))
            .count();
        self.sent.push((self.now - self.t0, dir, m.clone()));
        if !(self.drop)(dir, &m, n) {
            self.wire.push((self.now + LATENCY, dir, m.to_bytes()));
        }
    }

    /// One tick: messages sent, delivered, timers fired. Returns the transaction events of
    /// (caller, callee).
    fn tick(&mut self) -> (Vec<TxEvent>, Vec<TxEvent>) {
        self.now += TICK;
        self.caller.handle_timeout(self.now);
        self.callee.handle_timeout(self.now);
        self.flush();
        let (due, later): (Vec<_>, Vec<_>) =
            self.wire.drain(..).partition(|(at, _, _)| *at <= self.now);
        self.wire = later;
        for (_, dir, bytes) in due {
            let msg = parse_message(&bytes, Framing::Datagram).expect("valid on the wire");
            match dir {
                Dir::ToCallee => self.callee.handle_message(self.now, msg, peer(5070)),
                Dir::ToCaller => self.caller.handle_message(self.now, msg, peer(5060)),
            }
        }
        self.flush();
        let mut events = (Vec::new(), Vec::new());
        while let Some(e) = self.caller.poll_event() {
            events.0.push(e);
        }
        while let Some(e) = self.callee.poll_event() {
            events.1.push(e);
        }
        events
    }

    fn flush(&mut self) {
        while let Some((_, m)) = self.caller.poll_transmit() {
            self.put(Dir::ToCallee, m);
        }
        while let Some((_, m)) = self.callee.poll_transmit() {
            self.put(Dir::ToCaller, m);
        }
    }

    /// When each message of `kind` went `dir`, in ms since the start.
    fn times(&self, dir: Dir, k: &str) -> Vec<u128> {
        self.sent
            .iter()
            .filter(|(_, d, m)| *d == dir && kind(m) == k)
            .map(|(t, _, _)| t.as_millis())
            .collect()
    }
}

fn request(method: Method, cseq: u32, branch: &str, to_tag: Option<&str>, extra: &str) -> Request {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let s = format!(
        "{method} sip:ivr@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:caller@127.0.0.1>;tag=c1\r\nTo: <sip:ivr@127.0.0.1>{to_tag}\r\n\
         Call-ID: ext-1\r\nCSeq: {cseq} {method}\r\nContact: <sip:caller@127.0.0.1:5070>\r\n{extra}Content-Length: 0\r\n\r\n"
    );
    match parse_message(s.as_bytes(), Framing::Datagram).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    }
}

fn callee_response(req: &Request, status: StatusCode) -> Response {
    let mut r = Response::to_request(req, status);
    if let Ok(mut to) = r.party_to()
        && to.tag().is_none()
    {
        to.params.set("tag", Some("ivr".into()));
        r.headers.set(HeaderName::To, to.to_string());
    }
    r.headers
        .push(HeaderName::Contact, "<sip:ivr@127.0.0.1:5060>");
    r
}

/// The 180 and the first PRACK are lost twice and once: the callee retransmits the 180 from
/// T1 doubling (RFC 3262 §3), the caller's PRACK transaction retransmits on Timer E, the
/// PRACK that gets through stops the 180s, and the 2xx — held because the 180 carried
/// SDP — goes only then.
#[test]
fn reliable_180_and_prack_survive_loss() {
    let mut sim = Sim::new(Box::new(|dir, m, n| {
        let k = kind(m);
        (dir == Dir::ToCaller && k == "180 INVITE" && n < 2)
            || (dir == Dir::ToCallee && k == "PRACK" && n < 1)
    }));
    let invite = request(Method::Invite, 1, "inv", None, "Require: 100rel\r\n");
    let invite_key = sim
        .caller
        .send_request(sim.now, invite, peer(5060))
        .expect("key");
    let mut rel = ReliableProvisionals::new(TimerConfig::default().t1, 500);
    let mut server_invite: Option<(ServerKey, Request)> = None;
    let mut prack_sent = false;
    let mut acked_at = None;
    let mut final_at = None;
    let mut want_final = false;
    for _ in 0..1000 {
        let (at_caller, at_callee) = sim.tick();
        let now = sim.now;
        for e in at_callee {
            let TxEvent::Request { key, request, .. } = e else {
                continue;
            };
            match request.method {
                Method::Invite => {
                    assert!(ivr_sip::reliable::required(&request.headers));
                    let mut ringing = callee_response(&request, StatusCode::RINGING);
                    ringing
                        .headers
                        .push(HeaderName::ContentType, "application/sdp");
                    ringing.body = b"v=0\r\n".to_vec();
                    assert!(rel.send(now, &mut ringing));
                    sim.callee.respond(now, &key, ringing);
                    server_invite = Some((key, request));
                    // The callee would answer at once, but the 180 carried SDP.
                    want_final = true;
                }
                Method::Prack => {
                    let outcome = rel.handle_prack(RAck::of(&request.headers).as_ref());
                    let status = if outcome == (Prack::Acknowledged { had_sdp: true }) {
                        acked_at.get_or_insert(now - sim.t0);
                        StatusCode::OK
                    } else {
                        StatusCode::CALL_DOES_NOT_EXIST
                    };
                    sim.callee
                        .respond(now, &key, callee_response(&request, status));
                }
                _ => {}
            }
        }
        rel.handle_timeout(now);
        if let Some((key, _)) = &server_invite {
            while let Some(r) = rel.poll_retransmit() {
                sim.callee.respond(now, key, r);
            }
        }
        if want_final && rel.may_send_2xx() {
            let (key, req) = server_invite.clone().expect("INVITE");
            rel.finish();
            sim.callee
                .respond(now, &key, callee_response(&req, StatusCode::OK));
            final_at = Some(now - sim.t0);
            want_final = false;
        }
        for e in at_caller {
            if let TxEvent::Response { key, response } = e
                && key == invite_key
                && response.status.code() == 180
                && !prack_sent
            {
                let rseq: u32 = response
                    .headers
                    .get(&HeaderName::RSeq)
                    .unwrap()
                    .parse()
                    .unwrap();
                let prack = request(
                    Method::Prack,
                    2,
                    "prack",
                    Some("ivr"),
                    &format!("RAck: {rseq} 1 INVITE\r\n"),
                );
                sim.caller.send_request(now, prack, peer(5060));
                prack_sent = true;
            }
        }
        // What the transaction users sent this tick leaves now.
        sim.flush();
    }
    // The 180, then T1 and 3·T1 later (the first two lost; the third arrives), then no more:
    // the PRACK stopped them.
    let ringing = sim.times(Dir::ToCaller, "180 INVITE");
    let first = ringing[0];
    assert_eq!(ringing, [first, first + 500, first + 1500]);
    // The PRACK: sent when that 180 arrives, lost, retransmitted by Timer E T1 later.
    let pracks = sim.times(Dir::ToCallee, "PRACK");
    assert_eq!(pracks.len(), 2, "{pracks:?}");
    assert!(
        pracks[0] > first + 1500 && pracks[0] <= first + 1500 + 30,
        "{pracks:?}"
    );
    assert_eq!(pracks[1], pracks[0] + 500);
    let acked = acked_at.expect("PRACK matched").as_millis();
    assert!(
        acked > pracks[1] && acked <= pracks[1] + 20,
        "{acked} {pracks:?}"
    );
    assert_eq!(
        final_at, acked_at,
        "the 2xx waited for the PRACK, not a tick more"
    );
    let oks = sim.times(Dir::ToCaller, "200 PRACK");
    assert_eq!(oks.len(), 1);
    assert!(sim.times(Dir::ToCaller, "200 INVITE")[0] >= oks[0]);
}

/// A session refreshed by UPDATE (RFC 4028 §7.4, RFC 3311): the caller is the refresher;
/// its first UPDATE is lost and retransmitted (Timer E), the callee's timer is refreshed
/// each time one arrives, and when the caller stops, the callee's timer expires at the
/// interval minus min(32 s, interval / 3) after the last refresh (§10).
#[test]
fn update_refreshes_through_loss_then_the_callee_expires_the_session() {
    let mut sim = Sim::new(Box::new(|dir, m, n| {
        dir == Dir::ToCallee && kind(m) == "UPDATE" && n == 0
    }));
    let policy = Policy {
        min_se: 90,
        interval: 1800,
    };
    // The INVITE's negotiation, as the callee ran it: the caller refreshes every 45 s.
    let invite = request(
        Method::Invite,
        1,
        "inv",
        None,
        "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
    );
    let agreed = session_timer::negotiate_uas(&invite.headers, &policy)
        .unwrap()
        .unwrap();
    assert_eq!(agreed.who(false), Who::Remote);
    let mut callee_timer = SessionTimer::new(sim.now, agreed.duration(), agreed.who(false));
    let mut caller_timer = SessionTimer::new(sim.now, agreed.duration(), agreed.who(true));
    let mut refreshes_left = 3;
    let mut cseq = 1;
    let mut refreshed_at = Vec::new();
    let mut expired_at = None;
    for _ in 0..(200_000 / 10) {
        let (at_caller, at_callee) = sim.tick();
        let now = sim.now;
        for e in at_callee {
            let TxEvent::Request { key, request, .. } = e else {
                continue;
            };
            assert_eq!(request.method, Method::Update);
            let a = session_timer::negotiate_uas(&request.headers, &policy)
                .unwrap()
                .unwrap();
            let mut ok = callee_response(&request, StatusCode::OK);
            a.decorate_response(&mut ok.headers);
            callee_timer.refreshed(now, a.duration(), a.who(false));
            refreshed_at.push((now - sim.t0).as_millis());
            sim.callee.respond(now, &key, ok);
        }
        for e in at_caller {
            if let TxEvent::Response { response, .. } = e {
                let out = session_timer::refresh_outcome(
                    response.status.code(),
                    &response.headers,
                    90,
                    &agreed,
                );
                let session_timer::RefreshOutcome::Refreshed(a) = out else {
                    panic!("{out:?}");
                };
                caller_timer.refreshed(now, a.duration(), a.who(true));
            }
        }
        caller_timer.handle_timeout(now);
        while let Some(ev) = caller_timer.poll_event() {
            if ev == TimerEvent::Refresh && refreshes_left > 0 {
                refreshes_left -= 1;
                cseq += 1;
                let mut update =
                    request(Method::Update, cseq, &format!("up{cseq}"), Some("ivr"), "");
                session_timer::decorate_request(&mut update.headers, 90, 90);
                sim.caller.send_request(now, update, peer(5060));
            }
        }
        callee_timer.handle_timeout(now);
        if let Some(TimerEvent::Expired) = callee_timer.poll_event() {
            expired_at.get_or_insert((now - sim.t0).as_millis());
        }
        sim.flush();
    }
    // The caller refreshes at half the interval: 45 s (lost; Timer E sends it again T1
    // later), then 45 s after each answer (each within a few ticks of the wire).
    let updates = sim.times(Dir::ToCallee, "UPDATE");
    assert_eq!(updates.len(), 4, "{updates:?}");
    assert!((45_000..=45_020).contains(&updates[0]), "{updates:?}");
    assert_eq!(updates[1] - updates[0], 500, "Timer E: {updates:?}");
    assert_eq!(refreshed_at.len(), 3, "{refreshed_at:?}");
    for (i, r) in refreshed_at.iter().enumerate() {
        let sent = updates[i + 1];
        assert!(*r > sent && *r <= sent + 20, "{refreshed_at:?} {updates:?}");
    }
    for w in updates[1..].windows(2) {
        assert!((45_000..=45_060).contains(&(w[1] - w[0])), "{updates:?}");
    }
    // No refresh after the last: the callee gives up 90 - min(32, 30) s after it.
    assert_eq!(expired_at, Some(refreshed_at[2] + 60_000));
}
