//! Maps jitd's cache file read-only and notices, without a system call, when jitd replaced it.
//!
//! A [`Mapping`] is validated once, when it is made ([`CacheView::parse`] checks the checksum and
//! every offset); after that each lookup only loads the file's `stale` word from memory.
//! [`Source`] holds the current mapping, falls back from the run path to the state path, remaps
//! when the stale word is set, and retries a missing or bad file at most once a second, so a host
//! without jit pays a clock read per lookup and nothing more.
//!
//! Never blocks: the file is opened with `O_NONBLOCK` (a FIFO planted at the path cannot hang a
//! lookup) and must be a regular file. jitd never truncates a published file (it replaces it), so
//! the mapping cannot fault.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use jit_proto::nss_cache::{CacheView, HEADER_LEN, MAX_FILE_LEN, STALE_OFFSET};
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

/// A cache file mapped read-only, and its validated view.
#[derive(Debug)]
pub struct Mapping {
    base: NonNull<libc::c_void>,
    len: usize,
    /// Borrows the mapping, which lives as long as `self`; handed out only as `CacheView<'_>`.
    view: CacheView<'static>,
}

// SAFETY: the mapping is read-only (the stale word is read atomically) and owned by this value.
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

/// Why a file could not be mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// No file at the path.
    Missing,
    /// There, but not a valid cache file (or already replaced). Carries the errno to report.
    Unusable(c_int),
}

impl Mapping {
    pub fn open(path: &CStr) -> Result<Mapping, OpenError> {
        let flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY;
        // SAFETY: `path` is a valid C string.
        let fd = unsafe { libc::open(path.as_ptr(), flags) };
        if fd < 0 {
            return Err(match last_errno() {
                libc::ENOENT | libc::ENOTDIR => OpenError::Missing,
                e => OpenError::Unusable(e),
            });
        }
        // SAFETY: `fd` was just opened and is owned by nothing else; closed on every path.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: a zeroed `stat` is a valid out-parameter.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd and out-pointer.
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
            return Err(OpenError::Unusable(last_errno()));
        }
        let len = usize::try_from(st.st_size).unwrap_or(usize::MAX);
        if st.st_mode & libc::S_IFMT != libc::S_IFREG || !(HEADER_LEN..=MAX_FILE_LEN).contains(&len)
        {
            return Err(OpenError::Unusable(UNUSABLE));
        }
        // SAFETY: mapping `len` bytes of a regular file we hold open; checked below.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(OpenError::Unusable(last_errno()));
        }
        let base = NonNull::new(addr).ok_or(OpenError::Unusable(UNUSABLE))?;
        let mut mapping = Mapping {
            base,
            len,
            view: CacheView::default(),
        };
        // SAFETY: `len` readable bytes at `base`, unmapped only when `mapping` drops, and never
        // written except for the stale word, which is read only atomically (`is_stale`) after
        // this parse.
        let bytes: &'static [u8] = unsafe { std::slice::from_raw_parts(base.as_ptr().cast(), len) };
        mapping.view = CacheView::parse(bytes).map_err(|_| OpenError::Unusable(UNUSABLE))?;
        Ok(mapping)
    }

    pub fn view(&self) -> &CacheView<'_> {
        &self.view
    }

    /// Whether jitd has replaced this file since. One atomic load; no system call.
    pub fn is_stale(&self) -> bool {
        // SAFETY: the mapping is page-aligned and at least HEADER_LEN long, so the word is in
        // bounds and 4-byte aligned; a relaxed load of a u32 is valid on read-only memory.
        let word = unsafe {
            AtomicU32::from_ptr(self.base.as_ptr().cast::<u8>().add(STALE_OFFSET).cast())
        };
        word.load(Ordering::Relaxed) != 0
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `open` mapped; `view` is not used after this.
        unsafe { libc::munmap(self.base.as_ptr(), self.len) };
    }
}

/// Where the module gets its current mapping from.
#[derive(Debug)]
pub struct Source<'p> {
    /// Tried in order; the next one only if a file is missing.
    paths: &'p [&'p CStr],
    current: Option<Arc<Mapping>>,
    /// No new attempt before this time (ms on the caller's monotonic clock).
    retry_at: Option<u64>,
    errno: c_int,
}

