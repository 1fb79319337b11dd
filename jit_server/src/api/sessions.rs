//! Sessions: the list persons and admins read (`GET /v1/sessions`), what hosts report about
//! them (through `POST /v1/host/events`), and how the reservations behind a host's open sessions
//! stand (`POST /v1/host/reservations`), which jitd reads to warn and end them.

use axum::Json;
use axum::extract::State as St;
use jit_proto::api::{
    EndCause, HostEvent, HostReservation, HostReservationQuery, HostReservations,
    MAX_HOST_RESERVATIONS, SessionQuery, Sessions,
};
use jit_proto::{AccountName, PersonName};
use sqlx::AnyConnection;

use super::auth::{Caller, HostCaller};
use super::{Body, Params, State, now};
use crate::error::{ApiError, ApiResult};
use crate::store::hosts::HostRow;
use crate::store::sessions::{self, Opened};
use crate::store::{StoreError, accounts, reservations};

/// `GET /v1/sessions`: a person's own, or (admins) everybody's.
pub async fn list(
    caller: Caller,
    St(state): St<State>,
    Params(q): Params<SessionQuery>,
) -> ApiResult<Json<Sessions>> {
    let person = match &caller {
        Caller::Admin(_) => None,
        Caller::Person(p) => Some(p.name.clone()),
        Caller::Host(_) => {
            return Err(ApiError::forbidden(
                "this needs a person or the admin token",
            ));
        }
    };
    let now = now();
    let mut tx = state.store.read().await?;
    let sessions = sessions::list(&mut tx, person.as_deref(), q.all, now).await?;
    Ok(Json(Sessions { sessions, now }))
}

/// Keeps the session record of a `session.*` event the host reported (already audited). The
/// person and account come from the reservation when it is one of this host's: a host cannot
/// file a session under another holder. An event without an attempt names no session.
pub async fn record_event(
    conn: &mut AnyConnection,
    host: &HostRow,
    ev: &HostEvent,
    at: i64,
) -> ApiResult<()> {
    let Some(attempt) = ev.attempt.as_deref() else {
        return Ok(());
    };
    let res = match ev.reservation_id {
        Some(id) => reservations::by_id(conn, id)
            .await?
            .filter(|r| r.host_id == host.id),
        None => None,
    };
    let (account, person) = match &res {
        Some(r) => (r.account.clone(), Some(r.person.clone())),
        None => (
            ev.account.to_string(),
            ev.person.as_ref().map(|p| p.to_string()),
        ),
    };
    let origin = &ev.origin;
    let source = origin
        .rhost
        .as_deref()
        .filter(|r| !r.is_empty())
        .or(origin.source.as_deref());
    let s = Opened {
        host_id: host.id,
        attempt,
        reservation_id: res.as_ref().map(|r| r.id).or(ev.reservation_id),
        account: &account,
        person: person.as_deref(),
        service: &origin.service,
        source,
        tty: origin.tty.as_deref(),
        at,
    };
    match ev.action.as_str() {
        "session.open" => {
            sessions::open(conn, &s).await?;
        }
        "session.close" => sessions::close(conn, &s, None).await?,
        "session.ended" => {
            // The host ended it: its cause, or the reservation's own when it did not say.
            let now = now();
            let cause = ev
                .ended
                .or_else(|| res.as_ref().and_then(|r| r.ended(now)))
                .unwrap_or(EndCause::Expired);
            sessions::close(conn, &s, Some(cause)).await?
        }
        _ => {}
    }
    Ok(())
}

/// `POST /v1/host/reservations`: for each asked-for reservation of the calling host, when it
/// ends, whether it ended and why, and whether its account ends sessions with it.
pub async fn host_reservations(
    HostCaller(host): HostCaller,
    St(state): St<State>,
    Body(q): Body<HostReservationQuery>,
) -> ApiResult<Json<HostReservations>> {
    if q.ids.len() > MAX_HOST_RESERVATIONS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_HOST_RESERVATIONS} reservations per request"
        )));
    }
    let now = now();
    let mut tx = state.store.read().await?;
    let mut out = Vec::new();
    let mut ids = q.ids.clone();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        let Some(r) = reservations::by_id(&mut tx, id).await? else {
            continue;
        };
        if r.host_id != host.id {
            continue;
        }
        let ends_sessions = accounts::by_id(&mut tx, r.account_id)
            .await?
            .is_some_and(|a| a.ends_sessions());
        let corrupt = |e: jit_proto::NameError| StoreError::Corrupt(e.to_string());
        let ended = r.ended(now);
        out.push(HostReservation {
            id: r.id,
            account: AccountName::new(&r.account).map_err(corrupt)?,
            person: PersonName::new(&r.person).map_err(corrupt)?,
            ends_at: r.ends_at(now),
            ended,
            ended_by: match ended {
                Some(EndCause::Expired) | None => None,
                Some(_) => r.ended_by.clone(),
            },
            end_session_at_expiry: ends_sessions,
        });
    }
    Ok(Json(HostReservations {
        reservations: out,
        now,
    }))
}
