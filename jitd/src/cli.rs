//! jitd's command line, in one place so that the binary parses it and the packaging renders the
//! jitd(8) man page from it (`jit_man`). It only describes arguments; it never does anything.

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use crate::config::DEFAULT_CONFIG;

#[derive(Parser, Debug)]
#[command(
    name = "jitd",
    version,
    about = "jit host daemon: just-in-time two-factor access to shared accounts",
    after_help = "Exit codes: 0 success, 1 failure, 2 bad usage or configuration."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Join this host to the jit server with a one-time token from `jitctl host add`.
    Join {
        /// The `jit1_…` token (or set JITD_JOIN_TOKEN, which keeps it out of `ps`).
        #[arg(long, env = "JITD_JOIN_TOKEN", hide_env_values = true)]
        token: String,
        #[arg(long, default_value = DEFAULT_CONFIG, value_name = "FILE")]
        config: PathBuf,
        /// Replace an existing host key (after `jitctl host rejoin`).
        #[arg(long)]
        force: bool,
    },
    /// Run the daemon.
    Run {
        #[arg(long, default_value = DEFAULT_CONFIG, value_name = "FILE")]
        config: PathBuf,
    },
    /// Check the configuration file and show the settings in force.
    CheckConfig {
        #[arg(long, default_value = DEFAULT_CONFIG, value_name = "FILE")]
        config: PathBuf,
    },
    /// Print the ssh public keys that may log in to USER, for sshd's AuthorizedKeysCommand (run
    /// as an unprivileged user; answers from the files jitd keeps, never from the network).
    /// Prints nothing for a name jit does not guard.
    AuthorizedKeys {
        /// The login name sshd asks about (`%u`).
        user: String,
        #[arg(long, default_value = DEFAULT_CONFIG, value_name = "FILE")]
        config: PathBuf,
    },
}

/// The clap command, for man pages and completions.
pub fn command() -> clap::Command {
    Cli::command()
}
