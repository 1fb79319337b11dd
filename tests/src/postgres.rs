//! A private PostgreSQL 15 cluster for one test: its own data directory in a temporary
//! directory, run as the unprivileged user `nobody`, listening only on a unix socket in that
//! directory. Nothing is system-wide: no port, no service, no file outside the directory.
//!
//! `initdb` runs once per build (a template in the target directory, with the `jit` database
//! already created); each cluster starts from a copy of it, which takes a fraction of a second.
//! The postmaster is a child of the test: dropping [`Postgres`] (also while a test panics)
//! stops it and removes the directory, and should the test process die, the kernel kills the
//! postmaster too (parent-death signal), whose backends then exit.
//!
//! `JIT_TEST_DATABASE=postgres` makes every [`crate::Server`] use such a cluster.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// Where Debian's postgresql-15 installs its programs.
pub const BIN: &str = "/usr/lib/postgresql/15/bin";

/// The unprivileged user the cluster runs as (PostgreSQL refuses to run as root).
const USER: &str = "nobody";
const GROUP: &str = "nogroup";

/// The database and role the server uses.
pub const DATABASE: &str = "jit";
pub const ROLE: &str = "jit";

/// Which database the tests run the server on (`JIT_TEST_DATABASE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    Sqlite,
    Postgres,
}

/// The backend `JIT_TEST_DATABASE` names: `sqlite` (the default) or `postgres`.
pub fn database() -> Database {
    match std::env::var("JIT_TEST_DATABASE").as_deref() {
        Err(_) | Ok("") | Ok("sqlite") => Database::Sqlite,
        Ok("postgres") | Ok("postgresql") => Database::Postgres,
        Ok(other) => panic!("JIT_TEST_DATABASE={other:?}: use sqlite or postgres"),
    }
}

/// A running private cluster. Dropping it stops the cluster and removes its directory.
pub struct Postgres {
    dir: tempfile::TempDir,
    postmaster: Option<Child>,
}

impl Postgres {
    /// Starts a new cluster with an empty `jit` database and waits until it accepts connections.
    /// It trades durability for speed (no fsync), as a cluster that lives for one test may.
    pub fn start() -> Postgres {
        Self::start_cluster(false)
    }

    /// As [`Postgres::start`], with the durability of a production cluster (fsync, synchronous
    /// commit and full-page writes on), for benchmarks that compare it with SQLite's
    /// `synchronous = FULL`.
    pub fn start_durable() -> Postgres {
        Self::start_cluster(true)
    }

    fn start_cluster(durable: bool) -> Postgres {
        let template = template();
        let dir = tempfile::Builder::new()
            .prefix("jit-pg-")
            .tempdir()
            .expect("tempdir for PostgreSQL");
        chown_nobody(dir.path());
        let data = dir.path().join("data");
        let ok = Command::new("cp")
            .arg("-a")
            .arg(template)
            .arg(&data)
            .status()
            .expect("cp");
        assert!(ok.success(), "copying the PostgreSQL template failed");
        if durable {
            // Later lines of postgresql.conf override the template's.
            let conf = data.join("postgresql.conf");
            let mut text = std::fs::read_to_string(&conf).expect("read postgresql.conf");
            text.push_str("\nfsync = on\nsynchronous_commit = on\nfull_page_writes = on\n");
            std::fs::write(&conf, text).expect("write postgresql.conf");
        }
        let log = std::fs::File::create(dir.path().join("postgres.log")).expect("postgres log");
        chown_nobody(&dir.path().join("postgres.log"));
        let postmaster = as_nobody(&format!("{BIN}/postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start postgres");
        let mut pg = Postgres {
            dir,
            postmaster: Some(postmaster),
        };
        let socket_dir = pg.socket_dir();
        crate::wait_for(
            "PostgreSQL to accept connections",
            Duration::from_secs(60),
            || {
                if let Some(Ok(Some(status))) = pg.postmaster.as_mut().map(|c| c.try_wait()) {
                    panic!("postgres exited ({status}): {}", pg.log());
                }
                Command::new(format!("{BIN}/pg_isready"))
                    .arg("-q")
                    .arg("-h")
                    .arg(&socket_dir)
                    .args(["-U", ROLE, "-d", DATABASE])
                    .status()
                    .is_ok_and(|s| s.success())
            },
        );
        pg
    }

    /// The directory of the unix socket (and of the cluster).
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// The URL jit-server connects with (`database_url`).
    pub fn url(&self) -> String {
        format!(
            "postgres://{ROLE}@localhost/{DATABASE}?host={}",
            self.socket_dir().display()
        )
    }

    /// Runs `sql` with psql and returns its output: one line per row, columns separated by `|`
    /// (as the sqlite3 shell prints them), booleans as `t`/`f`.
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new(format!("{BIN}/psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.socket_dir())
            .args(["-U", ROLE, "-d", DATABASE, "-c", sql])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The whole database as SQL text (pg_dump).
    pub fn dump(&self) -> String {
        let out = Command::new(format!("{BIN}/pg_dump"))
            .arg("-h")
            .arg(self.socket_dir())
            .args(["-U", ROLE, "-d", DATABASE])
            .output()
            .expect("pg_dump");
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut c) = self.postmaster.take() {
            // SIGINT: fast shutdown (clients are disconnected, shared memory is released).
            // SAFETY: kill(2) on our own child's pid, which we have not waited for yet.
            unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGINT) };
            let _ = c.wait();
        }
        // The TempDir removes the directory when the fields drop.
    }
}

