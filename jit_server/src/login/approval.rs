//! Writing the push steps' decisions: the host's wait (the approval is used and the reservation
//! consumed), an approval, and a report ("This was not me"), with their audit rows, in the
//! transaction the facts were read in. As in [`super::apply`], nothing here decides: where the
//! database says a concurrent request changed a fact (answered the challenge, consumed the
//! reservation), the changed fact goes back through [`decide`].

use jit_proto::api::{AuditResult, LoginVerified};
use sqlx::AnyConnection;

use super::apply::{detail, end_challenge, granted, login_event, notice, reason_name};
use super::decision::{ChallengeState, Decision, Denial, Lifecycle, PushEnd, Step, decide};
use super::facts::Gathered;
use crate::push::{Notice, NoticeKind};
use crate::store::audit::{self, Event};
use crate::store::hosts::HostRow;
use crate::store::push;
use crate::store::{StoreError, StoreResult, reservations};

/// Records how a refusal ends the challenge: a wrong number (`push.denied`) or no answer in
/// time (`push.expired`). Neither counts as a wrong code.
async fn end_push(
    conn: &mut AnyConnection,
    host: &HostRow,
    g: &Gathered,
    no: &Denial,
    actor: Option<&str>,
    now: i64,
) -> StoreResult<()> {
    let (Some(c), Some(end)) = (&g.challenge, no.push) else {
        return Ok(());
    };
    let (to, action, why) = match end {
        PushEnd::WrongNumber => (
            ChallengeState::Denied,
            "push.denied",
            "a wrong number was typed; the login is refused",
        ),
        PushEnd::Expired => (
            ChallengeState::Expired,
            "push.expired",
            "nobody approved the login in time",
        ),
        PushEnd::RateLimited => return Ok(()),
    };
    if push::set_state(conn, &c.id, ChallengeState::Pending, to, now).await? {
        let mut e = login_event(now, host, action, g)
            .detail(detail(g, serde_json::json!({ "challenge": c.id })))
            .reason(why);
        if let Some(a) = actor {
            e.actor = a.to_owned();
        }
        audit::record(conn, &e).await?;
    }
    Ok(())
}

/// Wait: grant with the approval (used once), keep waiting, or refuse.
pub async fn wait(
    conn: &mut AnyConnection,
    host: &HostRow,
    g: &Gathered,
    d: &Decision,
    now: i64,
) -> StoreResult<LoginVerified> {
    let (Some(attempt), Some(res)) = (&g.attempt, &g.reservation) else {
        let Decision::Deny(no) = d else {
            return Err(StoreError::Corrupt("a wait without an attempt".into()));
        };
        return Ok(LoginVerified::Denied {
            reason: no.reason,
            message: no.message.clone(),
        });
    };
    let mut outcome = d.clone();
    if matches!(d, Decision::GrantApproved) {
        outcome = use_approval(conn, host, g, now).await?;
    }
    let ev = login_event(now, host, "login.verify", g).detail(detail(
        g,
        serde_json::json!({ "attempt": attempt.id, "reservation": res.id }),
    ));
    match outcome {
        Decision::Wait { until } => Ok(LoginVerified::Pending { expires_at: until }),
        Decision::GrantApproved => {
            reservations::finish_attempt(conn, &attempt.id, "granted").await?;
            let mut ok = ev.reason("push approved; reservation consumed");
            ok.result = AuditResult::Ok;
            audit::record(conn, &ok).await?;
            granted(g, res, now)
        }
        Decision::Deny(no) => {
            reservations::finish_attempt(conn, &attempt.id, "denied").await?;
            end_push(conn, host, g, &no, None, now).await?;
            let e = ev.reason(format!("{}: {}", reason_name(no.reason), no.message));
            audit::record(conn, &e).await?;
            Ok(LoginVerified::Denied {
                reason: no.reason,
                message: no.message,
            })
        }
        other => Err(StoreError::Corrupt(format!(
            "a login wait cannot apply {other:?}"
        ))),
    }
}

/// Uses the approval and consumes the reservation; either can have been taken since the facts
/// were read, and then the decision is made again.
async fn use_approval(
    conn: &mut AnyConnection,
    host: &HostRow,
    g: &Gathered,
    now: i64,
) -> StoreResult<Decision> {
    let again = |change: &dyn Fn(&mut super::decision::Facts)| {
        let mut facts = g.facts.clone();
        change(&mut facts);
        decide(&Step::Wait, &facts, now)
    };
    let (Some(c), Some(res)) = (&g.challenge, &g.reservation) else {
        return Err(StoreError::Corrupt(
            "an approval without a challenge".into(),
        ));
    };
    if !push::set_state(
        conn,
        &c.id,
        ChallengeState::Approved,
        ChallengeState::Used,
        now,
    )
    .await?
    {
        return Ok(again(&|f| {
            if let Some(c) = &mut f.challenge {
                c.state = ChallengeState::Used;
            }
        }));
    }
    if !reservations::consume(conn, res.id, now, &format!("host:{}", host.name)).await? {
        return Ok(again(&|f| {
            if let Some(r) = &mut f.reservation {
                r.state = Lifecycle::Consumed;
            }
        }));
    }
    Ok(Decision::GrantApproved)
}

