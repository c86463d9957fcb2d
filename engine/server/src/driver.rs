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

pub mod media;
mod net;
use media::MediaSet;
pub(crate) use net::run_tcp;
use net::{
    listen_tcp, seed, set_buffers, spawn_sighup, spawn_tcp_acceptor, spawn_udp_reader, srtp_seed,
};

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
        let (tx, mut rx) = (self.tx, self.rx);
        spawn_udp_reader(self.udp.clone(), tx.clone());
        spawn_tcp_acceptor(self.tcp, tx.clone(), self.config.sip_tcp.clone());
        let tls_addr = self.tls.as_ref().map(|(_, a)| *a);
        if let (Some((listener, _)), Some(t)) = (self.tls, &self.config.sip_tls) {
            crate::tls_sip::spawn_acceptor(
                listener,
                t.certs.acceptor(&[]),
                tx.clone(),
                self.config.sip_tcp.clone(),
            );
        }
        // Keep the watcher alive as long as the loop runs.
        if let Some(hup) = self.hangup {
            spawn_sighup(hup, tx.clone());
        }
        let mut sources = self.config.config_sources.clone();
        let mut watcher = self.config.config_path.as_ref().and_then(|_| {
            let tx = tx.clone();
            Watcher::start(&sources, move |paths| {
                let _ = tx.blocking_send(NetIn::FilesChanged(paths));
            })
        });
        let mut reloads = Reloads::default();
        let status = self.config.status.clone();
        let recorder = {
            let tx = tx.clone();
            let fsync = status.recording_fsync();
            Recorder::spawn(self.config.voicemail_dir.clone(), fsync, move |out| {
                let _ = tx.blocking_send(NetIn::Voicemail(out));
            })?
        };

        let mut engine_config = EngineConfig::new(self.local);
        engine_config.max_calls = self.config.max_calls;
        engine_config.media_timeout = self.config.media_timeout;
        engine_config.hold_timeout = self.config.hold_timeout;
        engine_config.seed = seed();
        engine_config.sip_tls_addr = tls_addr;
        engine_config.srtp_seed = srtp_seed();
        engine_config.answer_delay = self.config.answer_delay;
        engine_config.session_timer = self.config.session_timer;
        engine_config.registrar = self.config.registrar;
        engine_config.trusted_proxies = self.config.trusted_proxies.clone();
        engine_config.admission = self.config.admission;
        engine_config.send_without_peer = self.config.send_without_peer;
        let mut engine = Engine::new(engine_config, menus);
        let (media_poll, media) = MediaSet::new()?;
        let mut media_wait = media::MediaWait::new(media_poll);
        let mut io = Io {
            udp: self.udp,
            tcp: HashMap::new(),
            media,
            ports: PortPool::new(self.config.rtp_ports.clone()),
            tx,
            spans: HashMap::new(),
            handoffs: HashMap::new(),
            drained: false,
            pacing: status.lateness.clone(),
            status: status.clone(),
            recorder,
            stores: tokio::task::JoinSet::new(),
            store: self.config.store.clone(),
            voicemail_dir: self.config.voicemail_dir.clone(),
            notify: self.config.notify,
            dns_servers: self.config.dns_servers.clone(),
            resolver: None,
            // The queue log learns that agent states of a previous run are over.
            queue_rows: vec![ivr_queues::log::Row::new(
                crate::clock::unix_millis(std::time::SystemTime::now()),
                ivr_queues::log::Kind::Start,
            )],
            board_dirty: true,
            call_records: record_queue::RecordQueue::default(),
            stopping: false,
        };

        engine.handle_input(
            Instant::now(),
            Input::WallClock(std::time::SystemTime::now()),
        );
        // Queued callbacks still waiting at the last stop go back in line, oldest first.
        match self.config.store.pending_queue_callbacks().await {
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
                engine.handle_input(Instant::now(), Input::RestoreCallbacks(list));
                io.status
                    .queues(&engine.queues_waiting(), &engine.agent_states());
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "cannot read the queued callbacks waiting in the store"),
        }
        let mut wall_tick = tokio::time::interval(Duration::from_secs(60));
        tokio::pin!(shutdown);
        let mut exit_at: Option<tokio::time::Instant> = None;
        // While draining: when the calls still in progress are hung up.
        let mut hang_up_at: Option<tokio::time::Instant> = None;
        let mut timers_first = false;
        loop {
            let mut deadline = io.drain(&mut engine);
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
                io.read_media(&mut media_wait, &mut engine);
                // On to the select, not round the loop: with the timers' turn above, going
                // round could, once a turn takes over 1 ms (a flood on many ports), alternate
                // timers and reads without ever reaching the select, shutting SIP and the stop
                // signal out for as long as the load lasted.
                deadline = io.drain(&mut engine);
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
                msg = rx.recv() => {
                    let Some(msg) = msg else { break };
                    let msg = match msg {
                        NetIn::ReloadRequested { why, reply } => {
                            if self.config.config_path.is_none() {
                                if let Some(r) = reply {
                                    let _ = r.send(ReloadOutcome::NoFile);
                                }
                                continue;
                            }
                            match reloads.request(reply, true) {
                                Some(forced) => start_load(&self.config, why, forced, &sources, &io.tx),
                                None => info!(%why, "reload requested during a reload: another follows it"),
                            }
                            continue;
                        }
                        NetIn::FilesChanged(paths) => {
                            if paths.iter().any(|p| sources.contains(p))
                                && let Some(forced) = reloads.request(None, false)
                            {
                                start_load(&self.config, "file change", forced, &sources, &io.tx);
                            }
                            continue;
                        }
                        NetIn::Reloaded(loaded) => {
                            let Some((result, read)) = *loaded else {
                                if let Some(forced) = reloads.finished(None) {
                                    start_load(&self.config, "a request during the last check", forced, &sources, &io.tx);
                                }
                                continue;
                            };
                            sources = read;
                            if let Some(w) = watcher.as_mut() {
                                w.follow(&sources);
                            }
                            let outcome = match result {
                                Ok(menus) => {
                                    info!(menus = menus.len(), "config reloaded: new calls use it; calls in progress keep theirs");
                                    let n = menus.len();
                                    engine.set_menus(Arc::new(menus));
                                    ReloadOutcome::Reloaded { menus: n }
                                }
                                Err(e) => {
                                    let errors: Vec<String> = e.to_string().lines().map(str::to_string).collect();
                                    for line in &errors {
                                        tracing::error!(error = %line, "config reload failed; the running config stays");
                                    }
                                    ReloadOutcome::Invalid { errors }
                                }
                            };
                            status.reloaded(&outcome, std::time::SystemTime::now());
                            if let Some(forced) = reloads.finished(Some(&outcome)) {
                                start_load(&self.config, "a change during the last reload", forced, &sources, &io.tx);
                            }
                            continue;
                        }
                        other => other,
                    };
                    io.feed_now(&mut engine, msg);
                    // Take what else is already queued before sleeping again (bounded, for fairness).
                    for _ in 0..256 {
                        match rx.try_recv() {
                            Ok(m) => io.feed_now(&mut engine, m),
                            Err(_) => break,
                        }
                    }
                    // The channel goes first when both are ready: the media sockets get their
                    // turn here too, so a stream of SIP never shuts the calls' audio out.
                    io.read_media(&mut media_wait, &mut engine);
                }
                // The stop and the clock before the media: under a flood that leaves datagrams
                // every turn the media branch is always ready, and a biased select would never
                // look further. (Due timers are taken at the top of the loop.)
                _ = &mut shutdown, if exit_at.is_none() => {
                    let p = &io.pacing;
                    if p.count() > 0 {
                        info!(target: "ivr::stats", packets = p.count(), p50_ms = p.percentile_ms(0.5), p99_ms = p.percentile_ms(0.99), max_ms = p.percentile_ms(1.0), "rtp pacing lateness");
                    } else {
                        info!(target: "ivr::stats", packets = 0, "rtp pacing lateness: no packet sent");
                    }
                    let now = tokio::time::Instant::now();
                    io.stopping = true;
                    if self.config.drain.is_zero() {
                        info!(calls = engine.call_count(), "shutting down: refusing new calls, hanging up active calls");
                        engine.handle_input(Instant::now(), Input::Shutdown);
                    } else {
                        info!(calls = engine.call_count(), drain_secs = self.config.drain.as_secs(), "draining: refusing new calls (OPTIONS and INVITE get 503), letting active calls finish");
                        engine.handle_input(Instant::now(), Input::Drain);
                        hang_up_at = Some(now + self.config.drain);
                    }
                    exit_at = Some(now + self.config.drain + self.config.shutdown_grace);
                }
                _ = wall_tick.tick() => {
                    // Keeps schedules right if the system clock is stepped (NTP, DST is not a step).
                    engine.handle_input(Instant::now(), Input::WallClock(std::time::SystemTime::now()));
                }
                () = media_wait.readable() => {
                    io.read_media(&mut media_wait, &mut engine);
                }
                _ = async { match sleep_until { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => {
                    // A stop deadline that woke us is taken at the top of the next turn.
                    engine.handle_input(Instant::now(), Input::Timeout);
                }
            }
        }
        // Records of the last calls (those hung up by the stop too) go to the store now; the
        // stop below waits for them.
        io.store_call_records(true);
        let Io {
            recorder,
            store,
            voicemail_dir,
            notify,
            stores,
            status,
            ..
        } = io;
        let stop = Stop {
            store,
            dir: voicemail_dir,
            notify,
            status,
        };
        stop.finish_writes(recorder, stores, &mut rx).await;
        Ok(())
    }
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

