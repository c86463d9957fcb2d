//! Call-center queues in virtual time: a scripted caller chooses `queue: sales`, the engine's
//! queue center offers the call to scripted agents (registered with digest, or static), and
//! the engine rings them, bridges the one who answers, cancels the others, and sends callers
//! nobody served to the queue's `on_timeout`. No sockets, no sleeping.

use ivr_audio::{Codec, Digit};
use ivr_engine::{CallHandle, EndReason, Event, LegHandle};
use ivr_queues::{AgentState, QueueEvent};
use ivr_sip::Transport;
use ivr_sip::digest::{Algorithm, Challenge, Credentials, answer, ha1};
use ivr_sip::header::HeaderName;
use ivr_sip::message::{CoreHeaders, Request, Response, StatusCode};
use ivr_tests::caller::{Caller, Net, request, response};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Menus: 1 joins `sales` (with its `strategy`), whose agents are `agents` (YAML lines).
fn menus(strategy: &str, agents: &str) -> Arc<ivr_menus::Menus> {
    menus_with(strategy, agents, "")
}

/// [`menus`] with more settings for `sales` (YAML lines indented by four).
fn menus_with(strategy: &str, agents: &str, extra: &str) -> Arc<ivr_menus::Menus> {
    // 60 s unless `extra` says otherwise.
    let max_wait = if extra.contains("max_wait:") {
        ""
    } else {
        "    max_wait: 60\n"
    };
    let yaml = format!(
        r#"
entry: main
prompts:
  main_en: prompts/main_en.wav
  goodbye_en: prompts/goodbye_en.wav
  sales_en: prompts/sales_en.wav
  invalid_en: prompts/invalid_en.wav
  queue_position: prompts/sales_en.wav
  queue_wait: prompts/main_en.wav
  queue_minutes: prompts/goodbye_en.wav
  number_1: prompts/invalid_en.wav
  number_3: prompts/noinput_en.wav
  whisper_en: prompts/operator_en.wav
queues:
  sales:
    strategy: {strategy}
    music: sales_en
    announcement: invalid_en
    announce_every: 20
{max_wait}    agent_timeout: 10
    on_timeout: {{ hangup: goodbye_en }}
{extra}agents:
{agents}
menus:
  main:
    prompt: main_en
    timeout: 6
    retries: 5
    options:
      "1": {{ set: {{ account: "4711" }}, queue: sales }}
      "2": {{ queue: {{ name: sales, priority: 5 }} }}
      "3": {{ goto: support }}
      "9": {{ hangup: goodbye_en }}
  support:
    prompt: sales_en
    options:
      "1": {{ queue: sales }}
"#
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo");
    Arc::new(
        ivr_menus::compile_full(
            &yaml,
            &mut |f| std::fs::read(dir.join(f)).map_err(|e| e.to_string()),
            &mut |_, _| Err("no text-to-speech here".into()),
            &mut ivr_server::builtin::prompt,
        )
        .unwrap(),
    )
}

/// A registering agent's YAML entry (password hashed for realm `ivr`).
fn registered(name: &str, password: &str) -> String {
    format!(
        "  {name}:\n    user: {name}\n    password: \"ha1:ivr:{}:{}\"\n    queues: {{ sales: 0 }}\n",
        ha1(Algorithm::Md5, name, "ivr", password),
        ha1(Algorithm::Sha256, name, "ivr", password)
    )
}

/// A static agent's YAML entry.
fn fixed(name: &str, addr: &str) -> String {
    format!("  {name}:\n    uri: sip:{name}@{addr}\n    queues: {{ sales: 0 }}\n")
}

/// A scripted agent phone.
struct Agent {
    name: &'static str,
    addr: SocketAddr,
    media: SocketAddr,
    seq: u16,
    ts: u32,
}

impl Agent {
    fn new(name: &'static str, port: u16) -> Agent {
        Agent {
            name,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            media: SocketAddr::from(([127, 0, 0, 1], port + 2)),
            seq: 10,
            ts: 800,
        }
    }

    /// REGISTER with digest (SHA-256), announcing `contact` (a private address: the
    /// engine must reach the phone where the REGISTER came from).
    fn register(&self, net: &mut Net, password: &str, contact: &str) {
        self.register_as(
            net,
            password,
            &format!("<sip:{}@{contact}>", self.name),
            300,
            1,
        );
    }

    /// REGISTER `contact` (`*` with 0 to remove all) for `expires` s, answering the challenge.
    fn register_as(&self, net: &mut Net, password: &str, contact: &str, expires: u32, cseq: u32) {
        let reg = |cseq: u32, extra: &str| {
            format!(
                "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {me};rport;branch=z9hG4bKreg{cseq}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:{u}@127.0.0.1>;tag=r1\r\n\
                 To: <sip:{u}@127.0.0.1>\r\nCall-ID: reg-{u}\r\nCSeq: {cseq} REGISTER\r\n\
                 Contact: {contact}\r\nExpires: {expires}\r\n{extra}Content-Length: 0\r\n\r\n",
                me = self.addr,
                u = self.name
            )
            .into_bytes()
        };
        net.send_sip(Transport::Udp, self.addr, &reg(cseq, ""));
        let msgs = net.take_sip(self.addr);
        let challenge = response(&msgs, 401).expect("a challenge");
        let name = HeaderName::from_wire("WWW-Authenticate");
        let c = challenge
            .headers
            .get_all(&name)
            .map(|v| Challenge::parse(v).unwrap())
            .find(|c| c.algorithm == Algorithm::Sha256)
            .expect("a SHA-256 challenge");
        let creds = Credentials {
            username: self.name.into(),
            password: password.into(),
        };
        let a = answer(
            &c,
            &creds,
            "REGISTER",
            "sip:127.0.0.1",
            Some(("c0ffee".into(), 1)),
        );
        net.send_sip(
            Transport::Udp,
            self.addr,
            &reg(cseq + 1, &format!("Authorization: {a}\r\n")),
        );
        let msgs = net.take_sip(self.addr);
        assert!(response(&msgs, 200).is_some(), "registered: {msgs:?}");
    }

    fn sdp(&self, codec: Codec) -> String {
        let pt = codec.payload_type();
        format!(
            "v=0\r\no=agent 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {name}/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
            port = self.media.port(),
            name = codec.encoding_name()
        )
    }

    /// A response to `req` with our tag (Contact and SDP on 2xx).
    fn respond(&self, req: &Request, code: u16, sdp: Option<&str>) -> Vec<u8> {
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
        if let Some(s) = sdp {
            r.headers.push(HeaderName::ContentType, "application/sdp");
            r.body = s.as_bytes().to_vec();
        }
        r.to_bytes()
    }

    fn send(&self, net: &mut Net, data: &[u8]) {
        net.send_sip(Transport::Udp, self.addr, data);
    }

    /// The INVITE the engine sent this phone (taking what else it sent).
    fn take_invite(&self, net: &mut Net) -> Request {
        let msgs = net.take_sip(self.addr);
        request(&msgs, "INVITE")
            .unwrap_or_else(|| panic!("{} is rung: {msgs:?}", self.name))
            .clone()
    }

    /// Ring, then answer in `codec`: the engine ACKs.
    fn answer(&self, net: &mut Net, invite: &Request, codec: Codec) {
        self.send(net, &self.respond(invite, 180, None));
        self.send(net, &self.respond(invite, 200, Some(&self.sdp(codec))));
        let msgs = net.take_sip(self.addr);
        assert!(request(&msgs, "ACK").is_some(), "the 2xx is acknowledged");
    }

    /// BYE in the dialog the INVITE and our 2xx made.
    fn bye(&self, invite: &Request) -> Vec<u8> {
        let from = invite.headers.get(&HeaderName::From).unwrap();
        let to = invite.headers.get(&HeaderName::To).unwrap();
        let contact = invite.headers.get(&HeaderName::Contact).unwrap();
        let target = contact.trim_start_matches('<').trim_end_matches('>');
        format!(
            "BYE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{n}-bye\r\n\
             Max-Forwards: 70\r\nFrom: {to};tag={n}\r\nTo: {from}\r\nCall-ID: {cid}\r\n\
             CSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
            me = self.addr,
            n = self.name,
            cid = invite.call_id().unwrap(),
        )
        .into_bytes()
    }

    fn audio(&mut self, codec: Codec, pcm: &[i16]) -> Vec<u8> {
        let mut p = vec![0x80, codec.payload_type()];
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&self.ts.to_be_bytes());
        p.extend_from_slice(&0xA6E7u32.to_be_bytes());
        p.extend(pcm.iter().map(|s| codec.encode(*s)));
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(pcm.len() as u32);
        p
    }
}

