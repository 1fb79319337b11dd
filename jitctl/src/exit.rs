//! jitctl's errors and the exit code each one maps to (documented in `jitctl --help`, the man
//! page and the README, so scripts can branch on them).

use jit_client::ClientError;
use jit_proto::api::ErrorCode;

/// Exit codes.
pub mod code {
    pub const OK: u8 = 0;
    /// Unexpected failure (server error, unreadable local file).
    pub const FAILURE: u8 = 1;
    /// Bad command-line usage.
    pub const USAGE: u8 = 2;
    /// Not logged in, unknown credential, or not allowed.
    pub const AUTH: u8 = 3;
    /// No such person, group, account, host or reservation.
    pub const NOT_FOUND: u8 = 4;
    /// Conflict: it already exists, or the account is reserved by someone else.
    pub const CONFLICT: u8 = 5;
    /// The server cannot be reached, or is not the one pinned.
    pub const UNREACHABLE: u8 = 6;
    /// The server refused a value (bad name, duration out of range…).
    pub const INVALID: u8 = 7;
    /// A code or token expired or was used, too many wrong codes (locked out), or too many
    /// requests (try again later).
    pub const EXPIRED: u8 = 8;
    /// The audit log's hash chain is broken.
    pub const TAMPERED: u8 = 9;
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    NotLoggedIn(String),
    #[error("{0}")]
    Local(String),
    #[error("{0}")]
    Tampered(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => code::USAGE,
            CliError::NotLoggedIn(_) => code::AUTH,
            CliError::Local(_) => code::FAILURE,
            CliError::Tampered(_) => code::TAMPERED,
            CliError::Client(c) => match c {
                ClientError::Unreachable { .. } | ClientError::Untrusted { .. } => {
                    code::UNREACHABLE
                }
                ClientError::BadUrl { .. } | ClientError::BadFingerprint(_) => code::USAGE,
                ClientError::Setup(_) | ClientError::Protocol(_) => code::FAILURE,
                ClientError::Api { code: api, .. } => match api {
                    ErrorCode::Unauthorized | ErrorCode::Forbidden | ErrorCode::NotAllowed => {
                        code::AUTH
                    }
                    ErrorCode::NotFound => code::NOT_FOUND,
                    ErrorCode::AlreadyExists | ErrorCode::ReservationTaken => code::CONFLICT,
                    ErrorCode::BadRequest | ErrorCode::PayloadTooLarge => code::INVALID,
                    ErrorCode::Expired | ErrorCode::LockedOut | ErrorCode::RateLimited => {
                        code::EXPIRED
                    }
                    ErrorCode::Internal => code::FAILURE,
                },
            },
        }
    }

    /// The machine-readable code printed with `--json`.
    pub fn code_name(&self) -> String {
        match self {
            CliError::Client(ClientError::Api { code, .. }) => serde_json::to_value(code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "error".into()),
            CliError::Client(ClientError::Unreachable { .. }) => "unreachable".into(),
            CliError::Client(ClientError::Untrusted { .. }) => "untrusted".into(),
            CliError::Usage(_) => "usage".into(),
            CliError::NotLoggedIn(_) => "not_logged_in".into(),
            CliError::Tampered(_) => "audit_chain_broken".into(),
            _ => "error".into(),
        }
    }
}

pub type CliResult<T> = Result<T, CliError>;