/// Load the config file off the loop (unless `forced`, only if one of `sources` changed);
/// the result comes back as [`NetIn::Reloaded`].
fn start_load(
    config: &ServerConfig,
    why: &'static str,
    forced: bool,
    sources: &Sources,
    tx: &mpsc::Sender<NetIn>,
) {
    let Some(path) = config.config_path.clone() else {
        return;
    };
    let tx = tx.clone();
    crate::reload::start_load(
        path,
        config.tts_cache.clone(),
        why,
        forced,
        sources.clone(),
        move |loaded| {
            let _ = tx.blocking_send(NetIn::Reloaded(Box::new(loaded)));
        },
    );
}

struct Io {
    udp: Arc<UdpSocket>,
    tcp: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
    /// The calls' RTP and RTCP sockets, read by the loop itself.
    media: MediaSet,
    ports: PortPool,
    tx: mpsc::Sender<NetIn>,
    spans: HashMap<CallHandle, Span>,
    /// Where the menus handed each call, until it ends.
    handoffs: HashMap<CallHandle, String>,
    drained: bool,
    pacing: Arc<crate::lateness::Lateness>,
    status: Arc<Status>,
    recorder: Recorder,
    /// Store writes in flight; finished ones are reaped as new ones start.
    stores: tokio::task::JoinSet<()>,
    store: ivr_voicemail::store::Store,
    voicemail_dir: std::path::PathBuf,
    notify: ivr_voicemail::store::Notify,
    /// Where host names are looked up; made at the first lookup.
    dns_servers: Vec<SocketAddr>,
    resolver: Option<crate::resolve::SipResolver>,
    /// Queue event log rows not yet handed to the store.
    queue_rows: Vec<ivr_queues::log::Row>,
    /// The staff's queue view is out of date: publish a snapshot once the outputs are done.
    board_dirty: bool,
    /// Call records not yet stored (bounded, see [`record_queue`]).
    call_records: record_queue::RecordQueue,
    /// The server is stopping: records of the calls it hangs up are all kept.
    stopping: bool,
}

