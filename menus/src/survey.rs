//! Satisfaction surveys (issue #12): a short questionnaire a caller answers with one key
//! per question after the agent or the destination of a bridged call hung up; one question
//! may instead record a spoken comment (`record:`), kept like a voicemail message.
//!
//! A survey is defined under `surveys:` and asked for on a `queue:` or `transfer:` action
//! (`queue: { name: support, survey: after_call }`). This module holds its model, its
//! compilation, and [`SurveyRun`], the sans-IO state machine that asks the questions: fed
//! with the caller's keys, the end of each prompt and the clock, it says what to play and
//! when to hang up, and keeps the answers for the call record.

use crate::error::{ErrorKind, Loc};
use crate::model::{Action, Menus, PromptId};
use crate::yaml::{Node, Value, Walker, join};
use ivr_audio::Digit;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A survey, by index into [`Menus::survey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SurveyId(pub usize);

/// The fields of a survey.
pub(crate) const SURVEY_FIELDS: &[&str] = &["questions", "thanks", "invalid", "retries"];
/// The fields of a question.
pub(crate) const QUESTION_FIELDS: &[&str] = &["name", "prompt", "keys", "timeout", "record"];
/// The fields of a recorded question's `record:`.
pub(crate) const RECORD_FIELDS: &[&str] = &["max_length", "silence"];
/// The longest comment a survey may record, in seconds (what one caller can cost in disk).
pub const MAX_COMMENT_SECONDS: f64 = 120.0;
const DEFAULT_COMMENT_SECONDS: f64 = 30.0;
const DEFAULT_COMMENT_SILENCE: f64 = 3.0;
/// The most questions a survey may have (each is a row of the call record).
pub const MAX_QUESTIONS: usize = 10;
const DEFAULT_TIMEOUT: f64 = 5.0;
const DEFAULT_RETRIES: u32 = 1;

/// A survey: questions asked in order, then thanks.
#[derive(Debug, Clone)]
pub struct Survey {
    /// Its name in the config.
    pub name: String,
    /// The questions, in order (at least one, at most [`MAX_QUESTIONS`]).
    pub questions: Vec<Question>,
    /// Played after the last question, before hanging up.
    pub thanks: Vec<PromptId>,
    /// Played after a key that is not an answer, before the question again.
    pub invalid: Vec<PromptId>,
    /// How many times a question is asked again after an invalid key or a timeout before
    /// it is left unanswered.
    pub retries: u32,
    /// Where it is defined.
    pub at: Loc,
}

/// One question: a prompt and the keys that answer it.
#[derive(Debug, Clone)]
pub struct Question {
    /// Its name, as the call record keeps it (`rating`).
    pub name: String,
    /// What is asked ("on a scale of 1 to 5...").
    pub prompt: Vec<PromptId>,
    /// The keys that answer it (`keys: 1-5` or `keys: "0123456789*"`); none for a
    /// recorded question.
    pub keys: Vec<Digit>,
    /// How long to wait for a key after the prompt.
    pub timeout: Duration,
    /// Set for a question answered by speaking: a comment recorded after a beep.
    pub record: Option<CommentSpec>,
}

/// How a recorded question's comment ends: `#`, this much silence, or this length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommentSpec {
    /// The longest comment (at most [`MAX_COMMENT_SECONDS`]).
    pub max_length: Duration,
    /// Silence that ends it.
    pub silence: Duration,
}

/// The `record:` of a question: a mapping (`{}` for the defaults).
fn comment_spec(w: &mut Walker, node: &Node, path: &str) -> Option<CommentSpec> {
    let f = w.map(node, path, Some(RECORD_FIELDS))?;
    let max = crate::handoff::seconds(
        w,
        &f,
        "max_length",
        path,
        1.0..=MAX_COMMENT_SECONDS,
        DEFAULT_COMMENT_SECONDS,
    );
    let silence =
        crate::handoff::seconds(w, &f, "silence", path, 1.0..=30.0, DEFAULT_COMMENT_SILENCE);
    if silence > max
        && let Some(n) = f.get("silence")
    {
        w.error(
            n.at,
            &join(path, "silence"),
            ErrorKind::Survey(format!(
                "{silence} s of silence would never end a comment of at most {max} s"
            )),
        );
    }
    Some(CommentSpec {
        max_length: Duration::from_secs_f64(max),
        silence: Duration::from_secs_f64(silence),
    })
}

