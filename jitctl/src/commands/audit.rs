//! audit: read the audit log with filters.

use jit_proto::api::{AuditQuery, AuditResult};
use jit_proto::timefmt::utc;

use super::{Ctx, name};
use crate::cli::Audit;
use crate::exit::CliResult;
use crate::output::{self, or_dash};
use crate::when;

pub fn audit(ctx: &Ctx, a: Audit) -> CliResult<()> {
    let now = when::now();
    let q = AuditQuery {
        person: a.person.as_deref().map(name).transpose()?,
        account: a.account.as_deref().map(name).transpose()?,
        host: a.host.as_deref().map(name).transpose()?,
        since: a
            .since
            .as_deref()
            .map(|s| when::point_in_time(s, now))
            .transpose()?,
        until: a
            .until
            .as_deref()
            .map(|s| when::point_in_time(s, now))
            .transpose()?,
        limit: a.limit,
    };
    let (client, _) = ctx.client()?;
    let events = ctx.block_on(client.audit(&q))?;
    if ctx.json {
        output::json(&events);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = events
        .events
        .iter()
        .map(|e| {
            vec![
                utc(e.at),
                e.actor.clone(),
                e.action.clone(),
                or_dash(e.person.as_ref().map(|p| p.as_str())),
                or_dash(e.account.as_ref().map(|p| p.as_str())),
                or_dash(e.host.as_ref().map(|p| p.as_str())),
                match e.result {
                    AuditResult::Ok => "ok",
                    AuditResult::Denied => "denied",
                    AuditResult::Error => "error",
                }
                .to_owned(),
                or_dash(e.reason.as_deref()),
            ]
        })
        .collect();
    output::table(
        &[
            "TIME", "ACTOR", "ACTION", "PERSON", "ACCOUNT", "HOST", "RESULT", "REASON",
        ],
        &rows,
    );
    Ok(())
}
