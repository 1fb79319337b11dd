//! The parts of jitd that other crates read: its command line ([`cli`], rendered into jitd(8)
//! and its shell completions) and its configuration ([`config`], whose keys and defaults
//! jitd.toml(5) and the packaged /etc/jit/jitd.toml are checked against); and the commands its
//! messages suggest ([`hints`]). The daemon itself is the `jitd` binary (main.rs).

// Same rule as the binary: no unwrap, expect or panic outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod cli;
pub mod config;
pub mod hints;
