//! Issue 3, scenario 13: `getent` and `id` through real glibc with `passwd: files jit`, from the
//! cache jitd wrote from the server's data, and the cache following the server.

use jit_tests::World;
use jit_tests::host::{Host, PATIENCE};

#[test]
fn getent_and_id_through_real_glibc() {
    let w = World::new();
    let host = Host::start(&w);
    assert_eq!(
        host.nss_ok(&["getent", "passwd", "admin"]),
        "admin:x:60001:60001::/home/admin:/bin/bash"
    );
    assert_eq!(
        host.nss_ok(&["getent", "passwd", "60001"]),
        "admin:x:60001:60001::/home/admin:/bin/bash"
    );
    assert_eq!(host.nss_ok(&["getent", "group", "admin"]), "admin:x:60001:");
    // Every guarded name is in jit-guarded, the group sshd's drop-in matches.
    assert_eq!(
        host.nss_ok(&["id", "admin"]),
        "uid=60001(admin) gid=60001(admin) groups=60001(admin),60999(jit-guarded)"
    );
    assert_eq!(
        host.nss_ok(&["getent", "group", "jit-guarded"]),
        "jit-guarded:x:60999:admin"
    );
    assert!(
        host.nss_ok(&["getent", "shadow", "admin"])
            .starts_with("admin:*:")
    );
    // The host's own files still come first, and an unknown name is unknown.
    assert_eq!(
        host.nss_ok(&["getent", "passwd", "root"]),
        "root:x:0:0:root:/root:/bin/bash"
    );
    assert_eq!(
        host.nss(&["getent", "passwd", "deploy"]).status.code(),
        Some(2)
    );

    // The admin adds a second account: the cache follows within a few refreshes.
    w.admin.ok(&[
        "account",
        "add",
        "deploy",
        "--uid",
        "60002",
        "--gid",
        "60002",
        "--home",
        "/srv/deploy",
        "--shell",
        "/bin/sh",
        "--gecos",
        "Deploy bot",
        "--unix-group",
        "jitweb:60010",
        "--group",
        "ops",
        "--hosts",
        "web*",
    ]);
    jit_tests::wait_for("deploy in the NSS cache", PATIENCE, || {
        host.nss(&["getent", "passwd", "deploy"]).status.success()
    });
    assert_eq!(
        host.nss_ok(&["getent", "passwd", "deploy"]),
        "deploy:x:60002:60002:Deploy bot:/srv/deploy:/bin/sh"
    );
    assert_eq!(
        host.nss_ok(&["getent", "group", "jitweb"]),
        "jitweb:x:60010:deploy"
    );
    assert_eq!(
        host.nss_ok(&["id", "deploy"]),
        "uid=60002(deploy) gid=60002(deploy) groups=60002(deploy),60999(jit-guarded),60010(jitweb)"
    );
    assert_eq!(
        host.nss_ok(&["getent", "group", "jit-guarded"]),
        "jit-guarded:x:60999:admin,deploy"
    );
    // Both copies were written, and the new account is shared for pam_jit's fallback too.
    for path in [host.nss_cache(), host.state_cache()] {
        assert!(
            jit_tests::host::guards(&path, "deploy"),
            "{}",
            path.display()
        );
    }

    // Disabled on the server: it stays a guarded shared account (a disabled root must not fall
    // back to its local password) and keeps resolving; logins are refused as disabled.
    w.admin.ok(&["account", "disable", "deploy"]);
    let rt = jit_tests::runtime();
    let web09 = w.admin.json(&["host", "add", "web09"]);
    let host_api = jit_tests::join_host(&rt, web09["join_token"].as_str().unwrap());
    jit_tests::wait_for("the server to report deploy disabled", PATIENCE, || {
        rt.block_on(host_api.host_accounts())
            .unwrap()
            .accounts
            .iter()
            .any(|a| a.name.as_str() == "deploy" && !a.active)
    });
    host.login("deploy", "123456")
        .assert_failed()
        .assert_shows("deploy is disabled");
    assert!(jit_tests::host::guards(&host.state_cache(), "deploy"));
    assert_eq!(
        host.nss_ok(&["getent", "passwd", "deploy"]),
        "deploy:x:60002:60002:Deploy bot:/srv/deploy:/bin/sh"
    );
}
