//! A registrar (RFC 3261 §10.3) with digest authentication (RFC 7616, RFC 8760), sans-IO.
//!
//! [`Registrar::handle_register`] takes a REGISTER with its source and `now`, and answers
//! with a [`RegisterReply`] (status, headers, and whether it was a failed authentication the
//! owner should count against the source). Bindings expire on the owner's clock:
//! [`Registrar::poll_timeout`] / [`Registrar::handle_timeout`]; what happened comes out of
//! [`Registrar::poll_event`].
//!
//! Only configured accounts ([`Account`]) register, each only its own address of record (the
//! To URI's user is the account's user). The processing of RFC 3261 §10.3:
//!
//! - authentication first (step 3): no `Authorization` for our realm gets 401 with two
//!   challenges, SHA-256 first then MD5 (RFC 8760 §2.4; MD5 first with
//!   [`RegistrarConfig::md5_first`], for clients that read only the first), `qop="auth"`, and a stateless nonce
//!   ([`NonceIssuer`]: issue time and a MAC, so challenges cost no memory). A right answer
//!   with an expired nonce gets 401 `stale=true`; a wrong answer **and an unknown user** get
//!   the same 403 (the unknown user's answer is checked against a dummy hash, for the same
//!   cost), so nothing tells which users exist. Answers without `qop=auth`, with a `-sess`
//!   algorithm, or whose digest-uri is not the Request-URI are refused the same way.
//!   Replays: per account, the last [`NONCES_PER_USER`] nonces that authenticated keep their
//!   highest `nc`; a repeated or lower `nc`, or a nonce older than the ones forgotten, gets a
//!   fresh challenge with `stale=true` (a right client retries with it; memory grows only with
//!   successful authentications, bounded per account).
//! - the To user must be the authenticated user (step 6), else 403;
//! - `Contact: *` only alone and with `Expires: 0` (step 6), else 400;
//! - expiry (step 6): the contact's `expires` parameter, else the Expires header, else the
//!   default; above zero and below `min_expires` gets 423 with Min-Expires (RFC 3261 §10.3
//!   step 6, §21.4.17); above `max_expires` is lowered to it;
//! - bindings (step 7) are keyed by contact URI (compared as parsed URIs, a simplification of
//!   §19.1.4); one with the same Call-ID and a CSeq not above the stored one fails the whole
//!   request with 400 (nothing is changed: every check runs before any binding does);
//! - at most `max_contacts` bindings per account: a request carrying more contacts than that
//!   is refused with 403; a new binding beyond the cap replaces the one that expires first;
//! - the 200 (step 8) lists every current binding with its remaining `expires`.
//!
//! Memory is bounded by the config, not by the network: challenges keep nothing; bindings
//! and nonce logs exist only for accounts that authenticated, at most `max_contacts`
//! bindings and [`NONCES_PER_USER`] nonces each; events waiting for the owner are capped.
//!
//! Each binding keeps where its REGISTER came from (transport and source address), because
//! agents sit behind NAT: they are reached there, not at the Contact's private address.
//!
//! Not done: Path (RFC 3327), outbound (RFC 5626), GRUU, `q` ordering, third-party
//! registrations, Request-URI domain checks (any domain is ours).

use crate::digest::{Algorithm, Authorization, Challenge, NonceIssuer, VerifyError};
use crate::header::{HeaderName, NameAddr, split_commas};
use crate::message::{CoreHeaders, Request, StatusCode};
use crate::transaction::Peer;
use crate::uri::Uri;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How many authenticated nonces each account remembers for replay checks.
pub const NONCES_PER_USER: usize = 8;
/// Contact values read from one REGISTER at most (more: 400).
const MAX_CONTACT_VALUES: usize = 16;
/// Authorization values looked at, at most.
const MAX_AUTHORIZATIONS: usize = 4;
/// The longest Authorization or Contact value accepted (longer: refused like bad input).
const MAX_VALUE_LEN: usize = 2048;
/// Events kept for the owner, at most (older ones are dropped).
const MAX_EVENTS: usize = 1024;

