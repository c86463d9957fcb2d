//! URIs (RFC 3261 §19.1): SIP and SIPS parsed into parts, other schemes kept whole.

use crate::header::{Params, split_host_port};
use std::fmt;

/// A Request-URI or a URI inside a name-addr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    /// `sip:` or `sips:`.
    Sip(SipUri),
    /// Any other absolute URI (`tel:`, `mailto:`...), kept as written.
    Other {
        /// The scheme, lower-cased.
        scheme: String,
        /// The whole URI as written.
        raw: String,
    },
}

/// A `sip:`/`sips:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// userinfo's user part as written (escapes kept; may contain `;`, RFC 3261 §19.1.1).
    pub user: Option<String>,
    /// The password, if any (deprecated but legal).
    pub password: Option<String>,
    /// Host name, IPv4 address, or bracketed IPv6 reference.
    pub host: String,
    /// Port.
    pub port: Option<u16>,
    /// URI parameters.
    pub params: Params,
    /// Headers part after `?`, as written.
    pub headers: Option<String>,
}

/// Why a URI was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// No `scheme:`.
    #[error("no scheme")]
    NoScheme,
    /// Whitespace or control characters inside.
    #[error("whitespace or control characters in URI")]
    Whitespace,
    /// Host part missing or malformed.
    #[error("bad host")]
    Host,
    /// Malformed userinfo or parameters.
    #[error("bad {0}")]
    Part(&'static str),
}

impl Uri {
    /// Parse a URI.
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        if s.bytes().any(|b| b <= b' ' || b == 0x7F) {
            return Err(UriError::Whitespace);
        }
        let (scheme, rest) = s.split_once(':').ok_or(UriError::NoScheme)?;
        if scheme.is_empty()
            || !scheme.as_bytes()[0].is_ascii_alphabetic()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return Err(UriError::NoScheme);
        }
        let lower = scheme.to_ascii_lowercase();
        if lower != "sip" && lower != "sips" {
            return Ok(Uri::Other {
                scheme: lower,
                raw: s.to_string(),
            });
        }
        // userinfo ends at the last '@' ('@' elsewhere must be escaped); the user part may
        // hold '?' and ';' (RFC 3261 §25.1 user-unreserved), so headers are looked for after it.
        let (userinfo, hostpart) = match rest.rfind('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        let (hostpart, headers) = match hostpart.split_once('?') {
            Some((r, h)) => (r, Some(h.to_string())),
            None => (hostpart, None),
        };
        let (user, password) = match userinfo {
            Some(u) => {
                let (user, pw) = match u.split_once(':') {
                    Some((a, b)) => (a, Some(b.to_string())),
                    None => (u, None),
                };
                if user.is_empty() || !valid_escapes(user) {
                    return Err(UriError::Part("user"));
                }
                (Some(user.to_string()), pw)
            }
            None => (None, None),
        };
        let (hostport, params) = match hostpart.find(';') {
            Some(i) => (&hostpart[..i], &hostpart[i..]),
            None => (hostpart, ""),
        };
        let (host, port) = split_host_port(hostport).ok_or(UriError::Host)?;
        let params = Params::parse(params).map_err(|_| UriError::Part("parameters"))?;
        Ok(Uri::Sip(SipUri {
            secure: lower == "sips",
            user,
            password,
            host,
            port,
            params,
            headers,
        }))
    }

    /// The SIP form, if this is a `sip:`/`sips:` URI.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(s) => Some(s),
            Uri::Other { .. } => None,
        }
    }

    /// The scheme, lower-cased.
    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(s) if s.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Other { scheme, .. } => scheme,
        }
    }

    /// The user part with `%HH` escapes decoded, if any.
    pub fn user(&self) -> Option<String> {
        self.as_sip().and_then(|s| s.user.as_deref()).map(unescape)
    }
}

fn valid_escapes(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// Decode `%HH` escapes (invalid escapes are kept as written).
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Other { raw, .. } => f.write_str(raw),
            Uri::Sip(s) => {
                f.write_str(if s.secure { "sips:" } else { "sip:" })?;
                if let Some(u) = &s.user {
                    f.write_str(u)?;
                    if let Some(p) = &s.password {
                        write!(f, ":{p}")?;
                    }
                    f.write_str("@")?;
                }
                f.write_str(&s.host)?;
                if let Some(p) = s.port {
                    write!(f, ":{p}")?;
                }
                write!(f, "{}", s.params)?;
                if let Some(h) = &s.headers {
                    write!(f, "?{h}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_parts() {
        let u =
            Uri::parse("sip:user;par=u%40example.net@example.com:5070;transport=tcp?h=1").unwrap();
        let s = u.as_sip().unwrap();
        assert_eq!(s.user.as_deref(), Some("user;par=u%40example.net"));
        assert_eq!(u.user().as_deref(), Some("user;par=u@example.net"));
        assert_eq!((s.host.as_str(), s.port), ("example.com", Some(5070)));
        assert_eq!(s.params.get("transport"), Some(Some("tcp")));
        assert_eq!(
            u.to_string(),
            "sip:user;par=u%40example.net@example.com:5070;transport=tcp?h=1"
        );
    }

    #[test]
    fn other_schemes_and_errors() {
        assert_eq!(Uri::parse("tel:+1234").unwrap().scheme(), "tel");
        assert_eq!(Uri::parse("sip:a b@c"), Err(UriError::Whitespace));
        assert_eq!(Uri::parse("nocolon"), Err(UriError::NoScheme));
        assert_eq!(Uri::parse("sip:@host"), Err(UriError::Part("user")));
        assert_eq!(Uri::parse("sip:u%4@host"), Err(UriError::Part("user")));
        assert_eq!(
            Uri::parse("sip:[::1]:5060").unwrap().as_sip().unwrap().port,
            Some(5060)
        );
    }

    #[test]
    fn unescape_handles_edges() {
        assert_eq!(unescape("a%41"), "aA");
        assert_eq!(unescape("a%4"), "a%4");
        assert_eq!(unescape("%"), "%");
        assert_eq!(unescape("%00x"), "\0x");
    }
}
