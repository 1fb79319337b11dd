//! The host-facing API (host credential): the shared accounts of a host, login begin/verify with
//! atomic consumption of the reservation, and events the host reports.
//!
//! Messages in login answers are shown to whoever sits at the login prompt, so they never name
//! the holder of a reservation (`jitctl status` is where holders are shown).

use axum::Json;
use axum::extract::{Path, State as St};
use jit_proto::api::{
    AuditResult, DenyReason, EventsStored, Factor, HostAccount, HostAccounts, HostEvents,
    LoginBegin, LoginBegun, LoginVerified, LoginVerify, OfflinePolicy, ReservationState,
};
use jit_proto::{AccountName, PersonName};
use sqlx::{Any, Transaction};

use super::auth::HostCaller;
use super::factor::{self, CodeOutcome};
use super::offline as offline_api;
use super::reservations::expire_due;
use super::ssh_keys;
use super::{Body, State, now};
use crate::error::{ApiError, ApiResult};
use crate::keys;
use crate::rules::{self, utc};
use crate::store::audit::{self, Event};
use crate::store::hosts::HostRow;
use crate::store::reservations::{self, AttemptRow};
use crate::store::{StoreError, accounts, from_json, offline as offline_store, persons};

/// Largest batch of events a host may deliver at once.
const MAX_EVENTS: usize = 500;

fn how_to_reserve(account: &str, host: &str) -> String {
    format!("Reserve it first: jitctl reserve {account} --host {host}")
}

pub async fn accounts(
    HostCaller(host): HostCaller,
    St(state): St<State>,
) -> ApiResult<Json<HostAccounts>> {
    let mut tx = state.store.read().await?;
    let labels = host.labels()?;
    let name = host.host_name()?;
    let mut out = Vec::new();
    for a in accounts::list(&mut tx).await? {
        if rules::host_allowed(&name, &labels, &a.patterns()?, &a.labels()?) {
            out.push(HostAccount {
                name: AccountName::new(&a.name).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                posix: a.posix()?,
                offline: a.offline(),
                active: a.is_active(),
            });
        }
    }
    Ok(Json(HostAccounts {
        host: name,
        accounts: out,
        now: now(),
    }))
}

fn base_event(now: i64, host: &HostRow, action: &'static str, account: &str) -> Event {
    Event::new(
        now,
        format!("host:{}", host.name),
        action,
        AuditResult::Denied,
    )
    .account(account)
    .host(&host.name)
}

async fn deny_begin(
    mut tx: Transaction<'static, Any>,
    e: Event,
    reason: DenyReason,
    message: String,
) -> ApiResult<Json<LoginBegun>> {
    audit::record(&mut tx, &e.reason(message.clone())).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(LoginBegun::Denied { reason, message }))
}

