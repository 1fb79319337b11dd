//! Harness for the host side: the real `jitd` (joined to a real `jit-server` with a `World`'s join
//! token), `pamtester` driving the real `libpam_jit.so` through real libpam, and commands under
//! real glibc NSS with `libnss_jit.so.2`, each in a private mount namespace (`jit_sandbox`) where
//! this host's pam.d is /etc/pam.d and its nsswitch.conf, passwd, group and shadow are /etc's.
//! jitd too reads this host's passwd and group as /etc's.
//!
//! Every path lives in one temp dir per host (config, host key, CA, run dir with the PAM socket
//! and the NSS cache, state dir, pam.d, nss files), so tests run in parallel and never touch the
//! host's /etc. The one thing created outside it is the empty mount point `/run/jitd`.
//!
//! Needs root (and fails without it) and (Debian) pamtester, libpam-modules, util-linux
//! (unshare), python3.
//! Build first: `cargo build --workspace` (the binaries and both modules are found in the
//! target dir next to the test executable).

use std::io::{Read, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use jit_sandbox::{Namespace, require_root};

use crate::{Jitctl, Person, World, bin, wait_for};

/// The service every test stack is installed as (unless a test asks for another, like sshd).
pub const SERVICE: &str = "jit-test";
/// jitd's default prompt.
pub const PROMPT: &str = "Verification code: ";
/// Generous bound for readiness and background delivery; never a timed assertion.
pub const PATIENCE: Duration = Duration::from_secs(60);

const NSSWITCH: &str = "passwd: files jit\ngroup: files jit\nshadow: files jit\n";
const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
                      alice:x:1000:1000:Alice:/home/alice:/bin/bash\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\nalice:x:1000:\n";
const SHADOW: &str = "root:*:19000:0:99999:7:::\nalice:!:19000:0:99999:7:::\n";

/// A cdylib of the workspace, as cargo built it (see [`jit_sandbox::built`]).
pub fn cdylib(name: &str) -> PathBuf {
    jit_sandbox::built(name)
}

/// One joined host: jitd's files, and jitd itself while running.
pub struct Host {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Host {
    /// `jitd join` with the world's token, then `jitd run`, waiting for READY=1.
    pub fn start(world: &World) -> Host {
        let host = Host::joined(&world.join_token);
        let mut host = host;
        host.run();
        host
    }

    /// Writes the config and runs `jitd join --token`; jitd is not started.
    pub fn joined(token: &str) -> Host {
        let host = Host::unjoined();
        let out = host.jitd(&["join", "--token", token]);
        assert!(
            out.status.success(),
            "jitd join failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        host
    }

    /// Only the directory and the config file.
    pub fn unjoined() -> Host {
        let dir = tempfile::Builder::new()
            .prefix("jitd-host-")
            .tempdir()
            .expect("tempdir");
        let p = dir.path();
        for sub in ["etc-jit", "run", "state", "pam.d", "nss/etc", "nss/lib"] {
            std::fs::create_dir_all(p.join(sub)).expect("mkdir");
        }
        let config = format!(
            "host_key = \"{p}/etc-jit/host.key\"\n\
             ca = \"{p}/etc-jit/ca.pem\"\n\
             socket = \"{p}/run/pam.sock\"\n\
             nss_cache = \"{p}/run/nss.cache\"\n\
             state_dir = \"{p}/state\"\n\
             joined_marker = \"{p}/etc-jit/joined\"\n\
             refresh_interval = \"1s\"\n\
             server_timeout = \"5s\"\n",
            p = p.display()
        );
        std::fs::write(p.join("jitd.toml"), config).expect("write jitd.toml");
        // Anything not configured explicitly is refused, so a wrong service name cannot pass.
        std::fs::write(
            p.join("pam.d/other"),
            "auth required pam_deny.so\naccount required pam_deny.so\n\
             session required pam_deny.so\npassword required pam_deny.so\n",
        )
        .expect("pam.d/other");
        for (f, text) in [
            ("nsswitch.conf", NSSWITCH),
            ("passwd", PASSWD),
            ("group", GROUP),
            ("shadow", SHADOW),
        ] {
            std::fs::write(p.join("nss/etc").join(f), text).expect("nss file");
        }
        std::fs::copy(cdylib("libnss_jit.so"), p.join("nss/lib/libnss_jit.so.2"))
            .expect("copy nss module");
        let host = Host { dir, child: None };
        host.service(SERVICE, "pam_deny.so");
        host
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Sets `key = value` (value as TOML) in jitd.toml, replacing the line that sets it; takes
    /// effect at the next start.
    pub fn set_config(&self, key: &str, value: &str) {
        let text = std::fs::read_to_string(self.config()).expect("read jitd.toml");
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with(&format!("{key} =")))
            .map(str::to_owned)
            .collect();
        // Top-level keys go before any [table].
        let at = lines
            .iter()
            .position(|l| l.starts_with('['))
            .unwrap_or(lines.len());
        lines.insert(at, format!("{key} = {value}"));
        std::fs::write(self.config(), lines.join("\n") + "\n").expect("write jitd.toml");
    }

    pub fn config(&self) -> PathBuf {
        self.path().join("jitd.toml")
    }

    pub fn socket(&self) -> PathBuf {
        self.path().join("run/pam.sock")
    }

    pub fn nss_cache(&self) -> PathBuf {
        self.path().join("run/nss.cache")
    }

    pub fn state_cache(&self) -> PathBuf {
        self.path().join("state/nss.cache")
    }

    pub fn audit_queue(&self) -> PathBuf {
        self.path().join("state/audit-queue.jsonl")
    }

    /// The ssh keys file jitd keeps for `jitd authorized-keys` (empty if there is none).
    pub fn ssh_keys(&self) -> String {
        std::fs::read_to_string(self.path().join("state/ssh-keys.json")).unwrap_or_default()
    }

    /// The marker `jitd join` and `jitd run` write for pam_jit.
    pub fn joined_marker(&self) -> PathBuf {
        self.path().join("etc-jit/joined")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("jitd.log")).unwrap_or_default()
    }

    /// Runs `jitd ARGS --config <this host's config>` to completion.
    pub fn jitd(&self, args: &[&str]) -> Output {
        Command::new(bin("jitd"))
            .args(args)
            .arg("--config")
            .arg(self.config())
            .stdin(Stdio::null())
            .output()
            .expect("run jitd")
    }

    /// Starts `jitd run` and waits for its READY=1 (sent to a NOTIFY_SOCKET of ours).
    pub fn run(&mut self) {
        self.spawn(None);
    }

    /// Like [`Host::run`], with jitd's syslog going to the datagram socket `log` (bound by the
    /// caller): jitd runs in a private mount namespace whose /dev is a tmpfs holding only null,
    /// zero, random, urandom and, at /dev/log, `log`. The machine's /dev is not touched.
    pub fn run_with_syslog(&mut self, log: &Path) {
        self.spawn(Some(log));
    }

    /// jitd's namespace: this host's passwd and group as /etc's (jitd reads them to find the
    /// uids of guarded names), and optionally a private /dev whose /dev/log is `syslog`.
    fn jitd_namespace(&self, syslog: Option<&Path>) -> Namespace {
        let etc = self.path().join("nss/etc");
        let mut ns = Namespace::new()
            .bind(etc.join("passwd"), "/etc/passwd")
            .bind(etc.join("group"), "/etc/group");
        if let Some(log) = syslog {
            let old_dev = self.path().join("old-dev");
            std::fs::create_dir_all(&old_dev).expect("mkdir old-dev");
            ns = ns.bind("/dev", &old_dev).tmpfs("/dev", "0755");
            for d in ["null", "zero", "random", "urandom"] {
                let dev = Path::new("/dev").join(d);
                ns = ns.touch(&dev).bind(old_dev.join(d), &dev);
            }
            ns = ns.touch("/dev/log").bind(log, "/dev/log");
        }
        ns
    }

    fn spawn(&mut self, syslog: Option<&Path>) {
        assert!(self.child.is_none(), "jitd is already running");
        require_root("jitd runs in a private mount namespace");
        let notify_path = self.path().join("notify.sock");
        let _ = std::fs::remove_file(&notify_path);
        let notify = UnixDatagram::bind(&notify_path).expect("bind notify socket");
        notify
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path().join("jitd.log"))
            .expect("jitd.log");
        let jitd = bin("jitd");
        let config = self.config();
        let argv = [
            jitd.as_os_str(),
            "run".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
        ];
        let mut child = self
            .jitd_namespace(syslog)
            .command(&argv)
            .env("NOTIFY_SOCKET", &notify_path)
            .env("JITD_LOG", "info,jitd=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn jitd run");
        let mut buf = [0u8; 256];
        let mut ready = false;
        wait_for("jitd READY=1", PATIENCE, || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("jitd exited ({status}) before READY=1:\n{}", self.log());
            }
            if let Ok(n) = notify.recv(&mut buf) {
                ready |= String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .any(|l| l == "READY=1");
            }
            ready
        });
        assert!(self.socket().exists(), "READY=1 before the socket exists");
        self.child = Some(child);
    }

    /// SIGKILL, as if jitd crashed.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, and the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("jitd is not running");
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
        c.wait().expect("wait jitd")
    }

    /// Installs service `name` for pamtester: pam_jit first in every stage (as recommended in
    /// docs/pam_jit_module.md), `next_auth` decides whenever pam_jit ignores the name, and
    /// pam_exec prints the session's environment.
    pub fn service(&self, name: &str, next_auth: &str) {
        let m = self.pam_jit();
        let text = format!(
            "auth [success=done ignore=ignore default=die] {m}\n\
             auth required {next_auth}\n\
             account [success=ok ignore=ignore default=die] {m}\n\
             account required pam_permit.so\n\
             session [success=ok ignore=ignore default=die] {m}\n\
             session optional pam_exec.so stdout /usr/bin/env\n\
             password [success=done ignore=ignore default=die] {m}\n\
             password required pam_permit.so\n"
        );
        std::fs::write(self.path().join("pam.d").join(name), text).expect("write service");
    }

    /// The built `libpam_jit.so` with this host's socket, cache and joined marker: what goes after
    /// the control on a pam.d line.
    pub fn pam_jit(&self) -> String {
        format!(
            "{} socket={} cache={} joined={}",
            cdylib("libpam_jit.so").display(),
            self.socket().display(),
            self.nss_cache().display(),
            self.joined_marker().display()
        )
    }

    /// `pamtester SERVICE USER OPS…` (see [`Host::pam_command`]), with `stdin` as the person's typing.
    pub fn pamtester(&self, service: &str, user: &str, ops: &[&str], stdin: &str) -> Run {
        let mut child = self
            .pam_command(service, user, ops)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pamtester");
        // Closing stdin after the answers makes an unexpected extra prompt fail, not hang.
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes());
        Run(child.wait_with_output().expect("pamtester output"))
    }

    /// `pamtester SERVICE USER OPS…` under real libpam with this host's pam.d bind-mounted on
    /// /etc/pam.d in a private mount namespace. (pam_wrapper is not used here: concurrent
    /// processes can pick the same /tmp/pam.X directory and overwrite each other's stacks.)
    pub fn pam_command(&self, service: &str, user: &str, ops: &[&str]) -> Command {
        let mut cmd = self
            .namespace()
            .bind(self.path().join("pam.d"), "/etc/pam.d")
            .command(&jit_sandbox::pamtester_argv(service, user, ops));
        cmd.env("LD_LIBRARY_PATH", self.path().join("nss/lib"));
        cmd
    }

    /// The NSS sandbox of this host: its run dir on /run/jitd, its state dir on /var/lib/jitd,
    /// its nsswitch.conf (`files jit`), passwd, group and shadow on /etc.
    pub fn namespace(&self) -> Namespace {
        require_root("it mounts in a private mount namespace");
        let p = self.path();
        Namespace::new().nss(&p.join("run"), &p.join("state"), &p.join("nss/etc"))
    }

    /// Appends `line` to this host's /etc/`file` (passwd, group, shadow, nsswitch.conf), as an
    /// admin would edit it. jitd and every command of this host's namespaces see it.
    pub fn append_etc(&self, file: &str, line: &str) {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.path().join("nss/etc").join(file))
            .expect("etc file");
        writeln!(f, "{line}").expect("append");
    }

    /// The whole login: auth, account, session open and close, answering `code`.
    pub fn login(&self, user: &str, code: &str) -> Run {
        self.pamtester(
            SERVICE,
            user,
            &["authenticate", "acct_mgmt", "open_session", "close_session"],
            &format!("{code}\n"),
        )
    }

    /// `argv` under real glibc NSS: this host's run dir on /run/jitd, its state dir on
    /// /var/lib/jitd, nsswitch `files jit` with small passwd/group/shadow files, and the module
    /// on LD_LIBRARY_PATH, in a private mount namespace.
    pub fn nss(&self, argv: &[&str]) -> Output {
        self.namespace()
            .command(argv)
            .env("LD_LIBRARY_PATH", self.path().join("nss/lib"))
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .output()
            .expect("unshare")
    }

    /// stdout of a successful NSS command, trimmed.
    pub fn nss_ok(&self, argv: &[&str]) -> String {
        let out = self.nss(argv);
        assert!(
            out.status.success(),
            "{argv:?} failed ({:?}): {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
    }
}

