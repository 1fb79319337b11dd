//! The module's logic, in plain Rust: what each PAM stage asks jitd, how jitd's steps are relayed
//! through the conversation, and what happens when jitd cannot be asked.
//!
//! Everything PAM-specific sits behind [`Handler`] (implemented on the real `pam_handle_t` in
//! [`crate::handle`], and by a scripted fake in the tests); jitd sits behind [`Connect`].
//!
//! The daemon drives, the module relays: no policy is decided here beyond the fallback below.
//!
//! # When jitd cannot be asked
//! (unreachable, timed out, protocol error, `Failed`, or the module is misconfigured)
//! the host's list of guarded names decides ([`crate::fallback`]), by the same rule jitd uses:
//!
//! - **guarded** (the list names the login, or the uid it resolves to is a guarded name's uid,
//!   or this transaction holds a ticket for it, or jitd already challenged this login): refuse
//!   with a message: auth `PAM_AUTH_ERR`, account `PAM_PERM_DENIED`, open_session
//!   `PAM_SESSION_ERR`.
//! - **no list can be read on a joined host** (the joined marker exists, or a damaged cache
//!   does): uid 0 and the always-guarded names are refused the same way; everyone else gets
//!   `PAM_IGNORE`. A joined host never waves root through because its list is lost, and never
//!   locks out the other users (including the admins who would repair jitd) over it.
//! - **not guarded**, or **not joined** (no marker, no cache file): `PAM_IGNORE`.
//!
//! # Misconfiguration
//! An unknown or invalid argument in `/etc/pam.d` is logged, and the module then answers from the
//! cache alone, without contacting jitd: shared accounts are refused (a broken configuration must
//! not open them, and we cannot trust which socket or timeout was meant), everybody else gets
//! `PAM_IGNORE` (a typo must not lock the host out).
//!
//! # close_session
//! Logout must never be blocked by jitd: if jitd cannot be told, close returns `PAM_SUCCESS` when
//! this transaction holds a ticket (the session was ours; the close is written to syslog with the
//! person's name so the local audit trail keeps it) and `PAM_IGNORE` otherwise (no ticket means
//! pam_jit opened no session here).
//!
//! # setcred
//! `PAM_SUCCESS` if this transaction holds a ticket for the user, else `PAM_IGNORE`. jit has no
//! credentials to establish, but when pam_jit ended the auth stack (`success=done`), Linux-PAM
//! replays that same chain for `pam_setcred`, and a chain in which the only module that ran
//! returns `PAM_IGNORE` fails; sshd treats a failed `pam_setcred` as fatal. Without a ticket we
//! authenticated nothing, so we stay out of the way.
//!
//! # The ticket crosses processes through the PAM environment
//! A successful auth stores jitd's ticket, an opaque handle, as module data (`pam_set_data`),
//! which only modules can read or write, and also puts the handle in the PAM environment as
//! [`TICKET_ENV`]. Module data never leaves the process, and OpenSSH runs keyboard-interactive
//! auth (and the account stage) in a child process it forks for the conversation, then opens the
//! session in its monitor: the only thing it carries back is the PAM environment. Without the
//! copy, every ssh login would be refused at `open_session` ("a session needs a login that passed
//! jit's verification code"). The handle carries nothing itself; jitd decides what it is worth:
//! once per stage, only for the same login name and PAM service, only from the process that
//! authenticated or its parent (sshd's monitor), and the account and session-open stages only
//! within 2 minutes of the auth. setcred, open_session and close_session adopt it (move it into
//! module data) and delete the variable, so it never reaches the session's environment; the
//! account stage only reads it, because in sshd's child the variable must survive until the
//! child hands the environment back. Neither the handle nor the variable's value is ever
//! logged.
//!
//! # Break-glass (`local_password`)
//! An admin may put `local_password` on the pam_jit auth line of a console service (login):
//! when jit refuses a shared account (`PAM_AUTH_ERR`: not reserved, wrong code, server or jitd
//! down) or cannot decide (`PAM_AUTHINFO_UNAVAIL`), that line shows jit's reason, says that the
//! local password is accepted instead, records the step-aside for this account in module data,
//! logs it at `alert`, and returns `PAM_IGNORE`, so the next module (pam_unix) decides with the
//! account's local password. Every later pam_jit call in the same transaction for the same
//! account then stands aside too: the pam_jit line of common-auth (no second prompt), the account
//! stage and the sessions (`PAM_IGNORE`; there is no ticket, so no `JIT_PERSON` and no session
//! events at jitd, only the syslog lines). An option line resets the record at the start of each
//! auth, so a retry that passes jit is an ordinary jit login.
//!
//! The option is ignored (with an error in the log) for remote logins: a non-empty `PAM_RHOST`,
//! the service `sshd`, or the tty `ssh`. sshd keeps one PAM transaction across authentication
//! methods, so a failed password attempt followed by a public key would pass the account stage
//! on the record; and break-glass is meant for someone at the console. A conversation failure
//! (the client went away) is never a reason to step aside.
//!
//! # chauthtok
//! No jitd round trip: a shared account (a ticket for it, or the cache lists it) gets
//! `PAM_AUTHTOK_ERR` and a message saying it has no password to change (access is per login,
//! through a reservation); everybody else gets `PAM_IGNORE`. An unreadable cache is `PAM_IGNORE`
//! here: a password change grants no access while pam_jit guards the auth and account stages.

