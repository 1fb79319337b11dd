//! The jit server as jitd sees it: the host-facing calls, behind a small trait so the
//! conversation driver, the NSS refresher and the audit queue can be tested against a scripted
//! server. [`Upstream`] is the real one: HTTPS through `jit_client`, trusting only the CA pinned at
//! join time, with the host credential, every call bounded by `server_timeout`.

use std::future::Future;
use std::time::Duration;

use jit_client::{Client, ClientError, Trust};
use jit_proto::api::{
    EventsStored, HostAccounts, HostChanges, HostEvents, HostKeys, HostReservationQuery,
    HostReservations, LoginBegin, LoginBegun, LoginVerified, LoginVerify, LoginWait, OfflineGrants,
};

use crate::host_key::HostKey;

/// The server calls jitd makes. Futures are `Send` so they can run on tokio's worker threads.
pub trait Server: Send + Sync + 'static {
    fn host_accounts(&self) -> impl Future<Output = Result<HostAccounts, ClientError>> + Send;
    fn login_begin(
        &self,
        req: &LoginBegin,
    ) -> impl Future<Output = Result<LoginBegun, ClientError>> + Send;
    fn login_verify(
        &self,
        attempt: &str,
        req: &LoginVerify,
    ) -> impl Future<Output = Result<LoginVerified, ClientError>> + Send;
    /// Waits (up to `req.wait_secs`) for the push of `attempt` to be answered.
    fn login_wait(
        &self,
        attempt: &str,
        req: &LoginWait,
    ) -> impl Future<Output = Result<LoginVerified, ClientError>> + Send;
    fn host_events(
        &self,
        req: &HostEvents,
    ) -> impl Future<Output = Result<EventsStored, ClientError>> + Send;
    fn offline_grants(&self) -> impl Future<Output = Result<OfflineGrants, ClientError>> + Send;
    /// The ssh keys that count now for each shared account of this host.
    fn host_keys(&self) -> impl Future<Output = Result<HostKeys, ClientError>> + Send;
    /// How the reservations behind this host's open sessions stand.
    fn host_reservations(
        &self,
        req: &HostReservationQuery,
    ) -> impl Future<Output = Result<HostReservations, ClientError>> + Send;
    /// The kinds of change for this host after `after` (`None`: first contact), waiting up to
    /// `wait` seconds for one.
    fn host_watch(
        &self,
        after: Option<i64>,
        wait: u32,
    ) -> impl Future<Output = Result<HostChanges, ClientError>> + Send;
}

/// The real server.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: Client,
    timeout: Duration,
}

impl Upstream {
    /// A client for `servers` (replicas of one service, tried in order; none: the server in
    /// `key`), with the credential in `key`, trusting only `ca_pem`.
    pub fn new(
        key: &HostKey,
        servers: &[String],
        ca_pem: String,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let servers = if servers.is_empty() {
            std::slice::from_ref(&key.server)
        } else {
            servers
        };
        let client = Client::with_servers(
            servers,
            Trust::CaPem(ca_pem),
            Some(key.credential.clone()),
            timeout,
        )?;
        Ok(Self { client, timeout })
    }

    /// The servers, in order.
    pub fn servers(&self) -> &[String] {
        self.client.servers()
    }
}

impl Server for Upstream {
    async fn host_accounts(&self) -> Result<HostAccounts, ClientError> {
        self.client.host_accounts().await
    }

    async fn login_begin(&self, req: &LoginBegin) -> Result<LoginBegun, ClientError> {
        self.client.login_begin(req).await
    }

    async fn login_verify(
        &self,
        attempt: &str,
        req: &LoginVerify,
    ) -> Result<LoginVerified, ClientError> {
        self.client.login_verify(attempt, req).await
    }

    async fn login_wait(
        &self,
        attempt: &str,
        req: &LoginWait,
    ) -> Result<LoginVerified, ClientError> {
        self.client.login_wait(attempt, req).await
    }

    async fn host_events(&self, req: &HostEvents) -> Result<EventsStored, ClientError> {
        self.client.host_events(req).await
    }

    async fn offline_grants(&self) -> Result<OfflineGrants, ClientError> {
        self.client.offline_grants().await
    }

    async fn host_keys(&self) -> Result<HostKeys, ClientError> {
        self.client.host_keys().await
    }

    async fn host_reservations(
        &self,
        req: &HostReservationQuery,
    ) -> Result<HostReservations, ClientError> {
        self.client.host_reservations(req).await
    }

    async fn host_watch(&self, after: Option<i64>, wait: u32) -> Result<HostChanges, ClientError> {
        self.client.host_watch(after, wait, self.timeout).await
    }
}
