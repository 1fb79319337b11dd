//! The NSS cache file: every shared account of this host, as jitd publishes it.
//!
//! jitd is the only writer ([`publish`]). `libnss_jit.so.2` reads the file into a private,
//! read-only copy and answers `getpwnam` and friends from it with [`CacheView`], which borrows
//! those bytes and never copies or allocates. pam_jit reads it with [`is_shared_in_file`] to fail
//! closed when jitd is unreachable. The reader must never panic, whatever the bytes: every access
//! goes through `get()`, every sum is checked, and the whole file is validated once by
//! [`CacheView::parse`] so that lookups can trust it.
//!
//! This crate is linked into both modules: std only, no allocation on the lookup path.
//!
//! # Format (version 1)
//!
//! All integers are little-endian. The file is a fixed 88-byte header, then fixed-size tables,
//! then one string table. Every string is a `StrRef` (8 bytes: `offset: u32, len: u32`) relative
//! to the start of the string table; strings are not NUL-terminated and may be shared.
//!
//! ```text
//! offset size  header field
//!      0    8  magic  b"JIT-NSS\0"
//!      8    4  version (1)
//!     12    4  stale: 0 when published; jitd writes 1 here after a newer file replaced this one
//!     16    8  checksum of bytes [24, file_len) (see `checksum`)
//!     24    8  generation (increases with every publish)
//!     32    4  file_len (must equal the file's size)
//!     36    4  user_count      40 4 group_count    44 4 member_count    48 4 shared_count
//!     52    4  users_off       56 4 uids_off       60 4 groups_off      64 4 gids_off
//!     68    4  members_off     72 4 member_index_off 76 4 shared_off    80 4 strings_off
//!     84    4  strings_len
//!
//! table         record (bytes)                                          order (strict)
//! users         name, uid, gid, gecos, home, shell            (40)      by name
//! uids          uid, user index                               (8)       by (uid, index)
//! groups        name, gid, first member, member count         (20)      by name
//! gids          gid, group index                              (8)       by (gid, index)
//! members       member name (StrRef); a group's members are
//!               members[first .. first + count]               (8)       as jitd listed them
//! member_index  member name, group index                      (12)      by (name, index)
//! shared        shared account name (StrRef)                  (8)       by name
//! ```
//!
//! Names compare as bytes. Lookups are binary searches over these fixed-size records, so a miss
//! costs a handful of comparisons. `member_index` answers `initgroups` without a scan.
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

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Where jitd publishes the file (tmpfs; replaced atomically).
pub const DEFAULT_RUN_PATH: &str = "/run/jitd/nss.cache";
/// Where jitd keeps a copy that survives a reboot while the server is unreachable.
pub const DEFAULT_STATE_PATH: &str = "/var/lib/jitd/nss.cache";

/// First 8 bytes of every cache file.
pub const MAGIC: [u8; 8] = *b"JIT-NSS\0";
/// The format version this code reads and writes.
pub const VERSION: u32 = 1;
/// Byte offset of the 4-byte `stale` word. It is 4-byte aligned in the file, so a page-aligned
/// mapping can load it atomically.
pub const STALE_OFFSET: usize = 12;
/// Value [`publish`] writes into the `stale` word of the file it replaced.
pub const STALE_MARK: u32 = 1;
/// Size of the header.
pub const HEADER_LEN: usize = 88;
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
const SHARED_REC: usize = STR_REF;

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

fn corrupt(what: impl Into<String>) -> CacheError {
    CacheError::Corrupt(what.into())
}

// ---------------------------------------------------------------------------------------------
// Checksum

/// Integrity check over 8-byte little-endian words (the last one zero-padded). Each step,
/// `h = rotl((h ^ w) * K, 31)`, is a bijection of `h`, so changing any single word always changes
/// the result; that is all a checksum against torn or damaged files needs. It is not a MAC: the
/// file is root-owned and holds public data. Eight bytes per step keeps map time negligible.
fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = 0xcbf2_9ce4_8422_2325 ^ (bytes.len() as u64);
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(word))
            .wrapping_mul(K)
            .rotate_left(31);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        for (d, s) in word.iter_mut().zip(rest) {
            *d = *s;
        }
        h = (h ^ u64::from_le_bytes(word))
            .wrapping_mul(K)
            .rotate_left(31);
    }
    h ^ (h >> 29)
}

// ---------------------------------------------------------------------------------------------
// Writer

/// Sorted, de-duplicated form of [`CacheContents`], as laid out in the file.
struct Layout<'c> {
    users: Vec<&'c CacheUser>,
    groups: Vec<(&'c CacheGroup, Vec<&'c str>)>,
    shared: Vec<&'c str>,
}

impl<'c> Layout<'c> {
    /// Sorts by name and keeps the first of any duplicate (by name; members within a group).
    fn of(c: &'c CacheContents) -> Self {
        let mut users: Vec<&CacheUser> = c.users.iter().collect();
        users.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        users.dedup_by(|b, a| a.name == b.name);
        let mut groups: Vec<&CacheGroup> = c.groups.iter().collect();
        groups.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        groups.dedup_by(|b, a| a.name == b.name);
        let groups = groups
            .into_iter()
            .map(|g| {
                let mut seen = HashSet::new();
                let members = g
                    .members
                    .iter()
                    .map(String::as_str)
                    .filter(|m| seen.insert(*m));
                (g, members.collect())
            })
            .collect();
        let mut shared: Vec<&str> = c.shared.iter().map(String::as_str).collect();
        shared.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        shared.dedup();
        Layout {
            users,
            groups,
            shared,
        }
    }
}

/// Interns strings into the string table.
#[derive(Default)]
struct Strings<'c> {
    bytes: Vec<u8>,
    refs: HashMap<&'c str, [u8; 8]>,
}

impl<'c> Strings<'c> {
    fn add(&mut self, s: &'c str) -> [u8; 8] {
        if let Some(r) = self.refs.get(s) {
            return *r;
        }
        let mut r = [0u8; 8];
        r[..4].copy_from_slice(&clamp32(self.bytes.len()).to_le_bytes());
        r[4..].copy_from_slice(&clamp32(s.len()).to_le_bytes());
        self.bytes.extend_from_slice(s.as_bytes());
        self.refs.insert(s, r);
        r
    }
}

