//! The core against a scripted fake PAM (a queue of expected conversation events, checked empty
//! on drop) and a scripted fake jitd (the other end of a `UnixStream::pair()`, served by a thread
//! that asserts every request and sends canned steps).
//!
//! Tests that read a cache file build it with `jit_nss_cache::publish`, as jitd writes it.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use jit_nss_cache::{self as nss_cache, CacheContents, CacheGuarded};
use jit_pam_proto::frame::{self, MAX_FRAME};
use jit_pam_proto::pam::{EnvVar, LoginContext, PROTOCOL_VERSION, Request, Step, Ticket};

use super::*;

// ---------------------------------------------------------------------------------------------
// Fake PAM

#[derive(Debug)]
enum Ev {
    /// Expect a prompt with this echo flag and text; answer it (or fail the conversation).
    Prompt {
        echo: bool,
        text: &'static str,
        answer: Result<&'static str, Code>,
    },
    /// Expect a message of this kind whose text contains the string.
    Show(Msg, &'static str),
}

struct FakePam {
    user: Result<Vec<u8>, Code>,
    items: [(Item, Option<&'static str>); 4],
    events: VecDeque<Ev>,
    ticket: Option<Held>,
    env: Vec<(String, String)>,
    /// The break-glass record (module data in the real module).
    break_glass: Option<String>,
    logs: Vec<(Level, String)>,
    /// Answers given: none may ever show up in a log line.
    answers: Vec<&'static str>,
    /// What the user name resolves to.
    uid: Option<u32>,
}

impl FakePam {
    fn new(user: &str, events: Vec<Ev>) -> Self {
        Self {
            user: Ok(user.as_bytes().to_vec()),
            items: [
                (Item::Service, Some("sshd")),
                (Item::Rhost, Some("10.0.0.7")),
                (Item::Tty, Some("ssh")),
                (Item::Ruser, None),
            ],
            events: events.into(),
            ticket: None,
            env: Vec::new(),
            break_glass: None,
            logs: Vec::new(),
            answers: Vec::new(),
            uid: None,
        }
    }

    fn with_uid(mut self, uid: u32) -> Self {
        self.uid = Some(uid);
        self
    }

    fn with_ticket(mut self, t: Held) -> Self {
        self.ticket = Some(t);
        self
    }

    fn logged(&self, needle: &str) -> bool {
        self.logs.iter().any(|(_, l)| l.contains(needle))
    }
}

impl Handler for FakePam {
    fn user(&mut self) -> Result<Vec<u8>, Code> {
        self.user.clone()
    }

    fn uid_of(&mut self, user: &[u8]) -> Option<u32> {
        assert_eq!(Ok(user.to_vec()), self.user, "uid asked for another name");
        self.uid
    }

    fn item(&mut self, item: Item) -> Option<String> {
        self.items
            .iter()
            .find(|(i, _)| *i == item)
            .and_then(|(_, v)| v.map(String::from))
    }

    fn prompt(&mut self, echo: bool, text: &str) -> Result<Secret, Code> {
        match self.events.pop_front() {
            Some(Ev::Prompt {
                echo: e,
                text: t,
                answer,
            }) => {
                assert_eq!((echo, text), (e, t), "unexpected prompt");
                let answer = answer?;
                self.answers.push(answer);
                Ok(Secret::new(answer))
            }
            other => panic!("prompt({echo}, {text:?}) but expected {other:?}"),
        }
    }

    fn show(&mut self, kind: Msg, text: &str) -> Result<(), Code> {
        match self.events.pop_front() {
            Some(Ev::Show(k, want)) if k == kind && text.contains(want) => Ok(()),
            other => panic!("show({kind:?}, {text:?}) but expected {other:?}"),
        }
    }

    fn ticket(&mut self) -> Option<Held> {
        self.ticket.clone()
    }

    fn store_ticket(&mut self, ticket: Held) -> Result<(), Code> {
        self.ticket = Some(ticket);
        Ok(())
    }

    fn putenv(&mut self, name: &str, value: &str) -> Result<(), Code> {
        // As libpam: setting a name again replaces its value in place.
        match self.env.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.into(),
            None => self.env.push((name.into(), value.into())),
        }
        Ok(())
    }

    fn getenv(&mut self, name: &str) -> Option<String> {
        self.env
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    fn unsetenv(&mut self, name: &str) -> Result<(), Code> {
        self.env.retain(|(n, _)| n != name);
        Ok(())
    }

    fn break_glass(&mut self) -> Option<String> {
        self.break_glass.clone()
    }

    fn set_break_glass(&mut self, account: Option<&str>) -> Result<(), Code> {
        self.break_glass = account.map(String::from);
        Ok(())
    }

    fn log(&mut self, level: Level, msg: &str) {
        self.logs.push((level, msg.to_string()));
    }
}

impl Drop for FakePam {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        assert!(
            self.events.is_empty(),
            "conversation events never happened: {:?}",
            self.events
        );
        for (_, line) in &self.logs {
            for a in self.answers.iter().filter(|a| !a.is_empty()) {
                assert!(!line.contains(a), "an answer reached the log: {line}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fake jitd

#[derive(Debug)]
enum Act {
    /// Read one request and assert it equals this.
    Expect(Request),
    Send(Step),
    /// Write these bytes as they are (bad frames).
    Raw(Vec<u8>),
    /// Read requests until the module hangs up, answering nothing.
    Stall,
    /// Hang up now.
    Close,
}

fn hello() -> Vec<Act> {
    vec![
        Act::Expect(Request::Hello {
            version: PROTOCOL_VERSION,
        }),
        Act::Send(Step::Hello {
            version: PROTOCOL_VERSION,
        }),
    ]
}

/// Serves one connection from a script. The thread's assertions are re-raised on drop.
struct FakeJitd {
    stream: Mutex<Option<UnixStream>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeJitd {
    fn new(script: Vec<Act>) -> Self {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        // Only so a broken test cannot hang forever; no test asserts on time.
        theirs
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let thread = std::thread::spawn(move || {
            for act in script {
                match act {
                    Act::Expect(want) => {
                        let got: Request = frame::read_msg(&mut theirs)
                            .unwrap_or_else(|e| panic!("expected {want:?}, got error {e}"));
                        assert_eq!(got, want);
                    }
                    Act::Send(step) => frame::write_msg(&mut theirs, &step).unwrap(),
                    Act::Raw(bytes) => theirs.write_all(&bytes).unwrap(),
                    Act::Stall => {
                        let mut buf = [0u8; 256];
                        while matches!(theirs.read(&mut buf), Ok(n) if n > 0) {}
                        return;
                    }
                    Act::Close => return,
                }
            }
        });
        Self {
            stream: Mutex::new(Some(ours)),
            thread: Some(thread),
        }
    }
}

impl Connect for FakeJitd {
    fn connect(&self, _timeout: Duration) -> io::Result<UnixStream> {
        self.stream
            .lock()
            .unwrap()
            .take()
            .ok_or_else(|| io::Error::new(io::ErrorKind::ConnectionRefused, "one connection only"))
    }
}

impl Drop for FakeJitd {
    fn drop(&mut self) {
        // Hang up our end (if the module never connected) so the thread cannot wait for it.
        drop(self.stream.lock().map(|mut s| s.take()));
        if let Some(t) = self.thread.take() {
            let result = t.join();
            if result.is_err() && !std::thread::panicking() {
                panic!("fake jitd failed (see its panic above)");
            }
        }
    }
}

/// jitd is down: the socket is missing.
struct Unreachable;

impl Connect for Unreachable {
    fn connect(&self, _timeout: Duration) -> io::Result<UnixStream> {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            "No such file or directory",
        ))
    }
}

/// For cases that must decide without contacting jitd.
struct MustNotConnect;

impl Connect for MustNotConnect {
    fn connect(&self, _timeout: Duration) -> io::Result<UnixStream> {
        panic!("the module contacted jitd but must not have");
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let d = std::env::temp_dir().join(format!("pam_jit-relay-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }

    fn cache(&self) -> PathBuf {
        self.0.join("nss.cache")
    }

    /// Marks the host as joined, with the default always-guarded names (root).
    fn join(&self) {
        std::fs::write(
            self.0.join("joined"),
            jit_nss_cache::Joined::default().render(),
        )
        .unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Options pointing at a cache file in `dir`; `shared`: None = no cache file at all.
fn setup(shared: Option<&[&str]>) -> (TempDir, Options) {
    let dir = TempDir::new();
    if let Some(names) = shared {
        publish(&dir.cache(), names);
    }
    let opts = Options {
        cache: vec![dir.cache()],
        joined: dir.0.join("joined"),
        timeout: Duration::from_secs(5),
        debug: true,
        ..Options::default()
    };
    (dir, opts)
}

fn publish(path: &Path, shared: &[&str]) {
    let contents = CacheContents {
        generation: 7,
        guarded: shared
            .iter()
            .map(|s| CacheGuarded::account(s, None))
            .collect(),
        ..Default::default()
    };
    nss_cache::publish(path, &contents).expect("publish the cache");
}

fn ctx(account: &str) -> LoginContext {
    LoginContext {
        account: account.into(),
        service: "sshd".into(),
        rhost: Some("10.0.0.7".into()),
        tty: Some("ssh".into()),
        ruser: None,
        uid: None,
        ssh_auth_info: None,
    }
}

/// The handle jitd grants in these tests.
fn handle() -> Ticket {
    Ticket::new("0123456789abcdef0123456789abcdef")
}

/// jitd's grant of an auth for alice.
fn granted_step() -> Step {
    Step::Granted {
        ticket: handle(),
        person: "alice".into(),
    }
}

/// What a transaction that ran alice's auth for `account` keeps.
fn held(account: &str) -> Held {
    Held {
        account: account.into(),
        ticket: handle(),
        person: Some("alice".into()),
    }
}

fn script(parts: Vec<Vec<Act>>) -> Vec<Act> {
    parts.into_iter().flatten().collect()
}

#[derive(Clone, Copy)]
enum Hook {
    Auth,
    Account,
    Open,
    Close,
    Setcred,
    Chauthtok,
}

fn run(hook: Hook, pam: &mut FakePam, jitd: &impl Connect, opts: &Options) -> Code {
    run_flags(hook, pam, jitd, opts, false)
}

fn run_flags(
    hook: Hook,
    pam: &mut FakePam,
    jitd: &impl Connect,
    opts: &Options,
    silent: bool,
) -> Code {
    let mut m = Module {
        pam,
        jitd,
        opts,
        silent,
    };
    match hook {
        Hook::Auth => m.authenticate(),
        Hook::Account => m.account(),
        Hook::Open => m.open_session(),
        Hook::Close => m.close_session(),
        Hook::Setcred => m.setcred(),
        Hook::Chauthtok => m.chauthtok(),
    }
}

const CODE_PROMPT: &str = "Verification code for alice: ";
const UNREACHABLE_MSG: &str = "jit: cannot reach jitd to check your reservation for admin";

fn prompt_step() -> Step {
    Step::Prompt {
        echo: false,
        text: CODE_PROMPT.into(),
    }
}

fn answer(code: &str) -> Request {
    Request::Answer {
        text: Secret::new(code),
    }
}

fn no_cache_opts() -> (TempDir, Options) {
    setup(None)
}

// ---------------------------------------------------------------------------------------------
// auth

#[test]
fn auth_happy_path_stores_the_ticket_and_the_answer_reaches_jitd() {
    let (_d, opts) = no_cache_opts();
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::AuthStart { ctx: ctx("admin") }),
            Act::Send(prompt_step()),
            Act::Expect(answer("123456")),
            Act::Send(granted_step()),
        ],
    ]));
    let mut pam = FakePam::new(
        "admin",
        vec![Ev::Prompt {
            echo: false,
            text: CODE_PROMPT,
            answer: Ok("123456"),
        }],
    );
    assert_eq!(run(Hook::Auth, &mut pam, &jitd, &opts), Code::Success);
    assert_eq!(pam.ticket, Some(held("admin")));
    assert!(
        pam.logged("jitd step 1: prompt"),
        "debug logs step kinds: {:?}",
        pam.logs
    );
}

#[test]
fn a_wait_is_answered_at_once_without_asking_the_person() {
    // A push: the prompt, then jitd waits for the approval in steps shorter than the timeout.
    let (_d, opts) = no_cache_opts();
    let mut acts = vec![
        Act::Expect(Request::AuthStart { ctx: ctx("admin") }),
        Act::Send(prompt_step()),
        Act::Expect(answer("")),
    ];
    for _ in 0..(MAX_STEPS + 4) {
        acts.push(Act::Send(Step::Wait));
        acts.push(Act::Expect(Request::Continue));
    }
    acts.push(Act::Send(granted_step()));
    let jitd = FakeJitd::new(script(vec![hello(), acts]));
    let mut pam = FakePam::new(
        "admin",
        vec![Ev::Prompt {
            echo: false,
            text: CODE_PROMPT,
            answer: Ok(""),
        }],
    );
    assert_eq!(run(Hook::Auth, &mut pam, &jitd, &opts), Code::Success);
    assert_eq!(pam.ticket, Some(held("admin")));
}

#[test]
fn endless_waits_end_in_a_refusal() {
    let (_d, opts) = no_cache_opts();
    let mut acts = vec![Act::Expect(Request::AuthStart { ctx: ctx("admin") })];
    acts.push(Act::Send(Step::Wait));
    for _ in 0..MAX_WAITS {
        acts.push(Act::Expect(Request::Continue));
        acts.push(Act::Send(Step::Wait));
    }
    acts.push(Act::Stall);
    let jitd = FakeJitd::new(script(vec![hello(), acts]));
    let mut pam = FakePam::new("admin", vec![]);
    assert_ne!(run(Hook::Auth, &mut pam, &jitd, &opts), Code::Success);
    assert!(pam.logged("240"), "{:?}", pam.logs);
}

#[test]
fn auth_denied_shows_the_message() {
    let (_d, opts) = no_cache_opts();
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::AuthStart { ctx: ctx("admin") }),
            Act::Send(prompt_step()),
            Act::Expect(answer("000000")),
            Act::Send(Step::Denied {
                message: "wrong code for admin".into(),
            }),
        ],
    ]));
    let mut pam = FakePam::new(
        "admin",
        vec![
            Ev::Prompt {
                echo: false,
                text: CODE_PROMPT,
                answer: Ok("000000"),
            },
            Ev::Show(Msg::Error, "wrong code for admin"),
        ],
    );
    assert_eq!(run(Hook::Auth, &mut pam, &jitd, &opts), Code::AuthErr);
    assert_eq!(pam.ticket, None);
}

#[test]
fn auth_denied_without_message_shows_nothing() {
    let (_d, opts) = no_cache_opts();
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::AuthStart { ctx: ctx("admin") }),
            Act::Send(Step::Denied {
                message: String::new(),
            }),
        ],
    ]));
    let mut pam = FakePam::new("admin", vec![]);
    assert_eq!(run(Hook::Auth, &mut pam, &jitd, &opts), Code::AuthErr);
}

