//! One list of guarded names, read alike by jitd, pam_jit and nss_jit, through real libpam
//! (pamtester) and real glibc NSS, with the real jitd and server:
//! - a second uid-0 name (`toor`) is a login to root;
//! - a name that differs only in case, under a case-insensitive NSS backend, is a login to the
//!   shared account whose uid it resolves to;
//! - a joined host that has no list refuses uid 0 and the always-guarded names, and nobody else,
//!   whether jitd answers or not; a host that never joined refuses nobody.

use std::process::Command;

use jit_tests::World;
use jit_tests::host::{Host, PROMPT, SERVICE, reserve, share_root};

const ALL_STAGES: &[&str] = &["authenticate", "acct_mgmt", "open_session", "close_session"];
/// A service whose auth stack lets through whatever pam_jit ignores.
const PERMIT: &str = "permit-next";

#[test]
fn a_second_uid_0_name_is_a_login_to_root() {
    let w = World::new();
    let mut host = Host::joined(&w.join_token);
    host.append_etc("passwd", "toor:x:0:0:second root:/root:/bin/sh");
    host.run();
    host.service(PERMIT, "pam_permit.so");
    share_root(&w, &host, "toor");
    // nss_jit: both names are members of the group sshd's drop-in matches.
    assert_eq!(
        host.nss_ok(&["getent", "group", "jit-guarded"]),
        "jit-guarded:x:60999:admin,root,toor"
    );
    let initgroups = host.nss_ok(&["getent", "initgroups", "toor"]);
    assert!(initgroups.ends_with(" 60999"), "{initgroups:?}");

    // jitd: toor is root, and root is not reserved.
    host.pamtester(PERMIT, "toor", &["authenticate"], "")
        .assert_failed()
        .assert_shows("root is not reserved on web01")
        .assert_hides(PROMPT);
    // The holder of root's reservation logs in as toor with her code.
    reserve(&w.alice, "root");
    host.pamtester(
        PERMIT,
        "toor",
        ALL_STAGES,
        &format!("{}\n", w.alice.next_code()),
    )
    .assert_ok()
    .assert_shows(PROMPT)
    .assert_shows("JIT_PERSON=alice");
    let events = jit_tests::host::audit(&w.admin, "root");
    assert!(
        events.iter().any(|e| e["action"] == "login.verify"
            && e["result"] == "ok"
            && e["person"] == "alice"),
        "{events:#?}"
    );
    // pam_jit alone (jitd down): toor is refused like root; alice is untouched.
    host.kill();
    for name in ["toor", "root"] {
        host.pamtester(PERMIT, name, &["authenticate"], "")
            .assert_failed()
            .assert_shows(&format!(
                "cannot reach jitd to check your reservation for {name}"
            ));
    }
    host.pamtester(PERMIT, "alice", &["authenticate", "acct_mgmt"], "")
        .assert_ok()
        .assert_hides("jit:");
}

/// A backend that ignores case, as a directory service may: any spelling of `admin` is the
/// virtual account admin (uid 60001), under the name as typed. Real glibc dispatch, next to
/// `files` and `jit` in nsswitch.conf.
const CASE_INSENSITIVE_NSS: &str = r#"
#include <errno.h>
#include <nss.h>
#include <pwd.h>
#include <string.h>
#include <strings.h>

static int put(char **p, size_t *left, const char *s, char **out) {
    size_t n = strlen(s) + 1;
    if (n > *left) return 0;
    memcpy(*p, s, n);
    *out = *p;
    *p += n;
    *left -= n;
    return 1;
}

enum nss_status _nss_ci_getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t len,
                                   int *errnop) {
    if (strcasecmp(name, "admin") != 0) {
        *errnop = ENOENT;
        return NSS_STATUS_NOTFOUND;
    }
    char *p = buf;
    size_t left = len;
    if (!put(&p, &left, name, &pw->pw_name) || !put(&p, &left, "x", &pw->pw_passwd) ||
        !put(&p, &left, "", &pw->pw_gecos) || !put(&p, &left, "/home/admin", &pw->pw_dir) ||
        !put(&p, &left, "/bin/bash", &pw->pw_shell)) {
        *errnop = ERANGE;
        return NSS_STATUS_TRYAGAIN;
    }
    pw->pw_uid = 60001;
    pw->pw_gid = 60001;
    return NSS_STATUS_SUCCESS;
}
"#;

