//! Where a call leaves the menus: voicemail mailboxes, call queues and transfer
//! destinations, each defined once by name (`mailboxes:`, `queues:`, `destinations:`) and
//! reached by the actions `voicemail: NAME`, `queue: NAME` and `transfer: NAME`.
//!
//! The menus compile and validate them; what happens to the call once it has left the
//! menus (recording, waiting for an agent, REFER) belongs to the engine.
//!
//! The compiled types live in [`crate::model`] with the actions that name them (a queue's
//! `on_timeout` is an action, an action may name a mailbox); they are re-exported here.

use crate::error::ErrorKind;
use crate::model::{Action, MAX_PRIORITY, PromptId};
use crate::yaml::{Fields, Node, Value, Walker, join};
use ivr_audio::Digit;
use std::time::Duration;

pub use crate::model::{
    CallbackNumber, Destination, DestinationId, EmptyRule, ExitKey, Handoff, Mailbox, MailboxId,
    Queue, QueueCallback, QueueId, Strategy, TransferMode,
};

/// Resolves prompt names (a name or a list, at a YAML path), reporting unknown ones.
pub(crate) type PromptNames<'a> = dyn FnMut(&mut Walker, Option<&Node>, &str) -> Vec<PromptId> + 'a;

/// Fields of a `mailboxes:` entry.
pub(crate) const MAILBOX_FIELDS: &[&str] = &[
    "greeting",
    "callback_number",
    "number_pattern",
    "max_length",
    "finish_key",
    "silence",
    "beep",
    "review",
    "saved",
    "email",
];
/// Fields of a `queues:` entry.
pub(crate) const QUEUE_FIELDS: &[&str] = &[
    "strategy",
    "music",
    "announcement",
    "whisper",
    "announce_every",
    "max_wait",
    "agent_timeout",
    "on_timeout",
    "wrap_up",
    "join_when_empty",
    "leave_when_empty",
    "max_no_answer",
    "announce_position",
    "announce_wait",
    "exit_keys",
    "callback",
];
/// Fields of a queue's `callback:`.
pub(crate) const QUEUE_CALLBACK_FIELDS: &[&str] = &[
    "via",
    "retries",
    "retry_delay",
    "number_pattern",
    "allowed_prefixes",
    "confirmed",
];
/// Fields of the mapping form of a `queue:` action (`queue: { name: sales, priority: 5 }`).
pub(crate) const QUEUE_ACTION_FIELDS: &[&str] = &["name", "priority", "survey"];
/// Fields of a `destinations:` entry.
pub(crate) const DESTINATION_FIELDS: &[&str] = &[
    "uri",
    "mode",
    "ring_timeout",
    "on_failure",
    "username",
    "password",
    "proxy",
];

/// The prompts a mailbox's deposit plays besides its own greeting and `saved` prompt: the
/// number dialogue (with digit read-back) unless it asks for no number, the review prompts
/// if it reviews, and the apology for a failed save. A config may record its own under
/// these names; otherwise built-in versions are used.
pub fn prompts_needed(mailbox: &Mailbox) -> Vec<&'static str> {
    let mut out = vec!["vm_sorry"];
    if matches!(
        mailbox.callback,
        CallbackNumber::Offer | CallbackNumber::Ask
    ) {
        out.extend([
            "vm_offer_caller_id",
            "vm_enter_number",
            "vm_you_entered",
            "vm_confirm_number",
            "vm_invalid_number",
        ]);
        out.extend(DIGITS);
    }
    if mailbox.review {
        out.extend(["vm_review", "vm_cancelled"]);
    }
    out
}

/// The digit prompts a number is read back with.
pub const DIGITS: [&str; 10] = [
    "digit_0", "digit_1", "digit_2", "digit_3", "digit_4", "digit_5", "digit_6", "digit_7",
    "digit_8", "digit_9",
];

/// The phrases a queue's position and wait announcements are made of: "You are number"
/// (position) "in line." "Your expected wait is about" (minutes) "minutes." (or "minute."
/// for one). A config may record its own; otherwise built-in versions are used, in the
/// languages that have them (see [`queue_builtins_needed`]).
pub const QUEUE_PROMPTS: [&str; 5] = [
    "queue_position",
    "queue_position_end",
    "queue_wait",
    "queue_minutes",
    "queue_minute",
];

/// The built-in prompts a config with queues gets, given the names it records itself:
/// the [`QUEUE_PROMPTS`] when it records none of them, and the number words of each of
/// `rules` (its languages' ways of reading numbers) when it records no `number_*` prompt.
/// A config's own recordings are never mixed with built-in ones of the same set.
pub fn queue_builtins_needed(recorded: &[String], rules: &[crate::numbers::Rule]) -> Vec<String> {
    let mut out = Vec::new();
    if !recorded.iter().any(|p| QUEUE_PROMPTS.contains(&p.as_str())) {
        out.extend(QUEUE_PROMPTS.iter().map(|p| p.to_string()));
    }
    if !recorded.iter().any(|p| p.starts_with("number_")) {
        for rule in rules {
            for w in crate::numbers::words(*rule) {
                if !out.contains(&w) {
                    out.push(w);
                }
            }
        }
    }
    out
}

/// The callback-number pattern when none is given: an optional `+` and 3 to 15 digits
/// (E.164 numbers and short internal ones).
pub const DEFAULT_NUMBER_PATTERN: &str = r"\+?[0-9]{3,15}";

