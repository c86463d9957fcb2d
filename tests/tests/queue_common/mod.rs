//! Helpers shared by the queue tests in virtual time (`queue_calls.rs`, `queue_whisper.rs`,
//! `queue_exit_keys.rs`, `shards_virtual.rs`...): menus with a `sales` queue, scripted agents
//! that register or answer, readers of what the engine sent and the center logged, and the
//! bodies of the queue property tests, run on one engine ([`Net`]) or on engine shards
//! around a hub ([`ShardedNet`]) through [`QueueNet`].
#![allow(dead_code)]

use ivr_audio::{Codec, Digit};
use ivr_engine::{CallHandle, Event, LegHandle};
use ivr_queues::{AgentState, QueueEvent};
use ivr_sip::Transport;
use ivr_sip::digest::{Algorithm, Challenge, Credentials, answer, ha1};
use ivr_sip::header::HeaderName;
use ivr_sip::message::Message;
use ivr_sip::message::{CoreHeaders, Request, Response, StatusCode};
use ivr_tests::caller::{Caller, Net, SipNet, menu_file, request, response};
use ivr_tests::sharded::ShardedNet;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Menus: 1 joins `sales` (with its `strategy`), whose agents are `agents` (YAML lines).
pub fn menus(strategy: &str, agents: &str) -> Arc<ivr_menus::Menus> {
    menus_with(strategy, agents, "")
}

/// [`menus`] with more settings for `sales` (YAML lines indented by four).
pub fn menus_with(strategy: &str, agents: &str, extra: &str) -> Arc<ivr_menus::Menus> {
    // 60 s unless `extra` says otherwise.
    let max_wait = if extra.contains("max_wait:") {
        ""
    } else {
        "    max_wait: 60\n"
    };
    let prompts = "  invalid_en: prompts/invalid_en.wav
  queue_position: prompts/sales_en.wav
  queue_wait: prompts/main_en.wav
  queue_minutes: prompts/goodbye_en.wav
  number_1: prompts/invalid_en.wav
  number_3: prompts/noinput_en.wav
  whisper_en: prompts/operator_en.wav
";
    let sections = format!(
        r#"queues:
  sales:
    strategy: {strategy}
    music: sales_en
    announcement: invalid_en
    announce_every: 20
{max_wait}    agent_timeout: 10
    on_timeout: {{ hangup: goodbye_en }}
{extra}agents:
{agents}
"#
    );
    let options = r#"      "1": { set: { account: "4711" }, queue: sales }
      "2": { queue: { name: sales, priority: 5 } }
      "3": { goto: support }
      "9": { hangup: goodbye_en }
"#;
    let support = r#"  support:
    prompt: sales_en
    options:
      "1": { queue: sales }
"#;
    let yaml = menu_file(prompts, &sections, options, support);
    ivr_tests::caller::demo_variant(&yaml)
}

/// A registering agent's YAML entry (password hashed for realm `ivr`).
pub fn registered(name: &str, password: &str) -> String {
    format!(
        "  {name}:\n    user: {name}\n    password: \"ha1:ivr:{}:{}\"\n    queues: {{ sales: 0 }}\n",
        ha1(Algorithm::Md5, name, "ivr", password),
        ha1(Algorithm::Sha256, name, "ivr", password)
    )
}

/// A static agent's YAML entry.
pub fn fixed(name: &str, addr: &str) -> String {
    format!("  {name}:\n    uri: sip:{name}@{addr}\n    queues: {{ sales: 0 }}\n")
}

/// A scripted agent phone.
pub struct Agent {
    pub name: &'static str,
    pub addr: SocketAddr,
    pub media: SocketAddr,
    pub seq: u16,
    pub ts: u32,
}

