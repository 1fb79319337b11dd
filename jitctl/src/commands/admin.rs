//! Admin commands: persons, groups, shared accounts, hosts.

use jit_proto::api::{
    Account, AccountChange, EnrollmentIssued, Group, Host, NewAccount, NewGroup, NewHost,
    NewMember, NewPerson, OfflinePolicy, Person, PosixIdentity, UnixGroup,
};
use jit_proto::timefmt::{human_secs, utc};
use jit_proto::{GroupName, Label};

use super::{Ctx, name};
use crate::cli::{AccountAdd, AccountCmd, AccountSet, GroupCmd, HostCmd, Offline, PersonCmd};
use crate::config::Credentials;
use crate::exit::{CliError, CliResult};
use crate::output::{self, or_dash};
use crate::when;

fn offline(o: Offline) -> OfflinePolicy {
    match o {
        Offline::Deny => OfflinePolicy::Deny,
        Offline::Cached => OfflinePolicy::Cached,
    }
}

fn names<T: std::str::FromStr<Err = jit_proto::NameError>>(v: &[String]) -> CliResult<Vec<T>> {
    v.iter().map(|s| name(s)).collect()
}

fn show_enrollment(ctx: &Ctx, creds: &Credentials, e: &EnrollmentIssued, what: &str) {
    if ctx.json {
        output::json(e);
    } else {
        println!("{what} {}.", e.person);
        println!(
            "One-time enrollment code (valid until {}):",
            utc(e.enrollment_expires_at)
        );
        println!("  {}", e.enrollment_code);
        println!("Give it to {} privately; they run:", e.person);
        println!(
            "  jitctl enroll {} --server {} --ca-fingerprint {}",
            e.enrollment_code, creds.server, creds.ca_fingerprint
        );
    }
}

