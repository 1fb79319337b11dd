//! Answers one lookup from a validated cache: finds the entry and writes it into glibc's struct
//! and buffer. Pure functions of their arguments; no I/O, no allocation.

use jit_nss_cache::{CacheView, Group, User};
use libc::{c_ulong, gid_t};

use crate::buffer::{Buffer, TooSmall};
use crate::gid_list::{GidList, NoMemory, Push};
use crate::status::Outcome;

/// Virtual accounts have no password: the hash lives nowhere, login goes through pam_jit.
const PASSWD_PLACEHOLDER: &[u8] = b"x";
/// Shadow entry of a virtual account: a hash no password matches, so pam_unix never accepts it.
const LOCKED: &[u8] = b"*";

fn answer<T>(found: Option<T>, fill: impl FnOnce(T) -> Result<(), TooSmall>) -> Outcome {
    match found.map(fill) {
        Some(Ok(())) => Outcome::Found,
        Some(Err(TooSmall)) => Outcome::TooSmall,
        None => Outcome::NotFound,
    }
}

pub fn fill_passwd(
    u: &User<'_>,
    out: &mut libc::passwd,
    buf: &mut Buffer<'_>,
) -> Result<(), TooSmall> {
    // Everything goes into the buffer first, so `out` is untouched when the buffer is too small.
    let name = buf.str(u.name)?;
    let passwd = buf.str(PASSWD_PLACEHOLDER)?;
    let gecos = buf.str(u.gecos)?;
    let dir = buf.str(u.home)?;
    let shell = buf.str(u.shell)?;
    out.pw_name = name;
    out.pw_passwd = passwd;
    out.pw_uid = u.uid;
    out.pw_gid = u.gid;
    out.pw_gecos = gecos;
    out.pw_dir = dir;
    out.pw_shell = shell;
    Ok(())
}

pub fn fill_group(
    g: &Group<'_>,
    out: &mut libc::group,
    buf: &mut Buffer<'_>,
) -> Result<(), TooSmall> {
    let name = buf.str(g.name)?;
    let passwd = buf.str(PASSWD_PLACEHOLDER)?;
    let members = buf.str_array(g.members())?;
    out.gr_name = name;
    out.gr_passwd = passwd;
    out.gr_gid = g.gid;
    out.gr_mem = members;
    Ok(())
}

/// A locked entry with every aging field unset (-1), as `getent shadow` shows `name:*:::::::`.
pub fn fill_shadow(
    u: &User<'_>,
    out: &mut libc::spwd,
    buf: &mut Buffer<'_>,
) -> Result<(), TooSmall> {
    let name = buf.str(u.name)?;
    let pwdp = buf.str(LOCKED)?;
    out.sp_namp = name;
    out.sp_pwdp = pwdp;
    out.sp_lstchg = -1;
    out.sp_min = -1;
    out.sp_max = -1;
    out.sp_warn = -1;
    out.sp_inact = -1;
    out.sp_expire = -1;
    out.sp_flag = c_ulong::MAX;
    Ok(())
}

pub fn passwd_by_name(
    v: &CacheView<'_>,
    name: &[u8],
    out: &mut libc::passwd,
    buf: &mut Buffer<'_>,
) -> Outcome {
    answer(v.user_by_name(name), |u| fill_passwd(&u, out, buf))
}

pub fn passwd_by_uid(
    v: &CacheView<'_>,
    uid: u32,
    out: &mut libc::passwd,
    buf: &mut Buffer<'_>,
) -> Outcome {
    answer(v.user_by_uid(uid), |u| fill_passwd(&u, out, buf))
}

/// The `index`th user of an enumeration.
pub fn passwd_at(
    v: &CacheView<'_>,
    index: usize,
    out: &mut libc::passwd,
    buf: &mut Buffer<'_>,
) -> Outcome {
    answer(v.users().nth(index), |u| fill_passwd(&u, out, buf))
}

