//! Benchmark of the server's write paths and of the login decision through jitd, on SQLite and
//! on PostgreSQL in one run, for docs/benchmarks.md (`make bench-server`). A measurement, not a
//! test: nothing here asserts a time.
//!
//! `bench_server [--database sqlite|postgres]... [--persons N] [--seconds S]` (default: both
//! databases, 1000 persons, 10 s of audited writes). As root: the PostgreSQL cluster runs as
//! nobody and jitd in a private mount namespace (tests/src/postgres.rs, tests/src/host.rs).
//! Both databases live in temporary directories, so point TMPDIR at a disk: on a tmpfs (as /tmp
//! is under scripts/no-leftovers.sh) a commit's flush costs nothing and the figures flatter.
//! `make bench-server` does. The PostgreSQL cluster runs with fsync and synchronous commit on,
//! as SQLite runs with `synchronous = FULL`.
//!
//! For each database it starts a jit-server of its own on loopback (release build, rate limits
//! on the unauthenticated endpoints raised so that the setup's enrollments are not refused,
//! TOTP skew 2 so that each person has two unused codes at once), enrolls N persons, each with a
//! shared account of their own (a reservation is exclusive to its account), joins one host
//! through the API and one through the real jitd, then measures, 32 requests in flight over 32
//! connections:
//! - reservations created (each person reserves their account);
//! - login begins answered with a challenge (the host's first call of a login);
//! - verify-and-consume (the host sends each login's code: the step is used, the reservation
//!   consumed, one audit row);
//! - releases;
//! - an audited write under load: for S seconds, login begins for accounts nobody holds, each
//!   refused in one transaction with one audit row;
//! - one after another, whole logins through jitd's PAM socket, as pam_jit speaks it: the time
//!   from the auth start to the prompt (the login decision) and from the answer to the grant.

use std::collections::BTreeMap;
use std::future::Future;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use jit_proto::api::{
    EnrollConfirm, EnrollStart, LoginBegun, LoginVerified, LoginVerify, NewAccount, NewMember,
    NewPerson, NewReservation, PosixIdentity, ReleaseRequest,
};
use jit_proto::pam::{LoginContext, PROTOCOL_VERSION, Request, Step};
use jit_proto::{AccountName, GroupName, HostName, PersonName, Secret};
use jit_tests::flood::{login_begin, percentile};
use jit_tests::host::{Host, guards};
use jit_tests::{Postgres, Server, World, client_for, join_host_creds, runtime, totp_at};

/// Requests in flight at once, each on its own connection.
const CONNECTIONS: usize = 32;
/// The server's TOTP window in the benchmark: each person has codes for the next 2 steps.
const SKEW: i64 = 2;
/// Whole logins through jitd, one after another.
const JITD_LOGINS: usize = 200;
/// First uid of the benchmark's accounts.
const UID_BASE: u32 = 62000;

/// Raised limits: the setup enrolls every person from this one address.
const SERVER_TOML: &str = "[rate_limits]\nper_address_burst = 1000000\n\
                           per_address_per_minute = 1000000\nper_name_burst = 1000000\n\
                           per_name_per_minute = 1000000\n[totp]\nskew_steps = 2\n";

/// One figure: how many calls, in how long, and each call's time.
#[derive(Default)]
struct Figure {
    calls: usize,
    elapsed: Duration,
    took: Vec<Duration>,
}

impl Figure {
    fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    fn merge(&mut self, other: Figure) {
        self.calls += other.calls;
        self.elapsed += other.elapsed;
        self.took.extend(other.took);
    }

    fn cell(&self) -> String {
        if self.calls == 0 {
            return "—".into();
        }
        format!(
            "{:.0}/s, p50 {}, p99 {}",
            self.rate(),
            ms(percentile(&self.took, 50.0)),
            ms(percentile(&self.took, 99.0))
        )
    }

    fn latency_cell(&self) -> String {
        format!(
            "p50 {}, p99 {} (n={})",
            ms(percentile(&self.took, 50.0)),
            ms(percentile(&self.took, 99.0)),
            self.took.len()
        )
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Keeps `CONNECTIONS` calls in flight: each worker takes the next number `i` and runs
/// `call(i)` until it answers None. Returns the whole time and each call's.
async fn in_flight<F, Fut>(call: F) -> Figure
where
    F: Fn(usize) -> Option<Fut> + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let call = Arc::new(call);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (call, next) = (call.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut took = Vec::new();
            while let Some(one) = call(next.fetch_add(1, Ordering::SeqCst)) {
                let t = Instant::now();
                one.await;
                took.push(t.elapsed());
            }
            took
        }));
    }
    let mut took = Vec::new();
    for t in tasks {
        took.extend(t.await.expect("worker"));
    }
    Figure {
        calls: took.len(),
        elapsed: start.elapsed(),
        took,
    }
}

