//! A queued callback, black box: the real `ivr` binary on 127.0.0.1. A caller over real UDP
//! joins the queue while no agent is logged in, presses the callback key, types a number,
//! confirms it and is hung up. Then a SIPp agent registers (digest, its entry made by
//! `ivr agents add`): the engine rings it first, and once it answers calls the number
//! through the queue's trunk, a SIPp UAS standing in for the caller's phone; both answer and
//! are bridged: RTP sent to the engine on either leg reaches the other side.
//!
//! The engine's media ports are read from the INVITEs SIPp received (`-trace_msg`); the
//! phones' media ports, named in their answers, are sockets of this test.

use ivr_tests::process::{Ivr, run};
use ivr_tests::sipp::{self, scenario};
use ivr_tests::udp_call::UdpCall;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);
const PASSWORD: &str = "agent's secret";

/// RFC 4733 packets of one key press (`event`: 0-9, 11 for #).
fn key(event: u8, seq: &mut u16, ts: u32) -> Vec<Vec<u8>> {
    (0..5)
        .map(|i| {
            let end = i >= 2;
            let mut p = vec![0x80, 101 | if i == 0 { 0x80 } else { 0 }];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&ts.to_be_bytes());
            p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
            p.extend_from_slice(&[event, if end { 0x80 | 10 } else { 10 }]);
            p.extend_from_slice(&(160u16 * (i.min(2) + 1)).to_be_bytes());
            *seq = seq.wrapping_add(1);
            p
        })
        .collect()
}

/// A SIPp answering scenario with `port` (our socket) as its media port.
fn with_media(dir: &Path, name: &str, port: u16) -> String {
    let xml = std::fs::read_to_string(scenario(name))
        .unwrap()
        .replace("@MEDIA_PORT@", &port.to_string());
    let path = dir.join(name);
    std::fs::write(&path, xml).unwrap();
    path.to_str().unwrap().to_string()
}

/// The engine's media port in the INVITE SIPp logged in `trace` (the `m=audio` line that
/// is not `ours`), waiting for it to be written.
fn engine_port(trace: &Path, ours: u16) -> u16 {
    let end = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(trace).unwrap_or_default();
        let port = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("m=audio "))
            .filter_map(|l| l.split(' ').next()?.parse::<u16>().ok())
            .find(|p| *p != ours);
        if let Some(p) = port {
            return p;
        }
        assert!(
            Instant::now() < end,
            "no INVITE in {}: {text}",
            trace.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Send 50 packets (payload type `pt`, a loud constant) from `from` to the engine at `to`;
/// count the audio packets `at` receives that are not silence (transcoded if the other
/// leg speaks the other law).
fn relayed(from: &UdpSocket, pt: u8, to: SocketAddr, at: &UdpSocket) -> usize {
    at.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    let mut buf = [0u8; 2048];
    let mut got = 0;
    for seq in 0..50u16 {
        let mut p = vec![0x80, pt];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&0x0BAD_CAFEu32.to_be_bytes());
        p.extend(std::iter::repeat_n(0x2A, 160));
        from.send_to(&p, to).unwrap();
        let until = Instant::now() + Duration::from_millis(20);
        while Instant::now() < until {
            if let Ok((n, _)) = at.recv_from(&mut buf)
                && n > 12
                && matches!(buf[1] & 0x7F, 0 | 8)
                && buf[12..n].iter().any(|b| *b != 0xFF && *b != 0xD5)
            {
                got += 1;
            }
        }
    }
    got
}

