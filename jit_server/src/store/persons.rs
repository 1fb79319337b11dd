//! Persons, their credentials (tokens, enrollment codes), their TOTP factor and lockout state.
//! Also the admin tokens.

use sqlx::{AnyConnection, FromRow};

use super::{StoreResult, flag};

#[derive(Debug, Clone, FromRow)]
pub struct PersonRow {
    pub id: i64,
    pub name: String,
    pub display_name: Option<String>,
    pub active: i64,
    pub totp_secret: Option<Vec<u8>>,
    pub totp_pending: Option<Vec<u8>>,
    pub totp_last_step: Option<i64>,
    pub locked_until: Option<i64>,
    pub created_at: i64,
    /// 1 for a person with the admin role.
    pub admin: i64,
}

impl PersonRow {
    pub fn is_active(&self) -> bool {
        flag(self.active)
    }

    pub fn is_admin(&self) -> bool {
        flag(self.admin)
    }

    pub fn is_enrolled(&self) -> bool {
        self.totp_secret.is_some()
    }

    /// The lockout end, if the person is locked out at `now`.
    pub fn locked_at(&self, now: i64) -> Option<i64> {
        self.locked_until.filter(|u| *u > now)
    }
}

// Column lists are macros so every query stays a literal string (sqlx refuses dynamic SQL).
macro_rules! person_cols {
    ($p:literal) => {
        concat!(
            $p,
            "id, ",
            $p,
            "name, ",
            $p,
            "display_name, ",
            $p,
            "active, ",
            $p,
            "totp_secret, ",
            $p,
            "totp_pending, ",
            $p,
            "totp_last_step, ",
            $p,
            "locked_until, ",
            $p,
            "created_at, ",
            $p,
            "admin"
        )
    };
}

pub async fn insert(
    conn: &mut AnyConnection,
    name: &str,
    display_name: Option<&str>,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO persons (name, display_name, active, created_at) VALUES ($1, $2, 1, $3) \
         RETURNING id",
    )
    .bind(name)
    .bind(display_name)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

pub async fn by_name(conn: &mut AnyConnection, name: &str) -> StoreResult<Option<PersonRow>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        person_cols!(""),
        " FROM persons WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(conn)
    .await?)
}

pub async fn by_id(conn: &mut AnyConnection, id: i64) -> StoreResult<Option<PersonRow>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        person_cols!(""),
        " FROM persons WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

pub async fn list(conn: &mut AnyConnection) -> StoreResult<Vec<PersonRow>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        person_cols!(""),
        " FROM persons ORDER BY name"
    ))
    .fetch_all(conn)
    .await?)
}

/// Names of the groups the person belongs to, sorted.
pub async fn groups_of(conn: &mut AnyConnection, person_id: i64) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT g.name FROM groups g JOIN group_members m ON m.group_id = g.id \
         WHERE m.person_id = $1 ORDER BY g.name",
    )
    .bind(person_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(n,)| n).collect())
}

/// Grants or withdraws the admin role.
pub async fn set_admin(conn: &mut AnyConnection, id: i64, admin: bool) -> StoreResult<()> {
    sqlx::query("UPDATE persons SET admin = $1 WHERE id = $2")
        .bind(i64::from(admin))
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// How many active persons hold the admin role.
pub async fn active_admins(conn: &mut AnyConnection) -> StoreResult<i64> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM persons WHERE admin = 1 AND active = 1")
            .fetch_one(conn)
            .await?;
    Ok(n)
}

