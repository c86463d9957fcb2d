//! Whole calls in virtual time: a [`Net`] that carries messages between the engine and
//! scripted callers with no sockets, and a [`Caller`] built on `ivr-sip` that dials, acks,
//! presses keys and hangs up. Time advances only when a test says so, jumping from one
//! engine deadline to the next, so a 40-second call runs in milliseconds.

use ivr_audio::Digit;
use ivr_audio::rfc4733::EventPayload;
use ivr_engine::media::RtpBuf;
use ivr_engine::{CallHandle, Engine, EngineConfig, Event, Input, LegHandle, Output};
use ivr_menus::Menus;
use ivr_sip::Transport;
use ivr_sip::message::{CoreHeaders, Message, Request, Response};
use ivr_sip::parse::{Framing, parse_message};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The engine's SIP address inside the virtual network.
pub const ENGINE_SIP: &str = "127.0.0.1:5060";

/// A packet the engine sent.
#[derive(Debug, Clone)]
pub struct Sent {
    /// When (virtual time).
    pub at: Instant,
    /// To where.
    pub to: SocketAddr,
    /// The bytes.
    pub data: Vec<u8>,
}

/// The virtual network around one engine.
pub struct Net {
    /// The engine under test.
    pub engine: Engine,
    /// The current virtual time.
    pub now: Instant,
    /// SIP messages the engine sent, not yet taken.
    pub sip: Vec<Sent>,
    /// RTP packets the engine sent, by leg.
    pub rtp: HashMap<LegHandle, Vec<Sent>>,
    /// Every event, in order.
    pub events: Vec<Event>,
    /// Open media sockets: leg -> local address.
    pub media: HashMap<LegHandle, SocketAddr>,
    next_port: u16,
    /// When false, OpenMedia is answered with MediaFailed.
    pub ports_available: bool,
    /// Voicemail commands the engine gave, in order (the test plays the recorder).
    pub voicemail: Vec<ivr_engine::VoicemailCmd>,
    /// What the engine asked the store about queued callbacks, in order.
    pub queue_callbacks: Vec<ivr_engine::QueueCallbackCmd>,
    /// The test's DNS: host name -> targets, answered at once to [`Output::Locate`].
    pub dns: HashMap<String, Vec<ivr_sip::transaction::Peer>>,
    /// The URIs the engine asked to locate, in order.
    pub located: Vec<String>,
    /// What a shard's engine told its hub, not yet carried ([`crate::sharded`]).
    pub hub_out: Vec<ivr_engine::hub_msg::HubMsg>,
    /// SIP a shard's engine handed over to another shard, not yet carried.
    pub handoffs: Vec<Handoff>,
}

/// A SIP message one shard handed to another ([`Output::Handoff`]).
#[derive(Debug, Clone)]
pub struct Handoff {
    /// The shard it belongs to.
    pub shard: u16,
    /// How it came.
    pub transport: Transport,
    /// From where.
    pub from: SocketAddr,
    /// The bytes.
    pub data: Vec<u8>,
}

/// A virtual network that carries SIP to engines and back: one engine ([`Net`]) or several
/// shards ([`crate::sharded::ShardedNet`]), so scripted phones work with either.
pub trait SipNet {
    /// Deliver a SIP message from `from`.
    fn send_sip(&mut self, transport: Transport, from: SocketAddr, data: &[u8]);
    /// Take every SIP message sent to `to`, parsed.
    fn take_sip(&mut self, to: SocketAddr) -> Vec<Message>;
}

impl SipNet for Net {
    fn send_sip(&mut self, transport: Transport, from: SocketAddr, data: &[u8]) {
        Net::send_sip(self, transport, from, data);
    }
    fn take_sip(&mut self, to: SocketAddr) -> Vec<Message> {
        Net::take_sip(self, to)
    }
}

impl Net {
    /// An engine with default settings serving `menus`.
    pub fn new(menus: Arc<Menus>) -> Net {
        Net::with_config(menus, |_| {})
    }

    /// An engine whose config `tweak` may change.
    pub fn with_config(menus: Arc<Menus>, tweak: impl FnOnce(&mut EngineConfig)) -> Net {
        let mut config = EngineConfig::new(ENGINE_SIP.parse().expect("address"));
        tweak(&mut config);
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        Net::around(Engine::new(config, menus), now)
    }

