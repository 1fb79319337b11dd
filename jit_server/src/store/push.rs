//! Push approval: persons' push factors (with their ntfy topic), browsers' Web Push
//! subscriptions, and the challenges of logins waiting for an approval.
//!
//! A challenge's life: `pending` → `approved` (the right number) → `used` (the login consumed
//! the reservation with it), or `denied` (a wrong number), `expired`, `reported` ("This was not
//! me") or `closed` (the login ended otherwise). Every change is a conditional `UPDATE … WHERE
//! state = …` whose row count decides, so an approval is used once whichever server process
//! serves it.

use sqlx::{AnyConnection, FromRow};

use super::StoreResult;
use crate::login::decision::ChallengeState;

// --- push factors

#[derive(Debug, Clone, FromRow)]
pub struct PushFactorRow {
    pub person_id: i64,
    pub ntfy_topic: Option<String>,
    /// Sealed with the at-rest key.
    pub ntfy_token: Option<Vec<u8>>,
    pub created_at: i64,
}

pub async fn factor(
    conn: &mut AnyConnection,
    person_id: i64,
) -> StoreResult<Option<PushFactorRow>> {
    Ok(sqlx::query_as(
        "SELECT person_id, ntfy_topic, ntfy_token, created_at FROM push_factors \
         WHERE person_id = $1",
    )
    .bind(person_id)
    .fetch_optional(conn)
    .await?)
}

