//! The NSS cache file, as nss_jit reads it inside every process that looks up a user.
//!
//! Two modes, picked by the first byte. Raw: the rest is a file, with its length and checksum
//! fixed up so that mutations reach the structural checks; it is refused or answered from,
//! never a crash in someone else's process. Built: the rest describes users, groups and guarded
//! names; jitd's encoder writes them, and the reader must accept the file and find every entry.
#![no_main]

use jit_nss_cache::{
    CacheContents, CacheGroup, CacheGuarded, CacheUser, CacheView, HEADER_LEN, Joined, encode, seal,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((0, rest)) => built(rest),
        Some((_, rest)) => raw(rest),
        None => {}
    }
    if let Ok(text) = std::str::from_utf8(data) {
        // The joined marker: text jitd writes and the modules read.
        let joined = Joined::parse(text);
        let _ = joined.guards(data);
        assert_eq!(Joined::parse(&joined.render()).render(), joined.render());
    }
});

fn raw(rest: &[u8]) {
    let mut file = rest.to_vec();
    if file.len() >= HEADER_LEN {
        let len = u32::try_from(file.len()).unwrap_or(u32::MAX);
        file[32..36].copy_from_slice(&len.to_le_bytes());
        seal(&mut file);
    }
    let Ok(view) = CacheView::parse(&file) else {
        return;
    };
    let _ = (view.generation(), view.is_stale());
    for user in view.users().take(256) {
        assert_eq!(view.user_by_name(user.name), Some(user));
        assert!(view.user_by_uid(user.uid).is_some());
        let _ = view.groups_with_member(user.name).take(256).count();
    }
    for group in view.groups().take(256) {
        let _ = group.members().take(256).count();
        assert!(view.group_by_gid(group.gid).is_some());
        assert!(view.group_by_name(group.name).is_some());
    }
    let probe = &rest[..rest.len().min(32)];
    let _ = (view.user_by_name(probe), view.group_by_name(probe));
    assert_eq!(
        view.is_guarded(probe),
        view.guarded_by_name(probe).is_some()
    );
    let _ = view.guarded_by_uid(0);
}

/// Entries from fuzz bytes, valid by construction: names of [a-z0-9], unique per table.
fn built(rest: &[u8]) {
    let mut contents = CacheContents {
        generation: 1,
        ..Default::default()
    };
    for (i, chunk) in rest.chunks(6).enumerate() {
        let name = name_of(chunk, i);
        let id = u32::from(chunk.first().copied().unwrap_or(0)) * 7 + 1000;
        match chunk.last().copied().unwrap_or(0) % 3 {
            0 => contents.users.push(CacheUser {
                name,
                uid: id,
                gid: id,
                gecos: "g".into(),
                home: "/h".into(),
                shell: "/s".into(),
            }),
            1 => {
                let members = contents
                    .users
                    .iter()
                    .take(3)
                    .map(|u| u.name.clone())
                    .collect();
                contents.groups.push(CacheGroup {
                    name,
                    gid: id,
                    members,
                });
            }
            _ => contents.guarded.push(CacheGuarded {
                account: name.clone(),
                name,
                uid: (id % 2 == 0).then_some(id),
            }),
        }
    }
    let file = encode(&contents);
    let view = CacheView::parse(&file).expect("the reader accepts what the encoder wrote");
    for user in &contents.users {
        let found = view
            .user_by_name(user.name.as_bytes())
            .expect("every user is found");
        assert_eq!(found.uid, user.uid);
        assert!(view.user_by_uid(user.uid).is_some());
    }
    for group in &contents.groups {
        assert!(view.group_by_name(group.name.as_bytes()).is_some());
    }
    for guarded in &contents.guarded {
        assert!(view.is_guarded(guarded.name.as_bytes()));
    }
}

/// A name unique to position `i`, so that no table repeats one.
fn name_of(chunk: &[u8], i: usize) -> String {
    let letters: String = chunk
        .iter()
        .map(|b| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[usize::from(*b) % 36]))
        .collect();
    format!("{letters}-{i}")
}
