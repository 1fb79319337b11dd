//! jit-server's command line, in one place so that the binary parses it and the packaging
//! renders the jit-server(8) man page from it (`jit_man`). It only describes arguments.

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "jit-server",
    version,
    about = "jit central service: just-in-time two-factor access to shared Linux accounts"
)]
pub struct Cli {
    /// server.toml to read (default /etc/jit/server.toml when it exists).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create a data directory: database, TLS CA and server certificate, at-rest key, and a
    /// one-time bootstrap token that creates the first admin (`jitctl login --token … --name …`).
    Init {
        /// Data directory (default: data_dir from the config, else /var/lib/jit-server).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Extra DNS name or IP address for the server certificate (repeatable). Loopback and
        /// this machine's host name are always included.
        #[arg(long = "san", value_name = "NAME")]
        sans: Vec<String>,
        /// Print a JSON object (admin_token: the bootstrap token, ca_fingerprint, data_dir)
        /// instead of text.
        #[arg(long)]
        json: bool,
        /// Start a replica instead: take the CA, server certificate and at-rest key from this
        /// file (made by `jit-server export` on the first server) and use the database
        /// database_url names, which the first server shares. No bootstrap token is made.
        #[arg(long, value_name = "EXPORT")]
        from: Option<PathBuf>,
    },
    /// Write what another server process on the same database needs (CA, server certificate
    /// and key, at-rest key) to a new file, mode 0600, for `jit-server init --from`.
    Export {
        /// Data directory made by `init` (default: data_dir from the config, else
        /// /var/lib/jit-server).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// The file to write; it must not exist yet. It holds private keys.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Replace the server certificate and key with new ones for the given names, signed by
    /// the same CA (clients pin the CA, so they keep trusting the server). Restart the server
    /// to use them.
    ReissueCert {
        /// Data directory made by `init` (default: data_dir from the config, else
        /// /var/lib/jit-server).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// DNS name or IP address for the certificate (repeatable). Loopback and this
        /// machine's host name are always included; names of the old certificate are not kept.
        #[arg(long = "san", value_name = "NAME")]
        sans: Vec<String>,
    },
    /// Make a new at-rest key and seal every stored secret again under it (in one
    /// transaction). The old key is kept as at-rest.key.previous. Stop every server process on
    /// the database first, and give the replicas both files before starting them again.
    RotateKey {
        /// Data directory made by `init` (default: data_dir from the config, else
        /// /var/lib/jit-server).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
    },
    /// Run the service (HTTPS only).
    Run {
        /// Data directory made by `init` (default: data_dir from the config, else
        /// /var/lib/jit-server).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Address to listen on, e.g. 127.0.0.1:8443 (port 0 picks a free port).
        #[arg(long, value_name = "ADDR", value_parser = listen_addr)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Mint a one-time bootstrap token: `jitctl login --token … --name NAME` with it creates the
    /// admin NAME, or gives an existing person NAME the admin role (when every admin is lost).
    AdminToken {
        /// Data directory made by `init` (default: data_dir from the config, else
        /// /var/lib/jit-server).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Revoke every earlier bootstrap token not used yet.
        #[arg(long)]
        revoke_others: bool,
        /// Print a JSON object (admin_token: the bootstrap token) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check the configuration file and exit.
    CheckConfig,
}

/// The clap command, for man pages and completions.
pub fn command() -> clap::Command {
    Cli::command()
}

/// `--listen` takes an IP address and a port; say so rather than "invalid socket address syntax".
fn listen_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    s.parse().map_err(|_| {
        format!(
            "{s:?} is not an IP address and port: write e.g. 0.0.0.0:8443 (every address), \
             127.0.0.1:8443 or [::]:8443; names such as localhost are not resolved here"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_takes_an_address_and_says_how_to_write_one() {
        assert_eq!(
            listen_addr("127.0.0.1:8443").unwrap().to_string(),
            "127.0.0.1:8443"
        );
        let err = listen_addr("localhost:8443").unwrap_err();
        assert!(
            err.contains("0.0.0.0:8443") && err.contains("localhost"),
            "{err}"
        );
    }
}