#[test]
fn auth_not_shared_is_ignored_without_conversation() {
    let (_d, opts) = no_cache_opts();
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::AuthStart { ctx: ctx("bob") }),
            Act::Send(Step::NotShared),
        ],
    ]));
    let mut pam = FakePam::new("bob", vec![]);
    assert_eq!(run(Hook::Auth, &mut pam, &jitd, &opts), Code::Ignore);
    assert_eq!(pam.ticket, None);
}

#[test]
fn auth_relays_info_and_error_with_continue() {
    let (_d, opts) = no_cache_opts();
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::AuthStart { ctx: ctx("admin") }),
            Act::Send(Step::Info {
                text: "admin is reserved for alice until 10:05".into(),
            }),
            Act::Expect(Request::Continue),
            Act::Send(prompt_step()),
            Act::Expect(answer("111111")),
            Act::Send(Step::Error {
                text: "wrong code, 2 tries left".into(),
            }),
            Act::Expect(Request::Continue),
            Act::Send(Step::Prompt {
                echo: true,
                text: "Code again: ".into(),
            }),
            Act::Expect(answer("222222")),
            Act::Send(granted_step()),
        ],
    ]));
    let mut pam = FakePam::new(
        "admin",
        vec![
            Ev::Show(Msg::Info, "admin is reserved for alice until 10:05"),
            Ev::Prompt {
                echo: false,
                text: CODE_PROMPT,
                answer: Ok("111111"),
            },
            Ev::Show(Msg::Error, "wrong code, 2 tries left"),
            Ev::Prompt {
                echo: true,
                text: "Code again: ",
                answer: Ok("222222"),
            },
        ],
    );
    assert_eq!(run(Hook::Auth, &mut pam, &jitd, &opts), Code::Success);
}

