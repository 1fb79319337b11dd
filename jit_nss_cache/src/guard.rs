//! The one rule for "is this login jit's to check?", shared by pam_jit (when jitd cannot be
//! asked), jitd and `jitd authorized-keys`, so they can never disagree.
//!
//! - With a list (the cache file jitd published): a name is guarded when the list names it, or
//!   when its uid (as the login's own process resolved it) is a guarded name's uid. That covers a
//!   second uid-0 name (`toor`) and a name that differs only in case under a case-insensitive
//!   backend (`Admin`). The answer carries the shared account the login stands for.
//! - Joined but without a list (jitd has never reached the server and no saved copy exists, or
//!   the files are lost or damaged): uid 0 and the always-guarded names are refused; nobody else
//!   is affected. A joined host never treats a name as unguarded because its list is unknown.
//! - Not joined: nothing is guarded.

use crate::joined::Joined;
use crate::read::{CacheView, Guarded};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// jit checks this login; the record is the guarded name that matched (by name, else by uid)
    /// and names the shared account to ask about.
    Guarded(Guarded<'a>),
    /// The host has joined but has no list: this login is uid 0 or an always-guarded name, and
    /// must be refused until the list is back.
    NoList,
    /// Not jit's: the rest of the stack decides, as if jit were not installed.
    NotGuarded,
}

/// Decides for a login to `name`, whose uid is `uid` when the name resolves. `list` is the
/// host's list if one can be read; `joined` is the marker if the host has joined.
pub fn decide<'a>(
    list: Option<&CacheView<'a>>,
    joined: Option<&Joined>,
    name: &[u8],
    uid: Option<u32>,
) -> Verdict<'a> {
    match (list, joined) {
        (Some(list), _) => list
            .guarded_by_name(name)
            .or_else(|| uid.and_then(|u| list.guarded_by_uid(u)))
            .map_or(Verdict::NotGuarded, Verdict::Guarded),
        (None, Some(j)) if uid == Some(0) || j.guards(name) => Verdict::NoList,
        (None, _) => Verdict::NotGuarded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::{CacheContents, CacheGuarded, encode};

    fn list() -> Vec<u8> {
        encode(&CacheContents {
            generation: 1,
            guarded: vec![
                CacheGuarded::account("root", Some(0)),
                CacheGuarded {
                    name: "toor".into(),
                    account: "root".into(),
                    uid: Some(0),
                },
                CacheGuarded::account("admin", Some(60001)),
                CacheGuarded::account("ldapacct", None),
            ],
            ..Default::default()
        })
    }

    fn account<'a>(v: Verdict<'a>) -> Option<&'a [u8]> {
        match v {
            Verdict::Guarded(g) => Some(g.account),
            _ => None,
        }
    }

    #[test]
    fn every_case() {
        let bytes = list();
        let view = CacheView::parse(&bytes).unwrap();
        let joined = Joined::default();
        let with_list = |name: &str, uid| decide(Some(&view), Some(&joined), name.as_bytes(), uid);
        let no_list = |name: &str, uid| decide(None, Some(&joined), name.as_bytes(), uid);
        let not_joined = |name: &str, uid| decide(None, None, name.as_bytes(), uid);
        // (case, verdict, account asked about)
        let cases: Vec<(&str, Verdict<'_>, Option<&[u8]>)> = vec![
            (
                "shared by name",
                with_list("admin", Some(60001)),
                Some(b"admin"),
            ),
            (
                "shared, uid unknown",
                with_list("ldapacct", None),
                Some(b"ldapacct"),
            ),
            (
                "second uid-0 name",
                with_list("toor", Some(0)),
                Some(b"root"),
            ),
            (
                "uid 0 by another name",
                with_list("r00t", Some(0)),
                Some(b"root"),
            ),
            (
                "other case, same uid",
                with_list("Admin", Some(60001)),
                Some(b"admin"),
            ),
            ("other case, no uid", with_list("Admin", None), None),
            ("ordinary user", with_list("alice", Some(1000)), None),
            ("unknown user", with_list("nobody-here", None), None),
        ];
        for (case, verdict, want) in cases {
            assert_eq!(account(verdict), want, "{case}: {verdict:?}");
        }
        assert_eq!(no_list("root", Some(0)), Verdict::NoList);
        assert_eq!(no_list("toor", Some(0)), Verdict::NoList);
        assert_eq!(no_list("root", None), Verdict::NoList, "by name alone");
        assert_eq!(no_list("admin", Some(60001)), Verdict::NotGuarded);
        assert_eq!(no_list("alice", Some(1000)), Verdict::NotGuarded);
        let custom = Joined {
            always_guarded: vec!["deploy".into()],
        };
        assert_eq!(
            decide(None, Some(&custom), b"deploy", None),
            Verdict::NoList
        );
        assert_eq!(
            decide(None, Some(&custom), b"root", Some(0)),
            Verdict::NoList
        );
        assert_eq!(
            decide(None, Some(&custom), b"root", None),
            Verdict::NotGuarded
        );
        for (name, uid) in [("root", Some(0)), ("admin", Some(60001)), ("toor", Some(0))] {
            assert_eq!(not_joined(name, uid), Verdict::NotGuarded, "{name}");
        }
    }
}
