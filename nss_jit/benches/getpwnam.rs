//! `getpwnam_r` through real glibc, per call: glibc's `files` alone against `files jit` and
//! `jit files`, for a name in /etc/passwd, a name only jit knows, and a name nobody knows.
//!
//! Run as root: `cargo bench -p nss_jit --bench getpwnam`. The parent sets up a temp dir (a
//! 30-line /etc/passwd, one nsswitch.conf per order, a cache published with jitd's writer, and
//! the module as libnss_jit.so.2), then re-runs itself once per order under `unshare -m` with
//! those files bind-mounted, so the host's /etc is never touched and every order gets a fresh
//! process (glibc loads nsswitch.conf and the module once per process). Each child times batches
//! of calls after a warm-up and reports the median batch; the parent prints a Markdown table.
//!
//! `--keep` leaves the temp dir behind (for strace or perf by hand). `--callgrind` also counts instructions per call inside `_nss_files_getpwnam_r` and
//! `_nss_jit_getpwnam_r` with valgrind, which does not depend on the machine's load.

use std::ffi::CString;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use jit_nss_cache::{CacheContents, CacheGroup, CacheGuarded, CacheUser, publish};

/// The orders compared, as (label, nsswitch.conf passwd line).
const ORDERS: [(&str, &str); 3] = [
    ("files", "files"),
    ("files jit", "files jit"),
    ("jit files", "jit files"),
];

/// (label, name): a human account near the end of /etc/passwd, an account only in the cache,
/// and a name in neither.
const NAMES: [(&str, &str); 3] = [
    ("files hit (`alice`)", "alice"),
    ("jit hit (`admin`)", "admin"),
    ("miss (`nosuchuser`)", "nosuchuser"),
];

/// A typical Debian /etc/passwd: system accounts first, people last.
fn passwd_file() -> String {
    let system = [
        "root:x:0:0:root:/root:/bin/bash",
        "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
        "bin:x:2:2:bin:/bin:/usr/sbin/nologin",
        "sys:x:3:3:sys:/dev:/usr/sbin/nologin",
        "sync:x:4:65534:sync:/bin:/bin/sync",
        "games:x:5:60:games:/usr/games:/usr/sbin/nologin",
        "man:x:6:12:man:/var/cache/man:/usr/sbin/nologin",
        "lp:x:7:7:lp:/var/spool/lpd:/usr/sbin/nologin",
        "mail:x:8:8:mail:/var/mail:/usr/sbin/nologin",
        "news:x:9:9:news:/var/spool/news:/usr/sbin/nologin",
        "uucp:x:10:10:uucp:/var/spool/uucp:/usr/sbin/nologin",
        "proxy:x:13:13:proxy:/bin:/usr/sbin/nologin",
        "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin",
        "backup:x:34:34:backup:/var/backups:/usr/sbin/nologin",
        "list:x:38:38:Mailing List Manager:/var/list:/usr/sbin/nologin",
        "irc:x:39:39:ircd:/run/ircd:/usr/sbin/nologin",
        "_apt:x:42:65534::/nonexistent:/usr/sbin/nologin",
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
        "systemd-network:x:998:998:systemd Network Management:/:/usr/sbin/nologin",
        "systemd-timesync:x:997:997:systemd Time Synchronization:/:/usr/sbin/nologin",
        "messagebus:x:100:107::/nonexistent:/usr/sbin/nologin",
        "sshd:x:101:65534::/run/sshd:/usr/sbin/nologin",
        "postfix:x:102:110::/var/spool/postfix:/usr/sbin/nologin",
        "ntp:x:103:111::/nonexistent:/usr/sbin/nologin",
        "tss:x:104:112:TPM software stack,,,:/var/lib/tpm:/bin/false",
    ];
    let people = ["bob", "carol", "alice", "dave", "erin"];
    let mut s = String::new();
    for line in system {
        s.push_str(line);
        s.push('\n');
    }
    for (i, p) in people.iter().enumerate() {
        let _ = writeln!(
            s,
            "{p}:x:{}:{}:{p},,,:/home/{p}:/bin/bash",
            1000 + i,
            1000 + i
        );
    }
    s
}

