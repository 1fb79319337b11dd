//! Groups of persons, and their members.

use sqlx::AnyConnection;

use super::StoreResult;

pub async fn insert(conn: &mut AnyConnection, name: &str, now: i64) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) =
        sqlx::query_as("INSERT INTO groups (name, created_at) VALUES ($1, $2) RETURNING id")
            .bind(name)
            .bind(now)
            .fetch_one(conn)
            .await?;
    Ok(id)
}

pub async fn id_by_name(conn: &mut AnyConnection, name: &str) -> StoreResult<Option<i64>> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM groups WHERE name = $1")
        .bind(name)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|(id,)| id))
}

pub async fn names(conn: &mut AnyConnection) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT name FROM groups ORDER BY name")
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(|(n,)| n).collect())
}

pub async fn members(conn: &mut AnyConnection, group_id: i64) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT p.name FROM persons p JOIN group_members m ON m.person_id = p.id \
         WHERE m.group_id = $1 ORDER BY p.name",
    )
    .bind(group_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(n,)| n).collect())
}

/// Adds a member; false if the person already was one.
pub async fn add_member(
    conn: &mut AnyConnection,
    group_id: i64,
    person_id: i64,
) -> StoreResult<bool> {
    let r = sqlx::query(
        "INSERT INTO group_members (group_id, person_id) VALUES ($1, $2) \
         ON CONFLICT (group_id, person_id) DO NOTHING",
    )
    .bind(group_id)
    .bind(person_id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Removes a member; false if the person was not one.
pub async fn remove_member(
    conn: &mut AnyConnection,
    group_id: i64,
    person_id: i64,
) -> StoreResult<bool> {
    let r = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND person_id = $2")
        .bind(group_id)
        .bind(person_id)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Is the person in at least one of the account's groups?
pub async fn person_may_reserve(
    conn: &mut AnyConnection,
    person_id: i64,
    account_id: i64,
) -> StoreResult<bool> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT 1 FROM account_groups ag JOIN group_members m ON m.group_id = ag.group_id \
         WHERE ag.account_id = $1 AND m.person_id = $2 LIMIT 1",
    )
    .bind(account_id)
    .bind(person_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}
