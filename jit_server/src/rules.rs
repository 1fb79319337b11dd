//! Reservation and account rules as plain functions: no database, no clock.

use jit_proto::api::PosixIdentity;
use jit_proto::text;
use jit_proto::{HostName, Label};

/// Shortest reservation, in seconds.
pub const MIN_TTL_SECS: u32 = 60;
/// Default and default maximum duration, in seconds.
pub const DEFAULT_TTL_SECS: u32 = 300;
/// Upper bound for any account's maximum.
pub const MAX_TTL_CAP_SECS: u32 = 24 * 3600;
/// Longest reason accepted.
pub const MAX_REASON_CHARS: usize = 200;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RuleError {
    #[error("{0}")]
    Invalid(String),
}

fn invalid(s: impl Into<String>) -> RuleError {
    RuleError::Invalid(s.into())
}

/// Shell-style match of a host name against a pattern with `*` and `?`.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

/// Does an account with these host patterns and labels exist on this host?
pub fn host_allowed(
    host: &HostName,
    host_labels: &[Label],
    patterns: &[String],
    labels: &[Label],
) -> bool {
    patterns.iter().any(|p| glob_match(p, host.as_str()))
        || labels.iter().any(|l| host_labels.contains(l))
}

pub fn check_host_pattern(p: &str) -> Result<(), RuleError> {
    let ok = !p.is_empty()
        && p.len() <= 253
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.*?".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "host pattern {p:?} is not valid: use lowercase host names with * and ? (e.g. \"web*\")"
        )))
    }
}

/// The duration a reservation gets: the requested one, or the account's default; between
/// [`MIN_TTL_SECS`] and the account's maximum.
pub fn reservation_ttl(requested: Option<u32>, default: u32, max: u32) -> Result<u32, RuleError> {
    let ttl = requested.unwrap_or(default);
    if ttl < MIN_TTL_SECS {
        return Err(invalid(format!(
            "a reservation lasts at least {MIN_TTL_SECS} s; you asked for {ttl} s"
        )));
    }
    if ttl > max {
        return Err(invalid(format!(
            "this account can be reserved for at most {} (you asked for {}); ask an admin to raise its --max-ttl",
            human_secs(i64::from(max)),
            human_secs(i64::from(ttl))
        )));
    }
    Ok(ttl)
}

/// Default and maximum durations of an account, validated together.
/// The new end of a live reservation extended by `by` seconds: at least [`MIN_TTL_SECS`] more,
/// and no more than `max` (the account's max-ttl) left at `now` afterwards.
pub fn extended_expiry(expires_at: i64, now: i64, by: u32, max: u32) -> Result<i64, RuleError> {
    if by < MIN_TTL_SECS {
        return Err(invalid(format!(
            "extend by at least {MIN_TTL_SECS} s; you asked for {by} s"
        )));
    }
    let new_end = expires_at.max(now) + i64::from(by);
    if new_end - now > i64::from(max) {
        let room = (i64::from(max) - (expires_at - now)).max(0);
        return Err(invalid(format!(
            "this account can be held for at most {} at a time, and {} is left: extend by at \
             most {} (you asked for {})",
            human_secs(i64::from(max)),
            human_secs(expires_at - now),
            human_secs(room),
            human_secs(i64::from(by))
        )));
    }
    Ok(new_end)
}

pub fn account_ttls(default: Option<u32>, max: Option<u32>) -> Result<(u32, u32), RuleError> {
    let max = max.unwrap_or(DEFAULT_TTL_SECS.max(default.unwrap_or(0)));
    let default = default.unwrap_or(DEFAULT_TTL_SECS.min(max));
    if default < MIN_TTL_SECS {
        return Err(invalid(format!("--ttl must be at least {MIN_TTL_SECS} s")));
    }
    if max > MAX_TTL_CAP_SECS {
        return Err(invalid(format!(
            "--max-ttl must be at most {}",
            human_secs(MAX_TTL_CAP_SECS.into())
        )));
    }
    if default > max {
        return Err(invalid(format!(
            "--ttl ({}) is longer than --max-ttl ({})",
            human_secs(default.into()),
            human_secs(max.into())
        )));
    }
    Ok((default, max))
}

pub fn check_reason(reason: &Option<String>) -> Result<(), RuleError> {
    if let Some(r) = reason {
        if r.chars().count() > MAX_REASON_CHARS {
            return Err(invalid(format!(
                "the reason is longer than {MAX_REASON_CHARS} characters"
            )));
        }
        check_printable("the reason", r)?;
    }
    Ok(())
}

