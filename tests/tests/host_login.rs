//! Issue 3, scenarios 1-8 (and a public-key-like login): a shared-account login through real
//! libpam (pamtester + libpam_jit.so, pam.d bind-mounted in a private mount namespace), the real jitd and the real jit-server.
//! Each test has its own server, jitd and temp dirs.

use std::io::Write;
use std::process::Stdio;

use jit_tests::host::{
    Host, PATIENCE, PROMPT, SERVICE, assert_code_not_logged, audit, has_event, reserve,
    wait_for_event, wrong_code,
};
use jit_tests::{World, now, wait_for};

const ALL_STAGES: &[&str] = &["authenticate", "acct_mgmt", "open_session", "close_session"];

/// Scenario 1: Happy path with TOTP: the session sees JIT_PERSON, the audit log names alice.
#[test]
fn happy_path_with_totp() {
    let w = World::new();
    let host = Host::start(&w);
    reserve(&w.alice, "admin");
    host.login("admin", &w.alice.next_code())
        .assert_ok()
        .assert_shows(PROMPT)
        .assert_shows("JIT_PERSON=alice")
        .assert_hides("bob");
    assert!(
        has_event(&w.admin, "admin", "login.verify", "ok", Some("alice")),
        "{:#?}",
        audit(&w.admin, "admin")
    );
    wait_for_event(&w.admin, "admin", "session.open", "ok", Some("alice"));
    wait_for_event(&w.admin, "admin", "session.close", "ok", Some("alice"));
    let events = audit(&w.admin, "admin");
    let open = events
        .iter()
        .find(|e| e["action"] == "session.open")
        .expect("session.open");
    assert_eq!(open["actor"], "host:web01");
    assert_eq!(open["detail"]["origin"]["service"], SERVICE);
    assert_eq!(open["detail"]["origin"]["rhost"], "192.0.2.10");
}

/// Scenario 2: Wrong code: denied, the message is visible, the audit log says why.
#[test]
fn wrong_code_is_denied() {
    let w = World::new();
    let host = Host::start(&w);
    reserve(&w.alice, "admin");
    host.login("admin", &wrong_code(&w.alice))
        .assert_failed()
        .assert_shows(PROMPT)
        .assert_shows("The code is not valid for the current reservation of admin on web01")
        .assert_hides("JIT_PERSON");
    let events = audit(&w.admin, "admin");
    assert!(
        events.iter().any(|e| e["action"] == "login.verify"
            && e["result"] == "denied"
            && e["reason"].as_str().unwrap_or("").starts_with("wrong_code")),
        "{events:#?}"
    );
}

/// Scenario 3: Replayed code: the code of a successful login does not open a new reservation.
#[test]
fn replayed_code_is_denied() {
    let w = World::new();
    let host = Host::start(&w);
    let code = w.alice.next_code();
    reserve(&w.alice, "admin");
    host.login("admin", &code).assert_ok();
    reserve(&w.alice, "admin");
    host.login("admin", &code)
        .assert_failed()
        .assert_shows("That code was already used")
        .assert_hides("JIT_PERSON");
    let events = audit(&w.admin, "admin");
    assert!(
        events.iter().any(|e| e["action"] == "login.verify"
            && e["result"] == "denied"
            && e["reason"]
                .as_str()
                .unwrap_or("")
                .starts_with("replayed_code")),
        "{events:#?}"
    ); // Neither the granted code nor its replay was logged, by jitd or by the server.
    assert_code_not_logged(&host.log(), &code, "jitd");
    assert_code_not_logged(&w.server.log(), &code, "the server");
}

/// Scenario 4: No reservation: denied before any prompt, with how to reserve.
#[test]
fn no_reservation_is_denied_before_any_prompt() {
    let w = World::new();
    let host = Host::start(&w);
    host.pamtester(SERVICE, "admin", &["authenticate"], "")
        .assert_failed()
        .assert_shows("admin is not reserved on web01")
        .assert_shows("jitctl reserve admin --host web01")
        .assert_hides(PROMPT);
}

/// Scenario 5: Someone else's reservation: bob holds it, alice's code is refused, and nothing shown at
/// the login names bob.
#[test]
fn someone_elses_reservation_is_denied_without_naming_the_holder() {
    let w = World::new();
    let host = Host::start(&w);
    reserve(&w.bob, "admin");
    let code = w.alice.next_code();
    host.login("admin", &code)
        .assert_failed()
        .assert_shows(PROMPT)
        .assert_shows("The code is not valid")
        .assert_hides("bob")
        .assert_hides("JIT_PERSON");
    assert_code_not_logged(&host.log(), &code, "jitd");
}

/// Scenario 6: A consumed reservation cannot log in twice.
#[test]
fn consumed_reservation_cannot_log_in_twice() {
    let w = World::new();
    let host = Host::start(&w);
    reserve(&w.alice, "admin");
    host.login("admin", &w.alice.next_code()).assert_ok();
    host.login("admin", &w.alice.code_in(2))
        .assert_failed()
        .assert_shows("admin is not reserved on web01")
        .assert_hides(PROMPT);
}