/// The registrar's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// The shortest registration accepted (shorter: 423 Interval Too Brief).
    pub min_expires: u32,
    /// The longest registration granted (longer ones are lowered to this).
    pub max_expires: u32,
    /// The registration length when a REGISTER names none.
    pub default_expires: u32,
    /// Bindings per account at most.
    pub max_contacts: usize,
    /// How long a nonce may be used (then `stale=true`).
    pub nonce_lifetime: Duration,
    /// Send the MD5 challenge before the SHA-256 one: RFC 8760 §2.4 puts the preferred
    /// first, but some clients read only the first and know only MD5.
    pub md5_first: bool,
    /// Challenge with MD5 only, and refuse SHA-256 answers: for phones whose SIP stack gives
    /// up on a challenge it cannot answer instead of skipping it (baresip 1.0's libre fails
    /// the REGISTER with ENOSYS when a SHA-256 challenge is present). Weaker; off by default.
    pub md5_only: bool,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts: 5,
            nonce_lifetime: Duration::from_secs(300),
            md5_first: false,
            md5_only: false,
        }
    }
}

/// One account that may register: its user name and HA1 for MD5 and SHA-256 in the
/// registrar's realm. `Debug` hides the hashes.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// Who owns it (the agent's name), for events.
    pub owner: String,
    /// The user name (digest `username` and the To user).
    pub user: String,
    /// `MD5(user:realm:password)`, lower-case hex.
    pub ha1_md5: String,
    /// `SHA-256(user:realm:password)`, lower-case hex.
    pub ha1_sha256: String,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("owner", &self.owner)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// One binding: a contact an account registered, and where it registered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The Contact, without its `expires` parameter.
    pub contact: NameAddr,
    /// Where the REGISTER came from: the agent is reached here (NAT).
    pub source: Peer,
    /// The REGISTER's Call-ID.
    pub call_id: String,
    /// The REGISTER's CSeq number.
    pub cseq: u32,
    /// When it expires.
    pub expires_at: Instant,
}

/// What the registrar answered, for the owner to send and count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterReply {
    /// The status.
    pub status: StatusCode,
    /// A reason phrase other than the default, if any.
    pub reason: Option<&'static str>,
    /// Headers to add (WWW-Authenticate, Contact, Min-Expires...).
    pub headers: Vec<(HeaderName, String)>,
    /// A failed authentication (wrong password or unknown user): count it against the source.
    pub auth_failed: bool,
}

/// What happened to bindings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrarEvent {
    /// A new binding.
    Registered {
        /// The account's owner.
        owner: String,
        /// The contact URI.
        contact: String,
        /// Where it registered from.
        source: Peer,
        /// Seconds granted.
        expires: u32,
    },
    /// A binding removed by its account (expires 0, or `*`), or replaced at the cap.
    Unregistered {
        /// The account's owner.
        owner: String,
        /// The contact URI.
        contact: String,
    },
    /// A binding that was not refreshed in time.
    Expired {
        /// The account's owner.
        owner: String,
        /// The contact URI.
        contact: String,
    },
}

/// The nonces one account authenticated with recently, with their highest `nc`.
#[derive(Debug, Default, Clone)]
struct NonceLog {
    seen: Vec<SeenNonce>,
    /// Nonces whose sequence number is at or below this were forgotten: treated as replays.
    floor: Option<u64>,
}

/// A nonce that authenticated.
#[derive(Debug, Clone)]
struct SeenNonce {
    nonce: String,
    /// Issue time, seconds on the registrar's clock.
    issued: u64,
    /// Its challenge's sequence number.
    seq: u64,
    /// The highest `nc` used with it.
    nc: u32,
}

/// The registrar: accounts, bindings and the nonce issuer.
pub struct Registrar {
    config: RegistrarConfig,
    issuer: NonceIssuer,
    secret: [u8; 32],
    realm: String,
    epoch: Option<Instant>,
    accounts: HashMap<String, Account>,
    bindings: HashMap<String, Vec<Binding>>,
    nonces: HashMap<String, NonceLog>,
    next_expiry: Option<Instant>,
    events: VecDeque<RegistrarEvent>,
    /// Makes every challenge's nonce unique.
    challenges: u64,
}

impl std::fmt::Debug for Registrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrar")
            .field("realm", &self.realm)
            .field("accounts", &self.accounts.len())
            .field("bindings", &self.binding_count())
            .finish_non_exhaustive()
    }
}

