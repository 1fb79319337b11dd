//! The host's one list of shared accounts: the NSS cache file jitd publishes, and how pam_jit,
//! nss_jit and jitd read it.
//!
//! - [`write`]: jitd, the only writer, serializes [`CacheContents`] and replaces the file
//!   atomically ([`publish`]).
//! - [`read`]: [`CacheView`] validates the bytes once, then answers lookups from them without
//!   copying or allocating. `libnss_jit.so.2` serves `getpwnam` and friends from a private copy
//!   of the file; pam_jit and jitd ask it which names are guarded.
//! - [`guard`]: the one answer to "is this login jit's to check?", from the list, the
//!   [`joined`] marker, the name and its uid. pam_jit (when jitd cannot be asked), jitd and
//!   `jitd authorized-keys` all call it.
//! - [`joined`]: the small file that tells a joined host (and its always-guarded names) from
//!   one that never joined, even when no list can be read.
//!
//! - [`uid`]: the uid a login name resolves to (`getpwnam_r`), for the rule's uid half.
//!
//! This crate is linked into both modules: std and libc only, and it must never panic, whatever
//! the bytes: every access goes through `get()`, every sum is checked, and the whole file is
//! validated once by [`CacheView::parse`] so that lookups can trust it.
//!
//! # Format (version 2)
//!
//! All integers are little-endian. The file is a fixed 96-byte header, then fixed-size tables,
//! then one string table. Every string is a `StrRef` (8 bytes: `offset: u32, len: u32`) relative
//! to the start of the string table; strings are not NUL-terminated and may be shared.
//!
//! ```text
//! offset size  header field
//!      0    8  magic  b"JIT-NSS\0"
//!      8    4  version (2)
//!     12    4  stale: 0 when published; jitd writes 1 here after a newer file replaced this one
//!     16    8  checksum of bytes [24, file_len) (see `checksum`)
//!     24    8  generation (increases with every publish)
//!     32    4  file_len (must equal the file's size)
//!     36    4  user_count      40 4 group_count    44 4 member_count    48 4 guarded_count
//!     52    4  guarded_uid_count
//!     56    4  users_off       60 4 uids_off       64 4 groups_off      68 4 gids_off
//!     72    4  members_off     76 4 member_index_off 80 4 guarded_off   84 4 guarded_uids_off
//!     88    4  strings_off     92 4 strings_len
//!
//! table         record (bytes)                                          order (strict)
//! users         name, uid, gid, gecos, home, shell            (40)      by name
//! uids          uid, user index                               (8)       by (uid, index)
//! groups        name, gid, first member, member count         (20)      by name
//! gids          gid, group index                              (8)       by (gid, index)
//! members       member name (StrRef); a group's members are
//!               members[first .. first + count]               (8)       as jitd listed them
//! member_index  member name, group index                      (12)      by (name, index)
//! guarded       name, account, uid, flags (bit 0: uid known)  (24)      by name
//! guarded_uids  uid, guarded index (records with a uid only)  (8)       by (uid, index)
//! ```
//!
//! Names compare as bytes. Lookups are binary searches over these fixed-size records, so a miss
//! costs a handful of comparisons. `member_index` answers `initgroups` without a scan, and
//! `guarded_uids` tells at once whether a uid belongs to a shared account.
//!
//! # Replacing the file
//!
//! [`publish`] writes a temporary file, fsyncs it, renames it over the old one and fsyncs the
//! directory. It then writes a non-zero value into the replaced file's `stale` word (outside the
//! checksum), for readers that keep a shared mapping of the file. nss_jit does not: it reads the
//! file into private read-only memory and notices a replacement through `fstat` of the file it
//! keeps open (`st_nlink` drops to 0), at most once per clock tick (see nss_jit's `mapping.rs`);
//! a copy that already carries the mark is discarded. Nothing else in a published file ever
//! changes, and a published file is never truncated.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod checksum;
pub mod guard;
pub mod joined;
pub mod read;
pub mod uid;
pub mod write;

pub use guard::{Verdict, decide};
pub use joined::Joined;
pub use read::{
    CacheError, CacheView, Group, Groups, Guarded, GuardedNames, MemberGroups, Names, User, Users,
    read_file,
};
pub use uid::uid_of;
pub use write::{CacheContents, CacheGroup, CacheGuarded, CacheUser, encode, publish, seal};

/// Where jitd publishes the file (tmpfs; replaced atomically).
pub const DEFAULT_RUN_PATH: &str = "/run/jitd/nss.cache";
/// Where jitd keeps a copy that survives a reboot while the server is unreachable.
pub const DEFAULT_STATE_PATH: &str = "/var/lib/jitd/nss.cache";

/// First 8 bytes of every cache file.
pub const MAGIC: [u8; 8] = *b"JIT-NSS\0";
/// The format version this code reads and writes.
pub const VERSION: u32 = 2;
/// Byte offset of the 4-byte `stale` word. It is 4-byte aligned in the file, so a page-aligned
/// mapping can load it atomically.
pub const STALE_OFFSET: usize = 12;
/// Value [`publish`] writes into the `stale` word of the file it replaced.
pub const STALE_MARK: u32 = 1;
/// Size of the header.
pub const HEADER_LEN: usize = 96;
/// Readers refuse larger files (that is hundreds of thousands of accounts), so a bad file cannot
/// make them read or map without bound.
pub const MAX_FILE_LEN: usize = 64 * 1024 * 1024;

const CHECKSUM_OFFSET: usize = 16;
const CHECKED_FROM: usize = 24;

const STR_REF: usize = 8;
const USER_REC: usize = 40;
const ID_REC: usize = 8;
const GROUP_REC: usize = 20;
const MEMBER_REC: usize = STR_REF;
const MEMBER_INDEX_REC: usize = 12;
const GUARDED_REC: usize = 24;
/// Bit of a guarded record's flags: its uid is known.
const UID_KNOWN: u32 = 1;

#[cfg(test)]
mod tests;
