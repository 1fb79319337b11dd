//! `libnss_jit.so.2` under real glibc: `getent`, `id` and a long-lived probe process resolve
//! names with `passwd: files jit` (and group, shadow) in a private mount namespace.
//!
//! Each case publishes a cache with jitd's own writer into a temp dir, then runs its command under
//! `unshare -m` with that dir bind-mounted on `/run/jitd`, a fresh (empty unless the case says
//! otherwise) `/var/lib/jitd`, temp `/etc/{nsswitch.conf,passwd,group,shadow}`, and
//! `LD_LIBRARY_PATH` pointing at a copy of the module (`jit_sandbox`). Nothing on the host changes
//! except that `/run/jitd` is created if missing (as a mount point). Needs root, and fails
//! without it.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use jit_nss_cache::{CacheContents, CacheGroup, CacheGuarded, CacheUser, encode, publish};
use jit_sandbox::{Namespace, built, require_root};

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
        guarded: vec![
            CacheGuarded::account("root", Some(0)),
            CacheGuarded::account("admin", Some(60001)),
            CacheGuarded::account("deploy", Some(60002)),
            CacheGuarded::account("verbose", Some(60003)),
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
        require_root("it runs commands under `unshare -m` with bind mounts");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        for sub in ["run", "state", "etc", "lib"] {
            fs::create_dir(p.join(sub)).unwrap();
        }
        fs::write(p.join("etc/nsswitch.conf"), NSSWITCH).unwrap();
        fs::write(p.join("etc/passwd"), PASSWD).unwrap();
        fs::write(p.join("etc/group"), GROUP).unwrap();
        fs::write(p.join("etc/shadow"), SHADOW).unwrap();
        fs::copy(built("libnss_jit.so"), p.join("lib/libnss_jit.so.2")).unwrap();
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
        Sandbox { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `argv` inside the namespace.
    fn command(&self, argv: &[&str]) -> Command {
        let p = self.path();
        let mut cmd = Namespace::new()
            .nss(&p.join("run"), &p.join("state"), &p.join("etc"))
            .command(argv);
        cmd.env("LD_LIBRARY_PATH", p.join("lib")).env("LC_ALL", "C");
        cmd
    }

    fn run(&self, argv: &[&str]) -> Output {
        self.command(argv).output().unwrap()
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

/// A long-lived `nss-jit-probe` in the sandbox, asked one line at a time.
struct Probe {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
}

/// How long [`Probe::ask_until`] keeps asking. The module looks at the file again on its first
/// lookup in a new tick of the coarse clock (a few ms), and retries an unusable file once a
/// second, so this bound is only there to end a test that would otherwise hang.
const SETTLE: Duration = Duration::from_secs(20);

impl Probe {
    fn start(sandbox: &Sandbox) -> Probe {
        let mut child = sandbox
            .command(&[env!("CARGO_BIN_EXE_nss-jit-probe")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Probe {
            child,
            stdin,
            stdout,
        }
    }

    /// One answer; fails the test (with how the probe ended) if the probe is gone.
    fn ask(&mut self, request: &str) -> String {
        let mut line = String::new();
        let sent = writeln!(self.stdin, "{request}");
        if sent.is_err() || self.stdout.read_line(&mut line).unwrap() == 0 {
            let status = self.child.wait().unwrap();
            panic!("the probe died answering {request:?}: {status}");
        }
        line.trim_end().to_owned()
    }

    /// Asks until the answer is `want` (the module may answer from what it has for a few ms
    /// after the file changed); fails on the last answer if it never comes.
    fn ask_until(&mut self, request: &str, want: &str) {
        let start = Instant::now();
        loop {
            let got = self.ask(request);
            if got == want {
                return;
            }
            assert!(
                start.elapsed() < SETTLE,
                "{request:?}: still {got:?} after {SETTLE:?}, want {want:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn finish(mut self) {
        drop(self.stdin);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "probe: {status}");
    }
}

/// A process keeps the old file mapped across jitd's replace-and-mark-stale; its lookups must
/// move to the new file.
#[test]
fn a_long_lived_process_sees_a_republished_cache() {
    let sandbox = Sandbox::new(Setup::Published);
    let mut probe = Probe::start(&sandbox);

    assert_eq!(probe.ask("passwd admin"), ADMIN);
    assert_eq!(probe.ask("passwd newcomer"), "notfound");
    assert_eq!(probe.ask("group jit-ops"), "jit-ops:x:60010:admin,deploy");

    let mut next = contents();
    next.generation = 2;
    next.users[0].gecos = "Admin, republished".into();
    next.users
        .push(user("newcomer", 60004, "", "/home/newcomer", "/bin/sh"));
    next.groups[3].members.push("newcomer".into());
    publish(&sandbox.path().join("run/nss.cache"), &next).unwrap();

    probe.ask_until(
        "passwd admin",
        "admin:x:60001:60001:Admin, republished:/home/admin:/bin/bash",
    );
    assert_eq!(
        probe.ask("passwd newcomer"),
        "newcomer:x:60004:60004::/home/newcomer:/bin/sh"
    );
    assert_eq!(
        probe.ask("group jit-ops"),
        "jit-ops:x:60010:admin,deploy,newcomer"
    );
    assert_eq!(probe.ask("passwd root"), ROOT);

    // Unpublished: the account disappears for the same process.
    let mut last = next.clone();
    last.generation = 3;
    last.users.retain(|u| u.name != "newcomer");
    publish(&sandbox.path().join("run/nss.cache"), &last).unwrap();
    probe.ask_until("passwd newcomer", "notfound");

    probe.finish();
}

const ALICE: &str = "alice:x:1000:1000:Alice:/home/alice:/bin/bash";

/// An admin's `truncate`, `>` or `cp` changes the mapped file in place instead of replacing it
/// (jitd never does). The process that has it mapped must carry on: jit names become
/// unavailable (`getpwnam_r` returns the module's ENOENT) while the file is bad, `files` keeps
/// answering, and a good file is served again. Without a private copy of the file the first
/// lookup after the truncation dies of SIGBUS.
#[test]
fn a_cache_changed_in_place_under_a_running_process_is_unavailable_not_a_crash() {
    let sandbox = Sandbox::new(Setup::Published);
    let run = sandbox.path().join("run/nss.cache");
    let unavailable = format!("error {}", libc::ENOENT);
    let mut probe = Probe::start(&sandbox);
    assert_eq!(probe.ask("passwd admin"), ADMIN);

    let in_place = || fs::OpenOptions::new().write(true).open(&run).unwrap();
    let still_answering = |probe: &mut Probe| {
        assert_eq!(probe.ask("passwd root"), ROOT);
        assert_eq!(probe.ask("passwd alice"), ALICE);
    };

    // `truncate -s 0`, or the first step of a `cp` (O_TRUNC).
    in_place().set_len(0).unwrap();
    probe.ask_until("passwd admin", &unavailable);
    assert_eq!(probe.ask("group jit-ops"), unavailable);
    // Without a cache the module cannot tell a name is not shared: unavailable, as on a host
    // without jit (`getent` and `id` treat it as unknown).
    assert_eq!(probe.ask("passwd nosuchuser"), unavailable);
    still_answering(&mut probe);

    publish(&run, &contents()).unwrap();
    probe.ask_until("passwd admin", ADMIN);

    // Garbage written over the file, same size: only its timestamps say it changed.
    let size = fs::metadata(&run).unwrap().len();
    std::os::unix::fs::FileExt::write_all_at(&in_place(), &vec![b'x'; size as usize], 0).unwrap();
    assert_eq!(fs::metadata(&run).unwrap().len(), size);
    probe.ask_until("passwd admin", &unavailable);
    still_answering(&mut probe);

    publish(&run, &contents()).unwrap();
    probe.ask_until("passwd admin", ADMIN);

    // What `cp shorter.cache /run/jitd/nss.cache` does: truncate, then write a valid, shorter file
    // into the same inode.
    let mut shorter = contents();
    shorter.generation = 2;
    shorter.users.retain(|u| u.name != "verbose");
    shorter.users[0].gecos = "Admin, copied".into();
    let bytes = encode(&shorter);
    assert!(bytes.len() < size as usize);
    let mut f = in_place();
    f.set_len(0).unwrap();
    f.write_all(&bytes).unwrap();
    drop(f);
    probe.ask_until(
        "passwd admin",
        "admin:x:60001:60001:Admin, copied:/home/admin:/bin/bash",
    );
    assert_eq!(probe.ask("passwd verbose"), "notfound");
    assert_eq!(probe.ask("passwd nosuchuser"), "notfound");
    still_answering(&mut probe);

    probe.finish();
}

/// glibc runs fork handlers, not the module's lock holder, in a child: a child forked while
/// another thread is inside a lookup must still be able to look up (not inherit a held lock).
/// The probe forks many times under a thread that looks up without pause; each child gets a
/// generous bound (see the probe) and must exit 0.
#[test]
fn a_child_forked_during_another_threads_lookup_can_look_up() {
    let sandbox = Sandbox::new(Setup::Published);
    // jit first, so the other thread spends most of its time inside this module.
    fs::write(
        sandbox.path().join("etc/nsswitch.conf"),
        "passwd: jit files\ngroup: jit files\nshadow: files jit\n",
    )
    .unwrap();
    let mut probe = Probe::start(&sandbox);
    assert_eq!(probe.ask("passwd admin"), ADMIN);
    assert_eq!(probe.ask("fork 2000 admin"), "forked 2000");
    probe.finish();
}
