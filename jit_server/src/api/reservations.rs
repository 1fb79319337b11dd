//! Reserving, listing and releasing shared accounts.

use axum::Json;
use axum::extract::State as St;
use jit_proto::api::{
    AuditResult, EndCause, ErrorCode, ExtendRequest, Extended, NewReservation, OfflinePolicy,
    ReleaseRequest, Released, Reservation, ReservationQuery, Reservations,
};
use sqlx::AnyConnection;

use super::auth::{Caller, PersonCaller};
use super::{Body, Params, State, accounts as account_api, now};
use crate::error::{ApiError, ApiResult};
use crate::rules::{self, human_secs, utc};
use crate::store::audit::{self, Event};
use crate::store::{WriteTx, groups, hosts, is_unique_violation, reservations};

/// Records a refused request in the audit log, then returns the refusal.
async fn refuse<T>(mut tx: WriteTx, e: Event, err: ApiError) -> ApiResult<T> {
    audit::record(&mut tx, &e.reason(err.message.clone())).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Err(err)
}

/// Sweeps reservations that ran out, so each expiry is in the audit log.
pub async fn expire_due(conn: &mut AnyConnection, now: i64) -> ApiResult<()> {
    for r in reservations::expire_due(conn, now).await? {
        let e = Event::new(now, "server", "reservation.expire", AuditResult::Ok)
            .person(&r.person)
            .account(&r.account)
            .host(&r.host)
            .detail(serde_json::json!({ "reservation": r.id, "expired_at": r.expires_at }));
        audit::record(conn, &e).await?;
    }
    Ok(())
}

/// The refusal when `held` already holds the account on the host.
fn taken(held: &reservations::ReservationRow, person_id: i64, now: i64) -> ApiError {
    let msg = if held.person_id == person_id {
        format!(
            "you already hold {} on {} until {} ({} left); release it first with `jitctl release {}`",
            held.account,
            held.host,
            utc(held.expires_at),
            human_secs(held.expires_at - now),
            held.account
        )
    } else {
        format!(
            "{} on {} is reserved by {} until {} ({} left); try again after that",
            held.account,
            held.host,
            held.person,
            utc(held.expires_at),
            human_secs(held.expires_at - now)
        )
    };
    ApiError::new(ErrorCode::ReservationTaken, msg).with_until(held.expires_at)
}

