//! The audit log holds up: its hash chain shows a row changed, deleted or added directly in the
//! database (`jitctl audit verify` names the row), API calls record the client's address, the
//! log streams out as JSON lines (`jitctl audit --follow --json`), and a host records events
//! only about what it was served.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use jit_proto::AccountName;
use jit_proto::api::{AuditResult, HostEvent, HostEvents, LoginOrigin, NewReservation};
use jit_tests::{World, client_for, join_host, runtime, wait_for};
use serde_json::Value;

/// `jitctl audit verify` exits 9 on a broken chain; returns its message.
fn broken(w: &World) -> String {
    w.admin.fails(9, &["audit", "verify"])
}

fn row(w: &World, sql_where: &str) -> (i64, String) {
    let out = w
        .server
        .sql(&format!("SELECT id, action FROM audit WHERE {sql_where}"));
    let (id, action) = out.split_once('|').unwrap_or_else(|| panic!("{out:?}"));
    (id.parse().unwrap(), action.to_owned())
}

#[test]
fn editing_or_deleting_audit_rows_in_the_database_is_detected_and_named() {
    let w = World::new();
    w.alice.jitctl.ok(&[
        "reserve",
        "admin",
        "--host",
        "web01",
        "--reason",
        "patch openssl",
    ]);
    w.alice.jitctl.ok(&["release", "admin", "--host", "web01"]);
    w.admin.ok(&["group", "add", "dba"]);
    let ok = w.admin.ok(&["audit", "verify"]);
    assert!(ok.contains("The audit chain holds"), "{ok}");
    let v = w.admin.json(&["audit", "verify"]);
    assert!(v["broken"].is_null(), "{v}");
    let rows = v["rows"].as_i64().unwrap();
    assert!(rows >= 8, "{v}");
    assert_eq!(v["head_seq"].as_i64(), Some(rows));

    // Someone with write access to the database changes a reason.
    let (id, action) = row(&w, "reason = 'patch openssl'");
    assert_eq!(action, "reservation.create");
    w.server.sql(&format!(
        "UPDATE audit SET reason = 'routine' WHERE id = {id}"
    ));
    let err = broken(&w);
    assert!(
        err.contains(&format!("row id {id} "))
            && err.contains("reservation.create")
            && err.contains("changed after it was written"),
        "{err}"
    );
    // Put back, the chain holds again: the check is of content, not of a flag.
    w.server.sql(&format!(
        "UPDATE audit SET reason = 'patch openssl' WHERE id = {id}"
    ));
    w.admin.ok(&["audit", "verify"]);

    // A row deleted from the middle: the row after it is named, with the gap.
    let (next, next_action) = row(&w, &format!("id > {id} ORDER BY seq LIMIT 1"));
    w.server.sql(&format!("DELETE FROM audit WHERE id = {id}"));
    let err = broken(&w);
    assert!(
        err.contains(&format!("row id {next} "))
            && err.contains(&next_action)
            && err.contains("missing"),
        "{err}"
    );
    let json = w.admin.run(&["--json", "audit", "verify"]);
    assert_eq!(json.status.code(), Some(9));
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["broken"]["id"].as_i64(), Some(next), "{v}");
}

#[test]
fn deleting_the_newest_rows_or_adding_one_is_detected() {
    let w = World::new();
    w.admin.ok(&["group", "add", "dba"]);
    w.admin.ok(&["audit", "verify"]);
    let last = w.server.sql("SELECT max(id) FROM audit");
    let (before, _) = row(
        &w,
        &format!("seq = (SELECT seq - 1 FROM audit WHERE id = {last})"),
    );
    w.server
        .sql(&format!("DELETE FROM audit WHERE id = {last}"));
    let err = broken(&w);
    assert!(
        err.contains(&format!("row id {before} ")) && err.contains("newest rows were deleted"),
        "{err}"
    );
    // A row slipped in (and the deleted one back, unchained) is named as outside the chain.
    w.server.sql(
        "INSERT INTO audit (at, actor, action, result, reason) \
         VALUES (1, 'admin', 'group.add', 'ok', 'inserted by hand')",
    );
    let added = w.server.sql("SELECT max(id) FROM audit");
    let err = broken(&w);
    assert!(
        err.contains(&format!("row id {added} ")) && err.contains("not in the chain"),
        "{err}"
    );
}

