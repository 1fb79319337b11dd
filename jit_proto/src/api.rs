//! JSON bodies of the server's HTTPS API. Paths and who may call them are in docs/api.md.
//!
//! Request bodies refuse unknown fields, so a typo in a script is an error rather than a silently
//! ignored option. Times are Unix seconds (UTC); durations are seconds.

use serde::{Deserialize, Serialize};

use crate::name::{AccountName, GroupName, HostName, Label, PersonName};
use crate::secret::Secret;

/// Prefix of every API path.
pub const API_PREFIX: &str = "/v1";

// ---------------------------------------------------------------------------------------------
// Errors

/// Body of every 4xx/5xx answer: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// What was wrong and what to do next, for a person to read.
    pub message: String,
    /// For `reservation_taken`: when the current reservation ends. For `locked_out`: when the
    /// lockout ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed JSON, unknown field, invalid name or value (400).
    BadRequest,
    /// Missing, unknown or revoked credential (401).
    Unauthorized,
    /// The credential is valid but may not do this (403).
    Forbidden,
    /// No such person, group, account, host or reservation (404).
    NotFound,
    /// It already exists (409).
    AlreadyExists,
    /// Somebody else holds the account on that host (409).
    ReservationTaken,
    /// The person, account or host is disabled, or not allowed here (403).
    NotAllowed,
    /// Too many failed codes; wait until `until` (429).
    LockedOut,
    /// An enrollment code or join token that has expired or was already used (410).
    Expired,
    /// Body over the size limit (413).
    PayloadTooLarge,
    /// Too many requests from this address or about this name; wait `Retry-After` seconds
    /// (429).
    RateLimited,
    /// A bug or a storage failure on the server (500). The server log has the details.
    Internal,
}

impl ErrorCode {
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden | ErrorCode::NotAllowed => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::AlreadyExists | ErrorCode::ReservationTaken => 409,
            ErrorCode::Expired => 410,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::LockedOut | ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Identity

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallerKind {
    Admin,
    Person,
    Host,
}

/// `GET /v1/whoami`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    pub kind: CallerKind,
    /// Person or host name; `admin` for the admin token.
    pub name: String,
}

// ---------------------------------------------------------------------------------------------
// Persons

/// `POST /v1/persons` (admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPerson {
    pub name: PersonName,
    #[serde(default)]
    pub display_name: Option<String>,
    /// Give the person the admin role.
    #[serde(default)]
    pub admin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub name: PersonName,
    pub display_name: Option<String>,
    pub active: bool,
    /// True once the person confirmed a TOTP factor.
    pub enrolled: bool,
    pub groups: Vec<GroupName>,
    /// Set while the person is locked out after too many wrong codes.
    pub locked_until: Option<i64>,
    pub created_at: i64,
    /// True for a person with the admin role.
    #[serde(default)]
    pub admin: bool,
    /// True once the person enrolled push (logins wait for their approval).
    #[serde(default)]
    pub push: bool,
}

/// `POST /v1/persons/{name}/admin` (admin): grant or withdraw the admin role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminRole {
    pub admin: bool,
}

/// `POST /v1/bootstrap`, with the one-time token `jit-server init` or `jit-server admin-token`
/// printed as the credential: creates the named admin (or gives an existing person the admin
/// role, to recover from lost admins) and spends the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bootstrap {
    pub name: PersonName,
    #[serde(default)]
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bootstrapped {
    pub person: PersonName,
    /// False when the person existed and was given the admin role.
    pub created: bool,
    /// The admin's token for jitctl. The server keeps only its hash.
    pub token: Secret,
    /// One-time code for the admin's own factor (`jitctl enroll`, or the portal's enroll
    /// page); absent when the person already has one.
    pub enrollment_code: Option<String>,
    pub enrollment_expires_at: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// Credentials (person tokens and host credentials)

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// A person's jitctl token.
    Person,
    /// A host's credential (from `jitd join`).
    Host,
}

/// One live credential (never the secret itself). `GET /v1/tokens`: admins see all, persons
/// their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Stable id for `jitctl token revoke`: `p-` or `h-` and the start of the stored hash.
    pub id: String,
    pub kind: CredentialKind,
    /// The person's or host's name.
    pub owner: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// When a person token lapses unless used before (host credentials do not lapse).
    pub expires_at: Option<i64>,
    /// True for a person token past its end (listed so that it can be seen and revoked).
    #[serde(default)]
    pub expired: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub tokens: Vec<TokenInfo>,
    pub now: i64,
}

