//! Storage: one query layer (sqlx `Any`) over SQLite now and PostgreSQL next.
//!
//! The SQL is portable: `$n` placeholders, Unix seconds in BIGINT, JSON text for lists,
//! `RETURNING` and `ON CONFLICT`. Correctness under concurrency comes from the database, never
//! from this process: a partial unique index keeps one active reservation per account and host,
//! and single use is a conditional `UPDATE … WHERE state = 'active'` whose row count decides.
//! On SQLite, write transactions start with `BEGIN IMMEDIATE` so they queue on the write lock
//! (with a busy timeout) instead of failing when they would upgrade a read lock.

pub mod accounts;
pub mod audit;
pub mod groups;
pub mod hosts;
pub mod offline;
pub mod persons;
pub mod portal;
pub mod push;
pub mod reservations;
pub mod sessions;
pub mod ssh_keys;

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor, Transaction};

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
    #[error("unsupported database URL {0:?}: use sqlite://PATH (postgres:// is planned)")]
    Unsupported(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

impl Store {
    /// Opens the database at `url`, applying pending migrations.
    pub async fn open(url: &str) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::Unsupported(url.to_owned()));
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
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
        }
        Ok(Self { pool, backend })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A transaction that will write. See the module comment for why SQLite needs IMMEDIATE.
    pub async fn write(&self) -> StoreResult<Transaction<'static, Any>> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
        };
        Ok(tx)
    }

    /// A read-only snapshot.
    pub async fn read(&self) -> StoreResult<Transaction<'static, Any>> {
        Ok(self.pool.begin().await?)
    }

    pub async fn close(&self) {
        self.pool.close().await;
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
