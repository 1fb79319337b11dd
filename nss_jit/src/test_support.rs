//! Fixtures for the unit tests: a cache published into a temp dir with jitd's own writer.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use jit_nss_cache::{CacheContents, CacheGroup, CacheGuarded, CacheUser};

/// `count` users named `user0`, `user1`, … with uids from 60000, in one group; `generation`
/// tells files apart.
pub fn contents(generation: u64, count: u32) -> CacheContents {
    let users: Vec<CacheUser> = (0..count)
        .map(|i| CacheUser {
            name: format!("user{i}"),
            uid: 60000 + i,
            gid: 60000,
            gecos: format!("generation {generation}"),
            home: format!("/home/user{i}"),
            shell: "/bin/sh".into(),
        })
        .collect();
    CacheContents {
        generation,
        groups: vec![CacheGroup {
            name: "jit".into(),
            gid: 60000,
            members: users.iter().map(|u| u.name.clone()).collect(),
        }],
        guarded: users
            .iter()
            .map(|u| CacheGuarded::account(&u.name, Some(u.uid)))
            .collect(),
        users,
    }
}

pub fn c_path(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// A pointer-aligned buffer for glibc structs' strings.
pub struct Scratch(Vec<u64>);

impl Scratch {
    pub fn new(bytes: usize) -> Self {
        Scratch(vec![0; bytes.div_ceil(8)])
    }

    pub fn buffer(&mut self, len: usize) -> crate::buffer::Buffer<'_> {
        let all = self.0.len() * 8;
        // SAFETY: the Vec<u64> owns `all` initialized bytes.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<u8>(), all) };
        crate::buffer::Buffer::new(&mut bytes[..len.min(all)])
    }
}

pub fn text(p: *const libc::c_char) -> String {
    assert!(!p.is_null());
    // SAFETY: filled by the module with a NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}
