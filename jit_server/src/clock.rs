//! The one place the server reads the wall clock. Everything below the HTTP handlers takes `now`
//! (Unix seconds) as an argument, so expiry, skew and lockout are testable without sleeping.

use std::time::{SystemTime, UNIX_EPOCH};

#[allow(clippy::disallowed_methods)]
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
