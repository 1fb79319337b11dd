//! The group-id array glibc passes to `initgroups_dyn`: glibc owns it (malloc'd), the module
//! appends to it and may grow it with `realloc`, within the caller's `limit`.

use libc::{c_long, gid_t};

/// `realloc` failed: glibc is told `TRYAGAIN` with `ENOMEM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoMemory;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    Added,
    /// Already in the list (glibc puts the primary group first; other services add theirs).
    Present,
    /// The caller's `limit` is reached: stop adding.
    Full,
}

pub struct GidList<'a> {
    start: &'a mut c_long,
    size: &'a mut c_long,
    groups: &'a mut *mut gid_t,
    limit: c_long,
}

impl<'a> GidList<'a> {
    /// Checks the pointers and counts glibc passed; `None` if they are unusable.
    ///
    /// # Safety
    /// Pointers are null or valid for `'a`; `*groups` holds `*size` gids allocated with malloc.
    pub unsafe fn from_raw(
        start: *mut c_long,
        size: *mut c_long,
        groups: *mut *mut gid_t,
        limit: c_long,
    ) -> Option<Self> {
        // SAFETY: the caller's contract; null is checked by as_mut.
        let (start, size, groups) = unsafe { (start.as_mut()?, size.as_mut()?, groups.as_mut()?) };
        let ok = *start >= 0 && *size >= *start && (*size == 0 || !groups.is_null());
        ok.then_some(GidList {
            start,
            size,
            groups,
            limit,
        })
    }

    pub fn as_slice(&self) -> &[gid_t] {
        let len = usize::try_from(*self.start).unwrap_or(0);
        if len == 0 {
            return &[];
        }
        // SAFETY: from_raw checked start <= size and a non-null array of `size` gids.
        unsafe { std::slice::from_raw_parts(*self.groups, len) }
    }

    pub fn push(&mut self, gid: gid_t) -> Result<Push, NoMemory> {
        if self.as_slice().contains(&gid) {
            return Ok(Push::Present);
        }
        if *self.start >= *self.size {
            if self.limit > 0 && *self.size >= self.limit {
                return Ok(Push::Full);
            }
            // Doubling, capped at the limit, as glibc's own files module grows it.
            let doubled = self.size.saturating_mul(2).max(1);
            let new_size = if self.limit > 0 {
                doubled.min(self.limit)
            } else {
                doubled
            };
            let bytes = usize::try_from(new_size)
                .ok()
                .and_then(|n| n.checked_mul(size_of::<gid_t>()))
                .ok_or(NoMemory)?;
            // SAFETY: *groups is null or glibc's malloc'd array; realloc keeps it on failure.
            let grown = unsafe { libc::realloc((*self.groups).cast(), bytes) }.cast::<gid_t>();
            if grown.is_null() {
                return Err(NoMemory);
            }
            *self.groups = grown;
            *self.size = new_size;
        }
        // SAFETY: start < size, the array's length.
        unsafe { (*self.groups).add(*self.start as usize).write(gid) };
        *self.start += 1;
        Ok(Push::Added)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A glibc-style array: malloc'd, `size` slots, the first `start` used.
    struct Array {
        start: c_long,
        size: c_long,
        groups: *mut gid_t,
    }

    impl Array {
        fn new(initial: &[gid_t], size: c_long) -> Self {
            let groups =
                unsafe { libc::malloc(size as usize * size_of::<gid_t>()) }.cast::<gid_t>();
            assert!(!groups.is_null());
            for (i, g) in initial.iter().enumerate() {
                unsafe { groups.add(i).write(*g) };
            }
            Array {
                start: initial.len() as c_long,
                size,
                groups,
            }
        }

        fn list(&mut self, limit: c_long) -> GidList<'_> {
            unsafe { GidList::from_raw(&mut self.start, &mut self.size, &mut self.groups, limit) }
                .unwrap()
        }

        fn gids(&self) -> Vec<gid_t> {
            unsafe { std::slice::from_raw_parts(self.groups, self.start as usize) }.to_vec()
        }
    }

    impl Drop for Array {
        fn drop(&mut self) {
            unsafe { libc::free(self.groups.cast()) };
        }
    }

    #[test]
    fn appends_and_skips_duplicates() {
        let mut a = Array::new(&[100], 4);
        let mut l = a.list(0);
        assert_eq!(l.push(200), Ok(Push::Added));
        assert_eq!(l.push(100), Ok(Push::Present));
        assert_eq!(l.push(200), Ok(Push::Present));
        assert_eq!(a.gids(), [100, 200]);
        assert_eq!(a.size, 4);
    }

    #[test]
    fn grows_with_realloc_when_full() {
        let mut a = Array::new(&[1], 1);
        let mut l = a.list(0);
        for g in 2..=9 {
            assert_eq!(l.push(g), Ok(Push::Added));
        }
        assert_eq!(a.gids(), (1..=9).collect::<Vec<_>>());
        assert_eq!(a.size, 16);
    }

    #[test]
    fn stops_at_the_limit() {
        let mut a = Array::new(&[1], 2);
        let mut l = a.list(3);
        assert_eq!(l.push(2), Ok(Push::Added));
        assert_eq!(l.push(3), Ok(Push::Added));
        assert_eq!(l.push(4), Ok(Push::Full));
        assert_eq!(a.gids(), [1, 2, 3]);
        assert_eq!(a.size, 3);
    }

    #[test]
    fn refuses_inconsistent_arguments() {
        let (mut start, mut size, mut groups) =
            (3 as c_long, 2 as c_long, std::ptr::null_mut::<gid_t>());
        assert!(unsafe { GidList::from_raw(&mut start, &mut size, &mut groups, 0) }.is_none());
        assert!(
            unsafe { GidList::from_raw(std::ptr::null_mut(), &mut size, &mut groups, 0) }.is_none()
        );
        start = 0;
        assert!(unsafe { GidList::from_raw(&mut start, &mut size, &mut groups, 0) }.is_none());
        size = 0;
        let mut l = unsafe { GidList::from_raw(&mut start, &mut size, &mut groups, 0) }.unwrap();
        // A zero-sized, null array grows from nothing.
        assert_eq!(l.push(7), Ok(Push::Added));
        assert_eq!((start, size), (1, 1));
        unsafe {
            assert_eq!(*groups, 7);
            libc::free(groups.cast());
        }
    }
}
