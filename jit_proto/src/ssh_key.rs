//! ssh public keys as persons register them and as sshd names them.
//!
//! A registered key is one `authorized_keys` line without options: `TYPE BASE64 [COMMENT]`. The
//! blob inside the base64 is parsed (RFC 4253 §6.6, RFC 5656, RFC 8709, OpenSSH's PROTOCOL.u2f),
//! so a key whose inner type disagrees with the stated one, a truncated or padded blob, or an
//! RSA modulus under [`MIN_RSA_BITS`] is refused before it is stored. The fingerprint is what
//! `ssh-keygen -l` and sshd's log print: `SHA256:` and the unpadded base64 of the blob's SHA-256.
//!
//! Never panics on any input (it reads what a person pasted and what sshd exposes).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::{Digest, Sha256};

/// Longest line accepted: an RSA key of 16384 bits with a long comment fits with room to spare.
pub const MAX_LINE_BYTES: usize = 8 * 1024;
/// Weakest RSA key accepted (what OpenSSH itself requires since 9.x is 1024; NIST asks 2048).
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA key accepted (OpenSSH's own limit).
pub const MAX_RSA_BITS: usize = 16384;
/// Longest comment kept.
pub const MAX_COMMENT_CHARS: usize = 256;

/// The key types jit accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Ed25519,
    EcdsaP256,
    EcdsaP384,
    EcdsaP521,
    SkEd25519,
    SkEcdsaP256,
    Rsa,
}

const ALL: [KeyType; 7] = [
    KeyType::Ed25519,
    KeyType::EcdsaP256,
    KeyType::EcdsaP384,
    KeyType::EcdsaP521,
    KeyType::SkEd25519,
    KeyType::SkEcdsaP256,
    KeyType::Rsa,
];

/// Names that are key types, but not ones jit accepts (so that a line starting with one of them
/// is not taken for options).
const REFUSED: [&str; 2] = ["ssh-dss", "ssh-dss-cert-v01@openssh.com"];

impl KeyType {
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ssh-ed25519",
            KeyType::EcdsaP256 => "ecdsa-sha2-nistp256",
            KeyType::EcdsaP384 => "ecdsa-sha2-nistp384",
            KeyType::EcdsaP521 => "ecdsa-sha2-nistp521",
            KeyType::SkEd25519 => "sk-ssh-ed25519@openssh.com",
            KeyType::SkEcdsaP256 => "sk-ecdsa-sha2-nistp256@openssh.com",
            KeyType::Rsa => "ssh-rsa",
        }
    }

    pub fn from_name(s: &str) -> Option<KeyType> {
        ALL.into_iter().find(|t| t.name() == s)
    }

    /// The curve name inside an ECDSA blob, and the length of its uncompressed point.
    fn curve(self) -> Option<(&'static str, usize)> {
        match self {
            KeyType::EcdsaP256 | KeyType::SkEcdsaP256 => Some(("nistp256", 65)),
            KeyType::EcdsaP384 => Some(("nistp384", 97)),
            KeyType::EcdsaP521 => Some(("nistp521", 133)),
            _ => None,
        }
    }
}

/// What was wrong with a key, in words that say what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the public key is empty: paste one line such as `ssh-ed25519 AAAA… you@laptop`")]
    Empty,
    #[error("the public key is longer than {MAX_LINE_BYTES} bytes")]
    TooLong,
    #[error(
        "give one public key on one line (an authorized_keys file with several keys is \
         registered one key at a time)"
    )]
    SeveralLines,
    #[error("the public key contains control characters")]
    Control,
    #[error(
        "that is a private key: register the public half (the .pub file, e.g. ~/.ssh/id_ed25519.pub)"
    )]
    PrivateKey,
    #[error(
        "authorized_keys options (from=, command=, no-pty, …) are not accepted: register the \
         bare key `{0} AAAA… comment`; jit decides where it counts"
    )]
    Options(String),
    #[error(
        "DSA keys ({0}) are refused: OpenSSH no longer accepts them; make an ed25519 key with \
         `ssh-keygen -t ed25519`"
    )]
    Dsa(String),
    #[error(
        "unsupported key type {0:?}: use ssh-ed25519, ecdsa-sha2-nistp256/384/521, \
         sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com or ssh-rsa"
    )]
    UnknownType(String),
    #[error("the key's base64 is missing: a line reads `TYPE BASE64 [COMMENT]`")]
    NoBlob,
    #[error("the key's base64 is damaged (copy the whole line of the .pub file again)")]
    BadBase64,
    #[error("the key says it is {stated} but its data is a {inner} key")]
    TypeMismatch { stated: String, inner: String },
    #[error("the key's data is damaged: {0}")]
    BadBlob(&'static str),
    #[error(
        "RSA keys need at least {MIN_RSA_BITS} bits (this one has {0}); make an ed25519 key with \
         `ssh-keygen -t ed25519`"
    )]
    RsaTooSmall(usize),
    #[error("RSA keys of more than {MAX_RSA_BITS} bits are refused (this one has {0})")]
    RsaTooLarge(usize),
    #[error("the key's comment is longer than {MAX_COMMENT_CHARS} characters")]
    CommentTooLong,
}

