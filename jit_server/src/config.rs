//! `server.toml`: every option, its default, and errors that name the file, line and key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use jit_config::{ConfigError, Span};
use serde::Deserialize;

/// Default location of the configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/jit/server.toml";
/// Default data directory (database, TLS material, at-rest key).
pub const DEFAULT_DATA_DIR: &str = "/var/lib/jit-server";
/// Default listen address.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8443";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Holds jit.db, tls/ and at-rest.key. Default /var/lib/jit-server.
    pub data_dir: PathBuf,
    /// Address to listen on. Default 0.0.0.0:8443.
    pub listen: SocketAddr,
    /// URL hosts use to reach this server, written into join tokens. Default: the URL the admin
    /// used (from the request's Host header).
    pub public_url: Option<String>,
    /// Database URL. Default: sqlite://DATA_DIR/jit.db.
    pub database_url: Option<String>,
    /// Issuer name shown in authenticator apps. Default "jit".
    pub issuer: String,
    /// Largest request body accepted, in bytes. Default 65536.
    pub max_body_bytes: usize,
    pub totp: TotpSettings,
    pub lockout: LockoutSettings,
    pub guessing: GuessingSettings,
    pub enrollment: EnrollmentSettings,
    pub hosts: HostSettings,
    pub logins: LoginSettings,
    pub connections: ConnectionSettings,
    pub rate_limits: RateLimitSettings,
    pub tokens: TokenSettings,
    pub portal: PortalSettings,
    pub push: PushSettings,
}

/// Push approval with number matching (docs/push.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushSettings {
    /// At most one push per person and account this often; inside it a login is asked for a
    /// TOTP code instead. Default 60s.
    pub rate_limit: Span,
    /// A push not answered within this is expired. Default 2m.
    pub challenge_ttl: Span,
    /// An ntfy server (https://ntfy.sh, or your own): notifications go to each person's own
    /// topic there. Default: none.
    pub ntfy_server: Option<String>,
    /// A URL each push event is POSTed to as JSON, signed with HMAC-SHA256, for chat bridges
    /// and scripts. Default: none.
    pub webhook_url: Option<String>,
    /// The file holding the webhook's shared secret. Needed with `webhook_url`.
    pub webhook_secret_file: Option<PathBuf>,
    /// Web Push to browsers where a person turned notifications on in the portal. Default true.
    pub web_push: bool,
    /// Who runs this server, for push services (VAPID `sub`): a mailto: or https: URL.
    /// Default "mailto:root@localhost".
    pub vapid_contact: String,
    /// CA certificates (PEM) trusted for notification servers besides the system's (an internal
    /// ntfy server or webhook receiver with a company CA). Default: none.
    pub ca_file: Option<PathBuf>,
}

impl Default for PushSettings {
    fn default() -> Self {
        Self {
            rate_limit: Span(Duration::from_secs(60)),
            challenge_ttl: Span(Duration::from_secs(120)),
            ntfy_server: None,
            webhook_url: None,
            webhook_secret_file: None,
            web_push: true,
            vapid_contact: "mailto:root@localhost".into(),
            ca_file: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSettings {
    /// A person token (jitctl's credential) lapses after this long unused; every use starts it
    /// again. Default 90d.
    pub person_ttl: Span,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            person_ttl: Span(Duration::from_secs(90 * 86_400)),
        }
    }
}

/// The web portal (docs/portal.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalSettings {
    /// Serve the portal at /portal/ on the main listener. Default true.
    pub enabled: bool,
    /// The address people open, e.g. https://jit.example.org (behind a reverse proxy: the
    /// proxy's address). Browsers' requests must come from this origin, and passkeys are bound
    /// to its host name. Default: the address the browser used (its Host header).
    pub public_url: Option<String>,
    /// A listener of its own for the portal, with a certificate browsers trust (a company CA,
    /// or ACME); needs `cert` and `key`. Default: none.
    pub listen: Option<SocketAddr>,
    /// PEM certificate chain for `listen`. Re-read when the file changes (ACME renewals).
    pub cert: Option<PathBuf>,
    /// PEM private key for `listen`.
    pub key: Option<PathBuf>,
    /// Signed out after this long without a request. Default 15m.
    pub idle_timeout: Span,
    /// Signed out this long after signing in, however busy. Default 8h.
    pub session_lifetime: Span,
}

