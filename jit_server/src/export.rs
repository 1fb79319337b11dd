//! `jit-server export` and `jit-server init --from`: what another server process (a replica on
//! the same database) must share with the first one. That is the TLS CA (so hosts and jitctl,
//! which pin its fingerprint, trust every replica), the server certificate and its key (so the
//! replicas answer under the same names), and the at-rest key (so each replica decrypts the TOTP
//! secrets the others stored). The database is not in the export: replicas share it.
//!
//! The export is one JSON file written with mode 0600. It holds private keys: move it as a
//! secret (scp, a secrets store), and delete it once the replica is initialized.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use jit_proto::fingerprint::Fingerprint;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::keys::{self, AtRestKey};
use crate::tls::{self, TlsPaths};

/// The `format` field of an export this version reads and writes.
pub const FORMAT: &str = "jit-server-export/1";

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source} (an export is never written over an existing file)")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is no jit-server export ({why}); make one with `jit-server export`")]
    Invalid { path: PathBuf, why: String },
    #[error("{0} is already initialized (it holds {1}); init --from needs a new data directory")]
    AlreadyInitialized(String, &'static str),
    #[error(
        "init --from starts a replica of a server whose database it shares: set database_url \
         in server.toml to that database (postgres://…, or the first server's sqlite://PATH)"
    )]
    NoSharedDatabase,
    #[error("init --from takes the server certificate from the export; leave out --san")]
    SansWithFrom,
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The file's contents. Zeroized when dropped: every field but the CA certificate is secret or
/// travels with one.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
struct Export {
    format: String,
    ca_pem: String,
    ca_key_pem: String,
    /// The server certificate chain (server certificate, then the CA), as `tls/server.pem`.
    server_pem: String,
    server_key_pem: String,
    /// The 32-byte at-rest key, base64.
    at_rest_key: String,
}

/// Writes the export of the initialized data directory `data_dir` to `out` (mode 0600; refuses
/// to overwrite). Returns the CA fingerprint, which the replica will have too.
pub fn export(data_dir: &Path, out: &Path) -> Result<Fingerprint, ExportError> {
    let paths = TlsPaths::new(data_dir);
    let fingerprint = tls::ca_fingerprint(&paths)?;
    let read = |path: PathBuf| {
        std::fs::read_to_string(&path).map_err(|source| ExportError::Read { path, source })
    };
    let key = AtRestKey::load(&data_dir.join(keys::KEY_FILE))?;
    let e = Export {
        format: FORMAT.to_owned(),
        ca_pem: read(paths.ca_cert())?,
        ca_key_pem: read(paths.ca_key())?,
        server_pem: read(paths.server_cert())?,
        server_key_pem: read(paths.server_key())?,
        at_rest_key: base64::engine::general_purpose::STANDARD.encode(key.expose()),
    };
    let mut text =
        zeroize::Zeroizing::new(serde_json::to_string_pretty(&e).expect("an export serializes"));
    text.push('\n');
    write_new(out, text.as_bytes(), 0o600).map_err(|source| ExportError::Write {
        path: out.to_owned(),
        source,
    })?;
    Ok(fingerprint)
}

