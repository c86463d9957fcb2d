//! `ivr-load`: a load generator and meter for the `ivr` binary (used by `bench/load.sh`).
//!
//! It starts the engine on 127.0.0.1, holds N calls in the demo menu for a while, and
//! reports the engine's CPU seconds per call-second, RSS per call, the RTP send-interval
//! jitter seen at the callers, and the set-up+tear-down rate. Everything stays on loopback.
//! Its callers only listen; `ivr-load --media` (module `media`, used by `bench/media.sh`)
//! has them stream RTP too, press keys and record, and measures the echo floor beside;
//! `ivr-load --recordings` (module `recordings`, used by `bench/recordings.sh`) checks N
//! concurrent voicemail recordings frame by frame against what each caller sent.

mod calls;
mod media;
mod recordings;
mod sip;

use sip::{cpu_seconds, percentile, proc_field, summarize};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::Mutex;

struct Args {
    calls: usize,
    hold: u64,
    cps_calls: usize,
    ivr: String,
}

fn parse_args() -> Args {
    let mut a = Args {
        calls: 100,
        hold: 20,
        cps_calls: 2000,
        ivr: "target/release/ivr".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_default();
        match flag.as_str() {
            "--calls" => a.calls = v.parse().expect("--calls N"),
            "--hold" => a.hold = v.parse().expect("--hold SECS"),
            "--cps-calls" => a.cps_calls = v.parse().expect("--cps-calls N"),
            "--ivr" => a.ivr = v,
            _ => panic!("usage: ivr-load [--calls N] [--hold SECS] [--cps-calls N] [--ivr PATH]"),
        }
    }
    a
}

/// Field `name` of a JSON log line, as its text (a string keeps its quotes), if it has one.
pub(crate) fn log_field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("\"{name}\":");
    line.find(&key)
        .map(|i| line[i + key.len()..].split([',', '}']).next().unwrap_or(""))
}

/// `ivr serve` as both benchmarks start it: on loopback, a wide RTP range, room for every
/// call, JSON logs with the `ivr::stats` lines, and no per-source limits (one host places
/// every call).
pub(crate) fn engine_command(ivr: &str) -> Command {
    engine_command_on(ivr, "20000-39999")
}

