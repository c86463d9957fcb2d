//! What one engine loop owns beside its engine: its media sockets and RTP ports, its
//! voicemail writer, the call spans of its logs, the store writes it has in flight. It
//! feeds inputs to the engine and performs the engine's outputs.

use super::*;

/// What a loop needs to reach the rest of a sharded process.
pub(super) struct ShardLink {
    /// This loop's shard.
    pub(super) index: ShardId,
    /// Messages to the hub, on the control thread (never dropped: unbounded, and their
    /// number is bounded by the calls' queue activity).
    pub(super) hub: mpsc::UnboundedSender<(ShardId, HubMsg)>,
    /// The shards' inputs, for SIP handed to the shard that owns it.
    pub(super) router: Arc<route::Router>,
}

pub(super) struct Io {
    pub(super) udp: Arc<UdpSocket>,
    pub(super) tcp: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
    /// The calls' RTP and RTCP sockets, read by the loop itself.
    pub(super) media: MediaSet,
    pub(super) ports: PortPool,
    /// This loop's own input (DNS answers, store results come back on it).
    pub(super) tx: mpsc::Sender<NetIn>,
    /// Where the messages of a TCP connection this loop opens go.
    pub(super) sip_in: route::SipIn,
    spans: HashMap<CallHandle, Span>,
    /// Where the menus handed each call, until it ends.
    handoffs: HashMap<CallHandle, String>,
    pub(super) drained: bool,
    /// This loop's number (its shard; 0 with one loop): its lateness histogram in
    /// `status.lateness`, its label in `ivr_shard_calls_active`.
    pub(super) index: usize,
    pub(super) status: Arc<Status>,
    pub(super) recorder: Recorder,
    /// Store writes.
    pub(super) w: Stores,
    /// Where host names are looked up; made at the first lookup.
    dns_servers: Vec<SocketAddr>,
    resolver: Option<crate::resolve::SipResolver>,
    /// The staff's queue view is out of date: publish a snapshot once the outputs are done
    /// (only the loop whose engine holds the hub).
    board_dirty: bool,
    /// Set for a shard of several; `None`: the engine holds its hub.
    pub(super) shard: Option<ShardLink>,
}

impl Io {
    /// A loop's side for `config`, sending SIP on `udp`, its media set and ports given.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        config: &ServerConfig,
        udp: Arc<UdpSocket>,
        media: MediaSet,
        ports: PortPool,
        tx: mpsc::Sender<NetIn>,
        sip_in: route::SipIn,
        recorder: Recorder,
        shard: Option<ShardLink>,
    ) -> Io {
        let index = shard.as_ref().map_or(0, |s| usize::from(s.index));
        let mut w = Stores::new(config);
        if shard.is_none() {
            // The queue log learns that agent states of a previous run are over.
            w.queue_rows.push(ivr_queues::log::Row::new(
                crate::clock::unix_millis(std::time::SystemTime::now()),
                ivr_queues::log::Kind::Start,
            ));
        }
        Io {
            udp,
            tcp: HashMap::new(),
            media,
            ports,
            tx,
            sip_in,
            spans: HashMap::new(),
            handoffs: HashMap::new(),
            drained: false,
            index,
            status: config.status.clone(),
            recorder,
            w,
            dns_servers: config.dns_servers.clone(),
            resolver: None,
            board_dirty: shard.is_none(),
            shard,
        }
    }
}

impl Io {
    /// Feed what the media sockets hold to the engine, each datagram straight from the
    /// read buffer; `wait` learns whether some is left for the next turn.
    pub(super) fn read_media(&mut self, wait: &mut media::MediaWait, engine: &mut Engine) {
        let share = wait.share();
        let Some(poll) = wait.poll() else { return };
        let left = self.media.read(poll, share, |d| {
            let input = if d.rtcp {
                Input::Rtcp {
                    leg: d.leg,
                    data: d.data,
                }
            } else {
                Input::Rtp {
                    leg: d.leg,
                    from: d.from,
                    data: d.data,
                }
            };
            engine.handle_input(Instant::now(), input);
        });
        wait.set_left(left);
    }