/// Sizes past `u32::MAX` cannot be written; saturating makes the file fail validation instead of
/// silently pointing somewhere else. [`publish`] refuses such contents before this matters.
fn clamp32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Serializes `contents` into the file format.
///
/// Users, groups and shared names are sorted by name; a repeated name keeps its first entry, and
/// a group's repeated member is listed once. [`publish`] refuses contents that need this (and
/// other contents that cannot be served), so call it rather than writing `encode`'s output
/// yourself.
pub fn encode(contents: &CacheContents) -> Vec<u8> {
    let layout = Layout::of(contents);
    let mut strings = Strings::default();

    let mut users = Vec::with_capacity(layout.users.len() * USER_REC);
    let mut uids: Vec<(u32, u32)> = Vec::with_capacity(layout.users.len());
    for (i, u) in layout.users.iter().enumerate() {
        users.extend_from_slice(&strings.add(&u.name));
        users.extend_from_slice(&u.uid.to_le_bytes());
        users.extend_from_slice(&u.gid.to_le_bytes());
        users.extend_from_slice(&strings.add(&u.gecos));
        users.extend_from_slice(&strings.add(&u.home));
        users.extend_from_slice(&strings.add(&u.shell));
        uids.push((u.uid, clamp32(i)));
    }
    uids.sort_unstable();

    let mut groups = Vec::with_capacity(layout.groups.len() * GROUP_REC);
    let mut gids: Vec<(u32, u32)> = Vec::with_capacity(layout.groups.len());
    let mut members = Vec::new();
    let mut member_index: Vec<(&str, u32)> = Vec::new();
    let mut member_count = 0usize;
    for (i, (g, names)) in layout.groups.iter().enumerate() {
        groups.extend_from_slice(&strings.add(&g.name));
        groups.extend_from_slice(&g.gid.to_le_bytes());
        groups.extend_from_slice(&clamp32(member_count).to_le_bytes());
        groups.extend_from_slice(&clamp32(names.len()).to_le_bytes());
        gids.push((g.gid, clamp32(i)));
        for m in names {
            members.extend_from_slice(&strings.add(m));
            member_index.push((m, clamp32(i)));
        }
        member_count += names.len();
    }
    gids.sort_unstable();
    member_index.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()).then(a.1.cmp(&b.1)));

    let mut shared = Vec::with_capacity(layout.shared.len() * SHARED_REC);
    for s in &layout.shared {
        shared.extend_from_slice(&strings.add(s));
    }

    let id_table = |ids: &[(u32, u32)]| -> Vec<u8> {
        ids.iter()
            .flat_map(|(id, i)| id.to_le_bytes().into_iter().chain(i.to_le_bytes()))
            .collect()
    };
    let uids = id_table(&uids);
    let gids = id_table(&gids);
    let mut index = Vec::with_capacity(member_index.len() * MEMBER_INDEX_REC);
    for (m, i) in &member_index {
        index.extend_from_slice(&strings.add(m));
        index.extend_from_slice(&i.to_le_bytes());
    }

    let tables: [&[u8]; 8] = [
        &users,
        &uids,
        &groups,
        &gids,
        &members,
        &index,
        &shared,
        &strings.bytes,
    ];
    let mut offsets = [0u32; 8];
    let mut at = HEADER_LEN;
    for (o, t) in offsets.iter_mut().zip(tables) {
        *o = clamp32(at);
        at = at.saturating_add(t.len());
    }
    let file_len = at;

    let mut out = Vec::with_capacity(file_len);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // stale
    out.extend_from_slice(&0u64.to_le_bytes()); // checksum, filled in below
    out.extend_from_slice(&contents.generation.to_le_bytes());
    out.extend_from_slice(&clamp32(file_len).to_le_bytes());
    for n in [
        layout.users.len(),
        layout.groups.len(),
        member_count,
        layout.shared.len(),
    ] {
        out.extend_from_slice(&clamp32(n).to_le_bytes());
    }
    for o in offsets {
        out.extend_from_slice(&o.to_le_bytes());
    }
    out.extend_from_slice(&clamp32(strings.bytes.len()).to_le_bytes());
    for t in tables {
        out.extend_from_slice(t);
    }
    seal(&mut out);
    out
}

/// Writes the checksum of `file` into its header.
fn seal(file: &mut [u8]) {
    let sum = checksum(file.get(CHECKED_FROM..).unwrap_or_default());
    if let Some(field) = file.get_mut(CHECKSUM_OFFSET..CHECKSUM_OFFSET + 8) {
        field.copy_from_slice(&sum.to_le_bytes());
    }
}

/// Why `contents` cannot be served, if it cannot: a field that would break the colon-separated
/// passwd/group format or a C string, an empty or repeated name, or a file over the size limit.
fn check(contents: &CacheContents) -> Result<(), String> {
    fn field(kind: &str, owner: &str, value: &str, is_name: bool) -> Result<(), String> {
        if is_name && value.is_empty() {
            return Err(format!("{kind} of {owner:?} is empty"));
        }
        let bad: &[char] = if is_name {
            &['\0', ':', '\n', ',']
        } else {
            &['\0', ':', '\n']
        };
        if value.contains(bad) {
            return Err(format!(
                "{kind} of {owner:?} contains one of {bad:?}: {value:?}"
            ));
        }
        Ok(())
    }
    let mut names = HashSet::new();
    for u in &contents.users {
        field("user name", &u.name, &u.name, true)?;
        field("gecos", &u.name, &u.gecos, false)?;
        field("home", &u.name, &u.home, false)?;
        field("shell", &u.name, &u.shell, false)?;
        if !names.insert(&u.name) {
            return Err(format!("user {:?} is listed twice", u.name));
        }
    }
    let mut names = HashSet::new();
    for g in &contents.groups {
        field("group name", &g.name, &g.name, true)?;
        for m in &g.members {
            field("member", &g.name, m, true)?;
        }
        if !names.insert(&g.name) {
            return Err(format!("group {:?} is listed twice", g.name));
        }
    }
    for s in &contents.shared {
        field("shared account", s, s, true)?;
    }
    Ok(())
}