impl Agent {
    pub fn new(name: &'static str, port: u16) -> Agent {
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
    pub fn register(&self, net: &mut impl SipNet, password: &str, contact: &str) {
        self.register_as(
            net,
            password,
            &format!("<sip:{}@{contact}>", self.name),
            300,
            1,
        );
    }

    /// REGISTER `contact` (`*` with 0 to remove all) for `expires` s, answering the challenge.
    pub fn register_as(
        &self,
        net: &mut impl SipNet,
        password: &str,
        contact: &str,
        expires: u32,
        cseq: u32,
    ) {
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

    pub fn sdp(&self, codec: Codec) -> String {
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
    pub fn respond(&self, req: &Request, code: u16, sdp: Option<&str>) -> Vec<u8> {
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

    pub fn send(&self, net: &mut impl SipNet, data: &[u8]) {
        net.send_sip(Transport::Udp, self.addr, data);
    }

    /// The INVITE the engine sent this phone (taking what else it sent).
    pub fn take_invite(&self, net: &mut impl SipNet) -> Request {
        let msgs = net.take_sip(self.addr);
        request(&msgs, "INVITE")
            .unwrap_or_else(|| panic!("{} is rung: {msgs:?}", self.name))
            .clone()
    }

    /// Ring, then answer in `codec`: the engine ACKs.
    pub fn answer(&self, net: &mut impl SipNet, invite: &Request, codec: Codec) {
        self.send(net, &self.respond(invite, 180, None));
        self.send(net, &self.respond(invite, 200, Some(&self.sdp(codec))));
        let msgs = net.take_sip(self.addr);
        assert!(request(&msgs, "ACK").is_some(), "the 2xx is acknowledged");
    }

    /// BYE in the dialog the INVITE and our 2xx made.
    pub fn bye(&self, invite: &Request) -> Vec<u8> {
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

    pub fn audio(&mut self, codec: Codec, pcm: &[i16]) -> Vec<u8> {
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
pub fn join(net: &mut Net, caller: &mut Caller) -> CallHandle {
    let call = net.connect(caller);
    net.advance(Duration::from_millis(500));
    net.press(caller, call, Digit::D1);
    call
}

/// Let `secs` pass with the caller sending a packet each second (its media stays alive).
pub fn wait(net: &mut Net, caller: &mut Caller, call: CallHandle, secs: u64) {
    for _ in 0..secs {
        let p = caller.audio_packet();
        net.send_rtp(call.leg(0), caller.media, &p);
        net.advance(Duration::from_secs(1));
    }
}

pub fn waveform(n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = i as f64 / 8000.0;
            (6000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin() + 1500.0) as i16
        })
        .collect()
}

/// Payload bytes sent on `leg` from packet `from` on in `codec`, minus all-silence frames.
pub fn relayed(net: &Net, leg: LegHandle, from: usize, codec: Codec) -> Vec<u8> {
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

pub fn sent_count(net: &Net, leg: LegHandle) -> usize {
    net.rtp.get(&leg).map_or(0, Vec::len)
}

pub fn queue_events(net: &Net) -> Vec<QueueEvent> {
    net.events
        .iter()
        .filter_map(|e| match e {
            Event::Queue { event, .. } => Some(event.clone()),
            _ => None,
        })
        .collect()
}

pub fn state(net: &Net, agent: &str) -> AgentState {
    net.engine
        .agent_states()
        .into_iter()
        .find(|(a, _)| a == agent)
        .map(|(_, s)| s)
        .expect("a known agent")
}

/// Every key (as RFC 4733 code) and playback the caller's leg heard is beside the point;
/// what matters is whether it hears non-silent audio in the last `n` packets.
pub fn hears_sound(net: &Net, call: CallHandle, n: usize) -> bool {
    net.rtp_of(call)
        .iter()
        .rev()
        .take(n)
        .any(|p| p.data[12..].iter().any(|b| *b != 0xFF))
}

/// Menus: 1 joins `sales`, whose exit keys are 2 (voicemail) and 3 (callback through the
/// trunk, numbers starting with `allowed`). The agent `desk` is static at 127.0.0.1:7300
/// when `with_agent`, else nobody works the queue.
pub fn callback_menus(allowed: &str, with_agent: bool) -> Arc<ivr_menus::Menus> {
    callback_menus_with(allowed, with_agent, "")
}

/// [`callback_menus`] with more settings for `sales` (YAML lines indented by four).
pub fn callback_menus_with(allowed: &str, with_agent: bool, extra: &str) -> Arc<ivr_menus::Menus> {
    let agents = if with_agent {
        "agents:\n  desk:\n    uri: sip:desk@127.0.0.1:7300\n    queues: { sales: 0 }\n"
    } else {
        ""
    };
    let sections = format!(
        r#"mailboxes:
  messages: {{ greeting: goodbye_en }}
destinations:
  trunk: {{ uri: "sip:trunk@127.0.0.1:7400", mode: bridge }}
queues:
  sales:
    music: sales_en
{extra}    max_wait: 600
    on_timeout: {{ hangup: goodbye_en }}
    exit_keys:
      "2": {{ voicemail: messages }}
      "3": callback
    callback:
      via: trunk
      retries: 1
      retry_delay: 30
      allowed_prefixes: [{allowed}]
      confirmed: thanks
{agents}
"#
    );
    let options = r#"      "1": { queue: sales }
      "4": { queue: { name: sales, priority: 4 } }
"#;
    let prompts = "  thanks: prompts/invalid_en.wav\n";
    ivr_tests::caller::demo_variant(&menu_file(prompts, &sections, options, ""))
}

/// What the queue property tests do with and ask of the engine: one engine ([`Net`]), or
/// engine shards around a hub ([`ShardedNet`], whose hub keeps the queues).
pub trait QueueNet: SipNet {
    /// Connect `caller` (answered at once): 200, then ACK.
    fn connect(&mut self, caller: &mut Caller) -> CallHandle;
    /// `caller` presses a key on its call (RFC 4733, 20 ms between packets).
    fn press(&mut self, caller: &mut Caller, call: CallHandle, digit: Digit);
    /// Let `d` pass.
    fn advance(&mut self, d: Duration);
    /// Deliver an RTP packet from `from` to `leg`.
    fn send_rtp(&mut self, leg: LegHandle, from: SocketAddr, data: &[u8]);
    /// Calls not ended.
    fn call_count(&self) -> usize;
    /// Callers waiting in `queue`.
    fn waiting(&self, queue: &str) -> usize;
    /// The line of `queue`, first first.
    fn queue_line(&self, queue: &str) -> Vec<ivr_queues::Waiter>;
    /// Every agent's state.
    fn agent_states(&self) -> Vec<(String, AgentState)>;
    /// The legs whose media sockets are open.
    fn open_media(&self) -> Vec<LegHandle>;
    /// The queue events logged, in order.
    fn queue_events(&self) -> Vec<QueueEvent>;
}

impl QueueNet for Net {
    fn connect(&mut self, caller: &mut Caller) -> CallHandle {
        Net::connect(self, caller)
    }
    fn press(&mut self, caller: &mut Caller, call: CallHandle, digit: Digit) {
        Net::press(self, caller, call, digit);
    }
    fn advance(&mut self, d: Duration) {
        Net::advance(self, d);
    }
    fn send_rtp(&mut self, leg: LegHandle, from: SocketAddr, data: &[u8]) {
        Net::send_rtp(self, leg, from, data);
    }
    fn call_count(&self) -> usize {
        self.engine.call_count()
    }
    fn waiting(&self, queue: &str) -> usize {
        self.engine.queue_waiting(queue)
    }
    fn queue_line(&self, queue: &str) -> Vec<ivr_queues::Waiter> {
        self.engine.queue_line(queue)
    }
    fn agent_states(&self) -> Vec<(String, AgentState)> {
        self.engine.agent_states()
    }
    fn open_media(&self) -> Vec<LegHandle> {
        self.media.keys().copied().collect()
    }
    fn queue_events(&self) -> Vec<QueueEvent> {
        queue_events(self)
    }
}

impl QueueNet for ShardedNet {
    fn connect(&mut self, caller: &mut Caller) -> CallHandle {
        connect_on_shard(self, caller).0
    }
    fn press(&mut self, caller: &mut Caller, call: CallHandle, digit: Digit) {
        for p in caller.key_packets(digit, 101) {
            self.send_rtp(call.leg(0), caller.media, &p);
            self.advance(Duration::from_millis(20));
        }
    }
    fn advance(&mut self, d: Duration) {
        ShardedNet::advance(self, d);
    }
    fn send_rtp(&mut self, leg: LegHandle, from: SocketAddr, data: &[u8]) {
        ShardedNet::send_rtp(self, leg, from, data);
    }
    fn call_count(&self) -> usize {
        ShardedNet::call_count(self)
    }
    fn waiting(&self, queue: &str) -> usize {
        self.hub.waiting(queue)
    }
    fn queue_line(&self, queue: &str) -> Vec<ivr_queues::Waiter> {
        self.hub.queue_line(queue)
    }
    fn agent_states(&self) -> Vec<(String, AgentState)> {
        self.hub.agent_states()
    }
    fn open_media(&self) -> Vec<LegHandle> {
        self.engines
            .iter()
            .flat_map(|shard| shard.media.keys().copied())
            .collect()
    }
    fn queue_events(&self) -> Vec<QueueEvent> {
        self.hub_events
            .iter()
            .filter_map(|e| match e {
                Event::Queue { event, .. } => Some(event.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Connect `caller` (answered at once) to the shards: 200, then ACK. Returns the call and
/// its shard, where it must have started: the one its Call-ID hashes to.
pub fn connect_on_shard(net: &mut ShardedNet, caller: &mut Caller) -> (CallHandle, u16) {
    let invite = caller.invite(true);
    net.send_sip(caller.transport, caller.addr, &invite);
    let msgs = net.take_sip(caller.addr);
    let ok = response(&msgs, 200)
        .unwrap_or_else(|| panic!("200 OK: {msgs:?}"))
        .clone();
    caller.on_response(&ok);
    let ack = caller.ack(None);
    net.send_sip(caller.transport, caller.addr, &ack);
    let call_id = ok.call_id().expect("a Call-ID").to_string();
    let shard = net.shard_of_call_id(&call_id);
    let call = net
        .calls_on(shard)
        .into_iter()
        .find(|(_, id)| *id == call_id)
        .map(|(c, _)| c)
        .expect("the call started on its Call-ID's shard");
    (call, shard)
}

/// Connect `caller`, press 1 (join `sales`) and let half a second pass: it waits in line.
pub fn join_in_line(net: &mut impl QueueNet, caller: &mut Caller) -> CallHandle {
    let call = net.connect(caller);
    net.advance(Duration::from_millis(500));
    net.press(caller, call, Digit::D1);
    net.advance(Duration::from_millis(500));
    call
}

/// One thing a caller or an agent's phone does, for the crossings property ([`crossings`]).
#[derive(Debug, Clone)]
pub enum Act {
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

/// Any [`Act`], agents' answers most often.
pub fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        2 => Just(Act::Call),
        1 => any::<u8>().prop_map(Act::HangUp),
        4 => (any::<u8>(), prop::sample::select(vec![180u16, 200, 486, 487, 603]))
            .prop_map(|(i, c)| Act::Respond(i, c)),
        1 => any::<u8>().prop_map(Act::AgentBye),
        2 => (1u16..12_000).prop_map(Act::Wait),
    ]
}

/// The INVITEs the phones got: (phone, request, final answer sent, answered 2xx).
pub type Invites = Vec<(usize, Request, bool, bool)>;

/// Take what the phones were sent: INVITEs are kept, CANCEL and BYE answered 200 (a
/// CANCEL's INVITE then 487).
pub fn collect(net: &mut impl SipNet, phones: &[Agent], invites: &mut Invites) {
    for (p, phone) in phones.iter().enumerate() {
        for m in net.take_sip(phone.addr) {
            if let Message::Request(r) = m {
                match r.method.as_str() {
                    "INVITE" => invites.push((p, r, false, false)),
                    "CANCEL" => {
                        phone.send(net, &phone.respond(&r, 200, None));
                        if let Some(i) = invites
                            .iter_mut()
                            .find(|i| i.1.call_id().unwrap() == r.call_id().unwrap() && !i.2)
                        {
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
}

/// The crossings property's menus: `sales` worked by the static agents ann
/// (127.0.0.1:7400) and ben (127.0.0.1:7500), ringing all or round robin.
pub fn crossings_menus(ring_all: bool) -> Arc<ivr_menus::Menus> {
    let agents = format!(
        "{}{}",
        fixed("ann", "127.0.0.1:7400"),
        fixed("ben", "127.0.0.1:7500")
    );
    let strategy = if ring_all { "ring_all" } else { "round_robin" };
    menus(strategy, &agents)
}

/// The crossings property, on `net` serving [`crossings_menus`]: whatever callers and the
/// agents' phones do (`acts`) and whenever, the engine never panics, and once every caller
/// has hung up and time has passed, no call is left, nobody waits, no agent is left
/// ringing, on a call or in wrap-up, and no media socket is left open.
pub fn crossings(net: &mut impl QueueNet, acts: Vec<Act>) -> Result<(), TestCaseError> {
    let phones = [Agent::new("ann", 7400), Agent::new("ben", 7500)];
    let mut callers: Vec<(Caller, CallHandle)> = Vec::new();
    let mut invites: Invites = Vec::new();
    for (n, a) in acts.into_iter().enumerate() {
        match a {
            Act::Call => {
                let port = 8000 + 2 * n as u16;
                let mut c = Caller::new(&format!("127.0.0.1:{port}"), &format!("prop-{n}"));
                let call = net.connect(&mut c);
                net.advance(Duration::from_millis(500));
                net.press(&mut c, call, Digit::D1);
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
                    phone.send(net, &phone.respond(&r, code, body));
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
                    phone.send(net, &phone.bye(&invites[k].1));
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
        collect(net, &phones, &mut invites);
    }
    // Every caller hangs up; time passes (transactions end, wrap-up is over).
    for (mut c, _) in callers.drain(..) {
        let bye = c.in_dialog("BYE", "", "");
        net.send_sip(Transport::Udp, c.addr, &bye);
        collect(net, &phones, &mut invites);
    }
    for _ in 0..8 {
        net.advance(Duration::from_secs(10));
        collect(net, &phones, &mut invites);
    }
    prop_assert_eq!(net.call_count(), 0);
    prop_assert_eq!(net.waiting("sales"), 0);
    for (agent, s) in net.agent_states() {
        prop_assert!(
            matches!(s, AgentState::Available | AgentState::Paused { .. }),
            "{} is left {:?}",
            agent,
            s
        );
    }
    let open = net.open_media();
    prop_assert!(open.is_empty(), "sockets left open: {:?}", open);
    Ok(())
}

/// The callback order property, on `net` serving [`callback_menus`] allowing `"0"` with
/// the desk (no media timeout: nobody sends audio while the line forms). Callers arrive
/// (`arrivals`: whether each asks for a callback, typing a number, and the seconds before
/// the next) while the only agent is busy; those who ask for a callback hang up. Once the
/// agent is free, everyone is served in arrival order: a callback keeps its caller's place
/// (the agent then calls the number through the trunk), and the line ends empty.
pub fn callback_order(
    net: &mut impl QueueNet,
    arrivals: &[(bool, u64)],
) -> Result<(), TestCaseError> {
    let desk = Agent::new("desk", 7300);
    let trunk = Agent::new("trunk", 7400);
    let mut busy = Caller::new("127.0.0.1:7050", "busy");
    join_in_line(net, &mut busy);
    let first = desk.take_invite(net);
    desk.answer(net, &first, Codec::Pcmu);
    let mut arrived = Vec::new();
    for (i, (callback, pause)) in arrivals.iter().enumerate() {
        let mut c = Caller::new(&format!("127.0.0.1:{}", 7600 + i * 10), &format!("r{i}"));
        let call = join_in_line(net, &mut c);
        if *callback {
            net.press(&mut c, call, Digit::D3);
            let number = format!("049000000{i}");
            for d in number
                .chars()
                .filter_map(Digit::from_char)
                .chain([Digit::Pound])
            {
                net.press(&mut c, call, d);
            }
            net.advance(Duration::from_secs(1));
            net.press(&mut c, call, Digit::D1);
            net.advance(Duration::from_secs(5));
            let msgs = net.take_sip(c.addr);
            let bye = request(&msgs, "BYE")
                .expect("hung up after the request")
                .clone();
            net.send_sip(Transport::Udp, c.addr, &c.ok_to(&bye));
        }
        arrived.push(call);
        net.advance(Duration::from_secs(*pause));
    }
    // The busy caller leaves (the desk gets BYE): the desk serves the line, one call after
    // another.
    let bye = busy.in_dialog("BYE", "", "");
    net.send_sip(Transport::Udp, busy.addr, &bye);
    net.advance(Duration::from_millis(200));
    let msgs = net.take_sip(desk.addr);
    let bye = request(&msgs, "BYE").expect("BYE");
    desk.send(net, &desk.respond(bye, 200, None));
    let mut invite = request(&msgs, "INVITE")
        .unwrap_or_else(|| panic!("the desk is offered the next waiter: {msgs:?}"))
        .clone();
    let mut served = Vec::new();
    for _ in 0..arrivals.len() {
        // Whom the center offered the desk to, as the caller's call.
        let events = net.queue_events();
        let offered = events
            .iter()
            .rev()
            .find_map(|e| match e {
                QueueEvent::Offer { waiter, .. } => Some(*waiter),
                _ => None,
            })
            .expect("an offer");
        let who = match offered {
            ivr_queues::Waiter::Caller(c) => c,
            ivr_queues::Waiter::Callback(id) => events
                .iter()
                .find_map(|e| match e {
                    QueueEvent::CallbackRequested { callback, call, .. } if *callback == id => {
                        Some(*call)
                    }
                    _ => None,
                })
                .expect("its request"),
        };
        served.push(CallHandle(who.0));
        desk.answer(net, &invite, Codec::Pcmu);
        if matches!(offered, ivr_queues::Waiter::Callback(_)) {
            net.advance(Duration::from_millis(100));
            let dial = trunk.take_invite(net);
            trunk.answer(net, &dial, Codec::Pcmu);
        }
        net.advance(Duration::from_secs(2));
        // A branch of its own per BYE: the same one twice within Timer J would be taken
        // for a retransmission (RFC 3261 §17.2.3).
        let bye = String::from_utf8(desk.bye(&invite)).expect("text").replace(
            "z9hG4bK-desk-bye",
            &format!("z9hG4bK-desk-{}-bye", served.len()),
        );
        desk.send(net, bye.as_bytes());
        net.advance(Duration::from_millis(200));
        net.take_sip(trunk.addr);
        let msgs = net.take_sip(desk.addr);
        for m in &msgs {
            if let Message::Request(r) = m
                && r.method.as_str() == "BYE"
            {
                desk.send(net, &desk.respond(r, 200, None));
            }
        }
        match request(&msgs, "INVITE") {
            Some(next) => invite = next.clone(),
            None => break,
        }
    }
    prop_assert_eq!(served, arrived);
    prop_assert!(net.queue_line("sales").is_empty());
    Ok(())
}
