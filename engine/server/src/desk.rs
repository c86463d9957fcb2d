//! The live queue view and agents' state changes for staff: `GET /api/queues` and
//! `POST /api/agents/{name}/{login|logout|pause|unpause}` (and the staff page's Queues tab,
//! which uses them).
//!
//! Data flows one way each: the engine loop publishes a snapshot ([`Board::publish`]) after
//! queue and registration events, and the HTTP side reads the latest one (a lock held only to
//! clone an `Arc`, never across an await); staff actions travel to the engine loop as a
//! message ([`crate::driver::ServerHandle::agent`]) and the queue center, the one owner of
//! agent state, applies them there.
//!
//! Who may act: a staff user whose mailboxes are `*` (a supervisor) on any agent; any other
//! staff user only on the agent of the same name (agents pause and unpause themselves). Every
//! staff user sees the view. Caller numbers are masked: only the last four digits show.

use crate::api::{ApiError, Member, Staff};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use ivr_engine::agent_desk::{AgentAction, QueueView};
use ivr_queues::{AgentState, PauseReason};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use utoipa::ToSchema;

/// The latest snapshot, shared by the engine loop (writer) and the HTTP side (readers).
#[derive(Debug, Default)]
pub struct Board {
    inner: Mutex<Published>,
}

#[derive(Debug, Default, Clone)]
struct Published {
    /// The view and when it was taken.
    view: Arc<(QueueView, Option<Instant>)>,
    /// Per agent: its state's name and since when (wall clock), kept across snapshots.
    since: HashMap<String, (&'static str, u64)>,
}

impl Board {
    /// Publish a view taken at `at` (the engine loop, after queue events).
    pub fn publish(&self, view: QueueView, at: Instant) {
        let now = crate::clock::unix_now();
        let mut p = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut since = HashMap::with_capacity(view.agents.len());
        for a in &view.agents {
            let name = a.state.as_ref().map_or("logged_out", state_name);
            let kept = p
                .since
                .get(&a.name)
                .filter(|(n, _)| *n == name)
                .map_or(now, |(_, t)| *t);
            since.insert(a.name.clone(), (name, kept));
        }
        p.since = since;
        p.view = Arc::new((view, Some(at)));
    }

    /// The queues as the API shows them now (waits grown since the snapshot).
    pub fn current(&self) -> Queues {
        let p = self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let (view, at) = &*p.view;
        let grown = at.map(|t| t.elapsed()).unwrap_or_default();
        Queues {
            queues: view
                .queues
                .iter()
                .map(|q| Queue {
                    name: q.name.clone(),
                    waiting: q
                        .waiting
                        .iter()
                        .map(|w| Waiting {
                            position: w.position,
                            caller: w.caller.as_deref().map(mask),
                            waited_s: (w.waited + grown).as_secs(),
                            callback: w.callback,
                            path: w.path.clone(),
                        })
                        .collect(),
                })
                .collect(),
            agents: view
                .agents
                .iter()
                .map(|a| {
                    let state = a.state.as_ref().map_or("logged_out", state_name);
                    Agent {
                        name: a.name.clone(),
                        state: state.to_string(),
                        pause_reason: match &a.state {
                            Some(AgentState::Paused {
                                reason: PauseReason::Requested(r),
                            }) => Some(r.clone()),
                            Some(AgentState::Paused {
                                reason: PauseReason::NoAnswer { .. },
                            }) => Some("no answer".into()),
                            _ => None,
                        },
                        since: p.since.get(&a.name).map(|(_, t)| *t),
                        reachable: a.reachable,
                        registrations: a.registrations,
                        calls: a.calls,
                        queues: a.queues.clone(),
                        login: match a.login {
                            ivr_menus::agents::LoginMode::OnRegister => "on_register",
                            ivr_menus::agents::LoginMode::Manual => "manual",
                        }
                        .to_string(),
                        caller_path: a.caller_path.clone(),
                    }
                })
                .collect(),
        }
    }
}

fn state_name(s: &AgentState) -> &'static str {
    crate::queue_log::state_name(s)
}

/// A caller's number for the staff page: every digit but the last four hidden (`+•••••1234`).
pub fn mask(number: &str) -> String {
    let digits = number.chars().filter(char::is_ascii_digit).count();
    let mut hide = digits.saturating_sub(4);
    if digits <= 4 {
        hide = digits;
    }
    number
        .chars()
        .map(|c| {
            if c.is_ascii_digit() && hide > 0 {
                hide -= 1;
                '•'
            } else if c.is_ascii_digit() || c == '+' {
                c
            } else {
                '•'
            }
        })
        .collect()
}

/// Every queue and agent.
#[derive(Debug, Serialize, ToSchema)]
pub struct Queues {
    /// Each queue, in config order.
    pub queues: Vec<Queue>,
    /// Each agent, in config order.
    pub agents: Vec<Agent>,
}

/// A queue and who waits in it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Queue {
    /// Its name.
    pub name: String,
    /// Who waits, next first.
    pub waiting: Vec<Waiting>,
}

/// A caller waiting (or a callback request waiting its turn).
#[derive(Debug, Serialize, ToSchema)]
pub struct Waiting {
    /// 1 = next.
    pub position: usize,
    /// The caller's number, masked (last four digits), when known.
    pub caller: Option<String>,
    /// Seconds waited so far.
    pub waited_s: u64,
    /// A callback request (the caller hung up and will be called back).
    pub callback: bool,
    /// The menus the caller came through, in order (names from the config; empty for a
    /// callback request). The caller's variables are not shown here.
    #[schema(example = json!(["main", "support"]))]
    pub path: Vec<String>,
}

