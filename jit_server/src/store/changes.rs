//! The change log: what hosts watch (`GET /v1/host/watch`) to learn within seconds that
//! something they keep (the NSS cache, offline grants, ssh keys, the reservations behind open
//! sessions) is out of date. A row says only the kind of change and the host it is for (or every
//! host); hosts then fetch the facts through the usual host calls, so the log never carries more
//! than those calls would show.
//!
//! Rows are appended in the transaction of the write they describe, so a change is seen exactly
//! when the write is. Most writes are audited, and the audit log's [`audit::record`] appends the
//! change of an audited action ([`kind_of`]); the few unaudited writes (offline grants) call
//! [`append`] themselves.
//!
//! A watcher's cursor is a `seq`: it relies on rows becoming visible in `seq` order. SQLite has
//! one writer at a time, so they do; on PostgreSQL every write transaction first takes the audit
//! chain's table lock ([`Store::write`](super::Store::write)), so writers, and with them the
//! `seq`s they draw, follow one another in commit order there too.
//!
//! [`audit::record`]: super::audit::record

use jit_proto::api::{AuditResult, ChangeKind};
use sqlx::AnyConnection;

use super::StoreResult;
use super::audit::Event;

/// How long rows are kept. A host whose cursor is older refreshes everything.
pub const KEEP_SECS: i64 = 24 * 3600;

/// Most rows read by one look.
const MAX_ROWS: i64 = 1000;

/// Which hosts a change is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope<'a> {
    All,
    Host(&'a str),
}

impl Scope<'_> {
    /// The host column of the change's row: NULL for every host.
    pub fn host(&self) -> Option<&str> {
        match self {
            Scope::All => None,
            Scope::Host(h) => Some(h),
        }
    }
}

/// The change row of an audited event, run by [`super::audit::record`] in the same call as the
/// audit row on SQLite: its parameters follow the audit row's (`$1` is the event's time).
macro_rules! insert_after_audit {
    () => {
        "INSERT INTO changes (host, kind, at) VALUES ($14, $15, $1)"
    };
}
pub(crate) use insert_after_audit;

/// The change an audited event stands for, if any, and whom it is for.
pub fn kind_of(e: &Event) -> Option<(ChangeKind, Scope<'_>)> {
    if e.result != AuditResult::Ok {
        return None;
    }
    let host = || e.host.as_deref().map_or(Scope::All, Scope::Host);
    let kind = match e.action {
        "reservation.create"
        | "reservation.release"
        | "reservation.force_release"
        | "reservation.expire"
        | "reservation.extend"
        // Consumed by a login (online, or reported after an offline one).
        | "login.verify"
        | "login.offline" => return Some((ChangeKind::Reservations, host())),
        "account.add" | "account.change" | "account.disable" | "account.enable" => {
            ChangeKind::Accounts
        }
        "person.disable" | "person.enable" => ChangeKind::Persons,
        "key.add" | "key.remove" => ChangeKind::Keys,
        "group.add_member" | "group.remove_member" => ChangeKind::Groups,
        "host.disable" | "host.enable" | "host.rejoin" => {
            return Some((ChangeKind::Host, host()));
        }
        _ => return None,
    };
    Some((kind, Scope::All))
}

/// Appends a change of `kind` for `scope`.
pub async fn append(
    conn: &mut AnyConnection,
    kind: ChangeKind,
    scope: Scope<'_>,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO changes (host, kind, at) VALUES ($1, $2, $3)")
        .bind(scope.host())
        .bind(kind.as_str())
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Appends a change of `kind` for the host of reservation `reservation_id`.
pub async fn append_for_reservation(
    conn: &mut AnyConnection,
    kind: ChangeKind,
    reservation_id: i64,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO changes (host, kind, at) SELECT h.name, $1, $2 FROM reservations r \
         JOIN hosts h ON h.id = r.host_id WHERE r.id = $3",
    )
    .bind(kind.as_str())
    .bind(now)
    .bind(reservation_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The newest `seq` (0 when the log is empty).
pub async fn latest(conn: &mut AnyConnection) -> StoreResult<i64> {
    let (seq,): (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM changes")
        .fetch_one(conn)
        .await?;
    Ok(seq.unwrap_or(0))
}

/// The oldest `seq` kept (0 when the log is empty).
pub async fn oldest(conn: &mut AnyConnection) -> StoreResult<i64> {
    let (seq,): (Option<i64>,) = sqlx::query_as("SELECT MIN(seq) FROM changes")
        .fetch_one(conn)
        .await?;
    Ok(seq.unwrap_or(0))
}

/// One row of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRow {
    pub seq: i64,
    /// `None`: for every host.
    pub host: Option<String>,
    pub kind: ChangeKind,
}

/// The rows after `after`, oldest first, at most `limit`.
pub async fn rows_after(
    conn: &mut AnyConnection,
    after: i64,
    limit: i64,
) -> StoreResult<Vec<ChangeRow>> {
    let rows: Vec<(i64, Option<String>, String)> =
        sqlx::query_as("SELECT seq, host, kind FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(seq, host, kind)| ChangeRow {
            seq,
            host,
            kind: ChangeKind::parse(&kind),
        })
        .collect())
}

