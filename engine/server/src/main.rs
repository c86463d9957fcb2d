//! `ivr`: the IVR engine's command line.

mod agents_cmd;
mod callbacks_cmd;
mod calls_cmd;
mod doctor;
mod queues_cmd;
mod settings;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use ivr_server::config;
use ivr_server::driver::{Server, ServerConfig};
use ivr_server::ports::parse_range;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// An IVR telephony engine: answers SIP calls, plays menus written in YAML, takes voicemail
/// callback requests for staff to work through.
#[derive(Parser)]
#[command(name = "ivr", version)]
struct Cli {
    /// The server's settings file: `ivr serve` flags by name (default: /etc/ivr/ivr.yaml
    /// for an installed ivr).
    ///
    /// Keys are the long names (`listen: 192.0.2.10:5060`); read by serve, staff, callbacks
    /// and doctor. A flag or an IVR_* variable wins over it.
    #[arg(long, global = true, env = "IVR_SETTINGS", value_name = "FILE")]
    settings: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Answer calls.
    Serve(Box<ServeArgs>),
    /// Check what `ivr serve` would need, and say how to fix each problem.
    ///
    /// Takes serve's flags (and settings file): the config, ports free, data folder
    /// writable, database reachable and migrated, espeak-ng if `say:` is used, open files
    /// limit, clock. Exit 1 if something fails.
    Doctor(Box<ServeArgs>),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (ivr.1, and ivr-serve.1... for each command) into a folder.
    Man {
        /// The folder (created if missing).
        dir: PathBuf,
    },
    /// Validate config files and report every error.
    ///
    /// Exit 0 clean, 1 errors, 2 unreadable or no file given. `say:` prompts are checked,
    /// not rendered: no espeak-ng needed.
    Check {
        /// The config files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Be a caller in the terminal: type keys (`2`, `*`, `12#`), `wait 6s`, or `quit`; it
    /// prints what the caller would hear on a virtual clock.
    Simulate {
        /// The config file.
        file: PathBuf,
        /// The number called (picks the entry point).
        #[arg(long)]
        called: Option<String>,
        /// The caller ID (for `callers:` rules).
        #[arg(long)]
        caller: Option<String>,
        /// When the call happens, for schedules (e.g. 2026-12-25T10:00:00+01:00); default: now.
        #[arg(long)]
        at: Option<String>,
    },
    /// Print the JSON Schema of the config, for editors.
    Schema,
    /// Manage staff users: add-user (password from standard input), add-token.
    Staff {
        #[command(flatten)]
        place: StaffPlace,
        #[command(subcommand)]
        cmd: StaffCmd,
    },
    /// Work through callback requests: list, show, export-audio, claim, status, resolve,
    /// note, export --csv.
    Callbacks {
        #[command(flatten)]
        place: callbacks_cmd::Where,
        #[command(subcommand)]
        cmd: callbacks_cmd::Callbacks,
    },
    /// Call records: list, show CALL_ID, export --csv|--json (with --mask-numbers), with
    /// each call's path through the menus.
    Calls {
        #[command(flatten)]
        place: callbacks_cmd::Where,
        #[command(subcommand)]
        cmd: calls_cmd::Calls,
    },
    /// Queue figures from the queue event log: report (service level, waits, abandons,
    /// agents' calls, talk and wrap-up), as tables or JSON.
    Queues {
        #[command(flatten)]
        place: callbacks_cmd::Where,
        #[command(subcommand)]
        cmd: queues_cmd::Queues,
    },
    /// Call-center agents: add (prints the agents: entry; password from standard input),
    /// list.
    Agents {
        #[command(subcommand)]
        cmd: agents_cmd::Agents,
    },
    /// Print the call flow of a config as Mermaid or Graphviz DOT.
    Graph {
        /// The config file.
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
        /// Label each way out of a menu with the share of calls that took it, from the call
        /// records of FROM..TO (dates or RFC 3339 times; either end may be left out).
        #[arg(long, value_name = "FROM..TO")]
        stats: Option<String>,
        /// With --stats: only calls that entered by this menu.
        #[arg(long, requires = "stats")]
        entry: Option<String>,
        /// With --stats: where the call records are.
        #[command(flatten)]
        place: callbacks_cmd::Where,
    },
    /// Run scripted scenarios against a config on a virtual clock (exit 0 all pass, 1 a
    /// scenario failed, 2 a file could not be read or has errors).
    Test {
        /// Scenario files (not the config: that is `--config`, or `config:` in the file).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The config to test (default: the `config:` named in each scenario file).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// Every flag is also a key of the settings file (`--settings`) and an environment variable
/// (`IVR_` and the name in capitals: `IVR_LISTEN`); see settings.rs.
#[derive(clap::Args)]
struct ServeArgs {
    /// Print the settings this would run with (from flags, environment, settings file and
    /// defaults, each marked with where it came from), as a settings file, and exit.
    #[arg(long)]
    print_config: bool,
    /// Menu config (YAML). Without it, the embedded bilingual demo runs.
    #[arg(long)]
    config: Option<PathBuf>,
    /// SIP address for UDP and TCP; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:5060")]
    listen: SocketAddr,
    /// RTP port range, LOW-HIGH (even ports for RTP, the next odd one for RTCP).
    #[arg(long, default_value = "10000-20000", value_parser = parse_range)]
    rtp_ports: std::ops::RangeInclusive<u16>,
    /// Folder for data the engine keeps (created if missing): voicemail recordings, the
    /// SQLite database, the text-to-speech cache.
    #[arg(long, default_value = "ivr-data")]
    data_dir: PathBuf,
    /// Where callback requests are stored: sqlite://FILE or postgres://USER@HOST/DB
    /// (default: sqlite://DATA_DIR/callbacks.db).
    #[arg(long, env = "IVR_DATABASE_URL")]
    database: Option<String>,
    /// New calls beyond this many get 503 Service Unavailable.
    #[arg(long, default_value_t = 10_000)]
    max_calls: usize,
    /// Engine loops, each on a thread of its own serving the calls whose Call-ID hashes to
    /// it (queues and agents stay with one owner); default: one per core this process may
    /// use. 1 runs a single loop.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    shards: Option<u16>,
    /// How long without RTP or RTCP from the caller before the engine hangs up (seconds, or
    /// a duration: 30s, 1m30s).
    #[arg(long, default_value = "30", value_parser = duration)]
    media_timeout: Duration,
    /// How long a caller may hold the call (sendonly/inactive SDP) before the engine hangs
    /// up (seconds, or a duration: 30m).
    #[arg(long, default_value = "1800", value_parser = duration)]
    hold_timeout: Duration,
    /// HTTP address for /staff, /api/, /metrics and the admin endpoints (port 0 picks a free
    /// port; `off` disables HTTP). Default 127.0.0.1:8080; if that port is taken the engine
    /// still answers calls and says so, while an address given here must be free.
    #[arg(long, value_parser = parse_http)]
    http: Option<HttpAddr>,
    /// A file holding the bearer token the admin endpoints require (else `IVR_ADMIN_TOKEN`;
    /// with neither, admin endpoints answer only loopback clients).
    #[arg(long)]
    admin_token_file: Option<PathBuf>,
    /// Delete callback requests (and their recordings) this many days old; 0 keeps them.
    #[arg(long, default_value_t = 365)]
    retention_days: u32,
    /// Staff users (who may use /staff and /api/): default DATA_DIR/staff.yaml, written by
    /// `ivr staff add-user`.
    #[arg(long)]
    staff_users: Option<PathBuf>,
    /// POST each new callback request here as JSON (signed: see docs/voicemail.md).
    #[arg(long, env = "IVR_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// A file holding the webhook's shared secret (else `IVR_WEBHOOK_SECRET`); required with
    /// --webhook-url.
    #[arg(long)]
    webhook_secret_file: Option<PathBuf>,
    /// Send callback requests by e-mail to the addresses of their mailbox (`email:` in the
    /// config) through this SMTP server: smtp://HOST:PORT, smtps://HOST, or
    /// smtp://USER:PASSWORD@HOST:587?tls=required.
    #[arg(long, env = "IVR_SMTP_URL")]
    smtp_url: Option<String>,
    /// The sender of those e-mails.
    #[arg(long, default_value = "IVR <ivr@localhost>")]
    mail_from: String,
    /// A proxy whose P-Asserted-Identity (RFC 3325) is believed (repeat for several, or a
    /// comma-separated list in IVR_SIP_TRUSTED_PROXIES). From anywhere else the caller's
    /// identity is the From header. SIP only: the HTTP side's reverse proxies are
    /// --trusted-proxy.
    #[arg(
        long = "sip-trusted-proxy",
        env = "IVR_SIP_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    sip_trusted_proxies: Vec<std::net::IpAddr>,
    /// DNS servers (ADDR:PORT, comma-separated) for transfer destinations and proxies given
    /// as host names (RFC 3263 SRV and A/AAAA); default: the system's /etc/resolv.conf.
    #[arg(long = "dns-server", env = "IVR_DNS_SERVERS", value_delimiter = ',')]
    dns_servers: Vec<SocketAddr>,
    /// On SIGTERM or SIGINT, keep the calls in progress this many seconds (new calls and
    /// OPTIONS probes get 503, so a proxy sends calls elsewhere) before hanging up the rest.
    #[arg(long, env = "IVR_DRAIN_SECS", default_value_t = 0)]
    drain_secs: u64,
    /// Milliseconds to ring (180 Ringing) before answering.
    #[arg(long, default_value_t = 0)]
    answer_delay_ms: u64,
    /// Session timers (RFC 4028): the interval, in seconds, asked of callers that support
    /// them without naming one, and the largest kept when they ask for more.
    #[arg(long, default_value_t = ivr_sip::session_timer::RECOMMENDED_INTERVAL)]
    session_expires: u32,
    /// The smallest Session-Expires accepted, in seconds (smaller gets 422 with this Min-SE).
    /// RFC 4028 §5 makes 90 the floor; lower values break it and are meant for tests.
    #[arg(long, default_value_t = ivr_sip::session_timer::MIN_SE_FLOOR, value_parser = clap::value_parser!(u32).range(1..))]
    min_se: u32,
    /// Agents' registrations: the shortest accepted, in seconds (shorter gets 423).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    register_min_expires: u32,
    /// Agents' registrations: the longest granted, in seconds (longer ones are lowered).
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u32).range(1..))]
    register_max_expires: u32,
    /// Challenge REGISTERs with MD5 before SHA-256. RFC 8760 puts the preferred (SHA-256)
    /// first, but some phones (and SIPp 3.6) read only the first challenge and know only MD5.
    #[arg(long)]
    register_md5_first: bool,
    /// Challenge REGISTERs (and feature calls) with MD5 only, refusing SHA-256 answers: for
    /// phones that give up when a challenge they cannot answer is present (baresip 1.0).
    /// Weaker than the default; use it only for such phones.
    #[arg(long)]
    register_md5_only: bool,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(flatten)]
    web: ivr_server::web::WebArgs,
    #[command(flatten)]
    conns: ivr_server::conns::ConnArgs,
    #[command(flatten)]
    admission: ivr_server::limits::AdmissionArgs,
    #[command(flatten)]
    tls: ivr_server::tls::TlsArgs,
}

