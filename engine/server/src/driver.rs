//! The I/O loop around the engine.
//!
//! One task owns the [`Engine`]. The loop reads the media sockets itself (see [`media`]);
//! the SIP sockets' reader tasks and the other sides send what they have through one bounded
//! channel. The loop feeds both to the engine, performs every [`Output`], and sleeps until the
//! engine's next deadline. No lock is held anywhere and nothing awaits while holding engine
//! state: sends use `try_send_to` (a full socket buffer drops the packet, like the network would).

use crate::config::Sources;
use crate::ports::PortPool;
use crate::record_queue;
use crate::recorder::{Recorder, WriterOut};
use crate::reload::{Loaded, Reloads, Watcher};
use crate::status::{ReloadOutcome, Status};
use bytes::{Bytes, BytesMut};
use ivr_engine::{CallHandle, EndReason, Engine, EngineConfig, Event, Input, LegHandle, Output};
use ivr_menus::Menus;
use ivr_sip::Transport;
use ivr_sip::framing::{Frame, StreamFramer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tracing::{Span, debug, info, info_span, warn};

pub mod alarm;
mod io;
pub mod media;
mod net;
mod reloading;
mod route;
mod shards;
mod stores;
use io::{Io, ShardLink};
use ivr_engine::hub_msg::{HubMsg, ShardId, ShardMsg};
use media::MediaSet;
pub(crate) use net::run_tcp;
use net::{
    listen_tcp, seed, set_buffers, spawn_sighup, spawn_tcp_acceptor, spawn_udp_reader, srtp_seed,
};
use reloading::Reloader;
pub(crate) use route::SipIn;
use stores::Stores;

/// What the driver needs to run.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// SIP listen address (UDP and TCP); port 0 picks a free port.
    pub listen: SocketAddr,
    /// RTP port range.
    pub rtp_ports: RangeInclusive<u16>,
    /// Calls beyond this get 503.
    pub max_calls: usize,
    /// Silence on the caller's side for this long ends the call.
    pub media_timeout: Duration,
    /// A hold with no media for this long ends the call.
    pub hold_timeout: Duration,
    /// After a shutdown request, exit at the latest after this long (after the drain).
    pub shutdown_grace: Duration,
    /// After a shutdown request, keep the calls in progress this long (refusing new calls and
    /// answering OPTIONS with 503) before hanging up the rest; zero hangs up at once.
    pub drain: Duration,
    /// Proxies whose P-Asserted-Identity is believed (RFC 3325).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// DNS servers for destinations given as host names; empty: the system's resolver.
    pub dns_servers: Vec<SocketAddr>,
    /// Per-source limits and the cap on calls waiting for their ACK.
    pub admission: ivr_engine::admission::AdmissionConfig,
    /// How long to send RTP toward a peer that has sent nothing (`None`: no limit).
    pub send_without_peer: Option<Duration>,
    /// Ring this long before answering.
    pub answer_delay: Duration,
    /// Session timers (RFC 4028): our Min-SE and preferred interval.
    pub session_timer: ivr_sip::session_timer::Policy,
    /// Agents' registrations (expiry bounds, challenge order).
    pub registrar: ivr_sip::registrar::RegistrarConfig,
    /// The config file, if one was given: it is watched, and reloaded on change or SIGHUP.
    pub config_path: Option<std::path::PathBuf>,
    /// The files the running config was loaded from (watched for changes).
    pub config_sources: Sources,
    /// Where `say:` prompts rendered by text-to-speech are kept.
    pub tts_cache: std::path::PathBuf,
    /// Counters and config state, shared with the HTTP side.
    pub status: Arc<Status>,
    /// Where voicemail recordings are written.
    pub voicemail_dir: std::path::PathBuf,
    /// Where callback requests are stored.
    pub store: ivr_voicemail::store::Store,
    /// How new requests are announced (webhook, e-mail): each gets outbox rows in the
    /// transaction that stores it.
    pub notify: ivr_voicemail::store::Notify,
    /// Caps and timeouts for SIP over TCP (and over TLS: one budget for both).
    pub sip_tcp: crate::conns::SipTcpLimits,
    /// SIP over TLS, if configured.
    pub sip_tls: Option<SipTls>,
    /// Engine loops, each on a thread of its own with its share of the calls (1: one loop
    /// on the caller's runtime, as before shards).
    pub shards: u16,
}

/// SIP over TLS: where it listens and with which certificate.
#[derive(Debug, Clone)]
pub struct SipTls {
    /// The address (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The certificate and key, reloaded when their files change.
    pub certs: Arc<crate::tls::CertStore>,
}

