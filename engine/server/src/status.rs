//! What the running server reports about itself: counters for `/metrics` and the state of
//! its config for `/admin/status`.
//!
//! The engine loop writes, HTTP handlers read. Counters are atomics; the config state sits
//! behind a mutex that is only ever held to copy or replace it, never across an await.

use crate::clock::unix_seconds;
use ivr_engine::EndReason;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The outcome of one reload attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ReloadOutcome {
    /// The new config is valid and in use for new calls.
    Reloaded {
        /// How many menus it has.
        menus: usize,
    },
    /// The new config has errors; the running one stays.
    Invalid {
        /// Every error, as `file:line:column: path: message`.
        errors: Vec<String>,
    },
    /// There is no config file to reload (the embedded demo runs).
    NoFile,
}

/// The last reload, for `/admin/status`.
#[derive(Debug, Clone, Serialize)]
pub struct LastReload {
    /// When it finished (seconds since the Unix epoch).
    pub at: u64,
    /// What came of it.
    #[serde(flatten)]
    pub outcome: ReloadOutcome,
}

/// The config the server runs.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigState {
    /// The file, or `<embedded demo>`.
    pub source: String,
    /// Counts successful loads: 1 at start, +1 per successful reload.
    pub generation: u64,
    /// When the running config was loaded (seconds since the Unix epoch).
    pub loaded_at: u64,
    /// The last reload attempt, if any.
    pub last_reload: Option<LastReload>,
}

/// Shared between the engine loop and the HTTP handlers.
#[derive(Debug)]
pub struct Status {
    started: SystemTime,
    /// The live queue view the staff page and API read (see [`crate::desk`]).
    pub board: Arc<crate::desk::Board>,
    /// Every metric below, for the exposition.
    registry: Registry,
    /// How far from their time the loop sends RTP packets, either side (it writes,
    /// `/metrics` reads).
    pub lateness: Arc<crate::lateness::Lateness>,
    calls_active: Gauge<u64, AtomicU64>,
    shard_calls: Family<ShardLabel, Gauge<u64, AtomicU64>>,
    calls_total: Counter,
    ended: Family<ReasonLabel, Counter>,
    menu_entries: Family<MenuLabel, Counter>,
    menu_keys: Family<MenuKeyLabel, Counter>,
    menu_exits: Family<MenuExitLabel, Counter>,
    reloads: Outcomes,
    /// Callback requests handed to the store.
    pub callbacks: Outcomes,
    recordings_failed: Counter,
    recording_fsync: Histogram,
    sip_bans: Counter,
    sip_source_limit: Counter,
    sip_pending_evicted: Counter,
    connections_refused: Family<KindLabel, Counter>,
    signin_lockouts: Counter,
    agents_registered: Gauge,
    queue_waiting: Family<QueueLabel, Gauge>,
    agents: Family<StateLabel, Gauge>,
    register_auth_failures: Counter,
    sip_handoffs: Counter,
    sip_shard_full: Counter,
    /// Webhook delivery attempts.
    pub webhooks: Outcomes,
    /// E-mail delivery attempts.
    pub mails: Outcomes,
    last_reload_ok: Gauge,
    generation: Gauge,
    loaded_at: Gauge,
    config: Mutex<ConfigState>,
}

/// `{reason="..."}` on `ivr_calls_ended_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// `{shard="..."}` on `ivr_shard_calls_active`: an engine shard's number (0, 1, ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ShardLabel {
    shard: u32,
}

/// `{queue="..."}` on `ivr_queue_waiting`: a queue's name from the config.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct QueueLabel {
    queue: String,
}

/// `{state="..."}` on `ivr_agents`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

/// Agent states as `ivr_agents` labels them.
const AGENT_STATES: [&str; 6] = [
    "logged_out",
    "available",
    "ringing",
    "on_call",
    "wrap_up",
    "paused",
];

/// `{kind="..."}` on `ivr_connections_refused_total`: `sip_tcp` or `http`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// `{result="..."}` on the outcome counters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// `{menu="..."}`: an operator's menu name, so any text; the library escapes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MenuLabel {
    menu: String,
}