    /// [`Io::feed`], and a SIP message's answers go out at once: the `100 Trying` to an
    /// INVITE leaves before the next queued input is looked at (a proxy fails over after
    /// about 1.5 s without a provisional answer).
    pub(super) fn feed_now(&mut self, engine: &mut Engine, msg: NetIn) {
        let sip = matches!(msg, NetIn::Sip { .. });
        self.feed(engine, msg);
        if sip {
            let _ = self.drain(engine);
        }
    }

    fn feed(&mut self, engine: &mut Engine, msg: NetIn) {
        let now = Instant::now();
        match msg {
            NetIn::Sip {
                transport,
                from,
                data,
            } => engine.handle_input(
                now,
                Input::Sip {
                    transport,
                    from,
                    data: &data,
                },
            ),
            NetIn::TcpOpen { peer, tx } => {
                self.tcp.insert(peer, tx);
            }
            NetIn::TcpClosed { peer } => {
                self.tcp.remove(&peer);
            }
            NetIn::Located { leg, targets } => {
                engine.handle_input(now, Input::Located { leg, targets });
            }
            NetIn::CancelCallback(id) => engine.handle_input(now, Input::CancelCallback(id)),
            NetIn::Voicemail(WriterOut::Report(report)) => {
                if matches!(report, ivr_engine::VoicemailReport::RecordingFailed { .. }) {
                    self.status.recording_failed();
                }
                engine.handle_input(now, Input::Voicemail(report));
            }
            NetIn::Voicemail(WriterOut::Store { call, request }) => {
                let (store, dir, tx) = (
                    self.w.store.clone(),
                    self.w.voicemail_dir.clone(),
                    self.tx.clone(),
                );
                let (status, notify) = (self.status.clone(), self.w.notify);
                // Kept in a set, so that a stop waits for it rather than dropping it.
                while self.w.stores.try_join_next().is_some() {}
                self.w.stores.spawn(async move {
                    let ok = store_request(&store, &dir, &request, notify).await;
                    status.callbacks.record(ok);
                    let report = ivr_engine::VoicemailReport::Stored { call, ok };
                    let _ = tx.send(NetIn::Voicemail(WriterOut::Report(report))).await;
                });
            }
            NetIn::Agent {
                agent,
                action,
                by,
                reply,
            } => {
                let r = engine.agent_request(now, &agent, action, &by);
                self.board_dirty = true;
                let _ = reply.send(r);
            }
            NetIn::ReloadRequested { .. } | NetIn::FilesChanged(_) | NetIn::Reloaded(_) => {}
        }
    }

    /// A message from the control thread to this shard.
    pub(super) fn control(&mut self, engine: &mut Engine, msg: ShardCtl) {
        match msg {
            ShardCtl::Hub(msg) => engine.handle_input(Instant::now(), Input::Hub(msg)),
            ShardCtl::SetMenus(menus) => engine.set_menus(menus),
            ShardCtl::TcpOpen { peer, tx } => {
                self.tcp.insert(peer, tx);
            }
            ShardCtl::TcpClosed { peer } => {
                self.tcp.remove(&peer);
            }
        }
        let _ = self.drain(engine);
    }