/// A whole number of seconds within `range`, or the default.
pub(crate) fn seconds(
    w: &mut Walker,
    f: &Fields<'_>,
    key: &str,
    path: &str,
    range: std::ops::RangeInclusive<f64>,
    default: f64,
) -> f64 {
    let Some(node) = f.get(key) else {
        return default;
    };
    let here = join(path, key);
    match w.seconds(node, &here) {
        Some(v) if range.contains(&v) => v,
        Some(v) => {
            w.error(
                node.at,
                &here,
                ErrorKind::Range {
                    got: v,
                    min: *range.start(),
                    max: *range.end(),
                },
            );
            default
        }
        None => default,
    }
}

/// One of a fixed set of words (`words` pairs each with its value), or the default.
pub(crate) fn choice<T: Copy>(
    w: &mut Walker,
    f: &Fields<'_>,
    key: &str,
    path: &str,
    words: &[(&str, T)],
    allowed: &'static str,
    default: T,
) -> T {
    let Some(node) = f.get(key) else {
        return default;
    };
    let here = join(path, key);
    let Some(word) = w.string(node, &here) else {
        return default;
    };
    match words.iter().find(|(w, _)| *w == word) {
        Some((_, v)) => *v,
        None => {
            w.error(node.at, &here, ErrorKind::Choice { got: word, allowed });
            default
        }
    }
}

/// A `mailboxes:` entry. `prompts` resolves prompt names (with errors for unknown ones).
pub(crate) fn compile_mailbox(
    w: &mut Walker,
    name: &str,
    node: &Node,
    prompts: &mut PromptNames<'_>,
) -> Mailbox {
    let path = join("mailboxes", name);
    let mut mailbox = Mailbox {
        name: name.to_string(),
        greeting: Vec::new(),
        callback: CallbackNumber::Offer,
        number_pattern: anchored(DEFAULT_NUMBER_PATTERN).expect("the default pattern is valid"),
        max_length: Duration::from_secs(120),
        finish_key: Digit::Pound,
        silence: Some(Duration::from_secs(5)),
        beep: true,
        review: false,
        saved: Vec::new(),
        email: Vec::new(),
        at: node.at,
    };
    let Some(f) = w.map(node, &path, Some(MAILBOX_FIELDS)) else {
        return mailbox;
    };
    match f.get("greeting") {
        Some(g) => mailbox.greeting = prompts(w, Some(g), &join(&path, "greeting")),
        None => w.error(node.at, &path, ErrorKind::Missing("greeting")),
    }
    mailbox.saved = prompts(w, f.get("saved"), &join(&path, "saved"));
    if let Some(e) = f.get("email") {
        let here = join(&path, "email");
        for (address, at) in w.names(e, &here) {
            // A plain check: one @, something on both sides, no spaces or angle brackets.
            let ok = matches!(address.split_once('@'), Some((l, d)) if !l.is_empty() && d.contains('.') && !d.contains('@'))
                && !address.contains([' ', '<', '>', ',', '\n', '\r']);
            if ok {
                mailbox.email.push(address);
            } else {
                w.error(
                    at,
                    &here,
                    ErrorKind::Choice {
                        got: address,
                        allowed: "an e-mail address (name@example.com)",
                    },
                );
            }
        }
    }
    mailbox.callback = choice(
        w,
        &f,
        "callback_number",
        &path,
        &[
            ("offer_caller_id", CallbackNumber::Offer),
            ("ask", CallbackNumber::Ask),
            ("caller_id", CallbackNumber::CallerId),
            ("none", CallbackNumber::None),
        ],
        "offer_caller_id, ask, caller_id, none",
        CallbackNumber::Offer,
    );
    if let Some(p) = f.get("number_pattern") {
        let here = join(&path, "number_pattern");
        if let Some(text) = w.string(p, &here) {
            match anchored(&text) {
                Ok(re) => mailbox.number_pattern = re,
                Err(reason) => w.error(p.at, &here, ErrorKind::Pattern(reason)),
            }
        }
    }
    mailbox.max_length =
        Duration::from_secs_f64(seconds(w, &f, "max_length", &path, 5.0..=3600.0, 120.0));
    let silence = seconds(w, &f, "silence", &path, 0.0..=60.0, 5.0);
    mailbox.silence = (silence > 0.0).then(|| Duration::from_secs_f64(silence));
    if let Some(k) = f.get("finish_key") {
        let here = join(&path, "finish_key");
        if let Some(text) = w.string(k, &here) {
            let mut chars = text.chars();
            match (chars.next().and_then(Digit::from_char), chars.next()) {
                (Some(d), None) => mailbox.finish_key = d,
                _ => w.error(k.at, &here, ErrorKind::BadKey(text)),
            }
        }
    }
    if let Some(b) = f.get("beep") {
        mailbox.beep = w.boolean(b, &join(&path, "beep")).unwrap_or(true);
    }
    if let Some(r) = f.get("review") {
        mailbox.review = w.boolean(r, &join(&path, "review")).unwrap_or(false);
    }
    mailbox
}

/// A pattern that must match the whole number.
fn anchored(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
        // The regex error spans several lines with a caret; its last line says what is wrong.
        let text = e.to_string();
        let reason = text.lines().last().unwrap_or("invalid").trim().to_string();
        format!("'{pattern}' is not a valid pattern: {reason}")
    })
}

