//! The satisfaction survey after a bridged call (issue #12).
//!
//! A caller whose `queue:` or `transfer:` action asked for a survey (`survey: NAME`) is not
//! hung up when the agent or the destination hangs up the bridged call: the other leg
//! closes, the queue or the transfer lets go of it as if the call had ended (the agent is
//! free again), and the call's application becomes [`App::Survey`]: an
//! [`ivr_menus::survey::SurveyRun`] plays the questions to the caller and takes one key each
//! (RFC 4733 events, SIP INFO or in-band, as the menus do), then the thanks, then hangs
//! up. A caller who hangs up first gets no survey. The answers go into the call record
//! ([`crate::cdr`]).
//!
//! A recorded question (`record:`) takes a spoken comment instead of a key: after its
//! prompt and the record beep the caller's audio goes, in RTP timestamp order, to the
//! driver's voicemail recorder (the same writer and the same durability as a message:
//! `.wav.part`, fsync, rename, crash recovery), started with
//! [`VoicemailCmd::StartComment`]. One comment per call at most, as long as the question's
//! `max_length`. A caller hanging up while speaking keeps what was said; an empty comment is
//! dropped.

use crate::call::{App, CallHandle, LegHandle};
use crate::engine::Engine;
use crate::io::{EndReason, Event, Output, VoicemailCmd, VoicemailReport};
use crate::leg::LegPhase;
use crate::outgoing::Stage;
use crate::voicemail::{REORDER_DELAY, take_frame};
use ivr_audio::reorder::{Frame, Reorder};
use ivr_menus::MenuRun;
use ivr_menus::survey::{SurveyOutput, SurveyRun};
use ivr_voicemail::RecordingId;
use std::collections::VecDeque;
use std::time::Instant;

/// A caller answering a survey after its bridged call.
#[derive(Debug)]
pub struct SurveyCall {
    /// The caller's menu run (its language, and the prompts in it).
    pub run: Box<MenuRun>,
    /// The questions.
    pub survey: SurveyRun,
    /// The comment, once its recording started (one per call).
    pub comment: Option<Comment>,
}

/// A survey comment: its recording, written by the driver's recorder.
#[derive(Debug)]
pub struct Comment {
    /// The recording.
    pub recording: RecordingId,
    /// Its store key (the file is `KEY.wav`).
    pub key: String,
    /// Whether frames go to the recorder now.
    pub live: bool,
    /// Whether it was kept when it stopped (the caller spoke).
    pub kept: bool,
    /// The recorder could not write it: there is no file.
    pub failed: bool,
    /// Samples sent to the recorder.
    samples: u64,
    /// The most samples it may have: its `max_length` of audio, whatever the caller's
    /// timestamps say (a stream jumping ahead is filled with silence by the reorder
    /// buffer; a hostile one must not fill the disk faster than time passes).
    cap: u64,
    /// The reorder buffer (the caller's audio in timestamp order, losses as silence).
    reorder: Box<Reorder>,
}

impl SurveyCall {
    /// The caller's audio (one packet, decoded, with its RTP timestamp): recorded in
    /// timestamp order while the comment records, each frame's level told to the survey
    /// (silence ends a comment). No allocation: frames travel inline.
    pub fn handle_audio(
        &mut self,
        now: Instant,
        timestamp: u32,
        pcm: &[i16],
        outputs: &mut VecDeque<Output>,
    ) {
        let Some(c) = self.comment.as_mut().filter(|c| c.live) else {
            return;
        };
        let survey = &mut self.survey;
        let (recording, cap, samples) = (c.recording, c.cap, &mut c.samples);
        c.reorder.push(timestamp, pcm, &mut |frame: &Frame| {
            comment_frame(outputs, survey, recording, (samples, cap), now, frame);
        });
    }

    /// The store key of the kept comment, if there is one (what the call record links).
    pub fn kept_comment(&self) -> Option<&str> {
        self.comment
            .as_ref()
            .filter(|c| c.kept && !c.failed)
            .map(|c| c.key.as_str())
    }
}