    /// Perform every output; returns the engine's next deadline.
    pub(super) fn drain(&mut self, engine: &mut Engine) -> Option<Instant> {
        loop {
            match engine.poll_output() {
                Output::Timeout(deadline) => {
                    self.w.store_queue_rows();
                    self.w.store_call_records(false);
                    if std::mem::take(&mut self.board_dirty) {
                        let now = Instant::now();
                        self.status.board.publish(engine.queue_view(now), now);
                    }
                    return deadline;
                }
                Output::Sip {
                    transport,
                    to,
                    data,
                } => self.send_sip(transport, to, data),
                Output::Rtp {
                    leg,
                    to,
                    packet,
                    due,
                } => {
                    // How far from its time, either side: a packet may leave up to the
                    // engine's send lead early (see alarm.rs).
                    let now = Instant::now();
                    let off = now.checked_duration_since(due).unwrap_or_else(|| due - now);
                    self.status.lateness.writer(self.index).record(off);
                    if let Some(Err(e)) = self.media.send(leg, packet.as_slice(), to) {
                        debug!(%leg, %to, error = %e, "RTP send dropped");
                    }
                }
                Output::OpenMedia { leg } => {
                    let input = match self.open_media(leg) {
                        Ok(local) => Input::MediaOpened { leg, local },
                        Err(e) => {
                            warn!(%leg, error = %e, "no RTP port");
                            Input::MediaFailed { leg }
                        }
                    };
                    engine.handle_input(Instant::now(), input);
                }
                Output::Locate { leg, uri } => self.locate(leg, uri),
                Output::CloseMedia { leg } => {
                    if let Some(port) = self.media.close(leg) {
                        self.ports.give(port);
                    }
                }
                Output::Event(e) => {
                    let queue = matches!(e, Event::Queue { .. });
                    self.board_dirty |= self.shard.is_none()
                        && matches!(
                            e,
                            Event::Queue { .. } | Event::Agent { .. } | Event::AgentRequest { .. }
                        );
                    self.log(e);
                    if queue && self.shard.is_none() {
                        self.status
                            .queues(&engine.queues_waiting(), &engine.agent_states());
                    }
                }
                Output::QueueCallback(cmd) => self.w.store_queue_callback(cmd),
                // Only a sharded engine (`Engine::new_shard`) hands these out.
                Output::Hub(msg) => match &self.shard {
                    Some(link) => {
                        let _ = link.hub.send((link.index, msg));
                    }
                    None => warn!("a sharded engine's output reached a loop without shards"),
                },
                Output::Handoff {
                    shard,
                    transport,
                    from,
                    data,
                } => match &self.shard {
                    Some(link) => link.router.hand_over(shard, transport, from, data),
                    None => warn!("a sharded engine's output reached a loop without shards"),
                },
                Output::Voicemail(cmd) => {
                    let failed = match &cmd {
                        ivr_engine::VoicemailCmd::Start { recording, .. }
                        | ivr_engine::VoicemailCmd::StartComment { recording, .. }
                        | ivr_engine::VoicemailCmd::Frame { recording, .. } => Some(*recording),
                        _ => None,
                    };
                    if !self.recorder.send(cmd) {
                        warn!("the voicemail writer is behind or gone");
                        self.status.recording_failed();
                        if let Some(recording) = failed {
                            let report = ivr_engine::VoicemailReport::RecordingFailed { recording };
                            engine.handle_input(Instant::now(), Input::Voicemail(report));
                        }
                    }
                }
            }
        }
    }

    /// Look `uri` up by DNS off the loop (RFC 3263, bounded by [`crate::resolve::ResolveLimits`]);
    /// the targets come back as [`NetIn::Located`], TLS ones left out (the engine opens no
    /// TLS connections).
    fn locate(&mut self, leg: LegHandle, uri: ivr_sip::Uri) {
        if self.resolver.is_none() {
            let limits = crate::resolve::ResolveLimits::default();
            let made = if self.dns_servers.is_empty() {
                crate::resolve::SipResolver::from_system(limits)
            } else {
                crate::resolve::SipResolver::with_name_servers(&self.dns_servers, limits)
            };
            match made {
                Ok(r) => self.resolver = Some(r),
                Err(e) => {
                    warn!(error = %e, "no DNS resolver: host-named destinations cannot be called")
                }
            }
        }
        let (resolver, tx) = (self.resolver.clone(), self.tx.clone());
        tokio::spawn(async move {
            let targets = match resolver {
                Some(r) => match r.locate(&uri).await {
                    Ok(list) => list
                        .as_slice()
                        .iter()
                        .filter_map(|t| {
                            let transport = t.transport.transport()?;
                            Some(ivr_sip::transaction::Peer {
                                transport,
                                addr: t.addr,
                            })
                        })
                        .collect(),
                    Err(e) => {
                        warn!(%uri, error = %e, "DNS found no target for a destination");
                        Vec::new()
                    }
                },
                None => Vec::new(),
            };
            let _ = tx.send(NetIn::Located { leg, targets }).await;
        });
    }

