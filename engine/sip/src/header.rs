//! Header names and the typed header values the engine relies on (RFC 3261 §20, §25.1).

use crate::message::{HeaderError, Method};
use crate::uri::Uri;
use std::fmt;

/// A header name, canonicalised: compact forms (RFC 3261 §7.3.3) are expanded and known
/// names are matched case-insensitively (§7.3.1).
#[derive(Debug, Clone)]
pub enum HeaderName {
    /// Via (compact `v`).
    Via,
    /// From (compact `f`).
    From,
    /// To (compact `t`).
    To,
    /// Call-ID (compact `i`).
    CallId,
    /// CSeq.
    CSeq,
    /// Contact (compact `m`).
    Contact,
    /// Max-Forwards.
    MaxForwards,
    /// Content-Length (compact `l`).
    ContentLength,
    /// Content-Type (compact `c`).
    ContentType,
    /// Route.
    Route,
    /// Record-Route.
    RecordRoute,
    /// Require.
    Require,
    /// Proxy-Require.
    ProxyRequire,
    /// Supported (compact `k`).
    Supported,
    /// Unsupported.
    Unsupported,
    /// Allow.
    Allow,
    /// Accept.
    Accept,
    /// Retry-After.
    RetryAfter,
    /// User-Agent.
    UserAgent,
    /// Server.
    Server,
    /// Expires.
    Expires,
    /// Session-Expires (compact `x`, RFC 4028 §4).
    SessionExpires,
    /// Min-SE (RFC 4028 §5).
    MinSe,
    /// RSeq (RFC 3262 §7.1).
    RSeq,
    /// RAck (RFC 3262 §7.2).
    RAck,
    /// Any other header, as written (compared case-insensitively).
    Other(String),
}

impl HeaderName {
    /// Canonicalise a name as read from the wire.
    pub fn from_wire(name: &str) -> HeaderName {
        use HeaderName::*;
        if name.len() == 1 {
            match name.as_bytes()[0].to_ascii_lowercase() {
                b'v' => return Via,
                b'f' => return From,
                b't' => return To,
                b'i' => return CallId,
                b'm' => return Contact,
                b'l' => return ContentLength,
                b'c' => return ContentType,
                b'k' => return Supported,
                b'x' => return SessionExpires,
                // Compact forms of the transfer headers: RFC 6665 §8.2.1 (`o`), RFC 3515
                // §2.1 (`r`), RFC 3892 §3 (`b`). They stay `Other`, spelled out.
                b'o' => return Other("Event".into()),
                b'r' => return Other("Refer-To".into()),
                b'b' => return Other("Referred-By".into()),
                _ => {}
            }
        }
        let known = [
            Via,
            From,
            To,
            CallId,
            CSeq,
            Contact,
            MaxForwards,
            ContentLength,
            ContentType,
            Route,
            RecordRoute,
            Require,
            ProxyRequire,
            Supported,
            Unsupported,
            Allow,
            Accept,
            RetryAfter,
            UserAgent,
            Server,
            Expires,
            SessionExpires,
            MinSe,
            RSeq,
            RAck,
        ];
        known
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(name))
            .unwrap_or_else(|| Other(name.to_string()))
    }

    /// The long form, as the printer writes it.
    pub fn as_str(&self) -> &str {
        use HeaderName::*;
        match self {
            Via => "Via",
            From => "From",
            To => "To",
            CallId => "Call-ID",
            CSeq => "CSeq",
            Contact => "Contact",
            MaxForwards => "Max-Forwards",
            ContentLength => "Content-Length",
            ContentType => "Content-Type",
            Route => "Route",
            RecordRoute => "Record-Route",
            Require => "Require",
            ProxyRequire => "Proxy-Require",
            Supported => "Supported",
            Unsupported => "Unsupported",
            Allow => "Allow",
            Accept => "Accept",
            RetryAfter => "Retry-After",
            UserAgent => "User-Agent",
            Server => "Server",
            Expires => "Expires",
            SessionExpires => "Session-Expires",
            MinSe => "Min-SE",
            RSeq => "RSeq",
            RAck => "RAck",
            Other(s) => s,
        }
    }

    /// Whether the header may carry a comma-separated list (RFC 3261 §7.3.1). Single-valued
    /// headers with commas inside (dates, Call-ID) are not split.
    pub fn is_list(&self) -> bool {
        use HeaderName::*;
        matches!(
            self,
            Via | Contact
                | Route
                | RecordRoute
                | Require
                | ProxyRequire
                | Supported
                | Unsupported
                | Allow
                | Accept
        )
    }
}

