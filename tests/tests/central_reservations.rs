//! The central service driven through the real jitctl binary, tried as a new user would:
//! the quick start, reservation rules, exclusivity, release, status and audit.

use jit_tests::{Jitctl, World, enroll};

#[test]
fn quick_start_fields_keep_their_names() {
    let w = World::new();
    // init → admin_token (the bootstrap token), ca_fingerprint (used by World); login with it
    // → the admin person's token; person add → enrollment_code; host add → join_token;
    // enroll → otpauth_uri (used by enroll()).
    assert!(w.server.bootstrap_token.starts_with("jita_"));
    assert!(w.server.admin_token.starts_with("jitp_"));
    assert!(w.server.fingerprint.starts_with("SHA256:") && w.server.fingerprint.len() == 71);
    assert!(w.join_token.starts_with("jit1_"));
    let carol = w.admin.json(&["person", "add", "carol"]);
    assert!(carol["enrollment_code"].as_str().unwrap().len() >= 20);
    let who = w.alice.jitctl.json(&["whoami"]);
    assert_eq!(who["kind"], "person");
    assert_eq!(who["name"], "alice");
    let who = w.admin.json(&["whoami"]);
    assert_eq!(who["kind"], "admin");
}

#[test]
fn reserve_status_release_as_in_the_readme() {
    let w = World::new();
    let out = w.alice.jitctl.ok(&[
        "reserve",
        "admin",
        "--host",
        "web01",
        "--for",
        "5m",
        "--reason",
        "patch openssl",
    ]);
    assert!(out.contains("Reserved admin on web01 until"), "{out}");
    let status = w.alice.jitctl.ok(&["status"]);
    assert!(
        status.contains("admin") && status.contains("web01") && status.contains("patch openssl"),
        "{status}"
    );
    let s = w.alice.jitctl.json(&["status"]);
    let r = &s["reservations"][0];
    assert_eq!(r["person"], "alice");
    assert_eq!(r["state"], "active");
    let left = r["remaining_secs"].as_i64().unwrap();
    assert!((250..=300).contains(&left), "{left}");
    // bob sees only his own (none); the admin sees everybody's.
    assert_eq!(
        w.bob.jitctl.json(&["status"])["reservations"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        w.admin.json(&["status"])["reservations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let out = w.alice.jitctl.ok(&["release", "admin"]);
    assert!(out.contains("Released admin on web01"), "{out}");
    assert_eq!(
        w.alice.jitctl.json(&["status"])["reservations"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let all = w.alice.jitctl.json(&["status", "--all"]);
    assert_eq!(all["reservations"][0]["state"], "released");
    // Nothing left to release: not found.
    w.alice.jitctl.fails(4, &["release", "admin"]);

    let audit = w
        .admin
        .json(&["audit", "--account", "admin", "--since", "1h"]);
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"reservation.create") && actions.contains(&"reservation.release"),
        "{actions:?}"
    );
    let create = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "reservation.create")
        .unwrap();
    assert_eq!(create["person"], "alice");
    assert_eq!(create["actor"], "person:alice");
    assert_eq!(create["reason"], "patch openssl");
    assert_eq!(create["result"], "ok");
}

#[test]
fn exclusive_with_a_message_that_says_until_when() {
    let w = World::new();
    let r = w
        .alice
        .jitctl
        .json(&["reserve", "admin", "--host", "web01"]);
    let until = r["expires_at"].as_i64().unwrap();
    assert_eq!(
        r["expires_at"].as_i64().unwrap() - r["created_at"].as_i64().unwrap(),
        300,
        "default ttl 5m"
    );
    let err = w
        .bob
        .jitctl
        .fails(5, &["reserve", "admin", "--host", "web01"]);
    assert!(
        err.contains("admin on web01 is reserved by alice until"),
        "{err}"
    );
    assert!(err.contains(&jit_proto::timefmt::utc(until)), "{err}");
    // The JSON error carries the end time for scripts.
    let out = w
        .bob
        .jitctl
        .run(&["--json", "reserve", "admin", "--host", "web01"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "reservation_taken");
    assert_eq!(v["error"]["until"], until);
    // alice reserving again is a conflict too, with its own hint.
    let err = w
        .alice
        .jitctl
        .fails(5, &["reserve", "admin", "--host", "web01"]);
    assert!(err.contains("you already hold admin on web01"), "{err}");

    // An admin force-releases; it is audited as forced; then bob gets it.
    let out = w.admin.ok(&["release", "admin", "--host", "web01"]);
    assert!(out.contains("held by alice"), "{out}");
    w.bob.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    let audit = w.admin.json(&["audit", "--account", "admin"]);
    let forced = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "reservation.force_release");
    let forced = forced.expect("force release audited");
    assert_eq!(forced["actor"], "person:admin");
    assert_eq!(forced["person"], "alice");
    let denied = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "reservation.create" && e["result"] == "denied");
    assert!(
        denied.expect("refused reservation audited")["reason"]
            .as_str()
            .unwrap()
            .contains("reserved by alice")
    );
}

#[test]
fn another_host_is_another_reservation() {
    let w = World::new();
    w.admin.ok(&["host", "add", "web02"]);
    w.alice.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    w.bob.jitctl.ok(&["reserve", "admin", "--host", "web02"]);
}

#[test]
fn reservation_rules_each_refused_with_a_reason() {
    let w = World::new();
    // Not in any of the account's groups.
    let carol = enroll(&w.server, &w.admin, "carol");
    let err = carol
        .jitctl
        .fails(3, &["reserve", "admin", "--host", "web01"]);
    assert!(
        err.contains("not in a group allowed to reserve admin"),
        "{err}"
    );
    // A host the account does not exist on.
    w.admin.ok(&["host", "add", "db01", "--label", "db"]);
    let err = w
        .alice
        .jitctl
        .fails(3, &["reserve", "admin", "--host", "db01"]);
    assert!(err.contains("does not exist on db01"), "{err}");
    // ...but a label makes it exist there.
    w.admin.ok(&["account", "set", "admin", "--label", "db"]);
    w.alice.jitctl.ok(&["reserve", "admin", "--host", "db01"]);
    // Unknown host, unknown account.
    w.alice
        .jitctl
        .fails(4, &["reserve", "admin", "--host", "nosuch"]);
    w.alice
        .jitctl
        .fails(4, &["reserve", "nosuch", "--host", "web01"]);
    // Durations: at least 60 s, at most the account's max (30m here).
    let err = w
        .alice
        .jitctl
        .fails(7, &["reserve", "admin", "--host", "web01", "--for", "59s"]);
    assert!(err.contains("at least 60 s"), "{err}");
    let err = w
        .alice
        .jitctl
        .fails(7, &["reserve", "admin", "--host", "web01", "--for", "31m"]);
    assert!(err.contains("at most 30m"), "{err}");
    let r = w
        .alice
        .jitctl
        .json(&["reserve", "admin", "--host", "web01", "--for", "30m"]);
    assert_eq!(
        r["expires_at"].as_i64().unwrap() - r["created_at"].as_i64().unwrap(),
        1800
    );
    w.alice.jitctl.ok(&["release", "admin"]);
    // A disabled account.
    w.admin.ok(&["account", "disable", "admin"]);
    let err = w
        .alice
        .jitctl
        .fails(3, &["reserve", "admin", "--host", "web01"]);
    assert!(err.contains("admin is disabled"), "{err}");
    w.admin.ok(&["account", "enable", "admin"]);
    // An account with the default maximum (300 s).
    w.admin.ok(&[
        "account",
        "add",
        "deploy",
        "--existing",
        "--group",
        "ops",
        "--hosts",
        "*",
    ]);
    w.alice
        .jitctl
        .fails(7, &["reserve", "deploy", "--host", "web01", "--for", "6m"]);
    w.alice.jitctl.ok(&["reserve", "deploy", "--host", "web01"]);
}

#[test]
fn disabled_person_cannot_reserve_and_loses_reservations() {
    let w = World::new();
    w.alice.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    w.admin.ok(&["person", "disable", "alice"]);
    let err = w
        .alice
        .jitctl
        .fails(3, &["reserve", "admin", "--host", "web01"]);
    assert!(err.contains("alice is disabled"), "{err}");
    // Her reservation ended, so bob can have the account.
    w.bob.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    w.admin.ok(&["person", "enable", "alice"]);
    w.alice.jitctl.ok(&["whoami"]);
    let audit = w.admin.json(&["audit", "--person", "alice"]);
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"person.disable") && actions.contains(&"person.enable"),
        "{actions:?}"
    );
}

