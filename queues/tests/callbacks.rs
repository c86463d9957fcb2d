//! Queued callbacks: the place in line, the agent-first dial, retries, refusals, staff cancel,
//! and (property) the place kept among random arrivals.

mod common;

use common::*;
use ivr_queues::Strategy;
use ivr_queues::*;
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

fn callback_queue() -> QueueConfig {
    let mut q = quiet_queue("q", Strategy::Linear);
    q.callback = Some(CallbackConfig {
        retries: 1,
        retry_delay: secs(60),
    });
    q.wrap_up = secs(0);
    q
}

fn harness() -> Harness {
    Harness::new(
        vec![callback_queue()],
        vec![AgentConfig::new("a", &["q"])],
        1,
    )
}

fn request(h: &mut Harness, call: u64, number: &str) -> Vec<Output> {
    h.send(Input::RequestCallback {
        call: CallRef(call),
        number: number.into(),
    })
}

fn accepted(out: &[Output]) -> (CallbackId, usize) {
    match out {
        [
            Output::CallbackAccepted {
                callback, position, ..
            },
        ] => (*callback, *position),
        _ => panic!("not accepted: {out:?}"),
    }
}

#[test]
fn the_callback_keeps_its_place_and_calls_the_agent_first() {
    let mut h = harness();
    for call in 1..=3 {
        h.enter(call, "q");
    }
    let (cb, position) = accepted(&request(&mut h, 2, "+15551234"));
    assert_eq!(position, 2);
    // The caller hangs up: not an abandon, the request keeps the place.
    assert!(
        h.send(Input::Leave {
            call: CallRef(2),
            reason: LeaveReason::Hangup
        })
        .is_empty()
    );
    let line = [
        Waiter::Caller(CallRef(1)),
        Waiter::Callback(cb),
        Waiter::Caller(CallRef(3)),
    ];
    assert_eq!(h.center.waiting(&queue("q")), line);
    assert_eq!(h.center.callbacks(), [(cb, &queue("q"), "+15551234")]);
    // Call 1 first.
    let (o1, _, w) = one_offer(&h.login(&["a"]));
    assert_eq!(w, Waiter::Caller(CallRef(1)));
    h.send(Input::OfferAnswered(o1));
    let out = h.send(Input::CallEnded { call: CallRef(1) });
    // Then the callback: the agent is rung first, then the caller dialled.
    let (o2, _, w) = one_offer(&out);
    assert_eq!(w, Waiter::Callback(cb));
    let out = h.send(Input::OfferAnswered(o2));
    assert_eq!(
        out,
        [Output::DialCallback {
            callback: cb,
            agent: agent("a"),
            offer: o2,
            number: "+15551234".into(),
            attempt: 1
        }]
    );
    // No answer: the agent is free at once (nobody talked), call 3 is served meanwhile, the
    // request keeps its place ahead of later arrivals but waits the retry delay.
    let out = h.send(Input::CallbackFailed(cb));
    assert_eq!(
        h.center.waiting(&queue("q")),
        [Waiter::Callback(cb), Waiter::Caller(CallRef(3))]
    );
    let (o3, _, w) = one_offer(&out);
    assert_eq!(w, Waiter::Caller(CallRef(3)));
    h.send(Input::OfferAnswered(o3));
    // Call 4 arrives behind it; when the agent is next free (after the delay) the callback
    // goes first.
    h.enter(4, "q");
    h.advance(secs(60));
    let out = h.send(Input::CallEnded { call: CallRef(3) });
    let (o4, _, w) = one_offer(&out);
    assert_eq!(w, Waiter::Callback(cb), "its place, ahead of call 4");
    let out = h.send(Input::OfferAnswered(o4));
    assert!(matches!(out[..], [Output::DialCallback { attempt: 2, .. }]));
    h.send(Input::CallbackConnected {
        callback: cb,
        call: CallRef(50),
    });
    assert_eq!(h.center.waiting(&queue("q")), [Waiter::Caller(CallRef(4))]);
}

