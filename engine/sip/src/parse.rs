//! The strict SIP parser (RFC 3261 §7, §18.3, §25).
//!
//! The parser accepts what RFC 3261's grammar accepts, with the liberal readings RFC 4475
//! asks for (folding, odd whitespace, compact forms, leading zeros), and refuses the rest
//! with a [`ParseError`] that says what was wrong. A refused request still hands back the
//! header lines it could read, so the endpoint can answer it with a 400 that names the fault.

use crate::header::{HeaderName, is_token_byte};
use crate::message::{
    CoreHeaders, HeaderError, Headers, Message, Method, Request, Response, StatusCode,
};
use crate::uri::{Uri, UriError};

/// Size limits applied before anything else is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message, headers and body together.
    pub max_message: usize,
    /// Most header lines.
    pub max_headers: usize,
    /// Longest header line after unfolding.
    pub max_header_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 65_535,
            max_headers: 128,
            max_header_len: 8_192,
        }
    }
}

/// How the bytes arrived: this decides what Content-Length means (RFC 3261 §18.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One UDP datagram: a missing Content-Length means "to the end"; octets past it are ignored.
    Datagram,
    /// One message cut from a stream by [`crate::framing`]: Content-Length is required.
    Stream,
}

/// A message the parser refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct ParseError {
    /// What was wrong.
    pub kind: ParseErrorKind,
    /// Whether the start line looked like a request (so a response is owed).
    pub is_request: bool,
    /// The header lines read before the fault, for building the error response.
    pub headers: Headers,
}

