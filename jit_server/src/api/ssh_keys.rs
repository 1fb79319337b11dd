//! Persons' ssh public keys: a person registers, lists and removes their own; the admin does so
//! for anyone. Hosts read the keys that count for each of their shared accounts, which jitd
//! serves to sshd (`AuthorizedKeysCommand`).
//!
//! A key belongs to one person only (its fingerprint is unique), so a login by key is always
//! attributed to one person. Keys of disabled or unenrolled persons never count on a host.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State as St};
use jit_proto::api::{
    AuditResult, HostAccountKeys, HostKeys, HostSshKey, NewSshKey, SshKey, SshKeyQuery, SshKeys,
};
use jit_proto::ssh_key::{self, PublicKey};
use jit_proto::{AccountName, PersonName};
use sqlx::AnyConnection;

use super::auth::{Caller, HostCaller};
use super::{Body, Params, State, now, persons as person_api};
use crate::error::{ApiError, ApiResult};
use crate::rules;
use crate::store::audit::{self, Event};
use crate::store::persons::PersonRow;
use crate::store::ssh_keys::{self, KeyRow};
use crate::store::{StoreError, accounts, is_unique_violation};

/// Most keys one person may register (a laptop, a desktop, a security key or two, …).
pub const MAX_KEYS_PER_PERSON: i64 = 32;

/// The person a call is about: the caller themself, or for the admin the one named.
async fn subject(
    conn: &mut AnyConnection,
    caller: &Caller,
    named: Option<&PersonName>,
) -> ApiResult<Option<PersonRow>> {
    match caller {
        Caller::Person(me) => match named {
            Some(p) if p.as_str() != me.name => Err(ApiError::forbidden(
                "persons manage their own ssh keys only; an admin manages anyone's",
            )),
            _ => Ok(Some(me.clone())),
        },
        Caller::Admin(_) => match named {
            Some(p) => Ok(Some(person_api::find(conn, p.as_str()).await?)),
            None => Ok(None),
        },
        Caller::Host(_) => Err(ApiError::forbidden(
            "this needs a person or the admin token",
        )),
    }
}

fn key_event(now: i64, caller: &Caller, action: &'static str, row: &KeyRow) -> Event {
    Event::new(now, caller.actor(), action, AuditResult::Ok)
        .person(&row.person)
        .reason(format!("{} key {}", row.algorithm, row.fingerprint))
        .detail(serde_json::json!({
            "key": row.id,
            "fingerprint": row.fingerprint,
            "algorithm": row.algorithm,
        }))
}

/// `POST /v1/keys`.
pub async fn add(
    caller: Caller,
    St(state): St<State>,
    Body(req): Body<NewSshKey>,
) -> ApiResult<Json<SshKey>> {
    // Validated before the write lock is taken: a bad key costs the database nothing.
    let key =
        PublicKey::parse_line(&req.public_key).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let fingerprint = key.fingerprint();
    let now = now();
    let mut tx = state.store.write().await?;
    let Some(person) = subject(&mut tx, &caller, req.person.as_ref()).await? else {
        return Err(ApiError::bad_request(
            "name the person whose key this is: {\"person\": NAME} (jitctl key add --person NAME)",
        ));
    };
    if let Some(existing) = ssh_keys::by_fingerprint(&mut tx, &fingerprint).await? {
        let msg = if existing.person_id == person.id {
            format!(
                "this key ({fingerprint}) is already registered for {} (key id {})",
                person.name, existing.id
            )
        } else {
            // Someone else's public key: refused, and audited, since it may be an attempt to
            // have that person's logins attributed to another.
            let e = Event::new(now, caller.actor(), "key.add", AuditResult::Denied)
                .person(&person.name)
                .reason(format!(
                    "{} key {fingerprint} is registered to another person",
                    key.key_type.name()
                ))
                .detail(
                    serde_json::json!({ "fingerprint": fingerprint, "owner": existing.person }),
                );
            audit::record(&mut tx, &e).await?;
            tx.commit().await.map_err(ApiError::internal)?;
            format!(
                "this key ({fingerprint}) is registered to another person; a key can belong to \
                 one person only (ask an admin if it is yours)"
            )
        };
        return Err(ApiError::exists(msg));
    }
    if ssh_keys::count_for(&mut tx, person.id).await? >= MAX_KEYS_PER_PERSON {
        return Err(ApiError::not_allowed(format!(
            "{} has {MAX_KEYS_PER_PERSON} ssh keys already; remove one first (jitctl key list, \
             jitctl key remove)",
            person.name
        )));
    }
    let id = match ssh_keys::insert(&mut tx, person.id, &key, now).await {
        Ok(id) => id,
        // Another request registered it between our check and our insert.
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::exists(format!(
                "this key ({fingerprint}) was just registered by another request"
            )));
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    let row = ssh_keys::by_id(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::internal("ssh key vanished after insert"))?;
    audit::record(&mut tx, &key_event(now, &caller, "key.add", &row)).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(row.to_api()?))
}

