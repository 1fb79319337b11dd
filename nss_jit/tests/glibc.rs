//! `libnss_jit.so.2` under real glibc: `getent`, `id` and a long-lived probe process resolve
//! names with `passwd: files jit` (and group, shadow) in a private mount namespace.
//!
//! Each case publishes a cache with jitd's own writer into a temp dir, then runs its command under
//! `unshare -m` with that dir bind-mounted on `/run/jitd`, a fresh (empty unless the case says
//! otherwise) `/var/lib/jitd`, temp `/etc/{nsswitch.conf,passwd,group,shadow}`, and
//! `LD_LIBRARY_PATH` pointing at a copy of the module. Nothing on the host changes except that
//! `/run/jitd` is created if missing (as a mount point). Needs root.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use jit_proto::nss_cache::{CacheContents, CacheGroup, CacheUser, encode, publish};

const NSSWITCH: &str = "passwd: files jit\ngroup: files jit\nshadow: files jit\n";
const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
                      daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
                      alice:x:1000:1000:Alice:/home/alice:/bin/bash\n";
const GROUP: &str = "root:x:0:\nadm:x:4:alice,admin\nalice:x:1000:\n";
const SHADOW: &str = "root:*:19000:0:99999:7:::\nalice:!:19000:0:99999:7:::\n";

fn user(name: &str, id: u32, gecos: &str, home: &str, shell: &str) -> CacheUser {
    CacheUser {
        name: name.into(),
        uid: id,
        gid: id,
        gecos: gecos.into(),
        home: home.into(),
        shell: shell.into(),
    }
}

fn group(name: &str, gid: u32, members: &[&str]) -> CacheGroup {
    CacheGroup {
        name: name.into(),
        gid,
        members: members.iter().map(|m| m.to_string()).collect(),
    }
}

/// 2000 characters: more than the 1024-byte buffer glibc's `getpwnam` starts with.
fn long_gecos() -> String {
    "g".repeat(2000)
}

fn contents() -> CacheContents {
    CacheContents {
        generation: 1,
        users: vec![
            user("admin", 60001, "Shared admin", "/home/admin", "/bin/bash"),
            user("deploy", 60002, "Deploy", "/srv/deploy", "/bin/sh"),
            user("verbose", 60003, &long_gecos(), "/home/verbose", "/bin/sh"),
        ],
        groups: vec![
            group("admin", 60001, &[]),
            group("deploy", 60002, &[]),
            group("verbose", 60003, &[]),
            group("jit-ops", 60010, &["admin", "deploy"]),
            group("jit-web", 60011, &["deploy"]),
        ],
        shared: vec![
            "root".into(),
            "admin".into(),
            "deploy".into(),
            "verbose".into(),
        ],
    }
}

/// What the case puts at `/run/jitd/nss.cache` and `/var/lib/jitd/nss.cache`.
#[derive(Debug, Clone, Copy)]
enum Setup {
    Published,
    /// Neither path has a file: a host that has not joined.
    NoCache,
    /// Only the state copy exists, as after a reboot before jitd has started.
    StateOnly,
    /// Bytes that are not a cache file.
    Garbage,
    /// A valid file cut short.
    Truncated,
}

/// A prepared namespace: temp dirs and the module copy.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new(setup: Setup) -> Sandbox {
        assert!(
            unsafe { libc::geteuid() } == 0,
            "these tests need root: they run commands under `unshare -m` with bind mounts"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        for sub in ["run", "state", "etc", "lib"] {
            fs::create_dir(p.join(sub)).unwrap();
        }
        fs::write(p.join("etc/nsswitch.conf"), NSSWITCH).unwrap();
        fs::write(p.join("etc/passwd"), PASSWD).unwrap();
        fs::write(p.join("etc/group"), GROUP).unwrap();
        fs::write(p.join("etc/shadow"), SHADOW).unwrap();
        fs::copy(module_path(), p.join("lib/libnss_jit.so.2")).unwrap();
        let run = p.join("run/nss.cache");
        match setup {
            Setup::Published => publish(&run, &contents()).unwrap(),
            Setup::NoCache => {}
            Setup::StateOnly => publish(&p.join("state/nss.cache"), &contents()).unwrap(),
            Setup::Garbage => fs::write(&run, b"this is not a cache file\n".repeat(10)).unwrap(),
            Setup::Truncated => {
                let bytes = encode(&contents());
                fs::write(&run, &bytes[..bytes.len() / 2]).unwrap();
            }
        }
        // The mount point; an empty directory on a host without jitd.
        fs::create_dir_all("/run/jitd").unwrap();
        Sandbox { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `argv` inside the namespace.
    fn command(&self, argv: &[&str]) -> Command {
        let script = r#"
            mount --bind "$SANDBOX/run" /run/jitd
            mount -t tmpfs tmpfs /var/lib
            mkdir /var/lib/jitd
            mount --bind "$SANDBOX/state" /var/lib/jitd
            for f in nsswitch.conf passwd group shadow; do
                mount --bind "$SANDBOX/etc/$f" "/etc/$f"
            done
            exec "$@"
        "#;
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "sh", "-ec", script, "sh"])
            .args(argv)
            .env("SANDBOX", self.path())
            .env("LD_LIBRARY_PATH", self.path().join("lib"))
            .env("LC_ALL", "C");
        cmd
    }

    fn run(&self, argv: &[&str]) -> Output {
        self.command(argv).output().unwrap()
    }
}

