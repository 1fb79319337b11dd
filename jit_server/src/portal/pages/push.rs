//! Push on the portal: turn it on (with an ntfy topic) or off, and let this browser get Web
//! Push notifications through the portal's service worker (`/portal/sw.js`, which shows them
//! and opens the approval page when one is clicked, nothing else).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use jit_proto::Secret;
use jit_proto::api::{AuditResult, PushEnroll};
use serde::Deserialize;

use super::{Form, outcome};
use crate::api::auth::Caller;
use crate::api::{Body, factors};
use crate::error::ApiError;
use crate::portal::{PageResult, Portal, Signed};
use crate::push::webpush::Recipient;
use crate::store::audit::{self, Event};
use crate::store::push;

const SERVICE_WORKER: &str = include_str!("../../../static/sw.js");

/// `GET /portal/sw.js`: served from /portal/ so that its scope is the portal.
pub async fn service_worker() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        SERVICE_WORKER,
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct PushForm {
    #[serde(default)]
    ntfy_topic: String,
    #[serde(default)]
    ntfy_token: String,
}

pub async fn enroll(
    State(portal): State<Portal>,
    s: Signed,
    Form(f): Form<PushForm>,
) -> PageResult {
    let topic = f.ntfy_topic.trim();
    let token = f.ntfy_token.trim();
    let req = PushEnroll {
        ntfy_topic: (!topic.is_empty()).then(|| topic.to_owned()),
        ntfy_token: (!token.is_empty()).then(|| Secret::new(token)),
    };
    let result = factors::enroll_push(
        Caller::Person(s.person.clone()),
        State(portal.app.clone()),
        Body(req),
    )
    .await;
    outcome(
        &portal,
        &s.session,
        result,
        |_| "Push is on: logins to shared accounts now wait for your approval here.".into(),
        "/portal/factors",
    )
    .await
}

pub async fn remove(State(portal): State<Portal>, s: Signed) -> PageResult {
    let result =
        factors::remove_push(Caller::Person(s.person.clone()), State(portal.app.clone())).await;
    outcome(
        &portal,
        &s.session,
        result,
        |_| "Push is off: logins ask for a code from your authenticator app.".into(),
        "/portal/factors",
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    p256dh: String,
    auth: String,
}

/// `PushSubscription.toJSON()`, as the browser gives it.
#[derive(Deserialize)]
pub struct Subscription {
    endpoint: String,
    keys: Keys,
    #[serde(default, rename = "expirationTime")]
    _expiration_time: Option<serde_json::Value>,
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// `POST /portal/push/subscribe` (from portal.js): this browser gets Web Push for the person.
pub async fn subscribe(
    State(portal): State<Portal>,
    s: Signed,
    Json(sub): Json<Subscription>,
) -> PageResult {
    let app = &portal.app;
    if !app.settings.push.web_push {
        return Ok(refuse(
            StatusCode::FORBIDDEN,
            "Web Push is switched off on this server.",
        ));
    }
    let endpoint = sub.endpoint.trim();
    if !endpoint.starts_with("https://")
        || endpoint.len() > 2048
        || endpoint
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Ok(refuse(
            StatusCode::BAD_REQUEST,
            "The browser's push address is not an https:// address.",
        ));
    }
    if let Err(e) = Recipient::parse(&sub.keys.p256dh, &sub.keys.auth) {
        return Ok(refuse(StatusCode::BAD_REQUEST, &e.to_string()));
    }
    let now = s.visit.now;
    let mut tx = app.store.write().await?;
    if push::factor(&mut tx, s.person.id).await?.is_none() {
        return Ok(refuse(
            StatusCode::CONFLICT,
            "Turn push on first; then this browser can be notified.",
        ));
    }
    push::subscribe(
        &mut tx,
        s.person.id,
        endpoint,
        &sub.keys.p256dh,
        &sub.keys.auth,
        now,
    )
    .await?;
    let origin = crate::push::webpush::origin(endpoint).unwrap_or_default();
    let e = Event::new(
        now,
        format!("person:{}", s.person.name),
        "person.push_browser",
        AuditResult::Ok,
    )
    .person(&s.person.name)
    .detail(serde_json::json!({ "push_service": origin }));
    audit::record(&mut tx, &e).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(serde_json::json!({ "redirect": "/portal/factors" })).into_response())
}
