//! `jitd run`: wires the parts together on a tokio runtime.
//!
//! Order at startup: read the host key and CA (fail fast with what to do), open the audit queue,
//! restore the NSS cache from the persisted copy if /run is empty (after a reboot), try one
//! refresh (accounts and offline grants) from the server (bounded by `server_timeout`; a server
//! that is down does not stop jitd), listen on the PAM socket, start following the open
//! sessions (those saved before a restart too) and watching the server for changes, then tell
//! systemd READY=1. SIGTERM or SIGINT: STOPPING=1, stop accepting, remove the socket.

use std::path::PathBuf;
use std::sync::Arc;

use jit_client::ClientError;

use crate::audit_queue::{AuditQueue, QueueError};
use crate::config::Config;
use crate::driver::{Core, Settings};
use crate::guarded::GuardList;
use crate::host_key::{HostKey, HostKeyError};
use crate::nss_publish::{self, Publisher};
use crate::offline::{self, OfflineStore};
use crate::pam_socket::{self, Limits, SocketError};
use crate::record::Recorder;
use crate::session_control::{Control, HostHands};
use crate::sessions::Sessions;
use crate::tickets::Tickets;
use crate::upstream::Upstream;
use crate::watch::{self, Wakes};
use crate::{files, joined, notify, ssh_keys};
use tokio::sync::Notify;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    HostKey(#[from] HostKeyError),
    #[error("cannot read the server's CA certificate {path}: {source}")]
    Ca {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot set up the connection to the server: {0}")]
    Client(#[from] ClientError),
    #[error("cannot create the state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Queue(#[from] QueueError),
    #[error("{0}")]
    Socket(#[from] SocketError),
    #[error("cannot listen for signals: {0}")]
    Signals(std::io::Error),
}

pub async fn run(config: Config) -> Result<(), RunError> {
    // Before anything is written: a second jitd must not disturb a running one's files.
    pam_socket::ensure_not_in_use(&config.socket)?;
    let key = HostKey::load(&config.host_key)?;
    let ca = std::fs::read_to_string(&config.ca).map_err(|source| RunError::Ca {
        path: config.ca.clone(),
        source,
    })?;
    let server = Arc::new(Upstream::new(
        &key,
        &config.servers,
        ca,
        config.server_timeout.0,
    )?);
    files::ensure_dir(&config.state_dir, 0o755).map_err(|source| RunError::StateDir {
        path: config.state_dir.clone(),
        source,
    })?;
    let queue = Arc::new(AuditQueue::open(&config.audit_queue())?);
    if !queue.is_empty() {
        tracing::info!(
            count = queue.len(),
            "audit events from before the restart are queued for delivery"
        );
    }

    // Before anything can be refused for want of a list: pam_jit learns from it that this host
    // has joined, and its always-guarded names, even if jitd dies a moment later.
    let joined = config.joined();
    if let Err(e) = joined::write(&config.joined_marker, &joined) {
        tracing::error!("{e}");
    }
    let list = Arc::new(GuardList::new(joined));
    let mut publisher =
        Publisher::open(&config.nss_cache, &config.state_cache(), config.guarded_gid);
    if let Err(e) = publisher.restore() {
        tracing::error!("cannot restore the NSS cache from the persisted copy: {e}");
    }
    publisher.share(&list);
    match nss_publish::refresh_once(&*server, &mut publisher, &list).await {
        Ok(_) => {}
        Err(e) => tracing::warn!(
            "cannot fetch the shared accounts at startup ({e}); serving what the persisted cache \
             knows ({} guarded names) and retrying every {}s",
            list.len(),
            config.refresh_interval.0.as_secs()
        ),
    }
    if !list.is_known() {
        tracing::warn!(
            "no list of shared accounts yet: logins to uid 0 and to {:?} are refused until the \
             server answers; every other name is left alone",
            list.joined().always_guarded
        );
    }

    if let Err(e) = ssh_keys::refresh_once(&*server, &config.ssh_keys()).await {
        tracing::warn!("cannot fetch the ssh keys at startup (keeping the saved ones): {e}");
    }

    let offline = Arc::new(OfflineStore::open(&config.state_dir));
    if let Err(e) = offline::refresh_once(&*server, &offline).await {
        tracing::debug!("cannot fetch the offline grants at startup (keeping the saved ones): {e}");
    }

    let (listener, socket_file) = pam_socket::bind(&config.socket)?;
    let settings = Settings {
        host: key.host.to_string(),
        prompt: config.prompt.clone(),
        deny_as_prompt: config.services.deny_as_prompt.clone(),
        push: crate::driver::PushSettings {
            wait_secs: i64::try_from(config.push_wait.0.as_secs()).unwrap_or(60),
            // Each wait call must come back within server_timeout.
            slice_secs: u32::try_from(config.server_timeout.0.as_secs().saturating_sub(1).min(2))
                .unwrap_or(0),
            qr: config.push_qr,
            ..Default::default()
        },
    };
    let sessions = Arc::new(Sessions::open(&config.sessions()));
    if !sessions.is_empty() {
        tracing::info!(
            count = sessions.all().len(),
            "sessions opened before the restart are followed again"
        );
    }
    let core = Arc::new(
        Core::new(
            server.clone(),
            Recorder {
                queue: queue.clone(),
            },
            settings,
            list.clone(),
        )
        .with_offline(offline.clone())
        .with_tickets(Tickets::open(&config.tickets()))
        .with_sessions(sessions.clone()),
    );
    let wakes = Wakes {
        nss: Arc::new(Notify::new()),
        offline: Arc::new(Notify::new()),
        keys: Arc::new(Notify::new()),
        sessions: sessions.clone(),
    };
    tokio::spawn(
        Control::new(
            server.clone(),
            sessions,
            Recorder {
                queue: queue.clone(),
            },
            Arc::new(HostHands),
            key.host.to_string(),
            config.refresh_interval.0,
        )
        .run(),
    );
    tokio::spawn(offline::run(
        server.clone(),
        offline,
        config.refresh_interval.0,
        wakes.offline.clone(),
    ));
    tokio::spawn(ssh_keys::run(
        server.clone(),
        config.ssh_keys(),
        config.refresh_interval.0,
        wakes.keys.clone(),
    ));
    tokio::spawn(nss_publish::run(
        server.clone(),
        publisher,
        list,
        config.refresh_interval.0,
        wakes.nss.clone(),
    ));
    tokio::spawn(watch::run(server.clone(), wakes));
    {
        let server = server.clone();
        tokio::spawn(async move { queue.run(&*server).await });
    }
    let limits = Limits {
        request: config.request_timeout.0,
        answer: config.answer_timeout.0,
        max_connections: config.max_connections,
        per_source: config.max_prompts_per_source,
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(RunError::Signals)?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(RunError::Signals)?;
    tracing::info!(
        host = %key.host,
        servers = %server.servers().join(", "),
        socket = %config.socket.display(),
        nss_cache = %config.nss_cache.display(),
        "jitd is ready"
    );
    notify::notify("READY=1");
    let shutdown = async {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        notify::notify("STOPPING=1");
        tracing::info!("stopping");
    };
    pam_socket::serve(listener, core, limits, shutdown).await;
    socket_file.remove();
    Ok(())
}
