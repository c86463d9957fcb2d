//! Call records (issue #12): what each call did, kept beside the call while it runs and
//! handed to the driver as [`Event::CallRecord`] when it ends.
//!
//! The menu runtime records the steps where it decides ([`ivr_menus::path`]); the engine
//! takes them when the call leaves the menus (a hand-off) and when it ends, names them
//! (menu names, wall-clock times) and adds what only it knows: when the call started and
//! was answered, where it left the menus, the queue it waited in and the agent who
//! answered, and why it ended. Memory is bounded per call: at most
//! [`ivr_menus::path::MAX_STEPS`] steps, the rest only counted as truncated.

use crate::call::{App, Call, CallHandle};
use crate::engine::Engine;
use crate::io::{EndReason, Event};
use ivr_menus::MenuRun;
use ivr_menus::path::{MAX_STEPS, StepEnd};
use ivr_voicemail::calls::{CallAnswer, CallRecord, CallStep};
use std::time::{Instant, SystemTime};

/// Most bytes kept of each text a caller chose (Call-ID, caller and called numbers): a
/// record waits in memory for the store and stays there for the retention time, so what
/// the caller sends (up to a 64 kB message) must not make it large. Real Call-IDs and
/// numbers are far shorter.
pub const MAX_TEXT: usize = 256;

/// `text` as a record keeps it: at most [`MAX_TEXT`] bytes (cut at a character boundary),
/// control characters (a `%00` or `%1b` the URI decoding let through) replaced by U+FFFD.
/// A NUL in particular would fail the whole batch on PostgreSQL, whose text refuses it.
fn kept(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_TEXT));
    for c in text.chars() {
        let c = if c.is_control() { '\u{fffd}' } else { c };
        if out.len() + c.len_utf8() > MAX_TEXT {
            break;
        }
        out.push(c);
    }
    out
}

/// What a call's record knows before the call ends.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// The record so far (times and end reason are filled in at the end).
    record: CallRecord,
    /// Whether the call gets a record (an agent's feature call or a queued callback's own
    /// call does not: they are not callers).
    recorded: bool,
    /// When the caller joined its queue (its wait, if it hangs up waiting, runs to the end).
    queue_entered: Option<Instant>,
}

impl Trace {
    /// A caller's call: its numbers and the menu it starts in.
    pub fn caller(
        call_id: &str,
        caller: Option<String>,
        called: Option<String>,
        entry: &str,
    ) -> Trace {
        Trace {
            record: CallRecord {
                call_id: kept(call_id),
                caller: caller.as_deref().map(kept),
                called: called.as_deref().map(kept),
                entry: Some(entry.to_string()),
                ..CallRecord::default()
            },
            recorded: true,
            queue_entered: None,
        }
    }

    /// A call that gets no record.
    pub fn none() -> Trace {
        Trace::default()
    }

    /// Append the steps `run` recorded so far, closing an open one with `end`.
    fn absorb(&mut self, run: &mut MenuRun, end: Option<StepEnd>, wall: &Wall) {
        let path = run.path_mut();
        if let Some(end) = end {
            path.close(end);
        }
        let truncated = path.truncated();
        let steps = path.take();
        let menus = run.menus();
        let kept = &mut self.record.steps;
        for s in steps {
            if kept.len() >= MAX_STEPS {
                self.record.steps_truncated = true;
                break;
            }
            kept.push(CallStep {
                menu: menus.menu(s.menu).name.clone(),
                at_ms: wall.millis(s.at),
                outcome: s.end.as_ref().map_or("open", StepEnd::outcome).to_string(),
                key: s.end.as_ref().and_then(StepEnd::key),
                prompt: s.heard.as_str().to_string(),
            });
        }
        self.record.steps_truncated |= truncated;
    }
}

/// The engine's wall clock: the last [`crate::Input::WallClock`] and when it came.
pub(crate) struct Wall(Option<(Instant, SystemTime)>);

