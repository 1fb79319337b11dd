//! Issue 4, scenarios 7 and 4 (break-glass): `login` on a terminal (tmux), as on a console, with
//! Debian's stock /etc/pam.d/login and the common-* files generated from our profile.

use jit_tests::World;
use jit_tests::host::{Host, reserve};
use jit_tests::sshd::system::share_root;
use jit_tests::sshd::tmux::Terminal;
use jit_tests::sshd::{Pam, ROOT_PASSWORD, System, repo};

#[test]
fn console_login_to_a_shared_account_with_the_code() {
    let w = World::new();
    let host = Host::start(&w);
    let sys = System::new(&host, Pam::Profile);
    reserve(&w.alice, "admin");
    let term = Terminal::start(&sys, "login admin");
    term.wait_for("Verification code: ");
    term.type_secret(&w.alice.next_code());
    term.wait_for("admin@");
    term.type_line("id; echo JIT_PERSON=$JIT_PERSON; stat -c home=%u:%g:%a $HOME; exit");
    assert_eq!(term.exit_status(), 0, "{}", term.screen());
    let screen = term.screen();
    for needle in [
        "uid=60001(admin) gid=60001(admin)",
        "JIT_PERSON=alice",
        // pam_mkhomedir says so, and the home is the account's, 0700.
        "Creating directory '/home/admin'",
        "home=60001:60001:700",
    ] {
        assert!(screen.contains(needle), "no {needle:?} in:\n{screen}");
    }
}

/// The break-glass line docs/pam.md tells an admin to add to /etc/pam.d/login, read from the
/// login example so that the test, the example and the docs say the same.
fn break_glass_line() -> String {
    let example = std::fs::read_to_string(repo().join("packaging/pam/examples/login"))
        .expect("packaging/pam/examples/login");
    let line = example
        .lines()
        .find(|l| l.starts_with("auth") && l.contains("pam_jit.so"))
        .expect("a pam_jit auth line in the login example");
    format!("{line} local_password")
}

/// root is shared and nobody reserved it. The stock console login refuses root's password
/// (jit asks first and refuses); with the documented break-glass line, jit's refusal is shown,
/// then root's local password gets in, without a jit session.
#[test]
fn console_break_glass_takes_the_local_password_only_when_opted_in() {
    let w = World::new();
    let host = Host::start(&w);
    share_root(&w, &host);
    let sys = System::new(&host, Pam::Profile);

    let term = Terminal::start(&sys, "login root");
    term.wait_for("Login incorrect");
    let screen = term.screen();
    assert!(
        screen.contains("root is not reserved on web01. Reserve it first"),
        "{screen}"
    );
    assert!(!screen.contains("Password"), "never asked: {screen}");
    drop(term);

    sys.insert_pam_line("login", "@include common-auth", &break_glass_line());
    let term = Terminal::start(&sys, "login root");
    term.wait_for("Password: ");
    term.type_secret(ROOT_PASSWORD);
    term.wait_for("root@");
    term.type_line("id -un; echo JIT_PERSON=${JIT_PERSON:-unset}; exit");
    assert_eq!(term.exit_status(), 0, "{}", term.screen());
    let screen = term.screen();
    for needle in [
        "root is not reserved on web01. Reserve it first",
        "jit: break-glass: the local password of root is accepted instead",
        "root\nJIT_PERSON=unset",
    ] {
        assert!(screen.contains(needle), "no {needle:?} in:\n{screen}");
    }
    // Still no way in for a wrong password.
    let term = Terminal::start(&sys, "login root");
    term.wait_for("Password: ");
    term.type_secret("not-the-root-password");
    term.wait_for("Login incorrect");
}
