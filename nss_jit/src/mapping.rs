//! Copies jitd's cache file into private, read-only memory, and notices with at most one
//! `fstat` per clock tick when the file changed.
//!
//! # Why a private copy, not a shared mapping of the file
//!
//! This module is loaded into sshd, login, `ls` and every other process that resolves a user, so
//! nothing anyone does to the cache file may crash them. A mapping of a file (`MAP_SHARED`, and
//! `MAP_PRIVATE` too: truncation removes even privately copied pages) raises SIGBUS on any page
//! a truncation leaves past the end of the file. jitd only ever replaces the file by rename, but
//! an admin's `truncate -s 0`, `> nss.cache` or `cp x nss.cache` (which opens with `O_TRUNC`)
//! changes the mapped inode in place. Checking the size with `fstat` before each lookup (as SSSD's
//! memory cache clients do) narrows that window without closing it, and leaves the bytes free to
//! change under a lookup that trusts a validation done earlier. So [`Mapping::open`] reads the
//! file into an anonymous mapping, validates that copy once ([`CacheView::parse`]: checksum and
//! every offset) and makes it read-only with `mprotect`. Nothing can truncate or rewrite it, so
//! lookups read it without checks and cannot fault. The price is one private copy per process
//! (a cache of a few dozen accounts is one or two pages), made once per new file; a lookup is
//! still a binary search in memory with no I/O.
//!
//! # Noticing a new or changed file
//!
//! A private copy does not see the `stale` word jitd writes into the file it replaced, and
//! reading that word from a mapping of the file would bring the SIGBUS back. Instead [`Watch`]
//! keeps the file open and compares `fstat` of that descriptor (no path walk) with what it saw
//! when copying: a rename over the file drops its `st_nlink` to 0, a truncation or a rewrite in
//! place changes its size or timestamps (`cp`, `>`, `truncate` all set mtime and ctime). The stale
//! word is therefore not needed here; a copy whose header already carries it is discarded at once,
//! which keeps the module correct with what jitd writes.
//!
//! An `fstat` costs 0.6 to 1 µs on the virtual machine of docs/benchmarks.md, ten times the whole
//! in-memory lookup, so [`Source::get`] makes it at most once per reading of
//! `CLOCK_MONOTONIC_COARSE` (a vDSO read without a system call, which ticks every 1 to 4 ms): a
//! loop of lookups pays one `fstat` per tick, and a change is seen by the first lookup in a later
//! tick. The limit: a rewrite in place
//! that keeps the size and the timestamps the copy saw goes unnoticed until the file changes
//! again. That needs a kernel with coarse timestamps (before Linux 6.13's multigrain timestamps,
//! a write within the same tick kept ctime), and jitd never rewrites in place.
//!
//! A missing or bad file is retried at most once a second, so a host without jit pays a clock read
//! per lookup and nothing more. Never blocks: the file is opened with `O_NONBLOCK` (a FIFO planted
//! at the path cannot hang a lookup) and must be a regular file.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::Arc;

use jit_nss_cache::{CacheView, HEADER_LEN, MAX_FILE_LEN};
use libc::c_int;

/// How long to wait before trying again to open a missing or unusable file.
pub const RETRY_MS: u64 = 1000;

/// Opening a file that is there but unusable: wrong type, size, or contents.
const UNUSABLE: c_int = libc::ENOENT;

fn last_errno() -> c_int {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// What `fstat` says about one version of a file. Any difference means the file was replaced
/// (inode, link count), truncated or rewritten (size, timestamps), or that the descriptor number
/// now belongs to another file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    dev: u64,
    ino: u64,
    nlink: u64,
    size: i64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn fstat(fd: RawFd) -> Result<(Version, libc::mode_t), c_int> {
    // SAFETY: a zeroed `stat` is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: an out-pointer to a local; a bad `fd` is an error, not undefined behaviour.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(last_errno());
    }
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    let version = Version {
        dev: st.st_dev as u64,
        ino: st.st_ino as u64,
        nlink: st.st_nlink as u64,
        size: st.st_size as i64,
        mtime: (st.st_mtime as i64, st.st_mtime_nsec as i64),
        ctime: (st.st_ctime as i64, st.st_ctime_nsec as i64),
    };
    Ok((version, st.st_mode))
}

