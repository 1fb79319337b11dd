//! Tickets: what a login that passed jit's auth presents in its account and session stages.
//!
//! jitd grants a ticket with the auth and hands pam_jit an opaque, random handle
//! (`jit_pam_proto::pam::Ticket`). What the handle stands for stays here, keyed by the handle's
//! SHA-256 (so neither the state file nor a log ever holds a usable handle):
//!
//! - **Once per stage.** The account stage accepts a ticket once, session-open once, and
//!   session-close once; the ticket is forgotten when the session closes.
//! - **Bound to the login.** Only the same login name and PAM service, and only from the process
//!   that authenticated or the process that was its parent then (both by pid and start time, so
//!   a recycled pid does not match). The parent is there for OpenSSH: it runs keyboard-interactive
//!   auth and the account stage in a child it forks for the conversation, and opens and closes
//!   the session in that child's parent, its monitor. su, login and sudo do everything in one
//!   process.
//! - **Soon after auth.** The account and session-open stages accept a ticket for
//!   [`WINDOW`] seconds after the auth; a ticket whose session never opened is forgotten then.
//! - **Survives a restart.** Every change is written to `state_dir/tickets.json` (0600,
//!   atomically) before it is acted on, so a session opened before a jitd restart still closes
//!   with its person in the audit log. An open session's ticket is kept at most [`MAX_SESSION`].
//!
//! Time is passed in (`now`, Unix seconds), so every rule is tested without waiting.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use jit_proto::pam::Ticket;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::peer::{Caller, ProcId};

/// Seconds after auth during which the account and session-open stages accept the ticket.
pub const WINDOW: i64 = 120;
/// Longest a session's ticket is kept for its close.
pub const MAX_SESSION: i64 = 31 * 24 * 3600;
/// Most tickets kept; the oldest are forgotten first beyond this.
const MAX_TICKETS: usize = 100_000;

/// The stage presenting a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Account,
    SessionOpen,
    SessionClose,
}

/// What jitd recorded when it granted a ticket, and what the ticket has been used for since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issued {
    /// The login name (PAM_USER) the auth was for.
    pub login: String,
    pub person: String,
    pub reservation_id: i64,
    /// The server's id for the login attempt; ties session events to it in the audit log.
    pub attempt: String,
    pub service: String,
    pub granted_at: i64,
    /// The process that authenticated and its parent at the time: the only presenters.
    pub processes: Vec<ProcId>,
    #[serde(default)]
    pub account_done: bool,
    /// When the session opened.
    #[serde(default)]
    pub opened_at: Option<i64>,
    /// When the reservation ends (this host's clock), as the server said at the grant.
    #[serde(default)]
    pub ends_at: Option<i64>,
    /// The account's policy as the server said at the grant: end the session with the
    /// reservation.
    #[serde(default)]
    pub end_session: bool,
}

/// Why a ticket was not accepted (for the log and the audit; never shown with the handle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Unknown,
    OtherLogin,
    OtherService,
    OtherProcess,
    AlreadyUsed,
    TooLate,
    NotOpened,
}

impl Refused {
    pub fn reason(self) -> &'static str {
        match self {
            Refused::Unknown => "the ticket is unknown (never granted, or already forgotten)",
            Refused::OtherLogin => "the ticket was granted for another login name",
            Refused::OtherService => "the ticket was granted to another PAM service",
            Refused::OtherProcess => {
                "the ticket was presented by a process other than the one that authenticated \
                 (or its parent)"
            }
            Refused::AlreadyUsed => "the ticket was already used for this stage",
            Refused::TooLate => "the ticket is more than 2 minutes old",
            Refused::NotOpened => "no session was opened with this ticket",
        }
    }
}

/// Every ticket jitd granted that may still be presented.
#[derive(Debug, Default)]
pub struct Tickets {
    /// Where they are saved; `None` in tests that do not care.
    path: Option<PathBuf>,
    map: Mutex<HashMap<String, Issued>>,
}

fn key(ticket: &Ticket) -> String {
    hex::encode(Sha256::digest(ticket.expose().as_bytes()))
}

/// True while a ticket can still be presented for something.
fn live(t: &Issued, now: i64) -> bool {
    match t.opened_at {
        Some(at) => now - at < MAX_SESSION,
        None => now - t.granted_at < WINDOW,
    }
}

