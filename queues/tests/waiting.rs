//! Waiting: announcements with the right numbers (and only when they change), max wait,
//! join/leave rules, bounds, and the event log's positions and waits.

mod common;

use common::*;
use ivr_queues::*;
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);

fn announcing() -> QueueConfig {
    let mut q = quiet_queue("q", Strategy::Linear);
    q.announce_every = Some(secs(30));
    q.announce_position = true;
    q.announce_wait = true;
    q.default_handle_time = secs(180);
    q
}

fn announcements(out: &[Output]) -> Vec<(u64, bool, Option<usize>, Option<Duration>)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Announce {
                call,
                periodic,
                position,
                estimated_wait,
            } => Some((call.0, *periodic, *position, *estimated_wait)),
            _ => None,
        })
        .collect()
}

/// Two agents, both busy with calls 100 and 101.
fn busy_pair(q: QueueConfig) -> Harness {
    let agents = vec![AgentConfig::new("a", &["q"]), AgentConfig::new("b", &["q"])];
    let mut h = Harness::new(vec![q], agents, 1);
    h.login(&["a", "b"]);
    for call in [100, 101] {
        let (offer, _, _) = one_offer(&h.enter(call, "q"));
        h.send(Input::OfferAnswered(offer));
    }
    h
}

#[test]
fn position_and_wait_from_live_data_spoken_only_when_changed() {
    let mut h = busy_pair(announcing());
    // On entry: position p, wait = ceil(p × 3 min ÷ 2 agents) in whole minutes.
    let mut heard = Vec::new();
    for call in 1..=3 {
        heard.extend(announcements(&h.enter(call, "q")));
    }
    assert_eq!(
        heard,
        [
            (1, false, Some(1), Some(2 * MIN)),
            (2, false, Some(2), Some(3 * MIN)),
            (3, false, Some(3), Some(5 * MIN))
        ]
    );
    // 30 s on, nothing changed: the periodic announcement alone.
    let heard = announcements(&h.advance(secs(30)));
    assert_eq!(
        heard,
        [
            (1, true, None, None),
            (2, true, None, None),
            (3, true, None, None)
        ]
    );
    // Call 1 hangs up: the others hear their new place and wait at the next announcement.
    h.send(Input::Leave {
        call: CallRef(1),
        reason: LeaveReason::Hangup,
    });
    let heard = announcements(&h.advance(secs(30)));
    assert_eq!(
        heard,
        [
            (2, true, Some(1), Some(2 * MIN)),
            (3, true, Some(2), Some(3 * MIN))
        ]
    );
    // Live handle times replace the assumed 3 minutes: calls of 60 s talk + 0 wrap-up.
    // (Call 100 answered at t0 ends now, after 60 s; 101 too.)
    h.send(Input::CallEnded { call: CallRef(100) });
    h.send(Input::CallEnded { call: CallRef(101) });
    assert_eq!(
        h.center.estimated_wait(&queue("q"), 3),
        Some(2 * MIN),
        "3 × 60 s ÷ 2 = 90 s → 2 min"
    );
}

#[test]
fn no_agent_working_means_no_estimate() {
    let mut h = busy_pair(announcing());
    h.send(Input::AgentPause {
        agent: agent("a"),
        reason: "x".into(),
    });
    h.send(Input::AgentLogout(agent("b")));
    // Both still on their calls, but neither will take another: nobody works the queue.
    let heard = announcements(&h.enter(1, "q"));
    assert_eq!(heard, [(1, false, Some(1), None)]);
    assert_eq!(h.center.estimated_wait(&queue("q"), 1), None);
}

#[test]
fn no_announcement_while_an_agent_rings_for_the_caller() {
    let agents = vec![AgentConfig::new("a", &["q"])];
    let mut q = announcing();
    q.agent_timeout = secs(45);
    q.retry = secs(30);
    let mut h = Harness::new(vec![q], agents, 1);
    h.login(&["a"]);
    let out = h.enter(1, "q");
    assert!(
        announcements(&out).is_empty(),
        "rung at once: nothing to announce"
    );
    one_offer(&out);
    assert!(
        announcements(&h.advance(secs(44))).is_empty(),
        "the 30 s announcement is skipped"
    );
    // Not answered (a rests 30 s): at the next announcement the caller hears its place.
    let out = h.advance(secs(16));
    assert_eq!(announcements(&out), [(1, true, Some(1), Some(3 * MIN))]);
}

