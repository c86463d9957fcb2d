//! [`Deposit`]: one caller leaving a callback request, as a sans-IO state machine.
//!
//! The flow, for a mailbox (see `docs/voicemail.md`):
//!
//! 1. **The number to call back**, as the mailbox says: offer the caller ID ("press 1 to
//!    be called back on the number you are calling from, or enter another number followed
//!    by #"), ask for one, take the caller ID, or none. An entered number must match the
//!    mailbox's pattern; it is read back and confirmed (1 yes, 2 enter again; silence
//!    accepts it). After three failed entries the caller ID is kept if it is a valid
//!    number, else the request has no number: the message still counts.
//! 2. **The greeting**, then a beep.
//! 3. **The message**: recorded until the finish key, the maximum length, the configured
//!    silence, or a hang-up.
//! 4. **Review** if the mailbox asks for it: 1 keep, 2 record again, 3 cancel.
//! 5. **Saving**: the owner stores the request and reports back; the caller hears the
//!    mailbox's `saved` prompt (or an apology if storing failed), then the call ends.
//!
//! A caller who hangs up keeps what they gave: the message recorded so far and the number
//! entered so far (a request with a number and no message is kept too).
//!
//! Inputs: [`Deposit::start`], [`Deposit::handle_digit`], [`Deposit::handle_audio`],
//! [`Deposit::handle_playback_finished`], [`Deposit::handle_timeout`],
//! [`Deposit::handle_hangup`], [`Deposit::handle_stored`], [`Deposit::handle_store_failed`].
//! Outputs: [`Action`] from [`Deposit::poll_action`], deadlines from
//! [`Deposit::poll_timeout`].

use ivr_audio::Digit;
use ivr_menus::handoff::{CallbackNumber, Mailbox};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Something to play, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Say {
    /// The mailbox's greeting.
    Greeting,
    /// The mailbox's prompt after saving.
    Saved,
    /// The record beep.
    Beep,
    /// One digit (a number read back).
    Digit(Digit),
    /// A built-in voicemail prompt.
    System(SystemPrompt),
}

/// The voicemail prompts every mailbox shares (built in, or overridden in the config by
/// their [`SystemPrompt::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SystemPrompt {
    /// "To be called back on the number you are calling from, press 1. To give another
    /// number, enter it now, followed by the pound key."
    OfferCallerId,
    /// "Please enter the number we should call you back on, followed by the pound key."
    EnterNumber,
    /// "You entered"
    YouEntered,
    /// "If this is right, press 1. To enter it again, press 2."
    ConfirmNumber,
    /// "Sorry, that number is not valid."
    InvalidNumber,
    /// "To keep your message, press 1. To record it again, press 2. To cancel it, press 3."
    Review,
    /// "Your message has been deleted. Goodbye."
    Cancelled,
    /// "Sorry, your message could not be saved. Please call again later."
    Sorry,
}

impl SystemPrompt {
    /// Every one of them.
    pub const ALL: [SystemPrompt; 8] = [
        SystemPrompt::OfferCallerId,
        SystemPrompt::EnterNumber,
        SystemPrompt::YouEntered,
        SystemPrompt::ConfirmNumber,
        SystemPrompt::InvalidNumber,
        SystemPrompt::Review,
        SystemPrompt::Cancelled,
        SystemPrompt::Sorry,
    ];

    /// The prompt name a config uses to record its own version.
    pub fn name(self) -> &'static str {
        match self {
            SystemPrompt::OfferCallerId => "vm_offer_caller_id",
            SystemPrompt::EnterNumber => "vm_enter_number",
            SystemPrompt::YouEntered => "vm_you_entered",
            SystemPrompt::ConfirmNumber => "vm_confirm_number",
            SystemPrompt::InvalidNumber => "vm_invalid_number",
            SystemPrompt::Review => "vm_review",
            SystemPrompt::Cancelled => "vm_cancelled",
            SystemPrompt::Sorry => "vm_sorry",
        }
    }
}

