//! The driver against a scripted server: each case of the policy in the module docs.

use std::sync::Arc;

use jit_proto::api::{ErrorCode, Factor};
use jit_proto::{AccountName, PersonName, Secret};

use super::*;
use crate::testing::{Answer, Call, FakeServer, Recorded};

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
        let shared = Arc::new(SharedAccounts::default());
        shared.set(["admin".to_string(), "root".to_string()]);
        let settings = Settings {
            host: "web01".into(),
            prompt: "Verification code: ".into(),
            deny_as_prompt: BTreeSet::from(["sshd".to_string()]),
        };
        let core = Arc::new(Core::new(server.clone(), record.clone(), settings, shared));
        Rig {
            server,
            record,
            core,
        }
    }

    /// A conversation past the hello.
    async fn conv(&self) -> Conversation<FakeServer, Arc<Recorded>> {
        let mut c = Conversation::new(self.core.clone());
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
    })
}

fn alice_ticket() -> Ticket {
    Ticket {
        account: "admin".into(),
        person: "alice".into(),
        reservation_id: 7,
        attempt: "att-1".into(),
    }
}

fn answer(code: &str) -> Request {
    Request::Answer {
        text: Secret::new(code),
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
    let mut c = Conversation::new(rig.core.clone());
    let step = c.handle(Request::Hello { version: 99 }, NOW).await;
    let msg = failed_text(&step);
    assert!(
        msg.contains("99") && msg.contains(&PROTOCOL_VERSION.to_string()),
        "{msg}"
    );
    let mut c = Conversation::new(rig.core.clone());
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

#[tokio::test]
async fn unknown_shared_set_means_nothing_is_shared() {
    let rig = Rig::new();
    let core = Arc::new(Core::new(
        rig.server.clone(),
        rig.record.clone(),
        rig.core.settings.clone(),
        Arc::new(SharedAccounts::default()),
    ));
    let mut c = Conversation::new(core);
    c.handle(hello(), NOW).await;
    assert_eq!(
        c.handle(
            Request::AuthStart {
                ctx: ctx("admin", "login")
            },
            NOW
        )
        .await,
        Step::NotShared
    );
    assert!(rig.server.calls().is_empty());
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
    let step = c.handle(answer("123456"), NOW).await;
    assert_eq!(
        step,
        Step::Granted {
            ticket: alice_ticket()
        }
    );
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
                },
            }),
            Call::Verify("att-1".into(), "123456".into()),
        ]
    );

    // The account and session stages come on new connections, as pam_jit opens one per stage.
    let mut c = rig.conv().await;
    let req = Request::Account {
        ctx: ctx("admin", "sshd"),
        ticket: Some(alice_ticket()),
    };
    assert_eq!(c.handle(req, NOW + 1).await, Step::Allowed);
    let req = Request::SessionOpen {
        ctx: ctx("admin", "sshd"),
        ticket: Some(alice_ticket()),
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
        ticket: Some(alice_ticket()),
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
    c.handle(answer("123456"), NOW).await;

    let forged = Ticket {
        attempt: "att-forged".into(),
        ..alice_ticket()
    };
    let other_person = Ticket {
        person: "bob".into(),
        ..alice_ticket()
    };
    let other_account = Ticket {
        account: "root".into(),
        ..alice_ticket()
    };
    let cases: Vec<(&str, Option<Ticket>, i64)> = vec![
        ("admin", None, NOW),
        ("admin", Some(forged), NOW),
        ("admin", Some(other_person), NOW),
        ("root", Some(other_account), NOW),
        ("root", Some(alice_ticket()), NOW),
        ("admin", Some(alice_ticket()), NOW + TICKET_TTL),
    ];
    for (account, ticket, now) in cases {
        let mut c = rig.conv().await;
        let req = Request::Account {
            ctx: ctx(account, "sshd"),
            ticket: ticket.clone(),
        };
        let step = c.handle(req, now).await;
        let Step::Denied { message } = step else {
            panic!("{account} {ticket:?}: {step:?}")
        };
        assert!(
            message.contains("keyboard-interactive") && message.contains("public key"),
            "{message}"
        );
        let req = Request::SessionOpen {
            ctx: ctx(account, "sshd"),
            ticket,
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
    // The real ticket still works.
    let mut c = rig.conv().await;
    let req = Request::Account {
        ctx: ctx("admin", "sshd"),
        ticket: Some(alice_ticket()),
    };
    assert_eq!(c.handle(req, NOW + 60).await, Step::Allowed);
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

#[test]
fn tickets_expire_and_are_pruned() {
    let t = Tickets::default();
    t.grant(alice_ticket(), NOW);
    assert!(t.valid(&alice_ticket(), "admin", NOW + TICKET_TTL - 1));
    assert!(!t.valid(&alice_ticket(), "admin", NOW + TICKET_TTL));
    assert!(!t.valid(&alice_ticket(), "admin", NOW - 1));
    let later = Ticket {
        attempt: "att-2".into(),
        ..alice_ticket()
    };
    t.grant(later.clone(), NOW + TICKET_TTL);
    assert!(
        !t.valid(&alice_ticket(), "admin", NOW + 1),
        "pruned when a later ticket came"
    );
    assert!(t.valid(&later, "admin", NOW + TICKET_TTL));
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
    let Step::Granted { ticket } = c.handle(answer("654321"), NOW + 1).await else {
        panic!("the cached grant should admit the holder's code")
    };
    assert_eq!(
        (ticket.person.as_str(), ticket.reservation_id),
        ("alice", 9)
    );
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
