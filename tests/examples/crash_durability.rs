//! Kills jit-server with SIGKILL at random moments while concurrent clients make reservations,
//! then checks that every acknowledged reservation (and release) survived and that no account
//! was held twice; prints the figures for docs/security.md. Run by
//! `scripts/crash-durability.sh`; exits non-zero when anything was lost.
//!
//! Usage: crash_durability [RESERVATIONS [CLIENTS [SEED]]] (default 10000 8, a seed from the
//! clock).

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let target: u64 = args
        .next()
        .map_or(10_000, |a| a.parse().expect("RESERVATIONS"));
    let clients: usize = args.next().map_or(8, |a| a.parse().expect("CLIENTS"));
    let seed: u64 = args.next().map_or_else(
        || u64::try_from(jit_clock::now()).unwrap_or(1),
        |a| a.parse().expect("SEED"),
    );
    println!("crash durability: {target} reservations, {clients} clients, seed {seed}");
    let r = jit_tests::crash::run(target, clients, seed);
    println!(
        "{} reservations acknowledged ({} releases), {} kill -9, {} requests unanswered, \
         {} refused as taken, {} rows in {:.1?}",
        r.acknowledged, r.releases_acknowledged, r.kills, r.unanswered, r.taken, r.rows, r.elapsed
    );
    println!(
        "lost reservations: {}; lost releases: {}; held twice: {}; audit chain holds: {}",
        r.lost.len(),
        r.lost_releases.len(),
        r.held_twice.len(),
        r.audit_chain_holds
    );
    for line in r.held_twice.iter().take(10) {
        println!("  {line}");
    }
    if r.lost.is_empty()
        && r.lost_releases.is_empty()
        && r.held_twice.is_empty()
        && r.audit_chain_holds
    {
        ExitCode::SUCCESS
    } else {
        println!("lost: {:?}\nlost releases: {:?}", r.lost, r.lost_releases);
        ExitCode::FAILURE
    }
}