/// A duration flag: seconds (`30`) or with units (`30s`, `1m30s`), as configs write them.
fn duration(s: &str) -> Result<Duration, String> {
    ivr_menus::duration::parse(s)
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// The webhook, if `--webhook-url` is given (with its secret).
fn webhook(args: &ServeArgs) -> anyhow::Result<Option<ivr_server::webhook::Webhook>> {
    let Some(url) = &args.webhook_url else {
        return Ok(None);
    };
    let secret = secret(
        args.webhook_secret_file.as_deref(),
        "IVR_WEBHOOK_SECRET",
        "the webhook secret",
    )?
    .ok_or_else(|| {
        anyhow::anyhow!("--webhook-url needs a secret: --webhook-secret-file or IVR_WEBHOOK_SECRET")
    })?;
    Ok(Some(ivr_server::webhook::Webhook {
        url: url.clone(),
        secret,
    }))
}

/// A shared secret from `file`, else from the environment variable `env`, trimmed; one of
/// 16 characters or more (`what` names it in errors).
fn secret(
    file: Option<&std::path::Path>,
    env: &str,
    what: &str,
) -> anyhow::Result<Option<Arc<str>>> {
    let text = match file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading {what} from {}", f.display()))?,
        ),
        None => std::env::var(env).ok(),
    };
    match text.map(|t| t.trim().to_string()) {
        Some(t) if t.len() < 16 => {
            anyhow::bail!("{what} is too short: use 16 characters or more")
        }
        Some(t) => Ok(Some(t.into())),
        None => Ok(None),
    }
}

