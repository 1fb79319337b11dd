//! The login decision as one pure function: [`decide`] takes the step being decided, the facts
//! the store read, and `now`, and says what to do. It reads no database, no clock and no
//! network, so every rule is shown by a row of the table test below.
//!
//! The same eligibility rules serve every step: a login begins only where it could also be
//! granted, and a code is checked only where the login could begin.

use jit_proto::api::{DenyReason, Factor, FactorPolicy, OfflinePolicy};
use jit_proto::timefmt::{human_secs, utc};

/// TOTP time step, in seconds.
pub const STEP_SECS: i64 = crate::totp::STEP_SECS as i64;

/// What is being decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A login to a shared account begins at a prompt: may the holder be asked for a factor?
    /// `number` is drawn at random by the caller (10 to 99), for a push.
    Begin { number: u8 },
    /// The person answered the prompt. `code` is what TOTP matching made of the answer.
    Verify { code: CodeMatch },
    /// The host waits for the holder to approve the push of its attempt.
    Wait,
    /// Person `by` typed `number` on the approval page or in `jitctl approve`.
    Approve { by: String, number: u8 },
    /// Person `by` says "This was not me".
    Report { by: String },
    /// A host reports a login it decided offline from the grant it was served.
    Offline(OfflineReport),
}

/// The outcome of matching a typed code against the holder's secret ([`crate::totp::check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeMatch {
    /// The holder's code of this time step (within the allowed skew).
    Step(i64),
    /// No step within the skew has this code.
    NoMatch,
}

/// What a host says about a login it allowed offline. Believed only as far as the grant it was
/// served bounds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineReport {
    pub reservation_id: Option<i64>,
    pub account: String,
    pub person: Option<String>,
    /// When the host says the login happened (its clock).
    pub at: i64,
    pub totp_step: Option<i64>,
}

/// Everything [`decide`] may look at. The store reads it in the transaction that then applies
/// the decision, so what was decided is what holds when it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The calling host.
    pub host: HostFacts,
    /// The shared account the login is for (`None`: no such account).
    pub account: Option<AccountFacts>,
    /// Begin: the live reservation of the account on this host. Verify: the attempt's
    /// reservation. Offline: the reservation the report names.
    pub reservation: Option<ReservationFacts>,
    /// The person holding `reservation`.
    pub holder: Option<PersonFacts>,
    /// Verify: the login attempt being answered (`None`: unknown to this host).
    pub attempt: Option<AttemptFacts>,
    /// Offline: the grant the server issued for `reservation`.
    pub grant: Option<GrantFacts>,
    /// The registered owner of the ssh key sshd accepted for this login, if the key is
    /// registered.
    pub key_owner: Option<String>,
    pub lockout: LockoutPolicy,
    /// Verify, wait, approve, report: the push challenge of the attempt, if it has one.
    pub challenge: Option<ChallengeFacts>,
    /// Begin: when the holder was last sent a push for this account.
    pub last_push_at: Option<i64>,
    pub push: PushPolicy,
    /// Begin and verify: where the prompt is, and the wrong codes that came from there.
    pub source: SourceFacts,
    pub guessing: GuessPolicy,
}

/// Who sits at the prompt, as the host tells it from the kernel (`uid:1000` behind su,
/// `addr:192.0.2.7` behind ssh, `tty:tty1` at a console), and what they typed wrong before.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceFacts {
    pub name: String,
    /// Wrong codes from this source on this host within the guessing window, since the last
    /// right code from there.
    pub failures: u32,
    /// When the last of them came.
    pub last_failure_at: Option<i64>,
}

/// `[guessing]` of server.toml: wrong login codes delay the source they came from, never the
/// person they were typed for; enough of them for one person, from wherever, alert the admins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuessPolicy {
    /// Wrong codes a source may type on a host before it has to wait.
    pub free_failures: u32,
    /// The first wait; each further wrong code doubles it, up to `max_delay_secs`.
    pub first_delay_secs: i64,
    pub max_delay_secs: i64,
    /// How long a wrong code counts, for its source and for the alert.
    pub window_secs: i64,
    /// Wrong codes for one person's reservations, from every source within the window, that
    /// raise `login.guessing_alert` (and again at every further multiple).
    pub alert_failures: u32,
}