    fn send_sip(&mut self, transport: Transport, to: SocketAddr, data: Vec<u8>) {
        match transport {
            Transport::Udp => {
                if let Err(e) = self.udp.try_send_to(&data, to) {
                    warn!(%to, error = %e, "SIP send failed");
                }
            }
            // RFC 3261 §18.2.2 would reconnect to a TLS peer too, by its name and
            // certificate; a phone behind NAT cannot be reached that way: the message is
            // dropped (the transaction layer reports the failure).
            Transport::Tls => match self.tcp.get(&to) {
                Some(conn) => {
                    if conn.try_send(data).is_err() {
                        warn!(%to, "TLS connection gone or full; message dropped");
                    }
                }
                None => warn!(%to, "no TLS connection to the peer; message dropped"),
            },
            Transport::Tcp => match self.tcp.get(&to) {
                Some(conn) => {
                    if conn.try_send(data).is_err() {
                        warn!(%to, "TCP connection gone or full; message dropped");
                    }
                }
                None => {
                    // RFC 3261 §18.2.2: the connection is gone; open a new one to the same address.
                    let sip_in = self.sip_in.clone();
                    tokio::spawn(async move {
                        match TcpStream::connect(to).await {
                            Ok(stream) => {
                                let _ = stream.set_nodelay(true);
                                let conn = run_tcp(stream, to, sip_in, None, Transport::Tcp);
                                let _ = conn.send(data).await;
                            }
                            Err(e) => warn!(%to, error = %e, "could not reconnect over TCP"),
                        }
                    });
                }
            },
        }
    }