/// Header names compare case-insensitively (RFC 3261 §7.3.1), unknown ones included.
impl PartialEq for HeaderName {
    fn eq(&self, other: &HeaderName) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}

impl Eq for HeaderName {}

impl std::hash::Hash for HeaderName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        if let HeaderName::Other(s) = self {
            for b in s.bytes() {
                state.write_u8(b.to_ascii_lowercase());
            }
        }
    }
}

impl PartialEq<HeaderName> for &HeaderName {
    fn eq(&self, other: &HeaderName) -> bool {
        *self == other
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Split a header value on top-level commas, ignoring commas inside quotes and `<...>`.
pub fn split_commas(value: &str) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let (mut start, mut in_quote, mut in_angle, mut escape) = (0, false, false, false);
    for (i, c) in value.char_indices() {
        if escape {
            escape = false;
            continue;
        }
        match c {
            '\\' if in_quote => escape = true,
            '"' => in_quote = !in_quote,
            '<' if !in_quote => in_angle = true,
            '>' if !in_quote => in_angle = false,
            ',' if !in_quote && !in_angle => {
                parts.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value[start..].trim());
    parts.into_iter().filter(|p| !p.is_empty())
}

/// `;name=value` parameters in wire order. Names are compared case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, Option<String>)>);

impl Params {
    /// Parse `;a=b;c` (the leading `;` may be absent). Quoted values keep their quotes.
    pub fn parse(s: &str) -> Result<Params, &'static str> {
        let mut out = Vec::new();
        if s.trim().is_empty() {
            return Ok(Params(out));
        }
        let mut parts = split_unquoted(s, ';').into_iter();
        if !parts.next().is_some_and(|p| p.trim().is_empty()) {
            return Err("parameters do not start with ';'");
        }
        for part in parts {
            let part = part.trim();
            if part.is_empty() {
                return Err("empty parameter");
            }
            let (name, value) = match part.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim().to_string())),
                None => (part, None),
            };
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err("bad parameter name");
            }
            if let Some(v) = &value {
                let quoted = v.len() >= 2 && v.starts_with('"') && v.ends_with('"');
                if v.is_empty()
                    || !(quoted || v.bytes().all(|b| is_token_byte(b) || b"[]:".contains(&b)))
                {
                    return Err("bad parameter value");
                }
            }
            out.push((name.to_string(), value));
        }
        Ok(Params(out))
    }

    /// The value of parameter `name`: `Some(None)` when present without a value.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// Set (or add) a parameter.
    pub fn set(&mut self, name: &str, value: Option<String>) {
        match self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, v) in &self.0 {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
    }
}

