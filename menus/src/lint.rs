//! The checks run on a config once it compiles: endless loops and router cycles (refused),
//! and the warnings (unreachable menus, no way out, silent hang-ups, borrowed prompts).

use crate::error::{CompileError, ErrorKind, Loc};
use crate::model::{Action, Languages, Menu, MenuId, Queue, QueueId};
/// The menus an action sends the caller to: a goto's target, and the menus a queue's
/// `on_timeout` leads to (following queue to queue).
fn action_targets(action: &Action, queues: &[Queue], out: &mut Vec<usize>) {
    let mut action = action;
    let mut seen: Vec<usize> = Vec::new();
    loop {
        match action.verb() {
            Action::Goto(MenuId(t)) => out.push(*t),
            Action::Queue(QueueId(q), _) if !seen.contains(q) => {
                seen.push(*q);
                action = &queues[*q].on_timeout;
                continue;
            }
            _ => {}
        }
        break;
    }
}

/// A caller who never presses a key follows `on_failure` from menu to menu (through the
/// `on_timeout` of queues, which a silent caller also reaches). If some such path never
/// ends, the call could loop forever: refused, naming the loop. `back` may return to any
/// menu that leads to the one it is in.
pub(crate) fn endless_failure_loops(menus: &[Menu], queues: &[Queue]) -> Vec<CompileError> {
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); menus.len()];
    let mut targets = Vec::new();
    for (i, m) in menus.iter().enumerate() {
        for a in m.actions() {
            targets.clear();
            action_targets(a, queues, &mut targets);
            for t in &targets {
                if !preds[*t].contains(&i) {
                    preds[*t].push(i);
                }
            }
        }
    }
    let next = |at: usize| -> Vec<usize> {
        let mut out = Vec::new();
        match menus[at].on_failure.verb() {
            Action::Repeat | Action::Play(_) => out.push(at),
            Action::Back if preds[at].is_empty() => out.push(at),
            Action::Back => out.extend(&preds[at]),
            a => action_targets(a, queues, &mut out),
        }
        out
    };
    // Depth-first search for cycles; each is reported once, from its first menu.
    let mut errors = Vec::new();
    let mut reported: Vec<usize> = Vec::new();
    let mut done = vec![false; menus.len()];
    for start in 0..menus.len() {
        if done[start] {
            continue;
        }
        let mut path: Vec<usize> = vec![start];
        let mut stack: Vec<Vec<usize>> = vec![next(start)];
        while let Some(todo) = stack.last_mut() {
            let Some(n) = todo.pop() else {
                stack.pop();
                if let Some(finished) = path.pop() {
                    done[finished] = true;
                }
                continue;
            };
            if let Some(pos) = path.iter().position(|p| *p == n) {
                let cycle = &path[pos..];
                if !cycle.iter().any(|c| reported.contains(c)) {
                    reported.extend_from_slice(cycle);
                    let mut names: Vec<&str> =
                        cycle.iter().map(|c| menus[*c].name.as_str()).collect();
                    names.push(&menus[n].name);
                    let first = &menus[cycle[0]];
                    errors.push(CompileError {
                        file: first.file.clone(),
                        at: Some(first.at),
                        path: format!("menus.{}.on_failure", first.name),
                        kind: ErrorKind::EndlessLoop(names.join(" -> ")),
                    });
                }
                continue;
            }
            if done[n] {
                continue;
            }
            path.push(n);
            stack.push(next(n));
        }
    }
    errors
}

/// Routers that lead back to themselves through other routers would never play anything.
pub(crate) fn router_cycles(menus: &[Menu]) -> Vec<CompileError> {
    let mut errors = Vec::new();
    for (start, m) in menus.iter().enumerate() {
        if m.router.is_none() {
            continue;
        }
        // Depth-first over router-to-router edges from this router.
        let mut stack = vec![(start, vec![start])];
        while let Some((at, path)) = stack.pop() {
            let Some(r) = menus[at].router else { continue };
            for MenuId(next) in [r.open, r.closed, r.holiday] {
                if next == start {
                    let mut names: Vec<&str> =
                        path.iter().map(|i| menus[*i].name.as_str()).collect();
                    names.push(&m.name);
                    errors.push(CompileError {
                        file: m.file.clone(),
                        at: Some(m.at),
                        path: format!("menus.{}", m.name),
                        kind: ErrorKind::RouterLoop(names.join(" -> ")),
                    });
                    stack.clear();
                    break;
                }
                if menus[next].router.is_some() && !path.contains(&next) {
                    let mut p = path.clone();
                    p.push(next);
                    stack.push((next, p));
                }
            }
        }
    }
    errors
}