/// Where HTTP listens, if anywhere.
#[derive(Clone, Copy, Debug)]
struct HttpAddr(Option<SocketAddr>);

fn parse_http(s: &str) -> Result<HttpAddr, String> {
    if s == "off" {
        return Ok(HttpAddr(None));
    }
    s.parse()
        .map(|a| HttpAddr(Some(a)))
        .map_err(|_| format!("'{s}' is not ADDRESS:PORT or off"))
}

/// Where the staff users are, named as `ivr serve` names them.
#[derive(clap::Args)]
struct StaffPlace {
    /// The engine's data folder: the users file is DATA_DIR/staff.yaml unless
    /// --staff-users says otherwise.
    #[arg(long, default_value = "ivr-data", global = true)]
    data_dir: PathBuf,
    /// The users file (default DATA_DIR/staff.yaml).
    #[arg(long, visible_alias = "users", global = true)]
    staff_users: Option<PathBuf>,
    /// The menu config `ivr serve` runs (default: the embedded demo): a user's mailboxes must
    /// be among its `mailboxes:`.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
}

impl StaffPlace {
    fn users(&self) -> PathBuf {
        self.staff_users
            .clone()
            .unwrap_or_else(|| self.data_dir.join("staff.yaml"))
    }

    /// Refuse mailboxes the config does not define (`*` stands for all), with a suggestion.
    fn check_mailboxes(&self, mailboxes: &[String]) -> anyhow::Result<()> {
        let (menus, source) = match &self.config {
            Some(path) => (
                config::load_file_unrendered(path)?.0,
                path.display().to_string(),
            ),
            None => (config::load_demo()?, "the embedded demo".to_string()),
        };
        let known: Vec<&str> = menus.mailboxes().iter().map(|m| m.name.as_str()).collect();
        for m in mailboxes {
            if m == "*" || known.contains(&m.as_str()) {
                continue;
            }
            let hint = ivr_menus::closest(m, known.iter().copied())
                .map(|h| format!(" (did you mean '{h}'?)"))
                .unwrap_or_default();
            let list = if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            };
            anyhow::bail!(
                "unknown mailbox '{m}'{hint}: the mailboxes of {source} are {list} (or * for all; \
                 --config names the config the server runs)"
            );
        }
        Ok(())
    }
}

