//! Races other systems get wrong (agents stuck ringing or in wrap-up), shared agents, agent
//! requests during calls, and reloads.

mod common;

use common::*;
use ivr_queues::*;

fn one_queue(strategy: Strategy, names: &[&str]) -> Harness {
    let agents = names.iter().map(|n| AgentConfig::new(*n, &["q"])).collect();
    let mut h = Harness::new(vec![quiet_queue("q", strategy)], agents, 1);
    h.login(names);
    h
}

#[test]
fn agent_answers_as_the_caller_hangs_up_hangup_first() {
    let mut h = one_queue(Strategy::Linear, &["a"]);
    let (offer, _, _) = one_offer(&h.enter(1, "q"));
    let out = h.send(Input::Leave {
        call: CallRef(1),
        reason: LeaveReason::Hangup,
    });
    assert_eq!(cancelled(&out), [offer]);
    assert_eq!(h.state("a"), AgentState::Available);
    // The agent's 200 OK crossed the CANCEL: released, and the agent stays free.
    let out = h.send(Input::OfferAnswered(offer));
    assert_eq!(out, [Output::Release { offer }]);
    assert_eq!(h.state("a"), AgentState::Available);
    assert!(h.events().iter().any(|e| matches!(
        e,
        QueueEvent::Abandon {
            call: CallRef(1),
            position: 1,
            ..
        }
    )));
    // And it takes the next caller.
    assert_eq!(one_offer(&h.enter(2, "q")).1, "a");
}

#[test]
fn agent_answers_as_the_caller_hangs_up_answer_first() {
    let mut q = quiet_queue("q", Strategy::Linear);
    q.wrap_up = secs(10);
    let mut h = Harness::new(vec![q], vec![AgentConfig::new("a", &["q"])], 1);
    h.login(&["a"]);
    let (offer, _, _) = one_offer(&h.enter(1, "q"));
    let out = h.send(Input::OfferAnswered(offer));
    assert!(out.contains(&Output::Connect {
        call: CallRef(1),
        agent: agent("a"),
        offer
    }));
    // The engine had already seen the caller's BYE: a leave of a connected call ends it.
    h.send(Input::Leave {
        call: CallRef(1),
        reason: LeaveReason::Hangup,
    });
    assert!(matches!(h.state("a"), AgentState::WrapUp { .. }));
    // A late failure report and a second end are harmless.
    h.send(Input::OfferFailed {
        offer,
        why: OfferFailure::NoAnswer,
    });
    h.send(Input::CallEnded { call: CallRef(1) });
    h.advance(secs(10));
    assert_eq!(h.state("a"), AgentState::Available);
}

#[test]
fn answer_after_the_ring_timeout_is_released() {
    let mut h = one_queue(Strategy::Linear, &["a", "b"]);
    let (offer, who, _) = one_offer(&h.enter(1, "q"));
    assert_eq!(who, "a");
    let out = h.advance(secs(15));
    assert_eq!(cancelled(&out), [offer]);
    let (next, who, _) = one_offer(&out);
    assert_eq!(who, "b");
    assert_eq!(
        h.send(Input::OfferAnswered(offer)),
        [Output::Release { offer }]
    );
    assert_eq!(h.state("a"), AgentState::Available);
    assert!(
        h.send(Input::OfferAnswered(next))
            .iter()
            .any(|o| matches!(o, Output::Connect { .. }))
    );
}

fn two_queues(q1: Strategy, q2: Strategy) -> Harness {
    let agents = vec![AgentConfig::new("a", &["q1", "q2"])];
    let mut h = Harness::new(
        vec![quiet_queue("q1", q1), quiet_queue("q2", q2)],
        agents,
        1,
    );
    h.enter(1, "q2");
    h.enter(2, "q1");
    h
}

