//! Who sits at a prompt, as the kernel tells it rather than as the application says: the key
//! wrong codes are counted against on the server (`uid:1000`, `addr:192.0.2.7`, `tty:tty1`).
//!
//! pam_jit runs inside the program that asked for the login. su and sudo are setuid root, so
//! the socket's peer credentials (the effective uid) say root for every local user; the *real*
//! uid of that process (`/proc/PID/status`, read when it connected) is still the user who ran it,
//! and no unprivileged user can change it. A process whose real uid is root (sshd, login, su run
//! by root) is trusted with its own PAM items: sshd's `PAM_RHOST` names the remote address, a
//! console's `PAM_TTY` the terminal. Never fails: a process that left no trace is `unknown`.

/// The source of a login: the real uid of the asking process when it is not root, else the
/// remote address, else the terminal, else `uid:0`.
pub fn login_source(real_uid: Option<u32>, rhost: Option<&str>, tty: Option<&str>) -> String {
    let item = |s: Option<&str>| {
        s.map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let source = match real_uid {
        Some(uid) if uid != 0 => format!("uid:{uid}"),
        _ => {
            if let Some(addr) = item(rhost) {
                format!("addr:{addr}")
            } else if let Some(t) = item(tty) {
                format!("tty:{}", t.strip_prefix("/dev/").unwrap_or(&t))
            } else if real_uid == Some(0) {
                "uid:0".to_owned()
            } else {
                "unknown".to_owned()
            }
        }
    };
    source.chars().take(crate::driver::MAX_ITEM).collect()
}

/// The real uid of `pid` (the first field of `Uid:` in `/proc/PID/status`).
pub fn real_uid(pid: i32) -> Option<u32> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_real_uid(&text)
}

fn parse_real_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_decides_before_the_application() {
        // Name, real uid, PAM_RHOST, PAM_TTY, the source.
        type Case<'a> = (
            &'a str,
            Option<u32>,
            Option<&'a str>,
            Option<&'a str>,
            &'a str,
        );
        let cases: &[Case] = &[
            // su and sudo: setuid root, run by a local user; whatever items they set.
            (
                "su by uid 1000",
                Some(1000),
                None,
                Some("/dev/pts/3"),
                "uid:1000",
            ),
            (
                "sudo by uid 1001 with an rhost",
                Some(1001),
                Some("web01"),
                None,
                "uid:1001",
            ),
            // sshd runs as root and names the remote address.
            (
                "ssh",
                Some(0),
                Some("192.0.2.7"),
                Some("ssh"),
                "addr:192.0.2.7",
            ),
            (
                "ssh over IPv6",
                Some(0),
                Some("2001:db8::1"),
                None,
                "addr:2001:db8::1",
            ),
            // The console: login as root, on a terminal.
            ("console", Some(0), None, Some("tty1"), "tty:tty1"),
            (
                "su by root",
                Some(0),
                Some(""),
                Some("/dev/pts/0"),
                "tty:pts/0",
            ),
            ("root without items", Some(0), None, None, "uid:0"),
            (
                "a process gone before it could be read",
                None,
                None,
                None,
                "unknown",
            ),
            (
                "gone, but sshd-like items",
                None,
                Some("192.0.2.8"),
                None,
                "addr:192.0.2.8",
            ),
        ];
        for (name, uid, rhost, tty, want) in cases {
            assert_eq!(login_source(*uid, *rhost, *tty), *want, "{name}");
        }
        let long = "a".repeat(1000);
        assert_eq!(
            login_source(Some(0), Some(&long), None).len(),
            crate::driver::MAX_ITEM
        );
    }

    #[test]
    fn reads_the_real_uid_not_the_effective_one() {
        let status = "Name:\tsu\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t0\t0\t0\n\
                      Gid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(parse_real_uid(status), Some(1000));
        assert_eq!(parse_real_uid("Name:\tx\n"), None);
        assert_eq!(parse_real_uid("Uid:\tnope\n"), None);
        // SAFETY: getuid has no preconditions.
        let me = unsafe { libc::getuid() };
        assert_eq!(real_uid(std::process::id() as i32), Some(me));
        assert_eq!(real_uid(-1), None);
    }
}