    /// A shard's engine ([`Engine::new_shard`]) at virtual time `now`, its media ports
    /// apart from the other shards'.
    pub fn shard(menus: Arc<Menus>, config: EngineConfig, now: Instant) -> Net {
        let index = config.shard.index;
        let mut net = Net::around(Engine::new_shard(config, menus), now);
        net.next_port = 30_000 + 2_000 * index;
        net
    }

    fn around(engine: Engine, now: Instant) -> Net {
        Net {
            engine,
            now,
            sip: Vec::new(),
            rtp: HashMap::new(),
            events: Vec::new(),
            media: HashMap::new(),
            next_port: 30_000,
            ports_available: true,
            voicemail: Vec::new(),
            queue_callbacks: Vec::new(),
            dns: HashMap::new(),
            located: Vec::new(),
            hub_out: Vec::new(),
            handoffs: Vec::new(),
        }
    }

    /// Deliver a SIP message to the engine.
    pub fn send_sip(&mut self, transport: Transport, from: SocketAddr, data: &[u8]) {
        self.engine.handle_input(
            self.now,
            Input::Sip {
                transport,
                from,
                data,
            },
        );
        self.pump();
    }

    /// Deliver an RTP datagram to a leg's socket.
    pub fn send_rtp(&mut self, leg: LegHandle, from: SocketAddr, data: &[u8]) {
        self.engine
            .handle_input(self.now, Input::Rtp { leg, from, data });
        self.pump();
    }

    /// The RTP packets the engine sent on the leg that called in to `call`.
    pub fn rtp_of(&self, call: CallHandle) -> &[Sent] {
        self.rtp.get(&call.leg(0)).map_or(&[], Vec::as_slice)
    }

    /// Perform the engine's outputs; returns its next deadline.
    pub fn pump(&mut self) -> Option<Instant> {
        loop {
            match self.engine.poll_output() {
                Output::Timeout(t) => return t,
                Output::Sip { to, data, .. } => self.sip.push(Sent {
                    at: self.now,
                    to,
                    data,
                }),
                Output::Rtp {
                    leg, to, packet, ..
                } => self.record_rtp(leg, to, &packet),
                Output::OpenMedia { leg } => {
                    let input = if self.ports_available {
                        let local: SocketAddr = SocketAddr::from(([127, 0, 0, 1], self.next_port));
                        self.next_port += 2;
                        self.media.insert(leg, local);
                        Input::MediaOpened { leg, local }
                    } else {
                        Input::MediaFailed { leg }
                    };
                    self.engine.handle_input(self.now, input);
                }
                Output::CloseMedia { leg } => {
                    self.media.remove(&leg);
                }
                Output::Locate { leg, uri } => {
                    self.located.push(uri.to_string());
                    let host = uri.as_sip().map(|s| s.host.to_ascii_lowercase());
                    let targets = host
                        .and_then(|h| self.dns.get(&h).cloned())
                        .unwrap_or_default();
                    self.engine
                        .handle_input(self.now, Input::Located { leg, targets });
                }
                Output::Event(e) => self.events.push(e),
                Output::Voicemail(cmd) => self.voicemail.push(cmd),
                Output::QueueCallback(cmd) => self.queue_callbacks.push(cmd),
                // Only an engine made with `Engine::new_shard`: `sharded.rs` carries them.
                Output::Hub(msg) => self.hub_out.push(msg),
                Output::Handoff {
                    shard,
                    transport,
                    from,
                    data,
                } => self.handoffs.push(Handoff {
                    shard,
                    transport,
                    from,
                    data,
                }),
            }
        }
    }

    fn record_rtp(&mut self, leg: LegHandle, to: SocketAddr, packet: &RtpBuf) {
        self.rtp.entry(leg).or_default().push(Sent {
            at: self.now,
            to,
            data: packet.as_slice().to_vec(),
        });
    }

