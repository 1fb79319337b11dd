//! Harness for real logins: Debian's OpenSSH server on a loopback port, the real `ssh` client on
//! a pseudo-terminal, and `su`/`login` on a tmux terminal, all inside a private mount namespace
//! that holds the PAM and NSS configuration we ship ([`system`]).
//!
//! Every child has a bound: the client runs under `pty_driver.py` with a deadline, sshd is
//! stopped on drop, tmux commands are bounded, and waits poll with a generous limit (never a
//! timed assertion). Tests run in parallel: each has its own temp dirs, ports, tmux socket and
//! namespace.
//!
//! Needs root and (Debian) openssh-server, openssh-client, tmux, python3, pamtester, openssl,
//! util-linux, libpam-runtime (pam-auth-update), libpam-modules. Build first:
//! `cargo build --workspace`.

pub mod system;
pub mod tmux;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use system::{CAROL, CAROL_PASSWORD, Pam, ROOT_PASSWORD, System, output_within, repo};

use crate::host::{Host, PATIENCE};
use crate::{Person, wait_for};

/// jitd's default TOTP prompt, as OpenSSH shows it after `(user@host) `.
pub const CODE_PROMPT: &str = "Verification code: ";
/// How jitd ends a refusal it sends to sshd as a prompt (OpenSSH bug 2876).
pub const PRESS_ENTER: &str = r"\(press Enter\)";
/// Bound on one client run; a login takes well under a second when nothing is wrong.
const CLIENT_LIMIT: Duration = Duration::from_secs(60);

/// sshd_config for the tests, after our drop-in: Debian 12's stock sshd_config (its non-comment
/// lines, with `Include` pointing at the drop-in instead of /etc/ssh/sshd_config.d/*.conf), so
/// the drop-in has to win over `KbdInteractiveAuthentication no` exactly as it does on a real
/// host (sshd keeps the first value of each keyword).
const STOCK: &str = "KbdInteractiveAuthentication no\n\
                     UsePAM yes\n\
                     X11Forwarding yes\n\
                     PrintMotd no\n\
                     AcceptEnv LANG LC_*\n";

/// Which form of `packaging/ssh/jit.conf` the test server includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropIn {
    /// The file as shipped.
    Shipped,
    /// Without its `AuthenticationMethods` line, as docs/ssh.md allows: a shared account may log
    /// in with the code alone, and a public key alone reaches the PAM account stage.
    CodeOnly,
    /// Not included at all (only `UsePAM yes`): sshd offers whatever sshd_config allows, so that
    /// PAM alone stands between a password and a shell.
    Absent,
}

impl DropIn {
    /// The file as shipped.
    pub const SHIPPED: DropIn = DropIn::Shipped;
    /// See [`DropIn::CodeOnly`].
    pub const CODE_ONLY: DropIn = DropIn::CodeOnly;

    /// The drop-in's text in this form.
    fn text(self) -> String {
        let shipped =
            std::fs::read_to_string(repo().join("packaging/ssh/jit.conf")).expect("the drop-in");
        assert!(
            shipped.contains("\nMatch Group jit-guarded\n")
                && shipped.contains("AuthorizedKeysCommand /usr/sbin/jitd authorized-keys %u"),
            "the drop-in lost its Match block:\n{shipped}"
        );
        match self {
            DropIn::Shipped => shipped,
            DropIn::CodeOnly => shipped
                .lines()
                .filter(|l| !l.trim_start().starts_with("AuthenticationMethods"))
                .map(|l| format!("{l}\n"))
                .collect(),
            DropIn::Absent => "UsePAM yes\n".to_owned(),
        }
    }
}

