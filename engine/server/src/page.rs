//! The staff web page at `/staff`: sign in, see the callback requests of your mailboxes
//! (new, mine, all), listen, call back, and mark progress with a note. One HTML page with
//! a little JavaScript over the JSON API; the list refreshes itself every five seconds.

use crate::api::{COOKIE, Staff, session_cookie};
use axum::Router;
use axum::extract::{ConnectInfo, Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

/// The routes.
pub fn router(staff: Staff) -> Router {
    Router::new()
        .route("/staff", get(page))
        .route("/staff/login", post(login))
        .route("/staff/logout", post(logout))
        .route("/staff/app.css", get(style))
        .route("/staff/app.js", get(script))
        .with_state(staff)
}

/// The login form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    user: String,
    password: String,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const STYLE: &str = r#"
:root { --fg:#1d2433; --muted:#5b6475; --line:#dde1e8; --accent:#1f6feb; --bg:#f6f7f9; }
* { box-sizing: border-box; }
body { margin:0; overflow-wrap:anywhere; font:16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; align-items:center; justify-content:space-between; gap:1rem; padding:.75rem 1rem; background:#fff; border-bottom:1px solid var(--line); }
header h1 { font-size:1.1rem; margin:0; }
main { max-width:56rem; margin:0 auto; padding:1rem; }
.tabs { display:flex; gap:.5rem; margin-bottom:1rem; flex-wrap:wrap; }
.tabs button, .actions button, form button { font:inherit; border:1px solid var(--line); background:#fff; border-radius:.5rem; padding:.45rem .8rem; cursor:pointer; }
.tabs button[aria-pressed=true] { background:var(--accent); color:#fff; border-color:var(--accent); }
.card { min-width:0; max-width:100%; background:#fff; border:1px solid var(--line); border-radius:.75rem; padding:1rem; margin-bottom:.75rem; }
.card h2 { font-size:1.05rem; margin:0 0 .25rem; display:flex; justify-content:space-between; gap:.5rem; flex-wrap:wrap; }
.number a { font-size:1.25rem; font-weight:600; color:var(--accent); text-decoration:none; }
.meta { color:var(--muted); font-size:.9rem; }
.status { font-size:.8rem; padding:.1rem .5rem; border-radius:1rem; background:#eef2ff; }
.status.new { background:#fff3cd; } .status.resolved { background:#d1f7d6; }
audio { width:100%; margin:.5rem 0; }
.actions { display:flex; gap:.5rem; flex-wrap:wrap; align-items:center; }
.actions input { flex:1 1 12rem; font:inherit; padding:.45rem; border:1px solid var(--line); border-radius:.5rem; }
.empty { color:var(--muted); text-align:center; padding:2rem; }
details.history { margin-top:.5rem; } details.history summary { cursor:pointer; color:var(--muted); }
details.history ul { margin:.25rem 0 0; padding-left:1.1rem; font-size:.9rem; }
form.login { max-width:22rem; margin:4rem auto; background:#fff; padding:1.5rem; border-radius:.75rem; border:1px solid var(--line); }
form.login label { display:block; margin:.75rem 0 .25rem; }
form.login input { width:100%; font:inherit; padding:.5rem; border:1px solid var(--line); border-radius:.5rem; }
form.login button { margin-top:1rem; width:100%; background:var(--accent); color:#fff; border-color:var(--accent); }
.error { color:#b42318; }
h2.section { font-size:1rem; color:var(--muted); margin:1rem 0 .5rem; }
.card ul { margin:.25rem 0 0; padding-left:1.1rem; }
.status.available { background:#d1f7d6; } .status.paused, .status.logged_out { background:#eee; } .status.on_call, .status.ringing { background:#fff3cd; }
.path { color:var(--fg); overflow-wrap:anywhere; }
.chart { display:block; width:100%; height:auto; }
.chart .bar { fill:var(--accent); } .chart .k0 { fill:#1f6feb; } .chart .k1 { fill:#6ea8fe; } .chart .k2 { fill:#9ec5fe; } .chart .k3 { fill:#cfe2ff; }
.chart .invalid { fill:#f0ad4e; } .chart .timeout { fill:#ffd666; } .chart .hangup { fill:#d9534f; } .chart .rest { fill:#e9ecef; }
.chart text { font-size:12px; fill:var(--fg); }
.axis { display:flex; justify-content:space-between; }
.legend span { margin-right:.75rem; white-space:nowrap; } .legend i { display:inline-block; width:.7rem; height:.7rem; border-radius:.15rem; margin-right:.25rem; background:#e9ecef; }
.legend i.k0 { background:#1f6feb; } .legend i.invalid { background:#f0ad4e; } .legend i.timeout { background:#ffd666; } .legend i.hangup { background:#d9534f; }
.figures { display:flex; gap:1.5rem; flex-wrap:wrap; } .figures b { display:block; font-size:1.5rem; }
select.range { font:inherit; padding:.35rem; border:1px solid var(--line); border-radius:.5rem; }
.chart .d0 { fill:#b42318; } .chart .d1 { fill:#d9534f; } .chart .d2 { fill:#f0ad4e; } .chart .d3 { fill:#ffd666; } .chart .d4 { fill:#d3e07a; }
.chart .d5 { fill:#a6d96a; } .chart .d6 { fill:#66bd63; } .chart .d7 { fill:#1a9850; } .chart .d8 { fill:#2b8cbe; } .chart .d9 { fill:#1f6feb; } .chart .dx { fill:#8c8c8c; }
.chart .avg { fill:#6ea8fe; } .chart .grid { stroke:var(--line); stroke-width:1; }
.survey + .survey { margin-top:1rem; }
"#;

fn login_page(error: Option<&str>) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · callbacks</title><link rel="stylesheet" href="/staff/app.css"></head><body>
<form class="login" method="post" action="/staff/login">
<h1>Callback requests</h1>
{error}
<label for="user">User</label><input id="user" name="user" autocomplete="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form></body></html>"#,
        error = error
            .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
            .unwrap_or_default()
    )
}

const APP: &str = r#"
<main>
<div class="tabs" role="group" aria-label="Show">
  <button data-view="new" aria-pressed="true">New</button>
  <button data-view="mine" aria-pressed="false">Mine</button>
  <button data-view="all" aria-pressed="false">All</button>
  <button data-view="queues" aria-pressed="false">Queues</button>
  <button data-view="reports" aria-pressed="false">Reports</button>
</div>
<div id="list" aria-live="polite"></div>
</main>
<script src="/staff/app.js"></script>
"#;

/// The page's script, served from `/staff/app.js` (no inline script: see the CSP in `web.rs`).
const SCRIPT: &str = r#"
const STATUS = {new:"New", claimed:"Claimed", called_back:"Called back", resolved:"Resolved", no_answer:"No answer", wrong_number:"Wrong number"};
let view = "new";
const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));
const when = t => new Date(t * 1000).toLocaleString();
async function api(path, opts = {}) {
  const r = await fetch(path, {credentials: "same-origin", ...opts,
    headers: {"content-type": "application/json", ...(opts.headers || {})}});
  if (r.status === 401) { location.href = "/staff"; return null; }
  if (!r.ok && r.status !== 204) throw new Error((await r.json()).error || r.statusText);
  return r.status === 204 ? null : r.json();
}
function card(c) {
  const number = c.callback_number
    ? `<a href="tel:${esc(c.callback_number)}">${esc(c.callback_number)}</a>`
    : `<span class="meta">no number given</span>`;
  const audio = c.kind === "queue_callback"
    ? `<p class="meta"><span class="status badge">Queued callback</span> the engine calls back when an agent of ${esc(c.queue || "")} is free; closing it cancels that.</p>`
    : c.audio ? `<audio controls preload="none" src="${esc(c.audio)}"></audio>` : `<p class="meta">No message, only a number.</p>`;
  return `<article class="card" data-id="${esc(c.id)}">
    <h2><span class="number">${number}</span><span class="status ${esc(c.status)}">${esc(STATUS[c.status] || c.status)}${c.assignee ? " · " + esc(c.assignee) : ""}</span></h2>
    <div class="meta">${esc(c.mailbox)} · ${when(c.received_at)} · ${(c.duration_ms / 1000).toFixed(1)} s
      ${c.caller_id && c.caller_id !== c.callback_number ? " · caller ID " + esc(c.caller_id) : ""}
      ${c.recovered ? " · recovered after a restart" : ""}${c.hung_up ? " · hung up before the end" : ""}</div>
    ${audio}
    <div class="actions">
      <input type="text" placeholder="Note (optional)" aria-label="Note" maxlength="2000">
      ${c.status === "new" ? `<button data-status="claimed">Claim</button>` : ""}
      <button data-status="called_back">Called back</button>
      <button data-status="no_answer">No answer</button>
      <button data-status="resolved">Resolve</button>
    </div>
    <details class="history"><summary>History</summary><ul></ul></details></article>`;
}
const AGENT = {logged_out:"Logged out", available:"Available", ringing:"Ringing", on_call:"On a call", wrap_up:"Wrap-up", paused:"Paused"};
const mins = s => s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
// The menus a caller came through ("main › support"), each name escaped.
const trail = p => p && p.length ? `<span class="path" title="Menus the caller came through">${p.map(esc).join(" › ")}</span>` : "";
function queueCard(q) {
  const rows = q.waiting.map(w => `<li>#${w.position} · ${w.callback ? "callback request" : esc(w.caller || "unknown caller")} · waiting ${mins(w.waited_s)}${w.path && w.path.length ? `<div class="meta">came through ${trail(w.path)}</div>` : ""}</li>`).join("");
  return `<article class="card queue"><h2><span>${esc(q.name)}</span><span class="status">${q.waiting.length} waiting</span></h2>
    ${rows ? `<ul>${rows}</ul>` : `<p class="meta">Nobody waiting.</p>`}</article>`;
}
function agentCard(a) {
  const since = a.since ? "since " + new Date(a.since * 1000).toLocaleTimeString() + " · " : "";
  const paused = a.state === "paused", out = a.state === "logged_out";
  return `<article class="card agent" data-agent="${esc(a.name)}">
    <h2><span>${esc(a.name)}</span><span class="status ${esc(a.state)}">${esc(AGENT[a.state] || a.state)}${a.pause_reason ? " · " + esc(a.pause_reason) : ""}</span></h2>
    <div class="meta">${since}${a.reachable ? "reachable" : "not reachable"} · ${a.calls} ${a.calls === 1 ? "call" : "calls"} · ${esc(a.queues.join(", "))}</div>
    ${a.caller_path && a.caller_path.length ? `<div class="meta">Caller came through ${trail(a.caller_path)}</div>` : ""}
    <div class="actions">
      ${out ? `<button data-act="login">Log in</button>` : `<button data-act="logout">Log out</button>`}
      ${out ? "" : paused ? `<button data-act="unpause">Unpause</button>` : `<button data-act="pause">Pause</button>`}
    </div></article>`;
}
async function refreshQueues(list) {
  const v = await api("/api/queues");
  if (!v) return;
  list.innerHTML = (v.queues.length || v.agents.length)
    ? `<h2 class="section">Queues</h2>${v.queues.map(queueCard).join("")}<h2 class="section">Agents</h2>${v.agents.map(agentCard).join("")}`
    : `<p class="empty">No queues.</p>`;
}
// The Reports tab: GET /api/reports/calls drawn as inline SVG (no chart library, no CDN).
let reportDays = 7;
const pct = x => (x * 100).toFixed(1) + "%";
function columns(buckets, what) {
  if (!buckets.length) return `<p class="meta">No calls.</p>`;
  const w = 600, h = 140, bw = w / buckets.length, max = Math.max(1, ...buckets.map(b => b.calls));
  const rects = buckets.map((b, i) => {
    const bh = Math.round(b.calls / max * (h - 16));
    return `<rect class="bar" x="${(i * bw + 1).toFixed(1)}" y="${h - bh}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${bh}"><title>${esc(b.start)}: ${b.calls} calls</title></rect>`;
  }).join("");
  return `<svg class="chart" viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(what)}"><text x="2" y="12">${max}</text>${rects}</svg>
    <div class="meta axis"><span>${esc(buckets[0].start)}</span><span>${esc(buckets[buckets.length - 1].start)}</span></div>`;
}
// One menu: a bar split into its keys, invalid keys, timeouts and hang-ups (shares of its presentations).
function menuBar(m) {
  const parts = m.keys.slice(0, 4).map((k, i) => [`k${i}`, k.share, `key ${k.key}: ${pct(k.share)}`])
    .concat([["invalid", m.invalid_share, `invalid: ${pct(m.invalid_share)}`], ["timeout", m.timeout_share, `timeout: ${pct(m.timeout_share)}`],
      ["hangup", m.give_up_share, `hung up: ${pct(m.give_up_share)}`]]);
  let x = 0;
  const rects = parts.map(([cls, share, title]) => {
    const r = `<rect class="${cls}" x="${(x * 600).toFixed(1)}" y="0" width="${(share * 600).toFixed(1)}" height="18"><title>${esc(title)}</title></rect>`;
    x += share; return r;
  }).join("");
  return `<div class="meta"><b>${esc(m.menu)}</b> · ${m.presentations} presentations · gave up ${pct(m.give_up_share)} · ${m.keys.map(k => esc(k.key) + " " + pct(k.share)).join(", ")}</div>
    <svg class="chart" viewBox="0 0 600 18" role="img" aria-label="${esc(m.menu)}"><rect class="rest" x="0" y="0" width="600" height="18"></rect>${rects}</svg>`;
}
const OUTCOME = {self_served:"Self-served in the menus", callback_request:"Left a callback request", voicemail_left_nothing:"To voicemail, left nothing", reached_agent:"Reached an agent",
  abandoned_in_queue:"Abandoned in queue", transferred:"Transferred", hung_up_in_menus:"Hung up in the menus", other:"Other"};
function outcomes(r) {
  const rows = Object.keys(OUTCOME), h = 22, max = Math.max(1, ...rows.map(k => r.outcomes[k]));
  const bars = rows.map((k, i) => {
    const n = r.outcomes[k], w = Math.round(n / max * 290); // room for "1234 (100.0%)" after the longest bar
    return `<text x="0" y="${i * h + 15}">${OUTCOME[k]}</text><rect class="bar" x="200" y="${i * h + 3}" width="${w}" height="16"><title>${n}</title></rect><text x="${206 + w}" y="${i * h + 15}">${n} (${pct(r.calls ? n / r.calls : 0)})</text>`;
  }).join("");
  return `<svg class="chart" viewBox="0 0 600 ${rows.length * h}" role="img" aria-label="Outcomes">${bars}</svg>`;
}
// One survey question: its figures, its average per hour or day as columns (scaled to the
// highest digit answered), and its answers as one bar split by key.
const avgText = a => a == null ? "–" : a.toFixed(2);
function surveyChart(q) {
  const digits = q.answers.map(a => a.key).filter(k => /^[0-9]$/.test(k)).map(Number);
  const top = Math.max(1, ...digits), w = 600, h = 90, bw = w / Math.max(1, q.buckets.length);
  const cols = q.buckets.map((b, i) => {
    if (b.average == null) return "";
    const bh = Math.max(1, Math.round(b.average / top * (h - 16)));
    return `<rect class="avg" x="${(i * bw + 1).toFixed(1)}" y="${h - bh}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${bh}"><title>${esc(b.start)}: average ${avgText(b.average)}, ${b.answered} of ${b.asked} answered</title></rect>`;
  }).join("");
  let x = 0;
  const parts = q.answers.map(a => {
    const cls = /^[0-9]$/.test(a.key) ? "d" + a.key : "dx";
    const r = `<rect class="${cls}" x="${(x * 600).toFixed(1)}" y="0" width="${(a.share * 600).toFixed(1)}" height="18"><title>${esc(a.key)}: ${a.count} (${pct(a.share)})</title></rect>`;
    x += a.share; return r;
  }).join("");
  const first = q.buckets[0], last = q.buckets[q.buckets.length - 1];
  const head = `<div class="meta"><b>${esc(q.survey)} · ${esc(q.question)}</b> · average ${avgText(q.average)} · ${q.answered} of ${q.asked} answered · unanswered ${pct(q.unanswered_share)} (${q.timeouts} timeout, ${q.invalid} invalid, ${q.hangups} hung up)</div>`;
  // Nothing to draw without a key answered (a recorded comment, or only timeouts so far).
  if (!q.answers.some(a => a.key)) return `<div class="survey">${head}</div>`;
  return `<div class="survey">${head}
    <svg class="chart" viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(q.question)}: average per period"><line class="grid" x1="0" y1="16" x2="${w}" y2="16"></line><text x="2" y="12">${top}</text>${cols}</svg>
    ${first ? `<div class="meta axis"><span>${esc(first.start)}</span><span>${esc(last.start)}</span></div>` : ""}
    <svg class="chart" viewBox="0 0 600 18" role="img" aria-label="${esc(q.question)}: answers"><rect class="rest" x="0" y="0" width="600" height="18"></rect>${parts}</svg>
    <div class="meta">${q.answers.map(a => esc(a.key) + " " + pct(a.share)).join(", ") || "No answers."}</div></div>`;
}
async function refreshReports(list) {
  const from = new Date(Date.now() - (reportDays - 1) * 86400000).toISOString().slice(0, 10);
  const r = await api(`/api/reports/calls?from=${from}`);
  if (!r) return;
  const c = r.callbacks, median = c.median_resolve_secs == null ? "–" : (c.median_resolve_secs / 3600).toFixed(1) + " h";
  const ranges = [[1, "Today"], [7, "Last 7 days"], [30, "Last 30 days"]].map(([d, t]) => `<option value="${d}"${d === reportDays ? " selected" : ""}>${t}</option>`).join("");
  list.innerHTML = `<p><select class="range" aria-label="Period">${ranges}</select> <span class="meta">since ${esc(from)} (UTC)</span></p>
    <article class="card report"><h2><span>Calls</span><span class="status">${r.calls}</span></h2>
      ${r.per_hour ? columns(r.per_hour, "Calls per hour") : columns(r.per_day, "Calls per day")}</article>
    <article class="card report"><h2><span>Outcomes</span></h2>${outcomes(r)}</article>
    <article class="card report"><h2><span>Menus, where callers give up first</span></h2>
      <div class="meta legend"><span><i class="k0"></i>keys</span><span><i class="invalid"></i>invalid</span><span><i class="timeout"></i>timeout</span><span><i class="hangup"></i>hung up</span></div>
      ${r.menus.length ? r.menus.map(menuBar).join("") : `<p class="meta">No steps.</p>`}</article>
    <article class="card report"><h2><span>Callback requests</span></h2>
      <div class="figures"><div><b>${c.created}</b>created</div><div><b>${c.resolved}</b>resolved</div><div><b>${median}</b>median time to resolve</div></div></article>
    <article class="card report surveys"><h2><span>Survey scores</span></h2>
      <p class="meta">Average of the 0–9 answers per ${r.per_hour ? "hour" : "day"}; a * or # answer counts as answered, not in the average.</p>
      ${r.surveys.length ? r.surveys.map(surveyChart).join("") : `<p class="meta">No survey answers.</p>`}</article>
    <article class="card report comments"><h2><span>Survey comments</span></h2><p class="meta">Loading…</p></article>`;
  fillComments(list.querySelector(".comments"));
}
// Survey comments (a recorded question): the newest, each with a player (staff who do not
// see every mailbox get none from the API).
async function fillComments(card) {
  let rows;
  try { rows = await api("/api/comments?limit=20"); } catch (err) {
    card.querySelector("p").textContent = err.message; return;
  }
  if (!rows) return;
  card.innerHTML = `<h2><span>Survey comments</span><span class="status">${rows.length}</span></h2>` + (rows.length
    ? rows.map(c => `<div class="comment"><div class="meta">${new Date(c.started_ms).toLocaleString()} · ${esc(c.caller || "unknown caller")} · ${esc(c.survey)}/${esc(c.question)}${c.outcome === "hangup" ? " · hung up while speaking" : ""} · <span title="Call-ID">${esc(c.call_id)}</span></div>
      <audio controls preload="none" src="/api/comments/${encodeURIComponent(c.recording)}"></audio></div>`).join("")
    : `<p class="meta">No comments recorded.</p>`);
}
document.getElementById("list").addEventListener("change", e => {
  if (!e.target.matches("select.range")) return;
  reportDays = Number(e.target.value);
  e.target.blur();
  refresh();
});
async function refresh() {
  const list0 = document.getElementById("list");
  if (view === "reports") {
    if (document.activeElement && list0.contains(document.activeElement)) return;
    if ([...list0.querySelectorAll("audio")].some(a => !a.paused)) return;
    return refreshReports(list0);
  }
  if (view === "queues") {
    if (document.activeElement && list0.contains(document.activeElement)) return;
    return refreshQueues(list0);
  }
  const q = view === "new" ? "?status=new" : view === "mine" ? "?mine=true" : "";
  const list = document.getElementById("list");
  // Keep what is being listened to or typed: re-render only when nothing is in use.
  if (document.activeElement && list.contains(document.activeElement)) return;
  if ([...list.querySelectorAll("audio")].some(a => !a.paused)) return;
  if (list.querySelector("details.history[open]")) return;
  const rows = await api("/api/callbacks" + q);
  if (!rows) return;
  list.innerHTML = rows.length ? rows.map(card).join("") : `<p class="empty">Nothing here.</p>`;
}
document.querySelector(".tabs").addEventListener("click", e => {
  const b = e.target.closest("button"); if (!b) return;
  view = b.dataset.view;
  document.querySelectorAll(".tabs button").forEach(x => x.setAttribute("aria-pressed", x === b));
  refresh();
});
// The history of a request, loaded when its panel opens.
document.getElementById("list").addEventListener("toggle", async e => {
  const d = e.target;
  if (!d.matches("details.history") || !d.open) return;
  const id = d.closest(".card").dataset.id;
  const r = await api(`/api/callbacks/${encodeURIComponent(id)}`);
  if (!r) return;
  d.querySelector("ul").innerHTML = r.history.map(h =>
    `<li><span class="meta">${when(h.at)}</span> ${esc(h.actor)}: ${esc(h.action === "status" ? (STATUS[h.detail] || h.detail) : h.action === "note" ? "“" + h.detail + "”" : h.action)}</li>`
  ).join("");
}, true);
document.getElementById("list").addEventListener("click", async e => {
  const b = e.target.closest("button[data-act]"); if (!b) return;
  const name = b.closest(".agent").dataset.agent;
  b.disabled = true;
  try {
    await api(`/api/agents/${encodeURIComponent(name)}/${b.dataset.act}`, {method: "POST"});
    document.activeElement.blur();
    await refresh();
  } catch (err) { alert(err.message); b.disabled = false; }
});
document.getElementById("list").addEventListener("click", async e => {
  const b = e.target.closest("button[data-status]"); if (!b) return;
  const card = b.closest(".card");
  const note = card.querySelector("input").value.trim();
  b.disabled = true;
  try {
    await api(`/api/callbacks/${encodeURIComponent(card.dataset.id)}/status`,
      {method: "POST", body: JSON.stringify({status: b.dataset.status, note: note || null})});
    document.activeElement.blur();
    await refresh();
  } catch (err) { alert(err.message); b.disabled = false; }
});
refresh();
setInterval(refresh, 5000);
"#;

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

fn app_page(user: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Callbacks</title><link rel="stylesheet" href="/staff/app.css"></head><body>
<header><h1>Callback requests</h1><form method="post" action="/staff/logout"><span class="meta">{user}</span> <button type="submit">Sign out</button></form></header>
{APP}</body></html>"#,
        user = escape(user)
    )
}

async fn page(State(staff): State<Staff>, headers: HeaderMap) -> Response {
    match crate::api::member(&staff, &headers) {
        Ok(m) => Html(app_page(&m.name)).into_response(),
        Err(_) => Html(login_page(None)).into_response(),
    }
}

async fn login(
    State(staff): State<Staff>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Form(form): Form<LoginForm>,
) -> Response {
    let signin = &staff.sessions.signin;
    // Counted before the check: concurrent guesses cannot slip past the limit.
    if let Err(why) = signin.begin(&form.user, peer.ip(), std::time::Instant::now()) {
        tracing::warn!(user = %form.user, client = %peer.ip(), ?why, "staff sign-in refused: too many failures");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "900")],
            Html(login_page(Some(
                "Too many failed attempts. Try again in 15 minutes.",
            ))),
        )
            .into_response();
    }
    let hash = staff
        .users
        .get()
        .users
        .get(&form.user)
        .map(|u| u.password.clone());
    // argon2 is deliberately slow: checked on the sign-in threads, an unknown user too.
    let ok = match signin.check(hash, form.password).await {
        Ok(ok) => ok,
        Err(crate::signin::Busy) => {
            signin.give_back(&form.user, peer.ip(), false);
            tracing::warn!(client = %peer.ip(), "staff sign-in refused: too many checks waiting");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "1")],
                Html(login_page(Some("Busy: try again in a moment."))),
            )
                .into_response();
        }
    };
    if !ok {
        tracing::warn!(user = %form.user, "staff sign-in refused");
        return (
            StatusCode::UNAUTHORIZED,
            Html(login_page(Some("Wrong user or password."))),
        )
            .into_response();
    }
    signin.give_back(&form.user, peer.ip(), true);
    let id = staff.sessions.open(&form.user);
    tracing::info!(user = %form.user, "staff signed in");
    (
        [(
            header::SET_COOKIE,
            format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=28800"),
        )],
        Redirect::to("/staff"),
    )
        .into_response()
}

async fn logout(State(staff): State<Staff>, headers: HeaderMap) -> Response {
    if let Some(id) = session_cookie(&headers) {
        staff.sessions.close(&id);
    }
    (
        [(
            header::SET_COOKIE,
            format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
        )],
        Redirect::to("/staff"),
    )
        .into_response()
}
