//! Test doubles: a scripted server and a recorder that keeps what it was given.

use std::collections::VecDeque;
use std::sync::Mutex;

use jit_client::ClientError;
use jit_proto::api::{
    ErrorCode, EventsStored, HostAccounts, HostChanges, HostEvent, HostEvents, HostKeys,
    HostReservationQuery, HostReservations, LoginBegin, LoginBegun, LoginVerified, LoginVerify,
    LoginWait,
};

use crate::driver::Record;
use crate::syslog::Decision;
use crate::upstream::Server;

/// The list of a host where admin (uid 60001), root and toor (uid 0, a login to root) are
/// guarded.
pub fn guarded_contents() -> jit_nss_cache::CacheContents {
    use jit_nss_cache::CacheGuarded;
    jit_nss_cache::CacheContents {
        guarded: vec![
            CacheGuarded::account("admin", Some(60001)),
            CacheGuarded::account("root", Some(0)),
            CacheGuarded {
                name: "toor".into(),
                account: "root".into(),
                uid: Some(0),
            },
        ],
        ..Default::default()
    }
}

/// One scripted answer.
pub enum Answer<T> {
    Ok(T),
    Unreachable,
    Api(ErrorCode, &'static str),
}

impl<T> Answer<T> {
    fn into_result(self) -> Result<T, ClientError> {
        match self {
            Answer::Ok(t) => Ok(t),
            Answer::Unreachable => Err(unreachable()),
            Answer::Api(code, message) => Err(ClientError::Api {
                status: code.http_status(),
                code,
                message: message.into(),
                until: None,
            }),
        }
    }
}

pub fn unreachable() -> ClientError {
    ClientError::Unreachable {
        server: "https://127.0.0.1:1".into(),
        detail: "connection refused".into(),
    }
}

/// What the server was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Begin(LoginBegin),
    /// Attempt id and the code (the fake is the only place a code is kept).
    Verify(String, String),
    /// A wait for the push of this attempt.
    Wait(String),
    Accounts,
    /// How these reservations stand.
    Reservations(Vec<i64>),
}

#[derive(Default)]
struct Inner {
    begins: VecDeque<Answer<LoginBegun>>,
    verifies: VecDeque<Answer<LoginVerified>>,
    waits: VecDeque<Answer<LoginVerified>>,
    accounts: VecDeque<Answer<HostAccounts>>,
    keys: VecDeque<Answer<HostKeys>>,
    reservations: VecDeque<Answer<HostReservations>>,
    calls: Vec<Call>,
    events: Vec<HostEvent>,
    events_unreachable: bool,
    refused_actions: Vec<String>,
}

/// A server whose answers a test scripts in advance. An unscripted login call panics (the test
/// did not expect a round trip); events are stored unless told otherwise.
#[derive(Default)]
pub struct FakeServer(Mutex<Inner>);

impl FakeServer {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn on_begin(&self, a: Answer<LoginBegun>) -> &Self {
        self.lock().begins.push_back(a);
        self
    }

    pub fn on_verify(&self, a: Answer<LoginVerified>) -> &Self {
        self.lock().verifies.push_back(a);
        self
    }

    pub fn on_wait(&self, a: Answer<LoginVerified>) -> &Self {
        self.lock().waits.push_back(a);
        self
    }

    pub fn on_accounts(&self, a: Answer<HostAccounts>) -> &Self {
        self.lock().accounts.push_back(a);
        self
    }

    pub fn on_keys(&self, a: Answer<HostKeys>) -> &Self {
        self.lock().keys.push_back(a);
        self
    }

    pub fn on_reservations(&self, a: Answer<HostReservations>) -> &Self {
        self.lock().reservations.push_back(a);
        self
    }

    pub fn fail_events_unreachable(&self, yes: bool) {
        self.lock().events_unreachable = yes;
    }

    pub fn refuse_action(&self, action: &str) {
        self.lock().refused_actions.push(action.into());
    }

    pub fn allow_action(&self, action: &str) {
        self.lock().refused_actions.retain(|a| a != action);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn events(&self) -> Vec<HostEvent> {
        self.lock().events.clone()
    }

    /// Scripted answers not used yet (begin, verify, accounts).
    pub fn unused(&self) -> (usize, usize, usize) {
        let i = self.lock();
        (i.begins.len(), i.verifies.len(), i.accounts.len())
    }
}

impl Server for FakeServer {
    async fn host_accounts(&self) -> Result<HostAccounts, ClientError> {
        let mut i = self.lock();
        i.calls.push(Call::Accounts);
        match i.accounts.pop_front() {
            Some(a) => a.into_result(),
            None => Err(unreachable()),
        }
    }