/// Inputs gathered by the reader tasks.
#[derive(Debug)]
pub(crate) enum NetIn {
    Sip {
        transport: Transport,
        from: SocketAddr,
        data: Bytes,
    },
    TcpOpen {
        peer: SocketAddr,
        tx: mpsc::Sender<Vec<u8>>,
    },
    TcpClosed {
        peer: SocketAddr,
    },
    /// Staff closed a queued callback (its store id): the engine cancels it.
    CancelCallback(String),
    /// DNS answered for a leg's next hop (RFC 3263).
    Located {
        leg: LegHandle,
        targets: Vec<ivr_sip::transaction::Peer>,
    },
    /// SIGHUP or an admin request: validate the config again; `reply` (an admin request)
    /// hears the outcome.
    ReloadRequested {
        why: &'static str,
        reply: Option<oneshot::Sender<ReloadOutcome>>,
    },
    /// The watcher saw these files written, created, renamed or removed.
    FilesChanged(Vec<std::path::PathBuf>),
    /// The result of loading the config off the loop.
    Reloaded(Box<Loaded>),
    /// A staff user asks for an agent's state change (see [`crate::desk`]).
    Agent {
        agent: String,
        action: ivr_engine::agent_desk::AgentAction,
        by: String,
        reply: oneshot::Sender<Result<(), ivr_engine::agent_desk::AgentRequestError>>,
    },
    /// From the voicemail writer, or a store result.
    Voicemail(WriterOut),
}

/// What the control thread tells a shard's loop (never dropped).
#[derive(Debug)]
pub(crate) enum ShardCtl {
    /// An answer of the hub.
    Hub(ShardMsg),
    /// New menus, for new calls (the hub has them already).
    SetMenus(Arc<Menus>),
    /// A connection may carry SIP to `peer` (see [`NetIn::TcpOpen`]). On this link, not
    /// the SIP input: the hub's messages caused by the connection's traffic (an offer to
    /// the agent who just registered over it) come after it, and a shard takes this link
    /// before each SIP message, so the connection's first message finds it too.
    TcpOpen {
        peer: SocketAddr,
        tx: mpsc::Sender<Vec<u8>>,
    },
    /// The connection to `peer` closed.
    TcpClosed { peer: SocketAddr },
}

/// The bound sockets, before the loop starts.
pub struct Server {
    hangup: Option<tokio::signal::unix::Signal>,
    udp: Arc<UdpSocket>,
    tcp: TcpListener,
    tls: Option<(TcpListener, SocketAddr)>,
    config: ServerConfig,
    local: SocketAddr,
    tx: mpsc::Sender<NetIn>,
    rx: mpsc::Receiver<NetIn>,
}

/// Talks to a running server's loop from elsewhere (the HTTP side).
#[derive(Clone)]
pub struct ServerHandle {
    pub(crate) tx: mpsc::Sender<NetIn>,
}

impl ServerHandle {
    /// Staff closed the queued callback `id`: cancel it in the queues (nothing if the loop
    /// has stopped or the engine no longer knows it).
    pub async fn cancel_callback(&self, id: String) {
        let _ = self.tx.send(NetIn::CancelCallback(id)).await;
    }

    /// Reload the config as SIGHUP would, and wait for the outcome (`None` if the loop has
    /// stopped).
    pub async fn reload(&self) -> Option<ReloadOutcome> {
        let (reply, outcome) = oneshot::channel();
        self.tx
            .send(NetIn::ReloadRequested {
                why: "admin request",
                reply: Some(reply),
            })
            .await
            .ok()?;
        outcome.await.ok()
    }
}

impl Server {
    /// Bind UDP and TCP on the same address (with port 0: the same free port for both).
    pub async fn bind(config: ServerConfig) -> std::io::Result<Server> {
        let mut last_err = None;
        for _ in 0..20 {
            let udp = UdpSocket::bind(config.listen).await?;
            let local = udp.local_addr()?;
            match listen_tcp(local) {
                Ok(tcp) => {
                    set_buffers(&udp);
                    // Registered now, before the address is announced, so an early SIGHUP
                    // reloads instead of killing the process.
                    let hangup = match &config.config_path {
                        Some(_) => Some(tokio::signal::unix::signal(
                            tokio::signal::unix::SignalKind::hangup(),
                        )?),
                        None => None,
                    };
                    let tls = match &config.sip_tls {
                        Some(t) => {
                            let l = listen_tcp(t.listen)?;
                            let a = l.local_addr()?;
                            Some((l, a))
                        }
                        None => None,
                    };
                    let (tx, rx) = mpsc::channel::<NetIn>(16_384);
                    return Ok(Server {
                        hangup,
                        udp: Arc::new(udp),
                        tcp,
                        tls,
                        config,
                        local,
                        tx,
                        rx,
                    });
                }
                Err(e) if config.listen.port() == 0 => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| std::io::Error::other("could not bind")))
    }

