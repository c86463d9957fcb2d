//! The RTP path must not touch the heap: with 100 calls in the menu, ten seconds of RTP
//! pacing (50,000 packets out) and of the callers' audio (50,000 packets in) through
//! `Engine::handle_input` / `poll_output` allocate nothing; nor does receiving audio that
//! the in-band DTMF detector examines. An instrumented global allocator is read around the
//! engine calls only; the tests take turns, since it counts every thread. (Keys and
//! recording frames are not measured here: a key makes the menu act, which allocates by
//! design.) The same holds for 100 bridged calls relaying audio both ways with PCMU↔PCMA
//! transcoding. The driver's own media path (every leg's sockets read through one poll into
//! one buffer, and sent from) allocates nothing per packet either, nor do the loop's timed
//! wake-ups (the timerfd alarm) and its lateness histogram.

use ivr_engine::{Input, Output};
use ivr_tests::caller::{Caller, Net};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Held by each test while it measures.
static TURN: Mutex<()> = Mutex::new(());

#[test]
fn rtp_pacing_allocates_nothing_per_packet() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    // A menu whose greeting lasts a minute, so every call plays prompt audio throughout.
    let yaml = "entry: m\nprompts:\n  long: long.wav\nmenus:\n  m:\n    prompt: long\n    options:\n      \"1\": { repeat: true }\n";
    let menus = ivr_menus::compile(yaml, &mut |_| {
        Ok(ivr_audio::wav::encode_pcm16(
            8000,
            &ivr_audio::tone::sine(8000, 440.0, 8000 * 60, 8000.0),
        ))
    })
    .expect("menu compiles");
    // The server's send lead: packets leave up to 0.5 ms before their time.
    let mut net = Net::with_config(Arc::new(menus), |c| {
        c.media_timeout = Duration::from_secs(600);
        c.rtp_send_lead = Duration::from_micros(500);
    });
    // Each caller's audio for the measured ten seconds, built before measuring.
    let speech = ivr_audio::tone::sine(8000, 300.0, 8000 * 11, 6000.0);
    let mut incoming = Vec::new();
    for i in 0..100 {
        let mut caller = Caller::new(&format!("127.0.0.1:{}", 10_000 + i * 2), &format!("c{i}"));
        let invite = caller.invite(true);
        net.send_sip(caller.transport, caller.addr, &invite);
        let ok = ivr_tests::caller::response(&net.take_sip(caller.addr), 200)
            .expect("answered")
            .clone();
        caller.on_response(&ok);
        let ack = caller.ack(None);
        net.send_sip(caller.transport, caller.addr, &ack);
        let call = net.last_call().expect("a call");
        incoming.push((call.leg(0), caller.media, caller.audio_packets(&speech)));
    }
    // Warm up: queues reach their working size, with the callers talking.
    for n in 0..50 {
        for (leg, from, packets) in &incoming {
            net.send_rtp(*leg, *from, &packets[n]);
        }
        net.advance(Duration::from_millis(20));
    }
    net.rtp.clear();
    let start = net.now;
    let mut fed = 50;

    let end = net.now + Duration::from_secs(10);
    let mut packets = 0usize;
    let mut allocations = 0usize;
    let mut received = 0usize;
    loop {
        let region = Region::new(GLOBAL);
        // Every caller's packets due by now (one per 20 ms), as the driver would hand them.
        let due = 50 + ((net.now - start).as_millis() / 20) as usize;
        while fed < due.min(550) {
            for (leg, from, packets) in &incoming {
                net.engine.handle_input(
                    net.now,
                    Input::Rtp {
                        leg: *leg,
                        from: *from,
                        data: &packets[fed],
                    },
                );
                received += 1;
            }
            fed += 1;
        }
        let next = loop {
            match net.engine.poll_output() {
                Output::Timeout(t) => break t,
                Output::Rtp { .. } => packets += 1,
                Output::Event(e) => panic!("unexpected event {e:?}"),
                _ => panic!("unexpected output"),
            }
        };
        let Some(t) = next.filter(|t| *t <= end) else {
            break;
        };
        net.now = t;
        net.engine.handle_input(net.now, Input::Timeout);
        let change = region.change();
        allocations += change.allocations + change.reallocations;
    }
    assert!(packets >= 100 * 499, "{packets} packets");
    assert!(received >= 100 * 499, "{received} packets received");
    // The engine took the callers' packets as media (it counts them), not as strays.
    // (Shutdown hangs up; the callers never answer the BYEs, which give up after 32 s.)
    net.engine.handle_input(net.now, Input::Shutdown);
    net.advance(Duration::from_secs(40));
    let counted: Vec<u64> = net
        .events
        .iter()
        .filter_map(|e| match e {
            ivr_engine::Event::CallEnded { packets, .. } => Some(packets.1),
            _ => None,
        })
        .collect();
    assert_eq!(counted.len(), 100, "{:?}", net.events.last());
    assert!(counted.iter().all(|n| *n >= 549), "{counted:?}");
    assert_eq!(
        allocations, 0,
        "heap allocations while sending {packets} packets and receiving {received}"
    );
}