impl GuessPolicy {
    /// When a source with `failures` wrong codes, the last at `last`, may try again (`None`:
    /// at once). The wait doubles with each wrong code past the free ones, so past the cap a
    /// source gets one guess per `max_delay_secs`.
    pub fn next_try(&self, failures: u32, last: Option<i64>) -> Option<i64> {
        let past = failures.checked_sub(self.free_failures)?;
        let delay = self
            .first_delay_secs
            .saturating_mul(1_i64 << past.min(40))
            .min(self.max_delay_secs);
        Some(last?.saturating_add(delay))
    }

    /// Does the `n`th wrong code for one person raise the alert?
    pub fn alerts_at(&self, n: u32) -> bool {
        self.alert_failures > 0 && n >= self.alert_failures && n.is_multiple_of(self.alert_failures)
    }
}

/// `[push]` of server.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushPolicy {
    /// At most one push per person and account within this.
    pub rate_secs: i64,
    /// A challenge's lifetime.
    pub ttl_secs: i64,
}

/// A push challenge's state as stored (a `Pending` one past `expires_at` has run out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeState {
    Pending,
    /// The right number was typed; the login has not used the approval yet.
    Approved,
    /// The approval was used by the login it was given for.
    Used,
    /// A wrong number was typed.
    Denied,
    Expired,
    /// "This was not me".
    Reported,
    /// The login ended otherwise (a TOTP code was accepted instead).
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeFacts {
    pub number: u8,
    pub state: ChallengeState,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    pub name: String,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountFacts {
    pub name: String,
    pub active: bool,
    /// Its host patterns or labels match the calling host.
    pub on_host: bool,
    pub offline: OfflinePolicy,
    pub factor: FactorPolicy,
}

/// A reservation's state as stored (an `Active` one past `expires_at` has run out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Active,
    Consumed,
    Released,
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationFacts {
    pub id: i64,
    pub account: String,
    pub person: String,
    /// It is a reservation of the calling host.
    pub on_this_host: bool,
    pub state: Lifecycle,
    pub created_at: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
}

impl ReservationFacts {
    /// Its state at `t`, as a login would find it.
    fn state_at(&self, t: i64) -> Lifecycle {
        match self.state {
            Lifecycle::Active if self.expires_at <= t => Lifecycle::Expired,
            s => s,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonFacts {
    pub name: String,
    pub active: bool,
    /// Has a confirmed TOTP factor.
    pub enrolled: bool,
    /// Has enrolled push.
    pub push: bool,
    pub locked_until: Option<i64>,
    /// The newest TOTP step accepted from this person (each step is accepted once).
    pub last_step: Option<i64>,
    /// Wrong codes within the lockout window before `now` (the person's own: enrollment and
    /// factor confirmations).
    pub recent_failures: u32,
    /// Wrong login codes typed for this person's reservations within the guessing window,
    /// from every source.
    pub guesses: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptFacts {
    /// Already granted or denied.
    pub answered: bool,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantFacts {
    /// When the host first fetched it (`None`: never).
    pub served_at: Option<i64>,
    /// The steps it holds hashed codes for.
    pub steps: Vec<i64>,
}

/// `[lockout]` of server.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub max_failures: u32,
    pub window_secs: i64,
    pub duration_secs: i64,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Begin: ask the holder for their factor (the store opens a login attempt, and for a push
    /// its challenge). `expires_at` is the reservation's end.
    Prompt {
        factor: Factor,
        expires_at: i64,
        /// For [`Factor::Push`]: the challenge to make and send.
        push: Option<PushOffer>,
        /// A push was due but one was sent within the rate limit: a code is asked for instead.
        rate_limited: bool,
    },
    /// Verify: the right, fresh code. Use `step` up and consume the reservation.
    Grant { step: i64 },
    /// Wait: the holder approved this attempt's push. Use the approval up and consume the
    /// reservation.
    GrantApproved,
    /// Wait: nobody answered yet; ask again until `until`.
    Wait { until: i64 },
    /// Approve: the right number. The challenge is approved (the host's wait then grants).
    Approved,
    /// Report: the login is refused, the reservation released, the admins alerted.
    Reported,
    /// Offline: a believable report. Use `step` up and consume the reservation as of `at`.
    Reconcile { step: i64, at: i64 },
    /// Refused; nothing is consumed and no step is used.
    Deny(Denial),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub reason: DenyReason,
    /// Begin and verify: for the person at the prompt (it says what to do next and never names
    /// the holder). Offline: why, for the audit log.
    pub message: String,
    /// A wrong code of the person's own (enrollment): it counts towards the lockout, and locks
    /// the person when `lock_until`.
    pub failure: Option<Failure>,
    /// A wrong login code: it counts against its source (and for the holder's alert).
    pub guess: Option<Guess>,
    /// Offline: no grant this host was served could have produced the report.
    pub suspicious: bool,
    /// What the refusal means for a push (recorded on the challenge and audited as such).
    pub push: Option<PushEnd>,
}

/// A push challenge to make: its number and end, and whether a typed code may stand in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushOffer {
    pub number: u8,
    pub expires_at: i64,
    pub totp_allowed: bool,
}

/// How a refusal ends a push (none of these counts as a wrong code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushEnd {
    /// A wrong number was typed: `push.denied`, and the login is refused.
    WrongNumber,
    /// Nobody answered in time: `push.expired`.
    Expired,
    /// A push would have been due within the rate limit: `push.rate_limited`.
    RateLimited,
}

/// A wrong login code, and what it means for its source and for the holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guess {
    /// The source it came from.
    pub source: String,
    /// Wrong codes from that source on this host, this one included.
    pub from_source: u32,
    /// When that source may try again (`None`: at once).
    pub next_try: Option<i64>,
    /// Wrong codes for the holder from every source, this one included.
    pub for_person: u32,
    /// Audit `login.guessing_alert` and alert the admins.
    pub alert: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// Wrong codes within the window, this one included.
    pub count: u32,
    pub lock_until: Option<i64>,
}

/// What checking a person's own code comes to (the enrollment confirmation). Login codes are
/// judged in `verify`, against their source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeVerdict {
    /// Right and fresh: use `step`.
    Accepted(i64),
    /// Right, but this step (or a later one) was used already.
    Replayed,
    Wrong(Failure),
    /// Locked out until then; the code does not matter.
    LockedOut(i64),
}

/// The decision for `step`, from `facts` alone.
pub fn decide(step: &Step, facts: &Facts, now: i64) -> Decision {
    let outcome = match step {
        Step::Begin { number } => begin(facts, *number, now),
        Step::Verify { code } => verify(facts, *code, now),
        Step::Wait => wait(facts, now),
        Step::Approve { by, number } => approve(facts, by, *number, now),
        Step::Report { by } => report(facts, by),
        Step::Offline(report) => offline(facts, report, now),
    };
    outcome.unwrap_or_else(Decision::Deny)
}

/// Replay, failure counting and lockout for one code of one person.
pub fn judge_code(
    person: &PersonFacts,
    code: CodeMatch,
    p: &LockoutPolicy,
    now: i64,
) -> CodeVerdict {
    if let Some(until) = person.locked_until.filter(|u| *u > now) {
        return CodeVerdict::LockedOut(until);
    }
    match code {
        CodeMatch::Step(step) if person.last_step.is_some_and(|last| step <= last) => {
            CodeVerdict::Replayed
        }
        CodeMatch::Step(step) => CodeVerdict::Accepted(step),
        CodeMatch::NoMatch => {
            let count = person.recent_failures.saturating_add(1);
            CodeVerdict::Wrong(Failure {
                count,
                lock_until: (count >= p.max_failures).then_some(now + p.duration_secs),
            })
        }
    }
}

/// The lockout's audit reason.
pub fn lockout_reason(f: &Failure, p: &LockoutPolicy) -> String {
    format!(
        "{} wrong codes within {}; locked until {}",
        f.count,
        human_secs(p.window_secs),
        f.lock_until.map(utc).unwrap_or_default()
    )
}

fn deny(reason: DenyReason, message: impl Into<String>) -> Denial {
    Denial {
        reason,
        message: message.into(),
        failure: None,
        guess: None,
        suspicious: false,
        push: None,
    }
}

fn how_to_reserve(account: &str, host: &str) -> String {
    format!("Reserve it first: jitctl reserve {account} --host {host}")
}

/// The checks every prompt-bound step shares: the account exists here and is enabled, the host
/// is enabled, a live reservation is held by an active, enrolled person, and a key sshd
/// accepted (if any) is not someone else's.
fn eligible(
    f: &Facts,
    prompted: bool,
    now: i64,
) -> Result<(&ReservationFacts, &PersonFacts), Denial> {
    let h = f.host.name.as_str();
    let account = match &f.account {
        Some(a) if a.on_host => a,
        // Before a prompt, a name that is not shared here is none of jit's business; after
        // one, the account was moved off this host meanwhile.
        _ if !prompted => return Err(deny(DenyReason::NotShared, "")),
        a => {
            let what = a.as_ref().map_or("This shared account".to_owned(), |a| {
                format!("The shared account {}", a.name)
            });
            return Err(deny(
                DenyReason::HostNotAllowed,
                format!("{what} no longer exists on {h}."),
            ));
        }
    };
    let a = account.name.as_str();
    if !account.active {
        return Err(deny(
            DenyReason::AccountDisabled,
            format!("The shared account {a} is disabled."),
        ));
    }
    if !f.host.active {
        return Err(deny(
            DenyReason::HostNotAllowed,
            format!(
                "{h} is disabled in jit, so its shared accounts cannot be used; ask an admin to \
                 run `jitctl host enable {h}`."
            ),
        ));
    }
    let again = how_to_reserve(a, h);
    let Some(res) = &f.reservation else {
        return Err(deny(
            DenyReason::NoReservation,
            format!("{a} is not reserved on {h}. {again}"),
        ));
    };
    match res.state_at(now) {
        Lifecycle::Active => {}
        Lifecycle::Consumed => {
            return Err(deny(
                DenyReason::AlreadyUsed,
                format!("The reservation of {a} on {h} was already used by a login. {again}"),
            ));
        }
        Lifecycle::Expired => {
            return Err(deny(
                DenyReason::Expired,
                format!("The reservation of {a} on {h} has expired. {again}"),
            ));
        }
        Lifecycle::Released => {
            return Err(deny(
                DenyReason::NoReservation,
                format!("{a} is not reserved on {h}. {again}"),
            ));
        }
    }
    // sshd accepted the key of a registered person who is not the holder.
    if f.key_owner.as_ref().is_some_and(|o| *o != res.person) {
        return Err(deny(
            DenyReason::NoReservation,
            format!("{a} is not reserved for you on {h}. {again}"),
        ));
    }
    let cannot = format!("The reservation of {a} on {h} cannot be used.");
    let Some(person) = f.holder.as_ref().filter(|p| p.name == res.person) else {
        return Err(deny(DenyReason::PersonDisabled, cannot));
    };
    if !person.active {
        return Err(deny(DenyReason::PersonDisabled, cannot));
    }
    if !person.enrolled && !person.push {
        return Err(deny(DenyReason::NotEnrolled, cannot));
    }
    // A person's lockout (wrong codes at the portal's sign-in or a factor confirmation, which
    // anyone who knows the name can type) holds back those places only: logins on hosts are
    // held back per source instead, so nobody can lock the holder out of them.
    Ok((res, person))
}

/// Which factors this login may use: a TOTP code, a push.
fn usable(f: &Facts, person: &PersonFacts) -> (bool, bool) {
    let policy = f.account.as_ref().map_or(FactorPolicy::Any, |a| a.factor);
    (
        person.enrolled && policy != FactorPolicy::Push,
        person.push && policy != FactorPolicy::Totp,
    )
}

/// A source that typed too many wrong codes on this host waits; nobody else does.
fn source_waits(f: &Facts, now: i64) -> Result<(), Denial> {
    let src = &f.source;
    match f
        .guessing
        .next_try(src.failures, src.last_failure_at)
        .filter(|t| *t > now)
    {
        Some(t) => Err(deny(
            DenyReason::LockedOut,
            format!(
                "Too many wrong codes from here ({}) on {}. Try again after {}.",
                src.name,
                f.host.name,
                utc(t)
            ),
        )),
        None => Ok(()),
    }
}

fn begin(f: &Facts, number: u8, now: i64) -> Result<Decision, Denial> {
    let (res, person) = eligible(f, false, now)?;
    source_waits(f, now)?;
    let (totp, push) = usable(f, person);
    let prompt = |factor, push, rate_limited| Decision::Prompt {
        factor,
        expires_at: res.expires_at,
        push,
        rate_limited,
    };
    if !totp && !push {
        let (a, h) = (res.account.as_str(), f.host.name.as_str());
        let needs = if person.push {
            "a code from an authenticator app: set one up in the portal or with `jitctl factor \
             add totp`"
        } else {
            "an approval on the phone (push): turn it on with `jitctl factor add push`"
        };
        return Err(deny(
            DenyReason::FactorNotAllowed,
            format!("The reservation of {a} on {h} cannot be used: logins to {a} need {needs}."),
        ));
    }
    if !push {
        return Ok(prompt(Factor::Totp, None, false));
    }
    let recent = f
        .last_push_at
        .is_some_and(|t| t > now - f.push.rate_secs && t <= now);
    if !recent {
        let offer = PushOffer {
            number,
            expires_at: now + f.push.ttl_secs,
            totp_allowed: totp,
        };
        return Ok(prompt(Factor::Push, Some(offer), false));
    }
    if totp {
        return Ok(prompt(Factor::Totp, None, true));
    }
    Err(Denial {
        push: Some(PushEnd::RateLimited),
        ..deny(
            DenyReason::RateLimited,
            format!(
                "A push for this login was sent less than {} ago. Wait, then log in again.",
                human_secs(f.push.rate_secs)
            ),
        )
    })
}

/// The attempt being answered must be known, open and in time.
fn open_attempt(f: &Facts, now: i64) -> Result<(), Denial> {
    let Some(attempt) = &f.attempt else {
        return Err(deny(
            DenyReason::AttemptExpired,
            "This login attempt is unknown; start the login again.",
        ));
    };
    if attempt.answered {
        return Err(deny(
            DenyReason::AttemptExpired,
            "This login attempt was already answered; start the login again.",
        ));
    }
    if attempt.expires_at <= now {
        return Err(deny(
            DenyReason::AttemptExpired,
            "The answer came too late; start the login again.",
        ));
    }
    Ok(())
}

/// A push refused on the approval page refuses the login, whatever is typed afterwards.
fn refused_push(f: &Facts) -> Result<(), Denial> {
    match f.challenge.as_ref().map(|c| c.state) {
        Some(ChallengeState::Denied) => Err(deny(
            DenyReason::PushDenied,
            "A wrong number was typed on the approval page, so this login is refused. Log in \
             again to get a new number.",
        )),
        Some(ChallengeState::Reported) => Err(deny(
            DenyReason::PushDenied,
            "This login was refused on the approval page.",
        )),
        _ => Ok(()),
    }
}

fn verify(f: &Facts, code: CodeMatch, now: i64) -> Result<Decision, Denial> {
    // A report ends the attempt too; say why rather than "already answered".
    refused_push(f)?;
    open_attempt(f, now)?;
    let (res, person) = eligible(f, true, now)?;
    if !usable(f, person).0 {
        return Err(deny(
            DenyReason::FactorNotAllowed,
            format!(
                "Logins to {} need the approval; a code is not accepted. Approve it, then press \
                 Enter.",
                res.account
            ),
        ));
    }
    // A source that must wait gets its code neither looked at nor counted.
    source_waits(f, now)?;
    match code {
        CodeMatch::Step(step) if person.last_step.is_some_and(|last| step <= last) => Err(deny(
            DenyReason::ReplayedCode,
            "That code was already used. Wait for the next code and log in again.",
        )),
        CodeMatch::Step(step) => Ok(Decision::Grant { step }),
        CodeMatch::NoMatch => {
            let from_source = f.source.failures.saturating_add(1);
            let for_person = person.guesses.saturating_add(1);
            let guess = Guess {
                source: f.source.name.clone(),
                from_source,
                next_try: f.guessing.next_try(from_source, Some(now)),
                for_person,
                alert: f.guessing.alerts_at(for_person),
            };
            let mut message = format!(
                "The code is not valid for the current reservation of {} on {}.",
                res.account, f.host.name
            );
            if let Some(t) = guess.next_try {
                message.push_str(&format!(
                    " Too many wrong codes from here: try again after {}.",
                    utc(t)
                ));
            }
            Err(Denial {
                guess: Some(guess),
                ..deny(DenyReason::WrongCode, message)
            })
        }
    }
}

fn wait(f: &Facts, now: i64) -> Result<Decision, Denial> {
    refused_push(f)?;
    open_attempt(f, now)?;
    let Some(c) = &f.challenge else {
        return Err(deny(
            DenyReason::AttemptExpired,
            "This login does not wait for an approval; start the login again.",
        ));
    };
    eligible(f, true, now)?;
    match c.state {
        ChallengeState::Approved => Ok(Decision::GrantApproved),
        ChallengeState::Pending if c.expires_at > now => Ok(Decision::Wait {
            until: c.expires_at,
        }),
        ChallengeState::Pending | ChallengeState::Expired => Err(Denial {
            push: (c.state == ChallengeState::Pending).then_some(PushEnd::Expired),
            ..deny(
                DenyReason::PushExpired,
                "Nobody approved this login in time. Log in again to get a new number.",
            )
        }),
        ChallengeState::Used
        | ChallengeState::Closed
        | ChallengeState::Denied
        | ChallengeState::Reported => Err(deny(
            DenyReason::AttemptExpired,
            "This login attempt was already answered; start the login again.",
        )),
    }
}

/// The challenge being answered on the approval page or in `jitctl approve`: it must be one of
/// `by`'s own (anything else reads as "no such login", so nobody learns of other people's).
fn own_challenge<'a>(f: &'a Facts, by: &str) -> Result<&'a ChallengeFacts, Denial> {
    match (&f.challenge, &f.reservation) {
        (Some(c), Some(r)) if r.person == by => Ok(c),
        _ => Err(deny(
            DenyReason::AttemptExpired,
            "No such login is waiting for your approval.",
        )),
    }
}

