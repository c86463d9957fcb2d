//! The engine: every call, the SIP transaction layer, and the glue between them.

use crate::call::{Call, CallHandle, Phase};
use crate::media::{MediaSession, Received, RtpBuf};
use crate::rng::Rng;
use crate::sdp::{self, Direction, LocalSession, Negotiated, RemoteAudio, SdpError};
use ivr_audio::Digit;
use ivr_menus::{MenuOutput, MenuRun, Menus, Route};
use ivr_sip::Transport;
use ivr_sip::dialog::{Dialog, DialogError};
use ivr_sip::header::{HeaderName, NameAddr};
use ivr_sip::message::{CoreHeaders, Message, Method, Request, Response, StatusCode};
use ivr_sip::parse::{Framing, error_response, parse_message};
use ivr_sip::transaction::{ClientKey, Peer, ServerKey, TimerConfig, TransactionLayer, TxEvent};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The methods the engine answers (RFC 3261 §20.5 Allow).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO";

/// Settings the engine needs from its owner.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The SIP address we listen on (UDP and TCP), used in Via and Contact.
    pub sip_addr: SocketAddr,
    /// The address put in SDP `c=` lines.
    pub media_ip: IpAddr,
    /// New INVITEs beyond this many calls get 503.
    pub max_calls: usize,
    /// A call whose peer sends no RTP or RTCP for this long is ended with BYE.
    pub media_timeout: Duration,
    /// A call the peer holds (`sendonly`/`inactive`) with no RTP or RTCP for this long is
    /// ended with BYE: a phone that holds and never resumes does not keep a call forever.
    pub hold_timeout: Duration,
    /// RFC 3261 timer values.
    pub timers: TimerConfig,
    /// Server and User-Agent header value.
    pub user_agent: String,
    /// Seconds in Retry-After on 503.
    pub retry_after: u32,
    /// Seed for tags, branches and SSRCs.
    pub seed: u64,
    /// Ring this long (180 Ringing) before answering; zero answers at once.
    pub answer_delay: Duration,
}

impl EngineConfig {
    /// Defaults around a listen address.
    pub fn new(sip_addr: SocketAddr) -> Self {
        EngineConfig {
            sip_addr,
            media_ip: sip_addr.ip(),
            max_calls: 10_000,
            media_timeout: Duration::from_secs(30),
            hold_timeout: Duration::from_secs(30 * 60),
            timers: TimerConfig::default(),
            user_agent: concat!("ivr/", env!("CARGO_PKG_VERSION")).to_string(),
            retry_after: 5,
            seed: 0x5eed,
            answer_delay: Duration::ZERO,
        }
    }
}

/// Something that happened to the engine, handed in by the driver.
#[derive(Debug)]
pub enum Input<'a> {
    /// A UDP datagram, or one message cut from a TCP stream by [`ivr_sip::framing`].
    Sip {
        /// How it came.
        transport: Transport,
        /// From where (for TCP: the connection's remote address).
        from: SocketAddr,
        /// The bytes.
        data: &'a [u8],
    },
    /// A datagram on a call's RTP port.
    Rtp {
        /// The call.
        call: CallHandle,
        /// Its source.
        from: SocketAddr,
        /// The bytes.
        data: &'a [u8],
    },
    /// A datagram on a call's RTCP port (RTP port + 1).
    Rtcp {
        /// The call.
        call: CallHandle,
        /// The bytes.
        data: &'a [u8],
    },
    /// The RTP socket asked for by [`Output::OpenMedia`] is open at `local`.
    MediaOpened {
        /// The call.
        call: CallHandle,
        /// The socket's address.
        local: SocketAddr,
    },
    /// No RTP socket could be opened.
    MediaFailed {
        /// The call.
        call: CallHandle,
    },
    /// The deadline given by [`Output::Timeout`] (or any time) has come.
    Timeout,
    /// Stop taking calls and hang up every call.
    Shutdown,
    /// What the wall clock says now (schedules need it). Send it at start and now and then;
    /// the engine counts forward from the last one with the monotonic clock.
    WallClock(std::time::SystemTime),
    /// The outcome of voicemail work asked for by [`Output::Voicemail`].
    Voicemail(crate::voicemail::VoicemailReport),
}

