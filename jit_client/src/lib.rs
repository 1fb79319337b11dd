//! HTTPS client for the jit server's `/v1` API, shared by jitctl and jitd.
//!
//! Trust is never taken from the system's CA store: on first contact the server's CA is pinned by
//! the `SHA256:…` fingerprint that `jit-server init` printed ([`Trust::Fingerprint`]); afterwards
//! the CA certificate captured then is used as the only root ([`Trust::CaPem`]). Every request has
//! a timeout.

mod error;
mod tls;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use jit_proto::api::*;
use jit_proto::fingerprint::Fingerprint;
use jit_proto::{AccountName, GroupName, HostName, PersonName, Secret};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::ClientError;
pub use tls::Trust;

/// Time allowed to open a TCP+TLS connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time allowed for a whole request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// A client for one jit service, reached at one or more server addresses (replicas sharing one
/// database). A request goes to the server that answered last, and on to the others in the
/// order given when that one cannot be reached (see [`Retry`]). A name in a URL that resolves to
/// several addresses is tried address by address by the connector itself.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    bases: Arc<[String]>,
    /// Index in `bases` of the server that answered last.
    current: Arc<AtomicUsize>,
    credential: Option<Secret>,
    captured_ca: Arc<tls::CapturedCa>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("bases", &self.bases)
            .finish_non_exhaustive()
    }
}

/// When a request may go on to the next server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Whatever happened: the request changes nothing, or changes it once whatever the number of
    /// tries (reads, events with ids).
    Idempotent,
    /// Only when it surely never reached a server (the connection could not be opened). A
    /// request sent without an answer may have taken effect (consumed a reservation): trying
    /// again elsewhere could do it twice, so it fails instead (closed, for a login).
    Unsent,
}

/// Normalizes `https://host:port[/]` and refuses anything that is not plain HTTPS.
pub fn normalize_server_url(url: &str) -> Result<String, ClientError> {
    let trimmed = url.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(trimmed).map_err(|e| ClientError::BadUrl {
        url: url.to_owned(),
        why: format!(
            "{e}; write it as https://HOST:PORT, for example https://jit.example.org:8443"
        ),
    })?;
    if parsed.scheme() != "https" {
        return Err(ClientError::BadUrl {
            url: url.to_owned(),
            why: "the server is reached over HTTPS only: use https://".into(),
        });
    }
    if parsed.host_str().is_none() || parsed.path() != "/" || parsed.query().is_some() {
        return Err(ClientError::BadUrl {
            url: url.to_owned(),
            why: "expected https://HOST[:PORT] with no path".into(),
        });
    }
    Ok(trimmed.to_owned())
}

impl Client {
    /// A client for `server` (`https://host:port`). `credential` is the admin token, a person
    /// token or a host credential, sent as a bearer token.
    pub fn new(
        server: &str,
        trust: Trust,
        credential: Option<Secret>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        Self::with_servers(&[server.to_owned()], trust, credential, timeout)
    }

    /// A client for the servers `servers` (in order of preference; at least one) of one jit
    /// service: they share the CA and the credential.
    pub fn with_servers(
        servers: &[String],
        trust: Trust,
        credential: Option<Secret>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let mut bases = Vec::new();
        for s in servers {
            let b = normalize_server_url(s)?;
            if !bases.contains(&b) {
                bases.push(b);
            }
        }
        if bases.is_empty() {
            return Err(ClientError::BadUrl {
                url: String::new(),
                why: "no server given: name at least one https://HOST:PORT".into(),
            });
        }
        let (config, captured_ca) = tls::client_config(trust)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .https_only(true)
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .user_agent(concat!("jit/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(Self {
            http,
            bases: bases.into(),
            current: Arc::new(AtomicUsize::new(0)),
            credential,
            captured_ca,
        })
    }

    /// The same servers and trust with another credential, sharing this client's connections:
    /// one process acting for many persons or hosts (a load generator) without a TLS handshake
    /// per identity.
    pub fn with_credential(&self, credential: Secret) -> Self {
        Self {
            credential: Some(credential),
            ..self.clone()
        }
    }

    /// The server that answered last (the first one before any answer).
    pub fn server(&self) -> &str {
        &self.bases[self.current.load(Ordering::Relaxed) % self.bases.len()]
    }

