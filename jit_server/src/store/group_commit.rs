//! SQLite's write transactions, committed in groups.
//!
//! SQLite has one writer, and with `synchronous = FULL` each COMMIT waits for the disk to flush
//! the WAL. One flush per request made the flush the bound on writes (docs/benchmarks.md). Here
//! the writes of requests that arrive together share one transaction and one flush:
//!
//! - This process's writers take turns on one connection, in arrival order (a fair mutex).
//! - The first writer of a group runs `BEGIN IMMEDIATE`; each writer's own work runs inside a
//!   `SAVEPOINT`, so it can be undone alone, and is released into the group when it commits
//!   (by the next writer, in the call that opens its own savepoint, or with the COMMIT).
//! - A writer that gives up its turn while no other writer is queued for it runs the group's
//!   COMMIT; otherwise it leaves the group open for the next one and waits. Either way
//!   [`WriteTx::commit`](super::WriteTx::commit) returns only once the group's COMMIT has
//!   reached the disk, with its outcome: an answer never reports a change that could still be
//!   lost.
//!
//! Each writer sees everything released before it (same connection, same transaction), so the
//! order of the group is a serial order, as with one transaction each. Readers on other
//! connections see a group only once it has committed, and no request has been answered about
//! it before then. A group whose COMMIT fails is undone whole and every member gets the error.
//!
//! Cancellation: a request may be dropped at any await (its client went away), and a statement
//! it sent may still run after it stopped waiting. So the steps that move the group's state
//! (taking the turn with `BEGIN` and `SAVEPOINT`, `RELEASE` or `ROLLBACK TO`, the COMMIT) each
//! run to the end in a task of their own, and a turn dropped in between hands its undo to a
//! spawned task: its savepoint is undone and the group is still committed for the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::{AnyConnection, Executor};
use tokio::sync::{Mutex, OwnedMutexGuard, watch};

use super::{StoreError, StoreResult};

/// A group is committed once it holds this many writes even if more writers are queued, so that
/// a steady stream of writers cannot keep the first ones waiting for ever.
const MAX_GROUP: usize = 64;

/// The outcome of a group's COMMIT, as its members learn it: None until then.
type Outcome = Option<Result<(), Arc<str>>>;

/// The writer connection and the group open on it.
pub(super) struct Writer {
    conn: AnyConnection,
    /// `BEGIN IMMEDIATE` has run and the group's COMMIT has not.
    open: bool,
    /// A writer's savepoint is open (a dropped writer's that no task could undo yet).
    in_savepoint: bool,
    /// The last writer's savepoint, whose work is the group's now, is still open: the next
    /// writer releases it in the same call that opens its own.
    release_pending: bool,
    /// Writes released into the open group.
    members: usize,
    /// Where the open group's members wait for its outcome.
    outcome: watch::Sender<Outcome>,
}

/// The writer connection, shared by this process's writers.
pub(super) struct Writers {
    writer: Arc<Mutex<Writer>>,
    /// Writers waiting for their turn: while there are some, a writer that finishes leaves the
    /// group open for them.
    queued: AtomicUsize,
}

impl Writers {
    pub(super) fn new(conn: AnyConnection) -> Arc<Self> {
        Arc::new(Self {
            writer: Arc::new(Mutex::new(Writer {
                conn,
                open: false,
                in_savepoint: false,
                release_pending: false,
                members: 0,
                outcome: watch::Sender::new(None),
            })),
            queued: AtomicUsize::new(0),
        })
    }

    /// Starts a write: waits for the turn, joins the open group (or opens one) and sets this
    /// writer's savepoint.
    pub(super) async fn begin(self: &Arc<Self>) -> StoreResult<Turn> {
        let writers = self.clone();
        to_the_end(async move {
            let mut turn = writers.take_turn().await?;
            if let Err(e) = turn.start().await {
                turn.give_up(false).await?;
                return Err(e);
            }
            Ok(turn)
        })
        .await
    }