/// The keys `text` names: a range of two digits (`1-5`, `0-9`) or the keys themselves
/// (`12#`).
fn parse_keys(text: &str) -> Result<Vec<Digit>, String> {
    let chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    if let [a, '-', b] = chars[..] {
        let (Some(lo), Some(hi)) = (a.to_digit(10), b.to_digit(10)) else {
            return Err(format!("'{text}': a range is two digits, e.g. 1-5"));
        };
        if lo > hi {
            return Err(format!("'{text}': the range is empty"));
        }
        return Ok((lo..=hi).map(|d| Digit::ALL[d as usize]).collect());
    }
    let mut keys = Vec::new();
    for c in chars {
        let d = Digit::from_char(c)
            .ok_or_else(|| format!("'{c}' is not a key (use 0-9, *, #, A-D, or a range 1-5)"))?;
        if !keys.contains(&d) {
            keys.push(d);
        }
    }
    if keys.is_empty() {
        return Err("no keys: write a range such as 1-5, or the keys".into());
    }
    Ok(keys)
}

/// Compile the `surveys:` map, in the order written. `prompts` resolves prompt names.
pub(crate) fn compile_surveys(
    w: &mut Walker,
    node: &Node,
    prompts: &mut crate::handoff::PromptNames<'_>,
) -> Vec<Survey> {
    let mut out = Vec::new();
    let Some(fields) = w.map(node, "surveys", None) else {
        return out;
    };
    for (name, spec) in fields.iter() {
        let path = join("surveys", name);
        let mut survey = Survey {
            name: name.to_string(),
            questions: Vec::new(),
            thanks: Vec::new(),
            invalid: Vec::new(),
            retries: DEFAULT_RETRIES,
            at: spec.at,
        };
        if let Some(f) = w.map(spec, &path, Some(SURVEY_FIELDS)) {
            survey.thanks = prompts(w, f.get("thanks"), &join(&path, "thanks"));
            survey.invalid = prompts(w, f.get("invalid"), &join(&path, "invalid"));
            if let Some(n) = f.get("retries") {
                let here = join(&path, "retries");
                match w.count(n, &here) {
                    Some(r) if r <= 5 => survey.retries = r,
                    Some(r) => w.error(
                        n.at,
                        &here,
                        ErrorKind::Range {
                            got: f64::from(r),
                            min: 0.0,
                            max: 5.0,
                        },
                    ),
                    None => {}
                }
            }
            match f.get("questions") {
                Some(q) => survey.questions = questions(w, q, &join(&path, "questions"), prompts),
                None => w.error(spec.at, &path, ErrorKind::Missing("questions")),
            }
        }
        out.push(survey);
    }
    out
}

fn questions(
    w: &mut Walker,
    node: &Node,
    path: &str,
    prompts: &mut crate::handoff::PromptNames<'_>,
) -> Vec<Question> {
    let Value::Seq(items) = &node.value else {
        w.error(
            node.at,
            path,
            ErrorKind::Type {
                expected: "a list of questions",
                found: node.value.kind(),
            },
        );
        return Vec::new();
    };
    if items.is_empty() || items.len() > MAX_QUESTIONS {
        w.error(
            node.at,
            path,
            ErrorKind::Survey(format!(
                "a survey has 1 to {MAX_QUESTIONS} questions, not {}",
                items.len()
            )),
        );
    }
    let mut out: Vec<Question> = Vec::new();
    for (i, item) in items.iter().enumerate().take(MAX_QUESTIONS) {
        let here = join(path, &i.to_string());
        let Some(f) = w.map(item, &here, Some(QUESTION_FIELDS)) else {
            continue;
        };
        let name = match f.get("name") {
            Some(n) => w.string(n, &join(&here, "name")),
            None => {
                w.error(item.at, &here, ErrorKind::Missing("name"));
                None
            }
        };
        if let (Some(n), Some(node)) = (&name, f.get("name"))
            && out.iter().any(|q| &q.name == n)
        {
            w.error(
                node.at,
                &join(&here, "name"),
                ErrorKind::Survey(format!("two questions are named '{n}'")),
            );
        }
        if f.get("prompt").is_none() {
            w.error(item.at, &here, ErrorKind::Missing("prompt"));
        }
        let prompt = prompts(w, f.get("prompt"), &join(&here, "prompt"));
        let record = match f.get("record") {
            None => None,
            Some(n) => {
                let r = join(&here, "record");
                if let Some(k) = f.get("keys") {
                    w.error(
                        k.at,
                        &join(&here, "keys"),
                        ErrorKind::Survey(
                            "a question takes keys or records a comment (record:), not both".into(),
                        ),
                    );
                }
                if let Some(t) = f.get("timeout") {
                    w.error(
                        t.at,
                        &join(&here, "timeout"),
                        ErrorKind::Survey(
                            "a recorded question has no timeout: its comment ends with #, \
                             silence: or max_length:"
                                .into(),
                        ),
                    );
                }
                if out.iter().any(|q| q.record.is_some()) {
                    w.error(
                        n.at,
                        &r,
                        ErrorKind::Survey("a survey records at most one comment".into()),
                    );
                }
                comment_spec(w, n, &r)
            }
        };
        let keys = match f.get("keys") {
            None if f.get("record").is_some() => Vec::new(),
            None => {
                w.error(item.at, &here, ErrorKind::Missing("keys"));
                Vec::new()
            }
            Some(n) => {
                let k = join(&here, "keys");
                let text = match &n.value {
                    Value::Int(v) => Some(v.to_string()),
                    _ => w.string(n, &k),
                };
                match text.map(|t| parse_keys(&t)) {
                    Some(Ok(keys)) => keys,
                    Some(Err(e)) => {
                        w.error(n.at, &k, ErrorKind::Survey(e));
                        Vec::new()
                    }
                    None => Vec::new(),
                }
            }
        };
        let timeout = crate::compile::timeout_field(w, &f, "timeout", &here, DEFAULT_TIMEOUT);
        out.push(Question {
            name: name.unwrap_or_default(),
            prompt,
            keys,
            timeout: Duration::from_secs_f64(timeout),
            record,
        });
    }
    out
}