impl<'p> Source<'p> {
    pub const fn new(paths: &'p [&'p CStr]) -> Self {
        Source {
            paths,
            current: None,
            retry_at: None,
            errno: libc::ENOENT,
        }
    }

    /// The mapping to answer from, or the errno to fail with. `now_ms` (a monotonic clock) is
    /// only read when there is no usable mapping.
    pub fn get(&mut self, now_ms: impl FnOnce() -> u64) -> Result<&Arc<Mapping>, c_int> {
        match &self.current {
            Some(m) if !m.is_stale() => {}
            Some(_) => {
                // jitd has just published: look now, not after the retry delay.
                self.current = None;
                self.retry_at = None;
                self.refresh(now_ms);
            }
            None => self.refresh(now_ms),
        }
        self.current.as_ref().ok_or(self.errno)
    }

    fn refresh(&mut self, now_ms: impl FnOnce() -> u64) {
        let now = now_ms();
        if self.retry_at.is_some_and(|at| now < at) {
            return;
        }
        match self.open_first() {
            Ok(m) => {
                self.current = Some(Arc::new(m));
                self.retry_at = None;
            }
            Err(errno) => {
                self.errno = errno;
                self.retry_at = Some(now.saturating_add(RETRY_MS));
            }
        }
    }

    fn open_first(&self) -> Result<Mapping, c_int> {
        'paths: for path in self.paths {
            // A file found stale was replaced between our open and mmap; its successor is
            // already in place, so look again. Three tries bound a pathological loop.
            for _ in 0..3 {
                match Mapping::open(path) {
                    Ok(m) if !m.is_stale() => return Ok(m),
                    Ok(_) => {}
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

    use jit_proto::nss_cache::{encode, publish};

    use super::*;
    use crate::test_support::{c_path, contents};

    fn generation(source: &mut Source<'_>, now: u64) -> Result<u64, c_int> {
        source.get(|| now).map(|m| m.view().generation())
    }

    #[test]
    fn maps_a_published_file_and_notices_its_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nss.cache");
        publish(&path, &contents(1, 3)).unwrap();
        let old = Mapping::open(&c_path(&path)).unwrap();
        assert_eq!(old.view().user_by_name(b"user2").unwrap().uid, 60002);
        assert!(!old.is_stale());

        publish(&path, &contents(2, 1)).unwrap();
        assert!(old.is_stale());
        // The old inode stays mapped and readable until we let go of it.
        assert_eq!(old.view().generation(), 1);
        assert!(old.view().user_by_name(b"user2").is_some());
        let new = Mapping::open(&c_path(&path)).unwrap();
        assert!(!new.is_stale());
        assert!(new.view().user_by_name(b"user2").is_none());
    }

    #[test]
    fn refuses_anything_but_a_valid_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name);
        assert_eq!(
            Mapping::open(&c_path(&p("missing"))).unwrap_err(),
            OpenError::Missing
        );
        assert_eq!(
            Mapping::open(&c_path(&p("missing/below"))).unwrap_err(),
            OpenError::Missing
        );

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
                matches!(Mapping::open(&c_path(&p(bad))), Err(OpenError::Unusable(_))),
                "{bad} was accepted"
            );
        }
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

        // jitd publishes run first, then state; marking the state copy stale sends us to run.
        publish(&run, &contents(2, 1)).unwrap();
        assert_eq!(generation(&mut source, 1000), Ok(1));
        publish(&state, &contents(2, 1)).unwrap();
        assert_eq!(generation(&mut source, 1000), Ok(2));
        assert!(!source.get(|| 1000).unwrap().is_stale());

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

        // With a good mapping the clock is never read.
        let reads = Cell::new(0);
        for _ in 0..3 {
            source
                .get(|| {
                    reads.set(reads.get() + 1);
                    0
                })
                .unwrap();
        }
        assert_eq!(reads.get(), 0);
    }

    #[test]
    fn a_replaced_file_is_remapped_at_once_and_a_bad_successor_retried_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nss.cache");
        let path_c = c_path(&path);
        let paths = [path_c.as_c_str()];
        let mut source = Source::new(&paths);
        publish(&path, &contents(1, 1)).unwrap();
        assert_eq!(generation(&mut source, 0), Ok(1));
        publish(&path, &contents(2, 1)).unwrap();
        assert_eq!(
            generation(&mut source, 0),
            Ok(2),
            "no delay after a publish"
        );

        // Swapped in by anything but `publish`: nothing marks the mapped file, so it keeps serving.
        fs::write(dir.path().join("other"), encode(&contents(3, 1))).unwrap();
        fs::rename(dir.path().join("other"), &path).unwrap();
        assert_eq!(generation(&mut source, 0), Ok(2));

        // Marked stale, but what replaced it is junk: unavailable, and retried a second later.
        let mut source = Source::new(&paths);
        assert_eq!(generation(&mut source, 0), Ok(3));
        publish(&path, &contents(4, 1)).unwrap();
        assert_eq!(generation(&mut source, 0), Ok(4));
        let junk = dir.path().join("junk");
        fs::write(&junk, b"junk").unwrap();
        let mapped = fs::OpenOptions::new().write(true).open(&path).unwrap();
        fs::rename(&junk, &path).unwrap();
        std::os::unix::fs::FileExt::write_at(&mapped, &1u32.to_le_bytes(), STALE_OFFSET as u64)
            .unwrap();
        assert_eq!(generation(&mut source, 100), Err(libc::ENOENT));
        publish(&path, &contents(5, 1)).unwrap();
        assert_eq!(
            generation(&mut source, 100 + RETRY_MS - 1),
            Err(libc::ENOENT)
        );
        assert_eq!(generation(&mut source, 100 + RETRY_MS), Ok(5));
    }
}