/// A command run as `nobody`, killed when the process (thread) that started it ends.
fn as_nobody(program: &str) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        &format!("--reuid={USER}"),
        &format!("--regid={GROUP}"),
        "--clear-groups",
        "--pdeathsig=KILL",
        "--",
        program,
    ])
    // Nothing of root's environment that could steer PostgreSQL.
    .env_remove("PGDATA")
    .env("HOME", "/nonexistent");
    cmd
}

fn chown_nobody(path: &Path) {
    let ok = Command::new("chown")
        .arg(format!("{USER}:{GROUP}"))
        .arg(path)
        .status()
        .expect("chown");
    assert!(ok.success(), "chown {} to {USER}", path.display());
}

/// The template data directory: made once per build by initdb, with the settings a throwaway
/// test cluster wants and the `jit` database.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dest = crate::target_dir().join("pg-template");
        if dest.join("data").join("PG_VERSION").exists() {
            return dest.join("data");
        }
        assert!(
            Path::new(BIN).join("initdb").exists(),
            "{BIN}/initdb is missing: install PostgreSQL 15 (apt install postgresql-15)"
        );
        // Made in a temporary directory, which nobody can reach wherever the checkout is (a
        // target directory under a 0700 home is out of its reach), then copied beside its final
        // place and renamed into it, so that test binaries running at once never see half a
        // template.
        let work = tempfile::Builder::new()
            .prefix("jit-pg-template-")
            .tempdir()
            .expect("tempdir for the PostgreSQL template");
        chown_nobody(work.path());
        let data = work.path().join("data");
        let out = as_nobody(&format!("{BIN}/initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                ROLE,
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ])
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Unix socket only; durability is not wanted for a cluster that lives one test; dynamic
        // shared memory in files of the data directory, not in /dev/shm.
        let conf = "\nlisten_addresses = ''\nfsync = off\nsynchronous_commit = off\n\
                    full_page_writes = off\nshared_buffers = 16MB\nmax_connections = 100\n\
                    dynamic_shared_memory_type = mmap\nlog_min_messages = warning\n";
        let mut text = std::fs::read_to_string(data.join("postgresql.conf")).expect("conf");
        text.push_str(conf);
        std::fs::write(data.join("postgresql.conf"), text).expect("write conf");
        let mut single = as_nobody(&format!("{BIN}/postgres"))
            .args(["--single", "-D"])
            .arg(&data)
            .arg("postgres")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("postgres --single");
        {
            use std::io::Write;
            let mut stdin = single.stdin.take().expect("stdin");
            writeln!(stdin, "CREATE DATABASE {DATABASE};").expect("write");
        }
        let out = single.wait_with_output().expect("postgres --single");
        assert!(
            out.status.success(),
            "CREATE DATABASE: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tmp = crate::target_dir().join(format!("pg-template.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).expect("template dir");
        let ok = Command::new("cp")
            .arg("-a")
            .arg(&data)
            .arg(tmp.join("data"))
            .status()
            .expect("cp");
        assert!(ok.success(), "copying the PostgreSQL template failed");
        if std::fs::rename(&tmp, &dest).is_err() {
            // Another test binary got there first: use its template.
            let _ = std::fs::remove_dir_all(&tmp);
        }
        dest.join("data")
    })
}
