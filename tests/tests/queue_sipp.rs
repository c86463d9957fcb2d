//! Call-center queues, black box: the real `ivr` binary on 127.0.0.1, a SIPp agent's phone
//! that registers with digest (its entry made by `ivr agents add`) and answers the queue's
//! call, and a caller over real UDP who presses 1 to join the queue and talks to the agent.
//!
//! The agent's SIP is SIPp's (`agent_register_wait.xml`, and `agent_answer.xml` as its
//! out-of-call scenario for the INVITE); its media port, named in SIPp's answer, is a socket
//! of this test, so the test hears what the agent hears. SIPp 3.6 reads only the first
//! challenge and knows only MD5, so the engine runs with `--register-md5-first`.

use ivr_audio::Codec;
use ivr_tests::http;
use ivr_tests::process::{Ivr, run};
use ivr_tests::sipp::{self, scenario};
use ivr_tests::udp_call::{UdpCall, key_press};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);
const PASSWORD: &str = "agent's secret";

#[test]
fn a_registered_sipp_agent_answers_the_queue_and_hears_the_caller() {
    agent_answers("u1");
}

/// The same over TCP: the engine reaches the agent on the connection its REGISTER came on.
#[test]
fn a_sipp_agent_registered_over_tcp_is_rung_on_its_connection() {
    agent_answers("t1");
}

