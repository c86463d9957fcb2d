//! The hub alone: where its outputs go, the callback store's bookkeeping, restore.

use super::*;
use crate::io::QueueCallbackCmd;
use ivr_queues::{AgentId, OfferFailure};
use std::time::Duration;

/// `sales` (callbacks to numbers starting 555 through `trunk`) and `help`; agent `desk` is
/// static and works `sales` when `with_agent`.
fn menus(with_agent: bool) -> Arc<Menus> {
    let agents = if with_agent {
        "agents:\n  desk:\n    uri: sip:desk@127.0.0.1:7300\n    queues: { sales: 0 }\n"
    } else {
        ""
    };
    let yaml = format!(
        r#"
entry: main
prompts:
  main_en: main.wav
  music: music.wav
  thanks: thanks.wav
destinations:
  trunk: {{ uri: "sip:trunk@127.0.0.1:7400", mode: bridge }}
queues:
  sales:
    music: music
    max_wait: 600
    on_timeout: {{ hangup: thanks }}
    exit_keys:
      "3": callback
    callback:
      via: trunk
      retries: 1
      retry_delay: 30
      allowed_prefixes: ["555"]
      confirmed: thanks
  help:
    music: music
    max_wait: 600
    on_timeout: {{ hangup: thanks }}
{agents}
menus:
  main:
    prompt: main_en
    options:
      "1": {{ queue: sales }}
      "2": {{ queue: help }}
"#
    );
    let wav = ivr_audio::wav::encode_pcm16(8000, &[0; 800]);
    let menus = ivr_menus::compile_full(
        &yaml,
        &mut |_| Ok(wav.clone()),
        &mut |_, _| Err("no text-to-speech here".into()),
        &mut |_, _| Some(wav.clone()),
    );
    match menus {
        Ok(m) => Arc::new(m),
        Err(e) => panic!("{e:?}"),
    }
}

fn enter(hub: &mut Hub, now: Instant, call: CallRef, queue: &str) {
    hub.handle(
        now,
        HubMsg::Enter {
            call,
            queue: QueueName::new(queue),
            priority: 3,
            caller: Some(format!("caller{}", call.0 & 0xffff)),
            call_id: format!("cid-{}", call.0),
            path: vec!["main".into()],
        },
    );
}

fn drain(hub: &mut Hub) -> Vec<HubOutput> {
    std::iter::from_fn(|| hub.poll_output()).collect()
}

fn draft() -> Box<CallbackRequest> {
    Box::new(CallbackRequest {
        id: String::new(),
        mailbox: "sales".into(),
        caller_id: Some("caller".into()),
        called: None,
        call_id: "cid".into(),
        received_at: 0,
        callback_number: Some("5551234".into()),
        duration_ms: 0,
        language: None,
        menu_path: vec!["main".into()],
        variables: Vec::new(),
        hung_up: false,
        has_message: false,
        email_to: Vec::new(),
        kind: ivr_voicemail::RequestKind::QueueCallback,
        queue: Some("sales".into()),
        priority: 0,
    })
}

/// A hub for `menus` serving `shards`, its registrar with the default settings.
fn hub(menus: Arc<Menus>, shards: ShardId) -> Hub {
    let registrar = ivr_sip::registrar::RegistrarConfig::default();
    Hub::new(menus, 7, shards, registrar, [9; 32])
}