/// Menus no key, failure path or the entry leads to.
pub(crate) fn unreachable_menus(
    menus: &[Menu],
    queues: &[Queue],
    starts: &[MenuId],
) -> Vec<CompileError> {
    let mut seen = vec![false; menus.len()];
    let mut stack: Vec<usize> = starts.iter().map(|m| m.0).collect();
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        let m = &menus[i];
        for a in m.actions() {
            action_targets(a, queues, &mut stack);
        }
        if let Some(r) = m.router {
            stack.extend([r.open.0, r.closed.0, r.holiday.0]);
        }
    }
    menus
        .iter()
        .zip(seen)
        .filter(|(_, s)| !s)
        .map(|(m, _)| CompileError {
            file: m.file.clone(),
            at: Some(m.at),
            path: format!("menus.{}", m.name),
            kind: ErrorKind::Unreachable,
        })
        .collect()
}

/// Menus from which no key path (options, extensions, entries, `back`) reaches a hang-up or
/// a handoff: a caller who keeps pressing keys goes round in circles.
pub(crate) fn no_way_out(menus: &[Menu]) -> Vec<CompileError> {
    let exits = |a: &Action| matches!(a.verb(), Action::Hangup(_)) || a.handoff().is_some();
    // Key edges (not on_failure) between menus; `back` may go to any menu leading here.
    let keys = |m: &Menu| -> Vec<Action> {
        m.options
            .iter()
            .flatten()
            .chain(m.extensions.iter().map(|(_, a)| a))
            .chain(m.collect.iter().map(|c| &c.then))
            .cloned()
            .collect()
    };
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); menus.len()];
    for (i, m) in menus.iter().enumerate() {
        for a in m.actions() {
            if let Action::Goto(MenuId(t)) = a.verb() {
                preds[*t].push(i);
            }
        }
    }
    // Fixed point: a menu can get out if one of its keys exits or leads to one that can.
    let mut out: Vec<bool> = menus
        .iter()
        .map(|m| m.router.is_some() || keys(m).iter().any(exits))
        .collect();
    let mut changed = true;
    while changed {
        changed = false;
        for (i, m) in menus.iter().enumerate() {
            if out[i] {
                continue;
            }
            let ok = keys(m).iter().any(|a| match a.verb() {
                Action::Goto(MenuId(t)) => out[*t],
                Action::Back => preds[i].iter().any(|p| out[*p]),
                _ => false,
            });
            if ok {
                out[i] = true;
                changed = true;
            }
        }
    }
    menus
        .iter()
        .zip(out)
        .filter(|(_, ok)| !ok)
        .map(|(m, _)| CompileError {
            file: m.file.clone(),
            at: Some(m.at),
            path: format!("menus.{}", m.name),
            kind: ErrorKind::NoWayOut,
        })
        .collect()
}

/// Menus that hang up on a silent caller without a word: no `no_input` prompt and an
/// `on_failure` that hangs up with nothing to say.
pub(crate) fn silent_failures(menus: &[Menu]) -> Vec<CompileError> {
    menus
        .iter()
        .filter(|m| m.router.is_none() && m.no_input.is_empty())
        .filter(|m| matches!(m.on_failure.verb(), Action::Hangup(p) if p.is_empty()))
        .map(|m| CompileError {
            file: m.file.clone(),
            at: Some(m.at),
            path: format!("menus.{}", m.name),
            kind: ErrorKind::SilentFailure,
        })
        .collect()
}