#[test]
fn in_band_detection_allocates_nothing_per_packet() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let menus = ivr_server::config::load_demo().expect("demo compiles");
    let mut net = Net::with_config(Arc::new(menus), |c| {
        c.media_timeout = Duration::from_secs(600)
    });
    // 20 callers with no telephone-event, each sending 10 s of speech (the English menu
    // prompt, echoed at -10 dB, as a line returns it): the detector examines all of it.
    let speech: Vec<i16> = ivr_tests::speech::prompts()
        .iter()
        .filter(|(name, _)| name.contains("main_en"))
        .flat_map(|(_, p)| ivr_tests::speech::heard(p, ivr_audio::Codec::Pcmu))
        .cycle()
        .take(8000 * 10)
        .collect();
    let speech = ivr_tests::speech::attenuated(&speech, 10.0);
    let mut streams = Vec::new();
    for i in 0..20 {
        let mut caller = Caller::new(&format!("127.0.0.1:{}", 11_000 + i * 2), &format!("d{i}"));
        let offer = caller.offer_without_telephone_event();
        let invite = caller.invite_with_sdp(&offer);
        net.send_sip(caller.transport, caller.addr, &invite);
        let ok = ivr_tests::caller::response(&net.take_sip(caller.addr), 200)
            .expect("answered")
            .clone();
        caller.on_response(&ok);
        let ack = caller.ack(None);
        net.send_sip(caller.transport, caller.addr, &ack);
        let call = net.last_call().expect("a call");
        streams.push((call.leg(0), caller.media, caller.audio_packets(&speech)));
    }
    net.advance(Duration::from_secs(1));
    net.rtp.clear();
    let mut allocations = 0usize;
    let mut received = 0usize;
    for n in 0..speech.len() / 160 {
        for (leg, from, packets) in &streams {
            let region = Region::new(GLOBAL);
            net.engine.handle_input(
                net.now,
                Input::Rtp {
                    leg: *leg,
                    from: *from,
                    data: &packets[n],
                },
            );
            while let Output::Rtp { .. } | Output::Event(_) = net.engine.poll_output() {}
            let change = region.change();
            allocations += change.allocations + change.reallocations;
            received += 1;
        }
    }
    assert_eq!(received, 20 * 500);
    assert_eq!(
        allocations, 0,
        "heap allocations while receiving {received} packets"
    );
}

/// The destination's answer to the engine's INVITE: 200 with a PCMA offer at `media`.
fn answer_invite(invite: &ivr_sip::Request, media: std::net::SocketAddr, tag: &str) -> Vec<u8> {
    use ivr_sip::{HeaderName, Response, StatusCode};
    let mut r = Response::to_request(invite, StatusCode::OK);
    let to = invite.headers.get(&HeaderName::To).expect("To").to_string();
    r.headers.set(HeaderName::To, format!("{to};tag={tag}"));
    r.headers
        .push(HeaderName::Contact, "<sip:desk@127.0.0.1:7100>");
    r.headers.push(HeaderName::ContentType, "application/sdp");
    r.body = format!(
        "v=0\r\no=desk 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
        media.port()
    )
    .into_bytes();
    r.to_bytes()
}

#[test]
fn bridged_relay_allocates_nothing_per_packet() {
    // 0 transfers to a bridged destination; the callers are bridged, PCMU to PCMA.
    let yaml = "entry: m\nprompts:\n  hi: hi.wav\ndestinations:\n  desk: { uri: \"sip:desk@127.0.0.1:7100\", mode: bridge }\nmenus:\n  m:\n    prompt: hi\n    options:\n      \"0\": { transfer: desk }\n";
    bridged_relay(yaml);
}

#[test]
fn queued_calls_bridged_to_agents_relay_without_allocating() {
    // 0 joins a queue served by 100 static agents (all at the desk's address): each caller
    // is bridged to one, PCMU to PCMA, through the queue center.
    let agents: String = (0..100)
        .map(|i| format!("  a{i}: {{ uri: \"sip:a{i}@127.0.0.1:7100\", queues: {{ q: 0 }} }}\n"))
        .collect();
    let yaml = format!(
        "entry: m\nprompts:\n  hi: hi.wav\nqueues:\n  q: {{ strategy: linear, announce_every: 600, max_wait: 7200 }}\nagents:\n{agents}menus:\n  m:\n    prompt: hi\n    options:\n      \"0\": {{ queue: q }}\n"
    );
    bridged_relay(&yaml);
}

