//! Keys pressed while waiting in a queue (`exit_keys:`) and queued callback requests, in
//! virtual time: an exit key to voicemail; the `callback` key with the caller ID confirmed,
//! the request keeping the caller's place ahead of later arrivals; a second request for the
//! same number refused (the caller keeps waiting); a number outside the allowed prefixes
//! refused. No sockets, no sleeping.

mod queue_common;
use queue_common::{
    callback_menus, callback_menus_with, callback_order, join_in_line, queue_events,
};

use ivr_audio::{Codec, Digit};
use ivr_engine::{CallHandle, EndReason, Event, Input, QueueCallbackCmd, RestoredCallback};
use ivr_queues::{QueueEvent, Waiter};
use ivr_sip::Transport;
use ivr_sip::header::HeaderName;
use ivr_sip::message::{CoreHeaders, Request, Response, StatusCode};
use ivr_tests::caller::{Caller, Net, request};
use std::time::Duration;

fn played(net: &Net, name: &str) -> usize {
    net.events
        .iter()
        .filter(|e| matches!(e, Event::Playing { prompt, .. } if prompt == name))
        .count()
}

/// The caller answers the engine's BYE; the call is over.
fn hung_up_by_engine(net: &mut Net, caller: &Caller, call: CallHandle) {
    let msgs = net.take_sip(caller.addr);
    let bye = request(&msgs, "BYE")
        .unwrap_or_else(|| panic!("the engine hangs up: {msgs:?}"))
        .clone();
    net.send_sip(Transport::Udp, caller.addr, &caller.ok_to(&bye));
    assert_eq!(net.ended(call), Some(EndReason::MenuHangup));
}

#[test]
fn an_exit_key_leaves_the_line_for_voicemail() {
    let mut net = Net::new(callback_menus("\"+1\"", false));
    let mut caller = Caller::new("127.0.0.1:7010", "exit-1");
    let call = join_in_line(&mut net, &mut caller);
    assert_eq!(net.engine.queue_waiting("sales"), 1);
    net.advance(Duration::from_secs(3));
    // A key bound to nothing does nothing.
    net.press(&mut caller, call, Digit::D7);
    assert_eq!(net.engine.queue_waiting("sales"), 1);
    net.press(&mut caller, call, Digit::D2);
    assert_eq!(net.engine.queue_waiting("sales"), 0, "out of the line");
    assert!(queue_events(&net).iter().any(|e| matches!(
        e,
        QueueEvent::ExitKey {
            key: '2',
            position: 1,
            ..
        }
    )));
    // The deposit begins: the caller ID is offered as the number to call back.
    assert_eq!(played(&net, "vm_offer_caller_id"), 1);
    assert!(net.ended(call).is_none());
}