#[test]
fn auth_silent_hides_messages_but_still_prompts() {
    let (_d, opts) = no_cache_opts();
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::AuthStart { ctx: ctx("admin") }),
            Act::Send(Step::Info {
                text: "hello".into(),
            }),
            Act::Expect(Request::Continue),
            Act::Send(prompt_step()),
            Act::Expect(answer("123456")),
            Act::Send(Step::Denied {
                message: "no".into(),
            }),
        ],
    ]));
    let mut pam = FakePam::new(
        "admin",
        vec![Ev::Prompt {
            echo: false,
            text: CODE_PROMPT,
            answer: Ok("123456"),
        }],
    );
    assert_eq!(
        run_flags(Hook::Auth, &mut pam, &jitd, &opts, true),
        Code::AuthErr
    );
}

#[test]
fn auth_conversation_failure_is_conv_err_never_success() {
    for failure in [Code::ConvErr, Code::Success] {
        let (_d, opts) = no_cache_opts();
        let jitd = FakeJitd::new(script(vec![
            hello(),
            vec![
                Act::Expect(Request::AuthStart { ctx: ctx("admin") }),
                Act::Send(prompt_step()),
            ],
        ]));
        let mut pam = FakePam::new(
            "admin",
            vec![Ev::Prompt {
                echo: false,
                text: CODE_PROMPT,
                answer: Err(failure),
            }],
        );
        assert_eq!(run(Hook::Auth, &mut pam, &jitd, &opts), Code::ConvErr);
        assert_eq!(pam.ticket, None);
    }
}