/// A priority caller's callback request keeps the priority with the place: a later caller
/// of the same priority stays behind it, and lower priorities that came earlier too; after
/// a failed attempt it goes back ahead of them.
#[test]
fn a_callback_keeps_the_callers_priority() {
    let mut h = harness();
    h.enter(1, "q");
    h.enter_with(2, "q", 5);
    let (cb, position) = accepted(&request(&mut h, 2, "+15551234"));
    assert_eq!(position, 1, "ahead of the earlier priority-0 caller");
    h.enter_with(3, "q", 5);
    h.enter(4, "q");
    let line = [
        Waiter::Callback(cb),
        Waiter::Caller(CallRef(3)),
        Waiter::Caller(CallRef(1)),
        Waiter::Caller(CallRef(4)),
    ];
    assert_eq!(h.center.waiting(&queue("q")), line);
    let (o, _, w) = one_offer(&h.login(&["a"]));
    assert_eq!(w, Waiter::Callback(cb));
    h.send(Input::OfferAnswered(o));
    h.send(Input::CallbackFailed(cb));
    assert_eq!(
        h.center.waiting(&queue("q"))[..2],
        [Waiter::Callback(cb), Waiter::Caller(CallRef(3))],
        "back in its place, priority kept"
    );
}

#[test]
fn retries_run_out_and_free_the_number() {
    let mut h = harness();
    h.login(&["a"]);
    h.send(Input::AgentPause {
        agent: agent("a"),
        reason: "x".into(),
    });
    h.enter(1, "q");
    let (cb, _) = accepted(&request(&mut h, 1, "5551"));
    for attempt in 1..=2 {
        let out = h.send(Input::AgentUnpause(agent("a")));
        let out = if attempt == 1 {
            out
        } else {
            h.advance(secs(60))
        };
        let (offer, _, _) = one_offer(&out);
        h.send(Input::OfferAnswered(offer));
        h.send(Input::CallbackFailed(cb));
        let retrying = attempt == 1;
        assert!(h.events().contains(&QueueEvent::CallbackFailed {
            queue: queue("q"),
            callback: cb,
            attempt,
            retrying
        }));
    }
    assert!(h.center.waiting(&queue("q")).is_empty());
    assert!(h.center.callbacks().is_empty());
    // The number is free again, and the agent takes the next caller.
    assert_eq!(one_offer(&h.enter(2, "q")).2, Waiter::Caller(CallRef(2)));
}

#[test]
fn a_connected_callback_is_an_ordinary_call() {
    let mut h = harness();
    h.enter(1, "q");
    let (cb, _) = accepted(&request(&mut h, 1, "5551"));
    let (offer, _, _) = one_offer(&h.login(&["a"]));
    h.send(Input::OfferAnswered(offer));
    h.send(Input::CallbackConnected {
        callback: cb,
        call: CallRef(100),
    });
    assert_eq!(
        h.state("a"),
        AgentState::OnCall {
            waiter: Waiter::Caller(CallRef(100)),
            queue: queue("q")
        }
    );
    assert!(
        h.center.callbacks().is_empty(),
        "done: the number may ask again"
    );
    h.advance(secs(90));
    h.send(Input::CallEnded { call: CallRef(100) });
    assert_eq!(h.state("a"), AgentState::Available);
    assert!(h.events().iter().any(
        |e| matches!(e, QueueEvent::Complete { call: CallRef(100), talk, .. } if *talk == secs(90))
    ));
}

#[test]
fn a_callback_connected_on_a_call_already_known_frees_the_agent() {
    let mut h = harness();
    h.enter(1, "q");
    h.enter(2, "q");
    let (cb, _) = accepted(&request(&mut h, 1, "5551"));
    let (offer, _, _) = one_offer(&h.login(&["a"]));
    h.send(Input::OfferAnswered(offer));
    // The engine names call 2, which is still waiting with us: the attempt counts as failed.
    h.send(Input::CallbackConnected {
        callback: cb,
        call: CallRef(2),
    });
    assert!(!matches!(h.state("a"), AgentState::OnCall { .. }));
    assert!(h.events().iter().any(|e| matches!(
        e,
        QueueEvent::CallbackFailed {
            attempt: 1,
            retrying: true,
            ..
        }
    )));
}

