//! A recording outlives its call by a moment: the caller's last packets.
//!
//! A caller who hangs up while a message is recorded sends its BYE right after the last
//! RTP packets; those packets are still in flight (in the network, in our socket's buffer,
//! or held by the reorder buffer) when the BYE is read. Stopping the recording at the BYE
//! would cut them off. So when a BYE ends a call that records, the call ends at once as
//! far as anyone can see (the BYE is answered, the call's slot is free, `CallEnded` goes
//! out) but the caller's leg and the deposit are kept aside for [`LINGER`]: the leg's RTP
//! is still decoded and recorded, then the recording is finished (the reorder buffer
//! flushed, stopped, submitted) and the media socket closed. The call's record, made at
//! the BYE (its end is the BYE's time), goes out then, once it can name the request the
//! caller left.
//!
//! The time is fixed when the BYE comes and packets never extend it, so a peer cannot keep
//! a socket open by streaming; it holds no admission slot (the call was counted as ended)
//! and at most one lingering entry per call.

use crate::call::{CallHandle, LegHandle};
use crate::engine::Engine;
use crate::io::{Event, Output};
use crate::leg::Leg;
use crate::media::Received;
use crate::voicemail::{DepositCall, VmIo};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a recording goes on taking the caller's RTP after the caller's BYE: the
/// packets sent just before it (in flight, in the socket buffer, or waiting in the reorder
/// buffer, which holds 60 ms) arrive well within it on any path a call survives.
pub const LINGER: Duration = Duration::from_millis(200);

/// One recording finishing after its call ended.
#[derive(Debug)]
struct Lingering {
    /// The caller's leg (its media decodes the packets).
    leg: Leg,
    /// The deposit, its recording live.
    deposit: Box<DepositCall>,
    /// The call's record, made when the call ended, held for the request's id.
    record: Option<Event>,
}

/// The recordings finishing after their calls ended, and when each is finished.
#[derive(Debug, Default)]
pub(crate) struct Linger {
    by_call: HashMap<CallHandle, Lingering>,
    /// (deadline, call), in deadline order (every entry lasts [`LINGER`]).
    order: VecDeque<(Instant, CallHandle)>,
}

impl Linger {
    /// Whether nothing lingers.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_call.is_empty()
    }

    /// The next recording to finish.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.order.front().map(|(at, _)| *at)
    }
}

/// Whether a call that ends for `reason` with `app` lingers: a caller's BYE during a
/// recording that still takes audio.
pub(crate) fn wants_linger(reason: crate::io::EndReason, app: &crate::call::App) -> bool {
    reason == crate::io::EndReason::CallerHungUp
        && matches!(app, crate::call::App::Deposit(d) if d.recording.is_some() && d.recording_live)
}

impl Engine {
    /// Keep a call's leg and deposit aside until `now + LINGER` (its call has ended), and
    /// its `record` (if it gets one) until then.
    pub(crate) fn start_linger(
        &mut self,
        now: Instant,
        handle: CallHandle,
        leg: Leg,
        deposit: Box<DepositCall>,
        record: Option<Event>,
    ) {
        if self.linger.by_call.contains_key(&handle) {
            return;
        }
        self.linger.by_call.insert(
            handle,
            Lingering {
                leg,
                deposit,
                record,
            },
        );
        self.linger.order.push_back((now + LINGER, handle));
    }

    /// RTP for a leg whose call has ended: recorded if its recording lingers. `false` if
    /// the leg is not lingering.
    pub(crate) fn linger_rtp(
        &mut self,
        now: Instant,
        leg: LegHandle,
        from: SocketAddr,
        data: &[u8],
    ) -> bool {
        let Some(l) = self.linger.by_call.get_mut(&leg.call) else {
            return false;
        };
        if l.leg.handle != leg {
            return false;
        }
        if let Some(Received::Audio { timestamp, .. }) =
            l.leg.handle_rtp(&mut self.ctx, now, from, data)
            && let Some(media) = &l.leg.media
        {
            l.deposit
                .handle_audio(now, timestamp, media.decoded(), &mut self.ctx.outputs);
        }
        true
    }

    /// Finish the recordings whose time is up.
    pub(crate) fn linger_timeout(&mut self, now: Instant) {
        while let Some(&(at, handle)) = self.linger.order.front() {
            if at > now {
                break;
            }
            self.linger.order.pop_front();
            self.end_linger(now, handle);
        }
    }

    /// Finish every lingering recording now (the engine stops).
    pub(crate) fn end_all_lingering(&mut self, now: Instant) {
        while let Some((_, handle)) = self.linger.order.pop_front() {
            self.end_linger(now, handle);
        }
    }

    /// The caller's hang-up reaches the deposit now: what the reorder buffer holds is
    /// recorded, the recording stopped and the request submitted; the socket is closed,
    /// and the call's record goes out naming the request.
    fn end_linger(&mut self, now: Instant, handle: CallHandle) {
        let Some(mut l) = self.linger.by_call.remove(&handle) else {
            return;
        };
        l.deposit.handle_hangup(now);
        let mut io = VmIo {
            outputs: &mut self.ctx.outputs,
            next_recording: &mut self.next_recording,
            beep: &self.beep,
        };
        // The call is gone: what it would play or end is moot; the recorder's work is not.
        while l.deposit.poll(now, handle, &mut io).is_some() {}
        self.ctx
            .outputs
            .push_back(Output::CloseMedia { leg: l.leg.handle });
        if let Some(mut record) = l.record {
            if let Event::CallRecord(r) = &mut record
                && l.deposit.submitted.is_some()
            {
                r.request_id = l.deposit.submitted;
            }
            self.ctx.event(record);
        }
    }
}