#[test]
fn two_queues_offering_the_same_agent_at_once() {
    for (s1, s2) in [
        (Strategy::RingAll, Strategy::RingAll),
        (Strategy::Linear, Strategy::RoundRobin),
    ] {
        let mut h = two_queues(s1, s2);
        // The agent logs in with a caller waiting in each queue: one offer, to the caller who
        // came first (call 1, in q2).
        let out = h.send(Input::AgentLogin(agent("a")));
        let (offer, _, waiter) = one_offer(&out);
        assert_eq!(waiter, Waiter::Caller(CallRef(1)));
        // While it rings, the other queue does not offer it.
        assert!(offers(&h.advance(secs(5))).is_empty());
        h.send(Input::OfferAnswered(offer));
        assert!(
            offers(&h.advance(secs(5))).is_empty(),
            "on a call: no offer"
        );
        let out = h.send(Input::CallEnded { call: CallRef(1) });
        assert_eq!(one_offer(&out).2, Waiter::Caller(CallRef(2)));
    }
}

#[test]
fn priority_wins_across_queues() {
    let mut h = two_queues(Strategy::Linear, Strategy::Linear);
    h.enter_with(3, "q1", 5);
    let (_, _, waiter) = one_offer(&h.send(Input::AgentLogin(agent("a"))));
    assert_eq!(waiter, Waiter::Caller(CallRef(3)));
    assert_eq!(
        h.center.waiting(&queue("q1")),
        [Waiter::Caller(CallRef(3)), Waiter::Caller(CallRef(2))]
    );
}

#[test]
fn logout_or_pause_while_ringing_moves_the_caller_on() {
    let mut h = one_queue(Strategy::Linear, &["a", "b"]);
    let (offer, _, _) = one_offer(&h.enter(1, "q"));
    let out = h.send(Input::AgentLogout(agent("a")));
    assert_eq!(cancelled(&out), [offer]);
    let (offer, who, _) = one_offer(&out);
    assert_eq!((who.as_str(), h.state("a")), ("b", AgentState::LoggedOut));
    let out = h.send(Input::AgentPause {
        agent: agent("b"),
        reason: "x".repeat(500),
    });
    assert_eq!(cancelled(&out), [offer]);
    let AgentState::Paused {
        reason: PauseReason::Requested(r),
    } = h.state("b")
    else {
        panic!()
    };
    assert_eq!(
        r.len(),
        Limits::default().max_reason_len,
        "reasons are bounded"
    );
    assert_eq!(
        h.center.position(&Waiter::Caller(CallRef(1))),
        Some((&queue("q"), 1))
    );
}

#[test]
fn pause_or_logout_during_a_call_waits_for_its_end() {
    let mut q = quiet_queue("q", Strategy::Linear);
    q.wrap_up = secs(30);
    let agents = vec![AgentConfig::new("a", &["q"]), AgentConfig::new("b", &["q"])];
    let mut h = Harness::new(vec![q], agents, 1);
    h.login(&["a", "b"]);
    let (o1, _, _) = one_offer(&h.enter(1, "q"));
    h.send(Input::OfferAnswered(o1));
    let (o2, _, _) = one_offer(&h.enter(2, "q"));
    h.send(Input::OfferAnswered(o2));
    h.send(Input::AgentPause {
        agent: agent("a"),
        reason: "break".into(),
    });
    h.send(Input::AgentLogout(agent("b")));
    assert!(matches!(h.state("a"), AgentState::OnCall { .. }));
    h.send(Input::CallEnded { call: CallRef(1) });
    h.send(Input::CallEnded { call: CallRef(2) });
    assert_eq!(
        h.state("a"),
        AgentState::Paused {
            reason: PauseReason::Requested("break".into())
        }
    );
    assert_eq!(h.state("b"), AgentState::LoggedOut);
    // A pause asked for and taken back during the call: wrap-up as usual.
    h.send(Input::AgentUnpause(agent("a")));
    let (o3, _, _) = one_offer(&h.enter(3, "q"));
    h.send(Input::OfferAnswered(o3));
    h.send(Input::AgentPause {
        agent: agent("a"),
        reason: "later".into(),
    });
    h.send(Input::AgentUnpause(agent("a")));
    h.send(Input::CallEnded { call: CallRef(3) });
    assert!(matches!(h.state("a"), AgentState::WrapUp { .. }));
}

fn config(queues: Vec<QueueConfig>, agents: Vec<AgentConfig>) -> ValidConfig {
    CenterConfig {
        queues,
        agents,
        limits: Limits::default(),
    }
    .validate()
    .unwrap()
}

