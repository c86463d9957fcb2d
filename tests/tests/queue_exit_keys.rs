//! Keys pressed while waiting in a queue (`exit_keys:`) and queued callback requests, in
//! virtual time: an exit key to voicemail; the `callback` key with the caller ID confirmed,
//! the request keeping the caller's place ahead of later arrivals; a second request for the
//! same number refused (the caller keeps waiting); a number outside the allowed prefixes
//! refused. No sockets, no sleeping.

use ivr_audio::Digit;
use ivr_engine::{CallHandle, EndReason, Event};
use ivr_queues::{QueueEvent, Waiter};
use ivr_sip::Transport;
use ivr_tests::caller::{Caller, Net, request};
use std::sync::Arc;
use std::time::Duration;

/// Menus: 1 joins `sales`, whose exit keys are 2 (voicemail) and 3 (callback through the
/// trunk, numbers starting with `allowed`). The agent `desk` is static at 127.0.0.1:7300
/// when `with_agent`, else nobody works the queue.
fn menus(allowed: &str, with_agent: bool) -> Arc<ivr_menus::Menus> {
    let agents = if with_agent {
        "agents:\n  desk:\n    uri: sip:desk@127.0.0.1:7300\n    queues: { sales: 0 }\n"
    } else {
        ""
    };
    let yaml = format!(
        r#"
entry: main
prompts:
  main_en: prompts/main_en.wav
  goodbye_en: prompts/goodbye_en.wav
  sales_en: prompts/sales_en.wav
  thanks: prompts/invalid_en.wav
mailboxes:
  messages: {{ greeting: goodbye_en }}
destinations:
  trunk: {{ uri: "sip:trunk@127.0.0.1:7400", mode: bridge }}
queues:
  sales:
    music: sales_en
    max_wait: 600
    on_timeout: {{ hangup: goodbye_en }}
    exit_keys:
      "2": {{ voicemail: messages }}
      "3": callback
    callback:
      via: trunk
      retries: 1
      retry_delay: 30
      allowed_prefixes: [{allowed}]
      confirmed: thanks
{agents}
menus:
  main:
    prompt: main_en
    timeout: 6
    retries: 5
    options:
      "1": {{ queue: sales }}
"#
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo");
    Arc::new(
        ivr_menus::compile_full(
            &yaml,
            &mut |f| std::fs::read(dir.join(f)).map_err(|e| e.to_string()),
            &mut |_, _| Err("no text-to-speech here".into()),
            &mut ivr_server::builtin::prompt,
        )
        .unwrap_or_else(|e| panic!("{e:?}")),
    )
}

/// Connect `caller` and press 1 (join `sales`).
fn join(net: &mut Net, caller: &mut Caller) -> CallHandle {
    let call = net.connect(caller);
    net.advance(Duration::from_millis(500));
    net.press(caller, call, Digit::D1);
    net.advance(Duration::from_millis(500));
    call
}

fn queue_events(net: &Net) -> Vec<QueueEvent> {
    net.events
        .iter()
        .filter_map(|e| match e {
            Event::Queue { event, .. } => Some(event.clone()),
            _ => None,
        })
        .collect()
}

fn played(net: &Net, name: &str) -> usize {
    net.events
        .iter()
        .filter(|e| matches!(e, Event::Playing { prompt, .. } if prompt == name))
        .count()
}

/// The caller answers the engine's BYE; the call is over.
fn hung_up_by_engine(net: &mut Net, caller: &Caller, call: CallHandle) {
    let msgs = net.take_sip(caller.addr);
    let bye = request(&msgs, "BYE")
        .unwrap_or_else(|| panic!("the engine hangs up: {msgs:?}"))
        .clone();
    net.send_sip(Transport::Udp, caller.addr, &caller.ok_to(&bye));
    assert_eq!(net.ended(call), Some(EndReason::MenuHangup));
}

#[test]
fn an_exit_key_leaves_the_line_for_voicemail() {
    let mut net = Net::new(menus("\"+1\"", false));
    let mut caller = Caller::new("127.0.0.1:7010", "exit-1");
    let call = join(&mut net, &mut caller);
    assert_eq!(net.engine.queue_waiting("sales"), 1);
    net.advance(Duration::from_secs(3));
    // A key bound to nothing does nothing.
    net.press(&mut caller, call, Digit::D7);
    assert_eq!(net.engine.queue_waiting("sales"), 1);
    net.press(&mut caller, call, Digit::D2);
    assert_eq!(net.engine.queue_waiting("sales"), 0, "out of the line");
    assert!(queue_events(&net).iter().any(|e| matches!(
        e,
        QueueEvent::ExitKey {
            key: '2',
            position: 1,
            ..
        }
    )));
    // The deposit begins: the caller ID is offered as the number to call back.
    assert_eq!(played(&net, "vm_offer_caller_id"), 1);
    assert!(net.ended(call).is_none());
}

#[test]
fn a_callback_request_keeps_the_place_and_the_engine_hangs_up() {
    let mut net = Net::new(menus("\"+1\", \"0\"", false));
    let mut first = Caller::new("127.0.0.1:7020", "cb-1");
    let a = join(&mut net, &mut first);
    net.advance(Duration::from_secs(2));
    net.press(&mut first, a, Digit::D3);
    assert_eq!(
        played(&net, "vm_offer_caller_id"),
        1,
        "press 1 for this number"
    );
    net.advance(Duration::from_secs(1));
    net.press(&mut first, a, Digit::D1);
    assert!(
        queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::CallbackRequested { position: 1, .. }))
    );
    assert_eq!(played(&net, "thanks"), 1, "the confirmation");
    net.advance(Duration::from_secs(5));
    hung_up_by_engine(&mut net, &first, a);
    // A later caller (another number) lines up behind the request.
    let mut second = Caller::new("127.0.0.1:7030", "cb-2");
    let b = join(&mut net, &mut second);
    let line = net.engine.queue_line("sales");
    assert_eq!(line.len(), 2, "{line:?}");
    assert!(matches!(line[0], Waiter::Callback(_)), "{line:?}");
    assert_eq!(line[1], Waiter::Caller(ivr_queues::CallRef(b.0)));
    // The same number asks again from the second call: refused, and it keeps waiting.
    net.press(&mut second, b, Digit::D3);
    net.press(&mut second, b, Digit::D1);
    assert_eq!(
        played(&net, "vm_invalid_number"),
        1,
        "{:?}",
        queue_events(&net)
    );
    assert!(net.ended(b).is_none());
    assert_eq!(net.engine.queue_line("sales").len(), 2);
    net.advance(Duration::from_secs(10));
    assert!(net.ended(b).is_none(), "still waiting after the notice");
    // Another number, typed and confirmed, is taken: the second caller keeps its place too.
    net.press(&mut second, b, Digit::D3);
    net.advance(Duration::from_secs(1));
    for d in "0491234567"
        .chars()
        .filter_map(Digit::from_char)
        .chain([Digit::Pound])
    {
        net.press(&mut second, b, d);
    }
    net.advance(Duration::from_secs(1));
    assert!(played(&net, "vm_you_entered") >= 1);
    net.press(&mut second, b, Digit::D1);
    assert!(
        queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::CallbackRequested { position: 2, .. }))
    );
    net.advance(Duration::from_secs(5));
    hung_up_by_engine(&mut net, &second, b);
    let line = net.engine.queue_line("sales");
    assert!(line.iter().all(|w| matches!(w, Waiter::Callback(_))) && line.len() == 2);
}

#[test]
fn a_number_outside_the_allowed_prefixes_is_refused_and_the_caller_keeps_waiting() {
    // Only numbers starting with +33 may be called back; the caller ID is +1555...
    let mut net = Net::new(menus("\"+33\"", false));
    let mut caller = Caller::new("127.0.0.1:7040", "cb-3");
    let call = join(&mut net, &mut caller);
    net.press(&mut caller, call, Digit::D3);
    net.press(&mut caller, call, Digit::D1);
    assert_eq!(played(&net, "vm_invalid_number"), 1);
    assert!(
        !queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::CallbackRequested { .. }))
    );
    assert_eq!(
        net.engine.queue_line("sales"),
        [Waiter::Caller(ivr_queues::CallRef(call.0))]
    );
    assert!(net.ended(call).is_none());
}