pub async fn set_active(conn: &mut AnyConnection, id: i64, active: bool) -> StoreResult<()> {
    sqlx::query("UPDATE persons SET active = $1 WHERE id = $2")
        .bind(i64::from(active))
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

// --- enrollment codes

#[derive(Debug, Clone, FromRow)]
pub struct EnrollmentRow {
    pub person_id: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// Issues a new code and retires every earlier unused one, so only the newest code works.
pub async fn issue_enrollment_code(
    conn: &mut AnyConnection,
    person_id: i64,
    code_hash: &str,
    now: i64,
    expires_at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE enrollment_codes SET used_at = $1 WHERE person_id = $2 AND used_at IS NULL",
    )
    .bind(now)
    .bind(person_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO enrollment_codes (code_hash, person_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(code_hash)
    .bind(person_id)
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn enrollment_by_code(
    conn: &mut AnyConnection,
    code_hash: &str,
) -> StoreResult<Option<EnrollmentRow>> {
    Ok(sqlx::query_as(
        "SELECT person_id, expires_at, used_at FROM enrollment_codes WHERE code_hash = $1",
    )
    .bind(code_hash)
    .fetch_optional(conn)
    .await?)
}

/// Marks the code used; false if someone else used it first.
pub async fn use_enrollment_code(
    conn: &mut AnyConnection,
    code_hash: &str,
    now: i64,
) -> StoreResult<bool> {
    let r = sqlx::query(
        "UPDATE enrollment_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL",
    )
    .bind(now)
    .bind(code_hash)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

// --- the TOTP factor

pub async fn set_pending_secret(
    conn: &mut AnyConnection,
    id: i64,
    sealed: &[u8],
) -> StoreResult<()> {
    sqlx::query("UPDATE persons SET totp_pending = $1 WHERE id = $2")
        .bind(sealed)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Forgets a secret offered but not confirmed (the person's factor stays as it is).
pub async fn clear_pending_secret(conn: &mut AnyConnection, id: i64) -> StoreResult<()> {
    sqlx::query("UPDATE persons SET totp_pending = NULL WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The pending secret becomes the person's factor. The confirmation code's time step was
/// already recorded by [`accept_step`], so it cannot be replayed for a login.
pub async fn activate_factor(conn: &mut AnyConnection, id: i64) -> StoreResult<()> {
    sqlx::query(
        "UPDATE persons SET totp_secret = totp_pending, totp_pending = NULL, \
         locked_until = NULL WHERE id = $1 AND totp_pending IS NOT NULL",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM totp_failures WHERE person_id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Forgets the factor and revokes every token: the person must enroll again.
pub async fn reset_factor(conn: &mut AnyConnection, id: i64, now: i64) -> StoreResult<()> {
    sqlx::query(
        "UPDATE persons SET totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL, \
         locked_until = NULL WHERE id = $1",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM totp_failures WHERE person_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    // Every other factor and every signed-in portal session go too.
    sqlx::query("DELETE FROM push_subscriptions WHERE person_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM push_factors WHERE person_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM passkeys WHERE person_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM portal_sessions WHERE person_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    revoke_tokens(conn, id, now).await
}

/// Accepts time step `step` for the person if it is newer than every step accepted before.
/// Returns false for a replay (this step or an older one was already used).
pub async fn accept_step(conn: &mut AnyConnection, id: i64, step: i64) -> StoreResult<bool> {
    let r = sqlx::query(
        "UPDATE persons SET totp_last_step = $1 \
         WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
    )
    .bind(step)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Wrong codes of the person since `window_start`.
pub async fn recent_failures(
    conn: &mut AnyConnection,
    id: i64,
    window_start: i64,
) -> StoreResult<i64> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM totp_failures WHERE person_id = $1 AND at >= $2")
            .bind(id)
            .bind(window_start)
            .fetch_one(conn)
            .await?;
    Ok(n)
}

/// Records a wrong code, and forgets the ones from before `window_start`.
pub async fn record_failure(
    conn: &mut AnyConnection,
    id: i64,
    now: i64,
    window_start: i64,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO totp_failures (person_id, at) VALUES ($1, $2)")
        .bind(id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    // Old failures are of no use to anyone; keep the table small.
    sqlx::query("DELETE FROM totp_failures WHERE person_id = $1 AND at < $2")
        .bind(id)
        .bind(window_start)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn lock_until(conn: &mut AnyConnection, id: i64, until: i64) -> StoreResult<()> {
    sqlx::query("UPDATE persons SET locked_until = $1 WHERE id = $2")
        .bind(until)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM totp_failures WHERE person_id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Lifts a lockout: the lock and the failures counted towards the next one.
pub async fn unlock(conn: &mut AnyConnection, id: i64) -> StoreResult<()> {
    sqlx::query("UPDATE persons SET locked_until = NULL WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    clear_failures(conn, id).await
}

pub async fn clear_failures(conn: &mut AnyConnection, id: i64) -> StoreResult<()> {
    sqlx::query("DELETE FROM totp_failures WHERE person_id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

// --- person tokens

/// Inserts a person token that lapses at `expires_at` unless used before (each use moves it).
pub async fn insert_token(
    conn: &mut AnyConnection,
    person_id: i64,
    token_hash: &str,
    now: i64,
    expires_at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO person_tokens (token_hash, person_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(person_id)
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn revoke_tokens(conn: &mut AnyConnection, person_id: i64, now: i64) -> StoreResult<()> {
    sqlx::query(
        "UPDATE person_tokens SET revoked_at = $1 WHERE person_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(person_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// One stored person token, for listing (never the token itself).
#[derive(Debug, Clone, FromRow)]
pub struct TokenRow {
    pub token_hash: String,
    pub person: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// Person tokens not revoked, of one person or of everybody, newest first.
pub async fn tokens(
    conn: &mut AnyConnection,
    person_id: Option<i64>,
) -> StoreResult<Vec<TokenRow>> {
    Ok(sqlx::query_as(
        "SELECT t.token_hash, p.name AS person, t.created_at, t.expires_at, t.last_used_at, \
         t.revoked_at FROM person_tokens t JOIN persons p ON p.id = t.person_id \
         WHERE t.revoked_at IS NULL AND (CAST($1 AS BIGINT) IS NULL OR t.person_id = $1) \
         ORDER BY t.created_at DESC, p.name",
    )
    .bind(person_id)
    .fetch_all(conn)
    .await?)
}

/// Revokes one token by its hash; false if it was not live.
pub async fn revoke_token(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: i64,
) -> StoreResult<bool> {
    let r = sqlx::query(
        "UPDATE person_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(token_hash)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The person a live token belongs to, with the token's expiry and last use.
pub async fn by_token(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: i64,
) -> StoreResult<Option<(PersonRow, Option<i64>)>> {
    #[derive(FromRow)]
    struct Hit {
        #[sqlx(flatten)]
        person: PersonRow,
        token_last_used: Option<i64>,
    }
    let hit: Option<Hit> = sqlx::query_as(concat!(
        "SELECT ",
        person_cols!("p."),
        ", t.last_used_at AS token_last_used FROM persons p JOIN person_tokens t \
         ON t.person_id = p.id WHERE t.token_hash = $1 AND t.revoked_at IS NULL \
         AND (t.expires_at IS NULL OR t.expires_at > $2)"
    ))
    .bind(token_hash)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    Ok(hit.map(|h| (h.person, h.token_last_used)))
}

/// Records a use of a token: its lifetime starts again from `now`.
pub async fn touch_token(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: i64,
    expires_at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE person_tokens SET last_used_at = $1, expires_at = $2 \
         WHERE token_hash = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(expires_at)
    .bind(token_hash)
    .execute(conn)
    .await?;
    Ok(())
}

// --- bootstrap tokens (`jit-server init`, `jit-server admin-token`)

/// Every person's sealed TOTP secrets: (id, secret, pending), for re-sealing under a new
/// at-rest key.
pub type SealedSecrets = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

pub async fn sealed_secrets(conn: &mut AnyConnection) -> StoreResult<Vec<SealedSecrets>> {
    Ok(sqlx::query_as(
        "SELECT id, totp_secret, totp_pending FROM persons \
         WHERE totp_secret IS NOT NULL OR totp_pending IS NOT NULL ORDER BY id",
    )
    .fetch_all(conn)
    .await?)
}

pub async fn set_sealed_secrets(
    conn: &mut AnyConnection,
    (id, secret, pending): &SealedSecrets,
) -> StoreResult<()> {
    sqlx::query("UPDATE persons SET totp_secret = $1, totp_pending = $2 WHERE id = $3")
        .bind(secret.clone())
        .bind(pending.clone())
        .bind(*id)
        .execute(conn)
        .await?;
    Ok(())
}

/// True once any bootstrap token was made: the database belongs to an initialized server.
pub async fn any_admin_token(conn: &mut AnyConnection) -> StoreResult<bool> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM admin_tokens")
        .fetch_one(conn)
        .await?;
    Ok(n > 0)
}

pub async fn insert_admin_token(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO admin_tokens (token_hash, created_at) VALUES ($1, $2)")
        .bind(token_hash)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Spends a bootstrap token for `person`; false if it is unknown, revoked or already spent.
pub async fn use_admin_token(
    conn: &mut AnyConnection,
    token_hash: &str,
    person: &str,
    now: i64,
) -> StoreResult<bool> {
    let r = sqlx::query(
        "UPDATE admin_tokens SET used_at = $1, used_by = $2 \
         WHERE token_hash = $3 AND revoked_at IS NULL AND used_at IS NULL",
    )
    .bind(now)
    .bind(person)
    .bind(token_hash)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn revoke_admin_tokens(conn: &mut AnyConnection, now: i64) -> StoreResult<()> {
    sqlx::query(
        "UPDATE admin_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND used_at IS NULL",
    )
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}
