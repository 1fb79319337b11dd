//! Checking a person's TOTP code. Matching is pure ([`crate::totp::check`]); what a match or a
//! miss means (replay, failure count, lockout) is [`crate::login::decision::judge_code`]'s.
//! These are the person's own codes (the enrollment confirmation): wrong login codes count
//! against their source instead, and never lock the person out.

use jit_proto::Secret;
use sqlx::AnyConnection;

use super::State;
use crate::error::{ApiError, ApiResult};
use crate::login::decision::{CodeMatch, CodeVerdict, judge_code};
use crate::login::{apply, facts, lockout_policy};
use crate::store::persons::PersonRow;
use crate::totp;

/// Associated data binding a sealed TOTP secret to its person.
pub fn secret_aad(person_id: i64) -> String {
    format!("totp:person:{person_id}")
}

/// Opens the sealed secret of person `person_id` and matches `code` at `now`.
pub fn match_code(
    state: &State,
    person_id: i64,
    sealed: &[u8],
    code: &Secret,
    now: i64,
) -> ApiResult<CodeMatch> {
    let secret = state
        .key
        .open(sealed, &secret_aad(person_id))
        .map_err(ApiError::internal)?;
    match totp::check(&secret, code.expose(), now, state.settings.totp.skew_steps) {
        Some(step) => Ok(CodeMatch::Step(
            i64::try_from(step).map_err(ApiError::internal)?,
        )),
        None => Ok(CodeMatch::NoMatch),
    }
}

/// Matches `code` against the person's factor (no factor: no match).
pub fn match_factor(
    state: &State,
    person: &PersonRow,
    code: &Secret,
    now: i64,
) -> ApiResult<CodeMatch> {
    match &person.totp_secret {
        Some(sealed) => match_code(state, person.id, sealed, code, now),
        None => Ok(CodeMatch::NoMatch),
    }
}

/// Checks `code` against a sealed secret of `person` (the pending one during enrollment) and
/// records the outcome inside the caller's transaction.
pub async fn check(
    state: &State,
    conn: &mut AnyConnection,
    person: &PersonRow,
    sealed: &[u8],
    code: &Secret,
    now: i64,
) -> ApiResult<CodeVerdict> {
    let policy = lockout_policy(&state.settings);
    let facts = facts::person(conn, person, &policy, now).await?;
    let matched = match_code(state, person.id, sealed, code, now)?;
    let verdict = judge_code(&facts, matched, &policy, now);
    Ok(apply::code(conn, person, verdict, &policy, now).await?)
}
