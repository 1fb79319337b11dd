//! The loop that keeps the open sessions in step with their reservations: it asks the server how
//! the reservations stand (`POST /v1/host/reservations`, every `refresh_interval` while a
//! session is open, when the server's watch reports a change, and right before a warning or an
//! end at expiry, so an extension made a moment ago counts), then for each session does what
//! [`plan`] says: warn its terminal, or end it (see [`crate::session_end`]) and record
//! `session.ended` with the cause.
//!
//! While the server cannot be reached, the last end time it gave stands: a session of an account
//! that ends sessions at expiry is ended then (fail closed: an extension that cannot be seen
//! does not count).
//!
//! A session whose processes are gone without a PAM close (killed, or the host restarted) is
//! closed here, so the server does not list it as open forever.
//!
//! [`Control::tick`] takes `now`, so the whole schedule is tested against a scripted server
//! and recorded hands, without waiting.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jit_proto::api::{AuditResult, EndCause, HostEvent, HostReservationQuery, LoginOrigin};
use jit_proto::{AccountName, PersonName};

use crate::audit_queue::new_event_id;
use crate::driver::Record;
use crate::sessions::{Early, Ended, Next, Sessions, Tracked, end_reason, plan, warning};
use crate::syslog::Decision;
use crate::upstream::Server;

/// Seconds after its open during which a session without a terminal yet is warned again (a
/// session that has none after that, such as `ssh host command`, is not warned).
const TERMINAL_SECS: i64 = 10;

/// Seconds within which a refresh counts as fresh enough to warn or end on.
const FRESH_SECS: i64 = 2;

/// What the loop does to a session's processes and terminals. The daemon's are
/// [`HostHands`]; tests record instead.
pub trait Hands: Send + Sync + 'static {
    /// True while the session's processes run.
    fn alive(&self, s: &Tracked) -> bool;
    /// Writes `text` on the session's terminals; the terminals reached.
    fn tell(&self, s: &Tracked, text: &str) -> Vec<String>;
    /// Ends the session (blocking, a few seconds at most); how, or why not.
    fn end(&self, s: &Tracked) -> Result<String, String>;
}

/// The real hands: `/proc`, the terminals, systemd-logind or signals.
pub struct HostHands;

impl Hands for HostHands {
    fn alive(&self, s: &Tracked) -> bool {
        // Without a known leader there is nothing to look at: keep the session until it closes.
        s.leader.is_none_or(crate::process_tree::alive)
    }

    fn tell(&self, s: &Tracked, text: &str) -> Vec<String> {
        crate::terminal::tell(s, text)
    }

