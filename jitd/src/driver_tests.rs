//! The driver against a scripted server: each case of the policy in the module docs.

use std::sync::Arc;

use jit_proto::api::{ErrorCode, Factor};
use jit_proto::{AccountName, PersonName, Secret};

use super::*;
use crate::peer::ProcId;
use crate::testing::{Answer, Call, FakeServer, Recorded, guarded_contents};

const NOW: i64 = 1_800_000_000;

struct Rig {
    server: Arc<FakeServer>,
    record: Arc<Recorded>,
    core: Arc<Core<FakeServer, Arc<Recorded>>>,
}

impl Rig {
    fn new() -> Rig {
        let server = Arc::new(FakeServer::new());
        let record = Arc::new(Recorded::default());
        let guarded = Arc::new(GuardList::new(Default::default()));
        guarded
            .set(jit_nss_cache::encode(&guarded_contents()))
            .unwrap();
        let settings = Settings {
            host: "web01".into(),
            prompt: "Verification code: ".into(),
            deny_as_prompt: BTreeSet::from(["sshd".to_string()]),
            push: crate::driver::PushSettings {
                pace: std::time::Duration::ZERO,
                ..Default::default()
            },
        };
        let core = Arc::new(Core::new(server.clone(), record.clone(), settings, guarded));
        Rig {
            server,
            record,
            core,
        }
    }

    /// A conversation past the hello, with sshd's conversation child (whose parent is the
    /// monitor) on the other end.
    async fn conv(&self) -> Conversation<FakeServer, Arc<Recorded>> {
        self.conv_as(SSHD_CHILD).await
    }

    /// A conversation past the hello, with `caller` on the other end.
    async fn conv_as(&self, caller: Caller) -> Conversation<FakeServer, Arc<Recorded>> {
        let mut c = Conversation::new(self.core.clone(), caller);
        assert_eq!(
            c.handle(hello(), NOW).await,
            Step::Hello {
                version: PROTOCOL_VERSION
            }
        );
        c
    }

    /// Every scripted answer was used.
    fn done(&self) {
        assert_eq!(
            self.server.unused(),
            (0, 0, 0),
            "scripted answers left over"
        );
    }
}

fn hello() -> Request {
    Request::Hello {
        version: PROTOCOL_VERSION,
    }
}

fn ctx(account: &str, service: &str) -> LoginContext {
    LoginContext {
        account: account.into(),
        service: service.into(),
        rhost: Some("192.0.2.10".into()),
        tty: Some("ssh".into()),
        ruser: None,
        uid: None,
        ssh_auth_info: None,
    }
}

fn challenge() -> Answer<LoginBegun> {
    Answer::Ok(LoginBegun::Challenge {
        attempt: "att-1".into(),
        factor: Factor::Totp,
        expires_at: NOW + 300,
        push: None,
        notice: None,
    })
}

fn granted() -> Answer<LoginVerified> {
    Answer::Ok(LoginVerified::Granted {
        person: PersonName::new("alice").unwrap(),
        reservation_id: 7,
        ends_in_secs: None,
        end_session_at_expiry: false,
    })
}

const MONITOR_PROC: ProcId = ProcId {
    pid: 100,
    start: 4000,
};
/// sshd's keyboard-interactive child: auth and account run here.
const SSHD_CHILD: Caller = Caller {
    process: Some(ProcId {
        pid: 200,
        start: 5000,
    }),
    parent: Some(MONITOR_PROC),
    real_uid: Some(0),
};
/// sshd's monitor, the child's parent: the sessions open and close here.
const SSHD_MONITOR: Caller = Caller {
    process: Some(MONITOR_PROC),
    parent: Some(ProcId { pid: 1, start: 1 }),
    real_uid: Some(0),
};

/// The ticket in a granted step, for alice.
fn granted_ticket(step: Step) -> Ticket {
    match step {
        Step::Granted { ticket, person } if person == "alice" => ticket,
        other => panic!("expected a grant for alice, got {other:?}"),
    }
}

fn answer(code: &str) -> Request {
    Request::Answer {
        text: Secret::new(code),
    }
}

fn denied_text(step: &Step) -> &str {
    match step {
        Step::Denied { message } => message,
        other => panic!("expected denied, got {other:?}"),
    }
}

fn failed_text(step: &Step) -> &str {
    match step {
        Step::Failed { message } => message,
        other => panic!("expected failed, got {other:?}"),
    }
}

#[tokio::test]
async fn hello_must_come_first_with_our_version() {
    let rig = Rig::new();
    let mut c = Conversation::new(rig.core.clone(), SSHD_CHILD);
    let step = c.handle(Request::Hello { version: 99 }, NOW).await;
    let msg = failed_text(&step);
    assert!(
        msg.contains("99") && msg.contains(&PROTOCOL_VERSION.to_string()),
        "{msg}"
    );
    let mut c = Conversation::new(rig.core.clone(), SSHD_CHILD);
    let step = c
        .handle(
            Request::AuthStart {
                ctx: ctx("admin", "login"),
            },
            NOW,
        )
        .await;
    assert!(failed_text(&step).contains("first message must be hello"));
    assert!(rig.server.calls().is_empty());
}

