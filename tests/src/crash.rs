//! Crash durability: concurrent clients reserve and release shared accounts while the server is
//! killed with SIGKILL at random moments and started again on the same address. Afterwards
//! (after one more kill), every reservation a client saw acknowledged must be in the database,
//! every acknowledged release must have stuck, no account was ever held twice on a host at the
//! same time, and the audit's hash chain must hold.
//!
//! Shared by `scripts/crash-durability.sh` (10,000 reservations, through the
//! `crash_durability` example) and the short run in the test suite.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jit_client::{Client, ClientError};
use jit_proto::api::{ErrorCode, NewReservation, ReleaseRequest, ReservationState};
use jit_proto::{AccountName, HostName};

use crate::{Jitctl, Server, client_for, enroll};

/// Shared accounts the clients compete for (on one host).
const ACCOUNTS: usize = 4;

/// What one run saw and found.
#[derive(Debug, Default)]
pub struct CrashReport {
    /// Reservations a client saw acknowledged (a 200 with the reservation).
    pub acknowledged: u64,
    /// Releases a client saw acknowledged.
    pub releases_acknowledged: u64,
    /// Requests that got no answer (the server died under them).
    pub unanswered: u64,
    /// Reservations refused because another client held the account (409).
    pub taken: u64,
    /// Times the server was killed with SIGKILL.
    pub kills: u64,
    /// Acknowledged reservations missing from the database after the last crash.
    pub lost: Vec<i64>,
    /// Acknowledged releases whose reservation is not released in the database.
    pub lost_releases: Vec<i64>,
    /// Two clients that held one account at once, as the clients saw it (from the
    /// acknowledgement of one's reservation to the moment it asked to release it: a span inside
    /// the true holding), or a reservation still active in the database when a later one of the
    /// same account and host was made.
    pub held_twice: Vec<String>,
    /// Rows in the reservations table at the end.
    pub rows: u64,
    /// `jitctl audit verify` held after the crashes.
    pub audit_chain_holds: bool,
    pub elapsed: Duration,
}

/// A small xorshift generator: the kill times need to be unpredictable, not cryptographic.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn account(i: usize) -> AccountName {
    AccountName::new(&format!("acct{i}")).expect("account name")
}

fn transient(e: &ClientError) -> bool {
    !matches!(e, ClientError::Api { code, .. } if *code != ErrorCode::Internal)
}