/// Connect `caller` and press 1 (join `sales`).
fn join(net: &mut Net, caller: &mut Caller) -> CallHandle {
    let call = net.connect(caller);
    net.advance(Duration::from_millis(500));
    net.press(caller, call, Digit::D1);
    call
}

/// Let `secs` pass with the caller sending a packet each second (its media stays alive).
fn wait(net: &mut Net, caller: &mut Caller, call: CallHandle, secs: u64) {
    for _ in 0..secs {
        let p = caller.audio_packet();
        net.send_rtp(call.leg(0), caller.media, &p);
        net.advance(Duration::from_secs(1));
    }
}

fn waveform(n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = i as f64 / 8000.0;
            (6000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin() + 1500.0) as i16
        })
        .collect()
}

/// Payload bytes sent on `leg` from packet `from` on in `codec`, minus all-silence frames.
fn relayed(net: &Net, leg: LegHandle, from: usize, codec: Codec) -> Vec<u8> {
    let silence = codec.silence();
    net.rtp
        .get(&leg)
        .map(|v| &v[from.min(v.len())..])
        .unwrap_or(&[])
        .iter()
        .filter(|p| p.data[1] & 0x7F == codec.payload_type())
        .map(|p| &p.data[12..])
        .filter(|pl| pl.iter().any(|b| *b != silence))
        .flatten()
        .copied()
        .collect()
}

fn sent_count(net: &Net, leg: LegHandle) -> usize {
    net.rtp.get(&leg).map_or(0, Vec::len)
}

fn queue_events(net: &Net) -> Vec<QueueEvent> {
    net.events
        .iter()
        .filter_map(|e| match e {
            Event::Queue { event, .. } => Some(event.clone()),
            _ => None,
        })
        .collect()
}

fn state(net: &Net, agent: &str) -> AgentState {
    net.engine
        .agent_states()
        .into_iter()
        .find(|(a, _)| a == agent)
        .map(|(_, s)| s)
        .expect("a known agent")
}

/// Every key (as RFC 4733 code) and playback the caller's leg heard is beside the point;
/// what matters is whether it hears non-silent audio in the last `n` packets.
fn hears_sound(net: &Net, call: CallHandle, n: usize) -> bool {
    net.rtp_of(call)
        .iter()
        .rev()
        .take(n)
        .any(|p| p.data[12..].iter().any(|b| *b != 0xFF))
}

#[test]
fn a_registered_agent_is_rung_at_its_source_answers_and_talks_both_ways() {
    let mut net = Net::new(menus("longest_idle", &registered("alice", "pw-alice")));
    let mut alice = Agent::new("alice", 7200);
    // Behind NAT: its contact names a private address; the REGISTER comes from 7200.
    alice.register(&mut net, "pw-alice", "10.9.9.9:5060");
    assert_eq!(state(&net, "alice"), AgentState::Available, "logged in");

    let mut caller = Caller::new("127.0.0.1:7000", "queue-1");
    let call = join(&mut net, &mut caller);
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, Event::LeftMenus { to, .. } if to == "queue sales"))
    );
    let invite = alice.take_invite(&mut net);
    assert_eq!(invite.uri.to_string(), "sip:alice@10.9.9.9:5060");
    let header = |n: &str| {
        invite
            .headers
            .get(&HeaderName::from_wire(n))
            .map(str::to_string)
    };
    assert_eq!(header("X-IVR-Queue").as_deref(), Some("sales"));
    assert_eq!(header("X-IVR-Path").as_deref(), Some("main"));
    assert_eq!(header("X-IVR-Variables").as_deref(), Some("account=4711"));
    assert!(matches!(state(&net, "alice"), AgentState::Ringing { .. }));
    // While it rings the caller hears the queue's music.
    net.advance(Duration::from_secs(1));
    assert!(hears_sound(&net, call, 10), "music plays");

    alice.answer(&mut net, &invite, Codec::Pcma);
    assert!(net.events.iter().any(|e| matches!(e,
        Event::Bridged { destination, call_id, .. }
            if destination == "agent alice" && call_id == invite.call_id().unwrap())));
    assert!(matches!(state(&net, "alice"), AgentState::OnCall { .. }));
    assert!(
        queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::Answer { agent, .. } if agent.0 == "alice"))
    );

    // Caller -> agent: PCMU in, PCMA out, sample by sample.
    let agent_leg = call.leg(1);
    let start = sent_count(&net, agent_leg);
    let pcm = waveform(160 * 25);
    let mut expected = Vec::new();
    for p in caller.audio_packets(&pcm) {
        expected.extend(
            p[12..]
                .iter()
                .map(|u| Codec::Pcma.encode(Codec::Pcmu.decode(*u))),
        );
        net.send_rtp(call.leg(0), caller.media, &p);
        net.advance(Duration::from_millis(20));
    }
    net.advance(Duration::from_millis(200));
    let got = relayed(&net, agent_leg, start, Codec::Pcma);
    assert!(got == expected, "the agent hears the caller");
    assert!(
        net.rtp[&agent_leg][start..]
            .iter()
            .all(|p| p.to == alice.media),
        "to the agent's media address"
    );

    // Agent -> caller: PCMA in, PCMU out.
    let start = sent_count(&net, call.leg(0));
    let mut expected = Vec::new();
    for chunk in waveform(160 * 25).chunks(160) {
        let p = alice.audio(Codec::Pcma, chunk);
        expected.extend(
            p[12..]
                .iter()
                .map(|a| Codec::Pcmu.encode(Codec::Pcma.decode(*a))),
        );
        net.send_rtp(agent_leg, alice.media, &p);
        net.advance(Duration::from_millis(20));
    }
    net.advance(Duration::from_millis(200));
    assert!(
        relayed(&net, call.leg(0), start, Codec::Pcmu) == expected,
        "the caller hears the agent"
    );

    // The agent hangs up: the caller's leg gets BYE, the agent wraps up (0 s: available).
    alice.send(&mut net, &alice.bye(&invite));
    assert!(response(&net.take_sip(alice.addr), 200).is_some());
    let msgs = net.take_sip(caller.addr);
    let bye = request(&msgs, "BYE")
        .expect("the caller's leg ends")
        .clone();
    net.send_sip(Transport::Udp, caller.addr, &caller.ok_to(&bye));
    assert_eq!(net.ended(call), Some(EndReason::DestinationHungUp));
    assert!(
        queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::Complete { agent, .. } if agent.0 == "alice"))
    );
    net.advance(Duration::from_millis(100));
    assert_eq!(state(&net, "alice"), AgentState::Available);
    assert!(net.media.is_empty(), "both media sockets closed");
    assert_eq!(net.engine.queue_waiting("sales"), 0);
    // The call's record (issue #12): the queue, the agent and how long the caller waited.
    let [record] = &net.call_records()[..] else {
        panic!("one call record: {:?}", net.call_records())
    };
    let r = (
        record.exit.as_deref(),
        record.exit_to.as_deref(),
        record.queue.as_deref(),
        record.agent.as_deref(),
        record.queue_wait_ms,
        record.end_reason.as_str(),
    );
    assert_eq!(
        r,
        (
            Some("queue"),
            Some("sales"),
            Some("sales"),
            Some("alice"),
            // The key acts on its first packet; the press lasts 120 ms, then 1 s of ringing.
            Some(1_120),
            "destination_hung_up"
        )
    );
}