/// The `survey:` field of a `queue:` or `transfer:` action in mapping form, wrapped around
/// `action`; `None` after an error (reported).
pub(crate) fn with_survey(
    w: &mut Walker,
    node: &Node,
    path: &str,
    surveys: &[String],
    action: Action,
) -> Option<Action> {
    let Value::Map(pairs) = &node.value else {
        return Some(action);
    };
    let Some((_, value)) = pairs
        .iter()
        .find(|(k, _)| matches!(&k.value, Value::Str(s) if s == "survey"))
    else {
        return Some(action);
    };
    let here = join(path, "survey");
    let name = w.string(value, &here)?;
    let found = surveys.iter().position(|s| *s == name);
    let Some(i) = found else {
        let hint = crate::error::closest(&name, surveys.iter().map(String::as_str));
        w.error(
            value.at,
            &here,
            ErrorKind::Unknown {
                kind: "survey",
                name,
                hint,
            },
        );
        return None;
    };
    Some(Action::Survey(SurveyId(i), Box::new(action)))
}

/// The fields of a `transfer:` action in mapping form.
pub(crate) const TRANSFER_ACTION_FIELDS: &[&str] = &["name", "survey"];

/// A `transfer:` action: a destination's name, or `{ name: DESTINATION, survey: SURVEY }`.
/// `lookup` resolves the name node to a destination index.
pub(crate) fn transfer_action(
    w: &mut Walker,
    node: &Node,
    path: &str,
    lookup: &mut dyn FnMut(&mut Walker, &Node, &str) -> Option<usize>,
) -> Option<Action> {
    let dest = if let Value::Map(_) = node.value {
        let f = w.map(node, path, Some(TRANSFER_ACTION_FIELDS))?;
        let Some(n) = f.get("name") else {
            w.error(node.at, path, ErrorKind::Missing("name"));
            return None;
        };
        lookup(w, n, &join(path, "name"))?
    } else {
        lookup(w, node, path)?
    };
    Some(Action::Transfer(crate::model::DestinationId(dest)))
}

/// A survey on a transfer to a `mode: refer` destination cannot be asked: the call
/// leaves the engine. One error per menu that asks for one.
pub(crate) fn refer_surveys(
    menus: &[crate::model::Menu],
    destinations: &[crate::handoff::Destination],
) -> Vec<crate::error::CompileError> {
    let mut errors = Vec::new();
    for m in menus {
        let refer = m.actions().find_map(|a| {
            let mut a = a;
            let mut asked = false;
            loop {
                match a {
                    Action::Language(_, t) | Action::Set(_, t) => a = t,
                    Action::Survey(_, t) => {
                        asked = true;
                        a = t;
                    }
                    Action::Transfer(d) if asked => {
                        let dest = destinations.get(d.0)?;
                        return (dest.mode == crate::handoff::TransferMode::Refer)
                            .then(|| dest.name.clone());
                    }
                    _ => return None,
                }
            }
        });
        if let Some(dest) = refer {
            errors.push(crate::error::CompileError {
                file: m.file.clone(),
                at: Some(m.at),
                path: join("menus", &m.name),
                kind: ErrorKind::Survey(format!(
                    "a survey needs a bridged transfer: destination '{dest}' is mode: refer (the call leaves the engine)"
                )),
            });
        }
    }
    errors
}

/// What a survey run asks of the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SurveyOutput {
    /// Play these prompts to the caller.
    Play(Vec<PromptId>),
    /// Stop what is playing (the caller answered during the question).
    StopPlayback,
    /// Play the record beep (a recorded question's prompt ended).
    Beep,
    /// Start recording the caller's comment.
    StartRecording,
    /// Stop recording it: `keep` if the caller spoke (else the recording is dropped:
    /// an empty comment is no answer).
    StopRecording {
        /// Whether to keep what was recorded.
        keep: bool,
    },
    /// The survey is over: hang up.
    Hangup,
}

