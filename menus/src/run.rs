//! [`MenuRun`]: one caller's walk through the menus, as a sans-IO state machine.
//!
//! Inputs: [`MenuRun::start`], [`MenuRun::handle_digit`], [`MenuRun::handle_playback_finished`],
//! [`MenuRun::handle_timeout`]. Outputs: [`MenuOutput`] from [`MenuRun::poll_output`] and the
//! next deadline from [`MenuRun::poll_timeout`]. A key pressed while a menu prompt plays stops
//! it (barge-in) and counts at once; keys pressed during a goodbye are ignored.

use crate::model::{Action, Handoff, MenuId, Menus, PromptId, PromptItem};
use crate::schedule::State;
use ivr_audio::Digit;
use jiff::Timestamp;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// What the call must do for the menu.
#[derive(Debug, Clone)]
pub enum MenuOutput {
    /// Replace whatever plays with these prompts (of [`MenuRun::menus`]), in order, and
    /// report when they have finished. The run asks for one prompt at a time.
    Play(Vec<PromptId>),
    /// Stop playing now (a key interrupted the prompt).
    StopPlayback,
    /// End the call.
    Hangup,
    /// The caller entered a menu (for logs, metrics and tests).
    Entered(MenuId),
    /// The call leaves the menus for a mailbox, a queue or a transfer; the run takes no
    /// more input.
    Handoff(Handoff),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    NoInput,
    Invalid,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Failures {
    no_input: u32,
    invalid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    NotStarted,
    /// The menu prompt plays; collection starts when it ends.
    Prompt,
    /// An information, invalid-key or no-input prompt plays; the menu prompt follows.
    Notice,
    /// Waiting for a key until the deadline.
    Collect(Instant),
    /// Digits of an extension are coming; the next one is due by the deadline.
    Dialing(Instant),
    /// A goodbye plays; hang up when it ends.
    Goodbye,
    /// Hung up.
    Done,
    /// Handed to a mailbox, a queue or a transfer.
    Away(Handoff),
}

/// How many menus `back` can retrace.
const HISTORY: usize = 32;

/// One call's position in the menus.
#[derive(Debug)]
pub struct MenuRun {
    menus: Arc<Menus>,
    menu: MenuId,
    phase: Phase,
    /// Timeouts and invalid keys so far in this menu, counted apart.
    failures: Failures,
    /// The prompts of the current sequence still to finish; the front one is playing.
    playing: VecDeque<PromptId>,
    /// Keys typed during a non-interruptible prompt whose type-ahead is kept.
    typed: VecDeque<Digit>,
    /// The digits of an extension (or a collected entry) so far.
    dialed: Vec<Digit>,
    /// Variables set by collecting menus: (name, value).
    vars: Vec<(String, String)>,
    /// An instant and the wall-clock time then, for schedules.
    clock: Option<(Instant, Timestamp)>,
    /// The caller's language, an index into [`Menus::languages`] (0: the default).
    language: usize,
    /// The menus the caller came through by `goto`, most recent last (for `back`).
    history: Vec<MenuId>,
    outputs: VecDeque<MenuOutput>,
    /// The survey the action being carried out asked for (`survey:`), until its hand-off.
    survey_asked: Option<crate::survey::SurveyId>,
    /// The survey to ask after the bridged call the last hand-off led to.
    survey: Option<crate::survey::SurveyId>,
    /// The steps through the menus, for the call record.
    path: crate::path::Path,
}

impl MenuRun {
    /// A run at the entry menu of `menus`; nothing happens until [`MenuRun::start`].
    pub fn new(menus: Arc<Menus>) -> MenuRun {
        let entry = menus.entry();
        MenuRun::new_at(menus, entry)
    }

    /// A run that starts in `menu` (an entry point chosen by the called number).
    pub fn new_at(menus: Arc<Menus>, menu: MenuId) -> MenuRun {
        MenuRun {
            menus,
            menu,
            phase: Phase::NotStarted,
            failures: Failures::default(),
            playing: VecDeque::new(),
            typed: VecDeque::new(),
            dialed: Vec::new(),
            vars: Vec::new(),
            clock: None,
            language: 0,
            history: Vec::new(),
            outputs: VecDeque::new(),
            survey_asked: None,
            survey: None,
            path: crate::path::Path::default(),
        }
    }

    /// The menu the caller is in.
    pub fn current(&self) -> MenuId {
        self.menu
    }

    /// The snapshot this run walks (calls keep the snapshot they started with).
    pub fn menus(&self) -> &Arc<Menus> {
        &self.menus
    }

    /// Whether the run has hung up.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The survey to ask once the bridged call the menus handed the caller to ends by
    /// the other side hanging up (`survey:` on the `queue:` or `transfer:` action).
    pub fn survey(&self) -> Option<crate::survey::SurveyId> {
        self.survey
    }

    /// Where the call left the menus, if it did.
    pub fn handed_off(&self) -> Option<Handoff> {
        match self.phase {
            Phase::Away(h) => Some(h),
            _ => None,
        }
    }