/// Anonymous private memory holding the copy: read-write while it is filled, read-only after.
#[derive(Debug)]
struct Copy {
    base: NonNull<libc::c_void>,
    len: usize,
}

impl Copy {
    fn new(len: usize) -> Result<Copy, OpenError> {
        // SAFETY: a fresh anonymous mapping; no file behind it, so nothing can truncate it.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(OpenError::Unusable(last_errno()));
        }
        let base = NonNull::new(addr).ok_or(OpenError::Unusable(UNUSABLE))?;
        Ok(Copy { base, len })
    }

    /// Fills the copy from `fd`. A file that ends early shrank while we read it.
    fn fill(&mut self, fd: RawFd) -> Result<(), OpenError> {
        let mut done = 0;
        while done < self.len {
            // SAFETY: writes at most the `len - done` bytes left in our own mapping.
            let n = unsafe {
                libc::pread(
                    fd,
                    self.base.as_ptr().cast::<u8>().add(done).cast(),
                    self.len - done,
                    libc::off_t::try_from(done).unwrap_or(libc::off_t::MAX),
                )
            };
            match n {
                0 => return Err(OpenError::Changed),
                n if n > 0 => done += n.unsigned_abs(),
                _ if last_errno() == libc::EINTR => {}
                _ => return Err(OpenError::Unusable(last_errno())),
            }
        }
        Ok(())
    }

    fn seal(&self) -> Result<(), OpenError> {
        // SAFETY: changes the protection of our own mapping only.
        if unsafe { libc::mprotect(self.base.as_ptr(), self.len, libc::PROT_READ) } != 0 {
            return Err(OpenError::Unusable(last_errno()));
        }
        Ok(())
    }

    /// # Safety
    /// The caller must not let the slice outlive `self`.
    unsafe fn bytes(&self) -> &'static [u8] {
        // SAFETY: `len` initialized bytes (anonymous memory starts zeroed) at `base`.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().cast(), self.len) }
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped.
        unsafe { libc::munmap(self.base.as_ptr(), self.len) };
    }
}

/// A validated private copy of a cache file. It never changes: a new file is a new `Mapping`.
#[derive(Debug)]
pub struct Mapping {
    /// Borrows `_copy`, which lives as long as `self`; handed out only as `CacheView<'_>`.
    /// Declared first so that it is dropped before the memory it points into.
    view: CacheView<'static>,
    /// Owns the memory `view` points into; never read otherwise.
    _copy: Copy,
}

// SAFETY: the copy is read-only memory owned by this value.
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

/// Why a file could not be copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// No file at the path.
    Missing,
    /// Replaced or changed while it was being copied (or already marked stale by jitd): the
    /// next file may already be in place, so look again at once.
    Changed,
    /// There, but not a valid cache file. Carries the errno to report.
    Unusable(c_int),
}