pub use jit_sandbox::Run;

/// True if the cache file at `path` guards `name` (fails the test if it cannot be read).
#[track_caller]
pub fn guards(path: &Path, name: &str) -> bool {
    let bytes = jit_nss_cache::read_file(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    jit_nss_cache::CacheView::parse(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .is_guarded(name.as_bytes())
}

/// Makes the host's own `root` a shared account of group ops on web*, and waits until `host`'s
/// jitd guards `name` (root, or another name with root's uid).
pub fn share_root(w: &World, host: &Host, name: &str) {
    w.admin.ok(&[
        "account",
        "add",
        "root",
        "--existing",
        "--group",
        "ops",
        "--hosts",
        "web*",
    ]);
    wait_for(&format!("jitd to guard {name}"), PATIENCE, || {
        host.nss_cache().exists() && guards(&host.nss_cache(), name)
    });
}

/// A code that is *not* valid for `p` now (none of the steps within the skew).
pub fn wrong_code(p: &Person) -> String {
    let valid: Vec<String> = (-2..=2).map(|s| p.code_in(s)).collect();
    (0..)
        .map(|n: u32| format!("{:06}", n * 111_111 % 1_000_000 + n / 10))
        .find(|c| !valid.contains(c))
        .unwrap_or_default()
}

/// Asserts that `code` appears nowhere in `log` (jitd's or the server's stderr), apart from the
/// microseconds of a line's leading timestamp, which could match six digits by chance.
#[track_caller]
pub fn assert_code_not_logged(log: &str, code: &str, whose: &str) {
    for line in log.lines() {
        let body = match line.split_once(' ') {
            Some((first, rest)) if first.ends_with('Z') && first.contains('T') => rest,
            _ => line,
        };
        assert!(!body.contains(code), "a code reached {whose}'s log: {line}");
    }
}

/// `jitctl reserve ACCOUNT --host web01` as `p`.
pub fn reserve(p: &Person, account: &str) {
    p.jitctl.ok(&["reserve", account, "--host", "web01"]);
}

/// The audit events for `account`, oldest first.
pub fn audit(admin: &Jitctl, account: &str) -> Vec<Value> {
    let v = admin.json(&["audit", "--account", account]);
    v["events"].as_array().cloned().unwrap_or_default()
}

/// True if some audit event for `account` has this action and result (and person, if given).
pub fn has_event(
    admin: &Jitctl,
    account: &str,
    action: &str,
    result: &str,
    person: Option<&str>,
) -> bool {
    audit(admin, account).iter().any(|e| {
        e["action"] == action && e["result"] == result && person.is_none_or(|p| e["person"] == p)
    })
}

/// Waits until the audit log has that event (host events arrive through jitd's queue).
pub fn wait_for_event(
    admin: &Jitctl,
    account: &str,
    action: &str,
    result: &str,
    person: Option<&str>,
) {
    wait_for(
        &format!("audit event {action} {result} for {account}"),
        PATIENCE,
        || has_event(admin, account, action, result, person),
    );
}

/// Sends `bytes` on a fresh connection to `socket` (optionally closing our sending side), and
/// returns jitd's reply (if a whole frame came) and whether jitd then closed the connection.
pub fn raw_exchange(socket: &Path, bytes: &[u8], shutdown_write: bool) -> (Option<Value>, bool) {
    let mut s = UnixStream::connect(socket).expect("connect to jitd");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    s.write_all(bytes).expect("write");
    if shutdown_write {
        s.shutdown(std::net::Shutdown::Write).expect("shutdown");
    }
    let reply = jit_proto::frame::read_payload(&mut s)
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok());
    let mut rest = Vec::new();
    let closed = matches!(s.read_to_end(&mut rest), Ok(0));
    (reply, closed)
}

/// A length-prefixed frame around `payload`.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

/// Says hello to jitd's socket as `uid` (with that uid's gid and no supplementary groups), and
/// returns jitd's reply. Opens up the socket's directories and mode first, so that the kernel's
/// SO_PEERCRED check in jitd, not the file mode, is what is tested.
pub fn hello_as(host: &Host, uid: u32) -> Value {
    let run = host.path().join("run");
    let reply = jit_sandbox::hello_as(
        &host.socket(),
        &[host.path(), &run],
        uid,
        jit_proto::pam::PROTOCOL_VERSION,
    );
    serde_json::from_str(&reply).unwrap_or_else(|e| panic!("reply {reply:?}: {e}"))
}