#[test]
fn nobody_answers_within_max_wait_so_on_timeout_runs_with_announcements_meanwhile() {
    // bob is configured but never registers: not logged in, never rung.
    let mut net = Net::new(menus("longest_idle", &registered("bob", "pw-bob")));
    let mut caller = Caller::new("127.0.0.1:7010", "queue-2");
    let call = join(&mut net, &mut caller);
    assert_eq!(net.engine.queue_waiting("sales"), 1);
    wait(&mut net, &mut caller, call, 45);
    let announced = net
        .events
        .iter()
        .filter(|e| matches!(e, Event::Playing { prompt, .. } if prompt == "invalid_en"))
        .count();
    assert_eq!(announced, 2, "the announcement at 20 s and 40 s");
    assert!(net.ended(call).is_none(), "still waiting at 45 s");
    wait(&mut net, &mut caller, call, 16);
    assert!(
        queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::Timeout { .. }))
    );
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, Event::Playing { prompt, .. } if prompt == "goodbye_en")),
        "on_timeout: hang up with goodbye"
    );
    wait(&mut net, &mut caller, call, 10);
    let msgs = net.take_sip(caller.addr);
    let bye = request(&msgs, "BYE").expect("the engine hangs up").clone();
    net.send_sip(Transport::Udp, caller.addr, &caller.ok_to(&bye));
    assert_eq!(net.ended(call), Some(EndReason::MenuHangup));
    assert_eq!(net.engine.queue_waiting("sales"), 0);
}

#[test]
fn a_caller_hanging_up_while_the_agent_rings_cancels_it_and_frees_the_agent() {
    let mut net = Net::new(menus("linear", &fixed("desk", "127.0.0.1:7300")));
    let desk = Agent::new("desk", 7300);
    let mut caller = Caller::new("127.0.0.1:7020", "queue-3");
    let call = join(&mut net, &mut caller);
    let invite = desk.take_invite(&mut net);
    assert_eq!(invite.uri.to_string(), "sip:desk@127.0.0.1:7300");
    desk.send(&mut net, &desk.respond(&invite, 180, None));
    net.advance(Duration::from_secs(2));
    let bye = caller.in_dialog("BYE", "", "");
    net.send_sip(Transport::Udp, caller.addr, &bye);
    assert_eq!(net.ended(call), Some(EndReason::CallerHungUp));
    let msgs = net.take_sip(desk.addr);
    let cancel = request(&msgs, "CANCEL").expect("the ringing phone is cancelled");
    desk.send(&mut net, &desk.respond(cancel, 200, None));
    desk.send(&mut net, &desk.respond(&invite, 487, None));
    assert!(request(&net.take_sip(desk.addr), "ACK").is_some());
    assert!(
        queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::Abandon { .. }))
    );
    assert_eq!(state(&net, "desk"), AgentState::Available, "not stuck");
    assert_eq!(net.engine.queue_waiting("sales"), 0);
    net.advance(Duration::from_secs(40));
    assert!(net.media.is_empty());
    assert!(
        net.take_sip(desk.addr).is_empty(),
        "nothing more for the desk"
    );
}

#[test]
fn ring_all_rings_both_the_first_answer_wins_and_the_other_is_cancelled() {
    let agents = format!(
        "{}{}",
        fixed("ann", "127.0.0.1:7400"),
        fixed("ben", "127.0.0.1:7500")
    );
    let mut net = Net::new(menus("ring_all", &agents));
    let ann = Agent::new("ann", 7400);
    let ben = Agent::new("ben", 7500);
    let mut caller = Caller::new("127.0.0.1:7030", "queue-4");
    let call = join(&mut net, &mut caller);
    let to_ann = ann.take_invite(&mut net);
    let to_ben = ben.take_invite(&mut net);
    ann.send(&mut net, &ann.respond(&to_ann, 180, None));
    ben.send(&mut net, &ben.respond(&to_ben, 180, None));
    net.advance(Duration::from_secs(3));
    ben.answer(&mut net, &to_ben, Codec::Pcmu);
    let msgs = net.take_sip(ann.addr);
    let cancel = request(&msgs, "CANCEL").expect("the other phone stops ringing");
    ann.send(&mut net, &ann.respond(cancel, 200, None));
    ann.send(&mut net, &ann.respond(&to_ann, 487, None));
    assert!(net.events.iter().any(|e| matches!(e,
        Event::Bridged { destination, .. } if destination == "agent ben")));
    assert!(matches!(state(&net, "ben"), AgentState::OnCall { .. }));
    assert_eq!(state(&net, "ann"), AgentState::Available);

    // The caller's audio reaches ben (leg 2: ann's was leg 1).
    let ben_leg = call.leg(2);
    let start = sent_count(&net, ben_leg);
    for p in caller.audio_packets(&waveform(160 * 10)) {
        net.send_rtp(call.leg(0), caller.media, &p);
        net.advance(Duration::from_millis(20));
    }
    net.advance(Duration::from_millis(200));
    assert!(!relayed(&net, ben_leg, start, Codec::Pcmu).is_empty());

    // The caller hangs up: ben's leg gets BYE, ben wraps up.
    let bye = caller.in_dialog("BYE", "", "");
    net.send_sip(Transport::Udp, caller.addr, &bye);
    let msgs = net.take_sip(ben.addr);
    let bye = request(&msgs, "BYE").expect("the agent's leg ends").clone();
    ben.send(&mut net, &ben.respond(&bye, 200, None));
    assert_eq!(net.ended(call), Some(EndReason::CallerHungUp));
    assert_eq!(state(&net, "ben"), AgentState::Available);
}

#[test]
fn an_agent_who_does_not_answer_is_cancelled_at_agent_timeout_and_the_next_is_rung() {
    let agents = format!(
        "{}{}",
        fixed("ann", "127.0.0.1:7400"),
        fixed("ben", "127.0.0.1:7500")
    );
    let mut net = Net::new(menus("linear", &agents));
    let ann = Agent::new("ann", 7400);
    let ben = Agent::new("ben", 7500);
    let mut caller = Caller::new("127.0.0.1:7040", "queue-5");
    let _call = join(&mut net, &mut caller);
    let to_ann = ann.take_invite(&mut net);
    assert!(net.take_sip(ben.addr).is_empty(), "linear: ann first");
    ann.send(&mut net, &ann.respond(&to_ann, 180, None));
    net.advance(Duration::from_secs(11));
    let msgs = net.take_sip(ann.addr);
    let cancel = request(&msgs, "CANCEL").expect("cancelled at agent_timeout");
    ann.send(&mut net, &ann.respond(cancel, 200, None));
    // ann answers as the CANCEL crosses: the engine acknowledges and hangs up that answer.
    ann.send(
        &mut net,
        &ann.respond(&to_ann, 200, Some(&ann.sdp(Codec::Pcmu))),
    );
    let msgs = net.take_sip(ann.addr);
    assert!(
        request(&msgs, "ACK").is_some() && request(&msgs, "BYE").is_some(),
        "{msgs:?}"
    );
    assert_eq!(
        state(&net, "ann"),
        AgentState::Available,
        "not on a call nobody is on"
    );
    let to_ben = ben.take_invite(&mut net);
    ben.answer(&mut net, &to_ben, Codec::Pcmu);
    assert!(net.events.iter().any(|e| matches!(e,
        Event::Bridged { destination, .. } if destination == "agent ben")));
    assert!(queue_events(&net).iter().any(|e| matches!(e,
        QueueEvent::OfferFailed { agent, .. } if agent.0 == "ann")));
}

