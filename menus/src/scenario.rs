//! Scripted scenarios on a virtual clock: `ivr test SCENARIOS.yaml`.
//!
//! A scenario is a list of steps a caller takes and checks to make, written as short lines:
//!
//! ```yaml
//! config: config.yaml          # relative to this file
//! scenarios:
//!   - name: English, then goodbye
//!     steps:
//!       - expect menu language
//!       - expect prompt lang_fr
//!       - press 2
//!       - expect menu main_en
//!       - press 9
//!       - wait 3s
//!       - expect hangup
//! ```
//!
//! Steps: `press KEYS` (one key after another at the same moment), `wait DURATION` (`500ms`,
//! `6s`, `1m`), `expect menu NAME` (the menu the caller is in now), `expect prompt NAME`
//! (a prompt started since the previous `expect prompt`), `expect hangup` (the call has
//! ended), `expect no hangup`, `expect voicemail MAILBOX`, `expect queue QUEUE`,
//! `expect transfer DESTINATION` (the call left the menus for it). Prompts take their real duration, timeouts fire on time, and
//! no SIP or audio is involved, so a scenario runs in microseconds.

use crate::error::{CompileError, ErrorKind, Loc};
use crate::model::Menus;
use crate::run::{MenuOutput, MenuRun};
use crate::yaml::{Node, Walker, join, load_str};
use ivr_audio::{Digit, FRAME_SAMPLES, SAMPLE_RATE};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A scenario file, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioFile {
    /// The config to test, as written (relative to the scenario file).
    pub config: Option<String>,
    /// The scenarios.
    pub scenarios: Vec<Scenario>,
}

/// One scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// The number called (picks the entry point), if given.
    pub called: Option<String>,
    /// The caller ID (for `callers:` rules), if given.
    pub caller: Option<String>,
    /// The wall-clock time the call starts at (for schedules), if given.
    pub at: Option<std::time::SystemTime>,
    /// Its steps, with their places in the file.
    pub steps: Vec<(Loc, Step)>,
}

/// One step.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Press keys.
    Press(Vec<Digit>),
    /// Let time pass.
    Wait(Duration),
    /// The caller is in this menu now.
    ExpectMenu(String),
    /// This prompt started since the last prompt check.
    ExpectPrompt(String),
    /// The call has ended (`true`) or not (`false`).
    ExpectHangup(bool),
    /// The call was refused before answering (a `callers:` reject rule).
    ExpectRejected,
    /// The caller's language is now this one.
    ExpectLanguage(String),
    /// A collecting menu stored this value in this variable.
    ExpectVariable(String, String),
    /// The call left the menus for this place: `voicemail sales`, `queue support`,
    /// `transfer callcenter`.
    ExpectAway(String),
}

/// Parse a scenario file; every error is reported with its place.
pub fn parse(text: &str) -> Result<ScenarioFile, Vec<CompileError>> {
    let root = load_str(text).map_err(|e| vec![*e])?;
    let mut w = Walker::default();
    let Some(top) = w.map(&root, "", Some(&["config", "scenarios"])) else {
        return Err(w.errors);
    };
    let config = top.get("config").and_then(|n| w.string(n, "config"));
    let mut scenarios = Vec::new();
    match top.get("scenarios") {
        Some(crate::yaml::Node {
            value: crate::yaml::Value::Seq(items),
            ..
        }) => {
            for (i, item) in items.iter().enumerate() {
                let path = join("scenarios", &i.to_string());
                if let Some(s) = scenario(&mut w, item, &path) {
                    scenarios.push(s);
                }
            }
        }
        Some(other) => w.error(
            other.at,
            "scenarios",
            ErrorKind::Type {
                expected: "a list",
                found: "something else",
            },
        ),
        None => w.error(root.at, "", ErrorKind::Missing("scenarios")),
    }
    let mut errors = w.errors;
    errors.sort_by_key(|e| e.at);
    if errors.is_empty() {
        Ok(ScenarioFile { config, scenarios })
    } else {
        Err(errors)
    }
}

