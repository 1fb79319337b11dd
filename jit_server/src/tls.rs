//! The server's TLS material: a private CA made at `init`, and a server certificate it signs.
//! Clients pin the CA by fingerprint, so no public CA and no DNS name is needed to start.
//!
//! Files under DATA_DIR/tls/: ca.pem, ca.key (0600), server.pem (server cert + CA), server.key
//! (0600).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jit_proto::fingerprint::Fingerprint;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// CA lifetime: ten years. Rotating the CA means re-joining hosts, so make it rare.
const CA_DAYS: i64 = 3650;
/// Server certificate lifetime: five years.
const SERVER_DAYS: i64 = 1825;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot make certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}; was `jit-server init --data DIR` run?")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid PEM {what}")]
    Pem { path: PathBuf, what: &'static str },
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
}

pub struct TlsPaths {
    pub dir: PathBuf,
}

impl TlsPaths {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("tls"),
        }
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
}

fn validity(params: &mut CertificateParams, now: i64, days: i64) {
    let start = time::OffsetDateTime::from_unix_timestamp(now - 3600)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    params.not_before = start;
    params.not_after = start + time::Duration::days(days);
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| TlsError::Write {
            path: path.to_owned(),
            source,
        })?;
    f.write_all(contents)
        .and_then(|_| f.sync_all())
        .map_err(|source| TlsError::Write {
            path: path.to_owned(),
            source,
        })
}

/// The CA's certificate parameters. Its subject must stay the same: [`reissue_server`] signs
/// with an issuer rebuilt from these and the stored CA key.
fn ca_params(now: i64) -> Result<CertificateParams, TlsError> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "jit server CA");
    ca_params.distinguished_name = dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut ca_params, now, CA_DAYS);
    Ok(ca_params)
}

/// A new server key and its certificate for `names`, signed by `issuer`, as PEM (certificate,
/// key).
fn server_certificate(
    names: &[String],
    issuer: &Issuer<'_, KeyPair>,
    now: i64,
) -> Result<(String, String), TlsError> {
    let server_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.to_vec())?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        names.first().map(String::as_str).unwrap_or("jit-server"),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, now, SERVER_DAYS);
    let server_cert = params.signed_by(&server_key, issuer)?;
    Ok((server_cert.pem(), server_key.serialize_pem()))
}

/// Creates the CA and a server certificate for `names` (DNS names or IP addresses). Returns the
/// CA's fingerprint.
pub fn create(paths: &TlsPaths, names: &[String], now: i64) -> Result<Fingerprint, TlsError> {
    std::fs::create_dir_all(&paths.dir).map_err(|source| TlsError::Write {
        path: paths.dir.clone(),
        source,
    })?;

    let ca_key = KeyPair::generate()?;
    let ca_params = ca_params(now)?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let (server_pem, server_key_pem) = server_certificate(names, &issuer, now)?;

    write_file(&paths.ca_cert(), ca_cert.pem().as_bytes(), 0o644)?;
    write_file(
        &paths.ca_key(),
        issuer.key().serialize_pem().as_bytes(),
        0o600,
    )?;
    // The chain carries the CA so clients can find the certificate they pinned.
    let chain = format!("{server_pem}{}", ca_cert.pem());
    write_file(&paths.server_cert(), chain.as_bytes(), 0o644)?;
    write_file(&paths.server_key(), server_key_pem.as_bytes(), 0o600)?;
    Ok(Fingerprint::of_der(ca_cert.der()))
}

/// Replaces the server certificate and key with new ones for `names`, signed by the existing
/// CA: clients keep trusting the server (they pin the CA), and the server answers under the new
/// names once it is restarted. Returns the (unchanged) CA fingerprint.
pub fn reissue_server(
    paths: &TlsPaths,
    names: &[String],
    now: i64,
) -> Result<Fingerprint, TlsError> {
    let fingerprint = ca_fingerprint(paths)?;
    let read = |path: PathBuf| {
        std::fs::read_to_string(&path).map_err(|source| TlsError::Read { path, source })
    };
    let ca_pem = read(paths.ca_cert())?;
    let ca_key_pem = zeroize::Zeroizing::new(read(paths.ca_key())?);
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(|_| TlsError::Pem {
        path: paths.ca_key(),
        what: "private key",
    })?;
    let issuer = Issuer::new(ca_params(now)?, ca_key);
    let (server_pem, server_key_pem) = server_certificate(names, &issuer, now)?;
    let server_key_pem = zeroize::Zeroizing::new(server_key_pem);
    // Written beside the old files and renamed over them, the key first: a crash leaves either
    // the old pair, or a new key with the old certificate, which the server refuses to load
    // (then run this again), never a half-written file.
    let new_cert = paths.dir.join("server.pem.new");
    let new_key = paths.dir.join("server.key.new");
    for p in [&new_cert, &new_key] {
        let _ = std::fs::remove_file(p);
    }
    write_file(&new_cert, format!("{server_pem}{ca_pem}").as_bytes(), 0o644)?;
    write_file(&new_key, server_key_pem.as_bytes(), 0o600)?;
    for (from, to) in [
        (&new_key, paths.server_key()),
        (&new_cert, paths.server_cert()),
    ] {
        std::fs::rename(from, &to).map_err(|source| TlsError::Write { path: to, source })?;
    }
    server_config(paths)?;
    Ok(fingerprint)
}

/// The CA fingerprint of an initialized data directory.
pub fn ca_fingerprint(paths: &TlsPaths) -> Result<Fingerprint, TlsError> {
    let path = paths.ca_cert();
    let pem = std::fs::read(&path).map_err(|source| TlsError::Read {
        path: path.clone(),
        source,
    })?;
    let der = CertificateDer::from_pem_slice(&pem).map_err(|_| TlsError::Pem {
        path,
        what: "certificate",
    })?;
    Ok(Fingerprint::of_der(&der))
}

/// rustls configuration for the listener.
pub fn server_config(paths: &TlsPaths) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let (chain, key) = load_pair(&paths.server_cert(), &paths.server_key())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A PEM certificate chain and its PEM private key.
pub fn load_pair(
    cert_path: &Path,
    key_path: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let pem = std::fs::read(cert_path).map_err(|source| TlsError::Read {
        path: cert_path.to_owned(),
        source,
    })?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::Pem {
            path: cert_path.to_owned(),
            what: "certificate chain",
        })?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: cert_path.to_owned(),
            what: "certificate chain",
        });
    }
    let key_pem = std::fs::read(key_path).map_err(|source| TlsError::Read {
        path: key_path.to_owned(),
        source,
    })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::Pem {
        path: key_path.to_owned(),
        what: "private key",
    })?;
    Ok((chain, key))
}
