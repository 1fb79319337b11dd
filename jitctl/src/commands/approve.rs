//! `jitctl approve`: the logins waiting for your approval (host, account, service, source
//! address, time), answered by typing the number the login prompt shows, or refused as "not
//! me".

use jit_proto::api::{Approval, ApprovalAnswered};
use jit_proto::timefmt::utc;

use super::Ctx;
use crate::cli::Approve;
use crate::exit::{CliError, CliResult};
use crate::output::{self, or_dash};

fn rows(list: &[Approval]) -> Vec<Vec<String>> {
    list.iter()
        .enumerate()
        .map(|(i, a)| {
            vec![
                (i + 1).to_string(),
                a.host.to_string(),
                a.account.to_string(),
                a.service.clone(),
                or_dash(
                    a.rhost
                        .as_deref()
                        .or(a.ruser.as_deref())
                        .or(a.tty.as_deref()),
                ),
                utc(a.created_at),
                a.id.clone(),
            ]
        })
        .collect()
}

fn print_list(list: &[Approval]) {
    output::table(
        &["#", "HOST", "ACCOUNT", "SERVICE", "SOURCE", "TIME", "ID"],
        &rows(list),
    );
}

/// Which login to answer: the one named, the only one, or the one picked at the terminal.
fn pick<'a>(list: &'a [Approval], id: Option<&str>) -> CliResult<&'a Approval> {
    if let Some(id) = id {
        return list.iter().find(|a| a.id == id).ok_or_else(|| {
            CliError::Usage(format!(
                "no login {id} waits for your approval (it may have been answered or expired); \
                 `jitctl approve --list` shows those that do"
            ))
        });
    }
    match list {
        [] => Err(CliError::Usage(
            "no login waits for your approval now".into(),
        )),
        [one] => Ok(one),
        many => {
            print_list(many);
            let typed = super::session::read_line("Which one (#)? ")?;
            typed
                .expose()
                .parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| many.get(i))
                .ok_or_else(|| CliError::Usage("type one of the numbers in the # column".into()))
        }
    }
}

fn number(typed: &str) -> CliResult<u8> {
    typed
        .trim()
        .parse::<u8>()
        .ok()
        .filter(|n| (10..=99).contains(n))
        .ok_or_else(|| CliError::Usage("type the two digits the login prompt shows".into()))
}

pub fn approve(ctx: &Ctx, a: Approve) -> CliResult<()> {
    let (client, _) = ctx.client()?;
    let list = ctx.block_on(client.approvals())?.approvals;
    if a.list {
        if ctx.json {
            output::json(&list);
        } else if list.is_empty() {
            println!("No login waits for your approval.");
        } else {
            print_list(&list);
        }
        return Ok(());
    }
    let one = pick(&list, a.id.as_deref())?.clone();
    let answered: ApprovalAnswered = if a.not_me {
        ctx.block_on(client.report(&one.id))?
    } else {
        let n = match a.number {
            Some(n) => number(&n.to_string())?,
            None => {
                if !ctx.json {
                    eprintln!(
                        "Login to {} on {} ({}{}) at {}.",
                        one.account,
                        one.host,
                        one.service,
                        one.rhost
                            .as_deref()
                            .map(|r| format!(" from {r}"))
                            .unwrap_or_default(),
                        utc(one.created_at)
                    );
                }
                let typed = super::session::read_line(
                    "Type the number the login prompt shows (if this was not you, press Ctrl-C \
                     and run `jitctl approve --not-me`): ",
                )?;
                number(typed.expose())?
            }
        };
        ctx.block_on(client.approve(&one.id, n))?
    };
    if ctx.json {
        output::json(&answered);
    } else {
        println!("{}", answered.message);
    }
    Ok(())
}
