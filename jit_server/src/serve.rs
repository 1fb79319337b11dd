//! The HTTPS listener: TLS (rustls) in front of the axum router, with a handshake timeout, a
//! header-read timeout, a cap on concurrent connections, the expiry sweeper, and a clean stop on
//! SIGTERM/SIGINT.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::api::{self, AppState};
use crate::config::Settings;
use crate::keys::{self, AtRestKey};
use crate::store::Store;
use crate::tls::{self, TlsPaths};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CONNECTIONS: usize = 1024;
/// How often ran-out reservations are marked expired (and audited).
const SWEEP_EVERY: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

pub async fn run(settings: Settings) -> Result<(), ServeError> {
    let paths = TlsPaths::new(&settings.data_dir);
    let tls_config = tls::server_config(&paths)?;
    let ca_fingerprint = tls::ca_fingerprint(&paths)?;
    let key = AtRestKey::load(&settings.data_dir.join(keys::KEY_FILE))?;
    let store = Store::open(&settings.database_url()).await?;
    let listen = settings.listen;
    let state = Arc::new(AppState {
        store: store.clone(),
        key,
        settings,
        ca_fingerprint,
    });
    let app = api::router(state.clone());

    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: listen,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: listen,
        source,
    })?;
    tracing::info!(%local, ca = %ca_fingerprint, "jit-server listening");
    // One line on stdout once the port is open, for scripts and tests that wait for readiness.
    println!("listening on https://{local}");

    let sweeper = tokio::spawn(sweep(state.clone()));
    let acceptor = TlsAcceptor::from(tls_config);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "too many connections; dropping one");
            continue;
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let service = TowerToHyperService::new(app);
            if let Err(e) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    tracing::info!("shutting down");
    sweeper.abort();
    store.close().await;
    Ok(())
}

async fn sweep(state: api::State) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tick.tick().await;
        let result = async {
            let mut tx = state.store.write().await?;
            api::expire_due_now(&mut tx).await?;
            tx.commit().await.map_err(crate::store::StoreError::from)?;
            Ok::<_, crate::error::ApiError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "expiry sweep failed; will retry");
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! { _ = t.recv() => {}, _ = i.recv() => {} }
        }
        _ => std::future::pending::<()>().await,
    }
}
