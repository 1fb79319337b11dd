//! The writer: jitd serializes [`CacheContents`] ([`encode`]) and replaces the file atomically
//! ([`publish`]).

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::checksum::checksum;
use crate::{
    CHECKED_FROM, CHECKSUM_OFFSET, GROUP_REC, GUARDED_REC, HEADER_LEN, ID_REC, MAGIC, MAX_FILE_LEN,
    MEMBER_INDEX_REC, STALE_MARK, STALE_OFFSET, UID_KNOWN, USER_REC, VERSION,
};

/// What jitd writes: public account data only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheContents {
    /// Increases with every change jitd publishes.
    pub generation: u64,
    /// Virtual accounts, served as passwd (and a locked shadow) entries.
    pub users: Vec<CacheUser>,
    /// Groups served by nss_jit: each virtual account's primary group and supplementary groups.
    pub groups: Vec<CacheGroup>,
    /// Every name jit guards on this host (see [`CacheGuarded`]). pam_jit and jitd decide from
    /// it whether a login is jit's to check; jitd also lists these names as members of the
    /// group that sshd's drop-in matches (`jit-guarded`).
    pub guarded: Vec<CacheGuarded>,
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

/// A name jit guards: a shared account (virtual, or from the host's own files such as `root`),
/// or another name of the host's own files that has a shared account's uid (`toor`, uid 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheGuarded {
    /// The login name.
    pub name: String,
    /// The shared account it stands for (the name itself for a shared account): the one a
    /// reservation is made for.
    pub account: String,
    /// Its uid, when jitd knows it: from the server for a virtual account, from the host's own
    /// files for the others. A login whose uid is listed here is guarded whatever its name.
    pub uid: Option<u32>,
}

impl CacheGuarded {
    /// A shared account named `name`.
    pub fn account(name: &str, uid: Option<u32>) -> Self {
        CacheGuarded {
            name: name.to_owned(),
            account: name.to_owned(),
            uid,
        }
    }
}

/// Sorted, de-duplicated form of [`CacheContents`], as laid out in the file.
struct Layout<'c> {
    users: Vec<&'c CacheUser>,
    groups: Vec<(&'c CacheGroup, Vec<&'c str>)>,
    guarded: Vec<&'c CacheGuarded>,
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
        let mut guarded: Vec<&CacheGuarded> = c.guarded.iter().collect();
        guarded.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        guarded.dedup_by(|b, a| a.name == b.name);
        Layout {
            users,
            groups,
            guarded,
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
/// Users, groups and guarded names are sorted by name; a repeated name keeps its first entry, and
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

    let mut guarded = Vec::with_capacity(layout.guarded.len() * GUARDED_REC);
    let mut guarded_uids: Vec<(u32, u32)> = Vec::new();
    for (i, g) in layout.guarded.iter().enumerate() {
        guarded.extend_from_slice(&strings.add(&g.name));
        guarded.extend_from_slice(&strings.add(&g.account));
        guarded.extend_from_slice(&g.uid.unwrap_or(0).to_le_bytes());
        let flags = if g.uid.is_some() { UID_KNOWN } else { 0 };
        guarded.extend_from_slice(&flags.to_le_bytes());
        if let Some(uid) = g.uid {
            guarded_uids.push((uid, clamp32(i)));
        }
    }
    guarded_uids.sort_unstable();

    let id_table = |ids: &[(u32, u32)]| -> Vec<u8> {
        ids.iter()
            .flat_map(|(id, i)| id.to_le_bytes().into_iter().chain(i.to_le_bytes()))
            .collect()
    };
    let uids = id_table(&uids);
    let gids = id_table(&gids);
    let guarded_uids = id_table(&guarded_uids);
    let mut index = Vec::with_capacity(member_index.len() * MEMBER_INDEX_REC);
    for (m, i) in &member_index {
        index.extend_from_slice(&strings.add(m));
        index.extend_from_slice(&i.to_le_bytes());
    }

    let tables: [&[u8]; 9] = [
        &users,
        &uids,
        &groups,
        &gids,
        &members,
        &index,
        &guarded,
        &guarded_uids,
        &strings.bytes,
    ];
    let mut offsets = [0u32; 9];
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
        layout.guarded.len(),
        guarded_uids.len() / ID_REC,
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

/// Writes the checksum of `file` into its header. Public for tools that forge files on purpose:
/// the fuzzer (fuzz/) reseals what it mutates, so that its inputs reach the structural checks
/// behind the checksum.
pub fn seal(file: &mut [u8]) {
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
    let mut names = HashSet::new();
    for g in &contents.guarded {
        field("guarded name", &g.name, &g.name, true)?;
        field("account", &g.name, &g.account, true)?;
        if !names.insert(&g.name) {
            return Err(format!("guarded name {:?} is listed twice", g.name));
        }
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
