//! The module's process-wide state: the current copy of the cache and the enumeration cursors,
//! behind one mutex. Each exported function takes the lock for the length of one lookup (a
//! binary search and a copy), so there is no contention worth a lock-free design, and no threads
//! are started.
//!
//! Fork safety: a child has only the thread that called `fork`, so a lock another thread held at
//! that moment would stay held in the child forever, and its first lookup would hang. Fork
//! handlers, registered when the module is loaded, take the lock before `fork` (waiting for a
//! lookup in progress to finish, which also leaves the state consistent) and release it again in
//! the parent and in the child. glibc runs prepare handlers before it takes its own malloc locks,
//! so a lookup that allocates (a new copy) while holding ours can still finish. Two things would
//! still wait forever, as they would with glibc's own locks: a `fork` from a signal handler that
//! interrupted a lookup on the same thread, and a lookup from another library's fork handler.
//! The handlers are registered through `pthread_atfork`, which glibc implements in
//! libc_nonshared.a with this object's `__dso_handle`, so glibc removes them if the module is
//! ever unloaded.

use std::cell::UnsafeCell;
use std::ffi::CStr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use libc::{c_int, gid_t};

use crate::buffer::Buffer;
use crate::cursor::Cursor;
use crate::gid_list::GidList;
use crate::lookup;
use crate::mapping::{Source, coarse_now_ms};
use crate::status::Outcome;

/// jit_proto's DEFAULT_RUN_PATH, then DEFAULT_STATE_PATH. Fixed at build time: setuid programs
/// load this module, so nothing in the environment may redirect it.
pub static PATHS: [&CStr; 2] = [c"/run/jitd/nss.cache", c"/var/lib/jitd/nss.cache"];

static STATE: Mutex<State<'static>> = Mutex::new(State::new(&PATHS, coarse_now_ms));

