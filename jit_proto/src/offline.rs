//! Offline codes: what a host may keep so it can decide a login while the server is unreachable.
//!
//! For a reservation of an account whose policy is `offline = "cached"`, the server gives the host
//! of that reservation one salted, slow hash per TOTP time step of the reservation's window (plus
//! one step of skew either side). The TOTP secret never leaves the server. The host checks a typed
//! code by hashing it for the steps around its clock and comparing in constant time.
//!
//! A 6-digit code has only a million values, so no hash makes these unbreakable to someone who
//! can read the host's state directory (root); what keeps them safe is that they exist only on
//! the reservation's own host, only for its few minutes, and only for accounts an admin marked
//! `cached`. The slow hash (PBKDF2-HMAC-SHA256) makes each guess cost something and keeps the
//! codes out of plain sight in backups.

use std::num::NonZeroU32;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The key-derivation function and its cost, recorded with each grant so it can change later.
pub const KDF: &str = "pbkdf2-hmac-sha256";
/// PBKDF2 iterations per code.
pub const ITERATIONS: u32 = 10_000;
/// Most steps hashed for one reservation (one hour and a step either side): a longer
/// reservation can be used offline during its first hour only, so hashing stays cheap.
pub const MAX_STEPS: i64 = 122;
const HASH_LEN: usize = 32;

pub use crate::api::StepHash;

fn salt_for(salt: &[u8], step: i64) -> Vec<u8> {
    let mut s = salt.to_vec();
    s.extend_from_slice(&step.to_be_bytes());
    s
}

fn iterations(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// The hash of `code` for time step `step`.
pub fn hash_code(code: &str, salt: &[u8], step: i64, iters: u32) -> StepHash {
    let mut out = [0u8; HASH_LEN];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations(iters),
        &salt_for(salt, step),
        code.as_bytes(),
        &mut out,
    );
    StepHash {
        step,
        hash: STANDARD.encode(out),
    }
}

/// True if `code` is the code of `h.step` (constant-time comparison inside ring).
pub fn verify_code(code: &str, salt: &[u8], h: &StepHash, iters: u32) -> bool {
    let Ok(expected) = STANDARD.decode(&h.hash) else {
        return false;
    };
    ring::pbkdf2::verify(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations(iters),
        &salt_for(salt, h.step),
        code.as_bytes(),
        &expected,
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_verifies_only_for_its_step_and_salt() {
        let h = hash_code("123456", b"salt", 100, 1000);
        assert!(verify_code("123456", b"salt", &h, 1000));
        assert!(!verify_code("123457", b"salt", &h, 1000));
        assert!(!verify_code("123456", b"pepper", &h, 1000));
        assert!(!verify_code(
            "123456",
            b"salt",
            &StepHash {
                step: 101,
                ..h.clone()
            },
            1000
        ));
        assert!(!verify_code("123456", b"salt", &h, 999));
        assert!(!verify_code(
            "123456",
            b"salt",
            &StepHash {
                hash: "!!".into(),
                ..h
            },
            1000
        ));
    }
}
