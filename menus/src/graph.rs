//! Call-flow graphs of a compiled config, as Mermaid or Graphviz DOT text (`ivr graph`).
//!
//! Nodes are menus, one "hang up" node, one "back" node (the menu the caller came from),
//! and one node per place a call leaves the menus (`voicemail sales`, `queue support`,
//! `transfer callcenter`). Edges are every way out of a menu: each key, the retry after an
//! invalid key or a timeout, the action once the retries are spent, and where a queue
//! sends callers who waited too long.

use crate::model::{Action, MenuId, Menus};
use ivr_audio::Digit;
use std::fmt::Write;

/// One end of an edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A menu, by name.
    Menu(String),
    /// The call ends.
    Hangup,
    /// Back to the menu the caller came from.
    Back,
    /// The call leaves the menus: `voicemail sales`, `queue support`, `transfer desk`.
    Away(String),
}

impl Node {
    /// The menu's name, for a menu.
    pub fn menu(&self) -> Option<&str> {
        match self {
            Node::Menu(m) => Some(m),
            _ => None,
        }
    }

    fn id(&self) -> String {
        match self {
            Node::Menu(m) => format!("m_{}", id(m)),
            Node::Hangup => "hangup".into(),
            Node::Back => "back".into(),
            Node::Away(a) => format!("x_{}", id(a)),
        }
    }
}

/// One edge: from a menu (or a queue), to a node, with a label and a kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// Where it starts.
    pub from: Node,
    /// Where it leads.
    pub to: Node,
    /// What takes it (`1`, `1: play sales`, `invalid / timeout`, `retries spent`).
    pub label: String,
    /// Whether it is a failure path (drawn dashed).
    pub failure: bool,
    /// What the caller did to take it, as call records name it (for [`Stats`]).
    pub via: Via,
}

/// What a caller does to take an edge out of a menu, as a call record's steps say it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Via {
    /// An option key (step outcome `key`).
    Key(char),
    /// An extension code (step outcome `extension`).
    Extension(String),
    /// A collected entry (step outcome `entry`).
    Entry,
    /// An invalid key or a timeout, the menu presented again (step outcomes `invalid`,
    /// `timeout`).
    Retry,
    /// Nothing a step records (a router, the retries spent, a queue's or a transfer's
    /// failure).
    Other,
}

/// How many calls took each way out of each menu, in some window of call records: what
/// `ivr graph --stats` labels the edges with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Calls in the window.
    pub calls: u64,
    /// (menu, way out, calls that took it at least once).
    pub taken: Vec<(String, Via, u64)>,
}

impl Stats {
    /// `label` with the share of calls that took `e` (none for ways steps do not record).
    fn label(&self, e: &Edge) -> String {
        let Some(menu) = e.from.menu() else {
            return e.label.clone();
        };
        if e.via == Via::Other {
            return e.label.clone();
        }
        let n: u64 = self
            .taken
            .iter()
            .filter(|(m, v, _)| m == menu && *v == e.via)
            .map(|t| t.2)
            .sum();
        let pct = if self.calls == 0 {
            0.0
        } else {
            n as f64 * 100.0 / self.calls as f64
        };
        format!("{} ({pct:.1}%, {n} calls)", e.label)
    }
}

