//! Storage: one query layer (sqlx `Any`) over SQLite (the embedded default) and PostgreSQL.
//!
//! The SQL is portable: `$n` placeholders, Unix seconds in BIGINT, JSON text for lists,
//! `RETURNING` and `ON CONFLICT`. Correctness under concurrency comes from the database, never
//! from this process: a partial unique index keeps one active reservation per account and host,
//! and single use is a conditional `UPDATE … WHERE state = 'active'` whose row count decides.
//! On SQLite, this process's writes take turns on one writer connection and commit in groups
//! ([`group_commit`]); a group starts with `BEGIN IMMEDIATE`, so it queues on the write lock
//! (with a busy timeout, for other processes) instead of failing when it would upgrade a read
//! lock.
//!
//! On PostgreSQL several server processes (replicas) may share the database, so write
//! transactions run SERIALIZABLE: whatever interleaving the replicas' transactions take, the
//! outcome is one some serial order would give, and PostgreSQL aborts the transactions that
//! would break that with a serialization failure (SQLSTATE 40001, or 40P01 for a deadlock).
//! Such an abort is definite (nothing of the transaction was kept), so the whole request is run
//! again ([`crate::retry`]). A connection lost during COMMIT is not definite: the commit may or
//! may not have happened, so it is never retried and is reported as
//! [`StoreError::OutcomeUnknown`].

pub mod accounts;
pub mod audit;
pub mod changes;
pub mod group_commit;
pub mod groups;
pub mod hosts;
pub mod login_failures;
pub mod offline;
pub mod persons;
pub mod portal;
pub mod push;
pub mod reservations;
pub mod sessions;
pub mod ssh_keys;

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    #[error("the audit chain key is not loaded: the server loads it from its at-rest key at start")]
    NoChainKey,
    #[error(
        "unsupported database URL scheme {0:?}: use sqlite://PATH or \
         postgres://USER@HOST/DATABASE (postgresql:// works too)"
    )]
    Unsupported(String),
    /// Another transaction conflicted with this one and PostgreSQL undid it: nothing of it was
    /// kept, so running it again is safe.
    #[error("database transaction conflicted with a concurrent one and was undone: {0}")]
    Conflict(sqlx::Error),
    /// SQLite could not commit a group of writes ([`group_commit`]): all of it was undone.
    #[error(
        "the database could not commit the change, so it was not kept (check the disk and the \
         database file): {0}"
    )]
    GroupCommit(Arc<str>),
    /// The connection broke while the transaction committed: it may or may not have been kept.
    #[error(
        "the database connection failed while committing, so whether the change was kept is \
         unknown; check its effect before trying again: {0}"
    )]
    OutcomeUnknown(sqlx::Error),
}

impl StoreError {
    /// True when the failure was a serialization failure or deadlock that the database undid
    /// completely: the work may be done again.
    pub fn is_serialization_failure(&self) -> bool {
        match self {
            StoreError::Conflict(_) => true,
            StoreError::Db(e) => is_serialization_failure(e),
            _ => false,
        }
    }
}

/// SQLSTATE 40001 (serialization_failure) or 40P01 (deadlock_detected): PostgreSQL rolled the
/// transaction back entirely.
pub fn is_serialization_failure(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "40001" || c == "40P01")
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a database URL names, if this server supports it.
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time: this process's writers take turns on this connection,
    /// in order, and commit in groups ([`group_commit`]). Queuing here rather than in SQLite's
    /// busy handler, which polls the lock with sleeps of up to 100 ms, keeps the CPU busy while
    /// requests wait (docs/benchmarks.md). The busy timeout stays for writers of other
    /// processes (`jit-server` commands).
    sqlite_writers: Option<Arc<group_commit::Writers>>,
}

/// The WAL length (16,000 pages of 4 KiB) at which a SQLite writer checkpoints on its own
/// while [`Store::checkpoint_in_background`] runs; SQLite's default is 1,000.
const FALLBACK_CHECKPOINT: &str = "PRAGMA wal_autocheckpoint = 16000";

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
// The same versions and names as the SQLite ones, in PostgreSQL's types.
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Store {
    /// Opens the database at `url`, applying pending migrations.
    pub async fn open(url: &str) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let Some(backend) = Backend::of_url(url) else {
            // Only the scheme: the rest may hold a password.
            let scheme = url.split_once(':').map_or(url, |(s, _)| s);
            return Err(StoreError::Unsupported(scheme.to_owned()));
        };
        let options: AnyConnectOptions = url.parse()?;
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        // FULL: every commit syncs the WAL, so an acknowledged write (a consumed
                        // reservation, a burned TOTP step, an audit row) survives a power loss,
                        // not only a crash of this process (docs/security.md, Crash durability).
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        // A writer waits up to 30 s for the write lock before giving up.
                        conn.execute("PRAGMA busy_timeout = 30000").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        // On PostgreSQL the migrator holds an advisory lock while it runs, so replicas that
        // start together apply each migration once.
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        let sqlite_writers = match backend {
            // Out of the pool, so that readers never wait behind the writers for a connection.
            Backend::Sqlite => Some(group_commit::Writers::new(pool.acquire().await?.detach())),
            Backend::Postgres => None,
        };
        Ok(Self {
            pool,
            backend,
            sqlite_writers,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A transaction that will write. See the module comment for why SQLite needs IMMEDIATE
    /// and PostgreSQL SERIALIZABLE.
    pub async fn write(&self) -> StoreResult<WriteTx> {
        if let Some(writers) = &self.sqlite_writers {
            return Ok(WriteTx::Sqlite(writers.begin().await?));
        }
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL SERIALIZABLE")
            .await?;
        // Every write extends the audit chain, whose head is one row: writers queue here,
        // before the first query takes the transaction's snapshot (LOCK does not), so each sees
        // the one before it committed instead of failing serialization on the head, and the
        // chain and the change log grow in commit order.
        sqlx::raw_sql("LOCK TABLE audit_chain_head IN EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        Ok(WriteTx::Postgres(tx))
    }

    /// A read-only snapshot: every statement in it sees the database as of its first one (on
    /// SQLite a deferred transaction does; on PostgreSQL that takes REPEATABLE READ, as READ
    /// COMMITTED would show each statement another state).
    pub async fn read(&self) -> StoreResult<Transaction<'static, Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin().await?,
            Backend::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ")
                    .await?
            }
        })
    }

    /// Keeps SQLite's WAL short from a task of its own, so that no writer's COMMIT pays for it:
    /// every `every`, a passive checkpoint (which waits for no one) copies what was committed
    /// into the database file. The writers' own checkpoints then start only when the WAL is
    /// far longer, as a fallback. Nothing to do on PostgreSQL.
    pub async fn checkpoint_in_background(
        &self,
        every: Duration,
    ) -> StoreResult<Option<tokio::task::JoinHandle<()>>> {
        let Some(writers) = &self.sqlite_writers else {
            return Ok(None);
        };
        writers.set_up(FALLBACK_CHECKPOINT).await?;
        let pool = self.pool.clone();
        Ok(Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = pool.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
                    tracing::warn!(error = %e, "checkpoint of the SQLite WAL failed; will retry");
                }
            }
        })))
    }

    /// A fresh SQLite store in a temporary directory, for unit tests.
    #[cfg(test)]
    pub(crate) async fn open_temp() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("jit.db").display());
        let store = Store::open(&url).await.unwrap();
        (dir, store)
    }

    pub async fn close(&self) {
        if let Some(writers) = &self.sqlite_writers {
            writers.close().await;
        }
        self.pool.close().await;
    }
}

