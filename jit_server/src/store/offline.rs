//! Offline grants (hashed codes a reservation's host keeps for when the server is unreachable).

use sqlx::{AnyConnection, FromRow};

use super::StoreResult;

#[derive(Debug, Clone, FromRow)]
pub struct GrantRow {
    pub reservation_id: i64,
    pub account: String,
    pub person: String,
    pub expires_at: i64,
    pub kdf: String,
    pub iterations: i64,
    pub salt: Vec<u8>,
    pub codes: String,
    pub served_at: Option<i64>,
    pub served_last_step: Option<i64>,
    pub person_id: i64,
    /// The reservation's start.
    pub reserved_at: i64,
}

pub async fn insert(
    conn: &mut AnyConnection,
    reservation_id: i64,
    kdf: &str,
    iterations: u32,
    salt: &[u8],
    codes_json: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO offline_grants (reservation_id, kdf, iterations, salt, codes, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (reservation_id) DO NOTHING",
    )
    .bind(reservation_id)
    .bind(kdf)
    .bind(i64::from(iterations))
    .bind(salt)
    .bind(codes_json)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Grants of the live reservations on `host_id` whose account is (still) `cached`.
pub async fn live_for_host(
    conn: &mut AnyConnection,
    host_id: i64,
    now: i64,
) -> StoreResult<Vec<GrantRow>> {
    Ok(sqlx::query_as(
        "SELECT g.reservation_id, a.name AS account, p.name AS person, r.expires_at, g.kdf, \
         g.iterations, g.salt, g.codes, g.served_at, g.served_last_step, p.id AS person_id, \
         r.created_at AS reserved_at FROM offline_grants g \
         JOIN reservations r ON r.id = g.reservation_id \
         JOIN accounts a ON a.id = r.account_id JOIN persons p ON p.id = r.person_id \
         WHERE r.host_id = $1 AND r.state = 'active' AND r.expires_at > $2 \
         AND a.offline = 'cached' AND a.active = 1 AND p.active = 1 ORDER BY g.reservation_id",
    )
    .bind(host_id)
    .bind(now)
    .fetch_all(conn)
    .await?)
}

/// Records that the reservation's host fetched the grant, holding hashes for steps `first` to
/// `last`: when it first did, and the span of steps it was ever given.
pub async fn mark_served(
    conn: &mut AnyConnection,
    reservation_id: i64,
    now: i64,
    first: i64,
    last: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE offline_grants SET served_at = COALESCE(served_at, $1), \
         served_first_step = COALESCE(served_first_step, $2), \
         served_last_step = CASE WHEN served_last_step IS NULL OR served_last_step < $3 \
         THEN $3 ELSE served_last_step END WHERE reservation_id = $4",
    )
    .bind(now)
    .bind(first)
    .bind(last)
    .bind(reservation_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Issues the grant of `reservation_id` anew (the next minutes of codes, a new salt). When it
/// was first served, and which steps were, stay.
pub async fn replace(
    conn: &mut AnyConnection,
    reservation_id: i64,
    kdf: &str,
    iterations: u32,
    salt: &[u8],
    codes_json: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE offline_grants SET kdf = $1, iterations = $2, salt = $3, codes = $4, \
         created_at = $5 WHERE reservation_id = $6",
    )
    .bind(kdf)
    .bind(i64::from(iterations))
    .bind(salt)
    .bind(codes_json)
    .bind(now)
    .bind(reservation_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// What the server issued for a reservation: when the grant was first served to its host, and
/// the span of steps the host was given hashes for.
#[derive(Debug, Clone, FromRow)]
pub struct Issued {
    pub served_at: Option<i64>,
    pub served_first_step: Option<i64>,
    pub served_last_step: Option<i64>,
}

pub async fn issued(conn: &mut AnyConnection, reservation_id: i64) -> StoreResult<Option<Issued>> {
    Ok(sqlx::query_as(
        "SELECT served_at, served_first_step, served_last_step FROM offline_grants \
         WHERE reservation_id = $1",
    )
    .bind(reservation_id)
    .fetch_optional(conn)
    .await?)
}
