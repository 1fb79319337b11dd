//! rustls configuration that trusts exactly one CA: the one whose fingerprint was pinned.

use std::sync::{Arc, Mutex};

use jit_proto::fingerprint::Fingerprint;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::ClientError;

/// How the client decides to trust the server.
#[derive(Debug, Clone)]
pub enum Trust {
    /// First contact: the server's chain must contain a CA with this fingerprint, and the
    /// server's certificate must be valid under that CA.
    Fingerprint(Fingerprint),
    /// Later contacts: this CA certificate (PEM) is the only root.
    CaPem(String),
}

/// The CA certificate that matched the pin, recorded during the handshake.
#[derive(Default)]
pub(crate) struct CapturedCa(Mutex<Option<CertificateDer<'static>>>);

impl CapturedCa {
    pub(crate) fn pem(&self) -> Option<String> {
        let guard = self.0.lock().ok()?;
        guard.as_ref().map(|der| der_to_pem(der))
    }
}

pub(crate) fn der_to_pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(crate) fn client_config(
    trust: Trust,
) -> Result<(rustls::ClientConfig, Arc<CapturedCa>), ClientError> {
    let provider = provider();
    let captured = Arc::new(CapturedCa::default());
    let verifier: Arc<dyn ServerCertVerifier> = match trust {
        Trust::Fingerprint(pin) => Arc::new(PinnedCa {
            pin,
            provider: provider.clone(),
            captured: captured.clone(),
        }),
        Trust::CaPem(pem) => {
            let ca = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| {
                ClientError::Setup(format!(
                    "the stored server CA certificate is not valid PEM: {e}"
                ))
            })?;
            *captured
                .0
                .lock()
                .map_err(|_| ClientError::Setup("lock poisoned".into()))? = Some(ca.clone());
            verifier_for(ca, provider.clone())?
        }
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Setup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((config, captured))
}

fn verifier_for(
    ca: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, ClientError> {
    let mut roots = RootCertStore::empty();
    roots
        .add(ca)
        .map_err(|e| ClientError::Setup(format!("the server CA certificate is not usable: {e}")))?;
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| ClientError::Setup(e.to_string()))
}

/// Finds the pinned CA in the presented chain, then verifies the chain under it as the only
/// root (expiry, key usage and the server name are all checked by webpki).
#[derive(Debug)]
struct PinnedCa {
    pin: Fingerprint,
    provider: Arc<CryptoProvider>,
    captured: Arc<CapturedCa>,
}

impl std::fmt::Debug for CapturedCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CapturedCa")
    }
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates
            .iter()
            .find(|c| Fingerprint::of_der(c).matches(&self.pin))
            .ok_or_else(|| {
                rustls::Error::General(format!(
                    "the server's certificate chain does not contain the pinned CA {}",
                    self.pin
                ))
            })?;
        let ca = ca.clone().into_owned();
        let inner = verifier_for(ca.clone(), self.provider.clone())
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let verified =
            inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        if let Ok(mut slot) = self.captured.0.lock() {
            *slot = Some(ca);
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
