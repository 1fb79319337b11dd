//! Web Push to the portal's service worker: the payload encrypted for one browser (RFC 8291,
//! `aes128gcm` content coding of RFC 8188, one record) and the server's VAPID identity
//! (RFC 8292: an ES256 JWT for the push service's origin, and the public key in `k=`).
//!
//! The VAPID key is derived from the at-rest key, so every server process sharing that key has
//! the same identity and browsers' subscriptions stay valid across restarts. Never logs a key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use ring::aead;
use ring::hmac;
use zeroize::Zeroizing;

/// Record size announced in the header (one record carries the whole payload).
const RECORD_SIZE: u32 = 4096;
/// The most plaintext one record holds: the record size less the tag (16) and the delimiter.
pub const MAX_PLAINTEXT: usize = RECORD_SIZE as usize - 16 - 1 - 86;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebPushError {
    #[error("the browser's key (p256dh) is not an uncompressed P-256 point")]
    BadPublicKey,
    #[error("the browser's auth secret must be 16 bytes")]
    BadAuth,
    #[error("the notification is too large for one Web Push record")]
    TooLarge,
    #[error("the push service's address has no origin")]
    BadEndpoint,
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&k);
    for p in parts {
        ctx.update(p);
    }
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// The browser's side of a subscription, checked.
pub struct Recipient {
    /// `p256dh`: the uncompressed point (65 bytes).
    public: [u8; 65],
    auth: [u8; 16],
}

impl Recipient {
    /// From the subscription's `keys.p256dh` and `keys.auth` (base64url, as browsers give them).
    pub fn parse(p256dh: &str, auth: &str) -> Result<Recipient, WebPushError> {
        let public = B64
            .decode(p256dh.trim_end_matches('='))
            .ok()
            .and_then(|b| <[u8; 65]>::try_from(b.as_slice()).ok())
            .filter(|p| PublicKey::from_sec1_bytes(p).is_ok() && p[0] == 4)
            .ok_or(WebPushError::BadPublicKey)?;
        let auth = B64
            .decode(auth.trim_end_matches('='))
            .ok()
            .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
            .ok_or(WebPushError::BadAuth)?;
        Ok(Recipient { public, auth })
    }
}

/// Encrypts `plaintext` for `to` (RFC 8291 §3, with a fresh sender key and salt).
pub fn encrypt(plaintext: &[u8], to: &Recipient) -> Result<Vec<u8>, WebPushError> {
    let rng = ring::rand::SystemRandom::new();
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&rng, &mut salt).map_err(|_| WebPushError::TooLarge)?;
    encrypt_with(plaintext, to, &random_secret(&rng), &salt)
}

/// A random P-256 private key (a random 32 bytes is a valid scalar with overwhelming
/// probability; the loop covers the rest).
fn random_secret(rng: &ring::rand::SystemRandom) -> SecretKey {
    loop {
        let mut raw = Zeroizing::new([0u8; 32]);
        if ring::rand::SecureRandom::fill(rng, &mut *raw).is_ok()
            && let Ok(k) = SecretKey::from_slice(&*raw)
        {
            return k;
        }
    }
}

/// RFC 8291 with the sender's key and the salt given (the test vectors fix both).
pub fn encrypt_with(
    plaintext: &[u8],
    to: &Recipient,
    sender: &SecretKey,
    salt: &[u8; 16],
) -> Result<Vec<u8>, WebPushError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(WebPushError::TooLarge);
    }
    let ua = PublicKey::from_sec1_bytes(&to.public).map_err(|_| WebPushError::BadPublicKey)?;
    let as_public = sender.public_key().to_encoded_point(false);
    let as_public = as_public.as_bytes();
    let shared = p256::ecdh::diffie_hellman(sender.to_nonzero_scalar(), ua.as_affine());
    let keys = derive(
        shared.raw_secret_bytes(),
        &to.auth,
        &to.public,
        as_public,
        salt,
    );
    let mut body = Vec::with_capacity(86 + plaintext.len() + 17);
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(65);
    body.extend_from_slice(as_public);
    let mut record = plaintext.to_vec();
    // The last (here: only) record ends with the delimiter 0x02 and no padding.
    record.push(2);
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_128_GCM, &keys.cek).map_err(|_| WebPushError::TooLarge)?,
    );
    key.seal_in_place_append_tag(
        aead::Nonce::assume_unique_for_key(keys.nonce),
        aead::Aad::empty(),
        &mut record,
    )
    .map_err(|_| WebPushError::TooLarge)?;
    body.extend_from_slice(&record);
    Ok(body)
}

