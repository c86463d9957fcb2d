//! HTTP Digest authentication as SIP uses it (RFC 3261 §22.4, RFC 2617, RFC 7616), with the
//! SHA-256 algorithm of RFC 8760 and MD5.
//!
//! Both sides live here so the outgoing-call machine ([`crate::uac`]) and a registrar share one
//! computation:
//! - the client: [`Challenge::parse`] reads a `WWW-Authenticate` / `Proxy-Authenticate` value,
//!   [`ClientAuth::authorize`] builds the `Authorization` / `Proxy-Authorization` value, counting
//!   `nc` per nonce and drawing each `cnonce` from an injected [`RandomSource`];
//! - the server: [`NonceIssuer`] mints nonces that carry their issue time and a MAC (so they
//!   need no table), and [`NonceIssuer::verify`] checks an [`Authorization`] against a stored HA1,
//!   answering [`VerifyError::Stale`] for an expired nonce with a right answer (RFC 7616 §3.3,
//!   `stale=true`).
//!
//! Only `qop=auth` is spoken (RFC 7616 §3.4.1); a challenge that offers only `auth-int` is
//! refused, and one that offers no qop at all is answered the RFC 2069 way (RFC 2617 §3.2.2.1).

use md5::Md5;
use sha2::Digest as _;
use sha2::Sha256;
use std::fmt;
use std::net::IpAddr;

/// A source of unpredictable bits, injected so this crate reads no OS randomness.
/// The driver backs it with the OS generator; tests with a fixed sequence.
pub trait RandomSource {
    /// The next 64 random bits.
    fn next_u64(&mut self) -> u64;
}

/// The hash a challenge names (RFC 7616 §3.3 `algorithm`, RFC 8760 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// MD5 (RFC 2617; the default when a challenge names none).
    Md5,
    /// MD5-sess: HA1 also covers the nonce and cnonce.
    Md5Sess,
    /// SHA-256 (RFC 8760 §2.2).
    Sha256,
    /// SHA-256-sess (RFC 8760 §2.2).
    Sha256Sess,
}

impl Algorithm {
    /// The token, as written in the header (RFC 7616 §3.3).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    /// Parse the token, case-insensitively; `None` for algorithms we do not speak
    /// (SHA-512-256 among them).
    pub fn parse(token: &str) -> Option<Algorithm> {
        [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
        ]
        .into_iter()
        .find(|a| a.as_str().eq_ignore_ascii_case(token))
    }

    fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// `H(data)` in lower-case hex (RFC 7616 §3.4).
    pub fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex(&Md5::digest(data.as_bytes())),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex(&Sha256::digest(data.as_bytes())),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Why a digest header could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The scheme is not `Digest`.
    #[error("not a Digest challenge or answer")]
    NotDigest,
    /// The auth-param list does not parse (RFC 7616 §3.3 / RFC 7235 §2.1 syntax).
    #[error("malformed auth-param list")]
    Malformed,
    /// A parameter the header must carry is absent.
    #[error("missing parameter {0}")]
    Missing(&'static str),
    /// The algorithm is one we do not speak.
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// The challenge offers qop values but not `auth` (only `auth-int`, say).
    #[error("no supported qop offered")]
    UnsupportedQop,
}

/// Split `Digest k=v, k="v"` into its parameters (RFC 7235 §2.1, quoted-string of RFC 7230
/// §3.2.6). Names are lower-cased; values unquoted.
fn params(value: &str) -> Result<Vec<(String, String)>, DigestError> {
    let value = value.trim_start();
    let (scheme, rest) = value.split_at(value.find(char::is_whitespace).unwrap_or(value.len()));
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(DigestError::NotDigest);
    }
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            name.push(c.to_ascii_lowercase());
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if name.is_empty() || chars.next() != Some('=') {
            return Err(DigestError::Malformed);
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(DigestError::Malformed),
                    Some('"') => break,
                    Some('\\') => val.push(chars.next().ok_or(DigestError::Malformed)?),
                    Some(c) => val.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' || c.is_whitespace() {
                    break;
                }
                val.push(c);
                chars.next();
            }
        }
        out.push((name, val));
    }
}