/// What the owner must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Replace whatever plays with these, in order, and report when all have played.
    Play(Vec<Say>),
    /// Stop playing (a key interrupted).
    StopPlayback,
    /// Start recording the caller (a new recording; any earlier one was discarded).
    StartRecording,
    /// Stop recording and keep it.
    StopRecording,
    /// Stop recording, if it runs, and delete the recording.
    DiscardRecording,
    /// Play the recording back (review), then report playback finished.
    PlayRecording,
    /// The request is complete: store it (with the kept recording, if any) and report with
    /// [`Deposit::handle_stored`] or [`Deposit::handle_store_failed`].
    Submit(Submission),
    /// End the call.
    Hangup,
}

/// What is stored for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The number to call back, if the caller gave or confirmed one.
    pub callback_number: Option<String>,
    /// Whether a recording was kept.
    pub has_message: bool,
    /// Whether the caller hung up before the end (the common case; kept anyway).
    pub hung_up: bool,
}

/// How many number entries a caller gets.
const NUMBER_ATTEMPTS: u32 = 3;
/// Time for the first key after a number prompt, and between keys.
const FIRST_KEY: Duration = Duration::from_secs(8);
const NEXT_KEY: Duration = Duration::from_secs(5);
/// Longest number accepted (E.164 has 15 digits).
const MAX_DIGITS: usize = 20;
/// Time to confirm a read-back number; silence accepts it.
const CONFIRM: Duration = Duration::from_secs(6);
/// Time to answer the review prompt before the message is kept.
const REVIEW: Duration = Duration::from_secs(8);
/// How long to wait for the store's answer.
const STORE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    NotStarted,
    /// A number prompt plays (keys start the entry).
    NumberPrompt {
        offer: bool,
    },
    /// Waiting for the first key after a number prompt.
    NumberWait {
        offer: bool,
        until: Instant,
    },
    /// Keys of a number are coming.
    Entering {
        until: Instant,
    },
    /// The invalid-number notice plays; the prompt follows.
    InvalidNotice,
    /// The entered number is read back, then the confirm prompt plays.
    ReadBack,
    /// Waiting for 1 (yes) or 2 (again).
    Confirm {
        until: Instant,
    },
    /// Greeting and beep play; recording starts when they end.
    Greeting,
    /// Recording.
    Recording {
        until: Instant,
        last_voice: Instant,
    },
    /// The recording plays back (review).
    Replay,
    /// The review prompt plays, or its answer is awaited.
    Review {
        until: Option<Instant>,
    },
    /// Waiting for the store.
    Saving {
        until: Instant,
    },
    /// A last prompt plays; hang up when it ends.
    Goodbye,
    /// Over.
    Done,
}

/// One caller leaving a callback request.
#[derive(Debug)]
pub struct Deposit {
    callback: CallbackNumber,
    pattern: regex::Regex,
    max_length: Duration,
    finish_key: Digit,
    silence: Option<Duration>,
    beep: bool,
    review: bool,
    /// The caller ID, if it is a valid callback number.
    caller_id: Option<String>,
    phase: Phase,
    /// Digits of the number being entered.
    entry: String,
    /// Failed entries so far.
    attempts: u32,
    /// The confirmed (or accepted) number.
    number: Option<String>,
    /// Whether a recording exists (started and not discarded).
    recording: bool,
    /// Only the number step (a queued callback): no greeting, no message.
    number_only: bool,
    actions: VecDeque<Action>,
}

impl Deposit {
    /// A deposit into `mailbox` by a caller whose caller ID is `caller_id`.
    pub fn new(mailbox: &Mailbox, caller_id: Option<&str>) -> Deposit {
        let caller_id = caller_id
            .filter(|c| mailbox.number_pattern.is_match(c))
            .map(str::to_string);
        Deposit {
            callback: mailbox.callback,
            pattern: mailbox.number_pattern.clone(),
            max_length: mailbox.max_length,
            finish_key: mailbox.finish_key,
            silence: mailbox.silence,
            beep: mailbox.beep,
            review: mailbox.review,
            caller_id,
            phase: Phase::NotStarted,
            entry: String::new(),
            attempts: 0,
            number: None,
            recording: false,
            number_only: false,
            actions: VecDeque::new(),
        }
    }

