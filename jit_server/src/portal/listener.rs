//! TLS for the portal's own listener: a certificate chain and key from files (a company CA, or
//! ACME). The files are looked at again at most once a minute, and a renewed certificate (a new
//! modification time) is used for the next connections without a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::tls::{self, TlsError};

const RECHECK: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Reloading {
    cert: PathBuf,
    key: PathBuf,
    state: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    modified: Option<SystemTime>,
    checked: Instant,
    key: Arc<CertifiedKey>,
}

fn load(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let (chain, private) = tls::load_pair(cert, key)?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&private)?;
    Ok(Arc::new(CertifiedKey::new(chain, signer)))
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.checked.elapsed() >= RECHECK {
            s.checked = Instant::now();
            let now = modified(&self.cert).max(modified(&self.key));
            if now != s.modified {
                match load(&self.cert, &self.key) {
                    Ok(k) => {
                        tracing::info!(cert = %self.cert.display(), "portal certificate reloaded");
                        s.key = k;
                        s.modified = now;
                    }
                    // Keep serving the old one; a half-written renewal is retried next time.
                    Err(e) => tracing::warn!(error = %e, "portal certificate not reloaded"),
                }
            }
        }
        Some(s.key.clone())
    }
}

/// The rustls configuration of the portal listener; fails at start if the files are unusable.
pub fn server_config(cert: PathBuf, key: PathBuf) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let first = load(&cert, &key)?;
    let resolver = Reloading {
        state: Mutex::new(Loaded {
            modified: modified(&cert).max(modified(&key)),
            checked: Instant::now(),
            key: first,
        }),
        cert,
        key,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
