//! Staff sign-in under attack: every password guess is counted before it is checked, the
//! checks themselves (argon2, ~19 MiB and tens of milliseconds each) run on a small fixed
//! set of threads behind a bounded queue, and an unknown user costs the same check as a
//! known one.
//!
//! - **Counting first.** [`SignIn::begin`] counts the attempt against the user from that
//!   address and against the address, under one lock, before any check runs. 64 guesses
//!   sent at once therefore get exactly [`MAX_GUESSES`] checks; the others are refused at
//!   once. A right password gives its attempt back.
//! - **Bounded work.** [`CHECKERS`] threads verify passwords, each with one argon2 memory
//!   block it keeps and reuses, so a burst of sign-ins neither runs hundreds of 19 MiB checks
//!   at once nor leaves the allocator holding their memory. At most [`QUEUE`] checks wait;
//!   beyond that [`SignIn::check`] answers [`Busy`] (the page says 503, try again).
//! - **Same cost for unknown users.** A name that is not a user is checked against a dummy
//!   hash made with the same parameters as real ones, so timing does not tell which names
//!   exist.

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Failed sign-ins allowed per user and client address in [`GUESS_WINDOW`].
pub const MAX_GUESSES: u32 = 5;
/// Failed sign-ins allowed per client address, whatever the user, in [`GUESS_WINDOW`].
pub const MAX_ADDRESS_GUESSES: u32 = 30;
/// The window of the limits above.
pub const GUESS_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Threads checking passwords.
pub const CHECKERS: usize = 2;
/// Checks that may wait for a thread.
pub const QUEUE: usize = 32;

/// Why an attempt is refused before any check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    /// This user from this address used up [`MAX_GUESSES`].
    User,
    /// This address used up [`MAX_ADDRESS_GUESSES`].
    Address,
}

/// Too many checks waiting: try again in a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// A count in a window.
#[derive(Debug, Clone, Copy)]
struct Count {
    n: u32,
    since: Instant,
}

impl Count {
    fn live(&self, now: Instant) -> bool {
        now.duration_since(self.since) < GUESS_WINDOW
    }
}

#[derive(Default)]
struct Counts {
    by_user: HashMap<(String, IpAddr), Count>,
    by_address: HashMap<IpAddr, Count>,
}

/// A password to check, and where the answer goes.
struct Job {
    /// The user's hash, or `None` for an unknown user (checked against the dummy hash).
    hash: Option<String>,
    password: String,
    reply: oneshot::Sender<bool>,
}

/// Sign-in accounting and the password checkers (started at the first check).
#[derive(Default)]
pub struct SignIn {
    counts: Mutex<Counts>,
    checkers: OnceLock<SyncSender<Job>>,
    /// Counts attempts refused by a lockout, for `/metrics`, once given.
    lockouts: OnceLock<prometheus_client::metrics::counter::Counter>,
}

impl SignIn {
    /// Count the attempts a lockout refuses in `counter` (from then on).
    pub fn count_lockouts(&self, counter: prometheus_client::metrics::counter::Counter) {
        let _ = self.lockouts.set(counter);
    }

    /// Count an attempt by `user` from `ip` before checking it; refused if a limit is used up.
    pub fn begin(&self, user: &str, ip: IpAddr, now: Instant) -> Result<(), Locked> {
        let result = self.count_attempt(user, ip, now);
        if result.is_err()
            && let Some(c) = self.lockouts.get()
        {
            c.inc();
        }
        result
    }

    fn count_attempt(&self, user: &str, ip: IpAddr, now: Instant) -> Result<(), Locked> {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        c.by_user.retain(|_, v| v.live(now));
        c.by_address.retain(|_, v| v.live(now));
        let fresh = Count { n: 0, since: now };
        if c.by_address
            .get(&ip)
            .is_some_and(|v| v.n >= MAX_ADDRESS_GUESSES)
        {
            return Err(Locked::Address);
        }
        let key = (user.to_string(), ip);
        if c.by_user.get(&key).is_some_and(|v| v.n >= MAX_GUESSES) {
            return Err(Locked::User);
        }
        c.by_user.entry(key).or_insert(fresh).n += 1;
        c.by_address.entry(ip).or_insert(fresh).n += 1;
        Ok(())
    }

