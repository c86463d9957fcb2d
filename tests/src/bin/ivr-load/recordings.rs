//! `ivr-load --recordings`: N concurrent voicemail recordings, each checked frame by frame
//! against what its caller sent (issue 11, used by `bench/recordings.sh`).
//!
//! N callers call the engine on its embedded demo, choose English (2), the mailbox (4),
//! "call me back on this number" (1) and skip the greeting (1), as RFC 4733 events, then
//! talk for `--talk` seconds and hang up: the BYE leaves right after the last RTP packet,
//! as a phone's does. Every audio packet is a pattern only that caller sends at that
//! point: its first ten µ-law bytes carry (caller, frame number), the other 150 come from a
//! generator seeded with them, and every byte is a loud code that survives the engine's
//! decode and the check's re-encode unchanged. So each stored WAV names its caller, and
//! each of its 20 ms frames is either that caller's next frame (in place), another frame
//! (out of place), or not a frame sent (silence where a packet was missing).
//!
//! When every caller has hung up and the engine has stored what it will, the engine is
//! stopped (it logs its writer's fsync time per recording) and the tool prints: recordings
//! stored vs callers, frames sent (from the first recorded one to the BYE), in place,
//! lost, out of place, frames missing at the end, the writer's fsync time per recording
//! p50/p99/max, the engine's CPU, UDP receive drops on the engine's RTP ports, and
//! warnings from the engine's log.

use crate::calls::{self, Calls};
use crate::media::{Proc, start};
use crate::sip;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Options of `ivr-load --recordings`.
pub struct Opts {
    calls: usize,
    talk: u64,
    ivr: String,
    keep: bool,
}

const USAGE: &str = "usage: ivr-load --recordings [--calls N] [--talk SECS] [--ivr PATH] [--keep]";

impl Opts {
    /// Reads the flags after `--recordings`.
    pub fn parse(args: impl Iterator<Item = String>) -> Opts {
        let mut o = Opts {
            calls: 100,
            talk: 10,
            ivr: "target/release/ivr".into(),
            keep: false,
        };
        let mut it = args.peekable();
        while let Some(flag) = it.next() {
            if flag == "--keep" {
                o.keep = true;
                continue;
            }
            let v = it.next().unwrap_or_default();
            match flag.as_str() {
                "--calls" => o.calls = v.parse().expect(USAGE),
                "--talk" => o.talk = v.parse().expect(USAGE),
                "--ivr" => o.ivr = v,
                _ => panic!("{USAGE}"),
            }
        }
        o
    }
}

/// The keys: (milliseconds after the answer, RFC 4733 event code).
const KEYS: [(u64, u8); 4] = [(1_000, 2), (2_000, 4), (3_000, 1), (4_000, 1)];
/// Talking starts after the last key's packets.
const TALK_FROM_MS: u64 = 4_300;
/// Bytes of a frame that carry (caller, frame number), 7 bits each.
const HEADER: usize = 10;

/// A 7-bit value as a loud µ-law code: sign, the two low bits of the (inverted) exponent
/// and the mantissa; the exponent's top bit stays clear, so the sample is at least about
/// 1,000 (voice for the engine, never 0x7F/0xFF which both decode to 0).
fn code(x: u8) -> u8 {
    ((x & 0x40) << 1) | (x & 0x3F)
}

/// The 7-bit value of a code, if it is one [`code`] makes.
fn uncode(b: u8) -> Option<u8> {
    (b & 0x40 == 0).then_some(((b & 0x80) >> 1) | (b & 0x3F))
}

/// Caller `caller`'s frame number `k`.
fn pattern(caller: u32, k: u32, out: &mut [u8; 160]) {
    let v = (u64::from(caller) << 32) | u64::from(k);
    for (j, b) in out[..HEADER].iter_mut().enumerate() {
        *b = code(((v >> (7 * j)) & 0x7F) as u8);
    }
    let mut x = v ^ 0x9E37_79B9_7F4A_7C15;
    for b in &mut out[HEADER..] {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *b = code((x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 57) as u8);
    }
}