impl Mapping {
    /// Opens `path`, copies it and validates the copy. The [`Watch`] holds the file open to
    /// notice when it changes.
    pub fn open(path: &CStr) -> Result<(Mapping, Watch), OpenError> {
        let flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY;
        // SAFETY: `path` is a valid C string.
        let fd = unsafe { libc::open(path.as_ptr(), flags) };
        if fd < 0 {
            return Err(match last_errno() {
                libc::ENOENT | libc::ENOTDIR => OpenError::Missing,
                e => OpenError::Unusable(e),
            });
        }
        // SAFETY: `fd` was just opened and is owned by nothing else; closed on every error path.
        let fd = above_stdio(unsafe { OwnedFd::from_raw_fd(fd) })?;
        let (before, mode) = fstat(fd.as_raw_fd()).map_err(OpenError::Unusable)?;
        let len = usize::try_from(before.size).unwrap_or(usize::MAX);
        if mode & libc::S_IFMT != libc::S_IFREG || !(HEADER_LEN..=MAX_FILE_LEN).contains(&len) {
            return Err(OpenError::Unusable(UNUSABLE));
        }
        let mut copy = Copy::new(len)?;
        copy.fill(fd.as_raw_fd())?;
        let (after, _) = fstat(fd.as_raw_fd()).map_err(OpenError::Unusable)?;
        if after != before || after.nlink == 0 {
            return Err(OpenError::Changed);
        }
        copy.seal()?;
        // SAFETY: `view` is stored next to `copy` and dropped before it.
        let bytes = unsafe { copy.bytes() };
        let view = CacheView::parse(bytes).map_err(|_| OpenError::Unusable(UNUSABLE))?;
        if view.is_stale() {
            return Err(OpenError::Changed);
        }
        let watch = Watch {
            fd: fd.into_raw_fd(),
            version: after,
        };
        Ok((Mapping { view, _copy: copy }, watch))
    }

    pub fn view(&self) -> &CacheView<'_> {
        &self.view
    }
}

/// Moves `fd` to 3 or above. A process that closed its standard descriptors before its first
/// lookup (a daemon) would otherwise find our file where it reopens stdin, stdout or stderr.
fn above_stdio(fd: OwnedFd) -> Result<OwnedFd, OpenError> {
    if fd.as_raw_fd() > libc::STDERR_FILENO {
        return Ok(fd);
    }
    // SAFETY: duplicates a descriptor we own; the original is closed when `fd` drops.
    let high = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if high < 0 {
        return Err(OpenError::Unusable(last_errno()));
    }
    // SAFETY: `high` was just created and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(high) })
}

/// The file a [`Mapping`] was copied from, held open (close-on-exec) to `fstat` it.
#[derive(Debug)]
pub struct Watch {
    fd: RawFd,
    version: Version,
}

impl Watch {
    /// Whether the file was replaced, truncated or rewritten since it was copied, or the
    /// descriptor no longer refers to it (the host closed it: `closefrom`, `daemon(3)`). One
    /// `fstat`.
    pub fn changed(&self) -> bool {
        fstat(self.fd).map_or(true, |(now, _)| now != self.version)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // Close the descriptor only if it is still ours: if the host closed it behind our back
        // and the number was reused, closing it would close one of the host's files.
        let ours = fstat(self.fd)
            .is_ok_and(|(now, _)| (now.dev, now.ino) == (self.version.dev, self.version.ino));
        if ours {
            // SAFETY: our own descriptor, closed once.
            unsafe { libc::close(self.fd) };
        }
    }
}

/// The copy lookups answer from, and the file it came from.
#[derive(Debug)]
struct Current {
    map: Arc<Mapping>,
    watch: Watch,
}

/// Where the module gets its current copy from.
#[derive(Debug)]
pub struct Source<'p> {
    /// Tried in order; the next one only if a file is missing.
    paths: &'p [&'p CStr],
    current: Option<Current>,
    /// The clock reading at which `current`'s file was last looked at.
    checked_at: u64,
    /// No new attempt before this time (ms on the caller's monotonic clock).
    retry_at: Option<u64>,
    errno: c_int,
}