    /// Let `d` of virtual time pass, waking the engine at each of its deadlines.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = self.pump();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.engine.handle_input(self.now, Input::Timeout);
                }
                _ => break,
            }
        }
        self.now = end;
        self.engine.handle_input(self.now, Input::Timeout);
        self.pump();
    }

    /// Take every SIP message the engine sent to `to`, parsed.
    pub fn take_sip(&mut self, to: SocketAddr) -> Vec<Message> {
        let (mine, rest): (Vec<Sent>, Vec<Sent>) = self.sip.drain(..).partition(|s| s.to == to);
        self.sip = rest;
        mine.into_iter()
            .map(|s| {
                parse_message(&s.data, Framing::Datagram).expect("engine sent a valid message")
            })
            .collect()
    }

    /// Dial as `caller`, get 100 and 200, ACK. Returns the call's handle.
    pub fn connect(&mut self, caller: &mut Caller) -> CallHandle {
        let invite = caller.invite(true);
        self.send_sip(caller.transport, caller.addr, &invite);
        let msgs = self.take_sip(caller.addr);
        assert!(response(&msgs, 100).is_some(), "100 Trying first: {msgs:?}");
        let ok = response(&msgs, 200).expect("200 OK").clone();
        assert_eq!(
            ok.headers.get(&ivr_sip::HeaderName::ContentType),
            Some("application/sdp")
        );
        caller.on_response(&ok);
        let ack = caller.ack(None);
        self.send_sip(caller.transport, caller.addr, &ack);
        self.last_call().expect("a call")
    }

    /// `caller` presses a key (RFC 4733, 20 ms between packets).
    pub fn press(&mut self, caller: &mut Caller, call: CallHandle, digit: Digit) {
        for p in caller.key_packets(digit, 101) {
            self.send_rtp(call.leg(0), caller.media, &p);
            self.advance(Duration::from_millis(20));
        }
    }

    /// The handle of the most recent call.
    pub fn last_call(&self) -> Option<CallHandle> {
        self.events.iter().rev().find_map(|e| match e {
            Event::CallStarted { call, .. } => Some(*call),
            _ => None,
        })
    }

    /// Menus entered so far, by name.
    pub fn menus_entered(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::MenuEntered { menu, .. } => Some(menu.clone()),
                _ => None,
            })
            .collect()
    }

    /// The call records the engine made so far ([`Event::CallRecord`]), in order.
    pub fn call_records(&self) -> Vec<ivr_voicemail::calls::CallRecord> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::CallRecord(r) => Some((**r).clone()),
                _ => None,
            })
            .collect()
    }

    /// The end reason of `call`, if it ended.
    pub fn ended(&self, call: CallHandle) -> Option<ivr_engine::EndReason> {
        self.events.iter().find_map(|e| match e {
            Event::CallEnded {
                call: c, reason, ..
            } if *c == call => Some(*reason),
            _ => None,
        })
    }
}

/// A test's menu file around what it is about: entry `main`; the demo's `main_en`,
/// `goodbye_en` and `sales_en` prompts, then `prompts` (more lines under `prompts:`); then
/// `sections` (top-level YAML: destinations, queues, agents...); then menu `main` (prompt
/// `main_en`, timeout 6, 5 retries) whose `options:` are the lines `options`, and `rest`
/// (more lines under `menus:`: more of `main`, or other menus). Each part ends its lines
/// with a newline. Compile it with [`demo_variant`].
pub fn menu_file(prompts: &str, sections: &str, options: &str, rest: &str) -> String {
    format!(
        "
entry: main
prompts:
  main_en: prompts/main_en.wav
  goodbye_en: prompts/goodbye_en.wav
  sales_en: prompts/sales_en.wav
{prompts}{sections}menus:
  main:
    prompt: main_en
    timeout: 6
    retries: 5
    options:
{options}{rest}"
    )
}

/// The demo config with edits, compiled against the demo's prompt files.
pub fn demo_variant(yaml: &str) -> Arc<Menus> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo");
    Arc::new(
        ivr_menus::compile_full(
            yaml,
            &mut |f| std::fs::read(dir.join(f)).map_err(|e| e.to_string()),
            &mut |_, _| Err("no text-to-speech here".into()),
            &mut ivr_server::builtin::prompt,
        )
        .expect("the demo variant compiles"),
    )
}

/// A scripted caller: one UA with one call at a time.
pub struct Caller {
    /// Its SIP address.
    pub addr: SocketAddr,
    /// Its RTP address (offered in SDP).
    pub media: SocketAddr,
    /// Over what it talks.
    pub transport: Transport,
    call_id: String,
    from_tag: String,
    /// The engine's tag, once answered.
    pub to_tag: Option<String>,
    cseq: u32,
    branch: u32,
    invite_branch: String,
    rtp_seq: u16,
    rtp_ts: u32,
}

