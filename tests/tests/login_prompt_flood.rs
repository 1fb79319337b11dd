//! Prompts cannot be hoarded: one ordinary user leaves 100 `su - admin` prompts open (real su,
//! setuid root, through real libpam and pam_jit), and the holder's login, root's login and a
//! user's own login at the console all still go through. Every prompt is ended at the end.

use std::os::unix::process::CommandExt;
use std::path::Path;

use jit_tests::World;
use jit_tests::host::{Host, PATIENCE, reserve};
use jit_tests::sshd::tmux::Terminal;
use jit_tests::sshd::{CAROL_PASSWORD, Pam, ROOT_PASSWORD, System};

const FLOOD: usize = 100;

/// Files in `dir` whose name ends with `ext` and whose text contains `needle`.
fn count(dir: &Path, ext: &str, needle: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(ext))
        .filter(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .contains(needle)
        })
        .count()
}

/// The flood's process group: ended with it, also when an assertion fails midway.
struct Flood(Option<std::process::Child>);

impl Flood {
    /// Ends every process of the group (su, its sleep, the shells) and reaps the leader, once.
    fn end(&mut self) {
        if let Some(mut leader) = self.0.take() {
            // SAFETY: kill has no memory preconditions; the group is the one this test
            // spawned, and its leader is not reaped yet, so the id is still the group's.
            unsafe { libc::kill(-(leader.id() as i32), libc::SIGKILL) };
            let _ = leader.wait();
        }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.end();
    }
}

/// Processes whose real uid is `uid` (`pgrep -U`).
fn processes_of(uid: u32) -> String {
    let out = std::process::Command::new("pgrep")
        .args(["-a", "-U", &uid.to_string()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_hundred_open_su_prompts_from_one_user_block_nobody_else() {
    let w = World::new();
    let mut host = Host::joined(&w.join_token);
    // Prompts left open stay open for the whole test: nothing here depends on them timing out.
    let cfg = std::fs::read_to_string(host.config()).unwrap();
    std::fs::write(host.config(), format!("{cfg}answer_timeout = \"10m\"\n")).unwrap();
    host.run();
    let sys = System::new(&host, Pam::Profile);
    reserve(&w.alice, "admin");
    assert!(processes_of(1500).is_empty(), "{}", processes_of(1500));

    // carol (uid 1500) starts 100 `su - admin` and never answers: each su's stdin is a pipe
    // nobody writes to. Each writes what it showed, and its exit status once it ends.
    let out = tempfile::Builder::new()
        .prefix("jit-flood-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(
        out.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let d = out.path().display();
    let script = format!(
        "for i in $(seq {FLOOD}); do \
           ( setpriv --reuid=1500 --regid=1500 --init-groups su - admin \
               < <(exec sleep 3600) > {d}/$i.out 2>&1; echo $? > {d}/$i.rc ) & \
         done; wait"
    );
    let mut flood = sys.command(&["bash", "-c", &script]);
    flood.process_group(0);
    let mut flood = Flood(Some(flood.spawn().unwrap()));

    // Four of them get a prompt and wait; jitd refuses the other 96 at once.
    jit_tests::wait_for("the flood to settle", PATIENCE, || {
        count(out.path(), ".rc", "1") == FLOOD - 4
            && count(out.path(), ".out", "Verification code") == 4
    });
    assert_eq!(count(out.path(), ".rc", ""), FLOOD - 4);
    assert!(
        host.log()
            .contains("too many logins waiting from uid:1500 (4 at once)"),
        "{}",
        host.log()
    );

    // The holder, at the console.
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
    drop(term);
    // root, and carol herself, at the console with their passwords.
    for (user, password, shell) in [
        ("root", ROOT_PASSWORD, "root@"),
        ("carol", CAROL_PASSWORD, "carol@"),
    ] {
        let term = Terminal::start(&sys, &format!("login {user}"));
        term.wait_for("Password: ");
        term.type_secret(password);
        term.wait_for(shell);
        term.type_line("id -un; exit");
        assert_eq!(term.exit_status(), 0, "{user}: {}", term.screen());
        assert!(
            term.screen().contains(&format!("{user}\n")),
            "{}",
            term.screen()
        );
    }

    // The four prompts were waiting all along.
    assert_eq!(count(out.path(), ".rc", ""), FLOOD - 4);
    // End every one of them: the whole process group (su, its sleep, the shells).
    flood.end();
    jit_tests::wait_for("carol's su processes to end", PATIENCE, || {
        processes_of(1500).is_empty()
    });
    // jitd gave their slots back: carol's next su is served (the reservation was used, so
    // the server's answer is that admin is not reserved), not turned away as busy.
    let term = Terminal::start(
        &sys,
        "setpriv --reuid=1500 --regid=1500 --init-groups su - admin",
    );
    assert_eq!(term.exit_status(), 1, "{}", term.screen());
    let screen = term.screen();
    assert!(
        screen.contains("admin is not reserved on web01"),
        "{screen}"
    );
    assert!(!screen.contains("too many"), "{screen}");
    drop(term);
    jit_tests::wait_for("the last su to end", PATIENCE, || {
        processes_of(1500).is_empty()
    });
}