/// One frame of the comment: its level to the survey, its samples to the recorder (none
/// past the cap: `count` is (samples so far, cap)).
fn comment_frame(
    outputs: &mut VecDeque<Output>,
    survey: &mut SurveyRun,
    recording: RecordingId,
    count: (&mut u64, u64),
    now: Instant,
    frame: &Frame,
) {
    let Some(voice) = take_frame(count, frame) else {
        return;
    };
    survey.handle_audio(now, voice);
    outputs.push_back(Output::Voicemail(VoicemailCmd::Frame {
        recording,
        frame: *frame,
    }));
}

impl Engine {
    /// `leg` (an agent's or a transfer destination's) hung up: if it was bridged to a
    /// caller who asked for a survey, and the caller is still there, the survey starts and
    /// this returns true; otherwise the call ends as usual.
    pub(crate) fn start_survey(&mut self, now: Instant, leg: LegHandle) -> bool {
        let Some(call) = self.calls.get_mut(&leg.call) else {
            return false;
        };
        let survey = match &call.app {
            App::Queued(q)
                if q.callback.is_none()
                    && q.whisper.is_none()
                    && q.agent.as_ref().is_some_and(|a| a.leg == leg) =>
            {
                q.run.survey()
            }
            App::Transfer(t) if t.leg == leg && matches!(t.stage, Stage::Bridged { .. }) => {
                t.run.survey()
            }
            _ => None,
        };
        let Some(survey) = survey else {
            return false;
        };
        if !call.legs.first().is_some_and(|l| l.is_active()) {
            return false;
        }
        if let Some(l) = call.leg_mut(leg) {
            l.phase = LegPhase::Closed;
            l.media = None;
            self.ctx.outputs.push_back(Output::CloseMedia { leg });
        }
        // The bridged call ended on the other side: so does the record say, whatever the
        // caller does during the survey.
        call.pending_reason(EndReason::DestinationHungUp);
        let menus = call.app.menus().clone();
        let mut old = std::mem::replace(
            &mut call.app,
            App::Menu(Box::new(MenuRun::new(menus.clone()))),
        );
        let blank = || Box::new(MenuRun::new(menus.clone()));
        let run = match &mut old {
            App::Queued(q) => std::mem::replace(&mut q.run, blank()),
            App::Transfer(t) => std::mem::replace(&mut t.run, blank()),
            _ => return false,
        };
        let caller = call.caller_leg();
        caller.stop();
        if let Some(m) = caller.media.as_mut() {
            m.set_relay(false);
        }
        let mut survey = SurveyRun::new(menus, survey);
        self.ctx.event(crate::io::Event::SurveyStarted {
            call: leg.call,
            survey: survey.name().to_string(),
        });
        survey.start(now);
        call.app = App::Survey(Box::new(SurveyCall {
            run,
            survey,
            comment: None,
        }));
        // The queue (the agent is free again) or the transfer lets go of the call.
        let handle = leg.call;
        match old {
            App::Queued(_) => self.detach_queued(old, handle),
            other => self.detach_transfer(other),
        }
        self.apply_app(now, handle);
        self.reindex(handle);
        true
    }

    /// Carry out what the survey asks; `false` once it has nothing more.
    pub(crate) fn apply_survey(&mut self, now: Instant, handle: CallHandle) -> bool {
        let Some(call) = self.calls.get_mut(&handle) else {
            return false;
        };
        let App::Survey(s) = &mut call.app else {
            return false;
        };
        let Some(out) = s.survey.poll_output() else {
            return false;
        };
        match out {
            SurveyOutput::Play(ids) => {
                let menus = s.run.menus();
                let prompts = ids
                    .iter()
                    .map(|id| {
                        (
                            menus.prompt_name(*id).to_string(),
                            s.run.prompt(*id).clone(),
                        )
                    })
                    .collect();
                self.play(handle, prompts);
            }
            SurveyOutput::StopPlayback => call.caller_leg().stop(),
            SurveyOutput::Hangup => self.end_call(now, handle, EndReason::MenuHangup),
            SurveyOutput::Beep => {
                let beep = self.beep.clone();
                self.play(handle, vec![("beep".into(), beep)]);
            }
            SurveyOutput::StartRecording => self.start_comment(now, handle),
            SurveyOutput::StopRecording { keep } => self.stop_comment(now, handle, keep),
        }
        true
    }

