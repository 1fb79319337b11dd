//! What the module knows when jitd cannot be asked: the host's list of guarded names (the NSS
//! cache file jitd publishes) and the joined marker, read with the same rule jitd and nss_jit
//! use (`jit_nss_cache::decide`). It never grants anything; it only tells a guarded login
//! (refuse) from everyone else (stay out of the way).
//!
//! Candidates are tried in order (by default the fresh copy in /run, then the copy in /var/lib
//! that survives a reboot). The first copy that can be read decides. A copy that is missing or
//! unreadable passes the question to the next one, because a corrupt /run copy says nothing
//! about the name, while the older /var/lib copy still knows every long-standing shared account.
//!
//! When no copy can be read, the joined marker decides: a host that has joined (the marker
//! exists, or some cache file does, even a damaged one) refuses uid 0 and its always-guarded
//! names and leaves everyone else alone; a host that never joined leaves everyone alone.

use std::io;
use std::path::{Path, PathBuf};

use jit_nss_cache::{CacheError, CacheView, Joined, Verdict as Rule};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// jit guards this login: refuse. The string says how we know (which cache file, or the
    /// ticket this PAM transaction holds), for the system log.
    Guarded(String),
    /// The host has joined but no list can be read, and this is uid 0 or an always-guarded
    /// name: refuse. The strings say what is wrong with each copy, for the system log.
    NoList(Vec<String>),
    /// Not jit's: `PAM_IGNORE`. The string says how we know, for the system log.
    NotGuarded(String),
    /// The host has not joined jit (no marker, no cache file): `PAM_IGNORE`, quietly.
    NotJoined,
}

/// Decides for a login to `name` (uid `uid` if it resolves) from the first readable cache among
/// `paths`, else from the joined marker at `marker`.
pub fn lookup(paths: &[PathBuf], marker: &Path, name: &[u8], uid: Option<u32>) -> Verdict {
    let mut problems = Vec::new();
    for path in paths {
        let bytes = match jit_nss_cache::read_file(path) {
            Ok(b) => b,
            Err(CacheError::Io(e)) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                problems.push(describe(path, &e));
                continue;
            }
        };
        match CacheView::parse(&bytes) {
            Ok(view) => {
                let source = path.display().to_string();
                return match jit_nss_cache::decide(Some(&view), None, name, uid) {
                    Rule::Guarded(g) if g.name == name => Verdict::Guarded(source),
                    Rule::Guarded(g) => Verdict::Guarded(format!(
                        "{source} (uid {} is {}'s)",
                        g.uid.unwrap_or_default(),
                        String::from_utf8_lossy(g.account)
                    )),
                    Rule::NoList | Rule::NotGuarded => Verdict::NotGuarded(source),
                };
            }
            Err(e) => problems.push(describe(path, &e)),
        }
    }
    // A cache file exists (damaged) but no marker: jitd ran here, so the host has joined.
    let joined = Joined::read(marker).or_else(|| (!problems.is_empty()).then(Joined::default));
    let Some(joined) = joined else {
        return Verdict::NotJoined;
    };
    let basis = if problems.is_empty() {
        vec!["no cache file exists".to_owned()]
    } else {
        problems
    };
    match jit_nss_cache::decide(None, Some(&joined), name, uid) {
        Rule::NoList => Verdict::NoList(basis),
        Rule::Guarded(_) | Rule::NotGuarded => Verdict::NotGuarded(format!(
            "no list can be read ({}), and it is neither uid 0 nor always guarded",
            basis.join("; ")
        )),
    }
}

