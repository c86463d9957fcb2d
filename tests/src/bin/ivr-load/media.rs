//! `ivr-load --media`: the engine and its floor under the same callers, in one run (issue 11,
//! used by `bench/media.sh`).
//!
//! N callers call twice: first `rtp-echo` (the floor: it answers and echoes every RTP packet,
//! nothing else), then the engine on its embedded demo. Every caller streams G.711 µ-law
//! (PCMU, 20 ms packets, each call at its own phase of the 20 ms cycle) from its answer to
//! its BYE and hears what comes back. Roles, by share of the callers:
//!
//! - **listeners** (the rest) only listen to the prompts; after 25 s (so that the demo's
//!   no-input rounds do not hang them up in a long hold) they choose English and press `*`
//!   (repeat) every 25 s;
//! - **navigators** (`--keys`, default 20%) choose English after 1 s, then press a key
//!   every 3 s (RFC 4733 events): 1, 3, `*`, 2, 0 (back to the language menu), 2...;
//! - **voicemail** (`--voicemail`, default 10%) choose English, press 4 (the demo's
//!   mailbox), 1 (be called back on this number), 1 (skip the greeting), and talk: the
//!   engine records them until the BYE;
//! - with `--bridged`, every caller presses 2 then 5 instead: the demo's `operators` queue
//!   (given one static agent per caller, `sip:agentK@127.0.0.1:5070`, in a copy of the demo
//!   config) rings an agent, a second `rtp-echo` on 127.0.0.1:5070 answers and echoes, and
//!   the engine relays both legs.
//!
//! Both runs measure the same things over the same steady window (`--hold` seconds, from
//! 6 s after the last call is answered): CPU seconds per call-second of the process under test (the
//! scheduler's nanoseconds from `/proc/PID/task/*/schedstat`, and utime+stime, sampled at
//! the 10 ms tick), its RSS growth per call, the caller-side interarrival
//! (p50/p99/max) and loss (by RTP sequence number, per stream: expected − received), and
//! the load generator's own CPU (it must be the same in both, so the ratio is fair). The
//! engine's send lateness is the `rtp pacing lateness` line it logs on exit
//! (`target: "ivr::stats"`), which covers its whole run, ramp-up included; and, for the
//! window alone, the difference of its `ivr_rtp_send_lateness_seconds` histogram in
//! `/metrics` read at the window's start and end (the share of packets sent within 1 ms is
//! the figure for "calls held with p99 < 1 ms").
//!
//! The sender is one thread that wakes every millisecond and sends the packets of the
//! calls whose phase falls in that millisecond, from one preallocated buffer; receivers
//! are one task per call on this tokio runtime, counting into preallocated atomics. The
//! hot loops do not allocate.

use crate::calls::{self, Calls};
use crate::sip;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::watch;

/// Options of `ivr-load --media`.
pub struct Opts {
    calls: usize,
    hold: u64,
    ivr: String,
    echo: String,
    keys_pct: usize,
    voicemail_pct: usize,
    bridged: bool,
    /// Calls per second set up and torn down (SIPp `uac`, for [`BURST_SECONDS`]) while the
    /// callers hold media, after the window (0: no burst).
    cps: usize,
}

const USAGE: &str = "usage: ivr-load --media [--calls N] [--hold SECS] [--keys PCT] [--voicemail PCT] [--bridged] [--cps N] [--ivr PATH] [--echo PATH]";

impl Opts {
    /// Reads the flags after `--media`.
    pub fn parse(args: impl Iterator<Item = String>) -> Opts {
        let mut o = Opts {
            calls: 100,
            hold: 20,
            ivr: "target/release/ivr".into(),
            echo: "target/release/rtp-echo".into(),
            keys_pct: 20,
            voicemail_pct: 10,
            bridged: false,
            cps: 0,
        };
        let mut it = args.peekable();
        while let Some(flag) = it.next() {
            if flag == "--bridged" {
                o.bridged = true;
                continue;
            }
            let v = it.next().unwrap_or_default();
            match flag.as_str() {
                "--calls" => o.calls = v.parse().expect(USAGE),
                "--hold" => o.hold = v.parse().expect(USAGE),
                "--keys" => o.keys_pct = v.parse().expect(USAGE),
                "--voicemail" => o.voicemail_pct = v.parse().expect(USAGE),
                "--cps" => o.cps = v.parse().expect(USAGE),
                "--ivr" => o.ivr = v,
                "--echo" => o.echo = v,
                _ => panic!("{USAGE}"),
            }
        }
        assert!(o.keys_pct + o.voicemail_pct <= 100, "{USAGE}");
        o
    }
}

/// What a caller does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Listener,
    Navigator,
    Voicemail,
    Bridged,
}