/// A SIPp agent on `transport` (`u1`, `t1`) registers, answers, and hears the caller.
fn agent_answers(transport: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (code, entry, err) = run(
        dir.path(),
        &[
            "agents", "add", "alice", "--user", "1001", "--queue", "sales=0",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(code, 0, "{err}");
    // The queue whispers half a second of a 600 Hz tone to the agent who answers.
    let tone: Vec<i16> = (0..4000)
        .map(|i| {
            (5000.0 * (2.0 * std::f64::consts::PI * 600.0 * f64::from(i) / 8000.0).sin()) as i16
        })
        .collect();
    let wav = ivr_audio::wav::encode_pcm16(8000, &tone);
    std::fs::write(dir.path().join("whisper.wav"), &wav).unwrap();
    let whisper = ivr_audio::Prompt::from_wav("whisper.wav", &wav).unwrap();
    let config = dir.path().join("queue.yaml");
    std::fs::write(
        &config,
        format!(
            "entry: main\nprompts:\n  hi: {{ silence: 1 }}\n  whisper: whisper.wav\nqueues:\n  sales: {{ agent_timeout: 10, whisper: whisper }}\nmenus:\n  main:\n    prompt: hi\n    timeout: 10\n    options:\n      \"1\": {{ queue: sales }}\nagents:\n{entry}"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let ivr = Ivr::start_in(
        &data,
        &["--config", config.to_str().unwrap(), "--register-md5-first"],
    );

    // The agent's phone: registers, then answers with our media socket's port.
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let answer = std::fs::read_to_string(scenario("agent_answer.xml"))
        .unwrap()
        .replace(
            "@MEDIA_PORT@",
            &media.local_addr().unwrap().port().to_string(),
        );
    let answer_path = dir.path().join("agent_answer.xml");
    std::fs::write(&answer_path, answer).unwrap();
    let target = ivr.sip.to_string();
    let agent = sipp::spawn_uas(&[
        &target,
        "-sf",
        scenario("agent_register_wait.xml"),
        "-oocsf",
        answer_path.to_str().unwrap(),
        "-s",
        "1001",
        "-au",
        "1001",
        "-ap",
        PASSWORD,
        "-m",
        "1",
        "-t",
        transport,
    ]);
    let registered = ivr.wait_for(&["agent registered", "\"agent\":\"alice\""], 1, WAIT);
    assert_eq!(registered.len(), 1, "{}\n{}", ivr.log(), agent.output());

    // The caller joins the queue.
    let mut call = UdpCall::dial(
        ivr.sip,
        "queue-black-box",
        "0 101",
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
    );
    let mut seq = 1u16;
    for p in key_press(1, &mut seq, 8000) {
        call.rtp.send_to(&p, call.engine_media).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let bridged = ivr.wait_for(&["agent answered: bridged", "\"agent\":\"alice\""], 1, WAIT);
    assert_eq!(bridged.len(), 1, "{}\n{}", ivr.log(), agent.output());
    // Bridged once the whisper has played: the agent's audio began with it, frame for frame.
    media
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut heard = Vec::new();
    let mut buf = [0u8; 2048];
    while heard.len() < whisper.encoded(Codec::Pcmu).len() {
        let (n, _) = media.recv_from(&mut buf).expect("the agent's audio");
        heard.extend_from_slice(&buf[12..n]);
    }
    assert!(
        heard == whisper.encoded(Codec::Pcmu),
        "the agent hears the whisper first"
    );
    let metrics = http::get(ivr.http.expect("http"), "/metrics").text();
    assert!(
        metrics.contains("ivr_agents{state=\"on_call\"} 1")
            && metrics.contains("ivr_agents{state=\"available\"} 0")
            && metrics.contains("ivr_queue_waiting{queue=\"sales\"} 0"),
        "{metrics}"
    );

    // The caller speaks one second: the agent hears it.
    let pcm: Vec<i16> = (0..8000)
        .map(|i| {
            let t = i as f64 / 8000.0;
            (6000.0 * (2.0 * std::f64::consts::PI * 500.0 * t).sin() + 900.0) as i16
        })
        .collect();
    let ulaw: Vec<u8> = pcm.iter().map(|s| Codec::Pcmu.encode(*s)).collect();
    media
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut ts = 16000u32;
    for (i, frame) in ulaw.chunks(160).enumerate() {
        let mut p = vec![0x80, 0];
        p.extend_from_slice(&(seq.wrapping_add(i as u16)).to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        p.extend_from_slice(frame);
        ts = ts.wrapping_add(160);
        call.rtp.send_to(&p, call.engine_media).unwrap();
        let until = Instant::now() + Duration::from_millis(20);
        while Instant::now() < until {
            if let Ok((n, _)) = media.recv_from(&mut buf)
                && n > 12
                && buf[1] & 0x7F == 0
            {
                got.push(buf[12..n].to_vec());
            }
        }
    }
    let end = Instant::now() + Duration::from_millis(500);
    while Instant::now() < end {
        if let Ok((n, _)) = media.recv_from(&mut buf)
            && n > 12
            && buf[1] & 0x7F == 0
        {
            got.push(buf[12..n].to_vec());
        }
    }
    let frames: Vec<&[u8]> = ulaw.chunks_exact(160).collect();
    let found = frames
        .iter()
        .filter(|f| got.iter().any(|g| g.as_slice() == **f))
        .count();
    assert!(
        found * 100 >= frames.len() * 90,
        "{found} of {} frames reached the agent; log:\n{}",
        frames.len(),
        ivr.log()
    );

    // The caller hangs up: the agent's leg gets BYE (SIPp answers it), the call completes.
    call.bye();
    let done = ivr.wait_for(&["queue: call completed", "\"agent\":\"alice\""], 1, WAIT);
    assert_eq!(done.len(), 1, "{}", ivr.log());
    assert!(
        ivr.log().contains("\"queue\":\"sales\""),
        "queue events are logged with their queue: {}",
        ivr.log()
    );

    // The queue log is in the store: the report counts the call, answered, and alice's.
    let data_dir = data.to_str().unwrap();
    let report = |_: ()| {
        let (code, out, err) = run(
            dir.path(),
            &["queues", "report", "--json", "--data-dir", data_dir],
            "",
        );
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let end = Instant::now() + WAIT;
    let mut r = report(());
    while r["queues"][0]["answered"] != 1 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
        r = report(());
    }
    let sales = &r["queues"][0];
    assert_eq!(sales["queue"], "sales", "{r}");
    assert_eq!(sales["entered"], 1, "{r}");
    assert_eq!(sales["answered"], 1, "{r}");
    assert_eq!(r["agents"][0]["agent"], "alice", "{r}");
    assert_eq!(r["agents"][0]["answered"], 1, "{r}");
}