/// The stored requests and status changes among `outs`.
fn store_cmds(outs: &[HubOutput]) -> Vec<&QueueCallbackCmd> {
    outs.iter()
        .filter_map(|o| match o {
            HubOutput::QueueCallback(c) => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn outputs_naming_a_call_go_to_its_shard() {
    let t0 = crate::test_epoch();
    let mut hub = hub(menus(true), 4);
    hub.handle(t0, HubMsg::Sync);
    let call = CallRef((2 << 48) | 5);
    enter(&mut hub, t0, call, "sales");
    let outs = drain(&mut hub);
    let mut offer = None;
    for o in &outs {
        match o {
            HubOutput::Shard { shard, msg } => {
                assert_eq!(*shard, 2, "{msg:?}");
                if let ShardMsg::Offer {
                    out: QOut::Offer { offer: o, .. },
                    ..
                } = msg
                {
                    offer = Some(*o);
                }
            }
            HubOutput::Event {
                call: c, call_id, ..
            } => {
                if c.is_some() {
                    assert_eq!(call_id.as_deref(), Some(format!("cid-{}", call.0).as_str()));
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        outs.iter().any(|o| matches!(
            o,
            HubOutput::Shard {
                shard: 2,
                msg: ShardMsg::QueueEvent {
                    event: QueueEvent::Enter { .. },
                    ..
                }
            }
        )),
        "the call record hears the Enter: {outs:?}"
    );
    let Some(offer) = offer else {
        panic!("the agent is offered the call: {outs:?}")
    };
    assert_eq!(hub.routing_len().0, 1);
    // The shard could not ring: the offer leaves the table, and a late CancelOffer for it
    // goes nowhere.
    hub.handle(
        t0,
        HubMsg::Queue(Input::OfferFailed {
            offer,
            why: OfferFailure::Unreachable,
        }),
    );
    assert_eq!(hub.routing_len().0, 0);
    hub.route(QOut::CancelOffer {
        offer,
        agent: AgentId::new("desk"),
    });
    let late = drain(&mut hub);
    assert!(
        !late.iter().any(|o| matches!(
            o,
            HubOutput::Shard {
                msg: ShardMsg::Center(QOut::CancelOffer { .. }),
                ..
            }
        )),
        "{late:?}"
    );
    // The caller leaves: the row beside the center goes with CallGone.
    hub.handle(
        t0,
        HubMsg::Queue(Input::Leave {
            call,
            reason: ivr_queues::LeaveReason::Hangup,
        }),
    );
    hub.handle(t0, HubMsg::CallGone(call));
    let outs = drain(&mut hub);
    assert!(
        outs.iter().any(|o| matches!(
            o,
            HubOutput::Event {
                event: QueueEvent::Abandon { .. },
                call_id: Some(_),
                ..
            }
        )),
        "the abandon is logged with the Call-ID: {outs:?}"
    );
    assert!(hub.rows.is_empty());
    assert_eq!(hub.routing_len(), (0, 0));
}

#[test]
fn queued_callbacks_are_spread_round_robin_and_stay_on_their_shard() {
    let t0 = crate::test_epoch();
    let mut hub = hub(menus(true), 3);
    let shards: Vec<ShardId> = (1..=4).map(|i| hub.callback_shard(CallbackId(i))).collect();
    assert_eq!(shards, [0, 1, 2, 0]);
    assert_eq!(
        hub.callback_shard(CallbackId(2)),
        1,
        "a callback keeps its shard"
    );
    // Its offer and dial go there.
    hub.route(QOut::Offer {
        offer: OfferId(9),
        agent: AgentId::new("desk"),
        queue: QueueName::new("sales"),
        waiter: Waiter::Callback(CallbackId(2)),
        caller: None,
    });
    hub.route(QOut::DialCallback {
        callback: CallbackId(2),
        agent: AgentId::new("desk"),
        offer: OfferId(9),
        number: "5551".into(),
        attempt: 1,
    });
    let outs = drain(&mut hub);
    assert_eq!(outs.len(), 2, "{outs:?}");
    assert!(
        outs.iter()
            .all(|o| matches!(o, HubOutput::Shard { shard: 1, .. })),
        "{outs:?}"
    );
    // Given up: it leaves the table.
    hub.handle(t0, HubMsg::Queue(Input::CallbackFailed(CallbackId(2))));
    drain(&mut hub);
    hub.route(QOut::Event(ivr_queues::LoggedEvent {
        at: t0,
        event: QueueEvent::CallbackCancelled {
            queue: QueueName::new("sales"),
            callback: CallbackId(2),
        },
    }));
    drain(&mut hub);
    assert_eq!(hub.routing_len().1, 3);
}

#[test]
fn the_hub_mints_the_store_id_and_stores_the_draft_even_for_a_call_gone() {
    let t0 = crate::test_epoch();
    let mut hub = hub(menus(false), 1);
    hub.handle(t0, HubMsg::Sync);
    let wall = std::time::UNIX_EPOCH + Duration::from_secs(1_000);
    hub.handle(t0, HubMsg::WallClock(wall));
    let call = CallRef(1);
    enter(&mut hub, t0, call, "sales");
    drain(&mut hub);
    let later = t0 + Duration::from_secs(5);
    hub.handle(
        later,
        HubMsg::RequestCallback {
            call,
            number: "5551234".into(),
            request: draft(),
        },
    );
    // The caller hangs up before the answer is polled (as over a channel).
    hub.handle(later, HubMsg::CallGone(call));
    let outs = drain(&mut hub);
    let cmds = store_cmds(&outs);
    let [QueueCallbackCmd::Store(stored)] = cmds.as_slice() else {
        panic!("{outs:?}")
    };
    assert!(stored.id.starts_with("1005-"), "{}", stored.id);
    assert_eq!(stored.received_at, 1005);
    assert_eq!(
        stored.priority, 3,
        "the caller's priority moves to the request"
    );
    assert!(
        outs.iter().any(|o| matches!(
            o,
            HubOutput::Shard { shard: 0, msg: ShardMsg::CallbackAccepted { store_id, .. } }
                if *store_id == stored.id
        )),
        "{outs:?}"
    );
    assert!(hub.drafts.is_empty());
    // Staff close it by its store id: the center cancels it, and the store's status
    // (theirs) is left alone.
    let id = stored.id.clone();
    hub.handle(later, HubMsg::CancelCallback(id));
    let outs = drain(&mut hub);
    assert!(
        outs.iter().any(|o| matches!(
            o,
            HubOutput::Event {
                event: QueueEvent::CallbackCancelled { .. },
                ..
            }
        )),
        "{outs:?}"
    );
    assert!(store_cmds(&outs).is_empty(), "{outs:?}");
    assert!(hub.store_ids.is_empty());
}

#[test]
fn a_refused_request_keeps_no_draft() {
    let t0 = crate::test_epoch();
    let mut hub = hub(menus(false), 1);
    hub.handle(t0, HubMsg::Sync);
    // `help` takes no callbacks.
    enter(&mut hub, t0, CallRef(1), "help");
    drain(&mut hub);
    let request = draft();
    let number = "5551234".into();
    let call = CallRef(1);
    hub.handle(
        t0,
        HubMsg::RequestCallback {
            call,
            number,
            request,
        },
    );
    let outs = drain(&mut hub);
    assert!(
        outs.iter().any(|o| matches!(
            o,
            HubOutput::Shard {
                msg: ShardMsg::Center(QOut::CallbackRefused { .. }),
                ..
            }
        )),
        "{outs:?}"
    );
    assert!(hub.drafts.is_empty());
    assert!(store_cmds(&outs).is_empty());
}

#[test]
fn restored_requests_keep_their_store_ids_and_the_rest_are_closed() {
    let t0 = crate::test_epoch();
    let mut hub = hub(menus(false), 1);
    hub.handle(t0, HubMsg::Sync);
    let restored = |id: &str, queue: &str, number: &str| RestoredCallback {
        id: id.into(),
        queue: queue.into(),
        number: number.into(),
        priority: 2,
    };
    let list = vec![
        restored("a", "sales", "5550001"),
        restored("b", "help", "5550002"),
        restored("c", "sales", "4440003"),
        restored("d", "sales", "5550001"),
        restored("e", "sales", "5550005"),
    ];
    hub.handle(t0, HubMsg::RestoreCallbacks(list));
    let outs = drain(&mut hub);
    let closed: Vec<&str> = store_cmds(&outs)
        .into_iter()
        .map(|c| match c {
            QueueCallbackCmd::Status {
                id,
                status: "no_answer",
                ..
            } => id.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    // b: no callbacks in `help`; c: a number no longer allowed; d: a duplicate of a.
    assert_eq!(closed, ["b", "c", "d"]);
    let mut kept: Vec<&str> = hub.store_ids.values().map(String::as_str).collect();
    kept.sort_unstable();
    assert_eq!(kept, ["a", "e"]);
    assert_eq!(hub.queue_line("sales").len(), 2);
    // The correlation is right: cancelling "e" cancels the second in line.
    let second = hub.queue_line("sales")[1];
    hub.handle(t0, HubMsg::CancelCallback("e".into()));
    drain(&mut hub);
    assert!(!hub.queue_line("sales").contains(&second));
    assert_eq!(hub.queue_line("sales").len(), 1);
}

#[test]
fn the_view_reads_the_rows_beside_the_center() {
    let t0 = crate::test_epoch();
    let mut hub = hub(menus(false), 1);
    hub.handle(t0, HubMsg::Sync);
    let long = CallRef(3);
    hub.handle(
        t0,
        HubMsg::Enter {
            call: long,
            queue: QueueName::new("help"),
            priority: 0,
            caller: Some("9".repeat(40)),
            call_id: "x".into(),
            path: vec!["main".into(), "more".into()],
        },
    );
    drain(&mut hub);
    let view = hub.queue_view(t0 + Duration::from_secs(4));
    let help = &view.queues[1];
    assert_eq!(help.name, "help");
    let line = &help.waiting[0];
    assert_eq!(line.caller.as_deref(), Some("9".repeat(32).as_str()));
    assert_eq!(line.path, ["main", "more"]);
    assert_eq!(line.waited, Duration::from_secs(4));
    assert_eq!(
        hub.queues_waiting(),
        [("sales".into(), 0), ("help".into(), 1)]
    );
}

#[test]
fn the_hub_its_messages_and_the_engine_can_move_to_another_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Hub>();
    assert_send::<HubMsg>();
    assert_send::<HubOutput>();
    assert_send::<ShardMsg>();
    assert_send::<crate::Engine>();
}

/// Every offer the hub routes leaves its table once the offer is over. A queued
/// callback's offer that the agent answers ends in `DialCallback` (then `CallbackConnected`
/// or `CallbackFailed`), never in `Connect`, `CancelOffer`, `Release` or `OfferFailed`: its
/// entry must go too, or the table grows by one for every callback an agent takes.
#[test]
fn an_answered_callback_offer_leaves_the_routing_table() {
    let t0 = crate::test_epoch();
    let mut hub = hub(menus(true), 1);
    hub.handle(t0, HubMsg::Sync);
    let call = CallRef(1);
    enter(&mut hub, t0, call, "sales");
    let outs = drain(&mut hub);
    // The agent rings for the caller; it does not answer.
    let Some(first) = outs.iter().find_map(|o| match o {
        HubOutput::Shard {
            msg:
                ShardMsg::Offer {
                    out: QOut::Offer { offer, .. },
                    ..
                },
            ..
        } => Some(*offer),
        _ => None,
    }) else {
        panic!("{outs:?}")
    };
    hub.handle(
        t0,
        HubMsg::Queue(Input::OfferFailed {
            offer: first,
            why: OfferFailure::Unreachable,
        }),
    );
    drain(&mut hub);
    hub.handle(
        t0,
        HubMsg::RequestCallback {
            call,
            number: "5551234".into(),
            request: draft(),
        },
    );
    hub.handle(
        t0,
        HubMsg::Queue(Input::Leave {
            call,
            reason: ivr_queues::LeaveReason::Hangup,
        }),
    );
    hub.handle(t0, HubMsg::CallGone(call));
    drain(&mut hub);
    // Whenever the agent is free again, it is offered the callback; it answers.
    let mut now = t0;
    let mut answered = None;
    for _ in 0..200 {
        now += Duration::from_secs(1);
        hub.handle_timeout(now);
        for o in drain(&mut hub) {
            match o {
                HubOutput::Shard {
                    msg:
                        ShardMsg::Offer {
                            out:
                                QOut::Offer {
                                    offer,
                                    waiter: Waiter::Callback(_),
                                    ..
                                },
                            ..
                        },
                    ..
                } if answered.is_none() => {
                    hub.handle(now, HubMsg::Queue(Input::OfferAnswered(offer)));
                }
                HubOutput::Shard {
                    msg: ShardMsg::Center(QOut::DialCallback { callback, .. }),
                    ..
                } => answered = Some(callback),
                _ => {}
            }
        }
        if answered.is_some() {
            break;
        }
    }
    let Some(callback) = answered else {
        panic!("the callback is never dialled")
    };
    // The caller is called back and talks to the agent, then hangs up.
    let back = CallRef(2);
    hub.handle(
        now,
        HubMsg::CallbackCall {
            call: back,
            call_id: "cid-back".into(),
        },
    );
    hub.handle(
        now,
        HubMsg::Queue(Input::CallbackConnected {
            callback,
            call: back,
        }),
    );
    hub.handle(now, HubMsg::Queue(Input::CallEnded { call: back }));
    hub.handle(now, HubMsg::CallGone(back));
    drain(&mut hub);
    assert!(hub.rows.is_empty());
    assert_eq!(
        hub.routing_len(),
        (0, 0),
        "an offer or a callback stays routed"
    );
}
