//! `ivr callbacks ...`: staff work through callback requests from a terminal.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ivr_server::clock::unix_now;
use ivr_voicemail::store::{Filter, Status, Store, Stored};
use std::io::Write;
use std::path::PathBuf;

/// Where the requests are.
#[derive(Args)]
pub struct Where {
    /// The engine's data folder (recordings, and the SQLite store by default).
    #[arg(long, default_value = "ivr-data", global = true)]
    data_dir: PathBuf,
    /// The store: sqlite://FILE or postgres://... (default: sqlite://DATA_DIR/callbacks.db).
    #[arg(long, env = "IVR_DATABASE_URL", global = true)]
    database: Option<String>,
}

impl Where {
    /// Open the store it names (an existing one: nothing is created).
    pub async fn open(&self) -> anyhow::Result<Store> {
        let url = self.database.clone().unwrap_or_else(|| {
            format!("sqlite://{}", self.data_dir.join("callbacks.db").display())
        });
        if self.database.is_none() && !self.data_dir.join("callbacks.db").exists() {
            bail!(
                "no store in {} (use --data-dir, or --database)",
                self.data_dir.display()
            );
        }
        Store::open(&url).await.context("opening the store")
    }
}

/// What to do.
#[derive(Subcommand)]
pub enum Callbacks {
    /// List requests, newest first.
    List {
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// One request in full, with its history.
    Show {
        /// The request's id.
        id: String,
    },
    /// Copy a request's recording (WAV) to a file, or to standard output with `-`.
    ExportAudio {
        /// The request's id.
        id: String,
        /// Where to write it (default: ID.wav in the current folder).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Take a request: it is yours now.
    Claim {
        /// The request's id.
        id: String,
        /// Who you are.
        #[arg(long = "as")]
        user: String,
    },
    /// Set a request's status (called_back, resolved, no_answer, wrong_number...).
    Status {
        /// The request's id.
        id: String,
        /// The new status.
        status: String,
        /// Who you are.
        #[arg(long = "as")]
        user: String,
        /// A note to keep with the change.
        #[arg(long)]
        note: Option<String>,
    },
    /// Mark a request resolved.
    Resolve {
        /// The request's id.
        id: String,
        /// Who you are.
        #[arg(long = "as")]
        user: String,
        /// A note to keep with the change.
        #[arg(long)]
        note: Option<String>,
    },
    /// Add a note.
    Note {
        /// The request's id.
        id: String,
        /// The note.
        text: String,
        /// Who you are.
        #[arg(long = "as")]
        user: String,
    },
    /// Export requests as CSV (to standard output).
    Export {
        /// CSV (the only format for now; required so scripts say what they expect).
        #[arg(long, required = true)]
        csv: bool,
        #[command(flatten)]
        filter: FilterArgs,
    },
}

/// Which requests.
#[derive(Args)]
pub struct FilterArgs {
    /// Only these mailboxes (repeat for several).
    #[arg(long)]
    mailbox: Vec<String>,
    /// Only this status.
    #[arg(long)]
    status: Option<String>,
    /// Only those claimed by this user.
    #[arg(long)]
    assignee: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 0)]
    limit: u32,
}

fn status(name: &str) -> anyhow::Result<Status> {
    Status::parse(name).with_context(|| {
        let all: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
        format!("'{name}' is not a status (use {})", all.join(", "))
    })
}

impl FilterArgs {
    fn filter(&self) -> anyhow::Result<Filter> {
        Ok(Filter {
            mailboxes: (!self.mailbox.is_empty()).then(|| self.mailbox.clone()),
            status: self.status.as_deref().map(status).transpose()?,
            assignee: self.assignee.clone(),
            limit: self.limit,
        })
    }
}

/// A request id names files: only the characters ids are made of.
fn checked_id(id: &str) -> anyhow::Result<&str> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        bail!("'{id}' is not a request id");
    }
    Ok(id)
}

/// Seconds since the epoch as `2026-11-27 14:05:09Z`.
fn time(secs: u64) -> String {
    jiff::Timestamp::from_second(secs as i64)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|_| secs.to_string())
}