fn scenario(w: &mut Walker, node: &Node, path: &str) -> Option<Scenario> {
    let f = w.map(
        node,
        path,
        Some(&["name", "called", "caller", "at", "steps"]),
    )?;
    let at = f.get("at").and_then(|n| {
        let here = join(path, "at");
        let text = w.string(n, &here)?;
        match wall_time(&text) {
            Ok(t) => Some(t),
            Err(reason) => {
                w.error(n.at, &here, ErrorKind::Step(reason));
                None
            }
        }
    });
    let called = f
        .get("called")
        .and_then(|n| w.string(n, &join(path, "called")));
    let caller = f
        .get("caller")
        .and_then(|n| w.string(n, &join(path, "caller")));
    let name = f
        .get("name")
        .and_then(|n| w.string(n, &join(path, "name")))
        .unwrap_or_else(|| path.to_string());
    let mut steps = Vec::new();
    let spath = join(path, "steps");
    match f.get("steps") {
        Some(Node {
            value: crate::yaml::Value::Seq(items),
            ..
        }) => {
            for (i, item) in items.iter().enumerate() {
                let here = join(&spath, &i.to_string());
                let Some(line) = w.string(item, &here) else {
                    continue;
                };
                match parse_step(&line) {
                    Ok(step) => steps.push((item.at, step)),
                    Err(reason) => w.error(item.at, &here, ErrorKind::Step(reason)),
                }
            }
        }
        Some(other) => w.error(
            other.at,
            &spath,
            ErrorKind::Type {
                expected: "a list of steps",
                found: "something else",
            },
        ),
        None => w.error(node.at, path, ErrorKind::Missing("steps")),
    }
    Some(Scenario {
        name,
        called,
        caller,
        at,
        steps,
    })
}

/// A moment written as RFC 3339 with an offset: `2026-12-25T10:00:00+01:00` or `...Z`.
pub fn wall_time(text: &str) -> Result<std::time::SystemTime, String> {
    let ts: jiff::Timestamp = text.trim().parse().map_err(|_| {
        format!("'{text}' is not a time with an offset (e.g. 2026-12-25T10:00:00+01:00 or 2026-12-25T09:00:00Z)")
    })?;
    to_system_time(ts).ok_or_else(|| format!("'{text}' is before 1970"))
}

/// A timestamp as a `SystemTime` (`None` before the Unix epoch).
pub fn to_system_time(ts: jiff::Timestamp) -> Option<std::time::SystemTime> {
    let secs = u64::try_from(ts.as_second()).ok()?;
    let nanos = u32::try_from(ts.subsec_nanosecond()).ok()?;
    Some(std::time::SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Parse one step line.
pub fn parse_step(line: &str) -> Result<Step, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["press", keys] => keys
            .trim_matches(['"', '\''])
            .chars()
            .map(|c| Digit::from_char(c).ok_or_else(|| format!("'{c}' is not a key")))
            .collect::<Result<Vec<_>, _>>()
            .map(Step::Press),
        ["wait", d] => crate::duration::parse(d).map(Step::Wait),
        ["expect", "menu", name] => Ok(Step::ExpectMenu(name.to_string())),
        ["expect", "prompt", name] => Ok(Step::ExpectPrompt(name.to_string())),
        ["expect", "hangup"] => Ok(Step::ExpectHangup(true)),
        ["expect", "no", "hangup"] => Ok(Step::ExpectHangup(false)),
        ["expect", "rejected"] => Ok(Step::ExpectRejected),
        ["expect", "language", lang] => Ok(Step::ExpectLanguage(lang.to_string())),
        ["expect", "variable", name, value] => Ok(Step::ExpectVariable(
            name.to_string(),
            value.trim_matches(['"', '\'']).to_string(),
        )),
        ["expect", kind @ ("voicemail" | "queue" | "transfer"), name] => {
            Ok(Step::ExpectAway(format!("{kind} {name}")))
        }
        _ => Err(format!(
            "'{line}' is not a step (press KEYS, wait 5s, expect menu NAME, expect prompt NAME, expect hangup, expect no hangup, expect rejected, expect language LANG, expect variable NAME VALUE, expect voicemail MAILBOX, expect queue QUEUE, expect transfer DESTINATION)"
        )),
    }
}

/// Why a scenario failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The step's place in the scenario file.
    pub at: Loc,
    /// The step number (from 1).
    pub step: usize,
    /// What was expected and what happened.
    pub reason: String,
}