#[test]
fn a_callback_request_keeps_the_place_and_the_engine_hangs_up() {
    let mut net = Net::new(callback_menus("\"+1\", \"0\"", false));
    let mut first = Caller::new("127.0.0.1:7020", "cb-1");
    let a = join_in_line(&mut net, &mut first);
    net.advance(Duration::from_secs(2));
    net.press(&mut first, a, Digit::D3);
    assert_eq!(
        played(&net, "vm_offer_caller_id"),
        1,
        "press 1 for this number"
    );
    net.advance(Duration::from_secs(1));
    net.press(&mut first, a, Digit::D1);
    assert!(
        queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::CallbackRequested { position: 1, .. }))
    );
    assert_eq!(played(&net, "thanks"), 1, "the confirmation");
    net.advance(Duration::from_secs(5));
    hung_up_by_engine(&mut net, &first, a);
    // It is a callback request in the store, of its own kind.
    let [QueueCallbackCmd::Store(r)] = &net.queue_callbacks[..] else {
        panic!("{:?}", net.queue_callbacks)
    };
    assert_eq!(r.kind, ivr_voicemail::RequestKind::QueueCallback);
    assert_eq!(
        (
            r.queue.as_deref(),
            r.mailbox.as_str(),
            r.callback_number.as_deref()
        ),
        (Some("sales"), "sales", Some("+15551234"))
    );
    assert!(!r.has_message);
    // The caller's record names the request taken in its place (the report's outcome).
    let records = net.call_records();
    assert_eq!(records[0].exit.as_deref(), Some("callback"));
    assert_eq!(records[0].request_id.as_ref(), Some(&r.id));
    // A later caller (another number) lines up behind the request.
    let mut second = Caller::new("127.0.0.1:7030", "cb-2");
    let b = join_in_line(&mut net, &mut second);
    let line = net.engine.queue_line("sales");
    assert_eq!(line.len(), 2, "{line:?}");
    assert!(matches!(line[0], Waiter::Callback(_)), "{line:?}");
    assert_eq!(line[1], Waiter::Caller(ivr_queues::CallRef(b.0)));
    // The same number asks again from the second call: refused, and it keeps waiting.
    net.press(&mut second, b, Digit::D3);
    net.press(&mut second, b, Digit::D1);
    assert_eq!(
        played(&net, "vm_invalid_number"),
        1,
        "{:?}",
        queue_events(&net)
    );
    assert!(net.ended(b).is_none());
    assert_eq!(net.engine.queue_line("sales").len(), 2);
    net.advance(Duration::from_secs(10));
    assert!(net.ended(b).is_none(), "still waiting after the notice");
    // Another number, typed and confirmed, is taken: the second caller keeps its place too.
    net.press(&mut second, b, Digit::D3);
    net.advance(Duration::from_secs(1));
    for d in "0491234567"
        .chars()
        .filter_map(Digit::from_char)
        .chain([Digit::Pound])
    {
        net.press(&mut second, b, d);
    }
    net.advance(Duration::from_secs(1));
    assert!(played(&net, "vm_you_entered") >= 1);
    net.press(&mut second, b, Digit::D1);
    assert!(
        queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::CallbackRequested { position: 2, .. }))
    );
    net.advance(Duration::from_secs(5));
    hung_up_by_engine(&mut net, &second, b);
    let line = net.engine.queue_line("sales");
    assert!(line.iter().all(|w| matches!(w, Waiter::Callback(_))) && line.len() == 2);
}

#[test]
fn a_number_outside_the_allowed_prefixes_is_refused_and_the_caller_keeps_waiting() {
    // Only numbers starting with +33 may be called back; the caller ID is +1555...
    let mut net = Net::new(callback_menus("\"+33\"", false));
    let mut caller = Caller::new("127.0.0.1:7040", "cb-3");
    let call = join_in_line(&mut net, &mut caller);
    net.press(&mut caller, call, Digit::D3);
    net.press(&mut caller, call, Digit::D1);
    assert_eq!(played(&net, "vm_invalid_number"), 1);
    assert!(
        !queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::CallbackRequested { .. }))
    );
    assert_eq!(
        net.engine.queue_line("sales"),
        [Waiter::Caller(ivr_queues::CallRef(call.0))]
    );
    assert!(net.ended(call).is_none());
}

/// A scripted phone (the agent's desk, or the caller's phone behind the trunk).
struct Phone {
    name: &'static str,
    addr: std::net::SocketAddr,
    media: std::net::SocketAddr,
}

impl Phone {
    fn new(name: &'static str, port: u16) -> Phone {
        Phone {
            name,
            addr: ([127, 0, 0, 1], port).into(),
            media: ([127, 0, 0, 1], port + 2).into(),
        }
    }

    fn respond(&self, req: &Request, code: u16, sdp: bool) -> Vec<u8> {
        let mut r = Response::to_request(req, StatusCode::new(code).unwrap());
        let to = req.headers.get(&HeaderName::To).unwrap().to_string();
        if !to.contains(";tag=") && code > 100 {
            r.headers
                .set(HeaderName::To, format!("{to};tag={}", self.name));
        }
        if (200..300).contains(&code) {
            r.headers.push(
                HeaderName::Contact,
                format!("<sip:{}@{}>", self.name, self.addr),
            );
        }
        if sdp {
            r.headers.push(HeaderName::ContentType, "application/sdp");
            r.body = format!(
                "v=0\r\no={n} 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                 m=audio {p} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
                 a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
                n = self.name,
                p = self.media.port()
            )
            .into_bytes();
        }
        r.to_bytes()
    }

    fn send(&self, net: &mut Net, data: &[u8]) {
        net.send_sip(Transport::Udp, self.addr, data);
    }