/// `GET /v1/keys[?person=NAME]`.
pub async fn list(
    caller: Caller,
    St(state): St<State>,
    Params(q): Params<SshKeyQuery>,
) -> ApiResult<Json<SshKeys>> {
    let mut tx = state.store.read().await?;
    let person = subject(&mut tx, &caller, q.person.as_ref()).await?;
    let keys = ssh_keys::list(&mut tx, person.map(|p| p.id))
        .await?
        .iter()
        .map(KeyRow::to_api)
        .collect::<Result<_, _>>()?;
    Ok(Json(SshKeys { keys }))
}

/// `DELETE /v1/keys/{id}`: `id` is the key's number or its `SHA256:…` fingerprint.
pub async fn remove(
    caller: Caller,
    St(state): St<State>,
    Path(which): Path<String>,
) -> ApiResult<Json<SshKey>> {
    let now = now();
    let mut tx = state.store.write().await?;
    // Persons may only see their own keys: someone else's is "not found" to them.
    let me = subject(&mut tx, &caller, None).await?;
    let row = if let Ok(id) = which.parse::<i64>() {
        ssh_keys::by_id(&mut tx, id).await?
    } else if ssh_key::is_fingerprint(&which) {
        ssh_keys::by_fingerprint(&mut tx, &which).await?
    } else {
        return Err(ApiError::bad_request(format!(
            "{:?} is neither a key id nor a fingerprint (SHA256:…); see `jitctl key list`",
            which.chars().take(80).collect::<String>()
        )));
    };
    let row = row.filter(|r| me.as_ref().is_none_or(|p| p.id == r.person_id));
    let Some(row) = row else {
        let whose = if me.is_some() {
            "you have no"
        } else {
            "there is no"
        };
        return Err(ApiError::not_found(format!(
            "{whose} ssh key {which}; see `jitctl key list`"
        )));
    };
    ssh_keys::delete(&mut tx, row.id).await?;
    audit::record(&mut tx, &key_event(now, &caller, "key.remove", &row)).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(row.to_api()?))
}

/// `GET /v1/host/keys` (host): for every shared account of the calling host, the keys that
/// count there now. While somebody holds a live reservation on this host, only the holder's
/// keys; otherwise the keys of every active, enrolled person in one of the account's groups.
/// A disabled account has none.
pub async fn for_host(
    HostCaller(host): HostCaller,
    St(state): St<State>,
) -> ApiResult<Json<HostKeys>> {
    let now = now();
    let mut tx = state.store.read().await?;
    let corrupt = |e: jit_proto::NameError| ApiError::from(StoreError::Corrupt(e.to_string()));
    let name = host.host_name()?;
    let labels = host.labels()?;
    let holders: HashMap<i64, ssh_keys::Holder> = ssh_keys::holders_on_host(&mut tx, host.id, now)
        .await?
        .into_iter()
        .map(|h| (h.account_id, h))
        .collect();
    let host_key = |person: &str, fingerprint: String, public_key: String| {
        Ok::<_, ApiError>(HostSshKey {
            person: PersonName::new(person).map_err(corrupt)?,
            fingerprint,
            public_key,
        })
    };
    let mut members: HashMap<i64, Vec<HostSshKey>> = HashMap::new();
    for k in ssh_keys::of_members(&mut tx).await? {
        let key = host_key(&k.person, k.fingerprint, k.public_key)?;
        members.entry(k.account_id).or_default().push(key);
    }
    let mut out = Vec::new();
    for a in accounts::list(&mut tx).await? {
        if !rules::host_allowed(&name, &labels, &a.patterns()?, &a.labels()?) {
            continue;
        }
        let holder = holders.get(&a.id);
        let keys = match holder {
            _ if !a.is_active() => Vec::new(),
            Some(h) if h.usable != 0 => ssh_keys::list(&mut tx, Some(h.person_id))
                .await?
                .into_iter()
                .map(|k| host_key(&k.person, k.fingerprint, k.public_key))
                .collect::<ApiResult<_>>()?,
            Some(_) => Vec::new(),
            None => members.remove(&a.id).unwrap_or_default(),
        };
        out.push(HostAccountKeys {
            account: AccountName::new(&a.name).map_err(corrupt)?,
            holder: holder
                .map(|h| PersonName::new(&h.person))
                .transpose()
                .map_err(corrupt)?,
            keys,
        });
    }
    Ok(Json(HostKeys { accounts: out, now }))
}

/// The person who registered the key with this fingerprint, for the audit log.
pub async fn owner_of(
    conn: &mut AnyConnection,
    fingerprint: Option<&str>,
) -> ApiResult<Option<String>> {
    match fingerprint {
        Some(fp) => Ok(ssh_keys::by_fingerprint(conn, fp).await?.map(|k| k.person)),
        None => Ok(None),
    }
}
