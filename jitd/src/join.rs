//! `jitd join --token TOKEN`: joins this host to the jit server.
//!
//! The token carries the server URL, the CA fingerprint, the host name and a one-time secret.
//! jitd connects trusting only a CA with that fingerprint (never the system's CA store), posts the
//! secret, and stores the host credential (0600) and the captured CA certificate, so that every
//! later connection trusts exactly that CA. It writes the joined marker, so that a lost list never
//! waves root through. Then it fetches this host's shared accounts once and publishes the NSS
//! cache, so the list is known from the first start of `jitd run`, even if the server is
//! unreachable then.
//!
//! Never prints or logs the token's secret or the credential.

use std::path::PathBuf;
use std::time::Duration;

use jit_client::{Client, ClientError, Trust};
use jit_proto::api::JoinRequest;
use jit_proto::fingerprint::{Fingerprint, FingerprintError};
use jit_proto::join_token::{JoinToken, JoinTokenError};

use crate::config::Config;
use crate::host_key::{HostKey, HostKeyError};
use crate::nss_publish::{self, Publisher};
use crate::upstream::Upstream;

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("{0}")]
    Token(#[from] JoinTokenError),
    #[error(
        "the join token holds a bad CA fingerprint: {0}; copy the token again from `jitctl host add`"
    )]
    Fingerprint(#[from] FingerprintError),
    #[error(
        "this host already joined as {host} ({server}); its key is {path}. To join again (after \
         `jitctl host rejoin {host}`), pass --force"
    )]
    AlreadyJoined {
        path: PathBuf,
        host: String,
        server: String,
    },
    #[error("cannot join {host}: {source}")]
    Server { host: String, source: ClientError },
    #[error("the server did not present the pinned CA certificate; nothing was stored")]
    NoCa,
    #[error("{0}")]
    HostKey(#[from] HostKeyError),
    #[error("{0}")]
    Marker(crate::joined::MarkerError),
    #[error("cannot write the server's CA certificate to {path}: {source}")]
    WriteCa {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What a successful join did.
#[derive(Debug)]
pub struct Joined {
    pub host: String,
    pub server: String,
    /// Shared accounts published to the NSS cache, or why that failed (the daemon retries).
    pub accounts: Result<usize, String>,
}

pub async fn join(
    config: &Config,
    token: &str,
    force: bool,
    timeout: Duration,
) -> Result<Joined, JoinError> {
    let token = JoinToken::decode(token)?;
    let pin = Fingerprint::parse(&token.ca_fingerprint)?;
    if !force && let Ok(old) = HostKey::load(&config.host_key) {
        return Err(JoinError::AlreadyJoined {
            path: config.host_key.clone(),
            host: old.host.to_string(),
            server: old.server,
        });
    }
    let host = token.host.to_string();
    let server_err = |source| JoinError::Server {
        host: host.clone(),
        source,
    };
    let client =
        Client::new(&token.server, Trust::Fingerprint(pin), None, timeout).map_err(server_err)?;
    let joined = client
        .join(&JoinRequest {
            host: token.host.clone(),
            secret: token.secret.clone(),
        })
        .await
        .map_err(server_err)?;
    let ca = client.captured_ca_pem().ok_or(JoinError::NoCa)?;
    crate::files::replace(&config.ca, ca.as_bytes(), 0o644).map_err(|source| {
        JoinError::WriteCa {
            path: config.ca.clone(),
            source,
        }
    })?;
    let key = HostKey {
        server: client.server().to_owned(),
        host: joined.host,
        credential: joined.credential,
    };
    key.save(&config.host_key)?;
    // From here on a lost or unreadable list refuses root instead of waving it through.
    crate::joined::write(&config.joined_marker, &config.joined()).map_err(JoinError::Marker)?;

    let accounts = publish_once(config, &key, ca, timeout).await;
    Ok(Joined {
        host: key.host.to_string(),
        server: key.server,
        accounts,
    })
}

async fn publish_once(
    config: &Config,
    key: &HostKey,
    ca: String,
    timeout: Duration,
) -> Result<usize, String> {
    let server = Upstream::new(key, &config.servers, ca, timeout).map_err(|e| e.to_string())?;
    let mut publisher =
        Publisher::open(&config.nss_cache, &config.state_cache(), config.guarded_gid);
    let list = crate::guarded::GuardList::new(config.joined());
    nss_publish::refresh_once(&server, &mut publisher, &list).await?;
    Ok(list.len())
}
