//! A call's path through the menus, step by step, for its call record (issue #12).
//!
//! A [`Step`] is one presentation of a menu: it opens when the caller enters the menu (or
//! the menu starts again after an invalid key, a timeout, a repeat or a notice) and closes
//! with what the caller did ([`StepEnd`]). [`MenuRun`](crate::MenuRun) records the steps
//! where it decides; the engine takes them when the call leaves the menus or ends. Memory is
//! bounded: at most [`MAX_STEPS`] steps are kept, and [`Path::truncated`] says if more came.

use crate::model::MenuId;
use ivr_audio::Digit;
use std::time::Instant;

/// Most steps a path keeps (a caller looping in the menus for hours stays bounded).
pub const MAX_STEPS: usize = 256;

/// How much of the menu's prompt the caller heard before the step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Played to the end (or the menu has no prompt).
    Full,
    /// A key stopped it (barge-in), or came before it started again.
    Interrupted,
    /// Still playing when the step ended otherwise (the caller hung up during it).
    Unfinished,
}

impl Heard {
    /// The name stored and exported: `full`, `interrupted`, `unfinished`.
    pub fn as_str(self) -> &'static str {
        match self {
            Heard::Full => "full",
            Heard::Interrupted => "interrupted",
            Heard::Unfinished => "unfinished",
        }
    }
}

/// What ended a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepEnd {
    /// An option key that acted (goto, back, a hand-off, a hang-up, a repeat...).
    Key(Digit),
    /// An extension code of the menu, dialled in full (codes come from the config).
    Extension(String),
    /// A collecting menu's entry was taken (its digits are not recorded).
    Entry,
    /// A key that does nothing in the menu (`None`: a dialled entry that matched no code,
    /// or too short an entry; its digits are not recorded).
    Invalid(Option<Digit>),
    /// No key before the menu's timeout.
    Timeout,
    /// The caller hung up during the step.
    HungUp,
    /// The call ended during the step for another reason (hang-up by the engine, error,
    /// shutdown).
    Ended,
}

impl StepEnd {
    /// The outcome's name: `key`, `extension`, `entry`, `invalid`, `timeout`, `hangup`,
    /// `ended`.
    pub fn outcome(&self) -> &'static str {
        match self {
            StepEnd::Key(_) => "key",
            StepEnd::Extension(_) => "extension",
            StepEnd::Entry => "entry",
            StepEnd::Invalid(_) => "invalid",
            StepEnd::Timeout => "timeout",
            StepEnd::HungUp => "hangup",
            StepEnd::Ended => "ended",
        }
    }

    /// The key or code pressed, if any (`1`, `*`, `301`).
    pub fn key(&self) -> Option<String> {
        match self {
            StepEnd::Key(d) | StepEnd::Invalid(Some(d)) => Some(d.as_char().to_string()),
            StepEnd::Extension(code) => Some(code.clone()),
            _ => None,
        }
    }
}

/// One presentation of a menu and what the caller did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The menu.
    pub menu: MenuId,
    /// When it began.
    pub at: Instant,
    /// How much of the menu's prompt was heard.
    pub heard: Heard,
    /// What ended it (`None` while open).
    pub end: Option<StepEnd>,
}

/// The steps of one call so far (bounded by [`MAX_STEPS`]).
#[derive(Debug, Clone, Default)]
pub struct Path {
    steps: Vec<Step>,
    /// Whether the last step is still open (it was kept and has no end yet).
    open: bool,
    truncated: bool,
}

impl Path {
    /// Begin a step in `menu` unless one is open.
    pub(crate) fn open(&mut self, now: Instant, menu: MenuId) {
        if self.open {
            return;
        }
        if self.steps.len() >= MAX_STEPS {
            self.truncated = true;
            return;
        }
        self.steps.push(Step {
            menu,
            at: now,
            heard: Heard::Unfinished,
            end: None,
        });
        self.open = true;
    }

    /// The menu's prompt was heard to the end.
    pub(crate) fn heard(&mut self) {
        if let Some(s) = self.current() {
            s.heard = Heard::Full;
        }
    }

    /// A key came while the prompt played (or before it started again).
    pub(crate) fn interrupted(&mut self) {
        if let Some(s) = self.current()
            && s.heard == Heard::Unfinished
        {
            s.heard = Heard::Interrupted;
        }
    }

    /// End the open step, if any, with `end`.
    pub fn close(&mut self, end: StepEnd) {
        if let Some(s) = self.current() {
            s.end = Some(end);
            self.open = false;
        }
    }

    fn current(&mut self) -> Option<&mut Step> {
        if self.open {
            self.steps.last_mut()
        } else {
            None
        }
    }

    /// The steps so far, oldest first.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Whether steps were left out past [`MAX_STEPS`].
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Take the steps recorded so far (an open step is taken as it is and no longer
    /// updated); the path goes on empty, remembering whether it was truncated.
    pub fn take(&mut self) -> Vec<Step> {
        self.open = false;
        std::mem::take(&mut self.steps)
    }
}