/// Why a REGISTER is refused before authentication matters.
enum Refusal {
    Bad(&'static str),
    TooBrief,
    Forbidden(&'static str),
}

impl Registrar {
    /// A registrar for `realm` with no accounts; `secret` (from the owner's randomness) keys
    /// the nonces. Its clock starts at the first REGISTER.
    pub fn new(config: RegistrarConfig, realm: &str, secret: [u8; 32]) -> Registrar {
        Registrar {
            config,
            issuer: NonceIssuer::new(realm, secret, config.nonce_lifetime.as_secs()),
            secret,
            realm: realm.to_string(),
            epoch: None,
            accounts: HashMap::new(),
            bindings: HashMap::new(),
            nonces: HashMap::new(),
            next_expiry: None,
            events: VecDeque::new(),
            challenges: 0,
        }
    }

    /// The realm challenges name.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Replace the accounts (a config reload) and the realm. Bindings and nonce logs of users
    /// that remain are kept; the others are dropped (reported as unregistered).
    pub fn set_accounts(&mut self, realm: &str, accounts: Vec<Account>) {
        if realm != self.realm {
            self.realm = realm.to_string();
            self.issuer =
                NonceIssuer::new(realm, self.secret, self.config.nonce_lifetime.as_secs());
        }
        let accounts: HashMap<String, Account> =
            accounts.into_iter().map(|a| (a.user.clone(), a)).collect();
        let gone: Vec<String> = self
            .bindings
            .keys()
            .filter(|u| !accounts.contains_key(*u))
            .cloned()
            .collect();
        for user in gone {
            // Reported under the owner the account had.
            let owner = self.owner(&user);
            for b in self.bindings.remove(&user).unwrap_or_default() {
                self.event(RegistrarEvent::Unregistered {
                    owner: owner.clone(),
                    contact: b.contact.uri.to_string(),
                });
            }
        }
        // An account whose owner was renamed keeps its bindings under the new name.
        self.accounts = accounts;
        self.nonces.retain(|u, _| self.accounts.contains_key(u));
        self.recompute_expiry();
    }

    /// Whether any account may register.
    pub fn has_accounts(&self) -> bool {
        !self.accounts.is_empty()
    }

    /// The current bindings of `user`.
    pub fn bindings(&self, user: &str) -> &[Binding] {
        self.bindings.get(user).map(Vec::as_slice).unwrap_or(&[])
    }

    /// How many accounts have at least one binding.
    pub fn registered_count(&self) -> usize {
        self.bindings.values().filter(|b| !b.is_empty()).count()
    }

    /// How many bindings there are in all.
    pub fn binding_count(&self) -> usize {
        self.bindings.values().map(Vec::len).sum()
    }

    /// The next binding expiry, if any.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_expiry
    }

    /// Remove the bindings expired by `now` (spurious calls do nothing).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_expiry.is_none_or(|t| t > now) {
            return;
        }
        let mut expired = Vec::new();
        for (user, list) in &mut self.bindings {
            list.retain(|b| {
                let keep = b.expires_at > now;
                if !keep {
                    expired.push((user.clone(), b.contact.uri.to_string()));
                }
                keep
            });
        }
        self.bindings.retain(|_, l| !l.is_empty());
        for (user, contact) in expired {
            let owner = self.owner(&user);
            self.event(RegistrarEvent::Expired { owner, contact });
        }
        self.recompute_expiry();
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<RegistrarEvent> {
        self.events.pop_front()
    }

    /// Process one REGISTER (RFC 3261 §10.3) that came from `source`.
    pub fn handle_register(&mut self, now: Instant, req: &Request, source: Peer) -> RegisterReply {
        // Expired bindings must not answer a query or block a CSeq check.
        self.handle_timeout(now);
        let epoch = *self.epoch.get_or_insert(now);
        let now_secs = now.saturating_duration_since(epoch).as_secs();
        // Step 3: authentication.
        let user = match self.authenticate(req, now_secs, source.addr.ip()) {
            Ok(user) => user,
            Err(reply) => return reply,
        };
        // Step 6: the authenticated user registers its own address of record only.
        let to_user = req.party_to().ok().and_then(|t| t.uri.user());
        if to_user.as_deref() != Some(user.as_str()) {
            return reply(StatusCode::FORBIDDEN, Some("Not Your Address Of Record"));
        }
        match self.update(now, req, source, &user) {
            Ok(()) => {
                let mut r = reply(StatusCode::OK, None);
                for b in self.bindings(&user) {
                    let left = b.expires_at.saturating_duration_since(now).as_secs();
                    let mut c = b.contact.clone();
                    c.params.set("expires", Some(left.to_string()));
                    r.headers.push((HeaderName::Contact, c.to_string()));
                }
                r
            }
            Err(Refusal::Bad(why)) => reply(StatusCode::BAD_REQUEST, Some(why)),
            Err(Refusal::Forbidden(why)) => reply(StatusCode::FORBIDDEN, Some(why)),
            Err(Refusal::TooBrief) => {
                let mut r = reply(StatusCode::INTERVAL_TOO_BRIEF, None);
                r.headers.push((
                    HeaderName::Other("Min-Expires".into()),
                    self.config.min_expires.to_string(),
                ));
                r
            }
        }
    }