/// What the driver must do.
#[derive(Debug)]
pub enum Output {
    /// Send a SIP message.
    Sip {
        /// Over what.
        transport: Transport,
        /// To where (for TCP: the connection).
        to: SocketAddr,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Send an RTP packet from the call's socket.
    Rtp {
        /// The call.
        call: CallHandle,
        /// To where.
        to: SocketAddr,
        /// The packet.
        packet: RtpBuf,
        /// When it was due; the driver measures its pacing lateness against this.
        due: Instant,
    },
    /// Voicemail work: write, finish or delete a recording, or store a callback request.
    Voicemail(crate::voicemail::VoicemailCmd),
    /// Open an RTP (and RTCP) socket for the call; answer with [`Input::MediaOpened`] or [`Input::MediaFailed`].
    OpenMedia {
        /// The call.
        call: CallHandle,
    },
    /// Close the call's media sockets.
    CloseMedia {
        /// The call.
        call: CallHandle,
    },
    /// Something to log or count.
    Event(Event),
    /// Nothing more now; call again with [`Input::Timeout`] at this time (or on any input).
    Timeout(Option<Instant>),
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The caller sent BYE.
    CallerHungUp,
    /// The caller cancelled before the answer.
    Cancelled,
    /// The menu hung up.
    MenuHangup,
    /// No RTP or RTCP for the media timeout.
    MediaTimeout,
    /// The caller held the call for longer than the hold timeout.
    HoldTimeout,
    /// The 2xx was never acknowledged.
    AckTimeout,
    /// The engine is shutting down.
    Shutdown,
    /// No RTP port could be opened.
    MediaUnavailable,
    /// The SDP in the ACK was unusable.
    BadAnswer,
    /// The menus sent the call to a service this engine does not run yet (see
    /// [`Event::LeftMenus`]).
    Unavailable,
}

/// Events for logs, metrics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An INVITE was accepted for processing.
    CallStarted {
        /// The call.
        call: CallHandle,
        /// Its Call-ID.
        call_id: String,
        /// The From URI.
        from: String,
        /// The Request-URI.
        to: String,
    },
    /// The 200 OK was sent.
    CallAnswered {
        /// The call.
        call: CallHandle,
    },
    /// The caller entered a menu.
    MenuEntered {
        /// The call.
        call: CallHandle,
        /// The menu name.
        menu: String,
    },
    /// A prompt started playing (its config name, in the caller's language).
    Playing {
        /// The call.
        call: CallHandle,
        /// The prompt's name in the config.
        prompt: String,
        /// The caller's language, if the config has languages.
        language: Option<String>,
    },
    /// A message started (`true`) or stopped being recorded.
    Recording {
        /// The call.
        call: CallHandle,
        /// Started or stopped.
        started: bool,
    },
    /// A callback request was handed to the store.
    CallbackRequest {
        /// The call.
        call: CallHandle,
        /// The request's id.
        id: String,
        /// The mailbox.
        mailbox: String,
        /// The number to call back, if any.
        number: Option<String>,
        /// The message's length.
        duration_ms: u64,
    },
    /// The menus handed the call to a mailbox, a queue or a transfer.
    LeftMenus {
        /// The call.
        call: CallHandle,
        /// Where to: `voicemail sales`, `queue support`, `transfer callcenter`.
        to: String,
    },
    /// A key was received (RFC 4733 or SIP INFO).
    Digit {
        /// The call.
        call: CallHandle,
        /// The key.
        digit: Digit,
    },
    /// The call is over.
    CallEnded {
        /// The call.
        call: CallHandle,
        /// Its Call-ID.
        call_id: String,
        /// Why.
        reason: EndReason,
        /// (RTP packets sent, received).
        packets: (u64, u64),
    },
    /// A request was refused with an error status.
    Rejected {
        /// Its method.
        method: String,
        /// The Call-ID, if readable.
        call_id: String,
        /// The status sent.
        status: u16,
        /// The reason phrase sent.
        reason: String,
    },
    /// A message could not be parsed (a request got a 400/505 if it could be addressed).
    BadMessage {
        /// Its source.
        from: SocketAddr,
        /// What was wrong.
        error: String,
    },
    /// A datagram on an RTP port was dropped.
    BadRtp {
        /// The call.
        call: CallHandle,
        /// What was wrong.
        error: String,
    },
    /// After [`Input::Shutdown`]: every call has ended.
    Drained,
}

/// The call-control engine.
pub struct Engine {
    config: EngineConfig,
    menus: Arc<Menus>,
    layer: TransactionLayer,
    pub(crate) rng: Rng,
    pub(crate) calls: HashMap<CallHandle, Call>,
    by_invite: HashMap<ServerKey, CallHandle>,
    by_dialog: HashMap<(String, String), CallHandle>,
    /// Each call's earliest deadline, lazily deleted: an entry counts only while it equals
    /// the call's `indexed` value. Push and pop reuse the heap's storage, so pacing RTP never
    /// allocates (a `BTreeSet` frees and reallocates nodes as entries come and go).
    deadlines: BinaryHeap<Reverse<(Instant, CallHandle)>>,
    /// Reused list of calls due in one wake-up (kept to avoid allocating per tick).
    due_scratch: Vec<CallHandle>,
    pub(crate) outputs: VecDeque<Output>,
    next_handle: u64,
    shutting_down: bool,
    drained: bool,
    /// The last [`Input::WallClock`]: (when it came, what it said).
    pub(crate) wall_anchor: Option<(Instant, std::time::SystemTime)>,
    /// The record beep, made once.
    pub(crate) beep: ivr_audio::Prompt,
    /// The next recording's number.
    pub(crate) next_recording: u64,
    /// The time of the input being handled (for work done where no time is passed down).
    last_now: Option<Instant>,
}

impl Engine {
    /// An engine serving `menus`.
    pub fn new(config: EngineConfig, menus: Arc<Menus>) -> Engine {
        Engine {
            layer: TransactionLayer::new(config.timers),
            rng: Rng::new(config.seed),
            config,
            menus,
            calls: HashMap::new(),
            by_invite: HashMap::new(),
            by_dialog: HashMap::new(),
            deadlines: BinaryHeap::new(),
            due_scratch: Vec::new(),
            outputs: VecDeque::new(),
            next_handle: 1,
            shutting_down: false,
            drained: false,
            wall_anchor: None,
            beep: ivr_audio::Prompt::from_samples("beep", &ivr_audio::tone::beep()),
            next_recording: 1,
            last_now: None,
        }
    }

    /// Serve new calls with `menus`; calls in progress keep the snapshot they started with.
    pub fn set_menus(&mut self, menus: Arc<Menus>) {
        self.menus = menus;
    }