/// A running sshd (`-D`, logging to a file) inside `sys`'s namespace.
pub struct Sshd {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Sshd {
    /// Starts sshd with our drop-in, Debian's stock settings, and `extra` sshd_config lines
    /// (they come first, so they win over both). Retries on a port clash.
    pub fn start(sys: &System, drop_in: DropIn, extra: &str) -> Sshd {
        assert!(
            Path::new("/usr/sbin/sshd").exists(),
            "sshd missing: apt-get install openssh-server"
        );
        let dir = tempfile::Builder::new()
            .prefix("jit-sshd-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        keygen(&d.join("host_ed25519"));
        let include = d.join("jit.conf");
        std::fs::write(&include, drop_in.text()).expect("write the drop-in");
        let config = format!(
            "{extra}\n\
             HostKey {d}/host_ed25519\n\
             PidFile none\n\
             UseDNS no\n\
             LogLevel VERBOSE\n\
             Include {include}\n\
             {STOCK}",
            d = d.display(),
            include = include.display()
        );
        std::fs::write(d.join("sshd_config"), config).expect("write sshd_config");
        let mut sshd = Sshd {
            port: 0,
            dir,
            child: None,
        };
        for _ in 0..5 {
            if sshd.try_start(sys) {
                return sshd;
            }
        }
        panic!("sshd could not start:\n{}", sshd.log());
    }

    /// One attempt on a port the kernel just handed out; false if someone else took it first.
    fn try_start(&mut self, sys: &System) -> bool {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
            l.local_addr().expect("addr").port()
        };
        let d = self.dir.path();
        let log = d.join("sshd.log");
        let _ = std::fs::remove_file(&log);
        let (config, log_s, port_s) = (
            d.join("sshd_config").display().to_string(),
            log.display().to_string(),
            port.to_string(),
        );
        let mut child = sys
            .command(&[
                "/usr/sbin/sshd",
                "-D",
                "-E",
                &log_s,
                "-f",
                &config,
                "-p",
                &port_s,
                "-o",
                "ListenAddress=127.0.0.1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sshd");
        let ready = format!("Server listening on 127.0.0.1 port {port}.");
        let mut exited = false;
        wait_for("sshd to listen", PATIENCE, || {
            exited = matches!(child.try_wait(), Ok(Some(_)));
            exited || self.log().contains(&ready)
        });
        if exited {
            let log = self.log();
            assert!(
                log.contains("Address already in use") || log.contains("Cannot bind any address"),
                "sshd exited at start:\n{log}"
            );
            return false;
        }
        self.port = port;
        self.child = Some(child);
        true
    }

    /// sshd's own log (`-E`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Waits until sshd's log has `needle` (sshd may write it just after the client is done).
    #[track_caller]
    pub fn wait_log(&self, needle: &str) {
        let mut seen = false;
        let start = std::time::Instant::now();
        while !seen && start.elapsed() < PATIENCE {
            seen = self.log().contains(needle);
            if !seen {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        assert!(seen, "sshd's log lacks {needle:?}:\n{}", self.log());
    }

    /// A new key pair for `name`; returns the private key's path (the public key is beside it,
    /// with `.pub`).
    pub fn new_key(&self, name: &str) -> PathBuf {
        let key = self.dir.path().join(format!("id_{name}"));
        keygen(&key);
        key
    }

    /// A client logging in as `user`.
    pub fn client(&self, user: &str) -> Client<'_> {
        Client {
            sshd: self,
            user: user.to_owned(),
            methods: "keyboard-interactive".to_owned(),
            key: None,
            answers: Vec::new(),
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM first, so sshd removes nothing it should not leave; it exits at once.
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
            let mut done = false;
            for _ in 0..100 {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    done = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if !done {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "jit-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success(), "ssh-keygen failed");
}

/// One `ssh` run, as a person at a terminal: the real client on a pseudo-terminal, answering
/// prompts by pattern.
pub struct Client<'a> {
    sshd: &'a Sshd,
    user: String,
    methods: String,
    key: Option<PathBuf>,
    answers: Vec<(String, String)>,
}

impl Client<'_> {
    /// `PreferredAuthentications` (default `keyboard-interactive`).
    pub fn methods(mut self, methods: &str) -> Self {
        self.methods = methods.to_owned();
        self
    }

    /// Offers this private key (and no other).
    pub fn key(mut self, key: &Path) -> Self {
        self.key = Some(key.to_owned());
        self
    }

    /// Types `text` and Enter whenever the output shows `regex` (not yet answered).
    pub fn answer(mut self, regex: &str, text: &str) -> Self {
        self.answers.push((regex.to_owned(), text.to_owned()));
        self
    }

    /// Runs `command` in the session (or tries to) and returns the transcript.
    pub fn run(self, command: &str) -> Transcript {
        let rules = serde_json::to_string(&self.answers).expect("rules");
        let port = self.sshd.port.to_string();
        let mut cmd = Command::new("python3");
        cmd.arg("-c")
            .arg(include_str!("sshd/pty_driver.py"))
            .arg((CLIENT_LIMIT.as_secs() - 10).to_string())
            .arg(rules)
            .args(["ssh", "-F", "/dev/null", "-p", &port])
            .args(["-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null"])
            .args(["-o", "ConnectTimeout=20"])
            .args(["-o", "IdentityAgent=none"])
            .args(["-o", "IdentitiesOnly=yes"])
            // One keyboard-interactive round: each answer the test gives is used exactly once.
            .args(["-o", "NumberOfPasswordPrompts=1"])
            .args(["-o", &format!("PreferredAuthentications={}", self.methods)]);
        match &self.key {
            Some(k) => cmd.arg("-i").arg(k),
            None => cmd.args(["-o", "PubkeyAuthentication=no"]),
        };
        cmd.arg(format!("{}@127.0.0.1", self.user))
            .arg(command)
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        let out = output_within(cmd, CLIENT_LIMIT);
        Transcript {
            code: out.status.code(),
            text: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
}

/// What the person saw, and how the program ended.
pub struct Transcript {
    pub code: Option<i32>,
    pub text: String,
}

impl Transcript {
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit {code}; transcript:\n{}",
            self.text
        );
        self
    }

    #[track_caller]
    pub fn assert_shows(&self, needle: &str) -> &Self {
        assert!(
            self.text.contains(needle),
            "the person did not see {needle:?}; transcript:\n{}",
            self.text
        );
        self
    }

    #[track_caller]
    pub fn assert_hides(&self, needle: &str) -> &Self {
        assert!(
            !self.text.contains(needle),
            "the person saw {needle:?}; transcript:\n{}",
            self.text
        );
        self
    }
}

/// `p` registers the public half of `key` on the server (`jitctl key add`), as a person does;
/// returns its `SHA256:` fingerprint once `host`'s jitd has it in its keys file.
pub fn register_key(p: &Person, key: &Path, host: &Host) -> String {
    let public = key.with_extension("pub");
    let out = p
        .jitctl
        .json(&["key", "add", &public.display().to_string()]);
    let fingerprint = out["fingerprint"]
        .as_str()
        .unwrap_or_else(|| panic!("no fingerprint in {out}"))
        .to_owned();
    let blob = std::fs::read_to_string(&public)
        .expect("public key")
        .split_whitespace()
        .nth(1)
        .expect("key blob")
        .to_owned();
    wait_for("jitd to fetch the key", PATIENCE, || {
        host.ssh_keys().contains(&blob)
    });
    fingerprint
}