    fn end(&self, s: &Tracked) -> Result<String, String> {
        let Some(leader) = s.leader else {
            return Err(
                "jitd does not know the session's process (it could not read /proc \
                        when the session opened)"
                    .into(),
            );
        };
        crate::session_end::end(leader).map(|how| how.to_string())
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Refreshed {
    /// Last time the server was asked (Unix seconds), successfully or not.
    tried: Option<i64>,
    /// Last time it answered.
    answered: Option<i64>,
}

pub struct Control<S: Server, R: Record, H: Hands> {
    pub server: Arc<S>,
    pub sessions: Arc<Sessions>,
    pub record: R,
    pub hands: Arc<H>,
    /// This host's name, for the texts and the log.
    pub host: String,
    /// Seconds between two refreshes while a session is open.
    pub refresh_secs: i64,
    refreshed: Mutex<Refreshed>,
}

impl<S: Server, R: Record, H: Hands> Control<S, R, H> {
    pub fn new(
        server: Arc<S>,
        sessions: Arc<Sessions>,
        record: R,
        hands: Arc<H>,
        host: String,
        refresh: Duration,
    ) -> Self {
        Self {
            server,
            sessions,
            record,
            hands,
            host,
            refresh_secs: i64::try_from(refresh.as_secs()).unwrap_or(10).max(1),
            refreshed: Mutex::new(Refreshed::default()),
        }
    }

    fn refreshed(&self) -> Refreshed {
        *self.refreshed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs forever: a tick, then sleep until the next thing to do, a session opening or
    /// closing, or news from the server's watch.
    pub async fn run(self) {
        loop {
            let now = jit_clock::now();
            let next = self.tick(now).await;
            let secs = next.map_or(3600, |t| (t - now).clamp(1, 3600));
            let wait = Duration::from_secs(u64::try_from(secs).unwrap_or(1));
            tokio::select! {
                _ = self.sessions.changed.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One look at every session at `now`; when to look again (`None`: no session is open).
    pub async fn tick(&self, now: i64) -> Option<i64> {
        for s in self.sessions.all() {
            if !self.hands.alive(&s) {
                self.sessions.closed(&s.attempt);
                if s.ended.is_none() {
                    let reason = "the session's processes are gone without a PAM close (killed, \
                                  or the host restarted)";
                    tracing::info!(account = %s.account, person = %s.person, "{reason}");
                    self.event(&s, "session.close", reason, None, now);
                }
            }
        }
        // Taken even with no session open, so old news does not cause a refresh later.
        let news = self.sessions.take_news();
        if self.sessions.is_empty() {
            return None;
        }
        let r = self.refreshed();
        let due = r.tried.is_none_or(|t| now >= t + self.refresh_secs);
        let stale = r.answered.is_none_or(|t| now - t > FRESH_SECS);
        let acting = self.sessions.all().iter().any(|s| {
            matches!(
                plan(s, now),
                Next::Warn { .. } | Next::End(EndCause::Expired)
            )
        });
        if due || news || (acting && stale) {
            self.refresh(now).await;
        }
        let mut next = self.refreshed().tried.map(|t| t + self.refresh_secs);
        for s in self.sessions.all() {
            match plan(&s, now) {
                Next::Sleep(t) => next = earliest(next, t),
                Next::Warn { ends_at } => {
                    let text = warning(&s, &self.host, ends_at, now);
                    let reached = self.hands.tell(&s, &text);
                    if reached.is_empty() && now - s.opened_at < TERMINAL_SECS {
                        // Just opened: the shell and its terminal may not be there yet (sshd
                        // opens the PAM session before it starts the shell). Try again.
                        next = earliest(next, Some(now + 1));
                        continue;
                    }
                    tracing::info!(
                        account = %s.account, person = %s.person, terminals = ?reached,
                        "warned the session that it ends at {ends_at}"
                    );
                    self.sessions
                        .update(&s.attempt, |t| t.warned_for = Some(ends_at));
                    let mut warned = s.clone();
                    warned.warned_for = Some(ends_at);
                    if let Next::Sleep(t) = plan(&warned, now) {
                        next = earliest(next, t);
                    }
                }
                Next::End(cause) => self.end(&s, cause, now).await,
            }
        }
        next
    }

    /// Ends `s` for `cause`, says so on its terminal, and records it.
    async fn end(&self, s: &Tracked, cause: EndCause, now: i64) {
        let why = end_reason(s, cause, &self.host);
        self.hands
            .tell(s, &format!("jit: {why}; this session is being ended."));
        let hands = self.hands.clone();
        let target = s.clone();
        let how = tokio::task::spawn_blocking(move || hands.end(&target))
            .await
            .unwrap_or_else(|e| Err(format!("the ending task failed: {e}")));
        let (result, reason) = match &how {
            Ok(how) => ("ended", format!("{why}; {how}")),
            Err(e) => (
                "error",
                format!("{why}; the session could not be ended: {e}"),
            ),
        };
        match &how {
            Ok(_) => tracing::info!(account = %s.account, person = %s.person, "{reason}"),
            Err(_) => tracing::error!(account = %s.account, person = %s.person, "{reason}"),
        }
        self.sessions.update(&s.attempt, |t| {
            t.ended = Some(Ended { at: now, cause });
        });
        self.record.decision(&Decision {
            stage: "session_end",
            account: s.login.clone(),
            person: Some(s.person.clone()),
            host: self.host.clone(),
            service: s.service.clone(),
            rhost: s.rhost.clone(),
            result,
            reason: reason.clone(),
        });
        self.event(s, "session.ended", &reason, Some(cause), now);
    }

    /// Asks the server how the reservations of the open sessions stand, and keeps the answer
    /// (end times moved into this host's clock).
    async fn refresh(&self, now: i64) {
        let mut ids: Vec<i64> = self
            .sessions
            .all()
            .iter()
            .filter(|s| s.ended.is_none())
            .map(|s| s.reservation_id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut r = self.refreshed();
        r.tried = Some(now);
        if !ids.is_empty() {
            match self
                .server
                .host_reservations(&HostReservationQuery { ids })
                .await
            {
                Ok(answer) => {
                    r.answered = Some(now);
                    let offset = now - answer.now;
                    for res in answer.reservations {
                        let early = match res.ended {
                            None | Some(EndCause::Expired) => None,
                            Some(cause) => Some(Early {
                                cause,
                                by: res.ended_by.clone(),
                            }),
                        };
                        for s in self.sessions.all() {
                            if s.reservation_id == res.id {
                                self.sessions.update(&s.attempt, |t| {
                                    t.ends_at = Some(res.ends_at + offset);
                                    t.end_session = res.end_session_at_expiry;
                                    t.ended_early = early.clone();
                                });
                            }
                        }
                    }
                }
                Err(e) => tracing::debug!(
                    "cannot ask the server about the open sessions' reservations (keeping what \
                     it said last): {e}"
                ),
            }
        }
        *self.refreshed.lock().unwrap_or_else(|p| p.into_inner()) = r;
    }

    fn event(&self, s: &Tracked, action: &str, reason: &str, ended: Option<EndCause>, now: i64) {
        let Ok(account) = AccountName::new(&s.account) else {
            tracing::error!(account = %s.account, "a tracked session names no valid account");
            return;
        };
        self.record.event(HostEvent {
            id: new_event_id(),
            at: now,
            action: action.to_owned(),
            account,
            person: PersonName::new(&s.person).ok(),
            result: AuditResult::Ok,
            reason: Some(reason.to_owned()),
            origin: LoginOrigin {
                service: s.service.clone(),
                rhost: s.rhost.clone(),
                tty: s.tty.clone(),
                ruser: s.ruser.clone(),
                ssh_key: None,
                source: None,
            },
            reservation_id: Some(s.reservation_id),
            attempt: Some(s.attempt.clone()),
            totp_step: None,
            ended,
        });
    }
}

fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

#[cfg(test)]
#[path = "session_control_tests.rs"]
mod tests;
