//! Portal sessions: the cookie, the timeouts and the CSRF token.
//!
//! The cookie is `__Host-jit_session`: HttpOnly (no script reads it), Secure, SameSite=Strict
//! (no other site's page sends it), Path=/ and no Domain (the `__Host-` prefix makes browsers
//! enforce both). It holds 256 random bits; the database keeps their SHA-256. A session ends
//! after `idle_timeout` without a request, and `session_lifetime` after it began, whichever
//! comes first. Every state change carries the session's CSRF token (a form field or the
//! `X-CSRF-Token` header), checked in one place before any handler runs.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use subtle::ConstantTimeEq;

pub const COOKIE: &str = "__Host-jit_session";

/// A new random session id or CSRF token (256 bits, base64url).
pub fn random_token() -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

/// How long sessions live.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub idle: i64,
    pub lifetime: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Live,
    /// No request for longer than the idle timeout.
    Idle,
    /// Began longer ago than the session lifetime.
    Over,
}

/// Whether a session begun at `created_at` and last used at `last_seen` is still good at `now`.
pub fn liveness(created_at: i64, last_seen: i64, now: i64, limits: Limits) -> Liveness {
    if now - created_at >= limits.lifetime {
        Liveness::Over
    } else if now - last_seen >= limits.idle {
        Liveness::Idle
    } else {
        Liveness::Live
    }
}

/// The `Set-Cookie` value that stores session `id`. No Max-Age: the cookie lives as long as the
/// browser window, and the server decides when the session ends.
pub fn set_cookie(id: &str) -> String {
    format!("{COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict")
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The session id from a `Cookie` header, if it holds ours.
pub fn from_cookie_header(header: &str) -> Option<&str> {
    header
        .split(';')
        .map(str::trim)
        .find_map(|kv| kv.strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|v| !v.is_empty() && v.len() <= 64)
}

/// Constant-time comparison of the session's CSRF token with the one a request presented.
pub fn csrf_ok(expected: &str, presented: Option<&str>) -> bool {
    match presented {
        Some(p) if !expected.is_empty() => bool::from(expected.as_bytes().ct_eq(p.as_bytes())),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        idle: 900,
        lifetime: 8 * 3600,
    };

    #[test]
    fn idle_and_absolute_timeouts() {
        let t0 = 1_000_000;
        assert_eq!(liveness(t0, t0, t0 + 899, LIMITS), Liveness::Live);
        assert_eq!(liveness(t0, t0, t0 + 900, LIMITS), Liveness::Idle);
        // Busy all day: still over after the lifetime.
        let late = t0 + 8 * 3600;
        assert_eq!(liveness(t0, late - 1, late - 1, LIMITS), Liveness::Live);
        assert_eq!(liveness(t0, late - 1, late, LIMITS), Liveness::Over);
    }

    #[test]
    fn cookie_attributes() {
        let c = set_cookie("abc");
        for attr in [
            "__Host-jit_session=abc",
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Strict",
        ] {
            assert!(c.split("; ").any(|a| a == attr), "{attr} in {c}");
        }
        assert!(!c.contains("Domain"), "__Host- cookies carry no Domain");
        assert!(clear_cookie().contains("Max-Age=0"));
        assert_eq!(
            from_cookie_header("a=1; __Host-jit_session=xyz; b=2"),
            Some("xyz")
        );
        assert_eq!(from_cookie_header("__Host-jit_sessionx=1"), None);
        assert_eq!(from_cookie_header("__Host-jit_session="), None);
    }

    #[test]
    fn csrf_tokens_must_match() {
        let t = random_token();
        assert!(csrf_ok(&t, Some(&t)));
        assert!(!csrf_ok(&t, Some("nope")));
        assert!(!csrf_ok(&t, None));
        assert!(!csrf_ok("", Some("")));
    }
}