fn person_rows(list: &[Person]) -> Vec<Vec<String>> {
    list.iter()
        .map(|p| {
            vec![
                p.name.to_string(),
                or_dash(p.display_name.as_deref()),
                if p.admin { "admin" } else { "person" }.into(),
                if p.active { "active" } else { "disabled" }.into(),
                match (p.enrolled, p.push) {
                    (true, true) => "totp,push",
                    (true, false) => "totp",
                    (false, true) => "push",
                    (false, false) => "no",
                }
                .into(),
                p.groups
                    .iter()
                    .map(|g| g.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                p.locked_until.map(utc).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect()
}

fn print_persons(ctx: &Ctx, list: &[Person]) {
    if ctx.json {
        output::json(&list);
    } else {
        output::table(
            &[
                "NAME",
                "DISPLAY NAME",
                "ROLE",
                "STATE",
                "FACTORS",
                "GROUPS",
                "LOCKED UNTIL",
            ],
            &person_rows(list),
        );
    }
}

fn set_role(ctx: &Ctx, client: &jit_client::Client, n: &str, admin: bool) -> CliResult<()> {
    let p = ctx.block_on(client.set_admin_role(&name(n)?, admin))?;
    if ctx.json {
        output::json(&p)
    } else if admin {
        println!("{} is an admin.", p.name)
    } else {
        println!("{} is no longer an admin.", p.name)
    }
    Ok(())
}

pub fn person(ctx: &Ctx, cmd: PersonCmd) -> CliResult<()> {
    let (client, creds) = ctx.client()?;

    match cmd {
        PersonCmd::Add {
            name: n,
            display_name,
            admin,
        } => {
            let e = ctx.block_on(client.add_person(&NewPerson {
                name: name(&n)?,
                display_name,
                admin,
            }))?;
            show_enrollment(
                ctx,
                &creds,
                &e,
                if admin { "Added admin" } else { "Added person" },
            );
        }
        PersonCmd::GrantAdmin { name: n } => set_role(ctx, &client, &n, true)?,
        PersonCmd::RevokeAdmin { name: n } => set_role(ctx, &client, &n, false)?,
        PersonCmd::List => print_persons(ctx, &ctx.block_on(client.persons())?),
        PersonCmd::Show { name: n } => {
            let p = ctx.block_on(client.person(&name(&n)?))?;
            if ctx.json {
                output::json(&p)
            } else {
                print_persons(ctx, &[p])
            }
        }
        PersonCmd::Disable { name: n } => {
            let p = ctx.block_on(client.set_person_active(&name(&n)?, false))?;
            if ctx.json {
                output::json(&p)
            } else {
                println!("Disabled {}; their reservations ended.", p.name)
            }
        }
        PersonCmd::Enable { name: n } => {
            let p = ctx.block_on(client.set_person_active(&name(&n)?, true))?;
            if ctx.json {
                output::json(&p)
            } else {
                println!("Enabled {}.", p.name)
            }
        }
        PersonCmd::Unlock { name: n } => {
            let p = ctx.block_on(client.unlock_person(&name(&n)?))?;
            if ctx.json {
                output::json(&p)
            } else {
                println!(
                    "Unlocked {}: their codes are accepted again, and the count of wrong codes \
                     starts from zero.",
                    p.name
                )
            }
        }
        PersonCmd::ResetFactor { name: n } => {
            let e = ctx.block_on(client.reset_factor(&name(&n)?))?;
            show_enrollment(ctx, &creds, &e, "Reset the factor and tokens of");
        }
    }
    Ok(())
}

fn print_groups(ctx: &Ctx, list: &[Group]) {
    if ctx.json {
        output::json(&list);
    } else {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|g| {
                vec![
                    g.name.to_string(),
                    g.members
                        .iter()
                        .map(|m| m.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                ]
            })
            .collect();
        output::table(&["GROUP", "MEMBERS"], &rows);
    }
}

pub fn group(ctx: &Ctx, cmd: GroupCmd) -> CliResult<()> {
    let (client, _) = ctx.client()?;
    let (g, verb) = match cmd {
        GroupCmd::Add { name: n } => (
            ctx.block_on(client.add_group(&NewGroup { name: name(&n)? }))?,
            "Added group",
        ),
        GroupCmd::List => {
            print_groups(ctx, &ctx.block_on(client.groups())?);
            return Ok(());
        }
        GroupCmd::Show { name: n } => {
            let g = ctx.block_on(client.group(&name::<GroupName>(&n)?))?;
            if ctx.json {
                output::json(&g)
            } else {
                print_groups(ctx, &[g])
            }
            return Ok(());
        }
        GroupCmd::AddMember { group, person } => (
            ctx.block_on(client.add_member(
                &name(&group)?,
                &NewMember {
                    person: name(&person)?,
                },
            ))?,
            "Updated group",
        ),
        GroupCmd::RemoveMember { group, person } => (
            ctx.block_on(client.remove_member(&name(&group)?, &name(&person)?))?,
            "Updated group",
        ),
    };
    if ctx.json {
        output::json(&g);
    } else {
        let members = g
            .members
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "{verb} {}; members: {}",
            g.name,
            if members.is_empty() {
                "none".into()
            } else {
                members
            }
        );
    }
    Ok(())
}

fn unix_group(s: &str) -> CliResult<UnixGroup> {
    let (n, gid) = s.split_once(':').ok_or_else(|| {
        CliError::Usage(format!(
            "--unix-group {s:?}: write NAME:GID, e.g. jitops:60100"
        ))
    })?;
    let gid = gid
        .parse::<u32>()
        .map_err(|_| CliError::Usage(format!("--unix-group {s:?}: {gid:?} is not a gid")))?;
    Ok(UnixGroup {
        name: name(n)?,
        gid,
    })
}

fn account_rows(list: &[Account]) -> Vec<Vec<String>> {
    list.iter()
        .map(|a| {
            let mut where_: Vec<String> = a.host_patterns.clone();
            where_.extend(a.host_labels.iter().map(|l| format!("label:{l}")));
            vec![
                a.name.to_string(),
                match &a.posix {
                    Some(p) => format!("virtual uid={} gid={}", p.uid, p.gid),
                    None => "existing".into(),
                },
                a.groups
                    .iter()
                    .map(|g| g.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                where_.join(","),
                format!(
                    "{} (max {})",
                    human_secs(a.default_ttl_secs.into()),
                    human_secs(a.max_ttl_secs.into())
                ),
                match a.offline {
                    OfflinePolicy::Deny => "deny",
                    OfflinePolicy::Cached => "cached",
                }
                .into(),
                match a.factor {
                    jit_proto::api::FactorPolicy::Any => "any",
                    jit_proto::api::FactorPolicy::Totp => "totp",
                    jit_proto::api::FactorPolicy::Push => "push",
                }
                .into(),
                if a.end_session_at_expiry {
                    "end"
                } else {
                    "stay"
                }
                .into(),
                if a.active { "active" } else { "disabled" }.into(),
            ]
        })
        .collect()
}

fn print_accounts(ctx: &Ctx, list: &[Account]) {
    if ctx.json {
        output::json(&list);
    } else {
        output::table(
            &[
                "ACCOUNT", "KIND", "GROUPS", "HOSTS", "TTL", "OFFLINE", "FACTOR", "SESSIONS",
                "STATE",
            ],
            &account_rows(list),
        );
    }
}

fn factor_policy(f: crate::cli::FactorPolicy) -> jit_proto::api::FactorPolicy {
    use crate::cli::FactorPolicy as C;
    use jit_proto::api::FactorPolicy as P;
    match f {
        C::Any => P::Any,
        C::Totp => P::Totp,
        C::Push => P::Push,
    }
}

fn account_add(ctx: &Ctx, a: AccountAdd) -> CliResult<Account> {
    let posix = if a.existing {
        None
    } else {
        let missing = |f: &str| {
            CliError::Usage(format!(
                "--{f} is needed for a virtual account (or use --existing)"
            ))
        };
        Some(PosixIdentity {
            uid: a.uid.ok_or_else(|| missing("uid"))?,
            gid: a.gid.ok_or_else(|| missing("gid"))?,
            gecos: a.gecos.unwrap_or_default(),
            home: a.home.ok_or_else(|| missing("home"))?,
            shell: a.shell.ok_or_else(|| missing("shell"))?,
            unix_groups: a
                .unix_groups
                .iter()
                .map(|s| unix_group(s))
                .collect::<CliResult<_>>()?,
        })
    };
    let req = NewAccount {
        name: name(&a.name)?,
        posix,
        groups: names(&a.groups)?,
        default_ttl_secs: a.ttl.as_deref().map(when::duration_secs).transpose()?,
        max_ttl_secs: a.max_ttl.as_deref().map(when::duration_secs).transpose()?,
        host_patterns: a.hosts,
        host_labels: names::<Label>(&a.labels)?,
        offline: offline(a.offline),
        factor: factor_policy(a.factor),
        end_session_at_expiry: a.end_session_at_expiry,
    };
    let (client, _) = ctx.client()?;
    Ok(ctx.block_on(client.add_account(&req))?)
}

fn account_set(ctx: &Ctx, a: AccountSet) -> CliResult<Account> {
    let change = AccountChange {
        groups: a.groups.as_deref().map(names).transpose()?,
        default_ttl_secs: a.ttl.as_deref().map(when::duration_secs).transpose()?,
        max_ttl_secs: a.max_ttl.as_deref().map(when::duration_secs).transpose()?,
        host_patterns: a.hosts,
        host_labels: a.labels.as_deref().map(names::<Label>).transpose()?,
        offline: a.offline.map(offline),
        factor: a.factor.map(factor_policy),
        end_session_at_expiry: a.end_session_at_expiry,
    };
    let (client, _) = ctx.client()?;
    Ok(ctx.block_on(client.change_account(&name(&a.name)?, &change))?)
}

pub fn account(ctx: &Ctx, cmd: AccountCmd) -> CliResult<()> {
    let (one, verb) = match cmd {
        AccountCmd::Add(a) => (account_add(ctx, *a)?, "Added shared account"),
        AccountCmd::Set(a) => (account_set(ctx, a)?, "Changed shared account"),
        AccountCmd::List => {
            let (client, _) = ctx.client()?;
            print_accounts(ctx, &ctx.block_on(client.accounts())?);
            return Ok(());
        }
        AccountCmd::Show { name: n } => {
            let (client, _) = ctx.client()?;
            let a = ctx.block_on(client.account(&name(&n)?))?;
            if ctx.json {
                output::json(&a)
            } else {
                print_accounts(ctx, &[a])
            }
            return Ok(());
        }
        AccountCmd::Disable { name: n } => {
            let (client, _) = ctx.client()?;
            (
                ctx.block_on(client.set_account_active(&name(&n)?, false))?,
                "Disabled shared account",
            )
        }
        AccountCmd::Enable { name: n } => {
            let (client, _) = ctx.client()?;
            (
                ctx.block_on(client.set_account_active(&name(&n)?, true))?,
                "Enabled shared account",
            )
        }
    };
    if ctx.json {
        output::json(&one);
    } else {
        println!("{verb} {}.", one.name);
        print_accounts(ctx, &[one]);
    }
    Ok(())
}

fn print_hosts(ctx: &Ctx, list: &[Host]) {
    if ctx.json {
        output::json(&list);
    } else {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|h| {
                vec![
                    h.name.to_string(),
                    h.labels
                        .iter()
                        .map(|l| l.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                    if h.joined { "yes" } else { "no" }.into(),
                    if h.active { "active" } else { "disabled" }.into(),
                    h.last_seen.map(utc).unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        output::table(&["HOST", "LABELS", "JOINED", "STATE", "LAST SEEN"], &rows);
    }
}

pub fn host(ctx: &Ctx, cmd: HostCmd) -> CliResult<()> {
    let (client, _) = ctx.client()?;
    let created = match cmd {
        HostCmd::Add { name: n, labels } => ctx.block_on(client.add_host(&NewHost {
            name: name(&n)?,
            labels: names(&labels)?,
        }))?,
        HostCmd::Rejoin { name: n } => ctx.block_on(client.rejoin_host(&name(&n)?))?,
        HostCmd::List => {
            print_hosts(ctx, &ctx.block_on(client.hosts())?);
            return Ok(());
        }
        HostCmd::Disable { name: n } => {
            let h = ctx.block_on(client.set_host_active(&name(&n)?, false))?;
            if ctx.json {
                output::json(&h)
            } else {
                println!("Disabled host {}.", h.name)
            }
            return Ok(());
        }
        HostCmd::Enable { name: n } => {
            let h = ctx.block_on(client.set_host_active(&name(&n)?, true))?;
            if ctx.json {
                output::json(&h)
            } else {
                println!("Enabled host {}.", h.name)
            }
            return Ok(());
        }
    };
    if ctx.json {
        output::json(&created);
    } else {
        println!("Host {} is ready to join.", created.host.name);
        println!(
            "One-time join token (valid until {}):",
            utc(created.join_expires_at)
        );
        println!("  {}", created.join_token);
        println!("On {}, as root: jitd join --token TOKEN", created.host.name);
    }
    Ok(())
}
