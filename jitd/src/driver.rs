//! The conversation driver: what jitd answers to each request from pam_jit. Plain Rust, no
//! sockets: [`Conversation::handle`] takes one [`Request`] and returns the next [`Step`]; the
//! server sits behind [`Server`] and the side effects (syslog lines, audit-queue events) behind
//! [`Record`], so every case is tested against a scripted server.
//!
//! Policy, in short (see docs/jitd.md):
//! - Which logins are jit's: the host's one list ([`crate::guarded`], the same rule pam_jit and
//!   nss_jit use). A name the list guards, by name or by the uid the login resolves to, is
//!   checked against the shared account it stands for (`toor` is a login to `root`). Any other
//!   name is `NotShared` at once, without a server round trip: every other login on the host is
//!   untouched and fast. While no list is known, uid 0 and the always-guarded names are refused
//!   with a message, never waved through.
//! - auth: the server decides (`login_begin`, then `login_verify` with the code). The prompt never
//!   names the holder of a reservation. The server unreachable (or failing) means deny: fail
//!   closed, and the refusal goes to the local audit queue.
//! - For services in `deny_as_prompt` (sshd), a denial is shown as an echoing prompt ending in
//!   "(press Enter)" before the final `Denied`, because OpenSSH shows PAM messages only at the next
//!   prompt (OpenSSH bug 2876).
//! - account and session: only a ticket jitd granted with this login's auth passes, under the
//!   rules of [`crate::tickets`] (once per stage, same login name, service and process, account
//!   and session-open within 2 minutes of the auth). A public-key login skips auth, has no
//!   ticket, and is refused in the account stage.
//!
//! - Offline: when the server cannot be reached and the account is `offline = "cached"`, a grant
//!   the server gave earlier for this host's reservation decides instead ([`crate::offline`]).
//! - Push: when the server answers a login with a push, the prompt carries the number to type on
//!   the approval page (and, at a local terminal, a QR code of the page's address). An empty
//!   answer waits for the approval, up to `push_wait`, in [`Step::Wait`] steps shorter than the
//!   module's timeout; a typed answer goes to the server as a TOTP code. Push needs the server:
//!   while it is unreachable, a cached grant asks for a code instead, else the login is refused.
//!
//! Never logs or stores the person's answer.

use std::collections::BTreeSet;
use std::sync::Arc;

use jit_client::ClientError;
use jit_proto::api::{
    AuditResult, DenyReason, HostEvent, HostEvents, LoginBegin, LoginBegun, LoginOrigin,
    LoginVerified, LoginVerify, LoginWait, PushPrompt,
};
use jit_proto::pam::{EnvVar, LoginContext, PROTOCOL_VERSION, Request, Step, Ticket};
use jit_proto::{AccountName, PersonName};

use crate::audit_queue::new_event_id;
use crate::guarded::{Guard, GuardList};
use crate::offline::{Offline, OfflineStore};
use crate::peer::Caller;
use crate::sessions::{Sessions, Tracked, login_notice};
use crate::syslog::Decision;
use crate::tickets::{Issued, Stage, Tickets};
use crate::upstream::Server;

/// Longest PAM item passed on to the server and the logs.
pub(crate) const MAX_ITEM: usize = 256;

/// Where decisions go: syslog (authpriv) and stderr, and the local audit queue.
pub trait Record: Send + Sync + 'static {
    /// One auth decision, for syslog. Never carries a code.
    fn decision(&self, d: &Decision);
    /// An event jitd decided itself, for the local audit queue.
    fn event(&self, ev: HostEvent);
    /// The offline logins to `account` decided here that the server has not acknowledged yet.
    fn undelivered_offline(&self, _account: &str) -> Vec<HostEvent> {
        Vec::new()
    }
    /// The server stored these events: they leave the queue.
    fn delivered(&self, _events: &[HostEvent]) {}
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// This host's name, for messages and logs.
    pub host: String,
    /// The prompt for a TOTP code.
    pub prompt: String,
    /// Services that get a denial as a prompt (see the module docs).
    pub deny_as_prompt: BTreeSet<String>,
    pub push: PushSettings,
}

/// How a push login waits for its approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSettings {
    /// How long an empty answer waits for the approval (below sshd's LoginGraceTime).
    pub wait_secs: i64,
    /// How long the server holds one wait call: each [`Step::Wait`] comes within this (plus a
    /// round trip), well inside pam_jit's per-exchange timeout.
    pub slice_secs: u32,
    /// The shortest time between two wait calls, so a server that answers at once is not
    /// asked in a tight loop.
    pub pace: std::time::Duration,
    /// Draw the approval page's address as a QR code at local terminal logins.
    pub qr: bool,
}

