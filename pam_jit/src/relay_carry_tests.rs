//! The ticket's copy in the PAM environment: sshd runs keyboard-interactive auth and the account
//! stage in a child process and opens the session in its monitor, which sees only the PAM
//! environment the child handed back, never the child's module data.

use super::*;

/// The PAM environment sshd's monitor holds after the child's auth: the copy, no module data.
fn monitor_pam(user: &str, carried: &Ticket) -> FakePam {
    let mut pam = FakePam::new(user, vec![]);
    pam.env
        .push((TICKET_ENV.into(), carried.expose().to_owned()));
    pam
}

fn carried(pam: &FakePam) -> Option<Ticket> {
    pam.env
        .iter()
        .find(|(n, _)| n == TICKET_ENV)
        .map(|(_, v)| Ticket::parse(v).unwrap())
}

/// What a process that got the ticket through the environment keeps: the handle alone.
fn adopted(account: &str) -> Held {
    Held {
        person: None,
        ..held(account)
    }
}

#[test]
fn a_granted_auth_copies_the_ticket_into_the_pam_environment() {
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
    // The environment holds the opaque handle, nothing else.
    assert_eq!(carried(&pam), Some(handle()));
    assert_eq!(pam.env[0].1, handle().expose());
}

#[test]
fn a_refused_auth_carries_nothing() {
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
    assert!(pam.env.is_empty(), "{:?}", pam.env);
}

#[test]
fn the_account_stage_reads_the_copy_and_leaves_it_for_the_monitor() {
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
    let mut pam = monitor_pam("admin", &handle());
    assert_eq!(run(Hook::Account, &mut pam, &jitd, &opts), Code::Success);
    // In sshd's child the account stage runs before the environment is handed back.
    assert_eq!(carried(&pam), Some(handle()));
}

#[test]
fn the_session_adopts_the_copy_and_removes_it_from_the_session_environment() {
    let (_d, opts) = no_cache_opts();
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::SessionOpen {
                ctx: ctx("admin"),
                ticket: Some(handle()),
            }),
            Act::Send(Step::Session {
                env: vec![env("JIT_PERSON", "alice")],
            }),
        ],
    ]));
    let mut pam = monitor_pam("admin", &handle());
    assert_eq!(run(Hook::Open, &mut pam, &jitd, &opts), Code::Success);
    assert_eq!(pam.env, vec![("JIT_PERSON".into(), "alice".into())]);
    assert_eq!(pam.ticket, Some(adopted("admin")), "adopted for close");
    // The close finds it in the module data.
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
    assert_eq!(run(Hook::Close, &mut pam, &jitd, &opts), Code::Success);
}

#[test]
fn setcred_adopts_the_copy() {
    let (_d, opts) = no_cache_opts();
    let mut pam = monitor_pam("admin", &handle());
    assert_eq!(
        run(Hook::Setcred, &mut pam, &MustNotConnect, &opts),
        Code::Success
    );
    assert_eq!(carried(&pam), None);
    assert_eq!(pam.ticket, Some(adopted("admin")));
}

#[test]
fn module_data_wins_and_the_copy_is_still_removed() {
    let (_d, opts) = no_cache_opts();
    let other = Ticket::new("fromtheenvironment");
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::SessionOpen {
                ctx: ctx("admin"),
                ticket: Some(handle()),
            }),
            Act::Send(Step::Session { env: vec![] }),
        ],
    ]));
    // su and login: one process holds both.
    let mut pam = monitor_pam("admin", &other).with_ticket(held("admin"));
    assert_eq!(run(Hook::Open, &mut pam, &jitd, &opts), Code::Success);
    assert_eq!(carried(&pam), None, "never reaches the session");
}

/// The copy is only a claim: it goes to jitd, which refuses a ticket granted to another login
/// (or service, or process); pam_jit never logs it.
#[test]
fn a_copy_is_only_a_claim_that_jitd_judges() {
    let (_d, opts) = no_cache_opts();
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::SessionOpen {
                ctx: ctx("admin"),
                ticket: Some(handle()),
            }),
            Act::Send(Step::Denied {
                message: "a session needs jit".into(),
            }),
        ],
    ]));
    let mut pam = monitor_pam("admin", &handle());
    pam.events = vec![Ev::Show(Msg::Error, "a session needs jit")].into();
    assert_eq!(run(Hook::Open, &mut pam, &jitd, &opts), Code::SessionErr);
    assert_eq!(carried(&pam), None);
    assert!(!pam.logged(handle().expose()), "{:?}", pam.logs);
}

#[test]
fn a_copy_that_is_not_a_ticket_is_ignored_and_never_logged() {
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
    let mut pam = FakePam::new("admin", vec![]);
    pam.env
        .push((TICKET_ENV.into(), "not-a-ticket-sekrit".into()));
    assert_eq!(run(Hook::Account, &mut pam, &jitd, &opts), Code::PermDenied);
    assert!(pam.logged("is not a ticket"), "{:?}", pam.logs);
    assert!(!pam.logged("sekrit"), "{:?}", pam.logs);
}
