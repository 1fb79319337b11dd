//! Checking a person's TOTP code: lockout, constant-time match, replay refusal, failure count.
//! Shared by enrollment confirmation and login verification so both count toward one lockout.

use jit_proto::Secret;
use jit_proto::api::AuditResult;
use sqlx::AnyConnection;

use super::State;
use crate::error::{ApiError, ApiResult};
use crate::store::audit::{self, Event};
use crate::store::persons::{self, PersonRow};
use crate::totp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeOutcome {
    /// Right code, and its time step was not used before (it is now).
    Accepted,
    /// Wrong code; `locked_until` is set when this failure locked the person out.
    Wrong { locked_until: Option<i64> },
    /// Right code, but its time step (or a later one) was already used.
    Replayed,
    /// The person is locked out until then; the code was not even looked at.
    LockedOut(i64),
}

/// Associated data binding a sealed TOTP secret to its person.
pub fn secret_aad(person_id: i64) -> String {
    format!("totp:person:{person_id}")
}

/// Checks `code` against the sealed secret (the person's factor, or the pending one during
/// enrollment) and records the outcome in the person's row, inside the caller's transaction.
pub async fn check(
    state: &State,
    conn: &mut AnyConnection,
    person: &PersonRow,
    sealed: &[u8],
    code: &Secret,
    now: i64,
) -> ApiResult<CodeOutcome> {
    if let Some(until) = person.locked_at(now) {
        return Ok(CodeOutcome::LockedOut(until));
    }
    let secret = state
        .key
        .open(sealed, &secret_aad(person.id))
        .map_err(ApiError::internal)?;
    match totp::check(&secret, code.expose(), now, state.settings.totp.skew_steps) {
        Some(step) => {
            let step = i64::try_from(step).map_err(ApiError::internal)?;
            if persons::accept_step(conn, person.id, step).await? {
                persons::clear_failures(conn, person.id).await?;
                Ok(CodeOutcome::Accepted)
            } else {
                Ok(CodeOutcome::Replayed)
            }
        }
        None => {
            let lock = &state.settings.lockout;
            let failures =
                persons::record_failure(conn, person.id, now, now - lock.window.secs()).await?;
            if failures >= i64::from(lock.max_failures) {
                let until = now + lock.duration.secs();
                persons::lock_until(conn, person.id, until).await?;
                let e = Event::new(now, "server", "person.lockout", AuditResult::Denied)
                    .person(&person.name)
                    .reason(format!(
                        "{failures} wrong codes within {}; locked until {}",
                        crate::rules::human_secs(lock.window.secs()),
                        crate::rules::utc(until)
                    ));
                audit::record(conn, &e).await?;
                Ok(CodeOutcome::Wrong {
                    locked_until: Some(until),
                })
            } else {
                Ok(CodeOutcome::Wrong { locked_until: None })
            }
        }
    }
}