    /// Give back an attempt that was counted but never checked (the queue was full), or
    /// whose password was right: a right password also clears the user's failures.
    pub fn give_back(&self, user: &str, ip: IpAddr, right: bool) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = c.by_address.get_mut(&ip) {
            v.n = v.n.saturating_sub(1);
        }
        let key = (user.to_string(), ip);
        if right {
            c.by_user.remove(&key);
        } else if let Some(v) = c.by_user.get_mut(&key) {
            v.n = v.n.saturating_sub(1);
        }
    }

    /// Check `password` against `hash` (`None`: an unknown user, checked against a dummy
    /// hash for the same cost) on a checker thread.
    pub async fn check(&self, hash: Option<String>, password: String) -> Result<bool, Busy> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            hash,
            password,
            reply,
        };
        match self.checkers.get_or_init(start_checkers).try_send(job) {
            Ok(()) => Ok(answer.await.unwrap_or(false)),
            Err(TrySendError::Full(_)) => Err(Busy),
            // The threads never stop while the sender lives; a failed spawn means no checks.
            Err(TrySendError::Disconnected(_)) => Ok(false),
        }
    }
}

fn start_checkers() -> SyncSender<Job> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(QUEUE);
    let rx = std::sync::Arc::new(Mutex::new(rx));
    for i in 0..CHECKERS {
        let rx = rx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("ivr-signin-{i}"))
            .spawn(move || {
                let mut memory: Vec<Block> = Vec::new();
                loop {
                    // The lock is held only while waiting for the next job, never during a check.
                    let job = match rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
                        Ok(job) => job,
                        Err(_) => return,
                    };
                    let ok = match &job.hash {
                        Some(h) => verify(&mut memory, h, &job.password),
                        None => {
                            verify(&mut memory, dummy_hash(), &job.password);
                            false
                        }
                    };
                    let _ = job.reply.send(ok);
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a password-check thread");
        }
    }
    tx
}

/// A hash of a random password with the parameters `ivr staff add-user` uses.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        use rand_core::RngCore;
        let mut secret = [0u8; 32];
        rand_core::OsRng.fill_bytes(&mut secret);
        let salt = SaltString::generate(&mut rand_core::OsRng);
        Argon2::default()
            .hash_password(&secret, &salt)
            .map(|h| h.to_string())
            // Hashing with default parameters and a generated salt cannot fail; if it
            // did, an empty hash makes every unknown user's check fail at once.
            .unwrap_or_default()
    })
}

/// Argon2 verification (as `PasswordVerifier` does it) in `memory`, which is grown to the
/// hash's size and kept for the next check instead of being allocated each time.
pub fn verify(memory: &mut Vec<Block>, hash: &str, password: &str) -> bool {
    let Ok(hash) = PasswordHash::new(hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..blocks])
        .is_ok()
        && crate::staff::same_secret(&out, expected.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_agrees_with_argon2() {
        let salt = SaltString::generate(&mut rand_core::OsRng);
        let hash = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        let mut memory = Vec::new();
        assert!(verify(&mut memory, &hash, "correct horse"));
        assert!(!verify(&mut memory, &hash, "correct horsE"));
        assert!(!verify(&mut memory, "not a hash", "x"));
        assert!(!verify(&mut memory, dummy_hash(), "correct horse"));
    }

    #[test]
    fn attempts_are_counted_before_the_check() {
        let s = SignIn::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let now = Instant::now();
        for _ in 0..MAX_GUESSES {
            assert_eq!(s.begin("alice", ip, now), Ok(()));
        }
        assert_eq!(s.begin("alice", ip, now), Err(Locked::User));
        // A right password clears the user's count from that address.
        s.give_back("alice", ip, true);
        assert_eq!(s.begin("alice", ip, now), Ok(()));
        // The address limit holds across user names.
        for i in 0..MAX_ADDRESS_GUESSES {
            let _ = s.begin(&format!("u{i}"), ip, now);
        }
        assert_eq!(s.begin("someone", ip, now), Err(Locked::Address));
        assert_eq!(
            s.begin("someone", ip, now + GUESS_WINDOW),
            Ok(()),
            "the window ends"
        );
    }
}
