//! The one-time token that joins a host: `jit1_` then base64url(JSON) holding the server URL, the
//! pinned CA fingerprint, the host name and the join secret. One string is easy to paste into
//! `jitd join --token`, and carrying the fingerprint means the host never trusts the network.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::name::HostName;
use crate::secret::Secret;

const PREFIX: &str = "jit1_";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinToken {
    /// `https://host:port` of the server, as the host should reach it.
    pub server: String,
    /// `SHA256:<hex>` of the server's CA certificate.
    pub ca_fingerprint: String,
    pub host: HostName,
    pub secret: Secret,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JoinTokenError {
    #[error(
        "not a jit join token: it should start with {PREFIX:?}; copy it again from `jitctl host add`"
    )]
    Prefix,
    #[error("join token is damaged ({0}); copy it again from `jitctl host add`")]
    Damaged(String),
}

impl JoinToken {
    pub fn encode(&self) -> Secret {
        // Serializing plain strings cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        let body = zeroize::Zeroizing::new(json);
        Secret::new(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(&*body)))
    }

    pub fn decode(token: &str) -> Result<Self, JoinTokenError> {
        let body = token
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(JoinTokenError::Prefix)?;
        let json = zeroize::Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(body)
                .map_err(|e| JoinTokenError::Damaged(e.to_string()))?,
        );
        serde_json::from_slice(&json).map_err(|e| JoinTokenError::Damaged(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let t = JoinToken {
            server: "https://127.0.0.1:8443".into(),
            ca_fingerprint: "SHA256:00ff".into(),
            host: HostName::new("web01").unwrap(),
            secret: Secret::new("s3cret"),
        };
        let enc = t.encode();
        assert!(enc.expose().starts_with("jit1_"));
        assert_eq!(JoinToken::decode(enc.expose()).unwrap(), t);
        assert_eq!(JoinToken::decode("hello"), Err(JoinTokenError::Prefix));
        assert!(matches!(
            JoinToken::decode("jit1_!!!"),
            Err(JoinTokenError::Damaged(_))
        ));
        assert!(matches!(
            JoinToken::decode("jit1_e30"),
            Err(JoinTokenError::Damaged(_))
        ));
    }
}