fn approve(f: &Facts, by: &str, number: u8, now: i64) -> Result<Decision, Denial> {
    use subtle::ConstantTimeEq;
    let c = own_challenge(f, by)?;
    let answered = || {
        deny(
            DenyReason::AttemptExpired,
            "This login was already answered; an approval counts once, for its own login.",
        )
    };
    match c.state {
        ChallengeState::Pending if c.expires_at > now => {}
        ChallengeState::Pending | ChallengeState::Expired => {
            return Err(Denial {
                push: (c.state == ChallengeState::Pending).then_some(PushEnd::Expired),
                ..deny(
                    DenyReason::PushExpired,
                    "This login waited too long and has expired; log in again to get a new \
                     number.",
                )
            });
        }
        _ => return Err(answered()),
    }
    if f.attempt.as_ref().is_none_or(|a| a.answered) {
        return Err(answered());
    }
    eligible(f, true, now)?;
    if !bool::from(c.number.ct_eq(&number)) {
        return Err(Denial {
            push: Some(PushEnd::WrongNumber),
            ..deny(
                DenyReason::PushDenied,
                "That is not the number the login prompt shows, so the login is refused. If you \
                 did not start this login, report it: it was not you.",
            )
        });
    }
    Ok(Decision::Approved)
}

fn report(f: &Facts, by: &str) -> Result<Decision, Denial> {
    let c = own_challenge(f, by)?;
    match c.state {
        ChallengeState::Approved | ChallengeState::Used => Err(deny(
            DenyReason::AttemptExpired,
            "You approved this login. If that was a mistake, release the reservation and tell \
             an admin.",
        )),
        ChallengeState::Reported => Err(deny(
            DenyReason::AttemptExpired,
            "This login was reported already.",
        )),
        _ => Ok(Decision::Reported),
    }
}

