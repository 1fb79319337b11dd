//! Resolves names through this process's own glibc NSS, one request per stdin line, answering
//! one line each on stdout. Unlike `getent`, it stays alive between lookups, which is what the
//! tests need to replace the cache under a process that has already read it.
//!
//! Requests: `passwd NAME|UID`, `group NAME|GID`, and `passwd_r BUFLEN NAME` (a single
//! `getpwnam_r` with a buffer of BUFLEN bytes, to see glibc's ERANGE). Answers are the entry in
//! `/etc/passwd` or `/etc/group` form, `notfound`, or `error ERRNO`.
//!
//! `fork COUNT NAME` checks that the module is fork-safe: a second thread looks NAME up without
//! pause while this one forks COUNT times; each child looks NAME up once and exits 0 if it was
//! found. A child stuck on a lock inherited from the looking-up thread is killed by its own
//! `alarm` after [`CHILD_BOUND_SECS`]. The answer is `forked COUNT` or the first failure.

use std::ffi::{CStr, CString};
use std::io::{self, BufRead, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use libc::{c_char, c_int};

fn text(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: glibc filled the struct with NUL-terminated strings in our buffer.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Calls a `get*_r` function, growing the buffer on ERANGE as glibc's own non-`_r` wrappers do,
/// unless `fixed` pins its size.
fn call<T>(
    fixed: Option<usize>,
    f: impl Fn(&mut T, &mut [c_char], &mut *mut T) -> c_int,
) -> Result<Option<String>, c_int>
where
    T: Describe,
{
    let mut len = fixed.unwrap_or(64);
    loop {
        // SAFETY: the libc structs are plain data; glibc fills them.
        let mut entry: T = unsafe { std::mem::zeroed() };
        let mut buf: Vec<c_char> = vec![0; len];
        let mut result: *mut T = std::ptr::null_mut();
        match f(&mut entry, &mut buf, &mut result) {
            0 if result.is_null() => return Ok(None),
            0 => return Ok(Some(entry.describe())),
            libc::ERANGE if fixed.is_none() && len < 1 << 20 => len *= 2,
            e => return Err(e),
        }
    }
}

trait Describe {
    fn describe(&self) -> String;
}

impl Describe for libc::passwd {
    fn describe(&self) -> String {
        format!(
            "{}:{}:{}:{}:{}:{}:{}",
            text(self.pw_name),
            text(self.pw_passwd),
            self.pw_uid,
            self.pw_gid,
            text(self.pw_gecos),
            text(self.pw_dir),
            text(self.pw_shell)
        )
    }
}

impl Describe for libc::group {
    fn describe(&self) -> String {
        let mut members = Vec::new();
        let mut p = self.gr_mem;
        // SAFETY: gr_mem is a NULL-terminated array in our buffer.
        while !p.is_null() && !unsafe { *p }.is_null() {
            members.push(text(unsafe { *p }));
            p = unsafe { p.add(1) };
        }
        format!(
            "{}:{}:{}:{}",
            text(self.gr_name),
            text(self.gr_passwd),
            self.gr_gid,
            members.join(",")
        )
    }
}

fn passwd(key: &str, fixed: Option<usize>) -> Result<Option<String>, c_int> {
    let name = CString::new(key).map_err(|_| libc::EINVAL)?;
    let uid: Option<u32> = key.parse().ok();
    call::<libc::passwd>(fixed, |e, b, r| unsafe {
        match uid {
            Some(uid) => libc::getpwuid_r(uid, e, b.as_mut_ptr(), b.len(), r),
            None => libc::getpwnam_r(name.as_ptr(), e, b.as_mut_ptr(), b.len(), r),
        }
    })
}

fn group(key: &str) -> Result<Option<String>, c_int> {
    let name = CString::new(key).map_err(|_| libc::EINVAL)?;
    let gid: Option<u32> = key.parse().ok();
    call::<libc::group>(None, |e, b, r| unsafe {
        match gid {
            Some(gid) => libc::getgrgid_r(gid, e, b.as_mut_ptr(), b.len(), r),
            None => libc::getgrnam_r(name.as_ptr(), e, b.as_mut_ptr(), b.len(), r),
        }
    })
}

/// How long a forked child may take for one lookup before it is killed: generous, since a
/// healthy child needs microseconds and a deadlocked one never finishes.
const CHILD_BOUND_SECS: u32 = 20;

fn fork_while_looking_up(count: u32, name: &str) -> String {
    let stop = AtomicBool::new(false);
    let lookups = AtomicU64::new(0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let _ = passwd(name, None);
                lookups.fetch_add(1, Ordering::Relaxed);
            }
        });
        // Fork only once the other thread is in its loop, so every fork can land in a lookup.
        while lookups.load(Ordering::Relaxed) == 0 {
            std::thread::yield_now();
        }
        let outcome = (1..=count).find_map(|i| {
            fork_one(name)
                .err()
                .map(|e| format!("child {i} of {count}: {e}"))
        });
        stop.store(true, Ordering::Relaxed);
        outcome.unwrap_or_else(|| format!("forked {count}"))
    })
}

/// Forks a child that looks `name` up once; Ok if it exited 0.
fn fork_one(name: &str) -> Result<(), String> {
    // SAFETY: the child only looks up and exits: what this helper exists to test.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork failed: {}", io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: alarm and _exit are async-signal-safe; SIGALRM's default action kills.
        unsafe {
            libc::alarm(CHILD_BOUND_SECS);
            let code = match passwd(name, None) {
                Ok(Some(_)) => 0,
                Ok(None) => 1,
                Err(_) => 2,
            };
            libc::_exit(code);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Err(format!("waitpid failed: {}", io::Error::last_os_error()));
    }
    match (
        libc::WIFEXITED(status),
        libc::WEXITSTATUS(status),
        libc::WTERMSIG(status),
    ) {
        (true, 0, _) => Ok(()),
        (true, code, _) => Err(format!("exit {code} (1: not found, 2: error)")),
        (false, _, libc::SIGALRM) => Err(format!(
            "no answer within {CHILD_BOUND_SECS} s (deadlocked)"
        )),
        (false, _, signal) => Err(format!("killed by signal {signal}")),
    }
}

fn answer(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let result = match words.as_slice() {
        ["passwd", key] => passwd(key, None),
        ["group", key] => group(key),
        ["fork", count, key] => match count.parse() {
            Ok(count) => return fork_while_looking_up(count, key),
            Err(_) => return format!("bad request: {line}"),
        },
        ["passwd_r", len, key] => match len.parse() {
            Ok(len) => passwd(key, Some(len)),
            Err(_) => return format!("bad request: {line}"),
        },
        _ => return format!("bad request: {line}"),
    };
    match result {
        Ok(Some(entry)) => entry,
        Ok(None) => "notfound".into(),
        Err(errno) => format!("error {errno}"),
    }
}

fn main() -> io::Result<()> {
    let mut out = io::stdout().lock();
    for line in io::stdin().lock().lines() {
        writeln!(out, "{}", answer(&line?))?;
        out.flush()?;
    }
    Ok(())
}
