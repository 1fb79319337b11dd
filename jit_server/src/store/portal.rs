//! The web portal's sessions and the persons' passkeys.

use sqlx::{AnyConnection, FromRow};

use super::StoreResult;

#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub id_hash: String,
    pub person_id: Option<i64>,
    pub factor: Option<String>,
    pub enroll_code_hash: Option<String>,
    pub csrf: String,
    pub challenge: Option<String>,
    pub challenge_kind: Option<String>,
    pub challenge_expires_at: Option<i64>,
    pub flash: Option<String>,
    pub created_at: i64,
    pub last_seen: i64,
}

pub async fn insert_session(conn: &mut AnyConnection, s: &SessionRow) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO portal_sessions (id_hash, person_id, factor, enroll_code_hash, csrf, \
         created_at, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&s.id_hash)
    .bind(s.person_id)
    .bind(&s.factor)
    .bind(&s.enroll_code_hash)
    .bind(&s.csrf)
    .bind(s.created_at)
    .bind(s.last_seen)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn session(conn: &mut AnyConnection, id_hash: &str) -> StoreResult<Option<SessionRow>> {
    Ok(sqlx::query_as(
        "SELECT id_hash, person_id, factor, enroll_code_hash, csrf, challenge, challenge_kind, \
         challenge_expires_at, flash, created_at, last_seen FROM portal_sessions \
         WHERE id_hash = $1",
    )
    .bind(id_hash)
    .fetch_optional(conn)
    .await?)
}

pub async fn touch_session(conn: &mut AnyConnection, id_hash: &str, now: i64) -> StoreResult<()> {
    sqlx::query("UPDATE portal_sessions SET last_seen = $1 WHERE id_hash = $2")
        .bind(now)
        .bind(id_hash)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete_session(conn: &mut AnyConnection, id_hash: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM portal_sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes sessions nobody used since `idle_before`, or begun before `begun_before`.
pub async fn delete_stale_sessions(
    conn: &mut AnyConnection,
    idle_before: i64,
    begun_before: i64,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM portal_sessions WHERE last_seen < $1 OR created_at < $2")
        .bind(idle_before)
        .bind(begun_before)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_challenge(
    conn: &mut AnyConnection,
    id_hash: &str,
    challenge: Option<&str>,
    kind: Option<&str>,
    expires_at: Option<i64>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE portal_sessions SET challenge = $1, challenge_kind = $2, \
         challenge_expires_at = $3 WHERE id_hash = $4",
    )
    .bind(challenge)
    .bind(kind)
    .bind(expires_at)
    .bind(id_hash)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_flash(
    conn: &mut AnyConnection,
    id_hash: &str,
    flash: Option<&str>,
) -> StoreResult<()> {
    sqlx::query("UPDATE portal_sessions SET flash = $1 WHERE id_hash = $2")
        .bind(flash)
        .bind(id_hash)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_enroll_code(
    conn: &mut AnyConnection,
    id_hash: &str,
    code_hash: Option<&str>,
) -> StoreResult<()> {
    sqlx::query("UPDATE portal_sessions SET enroll_code_hash = $1 WHERE id_hash = $2")
        .bind(code_hash)
        .bind(id_hash)
        .execute(conn)
        .await?;
    Ok(())
}

// --- passkeys

#[derive(Debug, Clone, FromRow)]
pub struct PasskeyRow {
    pub id: i64,
    pub person_id: i64,
    pub credential_id: String,
    pub public_key: Vec<u8>,
    pub algorithm: i64,
    pub sign_count: i64,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

macro_rules! passkey_cols {
    () => {
        "id, person_id, credential_id, public_key, algorithm, sign_count, name, created_at, \
         last_used_at"
    };
}

pub async fn insert_passkey(conn: &mut AnyConnection, p: &PasskeyRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO passkeys (person_id, credential_id, public_key, algorithm, sign_count, \
         name, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(p.person_id)
    .bind(&p.credential_id)
    .bind(&p.public_key)
    .bind(p.algorithm)
    .bind(p.sign_count)
    .bind(&p.name)
    .bind(p.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn passkeys_of(conn: &mut AnyConnection, person_id: i64) -> StoreResult<Vec<PasskeyRow>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        passkey_cols!(),
        " FROM passkeys WHERE person_id = $1 ORDER BY created_at, id"
    ))
    .bind(person_id)
    .fetch_all(conn)
    .await?)
}

pub async fn passkey_by_credential(
    conn: &mut AnyConnection,
    credential_id: &str,
) -> StoreResult<Option<PasskeyRow>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        passkey_cols!(),
        " FROM passkeys WHERE credential_id = $1"
    ))
    .bind(credential_id)
    .fetch_optional(conn)
    .await?)
}

/// Records a sign-in with a passkey; false when the counter did not move forward (a cloned
/// authenticator), unless the authenticator keeps no counter (0 both times).
pub async fn use_passkey(
    conn: &mut AnyConnection,
    id: i64,
    sign_count: i64,
    now: i64,
) -> StoreResult<bool> {
    let r = sqlx::query(
        "UPDATE passkeys SET sign_count = $1, last_used_at = $2 \
         WHERE id = $3 AND (sign_count < $1 OR (sign_count = 0 AND $1 = 0))",
    )
    .bind(sign_count)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn delete_passkey(
    conn: &mut AnyConnection,
    person_id: i64,
    id: i64,
) -> StoreResult<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("DELETE FROM passkeys WHERE id = $1 AND person_id = $2 RETURNING name")
            .bind(id)
            .bind(person_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(n,)| n))
}