/// Every edge of the flow, in menu order then key order, then the queues' timeouts.
pub fn edges(menus: &Menus) -> Vec<Edge> {
    let mut out = Vec::new();
    let edge = |out: &mut Vec<Edge>,
                from: &Node,
                action: &Action,
                label: String,
                failure: bool,
                via: Via| {
        let mut label = label;
        let mut a = action;
        loop {
            match a {
                Action::Language(l, then) => {
                    let lang = menus.languages().get(*l).map(String::as_str).unwrap_or("?");
                    label = format!("{label} ({lang})");
                    a = then;
                }
                Action::Set(vars, then) => {
                    let sets: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    label = format!("{label} [{}]", sets.join(", "));
                    a = then;
                }
                Action::Survey(s, then) => {
                    label = format!("{label} (survey {})", menus.survey(*s).name);
                    a = then;
                }
                _ => break,
            }
        }
        let (to, label) = match a {
            Action::Goto(t) => (Node::Menu(menus.menu(*t).name.clone()), label),
            Action::Repeat => (from.clone(), format!("{label}: repeat")),
            Action::Back => (Node::Back, label),
            Action::Play(p) => {
                let names: Vec<&str> = p.iter().map(|id| menus.prompt_name(*id)).collect();
                (from.clone(), format!("{label}: play {}", names.join(", ")))
            }
            Action::Voicemail(_) | Action::Queue(..) | Action::Transfer(_) => {
                let h = a.handoff().expect("a handoff verb");
                let label = match a {
                    Action::Queue(_, p) if *p > 0 => format!("{label} (priority {p})"),
                    _ => label,
                };
                (Node::Away(menus.handoff_name(h)), label)
            }
            Action::Hangup(_) | Action::Language(..) | Action::Set(..) | Action::Survey(..) => {
                (Node::Hangup, label)
            }
        };
        out.push(Edge {
            from: from.clone(),
            to,
            label,
            failure,
            via,
        });
    };
    for i in 0..menus.len() {
        let m = menus.menu(MenuId::nth(i));
        let here = Node::Menu(m.name.clone());
        let mut push = |action: &Action, label: String, failure: bool, via: Via| {
            edge(&mut out, &here, action, label, failure, via)
        };
        if let Some(r) = m.router {
            // A router only passes the caller on, by the schedule's state.
            let schedule = &menus.schedule(r.schedule).name;
            push(
                &Action::Goto(r.open),
                format!("{schedule}: open"),
                false,
                Via::Other,
            );
            push(
                &Action::Goto(r.closed),
                format!("{schedule}: closed"),
                true,
                Via::Other,
            );
            push(
                &Action::Goto(r.holiday),
                format!("{schedule}: holiday"),
                true,
                Via::Other,
            );
            continue;
        }
        for d in Digit::ALL {
            if let Some(a) = &m.options[d.event_code() as usize] {
                push(a, d.to_string(), false, Via::Key(d.as_char()));
            }
        }
        for (code, a) in &m.extensions {
            let code: String = code.iter().map(|d| d.as_char()).collect();
            push(a, code.clone(), false, Via::Extension(code));
        }
        if let Some(c) = &m.collect {
            push(
                &c.then,
                format!("{}-{} digits -> {}", c.min, c.max, c.into),
                false,
                Via::Entry,
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
            push(&Action::Repeat, label, true, Via::Retry);
        }
        push(&m.on_failure, "retries spent".to_string(), true, Via::Other);
    }
    for q in menus.queues() {
        let from = Node::Away(format!("queue {}", q.name));
        let label = format!("waited {} s", q.max_wait.as_secs());
        edge(&mut out, &from, &q.on_timeout, label, true, Via::Other);
    }
    // A transfer that reaches no one runs its destination's `on_failure` in the menu it was
    // chosen from: from the transfer on, or back to that menu (play, repeat).
    let mut chosen: Vec<(Node, Node, &Action)> = Vec::new();
    for e in &out {
        if e.from.menu().is_none() {
            continue;
        }
        for d in menus.destinations() {
            let to = Node::Away(format!("transfer {}", d.name));
            if e.to == to && !chosen.iter().any(|(m, t, _)| *m == e.from && *t == to) {
                chosen.push((e.from.clone(), to, &d.on_failure));
            }
        }
    }
    for (menu, transfer, action) in chosen {
        let before = out.len();
        edge(
            &mut out,
            &transfer,
            action,
            "not reached".to_string(),
            true,
            Via::Other,
        );
        let mut added = out.split_off(before);
        for e in &mut added {
            if e.to == transfer {
                e.to = menu.clone();
            }
        }
        // Chosen from several menus, an `on_failure` that leads on is one edge.
        for e in added {
            if !out
                .iter()
                .any(|o| o.from == e.from && o.to == e.to && o.label == e.label)
            {
                out.push(e);
            }
        }
    }
    out
}

/// The nodes that are not menus and appear in `edges`, in order of appearance.
fn other_nodes(edges: &[Edge]) -> Vec<Node> {
    let mut out: Vec<Node> = Vec::new();
    for n in edges.iter().flat_map(|e| [&e.from, &e.to]) {
        if n.menu().is_none() && !out.contains(n) {
            out.push(n.clone());
        }
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

/// The edges, their labels with `stats` if given.
fn labelled(menus: &Menus, stats: Option<&Stats>) -> Vec<Edge> {
    let mut all = edges(menus);
    if let Some(st) = stats {
        for e in &mut all {
            e.label = st.label(e);
        }
    }
    all
}

/// The flow as a Mermaid flowchart.
pub fn mermaid(menus: &Menus) -> String {
    mermaid_with(menus, None)
}

/// The flow as a Mermaid flowchart, each edge out of a menu labelled with the share of
/// `stats`' calls that took it, if given.
pub fn mermaid_with(menus: &Menus, stats: Option<&Stats>) -> String {
    let mut s = String::from("flowchart TD\n");
    let entry = &menus.menu(menus.entry()).name;
    let _ = writeln!(s, "    start((call)) --> m_{}", id(entry));
    for (label, m) in menus.entry_points() {
        let to = id(&menus.menu(m).name);
        let _ = writeln!(s, "    start -->|\"{}\"| m_{to}", escape(&label));
    }
    for i in 0..menus.len() {
        let name = &menus.menu(MenuId::nth(i)).name;
        let _ = writeln!(s, "    m_{}[\"{}\"]", id(name), escape(name));
    }
    let all = labelled(menus, stats);
    for n in other_nodes(&all) {
        let _ = match &n {
            Node::Hangup => writeln!(s, "    hangup((hang up))"),
            Node::Back => writeln!(s, "    back([back])"),
            Node::Away(a) => writeln!(s, "    {}[/\"{}\"/]", n.id(), escape(a)),
            Node::Menu(_) => Ok(()),
        };
    }
    for e in all {
        let arrow = if e.failure { "-.->" } else { "-->" };
        let _ = writeln!(
            s,
            "    {} {arrow}|\"{}\"| {}",
            e.from.id(),
            escape(&e.label),
            e.to.id()
        );
    }
    s
}

/// The flow as Graphviz DOT.
pub fn dot(menus: &Menus) -> String {
    dot_with(menus, None)
}

/// The flow as Graphviz DOT, labelled with `stats` as [`mermaid_with`] does.
pub fn dot_with(menus: &Menus, stats: Option<&Stats>) -> String {
    let mut s = String::from(
        "digraph ivr {\n    rankdir=LR;\n    node [shape=box, style=rounded, fontname=\"Helvetica\"];\n    edge [fontname=\"Helvetica\", fontsize=10];\n",
    );
    s.push_str("    start [shape=circle, label=\"call\"];\n");
    let entry = &menus.menu(menus.entry()).name;
    let _ = writeln!(s, "    start -> m_{};", id(entry));
    for (label, m) in menus.entry_points() {
        let to = id(&menus.menu(m).name);
        let _ = writeln!(s, "    start -> m_{to} [label=\"{}\"];", escape(&label));
    }
    for i in 0..menus.len() {
        let name = &menus.menu(MenuId::nth(i)).name;
        let _ = writeln!(s, "    m_{} [label=\"{}\"];", id(name), escape(name));
    }
    let all = labelled(menus, stats);
    for n in other_nodes(&all) {
        let (shape, label) = match &n {
            Node::Hangup => ("doublecircle", "hang up".to_string()),
            Node::Back => ("oval", "back".to_string()),
            Node::Away(a) => ("parallelogram", a.clone()),
            Node::Menu(_) => continue,
        };
        let _ = writeln!(
            s,
            "    {} [shape={shape}, label=\"{}\"];",
            n.id(),
            escape(&label)
        );
    }
    // Parallel edges (a menu's several "play and come back" keys) are drawn as one, with
    // one label line each, so the picture stays readable.
    for (e, labels) in grouped(all) {
        let to = e.to.id();
        let style = if e.failure {
            ", style=dashed, color=\"#b03030\""
        } else {
            ""
        };
        let label: Vec<String> = labels.iter().map(|l| escape(l)).collect();
        let _ = writeln!(
            s,
            "    {} -> {to} [label=\"{}\"{style}];",
            e.from.id(),
            label.join("\\n")
        );
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::compile;
    use crate::compile::tests::{YAML, loader};

    #[test]
    fn edges_cover_keys_retries_and_failure() {
        let m = compile(YAML, &mut loader).unwrap();
        let e = edges(&m);
        let main: Vec<(&str, Option<&str>, bool)> = e
            .iter()
            .filter(|e| e.from.menu() == Some("main"))
            .map(|e| (e.label.as_str(), e.to.menu(), e.failure))
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
    fn a_transfers_on_failure_is_drawn_from_the_transfer_on_or_back_to_its_menu() {
        let yaml = r#"
entry: main
prompts: { hi: hi.wav }
destinations:
  desk: { uri: "sip:desk@192.0.2.1", mode: bridge, on_failure: { goto: sorry } }
  mobile: { uri: "sip:m@192.0.2.2", mode: bridge, on_failure: { play: hi } }
menus:
  main: { prompt: hi, options: { "1": { transfer: desk }, "2": { transfer: mobile } } }
  sorry: { prompt: hi, options: { "1": { hangup: hi } } }
"#;
        let m = compile(yaml, &mut loader).unwrap();
        let from_transfers: Vec<(String, String, bool)> = edges(&m)
            .into_iter()
            .filter(|e| matches!(&e.from, Node::Away(n) if n.starts_with("transfer")))
            .map(|e| {
                let to = match &e.to {
                    Node::Menu(n) | Node::Away(n) => n.clone(),
                    other => format!("{other:?}"),
                };
                (e.label, to, e.failure)
            })
            .collect();
        assert_eq!(
            from_transfers,
            [
                ("not reached".to_string(), "sorry".to_string(), true),
                ("not reached: play hi".to_string(), "main".to_string(), true),
            ]
        );
    }

    #[test]
    fn routers_draw_open_closed_and_holiday_edges() {
        let yaml = r#"
entry: start
prompts: { hi: hi.wav }
schedules:
  office: { timezone: Europe/Paris, hours: { mon-fri: ["09:00-17:00"] } }
menus:
  start: { schedule: office, open: open, closed: closed }
  open: { prompt: hi, options: { "1": { hangup: hi } } }
  closed: { prompt: hi, options: { "1": { hangup: hi } } }
"#;
        let m = compile(yaml, &mut loader).unwrap();
        let start: Vec<(String, Option<String>)> = edges(&m)
            .into_iter()
            .filter(|e| e.from.menu() == Some("start"))
            .map(|e| (e.label, e.to.menu().map(str::to_string)))
            .collect();
        let s = |a: &str, b: &str| (a.to_string(), Some(b.to_string()));
        assert_eq!(
            start,
            [
                s("office: open", "open"),
                s("office: closed", "closed"),
                s("office: holiday", "closed"),
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

    /// With stats, each edge out of a menu says the share of calls that took it; ways no
    /// step records keep their plain label.
    #[test]
    fn stats_label_edges_with_the_share_of_calls() {
        let m = compile(YAML, &mut loader).unwrap();
        let stats = Stats {
            calls: 8,
            taken: vec![
                ("main".into(), Via::Key('1'), 6),
                ("main".into(), Via::Retry, 2),
                ("sales".into(), Via::Key('*'), 1),
            ],
        };
        let md = mermaid_with(&m, Some(&stats));
        assert!(
            md.contains("m_main -->|\"1 (75.0%, 6 calls)\"| m_sales"),
            "{md}"
        );
        assert!(
            md.contains("m_main -->|\"9 (0.0%, 0 calls)\"| hangup"),
            "{md}"
        );
        assert!(
            md.contains(
                "m_main -.->|\"invalid (x2) / 3 s timeout (x2): repeat (25.0%, 2 calls)\"| m_main"
            ),
            "{md}"
        );
        assert!(md.contains("m_main -.->|\"retries spent\"| hangup"), "{md}");
        let d = dot_with(&m, Some(&stats));
        assert!(
            d.contains("m_sales -> m_main [label=\"* (12.5%, 1 calls)\"];"),
            "{d}"
        );
        assert_eq!(mermaid_with(&m, None), mermaid(&m));
    }
}
