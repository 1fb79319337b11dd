//! Admin endpoints for shared accounts.

use axum::Json;
use axum::extract::{Path, State as St};
use jit_proto::AccountName;
use jit_proto::api::{Account, AccountChange, AuditResult, NewAccount};
use sqlx::AnyConnection;

use super::auth::Admin;
use super::{Body, State, groups as group_api, now, path_name};
use crate::error::{ApiError, ApiResult};
use crate::rules;
use crate::store::accounts::{self, AccountRow, NewAccountRow, offline_str};
use crate::store::audit::{self, Event};
use crate::store::{is_unique_violation, to_json};

pub(super) async fn find(conn: &mut AnyConnection, name: &str) -> ApiResult<AccountRow> {
    accounts::by_name(conn, name).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "no shared account named {name}; list them with `jitctl account list`"
        ))
    })
}

async fn to_api(conn: &mut AnyConnection, row: &AccountRow) -> ApiResult<Account> {
    let groups = accounts::groups_of(conn, row.id).await?;
    Ok(row.to_api(groups)?)
}

async fn group_ids(
    conn: &mut AnyConnection,
    names: &[jit_proto::GroupName],
) -> ApiResult<Vec<i64>> {
    if names.is_empty() {
        return Err(ApiError::bad_request(
            "a shared account needs at least one group of persons who may reserve it (--group)",
        ));
    }
    let mut ids = Vec::with_capacity(names.len());
    for g in names {
        ids.push(group_api::find_id(conn, g.as_str()).await?);
    }
    Ok(ids)
}

fn check_where(patterns: &[String], labels: &[jit_proto::Label]) -> ApiResult<()> {
    for p in patterns {
        rules::check_host_pattern(p)?;
    }
    if patterns.is_empty() && labels.is_empty() {
        return Err(ApiError::bad_request(
            "say which hosts the account exists on: --hosts PATTERN (e.g. 'web*' or '*') or --label LABEL",
        ));
    }
    Ok(())
}

pub async fn add(
    admin: Admin,
    St(state): St<State>,
    Body(req): Body<NewAccount>,
) -> ApiResult<Json<Account>> {
    let actor = admin.actor();
    let (default_ttl, max_ttl) = rules::account_ttls(req.default_ttl_secs, req.max_ttl_secs)?;
    check_where(&req.host_patterns, &req.host_labels)?;
    if let Some(p) = &req.posix {
        rules::check_posix(p)?;
    }
    let now = now();
    let mut tx = state.store.write().await?;
    let gids = group_ids(&mut tx, &req.groups).await?;
    if let Some(p) = &req.posix
        && let Some(other) = accounts::uid_taken(&mut tx, p.uid).await?
    {
        return Err(ApiError::exists(format!(
            "uid {} is already used by shared account {other}",
            p.uid
        )));
    }
    let row = NewAccountRow {
        name: req.name.as_str(),
        posix: req.posix.as_ref(),
        default_ttl_secs: default_ttl,
        max_ttl_secs: max_ttl,
        host_patterns: &req.host_patterns,
        host_labels: &req.host_labels,
        offline: req.offline,
        factor: req.factor,
        end_session_at_expiry: req.end_session_at_expiry,
    };
    let id = match accounts::insert(&mut tx, &row, now).await {
        Ok(id) => id,
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::exists(format!(
                "shared account {} already exists",
                req.name
            )));
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    accounts::set_groups(&mut tx, id, &gids).await?;
    let e = Event::new(now, actor.clone(), "account.add", AuditResult::Ok)
        .account(req.name.as_str())
        .detail(serde_json::json!({
            "virtual": req.posix.is_some(),
            "groups": req.groups,
            "hosts": req.host_patterns,
            "labels": req.host_labels,
            "default_ttl_secs": default_ttl,
            "max_ttl_secs": max_ttl,
            "factor": req.factor,
            "end_session_at_expiry": req.end_session_at_expiry,
        }));
    audit::record(&mut tx, &e).await?;
    let row = find(&mut tx, req.name.as_str()).await?;
    let out = to_api(&mut tx, &row).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(out))
}

