//! Push notifications: telling a person that a login waits for their approval (and the admins
//! that a person reported one as not theirs), through the channels server.toml configures:
//! ntfy ([`ntfy`]), a signed webhook ([`webhook`]) and Web Push to the portal's service worker
//! ([`webpush`]).
//!
//! A notification says which login (account, host, source) and links to the approval page. It
//! never carries the number the login prompt shows and never offers an action that approves:
//! approving takes a signed-in person typing that number. Notifications go out after the
//! login's transaction committed, in the background; a channel that fails is logged and does
//! not hold up or change the login. Tokens and secrets are never logged.

pub mod ntfy;
pub mod webhook;
pub mod webpush;

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::sync::Notify;
use zeroize::Zeroizing;

use crate::api::State;
use crate::config::Settings;
use crate::keys::AtRestKey;
use crate::store::push::{self as store, PushFactorRow};

/// Time allowed for one delivery.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("cannot read push.webhook_secret_file {path}: {source}")]
    WebhookSecret {
        path: String,
        source: std::io::Error,
    },
    #[error("push.webhook_secret_file {0} is empty: write a long random secret into it")]
    EmptySecret(String),
    #[error("cannot read push.ca_file {path}: {why}")]
    CaFile { path: String, why: String },
    #[error("cannot set up the HTTP client for notifications: {0}")]
    Client(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// A login waits for the person's approval.
    Sent,
    /// A person reported a login as not theirs (to the admins).
    Reported,
    /// Wrong codes for one person, from all sources together, passed `[guessing]
    /// alert_failures` (to the admins). The person is not locked out.
    Guessing,
}

impl NoticeKind {
    /// The audit action of the same event.
    pub fn action(self) -> &'static str {
        match self {
            NoticeKind::Sent => "push.sent",
            NoticeKind::Reported => "push.reported",
            NoticeKind::Guessing => "login.guessing_alert",
        }
    }
}

/// What a notification is about. Holds no number and no secret.
#[derive(Debug, Clone)]
pub struct Notice {
    pub kind: NoticeKind,
    pub challenge: String,
    pub person_id: i64,
    pub person: String,
    pub account: String,
    pub host: String,
    pub service: String,
    pub rhost: Option<String>,
    pub tty: Option<String>,
    pub ruser: Option<String>,
    /// The challenge's approval page.
    pub approve_url: String,
    pub at: i64,
    pub expires_at: i64,
}

impl Notice {
    pub fn approve_url(&self) -> String {
        self.approve_url.clone()
    }

    /// The portal's audit page for the person (for the admins' alert).
    pub fn audit_url(&self) -> String {
        let base = self
            .approve_url
            .split("/portal/")
            .next()
            .unwrap_or_default();
        format!("{base}/portal/admin/audit?person={}", self.person)
    }

    /// "(ssh from 192.0.2.10)", "(su by bob on pts/3)", "(login on tty1)".
    pub fn source(&self) -> String {
        let mut s = format!("({}", self.service);
        if let Some(r) = &self.rhost {
            s.push_str(&format!(" from {r}"));
        }
        if let Some(u) = &self.ruser {
            s.push_str(&format!(" by {u}"));
        }
        if self.rhost.is_none()
            && let Some(t) = &self.tty
        {
            s.push_str(&format!(" on {t}"));
        }
        s.push(')');
        s
    }

    /// What the admins are told of guessing: who was targeted and from where, never a code.
    pub fn guessing_text(&self) -> String {
        format!(
            "Many wrong codes were typed for {}'s reservations, the last for {} on {} {}. \
             Logins from there are slowed down; {} is not locked out.",
            self.person,
            self.account,
            self.host,
            self.source(),
            self.person
        )
    }

    /// The Web Push payload the service worker shows.
    fn web_push_payload(&self) -> Vec<u8> {
        let (title, body, url) = match self.kind {
            NoticeKind::Sent => (
                format!("Approve login to {} on {}?", self.account, self.host),
                format!(
                    "{} {}. Type the number the login prompt shows.",
                    self.account,
                    self.source()
                ),
                self.approve_url(),
            ),
            NoticeKind::Reported => (
                format!("Login reported: {} on {}", self.account, self.host),
                format!("{} says it was not them {}.", self.person, self.source()),
                self.audit_url(),
            ),
            NoticeKind::Guessing => (
                format!("Codes guessed: {} on {}", self.account, self.host),
                self.guessing_text(),
                self.audit_url(),
            ),
        };
        serde_json::json!({ "title": title, "body": body, "url": url, "tag": self.challenge })
            .to_string()
            .into_bytes()
    }
}