pub async fn begin(
    HostCaller(host): HostCaller,
    St(state): St<State>,
    Body(req): Body<LoginBegin>,
) -> ApiResult<Json<LoginBegun>> {
    rules::check_origin(&req.origin)?;
    let now = now();
    let mut tx = state.store.write().await?;
    let host_name = host.host_name()?;
    let account = match accounts::by_name(&mut tx, req.account.as_str()).await? {
        Some(a)
            if rules::host_allowed(&host_name, &host.labels()?, &a.patterns()?, &a.labels()?) =>
        {
            a
        }
        _ => {
            return Ok(Json(LoginBegun::Denied {
                reason: DenyReason::NotShared,
                message: String::new(),
            }));
        }
    };
    let origin = serde_json::to_value(&req.origin).unwrap_or_default();
    let key_owner = ssh_keys::owner_of(&mut tx, req.origin.ssh_key.as_deref()).await?;
    let ev = base_event(now, &host, "login.begin", &account.name)
        .detail(serde_json::json!({ "origin": origin, "ssh_key_owner": key_owner }));
    if !account.is_active() {
        let msg = format!("The shared account {} is disabled.", account.name);
        return deny_begin(tx, ev, DenyReason::AccountDisabled, msg).await;
    }
    expire_due(&mut tx, now).await?;
    let Some(res) = reservations::active_for(&mut tx, account.id, host.id, now).await? else {
        let msg = format!(
            "{} is not reserved on {}. {}",
            account.name,
            host.name,
            how_to_reserve(&account.name, &host.name)
        );
        return deny_begin(tx, ev, DenyReason::NoReservation, msg).await;
    };
    let ev = ev.person(&res.person);
    // sshd accepted the key of a registered person who is not the holder.
    if key_owner.as_ref().is_some_and(|o| *o != res.person) {
        let msg = format!(
            "{} is not reserved for you on {}. {}",
            account.name,
            host.name,
            how_to_reserve(&account.name, &host.name)
        );
        return deny_begin(tx, ev, DenyReason::NoReservation, msg).await;
    }
    let person = persons::by_id(&mut tx, res.person_id)
        .await?
        .ok_or_else(|| ApiError::internal("reservation without a person"))?;
    if !person.is_active() || !person.is_enrolled() {
        let reason = if person.is_active() {
            DenyReason::NotEnrolled
        } else {
            DenyReason::PersonDisabled
        };
        let msg = format!(
            "The reservation of {} on {} cannot be used.",
            account.name, host.name
        );
        return deny_begin(tx, ev, reason, msg).await;
    }
    if let Some(until) = person.locked_at(now) {
        let msg = format!(
            "Too many wrong codes. Try again after {}, or ask an admin to unlock you.",
            utc(until)
        );
        return deny_begin(tx, ev, DenyReason::LockedOut, msg).await;
    }
    let attempt = AttemptRow {
        id: keys::new_attempt_id(),
        host_id: host.id,
        account_id: account.id,
        reservation_id: res.id,
        state: "pending".into(),
        origin: origin.to_string(),
        created_at: now,
        expires_at: now + state.settings.logins.attempt_ttl.secs(),
    };
    reservations::insert_attempt(&mut tx, &attempt).await?;
    let mut ok = ev.detail(
        serde_json::json!({ "origin": origin, "ssh_key_owner": key_owner, "attempt": attempt.id }),
    );
    ok.result = AuditResult::Ok;
    audit::record(&mut tx, &ok.reason("code requested")).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(LoginBegun::Challenge {
        attempt: attempt.id,
        factor: Factor::Totp,
        expires_at: res.expires_at,
    }))
}

