//! Writing a login decision: the attempt, the consumption, the used step, the failure count and
//! the lockout, and the audit rows, in the transaction the facts were read in. Nothing here
//! decides; where the database reports that another transaction changed a fact meanwhile (a
//! concurrent login used the step or consumed the reservation), the changed fact goes back
//! through [`decide`] so the answer is the one the decision gives for it.

use jit_proto::api::{
    AuditResult, DenyReason, HostEvent, LoginBegun, LoginOrigin, LoginVerified, PushPrompt,
};
use jit_proto::{PersonName, timefmt::utc};
use sqlx::AnyConnection;

use super::decision::{
    ChallengeState, CodeMatch, CodeVerdict, Decision, Denial, Failure, Guess, Lifecycle,
    LockoutPolicy, PushEnd, Step, decide, lockout_reason,
};
use super::facts::Gathered;
use crate::keys;
use crate::push::{Notice, NoticeKind};
use crate::store::audit::{self, Event};
use crate::store::hosts::HostRow;
use crate::store::persons::{self, PersonRow};
use crate::store::push::{self, ChallengeRow};
use crate::store::reservations::{self, AttemptRow};
use crate::store::{StoreError, StoreResult, login_failures};

/// The answer to a granted login: who, which reservation, how long it has left and whether the
/// host ends the session with it.
pub(super) fn granted(
    g: &Gathered,
    res: &reservations::ReservationRow,
    now: i64,
) -> StoreResult<LoginVerified> {
    Ok(LoginVerified::Granted {
        person: PersonName::new(&res.person).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        reservation_id: res.id,
        ends_in_secs: Some(res.expires_at - now),
        end_session_at_expiry: g.account.as_ref().is_some_and(|a| a.ends_sessions()),
    })
}