fn role(i: usize, o: &Opts) -> Role {
    if o.bridged {
        return Role::Bridged;
    }
    // 61 is prime to 100: each block of 100 callers takes every share once, spread out.
    let p = (i * 61) % 100;
    if p < o.voicemail_pct {
        Role::Voicemail
    } else if p < o.voicemail_pct + o.keys_pct {
        Role::Navigator
    } else {
        Role::Listener
    }
}

/// RFC 4733 §3.2 event codes: 0-9, then `*` = 10.
const STAR: u8 = 10;
const NAVIGATION: [u8; 6] = [1, 3, STAR, 2, 0, 2];

/// The `k`-th key of a role: (milliseconds after the answer, event code).
fn key_at(role: Role, k: usize) -> Option<(u64, u8)> {
    match role {
        Role::Listener => Some((25_000 * (k as u64 + 1), if k == 0 { 2 } else { STAR })),
        Role::Navigator if k == 0 => Some((1_000, 2)),
        Role::Navigator => Some((1_000 + 3_000 * k as u64, NAVIGATION[(k - 1) % 6])),
        // English, the mailbox, "call me back on this number", a key to skip the greeting
        Role::Voicemail => [(1_000, 2), (2_000, 4), (3_000, 1), (4_000, 1)]
            .get(k)
            .copied(),
        Role::Bridged => [(1_000, 2), (2_500, 5)].get(k).copied(),
    }
}

/// One call as the SIP side and the sender share it.
#[derive(Default)]
struct Slot {
    /// The far end's media address (IPv4 << 16 | port) once answered; 0 before.
    dest: AtomicU64,
    /// Milliseconds after the run's start when the far end hung up (0: it did not).
    ended_ms: AtomicU64,
}

impl crate::calls::Slot for Slot {
    fn dest(&self) -> &AtomicU64 {
        &self.dest
    }
}

/// Interarrival times in 50 µs buckets up to 200 ms (the last bucket holds the rest).
struct Histogram {
    buckets: Vec<AtomicU32>,
    max_us: AtomicU64,
}

const BUCKET_US: u64 = 50;

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            buckets: (0..=4000).map(|_| AtomicU32::new(0)).collect(),
            max_us: AtomicU64::new(0),
        }
    }
    fn add(&self, d: Duration) {
        let us = d.as_micros() as u64;
        let b = ((us / BUCKET_US) as usize).min(self.buckets.len() - 1);
        self.buckets[b].fetch_add(1, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }
    /// The `p`-th fraction in milliseconds (the bucket's upper edge).
    fn percentile_ms(&self, p: f64) -> f64 {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed) as u64)
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return f64::NAN;
        }
        let rank = ((total as f64) * p).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return ((i as u64 + 1) * BUCKET_US) as f64 / 1000.0;
            }
        }
        f64::NAN
    }
}

/// Before, inside and after the measured window; `BURST` is the set-up and tear-down burst
/// (`--cps`), after the window, measured apart.
const BEFORE: u8 = 0;
const INSIDE: u8 = 1;
const AFTER: u8 = 2;
const BURST: u8 = 3;

/// The measured phases' index in per-phase counters: the window, then the burst.
fn measured(phase: u8) -> Option<usize> {
    match phase {
        INSIDE => Some(0),
        BURST => Some(1),
        _ => None,
    }
}

/// What one caller received inside one measured phase.
#[derive(Default)]
struct Received {
    packets: u64,
    /// Packets the sequence numbers say were sent (per stream, first to last seen).
    expected: u64,
    /// SSRCs seen (a new one starts a new stream).
    streams: u32,
    /// The stream being received: its SSRC, and the first and last extended sequence number.
    ssrc: Option<u32>,
    first: i64,
    last: i64,
}

impl Received {
    /// Counts one packet; whether it continues the stream of the previous one.
    fn add(&mut self, seq: u16, ssrc: u32) -> bool {
        if self.ssrc != Some(ssrc) {
            self.close();
            self.ssrc = Some(ssrc);
            self.streams += 1;
            (self.first, self.last) = (seq as i64, seq as i64);
            self.packets += 1;
            return false;
        }
        // extend the 16-bit number around the highest seen (RFC 3550 §A.1)
        let ext = self.last + seq.wrapping_sub(self.last as u16) as i16 as i64;
        self.last = self.last.max(ext);
        self.first = self.first.min(ext);
        self.packets += 1;
        true
    }
    /// Ends the stream being received (its packets count as expected).
    fn close(&mut self) {
        if self.ssrc.take().is_some() {
            self.expected += (self.last - self.first + 1) as u64;
        }
    }
}

