//! Admin endpoints for persons.

use axum::Json;
use axum::extract::{Path, State as St};
use jit_proto::api::{AdminRole, AuditResult, EnrollmentIssued, NewPerson, Person};
use jit_proto::{GroupName, PersonName};
use sqlx::AnyConnection;

use super::auth::Admin;
use super::{Body, State, now, path_name};
use crate::error::{ApiError, ApiResult};
use crate::keys;
use crate::store::audit::{self, Event};
use crate::store::persons::{self, PersonRow};
use crate::store::{StoreError, is_unique_violation, reservations};

pub(super) async fn to_api(
    conn: &mut AnyConnection,
    row: &PersonRow,
    now: i64,
) -> ApiResult<Person> {
    let groups = persons::groups_of(conn, row.id)
        .await?
        .iter()
        .map(|g| GroupName::new(g))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let push = crate::store::push::factor(conn, row.id).await?.is_some();
    Ok(Person {
        push,
        name: PersonName::new(&row.name).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        display_name: row.display_name.clone(),
        active: row.is_active(),
        enrolled: row.is_enrolled(),
        groups,
        locked_until: row.locked_at(now),
        created_at: row.created_at,
        admin: row.is_admin(),
    })
}

pub(super) async fn find(conn: &mut AnyConnection, name: &str) -> ApiResult<PersonRow> {
    persons::by_name(conn, name).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "no person named {name}; list them with `jitctl person list`"
        ))
    })
}

fn check_display_name(d: &Option<String>) -> ApiResult<()> {
    if let Some(d) = d {
        if d.chars().count() > 100 {
            return Err(ApiError::bad_request(
                "display name: at most 100 characters",
            ));
        }
        crate::rules::check_printable("the display name", d)?;
    }
    Ok(())
}

/// Issues a fresh enrollment code for `person` inside `conn`'s transaction.
pub(crate) async fn issue_code(
    state: &State,
    conn: &mut AnyConnection,
    person: &PersonRow,
    now: i64,
) -> ApiResult<EnrollmentIssued> {
    let code = keys::new_enrollment_code();
    let expires_at = now + state.settings.enrollment.code_ttl.secs();
    let normalized = keys::normalize_enrollment_code(code.expose());
    persons::issue_enrollment_code(
        conn,
        person.id,
        &keys::token_hash(&normalized),
        now,
        expires_at,
    )
    .await?;
    Ok(EnrollmentIssued {
        person: PersonName::new(&person.name).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        enrollment_code: code.expose().to_owned(),
        enrollment_expires_at: expires_at,
    })
}

pub async fn add(
    admin: Admin,
    St(state): St<State>,
    Body(req): Body<NewPerson>,
) -> ApiResult<Json<EnrollmentIssued>> {
    let actor = admin.actor();
    check_display_name(&req.display_name)?;
    let now = now();
    let mut tx = state.store.write().await?;
    match persons::insert(&mut tx, req.name.as_str(), req.display_name.as_deref(), now).await {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::exists(format!(
                "person {} already exists",
                req.name
            )));
        }
        Err(e) => return Err(ApiError::internal(e)),
    }
    let row = find(&mut tx, req.name.as_str()).await?;
    if req.admin {
        persons::set_admin(&mut tx, row.id, true).await?;
    }
    let issued = issue_code(&state, &mut tx, &row, now).await?;
    let mut e = Event::new(now, actor.clone(), "person.add", AuditResult::Ok).person(&row.name);
    if req.admin {
        e = e.detail(serde_json::json!({ "admin": true }));
    }
    audit::record(&mut tx, &e).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(issued))
}

pub async fn list(_: Admin, St(state): St<State>) -> ApiResult<Json<Vec<Person>>> {
    let now = now();
    let mut tx = state.store.read().await?;
    let mut out = Vec::new();
    for row in persons::list(&mut tx).await? {
        out.push(to_api(&mut tx, &row, now).await?);
    }
    Ok(Json(out))
}

pub async fn show(
    _: Admin,
    St(state): St<State>,
    Path(name): Path<String>,
) -> ApiResult<Json<Person>> {
    let name: PersonName = path_name(&name)?;
    let mut tx = state.store.read().await?;
    let row = find(&mut tx, name.as_str()).await?;
    Ok(Json(to_api(&mut tx, &row, now()).await?))
}