    /// Only the number dialogue, for a queued callback: offer the caller ID if it matches
    /// `pattern` ("press 1 to be called back on the number you are calling from, or enter
    /// another"), else ask for a number; a typed number is read back and confirmed. It ends
    /// with [`Action::Submit`] (no message; `callback_number` is `None` when the caller gave
    /// no valid number in three tries and has no valid caller ID). Hanging up submits
    /// nothing.
    pub fn number_dialogue(pattern: &regex::Regex, caller_id: Option<&str>) -> Deposit {
        Deposit {
            callback: CallbackNumber::Offer,
            pattern: pattern.clone(),
            max_length: Duration::ZERO,
            finish_key: Digit::Pound,
            silence: None,
            beep: false,
            review: false,
            caller_id: caller_id
                .filter(|c| pattern.is_match(c))
                .map(str::to_string),
            phase: Phase::NotStarted,
            entry: String::new(),
            attempts: 0,
            number: None,
            recording: false,
            number_only: true,
            actions: VecDeque::new(),
        }
    }

    /// Begin: the number step, or straight to the greeting.
    pub fn start(&mut self, now: Instant) {
        if self.phase != Phase::NotStarted {
            return;
        }
        match self.callback {
            CallbackNumber::Offer if self.caller_id.is_some() => self.number_prompt(true),
            CallbackNumber::Offer | CallbackNumber::Ask => self.number_prompt(false),
            CallbackNumber::CallerId => {
                self.number = self.caller_id.clone();
                self.greeting();
            }
            CallbackNumber::None => self.greeting(),
        }
        let _ = now;
    }

    /// The number confirmed or accepted so far.
    pub fn number(&self) -> Option<&str> {
        self.number.as_deref()
    }

    /// Whether the deposit is over (the call can end).
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Whether the caller's audio is being recorded now.
    pub fn is_recording(&self) -> bool {
        matches!(self.phase, Phase::Recording { .. })
    }

    /// The caller pressed a key.
    pub fn handle_digit(&mut self, now: Instant, digit: Digit) {
        match self.phase.clone() {
            Phase::NumberPrompt { offer } | Phase::NumberWait { offer, .. } => {
                if matches!(self.phase, Phase::NumberPrompt { .. }) {
                    self.actions.push_back(Action::StopPlayback);
                }
                if offer && digit == Digit::D1 {
                    self.number = self.caller_id.clone();
                    return self.greeting();
                }
                self.entry.clear();
                self.enter_digit(now, digit);
            }
            Phase::Entering { .. } => self.enter_digit(now, digit),
            Phase::InvalidNotice | Phase::ReadBack => {
                // Keys during these notices start over / answer early.
                self.actions.push_back(Action::StopPlayback);
                if self.phase == Phase::ReadBack {
                    self.phase = Phase::Confirm { until: now };
                    self.handle_digit(now, digit);
                } else {
                    self.entry.clear();
                    self.enter_digit(now, digit);
                }
            }
            Phase::Confirm { .. } => match digit {
                Digit::D1 => {
                    self.number = Some(std::mem::take(&mut self.entry));
                    self.greeting();
                }
                Digit::D2 => {
                    self.entry.clear();
                    self.number_prompt(false);
                }
                _ => {}
            },
            Phase::Greeting => {
                // The caller is ready: skip to the beep and record.
                self.actions.push_back(Action::StopPlayback);
                self.start_recording(now);
            }
            Phase::Recording { .. } => {
                if digit == self.finish_key {
                    self.end_recording(now);
                }
            }
            Phase::Replay => {
                self.actions.push_back(Action::StopPlayback);
                self.review_prompt();
                self.review_key(now, digit);
            }
            Phase::Review { .. } => self.review_key(now, digit),
            Phase::NotStarted | Phase::Saving { .. } | Phase::Goodbye | Phase::Done => {}
        }
    }