    /// The SIP address bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The SIP-over-TLS address bound, if TLS listens.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().map(|(_, a)| *a)
    }

    /// A handle for asking the loop things once it runs.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            tx: self.tx.clone(),
        }
    }

    /// Run until shut down by `shutdown` resolving (then hang up every call and return).
    pub async fn run(
        self,
        menus: Arc<Menus>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        if self.config.shards > 1 {
            return shards::run(self, menus, shutdown).await;
        }
        let (tx, mut rx) = (self.tx, self.rx);
        let sip_in = SipIn::One(tx.clone());
        let tls_addr = self.tls.as_ref().map(|(_, a)| *a);
        spawn_readers(
            &self.config,
            self.udp.clone(),
            self.tcp,
            self.tls,
            self.hangup,
            &sip_in,
            &tx,
        );
        let mut reloader = Reloader::start(&self.config, tx.clone());
        let status = self.config.status.clone();
        let recorder = spawn_recorder(&self.config, tx.clone())?;
        let engine_config = engine_config(&self.config, self.local, tls_addr);
        let mut engine = Engine::new(engine_config, menus);
        let (media_poll, media) = MediaSet::new()?;
        let mut media_wait = media::MediaWait::new(media_poll);
        let ports = PortPool::new(self.config.rtp_ports.clone());
        let mut io = Io::new(
            &self.config,
            self.udp,
            media,
            ports,
            tx,
            sip_in,
            recorder,
            None,
        );
        engine.handle_input(
            Instant::now(),
            Input::WallClock(std::time::SystemTime::now()),
        );
        if let Some(list) = waiting_callbacks(&self.config.store).await {
            engine.handle_input(Instant::now(), Input::RestoreCallbacks(list));
            status.queues(&engine.queues_waiting(), &engine.agent_states());
        }
        let stop = Stopping {
            signal: shutdown,
            drain: self.config.drain,
            grace: self.config.shutdown_grace,
        };
        engine_loop(
            &mut engine,
            &mut io,
            &mut media_wait,
            &mut rx,
            None,
            stop,
            Some(&mut reloader),
        )
        .await;
        finish(io, &mut rx).await;
        Ok(())
    }
}

/// Start reading SIP: UDP, TCP, TLS if configured, and SIGHUP's reload requests.
fn spawn_readers(
    config: &ServerConfig,
    udp: Arc<UdpSocket>,
    tcp: TcpListener,
    tls: Option<(TcpListener, SocketAddr)>,
    hangup: Option<tokio::signal::unix::Signal>,
    sip_in: &SipIn,
    control: &mpsc::Sender<NetIn>,
) {
    spawn_udp_reader(udp, sip_in.clone());
    spawn_tcp_acceptor(tcp, sip_in.clone(), config.sip_tcp.clone());
    if let (Some((listener, _)), Some(t)) = (tls, &config.sip_tls) {
        crate::tls_sip::spawn_acceptor(
            listener,
            t.certs.acceptor(&[]),
            sip_in.clone(),
            config.sip_tcp.clone(),
        );
    }
    if let Some(hup) = hangup {
        spawn_sighup(hup, control.clone());
    }
}

/// The voicemail writer of one loop, reporting on `tx`.
fn spawn_recorder(config: &ServerConfig, tx: mpsc::Sender<NetIn>) -> std::io::Result<Recorder> {
    let fsync = config.status.recording_fsync();
    Recorder::spawn(config.voicemail_dir.clone(), fsync, move |out| {
        let _ = tx.blocking_send(NetIn::Voicemail(out));
    })
}