/// What was wrong with a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// Larger than [`Limits::max_message`].
    #[error("message larger than {0} octets")]
    TooLarge(usize),
    /// Nothing but whitespace.
    #[error("empty message")]
    Empty,
    /// No blank line ends the header section.
    #[error("header section not terminated by an empty line")]
    Unterminated,
    /// The header section is not UTF-8.
    #[error("header section is not UTF-8")]
    NotUtf8,
    /// The start line is malformed.
    #[error("malformed start line: {0}")]
    StartLine(&'static str),
    /// A SIP version other than 2.0.
    #[error("SIP version {0} not supported")]
    Version(String),
    /// A malformed Request-URI.
    #[error("malformed Request-URI: {0}")]
    RequestUri(UriError),
    /// A header line is malformed.
    #[error("malformed header line {0}")]
    HeaderLine(usize),
    /// Too many header lines.
    #[error("more than {0} header lines")]
    TooManyHeaders(usize),
    /// A header line is too long.
    #[error("header line longer than {0} octets")]
    HeaderTooLong(usize),
    /// Content-Length missing on a stream, or not a single decimal number.
    #[error("Content-Length {0}")]
    ContentLength(&'static str),
    /// The body is shorter than Content-Length says.
    #[error("body of {got} octets is shorter than Content-Length {declared}")]
    BodyTooShort {
        /// Content-Length.
        declared: usize,
        /// Octets present.
        got: usize,
    },
    /// A required header is missing or malformed.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The CSeq method differs from the request method (RFC 3261 §8.1.1.5).
    #[error("CSeq method {cseq} does not match request method {method}")]
    CSeqMismatch {
        /// The request method.
        method: String,
        /// The CSeq method.
        cseq: String,
    },
    /// Max-Forwards is not a number from 0 to 255.
    #[error("Max-Forwards is not a number from 0 to 255")]
    MaxForwards,
    /// Headers every request needs (RFC 3261 §8.1.1) are absent, named in wire form.
    #[error("missing {}", .0.join(", "))]
    MissingHeaders(Vec<&'static str>),
}

impl ParseError {
    /// The status a UAS answers this refused request with (RFC 3261 §8.2, §21).
    pub fn status(&self) -> StatusCode {
        match self.kind {
            ParseErrorKind::Version(_) => StatusCode::VERSION_NOT_SUPPORTED,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Parse one message with default [`Limits`].
pub fn parse_message(bytes: &[u8], framing: Framing) -> Result<Message, ParseError> {
    parse_with_limits(bytes, framing, &Limits::default())
}

/// Parse one message.
pub fn parse_with_limits(
    bytes: &[u8],
    framing: Framing,
    limits: &Limits,
) -> Result<Message, ParseError> {
    let mut p = Parser {
        is_request: false,
        headers: Headers::new(),
    };
    p.run(bytes, framing, limits).map_err(|kind| ParseError {
        kind,
        is_request: p.is_request,
        headers: std::mem::take(&mut p.headers),
    })
}

struct Parser {
    is_request: bool,
    headers: Headers,
}

enum StartLine {
    Request(Method, Uri),
    Response(StatusCode, String),
}

impl Parser {
    fn run(
        &mut self,
        bytes: &[u8],
        framing: Framing,
        limits: &Limits,
    ) -> Result<Message, ParseErrorKind> {
        if bytes.len() > limits.max_message {
            return Err(ParseErrorKind::TooLarge(limits.max_message));
        }
        // RFC 3261 §7.5: CRLFs before the start line are ignored.
        let start = bytes
            .iter()
            .position(|b| !matches!(b, b'\r' | b'\n'))
            .ok_or(ParseErrorKind::Empty)?;
        let bytes = &bytes[start..];
        // Without the blank line the message is refused, but its header lines are still read
        // so that the refusal can be addressed to the sender.
        let (head_end, terminated) = match find(bytes, b"\r\n\r\n") {
            Some(i) => (i, true),
            None => (bytes.len(), false),
        };
        let head = std::str::from_utf8(&bytes[..head_end]).map_err(|_| ParseErrorKind::NotUtf8)?;
        let rest = if terminated {
            &bytes[head_end + 4..]
        } else {
            &[][..]
        };

        let mut lines = head.split("\r\n");
        let first = lines.next().unwrap_or_default();
        self.is_request = !first
            .get(..4)
            .is_some_and(|s| s.eq_ignore_ascii_case("SIP/"));
        let start_line = parse_start_line(first);
        let content_length = self.read_headers(lines, limits)?;
        let start_line = start_line?;
        if !terminated {
            return Err(ParseErrorKind::Unterminated);
        }

        let body_len = match (content_length, framing) {
            (Some(n), _) => n,
            (None, Framing::Datagram) => rest.len(),
            (None, Framing::Stream) => {
                return Err(ParseErrorKind::ContentLength("is required on a stream"));
            }
        };
        if rest.len() < body_len {
            return Err(ParseErrorKind::BodyTooShort {
                declared: body_len,
                got: rest.len(),
            });
        }
        // Octets past Content-Length in a datagram are discarded (RFC 3261 §18.3).
        let body = rest[..body_len].to_vec();
        let headers = std::mem::take(&mut self.headers);
        let msg = match start_line {
            StartLine::Request(method, uri) => Message::Request(Request {
                method,
                uri,
                headers,
                body,
            }),
            StartLine::Response(status, reason) => Message::Response(Response {
                status,
                reason,
                headers,
                body,
            }),
        };
        if let Err(e) = validate(&msg) {
            self.headers = msg.headers().clone();
            return Err(e);
        }
        Ok(msg)
    }
}

impl Parser {
    /// Unfold and read the header lines into `self.headers`; returns the Content-Length.
    fn read_headers<'a>(
        &mut self,
        lines: impl Iterator<Item = &'a str>,
        limits: &Limits,
    ) -> Result<Option<usize>, ParseErrorKind> {
        // Unfold (RFC 3261 §7.3.1): a line starting with SP or HT continues the previous one.
        let mut unfolded: Vec<String> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                let last = unfolded.last_mut().ok_or(ParseErrorKind::HeaderLine(1))?;
                last.push(' ');
                last.push_str(line.trim_start_matches([' ', '\t']));
            } else {
                unfolded.push(line.to_string());
            }
            // The limit counts header lines other than Content-Length, which the printer
            // always writes; one line of slack here, the exact check when storing below.
            if unfolded.len() > limits.max_headers + 1 {
                return Err(ParseErrorKind::TooManyHeaders(limits.max_headers));
            }
        }
        let mut content_length: Option<usize> = None;
        for (i, line) in unfolded.iter().enumerate() {
            if line.len() > limits.max_header_len {
                return Err(ParseErrorKind::HeaderTooLong(limits.max_header_len));
            }
            let (name, value) = line
                .split_once(':')
                .ok_or(ParseErrorKind::HeaderLine(i + 1))?;
            let name = name.trim_end_matches([' ', '\t']);
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(ParseErrorKind::HeaderLine(i + 1));
            }
            let name = HeaderName::from_wire(name);
            let value = value.trim_matches([' ', '\t']);
            if name == HeaderName::ContentLength {
                if content_length.is_some()
                    || value.is_empty()
                    || !value.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(ParseErrorKind::ContentLength(
                        "is not a single decimal number",
                    ));
                }
                content_length = Some(
                    value
                        .parse()
                        .map_err(|_| ParseErrorKind::ContentLength("is too large"))?,
                );
                continue;
            }
            if self.headers.len() == limits.max_headers {
                return Err(ParseErrorKind::TooManyHeaders(limits.max_headers));
            }
            self.headers.push(name, value);
        }
        Ok(content_length)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_version(v: &str) -> Result<(), ParseErrorKind> {
    let rest = v
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("SIP/"))
        .map(|_| &v[4..])
        .ok_or(ParseErrorKind::StartLine("no SIP version"))?;
    let (major, minor) = rest
        .split_once('.')
        .ok_or(ParseErrorKind::StartLine("bad SIP version"))?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(major) || !digits(minor) {
        return Err(ParseErrorKind::StartLine("bad SIP version"));
    }
    if major.trim_start_matches('0') != "2" || !minor.bytes().all(|b| b == b'0') {
        return Err(ParseErrorKind::Version(rest.to_string()));
    }
    Ok(())
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseErrorKind> {
    if line
        .get(..4)
        .is_some_and(|s| s.eq_ignore_ascii_case("SIP/"))
    {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (RFC 3261 §7.2)
        let mut it = line.splitn(3, ' ');
        let version = it.next().unwrap_or_default();
        parse_version(version)?;
        let code = it
            .next()
            .ok_or(ParseErrorKind::StartLine("no status code"))?;
        let reason = it
            .next()
            .ok_or(ParseErrorKind::StartLine("no SP after the status code"))?;
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseErrorKind::StartLine("status code is not three digits"));
        }
        let status = code
            .parse()
            .ok()
            .and_then(StatusCode::new)
            .ok_or(ParseErrorKind::StartLine("status code out of range"))?;
        return Ok(StartLine::Response(status, reason.to_string()));
    }
    // Request-Line = Method SP Request-URI SP SIP-Version (RFC 3261 §7.1): exactly single spaces.
    let parts: Vec<&str> = line.split(' ').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(ParseErrorKind::StartLine(
            "request line is not 'METHOD SP URI SP SIP/2.0'",
        ));
    }
    let (method, uri, version) = (parts[0], parts[1], parts[2]);
    if !method.bytes().all(is_token_byte) {
        return Err(ParseErrorKind::StartLine("method is not a token"));
    }
    let uri = Uri::parse(uri).map_err(ParseErrorKind::RequestUri)?;
    parse_version(version)?;
    Ok(StartLine::Request(Method::from_token(method), uri))
}

