//! `libnss_jit.so.2`: the glibc NSS module that makes jit's shared accounts resolvable
//! (`passwd`, `group`, `initgroups`, and a locked `shadow` entry for virtual accounts), answered
//! from the cache file jitd publishes under `/run/jitd/` (see `jit_proto::nss_cache`).
//!
//! It is loaded into sshd, login, su, sudo and every process that calls `getpwnam`, so it must
//! never: block (no sockets; the only I/O is an `O_NONBLOCK` open and mmap of a local file, once
//! per new file and at most once a second while it is missing), panic across the FFI
//! boundary (every export catches unwinding), allocate without bound (lookups copy into glibc's
//! buffer; the file size is capped), start a thread, or read the environment (setuid programs
//! load it; the paths are fixed). A name that is not in the cache costs a binary search in memory
//! that is already mapped; a host without jit pays at most one `open` a second.
//!
//! Layout: `ffi` is the thin C surface; [`state`] holds the process-wide mapping and
//! enumeration cursors; [`mapping`] maps and re-maps the file; [`lookup`] turns cache entries into
//! C structs via [`buffer`] and [`gid_list`].
//!
//! Hand-written glue on std and libc only, so no LGPL code (such as the `libnss` crate) is linked.

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
