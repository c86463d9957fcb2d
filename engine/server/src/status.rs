//! What the running server reports about itself: counters for `/metrics` and the state of
//! its config for `/admin/status`.
//!
//! The engine loop writes, HTTP handlers read. Counters are atomics; the config state sits
//! behind a mutex that is only ever held to copy or replace it, never across an await.

use crate::clock::unix_seconds;
use ivr_engine::EndReason;
use serde::Serialize;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// Why calls ended, as `/metrics` labels them, in the order it lists them.
const END_REASONS: [&str; 10] = [
    "caller_hung_up",
    "cancelled",
    "menu_hangup",
    "media_timeout",
    "hold_timeout",
    "ack_timeout",
    "shutdown",
    "media_unavailable",
    "bad_answer",
    "service_unavailable",
];

/// The index of a reason in [`END_REASONS`] (exhaustive: a new reason must be named).
fn reason_index(r: EndReason) -> usize {
    match r {
        EndReason::CallerHungUp => 0,
        EndReason::Cancelled => 1,
        EndReason::MenuHangup => 2,
        EndReason::MediaTimeout => 3,
        EndReason::HoldTimeout => 4,
        EndReason::AckTimeout => 5,
        EndReason::Shutdown => 6,
        EndReason::MediaUnavailable => 7,
        EndReason::BadAnswer => 8,
        EndReason::Unavailable => 9,
    }
}

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
    calls_active: AtomicU64,
    calls_total: AtomicU64,
    ended: [AtomicU64; END_REASONS.len()],
    reloads: Outcomes,
    /// Callback requests handed to the store.
    pub callbacks: Outcomes,
    recordings_failed: AtomicU64,
    /// Webhook delivery attempts.
    pub webhooks: Outcomes,
    /// E-mail delivery attempts.
    pub mails: Outcomes,
    config: Mutex<ConfigState>,
}

/// Successes and failures of one kind of work: a pair of `{result="..."}` samples.
#[derive(Debug, Default)]
pub struct Outcomes {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl Outcomes {
    /// One more success (`true`) or failure.
    pub fn record(&self, ok: bool) {
        let c = if ok { &self.ok } else { &self.failed };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The two samples, labelled `result="<ok>"` and `result="<failed>"`.
    fn samples(&self, ok: &str, failed: &str) -> [(String, u64); 2] {
        [
            (
                format!("{{result=\"{ok}\"}}"),
                self.ok.load(Ordering::Relaxed),
            ),
            (
                format!("{{result=\"{failed}\"}}"),
                self.failed.load(Ordering::Relaxed),
            ),
        ]
    }
}

impl Status {
    /// A fresh status for a server that has just loaded its config from `source`.
    pub fn new(source: String, now: SystemTime) -> Status {
        Status {
            started: now,
            calls_active: AtomicU64::new(0),
            calls_total: AtomicU64::new(0),
            ended: Default::default(),
            reloads: Outcomes::default(),
            callbacks: Outcomes::default(),
            recordings_failed: AtomicU64::new(0),
            webhooks: Outcomes::default(),
            mails: Outcomes::default(),
            config: Mutex::new(ConfigState {
                source,
                generation: 1,
                loaded_at: unix_seconds(now),
                last_reload: None,
            }),
        }
    }

    /// A call started.
    pub fn call_started(&self) {
        self.calls_total.fetch_add(1, Ordering::Relaxed);
        self.calls_active.fetch_add(1, Ordering::Relaxed);
    }

    /// A call ended.
    pub fn call_ended(&self, reason: EndReason) {
        // Saturating: a call that ended twice must not wrap the gauge.
        let _ = self
            .calls_active
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            });
        self.ended[reason_index(reason)].fetch_add(1, Ordering::Relaxed);
    }

