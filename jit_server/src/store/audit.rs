//! The audit log: every change and every decision, with actor, time, subject, result and reason.
//! Names are stored as text (not ids) so the history reads the same after renames or deletes.
//!
//! The log is a hash chain (migration 0010): each row stores
//! `hash = HMAC-SHA256(chain key, previous hash || canonical encoding of the row)` and its place
//! `seq` in the chain. A row is chained in the transaction of the action it records, after that
//! transaction has taken the chain head's row lock ([`record`]), so concurrent writers queue
//! instead of forking the chain, on SQLite (whose write lock serializes anyway) as on a database
//! with row locks. [`verify`] walks the chain and names the first row whose link does not hold.
//!
//! The chain key is random, made the first time a server starts with the chain, and stored in the
//! chain head sealed under the at-rest key like the other secrets ([`load_chain_key`]): every
//! server process that can decrypt the database's secrets can extend the chain, and `jit-server
//! rotate-key` seals it again with them, so the chain stays verifiable across rotations. Someone
//! who can write the database but lacks `at-rest.key` (a copied or restored database, an SQL
//! injection, a database admin) cannot forge a link.

use std::sync::OnceLock;

use jit_proto::api::{AuditBreak, AuditEvent, AuditQuery, AuditResult, AuditVerification};
use jit_proto::{AccountName, HostName, PersonName};
use rand::RngCore;
use ring::hmac;
use sqlx::{AnyConnection, FromRow};
use zeroize::Zeroizing;

use super::{StoreError, StoreResult};
use crate::keys::AtRestKey;

/// What the sealed chain key is bound to (the AEAD's associated data).
pub const CHAIN_KEY_AAD: &str = "jit audit chain key v1";

/// The link before the first row.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One server process serves one database with one at-rest key, so the chain key is loaded once
/// at start ([`load_chain_key`]) rather than passed to each of the many places that audit.
static CHAIN_KEY: OnceLock<hmac::Key> = OnceLock::new();

/// Loads this database's chain key for the process, making and storing it the first time. The
/// first call in a process wins; later ones change nothing.
pub async fn load_chain_key(store: &super::Store, key: &AtRestKey) -> StoreResult<()> {
    let mut tx = store.write().await?;
    let raw = open_chain_key(&mut tx, key).await?;
    tx.commit().await?;
    use_chain_key(&raw);
    Ok(())
}

/// The chain key stored in the chain head, opened with `key` (or an older key of its ring); a new
/// random one, sealed and stored, when there is none yet. Call in a write transaction, so that
/// server processes starting together store one.
pub async fn open_chain_key(
    conn: &mut AnyConnection,
    key: &AtRestKey,
) -> StoreResult<Zeroizing<Vec<u8>>> {
    let sealed: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT sealed_key FROM audit_chain_head WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
    if let Some(sealed) = sealed {
        return key.open(&sealed, CHAIN_KEY_AAD).map_err(|_| {
            StoreError::Corrupt(
                "the audit chain key does not open with this data directory's at-rest keys \
                 (is this the data directory of the server that made the database?)"
                    .into(),
            )
        });
    }
    let mut raw = Zeroizing::new(vec![0u8; 32]);
    rand::rng().fill_bytes(&mut raw);
    set_sealed_chain_key(conn, &key.seal(&raw, CHAIN_KEY_AAD)).await?;
    Ok(raw)
}

/// Stores the chain key sealed anew (`jit-server rotate-key`).
pub async fn set_sealed_chain_key(conn: &mut AnyConnection, sealed: &[u8]) -> StoreResult<()> {
    sqlx::query("UPDATE audit_chain_head SET sealed_key = $1 WHERE id = 1")
        .bind(sealed)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Makes `raw` this process's chain key, unless one is loaded already.
pub fn use_chain_key(raw: &[u8]) {
    let _ = CHAIN_KEY.set(hmac::Key::new(hmac::HMAC_SHA256, raw));
}

fn chain_key() -> StoreResult<&'static hmac::Key> {
    CHAIN_KEY.get().ok_or(StoreError::NoChainKey)
}

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
    /// The API client's address; when `None`, the address of the call being served, if any
    /// ([`crate::api::client_addr`]).
    pub client: Option<String>,
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
            client: None,
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

