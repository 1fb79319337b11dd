//! A session's processes, from `/proc`: the process that opened it (its leader: sshd's monitor,
//! su, login) and every descendant, the terminals they write to, and the systemd-logind session
//! they run in. Processes are named by pid *and* start time ([`ProcId`]), so a pid the kernel
//! handed to a new process since is never taken for the old one.
//!
//! Reads only; never blocks (procfs reads do not wait on anything).

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::peer::{ProcId, stat};

/// True while `p` runs: its pid exists with the same start time, and it is not a zombie (a
/// process that exited and waits for its parent to collect it runs no more).
pub fn alive(p: ProcId) -> bool {
    stat(p.pid).is_some_and(|(now, _)| now.start == p.start) && !zombie(p.pid)
}

/// The state letter of `/proc/PID/stat` is `Z` (or `X`, dead).
fn zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|text| {
            let rest = text.get(text.rfind(')')? + 1..)?;
            rest.split_whitespace().next().map(|s| s == "Z" || s == "X")
        })
        .unwrap_or(true)
}

/// Every running process now: itself and its parent's pid.
fn table() -> Vec<(ProcId, i32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| !zombie(*pid))
        .filter_map(stat)
        .collect()
}

/// The descendants of `leader` in `table`, nearest first. A child started before its parent
/// cannot be one (its parent's pid was reused).
pub fn descendants_in(leader: ProcId, table: &[(ProcId, i32)]) -> Vec<ProcId> {
    let mut children: BTreeMap<i32, Vec<ProcId>> = BTreeMap::new();
    for (p, ppid) in table {
        children.entry(*ppid).or_default().push(*p);
    }
    let mut out = Vec::new();
    let mut seen = BTreeSet::from([leader.pid]);
    let mut queue = vec![leader];
    while let Some(parent) = queue.first().copied() {
        queue.remove(0);
        for c in children.get(&parent.pid).into_iter().flatten() {
            if c.start >= parent.start && seen.insert(c.pid) {
                out.push(*c);
                queue.push(*c);
            }
        }
    }
    out
}

/// The descendants of `leader` now.
pub fn descendants(leader: ProcId) -> Vec<ProcId> {
    descendants_in(leader, &table())
}

/// A terminal a session's process writes to: the path that reopens it whatever mount namespace
/// the process runs in (`/proc/PID/fd/N`), and the device, so each terminal is counted once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminal {
    pub path: PathBuf,
    pub device: u64,
    /// What the process calls it (`/dev/pts/3`), for the log.
    pub name: String,
}

/// True for a terminal device's name: `/dev/pts/N`, `/dev/ttyN`, `/dev/ttySN`, `/dev/console`.
pub fn is_terminal_name(name: &str) -> bool {
    name.strip_prefix("/dev/pts/")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        || name
            .strip_prefix("/dev/tty")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric()))
        || name == "/dev/console"
}

/// The terminals on the standard input, output and error of `leader` and its descendants.
pub fn terminals(leader: ProcId) -> Vec<Terminal> {
    let mut out: Vec<Terminal> = Vec::new();
    let mut procs = vec![leader];
    procs.extend(descendants(leader));
    for p in procs {
        for fd in 0..3 {
            let path = PathBuf::from(format!("/proc/{}/fd/{fd}", p.pid));
            let Ok(target) = std::fs::read_link(&path) else {
                continue;
            };
            let name = target.to_string_lossy().into_owned();
            if !is_terminal_name(&name) {
                continue;
            }
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if out.iter().any(|t| t.device == meta.rdev()) {
                continue;
            }
            out.push(Terminal {
                path,
                device: meta.rdev(),
                name,
            });
        }
    }
    out
}

/// The device path PAM's tty item names, if it names one (`/dev/pts/3`, `pts/3`, `tty1`);
/// `None` for what is not a device (`ssh`, an X display `:0`).
pub fn pam_tty_device(tty: &str) -> Option<PathBuf> {
    let path = if tty.starts_with("/dev/") {
        tty.to_owned()
    } else {
        format!("/dev/{tty}")
    };
    is_terminal_name(&path).then(|| PathBuf::from(path))
}