fn describe(path: &Path, e: &CacheError) -> String {
    format!("{}: {e}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jit_nss_cache::{CacheContents, CacheGuarded};

    fn s(p: &Path) -> String {
        p.display().to_string()
    }

    fn publish(path: &Path, guarded: &[(&str, u32)]) {
        let contents = CacheContents {
            generation: 1,
            guarded: guarded
                .iter()
                .map(|(n, u)| CacheGuarded::account(n, Some(*u)))
                .collect(),
            ..Default::default()
        };
        jit_nss_cache::publish(path, &contents).unwrap();
    }

    #[test]
    fn no_file_and_no_marker_means_not_joined() {
        let d = tempfile::tempdir().unwrap();
        let marker = d.path().join("joined");
        assert_eq!(
            lookup(
                &[d.path().join("a"), d.path().join("b")],
                &marker,
                b"root",
                Some(0)
            ),
            Verdict::NotJoined
        );
        assert_eq!(lookup(&[], &marker, b"admin", None), Verdict::NotJoined);
    }

    #[test]
    fn first_readable_copy_decides_by_name_and_by_uid() {
        let d = tempfile::tempdir().unwrap();
        let (run, state, marker) = (
            d.path().join("run"),
            d.path().join("state"),
            d.path().join("m"),
        );
        let both = [run.clone(), state.clone()];
        publish(&state, &[("admin", 60001), ("root", 0)]);
        // Only the state copy exists: it decides.
        assert_eq!(
            lookup(&both, &marker, b"admin", None),
            Verdict::Guarded(s(&state))
        );
        assert_eq!(
            lookup(&both, &marker, b"alice", Some(1000)),
            Verdict::NotGuarded(s(&state))
        );
        match lookup(&both, &marker, b"toor", Some(0)) {
            Verdict::Guarded(why) => assert!(why.contains("uid 0 is root's"), "{why}"),
            other => panic!("toor: {other:?}"),
        }
        // The fresher run copy exists and no longer lists admin: it wins over the older copy.
        publish(&run, &[("root", 0)]);
        assert_eq!(
            lookup(&both, &marker, b"admin", Some(60001)),
            Verdict::NotGuarded(s(&run))
        );
        assert_eq!(
            lookup(&both, &marker, b"root", Some(0)),
            Verdict::Guarded(s(&run))
        );
    }

    #[test]
    fn without_a_readable_list_a_joined_host_refuses_uid_0_and_always_guarded_names() {
        let d = tempfile::tempdir().unwrap();
        let (run, state, marker) = (
            d.path().join("run"),
            d.path().join("state"),
            d.path().join("m"),
        );
        let both = [run.clone(), state.clone()];
        std::fs::write(
            &marker,
            Joined {
                always_guarded: vec!["deploy".into()],
            }
            .render(),
        )
        .unwrap();
        // Lost: no copy at all.
        assert!(matches!(
            lookup(&both, &marker, b"toor", Some(0)),
            Verdict::NoList(_)
        ));
        assert!(matches!(
            lookup(&both, &marker, b"deploy", None),
            Verdict::NoList(_)
        ));
        assert!(matches!(
            lookup(&both, &marker, b"root", None),
            Verdict::NotGuarded(_)
        ));
        assert!(matches!(
            lookup(&both, &marker, b"alice", Some(1000)),
            Verdict::NotGuarded(_)
        ));
        // Damaged: the problem is named.
        std::fs::write(&run, b"this is not a cache file").unwrap();
        match lookup(&both, &marker, b"root", Some(0)) {
            Verdict::NoList(p) => {
                assert!(p[0].contains("run") && p[0].contains("corrupt"), "{p:?}")
            }
            other => panic!("{other:?}"),
        }
        // A damaged cache with no marker still means joined, with the default names.
        std::fs::remove_file(&marker).unwrap();
        assert!(matches!(
            lookup(&both, &marker, b"root", None),
            Verdict::NoList(_)
        ));
        assert!(matches!(
            lookup(&both, &marker, b"deploy", None),
            Verdict::NotGuarded(_)
        ));
        // A good copy behind the damaged one decides again.
        publish(&state, &[("admin", 60001)]);
        assert_eq!(
            lookup(&both, &marker, b"admin", None),
            Verdict::Guarded(s(&state))
        );
        assert_eq!(
            lookup(&both, &marker, b"root", Some(0)),
            Verdict::NotGuarded(s(&state))
        );
    }
}