/// `{menu="...",key="..."}` on `ivr_menu_keys_total`: a menu's name from the config, and
/// one of [`KEY_LABELS`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MenuKeyLabel {
    menu: String,
    key: &'static str,
}

/// `{menu="...",reason="..."}` on `ivr_menu_exits_total`: one of [`EXIT_LABELS`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MenuExitLabel {
    menu: String,
    reason: &'static str,
}

/// The `key` label's values: the 16 DTMF keys, then what is not one key. Nothing a caller
/// sends can add a value (a label never copies the caller's text).
const KEY_LABELS: [&str; 20] = [
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "9",
    "*",
    "#",
    "A",
    "B",
    "C",
    "D",
    "extension",
    "entry",
    "invalid",
    "timeout",
];

/// The `reason` label's values: where the call left the menus, or how it ended in them.
const EXIT_LABELS: [&str; 7] = [
    "voicemail",
    "queue",
    "transfer",
    "callback",
    "hangup",
    "caller_hung_up",
    "ended",
];

/// The fixed label a call record's value stands for, if any.
fn fixed(labels: &'static [&'static str], value: &str) -> Option<&'static str> {
    labels.iter().copied().find(|l| *l == value)
}

/// Successes and failures of one kind of work: a counter with a pair of `{result="..."}`
/// samples, both shown from the start.
#[derive(Debug)]
pub struct Outcomes {
    counts: Family<ResultLabel, Counter>,
    ok: &'static str,
    failed: &'static str,
}

impl Outcomes {
    /// Results named `ok` and `failed`, registered as `name` (without `_total`).
    fn register(
        registry: &mut Registry,
        name: &str,
        help: &str,
        ok: &'static str,
        failed: &'static str,
    ) -> Outcomes {
        let counts = Family::<ResultLabel, Counter>::default();
        for result in [ok, failed] {
            let _ = counts.get_or_create(&ResultLabel { result });
        }
        registry.register(name, help, counts.clone());
        Outcomes { counts, ok, failed }
    }

    /// One more success (`true`) or failure.
    pub fn record(&self, ok: bool) {
        let result = if ok { self.ok } else { self.failed };
        self.counts.get_or_create(&ResultLabel { result }).inc();
    }
}

