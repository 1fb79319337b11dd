//! The HTTPS listener: TLS (rustls) in front of the axum router, the expiry sweeper, and a clean
//! stop on SIGTERM/SIGINT.
//!
//! No client can hold a connection without using it (`[connections]` in server.toml): the TLS
//! handshake, the first request's headers, the quiet time between requests (HTTP/1.1 keep-alive
//! and HTTP/2 alike) and each request are bounded, and so is the number of connections. A
//! connection past its bound is asked to close, and dropped if it has not within
//! `header_timeout`. The long polls (a host's watch, a push wait) answer within 25 s, well
//! inside `request_timeout`, so a bound never cuts a legitimate wait.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::api::{self, AppState};
use crate::config::{ConnectionSettings, Settings};
use crate::keys::{self, AtRestKey};
use crate::store::Store;
use crate::tls::{self, TlsPaths};

/// How often ran-out reservations are marked expired (and audited).
const SWEEP_EVERY: Duration = Duration::from_secs(15);
/// How often the SQLite WAL is checkpointed in the background ([`Store::checkpoint_in_background`]).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Push(#[from] crate::push::PushError),
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
    let key = AtRestKey::load_ring(&settings.data_dir)?;
    let portal_tls = match (
        &settings.portal.listen,
        &settings.portal.cert,
        &settings.portal.key,
    ) {
        (Some(addr), Some(cert), Some(key)) => Some((
            *addr,
            crate::portal::listener::server_config(cert.clone(), key.clone())?,
        )),
        _ => None,
    };
    let store = Store::open(&settings.database_url()).await?;
    crate::store::audit::load_chain_key(&store, &key).await?;
    chain_old_audit_rows(&store).await?;
    let listen = settings.listen;
    let bounds = settings.connections.clone();
    let portal_enabled = settings.portal.enabled;
    let push = crate::push::Notifier::new(&settings, &key)?;
    let limits = crate::api::rate_limit::Limits::new(&settings.rate_limits);
    let state = Arc::new(AppState {
        store: store.clone(),
        key,
        settings,
        ca_fingerprint,
        push,
        changes: Default::default(),
        limits,
    });
    let mut app = api::router(state.clone());
    if portal_enabled {
        app = app.merge(crate::portal::router(state.clone()));
    }
    // A finished write request may have grown the change log: look now, not at the next recheck.
    let feed_state = state.clone();
    let app = app.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let state = feed_state.clone();
            async move {
                let writes = !matches!(
                    *req.method(),
                    axum::http::Method::GET | axum::http::Method::HEAD
                );
                let answer = next.run(req).await;
                if writes {
                    state.changes.poke();
                }
                answer
            }
        },
    ));

    let listener = bind(listen).await?;
    let local = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: listen,
        source,
    })?;
    tracing::info!(%local, ca = %ca_fingerprint, "jit-server listening");
    let portal = match portal_tls {
        Some((addr, config)) => {
            let l = bind(addr).await?;
            let local = l
                .local_addr()
                .map_err(|source| ServeError::Bind { addr, source })?;
            tracing::info!(%local, "portal listening on https://{local}/portal/");
            Some((l, local, config))
        }
        None => None,
    };
    // One line on stdout once the port is open (the portal's own too, if any), for scripts and
    // tests that wait for readiness. Only this one: a reader may stop reading after it.
    println!("listening on https://{local}");

    let sweeper = tokio::spawn(sweep(state.clone()));
    let checkpoints = store.checkpoint_in_background(CHECKPOINT_EVERY).await?;
    let feed = tokio::spawn(crate::change_feed::run(state.clone()));
    let slots = Arc::new(Semaphore::new(bounds.max_connections));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut loops = vec![tokio::spawn(accept_loop(
        listener,
        TlsAcceptor::from(tls_config),
        app,
        bounds.clone(),
        slots.clone(),
        stopped.clone(),
    ))];
    if let Some((l, _, config)) = portal {
        loops.push(tokio::spawn(accept_loop(
            l,
            TlsAcceptor::from(config),
            crate::portal::router(state.clone()),
            bounds,
            slots,
            stopped,
        )));
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    for l in loops {
        let _ = l.await;
    }
    sweeper.abort();
    feed.abort();
    if let Some(c) = checkpoints {
        c.abort();
    }
    flush_refused_joins(&state).await;
    store.close().await;
    Ok(())
}

/// Audit rows from before the hash chain join it (once; see [`crate::store::audit`]).
async fn chain_old_audit_rows(store: &Store) -> Result<(), ServeError> {
    let mut tx = store.write().await?;
    let n = crate::store::audit::chain_rows_from_before_the_chain(&mut tx).await?;
    tx.commit().await?;
    if n > 0 {
        tracing::info!(
            rows = n,
            "audit rows from before the hash chain were chained"
        );
    }
    Ok(())
}

