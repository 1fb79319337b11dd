//! What one guess against an offline grant costs, and how long searching one time step's million
//! codes takes, at the format the server issues (`jit_proto::offline::Kdf::CURRENT`).
//!
//! `cargo run --release -p jit_proto --features offline --example offline_cost [THREADS] [HASHES]`
//!
//! Hashes HASHES codes (default 40) on one thread for the cost per guess, then HASHES on each of
//! THREADS threads (default 2) at once for the throughput of the machine; the search time is a
//! million codes over that throughput. Prints one JSON line.

use std::time::Instant;

use jit_proto::offline::{Kdf, hash_code};

fn main() {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2);
    let hashes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(40);
    let kdf = Kdf::CURRENT;
    let salt = [7u8; 16];
    let guess = |i: usize| {
        let code = format!("{:06}", i % 1_000_000);
        std::hint::black_box(hash_code(&code, &salt, 56_666_666, &kdf));
    };
    guess(0);
    let start = Instant::now();
    for i in 0..hashes {
        guess(i);
    }
    let one = start.elapsed().as_secs_f64() / hashes as f64;
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                for i in 0..hashes {
                    guess(t * hashes + i);
                }
            });
        }
    });
    let per_sec = (threads * hashes) as f64 / start.elapsed().as_secs_f64();
    let search = 1_000_000.0 / per_sec;
    println!(
        "{{\"kdf\":\"{}\",\"ms_per_guess\":{:.1},\"threads\":{threads},\"guesses_per_sec\":{:.1},\
         \"hours_per_step_searched\":{:.2}}}",
        kdf.name(),
        one * 1000.0,
        per_sec,
        search / 3600.0
    );
}
