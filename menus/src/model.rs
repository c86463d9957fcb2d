//! The YAML model and its compiled, validated form.

use ivr_audio::{Digit, Prompt};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::time::Duration;

/// Index of a menu in [`Menus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MenuId(usize);

/// Index of a prompt in [`Menus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PromptId(usize);

/// What a key press (or an exhausted retry count) does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Go to another menu.
    Goto(MenuId),
    /// Play prompts, then replay the current menu.
    Play(Vec<PromptId>),
    /// Play prompts (possibly none), then hang up.
    Hangup(Vec<PromptId>),
    /// Replay the current menu.
    Repeat,
}

/// One compiled menu.
#[derive(Debug, Clone)]
pub struct Menu {
    /// Its name in the config.
    pub name: String,
    /// What is played on entry and on every retry.
    pub prompt: Vec<PromptId>,
    /// How long to wait for a key after the prompt ends.
    pub timeout: Duration,
    /// How many replays a timeout or an invalid key earns before `on_failure`.
    pub retries: u32,
    /// Played on an invalid key, before the replay.
    pub invalid: Vec<PromptId>,
    /// Played on a timeout, before the replay.
    pub no_input: Vec<PromptId>,
    /// The action of each key, in [`Digit::ALL`] order.
    pub options: [Option<Action>; 16],
    /// What happens when the retries are used up.
    pub on_failure: Action,
}

/// A compiled config: every menu and every prompt, validated and loaded.
#[derive(Debug, Clone)]
pub struct Menus {
    entry: MenuId,
    menus: Vec<Menu>,
    prompts: Vec<Prompt>,
}

impl Menus {
    /// The menu a call starts in.
    pub fn entry(&self) -> MenuId {
        self.entry
    }

    /// A menu by id.
    pub fn menu(&self, id: MenuId) -> &Menu {
        &self.menus[id.0]
    }

    /// A prompt by id.
    pub fn prompt(&self, id: PromptId) -> &Prompt {
        &self.prompts[id.0]
    }

    /// A menu by name.
    pub fn find(&self, name: &str) -> Option<MenuId> {
        self.menus.iter().position(|m| m.name == name).map(MenuId)
    }

    /// Number of menus.
    pub fn len(&self) -> usize {
        self.menus.len()
    }

    /// Whether there are no menus (never true for a compiled config).
    pub fn is_empty(&self) -> bool {
        self.menus.is_empty()
    }
}

/// A place in a config file (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Loc {
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1.
    pub column: u64,
}

impl Loc {
    fn of<T>(s: &Spanned<T>) -> Loc {
        Loc {
            line: s.referenced.line(),
            column: s.referenced.column(),
        }
    }
}

