//! Crash durability, short: 500 reservations by 4 concurrent clients while the server is killed
//! with SIGKILL at random moments (scripts/crash-durability.sh runs 10,000).

#[test]
fn acknowledged_reservations_survive_kill_9_and_none_is_held_twice() {
    let seed = u64::try_from(jit_tests::now()).unwrap();
    let r = jit_tests::crash::run(500, 4, seed);
    assert!(r.acknowledged >= 500, "seed {seed}: {r:?}");
    assert!(r.kills >= 2, "seed {seed}: the server was killed: {r:?}");
    assert!(
        r.lost.is_empty(),
        "seed {seed}: acknowledged but lost: {r:?}"
    );
    assert!(r.lost_releases.is_empty(), "seed {seed}: {r:?}");
    assert!(r.held_twice.is_empty(), "seed {seed}: {r:?}");
    assert!(r.audit_chain_holds, "seed {seed}: {r:?}");
}