/// Answer to `POST /v1/persons` and `POST /v1/persons/{name}/reset-factor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentIssued {
    pub person: PersonName,
    /// One-time code the person passes to `jitctl enroll`.
    pub enrollment_code: String,
    pub enrollment_expires_at: i64,
}

// ---------------------------------------------------------------------------------------------
// Groups

/// `POST /v1/groups` (admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    pub name: GroupName,
}

/// `POST /v1/groups/{name}/members` (admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    pub person: PersonName,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub name: GroupName,
    pub members: Vec<PersonName>,
}

// ---------------------------------------------------------------------------------------------
// Shared accounts

/// The second factor a login to a shared account must use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactorPolicy {
    /// Whichever the holder has: push when they enrolled it (a typed TOTP code works too), else
    /// TOTP. The default.
    #[default]
    Any,
    /// A TOTP code only.
    Totp,
    /// Approval on the holder's phone or in `jitctl approve` only.
    Push,
}

/// What a host does for this account when the server cannot be reached at login.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfflinePolicy {
    /// Deny (fail closed). The default.
    #[default]
    Deny,
    /// Decide from what the host cached about a reservation it already knew of.
    Cached,
}

/// A supplementary Unix group that jit serves through NSS, with the accounts in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnixGroup {
    pub name: GroupName,
    pub gid: u32,
}

/// The Unix identity of a *virtual* account (one that exists only through nss_jit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PosixIdentity {
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub gecos: String,
    pub home: String,
    pub shell: String,
    /// Supplementary groups (`initgroups`), served by nss_jit.
    #[serde(default)]
    pub unix_groups: Vec<UnixGroup>,
}

/// `POST /v1/accounts` (admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    pub name: AccountName,
    /// `None` for an account that already exists in the host's own files (`root`).
    #[serde(default)]
    pub posix: Option<PosixIdentity>,
    /// Groups of persons allowed to reserve it. At least one.
    pub groups: Vec<GroupName>,
    /// Duration of a reservation when none is asked for. Default 300.
    #[serde(default)]
    pub default_ttl_secs: Option<u32>,
    /// Longest reservation allowed. Default 300.
    #[serde(default)]
    pub max_ttl_secs: Option<u32>,
    /// Host name patterns (`web*`, `db1`) this account exists on.
    #[serde(default)]
    pub host_patterns: Vec<String>,
    /// Host labels this account exists on.
    #[serde(default)]
    pub host_labels: Vec<Label>,
    #[serde(default)]
    pub offline: OfflinePolicy,
    /// The second factor logins must use. Default `any`.
    #[serde(default)]
    pub factor: FactorPolicy,
    /// When a reservation ends (it runs out, it is released or force-released, its holder is
    /// disabled), hosts end the sessions its login opened, after a one-minute warning. Default
    /// false: sessions outlive their reservation.
    #[serde(default)]
    pub end_session_at_expiry: bool,
}

/// `PATCH /v1/accounts/{name}` (admin): every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountChange {
    #[serde(default)]
    pub groups: Option<Vec<GroupName>>,
    #[serde(default)]
    pub default_ttl_secs: Option<u32>,
    #[serde(default)]
    pub max_ttl_secs: Option<u32>,
    #[serde(default)]
    pub host_patterns: Option<Vec<String>>,
    #[serde(default)]
    pub host_labels: Option<Vec<Label>>,
    #[serde(default)]
    pub offline: Option<OfflinePolicy>,
    #[serde(default)]
    pub factor: Option<FactorPolicy>,
    #[serde(default)]
    pub end_session_at_expiry: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub name: AccountName,
    pub posix: Option<PosixIdentity>,
    pub groups: Vec<GroupName>,
    pub default_ttl_secs: u32,
    pub max_ttl_secs: u32,
    pub host_patterns: Vec<String>,
    pub host_labels: Vec<Label>,
    pub offline: OfflinePolicy,
    pub active: bool,
    pub created_at: i64,
    #[serde(default)]
    pub factor: FactorPolicy,
    /// Hosts end a reservation's sessions when it ends (see [`NewAccount`]).
    #[serde(default)]
    pub end_session_at_expiry: bool,
}

