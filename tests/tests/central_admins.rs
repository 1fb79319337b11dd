//! Named admins, tried as a new user would: the bootstrap token creates the first admin once,
//! every admin action is audited under a person's name, the admin role can be granted and
//! withdrawn (never from the last admin), credentials can be listed and revoked, person tokens
//! lapse when unused, and a person extends their own reservation within max-ttl.

use jit_tests::{Jitctl, World};

#[test]
fn the_bootstrap_token_makes_one_named_admin_once() {
    let w = World::new();
    // Spent on `admin` when the server started: a second use is refused.
    let again = Jitctl::new();
    let err = again.fails(
        8,
        &[
            "login",
            "--server",
            &w.server.url,
            "--ca-fingerprint",
            &w.server.fingerprint,
            "--token",
            &w.server.bootstrap_token,
            "--name",
            "mallory",
        ],
    );
    assert!(
        err.contains("already used") && err.contains("jit-server admin-token"),
        "{err}"
    );
    let persons = w.admin.json(&["person", "list"]);
    let names: Vec<&str> = persons
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "alice", "bob"]);
    // The creation is audited under the new admin's own name.
    let audit = w.admin.json(&["audit", "--person", "admin"]);
    let first = &audit["events"][0];
    assert_eq!(first["action"], "person.add");
    assert_eq!(first["actor"], "person:admin");
    // Recovery: a new bootstrap token from the server machine makes alice an admin.
    let out = w
        .server
        .command()
        .args(["admin-token", "--json", "--data"])
        .arg(w.server.data_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let alice_admin = Jitctl::new();
    let v = alice_admin.json(&[
        "login",
        "--server",
        &w.server.url,
        "--ca-fingerprint",
        &w.server.fingerprint,
        "--token",
        token["admin_token"].as_str().unwrap(),
        "--name",
        "alice",
    ]);
    assert_eq!(v["created"], false);
    assert_eq!(
        v["enrollment_code"],
        serde_json::Value::Null,
        "alice has a factor"
    );
    assert_eq!(alice_admin.json(&["whoami"])["kind"], "admin");
    alice_admin.ok(&["group", "add", "dbas"]);
    let audit = alice_admin.json(&["audit"]);
    let events = audit["events"].as_array().unwrap();
    assert!(
        events.iter().all(|e| e["actor"] != "admin"),
        "no anonymous admin: {events:?}"
    );
    let added = events
        .iter()
        .find(|e| e["action"] == "group.add" && e["detail"]["group"] == "dbas");
    assert_eq!(added.unwrap()["actor"], "person:alice");
}

#[test]
fn the_admin_role_is_granted_and_withdrawn_but_never_from_the_last_admin() {
    let w = World::new();
    let err = w.alice.jitctl.fails(3, &["person", "list"]);
    assert!(err.contains("this needs an admin"), "{err}");
    let err = w.admin.fails(3, &["person", "revoke-admin", "admin"]);
    assert!(err.contains("last admin"), "{err}");
    let err = w.admin.fails(3, &["person", "disable", "admin"]);
    assert!(err.contains("last admin"), "{err}");
    w.admin.ok(&["person", "grant-admin", "alice"]);
    assert_eq!(
        w.alice
            .jitctl
            .json(&["person", "list"])
            .as_array()
            .unwrap()
            .len(),
        3
    );
    w.alice.jitctl.ok(&["person", "revoke-admin", "admin"]);
    let err = w.admin.fails(3, &["person", "list"]);
    assert!(err.contains("this needs an admin"), "{err}");
    let carol = w.alice.jitctl.json(&["person", "add", "carol", "--admin"]);
    assert_eq!(carol["person"], "carol");
    let show = w.alice.jitctl.json(&["person", "show", "carol"]);
    assert_eq!(show["admin"], true);
    let audit = w.alice.jitctl.json(&["audit", "--person", "admin"]);
    let revoked = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "person.revoke_admin")
        .expect("audited");
    assert_eq!(revoked["actor"], "person:alice");
}

