//! Private mount namespaces for tests: real libpam reading a test `/etc/pam.d`, real glibc NSS
//! reading a test `nsswitch.conf` and account files, jit's run and state directories where the
//! modules expect them, all without changing anything on the machine. Shared by nss_jit's and
//! pam_jit's integration tests and by the end-to-end harness (`jit_tests`).
//!
//! A [`Namespace`] is a list of mounts; [`Namespace::command`] runs a program after them, under
//! `unshare -m` (a new mount namespace, private propagation), through a small `sh` script whose
//! paths come in the environment, so no path is ever quoted into the script. Everything is undone
//! when the program exits. The only thing created outside is the empty mount point `/run/jitd`.
//!
//! These tests need root (`unshare -m` and `mount`): [`require_root`] fails them with a clear
//! message when they run without it; they never pass silently.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Fails the test unless it runs as root, saying why it needs root.
#[track_caller]
pub fn require_root(why: &str) {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "this test needs root ({why}); run it as root, as CI does (`make test`)"
    );
}

/// A file cargo built next to the running test: `target/<profile>/NAME` or
/// `target/<profile>/deps/NAME`, whichever is newer (`cargo test` of the module's own crate
/// writes the fresh cdylib to `deps/`; `cargo build` copies it one level up).
#[track_caller]
pub fn built(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("deps dir");
    let profile = deps.parent().expect("profile dir");
    let candidates = [profile.join(name), deps.join(name)];
    candidates
        .iter()
        .filter_map(|p| Some((std::fs::metadata(p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| {
            panic!(
                "{name} is missing (looked for {candidates:?}): run `cargo build --workspace` \
                 first"
            )
        })
}

enum Step {
    Bind(usize, usize),
    Tmpfs(usize, &'static str),
    Mkdir(usize),
    Touch(usize),
    Overlay(Vec<usize>, usize),
}

/// The mounts of one private namespace, in order.
#[derive(Default)]
pub struct Namespace {
    paths: Vec<OsString>,
    steps: Vec<Step>,
}

impl Namespace {
    pub fn new() -> Namespace {
        Namespace::default()
    }

    fn path(&mut self, p: impl AsRef<Path>) -> usize {
        self.paths.push(p.as_ref().as_os_str().to_owned());
        self.paths.len() - 1
    }

    /// `mount --bind SRC DST` (DST must exist: a directory for a directory, a file for a file).
    pub fn bind(mut self, src: impl AsRef<Path>, dst: impl AsRef<Path>) -> Namespace {
        let (s, d) = (self.path(src), self.path(dst));
        self.steps.push(Step::Bind(s, d));
        self
    }

    /// An empty tmpfs on DST with `mode` (`"0755"`).
    pub fn tmpfs(mut self, dst: impl AsRef<Path>, mode: &'static str) -> Namespace {
        let d = self.path(dst);
        self.steps.push(Step::Tmpfs(d, mode));
        self
    }

    /// `mkdir -p` inside what is mounted so far (on a tmpfs, say).
    pub fn mkdir(mut self, dst: impl AsRef<Path>) -> Namespace {
        let d = self.path(dst);
        self.steps.push(Step::Mkdir(d));
        self
    }

    /// An empty file, as a mount point for a bound file.
    pub fn touch(mut self, dst: impl AsRef<Path>) -> Namespace {
        let d = self.path(dst);
        self.steps.push(Step::Touch(d));
        self
    }

    /// A read-only overlay of `lower` (the first on top) on DST: adds files to a directory
    /// of the machine (`/usr/lib/…/security`) without writing to it.
    pub fn overlay(mut self, lower: &[&Path], dst: impl AsRef<Path>) -> Namespace {
        let l = lower.iter().map(|p| self.path(p)).collect();
        let d = self.path(dst);
        self.steps.push(Step::Overlay(l, d));
        self
    }

    /// The NSS sandbox: `run` on /run/jitd, `state` on /var/lib/jitd (over an empty /var/lib),
    /// and `etc`'s nsswitch.conf, passwd, group and shadow on /etc. Creates the mount point
    /// /run/jitd on the machine if it is missing.
    pub fn nss(self, run: &Path, state: &Path, etc: &Path) -> Namespace {
        std::fs::create_dir_all("/run/jitd").expect("mount point /run/jitd");
        let mut ns = self
            .bind(run, "/run/jitd")
            .tmpfs("/var/lib", "0755")
            .mkdir("/var/lib/jitd")
            .bind(state, "/var/lib/jitd");
        for f in ["nsswitch.conf", "passwd", "group", "shadow"] {
            ns = ns.bind(etc.join(f), Path::new("/etc").join(f));
        }
        ns
    }

    /// The shell script that makes the mounts, then execs "$@".
    fn script(&self) -> String {
        let v = |i: &usize| format!("\"$JIT_NS_{i}\"");
        let mut s = String::new();
        for step in &self.steps {
            let line = match step {
                Step::Bind(a, b) => format!("mount --bind {} {}", v(a), v(b)),
                Step::Tmpfs(d, mode) => format!("mount -t tmpfs -o mode={mode} tmpfs {}", v(d)),
                Step::Mkdir(d) => format!("mkdir -p {}", v(d)),
                Step::Touch(d) => format!(": > {}", v(d)),
                Step::Overlay(lower, d) => {
                    let dirs: Vec<String> = lower.iter().map(|i| format!("$JIT_NS_{i}")).collect();
                    format!(
                        "mount -t overlay overlay -o \"lowerdir={}\" {}",
                        dirs.join(":"),
                        v(d)
                    )
                }
            };
            s.push_str(&line);
            s.push('\n');
        }
        s.push_str("exec \"$@\"\n");
        s
    }

    /// `argv` inside the namespace (the first element is the program). The caller adds its own
    /// environment and stdio.
    pub fn command<S: AsRef<OsStr>>(&self, argv: &[S]) -> Command {
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "sh", "-ec"])
            .arg(self.script())
            .arg("sh")
            .args(argv);
        for (i, p) in self.paths.iter().enumerate() {
            cmd.env(format!("JIT_NS_{i}"), p);
        }
        cmd
    }
}

/// `pamtester SERVICE USER OPS…` as the tests run it, with the items of an ssh login
/// (`rhost=192.0.2.10`, `tty=ssh`); run it in a namespace whose /etc/pam.d has SERVICE.
#[track_caller]
pub fn pamtester_argv<'a>(service: &'a str, user: &'a str, ops: &[&'a str]) -> Vec<&'a str> {
    assert!(
        Path::new("/usr/bin/pamtester").exists(),
        "pamtester missing: apt-get install pamtester"
    );
    let mut argv = vec![
        "pamtester",
        "-I",
        "rhost=192.0.2.10",
        "-I",
        "tty=ssh",
        service,
        user,
    ];
    argv.extend_from_slice(ops);
    argv
}