    /// Authenticate any other request from an agent's phone (an INVITE dialling a feature
    /// code) with the same digest machinery as REGISTER (RFC 3261 §22.2, §22.4): the owner
    /// of the account that answered, or the reply to send instead: `401` with fresh
    /// challenges (none, an unknown or stale nonce, a replay), or `403` with `auth_failed`
    /// (a wrong password and an unknown user alike).
    pub fn authenticate_request(
        &mut self,
        now: Instant,
        req: &Request,
        source: IpAddr,
    ) -> Result<String, RegisterReply> {
        let epoch = *self.epoch.get_or_insert(now);
        let now_secs = now.saturating_duration_since(epoch).as_secs();
        let user = self.authenticate(req, now_secs, source)?;
        Ok(self.owner(&user))
    }

    /// The two challenges (SHA-256 first, RFC 8760 §2.4), fresh at `now_secs`, their nonces
    /// bound to `source` (the address they are sent to).
    fn challenge(&mut self, now_secs: u64, stale: bool, source: IpAddr) -> RegisterReply {
        let mut r = reply(StatusCode::UNAUTHORIZED, None);
        self.challenges = self.challenges.wrapping_add(1);
        let order: &[Algorithm] = if self.config.md5_only {
            &[Algorithm::Md5]
        } else if self.config.md5_first {
            &[Algorithm::Md5, Algorithm::Sha256]
        } else {
            &[Algorithm::Sha256, Algorithm::Md5]
        };
        for &alg in order {
            let c: Challenge =
                self.issuer
                    .challenge_seq(now_secs, self.challenges, Some(source), alg, stale);
            r.headers
                .push((HeaderName::Other("WWW-Authenticate".into()), c.to_string()));
        }
        r
    }