#[tokio::test]
async fn names_that_are_not_shared_never_reach_the_server() {
    let rig = Rig::new();
    let long = "a".repeat(33);
    for name in [
        "alice",
        "nobody",
        "Admin",
        "ad min",
        "admin\n",
        "",
        "../admin",
        long.as_str(),
        "é",
    ] {
        let mut c = rig.conv().await;
        assert_eq!(
            c.handle(
                Request::AuthStart {
                    ctx: ctx(name, "sshd")
                },
                NOW
            )
            .await,
            Step::NotShared,
            "{name:?}"
        );
        let req = Request::Account {
            ctx: ctx(name, "sshd"),
            ticket: None,
        };
        assert_eq!(c.handle(req, NOW).await, Step::NotShared, "{name:?}");
        let req = Request::SessionOpen {
            ctx: ctx(name, "sshd"),
            ticket: None,
        };
        assert_eq!(c.handle(req, NOW).await, Step::NotShared, "{name:?}");
        let req = Request::SessionClose {
            ctx: ctx(name, "sshd"),
            ticket: None,
        };
        assert_eq!(c.handle(req, NOW).await, Step::NotShared, "{name:?}");
    }
    assert!(rig.server.calls().is_empty());
    assert!(rig.record.decisions().is_empty() && rig.record.events().is_empty());
}

/// No list yet (jitd has never reached the server and has no saved copy): uid 0 and the
/// always-guarded names are refused at every stage, with a message and a record; every other
/// name is left alone. Nothing asks the server.
#[tokio::test]
async fn without_a_list_uid_0_and_always_guarded_names_are_refused() {
    let rig = Rig::new();
    let core = Arc::new(Core::new(
        rig.server.clone(),
        rig.record.clone(),
        rig.core.settings.clone(),
        Arc::new(GuardList::new(jit_nss_cache::Joined {
            always_guarded: vec!["root".into(), "deploy".into()],
        })),
    ));
    let mut c = Conversation::new(core, SSHD_CHILD);
    c.handle(hello(), NOW).await;
    let with_uid = |name: &str, uid| LoginContext {
        uid,
        ..ctx(name, "login")
    };
    for (login, refused) in [
        (with_uid("root", Some(0)), true),
        (with_uid("toor", Some(0)), true),
        (with_uid("deploy", None), true),
        (with_uid("admin", Some(60001)), false),
        (with_uid("alice", Some(1000)), false),
    ] {
        let name = login.account.clone();
        let steps = [
            c.handle(Request::AuthStart { ctx: login.clone() }, NOW)
                .await,
            c.handle(
                Request::Account {
                    ctx: login.clone(),
                    ticket: None,
                },
                NOW,
            )
            .await,
            c.handle(
                Request::SessionOpen {
                    ctx: login.clone(),
                    ticket: None,
                },
                NOW,
            )
            .await,
        ];
        for step in steps {
            if refused {
                let msg = denied_text(&step);
                assert!(
                    msg.contains("jit does not know the shared accounts of web01 yet")
                        && msg.contains(&format!("logins to {name} are refused")),
                    "{name}: {msg}"
                );
            } else {
                assert_eq!(step, Step::NotShared, "{name}");
            }
        }
    }
    assert!(rig.server.calls().is_empty());
    let refused: Vec<(String, String)> = rig
        .record
        .events()
        .iter()
        .map(|e| (e.account.to_string(), e.action.clone()))
        .collect();
    assert_eq!(refused.len(), 9, "{refused:?}");
    assert!(refused.contains(&("toor".into(), "login.denied".into())));
    assert!(
        rig.record
            .decisions()
            .iter()
            .all(|d| d.reason.contains("no list of shared accounts"))
    );
}

/// A second uid-0 name is a login to root, and a name that differs in case but resolves to a
/// shared account's uid is a login to that account: the server is asked about the account.
#[tokio::test]
async fn other_names_of_a_guarded_uid_are_logins_to_its_account() {
    let rig = Rig::new();
    for (name, uid, account) in [
        ("toor", Some(0), "root"),
        ("r00t", Some(0), "root"),
        ("Admin", Some(60001), "admin"),
        ("ADMIN", Some(60001), "admin"),
    ] {
        rig.server.on_begin(Answer::Ok(LoginBegun::Denied {
            reason: DenyReason::NoReservation,
            message: format!("{account} is not reserved on web01."),
        }));
        let mut c = rig.conv().await;
        let login = LoginContext {
            uid,
            ..ctx(name, "login")
        };
        let step = c.handle(Request::AuthStart { ctx: login }, NOW).await;
        assert!(
            denied_text(&step).contains(&format!("{account} is not reserved")),
            "{name}: {step:?}"
        );
        let Some(Call::Begin(begin)) = rig.server.calls().pop() else {
            panic!("{name}: the server was not asked");
        };
        assert_eq!(begin.account.as_str(), account, "{name}");
    }
    // Without the uid (the name does not resolve), "Admin" is not a shared account's name.
    let mut c = rig.conv().await;
    let step = c
        .handle(
            Request::AuthStart {
                ctx: ctx("Admin", "login"),
            },
            NOW,
        )
        .await;
    assert_eq!(step, Step::NotShared);
    rig.done();
}