pub async fn verify(
    HostCaller(host): HostCaller,
    St(state): St<State>,
    Path(attempt_id): Path<String>,
    Body(req): Body<LoginVerify>,
) -> ApiResult<Json<LoginVerified>> {
    let now = now();
    let mut tx = state.store.write().await?;
    let Some(attempt) = reservations::attempt(&mut tx, &attempt_id, host.id).await? else {
        return Ok(Json(LoginVerified::Denied {
            reason: DenyReason::AttemptExpired,
            message: "This login attempt is unknown; start the login again.".into(),
        }));
    };
    let res = reservations::by_id(&mut tx, attempt.reservation_id)
        .await?
        .ok_or_else(|| ApiError::internal("attempt without a reservation"))?;
    let origin: serde_json::Value = serde_json::from_str(&attempt.origin).unwrap_or_default();
    let key_owner = ssh_keys::owner_of(&mut tx, origin["ssh_key"].as_str()).await?;
    let ev = base_event(now, &host, "login.verify", &res.account)
        .person(&res.person)
        .detail(serde_json::json!({
            "origin": origin,
            "ssh_key_owner": key_owner,
            "attempt": attempt.id,
            "reservation": res.id,
        }));

    // Every refusal ends the attempt and is audited; the person sees `message`.
    let refusal = |reason: DenyReason, message: String| (reason, message);
    let decision: Result<PersonName, (DenyReason, String)> = async {
        if attempt.state != "pending" {
            return Ok(Err(refusal(
                DenyReason::AttemptExpired,
                "This login attempt was already answered; start the login again.".into(),
            )));
        }
        if attempt.expires_at <= now {
            return Ok(Err(refusal(
                DenyReason::AttemptExpired,
                "The code came too late; start the login again.".into(),
            )));
        }
        let again = how_to_reserve(&res.account, &res.host);
        match res.state_at(now) {
            ReservationState::Active => {}
            ReservationState::Consumed => {
                return Ok(Err(refusal(
                    DenyReason::AlreadyUsed,
                    format!(
                        "The reservation of {} on {} was already used by a login. {again}",
                        res.account, res.host
                    ),
                )));
            }
            ReservationState::Expired => {
                return Ok(Err(refusal(
                    DenyReason::Expired,
                    format!(
                        "The reservation of {} on {} has expired. {again}",
                        res.account, res.host
                    ),
                )));
            }
            ReservationState::Released => {
                return Ok(Err(refusal(
                    DenyReason::NoReservation,
                    format!("{} is not reserved on {}. {again}", res.account, res.host),
                )));
            }
        }
        let account = accounts::by_id(&mut tx, res.account_id)
            .await?
            .ok_or_else(|| ApiError::internal("reservation without an account"))?;
        if !account.is_active() {
            return Ok(Err(refusal(
                DenyReason::AccountDisabled,
                format!("The shared account {} is disabled.", account.name),
            )));
        }
        let person = persons::by_id(&mut tx, res.person_id)
            .await?
            .ok_or_else(|| ApiError::internal("reservation without a person"))?;
        let cannot = format!(
            "The reservation of {} on {} cannot be used.",
            res.account, res.host
        );
        if !person.is_active() {
            return Ok(Err(refusal(DenyReason::PersonDisabled, cannot)));
        }
        let Some(sealed) = person.totp_secret.clone() else {
            return Ok(Err(refusal(DenyReason::NotEnrolled, cannot)));
        };
        match factor::check(&state, &mut tx, &person, &sealed, &req.code, now).await? {
            CodeOutcome::Accepted => {}
            CodeOutcome::LockedOut(until) => {
                return Ok(Err(refusal(
                    DenyReason::LockedOut,
                    format!(
                        "Too many wrong codes. Try again after {}, or ask an admin to unlock you.",
                        utc(until)
                    ),
                )));
            }
            CodeOutcome::Wrong { locked_until } => {
                let mut msg = format!(
                    "The code is not valid for the current reservation of {} on {}.",
                    res.account, res.host
                );
                if let Some(u) = locked_until {
                    msg.push_str(&format!(" Too many wrong codes: locked until {}.", utc(u)));
                }
                return Ok(Err(refusal(DenyReason::WrongCode, msg)));
            }
            CodeOutcome::Replayed => {
                return Ok(Err(refusal(
                    DenyReason::ReplayedCode,
                    "That code was already used. Wait for the next code and log in again.".into(),
                )));
            }
        }
        if !reservations::consume(&mut tx, res.id, now, &format!("host:{}", host.name)).await? {
            return Ok(Err(refusal(
                DenyReason::AlreadyUsed,
                format!(
                    "The reservation of {} on {} was already used by a login.",
                    res.account, res.host
                ),
            )));
        }
        let name = PersonName::new(&person.name).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok::<_, ApiError>(Ok(name))
    }
    .await?;

    match decision {
        Ok(person) => {
            reservations::finish_attempt(&mut tx, &attempt.id, "granted").await?;
            let mut ok = ev;
            ok.result = AuditResult::Ok;
            audit::record(&mut tx, &ok.reason("code accepted; reservation consumed")).await?;
            tx.commit().await.map_err(ApiError::internal)?;
            Ok(Json(LoginVerified::Granted {
                person,
                reservation_id: res.id,
            }))
        }
        Err((reason, message)) => {
            reservations::finish_attempt(&mut tx, &attempt.id, "denied").await?;
            let why = serde_json::to_value(reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned));
            let e = ev.reason(format!("{}: {message}", why.unwrap_or_default()));
            audit::record(&mut tx, &e).await?;
            tx.commit().await.map_err(ApiError::internal)?;
            Ok(Json(LoginVerified::Denied { reason, message }))
        }
    }
}

/// What the server makes of a `login.offline` event: a host is trusted only as far as the grant
/// it was given bounds it. Whatever else it says (another host's reservation, a time step outside
/// the reservation's window, a time it could not have logged in at) is refused, audited, and
/// changes nothing: a refused report neither consumes a reservation nor burns a time step.
#[derive(Debug)]
enum Reconcile {
    /// Believable: burn `step` for the holder and consume the reservation as of `at`.
    Accept {
        res: reservations::ReservationRow,
        step: i64,
        at: i64,
    },
    /// Not reconciled, with the reason for the audit log. `suspicious` when no grant this host
    /// was given could have produced the report.
    Refuse { why: String, suspicious: bool },
}

fn suspicious(why: String) -> ApiResult<Reconcile> {
    Ok(Reconcile::Refuse {
        why,
        suspicious: true,
    })
}

