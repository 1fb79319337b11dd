//! Several server addresses (replicas of one service on one database): jitd (`servers` in
//! jitd.toml) and jitctl (`--server` repeated) go on to the next address when one cannot be
//! reached, as they do through the addresses of one name, and a consuming call that was sent but
//! never answered is not sent again elsewhere.

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use jit_proto::api::{LoginBegin, LoginBegun, LoginOrigin, LoginVerified, LoginVerify};
use jit_proto::{AccountName, Secret};
use jit_tests::host::{Host, reserve};
use jit_tests::{Jitctl, World, join_host_creds, replica_of, runtime};

/// An address where nothing listens (connections are refused).
fn dead_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("https://127.0.0.1:{port}")
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// A host client for `servers` with the host credential of `creds`.
fn host_client(creds: &jit_tests::HostCreds, servers: &[String]) -> jit_client::Client {
    jit_client::Client::with_servers(
        servers,
        jit_client::Trust::CaPem(creds.ca_pem.clone()),
        Some(creds.credential.clone()),
        Duration::from_secs(3),
    )
    .unwrap()
}

/// Starts a login to admin; its attempt id.
fn begin_admin(rt: &tokio::runtime::Runtime, host: &jit_client::Client) -> String {
    let begun = rt
        .block_on(host.login_begin(&LoginBegin {
            account: AccountName::new("admin").unwrap(),
            origin: LoginOrigin {
                service: "sshd".into(),
                rhost: Some("10.0.0.9".into()),
                tty: None,
                ruser: None,
                ssh_key: None,
                source: None,
            },
        }))
        .unwrap();
    match begun {
        LoginBegun::Challenge { attempt, .. } => attempt,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

#[test]
fn jitd_with_a_dead_first_server_logs_in_through_the_second() {
    let w = World::new();
    let mut host = Host::joined(&w.join_token);
    host.set_config(
        "servers",
        &format!("[{:?}, {:?}]", dead_url(), w.server.url),
    );
    host.run();
    reserve(&w.alice, "admin");
    host.login("admin", &w.alice.next_code())
        .assert_ok()
        .assert_shows("JIT_PERSON=alice");
}

#[test]
fn jitctl_with_a_dead_first_server_works_through_the_second() {
    let w = World::new();
    let j = Jitctl::new();
    let dead = dead_url();
    j.ok(&[
        "login",
        "--server",
        &dead,
        "--server",
        &w.server.url,
        "--ca-fingerprint",
        &w.server.fingerprint,
        "--token",
        &w.server.admin_token,
    ]);
    // Both are kept, in order, and every later command goes on past the dead one.
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(j.dir().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["servers"], serde_json::json!([dead, w.server.url]));
    let listed = j.json(&["account", "list"]);
    assert!(listed.to_string().contains("\"admin\""), "{listed}");
    // With no server reachable, the error names each.
    let mut w = w;
    w.server.kill();
    let err = j.fails(6, &["account", "list"]);
    assert!(err.contains(&dead) && err.contains(&w.server.url), "{err}");
}

#[test]
fn a_login_code_sent_without_an_answer_is_not_sent_to_another_server() {
    let w = World::new();
    let rt = runtime();
    let mut second = replica_of(&w.server);
    let creds = join_host_creds(&rt, &w.join_token);
    // The second process first, the world's server after it.
    let host = host_client(&creds, &[second.url.clone(), w.server.url.clone()]);
    reserve(&w.alice, "admin");
    let attempt = begin_admin(&rt, &host);
    assert_eq!(host.server(), second.url);
    // The second process stops answering. On the open connection the code is sent and nothing
    // comes back: the login fails (closed) rather than sending the code to the other server.
    // (Should the client need a new connection, its TLS handshake cannot complete, nothing is
    // sent, and the other server may decide the login: that is safe too.)
    let pid = second.pid().unwrap();
    signal(pid, "-STOP");
    let verified = rt.block_on(host.login_verify(
        &attempt,
        &LoginVerify {
            code: Secret::new(w.alice.next_code()),
        },
    ));
    let other = w.server.log();
    // A read may go on to the other server.
    let accounts = rt.block_on(host.host_accounts());
    signal(pid, "-CONT");
    match &verified {
        Err(_) => assert!(
            !other.contains("login.verify"),
            "the code went to the other server too: {other}"
        ),
        Ok(_) => assert!(
            other.contains("login.verify"),
            "granted, yet not by the server that answered: {other}"
        ),
    }
    assert!(accounts.is_ok(), "{accounts:?}");
    assert_eq!(host.server(), w.server.url);
    // Whatever the stopped process did with the code once it ran again, the reservation was
    // consumed at most once.
    second.kill();
    let consumed: u32 = w
        .server
        .sql("SELECT COUNT(*) FROM reservations WHERE state = 'consumed'")
        .parse()
        .unwrap();
    assert!(consumed <= 1, "{consumed}");
}

#[test]
fn jitctl_tries_each_address_of_a_name() {
    let mut server = jit_tests::Server::start();
    server.kill();
    // Only on 127.0.0.2; `localhost` resolves to 127.0.0.1 first, where nothing listens.
    server.run("127.0.0.2:0");
    let port = server.addr().rsplit(':').next().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n127.0.0.2 localhost\n").unwrap();
    let j = Jitctl::new();
    let jitctl = |args: &[&str]| {
        let mut argv = vec![jit_tests::bin("jitctl").display().to_string()];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        let out = jit_sandbox::Namespace::new()
            .bind(&hosts, "/etc/hosts")
            .command(&argv)
            .env("JITCTL_CONFIG", j.dir())
            .env_remove("JITCTL_TOKEN")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "jitctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let url = format!("https://localhost:{port}");
    jitctl(&[
        "login",
        "--server",
        &url,
        "--ca-fingerprint",
        &server.fingerprint,
        "--token",
        &server.admin_token,
    ]);
    let who = jitctl(&["whoami"]);
    assert!(who.contains("admin"), "{who}");
}

#[test]
fn a_login_whose_server_was_killed_completes_on_another_and_consumes_once() {
    let w = World::new();
    let rt = runtime();
    let mut second = replica_of(&w.server);
    let creds = join_host_creds(&rt, &w.join_token);
    let host = host_client(&creds, &[second.url.clone(), w.server.url.clone()]);
    reserve(&w.alice, "admin");
    let attempt = begin_admin(&rt, &host);
    assert_eq!(host.server(), second.url);
    // The replica that started the login is gone. Either the code cannot be sent there, so it
    // goes to the other one, which decides on the same database; or the client had already
    // written it on a kept-alive connection to the dying replica, got no answer, and fails
    // closed rather than send a code that may have been used (which one depends on whether
    // the client saw the connection close before reusing it). A login started again then
    // completes on the other replica. Either way the reservation is consumed once.
    second.kill();
    let code = w.alice.next_code();
    let mut attempt = attempt;
    let verified = match rt.block_on(host.login_verify(
        &attempt,
        &LoginVerify {
            code: Secret::new(code),
        },
    )) {
        Ok(verified) => verified,
        Err(jit_client::ClientError::Unreachable { server, .. }) => {
            assert_eq!(server, second.url);
            assert_eq!(
                w.server
                    .sql("SELECT COUNT(*) FROM reservations WHERE state = 'consumed'"),
                "0"
            );
            attempt = begin_admin(&rt, &host);
            rt.block_on(host.login_verify(
                &attempt,
                &LoginVerify {
                    code: Secret::new(w.alice.next_code()),
                },
            ))
            .unwrap()
        }
        Err(e) => panic!("{e}"),
    };
    assert!(
        matches!(verified, LoginVerified::Granted { .. }),
        "{verified:?}"
    );
    assert_eq!(host.server(), w.server.url);
    assert_eq!(
        w.server
            .sql("SELECT COUNT(*) FROM reservations WHERE state = 'consumed'"),
        "1"
    );
    // The attempt is spent: another code for it opens nothing.
    let again = rt.block_on(host.login_verify(
        &attempt,
        &LoginVerify {
            code: Secret::new(w.alice.next_code()),
        },
    ));
    assert!(
        !matches!(again, Ok(LoginVerified::Granted { .. })),
        "{again:?}"
    );
}