#[derive(Subcommand)]
enum StaffCmd {
    /// Add (or update) a user; the password is read from standard input.
    AddUser {
        /// The user name.
        name: String,
        /// A mailbox the user sees (repeat; `*` for all).
        #[arg(long = "mailbox", required = true)]
        mailboxes: Vec<String>,
    },
    /// Give a user an API token (printed once; only its hash is kept).
    AddToken {
        /// The user name.
        name: String,
    },
}

fn staff(place: &StaffPlace, cmd: StaffCmd) -> anyhow::Result<()> {
    let users = &place.users();
    let mut all = ivr_server::staff::Users::load(users)?;
    match cmd {
        StaffCmd::AddUser { name, mailboxes } => {
            place.check_mailboxes(&mailboxes)?;
            let mut password = String::new();
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                eprint!("password for {name}: ");
            }
            std::io::stdin().read_line(&mut password)?;
            let password = password.trim_end_matches(['\n', '\r']);
            all.add_user(&name, password, mailboxes)?;
            if let Some(dir) = users.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            all.save(users)?;
            eprintln!("user {name} saved in {}", users.display());
        }
        StaffCmd::AddToken { name } => {
            let token = all.add_token(&name)?;
            all.save(users)?;
            println!("{token}");
            eprintln!(
                "(shown once: keep it; only its hash is in {})",
                users.display()
            );
        }
    }
    Ok(())
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum GraphFormat {
    Mermaid,
    Dot,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> std::process::ExitCode {
    let command = settings::with_env(Cli::command());
    let (matches, applied) = match settings::parse(&command, std::env::args_os().collect()) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("ivr: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli.command {
        Command::Check { files } => check(&files),
        Command::Test { files, config } => test(&files, config.as_deref()),
        Command::Simulate {
            file,
            called,
            caller,
            at,
        } => simulate(&file, called.as_deref(), caller.as_deref(), at.as_deref()),
        Command::Schema => {
            print!("{}", ivr_menus::schema::json());
            std::process::ExitCode::SUCCESS
        }
        Command::Staff { place, cmd } => match staff(&place, cmd) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ivr staff: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
        Command::Callbacks { place, cmd } => match callbacks_cmd::run(place, cmd) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ivr callbacks: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
        Command::Calls { place, cmd } => match calls_cmd::run(place, cmd) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ivr calls: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
        Command::Queues { place, cmd } => match queues_cmd::run(place, cmd) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ivr queues: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
        Command::Agents { cmd } => match agents_cmd::run(cmd) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ivr agents: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
        Command::Graph {
            file,
            format,
            stats,
            entry,
            place,
        } => match config::load_file_unrendered(&file) {
            Ok((m, _)) => {
                let stats = match stats
                    .map(|range| calls_cmd::graph_stats(&place, &range, entry))
                    .transpose()
                {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("ivr graph: {e:#}");
                        return std::process::ExitCode::FAILURE;
                    }
                };
                print!(
                    "{}",
                    match format {
                        GraphFormat::Mermaid => ivr_menus::graph::mermaid_with(&m, stats.as_ref()),
                        GraphFormat::Dot => ivr_menus::graph::dot_with(&m, stats.as_ref()),
                    }
                );
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::ExitCode::from(if matches!(e, config::ConfigError::Read { .. }) {
                    2
                } else {
                    1
                })
            }
        },
        Command::Doctor(args) => doctor::run(&args, applied.file.as_deref()),
        Command::Completions { shell } => {
            let mut command = command;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "ivr", &mut script);
            // A closed pipe (`| head`) is not worth a panic.
            let _ = std::io::stdout().write_all(&script);
            std::process::ExitCode::SUCCESS
        }
        Command::Man { dir } => match man_pages(command, &dir) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ivr man: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
        Command::Serve(args) if args.print_config => {
            let serve = command
                .find_subcommand("serve")
                .expect("invariant: the CLI defines serve");
            let matches = matches
                .subcommand_matches("serve")
                .expect("invariant: serve was matched");
            print!("{}", settings::print(serve, matches, &applied));
            std::process::ExitCode::SUCCESS
        }
        Command::Serve(args) => match serve(*args) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ivr: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}

