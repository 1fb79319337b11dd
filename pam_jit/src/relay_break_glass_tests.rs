//! Break-glass (`local_password`): a console login where jit refused steps aside so that the
//! local password decides, and the rest of that login follows; nothing else changes.

use super::*;

/// A console login (`login` on tty1): no remote host.
fn console(user: &str, events: Vec<Ev>) -> FakePam {
    let mut pam = FakePam::new(user, events);
    pam.items = [
        (Item::Service, Some("login")),
        (Item::Rhost, None),
        (Item::Tty, Some("tty1")),
        (Item::Ruser, None),
    ];
    pam
}

fn console_ctx(account: &str) -> LoginContext {
    LoginContext {
        account: account.into(),
        service: "login".into(),
        rhost: None,
        tty: Some("tty1".into()),
        ruser: None,
        uid: None,
        ssh_auth_info: None,
    }
}

fn break_glass(opts: &Options) -> Options {
    Options {
        local_password: true,
        ..opts.clone()
    }
}

fn denies(ctx: LoginContext, message: &str) -> FakeJitd {
    FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::AuthStart { ctx }),
            Act::Send(Step::Denied {
                message: message.into(),
            }),
        ],
    ]))
}

const NOT_RESERVED: &str = "root is not reserved on web01. Reserve it first";
const STEPPING_ASIDE: &str = "jit: break-glass: the local password of root is accepted instead";

#[test]
fn a_refusal_steps_aside_with_the_reason_and_a_notice() {
    let (_d, opts) = no_cache_opts();
    let opts = break_glass(&opts);
    let jitd = denies(console_ctx("root"), NOT_RESERVED);
    let mut pam = console(
        "root",
        vec![
            Ev::Show(Msg::Error, NOT_RESERVED),
            Ev::Show(Msg::Info, STEPPING_ASIDE),
        ],
    );
    assert_eq!(run(Hook::Auth, &mut pam, &jitd, &opts), Code::Ignore);
    assert_eq!(pam.break_glass.as_deref(), Some("root"));
    assert!(
        pam.logs
            .iter()
            .any(|(l, m)| *l == Level::Alert && m.contains("break-glass: jit refused root")),
        "{:?}",
        pam.logs
    );
}

#[test]
fn jitd_down_steps_aside_too() {
    let (_d, opts) = setup(Some(&["root"]));
    let opts = break_glass(&opts);
    let mut pam = console(
        "root",
        vec![
            Ev::Show(Msg::Error, "cannot reach jitd"),
            Ev::Show(Msg::Info, STEPPING_ASIDE),
        ],
    );
    assert_eq!(run(Hook::Auth, &mut pam, &Unreachable, &opts), Code::Ignore);
    assert_eq!(pam.break_glass.as_deref(), Some("root"));
}

#[test]
fn without_the_option_a_refusal_stays_a_refusal() {
    let (_d, opts) = no_cache_opts();
    let jitd = denies(console_ctx("root"), NOT_RESERVED);
    let mut pam = console("root", vec![Ev::Show(Msg::Error, NOT_RESERVED)]);
    assert_eq!(run(Hook::Auth, &mut pam, &jitd, &opts), Code::AuthErr);
    assert_eq!(pam.break_glass, None);
}

#[test]
fn a_grant_is_an_ordinary_jit_login_and_clears_an_earlier_step_aside() {
    let (_d, opts) = no_cache_opts();
    let opts = break_glass(&opts);
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::AuthStart {
                ctx: console_ctx("root"),
            }),
            Act::Send(granted_step()),
        ],
    ]));
    // login(1) retries on the same handle: the first attempt stood aside.
    let mut pam = console("root", vec![]);
    pam.break_glass = Some("root".into());
    assert_eq!(run(Hook::Auth, &mut pam, &jitd, &opts), Code::Success);
    assert_eq!(pam.break_glass, None);
    assert_eq!(pam.ticket, Some(held("root")));
}

#[test]
fn not_shared_names_are_untouched() {
    let (_d, opts) = no_cache_opts();
    let opts = break_glass(&opts);
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::AuthStart {
                ctx: console_ctx("carol"),
            }),
            Act::Send(Step::NotShared),
        ],
    ]));
    let mut pam = console("carol", vec![]);
    assert_eq!(run(Hook::Auth, &mut pam, &jitd, &opts), Code::Ignore);
    assert_eq!(pam.break_glass, None);
}

