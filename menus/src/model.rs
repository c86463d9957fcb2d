//! The compiled, immutable model of a config that every call walks: menus, prompts,
//! actions, the routes into them, and where calls leave them (mailboxes, queues,
//! transfer destinations), all in [`Menus`]. [`compile`](crate::compile::compile) builds it.

use crate::error::{CompileError, Loc};
use ivr_audio::{Digit, Prompt};
use std::time::Duration;

/// Index of a menu in [`Menus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MenuId(pub(crate) usize);

impl MenuId {
    /// The `i`-th menu of a snapshot, in the order of the file.
    pub fn nth(i: usize) -> MenuId {
        MenuId(i)
    }
}

/// Index of a prompt in [`Menus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PromptId(pub(crate) usize);

/// What a key press (or an exhausted retry count) does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Go to another menu.
    Goto(MenuId),
    /// Play prompts, then replay the current menu.
    Play(Vec<PromptId>),
    /// Play prompts (possibly none), then hang up.
    Hangup(Vec<PromptId>),
    /// Replay the current menu.
    Repeat,
    /// Go back to the menu the caller came from (replay the current one if there is none).
    Back,
    /// Leave a voicemail callback request in this mailbox.
    Voicemail(MailboxId),
    /// Wait in this queue for an agent, with this priority (0 to [`MAX_PRIORITY`]; higher
    /// is served first, equal priorities in arrival order).
    Queue(QueueId, u8),
    /// Transfer the call to this destination.
    Transfer(DestinationId),
    /// Switch the call's language (an index into [`Menus::languages`]), then do the rest.
    Language(usize, Box<Action>),
    /// Set variables (name, value), then do the rest.
    Set(Vec<(String, String)>, Box<Action>),
    /// Ask for this survey after the bridged call the rest (a queue or a transfer) leads
    /// to, when the agent or the destination hangs up ([`crate::survey`]).
    Survey(crate::survey::SurveyId, Box<Action>),
}

impl Action {
    /// What the action does once language switches and variables are set aside.
    pub fn verb(&self) -> &Action {
        match self {
            Action::Language(_, a) | Action::Set(_, a) | Action::Survey(_, a) => a.verb(),
            a => a,
        }
    }

    /// The verb's name as written in a config (`goto`, `repeat`...).
    pub fn verb_name(&self) -> &'static str {
        match self.verb() {
            Action::Goto(_) => "goto",
            Action::Play(_) => "play",
            Action::Hangup(_) => "hangup",
            Action::Repeat => "repeat",
            Action::Back => "back",
            Action::Voicemail(_) => "voicemail",
            Action::Queue(..) => "queue",
            Action::Transfer(_) => "transfer",
            Action::Language(..) | Action::Set(..) | Action::Survey(..) => "language",
        }
    }

    /// Where the call leaves the menus with this action, if it does.
    pub fn handoff(&self) -> Option<Handoff> {
        match self.verb() {
            Action::Voicemail(m) => Some(Handoff::Voicemail(*m)),
            Action::Queue(q, p) => Some(Handoff::Queue(*q, *p)),
            Action::Transfer(d) => Some(Handoff::Transfer(*d)),
            _ => None,
        }
    }
}

/// One entry of a menu's `prompt:` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptItem {
    /// A named prompt.
    Fixed(PromptId),
    /// A variable read out digit by digit with the `digit_0` ... `digit_9` prompts.
    Digits(String),
    /// A variable read out as a number in the caller's language, with the `number_*`
    /// prompts (see [`crate::numbers`]).
    Number(String),
}

