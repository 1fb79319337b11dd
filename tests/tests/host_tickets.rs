//! Tickets between PAM stages, with real libpam (pamtester), the real jitd and server: the
//! ticket is an opaque handle in the PAM environment, each stage accepts it once, only the
//! process that authenticated may present it, and it reaches no log. (Its two-minute window is
//! shown by jitd's unit tests with a passed-in clock; the close after a jitd restart with the real
//! sshd in login_ssh.rs.)

use jit_proto::pam::{PROTOCOL_VERSION, Ticket};
use jit_tests::host::{Host, PROMPT, assert_code_not_logged, reserve};
use jit_tests::{World, wait_for};

/// Sends each JSON argument as a frame on the PAM socket and prints each reply.
const PRESENTER: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(60)
s.connect(sys.argv[1])
def read(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise SystemExit("closed")
        b += c
    return b
for msg in sys.argv[2:]:
    m = msg.encode()
    s.sendall(struct.pack(">I", len(m)) + m)
    (n,) = struct.unpack(">I", read(4))
    print(read(n).decode())
"#;

/// A stack that prints the PAM environment after the account stage: what sshd's conversation
/// child hands back to its monitor.
fn show_ticket_service(host: &Host) {
    let m = host.pam_jit();
    let text = format!(
        "auth [success=done ignore=ignore default=die] {m}\n\
         auth required pam_deny.so\n\
         account [success=ok ignore=ignore default=die] {m}\n\
         account optional pam_exec.so stdout /usr/bin/env\n\
         session [success=ok ignore=ignore default=die] {m}\n"
    );
    std::fs::write(host.path().join("pam.d/show-ticket"), text).expect("service");
}

#[test]
fn a_ticket_is_an_opaque_handle_used_once_per_stage_by_its_own_process() {
    let w = World::new();
    let host = Host::start(&w);
    show_ticket_service(&host);
    reserve(&w.alice, "admin");
    // The account stage twice in the same transaction: the second is refused.
    let run = host.pamtester(
        "show-ticket",
        "admin",
        &["authenticate", "acct_mgmt", "acct_mgmt"],
        &format!("{}\n", w.alice.next_code()),
    );
    run.assert_failed()
        .assert_shows(PROMPT)
        .assert_shows("admin is a shared account: log in with keyboard-interactive");
    let text = run.text();
    let handle = text
        .lines()
        .find_map(|l| l.strip_prefix("PAM_JIT_TICKET="))
        .unwrap_or_else(|| panic!("no ticket in the PAM environment:\n{text}"))
        .trim()
        .to_owned();
    assert!(
        Ticket::parse(&handle).is_some() && !handle.contains("alice"),
        "not an opaque handle: {handle:?}"
    );
    wait_for(
        "jitd to log the second account stage",
        jit_tests::host::PATIENCE,
        || host.log().contains("already used for this stage"),
    );

    // Another root process (neither pamtester nor its parent, this test) presents the same
    // ticket for a session: refused.
    let ctx = serde_json::json!({
        "account": "admin", "service": "show-ticket",
        "rhost": "192.0.2.10", "tty": "ssh", "uid": 60001
    });
    let hello = serde_json::json!({"type": "hello", "version": PROTOCOL_VERSION});
    let open = serde_json::json!({"type": "session_open", "ctx": ctx, "ticket": handle});
    let out = std::process::Command::new("python3")
        .args(["-c", PRESENTER])
        .arg(host.socket())
        .arg(hello.to_string())
        .arg(open.to_string())
        .output()
        .expect("python3");
    let replies: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("reply"))
        .collect();
    assert_eq!(replies.len(), 2, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(replies[0]["step"], "hello", "{replies:?}");
    assert_eq!(replies[1]["step"], "denied", "{replies:?}");
    wait_for("jitd to log the refusal", jit_tests::host::PATIENCE, || {
        host.log()
            .contains("presented by a process other than the one that authenticated")
    });
    // The handle is in no log, jitd's or the server's.
    assert_code_not_logged(&host.log(), &handle, "jitd");
    assert_code_not_logged(&w.server.log(), &handle, "the server");
}
