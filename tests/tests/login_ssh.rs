//! Issue 4, OpenSSH: the real sshd (Debian's, with its stock PAM service file and the common-*
//! files pam-auth-update generates from our profile, and our sshd_config drop-in) and the real
//! ssh client on a terminal. Each test has its own server, jitd, namespace and sshd.

use jit_tests::host::{Host, PATIENCE, audit, has_event, reserve, wait_for_event, wrong_code};
use jit_tests::sshd::{
    CAROL, CAROL_PASSWORD, CODE_PROMPT, DropIn, PRESS_ENTER, Pam, Sshd, System, register_key,
};
use jit_tests::{World, wait_for};

/// What a session prints about itself.
const WHO: &str = "id; echo JIT_PERSON=$JIT_PERSON; echo ticket=${PAM_JIT_TICKET:-none}";

/// Scenarios 1 and 9: keyboard-interactive with a live reservation and the holder's code; the
/// session runs as the virtual account, knows its person, and the home directory was created
/// at this first login with the right owner and mode. (The drop-in without its recommended
/// `AuthenticationMethods`, which would also want a key: see `public_key_needs_the_code_too`.)
#[test]
fn keyboard_interactive_with_a_reservation_and_the_code_logs_in() {
    let w = World::new();
    let host = Host::start(&w);
    let sys = System::new(&host, Pam::Profile);
    let sshd = Sshd::start(&sys, DropIn::CODE_ONLY, "");
    let home = sys.home().join("admin");
    assert!(!home.exists(), "no home before the first login");
    reserve(&w.alice, "admin");
    sshd.client("admin")
        .answer(CODE_PROMPT, &w.alice.next_code())
        .run(&format!("{WHO}; stat -c 'home=%u:%g:%a' $HOME; pwd"))
        .assert_code(0)
        .assert_shows("Verification code:")
        .assert_shows("uid=60001(admin) gid=60001(admin)")
        .assert_shows("JIT_PERSON=alice")
        // The ticket's copy in the PAM environment never reaches the session.
        .assert_shows("ticket=none")
        .assert_shows("home=60001:60001:700")
        .assert_shows("/home/admin");
    sshd.wait_log("Accepted keyboard-interactive/pam for admin from 127.0.0.1");
    wait_for_event(&w.admin, "admin", "session.open", "ok", Some("alice"));
    let meta = std::fs::metadata(&home).expect("home created");
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!((meta.uid(), meta.gid()), (60001, 60001));
    assert_eq!(meta.permissions().mode() & 0o7777, 0o700);
}

/// Scenarios 2 and 8: every refusal is visible in the real client (OpenSSH shows PAM messages
/// only at a prompt, bug 2876: jitd sends them to sshd as a prompt), says what to do, and sshd
/// logs the failure.
#[test]
fn refusals_tell_the_person_what_to_do() {
    let w = World::new();
    let host = Host::start(&w);
    let sys = System::new(&host, Pam::Profile);
    let sshd = Sshd::start(&sys, DropIn::CODE_ONLY, "");
    // No reservation: refused before any code is asked.
    sshd.client("admin")
        .answer(PRESS_ENTER, "")
        .answer(CODE_PROMPT, "000000")
        .run("id")
        .assert_code(255)
        .assert_shows(
            "admin is not reserved on web01. Reserve it first: jitctl reserve admin --host web01",
        )
        .assert_hides("Verification code")
        .assert_hides("uid=");
    sshd.wait_log("PAM: Authentication failure for admin from 127.0.0.1");

    // A wrong code: refused, the reservation stays usable.
    reserve(&w.alice, "admin");
    sshd.client("admin")
        .answer(CODE_PROMPT, &wrong_code(&w.alice))
        .answer(PRESS_ENTER, "")
        .run("id")
        .assert_code(255)
        .assert_shows("Verification code:")
        .assert_shows("The code is not valid for the current reservation of admin on web01")
        .assert_hides("uid=");

    // The right code: in; then the same reservation a second time: refused, it was used.
    sshd.client("admin")
        .answer(CODE_PROMPT, &w.alice.next_code())
        .run("id -un")
        .assert_code(0)
        .assert_shows("admin");
    sshd.client("admin")
        .answer(PRESS_ENTER, "")
        .answer(CODE_PROMPT, "000000")
        .run("id")
        .assert_code(255)
        .assert_shows("admin is not reserved on web01. Reserve it first")
        .assert_hides("uid=");
    assert!(has_event(&w.admin, "admin", "login.verify", "denied", None));
}