/// One compiled menu.
#[derive(Debug, Clone)]
pub struct Menu {
    /// Its name in the config.
    pub name: String,
    /// What is played on entry and on every retry.
    pub prompt: Vec<PromptItem>,
    /// How long to wait for a key after the prompt ends.
    pub timeout: Duration,
    /// How many replays timeouts and invalid keys earn before `on_failure`.
    pub retries: Retries,
    /// Played on an invalid key, before the replay.
    pub invalid: Vec<PromptId>,
    /// Played on a timeout, before the replay.
    pub no_input: Vec<PromptId>,
    /// The action of each key, in [`Digit::ALL`] order.
    pub options: [Option<Action>; 16],
    /// Multi-digit codes dialled directly (extensions), each with its action. No code starts
    /// with an option key or is the start of another code (the compiler refuses both).
    pub extensions: Vec<(Vec<Digit>, Action)>,
    /// Longest pause between the digits of an extension (or of collected digits).
    pub inter_digit_timeout: Duration,
    /// For a menu that collects digits (an account number, a phone number) instead of
    /// offering options.
    pub collect: Option<Collect>,
    /// What happens when the retries are used up.
    pub on_failure: Action,
    /// Where the menu is defined, for messages.
    pub at: Loc,
    /// The included file it is defined in (`None`: the main file).
    pub file: Option<String>,
    /// For a router menu (`schedule:`), where it sends the call; it plays nothing itself.
    pub router: Option<Router>,
}

impl Menu {
    /// Every action of the menu: options, extensions, a collect's `then`, and `on_failure`.
    pub fn actions(&self) -> impl Iterator<Item = &Action> {
        self.options
            .iter()
            .flatten()
            .chain(self.extensions.iter().map(|(_, a)| a))
            .chain(self.collect.iter().map(|c| &c.then))
            .chain(std::iter::once(&self.on_failure))
    }
}

/// Digits to collect into a variable, then an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collect {
    /// The variable the digits go into.
    pub into: String,
    /// Fewest digits accepted.
    pub min: usize,
    /// Most digits; reaching it ends the entry.
    pub max: usize,
    /// The key that ends the entry early (`#` by default).
    pub terminator: Digit,
    /// What follows a valid entry.
    pub then: Action,
}

/// A menu that only routes by a schedule's state at the moment the caller reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Router {
    /// Index of the schedule in [`Menus::schedule`].
    pub schedule: usize,
    /// Where to go while open.
    pub open: MenuId,
    /// Where to go while closed.
    pub closed: MenuId,
    /// Where to go on a holiday (defaults to `closed`).
    pub holiday: MenuId,
}

/// How a prompt reacts to keys pressed while it plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptOptions {
    /// A key stops the prompt and acts at once (default).
    pub interruptible: bool,
    /// For a prompt that is not interruptible: keys pressed meanwhile are kept and act when
    /// it ends (default), or dropped.
    pub type_ahead: bool,
}

impl Default for PromptOptions {
    fn default() -> Self {
        PromptOptions {
            interruptible: true,
            type_ahead: true,
        }
    }
}

/// Separate retry limits for the two kinds of failure (each counted on its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retries {
    /// Replays after a timeout (no key pressed).
    pub no_input: u32,
    /// Replays after a key with no option.
    pub invalid: u32,
}

/// A mailbox, by index into [`crate::Menus::mailbox`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MailboxId(pub usize);

/// The highest priority a `queue:` action may give a caller (`queue: { name, priority }`);
/// the default is 0.
pub const MAX_PRIORITY: u8 = 9;

/// A queue, by index into [`crate::Menus::queue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueueId(pub usize);

/// A transfer destination, by index into [`crate::Menus::destination`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DestinationId(pub usize);

/// Where a call went when it left the menus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Handoff {
    /// To leave a message and a number to call back.
    Voicemail(MailboxId),
    /// To wait for an agent, with a priority (higher is served first).
    Queue(QueueId, u8),
    /// To another party, by REFER or bridged.
    Transfer(DestinationId),
}

/// How a mailbox gets the number to call back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackNumber {
    /// Offer the caller ID ("press 1 to be called back on this number, or enter another
    /// followed by #"), read back for confirmation. The default.
    Offer,
    /// Always ask the caller to enter a number.
    Ask,
    /// Take the caller ID without asking.
    CallerId,
    /// Ask for no number: a message only.
    None,
}