#[test]
fn auth_sends_the_pam_items_to_jitd() {
    let (_d, opts) = no_cache_opts();
    let want = LoginContext {
        account: "admin".into(),
        service: "su".into(),
        rhost: None,
        tty: Some("/dev/pts/3".into()),
        ruser: Some("bob".into()),
        uid: None,
        ssh_auth_info: None,
    };
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::AuthStart { ctx: want }),
            Act::Send(Step::NotShared),
        ],
    ]));
    let mut pam = FakePam::new("admin", vec![]);
    pam.items = [
        (Item::Service, Some("su")),
        (Item::Rhost, None),
        (Item::Tty, Some("/dev/pts/3")),
        (Item::Ruser, Some("bob")),
    ];
    assert_eq!(run(Hook::Auth, &mut pam, &jitd, &opts), Code::Ignore);
}

#[test]
fn names_that_cannot_be_shared_never_reach_jitd() {
    let (_d, opts) = no_cache_opts();
    for user in [b"".to_vec(), b"ad\xffmin".to_vec()] {
        for hook in [
            Hook::Auth,
            Hook::Account,
            Hook::Open,
            Hook::Close,
            Hook::Setcred,
            Hook::Chauthtok,
        ] {
            let mut pam = FakePam::new("x", vec![]);
            pam.user = Ok(user.clone());
            assert_eq!(run(hook, &mut pam, &MustNotConnect, &opts), Code::Ignore);
        }
    }
}

#[test]
fn pam_get_user_failure_is_passed_on_but_never_as_success() {
    let (_d, opts) = no_cache_opts();
    let mut pam = FakePam::new("x", vec![]);
    pam.user = Err(Code::ConvErr);
    assert_eq!(
        run(Hook::Auth, &mut pam, &MustNotConnect, &opts),
        Code::ConvErr
    );
    pam.user = Err(Code::Success);
    assert_eq!(
        run(Hook::Auth, &mut pam, &MustNotConnect, &opts),
        Code::SystemErr
    );
}

// ---------------------------------------------------------------------------------------------
// auth when jitd misbehaves: the cache decides

/// Runs auth for `user` against `jitd` with a cache listing `shared`; returns the code and logs.
fn auth_with_cache(
    user: &str,
    shared: Option<&[&str]>,
    jitd: &impl Connect,
    events: Vec<Ev>,
    timeout: Duration,
) -> (Code, Vec<(Level, String)>) {
    let (_d, mut opts) = setup(shared);
    opts.timeout = timeout;
    let mut pam = FakePam::new(user, events);
    let code = run(Hook::Auth, &mut pam, jitd, &opts);
    (code, pam.logs.clone())
}

const T: Duration = Duration::from_secs(5);

#[test]
fn unreachable_jitd_refuses_shared_and_ignores_others() {
    let refused = vec![Ev::Show(Msg::Error, UNREACHABLE_MSG)];
    let (code, logs) = auth_with_cache("admin", Some(&["admin"]), &Unreachable, refused, T);
    assert_eq!(code, Code::AuthErr);
    assert!(
        logs.iter()
            .any(|(l, m)| *l == Level::Err && m.contains("cannot connect")),
        "{logs:?}"
    );
    let (code, _) = auth_with_cache("bob", Some(&["admin"]), &Unreachable, vec![], T);
    assert_eq!(code, Code::Ignore);
    // No cache file at all: the host has not joined jit. It behaves exactly as before, down to
    // its logs: nothing is logged unless `debug` is on (as it is here).
    let (code, logs) = auth_with_cache("admin", None, &Unreachable, vec![], T);
    assert_eq!(code, Code::Ignore);
    assert!(logs.iter().all(|(l, _)| *l == Level::Debug), "{logs:?}");
}

#[test]
fn jitd_hanging_up_before_any_challenge_falls_back_to_the_cache() {
    let hangup = || {
        FakeJitd::new(script(vec![
            hello(),
            vec![
                Act::Expect(Request::AuthStart { ctx: ctx("admin") }),
                Act::Close,
            ],
        ]))
    };
    let refused = vec![Ev::Show(Msg::Error, UNREACHABLE_MSG)];
    assert_eq!(
        auth_with_cache("admin", Some(&["admin"]), &hangup(), refused, T).0,
        Code::AuthErr
    );
    assert_eq!(
        auth_with_cache("admin", Some(&["root"]), &hangup(), vec![], T).0,
        Code::Ignore
    );
}