/// The fields of one row as they are stored, in the order the chain encodes them.
struct Canonical<'a> {
    seq: i64,
    at: i64,
    actor: &'a str,
    action: &'a str,
    person: Option<&'a str>,
    account: Option<&'a str>,
    host: Option<&'a str>,
    result: &'a str,
    reason: Option<&'a str>,
    detail: Option<&'a str>,
    event_key: Option<&'a str>,
    client: Option<&'a str>,
}

impl Canonical<'_> {
    /// An unambiguous encoding: a version tag, the integers as 8 big-endian bytes, each text as
    /// its 4-byte big-endian length and UTF-8 bytes, each optional text as 0 (absent) or 1 and
    /// the text. No two different rows encode alike.
    fn encode(&self) -> Vec<u8> {
        fn text(out: &mut Vec<u8>, s: &str) {
            out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        fn opt(out: &mut Vec<u8>, s: Option<&str>) {
            match s {
                None => out.push(0),
                Some(s) => {
                    out.push(1);
                    text(out, s);
                }
            }
        }
        let mut out = b"jit-audit-v1\0".to_vec();
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.at.to_be_bytes());
        text(&mut out, self.actor);
        text(&mut out, self.action);
        opt(&mut out, self.person);
        opt(&mut out, self.account);
        opt(&mut out, self.host);
        text(&mut out, self.result);
        opt(&mut out, self.reason);
        opt(&mut out, self.detail);
        opt(&mut out, self.event_key);
        opt(&mut out, self.client);
        out
    }

    /// This row's link: HMAC-SHA256 over the previous link (as its 64 hex characters) and the
    /// row's encoding, hex.
    fn link(&self, key: &hmac::Key, prev: &str) -> String {
        let mut ctx = hmac::Context::with_key(key);
        ctx.update(prev.as_bytes());
        ctx.update(&self.encode());
        hex::encode(ctx.sign().as_ref())
    }
}

/// Takes the chain head's lock for this transaction (an UPDATE locks the row until commit on
/// every database; on SQLite the transaction already holds the write lock) and reads it.
async fn lock_head(conn: &mut AnyConnection) -> StoreResult<(i64, String)> {
    let head: (i64, String) =
        sqlx::query_as("UPDATE audit_chain_head SET seq = seq WHERE id = 1 RETURNING seq, hash")
            .fetch_one(&mut *conn)
            .await?;
    Ok(head)
}

