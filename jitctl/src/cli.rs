//! jitctl's command line, in one place so the man page is generated from it.

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  unexpected failure (server error, unreadable local file)
  2  bad usage
  3  not logged in, unknown credential, or not allowed
  4  not found
  5  conflict: already exists, or reserved by someone else
  6  server unreachable, or not the server that was pinned
  7  the server refused a value
  8  expired or used code/token, locked out after too many wrong codes, or too many requests
  9  the audit log's hash chain is broken (jitctl audit verify)

Credentials live in ~/.config/jit/config.json (mode 0600); JITCTL_CONFIG names another directory.";

#[derive(Parser, Debug)]
#[command(
    name = "jitctl",
    version,
    about = "Reserve shared Linux accounts just in time, and administer jit",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// Print JSON instead of text (errors too, as {"error": {...}}).
    #[arg(long, global = true)]
    pub json: bool,
    /// Seconds to wait for the server.
    #[arg(long, global = true, default_value_t = 15, value_name = "SECS")]
    pub timeout: u64,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Save the server address, pin its CA, and store a token (the first admin: with the
    /// bootstrap token).
    Login(Login),
    /// Forget the stored credential.
    Logout,
    /// Show who the stored credential belongs to.
    Whoami,
    /// Enroll your second factor with a one-time code from an admin (persons).
    Enroll(Enroll),
    /// Reserve a shared account on a host.
    Reserve(Reserve),
    /// Give a reservation back early.
    Release(Release),
    /// Give yourself more time on a reservation, within the account's max-ttl.
    Extend(Extend),
    /// Show your reservations (admins: everybody's), with time left.
    Status(Status),
    /// Show your open sessions on the hosts (admins: everybody's).
    Sessions(SessionsArgs),
    /// Approve a login that waits for you, by typing the number its prompt shows.
    Approve(Approve),
    /// Your second factors: list them, add an authenticator app or push, remove push.
    #[command(subcommand)]
    Factor(FactorCmd),
    /// Register, list and remove your ssh public keys (admins: anyone's).
    #[command(subcommand)]
    Key(KeyCmd),
    /// Manage persons (admin).
    #[command(subcommand)]
    Person(PersonCmd),
    /// Manage groups of persons (admin).
    #[command(subcommand)]
    Group(GroupCmd),
    /// Manage shared accounts (admin).
    #[command(subcommand)]
    Account(AccountCmd),
    /// Manage hosts (admin).
    #[command(subcommand)]
    Host(HostCmd),
    /// Read the audit log (admin).
    Audit(Audit),
    /// List and revoke credentials: person tokens and host credentials (persons: their own).
    #[command(subcommand)]
    Token(TokenCmd),
}

#[derive(Args, Debug)]
pub struct Extend {
    /// Shared account.
    pub account: String,
    /// How much longer, e.g. 10m.
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: String,
    /// Only on this host (default: every host where you hold it).
    #[arg(long)]
    pub host: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// List live credentials: admins see every person token and host credential, persons their
    /// own tokens.
    List,
    /// Revoke a credential by the id `jitctl token list` shows (a revoked host must join again).
    Revoke {
        /// e.g. p-3f2a9c1b0d4e5f60
        id: String,
    },
}

#[derive(Args, Debug)]
pub struct Login {
    /// Server URL, e.g. https://jit.example.com:8443. Repeat it for the replicas of one
    /// service: they are tried in order, going on when one cannot be reached.
    #[arg(long, required = true)]
    pub server: Vec<String>,
    /// The CA fingerprint `jit-server init` printed (SHA256:…).
    #[arg(long)]
    pub ca_fingerprint: String,
    /// A person token, or the one-time bootstrap token `jit-server init` printed (it creates
    /// the admin named by --name). Read from the JITCTL_TOKEN variable or stdin if absent.
    #[arg(long, env = "JITCTL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// With a bootstrap token: the name of the admin it creates (a login-style name).
    #[arg(long, default_value = "admin")]
    pub name: String,
    /// With a bootstrap token: the admin's full name.
    #[arg(long)]
    pub display_name: Option<String>,
}

