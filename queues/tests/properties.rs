//! The agent state machine under any sequence of inputs: the center's invariants hold after
//! every step (checked by the harness), no agent is ever offered two calls at once or a call
//! while on one, and once the calls are gone and time passes no agent is stuck.

mod common;

use common::*;
use ivr_queues::Strategy;
use ivr_queues::*;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;

fn config_a() -> ValidConfig {
    let mut q1 = QueueConfig::new("q1");
    q1.strategy = Strategy::RoundRobin;
    q1.wrap_up = secs(5);
    q1.max_no_answer = 2;
    q1.agent_timeout = secs(10);
    q1.max_wait = Some(secs(300));
    q1.announce_every = Some(secs(20));
    q1.max_waiting = 6;
    q1.callback = Some(CallbackConfig {
        retries: 1,
        retry_delay: secs(7),
    });
    let mut q2 = QueueConfig::new("q2");
    q2.strategy = Strategy::RingAll;
    q2.join_when_empty = EmptyRule::NoneLoggedIn;
    q2.leave_when_empty = EmptyRule::NoneActive;
    q2.retry = Duration::ZERO;
    q2.callback = Some(CallbackConfig {
        retries: 0,
        retry_delay: Duration::ZERO,
    });
    let mut c = AgentConfig::new("c", &["q1", "q2"]);
    c.queues[1].penalty = 1;
    let agents = vec![
        AgentConfig::new("a", &["q1"]),
        AgentConfig::new("b", &["q2"]),
        c,
        AgentConfig::new("d", &["q1"]),
    ];
    let limits = Limits {
        max_callbacks: 3,
        ..Limits::default()
    };
    CenterConfig {
        queues: vec![q1, q2],
        agents,
        limits,
    }
    .validate()
    .unwrap()
}

/// q2 and agent d removed, q1 longest-idle, a with its own wrap-up.
fn config_b() -> ValidConfig {
    let mut q1 = QueueConfig::new("q1");
    q1.strategy = Strategy::LongestIdle;
    q1.callback = Some(CallbackConfig::default());
    let mut a = AgentConfig::new("a", &["q1"]);
    a.wrap_up = Some(secs(3));
    let agents = vec![
        a,
        AgentConfig::new("b", &["q1"]),
        AgentConfig::new("c", &["q1"]),
    ];
    CenterConfig {
        queues: vec![q1],
        agents,
        limits: Limits::default(),
    }
    .validate()
    .unwrap()
}

const AGENTS: [&str; 4] = ["a", "b", "c", "d"];
const QUEUES: [&str; 2] = ["q1", "q2"];

/// What the engine knows, from the outputs.
#[derive(Default)]
struct Model {
    offers: BTreeMap<OfferId, AgentId>,
    connected: BTreeMap<CallRef, AgentId>,
    dialing: BTreeMap<CallbackId, AgentId>,
    next_call: u64,
}

impl Model {
    fn busy(&self, agent: &AgentId) -> bool {
        self.offers.values().any(|a| a == agent)
            || self.connected.values().any(|a| a == agent)
            || self.dialing.values().any(|a| a == agent)
    }

    fn apply(&mut self, out: &[Output]) -> Result<(), TestCaseError> {
        for o in out {
            match o {
                Output::Offer { offer, agent, .. } => {
                    prop_assert!(!self.busy(agent), "{} offered {} while busy", agent, offer);
                    self.offers.insert(*offer, agent.clone());
                }
                Output::CancelOffer { offer, .. } => {
                    prop_assert!(
                        self.offers.remove(offer).is_some(),
                        "cancelled {} twice",
                        offer
                    );
                }
                Output::Release { offer } => prop_assert!(!self.offers.contains_key(offer)),
                Output::Connect { call, agent, offer } => {
                    let rung = self.offers.remove(offer);
                    prop_assert_eq!(rung.as_ref(), Some(agent));
                    self.connected.insert(*call, agent.clone());
                }
                Output::DialCallback {
                    callback,
                    agent,
                    offer,
                    ..
                } => {
                    let rung = self.offers.remove(offer);
                    prop_assert_eq!(rung.as_ref(), Some(agent));
                    self.dialing.insert(*callback, agent.clone());
                }
                Output::Exit { call, .. } => prop_assert!(!self.connected.contains_key(call)),
                _ => {}
            }
        }
        Ok(())
    }
}