/// What the log holds for `host` after `after`, up to `upto`: the kinds (sorted, each once) and
/// the last `seq` looked at.
pub async fn since(
    conn: &mut AnyConnection,
    host: &str,
    after: i64,
    upto: i64,
) -> StoreResult<(Vec<ChangeKind>, i64)> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT seq, kind FROM changes WHERE seq > $1 AND seq <= $2 \
         AND (host IS NULL OR host = $3) ORDER BY seq LIMIT $4",
    )
    .bind(after)
    .bind(upto)
    .bind(host)
    .bind(MAX_ROWS)
    .fetch_all(conn)
    .await?;
    // A full page may stop short of `upto`: continue from its last row next time.
    let reached = if rows.len() as i64 == MAX_ROWS {
        rows.last().map_or(upto, |r| r.0)
    } else {
        upto
    };
    let mut kinds: Vec<ChangeKind> = rows.iter().map(|r| ChangeKind::parse(&r.1)).collect();
    kinds.sort();
    kinds.dedup();
    Ok((kinds, reached))
}

/// Deletes rows older than [`KEEP_SECS`], always keeping the newest (so `seq` never goes back).
pub async fn prune(conn: &mut AnyConnection, now: i64) -> StoreResult<u64> {
    let r =
        sqlx::query("DELETE FROM changes WHERE at < $1 AND seq < (SELECT MAX(seq) FROM changes)")
            .bind(now - KEEP_SECS)
            .execute(conn)
            .await?;
    Ok(r.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::audit;

    async fn store() -> (tempfile::TempDir, Store) {
        Store::open_temp().await
    }

    fn event(action: &'static str, result: AuditResult) -> Event {
        Event::new(100, "admin", action, result)
    }

    #[test]
    fn audited_actions_map_to_kinds_and_hosts() {
        let e = event("reservation.force_release", AuditResult::Ok).host("web01");
        assert_eq!(
            kind_of(&e),
            Some((ChangeKind::Reservations, Scope::Host("web01")))
        );
        let consumed = event("login.verify", AuditResult::Ok).host("web01");
        assert_eq!(
            kind_of(&consumed),
            Some((ChangeKind::Reservations, Scope::Host("web01")))
        );
        // A refused login changes nothing a host keeps.
        assert_eq!(kind_of(&event("login.verify", AuditResult::Denied)), None);
        assert_eq!(kind_of(&event("login.begin", AuditResult::Ok)), None);
        assert_eq!(
            kind_of(&event("account.disable", AuditResult::Ok).account("admin")),
            Some((ChangeKind::Accounts, Scope::All))
        );
        assert_eq!(
            kind_of(&event("person.disable", AuditResult::Ok)),
            Some((ChangeKind::Persons, Scope::All))
        );
        assert_eq!(
            kind_of(&event("group.remove_member", AuditResult::Ok)),
            Some((ChangeKind::Groups, Scope::All))
        );
        assert_eq!(
            kind_of(&event("key.add", AuditResult::Ok)),
            Some((ChangeKind::Keys, Scope::All))
        );
    }

    #[tokio::test]
    async fn a_host_sees_its_own_changes_and_those_for_all() {
        let (_dir, store) = store().await;
        let mut tx = store.write().await.unwrap();
        assert_eq!(latest(&mut tx).await.unwrap(), 0);
        // Through the audit log, in the write's transaction.
        let e = event("reservation.create", AuditResult::Ok).host("web01");
        audit::record(&mut tx, &e).await.unwrap();
        append(&mut tx, ChangeKind::Keys, Scope::All, 100)
            .await
            .unwrap();
        append(&mut tx, ChangeKind::Reservations, Scope::Host("db01"), 100)
            .await
            .unwrap();
        append(&mut tx, ChangeKind::Keys, Scope::All, 100)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        let end = latest(&mut tx).await.unwrap();
        assert_eq!(end, 4);
        let (kinds, reached) = since(&mut tx, "web01", 0, end).await.unwrap();
        assert_eq!(kinds, vec![ChangeKind::Reservations, ChangeKind::Keys]);
        assert_eq!(reached, end);
        let (kinds, _) = since(&mut tx, "db01", 1, end).await.unwrap();
        assert_eq!(kinds, vec![ChangeKind::Reservations, ChangeKind::Keys]);
        let (kinds, _) = since(&mut tx, "web01", 2, end).await.unwrap();
        assert_eq!(kinds, vec![ChangeKind::Keys]);
        // Nothing past the newest row, nor past `upto`.
        assert!(
            since(&mut tx, "web01", end, end)
                .await
                .unwrap()
                .0
                .is_empty()
        );
        assert!(since(&mut tx, "web01", 2, 3).await.unwrap().0.is_empty());
    }

    #[tokio::test]
    async fn pruning_keeps_the_newest_row_so_seq_never_goes_back() {
        let (_dir, store) = store().await;
        let mut tx = store.write().await.unwrap();
        for at in [10, 20, 30] {
            append(&mut tx, ChangeKind::Accounts, Scope::All, at)
                .await
                .unwrap();
        }
        let gone = prune(&mut tx, 1_000_000).await.unwrap();
        assert_eq!(gone, 2);
        assert_eq!(latest(&mut tx).await.unwrap(), 3);
        assert_eq!(oldest(&mut tx).await.unwrap(), 3);
        append(&mut tx, ChangeKind::Accounts, Scope::All, 40)
            .await
            .unwrap();
        assert_eq!(latest(&mut tx).await.unwrap(), 4);
        tx.commit().await.unwrap();
    }
}