/// A voicemail mailbox: where callback requests are left.
#[derive(Debug, Clone)]
pub struct Mailbox {
    /// Its name (staff are granted mailboxes by name).
    pub name: String,
    /// Played first ("leave your message after the tone").
    pub greeting: Vec<PromptId>,
    /// How the number to call back is obtained.
    pub callback: CallbackNumber,
    /// Which entered numbers are accepted (the whole number must match).
    pub number_pattern: regex::Regex,
    /// The longest message; recording stops there.
    pub max_length: Duration,
    /// The key that ends the message.
    pub finish_key: Digit,
    /// This much silence ends the message (`None`: silence never does).
    pub silence: Option<Duration>,
    /// Whether a beep marks the start of recording.
    pub beep: bool,
    /// Whether the caller may listen to the message and keep, re-record or cancel it.
    pub review: bool,
    /// Played once the request is saved, before hanging up.
    pub saved: Vec<PromptId>,
    /// Addresses that get each new request by e-mail, with its recording attached.
    pub email: Vec<String>,
    /// Where it is defined.
    pub at: Loc,
}

/// How a queue picks the agent to ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Ring every free agent; the first to answer takes the call.
    RingAll,
    /// Take turns, starting after the agent who had the last call.
    RoundRobin,
    /// The agent idle for the longest time (the default).
    LongestIdle,
    /// The agent who has taken the fewest calls.
    FewestCalls,
    /// Any free agent, at random.
    Random,
    /// Always the first free agent in the order agents are listed (top-down).
    Linear,
}

/// When a queue counts as having nobody to answer (`join_when_empty`, `leave_when_empty`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmptyRule {
    /// Never: callers join and stay whatever the agents do (the default).
    #[default]
    Never,
    /// No member agent is logged in.
    NoneLoggedIn,
    /// No member agent is logged in, unpaused and reachable.
    NoneActive,
}

/// A call queue: callers wait with music for an agent.
#[derive(Debug, Clone)]
pub struct Queue {
    /// Its name (agents join queues by name).
    pub name: String,
    /// How agents are picked.
    pub strategy: Strategy,
    /// Played in a loop while the caller waits (none: ringing tone).
    pub music: Vec<PromptId>,
    /// Played every `announce_every` while waiting ("all our agents are busy").
    pub announcement: Vec<PromptId>,
    /// Played to the agent who answers, before the caller is put through ("a call from the
    /// sales queue"); none: bridged at once.
    pub whisper: Vec<PromptId>,
    /// How often the announcement interrupts the music.
    pub announce_every: Duration,
    /// The longest a caller waits before `on_timeout`.
    pub max_wait: Duration,
    /// How long one agent rings before the next is tried.
    pub agent_timeout: Duration,
    /// What happens after `max_wait`, or when the queue refuses or sends out the caller
    /// (default: hang up).
    pub on_timeout: Action,
    /// The agent's after-call work time before its next offer (default 0).
    pub wrap_up: Duration,
    /// Callers are refused at entry (and go to `on_timeout`) when this holds.
    pub join_when_empty: EmptyRule,
    /// Waiting callers are sent to `on_timeout` when this holds.
    pub leave_when_empty: EmptyRule,
    /// After this many unanswered offers in a row an agent is paused (0: never; default 3).
    pub max_no_answer: u32,
    /// Whether announcements tell the caller's position (default true).
    pub announce_position: bool,
    /// Whether announcements tell the estimated wait (default true).
    pub announce_wait: bool,
    /// Keys a waiting caller may press, each with what it does (`exit_keys:`).
    pub exit_keys: Vec<(ivr_audio::Digit, ExitKey)>,
    /// Queued callbacks (`callback:`): needed by an exit key `callback`.
    pub callback: Option<QueueCallback>,
    /// Where it is defined.
    pub at: Loc,
}

