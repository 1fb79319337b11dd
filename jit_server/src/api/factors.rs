//! A person's own second factors: see them, enroll push (with an ntfy topic and token) or take
//! it away, and set up an authenticator app (TOTP) next to it. An admin resets a person's
//! factors with `reset-factor` instead (api/persons.rs).

use axum::Json;
use axum::extract::State as St;
use jit_proto::api::{
    AuditResult, ErrorCode, Factors, PushEnroll, PushFactor, TotpConfirm, TotpStarted,
};
use jit_proto::{PersonName, Secret};
use sqlx::AnyConnection;

use super::auth::Caller;
use super::factor;
use super::{Body, State, now};
use crate::error::{ApiError, ApiResult};
use crate::login::decision::{CodeVerdict, Failure};
use crate::push::{ntfy, ntfy_token_aad};
use crate::store::StoreError;
use crate::store::audit::{self, Event};
use crate::store::persons::{self, PersonRow};
use crate::store::push;
use crate::totp;

fn me(caller: Caller) -> ApiResult<PersonRow> {
    match caller {
        Caller::Admin(p) | Caller::Person(p) => Ok(p),
        Caller::Host(_) => Err(ApiError::forbidden("factors belong to persons")),
    }
}

/// A person's factors as the API shows them.
pub async fn of(conn: &mut AnyConnection, p: &PersonRow) -> ApiResult<Factors> {
    let push = match push::factor(conn, p.id).await? {
        Some(f) => Some(PushFactor {
            ntfy_topic: f.ntfy_topic,
            ntfy_token: f.ntfy_token.is_some(),
            browsers: u32::try_from(push::subscriptions(conn, p.id).await?.len())
                .unwrap_or(u32::MAX),
            since: f.created_at,
        }),
        None => None,
    };
    Ok(Factors {
        person: PersonName::new(&p.name).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        totp: p.is_enrolled(),
        push,
    })
}

/// `GET /v1/factors`.
pub async fn show(caller: Caller, St(state): St<State>) -> ApiResult<Json<Factors>> {
    let p = me(caller)?;
    let mut tx = state.store.read().await?;
    Ok(Json(of(&mut tx, &p).await?))
}

/// Checks an ntfy topic and token before they are stored.
pub fn check_push(req: &PushEnroll) -> ApiResult<()> {
    if let Some(t) = &req.ntfy_topic
        && !ntfy::valid_topic(t)
    {
        return Err(ApiError::bad_request(
            "ntfy_topic: 1 to 64 of A-Z a-z 0-9 _ - (pick one nobody can guess)",
        ));
    }
    if req.ntfy_token.is_some() && req.ntfy_topic.is_none() {
        return Err(ApiError::bad_request(
            "ntfy_token goes with an ntfy_topic: give both",
        ));
    }
    if let Some(t) = &req.ntfy_token
        && (t.expose().is_empty()
            || t.expose().len() > 256
            || !t.expose().bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(ApiError::bad_request(
            "ntfy_token: the access token from the ntfy server (tk_…), one word",
        ));
    }
    Ok(())
}

/// Enrolls push for `p` (or changes its ntfy topic and token), audited as `person.push_enroll`.
pub async fn set_push(
    state: &State,
    conn: &mut AnyConnection,
    p: &PersonRow,
    req: &PushEnroll,
    actor: &str,
    now: i64,
) -> ApiResult<()> {
    check_push(req)?;
    let sealed = req
        .ntfy_token
        .as_ref()
        .map(|t| state.key.seal(t.expose().as_bytes(), &ntfy_token_aad(p.id)));
    push::set_factor(
        conn,
        p.id,
        req.ntfy_topic.as_deref(),
        sealed.as_deref(),
        now,
    )
    .await?;
    let e = Event::new(now, actor, "person.push_enroll", AuditResult::Ok)
        .person(&p.name)
        .detail(serde_json::json!({
            "ntfy_topic": req.ntfy_topic,
            "ntfy_token": req.ntfy_token.is_some(),
        }));
    audit::record(conn, &e).await?;
    Ok(())
}