#[test]
fn an_agent_that_unregisters_logs_out_and_one_that_expires_is_not_rung() {
    let mut net = Net::new(menus("linear", &registered("alice", "pw-alice")));
    let alice = Agent::new("alice", 7200);
    alice.register(&mut net, "pw-alice", "127.0.0.1:7200");
    assert_eq!(state(&net, "alice"), AgentState::Available);
    alice.register_as(&mut net, "pw-alice", "*", 0, 5);
    assert_eq!(
        state(&net, "alice"),
        AgentState::LoggedOut,
        "no binding left"
    );

    // Registered again, then the binding expires: still logged in, but not rung.
    alice.register_as(&mut net, "pw-alice", "<sip:alice@127.0.0.1:7200>", 60, 9);
    assert_eq!(state(&net, "alice"), AgentState::Available);
    net.advance(Duration::from_secs(61));
    assert_eq!(net.engine.registered_agents(), 0);
    let mut caller = Caller::new("127.0.0.1:7050", "queue-6");
    let call = join(&mut net, &mut caller);
    wait(&mut net, &mut caller, call, 5);
    assert!(
        request(&net.take_sip(alice.addr), "INVITE").is_none(),
        "an unreachable agent is not rung"
    );
    assert_eq!(net.engine.queue_waiting("sales"), 1);
}

#[test]
fn a_caller_behind_another_hears_its_position_and_estimated_wait() {
    let mut net = Net::new(menus("linear", &fixed("desk", "127.0.0.1:7300")));
    let desk = Agent::new("desk", 7300);
    let mut first = Caller::new("127.0.0.1:7060", "queue-7");
    let _a = join(&mut net, &mut first);
    let invite = desk.take_invite(&mut net);
    desk.answer(&mut net, &invite, Codec::Pcmu);
    let before = net.events.len();
    let mut second = Caller::new("127.0.0.1:7062", "queue-8");
    let b = join(&mut net, &mut second);
    let heard: Vec<String> = net.events[before..]
        .iter()
        .filter_map(|e| match e {
            Event::Playing { call, prompt, .. } if *call == b && prompt != "main_en" => {
                Some(prompt.clone())
            }
            _ => None,
        })
        .collect();
    // First in line; one agent working (on a call), 3 minutes assumed per call: 3 minutes.
    assert_eq!(
        heard,
        [
            "queue_position",
            "number_1",
            "queue_wait",
            "number_3",
            "queue_minutes"
        ]
    );
    assert_eq!(net.engine.queue_waiting("sales"), 1);
}

/// Key 2 joins `sales` with priority 5: a caller who arrives after two others waiting at
/// priority 0 goes ahead of them (position 1 at entry) and is the next one offered.
#[test]
fn a_priority_caller_who_arrives_later_is_offered_before_earlier_callers() {
    let mut net = Net::new(menus("linear", &fixed("desk", "127.0.0.1:7300")));
    let desk = Agent::new("desk", 7300);
    let mut first = Caller::new("127.0.0.1:7080", "prio-1");
    let a = join(&mut net, &mut first);
    let invite = desk.take_invite(&mut net);
    desk.answer(&mut net, &invite, Codec::Pcmu);
    // Two callers at priority 0, then one at priority 5, a few seconds apart.
    let mut b_caller = Caller::new("127.0.0.1:7082", "prio-2");
    let b = join(&mut net, &mut b_caller);
    wait(&mut net, &mut b_caller, b, 3);
    let mut c_caller = Caller::new("127.0.0.1:7084", "prio-3");
    let c = join(&mut net, &mut c_caller);
    wait(&mut net, &mut c_caller, c, 3);
    let mut vip = Caller::new("127.0.0.1:7086", "prio-vip");
    let v = net.connect(&mut vip);
    net.advance(Duration::from_millis(500));
    net.press(&mut vip, v, Digit::D2);
    assert_eq!(net.engine.queue_waiting("sales"), 3);
    let entered: Vec<(u64, usize, u8)> = queue_events(&net)
        .iter()
        .filter_map(|e| match e {
            QueueEvent::Enter {
                call,
                position,
                priority,
                ..
            } => Some((call.0, *position, *priority)),
            _ => None,
        })
        .collect();
    assert_eq!(
        entered,
        [(a.0, 1, 0), (b.0, 1, 0), (c.0, 2, 0), (v.0, 1, 5)],
        "the priority caller goes ahead of the two who waited longer"
    );
    let view = net.engine.queue_view(net.now);
    let order: Vec<usize> = view.queues[0].waiting.iter().map(|w| w.position).collect();
    assert_eq!(order, [1, 2, 3]);

    // The desk's call ends: the priority caller is offered, not the earlier two.
    let offers = |net: &Net| -> Vec<u64> {
        queue_events(net)
            .iter()
            .filter_map(|e| match e {
                QueueEvent::Offer {
                    waiter: ivr_queues::Waiter::Caller(c),
                    ..
                } => Some(c.0),
                _ => None,
            })
            .collect()
    };
    assert_eq!(offers(&net), [a.0]);
    desk.send(&mut net, &desk.bye(&invite));
    let msgs = net.take_sip(first.addr);
    let bye = request(&msgs, "BYE").expect("the first call ends").clone();
    net.send_sip(Transport::Udp, first.addr, &first.ok_to(&bye));
    wait(&mut net, &mut vip, v, 1);
    assert_eq!(offers(&net), [a.0, v.0], "the priority caller is next");
    let to_desk = desk.take_invite(&mut net);
    desk.answer(&mut net, &to_desk, Codec::Pcmu);
    assert!(net.ended(v).is_none());
    assert_eq!(
        net.engine.queue_waiting("sales"),
        2,
        "the two earlier callers still wait, in their order"
    );
}

/// The staff view shows the menus each caller came through: for a caller waiting, and for
/// the caller an agent is talking to.
#[test]
fn the_queue_view_shows_the_menus_each_caller_came_through() {
    let mut net = Net::new(menus("linear", &fixed("desk", "127.0.0.1:7300")));
    let desk = Agent::new("desk", 7300);
    let mut first = Caller::new("127.0.0.1:7090", "path-1");
    let a = net.connect(&mut first);
    net.advance(Duration::from_millis(500));
    net.press(&mut first, a, Digit::D3);
    net.advance(Duration::from_millis(500));
    net.press(&mut first, a, Digit::D1);
    let view = net.engine.queue_view(net.now);
    assert_eq!(view.queues[0].waiting[0].path, ["main", "support"]);
    let invite = desk.take_invite(&mut net);
    assert_eq!(
        invite.headers.get(&HeaderName::Other("X-IVR-Path".into())),
        Some("main/support"),
        "the agent's phone gets the same path"
    );
    desk.answer(&mut net, &invite, Codec::Pcmu);
    let mut second = Caller::new("127.0.0.1:7092", "path-2");
    let _b = join(&mut net, &mut second);
    let view = net.engine.queue_view(net.now);
    let waiting: Vec<&[String]> = view.queues[0].waiting.iter().map(|w| &w.path[..]).collect();
    assert_eq!(waiting, [["main"]]);
    let desk_line = view.agents.iter().find(|l| l.name == "desk").unwrap();
    assert!(matches!(desk_line.state, Some(AgentState::OnCall { .. })));
    assert_eq!(
        desk_line.caller_path.as_deref(),
        Some(&["main".to_string(), "support".to_string()][..])
    );
}