/// Judges a `login.offline` event against the reservation and the grant served for it (reads
/// only; `now` is the server's clock).
async fn judge_offline_login(
    conn: &mut sqlx::AnyConnection,
    host: &HostRow,
    ev: &jit_proto::api::HostEvent,
    now: i64,
) -> ApiResult<Reconcile> {
    const STEP: i64 = crate::totp::STEP_SECS as i64;
    let Some(id) = ev.reservation_id else {
        return suspicious("the event names no reservation".into());
    };
    let Some(res) = reservations::by_id(conn, id).await? else {
        return suspicious(format!("reservation {id} does not exist"));
    };
    if res.host_id != host.id {
        return suspicious(format!(
            "reservation {id} is not a reservation of this host"
        ));
    }
    if res.account != ev.account.as_str() {
        return suspicious(format!(
            "reservation {id} is for {}, not {}",
            res.account, ev.account
        ));
    }
    if let Some(p) = &ev.person
        && p.as_str() != res.person
    {
        return suspicious(format!(
            "reservation {id} is held by {}, not {p}",
            res.person
        ));
    }
    let Some(issued) = offline_store::issued(conn, id).await? else {
        return suspicious(format!("no offline grant was issued for reservation {id}"));
    };
    let Some(served_at) = issued.served_at else {
        return suspicious(format!(
            "the offline grant of reservation {id} was never given to this host"
        ));
    };
    let account = accounts::by_id(conn, res.account_id)
        .await?
        .ok_or_else(|| ApiError::internal("reservation without an account"))?;
    if account.offline() != OfflinePolicy::Cached {
        // The policy changed after the grant was served: the host may have acted in good faith.
        return Ok(Reconcile::Refuse {
            why: format!(
                "the offline policy of {} is no longer `cached`",
                account.name
            ),
            suspicious: false,
        });
    }
    let Some(step) = ev.totp_step else {
        return suspicious("the event carries no time step".into());
    };
    // The host's clock may run a step ahead of ours; beyond that the time is made up.
    if ev.at > now + STEP {
        return suspicious(format!(
            "the reported login time {} is in the future",
            utc(ev.at)
        ));
    }
    let at = ev.at.min(now);
    if at < res.created_at || at >= res.expires_at {
        return suspicious(format!(
            "the reported login time {} is outside the reservation's window ({} to {})",
            utc(at),
            utc(res.created_at),
            utc(res.expires_at)
        ));
    }
    if at < served_at - STEP {
        return suspicious(format!(
            "the reported login time {} is before this host was given the grant ({})",
            utc(at),
            utc(served_at)
        ));
    }
    let window = offline_api::steps(res.created_at, res.expires_at);
    let hashed: Vec<jit_proto::api::StepHash> = from_json("offline grant codes", &issued.codes)?;
    if !window.contains(&step) || !hashed.iter().any(|h| h.step == step) {
        return suspicious(format!(
            "time step {step} is outside the reservation's window (steps {} to {})",
            window.start(),
            window.end()
        ));
    }
    if (step - at.div_euclid(STEP)).abs() > 1 {
        return suspicious(format!(
            "time step {step} is not within one step of the reported login time (step {})",
            at.div_euclid(STEP)
        ));
    }
    // The reservation must have been live at the time of the login.
    let ended_before = |state: &str| {
        res.ended_at
            .is_none_or(|e| e <= at)
            .then(|| state.to_owned())
    };
    let gone = match res.state.as_str() {
        // Active, or expired at `expires_at` (after `at`, as checked above): live at `at`.
        "active" | "expired" => None,
        other => ended_before(other),
    };
    if let Some(state) = gone {
        return Ok(Reconcile::Refuse {
            why: format!(
                "reservation {id} was already {state} at the reported login time {}",
                utc(at)
            ),
            // Nobody tells a host offline of a release; a consumption it made itself it knows of.
            suspicious: state == "consumed",
        });
    }
    Ok(Reconcile::Accept { res, step, at })
}