use jit_pam_proto::Secret;
use jit_pam_proto::pam::{LoginContext, Request, Step, Ticket};
use jit_pam_proto::text;

use crate::daemon::{Conn, Connect, DaemonError, step_kind};
use crate::fallback::{self, Verdict};
use crate::options::Options;

/// The PAM environment variable that carries this transaction's ticket from the process that ran
/// auth to the one that opens the session (see the module docs). Deleted before the session
/// starts.
pub const TICKET_ENV: &str = "PAM_JIT_TICKET";

/// A passed auth, as this transaction keeps it (module data) for its later stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The login name (PAM_USER) the auth was for.
    pub account: String,
    pub ticket: Ticket,
    /// Who logged in, when this process ran the auth (not when the ticket came through the PAM
    /// environment): for the log line of a close jitd cannot be told of.
    pub person: Option<String>,
}

/// Most steps jitd may send for one request. A TOTP login needs 2-3 (prompt, maybe an error and
/// a second prompt, then the final step); a confused daemon must not keep a login looping.
pub const MAX_STEPS: usize = 16;

/// Most [`Step::Wait`]s in one auth: jitd answers one every couple of seconds while it waits for
/// a push approval, and stops waiting well within this.
pub const MAX_WAITS: usize = 240;

/// PAM result codes the core returns. [`crate::handle`] maps them to libpam's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Success,
    Ignore,
    AuthErr,
    PermDenied,
    SessionErr,
    ConvErr,
    AuthtokErr,
    AuthinfoUnavail,
    SystemErr,
    BufErr,
    /// Any other code libpam gave us (from `pam_get_user`, say), passed back unchanged.
    Other(i32),
}

/// A message style that is not a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Msg {
    /// `PAM_TEXT_INFO`
    Info,
    /// `PAM_ERROR_MSG`
    Error,
}

/// The PAM environment variable in which sshd (`ExposeAuthInfo`) says which methods and keys
/// passed before PAM was asked.
pub const SSH_AUTH_INFO: &str = "SSH_AUTH_INFO_0";

/// Longest `SSH_AUTH_INFO_0` passed on to jitd: a few public keys' worth. A longer value is cut.
pub const MAX_AUTH_INFO: usize = 16 * 1024;

/// PAM string items sent to jitd besides the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    Service,
    Rhost,
    Tty,
    Ruser,
}

/// Syslog severities used by the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Break-glass logins: someone should look at every one of them.
    Alert,
    Err,
    Warning,
    Info,
    Debug,
}

