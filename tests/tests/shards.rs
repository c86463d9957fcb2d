//! Black-box tests of the engine run with several shards (`--shards N`): the real binary on
//! 127.0.0.1, SIPp and raw SIP as its peers. A call lives on the shard its Call-ID hashes
//! to; the handle in its log lines carries that shard in its top 16 bits.

use ivr_tests::process::{Ivr, log_call};
use ivr_tests::sipp;
use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// The shard of a call handle as logged (`call` field of its span).
fn shard_of(call: &str) -> u64 {
    let n: u64 = call
        .trim_start_matches("call-")
        .parse()
        .unwrap_or_else(|_| panic!("a call handle: {call}"));
    n >> 48
}

fn metric(ivr: &Ivr, name: &str) -> Option<u64> {
    let body = ivr_tests::http::get(ivr.http.expect("http"), "/metrics").text();
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Calls over UDP and TCP are all answered and ended, every shard serves some, no message
/// is handed between shards, and a stop drains every shard: one exit, one pacing line
/// for the whole process, every shard's "all calls ended".
#[test]
fn calls_over_udp_and_tcp_spread_over_every_shard_and_the_stop_ends_them_all() {
    let mut ivr = Ivr::start(&["--shards", "3", "--drain-secs", "5"]);
    let udp = sipp::run(ivr.sip, &["-sn", "uac", "-m", "30", "-r", "50"]);
    assert_eq!(udp.code, 0, "{}\n{}", udp.output, ivr.log());
    let tcp = sipp::run(ivr.sip, &["-sn", "uac", "-m", "12", "-r", "30", "-t", "t1"]);
    assert_eq!(tcp.code, 0, "{}\n{}", tcp.output, ivr.log());
    let ended = ivr.wait_for(&["call ended", "CallerHungUp"], 42, WAIT);
    assert_eq!(ended.len(), 42, "{}", ivr.log());
    let shards: BTreeSet<u64> = ended
        .iter()
        .map(|l| shard_of(&log_call(l).expect("call span")))
        .collect();
    // 42 random Call-IDs over 3 shards: one shard with none has odds of 3·(2/3)^42 ≈ 1e-7.
    assert_eq!(shards, BTreeSet::from([0, 1, 2]), "{}", ivr.log());
    assert_eq!(metric(&ivr, "ivr_sip_handoffs_total"), Some(0));
    assert_eq!(metric(&ivr, "ivr_calls_active"), Some(0));

    let status = ivr.terminate();
    assert!(status.success(), "{status:?}\n{}", ivr.log());
    let log = ivr.log();
    assert_eq!(
        log.matches("\"message\":\"rtp pacing lateness\"").count(),
        1,
        "one pacing line, for every shard: {log}"
    );
    assert_eq!(
        log.matches("all calls ended").count(),
        3,
        "every shard drained: {log}"
    );
}

/// `--max-calls` is one cap for the process: with one call held, every new call gets 503
/// whichever shard its Call-ID hashes to.
#[test]
fn one_call_cap_is_shared_by_every_shard() {
    let ivr = Ivr::start(&["--shards", "2", "--max-calls", "1"]);
    let target = ivr.sip;
    let held =
        std::thread::spawn(move || sipp::run(target, &["-sn", "uac", "-m", "1", "-d", "4000"]));
    ivr.wait_for(&["\"answered\""], 1, WAIT);
    // Ten new calls: all on one shard has odds of 2·2^-10.
    let refused = sipp::run(ivr.sip, &["-sn", "uac", "-m", "10", "-r", "20"]);
    assert_eq!(
        sipp::stat(&refused.output, "Failed call"),
        Some(10),
        "{}\n{}",
        refused.output,
        ivr.log()
    );
    assert_eq!(
        ivr.count(&["request refused", "\"status\":503"]),
        10,
        "{}",
        ivr.log()
    );
    let held = held.join().unwrap();
    assert_eq!(held.code, 0, "the held call went on: {}", held.output);
}

/// `--max-calls-per-source` counts a source's calls over every shard: ten held calls from
/// one address all go through whichever shards they land on (a limit divided among two
/// shards, 5 each, would refuse some unless they split exactly evenly: 3 runs in 4), and
/// the eleventh is refused. `/metrics` shows each shard's share of the held calls.
#[test]
fn calls_per_source_are_counted_over_every_shard() {
    let ivr = Ivr::start(&["--shards", "2", "--max-calls-per-source", "10"]);
    let target = ivr.sip;
    let held = std::thread::spawn(move || {
        sipp::run(
            target,
            &[
                "-sn", "uac", "-m", "10", "-l", "10", "-r", "100", "-d", "4000",
            ],
        )
    });
    let answered = ivr.wait_for(&["\"answered\""], 10, WAIT);
    assert_eq!(answered.len(), 10, "{}", ivr.log());
    // `ivr_shard_calls_active{shard}`: each shard's held calls, adding up to the 10.
    let on = |shard: u64| {
        answered
            .iter()
            .filter(|l| shard_of(&log_call(l).expect("call span")) == shard)
            .count() as u64
    };
    for shard in 0..2 {
        assert_eq!(
            metric(
                &ivr,
                &format!("ivr_shard_calls_active{{shard=\"{shard}\"}}")
            ),
            Some(on(shard)),
            "shard {shard}"
        );
    }
    assert_eq!(metric(&ivr, "ivr_calls_active"), Some(10));
    let refused = sipp::run(ivr.sip, &["-sn", "uac", "-m", "1"]);
    assert_eq!(
        sipp::stat(&refused.output, "Failed call"),
        Some(1),
        "{}",
        refused.output
    );
    let held = held.join().unwrap();
    assert_eq!(held.code, 0, "{}\n{}", held.output, ivr.log());
    assert_eq!(
        sipp::stat(&held.output, "Successful call"),
        Some(10),
        "{}",
        held.output
    );
}

/// What one shard answers to a message it cannot route by Call-ID (none, or garbage), a
/// process of three answers too: the same status line, from the same place.
#[test]
fn messages_without_a_call_id_get_the_answer_one_engine_gives() {
    let probes: [&[u8]; 3] = [
        b"OPTIONS sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bK-nocid\r\n\
          From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:ivr@127.0.0.1>\r\nCSeq: 1 OPTIONS\r\n\
          Content-Length: 0\r\n\r\n",
        b"not SIP at all\r\n\r\n",
        b"OPTIONS sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bK-ok\r\n\
          From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: probe-ok\r\n\
          CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
    ];
    let answers = |shards: &str| -> Vec<Option<String>> {
        let ivr = Ivr::start(&["--shards", shards]);
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(700)))
            .unwrap();
        probes
            .iter()
            .map(|p| {
                sock.send_to(p, ivr.sip).unwrap();
                let mut buf = [0u8; 4096];
                sock.recv(&mut buf).ok().map(|n| {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    text.lines().next().unwrap_or_default().to_string()
                })
            })
            .collect()
    };
    let one = answers("1");
    assert_eq!(
        one.last().cloned().flatten().as_deref(),
        Some("SIP/2.0 200 OK"),
        "the probe with a Call-ID is answered: {one:?}"
    );
    assert_eq!(answers("3"), one);
}

