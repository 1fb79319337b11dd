//! Offline codes: what a host may keep so it can decide a login while the server is unreachable.
//!
//! For a reservation of an account whose policy is `offline = "cached"`, the server gives the host
//! of that reservation one salted, memory-hard hash per TOTP time step of the next minutes of the
//! reservation (at most [`MAX_STEPS`]: 15 minutes and a step of skew either side), refreshed while
//! the server is reachable. The TOTP secret never leaves the server. The host checks a typed code
//! by hashing it for the steps around its clock and comparing in constant time.
//!
//! A 6-digit code has only a million values, so no hash makes these unbreakable to someone who
//! can read the host's state directory (root) or a backup of it. What keeps them costly: each
//! guess is one argon2id hash of 19 MiB and 2 passes (docs/security.md has the measured cost of
//! searching one step's million codes), under a salt of its own per grant and step, so nothing is
//! shared between steps or grants; and a grant holds only the next 15 minutes of codes, each of
//! which is burnt on the server once used, so a code found later opens nothing.
//!
//! The hash and its cost travel with the grant as [`Kdf::name`] (`argon2id:m=19456,t=2,p=1`): a
//! host refuses a grant of any other format (the PBKDF2 grants of earlier versions among them)
//! rather than guess how to check it.

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Most steps hashed for one grant: 15 minutes of codes and a step either side.
pub const MAX_STEPS: i64 = 32;
const HASH_LEN: usize = 32;

pub use crate::api::StepHash;

/// argon2id and its cost: memory in KiB, passes, lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kdf {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
}

/// What a grant of another format is refused with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "offline grant format {0:?} is not accepted (expected argon2id:m=…,t=…,p=… with at most \
     256 MiB, 16 passes and 8 lanes); the server will send a new grant once it is reachable"
)]
pub struct UnknownKdf(pub String);

impl Kdf {
    /// What the server issues: OWASP's first argon2id choice (19 MiB, 2 passes, 1 lane).
    pub const CURRENT: Kdf = Kdf {
        memory_kib: 19 * 1024,
        passes: 2,
        lanes: 1,
    };

    /// The format as a grant carries it.
    pub fn name(&self) -> String {
        format!(
            "argon2id:m={},t={},p={}",
            self.memory_kib, self.passes, self.lanes
        )
    }

    /// Reads a grant's format. Costs beyond what a host should spend on one guess are refused
    /// too: a grant must not make a login take a gigabyte.
    pub fn parse(name: &str) -> Result<Kdf, UnknownKdf> {
        let bad = || UnknownKdf(name.chars().take(64).collect());
        let rest = name.strip_prefix("argon2id:").ok_or_else(bad)?;
        let mut it = rest.split(',');
        let mut field = |key: &str| -> Result<u32, UnknownKdf> {
            it.next()
                .and_then(|f| f.strip_prefix(key))
                .and_then(|v| v.parse().ok())
                .ok_or_else(bad)
        };
        let kdf = Kdf {
            memory_kib: field("m=")?,
            passes: field("t=")?,
            lanes: field("p=")?,
        };
        if it.next().is_some()
            || kdf.memory_kib > 256 * 1024
            || !(1..=16).contains(&kdf.passes)
            || !(1..=8).contains(&kdf.lanes)
            || kdf.argon2().is_none()
        {
            return Err(bad());
        }
        Ok(kdf)
    }

    fn argon2(&self) -> Option<Argon2<'static>> {
        let params = Params::new(self.memory_kib, self.passes, self.lanes, Some(HASH_LEN)).ok()?;
        Some(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    fn derive(&self, code: &str, salt: &[u8], step: i64) -> Option<Zeroizing<[u8; HASH_LEN]>> {
        let mut out = Zeroizing::new([0u8; HASH_LEN]);
        self.argon2()?
            .hash_password_into(code.as_bytes(), &salt_for(salt, step), &mut *out)
            .ok()?;
        Some(out)
    }
}

/// The grant's salt and the step: each step's hash has a salt of its own.
fn salt_for(salt: &[u8], step: i64) -> Vec<u8> {
    let mut s = salt.to_vec();
    s.extend_from_slice(&step.to_be_bytes());
    s
}

/// The hash of `code` for time step `step` (`None` only for a salt shorter than argon2's 8
/// bytes, less the step).
pub fn hash_code(code: &str, salt: &[u8], step: i64, kdf: &Kdf) -> Option<StepHash> {
    let out = kdf.derive(code, salt, step)?;
    Some(StepHash {
        step,
        hash: STANDARD.encode(*out),
    })
}

/// True if `code` is the code of `h.step` (the hashes are compared in constant time).
pub fn verify_code(code: &str, salt: &[u8], h: &StepHash, kdf: &Kdf) -> bool {
    let Ok(expected) = STANDARD.decode(&h.hash) else {
        return false;
    };
    match kdf.derive(code, salt, h.step) {
        Some(got) => expected.len() == HASH_LEN && bool::from(got.ct_eq(&expected[..])),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters: the tests check the logic, not the cost.
    const CHEAP: Kdf = Kdf {
        memory_kib: 64,
        passes: 1,
        lanes: 1,
    };

    #[test]
    fn a_code_verifies_only_for_its_step_salt_and_cost() {
        let h = hash_code("123456", b"salt", 100, &CHEAP).unwrap();
        assert!(verify_code("123456", b"salt", &h, &CHEAP));
        assert!(!verify_code("123457", b"salt", &h, &CHEAP));
        assert!(!verify_code("123456", b"pepper", &h, &CHEAP));
        let later = StepHash {
            step: 101,
            ..h.clone()
        };
        assert!(!verify_code("123456", b"salt", &later, &CHEAP));
        let dearer = Kdf { passes: 2, ..CHEAP };
        assert!(!verify_code("123456", b"salt", &h, &dearer));
        let garbage = StepHash {
            hash: "!!".into(),
            ..h.clone()
        };
        assert!(!verify_code("123456", b"salt", &garbage, &CHEAP));
        let short = StepHash {
            hash: STANDARD.encode([0u8; 8]),
            ..h
        };
        assert!(!verify_code("123456", b"salt", &short, &CHEAP));
    }

    #[test]
    fn the_format_names_its_cost_and_other_formats_are_refused() {
        assert_eq!(Kdf::CURRENT.name(), "argon2id:m=19456,t=2,p=1");
        assert_eq!(Kdf::parse(&Kdf::CURRENT.name()), Ok(Kdf::CURRENT));
        assert_eq!(Kdf::parse("argon2id:m=64,t=1,p=1"), Ok(CHEAP));
        for old in [
            "pbkdf2-hmac-sha256",
            "argon2id",
            "argon2i:m=19456,t=2,p=1",
            "argon2id:m=19456,t=2",
            "argon2id:m=19456,t=2,p=1,x=3",
            "argon2id:m=1048576,t=2,p=1",
            "argon2id:m=19456,t=0,p=1",
            "argon2id:m=19456,t=2,p=99",
            "argon2id:m=1,t=2,p=1",
        ] {
            let err = Kdf::parse(old).unwrap_err();
            assert!(err.to_string().contains("not accepted"), "{old}: {err}");
        }
    }

    #[test]
    fn the_real_cost_hashes_and_verifies() {
        let h = hash_code("654321", b"0123456789abcdef", 7, &Kdf::CURRENT).unwrap();
        assert!(verify_code(
            "654321",
            b"0123456789abcdef",
            &h,
            &Kdf::CURRENT
        ));
        assert!(!verify_code(
            "654320",
            b"0123456789abcdef",
            &h,
            &Kdf::CURRENT
        ));
    }
}