pub fn group_by_name(
    v: &CacheView<'_>,
    name: &[u8],
    out: &mut libc::group,
    buf: &mut Buffer<'_>,
) -> Outcome {
    answer(v.group_by_name(name), |g| fill_group(&g, out, buf))
}

pub fn group_by_gid(
    v: &CacheView<'_>,
    gid: u32,
    out: &mut libc::group,
    buf: &mut Buffer<'_>,
) -> Outcome {
    answer(v.group_by_gid(gid), |g| fill_group(&g, out, buf))
}

pub fn group_at(
    v: &CacheView<'_>,
    index: usize,
    out: &mut libc::group,
    buf: &mut Buffer<'_>,
) -> Outcome {
    answer(v.groups().nth(index), |g| fill_group(&g, out, buf))
}

/// Only virtual accounts (the cache's users) get a shadow entry; shared accounts from the host's
/// files keep theirs.
pub fn shadow_by_name(
    v: &CacheView<'_>,
    name: &[u8],
    out: &mut libc::spwd,
    buf: &mut Buffer<'_>,
) -> Outcome {
    answer(v.user_by_name(name), |u| fill_shadow(&u, out, buf))
}

/// The `index`th shadow entry of an enumeration (one per virtual account).
pub fn shadow_at(
    v: &CacheView<'_>,
    index: usize,
    out: &mut libc::spwd,
    buf: &mut Buffer<'_>,
) -> Outcome {
    answer(v.users().nth(index), |u| fill_shadow(&u, out, buf))
}