/// Runs `call` on every item, `CONNECTIONS` at a time.
async fn concurrently<T, F, Fut>(items: Vec<T>, call: F) -> Figure
where
    T: Send + Sync + 'static,
    F: Fn(Arc<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let items: Vec<Arc<T>> = items.into_iter().map(Arc::new).collect();
    in_flight(move |i| items.get(i).cloned().map(&call)).await
}

/// A benchmark person: their client (with their token), their own account, their TOTP secret and newest used step.
struct Person {
    client: jit_client::Client,
    account: AccountName,
    uid: u32,
    secret: Vec<u8>,
    last_step: std::sync::atomic::AtomicI64,
}

impl Person {
    /// A code of a step the server has not seen from this person, if the window holds one.
    fn next_code(&self) -> Option<String> {
        let now_step = jit_tests::now() / 30;
        let step = (now_step - SKEW).max(self.last_step.load(Ordering::SeqCst) + 1);
        (step <= now_step + SKEW).then(|| {
            self.last_step.store(step, Ordering::SeqCst);
            totp_at(&self.secret, step * 30)
        })
    }
}

/// Waits until every person has an unused code (at most one 30 s step).
fn wait_for_codes(persons: &[Arc<Person>]) {
    loop {
        let now_step = jit_tests::now() / 30;
        let ready = persons
            .iter()
            .all(|p| p.last_step.load(Ordering::SeqCst) < now_step + SKEW);
        if ready {
            return;
        }
        let wait = 30 - jit_tests::now() % 30;
        println!("  (waiting {wait} s for the next TOTP step: each step is accepted once)");
        std::thread::sleep(Duration::from_secs(wait as u64));
    }
}

/// Everything one database's run measures.
#[derive(Default)]
struct Results {
    figures: BTreeMap<&'static str, String>,
}

