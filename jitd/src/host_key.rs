//! The host key file that `jitd join` writes and `jitd run` reads: the server URL, this host's
//! name and its long-lived credential (the server keeps only a hash). Mode 0600, root only.
//!
//! Never logs or prints the credential.

use std::path::{Path, PathBuf};

use jit_proto::{HostName, Secret};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostKey {
    /// `https://host:port` of the server.
    pub server: String,
    pub host: HostName,
    pub credential: Secret,
}

#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    /// The command that joins comes from the caller, which knows the `--config` in use
    /// (`jitd::hints::join`).
    #[error("{path} does not exist: this host has not joined jit yet")]
    Missing { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is damaged ({why}); join again with a new token (`jitctl host rejoin HOST`)")]
    Damaged { path: PathBuf, why: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl HostKey {
    pub fn load(path: &Path) -> Result<Self, HostKeyError> {
        let bytes = std::fs::read(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                HostKeyError::Missing {
                    path: path.to_owned(),
                }
            } else {
                HostKeyError::Read {
                    path: path.to_owned(),
                    source,
                }
            }
        })?;
        let bytes = zeroize::Zeroizing::new(bytes);
        serde_json::from_slice(&bytes).map_err(|e| HostKeyError::Damaged {
            path: path.to_owned(),
            why: e.to_string(),
        })
    }

    /// Writes the file (0600), atomically.
    pub fn save(&self, path: &Path) -> Result<(), HostKeyError> {
        let write = |source| HostKeyError::Write {
            path: path.to_owned(),
            source,
        };
        let json = zeroize::Zeroizing::new(
            serde_json::to_vec_pretty(self)
                .map_err(|e| write(std::io::Error::other(e.to_string())))?,
        );
        crate::files::replace(path, &json, 0o600).map_err(write)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn round_trip_private_and_clear_errors() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("host.key");
        let err = HostKey::load(&p).unwrap_err().to_string();
        assert!(err.contains("has not joined"), "{err}");
        let k = HostKey {
            server: "https://127.0.0.1:8443".into(),
            host: HostName::new("web01").unwrap(),
            credential: Secret::new("jith_secret"),
        };
        k.save(&p).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(HostKey::load(&p).unwrap(), k);
        std::fs::write(&p, b"{").unwrap();
        let err = HostKey::load(&p).unwrap_err().to_string();
        assert!(err.contains("damaged") && err.contains("rejoin"), "{err}");
        assert!(!format!("{k:?}").contains("jith_secret"));
    }
}