impl Default for PortalSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            public_url: None,
            listen: None,
            cert: None,
            key: None,
            idle_timeout: Span(Duration::from_secs(15 * 60)),
            session_lifetime: Span(Duration::from_secs(8 * 3600)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TotpSettings {
    /// Steps of clock skew accepted either side of now. Default 1 (±30 s).
    pub skew_steps: u8,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutSettings {
    /// Wrong codes within `window` that lock a person out. Default 5.
    pub max_failures: u32,
    /// Default 15m.
    pub window: Span,
    /// How long a lockout lasts. Default 15m.
    pub duration: Span,
}

/// Wrong login codes: they hold back the source they came from (the local user behind su, the
/// remote address behind ssh, the console's terminal) on that host, never the holder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuessingSettings {
    /// Wrong codes one source may type on one host before it has to wait. Default 3.
    pub free_failures: u32,
    /// The first wait; it doubles with each further wrong code. Default 1m.
    pub first_delay: Span,
    /// The longest wait: past it, one guess per `max_delay` from a source. Default 20m.
    pub max_delay: Span,
    /// How long a wrong code counts. Default 24h.
    pub window: Span,
    /// Wrong codes for one person within `window`, from all sources together, that are audited
    /// as `login.guessing_alert` and sent to the admins (again at each further multiple).
    /// Default 10.
    pub alert_failures: u32,
}

impl Default for GuessingSettings {
    fn default() -> Self {
        Self {
            free_failures: 3,
            first_delay: Span(Duration::from_secs(60)),
            max_delay: Span(Duration::from_secs(20 * 60)),
            window: Span(Duration::from_secs(24 * 3600)),
            alert_failures: 10,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrollmentSettings {
    /// How long an enrollment code stays valid. Default 24h.
    pub code_ttl: Span,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostSettings {
    /// How long a host join token stays valid. Default 24h.
    pub join_ttl: Span,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginSettings {
    /// How long a person has to type a code after the prompt appears. Default 5m.
    pub attempt_ttl: Span,
}

/// Bounds on client connections, so that clients that connect and then say nothing (or too
/// little, too slowly) cannot hold the server's connection slots.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionSettings {
    /// Time for a client to complete the TLS handshake. Default 10s.
    pub handshake_timeout: Span,
    /// Time for the first request's headers to arrive after the handshake. Default 10s. It is
    /// also how long a connection that was asked to close gets to finish its last answer.
    pub header_timeout: Span,
    /// How long a connection may sit with no request in progress (between keep-alive requests,
    /// HTTP/1.1 or HTTP/2) before the server closes it. Default 60s.
    pub idle_timeout: Span,
    /// Longest time one request may take, body upload included. Default 60s.
    pub request_timeout: Span,
    /// Connections served at once; more are refused. Default 1024.
    pub max_connections: usize,
}

/// Limits on the calls anyone can make without a credential (join, enrollment start and
/// confirm): per client address and per name (the host joining, the person enrolling), token
/// buckets in memory; an empty bucket answers 429 with Retry-After.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    /// Calls one address may make at once. Default 60.
    pub per_address_burst: u32,
    /// Calls per minute an address gets back. Default 60.
    pub per_address_per_minute: u32,
    /// Calls about one host or person at once, from all addresses. Default 10.
    pub per_name_burst: u32,
    /// Calls per minute a name gets back. Default 10.
    pub per_name_per_minute: u32,
    /// Addresses (and names) tracked at most; past it, the longest idle are forgotten.
    /// Default 10000.
    pub max_tracked: usize,
    /// Refused joins are written to the audit as one row per this window. Default 60s.
    pub refused_join_window: Span,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            per_address_burst: 60,
            per_address_per_minute: 60,
            per_name_burst: 10,
            per_name_per_minute: 10,
            max_tracked: 10_000,
            refused_join_window: Span(Duration::from_secs(60)),
        }
    }
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            handshake_timeout: Span(Duration::from_secs(10)),
            header_timeout: Span(Duration::from_secs(10)),
            idle_timeout: Span(Duration::from_secs(60)),
            request_timeout: Span(Duration::from_secs(60)),
            max_connections: 1024,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 8443))),
            public_url: None,
            database_url: None,
            issuer: "jit".into(),
            max_body_bytes: 64 * 1024,
            totp: TotpSettings::default(),
            lockout: LockoutSettings::default(),
            guessing: GuessingSettings::default(),
            enrollment: EnrollmentSettings::default(),
            hosts: HostSettings::default(),
            logins: LoginSettings::default(),
            connections: ConnectionSettings::default(),
            rate_limits: RateLimitSettings::default(),
            tokens: TokenSettings::default(),
            portal: PortalSettings::default(),
            push: PushSettings::default(),
        }
    }
}