/// The headers every request must carry (RFC 3261 §8.1.1; Max-Forwards and Contact are
/// left to the engine, which copes without the first and answers the lack of the second).
const MANDATORY: [(HeaderName, &str); 5] = [
    (HeaderName::Via, "Via"),
    (HeaderName::CallId, "Call-ID"),
    (HeaderName::From, "From"),
    (HeaderName::To, "To"),
    (HeaderName::CSeq, "CSeq"),
];

/// The checks every message must pass before the transaction layer sees it (RFC 3261 §8.1.1).
fn validate(msg: &Message) -> Result<(), ParseErrorKind> {
    match msg {
        Message::Request(r) => {
            // RFC 3261 §8.1.1: name every mandatory header that is absent at once (RFC 4475
            // §3.3.1 `insuf`), so the 400 says all that is wrong.
            let missing: Vec<&'static str> = MANDATORY
                .iter()
                .filter(|(name, _)| r.headers.get(name).is_none())
                .map(|(_, wire)| *wire)
                .collect();
            if !missing.is_empty() {
                return Err(ParseErrorKind::MissingHeaders(missing));
            }
            r.top_via()?;
            r.party_from()?;
            r.party_to()?;
            r.call_id()?;
            let cseq = r.cseq()?;
            if cseq.method != r.method {
                return Err(ParseErrorKind::CSeqMismatch {
                    method: r.method.to_string(),
                    cseq: cseq.method.to_string(),
                });
            }
            let mut mf = r.headers.get_all(&HeaderName::MaxForwards);
            if let Some(v) = mf.next() {
                let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
                let value = v.trim_start_matches('0');
                if mf.next().is_some()
                    || !digits
                    || value.len() > 3
                    || value.parse::<u16>().is_ok_and(|n| n > 255)
                {
                    return Err(ParseErrorKind::MaxForwards);
                }
            }
            Ok(())
        }
        Message::Response(r) => {
            r.top_via()?;
            r.party_from()?;
            r.party_to()?;
            r.call_id()?;
            r.cseq()?;
            Ok(())
        }
    }
}