/// Adds the gids of the cache's groups that list `user`, except `primary` (glibc adds that one
/// itself). Found if `user` is in any of them.
pub fn initgroups(
    v: &CacheView<'_>,
    user: &[u8],
    primary: gid_t,
    list: &mut GidList<'_>,
) -> Outcome {
    let mut any = false;
    for g in v.groups_with_member(user) {
        if g.gid == primary {
            continue;
        }
        any = true;
        match list.push(g.gid) {
            Ok(Push::Added | Push::Present) => {}
            Ok(Push::Full) => break,
            Err(NoMemory) => return Outcome::NoMemory,
        }
    }
    if any {
        Outcome::Found
    } else {
        Outcome::NotFound
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use jit_nss_cache::{CacheContents, CacheGroup, CacheGuarded, CacheUser, encode};
    use libc::{c_char, c_long};

    use super::*;

    fn contents() -> CacheContents {
        CacheContents {
            generation: 1,
            users: vec![CacheUser {
                name: "admin".into(),
                uid: 60001,
                gid: 60001,
                gecos: "Shared admin".into(),
                home: "/home/admin".into(),
                shell: "/bin/bash".into(),
            }],
            groups: vec![
                CacheGroup {
                    name: "admin".into(),
                    gid: 60001,
                    members: vec![],
                },
                CacheGroup {
                    name: "ops".into(),
                    gid: 60010,
                    members: vec!["admin".into(), "root".into()],
                },
                CacheGroup {
                    name: "web".into(),
                    gid: 60011,
                    members: vec!["admin".into()],
                },
                CacheGroup {
                    name: "self".into(),
                    gid: 60001 + 99,
                    members: vec!["deploy".into()],
                },
            ],
            guarded: vec![
                CacheGuarded::account("admin", Some(60001)),
                CacheGuarded::account("root", Some(0)),
            ],
        }
    }

    fn s(p: *const c_char) -> String {
        assert!(!p.is_null());
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    fn zeroed<T>() -> T {
        // SAFETY: only used for the libc structs below, which are plain data with nullable pointers.
        unsafe { std::mem::zeroed() }
    }

    /// A pointer-aligned scratch buffer.
    fn scratch(len: usize) -> Vec<u64> {
        vec![0u64; len.div_ceil(8)]
    }

    fn buffer(mem: &mut [u64], len: usize) -> Buffer<'_> {
        Buffer::new(&mut bytemuck(mem)[..len])
    }

    fn bytemuck(mem: &mut [u64]) -> &mut [u8] {
        let len = mem.len() * 8;
        unsafe { std::slice::from_raw_parts_mut(mem.as_mut_ptr().cast(), len) }
    }

    #[test]
    fn passwd_hit_fills_every_field() {
        let bytes = encode(&contents());
        let v = CacheView::parse(&bytes).unwrap();
        let mut mem = scratch(256);
        let mut pw: libc::passwd = zeroed();
        assert_eq!(
            passwd_by_name(&v, b"admin", &mut pw, &mut buffer(&mut mem, 256)),
            Outcome::Found
        );
        assert_eq!(
            (s(pw.pw_name), s(pw.pw_passwd), pw.pw_uid, pw.pw_gid),
            ("admin".into(), "x".into(), 60001, 60001)
        );
        assert_eq!(
            (s(pw.pw_gecos), s(pw.pw_dir), s(pw.pw_shell)),
            (
                "Shared admin".into(),
                "/home/admin".into(),
                "/bin/bash".into()
            )
        );

        let mut pw2: libc::passwd = zeroed();
        assert_eq!(
            passwd_by_uid(&v, 60001, &mut pw2, &mut buffer(&mut mem, 256)),
            Outcome::Found
        );
        assert_eq!(s(pw2.pw_name), "admin");
        assert_eq!(
            passwd_by_uid(&v, 0, &mut pw2, &mut buffer(&mut mem, 256)),
            Outcome::NotFound
        );
        assert_eq!(
            passwd_by_name(&v, b"root", &mut pw2, &mut buffer(&mut mem, 256)),
            Outcome::NotFound
        );
    }

    #[test]
    fn small_buffers_ask_for_a_retry_and_leave_the_struct_alone() {
        let bytes = encode(&contents());
        let v = CacheView::parse(&bytes).unwrap();
        // "admin\0x\0Shared admin\0/home/admin\0/bin/bash\0"
        let need = 6 + 2 + 13 + 12 + 10;
        let mut mem = scratch(need);
        for len in 0..need {
            let mut pw: libc::passwd = zeroed();
            assert_eq!(
                passwd_by_name(&v, b"admin", &mut pw, &mut buffer(&mut mem, len)),
                Outcome::TooSmall
            );
            assert!(pw.pw_name.is_null(), "struct touched with {len} bytes");
        }
        let mut pw: libc::passwd = zeroed();
        assert_eq!(
            passwd_by_name(&v, b"admin", &mut pw, &mut buffer(&mut mem, need)),
            Outcome::Found
        );
        // A miss never needs the buffer.
        assert_eq!(
            passwd_by_name(&v, b"nobody", &mut pw, &mut buffer(&mut mem, 0)),
            Outcome::NotFound
        );
    }

    #[test]
    fn group_hit_lists_members() {
        let bytes = encode(&contents());
        let v = CacheView::parse(&bytes).unwrap();
        let mut mem = scratch(256);
        let mut gr: libc::group = zeroed();
        assert_eq!(
            group_by_name(&v, b"ops", &mut gr, &mut buffer(&mut mem, 256)),
            Outcome::Found
        );
        assert_eq!(
            (s(gr.gr_name), s(gr.gr_passwd), gr.gr_gid),
            ("ops".into(), "x".into(), 60010)
        );
        let members: Vec<String> = (0..)
            .map(|i| unsafe { *gr.gr_mem.add(i) })
            .take_while(|p| !p.is_null())
            .map(|p| s(p))
            .collect();
        assert_eq!(members, ["admin", "root"]);

        let mut gr: libc::group = zeroed();
        assert_eq!(
            group_by_gid(&v, 60001, &mut gr, &mut buffer(&mut mem, 256)),
            Outcome::Found
        );
        assert_eq!(s(gr.gr_name), "admin");
        assert!(unsafe { *gr.gr_mem }.is_null());
        assert_eq!(
            group_by_gid(&v, 5, &mut gr, &mut buffer(&mut mem, 256)),
            Outcome::NotFound
        );
        assert_eq!(
            group_by_name(&v, b"ops", &mut gr, &mut buffer(&mut mem, 12)),
            Outcome::TooSmall
        );
    }

    #[test]
    fn shadow_is_locked_for_virtual_accounts_only() {
        let bytes = encode(&contents());
        let v = CacheView::parse(&bytes).unwrap();
        let mut mem = scratch(64);
        let mut sp: libc::spwd = zeroed();
        assert_eq!(
            shadow_by_name(&v, b"admin", &mut sp, &mut buffer(&mut mem, 64)),
            Outcome::Found
        );
        assert_eq!((s(sp.sp_namp), s(sp.sp_pwdp)), ("admin".into(), "*".into()));
        assert_eq!(
            [
                sp.sp_lstchg,
                sp.sp_min,
                sp.sp_max,
                sp.sp_warn,
                sp.sp_inact,
                sp.sp_expire
            ],
            [-1; 6]
        );
        assert_eq!(sp.sp_flag, c_ulong::MAX);
        // root is shared but lives in the host's files, shadow included.
        assert_eq!(
            shadow_by_name(&v, b"root", &mut sp, &mut buffer(&mut mem, 64)),
            Outcome::NotFound
        );
    }

    #[test]
    fn enumeration_by_position() {
        let bytes = encode(&contents());
        let v = CacheView::parse(&bytes).unwrap();
        let mut mem = scratch(256);
        let mut gr: libc::group = zeroed();
        let mut names = Vec::new();
        for i in 0.. {
            match group_at(&v, i, &mut gr, &mut buffer(&mut mem, 256)) {
                Outcome::Found => names.push(s(gr.gr_name)),
                other => {
                    assert_eq!(other, Outcome::NotFound);
                    break;
                }
            }
        }
        assert_eq!(names, ["admin", "ops", "self", "web"]);
        let mut pw: libc::passwd = zeroed();
        assert_eq!(
            passwd_at(&v, 0, &mut pw, &mut buffer(&mut mem, 256)),
            Outcome::Found
        );
        assert_eq!(
            passwd_at(&v, 1, &mut pw, &mut buffer(&mut mem, 256)),
            Outcome::NotFound
        );
        assert_eq!(
            passwd_at(&v, usize::MAX, &mut pw, &mut buffer(&mut mem, 256)),
            Outcome::NotFound
        );
    }

    #[test]
    fn initgroups_adds_supplementary_groups_but_not_the_primary() {
        let bytes = encode(&contents());
        let v = CacheView::parse(&bytes).unwrap();
        let run = |user: &[u8], primary: gid_t, limit: c_long| {
            let mut size: c_long = 1;
            let mut groups = unsafe { libc::malloc(size_of::<gid_t>()) }.cast::<gid_t>();
            unsafe { groups.write(primary) };
            let mut start: c_long = 1;
            let mut list =
                unsafe { GidList::from_raw(&mut start, &mut size, &mut groups, limit) }.unwrap();
            let outcome = initgroups(&v, user, primary, &mut list);
            let gids = unsafe { std::slice::from_raw_parts(groups, start as usize) }.to_vec();
            unsafe { libc::free(groups.cast()) };
            (outcome, gids)
        };
        assert_eq!(
            run(b"admin", 60001, 0),
            (Outcome::Found, vec![60001, 60010, 60011])
        );
        assert_eq!(run(b"root", 0, 0), (Outcome::Found, vec![0, 60010]));
        assert_eq!(
            run(b"admin", 60001, 2),
            (Outcome::Found, vec![60001, 60010])
        );
        assert_eq!(run(b"alice", 100, 0), (Outcome::NotFound, vec![100]));
        // Listed only in its own primary group: nothing to add.
        assert_eq!(run(b"deploy", 60100, 0), (Outcome::NotFound, vec![60100]));
    }
}