/// What the core needs from PAM. Every method reports failure with the PAM code to return.
pub trait Handler {
    /// `PAM_USER` as raw bytes, asking the application for it when unset (`pam_get_user`).
    fn user(&mut self) -> Result<Vec<u8>, Code>;
    /// The uid `user` resolves to in this process (NSS), if it resolves.
    fn uid_of(&mut self, user: &[u8]) -> Option<u32>;
    /// A string item, lossily converted to UTF-8; `None` if unset or unreadable.
    fn item(&mut self, item: Item) -> Option<String>;
    /// Asks the person; `echo` false for codes. The answer is a secret.
    fn prompt(&mut self, echo: bool, text: &str) -> Result<Secret, Code>;
    /// Shows a message.
    fn show(&mut self, kind: Msg, text: &str) -> Result<(), Code>;
    /// The ticket a successful pam_jit auth stored in this PAM transaction, if any.
    fn ticket(&mut self) -> Option<Held>;
    /// Stores the ticket for the account and session stages of this transaction.
    fn store_ticket(&mut self, held: Held) -> Result<(), Code>;
    /// Adds `name=value` to the PAM environment (the session's environment).
    fn putenv(&mut self, name: &str, value: &str) -> Result<(), Code>;
    /// A variable of the PAM environment, if set.
    fn getenv(&mut self, name: &str) -> Option<String>;
    /// Removes a variable from the PAM environment (not an error if unset).
    fn unsetenv(&mut self, name: &str) -> Result<(), Code>;
    /// The account a break-glass step-aside was recorded for in this transaction, if any.
    fn break_glass(&mut self) -> Option<String>;
    /// Records (`Some`) or clears (`None`) this transaction's break-glass step-aside.
    fn set_break_glass(&mut self, account: Option<&str>) -> Result<(), Code>;
    /// Writes to syslog (authpriv). Callers never pass answers, codes or prompt texts.
    fn log(&mut self, level: Level, msg: &str);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Auth,
    Account,
    SessionOpen,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Auth => "auth",
            Stage::Account => "account",
            Stage::SessionOpen => "open_session",
        }
    }
}

/// Why a stage could not be completed with jitd.
#[derive(Debug)]
enum Failure {
    /// The conversation failed (the client went away): return this code.
    Conv(Code),
    /// jitd could not be used: fall back to the cache.
    Daemon(DaemonError),
}

impl From<DaemonError> for Failure {
    fn from(e: DaemonError) -> Self {
        Failure::Daemon(e)
    }
}

/// Why jitd was not (successfully) asked, for the fallback's message and log line.
enum Cause {
    Misconfigured,
    Daemon(DaemonError),
}

/// One PAM hook call.
pub struct Module<'a, H: Handler, C: Connect> {
    pub pam: &'a mut H,
    pub jitd: &'a C,
    pub opts: &'a Options,
    /// `PAM_SILENT` was passed: show no info or error messages (prompts still happen).
    pub silent: bool,
}