/// The keys of a shared account are the persons' keys registered on the jit server, which sshd
/// gets from `jitd authorized-keys` (the shipped drop-in, unedited): while nobody holds the
/// account, everyone's who may reserve it; then only the holder's. A key alone is never enough:
/// without `AuthenticationMethods` pam_jit refuses it in the account stage (the client is told
/// why, as a banner); with it, sshd wants the key and then the code. The audit names the key that
/// was used, and a key removed on the server stops working at jitd's next refresh.
#[test]
fn keys_come_from_the_server_and_only_the_holders_count() {
    let mut w = World::new();
    let host = Host::start(&w);
    let sys = System::new(&host, Pam::Profile);
    let bare = Sshd::start(&sys, DropIn::CODE_ONLY, "");
    let alice_key = bare.new_key("alice");
    let alice_fp = register_key(&w.alice, &alice_key, &host);
    let bob_key = bare.new_key("bob");
    register_key(&w.bob, &bob_key, &host);

    // Nobody holds admin: bob's key passes sshd, and the account stage refuses a key alone.
    bare.client("admin")
        .methods("publickey")
        .key(&bob_key)
        .run("id")
        .assert_code(255)
        .assert_shows("admin is a shared account: log in with keyboard-interactive authentication")
        .assert_hides("uid=");
    bare.wait_log("Access denied for user admin by PAM account configuration");
    wait_for_event(&w.admin, "admin", "account.denied", "denied", None);

    let sshd = Sshd::start(&sys, DropIn::SHIPPED, "");
    reserve(&w.alice, "admin");
    wait_for("jitd to learn that alice holds admin", PATIENCE, || {
        host.ssh_keys().contains("\"holder\": \"alice\"")
    });
    // Another person's key does not count while alice holds the account: no code is asked.
    sshd.client("admin")
        .methods("publickey,keyboard-interactive")
        .key(&bob_key)
        .answer(CODE_PROMPT, "000000")
        .run("id")
        .assert_code(255)
        .assert_shows("Permission denied (publickey)")
        .assert_hides("Verification code")
        .assert_hides("uid=");
    // The holder's key alone is a partial success.
    sshd.client("admin")
        .methods("publickey")
        .key(&alice_key)
        .run("id")
        .assert_code(255)
        .assert_hides("uid=");
    sshd.wait_log("Partial publickey for admin from 127.0.0.1");
    // The holder's key and code: in, and the audit names the key.
    sshd.client("admin")
        .methods("publickey,keyboard-interactive")
        .key(&alice_key)
        .answer(CODE_PROMPT, &w.alice.next_code())
        .run(WHO)
        .assert_code(0)
        .assert_shows("uid=60001(admin)")
        .assert_shows("JIT_PERSON=alice");
    sshd.wait_log("Accepted keyboard-interactive/pam for admin from 127.0.0.1");
    let events = audit(&w.admin, "admin");
    let login = events
        .iter()
        .find(|e| e["action"] == "login.verify" && e["result"] == "ok")
        .unwrap_or_else(|| panic!("no login in {events:#?}"));
    assert_eq!(
        login["detail"]["origin"]["ssh_key"],
        alice_fp.as_str(),
        "{login:#}"
    );
    assert_eq!(login["detail"]["ssh_key_owner"], "alice", "{login:#}");

    // alice removes her key on the server: at jitd's next refresh it no longer gets in (nobody
    // holds admin now, so any registered key of the group would).
    w.alice.jitctl.ok(&["key", "remove", &alice_fp]);
    let blob = std::fs::read_to_string(alice_key.with_extension("pub")).expect("public key");
    let blob = blob.split_whitespace().nth(1).expect("blob").to_owned();
    wait_for("jitd to drop the removed key", PATIENCE, || {
        !host.ssh_keys().contains(&blob)
    });
    sshd.client("admin")
        .methods("publickey")
        .key(&alice_key)
        .run("id")
        .assert_code(255)
        .assert_shows("Permission denied (publickey)")
        .assert_hides("uid=");

    // The server goes away: sshd still gets the keys, from jitd's copy.
    w.server.kill();
    let before = sshd.log().matches("Partial publickey for admin").count();
    sshd.client("admin")
        .methods("publickey")
        .key(&bob_key)
        .run("id")
        .assert_code(255)
        .assert_hides("uid=");
    wait_for("sshd to accept bob's key", PATIENCE, || {
        sshd.log().matches("Partial publickey for admin").count() > before
    });
}

/// Scenario 5: an ordinary local user logs in with her password exactly as before: no jit
/// prompt, no jit message. The drop-in changes nothing for her: keyboard-interactive stays off
/// as Debian's sshd_config has it, and on a host that turned passwords off
/// (`PasswordAuthentication no`, as many cloud images do) her password stays refused in either
/// form, while the shared account still gets its key-and-code login.
#[test]
fn ordinary_users_are_untouched() {
    let w = World::new();
    let host = Host::start(&w);
    let sys = System::new(&host, Pam::Profile);
    let sshd = Sshd::start(&sys, DropIn::SHIPPED, "");
    sshd.client(CAROL)
        .methods("password")
        .answer("[Pp]assword: ", CAROL_PASSWORD)
        .run("id -un; echo JIT_PERSON=${JIT_PERSON:-unset}")
        .assert_code(0)
        .assert_shows("carol\r\nJIT_PERSON=unset")
        .assert_hides("Verification")
        .assert_hides("jit");
    sshd.wait_log("Accepted password for carol");
    // Keyboard-interactive is not offered to her, as before jit.
    sshd.client(CAROL)
        .answer("[Pp]assword: ", CAROL_PASSWORD)
        .run("id")
        .assert_code(255)
        .assert_shows("Permission denied (publickey,password).")
        .assert_hides("uid=");
    // A wrong password is refused as before.
    sshd.client(CAROL)
        .methods("password")
        .answer("[Pp]assword: ", "not-her-password")
        .run("id")
        .assert_code(255)
        .assert_hides("jit");

    let no_passwords = Sshd::start(&sys, DropIn::SHIPPED, "PasswordAuthentication no");
    for method in ["keyboard-interactive", "password"] {
        no_passwords
            .client(CAROL)
            .methods(method)
            .answer("[Pp]assword: ", CAROL_PASSWORD)
            .run("id")
            .assert_code(255)
            .assert_shows("Permission denied (publickey).")
            .assert_hides("uid=");
    }
    reserve(&w.alice, "admin");
    let key = no_passwords.new_key("alice");
    register_key(&w.alice, &key, &host);
    no_passwords
        .client("admin")
        .methods("publickey,keyboard-interactive")
        .key(&key)
        .answer(CODE_PROMPT, &w.alice.next_code())
        .run("id -un")
        .assert_code(0)
        .assert_shows("admin");
}

