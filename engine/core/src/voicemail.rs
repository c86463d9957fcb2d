//! The engine's side of a voicemail deposit: running a [`Deposit`] for a call the menus
//! handed to a mailbox, feeding it keys, audio levels, playback ends and time, playing
//! what it asks, and passing the caller's audio, in order, to the driver's recorder.
//!
//! The driver writes and stores ([`VoicemailCmd`]) and reports back ([`VoicemailReport`]).
//! Recording frames leave the engine inline (no heap), 20 ms at a time, in RTP timestamp
//! order with lost packets as silence ([`ivr_audio::reorder`]).

use crate::handle::CallHandle;
use crate::io::{Event, Output};
pub use crate::io::{VoicemailCmd, VoicemailReport};
use ivr_audio::Prompt;
use ivr_audio::reorder::{Frame, Reorder};
use ivr_menus::{MailboxId, Menus};
use ivr_voicemail::{Action, CallbackRequest, Deposit, RecordingId, Say};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// How long audio is held for reordering before it is recorded (60 ms).
pub(crate) const REORDER_DELAY: u32 = 480;
/// A frame whose mean absolute amplitude is above this counts as voice (about -42 dBFS).
const VOICE_LEVEL: u32 = 260;

/// A call leaving a callback request.
#[derive(Debug)]
pub struct DepositCall {
    /// The menus the call runs (prompts and the mailbox live there).
    pub menus: Arc<Menus>,
    /// The caller's language (an index into the menus' languages).
    pub language: usize,
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
    /// The current recording failed while live: the writer is told to drop it when the
    /// deposit stops it (it may still hold the file open: a frame refused by the driver).
    pub recording_failed: bool,
    /// The reorder buffer of the current recording.
    pub reorder: Box<Reorder>,
    /// Samples recorded in the current recording.
    pub samples: u64,
    /// The most samples a recording may have: the mailbox's `max_length` of audio,
    /// whatever the caller's RTP timestamps say (the reorder buffer fills a jump ahead with
    /// silence: a hostile stream must not fill the disk, or the review copy the memory,
    /// faster than time passes).
    pub cap: u64,
    /// The current recording's audio, kept only when the mailbox has a review step.
    pub review: Option<Vec<i16>>,
    /// The id of the request handed to the store, once the deposit submitted one (a
    /// caller who hangs up in the greeting with nothing given submits none).
    pub submitted: Option<String>,
}

/// What a deposit asks of its call (everything else it does itself, through [`VmIo`]).
#[derive(Debug)]
pub enum DepositOut {
    /// Play these prompts (named for the log), replacing what plays.
    Play(Vec<(String, Prompt)>),
    /// Play the caller's own message back (not named in the log).
    PlayMessage(Prompt),
    /// Stop playing.
    StopPlayback,
    /// End the call.
    Hangup,
}

/// What a deposit needs from the engine to write and store: the output queue, the
/// recording counter and the record beep.
pub struct VmIo<'a> {
    /// The engine's output queue.
    pub outputs: &'a mut VecDeque<Output>,
    /// The next recording's number.
    pub next_recording: &'a mut u64,
    /// The record beep.
    pub beep: &'a Prompt,
}

impl DepositCall {
    /// A deposit into `mailbox` for a call the menus hand over, started at `now`; `request`
    /// is the callback request as known so far.
    pub fn new(
        now: Instant,
        menus: Arc<Menus>,
        language: usize,
        mailbox: MailboxId,
        request: CallbackRequest,
    ) -> DepositCall {
        let mb = menus.mailbox(mailbox);
        let mut deposit = Deposit::new(mb, request.caller_id.as_deref());
        deposit.start(now);
        let review = mb.review.then(Vec::new);
        let cap = u64::try_from(mb.max_length.as_millis()).unwrap_or(u64::MAX / 8) * 8;
        DepositCall {
            menus,
            language,
            mailbox,
            deposit,
            request,
            recording: None,
            recording_live: false,
            recording_failed: false,
            reorder: Box::new(Reorder::new(REORDER_DELAY)),
            samples: 0,
            cap,
            review,
            submitted: None,
        }
    }