    /// Start recording the caller's comment (once per call: a second is not recorded).
    fn start_comment(&mut self, now: Instant, handle: CallHandle) {
        let key = format!(
            "{}{}-{:08x}",
            ivr_voicemail::calls::COMMENT_PREFIX,
            self.wall_seconds(now),
            self.ctx.rng.next_u32()
        );
        let Some(call) = self.calls.get(&handle) else {
            return;
        };
        let App::Survey(s) = &call.app else { return };
        if s.comment.is_some() {
            return;
        }
        // The record as known now, the comment answered: what a crash leaves to recover.
        let survey = s.survey.name().to_string();
        let mut answers: Vec<_> = s
            .survey
            .answers()
            .iter()
            .map(|a| crate::cdr::call_answer(&survey, a, None))
            .collect();
        answers.push(ivr_voicemail::calls::CallAnswer {
            survey,
            question: s.survey.current_question().unwrap_or_default().to_string(),
            answer: None,
            outcome: "hangup".into(),
            recording: Some(key.clone()),
        });
        let record = self.cdr_snapshot(call, now, answers);
        let cap = s
            .survey
            .comment_limit()
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX) * 8);
        let recording = RecordingId(self.next_recording);
        self.next_recording += 1;
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Survey(s) = &mut call.app else {
            return;
        };
        s.comment = Some(Comment {
            recording,
            key: key.clone(),
            live: true,
            kept: false,
            failed: false,
            samples: 0,
            cap,
            reorder: Box::new(Reorder::new(REORDER_DELAY)),
        });
        let out = &mut self.ctx.outputs;
        out.push_back(Output::Voicemail(VoicemailCmd::StartComment {
            recording,
            key,
            record: Box::new(record),
        }));
        out.push_back(Output::Event(Event::Recording {
            call: handle,
            started: true,
        }));
    }

    /// Stop recording the comment: the file is finished and kept if the caller spoke
    /// (`keep`), else deleted.
    fn stop_comment(&mut self, now: Instant, handle: CallHandle, keep: bool) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Survey(s) = &mut call.app else {
            return;
        };
        let Some(c) = s.comment.as_mut().filter(|c| c.live) else {
            return;
        };
        c.live = false;
        let recording = c.recording;
        let out = &mut self.ctx.outputs;
        if keep {
            // What the reorder buffer still holds is part of the comment.
            let survey = &mut s.survey;
            let (cap, samples) = (c.cap, &mut c.samples);
            c.reorder.flush(&mut |frame: &Frame| {
                comment_frame(out, survey, recording, (samples, cap), now, frame);
            });
            c.kept = true;
            out.push_back(Output::Voicemail(VoicemailCmd::Stop { recording }));
        } else {
            out.push_back(Output::Voicemail(VoicemailCmd::Discard { recording }));
        }
        out.push_back(Output::Event(Event::Recording {
            call: handle,
            started: false,
        }));
    }

    /// The call is ending (either side): a comment being recorded stops, kept if the
    /// caller spoke.
    pub(crate) fn survey_hangup(&mut self, now: Instant, handle: CallHandle) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Survey(s) = &mut call.app else {
            return;
        };
        if !s.survey.is_recording() {
            return;
        }
        s.survey.handle_hangup(now);
        self.apply_app(now, handle);
    }

    /// A report about a survey comment's recording (the recorder could not write it): the
    /// comment is lost, the survey goes on. `false` if the report is not about one.
    pub(crate) fn survey_recording_failed(&mut self, report: &VoicemailReport) -> bool {
        let VoicemailReport::RecordingFailed { recording } = report else {
            return false;
        };
        for call in self.calls.values_mut() {
            if let App::Survey(s) = &mut call.app
                && let Some(c) = s.comment.as_mut().filter(|c| c.recording == *recording)
            {
                // Given up while recording (the driver refused a frame: the recorder is
                // behind, the file still open): the recorder drops it, else it keeps the
                // file open and its `KEY.json` for a crash recovery that would store the
                // call twice. (After a failure of its own it has nothing left to drop.)
                if c.live {
                    self.ctx
                        .outputs
                        .push_back(Output::Voicemail(VoicemailCmd::Discard {
                            recording: c.recording,
                        }));
                }
                c.live = false;
                c.failed = true;
                return true;
            }
        }
        false
    }
}
