//! The format's unit tests: round trips, lookups, and every kind of damage a reader must survive.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::read::u32_at;
use crate::write::seal;

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
        guarded: vec![
            CacheGuarded::account("root", Some(0)),
            CacheGuarded::account("deploy", Some(60002)),
            CacheGuarded::account("admin", Some(60001)),
            CacheGuarded::account("toor", Some(60001)),
            CacheGuarded {
                name: "r00t".into(),
                account: "root".into(),
                uid: Some(0),
            },
            CacheGuarded::account("ldap", None),
        ],
    }
}

/// `sample()` as the file stores it: everything sorted by name.
fn sample_sorted() -> CacheContents {
    let mut c = sample();
    c.users.sort_by(|a, b| a.name.cmp(&b.name));
    c.groups.sort_by(|a, b| a.name.cmp(&b.name));
    c.guarded.sort_by(|a, b| a.name.cmp(&b.name));
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
        n += v.is_guarded(name) as usize;
        n += v.guarded_by_name(name).is_some() as usize;
    }
    for id in [0, 60001, 60002, 60010, u32::MAX] {
        n += v.user_by_uid(id).is_some() as usize + v.group_by_gid(id).is_some() as usize;
        n += v.guarded_by_uid(id).is_some() as usize;
    }
    n + v.guarded().count() + v.to_contents().users.len()
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
fn guarded_names_include_accounts_from_files_and_their_uids() {
    let bytes = encode(&sample());
    let v = CacheView::parse(&bytes).unwrap();
    for yes in ["root", "admin", "deploy", "toor", "r00t", "ldap"] {
        assert!(v.is_guarded(yes.as_bytes()), "{yes}");
    }
    for no in ["", "alice", "roo", "rootx", "web", "ROOT"] {
        assert!(!v.is_guarded(no.as_bytes()), "{no}");
        assert!(v.guarded_by_name(no.as_bytes()).is_none(), "{no}");
    }
    let r00t = v.guarded_by_name(b"r00t").unwrap();
    assert_eq!((r00t.account, r00t.uid), (&b"root"[..], Some(0)));
    assert_eq!(v.guarded_by_name(b"ldap").unwrap().uid, None);
    // A uid held by several names: the first by name answers, with its account.
    let zero = v.guarded_by_uid(0).unwrap();
    assert_eq!((zero.name, zero.account), (&b"r00t"[..], &b"root"[..]));
    assert_eq!(v.guarded_by_uid(60001).unwrap().name, b"admin");
    assert_eq!(v.guarded_by_uid(60002).unwrap().account, b"deploy");
    for miss in [1, 1000, 60003, u32::MAX] {
        assert!(v.guarded_by_uid(miss).is_none(), "{miss}");
    }
    assert_eq!(
        names(v.guarded().map(|g| g.name)),
        ["admin", "deploy", "ldap", "r00t", "root", "toor"]
    );
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
    c.guarded.push(CacheGuarded::account("root", Some(5)));
    let bytes = encode(&c);
    let v = CacheView::parse(&bytes).unwrap();
    assert_eq!(v.user_by_name(b"admin").unwrap().uid, 60001);
    assert_eq!(v.group_by_name(b"ops").unwrap().gid, 60010);
    assert_eq!(
        names(v.group_by_name(b"web").unwrap().members()),
        ["deploy", "admin"]
    );
    assert_eq!(v.guarded().count(), 6);
    assert_eq!(v.guarded_by_name(b"root").unwrap().uid, Some(0));
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
            for at in (36..HEADER_LEN).step_by(4) {
                let v = (rng.below(len as usize)) as u32;
                put32(&mut b, at, if at < 56 { v % 4 } else { v });
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
    let users = get32(&clean, 56);
    let uids = get32(&clean, 60);
    let groups = get32(&clean, 64);
    let index = get32(&clean, 76);
    let guarded = get32(&clean, 80);
    let guarded_uids = get32(&clean, 84);
    let strings_len = get32(&clean, 92) as u32;
    type Edit = Box<dyn FnOnce(&mut Vec<u8>)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        ("bad magic", Box::new(|b| b[0] = b'X'), "bad magic"),
        (
            "newer version",
            Box::new(|b| put32(b, 8, 3)),
            "format version 3",
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
                put32(b, 56, len);
            }),
            "user table",
        ),
        (
            "user table inside the header",
            Box::new(|b| put32(b, 56, 0)),
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
            "guarded names out of order",
            Box::new(move |b| {
                let (first, second) =
                    b[guarded..guarded + 2 * GUARDED_REC].split_at_mut(GUARDED_REC);
                first.swap_with_slice(second);
            }),
            "guarded names are not sorted",
        ),
        (
            "guarded account past the strings",
            Box::new(move |b| put32(b, guarded + 8, strings_len)),
            "guarded account points outside",
        ),
        (
            "guarded uid disagrees with its record",
            Box::new(move |b| put32(b, guarded_uids, 7)),
            "guarded uid index entry 0 does not match",
        ),
        (
            "guarded uid index out of order",
            Box::new(move |b| {
                let (first, second) =
                    b[guarded_uids..guarded_uids + 2 * ID_REC].split_at_mut(ID_REC);
                first.swap_with_slice(second);
            }),
            "guarded uid index is not sorted",
        ),
        (
            "a uid the index leaves out",
            Box::new(|b| put32(b, 52, 3)),
            "does not list exactly the names with a uid",
        ),
        (
            "a record whose uid flag is cleared",
            Box::new(move |b| put32(b, guarded + 20, 0)),
            "does not list exactly the names with a uid",
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
        let p =
            std::env::temp_dir().join(format!("jit-nss-cache-{tag}-{}-{n}", std::process::id()));
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
        (
            |c| c.guarded.push(CacheGuarded::account("x:y", None)),
            "guarded name",
        ),
        (
            |c| c.guarded[1].account = "a\nb".into(),
            "account of \"deploy\"",
        ),
        (
            |c| c.guarded.push(CacheGuarded::account("root", None)),
            "guarded name \"root\" is listed twice",
        ),
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
fn read_file_reads_regular_files_only() {
    let tmp = TempDir::new("read");
    let path = tmp.0.join("nss.cache");
    match read_file(&path) {
        Err(CacheError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
        other => panic!("missing file gave {other:?}"),
    }
    publish(&path, &sample()).unwrap();
    let bytes = read_file(&path).unwrap();
    assert!(CacheView::parse(&bytes).unwrap().is_guarded(b"root"));
    // Not a regular file: refused before opening (a FIFO would block the read).
    assert!(matches!(read_file(&tmp.0), Err(CacheError::Corrupt(_))));
}
