//! Passkeys (WebAuthn Level 2): checking what a browser sends back after
//! `navigator.credentials.create()` (registration) and `.get()` (sign-in).
//!
//! The server asks for no attestation (`attestation: "none"`): a passkey is registered only in a
//! session that already proved who the person is (a TOTP sign-in or an enrollment code), so the
//! authenticator's make does not matter. What is checked, per the specification's steps: the
//! ceremony type, the challenge this session issued, the origin, the relying-party id hash,
//! user presence *and* user verification (the passkey replaces a second factor, so the
//! authenticator must have checked a PIN or biometric), and on sign-in the signature over
//! `authenticatorData || SHA-256(clientDataJSON)` and the signature counter. Signatures are
//! verified with ring: ES256, EdDSA and RS256, which every platform authenticator offers.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::cbor::{self, Value};

/// COSE algorithm ids this server accepts, in order of preference.
pub const ES256: i64 = -7;
pub const EDDSA: i64 = -8;
pub const RS256: i64 = -257;
pub const ALGORITHMS: [i64; 3] = [ES256, EDDSA, RS256];

const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;
const FLAG_AT: u8 = 0x40;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebauthnError {
    #[error("the browser's answer is malformed: {0}")]
    Malformed(String),
    #[error("the answer is for another kind of request")]
    WrongType,
    #[error(
        "the answer is not for this sign-in attempt (it is old, or from another window); try again"
    )]
    WrongChallenge,
    #[error("the answer comes from another web site ({0})")]
    WrongOrigin(String),
    #[error("the passkey belongs to another web site")]
    WrongRp,
    #[error(
        "the authenticator did not check your PIN, fingerprint or face; passkeys here need that"
    )]
    NotVerified,
    #[error("this passkey uses an algorithm this server does not accept (COSE {0})")]
    Algorithm(i64),
    #[error("the passkey's signature is not valid")]
    BadSignature,
}

fn malformed(s: impl Into<String>) -> WebauthnError {
    WebauthnError::Malformed(s.into())
}

/// What the relying party expects of a ceremony.
pub struct Expect<'a> {
    /// base64url of the challenge this session issued.
    pub challenge: &'a str,
    /// `https://host[:port]`.
    pub origin: &'a str,
    /// The host name.
    pub rp_id: &'a str,
}

#[derive(serde::Deserialize)]
struct ClientData {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
    #[serde(default, rename = "crossOrigin")]
    cross_origin: bool,
}

fn check_client_data(json: &[u8], kind: &str, want: &Expect) -> Result<(), WebauthnError> {
    let cd: ClientData =
        serde_json::from_slice(json).map_err(|e| malformed(format!("clientDataJSON: {e}")))?;
    if cd.kind != kind {
        return Err(WebauthnError::WrongType);
    }
    if !bool::from(cd.challenge.as_bytes().ct_eq(want.challenge.as_bytes())) {
        return Err(WebauthnError::WrongChallenge);
    }
    if cd.origin != want.origin || cd.cross_origin {
        return Err(WebauthnError::WrongOrigin(cd.origin));
    }
    Ok(())
}

/// The fixed start of authenticator data: RP id hash, flags, counter.
struct AuthData<'a> {
    rp_id_hash: &'a [u8],
    flags: u8,
    sign_count: u32,
    rest: &'a [u8],
}

fn parse_auth_data(data: &[u8]) -> Result<AuthData<'_>, WebauthnError> {
    if data.len() < 37 {
        return Err(malformed("authenticator data is shorter than 37 bytes"));
    }
    Ok(AuthData {
        rp_id_hash: &data[..32],
        flags: data[32],
        sign_count: u32::from_be_bytes([data[33], data[34], data[35], data[36]]),
        rest: &data[37..],
    })
}

fn check_auth_data(a: &AuthData, rp_id: &str) -> Result<(), WebauthnError> {
    if !bool::from(a.rp_id_hash.ct_eq(&Sha256::digest(rp_id.as_bytes()))) {
        return Err(WebauthnError::WrongRp);
    }
    if a.flags & FLAG_UP == 0 || a.flags & FLAG_UV == 0 {
        return Err(WebauthnError::NotVerified);
    }
    Ok(())
}

/// A passkey just registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPasskey {
    /// base64url of the credential id.
    pub credential_id: String,
    /// The COSE_Key bytes, as sent.
    pub public_key: Vec<u8>,
    pub algorithm: i64,
    pub sign_count: u32,
}