    /// Number of calls in progress.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Feed one input.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        self.last_now = Some(now);
        match input {
            Input::Sip {
                transport,
                from,
                data,
            } => self.handle_sip(now, transport, from, data),
            Input::Rtp { call, from, data } => self.handle_rtp(now, call, from, data),
            Input::Rtcp { call, data } => {
                if let Some(m) = self.calls.get_mut(&call).and_then(|c| c.media.as_mut()) {
                    m.handle_rtcp(now, data);
                }
            }
            Input::MediaOpened { call, local } => self.media_opened(now, call, local),
            Input::MediaFailed { call } => self.media_failed(now, call),
            Input::Timeout => self.handle_timeout(now),
            Input::Shutdown => self.shutdown(now),
            Input::WallClock(wall) => self.wall_anchor = Some((now, wall)),
            Input::Voicemail(report) => self.voicemail_report(now, report),
        }
        self.drain_layer(now);
        self.check_drained();
    }

    /// The next output; [`Output::Timeout`] means "nothing more for now".
    #[must_use]
    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.outputs.pop_front() {
            return o;
        }
        let calls = self.deadlines.peek().map(|Reverse((at, _))| *at);
        let next = match (calls, self.layer.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Output::Timeout(next)
    }

    // ---- SIP in ----

    fn handle_sip(&mut self, now: Instant, transport: Transport, from: SocketAddr, data: &[u8]) {
        let framing = if transport.is_reliable() {
            Framing::Stream
        } else {
            Framing::Datagram
        };
        let peer = Peer {
            transport,
            addr: from,
        };
        match parse_message(data, framing) {
            Ok(msg) => self.layer.handle_message(now, msg, peer),
            Err(e) => {
                if let Some(mut resp) = error_response(&e) {
                    // RFC 3261 §8.2.6.2: a final response carries a To tag.
                    let tag = self.rng.token();
                    set_to_tag(&mut resp, &tag);
                    resp.headers
                        .push(HeaderName::Server, self.config.user_agent.clone());
                    self.layer.send_stateless(peer, Message::Response(resp));
                }
                self.event(Event::BadMessage {
                    from,
                    error: e.to_string(),
                });
            }
        }
    }

    fn drain_layer(&mut self, now: Instant) {
        loop {
            while let Some((peer, msg)) = self.layer.poll_transmit() {
                self.outputs.push_back(Output::Sip {
                    transport: peer.transport,
                    to: peer.addr,
                    data: msg.to_bytes(),
                });
            }
            let Some(ev) = self.layer.poll_event() else {
                break;
            };
            match ev {
                TxEvent::Request { key, request, peer } => self.on_request(now, key, request, peer),
                TxEvent::Response { key, response } => {
                    if !response.status.is_provisional() {
                        self.on_bye_done(&key);
                    }
                }
                TxEvent::ClientTimeout(key) => self.on_bye_done(&key),
                TxEvent::AckTimeout(key) => {
                    if let Some(h) = self.by_invite.get(&key).copied() {
                        self.end_call(now, h, EndReason::AckTimeout);
                    }
                }
                TxEvent::StrayResponse(_) => {}
            }
        }
    }

    fn on_request(&mut self, now: Instant, key: ServerKey, req: Request, peer: Peer) {
        if req.method == Method::Ack {
            self.on_ack(now, &req);
            return;
        }
        if !matches!(req.uri.scheme(), "sip" | "sips") {
            return self.reject(now, &key, &req, StatusCode::UNSUPPORTED_URI_SCHEME, None);
        }
        // RFC 3261 §8.2.2.3: every request but CANCEL and ACK is refused if it requires an
        // extension we lack (we support none).
        if req.method != Method::Cancel
            && let Some(tags) = unsupported_required(&req)
        {
            let mut r = self.reply(&req, StatusCode::BAD_EXTENSION, None);
            r.headers.push(HeaderName::Unsupported, tags);
            return self.respond_error(now, &key, &req, r);
        }
        let Ok(to) = req.party_to() else { return };
        if to.tag().is_some() {
            return self.in_dialog(now, key, req, to);
        }
        match req.method {
            Method::Cancel => self.on_cancel(now, &key, &req),
            Method::Options => {
                let mut r = self.reply(&req, StatusCode::OK, None);
                r.headers.push(HeaderName::Allow, ALLOW);
                r.headers.push(HeaderName::Accept, "application/sdp");
                self.layer.respond(now, &key, r);
            }
            Method::Invite => self.on_invite(now, key, req, peer),
            Method::Bye | Method::Info => {
                self.reject(now, &key, &req, StatusCode::CALL_DOES_NOT_EXIST, None)
            }
            Method::Other(_) => self.reject(now, &key, &req, StatusCode::NOT_IMPLEMENTED, None),
            _ => self.reject(now, &key, &req, StatusCode::METHOD_NOT_ALLOWED, None),
        }
    }

    fn on_invite(&mut self, now: Instant, key: ServerKey, req: Request, peer: Peer) {
        if self.shutting_down || self.calls.len() >= self.config.max_calls {
            let why = if self.shutting_down {
                "Shutting Down"
            } else {
                "At Capacity"
            };
            return self.reject(now, &key, &req, StatusCode::SERVICE_UNAVAILABLE, Some(why));
        }
        let offer = if req.body.is_empty() {
            None
        } else {
            let ctype = req
                .headers
                .get(&HeaderName::ContentType)
                .unwrap_or("")
                .to_ascii_lowercase();
            if !ctype.starts_with("application/sdp") {
                let mut r = self.reply(&req, StatusCode::UNSUPPORTED_MEDIA_TYPE, None);
                r.headers.push(HeaderName::Accept, "application/sdp");
                return self.respond_error(now, &key, &req, r);
            }
            match sdp::parse_remote(&req.body).and_then(|o| sdp::negotiate(&o).map(|_| o)) {
                Ok(o) => Some(o),
                Err(e @ SdpError::Syntax(_)) => {
                    let why = format!("Bad Request ({e})");
                    return self.reject(now, &key, &req, StatusCode::BAD_REQUEST, Some(&why));
                }
                Err(e) => {
                    let why = format!("Not Acceptable Here ({e})");
                    return self.reject(
                        now,
                        &key,
                        &req,
                        StatusCode::NOT_ACCEPTABLE_HERE,
                        Some(&why),
                    );
                }
            }
        };
        if !matches!(req.contact(), Ok(Some(_))) {
            return self.reject(
                now,
                &key,
                &req,
                StatusCode::BAD_REQUEST,
                Some("Bad Request (missing Contact)"),
            );
        }
        // Caller routing, then the called number (the Request-URI user part), pick the start.
        let caller = caller_id(&req);
        let entry = match self
            .menus
            .route(req.uri.user().as_deref(), caller.as_deref())
        {
            Route::Menu(m) => m,
            Route::Reject => {
                return self.reject(now, &key, &req, StatusCode::DECLINE, None);
            }
        };
        let handle = CallHandle(self.next_handle);
        self.next_handle += 1;
        let call_id = req.call_id().unwrap_or_default().to_string();
        self.event(Event::CallStarted {
            call: handle,
            call_id: call_id.clone(),
            from: req
                .party_from()
                .map(|f| f.uri.to_string())
                .unwrap_or_default(),
            to: req.uri.to_string(),
        });
        let call = Call {
            handle,
            call_id,
            peer,
            invite_key: key.clone(),
            invite: req,
            local_tag: self.rng.token(),
            dialog: None,
            local_sdp: None,
            media: None,
            menu: {
                let mut run = MenuRun::new_at(self.menus.clone(), entry);
                if let Some((at, wall)) = self.wall_anchor {
                    run.set_wall_clock(at, wall);
                }
                run
            },
            phase: Phase::OpeningMedia { offer },
            created: now,
            connected: None,
            indexed: None,
            reinvite: None,
            end_reason: None,
            path: Vec::new(),
            deposit: None,
        };
        self.calls.insert(handle, call);
        self.by_invite.insert(key, handle);
        self.outputs.push_back(Output::OpenMedia { call: handle });
    }

    fn media_opened(&mut self, now: Instant, handle: CallHandle, local: SocketAddr) {
        let Some(call) = self.calls.get_mut(&handle) else {
            // The call ended (CANCEL) while the socket was being opened.
            self.outputs.push_back(Output::CloseMedia { call: handle });
            return;
        };
        let Phase::OpeningMedia { offer } = &mut call.phase else {
            return;
        };
        let offer = offer.take();
        call.local_sdp = Some(LocalSession {
            id: self.rng.next_u64() >> 2,
            version: 1,
            addr: SocketAddr::new(self.config.media_ip, local.port()),
        });
        if self.config.answer_delay.is_zero() {
            call.phase = Phase::Ringing { offer, until: now };
            self.answer(now, handle);
        } else {
            call.phase = Phase::Ringing {
                offer,
                until: now + self.config.answer_delay,
            };
            let mut r = Response::to_request(&call.invite, StatusCode::RINGING);
            set_to_tag(&mut r, &call.local_tag);
            r.headers.push(
                HeaderName::Contact,
                contact_value(self.config.sip_addr, call.peer.transport),
            );
            r.headers
                .push(HeaderName::Server, self.config.user_agent.clone());
            let key = call.invite_key.clone();
            self.layer.respond(now, &key, r);
            self.reindex(handle);
        }
    }

    /// Send the 200 OK with our answer, or our offer for a late-offer INVITE.
    fn answer(&mut self, now: Instant, handle: CallHandle) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let Phase::Ringing { offer, .. } = &mut call.phase else {
            return;
        };
        let offer = offer.take();
        let Some(session) = call.local_sdp else {
            return;
        };
        let body = match &offer {
            Some(o) => match sdp::negotiate(o) {
                Ok(n) => sdp::build_answer(&session, o, &n),
                Err(_) => return, // checked at INVITE time
            },
            None => sdp::build_offer(&session, Direction::SendRecv),
        };
        let seq = self.rng.next_u32() & 0xFFFF;
        let dialog = match Dialog::from_invite(&call.invite, &call.local_tag, seq) {
            Ok(d) => d,
            Err(_) => return, // Contact and tags were checked at INVITE time
        };
        let mut r = Response::to_request(&call.invite, StatusCode::OK);
        set_to_tag(&mut r, &call.local_tag);
        let contact = contact_value(self.config.sip_addr, call.peer.transport);
        r.headers.push(HeaderName::Contact, contact);
        r.headers.push(HeaderName::Allow, ALLOW);
        r.headers
            .push(HeaderName::Server, self.config.user_agent.clone());
        r.headers.push(HeaderName::ContentType, "application/sdp");
        r.body = body;
        self.by_dialog
            .insert((call.call_id.clone(), call.local_tag.clone()), handle);
        call.dialog = Some(dialog);
        call.phase = Phase::Answered { offer };
        let key = call.invite_key.clone();
        self.layer.respond(now, &key, r);
        self.event(Event::CallAnswered { call: handle });
        self.reindex(handle);
    }

    fn media_failed(&mut self, now: Instant, handle: CallHandle) {
        let Some(call) = self.calls.get(&handle) else {
            return;
        };
        let (key, invite) = (call.invite_key.clone(), call.invite.clone());
        self.reject(
            now,
            &key,
            &invite,
            StatusCode::SERVICE_UNAVAILABLE,
            Some("No Media Port"),
        );
        self.finish_call(handle, EndReason::MediaUnavailable);
    }

    fn on_cancel(&mut self, now: Instant, key: &ServerKey, req: &Request) {
        let invite_key = key.invite_for_cancel();
        // RFC 3261 §9.2: no matching INVITE transaction means 481.
        let Some(handle) = self.by_invite.get(&invite_key).copied() else {
            return self.reject(now, key, req, StatusCode::CALL_DOES_NOT_EXIST, None);
        };
        let ok = self.reply(req, StatusCode::OK, None);
        self.layer.respond(now, key, ok);
        if self.layer.is_pending_invite(&invite_key) {
            if let Some(call) = self.calls.get(&handle) {
                let mut r = Response::to_request(&call.invite, StatusCode::REQUEST_TERMINATED);
                set_to_tag(&mut r, &call.local_tag);
                self.layer.respond(now, &invite_key, r);
            }
            self.finish_call(handle, EndReason::Cancelled);
        }
    }

    fn on_ack(&mut self, now: Instant, ack: &Request) {
        let Some(handle) = self.dialog_of(ack) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        self.layer.ack_received(now, &call.invite_key);
        if let Some(k) = &call.reinvite {
            self.layer.ack_received(now, k);
        }
        match std::mem::replace(&mut call.phase, Phase::Active) {
            Phase::Answered { offer } => {
                let negotiated = match &offer {
                    Some(o) => sdp::negotiate(o).map(|n| (n, o.addr)),
                    // Late offer: the answer is in the ACK (RFC 3261 §13.2.1).
                    None => sdp::parse_remote(&ack.body)
                        .and_then(|a| sdp::accept_answer(&a).map(|n| (n, a.addr))),
                };
                match negotiated {
                    Ok((n, addr)) => self.start_media(now, handle, n, addr),
                    Err(_) => self.end_call(now, handle, EndReason::BadAnswer),
                }
            }
            Phase::Active => {
                // An ACK for a re-INVITE 2xx that offered: it carries the answer.
                if !ack.body.is_empty()
                    && let Ok(a) = sdp::parse_remote(&ack.body)
                    && let (Ok(n), Some(m)) = (sdp::accept_answer(&a), call.media.as_mut())
                {
                    m.update(now, n, a.addr);
                }
                self.reindex(handle);
            }
            other => call.phase = other,
        }
    }

    fn start_media(&mut self, now: Instant, handle: CallHandle, n: Negotiated, addr: SocketAddr) {
        let (ssrc, seq, ts) = (
            self.rng.next_u32(),
            self.rng.next_u32() as u16,
            self.rng.next_u32(),
        );
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        call.media = Some(MediaSession::new(now, n, addr, ssrc, seq, ts));
        call.connected = Some(now);
        call.menu.start(now);
        self.apply_menu(now, handle);
        self.reindex(handle);
    }

    fn in_dialog(&mut self, now: Instant, key: ServerKey, req: Request, to: NameAddr) {
        let tag = to.tag().unwrap_or_default().to_string();
        let call_id = req.call_id().unwrap_or_default().to_string();
        let Some(handle) = self.by_dialog.get(&(call_id, tag)).copied() else {
            return self.reject(now, &key, &req, StatusCode::CALL_DOES_NOT_EXIST, None);
        };
        let seq_ok = match self.calls.get_mut(&handle).and_then(|c| c.dialog.as_mut()) {
            Some(d) => d.accept_remote_seq(&req),
            None => return,
        };
        if let Err(DialogError::OldCSeq { .. }) = seq_ok {
            return self.reject(
                now,
                &key,
                &req,
                StatusCode::SERVER_INTERNAL_ERROR,
                Some("CSeq Out Of Order"),
            );
        }
        match req.method {
            Method::Bye => {
                let ok = self.reply(&req, StatusCode::OK, None);
                self.layer.respond(now, &key, ok);
                self.finish_call(handle, EndReason::CallerHungUp);
            }
            Method::Invite => self.on_reinvite(now, handle, key, req),
            Method::Info => {
                let digit = dtmf_from_info(&req);
                let ok = self.reply(&req, StatusCode::OK, None);
                self.layer.respond(now, &key, ok);
                if let Some(d) = digit {
                    self.on_digit(now, handle, d);
                }
            }
            Method::Options => {
                let mut r = self.reply(&req, StatusCode::OK, None);
                r.headers.push(HeaderName::Allow, ALLOW);
                self.layer.respond(now, &key, r);
            }
            Method::Other(_) => self.reject(now, &key, &req, StatusCode::NOT_IMPLEMENTED, None),
            _ => self.reject(now, &key, &req, StatusCode::METHOD_NOT_ALLOWED, None),
        }
    }

    /// A re-INVITE (RFC 3261 §14.2): hold, resume, or a new address.
    fn on_reinvite(&mut self, now: Instant, handle: CallHandle, key: ServerKey, req: Request) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let busy = call
            .reinvite
            .as_ref()
            .is_some_and(|k| self.layer.is_pending_invite(k));
        if busy || !matches!(call.phase, Phase::Active) || call.media.is_none() {
            return self.reject(now, &key, &req, StatusCode::REQUEST_PENDING, None);
        }
        let Some(mut local) = call.local_sdp else {
            return;
        };
        local.version += 1;
        let body = if req.body.is_empty() {
            // Offer in the 2xx, answer in the ACK.
            let dir = call
                .media
                .as_ref()
                .map(|m| m.negotiated().direction)
                .unwrap_or(Direction::SendRecv);
            sdp::build_offer(
                &local,
                if dir == Direction::Inactive {
                    Direction::SendRecv
                } else {
                    dir
                },
            )
        } else {
            let parsed: Result<(RemoteAudio, Negotiated), SdpError> =
                sdp::parse_remote(&req.body).and_then(|o| sdp::negotiate(&o).map(|n| (o, n)));
            match parsed {
                Ok((o, n)) => {
                    if let Some(m) = call.media.as_mut() {
                        m.update(now, n, o.addr);
                    }
                    sdp::build_answer(&local, &o, &n)
                }
                Err(e) => {
                    let status = if matches!(e, SdpError::Syntax(_)) {
                        StatusCode::BAD_REQUEST
                    } else {
                        StatusCode::NOT_ACCEPTABLE_HERE
                    };
                    return self.reject(now, &key, &req, status, None);
                }
            }
        };
        call.local_sdp = Some(local);
        if let Some(d) = call.dialog.as_mut() {
            d.refresh_target(&req);
        }
        call.reinvite = Some(key.clone());
        let mut r = Response::to_request(&req, StatusCode::OK);
        r.headers.push(
            HeaderName::Contact,
            contact_value(self.config.sip_addr, call.peer.transport),
        );
        r.headers
            .push(HeaderName::Server, self.config.user_agent.clone());
        r.headers.push(HeaderName::ContentType, "application/sdp");
        r.body = body;
        self.layer.respond(now, &key, r);
        self.reindex(handle);
    }

    // ---- media and menus ----

    fn handle_rtp(&mut self, now: Instant, handle: CallHandle, from: SocketAddr, data: &[u8]) {
        let Some(media) = self.calls.get_mut(&handle).and_then(|c| c.media.as_mut()) else {
            return;
        };
        match media.handle_rtp(now, from, data) {
            Ok(Received::Digit(d)) => self.on_digit(now, handle, d),
            Ok(Received::Audio {
                timestamp,
                start,
                len,
            }) => {
                if self.in_deposit(handle) {
                    let payload = &data[usize::from(start)..usize::from(start) + usize::from(len)];
                    self.deposit_audio(now, handle, timestamp, payload);
                    self.reindex(handle);
                }
            }
            Ok(_) => {}
            Err(e) => self.event(Event::BadRtp {
                call: handle,
                error: e.to_string(),
            }),
        }
    }

    fn on_digit(&mut self, now: Instant, handle: CallHandle, digit: Digit) {
        self.event(Event::Digit {
            call: handle,
            digit,
        });
        if self.in_deposit(handle) {
            self.deposit_digit(now, handle, digit);
        } else if let Some(call) = self.calls.get_mut(&handle) {
            call.menu.handle_digit(now, digit);
            self.apply_menu(now, handle);
        }
        self.reindex(handle);
    }

    fn apply_menu(&mut self, now: Instant, handle: CallHandle) {
        loop {
            let Some(call) = self.calls.get_mut(&handle) else {
                return;
            };
            let Some(out) = call.menu.poll_output() else {
                return;
            };
            match out {
                MenuOutput::Play(ids) => {
                    let menus = call.menu.menus();
                    let prompts = ids
                        .iter()
                        .map(|id| {
                            (
                                menus.prompt_name(*id).to_string(),
                                call.menu.prompt(*id).clone(),
                            )
                        })
                        .collect();
                    self.play(handle, prompts);
                }
                MenuOutput::StopPlayback => {
                    if let Some(m) = call.media.as_mut() {
                        m.stop();
                    }
                }
                MenuOutput::Entered(id) => {
                    let menu = call.menu.menus().menu(id).name.clone();
                    if call.path.len() < crate::call::PATH_LIMIT {
                        call.path.push(menu.clone());
                    }
                    self.event(Event::MenuEntered { call: handle, menu });
                }
                MenuOutput::Hangup => self.end_call(now, handle, EndReason::MenuHangup),
                MenuOutput::Handoff(h) => {
                    let to = call.menu.menus().handoff_name(h);
                    self.event(Event::LeftMenus { call: handle, to });
                    match h {
                        ivr_menus::Handoff::Voicemail(m) => self.start_deposit(now, handle, m),
                        // Queues and transfers get their runtime with the queue issue; until
                        // then the call ends here, and the event says where it was going.
                        _ => self.end_call(now, handle, EndReason::Unavailable),
                    }
                }
            }
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        // Take every due call first, then run them: a call that (wrongly) re-arms a deadline
        // in the past is seen again on the next wake-up instead of spinning here forever.
        let mut due = std::mem::take(&mut self.due_scratch);
        while let Some(&Reverse((at, handle))) = self.deadlines.peek() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if let Some(c) = self.calls.get_mut(&handle)
                && c.indexed == Some(at)
            {
                c.indexed = None;
                due.push(handle);
            }
        }
        for handle in due.drain(..) {
            self.call_timeout(now, handle);
        }
        self.due_scratch = due;
    }

    fn call_timeout(&mut self, now: Instant, handle: CallHandle) {
        let (media_timeout, hold_timeout) = (self.config.media_timeout, self.config.hold_timeout);
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if let Phase::Ringing { until, .. } = call.phase {
            if now >= until {
                self.answer(now, handle);
            }
            self.reindex(handle);
            return;
        }
        let mut finished = false;
        let mut dead = None;
        if let Some(m) = call.media.as_mut() {
            while let Some(due) = m.next_send().filter(|d| *d <= now) {
                let Some(packet) = m.poll_packet(now) else {
                    break;
                };
                self.outputs.push_back(Output::Rtp {
                    call: handle,
                    to: m.remote(),
                    packet,
                    due,
                });
            }
            finished = m.take_playback_finished();
            if m.inactivity_deadline(media_timeout, hold_timeout) <= now {
                dead = Some(if m.peer_on_hold() {
                    EndReason::HoldTimeout
                } else {
                    EndReason::MediaTimeout
                });
            }
        }
        if call.deposit.is_some() {
            if finished {
                self.deposit_playback_finished(now, handle);
            }
            self.deposit_timeout(now, handle);
        } else {
            if finished {
                call.menu.handle_playback_finished(now);
            }
            call.menu.handle_timeout(now);
            self.apply_menu(now, handle);
        }
        if let Some(reason) = dead {
            self.end_call(now, handle, reason);
        }
        self.reindex(handle);
    }

    /// Index the call's earliest deadline.
    pub(crate) fn reindex(&mut self, handle: CallHandle) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let mut next = match &call.deposit {
            Some(d) => d.deposit.poll_timeout(),
            None => call.menu.poll_timeout(),
        };
        if let Phase::Ringing { until, .. } = call.phase {
            next = Some(until);
        } else if matches!(call.phase, Phase::Active) {
            if let Some(m) = &call.media {
                let silence =
                    m.inactivity_deadline(self.config.media_timeout, self.config.hold_timeout);
                for d in m.next_send().into_iter().chain([silence]) {
                    next = Some(next.map_or(d, |n| n.min(d)));
                }
            }
        } else {
            next = None;
        }
        if call.indexed == next {
            return;
        }
        call.indexed = next;
        if let Some(at) = next {
            self.deadlines.push(Reverse((at, handle)));
        }
    }

    // ---- ending calls ----

    /// End a call from our side: BYE if answered, a final error if not.
    pub(crate) fn end_call(&mut self, now: Instant, handle: CallHandle, reason: EndReason) {
        // A caller leaving a message keeps it, whoever ends the call.
        self.deposit_hangup(now, handle);
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        match &call.phase {
            Phase::Ending { .. } => {}
            Phase::OpeningMedia { .. } | Phase::Ringing { .. } => {
                let (key, invite) = (call.invite_key.clone(), call.invite.clone());
                self.reject(now, &key, &invite, StatusCode::SERVICE_UNAVAILABLE, None);
                self.finish_call(handle, reason);
            }
            Phase::Answered { .. } | Phase::Active => {
                let branch = format!("z9hG4bK{}", self.rng.token());
                let via = format!(
                    "SIP/2.0/{} {};branch={branch};rport",
                    call.peer.transport.via_token(),
                    self.config.sip_addr
                );
                let Some(dialog) = call.dialog.as_mut() else {
                    return;
                };
                let mut bye = dialog.request(Method::Bye, via);
                bye.headers
                    .push(HeaderName::UserAgent, self.config.user_agent.clone());
                let peer = bye_destination(call.peer, &bye);
                if let Some(m) = call.media.as_mut() {
                    m.stop();
                }
                match self.layer.send_request(now, bye, peer) {
                    Some(key) => {
                        call.phase = Phase::Ending { bye: key };
                        call.pending_reason(reason);
                        self.outputs.push_back(Output::CloseMedia { call: handle });
                        self.reindex(handle);
                    }
                    None => self.finish_call(handle, reason),
                }
            }
        }
    }

    fn on_bye_done(&mut self, key: &ClientKey) {
        let handle = self
            .calls
            .values()
            .find(|c| matches!(&c.phase, Phase::Ending { bye } if bye == key))
            .map(|c| c.handle);
        if let Some(h) = handle {
            let reason = self
                .calls
                .get(&h)
                .and_then(|c| c.end_reason)
                .unwrap_or(EndReason::MenuHangup);
            self.finish_call(h, reason);
        }
    }

    /// Forget a call.
    fn finish_call(&mut self, handle: CallHandle, reason: EndReason) {
        if let Some(now) = self.last_now {
            self.deposit_hangup(now, handle);
        }
        let Some(call) = self.calls.remove(&handle) else {
            return;
        };
        self.by_invite.remove(&call.invite_key);
        self.by_dialog
            .remove(&(call.call_id.clone(), call.local_tag.clone()));
        let reason = call.end_reason.unwrap_or(reason);
        let packets = call
            .media
            .as_ref()
            .map(|m| m.counters())
            .unwrap_or_default();
        if !matches!(call.phase, Phase::Ending { .. }) {
            self.outputs.push_back(Output::CloseMedia { call: handle });
        }
        self.event(Event::CallEnded {
            call: handle,
            call_id: call.call_id,
            reason,
            packets,
        });
    }

    fn shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        let handles: Vec<CallHandle> = self.calls.keys().copied().collect();
        for h in handles {
            self.end_call(now, h, EndReason::Shutdown);
        }
    }

    fn check_drained(&mut self) {
        if self.shutting_down && !self.drained && self.calls.is_empty() {
            self.drained = true;
            self.event(Event::Drained);
        }
    }

    // ---- helpers ----

    fn dialog_of(&self, req: &Request) -> Option<CallHandle> {
        let tag = req.party_to().ok()?.tag()?.to_string();
        self.by_dialog
            .get(&(req.call_id().ok()?.to_string(), tag))
            .copied()
    }

    /// Play prompts (named for the log) on a call, in the caller's language, replacing what
    /// plays; each start is an [`Event::Playing`].
    pub(crate) fn play(&mut self, handle: CallHandle, prompts: Vec<(String, ivr_audio::Prompt)>) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let language = call
            .menu
            .menus()
            .languages()
            .get(call.menu.language())
            .cloned();
        let mut recordings = Vec::with_capacity(prompts.len());
        for (name, prompt) in prompts {
            recordings.push(prompt);
            self.outputs.push_back(Output::Event(Event::Playing {
                call: handle,
                prompt: name,
                language: language.clone(),
            }));
        }
        if let Some(m) = call.media.as_mut() {
            m.play(recordings);
        }
    }

    pub(crate) fn event(&mut self, e: Event) {
        self.outputs.push_back(Output::Event(e));
    }

    /// A response with our To tag (a fresh one if the request had none) and Server header.
    fn reply(&mut self, req: &Request, status: StatusCode, tag: Option<&str>) -> Response {
        let mut r = Response::to_request(req, status);
        if req.party_to().is_ok_and(|t| t.tag().is_none()) && status != StatusCode::TRYING {
            let tag = tag.map(str::to_string).unwrap_or_else(|| self.rng.token());
            set_to_tag(&mut r, &tag);
        }
        r.headers
            .push(HeaderName::Server, self.config.user_agent.clone());
        r
    }

    fn reject(
        &mut self,
        now: Instant,
        key: &ServerKey,
        req: &Request,
        status: StatusCode,
        reason: Option<&str>,
    ) {
        let tag = self
            .by_invite
            .get(key)
            .and_then(|h| self.calls.get(h))
            .map(|c| c.local_tag.clone());
        let mut r = self.reply(req, status, tag.as_deref());
        if let Some(reason) = reason {
            r.reason = reason.to_string();
        }
        match status.code() {
            405 | 501 => r.headers.push(HeaderName::Allow, ALLOW),
            503 => r
                .headers
                .push(HeaderName::RetryAfter, self.config.retry_after.to_string()),
            _ => {}
        }
        self.respond_error(now, key, req, r);
    }

    fn respond_error(&mut self, now: Instant, key: &ServerKey, req: &Request, r: Response) {
        self.event(Event::Rejected {
            method: req.method.to_string(),
            call_id: req.call_id().unwrap_or_default().to_string(),
            status: r.status.code(),
            reason: r.reason.clone(),
        });
        self.layer.respond(now, key, r);
    }
}