impl Caller {
    /// A caller at `addr` (RTP on `addr` port + 1000).
    pub fn new(addr: &str, call_id: &str) -> Caller {
        let addr: SocketAddr = addr.parse().expect("address");
        Caller {
            media: SocketAddr::new(addr.ip(), addr.port() + 1000),
            addr,
            transport: Transport::Udp,
            call_id: call_id.to_string(),
            from_tag: format!("tag-{call_id}"),
            to_tag: None,
            cseq: 0,
            branch: 0,
            invite_branch: String::new(),
            rtp_seq: 1,
            rtp_ts: 1000,
        }
    }

    fn next_branch(&mut self) -> String {
        self.branch += 1;
        format!("z9hG4bK-{}-{}", self.call_id, self.branch)
    }

    /// An offer of PCMU and PCMA with telephone-event 101.
    pub fn offer(&self) -> String {
        format!(
            "v=0\r\no=caller 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\n\
             a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
            ip = self.media.ip(),
            port = self.media.port()
        )
    }

    /// [`Caller::offer`] without `telephone-event`: a phone whose keys can only be heard
    /// as tones in its audio.
    pub fn offer_without_telephone_event(&self) -> String {
        self.offer()
            .replace("RTP/AVP 0 8 101", "RTP/AVP 0 8")
            .replace("a=rtpmap:101 telephone-event/8000\r\n", "")
    }

    fn request(
        &mut self,
        method: &str,
        cseq: u32,
        branch: &str,
        extra: &str,
        body: &str,
    ) -> String {
        let to_tag = self
            .to_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        format!(
            "{method} sip:service@{engine} SIP/2.0\r\nVia: SIP/2.0/{tr} {me};branch={branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: \"Caller\" <sip:+15551234@{me}>;tag={ft}\r\nTo: <sip:service@{engine}>{to_tag}\r\n\
             Call-ID: {cid}\r\nCSeq: {cseq} {method}\r\nContact: <sip:caller@{me}>\r\n{extra}Content-Length: {len}\r\n\r\n{body}",
            engine = ENGINE_SIP,
            tr = self.transport.via_token(),
            me = self.addr,
            ft = self.from_tag,
            cid = self.call_id,
            len = body.len()
        )
    }

    /// An INVITE, with our offer or (late offer) without a body.
    pub fn invite(&mut self, with_offer: bool) -> Vec<u8> {
        self.cseq += 1;
        self.invite_branch = self.next_branch();
        let branch = self.invite_branch.clone();
        let (extra, body) = if with_offer {
            ("Content-Type: application/sdp\r\n", self.offer())
        } else {
            ("", String::new())
        };
        let cseq = self.cseq;
        self.request("INVITE", cseq, &branch, extra, &body)
            .into_bytes()
    }

    /// An INVITE with an arbitrary SDP body.
    pub fn invite_with_sdp(&mut self, sdp: &str) -> Vec<u8> {
        self.cseq += 1;
        self.invite_branch = self.next_branch();
        let branch = self.invite_branch.clone();
        let cseq = self.cseq;
        self.request(
            "INVITE",
            cseq,
            &branch,
            "Content-Type: application/sdp\r\n",
            sdp,
        )
        .into_bytes()
    }

    /// A request outside any dialog with arbitrary method and extra header lines.
    pub fn raw(&mut self, method: &str, extra: &str, body: &str) -> Vec<u8> {
        self.cseq += 1;
        let branch = self.next_branch();
        let cseq = self.cseq;
        self.request(method, cseq, &branch, extra, body)
            .into_bytes()
    }

    /// Read a response: remember the engine's tag from a 2xx (or any tagged final).
    pub fn on_response(&mut self, r: &Response) {
        if r.status.is_success()
            && let Ok(to) = r.party_to()
        {
            self.to_tag = to.tag().map(str::to_string);
        }
    }

    /// The ACK for a 2xx (a new transaction, RFC 3261 §13.2.2.4), with an optional answer body.
    pub fn ack(&mut self, answer: Option<&str>) -> Vec<u8> {
        let cseq = self.cseq;
        self.ack_for(cseq, answer)
    }

    /// The ACK for the 2xx to the INVITE numbered `cseq` (other requests, a PRACK, may have
    /// come between).
    pub fn ack_for(&mut self, cseq: u32, answer: Option<&str>) -> Vec<u8> {
        let branch = self.next_branch();
        let (extra, body) = match answer {
            Some(b) => ("Content-Type: application/sdp\r\n", b.to_string()),
            None => ("", String::new()),
        };
        self.request("ACK", cseq, &branch, extra, &body)
            .into_bytes()
    }

