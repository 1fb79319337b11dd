//! The login decision, one row per rule, with a fixed clock. Each row: a name, the step, how the
//! facts differ from a baseline (alice holds `admin` on web01, live, enrolled, not locked), and
//! the decision expected.

use jit_proto::api::{DenyReason as R, Factor, FactorPolicy, OfflinePolicy};

use super::*;

/// The fixed clock: 2023-11-14 22:13:20 UTC, step 56666666.
const NOW: i64 = 1_700_000_000;
const STEP: i64 = NOW / STEP_SECS;
const CREATED: i64 = NOW - 60;
const EXPIRES: i64 = NOW + 240;

const LOCKOUT: LockoutPolicy = LockoutPolicy {
    max_failures: 5,
    window_secs: 900,
    duration_secs: 900,
};

fn baseline() -> Facts {
    Facts {
        host: HostFacts {
            name: "web01".into(),
            active: true,
        },
        account: Some(AccountFacts {
            name: "admin".into(),
            active: true,
            on_host: true,
            offline: OfflinePolicy::Cached,
            factor: FactorPolicy::Any,
        }),
        reservation: Some(ReservationFacts {
            id: 7,
            account: "admin".into(),
            person: "alice".into(),
            on_this_host: true,
            state: Lifecycle::Active,
            created_at: CREATED,
            expires_at: EXPIRES,
            ended_at: None,
        }),
        holder: Some(PersonFacts {
            name: "alice".into(),
            active: true,
            enrolled: true,
            push: false,
            locked_until: None,
            // She logged in two steps ago.
            last_step: Some(STEP - 2),
            recent_failures: 0,
            guesses: 0,
        }),
        attempt: Some(AttemptFacts {
            answered: false,
            expires_at: NOW + 200,
        }),
        grant: Some(GrantFacts {
            served_at: Some(CREATED + 5),
            steps: grant_steps(CREATED, EXPIRES, CREATED).collect(),
        }),
        key_owner: None,
        lockout: LOCKOUT,
        challenge: None,
        last_push_at: None,
        push: PUSH,
        // The prompt is su's, run by uid 1000, who typed nothing wrong before.
        source: SourceFacts {
            name: "uid:1000".into(),
            failures: 0,
            last_failure_at: None,
        },
        guessing: GUESSING,
    }
}

const GUESSING: GuessPolicy = GuessPolicy {
    free_failures: 3,
    first_delay_secs: 60,
    max_delay_secs: 1200,
    window_secs: 86400,
    alert_failures: 10,
};

/// A wrong login code: from uid 1000's `from_source`th, the holder's `for_person`th.
fn guess(from_source: u32, next_try: Option<i64>, for_person: u32, alert: bool) -> Option<Guess> {
    Some(Guess {
        source: "uid:1000".into(),
        from_source,
        next_try,
        for_person,
        alert,
    })
}

fn source(f: &mut Facts, failures: u32, last: i64) {
    f.source.failures = failures;
    f.source.last_failure_at = Some(last);
}

const PUSH: PushPolicy = PushPolicy {
    rate_secs: 60,
    ttl_secs: 120,
};

/// The number the caller drew for a push.
const NUMBER: u8 = 47;
const BEGIN: Step = Step::Begin { number: NUMBER };
const WAIT: Step = Step::Wait;

fn approve(number: u8) -> Step {
    Step::Approve {
        by: "alice".into(),
        number,
    }
}

fn report_by(by: &str) -> Step {
    Step::Report { by: by.into() }
}

/// alice has push too, and the attempt has a pending challenge with the number 47.
fn with_push(f: &mut Facts) {
    f.holder.as_mut().unwrap().push = true;
    f.challenge = Some(ChallengeFacts {
        number: NUMBER,
        state: ChallengeState::Pending,
        expires_at: NOW + 100,
    });
}

/// Push only: no authenticator app.
fn push_only(f: &mut Facts) {
    with_push(f);
    f.holder.as_mut().unwrap().enrolled = false;
}

