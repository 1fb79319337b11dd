//! Enrolled hosts: labels, the one-time join secret, and the long-lived host credential.

use jit_proto::api::Host;
use jit_proto::{HostName, Label};
use sqlx::{AnyConnection, FromRow};

use super::{StoreError, StoreResult, flag, from_json, to_json};

#[derive(Debug, Clone, FromRow)]
pub struct HostRow {
    pub id: i64,
    pub name: String,
    pub labels: String,
    pub credential_hash: Option<String>,
    pub join_secret_hash: Option<String>,
    pub join_expires_at: Option<i64>,
    pub active: i64,
    pub last_seen: Option<i64>,
    pub created_at: i64,
}

// A macro so every query stays a literal string (sqlx refuses dynamic SQL).
macro_rules! host_cols {
    () => {
        "id, name, labels, credential_hash, join_secret_hash, join_expires_at, active, \
                    last_seen, created_at"
    };
}

impl HostRow {
    pub fn is_active(&self) -> bool {
        flag(self.active)
    }

    pub fn host_name(&self) -> StoreResult<HostName> {
        HostName::new(&self.name).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    pub fn labels(&self) -> StoreResult<Vec<Label>> {
        from_json("host labels", &self.labels)
    }

    pub fn to_api(&self) -> StoreResult<Host> {
        Ok(Host {
            name: self.host_name()?,
            labels: self.labels()?,
            joined: self.credential_hash.is_some(),
            active: self.is_active(),
            last_seen: self.last_seen,
            created_at: self.created_at,
        })
    }
}

pub async fn insert(
    conn: &mut AnyConnection,
    name: &str,
    labels: &[Label],
    join_secret_hash: &str,
    join_expires_at: i64,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO hosts (name, labels, join_secret_hash, join_expires_at, active, created_at) \
         VALUES ($1, $2, $3, $4, 1, $5) RETURNING id",
    )
    .bind(name)
    .bind(to_json(&labels))
    .bind(join_secret_hash)
    .bind(join_expires_at)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

pub async fn by_name(conn: &mut AnyConnection, name: &str) -> StoreResult<Option<HostRow>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        host_cols!(),
        " FROM hosts WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(conn)
    .await?)
}

pub async fn by_id(conn: &mut AnyConnection, id: i64) -> StoreResult<Option<HostRow>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        host_cols!(),
        " FROM hosts WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

pub async fn by_credential(conn: &mut AnyConnection, hash: &str) -> StoreResult<Option<HostRow>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        host_cols!(),
        " FROM hosts WHERE credential_hash = $1"
    ))
    .bind(hash)
    .fetch_optional(conn)
    .await?)
}

pub async fn list(conn: &mut AnyConnection) -> StoreResult<Vec<HostRow>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        host_cols!(),
        " FROM hosts ORDER BY name"
    ))
    .fetch_all(conn)
    .await?)
}

/// A new join secret; the old credential stops working at once.
pub async fn reset_join(
    conn: &mut AnyConnection,
    id: i64,
    join_secret_hash: &str,
    join_expires_at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE hosts SET credential_hash = NULL, join_secret_hash = $1, join_expires_at = $2 \
         WHERE id = $3",
    )
    .bind(join_secret_hash)
    .bind(join_expires_at)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Trades the join secret for a credential, once. False if the secret was already used.
pub async fn complete_join(
    conn: &mut AnyConnection,
    id: i64,
    join_secret_hash: &str,
    credential_hash: &str,
    now: i64,
) -> StoreResult<bool> {
    let r = sqlx::query(
        "UPDATE hosts SET credential_hash = $1, join_secret_hash = NULL, join_expires_at = NULL, \
         last_seen = $2 WHERE id = $3 AND join_secret_hash = $4 \
         AND (join_expires_at IS NULL OR join_expires_at > $2)",
    )
    .bind(credential_hash)
    .bind(now)
    .bind(id)
    .bind(join_secret_hash)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn set_active(conn: &mut AnyConnection, id: i64, active: bool) -> StoreResult<()> {
    sqlx::query("UPDATE hosts SET active = $1 WHERE id = $2")
        .bind(i64::from(active))
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records that the host called in, at most once a minute per host to spare the write lock.
pub async fn touch(conn: &mut AnyConnection, id: i64, now: i64) -> StoreResult<()> {
    sqlx::query(
        "UPDATE hosts SET last_seen = $1 WHERE id = $2 AND (last_seen IS NULL OR last_seen < $3)",
    )
    .bind(now)
    .bind(id)
    .bind(now - 60)
    .execute(conn)
    .await?;
    Ok(())
}

/// Joined hosts' credentials, for listing: (host name, credential hash, created, last seen).
pub async fn credentials(
    conn: &mut AnyConnection,
) -> StoreResult<Vec<(String, String, i64, Option<i64>)>> {
    Ok(sqlx::query_as(
        "SELECT name, credential_hash, created_at, last_seen FROM hosts \
         WHERE credential_hash IS NOT NULL ORDER BY name",
    )
    .fetch_all(conn)
    .await?)
}

/// Revokes the credential whose hash starts with `prefix`: the host must join again (`jitctl
/// host rejoin`). Returns the host's name.
pub async fn revoke_credential(
    conn: &mut AnyConnection,
    prefix: &str,
) -> StoreResult<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as(
        "UPDATE hosts SET credential_hash = NULL \
         WHERE credential_hash IS NOT NULL AND substr(credential_hash, 1, 16) = $1 RETURNING name",
    )
    .bind(prefix)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(n,)| n))
}
