//! TOTP (RFC 6238) as jit uses it: SHA-1, 6 digits, 30 s steps, a configurable skew (±1 step by
//! default). totp-rs compares in constant time and tells which step matched; replay protection
//! (each step accepted once per person) is done by the caller against the database.

use rand::RngCore;
use totp_rs::{Algorithm, Builder, Totp};
use zeroize::Zeroizing;

use jit_proto::Secret;

pub const DIGITS: u8 = 6;
pub const STEP_SECS: u64 = 30;
/// 160-bit secrets, as RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;

pub fn new_secret() -> Zeroizing<Vec<u8>> {
    let mut s = Zeroizing::new(vec![0u8; SECRET_BYTES]);
    rand::rng().fill_bytes(&mut s);
    s
}

fn totp(secret: &[u8], skew: u8, issuer: Option<&str>, label: &str) -> Option<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(u16::from(skew))
        .with_step_duration(STEP_SECS)
        .with_secret(secret.to_vec())
        .with_account_name(label)
        .with_issuer(issuer)
        .build()
        .ok()
}

/// The `otpauth://` URI an authenticator app scans.
pub fn otpauth_uri(secret: &[u8], issuer: &str, person: &str) -> Option<Secret> {
    // The label's "issuer:" prefix and the issuer parameter must not contain ':'.
    let issuer = issuer.replace(':', "");
    let t = totp(secret, 0, Some(&issuer), person)?;
    t.to_url().ok().map(Secret::new)
}

/// Returns the time step the code matched, or `None`. Codes may contain spaces ("123 456").
/// `now` is Unix seconds.
pub fn check(secret: &[u8], code: &str, now: i64, skew: u8) -> Option<u64> {
    let digits: Zeroizing<String> = Zeroizing::new(code.chars().filter(|c| *c != ' ').collect());
    if digits.len() != usize::from(DIGITS) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = u64::try_from(now).ok()?;
    totp(secret, skew, None, "")?.check(&digits, now)
}

/// The code for `now`; used by tests and by the enrollment self-check.
pub fn code_at(secret: &[u8], now: i64) -> Option<Zeroizing<String>> {
    let now = u64::try_from(now).ok()?;
    let t = totp(secret, 0, None, "")?;
    Some(Zeroizing::new(t.generate(now).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 appendix B, SHA-1 secret "12345678901234567890", truncated to 6 digits.
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_vectors() {
        for (t, code) in [
            (59, "287082"),
            (1111111109, "081804"),
            (1111111111, "050471"),
            (1234567890, "005924"),
            (2000000000, "279037"),
        ] {
            assert_eq!(&**code_at(RFC_SECRET, t).unwrap(), code, "t={t}");
            assert_eq!(check(RFC_SECRET, code, t, 0), Some(t as u64 / 30), "t={t}");
        }
    }

    #[test]
    fn skew_is_one_step_either_side() {
        let now = 1_700_000_000;
        let code = code_at(RFC_SECRET, now).unwrap();
        assert!(check(RFC_SECRET, &code, now + 30, 1).is_some());
        assert!(check(RFC_SECRET, &code, now - 30, 1).is_some());
        assert!(check(RFC_SECRET, &code, now + 60, 1).is_none());
        assert!(check(RFC_SECRET, &code, now + 30, 0).is_none());
    }

    #[test]
    fn malformed_codes_never_match() {
        let now = 1_700_000_000;
        let code = code_at(RFC_SECRET, now).unwrap();
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert!(check(RFC_SECRET, &spaced, now, 1).is_some());
        for bad in [
            "",
            "12345",
            "1234567",
            "abcdef",
            "12345\u{663}",
            &format!("{}\n", *code),
        ] {
            assert!(check(RFC_SECRET, bad, now, 1).is_none(), "{bad:?}");
        }
        assert!(check(RFC_SECRET, &code, -5, 1).is_none());
    }

    #[test]
    fn uri_carries_issuer_and_person() {
        let uri = otpauth_uri(RFC_SECRET, "jit", "alice").unwrap();
        let u = uri.expose();
        assert!(u.starts_with("otpauth://totp/jit:alice?"), "{u}");
        assert!(u.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), "{u}");
        assert!(u.contains("issuer=jit"), "{u}");
    }
}
