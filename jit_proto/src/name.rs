//! Names that cross a trust boundary, validated once when they enter the system.
//!
//! Account, person, group and label names follow the Linux user-name rule that `useradd` applies
//! by default: `[a-z_][a-z0-9_-]*`, at most 32 bytes. Host names are DNS-like: lowercase letters,
//! digits, `-` and `.`, at most 253 bytes, starting with a letter or digit.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest user or group name we accept (matches `LOGIN_NAME_MAX`-style limits of useradd).
pub const MAX_NAME_LEN: usize = 32;
/// Longest host name we accept (a DNS name).
pub const MAX_HOST_LEN: usize = 253;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{kind} name is empty")]
    Empty { kind: &'static str },
    #[error("{kind} name is {len} bytes long; the limit is {max}")]
    TooLong {
        kind: &'static str,
        len: usize,
        max: usize,
    },
    #[error(
        "{kind} name {shown:?} is not valid: use lowercase letters, digits, '_' and '-', starting with a letter or '_'"
    )]
    BadUserName { kind: &'static str, shown: String },
    #[error(
        "host name {shown:?} is not valid: use lowercase letters, digits, '-' and '.', starting with a letter or digit"
    )]
    BadHostName { shown: String },
}

/// Shows at most 64 characters of a rejected name, with control characters escaped by `{:?}`.
fn shown(s: &str) -> String {
    s.chars().take(64).collect()
}

fn check_user_like(kind: &'static str, s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty { kind });
    }
    if s.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong {
            kind,
            len: s.len(),
            max: MAX_NAME_LEN,
        });
    }
    let mut b = s.bytes();
    let first_ok = b
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == b'_');
    let rest_ok = b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-');
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(NameError::BadUserName {
            kind,
            shown: shown(s),
        })
    }
}

fn check_host(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty { kind: "host" });
    }
    if s.len() > MAX_HOST_LEN {
        return Err(NameError::TooLong {
            kind: "host",
            len: s.len(),
            max: MAX_HOST_LEN,
        });
    }
    let first_ok = s
        .bytes()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = s
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.');
    if first_ok && rest_ok && !s.contains("..") && !s.ends_with('.') {
        Ok(())
    } else {
        Err(NameError::BadHostName { shown: shown(s) })
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $ty(String);

        impl $ty {
            /// Validates `s`; the error says what is wrong with it.
            pub fn new(s: &str) -> Result<Self, NameError> {
                let check: fn(&str) -> Result<(), NameError> = $check;
                check(s)?;
                Ok(Self(s.to_owned()))
            }

            /// Validates raw bytes from C (a PAM item or an NSS argument).
            pub fn from_bytes(b: &[u8]) -> Result<Self, NameError> {
                match std::str::from_utf8(b) {
                    Ok(s) => Self::new(s),
                    Err(_) => Err(NameError::BadUserName {
                        kind: $kind,
                        shown: String::from_utf8_lossy(b.get(..64).unwrap_or(b)).into_owned(),
                    }),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl FromStr for $ty {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// A shared account's login name (`admin`, `root`).
    AccountName, "account", |s| check_user_like("account", s)
);
name_type!(
    /// A person's name on the central service (`alice`).
    PersonName, "person", |s| check_user_like("person", s)
);
name_type!(
    /// A group: of persons allowed to reserve an account (`ops`), or a Unix group nss_jit serves.
    GroupName, "group", |s| check_user_like("group", s)
);
name_type!(
    /// A host label (`web`).
    Label, "label", |s| check_user_like("label", s)
);
name_type!(
    /// An enrolled host (`web01`, `db1.example.com`).
    HostName, "host", check_host
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_linux_user_names() {
        for ok in [
            "admin",
            "root",
            "_svc",
            "a",
            "deploy-bot",
            "x_1-2",
            &"a".repeat(32),
        ] {
            AccountName::new(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn rejects_bad_user_names_with_a_reason() {
        let cases = [
            ("", "empty"),
            ("Admin", "not valid"),
            ("1admin", "not valid"),
            ("-admin", "not valid"),
            ("ad min", "not valid"),
            ("adm\u{e9}", "not valid"),
            ("admin\n", "not valid"),
            ("a.b", "not valid"),
        ];
        for (bad, why) in cases {
            let err = AccountName::new(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?} gave {err}");
        }
        let long = "a".repeat(33);
        assert_eq!(
            AccountName::new(&long).unwrap_err().to_string(),
            "account name is 33 bytes long; the limit is 32"
        );
    }

    #[test]
    fn non_utf8_bytes_are_a_clear_error() {
        let err = PersonName::from_bytes(b"al\xffice")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("person name"), "{err}");
    }

    #[test]
    fn host_names() {
        for ok in ["web01", "db1.example.com", "10-0-0-1"] {
            HostName::new(ok).unwrap();
        }
        for bad in [
            "",
            "Web01",
            "-web",
            "web..01",
            "web01.",
            "web_01",
            &"a".repeat(254),
        ] {
            assert!(HostName::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn serde_validates_on_the_way_in() {
        let ok: AccountName = serde_json::from_str("\"admin\"").unwrap();
        assert_eq!(ok.as_str(), "admin");
        assert!(serde_json::from_str::<AccountName>("\"ADMIN\"").is_err());
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"admin\"");
    }

    #[test]
    fn json_errors_about_names_never_show_the_value() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Body {
            account: AccountName,
        }
        let err = |json: &str| {
            crate::json_error::describe(&serde_json::from_str::<Body>(json).unwrap_err())
        };
        let t = err(r#"{"account":"A123456"}"#);
        assert!(
            t.starts_with("account name (value not shown) is not valid: use lowercase"),
            "{t}"
        );
        assert!(!t.contains("123456"), "{t}");
        let t = err(&format!(r#"{{"account":"{}"}}"#, "a".repeat(40)));
        assert!(t.contains("40 bytes long; the limit is 32"), "{t}");
    }
}
