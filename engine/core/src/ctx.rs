//! What the engine lends a leg while it handles an input (quinn-proto's `Endpoint` routes,
//! its `Connection`s own their state): the transaction layer to answer and send through,
//! the settings, the random source, and the output queue. Responses that every machine
//! builds the same way (our tag, Server header, refusals) are made here.

use crate::config::{ALLOW, EngineConfig};
use crate::error::RequestError;
use crate::io::{Event, Output};
use crate::rng::Rng;
use ivr_sip::header::HeaderName;
use ivr_sip::message::{CoreHeaders, Request, Response, StatusCode};
use ivr_sip::transaction::{ServerKey, TransactionLayer};
use ivr_sip::{Tag, Transport};
use std::collections::VecDeque;
use std::net::SocketAddr;

/// The engine's shared parts, lent to legs.
pub(crate) struct Ctx {
    /// The settings.
    pub config: EngineConfig,
    /// Every SIP transaction.
    pub layer: TransactionLayer,
    /// Tags, branches, SSRCs.
    pub rng: Rng,
    /// Our SRTP master keys (secret, unlike `rng`).
    pub keys: crate::srtp::KeyGen,
    /// What the driver must do, in order.
    pub outputs: VecDeque<Output>,
}

impl Ctx {
    /// Queue an event for logs and tests.
    pub fn event(&mut self, e: Event) {
        self.outputs.push_back(Output::Event(e));
    }

    /// A response with our To tag (`tag`, or a fresh one, if the request had none) and the
    /// Server header.
    pub fn reply(&mut self, req: &Request, status: StatusCode, tag: Option<&Tag>) -> Response {
        let mut r = Response::to_request(req, status);
        if req.party_to().is_ok_and(|t| t.tag().is_none()) && status != StatusCode::TRYING {
            let tag = tag.cloned().unwrap_or_else(|| Tag::from(self.rng.token()));
            set_to_tag(&mut r, &tag);
        }
        r.headers
            .push(HeaderName::Server, self.config.user_agent.clone());
        r
    }

    /// Refuse a request: the status and reason come from [`RequestError`]'s one mapping, and
    /// the headers that explain it (Allow, Retry-After, Unsupported, Accept) are added here.
    pub fn reject(
        &mut self,
        now: std::time::Instant,
        key: &ServerKey,
        req: &Request,
        error: RequestError,
        tag: Option<&Tag>,
    ) {
        let r = self.refusal(req, error, tag);
        self.layer.respond(now, key, r);
    }

    /// Refuse a request statelessly (RFC 3261 §8.2.7): the response goes out once and the
    /// server transaction is forgotten, so a refusal at capacity holds no memory and is
    /// never retransmitted (a retransmitted INVITE is refused again, once).
    pub fn reject_stateless(&mut self, key: &ServerKey, req: &Request, error: RequestError) {
        let r = self.refusal(req, error, None);
        self.layer.respond_stateless(key, r);
    }

    /// The response refusing `req` for `error`, with the headers that explain it, and its
    /// [`Event::Rejected`].
    fn refusal(&mut self, req: &Request, error: RequestError, tag: Option<&Tag>) -> Response {
        let status = StatusCode::from(&error);
        let mut r = self.reply(req, status, tag);
        if let Some(reason) = error.reason() {
            r.reason = reason;
        }
        match &error {
            RequestError::NotAllowed | RequestError::NotImplemented => {
                r.headers.push(HeaderName::Allow, ALLOW)
            }
            RequestError::Unavailable(_) | RequestError::OfferUnanswered => r
                .headers
                .push(HeaderName::RetryAfter, self.config.retry_after.to_string()),
            RequestError::BadExtension(tags) => {
                r.headers.push(HeaderName::Unsupported, tags.clone())
            }
            RequestError::NotSdp => r.headers.push(HeaderName::Accept, "application/sdp"),
            // RFC 4028 §9: the 422 says what we accept.
            RequestError::IntervalTooSmall(min) => {
                r.headers.push(HeaderName::MinSe, min.to_string())
            }
            RequestError::SdpNotAccepted => {
                r.headers.push(HeaderName::Accept, "application/sdp");
                r.headers.push(
                    HeaderName::Other("Warning".into()),
                    "399 ivr \"the answer would be application/sdp, which Accept excludes\"",
                );
            }
            _ => {}
        }
        self.event(Event::Rejected {
            method: req.method.to_string(),
            call_id: req.call_id().unwrap_or_default().to_string(),
            status: r.status.code(),
            reason: r.reason.clone(),
        });
        r
    }

    /// Our Contact for a dialog reached over `transport` (a `sips:` URI when `sips` and
    /// the transport is TLS, RFC 5630 §4.1).
    pub fn contact(&self, transport: Transport, sips: bool) -> String {
        let addr = self.config.sip_addr_for(transport);
        match transport {
            Transport::Tls if sips => format!("<sips:ivr@{addr}>"),
            _ => contact_value(addr, transport),
        }
    }
}

/// Put `tag` on the response's To, unless it has one.
pub(crate) fn set_to_tag(r: &mut Response, tag: &Tag) {
    if let Ok(mut to) = r.party_to()
        && to.tag().is_none()
    {
        to.params.set("tag", Some(tag.to_string()));
        r.headers.set(HeaderName::To, to.to_string());
    }
}

fn contact_value(addr: SocketAddr, transport: Transport) -> String {
    match transport {
        Transport::Udp => format!("<sip:ivr@{addr}>"),
        Transport::Tcp => format!("<sip:ivr@{addr};transport=tcp>"),
        Transport::Tls => format!("<sip:ivr@{addr};transport=tls>"),
    }
}