/// How a question ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerOutcome {
    /// The caller pressed one of its keys.
    Answered,
    /// No key came, at each asking.
    Timeout,
    /// The last key was not one of its keys.
    Invalid,
    /// The caller hung up during the question.
    HungUp,
}

impl AnswerOutcome {
    /// The name the call record keeps: `answered`, `timeout`, `invalid`, `hangup`.
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerOutcome::Answered => "answered",
            AnswerOutcome::Timeout => "timeout",
            AnswerOutcome::Invalid => "invalid",
            AnswerOutcome::HungUp => "hangup",
        }
    }
}

/// One question's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The question's name.
    pub question: String,
    /// The key that answered it (only with [`AnswerOutcome::Answered`]).
    pub key: Option<Digit>,
    /// How it ended.
    pub outcome: AnswerOutcome,
    /// Whether a comment was recorded for it (a recorded question the caller spoke to:
    /// outcome [`AnswerOutcome::Answered`], or [`AnswerOutcome::HungUp`] if the caller
    /// hung up while speaking; the recording is kept either way).
    pub recorded: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The question's prompt is playing.
    Asking,
    /// The prompt ended: waiting for a key until then.
    Waiting(Instant),
    /// The `invalid` prompt is playing; the question comes again after it.
    Invalid,
    /// The record beep is playing; recording starts after it.
    Beep,
    /// The comment is being recorded until `until` (its length), or until `silence`
    /// after `last_voice`; `voiced` once the caller said something.
    Recording {
        /// The end of the longest comment.
        until: Instant,
        /// The last frame with voice (the start, before any).
        last_voice: Instant,
        /// Whether any frame had voice.
        voiced: bool,
    },
    /// The thanks are playing.
    Thanks,
    /// Over.
    Done,
}

/// One caller's survey, question by question.
#[derive(Debug)]
pub struct SurveyRun {
    menus: Arc<Menus>,
    survey: SurveyId,
    question: usize,
    phase: Phase,
    /// Invalid keys and timeouts on the current question.
    failures: u32,
    answers: Vec<Answer>,
    outputs: VecDeque<SurveyOutput>,
}

impl SurveyRun {
    /// A run of `survey`; nothing happens before [`SurveyRun::start`].
    pub fn new(menus: Arc<Menus>, survey: SurveyId) -> SurveyRun {
        SurveyRun {
            menus,
            survey,
            question: 0,
            phase: Phase::Done,
            failures: 0,
            answers: Vec::new(),
            outputs: VecDeque::new(),
        }
    }

    fn def(&self) -> &Survey {
        self.menus.survey(self.survey)
    }

    /// The survey's name.
    pub fn name(&self) -> &str {
        &self.def().name
    }

    /// Ask the first question.
    pub fn start(&mut self, _now: Instant) {
        self.question = 0;
        self.ask();
    }

    fn ask(&mut self) {
        let survey = self.menus.survey(self.survey);
        match survey.questions.get(self.question) {
            Some(q) => {
                let prompt = q.prompt.clone();
                self.outputs.push_back(SurveyOutput::Play(prompt));
                self.phase = Phase::Asking;
            }
            None if survey.thanks.is_empty() => self.hang_up(),
            None => {
                let thanks = survey.thanks.clone();
                self.outputs.push_back(SurveyOutput::Play(thanks));
                self.phase = Phase::Thanks;
            }
        }
    }

    fn hang_up(&mut self) {
        self.phase = Phase::Done;
        self.outputs.push_back(SurveyOutput::Hangup);
    }

    fn record(&mut self, key: Option<Digit>, outcome: AnswerOutcome) {
        let question = self.def().questions[self.question].name.clone();
        self.answers.push(Answer {
            question,
            key,
            outcome,
            recorded: false,
        });
        self.question += 1;
        self.failures = 0;
        self.ask();
    }

    fn fail(&mut self, outcome: AnswerOutcome) {
        self.failures += 1;
        if self.failures > self.def().retries {
            return self.record(None, outcome);
        }
        let invalid = &self.def().invalid;
        if outcome == AnswerOutcome::Invalid && !invalid.is_empty() {
            let invalid = invalid.clone();
            self.outputs.push_back(SurveyOutput::Play(invalid));
            self.phase = Phase::Invalid;
        } else {
            self.ask();
        }
    }

    /// A key from the caller: during a question or after it, it answers (or is invalid);
    /// during the thanks or the `invalid` prompt it is ignored.
    ///
    /// On a recorded question a key during the prompt cuts it short (the beep comes at
    /// once), `#` ends the comment, and other keys are ignored.
    pub fn handle_digit(&mut self, now: Instant, digit: Digit) {
        let playing = match self.phase {
            Phase::Asking => true,
            Phase::Waiting(_) => false,
            Phase::Recording { .. } => {
                if digit == Digit::Pound {
                    self.end_comment(now);
                }
                return;
            }
            Phase::Invalid | Phase::Beep | Phase::Thanks | Phase::Done => return,
        };
        if playing {
            self.outputs.push_back(SurveyOutput::StopPlayback);
        }
        if self.current_records() {
            self.outputs.push_back(SurveyOutput::Beep);
            self.phase = Phase::Beep;
            return;
        }
        if self.def().questions[self.question].keys.contains(&digit) {
            self.record(Some(digit), AnswerOutcome::Answered);
        } else {
            self.fail(AnswerOutcome::Invalid);
        }
    }

