//! The HTTP API: routes, who may call them, and request-body handling.
//!
//! Every handler reads the clock once (via [`jit_clock`]) and passes `now` down. Bodies are
//! JSON with unknown fields refused and a size cap; every failure becomes an [`ApiError`] with a
//! message that says what was wrong.

pub(crate) mod accounts;
pub(crate) mod approvals;
pub(crate) mod audit;
pub(crate) mod auth;
mod bootstrap;
pub mod client_addr;
pub(crate) mod enroll;
pub(crate) mod factor;
pub(crate) mod factors;
pub(crate) mod groups;
pub(crate) mod host;
pub(crate) mod hosts;
mod offline;
pub(crate) mod persons;
pub mod rate_limit;
pub(crate) mod reservations;
pub(crate) mod sessions;
pub(crate) mod ssh_keys;
pub(crate) mod tokens;
pub(crate) mod watch;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::routing::{delete, get, post};
use serde::de::DeserializeOwned;

use crate::config::Settings;
use crate::error::{ApiError, ApiResult};
use crate::keys::AtRestKey;
use crate::store::Store;
use jit_proto::api::ErrorCode;

pub use auth::Caller;

pub struct AppState {
    pub store: Store,
    pub key: AtRestKey,
    pub settings: Settings,
    /// Goes into join tokens, so hosts pin this server's CA.
    pub ca_fingerprint: jit_proto::fingerprint::Fingerprint,
    /// Push notifications, and the signal that an approval changed.
    pub push: crate::push::Notifier,
    /// Wakes the held `GET /v1/host/watch` requests when the change log grows.
    pub changes: crate::change_feed::ChangeFeed,
    /// Limits on join and enrollment, and the count of refused joins.
    pub limits: rate_limit::Limits,
}

pub type State = Arc<AppState>;

pub fn router(state: State) -> Router {
    let limit = state.settings.max_body_bytes;
    let v1 = Router::new()
        .route("/whoami", get(auth::whoami))
        .route("/persons", post(persons::add).get(persons::list))
        .route("/persons/{name}", get(persons::show))
        .route("/persons/{name}/disable", post(persons::disable))
        .route("/persons/{name}/enable", post(persons::enable))
        .route("/persons/{name}/reset-factor", post(persons::reset_factor))
        .route("/persons/{name}/unlock", post(persons::unlock))
        .route("/persons/{name}/admin", post(persons::set_role))
        .route("/bootstrap", post(bootstrap::bootstrap))
        .route("/tokens", get(tokens::list))
        .route("/tokens/{id}/revoke", post(tokens::revoke))
        .route("/groups", post(groups::add).get(groups::list))
        .route("/groups/{name}", get(groups::show))
        .route("/groups/{name}/members", post(groups::add_member))
        .route(
            "/groups/{name}/members/{person}",
            delete(groups::remove_member),
        )
        .route("/accounts", post(accounts::add).get(accounts::list))
        .route(
            "/accounts/{name}",
            get(accounts::show).patch(accounts::change),
        )
        .route("/accounts/{name}/disable", post(accounts::disable))
        .route("/accounts/{name}/enable", post(accounts::enable))
        .route("/hosts", post(hosts::add).get(hosts::list))
        .route("/hosts/{name}/rejoin", post(hosts::rejoin))
        .route("/hosts/{name}/disable", post(hosts::disable))
        .route("/hosts/{name}/enable", post(hosts::enable))
        .route(
            "/reservations",
            post(reservations::reserve).get(reservations::list),
        )
        .route("/reservations/release", post(reservations::release))
        .route("/reservations/extend", post(reservations::extend))
        .route("/sessions", get(sessions::list))
        .route("/keys", post(ssh_keys::add).get(ssh_keys::list))
        .route("/keys/{id}", delete(ssh_keys::remove))
        .route("/audit", get(audit::query))
        .route("/audit/verify", get(audit::verify))
        .route("/enroll/start", post(enroll::start))
        .route("/enroll/confirm", post(enroll::confirm))
        .route("/join", post(hosts::join))
        .route("/host/accounts", get(host::accounts))
        .route("/host/logins", post(host::begin))
        .route("/host/logins/{attempt}/verify", post(host::verify))
        .route("/host/logins/{attempt}/wait", post(host::wait))
        .route("/approvals", get(approvals::list))
        .route("/approvals/{id}/approve", post(approvals::approve))
        .route("/approvals/{id}/report", post(approvals::report))
        .route("/factors", get(factors::show))
        .route(
            "/factors/push",
            post(factors::enroll_push).delete(factors::remove_push),
        )
        .route("/factors/totp", post(factors::totp_start))
        .route("/factors/totp/confirm", post(factors::totp_confirm))
        .route("/enroll/push", post(enroll::push))
        .route("/host/events", post(host::events))
        .route("/host/reservations", post(sessions::host_reservations))
        .route("/host/offline", get(offline::grants))
        .route("/host/keys", get(ssh_keys::for_host))
        .route("/host/watch", get(watch::watch));
    Router::new()
        .nest(jit_proto::api::API_PREFIX, v1)
        .fallback(not_found)
        .layer(axum::middleware::from_fn(
            move |req: Request, next: axum::middleware::Next| async move {
                crate::retry::rerun_on_conflict(req, next, limit).await
            },
        ))
        .layer(axum::middleware::from_fn(
            move |req: Request, next: axum::middleware::Next| async move {
                refuse_declared_oversize(req, next, limit).await
            },
        ))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// A body whose declared length is over the limit is refused without being parsed. A client
/// that asked first (`Expect: 100-continue`) is answered at once and never sends it. Otherwise
/// up to [`DRAIN_MAX`] bytes of it are read and dropped before answering (a lingering close, as
/// web servers do): closing on a client that is still sending resets the connection, and the
/// reset can destroy the answer before the client reads it. Bodies without a declared length
/// are still capped as they are read ([`DefaultBodyLimit`]).
async fn refuse_declared_oversize(
    req: Request,
    next: axum::middleware::Next,
    limit: usize,
) -> axum::response::Response {
    use axum::http::header::{CONTENT_LENGTH, EXPECT};
    use axum::response::IntoResponse;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Some(n) = declared.filter(|n| *n > limit as u64) else {
        return next.run(req).await;
    };
    let asked_first = req
        .headers()
        .get(EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if !asked_first {
        let drain = axum::body::to_bytes(req.into_body(), DRAIN_MAX);
        let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
    }
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("request body is over the size limit ({n} bytes; at most {limit})"),
    )
    .into_response()
}

/// Most of an oversized body read (and dropped) before refusing it, and for how long.
const DRAIN_MAX: usize = 1024 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

async fn not_found() -> ApiError {
    ApiError::not_found("no such API endpoint; see docs/api.md for the /v1 paths")
}

/// A JSON body: malformed JSON, a wrong type, an unknown field or an over-long body become a
/// 4xx that says what was wrong and where (line and column, field names), but never repeats a
/// value from the body: bodies carry codes and secrets ([`jit_proto::json_error`]).
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::bad_request(
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = match Bytes::from_request(req, state).await {
            Ok(b) => zeroize::Zeroizing::new(Vec::from(b)),
            Err(e) if e.status().as_u16() == 413 => {
                return Err(ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    "request body is over the size limit",
                ));
            }
            Err(_) => return Err(ApiError::bad_request("cannot read the request body")),
        };
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| body_error(&e))
    }
}

