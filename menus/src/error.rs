//! Problems found in a config: where (file, line, column, YAML path) and what.

use crate::ics::IcsError;

/// A place in a config file (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Loc {
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1.
    pub column: u64,
}

/// One problem found in a config: where, the YAML path, and what.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{path}{}{kind}", at.map(|l| format!("{}:{}: ", l.line, l.column)).unwrap_or_default(), if path.is_empty() { "" } else { ": " })]
pub struct CompileError {
    /// The included file the error is in (`None`: the main file).
    pub file: Option<String>,
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
    /// An action with none or several verbs.
    #[error(
        "an action needs exactly one of goto, play, hangup, repeat, back, voicemail, queue, transfer (language and set may come with it)"
    )]
    BadAction,
    /// A number outside its allowed range.
    #[error("{got} is outside {min} to {max}")]
    Range {
        /// What was written.
        got: f64,
        /// The least allowed.
        min: f64,
        /// The most allowed.
        max: f64,
    },
    /// A number pattern that does not compile.
    #[error("{0}")]
    Pattern(String),
    /// A destination URI that cannot be called.
    #[error("{0}")]
    Uri(String),
    /// A calendar file (`holidays_ics`) with a line that cannot be used.
    #[error("{file}:{error}")]
    Calendar {
        /// The file as written.
        file: String,
        /// What is wrong, and on which line.
        error: IcsError,
    },
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
    /// A value of the wrong kind.
    #[error("expected {expected}, found {found}")]
    Type {
        /// What the field takes.
        expected: &'static str,
        /// What was written.
        found: &'static str,
    },
    /// A key given twice in one mapping.
    #[error("duplicate key (first at line {}, column {})", first.line, first.column)]
    Duplicate {
        /// Where the first one is.
        first: Loc,
    },
    /// A field the model does not have.
    #[error("unknown field '{name}' ({}expected one of {allowed})", hint.as_ref().map(|h| format!("did you mean '{h}'?; ")).unwrap_or_default())]
    UnknownField {
        /// The field written.
        name: String,
        /// The closest known field.
        hint: Option<String>,
        /// The known fields.
        allowed: String,
    },
    /// A required field is missing.
    #[error("missing field '{0}'")]
    Missing(&'static str),
    /// A silent caller would loop through these menus forever: no `on_failure` on the way
    /// hangs up.
    #[error(
        "a caller who presses nothing would loop forever: {0} (make an on_failure hang up or lead to a menu that does)"
    )]
    EndlessLoop(String),
    /// No key path leads to this menu.
    #[error("unreachable: no key, failure or entry leads to this menu")]
    Unreachable,
    /// From this menu no key leads, however many menus later, to a hang-up or a handoff.
    #[error(
        "no key leads out (to a hang-up, a mailbox, a queue or a transfer), here or in the menus keys lead to: callers can only leave by running out of retries"
    )]
    NoWayOut,
    /// A silent caller is hung up on without a word.
    #[error(
        "no no_input prompt and a silent on_failure: a caller who presses nothing hears the menu again, then is hung up on without a word"
    )]
    SilentFailure,
    /// A prompt a mailbox needs, not in the config and not built in for a language.
    #[error(
        "needs the prompts {prompts} in '{language}', which have no built-in versions there (the server builds in en, fr and es): record them under prompts:"
    )]
    NoBuiltin {
        /// The prompts' names, comma-separated.
        prompts: String,
        /// The language.
        language: String,
    },
    /// A number read-out whose words are not all recorded in a language.
    #[error("a number read-out in '{language}' needs the prompts {missing}")]
    NumberWords {
        /// The language.
        language: String,
        /// The missing prompt names, comma-separated.
        missing: String,
    },
    /// Prompts a language hears in a fallback language.
    #[error(
        "language '{language}' has no version of {prompts}: its callers hear a fallback language's"
    )]
    Borrowed {
        /// The language.
        language: String,
        /// The prompts, comma-separated.
        prompts: String,
    },
    /// A menu or prompt defined twice (in one file or across included files).
    #[error("{kind} defined again (first at {}line {}, column {})", other_file.as_ref().map(|f| format!("{f}, ")).unwrap_or_default(), other_at.line, other_at.column)]
    Redefined {
        /// `menu` or `prompt`.
        kind: &'static str,
        /// The file of the first definition (`None`: the main file).
        other_file: Option<String>,
        /// Where the first definition is.
        other_at: Loc,
    },
    /// A per-language prompt with no version for an enabled language, even by fallback.
    #[error(
        "no version for language '{0}' (add a recording, a say: text to speak it by TTS, or a fallback in languages.fallback)"
    )]
    MissingLanguage(String),
    /// Router menus that send the caller round in a circle.
    #[error("router menus send the caller round in a circle: {0}")]
    RouterLoop(String),
    /// A value outside a fixed set of words.
    #[error("'{got}' is not one of {allowed}")]
    Choice {
        /// What was written.
        got: String,
        /// The words allowed.
        allowed: &'static str,
    },
    /// An extension code that is not two or more keys (without `#`).
    #[error("'{0}' is not an extension: use two or more keys among 0-9 * A-D (# ends dialling)")]
    BadExtension(String),
    /// Two ways to read the same keys.
    #[error("ambiguous: {0}")]
    Ambiguous(String),
    /// A survey or question that cannot be asked.
    #[error("{0}")]
    Survey(String),
    /// A scenario step that does not parse.
    #[error("{0}")]
    Step(String),
    /// A plain password where an agent's digest hashes belong.
    #[error(
        "a password is not written in the config: run `ivr agents add NAME --user USER` and paste the password: ha1:... line it prints"
    )]
    PlainPassword,
    /// An agent definition that cannot be used (both ways to reach it, a bad user name,
    /// hashes for another realm...).
    #[error("{0}")]
    Agent(String),
}

/// The candidate closest to `name` by edit distance, if close enough to be a likely typo.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
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
