//! The few libpam calls pam-bindings 0.4 lacks: `pam_get_user` returning raw bytes (its own
//! wrapper refuses non-UTF-8 names with `PAM_SYSTEM_ERR`, which we could not tell from a real
//! error), `pam_putenv` (set and unset), `pam_getenv` and `pam_syslog`.
//!
//! Every return code is checked before a returned pointer is read.

use std::ffi::{CStr, CString, c_char, c_int};

use pam::constants::PamResultCode;
use pam::module::PamHandle;

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_get_user(pamh: *mut PamHandle, user: *mut *const c_char, prompt: *const c_char)
    -> c_int;
    fn pam_putenv(pamh: *mut PamHandle, name_value: *const c_char) -> c_int;
    fn pam_getenv(pamh: *mut PamHandle, name: *const c_char) -> *const c_char;
    fn pam_syslog(pamh: *const PamHandle, priority: c_int, fmt: *const c_char, ...);
}

/// `PAM_USER`, prompting through the conversation if the application did not set it.
pub fn get_user(pamh: &mut PamHandle) -> Result<Vec<u8>, c_int> {
    let mut ptr: *const c_char = std::ptr::null();
    // SAFETY: `pamh` is the live handle PAM gave this hook; `ptr` is a valid out-pointer; a null
    // prompt asks libpam for its default.
    let rc = unsafe { pam_get_user(pamh, &mut ptr, std::ptr::null()) };
    if rc != PamResultCode::PAM_SUCCESS as c_int {
        return Err(rc);
    }
    if ptr.is_null() {
        return Err(PamResultCode::PAM_SYSTEM_ERR as c_int);
    }
    // SAFETY: on success libpam returns a NUL-terminated string it owns for the handle's life;
    // we copy it out at once.
    Ok(unsafe { CStr::from_ptr(ptr) }.to_bytes().to_vec())
}

/// Sets `name=value` in the PAM environment. libpam copies the string.
pub fn putenv(pamh: &mut PamHandle, name: &str, value: &str) -> Result<(), c_int> {
    let pair =
        CString::new(format!("{name}={value}")).map_err(|_| PamResultCode::PAM_BUF_ERR as c_int)?;
    // SAFETY: `pamh` is live; `pair` is a valid C string for the duration of the call.
    let rc = unsafe { pam_putenv(pamh, pair.as_ptr()) };
    if rc == PamResultCode::PAM_SUCCESS as c_int {
        Ok(())
    } else {
        Err(rc)
    }
}

/// Removes `name` from the PAM environment (`pam_putenv` with a bare name). Removing a name that
/// is not set is not an error.
pub fn unsetenv(pamh: &mut PamHandle, name: &str) -> Result<(), c_int> {
    let bare = CString::new(name).map_err(|_| PamResultCode::PAM_BUF_ERR as c_int)?;
    // SAFETY: `pamh` is live; `bare` is a valid C string for the duration of the call.
    let rc = unsafe { pam_putenv(pamh, bare.as_ptr()) };
    // libpam answers PAM_BAD_ITEM when asked to delete a name it does not hold.
    if rc == PamResultCode::PAM_SUCCESS as c_int || rc == PamResultCode::PAM_BAD_ITEM as c_int {
        Ok(())
    } else {
        Err(rc)
    }
}

/// The value of `name` in the PAM environment, copied out; `None` if unset (or not UTF-8).
pub fn getenv(pamh: &mut PamHandle, name: &str) -> Option<String> {
    let name = CString::new(name).ok()?;
    // SAFETY: `pamh` is live; `name` is a valid C string. The result is checked for NULL before
    // it is read.
    let ptr = unsafe { pam_getenv(pamh, name.as_ptr()) };
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-NULL results point into libpam's environment list, NUL-terminated and valid
    // until the environment changes; we copy at once.
    let value = unsafe { CStr::from_ptr(ptr) };
    value.to_str().ok().map(str::to_owned)
}

/// Logs through `pam_syslog`, which prefixes `pam_jit(service:stage)` and writes to syslog.
/// `priority` should include the facility (`LOG_AUTHPRIV | level`).
pub fn syslog(pamh: &PamHandle, priority: c_int, msg: &str) {
    // A message with an interior NUL is cut there rather than dropped.
    let msg = msg.split('\0').next().unwrap_or_default();
    let Ok(msg) = CString::new(msg) else { return };
    // SAFETY: `pamh` is live; the format is a literal "%s" consuming exactly one C string
    // argument, so nothing in `msg` is interpreted as a format.
    unsafe { pam_syslog(pamh, priority, c"%s".as_ptr(), msg.as_ptr()) };
}