impl Tickets {
    /// Tickets saved at `path` (missing: none). A file that cannot be read is set aside with a
    /// warning: its sessions will close without jitd's record of them (pam_jit logs the close).
    pub fn open(path: &Path) -> Tickets {
        let map = match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(map) => map,
                Err(e) => {
                    tracing::warn!(path = %path.display(), "ignoring the saved tickets: {}",
                        jit_proto::json_error::describe(&e));
                    HashMap::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot read the saved tickets: {e}");
                HashMap::new()
            }
        };
        Tickets {
            path: Some(path.to_owned()),
            map: Mutex::new(map),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Issued>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, map: &HashMap<String, Issued>) {
        let Some(path) = &self.path else { return };
        let written = serde_json::to_vec(map)
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|bytes| crate::files::replace(path, &bytes, 0o600));
        if let Err(e) = written {
            // The login goes on; only a close after a restart would lose its record.
            tracing::error!(path = %path.display(), "cannot save the tickets: {e}");
        }
    }

    /// Records `issued` and returns the handle for pam_jit.
    pub fn grant(&self, issued: Issued, now: i64) -> Ticket {
        let ticket = Ticket::new(hex::encode(rand::random::<[u8; 16]>()));
        let mut map = self.lock();
        map.retain(|_, t| live(t, now));
        while map.len() >= MAX_TICKETS {
            let Some(oldest) = map
                .iter()
                .min_by_key(|(_, t)| t.granted_at)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            map.remove(&oldest);
        }
        map.insert(key(&ticket), issued);
        self.save(&map);
        ticket
    }

    /// Accepts `ticket` for `stage` of the login `login` on `service`, presented by `caller`,
    /// and records the use; or says why not.
    pub fn accept(
        &self,
        ticket: &Ticket,
        stage: Stage,
        login: &str,
        service: &str,
        caller: &Caller,
        now: i64,
    ) -> Result<Issued, Refused> {
        let mut map = self.lock();
        let k = key(ticket);
        let t = map.get_mut(&k).ok_or(Refused::Unknown)?;
        if t.login != login {
            return Err(Refused::OtherLogin);
        }
        if t.service != service {
            return Err(Refused::OtherService);
        }
        if !caller.process.is_some_and(|p| t.processes.contains(&p)) {
            return Err(Refused::OtherProcess);
        }
        let fresh = now >= t.granted_at && now - t.granted_at < WINDOW;
        match stage {
            Stage::Account if t.account_done => return Err(Refused::AlreadyUsed),
            Stage::Account if !fresh => return Err(Refused::TooLate),
            Stage::Account => t.account_done = true,
            Stage::SessionOpen if t.opened_at.is_some() => return Err(Refused::AlreadyUsed),
            Stage::SessionOpen if !fresh => return Err(Refused::TooLate),
            Stage::SessionOpen => t.opened_at = Some(now),
            Stage::SessionClose if t.opened_at.is_none() => return Err(Refused::NotOpened),
            Stage::SessionClose => {}
        }
        let issued = t.clone();
        if stage == Stage::SessionClose {
            map.remove(&k);
        }
        self.save(&map);
        Ok(issued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const CHILD: ProcId = ProcId {
        pid: 200,
        start: 5000,
    };
    const MONITOR: ProcId = ProcId {
        pid: 100,
        start: 4000,
    };

    fn issued() -> Issued {
        Issued {
            login: "admin".into(),
            person: "alice".into(),
            reservation_id: 7,
            attempt: "att-1".into(),
            service: "sshd".into(),
            granted_at: NOW,
            processes: vec![CHILD, MONITOR],
            account_done: false,
            opened_at: None,
            ends_at: None,
            end_session: false,
        }
    }

    fn from(p: ProcId) -> Caller {
        Caller {
            process: Some(p),
            parent: None,
            real_uid: None,
        }
    }

    #[test]
    fn each_stage_once_from_the_authenticating_process_or_its_parent() {
        let tickets = Tickets::default();
        let t = tickets.grant(issued(), NOW);
        let use_ =
            |stage, caller: Caller, now| tickets.accept(&t, stage, "admin", "sshd", &caller, now);
        // sshd: the child runs the account stage, the monitor the sessions.
        assert!(use_(Stage::Account, from(CHILD), NOW + 1).is_ok());
        assert_eq!(
            use_(Stage::Account, from(CHILD), NOW + 1),
            Err(Refused::AlreadyUsed)
        );
        assert_eq!(
            use_(Stage::SessionClose, from(MONITOR), NOW + 2),
            Err(Refused::NotOpened)
        );
        assert!(use_(Stage::SessionOpen, from(MONITOR), NOW + 2).is_ok());
        assert_eq!(
            use_(Stage::SessionOpen, from(MONITOR), NOW + 3),
            Err(Refused::AlreadyUsed)
        );
        // A long session still closes, once.
        let closed = use_(Stage::SessionClose, from(MONITOR), NOW + 86_400).unwrap();
        assert_eq!(
            (closed.person.as_str(), closed.opened_at),
            ("alice", Some(NOW + 2))
        );
        assert_eq!(
            use_(Stage::SessionClose, from(MONITOR), NOW + 86_401),
            Err(Refused::Unknown)
        );
    }

    #[test]
    fn bound_to_login_service_and_process_and_to_the_window() {
        let tickets = Tickets::default();
        let t = tickets.grant(issued(), NOW);
        let try_ = |login, service, caller: Caller, now| {
            tickets.accept(&t, Stage::Account, login, service, &caller, now)
        };
        let sibling = ProcId {
            pid: 201,
            start: 5001,
        };
        let recycled = ProcId {
            pid: 200,
            start: 9999,
        };
        let cases = [
            (
                "another name",
                try_("root", "sshd", from(CHILD), NOW),
                Refused::OtherLogin,
            ),
            (
                "another service",
                try_("admin", "su", from(CHILD), NOW),
                Refused::OtherService,
            ),
            (
                "a sibling",
                try_("admin", "sshd", from(sibling), NOW),
                Refused::OtherProcess,
            ),
            (
                "a recycled pid",
                try_("admin", "sshd", from(recycled), NOW),
                Refused::OtherProcess,
            ),
            (
                "an unknown process",
                try_("admin", "sshd", Caller::default(), NOW),
                Refused::OtherProcess,
            ),
            (
                "after 2 minutes",
                try_("admin", "sshd", from(CHILD), NOW + WINDOW),
                Refused::TooLate,
            ),
            (
                "before the grant",
                try_("admin", "sshd", from(CHILD), NOW - 1),
                Refused::TooLate,
            ),
        ];
        for (case, got, want) in cases {
            assert_eq!(got, Err(want), "{case}");
        }
        assert!(try_("admin", "sshd", from(CHILD), NOW + WINDOW - 1).is_ok());
        let other = Ticket::new("00");
        assert_eq!(
            tickets.accept(&other, Stage::Account, "admin", "sshd", &from(CHILD), NOW),
            Err(Refused::Unknown)
        );
        // A session-open after the window is refused too, and the ticket is then forgotten.
        assert_eq!(
            tickets.accept(
                &t,
                Stage::SessionOpen,
                "admin",
                "sshd",
                &from(MONITOR),
                NOW + WINDOW
            ),
            Err(Refused::TooLate)
        );
        tickets.grant(issued(), NOW + WINDOW);
        assert_eq!(
            tickets.accept(
                &t,
                Stage::SessionClose,
                "admin",
                "sshd",
                &from(MONITOR),
                NOW + WINDOW
            ),
            Err(Refused::Unknown)
        );
    }

    #[test]
    fn a_restart_keeps_open_sessions_and_the_file_holds_no_handle() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("tickets.json");
        let tickets = Tickets::open(&path);
        let t = tickets.grant(issued(), NOW);
        tickets
            .accept(&t, Stage::SessionOpen, "admin", "sshd", &from(MONITOR), NOW)
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(t.expose()), "{text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(tickets);

        let restarted = Tickets::open(&path);
        let closed = restarted
            .accept(
                &t,
                Stage::SessionClose,
                "admin",
                "sshd",
                &from(MONITOR),
                NOW + 600,
            )
            .unwrap();
        assert_eq!(closed.attempt, "att-1");
        let again = Tickets::open(&path);
        assert_eq!(
            again.accept(
                &t,
                Stage::SessionClose,
                "admin",
                "sshd",
                &from(MONITOR),
                NOW + 601
            ),
            Err(Refused::Unknown)
        );
        // A damaged file is set aside: nothing is accepted from it, nothing breaks.
        std::fs::write(&path, b"{not json").unwrap();
        let damaged = Tickets::open(&path);
        assert_eq!(
            damaged.accept(
                &t,
                Stage::SessionClose,
                "admin",
                "sshd",
                &from(MONITOR),
                NOW
            ),
            Err(Refused::Unknown)
        );
    }
}