/// Receives one call's media until `stop`, counting what arrives inside the window and
/// inside the burst, apart.
async fn receive(
    sock: UdpSocket,
    phase: Arc<AtomicU8>,
    hists: Arc<[Histogram; 2]>,
    mut stop: watch::Receiver<bool>,
) -> [Received; 2] {
    let mut r: [Received; 2] = Default::default();
    let mut buf = [0u8; 2048];
    let mut prev_arrival = None::<Instant>;
    let mut prev_phase = BEFORE;
    loop {
        let n = tokio::select! {
            biased;
            _ = stop.changed() => break,
            got = sock.recv_from(&mut buf) => match got { Ok((n, _)) => n, Err(_) => continue },
        };
        let now = Instant::now();
        let p = phase.load(Ordering::Relaxed);
        if p != prev_phase {
            // an interval across phases belongs to neither
            prev_arrival = None;
            prev_phase = p;
        }
        let Some(k) = measured(p).filter(|_| n >= 12) else {
            prev_arrival = None;
            continue;
        };
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let s = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        if !r[k].add(seq, s) {
            prev_arrival = None;
        }
        if let Some(p) = prev_arrival {
            hists[k].add(now - p);
        }
        prev_arrival = Some(now);
    }
    for x in &mut r {
        x.close();
    }
    r
}

/// One second of "voice" (350 + 440 Hz, no DTMF pair, loud enough to be voice) in PCMU.
fn voice() -> Vec<u8> {
    (0..8000)
        .map(|n| {
            let t = n as f64 / 8000.0;
            let s = 4000.0 * (2.0 * std::f64::consts::PI * 350.0 * t).sin()
                + 4000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin();
            ivr_audio::g711::ulaw_encode(s as i16)
        })
        .collect()
}

/// A caller's sending state.
struct Tx {
    seq: u16,
    ts: u32,
    ssrc: u32,
    start_tick: Option<u64>,
    keys_sent: usize,
    /// The event being sent: (code, packets so far, its timestamp).
    event: Option<(u8, u8, u32)>,
}

/// Sends every answered call's packets at its 20 ms phase until `stop`; returns the
/// packets sent inside the window and inside the burst.
fn send(
    socks: Vec<std::net::UdpSocket>,
    roles: Vec<Role>,
    slots: Arc<Vec<Slot>>,
    base: Instant,
    phase: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
) -> [u64; 2] {
    let voice = voice();
    let mut txs: Vec<Tx> = (0..socks.len())
        .map(|i| Tx {
            seq: (i as u16).wrapping_mul(7919),
            ts: 0,
            ssrc: 0x1000_0000 + i as u32,
            start_tick: None,
            keys_sent: 0,
            event: None,
        })
        .collect();
    let mut pkt = [0u8; 12 + 160];
    let mut sent = [0u64; 2];
    let mut tick = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let due = base + Duration::from_millis(tick);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let measuring = measured(phase.load(Ordering::Relaxed));
        let mut i = (tick % 20) as usize;
        while i < socks.len() {
            let slot = &slots[i];
            let dest = slot.dest.load(Ordering::Acquire);
            if dest == 0 || slot.ended_ms.load(Ordering::Relaxed) != 0 {
                i += 20;
                continue;
            }
            let tx = &mut txs[i];
            let start = *tx.start_tick.get_or_insert(tick);
            if tx.event.is_none()
                && let Some((at, code)) = key_at(roles[i], tx.keys_sent)
                && tick - start >= at
            {
                tx.event = Some((code, 0, tx.ts));
                tx.keys_sent += 1;
            }
            pkt[0] = 0x80;
            pkt[2..4].copy_from_slice(&tx.seq.to_be_bytes());
            pkt[8..12].copy_from_slice(&tx.ssrc.to_be_bytes());
            let len = match tx.event {
                Some(event) => {
                    let (len, next) = calls::event_packet(&mut pkt, event);
                    tx.event = next;
                    len
                }
                None => {
                    pkt[1] = 0;
                    pkt[4..8].copy_from_slice(&tx.ts.to_be_bytes());
                    let at = (tx.ts % 8000) as usize;
                    pkt[12..172].copy_from_slice(&voice[at..at + 160]);
                    172
                }
            };
            tx.ts = tx.ts.wrapping_add(160);
            tx.seq = tx.seq.wrapping_add(1);
            let to = SocketAddrV4::new(Ipv4Addr::from((dest >> 16) as u32), dest as u16);
            if socks[i].send_to(&pkt[..len], to).is_ok()
                && let Some(k) = measuring
            {
                sent[k] += 1;
            }
            i += 20;
        }
        tick += 1;
    }
    sent
}

/// A process under test.
pub(crate) struct Proc {
    child: Child,
    pid: u32,
    /// Its SIP address.
    pub(crate) sip: SocketAddr,
    /// Its HTTP address (`http=` on the listen line; the engine's, for `/metrics`).
    http: Option<SocketAddr>,
}