#[test]
fn refusals() {
    let mut plain = quiet_queue("plain", Strategy::Linear);
    plain.callback = None;
    let config = CenterConfig {
        queues: vec![callback_queue(), plain],
        agents: vec![],
        limits: Limits {
            max_callbacks: 2,
            ..Limits::default()
        },
    };
    let mut h = Harness::new(vec![], vec![], 1);
    h.center = QueueCenter::new(config.validate().unwrap(), Box::new(SplitMix64::new(1)));
    for call in 1..=5 {
        h.enter(call, "q");
    }
    h.enter(9, "plain");
    let refused = |out: Vec<Output>| match out[..] {
        [Output::CallbackRefused { reason, .. }] => reason,
        _ => panic!("{out:?}"),
    };
    assert_eq!(
        refused(request(&mut h, 9, "5551")),
        CallbackRefusal::NotOffered
    );
    assert_eq!(
        refused(request(&mut h, 42, "5551")),
        CallbackRefusal::NotWaiting
    );
    for bad in [
        "",
        "+",
        "555-1",
        "12345678901234567890123456789012345",
        "sip:x@y",
    ] {
        assert_eq!(
            refused(request(&mut h, 1, bad)),
            CallbackRefusal::BadNumber,
            "{bad:?}"
        );
    }
    accepted(&request(&mut h, 1, "5551"));
    assert_eq!(
        refused(request(&mut h, 2, "5551")),
        CallbackRefusal::Duplicate,
        "one per number"
    );
    accepted(&request(&mut h, 2, "5552"));
    assert_eq!(refused(request(&mut h, 3, "5553")), CallbackRefusal::Full);
    assert_eq!(
        refused(request(&mut h, 1, "5554")),
        CallbackRefusal::NotWaiting,
        "already a callback"
    );
}

#[test]
fn staff_cancel() {
    let mut h = harness();
    h.enter(1, "q");
    h.enter(2, "q");
    let (cb1, _) = accepted(&request(&mut h, 1, "5551"));
    let (cb2, _) = accepted(&request(&mut h, 2, "5552"));
    // Waiting: gone at once.
    h.send(Input::CancelCallback(cb1));
    assert_eq!(h.center.waiting(&queue("q")), [Waiter::Callback(cb2)]);
    // Being dialled: the attempt runs, but is not retried.
    let (offer, _, _) = one_offer(&h.login(&["a"]));
    h.send(Input::OfferAnswered(offer));
    h.send(Input::CancelCallback(cb2));
    h.send(Input::CallbackFailed(cb2));
    assert!(h.center.waiting(&queue("q")).is_empty());
    assert!(h.center.callbacks().is_empty());
    assert_eq!(h.state("a"), AgentState::Available);
    let cancels = h
        .events()
        .iter()
        .filter(|e| matches!(e, QueueEvent::CallbackCancelled { .. }))
        .count();
    assert_eq!(cancels, 2);
}

/// A pretend engine: agents answer after a while, callbacks are answered, calls last a while.
struct Engine {
    rng: SplitMix64,
    /// The original call of each callback.
    origin: HashMap<CallbackId, u64>,
    /// Waiters in the order they were first offered, as original calls.
    first_offers: Vec<u64>,
    offered: HashSet<u64>,
}