/// Scenario 7: An expired reservation: before the login starts (no prompt), and while the person is
/// typing the code (the server refuses the code).
#[test]
fn expired_reservation_is_denied() {
    let w = World::new();
    let host = Host::start(&w);
    reserve(&w.alice, "admin");
    w.server.sql(&format!(
        "UPDATE reservations SET expires_at = {} WHERE state = 'active'",
        now() - 1
    ));
    host.pamtester(SERVICE, "admin", &["authenticate"], "")
        .assert_failed()
        .assert_shows("admin is not reserved on web01")
        .assert_hides(PROMPT);

    // Expires after the prompt appeared: wait for the server's pending attempt, expire the
    // reservation, then type the code.
    reserve(&w.alice, "admin");
    let mut child = host
        .pam_command(SERVICE, "admin", &["authenticate"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pamtester");
    wait_for("the login attempt to start", PATIENCE, || {
        w.server
            .sql("SELECT count(*) FROM login_attempts WHERE state = 'pending'")
            == "1"
    });
    w.server.sql(&format!(
        "UPDATE reservations SET expires_at = {} WHERE state = 'active'",
        now() - 1
    ));
    let code = w.alice.next_code();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{code}\n").as_bytes())
        .expect("type code");
    let out = child.wait_with_output().expect("pamtester");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("The reservation of admin on web01 has expired"),
        "{text}"
    );
    let events = audit(&w.admin, "admin");
    assert!(
        events.iter().any(|e| e["action"] == "login.verify"
            && e["result"] == "denied"
            && e["reason"].as_str().unwrap_or("").starts_with("expired")),
        "{events:#?}"
    );
}

/// Scenario 8: A name that is not shared is untouched: pam_jit ignores it and the next module decides.
#[test]
fn non_shared_users_are_untouched() {
    let w = World::new();
    let host = Host::start(&w);
    host.service("permit-next", "pam_permit.so");
    for user in ["alice", "root", "nobody", "Not A Name"] {
        host.pamtester("permit-next", user, ALL_STAGES, "")
            .assert_ok()
            .assert_hides(PROMPT)
            .assert_hides("jit:")
            .assert_hides("shared account")
            .assert_hides("JIT_PERSON");
        // The standard service has pam_deny after pam_jit: it decides, and says no.
        host.pamtester(SERVICE, user, &["authenticate"], "")
            .assert_failed()
            .assert_hides(PROMPT);
    }
    // Nothing reached the server for them.
    let events = w.admin.json(&["audit"]);
    let logins: Vec<_> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["action"].as_str().unwrap_or("").starts_with("login."))
        .cloned()
        .collect();
    assert!(logins.is_empty(), "{logins:#?}");
}

/// A login that skipped the auth stack (an ssh public key) is refused in the account stage,
/// even with a live reservation, and the refusal reaches the audit log.
#[test]
fn account_stage_without_auth_is_denied() {
    let w = World::new();
    let host = Host::start(&w);
    reserve(&w.alice, "admin");
    host.pamtester(SERVICE, "admin", &["acct_mgmt"], "")
        .assert_failed()
        .assert_shows("admin is a shared account")
        .assert_shows("keyboard-interactive");
    wait_for_event(&w.admin, "admin", "account.denied", "denied", None);
    // The reservation is untouched: a real login still works.
    host.login("admin", &w.alice.next_code()).assert_ok();
}

/// sshd shows PAM messages only at a prompt: jitd sends the refusal as one.
#[test]
fn sshd_gets_the_refusal_as_a_prompt() {
    let w = World::new();
    let host = Host::start(&w);
    host.service("sshd", "pam_deny.so");
    host.pamtester("sshd", "admin", &["authenticate"], "\n")
        .assert_failed()
        .assert_shows("admin is not reserved on web01")
        .assert_shows("(press Enter)");
}

/// Every decision reaches syslog as authpriv, with person, account, host, service, rhost and
/// result, and never a code: jitd's real syslog output (libc's, to /dev/log), read from a socket
/// the test binds there inside jitd's private mount namespace.
#[test]
fn decisions_reach_syslog_authpriv_without_codes() {
    use std::os::unix::net::UnixDatagram;
    let w = World::new();
    let mut host = Host::joined(&w.join_token);
    let log_path = host.path().join("log.sock");
    let log = UnixDatagram::bind(&log_path).expect("bind the syslog socket");
    log.set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .expect("timeout");
    host.run_with_syslog(&log_path);

    let wrong = wrong_code(&w.alice);
    reserve(&w.alice, "admin");
    host.login("admin", &wrong).assert_failed();
    let code = w.alice.next_code();
    host.login("admin", &code).assert_ok();

    // authpriv (10) * 8 + severity: info 6 for a grant, notice 5 for a denial.
    let granted = "<86>";
    let denied = "<85>";
    let mut lines: Vec<String> = Vec::new();
    let has = |lines: &[String], pri: &str, fields: &str| {
        lines
            .iter()
            .any(|l| l.starts_with(pri) && l.contains("jitd[") && l.contains(fields))
    };
    let want_granted = "jit auth: account=admin person=alice host=web01 service=jit-test \
                        rhost=192.0.2.10 result=granted";
    let want_denied = "jit auth: account=admin person=- host=web01 service=jit-test \
                       rhost=192.0.2.10 result=denied";
    let mut buf = [0u8; 4096];
    wait_for("jitd's syslog lines", PATIENCE, || {
        while let Ok(n) = log.recv(&mut buf) {
            lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        has(&lines, granted, want_granted) && has(&lines, denied, want_denied)
    });
    for l in &lines {
        assert!(
            !l.contains(&code) && !l.contains(&wrong),
            "a code in syslog: {l}"
        );
    }
}
