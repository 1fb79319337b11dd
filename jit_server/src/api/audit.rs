//! `GET /v1/audit` and `GET /v1/audit/verify` (admin).

use axum::Json;
use axum::extract::State as St;
use jit_proto::api::{AuditEvents, AuditQuery, AuditVerification};

use super::auth::Admin;
use super::{Params, State};
use crate::error::ApiResult;
use crate::store::audit;

pub async fn query(
    _: Admin,
    St(state): St<State>,
    Params(q): Params<AuditQuery>,
) -> ApiResult<Json<AuditEvents>> {
    let mut tx = state.store.read().await?;
    Ok(Json(AuditEvents {
        events: audit::query(&mut tx, &q).await?,
    }))
}

/// Checks the whole hash chain in one read snapshot; the answer names the first broken row.
pub async fn verify(_: Admin, St(state): St<State>) -> ApiResult<Json<AuditVerification>> {
    let mut tx = state.store.read().await?;
    Ok(Json(audit::verify(&mut tx).await?))
}