    fn take_invite(&self, net: &mut Net) -> Request {
        let msgs = net.take_sip(self.addr);
        request(&msgs, "INVITE")
            .unwrap_or_else(|| panic!("{} is rung: {msgs:?}", self.name))
            .clone()
    }

    /// The engine's BYE (answered), and the INVITE that came with it.
    fn bye_then_invite(&self, net: &mut Net) -> Request {
        net.advance(Duration::from_millis(200));
        let msgs = net.take_sip(self.addr);
        let bye = request(&msgs, "BYE").expect("BYE").clone();
        let invite = request(&msgs, "INVITE")
            .unwrap_or_else(|| panic!("{} is rung: {msgs:?}", self.name))
            .clone();
        self.send(net, &self.respond(&bye, 200, false));
        invite
    }

    /// Ring, answer: the engine ACKs.
    fn answer(&self, net: &mut Net, invite: &Request) {
        self.send(net, &self.respond(invite, 180, false));
        self.send(net, &self.respond(invite, 200, true));
        let msgs = net.take_sip(self.addr);
        assert!(
            request(&msgs, "ACK").is_some(),
            "{} ACKed: {msgs:?}",
            self.name
        );
    }

    fn rtp(&self, seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 0];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&u32::from(self.addr.port()).to_be_bytes());
        p.extend(std::iter::repeat_n(0x55, 160));
        p
    }
}

/// The callback's own call: the last call the engine started for `callback sales`.
fn callback_call(net: &Net) -> CallHandle {
    net.events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::CallStarted { call, to, .. } if to == "callback sales" => Some(*call),
            _ => None,
        })
        .expect("a callback call")
}

/// The caller (an agent on a call meanwhile) asks for a callback and hangs up.
fn request_callback(net: &mut Net, caller: &mut Caller) -> CallHandle {
    let call = join_in_line(net, caller);
    net.press(caller, call, Digit::D3);
    net.press(caller, call, Digit::D1);
    net.advance(Duration::from_secs(5));
    hung_up_by_engine(net, caller, call);
    call
}