    /// One frame of the caller's audio arrived; `voice` says whether it is louder than
    /// silence (the owner measures).
    pub fn handle_audio(&mut self, now: Instant, voice: bool) {
        if let Phase::Recording { last_voice, .. } = &mut self.phase
            && voice
        {
            *last_voice = now;
        }
    }

    /// What was asked by the last [`Action::Play`] or [`Action::PlayRecording`] has played.
    pub fn handle_playback_finished(&mut self, now: Instant) {
        match self.phase {
            Phase::NumberPrompt { offer } => {
                self.phase = Phase::NumberWait {
                    offer,
                    until: now + FIRST_KEY,
                }
            }
            Phase::InvalidNotice => self.number_prompt(false),
            Phase::ReadBack => {
                self.phase = Phase::Confirm {
                    until: now + CONFIRM,
                }
            }
            Phase::Greeting => self.start_recording(now),
            Phase::Replay => self.review_prompt(),
            Phase::Review { until: None } => {
                self.phase = Phase::Review {
                    until: Some(now + REVIEW),
                }
            }
            Phase::Goodbye => self.hang_up(),
            _ => {}
        }
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if now < deadline {
            return;
        }
        match self.phase {
            Phase::NumberWait { .. } => self.failed_entry(),
            Phase::Entering { .. } => self.end_entry(),
            // Silence accepts the number read back.
            Phase::Confirm { .. } => {
                self.number = Some(std::mem::take(&mut self.entry));
                self.greeting();
            }
            Phase::Recording { .. } => self.end_recording(now),
            Phase::Review { .. } => self.submit(now, false),
            Phase::Saving { .. } => self.goodbye(SystemPrompt::Sorry),
            _ => {}
        }
    }

    /// The caller hung up: keep what they gave.
    pub fn handle_hangup(&mut self, now: Instant) {
        if self.number_only {
            self.phase = Phase::Done;
            return;
        }
        match self.phase {
            Phase::Done | Phase::Saving { .. } | Phase::Goodbye => {}
            Phase::Entering { .. } | Phase::Confirm { .. } | Phase::ReadBack => {
                // A number typed but not confirmed is still the best lead.
                if self.number.is_none() && self.pattern.is_match(&self.entry) {
                    self.number = Some(std::mem::take(&mut self.entry));
                }
                self.submit_on_hangup(now);
            }
            _ => self.submit_on_hangup(now),
        }
        self.phase = Phase::Done;
    }

    /// The request was stored.
    pub fn handle_stored(&mut self, _now: Instant) {
        if let Phase::Saving { .. } = self.phase {
            self.actions.push_back(Action::Play(vec![Say::Saved]));
            self.phase = Phase::Goodbye;
        }
    }

    /// Storing failed (disk full, database down), or the recording could not be written.
    pub fn handle_store_failed(&mut self, _now: Instant) {
        match self.phase {
            Phase::Done => {}
            Phase::Recording { .. } => {
                // The recording could not be written (the writer removed it): stop, and
                // the caller hears an apology.
                self.actions.push_back(Action::StopRecording);
                self.goodbye(SystemPrompt::Sorry);
            }
            _ => self.goodbye(SystemPrompt::Sorry),
        }
    }

