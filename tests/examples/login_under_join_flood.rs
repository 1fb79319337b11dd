//! Measures the login decision (a host's `POST /v1/host/logins` for a reserved account, answered
//! with a challenge) with and without a flood of 10,000 bad joins from one address, and prints
//! the percentiles for docs/benchmarks.md. A measurement, not a test: nothing here asserts a
//! time.
//!
//! Run: `cargo build --workspace && cargo run -p jit_tests --example login_under_join_flood`
//! (add `--release` to both for release figures; the binaries are taken from the same profile).

use std::time::Duration;

use jit_tests::flood::{bad_joins, login_decisions, percentile};
use jit_tests::{World, join_host, runtime};

const LOGINS: usize = 400;
const JOINS: u64 = 10_000;

fn report(what: &str, took: &[Duration]) {
    println!(
        "{what:<28} n={:<5} p50={:>7.2?} p90={:>7.2?} p99={:>7.2?} max={:>7.2?}",
        took.len(),
        percentile(took, 50.0),
        percentile(took, 90.0),
        percentile(took, 99.0),
        percentile(took, 100.0),
    );
}

fn main() {
    let w = World::new();
    let rt = runtime();
    let web01 = join_host(&rt, &w.join_token);
    w.alice
        .jitctl
        .ok(&["reserve", "admin", "--host", "web01", "--for", "30m"]);
    let web02_token = w.admin.json(&["host", "add", "web02"])["join_token"]
        .as_str()
        .expect("join token")
        .to_owned();
    // Warm up connections and caches, then measure alone.
    rt.block_on(login_decisions(&web01, "admin", 20));
    let quiet = rt.block_on(login_decisions(&web01, "admin", LOGINS));
    report("login decision, quiet", &quiet);
    let (answers, loud, flood_time) = rt.block_on(async {
        let start = std::time::Instant::now();
        let flood = tokio::spawn(async move { bad_joins(&web02_token, JOINS, 16).await });
        let mut took = Vec::new();
        while !flood.is_finished() {
            took.extend(login_decisions(&web01, "admin", 10).await);
        }
        let answers = flood.await.expect("flood");
        (answers, took, start.elapsed())
    });
    report("login decision, join flood", &loud);
    println!(
        "flood: {JOINS} bad joins in {flood_time:.1?} ({:.0}/s): {} answered 429, {} refused \
         after the token check, {} other",
        JOINS as f64 / flood_time.as_secs_f64(),
        answers.rate_limited,
        answers.refused,
        answers.other
    );
}
