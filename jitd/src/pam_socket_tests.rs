//! Frame abuse against the real socket server: each bad client gets `Failed` (where a reply can
//! still be written) and a closed connection, and the daemon then serves a good client.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream as StdStream;
use std::sync::Arc;

use jit_proto::api::{Factor, LoginBegun, LoginVerified};
use jit_proto::pam::{LoginContext, PROTOCOL_VERSION, Request, Step};
use jit_proto::{PersonName, Secret};

use super::*;
use crate::driver::Settings;
use crate::guarded::GuardList;
use crate::testing::{Answer, FakeServer, Recorded};

struct Daemon {
    dir: tempfile::TempDir,
    server: Arc<FakeServer>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    fn start(limits: Limits) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/pam.sock");
        let server = Arc::new(FakeServer::new());
        let shared = Arc::new(GuardList::new(Default::default()));
        shared
            .set(jit_nss_cache::encode(&jit_nss_cache::CacheContents {
                guarded: vec![jit_nss_cache::CacheGuarded::account("admin", Some(60001))],
                ..Default::default()
            }))
            .unwrap();
        let settings = Settings {
            host: "web01".into(),
            prompt: "Verification code: ".into(),
            deny_as_prompt: BTreeSet::new(),
            push: crate::driver::PushSettings {
                pace: std::time::Duration::ZERO,
                ..Default::default()
            },
        };
        let core = Arc::new(Core::new(
            server.clone(),
            Arc::new(Recorded::default()),
            settings,
            shared,
        ));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (listener, _file) = bind(&path).unwrap();
                ready_tx.send(()).unwrap();
                serve(listener, core, limits, async {
                    let _ = stopped.await;
                })
                .await;
            });
        });
        ready_rx.recv().unwrap();
        Daemon {
            dir,
            server,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("run/pam.sock")
    }

    fn connect(&self) -> StdStream {
        let s = StdStream::connect(self.path()).unwrap();
        // Only so a broken test cannot hang; nothing asserts on time.
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s
    }

    /// A good client: hello, then a whole TOTP login.
    fn good_login(&self) {
        self.server
            .on_begin(Answer::Ok(LoginBegun::Challenge {
                attempt: "a1".into(),
                factor: Factor::Totp,
                expires_at: 0,
                push: None,
                notice: None,
            }))
            .on_verify(Answer::Ok(LoginVerified::Granted {
                person: PersonName::new("alice").unwrap(),
                reservation_id: 1,
                ends_in_secs: None,
                end_session_at_expiry: false,
            }));
        let mut s = self.connect();
        assert_eq!(
            exchange(&mut s, &hello()),
            Step::Hello {
                version: PROTOCOL_VERSION
            }
        );
        let step = exchange(&mut s, &Request::AuthStart { ctx: ctx("admin") });
        assert!(matches!(step, Step::Prompt { echo: false, .. }), "{step:?}");
        let step = exchange(
            &mut s,
            &Request::Answer {
                text: Secret::new("123456"),
            },
        );
        assert!(matches!(step, Step::Granted { .. }), "{step:?}");
        // Several requests on one connection are fine too.
        let step = exchange(&mut s, &Request::AuthStart { ctx: ctx("alice") });
        assert_eq!(step, Step::NotShared);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn limits() -> Limits {
    Limits {
        request: Duration::from_secs(10),
        answer: Duration::from_secs(60),
        max_connections: 8,
        per_source: 4,
    }
}

fn hello() -> Request {
    Request::Hello {
        version: PROTOCOL_VERSION,
    }
}

fn ctx(account: &str) -> LoginContext {
    LoginContext {
        account: account.into(),
        service: "login".into(),
        rhost: None,
        tty: None,
        ruser: None,
        uid: None,
        ssh_auth_info: None,
    }
}

fn exchange(s: &mut StdStream, req: &Request) -> Step {
    frame::write_msg(s, req).unwrap();
    frame::read_msg(s).unwrap()
}

/// The reply to raw bytes, and whether the daemon then closed the connection.
fn raw(d: &Daemon, bytes: &[u8], shutdown_write: bool) -> (Option<Step>, bool) {
    let mut s = d.connect();
    s.write_all(bytes).unwrap();
    if shutdown_write {
        s.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let step = frame::read_msg::<_, Step>(&mut s).ok();
    let mut rest = Vec::new();
    let closed = matches!(s.read_to_end(&mut rest), Ok(0));
    (step, closed)
}

fn failed(step: Option<Step>) -> String {
    match step {
        Some(Step::Failed { message }) => message,
        other => panic!("expected a failed step, got {other:?}"),
    }
}

#[test]
fn bad_frames_get_failed_and_the_daemon_goes_on() {
    let d = Daemon::start(limits());
    d.good_login();

    let mut garbage = 10u32.to_be_bytes().to_vec();
    garbage.extend_from_slice(b"not json!!");
    let (step, closed) = raw(&d, &garbage, false);
    assert!(failed(step).contains("not a valid message"));
    assert!(closed);

    let (step, closed) = raw(&d, &u32::MAX.to_be_bytes(), false);
    assert!(failed(step).contains("over the 65536-byte limit"));
    assert!(closed);

    let (step, closed) = raw(&d, &0u32.to_be_bytes(), false);
    assert!(failed(step).contains("empty frame"));
    assert!(closed);

    // A header promising 100 bytes, 10 bytes, then the client stops sending.
    let mut truncated = 100u32.to_be_bytes().to_vec();
    truncated.extend_from_slice(b"{\"type\":\"h");
    let (step, closed) = raw(&d, &truncated, true);
    assert!(failed(step).contains("truncated"));
    assert!(closed);

    // Half a header.
    let (step, closed) = raw(&d, &[0, 0], true);
    assert!(failed(step).contains("truncated"));
    assert!(closed);

    // Valid JSON, unknown field.
    let bad = br#"{"type":"hello","version":2,"extra":true}"#;
    let mut frame_bytes = (bad.len() as u32).to_be_bytes().to_vec();
    frame_bytes.extend_from_slice(bad);
    let (step, closed) = raw(&d, &frame_bytes, false);
    assert!(failed(step).contains("unknown field"));
    assert!(closed);

    // The wrong version.
    let mut s = d.connect();
    let old = PROTOCOL_VERSION - 1;
    let step = exchange(&mut s, &Request::Hello { version: old });
    let msg = failed(Some(step));
    assert!(
        msg.contains(&format!("version {old}"))
            && msg.contains(&format!("version {PROTOCOL_VERSION}")),
        "{msg}"
    );

    d.good_login();
}

#[test]
fn a_silent_client_times_out_with_a_reply() {
    let d = Daemon::start(Limits {
        request: Duration::from_secs(1),
        ..limits()
    });
    let mut s = d.connect();
    let step = frame::read_msg::<_, Step>(&mut s).ok();
    assert!(failed(step).contains("timed out"));
    d.good_login();
}

#[test]
fn connections_over_the_cap_are_refused_and_served_again_later() {
    let d = Daemon::start(Limits {
        max_connections: 1,
        ..limits()
    });
    let mut held = d.connect();
    assert_eq!(
        exchange(&mut held, &hello()),
        Step::Hello {
            version: PROTOCOL_VERSION
        }
    );
    let mut s = d.connect();
    let step = frame::read_msg::<_, Step>(&mut s).ok();
    assert!(failed(step).contains("busy"));
    drop(held);
    // The slot frees when the daemon notices the close: poll for it.
    let mut ok = false;
    for _ in 0..200 {
        let mut s = d.connect();
        frame::write_msg(&mut s, &hello()).unwrap();
        if let Ok(Step::Hello { .. }) = frame::read_msg::<_, Step>(&mut s) {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ok, "the slot never came back");
}

#[test]
fn a_non_root_client_is_refused() {
    let d = Daemon::start(limits());
    let run = d.dir.path().join("run");
    let reply = jit_sandbox::hello_as(&d.path(), &[d.dir.path(), &run], 65534, PROTOCOL_VERSION);
    let step: Step = serde_json::from_str(&reply).unwrap();
    let msg = failed(Some(step));
    assert!(
        msg.contains("root (uid 0) only") && msg.contains("65534"),
        "{msg}"
    );
    d.good_login();
}

#[test]
fn bind_replaces_a_stale_socket_refuses_a_live_one_and_other_files_and_is_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new/pam.sock");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (l, _file) = bind(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o755
        );
        // A second jitd while the first listens: refused, and the first one's socket is kept.
        let err = bind(&path).unwrap_err().to_string();
        assert!(err.contains("another jitd is already serving"), "{err}");
        assert!(ensure_not_in_use(&path).is_err());
        std::os::unix::net::UnixStream::connect(&path).expect("the first jitd still listens");
        drop(l);
        // The socket file stays behind, as after a crash: bind again.
        assert!(path.exists());
        let (_l, first) = bind(&path).unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let err = bind(&file).unwrap_err().to_string();
        assert!(err.contains("is not a socket"), "{err}");
        // A jitd removes its own socket when it stops, never one that a later jitd put there.
        drop(_l);
        std::fs::remove_file(&path).unwrap();
        let (_later, _later_file) = bind(&path).unwrap();
        first.remove();
        assert!(path.exists(), "removed a later jitd's socket");
        _later_file.remove();
        assert!(!path.exists());
    });
}

