//! The portal's pages and the few things they share: making and replacing sessions, one-time
//! messages, and form bodies.

mod admin;
mod approvals;
mod assets;
mod factors;
mod home;
mod keys;
mod push;
mod sessions;
mod signin;

use axum::Router;
use axum::extract::{FromRequest, Request};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;

use super::session::{self, random_token};
use super::{PageError, PageResult, Portal, Visit};
use crate::error::ApiError;
use crate::keys::token_hash;
use crate::store::persons::PersonRow;
use crate::store::portal::{self as store, SessionRow};

pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/portal/", get(home::page))
        .route("/portal/reserve", post(home::reserve))
        .route("/portal/release", post(home::release))
        .route("/portal/extend", post(home::extend))
        .route("/portal/login", get(signin::page))
        .route("/portal/login/totp", post(signin::totp))
        .route(
            "/portal/login/passkey/options",
            post(signin::passkey_options),
        )
        .route("/portal/login/passkey", post(signin::passkey))
        .route("/portal/logout", post(signin::logout))
        .route(
            "/portal/enroll",
            get(signin::enroll_page).post(signin::enroll_code),
        )
        .route("/portal/enroll/setup", get(signin::enroll_setup))
        .route("/portal/enroll/totp", post(signin::enroll_totp))
        .route("/portal/factors", get(factors::page))
        .route(
            "/portal/factors/totp",
            get(factors::totp_page).post(factors::totp_start),
        )
        .route("/portal/factors/totp/confirm", post(factors::totp_confirm))
        .route("/portal/passkeys/options", post(factors::passkey_options))
        .route("/portal/passkeys", post(factors::passkey_register))
        .route("/portal/keys", get(keys::page).post(keys::add))
        .route("/portal/sessions", get(sessions::page))
        .route("/portal/sessions/end", post(sessions::end))
        .route("/portal/approve", get(approvals::page))
        .route(
            "/portal/approve/{id}",
            get(approvals::one).post(approvals::approve),
        )
        .route("/portal/approve/{id}/report", post(approvals::report))
        .route("/portal/factors/push", post(push::enroll))
        .route("/portal/factors/push/remove", post(push::remove))
        .route("/portal/push/subscribe", post(push::subscribe))
        .route("/portal/sw.js", get(push::service_worker))
        .route("/portal/keys/{id}/remove", post(keys::remove))
        .route(
            "/portal/passkeys/{id}/delete",
            post(factors::passkey_delete),
        )
        .route(
            "/portal/admin/persons",
            get(admin::persons).post(admin::person_add),
        )
        .route(
            "/portal/admin/persons/{name}/{action}",
            post(admin::person_action),
        )
        .route(
            "/portal/admin/groups",
            get(admin::groups).post(admin::group_add),
        )
        .route(
            "/portal/admin/groups/{name}/members",
            post(admin::member_add),
        )
        .route(
            "/portal/admin/groups/{name}/members/{person}/remove",
            post(admin::member_remove),
        )
        .route(
            "/portal/admin/accounts",
            get(admin::accounts).post(admin::account_add),
        )
        .route(
            "/portal/admin/accounts/{name}/{action}",
            post(admin::account_action),
        )
        .route(
            "/portal/admin/hosts",
            get(admin::hosts).post(admin::host_add),
        )
        .route(
            "/portal/admin/hosts/{name}/{action}",
            post(admin::host_action),
        )
        .route(
            "/portal/admin/reservations",
            get(admin::reservations).post(admin::force_release),
        )
        .route("/portal/admin/audit", get(admin::audit))
        .route("/portal/static/{file}", get(assets::file))
        .route("/portal/{*rest}", get(not_found).post(not_found))
        .route("/portal", get(|| async { see_other("/portal/") }))
}

async fn not_found() -> PageError {
    PageError::Status(StatusCode::NOT_FOUND, "There is no such page.".into())
}

/// A form body (`application/x-www-form-urlencoded`); a malformed one is a 400 page.
pub struct Form<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, PageError> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(Form(v)),
            Err(e) => Err(PageError::Status(
                StatusCode::BAD_REQUEST,
                format!("The form is not complete: {}", e.body_text()),
            )),
        }
    }
}