// ---------------------------------------------------------------------------------------------
// Hosts

/// `POST /v1/hosts` (admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewHost {
    pub name: HostName,
    #[serde(default)]
    pub labels: Vec<Label>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub name: HostName,
    pub labels: Vec<Label>,
    pub joined: bool,
    pub active: bool,
    pub last_seen: Option<i64>,
    pub created_at: i64,
}

/// Answer to `POST /v1/hosts` and `POST /v1/hosts/{name}/rejoin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostCreated {
    pub host: Host,
    /// One-time token for `jitd join --token` (see [`crate::join_token`]).
    pub join_token: String,
    pub join_expires_at: i64,
}

/// `POST /v1/join` (no credential: the join secret is the credential).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    pub host: HostName,
    pub secret: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    pub host: HostName,
    /// The host's long-lived credential. The server keeps only its hash.
    pub credential: Secret,
}

// ---------------------------------------------------------------------------------------------
// Enrollment (a person's second factor)

/// `POST /v1/enroll/start` (no credential: the enrollment code is the credential).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollStart {
    pub enrollment_code: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollStarted {
    pub person: PersonName,
    /// `otpauth://totp/…` for an authenticator app. Holds the secret: show it only to the person.
    pub otpauth_uri: Secret,
}

/// `POST /v1/enroll/confirm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollConfirm {
    pub enrollment_code: Secret,
    pub code: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolled {
    pub person: PersonName,
    /// The person's API token for jitctl. The server keeps only its hash.
    pub token: Secret,
}

// ---------------------------------------------------------------------------------------------
// Factors (a person's own: TOTP, push) and push approvals

/// `GET /v1/factors`: the calling person's second factors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Factors {
    pub person: PersonName,
    /// An authenticator app (TOTP) is set up.
    pub totp: bool,
    /// Push is enrolled (`None`: not).
    pub push: Option<PushFactor>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushFactor {
    /// The ntfy topic notifications go to, if any.
    pub ntfy_topic: Option<String>,
    /// An ntfy access token is stored (never shown again).
    pub ntfy_token: bool,
    /// Browsers that get Web Push notifications (the portal's "Notify this browser").
    pub browsers: u32,
    pub since: i64,
}

/// `POST /v1/factors/push`: enroll push (or change its ntfy topic and token).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushEnroll {
    /// ntfy topic: 1 to 64 of `A-Z a-z 0-9 _ -`. Pick one nobody can guess.
    #[serde(default)]
    pub ntfy_topic: Option<String>,
    /// ntfy access token for that topic, if the ntfy server needs one.
    #[serde(default)]
    pub ntfy_token: Option<Secret>,
}

/// `POST /v1/enroll/push` (no credential: the enrollment code is): enroll push as the first
/// factor, without an authenticator app. Answers [`Enrolled`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollPush {
    pub enrollment_code: Secret,
    #[serde(default)]
    pub ntfy_topic: Option<String>,
    #[serde(default)]
    pub ntfy_token: Option<Secret>,
}

/// `POST /v1/factors/totp`: a new authenticator-app secret for the calling person, confirmed
/// with `POST /v1/factors/totp/confirm`. The current one (if any) keeps working until then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpStarted {
    /// `otpauth://totp/…`: holds the secret, show it only to the person.
    pub otpauth_uri: Secret,
}

/// `POST /v1/factors/totp/confirm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirm {
    pub code: Secret,
}

/// A login waiting for its holder's approval (`GET /v1/approvals`). Never carries the number:
/// the approver reads it off the login prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Names the challenge in `POST /v1/approvals/{id}/approve` and on the approval page.
    pub id: String,
    pub person: PersonName,
    pub account: AccountName,
    pub host: HostName,
    pub service: String,
    /// The source address (sshd's remote host), if any.
    pub rhost: Option<String>,
    pub tty: Option<String>,
    /// The local user behind su/sudo, if any.
    pub ruser: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approvals {
    pub approvals: Vec<Approval>,
    pub now: i64,
}

/// `POST /v1/approvals/{id}/approve`: the number the login prompt shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    pub number: u8,
}