fn challenge(f: &mut Facts) -> &mut ChallengeFacts {
    f.challenge.as_mut().unwrap()
}

fn code(step: i64) -> Step {
    Step::Verify {
        code: CodeMatch::Step(step),
    }
}

const WRONG: Step = Step::Verify {
    code: CodeMatch::NoMatch,
};

fn report(change: impl Fn(&mut OfflineReport)) -> Step {
    let mut r = OfflineReport {
        reservation_id: Some(7),
        account: "admin".into(),
        person: Some("alice".into()),
        at: NOW - 30,
        totp_step: Some(STEP - 1),
    };
    change(&mut r);
    Step::Offline(r)
}

#[derive(Debug)]
enum Want {
    /// A TOTP prompt.
    Prompt,
    /// A TOTP prompt because a push was due but sent less than the rate limit ago.
    PromptRateLimited,
    /// A push prompt with the number; a typed code allowed or not.
    Push {
        totp_allowed: bool,
    },
    Grant(i64),
    GrantApproved,
    Wait,
    Approved,
    Reported,
    /// A refusal of a push step: the reason, a part of the message, how the push ends.
    DenyPush(R, &'static str, Option<PushEnd>),
    Reconcile {
        step: i64,
        at: i64,
    },
    /// The reason, a part of the message, the wrong code counted, suspicious.
    Deny(R, &'static str, Option<Guess>, bool),
}

fn deny(r: R, msg: &'static str) -> Want {
    Want::Deny(r, msg, None, false)
}

fn suspicious(r: R, msg: &'static str) -> Want {
    Want::Deny(r, msg, None, true)
}

type Change = fn(&mut Facts);

fn res(f: &mut Facts) -> &mut ReservationFacts {
    f.reservation.as_mut().unwrap()
}

fn holder(f: &mut Facts) -> &mut PersonFacts {
    f.holder.as_mut().unwrap()
}

fn account(f: &mut Facts) -> &mut AccountFacts {
    f.account.as_mut().unwrap()
}

// One row per line reads as a table; rustfmt would spread each over a dozen lines.
#[rustfmt::skip]
fn rows() -> Vec<(&'static str, Step, Change, Want)> {
    let same: Change = |_| {};
    vec![
        // --- begin
        ("begin: a live reservation prompts for the holder's code", BEGIN, same, Want::Prompt),
        ("begin: no such account is not jit's", BEGIN, |f| f.account = None, deny(R::NotShared, "")),
        ("begin: an account of other hosts is not jit's here", BEGIN, |f| account(f).on_host = false, deny(R::NotShared, "")),
        ("begin: no reservation says how to reserve", BEGIN, |f| f.reservation = None,
            deny(R::NoReservation, "admin is not reserved on web01. Reserve it first: jitctl reserve admin --host web01")),
        ("begin: expired", BEGIN, |f| res(f).expires_at = NOW, deny(R::Expired, "has expired. Reserve it first")),
        ("begin: already consumed", BEGIN, |f| res(f).state = Lifecycle::Consumed, deny(R::AlreadyUsed, "already used by a login")),
        ("begin: released", BEGIN, |f| res(f).state = Lifecycle::Released, deny(R::NoReservation, "not reserved on web01")),
        ("begin: disabled account", BEGIN, |f| account(f).active = false, deny(R::AccountDisabled, "The shared account admin is disabled.")),
        ("begin: disabled host", BEGIN, |f| f.host.active = false, deny(R::HostNotAllowed, "jitctl host enable web01")),
        ("begin: disabled holder", BEGIN, |f| holder(f).active = false, deny(R::PersonDisabled, "cannot be used")),
        ("begin: holder without a factor", BEGIN, |f| holder(f).enrolled = false, deny(R::NotEnrolled, "cannot be used")),
        ("begin: a lockout from the portal's sign-in does not stop a login", BEGIN, |f| holder(f).locked_until = Some(NOW + 60), Want::Prompt),
        ("begin: another holder's ssh key", BEGIN, |f| f.key_owner = Some("bob".into()), deny(R::NoReservation, "not reserved for you on web01")),
        ("begin: the holder's own ssh key", BEGIN, |f| f.key_owner = Some("alice".into()), Want::Prompt),
        // --- verify
        ("verify: the right, fresh code is granted", code(STEP), same, Want::Grant(STEP)),
        ("verify: the next step (skew) is granted", code(STEP + 1), same, Want::Grant(STEP + 1)),
        ("verify: a wrong code counts against its source and for the holder", WRONG, same,
            Want::Deny(R::WrongCode, "The code is not valid for the current reservation of admin on web01.", guess(1, None, 1, false), false)),
        // --- wrong codes: the source waits, the holder does not
        ("verify: the third wrong code from a source makes it wait a minute", WRONG, |f| source(f, 2, NOW - 5),
            Want::Deny(R::WrongCode, "Too many wrong codes from here: try again after 2023-11-14 22:14:20 UTC.", guess(3, Some(NOW + 60), 1, false), false)),
        ("verify: a waiting source's code is neither looked at nor counted, right or wrong", code(STEP), |f| source(f, 3, NOW - 30),
            deny(R::LockedOut, "Too many wrong codes from here (uid:1000) on web01. Try again after 2023-11-14 22:13:50 UTC.")),
        ("verify: the wait doubles with each wrong code", WRONG, |f| source(f, 4, NOW - 100),
            deny(R::LockedOut, "Try again after 2023-11-14 22:13:40 UTC.")),
        ("verify: after its wait a source may try again, and waits twice as long", WRONG, |f| source(f, 4, NOW - 120),
            Want::Deny(R::WrongCode, "not valid", guess(5, Some(NOW + 240), 1, false), false)),
        ("verify: the wait stops growing at the cap", WRONG, |f| source(f, 30, NOW - 1200),
            Want::Deny(R::WrongCode, "not valid", guess(31, Some(NOW + 1200), 1, false), false)),
        ("verify: the right code after a source's wait", code(STEP), |f| source(f, 30, NOW - 1200), Want::Grant(STEP)),
        ("verify: the holder's code from her own source, whatever others guessed", code(STEP), |f| holder(f).guesses = 50, Want::Grant(STEP)),
        ("begin: a waiting source gets no prompt", BEGIN, |f| source(f, 3, NOW - 10),
            deny(R::LockedOut, "Too many wrong codes from here (uid:1000) on web01.")),
        ("begin: a source that waited is prompted again", BEGIN, |f| source(f, 3, NOW - 60), Want::Prompt),
        ("begin: the holder is prompted however many codes others guessed", BEGIN, |f| holder(f).guesses = 500, Want::Prompt),
        ("verify: the holder's tenth wrong code from all sources alerts the admins", WRONG, |f| holder(f).guesses = 9,
            Want::Deny(R::WrongCode, "not valid", guess(1, None, 10, true), false)),
        ("verify: the eleventh does not alert again", WRONG, |f| holder(f).guesses = 10,
            Want::Deny(R::WrongCode, "not valid", guess(1, None, 11, false), false)),
        ("verify: the twentieth alerts again", WRONG, |f| holder(f).guesses = 19,
            Want::Deny(R::WrongCode, "not valid", guess(1, None, 20, true), false)),
        ("verify: a person's own enrollment failures hold back no login", code(STEP), |f| holder(f).recent_failures = 40, Want::Grant(STEP)),
        ("verify: a lockout from the portal's sign-in does not stop a login", code(STEP), |f| holder(f).locked_until = Some(NOW + 1), Want::Grant(STEP)),
        ("verify: a replayed step", code(STEP - 2), same, deny(R::ReplayedCode, "already used. Wait for the next code")),
        ("verify: an older step after a newer one", code(STEP - 3), same, deny(R::ReplayedCode, "already used")),
        ("verify: the first code ever", code(STEP), |f| holder(f).last_step = None, Want::Grant(STEP)),
        ("verify: a code of someone other than the holder matches nothing", WRONG, same,
            Want::Deny(R::WrongCode, "not valid", guess(1, None, 1, false), false)),
        ("verify: with another holder's ssh key", code(STEP), |f| f.key_owner = Some("bob".into()), deny(R::NoReservation, "not reserved for you")),
        ("verify: an unknown attempt", code(STEP), |f| { f.attempt = None; f.reservation = None; f.holder = None; f.account = None; },
            deny(R::AttemptExpired, "unknown; start the login again")),
        ("verify: an answered attempt", code(STEP), |f| f.attempt.as_mut().unwrap().answered = true, deny(R::AttemptExpired, "already answered")),
        ("verify: the code came too late", code(STEP), |f| f.attempt.as_mut().unwrap().expires_at = NOW, deny(R::AttemptExpired, "too late")),
        ("verify: the reservation expired meanwhile", code(STEP), |f| res(f).expires_at = NOW - 1, deny(R::Expired, "has expired")),
        ("verify: consumed by another login", code(STEP), |f| res(f).state = Lifecycle::Consumed, deny(R::AlreadyUsed, "already used by a login")),
        ("verify: released meanwhile", code(STEP), |f| res(f).state = Lifecycle::Released, deny(R::NoReservation, "not reserved on web01")),
        ("verify: the account left this host", code(STEP), |f| account(f).on_host = false, deny(R::HostNotAllowed, "no longer exists on web01")),
        ("verify: the account was deleted", code(STEP), |f| f.account = None, deny(R::HostNotAllowed, "This shared account no longer exists on web01.")),
        ("verify: disabled account", code(STEP), |f| account(f).active = false, deny(R::AccountDisabled, "disabled")),
        ("verify: disabled host", code(STEP), |f| f.host.active = false, deny(R::HostNotAllowed, "disabled in jit")),
        ("verify: disabled holder", code(STEP), |f| holder(f).active = false, deny(R::PersonDisabled, "cannot be used")),
        ("verify: factor reset meanwhile", code(STEP), |f| holder(f).enrolled = false, deny(R::NotEnrolled, "cannot be used")),
        // --- push: which factor a login gets
        ("begin: push and a code: the number goes to the prompt, a code works too", BEGIN, with_push, Want::Push { totp_allowed: true }),
        ("begin: push only", BEGIN, push_only, Want::Push { totp_allowed: false }),
        ("begin: an account that needs a code asks a push holder for one", BEGIN, |f| { with_push(f); account(f).factor = FactorPolicy::Totp; }, Want::Prompt),
        ("begin: an account that needs a code refuses a push-only holder", BEGIN, |f| { push_only(f); account(f).factor = FactorPolicy::Totp; },
            deny(R::FactorNotAllowed, "logins to admin need a code from an authenticator app")),
        ("begin: an account that needs push refuses a code-only holder", BEGIN, |f| account(f).factor = FactorPolicy::Push,
            deny(R::FactorNotAllowed, "need an approval on the phone (push)")),
        ("begin: an account that needs push takes no code", BEGIN, |f| { with_push(f); account(f).factor = FactorPolicy::Push; }, Want::Push { totp_allowed: false }),
        // --- push: one a minute
        ("begin: a push less than a minute ago: a code instead", BEGIN, |f| { with_push(f); f.last_push_at = Some(NOW - 59); }, Want::PromptRateLimited),
        ("begin: a push a minute ago is no limit", BEGIN, |f| { with_push(f); f.last_push_at = Some(NOW - 60); }, Want::Push { totp_allowed: true }),
        ("begin: a push less than a minute ago and no code: refused", BEGIN, |f| { push_only(f); f.last_push_at = Some(NOW - 10); },
            Want::DenyPush(R::RateLimited, "sent less than 1m ago", Some(PushEnd::RateLimited))),
        ("begin: a code-only holder is never rate-limited", BEGIN, |f| f.last_push_at = Some(NOW - 10), Want::Prompt),
        // --- push: a typed code instead of the approval
        ("verify: a code typed at a push prompt is TOTP", code(STEP), with_push, Want::Grant(STEP)),
        ("verify: a push-only holder's code is not looked at and not counted", WRONG, push_only,
            Want::DenyPush(R::FactorNotAllowed, "a code is not accepted", None)),
        ("verify: a code after a wrong number", code(STEP), |f| { with_push(f); challenge(f).state = ChallengeState::Denied; },
            Want::DenyPush(R::PushDenied, "wrong number was typed", None)),
        ("verify: a code after a report", code(STEP), |f| { with_push(f); challenge(f).state = ChallengeState::Reported; },
            Want::DenyPush(R::PushDenied, "refused on the approval page", None)),
        ("verify: a code after the push ran out still counts", code(STEP), |f| { with_push(f); challenge(f).state = ChallengeState::Expired; }, Want::Grant(STEP)),
        // --- push: the host waits
        ("wait: nobody answered yet", WAIT, with_push, Want::Wait),
        ("wait: approved: granted", WAIT, |f| { with_push(f); challenge(f).state = ChallengeState::Approved; }, Want::GrantApproved),
        ("wait: the challenge ran out", WAIT, |f| { with_push(f); challenge(f).expires_at = NOW; },
            Want::DenyPush(R::PushExpired, "Nobody approved this login in time", Some(PushEnd::Expired))),
        ("wait: expired already", WAIT, |f| { with_push(f); challenge(f).state = ChallengeState::Expired; },
            Want::DenyPush(R::PushExpired, "in time", None)),
        ("wait: a wrong number was typed", WAIT, |f| { with_push(f); challenge(f).state = ChallengeState::Denied; },
            Want::DenyPush(R::PushDenied, "wrong number", None)),
        ("wait: reported as not theirs", WAIT, |f| { with_push(f); challenge(f).state = ChallengeState::Reported; },
            Want::DenyPush(R::PushDenied, "refused on the approval page", None)),
        ("wait: an approval used already", WAIT, |f| { with_push(f); challenge(f).state = ChallengeState::Used; },
            Want::DenyPush(R::AttemptExpired, "already answered", None)),
        ("wait: a login that waits for no push", WAIT, same, Want::DenyPush(R::AttemptExpired, "does not wait for an approval", None)),
        ("wait: approved, but released meanwhile", WAIT, |f| { with_push(f); challenge(f).state = ChallengeState::Approved; res(f).state = Lifecycle::Released; },
            deny(R::NoReservation, "not reserved on web01")),
        ("wait: approved, but the attempt ran out", WAIT, |f| { with_push(f); challenge(f).state = ChallengeState::Approved; f.attempt.as_mut().unwrap().expires_at = NOW; },
            Want::DenyPush(R::AttemptExpired, "too late", None)),
        // --- push: approving
        ("approve: the right number", approve(NUMBER), with_push, Want::Approved),
        ("approve: a wrong number refuses the login and counts nothing", approve(48), with_push,
            Want::DenyPush(R::PushDenied, "not the number the login prompt shows", Some(PushEnd::WrongNumber))),
        ("approve: a replayed approval", approve(NUMBER), |f| { with_push(f); challenge(f).state = ChallengeState::Approved; },
            Want::DenyPush(R::AttemptExpired, "counts once, for its own login", None)),
        ("approve: an approval the login used", approve(NUMBER), |f| { with_push(f); challenge(f).state = ChallengeState::Used; },
            Want::DenyPush(R::AttemptExpired, "counts once", None)),
        ("approve: after a wrong number", approve(NUMBER), |f| { with_push(f); challenge(f).state = ChallengeState::Denied; },
            Want::DenyPush(R::AttemptExpired, "already answered", None)),
        ("approve: somebody else's login", Step::Approve { by: "bob".into(), number: NUMBER }, with_push,
            Want::DenyPush(R::AttemptExpired, "No such login is waiting for your approval", None)),
        ("approve: a login with no push", approve(NUMBER), same, Want::DenyPush(R::AttemptExpired, "No such login", None)),
        ("approve: too late", approve(NUMBER), |f| { with_push(f); challenge(f).expires_at = NOW; },
            Want::DenyPush(R::PushExpired, "expired", Some(PushEnd::Expired))),
        ("approve: the login was answered with a code", approve(NUMBER), |f| { with_push(f); f.attempt.as_mut().unwrap().answered = true; },
            Want::DenyPush(R::AttemptExpired, "already answered", None)),
        ("approve: released meanwhile", approve(NUMBER), |f| { with_push(f); res(f).state = Lifecycle::Released; }, deny(R::NoReservation, "not reserved on web01")),
        ("approve: the holder was disabled meanwhile", approve(NUMBER), |f| { with_push(f); holder(f).active = false; }, deny(R::PersonDisabled, "cannot be used")),
        // --- push: "This was not me"
        ("report: not me", report_by("alice"), with_push, Want::Reported),
        ("report: after a wrong number", report_by("alice"), |f| { with_push(f); challenge(f).state = ChallengeState::Denied; }, Want::Reported),
        ("report: after it ran out", report_by("alice"), |f| { with_push(f); challenge(f).state = ChallengeState::Expired; }, Want::Reported),
        ("report: somebody else's login", report_by("bob"), with_push, Want::DenyPush(R::AttemptExpired, "No such login", None)),
        ("report: after approving it", report_by("alice"), |f| { with_push(f); challenge(f).state = ChallengeState::Approved; },
            Want::DenyPush(R::AttemptExpired, "You approved this login", None)),
        ("report: twice", report_by("alice"), |f| { with_push(f); challenge(f).state = ChallengeState::Reported; },
            Want::DenyPush(R::AttemptExpired, "reported already", None)),
        // --- offline reports
        ("offline: inside the served grant", report(|_| {}), same, Want::Reconcile { step: STEP - 1, at: NOW - 30 }),
        ("offline: a host clock a little ahead is taken as now", report(|r| { r.at = NOW + 20; r.totp_step = Some(STEP); }), same,
            Want::Reconcile { step: STEP, at: NOW }),
        ("offline: released after the login", report(|_| {}), |f| { res(f).state = Lifecycle::Released; res(f).ended_at = Some(NOW - 10); },
            Want::Reconcile { step: STEP - 1, at: NOW - 30 }),
        ("offline: a login before the reservation ran out", report(|r| { r.at = NOW - 130; r.totp_step = Some((NOW - 130) / STEP_SECS); }),
            |f| {
                let r = res(f);
                (r.created_at, r.expires_at, r.state) = (NOW - 400, NOW - 100, Lifecycle::Expired);
                f.grant = Some(GrantFacts { served_at: Some(NOW - 395), steps: grant_steps(NOW - 400, NOW - 100, NOW - 400).collect() });
            },
            Want::Reconcile { step: (NOW - 130) / STEP_SECS, at: NOW - 130 }),
        ("offline: no reservation named", report(|r| r.reservation_id = None), same, suspicious(R::NoReservation, "names no reservation")),
        ("offline: no such reservation", report(|r| r.reservation_id = Some(8)), |f| f.reservation = None, suspicious(R::NoReservation, "reservation 8 does not exist")),
        ("offline: another host's reservation", report(|_| {}), |f| res(f).on_this_host = false, suspicious(R::HostNotAllowed, "not a reservation of this host")),
        ("offline: another account", report(|r| r.account = "vault".into()), same, suspicious(R::NoReservation, "is for admin, not vault")),
        ("offline: another holder", report(|r| r.person = Some("bob".into())), same, suspicious(R::NoReservation, "held by alice, not bob")),
        ("offline: no grant issued", report(|_| {}), |f| f.grant = None, suspicious(R::NoAuth, "no offline grant was issued")),
        ("offline: grant never served", report(|_| {}), |f| f.grant.as_mut().unwrap().served_at = None, suspicious(R::NoAuth, "never given to this host")),
        ("offline: policy changed to deny since", report(|_| {}), |f| account(f).offline = OfflinePolicy::Deny, deny(R::NoAuth, "no longer `cached`")),
        ("offline: no step", report(|r| r.totp_step = None), same, suspicious(R::WrongCode, "carries no time step")),
        ("offline: a time in the future", report(|r| r.at = NOW + 7200), same, suspicious(R::Expired, "in the future")),
        ("offline: backdated before the reservation", report(|r| r.at = 1), same, suspicious(R::Expired, "outside the reservation's window")),
        ("offline: after the reservation ran out", report(|r| { r.at = NOW - 5; r.totp_step = Some(STEP); }), |f| res(f).expires_at = NOW - 10,
            suspicious(R::Expired, "outside the reservation's window")),
        ("offline: before the grant was served", report(|r| r.at = NOW - 45), |f| f.grant.as_mut().unwrap().served_at = Some(NOW),
            suspicious(R::Expired, "before this host was given the grant")),
        ("offline: a step far in the future", report(|r| r.totp_step = Some(9_000_000_000_000)), same, suspicious(R::WrongCode, "outside the reservation's window")),
        ("offline: a step the grant has no hash for", report(|_| {}), |f| f.grant.as_mut().unwrap().steps.retain(|s| *s != STEP - 1),
            suspicious(R::WrongCode, "in no offline grant this host was given")),
        ("offline: a step of a later grant the host was given", report(|r| { r.at = NOW + 20; r.totp_step = Some(STEP); }),
            |f| f.grant.as_mut().unwrap().steps = (STEP - 1..=STEP + 30).collect(), Want::Reconcile { step: STEP, at: NOW }),
        ("offline: a step of a later grant the host was never given", report(|r| { r.at = NOW + 20; r.totp_step = Some(STEP); }),
            |f| f.grant.as_mut().unwrap().steps = (STEP - 40..STEP).collect(), suspicious(R::WrongCode, "in no offline grant this host was given")),
        ("offline: a step not of the reported time", report(|r| r.totp_step = Some(STEP + 3)), same, suspicious(R::WrongCode, "not within one step")),
        ("offline: released before the login", report(|_| {}), |f| { res(f).state = Lifecycle::Released; res(f).ended_at = Some(NOW - 40); },
            deny(R::NoReservation, "already released at the reported login time")),
        ("offline: consumed before the login", report(|_| {}), |f| { res(f).state = Lifecycle::Consumed; res(f).ended_at = Some(NOW - 40); },
            suspicious(R::AlreadyUsed, "already consumed")),
    ]
}

#[test]
fn every_rule_is_a_row() {
    for (name, step, change, want) in rows() {
        let mut facts = baseline();
        change(&mut facts);
        let got = decide(&step, &facts, NOW);
        match (&want, &got) {
            (
                Want::Prompt | Want::PromptRateLimited,
                Decision::Prompt {
                    factor: Factor::Totp,
                    expires_at,
                    push: None,
                    rate_limited,
                },
            ) => {
                assert_eq!(*expires_at, EXPIRES, "{name}");
                assert_eq!(
                    *rate_limited,
                    matches!(want, Want::PromptRateLimited),
                    "{name}"
                );
            }
            (
                Want::Push { totp_allowed },
                Decision::Prompt {
                    factor: Factor::Push,
                    expires_at,
                    push: Some(offer),
                    rate_limited: false,
                },
            ) => {
                assert_eq!(*expires_at, EXPIRES, "{name}");
                assert_eq!(
                    *offer,
                    PushOffer {
                        number: NUMBER,
                        expires_at: NOW + 120,
                        totp_allowed: *totp_allowed
                    },
                    "{name}"
                );
            }
            (Want::GrantApproved, Decision::GrantApproved)
            | (Want::Approved, Decision::Approved)
            | (Want::Reported, Decision::Reported) => {}
            (Want::Wait, Decision::Wait { until }) => assert_eq!(*until, NOW + 100, "{name}"),
            (Want::DenyPush(reason, fragment, end), Decision::Deny(d)) => {
                assert_eq!(d.reason, *reason, "{name}: {}", d.message);
                assert!(
                    d.message.contains(fragment),
                    "{name}: {:?} lacks {fragment:?}",
                    d.message
                );
                assert_eq!(d.push, *end, "{name}");
                // No push refusal counts as a wrong code.
                assert_eq!((&d.failure, &d.guess), (&None, &None), "{name}");
                assert!(!d.message.contains("alice"), "{name}: {}", d.message);
                assert!(!d.message.contains("47"), "{name}: never the number");
            }
            (Want::Grant(s), Decision::Grant { step }) => assert_eq!(s, step, "{name}"),
            (Want::Reconcile { step: s, at: a }, Decision::Reconcile { step, at }) => {
                assert_eq!((s, a), (step, at), "{name}")
            }
            (Want::Deny(reason, fragment, guess, susp), Decision::Deny(d)) => {
                assert_eq!(d.reason, *reason, "{name}: {}", d.message);
                assert!(
                    d.message.contains(fragment),
                    "{name}: {:?} lacks {fragment:?}",
                    d.message
                );
                assert_eq!(d.guess, *guess, "{name}");
                // Logins never lock the person out.
                assert_eq!(d.failure, None, "{name}");
                assert_eq!(d.suspicious, *susp, "{name}");
                if !matches!(step, Step::Offline(_)) {
                    // Whoever sits at a prompt never learns who holds the account.
                    assert!(!d.message.contains("alice"), "{name}: {}", d.message);
                }
            }
            _ => panic!("{name}: expected {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn a_name_not_shared_here_is_silent_and_every_other_refusal_says_what_to_do() {
    for (name, step, change, _) in rows() {
        let mut facts = baseline();
        change(&mut facts);
        if let Decision::Deny(d) = decide(&step, &facts, NOW) {
            assert_eq!(
                d.message.is_empty(),
                d.reason == R::NotShared,
                "{name}: {d:?}"
            );
        }
    }
}

#[test]
fn judging_a_code_alone_serves_the_enrollment_confirmation() {
    let p = baseline().holder.unwrap();
    assert_eq!(
        judge_code(&p, CodeMatch::Step(STEP), &LOCKOUT, NOW),
        CodeVerdict::Accepted(STEP)
    );
    assert_eq!(
        judge_code(&p, CodeMatch::Step(STEP - 2), &LOCKOUT, NOW),
        CodeVerdict::Replayed
    );
    let four = PersonFacts {
        recent_failures: 4,
        ..p.clone()
    };
    let CodeVerdict::Wrong(f) = judge_code(&four, CodeMatch::NoMatch, &LOCKOUT, NOW) else {
        panic!("a wrong code")
    };
    assert_eq!(f.lock_until, Some(NOW + 900));
    assert_eq!(
        lockout_reason(&f, &LOCKOUT),
        "5 wrong codes within 15m; locked until 2023-11-14 22:28:20 UTC"
    );
    let locked = PersonFacts {
        locked_until: Some(NOW + 5),
        ..p
    };
    assert_eq!(
        judge_code(&locked, CodeMatch::Step(STEP), &LOCKOUT, NOW),
        CodeVerdict::LockedOut(NOW + 5)
    );
}

#[test]
fn one_source_gets_a_few_guesses_an_hour() {
    // A source that guesses as fast as it is let: three at once, then waits of 1, 2, 4, 8 and
    // 16 minutes, then one guess every 20 minutes.
    let (mut failures, mut last, mut at) = (0_u32, None, NOW);
    let mut times = Vec::new();
    while at < NOW + 86400 {
        if let Some(t) = GUESSING.next_try(failures, last) {
            at = at.max(t);
        }
        times.push(at);
        failures += 1;
        last = Some(at);
    }
    let in_hour = |from: i64| {
        times
            .iter()
            .filter(|t| **t >= from && **t < from + 3600)
            .count()
    };
    assert_eq!(in_hour(NOW), 9, "{times:?}");
    for h in 1..23 {
        assert!(in_hour(NOW + h * 3600) <= 3, "hour {h}: {times:?}");
    }
    assert!(times.len() <= 80, "{} guesses a day", times.len());
    assert_eq!(GUESSING.next_try(2, Some(NOW)), None);
    assert_eq!(GUESSING.next_try(3, None), None);
}