/// Languages that borrow prompts from a fallback language (`borrowed[i]`: the prompts
/// language `i` has no version of), one warning each, at the `languages:` section.
pub(crate) fn borrowed_prompts(
    borrowed: &[Vec<String>],
    languages: &Languages,
    at: Option<Loc>,
) -> Vec<CompileError> {
    let mut warnings = Vec::new();
    for (i, prompts) in borrowed.iter().enumerate() {
        if !prompts.is_empty() {
            warnings.push(CompileError {
                file: None,
                at,
                path: "languages".into(),
                kind: ErrorKind::Borrowed {
                    language: languages.names[i].clone(),
                    prompts: prompts.join(", "),
                },
            });
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use crate::ErrorKind;
    use crate::compile::compile;
    use crate::compile::tests::{YAML, loader};
    use crate::model::Menus;

    #[test]
    fn a_silent_caller_must_not_loop_forever() {
        let looping = YAML
            .replace("on_failure: { hangup: bye }", "on_failure: { goto: sales }")
            .replace(
                "      \"0\": { repeat: true }\n",
                "      \"0\": { repeat: true }\n    on_failure: { goto: main }\n",
            );
        let e = compile(&looping, &mut loader).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].to_string()
                .contains("loop forever: main -> sales -> main"),
            "{}",
            e[0]
        );
        let repeat = YAML.replace(
            "on_failure: { hangup: bye }",
            "on_failure: { repeat: true }",
        );
        let e = compile(&repeat, &mut loader).unwrap_err();
        assert!(e[0].to_string().starts_with("10:5: menus.main.on_failure: a caller who presses nothing would loop forever: main -> main"), "{}", e[0]);
    }

    #[test]
    fn unreachable_menus_are_warnings() {
        let extra = format!(
            "{YAML}  orphan:\n    prompt: bye\n    options:\n      \"1\": {{ goto: main }}\n"
        );
        let m = compile(&extra, &mut loader).unwrap();
        let unreachable = |m: &Menus| -> Vec<String> {
            m.warnings()
                .iter()
                .filter(|w| w.kind == ErrorKind::Unreachable)
                .map(ToString::to_string)
                .collect()
        };
        let w = unreachable(&m);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].ends_with(
                "menus.orphan: unreachable: no key, failure or entry leads to this menu"
            ),
            "{w:?}"
        );
        assert!(unreachable(&compile(YAML, &mut loader).unwrap()).is_empty());
    }

    #[test]
    fn warnings_for_no_way_out_silent_failures_and_borrowed_prompts() {
        let yaml = r#"
entry: main
languages: { enabled: [fr, fr-CA], fallback: { fr-CA: [fr] } }
prompts:
  hi: { fr: welcome.wav }
  bye: bye.wav
menus:
  main:
    prompt: hi
    no_input: bye
    options:
      "1": { goto: loop_a }
      "9": { hangup: bye }
    on_failure: { hangup: bye }
  loop_a:
    prompt: hi
    no_input: bye
    options: { "1": { goto: loop_b } }
    on_failure: { hangup: bye }
  loop_b:
    prompt: hi
    options: { "1": { goto: loop_a } }
"#;
        let m = compile(yaml, &mut loader).unwrap();
        let w: Vec<String> = m.warnings().iter().map(ToString::to_string).collect();
        assert_eq!(
            w,
            [
                "3:12: languages: language 'fr-CA' has no version of hi: its callers hear a fallback language's",
                "16:5: menus.loop_a: no key leads out (to a hang-up, a mailbox, a queue or a transfer), here or in the menus keys lead to: callers can only leave by running out of retries",
                "21:5: menus.loop_b: no key leads out (to a hang-up, a mailbox, a queue or a transfer), here or in the menus keys lead to: callers can only leave by running out of retries",
                "21:5: menus.loop_b: no no_input prompt and a silent on_failure: a caller who presses nothing hears the menu again, then is hung up on without a word",
            ]
        );
        // `back` is a way out when the menu it returns to has one.
        let with_back = yaml.replace(
            "options: { \"1\": { goto: loop_b } }",
            "options: { \"1\": { goto: loop_b }, \"*\": { back: true } }",
        );
        assert_ne!(with_back, yaml);
        let m = compile(&with_back, &mut loader).unwrap();
        assert!(
            m.warnings().iter().all(|w| w.kind != ErrorKind::NoWayOut),
            "{:?}",
            m.warnings()
        );
    }
}