#[derive(Args, Debug)]
pub struct Enroll {
    /// The one-time enrollment code (from `jitctl person add`).
    pub code: String,
    /// Server URL, e.g. https://jit.example.com:8443. Repeat it for the replicas of one
    /// service: they are tried in order, going on when one cannot be reached.
    #[arg(long, required = true)]
    pub server: Vec<String>,
    /// The CA fingerprint of the server (SHA256:…).
    #[arg(long)]
    pub ca_fingerprint: String,
    /// Do not draw the QR code.
    #[arg(long)]
    pub no_qr: bool,
    /// Enroll push instead of an authenticator app: logins wait for your approval (`jitctl
    /// approve`, or the portal's approval page).
    #[arg(long)]
    pub push: bool,
    /// With --push: your ntfy topic, for notifications on your phone.
    #[arg(long, requires = "push")]
    pub ntfy_topic: Option<String>,
    /// With --ntfy-topic: a file holding the ntfy access token for that topic.
    #[arg(long, requires = "ntfy_topic")]
    pub ntfy_token_file: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
#[command(after_help = "\
With no ID and one login waiting, that one is answered; with several, jitctl lists them and
asks which. The number is asked for on the terminal unless --number gives it. A wrong number
refuses the login. If you did not start the login, answer with --not-me: the login is refused,
your reservation released and the admins alerted.")]
pub struct Approve {
    /// The login to answer, as `jitctl approve --list` shows it.
    pub id: Option<String>,
    /// The two-digit number the login prompt shows.
    #[arg(long, conflicts_with = "not_me")]
    pub number: Option<u8>,
    /// This was not me: refuse the login, release the reservation, alert the admins.
    #[arg(long)]
    pub not_me: bool,
    /// Only list the logins waiting for you.
    #[arg(long, conflicts_with_all = ["number", "not_me", "id"])]
    pub list: bool,
}

#[derive(Subcommand, Debug)]
pub enum FactorCmd {
    /// Show your factors: authenticator app, push (ntfy topic, browsers).
    List,
    /// Add a factor (next to the ones you have).
    #[command(subcommand)]
    Add(FactorAdd),
    /// Remove push (only while you also have an authenticator app).
    Remove {
        #[arg(value_enum)]
        factor: RemovableFactor,
    },
}

#[derive(Subcommand, Debug)]
pub enum FactorAdd {
    /// An authenticator app (TOTP): scan the QR code, then type a code. Replaces an earlier app.
    Totp {
        /// Do not draw the QR code.
        #[arg(long)]
        no_qr: bool,
    },
    /// Push: logins wait for your approval. Run it again to change the ntfy topic.
    Push {
        /// Your ntfy topic, for notifications on your phone (pick one nobody can guess).
        #[arg(long)]
        ntfy_topic: Option<String>,
        /// A file holding the ntfy access token for that topic.
        #[arg(long, requires = "ntfy_topic")]
        ntfy_token_file: Option<std::path::PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RemovableFactor {
    Push,
}

#[derive(Args, Debug)]
pub struct Reserve {
    /// Shared account, e.g. admin
    pub account: String,
    /// Host to reserve it on.
    #[arg(long)]
    pub host: String,
    /// How long, e.g. 5m (default: the account's default).
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: Option<String>,
    /// Why, for the audit log.
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Args, Debug)]
pub struct Release {
    /// Shared account.
    pub account: String,
    /// Only on this host (default: every host where you hold it).
    #[arg(long)]
    pub host: Option<String>,
}

#[derive(Args, Debug)]
pub struct SessionsArgs {
    /// Include closed sessions (the newest 500), with how long each ran and why it ended.
    #[arg(long)]
    pub all: bool,
}

#[derive(Args, Debug)]
pub struct Status {
    /// Include ended reservations.
    #[arg(long)]
    pub all: bool,
}

#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// Register an ssh public key: sshd on jit hosts accepts it for the shared accounts you may
    /// reserve (while someone holds an account on a host, only the holder's keys count there).
    #[command(after_help = "\
With no FILE, the first of ~/.ssh/id_ed25519.pub, id_ed25519_sk.pub, id_ecdsa.pub,
id_ecdsa_sk.pub and id_rsa.pub that exists is used. The file holds one line:
TYPE BASE64 [COMMENT], without authorized_keys options. Accepted types: ssh-ed25519,
ecdsa-sha2-nistp256/384/521, sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com,
ssh-rsa (at least 2048 bits).")]
    Add {
        /// The public key file (e.g. ~/.ssh/id_ed25519.pub), or - for stdin.
        file: Option<std::path::PathBuf>,
        /// Register it for this person (admins only).
        #[arg(long)]
        person: Option<String>,
    },
    /// List your ssh keys (admins: everybody's, or one person's).
    List {
        /// Only this person's keys (admins only).
        #[arg(long)]
        person: Option<String>,
    },
    /// Remove an ssh key; hosts stop accepting it at their next refresh.
    Remove {
        /// The key's ID or its fingerprint (SHA256:…), as `jitctl key list` shows them.
        #[arg(value_name = "ID-OR-FINGERPRINT")]
        key: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum PersonCmd {
    /// Add a person; prints their one-time enrollment code.
    Add {
        /// Login-style name: [a-z_][a-z0-9_-]*, at most 32 bytes (e.g. alice).
        name: String,
        /// Full name shown in lists and the audit log, e.g. "Alice Liddell".
        #[arg(long)]
        display_name: Option<String>,
        /// Give the person the admin role.
        #[arg(long)]
        admin: bool,
    },
    /// Give a person the admin role.
    GrantAdmin { name: String },
    /// Take the admin role away (not from the last admin).
    RevokeAdmin { name: String },
    /// List persons.
    List,
    /// Show one person.
    Show { name: String },
    /// Stop a person from reserving or logging in (ends their reservations).
    Disable { name: String },
    /// Allow a disabled person again.
    Enable { name: String },
    /// Lift a lockout after too many wrong codes (the person keeps their factor).
    Unlock { name: String },
    /// Forget a person's factor and tokens; prints a new enrollment code.
    ResetFactor { name: String },
}

#[derive(Subcommand, Debug)]
pub enum GroupCmd {
    /// Add a group.
    Add { name: String },
    /// List groups with their members.
    List,
    /// Show one group.
    Show { name: String },
    /// Add a person to a group.
    AddMember { group: String, person: String },
    /// Remove a person from a group.
    RemoveMember { group: String, person: String },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FactorPolicy {
    /// Whichever the holder has: push when enrolled (a typed code works too), else a code.
    Any,
    /// A code from an authenticator app only.
    Totp,
    /// Approval with number matching only.
    Push,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Offline {
    /// Deny logins when the server is unreachable (default).
    Deny,
    /// Decide from what the host cached about a reservation it already knew of.
    Cached,
}

#[derive(Args, Debug)]
pub struct AccountAdd {
    /// Account name, e.g. admin
    pub name: String,
    /// The account already exists in the hosts' own files (root); jit only guards logins.
    #[arg(long, conflicts_with_all = ["uid", "gid", "home", "shell", "gecos", "unix_groups"])]
    pub existing: bool,
    /// uid of a virtual account (served by nss_jit).
    #[arg(long, required_unless_present = "existing")]
    pub uid: Option<u32>,
    /// Primary gid of a virtual account.
    #[arg(long, required_unless_present = "existing")]
    pub gid: Option<u32>,
    /// Home directory of a virtual account.
    #[arg(long, required_unless_present = "existing")]
    pub home: Option<String>,
    /// Login shell of a virtual account.
    #[arg(long, required_unless_present = "existing")]
    pub shell: Option<String>,
    /// Full name (GECOS) of a virtual account.
    #[arg(long)]
    pub gecos: Option<String>,
    /// Supplementary Unix group NAME:GID served by nss_jit (repeatable).
    #[arg(long = "unix-group", value_name = "NAME:GID")]
    pub unix_groups: Vec<String>,
    /// Group of persons allowed to reserve it (repeatable, or comma-separated).
    #[arg(long = "group", required = true, value_delimiter = ',')]
    pub groups: Vec<String>,
    /// Default reservation length (default 5m).
    #[arg(long)]
    pub ttl: Option<String>,
    /// Longest reservation allowed (default 5m, or --ttl if that is longer).
    #[arg(long)]
    pub max_ttl: Option<String>,
    /// Host name patterns it exists on, e.g. 'web*' (repeatable, or comma-separated). Give
    /// --hosts or --label, or both.
    #[arg(long = "hosts", value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// Host labels it exists on (repeatable, or comma-separated).
    #[arg(long = "label", value_delimiter = ',')]
    pub labels: Vec<String>,
    /// What hosts do when the server is unreachable.
    #[arg(long, value_enum, default_value_t = Offline::Deny)]
    pub offline: Offline,
    /// The second factor logins must use.
    #[arg(long, value_enum, default_value_t = FactorPolicy::Any)]
    pub factor: FactorPolicy,
    /// When a reservation ends (it runs out, is released or force-released, or its holder is
    /// disabled), hosts end the sessions its login opened, after a one-minute warning on the
    /// session's terminal.
    #[arg(long)]
    pub end_session_at_expiry: bool,
}

#[derive(Args, Debug)]
pub struct AccountSet {
    pub name: String,
    #[arg(long = "group", value_delimiter = ',')]
    pub groups: Option<Vec<String>>,
    #[arg(long)]
    pub ttl: Option<String>,
    #[arg(long)]
    pub max_ttl: Option<String>,
    #[arg(long = "hosts", value_delimiter = ',')]
    pub hosts: Option<Vec<String>>,
    #[arg(long = "label", value_delimiter = ',')]
    pub labels: Option<Vec<String>>,
    #[arg(long, value_enum)]
    pub offline: Option<Offline>,
    /// The second factor logins must use.
    #[arg(long, value_enum)]
    pub factor: Option<FactorPolicy>,
    /// End sessions when their reservation ends (`--end-session-at-expiry=false`: let them
    /// stay open).
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub end_session_at_expiry: Option<bool>,
}

#[derive(Subcommand, Debug)]
pub enum AccountCmd {
    /// Add a shared account.
    Add(Box<AccountAdd>),
    /// List shared accounts.
    List,
    /// Show one shared account.
    Show { name: String },
    /// Change who may reserve it, where it exists, or its durations.
    Set(AccountSet),
    /// Refuse reservations and logins for it.
    Disable { name: String },
    /// Allow it again.
    Enable { name: String },
}

#[derive(Subcommand, Debug)]
pub enum HostCmd {
    /// Add a host; prints a one-time join token for `jitd join`.
    Add {
        name: String,
        /// Label (repeatable, or comma-separated).
        #[arg(long = "label", value_delimiter = ',')]
        labels: Vec<String>,
    },
    /// List hosts.
    List,
    /// Revoke a host's credential and print a new join token.
    Rejoin { name: String },
    /// Refuse a host's calls.
    Disable { name: String },
    /// Allow a host again.
    Enable { name: String },
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Audit {
    #[command(subcommand)]
    pub check: Option<AuditCheck>,
    /// Only events about this person (as actor or subject).
    #[arg(long)]
    pub person: Option<String>,
    /// Only events about this shared account.
    #[arg(long)]
    pub account: Option<String>,
    /// Only events about this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Since when: a duration ago (1h), a time in UTC (2026-11-23 10:00:00, 2026-11-23T10:00:00Z,
    /// or 2026-11-23 for midnight) or Unix seconds.
    #[arg(long)]
    pub since: Option<String>,
    /// Until when (same forms as --since).
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many events (the newest).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Keep printing new events as they are written, one line each (one JSON object per line
    /// with --json, for a SIEM); starts after the newest event unless --since is given.
    #[arg(long)]
    pub follow: bool,
    /// With --follow: seconds between two looks for new events.
    #[arg(long, default_value_t = 2, value_name = "SECS", requires = "follow")]
    pub every: u64,
}

#[derive(Subcommand, Debug)]
pub enum AuditCheck {
    /// Check the audit log's hash chain; name the first row that was changed, deleted or added
    /// behind the server's back (exit code 9).
    Verify,
}

/// The clap command, for man pages and completions.
pub fn command() -> clap::Command {
    Cli::command()
}
