//! Messages between `pam_jit.so` and jitd on the PAM socket (see [`crate::frame`] for framing).
//!
//! The daemon drives and the module relays: the module opens a connection, says [`Request::Hello`],
//! then sends one request per PAM stage. For `auth` the daemon answers with a sequence of
//! [`Step`]s; after a [`Step::Prompt`] the module sends [`Request::Answer`], after
//! [`Step::Info`], [`Step::Error`] or [`Step::Wait`] it sends [`Request::Continue`], until a
//! final step ([`Step::is_final`]). New factors therefore need no change to the module.
//!
//! [`Step::Wait`] lets the daemon wait longer than the module's per-exchange timeout (a push
//! approval takes as long as a person takes): the daemon says within the timeout that it is
//! still waiting, the module asks again at once, and the daemon alone decides when waiting
//! ends.

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Version spoken in the first exchange. Bump on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 3;

/// Default path of jitd's PAM socket.
pub const DEFAULT_SOCKET: &str = "/run/jitd/pam.sock";

/// Name of the PAM data item that records a passed `pam_jit` auth within one PAM transaction.
pub const TICKET_DATA_KEY: &str = "pam_jit_ticket";

/// Longest ticket either side accepts.
pub const MAX_TICKET_LEN: usize = 128;

/// What the module knows about the login, from PAM items. Strings are passed as PAM gave them
/// (lossily converted to UTF-8); jitd validates them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginContext {
    /// `PAM_USER`: the account being logged in to.
    pub account: String,
    /// `PAM_SERVICE`: sshd, su, login, …
    pub service: String,
    /// `PAM_RHOST`, when the login is remote.
    #[serde(default)]
    pub rhost: Option<String>,
    /// `PAM_TTY`.
    #[serde(default)]
    pub tty: Option<String>,
    /// `PAM_RUSER`: the local user who ran su/sudo, when set.
    #[serde(default)]
    pub ruser: Option<String>,
    /// The uid `account` resolves to in the login's own process (`getpwnam`), if it resolves:
    /// the uid the session will run as. jit guards a login by its uid as well as by its name
    /// (a second uid-0 name, a name in another case under a case-insensitive backend).
    #[serde(default)]
    pub uid: Option<u32>,
    /// `SSH_AUTH_INFO_0` from the PAM environment: what sshd accepted before asking PAM (for
    /// `publickey` the key itself), one method per line. jitd records the key's fingerprint.
    #[serde(default)]
    pub ssh_auth_info: Option<String>,
}

/// What a login that passed jit's auth presents in its account and session stages: an opaque
/// handle to what jitd recorded when it granted the auth. It means nothing to anyone else: jitd
/// accepts it once per stage, only from the PAM service and the process that authenticated (or
/// that process's parent, as sshd's monitor), and the account and session-open stages only
/// shortly after the auth. It is a secret while it lives: zeroized, and never printed (its
/// `Debug` is redacted) or logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ticket(Secret);

impl Ticket {
    pub fn new(handle: impl Into<String>) -> Self {
        Ticket(Secret::new(handle))
    }

    /// A ticket as it came from outside (the PAM environment): `None` unless it looks like one
    /// jitd issues (1 to [`MAX_TICKET_LEN`] ASCII letters and digits).
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= MAX_TICKET_LEN
            && s.bytes().all(|b| b.is_ascii_alphanumeric());
        ok.then(|| Ticket::new(s))
    }

    /// The handle itself. Callers must not log it.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ticket([redacted])")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// First frame on every connection.
    Hello { version: u32 },
    /// PAM `auth` begins for `ctx.account`.
    AuthStart { ctx: LoginContext },
    /// The person's answer to the last [`Step::Prompt`].
    Answer { text: Secret },
    /// Acknowledges an [`Step::Info`] or [`Step::Error`]; after [`Step::Wait`], asks again.
    Continue,
    /// PAM `account`: is this login allowed? `ticket` is present if this transaction passed auth.
    Account {
        ctx: LoginContext,
        ticket: Option<Ticket>,
    },
    /// PAM `open_session`.
    SessionOpen {
        ctx: LoginContext,
        ticket: Option<Ticket>,
    },
    /// PAM `close_session`.
    SessionClose {
        ctx: LoginContext,
        ticket: Option<Ticket>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

/// The daemon's answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Answer to [`Request::Hello`].
    Hello { version: u32 },
    /// Ask the person something; `echo` is false for codes.
    Prompt { echo: bool, text: String },
    /// Show an informational message.
    Info { text: String },
    /// Show an error message.
    Error { text: String },
    /// Still waiting (for a push approval, say): nothing to show; send [`Request::Continue`]
    /// at once.
    Wait,
    /// Auth passed for `person`. The module stores the ticket for the account and session
    /// stages of this login.
    Granted { ticket: Ticket, person: String },
    /// Denied. `message` (if not empty) is shown to the person as an error.
    Denied { message: String },
    /// The name is not a shared account: the module returns `PAM_IGNORE`.
    NotShared,
    /// Account stage passed.
    Allowed,
    /// Session opened or closed; `env` goes into the session's environment.
    Session { env: Vec<EnvVar> },
    /// The request itself was wrong (bad frame, unknown version, out of order). The daemon goes
    /// on serving other connections; the module fails closed for shared accounts.
    Failed { message: String },
}

impl Step {
    /// True when the exchange for the current request is over.
    pub fn is_final(&self) -> bool {
        !matches!(
            self,
            Step::Prompt { .. } | Step::Info { .. } | Step::Error { .. } | Step::Wait
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shape_is_stable() {
        let j = serde_json::to_string(&Step::Prompt {
            echo: false,
            text: "Code: ".into(),
        })
        .unwrap();
        assert_eq!(j, r#"{"step":"prompt","echo":false,"text":"Code: "}"#);
        let j = serde_json::to_string(&Request::Continue).unwrap();
        assert_eq!(j, r#"{"type":"continue"}"#);
        assert_eq!(
            serde_json::to_string(&Step::Wait).unwrap(),
            r#"{"step":"wait"}"#
        );
        assert!(!Step::Wait.is_final());
        let r: Request = serde_json::from_str(r#"{"type":"hello","version":1}"#).unwrap();
        assert_eq!(r, Request::Hello { version: 1 });
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<Request>(r#"{"type":"hello","version":1,"x":2}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"type":"nope"}"#).is_err());
    }

    #[test]
    fn answers_and_tickets_do_not_leak_through_debug() {
        let r = Request::Answer {
            text: Secret::new("123456"),
        };
        assert!(!format!("{r:?}").contains("123456"));
        let s = Step::Granted {
            ticket: Ticket::new("0123abcd"),
            person: "alice".into(),
        };
        assert!(!format!("{s:?}").contains("0123abcd"));
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"step":"granted","ticket":"0123abcd","person":"alice"}"#
        );
    }

    #[test]
    fn a_ticket_from_outside_must_look_like_one() {
        assert!(Ticket::parse("0123abcdEF").is_some());
        for bad in [
            "",
            "a b",
            "{\"account\":\"admin\"}",
            "x\n",
            &"a".repeat(129),
        ] {
            assert!(Ticket::parse(bad).is_none(), "{bad:?}");
        }
    }
}
