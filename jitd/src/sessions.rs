//! The sessions jitd opened for logins to shared accounts, and when each must be warned and
//! ended. Plain data and one pure function, [`plan`], over a session and `now`; the loop that
//! asks the server and acts is [`crate::session_control`].
//!
//! - A session is tracked from its PAM open to its PAM close, under the login attempt that
//!   opened it (one login, one session), with the process that opened it (sshd's monitor, su,
//!   login: the session is that process and its descendants) and the PAM tty.
//! - Its reservation's end comes from the server, as a span ("ends in 290 s") turned into this
//!   host's clock, so the two clocks need not agree: at the grant, then from every refresh.
//! - One minute before the end ([`WARN_SECS`]) the session's terminal is warned, once per end
//!   time (an extension moves the end, and the next minute before it is warned again).
//! - For accounts with `end_session_at_expiry`, the session is ended when the reservation runs
//!   out, and at once when it ends early (released, force-released, holder disabled).
//! - Saved to `state_dir/sessions.json` (0600, atomically) on every change, so a jitd restart
//!   keeps warning and ending the sessions opened before it.
//!
//! Time is passed in (`now`, Unix seconds of this host), so the schedule is tested without
//! waiting.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use jit_proto::api::EndCause;
use jit_proto::timefmt::{human_secs, utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::peer::ProcId;

/// Seconds before the end at which the session's terminal is warned.
pub const WARN_SECS: i64 = 60;

/// Most sessions tracked; beyond this the oldest are dropped (with an error in the log).
const MAX_TRACKED: usize = 10_000;

/// One open session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracked {
    /// The server's id of the login attempt that opened it: names the session here and on the
    /// server.
    pub attempt: String,
    /// The login name (PAM_USER).
    pub login: String,
    /// The shared account it stands for.
    pub account: String,
    pub person: String,
    pub reservation_id: i64,
    pub service: String,
    pub rhost: Option<String>,
    pub tty: Option<String>,
    pub ruser: Option<String>,
    /// The process that opened the session; the session is it and its descendants.
    pub leader: Option<ProcId>,
    pub opened_at: i64,
    /// When the reservation ends, by this host's clock; `None` while unknown.
    pub ends_at: Option<i64>,
    /// The account's policy: end the session with the reservation.
    pub end_session: bool,
    /// The reservation ended before its time (the server said so), and how.
    pub ended_early: Option<Early>,
    /// The end time the terminal was last warned about.
    pub warned_for: Option<i64>,
    /// Set once jitd ended the session.
    pub ended: Option<Ended>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Early {
    pub cause: EndCause,
    /// Who released it, as the server says.
    pub by: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ended {
    pub at: i64,
    pub cause: EndCause,
}

/// What to do for a session now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Nothing; look again at this time (`None`: only when news comes).
    Sleep(Option<i64>),
    /// Warn the terminal that the session (or the reservation) ends at `ends_at`.
    Warn { ends_at: i64 },
    /// End the session, for this cause.
    End(EndCause),
}

/// What to do for `s` at `now`.
pub fn plan(s: &Tracked, now: i64) -> Next {
    if s.ended.is_some() {
        // Ended: waiting for its close or for its processes to be gone.
        return Next::Sleep(None);
    }
    if let Some(early) = &s.ended_early {
        return if s.end_session {
            Next::End(early.cause)
        } else {
            Next::Sleep(None)
        };
    }
    let Some(end) = s.ends_at else {
        return Next::Sleep(None);
    };
    if now >= end {
        return if s.end_session {
            Next::End(EndCause::Expired)
        } else {
            Next::Sleep(None)
        };
    }
    if now >= end - WARN_SECS {
        if s.warned_for != Some(end) {
            return Next::Warn { ends_at: end };
        }
        return Next::Sleep(s.end_session.then_some(end));
    }
    Next::Sleep(Some(end - WARN_SECS))
}

/// The command that gives the holder more time.
fn extend_hint(s: &Tracked, host: &str) -> String {
    format!("jitctl extend {} --host {host} --for 10m", s.account)
}

/// Shown at login (a PAM message of the session stage): how long the reservation has left, and
/// whether the session ends with it.
pub fn login_notice(s: &Tracked, host: &str, now: i64) -> Option<String> {
    let end = s.ends_at?;
    let when = format!("{} (in {})", utc(end), human_secs(end - now));
    Some(if s.end_session {
        format!(
            "jit: your reservation of {} on {host} ends at {when}; this session will be ended \
             then. To keep it open: {}",
            s.account,
            extend_hint(s, host)
        )
    } else {
        format!(
            "jit: your reservation of {} on {host} ends at {when}.",
            s.account
        )
    })
}

/// The warning written on the session's terminal a minute before the end.
pub fn warning(s: &Tracked, host: &str, ends_at: i64, now: i64) -> String {
    let when = format!("in {} (at {})", human_secs(ends_at - now), utc(ends_at));
    if s.end_session {
        format!(
            "jit: this session as {} on {host} will be ended {when}, when the reservation runs \
             out. To keep it open: {}",
            s.account,
            extend_hint(s, host)
        )
    } else {
        format!(
            "jit: your reservation of {} on {host} runs out {when}. This session stays open; to \
             keep holding the account: {}",
            s.account,
            extend_hint(s, host)
        )
    }
}

/// Why the session ends, for its terminal, the log and the audit.
pub fn end_reason(s: &Tracked, cause: EndCause, host: &str) -> String {
    let by = s
        .ended_early
        .as_ref()
        .and_then(|e| e.by.as_deref())
        .map(clean)
        .map(|b| format!(" by {b}"))
        .unwrap_or_default();
    let what = format!("the reservation of {} on {host}", s.account);
    match cause {
        EndCause::Expired => format!("{what} ran out"),
        EndCause::Released => format!("{what} was released{by}"),
        EndCause::ForceReleased => format!("{what} was force-released{by}"),
        EndCause::HolderDisabled => format!("{what} ended: {} was disabled", s.person),
        EndCause::Reported => {
            format!("{what} ended: {} reported a login as not theirs", s.person)
        }
    }
}

/// Control characters out of a server-given string before it reaches a terminal or a log.
fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(128).collect()
}