/// The running server's notification channels, and the signal that an approval changed (hosts
/// waiting for one look again at once).
pub struct Notifier {
    http: reqwest::Client,
    vapid: webpush::Vapid,
    webhook_secret: Option<Zeroizing<Vec<u8>>>,
    changed: Notify,
}

impl Notifier {
    pub fn new(settings: &Settings, key: &AtRestKey) -> Result<Notifier, PushError> {
        let webhook_secret = match &settings.push.webhook_secret_file {
            Some(file) => {
                let shown = file.display().to_string();
                let raw = Zeroizing::new(std::fs::read(file).map_err(|source| {
                    PushError::WebhookSecret {
                        path: shown.clone(),
                        source,
                    }
                })?);
                let trimmed = raw.trim_ascii().to_vec();
                if trimmed.is_empty() {
                    return Err(PushError::EmptySecret(shown));
                }
                Some(Zeroizing::new(trimmed))
            }
            None => None,
        };
        Ok(Notifier {
            http: client(settings)?,
            vapid: webpush::Vapid::from_seed(&key.derive("jit web push vapid")),
            webhook_secret,
            changed: Notify::new(),
        })
    }

    /// The VAPID public key browsers subscribe with.
    pub fn vapid_public_key(&self) -> String {
        self.vapid.public_key()
    }

    /// Wakes every request waiting for an approval.
    pub fn approvals_changed(&self) {
        self.changed.notify_waiters();
    }

    /// Resolves at the next [`Notifier::approvals_changed`].
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }
}

