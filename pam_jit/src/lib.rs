//! `pam_jit.so`: the PAM module of jit. It relays jitd's prompts through the PAM conversation for
//! shared accounts, checks in the account stage that this transaction passed that auth, and tells
//! jitd about sessions. Names that are not shared accounts get `PAM_IGNORE`.
//!
//! This module is loaded into sshd, login, su and sudo. It must never:
//! - let a panic cross the FFI boundary (pam-bindings' hook wrapper catches unwinding, and the
//!   code has no `unwrap`/`expect`/`panic!` outside tests);
//! - block longer than `timeout=` on jitd for one answer (prompts wait on the person, not jitd);
//! - log or keep secrets: answers are zeroized and never logged, nor are prompt texts.
//!
//! It decides nothing itself except what to do when jitd cannot be asked (see [`relay`]).
//!
//! Layout: [`handle`] is the only code that touches libpam (with [`shims`]); [`relay`] is the
//! logic, tested without libpam; [`daemon`] talks to jitd; [`fallback`] reads the host's list of
//! guarded names (the NSS cache) and the joined marker; [`options`] parses the `/etc/pam.d` arguments. See `docs/pam_jit_module.md`.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod daemon;
pub mod fallback;
pub mod handle;
pub mod options;
pub mod relay;
mod shims;

pam::pam_hooks!(PamJit);
use handle::PamJit;
