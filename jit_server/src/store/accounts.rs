//! Shared accounts: their POSIX identity (for virtual ones), who may reserve them, where they
//! exist and for how long they can be held.

use jit_proto::api::{Account, FactorPolicy, OfflinePolicy, PosixIdentity};
use jit_proto::{AccountName, GroupName, Label};
use sqlx::{AnyConnection, FromRow};

use super::{StoreError, StoreResult, flag, from_json, to_json};

#[derive(Debug, Clone, FromRow)]
pub struct AccountRow {
    pub id: i64,
    pub name: String,
    pub posix: Option<String>,
    pub default_ttl_secs: i64,
    pub max_ttl_secs: i64,
    pub host_patterns: String,
    pub host_labels: String,
    pub offline: String,
    pub active: i64,
    pub created_at: i64,
    /// `any`, `totp` or `push`.
    pub factor: String,
    /// 1: hosts end a reservation's sessions when it ends.
    pub end_session_at_expiry: i64,
}

// A macro so every query stays a literal string (sqlx refuses dynamic SQL).
macro_rules! account_cols {
    () => {
        "id, name, posix, default_ttl_secs, max_ttl_secs, host_patterns, host_labels, \
                    offline, active, created_at, factor, end_session_at_expiry"
    };
}

impl AccountRow {
    pub fn is_active(&self) -> bool {
        flag(self.active)
    }

    pub fn posix(&self) -> StoreResult<Option<PosixIdentity>> {
        self.posix
            .as_deref()
            .map(|s| from_json("account posix", s))
            .transpose()
    }

    pub fn patterns(&self) -> StoreResult<Vec<String>> {
        from_json("account host patterns", &self.host_patterns)
    }

    pub fn labels(&self) -> StoreResult<Vec<Label>> {
        from_json("account host labels", &self.host_labels)
    }

    pub fn offline(&self) -> OfflinePolicy {
        match self.offline.as_str() {
            "cached" => OfflinePolicy::Cached,
            _ => OfflinePolicy::Deny,
        }
    }

    pub fn factor(&self) -> FactorPolicy {
        match self.factor.as_str() {
            "totp" => FactorPolicy::Totp,
            "push" => FactorPolicy::Push,
            _ => FactorPolicy::Any,
        }
    }

    pub fn ends_sessions(&self) -> bool {
        flag(self.end_session_at_expiry)
    }

    pub fn ttls(&self) -> (u32, u32) {
        let clamp = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
        (clamp(self.default_ttl_secs), clamp(self.max_ttl_secs))
    }

    pub fn to_api(&self, groups: Vec<GroupName>) -> StoreResult<Account> {
        let (default_ttl_secs, max_ttl_secs) = self.ttls();
        Ok(Account {
            name: AccountName::new(&self.name).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            posix: self.posix()?,
            groups,
            default_ttl_secs,
            max_ttl_secs,
            host_patterns: self.patterns()?,
            host_labels: self.labels()?,
            offline: self.offline(),
            active: self.is_active(),
            created_at: self.created_at,
            factor: self.factor(),
            end_session_at_expiry: self.ends_sessions(),
        })
    }
}

pub fn offline_str(p: OfflinePolicy) -> &'static str {
    match p {
        OfflinePolicy::Deny => "deny",
        OfflinePolicy::Cached => "cached",
    }
}

pub fn factor_str(f: FactorPolicy) -> &'static str {
    match f {
        FactorPolicy::Any => "any",
        FactorPolicy::Totp => "totp",
        FactorPolicy::Push => "push",
    }
}

pub struct NewAccountRow<'a> {
    pub name: &'a str,
    pub posix: Option<&'a PosixIdentity>,
    pub default_ttl_secs: u32,
    pub max_ttl_secs: u32,
    pub host_patterns: &'a [String],
    pub host_labels: &'a [Label],
    pub offline: OfflinePolicy,
    pub factor: FactorPolicy,
    pub end_session_at_expiry: bool,
}

pub async fn insert(
    conn: &mut AnyConnection,
    a: &NewAccountRow<'_>,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO accounts (name, posix, default_ttl_secs, max_ttl_secs, host_patterns, \
         host_labels, offline, active, created_at, factor, end_session_at_expiry) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, $10) RETURNING id",
    )
    .bind(a.name)
    .bind(a.posix.map(to_json))
    .bind(i64::from(a.default_ttl_secs))
    .bind(i64::from(a.max_ttl_secs))
    .bind(to_json(&a.host_patterns))
    .bind(to_json(&a.host_labels))
    .bind(offline_str(a.offline))
    .bind(now)
    .bind(factor_str(a.factor))
    .bind(i64::from(a.end_session_at_expiry))
    .fetch_one(conn)
    .await?;
    Ok(id)
}

pub async fn update(conn: &mut AnyConnection, row: &AccountRow) -> StoreResult<()> {
    sqlx::query(
        "UPDATE accounts SET default_ttl_secs = $1, max_ttl_secs = $2, host_patterns = $3, \
         host_labels = $4, offline = $5, active = $6, factor = $7, end_session_at_expiry = $8 \
         WHERE id = $9",
    )
    .bind(row.default_ttl_secs)
    .bind(row.max_ttl_secs)
    .bind(&row.host_patterns)
    .bind(&row.host_labels)
    .bind(&row.offline)
    .bind(row.active)
    .bind(&row.factor)
    .bind(row.end_session_at_expiry)
    .bind(row.id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn by_name(conn: &mut AnyConnection, name: &str) -> StoreResult<Option<AccountRow>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        account_cols!(),
        " FROM accounts WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(conn)
    .await?)
}

pub async fn by_id(conn: &mut AnyConnection, id: i64) -> StoreResult<Option<AccountRow>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        account_cols!(),
        " FROM accounts WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

pub async fn list(conn: &mut AnyConnection) -> StoreResult<Vec<AccountRow>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        account_cols!(),
        " FROM accounts ORDER BY name"
    ))
    .fetch_all(conn)
    .await?)
}

/// Any other account already using this uid (virtual accounts must not share a uid).
pub async fn uid_taken(conn: &mut AnyConnection, uid: u32) -> StoreResult<Option<String>> {
    for row in list(conn).await? {
        if row.posix()?.is_some_and(|p| p.uid == uid) {
            return Ok(Some(row.name));
        }
    }
    Ok(None)
}

pub async fn groups_of(conn: &mut AnyConnection, account_id: i64) -> StoreResult<Vec<GroupName>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT g.name FROM groups g JOIN account_groups ag ON ag.group_id = g.id \
         WHERE ag.account_id = $1 ORDER BY g.name",
    )
    .bind(account_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(n,)| GroupName::new(&n).map_err(|e| StoreError::Corrupt(e.to_string())))
        .collect()
}

pub async fn set_groups(
    conn: &mut AnyConnection,
    account_id: i64,
    group_ids: &[i64],
) -> StoreResult<()> {
    sqlx::query("DELETE FROM account_groups WHERE account_id = $1")
        .bind(account_id)
        .execute(&mut *conn)
        .await?;
    for gid in group_ids {
        sqlx::query(
            "INSERT INTO account_groups (account_id, group_id) VALUES ($1, $2) \
             ON CONFLICT (account_id, group_id) DO NOTHING",
        )
        .bind(account_id)
        .bind(gid)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