/// A parsed, validated public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub key_type: KeyType,
    /// The wire-format blob (what the base64 encodes).
    pub blob: Vec<u8>,
    pub comment: Option<String>,
    /// Bits of the modulus for RSA keys.
    pub rsa_bits: Option<usize>,
}

impl PublicKey {
    /// Parses one `authorized_keys` line without options: `TYPE BASE64 [COMMENT]`. Surrounding
    /// white space and a final newline are ignored.
    pub fn parse_line(line: &str) -> Result<PublicKey, KeyError> {
        if line.len() > MAX_LINE_BYTES {
            return Err(KeyError::TooLong);
        }
        let line = line.trim();
        if line.is_empty() {
            return Err(KeyError::Empty);
        }
        if line.starts_with("-----BEGIN") || line.contains("PRIVATE KEY-----") {
            return Err(KeyError::PrivateKey);
        }
        if line.contains('\n') || line.contains('\r') {
            return Err(KeyError::SeveralLines);
        }
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(KeyError::Control);
        }
        let blank = [' ', '\t'];
        let (first, rest) = line.split_once(blank).unwrap_or((line, ""));
        let key_type = match KeyType::from_name(first) {
            Some(t) => t,
            None if REFUSED.contains(&first) => return Err(KeyError::Dsa(first.to_owned())),
            None => {
                // A known type further on means the line starts with options.
                let later = line
                    .split(blank)
                    .skip(1)
                    .find(|w| KeyType::from_name(w).is_some() || REFUSED.contains(w));
                return Err(match later {
                    Some(t) => KeyError::Options(t.to_owned()),
                    None => KeyError::UnknownType(first.chars().take(64).collect()),
                });
            }
        };
        let rest = rest.trim_start_matches(blank);
        let (b64, comment) = rest.split_once(blank).unwrap_or((rest, ""));
        if b64.is_empty() {
            return Err(KeyError::NoBlob);
        }
        let comment = Some(comment.trim().to_owned()).filter(|c| !c.is_empty());
        if comment
            .as_ref()
            .is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS)
        {
            return Err(KeyError::CommentTooLong);
        }
        let blob = STANDARD.decode(b64).map_err(|_| KeyError::BadBase64)?;
        let mut key = PublicKey::from_blob(key_type, blob)?;
        key.comment = comment;
        Ok(key)
    }

    /// Checks a wire-format blob against the type it is said to be.
    pub fn from_blob(key_type: KeyType, blob: Vec<u8>) -> Result<PublicKey, KeyError> {
        let mut r = Reader(&blob);
        let inner = r.string()?;
        if inner != key_type.name().as_bytes() {
            return Err(KeyError::TypeMismatch {
                stated: key_type.name().to_owned(),
                inner: String::from_utf8_lossy(inner).chars().take(64).collect(),
            });
        }
        let mut rsa_bits = None;
        match key_type {
            KeyType::Ed25519 | KeyType::SkEd25519 => {
                if r.string()?.len() != 32 {
                    return Err(KeyError::BadBlob("an ed25519 key is 32 bytes"));
                }
            }
            KeyType::EcdsaP256 | KeyType::EcdsaP384 | KeyType::EcdsaP521 | KeyType::SkEcdsaP256 => {
                let (curve, point_len) = key_type.curve().unwrap_or(("", 0));
                if r.string()? != curve.as_bytes() {
                    return Err(KeyError::BadBlob("the curve does not match the key type"));
                }
                let point = r.string()?;
                if point.len() != point_len || point.first() != Some(&4) {
                    return Err(KeyError::BadBlob(
                        "the curve point is not an uncompressed point of the right size",
                    ));
                }
            }
            KeyType::Rsa => {
                let e = r.mpint()?;
                let n = r.mpint()?;
                let e_odd = e.last().is_some_and(|b| b & 1 == 1);
                if e.is_empty() || e.len() > 8 || !e_odd || e == [1] {
                    return Err(KeyError::BadBlob("the RSA public exponent is not valid"));
                }
                let bits = bit_len(n);
                if bits < MIN_RSA_BITS {
                    return Err(KeyError::RsaTooSmall(bits));
                }
                if bits > MAX_RSA_BITS {
                    return Err(KeyError::RsaTooLarge(bits));
                }
                rsa_bits = Some(bits);
            }
        }
        if matches!(key_type, KeyType::SkEd25519 | KeyType::SkEcdsaP256) {
            let app = r.string()?;
            if app.is_empty() || app.len() > 256 || std::str::from_utf8(app).is_err() {
                return Err(KeyError::BadBlob(
                    "the security key's application is not valid",
                ));
            }
        }
        if !r.0.is_empty() {
            return Err(KeyError::BadBlob("there are extra bytes after the key"));
        }
        Ok(PublicKey {
            key_type,
            blob,
            comment: None,
            rsa_bits,
        })
    }

    /// `SHA256:…` as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        fingerprint_of_blob(&self.blob)
    }

    /// `TYPE BASE64`, without comment: what an `authorized_keys` line needs.
    pub fn key_text(&self) -> String {
        format!("{} {}", self.key_type.name(), STANDARD.encode(&self.blob))
    }

    /// `TYPE BASE64 [COMMENT]`.
    pub fn to_line(&self) -> String {
        match &self.comment {
            Some(c) => format!("{} {c}", self.key_text()),
            None => self.key_text(),
        }
    }
}