/// The content encryption key and nonce of RFC 8291 §3.4 and RFC 8188 §2.2/§2.3.
struct Keys {
    cek: [u8; 16],
    nonce: [u8; 12],
}

impl Drop for Keys {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.cek);
    }
}

fn derive(ecdh: &[u8], auth: &[u8], ua_public: &[u8], as_public: &[u8], salt: &[u8]) -> Keys {
    // HKDF with one block of output is HMAC(PRK, info || 0x01).
    let prk_key = hmac_sha256(auth, &[ecdh]);
    let ikm = hmac_sha256(&*prk_key, &[b"WebPush: info\0", ua_public, as_public, &[1]]);
    let prk = hmac_sha256(salt, &[&*ikm]);
    let cek = hmac_sha256(&*prk, &[b"Content-Encoding: aes128gcm\0", &[1]]);
    let nonce = hmac_sha256(&*prk, &[b"Content-Encoding: nonce\0", &[1]]);
    let mut k = Keys {
        cek: [0; 16],
        nonce: [0; 12],
    };
    k.cek.copy_from_slice(&cek[..16]);
    k.nonce.copy_from_slice(&nonce[..12]);
    k
}

/// The server's VAPID identity (RFC 8292).
pub struct Vapid {
    key: SigningKey,
}

impl Vapid {
    /// The identity derived from `seed` (32 bytes from the at-rest key).
    pub fn from_seed(seed: &[u8; 32]) -> Vapid {
        let mut input = Zeroizing::new(*seed);
        loop {
            if let Ok(k) = SecretKey::from_slice(&*input) {
                return Vapid { key: k.into() };
            }
            // Not a valid scalar (about one chance in 2^32): hash it once more.
            input = hmac_sha256(&*input, &[b"jit vapid retry"]);
        }
    }

    /// The public key as browsers take it for `applicationServerKey` (uncompressed point,
    /// base64url), and as the `k=` of the Authorization header.
    pub fn public_key(&self) -> String {
        let point = VerifyingKey::from(&self.key).to_encoded_point(false);
        B64.encode(point.as_bytes())
    }

    /// `Authorization: vapid t=JWT, k=KEY` for a message to `endpoint`, valid until `exp`.
    pub fn authorization(
        &self,
        endpoint: &str,
        contact: &str,
        exp: i64,
    ) -> Result<String, WebPushError> {
        let aud = origin(endpoint).ok_or(WebPushError::BadEndpoint)?;
        let input = signing_input(&aud, exp, contact);
        let sig: Signature = self.key.sign(input.as_bytes());
        Ok(format!(
            "vapid t={input}.{}, k={}",
            B64.encode(sig.to_bytes()),
            self.public_key()
        ))
    }
}

/// `scheme://host[:port]` of a URL.
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty() && (scheme == "https" || scheme == "http"))
        .then(|| format!("{scheme}://{authority}"))
}

/// The JWT's header and claims, base64url, as RFC 8292 §2 writes them.
fn signing_input(aud: &str, exp: i64, sub: &str) -> String {
    let header = B64.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
    let claims = serde_json::json!({ "aud": aud, "exp": exp, "sub": sub });
    format!("{header}.{}", B64.encode(claims.to_string()))
}