    /// Whether the current question records a comment.
    fn current_records(&self) -> bool {
        self.def()
            .questions
            .get(self.question)
            .is_some_and(|q| q.record.is_some())
    }

    /// The comment ends (`#`, silence, its length): kept if the caller spoke, else the
    /// question is left unanswered (`timeout`).
    fn end_comment(&mut self, _now: Instant) {
        let Phase::Recording { voiced, .. } = self.phase else {
            return;
        };
        self.outputs
            .push_back(SurveyOutput::StopRecording { keep: voiced });
        let outcome = if voiced {
            AnswerOutcome::Answered
        } else {
            AnswerOutcome::Timeout
        };
        self.record(None, outcome);
        if let Some(last) = self.answers.last_mut() {
            last.recorded = voiced;
        }
    }

    /// What was playing has ended.
    pub fn handle_playback_finished(&mut self, now: Instant) {
        match self.phase {
            Phase::Asking if self.current_records() => {
                self.outputs.push_back(SurveyOutput::Beep);
                self.phase = Phase::Beep;
            }
            Phase::Asking => {
                let timeout = self.def().questions[self.question].timeout;
                self.phase = Phase::Waiting(now + timeout);
            }
            Phase::Beep => {
                let max = self.def().questions[self.question]
                    .record
                    .map_or(Duration::ZERO, |r| r.max_length);
                self.outputs.push_back(SurveyOutput::StartRecording);
                self.phase = Phase::Recording {
                    until: now + max,
                    last_voice: now,
                    voiced: false,
                };
            }
            Phase::Invalid => self.ask(),
            Phase::Thanks => self.hang_up(),
            Phase::Waiting(_) | Phase::Recording { .. } | Phase::Done => {}
        }
    }

    /// One frame of the caller's audio while a comment records; `voice` says whether it
    /// is louder than silence (the owner measures). Ignored otherwise.
    pub fn handle_audio(&mut self, now: Instant, voice: bool) {
        if let Phase::Recording {
            last_voice, voiced, ..
        } = &mut self.phase
            && voice
        {
            *last_voice = now;
            *voiced = true;
        }
    }

    /// The longest comment the current question takes, if it records one.
    pub fn comment_limit(&self) -> Option<Duration> {
        self.def()
            .questions
            .get(self.question)
            .and_then(|q| q.record)
            .map(|r| r.max_length)
    }

    /// Whether a comment is being recorded.
    pub fn is_recording(&self) -> bool {
        matches!(self.phase, Phase::Recording { .. })
    }