#[test]
fn api_calls_record_the_client_address_and_the_audit_streams_as_json_lines() {
    let w = World::new();
    // Follow from this second on, as a SIEM would.
    let since = (jit_tests::now() + 1).to_string();
    std::thread::sleep(Duration::from_millis(1100));
    let mut follow = w
        .admin
        .command()
        .args([
            "--json", "audit", "--follow", "--every", "1", "--since", &since,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("jitctl audit --follow");
    let (tx, rx) = mpsc::channel::<String>();
    let out = follow.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Events written before that second are not shown; each new one comes once, in order.
    let seen_before: i64 = w
        .server
        .sql(&format!("SELECT max(seq) FROM audit WHERE at < {since}"))
        .parse()
        .unwrap();
    for g in ["dba", "web", "net"] {
        w.admin.ok(&["group", "add", g]);
    }
    let mut got: Vec<Value> = Vec::new();
    wait_for("three group.add lines", Duration::from_secs(30), || {
        while let Ok(line) = rx.try_recv() {
            got.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}")));
        }
        got.iter().filter(|e| e["action"] == "group.add").count() >= 3
    });
    let _ = follow.kill();
    let _ = follow.wait();
    let _ = reader.join();
    let seqs: Vec<i64> = got.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|p| p[1] == p[0] + 1), "{seqs:?}");
    assert_eq!(seqs[0], seen_before + 1, "{seqs:?}");
    let adds: Vec<&Value> = got.iter().filter(|e| e["action"] == "group.add").collect();
    assert_eq!(adds.len(), 3, "{got:?}");
    for e in adds {
        // Each line is a whole row: its place in the chain, its hash, and who called from where.
        assert_eq!(e["actor"], "person:admin");
        assert_eq!(e["client"], "127.0.0.1", "{e}");
        assert_eq!(e["hash"].as_str().map(str::len), Some(64), "{e}");
    }
    // The address is in the database row itself (and so in the chain).
    let clients = w
        .server
        .sql("SELECT DISTINCT client FROM audit WHERE action = 'group.add'");
    assert_eq!(clients, "127.0.0.1");
}

fn event(id: &str, action: &str, at: i64, reservation: Option<i64>) -> HostEvents {
    HostEvents {
        events: vec![HostEvent {
            id: id.into(),
            at,
            action: action.into(),
            account: AccountName::new("admin").unwrap(),
            person: Some(jit_proto::PersonName::new("alice").unwrap()),
            result: AuditResult::Ok,
            reason: None,
            origin: LoginOrigin {
                service: "sshd".into(),
                ..Default::default()
            },
            reservation_id: reservation,
            attempt: None,
            totp_step: None,
            ended: None,
        }],
    }
}

#[test]
fn a_host_records_events_only_about_what_it_was_served() {
    let w = World::new();
    let rt = runtime();
    let web01 = join_host(&rt, &w.join_token);
    let web02_token = w.admin.json(&["host", "add", "web02"])["join_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let web02 = join_host(&rt, &web02_token);
    let alice = client_for(&w.alice.jitctl);
    let on_web02 = rt
        .block_on(alice.reserve(&NewReservation {
            account: AccountName::new("admin").unwrap(),
            host: jit_proto::HostName::new("web02").unwrap(),
            duration_secs: None,
            reason: None,
        }))
        .unwrap();
    // web02 has been joined for a day, so only the reservation bounds the times below.
    w.server
        .sql("UPDATE hosts SET created_at = created_at - 86400 WHERE name = 'web02'");
    let now = jit_tests::now();
    let refused = |host: &jit_client::Client, ev: HostEvents, why: &str| {
        let err = rt.block_on(host.host_events(&ev)).unwrap_err().to_string();
        assert!(err.contains(why), "{err}");
    };
    // web01 may not speak about web02's reservation.
    refused(
        &web01,
        event("e1", "session.open", now, Some(on_web02.id)),
        "not one of this host's",
    );
    // Nor may web02 date it before the reservation was made, or open a session after its end.
    refused(
        &web02,
        event(
            "e2",
            "session.close",
            on_web02.created_at - 3600,
            Some(on_web02.id),
        ),
        "before reservation",
    );
    refused(
        &web02,
        event(
            "e3",
            "session.open",
            on_web02.expires_at + 3600,
            Some(on_web02.id),
        ),
        "after reservation",
    );
    // Nor any event from before the host existed.
    refused(
        &web02,
        event("e4", "account.denied", now - 30 * 86_400, None),
        "before this host was added",
    );
    // What it was served, it may report.
    let stored = rt
        .block_on(web02.host_events(&event("e5", "session.open", now, Some(on_web02.id))))
        .unwrap();
    assert_eq!(stored.stored, 1);
    let rows = w.server.sql(
        "SELECT count(*) FROM audit WHERE actor LIKE 'host:%' AND action IN \
         ('session.open', 'session.close', 'account.denied')",
    );
    assert_eq!(rows, "1");
    w.admin.ok(&["audit", "verify"]);
}
