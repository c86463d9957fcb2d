//! `ivr agents ...`: make the `agents:` entries of a config, and list them.
//!
//! `ivr agents add` reads the agent's password from standard input (never from the command
//! line, where `ps` and shell history would keep it), hashes it the way digest
//! authentication needs (HA1 for MD5 and SHA-256 in a realm, RFC 7616 §3.4.2), and prints the
//! YAML entry to paste under `agents:`. It does not edit the config: the file stays the
//! operator's, comments and layout included.

use anyhow::{Context, bail};
use clap::Subcommand;
use ivr_menus::agents::{DigestCredentials, MAX_PENALTY, Reach, valid_user};
use ivr_sip::digest::{Algorithm, ha1};
use std::path::PathBuf;

/// Passwords shorter than this are refused: the HA1s in the config can be attacked
/// offline by anyone who reads it.
const MIN_PASSWORD: usize = 10;

/// What to do.
#[derive(Subcommand)]
pub enum Agents {
    /// Print the `agents:` entry of an agent whose phone registers; the password is read
    /// from standard input (a prompt on a terminal), never from a flag.
    Add {
        /// The agent's name (its key under `agents:`).
        name: String,
        /// The SIP user name the phone registers as (default: the name).
        #[arg(long)]
        user: Option<String>,
        /// A queue the agent serves, with its penalty: `sales` or `sales=2` (repeat).
        #[arg(long = "queue", value_name = "QUEUE[=PENALTY]")]
        queues: Vec<String>,
        /// The digest realm the phone authenticates in; every agent of a config shares one.
        #[arg(long, default_value = "ivr")]
        realm: String,
    },
    /// List a config's agents: how each is reached and the queues it serves.
    List {
        /// The config file.
        file: PathBuf,
    },
}

/// Run `cmd`.
pub fn run(cmd: Agents) -> anyhow::Result<()> {
    match cmd {
        Agents::Add {
            name,
            user,
            queues,
            realm,
        } => {
            let mut password = String::new();
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                eprint!("password for agent {name}: ");
            }
            std::io::stdin()
                .read_line(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\n', '\r']);
            print!(
                "{}",
                entry(&name, user.as_deref(), &realm, password, &queues)?
            );
            eprintln!("(paste this under agents: in the config, then reload)");
        }
        Agents::List { file } => {
            let (menus, _) = ivr_server::config::load_file_unrendered(&file)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            for a in menus.agents() {
                let reach = match &a.reach {
                    Reach::Registered(c) => format!("registers as {} (realm {})", c.user, c.realm),
                    Reach::Static(uri) => format!("at {uri}"),
                };
                let queues: Vec<String> = a
                    .queues
                    .iter()
                    .map(|(q, p)| format!("{}={p}", menus.queue(*q).name))
                    .collect();
                println!("{}\t{reach}\t{}", a.name, queues.join(" "));
            }
        }
    }
    Ok(())
}

/// The YAML entry for an agent (indented to sit under `agents:`).
pub fn entry(
    name: &str,
    user: Option<&str>,
    realm: &str,
    password: &str,
    queues: &[String],
) -> anyhow::Result<String> {
    let user = user.unwrap_or(name);
    if !valid_user(user) {
        bail!("'{user}' is not a SIP user name (1 to 64 letters, digits or -_.!~*'()&=+$,;?/)");
    }
    if password.chars().count() < MIN_PASSWORD {
        bail!("the password needs at least {MIN_PASSWORD} characters");
    }
    let creds = DigestCredentials {
        user: user.to_string(),
        realm: realm.to_string(),
        ha1_md5: ha1(Algorithm::Md5, user, realm, password),
        ha1_sha256: ha1(Algorithm::Sha256, user, realm, password),
    };
    // What the config will read back must be what was made (a realm with a quote, say).
    DigestCredentials::parse(user, &creds.to_config())
        .map_err(|e| anyhow::anyhow!("realm '{realm}': {e}"))?;
    let mut out = format!(
        "  {}:\n    user: {}\n    password: {}\n",
        quoted(name),
        quoted(user),
        quoted(&creds.to_config())
    );
    if !queues.is_empty() {
        let mut items = Vec::new();
        for q in queues {
            let (queue, penalty) = match q.split_once('=') {
                Some((q, p)) => (q, p.parse::<u32>().ok().filter(|p| *p <= MAX_PENALTY)),
                None => (q.as_str(), Some(0)),
            };
            let Some(penalty) = penalty else {
                bail!("--queue {q}: the penalty is a whole number from 0 to {MAX_PENALTY}");
            };
            items.push(format!("{}: {penalty}", quoted(queue)));
        }
        out.push_str(&format!("    queues: {{ {} }}\n", items.join(", ")));
    }
    Ok(out)
}

/// A YAML scalar: bare when plainly safe, else double-quoted.
fn quoted(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
    {
        return s.to_string();
    }
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The printed entry, pasted into a config, compiles to the hashes of the password.
    #[test]
    fn the_printed_entry_compiles_to_the_passwords_hashes() {
        let e = entry(
            "alice",
            Some("1001"),
            "call center",
            "correct horse",
            &["sales=2".into(), "support".into()],
        )
        .unwrap();
        assert!(!e.contains("correct horse"));
        let yaml = format!(
            "entry: main\nprompts: {{ hi: {{ silence: 1 }} }}\nmenus:\n  main:\n    prompt: hi\n    options: {{ \"1\": {{ queue: sales }} }}\nqueues:\n  sales: {{}}\n  support: {{}}\nagents:\n{e}"
        );
        let menus = ivr_menus::compile(&yaml, &mut |_| Err("no files".into())).unwrap();
        let a = &menus.agents()[0];
        let Reach::Registered(c) = &a.reach else {
            panic!("not a registering agent")
        };
        assert_eq!(c.user, "1001");
        assert_eq!(c.realm, "call center");
        assert_eq!(
            c.ha1_md5,
            ha1(Algorithm::Md5, "1001", "call center", "correct horse")
        );
        assert_eq!(a.queues.iter().map(|(_, p)| *p).collect::<Vec<_>>(), [2, 0]);
    }

    #[test]
    fn short_passwords_bad_users_and_penalties_are_refused() {
        assert!(entry("a", None, "ivr", "short", &[]).is_err());
        assert!(entry("a", Some("bad user"), "ivr", "long enough pw", &[]).is_err());
        assert!(entry("a", None, "ivr", "long enough pw", &["sales=x".into()]).is_err());
        assert!(entry("a", None, "i\"vr", "long enough pw", &[]).is_err());
    }
}
