//! Push approval through real logins: the real ssh client against the real sshd, and `su` on a
//! real terminal (tmux), each approved from another process with `jitctl approve` by the number
//! the prompt shows. A wrong number is refused; no answer ends after jitd's `push_wait` and
//! leaves the reservation unused; at a local terminal the prompt draws the approval page's
//! address as a QR code.

use jit_tests::World;
use jit_tests::host::{Host, reserve};
use jit_tests::sshd::tmux::Terminal;
use jit_tests::sshd::{DropIn, Pam, Sshd, System};

/// carol (uid 1500), an ordinary user, runs `su - admin`.
const SU_ADMIN: &str = "setpriv --reuid=1500 --regid=1500 --init-groups su - admin";
const PUSH_PROMPT: &str = "Approve login ";

/// The number the prompt on `screen` shows (the last one).
fn number_on(screen: &str) -> String {
    let at = screen.rfind(PUSH_PROMPT).expect("a push prompt") + PUSH_PROMPT.len();
    let n: String = screen[at..].chars().take(2).collect();
    assert!(
        n.len() == 2 && n.chars().all(|c| c.is_ascii_digit()),
        "no number after the prompt: {screen}"
    );
    n
}

/// Lets the next login send a push again (the server allows one a minute per account).
fn a_minute_later(w: &World) {
    w.server
        .sql("UPDATE push_challenges SET created_at = created_at - 61");
}

fn ssh(sshd: &Sshd, command: &str) -> String {
    format!(
        "ssh -F /dev/null -p {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
         -o PubkeyAuthentication=no -o PreferredAuthentications=keyboard-interactive \
         -o NumberOfPasswordPrompts=1 admin@127.0.0.1 '{command}'",
        sshd.port
    )
}

fn reservation_state(w: &World) -> String {
    let v = w.alice.jitctl.json(&["status", "--all"]);
    v["reservations"][0]["state"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[test]
fn ssh_waits_for_the_number_typed_in_jitctl_approve_and_a_wrong_number_is_refused() {
    let w = World::new();
    w.alice.jitctl.ok(&["factor", "add", "push"]);
    let host = Host::start(&w);
    let sys = System::new(&host, Pam::Profile);
    let sshd = Sshd::start(&sys, DropIn::CODE_ONLY, "");
    reserve(&w.alice, "admin");

    let term = Terminal::start(&sys, &ssh(&sshd, "id; echo JIT_PERSON=$JIT_PERSON"));
    let screen = term.wait_for(PUSH_PROMPT);
    assert!(
        screen.contains("on your phone, then press Enter (or type a code):"),
        "{screen}"
    );
    assert!(!screen.contains("Scan"), "no QR code over ssh: {screen}");
    let number = number_on(&screen);
    // Enter: the login waits; then alice, elsewhere, types the number.
    term.type_secret("");
    let listed = w.alice.jitctl.ok(&["approve", "--list"]);
    assert!(
        listed.contains("web01") && listed.contains("127.0.0.1"),
        "{listed}"
    );
    let out = w.alice.jitctl.ok(&["approve", "--number", &number]);
    assert!(out.contains("Approved"), "{out}");
    let screen = term.wait_for("JIT_PERSON=alice");
    assert!(screen.contains("uid=60001(admin)"), "{screen}");
    assert_eq!(term.exit_status(), 0, "{}", term.screen());
    drop(term);
    sshd.wait_log("Accepted keyboard-interactive/pam for admin from 127.0.0.1");

    // A wrong number: the login is refused (said at the prompt), the reservation stays.
    reserve(&w.alice, "admin");
    a_minute_later(&w);
    let term = Terminal::start(&sys, &ssh(&sshd, "id"));
    let number: u8 = number_on(&term.wait_for(PUSH_PROMPT)).parse().unwrap();
    term.type_secret("");
    let wrong = if number == 99 { 98 } else { number + 1 };
    let err = w
        .alice
        .jitctl
        .fails(3, &["approve", "--number", &wrong.to_string()]);
    assert!(err.contains("not the number"), "{err}");
    term.wait_for("A wrong number was typed on the approval page");
    term.type_line("");
    assert_eq!(term.exit_status(), 255, "{}", term.screen());
    assert!(!term.screen().contains("uid=60001"));
    assert_eq!(reservation_state(&w), "active");
}

#[test]
fn su_at_a_terminal_shows_a_qr_code_and_no_answer_leaves_the_reservation_unused() {
    let w = World::new();
    w.alice.jitctl.ok(&["factor", "add", "push"]);
    let mut host = Host::start(&w);
    // A short wait, so the test does not sit out the default minute.
    host.kill();
    let mut config = std::fs::read_to_string(host.config()).unwrap();
    config.push_str("push_wait = \"5s\"\n");
    std::fs::write(host.config(), config).unwrap();
    host.run();
    let sys = System::new(&host, Pam::Profile);
    reserve(&w.alice, "admin");

    let term = Terminal::start(&sys, SU_ADMIN);
    let screen = term.wait_for(PUSH_PROMPT);
    assert!(
        screen.contains("Scan to open the approval page: https://"),
        "{screen}"
    );
    let blocks = screen
        .lines()
        .filter(|l| l.contains('█') || l.contains('▀') || l.contains('▄'))
        .count();
    assert!(blocks >= 10, "a QR code of block characters:\n{screen}");
    let number = number_on(&screen);
    term.type_secret("");
    w.alice.jitctl.ok(&["approve", "--number", &number]);
    term.wait_for("admin@");
    term.type_line("echo JIT_PERSON=$JIT_PERSON; exit");
    assert_eq!(term.exit_status(), 0, "{}", term.screen());
    assert!(term.screen().contains("JIT_PERSON=alice"));
    drop(term);

    // Nobody answers: after push_wait the login is refused and the reservation is unused.
    reserve(&w.alice, "admin");
    a_minute_later(&w);
    let term = Terminal::start(&sys, SU_ADMIN);
    term.wait_for(PUSH_PROMPT);
    term.type_secret("");
    term.wait_for("Nobody approved this login within 5s");
    assert_eq!(term.exit_status(), 1, "{}", term.screen());
    assert!(term.screen().contains("su: Authentication failure"));
    assert_eq!(reservation_state(&w), "active");
}