/// Run a `callbacks` command.
pub fn run(place: Where, cmd: Callbacks) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let store = place.open().await?;
        let out = &mut std::io::stdout().lock();
        match cmd {
            Callbacks::List { filter } => {
                let rows = store.list(&filter.filter()?).await?;
                writeln!(
                    out,
                    "{:<20} {:<20} {:<12} {:<16} {:>6}  {:<12} ASSIGNEE",
                    "ID", "RECEIVED", "MAILBOX", "CALL BACK", "SECS", "STATUS"
                )?;
                for s in &rows {
                    let r = &s.request;
                    writeln!(
                        out,
                        "{:<20} {:<20} {:<12} {:<16} {:>6.1}  {:<12} {}{}",
                        r.id,
                        time(r.received_at),
                        r.mailbox,
                        t(r.callback_number.as_deref().unwrap_or("-")),
                        r.duration_ms as f64 / 1000.0,
                        s.status.as_str(),
                        t(s.assignee.as_deref().unwrap_or("-")),
                        if s.recovered { "  (recovered)" } else { "" }
                    )?;
                }
                writeln!(out, "{} request(s)", rows.len())?;
            }
            Callbacks::Show { id } => {
                let s = store.get(checked_id(&id)?).await?;
                show(out, &s)?;
                writeln!(out, "history:")?;
                for c in store.history(&id).await? {
                    writeln!(
                        out,
                        "  {}  {:<10} {:<10} {}",
                        time(c.at),
                        t(&c.actor),
                        c.action,
                        t(&c.detail.unwrap_or_default())
                    )?;
                }
            }
            Callbacks::ExportAudio { id, output } => {
                let id = checked_id(&id)?;
                let s = store.get(id).await?;
                if !s.request.has_message {
                    bail!("request {id} has no message (only a number to call back)");
                }
                let wav = place.data_dir.join("voicemail").join(format!("{id}.wav"));
                let bytes =
                    std::fs::read(&wav).with_context(|| format!("reading {}", wav.display()))?;
                match output.as_deref() {
                    Some(p) if p.as_os_str() == "-" => out.write_all(&bytes)?,
                    p => {
                        let to = p
                            .map(PathBuf::from)
                            .unwrap_or_else(|| PathBuf::from(format!("{id}.wav")));
                        std::fs::write(&to, &bytes)
                            .with_context(|| format!("writing {}", to.display()))?;
                        eprintln!("wrote {} ({} bytes)", to.display(), bytes.len());
                    }
                }
            }
            Callbacks::Claim { id, user } => {
                let s = store
                    .set_status(checked_id(&id)?, Status::Claimed, &user, None, unix_now())
                    .await?;
                show(out, &s)?;
            }
            Callbacks::Status {
                id,
                status: name,
                user,
                note,
            } => {
                let s = store
                    .set_status(
                        checked_id(&id)?,
                        status(&name)?,
                        &user,
                        note.as_deref(),
                        unix_now(),
                    )
                    .await?;
                show(out, &s)?;
            }
            Callbacks::Resolve { id, user, note } => {
                let s = store
                    .set_status(
                        checked_id(&id)?,
                        Status::Resolved,
                        &user,
                        note.as_deref(),
                        unix_now(),
                    )
                    .await?;
                show(out, &s)?;
            }
            Callbacks::Note { id, text, user } => {
                store
                    .add_note(checked_id(&id)?, &user, &text, unix_now())
                    .await?;
                writeln!(out, "note added to {id}")?;
            }
            Callbacks::Export { filter, .. } => {
                let rows = store.list(&filter.filter()?).await?;
                export_csv(out, &rows)?;
            }
        }
        Ok(())
    })
}

/// Caller-supplied text for the terminal: control characters escaped.
use ivr_server::terminal::escaped as t;