impl Status {
    /// A fresh status for a server that has just loaded its config from `source`.
    ///
    /// Metric names are today's: the library adds `_total` to counters, so they are
    /// registered without it; it also ends each help text with a period.
    pub fn new(source: String, now: SystemTime) -> Status {
        let mut registry = Registry::default();
        let lateness = crate::lateness::LatenessMetric::default();
        registry.register(
            "ivr_rtp_send_lateness_seconds",
            "How far from their 20 ms schedule RTP packets left: late, or early by up to the 0.5 ms send lead",
            lateness.clone(),
        );
        let calls_active = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "ivr_calls_active",
            "Calls in progress",
            calls_active.clone(),
        );
        let shard_calls = Family::<ShardLabel, Gauge<u64, AtomicU64>>::default();
        registry.register(
            "ivr_shard_calls_active",
            "Calls in progress on each engine shard (they add up to ivr_calls_active): how evenly the Call-IDs spread the calls over the cores",
            shard_calls.clone(),
        );
        let calls_total = Counter::default();
        registry.register(
            "ivr_calls",
            "Calls started since the server started",
            calls_total.clone(),
        );
        let ended = Family::<ReasonLabel, Counter>::default();
        for reason in EndReason::ALL.map(EndReason::as_str) {
            let _ = ended.get_or_create(&ReasonLabel { reason });
        }
        registry.register("ivr_calls_ended", "Calls ended, by reason", ended.clone());
        let menu_entries = Family::<MenuLabel, Counter>::default();
        registry.register(
            "ivr_menu_entries",
            "Times a caller entered a menu, by menu name (from the running config and any earlier one)",
            menu_entries.clone(),
        );
        let menu_keys = Family::<MenuKeyLabel, Counter>::default();
        registry.register(
            "ivr_menu_keys",
            "What callers did in each menu (from call records): a key, an extension code, an entry, an invalid key, a timeout",
            menu_keys.clone(),
        );
        let menu_exits = Family::<MenuExitLabel, Counter>::default();
        registry.register(
            "ivr_menu_exits",
            "Calls by the menu they were in last and how they left it (from call records)",
            menu_exits.clone(),
        );
        let callbacks = Outcomes::register(
            &mut registry,
            "ivr_callback_requests",
            "Callback requests handed to the store, by result",
            "stored",
            "failed",
        );
        let webhooks = Outcomes::register(
            &mut registry,
            "ivr_webhook_deliveries",
            "Webhook delivery attempts, by result (failed ones are retried from the outbox)",
            "delivered",
            "failed",
        );
        let mails = Outcomes::register(
            &mut registry,
            "ivr_mail_deliveries",
            "Callback e-mail attempts, by result (failed ones are retried from the outbox)",
            "sent",
            "failed",
        );
        let recordings_failed = Counter::default();
        registry.register(
            "ivr_recording_failures",
            "Recordings that could not be written (disk full, unwritable folder)",
            recordings_failed.clone(),
        );
        // 0.25 ms to about 4 s.
        let recording_fsync = Histogram::new(exponential_buckets(0.000_25, 2.0, 15));
        registry.register(
            "ivr_recording_fsync_seconds",
            "Time the voicemail writer spent in fsync per kept recording, message or survey comment (its audio, its request or call-record file and the folder)",
            recording_fsync.clone(),
        );
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let sip_bans = counter(
            &mut registry,
            "ivr_sip_source_bans",
            "SIP sources that went over their request rate and were ignored for a while",
        );
        let sip_source_limit = counter(
            &mut registry,
            "ivr_sip_source_call_limit_refusals",
            "INVITEs refused because their source had as many calls as one source may have",
        );
        let sip_pending_evicted = counter(
            &mut registry,
            "ivr_sip_pending_calls_dropped",
            "Calls dropped while waiting for their ACK, to make room for new INVITEs",
        );
        let connections_refused = Family::<KindLabel, Counter>::default();
        for kind in ["sip_tcp", "http"] {
            let _ = connections_refused.get_or_create(&KindLabel { kind });
        }
        registry.register(
            "ivr_connections_refused",
            "Connections refused at a connection cap (no silent one to close), by kind",
            connections_refused.clone(),
        );
        let signin_lockouts = counter(
            &mut registry,
            "ivr_signin_lockouts",
            "Staff sign-in attempts refused because the user or address used up its guesses",
        );
        let register_auth_failures = counter(
            &mut registry,
            "ivr_register_auth_failures",
            "REGISTERs refused for a wrong password or an unknown user",
        );
        let sip_handoffs = counter(
            &mut registry,
            "ivr_sip_handoffs",
            "SIP messages a shard handed to the shard that owns their Call-ID (the router sent them astray: should stay 0)",
        );
        let sip_shard_full = counter(
            &mut registry,
            "ivr_sip_shard_full_drops",
            "SIP datagrams dropped because their shard's input was full (that shard is behind)",
        );
        let reloads = Outcomes::register(
            &mut registry,
            "ivr_config_reloads",
            "Config reload attempts, by result",
            "ok",
            "invalid",
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str, value: i64| {
            let g = Gauge::default();
            g.set(value);
            registry.register(name, help, g.clone());
            g
        };
        let last_reload_ok = gauge(
            &mut registry,
            "ivr_config_last_reload_successful",
            "0 when the last reload was refused (the previous config still runs), else 1",
            1,
        );
        let generation = gauge(
            &mut registry,
            "ivr_config_generation",
            "How many times a config was loaded (1 at start)",
            1,
        );
        let loaded_at = gauge(
            &mut registry,
            "ivr_config_loaded_timestamp_seconds",
            "When the running config was loaded",
            unix_seconds(now) as i64,
        );
        let agents_registered = gauge(
            &mut registry,
            "ivr_agents_registered",
            "Agents with at least one phone registered",
            0,
        );
        let queue_waiting = Family::<QueueLabel, Gauge>::default();
        registry.register(
            "ivr_queue_waiting",
            "Callers waiting in each queue",
            queue_waiting.clone(),
        );
        let agents = Family::<StateLabel, Gauge>::default();
        for state in AGENT_STATES {
            let _ = agents.get_or_create(&StateLabel { state });
        }
        registry.register("ivr_agents", "Agents in each state", agents.clone());
        Status {
            lateness: lateness.0,
            started: now,
            board: Arc::default(),
            queue_waiting,
            agents,
            registry,
            calls_active,
            shard_calls,
            calls_total,
            ended,
            menu_entries,
            menu_keys,
            menu_exits,
            reloads,
            callbacks,
            recordings_failed,
            recording_fsync,
            sip_bans,
            sip_source_limit,
            sip_pending_evicted,
            connections_refused,
            signin_lockouts,
            agents_registered,
            register_auth_failures,
            sip_handoffs,
            sip_shard_full,
            webhooks,
            mails,
            last_reload_ok,
            generation,
            loaded_at,
            config: Mutex::new(ConfigState {
                source,
                generation: 1,
                loaded_at: unix_seconds(now),
                last_reload: None,
            }),
        }
    }

