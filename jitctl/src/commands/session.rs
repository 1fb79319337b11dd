//! login, logout, whoami, enroll: getting and keeping a credential.

use std::io::{BufRead, IsTerminal, Write};

use jit_client::{Client, ClientError, Trust, parse_fingerprint};
use jit_proto::Secret;
use jit_proto::api::{Bootstrap, CallerKind, EnrollConfirm, EnrollStart, ErrorCode};

use super::Ctx;
use crate::cli::{Enroll, Login};
use crate::config::{self, Credentials};
use crate::exit::{CliError, CliResult};
use crate::output;

/// Turns terminal echo off while it lives (for typing a token), and back on when dropped.
struct NoEcho(Option<libc::termios>);

impl NoEcho {
    fn new() -> NoEcho {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a valid, initialized termios.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return NoEcho(None);
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                return NoEcho(None);
            }
            NoEcho(Some(saved))
        }
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        if let Some(saved) = self.0 {
            // SAFETY: restores the settings read in `new`.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &saved) };
            eprintln!();
        }
    }
}

pub(super) fn read_line(prompt: &str) -> CliResult<Secret> {
    read_input(prompt, false)
}

/// Reads one line from stdin, prompting on a terminal; `hidden` turns echo off meanwhile.
fn read_input(prompt: &str, hidden: bool) -> CliResult<Secret> {
    let tty = std::io::stdin().is_terminal();
    if tty {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
    }
    let _echo = (tty && hidden).then(NoEcho::new);
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Local(format!("cannot read stdin: {e}")))?;
    let secret = Secret::new(line.trim().to_owned());
    zeroize::Zeroize::zeroize(&mut line);
    if secret.expose().is_empty() {
        return Err(CliError::Usage("nothing was typed".into()));
    }
    Ok(secret)
}

fn first_contact(
    ctx: &Ctx,
    servers: &[String],
    fingerprint: &str,
    token: Option<Secret>,
) -> CliResult<Client> {
    let pin = parse_fingerprint(fingerprint)?;
    Ok(Client::with_servers(
        servers,
        Trust::Fingerprint(pin),
        token,
        ctx.timeout,
    )?)
}

fn captured_ca(client: &Client) -> CliResult<String> {
    client
        .captured_ca_pem()
        .ok_or_else(|| CliError::Local("the server's CA certificate was not captured".into()))
}

pub fn login(ctx: &Ctx, a: Login) -> CliResult<()> {
    let token = match a.token.clone() {
        Some(t) => Secret::new(t),
        None => read_input("Token (not shown): ", true)?,
    };
    let client = first_contact(ctx, &a.server, &a.ca_fingerprint, Some(token.clone()))?;
    if token.expose().starts_with(BOOTSTRAP_PREFIX) {
        return bootstrap(ctx, &a, client);
    }
    let who = ctx.block_on(client.whoami())?;
    if who.kind == CallerKind::Host {
        return Err(CliError::Usage(
            "that is a host credential; jitctl needs an admin or person token".into(),
        ));
    }
    config::check_replace(who.kind, who.name.as_str())?;
    let (server, servers) = Credentials::servers_of(&client);
    let creds = Credentials {
        server,
        servers,
        ca_fingerprint: parse_fingerprint(&a.ca_fingerprint)?.to_string(),
        ca_pem: captured_ca(&client)?,
        token,
        kind: who.kind,
        name: who.name.clone(),
    };
    let path = config::save(&creds)?;
    if ctx.json {
        output::json(&serde_json::json!({
            "server": creds.server, "kind": who.kind, "name": who.name, "config": path,
        }));
    } else {
        println!(
            "Logged in to {} as {}. Credentials saved in {}.",
            creds.server,
            who.name,
            path.display()
        );
    }
    Ok(())
}

/// Tokens `jit-server init` and `jit-server admin-token` print (one use each).
const BOOTSTRAP_PREFIX: &str = "jita_";