impl Proc {
    /// (scheduler nanoseconds, utime+stime ticks) in seconds.
    pub(crate) fn cpu(&self) -> (f64, f64) {
        let pid = self.pid.to_string();
        (sip::cpu_seconds_precise(&pid), sip::cpu_seconds(&pid))
    }
    pub(crate) fn rss_kib(&self) -> u64 {
        sip::proc_field(self.pid, "status", "VmRSS:")
    }
    /// SIGTERM, then SIGKILL if it has not exited within 20 s.
    pub(crate) fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // dropping it kills it
    }
}

impl Drop for Proc {
    /// A run that panics leaves no process behind (after `stop`, a no-op: it was reaped).
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `cmd`, whose first stdout line names its SIP address as `udp=ADDR`.
pub(crate) fn start(mut cmd: Command, what: &str) -> Proc {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap_or_else(|e| {
        panic!("start {what}: {e} (cargo build --release -p ivr-server -p ivr-tests --bins)")
    });
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    out.read_line(&mut line).expect("listen line");
    let sip = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("udp="))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("{what} printed no udp= address: {line:?}"));
    let http = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http="))
        .and_then(|a| a.parse().ok());
    // keep draining stdout so the process never blocks on a full pipe
    std::thread::spawn(move || {
        let mut sink = String::new();
        while out.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });
    Proc {
        pid: child.id(),
        child,
        sip,
        http,
    }
}

fn start_echo(path: &str, listen: &str) -> Proc {
    let mut cmd = Command::new(path);
    cmd.args(["--listen", listen]);
    start(cmd, "rtp-echo")
}

fn start_engine(o: &Opts, dir: &Path, config: Option<&Path>) -> Proc {
    let log = std::fs::File::create(dir.join("ivr.log")).expect("log file");
    // The callers send RTP from their answer on, so the engine's default
    // --rtp-send-without-peer stays.
    let mut cmd = crate::engine_command(&o.ivr);
    cmd.arg("--data-dir").arg(dir.join("data")).stderr(log);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    start(cmd, "ivr")
}

/// The demo config with one static agent per caller, so that every caller of `--bridged`
/// is bridged at once (an agent takes one call at a time), offered one agent at a time.
fn bridged_config(dir: &Path, calls: usize) -> PathBuf {
    let demo = std::fs::read_to_string("examples/demo/config.yaml")
        .expect("examples/demo/config.yaml (run from the repository's root)");
    let prompts = std::fs::canonicalize("examples/demo/prompts").expect("demo prompts");
    let mut yaml = demo
        .replace("prompts/", &format!("{}/", prompts.display()))
        .replace("strategy: ring_all", "strategy: longest_idle");
    let start = yaml.find("\nagents:\n").expect("agents section") + 1;
    let end = start + yaml[start..].find("\n\n").expect("end of agents") + 1;
    let mut agents = String::from("agents:\n");
    for k in 0..calls {
        agents.push_str(&format!(
            "  agent{k}:\n    uri: \"sip:agent{k}@127.0.0.1:5070\"\n    queues: {{ operators: }}\n"
        ));
    }
    yaml.replace_range(start..end, &agents);
    let path = dir.join("bridged.yaml");
    std::fs::write(&path, yaml).expect("write config");
    path
}

/// From the last answer to the window: time for every role to reach its steady activity.
const SETTLE: Duration = Duration::from_secs(6);

/// What one run measured.
struct Measured {
    answered: usize,
    ended_early: usize,
    call_seconds: f64,
    /// CPU seconds in the window by the scheduler's count, and by utime+stime.
    cpu: f64,
    cpu_ticks: f64,
    rss_per_call_kib: f64,
    generator_cpu: f64,
    /// The callers' media in the window.
    media: Media,
    extra_cpu: Option<f64>,
    /// The set-up and tear-down burst run while the callers held media (`--cps`).
    burst: Option<Burst>,
    /// The engine's send lateness in the window: (bucket bound in seconds, packets in it).
    window_lateness: Option<Vec<(f64, u64)>>,
}

/// The held calls' media, as the callers saw it, in one measured phase.
struct Media {
    sent: u64,
    received: u64,
    expected: u64,
    calls_with_loss: usize,
    streams: u64,
    /// p50, p99 and max, in milliseconds.
    interarrival: [f64; 3],
}