fn get<'a>(p: &'a [(String, String)], name: &str) -> Option<&'a str> {
    p.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// A `WWW-Authenticate` or `Proxy-Authenticate` Digest challenge (RFC 7616 §3.3,
/// RFC 3261 §22.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The protection space.
    pub realm: String,
    /// The server's nonce.
    pub nonce: String,
    /// Echoed back unchanged, if present.
    pub opaque: Option<String>,
    /// The hash (MD5 when absent).
    pub algorithm: Algorithm,
    /// Whether the server offers `qop=auth`; `false` means no qop was offered at all.
    pub qop_auth: bool,
    /// `stale=true`: the previous answer was right but its nonce expired; retry with the new one.
    pub stale: bool,
}

impl Challenge {
    /// Parse a challenge header value.
    pub fn parse(value: &str) -> Result<Challenge, DigestError> {
        let p = params(value)?;
        let algorithm = match get(&p, "algorithm") {
            None => Algorithm::Md5,
            Some(a) => {
                Algorithm::parse(a).ok_or_else(|| DigestError::UnsupportedAlgorithm(a.into()))?
            }
        };
        let qop_auth = match get(&p, "qop") {
            None => false,
            Some(q) => {
                if !q.split(',').any(|t| t.trim().eq_ignore_ascii_case("auth")) {
                    return Err(DigestError::UnsupportedQop);
                }
                true
            }
        };
        Ok(Challenge {
            realm: get(&p, "realm")
                .ok_or(DigestError::Missing("realm"))?
                .into(),
            nonce: get(&p, "nonce")
                .ok_or(DigestError::Missing("nonce"))?
                .into(),
            opaque: get(&p, "opaque").map(str::to_string),
            algorithm,
            qop_auth,
            stale: get(&p, "stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest realm={}, nonce={}, algorithm={}",
            quote(&self.realm),
            quote(&self.nonce),
            self.algorithm
        )?;
        if self.qop_auth {
            f.write_str(", qop=\"auth\"")?;
        }
        if let Some(o) = &self.opaque {
            write!(f, ", opaque={}", quote(o))?;
        }
        if self.stale {
            f.write_str(", stale=true")?;
        }
        Ok(())
    }
}

/// A user name and password for one trunk or account. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// An `Authorization` / `Proxy-Authorization` Digest answer (RFC 7616 §3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The user name.
    pub username: String,
    /// The realm, from the challenge.
    pub realm: String,
    /// The nonce, from the challenge.
    pub nonce: String,
    /// The digest-uri: the Request-URI of the request (RFC 3261 §22.4).
    pub uri: String,
    /// The computed response, lower-case hex.
    pub response: String,
    /// The hash.
    pub algorithm: Algorithm,
    /// The opaque value, echoed.
    pub opaque: Option<String>,
    /// With `qop=auth`: the client nonce and the nonce count.
    pub qop_auth: Option<(String, u32)>,
}

impl Authorization {
    /// Parse an answer header value (the server side).
    pub fn parse(value: &str) -> Result<Authorization, DigestError> {
        let p = params(value)?;
        let need = |n: &'static str| get(&p, n).ok_or(DigestError::Missing(n));
        let algorithm = match get(&p, "algorithm") {
            None => Algorithm::Md5,
            Some(a) => {
                Algorithm::parse(a).ok_or_else(|| DigestError::UnsupportedAlgorithm(a.into()))?
            }
        };
        let qop_auth = match get(&p, "qop") {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let nc =
                    u32::from_str_radix(need("nc")?, 16).map_err(|_| DigestError::Malformed)?;
                Some((need("cnonce")?.to_string(), nc))
            }
            Some(_) => return Err(DigestError::UnsupportedQop),
        };
        Ok(Authorization {
            username: need("username")?.into(),
            realm: need("realm")?.into(),
            nonce: need("nonce")?.into(),
            uri: need("uri")?.into(),
            response: need("response")?.to_ascii_lowercase(),
            algorithm,
            opaque: get(&p, "opaque").map(str::to_string),
            qop_auth,
        })
    }

