//! Call-center queues with a real softphone: baresip registers as an agent with digest (its
//! entry made by `ivr agents add`), auto-answers the queue's call, and the caller hears the
//! WAV baresip plays.
//!
//! baresip puts the address of a non-loopback interface in its SDP (it ignores 127.0.0.1), so
//! the test runs again inside its own network namespace (`unshare -n`: only `lo`, with
//! 127.0.0.1 and a private 10.9.9.9 for baresip to name), as `transfer_sipp.rs` does.

use ivr_audio::Codec;
use ivr_tests::process::{Ivr, run};
use ivr_tests::udp_call::{UdpCall, key_press};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);
const PASSWORD: &str = "baresip-agent-secret";

/// A rising tone: no 20 ms frame of it is silence.
fn recording(seconds: usize) -> Vec<i16> {
    (0..8000 * seconds)
        .map(|i| {
            let t = i as f64 / 8000.0;
            let f = 300.0 + 200.0 * t;
            (7000.0 * (2.0 * std::f64::consts::PI * f * t).sin() + 900.0) as i16
        })
        .collect()
}

/// baresip, killed when dropped (also when an assertion fails first).
struct Baresip(std::process::Child);

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn baresip_registers_as_an_agent_and_answers_a_queued_caller() {
    if ivr_tests::process::in_own_netns() {
        return agent_call();
    }
    ivr_tests::process::rerun_in_own_netns(
        "baresip_registers_as_an_agent_and_answers_a_queued_caller",
    );
}

fn agent_call() {
    assert!(
        std::process::Command::new("baresip")
            .arg("-h")
            .output()
            .is_ok(),
        "baresip is not installed: `apt-get install -y baresip` (the test command does this)"
    );
    let dir = tempfile::tempdir().unwrap();
    let (code, entry, err) = run(
        dir.path(),
        &[
            "agents", "add", "alice", "--user", "1001", "--queue", "sales=0",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(code, 0, "{err}");
    let config = dir.path().join("queue.yaml");
    std::fs::write(
        &config,
        format!(
            "entry: main\nprompts:\n  hi: {{ silence: 1 }}\nqueues:\n  sales: {{ agent_timeout: 15 }}\nmenus:\n  main:\n    prompt: hi\n    timeout: 10\n    options:\n      \"1\": {{ queue: sales }}\nagents:\n{entry}"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // baresip 1.0 (libre) fails the REGISTER (ENOSYS) when a SHA-256 challenge is present
    // at all, so this agent's engine challenges with MD5 only.
    let ivr = Ivr::start_in(
        &data,
        &["--config", config.to_str().unwrap(), "--register-md5-only"],
    );

    let home = dir.path().join("baresip");
    std::fs::create_dir_all(&home).unwrap();
    let port = ivr_tests::sipp::free_port();
    let wav = dir.path().join("agent.wav");
    // Longer than the caller listens: the caller is the one who hangs up.
    std::fs::write(&wav, ivr_audio::wav::encode_pcm16(8000, &recording(8))).unwrap();
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
    // The agent's account: registers with the engine as 1001, answers by itself.
    std::fs::write(
        home.join("accounts"),
        format!(
            "<sip:1001@{engine}>;auth_pass={PASSWORD};regint=60;answermode=auto;audio_codecs=PCMA\n",
            engine = ivr.sip
        ),
    )
    .unwrap();
    let mut baresip = Baresip(
        std::process::Command::new("baresip")
            .arg("-f")
            .arg(&home)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start baresip"),
    );
    let log = ivr_tests::process::capture(baresip.0.stdout.take().unwrap());
    let registered = ivr.wait_for(&["agent registered", "\"agent\":\"alice\""], 1, WAIT);
    assert_eq!(
        registered.len(),
        1,
        "baresip registered with digest; ivr:\n{}\nbaresip:\n{}",
        ivr.log(),
        log.lock().unwrap()
    );

    let mut call = UdpCall::dial(
        ivr.sip,
        "queue-baresip",
        "0 101",
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
    );
    let mut seq = 1u16;
    for p in key_press(1, &mut seq, 8000) {
        call.rtp.send_to(&p, call.engine_media).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let bridged = ivr.wait_for(&["agent answered: bridged", "\"agent\":\"alice\""], 1, WAIT);
    assert_eq!(
        bridged.len(),
        1,
        "baresip answered the queue's call; ivr:\n{}\nbaresip:\n{}",
        ivr.log(),
        log.lock().unwrap()
    );

    // What baresip plays reaches the caller (PCMA from baresip, PCMU to the caller).
    call.rtp
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let end = Instant::now() + Duration::from_secs(3);
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut buf = [0u8; 2048];
    while Instant::now() < end {
        if let Ok((n, _)) = call.rtp.recv_from(&mut buf)
            && n > 12
            && buf[1] & 0x7F == 0
        {
            got.push(buf[12..n].to_vec());
        }
    }
    let loud = got
        .iter()
        .filter(|p| {
            p.iter()
                .map(|b| i32::from(Codec::Pcmu.decode(*b)).abs())
                .max()
                > Some(3000)
        })
        .count();
    let expected: Vec<u8> = recording(8)
        .iter()
        .map(|s| Codec::Pcmu.encode(Codec::Pcma.decode(Codec::Pcma.encode(*s))))
        .collect();
    let frames: Vec<&[u8]> = expected.chunks_exact(160).collect();
    let intact = got
        .iter()
        .filter(|p| frames.contains(&p.as_slice()))
        .count();
    assert!(
        loud >= 50 && intact >= 25,
        "the caller hears baresip: {loud} loud frames, {intact} intact of {}",
        got.len()
    );
    call.bye();
    let ended = ivr.wait_for(&["call ended"], 1, Duration::from_secs(10));
    assert_eq!(ended.len(), 1, "{}", ivr.log());
    drop(baresip);
}
