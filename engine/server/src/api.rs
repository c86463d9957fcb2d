//! The staff JSON API under `/api/` (OpenAPI document at `/api/openapi.json`).
//!
//! Every route needs a staff user: an API token (`Authorization: Bearer ivr_...`, from
//! `ivr staff add-token`) or the session cookie of `/staff`. A user sees only the
//! mailboxes granted to them: a request in another mailbox does not exist for them (404).
//! Audio files are found by the request's id, never by a path from the request.

use crate::clock::unix_now;
use crate::staff::{User, Users};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use ivr_voicemail::store::{Filter, Status, Store, Stored};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use utoipa::{IntoParams, OpenApi, ToSchema};

/// What the staff routes share.
#[derive(Clone)]
pub struct Staff {
    /// The store.
    pub store: Store,
    /// Where recordings are.
    pub voicemail_dir: PathBuf,
    /// The users file (re-read when it changes).
    pub users: Arc<UsersFile>,
    /// Signed-in browser sessions.
    pub sessions: Arc<Sessions>,
    /// The live queue view and the way to the engine for agents' state changes.
    pub desk: crate::desk::Desk,
    /// The engine loop, told when staff close a queued callback (none in tools and tests
    /// without a server).
    pub server: Option<crate::driver::ServerHandle>,
}

/// The users file, re-read when its modification time changes.
pub struct UsersFile {
    path: PathBuf,
    cached: Mutex<(Option<SystemTime>, Arc<Users>)>,
}

impl UsersFile {
    /// Watch `path` (it may not exist yet: no users).
    pub fn new(path: PathBuf) -> UsersFile {
        UsersFile {
            path,
            cached: Mutex::new((None, Arc::new(Users::default()))),
        }
    }

    /// The current users (a bad file keeps the last good one, and is logged).
    pub fn get(&self) -> Arc<Users> {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let mut c = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if c.0 != mtime || mtime.is_none() {
            match Users::load(&self.path) {
                Ok(u) => *c = (mtime, Arc::new(u)),
                Err(e) => {
                    tracing::error!(error = %e, "staff users file refused; the previous one stays")
                }
            }
        }
        c.1.clone()
    }
}

/// Browser sessions: random ids (256 bits) to user names, for eight hours; and the
/// sign-in defences (guess counting, bounded password checks).
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, (String, Instant)>>,
    /// Failed sign-ins and the password checkers.
    pub signin: crate::signin::SignIn,
}

const SESSION_LIFE: Duration = Duration::from_secs(8 * 3600);
/// The session cookie's name.
pub const COOKIE: &str = "ivr_session";

impl Sessions {
    /// Open a session for `user`; returns its id.
    pub fn open(&self, user: &str) -> String {
        use rand_core::RngCore;
        let mut bytes = [0u8; 32];
        rand_core::OsRng.fill_bytes(&mut bytes);
        let id = hex::encode(bytes);
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        m.retain(|_, (_, exp)| *exp > now);
        m.insert(id.clone(), (user.to_string(), now + SESSION_LIFE));
        id
    }

    /// The user of a live session.
    pub fn user(&self, id: &str) -> Option<String> {
        let m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        m.get(id)
            .filter(|(_, exp)| *exp > Instant::now())
            .map(|(u, _)| u.clone())
    }

    /// Close a session.
    pub fn close(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

/// The session id in a request's cookies.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// A signed-in staff member.
pub struct Member {
    /// The name.
    pub name: String,
    /// The user.
    pub user: User,
}

/// An error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiError {
    /// What went wrong.
    pub error: String,
}

pub(crate) fn error(code: StatusCode, why: &str) -> Response {
    (
        code,
        Json(ApiError {
            error: why.to_string(),
        }),
    )
        .into_response()
}

/// The staff member behind a request: a bearer token, or a session cookie.
// The error is the response to send; handlers return it as it is.
#[allow(clippy::result_large_err)]
pub fn member(staff: &Staff, headers: &HeaderMap) -> Result<Member, Response> {
    let users = staff.users.get();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let found = match bearer {
        Some(token) => users
            .by_token(token.trim())
            .map(|(n, u)| (n.to_string(), u.clone())),
        None => session_cookie(headers)
            .and_then(|id| staff.sessions.user(&id))
            .and_then(|name| users.users.get(&name).map(|u| (name, u.clone()))),
    };
    match found {
        Some((name, user)) => Ok(Member { name, user }),
        None => {
            let mut r = error(StatusCode::UNAUTHORIZED, "sign in, or send an API token");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"ivr staff\""),
            );
            Err(r)
        }
    }
}