/// Scenario 8 when jitd itself is down: pam_jit refuses the shared account from its cache and
/// the person sees why (OpenSSH 9.2 sends the messages still pending when keyboard-interactive
/// fails as the instruction of a last, prompt-less request); an ordinary user logs in as if
/// nothing happened.
#[test]
fn jitd_down_refuses_shared_accounts_visibly_and_nobody_else() {
    let w = World::new();
    let mut host = Host::start(&w);
    let sys = System::new(&host, Pam::Profile);
    let sshd = Sshd::start(&sys, DropIn::CODE_ONLY, "");
    reserve(&w.alice, "admin");
    host.kill();
    sshd.client("admin")
        .answer(PRESS_ENTER, "")
        .answer(CODE_PROMPT, &w.alice.next_code())
        .run("id")
        .assert_code(255)
        .assert_shows("jit: cannot reach jitd to check your reservation for admin; the login is refused. Ask an admin to check `systemctl status jitd`.")
        .assert_hides("Verification code")
        .assert_hides("uid=");
    sshd.client(CAROL)
        .methods("password")
        .answer("[Pp]assword: ", CAROL_PASSWORD)
        .run("id -un")
        .assert_code(0)
        .assert_shows(CAROL)
        .assert_hides("jit");
}

/// OpenSSH 9.2 also shows a refusal that jitd sends as a plain message (`deny_as_prompt = []`
/// in jitd.toml): the messages pending when keyboard-interactive fails arrive as the instruction
/// of a last, prompt-less request. So either setting keeps every refusal visible; the default
/// (sshd listed) only adds a "(press Enter)" step.
#[test]
fn refusals_are_visible_without_deny_as_prompt_too() {
    let w = World::new();
    let mut host = Host::joined(&w.join_token);
    let mut config = std::fs::read_to_string(host.config()).expect("jitd.toml");
    config.push_str("\n[services]\ndeny_as_prompt = []\n");
    std::fs::write(host.config(), config).expect("jitd.toml");
    host.run();
    let sys = System::new(&host, Pam::Profile);
    let sshd = Sshd::start(&sys, DropIn::CODE_ONLY, "");
    sshd.client("admin")
        .answer(CODE_PROMPT, "000000")
        .run("id")
        .assert_code(255)
        .assert_shows(
            "admin is not reserved on web01. Reserve it first: jitctl reserve admin --host web01",
        )
        .assert_hides("press Enter");
    reserve(&w.alice, "admin");
    sshd.client("admin")
        .answer(CODE_PROMPT, &wrong_code(&w.alice))
        .run("id")
        .assert_code(255)
        .assert_shows("The code is not valid for the current reservation of admin on web01")
        .assert_hides("press Enter");
}

/// A session opened before jitd restarts still closes with its person in the audit log: jitd
/// keeps the tickets of open sessions on disk, and the one of this session is accepted only from
/// sshd's monitor, the parent of the process that authenticated.
#[test]
fn a_session_closes_after_a_jitd_restart() {
    let w = World::new();
    let mut host = Host::start(&w);
    let sys = System::new(&host, Pam::Profile);
    let sshd = Sshd::start(&sys, DropIn::CODE_ONLY, "");
    reserve(&w.alice, "admin");
    let go = sys.home().join("admin/go");
    let code = w.alice.next_code();
    std::thread::scope(|s| {
        let session = s.spawn(|| {
            sshd.client("admin")
                .answer(CODE_PROMPT, &code)
                .run("while [ ! -e \"$HOME/go\" ]; do sleep 0.1; done; echo session-ends")
        });
        wait_for_event(&w.admin, "admin", "session.open", "ok", Some("alice"));
        host.kill();
        host.run();
        std::fs::write(&go, "").expect("tell the session to end");
        session
            .join()
            .expect("the client thread")
            .assert_code(0)
            .assert_shows("session-ends");
    });
    wait_for_event(&w.admin, "admin", "session.close", "ok", Some("alice"));
}
