//! Bridged transfers, black box: the real `ivr` binary runs the demo menus with its
//! 5 turned into a bridged transfer to an `operator` destination pointed at a SIPp UAS (or
//! baresip), on 127.0.0.1; and the demo as it is, its 5 queueing the caller for the operator.
//! The destination's SIP is SIPp's (`uas_bridge.xml`: rings, answers PCMA, takes the BYE);
//! its media port, named in SIPp's answer, is a socket of this test, so the test hears what
//! the destination hears and speaks for it.

use ivr_audio::Codec;
use ivr_tests::process::Ivr;
use ivr_tests::sipp::{self, scenario};
use ivr_tests::udp_call::{UdpCall, key_press};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

/// A known recording: a rising tone, so no 20 ms frame of it is silence.
fn recording(seconds: usize) -> Vec<i16> {
    (0..8000 * seconds)
        .map(|i| {
            let t = i as f64 / 8000.0;
            let f = 300.0 + 200.0 * t;
            (7000.0 * (2.0 * std::f64::consts::PI * f * t).sin() + 900.0) as i16
        })
        .collect()
}

/// The demo (copied into `dir`) with its operator at `sip:operator@ADDR`.
fn demo_pointing_at(dir: &Path, addr: SocketAddr) -> String {
    demo_with_operator(dir, &format!("sip:operator@{addr}"))
}

/// The demo (copied into `dir`), its 5 a bridged transfer to an `operator` destination at
/// `uri` (the demo itself queues the caller for its operators; these tests are about
/// transfers).
fn demo_with_operator(dir: &Path, uri: &str) -> String {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo");
    std::fs::create_dir_all(dir.join("prompts")).unwrap();
    for e in std::fs::read_dir(demo.join("prompts")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join("prompts").join(e.file_name())).unwrap();
    }
    let config = std::fs::read_to_string(demo.join("config.yaml")).unwrap();
    let edited = config.replace("{ queue: operators }", "{ transfer: operator }")
        + &format!(
            "\ndestinations:\n  operator:\n    uri: \"{uri}\"\n    mode: bridge\n    \
             ring_timeout: 20\n    on_failure: {{ voicemail: messages }}\n"
        );
    assert!(
        !edited.contains("queue: operators"),
        "the edit applied (the demo's 5 joins the operators queue)"
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, edited).unwrap();
    path.display().to_string()
}

/// A SIPp UAS answering with our `media` socket's port.
fn destination(dir: &Path, media: &UdpSocket) -> sipp::Uas {
    destination_playing(dir, media, "uas_bridge.xml")
}

/// A SIPp UAS running the template `file`, answering with our `media` socket's port.
fn destination_playing(dir: &Path, media: &UdpSocket, file: &str) -> sipp::Uas {
    let port = media.local_addr().unwrap().port();
    let text = std::fs::read_to_string(scenario(file))
        .unwrap()
        .replace("@MEDIA_PORT@", &port.to_string());
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    sipp::spawn_uas(&["-sf", path.to_str().unwrap(), "-m", "1"])
}

