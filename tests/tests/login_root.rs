//! Issue 4, scenario 4: `root`, a shared account that already exists in /etc/passwd with a local
//! password, behaves like the virtual `admin`: its password alone never gets in (over ssh, with
//! either method, or with su), the holder's code does.

use jit_tests::World;
use jit_tests::host::{Host, reserve};
use jit_tests::sshd::system::share_root;
use jit_tests::sshd::tmux::Terminal;
use jit_tests::sshd::{
    CODE_PROMPT, DropIn, PRESS_ENTER, Pam, ROOT_PASSWORD, Sshd, System, register_key,
};

/// Tries root's correct local password with both methods, answering every prompt with it
/// (with the password method sshd itself hands the password to every PAM prompt).
fn password_alone_is_refused(sshd: &Sshd) {
    for method in ["password", "keyboard-interactive"] {
        sshd.client("root")
            .methods(method)
            .answer("[Pp]assword: ", ROOT_PASSWORD)
            .answer(CODE_PROMPT, ROOT_PASSWORD)
            .answer(PRESS_ENTER, ROOT_PASSWORD)
            .run("id")
            .assert_code(255)
            .assert_hides("uid=0")
            .assert_shows("Permission denied");
    }
    sshd.wait_log("Failed password for root from 127.0.0.1");
    sshd.wait_log("Failed keyboard-interactive/pam for root from 127.0.0.1");
}

#[test]
fn root_needs_a_reservation_and_the_code_and_its_password_is_useless() {
    let w = World::new();
    let host = Host::start(&w);
    share_root(&w, &host);
    let sys = System::new(&host, Pam::Profile);
    // Let sshd itself allow everything a password could use, for root too (no drop-in), so
    // that only PAM stands between root's password and a shell.
    let sshd = Sshd::start(
        &sys,
        DropIn::Absent,
        "PermitRootLogin yes\nPasswordAuthentication yes\nKbdInteractiveAuthentication yes",
    );
    // Without a reservation; the person trying keyboard-interactive is told what to do.
    sshd.client("root")
        .answer(PRESS_ENTER, "")
        .run("id")
        .assert_code(255)
        .assert_shows("root is not reserved on web01. Reserve it first: jitctl reserve root");
    password_alone_is_refused(&sshd);

    // With a reservation: the password, given as the code, is a wrong code; the reservation
    // stays usable for the holder's real code.
    reserve(&w.alice, "root");
    password_alone_is_refused(&sshd);
    sshd.client("root")
        .answer(CODE_PROMPT, &w.alice.next_code())
        .run("id; echo JIT_PERSON=$JIT_PERSON")
        .assert_code(0)
        .assert_shows("uid=0(root) gid=0(root)")
        .assert_shows("JIT_PERSON=alice");
    sshd.wait_log("Accepted keyboard-interactive/pam for root from 127.0.0.1");

    // The drop-in as shipped, unedited: root is in jit-guarded while it is a shared account, so
    // sshd offers root a key first, never a password (even with `PasswordAuthentication yes` in
    // sshd_config); with a key its holder registered, root's code logs in.
    let shipped = Sshd::start(&sys, DropIn::SHIPPED, "PasswordAuthentication yes");
    for method in ["password", "keyboard-interactive"] {
        shipped
            .client("root")
            .methods(method)
            .answer("[Pp]assword: ", ROOT_PASSWORD)
            .run("id")
            .assert_code(255)
            .assert_shows("Permission denied (publickey).")
            .assert_hides("uid=");
    }
    // Bob this time: each person's code is used once per test, so nobody waits for a new step.
    reserve(&w.bob, "root");
    let key = shipped.new_key("bob");
    register_key(&w.bob, &key, &host);
    shipped
        .client("root")
        .methods("publickey,keyboard-interactive")
        .key(&key)
        .answer(CODE_PROMPT, &w.bob.next_code())
        .run("id -un; echo JIT_PERSON=$JIT_PERSON")
        .assert_code(0)
        .assert_shows("root")
        .assert_shows("JIT_PERSON=bob");
    shipped.wait_log("Accepted keyboard-interactive/pam for root from 127.0.0.1");

    // su from an ordinary user: jit asks for a code, never for root's password.
    let term = Terminal::start(&sys, "setpriv --reuid=1500 --regid=1500 --init-groups su -");
    assert_eq!(term.exit_status(), 1, "{}", term.screen());
    let screen = term.screen();
    assert!(
        screen.contains("root is not reserved on web01. Reserve it first"),
        "{screen}"
    );
    assert!(screen.contains("su: Authentication failure"), "{screen}");
    assert!(!screen.contains("Password"), "{screen}");
}