    /// The deadline of [`SurveyRun::handle_timeout`], if one runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Waiting(at) => Some(at),
            Phase::Recording {
                until, last_voice, ..
            } => {
                let silence = self.def().questions[self.question]
                    .record
                    .map_or(Duration::ZERO, |r| r.silence);
                Some(until.min(last_voice + silence))
            }
            _ => None,
        }
    }

    /// The clock reached `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Waiting(at) if now >= at => self.fail(AnswerOutcome::Timeout),
            Phase::Recording { .. } if self.poll_timeout().is_some_and(|at| now >= at) => {
                self.end_comment(now)
            }
            _ => {}
        }
    }

    /// The caller hung up (or the call is ending): a comment being recorded stops, kept
    /// if the caller spoke ([`SurveyOutput::StopRecording`]); nothing else is asked.
    pub fn handle_hangup(&mut self, _now: Instant) {
        if let Phase::Recording { voiced, .. } = self.phase {
            self.outputs
                .push_back(SurveyOutput::StopRecording { keep: voiced });
            let question = self.def().questions[self.question].name.clone();
            self.answers.push(Answer {
                question,
                key: None,
                outcome: AnswerOutcome::HungUp,
                recorded: voiced,
            });
            self.phase = Phase::Done;
        }
    }

    /// The answers given so far (the open question not among them).
    pub fn answers(&self) -> &[Answer] {
        &self.answers
    }

    /// The name of the question being asked, if one is.
    pub fn current_question(&self) -> Option<&str> {
        match self.phase {
            Phase::Thanks | Phase::Done => None,
            _ => self
                .def()
                .questions
                .get(self.question)
                .map(|q| q.name.as_str()),
        }
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<SurveyOutput> {
        self.outputs.pop_front()
    }

    /// Whether the survey has ended (it asked for the hang-up).
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The answers so far; a question open when the caller hung up ends as
    /// [`AnswerOutcome::HungUp`]. Questions never asked are not listed.
    pub fn finish(&mut self) -> Vec<Answer> {
        if let Phase::Recording { last_voice, .. } = self.phase {
            // The owner should have said so (it stops the recording): the answer is the
            // same.
            self.handle_hangup(last_voice);
        }
        if matches!(
            self.phase,
            Phase::Asking | Phase::Waiting(_) | Phase::Invalid | Phase::Beep
        ) && self.question < self.def().questions.len()
        {
            let question = self.def().questions[self.question].name.clone();
            self.answers.push(Answer {
                question,
                key: None,
                outcome: AnswerOutcome::HungUp,
                recorded: false,
            });
            self.phase = Phase::Done;
        }
        std::mem::take(&mut self.answers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::tests::compile_test;

    const YAML: &str = r#"
entry: main
prompts:
  welcome: welcome.wav
  rate: rate.wav
  recommend: recommend.wav
  thanks: thanks.wav
  oops: oops.wav
menus:
  main:
    prompt: welcome
    options:
      "1": { queue: { name: support, survey: after_call } }
      "2": { transfer: { name: operator, survey: after_call } }
      "3": { transfer: operator }
queues:
  support: {}
destinations:
  operator: { uri: "sip:op@127.0.0.1", mode: bridge }
surveys:
  after_call:
    invalid: oops
    thanks: thanks
    questions:
      - { name: rating, prompt: rate, keys: 1-5, timeout: 3s }
      - { name: recommend, prompt: recommend, keys: 0-9 }
"#;

    fn survey_run() -> SurveyRun {
        let menus = Arc::new(compile_test(YAML).unwrap());
        SurveyRun::new(menus, SurveyId(0))
    }

    fn outs(r: &mut SurveyRun) -> Vec<String> {
        let menus = r.menus.clone();
        std::iter::from_fn(|| r.poll_output())
            .map(|o| match o {
                SurveyOutput::Play(p) => p.iter().map(|p| menus.prompt_name(*p)).collect(),
                SurveyOutput::StopPlayback => "stop".into(),
                SurveyOutput::Hangup => "hangup".into(),
                SurveyOutput::Beep => "beep".into(),
                SurveyOutput::StartRecording => "start".into(),
                SurveyOutput::StopRecording { keep: true } => "stop keep".into(),
                SurveyOutput::StopRecording { keep: false } => "stop drop".into(),
            })
            .collect()
    }

    #[test]
    fn compiles_surveys_on_queue_and_transfer_actions() {
        let m = compile_test(YAML).unwrap();
        let s = &m.surveys()[0];
        assert_eq!(s.name, "after_call");
        assert_eq!(s.questions.len(), 2);
        assert_eq!(s.questions[0].keys.len(), 5);
        assert_eq!(s.questions[0].timeout, Duration::from_secs(3));
        let main = m.menu(m.entry());
        assert!(
            matches!(&main.options[1], Some(Action::Survey(SurveyId(0), a)) if matches!(**a, Action::Queue(..)))
        );
        assert!(
            matches!(&main.options[2], Some(Action::Survey(SurveyId(0), a)) if matches!(**a, Action::Transfer(..)))
        );
        assert!(matches!(&main.options[3], Some(Action::Transfer(_))));
    }

    #[test]
    fn check_reports_every_survey_error_at_once() {
        let bad = YAML
            .replace("survey: after_call } }", "survey: after_cal } }")
            .replace("keys: 1-5", "keys: 5-1")
            .replace("prompt: recommend,", "prompt: recomend,");
        let errors = compile_test(&bad).unwrap_err();
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(errors.len(), 4, "{text:#?}");
        assert!(
            text.iter()
                .any(|e| e.contains("after_cal") && e.contains("after_call")),
            "{text:#?}"
        );
        assert!(
            text.iter().any(|e| e.contains("range is empty")),
            "{text:#?}"
        );
        assert!(text.iter().any(|e| e.contains("recomend")), "{text:#?}");
    }

    #[test]
    fn a_survey_on_a_refer_transfer_is_refused() {
        let bad = YAML.replace("mode: bridge", "mode: refer");
        let errors = compile_test(&bad).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0].to_string().contains("'operator' is mode: refer"),
            "{errors:#?}"
        );
    }

    #[test]
    fn asks_each_question_then_thanks() {
        let t0 = crate::test_epoch();
        let mut r = survey_run();
        r.start(t0);
        assert_eq!(outs(&mut r), ["rate"]);
        r.handle_digit(t0, Digit::D4); // during the question
        assert_eq!(outs(&mut r), ["stop", "recommend"]);
        r.handle_playback_finished(t0);
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(5)));
        r.handle_digit(t0, Digit::D9);
        assert_eq!(outs(&mut r), ["thanks"]);
        r.handle_digit(t0, Digit::D1); // ignored during the thanks
        r.handle_playback_finished(t0);
        assert_eq!(outs(&mut r), ["hangup"]);
        let a = r.finish();
        assert_eq!(a.len(), 2);
        assert_eq!(
            (a[0].key, a[0].outcome),
            (Some(Digit::D4), AnswerOutcome::Answered)
        );
        assert_eq!(
            (a[1].question.as_str(), a[1].key),
            ("recommend", Some(Digit::D9))
        );
    }

    #[test]
    fn invalid_keys_and_timeouts_are_retried_then_left_unanswered() {
        let t0 = crate::test_epoch();
        let mut r = survey_run();
        r.start(t0);
        r.handle_playback_finished(t0);
        r.handle_digit(t0, Digit::D7); // not 1-5
        assert_eq!(outs(&mut r), ["rate", "oops"]);
        r.handle_playback_finished(t0);
        assert_eq!(outs(&mut r), ["rate"]);
        r.handle_playback_finished(t0);
        r.handle_digit(t0, Digit::D0); // the retry spent: unanswered
        assert_eq!(outs(&mut r), ["recommend"]);
        r.handle_playback_finished(t0);
        let t1 = t0 + Duration::from_secs(5);
        r.handle_timeout(t1);
        assert_eq!(outs(&mut r), ["recommend"]);
        r.handle_playback_finished(t1);
        r.handle_timeout(t1 + Duration::from_secs(5));
        assert_eq!(outs(&mut r), ["thanks"]);
        let a = r.finish();
        assert_eq!((a[0].key, a[0].outcome), (None, AnswerOutcome::Invalid));
        assert_eq!((a[1].key, a[1].outcome), (None, AnswerOutcome::Timeout));
    }

    #[test]
    fn a_caller_hanging_up_mid_survey_leaves_the_open_question_as_hangup() {
        let t0 = crate::test_epoch();
        let mut r = survey_run();
        r.start(t0);
        r.handle_digit(t0, Digit::D5);
        let a = r.finish();
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].outcome, AnswerOutcome::HungUp);
    }

    /// The survey of [`YAML`] with a recorded comment after the two key questions.
    fn comment_run() -> SurveyRun {
        let yaml = YAML.replace(
            "      - { name: recommend, prompt: recommend, keys: 0-9 }\n",
            "      - { name: recommend, prompt: recommend, keys: 0-9 }\n      \
             - { name: comment, prompt: oops, record: { max_length: 10s, silence: 2s } }\n",
        );
        let menus = Arc::new(compile_test(&yaml).unwrap());
        let mut r = SurveyRun::new(menus, SurveyId(0));
        let t0 = crate::test_epoch();
        r.start(t0);
        r.handle_digit(t0, Digit::D4);
        r.handle_digit(t0, Digit::D9);
        assert_eq!(outs(&mut r), ["rate", "stop", "recommend", "stop", "oops"]);
        r
    }

    #[test]
    fn a_recorded_question_compiles_with_its_limits_and_defaults() {
        let m =
            compile_test(&YAML.replace("keys: 0-9 }", "record: { max_length: 20, silence: 4s } }"))
                .unwrap();
        let q = &m.surveys()[0].questions[1];
        assert!(q.keys.is_empty());
        assert_eq!(
            q.record,
            Some(CommentSpec {
                max_length: Duration::from_secs(20),
                silence: Duration::from_secs(4)
            })
        );
        let m = compile_test(&YAML.replace("keys: 0-9 }", "record: {} }")).unwrap();
        assert_eq!(
            m.surveys()[0].questions[1].record,
            Some(CommentSpec {
                max_length: Duration::from_secs(30),
                silence: Duration::from_secs(3)
            })
        );
    }

    #[test]
    fn check_reports_every_recorded_question_error_at_once() {
        let bad = YAML
            .replace(
                "keys: 1-5, timeout: 3s }",
                "keys: 1-5, timeout: 3s, record: { max_lenght: 5 } }",
            )
            .replace(
                "keys: 0-9 }",
                "record: { max_length: 600, silence: 3 }, timeout: 2 }",
            );
        let errors = compile_test(&bad).unwrap_err();
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        let has = |s: &str| text.iter().any(|e| e.contains(s));
        assert!(has("keys or records a comment"), "{text:#?}");
        assert!(has("no timeout"), "{text:#?}");
        assert!(has("max_lenght") && has("max_length"), "{text:#?}");
        assert!(has("at most one comment"), "{text:#?}");
        assert!(has("600 is outside 1 to 120"), "{text:#?}");
        assert_eq!(errors.len(), 6, "{text:#?}");
        let slow = YAML.replace("keys: 0-9 }", "record: { max_length: 5, silence: 8 } }");
        let errors = compile_test(&slow).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].to_string().contains("never end"), "{errors:#?}");
    }

    #[test]
    fn a_comment_is_recorded_after_the_beep_and_pound_ends_it() {
        let t0 = crate::test_epoch();
        let mut r = comment_run();
        r.handle_playback_finished(t0);
        assert_eq!(outs(&mut r), ["beep"]);
        r.handle_digit(t0, Digit::D1); // ignored during the beep
        r.handle_playback_finished(t0);
        assert_eq!(outs(&mut r), ["start"]);
        assert!(r.is_recording());
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(2)));
        let t1 = t0 + Duration::from_secs(1);
        r.handle_audio(t1, true);
        r.handle_digit(t1, Digit::D5); // not #: ignored
        assert_eq!(r.poll_timeout(), Some(t1 + Duration::from_secs(2)));
        r.handle_digit(t1, Digit::Pound);
        assert_eq!(outs(&mut r), ["stop keep", "thanks"]);
        let a = r.finish();
        assert_eq!(a.len(), 3);
        assert_eq!(
            (
                a[2].question.as_str(),
                a[2].outcome,
                a[2].recorded,
                a[2].key
            ),
            ("comment", AnswerOutcome::Answered, true, None)
        );
        assert!(!a[0].recorded);
    }

    #[test]
    fn silence_or_the_length_ends_a_comment_and_an_empty_one_is_unanswered() {
        let t0 = crate::test_epoch();
        // Nothing said: the silence ends it, dropped, unanswered.
        let mut r = comment_run();
        r.handle_digit(t0, Digit::D0); // a key skips the prompt
        assert_eq!(outs(&mut r), ["stop", "beep"]);
        r.handle_playback_finished(t0);
        outs(&mut r);
        r.handle_audio(t0, false);
        r.handle_timeout(t0 + Duration::from_millis(1999));
        assert!(r.is_recording());
        r.handle_timeout(t0 + Duration::from_secs(2));
        assert_eq!(outs(&mut r), ["stop drop", "thanks"]);
        let a = r.finish();
        assert_eq!(
            (a[2].outcome, a[2].recorded),
            (AnswerOutcome::Timeout, false)
        );

        // Speaking without a pause: the length ends it, kept.
        let mut r = comment_run();
        r.handle_playback_finished(t0);
        r.handle_playback_finished(t0);
        outs(&mut r);
        for ms in (0..10_000).step_by(20) {
            r.handle_audio(t0 + Duration::from_millis(ms), true);
        }
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(10)));
        r.handle_timeout(t0 + Duration::from_secs(10));
        assert_eq!(outs(&mut r), ["stop keep", "thanks"]);
        assert_eq!(r.finish()[2].outcome, AnswerOutcome::Answered);
    }

    #[test]
    fn hanging_up_mid_comment_keeps_what_was_said() {
        let t0 = crate::test_epoch();
        let mut r = comment_run();
        r.handle_playback_finished(t0);
        r.handle_playback_finished(t0);
        outs(&mut r);
        r.handle_audio(t0, true);
        r.handle_hangup(t0);
        assert_eq!(outs(&mut r), ["stop keep"]);
        let a = r.finish();
        assert_eq!((a[2].outcome, a[2].recorded), (AnswerOutcome::HungUp, true));
        // Silent until the hang-up: nothing kept.
        let mut r = comment_run();
        r.handle_playback_finished(t0);
        r.handle_playback_finished(t0);
        outs(&mut r);
        let a = r.finish();
        assert_eq!(outs(&mut r), ["stop drop"]);
        assert_eq!(
            (a[2].outcome, a[2].recorded),
            (AnswerOutcome::HungUp, false)
        );
    }

    /// `ivr simulate` says the survey asked after the queue, and its recorded question.
    #[test]
    fn the_simulator_names_the_survey_and_its_recorded_comment() {
        let yaml = YAML.replace("keys: 0-9 }", "record: {} }");
        let menus = Arc::new(compile_test(&yaml).unwrap());
        let t0 = crate::test_epoch();
        let mut sim =
            crate::scenario::Simulator::call(menus, None, None, None, t0).expect("a call");
        sim.press(Digit::D1);
        let log = sim.take_log().join("\n");
        assert!(
            log.contains(
                "leaves the menus: queue support, then survey after_call (recorded comment: recommend)"
            ),
            "{log}"
        );
    }

    #[test]
    fn keys_by_range_or_list() {
        assert_eq!(parse_keys("1-5").unwrap().len(), 5);
        assert_eq!(parse_keys("0-9").unwrap()[0], Digit::D0);
        assert_eq!(
            parse_keys("12#").unwrap(),
            [Digit::D1, Digit::D2, Digit::Pound]
        );
        assert!(parse_keys("5-1").is_err());
        assert!(parse_keys("x").is_err());
        assert!(parse_keys("").is_err());
    }
}