fn cache() -> CacheContents {
    let names = [
        "admin",
        "deploy",
        "dbadmin",
        "backup-op",
        "release",
        "oncall",
        "audit",
        "break-glass",
    ];
    let users: Vec<CacheUser> = names
        .iter()
        .zip(60001..)
        .map(|(n, id)| CacheUser {
            name: n.to_string(),
            uid: id,
            gid: id,
            gecos: format!("Shared {n} account"),
            home: format!("/home/{n}"),
            shell: "/bin/bash".into(),
        })
        .collect();
    CacheContents {
        generation: 1,
        groups: users
            .iter()
            .map(|u| CacheGroup {
                name: u.name.clone(),
                gid: u.gid,
                members: vec![],
            })
            .collect(),
        guarded: users
            .iter()
            .map(|u| CacheGuarded::account(&u.name, Some(u.uid)))
            .chain([CacheGuarded::account("root", Some(0))])
            .collect(),
        users,
    }
}

/// The module built with this bench: `cargo bench` leaves the fresh one in `deps/`.
fn module_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("deps dir");
    let candidates = [
        deps.join("libnss_jit.so"),
        deps.parent().expect("profile dir").join("libnss_jit.so"),
    ];
    match candidates.iter().find(|p| p.is_file()) {
        Some(p) => p.clone(),
        None => panic!(
            "libnss_jit.so not found (looked for {candidates:?}); run via `cargo bench -p nss_jit`"
        ),
    }
}

fn prepare(dir: &Path) {
    for sub in ["run", "state", "etc", "lib"] {
        fs::create_dir_all(dir.join(sub)).expect("mkdir");
    }
    fs::write(dir.join("etc/passwd"), passwd_file()).expect("passwd");
    for (i, (_, line)) in ORDERS.iter().enumerate() {
        fs::write(
            dir.join(format!("etc/nsswitch-{i}.conf")),
            format!("passwd: {line}\ngroup: files\n"),
        )
        .expect("nsswitch");
    }
    fs::copy(module_path(), dir.join("lib/libnss_jit.so.2")).expect("copy module");
    publish(&dir.join("run/nss.cache"), &cache()).expect("publish");
    fs::create_dir_all("/run/jitd").expect("mkdir /run/jitd (mount point)");
}

/// `argv` in a mount namespace where /etc/passwd, /etc/nsswitch.conf (for `order`), /run/jitd and
/// /var/lib/jitd come from `dir`.
fn in_namespace(dir: &Path, order: usize, argv: &[&str]) -> Command {
    let script = r#"
        mount --bind "$SANDBOX/run" /run/jitd
        mount -t tmpfs tmpfs /var/lib
        mkdir /var/lib/jitd
        mount --bind "$SANDBOX/state" /var/lib/jitd
        mount --bind "$SANDBOX/etc/passwd" /etc/passwd
        mount --bind "$SANDBOX/etc/nsswitch-$ORDER.conf" /etc/nsswitch.conf
        exec "$@"
    "#;
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "sh", "-ec", script, "sh"])
        .args(argv)
        .env("SANDBOX", dir)
        .env("ORDER", order.to_string())
        .env("LD_LIBRARY_PATH", dir.join("lib"));
    cmd
}

/// One `getpwnam_r`; true if found.
fn lookup(name: &CString, buf: &mut [libc::c_char]) -> bool {
    // SAFETY: plain C struct and buffer owned here; glibc fills them.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwnam_r(
            name.as_ptr(),
            &mut pw,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        rc == 0 && !result.is_null()
    }
}

/// Median ns per call of `call` over 15 batches of about 20 ms each.
fn measure(mut call: impl FnMut() -> bool) -> (f64, bool) {
    let found = call();
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < Duration::from_millis(100) {
        std::hint::black_box(call());
        calls += 1;
    }
    let per_batch = (calls / 5).max(1);
    let mut samples: Vec<f64> = (0..15)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_batch {
                std::hint::black_box(call());
            }
            t.elapsed().as_nanos() as f64 / per_batch as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    (samples[samples.len() / 2], found)
}

/// A module's `_nss_*_getpwnam_r`.
type ModuleFn = unsafe extern "C" fn(
    *const libc::c_char,
    *mut libc::passwd,
    *mut libc::c_char,
    libc::size_t,
    *mut libc::c_int,
) -> libc::c_int;

