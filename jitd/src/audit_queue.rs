//! The local audit queue: events jitd decides itself (an account-stage refusal, session open and
//! close, a login refused because the server was unreachable) are appended to a file under
//! `state_dir` and fsynced *before* anything else happens, then delivered to the server in
//! batches (`POST /v1/host/events`). An event leaves the file only after the server answered that
//! it stored the batch; the server ignores an id it already has, so a retry after a crash between
//! "stored" and "removed" is harmless. Nothing is dropped while the server is unreachable, and the
//! queue survives a restart.
//!
//! The one exception: an event the server refuses as malformed (400) can never be delivered; it is
//! dropped alone (never with its batch) and logged to syslog in full.
//!
//! File format: one JSON [`HostEvent`] per line. A torn last line (a crash mid-append, before the
//! fsync confirmed it) is skipped with a warning when the file is loaded.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use jit_client::ClientError;
use jit_proto::api::{ErrorCode, HostEvent, HostEvents};
use rand::RngCore;
use tokio::sync::Notify;

use crate::syslog::{self, Severity};
use crate::upstream::Server;

/// Largest batch sent at once (the server takes up to 500).
pub const BATCH: usize = 100;
/// Longest wait between retries while the server is unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(
        "cannot open the audit queue {path}: {source}; check that state_dir exists and is writable by root"
    )]
    Open { path: PathBuf, source: io::Error },
}

/// A new event id: 128 random bits, hex. Unique per host without coordination.
pub fn new_event_id() -> String {
    let mut raw = [0u8; 16];
    rand::rng().fill_bytes(&mut raw);
    hex::encode(raw)
}

pub struct AuditQueue {
    path: PathBuf,
    pending: Mutex<Vec<HostEvent>>,
    wake: Notify,
}

/// What one delivery round did.
#[derive(Debug, PartialEq, Eq)]
pub enum Round {
    /// Nothing was queued.
    Empty,
    /// This many events were stored by the server and removed from the queue.
    Delivered(usize),
    /// The server refused this one event as malformed; it was dropped.
    Dropped(String),
}