/// Split on `sep` outside double quotes.
pub(crate) fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut in_quote, mut escape) = (0, false, false);
    for (i, c) in s.char_indices() {
        if escape {
            escape = false;
            continue;
        }
        match c {
            '\\' if in_quote => escape = true,
            '"' => in_quote = !in_quote,
            c if c == sep && !in_quote => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// RFC 3261 §25.1 `token` characters.
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// One Via value (RFC 3261 §20.42): `SIP/2.0/UDP host:port;branch=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// The transport token (`UDP`, `TCP`, ...), upper-cased.
    pub transport: String,
    /// sent-by host.
    pub host: String,
    /// sent-by port.
    pub port: Option<u16>,
    /// Parameters (branch, received, rport...).
    pub params: Params,
}

impl Via {
    /// Parse one Via value.
    pub fn parse(value: &str) -> Result<Via, HeaderError> {
        let bad = |reason| HeaderError::Malformed {
            name: HeaderName::Via,
            reason,
        };
        // sent-protocol = protocol-name SLASH protocol-version SLASH transport, with LWS
        // allowed around each SLASH (RFC 3261 §25.1, RFC 4475 §3.1.1.1).
        let mut parts = value.splitn(3, '/');
        let (name, version, rest) = (parts.next(), parts.next(), parts.next());
        let (name, version, rest) = match (name, version, rest) {
            (Some(n), Some(v), Some(r)) => (n.trim(), v.trim(), r.trim_start()),
            _ => return Err(bad("protocol is not SIP/2.0/transport")),
        };
        if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return Err(bad("protocol is not SIP/2.0/transport"));
        }
        let end = rest
            .find(|c: char| !(c.is_ascii() && is_token_byte(c as u8)))
            .unwrap_or(rest.len());
        let (transport, rest) = rest.split_at(end);
        if transport.is_empty() || !rest.starts_with([' ', '\t']) {
            return Err(bad("bad transport"));
        }
        let rest = rest.trim();
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (rest[..i].trim(), &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = split_host_port(sent_by).ok_or(bad("bad sent-by"))?;
        let params = Params::parse(params).map_err(bad)?;
        Ok(Via {
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            params,
        })
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").flatten()
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} ", self.transport)?;
        if self.host.contains(':') && !self.host.starts_with('[') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// Split `host[:port]`, with IPv6 references in brackets. Returns `None` on bad syntax.
pub fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &s[..end + 2];
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return None,
        };
        (host, port)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b))
    {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.trim().parse::<u16>().ok()?),
        None => None,
    };
    Some((host.to_string(), port))
}

