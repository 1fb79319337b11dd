//! token list, token revoke.

use jit_proto::api::CredentialKind;
use jit_proto::timefmt::utc;

use super::Ctx;
use crate::cli::TokenCmd;
use crate::exit::CliResult;
use crate::output;

pub fn token(ctx: &Ctx, cmd: TokenCmd) -> CliResult<()> {
    let (client, _) = ctx.client()?;
    match cmd {
        TokenCmd::List => {
            let list = ctx.block_on(client.tokens())?;
            if ctx.json {
                output::json(&list);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = list
                .tokens
                .iter()
                .map(|t| {
                    vec![
                        t.id.clone(),
                        match t.kind {
                            CredentialKind::Person => "person",
                            CredentialKind::Host => "host",
                        }
                        .into(),
                        t.owner.clone(),
                        utc(t.created_at),
                        t.last_used_at.map(utc).unwrap_or_else(|| "-".into()),
                        match (t.expired, t.expires_at) {
                            (true, _) => "expired".into(),
                            (false, Some(e)) => utc(e),
                            (false, None) => "-".into(),
                        },
                    ]
                })
                .collect();
            output::table(
                &["ID", "KIND", "OWNER", "CREATED", "LAST USED", "EXPIRES"],
                &rows,
            );
        }
        TokenCmd::Revoke { id } => {
            let t = ctx.block_on(client.revoke_token(&id))?;
            if ctx.json {
                output::json(&t);
            } else if t.kind == CredentialKind::Host {
                println!(
                    "Revoked the credential of host {}; it must join again (`jitctl host rejoin {}`).",
                    t.owner, t.owner
                );
            } else {
                println!("Revoked token {} of {}.", t.id, t.owner);
            }
        }
    }
    Ok(())
}
