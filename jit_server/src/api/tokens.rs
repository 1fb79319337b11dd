//! Listing and revoking credentials: person tokens (jitctl) and host credentials (jitd). The
//! secrets themselves are never stored; a credential is named by the start of its hash.

use axum::Json;
use axum::extract::{Path, State as St};
use jit_proto::api::{AuditResult, CredentialKind, TokenInfo, Tokens};

use super::auth::Caller;
use super::{State, now};
use crate::error::{ApiError, ApiResult};
use crate::store::audit::{self, Event};
use crate::store::{hosts, persons};

/// Hex digits of the hash that name a credential (64 bits: no two collide in practice).
const ID_HEX: usize = 16;

fn id(kind: CredentialKind, hash: &str) -> String {
    let p = match kind {
        CredentialKind::Person => "p-",
        CredentialKind::Host => "h-",
    };
    format!("{p}{}", &hash[..ID_HEX.min(hash.len())])
}

/// The credentials `caller` may see: an admin all of them, a person their own tokens.
pub async fn visible(state: &State, caller: &Caller, now: i64) -> ApiResult<Vec<TokenInfo>> {
    let mut tx = state.store.read().await?;
    let person_id = match caller {
        Caller::Admin(_) => None,
        Caller::Person(p) => Some(p.id),
        Caller::Host(_) => return Err(ApiError::forbidden("this needs a person or an admin")),
    };
    let mut out: Vec<TokenInfo> = persons::tokens(&mut tx, person_id)
        .await?
        .into_iter()
        .map(|t| TokenInfo {
            id: id(CredentialKind::Person, &t.token_hash),
            kind: CredentialKind::Person,
            owner: t.person,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            expires_at: t.expires_at,
            expired: t.expires_at.is_some_and(|e| e <= now),
        })
        .collect();
    if person_id.is_none() {
        for (name, hash, created_at, last_seen) in hosts::credentials(&mut tx).await? {
            out.push(TokenInfo {
                id: id(CredentialKind::Host, &hash),
                kind: CredentialKind::Host,
                owner: name,
                created_at,
                last_used_at: last_seen,
                expires_at: None,
                expired: false,
            });
        }
    }
    Ok(out)
}

pub async fn list(caller: Caller, St(state): St<State>) -> ApiResult<Json<Tokens>> {
    let now = now();
    Ok(Json(Tokens {
        tokens: visible(&state, &caller, now).await?,
        now,
    }))
}

/// `POST /v1/tokens/{id}/revoke`: a person may revoke their own tokens, an admin any credential.
pub async fn revoke(
    caller: Caller,
    St(state): St<State>,
    Path(token_id): Path<String>,
) -> ApiResult<Json<TokenInfo>> {
    let now = now();
    let not_found = || {
        ApiError::not_found(format!(
            "no live credential {token_id}; list them with `jitctl token list`"
        ))
    };
    let found = visible(&state, &caller, now)
        .await?
        .into_iter()
        .find(|t| t.id == token_id)
        .ok_or_else(not_found)?;
    let prefix = &token_id[2..];
    let mut tx = state.store.write().await?;
    let (person, host) = match found.kind {
        CredentialKind::Person => {
            let rows = persons::tokens(&mut tx, None).await?;
            let hit = rows
                .iter()
                .find(|t| t.token_hash.starts_with(prefix))
                .ok_or_else(not_found)?;
            if !persons::revoke_token(&mut tx, &hit.token_hash, now).await? {
                return Err(not_found());
            }
            (Some(found.owner.clone()), None)
        }
        CredentialKind::Host => {
            let name = hosts::revoke_credential(&mut tx, prefix)
                .await?
                .ok_or_else(not_found)?;
            (None, Some(name))
        }
    };
    let mut e = Event::new(now, caller.actor(), "token.revoke", AuditResult::Ok)
        .detail(serde_json::json!({ "token": token_id }));
    if let Some(p) = person {
        e = e.person(p);
    }
    if let Some(h) = host {
        e = e
            .host(h)
            .reason("host credential revoked; the host must join again");
    }
    audit::record(&mut tx, &e).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(found))
}