/// Enrolls push for the person, or replaces its ntfy topic and token.
pub async fn set_factor(
    conn: &mut AnyConnection,
    person_id: i64,
    ntfy_topic: Option<&str>,
    ntfy_token: Option<&[u8]>,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO push_factors (person_id, ntfy_topic, ntfy_token, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (person_id) DO UPDATE SET \
         ntfy_topic = excluded.ntfy_topic, ntfy_token = excluded.ntfy_token",
    )
    .bind(person_id)
    .bind(ntfy_topic)
    .bind(ntfy_token)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets the person's push factor and browsers; false if they had none.
pub async fn remove_factor(conn: &mut AnyConnection, person_id: i64) -> StoreResult<bool> {
    sqlx::query("DELETE FROM push_subscriptions WHERE person_id = $1")
        .bind(person_id)
        .execute(&mut *conn)
        .await?;
    let r = sqlx::query("DELETE FROM push_factors WHERE person_id = $1")
        .bind(person_id)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Every person with the admin role and push, with their factor (to alert them).
pub async fn admins_with_push(
    conn: &mut AnyConnection,
) -> StoreResult<Vec<(String, PushFactorRow)>> {
    #[derive(FromRow)]
    struct Row {
        name: String,
        #[sqlx(flatten)]
        factor: PushFactorRow,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT p.name, f.person_id, f.ntfy_topic, f.ntfy_token, f.created_at \
         FROM push_factors f JOIN persons p ON p.id = f.person_id \
         WHERE p.admin = 1 AND p.active = 1 ORDER BY p.name",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.name, r.factor)).collect())
}

// --- Web Push subscriptions

#[derive(Debug, Clone, FromRow)]
pub struct SubscriptionRow {
    pub id: i64,
    pub person_id: i64,
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    pub created_at: i64,
}

/// Stores a browser's subscription for the person (a browser that subscribes again, or moves
/// to another person, replaces its row).
pub async fn subscribe(
    conn: &mut AnyConnection,
    person_id: i64,
    endpoint: &str,
    p256dh: &str,
    auth: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO push_subscriptions (person_id, endpoint, p256dh, auth, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (endpoint) DO UPDATE SET \
         person_id = excluded.person_id, p256dh = excluded.p256dh, auth = excluded.auth, \
         created_at = excluded.created_at",
    )
    .bind(person_id)
    .bind(endpoint)
    .bind(p256dh)
    .bind(auth)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn subscriptions(
    conn: &mut AnyConnection,
    person_id: i64,
) -> StoreResult<Vec<SubscriptionRow>> {
    Ok(sqlx::query_as(
        "SELECT id, person_id, endpoint, p256dh, auth, created_at FROM push_subscriptions \
         WHERE person_id = $1 ORDER BY id",
    )
    .bind(person_id)
    .fetch_all(conn)
    .await?)
}

/// Forgets a subscription (the push service said it is gone, or the person turned it off).
pub async fn unsubscribe(conn: &mut AnyConnection, endpoint: &str) -> StoreResult<bool> {
    let r = sqlx::query("DELETE FROM push_subscriptions WHERE endpoint = $1")
        .bind(endpoint)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

// --- challenges

#[derive(Debug, Clone, FromRow)]
pub struct ChallengeRow {
    pub id: String,
    pub attempt_id: String,
    pub reservation_id: i64,
    pub person_id: i64,
    pub account_id: i64,
    pub host_id: i64,
    pub number: i64,
    pub state: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub answered_at: Option<i64>,
}

macro_rules! challenge_cols {
    ($p:literal) => {
        concat!(
            $p,
            "id, ",
            $p,
            "attempt_id, ",
            $p,
            "reservation_id, ",
            $p,
            "person_id, ",
            $p,
            "account_id, ",
            $p,
            "host_id, ",
            $p,
            "number, ",
            $p,
            "state, ",
            $p,
            "created_at, ",
            $p,
            "expires_at, ",
            $p,
            "answered_at"
        )
    };
}

impl ChallengeRow {
    pub fn state(&self) -> ChallengeState {
        match self.state.as_str() {
            "pending" => ChallengeState::Pending,
            "approved" => ChallengeState::Approved,
            "used" => ChallengeState::Used,
            "denied" => ChallengeState::Denied,
            "expired" => ChallengeState::Expired,
            "reported" => ChallengeState::Reported,
            _ => ChallengeState::Closed,
        }
    }
}

pub fn state_str(s: ChallengeState) -> &'static str {
    match s {
        ChallengeState::Pending => "pending",
        ChallengeState::Approved => "approved",
        ChallengeState::Used => "used",
        ChallengeState::Denied => "denied",
        ChallengeState::Expired => "expired",
        ChallengeState::Reported => "reported",
        ChallengeState::Closed => "closed",
    }
}

pub async fn insert_challenge(conn: &mut AnyConnection, c: &ChallengeRow) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO push_challenges (id, attempt_id, reservation_id, person_id, account_id, \
         host_id, number, state, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9)",
    )
    .bind(&c.id)
    .bind(&c.attempt_id)
    .bind(c.reservation_id)
    .bind(c.person_id)
    .bind(c.account_id)
    .bind(c.host_id)
    .bind(c.number)
    .bind(c.created_at)
    .bind(c.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn challenge(conn: &mut AnyConnection, id: &str) -> StoreResult<Option<ChallengeRow>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        challenge_cols!(""),
        " FROM push_challenges WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

pub async fn challenge_of_attempt(
    conn: &mut AnyConnection,
    attempt_id: &str,
) -> StoreResult<Option<ChallengeRow>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        challenge_cols!(""),
        " FROM push_challenges WHERE attempt_id = $1"
    ))
    .bind(attempt_id)
    .fetch_optional(conn)
    .await?)
}

/// When `person` was last sent a push for `account` (the rate limit's fact).
pub async fn last_push_at(
    conn: &mut AnyConnection,
    person_id: i64,
    account_id: i64,
) -> StoreResult<Option<i64>> {
    let (at,): (Option<i64>,) = sqlx::query_as(
        "SELECT MAX(created_at) FROM push_challenges WHERE person_id = $1 AND account_id = $2",
    )
    .bind(person_id)
    .bind(account_id)
    .fetch_one(conn)
    .await?;
    Ok(at)
}

