//! Resolves names through this process's own glibc NSS, one request per stdin line, answering
//! one line each on stdout. Unlike `getent`, it stays alive between lookups, which is what the
//! tests need to replace the cache under a process that has it mapped.
//!
//! Requests: `passwd NAME|UID`, `group NAME|GID`, and `passwd_r BUFLEN NAME` (a single
//! `getpwnam_r` with a buffer of BUFLEN bytes, to see glibc's ERANGE). Answers are the entry in
//! `/etc/passwd` or `/etc/group` form, `notfound`, or `error ERRNO`.

use std::ffi::{CStr, CString};
use std::io::{self, BufRead, Write};

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

fn answer(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let result = match words.as_slice() {
        ["passwd", key] => passwd(key, None),
        ["group", key] => group(key),
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