pub(super) fn reason_name(r: DenyReason) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The audit detail of a login: where it came from, the owner of the ssh key used (when it is a
/// registered key), and `extra`.
pub(super) fn detail(g: &Gathered, extra: serde_json::Value) -> serde_json::Value {
    let mut d = serde_json::json!({ "origin": g.origin });
    if let Some(owner) = &g.facts.key_owner {
        d["ssh_key_owner"] = serde_json::json!(owner);
    }
    if let (Some(d), serde_json::Value::Object(extra)) = (d.as_object_mut(), extra) {
        d.extend(extra);
    }
    d
}

pub(super) fn login_event(now: i64, host: &HostRow, action: &'static str, g: &Gathered) -> Event {
    let mut e = Event::new(
        now,
        format!("host:{}", host.name),
        action,
        AuditResult::Denied,
    )
    .host(&host.name);
    if let Some(a) = &g.account {
        e = e.account(&a.name);
    }
    if let Some(r) = &g.reservation {
        e = e.person(&r.person);
    }
    e
}

/// A begun login: the host's answer, and the push to send once the transaction committed.
pub struct Begun {
    pub answer: LoginBegun,
    pub notice: Option<Notice>,
}

/// What a notification about the login of `g` says (never the number).
pub(super) fn notice(
    kind: NoticeKind,
    g: &Gathered,
    host: &HostRow,
    challenge: &ChallengeRow,
    approve_url: String,
    now: i64,
) -> Notice {
    let origin: LoginOrigin = serde_json::from_value(g.origin.clone()).unwrap_or_default();
    Notice {
        kind,
        challenge: challenge.id.clone(),
        person_id: challenge.person_id,
        person: g
            .reservation
            .as_ref()
            .map(|r| r.person.clone())
            .unwrap_or_default(),
        account: g
            .account
            .as_ref()
            .map(|a| a.name.clone())
            .unwrap_or_default(),
        host: host.name.clone(),
        service: origin.service,
        rhost: origin.rhost,
        tty: origin.tty,
        ruser: origin.ruser,
        approve_url,
        at: now,
        expires_at: challenge.expires_at,
    }
}

/// The approval page of challenge `id`, under `base` (the portal's address).
pub fn approve_url(base: &str, id: &str) -> String {
    format!("{}/portal/approve/{id}", base.trim_end_matches('/'))
}

/// Begin: open an attempt (and for a push, its challenge) and audit, or audit the refusal. A
/// name that is not shared here is left alone: no audit row (the host ignores it too).
/// `approve_base` is the portal's address, for the approval page's link.
pub async fn begin(
    conn: &mut AnyConnection,
    host: &HostRow,
    g: &Gathered,
    d: &Decision,
    attempt_ttl: i64,
    approve_base: &str,
    now: i64,
) -> StoreResult<Begun> {
    let ev = login_event(now, host, "login.begin", g);
    match d {
        Decision::Prompt {
            factor,
            expires_at,
            push: offer,
            rate_limited,
        } => {
            let (Some(account), Some(res)) = (&g.account, &g.reservation) else {
                return Err(StoreError::Corrupt("a prompt without a reservation".into()));
            };
            let attempt = AttemptRow {
                id: keys::new_attempt_id(),
                host_id: host.id,
                account_id: account.id,
                reservation_id: res.id,
                state: "pending".into(),
                origin: g.origin.to_string(),
                created_at: now,
                expires_at: now + attempt_ttl,
            };
            reservations::insert_attempt(conn, &attempt).await?;
            let (mut prompt, mut sent, mut notice_text) = (None, None, None);
            if let Some(offer) = offer {
                let c = ChallengeRow {
                    id: keys::new_attempt_id(),
                    attempt_id: attempt.id.clone(),
                    reservation_id: res.id,
                    person_id: res.person_id,
                    account_id: account.id,
                    host_id: host.id,
                    number: i64::from(offer.number),
                    state: "pending".into(),
                    created_at: now,
                    expires_at: offer.expires_at,
                    answered_at: None,
                };
                push::insert_challenge(conn, &c).await?;
                let url = approve_url(approve_base, &c.id);
                let mut e = login_event(now, host, "push.sent", g)
                    .detail(detail(
                        g,
                        serde_json::json!({
                            "attempt": attempt.id,
                            "challenge": c.id,
                            "expires_at": c.expires_at,
                        }),
                    ))
                    .reason("approval requested; the number is shown at the prompt only");
                e.result = AuditResult::Ok;
                audit::record(conn, &e).await?;
                prompt = Some(PushPrompt {
                    number: offer.number,
                    approve_url: url.clone(),
                    expires_at: offer.expires_at,
                    totp_allowed: offer.totp_allowed,
                });
                sent = Some(notice(NoticeKind::Sent, g, host, &c, url, now));
            }
            if *rate_limited {
                let why = rate_limited_reason(g);
                audit::record(
                    conn,
                    &login_event(now, host, "push.rate_limited", g)
                        .detail(detail(g, serde_json::json!({ "attempt": attempt.id })))
                        .reason(format!("{why}; a code was asked for instead")),
                )
                .await?;
                notice_text = Some(format!(
                    "{why}, so this time type a code from your authenticator app."
                ));
            }
            let mut ok = ev
                .detail(detail(g, serde_json::json!({ "attempt": attempt.id })))
                .reason(if prompt.is_some() {
                    "push sent"
                } else {
                    "code requested"
                });
            ok.result = AuditResult::Ok;
            audit::record(conn, &ok).await?;
            Ok(Begun {
                answer: LoginBegun::Challenge {
                    attempt: attempt.id,
                    factor: *factor,
                    expires_at: *expires_at,
                    push: prompt,
                    notice: notice_text,
                },
                notice: sent,
            })
        }
        Decision::Deny(no) => {
            if no.push == Some(PushEnd::RateLimited) {
                let e = login_event(now, host, "push.rate_limited", g)
                    .detail(detail(g, serde_json::json!({})))
                    .reason(format!("{}; the login was refused", rate_limited_reason(g)));
                audit::record(conn, &e).await?;
            }
            if no.reason != DenyReason::NotShared {
                let e = ev
                    .detail(detail(g, serde_json::json!({})))
                    .reason(no.message.clone());
                audit::record(conn, &e).await?;
            }
            Ok(Begun {
                answer: LoginBegun::Denied {
                    reason: no.reason,
                    message: no.message.clone(),
                },
                notice: None,
            })
        }
        other => Err(StoreError::Corrupt(format!(
            "login begin cannot apply {other:?}"
        ))),
    }
}

fn rate_limited_reason(g: &Gathered) -> String {
    format!(
        "a push was sent less than {} ago",
        jit_proto::timefmt::human_secs(g.facts.push.rate_secs)
    )
}

/// Ends the attempt's challenge (if it has one still open) in state `to`.
pub(super) async fn end_challenge(
    conn: &mut AnyConnection,
    g: &Gathered,
    to: ChallengeState,
    now: i64,
) -> StoreResult<()> {
    if let Some(c) = &g.challenge {
        for from in [ChallengeState::Pending, ChallengeState::Approved] {
            if push::set_state(conn, &c.id, from, to, now).await? {
                break;
            }
        }
    }
    Ok(())
}

/// An answered login: the host's answer, and the admins' alert to send once the transaction
/// committed.
pub struct Verified {
    pub answer: LoginVerified,
    pub alert: Option<Notice>,
}

/// Verify: use the step and consume the reservation, or count the wrong code against its source
/// (and raise the guessing alert when the decision says so); end the attempt either way and
/// audit. `audit_base` is the portal's address, for the alert's link to the audit.
pub async fn verify(
    conn: &mut AnyConnection,
    host: &HostRow,
    g: &Gathered,
    d: &Decision,
    audit_base: &str,
    now: i64,
) -> StoreResult<Verified> {
    let (Some(attempt), Some(res)) = (&g.attempt, &g.reservation) else {
        // An attempt this host never had: nothing to end and no account to file it under.
        let Decision::Deny(no) = d else {
            return Err(StoreError::Corrupt("a verify without an attempt".into()));
        };
        return Ok(Verified {
            answer: LoginVerified::Denied {
                reason: no.reason,
                message: no.message.clone(),
            },
            alert: None,
        });
    };
    let ev = login_event(now, host, "login.verify", g).detail(detail(
        g,
        serde_json::json!({ "attempt": attempt.id, "reservation": res.id }),
    ));
    let mut outcome = d.clone();
    if let (Decision::Grant { step }, Some(holder)) = (d, &g.holder) {
        outcome = grant(conn, host, g, holder, *step, now).await?;
    }
    match outcome {
        Decision::Grant { .. } => {
            reservations::finish_attempt(conn, &attempt.id, "granted").await?;
            // A push still open for this login is answered by the code.
            end_challenge(conn, g, ChallengeState::Closed, now).await?;
            let mut ok = ev.reason("code accepted; reservation consumed");
            ok.result = AuditResult::Ok;
            audit::record(conn, &ok).await?;
            Ok(Verified {
                answer: granted(g, res, now)?,
                alert: None,
            })
        }
        Decision::Deny(no) => {
            reservations::finish_attempt(conn, &attempt.id, "denied").await?;
            let e = ev.reason(format!("{}: {}", reason_name(no.reason), no.message));
            audit::record(conn, &e).await?;
            let mut alert = None;
            if let (Some(guess), Some(holder)) = (&no.guess, &g.holder) {
                alert = count_guess(conn, host, g, holder, guess, audit_base, now).await?;
            }
            Ok(Verified {
                answer: LoginVerified::Denied {
                    reason: no.reason,
                    message: no.message,
                },
                alert,
            })
        }
        other => Err(StoreError::Corrupt(format!(
            "login verify cannot apply {other:?}"
        ))),
    }
}

/// Uses `step` and consumes the reservation. Either can have been taken by a concurrent login
/// since the facts were read; then the decision is made again with what the database says.
pub(super) async fn grant(
    conn: &mut AnyConnection,
    host: &HostRow,
    g: &Gathered,
    holder: &PersonRow,
    step: i64,
    now: i64,
) -> StoreResult<Decision> {
    let again = |change: &dyn Fn(&mut super::decision::Facts)| {
        let mut facts = g.facts.clone();
        change(&mut facts);
        decide(
            &Step::Verify {
                code: CodeMatch::Step(step),
            },
            &facts,
            now,
        )
    };
    if !persons::accept_step(conn, holder.id, step).await? {
        return Ok(again(&|f| {
            if let Some(h) = &mut f.holder {
                h.last_step = Some(step);
            }
        }));
    }
    persons::clear_failures(conn, holder.id).await?;
    // The holder's right code forgives the wrong ones typed from where they sit.
    login_failures::forgive(conn, host.id, &g.facts.source.name).await?;
    let Some(res) = &g.reservation else {
        return Err(StoreError::Corrupt("a grant without a reservation".into()));
    };
    if !reservations::consume(conn, res.id, now, &format!("host:{}", host.name)).await? {
        return Ok(again(&|f| {
            if let Some(r) = &mut f.reservation {
                r.state = Lifecycle::Consumed;
            }
        }));
    }
    Ok(Decision::Grant { step })
}

/// Counts a wrong login code against its source on this host and for the holder. When the
/// holder's total reaches the alert threshold, audits `login.guessing_alert` and returns the
/// notice for the admins; the holder stays free to log in.
async fn count_guess(
    conn: &mut AnyConnection,
    host: &HostRow,
    g: &Gathered,
    holder: &PersonRow,
    guess: &Guess,
    audit_base: &str,
    now: i64,
) -> StoreResult<Option<Notice>> {
    let policy = &g.facts.guessing;
    login_failures::record(
        conn,
        host.id,
        &guess.source,
        holder.id,
        now,
        now - policy.window_secs,
    )
    .await?;
    if !guess.alert {
        return Ok(None);
    }
    let window = jit_proto::timefmt::human_secs(policy.window_secs);
    let mut e = Event::new(now, "server", "login.guessing_alert", AuditResult::Denied)
        .person(&holder.name)
        .host(&host.name)
        .detail(detail(
            g,
            serde_json::json!({
                "source": guess.source,
                "failures": guess.for_person,
                "from_source": guess.from_source,
                "window_secs": policy.window_secs,
            }),
        ))
        .reason(format!(
            "{} wrong codes for {}'s reservations within {window}, the last from {} on {}; the \
             admins are alerted, {} is not locked out",
            guess.for_person, holder.name, guess.source, host.name, holder.name
        ));
    if let Some(a) = &g.account {
        e = e.account(&a.name);
    }
    audit::record(conn, &e).await?;
    tracing::warn!(person = %holder.name, host = %host.name, source = %guess.source, failures = guess.for_person, "login.guessing_alert");
    let origin: LoginOrigin = serde_json::from_value(g.origin.clone()).unwrap_or_default();
    Ok(Some(Notice {
        kind: NoticeKind::Guessing,
        challenge: format!("guessing-{}-{now}", holder.id),
        person_id: holder.id,
        person: holder.name.clone(),
        account: g
            .account
            .as_ref()
            .map(|a| a.name.clone())
            .unwrap_or_default(),
        host: host.name.clone(),
        service: origin.service,
        rhost: origin.rhost,
        tty: origin.tty,
        ruser: origin.ruser,
        // The alert links to the person's audit (see `Notice::audit_url`).
        approve_url: format!("{}/portal/admin/audit", audit_base.trim_end_matches('/')),
        at: now,
        expires_at: now,
    }))
}

/// Counts a wrong code, and locks the person out (audited) when the decision says so.
async fn count_failure(
    conn: &mut AnyConnection,
    person: &PersonRow,
    f: &Failure,
    p: &LockoutPolicy,
    now: i64,
) -> StoreResult<()> {
    persons::record_failure(conn, person.id, now, now - p.window_secs).await?;
    if let Some(until) = f.lock_until {
        persons::lock_until(conn, person.id, until).await?;
        let e = Event::new(now, "server", "person.lockout", AuditResult::Denied)
            .person(&person.name)
            .reason(lockout_reason(f, p));
        audit::record(conn, &e).await?;
    }
    Ok(())
}

/// Records what judging one code came to (the enrollment confirmation): the used step, or the
/// wrong code and a lockout. A step a concurrent request used meanwhile is a replay.
pub async fn code(
    conn: &mut AnyConnection,
    person: &PersonRow,
    verdict: CodeVerdict,
    p: &LockoutPolicy,
    now: i64,
) -> StoreResult<CodeVerdict> {
    match verdict {
        CodeVerdict::Accepted(step) => {
            if !persons::accept_step(conn, person.id, step).await? {
                return Ok(CodeVerdict::Replayed);
            }
            persons::clear_failures(conn, person.id).await?;
        }
        CodeVerdict::Wrong(f) => count_failure(conn, person, &f, p, now).await?,
        CodeVerdict::Replayed | CodeVerdict::LockedOut(_) => {}
    }
    Ok(verdict)
}

/// The time a host event is recorded at: a believed offline login at its (bounded) time, a
/// refused one when it arrived, anything else at the host's time unless that is in the future.
pub fn event_time(ev: &HostEvent, d: Option<&Decision>, now: i64) -> i64 {
    match d {
        Some(Decision::Reconcile { at, .. }) => *at,
        Some(_) => now,
        None => ev.at.min(now),
    }
}

/// Applies a judged `login.offline` report (once: only when the event was newly stored) and
/// audits the outcome as `login.reconcile`.
pub async fn offline(
    conn: &mut AnyConnection,
    host: &HostRow,
    ev: &HostEvent,
    g: &Gathered,
    d: &Decision,
    now: i64,
) -> StoreResult<()> {
    let actor = format!("host:{}", host.name);
    let mut e = Event::new(now, actor.clone(), "login.reconcile", AuditResult::Denied)
        .account(ev.account.as_str())
        .host(&host.name)
        .detail(serde_json::json!({
            "event": ev.id,
            "reservation": ev.reservation_id,
            "totp_step": ev.totp_step,
            "reported_at": ev.at,
        }));
    if let Some(p) = &ev.person {
        e = e.person(p.as_str());
    }
    match d {
        Decision::Deny(Denial {
            message,
            suspicious,
            ..
        }) => {
            let why = if *suspicious {
                tracing::warn!(host = %host.name, event = %ev.id, "suspicious offline login report refused: {message}");
                format!("suspicious report refused: {message}")
            } else {
                format!("refused: {message}")
            };
            audit::record(conn, &e.reason(why)).await?;
        }
        Decision::Reconcile { step, at } => {
            let (Some(res), Some(holder)) = (&g.reservation, &g.holder) else {
                return Err(StoreError::Corrupt(
                    "a reconcile without a reservation".into(),
                ));
            };
            // The code's step can no longer be used anywhere (it is inside the window, so this
            // cannot push the holder's last step beyond the reservation's end).
            persons::accept_step(conn, holder.id, *step).await?;
            // `consume` checks the expiry against its `now`: use the time of the login.
            let consumed =
                reservations::consume(conn, res.id, *at, &format!("{actor} (offline)")).await?;
            let why = if consumed {
                format!(
                    "offline login at {} reconciled: reservation consumed, time step {step} used",
                    utc(*at)
                )
            } else {
                format!(
                    "offline login at {} reconciled: time step {step} used; the reservation had \
                     already ended",
                    utc(*at)
                )
            };
            let mut ok = e.person(&res.person).reason(why);
            ok.result = AuditResult::Ok;
            audit::record(conn, &ok).await?;
        }
        other => {
            return Err(StoreError::Corrupt(format!(
                "an offline report cannot apply {other:?}"
            )));
        }
    }
    Ok(())
}
