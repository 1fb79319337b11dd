//! The reader: [`CacheView`] validates a file's bytes once and then answers lookups from them
//! without allocating.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use crate::checksum::checksum;
use crate::write::{CacheContents, CacheGroup, CacheGuarded, CacheUser};
use crate::{
    CHECKED_FROM, CHECKSUM_OFFSET, GROUP_REC, GUARDED_REC, HEADER_LEN, ID_REC, MAGIC, MAX_FILE_LEN,
    MEMBER_INDEX_REC, MEMBER_REC, STALE_OFFSET, UID_KNOWN, USER_REC, VERSION,
};

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

/// Reads the file at `path` whole, without mapping it, refusing what is not a regular file or is
/// over [`MAX_FILE_LEN`]. A missing file is `CacheError::Io` with [`io::ErrorKind::NotFound`].
pub fn read_file(path: &Path) -> Result<Vec<u8>, CacheError> {
    // Checked before opening: opening a FIFO planted at the path would block the reader.
    if !fs::metadata(path)?.is_file() {
        return Err(corrupt(format!("{} is not a regular file", path.display())));
    }
    let file = File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > MAX_FILE_LEN {
        return Err(corrupt(format!("over the {MAX_FILE_LEN}-byte limit")));
    }
    Ok(bytes)
}

/// The string whose StrRef (offset, length) is at `rec[at..]`, if it lies inside `strings`.
fn str_in<'a>(strings: &'a [u8], rec: &[u8], at: usize) -> Option<&'a [u8]> {
    let (off, len) = (
        u32_at(rec, at) as usize,
        u32_at(rec, at.wrapping_add(4)) as usize,
    );
    strings.get(off..off.checked_add(len)?)
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
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

/// A name jit guards (see [`CacheGuarded`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guarded<'a> {
    pub name: &'a [u8],
    /// The shared account the name stands for.
    pub account: &'a [u8],
    pub uid: Option<u32>,
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
    guarded: Table<'a>,
    guarded_uids: Table<'a>,
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
        let guarded_count = u32_at(header, 48) as usize;
        let guarded_uid_count = u32_at(header, 52) as usize;
        let strings = table("string", 88, u32_at(header, 92) as usize, 1)?.bytes;
        let view = CacheView {
            generation: u64_at(header, 24),
            stale: u32_at(header, STALE_OFFSET) != 0,
            strings,
            users: table("user", 56, user_count, USER_REC)?,
            uids: table("uid", 60, user_count, ID_REC)?,
            groups: table("group", 64, group_count, GROUP_REC)?,
            gids: table("gid", 68, group_count, ID_REC)?,
            members: table("member", 72, member_count, MEMBER_REC)?,
            member_index: table("member index", 76, member_count, MEMBER_INDEX_REC)?,
            guarded: table("guarded", 80, guarded_count, GUARDED_REC)?,
            guarded_uids: table("guarded uid", 84, guarded_uid_count, ID_REC)?,
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
        for i in 0..self.guarded.len() {
            let r = self.guarded.get(i).unwrap_or_default();
            let name = self.checked_str(r, 0, "guarded name")?;
            self.checked_str(r, 8, "guarded account")?;
            ascending(&mut prev, name, "guarded names")?;
        }
        // Every record with a uid is indexed once, and the index holds nothing else.
        let with_uid = (0..self.guarded.len())
            .filter(|&i| {
                self.guarded
                    .get(i)
                    .is_some_and(|r| u32_at(r, 20) & UID_KNOWN != 0)
            })
            .count();
        if with_uid != self.guarded_uids.len() {
            return Err(corrupt(
                "guarded uid index does not list exactly the names with a uid",
            ));
        }
        let mut prev: Option<(u32, u32)> = None;
        for i in 0..self.guarded_uids.len() {
            let r = self.guarded_uids.get(i).unwrap_or_default();
            let key = (u32_at(r, 0), u32_at(r, 4));
            match self.guarded.get(key.1 as usize) {
                Some(rec) if u32_at(rec, 20) & UID_KNOWN != 0 && u32_at(rec, 16) == key.0 => {}
                _ => {
                    return Err(corrupt(format!(
                        "guarded uid index entry {i} does not match its record"
                    )));
                }
            }
            if prev.is_some_and(|p| p >= key) {
                return Err(corrupt("guarded uid index is not sorted"));
            }
            prev = Some(key);
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

    fn guarded_at(&self, i: usize) -> Option<Guarded<'a>> {
        let r = self.guarded.get(i)?;
        Some(Guarded {
            name: self.str(r, 0),
            account: self.str(r, 8),
            uid: (u32_at(r, 20) & UID_KNOWN != 0).then(|| u32_at(r, 16)),
        })
    }

    /// The guarded name `name`, if jit guards it.
    pub fn guarded_by_name(&self, name: &[u8]) -> Option<Guarded<'a>> {
        self.guarded_at(self.find_name(self.guarded, name)?)
    }

    /// A guarded name with this uid; of several, the first by name. A login to any name that
    /// resolves to this uid is a login to that name's account.
    pub fn guarded_by_uid(&self, uid: u32) -> Option<Guarded<'a>> {
        self.guarded_at(Self::find_id(self.guarded_uids, uid)?)
    }

    /// Whether jit guards `name` (by name only; see [`crate::decide`] for the whole rule).
    pub fn is_guarded(&self, name: &[u8]) -> bool {
        self.find_name(self.guarded, name).is_some()
    }

    /// Every guarded name, by name.
    pub fn guarded(&self) -> GuardedNames<'a> {
        GuardedNames {
            view: *self,
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
            guarded: self
                .guarded()
                .map(|g| CacheGuarded {
                    name: s(g.name),
                    account: s(g.account),
                    uid: g.uid,
                })
                .collect(),
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
            guarded: Table::EMPTY,
            guarded_uids: Table::EMPTY,
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

/// Iterator over a list of names (a group's members).
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

/// Iterator over every guarded name, by name.
#[derive(Debug, Clone)]
pub struct GuardedNames<'a> {
    view: CacheView<'a>,
    next: usize,
}

impl<'a> Iterator for GuardedNames<'a> {
    type Item = Guarded<'a>;
    fn next(&mut self) -> Option<Guarded<'a>> {
        let g = self.view.guarded_at(self.next)?;
        self.next += 1;
        Some(g)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.view.guarded.len().saturating_sub(self.next);
        (n, Some(n))
    }
}

impl ExactSizeIterator for GuardedNames<'_> {}

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