/// Run one scenario against a compiled config, on a virtual clock starting at `start`.
pub fn run(menus: &Arc<Menus>, scenario: &Scenario, start: Instant) -> Result<(), Failure> {
    let route = menus.route(scenario.called.as_deref(), scenario.caller.as_deref());
    let crate::model::Route::Menu(entry) = route else {
        // Refused before answering: only `expect rejected` can pass.
        return match scenario
            .steps
            .iter()
            .enumerate()
            .find(|(_, (_, s))| *s != Step::ExpectRejected)
        {
            Some((i, (at, _))) => Err(Failure {
                at: *at,
                step: i + 1,
                reason: "the call was rejected by a callers: rule".into(),
            }),
            None => Ok(()),
        };
    };
    let mut sim = Sim::new(menus.clone(), entry, scenario.at, start);
    for (i, (at, step)) in scenario.steps.iter().enumerate() {
        let fail = |reason: String| Failure {
            at: *at,
            step: i + 1,
            reason,
        };
        match step {
            Step::Press(keys) => {
                for k in keys {
                    sim.run.handle_digit(sim.now, *k);
                    sim.drain();
                }
            }
            Step::Wait(d) => sim.advance(*d),
            Step::ExpectMenu(name) => {
                let current = &sim.run.menus().menu(sim.run.current()).name;
                if sim.hung_up || sim.away.is_some() || current != name {
                    return Err(fail(format!("expected menu {name}, but {}", sim.state())));
                }
            }
            Step::ExpectAway(place) => {
                if sim.away.as_deref() != Some(place.as_str()) {
                    return Err(fail(format!("expected {place}, but {}", sim.state())));
                }
            }
            Step::ExpectPrompt(name) => {
                match sim.heard[sim.cursor..].iter().position(|p| p == name) {
                    Some(j) => sim.cursor += j + 1,
                    None => {
                        let heard = if sim.heard[sim.cursor..].is_empty() {
                            "nothing".to_string()
                        } else {
                            sim.heard[sim.cursor..].join(", ")
                        };
                        return Err(fail(format!("expected prompt {name}, heard {heard}")));
                    }
                }
            }
            Step::ExpectVariable(name, value) => {
                let got = sim.run.variable(name);
                if got != Some(value.as_str()) {
                    return Err(fail(format!(
                        "expected {name} = {value}, but it is {}",
                        got.map(|g| format!("'{g}'")).unwrap_or("not set".into())
                    )));
                }
            }
            Step::ExpectLanguage(lang) => {
                let current = sim
                    .run
                    .menus()
                    .languages()
                    .get(sim.run.language())
                    .cloned()
                    .unwrap_or_default();
                if current != *lang {
                    return Err(fail(format!(
                        "expected language {lang}, but it is '{current}'"
                    )));
                }
            }
            Step::ExpectRejected => {
                return Err(fail(
                    "expected the call to be rejected, but it was answered".into(),
                ));
            }
            Step::ExpectHangup(want) => {
                if sim.hung_up != *want {
                    let what = if *want { "a hang-up" } else { "no hang-up" };
                    return Err(fail(format!("expected {what}, but {}", sim.state())));
                }
            }
        }
    }
    Ok(())
}

/// A caller on a virtual clock: playback takes the prompts' real length.
struct Sim {
    run: MenuRun,
    start: Instant,
    now: Instant,
    playing_until: Option<Instant>,
    heard: Vec<String>,
    cursor: usize,
    hung_up: bool,
    /// Where the call left the menus (`voicemail sales`), if it did.
    away: Option<String>,
    /// The same, as the menus name it.
    handoff: Option<crate::Handoff>,
    /// What a listener would notice, for `ivr simulate`.
    log: Vec<String>,
}

impl Sim {
    fn new(
        menus: Arc<Menus>,
        entry: crate::MenuId,
        wall: Option<std::time::SystemTime>,
        start: Instant,
    ) -> Sim {
        let mut sim = Sim {
            run: MenuRun::new_at(menus, entry),
            start,
            now: start,
            playing_until: None,
            heard: Vec::new(),
            cursor: 0,
            hung_up: false,
            away: None,
            handoff: None,
            log: Vec::new(),
        };
        if let Some(wall) = wall {
            sim.run.set_wall_clock(start, wall);
        }
        sim.run.start(start);
        sim.drain();
        sim
    }