/// A status, as the API writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusName {
    /// Nobody has taken it.
    New,
    /// Taken by a staff member.
    Claimed,
    /// The caller was called back.
    CalledBack,
    /// Done.
    Resolved,
    /// Called back, no answer.
    NoAnswer,
    /// The number was wrong.
    WrongNumber,
}

impl From<StatusName> for Status {
    fn from(s: StatusName) -> Status {
        match s {
            StatusName::New => Status::New,
            StatusName::Claimed => Status::Claimed,
            StatusName::CalledBack => Status::CalledBack,
            StatusName::Resolved => Status::Resolved,
            StatusName::NoAnswer => Status::NoAnswer,
            StatusName::WrongNumber => Status::WrongNumber,
        }
    }
}

impl From<Status> for StatusName {
    fn from(s: Status) -> StatusName {
        match s {
            Status::New => StatusName::New,
            Status::Claimed => StatusName::Claimed,
            Status::CalledBack => StatusName::CalledBack,
            Status::Resolved => StatusName::Resolved,
            Status::NoAnswer => StatusName::NoAnswer,
            Status::WrongNumber => StatusName::WrongNumber,
        }
    }
}

/// A callback request.
#[derive(Debug, Serialize, ToSchema)]
pub struct Callback {
    /// Its id.
    pub id: String,
    /// The mailbox.
    pub mailbox: String,
    /// The caller ID, if any.
    pub caller_id: Option<String>,
    /// The number dialled, if any.
    pub called: Option<String>,
    /// The number to call back, if the caller gave one.
    pub callback_number: Option<String>,
    /// When (seconds since the Unix epoch).
    pub received_at: u64,
    /// The message's length (0: none).
    pub duration_ms: u64,
    /// Whether there is a message.
    pub has_message: bool,
    /// The caller's language.
    pub language: Option<String>,
    /// The menus the caller went through.
    pub menu_path: Vec<String>,
    /// The call's variables.
    pub variables: HashMap<String, String>,
    /// Whether the caller hung up before the end.
    pub hung_up: bool,
    /// Whether it was recovered after a crash.
    pub recovered: bool,
    /// Where it is in its handling.
    pub status: StatusName,
    /// Who took it.
    pub assignee: Option<String>,
    /// When it last changed.
    pub updated_at: u64,
    /// Where its audio is (`/api/callbacks/ID/audio`), if it has a message.
    pub audio: Option<String>,
    /// `voicemail`, or `queue_callback`: a caller waiting in a queue asked to be called
    /// back and the engine calls them when their turn comes (closing it cancels that).
    pub kind: String,
    /// For a queued callback, its queue.
    pub queue: Option<String>,
}

impl From<&Stored> for Callback {
    fn from(s: &Stored) -> Callback {
        let r = &s.request;
        Callback {
            id: r.id.clone(),
            mailbox: r.mailbox.clone(),
            caller_id: r.caller_id.clone(),
            called: r.called.clone(),
            callback_number: r.callback_number.clone(),
            received_at: r.received_at,
            duration_ms: r.duration_ms,
            has_message: r.has_message,
            language: r.language.clone(),
            menu_path: r.menu_path.clone(),
            variables: r.variables.iter().cloned().collect(),
            hung_up: r.hung_up,
            recovered: s.recovered,
            status: s.status.into(),
            assignee: s.assignee.clone(),
            updated_at: s.updated_at,
            audio: r
                .has_message
                .then(|| format!("/api/callbacks/{}/audio", r.id)),
            kind: r.kind.as_str().to_string(),
            queue: r.queue.clone(),
        }
    }
}

/// One change to a request.
#[derive(Debug, Serialize, ToSchema)]
pub struct Change {
    /// When (seconds since the Unix epoch).
    pub at: u64,
    /// Who.
    pub actor: String,
    /// What: created, recovered, status, note.
    pub action: String,
    /// The new status, or the note.
    pub detail: Option<String>,
}

/// A request with its history.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackDetail {
    /// The request.
    pub callback: Callback,
    /// Every change, oldest first.
    pub history: Vec<Change>,
}