/// Tags in Require we do not support (we support none), for a 420 (RFC 3261 §8.2.2.3).
fn unsupported_required(req: &Request) -> Option<String> {
    let tags: Vec<&str> = req.headers.values(&HeaderName::Require).collect();
    (!tags.is_empty()).then(|| tags.join(", "))
}

fn set_to_tag(r: &mut Response, tag: &str) {
    if let Ok(mut to) = r.party_to()
        && to.tag().is_none()
    {
        to.params.set("tag", Some(tag.to_string()));
        r.headers.set(HeaderName::To, to.to_string());
    }
}

fn contact_value(addr: SocketAddr, transport: Transport) -> String {
    match transport {
        Transport::Udp => format!("<sip:ivr@{addr}>"),
        Transport::Tcp => format!("<sip:ivr@{addr};transport=tcp>"),
    }
}

/// Where our in-dialog requests go: over TCP, the same connection; over UDP, the remote
/// target when it is an IP address, else where the INVITE came from.
fn bye_destination(invite_peer: Peer, bye: &Request) -> Peer {
    if invite_peer.transport.is_reliable() {
        return invite_peer;
    }
    let target = bye.uri.as_sip().and_then(|u| {
        let ip: IpAddr = u
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()?;
        Some(SocketAddr::new(ip, u.port.unwrap_or(5060)))
    });
    Peer {
        addr: target.unwrap_or(invite_peer.addr),
        ..invite_peer
    }
}

