//! Times and durations typed on the command line: `5m`, `1h30m`, `2026-11-23T10:00:00Z`, or Unix
//! seconds.

use crate::exit::{CliError, CliResult};

/// A duration like `5m` or `300s`, in whole seconds.
pub fn duration_secs(s: &str) -> CliResult<u32> {
    if !s.trim().is_empty() && s.trim().bytes().all(|b| b.is_ascii_digit()) {
        return Err(CliError::Usage(format!(
            "{s:?} has no unit: write e.g. {s}m for minutes or {s}s for seconds"
        )));
    }
    let d = humantime::parse_duration(s.trim())
        .map_err(|_| CliError::Usage(format!("{s:?} is not a duration: write e.g. 90s, 5m, 1h")))?;
    u32::try_from(d.as_secs()).map_err(|_| CliError::Usage(format!("{s:?} is too long")))
}

/// `--since 1h` (that long ago), an RFC 3339 time, or Unix seconds.
pub fn point_in_time(s: &str, now: i64) -> CliResult<i64> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs);
    }
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now - d.as_secs() as i64);
    }
    // jitctl's own output (`2026-11-23 16:36:31 UTC`), RFC 3339, or a bare date (midnight UTC).
    let utc = s.strip_suffix(" UTC").unwrap_or(s);
    let full = if utc.len() == 10 {
        format!("{utc}T00:00:00Z")
    } else {
        utc.to_owned()
    };
    if let Ok(t) = humantime::parse_rfc3339_weak(&full)
        && let Ok(d) = t.duration_since(std::time::UNIX_EPOCH)
    {
        return Ok(d.as_secs() as i64);
    }
    Err(CliError::Usage(format!(
        "{s:?} is not a time: write a duration ago (1h, 30m), a time in UTC (2026-11-23 10:00:00, \
         2026-11-23T10:00:00Z, or 2026-11-23 for midnight) or Unix seconds"
    )))
}

/// The local clock. Server answers carry the server's `now`, which is what "time left" is
/// computed from; this is only for turning `--since 1h` into a time.
pub use jit_clock::now;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(duration_secs("5m").unwrap(), 300);
        assert_eq!(duration_secs("1h30m").unwrap(), 5400);
        assert!(duration_secs("soon").is_err());
        assert_eq!(point_in_time("1h", 10_000).unwrap(), 6400);
        assert_eq!(point_in_time("1700000000", 0).unwrap(), 1_700_000_000);
        assert_eq!(
            point_in_time("2000-01-01T00:00:00Z", 0).unwrap(),
            946_684_800
        );
        assert!(point_in_time("yesterday-ish", 0).is_err());
        // What jitctl itself prints, and a bare date.
        assert_eq!(
            point_in_time("2000-01-01 00:00:10 UTC", 0).unwrap(),
            946_684_810
        );
        assert_eq!(point_in_time("2000-01-02", 0).unwrap(), 946_771_200);
        let err = duration_secs("5").unwrap_err().to_string();
        assert!(err.contains("no unit") && err.contains("5m"), "{err}");
    }
}