/// A write transaction ([`Store::write`]). It reads and writes as the connection it derefs to;
/// dropped without [`WriteTx::commit`], it is rolled back.
pub enum WriteTx {
    /// A turn on the SQLite writer connection, inside a group ([`group_commit`]).
    Sqlite(group_commit::Turn),
    Postgres(Transaction<'static, Any>),
}

impl WriteTx {
    /// Commits, and returns once the change is on the disk. A serialization failure at commit
    /// is [`StoreError::Conflict`] (undone, safe to run again); a PostgreSQL connection that
    /// fails without an answer is [`StoreError::OutcomeUnknown`] (never to be retried blindly).
    pub async fn commit(self) -> StoreResult<()> {
        self.commit_inner(true).await
    }

    /// Commits a transaction whose effect is idempotent (moving a last-used time forward):
    /// running its request again repeats it harmlessly, so it does not keep a later conflict
    /// in the same request from being run again ([`crate::retry`]).
    pub async fn commit_idempotent(self) -> StoreResult<()> {
        self.commit_inner(false).await
    }

    async fn commit_inner(self, counts: bool) -> StoreResult<()> {
        let result = match self {
            WriteTx::Sqlite(turn) => turn.commit().await,
            WriteTx::Postgres(tx) => match tx.commit().await {
                Ok(()) => Ok(()),
                Err(e) if is_serialization_failure(&e) => {
                    crate::retry::note_conflict();
                    Err(StoreError::Conflict(e))
                }
                // The server answered (a deferred constraint, say): the transaction is undone.
                Err(e @ sqlx::Error::Database(_)) => Err(StoreError::Db(e)),
                Err(e) => Err(StoreError::OutcomeUnknown(e)),
            },
        };
        if result.is_ok() && counts {
            crate::retry::note_commit();
        }
        result
    }

    /// Runs `work` in a savepoint: when it fails, its own changes are undone and the
    /// transaction goes on (PostgreSQL would otherwise abort all of it on an error). Returns
    /// what `work` returned.
    pub async fn savepoint<T, E>(
        &mut self,
        work: impl AsyncFnOnce(&mut AnyConnection) -> Result<T, E>,
    ) -> StoreResult<Result<T, E>> {
        match self {
            // The transaction is a savepoint of a group already, which sqlx does not know
            // about: name this one here.
            WriteTx::Sqlite(turn) => {
                let conn = turn.conn_mut();
                conn.execute("SAVEPOINT jit_part").await?;
                let r = work(&mut *conn).await;
                if r.is_err() {
                    conn.execute("ROLLBACK TO jit_part").await?;
                }
                conn.execute("RELEASE jit_part").await?;
                Ok(r)
            }
            WriteTx::Postgres(tx) => {
                let mut sp = sqlx::Connection::begin(&mut **tx).await?;
                let r = work(&mut sp).await;
                match r {
                    Ok(_) => sp.commit().await?,
                    Err(_) => sp.rollback().await?,
                }
                Ok(r)
            }
        }
    }

    /// Undoes everything (dropping it does the same, without waiting).
    pub async fn rollback(self) -> StoreResult<()> {
        match self {
            WriteTx::Sqlite(turn) => turn.rollback().await,
            WriteTx::Postgres(tx) => Ok(tx.rollback().await?),
        }
    }
}

impl std::ops::Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match self {
            WriteTx::Sqlite(turn) => turn.conn(),
            WriteTx::Postgres(tx) => tx,
        }
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            WriteTx::Sqlite(turn) => turn.conn_mut(),
            WriteTx::Postgres(tx) => tx,
        }
    }
}

/// True when `e` is a unique-constraint violation (someone else won the race).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// JSON text column helpers: lists and small records are stored as JSON.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub(crate) fn flag(v: i64) -> bool {
    v != 0
}