/// `jitctl login` with a bootstrap token: creates the named admin, stores their own token.
fn bootstrap(ctx: &Ctx, a: &Login, client: Client) -> CliResult<()> {
    let person: jit_proto::PersonName = super::name(&a.name)?;
    config::check_replace(CallerKind::Admin, person.as_str())?;
    let done = ctx.block_on(client.bootstrap(&Bootstrap {
        name: person,
        display_name: a.display_name.clone(),
    }))?;
    let (server, servers) = Credentials::servers_of(&client);
    let creds = Credentials {
        server,
        servers,
        ca_fingerprint: parse_fingerprint(&a.ca_fingerprint)?.to_string(),
        ca_pem: captured_ca(&client)?,
        token: done.token.clone(),
        kind: CallerKind::Admin,
        name: done.person.to_string(),
    };
    let path = config::save(&creds)?;
    if ctx.json {
        output::json(&serde_json::json!({
            "server": creds.server, "kind": CallerKind::Admin, "name": done.person,
            "created": done.created, "config": path,
            "enrollment_code": done.enrollment_code,
            "enrollment_expires_at": done.enrollment_expires_at,
        }));
        return Ok(());
    }
    if done.created {
        println!(
            "Created the admin {}; the bootstrap token is now spent.",
            done.person
        );
    } else {
        println!(
            "{} is an admin again; the bootstrap token is now spent.",
            done.person
        );
    }
    println!(
        "Logged in to {} as {}. Credentials saved in {}.",
        creds.server,
        done.person,
        path.display()
    );
    if let (Some(code), Some(until)) = (&done.enrollment_code, done.enrollment_expires_at) {
        println!();
        println!(
            "Your own second factor (for the portal and for shared accounts): open {}/portal/enroll \
             and enter this one-time code (valid until {}):",
            creds.server,
            jit_proto::timefmt::utc(until)
        );
        println!("  {code}");
    }
    Ok(())
}

pub fn logout(ctx: &Ctx) -> CliResult<()> {
    let was = config::load().ok();
    let removed = config::remove()?;
    if ctx.json {
        output::json(&serde_json::json!({ "logged_out": removed }));
    } else if removed {
        println!("Logged out; the stored credential is deleted.");
        match was {
            Some(c) if c.kind == CallerKind::Admin => println!(
                "To use jitctl as {} again, another admin runs `jitctl person reset-factor {}` \
                 (or, on the server, `jit-server admin-token` makes a one-time bootstrap token).",
                c.name, c.name
            ),
            Some(c) => println!(
                "To use jitctl as {} again, an admin runs `jitctl person reset-factor {}` and \
                 you enroll again.",
                c.name, c.name
            ),
            None => {}
        }
    } else {
        println!("Not logged in.");
    }
    Ok(())
}

pub fn whoami(ctx: &Ctx) -> CliResult<()> {
    let (client, creds) = ctx.client()?;
    let who = ctx.block_on(client.whoami())?;
    if ctx.json {
        output::json(
            &serde_json::json!({ "kind": who.kind, "name": who.name, "server": creds.server }),
        );
    } else {
        let kind = match who.kind {
            CallerKind::Admin => "admin",
            CallerKind::Person => "person",
            CallerKind::Host => "host",
        };
        println!("{} ({kind}) on {}", who.name, creds.server);
    }
    Ok(())
}

/// Codes a person may type at a terminal before `jitctl enroll` gives up.
const ENROLL_TRIES: u32 = 3;

