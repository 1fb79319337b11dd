//! `GET /v1/audit` (admin).

use axum::Json;
use axum::extract::State as St;
use jit_proto::api::{AuditEvents, AuditQuery};

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
