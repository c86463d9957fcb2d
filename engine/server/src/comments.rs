//! Survey comments for staff (issue #12): the recorded question of a satisfaction survey
//! leaves the caller's voice in `KEY.wav`, linked to the call record's answer. `GET
//! /api/comments` lists the newest, `GET /api/comments/{id}` (`id`: the comment's key)
//! serves one as WAV. A comment is a caller's voice and number and belongs to no mailbox:
//! only staff who see every mailbox (`*`) see comments; for others the list is empty and
//! a comment is not found, as requests of mailboxes they do not see are.

use crate::api::{ApiError, Member, Staff, error};
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use ivr_voicemail::call_log::RecentComment;
use ivr_voicemail::calls::is_comment_key;
use serde::Deserialize;
use utoipa::IntoParams;

/// The most comments one list returns.
pub const MAX_LIST: u32 = 100;

/// The routes.
pub fn router(staff: Staff) -> Router {
    Router::new()
        .route("/api/comments", axum::routing::get(list))
        .route("/api/comments/{id}", axum::routing::get(audio))
        .with_state(staff)
}

/// How many comments to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CommentsQuery {
    /// At most this many, newest first (default 20, at most 100).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// Whether `m` sees comments (every mailbox).
fn sees_comments(m: &Member) -> bool {
    m.user.mailbox_filter().is_none()
}

fn store_failed(e: ivr_voicemail::store::StoreError) -> Response {
    tracing::error!(error = %e, "call records store");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the store failed; try again",
    )
}

/// The newest survey comments, each with its call and where to hear it.
#[utoipa::path(get, path = "/api/comments", params(CommentsQuery),
    responses((status = 200, body = Vec<RecentComment>), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 503, body = ApiError)))]
pub async fn list(
    State(staff): State<Staff>,
    m: Member,
    q: Result<Query<CommentsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return error(StatusCode::BAD_REQUEST, "bad query: limit");
    };
    let limit = q.limit.unwrap_or(20);
    if !(1..=MAX_LIST).contains(&limit) {
        return error(StatusCode::BAD_REQUEST, "limit is 1 to 100");
    }
    if !sees_comments(&m) {
        return Json(Vec::<RecentComment>::new()).into_response();
    }
    match staff.store.recent_comments(limit).await {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => store_failed(e),
    }
}

/// A comment's audio, as WAV (8 kHz, 16-bit, mono); HTTP Range requests are served.
#[utoipa::path(get, path = "/api/comments/{id}", params(("id" = String, Path, description = "The comment's key, as the call record's answer names it (comment-...)")),
    responses((status = 200, content_type = "audio/wav", body = Vec<u8>), (status = 206, content_type = "audio/wav", body = Vec<u8>),
        (status = 401, body = ApiError), (status = 404, body = ApiError),
        (status = 416, description = "A range outside the file"), (status = 503, body = ApiError)))]
pub async fn audio(
    State(staff): State<Staff>,
    m: Member,
    Path(key): Path<String>,
    req: Request,
) -> Response {
    // Only a key a stored call record links names a file: no other recording, no path.
    let not_found = || error(StatusCode::NOT_FOUND, "no such comment");
    if !sees_comments(&m) || !is_comment_key(&key) {
        return not_found();
    }
    match staff.store.has_call_recording(&key).await {
        Ok(true) => {}
        Ok(false) => return not_found(),
        Err(e) => return store_failed(e),
    }
    let path = staff.voicemail_dir.join(format!("{key}.wav"));
    if !path.is_file() {
        return not_found();
    }
    use tower::ServiceExt;
    let served = tower_http::services::ServeFile::new_with_mime(
        &path,
        &"audio/wav".parse().expect("a MIME type"),
    )
    .oneshot(req)
    .await;
    match served {
        Ok(r) => r.map(axum::body::Body::new).into_response(),
        Err(e) => match e {},
    }
}