/// `init --from`: a new data directory `data_dir` holding the export's CA, server certificate
/// and at-rest key. The database at `database_url` (shared with the exporting server) gets any
/// pending migrations; nothing else in it changes. Returns the CA fingerprint.
pub async fn init_from(
    data_dir: &Path,
    database_url: &str,
    from: &Path,
) -> Result<Fingerprint, ExportError> {
    let shown = data_dir.display().to_string();
    for (file, what) in [
        ("jit.db", "a database"),
        (keys::KEY_FILE, "an at-rest key"),
        ("tls", "TLS material"),
    ] {
        if data_dir.join(file).exists() {
            return Err(ExportError::AlreadyInitialized(shown, what));
        }
    }
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(from).map_err(|source| {
        ExportError::Read {
            path: from.to_owned(),
            source,
        }
    })?);
    let invalid = |why: String| ExportError::Invalid {
        path: from.to_owned(),
        why,
    };
    let e: Export = serde_json::from_str(&text).map_err(|err| invalid(err.to_string()))?;
    if e.format != FORMAT {
        return Err(invalid(format!(
            "format {:?}, this version reads {FORMAT:?}",
            e.format
        )));
    }
    let key = zeroize::Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(&e.at_rest_key)
            .map_err(|_| invalid("at_rest_key is not base64".into()))?,
    );
    let key = AtRestKey::from_bytes(&key)
        .ok_or_else(|| invalid(format!("at_rest_key has {} bytes, not 32", key.len())))?;

    let paths = TlsPaths::new(data_dir);
    let dir_err = |path: &Path| {
        let path = path.to_owned();
        move |source| ExportError::Write { path, source }
    };
    std::fs::create_dir_all(&paths.dir).map_err(dir_err(&paths.dir))?;
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
        .map_err(dir_err(data_dir))?;
    for (path, contents, mode) in [
        (paths.ca_cert(), &e.ca_pem, 0o644),
        (paths.ca_key(), &e.ca_key_pem, 0o600),
        (paths.server_cert(), &e.server_pem, 0o644),
        (paths.server_key(), &e.server_key_pem, 0o600),
    ] {
        write_new(&path, contents.as_bytes(), mode).map_err(dir_err(&path))?;
    }
    key.save(&data_dir.join(keys::KEY_FILE))?;
    // The certificate and key must make a pair the listener accepts, and the CA must be the one
    // the export names.
    tls::server_config(&paths)?;
    let fingerprint = tls::ca_fingerprint(&paths)?;

    let store = crate::store::Store::open(database_url).await?;
    store.close().await;
    Ok(fingerprint)
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_replica_gets_the_same_ca_certificate_and_key_and_the_file_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let first = tmp.path().join("first");
        let url = format!(
            "sqlite://{}?mode=rwc",
            tmp.path().join("shared.db").display()
        );
        let done = crate::init::init(&first, &url, &["jit.example.org".into()], 1_700_000_000)
            .await
            .unwrap();
        let out = tmp.path().join("export.json");
        let fp = export(&first, &out).unwrap();
        assert_eq!(fp, done.ca_fingerprint);
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Never over an existing file.
        assert!(matches!(
            export(&first, &out),
            Err(ExportError::Write { .. })
        ));

        let second = tmp.path().join("second");
        let fp2 = init_from(&second, &url, &out).await.unwrap();
        assert_eq!(fp2, fp);
        for f in [
            "at-rest.key",
            "tls/ca.pem",
            "tls/ca.key",
            "tls/server.pem",
            "tls/server.key",
        ] {
            assert_eq!(
                std::fs::read(first.join(f)).unwrap(),
                std::fs::read(second.join(f)).unwrap(),
                "{f}"
            );
        }
        for f in ["at-rest.key", "tls/ca.key", "tls/server.key"] {
            let mode = std::fs::metadata(second.join(f))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
        // A secret sealed by one decrypts on the other.
        let a = AtRestKey::load(&first.join(keys::KEY_FILE)).unwrap();
        let b = AtRestKey::load(&second.join(keys::KEY_FILE)).unwrap();
        assert_eq!(
            &*b.open(&a.seal(b"secret", "aad"), "aad").unwrap(),
            b"secret"
        );
        // A plain init on the shared database is refused before it writes a key or a CA:
        // another CA and at-rest key would split the deployment.
        let third = tmp.path().join("third");
        assert!(matches!(
            crate::init::init(&third, &url, &[], 1_700_000_000).await,
            Err(crate::init::InitError::DatabaseInUse)
        ));
        assert!(!third.join(keys::KEY_FILE).exists() && !third.join("tls").exists());
        // Not twice into the same directory.
        assert!(matches!(
            init_from(&second, &url, &out).await,
            Err(ExportError::AlreadyInitialized(..))
        ));
    }

    #[tokio::test]
    async fn a_damaged_or_foreign_file_is_refused_with_what_is_wrong() {
        let tmp = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", tmp.path().join("x.db").display());
        let bad = tmp.path().join("bad.json");
        std::fs::write(&bad, "{\"format\": \"other/9\"}").unwrap();
        let err = init_from(&tmp.path().join("d1"), &url, &bad)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no jit-server export"), "{err}");
        assert!(!tmp.path().join("d1").join("tls").exists());
    }
}