    /// The CANCEL for the pending INVITE (same branch, RFC 3261 §9.1).
    pub fn cancel(&mut self) -> Vec<u8> {
        if self.invite_branch.is_empty() {
            self.invite_branch = self.next_branch();
        }
        let branch = self.invite_branch.clone();
        let cseq = self.cseq;
        self.request("CANCEL", cseq, &branch, "", "").into_bytes()
    }

    /// A request inside the dialog (BYE, INFO, re-INVITE...).
    pub fn in_dialog(&mut self, method: &str, extra: &str, body: &str) -> Vec<u8> {
        self.cseq += 1;
        let branch = self.next_branch();
        if method == "INVITE" {
            self.invite_branch = branch.clone();
        }
        let cseq = self.cseq;
        self.request(method, cseq, &branch, extra, body)
            .into_bytes()
    }

    /// The 200 OK to a request the engine sent us (its BYE).
    pub fn ok_to(&self, req: &Request) -> Vec<u8> {
        Response::to_request(req, ivr_sip::StatusCode::OK).to_bytes()
    }

    /// The RTP packets of one key press as a phone sends them (RFC 4733 §2.5): a start with
    /// the marker bit, two updates, and three end packets, all with the event's timestamp.
    pub fn key_packets(&mut self, digit: Digit, pt: u8) -> Vec<Vec<u8>> {
        let ts = self.rtp_ts;
        self.rtp_ts = self.rtp_ts.wrapping_add(1600);
        let mut out = Vec::new();
        for (i, (end, duration)) in [
            (false, 160),
            (false, 320),
            (false, 480),
            (true, 640),
            (true, 640),
            (true, 640),
        ]
        .into_iter()
        .enumerate()
        {
            let mut p = vec![0x80, pt | if i == 0 { 0x80 } else { 0 }];
            p.extend_from_slice(&self.rtp_seq.to_be_bytes());
            p.extend_from_slice(&ts.to_be_bytes());
            p.extend_from_slice(&0xCA11E4u32.to_be_bytes());
            p.extend_from_slice(
                &EventPayload {
                    event: digit.event_code(),
                    end,
                    volume: 10,
                    duration,
                }
                .encode(),
            );
            self.rtp_seq = self.rtp_seq.wrapping_add(1);
            out.push(p);
        }
        out
    }

    /// PCMU packets of 20 ms carrying `pcm` (8 kHz), e.g. a DTMF tone sent in-band.
    pub fn audio_packets(&mut self, pcm: &[i16]) -> Vec<Vec<u8>> {
        pcm.chunks(160)
            .map(|chunk| {
                let mut p = vec![0x80, 0];
                p.extend_from_slice(&self.rtp_seq.to_be_bytes());
                p.extend_from_slice(&self.rtp_ts.to_be_bytes());
                p.extend_from_slice(&0xCA11E4u32.to_be_bytes());
                p.extend(chunk.iter().map(|s| ivr_audio::Codec::Pcmu.encode(*s)));
                self.rtp_seq = self.rtp_seq.wrapping_add(1);
                self.rtp_ts = self.rtp_ts.wrapping_add(chunk.len() as u32);
                p
            })
            .collect()
    }

    /// One 20 ms G.711 audio packet of silence (keeps the engine's media timeout away).
    pub fn audio_packet(&mut self) -> Vec<u8> {
        let mut p = vec![0x80, 0];
        p.extend_from_slice(&self.rtp_seq.to_be_bytes());
        p.extend_from_slice(&self.rtp_ts.to_be_bytes());
        p.extend_from_slice(&0xCA11E4u32.to_be_bytes());
        p.extend_from_slice(&[0xFF; 160]);
        self.rtp_seq = self.rtp_seq.wrapping_add(1);
        self.rtp_ts = self.rtp_ts.wrapping_add(160);
        p
    }
}

/// The first response with this status among `msgs`.
pub fn response(msgs: &[Message], status: u16) -> Option<&Response> {
    msgs.iter().find_map(|m| match m {
        Message::Response(r) if r.status.code() == status => Some(r),
        _ => None,
    })
}

/// The first request with this method among `msgs`.
pub fn request<'a>(msgs: &'a [Message], method: &str) -> Option<&'a Request> {
    msgs.iter().find_map(|m| match m {
        Message::Request(r) if r.method.as_str() == method => Some(r),
        _ => None,
    })
}
