//! `jitctl factor`: a person's own second factors: an authenticator app (TOTP), push, or both.

use std::io::IsTerminal;
use std::io::Write;

use jit_proto::Secret;
use jit_proto::api::{Factors, PushEnroll, TotpConfirm};

use super::Ctx;
use crate::cli::{FactorAdd, FactorCmd, RemovableFactor};
use crate::exit::{CliError, CliResult};
use crate::output::{self, or_dash};

/// Reads an ntfy token from a file (first line), refusing an empty one.
pub fn read_token_file(path: &std::path::Path) -> CliResult<Secret> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| CliError::Local(format!("cannot read {}: {e}", path.display())))?,
    );
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err(CliError::Usage(format!(
            "{} is empty: put the ntfy access token (tk_…) in it",
            path.display()
        )));
    }
    Ok(Secret::new(token))
}

fn print(ctx: &Ctx, f: &Factors) {
    if ctx.json {
        output::json(f);
        return;
    }
    output::table(
        &["FACTOR", "STATE", "DETAIL"],
        &[
            vec![
                "totp".into(),
                if f.totp { "set up" } else { "-" }.into(),
                "authenticator app".into(),
            ],
            match &f.push {
                Some(p) => vec![
                    "push".into(),
                    "enrolled".into(),
                    format!(
                        "ntfy topic {}{}, {} browser(s)",
                        or_dash(p.ntfy_topic.as_deref()),
                        if p.ntfy_token { " (with token)" } else { "" },
                        p.browsers
                    ),
                ],
                None => vec!["push".into(), "-".into(), "-".into()],
            },
        ],
    );
}

pub fn factor(ctx: &Ctx, cmd: FactorCmd) -> CliResult<()> {
    let (client, _) = ctx.client()?;
    let f = match cmd {
        FactorCmd::List => ctx.block_on(client.factors())?,
        FactorCmd::Add(FactorAdd::Push {
            ntfy_topic,
            ntfy_token_file,
        }) => {
            let ntfy_token = ntfy_token_file
                .as_deref()
                .map(read_token_file)
                .transpose()?;
            let f = ctx.block_on(client.enroll_push_factor(&PushEnroll {
                ntfy_topic,
                ntfy_token,
            }))?;
            if !ctx.json {
                println!(
                    "Push is enrolled: logins to shared accounts now wait for your approval \
                     (`jitctl approve`, or the portal's approval page)."
                );
            }
            f
        }
        FactorCmd::Add(FactorAdd::Totp { no_qr }) => {
            let started = ctx.block_on(client.totp_start())?;
            let uri = started.otpauth_uri.expose();
            if ctx.json {
                output::json(&serde_json::json!({ "otpauth_uri": uri }));
            } else {
                println!("Add this to your authenticator app (scan the QR code or open the link):");
                println!();
                println!("{uri}");
                if !no_qr
                    && std::io::stdin().is_terminal()
                    && let Some(q) = jit_proto::qr::render(uri)
                {
                    println!();
                    println!("{q}");
                }
                println!();
            }
            let _ = std::io::stdout().flush();
            let code = super::session::read_line("Code shown by the app: ")?;
            let f = ctx.block_on(client.totp_confirm(&TotpConfirm { code }))?;
            if !ctx.json {
                println!("Your authenticator app is set up.");
            }
            f
        }
        FactorCmd::Remove {
            factor: RemovableFactor::Push,
        } => {
            let f = ctx.block_on(client.remove_push_factor())?;
            if !ctx.json {
                println!("Push is removed: logins ask for a code from your authenticator app.");
            }
            f
        }
    };
    print(ctx, &f);
    Ok(())
}
