//! Messages between `pam_jit.so` and jitd on the PAM socket (see [`crate::frame`] for framing).
//!
//! The daemon drives and the module relays: the module opens a connection, says [`Request::Hello`],
//! then sends one request per PAM stage. For `auth` the daemon answers with a sequence of
//! [`Step`]s; after a [`Step::Prompt`] the module sends [`Request::Answer`], after
//! [`Step::Info`] or [`Step::Error`] it sends [`Request::Continue`], until a final step
//! ([`Step::is_final`]). New factors therefore need no change to the module.

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Version spoken in the first exchange. Bump on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 2;

/// Default path of jitd's PAM socket.
pub const DEFAULT_SOCKET: &str = "/run/jitd/pam.sock";

/// Name of the PAM data item that records a passed `pam_jit` auth within one PAM transaction.
pub const TICKET_DATA_KEY: &str = "pam_jit_ticket";

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

/// Proof, kept in the PAM transaction (`pam_set_data`), that pam_jit's auth passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ticket {
    pub account: String,
    pub person: String,
    pub reservation_id: i64,
    /// The server's id for this login attempt; ties session events to it in the audit log.
    pub attempt: String,
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
    /// Acknowledges an [`Step::Info`] or [`Step::Error`].
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
    /// Auth passed. The module stores the ticket for the account and session stages.
    Granted { ticket: Ticket },
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
            Step::Prompt { .. } | Step::Info { .. } | Step::Error { .. }
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
        let r: Request = serde_json::from_str(r#"{"type":"hello","version":1}"#).unwrap();
        assert_eq!(r, Request::Hello { version: 1 });
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<Request>(r#"{"type":"hello","version":1,"x":2}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"type":"nope"}"#).is_err());
    }

    #[test]
    fn answers_do_not_leak_through_debug() {
        let r = Request::Answer {
            text: Secret::new("123456"),
        };
        assert!(!format!("{r:?}").contains("123456"));
    }
}
