//! The reports from the call records for staff (issue #12): `GET /api/reports/calls`, the
//! same document as `ivr calls report --json` (figures defined in docs/calls.md). Every
//! staff user may read it: it holds counts only, no caller's number or message.

use crate::api::{ApiError, Member, Staff, error};
use anyhow::Context as _;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use ivr_voicemail::report::{CallReport, ReportFilter};
use serde::Deserialize;
use utoipa::IntoParams;

/// The longest entry menu name a query may give (menu names are far shorter).
const MAX_ENTRY: usize = 256;

/// A time as `--from`/`--to` and the API take it: a date (`2026-12-01`, midnight UTC) or an
/// RFC 3339 time (`2026-12-01T08:00:00Z`), as Unix milliseconds.
pub fn parse_time(s: &str) -> anyhow::Result<i64> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t.as_millisecond());
    }
    let date: jiff::civil::Date = s.parse().with_context(|| {
        format!("'{s}' is neither a date (2026-12-01) nor a time (2026-12-01T08:00:00Z)")
    })?;
    let t: jiff::Timestamp = format!("{date}T00:00:00Z")
        .parse()
        .context("a date out of range")?;
    Ok(t.as_millisecond())
}

/// Which calls a report covers.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// Calls started at or after this: a date (`2026-12-01`, midnight UTC), or an RFC 3339
    /// time (`2026-12-01T08:00:00Z`); default: the oldest kept.
    #[param(format = Date)]
    pub from: Option<String>,
    /// Calls started before this, in the same forms; default: no end. A window that ends
    /// before it starts has no calls.
    #[param(format = Date)]
    pub to: Option<String>,
    /// Only calls that entered by this menu.
    #[param(max_length = 256)]
    pub entry: Option<String>,
}

impl ReportQuery {
    /// The filter, or why the query is wrong. A window that ends before it starts is
    /// empty, not wrong (as `ivr calls report` says it is: there a person typed it).
    pub fn filter(self) -> Result<ReportFilter, String> {
        let time = |t: Option<String>| {
            t.map(|t| parse_time(&t).map_err(|e| format!("{e:#}")))
                .transpose()
        };
        let (from_ms, to_ms) = (time(self.from)?, time(self.to)?);
        let entry = self.entry.filter(|e| !e.is_empty());
        if entry.as_ref().is_some_and(|e| e.len() > MAX_ENTRY) {
            return Err(format!("entry is at most {MAX_ENTRY} bytes"));
        }
        Ok(ReportFilter {
            from_ms,
            to_ms,
            entry,
        })
    }
}

/// The routes.
pub fn router(staff: Staff) -> Router {
    Router::new()
        .route("/api/reports/calls", axum::routing::get(calls))
        .with_state(staff)
}

/// The calls report: calls per day (and hour, for at most 2 days), each menu's key shares,
/// invalid keys, timeouts and hang-ups, the calls' outcomes, callback requests handled.
#[utoipa::path(get, path = "/api/reports/calls", params(ReportQuery),
    responses((status = 200, body = CallReport), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 503, body = ApiError)))]
pub async fn calls(
    State(staff): State<Staff>,
    _m: Member,
    q: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return error(StatusCode::BAD_REQUEST, "bad query: from, to, entry");
    };
    let filter = match q.filter() {
        Ok(f) => f,
        Err(why) => return error(StatusCode::BAD_REQUEST, &why),
    };
    match staff.store.report_rows(&filter).await {
        Ok(rows) => Json(CallReport::build(&filter, &rows)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "call records store");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store failed; try again",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(from: &str, to: &str, entry: &str) -> Result<ReportFilter, String> {
        let s = |v: &str| Some(v.to_string());
        ReportQuery {
            from: s(from),
            to: s(to),
            entry: s(entry),
        }
        .filter()
    }

    #[test]
    fn queries_are_checked() {
        let f = query("2026-12-01", "2026-12-01T12:00:00Z", "main").unwrap();
        assert_eq!(f.from_ms, Some(1_796_083_200_000));
        assert_eq!(f.to_ms, Some(1_796_083_200_000 + 12 * 3_600_000));
        assert_eq!(f.entry.as_deref(), Some("main"));
        let open = ReportQuery {
            from: None,
            to: None,
            entry: Some(String::new()),
        };
        assert_eq!(open.filter().unwrap(), ReportFilter::default(), "unbounded");
        assert!(
            query("", "2026-12-01", "").is_err(),
            "an empty time is no time"
        );
        assert!(
            query("2026-12-02", "2026-12-01", "").is_ok(),
            "empty, not wrong"
        );
        assert!(
            query("yesterday", "", "")
                .unwrap_err()
                .contains("neither a date")
        );
        assert!(query("", "", &"m".repeat(MAX_ENTRY + 1)).is_err());
    }

    /// The report's schema in the OpenAPI document names the survey scores, and every
    /// schema it refers to is in the document.
    #[test]
    fn the_openapi_document_describes_the_survey_scores() {
        use utoipa::OpenApi as _;
        let doc = serde_json::to_value(crate::api::Doc::openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let report = &schemas["CallReport"]["properties"];
        assert!(report["surveys"].is_object(), "{report:#}");
        let question = &schemas["SurveyQuestion"]["properties"];
        for field in [
            "average",
            "answers",
            "buckets",
            "unanswered_share",
            "scored",
        ] {
            assert!(question[field].is_object(), "{field}: {question:#}");
        }
        assert!(schemas["Outcomes"]["properties"]["voicemail_left_nothing"].is_object());
        fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(serde_json::Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(&doc, &mut all);
        for r in all {
            let name = r.trim_start_matches("#/components/schemas/");
            assert!(schemas[name].is_object(), "{r} is not in the document");
        }
    }
}