/// Answer to approve (`approved`) and to `POST /v1/approvals/{id}/report` (`reported`: the
/// login is refused, the reservation released and the admins alerted). A wrong number is an
/// error (`not_allowed`): the login is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalAnswered {
    pub approval: Approval,
    pub outcome: ApprovalOutcome,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalOutcome {
    Approved,
    Reported,
}

// ---------------------------------------------------------------------------------------------
// Reservations

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationState {
    /// Held and not yet used.
    Active,
    /// Used by a login.
    Consumed,
    /// Given back early (by the holder or an admin).
    Released,
    /// Ran out.
    Expired,
}

/// `POST /v1/reservations` (person).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewReservation {
    pub account: AccountName,
    pub host: HostName,
    /// Defaults to the account's default duration.
    #[serde(default)]
    pub duration_secs: Option<u32>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub id: i64,
    pub account: AccountName,
    pub host: HostName,
    pub person: PersonName,
    pub state: ReservationState,
    pub reason: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// Seconds left at the time of the answer (0 unless active).
    pub remaining_secs: i64,
    pub ended_at: Option<i64>,
    /// Who released it, when released: a person's name or `admin`.
    pub ended_by: Option<String>,
    /// False while the host has not joined jit (no `jitd join` there yet, or not since its
    /// credential was reset): until it does, nothing there asks for this reservation, and logins
    /// to the account on that host are not possible.
    #[serde(default = "yes")]
    pub host_joined: bool,
}

fn yes() -> bool {
    true
}

/// `POST /v1/reservations/release` (person: own reservations; admin: any, audited as forced).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    pub account: AccountName,
    /// All hosts when absent.
    #[serde(default)]
    pub host: Option<HostName>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Released {
    pub released: Vec<Reservation>,
}

/// `POST /v1/reservations/extend` (person: own live reservations, used or not yet used): moves
/// the end `duration_secs` later, as long as no more than the account's max-ttl is left then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtendRequest {
    pub account: AccountName,
    /// All hosts where the person holds it when absent.
    #[serde(default)]
    pub host: Option<HostName>,
    pub duration_secs: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extended {
    pub extended: Vec<Reservation>,
}

/// `GET /v1/reservations`: a person sees their own, an admin sees everybody's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReservationQuery {
    /// Include ended reservations too (default: active only).
    #[serde(default)]
    pub all: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservations {
    pub reservations: Vec<Reservation>,
    /// Server time of the answer, so clients can show time left without trusting their clock.
    pub now: i64,
}

// ---------------------------------------------------------------------------------------------
// Sessions

/// Why a reservation ended, and with it (for accounts with `end_session_at_expiry`) the sessions
/// its login opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndCause {
    /// It ran out.
    Expired,
    /// Its holder gave it back (`jitctl release`).
    Released,
    /// An admin released it.
    ForceReleased,
    /// Its holder was disabled.
    HolderDisabled,
    /// Its holder said a login to it was not theirs ("This was not me").
    Reported,
}