#[test]
fn jitd_hanging_up_after_a_prompt_refuses_whatever_the_cache_says() {
    // No cache file: only the challenge tells us admin is shared.
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::AuthStart { ctx: ctx("admin") }),
            Act::Send(prompt_step()),
            Act::Close,
        ],
    ]));
    let events = vec![
        Ev::Prompt {
            echo: false,
            text: CODE_PROMPT,
            answer: Ok("123456"),
        },
        Ev::Show(Msg::Error, UNREACHABLE_MSG),
    ];
    let (code, logs) = auth_with_cache("admin", None, &jitd, events, T);
    assert_eq!(code, Code::AuthErr);
    assert!(
        logs.iter()
            .any(|(_, m)| m.contains("already treated it as shared")),
        "{logs:?}"
    );
}

#[test]
fn garbage_from_jitd_fails_closed() {
    let mut not_json = 9u32.to_be_bytes().to_vec();
    not_json.extend_from_slice(b"not json!");
    let oversized = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
    let unknown_step = {
        let payload = br#"{"step":"launch_missiles"}"#;
        let mut v = (payload.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    };
    for (name, raw) in [
        ("not json", not_json),
        ("oversized", oversized),
        ("unknown step", unknown_step),
    ] {
        let jitd = FakeJitd::new(script(vec![
            hello(),
            vec![
                Act::Expect(Request::AuthStart { ctx: ctx("admin") }),
                Act::Raw(raw),
            ],
        ]));
        let refused = vec![Ev::Show(Msg::Error, UNREACHABLE_MSG)];
        let (code, logs) = auth_with_cache("admin", Some(&["admin"]), &jitd, refused, T);
        assert_eq!(code, Code::AuthErr, "{name}");
        assert!(
            logs.iter()
                .any(|(_, m)| m.contains("did not answer properly")),
            "{name}: {logs:?}"
        );
    }
}

#[test]
fn silent_jitd_times_out_and_fails_closed() {
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::AuthStart { ctx: ctx("admin") }),
            Act::Stall,
        ],
    ]));
    let refused = vec![Ev::Show(Msg::Error, UNREACHABLE_MSG)];
    let (code, logs) = auth_with_cache(
        "admin",
        Some(&["admin"]),
        &jitd,
        refused,
        Duration::from_millis(200),
    );
    assert_eq!(code, Code::AuthErr);
    assert!(
        logs.iter().any(|(_, m)| m.contains("timed out")),
        "{logs:?}"
    );
}

#[test]
fn silent_jitd_during_hello_times_out_too() {
    let jitd = FakeJitd::new(vec![Act::Stall]);
    let (code, logs) = auth_with_cache(
        "bob",
        Some(&["admin"]),
        &jitd,
        vec![],
        Duration::from_millis(200),
    );
    assert_eq!(code, Code::Ignore);
    assert!(
        logs.iter().any(|(_, m)| m.contains("timed out")),
        "{logs:?}"
    );
}

#[test]
fn version_mismatch_falls_back() {
    let jitd = FakeJitd::new(vec![
        Act::Expect(Request::Hello {
            version: PROTOCOL_VERSION,
        }),
        Act::Send(Step::Hello {
            version: PROTOCOL_VERSION + 1,
        }),
    ]);
    let refused = vec![Ev::Show(Msg::Error, UNREACHABLE_MSG)];
    let (code, logs) = auth_with_cache("admin", Some(&["admin"]), &jitd, refused, T);
    assert_eq!(code, Code::AuthErr);
    let want = format!("protocol version {}", PROTOCOL_VERSION + 1);
    assert!(logs.iter().any(|(_, m)| m.contains(&want)), "{logs:?}");
}

#[test]
fn failed_step_falls_back() {
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::AuthStart { ctx: ctx("admin") }),
            Act::Send(Step::Failed {
                message: "server config broken".into(),
            }),
        ],
    ]));
    let refused = vec![Ev::Show(Msg::Error, UNREACHABLE_MSG)];
    let (code, logs) = auth_with_cache("admin", Some(&["admin"]), &jitd, refused, T);
    assert_eq!(code, Code::AuthErr);
    assert!(
        logs.iter().any(|(_, m)| m.contains("server config broken")),
        "{logs:?}"
    );
}

#[test]
fn step_count_is_capped() {
    let mut acts = script(vec![
        hello(),
        vec![Act::Expect(Request::AuthStart { ctx: ctx("bob") })],
    ]);
    let mut events = Vec::new();
    for i in 0..MAX_STEPS {
        acts.push(Act::Send(Step::Info {
            text: "still thinking".into(),
        }));
        events.push(Ev::Show(Msg::Info, "still thinking"));
        if i + 1 < MAX_STEPS {
            acts.push(Act::Expect(Request::Continue));
        }
    }
    // The module gives up after MAX_STEPS steps without acknowledging the last one; jitd
    // stays connected, ready to send more, until the module hangs up.
    acts.push(Act::Stall);
    let jitd = FakeJitd::new(acts);
    // bob is not shared per the cache: the cap leads to the fallback, which ignores him.
    let (code, logs) = auth_with_cache("bob", Some(&["admin"]), &jitd, events, T);
    assert_eq!(code, Code::Ignore);
    assert!(
        logs.iter()
            .any(|(_, m)| m.contains(&format!("more than {MAX_STEPS} steps"))),
        "{logs:?}"
    );
}

#[test]
fn unexpected_final_step_falls_back() {
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::AuthStart { ctx: ctx("admin") }),
            Act::Send(Step::Allowed),
        ],
    ]));
    let refused = vec![Ev::Show(Msg::Error, UNREACHABLE_MSG)];
    let (code, _) = auth_with_cache("admin", Some(&["admin"]), &jitd, refused, T);
    assert_eq!(code, Code::AuthErr);
}

