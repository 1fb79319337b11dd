//! Three jit-server processes (replicas) on one PostgreSQL database stay exactly-once: a
//! reservation is exclusive and consumed once, and an expiry is swept once, whichever replica
//! each request reaches. The replicas share the CA, server certificate and at-rest key through
//! `jit-server export` and `jit-server init --from`.
//!
//! These tests always run on PostgreSQL (a private cluster of their own), whatever
//! `JIT_TEST_DATABASE` says: replicas need a database that several processes share over a
//! connection.

use jit_proto::api::{
    DenyReason, LoginBegin, LoginBegun, LoginOrigin, LoginVerified, LoginVerify, NewReservation,
};
use jit_proto::{AccountName, HostName, Secret};
use jit_tests::{Postgres, Server, World, enroll, runtime, totp_at};

/// A world on PostgreSQL with two more replicas of its server.
fn replicated() -> (World, [Server; 2]) {
    let w = World::on(Server::start_on(Some(Postgres::start())));
    let replicas = [w.server.replica(), w.server.replica()];
    (w, replicas)
}

fn urls(w: &World, replicas: &[Server; 2]) -> [String; 3] {
    [
        w.server.url.clone(),
        replicas[0].url.clone(),
        replicas[1].url.clone(),
    ]
}

/// The same person's credential, pointed at the replica at `url`.
fn person_at(url: &str, j: &jit_tests::Jitctl) -> jit_client::Client {
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(j.dir.path().join("config.json")).unwrap())
            .unwrap();
    jit_client::Client::new(
        url,
        jit_client::Trust::CaPem(cfg["ca_pem"].as_str().unwrap().to_owned()),
        Some(Secret::new(cfg["token"].as_str().unwrap())),
        std::time::Duration::from_secs(120),
    )
    .unwrap()
}

fn reservation(host: &str) -> NewReservation {
    NewReservation {
        account: AccountName::new("admin").unwrap(),
        host: HostName::new(host).unwrap(),
        duration_secs: None,
        reason: None,
    }
}

