//! The agent's whisper: a queue's `whisper:` prompts ("a call from the sales queue"), played
//! to the agent who answers before the caller is put through.
//!
//! - When the center says [`Connect`](ivr_queues::Output::Connect), the agent's leg is a
//!   confirmed dialog and hears the whisper (in the caller's language); nothing is relayed
//!   yet ([`Queued::relays`](crate::queued::Queued::relays)) and the caller keeps hearing
//!   the queue's music. When the whisper has played, the legs are bridged
//!   ([`Engine::put_through`], [`Event::Bridged`](crate::io::Event::Bridged)).
//! - The caller hangs up meanwhile: the call ends as any connected one (the agent's leg
//!   gets BYE, the center hears `CallEnded` and the agent wraps up).
//! - The agent hangs up meanwhile: the caller stays in the queue, in its place, as Asterisk's
//!   app_queue does when the agent hangs up during its announcement: the agent's leg is
//!   closed and the center hears [`Input::Requeue`] (the agent is free again after the
//!   queue's `retry` rest, without wrap-up; the caller is offered to the others first).
//! - A queued callback's agent hears the whisper while the caller is dialled, then the
//!   ringing tone (in a loop) until the caller answers; a caller who answers during the
//!   whisper cuts it short and is bridged at once (nobody is kept waiting in silence).

use crate::call::{App, CallHandle, LegHandle};
use crate::engine::Engine;
use crate::io::Output;
use crate::leg::LegPhase;
use crate::queued::Queued;
use ivr_queues::{CallRef, Input};
use std::time::{Duration, Instant};

/// How long past the whisper's own length the caller may wait for its end: its packets are
/// paced by the agent's stream, which sends nothing to a phone that answered `sendonly` or
/// `inactive`, or that has sent nothing for a while ([`crate::media::SEND_WITHOUT_PEER`]).
const WHISPER_GRACE: Duration = Duration::from_secs(1);

/// The queue's whisper, in the caller's language (none: no whisper).
pub(crate) fn prompts(q: &Queued) -> Vec<ivr_audio::Prompt> {
    let menus = q.run.menus();
    menus
        .queue(q.queue)
        .whisper
        .iter()
        .map(|id| q.run.prompt(*id).clone())
        .collect()
}

impl Engine {
    /// The agent on `leg` answered a caller of a queue with a whisper: play it to the agent
    /// and put the caller through only at its end. False: no whisper (or a queued
    /// callback's call, whose agent heard it while the caller was dialled).
    pub(crate) fn start_whisper(
        &mut self,
        now: Instant,
        handle: CallHandle,
        leg: LegHandle,
    ) -> bool {
        let Some(call) = self.calls.get_mut(&handle) else {
            return false;
        };
        let App::Queued(q) = &mut call.app else {
            return false;
        };
        if q.callback.is_some() {
            return false;
        }
        let whisper = prompts(q);
        if whisper.is_empty() {
            return false;
        }
        let Some(l) = call.legs.get_mut(usize::from(leg.index)) else {
            return false;
        };
        let frames: usize = whisper.iter().map(ivr_audio::Prompt::frame_count).sum();
        let length = crate::media::PTIME.saturating_mul(u32::try_from(frames).unwrap_or(u32::MAX));
        l.play(whisper);
        q.whisper = Some(now + length + WHISPER_GRACE);
        true
    }

    /// The whisper's time is up (its playback did not report its end: nothing could be
    /// sent to the agent): the caller is put through all the same.
    pub(crate) fn whisper_timeout(&mut self, now: Instant, handle: CallHandle) {
        let Some(call) = self.calls.get(&handle) else {
            return;
        };
        let App::Queued(q) = &call.app else { return };
        if let (Some(until), Some(r)) = (q.whisper, q.agent.as_ref())
            && until <= now
        {
            let leg = r.leg;
            self.agent_playback_finished(leg);
        }
    }

    /// What played to an agent's leg ended: at the whisper's end, the caller is put through.
    pub(crate) fn agent_playback_finished(&mut self, leg: LegHandle) {
        let Some(call) = self.calls.get_mut(&leg.call) else {
            return;
        };
        let App::Queued(q) = &mut call.app else {
            return;
        };
        let Some(agent) = q
            .agent
            .as_ref()
            .filter(|r| q.whisper.is_some() && r.leg == leg)
            .map(|r| r.agent.clone())
        else {
            return;
        };
        q.whisper = None;
        self.put_through(leg.call, &agent);
        self.reindex(leg.call);
    }

    /// What played to a queued callback's agent while the caller is dialled ended (the
    /// whisper, or one cadence of the ringing tone): the ringing tone again.
    pub(crate) fn callback_agent_playback_finished(&mut self, leg: LegHandle) {
        let ringback = self.ringback.clone();
        let Some(call) = self.calls.get_mut(&leg.call) else {
            return;
        };
        let App::Queued(q) = &call.app else { return };
        let dialing = q.agent.is_none()
            && q.callback.as_ref().is_some_and(|cb| cb.offer.is_some())
            && q.rings.iter().any(|r| r.leg == leg && r.answered);
        if let Some(l) = call.leg_mut(leg).filter(|_| dialing) {
            l.play(vec![ringback]);
        }
    }

    /// `leg` hung up (BYE): if it is an agent hearing the whisper, its caller goes back to
    /// its place in the queue instead of the call ending. Returns whether it was.
    pub(crate) fn whisper_hangup(&mut self, now: Instant, leg: LegHandle) -> bool {
        let Some(call) = self.calls.get_mut(&leg.call) else {
            return false;
        };
        let App::Queued(q) = &mut call.app else {
            return false;
        };
        if q.whisper.is_none() || q.agent.as_ref().is_none_or(|r| r.leg != leg) {
            return false;
        }
        q.whisper = None;
        let Some(ring) = q.agent.take() else {
            return false;
        };
        if let Some(l) = call.leg_mut(leg) {
            l.phase = LegPhase::Closed;
            l.media = None;
            self.ctx.outputs.push_back(Output::CloseMedia { leg });
        }
        // The caller still hears the music; the attempt finishes its transactions detached.
        self.drop_ring(now, ring, false);
        self.queue_input(
            now,
            Input::Requeue {
                call: CallRef(leg.call.0),
            },
        );
        self.reindex(leg.call);
        true
    }
}