#[test]
fn a_reload_keeps_the_agent_logged_in_and_the_waiting_caller_in_line() {
    let mut net = Net::new(menus("linear", &fixed("desk", "127.0.0.1:7300")));
    let desk = Agent::new("desk", 7300);
    let mut first = Caller::new("127.0.0.1:7070", "queue-9");
    let a = join(&mut net, &mut first);
    let invite = desk.take_invite(&mut net);
    desk.answer(&mut net, &invite, Codec::Pcmu);
    let mut second = Caller::new("127.0.0.1:7072", "queue-10");
    let b = join(&mut net, &mut second);
    assert_eq!(net.engine.queue_waiting("sales"), 1);

    // A new config (another strategy, the same agent).
    net.engine
        .set_menus(menus("ring_all", &fixed("desk", "127.0.0.1:7300")));
    wait(&mut net, &mut second, b, 1);
    assert_eq!(
        net.engine.queue_waiting("sales"),
        1,
        "the waiting caller stays"
    );
    assert!(
        matches!(state(&net, "desk"), AgentState::OnCall { .. }),
        "desk stays on its call"
    );

    // The first call ends: the desk is offered the second caller.
    desk.send(&mut net, &desk.bye(&invite));
    let msgs = net.take_sip(first.addr);
    let bye = request(&msgs, "BYE")
        .expect("the first caller's leg ends")
        .clone();
    net.send_sip(Transport::Udp, first.addr, &first.ok_to(&bye));
    assert_eq!(net.ended(a), Some(EndReason::DestinationHungUp));
    wait(&mut net, &mut second, b, 1);
    let msgs = net.take_sip(desk.addr);
    assert!(
        msgs.iter()
            .any(|m| matches!(m, ivr_sip::message::Message::Request(r)
            if r.method.as_str() == "INVITE" && r.call_id().unwrap() != invite.call_id().unwrap())),
        "the second caller rings the desk: {msgs:?}"
    );
}

#[test]
fn every_phone_an_agent_registered_rings_and_the_first_to_answer_takes_the_call() {
    let mut net = Net::new(menus("linear", &registered("alice", "pw-alice")));
    let alice = Agent::new("alice", 7200);
    // A desk phone and a softphone, both behind the same NAT (one REGISTER, two Contacts).
    alice.register_as(
        &mut net,
        "pw-alice",
        "<sip:alice@10.0.0.5:5060>, <sip:alice@10.0.0.6:5062>",
        300,
        1,
    );
    assert_eq!(net.engine.agent_bindings("alice").len(), 2);
    let mut caller = Caller::new("127.0.0.1:7080", "queue-11");
    let call = join(&mut net, &mut caller);
    let msgs = net.take_sip(alice.addr);
    let invites: Vec<Request> = msgs
        .iter()
        .filter_map(|m| match m {
            ivr_sip::message::Message::Request(r) if r.method.as_str() == "INVITE" => {
                Some(r.clone())
            }
            _ => None,
        })
        .collect();
    let mut uris: Vec<String> = invites.iter().map(|i| i.uri.to_string()).collect();
    uris.sort();
    assert_eq!(uris, ["sip:alice@10.0.0.5:5060", "sip:alice@10.0.0.6:5062"]);
    for i in &invites {
        alice.send(&mut net, &alice.respond(i, 180, None));
    }
    // The softphone answers: the desk phone is cancelled, the caller bridged.
    let (soft, desk) = if invites[0].uri.to_string().ends_with("5062") {
        (&invites[0], &invites[1])
    } else {
        (&invites[1], &invites[0])
    };
    alice.send(
        &mut net,
        &alice.respond(soft, 200, Some(&alice.sdp(Codec::Pcmu))),
    );
    let msgs = net.take_sip(alice.addr);
    assert!(
        request(&msgs, "ACK").is_some(),
        "the answer is acknowledged"
    );
    let cancel = request(&msgs, "CANCEL").expect("the other phone stops ringing");
    assert_eq!(cancel.call_id().unwrap(), desk.call_id().unwrap());
    alice.send(&mut net, &alice.respond(cancel, 200, None));
    alice.send(&mut net, &alice.respond(desk, 487, None));
    assert!(net.events.iter().any(|e| matches!(e,
        Event::Bridged { call_id, .. } if call_id == soft.call_id().unwrap())));
    assert!(matches!(state(&net, "alice"), AgentState::OnCall { .. }));
    // One offer, answered: no failure was reported for the cancelled phone.
    assert!(
        !queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::OfferFailed { .. }))
    );
    let bye = caller.in_dialog("BYE", "", "");
    net.send_sip(Transport::Udp, caller.addr, &bye);
    assert_eq!(net.ended(call), Some(EndReason::CallerHungUp));
}

#[test]
fn when_every_phone_of_the_agent_fails_the_offer_fails_once() {
    let mut net = Net::new(menus("linear", &registered("alice", "pw-alice")));
    let alice = Agent::new("alice", 7200);
    alice.register_as(
        &mut net,
        "pw-alice",
        "<sip:alice@10.0.0.5:5060>, <sip:alice@10.0.0.6:5062>",
        300,
        1,
    );
    let mut caller = Caller::new("127.0.0.1:7090", "queue-12");
    let _call = join(&mut net, &mut caller);
    let msgs = net.take_sip(alice.addr);
    let invites: Vec<Request> = msgs
        .iter()
        .filter_map(|m| match m {
            ivr_sip::message::Message::Request(r) if r.method.as_str() == "INVITE" => {
                Some(r.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(invites.len(), 2);
    alice.send(&mut net, &alice.respond(&invites[0], 486, None));
    assert!(
        !queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::OfferFailed { .. })),
        "the other phone still rings"
    );
    assert!(matches!(state(&net, "alice"), AgentState::Ringing { .. }));
    alice.send(&mut net, &alice.respond(&invites[1], 603, None));
    let failed: Vec<_> = queue_events(&net)
        .into_iter()
        .filter(|e| matches!(e, QueueEvent::OfferFailed { .. }))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        net.engine.queue_waiting("sales"),
        1,
        "the caller still waits"
    );
}

/// One thing a caller or an agent's phone does, for the property test.
#[derive(Debug, Clone)]
enum Act {
    /// A new caller joins the queue.
    Call,
    /// Caller `i` (of those still on) hangs up.
    HangUp(u8),
    /// An agent phone answers pending INVITE `i` with this status.
    Respond(u8, u16),
    /// An agent hangs up answered call `i`.
    AgentBye(u8),
    /// Time passes (milliseconds).
    Wait(u16),
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        2 => Just(Act::Call),
        1 => any::<u8>().prop_map(Act::HangUp),
        4 => (any::<u8>(), prop::sample::select(vec![180u16, 200, 486, 487, 603]))
            .prop_map(|(i, c)| Act::Respond(i, c)),
        1 => any::<u8>().prop_map(Act::AgentBye),
        2 => (1u16..12_000).prop_map(Act::Wait),
    ]
}

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever callers and agents' phones do and whenever, with ring-all over two agents:
    /// the engine never panics, and once every caller has hung up and time has passed, no
    /// call is left, nobody waits, and no agent is left ringing, on a call or in wrap-up.
    #[test]
    fn no_agent_or_caller_is_left_behind(acts in proptest::collection::vec(act(), 1..30), ring_all in any::<bool>()) {
        let agents = format!("{}{}", fixed("ann", "127.0.0.1:7400"), fixed("ben", "127.0.0.1:7500"));
        let strategy = if ring_all { "ring_all" } else { "round_robin" };
        let mut net = Net::new(menus(strategy, &agents));
        let phones = [Agent::new("ann", 7400), Agent::new("ben", 7500)];
        let mut callers: Vec<(Caller, CallHandle)> = Vec::new();
        // INVITEs the phones got: (phone, request, final answer sent, answered 2xx).
        let mut invites: Vec<(usize, Request, bool, bool)> = Vec::new();
        let collect = |net: &mut Net, invites: &mut Vec<(usize, Request, bool, bool)>| {
            for (p, phone) in phones.iter().enumerate() {
                for m in net.take_sip(phone.addr) {
                    if let ivr_sip::message::Message::Request(r) = m {
                        match r.method.as_str() {
                            "INVITE" => invites.push((p, r, false, false)),
                            // CANCEL and BYE are answered 200 (a CANCEL's INVITE then 487).
                            "CANCEL" => {
                                phone.send(net, &phone.respond(&r, 200, None));
                                if let Some(i) = invites.iter_mut().find(|i| {
                                    i.1.call_id().unwrap() == r.call_id().unwrap() && !i.2
                                }) {
                                    i.2 = true;
                                    let answer = phone.respond(&i.1, 487, None);
                                    phone.send(net, &answer);
                                }
                            }
                            "BYE" => phone.send(net, &phone.respond(&r, 200, None)),
                            _ => {}
                        }
                    }
                }
            }
        };
        for (n, a) in acts.into_iter().enumerate() {
            match a {
                Act::Call => {
                    let port = 8000 + 2 * n as u16;
                    let mut c = Caller::new(&format!("127.0.0.1:{port}"), &format!("prop-{n}"));
                    let call = join(&mut net, &mut c);
                    callers.push((c, call));
                }
                Act::HangUp(i) if !callers.is_empty() => {
                    let (mut c, _) = callers.remove(usize::from(i) % callers.len());
                    let bye = c.in_dialog("BYE", "", "");
                    net.send_sip(Transport::Udp, c.addr, &bye);
                }
                Act::Respond(i, code) => {
                    let open: Vec<usize> = (0..invites.len()).filter(|k| !invites[*k].2).collect();
                    if let Some(&k) = open.get(usize::from(i) % open.len().max(1)) {
                        let (p, r) = (invites[k].0, invites[k].1.clone());
                        let phone = &phones[p];
                        let sdp = phone.sdp(Codec::Pcmu);
                        let body = (code == 200).then_some(sdp.as_str());
                        phone.send(&mut net, &phone.respond(&r, code, body));
                        if code >= 200 {
                            invites[k].2 = true;
                            invites[k].3 = code == 200;
                        }
                    }
                }
                Act::AgentBye(i) => {
                    let up: Vec<usize> = (0..invites.len()).filter(|k| invites[*k].3).collect();
                    if let Some(&k) = up.get(usize::from(i) % up.len().max(1)) {
                        let phone = &phones[invites[k].0];
                        phone.send(&mut net, &phone.bye(&invites[k].1));
                        invites[k].3 = false;
                    }
                }
                Act::Wait(ms) => {
                    // The callers still on keep their media alive.
                    for (c, call) in &mut callers {
                        let p = c.audio_packet();
                        net.send_rtp(call.leg(0), c.media, &p);
                    }
                    net.advance(Duration::from_millis(u64::from(ms)));
                }
                _ => {}
            }
            collect(&mut net, &mut invites);
        }
        // Every caller hangs up; time passes (transactions end, wrap-up is over).
        for (mut c, _) in callers.drain(..) {
            let bye = c.in_dialog("BYE", "", "");
            net.send_sip(Transport::Udp, c.addr, &bye);
            collect(&mut net, &mut invites);
        }
        for _ in 0..8 {
            net.advance(Duration::from_secs(10));
            collect(&mut net, &mut invites);
        }
        prop_assert_eq!(net.engine.call_count(), 0);
        prop_assert_eq!(net.engine.queue_waiting("sales"), 0);
        for (agent, s) in net.engine.agent_states() {
            prop_assert!(
                matches!(s, AgentState::Available | AgentState::Paused { .. }),
                "{} is left {:?}", agent, s
            );
        }
        prop_assert!(net.media.is_empty(), "sockets left open: {:?}", net.media.keys().collect::<Vec<_>>());
    }
}