    /// Waits for the turn, counted as queued while waiting.
    async fn take_turn(self: &Arc<Self>) -> StoreResult<Turn> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let guard = self.writer.clone().lock_owned().await;
        self.queued.fetch_sub(1, Ordering::SeqCst);
        let mut turn = Turn {
            guard: Some(guard),
            writers: self.clone(),
        };
        // A writer dropped where no task could be spawned left its savepoint open.
        if turn.writer().in_savepoint {
            turn.undo_savepoint().await?;
        }
        Ok(turn)
    }

    /// Runs a statement that sets the writer connection up (a PRAGMA), between groups.
    pub(super) async fn set_up(&self, pragma: &'static str) -> StoreResult<()> {
        let mut w = self.writer.lock().await;
        w.conn.execute(pragma).await?;
        Ok(())
    }

    #[cfg(test)]
    fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// Commits whatever is open, for a closing store.
    pub(super) async fn close(&self) {
        let mut w = self.writer.lock().await;
        if w.open {
            let _ = w.commit_group().await;
        }
    }
}

/// Runs `step` in a task of its own, so that it finishes even if the request awaiting it is
/// dropped (see the module comment).
async fn to_the_end<T: Send + 'static>(
    step: impl Future<Output = StoreResult<T>> + Send + 'static,
) -> StoreResult<T> {
    match tokio::spawn(step).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(StoreError::GroupCommit(
            "the server is shutting down; the write was not kept".into(),
        )),
    }
}

impl Writer {
    /// COMMITs the open group and tells its members the outcome.
    async fn commit_group(&mut self) -> Result<(), Arc<str>> {
        match self.conn.execute("COMMIT").await {
            Ok(_) => {
                self.end_group(Ok(()));
                Ok(())
            }
            // A failed COMMIT may leave the transaction open: undo it, so that the next group
            // starts clean. Its members learn that nothing of it was kept.
            Err(e) => Err(self.abandon_group(&e.to_string()).await),
        }
    }

    /// Undoes the open group, if any, and tells its members why.
    async fn abandon_group(&mut self, why: &str) -> Arc<str> {
        let _ = self.conn.execute("ROLLBACK").await;
        let why = Arc::<str>::from(why);
        self.end_group(Err(why.clone()));
        why
    }

    fn end_group(&mut self, result: Result<(), Arc<str>>) {
        self.open = false;
        self.release_pending = false;
        self.members = 0;
        let members = std::mem::replace(&mut self.outcome, watch::Sender::new(None));
        members.send_replace(Some(result));
    }
}

/// One writer's turn on the writer connection. Dropped without [`Turn::commit`] or
/// [`Turn::rollback`], its work is undone by a spawned task.
pub struct Turn {
    guard: Option<OwnedMutexGuard<Writer>>,
    writers: Arc<Writers>,
}

impl Turn {
    fn writer(&mut self) -> &mut Writer {
        self.guard
            .as_mut()
            .expect("a turn holds the writer until it ends")
    }

    pub(super) fn conn(&self) -> &AnyConnection {
        &self.guard.as_ref().expect("a turn holds the writer").conn
    }

    pub(super) fn conn_mut(&mut self) -> &mut AnyConnection {
        &mut self.writer().conn
    }

    /// Each statement is a round trip to the thread sqlx runs the connection on, which costs
    /// more than SQLite's own work (docs/benchmarks.md): the group's first writer opens it
    /// and its own savepoint in one call, the next ones release the last writer's savepoint
    /// and open their own in one.
    async fn start(&mut self) -> StoreResult<()> {
        let w = self.writer();
        if w.open && w.release_pending {
            w.release_pending = false;
            if let Err(e) = sqlx::raw_sql("RELEASE jit_write; SAVEPOINT jit_write")
                .execute(&mut w.conn)
                .await
            {
                // The group is not in a known state: undo it, and its members learn so.
                w.abandon_group(&e.to_string()).await;
                return Err(e.into());
            }
        } else if w.open {
            w.conn.execute("SAVEPOINT jit_write").await?;
        } else if let Err(e) = sqlx::raw_sql("BEGIN IMMEDIATE; SAVEPOINT jit_write")
            .execute(&mut w.conn)
            .await
        {
            // Whether BEGIN ran is unknown: leave no transaction behind.
            let _ = w.conn.execute("ROLLBACK").await;
            return Err(e.into());
        } else {
            w.open = true;
        }
        w.in_savepoint = true;
        Ok(())
    }