    /// The authenticated user, or the reply refusing the request.
    ///
    /// Nonces are bound to the address they were sent to: an answer from elsewhere (a
    /// forged source, or a phone whose address changed) is challenged afresh, never counted
    /// as a failure, so only a host that receives a source's challenges can get it banned.
    fn authenticate(
        &mut self,
        req: &Request,
        now_secs: u64,
        source: IpAddr,
    ) -> Result<String, RegisterReply> {
        let name = HeaderName::Other("Authorization".into());
        let ours = req
            .headers
            .get_all(&name)
            .take(MAX_AUTHORIZATIONS)
            .filter(|v| v.len() <= MAX_VALUE_LEN)
            .filter_map(|v| Authorization::parse(v).ok())
            .find(|a| a.realm == self.realm);
        let Some(auth) = ours else {
            return Err(self.challenge(now_secs, false, source));
        };
        let account = self.accounts.get(&auth.username);
        let ha1 = match (account, auth.algorithm) {
            (Some(a), Algorithm::Md5) => a.ha1_md5.as_str(),
            (Some(a), Algorithm::Sha256) if !self.config.md5_only => a.ha1_sha256.as_str(),
            // Unknown users and algorithms we did not offer: the same check against a
            // dummy hash, so the work and the answer are the same as for a wrong password.
            (_, Algorithm::Md5 | Algorithm::Md5Sess) => DUMMY_MD5,
            (Some(_), Algorithm::Sha256) => DUMMY_SHA256,
            (_, Algorithm::Sha256 | Algorithm::Sha256Sess) => DUMMY_SHA256,
        };
        let offered = match auth.algorithm {
            Algorithm::Md5 => true,
            Algorithm::Sha256 => !self.config.md5_only,
            _ => false,
        };
        let usable = account.is_some()
            && offered
            && auth.qop_auth.is_some()
            && Uri::parse(&auth.uri).is_ok_and(|u| u == req.uri);
        let failed = || {
            let mut r = reply(StatusCode::FORBIDDEN, None);
            r.auth_failed = true;
            r
        };
        match self
            .issuer
            .verify_from(&auth, req.method.as_str(), ha1, now_secs, Some(source))
        {
            Err(VerifyError::UnknownNonce | VerifyError::WrongRealm) => {
                return Err(self.challenge(now_secs, false, source));
            }
            Err(VerifyError::WrongResponse) => return Err(failed()),
            Err(VerifyError::Stale) if usable => return Err(self.challenge(now_secs, true, source)),
            Err(VerifyError::Stale) => return Err(failed()),
            Ok(()) if !usable => return Err(failed()),
            Ok(()) => {}
        }
        // Replays (RFC 7616 §3.3 nc): the nonce's count must go up. Our nonces are
        // `TIME-SEQ-MAC` with SEQ counting challenges, so they are ordered by SEQ.
        let mut parts = auth.nonce.split('-');
        let issued = parts
            .next()
            .and_then(|t| u64::from_str_radix(t, 16).ok())
            .unwrap_or(0);
        let seq = parts
            .next()
            .and_then(|t| u64::from_str_radix(t, 16).ok())
            .unwrap_or(0);
        let nc = auth.qop_auth.as_ref().map(|(_, n)| *n).unwrap_or(0);
        let lifetime = self.config.nonce_lifetime.as_secs();
        let log = self.nonces.entry(auth.username.clone()).or_default();
        log.seen
            .retain(|s| now_secs.saturating_sub(s.issued) <= lifetime);
        if let Some(entry) = log.seen.iter_mut().find(|s| s.nonce == auth.nonce) {
            if nc <= entry.nc {
                return Err(self.challenge(now_secs, true, source));
            }
            entry.nc = nc;
        } else {
            if log.floor.is_some_and(|f| seq <= f) {
                return Err(self.challenge(now_secs, true, source));
            }
            log.seen.push(SeenNonce {
                nonce: auth.nonce.clone(),
                issued,
                seq,
                nc,
            });
            if log.seen.len() > NONCES_PER_USER
                && let Some(i) = (0..log.seen.len()).min_by_key(|&i| log.seen[i].seq)
            {
                let old = log.seen.remove(i);
                log.floor = Some(log.floor.map_or(old.seq, |f| f.max(old.seq)));
            }
        }
        Ok(auth.username)
    }

