//! A caller leaving a message, on a virtual clock: the voicemail half of `ivr simulate`.
//!
//! [`DepositSim`] drives a [`Deposit`] the way the engine does, with the mailbox's prompts
//! taking their real length, and notes what a listener would notice ("plays
//! vm_offer_caller_id (4.1 s)", "records the message", "stores the request"). Storing
//! always succeeds. Time is an input: nothing here reads a clock.

use crate::deposit::{Action, Deposit, Say};
use ivr_audio::{Digit, FRAME_SAMPLES, SAMPLE_RATE};
use ivr_menus::{MailboxId, Menus};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The record beep's length (the engine's built-in 1 kHz tone).
const BEEP: Duration = Duration::from_millis(250);

/// How often a talking caller's audio counts as voice (well under any silence limit).
const TALK_STEP: Duration = Duration::from_millis(500);

/// One caller in a mailbox's dialogue, on a virtual clock.
pub struct DepositSim {
    menus: Arc<Menus>,
    mailbox: MailboxId,
    language: usize,
    deposit: Deposit,
    /// When the call began (log times count from it).
    start: Instant,
    now: Instant,
    playing_until: Option<Instant>,
    recording_since: Option<Instant>,
    /// The length of the last message kept (played back on review).
    message: Duration,
    over: bool,
    log: Vec<String>,
}

impl DepositSim {
    /// The call, begun at `start`, reaches `mailbox` at `now`, in the caller's `language`
    /// (an index into [`Menus::languages`]), from `caller_id`.
    pub fn start(
        menus: Arc<Menus>,
        mailbox: MailboxId,
        language: usize,
        caller_id: Option<&str>,
        start: Instant,
        now: Instant,
    ) -> DepositSim {
        let deposit = Deposit::new(menus.mailbox(mailbox), caller_id);
        let mut sim = DepositSim {
            menus,
            mailbox,
            language,
            deposit,
            start,
            now,
            playing_until: None,
            recording_since: None,
            message: Duration::ZERO,
            over: false,
            log: Vec::new(),
        };
        sim.deposit.start(now);
        sim.drain();
        sim
    }

    /// The caller presses a key.
    pub fn press(&mut self, digit: Digit) {
        self.note(format!("caller presses {digit}"));
        self.deposit.handle_digit(self.now, digit);
        self.drain();
    }

    /// Let `d` pass with the caller silent (`talking`: speaking all along).
    pub fn wait(&mut self, d: Duration, talking: bool) {
        let end = self.now + d;
        while !self.over && self.now < end {
            if talking {
                self.deposit.handle_audio(self.now, true);
            }
            let step_end = if talking {
                end.min(self.now + TALK_STEP)
            } else {
                end
            };
            let next = [self.playing_until, self.deposit.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= step_end => {
                    self.now = self.now.max(t);
                    if self.playing_until.is_some_and(|p| p <= self.now) {
                        self.playing_until = None;
                        self.deposit.handle_playback_finished(self.now);
                    } else {
                        self.deposit.handle_timeout(self.now);
                    }
                    self.drain();
                }
                _ => self.now = step_end,
            }
        }
        self.now = self.now.max(end);
    }

    /// The caller hangs up (what they gave is kept).
    pub fn hang_up(&mut self) {
        self.note("caller hangs up".into());
        self.deposit.handle_hangup(self.now);
        self.drain();
        self.over = true;
    }

    /// Whether the call is over.
    pub fn is_over(&self) -> bool {
        self.over
    }

    /// The lines noted since the last call (time since the call began, what happened).
    pub fn take_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }

    fn drain(&mut self) {
        while let Some(action) = self.deposit.poll_action() {
            match action {
                Action::Play(says) => {
                    let (names, length) = self.prompts(&says);
                    self.playing_until = Some(self.now + length);
                    self.note(format!(
                        "plays {} ({:.1} s)",
                        names.join(", "),
                        length.as_secs_f64()
                    ));
                }
                Action::StopPlayback => {
                    self.playing_until = None;
                    self.note("prompt interrupted".into());
                }
                Action::StartRecording => {
                    self.recording_since = Some(self.now);
                    self.note("records the message (`talk 5s` to speak, a key to finish)".into());
                }
                Action::StopRecording => self.stop_recording("recording stopped"),
                Action::DiscardRecording => {
                    self.stop_recording("recording discarded");
                    self.message = Duration::ZERO;
                }
                Action::PlayRecording => {
                    self.playing_until = Some(self.now + self.message);
                    self.note(format!(
                        "plays the message back ({:.1} s)",
                        self.message.as_secs_f64()
                    ));
                }
                Action::Submit(s) => {
                    self.note(format!(
                        "stores the request in mailbox {}: number {}, {}",
                        self.menus.mailbox(self.mailbox).name,
                        s.callback_number.as_deref().unwrap_or("none"),
                        if s.has_message {
                            format!("a {:.1} s message", self.message.as_secs_f64())
                        } else {
                            "no message".to_string()
                        }
                    ));
                    self.deposit.handle_stored(self.now);
                }
                Action::Hangup => {
                    self.playing_until = None;
                    self.note("hangs up".into());
                    self.over = true;
                }
            }
        }
    }

    fn stop_recording(&mut self, what: &str) {
        if let Some(since) = self.recording_since.take() {
            self.message = self.now - since;
            self.note(format!("{what} ({:.1} s)", self.message.as_secs_f64()));
        }
    }

    /// The names and total length of what `says` plays, in the caller's language.
    fn prompts(&self, says: &[Say]) -> (Vec<String>, Duration) {
        let menus = &self.menus;
        let mailbox = menus.mailbox(self.mailbox);
        // In order: a prompt of the config, or the beep (`None`).
        let mut items: Vec<Option<ivr_menus::PromptId>> = Vec::new();
        for say in says {
            match say {
                Say::Greeting => items.extend(mailbox.greeting.iter().map(|p| Some(*p))),
                Say::Saved => items.extend(mailbox.saved.iter().map(|p| Some(*p))),
                Say::Digit(d) => items.extend(menus.digit_prompt(d.as_char()).map(Some)),
                Say::System(s) => items.extend(menus.find_prompt(s.name()).map(Some)),
                Say::Beep => items.push(None),
            }
        }
        let mut length = Duration::ZERO;
        let names = items
            .into_iter()
            .map(|item| match item {
                Some(id) => {
                    let frames = menus.prompt_in(id, self.language).frame_count();
                    length += Duration::from_secs_f64(
                        (frames * FRAME_SAMPLES) as f64 / f64::from(SAMPLE_RATE),
                    );
                    menus.prompt_name(id).to_string()
                }
                None => {
                    length += BEEP;
                    "beep".to_string()
                }
            })
            .collect();
        (names, length)
    }

    fn note(&mut self, what: String) {
        let t = (self.now - self.start).as_secs_f64();
        self.log.push(format!("{t:7.2} s  {what}"));
    }
}