/// Which caller's frame, and which, 160 recorded samples are (None: not a frame sent).
fn identify(samples: &[i16]) -> Option<(u32, u32)> {
    if samples.len() != 160 {
        return None;
    }
    let mut got = [0u8; 160];
    for (g, s) in got.iter_mut().zip(samples) {
        *g = ivr_audio::g711::ulaw_encode(*s);
    }
    let mut v = 0u64;
    for (j, b) in got[..HEADER].iter().enumerate() {
        v |= u64::from(uncode(*b)?) << (7 * j);
    }
    let (caller, k) = ((v >> 32) as u32, v as u32);
    let mut want = [0u8; 160];
    pattern(caller, k, &mut want);
    (want == got).then_some((caller, k))
}

/// One caller as the SIP side and the sender share it.
#[derive(Default)]
struct Slot {
    /// The engine's media address (IPv4 << 16 | port) once answered; 0 before.
    dest: AtomicU64,
    /// Audio frames sent (the next frame's number).
    frames: AtomicU32,
    /// Our BYE left (after the last frame).
    bye_sent: AtomicBool,
    /// The engine hung up first.
    engine_bye: AtomicBool,
}

impl crate::calls::Slot for Slot {
    fn dest(&self) -> &AtomicU64 {
        &self.dest
    }
}

/// Sends every answered call's packets at its 20 ms phase, then its BYE, until all are
/// done or `stop`.
fn send(
    socks: Vec<std::net::UdpSocket>,
    sip_sock: std::net::UdpSocket,
    engine: SocketAddr,
    slots: Arc<Vec<Slot>>,
    tags: Arc<Mutex<Vec<String>>>,
    talk_ms: u64,
    stop: Arc<AtomicBool>,
) -> (Duration, u64) {
    struct Tx {
        seq: u16,
        ts: u32,
        start: Option<u64>,
        keys: usize,
        event: Option<(u8, u8, u32)>,
        done: bool,
    }
    let me = sip_sock.local_addr().expect("addr");
    let mut txs: Vec<Tx> = (0..socks.len())
        .map(|i| Tx {
            seq: (i as u16).wrapping_mul(7919),
            ts: 0,
            start: None,
            keys: 0,
            event: None,
            done: false,
        })
        .collect();
    let mut pkt = [0u8; 12 + 160];
    let mut frame = [0u8; 160];
    let base = Instant::now();
    let mut tick = 0u64;
    let mut remaining = socks.len();
    // how late this thread ran: the worst, and the ticks more than 20 ms late
    let (mut worst, mut late) = (Duration::ZERO, 0u64);
    while remaining > 0 && !stop.load(Ordering::Relaxed) {
        let due = base + Duration::from_millis(tick);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else {
            worst = worst.max(now - due);
            late += u64::from(now - due > Duration::from_millis(20));
        }
        let mut i = (tick % 20) as usize;
        while i < socks.len() {
            let (slot, tx) = (&slots[i], &mut txs[i]);
            let dest = slot.dest.load(Ordering::Acquire);
            if tx.done || dest == 0 {
                i += 20;
                continue;
            }
            if slot.engine_bye.load(Ordering::Relaxed) {
                tx.done = true;
                remaining -= 1;
                i += 20;
                continue;
            }
            let start = *tx.start.get_or_insert(tick);
            let elapsed = tick - start;
            if tx.event.is_none()
                && let Some((at, key)) = KEYS.get(tx.keys).copied()
                && elapsed >= at
            {
                tx.event = Some((key, 0, tx.ts));
                tx.keys += 1;
            }
            pkt[0] = 0x80;
            pkt[2..4].copy_from_slice(&tx.seq.to_be_bytes());
            pkt[8..12].copy_from_slice(&(0x2000_0000 + i as u32).to_be_bytes());
            let len = match tx.event {
                Some(event) => {
                    let (len, next) = calls::event_packet(&mut pkt, event);
                    tx.event = next;
                    len
                }
                None if elapsed < TALK_FROM_MS => {
                    // quiet until the keys are done: µ-law silence
                    pkt[1] = 0;
                    pkt[4..8].copy_from_slice(&tx.ts.to_be_bytes());
                    pkt[12..172].fill(0xFF);
                    172
                }
                None => {
                    pkt[1] = 0;
                    pkt[4..8].copy_from_slice(&tx.ts.to_be_bytes());
                    let k = slot.frames.load(Ordering::Relaxed);
                    pattern(i as u32, k, &mut frame);
                    pkt[12..172].copy_from_slice(&frame);
                    slot.frames.store(k + 1, Ordering::Relaxed);
                    172
                }
            };
            tx.ts = tx.ts.wrapping_add(160);
            tx.seq = tx.seq.wrapping_add(1);
            let to = SocketAddrV4::new(Ipv4Addr::from((dest >> 16) as u32), dest as u16);
            let _ = socks[i].send_to(&pkt[..len], to);
            if elapsed >= TALK_FROM_MS + talk_ms {
                // hang up right after the last packet, as a phone does
                let tag = tags.lock().expect("lock")[i].clone();
                let bye = sip::in_dialog(engine, me, &format!("r{i}"), &tag, "BYE", 2);
                let _ = sip_sock.send_to(&bye, engine);
                slot.bye_sent.store(true, Ordering::Release);
                tx.done = true;
                remaining -= 1;
            }
            i += 20;
        }
        tick += 1;
    }
    (worst, late)
}

