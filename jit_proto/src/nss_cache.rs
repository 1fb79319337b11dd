//! The NSS cache file: every shared account of this host, as jitd publishes it for nss_jit.
//!
//! STUB: the format, reader and writer are being written. The signatures below are the contract
//! that jitd (writer) and pam_jit (fallback reader) rely on; keep them.

use std::io;
use std::path::Path;

/// Where jitd publishes the file (tmpfs; replaced atomically).
pub const DEFAULT_RUN_PATH: &str = "/run/jitd/nss.cache";
/// Where jitd keeps a copy that survives a reboot while the server is unreachable.
pub const DEFAULT_STATE_PATH: &str = "/var/lib/jitd/nss.cache";

/// What jitd writes: public account data only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheContents {
    /// Increases with every change jitd publishes.
    pub generation: u64,
    /// Virtual accounts, served as passwd (and a locked shadow) entries.
    pub users: Vec<CacheUser>,
    /// Groups served by nss_jit: each virtual account's primary group and supplementary groups.
    pub groups: Vec<CacheGroup>,
    /// Every shared account name on this host, including ones that exist in the host's own
    /// files (`root`). pam_jit uses this to fail closed when jitd is unreachable.
    pub shared: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheGroup {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache file is corrupt: {0}")]
    Corrupt(String),
    #[error("cannot read cache file: {0}")]
    Io(#[from] io::Error),
}

/// Serializes `contents` into the file format.
pub fn encode(_contents: &CacheContents) -> Vec<u8> {
    Vec::new()
}

/// Atomically replaces the file at `path` with `contents`.
pub fn publish(_path: &Path, _contents: &CacheContents) -> io::Result<()> {
    Err(io::Error::other("not written yet"))
}

/// Reads the file at `path` (not via mmap; this is for pam_jit's fallback, not the NSS hot path)
/// and says whether `name` is a shared account on this host.
pub fn is_shared_in_file(_path: &Path, _name: &[u8]) -> Result<bool, CacheError> {
    Err(CacheError::Corrupt("not written yet".into()))
}