/// What a key pressed while waiting in a queue does.
#[derive(Debug, Clone)]
pub enum ExitKey {
    /// Ask for a callback that keeps the caller's place: the number dialogue, then hang up.
    Callback,
    /// Leave the queue and act, as a menu option would (`voicemail`, `goto`, `hangup`,
    /// `transfer`, `queue`).
    Action(Action),
}

/// A queue's callback settings (`callback:`).
#[derive(Debug, Clone)]
pub struct QueueCallback {
    /// Further attempts after the first failed call to the caller (default 2, up to 10).
    pub retries: u32,
    /// The wait before each further attempt (default 60 s, 10 s to 1 hour).
    pub retry_delay: Duration,
    /// The destination (trunk or proxy) the call to the caller goes through: the caller's
    /// number becomes the user part of its URI.
    pub via: DestinationId,
    /// Which numbers may be called back (the whole number must match; default: `+` and
    /// 3-15 digits). Only digits and a leading `+` can ever be called.
    pub number_pattern: regex::Regex,
    /// If not empty, a number must start with one of these (toll fraud: `["0", "+331"]`).
    pub allowed_prefixes: Vec<String>,
    /// Played once the request is taken, before the engine hangs up ("we will call you
    /// back"); none: hang up at once.
    pub confirmed: Vec<PromptId>,
}

impl QueueCallback {
    /// Whether `number` may be called back: digits with an optional leading `+`, matching
    /// the pattern and one of the allowed prefixes (when any are set).
    pub fn allows(&self, number: &str) -> bool {
        let digits = number.strip_prefix('+').unwrap_or(number);
        !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && self.number_pattern.is_match(number)
            && (self.allowed_prefixes.is_empty()
                || self
                    .allowed_prefixes
                    .iter()
                    .any(|p| number.starts_with(p.as_str())))
    }
}

/// How a call is handed to a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferMode {
    /// Blind transfer: the caller's phone is told to call the destination (RFC 3515 REFER).
    Refer,
    /// The engine calls the destination and bridges the two calls.
    Bridge,
}

/// A party calls can be transferred to (an external call center, a mobile phone).
#[derive(Debug, Clone)]
pub struct Destination {
    /// Its name.
    pub name: String,
    /// Its SIP, SIPS or tel URI.
    pub uri: String,
    /// REFER (default) or bridged.
    pub mode: TransferMode,
    /// For a bridged transfer, how long it may ring.
    pub ring_timeout: Duration,
    /// What the caller's menu does when a bridged transfer fails (busy, no answer, refused),
    /// acted on in the menu the transfer was chosen from. Default: replay that menu.
    pub on_failure: Action,
    /// Credentials for a destination (or its proxy) that challenges the INVITE
    /// (RFC 3261 §22.2): (user name, password).
    pub credentials: Option<(String, String)>,
    /// An outbound proxy the INVITE goes through (a pre-loaded route, RFC 3261 §8.1.2).
    pub proxy: Option<String>,
    /// Where it is defined.
    pub at: Loc,
}

/// A compiled config: every menu and every prompt, validated and loaded.
#[derive(Debug, Clone)]
pub struct Menus {
    pub(crate) entry: MenuId,
    pub(crate) menus: Vec<Menu>,
    pub(crate) prompts: Vec<Prompt>,
    pub(crate) prompt_names: Vec<String>,
    pub(crate) prompt_options: Vec<PromptOptions>,
    pub(crate) warnings: Vec<CompileError>,
    pub(crate) entries: Vec<(String, MenuId)>,
    pub(crate) callers: Vec<CallerRule>,
    pub(crate) schedules: Vec<crate::schedule::Schedule>,
    pub(crate) variants: Vec<Vec<(Option<usize>, usize)>>,
    pub(crate) languages: Languages,
    pub(crate) mailboxes: Vec<Mailbox>,
    pub(crate) queues: Vec<Queue>,
    pub(crate) destinations: Vec<Destination>,
    pub(crate) agents: Vec<crate::agents::Agent>,
    pub(crate) agent_codes: crate::agents::AgentCodes,
    pub(crate) surveys: Vec<crate::survey::Survey>,
}

