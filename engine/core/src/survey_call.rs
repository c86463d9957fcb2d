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

use crate::call::{App, CallHandle, LegHandle};
use crate::engine::Engine;
use crate::io::{EndReason, Output};
use crate::leg::LegPhase;
use crate::outgoing::Stage;
use ivr_menus::MenuRun;
use ivr_menus::survey::{SurveyOutput, SurveyRun};
use std::time::Instant;

/// A caller answering a survey after its bridged call.
#[derive(Debug)]
pub struct SurveyCall {
    /// The caller's menu run (its language, and the prompts in it).
    pub run: Box<MenuRun>,
    /// The questions.
    pub survey: SurveyRun,
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
        call.app = App::Survey(Box::new(SurveyCall { run, survey }));
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
        }
        true
    }
}
