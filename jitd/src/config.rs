//! `jitd.toml`: every option, its documented default, and errors that name the file, line and key.
//!
//! Unknown keys are errors (`deny_unknown_fields`), so a typo never silently keeps a default.
//! Every path jitd touches comes from here, so tests (and unusual hosts) never need /etc or /run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use jit_config::{ConfigError, Span};
use serde::Deserialize;

/// Default location of the configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/jit/jitd.toml";
/// Default prompt for a TOTP code. It names nobody: who holds a reservation is not shown at the
/// login prompt (`jitctl status` is where people see that).
pub const DEFAULT_PROMPT: &str = "Verification code: ";
/// Name of the group nss_jit publishes with every guarded name as a member, which the sshd
/// drop-in matches (`Match Group jit-guarded`).
pub const GUARDED_GROUP: &str = "jit-guarded";
/// Default gid of [`GUARDED_GROUP`]: next to the 60000s that virtual accounts conventionally
/// use, and unused by Debian and RHEL. It must be the same group on no host's /etc/group.
pub const DEFAULT_GUARDED_GID: u32 = 60999;
/// Longest Unix socket path (`sun_path` holds 108 bytes including the NUL).
const MAX_SOCKET_PATH: usize = 107;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Host credential, server URL and host name written by `jitd join` (0600).
    /// Default /etc/jit/host.key.
    pub host_key: PathBuf,
    /// The server's CA certificate captured (and pinned) by `jitd join`. Default /etc/jit/ca.pem.
    pub ca: PathBuf,
    /// The server's replicas (`https://HOST:PORT`, sharing one database and CA), tried in this
    /// order; a call goes on to the next when one cannot be reached. Default []: the server
    /// `jitd join` wrote into the host key.
    pub servers: Vec<String>,
    /// The PAM socket (root only). Default /run/jitd/pam.sock.
    pub socket: PathBuf,
    /// Where the NSS cache is published for nss_jit. Default /run/jitd/nss.cache.
    pub nss_cache: PathBuf,
    /// Persistent state: the copy of the NSS cache that survives a reboot (`nss.cache`), the
    /// ssh keys of the shared accounts (`ssh-keys.json`), the tickets of open sessions
    /// (`tickets.json`), the open sessions and when each ends (`sessions.json`) and the local
    /// audit queue (`audit-queue.jsonl`). Default /var/lib/jitd.
    pub state_dir: PathBuf,
    /// The marker that tells pam_jit this host has joined, and its always-guarded names (written
    /// by `jitd join` and at every start). Default /etc/jit/joined.
    pub joined_marker: PathBuf,
    /// Names refused, with every uid-0 name, while this joined host has no list of its shared
    /// accounts (jitd has not reached the server since it joined and no saved copy exists, or
    /// the copies are lost). Once the list is known, it alone decides. Default ["root"].
    pub always_guarded: Vec<String>,
    /// gid of the `jit-guarded` group that nss_jit publishes: every guarded name is a member, so
    /// sshd's `Match Group jit-guarded` selects the shared accounts. Default 60999.
    pub guarded_gid: u32,
    /// How often the shared accounts are fetched from the server. Default 10s; at most 30s.
    pub refresh_interval: Span,
    /// Bound on each call to the server. Default 5s. Keep it below pam_jit's `timeout=`
    /// (default 10 s), or the module gives up before jitd can answer.
    pub server_timeout: Span,
    /// Prompt shown for a TOTP code. Default "Verification code: ".
    pub prompt: String,
    /// Most PAM connections served at once; more are refused with an error. Default 64.
    /// Connections of ordinary users (behind su or sudo) get half of them at most.
    pub max_connections: usize,
    /// Most connections of one ordinary user (behind su or sudo), and most prompts waiting for
    /// an answer from one source (a user, a remote address, a terminal), at once. Default 4.
    pub max_prompts_per_source: usize,
    /// Bound on each frame from pam_jit while no person is typing. Default 10s.
    pub request_timeout: Span,
    /// Bound on the person's answer to a prompt. Default 60s (for ssh, sshd's LoginGraceTime
    /// bounds it too).
    pub answer_timeout: Span,
    /// How long a push login waits for its approval after the person pressed Enter. Default
    /// 60s; at most 110s, below sshd's LoginGraceTime (120 s by default).
    pub push_wait: Span,
    /// At a local terminal login, draw the approval page's address as a QR code above a push
    /// prompt. Default true.
    pub push_qr: bool,
    pub services: Services,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Services {
    /// PAM services that only show messages at the next prompt (OpenSSH, bug 2876): a denial is
    /// delivered as a prompt ("…\n(press Enter)") before the final refusal. Default ["sshd"].
    pub deny_as_prompt: BTreeSet<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host_key: PathBuf::from("/etc/jit/host.key"),
            ca: PathBuf::from("/etc/jit/ca.pem"),
            servers: Vec::new(),
            socket: PathBuf::from(jit_proto::pam::DEFAULT_SOCKET),
            nss_cache: PathBuf::from(jit_nss_cache::DEFAULT_RUN_PATH),
            state_dir: PathBuf::from("/var/lib/jitd"),
            joined_marker: PathBuf::from(jit_nss_cache::joined::DEFAULT_PATH),
            always_guarded: jit_nss_cache::joined::DEFAULT_ALWAYS_GUARDED
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            guarded_gid: DEFAULT_GUARDED_GID,
            refresh_interval: Span(Duration::from_secs(10)),
            server_timeout: Span(Duration::from_secs(5)),
            prompt: DEFAULT_PROMPT.to_owned(),
            max_connections: 64,
            max_prompts_per_source: 4,
            request_timeout: Span(Duration::from_secs(10)),
            answer_timeout: Span(Duration::from_secs(60)),
            push_wait: Span(Duration::from_secs(60)),
            push_qr: true,
            services: Services::default(),
        }
    }
}