impl<H: Handler, C: Connect> Module<'_, H, C> {
    /// PAM `auth`.
    pub fn authenticate(&mut self) -> Code {
        let ctx = match self.begin() {
            Ok(ctx) => ctx,
            Err(code) => return code,
        };
        if !self.opts.local_password {
            if self.stood_aside_for(&ctx.account) {
                self.debug(&format!(
                    "auth for {}: a pam_jit line with local_password stood aside earlier in this \
                     login; standing aside too",
                    shown(&ctx.account)
                ));
                return Code::Ignore;
            }
            return self.auth_with_jitd(&ctx);
        }
        if let Some(why) = remote_login(&ctx) {
            self.log(
                Level::Err,
                &format!(
                    "local_password is ignored for {} (service {}): {why}; jit alone decides",
                    shown(&ctx.account),
                    shown(&ctx.service)
                ),
            );
            return self.auth_with_jitd(&ctx);
        }
        // A new attempt (login(1) retries on the same handle): an earlier step-aside no longer
        // counts, so a retry that passes jit is an ordinary jit login.
        let cleared = match self.pam.break_glass() {
            Some(_) => self.pam.set_break_glass(None),
            None => Ok(()),
        };
        if let Err(code) = cleared {
            self.log(
                Level::Err,
                &format!(
                    "auth for {}: cannot clear an earlier break-glass record",
                    shown(&ctx.account)
                ),
            );
            return not_success(code, Code::SystemErr);
        }
        let code = self.auth_with_jitd(&ctx);
        match code {
            Code::AuthErr | Code::AuthinfoUnavail => self.stand_aside(&ctx, code),
            other => other,
        }
    }

    /// Break-glass: jit refused (or cannot decide), and this line allows the local password.
    fn stand_aside(&mut self, ctx: &LoginContext, refused: Code) -> Code {
        if self.pam.set_break_glass(Some(&ctx.account)).is_err() {
            // Without the record the account stage would refuse anyway: keep jit's refusal.
            self.log(
                Level::Err,
                &format!(
                    "break-glass for {} not possible: cannot record it in the PAM handle; \
                     refused",
                    shown(&ctx.account)
                ),
            );
            return refused;
        }
        self.log(
            Level::Alert,
            &format!(
                "break-glass: jit refused {} ({refused:?}) on service {} tty {}; local_password \
                 is set, so the local password decides",
                shown(&ctx.account),
                shown(&ctx.service),
                ctx.tty.as_deref().unwrap_or("-")
            ),
        );
        self.show_best_effort(
            Msg::Info,
            &format!(
                "jit: break-glass: the local password of {} is accepted instead. This login is \
                 logged.",
                shown(&ctx.account)
            ),
        );
        Code::Ignore
    }

    /// True if a pam_jit line with `local_password` stood aside for `account` in this transaction.
    fn stood_aside_for(&mut self, account: &str) -> bool {
        self.pam.break_glass().is_some_and(|a| a == account)
    }

    /// The account, session and close stages of a break-glass login: no ticket, so jitd would
    /// refuse; the host's own stack decides, as it did before jit.
    fn break_glass_stage(&mut self, stage: &str, ctx: &LoginContext) -> Code {
        self.log(
            Level::Warning,
            &format!(
                "break-glass: {stage} for {} on service {} passes to the rest of the stack (no \
                 jit ticket; the local password was accepted)",
                shown(&ctx.account),
                shown(&ctx.service)
            ),
        );
        Code::Ignore
    }

    /// auth as jitd decides (or the cache, when jitd cannot be asked).
    fn auth_with_jitd(&mut self, ctx: &LoginContext) -> Code {
        if self.opts.misconfigured() {
            return self.fallback(Stage::Auth, ctx, Cause::Misconfigured, false);
        }
        // Set once jitd treats the name as shared (it prompted, or granted): from then on a
        // failure refuses the login whatever the cache says.
        let mut engaged = false;
        let result = self.ask(Request::AuthStart { ctx: ctx.clone() }, &mut engaged);
        let step = match result {
            Ok(step) => step,
            Err(Failure::Conv(code)) => return self.conv_failed(ctx, code),
            Err(Failure::Daemon(e)) => {
                return self.fallback(Stage::Auth, ctx, Cause::Daemon(e), engaged);
            }
        };
        match step {
            Step::Granted { ticket, person } => {
                let who = format!("{} (person {person})", shown(&ctx.account));
                let held = Held {
                    account: ctx.account.clone(),
                    ticket,
                    person: Some(person),
                };
                let carried = held.ticket.clone();
                match self.pam.store_ticket(held) {
                    Ok(()) => {
                        self.debug(&format!("auth granted for {who}"));
                        self.carry_ticket(&carried, &who);
                        Code::Success
                    }
                    Err(code) => {
                        self.log(
                            Level::Err,
                            &format!("auth for {who} passed but the ticket could not be stored"),
                        );
                        not_success(code, Code::SystemErr)
                    }
                }
            }
            Step::Denied { message } => {
                self.debug(&format!("auth denied for {}", shown(&ctx.account)));
                self.show_best_effort(Msg::Error, &message);
                Code::AuthErr
            }
            Step::NotShared => Code::Ignore,
            other => {
                let e = DaemonError::Unexpected(step_kind(&other));
                self.fallback(Stage::Auth, ctx, Cause::Daemon(e), engaged)
            }
        }
    }

    /// PAM `account`: jitd decides, given whether this transaction passed our auth.
    pub fn account(&mut self) -> Code {
        let ctx = match self.begin() {
            Ok(ctx) => ctx,
            Err(code) => return code,
        };
        // Read only: in sshd's conversation child the carried ticket must survive this stage.
        let ticket = self.ticket_for(&ctx.account, false);
        if ticket.is_none() && self.stood_aside_for(&ctx.account) {
            return self.break_glass_stage("account", &ctx);
        }
        let has_ticket = ticket.is_some();
        if self.opts.misconfigured() {
            return self.fallback(Stage::Account, &ctx, Cause::Misconfigured, has_ticket);
        }
        let mut engaged = has_ticket;
        match self.ask(
            Request::Account {
                ctx: ctx.clone(),
                ticket: ticket.map(|h| h.ticket),
            },
            &mut engaged,
        ) {
            Ok(Step::Allowed) => Code::Success,
            Ok(Step::NotShared) => Code::Ignore,
            Ok(Step::Denied { message }) => {
                self.debug(&format!("account denied for {}", shown(&ctx.account)));
                self.show_best_effort(Msg::Error, &message);
                Code::PermDenied
            }
            Ok(other) => {
                let e = DaemonError::Unexpected(step_kind(&other));
                self.fallback(Stage::Account, &ctx, Cause::Daemon(e), engaged)
            }
            Err(Failure::Conv(code)) => self.conv_failed(&ctx, code),
            Err(Failure::Daemon(e)) => {
                self.fallback(Stage::Account, &ctx, Cause::Daemon(e), engaged)
            }
        }
    }

    /// PAM `open_session`: jitd records it and hands back the session's environment.
    pub fn open_session(&mut self) -> Code {
        let ctx = match self.begin() {
            Ok(ctx) => ctx,
            Err(code) => return code,
        };
        let ticket = self.ticket_for(&ctx.account, true);
        if ticket.is_none() && self.stood_aside_for(&ctx.account) {
            return self.break_glass_stage("open_session", &ctx);
        }
        let has_ticket = ticket.is_some();
        if self.opts.misconfigured() {
            return self.fallback(Stage::SessionOpen, &ctx, Cause::Misconfigured, has_ticket);
        }
        let mut engaged = has_ticket;
        match self.ask(
            Request::SessionOpen {
                ctx: ctx.clone(),
                ticket: ticket.map(|h| h.ticket),
            },
            &mut engaged,
        ) {
            Ok(Step::Session { env }) => {
                // Validate everything before setting anything, so a bad list sets nothing.
                if let Some(bad) = env.iter().find(|v| !valid_env(&v.name, &v.value)) {
                    let e = DaemonError::Unexpected(if bad.name.is_empty() {
                        "session (with an empty variable name)"
                    } else {
                        "session (with an invalid variable)"
                    });
                    return self.fallback(Stage::SessionOpen, &ctx, Cause::Daemon(e), true);
                }
                for var in &env {
                    if let Err(code) = self.pam.putenv(&var.name, &var.value) {
                        self.log(
                            Level::Err,
                            &format!(
                                "open_session for {}: cannot set {}",
                                shown(&ctx.account),
                                var.name
                            ),
                        );
                        return not_success(code, Code::SessionErr);
                    }
                }
                Code::Success
            }
            Ok(Step::NotShared) => Code::Ignore,
            Ok(Step::Denied { message }) => {
                self.show_best_effort(Msg::Error, &message);
                Code::SessionErr
            }
            Ok(other) => {
                let e = DaemonError::Unexpected(step_kind(&other));
                self.fallback(Stage::SessionOpen, &ctx, Cause::Daemon(e), engaged)
            }
            Err(Failure::Conv(code)) => self.conv_failed(&ctx, code),
            Err(Failure::Daemon(e)) => {
                self.fallback(Stage::SessionOpen, &ctx, Cause::Daemon(e), engaged)
            }
        }
    }

    /// PAM `close_session`: tell jitd, but never block a logout on it.
    pub fn close_session(&mut self) -> Code {
        let ctx = match self.begin() {
            Ok(ctx) => ctx,
            Err(code) => return code,
        };
        let ticket = self.ticket_for(&ctx.account, true);
        if ticket.is_none() && self.stood_aside_for(&ctx.account) {
            self.debug(&format!(
                "close_session for {}: break-glass login, nothing to tell jitd",
                shown(&ctx.account)
            ));
            return Code::Ignore;
        }
        let held = ticket.clone();
        if self.opts.misconfigured() {
            return self.close_untold(&ctx, held.as_ref(), "pam_jit is misconfigured");
        }
        let mut engaged = false;
        match self.ask(
            Request::SessionClose {
                ctx: ctx.clone(),
                ticket: ticket.map(|h| h.ticket),
            },
            &mut engaged,
        ) {
            Ok(Step::Session { .. }) => Code::Success,
            Ok(Step::NotShared) => Code::Ignore,
            Ok(Step::Denied { message }) => {
                // Nothing to block at logout; surface it for the operator.
                self.log(
                    Level::Err,
                    &format!(
                        "close_session for {}: jitd refused: {message}",
                        shown(&ctx.account)
                    ),
                );
                Code::SessionErr
            }
            Ok(other) => {
                let why = DaemonError::Unexpected(step_kind(&other)).to_string();
                self.close_untold(&ctx, held.as_ref(), &why)
            }
            Err(Failure::Conv(_)) => {
                self.close_untold(&ctx, held.as_ref(), "the conversation failed")
            }
            Err(Failure::Daemon(e)) => self.close_untold(&ctx, held.as_ref(), &e.to_string()),
        }
    }

    /// PAM `setcred` (see the module docs for why a ticket means `PAM_SUCCESS`).
    pub fn setcred(&mut self) -> Code {
        let ctx = match self.begin() {
            Ok(ctx) => ctx,
            Err(code) => return code,
        };
        if self.ticket_for(&ctx.account, true).is_some() {
            Code::Success
        } else {
            Code::Ignore
        }
    }

    /// PAM `chauthtok` (see the module docs).
    pub fn chauthtok(&mut self) -> Code {
        let ctx = match self.begin() {
            Ok(ctx) => ctx,
            Err(code) => return code,
        };
        let shared = self.ticket_for(&ctx.account, false).is_some()
            || matches!(
                fallback::lookup(
                    &self.opts.cache,
                    &self.opts.joined,
                    ctx.account.as_bytes(),
                    ctx.uid
                ),
                Verdict::Guarded(_)
            );
        if !shared {
            return Code::Ignore;
        }
        self.show_best_effort(
            Msg::Error,
            &format!(
                "jit: {0} is a shared account: it has no password to change. Each login to it \
                 needs a reservation (`jitctl reserve {0}`) and your own second factor.",
                ctx.account
            ),
        );
        Code::AuthtokErr
    }

    /// Reads the PAM items. `Err(Ignore)` for a user name that can never be a shared account
    /// (empty or not UTF-8): such logins never reach jitd.
    fn begin(&mut self) -> Result<LoginContext, Code> {
        for p in &self.opts.problems {
            self.log(Level::Err, &format!("misconfigured: {p}"));
        }
        let user = self
            .pam
            .user()
            .map_err(|c| not_success(c, Code::SystemErr))?;
        let account = match String::from_utf8(user) {
            Ok(s) if !s.is_empty() => s,
            _ => {
                self.debug("user name is empty or not UTF-8: not a shared account");
                return Err(Code::Ignore);
            }
        };
        let uid = self.pam.uid_of(account.as_bytes());
        let ssh_auth_info = self.pam.getenv(SSH_AUTH_INFO).map(|mut info| {
            if info.len() > MAX_AUTH_INFO {
                let mut cut = MAX_AUTH_INFO;
                while !info.is_char_boundary(cut) {
                    cut -= 1;
                }
                info.truncate(cut);
            }
            info
        });
        Ok(LoginContext {
            account,
            service: self.pam.item(Item::Service).unwrap_or_default(),
            rhost: self.pam.item(Item::Rhost),
            tty: self.pam.item(Item::Tty),
            ruser: self.pam.item(Item::Ruser),
            uid,
            ssh_auth_info,
        })
    }

    /// Copies the granted ticket into the PAM environment, for applications that open the session
    /// in another process than the one that ran auth (sshd; see the module docs).
    fn carry_ticket(&mut self, ticket: &Ticket, who: &str) {
        if let Err(code) = self.pam.putenv(TICKET_ENV, ticket.expose()) {
            // su and login keep working on the module data; sshd would refuse the session.
            self.log(
                Level::Err,
                &format!(
                    "auth for {who}: cannot copy the ticket into the PAM environment ({code:?}); \
                     a session opened by another process (sshd) will be refused"
                ),
            );
        }
    }

    /// The ticket stored by this transaction's auth, if it is for `account`: from the module
    /// data, else from the copy in the PAM environment ([`TICKET_ENV`]). With `adopt`, the copy is
    /// moved into the module data and the variable is deleted, so it never reaches the session.
    /// A ticket for another name (a module changed `PAM_USER` in between) proves nothing about
    /// this one.
    fn ticket_for(&mut self, account: &str, adopt: bool) -> Option<Held> {
        let carried = self.pam.getenv(TICKET_ENV);
        if adopt && carried.is_some() && self.pam.unsetenv(TICKET_ENV).is_err() {
            self.log(
                Level::Err,
                &format!("cannot remove {TICKET_ENV} from the PAM environment"),
            );
        }
        let held = match (self.pam.ticket(), carried) {
            (Some(h), _) => h,
            (None, None) => return None,
            (None, Some(value)) => match Ticket::parse(&value) {
                Some(ticket) => {
                    let held = Held {
                        account: account.to_owned(),
                        ticket,
                        person: None,
                    };
                    if adopt && self.pam.store_ticket(held.clone()).is_err() {
                        self.log(
                            Level::Warning,
                            "cannot move the carried ticket into the module data",
                        );
                    }
                    held
                }
                None => {
                    // Never log the value: it may be a ticket.
                    self.log(
                        Level::Warning,
                        &format!("{TICKET_ENV} in the PAM environment is not a ticket; ignored"),
                    );
                    return None;
                }
            },
        };
        if held.account == account {
            Some(held)
        } else {
            self.log(
                Level::Warning,
                &format!(
                    "this transaction's ticket is for {}, but PAM_USER is now {}; ignoring it",
                    shown(&held.account),
                    shown(account)
                ),
            );
            None
        }
    }

    /// Connects, says hello, sends `req` and relays steps until a final one.
    fn ask(&mut self, req: Request, engaged: &mut bool) -> Result<Step, Failure> {
        let mut conn = Conn::open(self.jitd, self.opts.timeout)?;
        let mut step = conn.exchange(&req)?;
        let (mut n, mut waits) = (0, 0);
        loop {
            // jitd is still waiting (a push approval): ask again, showing nothing. Waits are
            // counted apart from steps; jitd bounds how long it waits (below LoginGraceTime).
            if step == Step::Wait {
                waits += 1;
                if waits > MAX_WAITS {
                    return Err(DaemonError::TooManySteps(MAX_WAITS).into());
                }
                step = conn.exchange(&Request::Continue)?;
                continue;
            }
            n += 1;
            self.debug(&format!("jitd step {n}: {}", step_kind(&step)));
            let next = match step {
                Step::Prompt { echo, text } => {
                    *engaged = true;
                    // The prompt waits on the person, not on jitd: no timeout here. The answer
                    // is a Secret (zeroized on drop) and the frame buffer is Zeroizing.
                    let answer = self.pam.prompt(echo, &text).map_err(Failure::Conv)?;
                    Request::Answer { text: answer }
                }
                Step::Info { text } => {
                    self.show(Msg::Info, &text).map_err(Failure::Conv)?;
                    Request::Continue
                }
                Step::Error { text } => {
                    self.show(Msg::Error, &text).map_err(Failure::Conv)?;
                    Request::Continue
                }
                Step::Failed { message } => return Err(DaemonError::Failed(message).into()),
                Step::Granted { .. } => {
                    *engaged = true;
                    return Ok(step);
                }
                final_step => return Ok(final_step),
            };
            if n == MAX_STEPS {
                break;
            }
            step = conn.exchange(&next)?;
        }
        Err(DaemonError::TooManySteps(MAX_STEPS).into())
    }

    /// Decides without jitd (see the module docs for the table).
    fn fallback(&mut self, stage: Stage, ctx: &LoginContext, cause: Cause, engaged: bool) -> Code {
        let verdict = if engaged {
            Verdict::Guarded("jitd already treated it as shared in this transaction".into())
        } else {
            fallback::lookup(
                &self.opts.cache,
                &self.opts.joined,
                ctx.account.as_bytes(),
                ctx.uid,
            )
        };
        let why = match &cause {
            Cause::Misconfigured => "pam_jit is misconfigured (see the lines above)".to_string(),
            Cause::Daemon(e) => e.to_string(),
        };
        let refused = match stage {
            Stage::Auth => Code::AuthErr,
            Stage::Account => Code::PermDenied,
            Stage::SessionOpen => Code::SessionErr,
        };
        let (code, decision, message) = match &verdict {
            Verdict::Guarded(_) => {
                let message = match cause {
                    Cause::Misconfigured => format!(
                        "jit: pam_jit is misconfigured for {service}, so the login to shared \
                         account {account} is refused. Ask an admin to check the system log and \
                         /etc/pam.d/{service}.",
                        service = ctx.service,
                        account = ctx.account
                    ),
                    Cause::Daemon(_) => format!(
                        "jit: cannot reach jitd to check your reservation for {}; the login is \
                         refused. Ask an admin to check `systemctl status jitd`.",
                        ctx.account
                    ),
                };
                (refused, "refused (shared account)", Some(message))
            }
            Verdict::NoList(_) => {
                let message = match cause {
                    Cause::Misconfigured => format!(
                        "jit: pam_jit is misconfigured for {}, and this host's list of shared \
                         accounts cannot be read, so the login to {} is refused. Ask an admin to \
                         check the system log.",
                        ctx.service, ctx.account
                    ),
                    Cause::Daemon(_) => format!(
                        "jit: cannot reach jitd, and this host's list of shared accounts cannot \
                         be read, so the login to {} is refused. Ask an admin to check \
                         `systemctl status jitd`.",
                        ctx.account
                    ),
                };
                (
                    refused,
                    "refused (uid 0 or always guarded, and no list)",
                    Some(message),
                )
            }
            Verdict::NotGuarded(_) | Verdict::NotJoined => (Code::Ignore, "ignored", None),
        };
        let basis = match &verdict {
            Verdict::Guarded(src) => format!("guarded according to {src}"),
            Verdict::NotGuarded(src) => format!("not guarded according to {src}"),
            Verdict::NotJoined => "no cache file and no joined marker (host not joined)".into(),
            Verdict::NoList(problems) => {
                format!(
                    "the host has joined but no list is readable ({})",
                    problems.join("; ")
                )
            }
        };
        let line = format!(
            "{} for {} (service {}): {why}; {basis}; {decision}",
            stage.name(),
            shown(&ctx.account),
            shown(&ctx.service)
        );
        match (&verdict, code) {
            // Installed but not joined: the host must behave exactly as before, its logs included
            // (every login of every user would otherwise leave a warning).
            (Verdict::NotJoined, _) => self.debug(&line),
            (_, Code::Ignore) => self.log(Level::Warning, &line),
            _ => self.log(Level::Err, &line),
        }
        if let Some(m) = message {
            self.show_best_effort(Msg::Error, &m);
        }
        code
    }

    /// close_session when jitd cannot be told: never blocks the logout.
    fn close_untold(&mut self, ctx: &LoginContext, held: Option<&Held>, why: &str) -> Code {
        match held {
            Some(h) => {
                let person = match &h.person {
                    Some(p) => format!(" (person {p})"),
                    None => String::new(),
                };
                self.log(
                    Level::Err,
                    &format!(
                        "close_session for {}{person} could not be reported to jitd: {why}; \
                         logout proceeds",
                        shown(&h.account)
                    ),
                );
                Code::Success
            }
            None => {
                self.debug(&format!(
                    "close_session for {}: {why}; no ticket, ignored",
                    shown(&ctx.account)
                ));
                Code::Ignore
            }
        }
    }

    fn conv_failed(&mut self, ctx: &LoginContext, code: Code) -> Code {
        let code = not_success(code, Code::ConvErr);
        self.log(
            Level::Warning,
            &format!(
                "conversation failed for {} ({code:?}); the client went away?",
                shown(&ctx.account)
            ),
        );
        code
    }

    /// Shows a message unless `PAM_SILENT` or empty.
    fn show(&mut self, kind: Msg, text: &str) -> Result<(), Code> {
        if self.silent || text.is_empty() {
            return Ok(());
        }
        self.pam.show(kind, text)
    }

    /// For messages that accompany a refusal: the refusal stands even if the client is gone.
    fn show_best_effort(&mut self, kind: Msg, text: &str) {
        if self.show(kind, text).is_err() {
            self.debug("could not show a message (conversation failed)");
        }
    }

    fn debug(&mut self, msg: &str) {
        if self.opts.debug {
            self.log(Level::Debug, msg);
        }
    }

    /// Every line to syslog goes through here: a name or message that reached it with control or
    /// Unicode format characters cannot forge a line or hide text ([`text::escape_line`]).
    fn log(&mut self, level: Level, msg: &str) {
        self.pam.log(level, &text::escape_line(msg));
    }
}

