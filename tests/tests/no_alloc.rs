//! Sending prompts must not touch the heap: with 100 calls in the menu, ten seconds of RTP
//! pacing (50,000 packets) through `Engine::handle_input` / `poll_output` allocate nothing.
//! An instrumented global allocator is read around the engine calls only.

use ivr_engine::{Input, Output};
use ivr_tests::caller::{Caller, Net};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use std::sync::Arc;
use std::time::Duration;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn rtp_pacing_allocates_nothing_per_packet() {
    // A menu whose greeting lasts a minute, so every call plays prompt audio throughout.
    let yaml = "entry: m\nprompts:\n  long: long.wav\nmenus:\n  m:\n    prompt: long\n    options:\n      \"1\": { repeat: true }\n";
    let menus = ivr_menus::compile(yaml, &mut |_| {
        Ok(ivr_audio::wav::encode_pcm16(
            8000,
            &ivr_audio::tone::sine(8000, 440.0, 8000 * 60, 8000.0),
        ))
    })
    .expect("menu compiles");
    let mut net = Net::with_config(Arc::new(menus), |c| {
        c.media_timeout = Duration::from_secs(600)
    });
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
    }
    net.advance(Duration::from_secs(1)); // warm up: queues reach their working size
    net.rtp.clear();

    let end = net.now + Duration::from_secs(10);
    let mut packets = 0usize;
    let mut allocations = 0usize;
    loop {
        let region = Region::new(GLOBAL);
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
    assert_eq!(
        allocations, 0,
        "heap allocations while sending {packets} packets"
    );
}