#[test]
fn reload_keeps_agents_logged_in_and_callers_waiting() {
    let mut h = one_queue(Strategy::Linear, &["a", "b"]);
    let (o1, _, _) = one_offer(&h.enter(1, "q"));
    h.send(Input::OfferAnswered(o1));
    h.send(Input::AgentPause {
        agent: agent("b"),
        reason: "x".into(),
    });
    h.enter(2, "q");
    // Reload: the queue is now ring-all with a max wait, and a new agent c.
    let mut q = quiet_queue("q", Strategy::RingAll);
    q.max_wait = Some(secs(60));
    let agents = ["a", "b", "c"]
        .iter()
        .map(|n| AgentConfig::new(*n, &["q"]))
        .collect();
    let out = h.send(Input::Reconfigure(config(vec![q], agents)));
    assert!(out.is_empty(), "nothing happens to anyone: {out:?}");
    assert!(matches!(h.state("a"), AgentState::OnCall { .. }));
    assert!(matches!(h.state("b"), AgentState::Paused { .. }));
    assert_eq!(h.state("c"), AgentState::LoggedOut);
    assert_eq!(h.center.waiting(&queue("q")), [Waiter::Caller(CallRef(2))]);
    // The new max wait counts from the caller's entry.
    let out = h.advance(secs(60));
    assert!(out.contains(&Output::Exit {
        call: CallRef(2),
        queue: queue("q"),
        reason: ExitReason::MaxWait
    }));
}

#[test]
fn a_removed_queue_keeps_its_callers_until_they_leave() {
    let agents = vec![AgentConfig::new("a", &["old", "new"])];
    let mut h = Harness::new(
        vec![
            quiet_queue("old", Strategy::Linear),
            quiet_queue("new", Strategy::Linear),
        ],
        agents,
        1,
    );
    h.enter(1, "old");
    h.enter(2, "old");
    let out = h.send(Input::Reconfigure(config(
        vec![quiet_queue("new", Strategy::Linear)],
        vec![AgentConfig::new("a", &["new"])],
    )));
    assert!(out.is_empty());
    assert_eq!(h.center.waiting(&queue("old")).len(), 2);
    let out = h.enter(3, "old");
    assert!(matches!(
        out[..],
        [Output::Refused {
            reason: RefuseReason::UnknownQueue,
            ..
        }]
    ));
    // Its agents still serve who waits there.
    let (o1, _, w) = one_offer(&h.send(Input::AgentLogin(agent("a"))));
    assert_eq!(w, Waiter::Caller(CallRef(1)));
    h.send(Input::OfferAnswered(o1));
    h.send(Input::Leave {
        call: CallRef(2),
        reason: LeaveReason::Hangup,
    });
    assert!(h.center.waiting(&queue("old")).is_empty());
    h.send(Input::CallEnded { call: CallRef(1) });
}

#[test]
fn a_removed_agent_finishes_its_call_and_goes_at_logout() {
    let mut h = one_queue(Strategy::Linear, &["a", "b"]);
    let (o1, _, _) = one_offer(&h.enter(1, "q"));
    h.send(Input::OfferAnswered(o1));
    h.send(Input::Reconfigure(config(
        vec![quiet_queue("q", Strategy::Linear)],
        vec![AgentConfig::new("b", &["q"])],
    )));
    assert!(matches!(h.state("a"), AgentState::OnCall { .. }));
    h.send(Input::CallEnded { call: CallRef(1) });
    assert_eq!(one_offer(&h.enter(2, "q")).1, "b", "a gets no new offers");
    h.send(Input::AgentLogout(agent("a")));
    assert!(h.center.agent_state(&agent("a")).is_none());
}