/// 100 callers press 0 and are bridged to the desk's address; ten seconds of audio both
/// ways are relayed without a heap allocation.
fn bridged_relay(yaml: &str) {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let menus = ivr_menus::compile(yaml, &mut |_| {
        Ok(ivr_audio::wav::encode_pcm16(
            8000,
            &ivr_audio::tone::sine(8000, 440.0, 8000, 8000.0),
        ))
    })
    .expect("menu compiles");
    let mut net = Net::with_config(Arc::new(menus), |c| {
        c.media_timeout = Duration::from_secs(600)
    });
    let desk: std::net::SocketAddr = "127.0.0.1:7100".parse().unwrap();
    let speech = ivr_audio::tone::sine(8000, 300.0, 8000 * 11, 6000.0);
    let reply: Vec<i16> = ivr_audio::tone::sine(8000, 500.0, 8000 * 11, 5000.0);
    let mut streams = Vec::new();
    for i in 0..100u16 {
        let mut caller = Caller::new(&format!("127.0.0.1:{}", 12_000 + i * 2), &format!("b{i}"));
        let call = net.connect(&mut caller);
        net.press(&mut caller, call, ivr_audio::Digit::D0);
        let invite = match ivr_tests::caller::request(&net.take_sip(desk), "INVITE") {
            Some(r) => r.clone(),
            None => panic!("call {i} rings the desk"),
        };
        let media = std::net::SocketAddr::from(([127, 0, 0, 1], 20_000 + i * 2));
        net.send_sip(
            caller.transport,
            desk,
            &answer_invite(&invite, media, &format!("d{i}")),
        );
        let back: Vec<Vec<u8>> = reply
            .chunks(160)
            .enumerate()
            .map(|(n, chunk)| {
                let mut p = vec![0x80, 8];
                p.extend_from_slice(&(n as u16).to_be_bytes());
                p.extend_from_slice(&((n * 160) as u32).to_be_bytes());
                p.extend_from_slice(&(0xD000 + u32::from(i)).to_be_bytes());
                p.extend(chunk.iter().map(|s| ivr_audio::Codec::Pcma.encode(*s)));
                p
            })
            .collect();
        streams.push((call.leg(0), caller.media, caller.audio_packets(&speech)));
        streams.push((call.leg(1), media, back));
    }
    let bridged = net
        .events
        .iter()
        .filter(|e| matches!(e, ivr_engine::Event::Bridged { .. }))
        .count();
    assert_eq!(bridged, 100);
    net.take_sip(desk);
    // Warm up: relay queues primed, output queues at their working size.
    for n in 0..50 {
        for (leg, from, packets) in &streams {
            net.send_rtp(*leg, *from, &packets[n]);
        }
        net.advance(Duration::from_millis(20));
    }
    net.rtp.clear();
    let start = net.now;
    let end = net.now + Duration::from_secs(10);
    let (mut fed, mut sent, mut received, mut allocations) = (50usize, 0usize, 0usize, 0usize);
    let mut audible = 0usize;
    loop {
        let region = Region::new(GLOBAL);
        let due = 50 + ((net.now - start).as_millis() / 20) as usize;
        while fed < due.min(550) {
            for (leg, from, packets) in &streams {
                net.engine.handle_input(
                    net.now,
                    Input::Rtp {
                        leg: *leg,
                        from: *from,
                        data: &packets[fed],
                    },
                );
                received += 1;
            }
            fed += 1;
        }
        let next = loop {
            match net.engine.poll_output() {
                Output::Timeout(t) => break t,
                Output::Rtp { packet, .. } => {
                    sent += 1;
                    // Relayed audio, not the silence of an idle stream (µ-law 0xFF, A-law 0xD5).
                    let payload = &packet.as_slice()[12..];
                    if payload.iter().any(|b| *b != 0xFF && *b != 0xD5) {
                        audible += 1;
                    }
                }
                Output::Event(e) => panic!("unexpected event {e:?}"),
                _ => panic!("unexpected output"),
            }
        };
        let Some(t) = next.filter(|t| *t <= end) else {
            break;
        };
        net.now = t;
        net.engine.handle_input(net.now, Input::Timeout);
        let change = region.change();
        allocations += change.allocations + change.reallocations;
    }
    // 200 legs, each sending 50 packets a second of relayed audio.
    assert!(sent >= 200 * 499, "{sent} packets relayed");
    assert!(received >= 200 * 499, "{received} packets received");
    assert!(
        audible >= 200 * 490,
        "{audible} of {sent} packets carry the other side's audio"
    );
    assert_eq!(
        allocations, 0,
        "heap allocations while relaying {received} packets into {sent} on 100 bridged calls"
    );
}