#[test]
fn a_conversation_failure_never_steps_aside() {
    let (_d, opts) = no_cache_opts();
    let opts = break_glass(&opts);
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::AuthStart {
                ctx: console_ctx("root"),
            }),
            Act::Send(prompt_step()),
            Act::Stall,
        ],
    ]));
    let mut pam = console(
        "root",
        vec![Ev::Prompt {
            echo: false,
            text: CODE_PROMPT,
            answer: Err(Code::ConvErr),
        }],
    );
    assert_eq!(run(Hook::Auth, &mut pam, &jitd, &opts), Code::ConvErr);
    assert_eq!(pam.break_glass, None);
}

#[test]
fn remote_logins_never_get_break_glass() {
    let (_d, opts) = no_cache_opts();
    let opts = break_glass(&opts);
    // sshd (service and tty), with a remote host: jit alone decides, and the log says why.
    let jitd = denies(ctx("root"), NOT_RESERVED);
    let mut pam = FakePam::new("root", vec![Ev::Show(Msg::Error, NOT_RESERVED)]);
    assert_eq!(run(Hook::Auth, &mut pam, &jitd, &opts), Code::AuthErr);
    assert_eq!(pam.break_glass, None);
    assert!(pam.logged("local_password is ignored for root (service sshd)"));
    // Any service with a remote host (login -h, telnet).
    let mut remote = console_ctx("root");
    remote.rhost = Some("192.0.2.9".into());
    let jitd = denies(remote, NOT_RESERVED);
    let mut pam = console("root", vec![Ev::Show(Msg::Error, NOT_RESERVED)]);
    pam.items[1] = (Item::Rhost, Some("192.0.2.9"));
    assert_eq!(run(Hook::Auth, &mut pam, &jitd, &opts), Code::AuthErr);
    assert!(pam.logged("remote host (192.0.2.9)"), "{:?}", pam.logs);
}

#[test]
fn later_pam_jit_lines_of_that_login_stand_aside_without_asking_jitd() {
    let (_d, opts) = no_cache_opts();
    // common-auth's own pam_jit line, after the service's break-glass line stood aside.
    let mut pam = console("root", vec![]);
    pam.break_glass = Some("root".into());
    assert_eq!(
        run(Hook::Auth, &mut pam, &MustNotConnect, &opts),
        Code::Ignore
    );
    for hook in [Hook::Account, Hook::Open, Hook::Close] {
        assert_eq!(
            run(hook, &mut pam, &MustNotConnect, &opts),
            Code::Ignore,
            "the host's own stack decides"
        );
    }
    assert!(
        pam.logged("break-glass: account for root"),
        "{:?}",
        pam.logs
    );
    assert!(pam.env.is_empty(), "no JIT_PERSON: {:?}", pam.env);
}

#[test]
fn a_record_for_another_name_proves_nothing() {
    let (_d, opts) = no_cache_opts();
    // login(1) asked for another name on retry; the record is for root, this is admin.
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::Account {
                ctx: console_ctx("admin"),
                ticket: None,
            }),
            Act::Send(Step::Denied {
                message: "admin needs jit".into(),
            }),
        ],
    ]));
    let mut pam = console("admin", vec![Ev::Show(Msg::Error, "admin needs jit")]);
    pam.break_glass = Some("root".into());
    assert_eq!(run(Hook::Account, &mut pam, &jitd, &opts), Code::PermDenied);
}

#[test]
fn an_account_stage_without_auth_is_still_refused() {
    // `login -f root` (pre-authenticated) never ran auth: no record, jitd refuses as usual.
    let (_d, opts) = no_cache_opts();
    let opts = break_glass(&opts);
    let jitd = FakeJitd::new(script(vec![
        hello(),
        vec![
            Act::Expect(Request::Account {
                ctx: console_ctx("root"),
                ticket: None,
            }),
            Act::Send(Step::Denied {
                message: "root needs jit".into(),
            }),
        ],
    ]));
    let mut pam = console("root", vec![Ev::Show(Msg::Error, "root needs jit")]);
    assert_eq!(run(Hook::Account, &mut pam, &jitd, &opts), Code::PermDenied);
}
