//! Issue 4, scenario 6: `su - admin` from an ordinary user on a real terminal (tmux), with
//! Debian's stock /etc/pam.d/su and the common-* files generated from our profile.

use jit_tests::World;
use jit_tests::host::{Host, reserve};
use jit_tests::sshd::tmux::Terminal;
use jit_tests::sshd::{Pam, System};

/// carol (uid 1500), an ordinary user, runs `su - admin`.
const SU_ADMIN: &str = "setpriv --reuid=1500 --regid=1500 --init-groups su - admin";

#[test]
fn su_to_a_shared_account_asks_for_the_holders_code() {
    let w = World::new();
    let host = Host::start(&w);
    let sys = System::new(&host, Pam::Profile);

    // Without a reservation: refused, with the reason and what to do, and no password prompt.
    let term = Terminal::start(&sys, SU_ADMIN);
    assert_eq!(term.exit_status(), 1, "{}", term.screen());
    let screen = term.screen();
    for needle in [
        "admin is not reserved on web01. Reserve it first: jitctl reserve admin --host web01",
        "su: Authentication failure",
    ] {
        assert!(screen.contains(needle), "no {needle:?} in:\n{screen}");
    }
    assert!(!screen.contains("Password"), "{screen}");
    drop(term);

    // With a reservation: the holder's code, then a shell as admin that knows its person.
    reserve(&w.alice, "admin");
    let term = Terminal::start(&sys, SU_ADMIN);
    term.wait_for("Verification code: ");
    term.type_secret(&w.alice.next_code());
    term.wait_for("admin@");
    term.type_line("id; echo JIT_PERSON=$JIT_PERSON; echo ticket=${PAM_JIT_TICKET:-none}; exit");
    assert_eq!(term.exit_status(), 0, "{}", term.screen());
    let screen = term.screen();
    for needle in [
        "uid=60001(admin) gid=60001(admin)",
        "JIT_PERSON=alice",
        "ticket=none",
    ] {
        assert!(screen.contains(needle), "no {needle:?} in:\n{screen}");
    }
    // pam_mkhomedir made the home at this first login.
    assert!(sys.home().join("admin/.profile").exists());
}