/// The engine's settings from the server's.
fn engine_config(
    config: &ServerConfig,
    local: SocketAddr,
    tls_addr: Option<SocketAddr>,
) -> EngineConfig {
    let mut engine_config = EngineConfig::new(local);
    engine_config.max_calls = config.max_calls;
    engine_config.media_timeout = config.media_timeout;
    engine_config.hold_timeout = config.hold_timeout;
    engine_config.seed = seed();
    engine_config.sip_tls_addr = tls_addr;
    engine_config.srtp_seed = srtp_seed();
    engine_config.answer_delay = config.answer_delay;
    engine_config.session_timer = config.session_timer;
    engine_config.registrar = config.registrar;
    engine_config.trusted_proxies = config.trusted_proxies.clone();
    engine_config.admission = config.admission;
    engine_config.send_without_peer = config.send_without_peer;
    // The loop's wake-ups are spaced (see alarm.rs): packets leave within half a spacing
    // of their time, either side.
    engine_config.rtp_send_lead = alarm::LEAD;
    engine_config
}

/// Queued callbacks still waiting at the last stop, to go back in line, oldest first
/// (`None`: none, or the store could not say).
async fn waiting_callbacks(
    store: &ivr_voicemail::store::Store,
) -> Option<Vec<ivr_engine::RestoredCallback>> {
    match store.pending_queue_callbacks().await {
        Ok(pending) if !pending.is_empty() => {
            let list: Vec<ivr_engine::RestoredCallback> = pending
                .into_iter()
                .filter_map(|s| {
                    Some(ivr_engine::RestoredCallback {
                        queue: s.request.queue?,
                        number: s.request.callback_number?,
                        priority: s.request.priority,
                        id: s.request.id,
                    })
                })
                .collect();
            info!(count = list.len(), "queued callbacks back in line");
            Some(list)
        }
        Ok(_) => None,
        Err(e) => {
            warn!(error = %e, "cannot read the queued callbacks waiting in the store");
            None
        }
    }
}

/// How a loop learns it must stop, and the stop's times.
struct Stopping<F> {
    /// Resolves when the server is asked to stop.
    signal: F,
    /// How long calls in progress may go on.
    drain: Duration,
    /// How long after the drain the loop still waits for calls to end.
    grace: Duration,
}

/// Say how the server stops, with the calls in progress (one line for the process).
fn log_stop(calls: usize, drain: Duration) {
    if drain.is_zero() {
        info!(
            calls,
            "shutting down: refusing new calls, hanging up active calls"
        );
    } else {
        info!(
            calls,
            drain_secs = drain.as_secs(),
            "draining: refusing new calls (OPTIONS and INVITE get 503), letting active calls finish"
        );
    }
}

/// Log the run's RTP pacing lateness (every loop's, as one).
fn log_pacing(p: &crate::lateness::Lateness) {
    if p.count() > 0 {
        info!(target: "ivr::stats", packets = p.count(), p50_ms = p.percentile_ms(0.5), p99_ms = p.percentile_ms(0.99), max_ms = p.percentile_ms(1.0), "rtp pacing lateness");
    } else {
        info!(target: "ivr::stats", packets = 0, "rtp pacing lateness: no packet sent");
    }
}

