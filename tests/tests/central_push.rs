//! Push approval against the real server: a host's login waits for the holder, who approves it
//! with `jitctl approve` by the number the prompt shows (or refuses it as not theirs); real
//! HTTP receivers on loopback get the ntfy message, the signed webhook and the encrypted Web
//! Push; the rate limit, a replayed approval, a wrong number and an unanswered push.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jit_proto::api::{
    DenyReason, Factor, LoginBegin, LoginBegun, LoginOrigin, LoginVerified, LoginVerify, LoginWait,
    PushPrompt,
};
use jit_proto::{AccountName, Secret};
use jit_server::push::{webhook, webpush};
use jit_tests::push::Receiver;
use jit_tests::{World, client_for, join_host, runtime};
use serde_json::Value;

const SECRET: &str = "webhook-secret-for-the-tests";
const PORTAL: &str = "https://jit.example.test";

struct Setup {
    w: World,
    ntfy: Receiver,
    hook: Receiver,
    rt: tokio::runtime::Runtime,
    host: jit_client::Client,
}

/// A world whose server sends notifications to two receivers on loopback; alice has push too
/// (with her ntfy topic), besides her authenticator app.
fn setup(push_toml: &str) -> Setup {
    let mut w = World::new();
    let ntfy = Receiver::http();
    let hook = Receiver::http();
    let secret_file = w.server.dir.path().join("webhook.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let addr = w.server.addr();
    w.server.kill();
    w.server.run_with_config(
        &addr,
        &format!(
            "[portal]\npublic_url = \"{PORTAL}\"\n[push]\nntfy_server = \"{}\"\n\
             webhook_url = \"{}\"\nwebhook_secret_file = {:?}\n{push_toml}",
            ntfy.url(""),
            hook.url("/hook"),
            secret_file.display().to_string()
        ),
    );
    w.alice
        .jitctl
        .ok(&["factor", "add", "push", "--ntfy-topic", "jit-alice-7q"]);
    let rt = runtime();
    let host = join_host(&rt, &w.join_token);
    Setup {
        w,
        ntfy,
        hook,
        rt,
        host,
    }
}

fn ssh_from(rhost: &str) -> LoginBegin {
    LoginBegin {
        account: AccountName::new("admin").unwrap(),
        origin: LoginOrigin {
            service: "sshd".into(),
            rhost: Some(rhost.into()),
            tty: Some("ssh".into()),
            ruser: None,
            ssh_key: None,
            source: None,
        },
    }
}

impl Setup {
    fn begin(&self) -> LoginBegun {
        self.rt
            .block_on(self.host.login_begin(&ssh_from("192.0.2.200")))
            .unwrap()
    }

    /// Begins a login that must be a push: its attempt and prompt.
    fn push_login(&self) -> (String, PushPrompt) {
        match self.begin() {
            LoginBegun::Challenge {
                attempt,
                factor: Factor::Push,
                push: Some(p),
                ..
            } => (attempt, p),
            other => panic!("expected a push, got {other:?}"),
        }
    }

    fn wait(&self, attempt: &str, secs: u32) -> LoginVerified {
        self.rt
            .block_on(
                self.host
                    .login_wait(attempt, &LoginWait { wait_secs: secs }),
            )
            .unwrap()
    }

    fn audit_actions(&self) -> Vec<String> {
        let v = self.w.admin.json(&["audit", "--person", "alice"]);
        v.as_array()
            .or_else(|| v["events"].as_array())
            .expect("audit events")
            .iter()
            .map(|e| e["action"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    fn reserve(&self) {
        self.w
            .alice
            .jitctl
            .ok(&["reserve", "admin", "--host", "web01"]);
    }

    fn reservation_state(&self) -> String {
        let v = self.w.alice.jitctl.json(&["status", "--all"]);
        v["reservations"][0]["state"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

/// The words of a text that are numbers. (The logins here come from 192.0.2.200: no part of it
/// can be a challenge number, 10 to 99, which a source like 192.0.2.10 matched one time in 90.)
fn numbers_in(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_right_number_in_jitctl_approve_logs_in_once_and_the_channels_carry_no_number() {
    let s = setup("");
    s.reserve();
    let (attempt, prompt) = s.push_login();
    assert!((10..=99).contains(&prompt.number));
    assert!(prompt.totp_allowed, "alice has an authenticator app too");
    assert!(
        prompt
            .approve_url
            .starts_with(&format!("{PORTAL}/portal/approve/")),
        "{}",
        prompt.approve_url
    );
    let number = prompt.number.to_string();

    // ntfy: her topic, the host, account and source, one `view` action to the approval page.
    let n = s.ntfy.nth("/", 1).json();
    assert_eq!(n["topic"], "jit-alice-7q");
    let text = format!("{} {}", n["title"], n["message"]);
    for want in ["web01", "admin", "192.0.2.200", "sshd"] {
        assert!(text.contains(want), "{want} missing in {text}");
    }
    assert!(!numbers_in(&text).contains(&number), "{text}");
    assert_eq!(n["actions"].as_array().unwrap().len(), 1, "{n}");
    assert_eq!(n["actions"][0]["action"], "view");
    assert_eq!(n["actions"][0]["url"], prompt.approve_url.as_str());
    // The webhook: signed with the shared secret over exactly the body it got.
    let h = s.hook.nth("/hook", 1);
    let sig = h.header("x-jit-signature-256").expect("signature header");
    assert!(webhook::verify(SECRET.as_bytes(), &h.body, sig), "{sig}");
    assert!(!webhook::verify(b"another secret", &h.body, sig));
    assert_eq!(h.header("x-jit-event"), Some("push.sent"));
    let body = h.json();
    assert_eq!(
        (&body["host"], &body["account"], &body["source"]),
        (&"web01".into(), &"admin".into(), &"192.0.2.200".into())
    );
    assert!(body.get("number").is_none(), "{body}");

    // Nobody answered yet: the host keeps waiting.
    assert!(matches!(s.wait(&attempt, 1), LoginVerified::Pending { .. }));
    // jitctl approve lists it (host, account, service, source, time), then takes the number.
    let list = s.w.alice.jitctl.ok(&["approve", "--list"]);
    for want in ["web01", "admin", "sshd", "192.0.2.200", "UTC"] {
        assert!(list.contains(want), "{want} missing in {list}");
    }
    let mut child =
        s.w.alice
            .jitctl
            .command()
            .arg("approve")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "{number}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Approved"));
    match s.wait(&attempt, 5) {
        LoginVerified::Granted { person, .. } => assert_eq!(person.as_str(), "alice"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.reservation_state(), "consumed");

    // The approval was used once: approving it again is refused, and the host's attempt is over.
    let id = prompt.approve_url.rsplit('/').next().unwrap().to_owned();
    let again =
        s.rt.block_on(client_for(&s.w.alice.jitctl).approve(&id, prompt.number));
    let err = again.unwrap_err().to_string();
    assert!(err.contains("counts once"), "{err}");
    match s.wait(&attempt, 1) {
        LoginVerified::Denied { reason, .. } => assert_eq!(reason, DenyReason::AttemptExpired),
        other => panic!("{other:?}"),
    }
    // Nobody else approves for alice, not even an admin.
    let err =
        s.rt.block_on(client_for(&s.w.admin).approve(&id, prompt.number))
            .unwrap_err()
            .to_string();
    assert!(err.contains("No such login"), "{err}");
    let actions = s.audit_actions();
    for want in ["push.sent", "push.approved"] {
        assert!(actions.iter().any(|a| a == want), "{want} in {actions:?}");
    }
}

#[test]
fn a_wrong_number_refuses_the_login_and_counts_nothing_towards_the_lockout() {
    let s = setup("");
    s.reserve();
    let (attempt, prompt) = s.push_login();
    let wrong = if prompt.number == 99 {
        98
    } else {
        prompt.number + 1
    };
    let err =
        s.w.alice
            .jitctl
            .fails(3, &["approve", "--number", &wrong.to_string()]);
    assert!(
        err.contains("not the number the login prompt shows"),
        "{err}"
    );
    match s.wait(&attempt, 5) {
        LoginVerified::Denied { reason, message } => {
            assert_eq!(reason, DenyReason::PushDenied);
            assert!(message.contains("wrong number"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // The login is refused whatever comes next, and the reservation is still there to use.
    assert_eq!(s.reservation_state(), "active");
    let code = LoginVerify {
        code: Secret::new(s.w.alice.next_code()),
    };
    assert!(matches!(
        s.rt.block_on(s.host.login_verify(&attempt, &code)).unwrap(),
        LoginVerified::Denied { .. }
    ));
    assert_eq!(s.w.server.sql("SELECT COUNT(*) FROM totp_failures"), "0");
    let alice = s.w.admin.json(&["person", "show", "alice"]);
    assert!(alice["locked_until"].is_null(), "{alice}");
    assert!(s.audit_actions().iter().any(|a| a == "push.denied"));
}

#[test]
fn no_answer_times_out_and_leaves_the_reservation_unused() {
    let s = setup("challenge_ttl = \"30s\"\n");
    s.reserve();
    let (attempt, prompt) = s.push_login();
    assert!(matches!(
        s.wait(&attempt, 1),
        LoginVerified::Pending { expires_at } if expires_at == prompt.expires_at
    ));
    // Two minutes later (the clock is moved in the database, not waited for).
    s.w.server
        .sql("UPDATE push_challenges SET expires_at = expires_at - 120");
    match s.wait(&attempt, 5) {
        LoginVerified::Denied { reason, .. } => assert_eq!(reason, DenyReason::PushExpired),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.reservation_state(), "active");
    assert!(s.audit_actions().iter().any(|a| a == "push.expired"));
    // Approving it now is too late.
    let err = s.w.alice.jitctl.fails(2, &["approve", "--number", "47"]);
    assert!(err.contains("no login waits"), "{err}");
}

#[test]
fn one_push_a_minute_then_a_code_and_push_only_persons_are_told_to_wait() {
    let s = setup("");
    s.reserve();
    let (_, first) = s.push_login();
    // Within the minute: a code is asked for instead, and the prompt says why.
    match s.begin() {
        LoginBegun::Challenge {
            attempt,
            factor: Factor::Totp,
            push: None,
            notice: Some(notice),
            ..
        } => {
            assert!(notice.contains("less than 1m ago"), "{notice}");
            let code = LoginVerify {
                code: Secret::new(s.w.alice.next_code()),
            };
            assert!(matches!(
                s.rt.block_on(s.host.login_verify(&attempt, &code)).unwrap(),
                LoginVerified::Granted { .. }
            ));
        }
        other => panic!("expected a code prompt, got {other:?}"),
    }
    assert!(s.audit_actions().iter().any(|a| a == "push.rate_limited"));
    // Only one notification went out.
    assert_eq!(s.ntfy.all().len(), 1);
    // The push that was answered by a code elsewhere cannot be approved any more.
    let id = first.approve_url.rsplit('/').next().unwrap().to_owned();
    assert!(
        s.rt.block_on(client_for(&s.w.alice.jitctl).approve(&id, first.number))
            .is_err()
    );

    // carol enrolls push only (no authenticator app).
    let added = s.w.admin.json(&["person", "add", "carol"]);
    let carol = jit_tests::Jitctl::new();
    carol.ok(&[
        "enroll",
        added["enrollment_code"].as_str().unwrap(),
        "--server",
        &s.w.server.url,
        "--ca-fingerprint",
        &s.w.server.fingerprint,
        "--push",
    ]);
    let f = carol.json(&["factor", "list"]);
    assert_eq!(
        (f["totp"].clone(), f["push"].is_object()),
        (false.into(), true)
    );
    s.w.admin.ok(&["group", "add-member", "ops", "carol"]);
    carol.ok(&["reserve", "admin", "--host", "web01"]);
    s.push_login();
    match s.begin() {
        LoginBegun::Denied { reason, message } => {
            assert_eq!(reason, DenyReason::RateLimited);
            assert!(message.contains("less than 1m ago"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // A minute later, a push again.
    s.w.server
        .sql("UPDATE push_challenges SET created_at = created_at - 61");
    s.push_login();
    // An account that needs a code refuses carol; one that needs push refuses a code.
    s.w.admin
        .ok(&["account", "set", "admin", "--factor", "totp"]);
    match s.begin() {
        LoginBegun::Denied { reason, message } => {
            assert_eq!(reason, DenyReason::FactorNotAllowed);
            assert!(message.contains("authenticator app"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let shown = s.w.admin.json(&["account", "show", "admin"]);
    assert_eq!(shown["factor"], "totp");
}

#[test]
fn not_me_refuses_releases_and_alerts_the_admins() {
    let s = setup("");
    s.w.admin
        .ok(&["factor", "add", "push", "--ntfy-topic", "jit-admins-3x"]);
    s.reserve();
    let (attempt, _) = s.push_login();
    let out = s.w.alice.jitctl.ok(&["approve", "--not-me"]);
    assert!(out.contains("Reported"), "{out}");
    match s.wait(&attempt, 5) {
        LoginVerified::Denied { reason, message } => {
            assert_eq!(reason, DenyReason::PushDenied, "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.reservation_state(), "released");
    // The admins' topic gets the alert, the webhook the event.
    let alert = s
        .ntfy
        .all()
        .into_iter()
        .map(|r| r.json())
        .find(|m| m["topic"] == "jit-admins-3x")
        .or_else(|| {
            jit_tests::wait_for(
                "the admins' alert",
                std::time::Duration::from_secs(30),
                || {
                    s.ntfy
                        .all()
                        .iter()
                        .any(|r| r.json()["topic"] == "jit-admins-3x")
                },
            );
            s.ntfy
                .all()
                .into_iter()
                .map(|r| r.json())
                .find(|m| m["topic"] == "jit-admins-3x")
        })
        .unwrap();
    let title = alert["title"].as_str().unwrap();
    assert!(
        title.contains("reported") && title.contains("web01"),
        "{alert}"
    );
    assert!(alert["message"].as_str().unwrap().contains("alice"));
    let h = s.hook.nth("/hook", 2);
    assert_eq!(h.header("x-jit-event"), Some("push.reported"));
    assert!(webhook::verify(
        SECRET.as_bytes(),
        &h.body,
        h.header("x-jit-signature-256").unwrap()
    ));
    assert!(s.audit_actions().iter().any(|a| a == "push.reported"));
}

#[test]
fn web_push_reaches_a_subscribed_browser_encrypted_and_signed() {
    // A push service on loopback with the server's own certificate, trusted through ca_file.
    let mut w = World::new();
    let tls = w.server.data_dir().join("tls");
    let service = Receiver::https(&tls.join("server.pem"), &tls.join("server.key"));
    let addr = w.server.addr();
    w.server.kill();
    w.server.run_with_config(
        &addr,
        &format!(
            "[portal]\npublic_url = \"{PORTAL}\"\n[push]\nca_file = {:?}\n",
            tls.join("ca.pem").display().to_string()
        ),
    );
    w.alice.jitctl.ok(&["factor", "add", "push"]);
    // The browser: RFC 8291's example keys, subscribed as the portal stores a subscription.
    let ua = p256::SecretKey::from_slice(
        &B64.decode("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94")
            .unwrap(),
    )
    .unwrap();
    let auth = "BTBZMqHH6r4Tts7J_aSIgg";
    let p256dh =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    let endpoint = format!("https://localhost:{}/push/browser-1", service.port);
    w.server.sql(&format!(
        "INSERT INTO push_subscriptions (person_id, endpoint, p256dh, auth, created_at) \
         SELECT id, '{endpoint}', '{p256dh}', '{auth}', 0 FROM persons WHERE name = 'alice'"
    ));
    w.alice.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    let rt = runtime();
    let host = join_host(&rt, &w.join_token);
    let prompt = match rt
        .block_on(host.login_begin(&ssh_from("192.0.2.200")))
        .unwrap()
    {
        LoginBegun::Challenge { push: Some(p), .. } => p,
        other => panic!("{other:?}"),
    };
    let got = service.nth("/push/browser-1", 1);
    assert_eq!(got.header("content-encoding"), Some("aes128gcm"));
    assert_eq!(got.header("urgency"), Some("high"));
    let ttl: i64 = got.header("ttl").unwrap().parse().unwrap();
    assert!((1..=120).contains(&ttl), "{ttl}");
    // VAPID: a JWT for the push service's origin, signed by the key in k=.
    let auth_header = got.header("authorization").unwrap();
    let (t, k) = auth_header
        .strip_prefix("vapid t=")
        .and_then(|r| r.split_once(", k="))
        .unwrap_or_else(|| panic!("{auth_header}"));
    let claims = webpush::verify_jwt(t, k).expect("the JWT verifies under k");
    assert_eq!(
        claims["aud"],
        format!("https://localhost:{}", service.port).as_str()
    );
    assert_eq!(claims["sub"], "mailto:root@localhost");
    // The browser decrypts it: the login, and a link to the approval page; no number.
    let auth_bytes: [u8; 16] = B64.decode(auth).unwrap().try_into().unwrap();
    let plain = webpush::decrypt(&got.body, &ua, &auth_bytes).expect("decrypts");
    let msg: Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(msg["url"], prompt.approve_url.as_str());
    let text = format!("{} {}", msg["title"], msg["body"]);
    assert!(text.contains("admin") && text.contains("web01") && text.contains("192.0.2.200"));
    assert!(!numbers_in(&text).contains(&prompt.number.to_string()));
}

#[test]
fn guessing_at_one_persons_codes_alerts_the_admins_without_locking_the_person_out() {
    let s = setup("[guessing]\nalert_failures = 2\n");
    s.w.admin
        .ok(&["factor", "add", "push", "--ntfy-topic", "jit-admins-3x"]);
    // bob has no push: a code is asked for.
    s.w.bob.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    let wrong = if s.w.bob.code() == "000000" {
        "111111"
    } else {
        "000000"
    };
    // Two sources, one wrong code each: the second for bob raises the alert.
    for rhost in ["192.0.2.21", "192.0.2.22"] {
        let attempt = match s.rt.block_on(s.host.login_begin(&ssh_from(rhost))).unwrap() {
            LoginBegun::Challenge { attempt, .. } => attempt,
            other => panic!("{other:?}"),
        };
        let verify = LoginVerify {
            code: Secret::new(wrong),
        };
        match s
            .rt
            .block_on(s.host.login_verify(&attempt, &verify))
            .unwrap()
        {
            LoginVerified::Denied { reason, .. } => assert_eq!(reason, DenyReason::WrongCode),
            other => panic!("{other:?}"),
        }
    }
    jit_tests::wait_for(
        "the admins' alert",
        std::time::Duration::from_secs(30),
        || {
            s.ntfy
                .all()
                .iter()
                .any(|r| r.json()["topic"] == "jit-admins-3x")
        },
    );
    let alert = s
        .ntfy
        .all()
        .into_iter()
        .map(|r| r.json())
        .find(|m| m["topic"] == "jit-admins-3x")
        .unwrap();
    assert_eq!(alert["title"], "Codes guessed: admin on web01", "{alert}");
    let text = alert["message"].as_str().unwrap();
    assert!(
        text.contains("bob's reservations") && text.contains("bob is not locked out"),
        "{text}"
    );
    assert!(!text.contains(wrong), "{text}");
    let h = s.hook.nth("/hook", 1);
    assert_eq!(h.header("x-jit-event"), Some("login.guessing_alert"));
    assert!(webhook::verify(
        SECRET.as_bytes(),
        &h.body,
        h.header("x-jit-signature-256").unwrap()
    ));
    // bob is not locked out: his code, from a third place, logs him in.
    let attempt = match s
        .rt
        .block_on(s.host.login_begin(&ssh_from("192.0.2.23")))
        .unwrap()
    {
        LoginBegun::Challenge { attempt, .. } => attempt,
        other => panic!("{other:?}"),
    };
    let verify = LoginVerify {
        code: Secret::new(s.w.bob.next_code()),
    };
    match s
        .rt
        .block_on(s.host.login_verify(&attempt, &verify))
        .unwrap()
    {
        LoginVerified::Granted { .. } => {}
        other => panic!("{other:?}"),
    }
}
