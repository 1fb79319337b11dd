//! `POST /v1/bootstrap`: the one-time token `jit-server init` (or `jit-server admin-token`)
//! printed becomes a named admin. There is no anonymous admin: every admin action is audited
//! under a person's name, and so is this one.

use axum::Json;
use axum::extract::State as St;
use jit_proto::api::{AuditResult, Bootstrap, Bootstrapped, ErrorCode};

use super::auth::BootstrapToken;
use super::persons::issue_code;
use super::{Body, State, now};
use crate::error::{ApiError, ApiResult};
use crate::keys::{self, TokenKind};
use crate::store::audit::{self, Event};
use crate::store::persons;

pub async fn bootstrap(
    BootstrapToken(hash): BootstrapToken,
    St(state): St<State>,
    Body(req): Body<Bootstrap>,
) -> ApiResult<Json<Bootstrapped>> {
    let now = now();
    let mut tx = state.store.write().await?;
    if !persons::use_admin_token(&mut tx, &hash, req.name.as_str(), now).await? {
        return Err(ApiError::new(
            ErrorCode::Expired,
            "this bootstrap token is unknown or was already used: on the server, run \
             `jit-server admin-token` for a new one",
        ));
    }
    let (row, created) = match persons::by_name(&mut tx, req.name.as_str()).await? {
        Some(row) => (row, false),
        None => {
            persons::insert(&mut tx, req.name.as_str(), req.display_name.as_deref(), now)
                .await
                .map_err(ApiError::internal)?;
            let row = persons::by_name(&mut tx, req.name.as_str())
                .await?
                .ok_or_else(|| ApiError::internal("person vanished after insert"))?;
            (row, true)
        }
    };
    persons::set_admin(&mut tx, row.id, true).await?;
    persons::set_active(&mut tx, row.id, true).await?;
    let token = keys::new_token(TokenKind::Person);
    let until = now + state.settings.tokens.person_ttl.secs();
    persons::insert_token(
        &mut tx,
        row.id,
        &keys::token_hash(token.expose()),
        now,
        until,
    )
    .await?;
    let issued = if row.is_enrolled() {
        None
    } else {
        Some(issue_code(&state, &mut tx, &row, now).await?)
    };
    let e = Event::new(
        now,
        format!("person:{}", row.name),
        if created {
            "person.add"
        } else {
            "person.grant_admin"
        },
        AuditResult::Ok,
    )
    .person(&row.name)
    .reason("admin created with a one-time bootstrap token")
    .detail(serde_json::json!({ "admin": true, "bootstrap": true }));
    audit::record(&mut tx, &e).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(Bootstrapped {
        person: req.name,
        created,
        token,
        enrollment_code: issued.as_ref().map(|i| i.enrollment_code.clone()),
        enrollment_expires_at: issued.map(|i| i.enrollment_expires_at),
    }))
}