pub async fn reserve(
    PersonCaller(person): PersonCaller,
    St(state): St<State>,
    Body(req): Body<NewReservation>,
) -> ApiResult<Json<Reservation>> {
    let now = now();
    let mut tx = state.store.write().await?;
    // Every decision on a reservation is audited, refusals included, with what was asked for.
    let ev = Event::new(
        now,
        format!("person:{}", person.name),
        "reservation.create",
        AuditResult::Denied,
    )
    .person(&person.name)
    .account(req.account.as_str())
    .host(req.host.as_str());
    if let Err(e) = rules::check_reason(&req.reason) {
        return refuse(tx, ev, e.into()).await;
    }
    let account = match account_api::find(&mut tx, req.account.as_str()).await {
        Ok(a) => a,
        Err(e) if e.code == ErrorCode::NotFound => return refuse(tx, ev, e).await,
        Err(e) => return Err(e),
    };
    let Some(host) = hosts::by_name(&mut tx, req.host.as_str()).await? else {
        let err = ApiError::not_found(format!(
            "no host named {}; ask an admin which hosts exist",
            req.host
        ));
        return refuse(tx, ev, err).await;
    };
    if !account.is_active() {
        let err = ApiError::not_allowed(format!("shared account {} is disabled", account.name));
        return refuse(tx, ev, err).await;
    }
    if !host.is_active() {
        let err = ApiError::not_allowed(format!("host {} is disabled", host.name));
        return refuse(tx, ev, err).await;
    }
    if !rules::host_allowed(
        &req.host,
        &host.labels()?,
        &account.patterns()?,
        &account.labels()?,
    ) {
        let err = ApiError::not_allowed(format!(
            "shared account {} does not exist on {}",
            account.name, host.name
        ));
        return refuse(tx, ev, err).await;
    }
    if !groups::person_may_reserve(&mut tx, person.id, account.id).await? {
        let err = ApiError::not_allowed(format!(
            "you are not in a group allowed to reserve {}; ask an admin to add you",
            account.name
        ));
        return refuse(tx, ev, err).await;
    }
    let (default_ttl, max_ttl) = account.ttls();
    let ttl = match rules::reservation_ttl(req.duration_secs, default_ttl, max_ttl) {
        Ok(t) => t,
        Err(e) => return refuse(tx, ev, e.into()).await,
    };
    expire_due(&mut tx, now).await?;
    if let Some(held) = reservations::active_for(&mut tx, account.id, host.id, now).await? {
        let err = taken(&held, person.id, now);
        return refuse(tx, ev, err).await;
    }
    let expires_at = now + i64::from(ttl);
    // In a savepoint: a lost race must undo only the INSERT, so that the refusal can still be
    // audited in this transaction (PostgreSQL aborts a whole transaction on an error).
    let inserted = tx
        .savepoint(async |conn| {
            reservations::insert(
                conn,
                account.id,
                host.id,
                person.id,
                req.reason.as_deref(),
                now,
                expires_at,
            )
            .await
        })
        .await?;
    let id = match inserted {
        Ok(id) => id,
        // Another server process won the race between our check and our insert.
        Err(e) if is_unique_violation(&e) => {
            let err = match reservations::active_for(&mut tx, account.id, host.id, now).await? {
                Some(held) => taken(&held, person.id, now),
                None => ApiError::new(
                    ErrorCode::ReservationTaken,
                    format!(
                        "{} on {} was just reserved by someone else; try again after that \
                         reservation ends",
                        account.name, host.name
                    ),
                ),
            };
            let ev = ev.detail(serde_json::json!({ "lost_race": true }));
            return refuse(tx, ev, err).await;
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    let mut ok = ev.clone();
    ok.result = AuditResult::Ok;
    if let Some(r) = &req.reason {
        ok = ok.reason(r.clone());
    }
    ok = ok.detail(
        serde_json::json!({ "reservation": id, "duration_secs": ttl, "expires_at": expires_at }),
    );
    audit::record(&mut tx, &ok).await?;
    let row = reservations::by_id(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::internal("reservation vanished after insert"))?;
    tx.commit().await.map_err(ApiError::internal)?;
    if account.offline() == OfflinePolicy::Cached
        && let Some(sealed) = person.totp_secret.clone()
    {
        super::offline::issue_later(state.clone(), id, person.id, sealed, now, expires_at, now);
    }
    Ok(Json(row.to_api(now)?))
}

pub async fn list(
    caller: Caller,
    St(state): St<State>,
    Params(q): Params<ReservationQuery>,
) -> ApiResult<Json<Reservations>> {
    let person_id = match &caller {
        Caller::Admin(_) => None,
        Caller::Person(p) => Some(p.id),
        Caller::Host(_) => {
            return Err(ApiError::forbidden(
                "this needs a person or the admin token",
            ));
        }
    };
    let now = now();
    let mut tx = state.store.read().await?;
    let rows = reservations::list(&mut tx, person_id, q.all, now).await?;
    let reservations = rows
        .iter()
        .map(|r| r.to_api(now))
        .collect::<Result<_, _>>()?;
    Ok(Json(Reservations { reservations, now }))
}

pub async fn release(
    caller: Caller,
    St(state): St<State>,
    Body(req): Body<ReleaseRequest>,
) -> ApiResult<Json<Released>> {
    let person = match &caller {
        Caller::Admin(p) | Caller::Person(p) => p,
        Caller::Host(_) => {
            return Err(ApiError::forbidden(
                "this needs a person or the admin token",
            ));
        }
    };
    let now = now();
    let mut tx = state.store.write().await?;
    let account = account_api::find(&mut tx, req.account.as_str()).await?;
    let host_id = match &req.host {
        Some(h) => Some(
            hosts::by_name(&mut tx, h.as_str())
                .await?
                .ok_or_else(|| ApiError::not_found(format!("no host named {h}")))?
                .id,
        ),
        None => None,
    };
    let mut live =
        reservations::live_for_account(&mut tx, account.id, host_id, Some(person.id), now).await?;
    // An admin gives back their own reservation like anybody; without one, they force-release
    // whoever holds it.
    let forced = live.is_empty() && matches!(caller, Caller::Admin(_));
    if forced {
        live = reservations::live_for_account(&mut tx, account.id, host_id, None, now).await?;
    }
    if live.is_empty() {
        let whose = if matches!(caller, Caller::Admin(_)) {
            "there is no"
        } else {
            "you hold no"
        };
        let where_ = req
            .host
            .as_ref()
            .map(|h| format!(" on {h}"))
            .unwrap_or_default();
        return Err(ApiError::not_found(format!(
            "{whose} live reservation of {}{where_}",
            account.name
        )));
    }
    let action = if forced {
        "reservation.force_release"
    } else {
        "reservation.release"
    };
    let cause = if forced {
        EndCause::ForceReleased
    } else {
        EndCause::Released
    };
    let mut released = Vec::new();
    for r in live {
        if reservations::release(&mut tx, r.id, now, &person.name, cause).await? {
            let mut e = Event::new(now, caller.actor(), action, AuditResult::Ok)
                .person(&r.person)
                .account(&r.account)
                .host(&r.host)
                .detail(serde_json::json!({ "reservation": r.id }));
            if forced {
                e = e.reason(format!(
                    "forced release by admin {}; it was held by {}",
                    person.name, r.person
                ));
            }
            audit::record(&mut tx, &e).await?;
            if let Some(row) = reservations::by_id(&mut tx, r.id).await? {
                released.push(row.to_api(now)?);
            }
        }
    }
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(Released { released }))
}

/// Moves the end of the caller's own reservations of an account, within its max-ttl.
pub async fn extend(
    PersonCaller(person): PersonCaller,
    St(state): St<State>,
    Body(req): Body<ExtendRequest>,
) -> ApiResult<Json<Extended>> {
    let now = now();
    let mut tx = state.store.write().await?;
    let account = account_api::find(&mut tx, req.account.as_str()).await?;
    let host_id = match &req.host {
        Some(h) => Some(
            hosts::by_name(&mut tx, h.as_str())
                .await?
                .ok_or_else(|| ApiError::not_found(format!("no host named {h}")))?
                .id,
        ),
        None => None,
    };
    let held =
        reservations::unexpired_of_person(&mut tx, account.id, host_id, person.id, now).await?;
    if held.is_empty() {
        let where_ = req
            .host
            .as_ref()
            .map(|h| format!(" on {h}"))
            .unwrap_or_default();
        return Err(ApiError::not_found(format!(
            "you hold no reservation of {}{where_} that has time left; reserve it with \
             `jitctl reserve {} --host HOST`",
            account.name, account.name
        )));
    }
    let (_, max_ttl) = account.ttls();
    let mut extended = Vec::new();
    for r in held {
        let ev = Event::new(
            now,
            format!("person:{}", person.name),
            "reservation.extend",
            AuditResult::Denied,
        )
        .person(&r.person)
        .account(&r.account)
        .host(&r.host);
        let new_end = match rules::extended_expiry(r.expires_at, now, req.duration_secs, max_ttl) {
            Ok(t) => t,
            Err(e) => return refuse(tx, ev, e.into()).await,
        };
        if reservations::extend(&mut tx, r.id, r.expires_at, new_end, now).await? {
            let mut ok = ev.detail(serde_json::json!({
                "reservation": r.id, "from": r.expires_at, "to": new_end,
                "by_secs": req.duration_secs,
            }));
            ok.result = AuditResult::Ok;
            audit::record(&mut tx, &ok).await?;
            if let Some(row) = reservations::by_id(&mut tx, r.id).await? {
                extended.push(row.to_api(now)?);
            }
        }
    }
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(Extended { extended }))
}
