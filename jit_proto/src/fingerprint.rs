//! Certificate fingerprints as people type them: `SHA256:` and 64 hex digits.
//!
//! `jit-server init` prints the CA's fingerprint; jitctl and jitd pin it on first contact. Parsing
//! also accepts the colon-separated uppercase form that `openssl x509 -fingerprint -sha256` prints.

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "CA fingerprint {0:?} is not valid: expected SHA256: followed by 64 hex digits, as printed by `jit-server init`"
)]
pub struct FingerprintError(String);

/// A SHA-256 fingerprint of a DER certificate.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub fn of_der(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    pub fn parse(s: &str) -> Result<Self, FingerprintError> {
        let err = || FingerprintError(s.chars().take(100).collect());
        let body = s.trim();
        let body = body
            .strip_prefix("SHA256:")
            .or_else(|| body.strip_prefix("sha256:"))
            .unwrap_or(body);
        let hex_digits: String = body.chars().filter(|c| *c != ':').collect();
        let bytes = hex::decode(hex_digits).map_err(|_| err())?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| err())?;
        Ok(Self(arr))
    }

    /// Constant-time comparison (the fingerprint is public, but a habit worth keeping).
    pub fn matches(&self, other: &Fingerprint) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SHA256:{}", hex::encode(self.0))
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = FingerprintError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_both_forms() {
        let fp = Fingerprint::of_der(b"certificate");
        let s = fp.to_string();
        assert!(s.starts_with("SHA256:") && s.len() == 7 + 64, "{s}");
        assert_eq!(Fingerprint::parse(&s).unwrap(), fp);
        let openssl_style: String = hex::encode_upper(fp.0)
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(Fingerprint::parse(&openssl_style).unwrap(), fp);
        assert!(fp.matches(&Fingerprint::parse(&s).unwrap()));
        assert!(!fp.matches(&Fingerprint::of_der(b"other")));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "SHA256:",
            "SHA256:abcd",
            "SHA256:zz",
            &format!("SHA256:{}", "0".repeat(66)),
        ] {
            assert!(Fingerprint::parse(bad).is_err(), "{bad}");
        }
    }
}