impl Default for PushSettings {
    fn default() -> Self {
        Self {
            wait_secs: 60,
            slice_secs: 2,
            pace: std::time::Duration::from_secs(1),
            qr: true,
        }
    }
}

/// What every connection shares.
pub struct Core<S: Server, R: Record> {
    pub server: Arc<S>,
    pub record: R,
    pub settings: Settings,
    /// The host's list of guarded names.
    pub guarded: Arc<GuardList>,
    /// Tickets granted with an auth, for the account and session stages of that login.
    pub tickets: Tickets,
    /// Grants for deciding while the server is unreachable (`None`: always deny then).
    pub offline: Option<Arc<OfflineStore>>,
    /// The open sessions, warned and ended by [`crate::session_control`].
    pub sessions: Arc<Sessions>,
}

impl<S: Server, R: Record> Core<S, R> {
    pub fn new(server: Arc<S>, record: R, settings: Settings, guarded: Arc<GuardList>) -> Self {
        Self {
            server,
            record,
            settings,
            guarded,
            tickets: Tickets::default(),
            offline: None,
            sessions: Arc::new(Sessions::default()),
        }
    }

    /// Tracks the open sessions in `sessions` (saved to disk, so they are warned and ended
    /// across a restart).
    pub fn with_sessions(mut self, sessions: Arc<Sessions>) -> Self {
        self.sessions = sessions;
        self
    }

    /// Keeps the tickets in `tickets` (saved to disk, so sessions close across a restart).
    pub fn with_tickets(mut self, tickets: Tickets) -> Self {
        self.tickets = tickets;
        self
    }

    /// Lets logins to `offline = "cached"` accounts be decided from `store` when the server is
    /// unreachable.
    pub fn with_offline(mut self, store: Arc<OfflineStore>) -> Self {
        self.offline = Some(store);
        self
    }
}

#[derive(Debug)]
enum State {
    /// Nothing received yet: the first frame must be `Hello`.
    New,
    /// Between requests.
    Ready,
    /// A code prompt is out; the answer goes to `login_verify` for `attempt`.
    AwaitCode {
        ctx: LoginContext,
        account: AccountName,
        attempt: String,
    },
    /// A push prompt is out: Enter waits for the approval (until `until`), anything else is a
    /// code for `login_verify`.
    AwaitPush {
        ctx: LoginContext,
        account: AccountName,
        attempt: String,
        until: i64,
    },
    /// Waiting for the approval: each `Continue` waits once more, until `until`.
    WaitPush {
        ctx: LoginContext,
        account: AccountName,
        attempt: String,
        until: i64,
    },
    /// A denial was shown as a prompt; its answer (Enter) ends the auth with `Denied`.
    AwaitDenyAck,
    /// The server is unreachable and a cached grant exists: the answer is checked against it.
    AwaitOfflineCode {
        ctx: LoginContext,
        account: AccountName,
    },
    /// A message went out first; `Continue` gets this final step.
    Then(Box<Step>),
}

/// What the server said at the grant about the reservation's end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Terms {
    /// When it ends, by this host's clock.
    pub ends_at: Option<i64>,
    /// End the session with it.
    pub end_session: bool,
}

impl Terms {
    fn granted(ends_in_secs: Option<i64>, end_session: bool, now: i64) -> Terms {
        Terms {
            ends_at: ends_in_secs.map(|s| now + s),
            end_session,
        }
    }
}

/// One connection's conversation.
pub struct Conversation<S: Server, R: Record> {
    core: Arc<Core<S, R>>,
    state: State,
    /// The process on the other end: tickets granted here are bound to it.
    caller: Caller,
}

impl<S: Server, R: Record> Conversation<S, R> {
    pub fn new(core: Arc<Core<S, R>>, caller: Caller) -> Self {
        Self {
            core,
            state: State::New,
            caller,
        }
    }

    /// True while a prompt is out: the next frame waits on a person typing, not on a program.
    pub fn awaiting_person(&self) -> bool {
        matches!(
            self.state,
            State::AwaitCode { .. }
                | State::AwaitDenyAck
                | State::AwaitOfflineCode { .. }
                | State::AwaitPush { .. }
        )
    }