/// Atomically replaces the file at `path` with `contents`, then marks the file it replaced as
/// stale so that processes which still have it mapped switch to the new one.
///
/// Creates the parent directory (0755) if missing; the file is 0644, fsynced, and so is the
/// directory after the rename. To keep both copies, call it for [`DEFAULT_RUN_PATH`] first and
/// [`DEFAULT_STATE_PATH`] second: a reader that fell back to the state copy (because `/run` was
/// empty after boot) is then sent back to the run copy, which already exists.
///
/// Contents that cannot be served (see `check`) are refused with [`io::ErrorKind::InvalidInput`]
/// before anything is written.
pub fn publish(path: &Path, contents: &CacheContents) -> io::Result<()> {
    let invalid = |why: String| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: {why}", path.display()),
        )
    };
    check(contents).map_err(invalid)?;
    let bytes = encode(contents);
    if bytes.len() > MAX_FILE_LEN {
        return Err(invalid(format!(
            "{} bytes is over the {MAX_FILE_LEN}-byte limit readers accept",
            bytes.len()
        )));
    }
    let name = path
        .file_name()
        .ok_or_else(|| invalid("the path does not end in a file name".into()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)?;

    // Opened before the rename, so it is the file readers may have mapped.
    let old = match OpenOptions::new().write(true).open(path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };

    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        // The mode above is filtered by the umask; readers are unprivileged processes.
        f.set_permissions(fs::Permissions::from_mode(0o644))?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // Readers switch as soon as the old file is marked, so that comes before the directory sync.
    let marked = match old {
        Some(old) => old.write_all_at(&STALE_MARK.to_le_bytes(), STALE_OFFSET as u64),
        None => Ok(()),
    };
    File::open(dir)?.sync_all()?;
    marked
}

/// Reads the file at `path` (not via mmap; this is for pam_jit's fallback, not the NSS hot path)
/// and says whether `name` is a shared account on this host.
///
/// A missing file is `CacheError::Io` with [`io::ErrorKind::NotFound`]: the host has not joined.
pub fn is_shared_in_file(path: &Path, name: &[u8]) -> Result<bool, CacheError> {
    // Checked before opening: opening a FIFO planted at the path would block pam_jit.
    if !fs::metadata(path)?.is_file() {
        return Err(corrupt(format!("{} is not a regular file", path.display())));
    }
    let file = File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > MAX_FILE_LEN {
        return Err(corrupt(format!("over the {MAX_FILE_LEN}-byte limit")));
    }
    Ok(CacheView::parse(&bytes)?.is_shared(name))
}

// ---------------------------------------------------------------------------------------------
// Reader

/// The string whose StrRef (offset, length) is at `rec[at..]`, if it lies inside `strings`.
fn str_in<'a>(strings: &'a [u8], rec: &[u8], at: usize) -> Option<&'a [u8]> {
    let (off, len) = (
        u32_at(rec, at) as usize,
        u32_at(rec, at.wrapping_add(4)) as usize,
    );
    strings.get(off..off.checked_add(len)?)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    match b
        .get(at..at.wrapping_add(4))
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
    {
        Some(w) => u32::from_le_bytes(w),
        None => 0,
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    match b
        .get(at..at.wrapping_add(8))
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
    {
        Some(w) => u64::from_le_bytes(w),
        None => 0,
    }
}

/// A table of fixed-size records.
#[derive(Debug, Clone, Copy)]
struct Table<'a> {
    bytes: &'a [u8],
    rec: usize,
}

impl<'a> Table<'a> {
    const EMPTY: Table<'static> = Table { bytes: &[], rec: 1 };

    fn len(&self) -> usize {
        self.bytes.len() / self.rec
    }

    fn get(&self, i: usize) -> Option<&'a [u8]> {
        let start = i.checked_mul(self.rec)?;
        self.bytes.get(start..start.checked_add(self.rec)?)
    }

    /// Index of the first record for which `before(record)` is false, given that `before` is
    /// true for a prefix of the table (the table is sorted).
    fn partition_point(&self, mut before: impl FnMut(&'a [u8]) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid) {
                Some(r) if before(r) => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo
    }
}

/// A user (passwd entry) in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User<'a> {
    pub name: &'a [u8],
    pub uid: u32,
    pub gid: u32,
    pub gecos: &'a [u8],
    pub home: &'a [u8],
    pub shell: &'a [u8],
}

/// A group in the cache.
#[derive(Debug, Clone, Copy)]
pub struct Group<'a> {
    pub name: &'a [u8],
    pub gid: u32,
    members: Names<'a>,
}

impl<'a> Group<'a> {
    /// The group's members, in the order jitd listed them.
    pub fn members(&self) -> Names<'a> {
        self.members
    }
}

/// A validated cache file. Borrowing the bytes, it answers lookups without allocating.
#[derive(Debug, Clone, Copy)]
pub struct CacheView<'a> {
    generation: u64,
    stale: bool,
    strings: &'a [u8],
    users: Table<'a>,
    uids: Table<'a>,
    groups: Table<'a>,
    gids: Table<'a>,
    members: Table<'a>,
    member_index: Table<'a>,
    shared: Table<'a>,
}

impl<'a> CacheView<'a> {
    /// Validates `bytes` (magic, version, length, checksum, every offset and length, sort order)
    /// so that lookups can trust it. Never panics, whatever `bytes` holds.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, CacheError> {
        let header = bytes.get(..HEADER_LEN).ok_or_else(|| {
            corrupt(format!(
                "{} bytes is shorter than the {HEADER_LEN}-byte header",
                bytes.len()
            ))
        })?;
        if header.get(..8) != Some(&MAGIC[..]) {
            return Err(corrupt("not a jit NSS cache (bad magic)"));
        }
        let version = u32_at(header, 8);
        if version != VERSION {
            return Err(corrupt(format!(
                "format version {version}; this reader knows {VERSION}"
            )));
        }
        let file_len = u32_at(header, 32) as usize;
        if file_len != bytes.len() {
            return Err(corrupt(format!(
                "header says {file_len} bytes but the file has {}: truncated or appended to",
                bytes.len()
            )));
        }
        let want = u64_at(header, CHECKSUM_OFFSET);
        if checksum(bytes.get(CHECKED_FROM..).unwrap_or_default()) != want {
            return Err(corrupt("checksum mismatch"));
        }

