//! Benchmark of hosts watching the server (`GET /v1/host/watch`): the server's memory per held
//! watch, and how long a change takes to reach the watchers, idle and with every watch held.
//!
//! `bench_watch [WATCHERS]` (default 10000; as root or with `ulimit -n` above WATCHERS + 100).
//! It starts a jit-server of its own (SQLite, loopback), joins one host, and opens WATCHERS
//! watches, each on its own TLS connection (its own client), as that many hosts would. They share
//! one host credential: a watch costs the same whatever host it is for. The change is an admin's
//! `jitctl account add`, timed from the command's start, so the figures include jitctl's own
//! start and TLS handshake (an upper bound on the server's share).

use std::sync::Arc;
use std::time::{Duration, Instant};

use jit_tests::{Jitctl, Server, join_host_creds, runtime};

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// CPU time (user and system) of process `pid` so far.
fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').expect("stat") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / hz.max(1))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn add_account(admin: &Jitctl, n: usize) {
    let name = format!("bench{n}");
    let uid = (61000 + n).to_string();
    admin.ok(&[
        "account", "add", &name, "--uid", &uid, "--gid", &uid, "--home", "/home/b", "--shell",
        "/bin/sh", "--group", "ops", "--hosts", "web*",
    ]);
}

fn main() {
    let watchers: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("WATCHERS must be a number"))
        .unwrap_or(10_000);
    let mut server = Server::start();
    server.kill();
    server.run_with_config(
        "127.0.0.1:0",
        &format!(
            "[connections]\nmax_connections = {}\n",
            (watchers + 100).min(65536)
        ),
    );
    let pid = server.pid().expect("server pid");
    let admin = Jitctl::admin(&server);
    admin.ok(&["group", "add", "ops"]);
    let host = admin.json(&["host", "add", "web01", "--label", "web"]);
    let rt = runtime();
    let creds = join_host_creds(&rt, host["join_token"].as_str().expect("join_token"));
    let slack = Duration::from_secs(15);

    // Idle: one watcher, twenty changes one after the other.
    let one = creds.client();
    let mut seq = rt
        .block_on(one.host_watch(None, 25, slack))
        .expect("watch")
        .seq;
    let mut idle = Vec::new();
    for n in 0..20 {
        let held = rt.spawn({
            let c = one.clone();
            async move { (c.host_watch(Some(seq), 25, slack).await, Instant::now()) }
        });
        std::thread::sleep(Duration::from_millis(300));
        let t0 = Instant::now();
        add_account(&admin, n);
        let (answer, at) = rt.block_on(held).expect("task");
        let answer = answer.expect("watch");
        assert!(
            !answer.kinds.is_empty(),
            "the change was not reported: {answer:?} after {seq}"
        );
        seq = answer.seq;
        idle.push(at.saturating_duration_since(t0));
    }
    idle.sort();

    // Many: each watcher its own client, hence its own TLS connection.
    let before = rss_kib(pid);
    let clients: Vec<jit_client::Client> = (0..watchers)
        .map(|_| {
            jit_client::Client::new(
                &creds.server,
                jit_client::Trust::CaPem(creds.ca_pem.clone()),
                Some(creds.credential.clone()),
                Duration::from_secs(60),
            )
            .expect("client")
        })
        .collect();
    // Connect them (first contact), a few hundred handshakes at a time.
    let gate = Arc::new(tokio::sync::Semaphore::new(200));
    let start = rt.block_on(async {
        let mut tasks = Vec::new();
        for c in &clients {
            let c = c.clone();
            let gate = gate.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire().await.expect("semaphore");
                c.host_watch(None, 25, slack)
                    .await
                    .expect("first watch")
                    .seq
            }));
        }
        let mut seq = 0;
        for t in tasks {
            seq = seq.max(t.await.expect("task"));
        }
        seq
    });
    let connected = rss_kib(pid);
    let held: Vec<_> = clients
        .iter()
        .map(|c| {
            let c = c.clone();
            rt.spawn(async move { (c.host_watch(Some(start), 25, slack).await, Instant::now()) })
        })
        .collect();
    // Let every watch reach the server and wait there.
    std::thread::sleep(Duration::from_secs(5));
    let holding = rss_kib(pid);
    let (server_cpu, own_cpu) = (cpu(pid), cpu(std::process::id()));
    let t0 = Instant::now();
    add_account(&admin, 1000);
    let mut reached = Vec::new();
    let mut missed = 0;
    rt.block_on(async {
        for h in held {
            let (answer, at) = h.await.expect("task");
            match answer {
                Ok(a) if !a.kinds.is_empty() => reached.push(at.saturating_duration_since(t0)),
                _ => missed += 1,
            }
        }
    });
    let server_cpu = cpu(pid).saturating_sub(server_cpu);
    let own_cpu = cpu(std::process::id()).saturating_sub(own_cpu);
    reached.sort();
    let per = |after: u64| (after.saturating_sub(before)) as f64 / watchers as f64;
    println!("watchers: {watchers}");
    println!(
        "server RSS: {before} KiB before, {connected} KiB with {watchers} connections, {holding} \
         KiB with {watchers} watches held"
    );
    println!(
        "server memory per watching host (connection and held watch): {:.1} KiB",
        per(holding)
    );
    println!(
        "change to one idle watcher (20 changes): p50 {}, max {}",
        ms(percentile(&idle, 0.5)),
        ms(percentile(&idle, 1.0))
    );
    println!(
        "change to {} watchers: p50 {}, p99 {}, last {} ({missed} missed)",
        reached.len(),
        ms(percentile(&reached, 0.5)),
        ms(percentile(&reached, 0.99)),
        ms(percentile(&reached, 1.0))
    );
    println!(
        "CPU spent meanwhile: server {}, benchmark's clients {}",
        ms(server_cpu),
        ms(own_cpu)
    );
    drop(clients);
    server.kill();
}