/// Build the response owed to a refused request, if enough headers were read to address it.
/// Via and CSeq are needed to route it back and match it to the request; missing From, To or
/// Call-ID are named in the reason phrase (RFC 4475 §3.3.1) and left out of the response, which
/// copies what there is (RFC 3261 §8.2.6.2). The reason phrase says what was wrong.
pub fn error_response(err: &ParseError) -> Option<Response> {
    if !err.is_request {
        return None;
    }
    let h = &err.headers;
    h.get(&HeaderName::Via)?;
    h.get(&HeaderName::CSeq)?;
    if !matches!(err.kind, ParseErrorKind::MissingHeaders(_)) {
        for name in &crate::message::COPIED_INTO_RESPONSES {
            h.get(name)?;
        }
    }
    let mut r = Response::with_headers_of(h, err.status());
    let reason: String = err
        .kind
        .to_string()
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    r.reason = if err.status() == StatusCode::BAD_REQUEST {
        format!("Bad Request ({reason})")
    } else {
        r.reason
    };
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK776\r\n\
        Max-Forwards: 70\r\n\
        To: Bob <sip:bob@example.com>\r\n\
        From: Alice <sip:alice@example.com>;tag=1928\r\n\
        Call-ID: a84b4c76e66710\r\n\
        CSeq: 314159 INVITE\r\n\
        Content-Type: application/sdp\r\n\
        Content-Length: 4\r\n\r\nv=0\n";

    fn req(s: &str, framing: Framing) -> Result<Request, ParseError> {
        match parse_message(s.as_bytes(), framing)? {
            Message::Request(r) => Ok(r),
            Message::Response(_) => panic!("not a request"),
        }
    }

    #[test]
    fn parses_invite() {
        let r = req(INVITE, Framing::Stream).unwrap();
        assert_eq!(r.method, Method::Invite);
        assert_eq!(r.body, b"v=0\n");
        assert_eq!(r.cseq().unwrap().seq, 314159);
        assert_eq!(r.party_from().unwrap().tag(), Some("1928"));
        assert_eq!(r.top_via().unwrap().branch(), Some("z9hG4bK776"));
    }

    #[test]
    fn print_parse_round_trip() {
        let r = req(INVITE, Framing::Stream).unwrap();
        let again = req(std::str::from_utf8(&r.to_bytes()).unwrap(), Framing::Stream).unwrap();
        assert_eq!(r, again);
    }

    #[test]
    fn folding_and_compact_forms() {
        let s = INVITE
            .replace("Call-ID: a84b4c76e66710", "i: a84b4c76e66710")
            .replace(
                "Max-Forwards: 70",
                "Subject: hello\r\n  world\r\nMax-Forwards: 70",
            );
        let r = req(&s, Framing::Datagram).unwrap();
        assert_eq!(r.call_id().unwrap(), "a84b4c76e66710");
        assert_eq!(
            r.headers.get(&HeaderName::Other("Subject".into())),
            Some("hello world")
        );
    }

    #[test]
    fn missing_headers_are_all_named_in_the_400() {
        // RFC 4475 §3.3.1 `insuf`: no Call-ID, From or To.
        let s = "INVITE sip:user@example.com SIP/2.0\r\nCSeq: 193942 INVITE\r\n\
                 Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf\r\nContent-Length: 0\r\n\r\n";
        let e = parse_message(s.as_bytes(), Framing::Datagram).unwrap_err();
        assert_eq!(
            e.kind,
            ParseErrorKind::MissingHeaders(vec!["Call-ID", "From", "To"])
        );
        let r = error_response(&e).expect("a 400 can be addressed by Via");
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.reason, "Bad Request (missing Call-ID, From, To)");
        assert!(r.headers.get(&HeaderName::Via).is_some());
        assert!(r.headers.get(&HeaderName::CSeq).is_some());
        // Without a Via there is nowhere to send it.
        let e = parse_message(
            b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\n",
            Framing::Datagram,
        )
        .unwrap_err();
        assert!(error_response(&e).is_none());
    }

    #[test]
    fn short_body_is_an_error_never_truncated() {
        let s = INVITE.replace("Content-Length: 4", "Content-Length: 40");
        let e = req(&s, Framing::Datagram).unwrap_err();
        assert_eq!(
            e.kind,
            ParseErrorKind::BodyTooShort {
                declared: 40,
                got: 4
            }
        );
        let resp = error_response(&e).unwrap();
        assert_eq!(resp.status, StatusCode::BAD_REQUEST);
        assert!(
            resp.reason.contains("shorter than Content-Length"),
            "{}",
            resp.reason
        );
        assert_eq!(
            resp.headers.get(&HeaderName::CallId),
            Some("a84b4c76e66710")
        );
    }

    #[test]
    fn extra_datagram_octets_are_ignored_and_stream_needs_length() {
        let s = INVITE.replace("Content-Length: 4", "Content-Length: 2");
        assert_eq!(req(&s, Framing::Datagram).unwrap().body, b"v=");
        let s = INVITE.replace("Content-Length: 4\r\n", "");
        assert_eq!(req(&s, Framing::Datagram).unwrap().body, b"v=0\n");
        assert!(matches!(
            req(&s, Framing::Stream).unwrap_err().kind,
            ParseErrorKind::ContentLength(_)
        ));
    }

    #[test]
    fn bad_inputs_are_named() {
        let cases = [
            (
                INVITE.replace("SIP/2.0\r\nVia", "SIP/7.0\r\nVia"),
                "version",
            ),
            (INVITE.replace("INVITE sip", "INVITE  sip"), "start line"),
            (
                INVITE.replace("CSeq: 314159 INVITE", "CSeq: 314159 BYE"),
                "does not match",
            ),
            (
                INVITE.replace("Max-Forwards: 70", "Max-Forwards: 300"),
                "Max-Forwards",
            ),
            (
                INVITE.replace("Call-ID: a84b4c76e66710\r\n", ""),
                "missing Call-ID",
            ),
            (
                INVITE.replace("Max-Forwards: 70", "Max-Forwards 70"),
                "header line",
            ),
        ];
        for (s, needle) in cases {
            let e = req(&s, Framing::Stream).unwrap_err();
            assert!(e.to_string().contains(needle), "{e} lacks {needle}");
            assert!(e.is_request);
        }
    }

    #[test]
    fn responses_with_bad_codes_are_refused() {
        let r = "SIP/2.0 999 Huh\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n";
        let e = parse_message(r.as_bytes(), Framing::Datagram).unwrap_err();
        assert!(!e.is_request);
        assert!(error_response(&e).is_none());
        let ok = r.replace("999 Huh", "200 ");
        assert!(matches!(
            parse_message(ok.as_bytes(), Framing::Datagram),
            Ok(Message::Response(_))
        ));
    }

    #[test]
    fn limits_apply() {
        let limits = Limits {
            max_message: 100,
            ..Limits::default()
        };
        assert_eq!(
            parse_with_limits(INVITE.as_bytes(), Framing::Stream, &limits)
                .unwrap_err()
                .kind,
            ParseErrorKind::TooLarge(100)
        );
        let many = INVITE.replace("Max-Forwards: 70\r\n", &"X-A: b\r\n".repeat(200));
        assert_eq!(
            req(&many, Framing::Stream).unwrap_err().kind,
            ParseErrorKind::TooManyHeaders(128)
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn token() -> impl Strategy<Value = String> {
        "[A-Za-z0-9][A-Za-z0-9.!%*_+`'~-]{0,12}"
    }

    fn host() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,5}){0,2}",
            (1u8..=254, 0u8..=255, 0u8..=255, 1u8..=254)
                .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        ]
    }

    fn uri() -> impl Strategy<Value = String> {
        (
            proptest::option::of("[a-z0-9+]{1,10}"),
            host(),
            proptest::option::of(1u16..),
        )
            .prop_map(|(user, host, port)| {
                let mut s = "sip:".to_string();
                if let Some(u) = user {
                    s.push_str(&u);
                    s.push('@');
                }
                s.push_str(&host);
                if let Some(p) = port {
                    s.push_str(&format!(":{p}"));
                }
                s
            })
    }

    /// Display names with characters that need quoting and escaping.
    fn display() -> impl Strategy<Value = Option<String>> {
        proptest::option::of("[A-Za-z \"\\\\,;<>é]{0,12}")
    }

    fn name_addr() -> impl Strategy<Value = String> {
        (display(), uri(), proptest::option::of(token())).prop_map(|(d, u, tag)| {
            let mut s = match d {
                Some(d) => format!("\"{}\" <{u}>", d.replace('\\', "\\\\").replace('"', "\\\"")),
                None => format!("<{u}>"),
            };
            if let Some(t) = tag {
                s.push_str(&format!(";tag={t}"));
            }
            s
        })
    }

    prop_compose! {
        fn request()(
            method in prop_oneof![Just("INVITE".to_string()), Just("BYE".to_string()), Just("OPTIONS".to_string()), "[A-Z]{3,10}"],
            ruri in uri(),
            vias in proptest::collection::vec((host(), proptest::option::of(1u16..), token()), 1..4),
            from in name_addr(),
            to in name_addr(),
            call_id in "[A-Za-z0-9@.-]{1,30}",
            seq in 0u32..(1 << 31),
            extra in proptest::collection::vec(("X-[A-Za-z]{1,8}", "[ -~]{0,40}"), 0..5),
            body in proptest::collection::vec(any::<u8>(), 0..200),
        ) -> Request {
            let mut r = Request::new(Method::from_token(&method), Uri::parse(&ruri).unwrap());
            for (h, p, b) in vias {
                let port = p.map(|p| format!(":{p}")).unwrap_or_default();
                r.headers.push(HeaderName::Via, format!("SIP/2.0/UDP {h}{port};branch=z9hG4bK{b}"));
            }
            r.headers.push(HeaderName::From, from);
            r.headers.push(HeaderName::To, to);
            r.headers.push(HeaderName::CallId, call_id);
            r.headers.push(HeaderName::CSeq, format!("{seq} {method}"));
            for (n, v) in extra {
                r.headers.push(HeaderName::from_wire(&n), v.trim().to_string());
            }
            r.body = body;
            r
        }
    }

    proptest! {
        /// parse(print(m)) == m for every request the generator makes, on a stream and in a datagram.
        #[test]
        fn print_then_parse_is_identity(r in request()) {
            let bytes = r.to_bytes();
            for framing in [Framing::Stream, Framing::Datagram] {
                let back = parse_message(&bytes, framing);
                prop_assert_eq!(back, Ok(Message::Request(r.clone())));
            }
        }

        /// Any typed header read from a parsed message prints and parses back unchanged.
        #[test]
        fn typed_headers_round_trip(r in request()) {
            let from = r.party_from().unwrap();
            prop_assert_eq!(crate::header::NameAddr::parse(&from.to_string(), HeaderName::From).unwrap(), from);
            let via = r.top_via().unwrap();
            prop_assert_eq!(crate::header::Via::parse(&via.to_string()).unwrap(), via);
        }

        /// Arbitrary bytes never panic the parser, in either framing.
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_message(&bytes, Framing::Datagram);
            let _ = parse_message(&bytes, Framing::Stream);
        }
    }
}