#[test]
fn stale_and_unknown_messages_are_no_ops() {
    let mut h = one_queue(Strategy::Linear, &["a"]);
    for input in [
        Input::Leave {
            call: CallRef(9),
            reason: LeaveReason::Hangup,
        },
        Input::CallEnded { call: CallRef(9) },
        Input::OfferFailed {
            offer: OfferId(77),
            why: OfferFailure::Busy,
        },
        Input::AgentLogin(agent("nobody")),
        Input::AgentUnpause(agent("a")),
        Input::CallbackFailed(CallbackId(3)),
        Input::CancelCallback(CallbackId(3)),
        Input::CallbackConnected {
            callback: CallbackId(3),
            call: CallRef(4),
        },
    ] {
        assert!(h.send(input).is_empty());
    }
    assert_eq!(
        h.send(Input::OfferAnswered(OfferId(77))),
        [Output::Release { offer: OfferId(77) }]
    );
    h.enter(1, "q");
    let out = h.enter(1, "q");
    assert!(matches!(
        out[..],
        [Output::Refused {
            reason: RefuseReason::AlreadyQueued,
            ..
        }]
    ));
}

#[test]
fn agent_hangs_up_before_the_caller_is_put_through_requeues_the_caller() {
    let mut q = quiet_queue("q", Strategy::Linear);
    q.wrap_up = secs(10);
    q.retry = secs(5);
    let mut h = Harness::new(
        vec![q],
        vec![AgentConfig::new("a", &["q"]), AgentConfig::new("b", &["q"])],
        1,
    );
    h.login(&["a", "b"]);
    let (first, who, _) = one_offer(&h.enter(1, "q"));
    assert_eq!(who, "a");
    h.enter(2, "q");
    h.send(Input::OfferAnswered(first));
    // b rings for caller 2 meanwhile.
    assert!(matches!(h.state("b"), AgentState::Ringing { .. }));
    // a hangs up during the whisper: caller 1 is first in line again, a is free at once (no
    // wrap-up: nobody talked), resting before it is offered a call again.
    let out = h.send(Input::Requeue { call: CallRef(1) });
    assert!(!out.iter().any(|o| matches!(o, Output::Exit { .. })));
    assert_eq!(h.state("a"), AgentState::Available);
    assert_eq!(
        h.center.waiting(&queue("q")).first(),
        Some(&Waiter::Caller(CallRef(1)))
    );
    assert!(h.events().iter().any(|e| matches!(
        e,
        QueueEvent::Requeue {
            call: CallRef(1),
            ..
        }
    )));
    // A second report, and one for a call that is not connected, change nothing.
    assert!(h.send(Input::Requeue { call: CallRef(1) }).is_empty());
    assert!(h.send(Input::Requeue { call: CallRef(9) }).is_empty());
    // After the rest a is rung for caller 1 again, answers, and this time talks: wrap-up.
    let out = h.advance(secs(5));
    let (again, who, waiter) = one_offer(&out);
    assert_eq!((who.as_str(), waiter), ("a", Waiter::Caller(CallRef(1))));
    h.send(Input::OfferAnswered(again));
    h.send(Input::CallEnded { call: CallRef(1) });
    assert!(matches!(h.state("a"), AgentState::WrapUp { .. }));
}

/// A broken or hostile phone that answers and hangs up at once, over and over: each
/// requeue counts as an unanswered offer, so `max_no_answer` pauses it as it would a phone
/// that never answers, rather than it taking (and bouncing) every caller.
#[test]
fn a_phone_that_answers_and_hangs_up_at_once_is_paused_by_the_no_answer_rule() {
    let mut q = quiet_queue("q", Strategy::Linear);
    q.retry = secs(5);
    q.max_no_answer = 2;
    let mut h = Harness::new(vec![q], vec![AgentConfig::new("a", &["q"])], 1);
    h.login(&["a"]);
    let (first, _, _) = one_offer(&h.enter(1, "q"));
    h.send(Input::OfferAnswered(first));
    h.send(Input::Requeue { call: CallRef(1) });
    assert_eq!(h.state("a"), AgentState::Available);
    let (again, _, _) = one_offer(&h.advance(secs(5)));
    h.send(Input::OfferAnswered(again));
    h.send(Input::Requeue { call: CallRef(1) });
    assert_eq!(
        h.state("a"),
        AgentState::Paused {
            reason: PauseReason::NoAnswer { offers: 2 }
        }
    );
    // Neither answer held: the agent answered no call.
    assert_eq!(h.center.agent_summary(&agent("a")), Some((0, true)));
    assert_eq!(h.center.waiting(&queue("q")), [Waiter::Caller(CallRef(1))]);
}