/// jitd down and no list readable on a joined host (the marker exists, the cache is damaged or
/// gone): uid 0 and the always-guarded names are refused at every stage, with a message; every
/// other account is left alone.
#[test]
fn without_a_list_a_joined_host_refuses_uid_0_and_always_guarded_names_only() {
    let (d, opts) = setup(None);
    d.join();
    for damaged in [false, true] {
        if damaged {
            std::fs::write(d.cache(), b"definitely not a cache file").unwrap();
        }
        for (who, uid) in [("root", None), ("toor", Some(0))] {
            for (hook, code) in [
                (Hook::Auth, Code::AuthErr),
                (Hook::Account, Code::PermDenied),
                (Hook::Open, Code::SessionErr),
            ] {
                let refused = vec![Ev::Show(
                    Msg::Error,
                    "this host's list of shared accounts cannot be read",
                )];
                let mut pam = FakePam::new(who, refused);
                if let Some(u) = uid {
                    pam = pam.with_uid(u);
                }
                assert_eq!(run(hook, &mut pam, &Unreachable, &opts), code, "{who}");
                assert!(pam.logged("no list is readable"), "{:?}", pam.logs);
            }
        }
        for (hook, ..) in [(Hook::Auth, ()), (Hook::Account, ()), (Hook::Open, ())] {
            let mut pam = FakePam::new("bob", vec![]).with_uid(1000);
            assert_eq!(run(hook, &mut pam, &Unreachable, &opts), Code::Ignore);
        }
        // A password change grants nothing: stay out of the way.
        let mut pam = FakePam::new("root", vec![]).with_uid(0);
        assert_eq!(
            run(Hook::Chauthtok, &mut pam, &Unreachable, &opts),
            Code::Ignore
        );
    }
}

/// A readable list guards by uid too: a second uid-0 name, or a name in another case that
/// resolves to a shared account's uid, is refused when jitd is down.
#[test]
fn the_list_guards_other_names_of_a_guarded_uid() {
    let (d, opts) = setup(None);
    let contents = CacheContents {
        generation: 1,
        guarded: vec![
            CacheGuarded::account("root", Some(0)),
            CacheGuarded::account("admin", Some(60001)),
        ],
        ..Default::default()
    };
    nss_cache::publish(&d.cache(), &contents).unwrap();
    for (who, uid) in [("toor", 0), ("Admin", 60001)] {
        let refused = vec![Ev::Show(Msg::Error, "cannot reach jitd")];
        let mut pam = FakePam::new(who, refused).with_uid(uid);
        assert_eq!(
            run(Hook::Auth, &mut pam, &Unreachable, &opts),
            Code::AuthErr
        );
        assert!(pam.logged("'s)"), "{:?}", pam.logs);
    }
    let mut pam = FakePam::new("Admin", vec![]);
    assert_eq!(run(Hook::Auth, &mut pam, &Unreachable, &opts), Code::Ignore);
}

// ---------------------------------------------------------------------------------------------
// misconfiguration

#[test]
fn misconfigured_module_refuses_shared_ignores_others_without_asking_jitd() {
    let (_d, base) = setup(Some(&["admin"]));
    let opts = Options {
        problems: vec!["unknown argument `sokcet=/x`".into()],
        ..base
    };
    let mut pam = FakePam::new(
        "admin",
        vec![Ev::Show(Msg::Error, "pam_jit is misconfigured for sshd")],
    );
    assert_eq!(
        run(Hook::Auth, &mut pam, &MustNotConnect, &opts),
        Code::AuthErr
    );
    assert!(
        pam.logged("misconfigured: unknown argument `sokcet=/x`"),
        "{:?}",
        pam.logs
    );
    let mut pam = FakePam::new("admin", vec![Ev::Show(Msg::Error, "misconfigured")]);
    assert_eq!(
        run(Hook::Account, &mut pam, &MustNotConnect, &opts),
        Code::PermDenied
    );
    let mut pam = FakePam::new("admin", vec![Ev::Show(Msg::Error, "misconfigured")]);
    assert_eq!(
        run(Hook::Open, &mut pam, &MustNotConnect, &opts),
        Code::SessionErr
    );
    for hook in [Hook::Auth, Hook::Account, Hook::Open, Hook::Close] {
        let mut pam = FakePam::new("bob", vec![]);
        assert_eq!(run(hook, &mut pam, &MustNotConnect, &opts), Code::Ignore);
    }
    // A ticket proves admin is shared even without a cache; logout still completes.
    let mut pam = FakePam::new("admin", vec![]).with_ticket(held("admin"));
    assert_eq!(
        run(Hook::Close, &mut pam, &MustNotConnect, &opts),
        Code::Success
    );
}

// ---------------------------------------------------------------------------------------------
// account

#[test]
fn account_sends_the_ticket_from_this_transaction() {
    let (_d, opts) = no_cache_opts();
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::Account {
                ctx: ctx("admin"),
                ticket: Some(handle()),
            }),
            Act::Send(Step::Allowed),
        ],
    ]));
    let mut pam = FakePam::new("admin", vec![]).with_ticket(held("admin"));
    assert_eq!(run(Hook::Account, &mut pam, &jitd, &opts), Code::Success);
}

#[test]
fn account_without_ticket_is_denied_by_jitd() {
    let (_d, opts) = no_cache_opts();
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::Account {
                ctx: ctx("admin"),
                ticket: None,
            }),
            Act::Send(Step::Denied {
                message: "admin needs jit auth (ssh keys are not enough)".into(),
            }),
        ],
    ]));
    let mut pam = FakePam::new(
        "admin",
        vec![Ev::Show(Msg::Error, "ssh keys are not enough")],
    );
    assert_eq!(run(Hook::Account, &mut pam, &jitd, &opts), Code::PermDenied);
}

