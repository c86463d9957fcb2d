//! Call-flow graphs of a compiled config, as Mermaid or Graphviz DOT text (`ivr graph`).
//!
//! Nodes are menus plus one "hang up" node; edges are every way out of a menu: each key,
//! the retry after an invalid key or a timeout, and the action once the retries are spent.

use crate::model::{Action, MenuId, Menus};
use ivr_audio::Digit;
use std::fmt::Write;

/// One edge: from a menu, to a menu (or hang-up), with a label and a kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The menu it leaves.
    pub from: String,
    /// The menu it reaches, or `None` for hang-up.
    pub to: Option<String>,
    /// What takes it (`1`, `1: play sales`, `invalid / timeout`, `retries spent`).
    pub label: String,
    /// Whether it is a failure path (drawn dashed).
    pub failure: bool,
}

/// Every edge of the flow, in menu order then key order.
pub fn edges(menus: &Menus) -> Vec<Edge> {
    let mut out = Vec::new();
    for i in 0..menus.len() {
        let m = menus.menu(MenuId::nth(i));
        let mut push = |action: &Action, label: String, failure: bool| {
            let label = match action {
                Action::Language(l, _) => format!(
                    "{label} ({})",
                    menus.languages().get(*l).map(String::as_str).unwrap_or("?")
                ),
                _ => label,
            };
            let (to, label) = match action.verb() {
                Action::Goto(t) => (Some(menus.menu(*t).name.clone()), label),
                Action::Repeat => (Some(m.name.clone()), format!("{label}: repeat")),
                Action::Play(p) => {
                    let names: Vec<&str> = p.iter().map(|id| menus.prompt_name(*id)).collect();
                    (
                        Some(m.name.clone()),
                        format!("{label}: play {}", names.join(", ")),
                    )
                }
                Action::Hangup(_) | Action::Language(..) => (None, label),
            };
            out.push(Edge {
                from: m.name.clone(),
                to,
                label,
                failure,
            });
        };
        for d in Digit::ALL {
            if let Some(a) = &m.options[d.event_code() as usize] {
                push(a, d.to_string(), false);
            }
        }
        for (code, a) in &m.extensions {
            push(a, code.iter().map(|d| d.as_char()).collect(), false);
        }
        if let Some(c) = &m.collect {
            push(
                &c.then,
                format!("{}-{} digits -> {}", c.min, c.max, c.into),
                false,
            );
        }
        let r = m.retries;
        if r.no_input > 0 || r.invalid > 0 {
            let label = format!(
                "invalid (x{}) / {} s timeout (x{})",
                r.invalid,
                m.timeout.as_secs_f64(),
                r.no_input
            );
            push(&Action::Repeat, label, true);
        }
        push(&m.on_failure, "retries spent".to_string(), true);
    }
    out
}

/// Edges with the same ends and kind, merged; labels kept in order.
fn grouped(edges: Vec<Edge>) -> Vec<(Edge, Vec<String>)> {
    let mut out: Vec<(Edge, Vec<String>)> = Vec::new();
    for e in edges {
        match out
            .iter_mut()
            .find(|(g, _)| g.from == e.from && g.to == e.to && g.failure == e.failure)
        {
            Some((_, labels)) => labels.push(e.label),
            None => {
                let label = e.label.clone();
                out.push((e, vec![label]));
            }
        }
    }
    out
}

fn id(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn escape(label: &str) -> String {
    label.replace('"', "'")
}

/// The flow as a Mermaid flowchart.
pub fn mermaid(menus: &Menus) -> String {
    let mut s = String::from("flowchart TD\n");
    let entry = &menus.menu(menus.entry()).name;
    let _ = writeln!(s, "    start((call)) --> m_{}", id(entry));
    for i in 0..menus.len() {
        let name = &menus.menu(MenuId::nth(i)).name;
        let _ = writeln!(s, "    m_{}[\"{}\"]", id(name), escape(name));
    }
    s.push_str("    hangup((hang up))\n");
    for e in edges(menus) {
        let to =
            e.to.as_deref()
                .map(|t| format!("m_{}", id(t)))
                .unwrap_or_else(|| "hangup".into());
        let arrow = if e.failure { "-.->" } else { "-->" };
        let _ = writeln!(
            s,
            "    m_{} {arrow}|\"{}\"| {to}",
            id(&e.from),
            escape(&e.label)
        );
    }
    s
}

/// The flow as Graphviz DOT.
pub fn dot(menus: &Menus) -> String {
    let mut s = String::from(
        "digraph ivr {\n    rankdir=LR;\n    node [shape=box, style=rounded, fontname=\"Helvetica\"];\n    edge [fontname=\"Helvetica\", fontsize=10];\n",
    );
    s.push_str("    start [shape=circle, label=\"call\"];\n    hangup [shape=doublecircle, label=\"hang up\"];\n");
    let entry = &menus.menu(menus.entry()).name;
    let _ = writeln!(s, "    start -> m_{};", id(entry));
    for i in 0..menus.len() {
        let name = &menus.menu(MenuId::nth(i)).name;
        let _ = writeln!(s, "    m_{} [label=\"{}\"];", id(name), escape(name));
    }
    // Parallel edges (a menu's several "play and come back" keys) are drawn as one, with
    // one label line each, so the picture stays readable.
    for (e, labels) in grouped(edges(menus)) {
        let to =
            e.to.as_deref()
                .map(|t| format!("m_{}", id(t)))
                .unwrap_or_else(|| "hangup".into());
        let style = if e.failure {
            ", style=dashed, color=\"#b03030\""
        } else {
            ""
        };
        let label: Vec<String> = labels.iter().map(|l| escape(l)).collect();
        let _ = writeln!(
            s,
            "    m_{} -> {to} [label=\"{}\"{style}];",
            id(&e.from),
            label.join("\\n")
        );
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::compile;
    use crate::model::tests::{YAML, loader};

    #[test]
    fn edges_cover_keys_retries_and_failure() {
        let m = compile(YAML, &mut loader).unwrap();
        let e = edges(&m);
        let main: Vec<(&str, Option<&str>, bool)> = e
            .iter()
            .filter(|e| e.from == "main")
            .map(|e| (e.label.as_str(), e.to.as_deref(), e.failure))
            .collect();
        assert_eq!(
            main,
            [
                ("1", Some("sales"), false),
                ("2: play sales, sales", Some("main"), false),
                ("9", None, false),
                (
                    "invalid (x2) / 3 s timeout (x2): repeat",
                    Some("main"),
                    true
                ),
                ("retries spent", None, true),
            ]
        );
    }

    #[test]
    fn mermaid_and_dot_name_every_menu_and_edge() {
        let m = compile(YAML, &mut loader).unwrap();
        let md = mermaid(&m);
        assert!(
            md.starts_with("flowchart TD\n    start((call)) --> m_main\n"),
            "{md}"
        );
        assert!(md.contains("m_main -->|\"1\"| m_sales"), "{md}");
        assert!(md.contains("m_main -.->|\"retries spent\"| hangup"), "{md}");
        let d = dot(&m);
        assert!(d.contains("m_sales -> m_main [label=\"*\"];"), "{d}");
        assert!(d.trim_end().ends_with('}'));
    }
}
