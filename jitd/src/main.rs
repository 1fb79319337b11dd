//! jitd: the jit host daemon.
//!
//! It serves `pam_jit.so` over a root-only Unix socket and drives each login's conversation (the
//! server decides; jitd asks, relays and records), publishes the NSS cache that `libnss_jit.so.2`
//! reads (the host's one list of shared accounts), keeps the local audit queue, answers sshd's
//! `AuthorizedKeysCommand` (`jitd authorized-keys`), and joins the host to the server (`jitd join`).
//! It must never let a shared account in without the server's word, and never get in the way
//! of a login to any other name.

// No unwrap, expect or panic outside tests: a daemon that aborts locks shared accounts out (and
// pam_jit then refuses them), so every failure is an error with a message instead.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod audit_queue;
mod daemon;
mod driver;
mod files;
mod guarded;
mod host_files;
mod host_key;
mod join;
mod joined;
mod notify;
mod nss_publish;
mod offline;
mod pam_socket;
mod peer;
mod process_tree;
mod record;
mod session_control;
mod session_end;
mod sessions;
mod source;
mod ssh_keys;
mod syslog;
mod terminal;
#[cfg(test)]
mod testing;
mod tickets;
mod upstream;
mod watch;

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

// The command line and the configuration live in the library half (lib.rs), so the man pages
// and the packaged config are built from the same definitions. `crate::config` keeps working.
use host_key::HostKeyError;
use jitd::cli::{Cli, Command};
use jitd::config::{self, Config, DEFAULT_CONFIG};
use jitd::hints;

/// A missing default config file means "all defaults"; a named one must exist.
fn load_config(path: &Path) -> Result<Config, config::ConfigError> {
    if path.as_os_str() == DEFAULT_CONFIG && !path.exists() {
        return Ok(Config::default());
    }
    Config::load(path)
}

/// Logs go to stderr. `run` logs what it does (`info`); `join` and `check-config` speak to a
/// person in their own words, so only warnings and errors are logged there. JITD_LOG overrides.
fn init_logging(command: &Command) {
    let default = match command {
        Command::Run { .. } => "info",
        Command::Join { .. } | Command::CheckConfig { .. } | Command::AuthorizedKeys { .. } => {
            "warn"
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // No colour codes in a file or the journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("JITD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .init();
}

/// A host key error, and for a host that has not joined, the command that joins it.
fn host_key_error(e: &HostKeyError, config_path: &Path) -> String {
    match e {
        HostKeyError::Missing { .. } => format!("{e}; run `{}`", hints::join(config_path)),
        _ => e.to_string(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.command);
    let config_path = match &cli.command {
        Command::Join { config, .. }
        | Command::Run { config }
        | Command::CheckConfig { config }
        | Command::AuthorizedKeys { config, .. } => config.clone(),
    };
    let config = match load_config(&config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("jitd: {e}");
            return ExitCode::from(2);
        }
    };
    if let Command::AuthorizedKeys { user, .. } = &cli.command {
        // sshd reads stdout as authorized_keys lines; anything else goes to stderr (its log).
        let uid = jit_nss_cache::uid_of(user.as_bytes());
        return match ssh_keys::authorized_keys(&config, user, uid) {
            Ok(lines) => {
                print!("{lines}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("jitd authorized-keys {user}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("jitd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::CheckConfig { .. } => {
            println!(
                "# {}: OK. Settings in effect, defaults included:",
                config_path.display()
            );
            print!("{}", config.effective());
            println!();
            match host_key::HostKey::load(&config.host_key) {
                Ok(k) => println!("joined as {} to {}", k.host, k.server),
                Err(e) => println!("not usable yet: {}", host_key_error(&e, &config_path)),
            }
            ExitCode::SUCCESS
        }
        Command::Join { token, force, .. } => {
            let timeout = config
                .server_timeout
                .0
                .max(std::time::Duration::from_secs(10));
            match runtime.block_on(join::join(&config, &token, force, timeout)) {
                Ok(j) => {
                    println!(
                        "Joined {} to {}. Host key: {}; server CA: {}.",
                        j.host,
                        j.server,
                        config.host_key.display(),
                        config.ca.display()
                    );
                    match j.accounts {
                        Ok(n) => println!(
                            "Published {n} shared account(s) to {}.",
                            config.nss_cache.display()
                        ),
                        Err(e) => println!(
                            "Could not fetch the shared accounts yet ({e}); jitd will retry when it runs."
                        ),
                    }
                    let running = pam_socket::ensure_not_in_use(&config.socket).is_err();
                    println!(
                        "{}",
                        hints::after_join(&config_path, running, hints::Service::detect())
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("jitd: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::AuthorizedKeys { .. } => ExitCode::SUCCESS,
        Command::Run { .. } => match runtime.block_on(daemon::run(config)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(daemon::RunError::HostKey(e)) => {
                eprintln!("jitd: {}", host_key_error(&e, &config_path));
                ExitCode::FAILURE
            }
            // The CA comes with the join: joining again writes it back.
            Err(e @ daemon::RunError::Ca { .. }) => {
                eprintln!("jitd: {e}; run `{}` again", hints::join(&config_path));
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("jitd: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