#[test]
fn reset_factor_revokes_and_reenrolls() {
    let w = World::new();
    let reset = w.admin.json(&["person", "reset-factor", "alice"]);
    let code = reset["enrollment_code"].as_str().unwrap().to_owned();
    // Her old token is revoked at once.
    let err = w.alice.jitctl.fails(3, &["whoami"]);
    assert!(err.contains("unknown, expired or revoked token"), "{err}");
    let p = w.admin.json(&["person", "show", "alice"]);
    assert_eq!(p["enrolled"], false);
    let again = jit_tests::enroll_with_code(&w.server, "alice", &code);
    again.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    // The code is single-use.
    let j = Jitctl::new();
    let out = j
        .command()
        .args([
            "enroll",
            &code,
            "--server",
            &w.server.url,
            "--ca-fingerprint",
            &w.server.fingerprint,
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("already used"));
}

#[test]
fn audit_filters_by_person_account_host_and_time() {
    let w = World::new();
    w.admin.ok(&["host", "add", "web02"]);
    w.admin.ok(&[
        "account",
        "add",
        "deploy",
        "--existing",
        "--group",
        "ops",
        "--hosts",
        "web*",
    ]);
    w.alice.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    w.bob.jitctl.ok(&["reserve", "deploy", "--host", "web02"]);
    let events = |args: &[&str]| {
        let mut a = vec!["audit"];
        a.extend_from_slice(args);
        w.admin.json(&a)["events"].as_array().unwrap().clone()
    };
    let by_bob = events(&["--person", "bob"]);
    assert!(!by_bob.is_empty() && by_bob.iter().all(|e| e["person"] == "bob"));
    let deploy = events(&["--account", "deploy"]);
    assert!(deploy.iter().all(|e| e["account"] == "deploy"));
    assert!(deploy.iter().any(|e| e["action"] == "reservation.create"));
    let web02 = events(&["--host", "web02"]);
    assert!(!web02.is_empty() && web02.iter().all(|e| e["host"] == "web02"));
    let combined = events(&["--person", "alice", "--account", "admin", "--host", "web01"]);
    assert!(combined.iter().any(|e| e["action"] == "reservation.create"));
    assert!(events(&["--since", "2099-01-01T00:00:00Z"]).is_empty());
    assert!(!events(&["--since", "1h"]).is_empty());
    assert!(
        events(&["--until", "1h"]).is_empty(),
        "nothing happened more than an hour ago"
    );
    assert_eq!(events(&["--limit", "2"]).len(), 2);
    // Persons cannot read the audit log.
    w.alice.jitctl.fails(3, &["audit"]);
    // Text output is a table.
    let text = w.admin.ok(&["audit", "--person", "alice"]);
    assert!(text.starts_with("TIME"), "{text}");
}

#[test]
fn group_changes_name_the_group_in_the_audit() {
    let w = World::new();
    w.admin.ok(&["group", "remove-member", "ops", "bob"]);
    let events = w.admin.json(&["audit"])["events"]
        .as_array()
        .unwrap()
        .clone();
    let reason = |action: &str, person: Option<&str>| {
        events
            .iter()
            .find(|e| e["action"] == action && person.is_none_or(|p| e["person"] == p))
            .unwrap_or_else(|| panic!("{action} audited: {events:?}"))["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(reason("group.add", None), "group ops created");
    assert_eq!(
        reason("group.add_member", Some("alice")),
        "alice added to group ops"
    );
    assert_eq!(
        reason("group.remove_member", Some("bob")),
        "bob removed from group ops"
    );
    // The admin reading the table sees it too, not only a script reading the detail.
    let text = w.admin.ok(&["audit"]);
    let line = text
        .lines()
        .find(|l| l.contains("group.add_member") && l.contains("alice"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("group ops"), "{line}");
}

#[test]
fn a_reservation_on_a_host_that_never_joined_comes_with_a_note() {
    let w = World::new();
    // web01 was added but has not joined: the reservation is made, with a note that says so.
    let out = w.alice.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    assert!(out.contains("Reserved admin on web01"), "{out}");
    assert!(
        out.contains("Note: web01 has not joined jit yet") && out.contains("jitd join"),
        "{out}"
    );
    let r = w.alice.jitctl.json(&["status"]);
    assert_eq!(r["reservations"][0]["host_joined"], false, "{r}");
    w.alice.jitctl.ok(&["release", "admin"]);
    // Once it joined, no note.
    let rt = jit_tests::runtime();
    jit_tests::join_host(&rt, &w.join_token);
    let out = w.alice.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    assert!(!out.contains("Note"), "{out}");
    let r = w.alice.jitctl.json(&["release", "admin"]);
    assert_eq!(r["released"][0]["host_joined"], true, "{r}");
}

#[test]
fn persons_cannot_administer() {
    let w = World::new();
    for args in [
        vec!["person", "add", "mallory"],
        vec!["group", "add-member", "ops", "mallory"],
        vec!["account", "list"],
        vec!["host", "add", "evil01"],
    ] {
        let err = w.alice.jitctl.fails(3, &args);
        assert!(err.contains("this needs an admin"), "{args:?}: {err}");
    }
    // An admin is a person like any other: reserving takes a group that may.
    let err = w.admin.fails(3, &["reserve", "admin", "--host", "web01"]);
    assert!(err.contains("not in a group allowed"), "{err}");
}

#[test]
fn several_identities_from_one_machine() {
    let w = World::new();
    // Three config directories, three identities, no interference.
    assert_eq!(w.admin.json(&["whoami"])["name"], "admin");
    assert_eq!(w.alice.jitctl.json(&["whoami"])["name"], "alice");
    assert_eq!(w.bob.jitctl.json(&["whoami"])["name"], "bob");
    let nobody = Jitctl::new();
    let err = nobody.fails(3, &["status"]);
    assert!(err.contains("not logged in"), "{err}");
    // Credentials are private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(w.alice.jitctl.dir.path().join("config.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // `person add` prints the whole command the new person runs, server and pin included.
    let out = w.admin.ok(&["person", "add", "carl"]);
    let want = format!(
        "--server {} --ca-fingerprint {}",
        w.server.url, w.server.fingerprint
    );
    assert!(
        out.lines()
            .any(|l| l.trim().starts_with("jitctl enroll ") && l.ends_with(&want)),
        "{out}"
    );
    // Logging in as someone else in alice's directory would lose her token: refused, and hers
    // still works.
    let err = w.alice.jitctl.fails(
        2,
        &[
            "login",
            "--server",
            &w.server.url,
            "--ca-fingerprint",
            &w.server.fingerprint,
            "--token",
            &w.server.admin_token,
        ],
    );
    assert!(
        err.contains("already holds person alice's credential") && err.contains("JITCTL_CONFIG"),
        "{err}"
    );
    assert_eq!(w.alice.jitctl.json(&["whoami"])["name"], "alice");
    let out = w.alice.jitctl.ok(&["logout"]);
    assert!(out.contains("jitctl person reset-factor alice"), "{out}");
    w.alice.jitctl.fails(3, &["status"]);
}

#[test]
fn every_reservation_decision_is_audited_even_unknown_names_and_a_lost_race() {
    let w = World::new();
    // Unknown account, unknown host: refused (not found) and audited.
    w.alice
        .jitctl
        .fails(4, &["reserve", "nosuch", "--host", "web01"]);
    w.alice
        .jitctl
        .fails(4, &["reserve", "admin", "--host", "nohost"]);

    // A lost race: another server process inserts its reservation between this one's check
    // and its INSERT. A trigger plays the other process: it inserts bob's reservation just
    // before alice's, so alice's INSERT hits the unique index (and both are undone).
    let postgres = w.server.database() == jit_tests::Database::Postgres;
    if postgres {
        w.server.sql(
            "CREATE FUNCTION lose_the_race() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.reason = 'race' THEN \
             INSERT INTO reservations (account_id, host_id, person_id, state, created_at, \
             expires_at) VALUES (NEW.account_id, NEW.host_id, \
             (SELECT id FROM persons WHERE name = 'bob'), 'active', NEW.created_at, \
             NEW.expires_at); END IF; RETURN NEW; END $$; \
             CREATE TRIGGER lose_the_race BEFORE INSERT ON reservations \
             FOR EACH ROW EXECUTE FUNCTION lose_the_race()",
        );
    } else {
        w.server.sql(
            "CREATE TRIGGER lose_the_race BEFORE INSERT ON reservations \
             WHEN NEW.reason = 'race' BEGIN \
             INSERT INTO reservations (account_id, host_id, person_id, state, created_at, \
             expires_at) VALUES (NEW.account_id, NEW.host_id, \
             (SELECT id FROM persons WHERE name = 'bob'), 'active', NEW.created_at, \
             NEW.expires_at); END",
        );
    }
    let err = w.alice.jitctl.fails(
        5,
        &["reserve", "admin", "--host", "web01", "--reason", "race"],
    );
    assert!(err.contains("just reserved by someone else"), "{err}");
    if postgres {
        w.server
            .sql("DROP TRIGGER lose_the_race ON reservations; DROP FUNCTION lose_the_race()");
    } else {
        w.server.sql("DROP TRIGGER lose_the_race");
    }

    let audit = w.admin.json(&["audit", "--person", "alice"]);
    let refused: Vec<&serde_json::Value> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "reservation.create" && e["result"] == "denied")
        .collect();
    let find = |account: &str, host: &str, why: &str| {
        refused
            .iter()
            .find(|e| {
                e["account"] == account
                    && e["host"] == host
                    && e["actor"] == "person:alice"
                    && e["reason"].as_str().is_some_and(|r| r.contains(why))
            })
            .unwrap_or_else(|| panic!("no audited refusal for {account} on {host}: {refused:?}"))
    };
    find("nosuch", "web01", "no shared account named nosuch");
    find("admin", "nohost", "no host named nohost");
    let lost = find("admin", "web01", "just reserved by someone else");
    assert_eq!(lost["detail"]["lost_race"], true, "{lost}");
    // Nothing is held, so the next try works.
    w.alice.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
}