        let table = |name: &str, off_at: usize, count: usize, rec: usize| {
            let off = u32_at(header, off_at) as usize;
            let end = count.checked_mul(rec).and_then(|n| n.checked_add(off));
            match end {
                Some(end) if off >= HEADER_LEN && end <= bytes.len() => Ok(Table {
                    bytes: bytes.get(off..end).unwrap_or_default(),
                    rec,
                }),
                _ => Err(corrupt(format!(
                    "{name} table ({count} records at {off}) is out of bounds"
                ))),
            }
        };
        let user_count = u32_at(header, 36) as usize;
        let group_count = u32_at(header, 40) as usize;
        let member_count = u32_at(header, 44) as usize;
        let shared_count = u32_at(header, 48) as usize;
        let strings = table("string", 80, u32_at(header, 84) as usize, 1)?.bytes;
        let view = CacheView {
            generation: u64_at(header, 24),
            stale: u32_at(header, STALE_OFFSET) != 0,
            strings,
            users: table("user", 52, user_count, USER_REC)?,
            uids: table("uid", 56, user_count, ID_REC)?,
            groups: table("group", 60, group_count, GROUP_REC)?,
            gids: table("gid", 64, group_count, ID_REC)?,
            members: table("member", 68, member_count, MEMBER_REC)?,
            member_index: table("member index", 72, member_count, MEMBER_INDEX_REC)?,
            shared: table("shared", 76, shared_count, SHARED_REC)?,
        };
        view.validate()?;
        Ok(view)
    }

    fn validate(&self) -> Result<(), CacheError> {
        let mut prev: Option<&[u8]> = None;
        for i in 0..self.users.len() {
            let r = self.users.get(i).unwrap_or_default();
            let name = self.checked_str(r, 0, "user name")?;
            for (at, what) in [(16, "gecos"), (24, "home"), (32, "shell")] {
                self.checked_str(r, at, what)?;
            }
            ascending(&mut prev, name, "users")?;
        }
        self.validate_ids(self.uids, self.users, "uid")?;

        let mut prev: Option<&[u8]> = None;
        for i in 0..self.groups.len() {
            let r = self.groups.get(i).unwrap_or_default();
            let name = self.checked_str(r, 0, "group name")?;
            ascending(&mut prev, name, "groups")?;
            let (first, count) = (u32_at(r, 12) as usize, u32_at(r, 16) as usize);
            if first
                .checked_add(count)
                .is_none_or(|end| end > self.members.len())
            {
                return Err(corrupt(format!("members of group {i} are out of bounds")));
            }
        }
        self.validate_ids(self.gids, self.groups, "gid")?;

        for i in 0..self.members.len() {
            self.checked_str(self.members.get(i).unwrap_or_default(), 0, "member name")?;
        }
        let mut prev: Option<(&[u8], u32)> = None;
        for i in 0..self.member_index.len() {
            let r = self.member_index.get(i).unwrap_or_default();
            let key = (self.checked_str(r, 0, "member name")?, u32_at(r, 8));
            if key.1 as usize >= self.groups.len() {
                return Err(corrupt("member index points past the group table"));
            }
            if prev.is_some_and(|p| p >= key) {
                return Err(corrupt("member index is not sorted"));
            }
            prev = Some(key);
        }

        let mut prev: Option<&[u8]> = None;
        for i in 0..self.shared.len() {
            let name =
                self.checked_str(self.shared.get(i).unwrap_or_default(), 0, "shared name")?;
            ascending(&mut prev, name, "shared names")?;
        }
        Ok(())
    }

    /// Checks an id index: every entry points at a record with that id, sorted by (id, index).
    fn validate_ids(
        &self,
        ids: Table<'a>,
        records: Table<'a>,
        what: &str,
    ) -> Result<(), CacheError> {
        let mut prev: Option<(u32, u32)> = None;
        for i in 0..ids.len() {
            let r = ids.get(i).unwrap_or_default();
            let key = (u32_at(r, 0), u32_at(r, 4));
            match records.get(key.1 as usize) {
                Some(rec) if u32_at(rec, 8) == key.0 => {}
                _ => {
                    return Err(corrupt(format!(
                        "{what} index entry {i} does not match its record"
                    )));
                }
            }
            if prev.is_some_and(|p| p >= key) {
                return Err(corrupt(format!("{what} index is not sorted")));
            }
            prev = Some(key);
        }
        Ok(())
    }

    /// The string whose StrRef is at `rec[at..]`, if it lies inside the string table.
    fn str_at(&self, rec: &'a [u8], at: usize) -> Option<&'a [u8]> {
        str_in(self.strings, rec, at)
    }

    fn checked_str(&self, rec: &'a [u8], at: usize, what: &str) -> Result<&'a [u8], CacheError> {
        self.str_at(rec, at)
            .ok_or_else(|| corrupt(format!("{what} points outside the string table")))
    }

    /// The string at `rec[at..]`. Validated at parse time; empty if not.
    fn str(&self, rec: &'a [u8], at: usize) -> &'a [u8] {
        self.str_at(rec, at).unwrap_or_default()
    }

    /// What the publisher put in the header: higher is newer.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the `stale` word was set when these bytes were parsed: a newer file has replaced
    /// this one. A mapping's current value must be loaded from the mapping itself.
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    fn user_at(&self, i: usize) -> Option<User<'a>> {
        let r = self.users.get(i)?;
        Some(User {
            name: self.str(r, 0),
            uid: u32_at(r, 8),
            gid: u32_at(r, 12),
            gecos: self.str(r, 16),
            home: self.str(r, 24),
            shell: self.str(r, 32),
        })
    }

    fn group_at(&self, i: usize) -> Option<Group<'a>> {
        let r = self.groups.get(i)?;
        let (first, count) = (u32_at(r, 12) as usize, u32_at(r, 16) as usize);
        let list = first
            .checked_mul(MEMBER_REC)
            .zip(count.checked_mul(MEMBER_REC))
            .and_then(|(start, len)| self.members.bytes.get(start..start.checked_add(len)?))
            .unwrap_or_default();
        Some(Group {
            name: self.str(r, 0),
            gid: u32_at(r, 8),
            members: Names {
                strings: self.strings,
                list: Table {
                    bytes: list,
                    rec: MEMBER_REC,
                },
                next: 0,
            },
        })
    }

    /// Index of the record named `name` in a name-sorted table.
    fn find_name(&self, table: Table<'a>, name: &[u8]) -> Option<usize> {
        let i = table.partition_point(|r| self.str(r, 0) < name);
        (self.str(table.get(i)?, 0) == name).then_some(i)
    }

    /// Record index of the first entry for `id` in an id index.
    fn find_id(ids: Table<'a>, id: u32) -> Option<usize> {
        let r = ids.get(ids.partition_point(|r| u32_at(r, 0) < id))?;
        (u32_at(r, 0) == id).then_some(u32_at(r, 4) as usize)
    }

    pub fn user_by_name(&self, name: &[u8]) -> Option<User<'a>> {
        self.user_at(self.find_name(self.users, name)?)
    }

    /// The user with this uid; of several, the first by name.
    pub fn user_by_uid(&self, uid: u32) -> Option<User<'a>> {
        self.user_at(Self::find_id(self.uids, uid)?)
    }

    /// Every user, by name.
    pub fn users(&self) -> Users<'a> {
        Users {
            view: *self,
            next: 0,
        }
    }

    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    pub fn group_by_name(&self, name: &[u8]) -> Option<Group<'a>> {
        self.group_at(self.find_name(self.groups, name)?)
    }

    /// The group with this gid; of several, the first by name.
    pub fn group_by_gid(&self, gid: u32) -> Option<Group<'a>> {
        self.group_at(Self::find_id(self.gids, gid)?)
    }

    /// Every group, by name.
    pub fn groups(&self) -> Groups<'a> {
        Groups {
            view: *self,
            next: 0,
        }
    }

    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// The groups that list `member` (for `initgroups`), by name.
    pub fn groups_with_member(&self, member: &[u8]) -> MemberGroups<'a> {
        let idx = self.member_index;
        let start = idx.partition_point(|r| self.str(r, 0) < member);
        let end = start
            + Table {
                bytes: idx.bytes.get(start * idx.rec..).unwrap_or_default(),
                ..idx
            }
            .partition_point(|r| self.str(r, 0) == member);
        MemberGroups {
            view: *self,
            next: start,
            end,
        }
    }

    /// Whether `name` is a shared account on this host (virtual or from the host's files).
    pub fn is_shared(&self, name: &[u8]) -> bool {
        self.find_name(self.shared, name).is_some()
    }

    /// Every shared account name, sorted.
    pub fn shared(&self) -> Names<'a> {
        Names {
            strings: self.strings,
            list: self.shared,
            next: 0,
        }
    }

    /// Copies the file back into [`CacheContents`] (for diagnostics and tests); bytes that are not
    /// UTF-8 are replaced.
    pub fn to_contents(&self) -> CacheContents {
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        CacheContents {
            generation: self.generation,
            users: self
                .users()
                .map(|u| CacheUser {
                    name: s(u.name),
                    uid: u.uid,
                    gid: u.gid,
                    gecos: s(u.gecos),
                    home: s(u.home),
                    shell: s(u.shell),
                })
                .collect(),
            groups: self
                .groups()
                .map(|g| CacheGroup {
                    name: s(g.name),
                    gid: g.gid,
                    members: g.members().map(s).collect(),
                })
                .collect(),
            shared: self.shared().map(s).collect(),
        }
    }
}