    /// The caller's audio (one packet, decoded, with its RTP timestamp): recorded in
    /// timestamp order while a recording is live.
    pub fn handle_audio(
        &mut self,
        now: Instant,
        timestamp: u32,
        pcm: &[i16],
        outputs: &mut VecDeque<Output>,
    ) {
        let (Some(recording), true) = (self.recording, self.recording_live) else {
            return;
        };
        self.record(now, recording, outputs, Some((timestamp, pcm)));
    }

    /// Frames out of the reorder buffer to [`record_frame`]: those `packet` releases, or
    /// (`None`) all it still holds.
    fn record(
        &mut self,
        now: Instant,
        recording: RecordingId,
        outputs: &mut VecDeque<Output>,
        packet: Option<(u32, &[i16])>,
    ) {
        let deposit = &mut self.deposit;
        let (samples, cap) = (&mut self.samples, self.cap);
        let review = &mut self.review;
        let mut each = |frame: &Frame| {
            record_frame(
                outputs,
                deposit,
                (samples, cap),
                review,
                recording,
                now,
                frame,
            );
        };
        match packet {
            Some((timestamp, pcm)) => {
                self.reorder.push(timestamp, pcm, &mut each);
            }
            None => self.reorder.flush(&mut each),
        }
    }

    /// The call is ending (either side): keep what the caller left.
    pub fn handle_hangup(&mut self, now: Instant) {
        if !self.deposit.is_done() {
            self.deposit.handle_hangup(now);
        }
    }

    /// A report from the driver about this deposit's work.
    pub fn handle_report(&mut self, now: Instant, report: &VoicemailReport) {
        match report {
            VoicemailReport::Stored { ok: true, .. } => self.deposit.handle_stored(now),
            VoicemailReport::Stored { ok: false, .. } => self.deposit.handle_store_failed(now),
            VoicemailReport::RecordingFailed { recording } => {
                if self.recording == Some(*recording) && self.recording_live {
                    self.recording_failed = true;
                }
                self.recording_live = false;
                self.deposit.handle_store_failed(now);
            }
        }
    }

