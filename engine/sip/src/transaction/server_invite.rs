//! The INVITE server transaction (RFC 3261 §17.2.1 with the Accepted state of RFC 6026 §8.5).

use super::{Timer, TimerConfig, TimerTable, is_2xx};
use crate::message::{Message, Request, Response};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// States of figure 7 of RFC 3261 as amended by RFC 6026 figure 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for the TU's final response.
    Proceeding,
    /// A 2xx was sent (RFC 6026): retransmitted until ACK (RFC 3261 §13.3.1.4), then absorbed until Timer L.
    Accepted,
    /// A 3xx-6xx was sent; retransmitted until ACK or Timer H.
    Completed,
    /// The ACK for a 3xx-6xx arrived; absorbing ACK retransmissions until Timer I.
    Confirmed,
    /// Done.
    Terminated,
}

/// What the INVITE server transaction tells its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerInviteEvent {
    /// The 2xx was not acknowledged within 64·T1: the call must be ended with BYE (RFC 3261 §13.3.1.4).
    AckTimeout,
    /// A 3xx-6xx was not acknowledged within Timer H.
    Timeout,
}

/// The INVITE server transaction.
#[derive(Debug)]
pub struct ServerInvite {
    state: State,
    config: TimerConfig,
    reliable: bool,
    request: Request,
    last_response: Option<Response>,
    retransmit_interval: Duration,
    timers: TimerTable,
    transmits: VecDeque<Message>,
    events: VecDeque<ServerInviteEvent>,
    acked: bool,
}

impl ServerInvite {
    /// Start the transaction for a received INVITE. A 100 Trying is queued at once
    /// (RFC 3261 §17.2.1: the engine cannot promise a final answer within 200 ms).
    pub fn new(
        now: Instant,
        request: Request,
        reliable: bool,
        config: TimerConfig,
    ) -> ServerInvite {
        let _ = now;
        let trying = Response::to_request(&request, crate::StatusCode::TRYING);
        let mut tx = ServerInvite {
            state: State::Proceeding,
            config,
            reliable,
            request,
            last_response: None,
            retransmit_interval: config.t1,
            timers: TimerTable::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            acked: false,
        };
        tx.send(trying);
        tx
    }

    /// The INVITE this transaction serves.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the transaction has ended and can be dropped.
    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    /// Whether a final response has been sent.
    pub fn is_final(&self) -> bool {
        self.state != State::Proceeding
    }

    fn send(&mut self, r: Response) {
        self.transmits.push_back(Message::Response(r.clone()));
        self.last_response = Some(r);
    }

    /// The TU sends a response (RFC 3261 §17.2.1). Ignored once a final response was sent.
    pub fn send_response(&mut self, now: Instant, response: Response) {
        if self.state != State::Proceeding {
            return;
        }
        let status = response.status;
        self.send(response);
        if status.is_provisional() {
            return;
        }
        self.retransmit_interval = self.config.t1;
        if is_2xx(status) {
            // RFC 6026 §8.5: Accepted; RFC 3261 §13.3.1.4: retransmit the 2xx until the ACK.
            self.state = State::Accepted;
            if !self.reliable {
                self.timers.set(Timer::G, now + self.config.t1);
            }
            self.timers.set(Timer::H, now + self.config.timeout());
            self.timers.set(Timer::L, now + self.config.timeout());
        } else {
            self.state = State::Completed;
            if !self.reliable {
                self.timers.set(Timer::G, now + self.config.t1);
            }
            self.timers.set(Timer::H, now + self.config.timeout());
        }
    }

    /// A retransmission of the INVITE arrived: resend the last response (RFC 3261 §17.2.1).
    /// In Accepted, retransmissions are absorbed (RFC 6026 §8.5).
    pub fn handle_retransmission(&mut self, _now: Instant) {
        if matches!(self.state, State::Proceeding | State::Completed)
            && let Some(r) = self.last_response.clone()
        {
            self.transmits.push_back(Message::Response(r));
        }
    }

    /// An ACK arrived: for a 3xx-6xx it matches this transaction (RFC 3261 §17.2.1); for a
    /// 2xx the dialog layer matched it and tells us to stop retransmitting.
    pub fn handle_ack(&mut self, now: Instant) {
        match self.state {
            State::Completed => {
                self.state = State::Confirmed;
                self.timers.cancel(Timer::G);
                self.timers.cancel(Timer::H);
                let wait = if self.reliable {
                    Duration::ZERO
                } else {
                    self.config.t4
                };
                self.timers.set(Timer::I, now + wait);
            }
            State::Accepted if !self.acked => {
                self.acked = true;
                self.timers.cancel(Timer::G);
                self.timers.cancel(Timer::H);
            }
            _ => {}
        }
    }

    /// Whether the 2xx has been acknowledged.
    pub fn is_acked(&self) -> bool {
        self.acked
    }