#[tokio::test]
async fn happy_path_grants_a_ticket_that_opens_account_and_session() {
    let rig = Rig::new();
    rig.server.on_begin(challenge()).on_verify(granted());
    let mut c = rig.conv().await;
    let step = c
        .handle(
            Request::AuthStart {
                ctx: ctx("admin", "sshd"),
            },
            NOW,
        )
        .await;
    assert_eq!(
        step,
        Step::Prompt {
            echo: false,
            text: "Verification code: ".into()
        }
    );
    assert!(c.awaiting_person());
    let ticket = granted_ticket(c.handle(answer("123456"), NOW).await);
    assert!(!c.awaiting_person());
    assert_eq!(
        rig.server.calls(),
        [
            Call::Begin(LoginBegin {
                account: AccountName::new("admin").unwrap(),
                origin: LoginOrigin {
                    service: "sshd".into(),
                    rhost: Some("192.0.2.10".into()),
                    tty: Some("ssh".into()),
                    ruser: None,
                    ssh_key: None,
                    // sshd runs as root: the remote address it names is the source.
                    source: Some("addr:192.0.2.10".into()),
                },
            }),
            Call::Verify("att-1".into(), "123456".into()),
        ]
    );

    // The account and session stages come on new connections, as pam_jit opens one per stage:
    // the account stage from the child that authenticated, the sessions from its parent.
    let mut c = rig.conv().await;
    let req = Request::Account {
        ctx: ctx("admin", "sshd"),
        ticket: Some(ticket.clone()),
    };
    assert_eq!(c.handle(req, NOW + 1).await, Step::Allowed);
    let mut c = rig.conv_as(SSHD_MONITOR).await;
    let req = Request::SessionOpen {
        ctx: ctx("admin", "sshd"),
        ticket: Some(ticket.clone()),
    };
    assert_eq!(
        c.handle(req, NOW + 2).await,
        Step::Session {
            env: vec![EnvVar {
                name: "JIT_PERSON".into(),
                value: "alice".into()
            }]
        }
    );
    let req = Request::SessionClose {
        ctx: ctx("admin", "sshd"),
        ticket: Some(ticket),
    };
    assert_eq!(c.handle(req, NOW + 3).await, Step::Session { env: vec![] });

    let events = rig.record.events();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["session.open", "session.close"]);
    for e in &events {
        assert_eq!(e.person.as_ref().map(|p| p.as_str()), Some("alice"));
        assert_eq!(e.reservation_id, Some(7));
        assert_eq!(e.attempt.as_deref(), Some("att-1"));
        assert_eq!(e.result, AuditResult::Ok);
        assert_eq!(e.origin.service, "sshd");
    }
    assert_ne!(events[0].id, events[1].id);
    let results: Vec<&str> = rig.record.decisions().iter().map(|d| d.result).collect();
    assert_eq!(
        results,
        ["challenge", "granted", "allowed", "open", "close"]
    );
    for d in rig.record.decisions() {
        assert!(
            !d.line().contains("123456"),
            "a code reached the log: {}",
            d.line()
        );
        assert_eq!(d.host, "web01");
    }
    rig.done();
}

/// The grant says how long the reservation has left and that the session ends with it: the
/// session's open tells the person (a message before the session step), and the session is
/// followed, led by the monitor that opened it, until it closes.
#[tokio::test]
async fn a_session_is_told_its_time_left_and_followed_until_it_closes() {
    let rig = Rig::new();
    rig.server
        .on_begin(challenge())
        .on_verify(Answer::Ok(LoginVerified::Granted {
            person: PersonName::new("alice").unwrap(),
            reservation_id: 7,
            ends_in_secs: Some(290),
            end_session_at_expiry: true,
        }));
    let mut c = rig.conv().await;
    let start = Request::AuthStart {
        ctx: ctx("admin", "sshd"),
    };
    c.handle(start, NOW).await;
    let ticket = granted_ticket(c.handle(answer("123456"), NOW).await);
    let mut c = rig.conv_as(SSHD_MONITOR).await;
    let open = Request::SessionOpen {
        ctx: ctx("admin", "sshd"),
        ticket: Some(ticket.clone()),
    };
    let Step::Info { text } = c.handle(open, NOW + 2).await else {
        panic!("expected the time left first");
    };
    assert!(
        text.contains("your reservation of admin on web01 ends at")
            && text.contains("(in 4m 48s); this session will be ended then")
            && text.contains("jitctl extend admin --host web01 --for 10m"),
        "{text}"
    );
    assert_eq!(
        c.handle(Request::Continue, NOW + 2).await,
        Step::Session {
            env: vec![EnvVar {
                name: "JIT_PERSON".into(),
                value: "alice".into()
            }]
        }
    );
    let tracked = rig.core.sessions.all();
    assert_eq!(tracked.len(), 1);
    let t = &tracked[0];
    assert_eq!(
        (t.attempt.as_str(), t.person.as_str(), t.reservation_id),
        ("att-1", "alice", 7)
    );
    assert_eq!((t.ends_at, t.end_session), (Some(NOW + 290), true));
    assert_eq!(t.leader, Some(MONITOR_PROC));
    assert_eq!(t.tty.as_deref(), Some("ssh"));
    let close = Request::SessionClose {
        ctx: ctx("admin", "sshd"),
        ticket: Some(ticket),
    };
    assert_eq!(
        c.handle(close, NOW + 60).await,
        Step::Session { env: vec![] }
    );
    assert!(rig.core.sessions.is_empty());
    rig.done();
}

