//! Bad input gets a clear error and loses nothing; TLS is pinned; secrets and tokens are not
//! stored in clear; configuration errors name the file, line and key.

use std::os::unix::ffi::OsStrExt;
use std::process::Command;

use jit_tests::{Jitctl, Server, World, bin};

#[test]
fn over_long_and_malformed_names_are_refused_with_the_reason() {
    let w = World::new();
    let long = "a".repeat(33);
    let err = w.admin.fails(2, &["person", "add", &long]);
    assert!(
        err.contains("person name is 33 bytes long; the limit is 32"),
        "{err}"
    );
    let err = w.admin.fails(2, &["group", "add", "Ops"]);
    assert!(err.contains("group name \"Ops\" is not valid"), "{err}");
    // Non-UTF-8 on the command line.
    let out = w
        .admin
        .command()
        .arg("person")
        .arg("add")
        .arg(std::ffi::OsStr::from_bytes(b"al\xffce"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // The same through the raw API: the server validates too.
    let t = Some(w.server.admin_token.as_str());
    let (code, body) = w.server.curl(
        "POST",
        "/v1/persons",
        t,
        Some(format!("{{\"name\":\"{long}\"}}").as_bytes()),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("33 bytes long"), "{body}");
    let (code, body) = w
        .server
        .curl("POST", "/v1/persons", t, Some(b"{\"name\":\"al\xffce\"}"));
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("bad_request"), "{body}");
    let (code, body) = w.server.curl("GET", "/v1/persons/ALICE", t, None);
    assert_eq!(code, 400, "{body}");
}

#[test]
fn malformed_bodies_get_a_4xx_that_says_what_was_wrong() {
    let w = World::new();
    let t = Some(w.server.admin_token.as_str());
    let cases: &[(&[u8], u16, &str)] = &[
        (b"{\"name\":", 400, "not valid JSON"),
        (
            b"{\"name\":\"carol\",\"colour\":true}",
            400,
            "unknown field `colour`",
        ),
        (b"{\"name\":42}", 400, "does not fit"),
        (b"[]", 400, "does not fit"),
    ];
    for (body, status, why) in cases {
        let (code, text) = w.server.curl("POST", "/v1/persons", t, Some(body));
        assert_eq!(code, *status, "{}: {text}", String::from_utf8_lossy(body));
        assert!(
            text.contains(why),
            "{}: {text}",
            String::from_utf8_lossy(body)
        );
    }
    let huge = format!(
        "{{\"name\":\"carol\",\"display_name\":\"{}\"}}",
        "x".repeat(200_000)
    );
    let (code, text) = w
        .server
        .curl("POST", "/v1/persons", t, Some(huge.as_bytes()));
    assert_eq!(code, 413, "{text}");
    assert!(
        text.contains("payload_too_large") && text.contains("at most"),
        "{text}"
    );
    // Over HTTP/1.1, and by a client that asks before sending (then the body is never sent).
    for extra in [
        &["--http1.1"][..],
        &["--http1.1", "-H", "Expect: 100-continue"],
    ] {
        let (code, text) =
            w.server
                .curl_with(extra, "POST", "/v1/persons", t, Some(huge.as_bytes()));
        assert_eq!(code, 413, "{extra:?}: {text}");
    }
    let (code, text) = w.server.curl("GET", "/v1/nowhere", t, None);
    assert_eq!(code, 404, "{text}");
    assert!(text.contains("docs/api.md"), "{text}");
    // The server is still fine and nothing was created.
    let persons = w.admin.json(&["person", "list"]);
    assert_eq!(persons.as_array().unwrap().len(), 3, "admin, alice and bob");
}

#[test]
fn wrong_or_missing_credentials() {
    let w = World::new();
    let (code, body) = w.server.curl("GET", "/v1/persons", None, None);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("needs a credential"), "{body}");
    let (code, body) = w
        .server
        .curl("GET", "/v1/persons", Some("jitp_not-a-real-token"), None);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("unknown, expired or revoked token"), "{body}");
    // The bootstrap token only ever creates a named admin; it is no admin credential itself.
    let (code, body) = w
        .server
        .curl("GET", "/v1/persons", Some(&w.server.bootstrap_token), None);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("one-time bootstrap token"), "{body}");
    let (code, _) = w.server.curl("GET", "/v1/persons", Some("garbage"), None);
    assert_eq!(code, 401);
    // A host credential on an admin endpoint is forbidden, and an admin token on a host one.
    let rt = jit_tests::runtime();
    let host = jit_tests::join_host_creds(&rt, &w.join_token);
    let (code, _) = w
        .server
        .curl("GET", "/v1/persons", Some(host.credential.expose()), None);
    assert_eq!(code, 403);
    let (code, _) = w.server.curl(
        "GET",
        "/v1/host/accounts",
        Some(&w.server.admin_token),
        None,
    );
    assert_eq!(code, 403);
    // A join token works once.
    let token = jit_proto::join_token::JoinToken::decode(&w.join_token).unwrap();
    let body =
        serde_json::json!({ "host": token.host, "secret": token.secret.expose() }).to_string();
    let (code, text) = w
        .server
        .curl("POST", "/v1/join", None, Some(body.as_bytes()));
    assert_eq!(code, 410, "{text}");
    assert!(text.contains("jitctl host rejoin web01"), "{text}");
}