/// Which requests to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this mailbox (among those granted).
    pub mailbox: Option<String>,
    /// Only this status.
    pub status: Option<StatusName>,
    /// Only those claimed by the caller of the API.
    pub mine: Option<bool>,
    /// At most this many (default 200, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// A status change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// The new status (`claimed` assigns the request to you).
    pub status: StatusName,
    /// A note kept with the change (at most 2000 characters).
    #[schema(max_length = 2000)]
    pub note: Option<String>,
}

/// A note.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteIn {
    /// Its text (1 to 2000 characters, not only spaces).
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    pub text: String,
}

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "ivr staff API", description = "Callback requests left by callers: list, read, listen, and work through them. Call-center queues: who waits, agents' states, and agents logged in, out, paused and unpaused. Reports from the call records, and the survey comments callers recorded."),
    paths(list, get_one, audio, set_status, add_note, crate::desk::queues, crate::desk::agent_action,
        crate::reports::calls, crate::comments::list, crate::comments::audio),
    components(schemas(Callback, CallbackDetail, Change, StatusChange, NoteIn, StatusName, ApiError,
        crate::desk::Queues, crate::desk::Queue, crate::desk::Waiting, crate::desk::Agent, crate::desk::PauseIn,
        ivr_voicemail::report::CallReport, ivr_voicemail::report::Bucket, ivr_voicemail::report::MenuReport,
        ivr_voicemail::report::KeyShare, ivr_voicemail::report::Outcomes, ivr_voicemail::report::CallbackReport,
        ivr_voicemail::report::SurveyQuestion, ivr_voicemail::report::AnswerShare, ivr_voicemail::report::ScoreBucket,
        ivr_voicemail::call_log::RecentComment)),
    modifiers(&Security)
)]
pub struct Doc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        api.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "token",
            Vec::<String>::new(),
        )]);
    }
}

/// The routes.
pub fn router(staff: Staff) -> Router {
    Router::new()
        .route("/api/openapi.json", axum::routing::get(openapi))
        .route("/api/callbacks", axum::routing::get(list))
        .route("/api/callbacks/{id}", axum::routing::get(get_one))
        .route("/api/callbacks/{id}/audio", axum::routing::get(audio))
        .route(
            "/api/callbacks/{id}/status",
            axum::routing::post(set_status),
        )
        .route("/api/callbacks/{id}/notes", axum::routing::post(add_note))
        .with_state(staff)
}

async fn openapi() -> Response {
    Json(Doc::openapi()).into_response()
}

fn store_error(e: ivr_voicemail::store::StoreError) -> Response {
    match e {
        ivr_voicemail::store::StoreError::NotFound(_) => {
            error(StatusCode::NOT_FOUND, "no such callback request")
        }
        e => {
            tracing::error!(error = %e, "callback store");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the callback store failed; try again",
            )
        }
    }
}

/// A request the member may see, or 404.
async fn visible(staff: &Staff, m: &Member, id: &str) -> Result<Stored, Response> {
    let s = staff.store.get(id).await.map_err(store_error)?;
    if m.user.may_see(&s.request.mailbox) {
        Ok(s)
    } else {
        Err(error(StatusCode::NOT_FOUND, "no such callback request"))
    }
}

/// The signed-in member, for handlers: a request without one is answered 401.
impl axum::extract::FromRequestParts<Staff> for Member {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        staff: &Staff,
    ) -> Result<Member, Response> {
        member(staff, &parts.headers)
    }
}

/// What handlers return: the answer, or the error response to send instead.
type Answer = Result<Response, Response>;

/// List callback requests, newest first.
#[utoipa::path(get, path = "/api/callbacks", params(ListQuery),
    responses((status = 200, body = [Callback]), (status = 400, body = ApiError), (status = 401, body = ApiError)))]
async fn list(
    State(staff): State<Staff>,
    m: Member,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let Ok(Query(q)) = q else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "bad query: mailbox, status, mine, limit",
        ));
    };
    let limit = q.limit.unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return Err(error(StatusCode::BAD_REQUEST, "limit is 1 to 1000"));
    }
    let mut mailboxes = m.user.mailbox_filter();
    if let Some(mb) = q.mailbox {
        if !m.user.may_see(&mb) {
            return Ok(Json(Vec::<Callback>::new()).into_response());
        }
        mailboxes = Some(vec![mb]);
    }
    let filter = Filter {
        mailboxes,
        status: q.status.map(Status::from),
        assignee: q.mine.unwrap_or(false).then(|| m.name.clone()),
        limit,
    };
    let rows = staff.store.list(&filter).await.map_err(store_error)?;
    Ok(Json(rows.iter().map(Callback::from).collect::<Vec<_>>()).into_response())
}