impl EndCause {
    /// The name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            EndCause::Expired => "expired",
            EndCause::Released => "released",
            EndCause::ForceReleased => "force_released",
            EndCause::HolderDisabled => "holder_disabled",
            EndCause::Reported => "reported",
        }
    }

    pub fn parse(s: &str) -> Option<EndCause> {
        [
            EndCause::Expired,
            EndCause::Released,
            EndCause::ForceReleased,
            EndCause::HolderDisabled,
            EndCause::Reported,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// A login's session on a host, as the host reported it (`session.open`, `session.close`,
/// `session.ended`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: i64,
    pub host: HostName,
    pub account: AccountName,
    /// Who logged in (the holder of the reservation the login used).
    pub person: Option<PersonName>,
    /// The PAM service: sshd, su, login, …
    pub service: String,
    /// Where the login came from: the remote address, else who sat at the prompt (`uid:1000`,
    /// `tty:tty1`).
    pub source: Option<String>,
    pub tty: Option<String>,
    pub reservation_id: Option<i64>,
    pub opened_at: i64,
    /// `None` while the session is open.
    pub closed_at: Option<i64>,
    /// How long it ran (so far, while open).
    pub duration_secs: i64,
    /// Set when the host ended the session because its reservation ended.
    pub ended: Option<EndCause>,
    /// When the reservation ends (or ended), if it is known.
    pub reservation_ends_at: Option<i64>,
    /// The account's policy: the host ends the session when the reservation ends.
    pub end_session_at_expiry: bool,
}

/// `GET /v1/sessions`: a person sees their own, an admin everybody's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionQuery {
    /// Include closed sessions too, newest first (default: open ones only).
    #[serde(default)]
    pub all: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sessions {
    pub sessions: Vec<Session>,
    /// Server time of the answer.
    pub now: i64,
}

// ---------------------------------------------------------------------------------------------
// Audit

/// `GET /v1/audit` query (admin). All filters are optional and combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[serde(default)]
    pub person: Option<PersonName>,
    #[serde(default)]
    pub account: Option<AccountName>,
    #[serde(default)]
    pub host: Option<HostName>,
    /// Unix seconds, inclusive.
    #[serde(default)]
    pub since: Option<i64>,
    /// Unix seconds, exclusive.
    #[serde(default)]
    pub until: Option<i64>,
    /// Default 1000, at most 10000. Newest last.
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only events after this place in the chain ([`AuditEvent::seq`]), oldest first: the
    /// first `limit` of them. A follower asks again with the last `seq` it saw.
    #[serde(default)]
    pub after: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditResult {
    Ok,
    Denied,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: i64,
    /// Who did it: `admin`, `person:alice`, `host:web01`, `enroll:alice`.
    pub actor: String,
    /// What happened, dotted: `reservation.create`, `login.verify`, `session.open`, …
    pub action: String,
    pub person: Option<PersonName>,
    pub account: Option<AccountName>,
    pub host: Option<HostName>,
    pub result: AuditResult,
    /// Why, for a person to read (never a code or a secret).
    pub reason: Option<String>,
    /// Extra context: service, rhost, tty, reservation id.
    pub detail: Option<serde_json::Value>,
    /// The address of the API client whose call wrote the row, if a call did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The row's place in the hash chain (1, 2, …); commits happen in this order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    /// HMAC-SHA256 over the previous row's hash and this row, hex (`jitctl audit verify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// `GET /v1/audit/verify` (admin): the whole chain checked against the server's chain key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditVerification {
    /// Rows checked.
    pub rows: u64,
    /// The chain's last link as the server records it: keep it elsewhere to notice a cut tail.
    pub head_seq: i64,
    pub head_hash: String,
    /// The first row whose link does not hold; `None` when the whole chain holds.
    pub broken: Option<AuditBreak>,
}

/// Where the chain stops holding. The row fields are `None` when no row can be named (the
/// newest rows are gone and no row is left before the cut).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditBreak {
    pub id: Option<i64>,
    pub at: Option<i64>,
    pub action: Option<String>,
    pub seq: Option<i64>,
    /// What is wrong there, for a person to read.
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvents {
    pub events: Vec<AuditEvent>,
}

// ---------------------------------------------------------------------------------------------
// Host-facing API (host credential)

/// One shared account as a host sees it (`GET /v1/host/accounts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostAccount {
    pub name: AccountName,
    /// `None` when the account exists in the host's own files.
    pub posix: Option<PosixIdentity>,
    pub offline: OfflinePolicy,
    /// A disabled account is still listed: the host must keep guarding it (a disabled `root`
    /// must not fall back to its local password), and the server refuses its logins.
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostAccounts {
    pub host: HostName,
    /// Every shared account that exists on this host (disabled ones too), sorted by name.
    pub accounts: Vec<HostAccount>,
    pub now: i64,
}

/// Where a login comes from, for the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginOrigin {
    pub service: String,
    #[serde(default)]
    pub rhost: Option<String>,
    #[serde(default)]
    pub tty: Option<String>,
    #[serde(default)]
    pub ruser: Option<String>,
    /// For ssh logins: the `SHA256:…` fingerprint of the public key sshd accepted before the
    /// code was asked for (sshd's `ExposeAuthInfo`, `SSH_AUTH_INFO_0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<String>,
    /// Who sits at the prompt, as the host can tell it from the kernel rather than from what
    /// the application says: `uid:1000` for a local user behind su or sudo (the real uid of the
    /// process that asked), `addr:192.0.2.7` for a remote login, `tty:tty1` at a console. Wrong
    /// codes count against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// `POST /v1/host/logins`: a login to `account` begins on the calling host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBegin {
    pub account: AccountName,
    pub origin: LoginOrigin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Factor {
    Totp,
    /// Approval with number matching: see [`PushPrompt`].
    Push,
}

/// A login that waits for the holder's approval. The prompt shows `number`; the holder types it
/// on the approval page (`approve_url`) or in `jitctl approve`. The host then waits
/// (`POST /v1/host/logins/{attempt}/wait`), or checks a typed code as TOTP when
/// `totp_allowed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushPrompt {
    /// Two digits, 10 to 99.
    pub number: u8,
    /// The approval page of this login (a console may draw it as a QR code).
    pub approve_url: String,
    /// When the challenge expires unanswered.
    pub expires_at: i64,
    /// A typed code is checked as TOTP (the holder has an authenticator app and the account
    /// allows it).
    pub totp_allowed: bool,
}

