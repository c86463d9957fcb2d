//! The server's own settings: a YAML file (`/etc/ivr/ivr.yaml`), environment variables and
//! flags, all with the names of `ivr serve`'s flags.
//!
//! Nothing here lists the flags: every key is looked up in clap's definition of `ivr serve`
//! (`listen: 192.0.2.10:5060` is `--listen=192.0.2.10:5060`, `log-format` or `log_format` is
//! `--log-format`), so a flag added to `ServeArgs` is a settings key and an environment
//! variable (`IVR_LISTEN`, `IVR_LOG_FORMAT`) with no further work. A list is a repeated flag,
//! `true` a switch. The precedence is the usual one: command line, then environment, then
//! the file, then the built-in default. The file's values are put on the command line before
//! the user's own arguments and the whole is parsed once more, so clap checks them exactly
//! as it checks typed flags.
//!
//! `ivr staff`, `ivr callbacks`, `ivr calls` and `ivr doctor` read the same file for the keys they share
//! with `ivr serve` (`data-dir`, `database`, `staff-users`, `config`...), so on an installed
//! server they find the data where the service keeps it.

use anyhow::{Context, bail};
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};
use ivr_menus::yaml::{Node, Value};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The settings file read when `--settings`/`IVR_SETTINGS` names none and the binary is
/// installed under `/usr` (the Debian package); a binary run from elsewhere (a build
/// folder, `~/.cargo/bin`) reads none unless told.
pub const INSTALLED_FILE: &str = "/etc/ivr/ivr.yaml";

/// The commands that read the settings file (for the keys they share with `ivr serve`).
/// Others (`ivr test` also has a `--config`, meaning something else) ignore it.
const READERS: &[&str] = &["serve", "staff", "callbacks", "calls", "doctor"];

/// The id of the global flag naming the settings file.
pub const SETTINGS_ID: &str = "settings";

/// Flags that are not settings (they ask for an action, not a value to run with).
const NOT_SETTINGS: &[&str] = &["help", "version", "print-config", SETTINGS_ID];

/// `command` with an environment variable for every `ivr serve` (and `ivr doctor`) flag
/// that has none:
/// `IVR_` and the flag's name in capitals, `-` as `_`.
pub fn with_env(command: Command) -> Command {
    // `ivr doctor` takes serve's flags, and so their variables. (mut_subcommands keeps
    // the commands' order in --help.)
    command.mut_subcommands(|sub| match sub.get_name() {
        "serve" | "doctor" => env_for_each_flag(sub),
        _ => sub,
    })
}

fn env_for_each_flag(serve: Command) -> Command {
    serve.mut_args(|arg| {
        let Some(long) = arg.get_long().filter(|l| !NOT_SETTINGS.contains(l)) else {
            return arg;
        };
        if arg.get_env().is_some() {
            return arg;
        }
        let name = format!("IVR_{}", long.replace('-', "_").to_uppercase());
        // clap wants a 'static name (without its `string` feature): a few bytes per flag,
        // once per process.
        arg.env(&*Box::leak(name.into_boxed_str()))
    })
}

/// The settings that applied to a run, for `--print-config`.
pub struct Applied {
    /// The file, if one was read.
    pub file: Option<PathBuf>,
    /// The ids of the flags whose values came from it.
    pub from_file: Vec<String>,
}

/// Parse the command line `argv` with `command`, adding the settings file's values for the
/// flags the user did not give (on the command line or in the environment). Returns the
/// matches and what the file gave. Clap's own errors (and `--help`) exit as usual.
pub fn parse(command: &Command, argv: Vec<OsString>) -> anyhow::Result<(ArgMatches, Applied)> {
    let first = command.clone().get_matches_from(argv.clone());
    let none = Applied {
        file: None,
        from_file: Vec::new(),
    };
    let Some((name, sub)) = first.subcommand() else {
        return Ok((first, none));
    };
    if !READERS.contains(&name) {
        return Ok((first, none));
    }
    let file = match first.get_one::<PathBuf>(SETTINGS_ID) {
        Some(f) => f.clone(),
        None => match installed_default() {
            Some(f) => f,
            None => return Ok((first, none)),
        },
    };
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("reading the settings file {}", file.display()))?;
    let serve = command
        .find_subcommand("serve")
        .expect("invariant: the CLI defines `ivr serve`");
    let this = command
        .find_subcommand(name)
        .expect("invariant: clap matched this subcommand");
    let (injected, from_file) = arguments(&file, &text, serve, this, sub)?;
    if injected.is_empty() {
        return Ok((
            first,
            Applied {
                file: Some(file),
                from_file,
            },
        ));
    }
    // The file's flags go right after the subcommand's name, before the user's own.
    let at = subcommand_position(&argv, name).expect("invariant: clap found the subcommand");
    let mut full: Vec<OsString> = argv[..=at].to_vec();
    full.extend(injected);
    full.extend_from_slice(&argv[at + 1..]);
    let matches = command
        .clone()
        .try_get_matches_from(full)
        .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.render()))?;
    Ok((
        matches,
        Applied {
            file: Some(file),
            from_file,
        },
    ))
}