    async fn undo_savepoint(&mut self) -> StoreResult<()> {
        let w = self.writer();
        w.in_savepoint = false;
        let undone = sqlx::raw_sql("ROLLBACK TO jit_write; RELEASE jit_write")
            .execute(&mut w.conn)
            .await;
        if let Err(e) = undone {
            // The transaction is not the one this writer knows (SQLite may have undone it
            // after an I/O error): undo whatever is left, so that the next group starts clean.
            w.abandon_group(&e.to_string()).await;
            return Err(e.into());
        }
        Ok(())
    }

    /// Releases this writer's work into the group and returns once the group has committed.
    pub(super) async fn commit(self) -> StoreResult<()> {
        to_the_end(self.release()).await
    }

    async fn release(mut self) -> StoreResult<()> {
        // No statement: its work joins the group as it is, and the next writer releases the
        // savepoint in the call that opens its own, or the group's COMMIT (which commits open
        // savepoints too) takes it along.
        let w = self.writer();
        w.in_savepoint = false;
        w.release_pending = true;
        w.members += 1;
        self.give_up(true).await
    }

    /// Undoes this writer's work, and only its.
    pub(super) async fn rollback(self) -> StoreResult<()> {
        to_the_end(self.undo()).await
    }

    async fn undo(mut self) -> StoreResult<()> {
        let undone = self.undo_savepoint().await;
        self.give_up(false).await?;
        undone
    }

    /// Ends the turn. With no writer queued (or a full group) this one COMMITs the group;
    /// otherwise the next writer will. A `member` waits for the group's outcome.
    async fn give_up(mut self, member: bool) -> StoreResult<()> {
        let mut guard = self.guard.take().expect("a turn ends once");
        let mut outcome = guard.outcome.subscribe();
        let last = self.writers.queued.load(Ordering::SeqCst) == 0 || guard.members >= MAX_GROUP;
        if guard.open && last {
            let result = guard.commit_group().await;
            drop(guard);
            return match (member, result) {
                (true, Err(e)) => Err(StoreError::GroupCommit(e)),
                _ => Ok(()),
            };
        }
        drop(guard);
        if !member {
            return Ok(());
        }
        match outcome.wait_for(Option::is_some).await.as_deref() {
            Ok(Some(Ok(()))) => Ok(()),
            Ok(Some(Err(e))) => Err(StoreError::GroupCommit(e.clone())),
            // The writer connection went away with the group uncommitted.
            _ => Err(StoreError::GroupCommit(
                "the writer connection closed before committing".into(),
            )),
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let Some(guard) = self.guard.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                let turn = Turn {
                    guard: Some(guard),
                    writers: self.writers.clone(),
                };
                rt.spawn(turn.undo());
            }
            // No runtime to undo it now: the next writer finds the savepoint open and undoes it
            // first ([`Writers::take_turn`]).
            Err(_) => drop(guard),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::Executor;

    use crate::store::{Store, StoreError};

    async fn store() -> (tempfile::TempDir, Store) {
        let (dir, store) = Store::open_temp().await;
        store
            .pool()
            .execute("CREATE TABLE t (x BIGINT NOT NULL)")
            .await
            .unwrap();
        (dir, store)
    }

    async fn insert(store: &Store, x: i64) -> crate::store::WriteTx {
        let mut tx = store.write().await.unwrap();
        sqlx::query("INSERT INTO t (x) VALUES ($1)")
            .bind(x)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx
    }

    /// The rows committed, as a reader on another connection sees them.
    async fn rows(store: &Store) -> Vec<i64> {
        sqlx::query_scalar("SELECT x FROM t ORDER BY x")
            .fetch_all(store.pool())
            .await
            .unwrap()
    }

    async fn until_queued(store: &Store, n: usize) {
        let writers = store.sqlite_writers.as_ref().unwrap();
        while writers.queued() != n {
            tokio::task::yield_now().await;
        }
    }

    /// Nothing here should take long; a hang (a group nobody commits) fails instead of
    /// blocking the suite.
    async fn soon<T>(f: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(30), f)
            .await
            .expect("a group of writes was never committed")
    }

