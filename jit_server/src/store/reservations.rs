//! Reservations and login attempts.
//!
//! A reservation's life: `active` → `consumed` (a login used it), `released` (given back) or
//! `expired` (ran out). A row still marked `active` after `expires_at` is treated as expired by
//! every query here and is swept to `expired` by [`expire_due`]. A consumed reservation keeps
//! its end: it still bounds the session its login opened (for accounts that end sessions at
//! expiry), so it can be extended and released until then.

use jit_proto::api::{EndCause, Reservation, ReservationState};
use jit_proto::{AccountName, HostName, PersonName};
use sqlx::{AnyConnection, FromRow};

use super::{StoreError, StoreResult};

#[derive(Debug, Clone, FromRow)]
pub struct ReservationRow {
    pub id: i64,
    pub account_id: i64,
    pub host_id: i64,
    pub person_id: i64,
    pub account: String,
    pub host: String,
    pub person: String,
    pub state: String,
    pub reason: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
    pub ended_by: Option<String>,
    pub host_joined: i64,
    /// Why a released reservation ended (see [`EndCause`]).
    pub end_cause: Option<String>,
}

// A macro so every query stays a literal string (sqlx refuses dynamic SQL).
macro_rules! select_reservations {
    () => {
        "SELECT r.id, r.account_id, r.host_id, r.person_id, a.name AS account, \
     h.name AS host, p.name AS person, r.state, r.reason, r.created_at, r.expires_at, \
     r.ended_at, r.ended_by, \
     CASE WHEN h.credential_hash IS NULL THEN 0 ELSE 1 END AS host_joined, r.end_cause \
     FROM reservations r JOIN accounts a ON a.id = r.account_id \
     JOIN hosts h ON h.id = r.host_id JOIN persons p ON p.id = r.person_id"
    };
}

impl ReservationRow {
    /// The state as of `now` (an active row past its expiry is expired).
    pub fn state_at(&self, now: i64) -> ReservationState {
        match self.state.as_str() {
            "active" if self.expires_at > now => ReservationState::Active,
            "active" | "expired" => ReservationState::Expired,
            "consumed" => ReservationState::Consumed,
            _ => ReservationState::Released,
        }
    }

    /// Why it is over as of `now`, or `None` while it runs (unused, or used by a login and not
    /// run out).
    pub fn ended(&self, now: i64) -> Option<EndCause> {
        match self.state.as_str() {
            "active" | "consumed" if self.expires_at > now => None,
            "active" | "consumed" | "expired" => Some(EndCause::Expired),
            _ => Some(
                self.end_cause
                    .as_deref()
                    .and_then(EndCause::parse)
                    .unwrap_or(if self.ended_by.as_deref() == Some(self.person.as_str()) {
                        EndCause::Released
                    } else {
                        EndCause::ForceReleased
                    }),
            ),
        }
    }

    /// When it ends, or ended.
    pub fn ends_at(&self, now: i64) -> i64 {
        match self.ended(now) {
            Some(EndCause::Expired) | None => self.expires_at,
            Some(_) => self
                .ended_at
                .unwrap_or(self.expires_at)
                .min(self.expires_at),
        }
    }

    pub fn to_api(&self, now: i64) -> StoreResult<Reservation> {
        let corrupt = |e: jit_proto::NameError| StoreError::Corrupt(e.to_string());
        let state = self.state_at(now);
        Ok(Reservation {
            id: self.id,
            account: AccountName::new(&self.account).map_err(corrupt)?,
            host: HostName::new(&self.host).map_err(corrupt)?,
            person: PersonName::new(&self.person).map_err(corrupt)?,
            state,
            reason: self.reason.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            remaining_secs: if state == ReservationState::Active {
                self.expires_at - now
            } else {
                0
            },
            ended_at: match (state, self.ended_at) {
                (ReservationState::Expired, None) => Some(self.expires_at),
                (_, e) => e,
            },
            ended_by: self.ended_by.clone(),
            host_joined: super::flag(self.host_joined),
        })
    }
}

/// Marks every reservation that ran out as expired and returns them (for the audit log).
pub async fn expire_due(conn: &mut AnyConnection, now: i64) -> StoreResult<Vec<ReservationRow>> {
    let due: Vec<ReservationRow> = sqlx::query_as(concat!(
        select_reservations!(),
        " WHERE r.state = 'active' AND r.expires_at <= $1"
    ))
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    let mut swept = Vec::with_capacity(due.len());
    for r in due {
        let done = sqlx::query(
            "UPDATE reservations SET state = 'expired', ended_at = expires_at \
             WHERE id = $1 AND state = 'active'",
        )
        .bind(r.id)
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() == 1 {
            swept.push(r);
        }
    }
    Ok(swept)
}

