//! Auth decisions to syslog, facility authpriv, through libc's `openlog`/`syslog`.
//!
//! One line per decision with person, account, host, service, rhost and result. Never a code,
//! an answer or a credential: callers pass a [`Decision`], which has no field for them. Values come
//! from PAM items a client controls (rhost, tty), so control and Unicode format characters are
//! escaped and values with spaces quoted ([`jit_proto::text::escape_value`], shared with
//! pam_jit): a crafted rhost cannot forge a second log line or a `result=` field.

use std::ffi::CString;
use std::fmt::Write as _;
use std::sync::Once;

use jit_proto::text::escape_value as escape;

/// One decision jitd made (or relayed from the server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// `auth`, `account`, `session_open`, `session_close`.
    pub stage: &'static str,
    pub account: String,
    /// The person, when known (the server names the holder only once their code was accepted).
    pub person: Option<String>,
    pub host: String,
    pub service: String,
    pub rhost: Option<String>,
    /// `granted`, `denied`, `allowed`, `open`, `close`, `challenge`, `error`.
    pub result: &'static str,
    /// Why, for a person to read (a server message or jitd's own); never a code.
    pub reason: String,
}

impl Decision {
    /// The syslog line: `jit auth: account=admin person=alice host=web01 service=sshd
    /// rhost=10.0.0.1 result=granted reason="…"`.
    pub fn line(&self) -> String {
        let mut s = format!("jit {}:", self.stage);
        let mut field = |k: &str, v: &str| {
            let _ = write!(s, " {k}={}", escape(v));
        };
        field("account", &self.account);
        field("person", self.person.as_deref().unwrap_or("-"));
        field("host", &self.host);
        field("service", &self.service);
        field("rhost", self.rhost.as_deref().unwrap_or("-"));
        field("result", self.result);
        if !self.reason.is_empty() {
            field("reason", &self.reason);
        }
        s
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Severity {
    Info,
    Notice,
    Err,
}

/// Writes one line to syslog (authpriv). Never fails: syslog drops lines when no daemon listens.
pub fn authpriv(severity: Severity, line: &str) {
    static OPEN: Once = Once::new();
    OPEN.call_once(|| {
        // SAFETY: the ident is a 'static C string, as openlog keeps the pointer.
        unsafe {
            libc::openlog(
                c"jitd".as_ptr(),
                libc::LOG_PID | libc::LOG_NDELAY,
                libc::LOG_AUTHPRIV,
            )
        };
    });
    let level = match severity {
        Severity::Info => libc::LOG_INFO,
        Severity::Notice => libc::LOG_NOTICE,
        Severity::Err => libc::LOG_ERR,
    };
    let Ok(msg) = CString::new(line.replace('\0', "\\x00")) else {
        return;
    };
    // SAFETY: both pointers are valid NUL-terminated strings; "%s" takes exactly one argument.
    unsafe { libc::syslog(libc::LOG_AUTHPRIV | level, c"%s".as_ptr(), msg.as_ptr()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_has_every_field_and_cannot_be_forged() {
        let d = Decision {
            stage: "auth",
            account: "admin".into(),
            person: Some("alice".into()),
            host: "web01".into(),
            service: "sshd".into(),
            rhost: Some("10.0.0.1\nresult=granted x".into()),
            result: "denied",
            reason: "The code is not valid.".into(),
        };
        let line = d.line();
        assert_eq!(
            line,
            "jit auth: account=admin person=alice host=web01 service=sshd \
             rhost=\"10.0.0.1\\x0aresult=granted x\" result=denied reason=\"The code is not valid.\""
        );
        assert!(!line.contains('\n'));
        let d = Decision {
            person: None,
            rhost: None,
            reason: String::new(),
            ..d
        };
        assert!(
            d.line().contains("person=- ") && d.line().contains("rhost=- "),
            "{}",
            d.line()
        );
    }
}
