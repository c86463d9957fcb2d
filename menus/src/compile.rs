//! Compiling a YAML config into the [`Menus`] model: every field checked, every name
//! resolved, every prompt loaded, and every problem reported with its place.

use crate::error::{CompileError, ErrorKind, Loc, closest};
use crate::lint::{
    borrowed_prompts, endless_failure_loops, no_way_out, router_cycles, silent_failures,
    unreachable_menus,
};
use crate::model::{
    Action, Builtin, CallerRule, Collect, DestinationId, Languages, MailboxId, Menu, MenuId, Menus,
    PromptId, PromptItem, PromptOptions, Retries, Route, Router, Speaker,
};
use crate::yaml::{Node, Walker, join, load_str};
use ivr_audio::{Digit, Prompt};
use std::time::Duration;

pub(crate) const TOP_FIELDS: &[&str] = &[
    "entry",
    "entries",
    "callers",
    "schedules",
    "languages",
    "include",
    "prompts",
    "menus",
    "mailboxes",
    "queues",
    "destinations",
    "agents",
    "agent_codes",
    "surveys",
];
/// The sections an included file may hold.
pub(crate) const INCLUDED_FIELDS: &[&str] =
    &["prompts", "menus", "mailboxes", "queues", "destinations"];
pub(crate) const ROUTER_FIELDS: &[&str] = &["schedule", "open", "closed", "holiday"];

/// The prompts and menus of one file: the main one (`file: None`) or an included one.
struct Section<'a> {
    file: Option<String>,
    /// The file's folder relative to the main file's ("" for the same folder).
    dir: String,
    prompts: Option<&'a Node>,
    menus: Option<&'a Node>,
    mailboxes: Option<&'a Node>,
    queues: Option<&'a Node>,
    destinations: Option<&'a Node>,
}
pub(crate) const PROMPT_FIELDS: &[&str] = &[
    "file",
    "say",
    "voice",
    "silence",
    "tone",
    "interruptible",
    "type_ahead",
];

/// Where a prompt's audio comes from.
enum Source {
    /// A WAV file, as written.
    File(String),
    /// Text for the text-to-speech renderer, in a voice (`en`, `fr`, `en-us`...).
    Say { text: String, voice: String },
    /// Silence, in seconds.
    Silence(f64),
    /// The record beep (1 kHz, 250 ms).
    Beep,
}
pub(crate) const MENU_FIELDS: &[&str] = &[
    "prompt",
    "timeout",
    "retries",
    "invalid",
    "no_input",
    "options",
    "extensions",
    "inter_digit_timeout",
    "collect",
    "then",
    "on_failure",
];
pub(crate) const ACTION_FIELDS: &[&str] = &[
    "goto",
    "play",
    "hangup",
    "repeat",
    "back",
    "voicemail",
    "queue",
    "transfer",
    "language",
    "set",
];
/// Action fields that modify the verb they come with rather than being one.
const MODIFIERS: &[&str] = &["language", "set"];
const DEFAULT_TIMEOUT: f64 = 5.0;
const DEFAULT_RETRIES: u32 = 2;
const DEFAULT_INTER_DIGIT: f64 = 3.0;

impl Menu {
    /// A menu that plays nothing, offers nothing and hangs up on failure: the base for
    /// router menus and the stand-in for a menu whose definition has errors.
    fn bare(name: &str, at: Loc) -> Menu {
        Menu {
            name: name.to_string(),
            prompt: Vec::new(),
            timeout: Duration::from_secs_f64(DEFAULT_TIMEOUT),
            retries: Retries {
                no_input: 0,
                invalid: 0,
            },
            invalid: Vec::new(),
            no_input: Vec::new(),
            options: Default::default(),
            extensions: Vec::new(),
            inter_digit_timeout: Duration::from_secs_f64(DEFAULT_INTER_DIGIT),
            collect: None,
            on_failure: Action::Hangup(Vec::new()),
            at,
            file: None,
            router: None,
        }
    }
}

/// Compile a YAML config. `load` reads a prompt file (path as written) and returns its bytes
/// or a reason; I/O stays with the caller. Every error found is returned, not just the
/// first, each with its line and column: unknown fields, wrong types and duplicate keys as
/// well as unknown names and unusable files.
pub fn compile(
    yaml: &str,
    load: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
) -> Result<Menus, Vec<CompileError>> {
    compile_with_tts(yaml, load, &mut |_, _| {
        Err("no text-to-speech renderer is configured".to_string())
    })
}

/// [`compile`], with `say` rendering `say:` prompts (text, voice) to WAV bytes. The caller
/// owns the renderer (a process, a cache): the compiler stays free of I/O.
pub fn compile_with_tts(
    yaml: &str,
    load: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
    say: &mut Speaker<'_>,
) -> Result<Menus, Vec<CompileError>> {
    compile_full(yaml, load, say, &mut |_, _| None)
}

