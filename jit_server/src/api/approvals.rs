//! Push approvals, as the person a login waits for: list the logins waiting for me, approve one
//! by typing the number its prompt shows, or report it ("This was not me"). The portal's
//! approval page calls these same handlers.
//!
//! The handlers only carry the decision ([`crate::login`]): read the challenge's facts, decide
//! `Approve`/`Report`, apply, commit; then wake the host waiting for the answer and, for a
//! report, alert the admins.

use axum::Json;
use axum::extract::{Path, State as St};
use axum::http::{HeaderMap, Uri};
use jit_proto::api::{
    ApprovalAnswered, ApprovalOutcome, Approvals, ApproveRequest, AuditResult, DenyReason,
    ErrorCode, LoginOrigin,
};
use jit_proto::{AccountName, HostName, PersonName};
use sqlx::AnyConnection;

use super::auth::Caller;
use super::host::portal_base;
use super::{Body, State, now};
use crate::error::{ApiError, ApiResult};
use crate::login::approval::{self, Answered};
use crate::login::decision::Denial;
use crate::login::{Step, decide, facts, policies};
use crate::store::StoreError;
use crate::store::audit::{self, Event};
use crate::store::persons::PersonRow;
use crate::store::push::{self, PendingRow};

/// Approvals are a person's own, admins included: nobody approves for somebody else.
fn person(caller: Caller) -> ApiResult<PersonRow> {
    match caller {
        Caller::Admin(p) | Caller::Person(p) => Ok(p),
        Caller::Host(_) => Err(ApiError::forbidden(
            "approvals are for persons: run `jitctl approve` as yourself",
        )),
    }
}

/// A challenge as its approver sees it (never the number).
pub fn to_api(row: &PendingRow) -> ApiResult<jit_proto::api::Approval> {
    let corrupt = |e: jit_proto::NameError| ApiError::from(StoreError::Corrupt(e.to_string()));
    let origin: LoginOrigin = serde_json::from_str(&row.origin).unwrap_or_default();
    Ok(jit_proto::api::Approval {
        id: row.challenge.id.clone(),
        person: PersonName::new(&row.person).map_err(corrupt)?,
        account: AccountName::new(&row.account).map_err(corrupt)?,
        host: HostName::new(&row.host).map_err(corrupt)?,
        service: origin.service,
        rhost: origin.rhost,
        tty: origin.tty,
        ruser: origin.ruser,
        created_at: row.challenge.created_at,
        expires_at: row.challenge.expires_at,
    })
}

/// The logins waiting for `person`'s approval now, oldest first.
pub async fn pending(state: &State, person_id: i64, now: i64) -> ApiResult<Approvals> {
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(ApiError::internal)?;
    let rows = push::pending_for(&mut conn, person_id, now).await?;
    Ok(Approvals {
        approvals: rows.iter().map(to_api).collect::<Result<_, _>>()?,
        now,
    })
}

/// `GET /v1/approvals`.
pub async fn list(caller: Caller, St(state): St<State>) -> ApiResult<Json<Approvals>> {
    let p = person(caller)?;
    Ok(Json(pending(&state, p.id, now()).await?))
}

/// A refusal of the approval page or `jitctl approve`, as an API error.
fn refusal(no: &Denial) -> ApiError {
    let code = match no.reason {
        DenyReason::PushDenied => ErrorCode::NotAllowed,
        DenyReason::PushExpired => ErrorCode::Expired,
        DenyReason::AttemptExpired if no.message.starts_with("No such login") => {
            ErrorCode::NotFound
        }
        DenyReason::AttemptExpired => ErrorCode::Expired,
        _ => ErrorCode::NotAllowed,
    };
    ApiError::new(code, no.message.clone())
}