/// The engine's RTP ports: below the kernel's ephemeral range (where the callers' own
/// sockets are) and apart from `bench/media.sh`'s, which may run at the same time.
const RTP_PORTS: (u16, u16) = (10_000, 19_999);

/// UDP receive drops (the kernel's count) over the sockets bound to the engine's RTP ports.
fn rtp_drops() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/net/udp") else {
        return 0;
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            let drops: u64 = f.last()?.parse().ok()?;
            (RTP_PORTS.0..=RTP_PORTS.1).contains(&port).then_some(drops)
        })
        .sum()
}

/// The WAV files under `dir`.
fn wavs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(wavs(&p));
        } else if p.extension().is_some_and(|x| x == "wav") {
            out.push(p);
        }
    }
    out
}

/// One WAV checked.
#[derive(Default, Debug)]
struct Check {
    caller: Option<u32>,
    /// Frames in the file.
    frames: u64,
    in_place: u64,
    out_of_place: u64,
    /// Frames that are no frame sent (silence for a missing packet).
    not_sent: u64,
    /// Frames before the caller's first (its quiet start, after the keys).
    before_talk: u64,
    /// The caller's frame number of the file's first frame.
    first: u64,
}

fn check(samples: &[i16]) -> Check {
    let ids: Vec<Option<(u32, u32)>> = samples.chunks(160).map(identify).collect();
    let mut c = Check {
        frames: ids.len() as u64,
        ..Check::default()
    };
    // The caller and the first frame's number, from the first identified frame.
    let Some((pos, (caller, k))) = ids
        .iter()
        .enumerate()
        .find_map(|(p, id)| id.map(|id| (p, id)))
    else {
        c.not_sent = c.frames;
        return c;
    };
    c.caller = Some(caller);
    let first = i64::from(k) - pos as i64;
    c.first = first.max(0) as u64;
    for (p, id) in ids.iter().enumerate() {
        match id {
            None if first + (p as i64) < 0 => c.before_talk += 1,
            Some((who, k)) if *who == caller && i64::from(*k) == first + p as i64 => {
                c.in_place += 1
            }
            Some(_) => c.out_of_place += 1,
            None => c.not_sent += 1,
        }
    }
    c
}

/// A field of a JSON log line, as text ("?" when it has none).
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    crate::log_field(line, name).unwrap_or("?")
}

