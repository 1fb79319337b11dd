//! jitctl's credential file: `~/.config/jit/config.json` (directory 0700, file 0600), or the
//! directory named by `JITCTL_CONFIG`. One file holds one identity; point `JITCTL_CONFIG` at
//! different directories to use several (an admin and a person) from one machine.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use jit_proto::Secret;
use jit_proto::api::CallerKind;
use serde::{Deserialize, Serialize};

use crate::exit::{CliError, CliResult};

pub const ENV_DIR: &str = "JITCTL_CONFIG";
const FILE: &str = "config.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// `https://host:port` of the server.
    pub server: String,
    /// Every replica of the service, `server` first, in the order they are tried; empty when
    /// there is only `server`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    /// The fingerprint pinned at login or enrollment.
    pub ca_fingerprint: String,
    /// The CA certificate that matched it; the only root trusted afterwards.
    pub ca_pem: String,
    /// The admin token or the person's token.
    pub token: Secret,
    pub kind: CallerKind,
    /// `admin`, or the person's name.
    pub name: String,
}

impl Credentials {
    /// The servers to try, in order.
    pub fn servers(&self) -> Vec<String> {
        if self.servers.is_empty() {
            vec![self.server.clone()]
        } else {
            self.servers.clone()
        }
    }

    /// (`server`, `servers`) to save for the servers of `client`.
    pub fn servers_of(client: &jit_client::Client) -> (String, Vec<String>) {
        let all = client.servers().to_vec();
        let first = all.first().cloned().unwrap_or_default();
        (first, if all.len() > 1 { all } else { Vec::new() })
    }
}

/// Where the credential file lives.
pub fn dir() -> CliResult<PathBuf> {
    if let Some(d) = std::env::var_os(ENV_DIR).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(x).join("jit"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".config").join("jit")),
        None => Err(CliError::Local(format!(
            "cannot find a home directory: set {ENV_DIR}"
        ))),
    }
}

pub fn path() -> CliResult<PathBuf> {
    Ok(dir()?.join(FILE))
}

pub fn load() -> CliResult<Credentials> {
    load_from(&path()?)
}

fn load_from(path: &Path) -> CliResult<Credentials> {
    // The file holds a token: like ssh with a private key, refuse one that others can read
    // (it may already have leaked; the admin token can be replaced with `jit-server admin-token`).
    if let Ok(m) = std::fs::metadata(path)
        && m.permissions().mode() & 0o077 != 0
    {
        return Err(CliError::Local(format!(
            "{} is readable or writable by others (mode {:04o}), and it holds your token: run \
             `chmod 600 {}`, and if others may have read it, have the token replaced",
            path.display(),
            m.permissions().mode() & 0o7777,
            path.display()
        )));
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CliError::NotLoggedIn(format!(
                "not logged in ({} does not exist): admins run `jitctl login --server URL --ca-fingerprint SHA256:… --token TOKEN`, persons run `jitctl enroll CODE --server URL --ca-fingerprint SHA256:…`",
                path.display()
            )));
        }
        Err(e) => {
            return Err(CliError::Local(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    serde_json::from_str(&text).map_err(|e| {
        CliError::Local(format!(
            "{} is damaged ({e}); log in again to replace it",
            path.display()
        ))
    })
}

/// Refuses to replace another identity's credential (an admin token is shown once; a person's
/// token comes back only through an admin's `reset-factor`). The same identity again, say with a
/// new admin token, or a damaged file, may be replaced.
pub fn check_replace(kind: CallerKind, name: &str) -> CliResult<()> {
    check_replace_in(&path()?, kind, name)
}

fn check_replace_in(path: &Path, kind: CallerKind, name: &str) -> CliResult<()> {
    let Ok(old) = load_from(path) else {
        return Ok(());
    };
    if old.kind == kind && old.name == name {
        return Ok(());
    }
    let who = match old.kind {
        CallerKind::Admin => "the admin".to_owned(),
        _ => format!("person {}", old.name),
    };
    Err(CliError::Usage(format!(
        "{} already holds {who}'s credential for {}, and this would replace it: use another \
         directory for this identity (JITCTL_CONFIG=DIR jitctl …), or run `jitctl logout` first",
        path.display(),
        old.server
    )))
}

/// Writes the file atomically with mode 0600 in a 0700 directory.
pub fn save(creds: &Credentials) -> CliResult<PathBuf> {
    let dir = dir()?;
    save_in(&dir, creds)?;
    Ok(dir.join(FILE))
}

fn save_in(dir: &Path, creds: &Credentials) -> CliResult<()> {
    let local = |e: std::io::Error| CliError::Local(format!("cannot write {}: {e}", dir.display()));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(local)?;
    let meta = std::fs::metadata(dir).map_err(local)?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(local)?;
    }
    let tmp = dir.join(format!(".{FILE}.{}", std::process::id()));
    let body = zeroize::Zeroizing::new(
        serde_json::to_vec_pretty(creds).map_err(|e| CliError::Local(e.to_string()))?,
    );
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(local)?;
        f.write_all(&body)
            .and_then(|_| f.sync_all())
            .map_err(local)?;
    }
    std::fs::rename(&tmp, dir.join(FILE)).map_err(local)?;
    Ok(())
}

pub fn remove() -> CliResult<bool> {
    let path = path()?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(CliError::Local(format!(
            "cannot remove {}: {e}",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_file_is_private() {
        let base = std::env::temp_dir().join(format!("jitctl-cfg-{}", std::process::id()));
        let dir = base.join("jit");
        let creds = Credentials {
            server: "https://127.0.0.1:8443".into(),
            servers: Vec::new(),
            ca_fingerprint: "SHA256:00".into(),
            ca_pem: "pem".into(),
            token: Secret::new("jitp_x"),
            kind: CallerKind::Person,
            name: "alice".into(),
        };
        save_in(&dir, &creds).unwrap();
        let file = dir.join(FILE);
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let back = load_from(&file).unwrap();
        assert_eq!(back.name, "alice");
        // alice again may replace it; anyone else may not.
        check_replace_in(&file, CallerKind::Person, "alice").unwrap();
        let err = check_replace_in(&file, CallerKind::Admin, "admin")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("person alice's credential") && err.contains("JITCTL_CONFIG"),
            "{err}"
        );
        assert!(check_replace_in(&file, CallerKind::Person, "bob").is_err());
        // Readable by others: refused, with what to do.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_from(&file).unwrap_err().to_string();
        assert!(
            err.contains("mode 0644") && err.contains("chmod 600"),
            "{err}"
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