/// A user or service name as a log line shows it: PAM_USER and PAM_SERVICE come from the client
/// (the name typed at ssh), so it is escaped and quoted as jitd does ([`text::escape_value`]).
fn shown(name: &str) -> String {
    text::escape_value(name)
}

/// A failure path must never turn into `PAM_SUCCESS`, even if libpam handed us a strange code.
fn not_success(code: Code, instead: Code) -> Code {
    if code == Code::Success { instead } else { code }
}

/// Why `local_password` must not apply to this login, if it must not (see the module docs).
fn remote_login(ctx: &LoginContext) -> Option<String> {
    if let Some(rhost) = ctx.rhost.as_deref().filter(|r| !r.is_empty()) {
        return Some(format!(
            "the login comes from a remote host ({rhost}); break-glass is for local logins"
        ));
    }
    if ctx.service == "sshd" || ctx.tty.as_deref() == Some("ssh") {
        return Some(
            "sshd keeps one PAM transaction across authentication methods, so a password attempt \
             could lend its break-glass to a public key"
                .to_string(),
        );
    }
    None
}

/// What `pam_putenv` accepts sensibly: a shell-style name and a value without NUL.
fn valid_env(name: &str, value: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !value.contains('\0')
}

#[cfg(test)]
#[path = "relay_tests.rs"]
mod tests;
