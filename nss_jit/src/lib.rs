//! `libnss_jit.so.2`: the glibc NSS module that makes jit's shared accounts resolvable
//! (`passwd`, `group`, `initgroups`, and a locked `shadow` entry for virtual accounts), answered
//! from the cache file jitd publishes under `/run/jitd/` (see `jit_nss_cache`).
//!
//! It is loaded into sshd, login, su, sudo and every process that calls `getpwnam`, so it must
//! never: block (no sockets; the only I/O is an `O_NONBLOCK` open and read of a local file into
//! private read-only memory, once per new file and at most once a second while it is missing or
//! bad), crash on what is done to that file (truncated or rewritten in place, the copy it answers
//! from cannot fault), panic across the FFI boundary (every export catches unwinding), deadlock a
//! forked child (fork handlers hold the lock across `fork`), allocate without bound (lookups copy
//! into glibc's buffer; the file size is capped), start a thread, or read the environment (setuid
//! programs load it; the paths are fixed). A name that is not in the cache costs a binary search
//! in that copy and, at most once per tick of the coarse clock, an `fstat` to notice a new file;
//! a host without jit pays at most one `open` a second.
//!
//! Layout: `ffi` is the thin C surface; [`state`] holds the process-wide copy and enumeration
//! cursors; [`mapping`] copies the file and notices when it changes; [`lookup`] turns cache
//! entries into C structs via [`buffer`] and [`gid_list`].
//!
//! Hand-written glue on std, libc and jit's own `jit_nss_cache` (the file format, std only), so no
//! LGPL code (such as the `libnss` crate) is linked, nor any JSON or crypto code.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod buffer;
pub mod cursor;
mod ffi;
pub mod gid_list;
pub mod lookup;
pub mod mapping;
pub mod state;
pub mod status;
#[cfg(test)]
mod test_support;