    /// A bridged transfer failed (busy, no answer, refused): the caller is back in the menu
    /// the transfer was chosen from, and that destination's `on_failure` acts there. The
    /// variable `transfer` records what happened (`operator: busy`), so a callback request
    /// left afterwards says where the call went. A no-op unless the run was handed to a
    /// transfer.
    pub fn transfer_failed(&mut self, now: Instant, outcome: &str) {
        let Phase::Away(Handoff::Transfer(d)) = self.phase else {
            return;
        };
        self.phase = Phase::Prompt;
        self.failures = Failures::default();
        let dest = self.menus.destination(d);
        let (name, action) = (dest.name.clone(), dest.on_failure.clone());
        self.set_variable("transfer".to_string(), format!("{name}: {outcome}"));
        self.act(now, action);
    }

    /// The caller left a queue without reaching an agent (it waited `max_wait`, the queue
    /// refused it or sent it out): the queue's `on_timeout` acts (a way out: goto, hangup,
    /// voicemail, transfer or another queue). The variable `queue` records what happened
    /// (`support: timeout`). A no-op unless the run was handed to a queue.
    pub fn queue_left(&mut self, now: Instant, outcome: &str) {
        let Phase::Away(Handoff::Queue(q, _)) = self.phase else {
            return;
        };
        self.phase = Phase::Prompt;
        self.failures = Failures::default();
        let queue = self.menus.queue(q);
        let (name, action) = (queue.name.clone(), queue.on_timeout.clone());
        self.set_variable("queue".to_string(), format!("{name}: {outcome}"));
        self.act(now, action);
    }

    /// The caller pressed one of the queue's exit keys: `action` acts as if chosen in the
    /// menu the queue was chosen from; the variable `queue` records it (`support: key 2`).
    /// A no-op unless the run was handed to a queue.
    pub fn queue_exit(&mut self, now: Instant, key: ivr_audio::Digit, action: Action) {
        let Phase::Away(Handoff::Queue(q, _)) = self.phase else {
            return;
        };
        self.phase = Phase::Prompt;
        self.failures = Failures::default();
        let name = self.menus.queue(q).name.clone();
        self.set_variable(
            "queue".to_string(),
            format!("{name}: key {}", key.as_char()),
        );
        self.act(now, action);
    }

    /// The steps through the menus so far (see [`crate::path`]).
    pub fn path(&self) -> &crate::path::Path {
        &self.path
    }

    /// The path, for the engine to take its steps when the call leaves the menus or ends.
    pub fn path_mut(&mut self) -> &mut crate::path::Path {
        &mut self.path
    }

    /// Every variable, in the order first set.
    pub fn variables(&self) -> &[(String, String)] {
        &self.vars
    }

    /// A variable (set by a collecting menu or a `set:` action).
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The caller's language (an index into [`Menus::languages`]).
    pub fn language(&self) -> usize {
        self.language
    }

    /// A prompt of this run's snapshot, in the caller's language.
    pub fn prompt(&self, id: PromptId) -> &ivr_audio::Prompt {
        self.menus.prompt_in(id, self.language)
    }

    /// Tell the run what the wall clock said at `now`; schedules are evaluated from it.
    pub fn set_wall_clock(&mut self, now: Instant, wall: std::time::SystemTime) {
        self.clock = Some((
            now,
            Timestamp::try_from(wall).unwrap_or(Timestamp::UNIX_EPOCH),
        ));
    }

    /// The call is connected: enter the entry menu.
    pub fn start(&mut self, now: Instant) {
        if self.phase == Phase::NotStarted {
            self.enter(now, self.menu);
        }
    }

    /// The caller pressed a key.
    ///
    /// While a prompt plays, what happens depends on the prompt (see `docs/menus.md`): an
    /// interruptible prompt stops and the key acts at once; a non-interruptible one plays
    /// on, and the key is either kept until it ends (type-ahead) or dropped.
    pub fn handle_digit(&mut self, now: Instant, digit: Digit) {
        match self.phase {
            Phase::Prompt | Phase::Notice => {
                let current = self.playing.front().map(|p| self.menus.prompt_options(*p));
                match current {
                    Some(o) if !o.interruptible => {
                        if o.type_ahead {
                            self.typed.push_back(digit);
                        }
                    }
                    _ => {
                        self.path.interrupted();
                        if !self.playing.is_empty() {
                            self.playing.clear();
                            self.outputs.push_back(MenuOutput::StopPlayback);
                        }
                        self.select(now, digit);
                    }
                }
            }
            Phase::Collect(_) => self.select(now, digit),
            Phase::Dialing(_) => self.dial(now, digit),
            Phase::NotStarted | Phase::Goodbye | Phase::Done | Phase::Away(_) => {}
        }
    }

    /// The prompt asked for by the last [`MenuOutput::Play`] has been played.
    pub fn handle_playback_finished(&mut self, now: Instant) {
        // Prompts of a sequence are played one at a time, so each can have its own rules.
        self.playing.pop_front();
        if matches!(self.phase, Phase::Prompt | Phase::Notice) && !self.typed.is_empty() {
            // Keys typed ahead during a non-interruptible prompt act now, in order.
            if self.phase == Phase::Prompt && self.playing.is_empty() {
                self.path.heard();
            } else {
                self.path.interrupted();
            }
            self.playing.clear();
            let keys: Vec<Digit> = self.typed.drain(..).collect();
            for d in keys {
                self.handle_digit(now, d);
            }
            return;
        }
        if let Some(next) = self.playing.front() {
            self.outputs.push_back(MenuOutput::Play(vec![*next]));
            return;
        }
        match self.phase {
            Phase::Prompt => {
                self.path.heard();
                let timeout = self.menus.menu(self.menu).timeout;
                self.phase = Phase::Collect(now + timeout);
            }
            Phase::Notice => self.play_menu_prompt(now),
            Phase::Goodbye => self.hang_up(),
            _ => {}
        }
    }