    /// Steps 5 to 7: check every contact, then change the bindings (all or nothing).
    fn update(
        &mut self,
        now: Instant,
        req: &Request,
        source: Peer,
        user: &str,
    ) -> Result<(), Refusal> {
        let header_expires = match req.headers.get(&HeaderName::Expires) {
            None => None,
            Some(v) => Some(delta_seconds(v).ok_or(Refusal::Bad("Bad Expires"))?),
        };
        let values: Vec<&str> = req
            .headers
            .get_all(&HeaderName::Contact)
            .flat_map(split_commas)
            .take(MAX_CONTACT_VALUES + 1)
            .collect();
        if values.len() > MAX_CONTACT_VALUES {
            return Err(Refusal::Bad("Too Many Contacts"));
        }
        let call_id = req
            .call_id()
            .map_err(|_| Refusal::Bad("Bad Call-ID"))?
            .to_string();
        let cseq = req.cseq().map_err(|_| Refusal::Bad("Bad CSeq"))?.seq;
        // `*`: remove every binding (step 6), only alone and with Expires: 0.
        if values.contains(&"*") {
            if values.len() != 1 || header_expires != Some(0) {
                return Err(Refusal::Bad("Wildcard Contact Needs Expires 0 Alone"));
            }
            let list = self.bindings.get(user).map(Vec::as_slice).unwrap_or(&[]);
            if list.iter().any(|b| b.call_id == call_id && cseq <= b.cseq) {
                return Err(Refusal::Bad("CSeq Out Of Order"));
            }
            for b in self.bindings.remove(user).unwrap_or_default() {
                let owner = self.owner(user);
                self.event(RegistrarEvent::Unregistered {
                    owner,
                    contact: b.contact.uri.to_string(),
                });
            }
            self.recompute_expiry();
            return Ok(());
        }
        if values.len() > self.config.max_contacts {
            return Err(Refusal::Forbidden("Too Many Contacts"));
        }
        // Parse and check everything first.
        let mut changes: Vec<(NameAddr, u32)> = Vec::with_capacity(values.len());
        for v in values {
            if v.len() > MAX_VALUE_LEN {
                return Err(Refusal::Bad("Contact Too Long"));
            }
            let mut c =
                NameAddr::parse(v, HeaderName::Contact).map_err(|_| Refusal::Bad("Bad Contact"))?;
            if !matches!(c.uri, Uri::Sip(_)) {
                return Err(Refusal::Bad("Contact Is Not A SIP URI"));
            }
            let expires = match c.params.get("expires") {
                Some(Some(e)) => delta_seconds(e).ok_or(Refusal::Bad("Bad Contact Expires"))?,
                Some(None) => return Err(Refusal::Bad("Bad Contact Expires")),
                None => header_expires.unwrap_or(self.config.default_expires),
            };
            if expires > 0 && expires < self.config.min_expires {
                return Err(Refusal::TooBrief);
            }
            c.params
                .0
                .retain(|(n, _)| !n.eq_ignore_ascii_case("expires"));
            let list = self.bindings.get(user).map(Vec::as_slice).unwrap_or(&[]);
            if list
                .iter()
                .any(|b| b.contact.uri == c.uri && b.call_id == call_id && cseq <= b.cseq)
            {
                return Err(Refusal::Bad("CSeq Out Of Order"));
            }
            if changes.iter().any(|(o, _)| o.uri == c.uri) {
                return Err(Refusal::Bad("Contact Given Twice"));
            }
            changes.push((c, expires.min(self.config.max_expires)));
        }
        // Then apply.
        let owner = self.owner(user);
        let max = self.config.max_contacts;
        let list = self.bindings.entry(user.to_string()).or_default();
        let mut events = Vec::new();
        for (contact, expires) in changes {
            let existing = list.iter().position(|b| b.contact.uri == contact.uri);
            match (existing, expires) {
                (Some(i), 0) => {
                    let b = list.remove(i);
                    events.push(RegistrarEvent::Unregistered {
                        owner: owner.clone(),
                        contact: b.contact.uri.to_string(),
                    });
                }
                (None, 0) => {}
                (Some(i), e) => {
                    let b = &mut list[i];
                    b.contact = contact;
                    b.source = source;
                    b.call_id = call_id.clone();
                    b.cseq = cseq;
                    b.expires_at = now + Duration::from_secs(u64::from(e));
                }
                (None, e) => {
                    if list.len() >= max
                        && let Some(i) = (0..list.len()).min_by_key(|&i| list[i].expires_at)
                    {
                        let b = list.remove(i);
                        events.push(RegistrarEvent::Unregistered {
                            owner: owner.clone(),
                            contact: b.contact.uri.to_string(),
                        });
                    }
                    events.push(RegistrarEvent::Registered {
                        owner: owner.clone(),
                        contact: contact.uri.to_string(),
                        source,
                        expires: e,
                    });
                    list.push(Binding {
                        contact,
                        source,
                        call_id: call_id.clone(),
                        cseq,
                        expires_at: now + Duration::from_secs(u64::from(e)),
                    });
                }
            }
        }
        if list.is_empty() {
            self.bindings.remove(user);
        }
        for e in events {
            self.event(e);
        }
        self.recompute_expiry();
        Ok(())
    }

    fn owner(&self, user: &str) -> String {
        self.accounts
            .get(user)
            .map(|a| a.owner.clone())
            .unwrap_or_else(|| user.to_string())
    }

    fn event(&mut self, e: RegistrarEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    fn recompute_expiry(&mut self) {
        self.next_expiry = self.bindings.values().flatten().map(|b| b.expires_at).min();
    }
}

/// An HA1 no password hashes to in practice, checked for unknown users.
const DUMMY_MD5: &str = "00000000000000000000000000000000";
const DUMMY_SHA256: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn reply(status: StatusCode, reason: Option<&'static str>) -> RegisterReply {
    RegisterReply {
        status,
        reason,
        headers: Vec::new(),
        auth_failed: false,
    }
}

/// `delta-seconds` (RFC 3261 §25.1): digits; values past 2^32-1 are taken as that
/// (RFC 3261 §20.19 says to treat larger ones as 2^32-1... and we lower to max anyway).
fn delta_seconds(s: &str) -> Option<u32> {
    let s = s.trim();
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        s.parse::<u64>()
            .map_or(u32::MAX, |n| n.min(u64::from(u32::MAX)) as u32),
    )
}

#[cfg(test)]
#[path = "registrar_tests.rs"]
mod tests;