impl Default for CacheView<'_> {
    /// An empty cache: every lookup misses.
    fn default() -> Self {
        CacheView {
            generation: 0,
            stale: false,
            strings: &[],
            users: Table::EMPTY,
            uids: Table::EMPTY,
            groups: Table::EMPTY,
            gids: Table::EMPTY,
            members: Table::EMPTY,
            member_index: Table::EMPTY,
            shared: Table::EMPTY,
        }
    }
}

fn ascending<'a>(
    prev: &mut Option<&'a [u8]>,
    name: &'a [u8],
    what: &str,
) -> Result<(), CacheError> {
    if prev.is_some_and(|p| p >= name) {
        return Err(corrupt(format!(
            "{what} are not sorted by name, or a name is repeated"
        )));
    }
    *prev = Some(name);
    Ok(())
}

/// Iterator over every user, by name.
#[derive(Debug, Clone)]
pub struct Users<'a> {
    view: CacheView<'a>,
    next: usize,
}

impl<'a> Iterator for Users<'a> {
    type Item = User<'a>;
    fn next(&mut self) -> Option<User<'a>> {
        let u = self.view.user_at(self.next)?;
        self.next += 1;
        Some(u)
    }
    /// Jumps straight to the record, so that enumeration by position stays O(1) per entry.
    fn nth(&mut self, n: usize) -> Option<User<'a>> {
        self.next = self.next.saturating_add(n);
        self.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.view.users.len().saturating_sub(self.next);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Users<'_> {}

/// Iterator over every group, by name.
#[derive(Debug, Clone)]
pub struct Groups<'a> {
    view: CacheView<'a>,
    next: usize,
}

impl<'a> Iterator for Groups<'a> {
    type Item = Group<'a>;
    fn next(&mut self) -> Option<Group<'a>> {
        let g = self.view.group_at(self.next)?;
        self.next += 1;
        Some(g)
    }
    /// Jumps straight to the record, so that enumeration by position stays O(1) per entry.
    fn nth(&mut self, n: usize) -> Option<Group<'a>> {
        self.next = self.next.saturating_add(n);
        self.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.view.groups.len().saturating_sub(self.next);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Groups<'_> {}

/// Iterator over a list of names (a group's members, the shared names).
#[derive(Debug, Clone, Copy)]
pub struct Names<'a> {
    strings: &'a [u8],
    list: Table<'a>,
    next: usize,
}

impl<'a> Iterator for Names<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let r = self.list.get(self.next)?;
        self.next += 1;
        Some(str_in(self.strings, r, 0).unwrap_or_default())
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.list.len().saturating_sub(self.next);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Names<'_> {}

/// Iterator over the groups that list one member.
#[derive(Debug, Clone)]
pub struct MemberGroups<'a> {
    view: CacheView<'a>,
    next: usize,
    end: usize,
}

