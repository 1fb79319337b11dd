//! Enrollment: a person trades the one-time code an admin gave them for a TOTP factor and a
//! jitctl token. Two calls, so the person proves their authenticator works before it counts.
//!
//! Anyone may call these: each call is rate-limited per client address and, once its code names
//! a person, per person ([`super::rate_limit`]), and is checked in a read snapshot first, so a
//! bad code never waits for or takes the database's write lock.

use axum::Json;
use axum::extract::State as St;
use jit_proto::api::{AuditResult, EnrollConfirm, EnrollStart, EnrollStarted, Enrolled, ErrorCode};
use jit_proto::{PersonName, Secret};
use sqlx::AnyConnection;

use super::factor;
use super::{Body, State, now};
use crate::error::{ApiError, ApiResult};
use crate::keys::{self, TokenKind};
use crate::login::decision::{CodeVerdict, Failure};
use crate::store::StoreError;
use crate::store::audit::{self, Event};
use crate::store::persons::{self, PersonRow};
use crate::totp;

/// Finds the person an enrollment code belongs to, if the code is still good.
pub(crate) async fn redeem(
    conn: &mut AnyConnection,
    code: &Secret,
    now: i64,
) -> ApiResult<(String, PersonRow)> {
    let normalized = keys::normalize_enrollment_code(code.expose());
    let hash = keys::token_hash(&normalized);
    let row = persons::enrollment_by_code(conn, &hash).await?.ok_or_else(|| {
        ApiError::unauthorized(
            "enrollment code is not valid: check it, or ask an admin for a new one (`jitctl person reset-factor NAME`)",
        )
    })?;
    if row.used_at.is_some() {
        return Err(ApiError::new(
            ErrorCode::Expired,
            "this enrollment code was already used; ask an admin for a new one (`jitctl person reset-factor NAME`)",
        ));
    }
    if row.expires_at <= now {
        return Err(ApiError::new(
            ErrorCode::Expired,
            "this enrollment code has expired; ask an admin for a new one (`jitctl person reset-factor NAME`)",
        ));
    }
    let person = persons::by_id(conn, row.person_id)
        .await?
        .ok_or_else(|| ApiError::internal("enrollment code without a person"))?;
    if !person.is_active() {
        return Err(ApiError::not_allowed(format!(
            "person {} is disabled",
            person.name
        )));
    }
    Ok((hash, person))
}

/// The limits and the read-only check every enrollment call passes before it may write: the
/// code must name a person who may enroll now.
async fn admit(state: &State, code: &Secret, what: &str, now: i64) -> ApiResult<PersonRow> {
    let limits = &state.limits;
    limits.admit_address(super::client_addr::current(), what, now)?;
    let person = {
        let mut tx = state.store.read().await?;
        redeem(&mut tx, code, now).await?.1
    };
    limits.admit_name("person", &person.name, what, now)?;
    Ok(person)
}

fn name(p: &PersonRow) -> ApiResult<PersonName> {
    PersonName::new(&p.name).map_err(|e| StoreError::Corrupt(e.to_string()).into())
}

pub async fn start(
    St(state): St<State>,
    Body(req): Body<EnrollStart>,
) -> ApiResult<Json<EnrollStarted>> {
    let now = now();
    admit(&state, &req.enrollment_code, "enrollment", now).await?;
    let mut tx = state.store.write().await?;
    let (_, person) = redeem(&mut tx, &req.enrollment_code, now).await?;
    let secret = totp::new_secret();
    let sealed = state.key.seal(&secret, &factor::secret_aad(person.id));
    persons::set_pending_secret(&mut tx, person.id, &sealed).await?;
    let uri = totp::otpauth_uri(&secret, &state.settings.issuer, &person.name)
        .ok_or_else(|| ApiError::internal("cannot build otpauth URI"))?;
    let e = Event::new(
        now,
        format!("enroll:{}", person.name),
        "person.enroll_start",
        AuditResult::Ok,
    )
    .person(&person.name);
    audit::record(&mut tx, &e).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(EnrollStarted {
        person: name(&person)?,
        otpauth_uri: uri,
    }))
}