impl Default for Services {
    fn default() -> Self {
        Self {
            deny_as_prompt: BTreeSet::from(["sshd".to_owned()]),
        }
    }
}

impl Config {
    /// Every setting in effect, defaults included, as jitd.toml text (what `check-config` shows;
    /// it parses back to the same settings).
    pub fn effective(&self) -> String {
        let path = |p: &Path| format!("{:?}", p.display().to_string());
        let span = |s: Span| format!("\"{}\"", humantime::format_duration(s.0));
        let services: Vec<String> = self
            .services
            .deny_as_prompt
            .iter()
            .map(|s| format!("{s:?}"))
            .collect();
        let always: Vec<String> = self
            .always_guarded
            .iter()
            .map(|s| format!("{s:?}"))
            .collect();
        let servers: Vec<String> = self.servers.iter().map(|s| format!("{s:?}")).collect();
        format!(
            "host_key = {}\nca = {}\nservers = [{}]\nsocket = {}\nnss_cache = {}\nstate_dir = {}\n\
             joined_marker = {}\nalways_guarded = [{}]\nguarded_gid = {}\n\
             refresh_interval = {}\nserver_timeout = {}\nprompt = {:?}\nmax_connections = {}\n\
             max_prompts_per_source = {}\nrequest_timeout = {}\nanswer_timeout = {}\npush_wait = {}\npush_qr = {}\n\n\
             [services]\ndeny_as_prompt = [{}]\n",
            path(&self.host_key),
            path(&self.ca),
            servers.join(", "),
            path(&self.socket),
            path(&self.nss_cache),
            path(&self.state_dir),
            path(&self.joined_marker),
            always.join(", "),
            self.guarded_gid,
            span(self.refresh_interval),
            span(self.server_timeout),
            self.prompt,
            self.max_connections,
            self.max_prompts_per_source,
            span(self.request_timeout),
            span(self.answer_timeout),
            span(self.push_wait),
            self.push_qr,
            services.join(", ")
        )
    }

