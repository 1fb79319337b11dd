//! What the module knows when jitd cannot be asked: the NSS cache file jitd publishes.
//!
//! The cache lists every shared account of this host. It is read only when jitd is unreachable,
//! timed out, broke the protocol, or the module is misconfigured; it never grants anything, it
//! only tells a shared account (refuse) from everyone else (stay out of the way).
//!
//! Candidates are tried in order (by default the fresh copy in /run, then the copy in /var/lib
//! that survives a reboot). The first copy that can be read decides. A copy that is missing or
//! unreadable passes the question to the next one, because a corrupt /run copy says nothing
//! about the name, while the older /var/lib copy still knows every long-standing shared account.

use std::io;
use std::path::{Path, PathBuf};

use jit_nss_cache::{self as nss_cache, CacheError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The name is a shared account: refuse. The string says how we know (which cache file, or
    /// the ticket this PAM transaction holds), for the system log.
    Shared(String),
    /// A readable cache does not list the name: not ours, PAM_IGNORE.
    NotShared(String),
    /// No cache file exists at all: the host has not joined jit (or jitd never ran), so no name
    /// is shared: PAM_IGNORE.
    NotJoined,
    /// Some cache file exists but none can be read: we cannot tell. See [`crate::relay`] for
    /// what each stage does about it. The strings say what went wrong, for the system log.
    Unknown(Vec<String>),
}

/// Looks `name` up in the first readable cache among `paths`.
pub fn lookup(paths: &[PathBuf], name: &[u8]) -> Verdict {
    let mut problems = Vec::new();
    for path in paths {
        match nss_cache::is_shared_in_file(path, name) {
            Ok(true) => return Verdict::Shared(path.display().to_string()),
            Ok(false) => return Verdict::NotShared(path.display().to_string()),
            Err(CacheError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => problems.push(describe(path, &e)),
        }
    }
    if problems.is_empty() {
        Verdict::NotJoined
    } else {
        Verdict::Unknown(problems)
    }
}

fn describe(path: &Path, e: &CacheError) -> String {
    format!("{}: {e}", path.display())
}

#[cfg(test)]
mod tests {
    //! These tests build real cache files with `nss_cache::publish`, so they need the real
    //! nss_cache implementation (not the stub) to pass.
    use super::*;
    use jit_nss_cache::CacheContents;

    fn temp_dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("pam_jit-fallback-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn s(p: &Path) -> String {
        p.display().to_string()
    }

    fn publish(path: &Path, shared: &[&str]) {
        let contents = CacheContents {
            generation: 1,
            shared: shared.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        nss_cache::publish(path, &contents).unwrap();
    }

    #[test]
    fn no_file_means_not_joined() {
        let d = temp_dir("none");
        assert_eq!(
            lookup(&[d.join("a"), d.join("b")], b"admin"),
            Verdict::NotJoined
        );
        assert_eq!(lookup(&[], b"admin"), Verdict::NotJoined);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn first_readable_copy_decides() {
        let d = temp_dir("first");
        let (run, state) = (d.join("run"), d.join("state"));
        publish(&state, &["admin", "root"]);
        // Only the state copy exists: it decides.
        assert_eq!(
            lookup(&[run.clone(), state.clone()], b"admin"),
            Verdict::Shared(s(&state))
        );
        assert_eq!(
            lookup(&[run.clone(), state.clone()], b"alice"),
            Verdict::NotShared(s(&state))
        );
        // The fresher run copy exists and no longer lists admin: it wins over the older copy.
        publish(&run, &["root"]);
        assert_eq!(
            lookup(&[run.clone(), state.clone()], b"admin"),
            Verdict::NotShared(s(&run))
        );
        assert_eq!(
            lookup(&[run.clone(), state.clone()], b"root"),
            Verdict::Shared(s(&run))
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn corrupt_copy_passes_to_the_next_and_alone_is_unknown() {
        let d = temp_dir("corrupt");
        let (run, state) = (d.join("run"), d.join("state"));
        std::fs::write(&run, b"this is not a cache file").unwrap();
        match lookup(std::slice::from_ref(&run), b"admin") {
            Verdict::Unknown(p) => assert!(p[0].contains("run"), "{p:?}"),
            other => panic!("corrupt cache must be Unknown, got {other:?}"),
        }
        publish(&state, &["admin"]);
        assert_eq!(
            lookup(&[run.clone(), state.clone()], b"admin"),
            Verdict::Shared(s(&state))
        );
        assert_eq!(
            lookup(&[run.clone(), state.clone()], b"alice"),
            Verdict::NotShared(s(&state))
        );
        std::fs::remove_dir_all(d).unwrap();
    }
}