fn lock() -> MutexGuard<'static, State<'static>> {
    // A panic while the lock was held leaves nothing half-written (each field is replaced
    // whole), so a poisoned lock is still good to use.
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `f` on the process-wide state.
pub fn with<R>(f: impl FnOnce(&mut State<'static>) -> R) -> R {
    f(&mut lock())
}

/// The lock, held across a `fork` from the prepare handler to the parent or child handler.
struct HeldForFork(UnsafeCell<Option<MutexGuard<'static, State<'static>>>>);

// SAFETY: only the fork handlers touch it. glibc runs them in the forking thread, one fork at a
// time (under its own atfork lock), prepare strictly before parent or child.
unsafe impl Sync for HeldForFork {}

static HELD_FOR_FORK: HeldForFork = HeldForFork(UnsafeCell::new(None));

extern "C" fn before_fork() {
    let guard = lock();
    // SAFETY: see `HeldForFork`.
    unsafe { *HELD_FOR_FORK.0.get() = Some(guard) };
}

/// Both the parent's and the child's handler: the child's copy of the lock is released by the
/// only thread it has, which is the one that took it.
extern "C" fn after_fork() {
    // SAFETY: see `HeldForFork`.
    drop(unsafe { (*HELD_FOR_FORK.0.get()).take() });
}

/// Registers the fork handlers when the module is loaded (an ELF constructor), before any
/// lookup can take the lock, and without a lazy `Once` that a fork could catch halfway.
extern "C" fn register_fork_handlers() {
    // SAFETY: plain function pointers with no arguments. On failure (ENOMEM) the module works as
    // it did without handlers; nothing here may panic.
    unsafe { libc::pthread_atfork(Some(before_fork), Some(after_fork), Some(after_fork)) };
}

#[used]
#[unsafe(link_section = ".init_array")]
static REGISTER_FORK_HANDLERS: extern "C" fn() = register_fork_handlers;

pub struct State<'p> {
    source: Source<'p>,
    clock: fn() -> u64,
    passwd: Cursor,
    group: Cursor,
    shadow: Cursor,
}

impl<'p> State<'p> {
    pub const fn new(paths: &'p [&'p CStr], clock: fn() -> u64) -> Self {
        State {
            source: Source::new(paths),
            clock,
            passwd: Cursor::new(),
            group: Cursor::new(),
            shadow: Cursor::new(),
        }
    }

    fn answer(&mut self, f: impl FnOnce(&jit_nss_cache::CacheView<'_>) -> Outcome) -> Outcome {
        match self.source.get(self.clock) {
            Ok(map) => f(map.view()),
            Err(errno) => Outcome::Unavailable(errno),
        }
    }

    pub fn getpwnam(
        &mut self,
        name: &[u8],
        out: &mut libc::passwd,
        buf: &mut Buffer<'_>,
    ) -> Outcome {
        self.answer(|v| lookup::passwd_by_name(v, name, out, buf))
    }

    pub fn getpwuid(&mut self, uid: u32, out: &mut libc::passwd, buf: &mut Buffer<'_>) -> Outcome {
        self.answer(|v| lookup::passwd_by_uid(v, uid, out, buf))
    }

    pub fn getgrnam(
        &mut self,
        name: &[u8],
        out: &mut libc::group,
        buf: &mut Buffer<'_>,
    ) -> Outcome {
        self.answer(|v| lookup::group_by_name(v, name, out, buf))
    }

    pub fn getgrgid(&mut self, gid: u32, out: &mut libc::group, buf: &mut Buffer<'_>) -> Outcome {
        self.answer(|v| lookup::group_by_gid(v, gid, out, buf))
    }

    pub fn getspnam(&mut self, name: &[u8], out: &mut libc::spwd, buf: &mut Buffer<'_>) -> Outcome {
        self.answer(|v| lookup::shadow_by_name(v, name, out, buf))
    }

    pub fn initgroups(&mut self, user: &[u8], primary: gid_t, list: &mut GidList<'_>) -> Outcome {
        self.answer(|v| lookup::initgroups(v, user, primary, list))
    }

    fn start(&mut self) -> Result<std::sync::Arc<crate::mapping::Mapping>, c_int> {
        self.source.get(self.clock).cloned()
    }

    pub fn setpwent(&mut self) -> Outcome {
        let map = self.start();
        self.passwd.open(map)
    }

    pub fn getpwent(&mut self, out: &mut libc::passwd, buf: &mut Buffer<'_>) -> Outcome {
        // glibc may call get without set (files tolerates it too): start implicitly.
        if !self.passwd.is_open() {
            self.setpwent();
        }
        self.passwd.step(|v, i| lookup::passwd_at(v, i, out, buf))
    }

    pub fn endpwent(&mut self) {
        self.passwd.close();
    }

    pub fn setgrent(&mut self) -> Outcome {
        let map = self.start();
        self.group.open(map)
    }

    pub fn getgrent(&mut self, out: &mut libc::group, buf: &mut Buffer<'_>) -> Outcome {
        if !self.group.is_open() {
            self.setgrent();
        }
        self.group.step(|v, i| lookup::group_at(v, i, out, buf))
    }

    pub fn endgrent(&mut self) {
        self.group.close();
    }

    pub fn setspent(&mut self) -> Outcome {
        let map = self.start();
        self.shadow.open(map)
    }

    pub fn getspent(&mut self, out: &mut libc::spwd, buf: &mut Buffer<'_>) -> Outcome {
        if !self.shadow.is_open() {
            self.setspent();
        }
        self.shadow.step(|v, i| lookup::shadow_at(v, i, out, buf))
    }

    pub fn endspent(&mut self) {
        self.shadow.close();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use jit_nss_cache::publish;

    use super::*;
    use crate::mapping::RETRY_MS;
    use crate::test_support::{Scratch, c_path, contents, text};

    /// Every reading is a retry period after the last, so tests never wait on the throttle.
    fn tick() -> u64 {
        static NOW: AtomicU64 = AtomicU64::new(0);
        NOW.fetch_add(RETRY_MS, Ordering::Relaxed)
    }

    fn zeroed<T>() -> T {
        // SAFETY: plain C structs with nullable pointers.
        unsafe { std::mem::zeroed() }
    }

    fn enumerate(state: &mut State<'_>, scratch: &mut Scratch) -> Vec<String> {
        let mut names = Vec::new();
        let mut pw: libc::passwd = zeroed();
        while state.getpwent(&mut pw, &mut scratch.buffer(256)) == Outcome::Found {
            names.push(text(pw.pw_name));
        }
        names
    }

    #[test]
    fn lookups_answer_from_the_file_and_fail_soft_without_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nss.cache");
        let path_c = c_path(&path);
        let paths = [path_c.as_c_str()];
        let mut state = State::new(&paths, tick);
        let mut scratch = Scratch::new(256);
        let mut pw: libc::passwd = zeroed();
        let mut gr: libc::group = zeroed();
        assert_eq!(
            state.getpwnam(b"user0", &mut pw, &mut scratch.buffer(256)),
            Outcome::Unavailable(libc::ENOENT)
        );
        assert_eq!(state.setgrent(), Outcome::Unavailable(libc::ENOENT));
        assert_eq!(
            state.getgrent(&mut gr, &mut scratch.buffer(256)),
            Outcome::Unavailable(libc::ENOENT)
        );

        publish(&path, &contents(1, 2)).unwrap();
        assert_eq!(
            state.getpwnam(b"user1", &mut pw, &mut scratch.buffer(256)),
            Outcome::Found
        );
        assert_eq!((text(pw.pw_name), pw.pw_uid), ("user1".into(), 60001));
        assert_eq!(
            state.getpwuid(60000, &mut pw, &mut scratch.buffer(256)),
            Outcome::Found
        );
        assert_eq!(text(pw.pw_name), "user0");
        assert_eq!(
            state.getpwnam(b"user2", &mut pw, &mut scratch.buffer(256)),
            Outcome::NotFound
        );
        assert_eq!(
            state.getgrgid(60000, &mut gr, &mut scratch.buffer(256)),
            Outcome::Found
        );
        assert_eq!(
            state.getgrnam(b"jit", &mut gr, &mut scratch.buffer(4)),
            Outcome::TooSmall
        );
        let mut sp: libc::spwd = zeroed();
        assert_eq!(
            state.getspnam(b"user0", &mut sp, &mut scratch.buffer(256)),
            Outcome::Found
        );
        assert_eq!(text(sp.sp_pwdp), "*");
        // Enumeration: one locked entry per virtual account, then the end.
        assert_eq!(state.setspent(), Outcome::Found);
        let mut shadow = Vec::new();
        while state.getspent(&mut sp, &mut scratch.buffer(256)) == Outcome::Found {
            shadow.push((text(sp.sp_namp), text(sp.sp_pwdp)));
        }
        state.endspent();
        assert_eq!(
            shadow,
            [("user0".into(), "*".into()), ("user1".into(), "*".into())]
        );
    }

    #[test]
    fn enumeration_retries_the_same_entry_after_a_small_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nss.cache");
        publish(&path, &contents(1, 3)).unwrap();
        let path_c = c_path(&path);
        let paths = [path_c.as_c_str()];
        let mut state = State::new(&paths, tick);
        let mut scratch = Scratch::new(256);
        let mut pw: libc::passwd = zeroed();

        assert_eq!(state.setpwent(), Outcome::Found);
        assert_eq!(
            state.getpwent(&mut pw, &mut scratch.buffer(256)),
            Outcome::Found
        );
        assert_eq!(text(pw.pw_name), "user0");
        assert_eq!(
            state.getpwent(&mut pw, &mut scratch.buffer(3)),
            Outcome::TooSmall
        );
        assert_eq!(
            state.getpwent(&mut pw, &mut scratch.buffer(256)),
            Outcome::Found
        );
        assert_eq!(text(pw.pw_name), "user1");
        assert_eq!(enumerate(&mut state, &mut scratch), ["user2"]);
        assert_eq!(
            state.getpwent(&mut pw, &mut scratch.buffer(256)),
            Outcome::NotFound
        );

        // set rewinds; get after end starts over as if set had been called.
        state.setpwent();
        assert_eq!(
            enumerate(&mut state, &mut scratch),
            ["user0", "user1", "user2"]
        );
        state.endpwent();
        assert_eq!(
            enumerate(&mut state, &mut scratch),
            ["user0", "user1", "user2"]
        );
    }

    #[test]
    fn an_enumeration_sees_one_file_even_if_it_is_replaced_halfway() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nss.cache");
        publish(&path, &contents(1, 3)).unwrap();
        let path_c = c_path(&path);
        let paths = [path_c.as_c_str()];
        let mut state = State::new(&paths, tick);
        let mut scratch = Scratch::new(256);
        let mut pw: libc::passwd = zeroed();

        state.setpwent();
        assert_eq!(
            state.getpwent(&mut pw, &mut scratch.buffer(256)),
            Outcome::Found
        );
        publish(&path, &contents(2, 5)).unwrap();
        // Lookups move to the new file at once...
        assert_eq!(
            state.getpwnam(b"user4", &mut pw, &mut scratch.buffer(256)),
            Outcome::Found
        );
        // ...while the enumeration finishes the old one.
        assert_eq!(enumerate(&mut state, &mut scratch), ["user1", "user2"]);
        state.setpwent();
        assert_eq!(enumerate(&mut state, &mut scratch).len(), 5);

        // Groups have their own cursor.
        let mut gr: libc::group = zeroed();
        assert_eq!(
            state.getgrent(&mut gr, &mut scratch.buffer(256)),
            Outcome::Found
        );
        assert_eq!(text(gr.gr_name), "jit");
        assert_eq!(
            state.getgrent(&mut gr, &mut scratch.buffer(256)),
            Outcome::NotFound
        );
        state.endgrent();
    }

    #[test]
    fn fixed_paths_are_jit_protos_defaults() {
        use jit_nss_cache::{DEFAULT_RUN_PATH, DEFAULT_STATE_PATH};
        assert_eq!(PATHS[0].to_str(), Ok(DEFAULT_RUN_PATH));
        assert_eq!(PATHS[1].to_str(), Ok(DEFAULT_STATE_PATH));
    }
}