    fn open_media(&mut self, leg: LegHandle) -> std::io::Result<SocketAddr> {
        let ip = self.udp.local_addr()?.ip();
        for _ in 0..self.ports.available().min(64) {
            let Some(port) = self.ports.take() else { break };
            let bound = std::net::UdpSocket::bind((ip, port))
                .and_then(|rtp| std::net::UdpSocket::bind((ip, port + 1)).map(|rtcp| (rtp, rtcp)));
            let (rtp, rtcp) = match bound {
                Ok(pair) => pair,
                Err(e) if crate::conns::out_of_descriptors(&e) => {
                    self.ports.give(port);
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("no file descriptor left for RTP sockets ({e})"),
                    ));
                }
                Err(_) => {
                    self.ports.give(port);
                    continue;
                }
            };
            let opened = rtp
                .local_addr()
                .and_then(|local| rtp.set_nonblocking(true).map(|()| local))
                .and_then(|local| rtcp.set_nonblocking(true).map(|()| local))
                .and_then(|local| {
                    self.media
                        .open(leg, rtp, rtcp, port)
                        .map(|old| (local, old))
                });
            match opened {
                Ok((local, old)) => {
                    if let Some(old) = old {
                        self.ports.give(old);
                    }
                    return Ok(local);
                }
                Err(e) => {
                    self.ports.give(port);
                    return Err(e);
                }
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            "RTP port range exhausted",
        ))
    }

    fn log(&mut self, e: Event) {
        match e {
            Event::CallStarted {
                call,
                call_id,
                from,
                caller,
                to,
            } => {
                self.status.call_started(self.index);
                let span = info_span!("call", %call, call_id = %call_id);
                let caller = caller.as_deref().unwrap_or("withheld");
                span.in_scope(|| info!(%caller, %from, %to, "call started"));
                self.spans.insert(call, span);
            }
            Event::CallAnswered { call } => self.in_call(call, |_| info!("answered")),
            Event::MenuEntered { call, menu } => {
                self.status.menu_entered(&menu);
                self.in_call(call, |_| info!(%menu, "menu"))
            }
            Event::Playing {
                call,
                prompt,
                language,
            } => self.in_call(call, |_| match language {
                Some(language) => info!(%prompt, %language, "playing"),
                None => info!(%prompt, "playing"),
            }),
            Event::LeftMenus { call, to } => {
                // A hand-off is normal (voicemail is one); only a call the engine must end
                // for want of the service (`EndReason::Unavailable`) is worth a warning.
                self.in_call(call, |_| info!(%to, "left the menus"));
                self.handoffs.insert(call, to);
            }
            Event::Recording { call, started } => self.in_call(call, |_| {
                if started {
                    info!("recording the caller's message")
                } else {
                    info!("recording stopped")
                }
            }),
            Event::CallbackRequest {
                call,
                id,
                mailbox,
                number,
                duration_ms,
            } => self.in_call(call, |_| {
                info!(%id, %mailbox, number = number.as_deref().unwrap_or(""), duration_ms, "callback request left")
            }),
            Event::Digit { call, digit } => self.in_call(call, |_| info!(%digit, "key")),
            Event::BadRtp { leg, error } => {
                self.in_call(leg.call, |_| debug!(%leg, %error, "RTP dropped"))
            }
            Event::CallEnded {
                call,
                call_id,
                reason,
                packets,
            } => {
                self.status.call_ended(reason, self.index);
                self.in_call(call, |_| {
                    info!(
                        ?reason,
                        sent = packets.0,
                        received = packets.1,
                        "call ended"
                    )
                });
                let to = self.handoffs.remove(&call);
                if matches!(
                    reason,
                    EndReason::MediaTimeout
                        | EndReason::HoldTimeout
                        | EndReason::AckTimeout
                        | EndReason::SessionExpired
                        | EndReason::NoPrack
                ) {
                    warn!(%call_id, ?reason, "call ended abnormally");
                } else if reason == EndReason::Unavailable {
                    let to = to.unwrap_or_default();
                    warn!(%call_id, %to, "the menus sent the call to a service this version does not run yet; it was ended");
                }
                self.spans.remove(&call);
            }
            Event::CallRecord(record) => {
                self.status.call_record(&record);
                self.w.call_records.push(*record);
            }
            Event::Rejected {
                method,
                call_id,
                status,
                reason,
            } => info!(%method, %call_id, status, %reason, "request refused"),
            Event::BadMessage { from, error } => warn!(%from, %error, "malformed SIP message"),
            Event::RouteUnresolved { call, next_hop } => self.in_call(call, |_| {
                warn!(%next_hop, "a next hop is a host name the engine could not use: an in-dialog request went where the INVITE came from, or a transfer destination was not found in DNS")
            }),
            Event::FailedOver {
                call,
                from,
                to,
                why,
            } => self.in_call(call, |_| {
                warn!(%from, %to, %why, "transfer destination failed at one DNS target: trying the next (RFC 3263 §4.3)")
            }),
            Event::StrictRoute { call, next_hop } => self.in_call(call, |_| {
                info!(%next_hop, "strict router (no ;lr): Request-URI rewritten as RFC 3261 §12.2.1.1 says")
            }),
            Event::Bridged {
                call,
                destination,
                call_id,
            } => self.in_call(call, |_| {
                // The destination's leg has its own span, inside the call's, named by its
                // own Call-ID, so both dialogs can be found in the logs.
                let leg = info_span!("leg", call_id = %call_id);
                leg.in_scope(|| match destination.strip_prefix("agent ") {
                    Some(agent) => info!(%agent, "agent answered: bridged"),
                    None => info!(%destination, "transfer answered: bridged"),
                });
            }),
            Event::Referred { call, destination } => self.in_call(call, |_| {
                info!(%destination, "transferred by REFER: the caller reached the destination")
            }),
            Event::TransferFailed {
                call,
                destination,
                failure,
            } => self.in_call(call, |_| {
                info!(%destination, %failure, "transfer reached no one: back to the menu")
            }),
            Event::SurveyStarted { call, survey } => self.in_call(call, |_| {
                info!(%survey, "survey: the other side hung up, the caller is asked")
            }),
            Event::Admission(e) => self.admission_event(e),
            Event::Agent { change, registered } => log_agent(&self.status, change, registered),
            Event::Queue {
                call,
                call_id,
                at,
                event,
            } => {
                match call {
                    Some(call) => self.in_call(call, |_| crate::queue_log::log(&event)),
                    None => crate::queue_log::log(&event),
                }
                self.w
                    .queue_rows
                    .push(crate::queue_log::row(&event, at, call_id.as_deref()));
            }
            Event::AuthFailed { from, method } => log_auth_failed(&self.status, from, method),
            Event::FeatureCode { agent, code, from } => {
                info!(%agent, %code, %from, "agent feature call")
            }
            Event::AgentRequest { agent, action, by } => {
                info!(%agent, action, %by, "agent request")
            }
            Event::Drained => {
                info!("all calls ended");
                self.drained = true;
            }
        }
    }

    /// Log and count what admission did (see `ivr_engine::admission`).
    fn admission_event(&self, e: ivr_engine::admission::AdmissionEvent) {
        use ivr_engine::admission::AdmissionEvent;
        match e {
            AdmissionEvent::PendingEvicted { call } => {
                self.status.admission(&e);
                self.in_call(call, |_| {
                    info!(
                        "dropped while waiting for its ACK, to make room (too many calls waiting)"
                    )
                })
            }
            e => log_admission(&self.status, e),
        }
    }

    fn in_call(&self, call: CallHandle, f: impl FnOnce(&Span)) {
        match self.spans.get(&call) {
            Some(span) => span.in_scope(|| f(span)),
            None => f(&Span::none()),
        }
    }
}

