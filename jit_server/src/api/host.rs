//! The host-facing API (host credential): the shared accounts of a host, login begin/verify with
//! atomic consumption of the reservation, and events the host reports.
//!
//! The login handlers only carry a decision: read the facts, decide, apply, answer, all in one
//! transaction ([`crate::login`]). Messages in login answers are shown to whoever sits at the
//! login prompt, so they never name the holder of a reservation (`jitctl status` is where
//! holders are shown).

use axum::Json;
use axum::extract::{Path, State as St};
use axum::http::{HeaderMap, Uri};
use jit_proto::AccountName;
use jit_proto::api::{
    AuditResult, EventsStored, HostAccount, HostAccounts, HostEvent, HostEvents, LoginBegin,
    LoginBegun, LoginVerified, LoginVerify, LoginWait, MAX_WAIT_SECS,
};

use super::auth::HostCaller;
use super::factor;
use super::reservations::expire_due;
use super::ssh_keys;
use super::{Body, State, now};
use crate::error::{ApiError, ApiResult};
use crate::login::decision::{CodeMatch, Decision, OfflineReport};
use crate::login::facts::{self, Subject};
use crate::login::{Step, apply, approval, decide, policies};
use crate::rules;
use crate::store::audit::{self, Event};
use crate::store::hosts::HostRow;
use crate::store::reservations::{self, AttemptRow, ReservationRow};
use crate::store::{StoreError, accounts};

/// Largest batch of events a host may deliver at once.
const MAX_EVENTS: usize = 500;

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

/// The portal's address, for links to the approval page: `portal.public_url`, else the
/// server's own address (`public_url`, or the one the caller used).
pub(crate) fn portal_base(state: &State, headers: &HeaderMap, uri: &Uri) -> ApiResult<String> {
    match &state.settings.portal.public_url {
        Some(u) => Ok(u.trim_end_matches('/').to_owned()),
        None => super::hosts::public_url(state, headers, uri),
    }
}

/// A two-digit number for a push challenge, 10 to 99, drawn uniformly.
fn challenge_number() -> u8 {
    use rand::Rng;
    rand::rng().random_range(10..=99)
}

/// `POST /v1/host/logins`.
pub async fn begin(
    HostCaller(host): HostCaller,
    St(state): St<State>,
    headers: HeaderMap,
    uri: Uri,
    Body(req): Body<LoginBegin>,
) -> ApiResult<Json<LoginBegun>> {
    rules::check_origin(&req.origin)?;
    let base = portal_base(&state, &headers, &uri)?;
    let now = now();
    let mut tx = state.store.write().await?;
    expire_due(&mut tx, now).await?;
    let subject = Subject::Begin {
        account: req.account.as_str(),
        origin: &req.origin,
    };
    let g = facts::read(&mut tx, &host, subject, policies(&state.settings), now).await?;
    let step = Step::Begin {
        number: challenge_number(),
    };
    let decision = decide(&step, &g.facts, now);
    let ttl = state.settings.logins.attempt_ttl.secs();
    let begun = apply::begin(&mut tx, &host, &g, &decision, ttl, &base, now).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    if let Some(n) = begun.notice {
        crate::push::send(&state, n);
    }
    Ok(Json(begun.answer))
}

