//! The manual stacks of packaging/pam/examples/ (sshd, su, login), installed verbatim as the
//! service files on a machine whose common-* files know nothing of jit: the same behaviour as
//! the pam-auth-update profile, for sites that write their stacks by hand.

use jit_tests::World;
use jit_tests::host::{Host, reserve};
use jit_tests::sshd::system::person;
use jit_tests::sshd::tmux::Terminal;
use jit_tests::sshd::{
    CAROL, CAROL_PASSWORD, CODE_PROMPT, DropIn, Pam, Sshd, System, register_key,
};

#[test]
fn the_example_stacks_work_as_written() {
    let w = World::new();
    let host = Host::start(&w);
    let sys = System::new(&host, Pam::Examples);
    let common = std::fs::read_to_string(sys.pam_d().join("common-auth")).expect("common-auth");
    assert!(!common.contains("pam_jit"), "the examples must stand alone");
    let carl = person(&w, "carl");

    // sshd: keyboard-interactive with the code; a key alone is refused; carol is untouched.
    let sshd = Sshd::start(&sys, DropIn::CODE_ONLY, "");
    reserve(&w.alice, "admin");
    let key = sshd.new_key("alice");
    register_key(&w.alice, &key, &host);
    sshd.client("admin")
        .methods("publickey")
        .key(&key)
        .run("id")
        .assert_code(255)
        .assert_shows("admin is a shared account");
    sshd.client("admin")
        .answer(CODE_PROMPT, &w.alice.next_code())
        .run("id; echo JIT_PERSON=$JIT_PERSON; stat -c home=%u:%g:%a $HOME")
        .assert_code(0)
        .assert_shows("uid=60001(admin)")
        .assert_shows("JIT_PERSON=alice")
        .assert_shows("home=60001:60001:700");
    sshd.wait_log("Accepted keyboard-interactive/pam for admin");
    sshd.client(CAROL)
        .methods("password")
        .answer("[Pp]assword: ", CAROL_PASSWORD)
        .run("id -un")
        .assert_code(0)
        .assert_shows(CAROL)
        .assert_hides("Verification");

    // su - admin from carol, with bob's reservation and code.
    reserve(&w.bob, "admin");
    let term = Terminal::start(
        &sys,
        "setpriv --reuid=1500 --regid=1500 --init-groups su - admin",
    );
    term.wait_for("Verification code: ");
    term.type_secret(&w.bob.next_code());
    term.wait_for("admin@");
    term.type_line("echo JIT_PERSON=$JIT_PERSON; exit");
    assert_eq!(term.exit_status(), 0, "{}", term.screen());
    assert!(
        term.screen().contains("JIT_PERSON=bob"),
        "{}",
        term.screen()
    );

    // login admin on a terminal, with carl's reservation and code.
    reserve(&carl, "admin");
    let term = Terminal::start(&sys, "login admin");
    term.wait_for("Verification code: ");
    term.type_secret(&carl.next_code());
    term.wait_for("admin@");
    term.type_line("echo JIT_PERSON=$JIT_PERSON; exit");
    assert_eq!(term.exit_status(), 0, "{}", term.screen());
    assert!(
        term.screen().contains("JIT_PERSON=carl"),
        "{}",
        term.screen()
    );
}
