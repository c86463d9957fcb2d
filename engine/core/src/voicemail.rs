//! The engine's side of a voicemail deposit: running a [`Deposit`] for a call the menus
//! handed to a mailbox, feeding it keys, audio levels, playback ends and time, playing
//! what it asks, and passing the caller's audio, in order, to the driver's recorder.
//!
//! The driver writes and stores ([`VoicemailCmd`]) and reports back ([`VoicemailReport`]).
//! Recording frames leave the engine inline (no heap), 20 ms at a time, in RTP timestamp
//! order with lost packets as silence ([`ivr_audio::reorder`]).

use crate::call::{CallHandle, Phase};
use crate::engine::{Engine, Event, Output};
use ivr_audio::reorder::{Frame, Reorder};
use ivr_audio::{Digit, Prompt};
use ivr_menus::MailboxId;
use ivr_voicemail::{Action, CallbackRequest, Deposit, RecordingId, Say};
use std::time::Instant;

/// How long audio is held for reordering before it is recorded (60 ms).
const REORDER_DELAY: u32 = 480;
/// A frame whose mean absolute amplitude is above this counts as voice (about -42 dBFS).
const VOICE_LEVEL: u32 = 260;

/// A command for the driver's recorder and store.
#[derive(Debug)]
// Frames travel inline on purpose: recording must not allocate per packet.
#[allow(clippy::large_enum_variant)]
pub enum VoicemailCmd {
    /// Start writing a recording; `request` is what is known so far (keep it next to the
    /// audio, so a crash loses neither).
    Start {
        /// The recording.
        recording: RecordingId,
        /// The request as known at the start of the message.
        request: Box<CallbackRequest>,
    },
    /// 20 ms of the caller's audio (8 kHz, 16-bit).
    Frame {
        /// The recording.
        recording: RecordingId,
        /// The samples.
        frame: Frame,
    },
    /// The message is over: finish the file and make it durable.
    Stop {
        /// The recording.
        recording: RecordingId,
    },
    /// Delete the recording (re-recorded or cancelled).
    Discard {
        /// The recording.
        recording: RecordingId,
    },
    /// Store the request (with the stopped recording, if it has one) and answer with
    /// [`VoicemailReport::Stored`].
    Submit {
        /// The call, for the answer.
        call: CallHandle,
        /// The recording, if the request has a message.
        recording: Option<RecordingId>,
        /// The request.
        request: Box<CallbackRequest>,
    },
}

/// What the driver reports about voicemail work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoicemailReport {
    /// A recording could not be written (disk full, unwritable folder).
    RecordingFailed {
        /// The recording.
        recording: RecordingId,
    },
    /// A submitted request was stored, or not.
    Stored {
        /// The call.
        call: CallHandle,
        /// Whether it was.
        ok: bool,
    },
}

/// A call leaving a callback request.
#[derive(Debug)]
pub struct DepositCall {
    /// The mailbox.
    pub mailbox: MailboxId,
    /// The caller's side.
    pub deposit: Deposit,
    /// The request so far.
    pub request: CallbackRequest,
    /// The recording being written or kept, if any.
    pub recording: Option<RecordingId>,
    /// Whether frames go to the recorder now.
    pub recording_live: bool,
    /// The reorder buffer of the current recording.
    pub reorder: Box<Reorder>,
    /// Samples recorded in the current recording.
    pub samples: u64,
    /// The current recording's audio, kept only when the mailbox has a review step.
    pub review: Option<Vec<i16>>,
}

impl Engine {
    /// The menus handed `handle` to `mailbox`: start a deposit.
    pub(crate) fn start_deposit(&mut self, now: Instant, handle: CallHandle, mailbox: MailboxId) {
        let wall = self.wall_seconds(now);
        let id = format!("{wall}-{:08x}", self.rng.next_u32());
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let menus = call.menu.menus().clone();
        let mb = menus.mailbox(mailbox);
        let caller_id = call.caller.clone();
        let request = CallbackRequest {
            id,
            mailbox: mb.name.clone(),
            caller_id: caller_id.clone(),
            called: call.invite.uri.user(),
            call_id: call.call_id.clone(),
            received_at: wall,
            callback_number: None,
            duration_ms: 0,
            language: menus.languages().get(call.menu.language()).cloned(),
            menu_path: call.path.clone(),
            variables: call.menu.variables().to_vec(),
            hung_up: false,
            has_message: false,
            email_to: mb.email.clone(),
        };
        let mut deposit = Deposit::new(mb, caller_id.as_deref());
        deposit.start(now);
        call.deposit = Some(Box::new(DepositCall {
            mailbox,
            deposit,
            request,
            recording: None,
            recording_live: false,
            reorder: Box::new(Reorder::new(REORDER_DELAY)),
            samples: 0,
            review: mb.review.then(Vec::new),
        }));
        self.apply_deposit(now, handle);
    }

