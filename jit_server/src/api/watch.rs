//! `GET /v1/host/watch?after=SEQ` (host): a long poll on the change log. It answers at once with
//! the kinds of change for the calling host after `after` (and the `seq` to continue from), or
//! holds the request until one comes, for at most [`MAX_WATCH_SECS`]. A held request waits on
//! the process's [`ChangeFeed`](crate::change_feed::ChangeFeed), which keeps the recent rows in
//! memory, so only its first look reads the database; changes written by other server processes on the same database are seen
//! within [`RECHECK`](crate::change_feed::RECHECK).

use std::time::Duration;

use axum::Json;
use axum::extract::State as St;
use jit_proto::api::{HostChanges, HostWatchQuery, MAX_WATCH_SECS};

use super::auth::HostCaller;
use super::{Params, State, now};
use crate::error::ApiResult;
use crate::store::changes;

pub async fn watch(
    HostCaller(host): HostCaller,
    St(state): St<State>,
    Params(q): Params<HostWatchQuery>,
) -> ApiResult<Json<HostChanges>> {
    // Answered well inside the server's own bound on a request, however it is set.
    let bound = state
        .settings
        .connections
        .request_timeout
        .0
        .saturating_sub(Duration::from_secs(2));
    let hold = Duration::from_secs(u64::from(
        q.wait.unwrap_or(MAX_WATCH_SECS).min(MAX_WATCH_SECS),
    ))
    .min(bound);
    let until = tokio::time::Instant::now() + hold;
    // Subscribed before the first look, so a change committed after it still wakes this wait.
    let mut feed = state.changes.subscribe();
    let mut after = q.after.unwrap_or(0);
    // The first look reads the database; the looks after a wake-up read the feed's memory.
    let mut tx = state.store.read().await?;
    let latest = changes::latest(&mut tx).await?;
    // No cursor (the host's first contact), or one this log cannot continue from: a log pruned
    // past it, or another database.
    let oldest = changes::oldest(&mut tx).await?;
    if q.after.is_none() || after < 0 || after > latest || (oldest > 0 && after < oldest - 1) {
        return Ok(Json(HostChanges {
            seq: latest,
            reset: true,
            kinds: Vec::new(),
            now: now(),
        }));
    }
    let (mut kinds, reached) = changes::since(&mut tx, &host.name, after, latest).await?;
    // The wait below must not hold a database connection.
    drop(tx);
    after = reached;
    loop {
        if !kinds.is_empty() || tokio::time::Instant::now() >= until {
            return Ok(Json(HostChanges {
                seq: after,
                reset: false,
                kinds,
                now: now(),
            }));
        }
        tokio::select! {
            changed = feed.changed() => {
                if changed.is_err() {
                    // The server is stopping.
                    tokio::time::sleep_until(until).await;
                }
            }
            _ = tokio::time::sleep_until(until) => {}
        }
        let found = match state.changes.since(&host.name, after) {
            Some(found) => found,
            None => {
                // Further back than the feed keeps (a burst of changes): ask the database.
                let mut tx = state.store.read().await?;
                let latest = changes::latest(&mut tx).await?;
                changes::since(&mut tx, &host.name, after, latest).await?
            }
        };
        (kinds, after) = found;
    }
}
