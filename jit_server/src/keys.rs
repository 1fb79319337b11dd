//! Secrets at rest and bearer credentials.
//!
//! - TOTP secrets are encrypted with XChaCha20-Poly1305 under the at-rest key that `init` wrote
//!   (`at-rest.key`, 0600). The person's id is bound in as associated data, so a ciphertext
//!   copied to another row does not decrypt.
//! - Tokens (admin, person, host) and one-time codes are random, high-entropy strings. The
//!   database keeps only their SHA-256, so a database leak does not hand out credentials; a
//!   slow hash would add nothing against 256 bits of entropy.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use jit_proto::Secret;

pub const KEY_FILE: &str = "at-rest.key";
/// The key before the last rotation (`jit-server rotate-key`): still opens what a server that
/// had not yet been given the new key sealed.
pub const PREVIOUS_KEY_FILE: &str = "at-rest.key.previous";
/// The new key while a rotation runs; present after one was interrupted.
pub const NEXT_KEY_FILE: &str = "at-rest.key.new";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the at-rest key {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the at-rest key {path} is damaged: expected 32 bytes, found {len}")]
    Length { path: String, len: usize },
    #[error("cannot write the at-rest key {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("a stored secret does not decrypt with this server's at-rest key")]
    Decrypt,
}

/// The at-rest key, and older keys that only open (see [`AtRestKey::load_ring`]). Zeroized on
/// drop.
pub struct AtRestKey(Zeroizing<[u8; 32]>, Vec<Zeroizing<[u8; 32]>>);

impl AtRestKey {
    pub fn generate() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(&mut *k);
        Self(k, Vec::new())
    }

    /// A key from its 32 bytes (`None` for any other length).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(arr), Vec::new()))
    }

    /// The key's bytes, for `jit-server export` only.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|source| KeyError::Read {
            path: shown.clone(),
            source,
        })?);
        let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyError::Length {
            path: shown,
            len: bytes.len(),
        })?;
        Ok(Self(Zeroizing::new(arr), Vec::new()))
    }

    /// The key of the data directory `data_dir` (`at-rest.key`, which seals), with the keys
    /// that only open: the one a rotation is writing (`at-rest.key.new`, left by an interrupted
    /// rotation) and the one before the last rotation (`at-rest.key.previous`).
    pub fn load_ring(data_dir: &Path) -> Result<Self, KeyError> {
        let mut key = Self::load(&data_dir.join(KEY_FILE))?;
        for file in [NEXT_KEY_FILE, PREVIOUS_KEY_FILE] {
            let path = data_dir.join(file);
            if path.exists() {
                let other = Self::load(&path)?;
                key.1.push(other.0.clone());
            }
        }
        Ok(key)
    }

    /// Writes the key with mode 0600; refuses to overwrite an existing key.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let shown = path.display().to_string();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| KeyError::Write {
                path: shown.clone(),
                source,
            })?;
        f.write_all(&*self.0)
            .and_then(|_| f.sync_all())
            .map_err(|source| KeyError::Write {
                path: shown,
                source,
            })
    }

    pub fn seal(&self, plaintext: &[u8], aad: &str) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&*self.0).into());
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        // Encryption with a valid key and nonce cannot fail for in-memory buffers.
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        out
    }

    /// A key for another purpose, derived from this one (HMAC-SHA256 with `purpose`), so every
    /// server process sharing the at-rest key derives the same one and nothing else is stored.
    pub fn derive(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &*self.0);
        let tag = ring::hmac::sign(&key, purpose.as_bytes());
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Decrypts with this key, else with an older one of the ring (the AEAD tag tells which).
    pub fn open(&self, sealed: &[u8], aad: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        if sealed.len() < 24 + 16 {
            return Err(KeyError::Decrypt);
        }
        let (nonce, ct) = sealed.split_at(24);
        std::iter::once(&self.0)
            .chain(&self.1)
            .find_map(|k| {
                XChaCha20Poly1305::new((&**k).into())
                    .decrypt(
                        XNonce::from_slice(nonce),
                        Payload {
                            msg: ct,
                            aad: aad.as_bytes(),
                        },
                    )
                    .ok()
            })
            .map(Zeroizing::new)
            .ok_or(KeyError::Decrypt)
    }
}

/// Kinds of bearer credential; the prefix tells the server which table to look in and tells a
/// person what they are holding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Admin,
    Person,
    Host,
    JoinSecret,
}