/// After a message, only `continue` makes sense.
#[tokio::test]
async fn after_the_time_left_only_continue_is_accepted() {
    let rig = Rig::new();
    rig.server
        .on_begin(challenge())
        .on_verify(Answer::Ok(LoginVerified::Granted {
            person: PersonName::new("alice").unwrap(),
            reservation_id: 7,
            ends_in_secs: Some(100),
            end_session_at_expiry: false,
        }));
    let mut c = rig.conv().await;
    let start = Request::AuthStart {
        ctx: ctx("admin", "su"),
    };
    c.handle(start, NOW).await;
    let ticket = granted_ticket(c.handle(answer("123456"), NOW).await);
    let open = Request::SessionOpen {
        ctx: ctx("admin", "su"),
        ticket: Some(ticket),
    };
    let Step::Info { text } = c.handle(open.clone(), NOW).await else {
        panic!("expected the time left first");
    };
    assert!(
        text.ends_with("ends at 2027-01-15 08:01:40 UTC (in 1m 40s)."),
        "{text}"
    );
    let step = c.handle(open, NOW).await;
    assert!(
        failed_text(&step).contains("expected continue after a message"),
        "{step:?}"
    );
}

#[tokio::test]
async fn a_refusal_is_a_plain_denial_except_for_deny_as_prompt_services() {
    let msg = "The code is not valid for the current reservation of admin on web01.";
    let wrong = || {
        Answer::Ok(LoginVerified::Denied {
            reason: DenyReason::WrongCode,
            message: msg.into(),
        })
    };
    let rig = Rig::new();
    rig.server.on_begin(challenge()).on_verify(wrong());
    let mut c = rig.conv().await;
    c.handle(
        Request::AuthStart {
            ctx: ctx("admin", "login"),
        },
        NOW,
    )
    .await;
    assert_eq!(
        c.handle(answer("000000"), NOW).await,
        Step::Denied {
            message: msg.into()
        }
    );

    // sshd: the message comes as a prompt, its Enter ends the auth with an empty denial.
    rig.server.on_begin(challenge()).on_verify(wrong());
    let mut c = rig.conv().await;
    c.handle(
        Request::AuthStart {
            ctx: ctx("admin", "sshd"),
        },
        NOW,
    )
    .await;
    assert_eq!(
        c.handle(answer("000000"), NOW).await,
        Step::Prompt {
            echo: true,
            text: format!("{msg}\n(press Enter)")
        }
    );
    assert!(c.awaiting_person());
    assert_eq!(
        c.handle(answer(""), NOW).await,
        Step::Denied {
            message: String::new()
        }
    );
    let denied = rig
        .record
        .decisions()
        .iter()
        .filter(|d| d.result == "denied")
        .count();
    assert_eq!(denied, 2);
    assert!(
        rig.record
            .decisions()
            .iter()
            .any(|d| d.reason.starts_with("wrong_code: "))
    );
    // The server audits its own refusals: nothing for the local queue.
    assert!(rig.record.events().is_empty());
    rig.done();
}

#[tokio::test]
async fn no_reservation_is_denied_before_any_prompt() {
    let rig = Rig::new();
    let msg = "admin is not reserved on web01. Reserve it first: jitctl reserve admin --host web01";
    rig.server.on_begin(Answer::Ok(LoginBegun::Denied {
        reason: DenyReason::NoReservation,
        message: msg.into(),
    }));
    let mut c = rig.conv().await;
    let step = c
        .handle(
            Request::AuthStart {
                ctx: ctx("admin", "su"),
            },
            NOW,
        )
        .await;
    assert_eq!(
        step,
        Step::Denied {
            message: msg.into()
        }
    );
    rig.done();
}

#[tokio::test]
async fn the_server_is_authoritative_about_not_shared() {
    let rig = Rig::new();
    rig.server.on_begin(Answer::Ok(LoginBegun::Denied {
        reason: DenyReason::NotShared,
        message: String::new(),
    }));
    let mut c = rig.conv().await;
    assert_eq!(
        c.handle(
            Request::AuthStart {
                ctx: ctx("root", "su")
            },
            NOW
        )
        .await,
        Step::NotShared
    );
    rig.done();
}