    /// The answer to `req`. A `Failed` step ends the connection.
    pub async fn handle(&mut self, req: Request, now: i64) -> Step {
        let state = std::mem::replace(&mut self.state, State::Ready);
        match (state, req) {
            (State::New, Request::Hello { version }) if version == PROTOCOL_VERSION => {
                Step::Hello {
                    version: PROTOCOL_VERSION,
                }
            }
            (State::New, Request::Hello { version }) => failed(format!(
                "pam_jit speaks protocol version {version}, jitd speaks version {PROTOCOL_VERSION}; \
                 upgrade both together"
            )),
            (State::New, other) => failed(format!(
                "the first message must be hello, not {}",
                request_kind(&other)
            )),
            (State::Ready, Request::AuthStart { ctx }) => self.auth_start(ctx, now).await,
            (State::Ready, Request::Account { ctx, ticket }) => self.account(ctx, ticket, now),
            (State::Ready, Request::SessionOpen { ctx, ticket }) => {
                self.session(ctx, ticket, true, now)
            }
            (State::Ready, Request::SessionClose { ctx, ticket }) => {
                self.session(ctx, ticket, false, now)
            }
            (
                State::AwaitCode {
                    ctx,
                    account,
                    attempt,
                },
                Request::Answer { text },
            ) => self.verify(ctx, account, attempt, text, now).await,
            (State::AwaitOfflineCode { ctx, account }, Request::Answer { text }) => {
                self.offline_verify(ctx, account, text, now)
            }
            (
                State::AwaitPush {
                    ctx,
                    account,
                    attempt,
                    until,
                },
                Request::Answer { text },
            ) => {
                if text.expose().trim().is_empty() {
                    self.wait_push(ctx, account, attempt, until, now).await
                } else {
                    self.verify(ctx, account, attempt, text, now).await
                }
            }
            (
                State::WaitPush {
                    ctx,
                    account,
                    attempt,
                    until,
                },
                Request::Continue,
            ) => self.wait_push(ctx, account, attempt, until, now).await,
            (State::AwaitDenyAck, Request::Answer { .. } | Request::Continue) => Step::Denied {
                message: String::new(),
            },
            (State::Then(step), Request::Continue) => *step,
            (
                State::AwaitCode { .. }
                | State::AwaitDenyAck
                | State::AwaitOfflineCode { .. }
                | State::AwaitPush { .. },
                other,
            ) => failed(format!(
                "expected the answer to the prompt, not {}",
                request_kind(&other)
            )),
            (State::WaitPush { .. }, other) => failed(format!(
                "expected continue while waiting for the approval, not {}",
                request_kind(&other)
            )),
            (State::Then(_), other) => failed(format!(
                "expected continue after a message, not {}",
                request_kind(&other)
            )),
            (State::Ready, other) => failed(format!(
                "{} makes no sense here: no prompt is outstanding",
                request_kind(&other)
            )),
        }
    }

    /// The shared account this login stands for, or the step that ends the stage at once: not
    /// jit's (`NotShared`), or refused because no list is known yet.
    fn guarded(
        &mut self,
        stage: &'static str,
        ctx: &LoginContext,
        now: i64,
    ) -> Result<AccountName, Step> {
        match self.core.guarded.decide(&ctx.account, ctx.uid) {
            Guard::Guarded { account } => Ok(account),
            Guard::NotGuarded => Err(Step::NotShared),
            Guard::NoList => Err(self.no_list(stage, ctx, now)),
        }
    }

    /// uid 0 or an always-guarded name while jitd has no list: refused, and said why.
    fn no_list(&mut self, stage: &'static str, ctx: &LoginContext, now: i64) -> Step {
        let reason = "no list of shared accounts: jitd has not reached the jit server since it \
                      started and no saved copy exists";
        self.decide_stage(stage, ctx, None, "denied", reason.into());
        if let Ok(account) = AccountName::new(&ctx.account) {
            let action = if stage == "auth" {
                "login.denied"
            } else {
                "account.denied"
            };
            self.event(
                ctx,
                &account,
                action,
                AuditResult::Denied,
                reason,
                None,
                None,
                now,
            );
        }
        let message = format!(
            "jit does not know the shared accounts of {} yet (jitd has not reached the jit \
             server), so logins to {} are refused until it does. Ask an admin to check \
             `journalctl -u jitd`.",
            self.core.settings.host, ctx.account
        );
        if stage == "auth" {
            self.deny(ctx, message)
        } else {
            Step::Denied { message }
        }
    }

