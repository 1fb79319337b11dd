//! sessions: the sessions logins opened on the hosts.

use jit_proto::api::{EndCause, Session};
use jit_proto::timefmt::{human_secs, utc};

use super::Ctx;
use crate::cli::SessionsArgs;
use crate::exit::CliResult;
use crate::output::{self, or_dash};

/// How a session ended, in words.
pub fn ended_word(s: &Session) -> String {
    match (s.closed_at, s.ended) {
        (None, _) => "open".into(),
        (Some(_), None) => "closed".into(),
        (Some(_), Some(c)) => format!(
            "ended: {}",
            match c {
                EndCause::Expired => "reservation ran out",
                EndCause::Released => "reservation released",
                EndCause::ForceReleased => "reservation force-released",
                EndCause::HolderDisabled => "holder disabled",
                EndCause::Reported => "reported as not theirs",
            }
        ),
    }
}

/// When jit ends an open session: `in 4m 30s` while its reservation runs, for accounts that end
/// sessions with their reservation; `-` for sessions that stay open.
pub fn ends_word(s: &Session, now: i64) -> String {
    match (s.end_session_at_expiry, s.reservation_ends_at) {
        (true, Some(t)) if t > now => format!("in {}", human_secs(t - now)),
        (true, Some(_)) => "now".into(),
        _ => "-".into(),
    }
}

pub fn sessions(ctx: &Ctx, a: SessionsArgs) -> CliResult<()> {
    let (client, _) = ctx.client()?;
    let list = ctx.block_on(client.sessions(a.all))?;
    if ctx.json {
        output::json(&list);
        return Ok(());
    }
    if list.sessions.is_empty() {
        println!(
            "{}",
            if a.all {
                "No sessions."
            } else {
                "No open sessions."
            }
        );
        return Ok(());
    }
    let now = list.now;
    let rows: Vec<Vec<String>> = list
        .sessions
        .iter()
        .map(|s| {
            vec![
                s.account.to_string(),
                s.host.to_string(),
                or_dash(s.person.as_ref().map(|p| p.as_str())),
                s.service.clone(),
                or_dash(s.source.as_deref()),
                utc(s.opened_at),
                human_secs(s.duration_secs),
                if a.all {
                    ended_word(s)
                } else {
                    ends_word(s, now)
                },
            ]
        })
        .collect();
    let last = if a.all { "STATE" } else { "ENDS" };
    output::table(
        &[
            "ACCOUNT", "HOST", "PERSON", "SERVICE", "FROM", "OPENED", "FOR", last,
        ],
        &rows,
    );
    Ok(())
}