    /// The expected `response` for this answer's parameters, given HA1 (RFC 7616 §3.4.1).
    pub fn expected_response(&self, method: &str, ha1: &str) -> String {
        let (cnonce, nc) = match &self.qop_auth {
            Some((c, n)) => (Some(c.as_str()), *n),
            None => (None, 0),
        };
        response(
            self.algorithm,
            ha1,
            &self.nonce,
            cnonce.map(|c| (c, nc)),
            method,
            &self.uri,
        )
    }
}

impl fmt::Display for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest username={}, realm={}, nonce={}, uri={}, response={}, algorithm={}",
            quote(&self.username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(&self.uri),
            quote(&self.response),
            self.algorithm
        )?;
        if let Some((cnonce, nc)) = &self.qop_auth {
            write!(f, ", qop=auth, nc={nc:08x}, cnonce={}", quote(cnonce))?;
        }
        if let Some(o) = &self.opaque {
            write!(f, ", opaque={}", quote(o))?;
        }
        Ok(())
    }
}

/// HA1 = H(username:realm:password) (RFC 7616 §3.4.2), what a registrar stores instead of
/// the password. For `-sess` algorithms the session key is derived per answer from this.
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.hash(&format!("{username}:{realm}:{password}"))
}

/// The `response` value (RFC 7616 §3.4.1, RFC 2617 §3.2.2.1 without qop):
/// `KD(HA1', nonce:nc:cnonce:auth:HA2)` with `HA2 = H(method:uri)`, and for `-sess`
/// `HA1' = H(HA1:nonce:cnonce)`. `qop` is `Some((cnonce, nc))` for `qop=auth`.
pub fn response(
    algorithm: Algorithm,
    ha1: &str,
    nonce: &str,
    qop: Option<(&str, u32)>,
    method: &str,
    uri: &str,
) -> String {
    let ha2 = algorithm.hash(&format!("{method}:{uri}"));
    match qop {
        Some((cnonce, nc)) => {
            let ha1 = if algorithm.is_sess() {
                algorithm.hash(&format!("{ha1}:{nonce}:{cnonce}"))
            } else {
                ha1.to_string()
            };
            algorithm.hash(&format!("{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}"))
        }
        None => algorithm.hash(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// The client's state for one challenge: the challenge and how many times its nonce was
/// used (RFC 7616 §3.4: `nc` counts requests sent with a nonce, in hex, from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuth {
    /// The challenge being answered.
    pub challenge: Challenge,
    nc: u32,
}

impl ClientAuth {
    /// Start answering `challenge`.
    pub fn new(challenge: Challenge) -> ClientAuth {
        ClientAuth { challenge, nc: 0 }
    }

    /// The nonce count used by the last answer (0 before the first).
    pub fn nc(&self) -> u32 {
        self.nc
    }

    /// The answer for one request (`method`, Request-URI `uri`): counts `nc` up and draws a
    /// fresh 128-bit `cnonce` from `rng` when the challenge offered `qop=auth`.
    pub fn authorize(
        &mut self,
        credentials: &Credentials,
        method: &str,
        uri: &str,
        rng: &mut dyn RandomSource,
    ) -> Authorization {
        let c = &self.challenge;
        let qop = if c.qop_auth {
            self.nc += 1;
            Some((
                format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64()),
                self.nc,
            ))
        } else {
            None
        };
        answer(c, credentials, method, uri, qop)
    }
}

/// The answer to `challenge` with the given `cnonce` and `nc` (`None` when the challenge
/// offered no qop). [`ClientAuth::authorize`] wraps this with the counting.
pub fn answer(
    challenge: &Challenge,
    credentials: &Credentials,
    method: &str,
    uri: &str,
    qop: Option<(String, u32)>,
) -> Authorization {
    let a = challenge.algorithm;
    let h1 = ha1(
        a,
        &credentials.username,
        &challenge.realm,
        &credentials.password,
    );
    let r = response(
        a,
        &h1,
        &challenge.nonce,
        qop.as_ref().map(|(c, n)| (c.as_str(), *n)),
        method,
        uri,
    );
    Authorization {
        username: credentials.username.clone(),
        realm: challenge.realm.clone(),
        nonce: challenge.nonce.clone(),
        uri: uri.to_string(),
        response: r,
        algorithm: a,
        opaque: challenge.opaque.clone(),
        qop_auth: qop,
    }
}

/// Why [`NonceIssuer::verify`] refused an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The nonce was not issued by us (bad MAC or shape), or is for another realm: challenge again.
    #[error("nonce not ours")]
    UnknownNonce,
    /// The answer is right but the nonce expired: challenge again with `stale=true`
    /// (RFC 7616 §3.3), so the client retries without asking its user.
    #[error("nonce expired")]
    Stale,
    /// The response does not match: wrong password (or user). Answer 403 or challenge again.
    #[error("wrong response")]
    WrongResponse,
    /// The answer's realm is not ours.
    #[error("wrong realm")]
    WrongRealm,
}