#[test]
fn a_queued_callback_rings_a_sipp_agent_then_a_sipp_phone_behind_the_trunk_and_bridges_them() {
    let dir = tempfile::tempdir().unwrap();
    let (code, entry, err) = run(
        dir.path(),
        &[
            "agents", "add", "alice", "--user", "1001", "--queue", "sales=0",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(code, 0, "{err}");

    // The caller's phone behind the trunk: answers (PCMA) and waits for the BYE.
    let phone_media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let phone_port = phone_media.local_addr().unwrap().port();
    let phone_trace = dir.path().join("phone_messages.log");
    let mut phone = sipp::spawn_uas(&[
        "-sf",
        &with_media(dir.path(), "uas_bridge.xml", phone_port),
        "-m",
        "1",
        "-trace_msg",
        "-message_file",
        phone_trace.to_str().unwrap(),
    ]);

    let config = dir.path().join("queue.yaml");
    std::fs::write(
        &config,
        format!(
            "entry: main\nprompts:\n  hi: {{ silence: 1 }}\n\
             destinations:\n  trunk: {{ uri: \"sip:trunk@{trunk}\", mode: bridge, ring_timeout: 10 }}\n\
             queues:\n  sales:\n    agent_timeout: 10\n    exit_keys: {{ \"3\": callback }}\n    callback: {{ via: trunk, retries: 0 }}\n\
             menus:\n  main:\n    prompt: hi\n    timeout: 10\n    options:\n      \"1\": {{ queue: sales }}\n\
             agents:\n{entry}",
            trunk = phone.addr
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let ivr = Ivr::start_in(
        &data,
        &["--config", config.to_str().unwrap(), "--register-md5-first"],
    );

    // The caller joins (nobody is logged in), asks for a callback on 0491234567, confirms.
    let call = UdpCall::dial(
        ivr.sip,
        "callback-black-box",
        "0 101",
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
    );
    let mut seq = 1u16;
    let mut ts = 8000u32;
    let mut press = |events: &[u8]| {
        for &e in events {
            for p in key(e, &mut seq, ts) {
                call.rtp.send_to(&p, call.engine_media).unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
            ts += 1600;
            std::thread::sleep(Duration::from_millis(60));
        }
    };
    press(&[1]);
    let joined = ivr.wait_for(&["queue: caller joined"], 1, WAIT);
    assert_eq!(joined.len(), 1, "{}", ivr.log());
    press(&[3, 0, 4, 9, 1, 2, 3, 4, 5, 6, 7, 11]);
    std::thread::sleep(Duration::from_millis(300));
    press(&[1]);
    let requested = ivr.wait_for(&["queue: callback requested"], 1, WAIT);
    assert_eq!(requested.len(), 1, "{}", ivr.log());

    // Now the agent registers: it is rung first, answers, then the number is called.
    let desk_media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let desk_port = desk_media.local_addr().unwrap().port();
    let desk_trace = dir.path().join("desk_messages.log");
    let agent = sipp::spawn_uas(&[
        &ivr.sip.to_string(),
        "-sf",
        scenario("agent_register_wait.xml"),
        "-oocsf",
        &with_media(dir.path(), "agent_answer.xml", desk_port),
        "-s",
        "1001",
        "-au",
        "1001",
        "-ap",
        PASSWORD,
        "-m",
        "1",
        "-trace_msg",
        "-message_file",
        desk_trace.to_str().unwrap(),
    ]);
    let connected = ivr.wait_for(&["queue: callback connected"], 1, WAIT);
    assert_eq!(
        connected.len(),
        1,
        "{}\n{}\n{}",
        ivr.log(),
        agent.output(),
        phone.output()
    );
    let log = ivr.log();
    let dialing = log.find("queue: calling the caller back").expect("dialled");
    let agent_rung = log.find("queue: ringing an agent").expect("the agent rung");
    assert!(agent_rung < dialing, "the agent first: {log}");

    // Both bridged: what each phone sends the engine reaches the other.
    let to_agent_leg = SocketAddr::from(([127, 0, 0, 1], engine_port(&desk_trace, desk_port)));
    let to_phone_leg = SocketAddr::from(([127, 0, 0, 1], engine_port(&phone_trace, phone_port)));
    // The phone answered PCMA, the agent PCMU: the engine transcodes.
    let heard_by_desk = relayed(&phone_media, 8, to_phone_leg, &desk_media);
    let heard_by_phone = relayed(&desk_media, 0, to_agent_leg, &phone_media);
    assert!(
        heard_by_desk >= 40 && heard_by_phone >= 40,
        "of 50 packets: {heard_by_desk} reached the agent, {heard_by_phone} the caller's phone ({to_agent_leg} {to_phone_leg} {desk_port} {phone_port})\n{}\n{}",
        std::fs::read_to_string(&desk_trace).unwrap_or_default(),
        std::fs::read_to_string(&phone_trace).unwrap_or_default()
    );

    // A stop hangs both up: the phone's SIPp gets its BYE and ends.
    let mut ivr = ivr;
    ivr.terminate();
    let end = Instant::now() + WAIT;
    let run = loop {
        if let Some(r) = phone.try_finish() {
            break r;
        }
        assert!(
            Instant::now() < end,
            "the phone's SIPp never ended:\n{}",
            phone.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(run.code, 0, "{}", run.output);
    drop(agent);
}

/// Press `events` (RFC 4733 codes) on `call`.
fn press(call: &UdpCall, events: &[u8]) {
    let mut seq = 100u16;
    let mut ts = 80_000u32;
    for &e in events {
        for p in key(e, &mut seq, ts) {
            call.rtp.send_to(&p, call.engine_media).unwrap();
            std::thread::sleep(Duration::from_millis(10));
        }
        ts += 1600;
        std::thread::sleep(Duration::from_millis(60));
    }
}

/// A caller joins `sales`, asks for a callback on `number` (typed: its caller ID is not a
/// number) and confirms; the engine takes it and hangs up.
fn leave_callback(ivr: &Ivr, call_id: &str, number: &[u8], n: usize) {
    let call = UdpCall::dial(
        ivr.sip,
        call_id,
        "0 101",
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
    );
    press(&call, &[1]);
    assert_eq!(ivr.wait_for(&["queue: caller joined"], n, WAIT).len(), n);
    let mut keys = vec![3];
    keys.extend_from_slice(number);
    keys.push(11);
    press(&call, &keys);
    std::thread::sleep(Duration::from_millis(300));
    press(&call, &[1]);
    let stored = ivr.wait_for(&["queued callback stored"], n, WAIT);
    assert_eq!(stored.len(), n, "{}", ivr.log());
}

#[test]
fn staff_see_and_cancel_queued_callbacks_and_the_others_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let users = ["staff", "--users", "staff.yaml"];
    let add = [&users[..], &["add-user", "lead", "--mailbox", "*"]].concat();
    let (code, _, err) = run(&data, &add, "a long staff password\n");
    assert_eq!(code, 0, "{err}");
    let (code, token, err) = run(&data, &[&users[..], &["add-token", "lead"]].concat(), "");
    assert_eq!(code, 0, "{err}");
    let auth = format!("Bearer {}", token.trim());
    let config = dir.path().join("queue.yaml");
    std::fs::write(
        &config,
        "entry: main\nprompts:\n  hi: { silence: 1 }\n\
         destinations:\n  trunk: { uri: \"sip:trunk@127.0.0.1:9\", mode: bridge }\n\
         queues:\n  sales:\n    exit_keys: { \"3\": callback }\n    callback: { via: trunk }\n\
         menus:\n  main:\n    prompt: hi\n    timeout: 10\n    options:\n      \"1\": { queue: sales }\n",
    )
    .unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let mut ivr = Ivr::start_in(&data, &args);
    leave_callback(&ivr, "cb-staff-1", &[0, 4, 9, 1, 1, 1, 1, 1, 1, 1], 1);
    leave_callback(&ivr, "cb-staff-2", &[0, 4, 9, 2, 2, 2, 2, 2, 2, 2], 2);

    // Staff see both, as queued callbacks of `sales`.
    let api = |ivr: &Ivr, method: &str, path: &str, body: &[u8]| {
        let addr = ivr.http.expect("http");
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        ivr_tests::http::request(addr, method, path, &headers, body).unwrap()
    };
    let list = api(&ivr, "GET", "/api/callbacks", b"").json();
    let list = list.as_array().expect("a list");
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(
        list.iter().all(|c| c["kind"] == "queue_callback"
            && c["queue"] == "sales"
            && c["status"] == "new")
    );
    let first = list
        .iter()
        .find(|c| c["callback_number"] == "0491111111")
        .expect("the first");
    let id = first["id"].as_str().unwrap().to_string();

    // Closing the first cancels it in the queue.
    let r = api(
        &ivr,
        "POST",
        &format!("/api/callbacks/{id}/status"),
        br#"{"status": "resolved", "note": "called from the desk"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let cancelled = ivr.wait_for(&["queue: callback cancelled"], 1, WAIT);
    assert_eq!(cancelled.len(), 1, "{}", ivr.log());

    // A restart: the second goes back in line.
    ivr.terminate();
    let ivr = Ivr::start_in(&data, &args);
    let back = ivr.wait_for(&["queued callbacks back in line", "\"count\":1"], 1, WAIT);
    assert_eq!(back.len(), 1, "{}", ivr.log());
    let metrics = ivr_tests::http::get(ivr.http.expect("http"), "/metrics").text();
    assert!(
        metrics.contains("ivr_queue_waiting{queue=\"sales\"} 1"),
        "{metrics}"
    );
}
