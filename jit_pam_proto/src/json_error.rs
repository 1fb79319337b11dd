//! Describes a JSON decoding error without ever repeating a value from the input.
//!
//! serde_json's own messages quote what they found (``invalid type: integer `123456`, expected a
//! string``), and what they found may be a verification code or a token. [`describe`] keeps what
//! helps the sender fix the input (the kind of error, what was expected, field names that look
//! like field names, line and column) and drops every value. Never panics.

/// A one-line description of `e` that names what was wrong and where, but never a value.
pub fn describe(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    let msg = full.strip_suffix(&position).unwrap_or(&full);
    let what = match e.classify() {
        serde_json::error::Category::Io => "the input could not be read".to_owned(),
        serde_json::error::Category::Eof => "the JSON ends too early".to_owned(),
        // Syntax messages are serde_json's fixed set ("expected value", "expected `:`", "trailing
        // characters", …): they never quote the input.
        serde_json::error::Category::Syntax => msg.to_owned(),
        serde_json::error::Category::Data => data(msg),
    };
    if e.line() == 0 {
        what
    } else {
        format!("{what} at line {} column {}", e.line(), e.column())
    }
}

/// Kinds serde reports for what it found (`serde::de::Unexpected`), without their values.
const KINDS: &[&str] = &[
    "integer",
    "floating point",
    "boolean",
    "character",
    "string",
    "byte array",
    "unit value",
    "Option value",
    "newtype struct",
    "sequence",
    "map",
    "enum",
    "unit variant",
    "newtype variant",
    "tuple variant",
    "struct variant",
    "null",
];

/// The text after the last ", expected " (what the type wanted: from the type, never the input).
fn expected(rest: &str) -> Option<&str> {
    rest.rfind(", expected ")
        .map(|i| &rest[i + ", expected ".len()..])
}

fn kind_of(found: &str) -> Option<&'static str> {
    KINDS.iter().copied().find(|k| {
        found == *k
            || found
                .strip_prefix(k)
                .is_some_and(|r| r.starts_with(' ') || r.starts_with(','))
    })
}

/// "invalid type: …", "invalid value: …", "unknown field …" and the other shapes serde uses.
fn data(msg: &str) -> String {
    for prefix in ["invalid type", "invalid value"] {
        if let Some(rest) = msg.strip_prefix(prefix).and_then(|r| r.strip_prefix(": ")) {
            let kind = kind_of(rest).map(|k| format!(": {k}")).unwrap_or_default();
            return match expected(rest) {
                Some(exp) => format!("{prefix}{kind}, expected {}", numbers(exp)),
                None => format!("{prefix}{kind}"),
            };
        }
    }
    if let Some(rest) = msg.strip_prefix("invalid length ") {
        return match expected(rest) {
            Some(exp) => format!("invalid length, expected {}", numbers(exp)),
            None => "invalid length".into(),
        };
    }
    if let Some(rest) = msg.strip_prefix("unknown variant ") {
        return match expected(rest) {
            Some(exp) => format!("unknown variant, expected {}", numbers(exp)),
            None if rest.ends_with("there are no variants") => {
                "unknown variant, there are no variants".into()
            }
            None => "unknown variant".into(),
        };
    }
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        let (name, tail) = match rest.rfind("`, expected ") {
            Some(i) => (&rest[..i], Some(&rest[i + "`, expected ".len()..])),
            None => (
                rest.strip_suffix("`, there are no fields").unwrap_or(rest),
                None,
            ),
        };
        let name = shown_field(name.strip_prefix('`').unwrap_or(name));
        return match tail {
            Some(exp) => format!("unknown field {name}, expected {}", numbers(exp)),
            None => format!("unknown field {name}"),
        };
    }
    for prefix in ["missing field ", "duplicate field "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            let name = rest.trim_matches('`');
            return format!("{prefix}{}", shown_field(name));
        }
    }
    // Anything else is a type's own message (e.g. a name that is not valid): keep its words,
    // drop what it quotes.
    redact(msg)
}

/// A field name is shown when it looks like one; anything else may be a value sent as a key.
fn shown_field(name: &str) -> String {
    let looks_like_a_field = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && name.bytes().next().is_some_and(|b| !b.is_ascii_digit())
        && !has_long_digit_run(name);
    if looks_like_a_field {
        format!("`{name}`")
    } else {
        "(name not shown)".into()
    }
}

/// Longest run of digits kept in a message: limits such as "32" or "253" stay readable, while
/// anything as long as a verification code is dropped.
const MAX_DIGITS: usize = 3;

fn has_long_digit_run(s: &str) -> bool {
    let mut run = 0;
    for b in s.bytes() {
        run = if b.is_ascii_digit() { run + 1 } else { 0 };
        if run > MAX_DIGITS {
            return true;
        }
    }
    false
}

/// What a type expects comes from the type, not the input (its field and variant names, say):
/// only long numbers are dropped from it, to be sure.
fn numbers(expected: &str) -> String {
    let mut out = String::with_capacity(expected.len());
    let mut run = String::new();
    for c in expected.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            run.push(c);
            continue;
        }
        if run.len() > MAX_DIGITS {
            out.push_str("(number not shown)");
        } else {
            out.push_str(&run);
        }
        run.clear();
        out.push(c);
    }
    out.pop();
    out
}