#[tokio::test]
async fn server_unreachable_fails_closed_and_is_queued() {
    let rig = Rig::new();
    rig.server.on_begin(Answer::Unreachable);
    let mut c = rig.conv().await;
    let step = c
        .handle(
            Request::AuthStart {
                ctx: ctx("admin", "login"),
            },
            NOW,
        )
        .await;
    let Step::Denied { message } = step else {
        panic!("{step:?}")
    };
    assert!(
        message.starts_with("the jit server cannot be reached; logins to admin are refused"),
        "{message}"
    );
    // At verify time too, and for sshd as a prompt first.
    rig.server
        .on_begin(challenge())
        .on_verify(Answer::Unreachable);
    let mut c = rig.conv().await;
    c.handle(
        Request::AuthStart {
            ctx: ctx("admin", "sshd"),
        },
        NOW,
    )
    .await;
    let step = c.handle(answer("123456"), NOW).await;
    let Step::Prompt { echo: true, text } = step else {
        panic!("{step:?}")
    };
    assert!(
        text.contains("cannot be reached") && text.ends_with("\n(press Enter)"),
        "{text}"
    );
    assert_eq!(
        c.handle(answer(""), NOW).await,
        Step::Denied {
            message: String::new()
        }
    );

    let events = rig.record.events();
    assert_eq!(events.len(), 2);
    for e in &events {
        assert_eq!(e.action, "login.denied");
        assert_eq!(e.result, AuditResult::Denied);
        assert!(
            e.reason
                .as_deref()
                .unwrap_or("")
                .starts_with("server_unreachable"),
            "{e:?}"
        );
        assert_eq!(e.at, NOW);
    }
    assert_eq!(events[1].attempt.as_deref(), Some("att-1"));
    rig.done();
}

#[tokio::test]
async fn a_server_error_is_a_generic_denial() {
    let rig = Rig::new();
    rig.server.on_begin(Answer::Api(
        ErrorCode::Unauthorized,
        "unknown or revoked credential",
    ));
    let mut c = rig.conv().await;
    let step = c
        .handle(
            Request::AuthStart {
                ctx: ctx("admin", "login"),
            },
            NOW,
        )
        .await;
    let Step::Denied { message } = step else {
        panic!("{step:?}")
    };
    assert!(
        message.contains("could not check this login to admin"),
        "{message}"
    );
    assert!(
        rig.record.decisions()[0]
            .reason
            .contains("revoked credential")
    );
    assert_eq!(rig.record.events()[0].action, "login.denied");
    rig.done();
}

#[tokio::test]
async fn the_prompt_never_names_the_holder() {
    let rig = Rig::new();
    rig.server
        .on_begin(challenge())
        .on_verify(Answer::Ok(LoginVerified::Denied {
            reason: DenyReason::WrongCode,
            message: "The code is not valid for the current reservation of admin on web01.".into(),
        }));
    let mut c = rig.conv().await;
    let Step::Prompt { text, .. } = c
        .handle(
            Request::AuthStart {
                ctx: ctx("admin", "login"),
            },
            NOW,
        )
        .await
    else {
        panic!()
    };
    assert_eq!(text, "Verification code: ");
    let step = c.handle(answer("111111"), NOW).await;
    assert!(!format!("{step:?}").contains("bob"));
    rig.done();
}

/// Every way a ticket can be wrong is refused in the account and session-open stages, with
/// the reason in the log and the audit (never the ticket), and the person is told how to log in.
#[tokio::test]
async fn account_without_a_ticket_jitd_granted_is_denied_and_queued() {
    let rig = Rig::new();
    // Grant alice a ticket first.
    rig.server.on_begin(challenge()).on_verify(granted());
    let mut c = rig.conv().await;
    c.handle(
        Request::AuthStart {
            ctx: ctx("admin", "sshd"),
        },
        NOW,
    )
    .await;
    let ticket = granted_ticket(c.handle(answer("123456"), NOW).await);
    let sibling = Caller {
        process: Some(ProcId {
            pid: 201,
            start: 5001,
        }),
        parent: Some(MONITOR_PROC),
        real_uid: Some(0),
    };
    let cases: Vec<(LoginContext, Option<Ticket>, Caller, i64, &str)> = vec![
        (
            ctx("admin", "sshd"),
            None,
            SSHD_CHILD,
            NOW,
            "no verification code",
        ),
        (
            ctx("admin", "sshd"),
            Some(Ticket::new("0123456789abcdef0123456789abcdef")),
            SSHD_CHILD,
            NOW,
            "unknown",
        ),
        (
            ctx("root", "sshd"),
            Some(ticket.clone()),
            SSHD_CHILD,
            NOW,
            "another login name",
        ),
        (
            ctx("admin", "su"),
            Some(ticket.clone()),
            SSHD_CHILD,
            NOW,
            "another PAM service",
        ),
        (
            ctx("admin", "sshd"),
            Some(ticket.clone()),
            sibling,
            NOW,
            "a process other than",
        ),
        (
            ctx("admin", "sshd"),
            Some(ticket.clone()),
            SSHD_CHILD,
            NOW + crate::tickets::WINDOW,
            "more than 2 minutes old",
        ),
    ];
    for (login, t, caller, now, reason) in cases {
        let mut c = rig.conv_as(caller).await;
        let req = Request::Account {
            ctx: login.clone(),
            ticket: t.clone(),
        };
        let step = c.handle(req, now).await;
        let Step::Denied { message } = step else {
            panic!("{reason}: {step:?}")
        };
        assert!(
            message.contains("keyboard-interactive") && message.contains("public key"),
            "{message}"
        );
        let last = rig.record.decisions().pop().unwrap();
        assert!(last.reason.contains(reason), "{reason}: {}", last.reason);
        assert!(!last.line().contains(ticket.expose()));
        let req = Request::SessionOpen {
            ctx: login,
            ticket: t,
        };
        assert!(matches!(c.handle(req, now).await, Step::Denied { .. }));
    }
    let events = rig.record.events();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == "account.denied")
            .count(),
        6
    );
    assert_eq!(
        events.iter().filter(|e| e.action == "session.open").count(),
        6
    );
    assert!(
        events
            .iter()
            .all(|e| e.result == AuditResult::Denied && e.person.is_none())
    );
    // The real ticket still works, once, from the process that authenticated.
    let mut c = rig.conv().await;
    let req = Request::Account {
        ctx: ctx("admin", "sshd"),
        ticket: Some(ticket.clone()),
    };
    assert_eq!(c.handle(req.clone(), NOW + 60).await, Step::Allowed);
    assert!(matches!(c.handle(req, NOW + 61).await, Step::Denied { .. }));
    let last = rig.record.decisions().pop().unwrap();
    assert!(last.reason.contains("already used"), "{}", last.reason);
    rig.done();
}