/// Checks a VAPID JWT against a public key (uncompressed point, base64url) and returns its
/// claims: what a push service does. Used by the tests and the test receiver.
pub fn verify_jwt(jwt: &str, public_key: &str) -> Option<serde_json::Value> {
    let (input, sig) = jwt.rsplit_once('.')?;
    let key = VerifyingKey::from_sec1_bytes(&B64.decode(public_key).ok()?).ok()?;
    let sig = Signature::from_slice(&B64.decode(sig).ok()?).ok()?;
    key.verify(input.as_bytes(), &sig).ok()?;
    let (_, claims) = input.split_once('.')?;
    serde_json::from_slice(&B64.decode(claims).ok()?).ok()
}

/// Decrypts a body made by [`encrypt`] with the browser's private key: what the browser does.
/// Used by the tests and the test receiver.
pub fn decrypt(body: &[u8], ua_private: &SecretKey, auth: &[u8; 16]) -> Option<Vec<u8>> {
    let salt = body.get(..16)?;
    let idlen = usize::from(*body.get(20)?);
    let as_public = body.get(21..21 + idlen)?;
    let ct = body.get(21 + idlen..)?;
    let sender = PublicKey::from_sec1_bytes(as_public).ok()?;
    let shared = p256::ecdh::diffie_hellman(ua_private.to_nonzero_scalar(), sender.as_affine());
    let ua_public = ua_private.public_key().to_encoded_point(false);
    let keys = derive(
        shared.raw_secret_bytes(),
        auth,
        ua_public.as_bytes(),
        as_public,
        salt,
    );
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &keys.cek).ok()?);
    let mut buf = ct.to_vec();
    let plain = key
        .open_in_place(
            aead::Nonce::assume_unique_for_key(keys.nonce),
            aead::Aad::empty(),
            &mut buf,
        )
        .ok()?;
    // Strip the padding and the delimiter of the last record.
    let end = plain.iter().rposition(|b| *b != 0)?;
    (plain.get(end) == Some(&2)).then(|| plain[..end].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> Vec<u8> {
        B64.decode(s).unwrap()
    }

    // RFC 8291, Appendix A.
    const PLAINTEXT: &str = "When I grow up, I want to be a watermelon";
    const AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
    const AS_PUBLIC: &str =
        "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
    const UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
    const UA_PUBLIC: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
    const BODY: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";

    #[test]
    fn rfc8291_appendix_a_message_byte_for_byte() {
        let sender = SecretKey::from_slice(&b64(AS_PRIVATE)).unwrap();
        assert_eq!(
            B64.encode(sender.public_key().to_encoded_point(false).as_bytes()),
            AS_PUBLIC
        );
        let to = Recipient::parse(UA_PUBLIC, AUTH).unwrap();
        let salt: [u8; 16] = b64(SALT).try_into().unwrap();
        let body = encrypt_with(PLAINTEXT.as_bytes(), &to, &sender, &salt).unwrap();
        assert_eq!(B64.encode(&body), BODY);
    }

    #[test]
    fn rfc8291_appendix_a_intermediate_keys() {
        let sender = SecretKey::from_slice(&b64(AS_PRIVATE)).unwrap();
        let ua = PublicKey::from_sec1_bytes(&b64(UA_PUBLIC)).unwrap();
        let shared = p256::ecdh::diffie_hellman(sender.to_nonzero_scalar(), ua.as_affine());
        assert_eq!(
            B64.encode(shared.raw_secret_bytes()),
            "kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs"
        );
        let k = derive(
            shared.raw_secret_bytes(),
            &b64(AUTH),
            &b64(UA_PUBLIC),
            &b64(AS_PUBLIC),
            &b64(SALT),
        );
        assert_eq!(B64.encode(k.cek), "oIhVW04MRdy2XN9CiKLxTg");
        assert_eq!(B64.encode(k.nonce), "4h_95klXJ5E_qnoN");
    }

    #[test]
    fn the_browser_reads_what_was_sent_and_nothing_tampered() {
        let ua = SecretKey::from_slice(&b64(UA_PRIVATE)).unwrap();
        let auth: [u8; 16] = b64(AUTH).try_into().unwrap();
        assert_eq!(
            decrypt(&b64(BODY), &ua, &auth).unwrap(),
            PLAINTEXT.as_bytes()
        );
        // A fresh key and salt every time, and still readable.
        let to = Recipient::parse(UA_PUBLIC, AUTH).unwrap();
        let a = encrypt(b"{\"title\":\"x\"}", &to).unwrap();
        let b = encrypt(b"{\"title\":\"x\"}", &to).unwrap();
        assert_ne!(a, b);
        assert_eq!(decrypt(&a, &ua, &auth).unwrap(), b"{\"title\":\"x\"}");
        let mut bad = a.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(decrypt(&bad, &ua, &auth).is_none());
    }

    #[test]
    fn bad_subscription_keys_and_oversized_payloads_are_refused() {
        assert_eq!(
            Recipient::parse("AAAA", AUTH).err(),
            Some(WebPushError::BadPublicKey)
        );
        assert_eq!(
            Recipient::parse(UA_PUBLIC, "c2hvcnQ").err(),
            Some(WebPushError::BadAuth)
        );
        let to = Recipient::parse(UA_PUBLIC, AUTH).unwrap();
        assert_eq!(
            encrypt(&vec![b'x'; MAX_PLAINTEXT + 1], &to).err(),
            Some(WebPushError::TooLarge)
        );
        assert!(encrypt(&vec![b'x'; MAX_PLAINTEXT], &to).is_ok());
    }

    // RFC 8292, section 2.4.
    const RFC8292_JWT: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJodHRwczovL3B1c2guZXhhbXBsZS5uZXQiLCJleHAiOjE0NTM1MjM3NjgsInN1YiI6Im1haWx0bzpwdXNoQGV4YW1wbGUuY29tIn0.i3CYb7t4xfxCDquptFOepC9GAu_HLGkMlMuCGSK2rpiUfnK9ojFwDXb1JrErtmysazNjjvW2L9OkSSHzvoD1oA";
    const RFC8292_KEY: &str =
        "BA1Hxzyi1RUM1b5wjxsn7nGxAszw2u61m164i3MrAIxHF6YK5h4SDYic-dRuU_RCPCfA5aq9ojSwk5Y2EmClBPs";

    #[test]
    fn rfc8292_example_token() {
        // The same claims give exactly the RFC's header and claims...
        let input = signing_input(
            "https://push.example.net",
            1_453_523_768,
            "mailto:push@example.com",
        );
        assert!(RFC8292_JWT.starts_with(&format!("{input}.")));
        // ...and the RFC's signature verifies the way push services check ours.
        let claims = verify_jwt(RFC8292_JWT, RFC8292_KEY).unwrap();
        assert_eq!(claims["aud"], "https://push.example.net");
        let forged = RFC8292_JWT.replacen(
            "eyJhdWQiOiJodHRwczovL3B1c2gu",
            "eyJhdWQiOiJodHRwczovL3B1c2hf",
            1,
        );
        assert!(verify_jwt(&forged, RFC8292_KEY).is_none());
    }

    #[test]
    fn our_vapid_header_verifies_under_our_key() {
        let v = Vapid::from_seed(&[7; 32]);
        let h = v
            .authorization(
                "https://push.example.net/p/abc?x=1",
                "mailto:ops@example.org",
                1_700_000_000,
            )
            .unwrap();
        let (t, k) = h
            .strip_prefix("vapid t=")
            .unwrap()
            .split_once(", k=")
            .unwrap();
        assert_eq!(k, v.public_key());
        assert_eq!(B64.decode(k).unwrap().len(), 65);
        let claims = verify_jwt(t, k).unwrap();
        assert_eq!(claims["aud"], "https://push.example.net");
        assert_eq!(claims["exp"], 1_700_000_000);
        assert_eq!(claims["sub"], "mailto:ops@example.org");
        // The same seed, the same identity (every server process derives it alike).
        assert_eq!(Vapid::from_seed(&[7; 32]).public_key(), k);
        assert!(v.authorization("not a url", "mailto:x@y", 1).is_err());
    }
}