#[test]
fn a_queued_callback_rings_the_agent_then_the_caller_through_the_trunk_and_bridges_them() {
    let mut net = Net::new(callback_menus("\"+1\"", true));
    let desk = Phone::new("desk", 7300);
    let trunk = Phone::new("trunk", 7400);
    // The desk takes a first caller: it is busy while the others line up.
    let mut busy = Caller::new("127.0.0.1:7050", "busy");
    let x = join_in_line(&mut net, &mut busy);
    let first = desk.take_invite(&mut net);
    desk.answer(&mut net, &first);
    // A caller asks for a callback and hangs up; a later caller waits behind the request.
    let mut caller = Caller::new("127.0.0.1:7060", "cb-e2e");
    request_callback(&mut net, &mut caller);
    let mut later = Caller::new("127.0.0.1:7070", "later");
    let b = join_in_line(&mut net, &mut later);
    assert!(matches!(
        net.engine.queue_line("sales")[..],
        [Waiter::Callback(_), Waiter::Caller(_)]
    ));
    // The first call ends: the desk is offered the callback first, not the later caller.
    let bye = busy.in_dialog("BYE", "", "");
    net.send_sip(Transport::Udp, busy.addr, &bye);
    assert!(net.ended(x).is_some());
    let invite = desk.bye_then_invite(&mut net);
    let cb = callback_call(&net);
    assert_eq!(
        invite.headers.get(&HeaderName::from_wire("X-IVR-Queue")),
        Some("sales")
    );
    assert!(net.take_sip(trunk.addr).is_empty(), "the agent first");
    desk.answer(&mut net, &invite);
    assert!(
        queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::CallbackDialing { attempt: 1, .. }))
    );
    // Then the caller, at the number, through the trunk; the desk hears a ringing tone.
    let before = net.rtp.get(&cb.leg(1)).map_or(0, Vec::len);
    net.advance(Duration::from_millis(500));
    let tone = &net.rtp[&cb.leg(1)][before..];
    assert!(
        tone.len() >= 20 && tone.iter().any(|p| p.data[12..].iter().any(|b| *b != 0xFF)),
        "the agent hears the caller's phone ring ({} packets)",
        tone.len()
    );
    let dial = trunk.take_invite(&mut net);
    assert_eq!(dial.uri.to_string(), "sip:+15551234@127.0.0.1:7400");
    trunk.answer(&mut net, &dial);
    assert!(
        queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::CallbackConnected { .. }))
    );
    assert!(net.events.iter().any(|e| matches!(e,
        Event::Bridged { call, destination, .. } if *call == cb && destination == "agent desk")));
    // Audio both ways: the trunk's packets reach the desk, and the desk's the trunk.
    let (to_desk, to_trunk) = (
        net.rtp.get(&cb.leg(1)).map_or(0, Vec::len),
        net.rtp.get(&cb.leg(0)).map_or(0, Vec::len),
    );
    for seq in 1..=10 {
        net.send_rtp(cb.leg(0), trunk.media, &trunk.rtp(seq));
        net.send_rtp(cb.leg(1), desk.media, &desk.rtp(seq));
        net.advance(Duration::from_millis(20));
    }
    let sent = |net: &Net, leg| net.rtp.get(&leg).map_or(0, Vec::len);
    assert!(
        sent(&net, cb.leg(1)) >= to_desk + 8,
        "the desk hears the caller"
    );
    assert!(
        sent(&net, cb.leg(0)) >= to_trunk + 8,
        "the caller hears the desk"
    );
    assert!(
        net.rtp[&cb.leg(1)]
            .iter()
            .rev()
            .take(5)
            .all(|p| p.to == desk.media)
    );
    // What the desk hears now is the caller (their 0x55 frames), not the ringing tone.
    let heard = net.rtp[&cb.leg(1)][to_desk..]
        .iter()
        .filter(|p| p.data[12..].iter().all(|b| *b == 0x55))
        .count();
    assert!(heard >= 8, "the caller's frames reach the desk: {heard}");
    // The later caller still waits (the desk is busy with the callback).
    assert!(net.ended(b).is_none());
    assert_eq!(
        net.engine.queue_line("sales"),
        [Waiter::Caller(ivr_queues::CallRef(b.0))]
    );
    // The caller hangs up: the desk gets BYE and the queue call completes.
    let bye = format!(
        "BYE sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bK-tbye\r\n\
         Max-Forwards: 70\r\nFrom: {to};tag=trunk\r\nTo: {from}\r\nCall-ID: {cid}\r\n\
         CSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        a = trunk.addr,
        to = dial.headers.get(&HeaderName::To).unwrap(),
        from = dial.headers.get(&HeaderName::From).unwrap(),
        cid = dial.call_id().unwrap(),
    );
    trunk.send(&mut net, bye.as_bytes());
    let msgs = net.take_sip(desk.addr);
    assert!(
        request(&msgs, "BYE").is_some(),
        "the desk is hung up: {msgs:?}"
    );
    assert!(net.ended(cb).is_some());
    assert!(
        queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::Complete { .. }))
    );
    // The stored request says it was called back.
    assert!(matches!(&net.queue_callbacks[..],
        [QueueCallbackCmd::Store(r), QueueCallbackCmd::Status { id, status: "called_back", .. }]
            if *id == r.id));
}

/// The desk takes a first caller while another asks for a callback and hangs up; the first
/// call ends: the desk is offered the callback. Its INVITE.
fn callback_offered_to_desk(net: &mut Net, desk: &Phone, caller: &str) -> Request {
    let mut busy = Caller::new("127.0.0.1:7050", "busy");
    let x = join_in_line(net, &mut busy);
    let first = desk.take_invite(net);
    desk.answer(net, &first);
    let mut caller = Caller::new("127.0.0.1:7060", caller);
    request_callback(net, &mut caller);
    let bye = busy.in_dialog("BYE", "", "");
    net.send_sip(Transport::Udp, busy.addr, &bye);
    assert!(net.ended(x).is_some());
    desk.bye_then_invite(net)
}