/// A `queues:` entry; `action` compiles its `on_timeout` and exit keys, `destination`
/// resolves its callback's `via:`.
pub(crate) fn compile_queue(
    w: &mut Walker,
    name: &str,
    node: &Node,
    prompts: &mut PromptNames<'_>,
    action: &mut dyn FnMut(&mut Walker, &Node, &str) -> Option<Action>,
    destination: &mut dyn FnMut(&mut Walker, &Node, &str) -> Option<DestinationId>,
) -> Queue {
    let path = join("queues", name);
    let mut queue = Queue {
        name: name.to_string(),
        strategy: Strategy::LongestIdle,
        music: Vec::new(),
        announcement: Vec::new(),
        whisper: Vec::new(),
        announce_every: Duration::from_secs(30),
        max_wait: Duration::from_secs(600),
        agent_timeout: Duration::from_secs(15),
        on_timeout: Action::Hangup(Vec::new()),
        wrap_up: Duration::ZERO,
        join_when_empty: EmptyRule::Never,
        leave_when_empty: EmptyRule::Never,
        max_no_answer: 3,
        announce_position: true,
        announce_wait: true,
        exit_keys: Vec::new(),
        callback: None,
        at: node.at,
    };
    let Some(f) = w.map(node, &path, Some(QUEUE_FIELDS)) else {
        return queue;
    };
    queue.strategy = choice(
        w,
        &f,
        "strategy",
        &path,
        &[
            ("ring_all", Strategy::RingAll),
            ("round_robin", Strategy::RoundRobin),
            ("longest_idle", Strategy::LongestIdle),
            ("fewest_calls", Strategy::FewestCalls),
            ("random", Strategy::Random),
            ("linear", Strategy::Linear),
        ],
        "ring_all, round_robin, longest_idle, fewest_calls, random, linear",
        Strategy::LongestIdle,
    );
    queue.music = prompts(w, f.get("music"), &join(&path, "music"));
    queue.announcement = prompts(w, f.get("announcement"), &join(&path, "announcement"));
    queue.whisper = prompts(w, f.get("whisper"), &join(&path, "whisper"));
    queue.announce_every =
        Duration::from_secs_f64(seconds(w, &f, "announce_every", &path, 5.0..=600.0, 30.0));
    queue.max_wait =
        Duration::from_secs_f64(seconds(w, &f, "max_wait", &path, 10.0..=7200.0, 600.0));
    queue.agent_timeout =
        Duration::from_secs_f64(seconds(w, &f, "agent_timeout", &path, 5.0..=120.0, 15.0));
    queue.wrap_up = Duration::from_secs_f64(seconds(w, &f, "wrap_up", &path, 0.0..=3600.0, 0.0));
    let empty = [
        ("never", EmptyRule::Never),
        ("none_logged_in", EmptyRule::NoneLoggedIn),
        ("none_active", EmptyRule::NoneActive),
    ];
    let allowed = "never, none_logged_in, none_active";
    queue.join_when_empty = choice(
        w,
        &f,
        "join_when_empty",
        &path,
        &empty,
        allowed,
        EmptyRule::Never,
    );
    queue.leave_when_empty = choice(
        w,
        &f,
        "leave_when_empty",
        &path,
        &empty,
        allowed,
        EmptyRule::Never,
    );
    if let Some(n) = f.get("max_no_answer") {
        let here = join(&path, "max_no_answer");
        match w.number(n, &here) {
            Some(v) if (0.0..=100.0).contains(&v) && v.fract() == 0.0 => {
                queue.max_no_answer = v as u32
            }
            Some(v) => w.error(
                n.at,
                &here,
                ErrorKind::Range {
                    got: v,
                    min: 0.0,
                    max: 100.0,
                },
            ),
            None => {}
        }
    }
    for (key, slot) in [
        ("announce_position", &mut queue.announce_position),
        ("announce_wait", &mut queue.announce_wait),
    ] {
        if let Some(b) = f.get(key) {
            *slot = w.boolean(b, &join(&path, key)).unwrap_or(true);
        }
    }
    if let Some(a) = f.get("on_timeout") {
        let here = join(&path, "on_timeout");
        if let Some(act) = action(w, a, &here) {
            // The caller is in no menu while queued: only a way out of the queue fits.
            match act.verb() {
                Action::Goto(_)
                | Action::Hangup(_)
                | Action::Voicemail(_)
                | Action::Transfer(_)
                | Action::Queue(..) => queue.on_timeout = act,
                other => w.error(
                    a.at,
                    &here,
                    ErrorKind::Choice {
                        got: other.verb_name().into(),
                        allowed: "goto, hangup, voicemail, transfer or queue (the caller is in no menu to repeat or go back to)",
                    },
                ),
            }
        }
    }
    if let Some(c) = f.get("callback") {
        queue.callback = compile_callback(w, c, &join(&path, "callback"), prompts, destination);
    }
    if let Some(keys) = f.get("exit_keys") {
        let kpath = join(&path, "exit_keys");
        if let Some(kf) = w.map(keys, &kpath, None) {
            for (key, a) in kf.iter() {
                let here = join(&kpath, key);
                let mut chars = key.chars();
                let Some(digit) = chars
                    .next()
                    .and_then(Digit::from_char)
                    .filter(|_| chars.next().is_none())
                else {
                    w.error(a.at, &here, ErrorKind::BadKey(key.to_string()));
                    continue;
                };
                if matches!(&a.value, crate::yaml::Value::Str(s) if s == "callback") {
                    if queue.callback.is_none() {
                        w.error(
                            a.at,
                            &here,
                            ErrorKind::Missing(
                                "callback (the queue's callback: settings, with via:)",
                            ),
                        );
                    }
                    queue.exit_keys.push((digit, ExitKey::Callback));
                    continue;
                }
                let Some(act) = action(w, a, &here) else {
                    continue;
                };
                match act.verb() {
                    Action::Goto(_)
                    | Action::Hangup(_)
                    | Action::Voicemail(_)
                    | Action::Transfer(_)
                    | Action::Queue(..) => queue.exit_keys.push((digit, ExitKey::Action(act))),
                    other => w.error(
                        a.at,
                        &here,
                        ErrorKind::Choice {
                            got: other.verb_name().into(),
                            allowed: "callback, goto, hangup, voicemail, transfer or queue (the caller is in no menu to repeat or go back to)",
                        },
                    ),
                }
            }
        }
    }
    queue
}