impl Io {
    /// Hand the queue events of this round to the store, in one transaction, off the loop.
    /// Writes in flight are bounded: past [`MAX_QUEUE_WRITES`] a batch is dropped and said.
    fn store_queue_rows(&mut self) {
        if self.queue_rows.is_empty() {
            return;
        }
        let rows = std::mem::take(&mut self.queue_rows);
        while self.stores.try_join_next().is_some() {}
        if self.stores.len() >= MAX_QUEUE_WRITES {
            warn!(
                rows = rows.len(),
                "the store is behind: queue events dropped from the queue log"
            );
            return;
        }
        let store = self.store.clone();
        self.stores.spawn(async move {
            if let Err(e) = store.insert_queue_events(&rows).await {
                warn!(rows = rows.len(), error = %e, "cannot store queue events");
            }
        });
    }
}

impl Io {
    /// Hand the call records of this round to the store, off the loop, in transactions of
    /// at most [`record_queue::CHUNK`]. While [`MAX_QUEUE_WRITES`] writes are in flight
    /// they wait for the next round, bounded by [`record_queue::RecordQueue`] (`force`, at
    /// stop: they go now, and the stop waits for them).
    fn store_call_records(&mut self, force: bool) {
        if self.call_records.is_empty() {
            return;
        }
        while self.stores.try_join_next().is_some() {}
        let may_write = force || self.stores.len() < MAX_QUEUE_WRITES;
        let Some(batch) = self
            .call_records
            .round(Instant::now(), may_write, self.stopping)
        else {
            return;
        };
        let store = self.store.clone();
        let dir = self.voicemail_dir.clone();
        self.stores.spawn(async move {
            // Committed chunk by chunk: a stop that gives up on a slow store keeps those
            // already written, rather than rolling back one large transaction.
            for chunk in batch.records.chunks(record_queue::CHUNK) {
                if let Err(e) = store.insert_calls(chunk).await {
                    warn!(records = chunk.len(), error = %e, "cannot store call records");
                    continue;
                }
                // Their survey comments' records kept for a crash are no longer needed.
                for key in chunk
                    .iter()
                    .flat_map(|r| &r.answers)
                    .filter_map(|a| a.recording.as_deref())
                {
                    crate::recorder::forget_comment(&dir, key);
                }
            }
            drop(batch);
        });
    }