#[tokio::test]
async fn out_of_order_requests_fail_the_connection() {
    let rig = Rig::new();
    let mut c = rig.conv().await;
    assert!(
        failed_text(&c.handle(answer("123456"), NOW).await).contains("no prompt is outstanding")
    );
    let mut c = rig.conv().await;
    assert!(failed_text(&c.handle(Request::Continue, NOW).await).contains("continue"));
    let mut c = rig.conv().await;
    assert!(failed_text(&c.handle(hello(), NOW).await).contains("hello"));

    rig.server.on_begin(challenge());
    let mut c = rig.conv().await;
    c.handle(
        Request::AuthStart {
            ctx: ctx("admin", "login"),
        },
        NOW,
    )
    .await;
    let step = c
        .handle(
            Request::AuthStart {
                ctx: ctx("admin", "login"),
            },
            NOW,
        )
        .await;
    assert!(failed_text(&step).contains("expected the answer to the prompt"));
    rig.done();
}

#[tokio::test]
async fn offline_a_cached_grant_decides_once_when_the_server_is_unreachable() {
    use crate::offline::tests::grant;
    use jit_proto::api::OfflineGrants;

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(crate::offline::OfflineStore::open(dir.path()));
    let step = NOW / 30;
    store
        .update(&OfflineGrants {
            grants: vec![grant(9, "root", &[(step, "654321")], NOW + 300)],
            now: NOW,
        })
        .unwrap();
    let mut rig = Rig::new();
    let core = Arc::get_mut(&mut rig.core).unwrap();
    core.offline = Some(store);

    // No grant for admin: closed, as without offline support.
    rig.server.on_begin(Answer::Unreachable);
    let mut c = rig.conv().await;
    let step_admin = c
        .handle(
            Request::AuthStart {
                ctx: ctx("admin", "login"),
            },
            NOW,
        )
        .await;
    assert!(
        matches!(&step_admin, Step::Denied { message } if message.contains("cannot be reached")),
        "{step_admin:?}"
    );

    // root has a grant: a prompt, then the code is checked here.
    rig.server.on_begin(Answer::Unreachable);
    let mut c = rig.conv().await;
    let step_root = c
        .handle(
            Request::AuthStart {
                ctx: ctx("root", "login"),
            },
            NOW,
        )
        .await;
    assert_eq!(
        step_root,
        Step::Prompt {
            echo: false,
            text: "Verification code: ".into()
        }
    );
    let ticket = granted_ticket(c.handle(answer("654321"), NOW + 1).await);
    // The ticket opens the account stage like an online one.
    let mut c = rig.conv().await;
    let req = Request::Account {
        ctx: ctx("root", "login"),
        ticket: Some(ticket),
    };
    assert_eq!(c.handle(req, NOW + 2).await, Step::Allowed);

    // The server went away between prompt and answer: the grant was used already.
    rig.server
        .on_begin(challenge())
        .on_verify(Answer::Unreachable);
    let mut c = rig.conv().await;
    c.handle(
        Request::AuthStart {
            ctx: ctx("root", "login"),
        },
        NOW + 3,
    )
    .await;
    let again = c.handle(answer("654321"), NOW + 3).await;
    assert!(
        matches!(&again, Step::Denied { message } if message.contains("already used")),
        "{again:?}"
    );

    let events = rig.record.events();
    let offline: Vec<&HostEvent> = events
        .iter()
        .filter(|e| e.action == "login.offline")
        .collect();
    assert_eq!(offline.len(), 1, "{events:?}");
    assert_eq!(
        offline[0].person.as_ref().map(|p| p.as_str()),
        Some("alice")
    );
    assert_eq!(
        (offline[0].reservation_id, offline[0].totp_step),
        (Some(9), Some(step))
    );
    for d in rig.record.decisions() {
        assert!(
            !d.line().contains("654321"),
            "a code reached the log: {}",
            d.line()
        );
    }
    rig.done();
}

