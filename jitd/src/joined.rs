//! Writes the joined marker (`jit_nss_cache::joined`): at `jitd join`, and at every start so it
//! follows `always_guarded` in jitd.toml. Mode 0644: pam_jit reads it in unprivileged programs.

use std::path::{Path, PathBuf};

use jit_nss_cache::Joined;

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot write the joined marker {path}: {source}; while it is missing, pam_jit treats this \
     host as not joined whenever jitd is down and no list of shared accounts can be read"
)]
pub struct MarkerError {
    path: PathBuf,
    source: std::io::Error,
}

/// Writes `joined` to `path` unless it already says exactly that.
pub fn write(path: &Path, joined: &Joined) -> Result<(), MarkerError> {
    let text = joined.render();
    if std::fs::read_to_string(path).is_ok_and(|t| t == text) {
        return Ok(());
    }
    crate::files::replace(path, text.as_bytes(), 0o644).map_err(|source| MarkerError {
        path: path.to_owned(),
        source,
    })
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
        write(&path, &Joined::default()).unwrap();
        assert_eq!(Joined::read(&path), Some(Joined::default()));
        let err = write(d.path(), &j).unwrap_err().to_string();
        assert!(err.contains("treats this host as not joined"), "{err}");
    }
}