impl TokenKind {
    pub fn prefix(self) -> &'static str {
        match self {
            TokenKind::Admin => "jita_",
            TokenKind::Person => "jitp_",
            TokenKind::Host => "jith_",
            TokenKind::JoinSecret => "jitj_",
        }
    }

    pub fn of(token: &str) -> Option<TokenKind> {
        [
            TokenKind::Admin,
            TokenKind::Person,
            TokenKind::Host,
            TokenKind::JoinSecret,
        ]
        .into_iter()
        .find(|k| token.starts_with(k.prefix()))
    }
}

/// A new random token of the given kind (256 bits).
pub fn new_token(kind: TokenKind) -> Secret {
    let mut raw = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(&mut *raw);
    Secret::new(format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(*raw)))
}

/// A new enrollment code people can read aloud: 20 base32 characters (100 bits) in groups of 5.
pub fn new_enrollment_code() -> Secret {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789"; // no 0/O, 1/I
    let mut raw = Zeroizing::new([0u8; 20]);
    rand::rng().fill_bytes(&mut *raw);
    let mut out = String::with_capacity(23);
    for (i, b) in raw.iter().enumerate() {
        if i > 0 && i % 5 == 0 {
            out.push('-');
        }
        out.push(ALPHABET[(*b as usize) % 32] as char);
    }
    raw.zeroize();
    Secret::new(out)
}

/// Normalizes what a person typed for an enrollment code (case, spaces, dashes).
pub fn normalize_enrollment_code(typed: &str) -> Zeroizing<String> {
    Zeroizing::new(
        typed
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_uppercase())
            .collect(),
    )
}

/// What the database stores for a token or code.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A random id for a login attempt (128 bits, hex).
pub fn new_attempt_id() -> String {
    let mut raw = [0u8; 16];
    rand::rng().fill_bytes(&mut raw);
    hex::encode(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_opens_with_older_keys_and_seals_with_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        let old = AtRestKey::generate();
        let new = AtRestKey::generate();
        old.save(&dir.path().join(PREVIOUS_KEY_FILE)).unwrap();
        new.save(&dir.path().join(KEY_FILE)).unwrap();
        let ring = AtRestKey::load_ring(dir.path()).unwrap();
        let by_old = old.seal(b"s1", "aad");
        assert_eq!(&*ring.open(&by_old, "aad").unwrap(), b"s1");
        // What the ring seals opens with the current key alone.
        let sealed = ring.seal(b"s2", "aad");
        assert_eq!(&*new.open(&sealed, "aad").unwrap(), b"s2");
        assert!(old.open(&sealed, "aad").is_err());
        // The associated data still binds, whichever key.
        assert!(ring.open(&by_old, "other").is_err());
    }

    #[test]
    fn seal_open_round_trip_and_binding() {
        let k = AtRestKey::generate();
        let sealed = k.seal(b"JBSWY3DPEHPK3PXP", "person:1");
        assert_eq!(&**k.open(&sealed, "person:1").unwrap(), b"JBSWY3DPEHPK3PXP");
        assert!(k.open(&sealed, "person:2").is_err(), "bound to its row");
        assert!(
            AtRestKey::generate().open(&sealed, "person:1").is_err(),
            "bound to its key"
        );
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(k.open(&tampered, "person:1").is_err());
        assert!(k.open(b"short", "person:1").is_err());
    }

    #[test]
    fn key_file_is_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let k = AtRestKey::generate();
        k.save(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(AtRestKey::generate().save(&path).is_err());
        let back = AtRestKey::load(&path).unwrap();
        assert_eq!(&**back.open(&k.seal(b"x", "a"), "a").unwrap(), b"x");
        std::fs::write(dir.path().join("bad"), b"short").unwrap();
        let err = AtRestKey::load(&dir.path().join("bad"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("expected 32 bytes, found 5"), "{err}");
    }

    #[test]
    fn tokens_and_codes() {
        let t = new_token(TokenKind::Person);
        assert!(t.expose().starts_with("jitp_") && t.expose().len() == 5 + 43);
        assert_eq!(TokenKind::of(t.expose()), Some(TokenKind::Person));
        assert_ne!(new_token(TokenKind::Person), t);
        let c = new_enrollment_code();
        assert_eq!(c.expose().len(), 23);
        let typed = c.expose().to_lowercase().replace('-', " ");
        assert_eq!(
            *normalize_enrollment_code(&typed),
            c.expose().replace('-', "")
        );
        assert_eq!(token_hash("abc").len(), 64);
    }
}