/// The caller's max wait ran out while the agent heard the whisper: when the agent hangs up
/// the caller goes to `on_timeout` at once, without another phone being rung for it.
#[test]
fn a_requeue_after_the_max_wait_sends_the_caller_out_at_once() {
    let mut q = quiet_queue("q", Strategy::Linear);
    q.max_wait = Some(secs(10));
    let mut h = Harness::new(
        vec![q],
        vec![AgentConfig::new("a", &["q"]), AgentConfig::new("b", &["q"])],
        1,
    );
    h.login(&["a", "b"]);
    let (first, who, _) = one_offer(&h.enter(1, "q"));
    assert_eq!(who, "a");
    h.advance(secs(9));
    h.send(Input::OfferAnswered(first));
    h.advance(secs(3));
    let out = h.send(Input::Requeue { call: CallRef(1) });
    assert!(offers(&out).is_empty(), "nobody is rung: {out:?}");
    assert!(out.contains(&Output::Exit {
        call: CallRef(1),
        queue: queue("q"),
        reason: ExitReason::MaxWait
    }));
    assert!(h.events().iter().any(|e| matches!(
        e,
        QueueEvent::Timeout {
            call: CallRef(1),
            ..
        }
    )));
    assert_eq!(h.state("b"), AgentState::Available);
}

/// The caller's queue went with a reload while its agent heard the whisper: the caller is
/// sent out, and the log says so (the report counts it as having left the line).
#[test]
fn a_requeue_into_a_queue_removed_meanwhile_is_logged_as_leaving() {
    let agents = vec![AgentConfig::new("a", &["old", "new"])];
    let mut h = Harness::new(
        vec![
            quiet_queue("old", Strategy::Linear),
            quiet_queue("new", Strategy::Linear),
        ],
        agents,
        1,
    );
    h.login(&["a"]);
    let (o1, _, _) = one_offer(&h.enter(1, "old"));
    h.send(Input::OfferAnswered(o1));
    h.send(Input::Reconfigure(config(
        vec![quiet_queue("new", Strategy::Linear)],
        vec![AgentConfig::new("a", &["new"])],
    )));
    let out = h.send(Input::Requeue { call: CallRef(1) });
    assert!(out.contains(&Output::Exit {
        call: CallRef(1),
        queue: queue("old"),
        reason: ExitReason::Empty
    }));
    assert!(h.events().iter().any(|e| matches!(
        e,
        QueueEvent::LeaveEmpty {
            call: CallRef(1),
            ..
        }
    )));
}

/// Staff pause an agent (or it logs out) while it hears the whisper, then it hangs up: the
/// request applies (not a no-answer pause), and the caller waits for another agent.
#[test]
fn a_pause_or_logout_asked_for_during_the_whisper_applies_at_the_requeue() {
    let mut q = quiet_queue("q", Strategy::Linear);
    q.max_no_answer = 1;
    let mut h = Harness::new(
        vec![q],
        vec![AgentConfig::new("a", &["q"]), AgentConfig::new("b", &["q"])],
        1,
    );
    h.login(&["a"]);
    let (first, _, _) = one_offer(&h.enter(1, "q"));
    h.send(Input::OfferAnswered(first));
    h.send(Input::AgentPause {
        agent: agent("a"),
        reason: "lunch".into(),
    });
    let out = h.send(Input::Requeue { call: CallRef(1) });
    assert!(offers(&out).is_empty(), "nobody else is free");
    assert_eq!(
        h.state("a"),
        AgentState::Paused {
            reason: PauseReason::Requested("lunch".into())
        }
    );
    // b logs in and takes the caller; b logs out during its whisper and hangs up.
    let (second, who, _) = one_offer(&h.login(&["b"]));
    assert_eq!(who, "b");
    h.send(Input::OfferAnswered(second));
    h.send(Input::AgentLogout(agent("b")));
    h.send(Input::Requeue { call: CallRef(1) });
    assert_eq!(h.state("b"), AgentState::LoggedOut);
    assert_eq!(h.center.waiting(&queue("q")), [Waiter::Caller(CallRef(1))]);
}
