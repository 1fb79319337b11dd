//! Admin endpoints for hosts, and the join exchange (join secret → host credential).

use axum::Json;
use axum::extract::{Path, State as St};
use axum::http::{HeaderMap, Uri};
use jit_proto::HostName;
use jit_proto::api::{AuditResult, ErrorCode, Host, HostCreated, JoinRequest, Joined, NewHost};
use jit_proto::join_token::JoinToken;
use subtle::ConstantTimeEq;

use super::auth::Admin;
use super::{Body, State, now, path_name};
use crate::error::{ApiError, ApiResult};
use crate::keys::{self, TokenKind};
use crate::store::audit::{self, Event};
use crate::store::hosts::{self, HostRow};
use crate::store::is_unique_violation;

async fn find(conn: &mut sqlx::AnyConnection, name: &str) -> ApiResult<HostRow> {
    hosts::by_name(conn, name).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "no host named {name}; list them with `jitctl host list`"
        ))
    })
}

/// The URL hosts should use: `public_url` from server.toml, else the authority the admin used.
pub(crate) fn public_url(state: &State, headers: &HeaderMap, uri: &Uri) -> ApiResult<String> {
    if let Some(u) = &state.settings.public_url {
        return Ok(u.trim_end_matches('/').to_owned());
    }
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .filter(|a| {
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .ok_or_else(|| {
            ApiError::bad_request("cannot tell the server's address: set public_url in server.toml")
        })?;
    Ok(format!("https://{authority}"))
}

fn join_token(state: &State, url: String, host: &HostName, secret: jit_proto::Secret) -> String {
    JoinToken {
        server: url,
        ca_fingerprint: state.ca_fingerprint.to_string(),
        host: host.clone(),
        secret,
    }
    .encode()
    .expose()
    .to_owned()
}

pub async fn add(
    admin: Admin,
    St(state): St<State>,
    headers: HeaderMap,
    uri: Uri,
    Body(req): Body<NewHost>,
) -> ApiResult<Json<HostCreated>> {
    let actor = admin.actor();
    let url = public_url(&state, &headers, &uri)?;
    let now = now();
    let secret = keys::new_token(TokenKind::JoinSecret);
    let expires = now + state.settings.hosts.join_ttl.secs();
    let mut tx = state.store.write().await?;
    let hash = keys::token_hash(secret.expose());
    match hosts::insert(&mut tx, req.name.as_str(), &req.labels, &hash, expires, now).await {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::exists(format!(
                "host {} already exists; to join it again run `jitctl host rejoin {}`",
                req.name, req.name
            )));
        }
        Err(e) => return Err(ApiError::internal(e)),
    }
    let e = Event::new(now, actor.clone(), "host.add", AuditResult::Ok)
        .host(req.name.as_str())
        .detail(serde_json::json!({ "labels": req.labels }));
    audit::record(&mut tx, &e).await?;
    let row = find(&mut tx, req.name.as_str()).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(HostCreated {
        host: row.to_api()?,
        join_token: join_token(&state, url, &req.name, secret),
        join_expires_at: expires,
    }))
}

pub async fn list(_: Admin, St(state): St<State>) -> ApiResult<Json<Vec<Host>>> {
    let mut tx = state.store.read().await?;
    let rows = hosts::list(&mut tx).await?;
    Ok(Json(
        rows.iter().map(HostRow::to_api).collect::<Result<_, _>>()?,
    ))
}

pub async fn rejoin(
    admin: Admin,
    St(state): St<State>,
    headers: HeaderMap,
    uri: Uri,
    Path(name): Path<String>,
) -> ApiResult<Json<HostCreated>> {
    let actor = admin.actor();
    let name: HostName = path_name(&name)?;
    let url = public_url(&state, &headers, &uri)?;
    let now = now();
    let secret = keys::new_token(TokenKind::JoinSecret);
    let expires = now + state.settings.hosts.join_ttl.secs();
    let mut tx = state.store.write().await?;
    let row = find(&mut tx, name.as_str()).await?;
    hosts::reset_join(&mut tx, row.id, &keys::token_hash(secret.expose()), expires).await?;
    let e = Event::new(now, actor.clone(), "host.rejoin", AuditResult::Ok)
        .host(&row.name)
        .reason("previous host credential revoked");
    audit::record(&mut tx, &e).await?;
    let row = find(&mut tx, name.as_str()).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(HostCreated {
        host: row.to_api()?,
        join_token: join_token(&state, url, &name, secret),
        join_expires_at: expires,
    }))
}

