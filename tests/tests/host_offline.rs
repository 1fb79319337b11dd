//! Offline: with the server unreachable, a login to an `offline = "cached"` account is decided by
//! jitd from the grant it kept for this host's reservation, once; every other shared account is
//! refused; and when the server returns it learns of the login and consumes the reservation.

use jit_tests::host::{Host, PATIENCE, wrong_code};
use jit_tests::{World, wait_for};

#[test]
fn a_cached_account_logs_in_once_while_the_server_is_down_and_is_reconciled() {
    let mut w = World::new();
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
        "--offline",
        "cached",
    ]);
    let mut host = Host::start(&w);
    let id = w
        .alice
        .jitctl
        .json(&["reserve", "vault", "--host", "web01"])["id"]
        .as_i64()
        .unwrap();
    w.bob.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    let kept = host.path().join("state/offline.json");
    wait_for("jitd to keep the offline grant", PATIENCE, || {
        std::fs::read_to_string(&kept)
            .is_ok_and(|t| t.contains(&format!("\"reservation_id\":{id}")))
    });
    let text = std::fs::read_to_string(&kept).unwrap();
    assert!(
        !text.contains("admin"),
        "no grant for an account whose policy is deny: {text}"
    );

    w.server.kill();
    // The default policy stays closed.
    host.login("admin", &w.bob.next_code())
        .assert_failed()
        .assert_shows("cannot be reached");
    // A wrong code is refused by jitd itself.
    host.login("vault", &wrong_code(&w.alice))
        .assert_failed()
        .assert_shows("not valid");
    // The holder's code gets in, once.
    host.login("vault", &w.alice.next_code())
        .assert_ok()
        .assert_shows("JIT_PERSON=alice");
    host.login("vault", &w.alice.code())
        .assert_failed()
        .assert_shows("already used");
    // Not even a jitd restart makes the reservation usable again.
    host.kill();
    host.run();
    host.login("vault", &w.alice.code())
        .assert_failed()
        .assert_shows("already used");

    // The server comes back. The next login to vault delivers the offline login first (before
    // jitd's queue, which waits out its back-off, would): the server has consumed the
    // reservation by the time the login begins, so there is none to prompt for.
    w.server.restart();
    host.login("vault", &w.alice.next_code())
        .assert_failed()
        .assert_shows("vault is not reserved on web01");
    wait_for("the server to learn of the offline login", PATIENCE, || {
        w.server
            .sql(&format!("SELECT state FROM reservations WHERE id = {id}"))
            == "consumed"
    });
    let audit = w.admin.json(&["audit", "--account", "vault"]);
    let ev = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "login.offline");
    let ev = ev.expect("login.offline audited");
    assert_eq!(ev["person"], "alice");
    assert_eq!(ev["result"], "ok");
    assert_eq!(ev["host"], "web01");
    // The step used offline is burnt: no host accepts its code (or an older one) again.
    let reconciled = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "login.reconcile" && e["result"] == "ok")
        .expect("login.reconcile audited");
    let step = reconciled["detail"]["totp_step"].as_i64().unwrap();
    let last: i64 = w
        .server
        .sql("SELECT totp_last_step FROM persons WHERE name = 'alice'")
        .parse()
        .unwrap();
    assert!(last >= step, "last used step {last} < offline step {step}");
}
