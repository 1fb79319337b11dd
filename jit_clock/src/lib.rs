//! The one place jit's programs read the wall clock (clippy.toml forbids `SystemTime::now`
//! everywhere else).
//!
//! Only the edges call [`now`]: a command handler, a daemon's loop, a test. Everything below
//! them takes `now` as an argument, so tests decide what time it is (expiry, TOTP steps,
//! lockouts) without sleeping. Never used by the PAM and NSS modules, which decide nothing.

/// Unix seconds now (UTC). A clock set before 1970 reads as 0.
#[allow(clippy::disallowed_methods)]
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_unix_seconds() {
        // Between 2026-01-01 and 2100-01-01: seconds since 1970, not milliseconds or 0.
        let now = super::now();
        assert!((1_767_225_600..4_102_444_800).contains(&now), "{now}");
    }
}