#[test]
fn a_busy_number_is_retried_after_the_delay_then_given_up() {
    let mut net = Net::new(callback_menus("\"+1\"", true));
    let desk = Phone::new("desk", 7300);
    let trunk = Phone::new("trunk", 7400);
    let invite = callback_offered_to_desk(&mut net, &desk, "cb-busy");
    desk.answer(&mut net, &invite);
    net.advance(Duration::from_millis(100));
    let dial = trunk.take_invite(&mut net);
    // The number is busy: the engine ACKs, hangs the desk up, and the center retries later.
    trunk.send(&mut net, &trunk.respond(&dial, 486, false));
    assert!(request(&net.take_sip(trunk.addr), "ACK").is_some());
    let msgs = net.take_sip(desk.addr);
    assert!(
        request(&msgs, "BYE").is_some(),
        "the desk is hung up: {msgs:?}"
    );
    assert!(queue_events(&net).iter().any(|e| matches!(
        e,
        QueueEvent::CallbackFailed {
            attempt: 1,
            retrying: true,
            ..
        }
    )));
    assert!(
        matches!(net.engine.queue_line("sales")[..], [Waiter::Callback(_)]),
        "still in line"
    );
    // Not before the delay (30 s).
    net.advance(Duration::from_secs(20));
    assert!(request(&net.take_sip(desk.addr), "INVITE").is_none());
    net.advance(Duration::from_secs(15));
    let again = desk.take_invite(&mut net);
    desk.answer(&mut net, &again);
    net.advance(Duration::from_millis(100));
    let dial = trunk.take_invite(&mut net);
    assert_eq!(dial.uri.to_string(), "sip:+15551234@127.0.0.1:7400");
    assert!(
        queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::CallbackDialing { attempt: 2, .. }))
    );
    // Nobody answers this time either (ring timeout of the trunk: 30 s): the last retry is
    // spent and the request is given up.
    trunk.send(&mut net, &trunk.respond(&dial, 180, false));
    net.advance(Duration::from_secs(31));
    let msgs = net.take_sip(trunk.addr);
    let cancel = request(&msgs, "CANCEL").expect("CANCEL at the ring timeout");
    trunk.send(&mut net, &trunk.respond(cancel, 200, false));
    trunk.send(&mut net, &trunk.respond(&dial, 487, false));
    net.advance(Duration::from_millis(100));
    assert!(queue_events(&net).iter().any(|e| matches!(
        e,
        QueueEvent::CallbackFailed {
            attempt: 2,
            retrying: false,
            ..
        }
    )));
    assert!(net.engine.queue_line("sales").is_empty());
    assert!(matches!(
        &net.queue_callbacks[..],
        [
            QueueCallbackCmd::Store(_),
            QueueCallbackCmd::Status {
                status: "no_answer",
                ..
            }
        ]
    ));
    net.advance(Duration::from_secs(60));
    assert!(
        request(&net.take_sip(desk.addr), "INVITE").is_none(),
        "given up"
    );
}

#[test]
fn staff_closing_the_stored_request_cancels_the_callback() {
    let mut net = Net::new(callback_menus("\"+1\"", false));
    let mut caller = Caller::new("127.0.0.1:7080", "cb-cancel");
    request_callback(&mut net, &mut caller);
    let [QueueCallbackCmd::Store(r)] = &net.queue_callbacks[..] else {
        panic!("{:?}", net.queue_callbacks)
    };
    let id = r.id.clone();
    assert_eq!(r.priority, 0, "queue: sales is priority 0");
    assert_eq!(net.engine.queue_line("sales").len(), 1);
    // An id the engine does not know changes nothing.
    net.engine
        .handle_input(net.now, Input::CancelCallback("1-00000000".into()));
    assert_eq!(net.engine.queue_line("sales").len(), 1);
    net.engine.handle_input(net.now, Input::CancelCallback(id));
    net.advance(Duration::from_millis(10));
    assert!(net.engine.queue_line("sales").is_empty());
    assert!(
        queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::CallbackCancelled { .. }))
    );
    // The staff's own status stands: nothing more is written.
    assert_eq!(net.queue_callbacks.len(), 1);
    // The number may ask again.
    let mut again = Caller::new("127.0.0.1:7090", "cb-again");
    request_callback(&mut net, &mut again);
    assert_eq!(net.engine.queue_line("sales").len(), 1);
}