    async fn auth_start(&mut self, ctx: LoginContext, now: i64) -> Step {
        let account = match self.guarded("auth", &ctx, now) {
            Ok(a) => a,
            Err(step) => return step,
        };
        let req = LoginBegin {
            account: account.clone(),
            origin: origin(&ctx, &self.caller),
        };
        // An offline login to this account reaches the server before an online one begins: the
        // server then consumes its reservation and burns its step, so a reservation used offline
        // cannot be used again online. Until the server has acknowledged it, no online login
        // begins (an unreachable server leads to the offline decision, as ever).
        let begun = match self.deliver_offline_uses(&account).await {
            Ok(()) => self.core.server.login_begin(&req).await,
            Err(e) => Err(e),
        };
        match begun {
            Ok(LoginBegun::Challenge {
                attempt,
                push: Some(push),
                ..
            }) => {
                self.decide(&ctx, None, "challenge", "push sent".into());
                let text = push_prompt(&ctx, &push, self.core.settings.push.qr);
                let until = now + self.core.settings.push.wait_secs;
                self.state = State::AwaitPush {
                    ctx,
                    account,
                    attempt,
                    until,
                };
                Step::Prompt { echo: false, text }
            }
            Ok(LoginBegun::Challenge {
                attempt, notice, ..
            }) => {
                self.decide(&ctx, None, "challenge", "code requested".into());
                let mut text = self.core.settings.prompt.clone();
                if let Some(n) = notice {
                    text = format!("{n}\n{text}");
                }
                self.state = State::AwaitCode {
                    ctx,
                    account,
                    attempt,
                };
                Step::Prompt { echo: false, text }
            }
            Ok(LoginBegun::Denied {
                reason: DenyReason::NotShared,
                ..
            }) => {
                tracing::info!(account = %account, "the server says this account is not shared here");
                Step::NotShared
            }
            Ok(LoginBegun::Denied { reason, message }) => {
                self.decide(
                    &ctx,
                    None,
                    "denied",
                    format!("{}: {message}", reason_name(reason)),
                );
                self.deny(&ctx, message)
            }
            Err(e) if e.is_unreachable() && self.offline_known(&account, now) => {
                match self.offline_precheck(&account, now) {
                    Offline::Ready => {
                        self.decide(
                            &ctx,
                            None,
                            "challenge",
                            "server unreachable: offline grant".into(),
                        );
                        let text = self.core.settings.prompt.clone();
                        self.state = State::AwaitOfflineCode { ctx, account };
                        Step::Prompt { echo: false, text }
                    }
                    refused => self.offline_refused(&ctx, &account, refused, now),
                }
            }
            Err(e) => self.server_failed(&ctx, &account, None, &e, now),
        }
    }

    /// Delivers the offline logins to `account` still in the audit queue, now.
    async fn deliver_offline_uses(&self, account: &AccountName) -> Result<(), ClientError> {
        let events = self.core.record.undelivered_offline(account.as_str());
        if events.is_empty() {
            return Ok(());
        }
        self.core
            .server
            .host_events(&HostEvents {
                events: events.clone(),
            })
            .await?;
        tracing::info!(account = %account, count = events.len(), "offline logins delivered before an online login");
        self.core.record.delivered(&events);
        Ok(())
    }

    fn offline_precheck(&self, account: &AccountName, now: i64) -> Offline {
        match &self.core.offline {
            Some(o) => o.precheck(account.as_str(), now),
            None => Offline::NoGrant,
        }
    }

    /// Does this host hold a live grant for `account`, used or not? Then the grant's state is
    /// what the person is told, rather than the generic "cannot be reached".
    fn offline_known(&self, account: &AccountName, now: i64) -> bool {
        self.offline_precheck(account, now) != Offline::NoGrant
    }

    /// The server is unreachable: decide from the cached grant. A grant is recorded as used
    /// (fsynced) before the login is allowed, and the login is queued for the server.
    fn offline_verify(
        &mut self,
        ctx: LoginContext,
        account: AccountName,
        code: jit_proto::Secret,
        now: i64,
    ) -> Step {
        let Some(store) = self.core.offline.clone() else {
            return self.deny(&ctx, String::new());
        };
        let outcome = match store.check(account.as_str(), &code, now) {
            Ok(o) => o,
            Err(e) => {
                // Cannot make the use durable: refuse rather than risk a second use.
                tracing::error!("{e}");
                Offline::NoGrant
            }
        };
        match outcome {
            Offline::Granted {
                person,
                reservation_id,
                step,
            } => {
                let attempt = format!("offline-{}", new_event_id());
                // The server's policy is learnt once it can be reached again.
                let terms = Terms {
                    ends_at: store.expires_at(account.as_str()),
                    end_session: false,
                };
                let ticket = self.grant(&ctx, &person, reservation_id, &attempt, terms, now);
                self.decide(
                    &ctx,
                    Some(&person),
                    "granted",
                    "offline: cached grant".into(),
                );
                self.core.record.event(HostEvent {
                    id: new_event_id(),
                    at: now,
                    action: "login.offline".into(),
                    account: account.clone(),
                    person: PersonName::new(&person).ok(),
                    result: AuditResult::Ok,
                    reason: Some(
                        "the server was unreachable; the code matched the grant cached on this host"
                            .into(),
                    ),
                    origin: origin(&ctx, &self.caller),
                    reservation_id: Some(reservation_id),
                    attempt: Some(attempt),
                    totp_step: Some(step),
                    ended: None,
                });
                Step::Granted { ticket, person }
            }
            refused => self.offline_refused(&ctx, &account, refused, now),
        }
    }