impl<'p> Source<'p> {
    pub const fn new(paths: &'p [&'p CStr]) -> Self {
        Source {
            paths,
            current: None,
            checked_at: 0,
            retry_at: None,
            errno: libc::ENOENT,
        }
    }

    /// The copy to answer from, or the errno to fail with. `now_ms` reads a monotonic clock in
    /// ms; the file is looked at (one `fstat`) only when that reading differs from the last one.
    pub fn get(&mut self, now_ms: impl FnOnce() -> u64) -> Result<&Arc<Mapping>, c_int> {
        let now = now_ms();
        if let Some(current) = &self.current
            && now != self.checked_at
        {
            self.checked_at = now;
            if current.watch.changed() {
                // Replaced (by jitd, or by hand): look now, not after the retry delay.
                self.current = None;
                self.retry_at = None;
            }
        }
        if self.current.is_none() {
            self.refresh(now);
        }
        self.current.as_ref().map(|c| &c.map).ok_or(self.errno)
    }

    fn refresh(&mut self, now: u64) {
        if self.retry_at.is_some_and(|at| now < at) {
            return;
        }
        match self.open_first() {
            Ok((map, watch)) => {
                self.current = Some(Current {
                    map: Arc::new(map),
                    watch,
                });
                self.checked_at = now;
                self.retry_at = None;
            }
            Err(errno) => {
                self.errno = errno;
                self.retry_at = Some(now.saturating_add(RETRY_MS));
            }
        }
    }

    fn open_first(&self) -> Result<(Mapping, Watch), c_int> {
        'paths: for path in self.paths {
            // A file that changed while we copied it was most likely replaced, and its
            // successor is already in place, so look again. Three tries bound a pathological
            // loop (a file rewritten without pause).
            for _ in 0..3 {
                match Mapping::open(path) {
                    Ok(opened) => return Ok(opened),
                    Err(OpenError::Changed) => {}
                    Err(OpenError::Missing) => continue 'paths,
                    Err(OpenError::Unusable(errno)) => return Err(errno),
                }
            }
            return Err(UNUSABLE);
        }
        Err(libc::ENOENT)
    }
}