/// A stop with a call on one shard and none on another: the idle shard drains and ends
/// first, and SIP that hashes to it afterwards (a proxy's probe, a late INVITE) must not stop
/// the process from reading SIP: the caller still on the other shard hangs up (its BYE is
/// answered) and the call ends as the caller's, as with one engine.
#[test]
fn an_ended_shard_does_not_stop_sip_for_the_shards_still_draining() {
    let mut ivr = Ivr::start(&["--shards", "2", "--drain-secs", "15"]);
    let target = ivr.sip;
    let call =
        std::thread::spawn(move || sipp::run(target, &["-sn", "uac", "-m", "1", "-d", "3000"]));
    assert_eq!(
        ivr.wait_for(&["\"answered\""], 1, WAIT).len(),
        1,
        "{}",
        ivr.log()
    );
    ivr.signal("TERM");
    // The shard without the call ends at once.
    let done = ivr.wait_for(
        &["every recording finished and every store write done"],
        1,
        WAIT,
    );
    assert_eq!(done.len(), 1, "{}", ivr.log());
    std::thread::sleep(Duration::from_millis(300));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..16 {
        let probe = format!(
            "OPTIONS sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bK-p{i}\r\n\
             From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: late-probe-{i}\r\n\
             CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        sock.send_to(probe.as_bytes(), ivr.sip).unwrap();
    }
    let call = call.join().unwrap();
    assert_eq!(
        call.code,
        0,
        "the caller's BYE was answered: {}\n{}",
        call.output,
        ivr.log()
    );
    assert_eq!(
        ivr.wait_for(&["call ended", "CallerHungUp"], 1, WAIT).len(),
        1,
        "{}",
        ivr.log()
    );
    let status = ivr
        .wait_exit(WAIT)
        .expect("the process exits once the call ended");
    assert!(status.success(), "{status:?}\n{}", ivr.log());
}

/// SIGTERM while SIP floods in (the per-source rate off, as behind a trusted proxy): every
/// loop takes the stop, though its input is never empty, and the process exits at once
/// (no call to drain) rather than when the control thread gives up on the shards.
#[test]
fn the_stop_is_taken_while_sip_floods_every_loop() {
    for shards in ["2", "1"] {
        let mut ivr = Ivr::start(&[
            "--shards",
            shards,
            "--sip-rate-per-source",
            "0",
            "--drain-secs",
            "5",
        ]);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let floods: Vec<_> = (0..2)
            .map(|t| {
                let (stop, target) = (stop.clone(), ivr.sip);
                std::thread::spawn(move || {
                    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
                    let mut i = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let probe = format!(
                            "OPTIONS sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-{t}-{i}\r\n\
                             From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: flood-{t}-{i}\r\n\
                             CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
                        );
                        let _ = sock.send_to(probe.as_bytes(), target);
                        i += 1;
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(2));
        ivr.signal("TERM");
        let exited = ivr.wait_exit(Duration::from_secs(8));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        floods.into_iter().for_each(|f| f.join().unwrap());
        let status = exited.unwrap_or_else(|| {
            panic!(
                "shards {shards}: still running 8 s after SIGTERM\n{}",
                ivr.log()
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
        assert!(status.success(), "{status:?}");
    }
}