/// Checks a registration (`navigator.credentials.create()`): clientDataJSON and
/// attestationObject as the browser sent them.
pub fn verify_registration(
    client_data_json: &[u8],
    attestation_object: &[u8],
    want: &Expect,
) -> Result<NewPasskey, WebauthnError> {
    check_client_data(client_data_json, "webauthn.create", want)?;
    let att = cbor::decode_all(attestation_object)
        .map_err(|e| malformed(format!("attestationObject: {e}")))?;
    let auth = att
        .get_text("authData")
        .and_then(Value::as_bytes)
        .ok_or_else(|| malformed("attestationObject has no authData"))?;
    let a = parse_auth_data(auth)?;
    check_auth_data(&a, want.rp_id)?;
    if a.flags & FLAG_AT == 0 || a.rest.len() < 18 {
        return Err(malformed("no credential in the authenticator data"));
    }
    let id_len = usize::from(u16::from_be_bytes([a.rest[16], a.rest[17]]));
    let after_id = 18 + id_len;
    let id = a
        .rest
        .get(18..after_id)
        .ok_or_else(|| malformed("credential id runs past the data"))?;
    if id.is_empty() || id.len() > 1023 {
        return Err(malformed("credential id length"));
    }
    let key_bytes = &a.rest[after_id..];
    let (key, used) =
        cbor::decode(key_bytes).map_err(|e| malformed(format!("credential public key: {e}")))?;
    let algorithm = PublicKey::from_cose(&key)?.algorithm();
    Ok(NewPasskey {
        credential_id: URL_SAFE_NO_PAD.encode(id),
        public_key: key_bytes[..used].to_vec(),
        algorithm,
        sign_count: a.sign_count,
    })
}

/// Checks a sign-in (`navigator.credentials.get()`) against the stored COSE key. Returns the
/// authenticator's new signature counter (the caller refuses one that did not move forward).
pub fn verify_assertion(
    client_data_json: &[u8],
    authenticator_data: &[u8],
    signature: &[u8],
    cose_key: &[u8],
    want: &Expect,
) -> Result<u32, WebauthnError> {
    check_client_data(client_data_json, "webauthn.get", want)?;
    let a = parse_auth_data(authenticator_data)?;
    check_auth_data(&a, want.rp_id)?;
    let key = cbor::decode_all(cose_key).map_err(|e| malformed(format!("stored key: {e}")))?;
    let key = PublicKey::from_cose(&key)?;
    let mut signed = authenticator_data.to_vec();
    signed.extend_from_slice(&Sha256::digest(client_data_json));
    key.verify(&signed, signature)?;
    Ok(a.sign_count)
}

enum PublicKey {
    Es256(Vec<u8>),
    Ed25519(Vec<u8>),
    Rs256 { n: Vec<u8>, e: Vec<u8> },
}

impl PublicKey {
    fn from_cose(k: &Value) -> Result<PublicKey, WebauthnError> {
        let int = |i| k.get_int(i).and_then(Value::as_int);
        let bytes = |i| {
            k.get_int(i)
                .and_then(Value::as_bytes)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| malformed(format!("COSE key has no parameter {i}")))
        };
        let alg = int(3).ok_or_else(|| malformed("COSE key has no algorithm"))?;
        let kty = int(1).ok_or_else(|| malformed("COSE key has no key type"))?;
        match (kty, alg) {
            // EC2, P-256.
            (2, ES256) if int(-1) == Some(1) => {
                let (x, y) = (bytes(-2)?, bytes(-3)?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(malformed("P-256 coordinates are not 32 bytes"));
                }
                let mut point = vec![4u8];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Ok(PublicKey::Es256(point))
            }
            // OKP, Ed25519.
            (1, EDDSA) if int(-1) == Some(6) => {
                let x = bytes(-2)?;
                if x.len() != 32 {
                    return Err(malformed("Ed25519 key is not 32 bytes"));
                }
                Ok(PublicKey::Ed25519(x))
            }
            (3, RS256) => Ok(PublicKey::Rs256 {
                n: bytes(-1)?,
                e: bytes(-2)?,
            }),
            _ => Err(WebauthnError::Algorithm(alg)),
        }
    }

    fn algorithm(&self) -> i64 {
        match self {
            PublicKey::Es256(_) => ES256,
            PublicKey::Ed25519(_) => EDDSA,
            PublicKey::Rs256 { .. } => RS256,
        }
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), WebauthnError> {
        let ok = match self {
            PublicKey::Es256(point) => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, point)
                    .verify(msg, sig)
            }
            PublicKey::Ed25519(x) => {
                signature::UnparsedPublicKey::new(&signature::ED25519, x).verify(msg, sig)
            }
            PublicKey::Rs256 { n, e } => signature::RsaPublicKeyComponents { n, e }.verify(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                msg,
                sig,
            ),
        };
        ok.map_err(|_| WebauthnError::BadSignature)
    }
}