/// Write `ivr.1` and a page per command (`ivr-serve.1`...) into `dir`.
fn man_pages(command: clap::Command, dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, page: clap::Command| -> anyhow::Result<()> {
        let path = dir.join(format!("{name}.1"));
        let mut out = Vec::new();
        clap_mangen::Man::new(page).render(&mut out)?;
        std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))
    };
    for sub in command.get_subcommands() {
        // clap wants a 'static name (without its `string` feature): once per page.
        let name: &'static str = Box::leak(format!("ivr-{}", sub.get_name()).into_boxed_str());
        write(name, sub.clone().name(name))?;
    }
    write("ivr", command)
}

fn check(files: &[PathBuf]) -> std::process::ExitCode {
    let mut worst = 0u8;
    for f in files {
        match config::load_file_unrendered(f) {
            Ok((m, speech)) => {
                for w in m.warnings() {
                    println!("{}:{w} (warning)", f.display());
                }
                if speech.espeak_missing {
                    println!(
                        "{}: say: prompts are checked but not rendered here; `ivr serve` renders them with espeak-ng, which this machine lacks (Debian: apt-get install espeak-ng) (warning)",
                        f.display()
                    );
                }
                println!(
                    "{}: ok ({} menus, {} warning(s))",
                    f.display(),
                    m.len(),
                    m.warnings().len()
                );
            }
            Err(e @ config::ConfigError::Read { .. }) => {
                eprintln!("{e}");
                worst = 2;
            }
            Err(e) => {
                eprintln!("{e}");
                worst = worst.max(1);
            }
        }
    }
    std::process::ExitCode::from(worst)
}