/// A 303 to `to` (after a form: the browser then loads the page with GET).
pub fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

fn with_cookie(mut r: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(SET_COOKIE, v);
    }
    r
}

/// Makes a new session (before sign-in, or on sign-in) and returns it with its cookie value.
async fn new_session(
    portal: &Portal,
    person: Option<(&PersonRow, &str)>,
    now: i64,
) -> PageResult<(SessionRow, String)> {
    let id = random_token();
    let row = SessionRow {
        id_hash: token_hash(&id),
        person_id: person.map(|(p, _)| p.id),
        factor: person.map(|(_, f)| f.to_owned()),
        enroll_code_hash: None,
        csrf: random_token(),
        challenge: None,
        challenge_kind: None,
        challenge_expires_at: None,
        flash: None,
        created_at: now,
        last_seen: now,
    };
    let mut tx = portal.app.store.write().await?;
    store::insert_session(&mut tx, &row).await?;
    // Housekeeping on the way: sessions that ended on their own are deleted here.
    let limits = portal.limits();
    store::delete_stale_sessions(&mut tx, now - limits.idle, now - limits.lifetime).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok((row, session::set_cookie(&id)))
}

/// The visitor's session, or a new anonymous one (with the cookie to set).
async fn session_for(portal: &Portal, visit: &Visit) -> PageResult<(SessionRow, Option<String>)> {
    match &visit.session {
        Some(s) => Ok((s.clone(), None)),
        None => {
            let (s, c) = new_session(portal, None, visit.now).await?;
            Ok((s, Some(c)))
        }
    }
}

/// Signs `person` in: the old session is dropped and a new one made (so that an id someone
/// planted before sign-in is worth nothing after), then the browser goes to `to`.
async fn sign_in(
    portal: &Portal,
    old: Option<&SessionRow>,
    person: &PersonRow,
    factor: &str,
    now: i64,
) -> PageResult<(SessionRow, String)> {
    if let Some(old) = old {
        let mut tx = portal.app.store.write().await?;
        store::delete_session(&mut tx, &old.id_hash).await?;
        tx.commit().await.map_err(ApiError::internal)?;
    }
    new_session(portal, Some((person, factor)), now).await
}

/// Stores a one-time message for the next page and sends the browser there.
async fn flash(portal: &Portal, s: &SessionRow, ok: bool, text: &str, to: &str) -> PageResult {
    let value = format!("{}:{text}", if ok { "ok" } else { "err" });
    let mut tx = portal.app.store.write().await?;
    store::set_flash(&mut tx, &s.id_hash, Some(&value)).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(see_other(to))
}

/// Forgets the message once a page showed it.
async fn shown(portal: &Portal, s: &SessionRow) -> PageResult<()> {
    if s.flash.is_some() {
        let mut tx = portal.app.store.write().await?;
        store::set_flash(&mut tx, &s.id_hash, None).await?;
        tx.commit().await.map_err(ApiError::internal)?;
    }
    Ok(())
}

/// `Ok` or the API's refusal, as a one-time message on the next page.
async fn outcome<T>(
    portal: &Portal,
    s: &SessionRow,
    result: Result<T, ApiError>,
    ok: impl FnOnce(T) -> String,
    to: &str,
) -> PageResult {
    match result {
        Ok(v) => flash(portal, s, true, &ok(v), to).await,
        Err(e) => refused(portal, s, e, to).await,
    }
}

/// The API's refusal as a one-time message on page `to`; a server fault is an error page.
async fn refused(portal: &Portal, s: &SessionRow, e: ApiError, to: &str) -> PageResult {
    if e.code == jit_proto::api::ErrorCode::Internal {
        return Err(e.into());
    }
    flash(portal, s, false, &e.message, to).await
}

/// Minutes typed in a form, as seconds.
fn minutes(field: &str, v: &str) -> Result<u32, ApiError> {
    v.trim()
        .parse::<u32>()
        .ok()
        .filter(|m| (1..=10_000).contains(m))
        .map(|m| m * 60)
        .ok_or_else(|| ApiError::bad_request(format!("{field}: a number of minutes, e.g. 15")))
}
