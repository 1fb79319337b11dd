//! The change log as the watches held open (`GET /v1/host/watch`) see it, kept in memory.
//!
//! One task per server process reads the rows appended to the log since its last look, when a
//! write request of this process has finished ([`ChangeFeed::poke`]) and every [`RECHECK`]
//! (writes of other server processes sharing the database). It keeps the recent rows in memory
//! and publishes the newest `seq` on a `watch` channel. A held watch costs a channel receiver and
//! its request: when woken it finds its host's changes in memory, so thousands of watches woken
//! by one change do not each query the database.

use std::collections::VecDeque;
use std::sync::RwLock;
use std::time::Duration;

use jit_proto::api::ChangeKind;
use tokio::sync::{Notify, watch};

use crate::api::State;
use crate::store::changes::{self, ChangeRow};

/// How often the log is looked at without a poke: the bound on how late a change written by
/// another server process is seen.
pub const RECHECK: Duration = Duration::from_millis(500);

/// How often old rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Rows kept in memory; a watch further behind reads the database.
const KEEP_ROWS: usize = 10_000;

/// Rows read by one look.
const PAGE: i64 = 1000;

#[derive(Default)]
struct Recent {
    /// Every row with a `seq` above this is in `rows` (and none at or below it).
    from: i64,
    rows: VecDeque<ChangeRow>,
}

pub struct ChangeFeed {
    latest: watch::Sender<i64>,
    poke: Notify,
    recent: RwLock<Option<Recent>>,
}

impl Default for ChangeFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl ChangeFeed {
    pub fn new() -> Self {
        Self {
            latest: watch::Sender::new(0),
            poke: Notify::new(),
            recent: RwLock::new(None),
        }
    }

    /// Something may have been written: look at the log now.
    pub fn poke(&self) {
        self.poke.notify_one();
    }

    /// A receiver that is told each time the newest `seq` known here moves.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.latest.subscribe()
    }

    /// The kinds for `host` after `after` (sorted, each once) and the `seq` reached, from the
    /// rows in memory; `None` when they do not reach back to `after`.
    pub fn since(&self, host: &str, after: i64) -> Option<(Vec<ChangeKind>, i64)> {
        let guard = self.recent.read().unwrap_or_else(|p| p.into_inner());
        let recent = guard.as_ref()?;
        if after < recent.from {
            return None;
        }
        let mut kinds: Vec<ChangeKind> = Vec::new();
        let mut reached = after;
        for r in recent.rows.iter().filter(|r| r.seq > after) {
            reached = r.seq;
            if r.host.as_deref().is_none_or(|h| h == host) {
                kinds.push(r.kind);
            }
        }
        kinds.sort();
        kinds.dedup();
        Some((kinds, reached))
    }

    /// Adds rows read after `last` (in order), and publishes the newest `seq`.
    fn extend(&self, last: i64, rows: Vec<ChangeRow>) {
        let newest = rows.last().map_or(last, |r| r.seq);
        {
            let mut guard = self.recent.write().unwrap_or_else(|p| p.into_inner());
            let recent = guard.get_or_insert_with(|| Recent {
                from: last,
                rows: VecDeque::new(),
            });
            recent.rows.extend(rows);
            while recent.rows.len() > KEEP_ROWS {
                if let Some(r) = recent.rows.pop_front() {
                    recent.from = r.seq;
                }
            }
        }
        self.latest.send_if_modified(|cur| {
            let newer = newest > *cur;
            if newer {
                *cur = newest;
            }
            newer
        });
    }
}

/// Follows the log forever (see the module comment), and prunes it now and then.
pub async fn run(state: State) {
    let mut failing = false;
    let mut pruned = tokio::time::Instant::now();
    // Where the rows in memory end; unknown until the first look.
    let mut last: Option<i64> = None;
    loop {
        let looked = async {
            let mut tx = state.store.read().await?;
            let after = match last {
                Some(l) => l,
                None => changes::latest(&mut tx).await?,
            };
            let rows = changes::rows_after(&mut tx, after, PAGE).await?;
            Ok::<_, crate::store::StoreError>((after, rows))
        }
        .await;
        let mut full = false;
        match looked {
            Ok((after, rows)) => {
                if failing {
                    tracing::info!("the change log can be read again");
                    failing = false;
                }
                full = rows.len() as i64 == PAGE;
                let newest = rows.last().map_or(after, |r| r.seq);
                state.changes.extend(after, rows);
                last = Some(newest);
            }
            Err(e) if !failing => {
                tracing::warn!(error = %e, "cannot read the change log; watching hosts wait");
                failing = true;
            }
            Err(_) => {}
        }
        if pruned.elapsed() >= PRUNE_EVERY {
            pruned = tokio::time::Instant::now();
            let result = async {
                let mut tx = state.store.write().await?;
                let n = changes::prune(&mut tx, crate::api::now()).await?;
                tx.commit().await?;
                Ok::<_, crate::store::StoreError>(n)
            }
            .await;
            match result {
                Ok(n) => tracing::debug!(rows = n, "pruned the change log"),
                Err(e) => tracing::warn!(error = %e, "cannot prune the change log"),
            }
        }
        if full {
            // More rows wait: read them at once.
            continue;
        }
        tokio::select! {
            _ = state.changes.poke.notified() => {}
            _ = tokio::time::sleep(RECHECK) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, host: Option<&str>, kind: ChangeKind) -> ChangeRow {
        ChangeRow {
            seq,
            host: host.map(str::to_owned),
            kind,
        }
    }

    #[test]
    fn watches_find_their_hosts_changes_in_memory() {
        let feed = ChangeFeed::new();
        assert_eq!(feed.since("web01", 0), None, "nothing read yet");
        let mut rx = feed.subscribe();
        feed.extend(
            4,
            vec![
                row(5, Some("web01"), ChangeKind::Reservations),
                row(6, None, ChangeKind::Accounts),
                row(7, Some("db01"), ChangeKind::Reservations),
            ],
        );
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), 7);
        assert_eq!(
            feed.since("web01", 4),
            Some((vec![ChangeKind::Accounts, ChangeKind::Reservations], 7))
        );
        assert_eq!(
            feed.since("db01", 5),
            Some((vec![ChangeKind::Accounts, ChangeKind::Reservations], 7))
        );
        assert_eq!(feed.since("web01", 6), Some((vec![], 7)));
        assert_eq!(feed.since("web01", 9), Some((vec![], 9)));
        // Before what memory holds: the database answers.
        assert_eq!(feed.since("web01", 3), None);
        // Nothing new: no wake-up.
        feed.extend(7, vec![]);
        assert!(!rx.has_changed().unwrap());
    }

    #[test]
    fn only_the_newest_rows_are_kept() {
        let feed = ChangeFeed::new();
        let rows = (1..=KEEP_ROWS as i64 + 5)
            .map(|s| row(s, None, ChangeKind::Keys))
            .collect();
        feed.extend(0, rows);
        assert_eq!(feed.since("web01", 4), None);
        assert_eq!(
            feed.since("web01", 5),
            Some((vec![ChangeKind::Keys], KEEP_ROWS as i64 + 5))
        );
    }
}
