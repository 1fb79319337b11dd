//! The generic webhook: a JSON body for chat bridges and scripts, signed with HMAC-SHA256 under
//! a shared secret. The signature is in `X-Jit-Signature-256: sha256=<hex>` (the GitHub
//! convention), over the exact bytes of the body; `sent_at` in the body lets a receiver refuse
//! old deliveries. Never the number.

use ring::hmac;

use super::Notice;

pub const SIGNATURE_HEADER: &str = "X-Jit-Signature-256";
pub const EVENT_HEADER: &str = "X-Jit-Event";

/// The body, as bytes (the signature is over exactly these).
pub fn body(n: &Notice, sent_at: i64) -> Vec<u8> {
    serde_json::json!({
        "event": n.kind.action(),
        "challenge": n.challenge,
        "person": n.person,
        "account": n.account,
        "host": n.host,
        "service": n.service,
        "source": n.rhost,
        "tty": n.tty,
        "ruser": n.ruser,
        "approve_url": n.approve_url(),
        "at": n.at,
        "expires_at": n.expires_at,
        "sent_at": sent_at,
    })
    .to_string()
    .into_bytes()
}

/// `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    format!("sha256={}", hex::encode(hmac::sign(&key, body).as_ref()))
}

/// What a receiver does: checks the header against the body, in constant time.
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(tag) = header
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, body, &tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::NoticeKind;

    #[test]
    fn signed_body_verifies_and_a_changed_byte_does_not() {
        let n = super::super::tests::notice(NoticeKind::Sent);
        let b = body(&n, 1_700_000_001);
        let sig = signature(b"s3cret", &b);
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert!(verify(b"s3cret", &b, &sig));
        assert!(!verify(b"other", &b, &sig));
        let mut changed = b.clone();
        changed[3] ^= 1;
        assert!(!verify(b"s3cret", &changed, &sig));
        assert!(!verify(b"s3cret", &b, "sha256=zz"));
        // RFC 4231 test case 2, so the signature is plain HMAC-SHA256 any receiver can check.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["event"], "push.sent");
        assert_eq!(v["source"], "192.0.2.10");
        assert!(!String::from_utf8_lossy(&b).contains("\"number\""));
    }
}