/// Mints and checks nonces for one realm, statelessly: a nonce is `TIME-MAC` with `TIME` the
/// issue time (seconds, from the caller's clock, in hex) and `MAC` a SHA-256 over a server
/// secret, the time and the realm (RFC 7616 §3.3 suggests exactly this shape).
#[derive(Clone)]
pub struct NonceIssuer {
    realm: String,
    secret: [u8; 32],
    lifetime_secs: u64,
}

impl fmt::Debug for NonceIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceIssuer")
            .field("realm", &self.realm)
            .field("lifetime_secs", &self.lifetime_secs)
            .finish_non_exhaustive()
    }
}

impl NonceIssuer {
    /// An issuer for `realm` whose nonces live `lifetime_secs`; `secret` comes from the
    /// driver's randomness and stays in memory only.
    pub fn new(realm: impl Into<String>, secret: [u8; 32], lifetime_secs: u64) -> NonceIssuer {
        NonceIssuer {
            realm: realm.into(),
            secret,
            lifetime_secs,
        }
    }

    fn mac(&self, time: u64, seq: Option<u64>, source: Option<IpAddr>) -> String {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(time.to_be_bytes());
        if let Some(seq) = seq {
            h.update(b"#");
            h.update(seq.to_be_bytes());
        }
        // One host, one address: an IPv4-mapped IPv6 address (a dual-stack socket's name
        // for an IPv4 peer) is its IPv4 address, whichever socket the answer comes on.
        match source.map(|a| a.to_canonical()) {
            Some(IpAddr::V4(a)) => {
                h.update(b"@4");
                h.update(a.octets());
            }
            Some(IpAddr::V6(a)) => {
                h.update(b"@6");
                h.update(a.octets());
            }
            None => {}
        }
        h.update(self.realm.as_bytes());
        hex(&h.finalize()[..16])
    }

    /// A fresh challenge issued at `now_secs` (any monotonic seconds count the caller keeps).
    /// Challenges issued in the same second share the nonce; see [`NonceIssuer::challenge_seq`].
    pub fn challenge(&self, now_secs: u64, algorithm: Algorithm, stale: bool) -> Challenge {
        self.challenge_with(
            format!("{now_secs:x}-{}", self.mac(now_secs, None, None)),
            algorithm,
            stale,
        )
    }

    /// A challenge whose nonce also carries `seq` (`TIME-SEQ-MAC`), so two challenges in one
    /// second differ: a registrar that remembers which nonces were used (replays) needs each
    /// client to get its own.
    ///
    /// With `source`, the MAC also covers the address the challenge is sent to, and only an
    /// answer from that address verifies ([`NonceIssuer::verify_from`]): a host that forges
    /// another's source address never sees that address's challenges, so it cannot make
    /// wrong answers count against it.
    pub fn challenge_seq(
        &self,
        now_secs: u64,
        seq: u64,
        source: Option<IpAddr>,
        algorithm: Algorithm,
        stale: bool,
    ) -> Challenge {
        let mac = self.mac(now_secs, Some(seq), source);
        self.challenge_with(format!("{now_secs:x}-{seq:x}-{mac}"), algorithm, stale)
    }

    fn challenge_with(&self, nonce: String, algorithm: Algorithm, stale: bool) -> Challenge {
        Challenge {
            realm: self.realm.clone(),
            nonce,
            opaque: None,
            algorithm,
            qop_auth: true,
            stale,
        }
    }