#[test]
fn the_key_sshd_accepted_is_recorded_by_its_fingerprint() {
    // A key made with ssh-keygen; `ssh-keygen -l` prints the fingerprint below.
    let key = "AAAAC3NzaC1lZDI1NTE5AAAAIOdwkdfQju3qGGcaFZ4MsltsMH7EEWy4R/n03JDpKOD1";
    let fp = "SHA256:o1MLGOA+ZNPR1oGJR6UEqBEkvqtQS3UEWIFVkRoVZV4".to_owned();
    let login = |info: Option<&str>| {
        origin(
            &LoginContext {
                ssh_auth_info: info.map(str::to_owned),
                ..ctx("admin", "sshd")
            },
            &SSHD_CHILD,
        )
        .ssh_key
    };
    assert_eq!(
        login(Some(&format!("publickey ssh-ed25519 {key}\n"))),
        Some(fp.clone())
    );
    assert_eq!(
        login(Some(&format!(
            "keyboard-interactive\npublickey ssh-ed25519 {key}"
        ))),
        Some(fp)
    );
    for none in [
        None,
        Some(""),
        Some("keyboard-interactive"),
        Some("publickey ssh-ed25519 !!"),
    ] {
        assert_eq!(login(none), None, "{none:?}");
    }
}

// --- push

fn push_challenge(totp_allowed: bool) -> Answer<LoginBegun> {
    Answer::Ok(LoginBegun::Challenge {
        attempt: "att-1".into(),
        factor: Factor::Push,
        expires_at: NOW + 300,
        push: Some(jit_proto::api::PushPrompt {
            number: 47,
            approve_url: "https://jit.example.org/portal/approve/c0ffee".into(),
            expires_at: NOW + 120,
            totp_allowed,
        }),
        notice: None,
    })
}

fn pending() -> Answer<LoginVerified> {
    Answer::Ok(LoginVerified::Pending {
        expires_at: NOW + 120,
    })
}

#[tokio::test]
async fn a_push_prompt_carries_the_number_and_enter_waits_for_the_approval() {
    let rig = Rig::new();
    rig.server
        .on_begin(push_challenge(true))
        .on_wait(pending())
        .on_wait(pending())
        .on_wait(granted());
    let mut c = rig.conv().await;
    let step = c
        .handle(
            Request::AuthStart {
                ctx: ctx("admin", "sshd"),
            },
            NOW,
        )
        .await;
    assert_eq!(
        step,
        Step::Prompt {
            echo: false,
            text: "Approve login 47 on your phone, then press Enter (or type a code): ".into()
        }
    );
    assert!(c.awaiting_person());
    // Enter: jitd waits, telling pam_jit so between waits; then the approval comes.
    assert_eq!(c.handle(answer(""), NOW + 1).await, Step::Wait);
    assert!(!c.awaiting_person(), "pam_jit answers a wait at once");
    assert_eq!(c.handle(Request::Continue, NOW + 3).await, Step::Wait);
    granted_ticket(c.handle(Request::Continue, NOW + 5).await);
    assert_eq!(
        rig.server.calls()[1..],
        [
            Call::Wait("att-1".into()),
            Call::Wait("att-1".into()),
            Call::Wait("att-1".into())
        ]
    );
    rig.done();
}

#[tokio::test]
async fn a_code_typed_at_a_push_prompt_goes_to_the_server_as_totp() {
    let rig = Rig::new();
    rig.server
        .on_begin(push_challenge(true))
        .on_verify(granted());
    let mut c = rig.conv().await;
    c.handle(
        Request::AuthStart {
            ctx: ctx("admin", "sshd"),
        },
        NOW,
    )
    .await;
    granted_ticket(c.handle(answer("123456"), NOW + 1).await);
    assert_eq!(
        rig.server.calls()[1],
        Call::Verify("att-1".into(), "123456".into())
    );
    rig.done();
}

#[tokio::test]
async fn no_approval_within_push_wait_refuses_and_says_the_reservation_is_unused() {
    let rig = Rig::new();
    rig.server
        .on_begin(push_challenge(false))
        .on_wait(pending())
        .on_wait(pending());
    let mut c = rig.conv().await;
    let step = c
        .handle(
            Request::AuthStart {
                ctx: ctx("admin", "su"),
            },
            NOW,
        )
        .await;
    let Step::Prompt { text, .. } = &step else {
        panic!("{step:?}")
    };
    assert!(
        text.ends_with("Approve login 47 on your phone, then press Enter: "),
        "no code offered: {text}"
    );
    assert_eq!(c.handle(answer(""), NOW + 1).await, Step::Wait);
    // 60 s later (the clock is passed in), the next wait ends it.
    let step = c.handle(Request::Continue, NOW + 61).await;
    assert!(
        denied_text(&step).contains("Nobody approved this login within 60s")
            && denied_text(&step).contains("still unused"),
        "{step:?}"
    );
    let events = rig.record.events();
    assert!(
        events
            .iter()
            .any(|e| e.action == "login.denied"
                && e.reason.as_deref() == Some("no approval within 60s")),
        "{events:?}"
    );
    rig.done();
}

#[tokio::test]
async fn a_refused_push_and_an_unreachable_server_are_denials() {
    let rig = Rig::new();
    rig.server
        .on_begin(push_challenge(true))
        .on_wait(Answer::Ok(LoginVerified::Denied {
            reason: jit_proto::api::DenyReason::PushDenied,
            message: "A wrong number was typed on the approval page".into(),
        }))
        .on_begin(push_challenge(true))
        .on_wait(Answer::Unreachable);
    for want in ["A wrong number was typed", "cannot be reached"] {
        let mut c = rig.conv().await;
        c.handle(
            Request::AuthStart {
                ctx: ctx("admin", "su"),
            },
            NOW,
        )
        .await;
        let step = c.handle(answer(""), NOW + 1).await;
        assert!(denied_text(&step).contains(want), "{step:?}");
    }
    rig.done();
}

