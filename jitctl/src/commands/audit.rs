//! audit: read the audit log with filters, follow it, verify its hash chain.

use std::io::Write;
use std::time::Duration;

use jit_client::{Client, ClientError};
use jit_proto::api::{AuditEvent, AuditQuery, AuditResult, AuditVerification};
use jit_proto::timefmt::utc;

use super::{Ctx, name};
use crate::cli::{Audit, AuditCheck};
use crate::exit::{CliError, CliResult};
use crate::output::{self, or_dash};
use crate::when;

pub fn audit(ctx: &Ctx, a: Audit) -> CliResult<()> {
    if let Some(AuditCheck::Verify) = a.check {
        return verify(ctx);
    }
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
        after: None,
    };
    let (client, _) = ctx.client()?;
    if a.follow {
        return follow(ctx, &client, q, Duration::from_secs(a.every.max(1)));
    }
    let events = ctx.block_on(client.audit(&q))?;
    if ctx.json {
        output::json(&events);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = events.events.iter().map(row).collect();
    output::table(&HEADERS, &rows);
    Ok(())
}

const HEADERS: [&str; 8] = [
    "TIME", "ACTOR", "ACTION", "PERSON", "ACCOUNT", "HOST", "RESULT", "REASON",
];

fn row(e: &AuditEvent) -> Vec<String> {
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
}

/// Most events asked for at once while following.
const FOLLOW_BATCH: u32 = 1000;

/// Prints new events until stopped (or stdout closes): asks for the events after the last one
/// printed, again at once while a full batch came back, else after `every`. A server that is
/// briefly unreachable (a restart) is asked again; nothing is skipped, as the position is the
/// chain's seq, which never goes back.
fn follow(ctx: &Ctx, client: &Client, mut q: AuditQuery, every: Duration) -> CliResult<()> {
    q.limit = Some(FOLLOW_BATCH);
    // Without --since, start after the newest event; with it, from that time on.
    q.after = if q.since.is_some() {
        Some(0)
    } else {
        let newest = ctx.block_on(client.audit(&AuditQuery {
            limit: Some(1),
            ..AuditQuery::default()
        }))?;
        Some(newest.events.last().and_then(|e| e.seq).unwrap_or(0))
    };
    let mut out = std::io::stdout().lock();
    loop {
        let batch = match ctx.block_on(client.audit(&q)) {
            Ok(b) => b.events,
            Err(e @ (ClientError::Unreachable { .. } | ClientError::Protocol(_))) => {
                eprintln!("jitctl: {e}; asking again in {} s", every.as_secs());
                std::thread::sleep(every);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        for e in &batch {
            let line = if ctx.json {
                serde_json::to_string(e).map_err(|e| CliError::Local(e.to_string()))?
            } else {
                output::line(&row(e))
            };
            if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                // The reader went away (a closed pipe): nothing left to do.
                return Ok(());
            }
            if let Some(seq) = e.seq {
                q.after = Some(seq);
            }
        }
        if batch.len() < FOLLOW_BATCH as usize {
            std::thread::sleep(every);
        }
    }
}

/// `jitctl audit verify`: exit code 9 and the first broken row when the chain does not hold.
fn verify(ctx: &Ctx) -> CliResult<()> {
    let (client, _) = ctx.client()?;
    let v: AuditVerification = ctx.block_on(client.audit_verify())?;
    if ctx.json {
        output::json(&v);
    }
    match &v.broken {
        None => {
            if !ctx.json {
                println!(
                    "The audit chain holds: {} rows, head seq {} hash {}.",
                    v.rows, v.head_seq, v.head_hash
                );
            }
            Ok(())
        }
        Some(b) => {
            let at = match (b.id, b.at, &b.action) {
                (Some(id), Some(at), Some(action)) => format!(
                    "row id {id} (seq {}, {} UTC, {action})",
                    b.seq.map_or_else(|| "-".to_owned(), |s| s.to_string()),
                    utc(at)
                ),
                _ => "the end of the chain".to_owned(),
            };
            Err(CliError::Tampered(format!(
                "the audit chain is broken at {at}: {}; {} rows before it hold. Compare with a \
                 copy of the audit (a SIEM fed by `jitctl audit --follow --json`) to see what \
                 changed.",
                b.problem, v.rows
            )))
        }
    }
}