fn challenge() -> Answer<LoginBegun> {
    Answer::Ok(LoginBegun::Challenge {
        attempt: "a1".into(),
        factor: Factor::Totp,
        expires_at: 0,
        push: None,
        notice: None,
    })
}

/// A connection past the hello that asked for a login to admin from `rhost`: its first step.
fn prompt_from(d: &Daemon, rhost: &str) -> (StdStream, Step) {
    d.server.on_begin(challenge());
    let mut s = d.connect();
    assert!(matches!(exchange(&mut s, &hello()), Step::Hello { .. }));
    let login = LoginContext {
        service: "sshd".into(),
        rhost: Some(rhost.into()),
        ..ctx("admin")
    };
    let step = exchange(&mut s, &Request::AuthStart { ctx: login });
    (s, step)
}

#[test]
fn prompts_waiting_from_one_source_are_limited_and_others_are_served() {
    let d = Daemon::start(limits());
    let mut held = Vec::new();
    for _ in 0..4 {
        let (s, step) = prompt_from(&d, "192.0.2.7");
        assert!(matches!(step, Step::Prompt { echo: false, .. }), "{step:?}");
        held.push(s);
    }
    // A fifth from the same address is refused with a reason; its connection ends.
    let (mut s, step) = prompt_from(&d, "192.0.2.7");
    match step {
        Step::Denied { message } => assert!(
            message.contains("Too many logins are waiting for an answer from here (addr:192.0.2.7"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(frame::read_msg::<_, Step>(&mut s).is_err(), "closed");
    // Another address, and a login to an account jit does not guard, are served as ever.
    let (_other, step) = prompt_from(&d, "192.0.2.8");
    assert!(matches!(step, Step::Prompt { .. }), "{step:?}");
    d.good_login();
    // One prompt ends: its source may open another.
    drop(held.pop());
    let mut ok = false;
    for _ in 0..200 {
        let (s, step) = prompt_from(&d, "192.0.2.7");
        if matches!(step, Step::Prompt { .. }) {
            held.push(s);
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ok, "the prompt's slot never came back");
}

#[test]
fn one_ordinary_user_cannot_take_the_connections_root_needs() {
    let slots = Slots::new(&Limits {
        max_connections: 10,
        ..limits()
    });
    // carol (uid 1500, behind setuid su) gets four connections, not a fifth.
    let carol: Vec<_> = (0..4)
        .map(|_| slots.connection(Some(1500)).unwrap())
        .collect();
    let Err(Refused(msg)) = slots.connection(Some(1500)) else {
        panic!("a fifth connection for uid 1500")
    };
    assert!(msg.contains("from uid:1500 (4 at once)"), "{msg}");
    // Other users share half of the connections with her; a process that left no trace
    // counts as one of them.
    let others = [slots.connection(Some(1501)).unwrap()];
    let Err(Refused(msg)) = slots.connection(None) else {
        panic!("ordinary users past half of the connections")
    };
    assert!(msg.contains("busy (5 logins of ordinary users"), "{msg}");
    // sshd, login and root (real uid 0) have the other half.
    let root: Vec<_> = (0..5).map(|_| slots.connection(Some(0)).unwrap()).collect();
    assert_eq!(slots.in_use().0, 10);
    assert!(slots.connection(Some(0)).is_err(), "all ten in use");
    drop(carol);
    drop(others);
    drop(root);
    assert_eq!(slots.in_use(), (0, 0));
    // Prompts: at most four per source, given back when they end.
    let p: Vec<_> = (0..4).map(|_| slots.prompt("tty:pts/1").unwrap()).collect();
    assert!(slots.prompt("tty:pts/1").is_err());
    let q = slots.prompt("tty:tty1").unwrap();
    assert_eq!(slots.in_use(), (0, 5));
    drop((p, q));
    assert_eq!(slots.in_use(), (0, 0));
}
