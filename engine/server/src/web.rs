//! The HTTP side's defences for browsers, in one middleware ([`guard`]):
//!
//! - **Response headers** on every answer: a Content-Security-Policy that allows only the
//!   server's own script, style, media and fetches and no framing (`frame-ancestors 'none'`,
//!   with `X-Frame-Options: DENY` for older browsers), `X-Content-Type-Options: nosniff`,
//!   `Referrer-Policy: no-referrer`, and `Cache-Control: no-store` (callback requests are
//!   personal data; nothing of this site belongs in a shared or disk cache).
//! - **Cross-origin writes refused.** A request with a method other than GET, HEAD or
//!   OPTIONS (sign-in, sign-out, status changes, notes, `POST /admin/reload`) is refused
//!   (403) when the browser says it comes from another site: `Sec-Fetch-Site` other than
//!   `same-origin` or `none`, or, from browsers without Fetch Metadata, an `Origin` whose
//!   host and port differ from `Host`. A request with neither header is not from a browser
//!   page (curl, scripts with a token) and is let through — the rule of Go's
//!   `net/http.CrossOriginProtection`. A cross-origin `text/plain` form POST, which skips
//!   CORS preflight, is therefore refused.
//! - **Known host names only** for `/staff`, `/api/` and `/admin/` (DNS rebinding: a page
//!   on a name the attacker controls, re-pointed at this server, would otherwise be
//!   same-origin with it). Allowed: `localhost`, `127.0.0.1`, `::1`, the HTTP listen
//!   address, and every name given with `--http-host` (or `IVR_HTTP_HOSTS`). When the
//!   server listens on every interface (`0.0.0.0` or `::`), any IP-literal host is also
//!   accepted: rebinding needs a name. Others get 421. `/metrics` answers any host.
//! - **`Secure` cookies.** The session cookie gets `Secure` when `--secure-cookies always`,
//!   or (default `auto`) when the request came over HTTPS: the server's own (`--https`), or
//!   a `--trusted-proxy` address with `X-Forwarded-Proto: https`. `X-Forwarded-Proto` from
//!   any other client is ignored.

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// `ivr serve` options for the web defences.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct WebArgs {
    /// A host name (or address) the staff page, API and admin endpoints answer to, besides
    /// localhost, 127.0.0.1, ::1 and the HTTP listen address (repeat, or a comma-separated
    /// list in IVR_HTTP_HOSTS).
    #[arg(long = "http-host", env = "IVR_HTTP_HOSTS", value_delimiter = ',')]
    pub http_hosts: Vec<String>,
    /// When the session cookie is marked Secure: `auto` (requests from a --trusted-proxy
    /// with X-Forwarded-Proto: https), `always` (the site is only reached over HTTPS), or
    /// `never`.
    #[arg(long, value_enum, default_value_t = SecureCookies::Auto)]
    pub secure_cookies: SecureCookies,
    /// The address of an HTTP reverse proxy whose X-Forwarded-Proto is believed (repeat, or
    /// a comma-separated list in IVR_TRUSTED_PROXIES). HTTP only: SIP proxies whose
    /// P-Asserted-Identity is believed are --sip-trusted-proxy.
    #[arg(
        long = "trusted-proxy",
        env = "IVR_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<IpAddr>,
}

/// A request extension: the request came over the server's own TLS (`--https`).
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

/// When the session cookie is marked `Secure`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SecureCookies {
    /// When a trusted proxy says the request came over HTTPS.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The policy, built once from [`WebArgs`] and the HTTP listen address.
#[derive(Debug, Clone)]
pub struct Guard {
    hosts: HashSet<String>,
    any_ip_literal: bool,
    secure: SecureCookies,
    proxies: Vec<IpAddr>,
}

/// The Content-Security-Policy of every answer: the staff page loads its own script and
/// style, plays audio and fetches JSON from this server, posts forms here, and is never framed.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; media-src 'self'; connect-src 'self'; form-action 'self'; \
    base-uri 'none'; frame-ancestors 'none'";

impl Guard {
    /// The policy for a server listening on `listen`.
    pub fn new(args: &WebArgs, listen: SocketAddr) -> Guard {
        let mut hosts: HashSet<String> = ["localhost", "127.0.0.1", "::1"]
            .into_iter()
            .map(str::to_string)
            .collect();
        hosts.insert(listen.ip().to_string());
        for h in &args.http_hosts {
            let h = h.trim().trim_start_matches('[').trim_end_matches(']');
            if !h.is_empty() {
                hosts.insert(h.to_ascii_lowercase());
            }
        }
        Guard {
            hosts,
            any_ip_literal: listen.ip().is_unspecified(),
            secure: args.secure_cookies,
            proxies: args.trusted_proxies.clone(),
        }
    }

    /// Whether a `Host` header value names this server.
    pub fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host).to_ascii_lowercase();
        self.hosts.contains(&name) || (self.any_ip_literal && name.parse::<IpAddr>().is_ok())
    }

    fn over_https(&self, peer: IpAddr, headers: &HeaderMap, tls: bool) -> bool {
        match self.secure {
            SecureCookies::Always => true,
            SecureCookies::Never => false,
            SecureCookies::Auto => {
                tls || self.proxies.contains(&peer)
                    && headers
                        .get("x-forwarded-proto")
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
            }
        }
    }
}

