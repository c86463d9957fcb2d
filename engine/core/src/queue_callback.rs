//! Keys a caller presses while waiting in a queue (`exit_keys:`), and queued callbacks.
//!
//! - An exit key bound to an action (`{ voicemail: box }`, `{ goto: menu }`...) takes the
//!   caller out of the line ([`Input::Leave`] with [`LeaveReason::ExitKey`]) and back to the
//!   menus, where the action runs as if chosen in the menu the queue was chosen from.
//! - An exit key bound to `callback` starts the number dialogue of the voicemail deposit
//!   ([`Deposit::number_dialogue`]: "press 1 to be called back on the number you are calling
//!   from, or enter another"; a typed number is read back and confirmed). The caller stays in
//!   line meanwhile (an agent answering takes the call as usual). A confirmed number the
//!   queue's `callback:` allows (digits and a leading `+` only, its pattern and prefixes) is
//!   [`Input::RequestCallback`]; [`QOut::CallbackAccepted`](ivr_queues::Output::CallbackAccepted)
//!   plays the queue's `confirmed` prompt and hangs up (the request keeps the caller's
//!   place); [`QOut::CallbackRefused`](ivr_queues::Output::CallbackRefused) (a number already
//!   waiting, too many requests, a number not allowed) plays the invalid-number notice and
//!   the caller keeps waiting with the music.
//!
//! Not done yet: calling the agent then the caller back when the request reaches the head
//! (`DialCallback`). Until then a request whose turn comes is cancelled (logged as
//! `CallbackCancelled`) rather than hold the line.

use crate::call::{App, CallHandle};
use crate::engine::Engine;
use crate::io::EndReason;
use ivr_audio::Digit;
use ivr_menus::handoff::ExitKey;
use ivr_queues::{CallRef, CallbackId, CallbackRefusal, Input, LeaveReason};
use ivr_voicemail::{Action, Deposit, Say, SystemPrompt};
use std::time::Instant;

impl Engine {
    /// The line of the queue named `queue`, first to be served first: callers on the line
    /// and callback requests keeping their place.
    pub fn queue_line(&self, queue: &str) -> Vec<ivr_queues::Waiter> {
        self.queueing
            .center
            .waiting(&ivr_queues::QueueName::new(queue))
    }