/// A new random challenge, base64url (32 bytes).
pub fn new_challenge() -> String {
    use rand::RngCore;
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

/// Decodes a base64url field of the browser's answer.
pub fn b64(field: &str, s: &str) -> Result<Vec<u8>, WebauthnError> {
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| malformed(format!("{field} is not base64url")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registration and a sign-in as Chromium sent them (see the file's "about").
    fn fixture() -> serde_json::Value {
        serde_json::from_str(include_str!("testdata/chromium_passkey.json")).unwrap()
    }

    fn field(v: &serde_json::Value, k: &str) -> Vec<u8> {
        b64(k, v[k].as_str().unwrap()).unwrap()
    }

    fn registered(f: &serde_json::Value) -> NewPasskey {
        let r = &f["register"];
        let want = Expect {
            challenge: r["challenge"].as_str().unwrap(),
            origin: f["origin"].as_str().unwrap(),
            rp_id: "localhost",
        };
        verify_registration(
            &field(r, "clientDataJson"),
            &field(r, "attestationObject"),
            &want,
        )
        .unwrap()
    }

    #[test]
    fn chromium_registration_and_sign_in_verify() {
        let f = fixture();
        let key = registered(&f);
        assert_eq!(key.algorithm, ES256);
        let s = &f["signin"];
        assert_eq!(key.credential_id, s["id"].as_str().unwrap());
        let want = Expect {
            challenge: s["challenge"].as_str().unwrap(),
            origin: f["origin"].as_str().unwrap(),
            rp_id: "localhost",
        };
        let count = verify_assertion(
            &field(s, "clientDataJson"),
            &field(s, "authenticatorData"),
            &field(s, "signature"),
            &key.public_key,
            &want,
        )
        .unwrap();
        assert!(count > key.sign_count, "{count} after {}", key.sign_count);
    }

    #[test]
    fn every_check_refuses_its_case() {
        let f = fixture();
        let key = registered(&f);
        let s = &f["signin"];
        let origin = f["origin"].as_str().unwrap();
        let challenge = s["challenge"].as_str().unwrap();
        let cd = field(s, "clientDataJson");
        let ad = field(s, "authenticatorData");
        let sig = field(s, "signature");
        let check = |cd: &[u8], ad: &[u8], sig: &[u8], challenge: &str, origin: &str, rp: &str| {
            let want = Expect {
                challenge,
                origin,
                rp_id: rp,
            };
            verify_assertion(cd, ad, sig, &key.public_key, &want).unwrap_err()
        };
        let other = new_challenge();
        assert_eq!(
            check(&cd, &ad, &sig, &other, origin, "localhost"),
            WebauthnError::WrongChallenge
        );
        assert!(matches!(
            check(
                &cd,
                &ad,
                &sig,
                challenge,
                "https://evil.example",
                "localhost"
            ),
            WebauthnError::WrongOrigin(_)
        ));
        assert_eq!(
            check(&cd, &ad, &sig, challenge, origin, "evil.example"),
            WebauthnError::WrongRp
        );
        let mut bad = sig.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(
            check(&cd, &ad, &bad, challenge, origin, "localhost"),
            WebauthnError::BadSignature
        );
        // The counter is signed: a changed one breaks the signature.
        let mut moved = ad.clone();
        moved[36] ^= 1;
        assert_eq!(
            check(&cd, &moved, &sig, challenge, origin, "localhost"),
            WebauthnError::BadSignature
        );
        // Without user verification the passkey is refused before its signature is looked at.
        let mut unverified = ad.clone();
        unverified[32] &= !FLAG_UV;
        assert_eq!(
            check(&cd, &unverified, &sig, challenge, origin, "localhost"),
            WebauthnError::NotVerified
        );
        // A sign-in answer is no registration, and the reverse.
        let r = &f["register"];
        let want = Expect {
            challenge,
            origin,
            rp_id: "localhost",
        };
        assert_eq!(
            verify_registration(&cd, &field(r, "attestationObject"), &want).unwrap_err(),
            WebauthnError::WrongType
        );
        assert!(matches!(
            verify_assertion(&ad, &ad, &sig, &key.public_key, &want).unwrap_err(),
            WebauthnError::Malformed(_)
        ));
    }
}