#[test]
fn enrollment_codes_expire_and_wrong_ones_are_refused() {
    let w = World::new();
    let code = w.admin.json(&["person", "add", "carol"])["enrollment_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let enroll = |c: &str| {
        Jitctl::new()
            .command()
            .args([
                "enroll",
                c,
                "--server",
                &w.server.url,
                "--ca-fingerprint",
                &w.server.fingerprint,
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let out = enroll("AAAAA-BBBBB-CCCCC-DDDDD");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("enrollment code is not valid"));
    w.server.sql("UPDATE enrollment_codes SET expires_at = 1");
    let out = enroll(&code);
    assert_eq!(
        out.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("has expired"));
    // Typed in lower case with spaces, a fresh code still works.
    let fresh = w.admin.json(&["person", "reset-factor", "carol"])["enrollment_code"]
        .as_str()
        .unwrap()
        .to_lowercase();
    let p = jit_tests::enroll_with_code(&w.server, "carol", &fresh.replace('-', " "));
    p.jitctl.ok(&["whoami"]);
}

#[test]
fn the_server_certificate_is_pinned() {
    let w = World::new();
    let other = Server::start();
    // Right address, wrong fingerprint.
    let err = Jitctl::new().fails(
        6,
        &[
            "login",
            "--server",
            &w.server.url,
            "--ca-fingerprint",
            &other.fingerprint,
            "--token",
            &w.server.admin_token,
        ],
    );
    assert!(err.contains("not the one you pinned"), "{err}");
    // A stored identity refuses a different server on the same address.
    let mut w = w;
    let addr = w.server.addr();
    w.server.kill();
    let err = w.alice.jitctl.fails(6, &["status"]);
    assert!(err.contains("cannot reach the jit server"), "{err}");
    drop(other);
    let mut impostor = Server::start();
    impostor.kill();
    impostor.run(&addr);
    let err = w.alice.jitctl.fails(6, &["status"]);
    assert!(err.contains("not the one you pinned"), "{err}");
    // Plain HTTP is refused before any connection.
    let err = Jitctl::new().fails(
        2,
        &[
            "login",
            "--server",
            "http://127.0.0.1:1",
            "--ca-fingerprint",
            &w.server.fingerprint,
            "--token",
            "x",
        ],
    );
    assert!(err.contains("HTTPS only"), "{err}");
    let err = Jitctl::new().fails(
        2,
        &[
            "login",
            "--server",
            &w.server.url,
            "--ca-fingerprint",
            "SHA256:nope",
            "--token",
            "x",
        ],
    );
    assert!(err.contains("not valid"), "{err}");
}

#[test]
fn secrets_and_tokens_are_not_stored_in_clear() {
    let w = World::new();
    let dump = w.server.dump().to_lowercase();
    assert!(
        !dump.contains(&w.server.admin_token.to_lowercase()),
        "admin token in clear"
    );
    let cfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(w.alice.jitctl.dir.path().join("config.json")).unwrap(),
    )
    .unwrap();
    assert!(
        !dump.contains(&cfg["token"].as_str().unwrap().to_lowercase()),
        "person token in clear"
    );
    assert!(
        !dump.contains(&hex(&w.alice.secret)),
        "TOTP secret in clear"
    );
    let b32 = jit_tests::totp_at(&w.alice.secret, 0); // sanity: the secret is usable
    assert_eq!(b32.len(), 6);
    // SQLite runs in WAL mode with foreign keys declared.
    if w.server.database() == jit_tests::Database::Sqlite {
        assert_eq!(w.server.sql("PRAGMA journal_mode"), "wal");
    }
    // The at-rest key and TLS keys are private.
    use std::os::unix::fs::PermissionsExt;
    for f in ["at-rest.key", "tls/ca.key", "tls/server.key"] {
        let mode = std::fs::metadata(w.server.data_dir().join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{f} is readable by others");
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn init_refuses_to_overwrite_and_config_errors_name_file_line_and_key() {
    let w = World::new();
    let out = w
        .server
        .command()
        .args(["init", "--data"])
        .arg(w.server.data_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already initialized"));

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("server.toml");
    std::fs::write(
        &cfg,
        "listen = \"127.0.0.1:0\"\n[lockout]\nmax_failure = 3\n",
    )
    .unwrap();
    let out = Command::new(bin("jit-server"))
        .arg("--config")
        .arg(&cfg)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}: line 3", cfg.display())) && err.contains("max_failure"),
        "{err}"
    );
    std::fs::write(&cfg, "[lockout]\nmax_failures = 3\nwindow = \"10m\"\n").unwrap();
    let out = Command::new(bin("jit-server"))
        .arg("--config")
        .arg(&cfg)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(bin("jit-server"))
        .args(["--config", "/nonexistent/server.toml", "check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/server.toml"));
}

#[test]
fn guessing_limits_come_from_server_toml() {
    // Tried as an admin who wants a stricter policy: one wrong code from a source, and it waits
    // an hour.
    let mut server = Server::start();
    server.kill();
    server.run_with_config(
        "127.0.0.1:0",
        "[guessing]\nfree_failures = 1\nfirst_delay = \"1h\"\nmax_delay = \"1h\"\n",
    );
    let admin = Jitctl::admin(&server);
    admin.ok(&["group", "add", "ops"]);
    let alice = jit_tests::enroll(&server, &admin, "alice");
    admin.ok(&["group", "add-member", "ops", "alice"]);
    admin.ok(&[
        "account",
        "add",
        "root",
        "--existing",
        "--group",
        "ops",
        "--hosts",
        "*",
    ]);
    let token = admin.json(&["host", "add", "h1"])["join_token"]
        .as_str()
        .unwrap()
        .to_owned();
    alice.jitctl.ok(&["reserve", "root", "--host", "h1"]);
    let rt = jit_tests::runtime();
    let host = jit_tests::join_host(&rt, &token);
    let begin = jit_proto::api::LoginBegin {
        account: jit_proto::AccountName::new("root").unwrap(),
        origin: jit_proto::api::LoginOrigin {
            service: "su".into(),
            source: Some("uid:1500".into()),
            ..Default::default()
        },
    };
    let wrong = if alice.code() == "123456" {
        "654321"
    } else {
        "123456"
    };
    let b = rt.block_on(host.login_begin(&begin)).unwrap();
    let jit_proto::api::LoginBegun::Challenge { attempt, .. } = b else {
        panic!("{b:?}")
    };
    rt.block_on(host.login_verify(
        &attempt,
        &jit_proto::api::LoginVerify {
            code: jit_proto::Secret::new(wrong),
        },
    ))
    .unwrap();
    let b = rt.block_on(host.login_begin(&begin)).unwrap();
    let jit_proto::api::LoginBegun::Denied { message, .. } = b else {
        panic!("{b:?}")
    };
    assert!(
        message.contains("Too many wrong codes from here (uid:1500)"),
        "{message}"
    );
    // The wait is the configured hour after the wrong code: the message names its end.
    let audit = admin.json(&["audit", "--host", "h1"]);
    let wrong_at: Vec<i64> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "login.verify" && e["result"] == "denied")
        .map(|e| e["at"].as_i64().unwrap())
        .collect();
    assert_eq!(wrong_at.len(), 1, "{audit}");
    let end = jit_proto::timefmt::utc(wrong_at[0] + 3600);
    assert!(message.contains(&end), "{message} does not end at {end}");
    // The holder is not locked out.
    let p = admin.json(&["person", "show", "alice"]);
    assert!(p["locked_until"].is_null(), "{p}");
}

#[test]
fn a_reissued_server_certificate_answers_under_new_names_and_the_pinned_ca_holds() {
    let mut s = jit_tests::Server::start();
    let port = s.addr().rsplit_once(':').unwrap().1.to_owned();
    let name = "jit-renamed.example.org";
    // An HTTPS request to the server under `name`, trusting only its CA: curl's exit code.
    let by_name = |s: &jit_tests::Server| {
        Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "--cacert"])
            .arg(s.ca_pem())
            .args(["--resolve", &format!("{name}:{port}:127.0.0.1")])
            .arg(format!("https://{name}:{port}/v1/whoami"))
            .output()
            .unwrap()
    };
    let before = by_name(&s);
    assert!(
        !before.status.success(),
        "not a name of the first certificate"
    );
    assert!(
        String::from_utf8_lossy(&before.stderr).contains("certificate"),
        "{}",
        String::from_utf8_lossy(&before.stderr)
    );
    let out = s
        .command()
        .args(["reissue-cert", "--san", name, "--data"])
        .arg(s.data_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&s.fingerprint), "the CA is unchanged: {text}");
    s.restart();
    let after = by_name(&s);
    assert!(
        after.status.success(),
        "{}",
        String::from_utf8_lossy(&after.stderr)
    );
    // Clients that pinned the CA at login keep working.
    let admin = jit_tests::Jitctl::admin(&s);
    admin.ok(&["person", "list"]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(s.data_dir().join("tls/server.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn rotate_key_seals_every_secret_again_under_a_new_key() {
    use jit_proto::api::{LoginBegin, LoginBegun, LoginOrigin, LoginVerified, LoginVerify};
    use std::os::unix::fs::PermissionsExt;
    let mut w = World::new();
    let rt = jit_tests::runtime();
    let host = jit_tests::join_host(&rt, &w.join_token);
    let data = w.server.data_dir();
    let old = std::fs::read(data.join("at-rest.key")).unwrap();
    w.server.kill();
    let out = w
        .server
        .command()
        .args(["rotate-key", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // alice's and bob's TOTP secrets, and the audit chain's key.
    assert!(text.contains("3 stored secrets sealed again"), "{text}");
    let new = std::fs::read(data.join("at-rest.key")).unwrap();
    assert_ne!(new, old);
    assert_eq!(
        std::fs::read(data.join("at-rest.key.previous")).unwrap(),
        old
    );
    assert!(!data.join("at-rest.key.new").exists());
    for f in ["at-rest.key", "at-rest.key.previous"] {
        let mode = std::fs::metadata(data.join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    // Without the old key at all, logins still work: every secret is under the new one.
    std::fs::remove_file(data.join("at-rest.key.previous")).unwrap();
    w.server.restart();
    w.alice.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    let begin = LoginBegin {
        account: jit_proto::AccountName::new("admin").unwrap(),
        origin: LoginOrigin {
            service: "sshd".into(),
            rhost: Some("10.0.0.9".into()),
            tty: None,
            ruser: None,
            ssh_key: None,
            source: None,
        },
    };
    let attempt = match rt.block_on(host.login_begin(&begin)).unwrap() {
        LoginBegun::Challenge { attempt, .. } => attempt,
        other => panic!("{other:?}"),
    };
    let verify = LoginVerify {
        code: jit_proto::Secret::new(w.alice.next_code()),
    };
    match rt.block_on(host.login_verify(&attempt, &verify)).unwrap() {
        LoginVerified::Granted { .. } => {}
        other => panic!("after the rotation: {other:?}"),
    }
    let audit = w.admin.ok(&["audit"]);
    assert!(audit.contains("server.rotate_key"), "{audit}");
    // The chain, from before the rotation to after it, still holds under the resealed key.
    w.admin.ok(&["audit", "verify"]);
}

#[test]
fn reasons_with_bidi_or_invisible_characters_are_refused_by_code_point() {
    let w = World::new();
    for (reason, named) in [
        ("restart \u{202e}gnp.exe", "U+202E"),
        ("ad\u{200b}min", "U+200B"),
        ("\u{2066}patch\u{2069}", "U+2066"),
    ] {
        let out = w
            .alice
            .jitctl
            .run(&["reserve", "admin", "--host", "web01", "--reason", reason]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{reason:?} was accepted");
        assert!(err.contains(named) && err.contains("reason"), "{err}");
    }
    // Nothing was reserved, and an ordinary non-ASCII reason is fine.
    let status = w.alice.jitctl.json(&["status"]);
    assert_eq!(status["reservations"].as_array().unwrap().len(), 0);
    w.alice.jitctl.ok(&[
        "reserve",
        "admin",
        "--host",
        "web01",
        "--reason",
        "mise à jour",
    ]);
    // Other stored free text too: a person's display name, through the raw API.
    let t = Some(w.server.admin_token.as_str());
    let (code, body) = w.server.curl(
        "POST",
        "/v1/persons",
        t,
        Some("{\"name\":\"carol\",\"display_name\":\"Carol \u{202e}lorac\"}".as_bytes()),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("U+202E"), "{body}");
}
