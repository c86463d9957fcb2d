//! In-band keys through the real binary: a caller whose SDP offers no telephone-event sends
//! its keys as DTMF tones in its PCMU audio, and its line echoes the engine's own prompts
//! back at −10 dB, mixed under the keys. The first key comes 1.2 s after the answer, while
//! the greeting plays; every later one interrupts the prompt of the menu it reaches.

use ivr_audio::dtmf_set::amplitude;
use ivr_audio::{Codec, Digit};
use ivr_tests::process::Ivr;
use ivr_tests::udp_call::UdpCall;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);
/// The echo's gain: −10 dB.
const ECHO: f64 = 0.316;

fn keys_logged(ivr: &Ivr) -> Vec<String> {
    ivr.log()
        .lines()
        .filter(|l| l.contains(r#""message":"key""#))
        .filter_map(|l| {
            let rest = &l[l.find(r#""digit":""#)? + 9..];
            Some(rest[..rest.find('"')?].to_string())
        })
        .collect()
}

#[test]
fn in_band_keys_right_after_the_answer_and_during_echoed_prompts() {
    let ivr = Ivr::start(&[]);
    let call = UdpCall::dial(ivr.sip, "inband-keys", "0", "a=rtpmap:0 PCMU/8000\r\n");
    assert!(
        !call.answer.contains("telephone-event"),
        "none offered, none answered: {}",
        call.answer
    );
    call.rtp.set_nonblocking(true).expect("non-blocking RTP");
    // 2: English (during the greeting), 3: opening hours (during the English menu), 0: back
    // to the language menu (during the hours), 1: French (during the greeting), 9: goodbye.
    let keys: Vec<Digit> = "23019".chars().filter_map(Digit::from_char).collect();
    let mut next_key = 0;
    // The first key 1.2 s (60 frames) after the answer; each next one 0.5 s after the engine
    // has logged the previous one, so it lands in the prompt that key started.
    let mut key_at = 60u64;
    let mut tone: VecDeque<i16> = VecDeque::new();
    let mut echo: VecDeque<i16> = VecDeque::new();
    let (mut seq, mut ts) = (1u16, 0u32);
    let mut buf = [0u8; 2048];
    let start = Instant::now();
    let mut bye = false;
    for frame in 0u64.. {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the call did not end; keys heard {:?}; log:\n{}",
            keys_logged(&ivr),
            ivr.log()
        );
        if next_key < keys.len() && frame >= key_at && tone.is_empty() {
            // 40 ms of the key at −10 dBm0 per tone.
            tone.extend(ivr_audio::tone::dtmf(
                keys[next_key],
                8000,
                320,
                amplitude(-10.0),
            ));
            next_key += 1;
            key_at = u64::MAX;
        }
        if next_key < keys.len() && key_at == u64::MAX && keys_logged(&ivr).len() == next_key {
            key_at = frame + 25;
        }
        // Our 20 ms: the key tone (if any) over the echo of what the engine sent us.
        let mut packet = vec![0x80, 0];
        packet.extend_from_slice(&seq.to_be_bytes());
        packet.extend_from_slice(&ts.to_be_bytes());
        packet.extend_from_slice(&0x1B4Du32.to_be_bytes());
        for _ in 0..160 {
            let e = echo.pop_front().map_or(0.0, |s| f64::from(s) * ECHO);
            let t = tone.pop_front().map_or(0.0, f64::from);
            packet.push(Codec::Pcmu.encode((e + t).round().clamp(-32768.0, 32767.0) as i16));
        }
        call.rtp
            .send_to(&packet, call.engine_media)
            .expect("send RTP");
        seq = seq.wrapping_add(1);
        ts = ts.wrapping_add(160);
        // What the engine sent meanwhile becomes the echo.
        while let Ok((n, _)) = call.rtp.recv_from(&mut buf) {
            if n > 12 && buf[1] & 0x7F == 0 {
                echo.extend(buf[12..n].iter().map(|c| Codec::Pcmu.decode(*c)));
            }
        }
        while echo.len() > 1600 {
            echo.pop_front();
        }
        // The engine hangs up after the goodbye (key 9).
        call.sip.set_nonblocking(true).expect("non-blocking SIP");
        while let Ok((n, _)) = call.sip.recv_from(&mut buf) {
            if buf[..n].starts_with(b"BYE ") {
                bye = true;
            }
        }
        if bye {
            break;
        }
        // Pace at 20 ms from the start, not from the last send.
        let due = start + Duration::from_millis(20 * (frame + 1));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    assert_eq!(
        keys_logged(&ivr),
        ["2", "3", "0", "1", "9"],
        "{}",
        ivr.log()
    );
    let menus: Vec<&str> = ["language", "main_en", "language", "main_fr"].to_vec();
    let entered: Vec<String> = ivr
        .wait_for(&[r#""message":"menu""#], 4, WAIT)
        .iter()
        .filter_map(|l| {
            let rest = &l[l.find(r#""menu":""#)? + 8..];
            Some(rest[..rest.find('"')?].to_string())
        })
        .collect();
    assert_eq!(entered, menus);
}