fn run(database: &str, persons_n: usize, seconds: u64) -> Results {
    println!("== {database}: starting a server");
    let mut server = Server::start_on(match database {
        "postgres" => Some(Postgres::start_durable()),
        _ => None,
    });
    let addr = server.addr();
    // A failed call says only "internal server error": show the server's warnings and errors
    // once, above the panic.
    let log = server.dir.path().join("server.log");
    let default_hook = std::panic::take_hook();
    let shown = std::sync::Once::new();
    std::panic::set_hook(Box::new(move |info| {
        shown.call_once(|| {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            for line in text.lines().filter(|l| !l.contains(" INFO ")).take(30) {
                eprintln!("server: {line}");
            }
        });
        default_hook(info);
    }));
    server.kill();
    server.run_with_config(&addr, SERVER_TOML);
    let w = World::on(server);
    let rt = runtime();
    let admin = client_for(&w.admin);
    let host_creds = join_host_creds(&rt, &w.join_token);
    let host = host_creds.client();
    let ops = GroupName::new("ops").expect("group");

    println!("== {database}: enrolling {persons_n} persons, each with an account");
    let setup = Instant::now();
    let template = Arc::new(admin.clone());
    let persons: Vec<Arc<Person>> = rt.block_on(async {
        let out = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (admin, out2, ops2) = (template.clone(), out.clone(), ops.clone());
        concurrently((0..persons_n).collect(), move |i: Arc<usize>| {
            let (admin, out, ops) = (admin.clone(), out2.clone(), ops2.clone());
            async move {
                let i = *i;
                let name = PersonName::new(&format!("p{i}")).expect("person name");
                let issued = admin
                    .add_person(&NewPerson {
                        name: name.clone(),
                        display_name: None,
                        admin: false,
                    })
                    .await
                    .expect("add person");
                let code = Secret::new(issued.enrollment_code.clone());
                let started = admin
                    .enroll_start(&EnrollStart {
                        enrollment_code: code.clone(),
                    })
                    .await
                    .expect("enroll start");
                let secret = jit_tests::secret_of(started.otpauth_uri.expose());
                let step = jit_tests::now() / 30;
                let enrolled = admin
                    .enroll_confirm(&EnrollConfirm {
                        enrollment_code: code,
                        code: Secret::new(totp_at(&secret, step * 30)),
                    })
                    .await
                    .expect("enroll confirm");
                admin
                    .add_member(
                        &ops,
                        &NewMember {
                            person: name.clone(),
                        },
                    )
                    .await
                    .expect("add member");
                let uid = UID_BASE + i as u32;
                let account = AccountName::new(&format!("b{i}")).expect("account name");
                admin
                    .add_account(&NewAccount {
                        name: account.clone(),
                        posix: Some(PosixIdentity {
                            uid,
                            gid: uid,
                            gecos: String::new(),
                            home: "/home/b".into(),
                            shell: "/bin/sh".into(),
                            unix_groups: Vec::new(),
                        }),
                        groups: vec![ops.clone()],
                        default_ttl_secs: Some(1800),
                        max_ttl_secs: Some(1800),
                        host_patterns: vec!["web*".into()],
                        host_labels: Vec::new(),
                        offline: Default::default(),
                        factor: Default::default(),
                        end_session_at_expiry: false,
                    })
                    .await
                    .expect("add account");
                out.lock().expect("lock").push(Arc::new(Person {
                    client: admin.with_credential(enrolled.token),
                    account,
                    uid,
                    secret,
                    last_step: std::sync::atomic::AtomicI64::new(step),
                }));
            }
        })
        .await;
        out.lock().expect("lock").clone()
    });
    println!(
        "   {} persons and accounts in {:.1?}",
        persons.len(),
        setup.elapsed()
    );

    let web01 = HostName::new("web01").expect("host name");
    let mut reserve = Figure::default();
    let mut begin = Figure::default();
    let mut verify = Figure::default();
    let mut release = Figure::default();
    for round in 0..2 {
        wait_for_codes(&persons);
        println!("== {database}: round {round}: reserve, begin, verify-and-consume, release");
        let h = web01.clone();
        reserve.merge(
            rt.block_on(concurrently(persons.clone(), move |p: Arc<Arc<Person>>| {
                let h = h.clone();
                async move {
                    p.client
                        .reserve(&NewReservation {
                            account: p.account.clone(),
                            host: h,
                            duration_secs: Some(1800),
                            reason: None,
                        })
                        .await
                        .expect("reserve");
                }
            })),
        );
        let attempts = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (hc, at) = (host.clone(), attempts.clone());
        begin.merge(
            rt.block_on(concurrently(persons.clone(), move |p: Arc<Arc<Person>>| {
                let (hc, at) = (hc.clone(), at.clone());
                async move {
                    match hc.login_begin(&login_begin(p.account.as_str())).await {
                        Ok(LoginBegun::Challenge { attempt, .. }) => {
                            at.lock().expect("lock").push((Arc::clone(&*p), attempt))
                        }
                        other => panic!("login of {} not challenged: {other:?}", p.account),
                    }
                }
            })),
        );
        let attempts = std::mem::take(&mut *attempts.lock().expect("lock"));
        let hc = host.clone();
        verify.merge(rt.block_on(concurrently(
            attempts,
            move |a: Arc<(Arc<Person>, String)>| {
                let hc = hc.clone();
                let code = a.0.next_code().expect("a code (waited for one)");
                async move {
                    match hc
                        .login_verify(
                            &a.1,
                            &LoginVerify {
                                code: Secret::new(code),
                            },
                        )
                        .await
                    {
                        Ok(LoginVerified::Granted { .. }) => {}
                        other => panic!("login of {} not granted: {other:?}", a.0.account),
                    }
                }
            },
        )));
        let h = web01.clone();
        release.merge(
            rt.block_on(concurrently(persons.clone(), move |p: Arc<Arc<Person>>| {
                let h = h.clone();
                async move {
                    p.client
                        .release(&ReleaseRequest {
                            account: p.account.clone(),
                            host: Some(h),
                        })
                        .await
                        .expect("release");
                }
            })),
        );
    }

    println!("== {database}: {seconds} s of refused login begins (one audit row each)");
    let refused = {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let (hc, persons) = (host.clone(), persons.clone());
        rt.block_on(in_flight(move |i| {
            let (hc, p) = (hc.clone(), persons[i % persons.len()].clone());
            (Instant::now() < deadline).then_some(async move {
                match hc.login_begin(&login_begin(p.account.as_str())).await {
                    Ok(LoginBegun::Denied { .. }) => {}
                    other => panic!("login of {} not refused: {other:?}", p.account),
                }
            })
        }))
    };

    println!("== {database}: {JITD_LOGINS} logins through jitd, one after another");
    let token = w.admin.json(&["host", "add", "web02"])["join_token"]
        .as_str()
        .expect("join token")
        .to_owned();
    let mut jitd = Host::joined(&token);
    jitd.run();
    let last = persons[persons.len().min(JITD_LOGINS) - 1].account.clone();
    jit_tests::wait_for(
        "jitd to guard the benchmark's accounts",
        Duration::from_secs(120),
        || guards(&jitd.nss_cache(), last.as_str()),
    );
    let logins: Vec<Arc<Person>> = persons.iter().take(JITD_LOGINS).cloned().collect();
    wait_for_codes(&logins);
    let web02 = HostName::new("web02").expect("host name");
    let mut decision = Figure::default();
    let mut grant = Figure::default();
    let whole = Instant::now();
    for p in &logins {
        rt.block_on(p.client.reserve(&NewReservation {
            account: p.account.clone(),
            host: web02.clone(),
            duration_secs: Some(1800),
            reason: None,
        }))
        .expect("reserve");
        let (d, g) = login_through_jitd(&jitd, p);
        decision.took.push(d);
        grant.took.push(g);
        rt.block_on(p.client.release(&ReleaseRequest {
            account: p.account.clone(),
            host: Some(web02.clone()),
        }))
        .expect("release");
    }
    decision.calls = logins.len();
    decision.elapsed = whole.elapsed();
    drop(jitd);

    let mut r = Results::default();
    r.figures.insert("1 reservations created", reserve.cell());
    r.figures.insert("2 login begin, challenged", begin.cell());
    r.figures.insert("3 verify-and-consume", verify.cell());
    r.figures.insert("4 releases", release.cell());
    r.figures.insert(
        "5 audited write under load (refused login begin)",
        refused.cell(),
    );
    r.figures.insert(
        "6 login decision through jitd (auth start to prompt)",
        decision.latency_cell(),
    );
    r.figures.insert(
        "7 code to grant through jitd (verify-and-consume)",
        grant.latency_cell(),
    );
    for (k, v) in &r.figures {
        println!("   {k}: {v}");
    }
    // This database's server is gone: the next run installs a hook for its own log.
    drop(std::panic::take_hook());
    r
}

