//! Wrong codes at a real `su` hold back the local user who typed them, not the holder: another
//! user's guesses at `su - admin` (through real libpam and pam_jit) never stop the holder's next
//! code, and the server counts them against that user's uid as jitd read it from the kernel.

use jit_tests::World;
use jit_tests::host::{Host, reserve};
use jit_tests::sshd::tmux::Terminal;
use jit_tests::sshd::{Pam, System};

/// carol (uid 1500), an ordinary user, runs `su - admin`: su is setuid root, so jitd sees a root
/// client and must read carol's uid from the process itself.
const SU_ADMIN: &str = "setpriv --reuid=1500 --regid=1500 --init-groups su - admin";

#[test]
fn another_users_wrong_codes_at_su_do_not_stop_the_holder() {
    let w = World::new();
    let host = Host::start(&w);
    let sys = System::new(&host, Pam::Profile);
    reserve(&w.alice, "admin");
    let right = w.alice.code();
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };

    // carol tries five times: three wrong codes are looked at, then she must wait.
    for i in 1..=5 {
        let term = Terminal::start(&sys, SU_ADMIN);
        if i <= 3 {
            term.wait_for("Verification code: ");
            term.type_secret(wrong);
        }
        assert_eq!(term.exit_status(), 1, "{}", term.screen());
        let screen = term.screen();
        assert!(screen.contains("su: Authentication failure"), "{screen}");
        if i >= 3 {
            assert!(
                screen.contains("Too many wrong codes from here"),
                "try {i}:\n{screen}"
            );
        }
        if i > 3 {
            assert!(screen.contains("(uid:1500) on web01"), "try {i}:\n{screen}");
            assert!(!screen.contains("Verification code"), "try {i}:\n{screen}");
        }
        assert!(!screen.contains("alice"), "{screen}");
    }

    // alice, at the console, gets in with her code at once.
    let term = Terminal::start(&sys, "login admin");
    term.wait_for("Verification code: ");
    term.type_secret(&w.alice.next_code());
    term.wait_for("admin@");
    term.type_line("echo JIT_PERSON=$JIT_PERSON; exit");
    assert_eq!(term.exit_status(), 0, "{}", term.screen());
    assert!(
        term.screen().contains("JIT_PERSON=alice"),
        "{}",
        term.screen()
    );

    // The audit says who guessed (carol's uid, from the kernel, not what su said), and nobody
    // was locked out.
    let audit = w.admin.json(&["audit", "--person", "alice"]);
    let events = audit["events"].as_array().unwrap();
    let wrong_from: Vec<_> = events
        .iter()
        .filter(|e| e["action"] == "login.verify" && e["result"] == "denied")
        .map(|e| e["detail"]["origin"]["source"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(wrong_from, ["uid:1500"; 3], "{audit}");
    let granted: Vec<_> = events
        .iter()
        .filter(|e| e["action"] == "login.verify" && e["result"] == "ok")
        .map(|e| e["detail"]["origin"]["source"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(granted.len(), 1, "{audit}");
    assert!(granted[0].starts_with("tty:"), "{audit}");
    assert!(
        !events.iter().any(|e| e["action"] == "person.lockout"),
        "{audit}"
    );
}