#[test]
fn the_qr_code_is_drawn_only_at_a_local_terminal() {
    let Answer::Ok(LoginBegun::Challenge {
        push: Some(push), ..
    }) = push_challenge(true)
    else {
        unreachable!()
    };
    let remote = crate::driver::push_prompt(&ctx("admin", "sshd"), &push, true);
    assert!(
        !remote.contains('▀') && !remote.contains("Scan"),
        "{remote}"
    );
    let local = LoginContext {
        rhost: None,
        tty: Some("/dev/tty1".into()),
        ..ctx("admin", "login")
    };
    let text = crate::driver::push_prompt(&local, &push, true);
    assert!(text.contains('▀') || text.contains('▄') || text.contains('█'));
    assert!(text.contains("https://jit.example.org/portal/approve/c0ffee"));
    assert!(text.ends_with("then press Enter (or type a code): "));
    assert!(!crate::driver::push_prompt(&local, &push, false).contains("Scan"));
}

#[tokio::test]
async fn wrong_codes_count_against_the_user_behind_su_not_what_su_says() {
    // su is setuid root: the socket says root, the process's real uid says who ran it. What su
    // puts in its PAM items (a ruser, a terminal) does not change the source.
    let rig = Rig::new();
    rig.server.on_begin(challenge());
    let su = Caller {
        process: Some(ProcId {
            pid: 300,
            start: 6000,
        }),
        parent: Some(ProcId {
            pid: 299,
            start: 5999,
        }),
        real_uid: Some(1000),
    };
    let mut c = rig.conv_as(su).await;
    let login = LoginContext {
        rhost: None,
        tty: Some("/dev/pts/3".into()),
        ruser: Some("root".into()),
        ..ctx("admin", "su")
    };
    c.handle(Request::AuthStart { ctx: login }, NOW).await;
    let calls = rig.server.calls();
    let Some(Call::Begin(begin)) = calls.first() else {
        panic!("expected a begin, got {calls:?}");
    };
    assert_eq!(begin.origin.source.as_deref(), Some("uid:1000"));
    assert_eq!(begin.origin.ruser.as_deref(), Some("root"));
}

#[tokio::test]
async fn an_offline_login_reaches_the_server_before_an_online_one_begins() {
    use crate::offline::tests::grant;
    use jit_proto::api::OfflineGrants;

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(crate::offline::OfflineStore::open(dir.path()));
    let step = NOW / 30;
    store
        .update(&OfflineGrants {
            grants: vec![grant(9, "root", &[(step, "654321")], NOW + 300)],
            now: NOW,
        })
        .unwrap();
    let mut rig = Rig::new();
    Arc::get_mut(&mut rig.core).unwrap().offline = Some(store);

    // The server is down: root logs in offline with the grant.
    rig.server.on_begin(Answer::Unreachable);
    let mut c = rig.conv().await;
    let req = Request::AuthStart {
        ctx: ctx("root", "login"),
    };
    assert!(matches!(c.handle(req, NOW).await, Step::Prompt { .. }));
    granted_ticket(c.handle(answer("654321"), NOW + 1).await);
    let begins = |rig: &Rig| {
        rig.server
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::Begin(_)))
            .count()
    };
    assert_eq!(begins(&rig), 1);

    // The server is back but does not take the offline login yet: no online login begins.
    rig.server.refuse_action("login.offline");
    let mut c = rig.conv().await;
    let req = Request::AuthStart {
        ctx: ctx("root", "login"),
    };
    let step = c.handle(req, NOW + 10).await;
    assert!(
        matches!(&step, Step::Denied { message } if message.contains("could not check this login")),
        "{step:?}"
    );
    assert_eq!(begins(&rig), 1, "no login began");
    assert!(rig.server.events().is_empty());

    // Once it takes it, the online login begins (the server, having consumed the reservation,
    // refuses it), and the offline login is not sent again.
    rig.server.allow_action("login.offline");
    rig.server.on_begin(Answer::Ok(LoginBegun::Denied {
        reason: DenyReason::AlreadyUsed,
        message: "The reservation of root on web01 was already used by a login.".into(),
    }));
    let mut c = rig.conv().await;
    let req = Request::AuthStart {
        ctx: ctx("root", "login"),
    };
    let step = c.handle(req, NOW + 20).await;
    assert!(
        matches!(&step, Step::Denied { message } if message.contains("already used")),
        "{step:?}"
    );
    let delivered = rig.server.events();
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        (delivered[0].action.as_str(), delivered[0].reservation_id),
        ("login.offline", Some(9))
    );
    assert_eq!(begins(&rig), 2);
    assert!(rig.record.undelivered_offline("root").is_empty());
    rig.server.on_begin(challenge());
    let mut c = rig.conv().await;
    let req = Request::AuthStart {
        ctx: ctx("root", "login"),
    };
    assert!(matches!(c.handle(req, NOW + 30).await, Step::Prompt { .. }));
    assert_eq!(rig.server.events().len(), 1, "sent once");
    rig.done();
}