    /// Fire the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((timer, deadline)) = self.timers.pop_due(now) {
            match (self.state, timer) {
                (State::Completed | State::Accepted, Timer::G) => {
                    if let Some(r) = self.last_response.clone() {
                        self.transmits.push_back(Message::Response(r));
                    }
                    self.retransmit_interval = (self.retransmit_interval * 2).min(self.config.t2);
                    // The next deadline advances from this one, so late handling does not drift.
                    self.timers
                        .set(Timer::G, deadline + self.retransmit_interval);
                }
                (State::Completed, Timer::H) => {
                    self.events.push_back(ServerInviteEvent::Timeout);
                    self.terminate();
                }
                (State::Accepted, Timer::H) => {
                    self.timers.cancel(Timer::G);
                    self.events.push_back(ServerInviteEvent::AckTimeout);
                }
                (State::Accepted, Timer::L) | (State::Confirmed, Timer::I) => self.terminate(),
                _ => {}
            }
        }
    }

    fn terminate(&mut self) {
        self.state = State::Terminated;
        self.timers.clear();
    }

    /// The next message to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Message> {
        self.transmits.pop_front()
    }

    /// The next event for the TU.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ServerInviteEvent> {
        self.events.pop_front()
    }

    /// The next deadline.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StatusCode;
    use crate::transaction::layer::tests::invite;

    fn drain(tx: &mut ServerInvite) -> Vec<u16> {
        std::iter::from_fn(|| tx.poll_transmit())
            .map(|m| match m {
                Message::Response(r) => r.status.code(),
                Message::Request(_) => 0,
            })
            .collect()
    }

    #[test]
    fn trying_then_2xx_retransmitted_with_doubling_until_ack() {
        let t0 = crate::test_epoch();
        let cfg = TimerConfig::default();
        let mut tx = ServerInvite::new(t0, invite(), false, cfg);
        assert_eq!(drain(&mut tx), vec![100]);
        tx.handle_retransmission(t0);
        assert_eq!(drain(&mut tx), vec![100]);
        tx.send_response(t0, Response::new(StatusCode::OK));
        assert_eq!(drain(&mut tx), vec![200]);
        assert_eq!(tx.state(), State::Accepted);
        // 2xx retransmissions at 0.5, 1.5, 3.5, 7.5, 11.5 s (intervals 0.5, 1, 2, 4, 4)
        let mut sent_at = vec![];
        let mut now = t0;
        while let Some(at) = tx.poll_timeout() {
            if at > t0 + Duration::from_secs(12) {
                break;
            }
            now = at;
            tx.handle_timeout(now);
            if !drain(&mut tx).is_empty() {
                sent_at.push((now - t0).as_millis());
            }
        }
        assert_eq!(sent_at, vec![500, 1500, 3500, 7500, 11500]);
        // INVITE retransmissions are absorbed in Accepted
        tx.handle_retransmission(now);
        assert!(drain(&mut tx).is_empty());
        tx.handle_ack(now);
        assert!(tx.is_acked());
        tx.handle_timeout(now + Duration::from_secs(20));
        assert!(drain(&mut tx).is_empty());
        assert_eq!(tx.poll_event(), None);
        tx.handle_timeout(t0 + cfg.timeout());
        assert!(tx.is_terminated());
    }

    #[test]
    fn unacked_2xx_reports_ack_timeout_after_timer_h() {
        let t0 = crate::test_epoch();
        let cfg = TimerConfig::default();
        let mut tx = ServerInvite::new(t0, invite(), false, cfg);
        tx.send_response(t0, Response::new(StatusCode::OK));
        let mut now = t0;
        while tx.poll_event().is_none() {
            now = tx.poll_timeout().unwrap();
            tx.handle_timeout(now);
            if let Some(e) = tx.poll_event() {
                assert_eq!(e, ServerInviteEvent::AckTimeout);
                break;
            }
        }
        assert_eq!(now - t0, cfg.timeout());
    }

    #[test]
    fn error_response_waits_for_ack_then_timer_i() {
        let t0 = crate::test_epoch();
        let cfg = TimerConfig::default();
        let mut tx = ServerInvite::new(t0, invite(), false, cfg);
        drain(&mut tx);
        tx.send_response(t0, Response::new(StatusCode::REQUEST_TERMINATED));
        assert_eq!(drain(&mut tx), vec![487]);
        tx.handle_retransmission(t0);
        assert_eq!(drain(&mut tx), vec![487]);
        tx.handle_timeout(t0 + cfg.t1);
        assert_eq!(drain(&mut tx), vec![487]);
        tx.handle_ack(t0 + cfg.t1);
        assert_eq!(tx.state(), State::Confirmed);
        assert_eq!(tx.poll_timeout(), Some(t0 + cfg.t1 + cfg.t4));
        tx.handle_timeout(t0 + cfg.t1 + cfg.t4);
        assert!(tx.is_terminated());
    }

    #[test]
    fn reliable_transport_never_retransmits_and_timer_i_is_zero() {
        let t0 = crate::test_epoch();
        let cfg = TimerConfig::default();
        let mut tx = ServerInvite::new(t0, invite(), true, cfg);
        drain(&mut tx);
        tx.send_response(t0, Response::new(StatusCode::BAD_REQUEST));
        drain(&mut tx);
        assert_eq!(tx.poll_timeout(), Some(t0 + cfg.timeout()));
        tx.handle_ack(t0);
        tx.handle_timeout(t0);
        assert!(tx.is_terminated());
    }

    #[test]
    fn lost_ack_times_out_in_completed() {
        let t0 = crate::test_epoch();
        let cfg = TimerConfig::default();
        let mut tx = ServerInvite::new(t0, invite(), false, cfg);
        tx.send_response(t0, Response::new(StatusCode::BAD_REQUEST));
        tx.handle_timeout(t0 + cfg.timeout());
        assert_eq!(tx.poll_event(), Some(ServerInviteEvent::Timeout));
        assert!(tx.is_terminated());
    }
}