#[test]
fn a_static_agent_named_by_host_is_located_by_dns_first() {
    let agents = format!(
        "{}{}",
        fixed("desk", "pbx.example.test"),
        fixed("gone", "nowhere.example.test")
    );
    let mut net = Net::new(menus("linear", &agents));
    let desk = Agent::new("desk", 7300);
    net.dns.insert(
        "pbx.example.test".into(),
        vec![ivr_sip::transaction::Peer {
            transport: Transport::Udp,
            addr: desk.addr,
        }],
    );
    let mut caller = Caller::new("127.0.0.1:7096", "queue-13");
    let call = join(&mut net, &mut caller);
    assert_eq!(net.located, ["sip:desk@pbx.example.test"]);
    let invite = desk.take_invite(&mut net);
    assert_eq!(invite.uri.to_string(), "sip:desk@pbx.example.test");
    // desk declines: the next agent's host is not found, so that offer fails at once.
    desk.send(&mut net, &desk.respond(&invite, 603, None));
    wait(&mut net, &mut caller, call, 1);
    assert_eq!(
        net.located,
        ["sip:desk@pbx.example.test", "sip:gone@nowhere.example.test"]
    );
    assert!(net.events.iter().any(|e| matches!(e,
        Event::RouteUnresolved { next_hop, .. } if next_hop == "sip:gone@nowhere.example.test")));
    assert!(queue_events(&net).iter().any(|e| matches!(e,
        QueueEvent::OfferFailed { agent, why: ivr_queues::OfferFailure::Unreachable, .. }
            if agent.0 == "gone")));
    assert_eq!(
        net.engine.queue_waiting("sales"),
        1,
        "the caller still waits"
    );
}

/// Menus with no queue prompts of their own (the built-in ones are used), in `languages`
/// (the first the default), `sales` worked by `agents`; `position: false` turns the
/// position announcement off.
fn plain_menus(languages: &str, agents: &str, position: bool) -> Arc<ivr_menus::Menus> {
    let yaml = format!(
        r#"
entry: main
languages:
  enabled: [{languages}]
prompts:
  main: prompts/main_en.wav
  goodbye: prompts/goodbye_en.wav
queues:
  sales:
    strategy: linear
    max_wait: 600
    announce_position: {position}
    on_timeout: {{ hangup: goodbye }}
agents:
{agents}
menus:
  main:
    prompt: main
    options:
      "1": {{ queue: sales }}
"#
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo");
    Arc::new(
        ivr_menus::compile_full(
            &yaml,
            &mut |f| std::fs::read(dir.join(f)).map_err(|e| e.to_string()),
            &mut |_, _| Err("no text-to-speech here".into()),
            &mut ivr_server::builtin::prompt,
        )
        .unwrap(),
    )
}

/// What `call` was played (name, language) from event `from` on, menus and music aside.
fn announced(net: &Net, from: usize, call: CallHandle) -> Vec<(String, Option<String>)> {
    net.events[from..]
        .iter()
        .filter_map(|e| match e {
            Event::Playing {
                call: c,
                prompt,
                language,
            } if *c == call && prompt != "main" => Some((prompt.clone(), language.clone())),
            _ => None,
        })
        .collect()
}

/// Two agents on calls and two callers waiting: the fifth caller is number 3 in line, and
/// 3 × 3 min ÷ 2 agents = 4.5, so about 5 minutes. With no recordings of its own the config
/// gets the built-in phrases and number words, in the caller's language.
fn hears_position_3_and_5_minutes(language: &str) {
    let languages = if language == "en" { "en, fr" } else { "fr, en" };
    let agents = fixed("desk1", "127.0.0.1:7300") + &fixed("desk2", "127.0.0.1:7310");
    let menus = plain_menus(languages, &agents, true);
    let mut net = Net::new(menus.clone());
    for (i, desk) in [Agent::new("desk1", 7300), Agent::new("desk2", 7310)]
        .iter()
        .enumerate()
    {
        let mut c = Caller::new(&format!("127.0.0.1:{}", 7400 + 2 * i), &format!("ann-{i}"));
        join(&mut net, &mut c);
        let invite = desk.take_invite(&mut net);
        desk.answer(&mut net, &invite, Codec::Pcmu);
    }
    for i in 2..4 {
        let mut c = Caller::new(&format!("127.0.0.1:{}", 7400 + 2 * i), &format!("ann-{i}"));
        join(&mut net, &mut c);
    }
    let before = net.events.len();
    let mut fifth = Caller::new("127.0.0.1:7420", "ann-5");
    let call = join(&mut net, &mut fifth);
    let heard = announced(&net, before, call);
    let names: Vec<&str> = heard.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        names,
        [
            "queue_position",
            "number_3",
            "queue_position_end",
            "queue_wait",
            "number_5",
            "queue_minutes"
        ],
        "\"You are number 3 in line. Your expected wait is about 5 minutes.\""
    );
    assert!(heard.iter().all(|(_, l)| l.as_deref() == Some(language)));
    // And in that language's built-in voice.
    let lang = menus
        .languages()
        .iter()
        .position(|l| l == language)
        .unwrap();
    for name in names {
        let id = menus.find_prompt(name).unwrap();
        let builtin = ivr_server::builtin::prompt(name, language).unwrap();
        let builtin = ivr_audio::Prompt::from_wav(name, &builtin).unwrap();
        assert_eq!(
            menus.prompt_in(id, lang).frame_count(),
            builtin.frame_count(),
            "{name} in {language}"
        );
    }
    assert_eq!(net.engine.queue_waiting("sales"), 3);
}