#[test]
fn callbacks_waiting_at_a_restart_go_back_in_line_in_their_order() {
    let mut net = Net::new(callback_menus("\"+1\", \"0\"", false));
    let restored = |id: &str, queue: &str, number: &str, priority: u8| RestoredCallback {
        id: id.into(),
        queue: queue.into(),
        number: number.into(),
        priority,
    };
    net.engine.handle_input(
        net.now,
        Input::RestoreCallbacks(vec![
            restored("100-aaaaaaaa", "sales", "+15550001", 0),
            restored("101-bbbbbbbb", "gone", "+15550002", 0),
            restored("102-cccccccc", "sales", "0491234567", 0),
            restored("103-dddddddd", "sales", "+15550003", 4),
        ]),
    );
    net.advance(Duration::from_millis(10));
    // The one whose queue is gone is closed with a note; the others wait, in order (the
    // one taken at priority 4 first), and a caller of the new run lines up behind them.
    assert!(matches!(&net.queue_callbacks[..],
        [QueueCallbackCmd::Status { id, status: "no_answer", .. }] if id == "101-bbbbbbbb"));
    let mut caller = Caller::new("127.0.0.1:7100", "after-restart");
    let c = join_in_line(&mut net, &mut caller);
    let line = net.engine.queue_line("sales");
    let [
        Waiter::Callback(vip),
        Waiter::Callback(a),
        Waiter::Callback(b),
        Waiter::Caller(w),
    ] = line[..]
    else {
        panic!("{line:?}")
    };
    assert_eq!(w.0, c.0);
    assert!(
        a.0 < b.0 && b.0 < vip.0,
        "restored in order, the last (priority 4) first: {line:?}"
    );
    // Staff can still cancel a restored one by its store id.
    net.engine
        .handle_input(net.now, Input::CancelCallback("100-aaaaaaaa".into()));
    assert_eq!(net.engine.queue_line("sales").len(), 3);
}

/// A caller who joined with a priority (`queue: { name: sales, priority: 4 }`) and asks for
/// a callback: the stored request keeps the priority, for a restart to put it back there.
#[test]
fn a_stored_callback_keeps_the_callers_priority() {
    let mut net = Net::new(callback_menus("\"+1\"", false));
    let mut caller = Caller::new("127.0.0.1:7110", "cb-prio");
    let call = net.connect(&mut caller);
    net.advance(Duration::from_millis(500));
    net.press(&mut caller, call, Digit::D4);
    net.advance(Duration::from_millis(500));
    net.press(&mut caller, call, Digit::D3);
    net.press(&mut caller, call, Digit::D1);
    net.advance(Duration::from_secs(5));
    hung_up_by_engine(&mut net, &caller, call);
    let [QueueCallbackCmd::Store(r)] = &net.queue_callbacks[..] else {
        panic!("{:?}", net.queue_callbacks)
    };
    assert_eq!((r.queue.as_deref(), r.priority), (Some("sales"), 4));
}

/// The callback rules are the current config's: a request stored under older, looser rules
/// (before a restart that removed an international prefix, say) is not called, not even
/// once, but closed with a note (toll fraud must not survive a restart).
#[test]
fn a_restored_callback_must_still_be_allowed_by_the_rules() {
    let mut net = Net::new(callback_menus("\"+1\"", false));
    net.engine.handle_input(
        net.now,
        Input::RestoreCallbacks(vec![
            RestoredCallback {
                id: "100-aaaaaaaa".into(),
                queue: "sales".into(),
                number: "+15550001".into(),
                priority: 0,
            },
            RestoredCallback {
                id: "101-bbbbbbbb".into(),
                queue: "sales".into(),
                number: "+882355512345".into(),
                priority: 0,
            },
        ]),
    );
    net.advance(Duration::from_millis(10));
    assert!(
        matches!(&net.queue_callbacks[..],
            [QueueCallbackCmd::Status { id, status: "no_answer", .. }] if id == "101-bbbbbbbb"),
        "{:?}",
        net.queue_callbacks
    );
    assert_eq!(net.engine.queue_line("sales").len(), 1);
}

