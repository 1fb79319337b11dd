//! Persons' ssh public keys, and which of them count for the shared accounts of a host.

use jit_proto::api::SshKey;
use jit_proto::{PersonName, ssh_key};
use sqlx::{AnyConnection, FromRow};

use super::{StoreError, StoreResult};

#[derive(Debug, Clone, FromRow)]
pub struct KeyRow {
    pub id: i64,
    pub person_id: i64,
    pub person: String,
    pub algorithm: String,
    pub fingerprint: String,
    pub public_key: String,
    pub comment: Option<String>,
    pub created_at: i64,
}

// A macro so every query stays a literal string (sqlx refuses dynamic SQL).
macro_rules! select_keys {
    () => {
        "SELECT k.id, k.person_id, p.name AS person, k.algorithm, k.fingerprint, k.public_key, \
         k.comment, k.created_at FROM ssh_keys k JOIN persons p ON p.id = k.person_id"
    };
}

impl KeyRow {
    pub fn to_api(&self) -> StoreResult<SshKey> {
        Ok(SshKey {
            id: self.id,
            person: PersonName::new(&self.person)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            algorithm: self.algorithm.clone(),
            fingerprint: self.fingerprint.clone(),
            comment: self.comment.clone(),
            public_key: match &self.comment {
                Some(c) => format!("{} {c}", self.public_key),
                None => self.public_key.clone(),
            },
            created_at: self.created_at,
        })
    }
}

/// Stores a validated key. A unique violation means the key is registered already (to this
/// person or another).
pub async fn insert(
    conn: &mut AnyConnection,
    person_id: i64,
    key: &ssh_key::PublicKey,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO ssh_keys (person_id, algorithm, fingerprint, public_key, comment, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(person_id)
    .bind(key.key_type.name())
    .bind(key.fingerprint())
    .bind(key.key_text())
    .bind(key.comment.as_deref())
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

pub async fn by_id(conn: &mut AnyConnection, id: i64) -> StoreResult<Option<KeyRow>> {
    Ok(sqlx::query_as(concat!(select_keys!(), " WHERE k.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

pub async fn by_fingerprint(conn: &mut AnyConnection, fp: &str) -> StoreResult<Option<KeyRow>> {
    Ok(
        sqlx::query_as(concat!(select_keys!(), " WHERE k.fingerprint = $1"))
            .bind(fp)
            .fetch_optional(conn)
            .await?,
    )
}

/// One person's keys, or everybody's; by person, then oldest first.
pub async fn list(conn: &mut AnyConnection, person_id: Option<i64>) -> StoreResult<Vec<KeyRow>> {
    Ok(sqlx::query_as(concat!(
        select_keys!(),
        " WHERE (CAST($1 AS BIGINT) IS NULL OR k.person_id = $1) ORDER BY p.name, k.id"
    ))
    .bind(person_id)
    .fetch_all(conn)
    .await?)
}

pub async fn count_for(conn: &mut AnyConnection, person_id: i64) -> StoreResult<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM ssh_keys WHERE person_id = $1")
        .bind(person_id)
        .fetch_one(conn)
        .await?;
    Ok(n)
}

pub async fn delete(conn: &mut AnyConnection, id: i64) -> StoreResult<bool> {
    let r = sqlx::query("DELETE FROM ssh_keys WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// A key that counts for an account: whose it is, and the key.
#[derive(Debug, Clone, FromRow)]
pub struct AccountKey {
    pub account_id: i64,
    pub person: String,
    pub fingerprint: String,
    pub public_key: String,
}

/// For every account, the keys of the active, enrolled persons in one of its groups (each key
/// once per account, even when its person is in several of the account's groups).
pub async fn of_members(conn: &mut AnyConnection) -> StoreResult<Vec<AccountKey>> {
    Ok(sqlx::query_as(
        "SELECT DISTINCT ag.account_id, p.name AS person, k.fingerprint, k.public_key, k.id \
         FROM account_groups ag JOIN group_members m ON m.group_id = ag.group_id \
         JOIN persons p ON p.id = m.person_id JOIN ssh_keys k ON k.person_id = p.id \
         WHERE p.active = 1 AND p.totp_secret IS NOT NULL \
         ORDER BY ag.account_id, p.name, k.id",
    )
    .fetch_all(conn)
    .await?)
}

/// Who holds each account with a live reservation on the host, and whether that person is
/// active and enrolled (only then do their keys count).
#[derive(Debug, Clone, FromRow)]
pub struct Holder {
    pub account_id: i64,
    pub person_id: i64,
    pub person: String,
    pub usable: i64,
}

pub async fn holders_on_host(
    conn: &mut AnyConnection,
    host_id: i64,
    now: i64,
) -> StoreResult<Vec<Holder>> {
    Ok(sqlx::query_as(
        "SELECT r.account_id, r.person_id, p.name AS person, \
         CASE WHEN p.active = 1 AND p.totp_secret IS NOT NULL THEN 1 ELSE 0 END AS usable \
         FROM reservations r JOIN persons p ON p.id = r.person_id \
         WHERE r.host_id = $1 AND r.state = 'active' AND r.expires_at > $2",
    )
    .bind(host_id)
    .bind(now)
    .fetch_all(conn)
    .await?)
}