#[test]
fn a_name_in_another_case_is_a_login_to_the_account_of_its_uid() {
    let w = World::new();
    let mut host = Host::start(&w);
    host.service(PERMIT, "pam_permit.so");
    let src = host.path().join("ci.c");
    std::fs::write(&src, CASE_INSENSITIVE_NSS).expect("write ci.c");
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-Wall", "-Werror", "-o"])
        .arg(host.path().join("nss/lib/libnss_ci.so.2"))
        .arg(&src)
        .output()
        .expect("cc (apt-get install gcc)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(
        host.path().join("nss/etc/nsswitch.conf"),
        "passwd: files jit ci\ngroup: files jit\nshadow: files jit\n",
    )
    .expect("nsswitch.conf");
    assert_eq!(
        host.nss_ok(&["getent", "passwd", "ADMIN"]),
        "ADMIN:x:60001:60001::/home/admin:/bin/bash"
    );
    // The list does not name "ADMIN", but its uid is admin's: a login to admin, refused
    // without a reservation of admin...
    for name in ["ADMIN", "Admin"] {
        host.pamtester(PERMIT, name, &["authenticate"], "")
            .assert_failed()
            .assert_shows("admin is not reserved on web01")
            .assert_hides(PROMPT);
        // ...and a key-like login (no auth stage) is refused in the account stage.
        host.pamtester(PERMIT, name, &["acct_mgmt"], "")
            .assert_failed()
            .assert_shows("admin is a shared account");
    }
    reserve(&w.alice, "admin");
    host.pamtester(
        SERVICE,
        "Admin",
        ALL_STAGES,
        &format!("{}\n", w.alice.next_code()),
    )
    .assert_ok()
    .assert_shows(PROMPT)
    .assert_shows("JIT_PERSON=alice");
    // pam_jit alone: the uid decides too.
    host.kill();
    host.pamtester(PERMIT, "ADMIN", &["authenticate"], "")
        .assert_failed()
        .assert_shows("cannot reach jitd to check your reservation for ADMIN");
    host.pamtester(PERMIT, "alice", &["authenticate"], "")
        .assert_ok();
}

#[test]
fn a_joined_host_without_a_list_refuses_uid_0_and_always_guarded_names_only() {
    let mut w = World::new();
    let mut host = Host::joined(&w.join_token);
    host.append_etc("passwd", "toor:x:0:0:second root:/root:/bin/sh");
    host.service(PERMIT, "pam_permit.so");
    assert!(host.joined_marker().exists(), "jitd join wrote no marker");
    // The list is lost (both copies) and the server is down: jitd starts without a list.
    w.server.kill();
    for copy in [host.nss_cache(), host.state_cache()] {
        std::fs::remove_file(&copy).expect("remove a cache copy");
    }
    host.run();
    assert!(
        host.log().contains("no list of shared accounts yet"),
        "{}",
        host.log()
    );
    let refused = |host: &Host, name: &str, why: &str| {
        for stage in ["authenticate", "acct_mgmt", "open_session"] {
            host.pamtester(PERMIT, name, &[stage], "")
                .assert_failed()
                .assert_shows(why)
                .assert_hides(PROMPT);
        }
    };
    for name in ["root", "toor"] {
        refused(
            &host,
            name,
            &format!("logins to {name} are refused until it does"),
        );
    }
    host.pamtester(PERMIT, "alice", ALL_STAGES, "")
        .assert_ok()
        .assert_hides("jit:");
    // jitd down too: pam_jit reads the marker.
    host.kill();
    for name in ["root", "toor"] {
        refused(
            &host,
            name,
            "this host's list of shared accounts cannot be read",
        );
    }
    host.pamtester(PERMIT, "alice", ALL_STAGES, "")
        .assert_ok()
        .assert_hides("jit:");
    // A host that never joined (no marker, no cache): jit refuses nobody.
    std::fs::remove_file(host.joined_marker()).expect("remove the marker");
    host.pamtester(PERMIT, "root", ALL_STAGES, "")
        .assert_ok()
        .assert_hides("jit:");
}