/// A callback waiting while the config is reloaded with stricter rules is not dialled: the
/// number is checked against the rules current when the engine is about to call it.
#[test]
fn a_callback_the_reloaded_rules_no_longer_allow_is_not_dialled() {
    let mut net = Net::new(callback_menus("\"+1\"", true));
    let desk = Phone::new("desk", 7300);
    let trunk = Phone::new("trunk", 7400);
    let mut busy = Caller::new("127.0.0.1:7050", "busy-reload");
    let x = join_in_line(&mut net, &mut busy);
    let first = desk.take_invite(&mut net);
    desk.answer(&mut net, &first);
    let mut caller = Caller::new("127.0.0.1:7060", "cb-reload");
    request_callback(&mut net, &mut caller);
    // International numbers are no longer called back.
    net.engine.set_menus(callback_menus("\"0\"", true));
    let bye = busy.in_dialog("BYE", "", "");
    net.send_sip(Transport::Udp, busy.addr, &bye);
    assert!(net.ended(x).is_some());
    let invite = desk.bye_then_invite(&mut net);
    desk.answer(&mut net, &invite);
    for _ in 0..4 {
        net.advance(Duration::from_secs(1));
        let to_trunk = net.take_sip(trunk.addr);
        assert!(
            request(&to_trunk, "INVITE").is_none(),
            "a number the rules no longer allow is called: {to_trunk:?}"
        );
        // A retry rings the desk again: it answers.
        net.advance(Duration::from_secs(40));
        let msgs = net.take_sip(desk.addr);
        if let Some(invite) = request(&msgs, "INVITE").cloned() {
            desk.answer(&mut net, &invite);
        }
        let to_trunk = net.take_sip(trunk.addr);
        assert!(
            request(&to_trunk, "INVITE").is_none(),
            "a number the rules no longer allow is called: {to_trunk:?}"
        );
    }
    // Given up after its attempts, as an unreachable number is.
    assert!(net.engine.queue_line("sales").is_empty());
    assert!(queue_events(&net).iter().any(|e| matches!(
        e,
        QueueEvent::CallbackFailed {
            retrying: false,
            ..
        }
    )));
}

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Callers arrive at random times while the only agent is busy; some ask for a callback
    /// and hang up. Once the agent is free, everyone is served in arrival order: a callback
    /// keeps its caller's place (the agent then calls the number through the trunk). See
    /// [`callback_order`].
    #[test]
    fn a_callback_keeps_its_place_among_random_arrivals(
        arrivals in proptest::collection::vec((any::<bool>(), 0u64..8), 1..6)
    ) {
        // Nobody sends audio here: no media timeout while the line forms.
        let mut net = Net::with_config(callback_menus("\"0\"", true), |c| {
            c.media_timeout = Duration::from_secs(3600)
        });
        callback_order(&mut net, &arrivals)?;
    }
}

#[test]
fn a_queued_callbacks_agent_hears_the_whisper_then_the_ringing_tone_while_the_caller_is_dialled() {
    let menus = callback_menus_with("\"+1\"", true, "    whisper: goodbye_en\n");
    let id = menus.find_prompt("goodbye_en").expect("the whisper");
    let whisper = menus.prompt_in(id, 0).clone();
    let mut net = Net::new(menus);
    let desk = Phone::new("desk", 7300);
    let trunk = Phone::new("trunk", 7400);
    let invite = callback_offered_to_desk(&mut net, &desk, "cb-whisper");
    let cb = callback_call(&net);
    desk.answer(&mut net, &invite);
    // The caller is dialled at once, while the desk hears the whisper.
    net.advance(Duration::from_millis(100));
    let dial = trunk.take_invite(&mut net);
    let frames = whisper.frame_count();
    net.advance(Duration::from_millis(20 * frames as u64 + 1000));
    let heard: Vec<&[u8]> = net.rtp[&cb.leg(1)].iter().map(|p| &p.data[12..]).collect();
    let expected: Vec<&[u8]> = (0..frames)
        .filter_map(|i| whisper.frame(Codec::Pcmu, i))
        .collect();
    assert!(heard.len() > frames + 25);
    assert!(heard[..frames] == expected[..], "the whisper first");
    assert!(
        heard[frames..].iter().any(|f| f.iter().any(|b| *b != 0xFF)),
        "then the ringing tone"
    );
    // The caller answers: bridged with the desk.
    trunk.answer(&mut net, &dial);
    assert!(net.events.iter().any(|e| matches!(e,
        Event::Bridged { call, destination, .. } if *call == cb && destination == "agent desk")));
}