/// Finds `symbol` in `lib` (null: anything already loaded, which is where glibc 2.34+ keeps its
/// files module, inside libc.so.6).
fn module_fn(lib: Option<&str>, symbol: &str) -> ModuleFn {
    let symbol = CString::new(symbol).expect("symbol");
    // SAFETY: dlopen/dlsym with valid C strings; the symbol has the NSS module signature.
    unsafe {
        let handle = match lib {
            Some(lib) => {
                let lib = CString::new(lib).expect("lib");
                let h = libc::dlopen(lib.as_ptr(), libc::RTLD_NOW);
                assert!(!h.is_null(), "dlopen {lib:?} failed");
                h
            }
            None => libc::RTLD_DEFAULT,
        };
        let f = libc::dlsym(handle, symbol.as_ptr());
        assert!(!f.is_null(), "{symbol:?} not found");
        std::mem::transmute::<*mut libc::c_void, ModuleFn>(f)
    }
}

/// One direct call of a module function; true if it answered NSS_STATUS_SUCCESS.
fn call_module(f: ModuleFn, name: &CString, buf: &mut [libc::c_char]) -> bool {
    // SAFETY: the NSS module calling convention, with our own struct, buffer and errno slot.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut errno = 0;
        f(
            name.as_ptr(),
            &mut pw,
            buf.as_mut_ptr(),
            buf.len(),
            &mut errno,
        ) == 1
    }
}

/// In the namespace: time every name through getpwnam_r, one line each: `ns found`.
fn child_measure() {
    let mut buf = vec![0 as libc::c_char; 4096];
    for (_, name) in NAMES {
        let name = CString::new(name).expect("name");
        let (ns, found) = measure(|| lookup(&name, &mut buf));
        println!("{ns:.1} {found}");
    }
}

/// In the namespace: time each module's function called directly, without glibc's dispatch.
/// Lines: files hit, files miss, jit hit, jit miss.
fn child_direct() {
    let files = module_fn(None, "_nss_files_getpwnam_r");
    let jit = module_fn(Some("libnss_jit.so.2"), "_nss_jit_getpwnam_r");
    let mut buf = vec![0 as libc::c_char; 4096];
    for (f, name) in [
        (files, "alice"),
        (files, "nosuchuser"),
        (jit, "admin"),
        (jit, "nosuchuser"),
    ] {
        let name = CString::new(name).expect("name");
        let (ns, found) = measure(|| call_module(f, &name, &mut buf));
        println!("{ns:.1} {found}");
    }
}

/// In the namespace under callgrind: `calls` lookups of `name`.
fn child_loop(name: &str, calls: u64) {
    let name = CString::new(name).expect("name");
    let mut buf = vec![0 as libc::c_char; 4096];
    for _ in 0..calls {
        std::hint::black_box(lookup(&name, &mut buf));
    }
}