pub fn enroll(ctx: &Ctx, a: Enroll) -> CliResult<()> {
    if a.push {
        return enroll_push(ctx, a);
    }
    let client = first_contact(ctx, &a.server, &a.ca_fingerprint, None)?;
    let enrollment_code = Secret::new(a.code);
    let started = ctx.block_on(client.enroll_start(&EnrollStart {
        enrollment_code: enrollment_code.clone(),
    }))?;
    // Before the code is spent: never replace someone else's credential.
    config::check_replace(CallerKind::Person, started.person.as_str())?;
    let interactive = std::io::stdin().is_terminal();
    if ctx.json {
        output::json(&serde_json::json!({
            "person": started.person,
            "otpauth_uri": started.otpauth_uri.expose(),
        }));
    } else {
        println!("Enrolling {}.", started.person);
        println!("Add this to your authenticator app (scan the QR code or open the link):");
        println!();
        println!("{}", started.otpauth_uri.expose());
        if !a.no_qr
            && interactive
            && let Some(q) = jit_proto::qr::render(started.otpauth_uri.expose())
        {
            println!();
            println!("{q}");
        }
        println!();
    }
    // Scripts read the URI above before they answer, so it must leave our buffer now.
    let _ = std::io::stdout().flush();
    // At a terminal a mistyped code gets another try with the same secret: the entry just added
    // to the app stays the right one (a new `jitctl enroll` would make a new secret).
    let mut tries_left = if interactive { ENROLL_TRIES } else { 1 };
    let enrolled = loop {
        tries_left -= 1;
        let code = read_line("Code shown by the app: ")?;
        match ctx.block_on(client.enroll_confirm(&EnrollConfirm {
            enrollment_code: enrollment_code.clone(),
            code,
        })) {
            Ok(enrolled) => break enrolled,
            Err(ClientError::Api {
                code: ErrorCode::Unauthorized,
                message,
                ..
            }) if tries_left > 0 => {
                eprintln!("{message}.");
                eprintln!(
                    "Try again with the code the same entry shows next (nothing to scan again)."
                );
            }
            Err(e) => return Err(e.into()),
        }
    };
    let (server, servers) = Credentials::servers_of(&client);
    let creds = Credentials {
        server,
        servers,
        ca_fingerprint: parse_fingerprint(&a.ca_fingerprint)?.to_string(),
        ca_pem: captured_ca(&client)?,
        token: enrolled.token,
        kind: CallerKind::Person,
        name: enrolled.person.to_string(),
    };
    let path = config::save(&creds)?;
    if ctx.json {
        output::json(&serde_json::json!({
            "person": enrolled.person, "enrolled": true, "config": path,
        }));
    } else {
        println!(
            "Enrolled {}. Your credential is saved in {}. Reserve with: jitctl reserve ACCOUNT --host HOST",
            enrolled.person,
            path.display()
        );
    }
    Ok(())
}

/// `jitctl enroll CODE --push`: push as the first factor, no authenticator app.
fn enroll_push(ctx: &Ctx, a: Enroll) -> CliResult<()> {
    let client = first_contact(ctx, &a.server, &a.ca_fingerprint, None)?;
    let ntfy_token = a
        .ntfy_token_file
        .as_deref()
        .map(super::factors::read_token_file)
        .transpose()?;
    let enrolled = ctx.block_on(client.enroll_push(&jit_proto::api::EnrollPush {
        enrollment_code: Secret::new(a.code),
        ntfy_topic: a.ntfy_topic,
        ntfy_token,
    }))?;
    config::check_replace(CallerKind::Person, enrolled.person.as_str())?;
    let (server, servers) = Credentials::servers_of(&client);
    let creds = Credentials {
        server,
        servers,
        ca_fingerprint: parse_fingerprint(&a.ca_fingerprint)?.to_string(),
        ca_pem: captured_ca(&client)?,
        token: enrolled.token,
        kind: CallerKind::Person,
        name: enrolled.person.to_string(),
    };
    let path = config::save(&creds)?;
    if ctx.json {
        output::json(&serde_json::json!({
            "person": enrolled.person, "enrolled": true, "factor": "push", "config": path,
        }));
    } else {
        println!(
            "Enrolled {} with push. Your credential is saved in {}. Logins now wait for your \
             approval: `jitctl approve`, or the portal's approval page.",
            enrolled.person,
            path.display()
        );
    }
    Ok(())
}
