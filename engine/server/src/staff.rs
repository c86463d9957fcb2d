//! Staff users: who may sign in to `/staff` and call `/api/`, and which mailboxes each may
//! see. Kept in a YAML file written by `ivr staff add-user` / `ivr staff add-token`:
//!
//! ```yaml
//! users:
//!   alice:
//!     password: $argon2id$v=19$m=19456,t=2,p=1$...   # argon2 hash, never the password
//!     mailboxes: [messages, doctor]                    # or ["*"] for every mailbox
//!     tokens: [sha256:9f86d0...]                        # API tokens, hashed
//! ```

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// Why the users file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    /// It cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// It is not a valid users file.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// No such user.
    #[error("no staff user '{0}'")]
    NoUser(String),
    /// A name or password that cannot be used.
    #[error("{0}")]
    Refused(String),
}

/// One staff member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// The password's argon2 hash (PHC string).
    pub password: String,
    /// The mailboxes this user sees (`*`: all).
    pub mailboxes: Vec<String>,
    /// API tokens, as `sha256:HEX` of the token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<String>,
}

impl User {
    /// Whether this user may see requests in `mailbox`.
    pub fn may_see(&self, mailbox: &str) -> bool {
        self.mailboxes.iter().any(|m| m == "*" || m == mailbox)
    }

    /// The mailboxes to filter by (`None`: all).
    pub fn mailbox_filter(&self) -> Option<Vec<String>> {
        if self.mailboxes.iter().any(|m| m == "*") {
            None
        } else {
            Some(self.mailboxes.clone())
        }
    }
}

/// The users file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Users {
    /// By name.
    #[serde(default)]
    pub users: BTreeMap<String, User>,
}

fn token_hash(token: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(token.as_bytes())))
}

/// Equal in time whatever the first difference (for secrets and their hashes).
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Users {
    /// Read the file (a missing file is no users).
    pub fn load(path: &Path) -> Result<Users, StaffError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Users::default()),
            Err(source) => {
                return Err(StaffError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        let users: Users = serde_saphyr::from_str(&text).map_err(|e| StaffError::Invalid {
            path: path.display().to_string(),
            reason: e
                .to_string()
                .lines()
                .next()
                .unwrap_or("invalid")
                .to_string(),
        })?;
        for (name, u) in &users.users {
            PasswordHash::new(&u.password).map_err(|e| StaffError::Invalid {
                path: path.display().to_string(),
                reason: format!("user '{name}': the password is not an argon2 hash ({e})"),
            })?;
        }
        Ok(users)
    }

    /// Write the file atomically (temporary file, rename), readable by its owner only.
    pub fn save(&self, path: &Path) -> Result<(), StaffError> {
        let io = |source| StaffError::Io {
            path: path.display().to_string(),
            source,
        };
        let text = serde_saphyr::to_string(self).map_err(|e| StaffError::Invalid {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let tmp = path.with_extension("tmp");
        std::fs::write(
            &tmp,
            format!("# ivr staff users: edit with `ivr staff add-user`\n{text}"),
        )
        .map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Add or replace a user with a password and mailboxes.
    pub fn add_user(
        &mut self,
        name: &str,
        password: &str,
        mailboxes: Vec<String>,
    ) -> Result<(), StaffError> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(StaffError::Refused(format!(
                "'{name}' is not a user name (letters, digits, . _ -)"
            )));
        }
        if password.chars().count() < 10 {
            return Err(StaffError::Refused(
                "a password needs 10 characters or more".into(),
            ));
        }
        if mailboxes.is_empty() {
            return Err(StaffError::Refused(
                "give the user at least one mailbox (or * for all)".into(),
            ));
        }
        let salt = SaltString::generate(&mut OsRng);
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| StaffError::Refused(e.to_string()))?
            .to_string();
        let tokens = self
            .users
            .get(name)
            .map(|u| u.tokens.clone())
            .unwrap_or_default();
        self.users.insert(
            name.to_string(),
            User {
                password: hash,
                mailboxes,
                tokens,
            },
        );
        Ok(())
    }

    /// Give a user a new API token; returns it (only its hash is kept).
    pub fn add_token(&mut self, name: &str) -> Result<String, StaffError> {
        let user = self
            .users
            .get_mut(name)
            .ok_or_else(|| StaffError::NoUser(name.to_string()))?;
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        let token = format!("ivr_{}", hex::encode(bytes));
        user.tokens.push(token_hash(&token));
        Ok(token)
    }

    /// The user with this name and password.
    pub fn sign_in(&self, name: &str, password: &str) -> Option<(&str, &User)> {
        let (name, user) = self.users.get_key_value(name)?;
        let hash = PasswordHash::new(&user.password).ok()?;
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .ok()
            .map(|()| (name.as_str(), user))
    }

    /// The user holding this API token.
    pub fn by_token(&self, token: &str) -> Option<(&str, &User)> {
        let h = token_hash(token);
        self.users
            .iter()
            .find(|(_, u)| {
                u.tokens
                    .iter()
                    .any(|t| same_secret(t.as_bytes(), h.as_bytes()))
            })
            .map(|(n, u)| (n.as_str(), u))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_sign_in_by_password_or_token_and_see_their_mailboxes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staff.yaml");
        let mut users = Users::load(&path).unwrap();
        assert!(users.users.is_empty(), "a missing file is no users");
        users
            .add_user("alice", "correct horse battery", vec!["messages".into()])
            .unwrap();
        users
            .add_user("root", "another long secret", vec!["*".into()])
            .unwrap();
        let token = users.add_token("alice").unwrap();
        users.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("correct horse") && !text.contains(&token),
            "{text}"
        );

        let users = Users::load(&path).unwrap();
        let (name, alice) = users.sign_in("alice", "correct horse battery").unwrap();
        assert_eq!(name, "alice");
        assert!(alice.may_see("messages") && !alice.may_see("doctor"));
        assert!(users.sign_in("alice", "wrong password!").is_none());
        assert!(users.sign_in("bob", "correct horse battery").is_none());
        assert_eq!(users.by_token(&token).map(|(n, _)| n), Some("alice"));
        assert!(users.by_token("ivr_nope").is_none());
        assert_eq!(users.users["root"].mailbox_filter(), None);
        assert!(
            Users::default()
                .add_user("x y", "long enough pw", vec!["*".into()])
                .is_err()
        );
        assert!(
            Users::default()
                .add_user("x", "short", vec!["*".into()])
                .is_err()
        );
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"secret", b"secret"));
        assert!(!same_secret(b"secret", b"secreT"));
        assert!(!same_secret(b"secret", b"secret2"));
        assert!(!same_secret(b"", b"x"));
    }

    #[test]
    fn a_plain_password_in_the_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staff.yaml");
        std::fs::write(
            &path,
            "users:\n  bob:\n    password: hunter2\n    mailboxes: ['*']\n",
        )
        .unwrap();
        let e = Users::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("user 'bob': the password is not an argon2 hash"),
            "{e}"
        );
    }
}