    /// Says why the cached grant did not admit the login, and records it.
    fn offline_refused(
        &mut self,
        ctx: &LoginContext,
        account: &AccountName,
        outcome: Offline,
        now: i64,
    ) -> Step {
        let host = &self.core.settings.host;
        let (reason, message) = match outcome {
            Offline::Wrong => (
                "offline: wrong code",
                format!(
                    "The code is not valid for the current reservation of {account} on {host} \
                     (checked on this host: the jit server cannot be reached)."
                ),
            ),
            Offline::Used => (
                "offline: reservation already used",
                format!("The reservation of {account} on {host} was already used by a login."),
            ),
            Offline::Locked => (
                "offline: too many wrong codes",
                format!(
                    "Too many wrong codes; logins to {account} are refused until the jit server \
                     can be reached."
                ),
            ),
            Offline::NoGrant | Offline::Ready | Offline::Granted { .. } => (
                "offline: no usable grant",
                format!(
                    "the jit server cannot be reached; logins to {account} are refused. Try \
                     again later."
                ),
            ),
        };
        self.decide(ctx, None, "denied", reason.into());
        self.event(
            ctx,
            account,
            "login.denied",
            AuditResult::Denied,
            reason,
            None,
            None,
            now,
        );
        self.deny(ctx, message)
    }

    async fn verify(
        &mut self,
        ctx: LoginContext,
        account: AccountName,
        attempt: String,
        code: jit_proto::Secret,
        now: i64,
    ) -> Step {
        let req = LoginVerify { code };
        match self.core.server.login_verify(&attempt, &req).await {
            Ok(LoginVerified::Granted {
                person,
                reservation_id,
                ends_in_secs,
                end_session_at_expiry,
            }) => {
                let terms = Terms::granted(ends_in_secs, end_session_at_expiry, now);
                let ticket =
                    self.grant(&ctx, person.as_str(), reservation_id, &attempt, terms, now);
                self.decide(
                    &ctx,
                    Some(person.as_str()),
                    "granted",
                    "code accepted".into(),
                );
                Step::Granted {
                    ticket,
                    person: person.to_string(),
                }
            }
            Ok(LoginVerified::Denied { reason, message }) => {
                self.decide(
                    &ctx,
                    None,
                    "denied",
                    format!("{}: {message}", reason_name(reason)),
                );
                self.deny(&ctx, message)
            }
            // Only a push login's wait answers that; a code always gets granted or denied.
            Ok(LoginVerified::Pending { .. }) => {
                let message = "The server did not decide on the code; log in again.".to_owned();
                self.decide(&ctx, None, "denied", message.clone());
                self.deny(&ctx, message)
            }
            // The server went away between the prompt and the answer: the grant decides.
            Err(e) if e.is_unreachable() && self.offline_known(&account, now) => {
                self.offline_verify(ctx, account, req.code, now)
            }
            Err(e) => self.server_failed(&ctx, &account, Some(attempt), &e, now),
        }
    }

