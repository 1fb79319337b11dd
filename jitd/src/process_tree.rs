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

/// The program `pid` runs, as the kernel names it (`comm` in `/proc/PID/stat`, at most 15
/// bytes; unlike the command line, a process cannot dress it up with `setproctitle`).
pub fn command_name(pid: i32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let start = text.find('(')? + 1;
    let end = text.rfind(')')?;
    text.get(start..end).map(str::to_owned)
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

/// The terminals of `leader` and its descendants: those on their standard input, output and
/// error, found through `/proc/PID/fd` (the very file, whatever mount namespace the process runs
/// in; reading another user's needs ptrace rights), and else their controlling terminal, from
/// `/proc/PID/stat` (readable without them), as the device of that name in jitd's `/dev`.
pub fn terminals(leader: ProcId) -> Vec<Terminal> {
    let mut out: Vec<Terminal> = Vec::new();
    let mut add = |t: Terminal| {
        if !out.iter().any(|o| o.device == t.device) {
            out.push(t);
        }
    };
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
            if let Ok(meta) = std::fs::metadata(&path) {
                add(Terminal {
                    path,
                    device: meta.rdev(),
                    name,
                });
            }
        }
        if let Some(t) = controlling_terminal(p.pid) {
            add(t);
        }
    }
    out
}

/// The controlling terminal of `pid`, from the `tty_nr` field of `/proc/PID/stat`, if jitd's
/// `/dev` has a device of that number under its usual name.
pub fn controlling_terminal(pid: i32) -> Option<Terminal> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = text.get(text.rfind(')')? + 1..)?;
    // state, ppid, pgrp, session, tty_nr
    let tty_nr: u64 = rest.split_whitespace().nth(4)?.parse().ok()?;
    let (path, device) = tty_device(tty_nr)?;
    let meta = std::fs::metadata(&path).ok()?;
    (meta.rdev() == device).then(|| Terminal {
        name: path.display().to_string(),
        path,
        device,
    })
}

/// The usual name of the terminal device numbered `tty_nr` (as `/proc/PID/stat` encodes it: the
/// major number in bits 8 to 15, the minor in bits 0 to 7 and 20 to 31), and its device number:
/// pseudo-terminals (majors 136 to 143) `/dev/pts/N`, virtual consoles (major 4, minors 1 to 63)
/// `/dev/ttyN`, serial lines (major 4, minors 64 to 255) `/dev/ttySN`. Anything else (0: none).
pub fn tty_device(tty_nr: u64) -> Option<(PathBuf, u64)> {
    let major = (tty_nr >> 8) & 0xff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xf_ff00);
    let name = match (major, minor) {
        (136..=143, n) => format!("/dev/pts/{}", (major - 136) * 256 + n),
        (4, n @ 1..=63) => format!("/dev/tty{n}"),
        (4, n @ 64..=255) => format!("/dev/ttyS{}", n - 64),
        _ => return None,
    };
    let device = libc::makedev(u32::try_from(major).ok()?, u32::try_from(minor).ok()?);
    Some((PathBuf::from(name), device))
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
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert_eq!(command_name(me.pid).as_deref(), Some(comm.trim_end()));
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
    fn terminal_numbers_name_their_devices() {
        let nr = |major: u64, minor: u64| (major << 8) | (minor & 0xff) | ((minor & !0xff) << 12);
        let name = |n| tty_device(n).map(|(p, _)| p.display().to_string());
        assert_eq!(name(nr(136, 3)).as_deref(), Some("/dev/pts/3"));
        assert_eq!(name(nr(136, 300)).as_deref(), Some("/dev/pts/300"));
        assert_eq!(name(nr(137, 2)).as_deref(), Some("/dev/pts/258"));
        assert_eq!(name(nr(4, 1)).as_deref(), Some("/dev/tty1"));
        assert_eq!(name(nr(4, 65)).as_deref(), Some("/dev/ttyS1"));
        assert_eq!(tty_device(0), None);
        assert_eq!(tty_device(nr(1, 3)), None);
        assert_eq!(tty_device(nr(136, 3)).unwrap().1, libc::makedev(136, 3));
    }

    /// A process whose controlling terminal is a real pseudo-terminal: found from its
    /// `/proc/PID/stat` alone, as the device the pty's name stands for.
    #[test]
    fn a_controlling_terminal_is_found_from_stat() {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty fills the two descriptors; no name, termios or size is passed.
        let r = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(r, 0);
        let pts = std::fs::read_link(format!("/proc/self/fd/{slave}")).unwrap();
        use std::os::fd::FromRawFd;
        // SAFETY: a fresh duplicate of our own descriptor, owned by the child's stdin from now.
        let stdin = unsafe { std::os::fd::OwnedFd::from_raw_fd(libc::dup(slave)) };
        // setsid -c: a new session whose controlling terminal is its standard input.
        let mut child = std::process::Command::new("setsid")
            .args(["-c", "sleep", "30"])
            .stdin(std::process::Stdio::from(stdin))
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let mut found = None;
        for _ in 0..200 {
            found = controlling_terminal(pid);
            if found.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // SAFETY: closing the descriptors openpty gave us.
        unsafe {
            libc::close(master);
            libc::close(slave);
        }
        let t = found.expect("the controlling terminal");
        assert_eq!(t.path, pts);
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
