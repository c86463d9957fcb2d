//! The server's HTTP side (axum), on `ivr serve --http ADDR`:
//!
//! - `GET /metrics`: the OpenMetrics text exposition (Prometheus reads it).
//! - `GET /admin/status`: version, uptime, calls in progress, the running config and the
//!   last reload (JSON).
//! - `POST /admin/reload`: validate the config file again and swap it in if valid; answers
//!   200 with the result, 422 with every error (the running config stays), 409 when the
//!   embedded demo runs and there is no file.
//!
//! Admin endpoints need `Authorization: Bearer TOKEN` when a token is configured
//! (`--admin-token-file` or `IVR_ADMIN_TOKEN`); without one they answer only requests from
//! the loopback interface.

use crate::driver::ServerHandle;
use crate::staff::same_secret;
use crate::status::{ReloadOutcome, Status};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Counters and config state.
    pub status: Arc<Status>,
    /// Talks to the engine loop.
    pub server: ServerHandle,
    /// The bearer token admin endpoints require, if any.
    pub admin_token: Option<Arc<str>>,
    /// The staff API and page.
    pub staff: crate::api::Staff,
    /// Security headers, cross-origin and host-name checks, cookie policy.
    pub web: Arc<crate::web::Guard>,
}

/// The routes.
pub fn router(state: AppState) -> Router {
    let admin = Router::new()
        .route("/admin/status", get(status))
        .route("/admin/reload", post(reload))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin));
    let staff = state.staff.clone();
    let web = state.web.clone();
    Router::new()
        .route("/metrics", get(metrics))
        .merge(admin)
        .with_state(state)
        .merge(crate::api::router(staff.clone()))
        .merge(crate::desk::router(staff.clone()))
        .merge(crate::reports::router(staff.clone()))
        .merge(crate::comments::router(staff.clone()))
        .merge(crate::page::router(staff))
        .layer(middleware::from_fn_with_state(web, crate::web::guard))
}

/// Serve on `listener` until the process ends, within `limits`: connections over a cap are
/// closed at once (or make room by closing a silent one), and a request head must arrive
/// within the header timeout. With `tls`, every connection is HTTPS: the handshake must
/// also finish within the header timeout, and requests carry [`crate::web::OverTls`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    limits: crate::conns::HttpLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<()> {
    use hyper_util::rt::TokioIo;
    use tower::ServiceExt;
    let app = router(state);
    let mut warned = false;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                if crate::conns::out_of_descriptors(&e) {
                    tracing::warn!(error = %e, "HTTP accept failed: out of file descriptors");
                } else {
                    tracing::debug!(error = %e, "HTTP accept failed");
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
        };
        // HTTPS: the handshake budget first (crate::tls::HANDSHAKES), before any crypto.
        if tls.is_some() && !crate::tls::HANDSHAKES.admit(peer.ip()) {
            tracing::debug!(client = %peer.ip(), "HTTPS connection closed: over the handshake budget");
            continue;
        }
        let Some(admitted) = limits.table.admit(peer.ip()) else {
            if !warned {
                tracing::warn!(client = %peer.ip(), "HTTP connection refused: at the connection cap");
                warned = true;
            }
            continue;
        };
        warned = false;
        let admitted = Arc::new(admitted);
        let seen = admitted.clone();
        let over_tls = tls.is_some();
        let service =
            app.clone()
                .map_request(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    seen.spoke();
                    req.extensions_mut().insert(ConnectInfo(peer));
                    if over_tls {
                        req.extensions_mut().insert(crate::web::OverTls);
                    }
                    req
                });
        let service = hyper_util::service::TowerToHyperService::new(service);
        let timeout = limits.header_timeout;
        let tls = tls.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let Some(acceptor) = tls else {
                return serve_one(TokioIo::new(stream), service, timeout, &admitted).await;
            };
            let handshake = tokio::select! {
                r = tokio::time::timeout(timeout, acceptor.accept(stream)) => r,
                _ = admitted.evict.notified() => return,
            };
            match handshake {
                Ok(Ok(s)) => serve_one(TokioIo::new(s), service, timeout, &admitted).await,
                Ok(Err(e)) => {
                    tracing::debug!(client = %peer.ip(), error = %e, "HTTPS handshake failed")
                }
                Err(_) => {
                    tracing::debug!(client = %peer.ip(), "HTTPS handshake not complete in time")
                }
            }
        });
    }
}

/// Serve one connection until it ends, or gracefully when the table needs its place.
async fn serve_one<I, S>(
    io: I,
    service: S,
    timeout: std::time::Duration,
    admitted: &crate::conns::Admitted,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming> + Send,
    S::Future: Send,
    S::ResBody: Send + 'static,
    <S::ResBody as hyper::body::Body>::Data: Send,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use hyper_util::rt::TokioTimer;
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = admitted.evict.notified() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(timeout, conn).await;
        }
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.status.prometheus(),
    )
        .into_response()
}

/// Admin endpoints: the token if one is configured, else loopback clients only.
async fn require_admin(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    match admin_refusal(&s, peer, request.headers()) {
        Some(refusal) => refusal,
        None => next.run(request).await,
    }
}

/// `None` if the request may use admin endpoints, else the refusal.
fn admin_refusal(s: &AppState, peer: SocketAddr, headers: &HeaderMap) -> Option<Response> {
    let error = |code: StatusCode, why: &str| {
        Some((code, Json(serde_json::json!({ "error": why }))).into_response())
    };
    match &s.admin_token {
        Some(token) => {
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            match given {
                Some(g) if same_secret(g.trim().as_bytes(), token.as_bytes()) => None,
                _ => {
                    let mut r =
                        error(StatusCode::UNAUTHORIZED, "a valid bearer token is required")?;
                    r.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        header::HeaderValue::from_static("Bearer realm=\"ivr admin\""),
                    );
                    Some(r)
                }
            }
        }
        None if peer.ip().is_loopback() => None,
        None => error(
            StatusCode::FORBIDDEN,
            "admin endpoints answer only the loopback interface unless an admin token is configured",
        ),
    }
}

async fn status(State(s): State<AppState>) -> Response {
    let now = SystemTime::now();
    Json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": s.status.uptime(now),
        "calls_active": s.status.calls_active(),
        "config": s.status.config(),
    }))
    .into_response()
}

async fn reload(State(s): State<AppState>) -> Response {
    let Some(outcome) = s.server.reload().await else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "error": "the server is shutting down" })),
        )
            .into_response();
    };
    let code = match outcome {
        ReloadOutcome::Reloaded { .. } => StatusCode::OK,
        ReloadOutcome::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        ReloadOutcome::NoFile => StatusCode::CONFLICT,
    };
    (code, Json(outcome)).into_response()
}