    #[tokio::test]
    async fn a_commit_answers_once_its_group_is_committed_with_the_writers_queued_behind_it() {
        let (_dir, store) = store().await;
        let first = insert(&store, 1).await;
        let (has_turn, mut told) = tokio::sync::mpsc::channel(1);
        let (go, wait_go) = tokio::sync::oneshot::channel::<()>();
        let second = tokio::spawn({
            let store = store.clone();
            async move {
                let tx = insert(&store, 2).await;
                has_turn.send(()).await.unwrap();
                wait_go.await.unwrap();
                tx.commit().await
            }
        });
        until_queued(&store, 1).await;
        // A writer is queued, so the first leaves the group open for it and waits.
        let first = tokio::spawn(first.commit());
        soon(told.recv()).await.unwrap();
        assert!(!first.is_finished(), "answered before its group committed");
        assert_eq!(
            rows(&store).await,
            Vec::<i64>::new(),
            "a reader saw an uncommitted group"
        );
        go.send(()).unwrap();
        soon(second).await.unwrap().unwrap();
        soon(first).await.unwrap().unwrap();
        assert_eq!(rows(&store).await, vec![1, 2]);
    }

    #[tokio::test]
    async fn a_writer_rolled_back_or_dropped_undoes_its_own_work_and_no_one_elses() {
        let (_dir, store) = store().await;
        let first = insert(&store, 1).await;
        let dropped = tokio::spawn({
            let store = store.clone();
            async move {
                let mut tx = insert(&store, 2).await;
                sqlx::query("INSERT INTO t (x) VALUES (3)")
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                drop(tx);
            }
        });
        until_queued(&store, 1).await;
        // Released into a group the dropped writer joins next.
        let first = tokio::spawn(first.commit());
        soon(dropped).await.unwrap();
        soon(first).await.unwrap().unwrap();
        assert_eq!(rows(&store).await, vec![1]);

        let tx = insert(&store, 4).await;
        tx.rollback().await.unwrap();
        soon(insert(&store, 5).await.commit()).await.unwrap();
        assert_eq!(rows(&store).await, vec![1, 5]);
    }

    #[tokio::test]
    async fn a_request_dropped_while_queued_leaves_nothing_and_strands_no_one() {
        let (_dir, store) = store().await;
        let first = insert(&store, 1).await;
        let queued = tokio::spawn({
            let store = store.clone();
            async move { insert(&store, 2).await.commit().await }
        });
        until_queued(&store, 1).await;
        queued.abort();
        assert!(soon(queued).await.unwrap_err().is_cancelled());
        // Its turn still comes (after this commit, which may leave the group open for it); it
        // finds no one to write for and gives the turn up, committing the group.
        soon(first.commit()).await.unwrap();
        soon(insert(&store, 3).await.commit()).await.unwrap();
        assert_eq!(rows(&store).await, vec![1, 3]);
    }