/// One callback request with its history.
#[utoipa::path(get, path = "/api/callbacks/{id}", params(("id" = String, Path, description = "The request's id")),
    responses((status = 200, body = CallbackDetail), (status = 401, body = ApiError), (status = 404, body = ApiError)))]
async fn get_one(State(staff): State<Staff>, m: Member, Path(id): Path<String>) -> Answer {
    let s = visible(&staff, &m, &id).await?;
    let history = staff.store.history(&id).await.map_err(store_error)?;
    Ok(Json(CallbackDetail {
        callback: Callback::from(&s),
        history: history
            .into_iter()
            .map(|c| Change {
                at: c.at,
                actor: c.actor,
                action: c.action,
                detail: c.detail,
            })
            .collect(),
    })
    .into_response())
}

/// The message, as WAV (8 kHz, 16-bit, mono); HTTP Range requests are served.
#[utoipa::path(get, path = "/api/callbacks/{id}/audio", params(("id" = String, Path, description = "The request's id")),
    responses((status = 200, content_type = "audio/wav", body = Vec<u8>), (status = 206, content_type = "audio/wav", body = Vec<u8>),
        (status = 401, body = ApiError), (status = 404, body = ApiError), (status = 416, description = "A range outside the file")))]
async fn audio(
    State(staff): State<Staff>,
    m: Member,
    Path(id): Path<String>,
    req: Request,
) -> Answer {
    let s = visible(&staff, &m, &id).await?;
    if !s.request.has_message {
        return Err(error(StatusCode::NOT_FOUND, "this request has no message"));
    }
    // The file is named by the stored id, never by what the request said.
    let path = staff.voicemail_dir.join(format!("{}.wav", s.request.id));
    use tower::ServiceExt;
    let served = tower_http::services::ServeFile::new_with_mime(
        &path,
        &"audio/wav".parse().expect("a MIME type"),
    )
    .oneshot(req)
    .await;
    match served {
        Ok(r) => Ok(r.map(axum::body::Body::new).into_response()),
        Err(e) => match e {},
    }
}

/// Change a request's status.
#[utoipa::path(post, path = "/api/callbacks/{id}/status", params(("id" = String, Path, description = "The request's id")),
    request_body = StatusChange,
    responses((status = 200, body = Callback), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 404, body = ApiError)))]
async fn set_status(
    State(staff): State<Staff>,
    m: Member,
    Path(id): Path<String>,
    body: Result<Json<StatusChange>, axum::extract::rejection::JsonRejection>,
) -> Answer {
    let Ok(Json(change)) = body else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "send JSON: {\"status\": \"resolved\", \"note\": \"...\"}",
        ));
    };
    if change
        .note
        .as_ref()
        .is_some_and(|n| n.chars().count() > 2000)
    {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "a note is at most 2000 characters",
        ));
    }
    visible(&staff, &m, &id).await?;
    let s = staff
        .store
        .set_status(
            &id,
            change.status.into(),
            &m.name,
            change.note.as_deref(),
            unix_now(),
        )
        .await
        .map_err(store_error)?;
    // A queued callback closed by staff (anything but new or claimed) is not called.
    if s.request.kind == ivr_voicemail::RequestKind::QueueCallback
        && !matches!(
            s.status,
            ivr_voicemail::store::Status::New | ivr_voicemail::store::Status::Claimed
        )
        && let Some(server) = &staff.server
    {
        server.cancel_callback(id).await;
    }
    Ok(Json(Callback::from(&s)).into_response())
}

/// Add a note to a request.
#[utoipa::path(post, path = "/api/callbacks/{id}/notes", params(("id" = String, Path, description = "The request's id")),
    request_body = NoteIn,
    responses((status = 204, description = "Added"), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 404, body = ApiError)))]
async fn add_note(
    State(staff): State<Staff>,
    m: Member,
    Path(id): Path<String>,
    body: Result<Json<NoteIn>, axum::extract::rejection::JsonRejection>,
) -> Answer {
    let Ok(Json(note)) = body else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "send JSON: {\"text\": \"...\"}",
        ));
    };
    let n = note.text.trim().chars().count();
    if n == 0 || n > 2000 {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "a note is 1 to 2000 characters",
        ));
    }
    visible(&staff, &m, &id).await?;
    staff
        .store
        .add_note(&id, &m.name, note.text.trim(), unix_now())
        .await
        .map_err(store_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
