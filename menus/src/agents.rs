//! Call-center agents (`agents:`): the people queues offer calls to.
//!
//! An agent either registers a phone with the engine's registrar (RFC 3261 §10) under a SIP
//! user name and a password, or is reached at a fixed URI (a "static" agent, no
//! registration). Each agent serves queues, each with a penalty (0, the default, is offered
//! calls first).
//!
//! Passwords never appear in the config. Digest authentication (RFC 7616, RFC 8760) needs
//! `HA1 = H(user:realm:password)` on the server side, not a slow password hash, so the
//! config stores HA1 for both algorithms the registrar challenges with, bound to the realm:
//!
//! ```yaml
//! agents:
//!   alice:
//!     user: alice
//!     password: "ha1:ivr:<32 hex, MD5>:<64 hex, SHA-256>"
//!     queues: { sales: 0, support: 2 }
//!   desk:
//!     uri: sip:desk@192.0.2.10
//!     queues: { support: 0 }
//! ```
//!
//! `ivr agents add` reads a password and prints that line. A plain password is refused with
//! a pointer to it; agents with passwords must all share one realm (the registrar's).

use crate::error::{ErrorKind, Loc, closest};
use crate::model::QueueId;
use crate::yaml::{Node, Value, Walker, join};

/// Fields of an `agents:` entry.
pub(crate) const AGENT_FIELDS: &[&str] = &["user", "password", "uri", "queues", "login"];

/// Fields of the top-level `agent_codes:` section.
pub(crate) const CODE_FIELDS: &[&str] = &["login", "logout", "pause"];

/// When an agent counts as logged in (`login:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoginMode {
    /// Logged in when its phone registers (a new binding), out when the phone removes its
    /// last binding; a static agent always is. Feature codes and staff still log it in and
    /// out. The default.
    #[default]
    OnRegister,
    /// Only the agent (feature codes) or staff log it in and out; registration says only
    /// whether it can be reached.
    Manual,
}

/// The numbers an agent's phone dials to change its state (`agent_codes:`): the
/// Request-URI user of an INVITE from an authenticated agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCodes {
    /// Log in (default `*41`).
    pub login: String,
    /// Log out (default `*42`).
    pub logout: String,
    /// Pause, or unpause when paused (default `*43`).
    pub pause: String,
}

impl Default for AgentCodes {
    fn default() -> Self {
        AgentCodes {
            login: "*41".into(),
            logout: "*42".into(),
            pause: "*43".into(),
        }
    }
}

/// What a feature code asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentCode {
    /// Log in.
    Login,
    /// Log out.
    Logout,
    /// Pause, or unpause if paused.
    PauseToggle,
}

impl AgentCodes {
    /// The code `user` (a Request-URI user part) dials, if it is one.
    pub fn code(&self, user: &str) -> Option<AgentCode> {
        if user == self.login {
            Some(AgentCode::Login)
        } else if user == self.logout {
            Some(AgentCode::Logout)
        } else if user == self.pause {
            Some(AgentCode::PauseToggle)
        } else {
            None
        }
    }
}

/// Whether `code` can be a feature code: 1 to 16 of `0-9 * #`, starting with `*` or `#`
/// (so it never shadows a plain number in `entries:`).
pub fn valid_code(code: &str) -> bool {
    (2..=16).contains(&code.len())
        && code.starts_with(['*', '#'])
        && code
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
}

/// Compile the top-level `agent_codes:` section (defaults for what it leaves out).
pub(crate) fn compile_codes(w: &mut Walker, node: Option<&Node>) -> AgentCodes {
    let mut codes = AgentCodes::default();
    let Some(node) = node else { return codes };
    let Some(f) = w.map(node, "agent_codes", Some(CODE_FIELDS)) else {
        return codes;
    };
    let mut seen: Vec<String> = Vec::new();
    for (key, slot) in [
        ("login", &mut codes.login),
        ("logout", &mut codes.logout),
        ("pause", &mut codes.pause),
    ] {
        let Some(n) = f.get(key) else {
            seen.push(slot.clone());
            continue;
        };
        let path = join("agent_codes", key);
        let Some(code) = w.string(n, &path) else {
            continue;
        };
        if !valid_code(&code) {
            w.error(
                n.at,
                &path,
                ErrorKind::Agent(format!(
                    "'{code}' is not a feature code (2 to 16 of 0-9 * #, starting with * or #)"
                )),
            );
            continue;
        }
        *slot = code;
    }
    let all = [&codes.login, &codes.logout, &codes.pause];
    for (i, c) in all.iter().enumerate() {
        if all[..i].contains(c) {
            w.error(
                node.at,
                "agent_codes",
                ErrorKind::Agent(format!("'{c}' is given to two feature codes")),
            );
        }
    }
    codes
}

