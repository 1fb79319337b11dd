//! `libpam_jit.so` under real libpam: pamtester drives it with this test's service files
//! bind-mounted on /etc/pam.d in a private mount namespace (`jit_sandbox`). jitd is played by a
//! scripted socket server thread in this test (the module is what is under test here).
//!
//! Needs root (the namespace) and (Debian) pamtester, libpam-modules (pam_permit, pam_deny,
//! pam_exec), python3. Cases that read a cache file build it with `jit_nss_cache::publish`.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use jit_nss_cache::{self as nss_cache, CacheContents, CacheGuarded};
use jit_pam_proto::Secret;
use jit_pam_proto::frame;
use jit_pam_proto::pam::{EnvVar, LoginContext, PROTOCOL_VERSION, Request, Step, Ticket};
use jit_sandbox::{Namespace, Run, built, require_root};

const SERVICE: &str = "jit-test";
const CODE_PROMPT: &str = "Verification code for alice: ";

// ---------------------------------------------------------------------------------------------
// Harness

/// The module under test, built by cargo next to this test binary.
fn module() -> PathBuf {
    built("libpam_jit.so")
}

struct TestDir(PathBuf);

impl TestDir {
    fn new() -> Self {
        require_root("it runs pamtester in a private mount namespace with its own /etc/pam.d");
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let d = std::env::temp_dir().join(format!("pam_jit-it-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("pam.d")).unwrap();
        // Anything not configured explicitly is refused, so a wrong service name cannot pass.
        std::fs::write(
            d.join("pam.d/other"),
            "auth required pam_deny.so\naccount required pam_deny.so\n\
             session required pam_deny.so\npassword required pam_deny.so\n",
        )
        .unwrap();
        Self(d)
    }

    fn socket(&self) -> PathBuf {
        self.0.join("pam.sock")
    }

    fn cache(&self) -> PathBuf {
        self.0.join("nss.cache")
    }

    fn joined(&self) -> PathBuf {
        self.0.join("joined")
    }

    fn publish(&self, shared: &[&str]) {
        let contents = CacheContents {
            generation: 1,
            guarded: shared
                .iter()
                .map(|s| CacheGuarded::account(s, None))
                .collect(),
            ..Default::default()
        };
        nss_cache::publish(&self.cache(), &contents).unwrap();
    }

    /// The module's arguments: this directory's socket, cache and joined marker.
    fn args(&self) -> String {
        format!(
            "socket={} cache={} joined={}",
            self.socket().display(),
            self.cache().display(),
            self.joined().display()
        )
    }

    /// Writes the service file. `next_auth` is the module after pam_jit in the auth stack (it
    /// decides whenever pam_jit returns PAM_IGNORE); `extra` is appended to pam_jit's arguments.
    fn service(&self, auth_control: &str, next_auth: &str, extra: &str) {
        let m = format!("{} {} {extra}", module().display(), self.args());
        let text = format!(
            "auth {auth_control} {m}\n\
             auth required {next_auth}\n\
             account [success=ok ignore=ignore default=die] {m}\n\
             account required pam_permit.so\n\
             session [success=ok ignore=ignore default=die] {m}\n\
             session optional pam_exec.so stdout /usr/bin/env\n\
             password [success=done ignore=ignore default=die] {m}\n\
             password required pam_permit.so\n"
        );
        std::fs::write(self.0.join("pam.d").join(SERVICE), text).unwrap();
    }

    /// The usual stack: pam_jit ends the auth stack on success, the next module decides on ignore.
    fn standard(&self, next_auth: &str) {
        self.service("[success=done ignore=ignore default=die]", next_auth, "");
    }

    /// `argv` with this directory's stacks as /etc/pam.d.
    fn in_namespace(&self, argv: &[&str]) -> Command {
        Namespace::new()
            .bind(self.0.join("pam.d"), "/etc/pam.d")
            .command(argv)
    }

    fn pamtester(&self, user: &str, ops: &[&str], stdin: &str) -> Run {
        let mut child = self
            .in_namespace(&jit_sandbox::pamtester_argv(SERVICE, user, ops))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("unshare");
        // Closing stdin after the answers makes any unexpected extra prompt fail, not hang.
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        Run(child.wait_with_output().unwrap())
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One action of the scripted jitd on one connection.
enum Act {
    Expect(Request),
    Send(Step),
    /// Read requests until the module hangs up (it must, within the fake's 30 s bound).
    Stall,
    /// Hang up.
    Close,
}

/// A socket server that serves one script per incoming connection, in order, and checks that
/// every script was used. Its assertions are re-raised by `finish`.
struct FakeJitd {
    path: PathBuf,
    thread: Option<JoinHandle<()>>,
}

impl FakeJitd {
    fn serve(path: PathBuf, connections: Vec<Vec<Act>>) -> Self {
        let listener = UnixListener::bind(&path).unwrap();
        let thread = std::thread::spawn(move || {
            for (i, script) in connections.into_iter().enumerate() {
                let (mut s, _) = listener.accept().unwrap();
                // Only so a broken test cannot hang forever; nothing asserts on time.
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                for act in script {
                    match act {
                        Act::Expect(want) => {
                            let got: Request = frame::read_msg(&mut s).unwrap_or_else(|e| {
                                panic!("connection {i}: expected {want:?}, got error: {e}")
                            });
                            assert_eq!(got, want, "connection {i}");
                        }
                        Act::Send(step) => frame::write_msg(&mut s, &step).unwrap(),
                        Act::Stall => {
                            // The module must hang up first: if our own 30 s bound runs out
                            // instead, it had no timeout of its own.
                            let mut buf = [0u8; 256];
                            loop {
                                match s.read(&mut buf) {
                                    Ok(0) => break,
                                    Ok(_) => {}
                                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                                        break;
                                    }
                                    Err(e) => panic!(
                                        "connection {i}: the module never gave up waiting for \
                                         jitd ({e})"
                                    ),
                                }
                            }
                        }
                        Act::Close => break,
                    }
                }
            }
        });
        Self {
            path,
            thread: Some(thread),
        }
    }

    /// Joins the server; fails if a script was not fully used or a request was not as expected.
    fn finish(mut self) {
        let t = self.thread.take().unwrap();
        if !t.is_finished() {
            // pamtester has exited, so the module made fewer connections than scripted. Wake the
            // server's accept() so the join cannot hang; the server then fails on this connection.
            let _ = std::os::unix::net::UnixStream::connect(&self.path);
        }
        if t.join().is_err() {
            panic!("the scripted jitd failed (see its panic above)");
        }
    }
}

fn hello() -> [Act; 2] {
    [
        Act::Expect(Request::Hello {
            version: PROTOCOL_VERSION,
        }),
        Act::Send(Step::Hello {
            version: PROTOCOL_VERSION,
        }),
    ]
}

/// What pamtester's items turn into.
fn ctx(user: &str) -> LoginContext {
    LoginContext {
        account: user.into(),
        service: SERVICE.into(),
        rhost: Some("192.0.2.10".into()),
        tty: Some("ssh".into()),
        ruser: None,
        uid: None,
        ssh_auth_info: None,
    }
}

fn ticket() -> Ticket {
    Ticket::new("0123456789abcdef0123456789abcdef")
}

fn granted() -> Step {
    Step::Granted {
        ticket: ticket(),
        person: "alice".into(),
    }
}

fn conn(acts: impl IntoIterator<Item = Act>) -> Vec<Act> {
    hello().into_iter().chain(acts).collect()
}

const UNREACHABLE: &str = "jit: cannot reach jitd to check your reservation for admin";

// ---------------------------------------------------------------------------------------------
// Cases

#[test]
fn shared_account_full_login() {
    let d = TestDir::new();
    d.standard("pam_deny.so");
    let jitd = FakeJitd::serve(
        d.socket(),
        vec![
            conn([
                Act::Expect(Request::AuthStart { ctx: ctx("admin") }),
                Act::Send(Step::Info {
                    text: "admin is reserved for alice".into(),
                }),
                Act::Expect(Request::Continue),
                Act::Send(Step::Prompt {
                    echo: false,
                    text: CODE_PROMPT.into(),
                }),
                Act::Expect(Request::Answer {
                    text: Secret::new("123456"),
                }),
                Act::Send(granted()),
            ]),
            // The ticket stored with pam_set_data in auth comes back in the same transaction.
            conn([
                Act::Expect(Request::Account {
                    ctx: ctx("admin"),
                    ticket: Some(ticket()),
                }),
                Act::Send(Step::Allowed),
            ]),
            conn([
                Act::Expect(Request::SessionOpen {
                    ctx: ctx("admin"),
                    ticket: Some(ticket()),
                }),
                Act::Send(Step::Session {
                    env: vec![EnvVar {
                        name: "JIT_PERSON".into(),
                        value: "alice".into(),
                    }],
                }),
            ]),
            conn([
                Act::Expect(Request::SessionClose {
                    ctx: ctx("admin"),
                    ticket: Some(ticket()),
                }),
                Act::Send(Step::Session { env: vec![] }),
            ]),
        ],
    );
    let run = d.pamtester(
        "admin",
        &["authenticate", "acct_mgmt", "open_session", "close_session"],
        "123456\n",
    );
    jitd.finish();
    run.assert_ok()
        .assert_shows("admin is reserved for alice")
        .assert_shows(CODE_PROMPT)
        .assert_shows("successfully authenticated")
        // pam_exec runs `env` with the PAM environment, after pam_jit's open_session.
        .assert_shows("JIT_PERSON=alice")
        .assert_shows("session has successfully been closed")
        .assert_hides("123456");
}

#[test]
fn wrong_code_is_refused_with_jitds_message() {
    let d = TestDir::new();
    d.standard("pam_permit.so");
    let jitd = FakeJitd::serve(
        d.socket(),
        vec![conn([
            Act::Expect(Request::AuthStart { ctx: ctx("admin") }),
            Act::Send(Step::Prompt {
                echo: false,
                text: CODE_PROMPT.into(),
            }),
            Act::Expect(Request::Answer {
                text: Secret::new("999999"),
            }),
            Act::Send(Step::Denied {
                message: "jit: wrong code for admin".into(),
            }),
        ])],
    );
    let run = d.pamtester("admin", &["authenticate"], "999999\n");
    jitd.finish();
    // pam_permit follows, yet the refusal stands: default=die.
    run.assert_failed()
        .assert_shows("jit: wrong code for admin")
        .assert_shows("Authentication failure");
}

#[test]
fn not_shared_user_is_left_to_the_next_module() {
    for (next, ok) in [("pam_permit.so", true), ("pam_deny.so", false)] {
        let d = TestDir::new();
        d.standard(next);
        let jitd = FakeJitd::serve(
            d.socket(),
            vec![conn([
                Act::Expect(Request::AuthStart { ctx: ctx("bob") }),
                Act::Send(Step::NotShared),
            ])],
        );
        let run = d.pamtester("bob", &["authenticate"], "");
        jitd.finish();
        if ok {
            run.assert_ok();
        } else {
            run.assert_failed();
        }
        run.assert_hides("jit:");
    }
}

#[test]
fn jitd_down_shared_account_is_refused_with_a_message() {
    let d = TestDir::new();
    d.standard("pam_permit.so");
    d.publish(&["admin"]);
    d.pamtester("admin", &["authenticate"], "")
        .assert_failed()
        .assert_shows(UNREACHABLE);
    // And in the account stage (an ssh key login skips auth).
    d.pamtester("admin", &["acct_mgmt"], "")
        .assert_failed()
        .assert_shows(UNREACHABLE);
}

#[test]
fn jitd_down_other_users_are_untouched() {
    let d = TestDir::new();
    d.standard("pam_permit.so");
    d.publish(&["admin"]);
    d.pamtester(
        "bob",
        &["authenticate", "acct_mgmt", "open_session", "close_session"],
        "",
    )
    .assert_ok()
    .assert_hides("jit:");
    // Host not joined: no cache file at all.
    let d = TestDir::new();
    d.standard("pam_permit.so");
    d.pamtester("admin", &["authenticate", "acct_mgmt"], "")
        .assert_ok()
        .assert_hides("jit:");
}

#[test]
fn account_stage_without_auth_sends_no_ticket() {
    let d = TestDir::new();
    d.standard("pam_permit.so");
    let jitd = FakeJitd::serve(
        d.socket(),
        vec![conn([
            Act::Expect(Request::Account {
                ctx: ctx("admin"),
                ticket: None,
            }),
            Act::Send(Step::Denied {
                message: "jit: admin needs a jit login, not just a key".into(),
            }),
        ])],
    );
    let run = d.pamtester("admin", &["acct_mgmt"], "");
    jitd.finish();
    run.assert_failed()
        .assert_shows("jit: admin needs a jit login, not just a key");
}

#[test]
fn jitd_hanging_up_mid_exchange_fails_closed_without_killing_the_caller() {
    // No cache file: only the prompt says admin is shared. The module's answer then goes to a
    // closed socket: it must get EPIPE (and refuse), not raise SIGPIPE in pamtester.
    let d = TestDir::new();
    d.standard("pam_permit.so");
    let jitd = FakeJitd::serve(
        d.socket(),
        vec![conn([
            Act::Expect(Request::AuthStart { ctx: ctx("admin") }),
            Act::Send(Step::Prompt {
                echo: false,
                text: CODE_PROMPT.into(),
            }),
            Act::Close,
        ])],
    );
    let run = d.pamtester("admin", &["authenticate"], "123456\n");
    jitd.finish();
    run.assert_failed()
        .assert_shows(CODE_PROMPT)
        .assert_shows(UNREACHABLE);
}

#[test]
fn jitd_that_never_answers_times_out() {
    let d = TestDir::new();
    d.service(
        "[success=done ignore=ignore default=die]",
        "pam_permit.so",
        "timeout=0.3",
    );
    d.publish(&["admin"]);
    let jitd = FakeJitd::serve(
        d.socket(),
        vec![conn([
            Act::Expect(Request::AuthStart { ctx: ctx("admin") }),
            Act::Stall,
        ])],
    );
    let run = d.pamtester("admin", &["authenticate"], "");
    jitd.finish();
    run.assert_failed().assert_shows(UNREACHABLE);
}

#[test]
fn unknown_option_refuses_shared_and_leaves_others_alone() {
    let d = TestDir::new();
    d.service(
        "[success=done ignore=ignore default=die]",
        "pam_permit.so",
        "sokcet=/typo",
    );
    d.publish(&["admin"]);
    // No jitd is listening: misconfigured, the module must not even try it.
    d.pamtester("admin", &["authenticate"], "")
        .assert_failed()
        .assert_shows("pam_jit is misconfigured for jit-test");
    d.pamtester("bob", &["authenticate", "acct_mgmt"], "")
        .assert_ok()
        .assert_hides("jit:");
}

/// jitd down and no readable list: a joined host refuses root (uid 0 by this machine's NSS) at
/// every stage and leaves everyone else alone; a host that never joined refuses nobody.
#[test]
fn without_a_readable_list_a_joined_host_refuses_root_only() {
    let d = TestDir::new();
    d.standard("pam_permit.so");
    // Not joined: no marker, no cache.
    d.pamtester("root", &["authenticate", "acct_mgmt"], "")
        .assert_ok()
        .assert_hides("jit:");
    // Joined, the cache lost.
    std::fs::write(d.joined(), "jit-joined 1\nalways_guarded root\n").unwrap();
    for ops in [&["authenticate"][..], &["acct_mgmt"], &["open_session"]] {
        d.pamtester("root", ops, "")
            .assert_failed()
            .assert_shows("this host's list of shared accounts cannot be read");
    }
    d.pamtester("bob", &["authenticate", "acct_mgmt", "open_session"], "")
        .assert_ok()
        .assert_hides("jit:");
    // Joined, the cache damaged, the marker lost too: a damaged cache still means joined.
    std::fs::write(d.cache(), b"garbage, not a cache").unwrap();
    std::fs::remove_file(d.joined()).unwrap();
    d.pamtester("root", &["authenticate"], "")
        .assert_failed()
        .assert_shows("this host's list of shared accounts cannot be read");
    d.pamtester("bob", &["authenticate"], "").assert_ok();
}

#[test]
fn shared_account_has_no_password_to_change() {
    let d = TestDir::new();
    d.standard("pam_permit.so");
    d.publish(&["admin"]);
    d.pamtester("admin", &["chauthtok"], "")
        .assert_failed()
        .assert_shows("admin is a shared account: it has no password to change");
    d.pamtester("bob", &["chauthtok"], "").assert_ok();
}

/// pamtester has no setcred: drive it through libpam with a small ctypes script. When pam_jit
/// ended the auth stack (`success=done`), Linux-PAM replays that chain for pam_setcred, so
/// pam_jit must answer PAM_SUCCESS there, or pam_setcred fails (and sshd aborts the login).
#[test]
fn setcred_after_jit_auth_succeeds() {
    let d = TestDir::new();
    d.standard("pam_deny.so");
    let jitd = FakeJitd::serve(
        d.socket(),
        vec![conn([
            Act::Expect(Request::AuthStart {
                ctx: LoginContext {
                    rhost: None,
                    tty: None,
                    ..ctx("admin")
                },
            }),
            Act::Send(Step::Prompt {
                echo: false,
                text: CODE_PROMPT.into(),
            }),
            Act::Expect(Request::Answer {
                text: Secret::new("123456"),
            }),
            Act::Send(granted()),
        ])],
    );
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pam_driver.py");
    let driver = driver.to_str().unwrap();
    let mut child = d
        .in_namespace(&[
            "python3",
            driver,
            SERVICE,
            "admin",
            "authenticate",
            "setcred",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 missing");
    child.stdin.take().unwrap().write_all(b"123456\n").unwrap();
    let run = Run(child.wait_with_output().unwrap());
    jitd.finish();
    run.assert_ok()
        .assert_shows(CODE_PROMPT)
        .assert_shows("authenticate=0")
        .assert_shows("setcred=0");
}