fn pick<T: Clone>(items: &[T], n: u16) -> Option<T> {
    (!items.is_empty()).then(|| items[n as usize % items.len()].clone())
}

fn waiting_callers(h: &Harness) -> Vec<CallRef> {
    QUEUES
        .iter()
        .flat_map(|q| h.center.waiting(&queue(q)))
        .filter_map(|w| match w {
            Waiter::Caller(c) => Some(c),
            Waiter::Callback(_) => None,
        })
        .collect()
}

/// One step of the random engine/agents/staff.
fn step(h: &mut Harness, m: &mut Model, kind: u8, x: u16, y: u16) -> Result<(), TestCaseError> {
    let agent_x = agent(AGENTS[x as usize % 4]);
    let offers: Vec<OfferId> = m.offers.keys().copied().collect();
    let connected: Vec<CallRef> = m.connected.keys().copied().collect();
    let dialing: Vec<CallbackId> = m.dialing.keys().copied().collect();
    let input = match kind {
        0 | 1 => {
            m.next_call += 1;
            let caller = y
                .is_multiple_of(2)
                .then(|| format!("{}", 1000 + u32::from(y)));
            Some(Input::Enter {
                call: CallRef(m.next_call),
                queue: queue(QUEUES[x as usize % 2]),
                priority: (y % 3) as u8,
                caller,
            })
        }
        2 => pick(&waiting_callers(h), x).map(|call| {
            let reason = [
                LeaveReason::Hangup,
                LeaveReason::ExitKey('9'),
                LeaveReason::Transferred,
            ][y as usize % 3];
            Input::Leave { call, reason }
        }),
        3 | 4 => match pick(&offers, x) {
            Some(offer) if !y.is_multiple_of(7) => Some(Input::OfferAnswered(offer)),
            _ => Some(Input::OfferAnswered(OfferId(u64::from(x % 40)))), // stale or unknown
        },
        5 => pick(&offers, x).map(|offer| {
            let why = [
                OfferFailure::NoAnswer,
                OfferFailure::Busy,
                OfferFailure::Rejected,
                OfferFailure::Unreachable,
            ][y as usize % 4];
            m.offers.remove(&offer);
            Input::OfferFailed { offer, why }
        }),
        6 if y % 4 == 1 => {
            // The agent hung up during the whisper: a caller waits again (a callback's
            // call is not requeued: it stays connected until it ends).
            let Some(call) = pick(&connected, x) else {
                return Ok(());
            };
            let out = h.send(Input::Requeue { call });
            let agent = m.connected.remove(&call).expect("connected");
            // A removed agent that was logged out during its call is gone once the call is.
            if matches!(h.center.agent_state(&agent),
                Some(AgentState::OnCall { waiter: Waiter::Caller(c), .. }) if *c == call)
            {
                m.connected.insert(call, agent);
            }
            return m.apply(&out);
        }
        6 => pick(&connected, x).map(|call| {
            m.connected.remove(&call);
            if y.is_multiple_of(4) {
                Input::Leave {
                    call,
                    reason: LeaveReason::Hangup,
                }
            } else {
                Input::CallEnded { call }
            }
        }),
        7 => Some(Input::AgentLogin(agent_x)),
        8 => Some(Input::AgentLogout(agent_x)),
        9 => Some(Input::AgentPause {
            agent: agent_x,
            reason: "r".into(),
        }),
        10 => Some(Input::AgentUnpause(agent_x)),
        11 => Some(Input::AgentReachable {
            agent: agent_x,
            reachable: !y.is_multiple_of(3),
        }),
        12 => pick(&waiting_callers(h), x).map(|call| Input::RequestCallback {
            call,
            number: format!("55{}", y % 5),
        }),
        13 => pick(&dialing, x).map(|callback| {
            let agent = m.dialing.remove(&callback).expect("dialing");
            m.next_call += 1;
            let call = CallRef(m.next_call);
            m.connected.insert(call, agent);
            Input::CallbackConnected { callback, call }
        }),
        14 => pick(&dialing, x).map(|callback| {
            m.dialing.remove(&callback);
            Input::CallbackFailed(callback)
        }),
        15 => {
            let ids: Vec<CallbackId> = h.center.callbacks().into_iter().map(|c| c.0).collect();
            pick(&ids, x).map(Input::CancelCallback)
        }
        16 => Some(Input::Reconfigure(if y.is_multiple_of(2) {
            config_a()
        } else {
            config_b()
        })),
        _ => {
            let out = h.advance(Duration::from_millis(u64::from(y) * 10));
            return m.apply(&out);
        }
    };
    if let Some(input) = input {
        let out = h.send(input);
        m.apply(&out)?;
    }
    Ok(())
}