pub async fn list(_: Admin, St(state): St<State>) -> ApiResult<Json<Vec<Account>>> {
    let mut tx = state.store.read().await?;
    let mut out = Vec::new();
    for row in accounts::list(&mut tx).await? {
        out.push(to_api(&mut tx, &row).await?);
    }
    Ok(Json(out))
}

pub async fn show(
    _: Admin,
    St(state): St<State>,
    Path(name): Path<String>,
) -> ApiResult<Json<Account>> {
    let name: AccountName = path_name(&name)?;
    let mut tx = state.store.read().await?;
    let row = find(&mut tx, name.as_str()).await?;
    Ok(Json(to_api(&mut tx, &row).await?))
}

pub async fn change(
    admin: Admin,
    St(state): St<State>,
    Path(name): Path<String>,
    Body(req): Body<AccountChange>,
) -> ApiResult<Json<Account>> {
    let actor = admin.actor();
    let name: AccountName = path_name(&name)?;
    let now = now();
    let mut tx = state.store.write().await?;
    let mut row = find(&mut tx, name.as_str()).await?;
    let (old_default, old_max) = row.ttls();
    let ttl_changed = req.default_ttl_secs.is_some() || req.max_ttl_secs.is_some();
    let (default_ttl, max_ttl) = rules::account_ttls(
        req.default_ttl_secs.or(Some(old_default)),
        req.max_ttl_secs.or(Some(old_max)),
    )?;
    let patterns = req.host_patterns.clone().unwrap_or(row.patterns()?);
    let labels = req.host_labels.clone().unwrap_or(row.labels()?);
    check_where(&patterns, &labels)?;
    if let Some(groups) = &req.groups {
        let gids = group_ids(&mut tx, groups).await?;
        accounts::set_groups(&mut tx, row.id, &gids).await?;
    }
    if ttl_changed {
        row.default_ttl_secs = i64::from(default_ttl);
        row.max_ttl_secs = i64::from(max_ttl);
    }
    row.host_patterns = to_json(&patterns);
    row.host_labels = to_json(&labels);
    if let Some(o) = req.offline {
        row.offline = offline_str(o).to_owned();
    }
    if let Some(f) = req.factor {
        row.factor = accounts::factor_str(f).to_owned();
    }
    if let Some(end) = req.end_session_at_expiry {
        row.end_session_at_expiry = i64::from(end);
    }
    accounts::update(&mut tx, &row).await?;
    let e = Event::new(now, actor.clone(), "account.change", AuditResult::Ok)
        .account(&row.name)
        .detail(serde_json::to_value(&req).unwrap_or_default());
    audit::record(&mut tx, &e).await?;
    let row = find(&mut tx, name.as_str()).await?;
    let out = to_api(&mut tx, &row).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(out))
}

async fn set_active(
    state: State,
    actor: String,
    name: String,
    active: bool,
) -> ApiResult<Json<Account>> {
    let name: AccountName = path_name(&name)?;
    let now = now();
    let mut tx = state.store.write().await?;
    let mut row = find(&mut tx, name.as_str()).await?;
    row.active = i64::from(active);
    accounts::update(&mut tx, &row).await?;
    let action = if active {
        "account.enable"
    } else {
        "account.disable"
    };
    audit::record(
        &mut tx,
        &Event::new(now, actor.clone(), action, AuditResult::Ok).account(&row.name),
    )
    .await?;
    let out = to_api(&mut tx, &row).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(out))
}

pub async fn disable(
    admin: Admin,
    St(state): St<State>,
    Path(name): Path<String>,
) -> ApiResult<Json<Account>> {
    set_active(state, admin.actor(), name, false).await
}

pub async fn enable(
    admin: Admin,
    St(state): St<State>,
    Path(name): Path<String>,
) -> ApiResult<Json<Account>> {
    set_active(state, admin.actor(), name, true).await
}
