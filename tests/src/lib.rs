//! Harness for end-to-end tests: start the real `jit-server` on a loopback port over real TLS
//! with a temporary database, drive it through the real `jitctl` binary (one config directory
//! per identity), and compute TOTP codes from enrolled secrets.
//!
//! The database is SQLite in the server's data directory, or, with
//! `JIT_TEST_DATABASE=postgres`, a private PostgreSQL cluster per server ([`postgres`]).
//!
//! Binaries are found next to the test executable (`target/debug/`), so build the workspace
//! first: `cargo build --workspace` (the README's test command does).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod crash;
pub mod flood;
pub mod host;
pub mod postgres;
pub mod push;
pub mod sshd;

pub use postgres::{Database, Postgres, database};
/// `target/debug` (or whichever profile dir the tests were built in).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().expect("exe dir");
    // Tests run from PROFILE/deps; a binary of this crate (a benchmark) from PROFILE itself.
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("profile dir").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// Path of a workspace binary; fails with a clear message if it was not built.
pub fn bin(name: &str) -> PathBuf {
    let p = target_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace` before the tests (the README's test command does)",
        p.display()
    );
    p
}

/// Unix seconds now.
pub use jit_clock::now;

/// Waits for `cond`, polling; panics with `what` after `limit`. Used to wait for readiness, never
/// to assert on timing.
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running jit-server with its own data directory, and its first admin: the person `admin`,
/// made from the one-time bootstrap token `jit-server init` printed.
pub struct Server {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub fingerprint: String,
    /// The token of the admin person `admin` (a person token, `jitp_…`).
    pub admin_token: String,
    /// The bootstrap token from `jit-server init` (already spent on `admin`).
    pub bootstrap_token: String,
    /// The one-time enrollment code of `admin`'s own factor (unused: admin has none yet).
    pub admin_enrollment_code: String,
    child: Option<Child>,
    log: PathBuf,
    /// The database URL when it is not the data directory's SQLite file.
    database_url: Option<String>,
    /// The private PostgreSQL cluster this server owns (dropped after the server stops).
    pg: Option<Postgres>,
}

/// Name of the admin person every [`Server`] starts with.
pub const ADMIN: &str = "admin";

impl Server {
    /// `jit-server init` in a new directory, then `run` on a free loopback port. The database
    /// is the one [`database`] names (a new private PostgreSQL cluster for `postgres`).
    pub fn start() -> Server {
        match database() {
            Database::Sqlite => Server::start_on(None),
            Database::Postgres => Server::start_on(Some(Postgres::start())),
        }
    }

    /// [`Server::start`] on SQLite (`None`) or on the given PostgreSQL cluster, which the
    /// server then owns.
    pub fn start_on(pg: Option<Postgres>) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("jit-server-")
            .tempdir()
            .expect("tempdir");
        let data = dir.path().join("data");
        let database_url = pg.as_ref().map(Postgres::url);
        let mut cmd = Command::new(bin("jit-server"));
        if let Some(url) = &database_url {
            cmd.arg("--config")
                .arg(write_config(dir.path(), &data, url, ""));
        }
        let out = cmd
            .args(["init", "--json", "--data"])
            .arg(&data)
            .output()
            .expect("run jit-server init");
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("init --json output");
        let mut s = Server {
            log: dir.path().join("server.log"),
            dir,
            url: String::new(),
            fingerprint: v["ca_fingerprint"]
                .as_str()
                .expect("ca_fingerprint")
                .to_owned(),
            bootstrap_token: v["admin_token"].as_str().expect("admin_token").to_owned(),
            admin_token: String::new(),
            admin_enrollment_code: String::new(),
            child: None,
            database_url,
            pg,
        };
        s.run("127.0.0.1:0");
        s.bootstrap_admin();
        s
    }

    /// `jitctl login` with the bootstrap token, as the first admin does: creates the person
    /// `admin` with the admin role, and keeps its token for [`Jitctl::admin`].
    fn bootstrap_admin(&mut self) {
        let j = Jitctl::new();
        let v = j.json(&[
            "login",
            "--server",
            &self.url,
            "--ca-fingerprint",
            &self.fingerprint,
            "--token",
            &self.bootstrap_token,
            "--name",
            ADMIN,
        ]);
        self.admin_enrollment_code = v["enrollment_code"]
            .as_str()
            .expect("enrollment_code")
            .to_owned();
        let cfg: Value = serde_json::from_str(
            &std::fs::read_to_string(j.dir().join("config.json")).expect("jitctl config"),
        )
        .expect("config json");
        self.admin_token = cfg["token"].as_str().expect("token").to_owned();
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir().join("jit.db")
    }

    pub fn ca_pem(&self) -> PathBuf {
        self.data_dir().join("tls").join("ca.pem")
    }

    /// Another `jit-server run` process on the same database, as an admin starts a replica:
    /// `jit-server export` here, `jit-server init --from` that export in a new data directory
    /// (the same CA, server certificate and at-rest key), then `run` with this server's
    /// database (on SQLite: a server.toml naming this server's jit.db). The replica must be
    /// dropped before this server (which owns the PostgreSQL cluster).
    pub fn replica(&self) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("jit-server-")
            .tempdir()
            .expect("tempdir");
        let export = dir.path().join("export.json");
        let out = self
            .command()
            .args(["export", "--data"])
            .arg(self.data_dir())
            .arg("--out")
            .arg(&export)
            .output()
            .expect("jit-server export");
        assert!(
            out.status.success(),
            "export failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let data = dir.path().join("data");
        let database_url = self
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.db_path().display()));
        let out = Command::new(bin("jit-server"))
            .arg("--config")
            .arg(write_config(dir.path(), &data, &database_url, ""))
            .args(["init", "--json", "--from"])
            .arg(&export)
            .arg("--data")
            .arg(&data)
            .output()
            .expect("jit-server init --from");
        assert!(
            out.status.success(),
            "init --from failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::remove_file(&export).expect("remove the export");
        let v: Value = serde_json::from_slice(&out.stdout).expect("init --json output");
        assert_eq!(
            v["ca_fingerprint"].as_str(),
            Some(self.fingerprint.as_str())
        );
        let mut r = Server {
            log: dir.path().join("server.log"),
            dir,
            url: String::new(),
            fingerprint: self.fingerprint.clone(),
            admin_token: self.admin_token.clone(),
            bootstrap_token: self.bootstrap_token.clone(),
            admin_enrollment_code: self.admin_enrollment_code.clone(),
            child: None,
            database_url: Some(database_url),
            pg: None,
        };
        r.run("127.0.0.1:0");
        r
    }

    /// A `jit-server` command for this server: with its server.toml (and so its database) when
    /// it has one, as an admin on the server machine runs it. Add the subcommand and `--data`.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(bin("jit-server"));
        if let Some(url) = &self.database_url {
            cmd.arg("--config")
                .arg(write_config(self.dir.path(), &self.data_dir(), url, ""));
        }
        cmd
    }

    /// Which database this server stores its data in.
    pub fn database(&self) -> Database {
        match &self.database_url {
            Some(url) if url.starts_with("postgres") => Database::Postgres,
            _ => Database::Sqlite,
        }
    }

    /// The whole database as SQL text (sqlite3 `.dump` or pg_dump), for tests that look for
    /// what must never be stored.
    pub fn dump(&self) -> String {
        match (&self.pg, &self.database_url) {
            (Some(pg), _) => pg.dump(),
            (None, Some(url)) => {
                panic!("dump of a replica's database {url}: dump the first server")
            }
            (None, None) => {
                let out = Command::new("sqlite3")
                    .arg(self.db_path())
                    .arg(".dump")
                    .output()
                    .expect("sqlite3 (apt install sqlite3)");
                assert!(out.status.success(), "sqlite3 .dump failed");
                String::from_utf8_lossy(&out.stdout).into_owned()
            }
        }
    }

    /// The private PostgreSQL cluster of this server, if it runs on one.
    pub fn postgres(&self) -> Option<&Postgres> {
        self.pg.as_ref()
    }

    /// Starts `jit-server run` on `listen` and waits for its "listening on" line.
    pub fn run(&mut self, listen: &str) {
        let mut cmd = Command::new(bin("jit-server"));
        if let Some(url) = &self.database_url {
            cmd.arg("--config")
                .arg(write_config(self.dir.path(), &self.data_dir(), url, ""));
        }
        cmd.args(["run", "--listen", listen, "--data"])
            .arg(self.data_dir());
        self.spawn(cmd);
    }

    /// Like [`Server::run`], with a server.toml holding this server's `data_dir` and `toml`
    /// (passed with `--config`), as an admin who tunes the defaults runs it.
    pub fn run_with_config(&mut self, listen: &str, toml: &str) {
        let cfg = match &self.database_url {
            Some(url) => write_config(self.dir.path(), &self.data_dir(), url, toml),
            None => {
                let cfg = self.dir.path().join("server.toml");
                let text = format!(
                    "data_dir = {:?}\n{toml}",
                    self.data_dir().display().to_string()
                );
                std::fs::write(&cfg, text).expect("write server.toml");
                cfg
            }
        };
        let mut cmd = Command::new(bin("jit-server"));
        cmd.arg("--config")
            .arg(&cfg)
            .args(["run", "--listen", listen]);
        self.spawn(cmd);
    }

    fn spawn(&mut self, mut cmd: Command) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("server log");
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn jit-server run");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read readiness line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first line from jit-server: {line:?}; log: {}",
                    self.log()
                )
            })
            .to_owned();
        self.url = addr;
        self.child = Some(child);
    }

    /// The address part of the URL, e.g. `127.0.0.1:34567`.
    pub fn addr(&self) -> String {
        self.url.trim_start_matches("https://").to_owned()
    }

    /// The process id of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the server (SIGKILL: as if it crashed or the network went away).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same address.
    pub fn restart(&mut self) {
        self.kill();
        let addr = self.addr();
        self.run(&addr);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs SQL against the server's database (tests use it to move time: e.g. make a
    /// reservation expire without waiting). Rows come back one per line, columns separated by
    /// `|`. On PostgreSQL, SQLite's `strftime('%s','now')` is understood as the Unix time now,
    /// so that tests can say "now" once for both.
    pub fn sql(&self, sql: &str) -> String {
        if let Some(url) = &self.database_url {
            let pg = self.pg.as_ref().unwrap_or_else(|| {
                panic!("SQL on a replica's database {url}: use the first server")
            });
            let sql = sql.replace(
                "strftime('%s','now')",
                "CAST(EXTRACT(EPOCH FROM now()) AS BIGINT)",
            );
            return pg.psql(&sql);
        }
        let out = Command::new("sqlite3")
            .arg(self.db_path())
            .arg(sql)
            .output()
            .expect("sqlite3 (apt install sqlite3)");
        assert!(
            out.status.success(),
            "sqlite3: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A raw HTTPS request with curl, trusting only this server's CA. Returns (status, body).
    pub fn curl(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> (u16, String) {
        self.curl_with(&[], method, path, token, body)
    }

    /// [`Server::curl`] with extra curl arguments.
    pub fn curl_with(
        &self,
        extra: &[&str],
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> (u16, String) {
        let mut cmd = Command::new("curl");
        cmd.args(extra);
        cmd.args([
            "-sS",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-X",
            method,
            "--cacert",
        ])
        .arg(self.ca_pem())
        .arg(format!("{}{}", self.url, path))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
        if let Some(t) = token {
            cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
        }
        if body.is_some() {
            cmd.args([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                "@-",
            ]);
        }
        let mut child = cmd.spawn().expect("curl");
        {
            let mut stdin = child.stdin.take().expect("stdin");
            if let Some(b) = body {
                stdin.write_all(b).expect("write body");
            }
        }
        let out = child.wait_with_output().expect("curl output");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or((&text, "0"));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The server first, then its database (the `pg` field drops after this).
        self.kill();
    }
}

/// A server.toml in `dir` naming the data directory and the database, with `extra` after them.
fn write_config(dir: &Path, data: &Path, database_url: &str, extra: &str) -> PathBuf {
    let cfg = dir.join("server.toml");
    let text = format!(
        "data_dir = {:?}\ndatabase_url = {database_url:?}\n{extra}",
        data.display().to_string()
    );
    std::fs::write(&cfg, text).expect("write server.toml");
    cfg
}

/// One jitctl identity: its own `JITCTL_CONFIG` directory.
pub struct Jitctl {
    pub dir: tempfile::TempDir,
}

impl Jitctl {
    pub fn new() -> Jitctl {
        Jitctl {
            dir: tempfile::Builder::new()
                .prefix("jitctl-")
                .tempdir()
                .expect("tempdir"),
        }
    }

    /// An admin identity logged in to `server` (the person [`ADMIN`], with its token).
    pub fn admin(server: &Server) -> Jitctl {
        let j = Jitctl::new();
        j.ok(&[
            "login",
            "--server",
            &server.url,
            "--ca-fingerprint",
            &server.fingerprint,
            "--token",
            &server.admin_token,
        ]);
        j
    }

    /// This identity's `JITCTL_CONFIG` directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(bin("jitctl"));
        c.env("JITCTL_CONFIG", self.dir.path())
            .env_remove("JITCTL_TOKEN");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run jitctl")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "jitctl {args:?} failed ({:?}):\n{}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs with `--json`, asserts success, parses stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("jitctl {args:?}: bad JSON ({e}): {out}"))
    }

    /// Runs and asserts failure with `code`; returns stderr.
    pub fn fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "jitctl {args:?}: expected exit {code}; stdout: {} stderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }
}

impl Default for Jitctl {
    fn default() -> Self {
        Self::new()
    }
}

/// The base32 secret inside an `otpauth://` URI.
pub fn secret_of(uri: &str) -> Vec<u8> {
    let query = uri.split_once('?').map(|(_, q)| q).unwrap_or("");
    let b32 = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("secret="))
        .unwrap_or_else(|| panic!("no secret in {uri}"));
    let secret = totp_rs::Secret::try_from_base32(b32).expect("base32 secret");
    secret.as_ref().to_vec()
}