/// Moves a challenge from `from` to `to`; false if it was no longer in `from` (another request
/// answered it first).
pub async fn set_state(
    conn: &mut AnyConnection,
    id: &str,
    from: ChallengeState,
    to: ChallengeState,
    now: i64,
) -> StoreResult<bool> {
    let r = sqlx::query(
        "UPDATE push_challenges SET state = $1, answered_at = COALESCE(answered_at, $2) \
         WHERE id = $3 AND state = $4",
    )
    .bind(state_str(to))
    .bind(now)
    .bind(id)
    .bind(state_str(from))
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// A challenge listed for its approver, with what the approver needs to recognise the login.
#[derive(Debug, Clone, FromRow)]
pub struct PendingRow {
    #[sqlx(flatten)]
    pub challenge: ChallengeRow,
    pub person: String,
    pub account: String,
    pub host: String,
    /// The attempt's origin (JSON of `LoginOrigin`).
    pub origin: String,
}

macro_rules! select_pending {
    () => {
        concat!(
            "SELECT ",
            challenge_cols!("c."),
            ", p.name AS person, a.name AS account, h.name AS host, t.origin \
             FROM push_challenges c JOIN persons p ON p.id = c.person_id \
             JOIN accounts a ON a.id = c.account_id JOIN hosts h ON h.id = c.host_id \
             JOIN login_attempts t ON t.id = c.attempt_id"
        )
    };
}

/// The person's challenges still waiting for an answer at `now`, oldest first.
pub async fn pending_for(
    conn: &mut AnyConnection,
    person_id: i64,
    now: i64,
) -> StoreResult<Vec<PendingRow>> {
    Ok(sqlx::query_as(concat!(
        select_pending!(),
        " WHERE c.person_id = $1 AND c.state = 'pending' AND c.expires_at > $2 \
         AND t.state = 'pending' ORDER BY c.created_at, c.id"
    ))
    .bind(person_id)
    .bind(now)
    .fetch_all(conn)
    .await?)
}

/// One challenge with its names (any state).
pub async fn described(conn: &mut AnyConnection, id: &str) -> StoreResult<Option<PendingRow>> {
    Ok(
        sqlx::query_as(concat!(select_pending!(), " WHERE c.id = $1"))
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Marks every pending challenge past its end expired and returns them (for the audit log).
pub async fn expire_due(conn: &mut AnyConnection, now: i64) -> StoreResult<Vec<PendingRow>> {
    let due: Vec<PendingRow> = sqlx::query_as(concat!(
        select_pending!(),
        " WHERE c.state = 'pending' AND c.expires_at <= $1"
    ))
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    let mut swept = Vec::with_capacity(due.len());
    for c in due {
        let id = c.challenge.id.clone();
        if set_state(
            conn,
            &id,
            ChallengeState::Pending,
            ChallengeState::Expired,
            now,
        )
        .await?
        {
            swept.push(c);
        }
    }
    Ok(swept)
}

/// Every sealed ntfy token: (person id, token), for re-sealing under a new at-rest key.
pub async fn sealed_ntfy_tokens(conn: &mut AnyConnection) -> StoreResult<Vec<(i64, Vec<u8>)>> {
    Ok(sqlx::query_as(
        "SELECT person_id, ntfy_token FROM push_factors WHERE ntfy_token IS NOT NULL \
         ORDER BY person_id",
    )
    .fetch_all(conn)
    .await?)
}

pub async fn set_ntfy_token(
    conn: &mut AnyConnection,
    person_id: i64,
    token: &[u8],
) -> StoreResult<()> {
    sqlx::query("UPDATE push_factors SET ntfy_token = $1 WHERE person_id = $2")
        .bind(token.to_vec())
        .bind(person_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes every browser's Web Push subscription; returns how many there were.
pub async fn delete_all_subscriptions(conn: &mut AnyConnection) -> StoreResult<u64> {
    Ok(sqlx::query("DELETE FROM push_subscriptions")
        .execute(conn)
        .await?
        .rows_affected())
}