/// Decides `step` for challenge `id` as `by` and applies it; the answer, and what the
/// challenge looks like afterwards.
async fn answer(
    state: &State,
    id: &str,
    by: &PersonRow,
    step: Step,
    base: &str,
    now: i64,
) -> ApiResult<(Answered, Option<PendingRow>)> {
    let mut tx = state.store.write().await?;
    let not_found = || ApiError::not_found("No such login is waiting for your approval.");
    if !valid_id(id) {
        return Err(not_found());
    }
    let Some((host, g)) =
        facts::read_challenge(&mut tx, id, policies(&state.settings), now).await?
    else {
        return Err(not_found());
    };
    let d = decide(&step, &g.facts, now);
    let answered = match step {
        Step::Report { .. } => {
            approval::report(&mut tx, &host, &g, &d, &by.name, base, now).await?
        }
        _ => approval::approve(&mut tx, &host, &g, &d, &by.name, now).await?,
    };
    let row = push::described(&mut tx, id).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    // The host waiting for this login looks again now.
    state.push.approvals_changed();
    Ok((answered, row))
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Approves challenge `id` with `number` as person `by`.
pub async fn approve_as(
    state: &State,
    id: &str,
    by: &PersonRow,
    number: u8,
    base: &str,
    now: i64,
) -> ApiResult<ApprovalAnswered> {
    let step = Step::Approve {
        by: by.name.clone(),
        number,
    };
    let (answered, row) = answer(state, id, by, step, base, now).await?;
    match (answered, row) {
        (Answered::Approved, Some(row)) => Ok(ApprovalAnswered {
            approval: to_api(&row)?,
            outcome: ApprovalOutcome::Approved,
            message: format!(
                "Approved: the login to {} on {} goes on.",
                row.account, row.host
            ),
        }),
        (Answered::Refused(no), _) => Err(refusal(&no)),
        _ => Err(ApiError::internal("an approval without its challenge")),
    }
}

/// Reports challenge `id` as not `by`'s: the login is refused, the reservation released and
/// the admins alerted.
pub async fn report_as(
    state: &State,
    id: &str,
    by: &PersonRow,
    base: &str,
    now: i64,
) -> ApiResult<ApprovalAnswered> {
    let step = Step::Report {
        by: by.name.clone(),
    };
    let (answered, row) = answer(state, id, by, step, base, now).await?;
    match (answered, row) {
        (Answered::Reported(notice), Some(row)) => {
            crate::push::send(state, notice);
            Ok(ApprovalAnswered {
                approval: to_api(&row)?,
                outcome: ApprovalOutcome::Reported,
                message: format!(
                    "Reported: the login to {} on {} is refused, your reservation is released \
                     and the admins are alerted.",
                    row.account, row.host
                ),
            })
        }
        (Answered::Refused(no), _) => Err(refusal(&no)),
        _ => Err(ApiError::internal("a report without its challenge")),
    }
}

/// `POST /v1/approvals/{id}/approve`.
pub async fn approve(
    caller: Caller,
    St(state): St<State>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    Body(req): Body<ApproveRequest>,
) -> ApiResult<Json<ApprovalAnswered>> {
    let p = person(caller)?;
    if !(10..=99).contains(&req.number) {
        return Err(ApiError::bad_request(
            "number: type the two digits the login prompt shows (10 to 99)",
        ));
    }
    let base = portal_base(&state, &headers, &uri)?;
    Ok(Json(
        approve_as(&state, &id, &p, req.number, &base, now()).await?,
    ))
}

/// `POST /v1/approvals/{id}/report`.
pub async fn report(
    caller: Caller,
    St(state): St<State>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Json<ApprovalAnswered>> {
    let p = person(caller)?;
    let base = portal_base(&state, &headers, &uri)?;
    Ok(Json(report_as(&state, &id, &p, &base, now()).await?))
}

/// Marks challenges nobody answered in time expired, each audited as `push.expired` (the
/// background sweeper).
pub async fn expire_due(conn: &mut AnyConnection, now: i64) -> ApiResult<()> {
    for c in push::expire_due(conn, now).await? {
        let origin: serde_json::Value = serde_json::from_str(&c.origin).unwrap_or_default();
        let e = Event::new(
            now,
            format!("host:{}", c.host),
            "push.expired",
            AuditResult::Denied,
        )
        .person(&c.person)
        .account(&c.account)
        .host(&c.host)
        .detail(serde_json::json!({ "origin": origin, "challenge": c.challenge.id }))
        .reason("nobody approved the login in time");
        audit::record(conn, &e).await?;
    }
    Ok(())
}
