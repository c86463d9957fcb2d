//! `bridge-bench`: the engine's cost of relaying bridged calls, next to menu calls (used by
//! `bench/bridge.sh`).
//!
//! In process, no sockets: N calls in the menu (the engine plays a prompt, the callers
//! stream audio in), then N calls bridged to a PCMA destination (both legs stream audio in,
//! the engine relays and transcodes both ways), each for `--seconds` of virtual time fed at
//! the real 20 ms cadence. It reports the engine's time (`handle_input` + `poll_output`,
//! measured with the monotonic clock) per call-second. Socket and driver costs are not in
//! these figures; `bench/load.sh` measures the whole binary.

use ivr_engine::{Input, Output};
use ivr_tests::caller::{Caller, Net, request, response};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DESK: &str = "127.0.0.1:7100";

fn menus() -> Arc<ivr_menus::Menus> {
    let yaml = format!(
        "entry: m\nprompts:\n  long: long.wav\ndestinations:\n  desk: {{ uri: \"sip:desk@{DESK}\", mode: bridge }}\n\
         menus:\n  m:\n    prompt: long\n    options:\n      \"0\": {{ transfer: desk }}\n"
    );
    Arc::new(
        ivr_menus::compile(&yaml, &mut |_| {
            Ok(ivr_audio::wav::encode_pcm16(
                8000,
                &ivr_audio::tone::sine(8000, 440.0, 8000 * 120, 8000.0),
            ))
        })
        .expect("menu compiles"),
    )
}

/// The destination's 200 to the engine's INVITE, with PCMA at `media`.
fn answer(invite: &ivr_sip::Request, media: SocketAddr, tag: &str) -> Vec<u8> {
    use ivr_sip::{HeaderName, Response, StatusCode};
    let mut r = Response::to_request(invite, StatusCode::OK);
    let to = invite.headers.get(&HeaderName::To).expect("To").to_string();
    r.headers.set(HeaderName::To, format!("{to};tag={tag}"));
    r.headers
        .push(HeaderName::Contact, format!("<sip:desk@{DESK}>"));
    r.headers.push(HeaderName::ContentType, "application/sdp");
    r.body = format!(
        "v=0\r\no=d 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n",
        media.port()
    )
    .into_bytes();
    r.to_bytes()
}

/// PCMA packets of `pcm`, 20 ms each.
fn pcma(pcm: &[i16], ssrc: u32) -> Vec<Vec<u8>> {
    pcm.chunks(160)
        .enumerate()
        .map(|(n, c)| {
            let mut p = vec![0x80, 8];
            p.extend_from_slice(&(n as u16).to_be_bytes());
            p.extend_from_slice(&((n * 160) as u32).to_be_bytes());
            p.extend_from_slice(&ssrc.to_be_bytes());
            p.extend(c.iter().map(|s| ivr_audio::Codec::Pcma.encode(*s)));
            p
        })
        .collect()
}

type Stream = (ivr_engine::LegHandle, SocketAddr, Vec<Vec<u8>>);

/// Set up `n` calls (bridged or not); the streams to feed.
fn setup(net: &mut Net, n: u16, bridged: bool, seconds: usize) -> Vec<Stream> {
    let desk: SocketAddr = DESK.parse().expect("address");
    let speech = ivr_audio::tone::sine(8000, 300.0, 8000 * (seconds + 2), 6000.0);
    let mut streams = Vec::new();
    for i in 0..n {
        let mut caller = Caller::new(
            &format!("127.0.0.1:{}", 12_000 + i * 2),
            &format!("b{bridged}{i}"),
        );
        let invite = caller.invite(true);
        net.send_sip(caller.transport, caller.addr, &invite);
        let ok = response(&net.take_sip(caller.addr), 200)
            .expect("answered")
            .clone();
        caller.on_response(&ok);
        let ack = caller.ack(None);
        net.send_sip(caller.transport, caller.addr, &ack);
        let call = net.last_call().expect("a call");
        if bridged {
            net.press(&mut caller, call, ivr_audio::Digit::D0);
            let invite = request(&net.take_sip(desk), "INVITE")
                .expect("the desk rings")
                .clone();
            let media = SocketAddr::from(([127, 0, 0, 1], 20_000 + i * 2));
            net.send_sip(
                caller.transport,
                desk,
                &answer(&invite, media, &format!("d{i}")),
            );
            net.take_sip(desk);
            streams.push((call.leg(1), media, pcma(&speech, 0xD000 + u32::from(i))));
        }
        streams.push((call.leg(0), caller.media, caller.audio_packets(&speech)));
    }
    streams
}

/// Feed every stream at 20 ms for `seconds`, waking the engine at its deadlines; the time
/// spent in the engine.
fn run(net: &mut Net, streams: &[Stream], seconds: usize) -> (Duration, usize, usize) {
    let start = net.now;
    let end = start + Duration::from_secs(seconds as u64);
    let (mut fed, mut sent) = (0usize, 0usize);
    let mut busy = Duration::ZERO;
    let mut wakes = 0usize;
    loop {
        let t0 = Instant::now();
        let due = ((net.now - start).as_millis() / 20) as usize + 1;
        while fed < due.min(seconds * 50) {
            for (leg, from, packets) in streams {
                net.engine.handle_input(
                    net.now,
                    Input::Rtp {
                        leg: *leg,
                        from: *from,
                        data: &packets[fed],
                    },
                );
            }
            fed += 1;
        }
        let next = loop {
            match net.engine.poll_output() {
                Output::Timeout(t) => break t,
                Output::Rtp { .. } => sent += 1,
                _ => {}
            }
        };
        busy += t0.elapsed();
        let Some(t) = next.filter(|t| *t <= end) else {
            break;
        };
        net.now = net.now.max(t);
        wakes += 1;
        let t0 = Instant::now();
        net.engine.handle_input(net.now, Input::Timeout);
        busy += t0.elapsed();
    }
    (busy, sent, wakes)
}

fn main() {
    let mut calls = 100u16;
    let mut seconds = 20usize;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let v = args.next().unwrap_or_default();
        match flag.as_str() {
            "--calls" => calls = v.parse().expect("--calls N"),
            "--seconds" => seconds = v.parse().expect("--seconds S"),
            _ => panic!("usage: bridge-bench [--calls N] [--seconds S]"),
        }
    }
    for bridged in [false, true] {
        let mut net = Net::with_config(menus(), |c| c.media_timeout = Duration::from_secs(600));
        let streams = setup(&mut net, calls, bridged, seconds);
        let (busy, sent, wakes) = run(&mut net, &streams, seconds);
        let call_seconds = f64::from(calls) * seconds as f64;
        println!(
            "{:>7} calls x {seconds} s, {} legs: engine {:.3} s, {:.1} µs per call-second, {:.2} µs per packet sent ({sent} sent, {} received, {wakes} wake-ups)",
            if bridged { "bridged" } else { "menu" },
            streams.len(),
            busy.as_secs_f64(),
            busy.as_secs_f64() * 1e6 / call_seconds,
            busy.as_secs_f64() * 1e6 / sent.max(1) as f64,
            streams.len() * seconds * 50,
        );
    }
}
