//! The host-facing API: verify-and-consume is atomic and single-use, exclusivity holds under
//! concurrency and across two server processes on one database, TOTP replays, and wrong codes
//! that hold back their source but never the holder.

use jit_proto::api::{
    DenyReason, LoginBegin, LoginBegun, LoginOrigin, LoginVerified, LoginVerify, NewReservation,
};
use jit_proto::{AccountName, HostName, Secret};
use jit_tests::{World, client_for, enroll, join_host, runtime};

fn begin(account: &str) -> LoginBegin {
    LoginBegin {
        account: AccountName::new(account).unwrap(),
        origin: LoginOrigin {
            service: "sshd".into(),
            rhost: Some("10.0.0.9".into()),
            tty: None,
            ruser: None,
            ssh_key: None,
            source: None,
        },
    }
}

fn attempt_of(b: LoginBegun) -> String {
    match b {
        LoginBegun::Challenge { attempt, .. } => attempt,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

fn verify(code: &str) -> LoginVerify {
    LoginVerify {
        code: Secret::new(code),
    }
}

#[test]
fn verify_consumes_once_and_a_second_login_is_refused() {
    let w = World::new();
    let rt = runtime();
    let host = join_host(&rt, &w.join_token);
    // No reservation: refused before any code, with how to reserve; the holder is never named.
    match rt.block_on(host.login_begin(&begin("admin"))).unwrap() {
        LoginBegun::Denied { reason, message } => {
            assert_eq!(reason, DenyReason::NoReservation);
            assert!(
                message.contains("jitctl reserve admin --host web01"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Not a shared account here: the host must leave it alone.
    match rt.block_on(host.login_begin(&begin("postgres"))).unwrap() {
        LoginBegun::Denied { reason, .. } => assert_eq!(reason, DenyReason::NotShared),
        other => panic!("{other:?}"),
    }
    w.alice.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    let attempt = attempt_of(rt.block_on(host.login_begin(&begin("admin"))).unwrap());
    match rt
        .block_on(host.login_verify(&attempt, &verify(&w.alice.next_code())))
        .unwrap()
    {
        LoginVerified::Granted { person, .. } => assert_eq!(person.as_str(), "alice"),
        other => panic!("{other:?}"),
    }
    let s = w.alice.jitctl.json(&["status", "--all"]);
    assert_eq!(s["reservations"][0]["state"], "consumed");
    // The same attempt cannot be answered twice (whatever the code).
    match rt
        .block_on(host.login_verify(&attempt, &verify(&w.alice.code_in(1))))
        .unwrap()
    {
        LoginVerified::Denied { reason, .. } => assert_eq!(reason, DenyReason::AttemptExpired),
        other => panic!("{other:?}"),
    }
    // And a new login finds no reservation.
    match rt.block_on(host.login_begin(&begin("admin"))).unwrap() {
        LoginBegun::Denied { reason, .. } => assert_eq!(reason, DenyReason::NoReservation),
        other => panic!("{other:?}"),
    }
    let audit = w.admin.json(&["audit", "--account", "admin"]);
    let granted = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "login.verify" && e["result"] == "ok");
    let granted = granted.expect("granted login audited");
    assert_eq!(granted["person"], "alice");
    assert_eq!(granted["host"], "web01");
    assert_eq!(granted["detail"]["origin"]["rhost"], "10.0.0.9");
}

#[test]
fn wrong_and_replayed_codes_and_someone_elses_reservation() {
    let w = World::new();
    let rt = runtime();
    let host = join_host(&rt, &w.join_token);
    w.bob.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    // alice types her own (valid) code while bob holds the account.
    let attempt = attempt_of(rt.block_on(host.login_begin(&begin("admin"))).unwrap());
    match rt
        .block_on(host.login_verify(&attempt, &verify(&w.alice.code())))
        .unwrap()
    {
        LoginVerified::Denied { reason, message } => {
            assert_eq!(reason, DenyReason::WrongCode);
            assert!(
                !message.contains("bob"),
                "the holder must not be revealed: {message}"
            );
        }
        other => panic!("{other:?}"),
    }
    // bob's code works once...
    let code = w.bob.next_code();
    let attempt = attempt_of(rt.block_on(host.login_begin(&begin("admin"))).unwrap());
    assert!(matches!(
        rt.block_on(host.login_verify(&attempt, &verify(&code)))
            .unwrap(),
        LoginVerified::Granted { .. }
    ));
    // ...and the same code on a fresh reservation is a replay.
    w.bob.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    let attempt = attempt_of(rt.block_on(host.login_begin(&begin("admin"))).unwrap());
    match rt
        .block_on(host.login_verify(&attempt, &verify(&code)))
        .unwrap()
    {
        LoginVerified::Denied { reason, message } => {
            assert_eq!(reason, DenyReason::ReplayedCode);
            assert!(message.contains("already used"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // The replay did not burn the reservation: it is still there for bob's next code (that a
    // replay consumes nothing is a row of the decision's table test, with a fixed clock).
    let s = w.bob.jitctl.json(&["status"]);
    assert_eq!(s["reservations"][0]["state"], "active", "{s}");
    match rt.block_on(host.login_begin(&begin("admin"))).unwrap() {
        LoginBegun::Challenge { .. } => {}
        other => panic!("after a replay: {other:?}"),
    }
}

/// A login to `account` at a prompt whose source the host read from the kernel.
fn begin_from(account: &str, source: &str) -> LoginBegin {
    let mut b = begin(account);
    b.origin.source = Some(source.into());
    b
}

#[test]
fn wrong_codes_hold_back_their_source_and_alert_the_admins_but_never_lock_the_holder_out() {
    let w = World::new();
    let rt = runtime();
    let host = join_host(&rt, &w.join_token);
    w.alice.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    let right = w.alice.code();
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let guess = |source: &str| {
        let attempt = attempt_of(
            rt.block_on(host.login_begin(&begin_from("admin", source)))
                .unwrap(),
        );
        match rt
            .block_on(host.login_verify(&attempt, &verify(wrong)))
            .unwrap()
        {
            LoginVerified::Denied { reason, message } => {
                assert_eq!(reason, DenyReason::WrongCode, "{message}");
                message
            }
            other => panic!("{other:?}"),
        }
    };
    // Another local user (uid 1500 behind su) guesses. A prompt opened before the guessing
    // starts is answered last.
    let early = attempt_of(
        rt.block_on(host.login_begin(&begin_from("admin", "uid:1500")))
            .unwrap(),
    );
    assert!(!guess("uid:1500").contains("try again"));
    assert!(!guess("uid:1500").contains("try again"));
    assert!(guess("uid:1500").contains("Too many wrong codes from here: try again after"));
    // Its fourth and fifth tries get no prompt; the early prompt's answer is not even looked at,
    // though it is the right code.
    for _ in 0..2 {
        match rt
            .block_on(host.login_begin(&begin_from("admin", "uid:1500")))
            .unwrap()
        {
            LoginBegun::Denied { reason, message } => {
                assert_eq!(reason, DenyReason::LockedOut);
                assert!(
                    message.contains(
                        "Too many wrong codes from here (uid:1500) on web01. Try again after"
                    ),
                    "{message}"
                );
                assert!(!message.contains("alice"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
    match rt
        .block_on(host.login_verify(&early, &verify(&w.alice.code_in(1))))
        .unwrap()
    {
        LoginVerified::Denied { reason, .. } => assert_eq!(reason, DenyReason::LockedOut),
        other => panic!("a waiting source's right code: {other:?}"),
    }
    // Others guess from three more sources: the tenth wrong code for alice, from all of them
    // together, is audited and alerts the admins.
    for source in ["addr:192.0.2.1", "addr:192.0.2.2"] {
        for _ in 0..3 {
            guess(source);
        }
    }
    guess("addr:192.0.2.3");
    let audit = w.admin.json(&["audit", "--person", "alice"]);
    let events = audit["events"].as_array().unwrap();
    let alerts: Vec<_> = events
        .iter()
        .filter(|e| e["action"] == "login.guessing_alert")
        .collect();
    assert_eq!(alerts.len(), 1, "{audit}");
    let reason = alerts[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("10 wrong codes for alice's reservations")
            && reason.contains("addr:192.0.2.3"),
        "{reason}"
    );
    assert!(
        !events.iter().any(|e| e["action"] == "person.lockout"),
        "{audit}"
    );
    let p = w.admin.json(&["person", "show", "alice"]);
    assert!(p["locked_until"].is_null(), "{p}");
    // Wrong codes are never written anywhere.
    assert!(!w.server.log().contains(wrong));
    assert!(!w.server.log().contains(&right));

    // alice, at her own terminal, logs in with her code at once.
    let attempt = attempt_of(
        rt.block_on(host.login_begin(&begin_from("admin", "tty:pts/0")))
            .unwrap(),
    );
    match rt
        .block_on(host.login_verify(&attempt, &verify(&w.alice.next_code())))
        .unwrap()
    {
        LoginVerified::Granted { .. } => {}
        other => panic!("the holder after others guessed: {other:?}"),
    }
    // And on another host, from wherever she sits there.
    let token = w.admin.json(&["host", "add", "web02"])["join_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let web02 = join_host(&rt, &token);
    w.alice.jitctl.ok(&["reserve", "admin", "--host", "web02"]);
    let attempt = attempt_of(
        rt.block_on(web02.login_begin(&begin_from("admin", "uid:1000")))
            .unwrap(),
    );
    match rt
        .block_on(web02.login_verify(&attempt, &verify(&w.alice.next_code())))
        .unwrap()
    {
        LoginVerified::Granted { .. } => {}
        other => panic!("the holder on another host: {other:?}"),
    }
}

#[test]
fn two_hundred_concurrent_reservations_one_winner_across_two_servers() {
    let w = World::new();
    let second = second_process(&w);

    let mut persons = vec![w.alice, w.bob];
    for i in 0..6 {
        let p = enroll(&w.server, &w.admin, &format!("p{i}"));
        w.admin
            .ok(&["group", "add-member", "ops", &format!("p{i}")]);
        persons.push(p);
    }
    let rt = runtime();
    let clients: Vec<_> = persons.iter().map(|p| client_for(&p.jitctl)).collect();
    // Half of the clients talk to the second process.
    let clients: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c
            } else {
                retarget(c, &second.url, &persons[i].jitctl)
            }
        })
        .collect();
    let results = rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..200 {
            let c = clients[i % clients.len()].clone();
            tasks.push(tokio::spawn(async move {
                c.reserve(&NewReservation {
                    account: AccountName::new("admin").unwrap(),
                    host: HostName::new("web01").unwrap(),
                    duration_secs: None,
                    reason: None,
                })
                .await
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "exactly one reservation must win");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(
            r.code(),
            Some(jit_proto::api::ErrorCode::ReservationTaken),
            "{r}"
        );
    }
    assert_eq!(
        w.server
            .sql("SELECT COUNT(*) FROM reservations WHERE state = 'active'"),
        "1"
    );
    // Two processes wrote 200 audit rows at once: one chain, no fork, no gap.
    let v = w.admin.json(&["audit", "verify"]);
    assert!(v["broken"].is_null(), "{v}");
    assert_eq!(
        v["rows"].to_string(),
        w.server.sql("SELECT COUNT(*) FROM audit")
    );
}

#[test]
fn one_hundred_concurrent_verifies_consume_once_across_two_servers() {
    let w = World::new();
    let rt = runtime();
    let second = second_process(&w);
    let creds = jit_tests::join_host_creds(&rt, &w.join_token);
    let host = creds.client();
    let host2 = creds.client_at(&second.url);
    w.alice.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    let mut attempts = Vec::new();
    for _ in 0..100 {
        attempts.push(attempt_of(
            rt.block_on(host.login_begin(&begin("admin"))).unwrap(),
        ));
    }
    // Two different valid codes (this step and the next). Replay protection alone (each step
    // once, never an older one after a newer) would let a second login in whenever the lower
    // step happens to be accepted first, since the higher one is still fresh after it; a single
    // winner in every interleaving needs the reservation's single use. What proves it is how the
    // others are refused: all as "already used", none as a replayed code. Forget the step
    // enrollment used, so both codes are fresh without waiting for the clock.
    w.server
        .sql("UPDATE persons SET totp_last_step = NULL WHERE name = 'alice'");
    let codes = [w.alice.code(), w.alice.code_in(1)];
    let results = rt.block_on(async {
        let mut tasks = Vec::new();
        for (i, a) in attempts.into_iter().enumerate() {
            let c = if i % 2 == 0 {
                host.clone()
            } else {
                host2.clone()
            };
            let code = codes[i % 2].clone();
            tasks.push(tokio::spawn(async move {
                c.login_verify(&a, &verify(&code)).await
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap().unwrap());
        }
        out
    });
    let granted = results
        .iter()
        .filter(|r| matches!(r, LoginVerified::Granted { .. }))
        .count();
    assert_eq!(
        granted, 1,
        "exactly one login may consume the reservation: {results:?}"
    );
    for r in &results {
        if let LoginVerified::Denied { reason, .. } = r {
            assert_eq!(
                *reason,
                DenyReason::AlreadyUsed,
                "a loser must be stopped by the consumed reservation, not by replay protection"
            );
        }
    }
    assert_eq!(w.server.sql("SELECT state FROM reservations"), "consumed");
}

/// The same person's credential, pointed at another server process (same CA, same database).
fn retarget(_c: jit_client::Client, url: &str, j: &jit_tests::Jitctl) -> jit_client::Client {
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(j.dir.path().join("config.json")).unwrap())
            .unwrap();
    jit_client::Client::new(
        url,
        jit_client::Trust::CaPem(cfg["ca_pem"].as_str().unwrap().to_owned()),
        Some(Secret::new(cfg["token"].as_str().unwrap())),
        std::time::Duration::from_secs(60),
    )
    .unwrap()
}

/// A second `jit-server run` on the same data material and the same database.
fn second_process(w: &World) -> jit_tests::Server {
    w.server.replica()
}

#[test]
fn offline_grants_only_for_cached_accounts_and_reconciled_once() {
    let w = World::new();
    let rt = runtime();
    let host = join_host(&rt, &w.join_token);
    w.admin.ok(&[
        "account",
        "add",
        "root",
        "--existing",
        "--group",
        "ops",
        "--hosts",
        "web*",
        "--offline",
        "cached",
    ]);
    w.alice.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    let r = w.alice.jitctl.json(&["reserve", "root", "--host", "web01"]);
    let id = r["id"].as_i64().unwrap();
    // The grant is computed in the background; only the cached account gets one.
    jit_tests::wait_for(
        "the offline grant",
        std::time::Duration::from_secs(30),
        || {
            !rt.block_on(host.offline_grants())
                .unwrap()
                .grants
                .is_empty()
        },
    );
    let grants = rt.block_on(host.offline_grants()).unwrap().grants;
    assert_eq!(grants.len(), 1);
    let g = &grants[0];
    assert_eq!(
        (g.account.as_str(), g.person.as_str(), g.reservation_id),
        ("root", "alice", id)
    );
    // argon2id at its full cost, under a salt of the grant's own.
    assert_eq!(g.kdf, "argon2id:m=19456,t=2,p=1");
    let kdf = jit_proto::offline::Kdf::parse(&g.kdf).unwrap();
    // The hashes verify the real code of their step, and nothing else.
    let salt = base64_decode(&g.salt);
    assert_eq!(salt.len(), 16);
    let now_step = jit_tests::now() / 30;
    let h = g
        .codes
        .iter()
        .find(|c| c.step == now_step)
        .expect("a hash for now");
    let code = jit_tests::totp_at(&w.alice.secret, now_step * 30);
    assert!(jit_proto::offline::verify_code(&code, &salt, h, &kdf));
    let other = if code == "000000" { "111111" } else { "000000" };
    assert!(!jit_proto::offline::verify_code(other, &salt, h, &kdf));
    assert!(g.codes.len() <= 13, "a 5-minute window: {}", g.codes.len());
    // No other host gets it.
    let other_host = jit_tests::join_host(
        &rt,
        w.admin.json(&["host", "add", "web02"])["join_token"]
            .as_str()
            .unwrap(),
    );
    assert!(
        rt.block_on(other_host.offline_grants())
            .unwrap()
            .grants
            .is_empty()
    );

    // A grant of an older format (PBKDF2, before argon2id) is never served: the server issues
    // it anew in the current format, under a salt of its own.
    w.server.sql(&format!(
        "UPDATE offline_grants SET kdf = 'pbkdf2-hmac-sha256' WHERE reservation_id = {id}"
    ));
    assert!(
        rt.block_on(host.offline_grants())
            .unwrap()
            .grants
            .is_empty()
    );
    jit_tests::wait_for(
        "the grant issued anew",
        std::time::Duration::from_secs(30),
        || {
            rt.block_on(host.offline_grants())
                .unwrap()
                .grants
                .first()
                .is_some_and(|n| n.kdf == g.kdf && n.salt != g.salt)
        },
    );

    // The host reports a login it allowed offline: the reservation is consumed, once.
    let batch = offline_event("offline-1", "root", "alice", id, jit_tests::now(), now_step);
    assert_eq!(rt.block_on(host.host_events(&batch)).unwrap().stored, 1);
    assert_eq!(
        rt.block_on(host.host_events(&batch)).unwrap().stored,
        0,
        "redelivery is ignored"
    );
    assert_eq!(
        w.server
            .sql(&format!("SELECT state FROM reservations WHERE id = {id}")),
        "consumed"
    );
    assert!(
        rt.block_on(host.offline_grants())
            .unwrap()
            .grants
            .is_empty()
    );
    // The step used offline cannot be used online afterwards.
    assert_eq!(
        w.server
            .sql("SELECT totp_last_step FROM persons WHERE name = 'alice'"),
        now_step.to_string()
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    let t: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        buf = (buf << 6) | t.iter().position(|x| *x == c).unwrap() as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

fn offline_event(
    id: &str,
    account: &str,
    person: &str,
    reservation: i64,
    at: i64,
    step: i64,
) -> jit_proto::api::HostEvents {
    jit_proto::api::HostEvents {
        events: vec![jit_proto::api::HostEvent {
            id: id.into(),
            at,
            action: "login.offline".into(),
            account: AccountName::new(account).unwrap(),
            person: Some(jit_proto::PersonName::new(person).unwrap()),
            result: jit_proto::api::AuditResult::Ok,
            reason: Some("decided offline from the cached grant".into()),
            origin: LoginOrigin {
                service: "sshd".into(),
                ..Default::default()
            },
            reservation_id: Some(reservation),
            attempt: None,
            totp_step: Some(step),
            ended: None,
        }],
    }
}

#[test]
fn offline_reconcile_refuses_what_the_grant_does_not_bound() {
    let w = World::new();
    let rt = runtime();
    let host = join_host(&rt, &w.join_token);
    let web02 = join_host(
        &rt,
        w.admin.json(&["host", "add", "web02"])["join_token"]
            .as_str()
            .unwrap(),
    );
    for name in ["root", "vault"] {
        w.admin.ok(&[
            "account",
            "add",
            name,
            "--existing",
            "--group",
            "ops",
            "--hosts",
            "web*",
            "--offline",
            "cached",
        ]);
    }
    let id = w.alice.jitctl.json(&["reserve", "root", "--host", "web01"])["id"]
        .as_i64()
        .unwrap();
    // `admin` stays offline = deny: no grant is ever issued for it.
    let denied_id = w
        .alice
        .jitctl
        .json(&["reserve", "admin", "--host", "web01"])["id"]
        .as_i64()
        .unwrap();
    // A grant is issued for vault on web02, but web02 never fetches it.
    let unserved_id = w.bob.jitctl.json(&["reserve", "vault", "--host", "web02"])["id"]
        .as_i64()
        .unwrap();
    jit_tests::wait_for(
        "the offline grants",
        std::time::Duration::from_secs(30),
        || {
            w.server.sql(&format!(
                "SELECT COUNT(*) FROM offline_grants WHERE reservation_id IN ({id}, {unserved_id})"
            )) == "2"
        },
    );
    // web01 fetches its grant (the server records that it was served).
    let grants = rt.block_on(host.offline_grants()).unwrap().grants;
    assert_eq!(grants.len(), 1, "{grants:?}");
    let last_step = || {
        w.server
            .sql("SELECT totp_last_step FROM persons WHERE name = 'alice'")
    };
    let before = last_step();
    let now = jit_tests::now();
    let step = now / 30;

    let refused = [
        // A step far in the future would lock alice out of TOTP for good.
        (
            "far-step",
            offline_event("far-step", "root", "alice", id, now, 9_000_000_000_000),
            "outside the reservation's window",
        ),
        (
            "old-step",
            offline_event("old-step", "root", "alice", id, now, step - 1000),
            "outside the reservation's window",
        ),
        // A login time that backdates the audit log, or is made up in the future.
        (
            "backdated",
            offline_event("backdated", "root", "alice", id, 1, step),
            "outside the reservation's window",
        ),
        (
            "future",
            offline_event("future", "root", "alice", id, now + 7200, step),
            "in the future",
        ),
        // A step inside the window, but not the one of the time the host says it logged in.
        (
            "mismatch",
            offline_event("mismatch", "root", "alice", id, now, step + 5),
            "not within one step",
        ),
        (
            "not-holder",
            offline_event("not-holder", "root", "bob", id, now, step),
            "held by alice, not bob",
        ),
        (
            "wrong-account",
            offline_event("wrong-account", "vault", "alice", id, now, step),
            "is for root, not vault",
        ),
        (
            "policy-deny",
            offline_event("policy-deny", "admin", "alice", denied_id, now, step),
            "no offline grant was issued",
        ),
        (
            "no-such",
            offline_event("no-such", "root", "alice", 999_999, now, step),
            "does not exist",
        ),
    ];
    for (name, batch, why) in &refused {
        assert_eq!(
            rt.block_on(host.host_events(batch)).unwrap().stored,
            1,
            "{name}"
        );
        assert_eq!(last_step(), before, "{name}: no step may be burned");
        assert_eq!(
            w.server
                .sql(&format!("SELECT state FROM reservations WHERE id = {id}")),
            "active",
            "{name}: nothing may be consumed"
        );
        let audit = w.admin.json(&["audit", "--host", "web01"]);
        let events = audit["events"].as_array().unwrap();
        let decision = events
            .iter()
            .find(|e| e["action"] == "login.reconcile" && e["detail"]["event"] == *name)
            .unwrap_or_else(|| panic!("{name}: the refusal is audited: {events:?}"));
        assert_eq!(decision["result"], "denied", "{name}");
        let reason = decision["reason"].as_str().unwrap();
        assert!(reason.contains(why), "{name}: {reason}");
        // The host's report is kept, as of when it arrived (never backdated).
        let report = events
            .iter()
            .find(|e| e["action"] == "login.offline" && e["detail"]["event"] == *name)
            .unwrap_or_else(|| panic!("{name}: the report is stored: {events:?}"));
        assert_eq!(
            report["detail"]["reported_at"], batch.events[0].at,
            "{name}"
        );
        let at = report["at"].as_i64().unwrap();
        assert!(
            at >= now && at <= jit_tests::now(),
            "{name}: stored as of its arrival, not as reported: {report}"
        );
    }
    // Another host cannot reconcile web01's reservation, and a grant that was never served to
    // its host cannot have been used.
    for (client, batch, why) in [
        (
            &web02,
            offline_event("other-host", "root", "alice", id, now, step),
            "not a reservation of this host",
        ),
        (
            &web02,
            offline_event("unserved", "vault", "bob", unserved_id, now, step),
            "never given to this host",
        ),
    ] {
        assert_eq!(rt.block_on(client.host_events(&batch)).unwrap().stored, 1);
        let audit = w.admin.json(&["audit", "--host", "web02"]);
        let found = audit["events"].as_array().unwrap().iter().any(|e| {
            e["action"] == "login.reconcile"
                && e["result"] == "denied"
                && e["reason"].as_str().unwrap().contains(why)
        });
        assert!(found, "{why}: {audit}");
    }
    assert_eq!(last_step(), before);
    assert_eq!(
        w.server.sql(&format!(
            "SELECT state FROM reservations WHERE id IN ({id}, {denied_id}, {unserved_id}) ORDER BY id"
        )),
        "active\nactive\nactive"
    );
    assert!(
        w.server
            .log()
            .contains("suspicious offline login report refused"),
        "refusals are logged as suspicious"
    );

    // The true report is reconciled: consumed as of its time, its step burned.
    let good = offline_event("good", "root", "alice", id, now, step);
    assert_eq!(rt.block_on(host.host_events(&good)).unwrap().stored, 1);
    assert_eq!(
        w.server.sql(&format!(
            "SELECT state, ended_at FROM reservations WHERE id = {id}"
        )),
        format!("consumed|{now}")
    );
    assert_eq!(last_step(), step.to_string());
    let audit = w.admin.json(&["audit", "--account", "root"]);
    let ok = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "login.reconcile" && e["result"] == "ok")
        .expect("the reconcile is audited");
    assert_eq!(ok["person"], "alice");
    assert!(
        ok["reason"]
            .as_str()
            .unwrap()
            .contains("reservation consumed"),
        "{ok}"
    );
    // A second report for the same reservation is refused: it was already consumed.
    let again = offline_event("again", "root", "alice", id, jit_tests::now(), step);
    assert_eq!(rt.block_on(host.host_events(&again)).unwrap().stored, 1);
    assert_eq!(last_step(), step.to_string());
}

#[test]
fn an_offline_grant_holds_fifteen_minutes_and_is_issued_anew_before_it_runs_out() {
    let w = World::new();
    let rt = runtime();
    let host = join_host(&rt, &w.join_token);
    w.admin.ok(&[
        "account",
        "add",
        "vault",
        "--uid",
        "60005",
        "--gid",
        "60005",
        "--home",
        "/home/vault",
        "--shell",
        "/bin/sh",
        "--group",
        "ops",
        "--hosts",
        "web*",
        "--ttl",
        "1h",
        "--max-ttl",
        "2h",
        "--offline",
        "cached",
    ]);
    let id = w
        .alice
        .jitctl
        .json(&["reserve", "vault", "--host", "web01"])["id"]
        .as_i64()
        .unwrap();
    let grant = || {
        rt.block_on(host.offline_grants())
            .unwrap()
            .grants
            .into_iter()
            .find(|g| g.reservation_id == id)
    };
    jit_tests::wait_for(
        "the offline grant",
        std::time::Duration::from_secs(30),
        || grant().is_some(),
    );
    // An hour's reservation: the grant holds the next 15 minutes only (a step of skew either
    // side).
    let first = grant().unwrap();
    let steps: Vec<i64> = first.codes.iter().map(|c| c.step).collect();
    let now_step = jit_tests::now() / 30;
    assert_eq!(steps.len(), 32, "{steps:?}");
    assert!(
        steps[0] >= now_step - 2 && steps[0] <= now_step,
        "{steps:?}"
    );
    // Time passes (moved in the database: the grant now ends in a minute). The next fetch
    // serves what is left and has the server issue the next 15 minutes, under a new salt.
    let ending = &first.codes[..4];
    w.server.sql(&format!(
        "UPDATE offline_grants SET codes = '{}' WHERE reservation_id = {id}",
        serde_json::to_string(ending).unwrap()
    ));
    assert_eq!(grant().unwrap().codes.len(), 4);
    jit_tests::wait_for(
        "the grant issued anew",
        std::time::Duration::from_secs(30),
        || grant().is_some_and(|g| g.codes.len() == 32 && g.salt != first.salt),
    );
    let next = grant().unwrap();
    assert!(next.codes[0].step >= steps[0], "{:?}", next.codes[0]);
    // The server remembers every step it gave the host, to bound what an offline login it
    // reports may have used.
    let served = w.server.sql(&format!(
        "SELECT served_first_step || ' ' || served_last_step FROM offline_grants \
         WHERE reservation_id = {id}"
    ));
    let last = next.codes.last().unwrap().step;
    assert_eq!(served, format!("{} {last}", steps[0]));
}