/// A queue's `callback:` settings.
fn compile_callback(
    w: &mut Walker,
    node: &Node,
    path: &str,
    prompts: &mut PromptNames<'_>,
    destination: &mut dyn FnMut(&mut Walker, &Node, &str) -> Option<DestinationId>,
) -> Option<QueueCallback> {
    let f = w.map(node, path, Some(QUEUE_CALLBACK_FIELDS))?;
    let Some(via) = f.get("via") else {
        w.error(node.at, path, ErrorKind::Missing("via"));
        return None;
    };
    let via = destination(w, via, &join(path, "via"))?;
    let mut cb = QueueCallback {
        retries: 2,
        retry_delay: Duration::from_secs(60),
        via,
        number_pattern: anchored(DEFAULT_NUMBER_PATTERN).ok()?,
        allowed_prefixes: Vec::new(),
        confirmed: prompts(w, f.get("confirmed"), &join(path, "confirmed")),
    };
    if let Some(n) = f.get("retries") {
        let here = join(path, "retries");
        match w.count(n, &here) {
            Some(v) if v <= 10 => cb.retries = v,
            Some(v) => w.error(
                n.at,
                &here,
                ErrorKind::Range {
                    got: f64::from(v),
                    min: 0.0,
                    max: 10.0,
                },
            ),
            None => {}
        }
    }
    cb.retry_delay =
        Duration::from_secs_f64(seconds(w, &f, "retry_delay", path, 10.0..=3600.0, 60.0));
    if let Some(p) = f.get("number_pattern") {
        let here = join(path, "number_pattern");
        if let Some(text) = w.string(p, &here) {
            match anchored(&text) {
                Ok(re) => cb.number_pattern = re,
                Err(reason) => w.error(p.at, &here, ErrorKind::Pattern(reason)),
            }
        }
    }
    if let Some(list) = f.get("allowed_prefixes") {
        let here = join(path, "allowed_prefixes");
        for (prefix, at) in w.names(list, &here) {
            let digits = prefix.strip_prefix('+').unwrap_or(&prefix);
            if prefix.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                w.error(
                    at,
                    &here,
                    ErrorKind::Pattern(format!(
                        "'{prefix}' is not a number prefix (digits with an optional leading +)"
                    )),
                );
            } else {
                cb.allowed_prefixes.push(prefix);
            }
        }
    }
    Some(cb)
}

/// A `destinations:` entry; `action` compiles its `on_failure`.
pub(crate) fn compile_destination(
    w: &mut Walker,
    name: &str,
    node: &Node,
    action: &mut dyn FnMut(&mut Walker, &Node, &str) -> Option<Action>,
) -> Destination {
    let path = join("destinations", name);
    let mut dest = Destination {
        name: name.to_string(),
        uri: String::new(),
        mode: TransferMode::Refer,
        ring_timeout: Duration::from_secs(30),
        on_failure: Action::Repeat,
        credentials: None,
        proxy: None,
        at: node.at,
    };
    // The short form is the URI alone.
    let f = match &node.value {
        crate::yaml::Value::Str(_) => None,
        _ => match w.map(node, &path, Some(DESTINATION_FIELDS)) {
            Some(f) => Some(f),
            None => return dest,
        },
    };
    let uri_node = match &f {
        None => Some(node),
        Some(f) => f.get("uri"),
    };
    match uri_node {
        Some(n) => {
            let here = if f.is_some() {
                join(&path, "uri")
            } else {
                path.clone()
            };
            if let Some(text) = w.string(n, &here) {
                match check_uri(&text) {
                    Ok(()) => dest.uri = text,
                    Err(reason) => w.error(n.at, &here, ErrorKind::Uri(reason)),
                }
            }
        }
        None => w.error(node.at, &path, ErrorKind::Missing("uri")),
    }
    if let Some(f) = &f {
        dest.mode = choice(
            w,
            f,
            "mode",
            &path,
            &[
                ("refer", TransferMode::Refer),
                ("bridge", TransferMode::Bridge),
            ],
            "refer, bridge",
            TransferMode::Refer,
        );
        dest.ring_timeout =
            Duration::from_secs_f64(seconds(w, f, "ring_timeout", &path, 5.0..=300.0, 30.0));
        if let Some(a) = f.get("on_failure") {
            let here = join(&path, "on_failure");
            if let Some(act) = action(w, a, &here) {
                dest.on_failure = act;
            }
        }
        let text = |w: &mut Walker, key: &str| {
            f.get(key)
                .and_then(|n| w.string(n, &join(&path, key)).map(|s| (n, s)))
        };
        match (text(w, "username"), text(w, "password")) {
            (Some((_, u)), Some((_, p))) => dest.credentials = Some((u, p)),
            (Some((n, _)), None) => w.error(n.at, &path, ErrorKind::Missing("password")),
            (None, Some((n, _))) => w.error(n.at, &path, ErrorKind::Missing("username")),
            (None, None) => {}
        }
        if let Some((n, p)) = text(w, "proxy") {
            match ivr_sip::uri::Uri::parse(&p) {
                Ok(ivr_sip::uri::Uri::Sip(_)) => dest.proxy = Some(p),
                _ => w.error(
                    n.at,
                    &join(&path, "proxy"),
                    ErrorKind::Uri(format!("'{p}': a proxy is a sip: URI with a host")),
                ),
            }
        }
    }
    dest
}