fn parent(callgrind: bool, keep: bool) {
    assert!(
        unsafe { libc::geteuid() } == 0,
        "run as root: the benchmark uses `unshare -m` and bind mounts"
    );
    let dir = std::env::temp_dir().join(format!("nss-jit-bench-{}", std::process::id()));
    prepare(&dir);
    let exe = std::env::current_exe().expect("current_exe");
    let exe = exe.to_str().expect("utf-8 path");

    // Rounds alternate the orders, so a burst of load elsewhere hits one round, not one order;
    // the lowest median of the rounds is kept.
    const ROUNDS: usize = 3;
    let mut results: Vec<Vec<(f64, bool)>> =
        vec![vec![(f64::INFINITY, false); NAMES.len()]; ORDERS.len()];
    let mut direct = vec![(f64::INFINITY, false); 4];
    let keep_best = |best: &mut [(f64, bool)], stdout: &[u8]| {
        for (best, line) in best.iter_mut().zip(String::from_utf8_lossy(stdout).lines()) {
            let (ns, found) = line.split_once(' ').expect("child line");
            let ns: f64 = ns.parse().expect("ns");
            if ns < best.0 {
                *best = (ns, found == "true");
            }
        }
    };
    for _ in 0..ROUNDS {
        for (i, (label, _)) in ORDERS.iter().enumerate() {
            let out = in_namespace(&dir, i, &[exe, "--child-measure"])
                .output()
                .expect("run child");
            assert!(
                out.status.success(),
                "{label}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            keep_best(&mut results[i], &out.stdout);
        }
        let out = in_namespace(&dir, 1, &[exe, "--child-direct"])
            .output()
            .expect("run child");
        assert!(
            out.status.success(),
            "direct: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        keep_best(&mut direct, &out.stdout);
    }

    println!("\ngetpwnam_r, ns per call: lowest of {ROUNDS} medians (found / not found)\n");
    println!(
        "| name | {} |",
        ORDERS.map(|(l, _)| format!("`passwd: {l}`")).join(" | ")
    );
    println!("|---|{}", "---:|".repeat(ORDERS.len()));
    for (n, (label, _)) in NAMES.iter().enumerate() {
        let cells: Vec<String> = results
            .iter()
            .map(|rows| {
                let (ns, found) = rows[n];
                format!("{ns:.0} ns ({})", if found { "found" } else { "not found" })
            })
            .collect();
        println!("| {label} | {} |", cells.join(" | "));
    }
    let found = |(ns, found): (f64, bool)| {
        format!("{ns:.0} ns ({})", if found { "found" } else { "not found" })
    };
    println!("\none module function called directly (no glibc dispatch), ns per call\n");
    println!("| | `_nss_files_getpwnam_r` | `_nss_jit_getpwnam_r` |");
    println!("|---|---:|---:|");
    println!(
        "| hit (`alice` / `admin`) | {} | {} |",
        found(direct[0]),
        found(direct[2])
    );
    println!(
        "| miss (`nosuchuser`) | {} | {} |",
        found(direct[1]),
        found(direct[3])
    );
    println!();
    if callgrind {
        println!(
            "\ninstructions per call (callgrind; user space only, so syscalls count as one)\n"
        );
        let cases = [
            (
                0,
                "alice",
                "_nss_files_getpwnam_r",
                "files hit (`alice`), `passwd: files`",
            ),
            (
                0,
                "nosuchuser",
                "_nss_files_getpwnam_r",
                "files miss, `passwd: files`",
            ),
            (
                1,
                "admin",
                "_nss_jit_getpwnam_r",
                "jit hit (`admin`), `passwd: files jit`",
            ),
            (
                1,
                "nosuchuser",
                "_nss_jit_getpwnam_r",
                "jit miss, `passwd: files jit`",
            ),
            (
                0,
                "alice",
                "getpwnam_r",
                "files hit (`alice`), `passwd: files`",
            ),
            (
                2,
                "admin",
                "getpwnam_r",
                "jit hit (`admin`), `passwd: jit files`",
            ),
            (0, "nosuchuser", "getpwnam_r", "miss, `passwd: files`"),
            (1, "nosuchuser", "getpwnam_r", "miss, `passwd: files jit`"),
        ];
        for (order, name, func, label) in cases {
            let per_call = count_instructions(&dir, order, exe, name, func);
            println!("- {label}: {per_call} in `{func}`");
        }
    }
    if keep {
        println!("\nkept {} for inspection", dir.display());
    } else {
        let _ = fs::remove_dir_all(&dir);
    }
}

/// Instructions per call inside `func` (inclusive): lookups are run under callgrind twice, N and
/// 2N times, and the difference divided by N, so that one-time costs (loading the module,
/// reading nsswitch.conf, copying the cache) cancel out.
fn count_instructions(dir: &Path, order: usize, exe: &str, name: &str, func: &str) -> u64 {
    const CALLS: u64 = 1000;
    let run = |calls: u64| -> u64 {
        let out_file = dir.join(format!("callgrind-{order}-{name}-{func}-{calls}.out"));
        let out_arg = format!("--callgrind-out-file={}", out_file.display());
        // glibc's own symbols are versioned (getpwnam_r@@GLIBC_2.2.5).
        let toggle = format!("--toggle-collect={func}*");
        let calls = calls.to_string();
        let argv = [
            "valgrind",
            "--tool=callgrind",
            "--quiet",
            &out_arg,
            &toggle,
            exe,
            "--child-loop",
            name,
            &calls,
        ];
        let status = in_namespace(dir, order, &argv).status().expect("valgrind");
        assert!(status.success(), "valgrind failed for {name} in {func}");
        let text = fs::read_to_string(&out_file).expect("callgrind output");
        text.lines()
            .find_map(|l| {
                l.strip_prefix("summary: ")
                    .or_else(|| l.strip_prefix("totals: "))
            })
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("callgrind summary line")
    };
    let (once, twice) = (run(CALLS), run(2 * CALLS));
    twice.saturating_sub(once) / CALLS
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--child-measure") => child_measure(),
        Some("--child-direct") => child_direct(),
        Some("--child-loop") => {
            let name = args.get(2).expect("name");
            let calls = args.get(3).and_then(|c| c.parse().ok()).expect("calls");
            child_loop(name, calls);
        }
        // cargo bench passes `--bench`; anything else is ignored too.
        _ => parent(
            args.iter().any(|a| a == "--callgrind"),
            args.iter().any(|a| a == "--keep"),
        ),
    }
}