#[test]
fn account_ticket_for_another_user_is_not_sent() {
    let (_d, opts) = no_cache_opts();
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::Account {
                ctx: ctx("admin"),
                ticket: None,
            }),
            Act::Send(Step::Denied {
                message: String::new(),
            }),
        ],
    ]));
    let mut pam = FakePam::new("admin", vec![]).with_ticket(held("root"));
    assert_eq!(run(Hook::Account, &mut pam, &jitd, &opts), Code::PermDenied);
    assert!(pam.logged("ticket is for root"), "{:?}", pam.logs);
}

#[test]
fn account_not_shared_is_ignored() {
    let (_d, opts) = no_cache_opts();
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::Account {
                ctx: ctx("bob"),
                ticket: None,
            }),
            Act::Send(Step::NotShared),
        ],
    ]));
    let mut pam = FakePam::new("bob", vec![]);
    assert_eq!(run(Hook::Account, &mut pam, &jitd, &opts), Code::Ignore);
}

#[test]
fn account_with_ticket_and_jitd_gone_is_denied_even_without_cache() {
    let (_d, opts) = no_cache_opts();
    let mut pam = FakePam::new("admin", vec![Ev::Show(Msg::Error, UNREACHABLE_MSG)])
        .with_ticket(held("admin"));
    assert_eq!(
        run(Hook::Account, &mut pam, &Unreachable, &opts),
        Code::PermDenied
    );
}

#[test]
fn account_without_jitd_follows_the_cache() {
    let (_d, opts) = setup(Some(&["admin"]));
    let mut pam = FakePam::new("admin", vec![Ev::Show(Msg::Error, UNREACHABLE_MSG)]);
    assert_eq!(
        run(Hook::Account, &mut pam, &Unreachable, &opts),
        Code::PermDenied
    );
    let mut pam = FakePam::new("bob", vec![]);
    assert_eq!(
        run(Hook::Account, &mut pam, &Unreachable, &opts),
        Code::Ignore
    );
}

// ---------------------------------------------------------------------------------------------
// sessions

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: value.into(),
    }
}

#[test]
fn open_session_sets_the_environment() {
    let (_d, opts) = no_cache_opts();
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::SessionOpen {
                ctx: ctx("admin"),
                ticket: Some(handle()),
            }),
            Act::Send(Step::Session {
                env: vec![env("JIT_PERSON", "alice"), env("JIT_RESERVATION", "42")],
            }),
        ],
    ]));
    let mut pam = FakePam::new("admin", vec![]).with_ticket(held("admin"));
    assert_eq!(run(Hook::Open, &mut pam, &jitd, &opts), Code::Success);
    assert_eq!(
        pam.env,
        vec![
            ("JIT_PERSON".into(), "alice".into()),
            ("JIT_RESERVATION".into(), "42".into())
        ]
    );
}

/// The time the reservation has left comes as a message before the session's environment: it
/// is shown, then the session opens as usual.
#[test]
fn open_session_shows_jitds_message_then_sets_the_environment() {
    let (_d, opts) = no_cache_opts();
    let notice = "jit: your reservation of admin on web01 ends at 10:05:00 UTC (in 4m 58s).";
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::SessionOpen {
                ctx: ctx("admin"),
                ticket: Some(handle()),
            }),
            Act::Send(Step::Info {
                text: notice.into(),
            }),
            Act::Expect(Request::Continue),
            Act::Send(Step::Session {
                env: vec![env("JIT_PERSON", "alice")],
            }),
        ],
    ]));
    let mut pam =
        FakePam::new("admin", vec![Ev::Show(Msg::Info, notice)]).with_ticket(held("admin"));
    assert_eq!(run(Hook::Open, &mut pam, &jitd, &opts), Code::Success);
    assert_eq!(pam.env, vec![("JIT_PERSON".into(), "alice".into())]);
}

#[test]
fn open_session_with_a_bad_variable_sets_nothing_and_fails_closed() {
    for bad in [
        env("", "x"),
        env("A=B", "x"),
        env("1X", "x"),
        env("OK", "a\0b"),
    ] {
        let (_d, opts) = no_cache_opts();
        let jitd = FakeJitd::new(script(vec![
            hello(),
            vec![
                Act::Expect(Request::SessionOpen {
                    ctx: ctx("admin"),
                    ticket: Some(handle()),
                }),
                Act::Send(Step::Session {
                    env: vec![env("JIT_PERSON", "alice"), bad.clone()],
                }),
            ],
        ]));
        let mut pam = FakePam::new("admin", vec![Ev::Show(Msg::Error, UNREACHABLE_MSG)])
            .with_ticket(held("admin"));
        assert_eq!(
            run(Hook::Open, &mut pam, &jitd, &opts),
            Code::SessionErr,
            "{bad:?}"
        );
        assert!(pam.env.is_empty(), "{bad:?}: {:?}", pam.env);
    }
}

#[test]
fn open_session_denied_and_not_shared() {
    let (_d, opts) = no_cache_opts();
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::SessionOpen {
                ctx: ctx("admin"),
                ticket: None,
            }),
            Act::Send(Step::Denied {
                message: "no ticket".into(),
            }),
        ],
    ]));
    let mut pam = FakePam::new("admin", vec![Ev::Show(Msg::Error, "no ticket")]);
    assert_eq!(run(Hook::Open, &mut pam, &jitd, &opts), Code::SessionErr);
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::SessionOpen {
                ctx: ctx("bob"),
                ticket: None,
            }),
            Act::Send(Step::NotShared),
        ],
    ]));
    let mut pam = FakePam::new("bob", vec![]);
    assert_eq!(run(Hook::Open, &mut pam, &jitd, &opts), Code::Ignore);
    assert!(pam.env.is_empty());
}