/// Runs the callers, checks every recording and prints the figures.
pub async fn run(o: Opts) {
    let n = o.calls;
    // self-check: every code survives decode and re-encode
    for x in 0..128u8 {
        let b = code(x);
        assert_eq!(uncode(b), Some(x));
        assert_eq!(
            ivr_audio::g711::ulaw_encode(ivr_audio::g711::ulaw_decode(b)),
            b
        );
    }
    let dir = std::env::temp_dir().join(format!("ivr-recordings-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    println!(
        "== {n} concurrent voicemail recordings, {} s of talk each (the machine's cores are shared with whatever else runs)",
        o.talk
    );
    let log = std::fs::File::create(dir.join("ivr.log")).expect("log file");
    let ports = format!("{}-{}", RTP_PORTS.0, RTP_PORTS.1);
    let mut cmd = crate::engine_command_on(&o.ivr, &ports);
    cmd.arg("--data-dir").arg(dir.join("data")).stderr(log);
    let ivr: Proc = start(cmd, "ivr");
    let engine = ivr.sip;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let std_sip = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let sender_sip = std_sip.try_clone().expect("clone");
    std_sip.set_nonblocking(true).expect("nonblocking");
    let sip = tokio::net::UdpSocket::from_std(std_sip).expect("tokio socket");
    let slots: Arc<Vec<Slot>> = Arc::new((0..n).map(|_| Slot::default()).collect());
    let calls = Calls::start(sip, engine, 'r', slots.clone(), |s: &Slot| {
        s.engine_bye.store(true, Ordering::Relaxed)
    });

    // media sockets: the sender writes; what the engine plays is left to the kernel to drop
    let mut socks = Vec::with_capacity(n);
    let mut ports = Vec::with_capacity(n);
    for _ in 0..n {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("rtp bind");
        s.set_nonblocking(true).expect("nonblocking");
        ports.push(s.local_addr().expect("addr").port());
        socks.push(s);
    }
    let cpu0 = ivr.cpu().0;
    let drops0 = rtp_drops();
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (slots, tags, stop) = (slots.clone(), calls.tags.clone(), stop.clone());
        let talk_ms = o.talk * 1000;
        std::thread::spawn(move || send(socks, sender_sip, engine, slots, tags, talk_ms, stop))
    };
    calls.place(&ports).await;
    let answered = calls.answered.load(Ordering::Relaxed);
    // every answered caller talks and hangs up; then the BYEs are answered
    let deadline = Instant::now() + Duration::from_secs(o.talk + 30);
    let done = |s: &Slot| {
        s.dest.load(Ordering::Relaxed) == 0
            || s.bye_sent.load(Ordering::Relaxed)
            || s.engine_bye.load(Ordering::Relaxed)
    };
    while !slots.iter().all(done) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let byes = slots
        .iter()
        .filter(|s| s.bye_sent.load(Ordering::Relaxed))
        .count();
    let last_bye = t0.elapsed();
    calls.wait_byes(byes, Duration::from_millis(20)).await;
    stop.store(true, Ordering::Relaxed);
    let (sender_worst, sender_late) = sender.join().expect("sender");
    // the writer stores them: wait until the WAVs stop coming (or all are there)
    let data = dir.join("data");
    let mut count = wavs(&data).len();
    let mut still = Instant::now();
    while count < byes && still.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = wavs(&data).len();
        if now != count {
            count = now;
            still = Instant::now();
        }
    }
    let stored_after = t0.elapsed().saturating_sub(last_bye);
    let cpu = ivr.cpu().0 - cpu0;
    let drops = rtp_drops().saturating_sub(drops0);
    let rss = ivr.rss_kib();
    ivr.stop();
    calls.stop();

    // check every WAV against its caller
    let mut by_caller: HashMap<u32, Check> = HashMap::new();
    let mut unreadable = 0;
    let mut anonymous = 0;
    let mut duplicates = 0;
    for p in wavs(&data) {
        let Ok(w) = std::fs::read(&p)
            .map_err(|e| e.to_string())
            .and_then(|b| ivr_audio::wav::decode(&b).map_err(|e| e.to_string()))
        else {
            unreadable += 1;
            continue;
        };
        let c = check(&w.samples);
        match c.caller {
            Some(who) if by_caller.contains_key(&who) => duplicates += 1,
            Some(who) => {
                by_caller.insert(who, c);
            }
            None => anonymous += 1,
        }
    }
    let (mut sent, mut in_place, mut out_of_place, mut not_sent, mut tail) = (0, 0, 0, 0, 0);
    let mut before_talk = 0;
    let mut worst: Vec<(u64, u32)> = Vec::new();
    let mut missing = 0;
    for (i, s) in slots.iter().enumerate() {
        if !s.bye_sent.load(Ordering::Relaxed) {
            continue;
        }
        let Some(c) = by_caller.get(&(i as u32)) else {
            missing += 1;
            continue;
        };
        let total = u64::from(s.frames.load(Ordering::Relaxed));
        let from_first = total.saturating_sub(c.first);
        sent += from_first;
        in_place += c.in_place;
        out_of_place += c.out_of_place;
        not_sent += c.not_sent;
        before_talk += c.before_talk;
        tail += from_first.saturating_sub(c.frames - c.before_talk);
        let lost = from_first.saturating_sub(c.in_place);
        if lost > 0 {
            worst.push((lost, i as u32));
        }
    }
    worst.sort_unstable_by(|a, b| b.cmp(a));
    let log = std::fs::read_to_string(dir.join("ivr.log")).unwrap_or_default();
    let fsync = log
        .lines()
        .find(|l| l.contains("recording fsync time"))
        .unwrap_or("");
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"WARN\"") || l.contains("\"ERROR\""))
        .collect();

    let row = |name: &str, v: String| println!("{name:<44} {v}");
    row(
        "callers answered / hung up / engine hung up",
        format!(
            "{answered} of {n} / {byes} / {}",
            slots
                .iter()
                .filter(|s| s.engine_bye.load(Ordering::Relaxed))
                .count()
        ),
    );
    row(
        "recordings stored / callers who hung up",
        format!(
            "{} / {byes} (missing {missing}, unreadable {unreadable}, unidentified {anonymous}, two for one caller {duplicates})",
            by_caller.len()
        ),
    );
    row("frames sent (first recorded to BYE)", sent.to_string());
    row(
        "frames in place / lost",
        format!("{in_place} / {}", sent.saturating_sub(in_place)),
    );
    row(
        "  of the lost: missing at the end / silence",
        format!("{tail} / {not_sent}"),
    );
    row(
        "quiet frames before the talk (not counted)",
        before_talk.to_string(),
    );
    row("frames out of place", out_of_place.to_string());
    if !worst.is_empty() {
        let shown: Vec<String> = worst
            .iter()
            .take(5)
            .map(|(l, i)| format!("r{i}: {l}"))
            .collect();
        row(
            "recordings with loss (worst five)",
            format!("{} ({})", worst.len(), shown.join(", ")),
        );
    }
    row(
        "writer fsync per recording p50/p99/max",
        format!(
            "{} / {} / {} ms (mean {}, {} recordings)",
            field(fsync, "p50_ms"),
            field(fsync, "p99_ms"),
            field(fsync, "max_ms"),
            field(fsync, "mean_ms"),
            field(fsync, "recordings")
        ),
    );
    row(
        "last WAV stored after the last BYE",
        format!("{:.1} s", stored_after.as_secs_f64()),
    );
    row(
        "engine CPU (whole run)",
        format!(
            "{cpu:.1} s over {:.1} s ({:.0}% of one core), RSS {} MiB",
            last_bye.as_secs_f64(),
            100.0 * cpu / last_bye.as_secs_f64().max(1e-9),
            rss / 1024
        ),
    );
    row("UDP receive drops, engine RTP ports", drops.to_string());
    row(
        "callers' sender: worst lateness, ticks >20 ms late",
        format!(
            "{:.1} ms, {sender_late}{}",
            sender_worst.as_secs_f64() * 1e3,
            if sender_worst > Duration::from_millis(60) {
                " (the callers ran late: audio later than the engine's 60 ms reorder window is recorded as silence, not the engine's loss)"
            } else {
                ""
            }
        ),
    );
    row("engine warnings/errors logged", warnings.len().to_string());
    for w in warnings.iter().take(3) {
        println!("    {}", &w[..w.len().min(300)]);
    }
    if o.keep {
        println!("kept: {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_names_its_caller_and_number_and_nothing_else_does() {
        let mut f = [0u8; 160];
        pattern(999, 12_345, &mut f);
        let pcm: Vec<i16> = f.iter().map(|b| ivr_audio::g711::ulaw_decode(*b)).collect();
        assert_eq!(identify(&pcm), Some((999, 12_345)));
        assert_eq!(identify(&[0; 160]), None, "silence");
        let mut other = pcm.clone();
        other[100] = ivr_audio::g711::ulaw_decode(code(uncode(f[100]).unwrap() ^ 1));
        assert_eq!(identify(&other), None, "one sample off");
    }
}