/// A transfer target must be a `sip:`/`sips:` URI with a host, or a `tel:` URI.
/// A `queue:` action's target: a queue's name (priority 0), or `{ name: QUEUE, priority:
/// 0-9 }` where a higher priority is served first. `lookup` finds a queue by name (or
/// reports it unknown). Both fields are checked before giving up, so every error in the
/// action is reported at once. The priority is a literal: actions have no variable
/// substitution.
pub(crate) fn queue_action(
    w: &mut Walker,
    node: &Node,
    path: &str,
    lookup: &mut dyn FnMut(&mut Walker, &str, crate::Loc, &str) -> Option<usize>,
) -> Option<Action> {
    let Value::Map(_) = node.value else {
        let Value::Str(name) = &node.value else {
            w.error(
                node.at,
                path,
                ErrorKind::Type {
                    expected: "a queue's name or { name: QUEUE, priority: 0-9, survey: SURVEY }",
                    found: node.value.kind(),
                },
            );
            return None;
        };
        return Some(Action::Queue(QueueId(lookup(w, name, node.at, path)?), 0));
    };
    let f = w.map(node, path, Some(QUEUE_ACTION_FIELDS))?;
    let queue = match f.get("name") {
        Some(n) => {
            let here = join(path, "name");
            w.string(n, &here)
                .and_then(|name| lookup(w, &name, n.at, &here))
        }
        None => {
            w.error(node.at, path, ErrorKind::Missing("name"));
            None
        }
    };
    let priority = match f.get("priority") {
        None => Some(0),
        Some(n) => {
            let here = join(path, "priority");
            match n.value {
                Value::Int(v) if (0..=i64::from(MAX_PRIORITY)).contains(&v) => u8::try_from(v).ok(),
                Value::Int(v) => {
                    w.error(
                        n.at,
                        &here,
                        ErrorKind::Range {
                            got: v as f64,
                            min: 0.0,
                            max: f64::from(MAX_PRIORITY),
                        },
                    );
                    None
                }
                _ => {
                    w.error(
                        n.at,
                        &here,
                        ErrorKind::Type {
                            expected: "a whole number from 0 to 9 (actions take no variables)",
                            found: n.value.kind(),
                        },
                    );
                    None
                }
            }
        }
    };
    Some(Action::Queue(QueueId(queue?), priority?))
}

