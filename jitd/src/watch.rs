//! Keeps one watch open on the server's change log (`GET /v1/host/watch`) and, when something
//! this host keeps is out of date, wakes the loop that refreshes it: the NSS cache (the host's
//! list of shared accounts), the offline grants, the ssh keys, and the reservations behind the
//! open sessions (so a force-released reservation ends its session within seconds, not at the
//! next `refresh_interval`).
//!
//! The watch runs in its own task and never blocks a login: the refresh loops it wakes still run
//! every `refresh_interval` without it, so a server without the watch, or one that cannot be
//! reached, only makes hosts learn of changes later. An outage is logged once, when it starts,
//! and once when it ends; in between the watch is tried again with a growing pause.

use std::sync::Arc;
use std::time::Duration;

use jit_proto::api::{ChangeKind, HostChanges, MAX_WATCH_SECS};
use tokio::sync::Notify;

use crate::sessions::Sessions;
use crate::upstream::Server;

/// Longest pause between two tries while the server cannot be reached.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Shortest time between two watch requests: a burst of changes is taken in one refresh.
const MIN_SPACING: Duration = Duration::from_millis(200);

/// What is out of date after an answer of the watch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stale {
    pub nss: bool,
    pub offline: bool,
    pub keys: bool,
    pub sessions: bool,
}

impl Stale {
    const ALL: Stale = Stale {
        nss: true,
        offline: true,
        keys: true,
        sessions: true,
    };

    fn add(&mut self, o: Stale) {
        self.nss |= o.nss;
        self.offline |= o.offline;
        self.keys |= o.keys;
        self.sessions |= o.sessions;
    }
}

/// What an answer makes stale: everything after a reset or for a kind this build does not
/// know; otherwise what each kind touches.
pub fn stale(changes: &HostChanges) -> Stale {
    if changes.reset {
        return Stale::ALL;
    }
    let mut s = Stale::default();
    for k in &changes.kinds {
        s.add(match k {
            // An account's identity, its policies (offline, end of sessions) and the hosts it
            // exists on.
            ChangeKind::Accounts => Stale::ALL,
            ChangeKind::Reservations => Stale {
                offline: true,
                sessions: true,
                ..Stale::default()
            },
            // A disabled person's reservations are released, grants and keys withdrawn.
            ChangeKind::Persons => Stale {
                offline: true,
                keys: true,
                sessions: true,
                ..Stale::default()
            },
            ChangeKind::Offline => Stale {
                offline: true,
                ..Stale::default()
            },
            // Keys count for the members of the groups that may reserve an account.
            ChangeKind::Keys | ChangeKind::Groups => Stale {
                keys: true,
                ..Stale::default()
            },
            ChangeKind::Host | ChangeKind::Other => Stale::ALL,
        });
    }
    s
}

/// The loops a change wakes.
pub struct Wakes {
    pub nss: Arc<Notify>,
    pub offline: Arc<Notify>,
    pub keys: Arc<Notify>,
    pub sessions: Arc<Sessions>,
}

impl Wakes {
    fn wake(&self, s: Stale) {
        // notify_one keeps a permit for a loop busy refreshing: it refreshes once more after.
        if s.nss {
            self.nss.notify_one();
        }
        if s.offline {
            self.offline.notify_one();
        }
        if s.keys {
            self.keys.notify_one();
        }
        if s.sessions {
            self.sessions.news();
        }
    }
}

/// Watches forever (see the module comment).
pub async fn run<S: Server>(server: Arc<S>, wakes: Wakes) {
    let mut after = None;
    let mut backoff = Duration::from_secs(1);
    let mut failing = false;
    loop {
        let started = tokio::time::Instant::now();
        match server.host_watch(after, MAX_WATCH_SECS).await {
            Ok(changes) => {
                if failing {
                    tracing::info!("watching the server for changes again");
                    failing = false;
                }
                backoff = Duration::from_secs(1);
                let s = stale(&changes);
                if s != Stale::default() {
                    tracing::debug!(seq = changes.seq, kinds = ?changes.kinds, reset = changes.reset,
                        "the server reports changes");
                }
                wakes.wake(s);
                after = Some(changes.seq);
                tokio::time::sleep_until(started + MIN_SPACING).await;
            }
            Err(e) => {
                if failing {
                    tracing::debug!("watch still failing: {e}");
                } else {
                    tracing::warn!(
                        "cannot watch the server for changes ({e}); changes reach this host at \
                         the next refresh until it can"
                    );
                    failing = true;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(reset: bool, kinds: &[ChangeKind]) -> HostChanges {
        HostChanges {
            seq: 7,
            reset,
            kinds: kinds.to_vec(),
            now: 0,
        }
    }

    #[test]
    fn each_kind_refreshes_what_it_touches() {
        let none = Stale::default();
        assert_eq!(stale(&answer(false, &[])), none);
        assert_eq!(stale(&answer(true, &[])), Stale::ALL);
        assert_eq!(stale(&answer(false, &[ChangeKind::Accounts])), Stale::ALL);
        assert_eq!(stale(&answer(false, &[ChangeKind::Other])), Stale::ALL);
        let r = stale(&answer(false, &[ChangeKind::Reservations]));
        assert!(r.sessions && r.offline && !r.nss && !r.keys);
        let p = stale(&answer(false, &[ChangeKind::Persons]));
        assert!(p.sessions && p.offline && p.keys && !p.nss);
        let k = stale(&answer(false, &[ChangeKind::Keys, ChangeKind::Groups]));
        assert_eq!(k, Stale { keys: true, ..none });
        let o = stale(&answer(false, &[ChangeKind::Offline]));
        assert_eq!(
            o,
            Stale {
                offline: true,
                ..none
            }
        );
    }

    #[test]
    fn an_unknown_kind_from_a_newer_server_reads_as_other() {
        let c: HostChanges =
            serde_json::from_str(r#"{"seq":3,"reset":false,"kinds":["quotas"],"now":1}"#).unwrap();
        assert_eq!(c.kinds, vec![ChangeKind::Other]);
    }
}
