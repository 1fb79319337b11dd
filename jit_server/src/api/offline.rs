//! Offline grants: issued after a reservation of an `offline = "cached"` account, served to that
//! reservation's host (which is recorded), and reconciled when the host reports a login it
//! decided offline (judged by `login::decision`, which trusts nothing the host says that the
//! grant does not bound).

use axum::Json;
use axum::extract::State as St;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jit_proto::api::{ChangeKind, OfflineGrant, OfflineGrants, StepHash};
use jit_proto::offline::{self, ITERATIONS, KDF};
use jit_proto::{AccountName, PersonName};
use rand::RngCore;

use super::auth::HostCaller;
use super::factor::secret_aad;
use super::{State, now};
use crate::error::{ApiError, ApiResult};
use crate::login::decision::grant_steps;
use crate::store::{StoreError, changes, from_json, offline as store, to_json};
use crate::totp::{self, STEP_SECS};

/// Hashes the codes of `secret` for the window (CPU work: call from a blocking thread).
pub fn hash_window(secret: &[u8], salt: &[u8], created_at: i64, expires_at: i64) -> Vec<StepHash> {
    grant_steps(created_at, expires_at)
        .filter_map(|s| {
            let code = totp::code_at(secret, s * STEP_SECS as i64)?;
            Some(offline::hash_code(&code, salt, s, ITERATIONS))
        })
        .collect()
}

/// Computes and stores the grant of reservation `id`, in the background: the hashing takes a
/// fraction of a second and must not hold the database's write lock or delay the answer.
pub fn issue_later(
    state: State,
    id: i64,
    person_id: i64,
    sealed: Vec<u8>,
    created_at: i64,
    expires_at: i64,
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
                hash_window(&secret, &salt, created_at, expires_at)
            })
            .await
            .map_err(ApiError::internal)?;
            let mut tx = state.store.write().await?;
            let now = now();
            store::insert(&mut tx, id, KDF, ITERATIONS, &salt, &to_json(&codes), now).await?;
            changes::append_for_reservation(&mut tx, ChangeKind::Offline, id, now).await?;
            tx.commit().await.map_err(ApiError::internal)?;
            state.changes.poke();
            Ok::<_, ApiError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(reservation = id, error = %e, "cannot issue the offline grant");
        }
    });
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
    // Remember which grants this host was given: only for those will a login it reports having
    // decided offline be reconciled (see `host::events`). A write only when there is news.
    let new: Vec<i64> = live
        .iter()
        .filter(|g| g.served_at.is_none())
        .map(|g| g.reservation_id)
        .collect();
    if !new.is_empty() {
        let mut tx = state.store.write().await?;
        for id in new {
            store::mark_served(&mut tx, id, now).await?;
        }
        tx.commit().await.map_err(ApiError::internal)?;
    }
    let mut grants = Vec::new();
    for g in live {
        grants.push(OfflineGrant {
            reservation_id: g.reservation_id,
            account: AccountName::new(&g.account).map_err(corrupt)?,
            person: PersonName::new(&g.person).map_err(corrupt)?,
            expires_at: g.expires_at,
            kdf: g.kdf,
            iterations: u32::try_from(g.iterations).unwrap_or(ITERATIONS),
            salt: STANDARD.encode(&g.salt),
            codes: from_json("offline grant codes", &g.codes)?,
        });
    }
    Ok(Json(OfflineGrants { grants, now }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_has_a_step_of_skew_each_side_and_a_cap() {
        let r = grant_steps(3000, 3300); // steps 100..=110
        assert_eq!((*r.start(), *r.end()), (99, 111));
        let long = grant_steps(0, 24 * 3600);
        assert_eq!(long.end() - long.start() + 1, offline::MAX_STEPS);
    }

    #[test]
    fn hashed_codes_verify_with_the_real_code() {
        let secret = b"12345678901234567890";
        let codes = hash_window(secret, b"salt", 59, 89);
        let h = codes.iter().find(|h| h.step == 1).unwrap();
        assert!(offline::verify_code("287082", b"salt", h, ITERATIONS));
        assert!(!offline::verify_code("287083", b"salt", h, ITERATIONS));
    }
}
