//! Extreme configurations: no duration a configuration accepts may make the center panic
//! (`Instant + Duration` panics on overflow).

mod common;

use common::*;
use ivr_queues::*;
use std::time::Duration;

/// A queue with every duration set to `d` (and callbacks on).
fn queue_with(d: Duration) -> QueueConfig {
    let mut q = QueueConfig::new("q");
    q.strategy = Strategy::Linear;
    q.agent_timeout = d;
    q.retry = d;
    q.wrap_up = d;
    q.max_wait = Some(d);
    q.announce_every = Some(d);
    q.default_handle_time = d;
    q.callback = Some(CallbackConfig {
        retries: 1,
        retry_delay: d,
    });
    q
}

fn config(q: QueueConfig, wrap_up: Option<Duration>) -> CenterConfig {
    let mut a = AgentConfig::new("a", &["q"]);
    a.wrap_up = wrap_up;
    CenterConfig {
        queues: vec![q],
        agents: vec![a],
        limits: Limits::default(),
    }
}

/// Every timer of the center armed and run once: entry, announcement, ring timeout, rest,
/// answer, wrap-up, a callback's retry delay, max wait, a reload.
fn whole_life(valid: ValidConfig) {
    let mut center = QueueCenter::new(valid.clone(), Box::new(SplitMix64::new(1)));
    let mut now = epoch();
    let drain = |c: &mut QueueCenter| std::iter::from_fn(|| c.poll_output()).collect::<Vec<_>>();
    center.handle(now, Input::AgentLogin(agent("a")));
    for call in 1..=3 {
        center.handle(
            now,
            Input::Enter {
                call: CallRef(call),
                queue: queue("q"),
                priority: 0,
                caller: None,
            },
        );
    }
    let offer = offers(&drain(&mut center))[0].0;
    center.handle(
        now,
        Input::OfferFailed {
            offer,
            why: OfferFailure::Rejected,
        },
    );
    center.handle(now, Input::AgentUnpause(agent("a")));
    center.handle(
        now,
        Input::RequestCallback {
            call: CallRef(2),
            number: "+15551234".into(),
        },
    );
    center.handle(now, Input::Reconfigure(valid));
    // Let every deadline the center set come (each far in the future).
    for _ in 0..20 {
        drain(&mut center);
        let Some(t) = center.poll_timeout() else {
            break;
        };
        now = now.max(t);
        center.handle_timeout(now);
        for o in drain(&mut center) {
            match o {
                Output::Offer { offer, .. } => center.handle(now, Input::OfferAnswered(offer)),
                Output::Connect { call, .. } => center.handle(now, Input::CallEnded { call }),
                Output::DialCallback { callback, .. } => {
                    center.handle(now, Input::CallbackFailed(callback))
                }
                _ => {}
            }
        }
        center.check_invariants().unwrap();
    }
}

#[test]
fn durations_too_long_for_the_clock_are_refused_and_the_longest_accepted_run() {
    // Duration::MAX (or anything near it) added to any Instant panics.
    let errors = config(queue_with(Duration::MAX), Some(Duration::MAX))
        .validate()
        .expect_err("a queue whose timers overflow the clock is not valid");
    assert!(
        errors
            .iter()
            .all(|e| matches!(e, ConfigError::TooLong { .. })),
        "{errors:?}"
    );
    // agent_timeout, retry, wrap_up, max_wait, announce_every, default_handle_time,
    // retry_delay, and the agent's own wrap_up.
    assert_eq!(errors.len(), 8, "{errors:?}");
    // The longest durations that are accepted run a whole life without a panic.
    let valid = config(queue_with(MAX_DURATION), Some(MAX_DURATION))
        .validate()
        .expect("the longest durations are valid");
    whole_life(valid);
}
