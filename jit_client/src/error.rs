//! What can go wrong talking to the server, worded for the person at the terminal.

use jit_proto::api::{ErrorCode, ErrorResponse};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad server URL {url:?}: {why}")]
    BadUrl { url: String, why: String },
    #[error("{0}")]
    BadFingerprint(String),
    #[error("cannot set up the HTTPS client: {0}")]
    Setup(String),
    #[error("the server at {server} is not the one you pinned: {detail}. {hint}")]
    Untrusted {
        server: String,
        detail: String,
        hint: &'static str,
    },
    #[error("cannot reach the jit server at {server}: {detail}")]
    Unreachable { server: String, detail: String },
    #[error("{message}")]
    Api {
        status: u16,
        code: ErrorCode,
        message: String,
        until: Option<i64>,
    },
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The API error code, when the server answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when the server could not be reached at all (offline decisions apply).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClientError::Unreachable { .. })
    }
}

/// The error of a request no server answered: the only one when one server was tried; when
/// several were, an unreachable error naming each (or the first that is not about reaching it,
/// such as a certificate refused, which says more).
pub(crate) fn none_answered(mut failures: Vec<ClientError>) -> ClientError {
    if failures.len() <= 1 {
        return failures
            .pop()
            .unwrap_or_else(|| ClientError::Protocol("no server tried".into()));
    }
    if let Some(i) = failures.iter().position(|e| !e.is_unreachable()) {
        return failures.swap_remove(i);
    }
    let mut servers = Vec::new();
    let mut details = Vec::new();
    for f in failures {
        if let ClientError::Unreachable { server, detail } = f {
            details.push(format!("{server}: {detail}"));
            servers.push(server);
        }
    }
    ClientError::Unreachable {
        server: servers.join(", "),
        detail: details.join("; "),
    }
}

pub(crate) fn from_error_body(status: u16, bytes: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorResponse>(bytes) {
        Ok(r) => ClientError::Api {
            status,
            code: r.error.code,
            message: r.error.message,
            until: r.error.until,
        },
        Err(_) => ClientError::Protocol(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        )),
    }
}

pub(crate) fn from_reqwest(server: &str, e: reqwest::Error) -> ClientError {
    // Walk the cause chain: a certificate problem must not read as "server down".
    let mut detail = e.to_string();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
    while let Some(s) = source {
        if let Some(tls) = find_rustls(s) {
            let detail = match tls {
                rustls::Error::General(m) => m.clone(),
                other => other.to_string(),
            };
            return ClientError::Untrusted {
                server: server.to_owned(),
                detail,
                hint: untrusted_hint(tls),
            };
        }
        detail = s.to_string();
        source = s.source();
    }
    if e.is_decode() {
        return ClientError::Protocol(detail);
    }
    ClientError::Unreachable {
        server: server.to_owned(),
        detail,
    }
}

/// What to do about a certificate the client refused. A certificate that does not list the name
/// in the URL comes from the right server more often than not: the fingerprint is not the problem.
fn untrusted_hint(e: &rustls::Error) -> &'static str {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => {
            "The certificate does not list that host name or address: use one it lists (the \
             server's names are set with `jit-server init --san NAME`)"
        }
        _ => "Check the CA fingerprint (jit-server init prints it)",
    }
}

/// tokio-rustls wraps the rustls error in io::Errors (sometimes two deep), whose `source()`
/// skips the wrapped error, so look inside each one.
fn find_rustls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let io = e.downcast_ref::<std::io::Error>()?;
    find_rustls(io.get_ref()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_the_certificate_lacks_is_not_blamed_on_the_fingerprint() {
        let wrong_name =
            rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        assert!(untrusted_hint(&wrong_name).contains("jit-server init --san"));
        assert!(!untrusted_hint(&wrong_name).contains("fingerprint"));
        let unknown_ca = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert!(untrusted_hint(&unknown_ca).contains("CA fingerprint"));
    }
}
