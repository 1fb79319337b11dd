//! The sessions page: the open sessions of the signed-in person (admins: everybody's), with the
//! time until jit ends each one (for accounts whose sessions end with the reservation), and for
//! admins a button that force-releases the reservation behind a session, which ends it. The
//! list and the release are the JSON API's own handlers.

use askama::Template;
use axum::extract::State;
use jit_proto::api::{ReleaseRequest, SessionQuery};
use serde::Deserialize;

use super::{Form, outcome, shown};
use crate::api::auth::Caller;
use crate::api::{Body, Params, reservations, sessions as api};
use crate::portal::view::{Layout, render};
use crate::portal::{AdminSigned, PageResult, Portal, Signed};
use crate::rules::{human_secs, utc};

pub struct SessionView {
    pub account: String,
    pub host: String,
    pub person: String,
    pub service: String,
    pub source: String,
    pub opened: String,
    pub ran: String,
    /// When jit ends it (its reservation's end), for accounts whose sessions end with it.
    pub ends_at: Option<i64>,
    pub ends_in: String,
}

#[derive(Template)]
#[template(path = "portal/sessions.html")]
struct SessionsPage {
    layout: Layout,
    admin: bool,
    sessions: Vec<SessionView>,
}

/// `GET /portal/sessions`.
pub async fn page(State(portal): State<Portal>, s: Signed) -> PageResult {
    let now = s.visit.now;
    let caller = Caller::of_person(s.person.clone());
    let list = api::list(
        caller,
        State(portal.app.clone()),
        Params(SessionQuery::default()),
    )
    .await?
    .0;
    shown(&portal, &s.session).await?;
    let page = SessionsPage {
        layout: Layout::signed("Sessions", "/portal/sessions", &s.person, &s.session, now),
        admin: s.person.is_admin(),
        sessions: list
            .sessions
            .into_iter()
            .map(|x| {
                let ends_at = x.reservation_ends_at.filter(|_| x.end_session_at_expiry);
                SessionView {
                    account: x.account.to_string(),
                    host: x.host.to_string(),
                    person: x.person.map(|p| p.to_string()).unwrap_or_default(),
                    service: x.service,
                    source: x.source.unwrap_or_default(),
                    opened: utc(x.opened_at),
                    ran: human_secs(x.duration_secs),
                    ends_at,
                    ends_in: ends_at.map(|t| human_secs(t - now)).unwrap_or_default(),
                }
            })
            .collect(),
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
pub struct EndForm {
    account: String,
    host: String,
}

/// `POST /portal/sessions/end` (admins): force-releases the reservation behind a session; the
/// host then ends the session (for accounts whose sessions end with their reservation).
pub async fn end(
    State(portal): State<Portal>,
    AdminSigned(s): AdminSigned,
    Form(f): Form<EndForm>,
) -> PageResult {
    let result = async {
        let req = ReleaseRequest {
            account: f.account.parse()?,
            host: Some(f.host.parse()?),
        };
        reservations::release(
            Caller::Admin(s.person.clone()),
            State(portal.app.clone()),
            Body(req),
        )
        .await
        .map(|j| j.0)
    }
    .await;
    outcome(
        &portal,
        &s.session,
        result,
        |r| {
            r.released
                .first()
                .map(|x| {
                    format!(
                        "Released {} on {} (held by {}); its session ends within seconds.",
                        x.account, x.host, x.person
                    )
                })
                .unwrap_or_else(|| "Nothing was released.".into())
        },
        "/portal/sessions",
    )
    .await
}
