//! The uid a user name resolves to in this process, through NSS (`getpwnam_r`): the uid the login
//! will run as, whichever backend answers (a second uid-0 name in /etc/passwd, a case-insensitive
//! directory). jit guards a login by that uid as well as by its name ([`crate::decide`]).
//!
//! For pam_jit and `jitd authorized-keys`. Never for nss_jit: an NSS module that resolves a
//! name through NSS calls itself. Never panics and never loops without bound: the buffer grows on
//! `ERANGE` up to a fixed cap.

use std::ffi::CString;

/// Largest buffer offered to `getpwnam_r`; an entry that needs more is treated as unresolved.
const MAX_BUFFER: usize = 1 << 20;

/// The uid of `name`, or `None` if it does not resolve (or cannot be asked).
pub fn uid_of(name: &[u8]) -> Option<u32> {
    let name = CString::new(name).ok()?;
    let mut len = 1024;
    loop {
        let mut buf = vec![0 as libc::c_char; len];
        // SAFETY: a zeroed passwd is a valid out-parameter (nullable pointers, integers).
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call: `name` NUL-terminated, `buf` of `len`
        // bytes, `pw` and `result` out-parameters on our stack.
        let rc = unsafe {
            libc::getpwnam_r(
                name.as_ptr(),
                &mut pw,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        match rc {
            0 if !result.is_null() => return Some(pw.pw_uid),
            libc::ERANGE if len < MAX_BUFFER => len *= 4,
            // Not found, or the lookup failed: nothing to add to the name check.
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_root_and_not_a_name_nobody_has() {
        assert_eq!(uid_of(b"root"), Some(0));
        assert_eq!(uid_of(b"no-such-user-jit-test"), None);
        assert_eq!(uid_of(b"nul\0inside"), None);
        assert_eq!(uid_of(b""), None);
    }
}