/// The caller's number: the P-Asserted-Identity user (RFC 3325 §9.1) if present, else the
/// From user; `None` when withheld (no user part, or `anonymous`).
pub(crate) fn caller_id(req: &Request) -> Option<String> {
    let pai = req
        .headers
        .get(&HeaderName::Other("P-Asserted-Identity".into()))
        .and_then(|v| NameAddr::parse(v, HeaderName::Other("P-Asserted-Identity".into())).ok());
    let uri = match pai {
        Some(p) => p.uri,
        None => req.party_from().ok()?.uri,
    };
    let user = match &uri {
        ivr_sip::Uri::Other { raw, .. } => raw
            .split_once(':')
            .map(|(_, r)| r.split(';').next().unwrap_or(r).to_string()),
        ivr_sip::Uri::Sip(_) => uri.user(),
    }?;
    (!user.eq_ignore_ascii_case("anonymous")).then_some(user)
}

/// A key from a SIP INFO body: `application/dtmf-relay` (`Signal=5`) or `application/dtmf` (`5`).
fn dtmf_from_info(req: &Request) -> Option<Digit> {
    let ctype = req
        .headers
        .get(&HeaderName::ContentType)?
        .to_ascii_lowercase();
    let body = std::str::from_utf8(&req.body).ok()?;
    let value = if ctype.starts_with("application/dtmf-relay") {
        body.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then(|| v.trim())
        })?
    } else if ctype.starts_with("application/dtmf") {
        body.trim()
    } else {
        return None;
    };
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Digit::from_char(c),
        _ => value.parse::<u8>().ok().and_then(Digit::from_event_code),
    }
}