#[test]
fn tokens_are_listed_revoked_and_lapse_when_unused() {
    let w = World::new();
    let all = w.admin.json(&["token", "list"]);
    let tokens = all["tokens"].as_array().unwrap();
    let owners: Vec<&str> = tokens
        .iter()
        .map(|t| t["owner"].as_str().unwrap())
        .collect();
    for who in ["admin", "alice", "bob"] {
        assert!(owners.contains(&who), "{owners:?}");
    }
    // A person sees only their own.
    let mine = w.alice.jitctl.json(&["token", "list"]);
    let mine = mine["tokens"].as_array().unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["owner"], "alice");
    assert!(mine[0]["expires_at"].as_i64().unwrap() > jit_tests::now() + 80 * 86_400);
    // Each use moves the end forward: set it close, use it, and it is far again.
    w.server
        .sql("UPDATE person_tokens SET expires_at = strftime('%s','now') + 30, last_used_at = 0");
    w.alice.jitctl.ok(&["status"]);
    let mine = w.alice.jitctl.json(&["token", "list"]);
    assert!(mine["tokens"][0]["expires_at"].as_i64().unwrap() > jit_tests::now() + 80 * 86_400);
    // Past its end it is refused.
    w.server.sql(
        "UPDATE person_tokens SET expires_at = strftime('%s','now') - 1 WHERE person_id = \
         (SELECT id FROM persons WHERE name = 'bob')",
    );
    let err = w.bob.jitctl.fails(3, &["status"]);
    assert!(err.contains("unknown, expired or revoked token"), "{err}");
    // Revoke alice's token by its id; a person cannot revoke someone else's.
    let id = mine["tokens"][0]["id"].as_str().unwrap().to_owned();
    let admin_id = owners
        .iter()
        .zip(tokens)
        .find(|(o, _)| **o == "admin")
        .map(|(_, t)| t["id"].as_str().unwrap().to_owned())
        .unwrap();
    let err = w.alice.jitctl.fails(4, &["token", "revoke", &admin_id]);
    assert!(err.contains("no live credential"), "{err}");
    let out = w.admin.ok(&["token", "revoke", &id]);
    assert!(
        out.contains("Revoked token") && out.contains("alice"),
        "{out}"
    );
    let err = w.alice.jitctl.fails(3, &["status"]);
    assert!(err.contains("revoked"), "{err}");
    let audit = w.admin.json(&["audit", "--person", "alice"]);
    let ev = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "token.revoke")
        .expect("audited");
    assert_eq!(ev["actor"], "person:admin");
}

#[test]
fn a_host_credential_is_listed_and_revoked() {
    let w = World::new();
    let rt = jit_tests::runtime();
    let host = jit_tests::join_host_creds(&rt, &w.join_token);
    rt.block_on(host.client().host_accounts())
        .expect("joined host works");
    let all = w.admin.json(&["token", "list"]);
    let h = all["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "host")
        .expect("host credential listed")
        .clone();
    assert_eq!(h["owner"], "web01");
    let out = w.admin.ok(&["token", "revoke", h["id"].as_str().unwrap()]);
    assert!(out.contains("must join again"), "{out}");
    assert!(rt.block_on(host.client().host_accounts()).is_err());
}

#[test]
fn a_person_extends_their_reservation_within_max_ttl() {
    let w = World::new();
    // admin: default 5m, max 30m.
    w.alice
        .jitctl
        .ok(&["reserve", "admin", "--host", "web01", "--for", "5m"]);
    let before = w.alice.jitctl.json(&["status"])["reservations"][0]["expires_at"]
        .as_i64()
        .unwrap();
    let out = w.alice.jitctl.ok(&["extend", "admin", "--for", "10m"]);
    assert!(out.contains("Extended admin on web01 until"), "{out}");
    let after = w.alice.jitctl.json(&["status"])["reservations"][0]["expires_at"]
        .as_i64()
        .unwrap();
    assert_eq!(after - before, 600);
    // 15m left; 30m max: 20m more is too much, and the message says how much is possible.
    let err = w
        .alice
        .jitctl
        .fails(7, &["extend", "admin", "--for", "20m"]);
    assert!(err.contains("extend by at most 15m"), "{err}");
    // bob holds nothing to extend.
    let err = w.bob.jitctl.fails(4, &["extend", "admin", "--for", "1m"]);
    assert!(err.contains("you hold no reservation of admin"), "{err}");
    let audit = w.admin.json(&["audit", "--account", "admin"]);
    let ev: Vec<_> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "reservation.extend")
        .collect();
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(ev[0]["result"], "ok");
    assert_eq!(ev[1]["result"], "denied");
}