/// `application/json`, or any `application/…+json`, with or without parameters.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn body_error(e: &serde_json::Error) -> ApiError {
    let what = jit_proto::json_error::describe(e);
    match e.classify() {
        serde_json::error::Category::Data => {
            ApiError::bad_request(format!("request body does not fit: {what}"))
        }
        _ => ApiError::bad_request(format!("request body is not valid JSON: {what}")),
    }
}

/// Query-string parameters, with the same error treatment as [`Body`].
pub struct Params<T>(pub T);

impl<S, T> FromRequestParts<S> for Params<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Params(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::bad_request(
                format!("bad query parameters: {}", e.body_text()),
            )),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// Parses a name from a URL path segment.
pub fn path_name<T: std::str::FromStr<Err = jit_proto::NameError>>(s: &str) -> ApiResult<T> {
    s.parse::<T>().map_err(ApiError::from)
}

pub use jit_clock::now;

/// Marks ran-out reservations and push challenges expired, for the background sweeper.
pub async fn expire_due_now(conn: &mut sqlx::AnyConnection) -> ApiResult<()> {
    let now = now();
    reservations::expire_due(conn, now).await?;
    approvals::expire_due(conn, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection_of<T: DeserializeOwned>(body: &'static str) -> ApiError {
        let req = Request::builder()
            .method("POST")
            .uri("/")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body))
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        match rt.block_on(Body::<T>::from_request(req, &())) {
            Ok(_) => panic!("{body} was accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn body_rejections_never_repeat_a_code() {
        use jit_proto::api::{HostEvents, LoginVerify, NewReservation};
        let cases: Vec<ApiError> = vec![
            rejection_of::<LoginVerify>(r#"{"code":123456}"#),
            rejection_of::<LoginVerify>(r#"{"code":["123456"]}"#),
            rejection_of::<LoginVerify>(r#"{"code":"123456","123456":1}"#),
            rejection_of::<LoginVerify>(r#"{"code":"123456"} 123456"#),
            rejection_of::<LoginVerify>(r#"{"code":"123456"#),
            rejection_of::<NewReservation>(r#"{"account":"123456","host":"web01"}"#),
            rejection_of::<NewReservation>(r#"{"account":"admin","host":"web01","reason":123456}"#),
            rejection_of::<HostEvents>(r#"{"events":[{"id":"1","at":"123456"}]}"#),
        ];
        for e in cases {
            assert_eq!(e.code, ErrorCode::BadRequest, "{}", e.message);
            assert!(!e.message.contains("123456"), "{}", e.message);
            assert!(e.message.contains("line 1 column"), "{}", e.message);
        }
        let e = rejection_of::<LoginVerify>(r#"{"code":123456}"#);
        assert_eq!(
            e.message,
            "request body does not fit: invalid type: integer, expected a string at line 1 column 14"
        );
        let e = rejection_of::<LoginVerify>(r#"{"code":"x","colour":1}"#);
        assert!(
            e.message.contains("unknown field `colour`"),
            "{}",
            e.message
        );
        let e = rejection_of::<LoginVerify>(r#"{"code":"#);
        assert!(
            e.message.starts_with("request body is not valid JSON"),
            "{}",
            e.message
        );
    }
}