pub async fn confirm(
    St(state): St<State>,
    Body(req): Body<EnrollConfirm>,
) -> ApiResult<Json<Enrolled>> {
    let now = now();
    let person = admit(&state, &req.enrollment_code, "enrollment", now).await?;
    if person.totp_pending.is_none() {
        return Err(ApiError::bad_request(
            "start enrollment first (`jitctl enroll CODE` does both steps)",
        ));
    }
    let mut tx = state.store.write().await?;
    let (hash, person) = redeem(&mut tx, &req.enrollment_code, now).await?;
    let sealed = person.totp_pending.clone().ok_or_else(|| {
        ApiError::bad_request("start enrollment first (`jitctl enroll CODE` does both steps)")
    })?;
    let actor = format!("enroll:{}", person.name);
    match factor::check(&state, &mut tx, &person, &sealed, &req.code, now).await? {
        CodeVerdict::Accepted(_) => {}
        CodeVerdict::LockedOut(until) => {
            return Err(ApiError::new(
                ErrorCode::LockedOut,
                format!(
                    "too many wrong codes; try again after {}",
                    crate::rules::utc(until)
                ),
            )
            .with_until(until));
        }
        outcome => {
            let e = Event::new(now, actor, "person.enroll", AuditResult::Denied)
                .person(&person.name)
                .reason("wrong confirmation code");
            audit::record(&mut tx, &e).await?;
            tx.commit().await.map_err(ApiError::internal)?;
            let mut msg = "that code is not right: check that your phone's clock is correct and type the code showing now".to_owned();
            if let CodeVerdict::Wrong(Failure {
                lock_until: Some(u),
                ..
            }) = outcome
            {
                msg.push_str(&format!(
                    "; too many wrong codes, locked until {}",
                    crate::rules::utc(u)
                ));
            }
            return Err(ApiError::unauthorized(msg));
        }
    }
    if !persons::use_enrollment_code(&mut tx, &hash, now).await? {
        return Err(ApiError::new(
            ErrorCode::Expired,
            "this enrollment code was already used",
        ));
    }
    persons::activate_factor(&mut tx, person.id).await?;
    let token = keys::new_token(TokenKind::Person);
    let until = now + state.settings.tokens.person_ttl.secs();
    persons::insert_token(
        &mut tx,
        person.id,
        &keys::token_hash(token.expose()),
        now,
        until,
    )
    .await?;
    let e = Event::new(now, actor, "person.enroll", AuditResult::Ok).person(&person.name);
    audit::record(&mut tx, &e).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(Enrolled {
        person: name(&person)?,
        token,
    }))
}

/// `POST /v1/enroll/push`: enroll push as the first factor (no authenticator app), for a
/// jitctl token. The person approves logins with `jitctl approve` or on the portal, where they
/// sign in with a passkey registered with the same kind of enrollment code.
pub async fn push(
    St(state): St<State>,
    Body(req): Body<jit_proto::api::EnrollPush>,
) -> ApiResult<Json<Enrolled>> {
    let now = now();
    let settings = jit_proto::api::PushEnroll {
        ntfy_topic: req.ntfy_topic.clone(),
        ntfy_token: req.ntfy_token.clone(),
    };
    super::factors::check_push(&settings)?;
    admit(&state, &req.enrollment_code, "enrollment", now).await?;
    let mut tx = state.store.write().await?;
    let (hash, person) = redeem(&mut tx, &req.enrollment_code, now).await?;
    if !persons::use_enrollment_code(&mut tx, &hash, now).await? {
        return Err(ApiError::new(
            ErrorCode::Expired,
            "this enrollment code was already used",
        ));
    }
    let actor = format!("enroll:{}", person.name);
    super::factors::set_push(&state, &mut tx, &person, &settings, &actor, now).await?;
    let token = keys::new_token(TokenKind::Person);
    let until = now + state.settings.tokens.person_ttl.secs();
    persons::insert_token(
        &mut tx,
        person.id,
        &keys::token_hash(token.expose()),
        now,
        until,
    )
    .await?;
    let e = Event::new(now, actor, "person.enroll", AuditResult::Ok)
        .person(&person.name)
        .detail(serde_json::json!({ "factor": "push" }));
    audit::record(&mut tx, &e).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(Enrolled {
        person: name(&person)?,
        token,
    }))
}