    /// Time passed; fires the key timeout if due.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Collect(deadline) if now >= deadline => {
                self.path.close(crate::path::StepEnd::Timeout);
                let prompts = self.menus.menu(self.menu).no_input.clone();
                self.fail(now, Failure::NoInput, prompts);
            }
            // A pause in dialling ends it: what was dialled is not a code (codes act at once).
            Phase::Dialing(deadline) if now >= deadline => self.end_dialing(now),
            _ => {}
        }
    }

    /// The next output.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<MenuOutput> {
        self.outputs.pop_front()
    }

    /// When [`MenuRun::handle_timeout`] next has work.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Collect(deadline) | Phase::Dialing(deadline) => Some(deadline),
            _ => None,
        }
    }

    fn enter(&mut self, now: Instant, menu: MenuId) {
        // Router menus pass the caller on at once; the compiler refuses router cycles, and
        // the bound below only guards that promise.
        let mut menu = menu;
        for _ in 0..=self.menus.len() {
            let Some(router) = self.menus.menu(menu).router else {
                break;
            };
            self.outputs.push_back(MenuOutput::Entered(menu));
            let state = self
                .menus
                .schedule(router.schedule)
                .state_at(self.wall(now));
            menu = match state {
                State::Open => router.open,
                State::Closed => router.closed,
                State::Holiday => router.holiday,
            };
        }
        self.menu = menu;
        self.failures = Failures::default();
        self.outputs.push_back(MenuOutput::Entered(menu));
        self.play_menu_prompt(now);
    }

    /// The wall-clock time at `now`, from the anchor given by [`MenuRun::set_wall_clock`]
    /// (the Unix epoch if none was given).
    fn wall(&self, now: Instant) -> Timestamp {
        let (at, wall) = self.clock.unwrap_or((now, Timestamp::UNIX_EPOCH));
        let elapsed =
            jiff::SignedDuration::try_from(now.saturating_duration_since(at)).unwrap_or_default();
        wall.checked_add(elapsed).unwrap_or(wall)
    }

    fn play_menu_prompt(&mut self, now: Instant) {
        self.path.open(now, self.menu);
        // Read-outs become one prompt per digit, or per number word in the caller's language.
        let mut prompts = Vec::new();
        for item in &self.menus.menu(self.menu).prompt {
            match item {
                PromptItem::Fixed(id) => prompts.push(*id),
                PromptItem::Digits(var) => {
                    let value = self.variable(var).unwrap_or_default();
                    prompts.extend(value.chars().filter_map(|c| self.menus.digit_prompt(c)));
                }
                PromptItem::Number(var) => {
                    let value = self.variable(var).unwrap_or_default();
                    let rule = self
                        .menus
                        .languages()
                        .get(self.language)
                        .and_then(|l| crate::numbers::Rule::for_language(l))
                        .unwrap_or(crate::numbers::Rule::English);
                    prompts.extend(
                        crate::numbers::tokens(rule, value)
                            .iter()
                            .filter_map(|t| self.menus.find_prompt(t)),
                    );
                }
            }
        }
        if prompts.is_empty() {
            self.phase = Phase::Prompt;
            self.handle_playback_finished(now);
        } else {
            self.play(&prompts);
            self.phase = Phase::Prompt;
        }
    }

    fn play(&mut self, ids: &[PromptId]) {
        self.typed.clear();
        self.playing = ids.iter().copied().collect();
        if let Some(first) = self.playing.front() {
            self.outputs.push_back(MenuOutput::Play(vec![*first]));
        }
    }

    fn select(&mut self, now: Instant, digit: Digit) {
        let menu = self.menus.menu(self.menu);
        if menu.collect.is_some() {
            // A collecting menu: the first digit starts the entry.
            self.dialed.clear();
            return self.dial(now, digit);
        }
        let action = menu.options[digit.event_code() as usize].clone();
        match action {
            Some(a) => {
                self.path.close(crate::path::StepEnd::Key(digit));
                self.act(now, a)
            }
            // The first digit of an extension: dialling starts (see the rule in the compiler).
            None if menu.extensions.iter().any(|(code, _)| code[0] == digit) => {
                self.dialed.clear();
                self.dialed.push(digit);
                self.phase = Phase::Dialing(now + menu.inter_digit_timeout);
            }
            None => {
                let prompts = menu.invalid.clone();
                self.path.close(crate::path::StepEnd::Invalid(Some(digit)));
                self.fail(now, Failure::Invalid, prompts);
            }
        }
    }

    /// The next digit of an extension; `#` ends dialling early.
    fn dial(&mut self, now: Instant, digit: Digit) {
        let menu = self.menus.menu(self.menu);
        if let Some(c) = &menu.collect {
            if digit == c.terminator {
                return self.end_dialing(now);
            }
            self.dialed.push(digit);
            if self.dialed.len() >= c.max {
                return self.end_dialing(now);
            }
            self.phase = Phase::Dialing(now + menu.inter_digit_timeout);
            return;
        }
        if digit == Digit::Pound {
            return self.end_dialing(now);
        }
        self.dialed.push(digit);
        let menu = self.menus.menu(self.menu);
        if let Some((_, action)) = menu
            .extensions
            .iter()
            .find(|(code, _)| *code == self.dialed)
        {
            let action = action.clone();
            let code: String = self.dialed.iter().map(|d| d.as_char()).collect();
            self.path.close(crate::path::StepEnd::Extension(code));
            self.dialed.clear();
            return self.act(now, action);
        }
        if menu
            .extensions
            .iter()
            .any(|(code, _)| code.starts_with(&self.dialed))
        {
            self.phase = Phase::Dialing(now + menu.inter_digit_timeout);
        } else {
            self.end_dialing(now);
        }
    }

    /// Dialling ended: for a collecting menu, the entry is kept if long enough; for
    /// extensions, not reaching a code is an invalid entry.
    fn end_dialing(&mut self, now: Instant) {
        if let Some(c) = &self.menus.menu(self.menu).collect
            && self.dialed.len() >= c.min
        {
            let value: String = self.dialed.iter().map(|d| d.as_char()).collect();
            let (into, then) = (c.into.clone(), c.then.clone());
            self.set_variable(into, value);
            self.dialed.clear();
            self.path.close(crate::path::StepEnd::Entry);
            return self.act(now, then);
        }
        self.dialed.clear();
        self.path.close(crate::path::StepEnd::Invalid(None));
        let prompts = self.menus.menu(self.menu).invalid.clone();
        self.fail(now, Failure::Invalid, prompts);
    }

    fn set_variable(&mut self, name: String, value: String) {
        match self.vars.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.vars.push((name, value)),
        }
    }

    fn act(&mut self, now: Instant, action: Action) {
        match action {
            Action::Language(lang, then) => {
                self.language = lang;
                self.act(now, *then);
            }
            Action::Set(vars, then) => {
                for (k, v) in vars {
                    self.set_variable(k, v);
                }
                self.act(now, *then);
            }
            Action::Survey(survey, then) => {
                self.survey_asked = Some(survey);
                self.act(now, *then);
            }
            Action::Goto(m) => {
                if self.history.len() == HISTORY {
                    self.history.remove(0);
                }
                self.history.push(self.menu);
                self.enter(now, m);
            }
            Action::Back => match self.history.pop() {
                Some(m) => self.enter(now, m),
                None => self.play_menu_prompt(now),
            },
            Action::Voicemail(_) | Action::Queue(..) | Action::Transfer(_) => {
                let h = action.handoff().expect("a handoff verb");
                self.survey = self.survey_asked.take();
                self.playing.clear();
                self.typed.clear();
                self.phase = Phase::Away(h);
                self.outputs.push_back(MenuOutput::Handoff(h));
            }
            Action::Repeat => self.play_menu_prompt(now),
            Action::Play(prompts) => self.notice(now, &prompts),
            Action::Hangup(prompts) if prompts.is_empty() => self.hang_up(),
            Action::Hangup(prompts) => {
                self.play(&prompts);
                self.phase = Phase::Goodbye;
            }
        }
    }

    fn notice(&mut self, now: Instant, prompts: &[PromptId]) {
        if prompts.is_empty() {
            self.play_menu_prompt(now);
        } else {
            self.path.open(now, self.menu);
            self.play(prompts);
            self.phase = Phase::Notice;
        }
    }

    /// A timeout or an invalid key: replay, or run `on_failure` once the retries are spent.
    fn fail(&mut self, now: Instant, kind: Failure, prompts: Vec<PromptId>) {
        let menu = self.menus.menu(self.menu);
        let (count, limit) = match kind {
            Failure::NoInput => (&mut self.failures.no_input, menu.retries.no_input),
            Failure::Invalid => (&mut self.failures.invalid, menu.retries.invalid),
        };
        *count += 1;
        if *count > limit {
            let action = menu.on_failure.clone();
            self.failures = Failures::default();
            self.act(now, action);
        } else {
            self.notice(now, &prompts);
        }
    }

    fn hang_up(&mut self) {
        self.phase = Phase::Done;
        self.outputs.push_back(MenuOutput::Hangup);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::compile;
    use crate::compile::tests::{YAML, loader};
    use std::time::Duration;

    fn run() -> MenuRun {
        MenuRun::new(Arc::new(compile(YAML, &mut loader).unwrap()))
    }

    /// Outputs as short strings: "play:welcome.wav", "stop", "hangup", "enter:main".
    fn drain(r: &mut MenuRun) -> Vec<String> {
        let outs: Vec<_> = std::iter::from_fn(|| r.poll_output()).collect();
        outs.into_iter()
            .map(|o| match o {
                MenuOutput::Play(p) => format!(
                    "play:{}",
                    p.iter()
                        .map(|p| r.menus().prompt(*p).name())
                        .collect::<Vec<_>>()
                        .join("+")
                ),
                MenuOutput::StopPlayback => "stop".into(),
                MenuOutput::Hangup => "hangup".into(),
                MenuOutput::Entered(m) => format!("enter:{}", r.menus().menu(m).name),
                MenuOutput::Handoff(h) => format!("away:{}", r.menus().handoff_name(h)),
            })
            .collect()
    }

    #[test]
    fn goto_and_back_with_barge_in() {
        let t0 = crate::test_epoch();
        let mut r = run();
        r.start(t0);
        assert_eq!(drain(&mut r), ["enter:main", "play:welcome.wav"]);
        r.handle_digit(t0, Digit::D1); // barge-in during the welcome
        assert_eq!(drain(&mut r), ["stop", "enter:sales", "play:sales.wav"]);
        r.handle_playback_finished(t0);
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(5)));
        r.handle_digit(t0, Digit::Star);
        assert_eq!(drain(&mut r), ["enter:main", "play:welcome.wav"]);
    }

    #[test]
    fn play_option_returns_to_the_menu() {
        let t0 = crate::test_epoch();
        let mut r = run();
        r.start(t0);
        r.handle_playback_finished(t0);
        drain(&mut r);
        r.handle_digit(t0, Digit::D2);
        // a sequence is asked for one prompt at a time
        assert_eq!(drain(&mut r), ["play:sales.wav"]);
        r.handle_playback_finished(t0);
        assert_eq!(drain(&mut r), ["play:sales.wav"]);
        r.handle_playback_finished(t0);
        assert_eq!(drain(&mut r), ["play:welcome.wav"]);
    }

    /// The barge-in truth table of docs/menus.md, one row per test case: a key pressed while
    /// the first prompt of `[notice, welcome]` plays.
    #[test]
    fn barge_in_truth_table() {
        let rows = [
            // (interruptible, type_ahead, outputs right after the key, outputs when the notice ends)
            (
                "true",
                "keep",
                vec!["stop", "enter:sales", "play:sales.wav"],
                vec![],
            ),
            (
                "true",
                "discard",
                vec!["stop", "enter:sales", "play:sales.wav"],
                vec![],
            ),
            (
                "false",
                "keep",
                vec![],
                vec!["enter:sales", "play:sales.wav"],
            ),
            ("false", "discard", vec![], vec!["play:welcome.wav"]),
        ];
        for (interruptible, type_ahead, at_key, at_end) in rows {
            let yaml = YAML
                .replace("  welcome: welcome.wav\n", &format!("  welcome: welcome.wav\n  notice: {{ file: oops.wav, interruptible: {interruptible}, type_ahead: {type_ahead} }}\n"))
                .replace("    prompt: welcome\n", "    prompt: [notice, welcome]\n");
            let mut r = MenuRun::new(Arc::new(compile(&yaml, &mut loader).unwrap()));
            let t0 = crate::test_epoch();
            r.start(t0);
            assert_eq!(drain(&mut r), ["enter:main", "play:oops.wav"]);
            r.handle_digit(t0, Digit::D1);
            assert_eq!(
                drain(&mut r),
                at_key,
                "interruptible {interruptible}, type_ahead {type_ahead}: at the key"
            );
            r.handle_playback_finished(t0);
            assert_eq!(
                drain(&mut r),
                at_end,
                "interruptible {interruptible}, type_ahead {type_ahead}: at the end"
            );
        }
    }

    #[test]
    fn typed_ahead_keys_act_in_order() {
        let yaml = YAML
            .replace(
                "  welcome: welcome.wav\n",
                "  welcome: welcome.wav\n  notice: { file: oops.wav, interruptible: false }\n",
            )
            .replace("    prompt: welcome\n", "    prompt: [notice, welcome]\n");
        let mut r = MenuRun::new(Arc::new(compile(&yaml, &mut loader).unwrap()));
        let t0 = crate::test_epoch();
        r.start(t0);
        drain(&mut r);
        r.handle_digit(t0, Digit::D1); // kept: sales
        r.handle_digit(t0, Digit::Star); // kept: from sales, back to main
        assert!(drain(&mut r).is_empty());
        r.handle_playback_finished(t0);
        assert_eq!(
            drain(&mut r),
            [
                "enter:sales",
                "play:sales.wav",
                "stop",
                "enter:main",
                "play:oops.wav"
            ]
        );
    }

    /// Each presentation of a menu is a step with what ended it and whether its prompt was
    /// heard out; a path keeps at most MAX_STEPS steps and says it was cut.
    #[test]
    fn the_path_records_steps_up_to_its_bound() {
        use crate::path::{Heard, MAX_STEPS, StepEnd};
        let t0 = crate::test_epoch();
        let mut r = run();
        r.start(t0);
        r.handle_playback_finished(t0); // welcome heard out
        let t1 = t0 + Duration::from_secs(1);
        r.handle_digit(t1, Digit::D5); // invalid
        let t2 = t1 + Duration::from_secs(1);
        r.handle_digit(t2, Digit::D1); // during the oops notice: goto sales
        let t3 = t2 + Duration::from_secs(1);
        r.handle_digit(t3, Digit::D0); // repeat, during the sales prompt
        let got: Vec<_> = r
            .path()
            .steps()
            .iter()
            .map(|s| {
                (
                    r.menus().menu(s.menu).name.clone(),
                    s.at,
                    s.heard,
                    s.end.clone(),
                )
            })
            .collect();
        let main = "main".to_string();
        let sales = "sales".to_string();
        assert_eq!(
            got,
            [
                (
                    main.clone(),
                    t0,
                    Heard::Full,
                    Some(StepEnd::Invalid(Some(Digit::D5)))
                ),
                (main, t1, Heard::Interrupted, Some(StepEnd::Key(Digit::D1))),
                (
                    sales.clone(),
                    t2,
                    Heard::Interrupted,
                    Some(StepEnd::Key(Digit::D0))
                ),
                (sales, t3, Heard::Unfinished, None),
            ]
        );
        for _ in 0..2 * MAX_STEPS {
            r.handle_digit(t3, Digit::D0);
        }
        assert_eq!(r.path().steps().len(), MAX_STEPS);
        assert!(r.path().truncated());
        assert_eq!(r.path_mut().take().len(), MAX_STEPS);
        assert!(r.path().steps().is_empty() && r.path().truncated());
    }

    #[test]
    fn retries_then_on_failure() {
        let t0 = crate::test_epoch();
        let mut r = run();
        r.start(t0);
        r.handle_playback_finished(t0);
        drain(&mut r);
        r.handle_digit(t0, Digit::D5);
        assert_eq!(drain(&mut r), ["play:oops.wav"]);
        r.handle_playback_finished(t0);
        assert_eq!(drain(&mut r), ["play:welcome.wav"]);
        r.handle_playback_finished(t0);
        // a timeout: no no_input prompt configured, so the menu replays
        let deadline = r.poll_timeout().unwrap();
        r.handle_timeout(deadline - Duration::from_millis(1));
        assert!(drain(&mut r).is_empty(), "early wake-ups do nothing");
        r.handle_timeout(deadline);
        assert_eq!(drain(&mut r), ["play:welcome.wav"]);
        r.handle_playback_finished(deadline);
        // the second timeout still replays (retries: 2 allows two of each kind)...
        r.handle_timeout(deadline + Duration::from_secs(3));
        assert_eq!(drain(&mut r), ["play:welcome.wav"]);
        r.handle_playback_finished(deadline + Duration::from_secs(3));
        // ...and the third runs on_failure
        r.handle_timeout(deadline + Duration::from_secs(6));
        assert_eq!(drain(&mut r), ["play:bye.wav"]);
        r.handle_digit(deadline, Digit::D1);
        assert!(
            drain(&mut r).is_empty(),
            "keys during the goodbye are ignored"
        );
        r.handle_playback_finished(deadline);
        assert_eq!(drain(&mut r), ["hangup"]);
        assert!(r.is_done());
    }

    #[test]
    fn timeouts_and_invalid_keys_have_separate_limits() {
        let yaml = YAML.replace("retries: 2", "retries: { no_input: 0, invalid: 3 }");
        let mut r = MenuRun::new(Arc::new(compile(&yaml, &mut loader).unwrap()));
        let t0 = crate::test_epoch();
        r.start(t0);
        r.handle_playback_finished(t0);
        for _ in 0..3 {
            r.handle_digit(t0, Digit::D5); // invalid: three replays allowed
            r.handle_playback_finished(t0); // oops
            r.handle_playback_finished(t0); // welcome
        }
        drain(&mut r);
        let deadline = r.poll_timeout().unwrap();
        r.handle_timeout(deadline); // the first timeout is already one too many
        assert_eq!(drain(&mut r), ["play:bye.wav"]);
    }

    /// A router entry menu sends the caller by the schedule's state at the wall-clock time.
    #[test]
    fn router_menus_follow_the_schedule() {
        let yaml = YAML.replace("entry: main\n", "entry: start\nschedules:\n  office:\n    timezone: Europe/Paris\n    hours:\n      mon-fri: [\"09:00-18:00\"]\n    holidays: [2026-12-25]\n")
            + "  start:\n    schedule: office\n    open: main\n    closed: sales\n";
        let menus = Arc::new(compile(&yaml, &mut loader).unwrap());
        for (when, expected) in [
            ("2026-11-24T10:00:00Z", "main"),  // Tuesday 11:00 in Paris: open
            ("2026-11-24T20:00:00Z", "sales"), // Tuesday 21:00: closed
            ("2026-12-25T10:00:00Z", "sales"), // Christmas: holiday, which defaults to closed
        ] {
            let t0 = crate::test_epoch();
            let mut r = MenuRun::new(menus.clone());
            let ts: Timestamp = when.parse().unwrap();
            r.set_wall_clock(t0, crate::scenario::to_system_time(ts).unwrap());
            r.start(t0);
            let out = drain(&mut r);
            assert_eq!(out[0], "enter:start", "{when}");
            assert_eq!(out[1], format!("enter:{expected}"), "{when}");
        }
    }

    #[test]
    fn a_language_switch_changes_the_recordings_played() {
        let yaml = "entry: main\nlanguages: { enabled: [fr, en] }\nprompts:\n  hello: { fr: welcome.wav, en: sales.wav }\nmenus:\n  main:\n    prompt: hello\n    options:\n      \"2\": { language: en }\n";
        let mut r = MenuRun::new(Arc::new(compile(yaml, &mut loader).unwrap()));
        let t0 = crate::test_epoch();
        r.start(t0);
        assert_eq!(drain(&mut r), ["enter:main", "play:welcome.wav"]);
        assert_eq!(r.language(), 0);
        r.handle_digit(t0, Digit::D2);
        drain(&mut r);
        assert_eq!(r.language(), 1);
        // the replay asks for the same prompt; the run resolves it in English
        let PromptItem::Fixed(hello) = r.menus().menu(r.current()).prompt[0] else {
            panic!()
        };
        assert_eq!(r.prompt(hello).name(), "sales.wav");
    }

    #[test]
    fn extensions_are_dialled_after_their_first_digit() {
        let yaml = YAML.replace("      \"9\": { hangup: bye }\n", "      \"9\": { hangup: bye }\n    extensions:\n      \"301\": { goto: sales }\n      \"302\": { play: bye }\n    inter_digit_timeout: 2\n");
        let menus = Arc::new(compile(&yaml, &mut loader).unwrap());
        let t0 = crate::test_epoch();
        let mut r = MenuRun::new(menus.clone());
        r.start(t0);
        drain(&mut r);
        r.handle_digit(t0, Digit::D3); // during the prompt: stops it, dialling starts
        assert_eq!(drain(&mut r), ["stop"]);
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(2)));
        r.handle_digit(t0, Digit::D0);
        r.handle_digit(t0, Digit::D1);
        assert_eq!(drain(&mut r), ["enter:sales", "play:sales.wav"]);
        // a pause in the middle of a code is an invalid entry
        let mut r = MenuRun::new(menus.clone());
        r.start(t0);
        r.handle_playback_finished(t0);
        drain(&mut r);
        r.handle_digit(t0, Digit::D3);
        r.handle_digit(t0, Digit::D0);
        r.handle_timeout(t0 + Duration::from_secs(2));
        assert_eq!(drain(&mut r), ["play:oops.wav"]);
        // a digit no code continues with, or # before the end, is invalid at once
        let mut r = MenuRun::new(menus);
        r.start(t0);
        r.handle_playback_finished(t0);
        drain(&mut r);
        r.handle_digit(t0, Digit::D3);
        r.handle_digit(t0, Digit::Pound);
        assert_eq!(drain(&mut r), ["play:oops.wav"]);
    }

    #[test]
    fn collecting_menus_keep_digits_in_a_variable() {
        let yaml = YAML.replace("  sales:\n    prompt: [sales]\n    options:\n      \"*\": { goto: main }\n      \"0\": { repeat: true }\n", "  sales:\n    prompt: [sales]\n    collect: { into: account, min: 3, max: 5 }\n    then: { goto: main }\n    invalid: oops\n");
        let menus = Arc::new(compile(&yaml, &mut loader).unwrap());
        let t0 = crate::test_epoch();
        let enter_sales = |menus: &Arc<Menus>| {
            let mut r = MenuRun::new(menus.clone());
            r.start(t0);
            r.handle_digit(t0, Digit::D1);
            drain(&mut r);
            r
        };
        // ended by the terminator
        let mut r = enter_sales(&menus);
        for d in [Digit::D4, Digit::D2, Digit::D7, Digit::Pound] {
            r.handle_digit(t0, d);
        }
        assert_eq!(r.variable("account"), Some("427"));
        assert_eq!(drain(&mut r), ["stop", "enter:main", "play:welcome.wav"]);
        // ended by reaching max
        let mut r = enter_sales(&menus);
        for d in [Digit::D1, Digit::D2, Digit::D3, Digit::D4, Digit::D5] {
            r.handle_digit(t0, d);
        }
        assert_eq!(r.variable("account"), Some("12345"));
        // ended by a pause, long enough
        let mut r = enter_sales(&menus);
        r.handle_playback_finished(t0);
        for d in [Digit::D9, Digit::D8, Digit::D7] {
            r.handle_digit(t0, d);
        }
        r.handle_timeout(t0 + Duration::from_secs(3));
        assert_eq!(r.variable("account"), Some("987"));
        // too short: invalid
        let mut r = enter_sales(&menus);
        r.handle_playback_finished(t0);
        r.handle_digit(t0, Digit::D9);
        r.handle_digit(t0, Digit::Pound);
        assert_eq!(r.variable("account"), None);
        assert_eq!(drain(&mut r), ["play:oops.wav"]);
    }

    #[test]
    fn collected_digits_are_read_back() {
        let mut yaml = YAML.replace("  sales:\n    prompt: [sales]\n    options:\n      \"*\": { goto: main }\n      \"0\": { repeat: true }\n", "  sales:\n    prompt: [sales]\n    collect: { into: number, min: 2, max: 3 }\n    then: { goto: confirm }\n  confirm:\n    prompt: [oops, { digits: number }]\n    options:\n      \"1\": { goto: main }\n");
        yaml = yaml.replace("  oops: oops.wav\n", "  oops: oops.wav\n  digit_0: bye.wav\n  digit_1: bye.wav\n  digit_2: sales.wav\n  digit_3: bye.wav\n  digit_4: bye.wav\n  digit_5: bye.wav\n  digit_6: bye.wav\n  digit_7: bye.wav\n  digit_8: bye.wav\n  digit_9: welcome.wav\n");
        let mut r = MenuRun::new(Arc::new(compile(&yaml, &mut loader).unwrap()));
        let t0 = crate::test_epoch();
        r.start(t0);
        r.handle_digit(t0, Digit::D1);
        for d in [Digit::D9, Digit::D2, Digit::Pound] {
            r.handle_digit(t0, d);
        }
        let out = drain(&mut r);
        assert_eq!(out[out.len() - 2..], ["enter:confirm", "play:oops.wav"]);
        r.handle_playback_finished(t0);
        assert_eq!(drain(&mut r), ["play:welcome.wav"], "digit 9");
        r.handle_playback_finished(t0);
        assert_eq!(drain(&mut r), ["play:sales.wav"], "digit 2");
        // without the digit prompts, a read-out is refused
        let broken = yaml.replace("  digit_3: bye.wav\n", "");
        let e = compile(&broken, &mut loader).unwrap_err();
        assert!(
            e[0].to_string().contains("a read-out without digit_3"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn hangup_option_plays_goodbye_then_hangs_up() {
        let t0 = crate::test_epoch();
        let mut r = run();
        r.start(t0);
        drain(&mut r);
        r.handle_digit(t0, Digit::D9);
        assert_eq!(drain(&mut r), ["stop", "play:bye.wav"]);
        r.handle_playback_finished(t0);
        assert_eq!(drain(&mut r), ["hangup"]);
    }

    #[test]
    fn back_retraces_set_stores_and_a_handoff_ends_the_run() {
        let yaml = r#"
entry: main
prompts: { welcome: welcome.wav, sales: sales.wav }
mailboxes: { sales: { greeting: sales } }
menus:
  main:
    prompt: welcome
    options:
      "1": { goto: sub }
      "2": { back: true }
  sub:
    prompt: sales
    options:
      "1": { goto: deeper }
      "*": { back: true }
  deeper:
    prompt: sales
    options:
      "*": { back: true }
      "3": { set: { dept: sales, priority: 2 }, voicemail: sales }
"#;
        let t0 = crate::test_epoch();
        let menus = crate::compile::tests::compile_test(yaml).unwrap();
        let mut r = MenuRun::new(Arc::new(menus));
        r.start(t0);
        r.handle_digit(t0, Digit::D2); // back with nowhere to go: replay
        assert_eq!(
            drain(&mut r),
            ["enter:main", "play:welcome.wav", "stop", "play:welcome.wav"]
        );
        r.handle_digit(t0, Digit::D1);
        r.handle_digit(t0, Digit::D1);
        r.handle_digit(t0, Digit::Star);
        r.handle_digit(t0, Digit::Star);
        let entered: Vec<String> = drain(&mut r)
            .into_iter()
            .filter(|o| o.starts_with("enter:"))
            .collect();
        assert_eq!(
            entered,
            ["enter:sub", "enter:deeper", "enter:sub", "enter:main"]
        );
        r.handle_digit(t0, Digit::D1);
        r.handle_digit(t0, Digit::D1);
        drain(&mut r);
        r.handle_digit(t0, Digit::D3);
        assert_eq!(drain(&mut r), ["stop", "away:voicemail sales"]);
        assert_eq!(r.variable("dept"), Some("sales"));
        assert_eq!(r.variable("priority"), Some("2"));
        assert!(r.handed_off().is_some() && !r.is_done());
        // Nothing more happens to a call that left the menus.
        r.handle_digit(t0, Digit::Star);
        r.handle_timeout(t0 + Duration::from_secs(60));
        assert!(drain(&mut r).is_empty());
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn numbers_are_read_in_the_callers_language() {
        use crate::numbers::{Rule, words};
        // Every French word has a French recording, every English word an English one.
        let mut prompts = String::new();
        let fr = words(Rule::French);
        let en = words(Rule::English);
        let mut all: Vec<&String> = fr.iter().chain(&en).collect();
        all.sort();
        all.dedup();
        for w in all {
            let mut versions = Vec::new();
            if fr.contains(w) {
                versions.push(format!("fr: fr_{w}.wav"));
            }
            if en.contains(w) {
                versions.push(format!("en: en_{w}.wav"));
            }
            prompts.push_str(&format!("  {w}: {{ {} }}\n", versions.join(", ")));
        }
        let yaml = format!(
            r#"
entry: main
languages: {{ enabled: [fr, en] }}
prompts:
{prompts}  hi: welcome.wav
menus:
  main:
    prompt: hi
    options:
      "1": {{ set: {{ n: 71 }}, goto: say }}
      "2": {{ language: en, set: {{ n: 71 }}, goto: say }}
  say:
    prompt: [{{ number: n }}]
    options: {{ "*": {{ back: true }} }}
"#
        );
        let menus = Arc::new(compile(&yaml, &mut loader).unwrap());
        let t0 = crate::test_epoch();
        let heard = |key: Digit| {
            let mut r = MenuRun::new(menus.clone());
            r.start(t0);
            r.handle_digit(t0, key);
            let _ = drain(&mut r);
            let lang = r.language();
            r.playing
                .iter()
                .map(|p| r.menus().prompt_in(*p, lang).name().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            heard(Digit::D1),
            ["fr_number_60.wav", "fr_number_and.wav", "fr_number_11.wav"]
        );
        assert_eq!(heard(Digit::D2), ["en_number_70.wav", "en_number_1.wav"]);
    }

    #[test]
    fn a_number_read_out_names_the_words_it_lacks() {
        let yaml = r#"
entry: main
languages: { enabled: [fr, de] }
prompts: { hi: welcome.wav, number_0: zero.wav }
menus:
  main:
    prompt: [hi, { number: n }]
    options: { "1": { hangup: hi } }
"#;
        let e: Vec<String> = compile(yaml, &mut loader)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("7:18: menus.main.prompt.1: a number read-out in 'fr' needs the prompts number_1, number_2"), "{}", e[0]);
        assert!(
            e[1].contains("'a number read-out in 'de'' is not one of languages with number rules"),
            "{}",
            e[1]
        );
    }
}