/// One problem found in a config: where, the YAML path, and what.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{path}{}{kind}", at.map(|l| format!("{}:{}: ", l.line, l.column)).unwrap_or_default(), if path.is_empty() { "" } else { ": " })]
pub struct CompileError {
    /// Where in the file, when known.
    pub at: Option<Loc>,
    /// The YAML path (`menus.sales.options.2.goto`); empty for whole-file errors.
    pub path: String,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// What is wrong, in a [`CompileError`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ErrorKind {
    /// The YAML does not parse or does not fit the model.
    #[error("{0}")]
    Yaml(String),
    /// A name that refers to nothing.
    #[error("unknown {kind} '{name}'{}", hint.as_ref().map(|h| format!(" (did you mean '{h}'?)")).unwrap_or_default())]
    Unknown {
        /// `menu` or `prompt`.
        kind: &'static str,
        /// The name written.
        name: String,
        /// The closest existing name.
        hint: Option<String>,
    },
    /// A key that is not one of `0-9 * # A-D`.
    #[error("'{0}' is not a key (use 0-9, *, #, A-D)")]
    BadKey(String),
    /// An action with none or several of goto/play/hangup/repeat.
    #[error("an action needs exactly one of goto, play, hangup, repeat")]
    BadAction,
    /// A prompt file that cannot be read or used.
    #[error("{file}: {reason}")]
    Prompt {
        /// The file as written.
        file: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A timeout outside 1-60 s.
    #[error("timeout {0} s is outside 1 to 60 s")]
    Timeout(f64),
    /// A menu with no options.
    #[error("a menu needs at least one option")]
    NoOptions,
}

fn err(at: Option<Loc>, path: impl Into<String>, kind: ErrorKind) -> CompileError {
    CompileError {
        at,
        path: path.into(),
        kind,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    entry: Spanned<String>,
    #[serde(default)]
    prompts: BTreeMap<String, Spanned<String>>,
    menus: BTreeMap<String, Spanned<RawMenu>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn names(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMenu {
    prompt: Spanned<OneOrMany>,
    #[serde(default)]
    timeout: Option<Spanned<f64>>,
    #[serde(default = "default_retries")]
    retries: u32,
    #[serde(default)]
    invalid: Option<Spanned<OneOrMany>>,
    #[serde(default)]
    no_input: Option<Spanned<OneOrMany>>,
    options: BTreeMap<String, Spanned<RawAction>>,
    #[serde(default)]
    on_failure: Option<Spanned<RawAction>>,
}

const DEFAULT_TIMEOUT: f64 = 5.0;
fn default_retries() -> u32 {
    2
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAction {
    #[serde(default)]
    goto: Option<Spanned<String>>,
    #[serde(default)]
    play: Option<Spanned<OneOrMany>>,
    #[serde(default)]
    hangup: Option<Option<Spanned<OneOrMany>>>,
    #[serde(default)]
    repeat: Option<bool>,
}

/// Compile a YAML config. `load` reads a prompt file (path as written) and returns its bytes
/// or a reason; I/O stays with the caller. Every error found is returned, not just the first,
/// each with its line and column.
pub fn compile(
    yaml: &str,
    load: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
) -> Result<Menus, Vec<CompileError>> {
    let raw: RawConfig = serde_saphyr::from_str(yaml).map_err(|e| {
        let at = e.location().map(|l| Loc {
            line: l.line(),
            column: l.column(),
        });
        // The first line of serde-saphyr's message is the summary; the rest is a snippet.
        let text = e.to_string();
        let summary = text.lines().next().unwrap_or_default();
        let summary = summary.strip_prefix("error: ").unwrap_or(summary);
        let summary = match summary.split_once(": ") {
            Some((head, rest)) if head.starts_with("line ") => rest,
            _ => summary,
        };
        vec![err(at, "", ErrorKind::Yaml(summary.to_string()))]
    })?;
    let mut errors = Vec::new();

    let prompt_names: Vec<&String> = raw.prompts.keys().collect();
    let mut prompts = Vec::new();
    for (name, file) in &raw.prompts {
        let loaded = load(&file.value).and_then(|bytes| {
            Prompt::from_wav(&file.value, &bytes).map_err(|e| e.reason.to_string())
        });
        match loaded {
            Ok(p) => prompts.push(p),
            Err(reason) => {
                let kind = ErrorKind::Prompt {
                    file: file.value.clone(),
                    reason,
                };
                errors.push(err(Some(Loc::of(file)), format!("prompts.{name}"), kind));
                prompts.push(Prompt::from_samples(&file.value, &[]));
            }
        }
    }
    let menu_names: Vec<&String> = raw.menus.keys().collect();

    let resolve_prompts =
        |path: String, list: Option<&Spanned<OneOrMany>>, errors: &mut Vec<CompileError>| {
            let mut out = Vec::new();
            let Some(list) = list else { return out };
            for name in list.value.names() {
                match prompt_names.iter().position(|p| *p == name) {
                    Some(i) => out.push(PromptId(i)),
                    None => errors.push(err(
                        Some(Loc::of(list)),
                        path.clone(),
                        ErrorKind::Unknown {
                            kind: "prompt",
                            name: name.to_string(),
                            hint: closest(name, prompt_names.iter().map(|s| s.as_str())),
                        },
                    )),
                }
            }
            out
        };
    let resolve_menu =
        |path: &str, name: &Spanned<String>, errors: &mut Vec<CompileError>| -> MenuId {
            match menu_names.iter().position(|m| **m == name.value) {
                Some(i) => MenuId(i),
                None => {
                    errors.push(err(
                        Some(Loc::of(name)),
                        path,
                        ErrorKind::Unknown {
                            kind: "menu",
                            name: name.value.clone(),
                            hint: closest(&name.value, menu_names.iter().map(|s| s.as_str())),
                        },
                    ));
                    MenuId(0)
                }
            }
        };

    let entry = resolve_menu("entry", &raw.entry, &mut errors);
    let mut menus = Vec::new();
    for (name, spanned) in &raw.menus {
        let m = &spanned.value;
        let base = format!("menus.{name}");
        let timeout = m
            .timeout
            .as_ref()
            .map(|t| t.value)
            .unwrap_or(DEFAULT_TIMEOUT);
        if !(1.0..=60.0).contains(&timeout) {
            let at = m.timeout.as_ref().map(Loc::of);
            errors.push(err(
                at,
                format!("{base}.timeout"),
                ErrorKind::Timeout(timeout),
            ));
        }
        if m.options.is_empty() {
            errors.push(err(
                Some(Loc::of(spanned)),
                format!("{base}.options"),
                ErrorKind::NoOptions,
            ));
        }
        let action =
            |path: String, a: &Spanned<RawAction>, errors: &mut Vec<CompileError>| -> Action {
                let at = Some(Loc::of(a));
                let a = &a.value;
                let count = [
                    a.goto.is_some(),
                    a.play.is_some(),
                    a.hangup.is_some(),
                    a.repeat == Some(true),
                ]
                .iter()
                .filter(|x| **x)
                .count();
                if count != 1 {
                    errors.push(err(at, path, ErrorKind::BadAction));
                    return Action::Repeat;
                }
                if let Some(g) = &a.goto {
                    Action::Goto(resolve_menu(&format!("{path}.goto"), g, errors))
                } else if let Some(p) = &a.play {
                    Action::Play(resolve_prompts(format!("{path}.play"), Some(p), errors))
                } else if let Some(h) = &a.hangup {
                    Action::Hangup(resolve_prompts(
                        format!("{path}.hangup"),
                        h.as_ref(),
                        errors,
                    ))
                } else {
                    Action::Repeat
                }
            };
        let mut options: [Option<Action>; 16] = Default::default();
        for (key, a) in &m.options {
            let path = format!("{base}.options.{key}");
            let mut chars = key.chars();
            let digit = match (chars.next().and_then(Digit::from_char), chars.next()) {
                (Some(d), None) => d,
                _ => {
                    errors.push(err(Some(Loc::of(a)), path, ErrorKind::BadKey(key.clone())));
                    continue;
                }
            };
            options[digit.event_code() as usize] = Some(action(path, a, &mut errors));
        }
        let on_failure = match &m.on_failure {
            Some(a) => action(format!("{base}.on_failure"), a, &mut errors),
            None => Action::Hangup(Vec::new()),
        };
        menus.push(Menu {
            name: name.clone(),
            prompt: resolve_prompts(format!("{base}.prompt"), Some(&m.prompt), &mut errors),
            timeout: Duration::from_secs_f64(timeout.clamp(1.0, 60.0)),
            retries: m.retries,
            invalid: resolve_prompts(format!("{base}.invalid"), m.invalid.as_ref(), &mut errors),
            no_input: resolve_prompts(format!("{base}.no_input"), m.no_input.as_ref(), &mut errors),
            options,
            on_failure,
        });
    }
    errors.sort_by_key(|e| e.at);
    if errors.is_empty() {
        Ok(Menus {
            entry,
            menus,
            prompts,
        })
    } else {
        Err(errors)
    }
}

/// The candidate closest to `name` by edit distance, if close enough to be a likely typo.
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    candidates
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const YAML: &str = r#"
entry: main
prompts:
  welcome: welcome.wav
  sales: sales.wav
  bye: bye.wav
  oops: oops.wav
menus:
  main:
    prompt: welcome
    timeout: 3
    retries: 2
    invalid: oops
    options:
      "1": { goto: sales }
      "2": { play: [sales, sales] }
      "9": { hangup: bye }
    on_failure: { hangup: bye }
  sales:
    prompt: [sales]
    options:
      "*": { goto: main }
      "0": { repeat: true }
"#;

    pub(crate) fn loader(file: &str) -> Result<Vec<u8>, String> {
        let len = match file {
            "welcome.wav" => 1600,
            "sales.wav" => 800,
            _ => 400,
        };
        Ok(ivr_audio::wav::encode_pcm16(8000, &vec![1000; len]))
    }

    #[test]
    fn compiles_the_example() {
        let m = compile(YAML, &mut loader).unwrap();
        let main = m.menu(m.entry());
        assert_eq!(main.name, "main");
        assert_eq!(main.timeout, Duration::from_secs(3));
        assert_eq!(
            main.options[1],
            Some(Action::Goto(m.find("sales").unwrap()))
        );
        assert!(matches!(&main.options[2], Some(Action::Play(p)) if p.len() == 2));
        assert_eq!(m.prompt(main.prompt[0]).frame_count(), 10);
        let sales = m.menu(m.find("sales").unwrap());
        assert_eq!(sales.options[10], Some(Action::Goto(m.entry())));
        assert_eq!(sales.on_failure, Action::Hangup(vec![]));
    }

    #[test]
    fn reports_every_error_with_its_path() {
        let bad = YAML
            .replace("{ goto: sales }", "{ goto: sals }")
            .replace("\"9\": { hangup: bye }", "\"99\": { hangup: bye }")
            .replace("invalid: oops", "invalid: oopz")
            .replace("timeout: 3", "timeout: 0");
        let errs = compile(&bad, &mut loader).unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        // In file order, each with line:column of the offending value.
        assert_eq!(
            text,
            [
                "11:14: menus.main.timeout: timeout 0 s is outside 1 to 60 s",
                "13:14: menus.main.invalid: unknown prompt 'oopz' (did you mean 'oops'?)",
                "15:20: menus.main.options.1.goto: unknown menu 'sals' (did you mean 'sales'?)",
                "17:13: menus.main.options.99: '99' is not a key (use 0-9, *, #, A-D)",
            ]
        );
    }

    #[test]
    fn yaml_errors_have_a_location_and_unknown_fields_are_refused() {
        let e = compile(
            "entry: main\nmenus:\n  main:\n    prompt: x\n    optoins: {}\n",
            &mut loader,
        )
        .unwrap_err();
        let s = e[0].to_string();
        assert!(s.contains("optoins") && s.contains('5'), "{s}");
    }

    #[test]
    fn unreadable_prompt_names_the_file() {
        let e = compile(YAML, &mut |f| {
            if f == "bye.wav" {
                Err("no such file".into())
            } else {
                loader(f)
            }
        })
        .unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].to_string(), "6:8: prompts.bye: bye.wav: no such file");
    }
}