    /// A key from a waiting caller: the number dialogue's if it runs, else the queue's exit
    /// key, if one is bound to it (other keys do nothing).
    pub(crate) fn queued_digit(&mut self, now: Instant, handle: CallHandle, digit: Digit) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let caller = call.caller.clone();
        let App::Queued(q) = &mut call.app else {
            return;
        };
        if q.agent.is_some() || q.leaving {
            return;
        }
        if let Some(d) = q.dialogue.as_mut() {
            d.handle_digit(now, digit);
            return self.drive_dialogue(now, handle);
        }
        let queue = q.run.menus().queue(q.queue);
        let Some((_, key)) = queue.exit_keys.iter().find(|(k, _)| *k == digit) else {
            return;
        };
        match key.clone() {
            ExitKey::Action(action) => {
                let input = Input::Leave {
                    call: CallRef(handle.0),
                    reason: LeaveReason::ExitKey(digit.as_char()),
                };
                self.queueing.center.handle(now, input);
                self.queue_exit_key(now, handle, digit, action);
                self.drain_queues(now);
            }
            ExitKey::Callback => {
                let Some(cb) = queue.callback.as_ref() else {
                    return;
                };
                let mut d = Deposit::number_dialogue(&cb.number_pattern, caller.as_deref());
                d.start(now);
                q.dialogue = Some(Box::new(d));
                call.caller_leg().stop();
                self.drive_dialogue(now, handle);
            }
        }
        self.reindex(handle);
    }

    /// Carry out what the number dialogue asks; its end asks the center for the callback.
    pub(crate) fn drive_dialogue(&mut self, now: Instant, handle: CallHandle) {
        loop {
            let Some(call) = self.calls.get_mut(&handle) else {
                return;
            };
            let App::Queued(q) = &mut call.app else {
                return;
            };
            let Some(action) = q.dialogue.as_mut().and_then(|d| d.poll_action()) else {
                return;
            };
            match action {
                Action::Play(says) => {
                    let menus = q.run.menus();
                    let lang = q.run.language();
                    let named = |id: ivr_menus::PromptId| {
                        (
                            menus.prompt_name(id).to_string(),
                            menus.prompt_in(id, lang).clone(),
                        )
                    };
                    let mut prompts = Vec::new();
                    for say in says {
                        match say {
                            Say::Digit(digit) => {
                                prompts.extend(menus.digit_prompt(digit.as_char()).map(named))
                            }
                            Say::System(s) => {
                                prompts.extend(menus.find_prompt(s.name()).map(named))
                            }
                            Say::Greeting | Say::Saved | Say::Beep => {}
                        }
                    }
                    self.play(handle, prompts);
                }
                Action::StopPlayback => call.caller_leg().stop(),
                Action::Submit(sub) => {
                    q.dialogue = None;
                    let allowed = q
                        .run
                        .menus()
                        .queue(q.queue)
                        .callback
                        .as_ref()
                        .and_then(|cb| sub.callback_number.filter(|n| cb.allows(n)));
                    match allowed {
                        Some(number) => {
                            let input = Input::RequestCallback {
                                call: CallRef(handle.0),
                                number,
                            };
                            self.queue_input(now, input);
                        }
                        None => self.callback_refused(handle, CallbackRefusal::BadNumber),
                    }
                }
                Action::StartRecording
                | Action::StopRecording
                | Action::DiscardRecording
                | Action::PlayRecording
                | Action::Hangup => {}
            }
        }
    }

    /// The center took the request in the caller's place: the `confirmed` prompt, then
    /// hang up (at once without one).
    pub(crate) fn callback_accepted(&mut self, now: Instant, handle: CallHandle) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Queued(q) = &mut call.app else {
            return;
        };
        q.leaving = true;
        q.dialogue = None;
        let menus = q.run.menus();
        let lang = q.run.language();
        let confirmed: Vec<_> = menus
            .queue(q.queue)
            .callback
            .iter()
            .flat_map(|cb| cb.confirmed.iter())
            .map(|id| {
                (
                    menus.prompt_name(*id).to_string(),
                    menus.prompt_in(*id, lang).clone(),
                )
            })
            .collect();
        if confirmed.is_empty() {
            self.end_call(now, handle, EndReason::MenuHangup);
        } else {
            self.play(handle, confirmed);
        }
    }

    /// The request was not taken (or the number is not allowed): the invalid-number notice,
    /// then the music again; the caller keeps its place.
    pub(crate) fn callback_refused(&mut self, handle: CallHandle, _reason: CallbackRefusal) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Queued(q) = &mut call.app else {
            return;
        };
        q.dialogue = None;
        let menus = q.run.menus();
        let lang = q.run.language();
        let notice: Vec<_> = menus
            .find_prompt(SystemPrompt::InvalidNumber.name())
            .map(|id| {
                (
                    menus.prompt_name(id).to_string(),
                    menus.prompt_in(id, lang).clone(),
                )
            })
            .into_iter()
            .collect();
        if notice.is_empty() {
            self.play_music(handle);
        } else {
            self.play(handle, notice);
        }
    }

    /// A callback request reached an agent, but this version does not dial callbacks yet:
    /// the request is cancelled rather than hold the line.
    pub(crate) fn callback_offered(&mut self, now: Instant, callback: CallbackId) {
        self.queueing
            .center
            .handle(now, Input::CancelCallback(callback));
    }

    /// The number dialogue's deadline passed (no key, end of an entry, silence confirms).
    pub(crate) fn dialogue_timeout(&mut self, now: Instant, handle: CallHandle) {
        if let Some(call) = self.calls.get_mut(&handle)
            && let App::Queued(q) = &mut call.app
            && let Some(d) = q.dialogue.as_mut()
        {
            d.handle_timeout(now);
            self.drive_dialogue(now, handle);
        }
    }

    /// What played to a caller in the dialogue or leaving after a callback request ended.
    /// Returns whether it was theirs (else the music goes on).
    pub(crate) fn dialogue_playback_finished(&mut self, now: Instant, handle: CallHandle) -> bool {
        let Some(call) = self.calls.get_mut(&handle) else {
            return false;
        };
        let App::Queued(q) = &mut call.app else {
            return false;
        };
        if q.leaving {
            self.end_call(now, handle, EndReason::MenuHangup);
            return true;
        }
        match q.dialogue.as_mut() {
            Some(d) => {
                d.handle_playback_finished(now);
                self.drive_dialogue(now, handle);
                true
            }
            None => false,
        }
    }
}