/// The live reservation of an account on a host, if any.
pub async fn active_for(
    conn: &mut AnyConnection,
    account_id: i64,
    host_id: i64,
    now: i64,
) -> StoreResult<Option<ReservationRow>> {
    Ok(sqlx::query_as(concat!(
        select_reservations!(),
        " WHERE r.account_id = $1 AND r.host_id = $2 AND r.state = 'active' \
         AND r.expires_at > $3"
    ))
    .bind(account_id)
    .bind(host_id)
    .bind(now)
    .fetch_optional(conn)
    .await?)
}

pub async fn by_id(conn: &mut AnyConnection, id: i64) -> StoreResult<Option<ReservationRow>> {
    Ok(
        sqlx::query_as(concat!(select_reservations!(), " WHERE r.id = $1"))
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Inserts an active reservation. A unique violation means somebody else holds the account on
/// that host (see the `reservations_one_active` index).
pub async fn insert(
    conn: &mut AnyConnection,
    account_id: i64,
    host_id: i64,
    person_id: i64,
    reason: Option<&str>,
    now: i64,
    expires_at: i64,
) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO reservations (account_id, host_id, person_id, state, reason, created_at, \
         expires_at) VALUES ($1, $2, $3, 'active', $4, $5, $6) RETURNING id",
    )
    .bind(account_id)
    .bind(host_id)
    .bind(person_id)
    .bind(reason)
    .bind(now)
    .bind(expires_at)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// Consumes a live reservation. Exactly one caller can get `true` for a given reservation,
/// whichever server process or host it runs on: the row count of this UPDATE decides.
pub async fn consume(conn: &mut AnyConnection, id: i64, now: i64, by: &str) -> StoreResult<bool> {
    let r = sqlx::query(
        "UPDATE reservations SET state = 'consumed', ended_at = $1, ended_by = $2 \
         WHERE id = $3 AND state = 'active' AND expires_at > $1",
    )
    .bind(now)
    .bind(by)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Ends a reservation early, for `cause`: an unused one, or a used one that has not run out
/// (its session ends with it, for accounts that end sessions at expiry).
pub async fn release(
    conn: &mut AnyConnection,
    id: i64,
    now: i64,
    by: &str,
    cause: EndCause,
) -> StoreResult<bool> {
    let r = sqlx::query(
        "UPDATE reservations SET state = 'released', ended_at = $1, ended_by = $2, \
         end_cause = $4 WHERE id = $3 AND state IN ('active', 'consumed') AND expires_at > $1",
    )
    .bind(now)
    .bind(by)
    .bind(id)
    .bind(cause.as_str())
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Reservations, newest first: one person's or everybody's; live only, or all.
pub async fn list(
    conn: &mut AnyConnection,
    person_id: Option<i64>,
    include_ended: bool,
    now: i64,
) -> StoreResult<Vec<ReservationRow>> {
    let q = if include_ended {
        sqlx::query_as(concat!(
            select_reservations!(),
            " WHERE (CAST($1 AS BIGINT) IS NULL OR r.person_id = $1) \
             ORDER BY r.created_at DESC, r.id DESC LIMIT 500"
        ))
        .bind(person_id)
    } else {
        sqlx::query_as(concat!(
            select_reservations!(),
            " WHERE (CAST($1 AS BIGINT) IS NULL OR r.person_id = $1) \
             AND r.state = 'active' AND r.expires_at > $2 \
             ORDER BY r.created_at DESC, r.id DESC LIMIT 500"
        ))
        .bind(person_id)
        .bind(now)
    };
    Ok(q.fetch_all(conn).await?)
}

/// Reservations of an account (optionally on one host), optionally of one person, that can be
/// released: unused, or used by a login, and not run out.
pub async fn live_for_account(
    conn: &mut AnyConnection,
    account_id: i64,
    host_id: Option<i64>,
    person_id: Option<i64>,
    now: i64,
) -> StoreResult<Vec<ReservationRow>> {
    Ok(sqlx::query_as(concat!(
        select_reservations!(),
        " WHERE r.account_id = $1 \
         AND (CAST($2 AS BIGINT) IS NULL OR r.host_id = $2) \
         AND (CAST($3 AS BIGINT) IS NULL OR r.person_id = $3) \
         AND r.state IN ('active', 'consumed') AND r.expires_at > $4 ORDER BY r.id"
    ))
    .bind(account_id)
    .bind(host_id)
    .bind(person_id)
    .bind(now)
    .fetch_all(conn)
    .await?)
}

/// Every reservation of a person that has not run out, used by a login or not (what ends when
/// the person is disabled).
pub async fn unexpired_of(
    conn: &mut AnyConnection,
    person_id: i64,
    now: i64,
) -> StoreResult<Vec<ReservationRow>> {
    Ok(sqlx::query_as(concat!(
        select_reservations!(),
        " WHERE r.person_id = $1 AND r.state IN ('active', 'consumed') AND r.expires_at > $2 \
         ORDER BY r.id"
    ))
    .bind(person_id)
    .bind(now)
    .fetch_all(conn)
    .await?)
}

/// A person's reservations of an account (optionally on one host) that have not run out yet,
/// used by a login or not: the ones an extension may move.
pub async fn unexpired_of_person(
    conn: &mut AnyConnection,
    account_id: i64,
    host_id: Option<i64>,
    person_id: i64,
    now: i64,
) -> StoreResult<Vec<ReservationRow>> {
    Ok(sqlx::query_as(concat!(
        select_reservations!(),
        " WHERE r.account_id = $1 \
         AND (CAST($2 AS BIGINT) IS NULL OR r.host_id = $2) AND r.person_id = $3 \
         AND r.state IN ('active', 'consumed') AND r.expires_at > $4 ORDER BY r.id"
    ))
    .bind(account_id)
    .bind(host_id)
    .bind(person_id)
    .bind(now)
    .fetch_all(conn)
    .await?)
}

/// Moves the end of a reservation that has not run out; false if it ran out meanwhile.
pub async fn extend(
    conn: &mut AnyConnection,
    id: i64,
    old_end: i64,
    new_end: i64,
    now: i64,
) -> StoreResult<bool> {
    let r = sqlx::query(
        "UPDATE reservations SET expires_at = $1 WHERE id = $2 AND expires_at = $3 \
         AND state IN ('active', 'consumed') AND expires_at > $4",
    )
    .bind(new_end)
    .bind(id)
    .bind(old_end)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

// --- login attempts

#[derive(Debug, Clone, FromRow)]
pub struct AttemptRow {
    pub id: String,
    pub host_id: i64,
    pub account_id: i64,
    pub reservation_id: i64,
    pub state: String,
    pub origin: String,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert_attempt(conn: &mut AnyConnection, a: &AttemptRow) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO login_attempts (id, host_id, account_id, reservation_id, state, origin, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&a.id)
    .bind(a.host_id)
    .bind(a.account_id)
    .bind(a.reservation_id)
    .bind(&a.state)
    .bind(&a.origin)
    .bind(a.created_at)
    .bind(a.expires_at)
    .execute(&mut *conn)
    .await?;
    // Finished attempts older than a day are of no further use (the audit log keeps the story).
    sqlx::query("DELETE FROM login_attempts WHERE expires_at < $1")
        .bind(a.created_at - 86_400)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn attempt(
    conn: &mut AnyConnection,
    id: &str,
    host_id: i64,
) -> StoreResult<Option<AttemptRow>> {
    Ok(sqlx::query_as(
        "SELECT id, host_id, account_id, reservation_id, state, origin, created_at, expires_at \
         FROM login_attempts WHERE id = $1 AND host_id = $2",
    )
    .bind(id)
    .bind(host_id)
    .fetch_optional(conn)
    .await?)
}

/// A login attempt by id, whichever host began it (to refuse a host's report about another
/// host's attempt).
pub async fn attempt_of_any_host(
    conn: &mut AnyConnection,
    id: &str,
) -> StoreResult<Option<AttemptRow>> {
    Ok(sqlx::query_as(
        "SELECT id, host_id, account_id, reservation_id, state, origin, created_at, expires_at \
         FROM login_attempts WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Ends a pending attempt; false if it was already ended.
pub async fn finish_attempt(conn: &mut AnyConnection, id: &str, state: &str) -> StoreResult<bool> {
    let r = sqlx::query("UPDATE login_attempts SET state = $1 WHERE id = $2 AND state = 'pending'")
        .bind(state)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() == 1)
}