/// Free text that is stored and shown again (a reason, a display name, a login's origin) holds
/// no control character and no Unicode format character (category Cf: bidi overrides such as
/// U+202E, zero-width characters such as U+200B), which would make it read differently from what
/// was stored. The error names the character by its code point.
pub fn check_printable(what: &str, v: &str) -> Result<(), RuleError> {
    match text::first_unprintable(v) {
        Some(c) => Err(invalid(format!(
            "{what} contains {}, a control or invisible formatting character; remove it",
            text::code_point(c)
        ))),
        None => Ok(()),
    }
}

/// Longest service, rhost, tty or ruser a host may report for a login.
pub const MAX_ORIGIN_CHARS: usize = 256;

/// Where a login came from is stored in the audit log: bounded, printable.
pub fn check_origin(o: &jit_proto::api::LoginOrigin) -> Result<(), RuleError> {
    let fields = [
        ("service", Some(&o.service)),
        ("rhost", o.rhost.as_ref()),
        ("tty", o.tty.as_ref()),
        ("ruser", o.ruser.as_ref()),
        ("ssh_key", o.ssh_key.as_ref()),
        ("source", o.source.as_ref()),
    ];
    for (what, v) in fields {
        if let Some(v) = v {
            if v.chars().count() > MAX_ORIGIN_CHARS {
                return Err(invalid(format!(
                    "login origin {what}: at most {MAX_ORIGIN_CHARS} characters"
                )));
            }
            check_printable(&format!("login origin {what}"), v)?;
        }
    }
    if let Some(k) = &o.ssh_key
        && !jit_proto::ssh_key::is_fingerprint(k)
    {
        return Err(invalid(
            "login origin ssh_key: expected the key's fingerprint as sshd logs it, SHA256: and \
             43 base64 characters",
        ));
    }
    Ok(())
}

/// A field that ends up in a passwd line must not break the line's format.
fn passwd_field(what: &str, v: &str, max: usize) -> Result<(), RuleError> {
    if v.len() > max || v.contains(':') || v.chars().any(|c| c.is_control()) {
        return Err(invalid(format!(
            "{what} {v:?} is not valid: at most {max} bytes, no ':' and no control characters"
        )));
    }
    Ok(())
}

