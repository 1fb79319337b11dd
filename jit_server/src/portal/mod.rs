//! The web portal: server-rendered pages for persons (reserve, release, extend, sign-in
//! methods) and admins (persons, groups, accounts, hosts, live reservations, audit), served by
//! jit-server itself on its own listener or the API's.
//!
//! No front-end build: askama templates compiled into the binary, one CSS and one JS file
//! embedded too, no inline script (the Content-Security-Policy forbids it). Every page that
//! changes something is a plain form POST (or, for passkeys, a `fetch` from portal.js), and
//! every such request passes [`guard`] first: a live session, its CSRF token, and a
//! same-origin `Origin`. Admin operations call the same handlers as the JSON API, so rules and
//! audit rows are identical whichever way an admin works.

pub mod cbor;
pub mod listener;
pub mod origin;
mod pages;
mod qr;
pub mod session;
mod view;
pub mod webauthn;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Request};
use axum::http::header::{self, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::api::State;
use crate::error::ApiError;
use crate::store::persons::{self, PersonRow};
use crate::store::portal::{self as store, SessionRow};
use origin::Origin;
use session::{Limits, Liveness};

/// Reads the time; tests pass their own.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

#[derive(Clone)]
pub struct Portal {
    pub app: State,
    pub clock: Clock,
}

impl Portal {
    fn limits(&self) -> Limits {
        Limits {
            idle: self.app.settings.portal.idle_timeout.secs(),
            lifetime: self.app.settings.portal.session_lifetime.secs(),
        }
    }
}

/// The Content-Security-Policy of every portal answer: nothing inline, nothing from elsewhere.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Largest form or JSON body the portal reads.
const MAX_BODY: usize = 64 * 1024;

/// The portal's routes (under `/portal/`), with the wall clock.
pub fn router(app: State) -> Router {
    router_with_clock(app, Arc::new(jit_clock::now))
}

pub fn router_with_clock(app: State, clock: Clock) -> Router {
    let portal = Portal { app, clock };
    Router::new()
        .route(
            "/",
            axum::routing::get(|| async { Redirect::to("/portal/") }),
        )
        .merge(pages::routes())
        .layer(axum::middleware::from_fn(|req: Request, next: Next| {
            crate::retry::rerun_on_conflict(req, next, MAX_BODY)
        }))
        .layer(axum::middleware::from_fn_with_state(portal.clone(), guard))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(portal)
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not no-referrer: under it browsers send `Origin: null` with every form, and the guard
    // needs the real origin. same-origin still sends nothing to other sites.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// The portal's origin for this request: `portal.public_url`, else what the browser addressed.
/// (HTTP/2 carries it in the URI's authority, HTTP/1.1 in the Host header.)
pub fn origin_of(portal: &Portal, parts: &Parts) -> Option<Origin> {
    if let Some(u) = &portal.app.settings.portal.public_url {
        return Origin::parse(u);
    }
    match parts.uri.authority() {
        Some(a) => Origin::from_authority(a.as_str()),
        None => parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(Origin::from_authority),
    }
}

/// Every request that is not a GET or HEAD must come from the portal's own pages: same origin,
/// a live session, and that session's CSRF token (form field `csrf` or `X-CSRF-Token`).
async fn guard(
    axum::extract::State(portal): axum::extract::State<Portal>,
    req: Request,
    next: Next,
) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let refuse = |why: &str| {
        view::error_page(
            StatusCode::FORBIDDEN,
            "Request refused",
            &format!(
                "{why}. Go back, reload the page and try again (sign-in pages and forms expire \
                 after a while)."
            ),
        )
    };
    let Some(origin) = origin_of(&portal, &parts) else {
        return refuse("The request does not say which address it was sent to");
    };
    // Browsers send Origin with every POST; a mismatch is another site's page.
    if let Some(o) = parts.headers.get(header::ORIGIN)
        && o.to_str().ok() != Some(origin.url.as_str())
    {
        return refuse("The request came from another web site");
    }
    if let Some(site) = parts.headers.get("sec-fetch-site")
        && !matches!(site.as_bytes(), b"same-origin" | b"none")
    {
        return refuse("The request came from another web site");
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return refuse("The request is too large");
    };
    let presented = parts
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| csrf_field(&bytes));
    let now = (portal.clock)();
    let session = match load_session(&portal, &parts.headers, now).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    match session {
        Some(s) if session::csrf_ok(&s.csrf, presented.as_deref()) => {}
        Some(_) => return refuse("The form's security token is missing or out of date"),
        None => return refuse("Your session has ended"),
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The `csrf` field of a urlencoded form body.
fn csrf_field(body: &[u8]) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    pairs.into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v)
}