impl Media {
    /// Sums the callers' counts of phase `k` (see [`measured`]).
    fn of(k: usize, sent: u64, received: &[[Received; 2]], hist: &Histogram) -> Media {
        let mut m = Media {
            sent,
            received: 0,
            expected: 0,
            calls_with_loss: 0,
            streams: 0,
            interarrival: [
                hist.percentile_ms(0.5),
                hist.percentile_ms(0.99),
                hist.max_us.load(Ordering::Relaxed) as f64 / 1000.0,
            ],
        };
        for r in received.iter().map(|r| &r[k]) {
            m.received += r.packets;
            m.expected += r.expected;
            m.streams += r.streams as u64;
            if r.expected > r.packets {
                m.calls_with_loss += 1;
            }
        }
        m
    }

    /// Loss by sequence number, as a percentage and counts.
    fn loss_text(&self) -> String {
        let lost = self.expected.saturating_sub(self.received);
        format!(
            "{:.3}% ({} of {}; {} calls)",
            100.0 * lost as f64 / self.expected.max(1) as f64,
            lost,
            self.expected,
            self.calls_with_loss
        )
    }

    fn interarrival_text(&self) -> String {
        let [p50, p99, max] = self.interarrival;
        format!("{p50:.2} / {p99:.2} / {max:.1} ms")
    }
}

/// What `/metrics` counted between two reads of [`lateness_buckets`].
fn lateness_between(
    before: Option<Vec<(f64, u64)>>,
    after: Option<Vec<(f64, u64)>>,
) -> Option<Vec<(f64, u64)>> {
    before.zip(after).map(|(a, b)| {
        b.iter()
            .zip(&a)
            .map(|(&(le, n1), &(_, n0))| (le, n1.saturating_sub(n0)))
            .collect()
    })
}

/// The engine's `ivr_rtp_send_lateness_seconds` buckets now, cumulative as `/metrics` gives
/// them (`None` for a process without HTTP, like the echo).
fn lateness_buckets(p: &Proc) -> Option<Vec<(f64, u64)>> {
    let reply = ivr_tests::http::request(p.http?, "GET", "/metrics", &[], b"").ok()?;
    let text = String::from_utf8_lossy(&reply.body);
    let buckets: Vec<(f64, u64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("ivr_rtp_send_lateness_seconds_bucket{le=\""))
        .filter_map(|l| {
            let (le, rest) = l.split_once("\"}")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, rest.split_whitespace().next()?.parse().ok()?))
        })
        .collect();
    (!buckets.is_empty()).then_some(buckets)
}

/// The window's lateness as "share within 1 ms, and the bucket bounds of p50/p99".
fn window_lateness_text(cumulative: &[(f64, u64)]) -> String {
    let total = cumulative.last().map_or(0, |b| b.1);
    if total == 0 {
        return "no packet".into();
    }
    let within = |ms: f64| {
        cumulative
            .iter()
            .find(|b| (b.0 - ms / 1000.0).abs() < 1e-9)
            .map_or(0, |b| b.1)
    };
    let bound = |p: f64| {
        let target = (total as f64 * p).ceil() as u64;
        cumulative
            .iter()
            .find(|b| b.1 >= target)
            .map_or(f64::INFINITY, |b| b.0 * 1000.0)
    };
    format!(
        "{:.2}% ≤ 1 ms; p50 ≤ {} ms, p99 ≤ {} ms",
        100.0 * within(1.0) as f64 / total as f64,
        bound(0.5),
        bound(0.99)
    )
}

