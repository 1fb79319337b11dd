//! What each subcommand does. Every command talks to the server through `jit_client` with the
//! stored credential, and prints either JSON (`--json`) or text.

mod admin;
mod approve;
mod audit;
mod factors;
mod reservations;
mod session;
mod sessions;
mod ssh_keys;
mod tokens;

use std::future::Future;
use std::time::Duration;

use jit_client::{Client, Trust};

use crate::cli::{Cli, Command};
use crate::config::{self, Credentials};
use crate::exit::{CliError, CliResult};

pub struct Ctx {
    pub json: bool,
    pub timeout: Duration,
    runtime: tokio::runtime::Runtime,
}

impl Ctx {
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// A client with the stored credential.
    pub fn client(&self) -> CliResult<(Client, Credentials)> {
        let creds = config::load()?;
        let client = Client::with_servers(
            &creds.servers(),
            Trust::CaPem(creds.ca_pem.clone()),
            Some(creds.token.clone()),
            self.timeout,
        )?;
        Ok((client, creds))
    }
}

/// Parses a name typed on the command line, as a usage error if it is not valid.
pub fn name<T: std::str::FromStr<Err = jit_proto::NameError>>(s: &str) -> CliResult<T> {
    s.parse::<T>().map_err(|e| CliError::Usage(e.to_string()))
}

pub fn run(cli: Cli) -> CliResult<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Local(format!("cannot start: {e}")))?;
    let ctx = Ctx {
        json: cli.json,
        timeout: Duration::from_secs(cli.timeout.clamp(1, 600)),
        runtime,
    };
    match cli.command {
        Command::Login(a) => session::login(&ctx, a),
        Command::Logout => session::logout(&ctx),
        Command::Whoami => session::whoami(&ctx),
        Command::Enroll(a) => session::enroll(&ctx, a),
        Command::Reserve(a) => reservations::reserve(&ctx, a),
        Command::Release(a) => reservations::release(&ctx, a),
        Command::Extend(a) => reservations::extend(&ctx, a),
        Command::Status(a) => reservations::status(&ctx, a),
        Command::Sessions(a) => sessions::sessions(&ctx, a),
        Command::Approve(a) => approve::approve(&ctx, a),
        Command::Factor(c) => factors::factor(&ctx, c),
        Command::Key(c) => ssh_keys::key(&ctx, c),
        Command::Person(c) => admin::person(&ctx, c),
        Command::Group(c) => admin::group(&ctx, c),
        Command::Account(c) => admin::account(&ctx, c),
        Command::Host(c) => admin::host(&ctx, c),
        Command::Audit(a) => audit::audit(&ctx, a),
        Command::Token(c) => tokens::token(&ctx, c),
    }
}
