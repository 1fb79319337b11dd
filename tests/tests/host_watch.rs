//! Hosts hear of changes through the server's watch (`GET /v1/host/watch`): with jitd's periodic
//! refresh set to its longest (30 s), a new shared account, an offline grant and its release, a
//! person's ssh key and that person's disabling all reach a running jitd's files without a login
//! or a restart, each well before the next periodic refresh. The server's side is also checked
//! directly: a watch held open answers when a change for its host is written, also by another
//! server process on the same database, and a change for another host does not wake it.

use std::process::Command;
use std::time::Duration;

use jit_proto::api::ChangeKind;
use jit_tests::host::{Host, guards};
use jit_tests::{World, join_host_creds, replica_of, runtime, wait_for};

/// Generous bound for a change to reach jitd through the watch: well below the 30 s refresh
/// interval these tests set, so only the watch can explain it. Not a timed assertion of the
/// target (2 s).
const WATCH_PATIENCE: Duration = Duration::from_secs(10);

/// A joined web01 whose jitd refreshes only every 30 s on its own.
fn slow_host(w: &World) -> Host {
    let mut host = Host::joined(&w.join_token);
    host.set_config("refresh_interval", "\"30s\"");
    host.run();
    host
}

fn add_account(w: &World, name: &str, uid: &str, extra: &[&str]) {
    let mut args = vec![
        "account", "add", name, "--uid", uid, "--gid", uid, "--home", "/home/x", "--shell",
        "/bin/sh", "--group", "ops", "--hosts", "web*",
    ];
    args.extend_from_slice(extra);
    w.admin.ok(&args);
}

#[test]
fn changes_reach_a_running_jitd_without_a_login_or_restart() {
    let w = World::new();
    let host = slow_host(&w);
    assert!(guards(&host.nss_cache(), "admin"));
    assert!(!guards(&host.nss_cache(), "deploy"));

    // A new shared account reaches the NSS cache.
    add_account(&w, "deploy", "60010", &[]);
    wait_for("the new account in the NSS cache", WATCH_PATIENCE, || {
        guards(&host.nss_cache(), "deploy")
    });
    let passwd = host.nss_ok(&["getent", "passwd", "deploy"]);
    assert!(passwd.starts_with("deploy:x:60010:60010:"), "{passwd}");

    // A reservation's offline grant arrives, and goes with its release.
    add_account(&w, "vault", "60011", &["--offline", "cached"]);
    let id = w
        .alice
        .jitctl
        .json(&["reserve", "vault", "--host", "web01"])["id"]
        .as_i64()
        .unwrap();
    let kept = host.path().join("state/offline.json");
    let has_grant = || {
        std::fs::read_to_string(&kept)
            .is_ok_and(|t| t.contains(&format!("\"reservation_id\":{id}")))
    };
    wait_for("jitd to keep the offline grant", WATCH_PATIENCE, has_grant);
    w.alice.jitctl.ok(&["release", "vault", "--host", "web01"]);
    wait_for("jitd to drop the released grant", WATCH_PATIENCE, || {
        !has_grant()
    });

    // A person's new ssh key is published for the accounts of their groups, and withdrawn
    // when the person is disabled.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success(), "{out:?}");
    let public = std::fs::read_to_string(dir.path().join("k.pub")).unwrap();
    let blob = public.split_whitespace().nth(1).unwrap().to_owned();
    w.alice
        .jitctl
        .ok(&["key", "add", dir.path().join("k.pub").to_str().unwrap()]);
    wait_for("alice's key on the host", WATCH_PATIENCE, || {
        host.ssh_keys().contains(&blob)
    });
    w.admin.ok(&["person", "disable", "alice"]);
    wait_for(
        "alice's key withdrawn from the host",
        WATCH_PATIENCE,
        || !host.ssh_keys().contains(&blob),
    );

    // The host's log says it was the watch that reported them.
    let log = host.log();
    assert!(log.contains("the server reports changes"), "{log}");
}