/// Why a login was refused. The message shown to the person never names the holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    NotShared,
    NoReservation,
    AccountDisabled,
    HostNotAllowed,
    PersonDisabled,
    NotEnrolled,
    LockedOut,
    WrongCode,
    ReplayedCode,
    AlreadyUsed,
    Expired,
    AttemptExpired,
    NoAuth,
    ServerUnreachable,
    /// The account requires a factor the holder has not enrolled.
    FactorNotAllowed,
    /// A push for this person and account was sent less than the rate limit ago.
    RateLimited,
    /// The approval was refused: a wrong number, or "This was not me".
    PushDenied,
    /// Nobody approved within the challenge's lifetime.
    PushExpired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum LoginBegun {
    /// A live reservation exists: ask for the holder's factor, then call verify with `attempt`.
    Challenge {
        attempt: String,
        factor: Factor,
        expires_at: i64,
        /// For [`Factor::Push`]: the number, the approval page and what a typed answer means.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        push: Option<PushPrompt>,
        /// Something the prompt should say first (e.g. that a push was sent less than a minute
        /// ago, so this time a code is asked for).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notice: Option<String>,
    },
    /// Refused before any prompt.
    Denied { reason: DenyReason, message: String },
}

/// `POST /v1/host/logins/{attempt}/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginVerify {
    pub code: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum LoginVerified {
    /// The code was right and the reservation is now consumed by this login.
    Granted {
        person: PersonName,
        reservation_id: i64,
        /// Seconds until the reservation ends (a span, not a time, so the host's clock need not
        /// agree with the server's): the session is told at login.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ends_in_secs: Option<i64>,
        /// The account's policy: the host ends the session when the reservation ends.
        #[serde(default)]
        end_session_at_expiry: bool,
    },
    Denied {
        reason: DenyReason,
        message: String,
    },
    /// Only from `wait`: nobody approved yet; ask again (the challenge ends at `expires_at`).
    Pending {
        expires_at: i64,
    },
}

/// `POST /v1/host/logins/{attempt}/wait`: waits up to `wait_secs` (at most
/// [`MAX_WAIT_SECS`]) for the holder to approve a push login, then answers with
/// [`LoginVerified`]: granted, denied, or still pending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginWait {
    #[serde(default)]
    pub wait_secs: u32,
}

/// The longest a single `wait` call is held by the server.
pub const MAX_WAIT_SECS: u32 = 25;

/// The hashed code of one TOTP time step (see `jit_proto::offline`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepHash {
    pub step: i64,
    /// base64 of the 32-byte hash.
    pub hash: String,
}

/// What a host keeps so it can decide a login to an `offline = "cached"` account while the
/// server is unreachable: the holder, the expiry, and hashed codes for the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineGrant {
    pub reservation_id: i64,
    pub account: AccountName,
    pub person: PersonName,
    pub expires_at: i64,
    /// The hash and its cost, `argon2id:m=19456,t=2,p=1` (`jit_proto::offline::Kdf`). A host
    /// refuses a grant of any other format.
    pub kdf: String,
    /// argon2id's passes (`t` in `kdf`, which is what counts).
    pub iterations: u32,
    /// base64.
    pub salt: String,
    /// One hash per time step of the window (one step of skew either side).
    pub codes: Vec<StepHash>,
}