/// `POST /v1/factors/push`.
pub async fn enroll_push(
    caller: Caller,
    St(state): St<State>,
    Body(req): Body<PushEnroll>,
) -> ApiResult<Json<Factors>> {
    let p = me(caller)?;
    let now = now();
    let mut tx = state.store.write().await?;
    set_push(
        &state,
        &mut tx,
        &p,
        &req,
        &format!("person:{}", p.name),
        now,
    )
    .await?;
    let out = of(&mut tx, &p).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(out))
}

/// `DELETE /v1/factors/push`: never the last factor.
pub async fn remove_push(caller: Caller, St(state): St<State>) -> ApiResult<Json<Factors>> {
    let p = me(caller)?;
    let now = now();
    let mut tx = state.store.write().await?;
    if !p.is_enrolled() {
        return Err(ApiError::new(
            ErrorCode::NotAllowed,
            "push is your only factor for logins: set up an authenticator app first \
             (`jitctl factor add totp`)",
        ));
    }
    if !push::remove_factor(&mut tx, p.id).await? {
        return Err(ApiError::not_found("push is not enrolled"));
    }
    let e = Event::new(
        now,
        format!("person:{}", p.name),
        "person.push_remove",
        AuditResult::Ok,
    )
    .person(&p.name);
    audit::record(&mut tx, &e).await?;
    let out = of(&mut tx, &p).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(out))
}

/// `POST /v1/factors/totp`: a new pending secret (the current one works until confirmed).
pub async fn totp_start(caller: Caller, St(state): St<State>) -> ApiResult<Json<TotpStarted>> {
    let p = me(caller)?;
    let secret = totp::new_secret();
    let sealed = state.key.seal(&secret, &factor::secret_aad(p.id));
    let mut tx = state.store.write().await?;
    persons::set_pending_secret(&mut tx, p.id, &sealed).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    let uri = totp::otpauth_uri(&secret, &state.settings.issuer, &p.name)
        .ok_or_else(|| ApiError::internal("cannot build otpauth URI"))?;
    Ok(Json(TotpStarted { otpauth_uri: uri }))
}

/// `POST /v1/factors/totp/confirm`: the pending secret becomes the person's authenticator app
/// once a code from it is right (counted towards the lockout like any code).
pub async fn totp_confirm(
    caller: Caller,
    St(state): St<State>,
    Body(req): Body<TotpConfirm>,
) -> ApiResult<Json<Factors>> {
    let p = me(caller)?;
    let now = now();
    let mut tx = state.store.write().await?;
    let person = persons::by_id(&mut tx, p.id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such person"))?;
    let sealed = person.totp_pending.clone().ok_or_else(|| {
        ApiError::bad_request("start first: `jitctl factor add totp` does both steps")
    })?;
    let code = Secret::new(req.code.expose().trim().replace(' ', ""));
    let outcome = factor::check(&state, &mut tx, &person, &sealed, &code, now).await?;
    let actor = format!("person:{}", person.name);
    if !matches!(outcome, CodeVerdict::Accepted(_)) {
        let e = Event::new(now, actor, "person.totp_reset", AuditResult::Denied)
            .person(&person.name)
            .reason("wrong confirmation code");
        audit::record(&mut tx, &e).await?;
        tx.commit().await.map_err(ApiError::internal)?;
        return Err(match outcome {
            CodeVerdict::LockedOut(u)
            | CodeVerdict::Wrong(Failure {
                lock_until: Some(u),
                ..
            }) => ApiError::new(
                ErrorCode::LockedOut,
                format!(
                    "too many wrong codes; try again after {}",
                    crate::rules::utc(u)
                ),
            )
            .with_until(u),
            _ => ApiError::unauthorized(
                "that code is not right: type the code the new entry in your app shows now",
            ),
        });
    }
    persons::activate_factor(&mut tx, person.id).await?;
    let e = Event::new(now, actor, "person.totp_reset", AuditResult::Ok).person(&person.name);
    audit::record(&mut tx, &e).await?;
    let person = persons::by_id(&mut tx, p.id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such person"))?;
    let out = of(&mut tx, &person).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(out))
}
