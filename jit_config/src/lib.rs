//! What jit-server (`server.toml`) and jitd (`jitd.toml`) share for reading their configuration:
//! durations written as `"30s"` ([`Span`]), and errors that name the file, the line and the key
//! ([`ConfigError`]). Each program keeps its own settings, defaults and checks.
//!
//! Not for the PAM and NSS modules: they read no TOML, and stay small.

mod error;
mod span;

pub use error::{ConfigError, from_toml, read};
pub use span::Span;