    #[tokio::test]
    async fn a_full_database_fails_writes_and_an_answer_says_ok_only_for_a_kept_write() {
        let (_dir, store) = store().await;
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(store.pool())
            .await
            .unwrap();
        let cap = |pages: i64| {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "PRAGMA max_page_count = {pages}"
            )))
        };
        // As a full disk would, but only for the writer connection.
        let mut tx = store.write().await.unwrap();
        cap(pages + 4).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();

        let first = insert(&store, 1).await;
        let too_big = tokio::spawn({
            let store = store.clone();
            async move {
                let mut tx = store.write().await.unwrap();
                sqlx::query(
                    "INSERT INTO t (x) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL \
                     SELECT i + 1 FROM n WHERE i < 100000) SELECT i FROM n",
                )
                .execute(&mut *tx)
                .await
                .map(|_| ())
                // Dropped here: its part is undone by a task.
            }
        });
        until_queued(&store, 1).await;
        // Left open for the writer that fills the database.
        let first = tokio::spawn(first.commit());
        let err = soon(too_big).await.unwrap().unwrap_err();
        assert!(err.to_string().contains("full"), "{err}");
        let answered = soon(first).await.unwrap();
        let kept = rows(&store).await;
        // SQLite may undo the failed statement only, or the whole transaction with the first
        // writer's row: either way the answer must say what happened.
        assert_eq!(
            answered.is_ok(),
            kept == vec![1],
            "{answered:?}, kept {kept:?}"
        );
        assert!(
            kept.len() <= 1,
            "part of the failed write was kept: {kept:?}"
        );

        // Space again: the writer connection is clean and the next write is kept.
        let mut tx = store.write().await.unwrap();
        cap(1_000_000).execute(&mut *tx).await.unwrap();
        sqlx::query("INSERT INTO t (x) VALUES (7)")
            .execute(&mut *tx)
            .await
            .unwrap();
        soon(tx.commit()).await.unwrap();
        assert!(rows(&store).await.contains(&7));
    }

    #[tokio::test]
    async fn a_group_whose_commit_fails_is_undone_whole_and_each_writer_is_told() {
        let (_dir, store) = store().await;
        // A constraint checked only at COMMIT (the server's schema has none) makes the COMMIT
        // itself fail, as a failing disk would.
        store
            .pool()
            .execute(
                "CREATE TABLE parent (id BIGINT PRIMARY KEY); CREATE TABLE child (parent BIGINT \
                 REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
            )
            .await
            .unwrap();
        let first = insert(&store, 1).await;
        let second = tokio::spawn({
            let store = store.clone();
            async move {
                let mut tx = store.write().await.unwrap();
                sqlx::query("INSERT INTO child (parent) VALUES (42)")
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await
            }
        });
        until_queued(&store, 1).await;
        let first = tokio::spawn(first.commit());
        for answer in [soon(first).await.unwrap(), soon(second).await.unwrap()] {
            let err = answer.expect_err("a write of a group that was undone was answered ok");
            assert!(matches!(err, StoreError::GroupCommit(_)), "{err}");
            assert!(err.to_string().contains("was not kept"), "{err}");
            assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
        }
        assert_eq!(rows(&store).await, Vec::<i64>::new());
        // The next group starts clean.
        soon(insert(&store, 2).await.commit()).await.unwrap();
        assert_eq!(rows(&store).await, vec![2]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writers_cancelled_anywhere_never_strand_the_others() {
        let (_dir, store) = store().await;
        let mut tasks = Vec::new();
        for x in 0..120_i64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let tx = insert(&store, x).await;
                for _ in 0..(x % 4) {
                    tokio::task::yield_now().await;
                }
                tx.commit().await.map(|()| x)
            }));
        }
        // Cancel every third writer, wherever it is: queued, holding its turn, or waiting for
        // its group.
        for (i, t) in tasks.iter().enumerate() {
            if i % 3 == 0 {
                t.abort();
            }
            tokio::task::yield_now().await;
        }
        let mut committed = Vec::new();
        for t in tasks {
            match soon(t).await {
                Ok(answer) => committed.push(answer.expect("a committed write")),
                Err(e) => assert!(e.is_cancelled()),
            }
        }
        let kept = rows(&store).await;
        for x in &committed {
            assert!(
                kept.contains(x),
                "{x} was answered committed but is not kept"
            );
        }
        // The writer connection is free and clean for the next.
        soon(insert(&store, 1000).await.commit()).await.unwrap();
        assert_eq!(rows(&store).await.len(), kept.len() + 1);
    }
}