/// An HTTP client trusting the system's CAs and `push.ca_file`.
fn client(settings: &Settings) -> Result<reqwest::Client, PushError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = &settings.push.ca_file {
        let shown = path.display().to_string();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|i| i.collect::<Result<_, _>>())
            .map_err(|e| PushError::CaFile {
                path: shown.clone(),
                why: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(PushError::CaFile {
                path: shown,
                why: "no PEM certificate in it".into(),
            });
        }
        for c in certs {
            roots.add(c).map_err(|e| PushError::CaFile {
                path: shown.clone(),
                why: e.to_string(),
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PushError::Client(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .timeout(SEND_TIMEOUT)
        .connect_timeout(SEND_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("jit-server/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| PushError::Client(e.to_string()))
}

/// Sends `n` through every configured channel, in the background.
pub fn send(state: &State, n: Notice) {
    let state = state.clone();
    tokio::spawn(async move { deliver(&state, &n).await });
}

/// Who gets a notice: the person a login waits for, or (for a report) every admin with push.
async fn recipients(state: &State, n: &Notice) -> Vec<(String, PushFactorRow)> {
    let found = async {
        let mut conn = state.store.pool().acquire().await?;
        match n.kind {
            NoticeKind::Sent => Ok::<_, crate::store::StoreError>(
                store::factor(&mut conn, n.person_id)
                    .await?
                    .map(|f| (n.person.clone(), f))
                    .into_iter()
                    .collect(),
            ),
            NoticeKind::Reported | NoticeKind::Guessing => store::admins_with_push(&mut conn).await,
        }
    }
    .await;
    found.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read whom to notify");
        Vec::new()
    })
}

async fn deliver(state: &State, n: &Notice) {
    let settings = &state.settings.push;
    let notifier = &state.push;
    for (person, factor) in recipients(state, n).await {
        if let (Some(server), Some(topic)) = (&settings.ntfy_server, &factor.ntfy_topic) {
            let token = factor.ntfy_token.as_ref().and_then(|sealed| {
                state
                    .key
                    .open(sealed, &ntfy_token_aad(factor.person_id))
                    .ok()
            });
            let mut req = notifier
                .http
                .post(server.trim_end_matches('/').to_owned() + "/")
                .json(&ntfy::message(n, topic));
            if let Some(t) = &token {
                req = req.bearer_auth(String::from_utf8_lossy(t));
            }
            report("ntfy", &person, req.send().await);
        }
        if settings.web_push {
            web_push(state, n, &person, factor.person_id).await;
        }
    }
    if let (Some(url), Some(secret)) = (&settings.webhook_url, &notifier.webhook_secret) {
        let body = webhook::body(n, jit_clock::now());
        let sig = webhook::signature(secret, &body);
        let req = notifier
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(webhook::SIGNATURE_HEADER, sig)
            .header(webhook::EVENT_HEADER, n.kind.action())
            .body(body);
        report("webhook", &n.person, req.send().await);
    }
}

async fn web_push(state: &State, n: &Notice, person: &str, person_id: i64) {
    let subs = match state.store.pool().acquire().await {
        Ok(mut conn) => store::subscriptions(&mut conn, person_id)
            .await
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let payload = n.web_push_payload();
    let ttl = (n.expires_at - n.at).max(0);
    for s in subs {
        let body = webpush::Recipient::parse(&s.p256dh, &s.auth)
            .and_then(|to| webpush::encrypt(&payload, &to));
        let auth = state.push.vapid.authorization(
            &s.endpoint,
            &state.settings.push.vapid_contact,
            jit_clock::now() + 12 * 3600,
        );
        let (Ok(body), Ok(auth)) = (body, auth) else {
            tracing::warn!(%person, "a Web Push subscription is unusable; it is forgotten");
            forget(state, &s.endpoint).await;
            continue;
        };
        let sent = state
            .push
            .http
            .post(&s.endpoint)
            .header("Content-Encoding", "aes128gcm")
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header("TTL", ttl.to_string())
            .header("Urgency", "high")
            .header(reqwest::header::AUTHORIZATION, auth)
            .body(body)
            .send()
            .await;
        // The push service forgot this browser (unsubscribed, or the browser was reset).
        if let Ok(r) = &sent
            && matches!(r.status().as_u16(), 404 | 410)
        {
            forget(state, &s.endpoint).await;
        }
        report("web push", person, sent);
    }
}

async fn forget(state: &State, endpoint: &str) {
    if let Ok(mut tx) = state.store.write().await {
        let _ = store::unsubscribe(&mut tx, endpoint).await;
        let _ = tx.commit().await;
    }
}

fn report(channel: &str, person: &str, sent: Result<reqwest::Response, reqwest::Error>) {
    match sent {
        Ok(r) if r.status().is_success() => {
            tracing::info!(channel, %person, "notification sent");
        }
        Ok(r) => tracing::warn!(channel, %person, status = %r.status(), "notification refused"),
        // Without the URL: it may carry a token (a webhook's query string).
        Err(e) => tracing::warn!(channel, %person, error = %e.without_url(), "notification failed"),
    }
}

/// Associated data binding a sealed ntfy token to its person.
pub fn ntfy_token_aad(person_id: i64) -> String {
    format!("ntfy:person:{person_id}")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn notice(kind: NoticeKind) -> Notice {
        Notice {
            kind,
            challenge: "c0ffee".into(),
            person_id: 1,
            person: "alice".into(),
            account: "admin".into(),
            host: "web01".into(),
            service: "ssh".into(),
            rhost: Some("192.0.2.10".into()),
            tty: Some("ssh".into()),
            ruser: None,
            approve_url: "https://jit.example.org/portal/approve/c0ffee".into(),
            at: 1_700_000_000,
            expires_at: 1_700_000_120,
        }
    }

    #[test]
    fn what_a_notice_says() {
        let n = notice(NoticeKind::Sent);
        assert_eq!(n.source(), "(ssh from 192.0.2.10)");
        assert_eq!(
            n.audit_url(),
            "https://jit.example.org/portal/admin/audit?person=alice"
        );
        let su = Notice {
            service: "su".into(),
            rhost: None,
            ruser: Some("bob".into()),
            tty: Some("pts/3".into()),
            ..n.clone()
        };
        assert_eq!(su.source(), "(su by bob on pts/3)");
        let p: serde_json::Value = serde_json::from_slice(&n.web_push_payload()).unwrap();
        assert_eq!(p["url"], n.approve_url);
        assert!(p["body"].as_str().unwrap().contains("192.0.2.10"));
    }

    #[test]
    fn the_guessing_alert_names_who_and_where_and_links_to_the_audit() {
        let n = Notice {
            approve_url: "https://jit.example.org/portal/admin/audit".into(),
            ..notice(NoticeKind::Guessing)
        };
        assert_eq!(n.kind.action(), "login.guessing_alert");
        let p: serde_json::Value = serde_json::from_slice(&n.web_push_payload()).unwrap();
        assert_eq!(p["title"], "Codes guessed: admin on web01");
        assert_eq!(
            p["url"],
            "https://jit.example.org/portal/admin/audit?person=alice"
        );
        let body = p["body"].as_str().unwrap();
        assert!(
            body.contains("alice's reservations")
                && body.contains("(ssh from 192.0.2.10)")
                && body.contains("alice is not locked out"),
            "{body}"
        );
        let m = ntfy::message(&n, "admins-topic");
        assert_eq!(m["click"], p["url"]);
        assert_eq!(m["message"], body);
    }
}