    /// A call started on engine shard `shard` (0 with one loop).
    pub fn call_started(&self, shard: usize) {
        self.calls_total.inc();
        self.calls_active.inc();
        self.shard_calls.get_or_create(&shard_label(shard)).inc();
    }

    /// A call on engine shard `shard` ended.
    pub fn call_ended(&self, reason: EndReason, shard: usize) {
        // Saturating: a call that ended twice must not wrap the gauges.
        let down = |g: &Gauge<u64, AtomicU64>| {
            let _ = g
                .inner()
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    Some(n.saturating_sub(1))
                });
        };
        down(&self.calls_active);
        down(&self.shard_calls.get_or_create(&shard_label(shard)));
        let reason = reason.as_str();
        self.ended.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// A caller entered the menu named `menu`.
    pub fn menu_entered(&self, menu: &str) {
        self.menu_entries
            .get_or_create(&MenuLabel {
                menu: menu.to_string(),
            })
            .inc();
    }

    /// A call's record: count what the caller did in each menu, and the menu it left from.
    pub fn call_record(&self, record: &ivr_voicemail::calls::CallRecord) {
        for step in &record.steps {
            let key = match step.outcome.as_str() {
                "key" => step
                    .key
                    .as_deref()
                    .and_then(|k| fixed(&KEY_LABELS[..16], k)),
                other => fixed(&KEY_LABELS[16..], other),
            };
            if let Some(key) = key {
                self.menu_keys
                    .get_or_create(&MenuKeyLabel {
                        menu: step.menu.clone(),
                        key,
                    })
                    .inc();
            }
        }
        let Some(last) = record.steps.last() else {
            return;
        };
        let reason = match &record.exit {
            Some(kind) => fixed(&EXIT_LABELS[..5], kind),
            None if matches!(record.end_reason.as_str(), "caller_hung_up" | "cancelled") => {
                Some("caller_hung_up")
            }
            None => Some("ended"),
        };
        if let Some(reason) = reason {
            self.menu_exits
                .get_or_create(&MenuExitLabel {
                    menu: last.menu.clone(),
                    reason,
                })
                .inc();
        }
    }

    /// Admission banned a source, refused a call or dropped one waiting for its ACK.
    pub fn admission(&self, e: &ivr_engine::admission::AdmissionEvent) {
        use ivr_engine::admission::AdmissionEvent;
        match e {
            AdmissionEvent::Banned { .. } => self.sip_bans.inc(),
            AdmissionEvent::SourceCallLimit { .. } => self.sip_source_limit.inc(),
            AdmissionEvent::PendingEvicted { .. } => self.sip_pending_evicted.inc(),
        };
    }

    /// Agents with a phone registered now.
    pub fn agents_registered(&self, n: usize) {
        self.agents_registered
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The queues' waiting callers and the agents' states, after a queue event.
    pub fn queues(&self, waiting: &[(String, usize)], agents: &[(String, ivr_queues::AgentState)]) {
        for (queue, n) in waiting {
            self.queue_waiting
                .get_or_create(&QueueLabel {
                    queue: queue.clone(),
                })
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        for state in AGENT_STATES {
            let n = agents
                .iter()
                .filter(|(_, s)| crate::queue_log::state_name(s) == state)
                .count();
            self.agents
                .get_or_create(&StateLabel { state })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// A REGISTER failed its digest authentication.
    pub fn auth_failed(&self) {
        self.register_auth_failures.inc();
    }

    /// A shard handed a SIP message to the shard that owns it.
    pub fn sip_handoff(&self) {
        self.sip_handoffs.inc();
    }

    /// A SIP datagram was dropped: its shard's input was full.
    pub fn sip_shard_full(&self) {
        self.sip_shard_full.inc();
    }

    /// The counter of connections refused at a cap, for `kind` (`sip_tcp` or `http`).
    pub fn connections_refused(&self, kind: &'static str) -> Counter {
        self.connections_refused
            .get_or_create(&KindLabel { kind })
            .clone()
    }

    /// The counter of sign-in attempts refused by a lockout.
    pub fn signin_lockouts(&self) -> Counter {
        self.signin_lockouts.clone()
    }

    /// The histogram of each kept recording's time in fsync (the voicemail writer observes
    /// it from its thread).
    pub fn recording_fsync(&self) -> Histogram {
        self.recording_fsync.clone()
    }

    /// A recording could not be written.
    pub fn recording_failed(&self) {
        self.recordings_failed.inc();
    }

    /// Calls in progress.
    pub fn calls_active(&self) -> u64 {
        self.calls_active.get()
    }

    /// A reload finished at `now`.
    pub fn reloaded(&self, outcome: &ReloadOutcome, now: SystemTime) {
        let mut c = self.config.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            ReloadOutcome::Reloaded { .. } => {
                self.reloads.record(true);
                c.generation += 1;
                c.loaded_at = unix_seconds(now);
                self.last_reload_ok.set(1);
                self.generation.set(c.generation as i64);
                self.loaded_at.set(c.loaded_at as i64);
            }
            ReloadOutcome::Invalid { .. } => {
                self.reloads.record(false);
                self.last_reload_ok.set(0);
            }
            ReloadOutcome::NoFile => return,
        }
        c.last_reload = Some(LastReload {
            at: unix_seconds(now),
            outcome: outcome.clone(),
        });
    }

    /// A copy of the config state.
    pub fn config(&self) -> ConfigState {
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Seconds since the server started.
    pub fn uptime(&self, now: SystemTime) -> u64 {
        now.duration_since(self.started)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    /// The OpenMetrics text exposition of every metric (which Prometheus reads), written
    /// and escaped by `prometheus-client`.
    pub fn prometheus(&self) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail, and the registry's metrics encode themselves.
        if let Err(e) = encode(&mut s, &self.registry) {
            tracing::error!(%e, "encoding the metrics failed");
        }
        s
    }
}

/// The label of shard `shard` (at most 256 shards).
fn shard_label(shard: usize) -> ShardLabel {
    ShardLabel {
        shard: u32::try_from(shard).unwrap_or(u32::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_reloads_show_in_the_exposition() {
        let t0 = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let s = Status::new("menus.yaml".into(), t0);
        s.call_started(0);
        s.call_started(1);
        s.call_ended(EndReason::CallerHungUp, 0);
        s.reloaded(
            &ReloadOutcome::Invalid {
                errors: vec!["menus.yaml:1:8: entry: unknown menu".into()],
            },
            t0,
        );
        s.menu_entered("café \"main\" \\ 1\nnext line");
        s.callbacks.record(true);
        let text = s.prometheus();
        for line in [
            "ivr_calls_active 1",
            "ivr_shard_calls_active{shard=\"0\"} 0",
            "ivr_shard_calls_active{shard=\"1\"} 1",
            "ivr_calls_total 2",
            "ivr_calls_ended_total{reason=\"caller_hung_up\"} 1",
            "ivr_calls_ended_total{reason=\"service_unavailable\"} 0",
            "ivr_config_reloads_total{result=\"invalid\"} 1",
            "ivr_callback_requests_total{result=\"stored\"} 1",
            "ivr_callback_requests_total{result=\"failed\"} 0",
            "ivr_recording_fsync_seconds_count 0",
            "ivr_config_last_reload_successful 0",
            "ivr_config_generation 1",
            "ivr_config_loaded_timestamp_seconds 1800000000",
            // Quote, backslash and line break escaped (OpenMetrics §ABNF `escaped-string`).
            "ivr_menu_entries_total{menu=\"café \\\"main\\\" \\\\ 1\\nnext line\"} 1",
            "# HELP ivr_calls Calls started since the server started.",
            "# TYPE ivr_calls counter",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        s.reloaded(&ReloadOutcome::Reloaded { menus: 3 }, t0);
        let text = s.prometheus();
        assert!(text.contains("ivr_config_last_reload_successful 1\n"));
        assert!(text.contains("ivr_config_generation 2\n"));
        // Every sample line is "name{labels} value" or "name value": a whole number, but
        // for the sums of histograms of seconds.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = l.rsplit_once(' ').unwrap();
            let seconds = l.starts_with("ivr_rtp_send_lateness_seconds_sum")
                || l.starts_with("ivr_recording_fsync_seconds");
            assert!(
                v.parse::<u64>().is_ok() || seconds && v.parse::<f64>().is_ok(),
                "{l}"
            );
        }
        s.call_ended(EndReason::Cancelled, 0);
        s.call_ended(EndReason::Cancelled, 0);
        assert_eq!(
            s.calls_active(),
            0,
            "a call ended twice does not wrap the gauge"
        );
    }

    /// Menu keys and exits come from call records; only fixed label values are made, so a
    /// record with anything else (a stored row edited by hand, a future outcome) adds none.
    #[test]
    fn menu_keys_and_exits_have_bounded_labels() {
        use ivr_voicemail::calls::{CallRecord, CallStep};
        let s = Status::new("menus.yaml".into(), SystemTime::UNIX_EPOCH);
        let step = |menu: &str, outcome: &str, key: Option<&str>| CallStep {
            menu: menu.into(),
            outcome: outcome.into(),
            key: key.map(str::to_string),
            prompt: "full".into(),
            at_ms: 0,
        };
        let mut r = CallRecord {
            steps: vec![
                step("main", "key", Some("1")),
                step("sales", "invalid", Some("7")),
                step("sales", "timeout", None),
                step("sales", "key", Some("\u{1b}[2J")),
                step("sales", "extension", Some("301")),
                step("sales", "key", Some("*")),
                step("main", "key", Some("2")),
            ],
            exit: Some("voicemail".into()),
            ..Default::default()
        };
        s.call_record(&r);
        r.steps = vec![step("main", "hangup", None)];
        r.exit = None;
        r.end_reason = "caller_hung_up".into();
        s.call_record(&r);
        r.exit = Some("somewhere else".into());
        s.call_record(&r);
        let text = s.prometheus();
        let mut samples: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.starts_with("ivr_menu_keys_total") || l.starts_with("ivr_menu_exits_total")
            })
            .collect();
        samples.sort();
        assert_eq!(
            samples,
            [
                "ivr_menu_exits_total{menu=\"main\",reason=\"caller_hung_up\"} 1",
                "ivr_menu_exits_total{menu=\"main\",reason=\"voicemail\"} 1",
                "ivr_menu_keys_total{menu=\"main\",key=\"1\"} 1",
                "ivr_menu_keys_total{menu=\"main\",key=\"2\"} 1",
                "ivr_menu_keys_total{menu=\"sales\",key=\"*\"} 1",
                "ivr_menu_keys_total{menu=\"sales\",key=\"extension\"} 1",
                "ivr_menu_keys_total{menu=\"sales\",key=\"invalid\"} 1",
                "ivr_menu_keys_total{menu=\"sales\",key=\"timeout\"} 1",
            ]
        );
    }
}

#[cfg(test)]
#[path = "grafana_tests.rs"]
mod grafana_tests;