/// One engine's loop, until its calls are over after a stop: due timers first, the media
/// read on the loop's ticks, then a biased select of the inputs. `ctl` is a shard's link
/// from the control thread; `reloader` the single loop's reloads.
async fn engine_loop(
    engine: &mut Engine,
    io: &mut Io,
    media_wait: &mut media::MediaWait,
    rx: &mut mpsc::Receiver<NetIn>,
    mut ctl: Option<&mut mpsc::UnboundedReceiver<ShardCtl>>,
    stop: Stopping<impl std::future::Future<Output = ()>>,
    mut reloader: Option<&mut Reloader>,
) {
    let mut wall_tick = tokio::time::interval(Duration::from_secs(60));
    // The deadlines' sleep, to the microsecond (see alarm.rs); the runtime's millisecond
    // timer if the system gives no timerfd.
    let mut alarm = match alarm::Alarm::new() {
        Ok(a) => Some(a),
        Err(e) => {
            warn!(error = %e, "no timerfd: RTP is paced to the millisecond");
            None
        }
    };
    let shutdown = stop.signal;
    tokio::pin!(shutdown);
    let mut exit_at: Option<tokio::time::Instant> = None;
    // While draining: when the calls still in progress are hung up.
    let mut hang_up_at: Option<tokio::time::Instant> = None;
    let mut timers_first = false;
    loop {
        let mut deadline = io.drain(engine);
        if io.drained {
            break;
        }
        // Due timers run before more input is taken: the select below prefers input, and
        // under a steady stream of packets it could otherwise keep RTP pacing waiting.
        // Once per turn, so input is never shut out either.
        if !timers_first && deadline.is_some_and(|d| d <= Instant::now()) {
            timers_first = true;
            engine.handle_input(Instant::now(), Input::Timeout);
            continue;
        }
        timers_first = false;
        // The stop's deadlines are checked on every turn, not only when the loop sleeps:
        // under a steady stream of input the select below never sleeps. The hang-up comes
        // first, so calls still in progress are ended (BYE, call record) before the exit.
        let now = tokio::time::Instant::now();
        if hang_up_at.is_some_and(|h| now >= h) {
            hang_up_at = None;
            info!(
                calls = engine.call_count(),
                "drain time over: hanging up the calls still in progress"
            );
            engine.handle_input(Instant::now(), Input::Shutdown);
            continue;
        }
        if exit_at.is_some_and(|e| now >= e) {
            warn!("shutdown grace period over; exiting with calls still ending");
            break;
        }
        // Many calls: the media sockets are read on the loop's own wake-ups.
        media_wait.adapt(io.media.legs());
        if media_wait.take_due(now) {
            io.read_media(media_wait, engine);
            // On to the select, not round the loop: with the timers' turn above, going
            // round could, once a turn takes over 1 ms (a flood on many ports), alternate
            // timers and reads without ever reaching the select, shutting SIP and the stop
            // signal out for as long as the load lasted.
            deadline = io.drain(engine);
            if io.drained {
                break;
            }
        }
        let sleep_until = [
            deadline.map(tokio::time::Instant::from_std),
            exit_at,
            hang_up_at,
            media_wait.deadline(),
        ]
        .into_iter()
        .flatten()
        .min();
        tokio::select! {
            biased;
            // The stop first (it is taken once): under a flood of SIP the input is never
            // empty, and a shard's input is always ready when the shard is behind, so no
            // branch after it would ever be reached (the stop deadlines are checked at the
            // top of each turn).
            _ = &mut shutdown, if exit_at.is_none() => {
                if io.shard.is_none() {
                    log_pacing(&io.status.lateness);
                }
                let now = tokio::time::Instant::now();
                io.w.stopping = true;
                if io.shard.is_none() {
                    log_stop(engine.call_count(), stop.drain);
                }
                if stop.drain.is_zero() {
                    engine.handle_input(Instant::now(), Input::Shutdown);
                } else {
                    engine.handle_input(Instant::now(), Input::Drain);
                    hang_up_at = Some(now + stop.drain);
                }
                exit_at = Some(now + stop.drain + stop.grace);
            }
            // The control thread's messages (hub answers, new menus) before SIP: never
            // dropped, never left waiting behind a flood.
            msg = async { match ctl.as_deref_mut() { Some(c) => c.recv().await, None => std::future::pending().await } } => {
                match msg {
                    Some(m) => io.control(engine, m),
                    // The control thread is gone: the process is ending.
                    None => break,
                }
            }
            msg = rx.recv() => {
                let Some(msg) = msg else { break };
                // Then what else is already queued, before sleeping again (bounded, for
                // fairness). Every message of the batch goes the same way as the first:
                // a reload's request or its loaded config taken here must not be lost.
                let (mut next, mut more) = (Some(msg), 256);
                while let Some(msg) = next.take() {
                    // A shard: what the control thread sent before this message goes
                    // first (new menus before an INVITE sent once the reload was answered).
                    if let Some(c) = ctl.as_deref_mut() {
                        while let Ok(m) = c.try_recv() {
                            io.control(engine, m);
                        }
                    }
                    let msg = match reloader.as_deref_mut() {
                        Some(r) => r.take(msg, |menus| engine.set_menus(menus)),
                        None => Some(msg),
                    };
                    if let Some(msg) = msg {
                        io.feed_now(engine, msg);
                    }
                    if more == 0 {
                        break;
                    }
                    more -= 1;
                    next = rx.try_recv().ok();
                }
                // The channel goes first when both are ready: the media sockets get their
                // turn here too, so a stream of SIP never shuts the calls' audio out.
                io.read_media(media_wait, engine);
            }
            // The clock before the media: under a flood that leaves datagrams every turn
            // the media branch is always ready, and a biased select would never look
            // further. (Due timers are taken at the top of the loop.)
            _ = wall_tick.tick() => {
                // Keeps schedules right if the system clock is stepped (NTP, DST is not a step).
                engine.handle_input(Instant::now(), Input::WallClock(std::time::SystemTime::now()));
            }
            () = media_wait.readable() => {
                io.read_media(media_wait, engine);
            }
            _ = async {
                match (sleep_until, alarm.as_mut()) {
                    (Some(t), Some(a)) => a.wait(t.into_std()).await,
                    (Some(t), None) => tokio::time::sleep_until(t).await,
                    (None, _) => std::future::pending().await,
                }
            } => {
                // A stop deadline that woke us is taken at the top of the next turn.
                engine.handle_input(Instant::now(), Input::Timeout);
            }
        }
    }
}

