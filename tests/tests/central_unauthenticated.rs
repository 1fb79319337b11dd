//! The endpoints anyone can call (join, enrollment start and confirm) are rate-limited per
//! address and per name, answered before the database's write lock, and a flood of refused
//! joins neither stops logins nor fills the audit with a row each.

use std::time::Duration;

use jit_proto::Secret;
use jit_proto::api::{LoginBegun, LoginVerified, LoginVerify};
use jit_tests::flood::{bad_joins, login_begin, login_decisions};
use jit_tests::{World, join_host, runtime, wait_for};

#[test]
fn ten_thousand_bad_joins_from_one_address_do_not_stop_logins() {
    let mut w = World::new();
    let addr = w.server.addr();
    w.server.kill();
    // The refused joins are audited every 10 s here (60 s by default), so the test need not wait.
    w.server
        .run_with_config(&addr, "[rate_limits]\nrefused_join_window = \"10s\"\n");
    let rt = runtime();
    let web01 = join_host(&rt, &w.join_token);
    w.alice
        .jitctl
        .ok(&["reserve", "admin", "--host", "web01", "--for", "30m"]);
    let web02_token = w.admin.json(&["host", "add", "web02"])["join_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (answers, decided) = rt.block_on(async {
        let flood = tokio::spawn(async move { bad_joins(&web02_token, 10_000, 16).await });
        let mut decided = 0;
        // Logins keep being decided (each answered with a challenge) all through the flood.
        while !flood.is_finished() {
            decided += login_decisions(&web01, "admin", 5).await.len();
        }
        (flood.await.unwrap(), decided)
    });
    assert_eq!(answers.other, 0, "{answers:?}");
    assert_eq!(
        answers.rate_limited + answers.refused,
        10_000,
        "{answers:?}"
    );
    // The name's bucket (10, then 10 a minute) lets only a few reach the token check at all.
    assert!(answers.refused < 200, "{answers:?}");
    assert!(decided >= 5, "{decided}");
    // And a whole login still goes through: begin, the holder's code, granted.
    let attempt = match rt
        .block_on(web01.login_begin(&login_begin("admin")))
        .unwrap()
    {
        LoginBegun::Challenge { attempt, .. } => attempt,
        other => panic!("{other:?}"),
    };
    let verified = rt
        .block_on(web01.login_verify(
            &attempt,
            &LoginVerify {
                code: Secret::new(w.alice.next_code()),
            },
        ))
        .unwrap();
    assert!(
        matches!(verified, LoginVerified::Granted { .. }),
        "{verified:?}"
    );

    // The audit counts the refused joins together: a few rows, not ten thousand.
    // Summed here rather than in SQL, so the query reads the same on both backends.
    let total = || {
        w.server
            .sql("SELECT detail FROM audit WHERE action = 'host.join_refused'")
            .lines()
            .filter(|line| !line.is_empty())
            .map(|line| {
                let detail: serde_json::Value = serde_json::from_str(line).unwrap();
                detail["count"].as_u64().unwrap()
            })
            .sum::<u64>()
    };
    wait_for(
        "the refused joins in the audit",
        Duration::from_secs(90),
        || total() == 10_000,
    );
    let rows: u64 = w
        .server
        .sql("SELECT count(*) FROM audit WHERE action = 'host.join_refused'")
        .parse()
        .unwrap();
    assert!((1..=30).contains(&rows), "{rows} rows");
    let detail = w
        .server
        .sql("SELECT detail FROM audit WHERE action = 'host.join_refused' ORDER BY id LIMIT 1");
    let detail: serde_json::Value = serde_json::from_str(&detail).unwrap();
    assert!(
        detail["addresses"]["127.0.0.1"].as_u64().unwrap() > 0,
        "{detail}"
    );
    assert!(detail["hosts"]["web02"].as_u64().unwrap() > 0, "{detail}");
    assert!(
        detail["reasons"]["rate limited"].as_u64().unwrap() > 0,
        "{detail}"
    );
    assert_eq!(
        w.server
            .sql("SELECT count(*) FROM audit WHERE action = 'host.join' AND result = 'denied'"),
        "0"
    );
    w.admin.ok(&["audit", "verify"]);
}

#[test]
fn enrollment_is_limited_per_address_with_retry_after_and_a_clear_message() {
    let mut w = World::new();
    let addr = w.server.addr();
    w.server.kill();
    w.server.run_with_config(
        &addr,
        "[rate_limits]\nper_address_burst = 5\nper_address_per_minute = 1\n",
    );
    let body = br#"{"enrollment_code":"ABCD-EFGH-JKLM"}"#;
    for _ in 0..5 {
        let (code, body) = w.server.curl("POST", "/v1/enroll/start", None, Some(body));
        assert_eq!(code, 401, "{body}");
    }
    let (code, answer) = w
        .server
        .curl_with(&["-i"], "POST", "/v1/enroll/start", None, Some(body));
    assert_eq!(code, 429, "{answer}");
    let lower = answer.to_ascii_lowercase();
    let retry: u64 = lower
        .lines()
        .find_map(|l| l.strip_prefix("retry-after:"))
        .unwrap_or_else(|| panic!("no Retry-After: {answer}"))
        .trim()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(
        answer.contains("too many enrollment requests from 127.0.0.1; try again in"),
        "{answer}"
    );
    // Confirm shares the address's bucket; a join has its own endpoint but the same address.
    let (code, _) = w.server.curl(
        "POST",
        "/v1/enroll/confirm",
        None,
        Some(br#"{"enrollment_code":"ABCD-EFGH-JKLM","code":"123456"}"#),
    );
    assert_eq!(code, 429);
    // Admin calls are not limited by it.
    w.admin.ok(&["person", "add", "carol"]);
}