    fn drain(&mut self) {
        while let Some(out) = self.run.poll_output() {
            match out {
                MenuOutput::Play(ids) => {
                    let menus = self.run.menus().clone();
                    let frames: usize = ids
                        .iter()
                        .map(|id| self.run.prompt(*id).frame_count())
                        .sum();
                    let length = Duration::from_secs_f64(
                        (frames * FRAME_SAMPLES) as f64 / SAMPLE_RATE as f64,
                    );
                    self.heard
                        .extend(ids.iter().map(|id| menus.prompt_name(*id).to_string()));
                    self.playing_until = Some(self.now + length);
                    let names: Vec<&str> = ids.iter().map(|id| menus.prompt_name(*id)).collect();
                    self.note(format!(
                        "plays {} ({:.1} s)",
                        names.join(", "),
                        length.as_secs_f64()
                    ));
                }
                MenuOutput::StopPlayback => {
                    self.playing_until = None;
                    self.note("prompt interrupted".into());
                }
                MenuOutput::Hangup => {
                    self.hung_up = true;
                    self.playing_until = None;
                    self.note("hangs up".into());
                }
                MenuOutput::Entered(m) => {
                    let name = self.run.menus().menu(m).name.clone();
                    self.note(format!("enters menu {name}"));
                }
                MenuOutput::Handoff(h) => {
                    let place = self.run.menus().handoff_name(h);
                    self.playing_until = None;
                    // A survey asked for after the bridged call is said too.
                    let survey = self
                        .run
                        .survey()
                        .map(|s| {
                            let survey = self.run.menus().survey(s);
                            // A recorded question is named: the caller is asked to speak.
                            let comment = survey
                                .questions
                                .iter()
                                .find(|q| q.record.is_some())
                                .map(|q| format!(" (recorded comment: {})", q.name))
                                .unwrap_or_default();
                            format!(", then survey {}{comment}", survey.name)
                        })
                        .unwrap_or_default();
                    match h {
                        crate::Handoff::Queue(_, p) if p > 0 => {
                            self.note(format!("leaves the menus: {place} (priority {p}){survey}"))
                        }
                        _ => self.note(format!("leaves the menus: {place}{survey}")),
                    }
                    self.away = Some(place);
                    self.handoff = Some(h);
                }
            }
        }
    }

    /// Where the call is, for failure messages.
    fn state(&self) -> String {
        if self.hung_up {
            "the call has ended".to_string()
        } else if let Some(place) = &self.away {
            format!("the call went to {place}")
        } else {
            format!(
                "the caller is still in menu {}",
                self.run.menus().menu(self.run.current()).name
            )
        }
    }

    fn note(&mut self, what: String) {
        let t = (self.now - self.start).as_secs_f64();
        self.log.push(format!("{t:7.2} s  {what}"));
    }

    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = [self.playing_until, self.run.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end && !self.hung_up && self.away.is_none() => {
                    self.now = self.now.max(t);
                    if self.playing_until.is_some_and(|p| p <= self.now) {
                        self.playing_until = None;
                        self.run.handle_playback_finished(self.now);
                    } else {
                        self.note("no key in time".into());
                        self.run.handle_timeout(self.now);
                    }
                    self.drain();
                }
                _ => break,
            }
        }
        self.now = end;
    }
}

/// An interactive caller on a virtual clock (`ivr simulate`): press keys, let time pass,
/// and read what a listener would notice.
pub struct Simulator(Sim);

impl Simulator {
    /// A call from `caller` to `called`; `Err(())` when a `callers:` rule rejects it.
    #[allow(clippy::result_unit_err)]
    pub fn call(
        menus: Arc<Menus>,
        called: Option<&str>,
        caller: Option<&str>,
        wall: Option<std::time::SystemTime>,
        start: Instant,
    ) -> Result<Simulator, ()> {
        match menus.route(called, caller) {
            crate::model::Route::Menu(entry) => Ok(Simulator(Sim::new(menus, entry, wall, start))),
            crate::model::Route::Reject => Err(()),
        }
    }

    /// The caller presses a key.
    pub fn press(&mut self, digit: Digit) {
        self.0.note(format!("caller presses {digit}"));
        self.0.run.handle_digit(self.0.now, digit);
        self.0.drain();
    }

    /// Let time pass.
    pub fn wait(&mut self, d: Duration) {
        self.0.advance(d);
    }

    /// Whether the call is over for the menus (hung up, or handed to a mailbox, a queue or
    /// a transfer).
    pub fn is_over(&self) -> bool {
        self.0.hung_up || self.0.away.is_some()
    }