/// Records `e` as the chain's next row, in the caller's (write) transaction. Returns false when
/// an event with the same key was already stored.
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
    let key = chain_key()?;
    // The head's lock first: whoever holds it decides both the next seq and whether a
    // redelivered host event is new.
    let (seq, prev) = lock_head(conn).await?;
    if let Some(k) = &e.event_key {
        let seen: Option<i64> = sqlx::query_scalar("SELECT id FROM audit WHERE event_key = $1")
            .bind(k)
            .fetch_optional(&mut *conn)
            .await?;
        if seen.is_some() {
            return Ok(false);
        }
    }
    let client = e
        .client
        .clone()
        .or_else(|| crate::api::client_addr::current().map(|a| a.to_string()));
    let detail = e.detail.as_ref().map(|d| d.to_string());
    let row = Canonical {
        seq: seq + 1,
        at: e.at,
        actor: &e.actor,
        action: e.action,
        person: e.person.as_deref(),
        account: e.account.as_deref(),
        host: e.host.as_deref(),
        result: result_str(e.result),
        reason: e.reason.as_deref(),
        detail: detail.as_deref(),
        event_key: e.event_key.as_deref(),
        client: client.as_deref(),
    };
    let hash = row.link(key, &prev);
    // What hosts must hear of is logged with the write, in its transaction.
    let change = super::changes::kind_of(e);
    // On SQLite the row, the new head and the change go in one call to the connection's
    // thread: each call costs more than SQLite's own work (docs/benchmarks.md). PostgreSQL
    // takes one statement per query.
    macro_rules! insert_row {
        () => {
            "INSERT INTO audit (at, actor, action, person, account, host, result, reason, detail, \
             event_key, client, seq, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        };
    }
    macro_rules! advance_head {
        () => {
            "UPDATE audit_chain_head SET seq = $12, hash = $13 WHERE id = 1"
        };
    }
    let sqlite = conn.backend_name() == <sqlx::Sqlite as sqlx::Database>::NAME;
    let sql = match (sqlite, change.is_some()) {
        (true, true) => concat!(
            insert_row!(),
            "; ",
            advance_head!(),
            "; ",
            super::changes::insert_after_audit!()
        ),
        (true, false) => concat!(insert_row!(), "; ", advance_head!()),
        (false, _) => insert_row!(),
    };
    let mut query = sqlx::query(sql)
        .bind(e.at)
        .bind(&e.actor)
        .bind(e.action)
        .bind(&e.person)
        .bind(&e.account)
        .bind(&e.host)
        .bind(row.result)
        .bind(&e.reason)
        .bind(&detail)
        .bind(&e.event_key)
        .bind(&client)
        .bind(row.seq)
        .bind(&hash);
    if let (true, Some((kind, scope))) = (sqlite, &change) {
        query = query.bind(scope.host()).bind(kind.as_str());
    }
    query.execute(&mut *conn).await?;
    if !sqlite {
        sqlx::query("UPDATE audit_chain_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(row.seq)
            .bind(&hash)
            .execute(&mut *conn)
            .await?;
        if let Some((kind, scope)) = change {
            super::changes::append(conn, kind, scope, e.at).await?;
        }
    }
    Ok(true)
}

/// `SELECT` of every chained column, then `$rest` (SQL must be a literal).
macro_rules! select_chain {
    ($rest:literal) => {
        concat!(
            "SELECT id, at, actor, action, person, account, host, result, reason, detail, ",
            "event_key, client, seq, hash FROM audit ",
            $rest
        )
    };
}

/// Rows written before the chain existed (migration 0010) join it, oldest first, the first
/// time a server starts with the chain. Only then: a row without a link that appears later was
/// written behind the server's back, and [`verify`] names it.
pub async fn chain_rows_from_before_the_chain(conn: &mut AnyConnection) -> StoreResult<u64> {
    let key = chain_key()?;
    let (seq, mut prev) = lock_head(conn).await?;
    if seq != 0 {
        return Ok(0);
    }
    let rows: Vec<ChainRow> = sqlx::query_as(select_chain!("WHERE seq IS NULL ORDER BY id"))
        .fetch_all(&mut *conn)
        .await?;
    let mut n = 0;
    for r in &rows {
        n += 1;
        let hash = r.canonical(n).link(key, &prev);
        sqlx::query("UPDATE audit SET seq = $1, hash = $2 WHERE id = $3")
            .bind(n)
            .bind(&hash)
            .bind(r.id)
            .execute(&mut *conn)
            .await?;
        prev = hash;
    }
    if n > 0 {
        sqlx::query("UPDATE audit_chain_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(n)
            .bind(&prev)
            .execute(&mut *conn)
            .await?;
    }
    Ok(u64::try_from(n).unwrap_or(0))
}

#[derive(Debug, FromRow)]
struct ChainRow {
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
    event_key: Option<String>,
    client: Option<String>,
    seq: Option<i64>,
    hash: Option<String>,
}

impl ChainRow {
    fn canonical(&self, seq: i64) -> Canonical<'_> {
        Canonical {
            seq,
            at: self.at,
            actor: &self.actor,
            action: &self.action,
            person: self.person.as_deref(),
            account: self.account.as_deref(),
            host: self.host.as_deref(),
            result: &self.result,
            reason: self.reason.as_deref(),
            detail: self.detail.as_deref(),
            event_key: self.event_key.as_deref(),
            client: self.client.as_deref(),
        }
    }

    fn broken(&self, problem: String) -> AuditBreak {
        AuditBreak {
            id: Some(self.id),
            at: Some(self.at),
            action: Some(self.action.clone()),
            seq: self.seq,
            problem,
        }
    }
}

/// Rows read at a time while verifying.
const VERIFY_BATCH: i64 = 1000;

/// Checks the whole chain, oldest first, and stops at the first row whose link does not hold:
/// a row changed after it was written, a row missing before it, a row outside the chain, or
/// newest rows cut off (the head records more rows than are left).
pub async fn verify(conn: &mut AnyConnection) -> StoreResult<AuditVerification> {
    let key = chain_key()?;
    let (head_seq, head_hash): (i64, String) =
        sqlx::query_as("SELECT seq, hash FROM audit_chain_head WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
    let mut report = AuditVerification {
        rows: 0,
        head_seq,
        head_hash: head_hash.clone(),
        broken: None,
    };
    let outside: Option<ChainRow> =
        sqlx::query_as(select_chain!("WHERE seq IS NULL ORDER BY id LIMIT 1"))
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(r) = outside {
        report.broken = Some(
            r.broken(
                "the row is not in the chain: it was written to the database directly, not by the \
             server"
                    .into(),
            ),
        );
        return Ok(report);
    }
    let mut prev = GENESIS.to_owned();
    let mut last: Option<ChainRow> = None;
    let mut expect = 1i64;
    loop {
        let rows: Vec<ChainRow> =
            sqlx::query_as(select_chain!("WHERE seq >= $1 ORDER BY seq LIMIT $2"))
                .bind(expect)
                .bind(VERIFY_BATCH)
                .fetch_all(&mut *conn)
                .await?;
        let done = rows.len() < usize::try_from(VERIFY_BATCH).unwrap_or(usize::MAX);
        for r in rows {
            let seq = r.seq.unwrap_or_default();
            if seq != expect {
                let gone = seq - expect;
                report.broken = Some(r.broken(format!(
                    "{gone} row(s) before this one are missing (seq {expect}{}): deleted from \
                     the database",
                    if gone > 1 {
                        format!(" to {}", seq - 1)
                    } else {
                        String::new()
                    }
                )));
                return Ok(report);
            }
            if r.hash.as_deref() != Some(r.canonical(seq).link(key, &prev).as_str()) {
                report.broken = Some(
                    r.broken(
                        "the row does not match its hash: it was changed after it was written (or \
                     the link before it was)"
                            .into(),
                    ),
                );
                return Ok(report);
            }
            prev = r.hash.clone().unwrap_or_default();
            report.rows += 1;
            expect += 1;
            last = Some(r);
        }
        if done {
            break;
        }
    }
    if expect - 1 != head_seq || prev != head_hash {
        let problem = format!(
            "the chain head records {head_seq} row(s) but the chain ends at seq {}: the newest \
             rows were deleted",
            expect - 1
        );
        report.broken = Some(match last {
            Some(r) => AuditBreak {
                problem: format!("{problem} (this is the last row left)"),
                ..r.broken(String::new())
            },
            None => AuditBreak {
                id: None,
                at: None,
                action: None,
                seq: None,
                problem,
            },
        });
    }
    Ok(report)
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
    client: Option<String>,
    seq: Option<i64>,
    hash: Option<String>,
}

pub const DEFAULT_LIMIT: u32 = 1000;
pub const MAX_LIMIT: u32 = 10_000;

/// Events matching every given filter, oldest first: the newest `limit` of them, or with
/// `after`, the first `limit` after that place in the chain.
pub async fn query(conn: &mut AnyConnection, q: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
    let limit = i64::from(q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT));
    // seq, not id, for a follower: rows commit in seq order (the chain head's lock), so a row
    // with a smaller seq can never appear after a larger one was read.
    macro_rules! select {
        ($order:literal) => {
            concat!(
                "SELECT id, at, actor, action, person, account, host, result, reason, detail, ",
                "client, seq, hash FROM audit ",
                "WHERE (CAST($1 AS TEXT) IS NULL OR person = $1) ",
                "AND (CAST($2 AS TEXT) IS NULL OR account = $2) ",
                "AND (CAST($3 AS TEXT) IS NULL OR host = $3) ",
                "AND at >= $4 AND at < $5 ",
                "AND (CAST($6 AS BIGINT) IS NULL OR seq > $6) ",
                "ORDER BY ",
                $order,
                " LIMIT $7"
            )
        };
    }
    let sql = if q.after.is_some() {
        select!("seq ASC")
    } else {
        select!("at DESC, id DESC")
    };
    let rows: Vec<AuditRow> = sqlx::query_as(sql)
        .bind(q.person.as_ref().map(|p| p.to_string()))
        .bind(q.account.as_ref().map(|a| a.to_string()))
        .bind(q.host.as_ref().map(|h| h.to_string()))
        .bind(q.since.unwrap_or(i64::MIN))
        .bind(q.until.unwrap_or(i64::MAX))
        .bind(q.after)
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
            client: r.client,
            seq: r.seq,
            hash: r.hash,
        })
        .collect();
    if q.after.is_none() {
        events.reverse();
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    async fn store() -> (tempfile::TempDir, Store) {
        let (dir, store) = Store::open_temp().await;
        load_chain_key(&store, &AtRestKey::generate())
            .await
            .unwrap();
        (dir, store)
    }

    async fn verified(store: &Store) -> AuditVerification {
        let mut tx = store.read().await.unwrap();
        verify(&mut tx).await.unwrap()
    }

    #[tokio::test]
    async fn concurrent_writers_extend_one_chain() {
        let (_dir, store) = store().await;
        let mut tasks = Vec::new();
        for i in 0..40 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = store.write().await.unwrap();
                let e = Event::new(i, "admin", "group.add", AuditResult::Ok)
                    .reason(format!("group g{i} created"))
                    .key(format!("k{}", i % 30));
                let stored = record(&mut tx, &e).await.unwrap();
                tx.commit().await.unwrap();
                stored
            }));
        }
        let mut stored = 0;
        for t in tasks {
            stored += u64::from(t.await.unwrap());
        }
        // Ten events repeated a key: stored once, without a gap in the chain.
        assert_eq!(stored, 30);
        let v = verified(&store).await;
        assert_eq!((v.rows, v.head_seq, v.broken), (30, 30, None));
    }

    #[tokio::test]
    async fn a_changed_row_is_named() {
        let (_dir, store) = store().await;
        for i in 0..3 {
            let mut tx = store.write().await.unwrap();
            let e = Event::new(100 + i, "admin", "person.add", AuditResult::Ok)
                .detail(serde_json::json!({ "n": i }));
            record(&mut tx, &e).await.unwrap();
            tx.commit().await.unwrap();
        }
        assert_eq!(verified(&store).await.broken, None);
        sqlx::query("UPDATE audit SET detail = '{\"n\":7}' WHERE seq = 2")
            .execute(store.pool())
            .await
            .unwrap();
        let b = verified(&store).await.broken.unwrap();
        assert_eq!(
            (b.seq, b.at, b.action.as_deref()),
            (Some(2), Some(101), Some("person.add"))
        );
        assert!(b.problem.contains("changed"), "{}", b.problem);
    }
}