    /// Seconds since the Unix epoch at `now`, from the driver's wall clock (0 if none).
    fn wall_seconds(&self, now: Instant) -> u64 {
        let Some((at, wall)) = self.wall_anchor else {
            return 0;
        };
        let wall = wall + now.saturating_duration_since(at);
        wall.duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    /// A key, while depositing.
    pub(crate) fn deposit_digit(&mut self, now: Instant, handle: CallHandle, digit: Digit) {
        if let Some(d) = self.deposit_of(handle) {
            d.deposit.handle_digit(now, digit);
            self.apply_deposit(now, handle);
        }
    }

    /// Whether the call is leaving a callback request.
    pub(crate) fn in_deposit(&self, handle: CallHandle) -> bool {
        self.calls.get(&handle).is_some_and(|c| c.deposit.is_some())
    }

    fn deposit_of(&mut self, handle: CallHandle) -> Option<&mut DepositCall> {
        self.calls
            .get_mut(&handle)
            .and_then(|c| c.deposit.as_deref_mut())
    }

    /// A packet of the caller's audio arrived (its RTP timestamp and G.711 payload): decode
    /// and record it, in timestamp order.
    pub(crate) fn deposit_audio(
        &mut self,
        now: Instant,
        handle: CallHandle,
        timestamp: u32,
        payload: &[u8],
    ) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let (Some(d), Some(media)) = (call.deposit.as_deref_mut(), call.media.as_ref()) else {
            return;
        };
        let (Some(recording), true) = (d.recording, d.recording_live) else {
            return;
        };
        let codec = media.codec();
        // Up to 60 ms per packet; longer packets are cut (no heap: a stack buffer).
        let mut pcm = [0i16; 480];
        let n = payload.len().min(pcm.len());
        ivr_audio::g711::decode_into(codec, &payload[..n], &mut pcm[..n]);
        let outputs = &mut self.outputs;
        let deposit = &mut d.deposit;
        let samples = &mut d.samples;
        let review = &mut d.review;
        d.reorder.push(timestamp, &pcm[..n], &mut |frame: &Frame| {
            record_frame(outputs, deposit, samples, review, recording, now, frame);
        });
        self.apply_deposit(now, handle);
    }

    /// Playback of what the deposit asked ended.
    pub(crate) fn deposit_playback_finished(&mut self, now: Instant, handle: CallHandle) {
        if let Some(d) = self.deposit_of(handle) {
            d.deposit.handle_playback_finished(now);
            self.apply_deposit(now, handle);
        }
    }

    /// Time passed.
    pub(crate) fn deposit_timeout(&mut self, now: Instant, handle: CallHandle) {
        if let Some(d) = self.deposit_of(handle) {
            d.deposit.handle_timeout(now);
            self.apply_deposit(now, handle);
        }
    }

    /// The call is ending (either side): keep what the caller left.
    pub(crate) fn deposit_hangup(&mut self, now: Instant, handle: CallHandle) {
        if let Some(d) = self.deposit_of(handle) {
            if d.deposit.is_done() {
                return;
            }
            d.deposit.handle_hangup(now);
            self.apply_deposit(now, handle);
        }
    }

    /// A report from the driver.
    pub(crate) fn voicemail_report(&mut self, now: Instant, report: VoicemailReport) {
        let handle = match &report {
            VoicemailReport::Stored { call, .. } => Some(*call),
            VoicemailReport::RecordingFailed { recording } => self
                .calls
                .values()
                .find(|c| c.deposit.as_ref().and_then(|d| d.recording) == Some(*recording))
                .map(|c| c.handle),
        };
        let Some(handle) = handle else { return };
        let Some(d) = self.deposit_of(handle) else {
            return;
        };
        match report {
            VoicemailReport::Stored { ok: true, .. } => d.deposit.handle_stored(now),
            VoicemailReport::Stored { ok: false, .. } => d.deposit.handle_store_failed(now),
            VoicemailReport::RecordingFailed { .. } => {
                d.recording_live = false;
                d.deposit.handle_store_failed(now);
            }
        }
        self.apply_deposit(now, handle);
        self.reindex(handle);
    }

