//! Sessions as hosts report them: opened (`session.open`), closed (`session.close`), or ended by
//! the host because the reservation ended (`session.ended`). One login opens one session, so a
//! session is named by its host and the login attempt. Names are text, as in the audit log.

use jit_proto::api::{EndCause, Session};
use jit_proto::{AccountName, HostName, PersonName};
use sqlx::{AnyConnection, FromRow};

use super::{StoreError, StoreResult, flag};

/// Longest list answered at once (open sessions are few; closed ones are the newest).
pub const MAX_LISTED: i64 = 500;

/// What a host says about a session when it opens.
#[derive(Debug, Clone)]
pub struct Opened<'a> {
    pub host_id: i64,
    pub attempt: &'a str,
    pub reservation_id: Option<i64>,
    pub account: &'a str,
    pub person: Option<&'a str>,
    pub service: &'a str,
    pub source: Option<&'a str>,
    pub tty: Option<&'a str>,
    pub at: i64,
}

/// Records an opened session; false if it was recorded before.
pub async fn open(conn: &mut AnyConnection, s: &Opened<'_>) -> StoreResult<bool> {
    let r = sqlx::query(
        "INSERT INTO sessions (host_id, attempt, reservation_id, account, person, service, source, \
         tty, opened_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (host_id, attempt) DO NOTHING",
    )
    .bind(s.host_id)
    .bind(s.attempt)
    .bind(s.reservation_id)
    .bind(s.account)
    .bind(s.person)
    .bind(s.service)
    .bind(s.source)
    .bind(s.tty)
    .bind(s.at)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Records the end of a session at `at`: closed by its login (`cause` `None`) or ended by the
/// host for `cause`. The first time recorded stays, and so does a cause: when the host ends a
/// session, the login's own close often arrives first (the processes it ended close it). A close
/// for a session whose open never arrived is recorded as opened and closed at `at`.
pub async fn close(
    conn: &mut AnyConnection,
    s: &Opened<'_>,
    cause: Option<EndCause>,
) -> StoreResult<()> {
    let cause = cause.map(EndCause::as_str);
    let r = sqlx::query(
        "UPDATE sessions SET closed_at = COALESCE(closed_at, $1), \
         end_cause = COALESCE(end_cause, $2) WHERE host_id = $3 AND attempt = $4",
    )
    .bind(s.at)
    .bind(cause)
    .bind(s.host_id)
    .bind(s.attempt)
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 0 {
        open(conn, s).await?;
        sqlx::query(
            "UPDATE sessions SET closed_at = $1, end_cause = $2 \
             WHERE host_id = $3 AND attempt = $4",
        )
        .bind(s.at)
        .bind(cause)
        .bind(s.host_id)
        .bind(s.attempt)
        .execute(conn)
        .await?;
    }
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
struct SessionRow {
    id: i64,
    host: String,
    account: String,
    person: Option<String>,
    service: String,
    source: Option<String>,
    tty: Option<String>,
    reservation_id: Option<i64>,
    opened_at: i64,
    closed_at: Option<i64>,
    end_cause: Option<String>,
    /// The reservation's row, if it is one of this host's.
    res_state: Option<String>,
    res_expires_at: Option<i64>,
    res_ended_at: Option<i64>,
    ends_sessions: Option<i64>,
}

impl SessionRow {
    fn to_api(&self, now: i64) -> StoreResult<Session> {
        let corrupt = |e: jit_proto::NameError| StoreError::Corrupt(e.to_string());
        let reservation_ends_at = match (self.res_state.as_deref(), self.res_expires_at) {
            (Some("released"), Some(exp)) => Some(self.res_ended_at.unwrap_or(exp).min(exp)),
            (Some(_), exp) => exp,
            (None, _) => None,
        };
        Ok(Session {
            id: self.id,
            host: HostName::new(&self.host).map_err(corrupt)?,
            account: AccountName::new(&self.account).map_err(corrupt)?,
            // Names were valid when stored; one that no longer parses is shown without it.
            person: self.person.as_deref().and_then(|p| PersonName::new(p).ok()),
            service: self.service.clone(),
            source: self.source.clone(),
            tty: self.tty.clone(),
            reservation_id: self.reservation_id,
            opened_at: self.opened_at,
            closed_at: self.closed_at,
            duration_secs: (self.closed_at.unwrap_or(now) - self.opened_at).max(0),
            ended: self.end_cause.as_deref().and_then(EndCause::parse),
            reservation_ends_at,
            end_session_at_expiry: self.ends_sessions.is_some_and(flag),
        })
    }
}

/// Sessions, newest first: one person's or everybody's; open ones only, or all.
pub async fn list(
    conn: &mut AnyConnection,
    person: Option<&str>,
    include_closed: bool,
    now: i64,
) -> StoreResult<Vec<Session>> {
    let rows: Vec<SessionRow> = sqlx::query_as(
        "SELECT s.id, h.name AS host, s.account, s.person, s.service, s.source, s.tty, \
         s.reservation_id, s.opened_at, s.closed_at, s.end_cause, r.state AS res_state, \
         r.expires_at AS res_expires_at, r.ended_at AS res_ended_at, \
         a.end_session_at_expiry AS ends_sessions \
         FROM sessions s JOIN hosts h ON h.id = s.host_id \
         LEFT JOIN reservations r ON r.id = s.reservation_id AND r.host_id = s.host_id \
         LEFT JOIN accounts a ON a.name = s.account \
         WHERE (CAST($1 AS TEXT) IS NULL OR s.person = $1) \
         AND ($2 = 1 OR s.closed_at IS NULL) \
         ORDER BY s.opened_at DESC, s.id DESC LIMIT $3",
    )
    .bind(person)
    .bind(i64::from(include_closed))
    .bind(MAX_LISTED)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| r.to_api(now)).collect()
}