    /// Carry out what the deposit asks, up to the first thing only the call can do.
    pub fn poll(
        &mut self,
        now: Instant,
        call: CallHandle,
        io: &mut VmIo<'_>,
    ) -> Option<DepositOut> {
        loop {
            match self.deposit.poll_action()? {
                Action::Play(says) => {
                    let menus = &self.menus;
                    let lang = self.language;
                    let mb = menus.mailbox(self.mailbox);
                    // (name for the log, recording)
                    let mut prompts: Vec<(String, Prompt)> = Vec::new();
                    let named = |id: ivr_menus::PromptId| {
                        (
                            menus.prompt_name(id).to_string(),
                            menus.prompt_in(id, lang).clone(),
                        )
                    };
                    for say in says {
                        match say {
                            Say::Greeting => prompts.extend(mb.greeting.iter().map(|p| named(*p))),
                            Say::Saved => prompts.extend(mb.saved.iter().map(|p| named(*p))),
                            Say::Beep => prompts.push(("beep".into(), io.beep.clone())),
                            Say::Digit(digit) => {
                                prompts.extend(menus.digit_prompt(digit.as_char()).map(named))
                            }
                            Say::System(s) => {
                                prompts.extend(menus.find_prompt(s.name()).map(named))
                            }
                        }
                    }
                    return Some(DepositOut::Play(prompts));
                }
                Action::StopPlayback => return Some(DepositOut::StopPlayback),
                Action::StartRecording => {
                    if let Some(old) = self.recording.take() {
                        io.outputs
                            .push_back(Output::Voicemail(VoicemailCmd::Discard { recording: old }));
                    }
                    let recording = RecordingId(*io.next_recording);
                    *io.next_recording += 1;
                    self.recording = Some(recording);
                    self.recording_live = true;
                    self.samples = 0;
                    self.reorder.reset();
                    if let Some(r) = self.review.as_mut() {
                        r.clear();
                    }
                    self.request.callback_number = self.deposit.number().map(str::to_string);
                    let request = Box::new(self.request.clone());
                    io.outputs.push_back(Output::Voicemail(VoicemailCmd::Start {
                        recording,
                        request,
                    }));
                    io.outputs.push_back(Output::Event(Event::Recording {
                        call,
                        started: true,
                    }));
                }
                Action::StopRecording => {
                    let stop = if let (Some(recording), true) =
                        (self.recording, self.recording_live)
                    {
                        self.recording_live = false;
                        // What the reorder buffer still holds is part of the message.
                        self.record(now, recording, io.outputs, None);
                        Some(VoicemailCmd::Stop { recording })
                    } else if let (Some(recording), true) = (self.recording, self.recording_failed)
                    {
                        // Given up while live (see `recording_failed`): a writer that
                        // failed itself has nothing left to drop, which is harmless.
                        self.recording_failed = false;
                        self.recording = None;
                        Some(VoicemailCmd::Discard { recording })
                    } else {
                        None
                    };
                    if let Some(cmd) = stop {
                        io.outputs.push_back(Output::Voicemail(cmd));
                        io.outputs.push_back(Output::Event(Event::Recording {
                            call,
                            started: false,
                        }));
                    }
                }
                Action::DiscardRecording => {
                    if let Some(recording) = self.recording.take() {
                        self.recording_live = false;
                        self.samples = 0;
                        io.outputs
                            .push_back(Output::Voicemail(VoicemailCmd::Discard { recording }));
                    }
                }
                Action::PlayRecording => {
                    let pcm = self.review.as_deref().unwrap_or_default();
                    return Some(DepositOut::PlayMessage(Prompt::from_samples(
                        "your message",
                        pcm,
                    )));
                }
                Action::Submit(s) => {
                    let mut request = self.request.clone();
                    request.callback_number = s.callback_number;
                    request.has_message = s.has_message;
                    request.hung_up = s.hung_up;
                    request.duration_ms = if s.has_message { self.samples / 8 } else { 0 };
                    let recording = if s.has_message { self.recording } else { None };
                    self.submitted = Some(request.id.clone());
                    io.outputs.push_back(Output::Event(Event::CallbackRequest {
                        call,
                        id: request.id.clone(),
                        mailbox: request.mailbox.clone(),
                        number: request.callback_number.clone(),
                        duration_ms: request.duration_ms,
                    }));
                    io.outputs
                        .push_back(Output::Voicemail(VoicemailCmd::Submit {
                            call,
                            recording,
                            request: Box::new(request),
                        }));
                }
                Action::Hangup => return Some(DepositOut::Hangup),
            }
        }
    }
}

/// Count `frame` against a recording's cap (`count`: samples so far, cap): `None` past the
/// cap (the frame is left out), else whether it holds voice (for the silence that ends a
/// message or a comment).
pub(crate) fn take_frame(count: (&mut u64, u64), frame: &Frame) -> Option<bool> {
    let (samples, cap) = count;
    let pcm = frame.pcm();
    if *samples + pcm.len() as u64 > cap {
        return None;
    }
    *samples += pcm.len() as u64;
    let level = pcm.iter().map(|s| s.unsigned_abs() as u32).sum::<u32>() / pcm.len().max(1) as u32;
    Some(level > VOICE_LEVEL)
}

/// One frame out of the reorder buffer: to the recorder, to the review copy, and its level
/// to the deposit (for the silence that ends a message); none past the cap (`count`:
/// samples so far, cap).
fn record_frame(
    outputs: &mut std::collections::VecDeque<Output>,
    deposit: &mut Deposit,
    count: (&mut u64, u64),
    review: &mut Option<Vec<i16>>,
    recording: RecordingId,
    now: Instant,
    frame: &Frame,
) {
    let Some(voice) = take_frame(count, frame) else {
        return;
    };
    deposit.handle_audio(now, voice);
    if let Some(r) = review.as_mut() {
        r.extend_from_slice(frame.pcm());
    }
    outputs.push_back(Output::Voicemail(VoicemailCmd::Frame {
        recording,
        frame: *frame,
    }));
}