async fn set_active(
    state: State,
    actor: String,
    name: String,
    active: bool,
) -> ApiResult<Json<Host>> {
    let name: HostName = path_name(&name)?;
    let now = now();
    let mut tx = state.store.write().await?;
    let row = find(&mut tx, name.as_str()).await?;
    hosts::set_active(&mut tx, row.id, active).await?;
    let action = if active {
        "host.enable"
    } else {
        "host.disable"
    };
    audit::record(
        &mut tx,
        &Event::new(now, actor.clone(), action, AuditResult::Ok).host(&row.name),
    )
    .await?;
    let row = find(&mut tx, name.as_str()).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(row.to_api()?))
}

pub async fn disable(
    admin: Admin,
    St(state): St<State>,
    Path(name): Path<String>,
) -> ApiResult<Json<Host>> {
    set_active(state, admin.actor(), name, false).await
}

pub async fn enable(
    admin: Admin,
    St(state): St<State>,
    Path(name): Path<String>,
) -> ApiResult<Json<Host>> {
    set_active(state, admin.actor(), name, true).await
}

/// `POST /v1/join`: the join secret is the credential for this one call.
/// `POST /v1/join`, which anyone may call: rate-limited per address and per host name, and
/// checked in a read snapshot, so a bad join never waits for or takes the database's write
/// lock. Refused joins are audited together, one row per window ([`super::rate_limit`]).
pub async fn join(St(state): St<State>, Body(req): Body<JoinRequest>) -> ApiResult<Json<Joined>> {
    let now = now();
    let addr = super::client_addr::current();
    let limits = &state.limits;
    let name = req.host.as_str();
    let refused = |why: &'static str, e: ApiError| {
        limits.note_refused_join(why, addr, name, now);
        e
    };
    limits
        .admit_address(addr, "join", now)
        .and_then(|()| limits.admit_name("host", name, "join", now))
        .map_err(|e| refused("rate limited", e))?;
    let invalid = || {
        ApiError::unauthorized(
            "this join token is not (or no longer) valid: copy it again from `jitctl host add` or \
             `jitctl host rejoin`, whichever was run last for this host",
        )
    };
    let used = |name: &str| {
        ApiError::new(
            ErrorCode::Expired,
            format!(
                "this join token was already used; make a new one with `jitctl host rejoin {name}`"
            ),
        )
    };
    let row = {
        let mut tx = state.store.read().await?;
        hosts::by_name(&mut tx, name).await?
    };
    let row = row.ok_or_else(|| refused("unknown host", invalid()))?;
    let presented = keys::token_hash(req.secret.expose());
    let Some(expected) = row.join_secret_hash.as_deref() else {
        return Err(refused("token already used", used(&row.name)));
    };
    if !bool::from(expected.as_bytes().ct_eq(presented.as_bytes())) {
        return Err(refused("wrong secret", invalid()));
    }
    if row.join_expires_at.is_some_and(|t| t <= now) {
        return Err(refused(
            "token expired",
            ApiError::new(
                ErrorCode::Expired,
                format!(
                    "this join token has expired; make a new one with `jitctl host rejoin {}`",
                    row.name
                ),
            ),
        ));
    }
    // Only a join that will succeed gets here; the update below checks the secret and the
    // expiry again, for a join (or rejoin) that happened in between.
    let mut tx = state.store.write().await?;
    let credential = keys::new_token(TokenKind::Host);
    if !hosts::complete_join(
        &mut tx,
        row.id,
        &presented,
        &keys::token_hash(credential.expose()),
        now,
    )
    .await?
    {
        return Err(refused("token already used", used(&row.name)));
    }
    let e = Event::new(
        now,
        format!("host:{}", row.name),
        "host.join",
        AuditResult::Ok,
    )
    .host(&row.name);
    audit::record(&mut tx, &e).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(Joined {
        host: req.host,
        credential,
    }))
}