#[test]
fn max_wait_sends_the_caller_out_with_the_log_saying_where_and_how_long() {
    let mut q = quiet_queue("q", Strategy::Linear);
    q.max_wait = Some(secs(120));
    let mut h = Harness::new(vec![q], vec![], 1);
    h.enter(1, "q");
    h.advance(secs(10));
    h.enter(2, "q");
    let out = h.advance(secs(110));
    assert_eq!(
        out,
        [Output::Exit {
            call: CallRef(1),
            queue: queue("q"),
            reason: ExitReason::MaxWait
        }]
    );
    h.send(Input::Leave {
        call: CallRef(2),
        reason: LeaveReason::ExitKey('0'),
    });
    let events = h.events();
    assert!(events.contains(&QueueEvent::Timeout {
        queue: queue("q"),
        call: CallRef(1),
        position: 1,
        wait: secs(120)
    }));
    assert!(events.contains(&QueueEvent::ExitKey {
        queue: queue("q"),
        call: CallRef(2),
        key: '0',
        position: 1,
        wait: secs(110)
    }));
    // A leave after the exit is a no-op (no abandon logged).
    h.send(Input::Leave {
        call: CallRef(1),
        reason: LeaveReason::Hangup,
    });
    assert!(
        !h.events()
            .iter()
            .any(|e| matches!(e, QueueEvent::Abandon { .. }))
    );
}

#[test]
fn join_and_leave_rules_when_nobody_answers() {
    let mut q = quiet_queue("q", Strategy::Linear);
    q.join_when_empty = EmptyRule::NoneLoggedIn;
    q.leave_when_empty = EmptyRule::NoneActive;
    q.callback = Some(CallbackConfig::default());
    let mut h = Harness::new(vec![q], vec![AgentConfig::new("a", &["q"])], 1);
    let out = h.enter(1, "q");
    assert_eq!(
        out,
        [Output::Refused {
            call: CallRef(1),
            queue: queue("q"),
            reason: RefuseReason::NoAgents
        }]
    );
    h.login(&["a"]);
    let (offer, _, _) = one_offer(&h.enter(2, "q"));
    h.send(Input::OfferAnswered(offer));
    h.enter(3, "q");
    h.enter(4, "q");
    h.send(Input::RequestCallback {
        call: CallRef(4),
        number: "5554".into(),
    });
    // The only agent will pause after its call: it takes no more calls, so callers on the line
    // are sent out at once; the callback request stays.
    let out = h.send(Input::AgentPause {
        agent: agent("a"),
        reason: "home".into(),
    });
    assert_eq!(
        out,
        [Output::Exit {
            call: CallRef(3),
            queue: queue("q"),
            reason: ExitReason::Empty
        }]
    );
    assert!(h.send(Input::CallEnded { call: CallRef(2) }).is_empty());
    assert_eq!(h.center.waiting(&queue("q")).len(), 1);
    // Paused is still logged in: joining is allowed (the join rule is NoneLoggedIn) ... but
    // the leave rule sends the caller straight out.
    let out = h.enter(5, "q");
    assert!(out.contains(&Output::Exit {
        call: CallRef(5),
        queue: queue("q"),
        reason: ExitReason::Empty
    }));
}

#[test]
fn a_full_queue_refuses() {
    let mut q = quiet_queue("q", Strategy::Linear);
    q.max_waiting = 2;
    let mut h = Harness::new(vec![q], vec![], 1);
    h.enter(1, "q");
    h.enter(2, "q");
    assert_eq!(
        h.enter(3, "q"),
        [Output::Refused {
            call: CallRef(3),
            queue: queue("q"),
            reason: RefuseReason::Full
        }]
    );
    assert_eq!(
        h.enter(4, "nope"),
        [Output::Refused {
            call: CallRef(4),
            queue: queue("nope"),
            reason: RefuseReason::UnknownQueue
        }]
    );
}

#[test]
fn the_event_log_of_one_answered_call() {
    let mut h = Harness::new(
        vec![quiet_queue("q", Strategy::Linear)],
        vec![AgentConfig::new("a", &["q"])],
        1,
    );
    h.enter(1, "q");
    h.advance(secs(20));
    let (offer, _, _) = one_offer(&h.login(&["a"]));
    h.advance(secs(4));
    h.send(Input::OfferAnswered(offer));
    h.advance(secs(100));
    h.send(Input::Leave {
        call: CallRef(1),
        reason: LeaveReason::Transferred,
    });
    let events: Vec<_> = h
        .events()
        .into_iter()
        .filter(|e| !matches!(e, QueueEvent::Agent { .. }))
        .collect();
    let (q, w, a) = (queue("q"), Waiter::Caller(CallRef(1)), agent("a"));
    assert_eq!(
        events,
        [
            QueueEvent::Enter {
                queue: q.clone(),
                call: CallRef(1),
                position: 1,
                priority: 0
            },
            QueueEvent::Offer {
                queue: q.clone(),
                waiter: w,
                agent: a.clone(),
                offer
            },
            QueueEvent::Answer {
                queue: q.clone(),
                waiter: w,
                agent: a.clone(),
                wait: secs(24)
            },
            QueueEvent::Transfer {
                queue: q,
                call: CallRef(1),
                agent: Some(a)
            },
        ]
    );
}