fn test(files: &[PathBuf], config_override: Option<&std::path::Path>) -> std::process::ExitCode {
    let (mut passed, mut failed, mut broken) = (0, 0, false);
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                broken = true;
                continue;
            }
        };
        let parsed = match ivr_menus::scenario::parse(&text) {
            Ok(p) => p,
            Err(_) if looks_like_a_config(&text) => {
                eprintln!(
                    "{f}: this is a menu config, not a scenario file: write scenarios (see docs/menus.md, \"Testing a config: scenarios\") and run `ivr test SCENARIOS.yaml --config {f}`",
                    f = file.display()
                );
                broken = true;
                continue;
            }
            Err(errors) => {
                for e in errors {
                    eprintln!("{}:{e}", file.display());
                }
                broken = true;
                continue;
            }
        };
        let config_path = match (config_override, &parsed.config) {
            (Some(c), _) => c.to_path_buf(),
            (None, Some(c)) => file.parent().unwrap_or(std::path::Path::new(".")).join(c),
            (None, None) => {
                eprintln!(
                    "{}: no config: name one with `config:` or --config",
                    file.display()
                );
                broken = true;
                continue;
            }
        };
        let menus = match config::load_file(&config_path) {
            Ok(m) => Arc::new(m),
            Err(e) => {
                eprintln!("{e}");
                broken = true;
                continue;
            }
        };
        // The virtual clock starts at an arbitrary instant; nothing waits for real.
        let start = std::time::Instant::now();
        for s in &parsed.scenarios {
            match ivr_menus::scenario::run(&menus, s, start) {
                Ok(()) => {
                    passed += 1;
                    println!("PASS  {}", s.name);
                }
                Err(f) => {
                    failed += 1;
                    println!(
                        "FAIL  {} ({}:{}:{}, step {}): {}",
                        s.name,
                        file.display(),
                        f.at.line,
                        f.at.column,
                        f.step,
                        f.reason
                    );
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    std::process::ExitCode::from(if broken {
        2
    } else if failed > 0 {
        1
    } else {
        0
    })
}

/// Whether `text` has the top-level fields of a menu config (and so was given to `ivr test`
/// by mistake for a scenario file).
fn looks_like_a_config(text: &str) -> bool {
    text.lines()
        .any(|l| l.starts_with("menus:") || l.starts_with("entry:"))
}

fn simulate(
    file: &std::path::Path,
    called: Option<&str>,
    caller_id: Option<&str>,
    at: Option<&str>,
) -> std::process::ExitCode {
    let wall = match at.map(ivr_menus::scenario::wall_time).transpose() {
        Ok(w) => w.unwrap_or_else(std::time::SystemTime::now),
        Err(e) => {
            eprintln!("--at: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    use std::io::BufRead;
    let menus = match config::load_file(file) {
        Ok(m) => Arc::new(m),
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(
                if matches!(e, config::ConfigError::Read { .. }) {
                    2
                } else {
                    1
                },
            );
        }
    };
    let start = std::time::Instant::now();
    let Ok(sim) =
        ivr_menus::scenario::Simulator::call(menus.clone(), called, caller_id, Some(wall), start)
    else {
        println!("the call is rejected (603 Decline) by a callers: rule");
        return std::process::ExitCode::SUCCESS;
    };
    println!("type keys (0-9 * # A-D), `wait 5s`, `talk 5s` (speak), or `quit`; time is virtual");
    let mut caller = Caller::Menus(sim);
    caller.print();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines().map_while(Result::ok) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => continue,
            ["quit"] | ["exit"] => break,
            ["hangup"] => caller.hang_up(),
            ["wait", d] | ["talk", d] => match duration(d) {
                Ok(d) => caller.wait(d, words[0] == "talk"),
                Err(e) => println!("? {e}"),
            },
            [keys] => {
                let digits: Option<Vec<ivr_audio::Digit>> =
                    keys.chars().map(ivr_audio::Digit::from_char).collect();
                match digits {
                    Some(ds) => ds.into_iter().for_each(|d| caller.press(d)),
                    None => println!(
                        "? '{keys}': type keys 0-9 * # A-D, `wait 5s`, `talk 5s` or `quit`"
                    ),
                }
            }
            _ => println!("? type keys 0-9 * # A-D, `wait 5s`, `talk 5s` or `quit`"),
        }
        caller.print();
        // A call handed to a mailbox goes on into its dialogue.
        if let Caller::Menus(sim) = &caller
            && let Some(ivr_menus::Handoff::Voicemail(mailbox)) = sim.handoff()
        {
            let deposit = ivr_voicemail::simulate::DepositSim::start(
                menus.clone(),
                mailbox,
                sim.language(),
                caller_id,
                start,
                sim.now(),
            );
            caller = Caller::Deposit(deposit);
            caller.print();
        }
        if caller.is_over() {
            println!("call over");
            break;
        }
    }
    std::process::ExitCode::SUCCESS
}

/// The caller of `ivr simulate`: in the menus, then perhaps in a mailbox's dialogue.
enum Caller {
    Menus(ivr_menus::scenario::Simulator),
    Deposit(ivr_voicemail::simulate::DepositSim),
}

impl Caller {
    fn press(&mut self, d: ivr_audio::Digit) {
        match self {
            Caller::Menus(s) => s.press(d),
            Caller::Deposit(s) => s.press(d),
        }
    }

    /// Let time pass; `talking` matters only while a message is recorded.
    fn wait(&mut self, d: Duration, talking: bool) {
        match self {
            Caller::Menus(s) => s.wait(d),
            Caller::Deposit(s) => s.wait(d, talking),
        }
    }

    fn hang_up(&mut self) {
        match self {
            Caller::Menus(_) => println!("   (the caller hangs up)"),
            Caller::Deposit(s) => s.hang_up(),
        }
    }

    fn is_over(&self) -> bool {
        match self {
            Caller::Menus(s) => s.is_over() && s.handoff().is_none(),
            Caller::Deposit(s) => s.is_over(),
        }
    }

    fn print(&mut self) {
        let lines = match self {
            Caller::Menus(s) => s.take_log(),
            Caller::Deposit(s) => s.take_log(),
        };
        for line in lines {
            println!("{line}");
        }
    }
}

impl ServeArgs {
    /// The engine loops to run: `--shards`, else one per core the process may use (which
    /// follows CPU affinity and cgroup quotas).
    fn shards(&self) -> u16 {
        self.shards.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, |n| u16::try_from(n.get()).unwrap_or(256).min(256))
        })
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    // Connection caps leave room for every call's RTP sockets (see conns.rs).
    let budget = ivr_server::conns::Budget::new(
        ivr_server::conns::raise_nofile(),
        (args.rtp_ports.len() as u64 / 2).min(args.max_calls as u64),
        &args.conns,
    );
    tracing::info!(?budget, "file descriptors");
    let (menus, config_sources) = match &args.config {
        Some(path) => {
            let (menus, sources) =
                config::load_file_tracked(path, &args.data_dir.join("tts-cache"));
            (menus?, sources)
        }
        None => (config::load_demo()?, config::Sources::default()),
    };
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data dir {}", args.data_dir.display()))?;
    let admin_token = secret(
        args.admin_token_file.as_deref(),
        "IVR_ADMIN_TOKEN",
        "the admin token",
    )?;
    let webhook = webhook(&args)?;
    let mail = args.smtp_url.clone().map(|url| ivr_server::mail::Mail {
        url,
        from: args.mail_from.clone(),
    });
    let notify = ivr_voicemail::store::Notify {
        webhook: webhook.is_some(),
        email: mail.is_some(),
    };
    let source = args
        .config
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or("<embedded demo>".into());
    let status = Arc::new(ivr_server::status::Status::new(
        source.clone(),
        std::time::SystemTime::now(),
    ));
    // Checked before anything listens: a TLS setup that cannot work stops the start.
    let certs = match (&args.tls.tls_cert, &args.tls.tls_key) {
        (Some(cert), Some(key)) => Some(
            ivr_server::tls::CertStore::load(cert, key)
                .context("loading the TLS certificate and key")?,
        ),
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // Signal handlers exist before the address is announced: a SIGTERM sent right after
        // the listen line still shuts down cleanly.
        let shutdown = shutdown_signal()?;
        let database = args.database.clone().unwrap_or_else(|| {
            format!("sqlite://{}", args.data_dir.join("callbacks.db").display())
        });
        let store = ivr_voicemail::store::Store::open(&database)
            .await
            .with_context(|| format!("opening the callback store {}", redact(&database)))?;
        let voicemail_dir = args.data_dir.join("voicemail");
        let now = ivr_server::clock::unix_now();
        let found = ivr_server::recorder::recover(&voicemail_dir, &store, now, notify)
            .await
            .context("recovering callback requests left by the last run")?;
        if found != ivr_server::recorder::Recovered::default() {
            tracing::warn!(
                repaired = found.repaired,
                stored = found.stored,
                comments = found.comments,
                "recovered callback requests left by the last run (marked recovered)"
            );
        }
        let shards = args.shards();
        let server = Server::bind(ServerConfig {
            listen: args.listen,
            rtp_ports: args.rtp_ports,
            max_calls: args.max_calls,
            shards,
            media_timeout: args.media_timeout.max(Duration::from_secs(1)),
            hold_timeout: args.hold_timeout.max(Duration::from_secs(1)),
            shutdown_grace: Duration::from_secs(3),
            drain: Duration::from_secs(args.drain_secs),
            trusted_proxies: args.sip_trusted_proxies.clone(),
            dns_servers: args.dns_servers.clone(),
            admission: args.admission.config(args.max_calls),
            send_without_peer: args.admission.send_without_peer(),
            answer_delay: Duration::from_millis(args.answer_delay_ms),
            session_timer: ivr_sip::session_timer::Policy {
                min_se: args.min_se,
                interval: args.session_expires.max(args.min_se),
            },
            registrar: ivr_sip::registrar::RegistrarConfig {
                min_expires: args.register_min_expires,
                max_expires: args.register_max_expires.max(args.register_min_expires),
                default_expires: args.register_max_expires.max(args.register_min_expires),
                md5_first: args.register_md5_first,
                md5_only: args.register_md5_only,
                ..Default::default()
            },
            config_path: args.config.clone(),
            config_sources,
            tts_cache: args.data_dir.join("tts-cache"),
            status: status.clone(),
            voicemail_dir,
            store: store.clone(),
            notify,
            sip_tcp: {
                let limits = budget.sip_tcp(&args.conns);
                limits
                    .table
                    .count_refusals(status.connections_refused("sip_tcp"));
                limits
            },
            sip_tls: certs.as_ref().map(|c| ivr_server::driver::SipTls {
                listen: args.tls.sip_address(args.listen),
                certs: c.clone(),
            }),
        })
        .await
        .with_context(|| {
            format!(
                "binding SIP on {} (UDP and TCP): is another ivr or a PBX using it? Choose another with --listen ADDR:PORT",
                args.listen
            )
        })?;
        let local = server.local_addr();
        let tls_note = server
            .tls_addr()
            .map(|a| format!(" tls={a}"))
            .unwrap_or_default();
        let mut http_note = String::new();
        let mut http_addr = "off".to_string();
        let http = match args.http {
            Some(HttpAddr(Some(addr))) => {
                Some(tokio::net::TcpListener::bind(addr).await.with_context(|| {
                    format!("binding HTTP on {addr} (use --http ADDR:PORT or --http off)")
                })?)
            }
            Some(HttpAddr(None)) => None,
            None => match tokio::net::TcpListener::bind(("127.0.0.1", 8080)).await {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "127.0.0.1:8080 is taken: no staff page, API or metrics (choose one with --http ADDR:PORT)");
                    None
                }
            },
        };
        if let Some(listener) = http {
            let bound = listener.local_addr()?;
            http_note = format!(" http={bound}");
            http_addr = bound.to_string();
            let users = args
                .staff_users
                .clone()
                .unwrap_or_else(|| args.data_dir.join("staff.yaml"));
            let state = ivr_server::http::AppState {
                status: status.clone(),
                server: server.handle(),
                admin_token,
                staff: ivr_server::api::Staff {
                    store: store.clone(),
                    voicemail_dir: args.data_dir.join("voicemail"),
                    users: Arc::new(ivr_server::api::UsersFile::new(users)),
                    desk: ivr_server::desk::Desk {
                        board: status.board.clone(),
                        server: Some(server.handle()),
                    },
                    sessions: {
                        let sessions = Arc::<ivr_server::api::Sessions>::default();
                        sessions.signin.count_lockouts(status.signin_lockouts());
                        sessions
                    },
                    server: Some(server.handle()),
                },
                web: Arc::new(ivr_server::web::Guard::new(&args.web, bound)),
            };
            let limits = budget.http(&args.conns);
            limits
                .table
                .count_refusals(status.connections_refused("http"));
            let https = match (&certs, args.tls.https) {
                (Some(c), true) => {
                    http_note.push_str(" https");
                    Some(c.acceptor(&[b"http/1.1"]))
                }
                _ => None,
            };
            tokio::spawn(async move {
                if let Err(e) = ivr_server::http::serve(listener, state, limits, https).await {
                    tracing::error!(error = %e, "the HTTP server stopped");
                }
            });
        }
        tokio::spawn(ivr_server::retention::run(
            store.clone(),
            args.data_dir.join("voicemail"),
            args.retention_days,
        ));
        if let Some(mail) = mail {
            tokio::spawn(ivr_server::mail::deliver(
                store.clone(),
                mail,
                args.data_dir.join("voicemail"),
                status.clone(),
            ));
        }
        if let Some(hook) = webhook {
            tokio::spawn(ivr_server::webhook::deliver(store, hook, status.clone()));
        }
        // Tests and scripts read this line to learn the addresses.
        println!("ivr listening sip udp={local} tcp={local}{tls_note}{http_note}");
        std::io::stdout().flush()?;
        tracing::info!(%local, http = %http_addr, config = %source, shards, "serving");
        server.run(Arc::new(menus), shutdown).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT; the handlers are installed when this is called.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