/// `GET /v1/host/offline`: grants for this host's live reservations of cached accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineGrants {
    pub grants: Vec<OfflineGrant>,
    pub now: i64,
}

/// An event a host reports: session open/close and decisions it made itself (an account-stage
/// refusal, an offline decision). `POST /v1/host/events` takes a batch, so a host can deliver
/// what it queued while the server was unreachable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostEvent {
    /// Chosen by the host; the server ignores an event whose id it already stored.
    pub id: String,
    pub at: i64,
    /// `session.open`, `session.close`, `account.denied`, …
    pub action: String,
    pub account: AccountName,
    #[serde(default)]
    pub person: Option<PersonName>,
    pub result: AuditResult,
    #[serde(default)]
    pub reason: Option<String>,
    pub origin: LoginOrigin,
    #[serde(default)]
    pub reservation_id: Option<i64>,
    #[serde(default)]
    pub attempt: Option<String>,
    /// For `login.offline`: the TOTP time step the code matched, so the server refuses it later.
    #[serde(default)]
    pub totp_step: Option<i64>,
    /// For `session.ended`: why the host ended the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<EndCause>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostEvents {
    pub events: Vec<HostEvent>,
}

/// `POST /v1/host/reservations`: how the reservations behind this host's open sessions stand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostReservationQuery {
    /// At most [`MAX_HOST_RESERVATIONS`].
    pub ids: Vec<i64>,
}

/// Most reservations one `POST /v1/host/reservations` may ask about.
pub const MAX_HOST_RESERVATIONS: usize = 1000;

/// One reservation of the calling host, as far as its sessions are concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostReservation {
    pub id: i64,
    pub account: AccountName,
    pub person: PersonName,
    /// When it ends; when it ended, once `ended` is set.
    pub ends_at: i64,
    /// Why it ended; `None` while it runs.
    pub ended: Option<EndCause>,
    /// Who released it (a person's name), when released.
    pub ended_by: Option<String>,
    /// The account's policy: end the sessions when the reservation ends.
    pub end_session_at_expiry: bool,
}

/// Answer to `POST /v1/host/reservations`: the asked-for reservations of this host that exist
/// (others are left out), and the server's time, so the host can tell how far away `ends_at` is
/// whatever its own clock says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostReservations {
    pub reservations: Vec<HostReservation>,
    pub now: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsStored {
    /// How many were new (the rest were already stored).
    pub stored: u32,
}

// ---------------------------------------------------------------------------------------------
// ssh public keys of persons (sshd's AuthorizedKeysCommand on hosts answers from these)

/// `POST /v1/keys`: registers an ssh public key (one `authorized_keys` line without options:
/// `ssh-ed25519 AAAA… comment`). A person adds their own; an admin may name `person`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSshKey {
    pub public_key: String,
    #[serde(default)]
    pub person: Option<PersonName>,
}

/// A registered key (`GET /v1/keys`, answer to `POST /v1/keys` and `DELETE /v1/keys/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshKey {
    pub id: i64,
    pub person: PersonName,
    /// The key type: `ssh-ed25519`, `ecdsa-sha2-nistp256`, `sk-ssh-ed25519@openssh.com`,
    /// `ssh-rsa` (whatever signature algorithm the client uses with it), …
    pub algorithm: String,
    /// `SHA256:…`, as `ssh-keygen -l` and sshd's log print it.
    pub fingerprint: String,
    pub comment: Option<String>,
    /// The key as registered, normalised to `type base64 [comment]`.
    pub public_key: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshKeys {
    pub keys: Vec<SshKey>,
}

/// `GET /v1/keys` query: a person sees their own keys; the admin sees everybody's, or one
/// person's with `person`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshKeyQuery {
    #[serde(default)]
    pub person: Option<PersonName>,
}

/// One key a host may trust for a shared account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSshKey {
    pub person: PersonName,
    pub fingerprint: String,
    /// `type base64` (no comment, no options).
    pub public_key: String,
}

/// The keys that count for one shared account on the calling host: while somebody holds a live
/// reservation there, only the holder's keys; otherwise the keys of every person who may reserve
/// the account on this host. Only active, enrolled persons' keys count; a disabled account has
/// none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostAccountKeys {
    pub account: AccountName,
    pub holder: Option<PersonName>,
    pub keys: Vec<HostSshKey>,
}