    /// The issue time a nonce of ours carries (not checked: use [`NonceIssuer::verify`]).
    pub fn issued(nonce: &str) -> Option<u64> {
        u64::from_str_radix(nonce.split('-').next()?, 16).ok()
    }

    /// Check `auth` for a request with `method`, given the user's stored HA1 for this
    /// realm and algorithm (RFC 7616 §3.4.1). The response is checked before expiry, so
    /// [`VerifyError::Stale`] means "right password, old nonce".
    pub fn verify(
        &self,
        auth: &Authorization,
        method: &str,
        ha1: &str,
        now_secs: u64,
    ) -> Result<(), VerifyError> {
        self.verify_from(auth, method, ha1, now_secs, None)
    }

    /// [`NonceIssuer::verify`] for a request from `source`: a nonce issued to another
    /// address (by [`NonceIssuer::challenge_seq`] with a source) is [`VerifyError::UnknownNonce`].
    pub fn verify_from(
        &self,
        auth: &Authorization,
        method: &str,
        ha1: &str,
        now_secs: u64,
        source: Option<IpAddr>,
    ) -> Result<(), VerifyError> {
        if auth.realm != self.realm {
            return Err(VerifyError::WrongRealm);
        }
        let mut parts = auth.nonce.split('-');
        let (time, seq, mac) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(t), Some(m), None, None) => (t, None, m),
            (Some(t), Some(s), Some(m), None) => (t, Some(s), m),
            _ => return Err(VerifyError::UnknownNonce),
        };
        let hex_u64 = |s: &str| {
            (s.len() <= 16)
                .then(|| u64::from_str_radix(s, 16).ok())
                .flatten()
                .ok_or(VerifyError::UnknownNonce)
        };
        let time = hex_u64(time)?;
        let seq = seq.map(hex_u64).transpose()?;
        if !constant_time_eq(mac.as_bytes(), self.mac(time, seq, source).as_bytes()) {
            return Err(VerifyError::UnknownNonce);
        }
        let expected = auth.expected_response(method, ha1);
        if !constant_time_eq(expected.as_bytes(), auth.response.as_bytes()) {
            return Err(VerifyError::WrongResponse);
        }
        if now_secs.saturating_sub(time) > self.lifetime_secs || time > now_secs {
            return Err(VerifyError::Stale);
        }
        Ok(())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    const OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";

    fn mufasa() -> Credentials {
        Credentials {
            username: "Mufasa".into(),
            password: "Circle of Life".into(),
        }
    }

    /// RFC 7616 §3.9.1, both challenges and both answers, exactly.
    #[test]
    fn rfc7616_example_md5_and_sha256() {
        for (alg, expect) in [
            ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
            (
                "SHA-256",
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ] {
            let header = format!(
                "Digest\r\n realm=\"http-auth@example.org\",\r\n qop=\"auth, auth-int\",\r\n \
                 algorithm={alg},\r\n nonce=\"{NONCE}\",\r\n opaque=\"{OPAQUE}\""
            );
            let c = Challenge::parse(&header).unwrap();
            assert!(c.qop_auth && !c.stale);
            assert_eq!(c.algorithm.as_str(), alg);
            let a = answer(
                &c,
                &mufasa(),
                "GET",
                "/dir/index.html",
                Some((CNONCE.into(), 1)),
            );
            assert_eq!(a.response, expect, "{alg}");
            let printed = a.to_string();
            assert!(printed.contains("nc=00000001"), "{printed}");
            assert!(printed.contains(&format!("opaque=\"{OPAQUE}\"")));
            // The server side reads it back and checks it against the stored HA1.
            let back = Authorization::parse(&printed).unwrap();
            assert_eq!(back, a);
            let h1 = ha1(
                c.algorithm,
                "Mufasa",
                "http-auth@example.org",
                "Circle of Life",
            );
            assert_eq!(back.expected_response("GET", &h1), expect);
        }
    }

    /// RFC 2617 §3.5 (no qop in the answer is RFC 2069 style; with qop, MD5): the classic
    /// example with "Circle Of Life".
    #[test]
    fn rfc2617_example() {
        let c = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        let creds = Credentials {
            username: "Mufasa".into(),
            password: "Circle Of Life".into(),
        };
        let a = answer(
            &c,
            &creds,
            "GET",
            "/dir/index.html",
            Some(("0a4f113b".into(), 1)),
        );
        assert_eq!(a.response, "6629fae49393a05397450978507c4ef1");
    }

    struct Seq(u64);
    impl RandomSource for Seq {
        fn next_u64(&mut self) -> u64 {
            self.0 += 1;
            self.0
        }
    }

    #[test]
    fn nc_counts_and_cnonce_is_fresh() {
        let c = Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=auth, algorithm=sha-256")
            .unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha256);
        let mut auth = ClientAuth::new(c);
        let mut rng = Seq(0);
        let a1 = auth.authorize(&mufasa(), "INVITE", "sip:bob@127.0.0.1", &mut rng);
        let a2 = auth.authorize(&mufasa(), "BYE", "sip:bob@127.0.0.1", &mut rng);
        assert_eq!(a1.qop_auth.as_ref().unwrap().1, 1);
        assert_eq!(a2.qop_auth.as_ref().unwrap().1, 2);
        assert_ne!(a1.qop_auth.unwrap().0, a2.qop_auth.unwrap().0);
    }

    #[test]
    fn challenges_we_cannot_answer() {
        assert_eq!(
            Challenge::parse("Basic realm=\"x\""),
            Err(DigestError::NotDigest)
        );
        assert_eq!(
            Challenge::parse("Digest realm=\"x\", nonce=\"y\", qop=\"auth-int\""),
            Err(DigestError::UnsupportedQop)
        );
        assert_eq!(
            Challenge::parse("Digest realm=\"x\", nonce=\"y\", algorithm=SHA-512-256"),
            Err(DigestError::UnsupportedAlgorithm("SHA-512-256".into()))
        );
        assert_eq!(
            Challenge::parse("Digest nonce=\"y\""),
            Err(DigestError::Missing("realm"))
        );
        assert_eq!(
            Challenge::parse("Digest realm=\"x"),
            Err(DigestError::Malformed)
        );
        let s = Challenge::parse("Digest realm=\"a\\\"b\", nonce=\"y\", stale=TRUE").unwrap();
        assert!(s.stale && !s.qop_auth);
        assert_eq!(s.realm, "a\"b");
        assert_eq!(Challenge::parse(&s.to_string()).unwrap(), s);
    }

    #[test]
    fn issuer_verifies_and_reports_stale() {
        let issuer = NonceIssuer::new("ivr.example", [7; 32], 300);
        let c = issuer.challenge(1_000, Algorithm::Sha256, false);
        let creds = Credentials {
            username: "alice".into(),
            password: "pw".into(),
        };
        let stored = ha1(Algorithm::Sha256, "alice", "ivr.example", "pw");
        let mut client = ClientAuth::new(c.clone());
        let a = client.authorize(&creds, "REGISTER", "sip:ivr.example", &mut Seq(9));
        let a = Authorization::parse(&a.to_string()).unwrap();
        assert_eq!(issuer.verify(&a, "REGISTER", &stored, 1_100), Ok(()));
        assert_eq!(
            issuer.verify(&a, "REGISTER", &stored, 1_301),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            issuer.verify(&a, "INVITE", &stored, 1_100),
            Err(VerifyError::WrongResponse)
        );
        let wrong = ha1(Algorithm::Sha256, "alice", "ivr.example", "nope");
        assert_eq!(
            issuer.verify(&a, "REGISTER", &wrong, 1_100),
            Err(VerifyError::WrongResponse)
        );
        let mut forged = a.clone();
        forged.nonce = format!("{:x}-{}", 1_100, &a.nonce[4..]);
        assert_eq!(
            issuer.verify(&forged, "REGISTER", &stored, 1_100),
            Err(VerifyError::UnknownNonce)
        );
        let other = NonceIssuer::new("ivr.example", [8; 32], 300);
        assert_eq!(
            other.verify(&a, "REGISTER", &stored, 1_100),
            Err(VerifyError::UnknownNonce)
        );
        let stale = issuer.challenge(2_000, Algorithm::Md5, true);
        assert!(Challenge::parse(&stale.to_string()).unwrap().stale);
    }
}