/// An agent.
#[derive(Debug, Serialize, ToSchema)]
pub struct Agent {
    /// Its name.
    pub name: String,
    /// logged_out, available, ringing, on_call, wrap_up or paused.
    pub state: String,
    /// Why it is paused.
    pub pause_reason: Option<String>,
    /// Since when it has been in this state (seconds since the Unix epoch; as seen by this
    /// server since it started).
    pub since: Option<u64>,
    /// Whether its phone can be reached (registered, or a static URI).
    pub reachable: bool,
    /// Phones registered now.
    pub registrations: usize,
    /// Calls answered since the server started.
    pub calls: u64,
    /// The queues it serves.
    pub queues: Vec<String>,
    /// How it logs in: on_register or manual.
    pub login: String,
    /// On a call with a caller: the menus that caller came through, in order (null when
    /// not on a call or on a callback).
    #[schema(example = json!(["main", "support"]))]
    pub caller_path: Option<Vec<String>>,
}

/// A pause's reason.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseIn {
    /// Why (at most 64 characters; default "staff").
    #[schema(max_length = 64)]
    pub reason: Option<String>,
}

fn error(code: StatusCode, why: &str) -> Response {
    (
        code,
        Json(ApiError {
            error: why.to_string(),
        }),
    )
        .into_response()
}

/// The routes.
pub fn router(staff: Staff) -> Router {
    Router::new()
        .route("/api/queues", axum::routing::get(queues))
        .route(
            "/api/agents/{name}/{action}",
            axum::routing::post(agent_action),
        )
        .with_state(staff)
}

/// The live queue view: waiting callers and agents.
#[utoipa::path(get, path = "/api/queues",
    responses((status = 200, body = Queues), (status = 401, body = ApiError)))]
pub async fn queues(State(staff): State<Staff>, _m: Member) -> Response {
    Json(staff.desk.board.current()).into_response()
}

/// Log an agent in or out, pause or unpause it. A supervisor (mailboxes `*`) may act on any
/// agent; other staff users on their own agent (the one with their name) only.
#[utoipa::path(post, path = "/api/agents/{name}/{action}",
    params(("name" = String, Path, description = "The agent"),
           ("action" = String, Path, description = "login, logout, pause or unpause")),
    request_body(content = Option<PauseIn>, description = "For pause: the reason"),
    responses((status = 204, description = "Applied"), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 503, body = ApiError)))]
pub async fn agent_action(
    State(staff): State<Staff>,
    m: Member,
    Path((name, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let pause = if body.is_empty() {
        PauseIn::default()
    } else {
        match serde_json::from_slice::<Option<PauseIn>>(&body) {
            Ok(p) => p.unwrap_or_default(),
            Err(_) => return error(StatusCode::BAD_REQUEST, "send JSON: {\"reason\": \"...\"}"),
        }
    };
    let action = match action.as_str() {
        "login" => AgentAction::Login,
        "logout" => AgentAction::Logout,
        "unpause" => AgentAction::Unpause,
        "pause" => {
            let reason = pause.reason.unwrap_or_else(|| "staff".into());
            if reason.chars().count() > 64 {
                return error(StatusCode::BAD_REQUEST, "a reason is at most 64 characters");
            }
            // Control characters have no place in a log line or on the page.
            let reason = reason
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            AgentAction::Pause { reason }
        }
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "actions: login, logout, pause, unpause",
            );
        }
    };
    let supervisor = m.user.mailbox_filter().is_none();
    if !supervisor && m.name != name {
        return error(
            StatusCode::FORBIDDEN,
            "only your own agent (or every agent, for a user with every mailbox)",
        );
    }
    let Some(server) = &staff.desk.server else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no engine to ask");
    };
    match server.agent(name.clone(), action, m.name.clone()).await {
        Some(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Some(Err(e)) => error(StatusCode::NOT_FOUND, &e.to_string()),
        None => error(StatusCode::SERVICE_UNAVAILABLE, "the engine is stopping"),
    }
}

impl crate::driver::ServerHandle {
    /// Ask the engine loop to apply a staff user's (`by`) request for `agent`; `None` if
    /// the loop has stopped.
    pub async fn agent(
        &self,
        agent: String,
        action: AgentAction,
        by: String,
    ) -> Option<Result<(), ivr_engine::agent_desk::AgentRequestError>> {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        self.tx
            .send(crate::driver::NetIn::Agent {
                agent,
                action,
                by,
                reply,
            })
            .await
            .ok()?;
        outcome.await.ok()
    }
}

/// What the staff routes need of the engine: the board and a way to send it requests.
#[derive(Clone, Default)]
pub struct Desk {
    /// The latest queue view.
    pub board: Arc<Board>,
    /// The engine loop (`None` in tests without one).
    pub server: Option<crate::driver::ServerHandle>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_show_only_their_last_four_digits() {
        assert_eq!(mask("+15551234567"), "+•••••••4567");
        assert_eq!(mask("1234"), "••••");
        assert_eq!(mask("sip:x<script>"), "•••••••••••••");
        assert_eq!(mask("0612345678"), "••••••5678");
    }
}
