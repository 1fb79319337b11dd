//! The protocol between `pam_jit.so` and jitd on the PAM socket, and nothing else.
//!
//! - [`pam`]: the requests pam_jit sends and the steps jitd answers with.
//! - [`frame`]: length-prefixed frames with a hard size cap.
//! - [`secret`]: [`Secret`], a string that is zeroized on drop and never printed.
//! - [`json_error`]: JSON decoding errors described without repeating any value (codes, tokens).
//! - [`text`]: control and Unicode format characters, refused in stored text and escaped in logs.
//!
//! This crate is linked into `pam_jit.so`, which sshd, login, su and sudo load: it must never
//! panic on bad input, and it depends on serde, serde_json and zeroize only (no crypto, no TLS,
//! no async runtime). jit_proto re-exports it, so the rest of jit sees one crate.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod frame;
pub mod json_error;
pub mod pam;
pub mod secret;
pub mod text;

pub use secret::Secret;
