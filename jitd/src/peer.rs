//! Who is on the other end of a PAM socket connection, from the kernel (SO_PEERCRED, through
//! tokio's `peer_cred`). Only root may talk to jitd: pam_jit runs inside sshd, login, su and sudo,
//! all root. Anyone else could otherwise probe reservations or spend a person's codes.
//!
//! [`Caller`] names the peer's process and its parent by pid *and* start time (from
//! `/proc/PID/stat`), so that a ticket bound to them cannot be presented by a later process that
//! got the same pid.

use serde::{Deserialize, Serialize};
use tokio::net::UnixStream;

/// One process: its pid and its start time (clock ticks after boot), which together never repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProcId {
    pub pid: i32,
    pub start: u64,
}

/// The process behind a connection, and its parent when it connected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caller {
    pub process: Option<ProcId>,
    pub parent: Option<ProcId>,
    /// The process's real uid: for setuid su or sudo, the user who ran it.
    pub real_uid: Option<u32>,
}

impl Caller {
    /// Reads `/proc` for `pid` (and its parent). Unknown parts stay `None`, which no ticket
    /// accepts.
    pub fn of(pid: Option<i32>) -> Caller {
        let Some((process, ppid)) = pid.and_then(stat) else {
            return Caller::default();
        };
        let parent = stat(ppid).map(|(p, _)| p);
        Caller {
            process: Some(process),
            parent,
            real_uid: crate::source::real_uid(process.pid),
        }
    }

    /// The processes a ticket granted to this caller may later be presented by.
    pub fn processes(&self) -> Vec<ProcId> {
        self.process
            .iter()
            .chain(self.parent.iter())
            .copied()
            .collect()
    }
}

/// `(pid and start time, parent pid)` of `pid`, from `/proc/PID/stat`.
pub(crate) fn stat(pid: i32) -> Option<(ProcId, i32)> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &text)
}

/// Fields after the command name (which may hold spaces and parentheses, so it ends at the last
/// `)`): state is field 3, ppid field 4, starttime field 22.
fn parse_stat(pid: i32, text: &str) -> Option<(ProcId, i32)> {
    let rest = text.get(text.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((ProcId { pid, start }, ppid))
}

/// The peer's credentials as the kernel recorded them at `connect(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub pid: Option<i32>,
}

impl Peer {
    pub fn of(stream: &UnixStream) -> std::io::Result<Peer> {
        let cred = stream.peer_cred()?;
        Ok(Peer {
            uid: cred.uid(),
            pid: cred.pid(),
        })
    }

    /// `Err(message for the peer)` unless the peer is root.
    pub fn check(&self) -> Result<(), String> {
        if self.uid == 0 {
            Ok(())
        } else {
            Err(format!(
                "jitd serves root (uid 0) only; this process runs as uid {}",
                self.uid
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_root_passes() {
        assert!(
            Peer {
                uid: 0,
                pid: Some(1)
            }
            .check()
            .is_ok()
        );
        let err = Peer {
            uid: 65534,
            pid: None,
        }
        .check()
        .unwrap_err();
        assert!(err.contains("uid 0") && err.contains("65534"), "{err}");
    }

    #[test]
    fn parses_stat_whatever_the_command_name_holds() {
        let line = "4242 (a) b) (c) S 17 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 \
                    1 2 3";
        assert_eq!(
            parse_stat(4242, line),
            Some((
                ProcId {
                    pid: 4242,
                    start: 987654
                },
                17
            ))
        );
        assert_eq!(parse_stat(1, "garbage"), None);
        assert_eq!(parse_stat(1, "1 (x) S 0"), None);
    }

    #[test]
    fn knows_this_process_and_its_parent_and_nothing_for_a_dead_pid() {
        let me = Caller::of(Some(std::process::id() as i32));
        let process = me.process.unwrap();
        assert_eq!(process.pid, std::process::id() as i32);
        // SAFETY: getppid has no preconditions.
        assert_eq!(me.parent.unwrap().pid, unsafe { libc::getppid() });
        assert_eq!(me.processes().len(), 2);
        // SAFETY: getuid has no preconditions.
        assert_eq!(me.real_uid, Some(unsafe { libc::getuid() }));
        assert_eq!(Caller::of(Some(process.pid)).process, Some(process));
        assert_eq!(Caller::of(None), Caller::default());
        assert_eq!(Caller::of(Some(-5)), Caller::default());
        assert!(Caller::default().processes().is_empty());
    }

    #[tokio::test]
    async fn reads_our_own_uid_from_the_kernel() {
        let (a, _b) = UnixStream::pair().unwrap();
        let p = Peer::of(&a).unwrap();
        // SAFETY: getuid has no preconditions.
        assert_eq!(p.uid, unsafe { libc::getuid() });
        assert_eq!(p.pid, Some(std::process::id() as i32));
    }
}
