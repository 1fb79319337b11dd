//! Wire types shared by jit-server, jitctl, jit_client and jitd.
//!
//! - [`name`]: validated names (accounts, persons, groups, hosts, labels). Validate once, at the edge.
//! - [`api`]: the JSON bodies of the server's HTTPS API (`/v1/…`).
//! - [`join_token`]: the one-time token that joins a host to the server.
//! - [`fingerprint`]: the `SHA256:…` CA fingerprint that jitctl and jitd pin.
//! - [`timefmt`]: how jit prints and reads times.
//! - `offline` (feature `offline`): hashed codes a host keeps to decide while the server is down.
//! - `ssh_key` (feature `ssh-keys`): persons' ssh public keys, validated, and their fingerprints.
//! - `qr` (feature `qr`): QR codes drawn with terminal block characters.
//! - [`pam`], [`frame`], [`secret`], [`json_error`] and [`text`]: re-exported from `jit_pam_proto`, the
//!   protocol between pam_jit and jitd.
//!
//! The PAM and NSS modules do not link this crate: they use `jit_pam_proto` and `jit_nss_cache`,
//! which carry no crypto, so no feature enabled here (such as `offline`) can reach them.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod api;
pub mod fingerprint;
pub mod join_token;
pub mod name;
#[cfg(feature = "offline")]
pub mod offline;
#[cfg(feature = "qr")]
pub mod qr;
#[cfg(feature = "ssh-keys")]
pub mod ssh_key;
pub mod timefmt;

pub use jit_pam_proto::{Secret, frame, json_error, pam, secret, text};
pub use name::{AccountName, GroupName, HostName, Label, NameError, PersonName};