/// The cdylib cargo built with this test, whatever CARGO_TARGET_DIR is. The test runs from
/// `…/target/<profile>/deps/`, where `cargo test` writes the fresh `libnss_jit.so`; only
/// `cargo build` also copies it up to `…/target/<profile>/`, and that copy may be stale.
fn module_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let candidates = [
        deps.join("libnss_jit.so"),
        deps.parent().unwrap().join("libnss_jit.so"),
    ];
    match candidates.iter().find(|p| p.is_file()) {
        Some(so) => so.clone(),
        None => panic!(
            "libnss_jit.so is missing (looked for {candidates:?}): build it with the same profile \
             and target dir, e.g. `cargo test -p nss_jit`"
        ),
    }
}

fn lines(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .lines()
        .map(str::to_owned)
        .collect()
}

const ADMIN: &str = "admin:x:60001:60001:Shared admin:/home/admin:/bin/bash";
const ROOT: &str = "root:x:0:0:root:/root:/bin/bash";

#[test]
fn getent_and_id_see_jit_accounts_next_to_files() {
    let verbose = format!(
        "verbose:x:60003:60003:{}:/home/verbose:/bin/sh",
        long_gecos()
    );
    // (setup, command, exit code, exact stdout)
    let cases: Vec<(Setup, Vec<&str>, i32, Vec<&str>)> = vec![
        (
            Setup::Published,
            vec!["getent", "passwd", "admin"],
            0,
            vec![ADMIN],
        ),
        (
            Setup::Published,
            vec!["getent", "passwd", "60001"],
            0,
            vec![ADMIN],
        ),
        (
            Setup::Published,
            vec!["getent", "passwd", "nosuchuser"],
            2,
            vec![],
        ),
        (
            Setup::Published,
            vec!["getent", "passwd", "99999"],
            2,
            vec![],
        ),
        (
            Setup::Published,
            vec!["getent", "passwd", "root"],
            0,
            vec![ROOT],
        ),
        (
            Setup::Published,
            vec!["getent", "group", "admin"],
            0,
            vec!["admin:x:60001:"],
        ),
        (
            Setup::Published,
            vec!["getent", "group", "60001"],
            0,
            vec!["admin:x:60001:"],
        ),
        (
            Setup::Published,
            vec!["getent", "group", "jit-ops"],
            0,
            vec!["jit-ops:x:60010:admin,deploy"],
        ),
        (
            Setup::Published,
            vec!["getent", "group", "nosuchgroup"],
            2,
            vec![],
        ),
        (
            Setup::Published,
            vec!["getent", "group", "adm"],
            0,
            vec!["adm:x:4:alice,admin"],
        ),
        (
            Setup::Published,
            vec!["id", "admin"],
            0,
            vec!["uid=60001(admin) gid=60001(admin) groups=60001(admin),4(adm),60010(jit-ops)"],
        ),
        (
            Setup::Published,
            vec!["id", "deploy"],
            0,
            vec![
                "uid=60002(deploy) gid=60002(deploy) groups=60002(deploy),60010(jit-ops),60011(jit-web)",
            ],
        ),
        (
            Setup::Published,
            vec!["id", "alice"],
            0,
            vec!["uid=1000(alice) gid=1000(alice) groups=1000(alice),4(adm)"],
        ),
        (
            Setup::Published,
            vec!["getent", "initgroups", "deploy"],
            0,
            vec!["deploy                60010 60011"],
        ),
        (
            Setup::Published,
            vec!["getent", "shadow", "admin"],
            0,
            vec!["admin:*:::::::"],
        ),
        (
            Setup::Published,
            vec!["getent", "shadow", "root"],
            0,
            vec!["root:*:19000:0:99999:7:::"],
        ),
        (
            Setup::Published,
            vec!["getent", "shadow", "nosuchuser"],
            2,
            vec![],
        ),
        (
            Setup::Published,
            vec!["getent", "shadow"],
            0,
            vec![
                "root:*:19000:0:99999:7:::",
                "alice:!:19000:0:99999:7:::",
                "admin:*:::::::",
                "deploy:*:::::::",
                "verbose:*:::::::",
            ],
        ),
        (
            Setup::Published,
            vec!["getent", "passwd"],
            0,
            vec![
                ROOT,
                "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
                "alice:x:1000:1000:Alice:/home/alice:/bin/bash",
                ADMIN,
                "deploy:x:60002:60002:Deploy:/srv/deploy:/bin/sh",
                &verbose,
            ],
        ),
        (
            Setup::Published,
            vec!["getent", "group"],
            0,
            vec![
                "root:x:0:",
                "adm:x:4:alice,admin",
                "alice:x:1000:",
                "admin:x:60001:",
                "deploy:x:60002:",
                "jit-ops:x:60010:admin,deploy",
                "jit-web:x:60011:deploy",
                "verbose:x:60003:",
            ],
        ),
        // Longer than glibc's first buffer: our TRYAGAIN/ERANGE makes it retry with a bigger one.
        (
            Setup::Published,
            vec!["getent", "passwd", "verbose"],
            0,
            vec![&verbose],
        ),
        (
            Setup::StateOnly,
            vec!["getent", "passwd", "admin"],
            0,
            vec![ADMIN],
        ),
    ];
    // Whatever is wrong with the cache, jit names are unknown and files still answer.
    let mut cases = cases;
    for setup in [Setup::NoCache, Setup::Garbage, Setup::Truncated] {
        cases.push((setup, vec!["getent", "passwd", "admin"], 2, vec![]));
        cases.push((setup, vec!["getent", "group", "jit-ops"], 2, vec![]));
        cases.push((setup, vec!["getent", "passwd", "root"], 0, vec![ROOT]));
        cases.push((
            setup,
            vec!["id", "alice"],
            0,
            vec!["uid=1000(alice) gid=1000(alice) groups=1000(alice),4(adm)"],
        ));
        cases.push((
            setup,
            vec!["getent", "passwd"],
            0,
            vec![
                ROOT,
                "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
                "alice:x:1000:1000:Alice:/home/alice:/bin/bash",
            ],
        ));
    }

    let mut failures = Vec::new();
    for (setup, argv, code, want) in &cases {
        let sandbox = Sandbox::new(*setup);
        let out = sandbox.run(argv);
        let got = lines(&out.stdout);
        let signal = std::os::unix::process::ExitStatusExt::signal(&out.status);
        if out.status.code() != Some(*code) || got != *want || signal.is_some() {
            failures.push(format!(
                "{setup:?} {argv:?}: exit {:?} (signal {signal:?}), want {code}\n  stdout: {got:?}\n  want:   {want:?}\n  stderr: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn a_small_buffer_gets_erange_from_glibc() {
    let sandbox = Sandbox::new(Setup::Published);
    let probe = env!("CARGO_BIN_EXE_nss-jit-probe");
    let mut child = sandbox
        .command(&[probe])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // `files` runs first and needs room for its longest line (under 64 bytes here), so the
    // sizes below pass it and reach us. verbose needs "verbose\0" + "x\0" + 2000 + 1 +
    // "/home/verbose\0" + "/bin/sh\0" = 2033 bytes.
    writeln!(stdin, "passwd_r 1024 verbose\npasswd_r 2032 verbose\npasswd_r 2033 verbose\npasswd_r 64 nosuchuser")
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let erange = format!("error {}", libc::ERANGE);
    let verbose = format!(
        "verbose:x:60003:60003:{}:/home/verbose:/bin/sh",
        long_gecos()
    );
    assert_eq!(
        lines(&out.stdout),
        [erange.as_str(), &erange, &verbose, "notfound"]
    );
}

/// A process keeps the old file mapped across jitd's replace-and-mark-stale; its next lookup
/// must answer from the new file.
#[test]
fn a_long_lived_process_sees_a_republished_cache() {
    let sandbox = Sandbox::new(Setup::Published);
    let probe = env!("CARGO_BIN_EXE_nss-jit-probe");
    let mut child = sandbox
        .command(&[probe])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut ask = |request: &str| {
        writeln!(stdin, "{request}").unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    };

    assert_eq!(ask("passwd admin"), ADMIN);
    assert_eq!(ask("passwd newcomer"), "notfound");
    assert_eq!(ask("group jit-ops"), "jit-ops:x:60010:admin,deploy");

    let mut next = contents();
    next.generation = 2;
    next.users[0].gecos = "Admin, republished".into();
    next.users
        .push(user("newcomer", 60004, "", "/home/newcomer", "/bin/sh"));
    next.groups[3].members.push("newcomer".into());
    publish(&sandbox.path().join("run/nss.cache"), &next).unwrap();

    assert_eq!(
        ask("passwd admin"),
        "admin:x:60001:60001:Admin, republished:/home/admin:/bin/bash"
    );
    assert_eq!(
        ask("passwd newcomer"),
        "newcomer:x:60004:60004::/home/newcomer:/bin/sh"
    );
    assert_eq!(
        ask("group jit-ops"),
        "jit-ops:x:60010:admin,deploy,newcomer"
    );
    assert_eq!(ask("passwd root"), ROOT);

    // Unpublished: the account disappears for the same process (after the old file is marked).
    let mut last = next.clone();
    last.generation = 3;
    last.users.retain(|u| u.name != "newcomer");
    publish(&sandbox.path().join("run/nss.cache"), &last).unwrap();
    assert_eq!(ask("passwd newcomer"), "notfound");

    drop(stdin);
    assert!(child.wait().unwrap().success());
}