/// Refused joins counted since the last sweep are audited before the server stops.
async fn flush_refused_joins(state: &api::State) {
    let Some(e) = state.limits.refused_joins_due(jit_clock::now(), true) else {
        return;
    };
    let result = async {
        let mut tx = state.store.write().await?;
        crate::store::audit::record(&mut tx, &e).await?;
        tx.commit().await?;
        Ok::<_, crate::store::StoreError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "the count of refused joins could not be audited");
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Accepts connections on one listener until `stop` turns true.
async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    bounds: ConnectionSettings,
    slots: Arc<Semaphore>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
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
            _ = stop.changed() => break,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "too many connections; dropping one");
            continue;
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let bounds = bounds.clone();
        tokio::spawn(async move {
            let _permit = permit;
            serve_connection(tcp, peer, acceptor, app, bounds).await;
        });
    }
}

/// Serves one accepted TCP connection until the client closes it or a bound is reached.
async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    app: Router,
    bounds: ConnectionSettings,
) {
    // Without it, a response that leaves in two segments (TLS records written one after
    // another) waits for the client's delayed ACK, up to 40 ms on Linux. Here, in the
    // connection's own task, rather than in the loop that accepts the next one.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "could not turn off Nagle's algorithm");
    }
    let stream = match tokio::time::timeout(bounds.handshake_timeout.0, acceptor.accept(tcp)).await
    {
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
    let activity = Arc::new(Activity::new(Instant::now()));
    let service = {
        let activity = activity.clone();
        let limit = bounds.request_timeout.0;
        hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let busy = Busy::start(activity.clone());
            let app = app.clone();
            let mut req = req;
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            async move {
                let _busy = busy;
                let call = api::client_addr::scope(peer.ip(), app.oneshot(req));
                match tokio::time::timeout(limit, call).await {
                    Ok(answer) => answer,
                    Err(_) => Ok(too_slow(limit)),
                }
            }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(bounds.header_timeout.0);
    builder.http2().timer(TokioTimer::new());
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    loop {
        let deadline = activity.idle_deadline(&bounds);
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            // A request started or ended: work out the deadline again.
            _ = activity.changed.notified() => {}
            _ = sleep_until(deadline) => {
                if activity.idle_deadline(&bounds).is_some_and(|d| d <= Instant::now()) {
                    break;
                }
            }
        }
    }
    tracing::debug!(%peer, "closing an idle connection");
    conn.as_mut().graceful_shutdown();
    if tokio::time::timeout(bounds.header_timeout.0, conn)
        .await
        .is_err()
    {
        tracing::debug!(%peer, "dropping a connection that did not close in time");
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The answer to a request that ran over `request_timeout` (a body sent too slowly, say).
fn too_slow(limit: Duration) -> axum::response::Response {
    let body = jit_proto::api::ErrorResponse {
        error: jit_proto::api::ErrorBody {
            code: jit_proto::api::ErrorCode::BadRequest,
            message: format!(
                "the request was not completed within {} s (request_timeout); send it again",
                limit.as_secs()
            ),
            until: None,
        },
    };
    (axum::http::StatusCode::REQUEST_TIMEOUT, axum::Json(body)).into_response()
}

/// Requests in progress on one connection, and since when it has had none.
struct Activity {
    in_flight: AtomicUsize,
    /// When the connection last became idle, and whether it has served a request yet.
    idle: Mutex<(Instant, bool)>,
    changed: Notify,
}

impl Activity {
    fn new(now: Instant) -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            idle: Mutex::new((now, false)),
            changed: Notify::new(),
        }
    }

    /// When the connection must close if nothing happens: `header_timeout` after the handshake
    /// for the first request, `idle_timeout` after each answer; none while a request runs.
    fn idle_deadline(&self, bounds: &ConnectionSettings) -> Option<Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let (since, served) = *self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let limit = if served {
            bounds.idle_timeout.0
        } else {
            bounds.header_timeout.0
        };
        Some(since + limit)
    }
}

/// Marks a request in progress for as long as it lives (it is dropped when the request ends,
/// however it ends).
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        activity.idle.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
        // notify_one keeps a permit if the watcher is not waiting yet: no change is missed.
        activity.changed.notify_one();
        Self(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut idle = self.0.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.0 = Instant::now();
        drop(idle);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_one();
    }
}

async fn sweep(state: api::State) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tick.tick().await;
        let (result, conflicted) = crate::retry::watching_conflicts(async {
            let mut tx = state.store.write().await?;
            api::expire_due_now(&mut tx).await?;
            if let Some(e) = state.limits.refused_joins_due(jit_clock::now(), false) {
                crate::store::audit::record(&mut tx, &e).await?;
            }
            tx.commit().await?;
            state.changes.poke();
            Ok::<_, crate::error::ApiError>(())
        })
        .await;
        match result {
            Ok(()) => {}
            // Another server process on the database swept the same reservations at the same
            // moment; they are expired (and audited) once, by it.
            Err(_) if conflicted => {
                tracing::debug!("expiry sweep undone by another server process's; skipped")
            }
            Err(e) => tracing::warn!(error = %e, "expiry sweep failed; will retry"),
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
