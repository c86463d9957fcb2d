//! End to end with a client of our own: call the real binary over UDP, decode the G.711 it
//! sends, and check it is the greeting's audio (SIPp cannot check what it hears).

use ivr_audio::{Codec, Prompt};
use ivr_tests::process::Ivr;
use ivr_tests::udp_call::UdpCall;
use std::time::{Duration, Instant};

fn greeting() -> Vec<i16> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo/prompts");
    let mut samples = Vec::new();
    for f in ["lang_fr.wav", "lang_en.wav"] {
        let bytes = std::fs::read(dir.join(f)).expect("demo prompt");
        let p = Prompt::from_wav(f, &bytes).expect("prompt loads");
        // what the engine should send: the prompt encoded in PCMA, decoded back
        samples.extend(
            p.encoded(Codec::Pcma)
                .iter()
                .map(|&c| Codec::Pcma.decode(c)),
        );
    }
    samples
}

#[test]
fn the_caller_hears_the_greeting() {
    let ivr = Ivr::start(&[]);
    let mut call = UdpCall::dial(
        ivr.sip,
        "audio-check",
        "8 101",
        "a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
    );
    let rtp = &call.rtp;
    let mut buf = [0u8; 4096];

    // Collect 3 s of RTP, placed by timestamp, each packet compared with the greeting.
    let expected = greeting();
    let mut wrong_packets = Vec::new();
    let mut first: Option<(u32, u16)> = None;
    let mut audio = vec![0i16; 8000 * 3];
    let mut arrivals = Vec::new();
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        let Ok((n, _)) = rtp.recv_from(&mut buf) else {
            break;
        };
        let p = &buf[..n];
        assert_eq!(p[0] >> 6, 2, "RTP version 2");
        assert_eq!(p[1] & 0x7F, 8, "PCMA, as offered first");
        let seq = u16::from_be_bytes([p[2], p[3]]);
        let ts = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        let (ts0, seq0) = *first.get_or_insert((ts, seq));
        assert_eq!(
            ts.wrapping_sub(ts0),
            seq.wrapping_sub(seq0) as u32 * 160,
            "timestamps advance 160 per packet"
        );
        let at = ts.wrapping_sub(ts0) as usize;
        if at + 160 <= audio.len() {
            for (i, c) in p[12..].iter().enumerate() {
                audio[at + i] = Codec::Pcma.decode(*c);
            }
            // Sample for sample the greeting, at the place its timestamp says.
            if audio[at..at + 160] != expected[at..at + 160] {
                wrong_packets.push(at / 160);
            }
        }
        arrivals.push(Instant::now());
    }
    assert!(arrivals.len() >= 140, "{} packets in 3 s", arrivals.len());
    // Paced at 20 ms: 3 s of packets take about 3 s to arrive, not a burst.
    let span = *arrivals.last().unwrap() - arrivals[0];
    assert!(
        span >= Duration::from_millis(2700),
        "packets arrived over {span:?}"
    );

    // Keep what was heard, for a person to listen to (sox/aplay) after a run.
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("received_greeting.wav");
    std::fs::write(&out, ivr_audio::wav::encode_pcm16(8000, &audio)).unwrap();

    assert!(
        wrong_packets.is_empty(),
        "packets that are not the greeting, sample for sample: {wrong_packets:?}"
    );

    call.bye();
}