    /// Carry out what the deposit asks.
    pub(crate) fn apply_deposit(&mut self, now: Instant, handle: CallHandle) {
        loop {
            let Some(call) = self.calls.get_mut(&handle) else {
                return;
            };
            let Some(d) = call.deposit.as_deref_mut() else {
                return;
            };
            let Some(action) = d.deposit.poll_action() else {
                return;
            };
            match action {
                Action::Play(says) => {
                    let menus = call.menu.menus().clone();
                    let lang = call.menu.language();
                    let mb = menus.mailbox(d.mailbox);
                    // (name for the log, recording)
                    let mut prompts: Vec<(String, Prompt)> = Vec::new();
                    let mut named = |id: ivr_menus::PromptId| {
                        (
                            menus.prompt_name(id).to_string(),
                            menus.prompt_in(id, lang).clone(),
                        )
                    };
                    for say in says {
                        match say {
                            Say::Greeting => prompts.extend(mb.greeting.iter().map(|p| named(*p))),
                            Say::Saved => prompts.extend(mb.saved.iter().map(|p| named(*p))),
                            Say::Beep => prompts.push(("beep".into(), self.beep.clone())),
                            Say::Digit(digit) => {
                                prompts.extend(menus.digit_prompt(digit.as_char()).map(&mut named))
                            }
                            Say::System(s) => {
                                prompts.extend(menus.find_prompt(s.name()).map(&mut named))
                            }
                        }
                    }
                    self.play(handle, prompts);
                }
                Action::StopPlayback => {
                    if let Some(m) = call.media.as_mut() {
                        m.stop();
                    }
                }
                Action::StartRecording => {
                    if let Some(old) = d.recording.take() {
                        self.outputs
                            .push_back(Output::Voicemail(VoicemailCmd::Discard { recording: old }));
                    }
                    let recording = RecordingId(self.next_recording);
                    self.next_recording += 1;
                    d.recording = Some(recording);
                    d.recording_live = true;
                    d.samples = 0;
                    d.reorder.reset();
                    if let Some(r) = d.review.as_mut() {
                        r.clear();
                    }
                    d.request.callback_number = d.deposit.number().map(str::to_string);
                    let request = Box::new(d.request.clone());
                    self.outputs
                        .push_back(Output::Voicemail(VoicemailCmd::Start {
                            recording,
                            request,
                        }));
                    self.event(Event::Recording {
                        call: handle,
                        started: true,
                    });
                }
                Action::StopRecording => {
                    if let (Some(recording), true) = (d.recording, d.recording_live) {
                        d.recording_live = false;
                        // What the reorder buffer still holds is part of the message.
                        let outputs = &mut self.outputs;
                        let deposit = &mut d.deposit;
                        let samples = &mut d.samples;
                        let review = &mut d.review;
                        d.reorder.flush(&mut |frame: &Frame| {
                            record_frame(outputs, deposit, samples, review, recording, now, frame);
                        });
                        self.outputs
                            .push_back(Output::Voicemail(VoicemailCmd::Stop { recording }));
                        self.event(Event::Recording {
                            call: handle,
                            started: false,
                        });
                    }
                }
                Action::DiscardRecording => {
                    if let Some(recording) = d.recording.take() {
                        d.recording_live = false;
                        d.samples = 0;
                        self.outputs
                            .push_back(Output::Voicemail(VoicemailCmd::Discard { recording }));
                    }
                }
                Action::PlayRecording => {
                    let pcm = d.review.as_deref().unwrap_or_default();
                    let prompt = Prompt::from_samples("your message", pcm);
                    if let Some(m) = call.media.as_mut() {
                        m.play(vec![prompt]);
                    }
                }
                Action::Submit(s) => {
                    let mut request = d.request.clone();
                    request.callback_number = s.callback_number;
                    request.has_message = s.has_message;
                    request.hung_up = s.hung_up;
                    request.duration_ms = if s.has_message { d.samples / 8 } else { 0 };
                    let recording = if s.has_message { d.recording } else { None };
                    self.event(Event::CallbackRequest {
                        call: handle,
                        id: request.id.clone(),
                        mailbox: request.mailbox.clone(),
                        number: request.callback_number.clone(),
                        duration_ms: request.duration_ms,
                    });
                    self.outputs
                        .push_back(Output::Voicemail(VoicemailCmd::Submit {
                            call: handle,
                            recording,
                            request: Box::new(request),
                        }));
                }
                Action::Hangup => {
                    if matches!(call.phase, Phase::Active | Phase::Answered { .. }) {
                        self.end_call(now, handle, crate::EndReason::MenuHangup);
                    }
                }
            }
        }
    }
}

/// One frame out of the reorder buffer: to the recorder, to the review copy, and its level
/// to the deposit (for the silence that ends a message).
fn record_frame(
    outputs: &mut std::collections::VecDeque<Output>,
    deposit: &mut Deposit,
    samples: &mut u64,
    review: &mut Option<Vec<i16>>,
    recording: RecordingId,
    now: Instant,
    frame: &Frame,
) {
    let pcm = frame.pcm();
    let level = pcm.iter().map(|s| s.unsigned_abs() as u32).sum::<u32>() / pcm.len().max(1) as u32;
    deposit.handle_audio(now, level > VOICE_LEVEL);
    *samples += pcm.len() as u64;
    if let Some(r) = review.as_mut() {
        r.extend_from_slice(pcm);
    }
    outputs.push_back(Output::Voicemail(VoicemailCmd::Frame {
        recording,
        frame: *frame,
    }));
}
