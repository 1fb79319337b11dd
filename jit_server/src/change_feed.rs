//! The signal that the change log grew, for the watches held open (`GET /v1/host/watch`).
//!
//! One task per server process reads the log's newest `seq` when a write request of this process
//! has finished ([`ChangeFeed::poke`]) and every [`RECHECK`] (writes of other server processes
//! sharing the database), and publishes it on a `watch` channel. A held watch costs a channel
//! receiver and its request, nothing else: it reads the database only when the log grew.

use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::api::State;
use crate::store::changes;

/// How often the log is looked at without a poke: the bound on how late a change written by
/// another server process is seen.
pub const RECHECK: Duration = Duration::from_millis(500);

/// How often old rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

pub struct ChangeFeed {
    latest: watch::Sender<i64>,
    poke: Notify,
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
        }
    }

    /// Something may have been written: look at the log now.
    pub fn poke(&self) {
        self.poke.notify_one();
    }

    /// A receiver that is told each time the log's newest `seq` moves.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.latest.subscribe()
    }

    /// Publishes `seq` if it is newer than what was published.
    fn publish(&self, seq: i64) {
        self.latest.send_if_modified(|cur| {
            let newer = seq > *cur;
            if newer {
                *cur = seq;
            }
            newer
        });
    }
}

/// Follows the log forever (see the module comment), and prunes it now and then.
pub async fn run(state: State) {
    let mut failing = false;
    let mut pruned = tokio::time::Instant::now();
    loop {
        let looked = async {
            let mut tx = state.store.read().await?;
            changes::latest(&mut tx).await
        }
        .await;
        match looked {
            Ok(seq) => {
                if failing {
                    tracing::info!("the change log can be read again");
                    failing = false;
                }
                state.changes.publish(seq);
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
        tokio::select! {
            _ = state.changes.poke.notified() => {}
            _ = tokio::time::sleep(RECHECK) => {}
        }
    }
}