/// The driver's media path (`ivr_server::driver::media`): 100 legs' sockets read through
/// the one poll, each datagram handed over from the shared buffer, and a packet sent back
/// from each leg's socket, for 200 rounds, allocate nothing once the set is warm.
#[test]
fn driver_media_sockets_read_and_send_allocate_nothing_per_packet() {
    use ivr_server::driver::media::{MediaSet, Share};
    use std::net::UdpSocket;
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime");
    let _in_rt = rt.enter();
    let (poll, mut set) = MediaSet::new().expect("media poll");
    let mut callers = Vec::new();
    for i in 0..100u64 {
        let leg = ivr_engine::CallHandle(i).leg(0);
        let rtp = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let rtcp = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let to = rtp.local_addr().expect("address");
        rtp.set_nonblocking(true).expect("non-blocking");
        rtcp.set_nonblocking(true).expect("non-blocking");
        set.open(leg, rtp, rtcp, 0).expect("registered");
        let caller = UdpSocket::bind("127.0.0.1:0").expect("bind");
        caller
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        callers.push((leg, caller, to));
    }
    let packet = [0x80u8; 172];
    let mut heard = Vec::with_capacity(100);
    let mut back = [0u8; 2048];
    let mut allocations = 0usize;
    let mut received = 0usize;
    for round in 0..250 {
        for (_, caller, to) in &callers {
            caller.send_to(&packet, to).expect("send");
        }
        // Loopback delivers at once; a few polls at most take all 100.
        let mut got = 0;
        let region = Region::new(GLOBAL);
        for _ in 0..100 {
            set.read(poll.get_ref(), Share::Drain, |d| {
                assert!(!d.rtcp && d.data.len() == 172);
                heard.push((d.leg, d.from));
                got += 1;
            });
            if got == 100 {
                break;
            }
        }
        for (leg, from) in heard.drain(..) {
            set.send(leg, &packet, from).expect("open").expect("sent");
        }
        let change = region.change();
        if round >= 50 {
            allocations += change.allocations + change.reallocations;
            received += got;
        }
        assert_eq!(got, 100, "round {round}");
        for (_, caller, _) in &callers {
            let (n, _) = caller.recv_from(&mut back).expect("echoed back");
            assert_eq!(n, 172);
        }
    }
    assert_eq!(received, 200 * 100);
    assert_eq!(
        allocations, 0,
        "{allocations} allocations for {received} packets read and sent"
    );
    // Closing gives the port back; the leg then has nothing to send from.
    let (leg, _, _) = callers[0];
    assert_eq!(set.close(leg), Some(0));
    assert!(set.send(leg, &packet, callers[0].2).is_none());
}

/// The loop's timed wake-ups (`ivr_server::driver::alarm`, a timerfd on the runtime's
/// reactor) and the lateness histogram each sent packet is recorded in allocate nothing:
/// 200 wake-ups 1 ms apart, each recording 50 packets' lateness.
#[test]
fn the_loops_alarm_and_lateness_histogram_allocate_nothing() {
    use ivr_server::driver::alarm::{Alarm, SPACING};
    use std::time::Instant;
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let lateness = ivr_server::lateness::Lateness::default();
    lateness.split(1);
    let hist = lateness.writer(0);
    rt.block_on(async {
        let mut alarm = Alarm::new().expect("timerfd");
        // Warm up: the reactor's registration and its first wake-ups.
        for _ in 0..20 {
            alarm.wait(Instant::now() + SPACING).await;
        }
        let mut allocations = 0usize;
        let started = Instant::now();
        for i in 0..200u64 {
            let region = Region::new(GLOBAL);
            alarm.wait(Instant::now() + SPACING).await;
            for p in 0..50u64 {
                hist.record(Duration::from_micros((i * 50 + p) % 1_500));
            }
            let change = region.change();
            allocations += change.allocations + change.reallocations;
        }
        assert!(
            started.elapsed() >= SPACING * 200,
            "the waits waited: {:?}",
            started.elapsed()
        );
        assert_eq!(allocations, 0, "{allocations} allocations in 200 wake-ups");
    });
    assert_eq!(lateness.count(), 200 * 50);
}