async fn set_active(
    state: State,
    actor: String,
    name: String,
    active: bool,
) -> ApiResult<Json<Person>> {
    let name: PersonName = path_name(&name)?;
    let now = now();
    let mut tx = state.store.write().await?;
    let row = find(&mut tx, name.as_str()).await?;
    if !active && row.is_admin() && persons::active_admins(&mut tx).await? <= 1 {
        return Err(ApiError::not_allowed(format!(
            "{} is the last admin: grant the role to someone else first",
            row.name
        )));
    }
    persons::set_active(&mut tx, row.id, active).await?;
    let action = if active {
        "person.enable"
    } else {
        "person.disable"
    };
    audit::record(
        &mut tx,
        &Event::new(now, actor.clone(), action, AuditResult::Ok).person(&row.name),
    )
    .await?;
    if !active {
        // A disabled person's reservations end now: nobody may log in on their behalf, and the
        // sessions of used ones end too (for accounts that end sessions at expiry).
        for r in reservations::unexpired_of(&mut tx, row.id, now).await? {
            let cause = jit_proto::api::EndCause::HolderDisabled;
            if reservations::release(&mut tx, r.id, now, &actor, cause).await? {
                let e = Event::new(now, actor.clone(), "reservation.release", AuditResult::Ok)
                    .person(&r.person)
                    .account(&r.account)
                    .host(&r.host)
                    .reason("holder disabled");
                audit::record(&mut tx, &e).await?;
            }
        }
    }
    let row = find(&mut tx, name.as_str()).await?;
    let out = to_api(&mut tx, &row, now).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(out))
}

pub async fn disable(
    admin: Admin,
    St(state): St<State>,
    Path(name): Path<String>,
) -> ApiResult<Json<Person>> {
    set_active(state, admin.actor(), name, false).await
}

pub async fn enable(
    admin: Admin,
    St(state): St<State>,
    Path(name): Path<String>,
) -> ApiResult<Json<Person>> {
    set_active(state, admin.actor(), name, true).await
}

/// Lifts a lockout after wrong codes (the person keeps their factor; `reset-factor` is for a
/// lost or compromised one).
pub async fn unlock(
    admin: Admin,
    St(state): St<State>,
    Path(name): Path<String>,
) -> ApiResult<Json<Person>> {
    let actor = admin.actor();
    let name: PersonName = path_name(&name)?;
    let now = now();
    let mut tx = state.store.write().await?;
    let row = find(&mut tx, name.as_str()).await?;
    let was_locked = row.locked_at(now).is_some();
    persons::unlock(&mut tx, row.id).await?;
    let e = Event::new(now, actor.clone(), "person.unlock", AuditResult::Ok)
        .person(&row.name)
        .reason(if was_locked {
            "lockout lifted; wrong-code count cleared"
        } else {
            "was not locked; wrong-code count cleared"
        });
    audit::record(&mut tx, &e).await?;
    let row = find(&mut tx, name.as_str()).await?;
    let out = to_api(&mut tx, &row, now).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(out))
}

pub async fn reset_factor(
    admin: Admin,
    St(state): St<State>,
    Path(name): Path<String>,
) -> ApiResult<Json<EnrollmentIssued>> {
    let actor = admin.actor();
    let name: PersonName = path_name(&name)?;
    let now = now();
    let mut tx = state.store.write().await?;
    let row = find(&mut tx, name.as_str()).await?;
    persons::reset_factor(&mut tx, row.id, now).await?;
    let issued = issue_code(&state, &mut tx, &row, now).await?;
    let e = Event::new(now, actor.clone(), "person.reset_factor", AuditResult::Ok)
        .person(&row.name)
        .reason("factor and tokens revoked; person must enroll again");
    audit::record(&mut tx, &e).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(issued))
}

/// Grants or withdraws the admin role. The last active admin cannot withdraw it from themselves
/// (nobody could administer jit afterwards but through `jit-server admin-token`).
pub async fn set_role(
    admin: Admin,
    St(state): St<State>,
    Path(name): Path<String>,
    Body(req): Body<AdminRole>,
) -> ApiResult<Json<Person>> {
    let name: PersonName = path_name(&name)?;
    let now = now();
    let mut tx = state.store.write().await?;
    let row = find(&mut tx, name.as_str()).await?;
    if !req.admin && row.is_admin() && persons::active_admins(&mut tx).await? <= 1 {
        return Err(ApiError::not_allowed(format!(
            "{} is the last admin: grant the role to someone else first",
            row.name
        )));
    }
    if row.is_admin() != req.admin {
        persons::set_admin(&mut tx, row.id, req.admin).await?;
        let action = if req.admin {
            "person.grant_admin"
        } else {
            "person.revoke_admin"
        };
        let e = Event::new(now, admin.actor(), action, AuditResult::Ok).person(&row.name);
        audit::record(&mut tx, &e).await?;
    }
    let row = find(&mut tx, name.as_str()).await?;
    let out = to_api(&mut tx, &row, now).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(out))
}