/// Log and count what admission or the source gate did (see `ivr_engine::admission`).
pub(super) fn log_admission(status: &Status, e: ivr_engine::admission::AdmissionEvent) {
    use ivr_engine::admission::AdmissionEvent;
    status.admission(&e);
    match e {
        AdmissionEvent::Banned { source, duration } => warn!(
            %source,
            seconds = duration.as_secs(),
            "SIP source over its request rate: ignored for a while"
        ),
        AdmissionEvent::SourceCallLimit { source } => {
            debug!(%source, "INVITE refused: too many calls from this address")
        }
        AdmissionEvent::PendingEvicted { call } => {
            info!(%call, "dropped while waiting for its ACK, to make room (too many calls waiting)")
        }
    }
}

/// Log and count a change of an agent's registrations.
pub(super) fn log_agent(
    status: &Status,
    change: ivr_sip::registrar::RegistrarEvent,
    registered: usize,
) {
    use ivr_sip::registrar::RegistrarEvent;
    status.agents_registered(registered);
    match change {
        RegistrarEvent::Registered {
            owner,
            contact,
            source,
            expires,
        } => info!(
            agent = %owner,
            %contact,
            source = %source.addr,
            transport = source.transport.via_token(),
            expires,
            "agent registered"
        ),
        RegistrarEvent::Unregistered { owner, contact } => {
            info!(agent = %owner, %contact, "agent unregistered")
        }
        RegistrarEvent::Expired { owner, contact } => {
            info!(agent = %owner, %contact, "agent registration expired")
        }
    }
}

/// Log and count a failed digest authentication.
pub(super) fn log_auth_failed(status: &Status, from: SocketAddr, method: &str) {
    status.auth_failed();
    if method == "REGISTER" {
        warn!(%from, "REGISTER refused: wrong password or unknown user")
    } else {
        warn!(%from, method, "feature call refused: wrong password or unknown user")
    }
}
