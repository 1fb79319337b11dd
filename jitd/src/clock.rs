//! The only place jitd reads the wall clock. Everything else takes `now` (Unix seconds) as an
//! argument, so tests decide what time it is.

/// Unix seconds now (UTC). A clock before 1970 reads as 0.
#[allow(clippy::disallowed_methods)]
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
