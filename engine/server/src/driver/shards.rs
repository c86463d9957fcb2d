//! Several engine loops ("shards", `--shards N`): each on a thread of its own with its own
//! runtime, engine ([`Engine::new_shard`]), media sockets (RTP ports from one pool for all) and
//! voicemail writer; a call lives on the shard its Call-ID hashes to ([`route::Router`]).
//!
//! The control thread (the caller's runtime) keeps what is one for the process: the SIP
//! sockets and connections (their readers route each message to its shard, through the
//! source gate), the [`Hub`] (queues, agents, the registrar), reloads, the staff's
//! requests, the queue log and the stop. Shards reach the hub by messages and hear back
//! on a link of their own ([`ShardCtl`]); nothing is shared but counters, the call slots
//! and the lateness histograms (one per loop).

use super::*;
use ivr_engine::admission::SourceGate;
use ivr_engine::call_slots::CallSlots;
use ivr_engine::hub::Hub;
use ivr_engine::hub_msg::HubOutput;
use ivr_engine::shard::ShardSpec;
use ivr_sip::route_key::RouteKey;

/// Run `server` with `server.config.shards` loops until `shutdown` resolves and every
/// loop has stopped.
pub(super) async fn run(
    server: Server,
    menus: Arc<Menus>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let Server {
        hangup,
        udp,
        tcp,
        tls,
        config,
        local,
        tx,
        mut rx,
    } = server;
    let n = config.shards;
    let ports = PortPool::new(config.rtp_ports.clone());
    config.status.lateness.split(usize::from(n));
    let key = RouteKey::new(random_bytes());
    let (inputs, receivers): (Vec<_>, Vec<_>) =
        (0..n).map(|_| mpsc::channel::<NetIn>(16_384)).unzip();
    let (ctls, ctl_rxs): (Vec<_>, Vec<_>) = (0..n)
        .map(|_| mpsc::unbounded_channel::<ShardCtl>())
        .unzip();
    let gate = SourceGate::new(config.admission, config.trusted_proxies.clone());
    let router = Arc::new(route::Router::new(
        inputs.clone(),
        &ctls,
        key,
        gate,
        config.status.clone(),
    ));
    let sip_in = SipIn::Shards(router.clone());
    let tls_addr = tls.as_ref().map(|(_, a)| *a);
    let (hub_tx, mut hub_rx) = mpsc::unbounded_channel::<(ShardId, HubMsg)>();
    let (exited_tx, mut exited_rx) = mpsc::unbounded_channel::<(ShardId, bool)>();
    let slots = CallSlots::new(config.max_calls);
    let source_calls = ivr_engine::admission::SourceCalls::default();
    let mut stops = Vec::new();
    let mut readies = Vec::new();
    for ((i, rx), ctl_rx) in (0..n).zip(receivers).zip(ctl_rxs) {
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = oneshot::channel::<std::io::Result<()>>();
        stops.push(stop_tx);
        readies.push(ready_rx);
        let mut engine_config = engine_config(&config, local, tls_addr);
        engine_config.seed ^= u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        engine_config.shard = ShardSpec {
            index: i,
            count: n,
            key,
        };
        engine_config.call_slots = Some(slots.clone());
        engine_config.source_calls = Some(source_calls.clone());
        engine_config.gate_in_front = true;
        engine_config.admission = config.admission.for_shards(n);
        let shard = Shard {
            index: i,
            config: config.clone(),
            engine_config,
            menus: menus.clone(),
            udp: udp.clone(),
            ports: ports.clone(),
            tx: inputs[usize::from(i)].clone(),
            rx,
            ctl: ctl_rx,
            stop: stop_rx,
            link: ShardLink {
                index: i,
                hub: hub_tx.clone(),
                router: router.clone(),
            },
            sip_in: sip_in.clone(),
        };
        let exited = Exited(exited_tx.clone(), i);
        std::thread::Builder::new()
            .name(format!("ivr-shard-{i}"))
            .spawn(move || {
                // Dropped as the thread ends, by a return or a panic.
                let _exited = exited;
                shard.run(ready_tx);
            })?;
    }
    drop(exited_tx);
    for ready in readies {
        match ready.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(std::io::Error::other("a shard's thread ended at start")),
        }
    }
    info!(shards = n, "engine shards running, one thread each");
    spawn_readers(&config, udp, tcp, tls, hangup, &sip_in, &tx);
    let mut reloader = Reloader::start(&config, tx.clone());
    let now = Instant::now();
    let mut hub = Hub::new(menus, seed(), n, config.registrar, random_bytes::<32>());
    hub.handle(now, HubMsg::WallClock(std::time::SystemTime::now()));
    hub.handle(now, HubMsg::Sync);
    if let Some(list) = waiting_callbacks(&config.store).await {
        hub.handle(now, HubMsg::RestoreCallbacks(list));
    }
    let mut w = Stores::new(&config);
    // The queue log learns that agent states of a previous run are over.
    w.queue_rows.push(ivr_queues::log::Row::new(
        crate::clock::unix_millis(std::time::SystemTime::now()),
        ivr_queues::log::Kind::Start,
    ));
    let mut control = Control {
        hub,
        ctls,
        router,
        status: config.status.clone(),
        w,
        board_dirty: true,
    };
    control.settle(now);
    control
        .status
        .queues(&control.hub.queues_waiting(), &control.hub.agent_states());

    let mut wall_tick = tokio::time::interval(Duration::from_secs(60));
    tokio::pin!(shutdown);
    let mut running = usize::from(n);
    let mut failed: Option<ShardId> = None;
    let mut give_up: Option<tokio::time::Instant> = None;
    let mut timers_first = false;
    loop {
        // As in a shard's loop: due hub timers (queue and ring timeouts, registrations'
        // expiry) and the stop's deadline are taken before more input, once a turn; the
        // select below prefers the shards' messages, and under a steady stream of them
        // (a REGISTER flood through every shard) it would never reach its timer branch.
        let now = Instant::now();
        if give_up.is_some_and(|g| tokio::time::Instant::now() >= g) {
            warn!(running, "stop: gave up waiting for shards to end");
            break;
        }
        if !timers_first && control.hub.poll_timeout().is_some_and(|d| d <= now) {
            timers_first = true;
            control.hub.handle_timeout(now);
            control.settle(now);
            continue;
        }
        timers_first = false;
        let wake = [
            control
                .hub
                .poll_timeout()
                .map(tokio::time::Instant::from_std),
            give_up,
        ]
        .into_iter()
        .flatten()
        .min();
        tokio::select! {
            biased;
            // The stop first: it is taken once, and no flood of messages may hold it up.
            _ = &mut shutdown, if give_up.is_none() => {
                log_pacing(&config.status.lateness);
                log_stop(slots.in_use(), config.drain);
                control.w.stopping = true;
                for stop in stops.drain(..) {
                    let _ = stop.send(());
                }
                // Each shard ends by itself within the drain, the grace and its writes'
                // wait; past that (and a margin) the process does not wait any longer.
                give_up = Some(
                    tokio::time::Instant::now()
                        + config.drain
                        + config.shutdown_grace
                        + STOP_WAIT
                        + Duration::from_secs(2),
                );
            }
            Some((shard, msg)) = hub_rx.recv() => {
                let now = Instant::now();
                control.hub.handle_from(now, shard, msg);
                for _ in 0..256 {
                    match hub_rx.try_recv() {
                        Ok((shard, msg)) => control.hub.handle_from(now, shard, msg),
                        Err(_) => break,
                    }
                }
                control.settle(now);
            }
            Some((shard, panicked)) = exited_rx.recv() => {
                if give_up.is_none() {
                    // A shard's calls are gone with it: the process must not go on
                    // answering as if nothing happened (a single loop's panic ends it too).
                    tracing::error!(shard, "an engine shard stopped unexpectedly: exiting");
                    return Err(std::io::Error::other(format!("engine shard {shard} stopped unexpectedly")));
                }
                if panicked {
                    // Its calls' records and recordings may be lost: the exit says so.
                    tracing::error!(shard, "an engine shard failed during the stop");
                    failed = Some(shard);
                }
                running -= 1;
                if running == 0 {
                    break;
                }
            }
            msg = rx.recv() => {
                let Some(msg) = msg else { break };
                if let Some(msg) = reloader.take(msg, |menus| control.reload(menus)) {
                    control.request(msg);
                }
            }
            _ = wall_tick.tick() => {
                let now = Instant::now();
                control.hub.handle(now, HubMsg::WallClock(std::time::SystemTime::now()));
                control.settle(now);
            }
            _ = async { match wake { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => {
                if give_up.is_some_and(|g| tokio::time::Instant::now() >= g) {
                    warn!(running, "stop: gave up waiting for shards to end");
                    break;
                }
                let now = Instant::now();
                control.hub.handle_timeout(now);
                control.settle(now);
            }
        }
    }
    // The queue log's last rows and the queued callbacks' records.
    control.w.store_queue_rows();
    let mut stores = control.w.stores;
    let wait = async { while stores.join_next().await.is_some() {} };
    if tokio::time::timeout(STOP_WAIT, wait).await.is_err() {
        warn!("stop: gave up waiting for the queue log's writes");
    }
    // A single loop's panic fails the process too.
    match failed {
        Some(shard) => Err(std::io::Error::other(format!(
            "engine shard {shard} failed during the stop"
        ))),
        None => Ok(()),
    }
}

/// Tells the control thread that a shard's thread ended, when dropped, and whether by a
/// panic.
struct Exited(mpsc::UnboundedSender<(ShardId, bool)>, ShardId);

impl Drop for Exited {
    fn drop(&mut self) {
        let _ = self.0.send((self.1, std::thread::panicking()));
    }
}

/// The control thread's side: the hub and what it reaches.
struct Control {
    hub: Hub,
    /// Each shard's link from here.
    ctls: Vec<mpsc::UnboundedSender<ShardCtl>>,
    /// The source gate (failed authentications are counted there).
    router: Arc<route::Router>,
    status: Arc<Status>,
    /// The queue log and the queued callbacks' records.
    w: Stores,
    /// The staff's queue view is out of date.
    board_dirty: bool,
}

impl Control {
    /// After the hub took something: what it left for its next sync, then its outputs.
    fn settle(&mut self, now: Instant) {
        if self.hub.has_pending() {
            self.hub.handle(now, HubMsg::Sync);
        }
        let mut queues = false;
        while let Some(out) = self.hub.poll_output() {
            match out {
                HubOutput::Shard { shard, msg } => match self.ctls.get(usize::from(shard)) {
                    Some(ctl) => {
                        let _ = ctl.send(ShardCtl::Hub(msg));
                    }
                    None => warn!(shard, "the hub addressed a shard that does not exist"),
                },
                HubOutput::Event {
                    call,
                    call_id,
                    at,
                    event,
                } => {
                    // The fields of the call's own span on its shard, so that a call's
                    // lines are found together.
                    let span = match (call, call_id.as_deref()) {
                        (Some(call), Some(id)) => info_span!("call", %call, call_id = %id),
                        (Some(call), None) => info_span!("call", %call),
                        _ => Span::none(),
                    };
                    span.in_scope(|| crate::queue_log::log(&event));
                    self.w
                        .queue_rows
                        .push(crate::queue_log::row(&event, at, call_id.as_deref()));
                    queues = true;
                    self.board_dirty = true;
                }
                HubOutput::QueueCallback(cmd) => self.w.store_queue_callback(cmd),
                HubOutput::AuthFailed { from, method } => {
                    self.router.auth_failed(from);
                    io::log_auth_failed(&self.status, from, method);
                }
                HubOutput::Agent { change, registered } => {
                    io::log_agent(&self.status, change, registered);
                    self.board_dirty = true;
                }
            }
        }
        if queues {
            self.status
                .queues(&self.hub.queues_waiting(), &self.hub.agent_states());
        }
        self.w.store_queue_rows();
        if std::mem::take(&mut self.board_dirty) {
            self.status.board.publish(self.hub.queue_view(now), now);
        }
    }

    /// New menus: the hub first, so that no shard joins a queue the hub has not heard of,
    /// then every shard (an INVITE read after the admin's reply is behind them).
    fn reload(&mut self, menus: Arc<Menus>) {
        let now = Instant::now();
        self.hub.reload(menus.clone());
        self.settle(now);
        for ctl in &self.ctls {
            let _ = ctl.send(ShardCtl::SetMenus(menus.clone()));
        }
    }

    /// A request from the HTTP side.
    fn request(&mut self, msg: NetIn) {
        let now = Instant::now();
        match msg {
            NetIn::Agent {
                agent,
                action,
                by,
                reply,
            } => {
                let name = action.name();
                let r = self.hub.agent_request(&agent, action);
                if r.is_ok() {
                    info!(%agent, action = name, %by, "agent request");
                }
                self.board_dirty = true;
                let _ = reply.send(r);
            }
            NetIn::CancelCallback(id) => self.hub.handle(now, HubMsg::CancelCallback(id)),
            other => debug!(?other, "not for the control thread"),
        }
        self.settle(now);
    }
}

/// One shard, before its thread runs it.
struct Shard {
    index: ShardId,
    config: ServerConfig,
    engine_config: EngineConfig,
    menus: Arc<Menus>,
    udp: Arc<UdpSocket>,
    ports: PortPool,
    tx: mpsc::Sender<NetIn>,
    rx: mpsc::Receiver<NetIn>,
    ctl: mpsc::UnboundedReceiver<ShardCtl>,
    stop: oneshot::Receiver<()>,
    link: ShardLink,
    sip_in: SipIn,
}

impl Shard {
    /// Run on this thread until the shard's calls are over after the stop; `ready` hears
    /// whether it started.
    fn run(self, ready: oneshot::Sender<std::io::Result<()>>) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        runtime.block_on(self.serve(ready));
    }

    async fn serve(self, ready: oneshot::Sender<std::io::Result<()>>) {
        let Shard {
            index,
            config,
            engine_config,
            menus,
            udp,
            ports,
            tx,
            mut rx,
            mut ctl,
            stop,
            link,
            sip_in,
        } = self;
        // The media set registers with this thread's runtime; the writer reports here.
        let started = spawn_recorder(&config, tx.clone())
            .and_then(|recorder| MediaSet::new().map(|(poll, media)| (recorder, poll, media)));
        let (recorder, poll, media) = match started {
            Ok(s) => s,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        let span = info_span!("shard", shard = index);
        let _entered = span.enter();
        let mut engine = Engine::new_shard(engine_config, menus);
        engine.handle_input(
            Instant::now(),
            Input::WallClock(std::time::SystemTime::now()),
        );
        let mut media_wait = media::MediaWait::new(poll);
        let mut io = Io::new(&config, udp, media, ports, tx, sip_in, recorder, Some(link));
        let stop = Stopping {
            signal: async {
                let _ = stop.await;
            },
            drain: config.drain,
            grace: config.shutdown_grace,
        };
        engine_loop(
            &mut engine,
            &mut io,
            &mut media_wait,
            &mut rx,
            Some(&mut ctl),
            stop,
            None,
        )
        .await;
        finish(io, &mut rx).await;
    }
}

/// Secret bytes from the operating system.
fn random_bytes<const N: usize>() -> [u8; N] {
    use rand_core::RngCore;
    let mut b = [0u8; N];
    rand_core::OsRng.fill_bytes(&mut b);
    b
}