    /// Parses jitd.toml text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Config = jit_config::from_toml(text, path)?;
        config
            .validate()
            .map_err(|(key, why)| ConfigError::at_key(path, text, key, &why))?;
        Ok(config)
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::parse(&jit_config::read(path)?, path)
    }

    /// The copy of the NSS cache that survives a reboot.
    pub fn state_cache(&self) -> PathBuf {
        self.state_dir.join("nss.cache")
    }

    /// The local audit queue.
    pub fn audit_queue(&self) -> PathBuf {
        self.state_dir.join("audit-queue.jsonl")
    }

    /// What the joined marker says: the always-guarded names.
    pub fn joined(&self) -> jit_nss_cache::Joined {
        jit_nss_cache::Joined {
            always_guarded: self.always_guarded.clone(),
        }
    }

    /// The ssh public keys of the shared accounts, which `jitd authorized-keys` answers from.
    pub fn ssh_keys(&self) -> PathBuf {
        self.state_dir.join("ssh-keys.json")
    }

    /// The tickets of logins that passed auth, kept so that a session still closes after a
    /// restart.
    pub fn tickets(&self) -> PathBuf {
        self.state_dir.join("tickets.json")
    }

    /// The open sessions, kept so that they are warned and ended across a restart.
    pub fn sessions(&self) -> PathBuf {
        self.state_dir.join("sessions.json")
    }

    /// Checks values toml cannot; the error is (dotted key, what is wrong and what to write).
    fn validate(&self) -> Result<(), (&'static str, String)> {
        for (key, p) in [
            ("host_key", &self.host_key),
            ("ca", &self.ca),
            ("socket", &self.socket),
            ("nss_cache", &self.nss_cache),
            ("state_dir", &self.state_dir),
            ("joined_marker", &self.joined_marker),
        ] {
            if !p.is_absolute() {
                return Err((key, format!("{} must be an absolute path", p.display())));
            }
        }
        if let Some(e) = self
            .servers
            .iter()
            .find_map(|s| jit_client::normalize_server_url(s).err())
        {
            return Err(("servers", e.to_string()));
        }
        if self.socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err((
                "socket",
                format!("longer than {MAX_SOCKET_PATH} bytes, the limit for a Unix socket path"),
            ));
        }
        if self.nss_cache == self.state_cache() {
            return Err(("nss_cache", "must differ from STATE_DIR/nss.cache".into()));
        }
        let secs = |s: Span| s.0.as_secs_f64();
        if !(1.0..=30.0).contains(&secs(self.refresh_interval)) {
            return Err((
                "refresh_interval",
                "must be between 1s and 30s (the NSS cache must follow the server within 30 s)"
                    .into(),
            ));
        }
        if !(0.1..=60.0).contains(&secs(self.server_timeout)) {
            return Err(("server_timeout", "must be between 100ms and 60s".into()));
        }
        if !(1.0..=120.0).contains(&secs(self.request_timeout)) {
            return Err(("request_timeout", "must be between 1s and 120s".into()));
        }
        if !(10.0..=3600.0).contains(&secs(self.answer_timeout)) {
            return Err(("answer_timeout", "must be between 10s and 1h".into()));
        }
        if !(5.0..=110.0).contains(&secs(self.push_wait)) {
            return Err((
                "push_wait",
                "must be between 5s and 110s (below sshd's LoginGraceTime)".into(),
            ));
        }
        if !(1..=4096).contains(&self.max_connections) {
            return Err(("max_connections", "must be between 1 and 4096".into()));
        }
        if !(1..=64).contains(&self.max_prompts_per_source) {
            return Err(("max_prompts_per_source", "must be between 1 and 64".into()));
        }
        if self.prompt.trim().is_empty()
            || self.prompt.len() > 200
            || self.prompt.chars().any(char::is_control)
        {
            return Err((
                "prompt",
                "must be 1 to 200 characters of text without control characters".into(),
            ));
        }
        if let Some(bad) = self
            .always_guarded
            .iter()
            .find(|n| jit_proto::AccountName::new(n).is_err())
        {
            return Err((
                "always_guarded",
                format!("{bad:?} is not an account name (lowercase letters, digits, '_', '-')"),
            ));
        }
        if self.guarded_gid == 0 || self.guarded_gid >= 0xffff_fffe {
            return Err((
                "guarded_gid",
                "must be a gid of its own, between 1 and 4294967293".into(),
            ));
        }
        if let Some(bad) = self
            .services
            .deny_as_prompt
            .iter()
            .find(|s| s.is_empty() || s.contains(char::is_whitespace))
        {
            return Err((
                "services.deny_as_prompt",
                format!("{bad:?} is not a PAM service name"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<Config, String> {
        Config::parse(t, Path::new("/etc/jit/jitd.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn empty_file_gives_documented_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.socket, PathBuf::from("/run/jitd/pam.sock"));
        assert_eq!(c.nss_cache, PathBuf::from("/run/jitd/nss.cache"));
        assert_eq!(c.state_cache(), PathBuf::from("/var/lib/jitd/nss.cache"));
        assert_eq!(c.refresh_interval.0, Duration::from_secs(10));
        assert_eq!(c.server_timeout.0, Duration::from_secs(5));
        assert_eq!(c.prompt, "Verification code: ");
        assert!(c.services.deny_as_prompt.contains("sshd"));
        assert_eq!(c.joined_marker, PathBuf::from("/etc/jit/joined"));
        assert_eq!(c.always_guarded, ["root"]);
        assert_eq!(c.guarded_gid, 60999);
        // A prompt left open holds its slot for at most a minute.
        assert_eq!(c.answer_timeout.0, Duration::from_secs(60));
        assert_eq!(c.max_prompts_per_source, 4);
    }

    #[test]
    fn every_option_can_be_set() {
        let c = parse(
            "host_key = \"/t/host.key\"\nca = \"/t/ca.pem\"\nsocket = \"/t/pam.sock\"\n\
             nss_cache = \"/t/run/nss.cache\"\nstate_dir = \"/t/state\"\n\
             refresh_interval = \"1s\"\nserver_timeout = \"2s\"\nprompt = \"Code: \"\n\
             max_connections = 8\nmax_prompts_per_source = 2\nrequest_timeout = \"3s\"\n\
             answer_timeout = \"30s\"\n\
             joined_marker = \"/t/joined\"\nalways_guarded = [\"root\", \"deploy\"]\n\
             guarded_gid = 4242\n\
             [services]\ndeny_as_prompt = []\n",
        )
        .unwrap();
        assert_eq!(c.state_cache(), PathBuf::from("/t/state/nss.cache"));
        assert_eq!(c.audit_queue(), PathBuf::from("/t/state/audit-queue.jsonl"));
        assert_eq!(c.refresh_interval.0, Duration::from_secs(1));
        assert_eq!(c.prompt, "Code: ");
        assert!(c.services.deny_as_prompt.is_empty());
        assert_eq!(c.always_guarded, ["root", "deploy"]);
        assert_eq!(c.guarded_gid, 4242);
        assert_eq!(c.joined_marker, PathBuf::from("/t/joined"));
        assert_eq!((c.max_connections, c.max_prompts_per_source), (8, 2));
        assert_eq!(c.answer_timeout.0, Duration::from_secs(30));
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = parse("prompt = \"Code: \"\n\n[services]\ndeny_as_promt = []\n").unwrap_err();
        assert!(err.starts_with("/etc/jit/jitd.toml: line 4"), "{err}");
        assert!(err.contains("deny_as_promt"), "{err}");
        let err = parse("refresh = \"5s\"\n").unwrap_err();
        assert!(err.contains("line 1") && err.contains("refresh"), "{err}");
    }

    #[test]
    fn bad_values_name_line_and_key() {
        let cases = [
            (
                "refresh_interval = \"soon\"\n",
                "line 1",
                "\"soon\" is not a duration",
            ),
            (
                "\nrefresh_interval = \"1m\"\n",
                "line 2, refresh_interval",
                "between 1s and 30s",
            ),
            ("socket = \"pam.sock\"\n", "line 1, socket", "absolute path"),
            (
                "max_connections = 0\n",
                "line 1, max_connections",
                "between 1 and 4096",
            ),
            ("max_connections = -1\n", "line 1", "max_connections"),
            ("prompt = \"\"\n", "line 1, prompt", "1 to 200 characters"),
            (
                "prompt = \"a\\nb\"\n",
                "line 1, prompt",
                "control characters",
            ),
            ("server_timeout = \"2m\"\n", "line 1, server_timeout", "60s"),
            (
                "always_guarded = [\"Root\"]\n",
                "line 1, always_guarded",
                "not an account name",
            ),
            (
                "guarded_gid = 0\n",
                "line 1, guarded_gid",
                "a gid of its own",
            ),
            (
                "joined_marker = \"joined\"\n",
                "line 1, joined_marker",
                "absolute",
            ),
            (
                "[services]\ndeny_as_prompt = [\"\"]\n",
                "line 2, services.deny_as_prompt",
                "not a PAM",
            ),
            (
                "[services]\ndeny_as_prompt = \"sshd\"\n",
                "line 2",
                "sequence",
            ),
        ];
        for (text, line, why) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(line) && err.contains(why), "{text:?}: {err}");
        }
        let long = format!("socket = \"/{}\"\n", "s".repeat(120));
        assert!(parse(&long).unwrap_err().contains("longer than 107 bytes"));
    }

    #[test]
    fn effective_settings_read_as_toml_and_parse_back_the_same() {
        let c =
            parse("refresh_interval = \"3s\"\n[services]\ndeny_as_prompt = [\"sshd\", \"x\"]\n")
                .unwrap();
        let text = c.effective();
        assert!(text.contains("refresh_interval = \"3s\""), "{text}");
        assert!(text.contains("socket = \"/run/jitd/pam.sock\""), "{text}");
        assert_eq!(parse(&text).unwrap(), c, "{text}");
    }
}