    /// Waits once for the approval of a push login: granted, refused, or still waiting (a
    /// [`Step::Wait`], unless `until` has passed).
    async fn wait_push(
        &mut self,
        ctx: LoginContext,
        account: AccountName,
        attempt: String,
        until: i64,
        now: i64,
    ) -> Step {
        let push = self.core.settings.push.clone();
        let started = std::time::Instant::now();
        let req = LoginWait {
            wait_secs: push.slice_secs,
        };
        match self.core.server.login_wait(&attempt, &req).await {
            Ok(LoginVerified::Granted {
                person,
                reservation_id,
                ends_in_secs,
                end_session_at_expiry,
            }) => {
                let terms = Terms::granted(ends_in_secs, end_session_at_expiry, now);
                let ticket =
                    self.grant(&ctx, person.as_str(), reservation_id, &attempt, terms, now);
                self.decide(
                    &ctx,
                    Some(person.as_str()),
                    "granted",
                    "push approved".into(),
                );
                Step::Granted {
                    ticket,
                    person: person.to_string(),
                }
            }
            Ok(LoginVerified::Denied { reason, message }) => {
                self.decide(
                    &ctx,
                    None,
                    "denied",
                    format!("{}: {message}", reason_name(reason)),
                );
                self.deny(&ctx, message)
            }
            Ok(LoginVerified::Pending { .. }) if now >= until => {
                let reason = format!("no approval within {}s", push.wait_secs);
                self.decide(&ctx, None, "denied", reason.clone());
                self.event(
                    &ctx,
                    &account,
                    "login.denied",
                    AuditResult::Denied,
                    &reason,
                    None,
                    Some(attempt),
                    now,
                );
                self.deny(
                    &ctx,
                    format!(
                        "Nobody approved this login within {}s. The reservation of {account} is \
                         still unused: log in again.",
                        push.wait_secs
                    ),
                )
            }
            Ok(LoginVerified::Pending { .. }) => {
                if let Some(rest) = push.pace.checked_sub(started.elapsed()) {
                    tokio::time::sleep(rest).await;
                }
                self.state = State::WaitPush {
                    ctx,
                    account,
                    attempt,
                    until,
                };
                Step::Wait
            }
            // Push needs the server; a cached grant lets a code stand in.
            Err(e) if e.is_unreachable() && self.offline_known(&account, now) => {
                match self.offline_precheck(&account, now) {
                    Offline::Ready => {
                        self.decide(
                            &ctx,
                            None,
                            "challenge",
                            "server unreachable while waiting for the approval: offline grant"
                                .into(),
                        );
                        let text = format!(
                            "The jit server cannot be reached, so the approval cannot be \
                             checked.\n{}",
                            self.core.settings.prompt
                        );
                        self.state = State::AwaitOfflineCode { ctx, account };
                        Step::Prompt { echo: false, text }
                    }
                    refused => self.offline_refused(&ctx, &account, refused, now),
                }
            }
            Err(e) => self.server_failed(&ctx, &account, Some(attempt), &e, now),
        }
    }

    /// The server could not be asked: deny (fail closed), record it, say why.
    fn server_failed(
        &mut self,
        ctx: &LoginContext,
        account: &AccountName,
        attempt: Option<String>,
        e: &ClientError,
        now: i64,
    ) -> Step {
        let (message, reason) = if e.is_unreachable() {
            (
                format!(
                    "the jit server cannot be reached; logins to {account} are refused. \
                     Try again later, or ask an admin to check the jit server."
                ),
                "server_unreachable: the jit server cannot be reached".to_owned(),
            )
        } else {
            (
                format!(
                    "the jit server could not check this login to {account}; the login is \
                     refused. Ask an admin to check the system log on {}.",
                    self.core.settings.host
                ),
                format!("server_error: {e}"),
            )
        };
        tracing::warn!(account = %account, "login refused: {e}");
        self.decide(ctx, None, "denied", reason.clone());
        self.event(
            ctx,
            account,
            "login.denied",
            AuditResult::Denied,
            &reason,
            None,
            attempt,
            now,
        );
        self.deny(ctx, message)
    }

    /// Records a granted auth and returns its ticket, bound to this login and this caller.
    fn grant(
        &self,
        ctx: &LoginContext,
        person: &str,
        reservation_id: i64,
        attempt: &str,
        terms: Terms,
        now: i64,
    ) -> Ticket {
        let issued = Issued {
            login: ctx.account.clone(),
            person: person.to_owned(),
            reservation_id,
            attempt: attempt.to_owned(),
            service: ctx.service.clone(),
            granted_at: now,
            processes: self.caller.processes(),
            account_done: false,
            opened_at: None,
            ends_at: terms.ends_at,
            end_session: terms.end_session,
        };
        self.core.tickets.grant(issued, now)
    }