    /// Every server, in order of preference.
    pub fn servers(&self) -> &[String] {
        &self.bases
    }

    /// The CA certificate (PEM) the server presented and that matched the pinned fingerprint,
    /// once a request has succeeded. Callers store it to trust exactly that CA afterwards.
    pub fn captured_ca_pem(&self) -> Option<String> {
        self.captured_ca.pem()
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let retry = if method == Method::GET {
            Retry::Idempotent
        } else {
            Retry::Unsent
        };
        self.call_with(method, path, body, retry, None).await
    }

    /// Sends the request to the server that answered last, then to the others in order, as
    /// far as `retry` allows. `timeout` replaces the client's for this request (a long poll).
    async fn call_with<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        retry: Retry,
        timeout: Option<Duration>,
    ) -> Result<T, ClientError> {
        let n = self.bases.len();
        let start = self.current.load(Ordering::Relaxed) % n;
        let mut failures: Vec<ClientError> = Vec::new();
        for i in (0..n).map(|k| (start + k) % n) {
            let base = &self.bases[i];
            match self.send(base, method.clone(), path, body, timeout).await {
                Ok(answer) => {
                    self.current.store(i, Ordering::Relaxed);
                    return answer;
                }
                Err((e, unsent)) => {
                    let again = unsent || retry == Retry::Idempotent;
                    failures.push(e);
                    if !again {
                        break;
                    }
                }
            }
        }
        Err(error::none_answered(failures))
    }

    /// One try at `base`: the answer (success or the server's error), or why there was none and
    /// whether the request surely never left.
    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        base: &str,
        method: Method,
        path: &str,
        body: Option<&B>,
        timeout: Option<Duration>,
    ) -> Result<Result<T, ClientError>, (ClientError, bool)> {
        let url = format!("{base}{API_PREFIX}{path}");
        let mut req = self.http.request(method, &url);
        if let Some(cred) = &self.credential {
            req = req.bearer_auth(cred.expose());
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        let resp = req.send().await.map_err(|e| {
            let unsent = e.is_connect();
            (error::from_reqwest(base, e), unsent)
        })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| (error::from_reqwest(base, e), false))?;
        Ok(if status.is_success() {
            serde_json::from_slice(&bytes).map_err(|e| {
                ClientError::Protocol(format!("{path}: {e} (is {base} a jit server?)"))
            })
        } else {
            Err(error::from_error_body(status.as_u16(), &bytes))
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call::<(), T>(Method::GET, path, None).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn post_empty<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call::<(), T>(Method::POST, path, None).await
    }

    // --- anyone with a credential

    pub async fn whoami(&self) -> Result<WhoAmI, ClientError> {
        self.get("/whoami").await
    }

    // --- admin: persons

    pub async fn add_person(&self, body: &NewPerson) -> Result<EnrollmentIssued, ClientError> {
        self.post("/persons", body).await
    }

    pub async fn persons(&self) -> Result<Vec<Person>, ClientError> {
        self.get("/persons").await
    }

    pub async fn person(&self, name: &PersonName) -> Result<Person, ClientError> {
        self.get(&format!("/persons/{name}")).await
    }

    pub async fn set_person_active(
        &self,
        name: &PersonName,
        active: bool,
    ) -> Result<Person, ClientError> {
        let verb = if active { "enable" } else { "disable" };
        self.post_empty(&format!("/persons/{name}/{verb}")).await
    }

    pub async fn unlock_person(&self, name: &PersonName) -> Result<Person, ClientError> {
        self.post_empty(&format!("/persons/{name}/unlock")).await
    }

    pub async fn reset_factor(&self, name: &PersonName) -> Result<EnrollmentIssued, ClientError> {
        self.post_empty(&format!("/persons/{name}/reset-factor"))
            .await
    }

    pub async fn set_admin_role(
        &self,
        name: &PersonName,
        admin: bool,
    ) -> Result<Person, ClientError> {
        self.post(&format!("/persons/{name}/admin"), &AdminRole { admin })
            .await
    }

    /// Spends a one-time bootstrap token (this client's credential) on a named admin.
    pub async fn bootstrap(&self, body: &Bootstrap) -> Result<Bootstrapped, ClientError> {
        self.post("/bootstrap", body).await
    }

    // --- credentials

    pub async fn tokens(&self) -> Result<Tokens, ClientError> {
        self.get("/tokens").await
    }

    pub async fn revoke_token(&self, id: &str) -> Result<TokenInfo, ClientError> {
        // Ids are `p-`/`h-` and hex; refuse anything that could alter the path.
        if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(ClientError::Protocol(format!(
                "{id:?} is not a credential id: copy one from `jitctl token list`"
            )));
        }
        self.post_empty(&format!("/tokens/{id}/revoke")).await
    }

    // --- admin: groups

    pub async fn add_group(&self, body: &NewGroup) -> Result<Group, ClientError> {
        self.post("/groups", body).await
    }

    pub async fn groups(&self) -> Result<Vec<Group>, ClientError> {
        self.get("/groups").await
    }

    pub async fn group(&self, name: &GroupName) -> Result<Group, ClientError> {
        self.get(&format!("/groups/{name}")).await
    }

    pub async fn add_member(
        &self,
        group: &GroupName,
        body: &NewMember,
    ) -> Result<Group, ClientError> {
        self.post(&format!("/groups/{group}/members"), body).await
    }

    pub async fn remove_member(
        &self,
        group: &GroupName,
        person: &PersonName,
    ) -> Result<Group, ClientError> {
        self.call::<(), _>(
            Method::DELETE,
            &format!("/groups/{group}/members/{person}"),
            None,
        )
        .await
    }

    // --- admin: accounts

    pub async fn add_account(&self, body: &NewAccount) -> Result<Account, ClientError> {
        self.post("/accounts", body).await
    }

    pub async fn accounts(&self) -> Result<Vec<Account>, ClientError> {
        self.get("/accounts").await
    }

    pub async fn account(&self, name: &AccountName) -> Result<Account, ClientError> {
        self.get(&format!("/accounts/{name}")).await
    }

    pub async fn change_account(
        &self,
        name: &AccountName,
        body: &AccountChange,
    ) -> Result<Account, ClientError> {
        self.call(Method::PATCH, &format!("/accounts/{name}"), Some(body))
            .await
    }

    pub async fn set_account_active(
        &self,
        name: &AccountName,
        active: bool,
    ) -> Result<Account, ClientError> {
        let verb = if active { "enable" } else { "disable" };
        self.post_empty(&format!("/accounts/{name}/{verb}")).await
    }

    // --- admin: hosts

    pub async fn add_host(&self, body: &NewHost) -> Result<HostCreated, ClientError> {
        self.post("/hosts", body).await
    }

    pub async fn hosts(&self) -> Result<Vec<Host>, ClientError> {
        self.get("/hosts").await
    }

    pub async fn rejoin_host(&self, name: &HostName) -> Result<HostCreated, ClientError> {
        self.post_empty(&format!("/hosts/{name}/rejoin")).await
    }

    pub async fn set_host_active(
        &self,
        name: &HostName,
        active: bool,
    ) -> Result<Host, ClientError> {
        let verb = if active { "enable" } else { "disable" };
        self.post_empty(&format!("/hosts/{name}/{verb}")).await
    }

    // --- admin: audit

    pub async fn audit(&self, q: &AuditQuery) -> Result<AuditEvents, ClientError> {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(p) = &q.person {
            params.push(("person", p.to_string()));
        }
        if let Some(a) = &q.account {
            params.push(("account", a.to_string()));
        }
        if let Some(h) = &q.host {
            params.push(("host", h.to_string()));
        }
        if let Some(s) = q.since {
            params.push(("since", s.to_string()));
        }
        if let Some(u) = q.until {
            params.push(("until", u.to_string()));
        }
        if let Some(l) = q.limit {
            params.push(("limit", l.to_string()));
        }
        if let Some(a) = q.after {
            params.push(("after", a.to_string()));
        }
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let path = if query.is_empty() {
            "/audit".to_owned()
        } else {
            format!("/audit?{}", query.join("&"))
        };
        self.get(&path).await
    }

    pub async fn audit_verify(&self) -> Result<AuditVerification, ClientError> {
        self.get("/audit/verify").await
    }

    // --- persons and admins: reservations

    pub async fn reserve(&self, body: &NewReservation) -> Result<Reservation, ClientError> {
        self.post("/reservations", body).await
    }

    pub async fn reservations(&self, all: bool) -> Result<Reservations, ClientError> {
        self.get(if all {
            "/reservations?all=true"
        } else {
            "/reservations"
        })
        .await
    }

    pub async fn release(&self, body: &ReleaseRequest) -> Result<Released, ClientError> {
        self.post("/reservations/release", body).await
    }

    pub async fn extend(&self, body: &ExtendRequest) -> Result<Extended, ClientError> {
        self.post("/reservations/extend", body).await
    }

    /// Open sessions (with `all`, closed ones too): a person's own, an admin's everybody's.
    pub async fn sessions(&self, all: bool) -> Result<Sessions, ClientError> {
        self.get(if all {
            "/sessions?all=true"
        } else {
            "/sessions"
        })
        .await
    }

    // --- persons and admins: ssh public keys

    /// Registers a key (a person's own; the admin names `person`).
    pub async fn add_key(&self, body: &NewSshKey) -> Result<SshKey, ClientError> {
        self.post("/keys", body).await
    }

    /// A person's own keys; for the admin everybody's, or `person`'s.
    pub async fn keys(&self, person: Option<&PersonName>) -> Result<SshKeys, ClientError> {
        match person {
            Some(p) => self.get(&format!("/keys?person={p}")).await,
            None => self.get("/keys").await,
        }
    }

    /// Removes a key by its id or its `SHA256:…` fingerprint.
    pub async fn remove_key(&self, id_or_fingerprint: &str) -> Result<SshKey, ClientError> {
        let ok = !id_or_fingerprint.is_empty()
            && id_or_fingerprint
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/:".contains(&b));
        if !ok {
            return Err(ClientError::Protocol(format!(
                "{id_or_fingerprint:?} is neither a key id nor a SHA256: fingerprint"
            )));
        }
        // A fingerprint's base64 may hold '/' and '+': escape them inside the path segment.
        let segment = id_or_fingerprint.replace('+', "%2B").replace('/', "%2F");
        self.call::<(), _>(Method::DELETE, &format!("/keys/{segment}"), None)
            .await
    }

    // --- persons: their own factors and push approvals

    pub async fn factors(&self) -> Result<Factors, ClientError> {
        self.get("/factors").await
    }

    /// Enrolls push (or changes its ntfy topic and token).
    pub async fn enroll_push_factor(&self, body: &PushEnroll) -> Result<Factors, ClientError> {
        self.post("/factors/push", body).await
    }

    pub async fn remove_push_factor(&self) -> Result<Factors, ClientError> {
        self.call::<(), _>(Method::DELETE, "/factors/push", None)
            .await
    }

    pub async fn totp_start(&self) -> Result<TotpStarted, ClientError> {
        self.post_empty("/factors/totp").await
    }

    pub async fn totp_confirm(&self, body: &TotpConfirm) -> Result<Factors, ClientError> {
        self.post("/factors/totp/confirm", body).await
    }

    /// The logins waiting for the caller's approval.
    pub async fn approvals(&self) -> Result<Approvals, ClientError> {
        self.get("/approvals").await
    }

    pub async fn approve(&self, id: &str, number: u8) -> Result<ApprovalAnswered, ClientError> {
        let id = challenge_id(id)?;
        self.post(
            &format!("/approvals/{id}/approve"),
            &ApproveRequest { number },
        )
        .await
    }

    /// "This was not me": the login is refused, the reservation released, the admins alerted.
    pub async fn report(&self, id: &str) -> Result<ApprovalAnswered, ClientError> {
        let id = challenge_id(id)?;
        self.post_empty(&format!("/approvals/{id}/report")).await
    }

    // --- enrollment (no credential)

    /// Enrolls push as the first factor with an enrollment code.
    pub async fn enroll_push(&self, body: &EnrollPush) -> Result<Enrolled, ClientError> {
        self.post("/enroll/push", body).await
    }

    pub async fn enroll_start(&self, body: &EnrollStart) -> Result<EnrollStarted, ClientError> {
        self.post("/enroll/start", body).await
    }

    pub async fn enroll_confirm(&self, body: &EnrollConfirm) -> Result<Enrolled, ClientError> {
        self.post("/enroll/confirm", body).await
    }

    // --- hosts

    pub async fn join(&self, body: &JoinRequest) -> Result<Joined, ClientError> {
        self.post("/join", body).await
    }

    pub async fn host_accounts(&self) -> Result<HostAccounts, ClientError> {
        self.get("/host/accounts").await
    }

    pub async fn login_begin(&self, body: &LoginBegin) -> Result<LoginBegun, ClientError> {
        self.post("/host/logins", body).await
    }

    pub async fn login_verify(
        &self,
        attempt: &str,
        body: &LoginVerify,
    ) -> Result<LoginVerified, ClientError> {
        // Attempt ids are server-made; refuse anything that could alter the path.
        if attempt.is_empty()
            || !attempt
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(ClientError::Protocol(format!("bad attempt id {attempt:?}")));
        }
        self.post(&format!("/host/logins/{attempt}/verify"), body)
            .await
    }

    /// Waits up to `wait_secs` (the server holds at most [`MAX_WAIT_SECS`]) for the push of
    /// `attempt` to be answered. Give the client a timeout longer than that.
    pub async fn login_wait(
        &self,
        attempt: &str,
        body: &LoginWait,
    ) -> Result<LoginVerified, ClientError> {
        if attempt.is_empty()
            || !attempt
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(ClientError::Protocol(format!("bad attempt id {attempt:?}")));
        }
        self.post(&format!("/host/logins/{attempt}/wait"), body)
            .await
    }

    pub async fn host_events(&self, body: &HostEvents) -> Result<EventsStored, ClientError> {
        // Each event has an id the server keeps once: sending again stores nothing twice.
        self.call_with(
            Method::POST,
            "/host/events",
            Some(body),
            Retry::Idempotent,
            None,
        )
        .await
    }

    /// Hashed codes for this host's live reservations of `offline = "cached"` accounts.
    pub async fn offline_grants(&self) -> Result<OfflineGrants, ClientError> {
        self.get("/host/offline").await
    }

    /// How the reservations behind this host's open sessions stand.
    pub async fn host_reservations(
        &self,
        body: &HostReservationQuery,
    ) -> Result<HostReservations, ClientError> {
        self.call_with(
            Method::POST,
            "/host/reservations",
            Some(body),
            Retry::Idempotent,
            None,
        )
        .await
    }

    /// The ssh keys that count now for each shared account of this host (for sshd's
    /// `AuthorizedKeysCommand`).
    pub async fn host_keys(&self) -> Result<HostKeys, ClientError> {
        self.get("/host/keys").await
    }

    /// `GET /v1/host/watch`: the kinds of change for this host after `after` (`None` on first
    /// contact), waiting up to `wait` seconds for one; `slack` is added to the wait for the
    /// answer to travel.
    pub async fn host_watch(
        &self,
        after: Option<i64>,
        wait: u32,
        slack: Duration,
    ) -> Result<HostChanges, ClientError> {
        let wait = wait.min(MAX_WATCH_SECS);
        let timeout = Duration::from_secs(u64::from(wait)) + slack;
        let path = match after {
            Some(a) => format!("/host/watch?after={a}&wait={wait}"),
            None => format!("/host/watch?wait={wait}"),
        };
        self.call_with::<(), _>(Method::GET, &path, None, Retry::Idempotent, Some(timeout))
            .await
    }
}

/// A push challenge's id as the server makes them (hex); anything else could alter the path.
fn challenge_id(id: &str) -> Result<&str, ClientError> {
    if (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id)
    } else {
        Err(ClientError::Protocol(format!(
            "{id:?} is not a login id: copy one from `jitctl approve --list`"
        )))
    }
}

pub use jit_proto::fingerprint::Fingerprint as CaFingerprint;

/// Convenience for callers that only have the fingerprint string.
pub fn parse_fingerprint(s: &str) -> Result<Fingerprint, ClientError> {
    Fingerprint::parse(s).map_err(|e| ClientError::BadFingerprint(e.to_string()))
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn a_server_url_without_scheme_says_how_to_write_it() {
        let err = normalize_server_url("127.0.0.1:8443")
            .unwrap_err()
            .to_string();
        assert!(err.contains("https://HOST:PORT"), "{err}");
        let err = normalize_server_url("http://127.0.0.1:8443")
            .unwrap_err()
            .to_string();
        assert!(err.contains("HTTPS only"), "{err}");
        assert_eq!(
            normalize_server_url("https://127.0.0.1:8443/").unwrap(),
            "https://127.0.0.1:8443"
        );
    }
}