impl Engine {
    fn react(&mut self, agenda: &mut Agenda, now: std::time::Instant, out: &Output) {
        let ms = |rng: &mut SplitMix64, lo: u64, span: u64| {
            Duration::from_millis(lo + rng.next_u64() % span)
        };
        match out {
            Output::Offer { offer, waiter, .. } => {
                let call = match waiter {
                    Waiter::Caller(c) => c.0,
                    Waiter::Callback(cb) => self.origin[cb],
                };
                if self.offered.insert(call) {
                    self.first_offers.push(call);
                }
                agenda.at(
                    now + ms(&mut self.rng, 200, 3000),
                    Input::OfferAnswered(*offer),
                );
            }
            Output::Connect { call, .. } => agenda.at(
                now + ms(&mut self.rng, 1000, 60_000),
                Input::CallEnded { call: *call },
            ),
            Output::CallbackAccepted { call, callback, .. } => {
                self.origin.insert(*callback, call.0);
            }
            Output::DialCallback { callback, .. } => {
                let call = CallRef(1_000_000 + callback.0);
                agenda.at(
                    now + secs(1),
                    Input::CallbackConnected {
                        callback: *callback,
                        call,
                    },
                );
                agenda.at(
                    now + ms(&mut self.rng, 2000, 60_000),
                    Input::CallEnded { call },
                );
            }
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever arrives and whoever hangs up, waiters are first offered in arrival order:
    /// a callback is served exactly where its caller stood, never passed by a later arrival,
    /// and its position at the request is the caller's.
    #[test]
    fn a_callback_keeps_its_place_among_random_arrivals(
        ops in prop::collection::vec((0u8..6, any::<u16>(), 0u64..30_000), 5..80),
        agents in 1usize..3,
        seed in any::<u64>(),
    ) {
        let names = ["a", "b"];
        let mut q = callback_queue();
        q.retry = Duration::ZERO;
        let configs = names[..agents].iter().map(|n| AgentConfig::new(*n, &["q"])).collect();
        let mut h = Harness::new(vec![q], configs, seed);
        h.login(&names[..agents]);
        let mut engine = Engine { rng: SplitMix64::new(seed), origin: HashMap::new(), first_offers: Vec::new(), offered: HashSet::new() };
        let mut agenda = Agenda::default();
        let mut next_call = 1u64;
        for (kind, pick, dt) in ops {
            let end = h.now + Duration::from_millis(dt);
            h.run(&mut agenda, end, |a, now, o| engine.react(a, now, o));
            let callers: Vec<CallRef> = h.center.waiting(&queue("q")).into_iter()
                .filter_map(|w| match w { Waiter::Caller(c) => Some(c), Waiter::Callback(_) => None })
                .collect();
            let out = match kind {
                0..=2 => {
                    next_call += 1;
                    h.enter(next_call - 1, "q")
                }
                3 | 4 if !callers.is_empty() => {
                    let call = callers[pick as usize % callers.len()];
                    let before = h.center.position(&Waiter::Caller(call)).map(|p| p.1);
                    let out = h.send(Input::RequestCallback { call, number: format!("{}", 5000 + call.0) });
                    if let [Output::CallbackAccepted { position, .. }] = out[..] {
                        prop_assert_eq!(Some(position), before);
                    }
                    out
                }
                5 if !callers.is_empty() => {
                    let call = callers[pick as usize % callers.len()];
                    h.send(Input::Leave { call, reason: LeaveReason::Hangup })
                }
                _ => Vec::new(),
            };
            for o in &out {
                engine.react(&mut agenda, h.now, o);
            }
        }
        let end = h.now + secs(24 * 3600);
        h.run(&mut agenda, end, |a, now, o| engine.react(a, now, o));
        prop_assert!(h.center.waiting(&queue("q")).is_empty(), "everyone served");
        let mut sorted = engine.first_offers.clone();
        sorted.sort();
        prop_assert_eq!(&engine.first_offers, &sorted);
        for call in engine.origin.values() {
            prop_assert!(engine.offered.contains(call), "callback of call {} never served", call);
        }
    }
}

#[test]
fn restored_callbacks_line_up_in_the_order_restored_and_by_priority_and_are_served_first() {
    let mut h = harness();
    let restore = |h: &mut Harness, number: &str| {
        h.send(Input::RestoreCallback {
            queue: queue("q"),
            number: number.into(),
            priority: 0,
        })
    };
    let out = restore(&mut h, "+15551111");
    let [
        Output::CallbackRestored {
            callback: first,
            position: 1,
            ..
        },
    ] = out[..]
    else {
        panic!("{out:?}")
    };
    let out = restore(&mut h, "+15552222");
    let [
        Output::CallbackRestored {
            callback: second,
            position: 2,
            ..
        },
    ] = out[..]
    else {
        panic!("{out:?}")
    };
    // Refused silently: a duplicate, a bad number, an unknown queue.
    assert!(restore(&mut h, "+15551111").is_empty());
    assert!(restore(&mut h, "12a").is_empty());
    assert!(
        h.send(Input::RestoreCallback {
            queue: queue("nope"),
            number: "+15553333".into(),
            priority: 0,
        })
        .is_empty()
    );
    // A caller arriving after the restart waits behind them.
    h.enter(7, "q");
    assert_eq!(
        h.center.waiting(&queue("q")),
        [
            Waiter::Callback(first),
            Waiter::Callback(second),
            Waiter::Caller(CallRef(7))
        ]
    );
    // One restored with the priority it was taken at goes ahead of them all.
    let out = h.send(Input::RestoreCallback {
        queue: queue("q"),
        number: "+15554444".into(),
        priority: 5,
    });
    let [
        Output::CallbackRestored {
            callback: vip,
            position: 1,
            ..
        },
    ] = out[..]
    else {
        panic!("{out:?}")
    };
    assert_eq!(h.center.priority(&Waiter::Callback(vip)), Some(5));
    assert_eq!(h.center.priority(&Waiter::Callback(first)), Some(0));
    let (o, _, w) = one_offer(&h.login(&["a"]));
    assert_eq!(w, Waiter::Callback(vip));
    let out = h.send(Input::OfferAnswered(o));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::DialCallback { number, .. } if number == "+15554444")),
        "{out:?}"
    );
    assert_eq!(
        h.center.priority(&Waiter::Callback(vip)),
        Some(5),
        "being dialled"
    );
}