/// CSeq (RFC 3261 §20.16): a sequence number below 2^31 and a method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number.
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl CSeq {
    /// Parse a CSeq value.
    pub fn parse(value: &str) -> Result<CSeq, HeaderError> {
        let bad = |reason| HeaderError::Malformed {
            name: HeaderName::CSeq,
            reason,
        };
        let mut it = value.split_whitespace();
        let (num, method) = (it.next(), it.next());
        if it.next().is_some() {
            return Err(bad("extra words"));
        }
        let num = num.ok_or(bad("empty"))?;
        if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("sequence number is not a number"));
        }
        let seq: u32 = num
            .parse()
            .ok()
            .filter(|n| *n < 1 << 31)
            .ok_or(bad("sequence number is not below 2^31"))?;
        let method = method
            .filter(|m| m.bytes().all(is_token_byte))
            .ok_or(bad("no method"))?;
        Ok(CSeq {
            seq,
            method: Method::from_token(method),
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// A name-addr or addr-spec with header parameters: From, To, Contact (RFC 3261 §20.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name as written (quotes removed, escapes resolved), if any.
    pub display: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters (after `>`), e.g. `tag`.
    pub params: Params,
}

impl NameAddr {
    /// Parse a From/To/Contact value; `name` is used in errors.
    pub fn parse(value: &str, name: HeaderName) -> Result<NameAddr, HeaderError> {
        let bad = |reason| HeaderError::Malformed {
            name: name.clone(),
            reason,
        };
        let v = value.trim();
        let (display, rest) = if let Some(q) = v.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, e)) => out.push(e),
                        None => return Err(bad("unterminated quoted display name")),
                    },
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => out.push(c),
                }
            }
            let end = end.ok_or(bad("unterminated quoted display name"))?;
            let rest = q[end + 1..].trim_start();
            if !rest.starts_with('<') {
                return Err(bad("quoted display name not followed by <uri>"));
            }
            (Some(out), rest)
        } else if let Some(i) = v.find('<') {
            let d = v[..i].trim();
            if !d.split_whitespace().all(|w| w.bytes().all(is_token_byte)) {
                return Err(bad("display name has characters outside token"));
            }
            ((!d.is_empty()).then(|| d.to_string()), &v[i..])
        } else {
            (None, v)
        };
        if let Some(inner) = rest.strip_prefix('<') {
            let end = inner.find('>').ok_or(bad("missing >"))?;
            let uri = Uri::parse(&inner[..end]).map_err(|_| bad("bad URI"))?;
            let params = Params::parse(&inner[end + 1..]).map_err(bad)?;
            if !inner[end + 1..].trim().is_empty()
                && !inner[end + 1..].trim_start().starts_with(';')
            {
                return Err(bad("text after >"));
            }
            Ok(NameAddr {
                display,
                uri,
                params,
            })
        } else {
            // addr-spec: parameters after the URI belong to the header (RFC 3261 §20.10).
            let (u, p) = match rest.find(';') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            let u = u.trim();
            if u.contains(char::is_whitespace) {
                return Err(bad("whitespace inside the URI"));
            }
            let uri = Uri::parse(u).map_err(|_| bad("bad URI"))?;
            let params = Params::parse(p).map_err(bad)?;
            Ok(NameAddr {
                display: None,
                uri,
                params,
            })
        }
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").flatten()
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "\"{}\" ", d.replace('\\', "\\\\").replace('"', "\\\""))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_compare_without_case() {
        assert_eq!(
            HeaderName::from_wire("p-asserted-identity"),
            HeaderName::from_wire("P-Asserted-Identity")
        );
        assert_ne!(HeaderName::from_wire("X-A"), HeaderName::from_wire("X-B"));
    }

    #[test]
    fn compact_and_case() {
        assert_eq!(HeaderName::from_wire("v"), HeaderName::Via);
        assert_eq!(HeaderName::from_wire("CALL-id"), HeaderName::CallId);
        assert_eq!(HeaderName::from_wire("l"), HeaderName::ContentLength);
        assert_eq!(HeaderName::from_wire("X-Foo").as_str(), "X-Foo");
    }

    #[test]
    fn via_parse_and_print() {
        let v = Via::parse("SIP/2.0/udp 10.0.0.1:5070 ;branch=z9hG4bK1;rport").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!((v.host.as_str(), v.port), ("10.0.0.1", Some(5070)));
        assert_eq!(v.branch(), Some("z9hG4bK1"));
        assert_eq!(v.params.get("rport"), Some(None));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;rport"
        );
        let v6 = Via::parse("SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bKx").unwrap();
        assert_eq!(v6.host, "[2001:db8::1]");
        assert!(Via::parse("SIP/3.0/UDP a").is_err());
        assert!(Via::parse("SIP/2.0/UDP a:99999").is_err());
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(r#""A \"B\"" <sip:a@b>;tag=1"#, HeaderName::From).unwrap();
        assert_eq!(n.display.as_deref(), Some(r#"A "B""#));
        assert_eq!(n.tag(), Some("1"));
        let n = NameAddr::parse("sip:a@b;tag=2", HeaderName::To).unwrap();
        assert_eq!(n.tag(), Some("2"));
        assert_eq!(n.uri.to_string(), "sip:a@b");
        let n = NameAddr::parse("Bob<sip:b@c>", HeaderName::To).unwrap();
        assert_eq!(n.display.as_deref(), Some("Bob"));
        assert!(NameAddr::parse(r#""unterminated <sip:a@b>"#, HeaderName::From).is_err());
        assert!(NameAddr::parse("Bob <sip:b@c", HeaderName::From).is_err());
    }

    #[test]
    fn cseq_limits() {
        assert_eq!(CSeq::parse("1 INVITE").unwrap().seq, 1);
        assert_eq!(CSeq::parse("0009 BYE").unwrap().seq, 9);
        assert!(CSeq::parse("2147483648 INVITE").is_err());
        assert!(CSeq::parse("-1 INVITE").is_err());
        assert!(CSeq::parse("1").is_err());
    }

    #[test]
    fn commas_inside_quotes_and_angles() {
        let v: Vec<_> = split_commas(r#""a,b" <sip:x>, <sip:y;p=1,2>, z"#).collect();
        assert_eq!(v, vec![r#""a,b" <sip:x>"#, "<sip:y;p=1,2>", "z"]);
    }
}