/// What an approval or a report came to: approved, reported (with what the admins are told),
/// or refused.
pub enum Answered {
    Approved,
    Reported(Notice),
    Refused(Denial),
}

/// Approve: the right number approves the challenge; a wrong one refuses the login. Audited
/// either way under the approving person.
pub async fn approve(
    conn: &mut AnyConnection,
    host: &HostRow,
    g: &Gathered,
    d: &Decision,
    by: &str,
    now: i64,
) -> StoreResult<Answered> {
    let actor = format!("person:{by}");
    let challenge_id = g.challenge.as_ref().map(|c| c.id.clone());
    let ev = login_event(now, host, "push.approved", g)
        .detail(detail(g, serde_json::json!({ "challenge": challenge_id })));
    let ev = Event { actor, ..ev };
    match d {
        Decision::Approved => {
            let Some(c) = &g.challenge else {
                return Err(StoreError::Corrupt(
                    "an approval without a challenge".into(),
                ));
            };
            if !push::set_state(
                conn,
                &c.id,
                ChallengeState::Pending,
                ChallengeState::Approved,
                now,
            )
            .await?
            {
                // Answered meanwhile by another request: what the decision says of that.
                let mut facts = g.facts.clone();
                if let Some(c) = &mut facts.challenge {
                    c.state = ChallengeState::Closed;
                }
                let Decision::Deny(no) = decide(
                    &Step::Approve {
                        by: by.to_owned(),
                        number: 0,
                    },
                    &facts,
                    now,
                ) else {
                    return Err(StoreError::Corrupt("a second approval was granted".into()));
                };
                return refuse(conn, host, g, ev, no, now).await;
            }
            let mut ok = ev.reason("the right number was typed; the login may go on");
            ok.result = AuditResult::Ok;
            audit::record(conn, &ok).await?;
            Ok(Answered::Approved)
        }
        Decision::Deny(no) => refuse(conn, host, g, ev, no.clone(), now).await,
        other => Err(StoreError::Corrupt(format!(
            "an approval cannot apply {other:?}"
        ))),
    }
}

async fn refuse(
    conn: &mut AnyConnection,
    host: &HostRow,
    g: &Gathered,
    ev: Event,
    no: Denial,
    now: i64,
) -> StoreResult<Answered> {
    if no.push.is_some() {
        // A wrong number or an expired challenge: its own audit row, named by what it was.
        end_push(conn, host, g, &no, Some(&ev.actor), now).await?;
    } else if g.challenge.is_some() {
        // A replayed or late approval of a real challenge of this person's.
        let e = ev.reason(format!("refused: {}", no.message));
        audit::record(conn, &e).await?;
    }
    Ok(Answered::Refused(no))
}

/// Report: the login is refused, the reservation released, and the admins alerted.
pub async fn report(
    conn: &mut AnyConnection,
    host: &HostRow,
    g: &Gathered,
    d: &Decision,
    by: &str,
    approve_base: &str,
    now: i64,
) -> StoreResult<Answered> {
    let no = match d {
        Decision::Reported => None,
        Decision::Deny(no) => Some(no.clone()),
        other => {
            return Err(StoreError::Corrupt(format!(
                "a report cannot apply {other:?}"
            )));
        }
    };
    let actor = format!("person:{by}");
    let (Some(c), Some(attempt), Some(res)) = (&g.challenge, &g.attempt, &g.reservation) else {
        return Ok(Answered::Refused(no.unwrap_or_else(|| Denial {
            reason: jit_proto::api::DenyReason::AttemptExpired,
            message: "No such login is waiting for your approval.".into(),
            failure: None,
            guess: None,
            suspicious: false,
            push: None,
        })));
    };
    if let Some(no) = no {
        return Ok(Answered::Refused(no));
    }
    for from in [
        ChallengeState::Pending,
        ChallengeState::Denied,
        ChallengeState::Expired,
        ChallengeState::Closed,
    ] {
        if push::set_state(conn, &c.id, from, ChallengeState::Reported, now).await? {
            break;
        }
    }
    end_challenge(conn, g, ChallengeState::Reported, now).await?;
    reservations::finish_attempt(conn, &attempt.id, "denied").await?;
    let by = format!("{actor} (reported)");
    let cause = jit_proto::api::EndCause::Reported;
    let released = reservations::release(conn, res.id, now, &by, cause).await?;
    let mut e = login_event(now, host, "push.reported", g)
        .detail(detail(
            g,
            serde_json::json!({
                "challenge": c.id,
                "reservation": res.id,
                "released": released,
            }),
        ))
        .reason(if released {
            "reported as not theirs: login refused, reservation released, admins alerted"
        } else {
            "reported as not theirs: login refused, admins alerted"
        });
    e.actor = actor;
    audit::record(conn, &e).await?;
    let url = super::apply::approve_url(approve_base, &c.id);
    Ok(Answered::Reported(notice(
        NoticeKind::Reported,
        g,
        host,
        c,
        url,
        now,
    )))
}
