//! Harness for the host side: the real `jitd` (joined to a real `jit-server` with a `World`'s join
//! token), `pamtester` driving the real `libpam_jit.so` through real libpam (this host's pam.d
//! bind-mounted on /etc/pam.d in a private mount namespace), and commands under
//! real glibc NSS with `libnss_jit.so.2` in a private mount namespace.
//!
//! Every path lives in one temp dir per host (config, host key, CA, run dir with the PAM socket
//! and the NSS cache, state dir, pam.d, nss files), so tests run in parallel and never touch the
//! host's /etc. The one thing created outside it is the empty mount point `/run/jitd`.
//!
//! Needs root and (Debian) pamtester, libpam-modules, util-linux (unshare), python3.
//! Build first: `cargo build --workspace` (the binaries and both modules are found in the
//! target dir next to the test executable).

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::{Jitctl, Person, World, bin, target_dir, wait_for};

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

/// A cdylib of the workspace: `target/debug/NAME` (cargo build) or `target/debug/deps/NAME`.
pub fn cdylib(name: &str) -> PathBuf {
    let t = target_dir();
    let candidates = [t.join(name), t.join("deps").join(name)];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "{name} is missing (looked for {candidates:?}): run `cargo build --workspace` first"
            )
        })
}

/// Inside `unshare -m`: a /dev with the few devices a process needs and the caller's socket as
/// /dev/log (where libc's syslog writes), then exec "$@".
const DEV_LOG_SETUP: &str = r#"
mount --bind /dev "$OLD_DEV"
mount -t tmpfs -o mode=0755 tmpfs /dev
for d in null zero random urandom; do
    touch "/dev/$d"
    mount --bind "$OLD_DEV/$d" "/dev/$d"
done
touch /dev/log
mount --bind "$LOG_SOCKET" /dev/log
exec "$@"
"#;

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

    fn spawn(&mut self, syslog: Option<&Path>) {
        assert!(self.child.is_none(), "jitd is already running");
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
        let mut cmd = match syslog {
            None => Command::new(bin("jitd")),
            Some(log) => {
                let old_dev = self.path().join("old-dev");
                std::fs::create_dir_all(&old_dev).expect("mkdir old-dev");
                let mut c = Command::new("unshare");
                c.args(["-m", "sh", "-ec", DEV_LOG_SETUP, "sh"])
                    .arg(bin("jitd"))
                    .env("OLD_DEV", &old_dev)
                    .env("LOG_SOCKET", log);
                c
            }
        };
        let mut child = cmd
            .args(["run", "--config"])
            .arg(self.config())
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
        let m = format!(
            "{} socket={} cache={}",
            cdylib("libpam_jit.so").display(),
            self.socket().display(),
            self.nss_cache().display()
        );
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
        assert!(
            Path::new("/usr/bin/pamtester").exists(),
            "pamtester missing: apt-get install pamtester"
        );
        let mut cmd = Command::new("unshare");
        cmd.args([
            "-m",
            "sh",
            "-ec",
            "mount --bind \"$PAMD\" /etc/pam.d; exec pamtester \"$@\"",
            "sh",
        ])
        .args(["-I", "rhost=192.0.2.10", "-I", "tty=ssh", service, user])
        .args(ops)
        .env("PAMD", self.path().join("pam.d"));
        cmd
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
        assert!(
            // SAFETY: geteuid has no preconditions.
            unsafe { libc::geteuid() } == 0,
            "NSS tests need root: they bind-mount in a private mount namespace"
        );
        std::fs::create_dir_all("/run/jitd").expect("mount point /run/jitd");
        let script = r#"
            mount --bind "$HOSTDIR/run" /run/jitd
            mount -t tmpfs tmpfs /var/lib
            mkdir /var/lib/jitd
            mount --bind "$HOSTDIR/state" /var/lib/jitd
            for f in nsswitch.conf passwd group shadow; do
                mount --bind "$HOSTDIR/nss/etc/$f" "/etc/$f"
            done
            exec "$@"
        "#;
        Command::new("unshare")
            .args(["-m", "sh", "-ec", script, "sh"])
            .args(argv)
            .env("HOSTDIR", self.path())
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

/// A pamtester run.
pub struct Run(pub Output);

impl Run {
    pub fn text(&self) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&self.0.stdout),
            String::from_utf8_lossy(&self.0.stderr)
        )
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert_eq!(
            self.0.status.code(),
            Some(0),
            "pamtester failed:\n{}",
            self.text()
        );
        self
    }

    #[track_caller]
    pub fn assert_failed(&self) -> &Self {
        assert_eq!(
            self.0.status.code(),
            Some(1),
            "pamtester should have failed cleanly:\n{}",
            self.text()
        );
        self
    }

    #[track_caller]
    pub fn assert_shows(&self, needle: &str) -> &Self {
        assert!(
            self.text().contains(needle),
            "output lacks {needle:?}:\n{}",
            self.text()
        );
        self
    }

    #[track_caller]
    pub fn assert_hides(&self, needle: &str) -> &Self {
        assert!(
            !self.text().contains(needle),
            "output shows {needle:?}:\n{}",
            self.text()
        );
        self
    }
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

const HELLO_CLIENT: &str = r#"
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(60)
s.connect(sys.argv[1])
msg = json.dumps({"type": "hello", "version": 1}).encode()
try:
    s.sendall(struct.pack(">I", len(msg)) + msg)
except (BrokenPipeError, ConnectionResetError):
    pass  # jitd may refuse and close before reading anything; its reply is still queued
def read(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            break
        b += c
    return b
(n,) = struct.unpack(">I", read(4))
print(read(n).decode())
"#;

/// Says hello to jitd's socket as `uid` (with that uid's gid and no supplementary groups), and
/// returns jitd's reply. Opens up the socket's directories and mode first, so that the kernel's
/// SO_PEERCRED check in jitd, not the file mode, is what is tested.
pub fn hello_as(host: &Host, uid: u32) -> Value {
    for dir in [host.path().to_owned(), host.path().join("run")] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    }
    std::fs::set_permissions(host.socket(), std::fs::Permissions::from_mode(0o666))
        .expect("chmod socket");
    let out = Command::new("python3")
        .args(["-c", HELLO_CLIENT])
        .arg(host.socket())
        .uid(uid)
        .gid(uid)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client as uid {uid} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("reply {stdout:?}: {e}"))
}