/// Replaces every quoted part (`"…"`, `` `…` ``) and every run of more than [`MAX_DIGITS`]
/// digits with a placeholder.
pub fn redact(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut chars = msg.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '`' => {
                // Skip to the matching quote; a backslash escapes the next character.
                let close = c;
                let mut escaped = false;
                for n in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if n == '\\' {
                        escaped = true;
                    } else if n == close {
                        break;
                    }
                }
                out.push_str("(value not shown)");
            }
            d if d.is_ascii_digit() => {
                let mut run = String::from(d);
                while let Some(n) = chars.peek().copied().filter(char::is_ascii_digit) {
                    run.push(n);
                    chars.next();
                }
                if run.len() > MAX_DIGITS {
                    out.push_str("(number not shown)");
                } else {
                    out.push_str(&run);
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pam::Request;

    const CODE: &str = "123456";

    fn err<T: serde::de::DeserializeOwned + std::fmt::Debug>(json: &str) -> String {
        describe(&serde_json::from_str::<T>(json).unwrap_err())
    }

    /// Validates like jit_proto's `AccountName`, whose errors quote the rejected value.
    #[derive(Debug)]
    struct Account;

    impl<'de> serde::Deserialize<'de> for Account {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let s = <String as serde::Deserialize>::deserialize(d)?;
            if s.len() > 32 {
                return Err(serde::de::Error::custom(format!(
                    "account name is {} bytes long; the limit is 32",
                    s.len()
                )));
            }
            let mut b = s.bytes();
            let ok = b
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == b'_')
                && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
            if ok {
                Ok(Account)
            } else {
                Err(serde::de::Error::custom(format!(
                    "account name {s:?} is not valid: use lowercase letters, digits, '_' and \
                     '-', starting with a letter or '_'"
                )))
            }
        }
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        code: crate::Secret,
        account: Account,
        #[serde(default)]
        steps: Option<[u8; 2]>,
        #[serde(default)]
        kind: Option<Kind>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        Totp,
    }

    #[test]
    fn a_code_like_value_never_appears() {
        let cases = [
            r#"{"code":123456,"account":"admin"}"#,
            r#"{"code":123456.5,"account":"admin"}"#,
            r#"{"code":"x","account":"A123456"}"#,
            r#"{"code":"x","account":"123456"}"#,
            r#"{"code":"x","account":"Adm\"in, expected 123456"}"#,
            r#"{"code":"x","account":"admin","kind":"123456"}"#,
            r#"{"code":"x","account":"admin","steps":[123456]}"#,
            r#"{"code":"x","account":"admin","steps":[1,2,123456]}"#,
            r#"{"code":"x","account":"admin","123456":1}"#,
            r#"{"code":"x","account":"admin","code123456":1}"#,
            r#"{"code":"x","account":"admin","code":"123456"}"#,
            r#"{"code":["123456"],"account":"admin"}"#,
            r#"{"code":true,"account":"admin"} 123456"#,
            r#"{"code":"123456""#,
            r#"{"code":"123456"#,
            r#"{"code":1234567890123456789012345678901234567890e99999,"account":"a"}"#,
        ];
        for json in cases {
            let text = err::<Body>(json);
            assert!(!text.contains(CODE), "{json} gave {text}");
            assert!(text.contains("line 1 column"), "{json} gave {text}");
        }
    }

    #[test]
    fn the_pam_answer_frame_from_the_review() {
        let text = err::<Request>(r#"{"type":"answer","text":123456}"#);
        assert!(!text.contains(CODE), "{text}");
        assert!(
            text.starts_with("invalid type: integer, expected"),
            "{text}"
        );
        let text = err::<Request>(r#"{"type":"123456"}"#);
        assert!(!text.contains(CODE), "{text}");
        assert!(text.starts_with("unknown variant, expected"), "{text}");
    }

    #[test]
    fn what_was_wrong_is_still_named() {
        assert_eq!(
            err::<Body>(r#"{"code":123456,"account":"admin"}"#),
            "invalid type: integer, expected a string at line 1 column 14"
        );
        let t = err::<Body>(r#"{"code":"x","account":"admin","colour":1}"#);
        assert!(
            t.starts_with("unknown field `colour`, expected one of `code`"),
            "{t}"
        );
        let t = err::<Body>(r#"{"code":"x","account":"admin","123456":1}"#);
        assert!(
            t.starts_with("unknown field (name not shown), expected"),
            "{t}"
        );
        let t = err::<Body>(r#"{"code":"x"}"#);
        assert!(t.starts_with("missing field `account`"), "{t}");
        let t = err::<Body>(r#"{"code":"x","account":"Admin"}"#);
        assert!(
            t.starts_with("account name (value not shown) is not valid: use lowercase"),
            "{t}"
        );
        let t = err::<Body>(&format!(r#"{{"code":"x","account":"{}"}}"#, "a".repeat(40)));
        assert!(t.contains("40 bytes long; the limit is 32"), "{t}");
        let t = err::<Body>(r#"{"code":"x","account":"admin","steps":[1]}"#);
        assert!(t.starts_with("invalid length, expected"), "{t}");
        let t = err::<Body>(r#"{"code":"x","#);
        assert!(t.starts_with("the JSON ends too early"), "{t}");
        let t = err::<Body>(r#"{"code" "x"}"#);
        assert_eq!(t, "expected `:` at line 1 column 9");
    }

    #[test]
    fn redact_drops_quotes_and_long_numbers() {
        assert_eq!(
            redact(r#"name "a\"b" is 33 bytes, id `x` 123456"#),
            "name (value not shown) is 33 bytes, id (value not shown) (number not shown)"
        );
        assert_eq!(
            redact("unterminated \"12345"),
            "unterminated (value not shown)"
        );
    }
}
