//! Sessions through real logins: the real ssh client on a real terminal (tmux) against the real
//! sshd with the drop-in we ship, su and login on a terminal, jitd and the server. The holder is
//! told at login how long the reservation has left and warned on the session's terminal a
//! minute before the end; for an account with `--end-session-at-expiry` the session is ended
//! when the reservation runs out or is force-released, and kept by an extension; a session's
//! close still reaches the server after a jitd restart; and `MaxSessions 1` refuses a second
//! session multiplexed over one login's connection.
//!
//! Only the first test waits for a reservation to run out (the shortest is a minute); the other
//! timings are shown with a passed-in clock in jitd's own tests (session_control_tests.rs).

use std::time::Duration;

use jit_tests::host::{Host, PATIENCE, has_event, wait_for_event};
use jit_tests::sshd::tmux::Terminal;
use jit_tests::sshd::{
    CAROL, CAROL_PASSWORD, CODE_PROMPT, DropIn, Pam, Sshd, System, output_within,
};
use jit_tests::{Person, World, now, wait_for};

/// The fields drop in this order: sshd first, then the namespace's files, jitd, the server.
struct Site {
    sshd: Sshd,
    sys: System,
    host: Host,
    w: World,
}

/// A server whose `admin` ends sessions with their reservation (or not), a joined web01 with
/// Debian's PAM stack and our profile, and sshd with the drop-in (without its key requirement,
/// so the code alone logs in).
fn site(end_session_at_expiry: bool) -> Site {
    site_refreshing(end_session_at_expiry, None)
}

/// [`site`], with jitd's `refresh_interval` set to `refresh` (a TOML value).
fn site_refreshing(end_session_at_expiry: bool, refresh: Option<&str>) -> Site {
    let w = World::new();
    if end_session_at_expiry {
        w.admin
            .ok(&["account", "set", "admin", "--end-session-at-expiry"]);
    }
    let mut host = Host::joined(&w.join_token);
    if let Some(r) = refresh {
        host.set_config("refresh_interval", r);
    }
    host.run();
    let sys = System::new(&host, Pam::Profile);
    let sshd = Sshd::start(&sys, DropIn::CODE_ONLY, "");
    Site { sshd, sys, host, w }
}

/// `ssh admin@…` for a terminal: an interactive login shell; `extra` goes before the host.
fn ssh(sshd: &Sshd, extra: &str) -> String {
    format!(
        "ssh -F /dev/null -p {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
         -o PubkeyAuthentication=no -o PreferredAuthentications=keyboard-interactive \
         -o NumberOfPasswordPrompts=1 {extra} admin@127.0.0.1",
        sshd.port
    )
}

/// Logs in as `p` on `term` (at the code prompt) and waits for the shell.
fn log_in(term: &Terminal, p: &Person) {
    term.wait_for(CODE_PROMPT);
    term.type_secret(&p.next_code());
    term.type_line("echo READY-$JIT_PERSON");
    term.wait_for(&format!("READY-{}", p.name));
}

/// The file sshd keeps for the session (`ExposeAuthInfo`), as the session's environment names it.
fn auth_info_file(term: &Terminal) -> std::path::PathBuf {
    term.type_line("echo AUTHFILE=$SSH_USER_AUTH=END");
    let screen = term.wait_for("AUTHFILE=/");
    let at = screen.rfind("AUTHFILE=/").unwrap() + "AUTHFILE=".len();
    let path = screen[at..].split("=END").next().unwrap().to_owned();
    assert!(std::path::Path::new(&path).exists(), "{path}");
    path.into()
}

/// sshd finished the session as after a logout: it removed the session's file.
#[track_caller]
fn cleaned_up_by_sshd(file: &std::path::Path) {
    wait_for(
        &format!("sshd to remove {}", file.display()),
        PATIENCE,
        || !file.exists(),
    );
}

