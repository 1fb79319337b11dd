//! `jit-server`: initialize a data directory, run the central service, mint one-time bootstrap
//! tokens (each creates or restores one named admin).
//!
//! Exit codes: 0 success, 1 runtime failure, 2 usage error, 3 configuration error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use jit_server::cli::{Cli, Command};
use jit_server::config::{self, Settings};
use jit_server::{export, init, serve, tls};

fn load_settings(path: Option<&PathBuf>) -> Result<Settings, config::ConfigError> {
    match path {
        Some(p) => Settings::load(p),
        None => {
            let default = PathBuf::from(config::DEFAULT_CONFIG);
            if default.exists() {
                Settings::load(&default)
            } else {
                Ok(Settings::default())
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("JIT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut settings = match load_settings(cli.config.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("jit-server: {e}");
            return ExitCode::from(3);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("jit-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: Result<(), String> = runtime.block_on(async {
        match cli.command {
            Command::Init { data, sans, json, from: Some(from) } => {
                if let Some(d) = data {
                    settings.data_dir = d;
                }
                if !sans.is_empty() {
                    return Err(export::ExportError::SansWithFrom.to_string());
                }
                // A replica with a database of its own would be no replica.
                if settings.database_url.is_none() {
                    return Err(export::ExportError::NoSharedDatabase.to_string());
                }
                let fingerprint = export::init_from(&settings.data_dir, &settings.database_url(), &from)
                    .await
                    .map_err(|e| e.to_string())?;
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "ca_fingerprint": fingerprint.to_string(),
                            "data_dir": settings.data_dir,
                        })
                    );
                } else {
                    println!("Initialized {} from {}", settings.data_dir.display(), from.display());
                    println!("CA fingerprint (the same as the first server's):");
                    println!("  {fingerprint}");
                    println!("Delete {} now: it holds private keys.", from.display());
                }
                Ok(())
            }
            Command::ReissueCert { data, sans } => {
                if let Some(d) = data {
                    settings.data_dir = d;
                }
                let names = init::certificate_names(&sans);
                let fingerprint = tls::reissue_server(&tls::TlsPaths::new(&settings.data_dir), &names, jit_clock::now())
                    .map_err(|e| e.to_string())?;
                println!("New server certificate for {}", names.join(", "));
                println!("CA fingerprint (unchanged): {fingerprint}");
                println!("Restart jit-server to use it; copy tls/server.pem and tls/server.key to every replica.");
                Ok(())
            }
            Command::RotateKey { data } => {
                if let Some(d) = data {
                    settings.data_dir = d;
                }
                // Refuse a directory that was never initialized rather than create a new database.
                tls::ca_fingerprint(&tls::TlsPaths::new(&settings.data_dir)).map_err(|e| e.to_string())?;
                let done = jit_server::rotate::rotate_key(&settings.data_dir, &settings.database_url(), jit_clock::now())
                    .await
                    .map_err(|e| e.to_string())?;
                println!(
                    "New at-rest key in {}; {} stored secrets sealed again; the old key is at-rest.key.previous.",
                    settings.data_dir.display(),
                    done.resealed
                );
                if done.push_subscriptions_removed > 0 {
                    println!(
                        "{} browser push subscriptions were removed (their key changed): persons turn notifications on again in the portal.",
                        done.push_subscriptions_removed
                    );
                }
                println!("Copy at-rest.key and at-rest.key.previous to every replica before starting it.");
                Ok(())
            }
            Command::Export { data, out } => {
                if let Some(d) = data {
                    settings.data_dir = d;
                }
                let fingerprint = export::export(&settings.data_dir, &out).map_err(|e| e.to_string())?;
                eprintln!(
                    "wrote {} (mode 0600; it holds private keys) for `jit-server init --from`; CA fingerprint {fingerprint}",
                    out.display()
                );
                Ok(())
            }
            Command::Init { data, sans, json, from: None } => {
                if let Some(d) = data {
                    settings.data_dir = d;
                }
                let done = init::init(&settings.data_dir, &settings.database_url(), &sans, jit_clock::now())
                    .await
                    .map_err(|e| e.to_string())?;
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "admin_token": done.admin_token.expose(),
                            "ca_fingerprint": done.ca_fingerprint.to_string(),
                            "data_dir": settings.data_dir,
                        })
                    );
                } else {
                    println!("Initialized {}", settings.data_dir.display());
                    println!();
                    println!("Bootstrap token (shown once; it works once, and creates the first admin):");
                    println!("  {}", done.admin_token.expose());
                    println!("CA fingerprint (hosts and jitctl pin it):");
                    println!("  {}", done.ca_fingerprint);
                    println!();
                    println!("Next: jit-server run --data {} --listen 127.0.0.1:8443", settings.data_dir.display());
                    println!(
                        "Then: jitctl login --server https://127.0.0.1:8443 --ca-fingerprint {} --token <bootstrap token> --name <your name>",
                        done.ca_fingerprint
                    );
                }
                Ok(())
            }
            Command::Run { data, listen } => {
                if let Some(d) = data {
                    settings.data_dir = d;
                }
                if let Some(l) = listen {
                    settings.listen = l;
                }
                serve::run(settings).await.map_err(|e| e.to_string())
            }
            Command::AdminToken { data, revoke_others, json } => {
                if let Some(d) = data {
                    settings.data_dir = d;
                }
                // Refuse a directory that was never initialized rather than create a new database.
                tls::ca_fingerprint(&tls::TlsPaths::new(&settings.data_dir)).map_err(|e| e.to_string())?;
                let store = jit_server::store::Store::open(&settings.database_url())
                    .await
                    .map_err(|e| e.to_string())?;
                let token = init::mint_admin_token(&store, jit_clock::now(), revoke_others)
                    .await
                    .map_err(|e| e.to_string())?;
                store.close().await;
                if json {
                    println!("{}", serde_json::json!({ "admin_token": token.expose() }));
                } else {
                    println!("{}", token.expose());
                }
                Ok(())
            }
            Command::CheckConfig => {
                println!("configuration is valid");
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jit-server: {e}");
            ExitCode::FAILURE
        }
    }
}