/// Applies a judged `login.offline` event (only when it was newly stored) and audits the
/// outcome as `login.reconcile`.
async fn reconcile_offline_login(
    conn: &mut sqlx::AnyConnection,
    host: &HostRow,
    ev: &jit_proto::api::HostEvent,
    verdict: Reconcile,
    now: i64,
) -> ApiResult<()> {
    let actor = format!("host:{}", host.name);
    let detail = serde_json::json!({
        "event": ev.id,
        "reservation": ev.reservation_id,
        "totp_step": ev.totp_step,
        "reported_at": ev.at,
    });
    let base = |result| {
        let e = Event::new(now, actor.clone(), "login.reconcile", result)
            .account(ev.account.as_str())
            .host(&host.name)
            .detail(detail.clone());
        match &ev.person {
            Some(p) => e.person(p.as_str()),
            None => e,
        }
    };
    match verdict {
        Reconcile::Refuse { why, suspicious } => {
            let why = if suspicious {
                tracing::warn!(host = %host.name, event = %ev.id, "suspicious offline login report refused: {why}");
                format!("suspicious report refused: {why}")
            } else {
                format!("refused: {why}")
            };
            audit::record(conn, &base(AuditResult::Denied).reason(why)).await?;
        }
        Reconcile::Accept { res, step, at } => {
            // The code's step can no longer be used anywhere (it is inside the window, so this
            // cannot push the holder's last step beyond the reservation's end).
            persons::accept_step(conn, res.person_id, step).await?;
            // `consume` checks the expiry against its `now`: use the time of the login.
            let consumed =
                reservations::consume(conn, res.id, at, &format!("{actor} (offline)")).await?;
            let why = if consumed {
                format!(
                    "offline login at {} reconciled: reservation consumed, time step {step} used",
                    utc(at)
                )
            } else {
                format!(
                    "offline login at {} reconciled: time step {step} used; the reservation had \
                     already ended",
                    utc(at)
                )
            };
            let e = base(AuditResult::Ok).person(&res.person).reason(why);
            audit::record(conn, &e).await?;
        }
    }
    Ok(())
}

/// Event kinds a host may report.
const HOST_ACTIONS: &[&str] = &[
    "session.open",
    "session.close",
    "account.denied",
    "login.denied",
    "login.offline",
];

pub async fn events(
    HostCaller(host): HostCaller,
    St(state): St<State>,
    Body(req): Body<HostEvents>,
) -> ApiResult<Json<EventsStored>> {
    if req.events.len() > MAX_EVENTS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_EVENTS} events per request"
        )));
    }
    let now = now();
    let mut tx = state.store.write().await?;
    let mut stored = 0u32;
    for ev in &req.events {
        let Some(action) = HOST_ACTIONS.iter().find(|a| **a == ev.action) else {
            return Err(ApiError::bad_request(format!(
                "unknown event action {:?}; expected one of {}",
                ev.action,
                HOST_ACTIONS.join(", ")
            )));
        };
        if ev.id.is_empty() || ev.id.len() > 100 {
            return Err(ApiError::bad_request(
                "event id must be 1 to 100 characters",
            ));
        }
        if let Some(r) = &ev.reason {
            rules::check_reason(&Some(r.chars().take(rules::MAX_REASON_CHARS).collect()))?;
        }
        // A reported login decided offline is judged before it is stored: its time is taken
        // only once the grant bounds it.
        let verdict = if ev.action == "login.offline" && ev.result == AuditResult::Ok {
            Some(judge_offline_login(&mut tx, &host, ev, now).await?)
        } else {
            None
        };
        // The host's clock is its word: an event from the future is recorded as of now, and a
        // refused offline login as of when it arrived. The reported time stays in the detail.
        let at = match &verdict {
            Some(Reconcile::Accept { at, .. }) => *at,
            Some(Reconcile::Refuse { .. }) => now,
            None => ev.at.min(now),
        };
        let mut e = Event::new(at, format!("host:{}", host.name), action, ev.result)
            .account(ev.account.as_str())
            .host(&host.name)
            .key(format!("host:{}:{}", host.id, ev.id))
            .detail(serde_json::json!({
                "event": ev.id,
                "origin": ev.origin,
                "ssh_key_owner": ssh_keys::owner_of(&mut tx, ev.origin.ssh_key.as_deref()).await?,
                "reservation": ev.reservation_id,
                "attempt": ev.attempt,
                "reported_at": ev.at,
                "received_at": now,
            }));
        if let Some(p) = &ev.person {
            e = e.person(p.as_str());
        }
        if let Some(r) = &ev.reason {
            e = e.reason(r.chars().take(rules::MAX_REASON_CHARS).collect::<String>());
        }
        if audit::record(&mut tx, &e).await? {
            stored += 1;
            if let Some(verdict) = verdict {
                reconcile_offline_login(&mut tx, &host, ev, verdict, now).await?;
            }
        }
    }
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(EventsStored { stored }))
}