/// The highest penalty a queue membership may carry.
pub const MAX_PENALTY: u32 = 1000;

/// How an agent is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// The agent registers a phone (RFC 3261 §10) and is reached at its bindings.
    Registered(DigestCredentials),
    /// The agent is reached at a fixed `sip:`/`sips:`/`tel:` URI and never registers.
    Static(String),
}

/// What the registrar checks an agent's REGISTER against: the SIP user name and HA1 for
/// MD5 and SHA-256 (RFC 7616 §3.4.2, RFC 8760 §2), for one realm. `Debug` hides the hashes.
#[derive(Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    /// The user name REGISTER authenticates as (and the To user of the address of record).
    pub user: String,
    /// The realm the hashes were made for.
    pub realm: String,
    /// `MD5(user:realm:password)`, lower-case hex.
    pub ha1_md5: String,
    /// `SHA-256(user:realm:password)`, lower-case hex.
    pub ha1_sha256: String,
}

impl std::fmt::Debug for DigestCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestCredentials")
            .field("user", &self.user)
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

impl DigestCredentials {
    /// The config's text for these hashes: `ha1:REALM:MD5HEX:SHA256HEX`.
    pub fn to_config(&self) -> String {
        format!("ha1:{}:{}:{}", self.realm, self.ha1_md5, self.ha1_sha256)
    }

    /// Read `ha1:REALM:MD5HEX:SHA256HEX` (the realm may itself hold `:`). `Err` says why not.
    pub fn parse(user: &str, text: &str) -> Result<DigestCredentials, String> {
        let Some(rest) = text.strip_prefix("ha1:") else {
            return Err(String::new());
        };
        let mut parts = rest.rsplitn(3, ':');
        let (Some(sha), Some(md5), Some(realm)) = (parts.next(), parts.next(), parts.next()) else {
            return Err("expected ha1:REALM:MD5:SHA-256 (as `ivr agents add` prints)".into());
        };
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        if realm.is_empty()
            || !realm
                .chars()
                .all(|c| c != '"' && c != '\\' && !c.is_control())
        {
            return Err(
                "the realm is empty or holds a quote, backslash or control character".into(),
            );
        }
        if !hex(md5, 32) {
            return Err("the MD5 hash is not 32 hex digits".into());
        }
        if !hex(sha, 64) {
            return Err("the SHA-256 hash is not 64 hex digits".into());
        }
        Ok(DigestCredentials {
            user: user.to_string(),
            realm: realm.to_string(),
            ha1_md5: md5.to_ascii_lowercase(),
            ha1_sha256: sha.to_ascii_lowercase(),
        })
    }
}

/// One agent.
#[derive(Debug, Clone)]
pub struct Agent {
    /// Its name (the key under `agents:`).
    pub name: String,
    /// Registering, or at a fixed URI.
    pub reach: Reach,
    /// The queues it serves, each with its penalty (lower is offered first), in file order.
    pub queues: Vec<(QueueId, u32)>,
    /// When it counts as logged in.
    pub login: LoginMode,
    /// Where it is defined.
    pub at: Loc,
}

impl Agent {
    /// The SIP user name it registers as, for a registering agent.
    pub fn user(&self) -> Option<&str> {
        match &self.reach {
            Reach::Registered(c) => Some(&c.user),
            Reach::Static(_) => None,
        }
    }
}

/// Whether `user` can be a SIP user name here: RFC 3261 §25.1 `unreserved` and
/// `user-unreserved` characters, 1 to 64 of them (no escapes, so one spelling per user).
pub fn valid_user(user: &str) -> bool {
    (1..=64).contains(&user.len())
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b))
}

