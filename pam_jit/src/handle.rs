//! The FFI side: the `PamHooks` entry points, and [`Handler`] on a real `pam_handle_t`.
//!
//! Nothing here decides anything; it converts C to Rust and back. Unwinding is caught by
//! pam-bindings' hook wrapper (a panic becomes `PAM_ABORT`), and nothing here panics anyway.

use std::ffi::{CStr, c_int};

use jit_pam_proto::Secret;
use jit_pam_proto::pam::TICKET_DATA_KEY;
use pam::constants::{
    PAM_ERROR_MSG, PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_SILENT, PAM_TEXT_INFO, PamFlag,
    PamResultCode,
};
use pam::conv::Conv;
use pam::items::{RHost, RUser, Service, Tty};
use pam::module::{PamHandle, PamHooks};

use crate::daemon::SocketPath;
use crate::options::Options;
use crate::relay::{Code, Handler, Held, Item, Level, Module, Msg};
use crate::shims;

/// Module data key of the break-glass record (see `relay`, Break-glass).
const BREAK_GLASS_KEY: &str = "pam_jit_break_glass";

/// The type `pam_hooks!` wires the six `pam_sm_*` entry points to.
pub struct PamJit;

impl PamHooks for PamJit {
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        run(pamh, &args, flags, |m| m.authenticate())
    }

    fn acct_mgmt(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        run(pamh, &args, flags, |m| m.account())
    }

    fn sm_open_session(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        run(pamh, &args, flags, |m| m.open_session())
    }

    fn sm_close_session(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        run(pamh, &args, flags, |m| m.close_session())
    }

    fn sm_setcred(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        run(pamh, &args, flags, |m| m.setcred())
    }

    fn sm_chauthtok(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        run(pamh, &args, flags, |m| m.chauthtok())
    }
}

fn run(
    pamh: &mut PamHandle,
    args: &[&CStr],
    flags: PamFlag,
    stage: impl FnOnce(&mut Module<'_, RealPam<'_>, SocketPath>) -> Code,
) -> PamResultCode {
    let opts = Options::parse(args.iter().map(|a| a.to_bytes()));
    let jitd = SocketPath(opts.socket.clone());
    let mut pam = RealPam { pamh };
    let mut module = Module {
        pam: &mut pam,
        jitd: &jitd,
        opts: &opts,
        silent: flags & PAM_SILENT != 0,
    };
    to_pam(stage(&mut module))
}

/// [`Handler`] on the handle PAM gave this hook call.
struct RealPam<'a> {
    pamh: &'a mut PamHandle,
}

impl RealPam<'_> {
    fn conv(&self) -> Result<Conv<'_>, Code> {
        match self.pamh.get_item::<Conv>() {
            Ok(Some(conv)) => Ok(conv),
            Ok(None) => Err(Code::ConvErr),
            Err(code) => Err(from_pam(code)),
        }
    }
}

