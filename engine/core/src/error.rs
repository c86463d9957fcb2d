//! Why the engine refuses a request, and the one place each reason becomes a SIP status
//! (in the style of rustls' `impl From<&Error> for AlertDescription`): the peer's mistakes
//! map to 4xx, our own limits to 503, so every refusal is answered the same way.

use crate::sdp::SdpError;
use ivr_sip::message::{HeaderError, StatusCode};
use std::fmt;

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The Request-URI is not `sip:` or `sips:` (RFC 3261 §8.2.2.1).
    #[error("unsupported URI scheme")]
    UnsupportedScheme,
    /// Require names extensions we lack (RFC 3261 §8.2.2.3); we support none.
    #[error("unsupported extensions required: {0}")]
    BadExtension(String),
    /// No dialog or transaction matches (RFC 3261 §12.2.2, §9.2).
    #[error("no such call or transaction")]
    NoSuchCall,
    /// A method we do not know (RFC 3261 §8.2.1).
    #[error("method not implemented")]
    NotImplemented,
    /// A method we know but do not take here (RFC 3261 §8.2.1).
    #[error("method not allowed")]
    NotAllowed,
    /// We cannot take the call now.
    #[error("unavailable: {0}")]
    Unavailable(Unavailable),
    /// Accept excludes `application/sdp`, which our answer would be (RFC 3261 §21.4.7).
    #[error("Accept excludes application/sdp")]
    SdpNotAccepted,
    /// The body is not SDP (RFC 3261 §21.4.13).
    #[error("the body is not application/sdp")]
    NotSdp,
    /// A Record-Route we cannot read (RFC 3261 §12.1.1).
    #[error("{0}")]
    RouteSet(HeaderError),
    /// The SDP offer is unusable: malformed (400) or with nothing we can take (488).
    #[error("{0}")]
    Sdp(SdpError),
    /// The INVITE has no Contact (RFC 3261 §8.1.1.8).
    #[error("missing Contact")]
    MissingContact,
    /// Caller routing rejects the call.
    #[error("declined")]
    Declined,
    /// A CSeq lower than the dialog's last (RFC 3261 §12.2.2).
    #[error("CSeq out of order")]
    OldCSeq,
    /// A re-INVITE while another is pending (RFC 3261 §14.2), or an offer in an UPDATE
    /// while ours is unanswered (RFC 3311 §5.2).
    #[error("a re-INVITE is pending")]
    Pending,
    /// Session-Expires below our Min-SE (RFC 4028 §9): 422 with this Min-SE.
    #[error("session interval too small (Min-SE {0})")]
    IntervalTooSmall(u32),
    /// A header we must read is malformed (Session-Expires, Min-SE).
    #[error("malformed {0}")]
    BadHeader(ivr_sip::HeaderName),
    /// An offer in an UPDATE before the INVITE's offer is answered (RFC 3311 §5.2: 500
    /// with Retry-After).
    #[error("an earlier offer is not answered yet")]
    OfferUnanswered,
    /// A PRACK that matches no unacknowledged reliable provisional (RFC 3262 §3).
    #[error("no such provisional response")]
    NoSuchProvisional,
    /// A reliable provisional was never PRACKed (RFC 3262 §3: reject with a 5xx).
    #[error("no PRACK")]
    NoPrack,
}

/// Why the engine is unavailable (each a 503 with Retry-After).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// Draining or shutting down.
    ShuttingDown,
    /// `max_calls` reached.
    AtCapacity,
    /// No RTP port could be opened.
    NoMediaPort,
    /// The call was ended by us before it was answered.
    Ending,
    /// The request's source has as many calls as one source may have.
    SourceLimit,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unavailable::ShuttingDown => "shutting down",
            Unavailable::AtCapacity => "at capacity",
            Unavailable::NoMediaPort => "no media port",
            Unavailable::Ending => "ending",
            Unavailable::SourceLimit => "too many calls from this address",
        })
    }
}

impl From<&RequestError> for StatusCode {
    fn from(e: &RequestError) -> StatusCode {
        match e {
            RequestError::UnsupportedScheme => StatusCode::UNSUPPORTED_URI_SCHEME,
            RequestError::BadExtension(_) => StatusCode::BAD_EXTENSION,
            RequestError::NoSuchCall => StatusCode::CALL_DOES_NOT_EXIST,
            RequestError::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            RequestError::NotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            RequestError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            RequestError::SdpNotAccepted => StatusCode::NOT_ACCEPTABLE,
            RequestError::NotSdp => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RequestError::RouteSet(_) | RequestError::MissingContact => StatusCode::BAD_REQUEST,
            RequestError::Sdp(SdpError::Syntax(_)) => StatusCode::BAD_REQUEST,
            RequestError::Sdp(_) => StatusCode::NOT_ACCEPTABLE_HERE,
            RequestError::Declined => StatusCode::DECLINE,
            RequestError::OldCSeq => StatusCode::SERVER_INTERNAL_ERROR,
            RequestError::Pending => StatusCode::REQUEST_PENDING,
            RequestError::IntervalTooSmall(_) => StatusCode::SESSION_INTERVAL_TOO_SMALL,
            RequestError::BadHeader(_) => StatusCode::BAD_REQUEST,
            RequestError::NoSuchProvisional => StatusCode::CALL_DOES_NOT_EXIST,
            RequestError::NoPrack | RequestError::OfferUnanswered => {
                StatusCode::SERVER_INTERNAL_ERROR
            }
        }
    }
}

impl RequestError {
    /// The reason phrase to send, when it says more than the status' default.
    pub fn reason(&self) -> Option<String> {
        Some(match self {
            RequestError::Unavailable(Unavailable::ShuttingDown) => "Shutting Down".into(),
            RequestError::Unavailable(Unavailable::AtCapacity) => "At Capacity".into(),
            RequestError::Unavailable(Unavailable::NoMediaPort) => "No Media Port".into(),
            RequestError::Unavailable(Unavailable::SourceLimit) => {
                "Too Many Calls From This Address".into()
            }
            RequestError::SdpNotAccepted => {
                "Not Acceptable (Accept excludes application/sdp)".into()
            }
            RequestError::RouteSet(e) => format!("Bad Request ({e})"),
            RequestError::MissingContact => "Bad Request (missing Contact)".into(),
            RequestError::Sdp(e @ SdpError::Syntax(_)) => format!("Bad Request ({e})"),
            RequestError::Sdp(e) => format!("Not Acceptable Here ({e})"),
            RequestError::OldCSeq => "CSeq Out Of Order".into(),
            RequestError::BadHeader(h) => format!("Bad Request (malformed {h})"),
            RequestError::NoPrack => "Server Internal Error (no PRACK)".into(),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_mistakes_are_4xx_and_our_limits_503() {
        let sdp = RequestError::Sdp(SdpError::Syntax("x".into()));
        assert_eq!(StatusCode::from(&sdp).code(), 400);
        assert_eq!(
            sdp.reason().as_deref(),
            Some("Bad Request (malformed SDP: x)")
        );
        let codec = RequestError::Sdp(SdpError::NoCommonCodec);
        assert_eq!(StatusCode::from(&codec).code(), 488);
        let busy = RequestError::Unavailable(Unavailable::AtCapacity);
        assert_eq!(StatusCode::from(&busy).code(), 503);
        assert_eq!(busy.reason().as_deref(), Some("At Capacity"));
        assert_eq!(StatusCode::from(&RequestError::NoSuchCall).code(), 481);
        assert_eq!(
            RequestError::Unavailable(Unavailable::Ending).reason(),
            None
        );
    }
}