/// After a loop: its last call records go to the store, then the stop waits for the
/// voicemail writer and every store write in flight.
async fn finish(mut io: Io, rx: &mut mpsc::Receiver<NetIn>) {
    // Records of the last calls (those hung up by the stop too) go to the store now; the
    // stop below waits for them.
    io.w.store_call_records(true);
    let Io { recorder, w, .. } = io;
    let (stop, stores) = w.into_stop();
    stop.finish_writes(recorder, stores, rx).await;
}

/// How long a stop waits for the voicemail writer and the store writes in flight.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// What the exit needs to store the requests still on their way.
struct Stop {
    store: ivr_voicemail::store::Store,
    dir: std::path::PathBuf,
    notify: ivr_voicemail::store::Notify,
    status: Arc<Status>,
}

impl Stop {
    /// Let the writer finish every recording, and wait for every store write: those in
    /// flight and those the writer hands over now; at most [`STOP_WAIT`], logged if it gives
    /// up (what is not stored then keeps its files, stored as recovered at the next start).
    /// Without this wait, a request whose store task was still running was dropped at exit.
    async fn finish_writes(
        self,
        recorder: Recorder,
        mut stores: tokio::task::JoinSet<()>,
        rx: &mut mpsc::Receiver<NetIn>,
    ) {
        info!(
            stores_in_flight = stores.len(),
            "stop: waiting for the voicemail writer and the store writes in flight"
        );
        let give_up = tokio::time::sleep(STOP_WAIT);
        tokio::pin!(give_up);
        // A thread of its own for the join: the writer may still be writing, and a detached
        // thread never holds the exit up once we give up.
        let (done_tx, mut writer) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("voicemail-finish".into())
            .spawn(move || {
                recorder.finish();
                let _ = done_tx.send(());
            })
            .ok();
        let mut writer_done = false;
        let mut late = 0usize;
        loop {
            if writer_done && stores.is_empty() {
                // The writer is gone: everything it handed over is already queued.
                let mut more = false;
                while let Ok(msg) = rx.try_recv() {
                    more |= self.take(msg, &mut stores);
                }
                if !more {
                    break;
                }
            }
            tokio::select! {
                _ = &mut writer, if !writer_done => writer_done = true,
                Some(msg) = rx.recv() => {
                    if self.take(msg, &mut stores) {
                        late += 1;
                    }
                }
                Some(_) = stores.join_next(), if !stores.is_empty() => {}
                _ = &mut give_up => {
                    warn!(writer_done, stores_in_flight = stores.len(), wait_secs = STOP_WAIT.as_secs(), "stop: gave up waiting for voicemail writes; their files stay for recovery at the next start");
                    return;
                }
            }
        }
        info!(
            handed_over_at_stop = late,
            "stop: every recording finished and every store write done"
        );
    }

    /// Store a request the writer hands over during the stop; `true` if `msg` was one.
    fn take(&self, msg: NetIn, stores: &mut tokio::task::JoinSet<()>) -> bool {
        let NetIn::Voicemail(WriterOut::Store { request, .. }) = msg else {
            return false;
        };
        let (store, dir, notify, status) = (
            self.store.clone(),
            self.dir.clone(),
            self.notify,
            self.status.clone(),
        );
        stores.spawn(async move {
            let ok = store_request(&store, &dir, &request, notify).await;
            status.callbacks.record(ok);
        });
        true
    }
}

/// Store a request whose files are durable; on success its json is no longer needed.
async fn store_request(
    store: &ivr_voicemail::store::Store,
    dir: &std::path::Path,
    request: &ivr_voicemail::CallbackRequest,
    notify: ivr_voicemail::store::Notify,
) -> bool {
    let now = crate::clock::unix_now();
    match store.insert(request, false, now, notify).await {
        Ok(_) => {
            let _ = std::fs::remove_file(dir.join(format!("{}.json", request.id)));
            info!(id = %request.id, mailbox = %request.mailbox, number = request.callback_number.as_deref().unwrap_or(""), duration_ms = request.duration_ms, "callback request stored");
            true
        }
        Err(e) => {
            tracing::error!(id = %request.id, error = %e, "cannot store the callback request; its files stay for recovery at the next start");
            false
        }
    }
}