/// Milliseconds on `CLOCK_MONOTONIC_COARSE`: served from the vDSO, so no system call.
pub fn coarse_now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer. On failure ts stays zero, which only delays a retry.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let millis = u64::try_from(ts.tv_nsec).unwrap_or(0) / 1_000_000;
    secs.saturating_mul(1000).saturating_add(millis)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::fs;
    use std::os::unix::fs::FileExt;

    use jit_nss_cache::{STALE_MARK, STALE_OFFSET, encode, publish};

    use super::*;
    use crate::test_support::{c_path, contents};

    fn generation(source: &mut Source<'_>, now: u64) -> Result<u64, c_int> {
        source.get(|| now).map(|m| m.view().generation())
    }

    fn open(path: &std::path::Path) -> Result<(Mapping, Watch), OpenError> {
        Mapping::open(&c_path(path))
    }

    #[test]
    fn copies_a_published_file_and_notices_its_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nss.cache");
        publish(&path, &contents(1, 3)).unwrap();
        let (old, watch) = open(&path).unwrap();
        assert_eq!(old.view().user_by_name(b"user2").unwrap().uid, 60002);
        assert!(!watch.changed());

        publish(&path, &contents(2, 1)).unwrap();
        assert!(watch.changed());
        // The copy is ours: it stays readable, and unchanged, until we let go of it.
        assert_eq!(old.view().generation(), 1);
        assert!(old.view().user_by_name(b"user2").is_some());
        let (new, watch) = open(&path).unwrap();
        assert!(!watch.changed());
        assert!(new.view().user_by_name(b"user2").is_none());
    }

    /// What crashed processes with SIGBUS while the file was mapped: here the copy keeps
    /// answering (and a fault would kill this test binary), and the change is noticed.
    #[test]
    fn a_copy_survives_its_file_being_truncated_or_rewritten_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nss.cache");
        let in_place = || fs::OpenOptions::new().write(true).open(&path).unwrap();

        publish(&path, &contents(1, 3)).unwrap();
        let (map, watch) = open(&path).unwrap();
        in_place().set_len(0).unwrap();
        assert!(watch.changed());
        assert_eq!(map.view().user_by_name(b"user2").unwrap().uid, 60002);
        assert_eq!(open(&path).unwrap_err(), OpenError::Unusable(libc::ENOENT));

        // Same size, new bytes: only the timestamps differ. (The kernel gives a write after an
        // fstat a new ctime; see the module comment for older kernels.)
        publish(&path, &contents(2, 3)).unwrap();
        let (map, watch) = open(&path).unwrap();
        let len = fs::metadata(&path).unwrap().len();
        in_place()
            .write_all_at(&vec![b'x'; len as usize], 0)
            .unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), len);
        assert!(watch.changed());
        assert_eq!(map.view().generation(), 2);
        assert!(matches!(open(&path), Err(OpenError::Unusable(_))));
    }

    #[test]
    fn a_closed_or_reused_descriptor_counts_as_a_change_and_is_not_closed_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nss.cache");
        publish(&path, &contents(1, 1)).unwrap();
        let (_map, watch) = open(&path).unwrap();
        // The host closes every descriptor it did not open and reuses the number.
        let other = fs::File::open(dir.path()).unwrap();
        // SAFETY: replaces a descriptor this test owns (through `watch`) with another file.
        assert_eq!(unsafe { libc::dup2(other.as_raw_fd(), watch.fd) }, watch.fd);
        assert!(watch.changed());
        let reused = watch.fd;
        drop(watch);
        // Still open: the Watch saw it was not its file any more.
        // SAFETY: fcntl on a descriptor number; failure just means it is closed.
        assert!(unsafe { libc::fcntl(reused, libc::F_GETFD) } >= 0);
        // SAFETY: now ours to close.
        unsafe { libc::close(reused) };
    }

    #[test]
    fn refuses_anything_but_a_valid_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name);
        assert_eq!(open(&p("missing")).unwrap_err(), OpenError::Missing);
        assert_eq!(open(&p("missing/below")).unwrap_err(), OpenError::Missing);

        fs::create_dir(p("dir")).unwrap();
        fs::write(p("empty"), b"").unwrap();
        fs::write(p("garbage"), vec![b'x'; 4096]).unwrap();
        let bytes = encode(&contents(1, 3));
        fs::write(p("truncated"), &bytes[..bytes.len() - 1]).unwrap();
        // SAFETY: valid C string. Opening a FIFO without O_NONBLOCK would hang this test.
        assert_eq!(
            unsafe { libc::mkfifo(c_path(&p("fifo")).as_ptr(), 0o644) },
            0
        );
        for bad in ["dir", "empty", "garbage", "truncated", "fifo"] {
            assert!(
                matches!(open(&p(bad)), Err(OpenError::Unusable(_))),
                "{bad} was accepted"
            );
        }
        // A file jitd has already marked as replaced: its successor is the one to read.
        let mut stale = bytes.clone();
        stale[STALE_OFFSET..STALE_OFFSET + 4].copy_from_slice(&STALE_MARK.to_le_bytes());
        fs::write(p("stale"), &stale).unwrap();
        assert_eq!(open(&p("stale")).unwrap_err(), OpenError::Changed);
    }

    #[test]
    fn the_descriptor_kept_is_never_a_standard_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nss.cache");
        publish(&path, &contents(1, 1)).unwrap();
        let file = fs::File::open(&path).unwrap();
        // Done in a child: this process's stdin must stay as it is while other tests run.
        // SAFETY: the child makes system calls only, then _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: as above; no allocation, no panic in the child.
            unsafe {
                libc::dup2(file.as_raw_fd(), libc::STDIN_FILENO);
                let ok = match above_stdio(OwnedFd::from_raw_fd(libc::STDIN_FILENO)) {
                    Ok(high) => {
                        high.as_raw_fd() > libc::STDERR_FILENO
                            && libc::fcntl(libc::STDIN_FILENO, libc::F_GETFD) < 0
                    }
                    Err(_) => false,
                };
                libc::_exit(if ok { 0 } else { 1 });
            }
        }
        let mut status = 0;
        // SAFETY: our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);

        // One above stdio already is kept as it is.
        let fd = OwnedFd::from(file);
        let raw = fd.as_raw_fd();
        assert_eq!(above_stdio(fd).unwrap().as_raw_fd(), raw);
    }

    #[test]
    fn falls_back_to_the_state_copy_only_when_the_run_copy_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let (run, state) = (
            dir.path().join("run/nss.cache"),
            dir.path().join("state/nss.cache"),
        );
        let (run_c, state_c) = (c_path(&run), c_path(&state));
        let paths = [run_c.as_c_str(), state_c.as_c_str()];
        let mut source = Source::new(&paths);
        assert_eq!(generation(&mut source, 0), Err(libc::ENOENT));

        publish(&state, &contents(1, 1)).unwrap();
        assert_eq!(generation(&mut source, 1000), Ok(1));

        // jitd publishes run first, then state; replacing the state copy sends us to run.
        publish(&run, &contents(2, 1)).unwrap();
        assert_eq!(generation(&mut source, 1001), Ok(1));
        publish(&state, &contents(2, 1)).unwrap();
        assert_eq!(generation(&mut source, 1002), Ok(2));

        // A bad run copy is an error, not a reason to serve the older state copy.
        fs::remove_file(&run).unwrap();
        fs::write(&run, b"junk").unwrap();
        let mut source = Source::new(&paths);
        assert_eq!(generation(&mut source, 0), Err(libc::ENOENT));
    }

    #[test]
    fn retries_a_missing_file_at_most_once_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nss.cache");
        let path_c = c_path(&path);
        let paths = [path_c.as_c_str()];
        let mut source = Source::new(&paths);
        assert_eq!(generation(&mut source, 5000), Err(libc::ENOENT));
        publish(&path, &contents(1, 1)).unwrap();
        // Within the second the file is not even looked for.
        assert_eq!(generation(&mut source, 5999), Err(libc::ENOENT));
        assert_eq!(generation(&mut source, 6000), Ok(1));

        // With a good copy the clock is read once per lookup, and nothing else happens.
        let reads = Cell::new(0);
        for _ in 0..3 {
            source
                .get(|| {
                    reads.set(reads.get() + 1);
                    6000
                })
                .unwrap();
        }
        assert_eq!(reads.get(), 3);
    }

    #[test]
    fn the_file_is_looked_at_again_only_when_the_clock_has_moved() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nss.cache");
        let path_c = c_path(&path);
        let paths = [path_c.as_c_str()];
        let mut source = Source::new(&paths);
        publish(&path, &contents(1, 1)).unwrap();
        assert_eq!(generation(&mut source, 10), Ok(1));
        publish(&path, &contents(2, 1)).unwrap();
        // Same clock reading: the copy is served without a look at the file.
        assert_eq!(generation(&mut source, 10), Ok(1));
        // Next reading: replaced, so copied again at once, without the retry delay.
        assert_eq!(generation(&mut source, 11), Ok(2));
        assert_eq!(generation(&mut source, 12), Ok(2));
    }

    #[test]
    fn any_replacement_is_noticed_and_a_bad_successor_retried_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nss.cache");
        let path_c = c_path(&path);
        let paths = [path_c.as_c_str()];
        let mut source = Source::new(&paths);
        publish(&path, &contents(1, 1)).unwrap();
        assert_eq!(generation(&mut source, 0), Ok(1));

        // Swapped in by a plain rename, which marks nothing: the link count says it.
        fs::write(dir.path().join("other"), encode(&contents(2, 1))).unwrap();
        fs::rename(dir.path().join("other"), &path).unwrap();
        assert_eq!(generation(&mut source, 1), Ok(2));

        // Replaced by junk: unavailable, and retried a second later.
        fs::write(dir.path().join("junk"), b"junk").unwrap();
        fs::rename(dir.path().join("junk"), &path).unwrap();
        assert_eq!(generation(&mut source, 100), Err(libc::ENOENT));
        publish(&path, &contents(3, 1)).unwrap();
        assert_eq!(
            generation(&mut source, 100 + RETRY_MS - 1),
            Err(libc::ENOENT)
        );
        assert_eq!(generation(&mut source, 100 + RETRY_MS), Ok(3));

        // Truncated in place: the same, and the copy in hand is dropped, not served.
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        assert_eq!(generation(&mut source, 5000), Err(libc::ENOENT));
        publish(&path, &contents(4, 1)).unwrap();
        assert_eq!(generation(&mut source, 5000 + RETRY_MS), Ok(4));
    }
}
