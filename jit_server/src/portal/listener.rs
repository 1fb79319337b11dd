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

impl Reloading {
    /// The key to present at `now`, read again from the files if they changed.
    fn current(&self, now: Instant) -> Arc<CertifiedKey> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if now.saturating_duration_since(s.checked) >= RECHECK {
            s.checked = now;
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
        s.key.clone()
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current(Instant::now()))
    }
}

fn reloading(cert: PathBuf, key: PathBuf, now: Instant) -> Result<Reloading, TlsError> {
    let first = load(&cert, &key)?;
    Ok(Reloading {
        state: Mutex::new(Loaded {
            modified: modified(&cert).max(modified(&key)),
            checked: now,
            key: first,
        }),
        cert,
        key,
    })
}

/// The rustls configuration of the portal listener; fails at start if the files are unusable.
pub fn server_config(cert: PathBuf, key: PathBuf) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let resolver = reloading(cert, key, Instant::now())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    }

    #[test]
    fn a_renewed_certificate_is_used_after_the_next_check_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path(), "old.example");
        let t0 = Instant::now();
        let r = reloading(dir.path().join("cert.pem"), dir.path().join("key.pem"), t0).unwrap();
        let old = r.current(t0).cert[0].clone();
        // Renewed on disk (a later modification time).
        write_pair(dir.path(), "new.example");
        let f = std::fs::File::options()
            .append(true)
            .open(dir.path().join("cert.pem"))
            .unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(4_000_000_000))
            .unwrap();
        assert_eq!(
            r.current(t0 + Duration::from_secs(59)).cert[0],
            old,
            "not looked at yet"
        );
        let new = r.current(t0 + RECHECK).cert[0].clone();
        assert_ne!(new, old, "renewed certificate in use");
        // A half-written file: the last good certificate stays.
        std::fs::write(dir.path().join("cert.pem"), "-----BEGIN CERT").unwrap();
        let f = std::fs::File::options()
            .append(true)
            .open(dir.path().join("cert.pem"))
            .unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(4_000_000_010))
            .unwrap();
        assert_eq!(r.current(t0 + RECHECK * 2).cert[0], new);
        // Unusable files at start are an error that names the file.
        let err = reloading(dir.path().join("cert.pem"), dir.path().join("key.pem"), t0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cert.pem") && err.contains("certificate chain"),
            "{err}"
        );
    }
}
