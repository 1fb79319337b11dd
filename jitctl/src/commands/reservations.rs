//! reserve, release, status.

use jit_proto::api::{
    ExtendRequest, NewReservation, ReleaseRequest, Reservation, ReservationState,
};
use jit_proto::timefmt::{human_secs, utc};

use super::{Ctx, name};
use crate::cli::{Extend, Release, Reserve, Status};
use crate::exit::{CliError, CliResult};
use crate::output::{self, or_dash};
use crate::when;

fn state_word(s: ReservationState) -> &'static str {
    match s {
        ReservationState::Active => "active",
        ReservationState::Consumed => "used",
        ReservationState::Released => "released",
        ReservationState::Expired => "expired",
    }
}

pub fn reserve(ctx: &Ctx, a: Reserve) -> CliResult<()> {
    let req = NewReservation {
        account: name(&a.account)?,
        host: name(&a.host)?,
        duration_secs: a.duration.as_deref().map(when::duration_secs).transpose()?,
        reason: a.reason,
    };
    let (client, _) = ctx.client()?;
    let r = ctx.block_on(client.reserve(&req))?;
    if ctx.json {
        output::json(&r);
    } else {
        println!(
            "Reserved {} on {} until {} ({}). Log in once within that time, e.g. ssh {}@{}",
            r.account,
            r.host,
            utc(r.expires_at),
            human_secs(r.remaining_secs),
            r.account,
            r.host
        );
        if !r.host_joined {
            println!(
                "Note: {} has not joined jit yet, so logins there are refused until an admin runs \
                 `jitd join` on it; the reservation's time runs from now.",
                r.host
            );
        }
    }
    Ok(())
}

pub fn release(ctx: &Ctx, a: Release) -> CliResult<()> {
    let req = ReleaseRequest {
        account: name(&a.account)?,
        host: a.host.as_deref().map(name).transpose()?,
    };
    let (client, _) = ctx.client()?;
    let done = ctx.block_on(client.release(&req))?;
    if ctx.json {
        output::json(&done);
    } else if done.released.is_empty() {
        return Err(CliError::Local("nothing was released".into()));
    } else {
        for r in &done.released {
            println!(
                "Released {} on {} (held by {}).",
                r.account, r.host, r.person
            );
        }
    }
    Ok(())
}

pub fn extend(ctx: &Ctx, a: Extend) -> CliResult<()> {
    let req = ExtendRequest {
        account: name(&a.account)?,
        host: a.host.as_deref().map(name).transpose()?,
        duration_secs: when::duration_secs(&a.duration)?,
    };
    let (client, _) = ctx.client()?;
    let done = ctx.block_on(client.extend(&req))?;
    if ctx.json {
        output::json(&done);
    } else {
        for r in &done.extended {
            println!(
                "Extended {} on {} until {}.",
                r.account,
                r.host,
                utc(r.expires_at)
            );
        }
    }
    Ok(())
}

pub fn status(ctx: &Ctx, a: Status) -> CliResult<()> {
    let (client, _) = ctx.client()?;
    let list = ctx.block_on(client.reservations(a.all))?;
    if ctx.json {
        output::json(&list);
        return Ok(());
    }
    if list.reservations.is_empty() {
        println!(
            "{}",
            if a.all {
                "No reservations."
            } else {
                "No live reservations."
            }
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .reservations
        .iter()
        .map(|r: &Reservation| {
            vec![
                r.account.to_string(),
                r.host.to_string(),
                r.person.to_string(),
                state_word(r.state).to_owned(),
                utc(r.expires_at),
                if r.state == ReservationState::Active {
                    human_secs(r.remaining_secs)
                } else {
                    "-".into()
                },
                or_dash(r.reason.as_deref()),
            ]
        })
        .collect();
    output::table(
        &[
            "ACCOUNT", "HOST", "PERSON", "STATE", "EXPIRES", "LEFT", "REASON",
        ],
        &rows,
    );
    Ok(())
}