    /// A recording could not be written.
    pub fn recording_failed(&self) {
        self.recordings_failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Calls in progress.
    pub fn calls_active(&self) -> u64 {
        self.calls_active.load(Ordering::Relaxed)
    }

    /// A reload finished at `now`.
    pub fn reloaded(&self, outcome: &ReloadOutcome, now: SystemTime) {
        let mut c = self.config.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            ReloadOutcome::Reloaded { .. } => {
                self.reloads.record(true);
                c.generation += 1;
                c.loaded_at = unix_seconds(now);
            }
            ReloadOutcome::Invalid { .. } => {
                self.reloads.record(false);
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

    /// The Prometheus text exposition (format 0.0.4) of every metric.
    pub fn prometheus(&self) -> String {
        let mut s = String::new();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let c = self.config();
        let mut metric = |name: &str, kind: &str, help: &str, lines: &[(String, u64)]| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in lines {
                let _ = writeln!(s, "{name}{labels} {v}");
            }
        };
        metric(
            "ivr_calls_active",
            "gauge",
            "Calls in progress.",
            &[(String::new(), load(&self.calls_active))],
        );
        metric(
            "ivr_calls_total",
            "counter",
            "Calls started since the server started.",
            &[(String::new(), load(&self.calls_total))],
        );
        let ended: Vec<(String, u64)> = END_REASONS
            .iter()
            .zip(&self.ended)
            .map(|(name, n)| (format!("{{reason=\"{name}\"}}"), load(n)))
            .collect();
        metric(
            "ivr_calls_ended_total",
            "counter",
            "Calls ended, by reason.",
            &ended,
        );
        metric(
            "ivr_callback_requests_total",
            "counter",
            "Callback requests handed to the store, by result.",
            &self.callbacks.samples("stored", "failed"),
        );
        metric(
            "ivr_webhook_deliveries_total",
            "counter",
            "Webhook delivery attempts, by result (failed ones are retried from the outbox).",
            &self.webhooks.samples("delivered", "failed"),
        );
        metric(
            "ivr_mail_deliveries_total",
            "counter",
            "Callback e-mail attempts, by result (failed ones are retried from the outbox).",
            &self.mails.samples("sent", "failed"),
        );
        metric(
            "ivr_recording_failures_total",
            "counter",
            "Recordings that could not be written (disk full, unwritable folder).",
            &[(String::new(), load(&self.recordings_failed))],
        );
        metric(
            "ivr_config_reloads_total",
            "counter",
            "Config reload attempts, by result.",
            &self.reloads.samples("ok", "invalid"),
        );
        let last_ok = match &c.last_reload {
            Some(LastReload {
                outcome: ReloadOutcome::Invalid { .. },
                ..
            }) => 0,
            _ => 1,
        };
        metric(
            "ivr_config_last_reload_successful",
            "gauge",
            "0 when the last reload was refused (the previous config still runs), else 1.",
            &[(String::new(), last_ok)],
        );
        metric(
            "ivr_config_generation",
            "gauge",
            "How many times a config was loaded (1 at start).",
            &[(String::new(), c.generation)],
        );
        metric(
            "ivr_config_loaded_timestamp_seconds",
            "gauge",
            "When the running config was loaded.",
            &[(String::new(), c.loaded_at)],
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_reloads_show_in_the_exposition() {
        let t0 = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let s = Status::new("menus.yaml".into(), t0);
        s.call_started();
        s.call_started();
        s.call_ended(EndReason::CallerHungUp);
        s.reloaded(
            &ReloadOutcome::Invalid {
                errors: vec!["menus.yaml:1:8: entry: unknown menu".into()],
            },
            t0,
        );
        let text = s.prometheus();
        for line in [
            "ivr_calls_active 1",
            "ivr_calls_total 2",
            "ivr_calls_ended_total{reason=\"caller_hung_up\"} 1",
            "ivr_config_reloads_total{result=\"invalid\"} 1",
            "ivr_config_last_reload_successful 0",
            "ivr_config_generation 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        s.reloaded(&ReloadOutcome::Reloaded { menus: 3 }, t0);
        let text = s.prometheus();
        assert!(text.contains("ivr_config_last_reload_successful 1\n"));
        assert!(text.contains("ivr_config_generation 2\n"));
        // Every sample line is "name{labels} value" or "name value".
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = l.rsplit_once(' ').unwrap();
            assert!(v.parse::<u64>().is_ok(), "{l}");
        }
    }
}