#[test]
fn open_session_without_jitd_follows_the_cache() {
    let (_d, opts) = setup(Some(&["admin"]));
    let mut pam = FakePam::new("admin", vec![Ev::Show(Msg::Error, UNREACHABLE_MSG)]);
    assert_eq!(
        run(Hook::Open, &mut pam, &Unreachable, &opts),
        Code::SessionErr
    );
    let mut pam = FakePam::new("bob", vec![]);
    assert_eq!(run(Hook::Open, &mut pam, &Unreachable, &opts), Code::Ignore);
}

#[test]
fn close_session_tells_jitd() {
    let (_d, opts) = no_cache_opts();
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::SessionClose {
                ctx: ctx("admin"),
                ticket: Some(handle()),
            }),
            Act::Send(Step::Session { env: vec![] }),
        ],
    ]));
    let mut pam = FakePam::new("admin", vec![]).with_ticket(held("admin"));
    assert_eq!(run(Hook::Close, &mut pam, &jitd, &opts), Code::Success);
}

#[test]
fn close_session_never_blocks_logout_on_jitd() {
    let (_d, opts) = no_cache_opts();
    let mut pam = FakePam::new("admin", vec![]).with_ticket(held("admin"));
    assert_eq!(
        run(Hook::Close, &mut pam, &Unreachable, &opts),
        Code::Success
    );
    assert!(
        pam.logs.iter().any(|(l, m)| *l == Level::Err
            && m.contains("person alice")
            && m.contains("logout proceeds")),
        "{:?}",
        pam.logs
    );
    // jitd answering nonsense is no different.
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::SessionClose {
                ctx: ctx("admin"),
                ticket: Some(handle()),
            }),
            Act::Send(Step::Allowed),
        ],
    ]));
    let mut pam = FakePam::new("admin", vec![]).with_ticket(held("admin"));
    assert_eq!(run(Hook::Close, &mut pam, &jitd, &opts), Code::Success);
    // Without a ticket pam_jit opened no session here.
    let mut pam = FakePam::new("admin", vec![]);
    assert_eq!(
        run(Hook::Close, &mut pam, &Unreachable, &opts),
        Code::Ignore
    );
}

// ---------------------------------------------------------------------------------------------
// setcred, chauthtok

#[test]
fn setcred_succeeds_only_with_a_ticket_for_this_user() {
    let (_d, opts) = no_cache_opts();
    let mut pam = FakePam::new("admin", vec![]).with_ticket(held("admin"));
    assert_eq!(
        run(Hook::Setcred, &mut pam, &MustNotConnect, &opts),
        Code::Success
    );
    let mut pam = FakePam::new("admin", vec![]);
    assert_eq!(
        run(Hook::Setcred, &mut pam, &MustNotConnect, &opts),
        Code::Ignore
    );
    let mut pam = FakePam::new("admin", vec![]).with_ticket(held("root"));
    assert_eq!(
        run(Hook::Setcred, &mut pam, &MustNotConnect, &opts),
        Code::Ignore
    );
}

#[test]
fn chauthtok_refuses_shared_accounts_without_asking_jitd() {
    // A ticket is enough (no cache file here).
    let (_d, opts) = no_cache_opts();
    let mut pam = FakePam::new(
        "admin",
        vec![Ev::Show(Msg::Error, "admin is a shared account")],
    )
    .with_ticket(held("admin"));
    assert_eq!(
        run(Hook::Chauthtok, &mut pam, &MustNotConnect, &opts),
        Code::AuthtokErr
    );
    let mut pam = FakePam::new("bob", vec![]);
    assert_eq!(
        run(Hook::Chauthtok, &mut pam, &MustNotConnect, &opts),
        Code::Ignore
    );
}

#[test]
fn chauthtok_uses_the_cache() {
    let (_d, opts) = setup(Some(&["admin"]));
    let mut pam = FakePam::new(
        "admin",
        vec![Ev::Show(Msg::Error, "it has no password to change")],
    );
    assert_eq!(
        run(Hook::Chauthtok, &mut pam, &MustNotConnect, &opts),
        Code::AuthtokErr
    );
    let mut pam = FakePam::new("bob", vec![]);
    assert_eq!(
        run(Hook::Chauthtok, &mut pam, &MustNotConnect, &opts),
        Code::Ignore
    );
}

#[path = "relay_carry_tests.rs"]
mod carry;

#[path = "relay_break_glass_tests.rs"]
mod break_glass;

#[test]
fn user_and_service_names_are_escaped_in_syslog() {
    // PAM_USER is what the client typed (ssh's user name), PAM_SERVICE what the application set.
    let user = "bob\nJan  1 00:00:00 web01 jitd: forged\u{202e}nimda";
    let (_d, opts) = setup(Some(&["admin"]));
    let mut pam = FakePam::new(user, vec![]);
    pam.items[0] = (Item::Service, Some("su x=\u{2066}y"));
    let code = run(Hook::Auth, &mut pam, &Unreachable, &opts);
    assert_eq!(code, Code::Ignore);
    let line = pam
        .logs
        .iter()
        .map(|(_, l)| l)
        .find(|l| l.contains("(service "))
        .unwrap_or_else(|| panic!("no line names the service: {:?}", pam.logs));
    assert!(
        line.contains(
            "for \"bob\\x0aJan  1 00:00:00 web01 jitd: forged\\u{202e}nimda\" \
             (service \"su x=\\u{2066}y\")"
        ),
        "{line}"
    );
    for (_, l) in &pam.logs {
        assert!(
            !l.chars().any(jit_pam_proto::text::is_unprintable),
            "a log line keeps a control or format character: {l:?}"
        );
    }
}