    /// The lines noted since the last call (time since the call began, what happened).
    pub fn take_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.0.log)
    }

    /// Where the menus handed the call, if they did (a mailbox's dialogue is simulated by
    /// `ivr_voicemail::simulate`).
    pub fn handoff(&self) -> Option<crate::Handoff> {
        self.0.handoff
    }

    /// The virtual time now (the call began at the `start` given to [`Simulator::call`]).
    pub fn now(&self) -> Instant {
        self.0.now
    }

    /// The caller's language (an index into [`Menus::languages`]).
    pub fn language(&self) -> usize {
        self.0.run.language()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::compile;
    use crate::compile::tests::{YAML, loader};

    fn menus() -> Arc<Menus> {
        Arc::new(compile(YAML, &mut loader).unwrap())
    }

    fn scenario(steps: &[&str]) -> Scenario {
        Scenario {
            name: "t".into(),
            called: None,
            caller: None,
            at: None,
            steps: steps
                .iter()
                .map(|s| (Loc { line: 1, column: 1 }, parse_step(s).unwrap()))
                .collect(),
        }
    }

    #[test]
    fn a_passing_walk() {
        let s = scenario(&[
            "expect menu main",
            "expect prompt welcome",
            "press 1",
            "expect menu sales",
            "expect prompt sales",
            "press *",
            "expect menu main",
            "press 9",
            "expect no hangup",
            "wait 100ms",
            "expect hangup",
        ]);
        assert_eq!(run(&menus(), &s, crate::test_epoch()), Ok(()));
    }

    #[test]
    fn timeouts_follow_real_prompt_lengths() {
        // welcome is 1600 samples (0.2 s), timeout 3 s, retries 2, then on_failure plays bye.
        let s = scenario(&[
            "wait 3.3s",
            "expect menu main",
            "expect prompt welcome",
            "expect prompt welcome",
            "wait 10s",
            "expect prompt bye",
            "expect hangup",
        ]);
        assert_eq!(run(&menus(), &s, crate::test_epoch()), Ok(()));
        let early = scenario(&["wait 3.1s", "expect hangup"]);
        let f = run(&menus(), &early, crate::test_epoch()).unwrap_err();
        assert_eq!(f.step, 2);
        assert_eq!(
            f.reason,
            "expected a hang-up, but the caller is still in menu main"
        );
    }

    #[test]
    fn failures_say_what_happened() {
        let s = scenario(&["press 1", "expect menu main"]);
        let f = run(&menus(), &s, crate::test_epoch()).unwrap_err();
        assert_eq!(
            f.reason,
            "expected menu main, but the caller is still in menu sales"
        );
        let s = scenario(&["press 2", "expect prompt bye"]);
        let f = run(&menus(), &s, crate::test_epoch()).unwrap_err();
        assert_eq!(f.reason, "expected prompt bye, heard welcome, sales");
    }

    #[test]
    fn the_simulator_tells_what_a_caller_hears() {
        let mut s = Simulator::call(menus(), None, None, None, crate::test_epoch())
            .ok()
            .unwrap();
        s.press(Digit::D1);
        s.wait(Duration::from_secs(1));
        let log = s.take_log().join("\n");
        assert_eq!(
            log,
            "   0.00 s  enters menu main\n   0.00 s  plays welcome (0.2 s)\n   0.00 s  caller presses 1\n   0.00 s  prompt interrupted\n   0.00 s  enters menu sales\n   0.00 s  plays sales (0.1 s)"
        );
        s.wait(Duration::from_secs(10));
        assert!(s.take_log().iter().any(|l| l.ends_with("no key in time")));
    }

    #[test]
    fn rejected_callers() {
        let yaml = YAML.replace(
            "entry: main\n",
            "entry: main\ncallers:\n  - match: [\"+1900*\"]\n    reject: true\n",
        );
        let menus = Arc::new(compile(&yaml, &mut loader).unwrap());
        let mut s = scenario(&["expect rejected"]);
        s.caller = Some("+19001234".into());
        assert_eq!(run(&menus, &s, crate::test_epoch()), Ok(()));
        s.caller = Some("+33100".into());
        let f = run(&menus, &s, crate::test_epoch()).unwrap_err();
        assert_eq!(
            f.reason,
            "expected the call to be rejected, but it was answered"
        );
        let mut s = scenario(&["expect menu main"]);
        s.caller = Some("+19001234".into());
        assert_eq!(
            run(&menus, &s, crate::test_epoch()).unwrap_err().reason,
            "the call was rejected by a callers: rule"
        );
    }

    #[test]
    fn files_parse_with_every_error_placed() {
        let ok = parse("config: c.yaml\nscenarios:\n  - name: a\n    steps:\n      - press 12\n      - wait 500ms\n").unwrap();
        assert_eq!(ok.config.as_deref(), Some("c.yaml"));
        assert_eq!(
            ok.scenarios[0].steps[0].1,
            Step::Press(vec![Digit::D1, Digit::D2])
        );
        assert_eq!(
            ok.scenarios[0].steps[1].1,
            Step::Wait(Duration::from_millis(500))
        );
        let bad = parse(
            "scenarios:\n  - name: a\n    steps:\n      - press x\n      - jump 3\n    stpes: []\n",
        )
        .unwrap_err();
        let text: Vec<String> = bad.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(
            text[0].starts_with("4:9: scenarios.0.steps.0: 'x' is not a key"),
            "{text:?}"
        );
        assert!(
            text[2].contains("unknown field 'stpes' (did you mean 'steps'?"),
            "{text:?}"
        );
    }
}