/// Places the callers on `target`, holds them for the window, hangs up and measures.
/// RSS per call is the growth from `idle_rss` (before any call) to the window's end.
async fn run_callers(
    o: &Opts,
    target: &Proc,
    idle_rss: u64,
    extra: Option<&Proc>,
    cps: usize,
) -> Measured {
    let n = o.calls;
    let base = Instant::now();
    let sip = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let engine = target.sip;
    let slots: Arc<Vec<Slot>> = Arc::new((0..n).map(|_| Slot::default()).collect());
    let calls = Calls::start(sip, engine, 'm', slots.clone(), move |s: &Slot| {
        let ms = (base.elapsed().as_millis() as u64).max(1);
        let _ = s
            .ended_ms
            .compare_exchange(0, ms, Ordering::Relaxed, Ordering::Relaxed);
    });

    // media sockets: the sender thread writes, a task per call reads, the same port
    let phase = Arc::new(AtomicU8::new(BEFORE));
    let hists = Arc::new([Histogram::new(), Histogram::new()]);
    let (stop_rx_tx, stop_rx) = watch::channel(false);
    let mut send_socks = Vec::with_capacity(n);
    let mut receivers = Vec::with_capacity(n);
    let mut ports = Vec::with_capacity(n);
    for _ in 0..n {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("rtp bind");
        s.set_nonblocking(true).expect("nonblocking");
        ports.push(s.local_addr().expect("addr").port());
        let r = UdpSocket::from_std(s.try_clone().expect("clone")).expect("tokio socket");
        receivers.push(tokio::spawn(receive(
            r,
            phase.clone(),
            hists.clone(),
            stop_rx.clone(),
        )));
        send_socks.push(s);
    }
    let stop_tx = Arc::new(AtomicBool::new(false));
    let roles: Vec<Role> = (0..n).map(|i| role(i, o)).collect();
    let sender = {
        let (slots, phase, stop_tx) = (slots.clone(), phase.clone(), stop_tx.clone());
        let roles = roles.clone();
        std::thread::spawn(move || send(send_socks, roles, slots, base, phase, stop_tx))
    };

    // place the calls, 50 every 50 ms; INVITEs unanswered after 2 s are sent again
    calls.place(&ports).await;
    // settle: by then the voicemail callers record and the navigators move
    tokio::time::sleep(SETTLE).await;

    // the window
    let (cpu0, gen0, extra0) = (
        target.cpu(),
        sip::cpu_seconds_precise("self"),
        extra.map(Proc::cpu),
    );
    let late0 = lateness_buckets(target);
    let t0 = Instant::now();
    phase.store(INSIDE, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(o.hold)).await;
    phase.store(AFTER, Ordering::Relaxed);
    let t1 = Instant::now();
    let (cpu1, gen1, extra1) = (
        target.cpu(),
        sip::cpu_seconds_precise("self"),
        extra.map(Proc::cpu),
    );
    let rss1 = target.rss_kib();
    let window_lateness = lateness_between(late0, lateness_buckets(target));

    // call-seconds: each call answered before the window, until it ended or the window did
    let (w0, w1) = (
        (t0 - base).as_millis() as u64,
        (t1 - base).as_millis() as u64,
    );
    let mut call_seconds = 0.0;
    let mut in_window = 0;
    let mut ended_early = 0;
    for s in slots.iter() {
        if s.dest.load(Ordering::Relaxed) == 0 {
            continue;
        }
        let end = match s.ended_ms.load(Ordering::Relaxed) {
            0 => w1,
            e => {
                ended_early += 1;
                e.min(w1)
            }
        };
        if end > w0 {
            call_seconds += (end - w0) as f64 / 1000.0;
            in_window += 1;
        }
    }

    // set-up and tear-down while the callers still hold media, their media measured apart
    let burst = if cps > 0 {
        let late0 = lateness_buckets(target);
        let b0 = base.elapsed().as_millis() as u64;
        phase.store(BURST, Ordering::Relaxed);
        let mut b = cps_burst(target, cps).await;
        phase.store(AFTER, Ordering::Relaxed);
        let b1 = base.elapsed().as_millis() as u64;
        b.lateness = lateness_between(late0, lateness_buckets(target));
        b.held_ended = slots
            .iter()
            .filter(|s| (b0..=b1).contains(&s.ended_ms.load(Ordering::Relaxed)))
            .count();
        Some(b)
    } else {
        None
    };

    // hang up, stop the sender and the receivers
    stop_tx.store(true, Ordering::Relaxed);
    let sent = sender.join().expect("sender");
    let _ = stop_rx_tx.send(true);
    let tags = calls.tags.lock().expect("lock").clone();
    let mut byes = 0;
    for (i, tag) in tags.iter().enumerate() {
        if !tag.is_empty() && slots[i].ended_ms.load(Ordering::Relaxed) == 0 {
            let bye = sip::in_dialog(engine, calls.me, &calls.call_id(i), tag, "BYE", 2);
            let _ = calls.sip.send_to(&bye, engine).await;
            byes += 1;
            if byes % 100 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    calls.wait_byes(byes, Duration::from_millis(50)).await;
    calls.stop();
    let mut received = Vec::with_capacity(n);
    for r in receivers {
        received.push(r.await.unwrap_or_default());
    }
    let burst = burst.map(|b| Burst {
        media: Some(Media::of(1, sent[1], &received, &hists[1])),
        ..b
    });
    let answered = calls.answered.load(Ordering::Relaxed);
    Measured {
        answered,
        ended_early,
        call_seconds,
        cpu: cpu1.0 - cpu0.0,
        cpu_ticks: cpu1.1 - cpu0.1,
        rss_per_call_kib: rss1.saturating_sub(idle_rss) as f64 / in_window.max(1) as f64,
        generator_cpu: gen1 - gen0,
        media: Media::of(0, sent[0], &received, &hists[0]),
        extra_cpu: extra0.zip(extra1).map(|(a, b)| b.0 - a.0),
        burst,
        window_lateness,
    }
}

/// What a set-up and tear-down burst measured.
struct Burst {
    /// Calls offered (SIPp `-m`), at `rate` calls/s.
    calls: usize,
    rate: usize,
    ok: u64,
    failed: u64,
    seconds: f64,
    /// SIPp's means: INVITE to 200, and the whole call (INVITE to the BYE's 200). SIPp's
    /// clock counts whole milliseconds: 0 is a mean under 1 ms.
    answer_ms: f64,
    call_ms: f64,
    /// CPU seconds during the burst: the engine's, SIPp's, and this load generator's (its
    /// callers' sender and receivers), on the same machine.
    cpu: f64,
    sipp_cpu: f64,
    generator_cpu: f64,
    /// The held calls' media during the burst.
    media: Option<Media>,
    /// The engine's send lateness during the burst, as [`Measured::window_lateness`].
    lateness: Option<Vec<(f64, u64)>>,
    /// Held calls the engine hung up during the burst.
    held_ended: usize,
}

/// A mean of SIPp's millisecond clock.
fn sipp_ms(ms: f64) -> String {
    if ms < 1.0 {
        "< 1 ms".into()
    } else {
        format!("{ms:.1} ms")
    }
}

/// How long a burst offers calls: long enough for the held calls' loss and interarrival
/// under it to mean something (at 2,000 calls/s, 10,000 calls).
const BURST_SECONDS: usize = 5;

/// Calls placed by SIPp's built-in `uac` (INVITE, 200, ACK, BYE at once) at `target`, at
/// `rate` calls/s for [`BURST_SECONDS`], at most 200 at a time, while the callers hold
/// media: the set-up and tear-down rate achieved, and the engine's CPU for it.
async fn cps_burst(target: &Proc, rate: usize) -> Burst {
    let to = target.sip;
    let calls = rate * BURST_SECONDS;
    let cpu0 = target.cpu().0;
    let (children0, gen0) = (
        sip::children_cpu_seconds(),
        sip::cpu_seconds_precise("self"),
    );
    let t0 = Instant::now();
    let run = tokio::task::spawn_blocking(move || {
        let (m, r) = (calls.to_string(), rate.to_string());
        ivr_tests::sipp::run_for(
            to,
            &["-sn", "uac", "-m", &m, "-r", &r, "-l", "200", "-d", "0"],
            120,
        )
    })
    .await
    .expect("sipp");
    let seconds = t0.elapsed().as_secs_f64();
    let ok = ivr_tests::sipp::stat(&run.output, "Successful call");
    let failed = ivr_tests::sipp::stat(&run.output, "Failed call");
    let ms = |name| {
        ivr_tests::sipp::time_stat(&run.output, name).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    // No statistics, or statistics of a run that placed no call (SIPp stopped before its
    // first call, e.g. on a port it could not bind): what SIPp said is the only clue.
    if ok.unwrap_or(0) + failed.unwrap_or(0) == 0 {
        eprintln!(
            "SIPp (exit {}) made no call:\n{}",
            run.code,
            run.output.chars().take(4000).collect::<String>()
        );
    }
    Burst {
        calls,
        rate,
        ok: ok.unwrap_or(0),
        failed: failed.unwrap_or(0),
        seconds,
        answer_ms: ms("Response Time 1"),
        call_ms: ms("Call Length"),
        cpu: target.cpu().0 - cpu0,
        // SIPp (under `timeout`) is the only child waited for during the burst
        sipp_cpu: sip::children_cpu_seconds() - children0,
        generator_cpu: sip::cpu_seconds_precise("self") - gen0,
        media: None,
        lateness: None,
        held_ended: 0,
    }
}

/// Runs the floor and the engine with the same callers and prints the table.
pub async fn run(o: Opts) {
    let dir = std::env::temp_dir().join(format!("ivr-media-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let roles: Vec<Role> = (0..o.calls).map(|i| role(i, &o)).collect();
    let count = |r: Role| roles.iter().filter(|x| **x == r).count();
    println!(
        "== {} callers, {} s window: {} listening, {} pressing keys, {} recording voicemail, {} bridged",
        o.calls,
        o.hold,
        count(Role::Listener),
        count(Role::Navigator),
        count(Role::Voicemail),
        count(Role::Bridged)
    );

    // the floor
    let echo = start_echo(&o.echo, "127.0.0.1:0");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let floor = run_callers(&o, &echo, echo.rss_kib(), None, 0).await;
    echo.stop();

    // the engine (and, bridged, the agents' echo)
    let config = o.bridged.then(|| bridged_config(&dir, o.calls));
    let agents = o.bridged.then(|| start_echo(&o.echo, "127.0.0.1:5070"));
    let ivr = start_engine(&o, &dir, config.as_deref());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let engine = run_callers(&o, &ivr, ivr.rss_kib(), agents.as_ref(), o.cps).await;
    ivr.stop();
    if let Some(a) = agents {
        a.stop();
    }
    let log = std::fs::read_to_string(dir.join("ivr.log")).unwrap_or_default();
    let recordings = count_wavs(&dir.join("data"));
    let _ = std::fs::remove_dir_all(&dir);

    print_table(&o, &floor, &engine, &log, recordings);
}

fn count_wavs(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                count_wavs(&p)
            } else {
                usize::from(p.extension().is_some_and(|x| x == "wav"))
            }
        })
        .sum()
}

fn print_table(o: &Opts, floor: &Measured, engine: &Measured, log: &str, recordings: usize) {
    let pacing = log
        .lines()
        .find(|l| l.contains("rtp pacing lateness"))
        .unwrap_or("");
    let field = |name: &str| crate::log_field(pacing, name).unwrap_or("?");
    let us_per = |m: &Measured, cpu: f64| 1e6 * cpu / m.call_seconds.max(1e-9);
    let row = |name: &str, f: String, e: String| println!("{name:<34} {f:>24} {e:>30}");
    row("", "floor (rtp-echo)".into(), "engine (ivr)".into());
    row(
        "calls answered / ended early",
        format!("{} / {}", floor.answered, floor.ended_early),
        format!("{} / {}", engine.answered, engine.ended_early),
    );
    row(
        "call-seconds in the window",
        format!("{:.0}", floor.call_seconds),
        format!("{:.0}", engine.call_seconds),
    );
    row(
        "CPU per call-second",
        format!("{:.0} µs", us_per(floor, floor.cpu)),
        format!("{:.0} µs", us_per(engine, engine.cpu)),
    );
    row(
        "  by utime+stime (10 ms ticks)",
        format!("{:.0} µs", us_per(floor, floor.cpu_ticks)),
        format!("{:.0} µs", us_per(engine, engine.cpu_ticks)),
    );
    if let Some(agents) = engine.extra_cpu {
        row(
            "  agents' rtp-echo (not counted)",
            String::new(),
            format!("{:.0} µs", us_per(engine, agents)),
        );
    }
    row(
        "RSS growth per call",
        format!("{:.1} KiB", floor.rss_per_call_kib),
        format!("{:.1} KiB", engine.rss_per_call_kib),
    );
    row(
        "send lateness p50/p99/max",
        "-".into(),
        format!(
            "{} / {} / {} ms",
            field("p50_ms"),
            field("p99_ms"),
            field("max_ms")
        ),
    );
    if let Some(w) = &engine.window_lateness {
        row(
            "send lateness in the window",
            "-".into(),
            window_lateness_text(w),
        );
    }
    let (f, e) = (&floor.media, &engine.media);
    row(
        "caller interarrival p50/p99/max",
        f.interarrival_text(),
        e.interarrival_text(),
    );
    row("caller loss (by sequence)", f.loss_text(), e.loss_text());
    row(
        "packets sent / received, streams",
        format!("{} / {}, {}", f.sent, f.received, f.streams),
        format!("{} / {}, {}", e.sent, e.received, e.streams),
    );
    row(
        "load generator CPU per call-second",
        format!("{:.0} µs", us_per(floor, floor.generator_cpu)),
        format!("{:.0} µs", us_per(engine, engine.generator_cpu)),
    );
    if recordings > 0 || o.voicemail_pct > 0 && !o.bridged {
        row(
            "voicemail recordings stored",
            "-".into(),
            recordings.to_string(),
        );
    }
    println!(
        "ratio engine/floor, CPU per call-second: {:.2}x",
        us_per(engine, engine.cpu) / us_per(floor, floor.cpu).max(1e-9)
    );
    if let Some(b) = &engine.burst {
        println!(
            "set-up+tear-down while {} calls held media: {} calls offered at {}/s (SIPp uac, at most 200 at a time): {} ok, {} failed, in {:.2} s = {:.0} calls/s (SIPp's means: answer {}, call {}); CPU: engine {:.2} s, SIPp {:.2} s, ivr-load {:.2} s",
            engine.answered,
            b.calls,
            b.rate,
            b.ok,
            b.failed,
            b.seconds,
            b.ok as f64 / b.seconds.max(1e-9),
            sipp_ms(b.answer_ms),
            sipp_ms(b.call_ms),
            b.cpu,
            b.sipp_cpu,
            b.generator_cpu
        );
        if let Some(m) = &b.media {
            println!(
                "  held calls during it: loss {}; interarrival p50/p99/max {}; {} hung up by the engine",
                m.loss_text(),
                m.interarrival_text(),
                b.held_ended
            );
        }
        if let Some(w) = &b.lateness {
            println!(
                "  engine send lateness during it: {}",
                window_lateness_text(w)
            );
        }
    }
}