/// One login as pam_jit makes it: hello, auth start (timed to the prompt), the code (timed to
/// the grant).
fn login_through_jitd(host: &Host, p: &Person) -> (Duration, Duration) {
    let mut s = UnixStream::connect(host.socket()).expect("connect to jitd");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let send = |s: &mut UnixStream, r: &Request| {
        jit_proto::frame::write_msg(s, r).expect("write to jitd");
    };
    let recv = |s: &mut UnixStream| -> Step { jit_proto::frame::read_msg(s).expect("jitd reply") };
    send(
        &mut s,
        &Request::Hello {
            version: PROTOCOL_VERSION,
        },
    );
    assert!(matches!(recv(&mut s), Step::Hello { .. }), "jitd hello");
    let start = Instant::now();
    send(
        &mut s,
        &Request::AuthStart {
            ctx: LoginContext {
                account: p.account.as_str().to_owned(),
                service: "sshd".into(),
                rhost: Some("192.0.2.10".into()),
                tty: None,
                ruser: None,
                uid: Some(p.uid),
                ssh_auth_info: None,
            },
        },
    );
    let decided = loop {
        match recv(&mut s) {
            Step::Prompt { .. } => break start.elapsed(),
            Step::Info { .. } | Step::Error { .. } => send(&mut s, &Request::Continue),
            other => panic!("login of {} through jitd: {other:?}", p.account),
        }
    };
    let code = p.next_code().expect("a code (waited for one)");
    let start = Instant::now();
    send(
        &mut s,
        &Request::Answer {
            text: Secret::new(code),
        },
    );
    loop {
        match recv(&mut s) {
            Step::Granted { .. } => return (decided, start.elapsed()),
            Step::Info { .. } | Step::Error { .. } => send(&mut s, &Request::Continue),
            other => panic!("login of {} through jitd: {other:?}", p.account),
        }
    }
}

fn main() {
    let mut databases = Vec::new();
    let mut persons = 1000;
    let mut seconds = 10;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--database" => match value().as_str() {
                d @ ("sqlite" | "postgres") => databases.push(d.to_owned()),
                d => panic!("--database {d}: sqlite or postgres"),
            },
            "--persons" => persons = value().parse().expect("--persons N"),
            "--seconds" => seconds = value().parse().expect("--seconds S"),
            _ => panic!(
                "usage: bench_server [--database sqlite|postgres]... [--persons N] [--seconds S]"
            ),
        }
    }
    if databases.is_empty() {
        databases = vec!["sqlite".into(), "postgres".into()];
    }
    let results: Vec<(String, Results)> = databases
        .iter()
        .map(|d| (d.clone(), run(d, persons, seconds)))
        .collect();
    println!();
    print!("| figure ({persons} persons, {CONNECTIONS} connections) |");
    for (d, _) in &results {
        print!(" {d} |");
    }
    println!();
    println!("|---|{}", "---|".repeat(results.len()));
    for k in results[0].1.figures.keys() {
        print!("| {} |", &k[2..]);
        for (_, r) in &results {
            print!(" {} |", r.figures[k]);
        }
        println!();
    }
}
