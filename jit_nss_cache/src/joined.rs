//! The joined marker: a small file `jitd join` and `jitd run` write beside the host key
//! (`/etc/jit/joined` by default; mode 0644, public). Its presence says that this host has joined
//! jit, and it names the always-guarded names (jitd.toml's `always_guarded`, default `root`).
//!
//! Why a separate file: pam_jit must tell "this host never joined" (every login untouched) from
//! "this host joined but its list of shared accounts is lost or unreadable" (refuse uid 0 and the
//! always-guarded names) without asking jitd, which may be the very thing that is down. The host
//! key says it too, but only root may read it, and pam_jit also runs in unprivileged programs
//! (screen lockers). The marker lives in /etc with the host key, not in /var/lib with the cache,
//! so losing the state directory does not lose it.
//!
//! Format: a first line `jit-joined 1`, then any number of `always_guarded NAME` lines; `#`
//! starts a comment. Reading never fails: a marker that exists but cannot be read or parsed still
//! means "joined", with the default names.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

/// Where jitd writes the marker, and pam_jit reads it, unless configured otherwise.
pub const DEFAULT_PATH: &str = "/etc/jit/joined";
/// The always-guarded names when nothing else is known.
pub const DEFAULT_ALWAYS_GUARDED: &[&str] = &["root"];

const HEADER: &str = "jit-joined 1";
const KEY: &str = "always_guarded";
/// Larger markers are not read (a bad file cannot make pam_jit read without bound).
const MAX_LEN: u64 = 64 * 1024;

/// What the marker says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// Refused, with uid 0, while this host has no list of shared accounts.
    pub always_guarded: Vec<String>,
}

impl Default for Joined {
    fn default() -> Self {
        Joined {
            always_guarded: DEFAULT_ALWAYS_GUARDED
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}

impl Joined {
    /// The file's text.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{HEADER}\n\
             # Written by jitd (jitd join, jitd run): this host has joined jit. Do not edit: set\n\
             # always_guarded in jitd.toml. While the host has no list of its shared accounts,\n\
             # pam_jit refuses logins to uid 0 and to these names.\n"
        );
        for name in &self.always_guarded {
            out.push_str(KEY);
            out.push(' ');
            out.push_str(name);
            out.push('\n');
        }
        out
    }

    /// Reads the marker's text. Without the first line it is not a marker jitd wrote (damaged):
    /// the defaults apply.
    pub fn parse(text: &str) -> Joined {
        let mut lines = text.lines();
        if lines.next().map(str::trim) != Some(HEADER) {
            return Joined::default();
        }
        let always_guarded = lines
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                match (words.next(), words.next(), words.next()) {
                    (Some(KEY), Some(name), None) => Some(name.to_owned()),
                    _ => None,
                }
            })
            .collect();
        Joined { always_guarded }
    }

    /// `None` if there is no marker at `path` (the host has not joined). A marker that exists
    /// but cannot be read (not a regular file, too large, unreadable, not UTF-8) still means
    /// joined, with the defaults: failing closed for root is the safe side.
    pub fn read(path: &Path) -> Option<Joined> {
        match Self::try_read(path) {
            Ok(text) => Some(Joined::parse(&text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(_) => Some(Joined::default()),
        }
    }

    fn try_read(path: &Path) -> io::Result<String> {
        // Checked before opening: opening a FIFO planted at the path would block.
        let meta = fs::metadata(path)?;
        if !meta.is_file() || meta.len() > MAX_LEN {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "not a marker"));
        }
        let mut text = String::new();
        File::open(path)?.take(MAX_LEN).read_to_string(&mut text)?;
        Ok(text)
    }

    /// Whether `name` is one of the always-guarded names.
    pub fn guards(&self, name: &[u8]) -> bool {
        self.always_guarded.iter().any(|n| n.as_bytes() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_parses_back() {
        for names in [vec![], vec!["root".to_owned(), "admin".to_owned()]] {
            let j = Joined {
                always_guarded: names,
            };
            assert_eq!(Joined::parse(&j.render()), j);
        }
    }

    #[test]
    fn a_damaged_marker_means_joined_with_the_defaults() {
        assert_eq!(Joined::parse(""), Joined::default());
        assert_eq!(
            Joined::parse("garbage\nalways_guarded x\n"),
            Joined::default()
        );
        let j = Joined::parse("jit-joined 1\nalways_guarded a b\nalways_guarded c\nnoise\n");
        assert_eq!(j.always_guarded, ["c"]);
        assert!(j.guards(b"c") && !j.guards(b"a") && !j.guards(b""));
    }

    #[test]
    fn read_tells_missing_from_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("joined");
        assert_eq!(Joined::read(&path), None);
        std::fs::write(&path, "jit-joined 1\nalways_guarded deploy\n").unwrap();
        assert_eq!(Joined::read(&path).unwrap().always_guarded, ["deploy"]);
        // A directory (or a FIFO) where the marker should be: joined, defaults.
        assert_eq!(Joined::read(dir.path()), Some(Joined::default()));
        std::fs::write(&path, vec![b'x'; MAX_LEN as usize + 1]).unwrap();
        assert_eq!(Joined::read(&path), Some(Joined::default()));
        std::fs::write(&path, b"jit-joined 1\n\xff\n").unwrap();
        assert_eq!(Joined::read(&path), Some(Joined::default()));
    }
}