impl AuditQueue {
    /// Loads the queue at `path` (creating nothing until the first event).
    pub fn open(path: &Path) -> Result<Self, QueueError> {
        let pending = match std::fs::read_to_string(path) {
            Ok(text) => parse_lines(path, &text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(QueueError::Open {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Ok(Self {
            path: path.to_owned(),
            pending: Mutex::new(pending),
            wake: Notify::new(),
        })
    }

    /// Number of events not yet delivered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ids of the events not yet delivered, oldest first.
    #[cfg(test)]
    pub fn ids(&self) -> Vec<String> {
        self.lock().iter().map(|e| e.id.clone()).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<HostEvent>> {
        // A panic while holding the lock cannot leave the Vec half-changed (push/retain only).
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `ev` to the file (fsynced) and to the queue. If the file cannot be written the
    /// event still goes to the server from memory, and the failure is logged to syslog.
    pub fn push(&self, ev: HostEvent) {
        let mut pending = self.lock();
        if let Err(e) = append(&self.path, &ev) {
            let msg = format!(
                "jit: cannot write the audit queue {}: {e}; event {} ({} on {}) is kept in memory only",
                self.path.display(),
                ev.id,
                ev.action,
                ev.account
            );
            syslog::authpriv(Severity::Err, &msg);
            tracing::error!("{msg}");
        }
        pending.push(ev);
        drop(pending);
        self.wake.notify_one();
    }

    /// The queued events of `action` for `account`, oldest first.
    pub fn pending(&self, action: &str, account: &str) -> Vec<HostEvent> {
        self.lock()
            .iter()
            .filter(|e| e.action == action && e.account.as_str() == account)
            .cloned()
            .collect()
    }

    /// The server stored `events` (sent outside [`AuditQueue::run`]): they leave the queue.
    pub fn acknowledged(&self, events: &[HostEvent]) {
        let _ = self.remove(events);
    }

    /// Sends the oldest `max` events (at most [`BATCH`]) and removes them once stored.
    pub async fn deliver_once<S: Server>(
        &self,
        server: &S,
        max: usize,
    ) -> Result<Round, ClientError> {
        let batch: Vec<HostEvent> = self
            .lock()
            .iter()
            .take(max.clamp(1, BATCH))
            .cloned()
            .collect();
        if batch.is_empty() {
            return Ok(Round::Empty);
        }
        let result = server
            .host_events(&HostEvents {
                events: batch.clone(),
            })
            .await;
        match result {
            Ok(_) => {
                self.remove(&batch)?;
                Ok(Round::Delivered(batch.len()))
            }
            Err(e) if batch.len() == 1 && is_malformed(&e) => {
                let ev = &batch[0];
                let msg = format!(
                    "jit: the server refused audit event {} as malformed ({e}); dropped: {}",
                    ev.id,
                    serde_json::to_string(ev).unwrap_or_default()
                );
                syslog::authpriv(Severity::Err, &msg);
                tracing::error!("{msg}");
                self.remove(&batch)?;
                Ok(Round::Dropped(ev.id.clone()))
            }
            Err(e) => Err(e),
        }
    }

    /// Removes delivered events from memory and rewrites the file without them.
    fn remove(&self, done: &[HostEvent]) -> Result<(), ClientError> {
        let mut pending = self.lock();
        pending.retain(|p| !done.iter().any(|d| d.id == p.id));
        let mut text = String::new();
        for ev in pending.iter() {
            text.push_str(&serde_json::to_string(ev).unwrap_or_default());
            text.push('\n');
        }
        if let Err(e) = crate::files::replace(&self.path, text.as_bytes(), 0o600) {
            // Delivered events stay in the file and are sent again after a restart; the server
            // ignores ids it already stored.
            tracing::warn!(path = %self.path.display(), "cannot rewrite the audit queue: {e}");
        }
        Ok(())
    }

    /// Delivers forever: right away when events are queued, with exponential backoff (1 s up to
    /// 60 s, cut short by a new event) while the server is unreachable or failing.
    pub async fn run<S: Server>(&self, server: &S) {
        let mut backoff = Duration::from_secs(1);
        let mut max = BATCH;
        loop {
            match self.deliver_once(server, max).await {
                Ok(Round::Empty) => {
                    // Wake on a new event; the timeout is only a safety net.
                    let _ = tokio::time::timeout(MAX_BACKOFF, self.wake.notified()).await;
                }
                Ok(Round::Delivered(n)) => {
                    tracing::debug!(count = n, "audit events delivered");
                    backoff = Duration::from_secs(1);
                    max = BATCH;
                }
                Ok(Round::Dropped(_)) => {}
                Err(e) if is_malformed(&e) => {
                    // Some event in the batch is refused: find it by sending one at a time.
                    max = 1;
                }
                Err(e) => {
                    tracing::warn!(
                        queued = self.len(),
                        "cannot deliver audit events (retrying in {}s): {e}",
                        backoff.as_secs()
                    );
                    // A new event (a login happening) retries early: the server may be back.
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = self.wake.notified() => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

fn is_malformed(e: &ClientError) -> bool {
    matches!(
        e.code(),
        Some(ErrorCode::BadRequest | ErrorCode::PayloadTooLarge)
    )
}

fn append(path: &Path, ev: &HostEvent) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        crate::files::ensure_dir(dir, 0o755)?;
    }
    let mut line = serde_json::to_vec(ev).map_err(|e| io::Error::other(e.to_string()))?;
    line.push(b'\n');
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(&line)?;
    f.sync_data()
}

fn parse_lines(path: &Path, text: &str) -> Vec<HostEvent> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<HostEvent>(line) {
            Ok(ev) => out.push(ev),
            Err(e) => tracing::warn!(
                path = %path.display(),
                "skipping line {} of the audit queue (torn write?): {e}",
                i + 1
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use jit_proto::AccountName;
    use jit_proto::api::{AuditResult, LoginOrigin};

    use super::*;
    use crate::testing::FakeServer;

    fn event(action: &str) -> HostEvent {
        HostEvent {
            id: new_event_id(),
            at: 1_800_000_000,
            action: action.into(),
            account: AccountName::new("admin").unwrap(),
            person: None,
            result: AuditResult::Denied,
            reason: Some("no ticket".into()),
            origin: LoginOrigin {
                service: "sshd".into(),
                ..Default::default()
            },
            reservation_id: None,
            attempt: None,
            totp_step: None,
            ended: None,
        }
    }

    #[test]
    fn offline_logins_of_one_account_are_found_and_leave_once_acknowledged() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("q");
        let q = AuditQueue::open(&path).unwrap();
        let offline = event("login.offline");
        q.push(event("session.open"));
        q.push(offline.clone());
        assert_eq!(
            q.pending("login.offline", "admin"),
            std::slice::from_ref(&offline)
        );
        assert!(q.pending("login.offline", "root").is_empty());
        q.acknowledged(std::slice::from_ref(&offline));
        assert!(q.pending("login.offline", "admin").is_empty());
        let again = AuditQueue::open(&path).unwrap();
        assert_eq!(again.len(), 1);
        assert!(again.pending("login.offline", "admin").is_empty());
    }

    #[tokio::test]
    async fn survives_a_restart_and_is_removed_only_once_stored() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("state/audit-queue.jsonl");
        let (a, b, c) = (
            event("account.denied"),
            event("session.open"),
            event("session.close"),
        );
        {
            let q = AuditQueue::open(&path).unwrap();
            q.push(a.clone());
            q.push(b.clone());
            // The server is down: nothing leaves the queue.
            let server = FakeServer::new();
            server.fail_events_unreachable(true);
            assert!(
                q.deliver_once(&server, BATCH)
                    .await
                    .unwrap_err()
                    .is_unreachable()
            );
            assert_eq!(q.len(), 2);
        }
        // jitd restarts: both events are still there, plus a torn line from a crash is skipped.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"id\":\"torn")
            .unwrap();
        let q = AuditQueue::open(&path).unwrap();
        assert_eq!(q.ids(), [a.id.clone(), b.id.clone()]);
        q.push(c.clone());
        let server = FakeServer::new();
        assert_eq!(
            q.deliver_once(&server, 2).await.unwrap(),
            Round::Delivered(2)
        );
        assert_eq!(q.ids(), std::slice::from_ref(&c.id));
        assert_eq!(
            AuditQueue::open(&path).unwrap().ids(),
            std::slice::from_ref(&c.id)
        );
        assert_eq!(
            q.deliver_once(&server, BATCH).await.unwrap(),
            Round::Delivered(1)
        );
        assert_eq!(q.deliver_once(&server, BATCH).await.unwrap(), Round::Empty);
        assert!(AuditQueue::open(&path).unwrap().is_empty());
        let sent: Vec<String> = server.events().iter().map(|e| e.id.clone()).collect();
        assert_eq!(sent, [a.id, b.id, c.id]);
    }

    #[tokio::test]
    async fn a_malformed_event_is_dropped_alone() {
        let d = tempfile::tempdir().unwrap();
        let q = Arc::new(AuditQueue::open(&d.path().join("q")).unwrap());
        let good = event("session.open");
        let bad = event("bogus.action");
        q.push(bad.clone());
        q.push(good.clone());
        let server = Arc::new(FakeServer::new());
        server.refuse_action("bogus.action");
        // A batch with the bad one is refused as a whole...
        let err = q.deliver_once(&*server, BATCH).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::BadRequest));
        assert_eq!(q.len(), 2);
        // ...so the loop goes one at a time, drops the bad one, and delivers the good one.
        let runner = {
            let (q, s) = (q.clone(), server.clone());
            tokio::spawn(async move { q.run(&*s).await })
        };
        for _ in 0..200 {
            if q.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        runner.abort();
        assert!(q.is_empty());
        let sent: Vec<String> = server.events().iter().map(|e| e.id.clone()).collect();
        assert_eq!(sent, [good.id]);
    }
}
