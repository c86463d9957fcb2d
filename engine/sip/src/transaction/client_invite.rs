//! The INVITE client transaction (RFC 3261 §17.1.1 with the Accepted state of RFC 6026 §8.4).
//! The engine uses it for agent legs and transfers.

use super::client_non_invite::ClientEvent;
use super::{Timer, TimerConfig, TimerTable, is_2xx};
use crate::header::HeaderName;
use crate::message::{CoreHeaders, Message, Method, Request, Response};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// States of figure 5 of RFC 3261 as amended by RFC 6026 figure 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// INVITE sent, nothing heard.
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A 2xx arrived (RFC 6026): further 2xx go to the TU until Timer M.
    Accepted,
    /// A 3xx-6xx arrived and was ACKed; absorbing retransmissions until Timer D.
    Completed,
    /// Done.
    Terminated,
}

/// The INVITE client transaction.
#[derive(Debug)]
pub struct ClientInvite {
    state: State,
    config: TimerConfig,
    reliable: bool,
    request: Request,
    ack: Option<Request>,
    interval: Duration,
    timers: TimerTable,
    transmits: VecDeque<Message>,
    events: VecDeque<ClientEvent>,
}

impl ClientInvite {
    /// Start the transaction: the INVITE is queued and Timers A and B armed.
    pub fn new(now: Instant, request: Request, reliable: bool, config: TimerConfig) -> Self {
        let mut timers = TimerTable::default();
        if !reliable {
            timers.set(Timer::A, now + config.t1);
        }
        timers.set(Timer::B, now + config.timeout());
        ClientInvite {
            state: State::Calling,
            config,
            reliable,
            transmits: VecDeque::from([Message::Request(request.clone())]),
            request,
            ack: None,
            interval: config.t1,
            timers,
            events: VecDeque::new(),
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The INVITE.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Whether the transaction has ended.
    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    /// A response matched to this transaction arrived.
    pub fn handle_response(&mut self, now: Instant, response: Response) {
        let status = response.status;
        match self.state {
            State::Calling | State::Proceeding => {
                self.timers.cancel(Timer::A);
                if status.is_provisional() {
                    // Timer B only runs in Calling (RFC 3261 §17.1.1.2): once the peer
                    // answers provisionally, how long it may ring is the TU's decision (it
                    // CANCELs, §9.1), or a ringing call would end after 64·T1.
                    self.state = State::Proceeding;
                    self.timers.cancel(Timer::B);
                    self.events.push_back(ClientEvent::Response(response));
                } else if is_2xx(status) {
                    // RFC 6026 §8.4: the TU sends the ACK for a 2xx; we only pass them up.
                    self.state = State::Accepted;
                    self.timers.cancel(Timer::B);
                    self.timers.set(Timer::M, now + self.config.timeout());
                    self.events.push_back(ClientEvent::Response(response));
                } else {
                    self.state = State::Completed;
                    self.timers.cancel(Timer::B);
                    let ack = self.build_ack(&response);
                    self.transmits.push_back(Message::Request(ack.clone()));
                    self.ack = Some(ack);
                    let wait = if self.reliable {
                        Duration::ZERO
                    } else {
                        Duration::from_secs(32)
                    };
                    self.timers.set(Timer::D, now + wait);
                    self.events.push_back(ClientEvent::Response(response));
                }
            }
            State::Accepted if is_2xx(status) => {
                self.events.push_back(ClientEvent::Response(response));
            }
            State::Completed if !status.is_provisional() => {
                if let Some(ack) = self.ack.clone() {
                    self.transmits.push_back(Message::Request(ack));
                }
            }
            _ => {}
        }
    }

    /// The ACK for a non-2xx final response (RFC 3261 §17.1.1.3).
    fn build_ack(&self, response: &Response) -> Request {
        let mut ack = Request::new(Method::Ack, self.request.uri.clone());
        if let Some(via) = self.request.headers.values(&HeaderName::Via).next() {
            ack.headers.push(HeaderName::Via, via);
        }
        for name in [HeaderName::MaxForwards, HeaderName::From] {
            ack.headers.copy_from(&self.request.headers, &name);
        }
        ack.headers.copy_from(&response.headers, &HeaderName::To);
        ack.headers
            .copy_from(&self.request.headers, &HeaderName::CallId);
        if let Ok(cseq) = self.request.cseq() {
            ack.headers
                .push(HeaderName::CSeq, format!("{} ACK", cseq.seq));
        }
        ack.headers
            .copy_from(&self.request.headers, &HeaderName::Route);
        ack
    }

    /// Fire the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((timer, deadline)) = self.timers.pop_due(now) {
            match (self.state, timer) {
                (State::Calling, Timer::A) => {
                    self.transmits
                        .push_back(Message::Request(self.request.clone()));
                    self.interval *= 2;
                    self.timers.set(Timer::A, deadline + self.interval);
                }
                (State::Calling, Timer::B) => {
                    self.events.push_back(ClientEvent::Timeout);
                    self.state = State::Terminated;
                    self.timers.clear();
                }
                (State::Completed, Timer::D) | (State::Accepted, Timer::M) => {
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
    use crate::transaction::layer::tests::invite;

    fn response(status: StatusCode) -> Response {
        let mut r = Response::to_request(&invite(), status);
        r.headers
            .set(HeaderName::To, "<sip:ivr@127.0.0.1>;tag=agent");
        r
    }

    #[test]
    fn timer_a_doubles_without_cap_until_timer_b() {
        let t0 = crate::test_epoch();
        let cfg = TimerConfig::default();
        let mut tx = ClientInvite::new(t0, invite(), false, cfg);
        let _ = tx.poll_transmit();
        let mut sent = vec![];
        while let Some(at) = tx.poll_timeout() {
            tx.handle_timeout(at);
            while tx.poll_transmit().is_some() {
                sent.push((at - t0).as_millis());
            }
        }
        assert_eq!(sent, vec![500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(tx.poll_event(), Some(ClientEvent::Timeout));
    }

    #[test]
    fn error_response_is_acked_and_retransmissions_reacked() {
        let t0 = crate::test_epoch();
        let mut tx = ClientInvite::new(t0, invite(), false, TimerConfig::default());
        let _ = tx.poll_transmit();
        tx.handle_response(t0, response(StatusCode::RINGING));
        tx.handle_response(t0, response(StatusCode::new(486).unwrap()));
        let ack = match tx.poll_transmit() {
            Some(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.cseq().unwrap().method, Method::Ack);
        assert_eq!(ack.party_to().unwrap().tag(), Some("agent"));
        assert_eq!(
            ack.top_via().unwrap().branch(),
            invite().top_via().unwrap().branch()
        );
        tx.handle_response(t0, response(StatusCode::new(486).unwrap()));
        assert!(tx.poll_transmit().is_some());
        assert_eq!(std::iter::from_fn(|| tx.poll_event()).count(), 2);
        tx.handle_timeout(t0 + Duration::from_secs(32));
        assert!(tx.is_terminated());
    }

    #[test]
    fn two_hundreds_pass_up_until_timer_m() {
        let t0 = crate::test_epoch();
        let cfg = TimerConfig::default();
        let mut tx = ClientInvite::new(t0, invite(), true, cfg);
        let _ = tx.poll_transmit();
        tx.handle_response(t0, response(StatusCode::OK));
        tx.handle_response(t0, response(StatusCode::OK));
        assert_eq!(std::iter::from_fn(|| tx.poll_event()).count(), 2);
        assert!(tx.poll_transmit().is_none(), "the TU acks a 2xx");
        tx.handle_timeout(t0 + cfg.timeout());
        assert!(tx.is_terminated());
    }

    #[test]
    fn a_provisional_stops_timer_b() {
        let t0 = crate::test_epoch();
        let cfg = TimerConfig::default();
        let mut tx = ClientInvite::new(t0, invite(), false, cfg);
        let _ = tx.poll_transmit();
        tx.handle_response(t0, response(StatusCode::RINGING));
        assert_eq!(
            tx.poll_timeout(),
            None,
            "ringing lasts as long as the TU lets it"
        );
        tx.handle_timeout(t0 + cfg.timeout() * 2);
        assert_eq!(tx.state(), State::Proceeding);
    }
}