/// `POST /v1/host/logins/{attempt}/wait`: holds the request until the push of `attempt` is
/// answered or `wait_secs` pass. An approval wakes it at once in this process; other server
/// processes sharing the database are seen within a second.
pub async fn wait(
    HostCaller(host): HostCaller,
    St(state): St<State>,
    Path(attempt): Path<String>,
    Body(req): Body<LoginWait>,
) -> ApiResult<Json<LoginVerified>> {
    let hold = std::time::Duration::from_secs(u64::from(req.wait_secs.min(MAX_WAIT_SECS)));
    let until = tokio::time::Instant::now() + hold;
    let policies = policies(&state.settings);
    loop {
        let changed = state.push.changed();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let now = now();
        let subject = Subject::Verify { attempt: &attempt };
        // Look first without the write lock: most looks find nothing new.
        let mut tx = state.store.read().await?;
        let g = facts::read(&mut tx, &host, subject, policies, now).await?;
        drop(tx);
        let pending = matches!(decide(&Step::Wait, &g.facts, now), Decision::Wait { .. });
        if pending && tokio::time::Instant::now() < until {
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = tokio::time::sleep_until(until) => {}
            }
            continue;
        }
        let mut tx = state.store.write().await?;
        let subject = Subject::Verify { attempt: &attempt };
        let g = facts::read(&mut tx, &host, subject, policies, now).await?;
        let decision = decide(&Step::Wait, &g.facts, now);
        let answer = approval::wait(&mut tx, &host, &g, &decision, now).await?;
        tx.commit().await.map_err(ApiError::internal)?;
        return Ok(Json(answer));
    }
}

/// `POST /v1/host/logins/{attempt}/verify`.
pub async fn verify(
    HostCaller(host): HostCaller,
    St(state): St<State>,
    headers: HeaderMap,
    uri: Uri,
    Path(attempt): Path<String>,
    Body(req): Body<LoginVerify>,
) -> ApiResult<Json<LoginVerified>> {
    let now = now();
    let mut tx = state.store.write().await?;
    let subject = Subject::Verify { attempt: &attempt };
    let g = facts::read(&mut tx, &host, subject, policies(&state.settings), now).await?;
    let code = match &g.holder {
        Some(holder) => factor::match_factor(&state, holder, &req.code, now)?,
        None => CodeMatch::NoMatch,
    };
    let decision = decide(&Step::Verify { code }, &g.facts, now);
    let base = portal_base(&state, &headers, &uri)?;
    let verified = apply::verify(&mut tx, &host, &g, &decision, &base, now).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    if let Some(n) = verified.alert {
        crate::push::send(&state, n);
    }
    Ok(Json(verified.answer))
}

/// How far a host's clock may be behind the server's when it reports an event: an event dated
/// this much before what it is about was served is still taken as the host's word.
const EVENT_CLOCK_SLACK_SECS: i64 = 120;

/// A host speaks only for itself: an event (other than an offline login, judged against its
/// grant) names a reservation or login attempt of this host
/// (an attempt the server no longer knows, or one decided offline, names nothing and is taken as
/// a label), for the event's account, and is dated no earlier than the host, the reservation or
/// the attempt existed; a session opens no later than its reservation ended. Times in the
/// future are recorded as of now ([`apply::event_time`]).
fn check_served(
    host: &HostRow,
    ev: &HostEvent,
    reservation: Option<&ReservationRow>,
    attempt: Option<&AttemptRow>,
) -> ApiResult<()> {
    let refuse = |why: String| {
        Err(ApiError::bad_request(format!(
            "event {:?} ({}) refused: {why}",
            ev.id, ev.action
        )))
    };
    let earliest = |from: i64| from - EVENT_CLOCK_SLACK_SECS;
    if ev.at < earliest(host.created_at) {
        return refuse(format!(
            "it is dated {}, before this host was added ({})",
            ev.at, host.created_at
        ));
    }
    if let Some(id) = ev.reservation_id {
        let Some(r) = reservation.filter(|r| r.host_id == host.id) else {
            return refuse(format!("reservation {id} is not one of this host's"));
        };
        if r.account != ev.account.as_str() {
            return refuse(format!(
                "reservation {id} is for account {}, not {}",
                r.account, ev.account
            ));
        }
        if ev.at < earliest(r.created_at) {
            return refuse(format!(
                "it is dated {}, before reservation {id} was made ({})",
                ev.at, r.created_at
            ));
        }
        if ev.action == "session.open" && ev.at > r.expires_at + EVENT_CLOCK_SLACK_SECS {
            return refuse(format!(
                "a session dated {} cannot open after reservation {id} ran out ({})",
                ev.at, r.expires_at
            ));
        }
    }
    if let (Some(id), Some(a)) = (&ev.attempt, attempt) {
        if a.host_id != host.id {
            return refuse(format!("login attempt {id:?} is not one of this host's"));
        }
        if ev.reservation_id.is_some_and(|r| r != a.reservation_id) {
            return refuse(format!(
                "login attempt {id:?} was for reservation {}",
                a.reservation_id
            ));
        }
        if ev.at < earliest(a.created_at) {
            return refuse(format!(
                "it is dated {}, before login attempt {id:?} began ({})",
                ev.at, a.created_at
            ));
        }
    }
    Ok(())
}