impl Wall {
    /// Unix milliseconds at `at` (0 without a wall clock).
    pub(crate) fn millis(&self, at: Instant) -> i64 {
        let Some((anchor, wall)) = self.0 else {
            return 0;
        };
        let t = if at >= anchor {
            wall.checked_add(at - anchor)
        } else {
            wall.checked_sub(anchor - at)
        };
        t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// One survey answer as the record keeps it; `comment` is the kept comment's store key,
/// linked to the answer that recorded it.
pub(crate) fn call_answer(
    survey: &str,
    a: &ivr_menus::survey::Answer,
    comment: Option<&str>,
) -> CallAnswer {
    CallAnswer {
        survey: survey.to_string(),
        question: a.question.clone(),
        answer: a.key.map(|k| k.as_char().to_string()),
        outcome: a.outcome.as_str().to_string(),
        recording: comment.filter(|_| a.recorded).map(str::to_string),
    }
}

/// The run a call's application carries, if it still has one.
fn run_of(app: &mut App) -> Option<&mut MenuRun> {
    match app {
        App::Menu(run) => Some(run),
        App::Transfer(t) => Some(&mut t.run),
        App::Queued(q) => Some(&mut q.run),
        App::Survey(s) => Some(&mut s.run),
        App::Deposit(_) | App::Feature(_) => None,
    }
}

impl Engine {
    pub(crate) fn wall(&self) -> Wall {
        Wall(self.wall_anchor)
    }

    /// The menus handed the call on (`kind`: `voicemail`, `queue`, `transfer`; `to`: the
    /// mailbox, queue or destination), or hung up (`hangup`): the steps so far go into
    /// its record.
    pub(crate) fn cdr_left_menus(&mut self, handle: CallHandle, kind: &str, to: Option<String>) {
        let wall = self.wall();
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if let Some(run) = run_of(&mut call.app) {
            call.trace.absorb(run, None, &wall);
        }
        call.trace.record.exit = Some(kind.to_string());
        call.trace.record.exit_to = to;
    }

    /// A queued callback request (`id`) of `queue` was taken in the place of the caller on
    /// `handle`: the call leaves by exit `callback`, and its record names the request.
    /// (Here, not on the queue's `CallbackRequested` event: that event names the request,
    /// and reaches the engine's records with no call.)
    pub(crate) fn cdr_callback(&mut self, handle: CallHandle, queue: &str, id: &str) {
        if let Some(call) = self.calls.get_mut(&handle) {
            let r = &mut call.trace.record;
            r.exit = Some("callback".to_string());
            r.exit_to = Some(queue.to_string());
            r.request_id = Some(id.to_string());
        }
    }

    /// A queue event about a caller: its queue, its wait, the agent who answered.
    pub(crate) fn cdr_queue_event(
        &mut self,
        call: ivr_queues::CallRef,
        at: Instant,
        event: &ivr_queues::QueueEvent,
    ) {
        use ivr_queues::QueueEvent as Q;
        let Some(call) = self.calls.get_mut(&CallHandle(call.0)) else {
            return;
        };
        let r = &mut call.trace.record;
        let ms = |d: &std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        match event {
            Q::Enter { queue, .. } => {
                call.trace.queue_entered = Some(at);
                r.queue = Some(queue.to_string());
                r.queue_wait_ms = None;
                r.agent = None;
            }
            Q::Answer {
                agent, wait, queue, ..
            } => {
                r.queue = Some(queue.to_string());
                r.agent = Some(agent.0.clone());
                r.queue_wait_ms = Some(ms(wait));
            }
            Q::Abandon { wait, .. }
            | Q::ExitKey { wait, .. }
            | Q::Timeout { wait, .. }
            | Q::LeaveEmpty { wait, .. } => r.queue_wait_ms = Some(ms(wait)),
            _ => {}
        }
    }

    /// The record of `call` as known at `now`, with `answers`: what is kept beside a
    /// survey comment while it records, for crash recovery (its end reason `recovered`:
    /// the end was not seen).
    pub(crate) fn cdr_snapshot(
        &self,
        call: &Call,
        now: Instant,
        answers: Vec<CallAnswer>,
    ) -> ivr_voicemail::calls::CallRecord {
        let wall = self.wall();
        let mut record = call.trace.record.clone();
        record.started_ms = wall.millis(call.created);
        record.answered_ms = call.connected.map(|c| wall.millis(c));
        record.ended_ms = wall.millis(now).max(record.started_ms);
        record.duration_ms = record.ended_ms - record.started_ms;
        record.end_reason = "recovered".into();
        record.language = call.app.language_name();
        record.answers = answers;
        record
    }

    /// The record of `call`, which has just ended at `now` for `reason` (`None` for a call
    /// that gets no record).
    pub(crate) fn cdr_finish(
        &self,
        call: &mut Call,
        now: Instant,
        reason: EndReason,
    ) -> Option<Event> {
        if !call.trace.recorded {
            return None;
        }
        let wall = self.wall();
        let end = match reason {
            EndReason::CallerHungUp | EndReason::Cancelled => StepEnd::HungUp,
            _ => StepEnd::Ended,
        };
        let language = call.app.language_name();
        if let Some(run) = run_of(&mut call.app)
            && run.handed_off().is_none()
        {
            call.trace.absorb(run, Some(end), &wall);
            // Back in the menus after a failed transfer or a queue's way out, and still in
            // them at the end: the earlier exit is not where the call ended.
            if !run.is_done() {
                call.trace.record.exit = None;
                call.trace.record.exit_to = None;
            }
        }
        if let App::Survey(s) = &mut call.app {
            let survey = s.survey.name().to_string();
            let comment = s.kept_comment().map(str::to_string);
            call.trace.record.answers = s
                .survey
                .finish()
                .iter()
                .map(|a| call_answer(&survey, a, comment.as_deref()))
                .collect();
        }
        // The request the caller left in a mailbox, if the deposit handed one to the store.
        if let App::Deposit(d) = &call.app
            && d.submitted.is_some()
        {
            call.trace.record.request_id = d.submitted.clone();
        }
        let mut record = std::mem::take(&mut call.trace.record);
        record.started_ms = wall.millis(call.created);
        record.answered_ms = call.connected.map(|c| wall.millis(c));
        record.ended_ms = wall.millis(now).max(record.started_ms);
        record.duration_ms = record.ended_ms - record.started_ms;
        record.end_reason = reason.as_str().to_string();
        record.language = language;
        // A caller who hung up while waiting: its queue event comes once the call is gone.
        if let Some(entered) = call.trace.queue_entered
            && record.queue_wait_ms.is_none()
        {
            record.queue_wait_ms = Some(wall.millis(now) - wall.millis(entered));
        }
        Some(Event::CallRecord(Box::new(record)))
    }
}