#[test]
fn built_in_announcements_say_number_3_in_line_and_about_5_minutes_in_english() {
    hears_position_3_and_5_minutes("en");
}

#[test]
fn built_in_announcements_say_number_3_in_line_and_about_5_minutes_in_french() {
    hears_position_3_and_5_minutes("fr");
}

#[test]
fn no_estimate_no_wait_announcement_and_with_the_position_off_nothing_at_all() {
    // bob never registers: nobody works the queue, so the center gives no estimate.
    for position in [true, false] {
        let mut net = Net::new(plain_menus("en", &registered("bob", "pw-bob"), position));
        let before = net.events.len();
        let mut caller = Caller::new("127.0.0.1:7430", "ann-none");
        let call = join(&mut net, &mut caller);
        wait(&mut net, &mut caller, call, 70);
        let names: Vec<String> = announced(&net, before, call)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        if position {
            assert_eq!(names, ["queue_position", "number_1", "queue_position_end"]);
        } else {
            assert!(names.is_empty(), "nothing plays: {names:?}");
        }
        assert_eq!(net.engine.queue_waiting("sales"), 1);
    }
}

#[test]
fn built_in_queue_phrases_are_left_out_for_a_language_without_them_and_never_mixed() {
    let agents = fixed("desk", "127.0.0.1:7300");
    // German has no built-in voice: no phrase for anyone, rather than English to a German.
    let menus = plain_menus("de, en", &agents, true);
    assert!(menus.find_prompt("queue_position").is_none());
    // English and French: each language has its own; Spanish adds its own number words.
    let menus = plain_menus("en, fr, es", &agents, true);
    for name in ["queue_position", "queue_wait", "number_5", "number_25"] {
        assert!(menus.find_prompt(name).is_some(), "{name}");
    }
    // A config recording one phrase of its own gets none of the built-in phrases.
    let yaml = format!(
        "entry: main\nprompts:\n  main: prompts/main_en.wav\n  queue_wait: prompts/main_en.wav\nqueues:\n  sales: {{}}\nagents:\n{agents}menus:\n  main:\n    prompt: main\n    options:\n      \"1\": {{ queue: sales }}\n"
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo");
    let own = ivr_menus::compile_full(
        &yaml,
        &mut |f| std::fs::read(dir.join(f)).map_err(|e| e.to_string()),
        &mut |_, _| Err("no text-to-speech here".into()),
        &mut ivr_server::builtin::prompt,
    )
    .unwrap();
    assert!(own.find_prompt("queue_position").is_none());
    assert!(
        own.find_prompt("number_5").is_some(),
        "numbers are a set of their own"
    );
}

/// Menus whose queue whispers `whisper_en` to the agent and has 3 s of wrap-up.
fn whisper_menus(agents: &str) -> Arc<ivr_menus::Menus> {
    menus_with(
        "linear",
        agents,
        "    whisper: whisper_en\n    wrap_up: 3\n",
    )
}

/// The whisper's payload in `codec`, as [`relayed`] collects it (all-silence frames left out).
fn whisper_payload(menus: &ivr_menus::Menus, codec: Codec) -> Vec<u8> {
    let id = menus.find_prompt("whisper_en").expect("the whisper prompt");
    let prompt = menus.prompt_in(id, 0);
    (0..prompt.frame_count())
        .filter_map(|i| prompt.frame(codec, i))
        .filter(|f| f.iter().any(|b| *b != codec.silence()))
        .flatten()
        .copied()
        .collect()
}

/// A static agent answers the caller of a queue with a whisper: returns the caller's call
/// and the agent's INVITE, with the whisper just begun.
fn answered_with_whisper(
    net: &mut Net,
    caller: &mut Caller,
    desk: &Agent,
) -> (CallHandle, Request) {
    let call = join(net, caller);
    let invite = desk.take_invite(net);
    desk.answer(net, &invite, Codec::Pcma);
    assert!(matches!(state(net, "desk"), AgentState::OnCall { .. }));
    assert!(
        !net.events
            .iter()
            .any(|e| matches!(e, Event::Bridged { .. })),
        "not bridged during the whisper"
    );
    (call, invite)
}

#[test]
fn the_agent_hears_the_whisper_before_any_of_the_callers_audio_then_they_talk() {
    let menus = whisper_menus(&fixed("desk", "127.0.0.1:7310"));
    let whisper = whisper_payload(&menus, Codec::Pcma);
    assert!(whisper.len() > 8000, "a whisper of more than a second");
    let mut net = Net::new(menus);
    let desk = Agent::new("desk", 7310);
    let mut caller = Caller::new("127.0.0.1:7030", "queue-whisper-1");
    let (call, _) = answered_with_whisper(&mut net, &mut caller, &desk);
    let agent_leg = call.leg(1);
    // The caller talks all along; the agent hears the whisper first, and the caller hears
    // the queue's music meanwhile.
    // Noise that never repeats: where the agent's audio begins in it is unambiguous.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let pcm: Vec<i16> = (0..160 * 250)
        .map(|_| {
            // xorshift64 (Marsaglia)
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 52) as i16 - 2048
        })
        .collect();
    let mut talk = Vec::new();
    let mut bridged_after = None;
    for (i, p) in caller.audio_packets(&pcm).into_iter().enumerate() {
        talk.extend(
            p[12..]
                .iter()
                .map(|u| Codec::Pcma.encode(Codec::Pcmu.decode(*u))),
        );
        net.send_rtp(call.leg(0), caller.media, &p);
        net.advance(Duration::from_millis(20));
        if bridged_after.is_none()
            && net.events.iter().any(
                |e| matches!(e, Event::Bridged { destination, .. } if destination == "agent desk"),
            )
        {
            bridged_after = Some(i);
            assert!(
                hears_sound(&net, call, 10),
                "the caller heard music until then"
            );
        }
    }
    let bridged_after = bridged_after.expect("bridged once the whisper has played");
    // (The whisper began with the answer, a few packets before this loop.)
    assert!(
        (bridged_after + 5) * 160 >= whisper.len(),
        "not before the whisper's end ({bridged_after} packets)"
    );
    let got = relayed(&net, agent_leg, 0, Codec::Pcma);
    assert!(
        got.starts_with(&whisper),
        "the agent hears the whisper first ({} bytes of {})",
        got.len(),
        whisper.len()
    );
    // Then the caller, from the packet the bridge began with: none of it before.
    let after = &got[whisper.len()..];
    assert!(after.len() >= 160 * 50, "then the caller's audio");
    let first = &after[..160];
    let at = talk
        .windows(160)
        .position(|w| w == first)
        .expect("what follows the whisper is the caller's audio");
    assert!(
        at >= bridged_after * 160 - 160 * 2,
        "none from before the bridge: at {at}, bridged after {bridged_after}, whisper {}, got {}",
        whisper.len(),
        got.len()
    );
    assert!(
        talk[at..].starts_with(after),
        "the caller's audio, in order"
    );
}

