//! Wrong login codes per source and host (migration 0008): what the per-source delays and the
//! guessing alert of [`crate::login::decision`] are read from.

use sqlx::AnyConnection;

use super::StoreResult;

/// Wrong codes from `source` on host `host_id` since `since` that no right code from there
/// forgave, and when the last of them came.
pub async fn of_source(
    conn: &mut AnyConnection,
    host_id: i64,
    source: &str,
    since: i64,
) -> StoreResult<(i64, Option<i64>)> {
    let row: (i64, Option<i64>) = sqlx::query_as(
        "SELECT COUNT(*), MAX(at) FROM login_failures \
         WHERE host_id = $1 AND source = $2 AND at >= $3 AND forgiven = 0",
    )
    .bind(host_id)
    .bind(source)
    .bind(since)
    .fetch_one(conn)
    .await?;
    Ok(row)
}

/// Wrong codes typed for person `person_id`'s reservations since `since`, from every source.
pub async fn of_person(conn: &mut AnyConnection, person_id: i64, since: i64) -> StoreResult<i64> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM login_failures WHERE person_id = $1 AND at >= $2")
            .bind(person_id)
            .bind(since)
            .fetch_one(conn)
            .await?;
    Ok(n)
}

/// Records a wrong code, and forgets the ones from before `window_start` of this source and
/// this person (they count for nothing any more).
pub async fn record(
    conn: &mut AnyConnection,
    host_id: i64,
    source: &str,
    person_id: i64,
    now: i64,
    window_start: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO login_failures (host_id, source, person_id, at) VALUES ($1, $2, $3, $4)",
    )
    .bind(host_id)
    .bind(source)
    .bind(person_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM login_failures WHERE ((host_id = $1 AND source = $2) OR person_id = $3) \
         AND at < $4",
    )
    .bind(host_id)
    .bind(source)
    .bind(person_id)
    .bind(window_start)
    .execute(conn)
    .await?;
    Ok(())
}

/// A right code came from `source` on host `host_id`: its wrong codes no longer delay it.
pub async fn forgive(conn: &mut AnyConnection, host_id: i64, source: &str) -> StoreResult<()> {
    sqlx::query("UPDATE login_failures SET forgiven = 1 WHERE host_id = $1 AND source = $2")
        .bind(host_id)
        .bind(source)
        .execute(conn)
        .await?;
    Ok(())
}