impl Default for TotpSettings {
    fn default() -> Self {
        Self { skew_steps: 1 }
    }
}

impl Default for LockoutSettings {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Span(Duration::from_secs(15 * 60)),
            duration: Span(Duration::from_secs(15 * 60)),
        }
    }
}

impl Default for EnrollmentSettings {
    fn default() -> Self {
        Self {
            code_ttl: Span(Duration::from_secs(24 * 3600)),
        }
    }
}

impl Default for HostSettings {
    fn default() -> Self {
        Self {
            join_ttl: Span(Duration::from_secs(24 * 3600)),
        }
    }
}

impl Default for LoginSettings {
    fn default() -> Self {
        Self {
            attempt_ttl: Span(Duration::from_secs(5 * 60)),
        }
    }
}

impl Settings {
    /// Parses server.toml text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let settings: Settings = jit_config::from_toml(text, path)?;
        settings
            .validate()
            .map_err(|message| ConfigError::invalid(path, message))?;
        Ok(settings)
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::parse(&jit_config::read(path)?, path)
    }

    fn validate(&self) -> Result<(), String> {
        if self.totp.skew_steps > 2 {
            return Err("totp.skew_steps: at most 2 (each step widens the window by 30 s)".into());
        }
        if self.lockout.max_failures == 0 {
            return Err("lockout.max_failures: must be at least 1".into());
        }
        let g = &self.guessing;
        if g.alert_failures == 0 {
            return Err("guessing.alert_failures: must be at least 1".into());
        }
        if g.max_delay.secs() < g.first_delay.secs() {
            return Err("guessing.max_delay: must be at least guessing.first_delay".into());
        }
        // A wait longer than the window would be forgotten before it ran out.
        if g.window.secs() < g.max_delay.secs() {
            return Err("guessing.window: must be at least guessing.max_delay".into());
        }
        if !(1024..=1024 * 1024).contains(&self.max_body_bytes) {
            return Err("max_body_bytes: must be between 1024 and 1048576".into());
        }
        if self.logins.attempt_ttl.secs() < 30 {
            return Err("logins.attempt_ttl: must be at least 30s".into());
        }
        // A zero here would switch a protection off without saying so (a lockout that lasts no
        // time, codes that expire as they are issued).
        for (key, span, min) in [
            ("lockout.window", self.lockout.window, 60),
            ("lockout.duration", self.lockout.duration, 60),
            ("guessing.first_delay", self.guessing.first_delay, 1),
            ("guessing.max_delay", self.guessing.max_delay, 1),
            ("guessing.window", self.guessing.window, 60),
            ("enrollment.code_ttl", self.enrollment.code_ttl, 60),
            ("hosts.join_ttl", self.hosts.join_ttl, 60),
        ] {
            if span.secs() < min {
                return Err(format!("{key}: must be at least {min}s"));
            }
        }
        if let Some(url) = &self.database_url
            && crate::store::Backend::of_url(url).is_none()
        {
            // The URL may hold a password: name the scheme only.
            let scheme = url.split_once(':').map_or("", |(s, _)| s);
            return Err(format!(
                "database_url: the scheme {scheme:?} is not supported; use sqlite://PATH (or \
                 leave database_url out for DATA_DIR/jit.db) or postgres://USER@HOST/DATABASE"
            ));
        }
        let c = &self.connections;
        for (key, span) in [
            ("handshake_timeout", c.handshake_timeout),
            ("header_timeout", c.header_timeout),
            ("idle_timeout", c.idle_timeout),
            ("request_timeout", c.request_timeout),
        ] {
            if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&span.0) {
                return Err(format!("connections.{key}: must be between 1s and 1h"));
            }
        }
        if !(1..=65536).contains(&c.max_connections) {
            return Err("connections.max_connections: must be between 1 and 65536".into());
        }
        let r = &self.rate_limits;
        for (key, v) in [
            ("per_address_burst", r.per_address_burst),
            ("per_address_per_minute", r.per_address_per_minute),
            ("per_name_burst", r.per_name_burst),
            ("per_name_per_minute", r.per_name_per_minute),
        ] {
            if !(1..=1_000_000).contains(&v) {
                return Err(format!("rate_limits.{key}: must be between 1 and 1000000"));
            }
        }
        if !(100..=1_000_000).contains(&r.max_tracked) {
            return Err("rate_limits.max_tracked: must be between 100 and 1000000".into());
        }
        if !(Duration::from_secs(10)..=Duration::from_secs(3600)).contains(&r.refused_join_window.0)
        {
            return Err("rate_limits.refused_join_window: must be between 10s and 1h".into());
        }
        if let Some(url) = &self.public_url
            && !url.starts_with("https://")
        {
            return Err(format!("public_url: {url:?} must start with https://"));
        }
        self.validate_portal()?;
        self.validate_push()
    }

    fn validate_push(&self) -> Result<(), String> {
        let p = &self.push;
        if !(10..=3600).contains(&p.rate_limit.secs()) {
            return Err("push.rate_limit: must be between 10s and 1h".into());
        }
        if !(30..=600).contains(&p.challenge_ttl.secs()) {
            return Err("push.challenge_ttl: must be between 30s and 10m".into());
        }
        let web = |key: &str, url: &str| -> Result<(), String> {
            let ok = (url.starts_with("https://") || url.starts_with("http://"))
                && url.len() > "https://".len()
                && !url.chars().any(|c| c.is_whitespace() || c.is_control());
            if ok {
                Ok(())
            } else {
                Err(format!("{key}: {url:?} is not an http(s):// address"))
            }
        };
        if let Some(n) = &p.ntfy_server {
            web("push.ntfy_server", n)?;
        }
        if let Some(w) = &p.webhook_url {
            web("push.webhook_url", w)?;
        }
        if p.webhook_url.is_some() != p.webhook_secret_file.is_some() {
            return Err(
                "push.webhook_url and push.webhook_secret_file go together: the webhook's body \
                 is signed with the secret in that file"
                    .into(),
            );
        }
        let c = &p.vapid_contact;
        if !(c.starts_with("mailto:") || c.starts_with("https://")) {
            return Err(format!(
                "push.vapid_contact: {c:?} must be a mailto: or https: address"
            ));
        }
        Ok(())
    }

    fn validate_portal(&self) -> Result<(), String> {
        let p = &self.portal;
        if self.tokens.person_ttl.secs() < 3600 {
            return Err("tokens.person_ttl: must be at least 1h".into());
        }
        if let Some(url) = &p.public_url
            && crate::portal::origin::Origin::parse(url).is_none()
        {
            return Err(format!(
                "portal.public_url: {url:?} is not an https:// address with a host name and \
                 no path, e.g. https://jit.example.org"
            ));
        }
        match (p.listen, &p.cert, &p.key) {
            (None, None, None) | (Some(_), Some(_), Some(_)) => {}
            _ => {
                return Err(
                    "portal.listen, portal.cert and portal.key go together: a listener \
                            of its own needs a certificate and its key"
                        .into(),
                );
            }
        }
        if p.idle_timeout.secs() < 60 || p.idle_timeout.secs() > 86_400 {
            return Err("portal.idle_timeout: must be between 1m and 24h".into());
        }
        if p.session_lifetime.secs() < p.idle_timeout.secs()
            || p.session_lifetime.secs() > 30 * 86_400
        {
            return Err(
                "portal.session_lifetime: must be at least portal.idle_timeout and at most 30d"
                    .into(),
            );
        }
        Ok(())
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("jit.db").display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<Settings, String> {
        Settings::parse(t, Path::new("/etc/jit/server.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn empty_file_gives_documented_defaults() {
        let s = parse("").unwrap();
        assert_eq!(s.listen.to_string(), "0.0.0.0:8443");
        assert_eq!(s.lockout.max_failures, 5);
        assert_eq!(s.lockout.window.secs(), 900);
        assert_eq!(s.guessing.free_failures, 3);
        assert_eq!(s.guessing.first_delay.secs(), 60);
        assert_eq!(s.guessing.max_delay.secs(), 1200);
        assert_eq!(s.guessing.window.secs(), 86400);
        assert_eq!(s.guessing.alert_failures, 10);
        assert_eq!(s.totp.skew_steps, 1);
        assert_eq!(
            s.database_url(),
            "sqlite:///var/lib/jit-server/jit.db?mode=rwc"
        );
    }

    #[test]
    fn rate_limits_are_read_and_bounded() {
        let s = parse("").unwrap();
        assert_eq!(s.rate_limits.per_address_burst, 60);
        assert_eq!(s.rate_limits.refused_join_window.secs(), 60);
        let s = parse("[rate_limits]\nper_name_burst = 3\nrefused_join_window = \"5m\"\n").unwrap();
        assert_eq!(s.rate_limits.per_name_burst, 3);
        assert_eq!(s.rate_limits.refused_join_window.secs(), 300);
        let err = parse("[rate_limits]\nper_address_burst = 0\n").unwrap_err();
        assert!(err.contains("rate_limits.per_address_burst"), "{err}");
        let err = parse("[rate_limits]\nrefused_join_window = \"1s\"\n").unwrap_err();
        assert!(err.contains("rate_limits.refused_join_window"), "{err}");
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = parse("listen = \"127.0.0.1:9000\"\n\n[lockout]\nmax_fails = 3\n").unwrap_err();
        assert!(err.starts_with("/etc/jit/server.toml: line 4"), "{err}");
        assert!(err.contains("max_fails"), "{err}");
    }

    #[test]
    fn bad_values_are_named() {
        let err = parse("[lockout]\nwindow = \"soon\"\n").unwrap_err();
        assert!(
            err.contains("line 2") && err.contains("\"soon\" is not a duration"),
            "{err}"
        );
        let err = parse("listen = \"nowhere\"\n").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
        let err = parse("public_url = \"http://x\"\n").unwrap_err();
        assert!(err.contains("public_url"), "{err}");
        let err = parse("[totp]\nskew_steps = 9\n").unwrap_err();
        assert!(err.contains("totp.skew_steps"), "{err}");
        let err = parse("[connections]\nidle_timeout = \"0s\"\n").unwrap_err();
        assert!(err.contains("connections.idle_timeout"), "{err}");
        let err = parse("[connections]\nidle = \"5s\"\n").unwrap_err();
        assert!(err.contains("line 2") && err.contains("idle"), "{err}");
    }

    #[test]
    fn push_has_defaults_and_checks_its_values() {
        let s = parse("").unwrap();
        assert_eq!(s.push.rate_limit.secs(), 60);
        assert_eq!(s.push.challenge_ttl.secs(), 120);
        assert!(s.push.ntfy_server.is_none() && s.push.webhook_url.is_none() && s.push.web_push);
        let s = parse(
            "[push]\nrate_limit = \"2m\"\nntfy_server = \"https://ntfy.example.org\"\n\
             webhook_url = \"https://chat.example.org/hook\"\n\
             webhook_secret_file = \"/etc/jit/webhook.secret\"\n",
        )
        .unwrap();
        assert_eq!(s.push.rate_limit.secs(), 120);
        assert_eq!(s.push.ntfy_server.unwrap(), "https://ntfy.example.org");
        for (text, key) in [
            ("[push]\nrate_limit = \"0s\"\n", "push.rate_limit"),
            ("[push]\nchallenge_ttl = \"1h\"\n", "push.challenge_ttl"),
            ("[push]\nntfy_server = \"ntfy.sh\"\n", "push.ntfy_server"),
            ("[push]\nvapid_contact = \"me\"\n", "push.vapid_contact"),
            (
                "[push]\nwebhook_url = \"https://x.example\"\n",
                "webhook_secret_file",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn connection_bounds_have_defaults_and_can_be_set() {
        let s = parse("").unwrap();
        let c = &s.connections;
        assert_eq!(
            (
                c.handshake_timeout.secs(),
                c.header_timeout.secs(),
                c.idle_timeout.secs(),
                c.request_timeout.secs(),
                c.max_connections
            ),
            (10, 10, 60, 60, 1024)
        );
        let s = parse(
            "[connections]\nhandshake_timeout = \"1s\"\nheader_timeout = \"1s\"\n\
             idle_timeout = \"2s\"\nrequest_timeout = \"5s\"\nmax_connections = 8\n",
        )
        .unwrap();
        assert_eq!(s.connections.idle_timeout.secs(), 2);
        assert_eq!(s.connections.max_connections, 8);
    }

    #[test]
    fn values_that_would_switch_a_protection_off_are_refused() {
        for (text, key) in [
            ("[lockout]\nwindow = \"0s\"\n", "lockout.window"),
            ("[lockout]\nduration = \"0s\"\n", "lockout.duration"),
            ("[enrollment]\ncode_ttl = \"0s\"\n", "enrollment.code_ttl"),
            ("[hosts]\njoin_ttl = \"10s\"\n", "hosts.join_ttl"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(
                err.contains(key) && err.contains("at least 60s"),
                "{text}: {err}"
            );
        }
        let err = parse("database_url = \"mysql://u:hunter2@x/jit\"\n").unwrap_err();
        assert!(
            err.contains("database_url")
                && err.contains("\"mysql\"")
                && err.contains("postgres://"),
            "{err}"
        );
        assert!(
            !err.contains("hunter2"),
            "the password is not repeated: {err}"
        );
        assert!(parse("database_url = \"sqlite:///tmp/x.db\"\n").is_ok());
        assert!(parse("database_url = \"postgres://jit@db.example.org/jit\"\n").is_ok());
        assert!(parse("database_url = \"postgresql:///jit?host=/run/postgresql\"\n").is_ok());
    }

    #[test]
    fn guessing_limits_that_would_switch_the_delays_off_are_refused() {
        for (text, key) in [
            (
                "[guessing]\nalert_failures = 0\n",
                "guessing.alert_failures",
            ),
            ("[guessing]\nfirst_delay = \"0s\"\n", "guessing.first_delay"),
            ("[guessing]\nmax_delay = \"30s\"\n", "guessing.max_delay"),
            ("[guessing]\nwindow = \"10m\"\n", "guessing.window"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(key), "{text}: {err}");
        }
        let s = parse("[guessing]\nfree_failures = 0\nmax_delay = \"1h\"\n").unwrap();
        assert_eq!(
            (s.guessing.free_failures, s.guessing.max_delay.secs()),
            (0, 3600)
        );
    }
}