impl Handler for RealPam<'_> {
    fn user(&mut self) -> Result<Vec<u8>, Code> {
        shims::get_user(self.pamh).map_err(from_raw)
    }

    fn uid_of(&mut self, user: &[u8]) -> Option<u32> {
        jit_nss_cache::uid_of(user)
    }

    fn item(&mut self, item: Item) -> Option<String> {
        let pamh = &*self.pamh;
        let cstr: Option<&CStr> = match item {
            Item::Service => pamh.get_item::<Service>().ok().flatten().map(|i| i.0),
            Item::Rhost => pamh.get_item::<RHost>().ok().flatten().map(|i| i.0),
            Item::Tty => pamh.get_item::<Tty>().ok().flatten().map(|i| i.0),
            Item::Ruser => pamh.get_item::<RUser>().ok().flatten().map(|i| i.0),
        };
        cstr.map(|c| c.to_string_lossy().into_owned())
    }

    fn prompt(&mut self, echo: bool, text: &str) -> Result<Secret, Code> {
        let style = if echo {
            PAM_PROMPT_ECHO_ON
        } else {
            PAM_PROMPT_ECHO_OFF
        };
        let reply = self.conv()?.send(style, text).map_err(from_pam)?;
        // No reply to a prompt means the application could not ask: a conversation failure.
        let reply = reply.ok_or(Code::ConvErr)?;
        // `reply` zeroizes its bytes on drop; the copy lives in a Secret, zeroized on drop too.
        // A non-UTF-8 answer cannot be a valid code; it is passed on (lossily) for jitd to refuse.
        let answer = match reply.as_str() {
            Ok(s) => Secret::new(s),
            Err(_) => Secret::new(String::from_utf8_lossy(reply.as_bytes()).into_owned()),
        };
        Ok(answer)
    }

    fn show(&mut self, kind: Msg, text: &str) -> Result<(), Code> {
        let style = match kind {
            Msg::Info => PAM_TEXT_INFO,
            Msg::Error => PAM_ERROR_MSG,
        };
        self.conv()?.send(style, text).map(drop).map_err(from_pam)
    }

    fn ticket(&mut self) -> Option<Held> {
        // SAFETY: only pam_jit stores data under TICKET_DATA_KEY, and it always stores a
        // Box<Held> (see `store_ticket`). Applications cannot set module data.
        unsafe { self.pamh.get_data::<Held>(TICKET_DATA_KEY) }
            .ok()
            .cloned()
    }

    fn store_ticket(&mut self, held: Held) -> Result<(), Code> {
        self.pamh
            .set_data(TICKET_DATA_KEY, Box::new(held))
            .map_err(from_pam)
    }

    fn putenv(&mut self, name: &str, value: &str) -> Result<(), Code> {
        shims::putenv(self.pamh, name, value).map_err(from_raw)
    }

    fn getenv(&mut self, name: &str) -> Option<String> {
        shims::getenv(self.pamh, name)
    }

    fn unsetenv(&mut self, name: &str) -> Result<(), Code> {
        shims::unsetenv(self.pamh, name).map_err(from_raw)
    }

    fn break_glass(&mut self) -> Option<String> {
        // SAFETY: only pam_jit stores data under BREAK_GLASS_KEY, and it always stores a
        // Box<String> (see `set_break_glass`). An empty string means "cleared".
        unsafe { self.pamh.get_data::<String>(BREAK_GLASS_KEY) }
            .ok()
            .filter(|a| !a.is_empty())
            .cloned()
    }

    fn set_break_glass(&mut self, account: Option<&str>) -> Result<(), Code> {
        // pam-bindings cannot remove module data; an empty string stands for "none".
        let value = account.unwrap_or_default().to_owned();
        self.pamh
            .set_data(BREAK_GLASS_KEY, Box::new(value))
            .map_err(from_pam)
    }

    fn log(&mut self, level: Level, msg: &str) {
        let level = match level {
            Level::Alert => libc::LOG_ALERT,
            Level::Err => libc::LOG_ERR,
            Level::Warning => libc::LOG_WARNING,
            Level::Info => libc::LOG_INFO,
            Level::Debug => libc::LOG_DEBUG,
        };
        shims::syslog(self.pamh, libc::LOG_AUTHPRIV | level, msg);
    }
}

fn to_pam(code: Code) -> PamResultCode {
    match code {
        Code::Success => PamResultCode::PAM_SUCCESS,
        Code::Ignore => PamResultCode::PAM_IGNORE,
        Code::AuthErr => PamResultCode::PAM_AUTH_ERR,
        Code::PermDenied => PamResultCode::PAM_PERM_DENIED,
        Code::SessionErr => PamResultCode::PAM_SESSION_ERR,
        Code::ConvErr => PamResultCode::PAM_CONV_ERR,
        Code::AuthtokErr => PamResultCode::PAM_AUTHTOK_ERR,
        Code::AuthinfoUnavail => PamResultCode::PAM_AUTHINFO_UNAVAIL,
        Code::SystemErr => PamResultCode::PAM_SYSTEM_ERR,
        Code::BufErr => PamResultCode::PAM_BUF_ERR,
        // `Other` only ever carries a failure; PAM_SUCCESS (0) is mapped by `from_raw` to Success.
        Code::Other(raw) => match PamResultCode::try_from(raw) {
            Ok(PamResultCode::PAM_SUCCESS) | Err(_) => PamResultCode::PAM_SYSTEM_ERR,
            Ok(c) => c,
        },
    }
}

fn from_pam(code: PamResultCode) -> Code {
    from_raw(code as c_int)
}

fn from_raw(raw: c_int) -> Code {
    const SUCCESS: c_int = PamResultCode::PAM_SUCCESS as c_int;
    const IGNORE: c_int = PamResultCode::PAM_IGNORE as c_int;
    const CONV_ERR: c_int = PamResultCode::PAM_CONV_ERR as c_int;
    const SYSTEM_ERR: c_int = PamResultCode::PAM_SYSTEM_ERR as c_int;
    const BUF_ERR: c_int = PamResultCode::PAM_BUF_ERR as c_int;
    match raw {
        SUCCESS => Code::Success,
        IGNORE => Code::Ignore,
        CONV_ERR => Code::ConvErr,
        SYSTEM_ERR => Code::SystemErr,
        BUF_ERR => Code::BufErr,
        other => Code::Other(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_other_never_becomes_success() {
        for c in [
            Code::Success,
            Code::Ignore,
            Code::ConvErr,
            Code::SystemErr,
            Code::BufErr,
            Code::Other(PamResultCode::PAM_CONV_AGAIN as c_int),
        ] {
            assert_eq!(from_pam(to_pam(c)), c);
        }
        assert_eq!(to_pam(Code::Other(0)), PamResultCode::PAM_SYSTEM_ERR);
        assert_eq!(to_pam(Code::Other(9999)), PamResultCode::PAM_SYSTEM_ERR);
        assert_eq!(
            to_pam(Code::AuthinfoUnavail),
            PamResultCode::PAM_AUTHINFO_UNAVAIL
        );
    }
}
