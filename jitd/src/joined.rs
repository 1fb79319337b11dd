//! Writes the joined marker (`jit_nss_cache::joined`): at `jitd join`, and at every start so it
//! follows `always_guarded` in jitd.toml. Mode 0644: pam_jit reads it in unprivileged programs.
//!
//! An existing marker is rewritten in place rather than replaced: a service manager that keeps
//! /etc read-only can still let jitd write this one file (systemd's `ReadWritePaths=` binds it,
//! and a rename over a bound file fails). A reader that catches it half written reads the
//! defaults (root guarded), the safe side.

use std::path::{Path, PathBuf};

use jit_nss_cache::Joined;

#[derive(Debug, thiserror::Error)]
pub enum MarkerError {
    #[error(
        "cannot write the joined marker {path}: {source}; while it is missing, pam_jit treats \
         this host as not joined whenever jitd is down and no list of shared accounts can be read"
    )]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot update the joined marker {path}: {source}; pam_jit keeps the always-guarded \
         names it names now until jitd may write it (with systemd: ReadWritePaths=-{path})"
    )]
    Update {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Writes `joined` to `path` unless it already says exactly that.
pub fn write(path: &Path, joined: &Joined) -> Result<(), MarkerError> {
    use std::io::Write;
    let text = joined.render();
    match std::fs::read_to_string(path) {
        Ok(t) if t == text => Ok(()),
        Ok(_) => std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .and_then(|mut f| {
                f.write_all(text.as_bytes())?;
                f.sync_all()
            })
            .map_err(|source| MarkerError::Update {
                path: path.to_owned(),
                source,
            }),
        Err(_) => crate::files::replace(path, text.as_bytes(), 0o644).map_err(|source| {
            MarkerError::Create {
                path: path.to_owned(),
                source,
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn written_public_and_read_back_by_the_modules_reader() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("etc/jit/joined");
        let j = Joined {
            always_guarded: vec!["root".into(), "deploy".into()],
        };
        write(&path, &j).unwrap();
        assert_eq!(Joined::read(&path), Some(j.clone()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        // An update keeps the file (its inode), so a bind mount of it stays writable.
        use std::os::unix::fs::MetadataExt;
        let inode = std::fs::metadata(&path).unwrap().ino();
        write(&path, &Joined::default()).unwrap();
        assert_eq!(Joined::read(&path), Some(Joined::default()));
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode);
        let err = write(&d.path().join("no/such/dir\0"), &j)
            .unwrap_err()
            .to_string();
        assert!(err.contains("treats this host as not joined"), "{err}");
        // A file jitd may read but not write (root writes any mode, so: one of procfs).
        let err = write(Path::new("/proc/version"), &j)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot update") && err.contains("ReadWritePaths"),
            "{err}"
        );
    }
}
