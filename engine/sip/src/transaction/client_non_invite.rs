//! The non-INVITE client transaction (RFC 3261 §17.1.2), used for the engine's own BYE.

use super::{Timer, TimerConfig, TimerTable};
use crate::message::{Message, Request, Response};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// States of figure 6 of RFC 3261.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Request sent, no response yet.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived; absorbing retransmissions until Timer K.
    Completed,
    /// Done.
    Terminated,
}

/// What the client transaction tells its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// A response arrived (each provisional once, the final once).
    Response(Response),
    /// No final response within Timer F (or B): treat as 408 (RFC 3261 §8.1.3.1).
    Timeout,
}

/// The non-INVITE client transaction.
#[derive(Debug)]
pub struct ClientNonInvite {
    state: State,
    config: TimerConfig,
    reliable: bool,
    request: Request,
    interval: Duration,
    timers: TimerTable,
    transmits: VecDeque<Message>,
    events: VecDeque<ClientEvent>,
}

impl ClientNonInvite {
    /// Start the transaction: the request is queued for sending and Timers E and F armed.
    pub fn new(now: Instant, request: Request, reliable: bool, config: TimerConfig) -> Self {
        let mut timers = TimerTable::default();
        if !reliable {
            timers.set(Timer::E, now + config.t1);
        }
        timers.set(Timer::F, now + config.timeout());
        ClientNonInvite {
            state: State::Trying,
            config,
            reliable,
            transmits: VecDeque::from([Message::Request(request.clone())]),
            request,
            interval: config.t1,
            timers,
            events: VecDeque::new(),
        }
    }

    /// The request.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the transaction has ended.
    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    /// A response matched to this transaction arrived.
    pub fn handle_response(&mut self, now: Instant, response: Response) {
        match self.state {
            State::Trying | State::Proceeding => {
                if response.status.is_provisional() {
                    self.state = State::Proceeding;
                } else {
                    self.state = State::Completed;
                    self.timers.cancel(Timer::E);
                    self.timers.cancel(Timer::F);
                    let wait = if self.reliable {
                        Duration::ZERO
                    } else {
                        self.config.t4
                    };
                    self.timers.set(Timer::K, now + wait);
                }
                self.events.push_back(ClientEvent::Response(response));
            }
            State::Completed | State::Terminated => {}
        }
    }

    /// Fire the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((timer, deadline)) = self.timers.pop_due(now) {
            match (self.state, timer) {
                (State::Trying | State::Proceeding, Timer::E) => {
                    self.transmits
                        .push_back(Message::Request(self.request.clone()));
                    // Trying doubles up to T2; Proceeding retransmits every T2 (§17.1.2.2).
                    self.interval = if self.state == State::Trying {
                        (self.interval * 2).min(self.config.t2)
                    } else {
                        self.config.t2
                    };
                    self.timers.set(Timer::E, deadline + self.interval);
                }
                (State::Trying | State::Proceeding, Timer::F) => {
                    self.events.push_back(ClientEvent::Timeout);
                    self.state = State::Terminated;
                    self.timers.clear();
                }
                (State::Completed, Timer::K) => {
                    self.state = State::Terminated;
                    self.timers.clear();
                }
                _ => {}
            }
        }
    }

    /// The next message to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Message> {
        self.transmits.pop_front()
    }

    /// The next event for the TU.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
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
    use crate::transaction::layer::tests::request;

    #[test]
    fn retransmits_on_timer_e_and_times_out_on_f() {
        let t0 = crate::test_epoch();
        let cfg = TimerConfig::default();
        let mut tx = ClientNonInvite::new(t0, request("BYE"), false, cfg);
        assert!(tx.poll_transmit().is_some());
        let mut sent = vec![];
        while let Some(at) = tx.poll_timeout() {
            tx.handle_timeout(at);
            while tx.poll_transmit().is_some() {
                sent.push((at - t0).as_millis());
            }
        }
        // 0.5, 1.5, 3.5, 7.5, then every 4 s until 32 s
        assert_eq!(&sent[..5], &[500, 1500, 3500, 7500, 11500]);
        assert_eq!(*sent.last().unwrap(), 31500);
        assert_eq!(tx.poll_event(), Some(ClientEvent::Timeout));
        assert!(tx.is_terminated());
    }

    #[test]
    fn lossy_network_final_response_completes() {
        let t0 = crate::test_epoch();
        let cfg = TimerConfig::default();
        let mut tx = ClientNonInvite::new(t0, request("BYE"), false, cfg);
        let _ = tx.poll_transmit();
        // first two sends lost; the response to the third arrives
        tx.handle_timeout(t0 + Duration::from_millis(500));
        tx.handle_timeout(t0 + Duration::from_millis(1500));
        assert_eq!(std::iter::from_fn(|| tx.poll_transmit()).count(), 2);
        tx.handle_response(
            t0 + Duration::from_millis(1600),
            Response::new(StatusCode::TRYING),
        );
        assert_eq!(tx.state(), State::Proceeding);
        // in Proceeding, retransmit every T2
        tx.handle_timeout(t0 + Duration::from_millis(3500));
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_millis(7500)));
        tx.handle_response(t0 + Duration::from_secs(4), Response::new(StatusCode::OK));
        tx.handle_response(t0 + Duration::from_secs(4), Response::new(StatusCode::OK));
        let events: Vec<_> = std::iter::from_fn(|| tx.poll_event()).collect();
        assert_eq!(events.len(), 2, "1xx once and the final once: {events:?}");
        tx.handle_timeout(t0 + Duration::from_secs(4) + cfg.t4);
        assert!(tx.is_terminated());
    }
}