fn check_uri(text: &str) -> Result<(), String> {
    match ivr_sip::uri::Uri::parse(text) {
        Ok(ivr_sip::uri::Uri::Sip(_)) => Ok(()),
        Ok(u) if u.scheme() == "tel" && text.len() > 4 => Ok(()),
        Ok(u) => Err(format!(
            "'{text}': a {}: URI cannot be called (use sip:, sips: or tel:)",
            u.scheme()
        )),
        Err(e) => Err(format!("'{text}' is not a URI ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::tests::compile_test;

    const CONFIG: &str = r#"
entry: main
prompts:
  welcome: welcome.wav
  leave: leave.wav
  thanks: thanks.wav
  music: music.wav
  busy: busy.wav
mailboxes:
  sales: { greeting: leave }
  doctor:
    greeting: [leave]
    callback_number: ask
    number_pattern: "0[1-9][0-9]{8}"
    max_length: 300
    finish_key: "*"
    silence: 0
    beep: false
    review: true
    saved: thanks
queues:
  support:
    strategy: ring_all
    music: music
    announcement: busy
    announce_every: 20
    max_wait: 60
    on_timeout: { voicemail: sales }
destinations:
  callcenter: sip:support@cc.example.com
  mobile: { uri: "tel:+33612345678", mode: bridge, ring_timeout: 20, on_failure: { voicemail: sales }, username: ivr, password: s3cret, proxy: "sip:127.0.0.1:5080;lr" }
menus:
  main:
    prompt: welcome
    options:
      "1": { voicemail: sales }
      "2": { queue: support }
      "3": { transfer: callcenter }
      "4": { set: { dept: doctor, vip: true }, voicemail: doctor }
      "5": { goto: more }
  more:
    prompt: welcome
    options:
      "1": { transfer: mobile }
      "*": { back: true }
    on_failure: { back: true }
"#;

    #[test]
    fn queue_center_settings_compile_and_are_checked() {
        let m = compile_test(CONFIG).unwrap();
        let q = m.queue(QueueId(0));
        assert_eq!(
            (
                q.wrap_up,
                q.join_when_empty,
                q.leave_when_empty,
                q.max_no_answer
            ),
            (Duration::ZERO, EmptyRule::Never, EmptyRule::Never, 3)
        );
        assert!(q.announce_position && q.announce_wait);
        assert!(q.whisper.is_empty(), "no whisper unless asked for");
        let whisper = |w: &str| {
            CONFIG.replace(
                "    announcement: busy\n",
                &format!("    announcement: busy\n    whisper: {w}\n"),
            )
        };
        let m = compile_test(&whisper("[busy, thanks]")).unwrap();
        let q = m.queue(QueueId(0));
        let names: Vec<&str> = q.whisper.iter().map(|p| m.prompt_name(*p)).collect();
        assert_eq!(names, ["busy", "thanks"]);
        let set = CONFIG.replace(
            "    announce_every: 20\n",
            "    announce_every: 20\n    strategy_note: x\n",
        );
        assert!(compile_test(&set).is_err(), "unknown keys are refused");
        let set = CONFIG.replace(
            "    strategy: ring_all\n",
            "    strategy: linear\n    wrap_up: 10s\n    join_when_empty: none_logged_in\n    leave_when_empty: none_active\n    max_no_answer: 0\n    announce_position: false\n",
        );
        let m = compile_test(&set).unwrap();
        let q = m.queue(QueueId(0));
        assert_eq!(q.strategy, Strategy::Linear);
        assert_eq!(q.wrap_up, Duration::from_secs(10));
        assert_eq!(
            (q.join_when_empty, q.leave_when_empty, q.max_no_answer),
            (EmptyRule::NoneLoggedIn, EmptyRule::NoneActive, 0)
        );
        assert!(!q.announce_position && q.announce_wait);
        let bad = whisper("bussy").replace(
            "    strategy: ring_all\n",
            "    join_when_empty: sometimes\n    max_no_answer: 2.5\n",
        );
        let e: Vec<String> = compile_test(&bad)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(e.iter().any(|e| e.contains("'sometimes' is not one of never, none_logged_in, none_active")), "{e:?}");
        assert!(
            e.iter()
                .any(|e| e.contains("queues.support.whisper") && e.contains("bussy")),
            "an unknown whisper prompt: {e:?}"
        );
        assert!(
            e.iter()
                .any(|e| e.contains("max_no_answer: 2.5 is outside 0 to 100")),
            "{e:?}"
        );
    }

    #[test]
    fn mailboxes_queues_and_destinations_compile_with_their_defaults() {
        let m = compile_test(CONFIG).unwrap();
        let sales = m.mailbox(MailboxId(0));
        assert_eq!(
            (sales.callback, sales.max_length, sales.finish_key),
            (
                CallbackNumber::Offer,
                Duration::from_secs(120),
                Digit::Pound
            )
        );
        assert_eq!(
            (sales.silence, sales.beep, sales.review),
            (Some(Duration::from_secs(5)), true, false)
        );
        let doctor = m.mailbox(MailboxId(1));
        assert_eq!(doctor.callback, CallbackNumber::Ask);
        assert!(doctor.number_pattern.is_match("0612345678"));
        assert!(!doctor.number_pattern.is_match("+33612345678"));
        assert_eq!(
            (doctor.max_length, doctor.finish_key, doctor.silence),
            (Duration::from_secs(300), Digit::Star, None)
        );
        assert!(doctor.review && !doctor.beep && doctor.saved.len() == 1);
        let q = m.queue(QueueId(0));
        assert_eq!(q.strategy, Strategy::RingAll);
        assert_eq!(q.max_wait, Duration::from_secs(60));
        assert_eq!(q.on_timeout, Action::Voicemail(MailboxId(0)));
        let cc = m.destination(DestinationId(0));
        assert_eq!(
            (cc.uri.as_str(), cc.mode),
            ("sip:support@cc.example.com", TransferMode::Refer)
        );
        let mobile = m.destination(DestinationId(1));
        assert_eq!(
            (mobile.mode, mobile.ring_timeout),
            (TransferMode::Bridge, Duration::from_secs(20))
        );
        assert_eq!(mobile.on_failure, Action::Voicemail(MailboxId(0)));
        assert_eq!(
            mobile.credentials,
            Some(("ivr".to_string(), "s3cret".to_string()))
        );
        assert_eq!(mobile.proxy.as_deref(), Some("sip:127.0.0.1:5080;lr"));
        assert_eq!(cc.on_failure, Action::Repeat, "by default the menu replays");
        let main = m.menu(m.entry());
        assert_eq!(
            main.options[4].as_ref().and_then(Action::handoff),
            Some(Handoff::Voicemail(MailboxId(1)))
        );
        assert_eq!(
            m.handoff_name(Handoff::Queue(QueueId(0), 0)),
            "queue support"
        );
        // (main has no no_input prompt and hangs up silently: the one warning.)
        let w: Vec<&ErrorKind> = m.warnings().iter().map(|w| &w.kind).collect();
        assert_eq!(w, [&ErrorKind::SilentFailure], "{:?}", m.warnings());
    }

    fn errors(yaml: &str) -> Vec<String> {
        compile_test(yaml)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn exit_keys_and_callback_settings_compile_and_are_checked() {
        let good = CONFIG.replace(
            "    strategy: ring_all\n",
            "    exit_keys: { \"1\": callback, \"2\": { voicemail: sales }, \"#\": { goto: more } }\n    callback: { via: mobile, retries: 3, retry_delay: 2m, allowed_prefixes: [\"0\", \"+33\"], confirmed: thanks }\n",
        );
        let m = compile_test(&good).unwrap();
        let q = m.queue(QueueId(0));
        assert_eq!(q.exit_keys.len(), 3);
        assert!(matches!(q.exit_keys[0], (Digit::D1, ExitKey::Callback)));
        assert!(matches!(
            q.exit_keys[1],
            (Digit::D2, ExitKey::Action(Action::Voicemail(_)))
        ));
        let cb = q.callback.as_ref().unwrap();
        assert_eq!((cb.retries, cb.retry_delay), (3, Duration::from_secs(120)));
        assert_eq!(m.destination(cb.via).name, "mobile");
        assert!(cb.allows("0612345678") && cb.allows("+33612345678"));
        assert!(!cb.allows("+1555123456"), "not an allowed prefix");
        assert!(!cb.allows("06;user=x"), "digits only");
        assert!(!cb.allows("0"), "the pattern: 3 to 15 digits");
        let bad = CONFIG.replace(
            "    strategy: ring_all\n",
            "    exit_keys: { \"1\": callback, \"22\": { voicemail: sales }, \"3\": { repeat: true } }\n",
        );
        let e = errors(&bad);
        assert!(
            e.iter()
                .any(|e| e.contains("exit_keys.1: missing field 'callback")),
            "{e:#?}"
        );
        assert!(
            e.iter()
                .any(|e| e.contains("exit_keys.22: '22' is not a key")),
            "{e:#?}"
        );
        assert!(
            e.iter()
                .any(|e| e.contains("exit_keys.3: 'repeat' is not one of callback, goto")),
            "{e:#?}"
        );
        let bad = CONFIG.replace(
            "    strategy: ring_all\n",
            "    callback: { via: mobil, retries: 11, allowed_prefixes: [\"0a\"] }\n",
        );
        let e = errors(&bad);
        assert!(
            e.iter().any(|e| e
                .contains("callback.via: unknown destination 'mobil' (did you mean 'mobile'?)")),
            "{e:#?}"
        );
        let bad = CONFIG.replace(
            "    strategy: ring_all\n",
            "    callback: { via: mobile, retries: 11, allowed_prefixes: [\"0a\"] }\n",
        );
        let e = errors(&bad);
        assert!(
            e.iter()
                .any(|e| e.contains("callback.retries: 11 is outside 0 to 10")),
            "{e:#?}"
        );
        assert!(
            e.iter().any(|e| e.contains("'0a' is not a number prefix")),
            "{e:#?}"
        );
    }

    #[test]
    fn a_queue_action_takes_a_priority_in_its_mapping_form() {
        let good = CONFIG
            .replace(
                "\"2\": { queue: support }",
                "\"2\": { queue: { name: support, priority: 5 } }\n      \"6\": { queue: { name: support } }",
            )
            .replace(
                "    on_timeout: { voicemail: sales }\n",
                "    on_timeout: { queue: { name: support, priority: 9 } }\n    exit_keys: { \"0\": { queue: { name: support, priority: 0 } } }\n",
            );
        let m = compile_test(&good).unwrap();
        let main = m.menu(m.entry());
        let key = |d: Digit| main.options[d.event_code() as usize].clone();
        assert_eq!(key(Digit::D2), Some(Action::Queue(QueueId(0), 5)));
        assert_eq!(
            key(Digit::D6),
            Some(Action::Queue(QueueId(0), 0)),
            "default 0"
        );
        assert_eq!(
            key(Digit::D2).and_then(|a| a.handoff()),
            Some(Handoff::Queue(QueueId(0), 5)),
            "the priority travels with the handoff"
        );
        let q = m.queue(QueueId(0));
        assert_eq!(q.on_timeout, Action::Queue(QueueId(0), 9));
        assert!(matches!(
            q.exit_keys[0],
            (Digit::D0, ExitKey::Action(Action::Queue(QueueId(0), 0)))
        ));
        // The short form stays priority 0.
        let m = compile_test(CONFIG).unwrap();
        let main = m.menu(m.entry());
        assert_eq!(main.options[2], Some(Action::Queue(QueueId(0), 0)));
    }

    #[test]
    fn every_mistake_in_a_queue_action_is_reported_at_once() {
        let bad = CONFIG
            .replace(
                "\"2\": { queue: support }",
                "\"2\": { queue: { name: suport, priority: 10 } }\n      \"6\": { queue: { priority: -1, prio: 2 } }\n      \"7\": { queue: { name: support, priority: \"${vip}\" } }\n      \"8\": { queue: [support] }\n      \"9\": { queue: { name: support, priority: 1.5 } }",
            );
        let e = errors(&bad);
        let want = [
            "menus.main.options.2.queue.name: unknown queue 'suport' (did you mean 'support'?)",
            "menus.main.options.2.queue.priority: 10 is outside 0 to 9",
            "menus.main.options.6.queue.prio: unknown field 'prio' (expected one of name, priority, survey)",
            "menus.main.options.6.queue: missing field 'name'",
            "menus.main.options.6.queue.priority: -1 is outside 0 to 9",
            "menus.main.options.7.queue.priority: expected a whole number from 0 to 9 (actions take no variables), found a string",
            "menus.main.options.8.queue: expected a queue's name or { name: QUEUE, priority: 0-9, survey: SURVEY }, found a list",
            "menus.main.options.9.queue.priority: expected a whole number from 0 to 9 (actions take no variables), found a number",
        ];
        for want in want {
            assert!(
                e.iter().any(|e| e.contains(want)),
                "{want}\n  not in {e:#?}"
            );
        }
        assert_eq!(e.len(), want.len(), "{e:#?}");
    }

    #[test]
    fn every_mistake_is_reported_with_its_place() {
        let bad = CONFIG
            .replace(
                "{ voicemail: sales }\n      \"2\"",
                "{ voicemail: sals }\n      \"2\"",
            )
            .replace("\"0[1-9][0-9]{8}\"", "\"0[1-9\"")
            .replace("max_length: 300", "max_length: 9000")
            .replace("strategy: ring_all", "strategy: ring_some")
            .replace(
                "sip:support@cc.example.com",
                "mailto:support@cc.example.com",
            )
            .replace("ring_timeout: 20", "ring_timout: 20")
            .replace("{ transfer: callcenter }", "{ transfer: calcenter }");
        let e = errors(&bad);
        let want = [
            "14:21: mailboxes.doctor.number_pattern: '0[1-9' is not a valid pattern",
            "15:17: mailboxes.doctor.max_length: 9000 is outside 5 to 3600",
            "23:15: queues.support.strategy: 'ring_some' is not one of ring_all, round_robin, longest_idle, fewest_calls, random",
            "30:15: destinations.callcenter: 'mailto:support@cc.example.com': a mailto: URI cannot be called (use sip:, sips: or tel:)",
            "31:52: destinations.mobile.ring_timout: unknown field 'ring_timout' (did you mean 'ring_timeout'?",
            "36:25: menus.main.options.1.voicemail: unknown mailbox 'sals' (did you mean 'sales'?)",
            "38:24: menus.main.options.3.transfer: unknown destination 'calcenter' (did you mean 'callcenter'?)",
        ];
        assert_eq!(e.len(), want.len(), "{e:#?}");
        for (got, want) in e.iter().zip(want) {
            assert!(
                got.starts_with(want),
                "{got}\n  does not start with\n{want}"
            );
        }
    }

    #[test]
    fn mailbox_prompts_come_built_in_per_language_or_must_be_recorded() {
        let yaml = r#"
entry: m
languages: { enabled: [fr-CA, de] }
prompts:
  hi: { fr-CA: welcome.wav, de: welcome.wav }
  vm_sorry: { fr-CA: welcome.wav, de: welcome.wav }
mailboxes:
  box: { greeting: hi, callback_number: caller_id }
menus:
  m: { prompt: hi, no_input: hi, options: { "1": { voicemail: box } }, on_failure: { hangup: hi } }
"#;
        // Recorded in the config: nothing built in is needed (caller_id asks nothing).
        let m = compile_test(yaml).unwrap();
        assert!(m.find_prompt("vm_enter_number").is_none());
        // Asking for a number needs the dialogue: built in for fr (fr-CA falls back to fr),
        // not for de.
        let ask = yaml.replace("callback_number: caller_id", "callback_number: ask");
        let mut asked: Vec<(String, String)> = Vec::new();
        let e = crate::compile::compile_full(
            &ask,
            &mut crate::compile::tests::loader,
            &mut |_, _| Err("no TTS".into()),
            &mut |name, lang| {
                asked.push((name.to_string(), lang.to_string()));
                (lang == "fr").then(|| ivr_audio::wav::encode_pcm16(8000, &[1; 800]))
            },
        )
        .unwrap_err();
        assert!(asked.contains(&("vm_enter_number".into(), "fr-CA".into())));
        assert!(asked.contains(&("vm_enter_number".into(), "fr".into())));
        let e: Vec<String> = e.iter().map(ToString::to_string).collect();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("8:8: mailboxes.box: needs the prompts vm_offer_caller_id, vm_enter_number, vm_you_entered, vm_confirm_number, vm_invalid_number, digit_0,"),
            "{}",
            e[0]
        );
        assert!(e[0].contains(" in 'de'"), "{}", e[0]);
    }

    #[test]
    fn a_queue_timeout_must_leave_the_queue() {
        let e = errors(&CONFIG.replace(
            "on_timeout: { voicemail: sales }",
            "on_timeout: { repeat: true }",
        ));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(
                "28:17: queues.support.on_timeout: 'repeat' is not one of goto, hangup"
            ),
            "{}",
            e[0]
        );
    }

    #[test]
    fn silent_callers_cannot_loop_through_back_or_queues() {
        // `back` in the entry menu, which nothing leads to, is a replay forever.
        let e = errors(&CONFIG.replace(
            "      \"5\": { goto: more }\n",
            "      \"5\": { goto: more }\n    on_failure: { back: true }\n",
        ));
        assert!(
            e.len() == 1 && e[0].contains("would loop forever: main -> main"),
            "{e:?}"
        );
        // main fails to a queue whose timeout leads back to main.
        let e = errors(
            &CONFIG
                .replace(
                    "on_timeout: { voicemail: sales }",
                    "on_timeout: { goto: main }",
                )
                .replace(
                    "      \"5\": { goto: more }\n",
                    "      \"5\": { goto: more }\n    on_failure: { queue: support }\n",
                ),
        );
        assert!(
            e.len() == 1 && e[0].contains("would loop forever: main -> main"),
            "{e:?}"
        );
        // more fails back to main, which fails to more: a loop through `back`.
        let e = errors(&CONFIG.replace(
            "      \"5\": { goto: more }\n",
            "      \"5\": { goto: more }\n    on_failure: { goto: more }\n",
        ));
        assert!(
            e.len() == 1 && e[0].contains("would loop forever: main -> more -> main"),
            "{e:?}"
        );
    }

    #[test]
    fn patterns_match_whole_numbers() {
        let re = anchored(DEFAULT_NUMBER_PATTERN).unwrap();
        assert!(re.is_match("+33123456789"));
        assert!(re.is_match("0612345678"));
        assert!(!re.is_match("12"));
        assert!(!re.is_match("0612345678#"));
        let err = anchored("0[1-9").unwrap_err();
        assert!(err.starts_with("'0[1-9' is not a valid pattern"), "{err}");
    }

    #[test]
    fn uris_that_can_be_called() {
        assert!(check_uri("sip:support@cc.example.com").is_ok());
        assert!(check_uri("sips:desk@10.0.0.1:5061").is_ok());
        assert!(check_uri("tel:+33123456789").is_ok());
        assert!(check_uri("mailto:a@b").is_err());
        assert!(check_uri("support").is_err());
        assert!(check_uri("sip:").is_err());
    }
}