/// Event kinds a host may report.
const HOST_ACTIONS: &[&str] = &[
    "session.open",
    "session.close",
    "session.ended",
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
    let policy = policies(&state.settings);
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
        let reservation = match ev.reservation_id {
            Some(id) => reservations::by_id(&mut tx, id).await?,
            None => None,
        };
        let attempt = match &ev.attempt {
            Some(id) => reservations::attempt_of_any_host(&mut tx, id).await?,
            None => None,
        };
        // A reported offline login is judged against its grant instead (below): a report that
        // does not hold is kept as evidence, as of its arrival, and its refusal audited.
        if ev.action != "login.offline" {
            check_served(&host, ev, reservation.as_ref(), attempt.as_ref())?;
        }
        // A reported login decided offline is judged before it is stored: its time is taken
        // only once the grant bounds it.
        let judged = if ev.action == "login.offline" && ev.result == AuditResult::Ok {
            let subject = Subject::Offline {
                reservation_id: ev.reservation_id,
            };
            let g = facts::read(&mut tx, &host, subject, policy, now).await?;
            let report = OfflineReport {
                reservation_id: ev.reservation_id,
                account: ev.account.to_string(),
                person: ev.person.as_ref().map(|p| p.to_string()),
                at: ev.at,
                totp_step: ev.totp_step,
            };
            let decision = decide(&Step::Offline(report), &g.facts, now);
            Some((g, decision))
        } else {
            None
        };
        // The host's clock is its word: an event from the future is recorded as of now, and a
        // refused offline login as of when it arrived. The reported time stays in the detail.
        let at = apply::event_time(ev, judged.as_ref().map(|(_, d)| d), now);
        let mut detail = serde_json::json!({
            "event": ev.id,
            "origin": ev.origin,
            "reservation": ev.reservation_id,
            "attempt": ev.attempt,
            "reported_at": ev.at,
            "received_at": now,
        });
        if let Some(cause) = ev.ended {
            detail["ended"] = serde_json::json!(cause);
        }
        if let Some(owner) = ssh_keys::owner_of(&mut tx, ev.origin.ssh_key.as_deref()).await? {
            detail["ssh_key_owner"] = serde_json::json!(owner);
        }
        let mut e = Event::new(at, format!("host:{}", host.name), action, ev.result)
            .account(ev.account.as_str())
            .host(&host.name)
            .key(format!("host:{}:{}", host.id, ev.id))
            .detail(detail);
        if let Some(p) = &ev.person {
            e = e.person(p.as_str());
        }
        if let Some(r) = &ev.reason {
            e = e.reason(r.chars().take(rules::MAX_REASON_CHARS).collect::<String>());
        }
        if audit::record(&mut tx, &e).await? {
            stored += 1;
            if let Some((g, decision)) = judged {
                apply::offline(&mut tx, &host, ev, &g, &decision, now).await?;
            }
            if ev.action.starts_with("session.") && ev.result == AuditResult::Ok {
                super::sessions::record_event(&mut tx, &host, ev, at).await?;
            }
        }
    }
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(EventsStored { stored }))
}
