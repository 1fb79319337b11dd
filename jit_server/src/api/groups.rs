//! Admin endpoints for groups of persons.

use axum::Json;
use axum::extract::{Path, State as St};
use jit_proto::api::{AuditResult, Group, NewGroup, NewMember};
use jit_proto::{GroupName, PersonName};
use sqlx::AnyConnection;

use super::auth::Admin;
use super::{Body, State, now, path_name, persons as person_api};
use crate::error::{ApiError, ApiResult};
use crate::store::audit::{self, Event};
use crate::store::{StoreError, groups, is_unique_violation};

pub(super) async fn find_id(conn: &mut AnyConnection, name: &str) -> ApiResult<i64> {
    groups::id_by_name(conn, name).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "no group named {name}; create it with `jitctl group add {name}`"
        ))
    })
}

async fn to_api(conn: &mut AnyConnection, id: i64, name: &str) -> ApiResult<Group> {
    let corrupt = |e: jit_proto::NameError| StoreError::Corrupt(e.to_string());
    let members = groups::members(conn, id)
        .await?
        .iter()
        .map(|m| PersonName::new(m))
        .collect::<Result<Vec<_>, _>>()
        .map_err(corrupt)?;
    Ok(Group {
        name: GroupName::new(name).map_err(corrupt)?,
        members,
    })
}

pub async fn add(
    admin: Admin,
    St(state): St<State>,
    Body(req): Body<NewGroup>,
) -> ApiResult<Json<Group>> {
    let actor = admin.actor();
    let now = now();
    let mut tx = state.store.write().await?;
    let id = match groups::insert(&mut tx, req.name.as_str(), now).await {
        Ok(id) => id,
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::exists(format!(
                "group {} already exists",
                req.name
            )));
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    let e = Event::new(now, actor.clone(), "group.add", AuditResult::Ok)
        .reason(format!("group {} created", req.name))
        .detail(serde_json::json!({ "group": req.name }));
    audit::record(&mut tx, &e).await?;
    let out = to_api(&mut tx, id, req.name.as_str()).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(out))
}

pub async fn list(_: Admin, St(state): St<State>) -> ApiResult<Json<Vec<Group>>> {
    let mut tx = state.store.read().await?;
    let mut out = Vec::new();
    for name in groups::names(&mut tx).await? {
        let id = find_id(&mut tx, &name).await?;
        out.push(to_api(&mut tx, id, &name).await?);
    }
    Ok(Json(out))
}

pub async fn show(
    _: Admin,
    St(state): St<State>,
    Path(name): Path<String>,
) -> ApiResult<Json<Group>> {
    let name: GroupName = path_name(&name)?;
    let mut tx = state.store.read().await?;
    let id = find_id(&mut tx, name.as_str()).await?;
    Ok(Json(to_api(&mut tx, id, name.as_str()).await?))
}

pub async fn add_member(
    admin: Admin,
    St(state): St<State>,
    Path(name): Path<String>,
    Body(req): Body<NewMember>,
) -> ApiResult<Json<Group>> {
    let actor = admin.actor();
    let name: GroupName = path_name(&name)?;
    let now = now();
    let mut tx = state.store.write().await?;
    let gid = find_id(&mut tx, name.as_str()).await?;
    let person = person_api::find(&mut tx, req.person.as_str()).await?;
    if groups::add_member(&mut tx, gid, person.id).await? {
        let e = Event::new(now, actor.clone(), "group.add_member", AuditResult::Ok)
            .person(&person.name)
            .reason(format!("{} added to group {name}", person.name))
            .detail(serde_json::json!({ "group": name }));
        audit::record(&mut tx, &e).await?;
    }
    let out = to_api(&mut tx, gid, name.as_str()).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(out))
}

pub async fn remove_member(
    admin: Admin,
    St(state): St<State>,
    Path((name, person)): Path<(String, String)>,
) -> ApiResult<Json<Group>> {
    let actor = admin.actor();
    let name: GroupName = path_name(&name)?;
    let person: PersonName = path_name(&person)?;
    let now = now();
    let mut tx = state.store.write().await?;
    let gid = find_id(&mut tx, name.as_str()).await?;
    let row = person_api::find(&mut tx, person.as_str()).await?;
    if !groups::remove_member(&mut tx, gid, row.id).await? {
        return Err(ApiError::not_found(format!(
            "{person} is not a member of {name}"
        )));
    }
    let e = Event::new(now, actor.clone(), "group.remove_member", AuditResult::Ok)
        .person(&row.name)
        .reason(format!("{} removed from group {name}", row.name))
        .detail(serde_json::json!({ "group": name }));
    audit::record(&mut tx, &e).await?;
    let out = to_api(&mut tx, gid, name.as_str()).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(out))
}