/// The TOTP code of `secret` at Unix time `t` (SHA-1, 6 digits, 30 s).
pub fn totp_at(secret: &[u8], t: i64) -> String {
    let totp = totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(secret.to_vec())
        .build()
        .expect("totp");
    totp.generate(t as u64).to_string()
}

/// A person enrolled through `jitctl enroll` (as a script would: URI on stdout, code on stdin).
pub struct Person {
    pub name: String,
    pub jitctl: Jitctl,
    pub secret: Vec<u8>,
    /// The newest TOTP step this person has used (the server accepts each step once).
    last_step: std::cell::Cell<i64>,
}

impl Person {
    /// The code for the current step (it may already be used: see [`Person::next_code`]).
    pub fn code(&self) -> String {
        totp_at(&self.secret, now())
    }

    /// A code the server has not seen from this person yet: the current step if unused, else
    /// the next one (accepted within the ±1 step skew). When both are used, waits for the clock
    /// to reach the next step. Marks the step used.
    pub fn next_code(&self) -> String {
        loop {
            let current = now() / 30;
            let step = current.max(self.last_step.get() + 1);
            if step <= current + 1 {
                self.last_step.set(step);
                return totp_at(&self.secret, step * 30);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The code for `steps` steps from now (accepted within the ±1 step skew), for a second
    /// login before the next step starts.
    pub fn code_in(&self, steps: i64) -> String {
        totp_at(&self.secret, now() + 30 * steps)
    }
}

/// `jitctl person add NAME` as admin, then `jitctl enroll` as the person.
pub fn enroll(server: &Server, admin: &Jitctl, name: &str) -> Person {
    let added = admin.json(&["person", "add", name]);
    let code = added["enrollment_code"]
        .as_str()
        .expect("enrollment_code")
        .to_owned();
    enroll_with_code(server, name, &code)
}

pub fn enroll_with_code(server: &Server, name: &str, code: &str) -> Person {
    let jitctl = Jitctl::new();
    let mut child = jitctl
        .command()
        .args([
            "--json",
            "enroll",
            code,
            "--server",
            &server.url,
            "--ca-fingerprint",
            &server.fingerprint,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn jitctl enroll");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("read otpauth line");
    let v: Value = serde_json::from_str(first.trim())
        .unwrap_or_else(|e| panic!("enroll printed {first:?}: {e}"));
    let secret = secret_of(v["otpauth_uri"].as_str().expect("otpauth_uri"));
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{}", totp_at(&secret, now())).expect("write code");
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("read rest");
    let status = child.wait().expect("wait enroll");
    let enrolled_step = now() / 30;
    assert!(status.success(), "jitctl enroll failed: {rest}");
    let done: Value = serde_json::from_str(rest.trim()).expect("enroll result JSON");
    assert_eq!(done["enrolled"], true);
    // The confirmation code used the step it was computed in (at most the one now).
    Person {
        name: name.to_owned(),
        jitctl,
        secret,
        last_step: std::cell::Cell::new(enrolled_step),
    }
}

/// A server with `ops` group, persons alice and bob in it, shared account `admin` (virtual,
/// uid 60001) on hosts `web*`, and host `web01` added. The common setup of many tests.
pub struct World {
    pub server: Server,
    pub admin: Jitctl,
    pub alice: Person,
    pub bob: Person,
    pub join_token: String,
}

impl World {
    pub fn new() -> World {
        World::on(Server::start())
    }

    /// The same world on `server` (for a server started with [`Server::start_on`]).
    pub fn on(server: Server) -> World {
        let admin = Jitctl::admin(&server);
        admin.ok(&["group", "add", "ops"]);
        let alice = enroll(&server, &admin, "alice");
        let bob = enroll(&server, &admin, "bob");
        admin.ok(&["group", "add-member", "ops", "alice"]);
        admin.ok(&["group", "add-member", "ops", "bob"]);
        admin.ok(&[
            "account",
            "add",
            "admin",
            "--uid",
            "60001",
            "--gid",
            "60001",
            "--home",
            "/home/admin",
            "--shell",
            "/bin/bash",
            "--group",
            "ops",
            "--ttl",
            "5m",
            "--max-ttl",
            "30m",
            "--hosts",
            "web*",
        ]);
        let host = admin.json(&["host", "add", "web01", "--label", "web"]);
        let join_token = host["join_token"].as_str().expect("join_token").to_owned();
        World {
            server,
            admin,
            alice,
            bob,
            join_token,
        }
    }
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

/// Another server process on `server`'s database, with the same CA, certificate and keys (a
/// replica), listening on its own port.
pub fn replica_of(server: &Server) -> Server {
    let mut second = Server::start();
    second.kill();
    let dir2 = second.data_dir();
    std::fs::remove_dir_all(&dir2).expect("remove the replica's data");
    copy_dir(&server.data_dir(), &dir2);
    std::fs::remove_file(dir2.join("jit.db")).expect("remove the replica's database");
    std::os::unix::fs::symlink(server.db_path(), dir2.join("jit.db")).expect("symlink the db");
    second.run("127.0.0.1:0");
    second
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("dir entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).expect("copy");
        }
    }
}

/// What a host holds after joining: the server URL, the pinned CA and its credential.
#[derive(Clone)]
pub struct HostCreds {
    pub server: String,
    pub ca_pem: String,
    pub credential: jit_proto::Secret,
}

impl HostCreds {
    /// A client for the host-facing API at `url` (another server process may share the DB).
    pub fn client_at(&self, url: &str) -> jit_client::Client {
        jit_client::Client::new(
            url,
            jit_client::Trust::CaPem(self.ca_pem.clone()),
            Some(self.credential.clone()),
            Duration::from_secs(60),
        )
        .expect("host client")
    }

    pub fn client(&self) -> jit_client::Client {
        self.client_at(&self.server)
    }
}

/// Joins a host with its one-time token through the real API, as jitd would.
pub fn join_host_creds(rt: &tokio::runtime::Runtime, join_token: &str) -> HostCreds {
    let token = jit_proto::join_token::JoinToken::decode(join_token).expect("join token");
    let pin = jit_client::parse_fingerprint(&token.ca_fingerprint).expect("fingerprint");
    let first = jit_client::Client::new(
        &token.server,
        jit_client::Trust::Fingerprint(pin),
        None,
        Duration::from_secs(30),
    )
    .expect("client");
    let joined = rt
        .block_on(first.join(&jit_proto::api::JoinRequest {
            host: token.host.clone(),
            secret: token.secret.clone(),
        }))
        .expect("join");
    HostCreds {
        server: token.server,
        ca_pem: first.captured_ca_pem().expect("captured CA"),
        credential: joined.credential,
    }
}

/// Joins a host and returns a client holding the host credential.
pub fn join_host(rt: &tokio::runtime::Runtime, join_token: &str) -> jit_client::Client {
    join_host_creds(rt, join_token).client()
}

/// A client with a person's or admin's stored token (from their jitctl config).
pub fn client_for(jitctl: &Jitctl) -> jit_client::Client {
    let cfg: Value = serde_json::from_str(
        &std::fs::read_to_string(jitctl.dir.path().join("config.json")).expect("jitctl config"),
    )
    .expect("config json");
    jit_client::Client::new(
        cfg["server"].as_str().expect("server"),
        jit_client::Trust::CaPem(cfg["ca_pem"].as_str().expect("ca_pem").to_owned()),
        Some(jit_proto::Secret::new(
            cfg["token"].as_str().expect("token"),
        )),
        Duration::from_secs(60),
    )
    .expect("client")
}

/// A multi-threaded runtime for tests that call the API concurrently.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime")
}

/// True if `p` exists; for readable asserts.
pub fn exists(p: &Path) -> bool {
    p.exists()
}