#[test]
fn a_held_watch_answers_for_its_own_host_only() {
    let w = World::new();
    let rt = runtime();
    let web01 = join_host_creds(&rt, &w.join_token).client();
    let other = w.admin.json(&["host", "add", "db01", "--label", "db"]);
    let db01 = join_host_creds(&rt, other["join_token"].as_str().unwrap()).client();
    let slack = Duration::from_secs(10);

    // First contact: where to start, and everything is to be fetched.
    let first = rt.block_on(web01.host_watch(None, 25, slack)).unwrap();
    assert!(first.reset, "{first:?}");
    let start = rt.block_on(db01.host_watch(None, 25, slack)).unwrap().seq;

    // Nothing new: an empty answer after the wait, continuing from the same place.
    let idle = rt
        .block_on(web01.host_watch(Some(first.seq), 1, slack))
        .unwrap();
    assert!(!idle.reset && idle.kinds.is_empty(), "{idle:?}");
    assert_eq!(idle.seq, first.seq);

    // A watch held open hears of a reservation for its host when it is made.
    let held = rt.spawn({
        let web01 = web01.clone();
        async move { web01.host_watch(Some(first.seq), 25, slack).await }
    });
    std::thread::sleep(Duration::from_millis(500));
    w.alice.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    let heard = rt.block_on(held).unwrap().unwrap();
    assert_eq!(heard.kinds, vec![ChangeKind::Reservations], "{heard:?}");
    assert!(heard.seq > first.seq);

    // db01 is not told of web01's reservation, but of a new account (every host may have it).
    let quiet = rt.block_on(db01.host_watch(Some(start), 1, slack)).unwrap();
    assert!(quiet.kinds.is_empty(), "{quiet:?}");
    add_account(&w, "deploy", "60010", &[]);
    let told = rt
        .block_on(db01.host_watch(Some(quiet.seq), 25, slack))
        .unwrap();
    assert_eq!(told.kinds, vec![ChangeKind::Accounts], "{told:?}");

    // A cursor the log cannot continue from (another database, say) asks for a full refresh.
    let lost = rt
        .block_on(web01.host_watch(Some(told.seq + 1000), 25, slack))
        .unwrap();
    assert!(lost.reset, "{lost:?}");
}

#[test]
fn a_watch_on_one_server_process_hears_of_a_change_made_through_another() {
    let w = World::new();
    let rt = runtime();
    let second = replica_of(&w.server);
    let creds = join_host_creds(&rt, &w.join_token);
    let on_second = creds.client_at(&second.url);
    let slack = Duration::from_secs(10);
    let start = rt
        .block_on(on_second.host_watch(None, 25, slack))
        .unwrap()
        .seq;
    let held = rt.spawn(async move { on_second.host_watch(Some(start), 25, slack).await });
    std::thread::sleep(Duration::from_millis(500));
    // Made through the world's server; only the database links the two processes.
    w.alice.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    let heard = rt.block_on(held).unwrap().unwrap();
    assert_eq!(heard.kinds, vec![ChangeKind::Reservations], "{heard:?}");
}

#[test]
fn a_host_of_a_server_with_an_empty_log_waits_instead_of_refreshing_again() {
    let server = jit_tests::Server::start();
    let admin = jit_tests::Jitctl::admin(&server);
    let rt = runtime();
    let host = admin.json(&["host", "add", "web01", "--label", "web"]);
    let web01 = join_host_creds(&rt, host["join_token"].as_str().unwrap()).client();
    let slack = Duration::from_secs(10);
    let first = rt.block_on(web01.host_watch(None, 25, slack)).unwrap();
    assert!(first.reset && first.seq == 0, "{first:?}");
    let next = rt.block_on(web01.host_watch(Some(0), 1, slack)).unwrap();
    assert!(!next.reset && next.kinds.is_empty(), "{next:?}");
}