fn suspicious(reason: DenyReason, why: String) -> Denial {
    Denial {
        suspicious: true,
        ..deny(reason, why)
    }
}

/// A host is trusted only as far as the grant it was given bounds it. Whatever else it says
/// (another host's reservation, a step outside the reservation's window, a time it could not
/// have logged in at) is refused and changes nothing: no reservation is consumed and no step is
/// used, so a host can neither lock a person out of TOTP nor backdate the audit log.
fn offline(f: &Facts, ev: &OfflineReport, now: i64) -> Result<Decision, Denial> {
    use DenyReason as R;
    let Some(id) = ev.reservation_id else {
        return Err(suspicious(
            R::NoReservation,
            "the event names no reservation".into(),
        ));
    };
    let Some(res) = f.reservation.as_ref().filter(|r| r.id == id) else {
        return Err(suspicious(
            R::NoReservation,
            format!("reservation {id} does not exist"),
        ));
    };
    if !res.on_this_host {
        return Err(suspicious(
            R::HostNotAllowed,
            format!("reservation {id} is not a reservation of this host"),
        ));
    }
    if res.account != ev.account {
        return Err(suspicious(
            R::NoReservation,
            format!(
                "reservation {id} is for {}, not {}",
                res.account, ev.account
            ),
        ));
    }
    if let Some(p) = ev.person.as_ref().filter(|p| **p != res.person) {
        return Err(suspicious(
            R::NoReservation,
            format!("reservation {id} is held by {}, not {p}", res.person),
        ));
    }
    let Some(grant) = &f.grant else {
        return Err(suspicious(
            R::NoAuth,
            format!("no offline grant was issued for reservation {id}"),
        ));
    };
    let Some(served_at) = grant.served_at else {
        return Err(suspicious(
            R::NoAuth,
            format!("the offline grant of reservation {id} was never given to this host"),
        ));
    };
    if let Some(a) = f
        .account
        .as_ref()
        .filter(|a| a.offline != OfflinePolicy::Cached)
    {
        // The policy changed after the grant was served: the host may have acted in good faith.
        return Err(deny(
            R::NoAuth,
            format!("the offline policy of {} is no longer `cached`", a.name),
        ));
    }
    let Some(step) = ev.totp_step else {
        return Err(suspicious(
            R::WrongCode,
            "the event carries no time step".into(),
        ));
    };
    // The host's clock may run a step ahead of ours; beyond that the time is made up.
    if ev.at > now + STEP_SECS {
        return Err(suspicious(
            R::Expired,
            format!("the reported login time {} is in the future", utc(ev.at)),
        ));
    }
    let at = ev.at.min(now);
    if at < res.created_at || at >= res.expires_at {
        return Err(suspicious(
            R::Expired,
            format!(
                "the reported login time {} is outside the reservation's window ({} to {})",
                utc(at),
                utc(res.created_at),
                utc(res.expires_at)
            ),
        ));
    }
    if at < served_at - STEP_SECS {
        return Err(suspicious(
            R::Expired,
            format!(
                "the reported login time {} is before this host was given the grant ({})",
                utc(at),
                utc(served_at)
            ),
        ));
    }
    let window = reservation_steps(res.created_at, res.expires_at);
    if !window.contains(&step) {
        return Err(suspicious(
            R::WrongCode,
            format!(
                "time step {step} is outside the reservation's window (steps {} to {})",
                window.start(),
                window.end()
            ),
        ));
    }
    if !grant.steps.contains(&step) {
        return Err(suspicious(
            R::WrongCode,
            format!("time step {step} is in no offline grant this host was given"),
        ));
    }
    if (step - at.div_euclid(STEP_SECS)).abs() > 1 {
        return Err(suspicious(
            R::WrongCode,
            format!(
                "time step {step} is not within one step of the reported login time (step {})",
                at.div_euclid(STEP_SECS)
            ),
        ));
    }
    // The reservation must have been live at the time of the login: active, or expired at
    // `expires_at` (after `at`, as checked above), or ended after `at`.
    let ended_by_then = res.ended_at.is_none_or(|e| e <= at);
    let gone = match res.state {
        // Nobody tells a host offline of a release; a consumption it made itself it knows of.
        Lifecycle::Consumed if ended_by_then => Some(("consumed", R::AlreadyUsed, true)),
        Lifecycle::Released if ended_by_then => Some(("released", R::NoReservation, false)),
        _ => None,
    };
    if let Some((word, reason, suspicious)) = gone {
        return Err(Denial {
            suspicious,
            ..deny(
                reason,
                format!(
                    "reservation {id} was already {word} at the reported login time {}",
                    utc(at)
                ),
            )
        });
    }
    Ok(Decision::Reconcile { step, at })
}

/// The steps a login with the reservation may use: one step of skew before it starts, to one
/// after it ends.
pub fn reservation_steps(created_at: i64, expires_at: i64) -> std::ops::RangeInclusive<i64> {
    created_at.div_euclid(STEP_SECS) - 1..=expires_at.div_euclid(STEP_SECS) + 1
}

/// The steps a grant issued at `now` covers: the reservation's steps from now (a step of skew
/// before), at most [`jit_proto::offline::MAX_STEPS`] of them: the next 15 minutes.
pub fn grant_steps(created_at: i64, expires_at: i64, now: i64) -> std::ops::RangeInclusive<i64> {
    let all = reservation_steps(created_at, expires_at);
    let first = (*all.start()).max(now.div_euclid(STEP_SECS) - 1);
    let last = (*all.end()).min(first + jit_proto::offline::MAX_STEPS - 1);
    first..=last
}

#[cfg(test)]
#[path = "decision_tests.rs"]
mod tests;