/// [`compile_with_tts`], with `builtin` supplying built-in recordings (WAV bytes) of the
/// prompts mailboxes need (`vm_*`, `digit_*`) by name and language tag, for those the
/// config does not record itself.
pub fn compile_full(
    yaml: &str,
    load: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
    say: &mut Speaker<'_>,
    builtin: &mut Builtin<'_>,
) -> Result<Menus, Vec<CompileError>> {
    let root = load_str(yaml).map_err(|e| vec![*e])?;
    let mut w = Walker::default();
    let Some(top) = w.map(&root, "", Some(TOP_FIELDS)) else {
        return Err(w.errors);
    };

    // Included files (one level): each brings prompts and menus, with paths relative to
    // its own folder and errors reported against its own name.
    let mut included: Vec<(String, Node)> = Vec::new();
    if let Some(node) = top.get("include") {
        for (file, at) in w.names(node, "include") {
            let text = load(&file)
                .and_then(|b| String::from_utf8(b).map_err(|_| "not UTF-8 text".to_string()));
            match text {
                Ok(text) => match load_str(&text) {
                    Ok(root) => included.push((file, root)),
                    Err(mut e) => {
                        e.file = Some(file);
                        w.errors.push(*e);
                    }
                },
                Err(reason) => w.error(at, "include", ErrorKind::Prompt { file, reason }),
            }
        }
    }
    let mut sections: Vec<Section<'_>> = vec![Section {
        file: None,
        dir: String::new(),
        prompts: top.get("prompts"),
        menus: top.get("menus"),
        mailboxes: top.get("mailboxes"),
        queues: top.get("queues"),
        destinations: top.get("destinations"),
    }];
    for (file, root) in &included {
        w.file = Some(file.clone());
        if let Some(f) = w.map(root, "", Some(INCLUDED_FIELDS)) {
            let dir = file
                .rsplit_once('/')
                .map(|(d, _)| d.to_string())
                .unwrap_or_default();
            sections.push(Section {
                file: Some(file.clone()),
                dir,
                prompts: f.get("prompts"),
                menus: f.get("menus"),
                mailboxes: f.get("mailboxes"),
                queues: f.get("queues"),
                destinations: f.get("destinations"),
            });
        }
        w.file = None;
    }

    // Prompts: load every file, whatever else is wrong, so all file errors show at once.
    let mut prompt_names: Vec<String> = Vec::new();
    let mut prompt_options: Vec<PromptOptions> = Vec::new();
    let mut prompts = Vec::new();
    let mut prompt_places: Vec<(Option<String>, Loc)> = Vec::new();
    // For each named prompt: its recordings, as (language index or None for all, index in `prompts`).
    let mut variants: Vec<Vec<(Option<usize>, usize)>> = Vec::new();
    let languages = match top.get("languages") {
        Some(node) => compile_languages(&mut w, node),
        None => Languages::default(),
    };
    // For each language: the prompts it hears in a fallback language, for a warning.
    let mut borrowed: Vec<Vec<String>> = vec![Vec::new(); languages.names.len()];
    for section in &sections {
        w.file = section.file.clone();
        let Some(fields) = section
            .prompts
            .and_then(|node| w.map(node, "prompts", None))
        else {
            continue;
        };
        for (name, spec) in fields.iter() {
            if let Some(i) = prompt_names.iter().position(|p| p == name) {
                let (other_file, other_at) = prompt_places[i].clone();
                w.error(
                    spec.at,
                    &join("prompts", name),
                    ErrorKind::Redefined {
                        kind: "prompt",
                        other_file,
                        other_at,
                    },
                );
                continue;
            }
            prompt_places.push((section.file.clone(), spec.at));
            let path = join("prompts", name);
            // Either one recording for every language, or one per language: { fr: ..., en: ... }.
            let per_language = matches!(&spec.value, crate::yaml::Value::Map(pairs)
                if !pairs.is_empty() && pairs.iter().all(|(k, _)| matches!(&k.value, crate::yaml::Value::Str(key) if languages.names.contains(key))));
            let mut these = Vec::new();
            let mut options = PromptOptions::default();
            if per_language {
                let Some(f) = w.map(spec, &path, None) else {
                    continue;
                };
                for (lang, vspec) in f.iter() {
                    let (prompt, o) =
                        variant(&mut w, vspec, &join(&path, lang), &section.dir, load, say);
                    options = o;
                    let lang_idx = languages.names.iter().position(|l| l == lang);
                    these.push((lang_idx, prompts.len()));
                    prompts.push(prompt.unwrap_or_else(|| Prompt::from_samples(name, &[])));
                }
                // Every enabled language must find a version, directly or by its fallbacks.
                // (Number words are checked by the read-outs that use them, per language.)
                let number_word = name.starts_with("number_");
                for (i, lang) in languages.names.iter().enumerate() {
                    let has = |l: usize| these.iter().any(|(v, _)| *v == Some(l));
                    if number_word {
                        continue;
                    }
                    if !languages.chain(i).any(has) {
                        w.error(spec.at, &path, ErrorKind::MissingLanguage(lang.clone()));
                    } else if !has(i) {
                        borrowed[i].push(name.to_string());
                    }
                }
            } else {
                let (prompt, o) = variant(&mut w, spec, &path, &section.dir, load, say);
                options = o;
                these.push((None, prompts.len()));
                prompts.push(prompt.unwrap_or_else(|| Prompt::from_samples(name, &[])));
            }
            prompt_options.push(options);
            prompt_names.push(name.to_string());
            variants.push(these);
        }
    }

    w.file = None;
    if sections.iter().all(|s| s.menus.is_none()) {
        w.error(root.at, "", ErrorKind::Missing("menus"));
    }
    let menu_defs = definitions(&mut w, &sections, "menu", "menus", |s| s.menus);
    let mailbox_defs = definitions(&mut w, &sections, "mailbox", "mailboxes", |s| s.mailboxes);
    let queue_defs = definitions(&mut w, &sections, "queue", "queues", |s| s.queues);
    let destination_defs = definitions(&mut w, &sections, "destination", "destinations", |s| {
        s.destinations
    });
    let def_names = |defs: &[(&str, usize, &Node)]| -> Vec<String> {
        defs.iter().map(|(n, _, _)| n.to_string()).collect()
    };
    let menu_names = def_names(&menu_defs);
    let mailbox_names = def_names(&mailbox_defs);
    let queue_names = def_names(&queue_defs);
    let destination_names = def_names(&destination_defs);
    let schedules = match top.get("schedules") {
        Some(node) => crate::schedule::compile_schedules(&mut w, node, load),
        None => Vec::new(),
    };
    let schedule_names: Vec<String> = schedules.iter().map(|s| s.name.clone()).collect();
    // Survey names first (actions name them), then the surveys, once prompts are known.
    let survey_names: Vec<String> = match top.get("surveys").map(|n| &n.value) {
        Some(crate::yaml::Value::Map(pairs)) => pairs
            .iter()
            .filter_map(|(k, _)| match &k.value {
                crate::yaml::Value::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let names = Names {
        menus: &menu_names,
        prompts: &prompt_names,
        versions: &variants,
        langs: &languages,
        schedules: &schedule_names,
        languages: &languages.names,
        mailboxes: &mailbox_names,
        queues: &queue_names,
        destinations: &destination_names,
        surveys: &survey_names,
    };
    let surveys = match top.get("surveys") {
        Some(node) => {
            crate::survey::compile_surveys(&mut w, node, &mut |w, n, p| names.prompts(w, n, p))
        }
        None => Vec::new(),
    };
    let mut mailboxes = Vec::new();
    for &(name, section, node) in &mailbox_defs {
        w.file = sections[section].file.clone();
        mailboxes.push(crate::handoff::compile_mailbox(
            &mut w,
            name,
            node,
            &mut |w, n, p| names.prompts(w, n, p),
        ));
    }
    let mut queues = Vec::new();
    for &(name, section, node) in &queue_defs {
        w.file = sections[section].file.clone();
        queues.push(crate::handoff::compile_queue(
            &mut w,
            name,
            node,
            &mut |w, n, p| names.prompts(w, n, p),
            &mut |w, n, p| action(w, &names, n, p),
            &mut |w, n, p| {
                let name = w.string(n, p)?;
                Names::lookup(w, names.destinations, "destination", &name, n.at, p)
                    .map(DestinationId)
            },
        ));
    }
    let mut destinations = Vec::new();
    for &(name, section, node) in &destination_defs {
        w.file = sections[section].file.clone();
        destinations.push(crate::handoff::compile_destination(
            &mut w,
            name,
            node,
            &mut |w, n, p| action(w, &names, n, p),
        ));
    }
    w.file = None;
    let agents = match top.get("agents") {
        Some(node) => crate::agents::compile_agents(&mut w, node, &queue_names),
        None => Vec::new(),
    };
    let agent_codes = crate::agents::compile_codes(&mut w, top.get("agent_codes"));

    let entry = match top.get("entry") {
        Some(node) => w
            .string(node, "entry")
            .map(|e| names.menu(&mut w, &e, node.at, "entry"))
            .unwrap_or(MenuId(0)),
        None => {
            w.error(root.at, "", ErrorKind::Missing("entry"));
            MenuId(0)
        }
    };
    // Entry points by called number (the Request-URI user part).
    let mut entries = Vec::new();
    if let Some(node) = top.get("entries")
        && let Some(fields) = w.map(node, "entries", None)
    {
        for (number, target) in fields.iter() {
            let path = join("entries", number);
            if let Some(t) = w.string(target, &path) {
                entries.push((number.to_string(), names.menu(&mut w, &t, target.at, &path)));
            }
        }
    }
    // Caller routing rules, checked in order before the entry points.
    let mut callers = Vec::new();
    if let Some(node) = top.get("callers") {
        match &node.value {
            crate::yaml::Value::Seq(rules) => {
                for (i, rule) in rules.iter().enumerate() {
                    let path = join("callers", &i.to_string());
                    if let Some(r) = caller_rule(&mut w, &names, rule, &path) {
                        callers.push(r);
                    }
                }
            }
            _ => w.error(
                node.at,
                "callers",
                ErrorKind::Type {
                    expected: "a list of rules",
                    found: "something else",
                },
            ),
        }
    }

    let mut menus = Vec::new();
    for &(name, section, node) in &menu_defs {
        let file = sections[section].file.clone();
        w.file = file.clone();
        let menu = compile_menu(&mut w, &names, name, node)
            .map(|m| Menu {
                file: file.clone(),
                ..m
            })
            .unwrap_or_else(|| Menu {
                file: file.clone(),
                ..Menu::bare(name, node.at)
            });
        menus.push(menu);
    }
    w.file = None;
    // Prompts the mailboxes need that the config does not record: built-in versions.
    let mut needed: Vec<(&'static str, &str, Loc)> = Vec::new();
    for m in &mailboxes {
        for name in crate::handoff::prompts_needed(m) {
            if !prompt_names.iter().any(|p| p == name) && !needed.iter().any(|(n, ..)| *n == name) {
                needed.push((name, m.name.as_str(), m.at));
            }
        }
    }
    // Missing built-ins, by (mailbox, language), reported once each.
    let mut missing: Vec<(&str, Loc, String, Vec<&'static str>)> = Vec::new();
    for (name, mailbox, at) in needed {
        // One version per enabled language, or one for all when the config names none.
        let tags: Vec<(Option<usize>, &str)> = if languages.names.is_empty() {
            vec![(None, "en")]
        } else {
            languages
                .names
                .iter()
                .enumerate()
                .map(|(i, l)| (Some(i), l.as_str()))
                .collect()
        };
        let mut these = Vec::new();
        for (lang, tag) in tags {
            // The language's own built-in, else its primary language's (fr-CA -> fr).
            let primary = tag.split(['-', '_']).next().unwrap_or(tag);
            let wav = builtin(name, tag).or_else(|| builtin(name, primary));
            let Some(wav) = wav else {
                match missing
                    .iter_mut()
                    .find(|(m, _, l, _)| *m == mailbox && l == tag)
                {
                    Some((.., names)) => names.push(name),
                    None => missing.push((mailbox, at, tag.to_string(), vec![name])),
                }
                continue;
            };
            match Prompt::from_wav(name, &wav) {
                Ok(p) => {
                    these.push((lang, prompts.len()));
                    prompts.push(p);
                }
                Err(e) => w.error(
                    at,
                    &join("mailboxes", mailbox),
                    ErrorKind::Prompt {
                        file: format!("built-in {name} ({tag})"),
                        reason: e.to_string(),
                    },
                ),
            }
        }
        prompt_options.push(PromptOptions::default());
        prompt_names.push(name.to_string());
        variants.push(these);
    }
    for (mailbox, at, language, names) in missing {
        w.error(
            at,
            &join("mailboxes", mailbox),
            ErrorKind::NoBuiltin {
                prompts: names.join(", "),
                language,
            },
        );
    }
    if !queues.is_empty() {
        add_queue_builtins(
            &languages,
            builtin,
            &mut prompt_names,
            &mut prompt_options,
            &mut prompts,
            &mut variants,
        );
    }
    let mut errors = w.errors;
    errors.extend(crate::survey::refer_surveys(&menus, &destinations));
    if errors.is_empty() {
        errors.extend(endless_failure_loops(&menus, &queues));
        errors.extend(router_cycles(&menus));
    }
    errors.sort_by(|a, b| (&a.file, a.at).cmp(&(&b.file, b.at)));
    let warnings = if errors.is_empty() {
        let by_caller = callers.iter().filter_map(|r| match r.route {
            Route::Menu(m) => Some(m),
            Route::Reject => None,
        });
        let starts: Vec<MenuId> = std::iter::once(entry)
            .chain(entries.iter().map(|(_, m)| *m))
            .chain(by_caller)
            .collect();
        let mut warnings = unreachable_menus(&menus, &queues, &starts);
        warnings.extend(no_way_out(&menus));
        warnings.extend(silent_failures(&menus));
        let at = top.get("languages").map(|n| n.at);
        warnings.extend(borrowed_prompts(&borrowed, &languages, at));
        warnings.sort_by(|a, b| (&a.file, a.at).cmp(&(&b.file, b.at)));
        warnings
    } else {
        Vec::new()
    };
    if errors.is_empty() {
        Ok(Menus {
            entry,
            menus,
            prompts,
            prompt_names,
            prompt_options,
            warnings,
            entries,
            callers,
            schedules,
            variants,
            languages,
            mailboxes,
            queues,
            destinations,
            agents,
            agent_codes,
            surveys,
        })
    } else {
        Err(errors)
    }
}

/// One `callers:` rule: `{ match: [patterns], goto: menu }` or `{ match: [...], reject: true }`.
fn caller_rule(w: &mut Walker, names: &Names<'_>, node: &Node, path: &str) -> Option<CallerRule> {
    let f = w.map(node, path, Some(&["match", "goto", "reject"]))?;
    let patterns: Vec<String> = match f.get("match") {
        Some(m) => w
            .names(m, &join(path, "match"))
            .into_iter()
            .map(|(p, _)| p)
            .collect(),
        None => {
            w.error(node.at, path, ErrorKind::Missing("match"));
            return None;
        }
    };
    let route = match (f.get("goto"), f.get("reject")) {
        (Some(g), None) => {
            let here = join(path, "goto");
            let target = w.string(g, &here)?;
            Route::Menu(names.menu(w, &target, g.at, &here))
        }
        (None, Some(r)) => {
            if !w.boolean(r, &join(path, "reject"))? {
                w.error(
                    r.at,
                    &join(path, "reject"),
                    ErrorKind::Choice {
                        got: "false".into(),
                        allowed: "true (or use goto)",
                    },
                );
                return None;
            }
            Route::Reject
        }
        _ => {
            w.error(
                node.at,
                path,
                ErrorKind::Choice {
                    got: "this rule".into(),
                    allowed: "a rule with exactly one of goto, reject",
                },
            );
            return None;
        }
    };
    Some(CallerRule { patterns, route })
}

/// The definitions of one kind (`menus`, `mailboxes`...) across the main file and the
/// included ones, in order: (name, section, node). A name defined twice is an error.
fn definitions<'a>(
    w: &mut Walker,
    sections: &[Section<'a>],
    kind: &'static str,
    key: &str,
    get: impl Fn(&Section<'a>) -> Option<&'a Node>,
) -> Vec<(&'a str, usize, &'a Node)> {
    let mut defs: Vec<(&'a str, usize, &'a Node)> = Vec::new();
    for (i, section) in sections.iter().enumerate() {
        w.file = section.file.clone();
        let Some(fields) = get(section).and_then(|node| w.map(node, key, None)) else {
            continue;
        };
        for (name, node) in fields.iter() {
            if let Some((_, j, other)) = defs.iter().find(|(n, _, _)| *n == name) {
                let (other_file, other_at) = (sections[*j].file.clone(), other.at);
                w.error(
                    node.at,
                    &join(key, name),
                    ErrorKind::Redefined {
                        kind,
                        other_file,
                        other_at,
                    },
                );
                continue;
            }
            defs.push((name, i, node));
        }
    }
    w.file = None;
    defs
}

/// The names references resolve against.
struct Names<'a> {
    menus: &'a [String],
    prompts: &'a [String],
    /// Each prompt's versions: (language or `None` for all, index).
    versions: &'a [Vec<(Option<usize>, usize)>],
    langs: &'a Languages,
    schedules: &'a [String],
    languages: &'a [String],
    mailboxes: &'a [String],
    queues: &'a [String],
    destinations: &'a [String],
    surveys: &'a [String],
}

impl Names<'_> {
    /// The index of `name` among `names` (things of `kind`), or an error with a suggestion.
    fn lookup(
        w: &mut Walker,
        names: &[String],
        kind: &'static str,
        name: &str,
        at: Loc,
        path: &str,
    ) -> Option<usize> {
        let found = names.iter().position(|m| m == name);
        if found.is_none() {
            let hint = closest(name, names.iter().map(String::as_str));
            w.error(
                at,
                path,
                ErrorKind::Unknown {
                    kind,
                    name: name.to_string(),
                    hint,
                },
            );
        }
        found
    }

    fn menu(&self, w: &mut Walker, name: &str, at: Loc, path: &str) -> MenuId {
        MenuId(Names::lookup(w, self.menus, "menu", name, at, path).unwrap_or(0))
    }

    /// A menu's `prompt:`: names, and `{ digits: variable }` read-outs (which need the
    /// `digit_0` ... `digit_9` prompts).
    fn prompt_items(&self, w: &mut Walker, node: &Node, path: &str) -> Vec<PromptItem> {
        let items: Vec<&Node> = match &node.value {
            crate::yaml::Value::Seq(items) => items.iter().collect(),
            _ => vec![node],
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let here = if matches!(node.value, crate::yaml::Value::Seq(_)) {
                join(path, &i.to_string())
            } else {
                path.to_string()
            };
            if let crate::yaml::Value::Map(_) = item.value {
                let Some(f) = w.map(item, &here, Some(&["digits", "number"])) else {
                    continue;
                };
                if let Some(v) = f.get("number") {
                    if let Some(var) = w.string(v, &join(&here, "number")) {
                        self.check_number_words(w, item.at, &here);
                        out.push(PromptItem::Number(var));
                    }
                    continue;
                }
                let Some(var) = f
                    .get("digits")
                    .and_then(|v| w.string(v, &join(&here, "digits")))
                else {
                    continue;
                };
                let missing: Vec<String> = (0..10)
                    .map(|d| format!("digit_{d}"))
                    .filter(|n| !self.prompts.contains(n))
                    .collect();
                if !missing.is_empty() {
                    w.error(
                        item.at,
                        &here,
                        ErrorKind::Choice {
                            got: format!("a read-out without {}", missing.join(", ")),
                            allowed: "a config that defines the prompts digit_0 to digit_9",
                        },
                    );
                }
                out.push(PromptItem::Digits(var));
            } else {
                out.extend(
                    self.prompts(w, Some(item), &here)
                        .into_iter()
                        .map(PromptItem::Fixed),
                );
            }
        }
        out
    }

    /// A number read-out needs, for every enabled language (English when the config names
    /// none), a rule for composing numbers and a version of each word that rule uses.
    fn check_number_words(&self, w: &mut Walker, at: Loc, path: &str) {
        let langs: Vec<(Option<usize>, &str)> = if self.languages.is_empty() {
            vec![(None, "en")]
        } else {
            self.languages
                .iter()
                .enumerate()
                .map(|(i, l)| (Some(i), l.as_str()))
                .collect()
        };
        for (lang, tag) in langs {
            let Some(rule) = crate::numbers::Rule::for_language(tag) else {
                w.error(
                    at,
                    path,
                    ErrorKind::Choice {
                        got: format!("a number read-out in '{tag}'"),
                        allowed: "languages with number rules (en, fr, es); read other languages with { digits: ... }",
                    },
                );
                continue;
            };
            let missing: Vec<String> = crate::numbers::words(rule)
                .into_iter()
                .filter(|word| {
                    let Some(i) = self.prompts.iter().position(|p| p == word) else {
                        return true;
                    };
                    let versions = &self.versions[i];
                    let for_all = versions.iter().any(|(v, _)| v.is_none());
                    let found = |l: usize| versions.iter().any(|(v, _)| *v == Some(l));
                    !(for_all || lang.is_some_and(|l| self.langs.chain(l).any(found)))
                })
                .collect();
            if !missing.is_empty() {
                w.error(
                    at,
                    path,
                    ErrorKind::NumberWords {
                        language: tag.to_string(),
                        missing: missing.join(", "),
                    },
                );
            }
        }
    }

    fn prompts(&self, w: &mut Walker, node: Option<&Node>, path: &str) -> Vec<PromptId> {
        let Some(node) = node else { return Vec::new() };
        let mut out = Vec::new();
        for (name, at) in w.names(node, path) {
            out.extend(Names::lookup(w, self.prompts, "prompt", &name, at, path).map(PromptId));
        }
        out
    }
}

/// A menu's timeout field in seconds (1 to 60), or `default` when absent or refused.
pub(crate) fn timeout_field(
    w: &mut Walker,
    f: &crate::yaml::Fields<'_>,
    key: &str,
    base: &str,
    default: f64,
) -> f64 {
    let Some(t) = f.get(key) else {
        return default;
    };
    let path = join(base, key);
    match w.seconds(t, &path) {
        Some(v) if (1.0..=60.0).contains(&v) => v,
        Some(v) => {
            w.error(t.at, &path, ErrorKind::Timeout(v));
            default
        }
        None => default,
    }
}

fn compile_menu(w: &mut Walker, names: &Names<'_>, name: &str, node: &Node) -> Option<Menu> {
    let base = join("menus", name);
    let is_router = matches!(&node.value, crate::yaml::Value::Map(pairs) if pairs.iter().any(|(k, _)| k.value == crate::yaml::Value::Str("schedule".into())));
    if is_router {
        return compile_router(w, names, name, node);
    }
    let f = w.map(node, &base, Some(MENU_FIELDS))?;
    let prompt = match f.get("prompt") {
        Some(p) => names.prompt_items(w, p, &join(&base, "prompt")),
        None => {
            w.error(node.at, &base, ErrorKind::Missing("prompt"));
            Vec::new()
        }
    };
    let timeout = timeout_field(w, &f, "timeout", &base, DEFAULT_TIMEOUT);
    let retries = f
        .get("retries")
        .map(|r| retries(w, r, &join(&base, "retries")))
        .unwrap_or(Retries {
            no_input: DEFAULT_RETRIES,
            invalid: DEFAULT_RETRIES,
        });
    let invalid = names.prompts(w, f.get("invalid"), &join(&base, "invalid"));
    let no_input = names.prompts(w, f.get("no_input"), &join(&base, "no_input"));
    let mut options: [Option<Action>; 16] = Default::default();
    let collect = f
        .get("collect")
        .and_then(|c| compile_collect(w, names, c, &f, &join(&base, "collect")));
    match f.get("options") {
        Some(_) if f.get("collect").is_some() => {
            w.error(
                node.at,
                &base,
                ErrorKind::Choice {
                    got: "collect and options".into(),
                    allowed: "a menu that either collects digits or offers options",
                },
            );
        }
        None if f.get("collect").is_some() => {}
        Some(o) => {
            let opath = join(&base, "options");
            if let Some(of) = w.map(o, &opath, None) {
                if of.iter().next().is_none() {
                    w.error(o.at, &opath, ErrorKind::NoOptions);
                }
                for (key, a) in of.iter() {
                    let path = join(&opath, key);
                    let mut chars = key.chars();
                    match (chars.next().and_then(Digit::from_char), chars.next()) {
                        (Some(d), None) => {
                            options[d.event_code() as usize] = action(w, names, a, &path)
                        }
                        _ => w.error(a.at, &path, ErrorKind::BadKey(key.to_string())),
                    }
                }
            }
        }
        None => w.error(node.at, &base, ErrorKind::Missing("options")),
    }
    // Extensions: the rule deciding between a key and a code is the first digit. A first
    // digit that is an option key is that option, at once; any other digit that starts a
    // code begins dialling. So a code may not start with an option key, and no code may be
    // the start of another (the caller could never reach the longer one).
    let mut extensions: Vec<(Vec<Digit>, Action)> = Vec::new();
    if let Some(x) = f.get("extensions") {
        let xpath = join(&base, "extensions");
        if let Some(xf) = w.map(x, &xpath, None) {
            for (code, a) in xf.iter() {
                let path = join(&xpath, code);
                let digits: Option<Vec<Digit>> = code.chars().map(Digit::from_char).collect();
                let Some(digits) = digits.filter(|d| d.len() >= 2 && !d.contains(&Digit::Pound))
                else {
                    w.error(a.at, &path, ErrorKind::BadExtension(code.to_string()));
                    continue;
                };
                if options[digits[0].event_code() as usize].is_some() {
                    w.error(a.at, &path, ErrorKind::Ambiguous(format!("'{code}' starts with {}, which is an option key: pressing {} selects the option at once", digits[0], digits[0])));
                    continue;
                }
                if let Some((other, _)) = extensions
                    .iter()
                    .find(|(o, _)| o.starts_with(&digits) || digits.starts_with(o))
                {
                    let other: String = other.iter().map(|d| d.as_char()).collect();
                    w.error(
                        a.at,
                        &path,
                        ErrorKind::Ambiguous(format!(
                            "'{code}' and '{other}': one is the start of the other"
                        )),
                    );
                    continue;
                }
                if let Some(act) = action(w, names, a, &path) {
                    extensions.push((digits, act));
                }
            }
        }
    }
    let inter_digit = timeout_field(w, &f, "inter_digit_timeout", &base, DEFAULT_INTER_DIGIT);
    let on_failure = f
        .get("on_failure")
        .and_then(|a| action(w, names, a, &join(&base, "on_failure")))
        .unwrap_or(Action::Hangup(Vec::new()));
    Some(Menu {
        file: None,
        at: node.at,
        name: name.to_string(),
        prompt,
        extensions,
        inter_digit_timeout: Duration::from_secs_f64(inter_digit),
        collect,
        timeout: Duration::from_secs_f64(timeout),
        retries,
        invalid,
        no_input,
        options,
        on_failure,
        router: None,
    })
}

/// `retries: 2` (both kinds) or `retries: { no_input: 2, invalid: 3 }`.
fn retries(w: &mut Walker, node: &Node, path: &str) -> Retries {
    let default = Retries {
        no_input: DEFAULT_RETRIES,
        invalid: DEFAULT_RETRIES,
    };
    if let crate::yaml::Value::Map(_) = node.value {
        let Some(f) = w.map(node, path, Some(&["no_input", "invalid"])) else {
            return default;
        };
        let mut get = |key: &str| {
            f.get(key)
                .and_then(|n| w.count(n, &join(path, key)))
                .unwrap_or(DEFAULT_RETRIES)
        };
        Retries {
            no_input: get("no_input"),
            invalid: get("invalid"),
        }
    } else {
        w.count(node, path)
            .map(|n| Retries {
                no_input: n,
                invalid: n,
            })
            .unwrap_or(default)
    }
}

/// One recording of a prompt: a file name, or { file | say (+ voice), interruptible, type_ahead }.
fn variant(
    w: &mut Walker,
    spec: &Node,
    path: &str,
    dir: &str,
    load: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
    say: &mut Speaker<'_>,
) -> (Option<Prompt>, PromptOptions) {
    let mut o = PromptOptions::default();
    let source = match &spec.value {
        crate::yaml::Value::Map(_) => match w.map(spec, path, Some(PROMPT_FIELDS)) {
            Some(f) => {
                if let Some(n) = f.get("interruptible") {
                    o.interruptible = w.boolean(n, &join(path, "interruptible")).unwrap_or(true);
                }
                if let Some(n) = f.get("type_ahead") {
                    let tpath = join(path, "type_ahead");
                    match w.string(n, &tpath).as_deref() {
                        Some("keep") => o.type_ahead = true,
                        Some("discard") => o.type_ahead = false,
                        Some(other) => w.error(
                            n.at,
                            &tpath,
                            ErrorKind::Choice {
                                got: other.to_string(),
                                allowed: "keep, discard",
                            },
                        ),
                        None => {}
                    }
                }
                let voice = f
                    .get("voice")
                    .and_then(|v| w.string(v, &join(path, "voice")));
                let sources = ["file", "say", "silence", "tone"]
                    .iter()
                    .filter(|k| f.get(k).is_some())
                    .count();
                if sources != 1 {
                    w.error(
                        spec.at,
                        path,
                        ErrorKind::Choice {
                            got: "this prompt".into(),
                            allowed: "a prompt with exactly one of file, say, silence, tone",
                        },
                    );
                    None
                } else if let Some(file) = f.get("file") {
                    w.string(file, path).map(|p| (Source::File(p), file.at))
                } else if let Some(text) = f.get("say") {
                    w.string(text, &join(path, "say")).map(|t| {
                        (
                            Source::Say {
                                text: t,
                                voice: voice.unwrap_or_else(|| "en".into()),
                            },
                            text.at,
                        )
                    })
                } else if let Some(n) = f.get("silence") {
                    let here = join(path, "silence");
                    match w.seconds(n, &here) {
                        Some(secs) if (0.02..=60.0).contains(&secs) => {
                            Some((Source::Silence(secs), n.at))
                        }
                        Some(secs) => {
                            w.error(n.at, &here, ErrorKind::Timeout(secs));
                            None
                        }
                        None => None,
                    }
                } else if let Some(n) = f.get("tone") {
                    let here = join(path, "tone");
                    match w.string(n, &here).as_deref() {
                        Some("beep") => Some((Source::Beep, n.at)),
                        Some(other) => {
                            w.error(
                                n.at,
                                &here,
                                ErrorKind::Choice {
                                    got: other.to_string(),
                                    allowed: "beep",
                                },
                            );
                            None
                        }
                        None => None,
                    }
                } else {
                    None
                }
            }
            None => None,
        },
        _ => w.string(spec, path).map(|p| (Source::File(p), spec.at)),
    };
    let prompt = source.and_then(|(source, at)| {
        let (label, loaded) = match &source {
            // Generated audio needs no file.
            Source::Silence(secs) => {
                let samples = vec![0i16; (secs * ivr_audio::SAMPLE_RATE as f64) as usize];
                return Some(Prompt::from_samples(&format!("silence {secs} s"), &samples));
            }
            Source::Beep => return Some(Prompt::from_samples("beep", &ivr_audio::tone::beep())),
            Source::File(file) if !dir.is_empty() => {
                let full = format!("{dir}/{file}");
                (full.clone(), load(&full))
            }
            Source::File(file) => (file.clone(), load(file)),
            Source::Say { text, voice } => (format!("say \"{text}\""), say(text, voice)),
        };
        match loaded
            .and_then(|bytes| Prompt::from_wav(&label, &bytes).map_err(|e| e.reason.to_string()))
        {
            Ok(p) => Some(p),
            Err(reason) => {
                w.error(
                    at,
                    path,
                    ErrorKind::Prompt {
                        file: label,
                        reason,
                    },
                );
                None
            }
        }
    });
    (prompt, o)
}

fn compile_languages(w: &mut Walker, node: &Node) -> Languages {
    let mut out = Languages::default();
    let Some(f) = w.map(node, "languages", Some(&["enabled", "fallback"])) else {
        return out;
    };
    match f.get("enabled") {
        Some(e) => {
            out.names = w
                .names(e, "languages.enabled")
                .into_iter()
                .map(|(n, _)| n)
                .collect()
        }
        None => w.error(node.at, "languages", ErrorKind::Missing("enabled")),
    }
    out.fallback = vec![Vec::new(); out.names.len()];
    if let Some(fb) = f.get("fallback")
        && let Some(chains) = w.map(fb, "languages.fallback", None)
    {
        for (lang, chain) in chains.iter() {
            let path = join("languages.fallback", lang);
            let Some(i) = Names::lookup(w, &out.names, "language", lang, chain.at, &path) else {
                continue;
            };
            for (to, at) in w.names(chain, &path) {
                if let Some(j) = Names::lookup(w, &out.names, "language", &to, at, &path) {
                    out.fallback[i].push(j);
                }
            }
        }
    }
    out
}

/// `collect: { into, min, max, terminator }` with the menu's `then:` action.
fn compile_collect(
    w: &mut Walker,
    names: &Names<'_>,
    node: &Node,
    menu: &crate::yaml::Fields<'_>,
    path: &str,
) -> Option<Collect> {
    let f = w.map(node, path, Some(&["into", "min", "max", "terminator"]))?;
    let into = match f.get("into") {
        Some(n) => w.string(n, &join(path, "into"))?,
        None => {
            w.error(node.at, path, ErrorKind::Missing("into"));
            return None;
        }
    };
    let min = f
        .get("min")
        .and_then(|n| w.count(n, &join(path, "min")))
        .unwrap_or(1) as usize;
    let max = f
        .get("max")
        .and_then(|n| w.count(n, &join(path, "max")))
        .unwrap_or(20) as usize;
    if min == 0 || min > max || max > 32 {
        w.error(
            node.at,
            path,
            ErrorKind::Choice {
                got: format!("min {min}, max {max}"),
                allowed: "1 <= min <= max <= 32",
            },
        );
        return None;
    }
    let terminator = match f.get("terminator") {
        Some(n) => {
            let here = join(path, "terminator");
            let text = w.string(n, &here)?;
            let mut chars = text.chars();
            match (chars.next().and_then(Digit::from_char), chars.next()) {
                (Some(d), None) => d,
                _ => {
                    w.error(n.at, &here, ErrorKind::BadKey(text));
                    return None;
                }
            }
        }
        None => Digit::Pound,
    };
    let base = path.trim_end_matches(".collect");
    let then = match menu.get("then") {
        Some(a) => action(w, names, a, &join(base, "then"))?,
        None => {
            w.error(node.at, base, ErrorKind::Missing("then"));
            return None;
        }
    };
    Some(Collect {
        into,
        min,
        max,
        terminator,
        then,
    })
}

/// A router menu: `{ schedule, open, closed, holiday? }`.
fn compile_router(w: &mut Walker, names: &Names<'_>, name: &str, node: &Node) -> Option<Menu> {
    let base = join("menus", name);
    let f = w.map(node, &base, Some(ROUTER_FIELDS))?;
    let mut target = |key: &'static str| -> Option<MenuId> {
        let here = join(&base, key);
        match f.get(key) {
            Some(n) => w.string(n, &here).map(|t| names.menu(w, &t, n.at, &here)),
            None => {
                if key != "holiday" {
                    w.error(node.at, &base, ErrorKind::Missing(key));
                }
                None
            }
        }
    };
    let (open, closed, holiday) = (target("open"), target("closed"), target("holiday"));
    let snode = f.get("schedule")?;
    let spath = join(&base, "schedule");
    let sname = w.string(snode, &spath)?;
    let schedule = Names::lookup(w, names.schedules, "schedule", &sname, snode.at, &spath)?;
    let (open, closed) = (open?, closed?);
    Some(Menu {
        router: Some(Router {
            schedule,
            open,
            closed,
            holiday: holiday.unwrap_or(closed),
        }),
        ..Menu::bare(name, node.at)
    })
}

/// An action: exactly one verb (goto, play, hangup, repeat, back, voicemail, queue,
/// transfer), with optional `language:` and `set:` modifiers; a modifier alone replays the
/// menu.
fn action(w: &mut Walker, names: &Names<'_>, node: &Node, path: &str) -> Option<Action> {
    let f = w.map(node, path, Some(ACTION_FIELDS))?;
    // `language:` may come with the one other verb ({ language: en, goto: main }); alone, it
    // switches language and replays the menu.
    let language = match f.get("language") {
        Some(n) => {
            let here = join(path, "language");
            let lang = w.string(n, &here)?;
            Some(Names::lookup(
                w,
                names.languages,
                "language",
                &lang,
                n.at,
                &here,
            )?)
        }
        None => None,
    };
    let set = match f.get("set") {
        Some(n) => Some(variables(w, n, &join(path, "set"))?),
        None => None,
    };
    let present: Vec<(&str, &Node)> = f.iter().filter(|(k, _)| !MODIFIERS.contains(k)).collect();
    if present.len() > 1 || (present.is_empty() && language.is_none() && set.is_none()) {
        w.error(node.at, path, ErrorKind::BadAction);
        return None;
    }
    let verb = match present.first() {
        None => Action::Repeat,
        Some(&(key, value)) => {
            let here = join(path, key);
            let named = |w: &mut Walker, list: &[String], kind: &'static str| {
                let name = w.string(value, &here)?;
                Names::lookup(w, list, kind, &name, value.at, &here)
            };
            match key {
                "goto" => {
                    let target = w.string(value, &here)?;
                    Action::Goto(names.menu(w, &target, value.at, &here))
                }
                "play" => Action::Play(names.prompts(w, Some(value), &here)),
                "hangup" => Action::Hangup(names.prompts(w, Some(value), &here)),
                "voicemail" => Action::Voicemail(MailboxId(named(w, names.mailboxes, "mailbox")?)),
                "queue" => {
                    let queue =
                        crate::handoff::queue_action(w, value, &here, &mut |w, name, at, p| {
                            Names::lookup(w, names.queues, "queue", name, at, p)
                        });
                    crate::survey::with_survey(w, value, &here, names.surveys, queue?)?
                }
                "transfer" => {
                    let dest = crate::survey::transfer_action(w, value, &here, &mut |w, n, p| {
                        let name = w.string(n, p)?;
                        Names::lookup(w, names.destinations, "destination", &name, n.at, p)
                    });
                    crate::survey::with_survey(w, value, &here, names.surveys, dest?)?
                }
                // repeat: true, back: true
                _ => {
                    if !w.boolean(value, &here)? {
                        w.error(value.at, &here, ErrorKind::BadAction);
                        return None;
                    }
                    if key == "back" {
                        Action::Back
                    } else {
                        Action::Repeat
                    }
                }
            }
        }
    };
    let verb = match set {
        Some(vars) => Action::Set(vars, Box::new(verb)),
        None => verb,
    };
    Some(match language {
        Some(l) => Action::Language(l, Box::new(verb)),
        None => verb,
    })
}

/// `set: { name: value, ... }`: variable names are letters, digits and `_`; values are
/// text, numbers or booleans, kept as text.
fn variables(w: &mut Walker, node: &Node, path: &str) -> Option<Vec<(String, String)>> {
    let f = w.map(node, path, None)?;
    let mut out = Vec::new();
    for (name, value) in f.iter() {
        let here = join(path, name);
        if !is_variable_name(name) {
            w.error(
                value.at,
                &here,
                ErrorKind::Choice {
                    got: name.to_string(),
                    allowed: "a variable name (letters, digits and _)",
                },
            );
            continue;
        }
        let text = match &value.value {
            crate::yaml::Value::Str(s) => s.clone(),
            crate::yaml::Value::Int(i) => i.to_string(),
            crate::yaml::Value::Float(x) => x.to_string(),
            crate::yaml::Value::Bool(b) => b.to_string(),
            other => {
                w.error(
                    value.at,
                    &here,
                    ErrorKind::Type {
                        expected: "text, a number or a boolean",
                        found: other.kind(),
                    },
                );
                continue;
            }
        };
        out.push((name.to_string(), text));
    }
    Some(out)
}

/// Letters, digits and `_`, not starting with a digit.
pub(crate) fn is_variable_name(name: &str) -> bool {
    name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.chars().next().is_some_and(|c| !c.is_ascii_digit())
}

#[cfg(test)]
pub(crate) mod tests;

/// The built-in queue announcement prompts and number words the config does not record
/// (see [`crate::handoff::queue_builtins_needed`]), one version per enabled language (or
/// English for a config that names none). Unlike a mailbox's prompts these are optional: a
/// phrase some enabled language has no built-in for is left out for every language (the
/// announcement is then silent, as without recordings, rather than in the wrong language),
/// and a number word gets the versions of the languages whose rule uses it.
fn add_queue_builtins(
    languages: &Languages,
    builtin: &mut Builtin<'_>,
    prompt_names: &mut Vec<String>,
    prompt_options: &mut Vec<PromptOptions>,
    prompts: &mut Vec<Prompt>,
    variants: &mut Vec<Vec<(Option<usize>, usize)>>,
) {
    let tags: Vec<(Option<usize>, &str)> = if languages.names.is_empty() {
        vec![(None, "en")]
    } else {
        languages
            .names
            .iter()
            .enumerate()
            .map(|(i, l)| (Some(i), l.as_str()))
            .collect()
    };
    let rules: Vec<crate::numbers::Rule> = tags
        .iter()
        .map(|(_, t)| {
            crate::numbers::Rule::for_language(t).unwrap_or(crate::numbers::Rule::English)
        })
        .collect();
    for name in crate::handoff::queue_builtins_needed(prompt_names, &rules) {
        let phrase = crate::handoff::QUEUE_PROMPTS.contains(&name.as_str());
        let mut these = Vec::new();
        let mut complete = true;
        for (&(lang, tag), rule) in tags.iter().zip(&rules) {
            if !phrase && !crate::numbers::words(*rule).contains(&name) {
                continue;
            }
            let primary = tag.split(['-', '_']).next().unwrap_or(tag);
            let found = builtin(&name, tag)
                .or_else(|| builtin(&name, primary))
                .and_then(|wav| Prompt::from_wav(&name, &wav).ok());
            match found {
                Some(p) => {
                    these.push((lang, prompts.len()));
                    prompts.push(p);
                }
                None => complete = false,
            }
        }
        if these.is_empty() || (phrase && !complete) {
            // Leave the prompt out; drop the recordings just decoded.
            prompts.truncate(prompts.len() - these.len());
            continue;
        }
        prompt_options.push(PromptOptions::default());
        prompt_names.push(name);
        variants.push(these);
    }
}