fn open_sessions(p: &jit_tests::Jitctl) -> Vec<serde_json::Value> {
    p.json(&["sessions"])["sessions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The newest session's record (closed ones too).
fn last_session(admin: &jit_tests::Jitctl) -> serde_json::Value {
    admin.json(&["sessions", "--all"])["sessions"][0].clone()
}

#[test]
fn at_expiry_the_session_is_warned_then_ended() {
    let s = site(true);
    s.w.alice
        .jitctl
        .ok(&["reserve", "admin", "--host", "web01", "--for", "1m"]);
    let term = Terminal::start(&s.sys, &ssh(&s.sshd, ""));
    log_in(&term, &s.w.alice);
    // At login, sshd shows the session stage's message after the login, as it shows a motd.
    let screen = term.screen();
    assert!(
        screen.contains("jit: your reservation of admin on web01 ends at")
            && screen.contains("this session will be ended then"),
        "{screen}"
    );
    // The reservation has less than a minute left: the terminal is warned at once.
    term.wait_for("jit: this session as admin on web01 will be ended in");
    let file = auth_info_file(&term);
    let open = open_sessions(&s.w.alice.jitctl);
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["end_session_at_expiry"], true);
    assert_eq!(open[0]["service"], "sshd");
    // The reservation runs out: the session ends, and says why.
    let screen = term.wait_for_within(
        "jit: the reservation of admin on web01 ran out; this session is being ended.",
        PATIENCE + Duration::from_secs(60),
    );
    assert!(screen.contains("READY-alice"), "{screen}");
    assert_ne!(term.exit_status(), 0, "{}", term.screen());
    cleaned_up_by_sshd(&file);
    wait_for_event(&s.w.admin, "admin", "session.ended", "ok", Some("alice"));
    let last = last_session(&s.w.admin);
    assert_eq!(last["ended"], "expired", "{last}");
    assert!(last["closed_at"].is_i64(), "{last}");
    assert!(open_sessions(&s.w.admin).is_empty());
}

#[test]
fn a_force_release_ends_the_session() {
    let s = site(true);
    s.w.alice
        .jitctl
        .ok(&["reserve", "admin", "--host", "web01", "--for", "10m"]);
    let term = Terminal::start(&s.sys, &ssh(&s.sshd, ""));
    log_in(&term, &s.w.alice);
    wait_for("the session to be listed", PATIENCE, || {
        open_sessions(&s.w.admin).len() == 1
    });
    let file = auth_info_file(&term);
    let out = s.w.admin.ok(&["release", "admin", "--host", "web01"]);
    assert!(
        out.contains("Released admin on web01 (held by alice)"),
        "{out}"
    );
    term.wait_for(
        "jit: the reservation of admin on web01 was force-released by admin; this session is \
         being ended.",
    );
    assert_ne!(term.exit_status(), 0, "{}", term.screen());
    cleaned_up_by_sshd(&file);
    wait_for_event(&s.w.admin, "admin", "session.ended", "ok", Some("alice"));
    assert_eq!(last_session(&s.w.admin)["ended"], "force_released");
    // The host's own log says how it was ended.
    let log = s.host.log();
    assert!(
        log.contains("was force-released by admin; ") && log.contains("were signalled"),
        "{log}"
    );
}

/// The server's watch carries a force-release to jitd at once: with jitd's own refresh at its
/// longest (30 s), the session still ends well before jitd would have asked on its own.
#[test]
fn with_the_watch_a_force_release_ends_the_session_before_the_next_refresh() {
    let s = site_refreshing(true, Some("\"30s\""));
    s.w.alice
        .jitctl
        .ok(&["reserve", "admin", "--host", "web01", "--for", "10m"]);
    let term = Terminal::start(&s.sys, &ssh(&s.sshd, ""));
    log_in(&term, &s.w.alice);
    wait_for("the session to be listed", PATIENCE, || {
        open_sessions(&s.w.admin).len() == 1
    });
    s.w.admin.ok(&["release", "admin", "--host", "web01"]);
    // Generous, yet below the 30 s refresh: only the watch can explain it (the target is 5 s).
    term.wait_for_within(
        "jit: the reservation of admin on web01 was force-released by admin; this session is \
         being ended.",
        Duration::from_secs(20),
    );
    assert_ne!(term.exit_status(), 0, "{}", term.screen());
    wait_for_event(&s.w.admin, "admin", "session.ended", "ok", Some("alice"));
    assert_eq!(last_session(&s.w.admin)["ended"], "force_released");
}

#[test]
fn an_extension_keeps_the_session_open_past_the_old_end() {
    let s = site(true);
    s.w.alice
        .jitctl
        .ok(&["reserve", "admin", "--host", "web01", "--for", "10m"]);
    let term = Terminal::start(&s.sys, &ssh(&s.sshd, ""));
    log_in(&term, &s.w.alice);
    // The reservation is about to run out (moved there rather than waited for)…
    let old_end = now() + 8;
    s.w.server.sql(&format!(
        "UPDATE reservations SET expires_at = {old_end} WHERE state = 'consumed'"
    ));
    // …and alice extends it in time.
    let out = s.w.alice.jitctl.ok(&["extend", "admin", "--for", "10m"]);
    assert!(out.contains("Extended admin on web01"), "{out}");
    wait_for("the old end to pass", PATIENCE, || now() > old_end + 3);
    term.type_line("echo STILL-$JIT_PERSON");
    term.wait_for("STILL-alice");
    assert!(!has_event(&s.w.admin, "admin", "session.ended", "ok", None));
    let open = open_sessions(&s.w.alice.jitctl);
    assert_eq!(open.len(), 1, "{open:?}");
    assert!(
        open[0]["reservation_ends_at"].as_i64().unwrap() > old_end + 500,
        "{open:?}"
    );
    term.type_line("exit");
    assert_eq!(term.exit_status(), 0, "{}", term.screen());
}

#[test]
fn a_sessions_close_is_recorded_after_a_jitd_restart() {
    let mut s = site(false);
    s.w.alice
        .jitctl
        .ok(&["reserve", "admin", "--host", "web01", "--for", "10m"]);
    let term = Terminal::start(&s.sys, &ssh(&s.sshd, ""));
    log_in(&term, &s.w.alice);
    wait_for("the session to be listed", PATIENCE, || {
        open_sessions(&s.w.alice.jitctl).len() == 1
    });
    let file = auth_info_file(&term);
    assert!(s.host.stop().success());
    s.host.run();
    assert!(
        s.host
            .log()
            .contains("sessions opened before the restart are followed again"),
        "{}",
        s.host.log()
    );
    term.type_line("exit");
    assert_eq!(term.exit_status(), 0, "{}", term.screen());
    cleaned_up_by_sshd(&file);
    wait_for("the close to reach the server", PATIENCE, || {
        open_sessions(&s.w.alice.jitctl).is_empty()
    });
    let last = last_session(&s.w.alice.jitctl);
    assert!(last["closed_at"].is_i64(), "{last}");
    assert!(last["ended"].is_null(), "closed by its login: {last}");
    wait_for_event(&s.w.admin, "admin", "session.close", "ok", Some("alice"));
}

/// One consumption, one session: over the connection of a login to a shared account (the
/// ssh client's ControlMaster), a second session is refused by `MaxSessions 1`; an ordinary
/// user multiplexes as before.
#[test]
fn max_sessions_1_refuses_a_second_session_over_a_shared_accounts_connection() {
    let s = site(false);
    let dir = tempfile::Builder::new()
        .prefix("jit-mux-")
        .tempdir()
        .expect("tempdir");
    let mux = |user: &str, ctl: &std::path::Path| {
        let mut cmd = std::process::Command::new("ssh");
        cmd.args(["-F", "/dev/null", "-p", &s.sshd.port.to_string()])
            .args(["-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null"])
            .arg("-S")
            .arg(ctl)
            .arg(format!("{user}@127.0.0.1"))
            .args(["echo", "SECOND"])
            .env("LC_ALL", "C")
            .stdin(std::process::Stdio::null());
        output_within(cmd, PATIENCE)
    };

    s.w.alice
        .jitctl
        .ok(&["reserve", "admin", "--host", "web01", "--for", "10m"]);
    let ctl = dir.path().join("admin.ctl");
    let master = format!("-M -S {} -o ControlPersist=no", ctl.display());
    let term = Terminal::start(&s.sys, &ssh(&s.sshd, &master));
    log_in(&term, &s.w.alice);
    let out = mux("admin", &ctl);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(255), "{text}");
    assert!(text.contains("Session open refused by peer"), "{text}");
    assert!(!text.contains("SECOND"), "{text}");
    // The first session is untouched.
    term.type_line("echo FIRST-$JIT_PERSON");
    term.wait_for("FIRST-alice");
    term.type_line("exit");
    assert_eq!(term.exit_status(), 0, "{}", term.screen());

    // carol is not a shared account: the drop-in leaves her sshd's default (10 sessions).
    let ctl = dir.path().join("carol.ctl");
    let term = Terminal::start(
        &s.sys,
        &format!(
            "ssh -F /dev/null -p {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
             -o PubkeyAuthentication=no -M -S {} -o ControlPersist=no {CAROL}@127.0.0.1",
            s.sshd.port,
            ctl.display()
        ),
    );
    term.wait_for("password:");
    term.type_secret(CAROL_PASSWORD);
    term.type_line("echo READY-$USER");
    term.wait_for("READY-carol");
    let out = mux(CAROL, &ctl);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("SECOND"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    term.type_line("exit");
    assert_eq!(term.exit_status(), 0, "{}", term.screen());
}

/// su and a console login show the time left right after the code, on their own terminal.
#[test]
fn su_and_console_logins_show_the_time_left() {
    let s = site(true);
    for (p, command) in [
        (
            &s.w.alice,
            "setpriv --reuid=1500 --regid=1500 --init-groups su - admin",
        ),
        (&s.w.bob, "login admin"),
    ] {
        p.jitctl
            .ok(&["reserve", "admin", "--host", "web01", "--for", "10m"]);
        let term = Terminal::start(&s.sys, command);
        log_in(&term, p);
        let screen = term.screen();
        assert!(
            screen.contains("jit: your reservation of admin on web01 ends at")
                && screen.contains(" UTC (in ")
                && screen.contains("jitctl extend admin --host web01 --for 10m"),
            "{command}: {screen}"
        );
        term.type_line("exit");
        assert_eq!(term.exit_status(), 0, "{}", term.screen());
        // The next login needs a new reservation: this one was used.
        wait_for("the session to close", PATIENCE, || {
            open_sessions(&s.w.admin).is_empty()
        });
        s.w.admin.ok(&["release", "admin", "--host", "web01"]);
    }
}
