//! `jit-server init`: a new data directory with an empty database, the TLS CA and server
//! certificate, the at-rest key and a one-time bootstrap token for the first admin.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use jit_proto::Secret;
use jit_proto::fingerprint::Fingerprint;

use crate::keys::{self, AtRestKey, TokenKind};
use crate::store::{Store, persons};
use crate::tls::{self, TlsPaths};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(
        "{0} is already initialized (it holds {1}); to start over, move it away first. To get a new bootstrap token (it creates or restores a named admin), run `jit-server admin-token --data {0}`"
    )]
    AlreadyInitialized(String, &'static str),
    #[error("cannot create {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(
        "the database already holds a jit server's data; to start another server process on \
         it, run `jit-server export` on the first one and `jit-server init --from EXPORT` here"
    )]
    DatabaseInUse,
}

pub struct Initialized {
    pub admin_token: Secret,
    pub ca_fingerprint: Fingerprint,
}

/// The names the server certificate is valid for: loopback, this machine's name, and `extra`.
pub fn certificate_names(extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = extra.to_vec();
    if let Some(h) = hostname() {
        names.push(h);
    }
    names.extend([
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ]);
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it or fails.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0)?;
    let name = std::str::from_utf8(&buf[..end]).ok()?.to_ascii_lowercase();
    (!name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
    .then_some(name)
}

pub async fn init(
    data_dir: &Path,
    database_url: &str,
    extra_names: &[String],
    now: i64,
) -> Result<Initialized, InitError> {
    let shown = data_dir.display().to_string();
    for (file, what) in [
        ("jit.db", "a database"),
        (keys::KEY_FILE, "an at-rest key"),
        ("tls", "TLS material"),
    ] {
        if data_dir.join(file).exists() {
            return Err(InitError::AlreadyInitialized(shown, what));
        }
    }
    std::fs::create_dir_all(data_dir)
        .and_then(|_| std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700)))
        .map_err(|source| InitError::Dir {
            path: data_dir.to_owned(),
            source,
        })?;

    // A shared database (PostgreSQL) that another server initialized is refused before any
    // file is written: a second CA and at-rest key would split the deployment in two.
    let store = Store::open(database_url).await?;
    let in_use = {
        let mut conn = store
            .pool()
            .acquire()
            .await
            .map_err(crate::store::StoreError::from)?;
        persons::any_admin_token(&mut conn).await?
    };
    if in_use {
        store.close().await;
        return Err(InitError::DatabaseInUse);
    }

    let key = AtRestKey::generate();
    key.save(&data_dir.join(keys::KEY_FILE))?;
    let ca_fingerprint = tls::create(
        &TlsPaths::new(data_dir),
        &certificate_names(extra_names),
        now,
    )?;

    let admin_token = mint_admin_token(&store, now, false).await?;
    store.close().await;
    Ok(Initialized {
        admin_token,
        ca_fingerprint,
    })
}

/// A new one-time bootstrap token. Earlier unused ones keep working unless `revoke_others` is
/// set.
pub async fn mint_admin_token(
    store: &Store,
    now: i64,
    revoke_others: bool,
) -> Result<Secret, crate::store::StoreError> {
    let token = keys::new_token(TokenKind::Admin);
    let mut tx = store.write().await?;
    if revoke_others {
        persons::revoke_admin_tokens(&mut tx, now).await?;
    }
    persons::insert_admin_token(&mut tx, &keys::token_hash(token.expose()), now).await?;
    tx.commit().await?;
    Ok(token)
}
