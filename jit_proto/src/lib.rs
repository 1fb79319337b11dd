//! Wire types and framing shared by every jit part.
//!
//! - [`name`]: validated names (accounts, persons, groups, hosts, labels). Validate once, at the edge.
//! - [`api`]: the JSON bodies of the server's HTTPS API (`/v1/…`), used by jit-server, jitctl and jitd.
//! - [`pam`] and [`frame`]: the protocol between `pam_jit.so` and jitd on the PAM socket.
//! - [`nss_cache`]: the file jitd publishes and `libnss_jit.so.2` maps read-only.
//! - [`join_token`]: the one-time token that joins a host to the server.
//! - [`fingerprint`]: the `SHA256:…` CA fingerprint that jitctl and jitd pin.
//! - [`json_error`]: JSON decoding errors described without repeating any value (codes, tokens).
//! - `offline` (feature `offline`): hashed codes a host keeps to decide while the server is down.
//! - `ssh_key` (feature `ssh-keys`): persons' ssh public keys, validated, and their fingerprints.
//!
//! This crate is linked into the PAM and NSS modules: it must never panic on bad input and must
//! not pull in anything heavy (no async runtime, no TLS).

pub mod api;
pub mod fingerprint;
pub mod frame;
pub mod join_token;
pub mod json_error;
pub mod name;
pub mod nss_cache;
#[cfg(feature = "offline")]
pub mod offline;
pub mod pam;
pub mod secret;
#[cfg(feature = "ssh-keys")]
pub mod ssh_key;
pub mod timefmt;

pub use name::{AccountName, GroupName, HostName, Label, NameError, PersonName};
pub use secret::Secret;
