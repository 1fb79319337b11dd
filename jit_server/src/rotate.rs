//! `jit-server rotate-key`: a new at-rest key, and every secret sealed under the old one sealed
//! again under it (persons' TOTP secrets, pending ones, ntfy tokens, the audit chain's key), in
//! one transaction.
//!
//! The order makes it safe to interrupt at any point and run again:
//!
//! 1. the new key is written to `at-rest.key.new` (0600). A server that starts now also opens
//!    with it ([`AtRestKey::load_ring`]), and a new run of rotate-key takes it up again;
//! 2. the secrets are sealed again under it, in one transaction: all or nothing;
//! 3. the old key is kept as `at-rest.key.previous` (so what a server that still held the old
//!    key sealed meanwhile still opens), and `at-rest.key.new` is renamed to `at-rest.key`.
//!
//! `at-rest.key` exists at every moment. The Web Push (VAPID) key is derived from the at-rest
//! key, so it changes too: browsers' push subscriptions, made for the old one, are removed and
//! persons turn notifications on again in the portal.

use std::path::Path;

use jit_proto::api::AuditResult;

use crate::api::factor::secret_aad;
use crate::keys::{self, AtRestKey, KeyError};
use crate::push::ntfy_token_aad;
use crate::store::audit::{self, Event};
use crate::store::{Store, StoreError, persons, push};

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "{what} of person {person_id} does not decrypt with this data directory's at-rest keys; \
         nothing was changed (is this the data directory of the server that stored it?)"
    )]
    Undecryptable { what: &'static str, person_id: i64 },
    #[error("cannot put the new at-rest key in place ({path}): {source}; run rotate-key again")]
    Rename {
        path: String,
        source: std::io::Error,
    },
}

/// What a rotation did.
#[derive(Debug)]
pub struct Rotated {
    /// Sealed values written again under the new key.
    pub resealed: usize,
    /// Browsers' Web Push subscriptions removed.
    pub push_subscriptions_removed: u64,
}

pub async fn rotate_key(
    data_dir: &Path,
    database_url: &str,
    now: i64,
) -> Result<Rotated, RotateError> {
    let current = data_dir.join(keys::KEY_FILE);
    let next = data_dir.join(keys::NEXT_KEY_FILE);
    // Every key that may have sealed something: current, an interrupted rotation's, previous.
    let ring = AtRestKey::load_ring(data_dir)?;
    let new = if next.exists() {
        AtRestKey::load(&next)?
    } else {
        let k = AtRestKey::generate();
        k.save(&next)?;
        k
    };

    let store = Store::open(database_url).await?;
    let mut tx = store.write().await?;
    let mut resealed = 0;
    let reseal = |sealed: &[u8], aad: &str, what: &'static str, person_id: i64| {
        let plain = ring
            .open(sealed, aad)
            .map_err(|_| RotateError::Undecryptable { what, person_id })?;
        Ok::<_, RotateError>(new.seal(&plain, aad))
    };
    for (id, secret, pending) in persons::sealed_secrets(&mut tx).await? {
        let aad = secret_aad(id);
        let secret = match secret {
            Some(s) => Some(reseal(&s, &aad, "the TOTP secret", id)?),
            None => None,
        };
        let pending = match pending {
            Some(s) => Some(reseal(&s, &aad, "the TOTP secret being enrolled", id)?),
            None => None,
        };
        resealed += usize::from(secret.is_some()) + usize::from(pending.is_some());
        persons::set_sealed_secrets(&mut tx, &(id, secret, pending)).await?;
    }
    for (id, token) in push::sealed_ntfy_tokens(&mut tx).await? {
        let sealed = reseal(&token, &ntfy_token_aad(id), "the ntfy token", id)?;
        push::set_ntfy_token(&mut tx, id, &sealed).await?;
        resealed += 1;
    }
    // The audit chain's key: sealed anew like the others, and this process's for the row below.
    let chain = audit::open_chain_key(&mut tx, &ring).await?;
    audit::set_sealed_chain_key(&mut tx, &new.seal(&chain, audit::CHAIN_KEY_AAD)).await?;
    audit::use_chain_key(&chain);
    resealed += 1;
    let push_subscriptions_removed = push::delete_all_subscriptions(&mut tx).await?;
    let e =
        Event::new(now, "server", "server.rotate_key", AuditResult::Ok).detail(serde_json::json!({
            "resealed": resealed,
            "push_subscriptions_removed": push_subscriptions_removed,
        }));
    audit::record(&mut tx, &e).await?;
    tx.commit().await?;
    store.close().await;

    // The old key becomes the previous one (a copy, renamed over any older previous key), then
    // the new one takes its place: `at-rest.key` never goes missing.
    let old = AtRestKey::load(&current)?;
    let tmp = data_dir.join(format!("{}.tmp", keys::PREVIOUS_KEY_FILE));
    let _ = std::fs::remove_file(&tmp);
    old.save(&tmp)?;
    let rename = |from: &Path, to: &Path| {
        std::fs::rename(from, to).map_err(|source| RotateError::Rename {
            path: to.display().to_string(),
            source,
        })
    };
    rename(&tmp, &data_dir.join(keys::PREVIOUS_KEY_FILE))?;
    rename(&next, &current)?;
    Ok(Rotated {
        resealed,
        push_subscriptions_removed,
    })
}