    async fn login_begin(&self, req: &LoginBegin) -> Result<LoginBegun, ClientError> {
        let mut i = self.lock();
        i.calls.push(Call::Begin(req.clone()));
        let a = i.begins.pop_front();
        drop(i);
        match a {
            Some(a) => a.into_result(),
            None => panic!("unexpected login_begin for {}", req.account),
        }
    }

    async fn login_wait(
        &self,
        attempt: &str,
        _req: &LoginWait,
    ) -> Result<LoginVerified, ClientError> {
        let mut i = self.lock();
        i.calls.push(Call::Wait(attempt.into()));
        let a = i.waits.pop_front();
        drop(i);
        match a {
            Some(a) => a.into_result(),
            None => panic!("unexpected login_wait for {attempt}"),
        }
    }

    async fn login_verify(
        &self,
        attempt: &str,
        req: &LoginVerify,
    ) -> Result<LoginVerified, ClientError> {
        let mut i = self.lock();
        i.calls
            .push(Call::Verify(attempt.into(), req.code.expose().into()));
        let a = i.verifies.pop_front();
        drop(i);
        match a {
            Some(a) => a.into_result(),
            None => panic!("unexpected login_verify for {attempt}"),
        }
    }

    async fn offline_grants(&self) -> Result<jit_proto::api::OfflineGrants, ClientError> {
        Err(unreachable())
    }

    async fn host_keys(&self) -> Result<HostKeys, ClientError> {
        match self.lock().keys.pop_front() {
            Some(a) => a.into_result(),
            None => Err(unreachable()),
        }
    }

    /// Unscripted: unreachable.
    async fn host_reservations(
        &self,
        req: &HostReservationQuery,
    ) -> Result<HostReservations, ClientError> {
        let mut i = self.lock();
        i.calls.push(Call::Reservations(req.ids.clone()));
        match i.reservations.pop_front() {
            Some(a) => a.into_result(),
            None => Err(unreachable()),
        }
    }

    async fn host_events(&self, req: &HostEvents) -> Result<EventsStored, ClientError> {
        let mut i = self.lock();
        if i.events_unreachable {
            return Err(unreachable());
        }
        if req
            .events
            .iter()
            .any(|e| i.refused_actions.contains(&e.action))
        {
            return Answer::Api(ErrorCode::BadRequest, "unknown event action").into_result();
        }
        let new: Vec<HostEvent> = req
            .events
            .iter()
            .filter(|e| !i.events.iter().any(|s| s.id == e.id))
            .cloned()
            .collect();
        let stored = new.len() as u32;
        i.events.extend(new);
        Ok(EventsStored { stored })
    }

    /// Unscripted: unreachable.
    async fn host_watch(
        &self,
        _after: Option<i64>,
        _wait: u32,
    ) -> Result<HostChanges, ClientError> {
        Err(unreachable())
    }
}

/// Keeps decisions and events in memory.
#[derive(Default)]
pub struct Recorded {
    pub decisions: Mutex<Vec<Decision>>,
    pub events: Mutex<Vec<HostEvent>>,
    /// Ids of events the server acknowledged.
    pub delivered: Mutex<Vec<String>>,
}

impl Recorded {
    pub fn decisions(&self) -> Vec<Decision> {
        self.decisions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn events(&self) -> Vec<HostEvent> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Record for std::sync::Arc<Recorded> {
    fn decision(&self, d: &Decision) {
        self.decisions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(d.clone());
    }

    fn event(&self, ev: HostEvent) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ev);
    }

    fn undelivered_offline(&self, account: &str) -> Vec<HostEvent> {
        let done = self.delivered.lock().unwrap_or_else(|p| p.into_inner());
        self.events()
            .into_iter()
            .filter(|e| e.action == "login.offline" && e.account.as_str() == account)
            .filter(|e| !done.contains(&e.id))
            .collect()
    }

    fn delivered(&self, events: &[HostEvent]) {
        self.delivered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(events.iter().map(|e| e.id.clone()));
    }
}