impl<'a> Iterator for MemberGroups<'a> {
    type Item = Group<'a>;
    fn next(&mut self) -> Option<Group<'a>> {
        if self.next >= self.end {
            return None;
        }
        let r = self.view.member_index.get(self.next)?;
        self.next += 1;
        self.view.group_at(u32_at(r, 8) as usize)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end.saturating_sub(self.next);
        (n, Some(n))
    }
}

impl ExactSizeIterator for MemberGroups<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, uid: u32, gid: u32, gecos: &str, home: &str, shell: &str) -> CacheUser {
        CacheUser {
            name: name.into(),
            uid,
            gid,
            gecos: gecos.into(),
            home: home.into(),
            shell: shell.into(),
        }
    }

    fn group(name: &str, gid: u32, members: &[&str]) -> CacheGroup {
        CacheGroup {
            name: name.into(),
            gid,
            members: members.iter().map(|m| m.to_string()).collect(),
        }
    }

    /// Deliberately not in sorted order, with a repeated uid (`toor` shares admin's).
    fn sample() -> CacheContents {
        CacheContents {
            generation: 7,
            users: vec![
                user("toor", 60001, 60001, "", "/root2", "/bin/sh"),
                user(
                    "deploy",
                    60002,
                    60002,
                    "Deploy bot",
                    "/srv/deploy",
                    "/bin/sh",
                ),
                user(
                    "admin",
                    60001,
                    60001,
                    "Shared admin,,,",
                    "/home/admin",
                    "/bin/bash",
                ),
            ],
            groups: vec![
                group("web", 60011, &["deploy"]),
                group("admin", 60001, &[]),
                group("ops", 60010, &["deploy", "admin", "root"]),
                group("deploy", 60002, &[]),
            ],
            shared: vec![
                "root".into(),
                "deploy".into(),
                "admin".into(),
                "toor".into(),
            ],
        }
    }

    /// `sample()` as the file stores it: everything sorted by name.
    fn sample_sorted() -> CacheContents {
        let mut c = sample();
        c.users.sort_by(|a, b| a.name.cmp(&b.name));
        c.groups.sort_by(|a, b| a.name.cmp(&b.name));
        c.shared.sort();
        c
    }

    fn names<'a>(it: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
        it.map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    /// Rewrites bytes of a valid file and fixes the checksum, so that only the structural
    /// checks stand between the forgery and a reader.
    fn forge(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut bytes = encode(&sample());
        edit(&mut bytes);
        seal(&mut bytes);
        bytes
    }

    fn put32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn get32(b: &[u8], at: usize) -> usize {
        u32_at(b, at) as usize
    }

    /// Calls every accessor, so that a forged file that parses is also read end to end.
    fn read_everything(v: &CacheView<'_>) -> usize {
        let mut n = v.users().count() + v.groups().map(|g| g.members().count()).sum::<usize>();
        for name in [&b"admin"[..], b"deploy", b"root", b"", b"zzz"] {
            n += v.user_by_name(name).is_some() as usize;
            n += v.group_by_name(name).is_some() as usize;
            n += v.groups_with_member(name).count();
            n += v.is_shared(name) as usize;
        }
        for id in [0, 60001, 60002, 60010, u32::MAX] {
            n += v.user_by_uid(id).is_some() as usize + v.group_by_gid(id).is_some() as usize;
        }
        n + v.shared().count() + v.to_contents().users.len()
    }

    #[test]
    fn round_trip_keeps_everything_sorted_by_name() {
        let bytes = encode(&sample());
        let view = CacheView::parse(&bytes).unwrap();
        assert_eq!(view.to_contents(), sample_sorted());
        assert_eq!(view.generation(), 7);
        assert!(!view.is_stale());
        assert_eq!(view.user_count(), 3);
        assert_eq!(view.group_count(), 4);
    }

    #[test]
    fn user_lookups() {
        let bytes = encode(&sample());
        let v = CacheView::parse(&bytes).unwrap();
        let admin = v.user_by_name(b"admin").unwrap();
        assert_eq!(
            admin,
            User {
                name: b"admin",
                uid: 60001,
                gid: 60001,
                gecos: b"Shared admin,,,",
                home: b"/home/admin",
                shell: b"/bin/bash"
            }
        );
        // First, middle and last record, and names just around them.
        assert_eq!(v.user_by_name(b"deploy").unwrap().uid, 60002);
        assert_eq!(v.user_by_name(b"toor").unwrap().home, b"/root2");
        for miss in [
            &b""[..],
            b"a",
            b"admi",
            b"admin ",
            b"adminx",
            b"root",
            b"zz",
            b"ADMIN",
        ] {
            assert!(v.user_by_name(miss).is_none(), "{miss:?}");
        }
        // A shared uid resolves to the first name.
        assert_eq!(v.user_by_uid(60001).unwrap().name, b"admin");
        assert_eq!(v.user_by_uid(60002).unwrap().name, b"deploy");
        for miss in [0, 60000, 60003, u32::MAX] {
            assert!(v.user_by_uid(miss).is_none(), "{miss}");
        }
        assert_eq!(
            names(v.users().map(|u| u.name)),
            ["admin", "deploy", "toor"]
        );
        assert_eq!(v.users().len(), 3);
    }

    #[test]
    fn group_lookups() {
        let bytes = encode(&sample());
        let v = CacheView::parse(&bytes).unwrap();
        let ops = v.group_by_name(b"ops").unwrap();
        assert_eq!((ops.name, ops.gid), (&b"ops"[..], 60010));
        assert_eq!(names(ops.members()), ["deploy", "admin", "root"]);
        assert_eq!(v.group_by_gid(60011).unwrap().name, b"web");
        assert_eq!(v.group_by_gid(60001).unwrap().members().count(), 0);
        assert!(v.group_by_name(b"wheel").is_none());
        assert!(v.group_by_gid(0).is_none());
        assert_eq!(
            names(v.groups().map(|g| g.name)),
            ["admin", "deploy", "ops", "web"]
        );
    }

    #[test]
    fn groups_with_member_answers_initgroups() {
        let bytes = encode(&sample());
        let v = CacheView::parse(&bytes).unwrap();
        let gids = |m: &[u8]| v.groups_with_member(m).map(|g| g.gid).collect::<Vec<_>>();
        assert_eq!(gids(b"deploy"), [60010, 60011]);
        assert_eq!(gids(b"admin"), [60010]);
        assert_eq!(gids(b"root"), [60010]);
        assert_eq!(v.groups_with_member(b"deploy").len(), 2);
        for none in [&b""[..], b"toor", b"adm", b"deployer", b"zzz"] {
            assert!(gids(none).is_empty(), "{none:?}");
        }
    }

    #[test]
    fn shared_names_include_accounts_from_files() {
        let bytes = encode(&sample());
        let v = CacheView::parse(&bytes).unwrap();
        for yes in ["root", "admin", "deploy", "toor"] {
            assert!(v.is_shared(yes.as_bytes()), "{yes}");
        }
        for no in ["", "alice", "roo", "rootx", "web"] {
            assert!(!v.is_shared(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn empty_cache_misses_everything() {
        let bytes = encode(&CacheContents::default());
        assert_eq!(bytes.len(), HEADER_LEN);
        for v in [CacheView::parse(&bytes).unwrap(), CacheView::default()] {
            assert_eq!(read_everything(&v), 0);
        }
    }

    #[test]
    fn encode_keeps_the_first_of_repeated_names() {
        let mut c = sample();
        c.users
            .push(user("admin", 1, 1, "second", "/", "/bin/false"));
        c.groups.push(group("ops", 1, &[]));
        c.groups[0].members = vec!["deploy".into(), "admin".into(), "deploy".into()];
        c.shared.push("root".into());
        let bytes = encode(&c);
        let v = CacheView::parse(&bytes).unwrap();
        assert_eq!(v.user_by_name(b"admin").unwrap().uid, 60001);
        assert_eq!(v.group_by_name(b"ops").unwrap().gid, 60010);
        assert_eq!(
            names(v.group_by_name(b"web").unwrap().members()),
            ["deploy", "admin"]
        );
        assert_eq!(v.shared().count(), 4);
    }

    #[test]
    fn every_truncation_and_extension_is_rejected() {
        let bytes = encode(&sample());
        for n in 0..bytes.len() {
            assert!(
                CacheView::parse(&bytes[..n]).is_err(),
                "accepted {n} of {} bytes",
                bytes.len()
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        let err = CacheView::parse(&longer).unwrap_err().to_string();
        assert!(err.contains("truncated or appended"), "{err}");
    }

    #[test]
    fn every_bit_flip_outside_the_stale_word_is_rejected() {
        let bytes = encode(&sample());
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                let parsed = CacheView::parse(&b);
                if (STALE_OFFSET..STALE_OFFSET + 4).contains(&i) {
                    assert!(parsed.unwrap().is_stale());
                } else {
                    assert!(
                        parsed.is_err(),
                        "flip of bit {bit} in byte {i} went unnoticed"
                    );
                }
            }
        }
    }

    /// A small xorshift generator: deterministic, so a failure reproduces.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn random_damage_with_a_valid_checksum_never_panics() {
        let clean = encode(&sample());
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        let mut accepted = 0;
        for round in 0..20_000 {
            let mut b = clean.clone();
            let flips = 1 + rng.below(4);
            for _ in 0..flips {
                // Mostly inside the header and tables, where a damaged number matters most.
                let at = CHECKED_FROM + rng.below(b.len() - CHECKED_FROM);
                let value = if round % 3 == 0 {
                    0xff
                } else {
                    rng.next() as u8
                };
                b[at] = value;
            }
            seal(&mut b);
            if let Ok(v) = CacheView::parse(&b) {
                accepted += 1;
                read_everything(&v);
            }
        }
        // Damage to string bytes is structurally valid: some rounds must reach the accessors.
        assert!(accepted > 0);
    }

    #[test]
    fn random_garbage_never_panics() {
        let mut rng = Rng(42);
        for _ in 0..5_000 {
            let len = rng.below(400);
            let mut b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if b.len() >= HEADER_LEN {
                b[..8].copy_from_slice(&MAGIC);
                put32(&mut b, 8, VERSION);
                let len = b.len() as u32;
                put32(&mut b, 32, len);
                // Small counts and offsets, so that some garbage gets past the bounds checks.
                for at in (36..88).step_by(4) {
                    let v = (rng.below(len as usize)) as u32;
                    put32(&mut b, at, if at < 52 { v % 4 } else { v });
                }
                seal(&mut b);
            }
            if let Ok(v) = CacheView::parse(&b) {
                read_everything(&v);
            }
        }
    }

    #[test]
    fn structural_damage_is_rejected_with_a_reason() {
        let clean = encode(&sample());
        let users = get32(&clean, 52);
        let uids = get32(&clean, 56);
        let groups = get32(&clean, 60);
        let index = get32(&clean, 72);
        let shared = get32(&clean, 76);
        let strings_len = get32(&clean, 84) as u32;
        type Edit = Box<dyn FnOnce(&mut Vec<u8>)>;
        let cases: Vec<(&str, Edit, &str)> = vec![
            ("bad magic", Box::new(|b| b[0] = b'X'), "bad magic"),
            (
                "newer version",
                Box::new(|b| put32(b, 8, 2)),
                "format version 2",
            ),
            (
                "users out of order",
                Box::new(move |b| {
                    let (first, second) = b[users..users + 2 * USER_REC].split_at_mut(USER_REC);
                    first.swap_with_slice(second);
                }),
                "users are not sorted",
            ),
            (
                "repeated user name",
                Box::new(move |b| {
                    let name: Vec<u8> = b[users..users + 8].to_vec();
                    b[users + USER_REC..users + USER_REC + 8].copy_from_slice(&name);
                }),
                "not sorted by name, or a name is repeated",
            ),
            (
                "string past the table",
                Box::new(move |b| put32(b, users + 24, strings_len)),
                "home points outside",
            ),
            (
                "string length overflows",
                Box::new(move |b| put32(b, users + 4, u32::MAX)),
                "user name points outside",
            ),
            (
                "user table past the end",
                Box::new(|b| {
                    let len = b.len() as u32;
                    put32(b, 52, len);
                }),
                "user table",
            ),
            (
                "user table inside the header",
                Box::new(|b| put32(b, 52, 0)),
                "user table",
            ),
            (
                "absurd user count",
                Box::new(|b| put32(b, 36, u32::MAX)),
                "out of bounds",
            ),
            (
                "uid entry points nowhere",
                Box::new(move |b| put32(b, uids + 4, 99)),
                "uid index entry 0 does not match",
            ),
            (
                "uid entry disagrees",
                Box::new(move |b| put32(b, uids, 5)),
                "does not match",
            ),
            (
                "uid index out of order",
                Box::new(move |b| {
                    let (first, second) = b[uids..uids + 2 * ID_REC].split_at_mut(ID_REC);
                    first.swap_with_slice(second);
                }),
                "uid index is not sorted",
            ),
            (
                "members past the list",
                Box::new(move |b| put32(b, groups + 16, 1000)),
                "members of group 0 are out of bounds",
            ),
            (
                "member range overflows",
                Box::new(move |b| {
                    put32(b, groups + 12, u32::MAX);
                    put32(b, groups + 16, u32::MAX);
                }),
                "out of bounds",
            ),
            (
                "member index names a missing group",
                Box::new(move |b| put32(b, index + 8, 99)),
                "past the group table",
            ),
            (
                "member index out of order",
                Box::new(move |b| {
                    let rec = MEMBER_INDEX_REC;
                    let (first, second) = b[index..index + 2 * rec].split_at_mut(rec);
                    first.swap_with_slice(second);
                }),
                "member index is not sorted",
            ),
            (
                "shared names out of order",
                Box::new(move |b| {
                    let (first, second) =
                        b[shared..shared + 2 * SHARED_REC].split_at_mut(SHARED_REC);
                    first.swap_with_slice(second);
                }),
                "shared names are not sorted",
            ),
        ];
        for (what, edit, want) in cases {
            let bytes = forge(edit);
            let err = CacheView::parse(&bytes).expect_err(what).to_string();
            assert!(err.contains(want), "{what}: {err}");
        }
        // The forging itself is sound: an unedited reseal parses.
        assert!(CacheView::parse(&forge(|_| {})).is_ok());
        assert!(CacheView::parse(&clean).is_ok());
    }

    /// A directory under the system temp dir, removed on drop.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir()
                .join(format!("jit-nss-cache-{tag}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn publish_creates_the_directory_and_a_readable_file() {
        let tmp = TempDir::new("create");
        let path = tmp.0.join("run/jitd/nss.cache");
        publish(&path, &sample()).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o644);
        assert_eq!(
            fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o755
        );
        let bytes = fs::read(&path).unwrap();
        assert_eq!(
            CacheView::parse(&bytes).unwrap().to_contents(),
            sample_sorted()
        );
        let left: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["nss.cache"], "temporary file left behind");
    }

    #[test]
    fn publish_marks_the_replaced_file_stale() {
        let tmp = TempDir::new("replace");
        let path = tmp.0.join("nss.cache");
        publish(&path, &sample()).unwrap();
        // What a reader holds: the old inode, which the rename unlinks but does not change.
        let old = File::open(&path).unwrap();
        let mut next = sample();
        next.generation = 8;
        next.users.retain(|u| u.name != "toor");
        publish(&path, &next).unwrap();

        let mut old_bytes = Vec::new();
        (&old).read_to_end(&mut old_bytes).unwrap();
        let old_view = CacheView::parse(&old_bytes).unwrap();
        assert!(old_view.is_stale());
        assert_eq!(old_view.generation(), 7);
        assert!(old_view.user_by_name(b"toor").is_some());

        let new_bytes = fs::read(&path).unwrap();
        let new_view = CacheView::parse(&new_bytes).unwrap();
        assert!(!new_view.is_stale());
        assert_eq!(new_view.generation(), 8);
        assert!(new_view.user_by_name(b"toor").is_none());
    }

    #[test]
    fn publish_refuses_what_cannot_be_served() {
        let tmp = TempDir::new("refuse");
        let path = tmp.0.join("nss.cache");
        type Edit = fn(&mut CacheContents);
        let cases: Vec<(Edit, &str)> = vec![
            (|c| c.users[0].gecos = "a:b".into(), "gecos of \"toor\""),
            (|c| c.users[0].home = "/x\n".into(), "home of"),
            (|c| c.users[0].shell = "/bin/sh\0".into(), "shell of"),
            (
                |c| c.users[0].name = String::new(),
                "user name of \"\" is empty",
            ),
            (
                |c| c.users[1].name = "toor".into(),
                "user \"toor\" is listed twice",
            ),
            (
                |c| c.groups[1].name = "web".into(),
                "group \"web\" is listed twice",
            ),
            (
                |c| c.groups[0].members.push("a,b".into()),
                "member of \"web\"",
            ),
            (|c| c.shared.push("x:y".into()), "shared account"),
        ];
        for (edit, want) in cases {
            let mut c = sample();
            edit(&mut c);
            let err = publish(&path, &c).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(err.to_string().contains(want), "{err}");
            assert!(!path.exists());
        }
        // Commas are fine in a gecos field.
        let mut c = sample();
        c.users[0].gecos = "Full Name,Room,Phone,,".into();
        publish(&path, &c).unwrap();
    }

    #[test]
    fn is_shared_in_file_reads_without_mapping() {
        let tmp = TempDir::new("shared");
        let path = tmp.0.join("nss.cache");
        match is_shared_in_file(&path, b"root") {
            Err(CacheError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
            other => panic!("missing file gave {other:?}"),
        }
        publish(&path, &sample()).unwrap();
        assert!(is_shared_in_file(&path, b"root").unwrap());
        assert!(is_shared_in_file(&path, b"admin").unwrap());
        assert!(!is_shared_in_file(&path, b"alice").unwrap());
        let mut bytes = fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 1);
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            is_shared_in_file(&path, b"root"),
            Err(CacheError::Corrupt(_))
        ));
        // Not a regular file: refused before opening (a FIFO would block the read).
        assert!(matches!(
            is_shared_in_file(&tmp.0, b"root"),
            Err(CacheError::Corrupt(_))
        ));
    }
}
