//! Ending a session whose reservation ended. Where systemd-logind runs and the session's leader
//! is in one of its sessions, logind ends it (`loginctl terminate-session`: every process of the
//! session scope, also those that left the process tree). Otherwise jit ends the session's
//! processes itself: every descendant of the leader that runs another program (the shell, what
//! it started) gets SIGHUP and SIGTERM; the service's own helpers (sshd's unprivileged child)
//! then finish as after a logout; whatever is left after a grace period gets SIGKILL, and the
//! leader (sshd's monitor, su, login) is left to close the PAM session as usual; should it
//! linger, it gets the same. Without logind, a process that detached from the tree (a
//! double-forked daemon) is not found.
//!
//! Signals go through pidfds, opened and then checked against the process's start time, so a
//! pid reused since the tree was read is never signalled. Blocking (it waits for processes to
//! exit), so the daemon runs it on a blocking thread. Bounded: at most a few seconds.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::peer::{ProcId, stat};
use crate::process_tree::{alive, command_name, descendants, logind_session};

/// How long processes get to exit after SIGHUP and SIGTERM, before SIGKILL.
const GRACE: Duration = Duration::from_secs(2);
/// How long the leader gets to close the session once its children are gone.
const LEADER_GRACE: Duration = Duration::from_secs(3);
/// Bound on `loginctl`.
const LOGINCTL_LIMIT: Duration = Duration::from_secs(5);

/// How a session was ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How {
    /// systemd-logind terminated this session.
    Logind(String),
    /// jit signalled this many processes.
    Signals(usize),
    /// Its processes were already gone.
    Gone,
}

impl std::fmt::Display for How {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            How::Logind(id) => write!(f, "systemd-logind terminated session {id}"),
            How::Signals(n) => write!(f, "{n} process(es) of the session were signalled"),
            How::Gone => write!(f, "its processes were already gone"),
        }
    }
}

/// True where systemd runs as the init system (as `sd_booted` tells it), so logind may hold the
/// session.
fn systemd_booted() -> bool {
    std::path::Path::new("/run/systemd/system").is_dir()
}

/// Ends the session led by `leader`.
pub fn end(leader: ProcId) -> Result<How, String> {
    if !alive(leader) {
        return Ok(How::Gone);
    }
    if systemd_booted()
        && let Some(id) = logind_session(leader.pid)
    {
        match loginctl_terminate(&id) {
            Ok(()) => return Ok(How::Logind(id)),
            Err(e) => tracing::warn!(
                session = %id,
                "systemd-logind did not end the session ({e}); ending its processes instead"
            ),
        }
    }
    Ok(How::Signals(end_processes(leader)))
}

fn loginctl_terminate(id: &str) -> Result<(), String> {
    let mut child = Command::new("loginctl")
        .args(["terminate-session", id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run loginctl: {e}"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(s)) if s.success() => return Ok(()),
            Ok(Some(s)) => return Err(format!("loginctl terminate-session {id}: {s}")),
            Ok(None) if start.elapsed() < LOGINCTL_LIMIT => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "loginctl did not answer within {}s",
                    LOGINCTL_LIMIT.as_secs()
                ));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Signals the leader's descendants (then the leader, if it lingers); how many processes got a
/// signal.
fn end_processes(leader: ProcId) -> usize {
    let mut hit = std::collections::HashSet::new();
    let mut round = |targets: &[ProcId], signals: &[i32]| {
        for p in targets {
            for sig in signals {
                if signal(*p, *sig) {
                    hit.insert(*p);
                }
            }
        }
    };
    // The person's processes first. A shell ignores SIGTERM while interactive, and leaves on
    // SIGHUP (as when its terminal goes away); other programs leave on SIGTERM. The service's
    // own helpers (sshd's unprivileged child runs the leader's program) are left to finish on
    // their own once the shell is gone, so that they clean up (sshd removes the session's
    // ExposeAuthInfo file) and close the connection as after a logout.
    let program = command_name(leader.pid);
    let persons: Vec<ProcId> = descendants(leader)
        .into_iter()
        .filter(|p| program.is_none() || command_name(p.pid) != program)
        .collect();
    tracing::debug!(
        leader = leader.pid,
        program = ?program,
        processes = ?persons.iter().map(|p| (p.pid, command_name(p.pid))).collect::<Vec<_>>(),
        "ending the session's processes"
    );
    round(&persons, &[libc::SIGHUP, libc::SIGTERM, libc::SIGCONT]);
    wait_until(GRACE, || descendants(leader).is_empty());
    let left = descendants(leader);
    if !left.is_empty() {
        tracing::debug!(processes = ?left, "killing what is left of the session");
    }
    round(&left, &[libc::SIGKILL]);
    if !wait_until(LEADER_GRACE, || !alive(leader)) {
        round(&[leader], &[libc::SIGHUP, libc::SIGTERM]);
        if !wait_until(GRACE, || !alive(leader)) {
            let mut all = descendants(leader);
            all.push(leader);
            round(&all, &[libc::SIGKILL]);
        }
    }
    hit.len()
}

/// Polls `done` until it holds or `limit` passes; whether it held.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `sig` to `p` if it is still that process; true if sent.
fn signal(p: ProcId, sig: i32) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, p.pid, 0) };
    if fd < 0 {
        if std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
            return false;
        }
        // No pidfds here (a kernel before 5.3, or a filter that refuses the call): check, then
        // kill, with a narrow window for a reused pid.
        // SAFETY: plain kill(2).
        return same(p) && unsafe { libc::kill(p.pid, sig) } == 0;
    }
    let fd = fd as libc::c_int;
    // The descriptor pins the process: if it is still the one we mean now, it stays so.
    let sent = same(p)
        // SAFETY: a descriptor we own, a valid signal, no siginfo, no flags.
        && unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd,
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        } == 0;
    // SAFETY: closing the descriptor pidfd_open gave us.
    unsafe { libc::close(fd) };
    sent
}

fn same(p: ProcId) -> bool {
    stat(p.pid).is_some_and(|(now, _)| now.start == p.start)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session of our own: a leader (`sh`) whose child ignores SIGHUP and SIGTERM. Ending it
    /// takes the child down (SIGKILL after the grace), then the leader exits on its own.
    #[test]
    fn ends_the_descendants_and_lets_the_leader_finish() {
        let mut leader = Command::new("sh")
            .args(["-c", "sh -c 'trap \"\" HUP TERM; sleep 60 & wait' ; exit 0"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (me, _) = stat(leader.id() as i32).unwrap();
        wait_until(Duration::from_secs(10), || descendants(me).len() >= 2);
        let kids = descendants(me);
        assert!(kids.len() >= 2, "{kids:?}");
        assert_eq!(end(me).unwrap(), How::Signals(kids.len()));
        assert!(descendants(me).is_empty());
        let status = leader.wait().unwrap();
        assert!(status.success(), "the leader finished on its own: {status}");
        assert_eq!(end(me).unwrap(), How::Gone);
    }

    /// A pid that now names another process is not signalled.
    #[test]
    fn a_stale_process_is_never_signalled() {
        let (me, _) = stat(std::process::id() as i32).unwrap();
        let stale = ProcId {
            pid: me.pid,
            start: me.start + 1,
        };
        assert!(!signal(stale, 0));
        assert!(signal(me, 0));
    }
}