/// Every tracked session, saved on change.
#[derive(Debug, Default)]
pub struct Sessions {
    /// Where they are saved; `None` in tests that do not care.
    path: Option<PathBuf>,
    map: Mutex<BTreeMap<String, Tracked>>,
    /// Woken when a session opens or closes (and by the server's watch), so the loop looks again.
    pub changed: Notify,
    /// Set by the server's watch: a reservation may have changed, ask the server now.
    news: AtomicBool,
}

impl Sessions {
    /// Sessions saved at `path` (missing: none). A file that cannot be read is set aside with a
    /// warning: those sessions are then neither warned nor ended, and close as usual.
    pub fn open(path: &Path) -> Sessions {
        let map = match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(map) => map,
                Err(e) => {
                    tracing::warn!(path = %path.display(), "ignoring the saved sessions: {}",
                        jit_proto::json_error::describe(&e));
                    BTreeMap::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot read the saved sessions: {e}");
                BTreeMap::new()
            }
        };
        Sessions {
            path: Some(path.to_owned()),
            map: Mutex::new(map),
            changed: Notify::new(),
            news: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Tracked>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, map: &BTreeMap<String, Tracked>) {
        let Some(path) = &self.path else { return };
        let written = serde_json::to_vec(map)
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|bytes| crate::files::replace(path, &bytes, 0o600));
        if let Err(e) = written {
            // The session goes on; only a restart would lose track of it.
            tracing::error!(path = %path.display(), "cannot save the sessions: {e}");
        }
    }

    /// Starts tracking `s` (a PAM session opened).
    pub fn opened(&self, s: Tracked) {
        let mut map = self.lock();
        while map.len() >= MAX_TRACKED {
            let Some(oldest) = map
                .values()
                .min_by_key(|t| t.opened_at)
                .map(|t| t.attempt.clone())
            else {
                break;
            };
            tracing::error!(attempt = %oldest, "too many open sessions tracked; forgetting the oldest");
            map.remove(&oldest);
        }
        map.insert(s.attempt.clone(), s);
        self.save(&map);
        drop(map);
        self.changed.notify_one();
    }

    /// Stops tracking the session of `attempt` (its PAM session closed, or its processes are
    /// gone); what was tracked.
    pub fn closed(&self, attempt: &str) -> Option<Tracked> {
        let mut map = self.lock();
        let gone = map.remove(attempt);
        if gone.is_some() {
            self.save(&map);
        }
        drop(map);
        self.changed.notify_one();
        gone
    }

    /// The server said a reservation changed: the loop asks it how the sessions' stand now.
    pub fn news(&self) {
        self.news.store(true, Ordering::SeqCst);
        self.changed.notify_one();
    }

    /// True once after each [`Sessions::news`].
    pub fn take_news(&self) -> bool {
        self.news.swap(false, Ordering::SeqCst)
    }

    /// A copy of every tracked session.
    pub fn all(&self) -> Vec<Tracked> {
        self.lock().values().cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Changes the session of `attempt` (if still tracked) and saves when it changed.
    pub fn update(&self, attempt: &str, f: impl FnOnce(&mut Tracked)) {
        let mut map = self.lock();
        let Some(t) = map.get_mut(attempt) else {
            return;
        };
        let before = t.clone();
        f(t);
        if *t != before {
            self.save(&map);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    pub fn tracked(ends_in: i64, end_session: bool) -> Tracked {
        Tracked {
            attempt: "att-1".into(),
            login: "admin".into(),
            account: "admin".into(),
            person: "alice".into(),
            reservation_id: 7,
            service: "sshd".into(),
            rhost: Some("192.0.2.7".into()),
            tty: Some("ssh".into()),
            ruser: None,
            leader: Some(ProcId {
                pid: 4242,
                start: 99,
            }),
            opened_at: NOW,
            ends_at: Some(NOW + ends_in),
            end_session,
            ended_early: None,
            warned_for: None,
            ended: None,
        }
    }

    /// The schedule of one session that ends with its reservation, second by second as the
    /// clock passes the points that matter: quiet until a minute before, one warning, ended at
    /// the end (not a second early).
    #[test]
    fn warned_a_minute_before_and_ended_at_the_end() {
        let mut s = tracked(300, true);
        let end = NOW + 300;
        assert_eq!(plan(&s, NOW), Next::Sleep(Some(end - 60)));
        assert_eq!(plan(&s, end - 61), Next::Sleep(Some(end - 60)));
        assert_eq!(plan(&s, end - 60), Next::Warn { ends_at: end });
        s.warned_for = Some(end);
        assert_eq!(plan(&s, end - 59), Next::Sleep(Some(end)));
        assert_eq!(plan(&s, end - 1), Next::Sleep(Some(end)));
        assert_eq!(plan(&s, end), Next::End(EndCause::Expired));
        // A jitd that was down at the end still ends it when it comes back.
        assert_eq!(plan(&s, end + 3600), Next::End(EndCause::Expired));
        s.ended = Some(Ended {
            at: end,
            cause: EndCause::Expired,
        });
        assert_eq!(plan(&s, end + 1), Next::Sleep(None));
    }

    /// An extension moves the end: the session is not ended at the old end, and is warned
    /// again a minute before the new one.
    #[test]
    fn an_extension_moves_the_warning_and_the_end() {
        let mut s = tracked(300, true);
        let old = NOW + 300;
        s.warned_for = Some(old);
        s.ends_at = Some(old + 600);
        assert_eq!(plan(&s, old - 30), Next::Sleep(Some(old + 540)));
        assert_eq!(plan(&s, old), Next::Sleep(Some(old + 540)));
        assert_eq!(plan(&s, old + 540), Next::Warn { ends_at: old + 600 });
    }

    /// A session opened within the last minute is warned at once.
    #[test]
    fn a_session_opened_in_the_last_minute_is_warned_at_once() {
        let s = tracked(45, true);
        assert_eq!(plan(&s, NOW), Next::Warn { ends_at: NOW + 45 });
    }

    /// A reservation that ended early ends the session at once, whatever its end time said.
    #[test]
    fn an_early_end_ends_the_session_at_once() {
        for cause in [
            EndCause::Released,
            EndCause::ForceReleased,
            EndCause::HolderDisabled,
            EndCause::Reported,
        ] {
            let mut s = tracked(300, true);
            s.ended_early = Some(Early {
                cause,
                by: Some("admin".into()),
            });
            assert_eq!(plan(&s, NOW + 1), Next::End(cause), "{cause:?}");
        }
    }

    /// Without the policy, the session is warned that the reservation runs out, and then left
    /// alone, whatever ends the reservation.
    #[test]
    fn without_the_policy_a_session_is_warned_and_left_open() {
        let mut s = tracked(300, false);
        let end = NOW + 300;
        assert_eq!(plan(&s, end - 60), Next::Warn { ends_at: end });
        s.warned_for = Some(end);
        assert_eq!(plan(&s, end - 59), Next::Sleep(None));
        assert_eq!(plan(&s, end + 10), Next::Sleep(None));
        s.ended_early = Some(Early {
            cause: EndCause::ForceReleased,
            by: None,
        });
        assert_eq!(plan(&s, end - 100), Next::Sleep(None));
        // Nothing known about the end: nothing to do.
        let mut s = tracked(300, true);
        s.ends_at = None;
        assert_eq!(plan(&s, NOW), Next::Sleep(None));
    }

    #[test]
    fn the_texts_say_when_and_what_to_do() {
        let s = tracked(290, true);
        let notice = login_notice(&s, "web01", NOW).unwrap();
        assert!(
            notice.contains("ends at 2027-01-15 08:04:50 UTC (in 4m 50s)"),
            "{notice}"
        );
        assert!(
            notice.contains("jitctl extend admin --host web01 --for 10m"),
            "{notice}"
        );
        let w = warning(&s, "web01", NOW + 290, NOW + 230);
        assert!(w.contains("will be ended in 1m (at "), "{w}");
        let keep = warning(&tracked(290, false), "web01", NOW + 290, NOW + 230);
        assert!(keep.contains("This session stays open"), "{keep}");
        let mut s = tracked(10, true);
        s.ended_early = Some(Early {
            cause: EndCause::ForceReleased,
            by: Some("bob\u{1b}[2J\n".into()),
        });
        assert_eq!(
            end_reason(&s, EndCause::ForceReleased, "web01"),
            "the reservation of admin on web01 was force-released by bob[2J"
        );
    }

    #[test]
    fn sessions_survive_a_restart_in_a_private_file() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("sessions.json");
        let sessions = Sessions::open(&path);
        sessions.opened(tracked(300, true));
        sessions.update("att-1", |t| t.warned_for = Some(NOW + 300));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(sessions);
        let again = Sessions::open(&path);
        assert_eq!(again.all()[0].warned_for, Some(NOW + 300));
        assert_eq!(again.closed("att-1").unwrap().person, "alice");
        assert!(Sessions::open(&path).is_empty());
        std::fs::write(&path, b"[not json").unwrap();
        assert!(Sessions::open(&path).is_empty());
    }
}