/// A client that says hello on a PAM socket and prints the reply frame's JSON.
const HELLO_CLIENT: &str = r#"
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(60)
s.connect(sys.argv[1])
msg = json.dumps({"type": "hello", "version": int(sys.argv[2])}).encode()
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

/// Says hello (protocol `version`) to the PAM socket at `socket` from a process running as
/// `uid` (with gid `uid` and no supplementary groups), and returns the reply's JSON. Opens up
/// `dirs` (0755) and the socket (0666) first, so that jitd's SO_PEERCRED check, not the file
/// mode, is what the reply shows.
pub fn hello_as(socket: &Path, dirs: &[&Path], uid: u32, version: u32) -> String {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    require_root("it connects as another user");
    for dir in dirs {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    }
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o666)).expect("chmod socket");
    let out = Command::new("python3")
        .args(["-c", HELLO_CLIENT])
        .arg(socket)
        .arg(version.to_string())
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
    stdout.trim().to_owned()
}

/// What a program printed and how it ended, with asserts that show the whole output.
pub struct Run(pub Output);

impl Run {
    /// stdout then stderr, lossily decoded.
    pub fn text(&self) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&self.0.stdout),
            String::from_utf8_lossy(&self.0.stderr)
        )
    }

    /// Exit status 0 (a signal is a failure too).
    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert_eq!(
            self.0.status.code(),
            Some(0),
            "the program failed:\n{}",
            self.text()
        );
        self
    }

    /// Exit status 1: failed cleanly (pamtester's code for a PAM failure), not by a signal.
    #[track_caller]
    pub fn assert_failed(&self) -> &Self {
        assert_eq!(
            self.0.status.code(),
            Some(1),
            "the program should have failed cleanly:\n{}",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_travel_in_the_environment_never_in_the_script() {
        let ns = Namespace::new()
            .tmpfs("/run", "0755")
            .mkdir("/run/it's here")
            .bind("/tmp/a b", "/run/it's here")
            .overlay(&[Path::new("/x"), Path::new("/y")], "/usr/lib");
        let script = ns.script();
        assert!(
            !script.contains("it's") && !script.contains("a b"),
            "{script}"
        );
        assert!(script.ends_with("exec \"$@\"\n"), "{script}");
        assert!(
            script.contains("lowerdir=$JIT_NS_4:$JIT_NS_5\" \"$JIT_NS_6\""),
            "{script}"
        );
        let cmd = ns.command(&["true"]);
        let envs: Vec<_> = cmd.get_envs().collect();
        assert_eq!(envs.len(), 7);
    }
}