fn show(out: &mut impl Write, s: &Stored) -> std::io::Result<()> {
    let r = &s.request;
    writeln!(out, "id:              {}", r.id)?;
    writeln!(out, "mailbox:         {}", r.mailbox)?;
    writeln!(out, "received:        {}", time(r.received_at))?;
    writeln!(
        out,
        "call back:       {}",
        t(r.callback_number.as_deref().unwrap_or("(no number)"))
    )?;
    writeln!(
        out,
        "caller ID:       {}",
        t(r.caller_id.as_deref().unwrap_or("(none)"))
    )?;
    writeln!(
        out,
        "message:         {}",
        if r.has_message {
            format!("{:.1} s", r.duration_ms as f64 / 1000.0)
        } else {
            "(none)".into()
        }
    )?;
    writeln!(
        out,
        "language:        {}",
        t(r.language.as_deref().unwrap_or("-"))
    )?;
    writeln!(out, "menus:           {}", r.menu_path.join(" > "))?;
    if !r.variables.is_empty() {
        let vars: Vec<String> = r
            .variables
            .iter()
            .map(|(k, v)| format!("{}={}", t(k), t(v)))
            .collect();
        writeln!(out, "variables:       {}", vars.join(", "))?;
    }
    writeln!(
        out,
        "status:          {}{}",
        s.status.as_str(),
        s.assignee
            .as_deref()
            .map(|a| format!(" ({})", t(a)))
            .unwrap_or_default()
    )?;
    if s.recovered {
        writeln!(
            out,
            "recovered:       yes (after a crash; its end may be missing)"
        )?;
    }
    if r.hung_up {
        writeln!(out, "note:            the caller hung up before the end")?;
    }
    Ok(())
}

/// The export's columns, in order.
const CSV_COLUMNS: [&str; 11] = [
    "id",
    "received_at",
    "mailbox",
    "caller_id",
    "callback_number",
    "duration_ms",
    "language",
    "status",
    "assignee",
    "recovered",
    "menu_path",
];

/// Write `rows` as CSV (RFC 4180, quoted by the `csv` crate where needed), every field
/// passed through [`defuse`].
pub fn export_csv(out: impl Write, rows: &[Stored]) -> csv::Result<()> {
    write_csv(
        out,
        CSV_COLUMNS,
        rows.iter().map(|s| {
            let r = &s.request;
            [
                r.id.clone(),
                time(r.received_at),
                r.mailbox.clone(),
                r.caller_id.clone().unwrap_or_default(),
                r.callback_number.clone().unwrap_or_default(),
                r.duration_ms.to_string(),
                r.language.clone().unwrap_or_default(),
                s.status.as_str().to_string(),
                s.assignee.clone().unwrap_or_default(),
                s.recovered.to_string(),
                r.menu_path.join(" > "),
            ]
        }),
    )
}

/// Write a header of `columns` and `rows` as CSV (RFC 4180, quoted by the `csv` crate where
/// needed), every field passed through [`defuse`].
pub(crate) fn write_csv<const N: usize>(
    out: impl Write,
    columns: [&str; N],
    rows: impl IntoIterator<Item = [String; N]>,
) -> csv::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(columns)?;
    for fields in rows {
        w.write_record(fields.iter().map(|f| defuse(f).into_owned()))?;
    }
    w.flush()?;
    Ok(())
}

/// A field that a spreadsheet would run as a formula (it starts with `=`, `+`, `-`, `@`, a
/// tab or a carriage return; OWASP's "CSV injection") gets a leading `'`, which shows as
/// text. Phone numbers such as `+15551234` and plain numbers stay as they are.
fn defuse(field: &str) -> std::borrow::Cow<'_, str> {
    if field.starts_with(['=', '+', '-', '@', '\t', '\r']) && !looks_like_number(field) {
        format!("'{field}").into()
    } else {
        field.into()
    }
}

/// A phone number such as `+15551234` is data, not a formula.
fn looks_like_number(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_numbers_kept() {
        assert_eq!(defuse("plain"), "plain");
        assert_eq!(defuse("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(defuse("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(defuse("\t=1"), "'\t=1");
        assert_eq!(defuse("\r=1"), "'\r=1");
        assert_eq!(defuse("-2+3"), "'-2+3");
        assert_eq!(defuse("+15551234"), "+15551234");
        assert_eq!(defuse("-1"), "-1");
    }

    #[test]
    fn ids_are_checked() {
        assert!(checked_id("1800000000-0a1b2c3d").is_ok());
        assert!(checked_id("../etc/passwd").is_err());
    }
}
