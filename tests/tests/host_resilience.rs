//! Issue 3, scenarios 9-12: jitd or the server gone, and hostile clients on the PAM socket.

use jit_proto::pam::PROTOCOL_VERSION;
use jit_tests::World;
use jit_tests::host::{
    Host, PROMPT, SERVICE, frame, hello_as, raw_exchange, reserve, wait_for_event,
};

const ADMIN_PASSWD: &str = "admin:x:60001:60001::/home/admin:/bin/bash";

/// Scenario 9: jitd killed: the shared account is refused (pam_jit falls back to the cache), other users
/// are fine, and NSS still answers, from the run copy and from the persisted copy alone.
#[test]
fn jitd_killed_fails_closed_for_shared_accounts_only() {
    let w = World::new();
    let mut host = Host::start(&w);
    reserve(&w.alice, "admin");
    host.kill();
    host.login("admin", &w.alice.next_code())
        .assert_failed()
        .assert_shows("cannot reach jitd")
        .assert_hides(PROMPT)
        .assert_hides("JIT_PERSON");
    host.pamtester(SERVICE, "admin", &["acct_mgmt"], "")
        .assert_failed();
    host.service("permit-next", "pam_permit.so");
    host.pamtester(
        "permit-next",
        "alice",
        &["authenticate", "acct_mgmt", "open_session"],
        "",
    )
    .assert_ok()
    .assert_hides("jit:");
    assert_eq!(host.nss_ok(&["getent", "passwd", "admin"]), ADMIN_PASSWD);
    // As after a reboot: /run is empty, the copy under the state dir answers.
    std::fs::remove_file(host.nss_cache()).expect("remove run copy");
    assert_eq!(host.nss_ok(&["getent", "passwd", "admin"]), ADMIN_PASSWD);
    assert_eq!(host.nss_ok(&["id", "-u", "admin"]), "60001");
}

/// Scenario 10: The server killed after a login: NSS still answers, a new login is refused with the
/// unreachable message (also after jitd restarts with an empty /run), and the refusals reach
/// the audit log once the server is back.
#[test]
fn server_killed_after_a_login() {
    let mut w = World::new();
    let mut host = Host::start(&w);
    reserve(&w.alice, "admin");
    host.login("admin", &w.alice.next_code())
        .assert_ok()
        .assert_shows("JIT_PERSON=alice");
    w.server.kill();
    assert_eq!(host.nss_ok(&["getent", "passwd", "admin"]), ADMIN_PASSWD);
    host.pamtester(SERVICE, "admin", &["authenticate"], "")
        .assert_failed()
        .assert_shows("the jit server cannot be reached; logins to admin are refused")
        .assert_hides(PROMPT);

    // Reboot-like restart of jitd while the server is still down.
    host.kill();
    std::fs::remove_file(host.nss_cache()).expect("remove run copy");
    host.run();
    assert!(
        host.nss_cache().exists(),
        "the run copy was not restored from the state copy"
    );
    assert_eq!(host.nss_ok(&["getent", "passwd", "admin"]), ADMIN_PASSWD);
    host.pamtester(SERVICE, "admin", &["authenticate"], "")
        .assert_failed()
        .assert_shows("the jit server cannot be reached");
    let queued = std::fs::read_to_string(host.audit_queue()).unwrap_or_default();
    assert!(queued.lines().count() >= 2, "audit queue: {queued}");

    w.server.restart();
    wait_for_event(&w.admin, "admin", "login.denied", "denied", None);
    jit_tests::wait_for(
        "the audit queue to drain",
        jit_tests::host::PATIENCE,
        || {
            std::fs::read_to_string(host.audit_queue())
                .unwrap_or_default()
                .trim()
                .is_empty()
        },
    );
    let events = jit_tests::host::audit(&w.admin, "admin");
    let denied = events
        .iter()
        .filter(|e| e["action"] == "login.denied")
        .count();
    assert_eq!(denied, 2, "{events:#?}");
}

/// Scenario 11: Garbage, oversized and truncated frames, and the wrong version: each gets a failure
/// reply where one can be written and a closed connection; jitd goes on serving logins.
#[test]
fn bad_frames_leave_the_daemon_serving() {
    let w = World::new();
    let host = Host::start(&w);
    let socket = host.socket();
    let failed = |reply: Option<serde_json::Value>| -> String {
        let r = reply.expect("a reply");
        assert_eq!(r["step"], "failed", "{r}");
        r["message"].as_str().unwrap_or_default().to_owned()
    };

    let (reply, closed) = raw_exchange(&socket, &frame(b"\xff\xfe garbage {]"), false);
    assert!(failed(reply).contains("not a valid message"));
    assert!(closed);

    let (reply, closed) = raw_exchange(&socket, &u32::MAX.to_be_bytes(), false);
    assert!(failed(reply).contains("over the 65536-byte limit"));
    assert!(closed);

    let (reply, closed) = raw_exchange(&socket, &(64 * 1024 + 1u32).to_be_bytes(), false);
    assert!(failed(reply).contains("limit"));
    assert!(closed);

    let mut truncated = 200u32.to_be_bytes().to_vec();
    truncated.extend_from_slice(br#"{"type":"hel"#);
    let (reply, closed) = raw_exchange(&socket, &truncated, true);
    assert!(failed(reply).contains("truncated"));
    assert!(closed);

    let wrong = format!(r#"{{"type":"hello","version":{}}}"#, PROTOCOL_VERSION + 1);
    let (reply, closed) = raw_exchange(&socket, &frame(wrong.as_bytes()), false);
    let msg = failed(reply);
    assert!(
        msg.contains(&format!("version {}", PROTOCOL_VERSION + 1)),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("version {PROTOCOL_VERSION}")),
        "{msg}"
    );
    assert!(closed);

    // Still serving, and still alive as a process.
    reserve(&w.alice, "admin");
    host.login("admin", &w.alice.next_code())
        .assert_ok()
        .assert_shows("JIT_PERSON=alice");
}

/// Scenario 12: A client that is not root is refused (SO_PEERCRED), and root is still served.
#[test]
fn non_root_client_is_refused() {
    let w = World::new();
    let host = Host::start(&w);
    let reply = hello_as(&host, 65534);
    assert_eq!(reply["step"], "failed", "{reply}");
    let msg = reply["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("root (uid 0) only") && msg.contains("65534"),
        "{msg}"
    );
    reserve(&w.alice, "admin");
    host.login("admin", &w.alice.next_code()).assert_ok();
}

/// Tried as a new user would: `jitd run` a second time on a host where jitd already runs. It is
/// refused with a reason before it touches anything, and the running jitd keeps serving logins.
#[test]
fn a_second_jitd_is_refused_and_the_first_keeps_serving() {
    let w = World::new();
    let host = Host::start(&w);
    let second = host.jitd(&["run"]);
    assert!(!second.status.success(), "a second jitd started");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("another jitd is already serving") && err.contains("pam.sock"),
        "{err}"
    );
    reserve(&w.alice, "admin");
    host.login("admin", &w.alice.next_code())
        .assert_ok()
        .assert_shows("JIT_PERSON=alice");
}
