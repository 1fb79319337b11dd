//! The host's own account files, as far as jit needs them: which uid each name of `/etc/passwd`
//! has (to find the uid of a shared account that lives there, such as root, and every other name
//! with a shared account's uid, such as toor), and which names and gids `/etc/group` uses (so
//! that jitd can warn when `jit-guarded` clashes with a local group).
//!
//! Read from the files themselves, not through NSS: these are the names the host itself defines,
//! and a lookup through NSS would also return what jit publishes. Reading never fails: a missing
//! or unreadable file is empty (with a warning), a malformed line is skipped.

use std::path::Path;

/// Where the host keeps its users and groups.
pub const PASSWD: &str = "/etc/passwd";
pub const GROUP: &str = "/etc/group";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFiles {
    /// `(name, uid)` of every line of /etc/passwd, in file order.
    pub users: Vec<(String, u32)>,
    /// `(name, gid)` of every line of /etc/group, in file order.
    pub groups: Vec<(String, u32)>,
}

impl HostFiles {
    /// Reads [`PASSWD`] and [`GROUP`].
    pub fn read() -> HostFiles {
        Self::read_from(Path::new(PASSWD), Path::new(GROUP))
    }

    pub fn read_from(passwd: &Path, group: &Path) -> HostFiles {
        HostFiles {
            users: entries(passwd),
            groups: entries(group),
        }
    }

    /// The uid of `name` in /etc/passwd (the first line for it, as glibc's `files` answers).
    pub fn uid_of(&self, name: &str) -> Option<u32> {
        self.users.iter().find(|(n, _)| n == name).map(|(_, u)| *u)
    }
}

/// `(name, id)` from the first and third fields of each `name:x:id:…` line.
fn entries(path: &Path) -> Vec<(String, u32)> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            tracing::warn!(path = %path.display(), "cannot read the host's accounts: {e}");
            return Vec::new();
        }
    };
    parse(&text)
}

fn parse(text: &str) -> Vec<(String, u32)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('+') && !l.starts_with('-'))
        .filter_map(|l| {
            let mut fields = l.split(':');
            let name = fields.next().filter(|n| !n.is_empty())?;
            let id = fields.nth(1)?.parse().ok()?;
            Some((name.to_owned(), id))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_from_well_formed_lines_only() {
        let text = "root:x:0:0:root:/root:/bin/bash\n\
                    toor:x:0:0::/root:/bin/sh\n\
                    # comment\n\
                    +nisuser\n\
                    broken line\n\
                    bad:x:notanumber:1::/:/bin/sh\n\
                    :x:5:5::/:/bin/sh\n\
                    alice:x:1000:1000:Alice:/home/alice:/bin/bash\n\
                    root:x:7:7:second root:/:/bin/sh\n";
        let files = HostFiles {
            users: parse(text),
            groups: parse("root:x:0:\nadm:x:4:alice\n"),
        };
        assert_eq!(
            files.users,
            [
                ("root".to_owned(), 0),
                ("toor".to_owned(), 0),
                ("alice".to_owned(), 1000),
                ("root".to_owned(), 7),
            ]
        );
        assert_eq!(files.uid_of("root"), Some(0), "the first line wins");
        assert_eq!(files.uid_of("nobody"), None);
        assert_eq!(files.groups[1], ("adm".to_owned(), 4));
    }

    #[test]
    fn a_missing_file_is_empty() {
        let d = tempfile::tempdir().unwrap();
        let f = HostFiles::read_from(&d.path().join("passwd"), &d.path().join("group"));
        assert_eq!(f, HostFiles::default());
    }
}