pub fn check_posix(p: &PosixIdentity) -> Result<(), RuleError> {
    if p.uid == 0 || p.gid == 0 {
        return Err(invalid(
            "a virtual account cannot have uid or gid 0; to share root, add it as an existing account: jitctl account add root --existing ...",
        ));
    }
    if p.uid == u32::MAX || p.gid == u32::MAX {
        return Err(invalid("uid and gid 4294967295 are reserved"));
    }
    passwd_field("gecos", &p.gecos, 256)?;
    for (what, path) in [("home", &p.home), ("shell", &p.shell)] {
        passwd_field(what, path, 4096)?;
        if !path.starts_with('/') {
            return Err(invalid(format!("{what} {path:?} must be an absolute path")));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for g in &p.unix_groups {
        if g.gid == 0 {
            return Err(invalid(format!("unix group {} cannot have gid 0", g.name)));
        }
        if !seen.insert(g.gid) {
            return Err(invalid(format!(
                "gid {} is listed twice in --unix-group",
                g.gid
            )));
        }
    }
    Ok(())
}

pub use jit_proto::timefmt::{human_secs, utc};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, n, want) in [
            ("web*", "web01", true),
            ("web*", "db01", false),
            ("*", "anything", true),
            ("web??", "web01", true),
            ("web??", "web1", false),
            ("db1", "db1", true),
            ("db1", "db10", false),
            ("*.example.com", "a.example.com", true),
            ("*.example.com", "example.com", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
        ] {
            assert_eq!(glob_match(p, n), want, "{p} vs {n}");
        }
    }

    #[test]
    fn host_allowed_by_pattern_or_label() {
        let h = HostName::new("web01").unwrap();
        let web = Label::new("web").unwrap();
        let db = Label::new("db").unwrap();
        assert!(host_allowed(&h, &[], &["web*".into()], &[]));
        assert!(host_allowed(
            &h,
            std::slice::from_ref(&web),
            &[],
            std::slice::from_ref(&web)
        ));
        assert!(!host_allowed(&h, &[web], &["db*".into()], &[db]));
    }

    #[test]
    fn ttl_bounds() {
        assert_eq!(reservation_ttl(None, 300, 300), Ok(300));
        assert_eq!(reservation_ttl(Some(60), 300, 300), Ok(60));
        assert!(
            reservation_ttl(Some(59), 300, 300)
                .unwrap_err()
                .to_string()
                .contains("at least 60 s")
        );
        let e = reservation_ttl(Some(3600), 300, 1800)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most 30m") && e.contains("1h"), "{e}");
        assert_eq!(account_ttls(None, None), Ok((300, 300)));
        assert_eq!(account_ttls(Some(300), Some(1800)), Ok((300, 1800)));
        assert_eq!(account_ttls(None, Some(120)), Ok((120, 120)));
        assert_eq!(account_ttls(Some(600), None), Ok((600, 600)));
        assert!(account_ttls(Some(30), None).is_err());
        assert!(account_ttls(Some(900), Some(600)).is_err());
        assert!(account_ttls(None, Some(100_000)).is_err());
    }

    #[test]
    fn posix_fields_cannot_break_passwd() {
        let ok = PosixIdentity {
            uid: 60001,
            gid: 60001,
            gecos: "Shared admin".into(),
            home: "/home/admin".into(),
            shell: "/bin/bash".into(),
            unix_groups: vec![],
        };
        check_posix(&ok).unwrap();
        for bad in [
            PosixIdentity {
                uid: 0,
                ..ok.clone()
            },
            PosixIdentity {
                gecos: "a:b".into(),
                ..ok.clone()
            },
            PosixIdentity {
                home: "home/admin".into(),
                ..ok.clone()
            },
            PosixIdentity {
                shell: "/bin/sh\n".into(),
                ..ok.clone()
            },
        ] {
            assert!(check_posix(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn origins_are_bounded() {
        use jit_proto::api::LoginOrigin;
        let ok = LoginOrigin {
            service: "sshd".into(),
            rhost: Some("10.0.0.1".into()),
            ..Default::default()
        };
        assert!(check_origin(&ok).is_ok());
        let long = LoginOrigin {
            rhost: Some("h".repeat(257)),
            ..ok.clone()
        };
        assert!(
            check_origin(&long)
                .unwrap_err()
                .to_string()
                .contains("rhost")
        );
        let ctl = LoginOrigin {
            tty: Some("pts/1\n".into()),
            ..ok.clone()
        };
        assert!(check_origin(&ctl).unwrap_err().to_string().contains("tty"));
        let bidi = LoginOrigin {
            rhost: Some("10.0.0.1\u{202e}".into()),
            ..ok.clone()
        };
        let e = check_origin(&bidi).unwrap_err().to_string();
        assert!(e.contains("rhost") && e.contains("U+202E"), "{e}");
        let key = |k: &str| LoginOrigin {
            ssh_key: Some(k.into()),
            ..ok.clone()
        };
        assert!(check_origin(&key("SHA256:btBvwulHTEpBX/dKrALdQEojxIw7m0N/q0e7v7XKTEQ")).is_ok());
        for bad in [
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIvudleBXFmsTY4KSD",
            "MD5:8f:1e:2a",
            "SHA256:short",
            "",
        ] {
            let e = check_origin(&key(bad)).unwrap_err().to_string();
            assert!(e.contains("ssh_key") && e.contains("SHA256:"), "{bad}: {e}");
        }
    }

    #[test]
    fn reasons_and_formatting() {
        assert!(check_reason(&Some("patch openssl".into())).is_ok());
        assert!(check_reason(&Some("x".repeat(201))).is_err());
        assert!(check_reason(&Some("a\u{1b}[2J".into())).is_err());
        assert!(check_reason(&Some("déploiement über naïve".into())).is_ok());
        for (reason, named) in [
            ("fix \u{202e}gnp.exe", "U+202E"),
            ("ad\u{200b}min", "U+200B"),
            ("x\u{2066}y\u{2069}", "U+2066"),
            ("tag\u{e0041}", "U+E0041"),
            ("bell\u{7}", "U+0007"),
        ] {
            let e = check_reason(&Some(reason.into())).unwrap_err().to_string();
            assert!(e.contains(named) && e.contains("reason"), "{reason:?}: {e}");
        }
    }

    #[test]
    fn extension_stays_within_max_ttl() {
        // 5 min left of a 30 min max: up to 25 min more.
        assert_eq!(extended_expiry(1300, 1000, 600, 1800), Ok(1900));
        assert_eq!(extended_expiry(1300, 1000, 1500, 1800), Ok(2800));
        let err = extended_expiry(1300, 1000, 1560, 1800)
            .unwrap_err()
            .to_string();
        assert!(err.contains("extend by at most 25m"), "{err}");
        let err = extended_expiry(1300, 1000, 30, 1800)
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 60 s"), "{err}");
    }
}
