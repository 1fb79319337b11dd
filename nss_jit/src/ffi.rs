//! The functions glibc looks up by name (`_nss_jit_*`, the signatures of `<nss.h>` modules such
//! as nss_files). Each one only converts its C arguments and calls [`crate::state`], inside
//! [`guard`]: a panic becomes `NSS_STATUS_UNAVAIL` with `EIO` and never unwinds into C.
//!
//! Safety, for every function here: glibc passes NUL-terminated names, a `result` struct and a
//! `buffer` of `buflen` bytes that are ours until we return, and an `errnop` (usually `&errno`).
//! Null pointers are refused with `EINVAL` rather than trusted.

use std::ffi::CStr;
use std::panic::{self, AssertUnwindSafe};

use libc::{c_char, c_int, c_long, gid_t, size_t, uid_t};

use crate::buffer::Buffer;
use crate::gid_list::GidList;
use crate::state;
use crate::status::{NssStatus, Outcome};

const BAD_ARGUMENT: Outcome = Outcome::Unavailable(libc::EINVAL);

/// Runs `f`, catching any panic, and reports its outcome to glibc.
///
/// # Safety
/// `errnop` is null or valid for a write.
unsafe fn guard(errnop: *mut c_int, f: impl FnOnce() -> Outcome) -> NssStatus {
    // The default hook writes to fd 2, which in a daemon may be a socket or a log that is not
    // ours. This hook belongs to the std linked into this module only, not to the host process.
    // Unit tests keep the default, or their own failure messages would vanish.
    #[cfg(not(test))]
    {
        static QUIET: std::sync::Once = std::sync::Once::new();
        QUIET.call_once(|| panic::set_hook(Box::new(|_| {})));
    }
    // SAFETY: the caller's contract.
    unsafe { report(catch(f), errnop) }
}

/// `f`'s outcome, or `EIO` if it panicked: a bug, but one that must not abort sshd.
fn catch(f: impl FnOnce() -> Outcome) -> Outcome {
    panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or(Outcome::Unavailable(libc::EIO))
}

/// # Safety
/// `errnop` is null or valid for a write.
unsafe fn report(outcome: Outcome, errnop: *mut c_int) -> NssStatus {
    let (status, errno) = outcome.to_nss();
    if let Some(errno) = errno {
        // SAFETY: the caller's contract.
        if let Some(slot) = unsafe { errnop.as_mut() } {
            *slot = errno;
        }
    }
    status
}