    /// The ticket's record if it may be used for `stage` of this login now; else why not.
    fn accept(
        &self,
        ticket: Option<&Ticket>,
        stage: Stage,
        ctx: &LoginContext,
        now: i64,
    ) -> Result<Issued, &'static str> {
        let Some(t) = ticket else {
            return Err(match stage {
                Stage::Account => {
                    "no verification code in this login (public key or another method that \
                     skips the code)"
                }
                _ => "no ticket: this login did not pass jit's verification code",
            });
        };
        self.core
            .tickets
            .accept(t, stage, &ctx.account, &ctx.service, &self.caller, now)
            .map_err(|r| r.reason())
    }

    /// A denial, as a prompt first for services that only show messages at a prompt.
    fn deny(&mut self, ctx: &LoginContext, message: String) -> Step {
        if !message.is_empty() && self.core.settings.deny_as_prompt.contains(&ctx.service) {
            self.state = State::AwaitDenyAck;
            Step::Prompt {
                echo: true,
                text: format!("{message}\n(press Enter)"),
            }
        } else {
            Step::Denied { message }
        }
    }

    fn account(&mut self, ctx: LoginContext, ticket: Option<Ticket>, now: i64) -> Step {
        let account = match self.guarded("account", &ctx, now) {
            Ok(a) => a,
            Err(step) => return step,
        };
        match self.accept(ticket.as_ref(), Stage::Account, &ctx, now) {
            Ok(t) => {
                self.decide_stage("account", &ctx, Some(&t.person), "allowed", String::new());
                Step::Allowed
            }
            Err(reason) => {
                let host = &self.core.settings.host;
                self.decide_stage("account", &ctx, None, "denied", reason.into());
                self.event(
                    &ctx,
                    &account,
                    "account.denied",
                    AuditResult::Denied,
                    reason,
                    None,
                    None,
                    now,
                );
                Step::Denied {
                    message: format!(
                        "{account} is a shared account: log in with keyboard-interactive \
                         authentication and your verification code, after reserving it with \
                         `jitctl reserve {account} --host {host}`. Logins that skip the code, \
                         such as a public key, are refused."
                    ),
                }
            }
        }
    }

    fn session(&mut self, ctx: LoginContext, ticket: Option<Ticket>, open: bool, now: i64) -> Step {
        let (stage, action) = if open {
            ("session_open", "session.open")
        } else {
            ("session_close", "session.close")
        };
        let account = match self.guarded(stage, &ctx, now) {
            Ok(a) => a,
            Err(step) => return step,
        };
        let use_ = if open {
            Stage::SessionOpen
        } else {
            Stage::SessionClose
        };
        match self.accept(ticket.as_ref(), use_, &ctx, now) {
            Ok(t) => {
                let person = PersonName::new(&t.person).ok();
                self.decide_stage(
                    stage,
                    &ctx,
                    Some(&t.person),
                    if open { "open" } else { "close" },
                    String::new(),
                );
                let reason = if open {
                    "session opened"
                } else {
                    "session closed"
                };
                self.event_full(
                    &ctx,
                    &account,
                    action,
                    AuditResult::Ok,
                    reason,
                    person,
                    Some(t.reservation_id),
                    Some(t.attempt.clone()),
                    now,
                );
                if !open {
                    self.core.sessions.closed(&t.attempt);
                    return Step::Session { env: Vec::new() };
                }
                let tracked = self.track(&ctx, &account, &t, now);
                let notice = login_notice(&tracked, &self.core.settings.host, now);
                self.core.sessions.opened(tracked);
                let step = Step::Session {
                    env: vec![EnvVar {
                        name: "JIT_PERSON".into(),
                        value: t.person,
                    }],
                };
                match notice {
                    Some(text) => {
                        self.state = State::Then(Box::new(step));
                        Step::Info { text }
                    }
                    None => step,
                }
            }
            Err(reason) => {
                self.decide_stage(stage, &ctx, None, "denied", reason.into());
                self.event(
                    &ctx,
                    &account,
                    action,
                    AuditResult::Denied,
                    reason,
                    None,
                    None,
                    now,
                );
                Step::Denied {
                    message: format!(
                        "{account} is a shared account: a session needs a login that passed \
                         jit's verification code."
                    ),
                }
            }
        }
    }

    /// The session a login opens, as [`crate::sessions`] tracks it: led by the process that
    /// opened it.
    fn track(&self, ctx: &LoginContext, account: &AccountName, t: &Issued, now: i64) -> Tracked {
        Tracked {
            attempt: t.attempt.clone(),
            login: ctx.account.clone(),
            account: account.to_string(),
            person: t.person.clone(),
            reservation_id: t.reservation_id,
            service: clip(&ctx.service),
            rhost: ctx.rhost.as_deref().map(clip),
            tty: ctx.tty.as_deref().map(clip),
            ruser: ctx.ruser.as_deref().map(clip),
            leader: self.caller.process,
            opened_at: now,
            ends_at: t.ends_at,
            end_session: t.end_session,
            ended_early: None,
            warned_for: None,
            ended: None,
        }
    }

    fn decide(
        &self,
        ctx: &LoginContext,
        person: Option<&str>,
        result: &'static str,
        reason: String,
    ) {
        self.decide_stage("auth", ctx, person, result, reason);
    }

    fn decide_stage(
        &self,
        stage: &'static str,
        ctx: &LoginContext,
        person: Option<&str>,
        result: &'static str,
        reason: String,
    ) {
        self.core.record.decision(&Decision {
            stage,
            account: ctx.account.clone(),
            person: person.map(str::to_owned),
            host: self.core.settings.host.clone(),
            service: clip(&ctx.service),
            rhost: ctx.rhost.as_deref().map(clip),
            result,
            reason,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        ctx: &LoginContext,
        account: &AccountName,
        action: &str,
        result: AuditResult,
        reason: &str,
        person: Option<PersonName>,
        attempt: Option<String>,
        now: i64,
    ) {
        self.event_full(
            ctx, account, action, result, reason, person, None, attempt, now,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn event_full(
        &self,
        ctx: &LoginContext,
        account: &AccountName,
        action: &str,
        result: AuditResult,
        reason: &str,
        person: Option<PersonName>,
        reservation_id: Option<i64>,
        attempt: Option<String>,
        now: i64,
    ) {
        self.core.record.event(HostEvent {
            id: new_event_id(),
            at: now,
            action: action.to_owned(),
            account: account.clone(),
            person,
            result,
            reason: Some(reason.to_owned()),
            origin: origin(ctx, &self.caller),
            reservation_id,
            attempt,
            totp_step: None,
            ended: None,
        });
    }
}

fn failed(message: String) -> Step {
    Step::Failed { message }
}

/// At most [`MAX_ITEM`] characters of a PAM item.
fn clip(s: &str) -> String {
    s.chars().take(MAX_ITEM).collect()
}

/// Where a login comes from: the PAM items the application set, and the source wrong codes
/// count against, from what the kernel says of `caller` ([`crate::source`]).
fn origin(ctx: &LoginContext, caller: &Caller) -> LoginOrigin {
    LoginOrigin {
        service: clip(&ctx.service),
        rhost: ctx.rhost.as_deref().map(clip),
        tty: ctx.tty.as_deref().map(clip),
        ruser: ctx.ruser.as_deref().map(clip),
        ssh_key: ctx.ssh_auth_info.as_deref().and_then(ssh_key_used),
        source: Some(crate::source::login_source(
            caller.real_uid,
            ctx.rhost.as_deref(),
            ctx.tty.as_deref(),
        )),
    }
}

/// The `SHA256:…` fingerprint of the public key sshd accepted before PAM, from its
/// `SSH_AUTH_INFO_0` (one `METHOD [DETAILS]` line per method that passed; for `publickey`,
/// `publickey TYPE BASE64`). The last key wins, as it is the one that completed the method.
fn ssh_key_used(info: &str) -> Option<String> {
    use base64::Engine;
    info.lines().rev().find_map(|l| {
        let mut w = l.split_whitespace();
        match (w.next(), w.next(), w.next()) {
            (Some("publickey"), Some(_type), Some(b64)) => {
                let blob = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
                Some(jit_proto::ssh_key::fingerprint_of_blob(&blob))
            }
            _ => None,
        }
    })
}

fn reason_name(r: DenyReason) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The request's name for error messages: never its contents.
pub fn request_kind(r: &Request) -> &'static str {
    match r {
        Request::Hello { .. } => "hello",
        Request::AuthStart { .. } => "auth_start",
        Request::Answer { .. } => "answer",
        Request::Continue => "continue",
        Request::Account { .. } => "account",
        Request::SessionOpen { .. } => "session_open",
        Request::SessionClose { .. } => "session_close",
    }
}

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;

/// The prompt of a push login: the number to type on the approval page, in the prompt's own
/// text (OpenSSH before 10.3 shows informational messages only with the next prompt). At a
/// local terminal (no remote host), the approval page's address as a QR code too.
pub fn push_prompt(ctx: &LoginContext, push: &PushPrompt, qr: bool) -> String {
    let mut text = String::new();
    let local_terminal = ctx.rhost.as_deref().is_none_or(str::is_empty)
        && ctx.tty.as_deref().is_some_and(|t| !t.is_empty());
    if qr
        && local_terminal
        && let Some(code) = jit_proto::qr::render(&push.approve_url)
    {
        text.push_str(&code);
        text.push_str(&format!(
            "\nScan to open the approval page: {}\n",
            push.approve_url
        ));
    }
    let or_code = if push.totp_allowed {
        " (or type a code)"
    } else {
        ""
    };
    text.push_str(&format!(
        "Approve login {} on your phone, then press Enter{or_code}: ",
        push.number
    ));
    text
}