/// The live session named by the request's cookie; an ended one is deleted.
async fn load_session(
    portal: &Portal,
    headers: &axum::http::HeaderMap,
    now: i64,
) -> Result<Option<SessionRow>, PageError> {
    let Some(id) = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session::from_cookie_header)
    else {
        return Ok(None);
    };
    let hash = crate::keys::token_hash(id);
    let mut conn = portal
        .app
        .store
        .pool()
        .acquire()
        .await
        .map_err(ApiError::internal)?;
    let Some(row) = store::session(&mut conn, &hash).await? else {
        return Ok(None);
    };
    drop(conn);
    let mut tx = portal.app.store.write().await?;
    match session::liveness(row.created_at, row.last_seen, now, portal.limits()) {
        Liveness::Live => {
            if row.last_seen < now {
                store::touch_session(&mut tx, &hash, now).await?;
            }
            tx.commit().await.map_err(ApiError::internal)?;
            Ok(Some(row))
        }
        Liveness::Idle | Liveness::Over => {
            store::delete_session(&mut tx, &hash).await?;
            tx.commit().await.map_err(ApiError::internal)?;
            Ok(None)
        }
    }
}

/// Everything a page handler knows about the request: the time, the origin, the session (if
/// any) and the signed-in person (if any).
pub struct Visit {
    pub now: i64,
    pub origin: Origin,
    pub session: Option<SessionRow>,
    pub person: Option<PersonRow>,
}

impl FromRequestParts<Portal> for Visit {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, portal: &Portal) -> Result<Self, PageError> {
        let now = (portal.clock)();
        let origin = origin_of(portal, parts).ok_or_else(|| {
            PageError::Status(
                StatusCode::BAD_REQUEST,
                "The request does not say which address it was sent to (no usable Host); set \
                 portal.public_url in server.toml"
                    .into(),
            )
        })?;
        let session = load_session(portal, &parts.headers, now).await?;
        let mut person = None;
        if let Some(pid) = session.as_ref().and_then(|s| s.person_id) {
            let mut conn = portal
                .app
                .store
                .pool()
                .acquire()
                .await
                .map_err(ApiError::internal)?;
            person = persons::by_id(&mut conn, pid)
                .await?
                .filter(PersonRow::is_active);
        }
        Ok(Visit {
            now,
            origin,
            session,
            person,
        })
    }
}

/// A signed-in person.
pub struct Signed {
    pub visit: Visit,
    pub person: PersonRow,
    pub session: SessionRow,
}

impl FromRequestParts<Portal> for Signed {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, portal: &Portal) -> Result<Self, PageError> {
        let mut visit = Visit::from_request_parts(parts, portal).await?;
        match (visit.person.take(), visit.session.take()) {
            (Some(person), Some(session)) => Ok(Signed {
                visit,
                person,
                session,
            }),
            _ => Err(PageError::SignIn),
        }
    }
}

/// A signed-in person with the admin role; anyone else gets 403.
pub struct AdminSigned(pub Signed);

impl FromRequestParts<Portal> for AdminSigned {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, portal: &Portal) -> Result<Self, PageError> {
        let s = Signed::from_request_parts(parts, portal).await?;
        if !s.person.is_admin() {
            return Err(PageError::Status(
                StatusCode::FORBIDDEN,
                "This page is for admins. Ask an admin to give you the role if you need it.".into(),
            ));
        }
        Ok(AdminSigned(s))
    }
}

/// Why a page could not be shown.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in: go to the sign-in page.
    SignIn,
    Status(StatusCode, String),
    Api(ApiError),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError::Api(e)
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        PageError::Api(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn => Redirect::to("/portal/login").into_response(),
            PageError::Status(code, msg) => view::error_page(code, "Not possible", &msg),
            PageError::Api(e) => {
                let code = StatusCode::from_u16(e.code.http_status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                view::error_page(code, "Not possible", &e.message)
            }
        }
    }
}

pub type PageResult<T = Response> = Result<T, PageError>;