/// Where a new call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Start in this menu.
    Menu(MenuId),
    /// Refuse the call before answering (603 Decline).
    Reject,
}

/// One caller routing rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallerRule {
    pub(crate) patterns: Vec<String>,
    pub(crate) route: Route,
}

impl Menus {
    /// The menu a call starts in.
    pub fn entry(&self) -> MenuId {
        self.entry
    }

    /// The menu a call to `called` (the Request-URI user part) starts in: its entry point if
    /// one is configured, else the default entry.
    pub fn entry_for(&self, called: Option<&str>) -> MenuId {
        called
            .and_then(|c| self.entries.iter().find(|(n, _)| n == c))
            .map(|(_, m)| *m)
            .unwrap_or(self.entry)
    }

    /// Where a call from `caller` (its caller ID) to `called` goes: the first `callers:` rule
    /// that matches, else the called number's entry point, else the default entry.
    pub fn route(&self, called: Option<&str>, caller: Option<&str>) -> Route {
        let caller = caller.unwrap_or("anonymous");
        self.callers
            .iter()
            .find(|r| r.patterns.iter().any(|p| glob(p, caller)))
            .map(|r| r.route)
            .unwrap_or_else(|| Route::Menu(self.entry_for(called)))
    }

    /// The other ways into the menus besides the default entry, labelled for graphs:
    /// entry points by called number, and caller rules that route to a menu.
    pub fn entry_points(&self) -> Vec<(String, MenuId)> {
        let by_number = self
            .entries
            .iter()
            .map(|(n, m)| (format!("called {n}"), *m));
        let by_caller = self.callers.iter().filter_map(|r| match r.route {
            Route::Menu(m) => Some((format!("caller {}", r.patterns.join(" | ")), m)),
            Route::Reject => None,
        });
        by_number.chain(by_caller).collect()
    }

    /// A mailbox by id.
    pub fn mailbox(&self, id: MailboxId) -> &Mailbox {
        &self.mailboxes[id.0]
    }

    /// Every mailbox, in the order defined.
    pub fn mailboxes(&self) -> &[Mailbox] {
        &self.mailboxes
    }

    /// A queue by id.
    pub fn queue(&self, id: QueueId) -> &Queue {
        &self.queues[id.0]
    }

    /// Every queue, in the order defined.
    pub fn queues(&self) -> &[Queue] {
        &self.queues
    }

    /// A survey by id.
    pub fn survey(&self, id: crate::survey::SurveyId) -> &crate::survey::Survey {
        &self.surveys[id.0]
    }

    /// Every survey, in the order defined.
    pub fn surveys(&self) -> &[crate::survey::Survey] {
        &self.surveys
    }

    /// A transfer destination by id.
    pub fn destination(&self, id: DestinationId) -> &Destination {
        &self.destinations[id.0]
    }

    /// Every transfer destination, in the order defined.
    pub fn destinations(&self) -> &[Destination] {
        &self.destinations
    }

    /// Every agent, in the order defined.
    pub fn agents(&self) -> &[crate::agents::Agent] {
        &self.agents
    }

    /// The numbers agents dial to log in, out and pause (`agent_codes:`).
    pub fn agent_codes(&self) -> &crate::agents::AgentCodes {
        &self.agent_codes
    }

    /// The realm agents' passwords were hashed for (they share one), if any agent registers.
    pub fn agents_realm(&self) -> Option<&str> {
        self.agents.iter().find_map(|a| match &a.reach {
            crate::agents::Reach::Registered(c) => Some(c.realm.as_str()),
            crate::agents::Reach::Static(_) => None,
        })
    }

    /// The name of where a handoff goes: `voicemail sales`, `queue support`...
    pub fn handoff_name(&self, h: Handoff) -> String {
        match h {
            Handoff::Voicemail(m) => format!("voicemail {}", self.mailbox(m).name),
            Handoff::Queue(q, _) => format!("queue {}", self.queue(q).name),
            Handoff::Transfer(d) => format!("transfer {}", self.destination(d).name),
        }
    }