#[test]
fn the_caller_hanging_up_during_the_whisper_hangs_up_the_agent_who_wraps_up() {
    let mut net = Net::new(whisper_menus(&fixed("desk", "127.0.0.1:7320")));
    let desk = Agent::new("desk", 7320);
    let mut caller = Caller::new("127.0.0.1:7040", "queue-whisper-2");
    let (call, invite) = answered_with_whisper(&mut net, &mut caller, &desk);
    net.advance(Duration::from_millis(300));
    let bye = caller.in_dialog("BYE", "", "");
    net.send_sip(Transport::Udp, caller.addr, &bye);
    let msgs = net.take_sip(desk.addr);
    let agent_bye = request(&msgs, "BYE").expect("the agent's leg gets BYE");
    assert_eq!(agent_bye.call_id().unwrap(), invite.call_id().unwrap());
    desk.send(&mut net, &desk.respond(agent_bye, 200, None));
    assert_eq!(net.ended(call), Some(EndReason::CallerHungUp));
    assert!(
        !net.events
            .iter()
            .any(|e| matches!(e, Event::Bridged { .. })),
        "never bridged"
    );
    assert!(
        queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::Complete { agent, .. } if agent.0 == "desk"))
    );
    assert!(matches!(state(&net, "desk"), AgentState::WrapUp { .. }));
    net.advance(Duration::from_secs(3));
    assert_eq!(
        state(&net, "desk"),
        AgentState::Available,
        "free after wrap-up"
    );
    assert_eq!(net.engine.queue_waiting("sales"), 0);
    assert!(net.media.is_empty(), "both media sockets closed");
}

#[test]
fn the_agent_hanging_up_during_the_whisper_puts_the_caller_back_in_its_place() {
    let mut net = Net::new(whisper_menus(&fixed("desk", "127.0.0.1:7330")));
    let desk = Agent::new("desk", 7330);
    let mut caller = Caller::new("127.0.0.1:7050", "queue-whisper-3");
    let (call, invite) = answered_with_whisper(&mut net, &mut caller, &desk);
    net.advance(Duration::from_millis(300));
    desk.send(&mut net, &desk.bye(&invite));
    assert!(response(&net.take_sip(desk.addr), 200).is_some());
    assert!(net.ended(call).is_none(), "the caller stays");
    assert!(
        net.take_sip(caller.addr).is_empty(),
        "nothing for the caller"
    );
    assert_eq!(net.engine.queue_waiting("sales"), 1, "back in line");
    assert!(
        queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::Requeue { agent, .. } if agent.0 == "desk"))
    );
    assert_eq!(state(&net, "desk"), AgentState::Available, "no wrap-up");
    wait(&mut net, &mut caller, call, 2);
    assert!(hears_sound(&net, call, 10), "the music goes on");
    // After its rest the agent is rung again for the caller; this time it listens.
    wait(&mut net, &mut caller, call, 5);
    let again = desk.take_invite(&mut net);
    desk.answer(&mut net, &again, Codec::Pcma);
    wait(&mut net, &mut caller, call, 8);
    assert!(
        net.events.iter().any(
            |e| matches!(e, Event::Bridged { destination, .. } if destination == "agent desk")
        )
    );
    assert_eq!(net.engine.queue_waiting("sales"), 0);
}

/// The agent hangs up during the whisper; later its dead dialog sends another BYE (a new
/// transaction: a broken or hostile phone). The caller, back in line, must not be hung up.
#[test]
fn a_second_bye_in_the_dialog_of_an_agent_who_hung_up_during_the_whisper_is_refused() {
    let mut net = Net::new(whisper_menus(&fixed("desk", "127.0.0.1:7340")));
    let desk = Agent::new("desk", 7340);
    let mut caller = Caller::new("127.0.0.1:7060", "queue-whisper-4");
    let (call, invite) = answered_with_whisper(&mut net, &mut caller, &desk);
    net.advance(Duration::from_millis(300));
    desk.send(&mut net, &desk.bye(&invite));
    assert!(response(&net.take_sip(desk.addr), 200).is_some());
    assert_eq!(net.engine.queue_waiting("sales"), 1, "back in line");
    wait(&mut net, &mut caller, call, 1);
    let again = String::from_utf8(desk.bye(&invite))
        .unwrap()
        .replace("CSeq: 1 BYE", "CSeq: 2 BYE")
        .replace("-bye\r\n", "-bye2\r\n");
    desk.send(&mut net, again.as_bytes());
    assert!(
        response(&net.take_sip(desk.addr), 481).is_some(),
        "that dialog is gone"
    );
    assert!(net.ended(call).is_none(), "the caller stays");
    assert_eq!(net.engine.queue_waiting("sales"), 1, "still in line");
    assert!(
        net.take_sip(caller.addr).is_empty(),
        "nothing for the caller"
    );
}

/// An agent whose answer set a session timer with us as the refresher (RFC 4028) hangs up
/// during the whisper: its dead leg must neither refresh nor expire, which would send a
/// re-INVITE into a finished dialog and hang up the caller waiting on in the queue.
#[test]
fn the_session_timer_of_an_agent_who_hung_up_during_the_whisper_dies_with_its_leg() {
    let menus = menus_with(
        "linear",
        &fixed("desk", "127.0.0.1:7350"),
        "    whisper: whisper_en\n    max_wait: 120\n",
    );
    let mut net = Net::new(menus);
    let desk = Agent::new("desk", 7350);
    let mut caller = Caller::new("127.0.0.1:7070", "queue-whisper-5");
    let call = join(&mut net, &mut caller);
    let invite = desk.take_invite(&mut net);
    desk.send(&mut net, &desk.respond(&invite, 180, None));
    let ok = String::from_utf8(desk.respond(&invite, 200, Some(&desk.sdp(Codec::Pcma))))
        .unwrap()
        .replacen(
            "\r\n",
            "\r\nRequire: timer\r\nSession-Expires: 90;refresher=uac\r\n",
            1,
        );
    desk.send(&mut net, ok.as_bytes());
    assert!(request(&net.take_sip(desk.addr), "ACK").is_some());
    assert!(matches!(state(&net, "desk"), AgentState::OnCall { .. }));
    net.advance(Duration::from_millis(300));
    desk.send(&mut net, &desk.bye(&invite));
    assert!(response(&net.take_sip(desk.addr), 200).is_some());
    // The caller waits on (the desk is rung again and lets it ring), past the dead
    // session's refresh (45 s after the answer) and expiry (60 s).
    let dead = invite.call_id().unwrap().to_string();
    for _ in 0..70 {
        wait(&mut net, &mut caller, call, 1);
        let msgs = net.take_sip(desk.addr);
        assert!(
            !msgs
                .iter()
                .any(|m| m.headers().get(&HeaderName::CallId) == Some(dead.as_str())),
            "nothing more in the finished dialog: {msgs:?}"
        );
        assert!(net.ended(call).is_none(), "the caller is not hung up");
    }
}

/// An agent's phone that answers `a=sendonly` (or `inactive`) is sent nothing, so the
/// whisper, paced by the packets sent, would never end: the caller must still be put
/// through once the whisper's time has passed, not wait with music until a timeout.
#[test]
fn the_caller_is_put_through_even_if_the_whisper_cannot_be_sent_to_the_agent() {
    let menus = whisper_menus(&fixed("desk", "127.0.0.1:7370"));
    let id = menus.find_prompt("whisper_en").expect("the whisper prompt");
    let length = Duration::from_millis(20 * menus.prompt_in(id, 0).frame_count() as u64);
    let mut net = Net::new(menus);
    let desk = Agent::new("desk", 7370);
    let mut caller = Caller::new("127.0.0.1:7090", "queue-whisper-7");
    let call = join(&mut net, &mut caller);
    let invite = desk.take_invite(&mut net);
    desk.send(&mut net, &desk.respond(&invite, 180, None));
    let sdp = desk.sdp(Codec::Pcma).replace("a=sendrecv", "a=sendonly");
    desk.send(&mut net, &desk.respond(&invite, 200, Some(&sdp)));
    assert!(request(&net.take_sip(desk.addr), "ACK").is_some());
    assert!(matches!(state(&net, "desk"), AgentState::OnCall { .. }));
    let bridged = |net: &Net| {
        net.events
            .iter()
            .any(|e| matches!(e, Event::Bridged { destination, .. } if destination == "agent desk"))
    };
    wait(&mut net, &mut caller, call, length.as_secs() + 2);
    assert!(bridged(&net), "put through after the whisper's time");
    assert!(net.ended(call).is_none());
}