/// The `SHA256:…` fingerprint of a key blob.
pub fn fingerprint_of_blob(blob: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(blob)))
}

/// Is `s` a fingerprint as [`fingerprint_of_blob`] writes it (`SHA256:` and 43 base64 digits)?
pub fn is_fingerprint(s: &str) -> bool {
    s.strip_prefix("SHA256:").is_some_and(|b| {
        b.len() == 43
            && b.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
            && STANDARD_NO_PAD.decode(b).is_ok_and(|d| d.len() == 32)
    })
}

/// Bits of a non-negative big-endian integer.
fn bit_len(n: &[u8]) -> usize {
    let mut bytes = n.iter().skip_while(|b| **b == 0);
    match bytes.next() {
        Some(first) => (bytes.count() + 1) * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// Reads SSH wire-format fields (RFC 4251 §5) without ever indexing out of bounds.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn string(&mut self) -> Result<&'a [u8], KeyError> {
        let short = KeyError::BadBlob("it ends early");
        let (len, rest) = self.0.split_first_chunk::<4>().ok_or(short.clone())?;
        let len = u32::from_be_bytes(*len) as usize;
        if len > rest.len() {
            return Err(short);
        }
        let (s, rest) = rest.split_at(len);
        self.0 = rest;
        Ok(s)
    }

    /// A positive mpint, without its sign byte.
    fn mpint(&mut self) -> Result<&'a [u8], KeyError> {
        let v = self.string()?;
        if v.first().is_some_and(|b| b & 0x80 != 0) {
            return Err(KeyError::BadBlob("a negative number in an RSA key"));
        }
        Ok(v.strip_prefix(&[0]).unwrap_or(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with ssh-keygen (OpenSSH 9.2); fingerprints as `ssh-keygen -lf` printed them.
    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIvudleBXFmsTY4KSD+r7tVOYfNFM/JHE46zWVUQRoFz alice@laptop";
    const ED25519_FP: &str = "SHA256:btBvwulHTEpBX/dKrALdQEojxIw7m0N/q0e7v7XKTEQ";

    fn wire(fields: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in fields {
            out.extend_from_slice(&(f.len() as u32).to_be_bytes());
            out.extend_from_slice(f);
        }
        out
    }

    fn line(t: &str, blob: &[u8]) -> String {
        format!("{t} {}", STANDARD.encode(blob))
    }

    #[test]
    fn an_ed25519_line_parses_with_its_comment_and_fingerprint() {
        let k = PublicKey::parse_line(&format!("  {ED25519}\n")).unwrap();
        assert_eq!(k.key_type, KeyType::Ed25519);
        assert_eq!(k.comment.as_deref(), Some("alice@laptop"));
        assert_eq!(k.fingerprint(), ED25519_FP);
        assert!(is_fingerprint(&k.fingerprint()));
        assert_eq!(k.to_line(), ED25519);
        let spaced = ED25519.replace(" alice@laptop", "\t  alice  two words ");
        let k = PublicKey::parse_line(&spaced).unwrap();
        assert_eq!(k.comment.as_deref(), Some("alice  two words"));
    }

    #[test]
    fn every_bad_line_says_what_was_wrong() {
        let ed = wire(&[b"ssh-ed25519", &[7; 32]]);
        let rsa_small = wire(&[b"ssh-rsa", &[1, 0, 1], &[0x7f; 128]]);
        let cases: Vec<(String, KeyError)> = vec![
            ("".into(), KeyError::Empty),
            ("x".repeat(MAX_LINE_BYTES + 1), KeyError::TooLong),
            (format!("{ED25519}\n{ED25519}"), KeyError::SeveralLines),
            (format!("{ED25519}\u{1b}[2J"), KeyError::Control),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----".into(),
                KeyError::PrivateKey,
            ),
            (
                format!("from=\"10.0.0.1\" {ED25519}"),
                KeyError::Options("ssh-ed25519".into()),
            ),
            (
                format!("command=\"echo hi\",no-pty {ED25519}"),
                KeyError::Options("ssh-ed25519".into()),
            ),
            (
                line("ssh-dss", &wire(&[b"ssh-dss"])),
                KeyError::Dsa("ssh-dss".into()),
            ),
            (
                "ssh-foo AAAA".into(),
                KeyError::UnknownType("ssh-foo".into()),
            ),
            ("ssh-ed25519".into(), KeyError::NoBlob),
            ("ssh-ed25519 AAAA!!!!".into(), KeyError::BadBase64),
            (
                line("ecdsa-sha2-nistp256", &ed),
                KeyError::TypeMismatch {
                    stated: "ecdsa-sha2-nistp256".into(),
                    inner: "ssh-ed25519".into(),
                },
            ),
            (
                line("ssh-ed25519", &wire(&[b"ssh-ed25519", &[7; 31]])),
                KeyError::BadBlob("an ed25519 key is 32 bytes"),
            ),
            (
                line("ssh-ed25519", &[ed.as_slice(), &[0]].concat()),
                KeyError::BadBlob("there are extra bytes after the key"),
            ),
            (
                line("ssh-ed25519", &ed[..20]),
                KeyError::BadBlob("it ends early"),
            ),
            (line("ssh-rsa", &rsa_small), KeyError::RsaTooSmall(1023)),
            (
                format!("{ED25519} {}", "c".repeat(300)),
                KeyError::CommentTooLong,
            ),
        ];
        for (input, want) in cases {
            let shown: String = input.chars().take(60).collect();
            assert_eq!(PublicKey::parse_line(&input), Err(want), "{shown}");
        }
    }

    #[test]
    fn ecdsa_sk_and_rsa_blobs_are_checked_field_by_field() {
        let point = |n: usize| {
            let mut p = vec![4u8];
            p.resize(n, 9);
            p
        };
        let p256 = wire(&[b"ecdsa-sha2-nistp256", b"nistp256", &point(65)]);
        let k = PublicKey::parse_line(&line("ecdsa-sha2-nistp256", &p256)).unwrap();
        assert_eq!(k.key_type, KeyType::EcdsaP256);
        let wrong_curve = wire(&[b"ecdsa-sha2-nistp384", b"nistp256", &point(97)]);
        assert!(PublicKey::parse_line(&line("ecdsa-sha2-nistp384", &wrong_curve)).is_err());
        let short_point = wire(&[b"ecdsa-sha2-nistp521", b"nistp521", &point(97)]);
        assert!(PublicKey::parse_line(&line("ecdsa-sha2-nistp521", &short_point)).is_err());

        let sk = wire(&[b"sk-ssh-ed25519@openssh.com", &[1; 32], b"ssh:"]);
        assert!(PublicKey::parse_line(&line("sk-ssh-ed25519@openssh.com", &sk)).is_ok());
        let sk_no_app = wire(&[b"sk-ssh-ed25519@openssh.com", &[1; 32]]);
        assert!(PublicKey::parse_line(&line("sk-ssh-ed25519@openssh.com", &sk_no_app)).is_err());

        let mut n = vec![0u8];
        n.extend([0xc5; 256]); // 2048 bits, with the sign byte
        let rsa = wire(&[b"ssh-rsa", &[1, 0, 1], &n]);
        let k = PublicKey::parse_line(&line("ssh-rsa", &rsa)).unwrap();
        assert_eq!(k.rsa_bits, Some(2048));
        let even_e = wire(&[b"ssh-rsa", &[1, 0, 0], &n]);
        assert!(PublicKey::parse_line(&line("ssh-rsa", &even_e)).is_err());
        let negative = wire(&[b"ssh-rsa", &[1, 0, 1], &[0xc5; 256]]);
        assert!(PublicKey::parse_line(&line("ssh-rsa", &negative)).is_err());
    }

    #[test]
    fn fingerprints_have_one_form() {
        assert!(is_fingerprint(ED25519_FP));
        for bad in [
            "",
            "SHA256:",
            "sha256:btBvwulHTEpBX/dKrALdQEojxIw7m0N/q0e7v7XKTEQ",
            "SHA256:btBvwulHTEpBX/dKrALdQEojxIw7m0N/q0e7v7XKTE",
            "SHA256:btBvwulHTEpBX/dKrALdQEojxIw7m0N/q0e7v7XKTEQ=",
            "MD5:00:11",
        ] {
            assert!(!is_fingerprint(bad), "{bad}");
        }
    }
}