/// The host part of a `Host` value: without the port, and without brackets for IPv6.
fn host_name(host: &str) -> &str {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Why a state-changing request is refused as cross-origin, if it is (Fetch Metadata first,
/// then `Origin`).
pub fn cross_origin(method: &Method, headers: &HeaderMap) -> Option<&'static str> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        return match site {
            "same-origin" | "none" => None,
            _ => Some("cross-site request refused (Sec-Fetch-Site)"),
        };
    }
    match (text("origin"), text("host")) {
        (None, _) => None,
        (Some(origin), Some(host)) => {
            let authority = origin.split_once("://").map(|(_, a)| a).unwrap_or("");
            let default_port = if origin.starts_with("https://") {
                ":443"
            } else {
                ":80"
            };
            let host = host.trim();
            let same = authority.eq_ignore_ascii_case(host)
                || format!("{authority}{default_port}").eq_ignore_ascii_case(host)
                || authority.eq_ignore_ascii_case(host.trim_end_matches(default_port));
            (!same).then_some("cross-origin request refused (Origin)")
        }
        (Some(_), None) => Some("cross-origin request refused (Origin without Host)"),
    }
}

fn refuse(code: StatusCode, why: &str) -> Response {
    (code, axum::Json(serde_json::json!({ "error": why }))).into_response()
}

/// The middleware: host check, cross-origin check, then the response headers.
pub async fn guard(
    State(g): State<Arc<Guard>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let protected = path == "/staff"
        || path.starts_with("/staff/")
        || path.starts_with("/api/")
        || path.starts_with("/admin/");
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut response = if protected && !g.host_allowed(host) {
        tracing::warn!(client = %peer.ip(), host, "HTTP request for an unknown host name refused");
        refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "unknown host name: add it with --http-host",
        )
    } else if let Some(why) = cross_origin(request.method(), request.headers()) {
        tracing::warn!(client = %peer.ip(), path, "{why}");
        refuse(StatusCode::FORBIDDEN, why)
    } else {
        let tls = request.extensions().get::<OverTls>().is_some();
        let https = g.over_https(peer.ip(), request.headers(), tls);
        let mut r = next.run(request).await;
        if https {
            secure_cookies(r.headers_mut());
        }
        r
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Add `Secure` to every cookie the response sets.
fn secure_cookies(headers: &mut HeaderMap) {
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| {
            let v = v.to_str().ok()?;
            HeaderValue::from_str(&format!("{v}; Secure")).ok()
        })
        .collect();
    if cookies.is_empty() {
        return;
    }
    headers.remove(header::SET_COOKIE);
    for c in cookies {
        headers.append(header::SET_COOKIE, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.insert(*n, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn hosts() {
        let args = WebArgs {
            http_hosts: vec!["ivr.example.org".into()],
            ..WebArgs::default()
        };
        let g = Guard::new(&args, "127.0.0.1:8080".parse().unwrap());
        for ok in [
            "127.0.0.1:8080",
            "localhost",
            "LOCALHOST:1",
            "[::1]:8080",
            "ivr.example.org",
        ] {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for bad in ["evil.example:8080", "10.0.0.1:8080", ""] {
            assert!(!g.host_allowed(bad), "{bad}");
        }
        let any = Guard::new(&WebArgs::default(), "0.0.0.0:8080".parse().unwrap());
        assert!(any.host_allowed("10.0.0.1:8080") && !any.host_allowed("evil.example"));
    }

    #[test]
    fn cross_origin_writes() {
        let post = Method::POST;
        assert_eq!(cross_origin(&post, &headers(&[])), None, "not a browser");
        assert_eq!(
            cross_origin(&post, &headers(&[("sec-fetch-site", "same-origin")])),
            None
        );
        assert!(cross_origin(&post, &headers(&[("sec-fetch-site", "cross-site")])).is_some());
        assert!(cross_origin(&post, &headers(&[("sec-fetch-site", "same-site")])).is_some());
        assert_eq!(
            cross_origin(&Method::GET, &headers(&[("sec-fetch-site", "cross-site")])),
            None
        );
        assert_eq!(
            cross_origin(
                &post,
                &headers(&[
                    ("origin", "http://127.0.0.1:8080"),
                    ("host", "127.0.0.1:8080")
                ])
            ),
            None
        );
        assert_eq!(
            cross_origin(
                &post,
                &headers(&[("origin", "https://ivr.example"), ("host", "ivr.example")])
            ),
            None
        );
        assert!(
            cross_origin(
                &post,
                &headers(&[
                    ("origin", "http://evil.example"),
                    ("host", "127.0.0.1:8080")
                ])
            )
            .is_some()
        );
        assert!(
            cross_origin(
                &post,
                &headers(&[("origin", "null"), ("host", "127.0.0.1:8080")])
            )
            .is_some()
        );
    }

    #[test]
    fn cookies_get_secure() {
        let mut h = headers(&[("set-cookie", "a=b; HttpOnly")]);
        secure_cookies(&mut h);
        assert_eq!(h.get("set-cookie").unwrap(), "a=b; HttpOnly; Secure");
    }
}