    /// The next action.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Deposit::handle_timeout`] next has work.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::NumberWait { until, .. }
            | Phase::Entering { until }
            | Phase::Confirm { until }
            | Phase::Saving { until }
            | Phase::Review { until: Some(until) } => Some(*until),
            Phase::Recording { until, last_voice } => Some(match self.silence {
                Some(s) => (*until).min(*last_voice + s),
                None => *until,
            }),
            _ => None,
        }
    }

    fn number_prompt(&mut self, offer: bool) {
        let prompt = if offer {
            SystemPrompt::OfferCallerId
        } else {
            SystemPrompt::EnterNumber
        };
        self.actions
            .push_back(Action::Play(vec![Say::System(prompt)]));
        self.phase = Phase::NumberPrompt { offer };
    }

    fn enter_digit(&mut self, now: Instant, digit: Digit) {
        if digit == Digit::Pound {
            return self.end_entry();
        }
        if let Some(c) = digit.as_char().to_digit(10) {
            self.entry.push(char::from_digit(c, 10).unwrap_or('0'));
        }
        if self.entry.len() >= MAX_DIGITS {
            return self.end_entry();
        }
        self.phase = Phase::Entering {
            until: now + NEXT_KEY,
        };
    }

    /// The entry ended (pound, a pause, or the length limit): read back a valid number.
    fn end_entry(&mut self) {
        if !self.pattern.is_match(&self.entry) {
            return self.failed_entry();
        }
        let mut say = vec![Say::System(SystemPrompt::YouEntered)];
        say.extend(
            self.entry
                .chars()
                .filter_map(Digit::from_char)
                .map(Say::Digit),
        );
        say.push(Say::System(SystemPrompt::ConfirmNumber));
        self.actions.push_back(Action::Play(say));
        self.phase = Phase::ReadBack;
    }

    fn failed_entry(&mut self) {
        self.entry.clear();
        self.attempts += 1;
        if self.attempts >= NUMBER_ATTEMPTS {
            // Go on without an entered number: the message matters more.
            self.number = self.caller_id.clone();
            return self.greeting();
        }
        self.actions
            .push_back(Action::Play(vec![Say::System(SystemPrompt::InvalidNumber)]));
        self.phase = Phase::InvalidNotice;
    }

    fn greeting(&mut self) {
        if self.number_only {
            // The number is all a queued callback needs.
            self.actions.push_back(Action::Submit(Submission {
                callback_number: self.number.clone(),
                has_message: false,
                hung_up: false,
            }));
            self.phase = Phase::Done;
            return;
        }
        let mut say = vec![Say::Greeting];
        if self.beep {
            say.push(Say::Beep);
        }
        self.actions.push_back(Action::Play(say));
        self.phase = Phase::Greeting;
    }

    fn start_recording(&mut self, now: Instant) {
        self.actions.push_back(Action::StartRecording);
        self.recording = true;
        self.phase = Phase::Recording {
            until: now + self.max_length,
            last_voice: now,
        };
    }

    fn end_recording(&mut self, now: Instant) {
        self.actions.push_back(Action::StopRecording);
        if self.review {
            self.actions.push_back(Action::PlayRecording);
            self.phase = Phase::Replay;
        } else {
            self.submit(now, false);
        }
    }

    fn review_prompt(&mut self) {
        self.actions
            .push_back(Action::Play(vec![Say::System(SystemPrompt::Review)]));
        self.phase = Phase::Review { until: None };
    }

    fn review_key(&mut self, now: Instant, digit: Digit) {
        match digit {
            Digit::D1 => {
                self.actions.push_back(Action::StopPlayback);
                self.submit(now, false);
            }
            Digit::D2 => {
                self.actions.push_back(Action::StopPlayback);
                self.actions.push_back(Action::DiscardRecording);
                self.recording = false;
                self.greeting();
            }
            Digit::D3 => {
                self.actions.push_back(Action::StopPlayback);
                self.actions.push_back(Action::DiscardRecording);
                self.recording = false;
                self.goodbye(SystemPrompt::Cancelled);
            }
            _ => {}
        }
    }

    fn submit(&mut self, now: Instant, hung_up: bool) {
        self.actions.push_back(Action::Submit(Submission {
            callback_number: self.number.clone(),
            has_message: self.recording,
            hung_up,
        }));
        self.phase = Phase::Saving { until: now + STORE };
    }

    /// On hang-up: stop a running recording and submit whatever exists.
    fn submit_on_hangup(&mut self, now: Instant) {
        if self.is_recording() {
            self.actions.push_back(Action::StopRecording);
        }
        if self.recording || self.number.is_some() {
            self.submit(now, true);
        }
    }

    fn goodbye(&mut self, prompt: SystemPrompt) {
        self.actions
            .push_back(Action::Play(vec![Say::System(prompt)]));
        self.phase = Phase::Goodbye;
    }

    fn hang_up(&mut self) {
        self.actions.push_back(Action::Hangup);
        self.phase = Phase::Done;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(yaml_fields: &str) -> Mailbox {
        let yaml = format!(
            "entry: m\nprompts: {{ p: p.wav }}\nmailboxes:\n  box: {{ greeting: p{yaml_fields} }}\nmenus:\n  m: {{ prompt: p, no_input: p, options: {{ \"1\": {{ voicemail: box }} }}, on_failure: {{ hangup: p }} }}\n"
        );
        let wav = || ivr_audio::wav::encode_pcm16(8000, &[0; 800]);
        let menus = ivr_menus::compile_full(
            &yaml,
            &mut |_| Ok(wav()),
            &mut |_, _| Err("no TTS".into()),
            &mut |_, _| Some(wav()),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        menus.mailboxes()[0].clone()
    }

    fn drain(d: &mut Deposit) -> Vec<Action> {
        std::iter::from_fn(|| d.poll_action()).collect()
    }

    fn t0() -> Instant {
        crate::test_epoch()
    }

    fn press(d: &mut Deposit, now: Instant, keys: &str) {
        for c in keys.chars() {
            d.handle_digit(now, Digit::from_char(c).unwrap());
        }
    }

    #[test]
    fn the_number_dialogue_alone_submits_the_number_without_a_message() {
        let t = t0();
        let pattern = regex::Regex::new(r"^(?:\+?[0-9]{3,15})$").unwrap();
        // The caller ID, confirmed with one key.
        let mut d = Deposit::number_dialogue(&pattern, Some("+33612345678"));
        d.start(t);
        assert_eq!(
            drain(&mut d),
            [Action::Play(vec![Say::System(SystemPrompt::OfferCallerId)])]
        );
        press(&mut d, t, "1");
        let submitted = Action::Submit(Submission {
            callback_number: Some("+33612345678".into()),
            has_message: false,
            hung_up: false,
        });
        assert_eq!(drain(&mut d), [Action::StopPlayback, submitted]);
        assert!(d.is_done());
        // Another number typed, read back, confirmed.
        let mut d = Deposit::number_dialogue(&pattern, Some("anonymous"));
        d.start(t);
        assert_eq!(
            drain(&mut d),
            [Action::Play(vec![Say::System(SystemPrompt::EnterNumber)])]
        );
        d.handle_playback_finished(t);
        press(&mut d, t, "0491234567#");
        assert!(matches!(drain(&mut d).as_slice(), [Action::Play(_)]));
        d.handle_playback_finished(t);
        press(&mut d, t, "1");
        assert_eq!(
            drain(&mut d),
            [Action::Submit(Submission {
                callback_number: Some("0491234567".into()),
                has_message: false,
                hung_up: false,
            })]
        );
        // Hanging up mid-way submits nothing.
        let mut d = Deposit::number_dialogue(&pattern, None);
        d.start(t);
        drain(&mut d);
        press(&mut d, t, "049");
        d.handle_hangup(t);
        assert!(
            drain(&mut d)
                .iter()
                .all(|a| !matches!(a, Action::Submit(_)))
        );
        assert!(d.is_done());
    }

    #[test]
    fn the_caller_id_is_offered_and_accepted_with_one_key() {
        let t = t0();
        let mut d = Deposit::new(&mailbox(""), Some("+33612345678"));
        d.start(t);
        assert_eq!(
            drain(&mut d),
            [Action::Play(vec![Say::System(SystemPrompt::OfferCallerId)])]
        );
        press(&mut d, t, "1");
        assert_eq!(
            drain(&mut d),
            [
                Action::StopPlayback,
                Action::Play(vec![Say::Greeting, Say::Beep])
            ]
        );
        assert_eq!(d.number(), Some("+33612345678"));
        d.handle_playback_finished(t);
        assert_eq!(drain(&mut d), [Action::StartRecording]);
        press(&mut d, t + Duration::from_secs(5), "#");
        assert_eq!(
            drain(&mut d),
            [
                Action::StopRecording,
                Action::Submit(Submission {
                    callback_number: Some("+33612345678".into()),
                    has_message: true,
                    hung_up: false
                })
            ]
        );
        d.handle_stored(t);
        assert_eq!(drain(&mut d), [Action::Play(vec![Say::Saved])]);
        d.handle_playback_finished(t);
        assert_eq!(drain(&mut d), [Action::Hangup]);
        assert!(d.is_done());
    }

    #[test]
    fn another_number_is_entered_read_back_and_confirmed() {
        let t = t0();
        let mut d = Deposit::new(&mailbox(""), Some("+33612345678"));
        d.start(t);
        drain(&mut d);
        d.handle_playback_finished(t);
        press(&mut d, t, "0491234567#");
        let said = drain(&mut d);
        let Action::Play(say) = &said[0] else {
            panic!("{said:?}")
        };
        assert_eq!(say[0], Say::System(SystemPrompt::YouEntered));
        assert_eq!(say[1], Say::Digit(Digit::D0));
        assert_eq!(say.len(), 12);
        assert_eq!(say[11], Say::System(SystemPrompt::ConfirmNumber));
        d.handle_playback_finished(t);
        press(&mut d, t, "2"); // enter it again
        assert_eq!(
            drain(&mut d),
            [Action::Play(vec![Say::System(SystemPrompt::EnterNumber)])]
        );
        press(&mut d, t, "0491234568#");
        drain(&mut d);
        d.handle_playback_finished(t);
        press(&mut d, t, "1");
        assert_eq!(d.number(), Some("0491234568"));
    }

    #[test]
    fn invalid_numbers_get_three_tries_then_the_message_still_counts() {
        let t = t0();
        let mut d = Deposit::new(&mailbox(""), None);
        d.start(t);
        assert_eq!(
            drain(&mut d),
            [Action::Play(vec![Say::System(SystemPrompt::EnterNumber)])],
            "no caller ID: ask"
        );
        for attempt in 1..=3 {
            press(&mut d, t, "12#");
            let a = drain(&mut d);
            if attempt < 3 {
                assert_eq!(
                    a.last(),
                    Some(&Action::Play(vec![Say::System(
                        SystemPrompt::InvalidNumber
                    )]))
                );
            } else {
                assert_eq!(
                    a.last(),
                    Some(&Action::Play(vec![Say::Greeting, Say::Beep]))
                );
            }
        }
        assert_eq!(d.number(), None);
    }

    #[test]
    fn hanging_up_mid_message_keeps_the_message_and_the_number() {
        let t = t0();
        let mut d = Deposit::new(&mailbox(", callback_number: ask"), None);
        d.start(t);
        drain(&mut d);
        press(&mut d, t, "0612345678#");
        d.handle_playback_finished(t);
        d.handle_timeout(t + CONFIRM); // silence accepts the number
        drain(&mut d);
        d.handle_playback_finished(t);
        assert!(d.is_recording());
        drain(&mut d);
        d.handle_hangup(t + Duration::from_secs(3));
        assert_eq!(
            drain(&mut d),
            [
                Action::StopRecording,
                Action::Submit(Submission {
                    callback_number: Some("0612345678".into()),
                    has_message: true,
                    hung_up: true
                })
            ]
        );
        assert!(d.is_done());
    }

    #[test]
    fn hanging_up_while_typing_keeps_a_valid_number() {
        let t = t0();
        let mut d = Deposit::new(&mailbox(", callback_number: ask"), None);
        d.start(t);
        drain(&mut d);
        press(&mut d, t, "0612345678");
        assert_eq!(
            drain(&mut d),
            [Action::StopPlayback],
            "keys interrupt the prompt"
        );
        d.handle_hangup(t);
        assert_eq!(
            drain(&mut d),
            [Action::Submit(Submission {
                callback_number: Some("0612345678".into()),
                has_message: false,
                hung_up: true
            })]
        );
        // Nothing given: nothing stored.
        let mut d = Deposit::new(&mailbox(", callback_number: ask"), None);
        d.start(t);
        drain(&mut d);
        d.handle_hangup(t);
        assert!(drain(&mut d).is_empty());
    }

    #[test]
    fn silence_and_the_length_limit_end_the_message() {
        let t = t0();
        let mut d = Deposit::new(
            &mailbox(", callback_number: none, silence: 3, max_length: 10, beep: false"),
            None,
        );
        d.start(t);
        assert_eq!(drain(&mut d), [Action::Play(vec![Say::Greeting])]);
        d.handle_playback_finished(t);
        drain(&mut d);
        for i in 0..100 {
            d.handle_audio(t + Duration::from_millis(20 * i), true);
        }
        let voice_end = t + Duration::from_millis(20 * 99);
        assert_eq!(d.poll_timeout(), Some(voice_end + Duration::from_secs(3)));
        d.handle_timeout(voice_end + Duration::from_secs(3));
        assert_eq!(drain(&mut d)[0], Action::StopRecording);
        // Someone who never stops talking is cut at max_length.
        let mut d = Deposit::new(
            &mailbox(", callback_number: none, silence: 3, max_length: 10"),
            None,
        );
        d.start(t);
        d.handle_playback_finished(t);
        drain(&mut d);
        for i in 0..1000 {
            d.handle_audio(t + Duration::from_millis(20 * i), true);
        }
        assert_eq!(d.poll_timeout(), Some(t + Duration::from_secs(10)));
    }

    #[test]
    fn review_keeps_rerecords_or_cancels() {
        let t = t0();
        let mb = mailbox(", callback_number: none, review: true");
        let recorded = |d: &mut Deposit| {
            d.start(t);
            d.handle_playback_finished(t);
            press(d, t, "#");
            let a = drain(d);
            assert_eq!(
                a,
                [
                    Action::Play(vec![Say::Greeting, Say::Beep]),
                    Action::StartRecording,
                    Action::StopRecording,
                    Action::PlayRecording
                ]
            );
            d.handle_playback_finished(t);
            assert_eq!(
                drain(d),
                [Action::Play(vec![Say::System(SystemPrompt::Review)])]
            );
        };
        let mut d = Deposit::new(&mb, None);
        recorded(&mut d);
        press(&mut d, t, "2");
        assert_eq!(
            drain(&mut d),
            [
                Action::StopPlayback,
                Action::DiscardRecording,
                Action::Play(vec![Say::Greeting, Say::Beep])
            ]
        );
        let mut d = Deposit::new(&mb, None);
        recorded(&mut d);
        press(&mut d, t, "3");
        assert_eq!(
            drain(&mut d),
            [
                Action::StopPlayback,
                Action::DiscardRecording,
                Action::Play(vec![Say::System(SystemPrompt::Cancelled)])
            ]
        );
        // No answer keeps it.
        let mut d = Deposit::new(&mb, None);
        recorded(&mut d);
        d.handle_playback_finished(t);
        d.handle_timeout(t + REVIEW);
        assert!(matches!(
            drain(&mut d)[..],
            [Action::Submit(Submission {
                has_message: true,
                ..
            })]
        ));
    }

    #[test]
    fn a_failed_store_gets_an_apology() {
        let t = t0();
        let mut d = Deposit::new(&mailbox(", callback_number: none"), None);
        d.start(t);
        d.handle_playback_finished(t);
        drain(&mut d);
        d.handle_store_failed(t); // the disk filled up while recording
        assert_eq!(
            drain(&mut d),
            [
                Action::StopRecording,
                Action::Play(vec![Say::System(SystemPrompt::Sorry)])
            ]
        );
        d.handle_playback_finished(t);
        assert_eq!(drain(&mut d), [Action::Hangup]);
    }

    proptest::proptest! {
        /// Whatever the caller and the owner do, recordings start and stop in pairs, at
        /// most one request is submitted, and a hang-up ends the deposit (the fuzz target's
        /// body, on generated inputs).
        #[test]
        fn any_sequence_keeps_the_invariants(
            which in 0usize..3,
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120),
        ) {
            let boxes = crate::fuzz::mailboxes();
            crate::fuzz::deposit(&boxes[which], &data, t0());
        }
    }
}
