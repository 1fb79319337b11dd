//! Offline grants: issued after a reservation of an `offline = "cached"` account, served to that
//! reservation's host (which is recorded, with the steps it was given), and reconciled when the
//! host reports a login it decided offline (judged by `login::decision`, which trusts nothing
//! the host says that the grants it was given do not bound).
//!
//! A grant holds the argon2id hashes of the next 15 minutes of codes only
//! ([`jit_proto::offline`]). While the host keeps fetching, the server issues it anew (new salt,
//! the next 15 minutes) once fewer than [`REFRESH_LEAD_STEPS`] steps of it are left, so a host
//! that loses the server keeps working for 10 to 15 minutes, and a stolen copy of its state
//! holds no more than that.

use axum::Json;
use axum::extract::State as St;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jit_proto::api::{ChangeKind, OfflineGrant, OfflineGrants, StepHash};
use jit_proto::offline::{self, Kdf};
use jit_proto::{AccountName, PersonName};
use rand::RngCore;
use std::collections::BTreeSet;

use super::auth::HostCaller;
use super::factor::secret_aad;
use super::{State, now};
use crate::error::{ApiError, ApiResult};
use crate::login::decision::grant_steps;
use crate::store::{StoreError, changes, from_json, offline as store, to_json};
use crate::totp::{self, STEP_SECS};

/// A grant is issued anew once fewer than this many of its steps are left (10 minutes).
pub const REFRESH_LEAD_STEPS: i64 = 20;

/// Reservations whose grant is being issued anew in the background (so that the host's next
/// fetches, every few seconds, do not start the same work again).
static REISSUING: std::sync::Mutex<BTreeSet<i64>> = std::sync::Mutex::new(BTreeSet::new());

/// Hashes the codes of `secret` for the grant issued at `now` (CPU and memory work: call from a
/// blocking thread).
pub fn hash_window(
    secret: &[u8],
    salt: &[u8],
    created_at: i64,
    expires_at: i64,
    now: i64,
) -> Vec<StepHash> {
    grant_steps(created_at, expires_at, now)
        .filter_map(|s| {
            let code = totp::code_at(secret, s * STEP_SECS as i64)?;
            offline::hash_code(&code, salt, s, &Kdf::CURRENT)
        })
        .collect()
}

/// Computes and stores the grant of reservation `id` as of `now` (a first grant, or with
/// `again` the next one), in the background: the hashing takes about a second and must not
/// hold the database's write lock or delay the answer.
pub fn issue_later(
    state: State,
    id: i64,
    person_id: i64,
    sealed: Vec<u8>,
    created_at: i64,
    expires_at: i64,
    now: i64,
) {
    issue(
        state,
        id,
        person_id,
        sealed,
        (created_at, expires_at),
        now,
        false,
    );
}

fn issue(
    state: State,
    id: i64,
    person_id: i64,
    sealed: Vec<u8>,
    (created_at, expires_at): (i64, i64),
    at: i64,
    again: bool,
) {
    tokio::spawn(async move {
        let result = async {
            let secret = state
                .key
                .open(&sealed, &secret_aad(person_id))
                .map_err(ApiError::internal)?;
            let mut salt = [0u8; 16];
            rand::rng().fill_bytes(&mut salt);
            let codes = tokio::task::spawn_blocking(move || {
                hash_window(&secret, &salt, created_at, expires_at, at)
            })
            .await
            .map_err(ApiError::internal)?;
            let mut tx = state.store.write().await?;
            let (kdf, codes, now) = (Kdf::CURRENT, to_json(&codes), now());
            if again {
                store::replace(&mut tx, id, &kdf.name(), kdf.passes, &salt, &codes, now).await?;
            } else {
                store::insert(&mut tx, id, &kdf.name(), kdf.passes, &salt, &codes, now).await?;
            }
            changes::append_for_reservation(&mut tx, ChangeKind::Offline, id, now).await?;
            tx.commit().await.map_err(ApiError::internal)?;
            state.changes.poke();
            Ok::<_, ApiError>(())
        }
        .await;
        if again {
            REISSUING
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        }
        if let Err(e) = result {
            tracing::warn!(reservation = id, error = %e, "cannot issue the offline grant");
        }
    });
}