/// The systemd-logind session `pid` runs in, from its cgroup (`…/session-42.scope`).
pub fn logind_session(pid: i32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    logind_session_in(&text)
}

/// The logind session id in the text of `/proc/PID/cgroup` (cgroup v2 or the v1 systemd
/// hierarchy), if the process runs in a session scope.
pub fn logind_session_in(cgroup: &str) -> Option<String> {
    cgroup.lines().find_map(|line| {
        let path = line.splitn(3, ':').nth(2)?;
        path.split('/').find_map(|part| {
            let id = part.strip_prefix("session-")?.strip_suffix(".scope")?;
            (!id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric())).then(|| id.to_owned())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: i32, start: u64) -> ProcId {
        ProcId { pid, start }
    }

    #[test]
    fn descendants_follow_parents_and_refuse_a_reused_pid() {
        let leader = p(100, 50);
        let table = [
            (p(100, 50), 1),
            (p(101, 60), 100), // the shell
            (p(102, 70), 101), // its child
            (p(103, 40), 100), // started before the leader: pid 100 was someone else then
            (p(104, 80), 1),   // unrelated
            (p(105, 90), 103), // under the impostor
        ];
        assert_eq!(descendants_in(leader, &table), vec![p(101, 60), p(102, 70)]);
        assert!(descendants_in(p(999, 1), &table).is_empty());
    }

    #[test]
    fn this_process_is_alive_and_a_recycled_start_time_is_not() {
        let (me, _) = stat(std::process::id() as i32).unwrap();
        assert!(alive(me));
        assert!(!alive(ProcId {
            pid: me.pid,
            start: me.start + 1
        }));
        // A child of this test process is found among its descendants, and then gone.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let cid = child.id() as i32;
        assert!(descendants(me).iter().any(|d| d.pid == cid));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!descendants(me).iter().any(|d| d.pid == cid));
    }

    #[test]
    fn terminal_names() {
        for yes in [
            "/dev/pts/0",
            "/dev/pts/17",
            "/dev/tty1",
            "/dev/ttyS0",
            "/dev/console",
        ] {
            assert!(is_terminal_name(yes), "{yes}");
        }
        for no in [
            "/dev/null",
            "/dev/pts/",
            "/dev/pts/ptmx",
            "/dev/tty",
            "ssh",
            "/dev/pts/1/x",
        ] {
            assert!(!is_terminal_name(no), "{no}");
        }
        assert_eq!(pam_tty_device("pts/3"), Some(PathBuf::from("/dev/pts/3")));
        assert_eq!(
            pam_tty_device("/dev/tty2"),
            Some(PathBuf::from("/dev/tty2"))
        );
        assert_eq!(pam_tty_device("ssh"), None);
        assert_eq!(pam_tty_device(":0"), None);
        assert_eq!(pam_tty_device("../../etc/passwd"), None);
    }

    #[test]
    fn the_logind_session_comes_from_the_scope() {
        let v2 = "0::/user.slice/user-0.slice/session-42.scope\n";
        assert_eq!(logind_session_in(v2).as_deref(), Some("42"));
        let v1 = "12:pids:/user.slice/user-1000.slice/session-c3.scope\n\
                  1:name=systemd:/user.slice/user-1000.slice/session-c3.scope\n";
        assert_eq!(logind_session_in(v1).as_deref(), Some("c3"));
        for none in [
            "0::/system.slice/ssh.service\n",
            "0::/user.slice/user-0.slice/user@0.service/app.slice\n",
            "0::/\n",
            "garbage",
            "0::/session-.scope\n",
            "0::/session-1;rm.scope\n",
        ] {
            assert_eq!(logind_session_in(none), None, "{none}");
        }
    }
}