/// [`engine_command`] with its RTP ports in `ports` (`LOW-HIGH`), for a benchmark that may
/// run beside another.
pub(crate) fn engine_command_on(ivr: &str, ports: &str) -> Command {
    let mut cmd = Command::new(ivr);
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--rtp-ports",
        ports,
        "--max-calls",
        "20000",
        "--media-timeout",
        "600",
        "--sip-rate-per-source",
        "0",
        "--max-calls-per-source",
        "0",
        "--max-pending-calls",
        "0",
        "--log-format",
        "json",
        "--http",
        "127.0.0.1:0",
    ])
    .env("RUST_LOG", "warn,ivr::stats=info");
    cmd
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    if std::env::args().nth(1).as_deref() == Some("--media") {
        return media::run(media::Opts::parse(std::env::args().skip(2))).await;
    }
    if std::env::args().nth(1).as_deref() == Some("--recordings") {
        return recordings::run(recordings::Opts::parse(std::env::args().skip(2))).await;
    }
    let args = parse_args();
    // These callers only listen: audio flows to callers that send none.
    let mut child = engine_command(&args.ivr)
        .args(["--rtp-send-without-peer", "0"])
        .args(["--data-dir", "/tmp/ivr-load-data"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ivr (build it with cargo build --release -p ivr-server)");
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("listen line");
    let engine: SocketAddr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("udp="))
        .and_then(|a| a.parse().ok())
        .expect("address");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_base = proc_field(pid, "status", "VmRSS:");

    // ---- hold N calls ----
    let sip = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
    let me = sip.local_addr().expect("addr");
    let tags: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let byes_ok = Arc::new(AtomicUsize::new(0));
    {
        let (sip, tags, byes_ok) = (sip.clone(), tags.clone(), byes_ok.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            loop {
                let Ok((n, _)) = sip.recv_from(&mut buf).await else {
                    continue;
                };
                let text = String::from_utf8_lossy(&buf[..n]);
                let Some((status, call_id, tag, method)) = summarize(&text) else {
                    continue;
                };
                if status == 200 && method == "INVITE" {
                    // Every 200 (retransmissions too) gets an ACK; the call is noted once.
                    let ack = sip::in_dialog(engine, me, &call_id, &tag, "ACK", 1);
                    let _ = sip.send_to(&ack, engine).await;
                    tags.lock().await.entry(call_id).or_insert(tag);
                } else if status == 200 && method == "BYE" {
                    byes_ok.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let window = Arc::new(std::sync::Mutex::new(None::<(Instant, Instant)>));
    let mut receivers = Vec::new();
    for i in 0..args.calls {
        let rtp = UdpSocket::bind("127.0.0.1:0").await.expect("rtp bind");
        let port = rtp.local_addr().expect("addr").port();
        let window = window.clone();
        let hold = args.hold;
        receivers.push(tokio::spawn(async move {
            let mut arrivals = Vec::with_capacity(hold as usize * 50 + 100);
            let mut buf = [0u8; 2048];
            loop {
                let got =
                    tokio::time::timeout(Duration::from_secs(hold + 30), rtp.recv_from(&mut buf))
                        .await;
                let now = Instant::now();
                let w = *window.lock().expect("lock");
                match (got, w) {
                    (Ok(Ok(_)), Some((start, end))) if now >= start && now <= end => {
                        arrivals.push(now)
                    }
                    (Ok(Ok(_)), Some((_, end))) if now > end => return arrivals,
                    (Ok(Ok(_)), _) => {}
                    _ => return arrivals,
                }
            }
        }));
        sip.send_to(
            &sip::invite(engine, me, &format!("hold{i}"), "load", port),
            engine,
        )
        .await
        .expect("send");
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while tags.lock().await.len() < args.calls && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answered = tags.lock().await.len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (cpu0, t0) = (cpu_seconds(&pid.to_string()), Instant::now());
    *window.lock().expect("lock") = Some((t0, t0 + Duration::from_secs(args.hold)));
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    let (cpu1, t1) = (cpu_seconds(&pid.to_string()), Instant::now());
    let rss_hold = proc_field(pid, "status", "VmRSS:");
    for (call_id, tag) in tags.lock().await.iter() {
        let _ = sip
            .send_to(&sip::in_dialog(engine, me, call_id, tag, "BYE", 2), engine)
            .await;
    }
    let mut deviations = Vec::new();
    let mut packets = 0usize;
    for r in receivers {
        let arrivals = r.await.unwrap_or_default();
        packets += arrivals.len();
        for w in arrivals.windows(2) {
            let interval = (w[1] - w[0]).as_secs_f64() * 1000.0;
            deviations.push((interval - 20.0).abs());
        }
    }
    deviations.sort_by(|a, b| a.total_cmp(b));
    let call_seconds = answered as f64 * (t1 - t0).as_secs_f64();

    // ---- set-up and tear-down rate ----
    byes_ok.store(0, Ordering::SeqCst);
    tags.lock().await.clear();
    let cps_start = Instant::now();
    let cpu_c0 = cpu_seconds(&pid.to_string());
    let mut sent_byes = std::collections::HashSet::new();
    let mut next = 0usize;
    while byes_ok.load(Ordering::Relaxed) < args.cps_calls
        && cps_start.elapsed() < Duration::from_secs(120)
    {
        // keep at most 100 calls in flight
        let in_flight = next - byes_ok.load(Ordering::Relaxed);
        if next < args.cps_calls && in_flight < 100 {
            sip.send_to(
                &sip::invite(engine, me, &format!("cps{next}"), "load", 9),
                engine,
            )
            .await
            .expect("send");
            next += 1;
            continue;
        }
        let pending: Vec<(String, String)> = tags
            .lock()
            .await
            .iter()
            .filter(|(c, _)| !sent_byes.contains(*c))
            .map(|(c, t)| (c.clone(), t.clone()))
            .collect();
        for (c, t) in pending {
            let _ = sip
                .send_to(&sip::in_dialog(engine, me, &c, &t, "BYE", 2), engine)
                .await;
            sent_byes.insert(c);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let cps_elapsed = cps_start.elapsed().as_secs_f64();
    let cps_cpu = cpu_seconds(&pid.to_string()) - cpu_c0;
    let completed = byes_ok.load(Ordering::Relaxed);

    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    let _ = child.wait();
    let pacing = stderr
        .lines()
        .find(|l| l.contains("rtp pacing lateness"))
        .unwrap_or("(no pacing line)");
    let field = |name: &str| log_field(pacing, name).unwrap_or_default();

    println!(
        "concurrent calls held:        {answered} of {} for {:.1} s",
        args.calls,
        (t1 - t0).as_secs_f64()
    );
    println!(
        "engine CPU per call-second:   {:.6} s  ({:.2} CPU s over {:.0} call-s; {:.1}% of one core)",
        (cpu1 - cpu0) / call_seconds,
        cpu1 - cpu0,
        call_seconds,
        100.0 * (cpu1 - cpu0) / (t1 - t0).as_secs_f64()
    );
    println!(
        "engine RSS:                   {} KiB idle, {} KiB holding; {:.1} KiB per call",
        rss_base,
        rss_hold,
        (rss_hold.saturating_sub(rss_base)) as f64 / answered.max(1) as f64
    );
    println!(
        "RTP packets received:         {packets} ({:.1} per call-second)",
        packets as f64 / call_seconds
    );
    println!(
        "RTP interval jitter |Δ-20ms|: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        percentile(&deviations, 0.5),
        percentile(&deviations, 0.99),
        deviations.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "engine send lateness:         p50 {} ms, p99 {} ms, max {} ms over {} packets (0.1 ms buckets)",
        field("p50_ms"),
        field("p99_ms"),
        field("max_ms"),
        field("packets")
    );
    println!(
        "setup+teardown:               {completed} calls in {cps_elapsed:.2} s = {:.0} calls/s (engine CPU {:.2} s)",
        completed as f64 / cps_elapsed,
        cps_cpu
    );
}