    /// A schedule by index (see [`Router::schedule`]).
    pub fn schedule(&self, i: usize) -> &crate::schedule::Schedule {
        &self.schedules[i]
    }

    /// A menu by id.
    pub fn menu(&self, id: MenuId) -> &Menu {
        &self.menus[id.0]
    }

    /// A prompt by id.
    pub fn prompt(&self, id: PromptId) -> &Prompt {
        self.prompt_in(id, 0)
    }

    /// A prompt's recording in language `lang` (an index into [`Menus::languages`]): that
    /// language's version, else its fallbacks', else the one for every language. (The
    /// compiler makes sure one of these exists for every enabled language.)
    pub fn prompt_in(&self, id: PromptId, lang: usize) -> &Prompt {
        let versions = &self.variants[id.0];
        let found = self
            .languages
            .chain(lang)
            .find_map(|l| versions.iter().find(|(v, _)| *v == Some(l)))
            .or_else(|| versions.iter().find(|(v, _)| v.is_none()))
            .or(versions.first());
        // Every named prompt has at least one version (the compiler guarantees it).
        &self.prompts[found.map(|(_, i)| *i).unwrap_or(0)]
    }

    /// The enabled languages, default first (empty when the config names none).
    pub fn languages(&self) -> &[String] {
        &self.languages.names
    }

    /// Things that are allowed but probably wrong (an unreachable menu), for `ivr check`.
    pub fn warnings(&self) -> &[CompileError] {
        &self.warnings
    }

    /// How a prompt reacts to keys.
    pub fn prompt_options(&self, id: PromptId) -> PromptOptions {
        self.prompt_options[id.0]
    }

    /// The prompt that says one digit (`digit_0` ... `digit_9`), for read-outs.
    pub fn digit_prompt(&self, digit: char) -> Option<PromptId> {
        self.find_prompt(&format!("digit_{digit}"))
    }

    /// A prompt by its name in the config.
    pub fn find_prompt(&self, name: &str) -> Option<PromptId> {
        self.prompt_names
            .iter()
            .position(|n| n == name)
            .map(PromptId)
    }

    /// A prompt's name in the config (`goodbye_en`).
    pub fn prompt_name(&self, id: PromptId) -> &str {
        &self.prompt_names[id.0]
    }

    /// A menu by name.
    pub fn find(&self, name: &str) -> Option<MenuId> {
        self.menus.iter().position(|m| m.name == name).map(MenuId)
    }

    /// Number of menus.
    pub fn len(&self) -> usize {
        self.menus.len()
    }

    /// Whether there are no menus (never true for a compiled config).
    pub fn is_empty(&self) -> bool {
        self.menus.is_empty()
    }
}

/// Renders text in a voice to WAV bytes, or says why it cannot.
pub type Speaker<'a> = dyn FnMut(&str, &str) -> Result<Vec<u8>, String> + 'a;

/// A built-in recording of a prompt (name, language tag), as WAV bytes, if there is one.
pub type Builtin<'a> = dyn FnMut(&str, &str) -> Option<Vec<u8>> + 'a;

/// `*` matches any run of characters; everything else matches itself.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|i| tail.is_char_boundary(*i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

/// The languages a config speaks: `languages: { enabled: [fr, en], fallback: { fr-CA: [fr] } }`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Languages {
    /// Enabled languages; the first is the default.
    pub(crate) names: Vec<String>,
    /// For each enabled language, the languages to try after it.
    pub(crate) fallback: Vec<Vec<usize>>,
}

impl Languages {
    /// The order in which versions are looked for: the language, then its fallbacks. There
    /// is no silent fallback to the default language: a caller who chose English never hears
    /// French unless the config says so.
    pub(crate) fn chain(&self, lang: usize) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(lang).chain(self.fallback.get(lang).into_iter().flatten().copied())
    }
}