/// Issues `g` anew when fewer than [`REFRESH_LEAD_STEPS`] of its steps are left and the
/// reservation goes on beyond them (or when it is of an older format, which hosts refuse).
async fn refresh_if_due(state: &State, g: &store::GrantRow, last: Option<i64>, now: i64) {
    let steps = crate::login::decision::reservation_steps(g.reserved_at, g.expires_at);
    let due = match last {
        _ if g.kdf != Kdf::CURRENT.name() => true,
        Some(last) => {
            last < *steps.end()
                && last - now.div_euclid(crate::login::decision::STEP_SECS) < REFRESH_LEAD_STEPS
        }
        None => true,
    };
    if !due
        || !REISSUING
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(g.reservation_id)
    {
        return;
    }
    let sealed = async {
        let mut conn = state.store.pool().acquire().await?;
        Ok::<_, StoreError>(
            crate::store::persons::by_id(&mut conn, g.person_id)
                .await?
                .and_then(|p| p.totp_secret),
        )
    }
    .await;
    match sealed {
        Ok(Some(sealed)) => issue(
            state.clone(),
            g.reservation_id,
            g.person_id,
            sealed,
            (g.reserved_at, g.expires_at),
            now,
            true,
        ),
        other => {
            if let Err(e) = other {
                tracing::warn!(reservation = g.reservation_id, error = %e, "cannot renew the offline grant");
            }
            REISSUING
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&g.reservation_id);
        }
    }
}

/// `GET /v1/host/offline` (host).
pub async fn grants(
    HostCaller(host): HostCaller,
    St(state): St<State>,
) -> ApiResult<Json<OfflineGrants>> {
    let now = now();
    let mut tx = state.store.read().await?;
    let corrupt = |e: jit_proto::NameError| ApiError::from(StoreError::Corrupt(e.to_string()));
    let live = store::live_for_host(&mut tx, host.id, now).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    // Remember which grants, and which of their steps, this host was given: only for those will
    // a login it reports having decided offline be reconciled (see `host::events`). A write only
    // when there is news. Grants of an older format are not served (hosts refuse them) but
    // issued anew.
    let mut served = Vec::new();
    let mut news = Vec::new();
    for g in live {
        let codes: Vec<StepHash> = from_json("offline grant codes", &g.codes)?;
        let last = codes.iter().map(|c| c.step).max();
        refresh_if_due(&state, &g, last, now).await;
        if g.kdf != Kdf::CURRENT.name() {
            continue;
        }
        let first = codes.iter().map(|c| c.step).min();
        if let (Some(first), Some(last)) = (first, last)
            && (g.served_at.is_none() || g.served_last_step.is_none_or(|s| s < last))
        {
            news.push((g.reservation_id, first, last));
        }
        served.push((g, codes));
    }
    if !news.is_empty() {
        let mut tx = state.store.write().await?;
        for (id, first, last) in news {
            store::mark_served(&mut tx, id, now, first, last).await?;
        }
        tx.commit().await.map_err(ApiError::internal)?;
    }
    let mut grants = Vec::new();
    for (g, codes) in served {
        grants.push(OfflineGrant {
            reservation_id: g.reservation_id,
            account: AccountName::new(&g.account).map_err(corrupt)?,
            person: PersonName::new(&g.person).map_err(corrupt)?,
            expires_at: g.expires_at,
            kdf: g.kdf,
            iterations: u32::try_from(g.iterations).unwrap_or(Kdf::CURRENT.passes),
            salt: STANDARD.encode(&g.salt),
            codes,
        });
    }
    Ok(Json(OfflineGrants { grants, now }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_holds_the_next_fifteen_minutes_with_a_step_of_skew_each_side() {
        let r = grant_steps(3000, 3300, 3000); // steps 100..=110
        assert_eq!((*r.start(), *r.end()), (99, 111));
        let long = grant_steps(0, 24 * 3600, 0);
        assert_eq!(*long.start(), -1);
        assert_eq!(long.end() - long.start() + 1, offline::MAX_STEPS);
        // Issued again an hour in: the next fifteen minutes from then.
        let later = grant_steps(0, 24 * 3600, 3600);
        assert_eq!((*later.start(), *later.end()), (119, 150));
        // Near the end: up to a step after it.
        let end = grant_steps(0, 3600, 3300);
        assert_eq!((*end.start(), *end.end()), (109, 121));
    }

    #[test]
    fn hashed_codes_verify_with_the_real_code() {
        let secret = b"12345678901234567890";
        let codes = hash_window(secret, b"salt", 59, 89, 59);
        let h = codes.iter().find(|h| h.step == 1).unwrap();
        let salt = b"salt";
        assert!(offline::verify_code("287082", salt, h, &Kdf::CURRENT));
        assert!(!offline::verify_code("287083", salt, h, &Kdf::CURRENT));
    }
}