/// [`INSTALLED_FILE`], if this binary is installed under `/usr` and the file exists.
fn installed_default() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let file = Path::new(INSTALLED_FILE);
    (exe.starts_with("/usr/") && file.exists()).then(|| file.to_path_buf())
}

/// Where the subcommand's name is in `argv` (after any global `--settings FILE`).
fn subcommand_position(argv: &[OsString], name: &str) -> Option<usize> {
    let mut skip_value = false;
    for (i, a) in argv.iter().enumerate().skip(1) {
        if skip_value {
            skip_value = false;
            continue;
        }
        if a == "--settings" {
            skip_value = true;
            continue;
        }
        if a == name {
            return Some(i);
        }
    }
    None
}

/// The flags the file `text` gives for the subcommand `this`, skipping those the user set;
/// every key must be a flag of `serve`. Also the ids of the flags given.
fn arguments(
    file: &Path,
    text: &str,
    serve: &Command,
    this: &Command,
    user: &ArgMatches,
) -> anyhow::Result<(Vec<OsString>, Vec<String>)> {
    let here = |n: &Node| format!("{}:{}:{}", file.display(), n.at.line, n.at.column);
    let root =
        ivr_menus::yaml::load_str(text).map_err(|e| anyhow::anyhow!("{}:{e}", file.display()))?;
    let pairs = match &root.value {
        Value::Map(pairs) => pairs.as_slice(),
        Value::Null => &[],
        _ => bail!(
            "{}: the settings are a mapping of `ivr serve` flag names to values",
            here(&root)
        ),
    };
    let keys: Vec<&str> = serve
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|l| !NOT_SETTINGS.contains(l))
        .collect();
    let mut out = Vec::new();
    let mut ids = Vec::new();
    let mut errors = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for (k, v) in pairs {
        let Value::Str(key) = &k.value else {
            errors.push(format!("{}: a key must be a flag name", here(k)));
            continue;
        };
        let long = key.replace('_', "-");
        if !keys.contains(&long.as_str()) {
            let hint = ivr_menus::closest(&long, keys.iter().copied())
                .map(|h| format!(" (did you mean '{h}'?)"))
                .unwrap_or_default();
            errors.push(format!(
                "{}: {key}: not a setting{hint}; the settings are the flags of `ivr serve --help`",
                here(k)
            ));
            continue;
        }
        if seen.contains(&long) {
            errors.push(format!("{}: {key}: given twice", here(k)));
            continue;
        }
        seen.push(long.clone());
        let Some(arg) = this.get_arguments().find(|a| a.get_long() == Some(&long)) else {
            continue; // A setting of `serve` this command does not use.
        };
        let id = arg.get_id().as_str();
        if matches!(
            user.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        match tokens(&long, arg.get_action(), v) {
            Ok(t) => {
                if !t.is_empty() {
                    ids.push(id.to_string());
                }
                out.extend(t);
            }
            Err(why) => errors.push(format!("{}: {key}: {why}", here(v))),
        }
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    Ok((out, ids))
}

/// The command-line words for `--long` set to `value`.
fn tokens(long: &str, action: &ArgAction, value: &Node) -> Result<Vec<OsString>, String> {
    let flag = |v: &str| OsString::from(format!("--{long}={v}"));
    let scalar = |n: &Node| -> Result<String, String> {
        match &n.value {
            Value::Str(s) => Ok(s.clone()),
            Value::Int(i) => Ok(i.to_string()),
            Value::Float(f) => Ok(f.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Null => Err("no value".into()),
            Value::Seq(_) | Value::Map(_) => Err("expected one value".into()),
        }
    };
    match action {
        ArgAction::SetTrue | ArgAction::SetFalse => {
            let on = match &value.value {
                Value::Bool(b) => *b,
                Value::Str(s) if s == "true" || s == "false" => s == "true",
                _ => return Err("expected true or false".into()),
            };
            let wanted = matches!(action, ArgAction::SetTrue) == on;
            Ok(if wanted {
                vec![OsString::from(format!("--{long}"))]
            } else {
                vec![]
            })
        }
        ArgAction::Append => match &value.value {
            Value::Seq(items) => items.iter().map(|n| scalar(n).map(|v| flag(&v))).collect(),
            Value::Null => Ok(vec![]),
            _ => Ok(vec![flag(&scalar(value)?)]),
        },
        _ => match &value.value {
            Value::Null => Ok(vec![]),
            _ => Ok(vec![flag(&scalar(value)?)]),
        },
    }
}

/// The settings `ivr serve` runs with, as a settings file (`--print-config`): each flag's
/// value and, in a comment, where it came from. Values that may hold a password are shown
/// without it.
pub fn print(serve: &Command, matches: &ArgMatches, applied: &Applied) -> String {
    let mut out =
        String::from("# ivr serve settings: command line > environment > file > default\n");
    if let Some(f) = &applied.file {
        out.push_str(&format!("# settings file: {}\n", f.display()));
    }
    for arg in serve.get_arguments() {
        let Some(long) = arg.get_long().filter(|l| !NOT_SETTINGS.contains(l)) else {
            continue;
        };
        let id = arg.get_id().as_str();
        let values: Vec<String> = matches
            .get_raw(id)
            .map(|v| {
                v.map(|s| crate::redact(&s.to_string_lossy()))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let source = if applied.from_file.iter().any(|f| f == id) {
            "settings file".to_string()
        } else {
            match matches.value_source(id) {
                Some(ValueSource::CommandLine) => "command line".to_string(),
                Some(ValueSource::EnvVariable) => format!(
                    "environment {}",
                    arg.get_env()
                        .map(|e| e.to_string_lossy().into_owned())
                        .unwrap_or_default()
                ),
                Some(ValueSource::DefaultValue) => "default".to_string(),
                _ => "not set".to_string(),
            }
        };
        let quoted = |v: &String| serde_json::to_string(v).unwrap_or_default();
        let line = match arg.get_action() {
            ArgAction::SetTrue => format!("{long}: {}", matches.get_flag(id)),
            _ if values.is_empty() => format!("# {long}:"),
            ArgAction::Append => format!(
                "{long}: [{}]",
                values.iter().map(quoted).collect::<Vec<_>>().join(", ")
            ),
            _ => format!("{long}: {}", quoted(&values[0])),
        };
        out.push_str(&format!("{line:<48} # {source}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction};

    fn serve() -> Command {
        Command::new("ivr")
            .arg(
                Arg::new(SETTINGS_ID)
                    .long("settings")
                    .global(true)
                    .value_parser(clap::value_parser!(PathBuf)),
            )
            .subcommand(
                Command::new("serve")
                    .arg(
                        Arg::new("listen")
                            .long("listen")
                            .default_value("127.0.0.1:5060"),
                    )
                    .arg(Arg::new("max_calls").long("max-calls"))
                    .arg(
                        Arg::new("trusted_proxy")
                            .long("trusted-proxy")
                            .action(ArgAction::Append),
                    )
                    .arg(Arg::new("quiet").long("quiet").action(ArgAction::SetTrue)),
            )
            .subcommand(Command::new("staff").arg(Arg::new("listen").long("listen").global(true)))
    }

    fn run(file_text: &str, args: &[&str]) -> anyhow::Result<(ArgMatches, Applied)> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ivr.yaml");
        std::fs::write(&file, file_text).unwrap();
        let mut argv: Vec<OsString> = vec!["ivr".into(), "--settings".into(), file.into()];
        argv.extend(args.iter().map(OsString::from));
        parse(&with_env(serve()), argv)
    }

    #[test]
    fn keys_are_flags_lists_repeat_and_the_command_line_wins() {
        let (m, applied) = run(
            "listen: 0.0.0.0:5070\nmax_calls: 20\ntrusted-proxy: [10.0.0.1, 10.0.0.2]\nquiet: true\n",
            &["serve", "--max-calls", "5"],
        )
        .unwrap();
        let (_, s) = m.subcommand().unwrap();
        assert_eq!(s.get_one::<String>("listen").unwrap(), "0.0.0.0:5070");
        assert_eq!(s.get_one::<String>("max_calls").unwrap(), "5");
        let proxies: Vec<&String> = s.get_many("trusted_proxy").unwrap().collect();
        assert_eq!(proxies, ["10.0.0.1", "10.0.0.2"]);
        assert!(s.get_flag("quiet"));
        assert_eq!(applied.from_file, ["listen", "trusted_proxy", "quiet"]);
    }

    #[test]
    fn unknown_keys_and_wrong_shapes_are_errors_with_their_place() {
        let e = run("lisen: x\nmax-calls: [1, 2]\n", &["serve"])
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("ivr.yaml:1:1: lisen: not a setting (did you mean 'listen'?)"),
            "{e}"
        );
        assert!(
            e.contains("ivr.yaml:2:12: max-calls: expected one value"),
            "{e}"
        );
    }

    #[test]
    fn other_commands_take_the_keys_they_share() {
        let (m, _) = run("listen: 1.2.3.4:5\nmax-calls: 3\n", &["staff"]).unwrap();
        let (_, s) = m.subcommand().unwrap();
        assert_eq!(s.get_one::<String>("listen").unwrap(), "1.2.3.4:5");
    }
}