/// Gives back whatever this client holds (after a request that got no answer, which may or may
/// not have been committed), retrying until the server answers.
async fn release_all_held(client: &Client, releases: &AtomicU64) {
    loop {
        match client.reservations(false).await {
            Ok(list) => {
                for r in list
                    .reservations
                    .iter()
                    .filter(|r| r.state == ReservationState::Active)
                {
                    release(client, &r.account, releases).await;
                }
                return;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Releases this client's reservation of `account` on web01; true once acknowledged.
async fn release(client: &Client, account: &AccountName, releases: &AtomicU64) -> Vec<i64> {
    loop {
        let req = ReleaseRequest {
            account: account.clone(),
            host: Some(HostName::new("web01").expect("host")),
        };
        match client.release(&req).await {
            Ok(r) => {
                releases.fetch_add(1, Ordering::SeqCst);
                return r.released.iter().map(|r| r.id).collect();
            }
            // Nothing held: an earlier try was committed before the server died.
            Err(ClientError::Api {
                code: ErrorCode::NotFound,
                ..
            }) => return Vec::new(),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Runs `target` acknowledged reservations by `clients` concurrent clients, killing the server
/// every 0.3 to 1.5 s.
pub fn run(target: u64, clients: usize, seed: u64) -> CrashReport {
    let start = Instant::now();
    let server = Server::start();
    let admin = Jitctl::admin(&server);
    admin.ok(&["group", "add", "ops"]);
    for i in 0..ACCOUNTS {
        let name = format!("acct{i}");
        let id = (61000 + i).to_string();
        admin.ok(&[
            "account",
            "add",
            &name,
            "--uid",
            &id,
            "--gid",
            &id,
            "--home",
            "/home/acct",
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
    }
    admin.ok(&["host", "add", "web01"]);
    let persons: Vec<Client> = (0..clients)
        .map(|i| {
            let name = format!("c{i}");
            let p = enroll(&server, &admin, &name);
            admin.ok(&["group", "add-member", "ops", &name]);
            client_for(&p.jitctl)
        })
        .collect();

    let server = Arc::new(Mutex::new(server));
    let done = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicU64::new(0));
    let killer = {
        let (server, done, kills) = (server.clone(), done.clone(), kills.clone());
        std::thread::spawn(move || {
            let mut rng = Rng(seed | 1);
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(300 + rng.below(1200)));
                if done.load(Ordering::SeqCst) {
                    break;
                }
                let mut s = server.lock().unwrap_or_else(|p| p.into_inner());
                s.restart();
                kills.fetch_add(1, Ordering::SeqCst);
            }
        })
    };

    let acked = Arc::new(Mutex::new(Vec::<i64>::new()));
    let held = Arc::new(Mutex::new(Vec::<(usize, Instant, Instant, i64)>::new()));
    let released = Arc::new(Mutex::new(Vec::<i64>::new()));
    let count = Arc::new(AtomicU64::new(0));
    let unanswered = Arc::new(AtomicU64::new(0));
    let taken = Arc::new(AtomicU64::new(0));
    let releases = Arc::new(AtomicU64::new(0));
    let rt = crate::runtime();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for (i, client) in persons.into_iter().enumerate() {
            let (acked, held, released, count, unanswered, taken, releases) = (
                acked.clone(),
                held.clone(),
                released.clone(),
                count.clone(),
                unanswered.clone(),
                taken.clone(),
                releases.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut rng = Rng(seed.wrapping_add(i as u64 * 7919) | 1);
                while count.load(Ordering::SeqCst) < target {
                    let n = rng.below(ACCOUNTS as u64) as usize;
                    let a = account(n);
                    let req = NewReservation {
                        account: a.clone(),
                        host: HostName::new("web01").expect("host"),
                        duration_secs: Some(300),
                        reason: None,
                    };
                    match client.reserve(&req).await {
                        Ok(r) => {
                            let from = Instant::now();
                            acked.lock().unwrap_or_else(|p| p.into_inner()).push(r.id);
                            count.fetch_add(1, Ordering::SeqCst);
                            held.lock().unwrap_or_else(|p| p.into_inner()).push((
                                n,
                                from,
                                Instant::now(),
                                r.id,
                            ));
                            let ids = release(&client, &a, &releases).await;
                            released
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .extend(ids);
                        }
                        Err(ClientError::Api {
                            code: ErrorCode::ReservationTaken,
                            ..
                        }) => {
                            taken.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) if transient(&e) => {
                            unanswered.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            release_all_held(&client, &releases).await;
                        }
                        Err(e) => panic!("client {i}: unexpected answer: {e}"),
                    }
                }
            }));
        }
        for t in tasks {
            t.await.expect("client task");
        }
    });
    done.store(true, Ordering::SeqCst);
    killer.join().expect("killer thread");

    // One last crash, then look at what the database kept.
    let mut server = Arc::try_unwrap(server)
        .ok()
        .expect("killer is gone")
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    server.restart();
    let mut report = CrashReport {
        acknowledged: count.load(Ordering::SeqCst),
        releases_acknowledged: releases.load(Ordering::SeqCst),
        unanswered: unanswered.load(Ordering::SeqCst),
        taken: taken.load(Ordering::SeqCst),
        kills: kills.load(Ordering::SeqCst) + 1,
        ..CrashReport::default()
    };
    // In the database: ordered by id (the order SQLite's single writer committed them), every
    // reservation of an account and host but the newest has ended.
    let rows = server.sql(
        "SELECT id, account_id, host_id, state FROM reservations \
         ORDER BY account_id, host_id, id",
    );
    let mut stored: HashMap<i64, String> = HashMap::new();
    let mut newest: HashMap<(String, String), (i64, String)> = HashMap::new();
    for line in rows.lines() {
        let f: Vec<&str> = line.split('|').collect();
        let [id, acct, host, state] = f[..] else {
            panic!("reservation row {line:?}");
        };
        let id: i64 = id.parse().expect("id");
        stored.insert(id, state.to_owned());
        let key = (acct.to_owned(), host.to_owned());
        if let Some((prev, prev_state)) = newest.get(&key)
            && prev_state == "active"
        {
            report.held_twice.push(format!(
                "reservation {id} was made while reservation {prev} of the same account and \
                 host is still active"
            ));
        }
        newest.insert(key, (id, state.to_owned()));
    }
    // As the clients saw it: no two spans of holding one account overlap.
    let mut spans = held.lock().unwrap_or_else(|p| p.into_inner()).clone();
    spans.sort_by_key(|&(n, from, _, _)| (n, from));
    let mut until_then: HashMap<usize, (Instant, i64)> = HashMap::new();
    for (n, from, until, id) in spans {
        if let Some((end, prev)) = until_then.get(&n)
            && from < *end
        {
            report.held_twice.push(format!(
                "reservation {id} was acknowledged while reservation {prev} of the same account \
                 was still held"
            ));
        }
        let latest = match until_then.get(&n) {
            Some(&(end, prev)) if end > until => (end, prev),
            _ => (until, id),
        };
        until_then.insert(n, latest);
    }
    report.rows = stored.len() as u64;
    let acked: BTreeSet<i64> = acked
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .copied()
        .collect();
    report.lost = acked
        .iter()
        .filter(|id| !stored.contains_key(id))
        .copied()
        .collect();
    report.lost_releases = released
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|id| stored.get(id).map(String::as_str) != Some("released"))
        .copied()
        .collect();
    report.audit_chain_holds = admin.run(&["audit", "verify"]).status.success();
    report.elapsed = start.elapsed();
    report
}
