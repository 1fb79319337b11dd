//! `jitd join` and `jitd check-config` against the real server: the pin, one-time tokens, the
//! files it writes, and configuration errors with file and line.

use std::os::unix::fs::PermissionsExt;

use jit_proto::join_token::JoinToken;
use jit_tests::World;
use jit_tests::host::Host;

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn join_pins_the_ca_and_uses_the_token_once() {
    let w = World::new();

    // A token whose fingerprint is not the server's: refused before the secret is sent.
    let mut forged = JoinToken::decode(&w.join_token).expect("token");
    forged.ca_fingerprint = format!("SHA256:{}", "ab".repeat(32));
    let host = Host::unjoined();
    let out = host.jitd(&["join", "--token", forged.encode().expose()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("is not the one you pinned"),
        "{}",
        text(&out)
    );
    assert!(!host.path().join("etc-jit/host.key").exists());

    // The right server, a secret it never issued (an old token after a rejoin, say).
    let mut stale = JoinToken::decode(&w.join_token).expect("token");
    stale.secret = jit_proto::Secret::new("jitj_not-the-secret");
    let out = host.jitd(&["join", "--token", stale.encode().expose()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("this join token is not (or no longer) valid"),
        "{}",
        text(&out)
    );
    assert!(!host.path().join("etc-jit/host.key").exists());

    let out = host.jitd(&["join", "--token", "not-a-token"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("not a jit join token"),
        "{}",
        text(&out)
    );

    // The real token: the key is private, the CA is stored, the NSS cache is published.
    let out = host.jitd(&["join", "--token", &w.join_token]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Joined web01"), "{}", text(&out));
    let key = host.path().join("etc-jit/host.key");
    assert_eq!(
        std::fs::metadata(&key)
            .expect("host.key")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let ca = std::fs::read_to_string(host.path().join("etc-jit/ca.pem")).expect("ca.pem");
    assert_eq!(
        ca,
        std::fs::read_to_string(w.server.ca_pem()).expect("server ca")
    );
    for path in [host.nss_cache(), host.state_cache()] {
        assert!(jit_tests::host::guards(&path, "admin"));
    }
    let key_text = std::fs::read_to_string(&key).expect("key");
    assert!(
        !text(&out).contains(&key_text),
        "the credential was printed"
    );

    // Joining again needs --force; the token then turns out to be used.
    let out = host.jitd(&["join", "--token", &w.join_token]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("already joined as web01") && text(&out).contains("--force"),
        "{}",
        text(&out)
    );
    let out = host.jitd(&["join", "--token", &w.join_token, "--force"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("cannot join web01"), "{}", text(&out));
    // The first join's key is untouched.
    assert_eq!(std::fs::read_to_string(&key).expect("key"), key_text);
}

#[test]
fn config_errors_name_file_line_and_key() {
    let host = Host::unjoined();
    let cfg = host.config();
    let good = std::fs::read_to_string(&cfg).expect("config");
    let out = host.jitd(&["check-config"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("not usable yet") && text(&out).contains("jitd join"),
        "{}",
        text(&out)
    );

    std::fs::write(&cfg, format!("{good}refresh_intervall = \"5s\"\n")).expect("write");
    let out = host.jitd(&["check-config"]);
    assert_eq!(out.status.code(), Some(2));
    let line = good.lines().count() + 1;
    let t = text(&out);
    assert!(
        t.contains(&cfg.display().to_string()) && t.contains(&format!("line {line}")),
        "{t}"
    );
    assert!(t.contains("refresh_intervall"), "{t}");

    std::fs::write(
        &cfg,
        good.replace("refresh_interval = \"1s\"", "refresh_interval = \"2m\""),
    )
    .expect("write");
    let out = host.jitd(&["run"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("refresh_interval: must be between 1s and 30s"),
        "{}",
        text(&out)
    );

    // A valid config on an unjoined host: run says what to do.
    std::fs::write(&cfg, &good).expect("write");
    let out = host.jitd(&["run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("jitd join --token"), "{}", text(&out));
}

#[test]
fn sigterm_stops_cleanly_and_removes_the_socket() {
    let w = World::new();
    let mut host = Host::start(&w);
    let status = host.stop();
    assert!(status.success(), "{status}: {}", host.log());
    assert!(!host.socket().exists());
}