/// Compile the `agents:` section against the defined queues.
pub(crate) fn compile_agents(w: &mut Walker, node: &Node, queues: &[String]) -> Vec<Agent> {
    let Some(fields) = w.map(node, "agents", None) else {
        return Vec::new();
    };
    let mut agents: Vec<Agent> = Vec::new();
    let mut realm: Option<(String, Loc)> = None;
    for (name, spec) in fields.iter() {
        let path = join("agents", name);
        let Some(f) = w.map(spec, &path, Some(AGENT_FIELDS)) else {
            continue;
        };
        let text = |w: &mut Walker, key: &str| {
            f.get(key)
                .and_then(|n| w.string(n, &join(&path, key)).map(|s| (s, n.at)))
        };
        let uri = text(w, "uri");
        // Extensions are often numbers: `user: 1001` is the user name "1001".
        let user = match f.get("user") {
            Some(n) => match n.value {
                Value::Int(i) if i >= 0 => Some((i.to_string(), n.at)),
                _ => text(w, "user"),
            },
            None => None,
        };
        let password = text(w, "password");
        let reach = match (uri, password) {
            (Some((uri, at)), None) => {
                if let Some((_, uat)) = user {
                    w.error(
                        uat,
                        &join(&path, "user"),
                        ErrorKind::Agent(
                            "a static agent (uri:) does not register: drop user:".into(),
                        ),
                    );
                }
                match ivr_sip::uri::Uri::parse(&uri) {
                    Ok(ivr_sip::uri::Uri::Sip(_)) => Reach::Static(uri),
                    Ok(u) if u.scheme() == "tel" && uri.len() > 4 => Reach::Static(uri),
                    _ => {
                        w.error(
                            at,
                            &join(&path, "uri"),
                            ErrorKind::Uri(format!(
                                "'{uri}': an agent's URI is a sip:, sips: or tel: URI"
                            )),
                        );
                        continue;
                    }
                }
            }
            (Some((_, at)), Some(_)) => {
                w.error(
                    at,
                    &path,
                    ErrorKind::Agent(
                        "either uri: (a static agent) or password: (an agent who registers), not both"
                            .into(),
                    ),
                );
                continue;
            }
            (None, None) => {
                w.error(spec.at, &path, ErrorKind::Missing("password"));
                continue;
            }
            (None, Some((pw, at))) => {
                let (user, uat) = user.unwrap_or_else(|| (name.to_string(), spec.at));
                if !valid_user(&user) {
                    w.error(
                        uat,
                        &join(&path, "user"),
                        ErrorKind::Agent(format!(
                            "'{user}' is not a SIP user name (1 to 64 letters, digits or -_.!~*'()&=+$,;?/)"
                        )),
                    );
                    continue;
                }
                let creds = match DigestCredentials::parse(&user, &pw) {
                    Ok(c) => c,
                    Err(reason) if reason.is_empty() => {
                        w.error(at, &join(&path, "password"), ErrorKind::PlainPassword);
                        continue;
                    }
                    Err(reason) => {
                        w.error(at, &join(&path, "password"), ErrorKind::Agent(reason));
                        continue;
                    }
                };
                match &realm {
                    None => realm = Some((creds.realm.clone(), at)),
                    Some((r, first)) if *r != creds.realm => w.error(
                        at,
                        &join(&path, "password"),
                        ErrorKind::Agent(format!(
                            "made for realm '{}', but the agent at line {} uses '{r}': agents share one realm (run `ivr agents add` with --realm {r})",
                            creds.realm, first.line
                        )),
                    ),
                    Some(_) => {}
                }
                if let Some(other) = agents.iter().find(|a| a.user() == Some(user.as_str())) {
                    w.error(
                        uat,
                        &join(&path, "user"),
                        ErrorKind::Redefined {
                            kind: "agent user",
                            other_file: None,
                            other_at: other.at,
                        },
                    );
                }
                Reach::Registered(creds)
            }
        };
        let mut served = Vec::new();
        if let Some(qnode) = f.get("queues") {
            let qpath = join(&path, "queues");
            if let Some(qf) = w.map(qnode, &qpath, None) {
                for (queue, pnode) in qf.iter() {
                    let here = join(&qpath, queue);
                    let penalty = match pnode.value {
                        Value::Null => Some(0),
                        _ => w.count(pnode, &here),
                    };
                    let Some(penalty) = penalty else { continue };
                    if penalty > MAX_PENALTY {
                        w.error(
                            pnode.at,
                            &here,
                            ErrorKind::Range {
                                got: f64::from(penalty),
                                min: 0.0,
                                max: f64::from(MAX_PENALTY),
                            },
                        );
                        continue;
                    }
                    match queues.iter().position(|q| q == queue) {
                        Some(i) => served.push((QueueId(i), penalty)),
                        None => w.error(
                            pnode.at,
                            &here,
                            ErrorKind::Unknown {
                                kind: "queue",
                                name: queue.to_string(),
                                hint: closest(queue, queues.iter().map(String::as_str)),
                            },
                        ),
                    }
                }
            }
        }
        let login = crate::handoff::choice(
            w,
            &f,
            "login",
            &path,
            &[
                ("on_register", LoginMode::OnRegister),
                ("manual", LoginMode::Manual),
            ],
            "on_register, manual",
            LoginMode::OnRegister,
        );
        agents.push(Agent {
            name: name.to_string(),
            reach,
            queues: served,
            login,
            at: spec.at,
        });
    }
    agents
}

#[cfg(test)]
mod tests {
    use crate::compile::tests::compile_test;

    const MD5: &str = "0123456789abcdef0123456789abcdef";
    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn config(agents: &str) -> String {
        format!(
            "entry: main\nprompts: {{ hi: hi.wav }}\nmenus:\n  main:\n    prompt: hi\n    options: {{ \"1\": {{ queue: sales }} }}\nqueues:\n  sales: {{}}\n  support: {{}}\nagents:\n{agents}"
        )
    }

