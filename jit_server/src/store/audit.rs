//! The audit log: every change and every decision, with actor, time, subject, result and reason.
//! Names are stored as text (not ids) so the history reads the same after renames or deletes.

use jit_proto::api::{AuditEvent, AuditQuery, AuditResult};
use jit_proto::{AccountName, HostName, PersonName};
use sqlx::{AnyConnection, FromRow};

use super::StoreResult;

/// One event to record. Build with [`Event::new`] and the `with_*` setters.
#[derive(Debug, Clone)]
pub struct Event {
    pub at: i64,
    pub actor: String,
    pub action: &'static str,
    pub person: Option<String>,
    pub account: Option<String>,
    pub host: Option<String>,
    pub result: AuditResult,
    pub reason: Option<String>,
    pub detail: Option<serde_json::Value>,
    pub event_key: Option<String>,
}

impl Event {
    pub fn new(
        at: i64,
        actor: impl Into<String>,
        action: &'static str,
        result: AuditResult,
    ) -> Self {
        Self {
            at,
            actor: actor.into(),
            action,
            person: None,
            account: None,
            host: None,
            result,
            reason: None,
            detail: None,
            event_key: None,
        }
    }

    pub fn person(mut self, p: impl Into<String>) -> Self {
        self.person = Some(p.into());
        self
    }

    pub fn account(mut self, a: impl Into<String>) -> Self {
        self.account = Some(a.into());
        self
    }

    pub fn host(mut self, h: impl Into<String>) -> Self {
        self.host = Some(h.into());
        self
    }

    pub fn reason(mut self, r: impl Into<String>) -> Self {
        self.reason = Some(r.into());
        self
    }

    pub fn detail(mut self, d: serde_json::Value) -> Self {
        self.detail = Some(d);
        self
    }

    pub fn key(mut self, k: impl Into<String>) -> Self {
        self.event_key = Some(k.into());
        self
    }
}

fn result_str(r: AuditResult) -> &'static str {
    match r {
        AuditResult::Ok => "ok",
        AuditResult::Denied => "denied",
        AuditResult::Error => "error",
    }
}

/// Records `e`. Returns false when an event with the same key was already stored.
pub async fn record(conn: &mut AnyConnection, e: &Event) -> StoreResult<bool> {
    tracing::info!(
        target: "jit::audit",
        actor = %e.actor,
        action = e.action,
        person = e.person.as_deref().unwrap_or("-"),
        account = e.account.as_deref().unwrap_or("-"),
        host = e.host.as_deref().unwrap_or("-"),
        result = result_str(e.result),
        reason = e.reason.as_deref().unwrap_or("-"),
    );
    let r = sqlx::query(
        "INSERT INTO audit (at, actor, action, person, account, host, result, reason, detail, \
         event_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (event_key) DO NOTHING",
    )
    .bind(e.at)
    .bind(&e.actor)
    .bind(e.action)
    .bind(&e.person)
    .bind(&e.account)
    .bind(&e.host)
    .bind(result_str(e.result))
    .bind(&e.reason)
    .bind(e.detail.as_ref().map(|d| d.to_string()))
    .bind(&e.event_key)
    .execute(&mut *conn)
    .await?;
    let stored = r.rows_affected() == 1;
    // What hosts must hear of is logged with the write, in its transaction.
    if stored && let Some((kind, scope)) = super::changes::kind_of(e) {
        super::changes::append(conn, kind, scope, e.at).await?;
    }
    Ok(stored)
}

#[derive(Debug, FromRow)]
struct AuditRow {
    id: i64,
    at: i64,
    actor: String,
    action: String,
    person: Option<String>,
    account: Option<String>,
    host: Option<String>,
    result: String,
    reason: Option<String>,
    detail: Option<String>,
}

pub const DEFAULT_LIMIT: u32 = 1000;
pub const MAX_LIMIT: u32 = 10_000;

/// Events matching every given filter, oldest first; the newest `limit` of them.
pub async fn query(conn: &mut AnyConnection, q: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
    let limit = i64::from(q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT));
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT id, at, actor, action, person, account, host, result, reason, detail FROM audit \
         WHERE (CAST($1 AS TEXT) IS NULL OR person = $1) \
         AND (CAST($2 AS TEXT) IS NULL OR account = $2) \
         AND (CAST($3 AS TEXT) IS NULL OR host = $3) \
         AND at >= $4 AND at < $5 ORDER BY at DESC, id DESC LIMIT $6",
    )
    .bind(q.person.as_ref().map(|p| p.to_string()))
    .bind(q.account.as_ref().map(|a| a.to_string()))
    .bind(q.host.as_ref().map(|h| h.to_string()))
    .bind(q.since.unwrap_or(i64::MIN))
    .bind(q.until.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    let mut events: Vec<AuditEvent> = rows
        .into_iter()
        .map(|r| AuditEvent {
            id: r.id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            // Names were valid when stored; a row that no longer parses is shown without it.
            person: r.person.and_then(|p| PersonName::new(&p).ok()),
            account: r.account.and_then(|a| AccountName::new(&a).ok()),
            host: r.host.and_then(|h| HostName::new(&h).ok()),
            result: match r.result.as_str() {
                "ok" => AuditResult::Ok,
                "denied" => AuditResult::Denied,
                _ => AuditResult::Error,
            },
            reason: r.reason,
            detail: r.detail.and_then(|d| serde_json::from_str(&d).ok()),
        })
        .collect();
    events.reverse();
    Ok(events)
}
