//! The non-INVITE server transaction (RFC 3261 §17.2.2).

use super::{Timer, TimerConfig, TimerTable};
use crate::message::{Message, Request, Response};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// States of figure 8 of RFC 3261.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No response sent yet.
    Trying,
    /// A provisional response was sent.
    Proceeding,
    /// A final response was sent; request retransmissions get it again until Timer J.
    Completed,
    /// Done.
    Terminated,
}

/// The non-INVITE server transaction.
#[derive(Debug)]
pub struct ServerNonInvite {
    state: State,
    config: TimerConfig,
    reliable: bool,
    request: Request,
    last_response: Option<Response>,
    timers: TimerTable,
    transmits: VecDeque<Message>,
}

impl ServerNonInvite {
    /// Start the transaction for a received request.
    pub fn new(request: Request, reliable: bool, config: TimerConfig) -> ServerNonInvite {
        ServerNonInvite {
            state: State::Trying,
            config,
            reliable,
            request,
            last_response: None,
            timers: TimerTable::default(),
            transmits: VecDeque::new(),
        }
    }

    /// The request this transaction serves.
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

    /// The TU sends a response. Ignored after the final one.
    pub fn send_response(&mut self, now: Instant, response: Response) {
        if matches!(self.state, State::Completed | State::Terminated) {
            return;
        }
        let provisional = response.status.is_provisional();
        self.transmits
            .push_back(Message::Response(response.clone()));
        self.last_response = Some(response);
        if provisional {
            self.state = State::Proceeding;
        } else {
            self.state = State::Completed;
            let wait = if self.reliable {
                Duration::ZERO
            } else {
                self.config.timeout()
            };
            self.timers.set(Timer::J, now + wait);
        }
    }

    /// A retransmission of the request arrived (RFC 3261 §17.2.2).
    pub fn handle_retransmission(&mut self, _now: Instant) {
        if matches!(self.state, State::Proceeding | State::Completed)
            && let Some(r) = self.last_response.clone()
        {
            self.transmits.push_back(Message::Response(r));
        }
    }

    /// Fire the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((timer, _)) = self.timers.pop_due(now) {
            if timer == Timer::J {
                self.state = State::Terminated;
                self.timers.clear();
            }
        }
    }

    /// The next message to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Message> {
        self.transmits.pop_front()
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
    fn final_response_is_repeated_until_timer_j() {
        let t0 = crate::test_epoch();
        let cfg = TimerConfig::default();
        let mut tx = ServerNonInvite::new(request("BYE"), false, cfg);
        tx.handle_retransmission(t0);
        assert!(tx.poll_transmit().is_none(), "nothing to repeat in Trying");
        tx.send_response(t0, Response::new(StatusCode::OK));
        assert!(tx.poll_transmit().is_some());
        tx.handle_retransmission(t0 + Duration::from_secs(1));
        assert!(tx.poll_transmit().is_some());
        tx.handle_timeout(t0 + cfg.timeout() - Duration::from_millis(1));
        assert_eq!(tx.state(), State::Completed);
        tx.handle_timeout(t0 + cfg.timeout());
        assert!(tx.is_terminated());
    }

    #[test]
    fn reliable_terminates_at_once() {
        let t0 = crate::test_epoch();
        let mut tx = ServerNonInvite::new(request("OPTIONS"), true, TimerConfig::default());
        tx.send_response(t0, Response::new(StatusCode::OK));
        tx.handle_timeout(t0);
        assert!(tx.is_terminated());
    }
}