    #[test]
    fn agents_compile_with_queues_and_penalties() {
        let yaml = config(&format!(
            "  alice:\n    user: 1001\n    password: \"ha1:ivr:{MD5}:{SHA}\"\n    queues: {{ sales: 0, support: 3 }}\n  desk:\n    uri: sip:desk@192.0.2.10\n    queues: {{ support: }}\n"
        ));
        let menus = compile_test(&yaml).unwrap();
        let a = menus.agents();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].user(), Some("1001"));
        assert_eq!(a[0].queues.len(), 2);
        assert_eq!(a[0].queues[1].1, 3);
        assert_eq!(a[1].user(), None);
        assert_eq!(a[1].queues[0].1, 0);
        assert_eq!(menus.agents_realm(), Some("ivr"));
        // Hashes never show in Debug.
        assert!(!format!("{:?}", a[0]).contains(MD5));
    }

    #[test]
    fn every_agent_error_is_reported_with_its_place() {
        let yaml = config(&format!(
            "  alice:\n    password: secret\n  bob:\n    user: alice2\n    password: \"ha1:ivr:{MD5}:{SHA}\"\n    queues: {{ sale: 0 }}\n  carol:\n    user: alice2\n    password: \"ha1:other:{MD5}:{SHA}\"\n  dan:\n    uri: http://x\n  erin:\n    password: \"ha1:ivr:12:{SHA}\"\n  fay:\n    queues: {{ sales: 0 }}\n"
        ));
        let errors = compile_test(&yaml).unwrap_err();
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        let has = |needle: &str| text.iter().any(|t| t.contains(needle));
        assert!(
            has("agents.alice.password: a password is not written"),
            "{text:?}"
        );
        assert!(has("ivr agents add"), "{text:?}");
        assert!(
            has("agents.bob.queues.sale: unknown queue 'sale' (did you mean 'sales'?)"),
            "{text:?}"
        );
        assert!(
            has("agents.carol.user: agent user defined again"),
            "{text:?}"
        );
        assert!(
            has("agents.carol.password: made for realm 'other'"),
            "{text:?}"
        );
        assert!(has("agents.dan.uri"), "{text:?}");
        assert!(has("agents.erin.password: the MD5 hash"), "{text:?}");
        assert!(has("agents.fay: missing field 'password'"), "{text:?}");
        assert!(errors.iter().all(|e| e.at.is_some()));
    }

    #[test]
    fn login_mode_and_feature_codes_compile_with_defaults_and_errors() {
        use super::{AgentCode, LoginMode};
        let yaml = config(&format!(
            "  alice:\n    password: \"ha1:ivr:{MD5}:{SHA}\"\n    login: manual\n  bob:\n    password: \"ha1:ivr:{MD5}:{SHA}\"\n"
        ));
        let menus = compile_test(&yaml).unwrap();
        assert_eq!(menus.agents()[0].login, LoginMode::Manual);
        assert_eq!(menus.agents()[1].login, LoginMode::OnRegister);
        let codes = menus.agent_codes();
        assert_eq!(codes.code("*41"), Some(AgentCode::Login));
        assert_eq!(codes.code("*42"), Some(AgentCode::Logout));
        assert_eq!(codes.code("*43"), Some(AgentCode::PauseToggle));
        assert_eq!(codes.code("41"), None);

        let yaml = format!(
            "{}agent_codes: {{ login: \"#9\", pause: \"*42\" }}\n",
            config("")
        );
        let yaml = yaml.replace("agents:\n", "");
        let menus = compile_test(&yaml).unwrap_err();
        let text: Vec<String> = menus.iter().map(|e| e.to_string()).collect();
        assert!(
            text.iter().any(|t| t.contains("'*42' is given to two")),
            "{text:?}"
        );

        let yaml = format!(
            "{}agent_codes: {{ login: \"41\", logout: \"*7\" }}\n",
            config("")
        )
        .replace("agents:\n", "");
        let errors = compile_test(&yaml).unwrap_err();
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t.contains("agent_codes.login: '41' is not a feature code")),
            "{text:?}"
        );
        let yaml = config(&format!(
            "  alice:\n    password: \"ha1:ivr:{MD5}:{SHA}\"\n    login: sometimes\n"
        ));
        let errors = compile_test(&yaml).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.to_string().contains("agents.alice.login")),
            "{errors:?}"
        );
        let yaml = format!(
            "{}agent_codes: {{ login: \"#9\", logout: \"*7\" }}\n",
            config("")
        )
        .replace("agents:\n", "");
        let menus = compile_test(&yaml).unwrap();
        assert_eq!(menus.agent_codes().code("#9"), Some(AgentCode::Login));
        assert_eq!(
            menus.agent_codes().code("*43"),
            Some(AgentCode::PauseToggle)
        );
    }
}
