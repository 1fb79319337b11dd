//! Packs strings and NULL-terminated string arrays into the buffer glibc lends with each call.
//!
//! Every string a `struct passwd` or `struct group` points to must live in that buffer. Running
//! out of room is not an error but [`TooSmall`]: the module answers `NSS_STATUS_TRYAGAIN` with
//! `ERANGE`, and glibc calls again with a larger buffer. Nothing here allocates or panics.

use libc::c_char;

/// The caller's buffer cannot hold the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooSmall;

/// A caller's buffer, filled from the front.
pub struct Buffer<'a> {
    bytes: &'a mut [u8],
    used: usize,
}

impl<'a> Buffer<'a> {
    pub fn new(bytes: &'a mut [u8]) -> Self {
        Buffer { bytes, used: 0 }
    }

    /// # Safety
    /// `ptr` is null or valid for writes of `len` bytes for `'a`, and nothing else uses them.
    pub unsafe fn from_raw(ptr: *mut c_char, len: usize) -> Self {
        if ptr.is_null() {
            return Buffer::new(&mut []);
        }
        // A slice may not be longer than isize::MAX; glibc's buffers never are.
        let len = len.min(isize::MAX as usize);
        // SAFETY: the caller's contract.
        Buffer::new(unsafe { std::slice::from_raw_parts_mut(ptr.cast::<u8>(), len) })
    }

    /// Copies `s` and a terminating NUL; returns the C string's address.
    pub fn str(&mut self, s: &[u8]) -> Result<*mut c_char, TooSmall> {
        let end = self
            .used
            .checked_add(s.len())
            .and_then(|e| e.checked_add(1))
            .ok_or(TooSmall)?;
        let dst = self.bytes.get_mut(self.used..end).ok_or(TooSmall)?;
        let (text, nul) = dst.split_at_mut(s.len());
        text.copy_from_slice(s);
        nul.fill(0);
        self.used = end;
        Ok(dst.as_mut_ptr().cast())
    }

    /// Copies each item as a C string and builds a NULL-terminated, pointer-aligned array of
    /// them (`gr_mem`); returns the array's address.
    pub fn str_array<'s, I>(&mut self, items: I) -> Result<*mut *mut c_char, TooSmall>
    where
        I: ExactSizeIterator<Item = &'s [u8]>,
    {
        const PTR: usize = size_of::<*mut c_char>();
        let base = self.bytes.as_ptr() as usize;
        let pad = base.wrapping_add(self.used).wrapping_neg() % align_of::<*mut c_char>();
        let start = self.used.checked_add(pad).ok_or(TooSmall)?;
        let slots = items
            .len()
            .checked_add(1)
            .and_then(|n| n.checked_mul(PTR))
            .ok_or(TooSmall)?;
        let end = start.checked_add(slots).ok_or(TooSmall)?;
        if end > self.bytes.len() {
            return Err(TooSmall);
        }
        self.used = end;
        let mut slot = start;
        for item in items {
            let p = self.str(item)?;
            self.put_ptr(slot, p as usize)?;
            slot += PTR;
        }
        self.put_ptr(slot, 0)?;
        // The array lies inside `bytes` (checked above), so this stays in bounds.
        Ok(self.bytes.as_mut_ptr().wrapping_add(start).cast())
    }

    fn put_ptr(&mut self, at: usize, addr: usize) -> Result<(), TooSmall> {
        let end = at.checked_add(size_of::<usize>()).ok_or(TooSmall)?;
        self.bytes
            .get_mut(at..end)
            .ok_or(TooSmall)?
            .copy_from_slice(&addr.to_ne_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    /// Reads back what C would see.
    unsafe fn c(p: *const c_char) -> &'static str {
        unsafe { CStr::from_ptr(p) }.to_str().unwrap()
    }

    #[test]
    fn strings_are_nul_terminated_and_packed() {
        let mut mem = [0xaau8; 16];
        let mut buf = Buffer::new(&mut mem);
        let a = buf.str(b"root").unwrap();
        let b = buf.str(b"").unwrap();
        let c2 = buf.str(b"x").unwrap();
        unsafe {
            assert_eq!((c(a), c(b), c(c2)), ("root", "", "x"));
        }
        assert_eq!(&mem[..8], b"root\0\0x\0");
        assert_eq!(mem[8], 0xaa, "wrote past the last string");
    }

    #[test]
    fn a_string_that_does_not_fit_is_too_small_at_every_size() {
        let s = b"administrator";
        for len in 0..=s.len() {
            let mut mem = vec![0u8; len];
            assert_eq!(Buffer::new(&mut mem).str(s), Err(TooSmall), "len {len}");
        }
        let mut mem = vec![0u8; s.len() + 1];
        assert!(Buffer::new(&mut mem).str(s).is_ok());
    }

    #[test]
    fn arrays_are_aligned_and_null_terminated_from_any_start() {
        // A u64 backing store is pointer-aligned; offsetting it by 0..8 bytes tries every
        // misalignment glibc could hand us.
        for skew in 0..8 {
            let mut store = [0u64; 16];
            let mem: &mut [u8] =
                unsafe { std::slice::from_raw_parts_mut(store.as_mut_ptr().cast(), 128) };
            let mut buf = Buffer::new(&mut mem[skew..]);
            buf.str(b"g").unwrap();
            let members: [&[u8]; 3] = [b"alice", b"bob", b""];
            let arr = buf.str_array(members.into_iter()).unwrap();
            assert_eq!(arr as usize % align_of::<*mut c_char>(), 0, "skew {skew}");
            unsafe {
                assert_eq!(c(*arr), "alice");
                assert_eq!(c(*arr.add(1)), "bob");
                assert_eq!(c(*arr.add(2)), "");
                assert!((*arr.add(3)).is_null());
            }
        }
    }

    #[test]
    fn empty_array_is_a_single_null() {
        let mut store = [1u64; 2];
        let mem: &mut [u8] =
            unsafe { std::slice::from_raw_parts_mut(store.as_mut_ptr().cast(), 16) };
        let arr = Buffer::new(mem).str_array(std::iter::empty()).unwrap();
        unsafe { assert!((*arr).is_null()) };
    }

    #[test]
    fn array_needs_room_for_slots_and_strings() {
        let members: [&[u8]; 2] = [b"alice", b"bob"];
        // 3 pointers + "alice\0" + "bob\0" from an aligned start.
        let need = 3 * size_of::<usize>() + 6 + 4;
        for len in 0..need {
            let mut store = [0u64; 8];
            let mem: &mut [u8] =
                unsafe { std::slice::from_raw_parts_mut(store.as_mut_ptr().cast(), len) };
            assert_eq!(
                Buffer::new(mem).str_array(members.into_iter()),
                Err(TooSmall),
                "len {len}"
            );
        }
        let mut store = [0u64; 8];
        let mem: &mut [u8] =
            unsafe { std::slice::from_raw_parts_mut(store.as_mut_ptr().cast(), need) };
        assert!(Buffer::new(mem).str_array(members.into_iter()).is_ok());
    }

    #[test]
    fn null_buffer_is_empty() {
        let mut buf = unsafe { Buffer::from_raw(std::ptr::null_mut(), 4096) };
        assert_eq!(buf.str(b""), Err(TooSmall));
    }
}