fn begin() -> LoginBegin {
    LoginBegin {
        account: AccountName::new("admin").unwrap(),
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

#[test]
fn two_hundred_racing_reservations_over_three_replicas_make_one_winner() {
    let (w, replicas) = replicated();
    let urls = urls(&w, &replicas);
    let mut persons = vec![w.alice, w.bob];
    for i in 0..4 {
        let name = format!("p{i}");
        persons.push(enroll(&w.server, &w.admin, &name));
        w.admin.ok(&["group", "add-member", "ops", &name]);
    }
    let rt = runtime();
    // Every person on every replica.
    let clients: Vec<jit_client::Client> = persons
        .iter()
        .flat_map(|p| urls.iter().map(|u| person_at(u, &p.jitctl)))
        .collect();
    let results = rt.block_on(async {
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let c = clients[i % clients.len()].clone();
                tokio::spawn(async move { c.reserve(&reservation("web01")).await })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "exactly one reservation wins");
    // Every loser is told who holds it: none fails with an internal error, because a
    // transaction that PostgreSQL undid (a serialization failure) runs again and then sees
    // the winner.
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(
            e.code(),
            Some(jit_proto::api::ErrorCode::ReservationTaken),
            "{e}"
        );
    }
    assert_eq!(
        w.server
            .sql("SELECT COUNT(*) FROM reservations WHERE state = 'active'"),
        "1"
    );
    // Every refusal is audited once.
    assert_eq!(
        w.server.sql(
            "SELECT COUNT(*) FROM audit WHERE action = 'reservation.create' AND result = 'denied'"
        ),
        "199"
    );
    drop(replicas);
}

#[test]
fn one_hundred_racing_verifies_from_three_hosts_over_three_replicas_consume_once() {
    let (w, replicas) = replicated();
    let urls = urls(&w, &replicas);
    let rt = runtime();
    // web01 holds the reservation; web02 and web03 are other hosts that try to verify its
    // logins' attempts.
    let mut joins = vec![w.join_token.clone()];
    for h in ["web02", "web03"] {
        let v = w.admin.json(&["host", "add", h, "--label", "web"]);
        joins.push(v["join_token"].as_str().unwrap().to_owned());
    }
    let hosts: Vec<jit_tests::HostCreds> = joins
        .iter()
        .map(|t| jit_tests::join_host_creds(&rt, t))
        .collect();
    w.alice.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    // 100 logins begun on web01, spread over the replicas.
    let mut attempts = Vec::new();
    for i in 0..100 {
        let c = hosts[0].client_at(&urls[i % 3]);
        match rt.block_on(c.login_begin(&begin())).unwrap() {
            LoginBegun::Challenge { attempt, .. } => attempts.push(attempt),
            other => panic!("expected a challenge, got {other:?}"),
        }
    }
    // Two valid codes, computed for this step and the next from the enrolled secret (no
    // waiting for the clock). Forget the step enrollment used so both are fresh: then only the
    // reservation's single use can leave one winner.
    w.server
        .sql("UPDATE persons SET totp_last_step = NULL WHERE name = 'alice'");
    let now = jit_tests::now();
    let codes = [
        totp_at(&w.alice.secret, now),
        totp_at(&w.alice.secret, now + 30),
    ];
    let results = rt.block_on(async {
        let tasks: Vec<_> = attempts
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                // Every third call comes from web01 itself; the others from web02 or web03,
                // each through another replica.
                let host = &hosts[i % 3];
                let c = host.client_at(&urls[(i / 3) % 3]);
                let code = codes[i % 2].clone();
                let from_holder = i % 3 == 0;
                tokio::spawn(async move {
                    let r = c
                        .login_verify(
                            &a,
                            &LoginVerify {
                                code: Secret::new(code),
                            },
                        )
                        .await;
                    (from_holder, r)
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let granted: Vec<_> = results
        .iter()
        .filter(|(_, r)| matches!(r, Ok(LoginVerified::Granted { .. })))
        .collect();
    assert_eq!(granted.len(), 1, "exactly one login consumes: {results:?}");
    assert!(granted[0].0, "only the reservation's host can log in");
    for (from_holder, r) in &results {
        match r {
            Ok(LoginVerified::Granted { .. }) => {}
            // web01's losers find the reservation used, never a replayed code; another host
            // cannot even see web01's attempts (unknown to it, as if expired).
            Ok(LoginVerified::Denied { reason, .. }) => {
                let expected = if *from_holder {
                    DenyReason::AlreadyUsed
                } else {
                    DenyReason::AttemptExpired
                };
                assert_eq!(*reason, expected, "{r:?}");
            }
            other => panic!("unexpected answer: {other:?}"),
        }
    }
    assert_eq!(w.server.sql("SELECT state FROM reservations"), "consumed");
    drop(replicas);
}

#[test]
fn an_expiry_is_swept_and_audited_once_across_replicas() {
    let (w, replicas) = replicated();
    let urls = urls(&w, &replicas);
    w.admin.ok(&["host", "add", "web02", "--label", "web"]);
    let r = w
        .alice
        .jitctl
        .json(&["reserve", "admin", "--host", "web01"]);
    let id = r["id"].as_i64().unwrap();
    // Move its end into the past instead of waiting for it.
    w.server.sql(&format!(
        "UPDATE reservations SET expires_at = strftime('%s','now') - 1 WHERE id = {id}"
    ));
    // Every replica sweeps in the background; requests sweep too. Race the replicas' request
    // sweeps against each other and the background ones: 30 reservations of web02 (each
    // sweeps first), spread over the three.
    let rt = runtime();
    let clients: Vec<jit_client::Client> =
        urls.iter().map(|u| person_at(u, &w.bob.jitctl)).collect();
    let results = rt.block_on(async {
        let tasks: Vec<_> = (0..30)
            .map(|i| {
                let c = clients[i % 3].clone();
                tokio::spawn(async move { c.reserve(&reservation("web02")).await })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert_eq!(
        w.server
            .sql(&format!("SELECT state FROM reservations WHERE id = {id}")),
        "expired"
    );
    let expiries = || {
        w.server.sql(
            "SELECT COUNT(*) FROM audit WHERE action = 'reservation.expire' AND host = 'web01'",
        )
    };
    assert_eq!(expiries(), "1");
    // Then let every replica's background sweep pass over it at least once more (they run
    // every 15 s): still one expiry in the audit log.
    std::thread::sleep(std::time::Duration::from_secs(16));
    assert_eq!(expiries(), "1");
    drop(replicas);
}

#[test]
fn a_commit_whose_connection_is_lost_is_of_unknown_outcome_and_never_run_again() {
    let pg = Postgres::start();
    let rt = runtime();
    let store = rt
        .block_on(jit_server::store::Store::open(&pg.url()))
        .unwrap();
    let mut tx = rt.block_on(store.write()).unwrap();
    rt.block_on(jit_server::store::persons::insert_admin_token(
        &mut tx, "lost", 1,
    ))
    .unwrap();
    // The server process serving this transaction dies without a word (SIGKILL): the client
    // cannot know whether a COMMIT it sent got through.
    let pid: i32 = pg
        .psql(
            "SELECT pid FROM pg_stat_activity WHERE datname = 'jit' \
             AND state = 'idle in transaction'",
        )
        .parse()
        .unwrap();
    // SAFETY: kill(2) with a pid read from the cluster this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let err = rt.block_on(tx.commit()).unwrap_err();
    assert!(
        matches!(err, jit_server::store::StoreError::OutcomeUnknown(_)),
        "{err}"
    );
    assert!(!err.is_serialization_failure(), "never retried: {err}");
    assert!(err.to_string().contains("unknown"), "{err}");
    rt.block_on(store.close());
}