/// Wait for the destination's SIPp to exit, which it does once it got its BYE.
fn destination_done(uas: &mut sipp::Uas) {
    let end = Instant::now() + Duration::from_secs(60);
    let run = loop {
        if let Some(r) = uas.try_finish() {
            break r;
        }
        assert!(
            Instant::now() < end,
            "the destination's SIPp never ended:\n{}",
            uas.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(run.code, 0, "the destination got its BYE:\n{}", run.output);
}

/// How many of `expected`'s 20 ms frames appear, in order, among `got` (packet payloads).
fn frames_found(expected: &[u8], got: &[Vec<u8>]) -> (usize, usize) {
    let frames: Vec<&[u8]> = expected.chunks_exact(160).collect();
    let mut at = 0;
    let mut found = 0;
    for f in &frames {
        if let Some(i) = got[at..].iter().position(|p| p.as_slice() == *f) {
            found += 1;
            at += i + 1;
        }
    }
    (found, frames.len())
}

/// Read RTP from `socket` until `done` says so or `limit` passes: (payload type, payload,
/// source) of each packet.
fn receive(
    socket: &UdpSocket,
    limit: Duration,
    mut done: impl FnMut(usize) -> bool,
) -> Vec<(u8, Vec<u8>, SocketAddr)> {
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let end = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while Instant::now() < end && !done(out.len()) {
        if let Ok((n, from)) = socket.recv_from(&mut buf)
            && n > 12
        {
            out.push((buf[1] & 0x7F, buf[12..n].to_vec(), from));
        }
    }
    out
}

#[test]
fn a_sipp_callers_recording_reaches_the_destination_transcoded_to_pcma() {
    let dir = tempfile::tempdir().unwrap();
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut uas = destination(dir.path(), &media);
    let config = demo_pointing_at(dir.path(), uas.addr);
    let ivr = Ivr::start(&["--config", &config]);

    let pcm = recording(2);
    let audio = dir.path().join("caller.ulaw");
    sipp::ulaw_message(&audio, &pcm);
    let caller_xml = std::fs::read_to_string(scenario("call_five_stream.xml"))
        .unwrap()
        .replace("@AUDIO@", &audio.display().to_string());
    let caller_path = dir.path().join("call_five_stream.xml");
    std::fs::write(&caller_path, caller_xml).unwrap();
    let target = ivr.sip;
    let caller = std::thread::spawn(move || {
        sipp::run(
            target,
            &[
                "-sf",
                caller_path.to_str().unwrap(),
                "-m",
                "1",
                "-d",
                "4000",
            ],
        )
    });
    // The destination hears the caller until the caller's SIPp is done.
    let packets = receive(&media, Duration::from_secs(60), |_| caller.is_finished());
    let run = caller.join().unwrap();
    assert_eq!(
        run.code,
        0,
        "the caller's SIPp failed:\n{}\n{}",
        run.output,
        ivr.log()
    );
    destination_done(&mut uas);

    let ulaw: Vec<u8> = pcm.iter().map(|s| Codec::Pcmu.encode(*s)).collect();
    let expected: Vec<u8> = ulaw
        .iter()
        .map(|u| Codec::Pcma.encode(Codec::Pcmu.decode(*u)))
        .collect();
    let got: Vec<Vec<u8>> = packets
        .iter()
        .filter(|(pt, _, _)| *pt == 8)
        .map(|(_, p, _)| p.clone())
        .collect();
    assert!(
        packets.iter().all(|(pt, _, _)| *pt == 8 || *pt == 101),
        "PCMA (and relayed keys) only"
    );
    let (found, total) = frames_found(&expected, &got);
    assert!(
        found * 100 >= total * 95,
        "{found} of {total} frames of the recording reached the destination, transcoded; log:\n{}",
        ivr.log()
    );
    let log = ivr.log();
    let bridged = log
        .lines()
        .find(|l| l.contains("transfer answered: bridged"))
        .unwrap_or_else(|| panic!("bridged: {log}"));
    assert!(
        bridged.contains(r#""name":"leg""#) && bridged.contains(r#""name":"call""#),
        "the destination's leg has its own span in the call's: {bridged}"
    );
    assert!(
        log.contains("caller_hung_up") || log.contains("CallerHungUp"),
        "{log}"
    );
}

/// Our caller presses 2 (English), then, once in the English menu, 5 (speak to someone),
/// and waits until the call has left the menus.
fn ask_for_someone(ivr: &Ivr, call: &UdpCall) {
    let mut seq = 1u16;
    for (digit, ts, then) in [
        (2u8, 8000u32, r#""menu":"main_en""#),
        (5, 16000, "left the menus"),
    ] {
        for p in key_press(digit, &mut seq, ts) {
            call.rtp.send_to(&p, call.engine_media).unwrap();
            // Paced like a phone: 20 ms between packets.
            std::thread::sleep(Duration::from_millis(20));
        }
        let seen = ivr.wait_for(&[then], 1, Duration::from_secs(10));
        assert!(!seen.is_empty(), "{then} after key {digit}:\n{}", ivr.log());
    }
}

#[test]
fn the_destinations_audio_reaches_our_caller_transcoded_to_pcmu() {
    let dir = tempfile::tempdir().unwrap();
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut uas = destination(dir.path(), &media);
    let config = demo_pointing_at(dir.path(), uas.addr);
    let ivr = Ivr::start(&["--config", &config]);

    let mut call = UdpCall::dial(
        ivr.sip,
        "bridge-reverse",
        "0 101",
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
    );
    // English (2), then speak to someone (5), as RFC 4733 events.
    ask_for_someone(&ivr, &call);
    // Bridged once the engine's destination leg sends us (the destination) RTP: learn its
    // address from the first packet.
    let first = receive(&media, Duration::from_secs(20), |n| n > 0);
    let (_, _, engine_leg) = first
        .first()
        .cloned()
        .expect("the engine sends the destination RTP once bridged");

    // The caller listens in the background while the destination speaks.
    let rtp = call.rtp.try_clone().unwrap();
    let listener = std::thread::spawn(move || receive(&rtp, Duration::from_secs(6), |_| false));
    let pcm = recording(2);
    let mut sent = Vec::new();
    let start = Instant::now();
    for (i, chunk) in pcm.chunks(160).enumerate() {
        let mut p = vec![0x80, 8];
        p.extend_from_slice(&(i as u16).to_be_bytes());
        p.extend_from_slice(&((i * 160) as u32).to_be_bytes());
        p.extend_from_slice(&0xDE5C_0001u32.to_be_bytes());
        p.extend(chunk.iter().map(|s| Codec::Pcma.encode(*s)));
        sent.extend_from_slice(&p[12..]);
        media.send_to(&p, engine_leg).unwrap();
        // Paced like a phone: one packet per 20 ms from the start.
        let due = start + Duration::from_millis(20 * (i as u64 + 1));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let heard = listener.join().unwrap();
    call.bye();
    destination_done(&mut uas);
    let expected: Vec<u8> = sent
        .iter()
        .map(|a| Codec::Pcmu.encode(Codec::Pcma.decode(*a)))
        .collect();
    let got: Vec<Vec<u8>> = heard
        .iter()
        .filter(|(pt, _, _)| *pt == 0)
        .map(|(_, p, _)| p.clone())
        .collect();
    let (found, total) = frames_found(&expected, &got);
    assert!(
        found * 100 >= total * 95,
        "{found} of {total} frames of the destination's audio reached the caller; log:\n{}",
        ivr.log()
    );
}

#[test]
fn a_sipp_destination_sending_a_reliable_183_and_asking_for_refreshes_gets_prack_and_reinvite() {
    // The SIPp destination (uas_bridge_extensions.xml) checks the INVITE's Supported, sends
    // a reliable 183 with its answer and waits for the PRACK (checking its RAck), answers
    // 200 without SDP with Session-Expires: 10;refresher=uac, and waits for the engine's
    // refresh at 5 s. The caller hangs up at about 7.5 s, between the first refresh and
    // the second.
    let dir = tempfile::tempdir().unwrap();
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut uas = destination_playing(dir.path(), &media, "uas_bridge_extensions.xml");
    let config = demo_pointing_at(dir.path(), uas.addr);
    let ivr = Ivr::start(&["--config", &config, "--min-se", "10"]);
    let mut call = UdpCall::dial(
        ivr.sip,
        "bridge-extensions",
        "0 101",
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
    );
    ask_for_someone(&ivr, &call);
    let bridged = ivr.wait_for(&["transfer answered: bridged"], 1, Duration::from_secs(10));
    assert!(
        !bridged.is_empty(),
        "bridged after the PRACK:\n{}\n{}",
        uas.output(),
        ivr.log()
    );
    std::thread::sleep(Duration::from_millis(7500));
    call.bye();
    destination_done(&mut uas);
    let log = ivr.log();
    assert!(!log.contains("SessionExpired"), "{log}");
}

/// baresip as the destination: a real softphone, auto-answering, playing a WAV.
///
/// baresip puts the address of a non-loopback interface in its SDP (it ignores 127.0.0.1),
/// which on this machine would be a real one; so the test runs again inside its own network
/// namespace (`unshare -n`: only `lo`, up, with 127.0.0.1 and a private 10.9.9.9 that
/// exists nowhere else for baresip to name), and checks that run's result.
#[test]
fn baresip_answers_a_bridged_call_and_the_caller_hears_it() {
    if ivr_tests::process::in_own_netns() {
        return baresip_call();
    }
    ivr_tests::process::rerun_in_own_netns(
        "baresip_answers_a_bridged_call_and_the_caller_hears_it",
    );
}

fn baresip_call() {
    assert!(
        std::process::Command::new("baresip")
            .arg("-h")
            .output()
            .is_ok(),
        "baresip is not installed: `apt-get install -y baresip` (the test command does this)"
    );
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("baresip");
    std::fs::create_dir_all(&home).unwrap();
    let port = sipp::free_port();
    let wav = dir.path().join("operator.wav");
    // baresip hangs up when its source file ends: longer than the 3 s the caller listens,
    // so the caller is the one who hangs up.
    write_wav(&wav, &recording(8));
    std::fs::write(
        home.join("config"),
        format!(
            "sip_listen\t\t127.0.0.1:{port}\n\
             audio_player\t\taufile,{out}\naudio_source\t\taufile,{wav}\naudio_alert\t\taufile,{out}\n\
             module_path\t\t/usr/lib/baresip/modules\nmodule\t\t\tg711.so\nmodule\t\t\taufile.so\n\
             module_app\t\taccount.so\nmodule_app\t\tmenu.so\n\
             rtp_ports\t\t{rtp}-{rtp_end}\n",
            out = dir.path().join("heard.wav").display(),
            wav = wav.display(),
            rtp = port as u32 + 2,
            rtp_end = port as u32 + 40,
        ),
    )
    .unwrap();
    std::fs::write(
        home.join("accounts"),
        format!("<sip:operator@127.0.0.1:{port}>;regint=0;answermode=auto;audio_codecs=PCMA\n"),
    )
    .unwrap();
    let mut baresip = std::process::Command::new("baresip")
        .arg("-f")
        .arg(&home)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start baresip");
    let log = ivr_tests::process::capture(baresip.stdout.take().unwrap());
    // Wait until it listens (it says so), rather than for a fixed time.
    let ready = Instant::now() + Duration::from_secs(20);
    while !log.lock().unwrap().contains("baresip is ready") && Instant::now() < ready {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        log.lock().unwrap().contains("baresip is ready"),
        "baresip did not start:\n{}",
        log.lock().unwrap()
    );
    let config = demo_pointing_at(dir.path(), SocketAddr::from(([127, 0, 0, 1], port)));
    let ivr = Ivr::start(&["--config", &config]);
    let mut call = UdpCall::dial(
        ivr.sip,
        "bridge-baresip",
        "0 101",
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
    );
    ask_for_someone(&ivr, &call);
    let bridged = ivr.wait_for(&["transfer answered: bridged"], 1, Duration::from_secs(20));
    assert_eq!(
        bridged.len(),
        1,
        "baresip answered; ivr:\n{}\nbaresip:\n{}",
        ivr.log(),
        log.lock().unwrap()
    );
    // What baresip plays reaches the caller: decode and compare with the WAV, frame by frame
    // (baresip sends PCMA, the caller hears PCMU).
    let heard = receive(&call.rtp, Duration::from_secs(3), |_| false);
    let expected: Vec<u8> = recording(8)
        .iter()
        .map(|s| Codec::Pcmu.encode(Codec::Pcma.decode(Codec::Pcma.encode(*s))))
        .collect();
    let got: Vec<Vec<u8>> = heard
        .iter()
        .filter(|(pt, _, _)| *pt == 0)
        .map(|(_, p, _)| p.clone())
        .collect();
    let loud = got
        .iter()
        .filter(|p| {
            p.iter()
                .map(|b| i32::from(Codec::Pcmu.decode(*b)).abs())
                .max()
                > Some(3000)
        })
        .count();
    assert!(
        loud >= 50,
        "the caller hears baresip's audio ({loud} loud frames of {})",
        got.len()
    );
    let (found, _) = frames_found(&expected, &got);
    assert!(
        found >= 25,
        "{found} frames of baresip's WAV arrived intact"
    );
    call.bye();
    let ended = ivr.wait_for(&["call ended"], 1, Duration::from_secs(10));
    assert_eq!(ended.len(), 1);
    let _ = baresip.kill();
    let _ = baresip.wait();
}

/// A 16-bit mono 8 kHz WAV.
fn write_wav(path: &Path, samples: &[i16]) {
    std::fs::write(path, ivr_audio::wav::encode_pcm16(8000, samples)).unwrap();
}

/// A menu that transfers by REFER to `desk` as soon as the caller has been silent for a
/// second (so SIPp callers that press nothing reach it); a failed transfer hangs up.
fn refer_config(dir: &Path, desk: SocketAddr) -> String {
    let path = dir.join("refer.yaml");
    std::fs::write(
        &path,
        format!(
            "entry: m\nprompts:\n  hi: {{ silence: 0.5 }}\n\
             destinations:\n  desk: {{ uri: \"sip:desk@{desk}\", on_failure: {{ hangup: hi }} }}\n\
             menus:\n  m:\n    prompt: hi\n    timeout: 1\n    retries: 0\n\
             \x20   options:\n      \"1\": {{ repeat: true }}\n    on_failure: {{ transfer: desk }}\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn a_sipp_caller_that_accepts_refer_is_transferred_and_released() {
    let dir = tempfile::tempdir().unwrap();
    // Nobody listens at the desk: the engine must not call it (the caller's phone does).
    let desk = SocketAddr::from(([127, 0, 0, 1], sipp::free_port()));
    let config = refer_config(dir.path(), desk);
    let ivr = Ivr::start(&["--config", &config]);
    let run = sipp::run(ivr.sip, &["-sf", scenario("refer_accept.xml"), "-m", "1"]);
    assert_eq!(run.code, 0, "SIPp:\n{}\nivr:\n{}", run.output, ivr.log());
    let done = ivr.wait_for(&["call ended", "Transferred"], 1, Duration::from_secs(10));
    assert_eq!(done.len(), 1, "{}", ivr.log());
    let log = ivr.log();
    assert!(log.contains("transferred by REFER"), "{log}");
    assert!(!log.contains("transfer answered: bridged"), "{log}");
}

#[test]
fn a_sipp_caller_that_refuses_refer_is_bridged_instead() {
    let dir = tempfile::tempdir().unwrap();
    // The fallback calls the desk itself; this one is busy, so on_failure hangs up, which
    // is the BYE the refusing caller waits for.
    let mut uas = sipp::spawn_uas(&["-sf", scenario("uas_busy.xml"), "-m", "1"]);
    let config = refer_config(dir.path(), uas.addr);
    let ivr = Ivr::start(&["--config", &config]);
    let run = sipp::run(ivr.sip, &["-sf", scenario("refer_refuse.xml"), "-m", "1"]);
    assert_eq!(run.code, 0, "SIPp:\n{}\nivr:\n{}", run.output, ivr.log());
    destination_done(&mut uas);
    let log = ivr.log();
    assert!(
        log.contains("transfer reached no one") && log.contains("Busy"),
        "refused, then the bridged attempt found the desk busy: {log}"
    );
}

/// The operator is a name: SRV gives two targets, the first a socket that never answers.
/// The engine asks our DNS server (`--dns-server`), tries the dead target, gives it up after
/// 4 s of silence and reaches SIPp at the second (RFC 3263 §4.3).
#[test]
fn a_destination_named_in_dns_is_reached_past_a_dead_target() {
    use ivr_tests::dns::{DnsServer, a, srv};
    let dir = tempfile::tempdir().unwrap();
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut uas = destination(dir.path(), &media);
    let dead = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    let dns = DnsServer::start(vec![
        srv("_sip._udp.desk.test.", 10, 0, dead_port, "dead.desk.test."),
        srv(
            "_sip._udp.desk.test.",
            20,
            0,
            uas.addr.port(),
            "live.desk.test.",
        ),
        a("dead.desk.test.", "127.0.0.1"),
        a("live.desk.test.", "127.0.0.1"),
    ]);
    let config = demo_with_operator(dir.path(), "sip:operator@desk.test");
    let ivr = Ivr::start(&["--config", &config, "--dns-server", &dns.addr.to_string()]);

    let mut call = UdpCall::dial(
        ivr.sip,
        "bridge-dns",
        "0 101",
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
    );
    ask_for_someone(&ivr, &call);
    let bridged = receive(&media, Duration::from_secs(20), |n| n > 0);
    assert!(
        !bridged.is_empty(),
        "the destination at the second target hears the bridged call; log:\n{}",
        ivr.log()
    );
    dead.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = dead
        .recv_from(&mut buf)
        .expect("the first target got the INVITE");
    assert!(buf[..n].starts_with(b"INVITE sip:operator@desk.test SIP/2.0"));
    assert_eq!(
        ivr.wait_for(&["trying the next"], 1, Duration::from_secs(1))
            .len(),
        1,
        "the failover is logged:\n{}",
        ivr.log()
    );
    let asked = dns.asked.lock().unwrap().clone();
    assert!(
        asked.iter().any(|q| q == "_sip._udp.desk.test SRV"),
        "{asked:?}"
    );
    call.bye();
    destination_done(&mut uas);
}

#[test]
fn the_demos_five_queues_the_caller_and_the_operator_agent_answers_and_is_bridged() {
    let dir = tempfile::tempdir().unwrap();
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut uas = destination(dir.path(), &media);
    // The demo as shipped, its static `operator` agent moved to the SIPp UAS's address.
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo");
    std::fs::create_dir_all(dir.path().join("prompts")).unwrap();
    for e in std::fs::read_dir(demo.join("prompts")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join("prompts").join(e.file_name())).unwrap();
    }
    let shipped = std::fs::read_to_string(demo.join("config.yaml")).unwrap();
    let edited = shipped.replace(
        "sip:operator@127.0.0.1:5070",
        &format!("sip:operator@{}", uas.addr),
    );
    assert_ne!(shipped, edited, "the demo has the operator agent");
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, edited).unwrap();
    let ivr = Ivr::start(&["--config", config.to_str().unwrap()]);

    let mut call = UdpCall::dial(
        ivr.sip,
        "demo-queue",
        "0 101",
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
    );
    ask_for_someone(&ivr, &call);
    let seen = ivr.wait_for(&["queue: caller joined"], 1, Duration::from_secs(10));
    assert!(!seen.is_empty(), "5 joins the queue:\n{}", ivr.log());
    let seen = ivr.wait_for(&["queue: agent answered"], 1, Duration::from_secs(20));
    assert!(!seen.is_empty(), "the operator answers:\n{}", ivr.log());
    // Bridged: the caller's audio reaches the operator.
    let pcm = recording(1);
    let expected: Vec<u8> = pcm
        .iter()
        .map(|s| Codec::Pcma.encode(Codec::Pcmu.decode(Codec::Pcmu.encode(*s))))
        .collect();
    let mut seq = 100u16;
    let rtp = call.rtp.try_clone().unwrap();
    let engine_media = call.engine_media;
    let speaker = std::thread::spawn(move || {
        for (i, chunk) in pcm.chunks(160).enumerate() {
            let mut p = vec![0x80, 0];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&((i * 160) as u32).to_be_bytes());
            p.extend_from_slice(&0xCA11_0001u32.to_be_bytes());
            p.extend(chunk.iter().map(|s| Codec::Pcmu.encode(*s)));
            seq = seq.wrapping_add(1);
            rtp.send_to(&p, engine_media).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let heard = receive(&media, Duration::from_secs(4), |_| false);
    speaker.join().unwrap();
    let got: Vec<Vec<u8>> = heard
        .iter()
        .filter(|(pt, _, _)| *pt == 8)
        .map(|(_, p, _)| p.clone())
        .collect();
    let (found, total) = frames_found(&expected, &got);
    assert!(
        found * 100 >= total * 90,
        "{found} of {total} frames of the caller reached the operator; log:\n{}",
        ivr.log()
    );
    call.bye();
    destination_done(&mut uas);
}