/// `GET /v1/host/keys` (host credential): every shared account of the host, sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostKeys {
    pub accounts: Vec<HostAccountKeys>,
    pub now: i64,
}

/// What changed for a host, in the server's change log (`GET /v1/host/watch`). A host refreshes
/// what each kind touches; a kind it does not know (from a newer server) means "refresh all".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Shared accounts: added, changed, disabled or enabled (the NSS cache).
    Accounts,
    /// Reservations of this host: created, released, expired, consumed, extended.
    Reservations,
    /// Persons disabled or enabled.
    Persons,
    /// Offline grants of this host.
    Offline,
    /// Persons' ssh keys.
    Keys,
    /// Group membership.
    Groups,
    /// This host itself (disabled, enabled, joined again).
    Host,
    /// A kind this build does not know.
    #[serde(other)]
    Other,
}

impl ChangeKind {
    /// The name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Accounts => "accounts",
            ChangeKind::Reservations => "reservations",
            ChangeKind::Persons => "persons",
            ChangeKind::Offline => "offline",
            ChangeKind::Keys => "keys",
            ChangeKind::Groups => "groups",
            ChangeKind::Host => "host",
            ChangeKind::Other => "other",
        }
    }

    /// The kind named `s` ([`ChangeKind::Other`] if unknown).
    pub fn parse(s: &str) -> ChangeKind {
        match s {
            "accounts" => ChangeKind::Accounts,
            "reservations" => ChangeKind::Reservations,
            "persons" => ChangeKind::Persons,
            "offline" => ChangeKind::Offline,
            "keys" => ChangeKind::Keys,
            "groups" => ChangeKind::Groups,
            "host" => ChangeKind::Host,
            _ => ChangeKind::Other,
        }
    }
}

/// Longest a `GET /v1/host/watch` is held open, in seconds.
pub const MAX_WATCH_SECS: u32 = 25;

/// The query of `GET /v1/host/watch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostWatchQuery {
    /// The `seq` of the last answer; absent on first contact.
    #[serde(default)]
    pub after: Option<i64>,
    /// Seconds to hold the request while nothing changes, at most [`MAX_WATCH_SECS`].
    #[serde(default)]
    pub wait: Option<u32>,
}

/// The answer of `GET /v1/host/watch`: the kinds of change for this host after `after`, sorted,
/// each once; empty when the wait ran out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostChanges {
    /// Where the next watch continues (`after`).
    pub seq: i64,
    /// The server cannot say what changed since `after` (first contact, a log pruned or
    /// replaced): refresh everything.
    pub reset: bool,
    pub kinds: Vec<ChangeKind>,
    pub now: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_refuse_unknown_fields() {
        let err = serde_json::from_str::<NewReservation>(
            r#"{"account":"admin","host":"web01","durration_secs":60}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `durration_secs`"), "{err}");
    }

    #[test]
    fn outcomes_are_tagged() {
        let j = serde_json::to_string(&LoginVerified::Granted {
            person: PersonName::new("alice").unwrap(),
            reservation_id: 7,
            ends_in_secs: Some(290),
            end_session_at_expiry: true,
        })
        .unwrap();
        assert_eq!(
            j,
            r#"{"outcome":"granted","person":"alice","reservation_id":7,"ends_in_secs":290,"end_session_at_expiry":true}"#
        );
        // What a server from before the session terms sent still reads.
        let old: LoginVerified =
            serde_json::from_str(r#"{"outcome":"granted","person":"alice","reservation_id":7}"#)
                .unwrap();
        assert!(matches!(
            old,
            LoginVerified::Granted {
                ends_in_secs: None,
                end_session_at_expiry: false,
                ..
            }
        ));
    }

    #[test]
    fn end_causes_read_back() {
        for c in [
            EndCause::Expired,
            EndCause::Released,
            EndCause::ForceReleased,
            EndCause::HolderDisabled,
            EndCause::Reported,
        ] {
            assert_eq!(EndCause::parse(c.as_str()), Some(c));
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::Value::String(c.as_str().into())
            );
        }
        assert_eq!(EndCause::parse("nope"), None);
    }
}
