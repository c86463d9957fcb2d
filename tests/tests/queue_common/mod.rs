//! Helpers shared by the queue tests in virtual time (`queue_calls.rs`, `queue_whisper.rs`):
//! menus with a `sales` queue, scripted agents that register or answer, and readers of what
//! the engine sent and the center logged.
#![allow(dead_code)]

use ivr_audio::{Codec, Digit};
use ivr_engine::{CallHandle, Event, LegHandle};
use ivr_queues::{AgentState, QueueEvent};
use ivr_sip::Transport;
use ivr_sip::digest::{Algorithm, Challenge, Credentials, answer, ha1};
use ivr_sip::header::HeaderName;
use ivr_sip::message::{CoreHeaders, Request, Response, StatusCode};
use ivr_tests::caller::{Caller, Net, SipNet, request, response};
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