/// Runs `ops` through the center and winds down; the invariants must hold throughout and no
/// agent, offer or timer may be left behind.
fn run(ops: Vec<(u8, u16, u16)>, seed: u64) -> Result<(), TestCaseError> {
    let mut h = Harness::new(vec![], vec![], seed);
    h.center = QueueCenter::new(config_a(), Box::new(SplitMix64::new(seed)));
    let mut m = Model::default();
    for (kind, x, y) in ops {
        step(&mut h, &mut m, kind, x, y)?;
    }
    // Wind down: callers leave, staff cancel callbacks, calls end, dials fail.
    for call in waiting_callers(&h) {
        let out = h.send(Input::Leave {
            call,
            reason: LeaveReason::Hangup,
        });
        m.apply(&out)?;
    }
    let ids: Vec<CallbackId> = h.center.callbacks().into_iter().map(|c| c.0).collect();
    for id in ids {
        let out = h.send(Input::CancelCallback(id));
        m.apply(&out)?;
    }
    for callback in std::mem::take(&mut m.dialing).into_keys() {
        let out = h.send(Input::CallbackFailed(callback));
        m.apply(&out)?;
    }
    for call in std::mem::take(&mut m.connected).into_keys() {
        let out = h.send(Input::CallEnded { call });
        m.apply(&out)?;
    }
    let out = h.advance(secs(3600));
    m.apply(&out)?;
    prop_assert!(m.offers.is_empty(), "offers left: {:?}", m.offers);
    for q in QUEUES {
        prop_assert!(h.center.waiting(&queue(q)).is_empty());
    }
    for (id, state) in h.center.agents() {
        prop_assert!(
            matches!(
                state,
                AgentState::LoggedOut | AgentState::Available | AgentState::Paused { .. }
            ),
            "{} stuck in {:?}",
            id,
            state
        );
    }
    prop_assert_eq!(h.center.poll_timeout(), None, "no timer left behind");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_agent_is_ever_double_offered_or_stuck(
        ops in prop::collection::vec((0u8..20, any::<u16>(), any::<u16>()), 1..150),
        seed in any::<u64>(),
    ) {
        run(ops, seed)?;
    }
}

/// Found by CI: agent d, removed by a reload while on a call and then logged out, is gone once
/// its caller is requeued (it hung up during the whisper); the model must not expect it.
#[test]
fn removed_agent_hanging_up_in_the_whisper_is_gone() {
    let ops = vec![
        (0, 0, 0),
        (7, 32351, 0),
        (0, 0, 0),
        (10, 0, 0),
        (0, 0, 0),
        (16, 0, 41653),
        (3, 0, 11495),
        (8, 31479, 0),
        (6, 0, 27649),
    ];
    run(ops, 0).unwrap();
}