/// # Safety
/// `p` is null or a NUL-terminated string that outlives `'a`.
unsafe fn c_name<'a>(p: *const c_char) -> Option<&'a [u8]> {
    // SAFETY: the caller's contract.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_bytes())
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_jit_getpwnam_r(
    name: *const c_char,
    result: *mut libc::passwd,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> NssStatus {
    // SAFETY (all blocks in this file): see the module comment.
    unsafe {
        guard(errnop, || {
            let (Some(n), Some(out)) = (c_name(name), result.as_mut()) else {
                return BAD_ARGUMENT;
            };
            state::with(|s| s.getpwnam(n, out, &mut Buffer::from_raw(buffer, buflen)))
        })
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_jit_getpwuid_r(
    uid: uid_t,
    result: *mut libc::passwd,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> NssStatus {
    unsafe {
        guard(errnop, || {
            let Some(out) = result.as_mut() else {
                return BAD_ARGUMENT;
            };
            state::with(|s| s.getpwuid(uid, out, &mut Buffer::from_raw(buffer, buflen)))
        })
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_jit_setpwent(_stayopen: c_int) -> NssStatus {
    unsafe { guard(std::ptr::null_mut(), || state::with(|s| s.setpwent())) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_jit_getpwent_r(
    result: *mut libc::passwd,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> NssStatus {
    unsafe {
        guard(errnop, || {
            let Some(out) = result.as_mut() else {
                return BAD_ARGUMENT;
            };
            state::with(|s| s.getpwent(out, &mut Buffer::from_raw(buffer, buflen)))
        })
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_jit_endpwent() -> NssStatus {
    unsafe {
        guard(std::ptr::null_mut(), || {
            state::with(|s| s.endpwent());
            Outcome::Found
        })
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_jit_getgrnam_r(
    name: *const c_char,
    result: *mut libc::group,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> NssStatus {
    unsafe {
        guard(errnop, || {
            let (Some(n), Some(out)) = (c_name(name), result.as_mut()) else {
                return BAD_ARGUMENT;
            };
            state::with(|s| s.getgrnam(n, out, &mut Buffer::from_raw(buffer, buflen)))
        })
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_jit_getgrgid_r(
    gid: gid_t,
    result: *mut libc::group,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> NssStatus {
    unsafe {
        guard(errnop, || {
            let Some(out) = result.as_mut() else {
                return BAD_ARGUMENT;
            };
            state::with(|s| s.getgrgid(gid, out, &mut Buffer::from_raw(buffer, buflen)))
        })
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_jit_setgrent(_stayopen: c_int) -> NssStatus {
    unsafe { guard(std::ptr::null_mut(), || state::with(|s| s.setgrent())) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_jit_getgrent_r(
    result: *mut libc::group,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> NssStatus {
    unsafe {
        guard(errnop, || {
            let Some(out) = result.as_mut() else {
                return BAD_ARGUMENT;
            };
            state::with(|s| s.getgrent(out, &mut Buffer::from_raw(buffer, buflen)))
        })
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_jit_endgrent() -> NssStatus {
    unsafe {
        guard(std::ptr::null_mut(), || {
            state::with(|s| s.endgrent());
            Outcome::Found
        })
    }
}

/// glibc's `initgroups`/`getgrouplist` hook: append the gids of every group listing `user`
/// (except `group`, the primary) to the malloc'd array `*groupsp` of `*size` entries, `*start`
/// used, growing it with realloc up to `limit` (no limit if <= 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_jit_initgroups_dyn(
    user: *const c_char,
    group: gid_t,
    start: *mut c_long,
    size: *mut c_long,
    groupsp: *mut *mut gid_t,
    limit: c_long,
    errnop: *mut c_int,
) -> NssStatus {
    unsafe {
        guard(errnop, || {
            let (Some(user), Some(mut list)) =
                (c_name(user), GidList::from_raw(start, size, groupsp, limit))
            else {
                return BAD_ARGUMENT;
            };
            state::with(|s| s.initgroups(user, group, &mut list))
        })
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_jit_getspnam_r(
    name: *const c_char,
    result: *mut libc::spwd,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> NssStatus {
    unsafe {
        guard(errnop, || {
            let (Some(n), Some(out)) = (c_name(name), result.as_mut()) else {
                return BAD_ARGUMENT;
            };
            state::with(|s| s.getspnam(n, out, &mut Buffer::from_raw(buffer, buflen)))
        })
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_jit_setspent(_stayopen: c_int) -> NssStatus {
    unsafe { guard(std::ptr::null_mut(), || state::with(|s| s.setspent())) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_jit_getspent_r(
    result: *mut libc::spwd,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> NssStatus {
    unsafe {
        guard(errnop, || {
            let Some(out) = result.as_mut() else {
                return BAD_ARGUMENT;
            };
            state::with(|s| s.getspent(out, &mut Buffer::from_raw(buffer, buflen)))
        })
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_jit_endspent() -> NssStatus {
    unsafe {
        guard(std::ptr::null_mut(), || {
            state::with(|s| s.endspent());
            Outcome::Found
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_unavail_with_eio() {
        let outcome = catch(|| panic!("a bug in a lookup"));
        assert_eq!(outcome, Outcome::Unavailable(libc::EIO));
        let mut errno = 0;
        assert_eq!(unsafe { report(outcome, &mut errno) }, NssStatus::Unavail);
        assert_eq!(errno, libc::EIO);
        assert_eq!(catch(|| Outcome::Found), Outcome::Found);
    }

    #[test]
    fn errno_is_left_alone_on_success_and_a_null_errnop_is_tolerated() {
        let mut errno = 1234;
        assert_eq!(
            unsafe { report(Outcome::Found, &mut errno) },
            NssStatus::Success
        );
        assert_eq!(errno, 1234);
        assert_eq!(
            unsafe { report(Outcome::TooSmall, &mut errno) },
            NssStatus::TryAgain
        );
        assert_eq!(errno, libc::ERANGE);
        let null = std::ptr::null_mut();
        assert_eq!(
            unsafe { report(Outcome::NotFound, null) },
            NssStatus::NotFound
        );
    }

    #[test]
    fn null_arguments_are_refused_not_followed() {
        let mut errno = 0;
        let status = unsafe {
            _nss_jit_getpwnam_r(
                std::ptr::null(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
                &mut errno,
            )
        };
        assert_eq!((status, errno), (NssStatus::Unavail, libc::EINVAL));
        let mut errno = 0;
        let status = unsafe {
            _nss_jit_initgroups_dyn(
                c"admin".as_ptr(),
                0,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
                &mut errno,
            )
        };
        assert_eq!((status, errno), (NssStatus::Unavail, libc::EINVAL));
    }
}
