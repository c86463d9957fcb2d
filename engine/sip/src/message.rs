//! The SIP message model and printer (RFC 3261 §7).

use crate::header::{self, CSeq, HeaderName, NameAddr, Via};
use crate::uri::Uri;
use std::fmt;

/// A SIP method (RFC 3261 §7.1 and extensions the engine knows).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// INVITE.
    Invite,
    /// ACK.
    Ack,
    /// BYE.
    Bye,
    /// CANCEL.
    Cancel,
    /// OPTIONS.
    Options,
    /// REGISTER.
    Register,
    /// INFO (RFC 6086).
    Info,
    /// REFER (RFC 3515).
    Refer,
    /// NOTIFY (RFC 6665).
    Notify,
    /// SUBSCRIBE (RFC 6665).
    Subscribe,
    /// MESSAGE (RFC 3428).
    Message,
    /// UPDATE (RFC 3311).
    Update,
    /// PRACK (RFC 3262).
    Prack,
    /// PUBLISH (RFC 3903).
    Publish,
    /// Any other token; matching is case-sensitive (RFC 3261 §7.1).
    Other(String),
}

impl Method {
    /// The method for a token. Methods are case-sensitive.
    pub fn from_token(token: &str) -> Method {
        match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "INFO" => Method::Info,
            "REFER" => Method::Refer,
            "NOTIFY" => Method::Notify,
            "SUBSCRIBE" => Method::Subscribe,
            "MESSAGE" => Method::Message,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other.to_string()),
        }
    }

    /// The token as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Info => "INFO",
            Method::Refer => "REFER",
            Method::Notify => "NOTIFY",
            Method::Subscribe => "SUBSCRIBE",
            Method::Message => "MESSAGE",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A response status code, 100-699 (RFC 3261 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusCode(u16);

impl StatusCode {
    /// 100 Trying.
    pub const TRYING: StatusCode = StatusCode(100);
    /// 180 Ringing.
    pub const RINGING: StatusCode = StatusCode(180);
    /// 200 OK.
    pub const OK: StatusCode = StatusCode(200);
    /// 202 Accepted (RFC 3515 §2.4.2: a REFER was accepted).
    pub const ACCEPTED: StatusCode = StatusCode(202);
    /// 400 Bad Request.
    pub const BAD_REQUEST: StatusCode = StatusCode(400);
    /// 401 Unauthorized (RFC 3261 §22.2: a registrar's or UAS's challenge).
    pub const UNAUTHORIZED: StatusCode = StatusCode(401);
    /// 403 Forbidden.
    pub const FORBIDDEN: StatusCode = StatusCode(403);
    /// 404 Not Found.
    pub const NOT_FOUND: StatusCode = StatusCode(404);
    /// 405 Method Not Allowed.
    pub const METHOD_NOT_ALLOWED: StatusCode = StatusCode(405);
    /// 406 Not Acceptable.
    pub const NOT_ACCEPTABLE: StatusCode = StatusCode(406);
    /// 408 Request Timeout (also what a client transaction timeout counts as, RFC 3261
    /// §8.1.3.1).
    pub const REQUEST_TIMEOUT: StatusCode = StatusCode(408);
    /// 415 Unsupported Media Type.
    pub const UNSUPPORTED_MEDIA_TYPE: StatusCode = StatusCode(415);
    /// 416 Unsupported URI Scheme.
    pub const UNSUPPORTED_URI_SCHEME: StatusCode = StatusCode(416);
    /// 420 Bad Extension.
    pub const BAD_EXTENSION: StatusCode = StatusCode(420);
    /// 422 Session Interval Too Small (RFC 4028 §6).
    pub const SESSION_INTERVAL_TOO_SMALL: StatusCode = StatusCode(422);
    /// 423 Interval Too Brief (RFC 3261 §21.4.17).
    pub const INTERVAL_TOO_BRIEF: StatusCode = StatusCode(423);
    /// 481 Call/Transaction Does Not Exist.
    pub const CALL_DOES_NOT_EXIST: StatusCode = StatusCode(481);
    /// 483 Too Many Hops.
    pub const TOO_MANY_HOPS: StatusCode = StatusCode(483);
    /// 487 Request Terminated.
    pub const REQUEST_TERMINATED: StatusCode = StatusCode(487);
    /// 488 Not Acceptable Here.
    pub const NOT_ACCEPTABLE_HERE: StatusCode = StatusCode(488);
    /// 489 Bad Event (RFC 6665 §8.3.2).
    pub const BAD_EVENT: StatusCode = StatusCode(489);
    /// 491 Request Pending.
    pub const REQUEST_PENDING: StatusCode = StatusCode(491);
    /// 603 Decline.
    pub const DECLINE: StatusCode = StatusCode(603);
    /// 500 Server Internal Error.
    pub const SERVER_INTERNAL_ERROR: StatusCode = StatusCode(500);
    /// 501 Not Implemented.
    pub const NOT_IMPLEMENTED: StatusCode = StatusCode(501);
    /// 503 Service Unavailable.
    pub const SERVICE_UNAVAILABLE: StatusCode = StatusCode(503);
    /// 505 Version Not Supported.
    pub const VERSION_NOT_SUPPORTED: StatusCode = StatusCode(505);

    /// A status code, if within 100-699.
    pub const fn new(code: u16) -> Option<StatusCode> {
        if code >= 100 && code <= 699 {
            Some(StatusCode(code))
        } else {
            None
        }
    }

    /// The numeric code.
    pub const fn code(self) -> u16 {
        self.0
    }

    /// 1xx.
    pub const fn is_provisional(self) -> bool {
        self.0 < 200
    }

    /// 2xx.
    pub const fn is_success(self) -> bool {
        self.0 >= 200 && self.0 < 300
    }

    /// The default reason phrase (RFC 3261 §21).
    pub fn default_reason(self) -> &'static str {
        match self.0 {
            100 => "Trying",
            180 => "Ringing",
            183 => "Session Progress",
            200 => "OK",
            202 => "Accepted",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            406 => "Not Acceptable",
            408 => "Request Timeout",
            415 => "Unsupported Media Type",
            416 => "Unsupported URI Scheme",
            420 => "Bad Extension",
            422 => "Session Interval Too Small",
            423 => "Interval Too Brief",
            480 => "Temporarily Unavailable",
            481 => "Call/Transaction Does Not Exist",
            483 => "Too Many Hops",
            486 => "Busy Here",
            487 => "Request Terminated",
            488 => "Not Acceptable Here",
            489 => "Bad Event",
            491 => "Request Pending",
            500 => "Server Internal Error",
            501 => "Not Implemented",
            503 => "Service Unavailable",
            505 => "Version Not Supported",
            603 => "Decline",
            _ => "Unknown",
        }
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One header line: its canonical name and its (unfolded, trimmed) value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Canonical name.
    pub name: HeaderName,
    /// Value with folding replaced by a single space and outer whitespace trimmed.
    pub value: String,
}

/// The header section, in wire order. Lines of the same name keep their relative order,
/// which is what Via and Route need (RFC 3261 §7.3.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<Header>);

impl Headers {
    /// An empty header section.
    pub fn new() -> Headers {
        Headers(Vec::new())
    }

    /// Append a header line.
    pub fn push(&mut self, name: HeaderName, value: impl Into<String>) {
        self.0.push(Header {
            name,
            value: value.into(),
        });
    }

    /// The value of the first line named `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.0
            .iter()
            .find(|h| &h.name == name)
            .map(|h| h.value.as_str())
    }

    /// Every line named `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |h| &h.name == name)
            .map(|h| h.value.as_str())
    }

    /// Every comma-separated value of every line named `name`, in order (RFC 3261 §7.3.1).
    pub fn values<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all(name).flat_map(header::split_commas)
    }

    /// Remove every line named `name`.
    pub fn remove(&mut self, name: &HeaderName) {
        self.0.retain(|h| &h.name != name);
    }

    /// Replace every line named `name` with one line holding `value`, placed where the first was.
    pub fn set(&mut self, name: HeaderName, value: impl Into<String>) {
        let value = value.into();
        match self.0.iter().position(|h| h.name == name) {
            Some(i) => {
                self.0[i].value = value;
                let mut seen = 0;
                self.0.retain(|h| {
                    if h.name == name {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.push(name, value),
        }
    }

    /// All lines in order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no lines.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Copy every line named `name` from `other`, in order.
    pub fn copy_from(&mut self, other: &Headers, name: &HeaderName) {
        for v in other.get_all(name) {
            self.push(name.clone(), v);
        }
    }
}

/// Errors from reading a typed header out of a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// A required header is absent.
    #[error("missing {0} header")]
    Missing(HeaderName),
    /// A header's value does not follow its grammar.
    #[error("malformed {name} header: {reason}")]
    Malformed {
        /// Which header.
        name: HeaderName,
        /// What is wrong.
        reason: &'static str,
    },
    /// A header allowed once appears more than once (RFC 3261 §7.3).
    #[error("more than one {0} value")]
    Repeated(HeaderName),
}

/// The headers a response copies from its request (RFC 3261 §8.2.6.2), in order.
pub const COPIED_INTO_RESPONSES: [HeaderName; 5] = [
    HeaderName::Via,
    HeaderName::From,
    HeaderName::To,
    HeaderName::CallId,
    HeaderName::CSeq,
];

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The Request-URI.
    pub uri: Uri,
    /// Headers in wire order (Content-Length excluded: the printer writes it from the body).
    pub headers: Headers,
    /// The body, exactly Content-Length octets.
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: StatusCode,
    /// The reason phrase (may be empty).
    pub reason: String,
    /// Headers in wire order (Content-Length excluded).
    pub headers: Headers,
    /// The body.
    pub body: Vec<u8>,
}

/// A request or a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

/// Typed access to the headers every transaction and dialog relies on.
pub trait CoreHeaders {
    /// The header section.
    fn headers(&self) -> &Headers;

    /// The topmost Via value.
    fn top_via(&self) -> Result<Via, HeaderError> {
        let v = self
            .headers()
            .values(&HeaderName::Via)
            .next()
            .ok_or(HeaderError::Missing(HeaderName::Via))?;
        Via::parse(v)
    }

    /// The CSeq.
    fn cseq(&self) -> Result<CSeq, HeaderError> {
        CSeq::parse(single(self.headers(), HeaderName::CSeq)?)
    }

    /// The Call-ID.
    fn call_id(&self) -> Result<&str, HeaderError> {
        single(self.headers(), HeaderName::CallId)
    }

    /// The From header.
    fn party_from(&self) -> Result<NameAddr, HeaderError> {
        NameAddr::parse(single(self.headers(), HeaderName::From)?, HeaderName::From)
    }

    /// The To header.
    fn party_to(&self) -> Result<NameAddr, HeaderError> {
        NameAddr::parse(single(self.headers(), HeaderName::To)?, HeaderName::To)
    }

    /// The first Contact value, if any.
    fn contact(&self) -> Result<Option<NameAddr>, HeaderError> {
        match self.headers().values(&HeaderName::Contact).next() {
            None => Ok(None),
            Some("*") => Ok(None),
            Some(v) => NameAddr::parse(v, HeaderName::Contact).map(Some),
        }
    }
}

fn single(headers: &Headers, name: HeaderName) -> Result<&str, HeaderError> {
    let mut it = headers
        .0
        .iter()
        .filter(|h| h.name == name)
        .map(|h| h.value.as_str());
    let first = it
        .next()
        .ok_or_else(|| HeaderError::Missing(name.clone()))?;
    if it.next().is_some() {
        return Err(HeaderError::Repeated(name.clone()));
    }
    Ok(first)
}

impl CoreHeaders for Request {
    fn headers(&self) -> &Headers {
        &self.headers
    }
}

impl CoreHeaders for Response {
    fn headers(&self) -> &Headers {
        &self.headers
    }
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, uri: Uri) -> Request {
        Request {
            method,
            uri,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// Serialise for the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        out.extend_from_slice(format!("{} {} SIP/2.0\r\n", self.method, self.uri).as_bytes());
        write_headers_and_body(&mut out, &self.headers, &self.body);
        out
    }
}

impl Response {
    /// A response with the default reason phrase, no headers and no body.
    pub fn new(status: StatusCode) -> Response {
        Response {
            status,
            reason: status.default_reason().to_string(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// A response to `req` as RFC 3261 §8.2.6.2 builds it: Via (all values, in order), From,
    /// To, Call-ID and CSeq copied. A To tag, if needed, is the caller's to add.
    pub fn to_request(req: &Request, status: StatusCode) -> Response {
        Response::with_headers_of(&req.headers, status)
    }

    /// A response carrying the headers RFC 3261 §8.2.6.2 copies from a request's `headers`.
    pub fn with_headers_of(headers: &Headers, status: StatusCode) -> Response {
        let mut r = Response::new(status);
        for name in COPIED_INTO_RESPONSES {
            r.headers.copy_from(headers, &name);
        }
        r
    }

    /// Replace the reason phrase.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Response {
        self.reason = reason.into();
        self
    }

    /// Serialise for the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        out.extend_from_slice(format!("SIP/2.0 {} {}\r\n", self.status, self.reason).as_bytes());
        write_headers_and_body(&mut out, &self.headers, &self.body);
        out
    }
}

impl Message {
    /// Serialise for the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }

    /// The header section.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }
}

fn write_headers_and_body(out: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    for h in headers.iter() {
        if h.name == HeaderName::ContentLength {
            continue;
        }
        out.extend_from_slice(h.name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_all_lines_in_place() {
        let mut h = Headers::new();
        h.push(HeaderName::Via, "a");
        h.push(HeaderName::From, "f");
        h.push(HeaderName::Via, "b");
        h.set(HeaderName::Via, "c");
        let names: Vec<_> = h
            .iter()
            .map(|x| (x.name.as_str(), x.value.as_str()))
            .collect();
        assert_eq!(names, vec![("Via", "c"), ("From", "f")]);
    }

    #[test]
    fn status_codes_bounds() {
        assert!(StatusCode::new(99).is_none());
        assert!(StatusCode::new(700).is_none());
        assert!(StatusCode::new(699).is_some());
        assert!(StatusCode::TRYING.is_provisional());
        assert!(StatusCode::OK.is_success());
    }
}