    /// A queued callback stored, or its status changed, off the loop (bounded like the
    /// queue log's writes).
    fn store_queue_callback(&mut self, cmd: ivr_engine::QueueCallbackCmd) {
        while self.stores.try_join_next().is_some() {}
        if self.stores.len() >= MAX_QUEUE_WRITES {
            warn!("the store is behind: a queued callback's record dropped");
            return;
        }
        let store = self.store.clone();
        let notify = ivr_voicemail::store::Notify {
            webhook: self.notify.webhook,
            email: false,
        };
        self.stores.spawn(async move {
            let now = crate::clock::unix_now();
            match cmd {
                ivr_engine::QueueCallbackCmd::Store(request) => {
                    match store.insert(&request, false, now, notify).await {
                        Ok(_) => {
                            info!(id = %request.id, queue = request.queue.as_deref().unwrap_or(""), "queued callback stored")
                        }
                        Err(e) => warn!(id = %request.id, error = %e, "cannot store a queued callback"),
                    }
                }
                ivr_engine::QueueCallbackCmd::Status { id, status, note } => {
                    let Some(status) = ivr_voicemail::store::Status::parse(status) else {
                        return;
                    };
                    if let Err(e) = store
                        .set_status(&id, status, "system", Some(&note), now)
                        .await
                    {
                        warn!(%id, error = %e, "cannot update a queued callback");
                    }
                }
            }
        });
    }
}

/// Most store writes in flight before queue log batches are dropped.
const MAX_QUEUE_WRITES: usize = 256;

impl Io {
    /// Feed what the media sockets hold to the engine, each datagram straight from the
    /// read buffer; `wait` learns whether some is left for the next turn.
    fn read_media(&mut self, wait: &mut media::MediaWait, engine: &mut Engine) {
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
    fn feed_now(&mut self, engine: &mut Engine, msg: NetIn) {
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
                    self.store.clone(),
                    self.voicemail_dir.clone(),
                    self.tx.clone(),
                );
                let (status, notify) = (self.status.clone(), self.notify);
                // Kept in a set, so that a stop waits for it rather than dropping it.
                while self.stores.try_join_next().is_some() {}
                self.stores.spawn(async move {
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

    /// Perform every output; returns the engine's next deadline.
    fn drain(&mut self, engine: &mut Engine) -> Option<Instant> {
        loop {
            match engine.poll_output() {
                Output::Timeout(deadline) => {
                    self.store_queue_rows();
                    self.store_call_records(false);
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
                    self.pacing
                        .record(Instant::now().saturating_duration_since(due));
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
                    self.board_dirty |= matches!(
                        e,
                        Event::Queue { .. } | Event::Agent { .. } | Event::AgentRequest { .. }
                    );
                    self.log(e);
                    if queue {
                        self.status
                            .queues(&engine.queues_waiting(), &engine.agent_states());
                    }
                }
                Output::QueueCallback(cmd) => self.store_queue_callback(cmd),
                // Only a sharded engine (`Engine::new_shard`) hands these out; this driver
                // runs one engine with its hub inside.
                Output::Hub(_) | Output::Handoff { .. } => {
                    warn!("a sharded engine's output reached the single-engine driver")
                }
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
                    let tx = self.tx.clone();
                    tokio::spawn(async move {
                        match TcpStream::connect(to).await {
                            Ok(stream) => {
                                let _ = stream.set_nodelay(true);
                                let conn = run_tcp(stream, to, tx, None, Transport::Tcp);
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
                self.status.call_started();
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
                self.status.call_ended(reason);
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
                self.call_records.push(*record);
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
            Event::Agent { change, registered } => {
                use ivr_sip::registrar::RegistrarEvent;
                self.status.agents_registered(registered);
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
                self.queue_rows
                    .push(crate::queue_log::row(&event, at, call_id.as_deref()));
            }
            Event::AuthFailed { from, method } => {
                self.status.auth_failed();
                if method == "REGISTER" {
                    warn!(%from, "REGISTER refused: wrong password or unknown user")
                } else {
                    warn!(%from, method, "feature call refused: wrong password or unknown user")
                }
            }
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
        self.status.admission(&e);
        match e {
            AdmissionEvent::Banned { source, duration } => warn!(
                %source,
                seconds = duration.as_secs(),
                "SIP source over its request rate: ignored for a while"
            ),
            AdmissionEvent::SourceCallLimit { source } => {
                debug!(%source, "INVITE refused: too many calls from this address")
            }
            AdmissionEvent::PendingEvicted { call } => self.in_call(call, |_| {
                info!("dropped while waiting for its ACK, to make room (too many calls waiting)")
            }),
        }
    }

    fn in_call(&self, call: CallHandle, f: impl FnOnce(&Span)) {
        match self.spans.get(&call) {
            Some(span) => span.in_scope(|| f(span)),
            None => f(&Span::none()),
        }
    }
}
